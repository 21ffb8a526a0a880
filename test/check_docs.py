#!/usr/bin/env python3
"""check_docs.py - the documentation cannot drift from the code.

    test/check_docs.py BUILD      (run by scripts/test-bindings.sh in make test)

Checks, each failure printed with the file and what is wrong:
  1. docs/API.md is what scripts/gen-api-doc.py generates from the header;
  2. every public function, struct, enum and macro of include/akidb.h (and
     every symbol libakidb.so exports) has a heading in docs/API.md, and
     every function, struct and enum there has text, not only code;
  3. what the Markdown docs name exists: akidb_* / AKIDB_* identifiers (in
     the header, the library's metrics, or the sources), `make TARGET`s
     (in the Makefile), `akidb SUBCOMMAND`s (in the tool's usage),
     repository paths and relative links (on disk), Python names
     (akidb.X, db.X, col.X: attributes of the installed package) and Go
     names (akidb.X and methods, declared in bindings/go);
  4. the programs of docs/GETTING_STARTED.md run: each ```c, ```python and
     ```go block is built and run in a fresh directory, and its output must
     equal the ```text block that follows it; the curl commands of its
     "## HTTP" section run against a fresh akidb-server and must answer
     what the ```text block after each shows (run_getting_started_http);
  5. the operations docs (OPS_DOCS: docs/S3.md, docs/RUNBOOK.md,
     deploy/README.md) name only
     what the server has: --flags on akidb-server lines (and inline spans
     that start with --) in `akidb-server --help`, flags on `akidb COMMAND`
     lines in that command's --help, AKIDB_* settings in the server's help
     or the header, "METHOD /path" pairs and /v1, /health paths among
     `akidb-server --list-routes`, metric names among the TYPE lines a live
     server's /metrics prints (started here on 127.0.0.1, port 0), and
     every line of their ```text blocks (quoted error messages) matches a
     format string in lib/ or server/ (see message_formats()).

Environment: AKIDB_DOCS_PYTHON, an interpreter with the akidb package
installed (the venv make test builds); the Go variables (GOCACHE,
GOFLAGS=-mod=mod, GOPROXY=off, PKG_CONFIG_PATH) set by the caller.
Exit status 1 if anything failed; the last line says how many checks ran.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = os.path.join(ROOT, "include", "akidb.h")
API_MD = os.path.join(ROOT, "docs", "API.md")

failures = []
checks = 0


def fail(where, msg):
    failures.append(f"{where}: {msg}")


def ok():
    global checks
    checks += 1


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# --------------------------------------------------------------------------
# What exists


def header_names():
    text = read(HEADER)
    funcs = set(re.findall(r"AKIDB_API[^;(]*?\b(akidb_\w+)\s*\(", text))
    structs = set(re.findall(r"typedef\s+struct\s+\w*\s*\{[^}]*\}\s*(\w+)\s*;", text, re.S))
    structs |= set(re.findall(r"typedef\s+struct\s+\w+\s+(\w+)\s*;", text))
    structs |= {"struct " + s for s in re.findall(r"^struct\s+(\w+)\s*\{", text, re.M)}
    enums = set(re.findall(r"typedef\s+enum\s+\w*\s*\{[^}]*\}\s*(\w+)\s*;", text, re.S))
    macros = {m for m in re.findall(r"^#\s*define\s+(AKIDB_\w+)", text, re.M)
              if not m.startswith("AKIDB__") and m not in ("AKIDB_H", "AKIDB_API")}
    # Enum constants, the result codes of the X-macro table included.
    consts = set(re.findall(r"\b(AKIDB_[A-Z0-9_]+)\s*=", text))
    consts |= {"AKIDB_" + n for n in re.findall(r"X\((\w+),\s*\d+", text)}
    words = set(re.findall(r"\b\w+\b", text))
    return funcs, structs, enums, macros, consts, words


def exported_symbols(build):
    so = os.path.join(build, "libakidb.so")
    out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True)
    if out.returncode:
        fail(so, f"nm failed: {out.stderr.strip()}")
        return set()
    return {l.split()[-1] for l in out.stdout.splitlines() if l.split()[-1].startswith("akidb")}


def source_words():
    """Every identifier in the project's code (lib, tools, tests, bench,
    bindings, scripts): what an environment variable or internal name the
    docs mention must be found in."""
    words = set()
    for pattern in ("lib/*/*.[ch]", "tools/*.c", "test/*.[ch]", "test/*.sh", "bench/*",
                    "scripts/*", "bindings/python/akidb/*.py", "bindings/python/*.py",
                    "bindings/go/*.go", "bindings/go/*.h", "Makefile", "examples/*.c",
                    "server/*", ".ci/*"):
        for path in glob.glob(os.path.join(ROOT, pattern)):
            if os.path.isfile(path):
                try:
                    words |= set(re.findall(r"\b\w+\b", read(path)))
                except UnicodeDecodeError:
                    pass
    return words


def make_targets():
    targets = set()
    for line in read(os.path.join(ROOT, "Makefile")).splitlines():
        m = re.match(r"^([A-Za-z0-9_.%/ -]+?)\s*:(?![=:])", line)
        if m and not line.startswith("\t"):
            targets |= set(m.group(1).split())
        m = re.match(r"^\.PHONY\s*:(.*)", line)
        if m:
            targets |= set(m.group(1).replace("\\", " ").split())
    return targets


def tool_subcommands(build):
    """The tool's commands, as `akidb help` lists them ("  NAME  summary"
    under "commands:"), and the actions a command's usage line names
    ("usage: akidb snapshot create|list|restore|delete ...")."""
    tool = os.path.join(build, "akidb")
    res = subprocess.run([tool, "help"], capture_output=True, text=True)
    text = res.stdout + res.stderr
    listed = text.split("commands:", 1)[1] if "commands:" in text else ""
    subs = set(re.findall(r"^  ([a-z][a-z-]*)\s{2,}\S", listed, re.M))
    for name in sorted(subs):
        res = subprocess.run([tool, name, "--help"], capture_output=True, text=True)
        m = re.match(r"usage: akidb\s+\w+\s+([a-z]+(?:\|[a-z]+)+)\s", res.stdout)
        if m:
            subs |= set(m.group(1).split("|"))
    return subs


def python_api(py):
    if not py:
        return None
    code = ("import akidb, json, tempfile, os\n"
            "d = tempfile.mkdtemp()\n"
            "with akidb.open(os.path.join(d, 'db')) as db:\n"
            "    metrics = [l.split()[2] for l in db.metrics_text().splitlines()"
            " if l.startswith('# TYPE')]\n"
            "print(json.dumps({'module': dir(akidb), 'db': dir(akidb.Database),"
            " 'col': dir(akidb.Collection), 'hit': list(akidb.Hit._fields),"
            " 'err': dir(akidb.Error('x')), 'metrics': metrics}))\n")
    res = subprocess.run([py, "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir())
    if res.returncode:
        fail("python", f"cannot inspect the installed akidb package: {res.stderr.strip()}")
        return None
    return json.loads(res.stdout)


def go_api():
    names, methods = set(), {}
    for path in glob.glob(os.path.join(ROOT, "bindings", "go", "*.go")):
        if path.endswith("_test.go"):
            continue
        text = read(path)
        names |= set(re.findall(r"^func\s+([A-Z]\w*)", text, re.M))
        names |= set(re.findall(r"^type\s+([A-Z]\w*)", text, re.M))
        names |= set(re.findall(r"^\s+([A-Z]\w*)\s+(?:\w+\s+)?=", text, re.M))
        names |= set(re.findall(r"^(?:const|var)\s+([A-Z]\w*)\b", text, re.M))
        for recv, name in re.findall(r"^func\s+\(\w+\s+\*?(\w+)\)\s+([A-Z]\w*)", text, re.M):
            methods.setdefault(recv, set()).add(name)
        for s in re.findall(r"^type\s+\w+\s+struct\s*\{(.*?)^\}", text, re.M | re.S):
            names |= set(re.findall(r"^\s+([A-Z]\w*)\s", s, re.M))
    return names, methods


# --------------------------------------------------------------------------
# 1 and 2: the API reference


def check_api_reference(build, funcs, structs, enums, macros):
    res = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen-api-doc.py"),
                          "--check"], capture_output=True, text=True)
    if res.returncode:
        fail("docs/API.md", res.stderr.strip())
    ok()
    md = read(API_MD)
    sections = re.split(r"^### ", md, flags=re.M)[1:]
    documented = {}
    for sec in sections:
        heading, _, body = sec.partition("\n")
        prose = re.sub(r"```.*?```", "", body, flags=re.S)
        prose = re.split(r"^## ", prose, flags=re.M)[0].strip()
        for name in re.findall(r"`([^`]+)`", heading):
            documented[name] = bool(prose)
    for kind, names in (("function", funcs), ("struct", structs), ("enum", enums),
                        ("macro", macros)):
        for name in sorted(names):
            ok()
            if name not in documented:
                fail("docs/API.md", f"{kind} {name} of include/akidb.h has no heading")
            elif kind != "macro" and not documented[name]:
                fail("include/akidb.h", f"{kind} {name} has no doc comment (docs/API.md shows "
                     "only its code)")
    for sym in sorted(exported_symbols(build)):
        ok()
        if sym not in funcs:
            fail("libakidb.so", f"exports {sym}, which include/akidb.h does not declare")


# --------------------------------------------------------------------------
# 3: names in the docs


def code_spans(md):
    """(kind, language, text, section) of every fenced block and inline code
    span; section is the title of the "## " heading it is under."""
    out = []
    heads = [(m.start(), m.group(1)) for m in re.finditer(r"^## (.*)$", md, re.M)]

    def section(pos):
        title = ""
        for start, t in heads:
            if start <= pos:
                title = t
        return title

    blocks = list(re.finditer(r"^```(\w*)\n(.*?)^```", md, re.M | re.S))
    for m in blocks:
        out.append(("block", m.group(1), m.group(2), section(m.start())))
    masked = md
    for m in reversed(blocks):   # blank the blocks out, keeping offsets
        masked = masked[:m.start()] + " " * (m.end() - m.start()) + masked[m.end():]
    for m in re.finditer(r"`([^`\n]+)`", masked):
        out.append(("inline", "", m.group(1), section(m.start())))
    return out, masked


REPO_PATH = re.compile(r"(?<![\w/.$-])((?:include|lib|scripts|examples|docs|bindings|test|tools|"
                       r"bench|pkgconfig|server|deploy|\.ci)/[\w./*-]*[\w*])")


def check_names(build, words, src_words, metrics, py, go):
    funcs, structs, enums, macros, consts, header_words = words
    c_names = funcs | structs | enums | {s.replace("struct ", "") for s in structs}
    targets = make_targets()
    subs = tool_subcommands(build)
    go_names, go_methods = go
    # The server's settings as environment variables (AKIDB_S3_BUCKET, ...)
    # are derived from its settings table, so only its --help spells them.
    res = subprocess.run([os.path.join(build, "akidb-server"), "--help"], capture_output=True,
                         text=True)
    server_envs = set(re.findall(r"\b(AKIDB_[A-Z0-9_]+)\b", res.stdout))
    docs = [p for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
            if os.path.basename(p) != "API.md"]
    docs += [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "CHANGELOG.md"),
             os.path.join(ROOT, "deploy", "README.md")]
    docs += glob.glob(os.path.join(ROOT, "bindings", "*", "README.md"))
    for path in sorted(docs):
        if not os.path.isfile(path):
            fail(os.path.relpath(path, ROOT), "does not exist")
            continue
        rel = os.path.relpath(path, ROOT)
        md = read(path)
        spans, prose = code_spans(md)
        text_all = md
        # akidb_* identifiers: the C API, a metric, or an internal name in lib/.
        for name in sorted(set(re.findall(r"(?<![\w/.-])(akidb_{1,2}[a-z0-9_]*[a-z0-9])(?![\w.-]*\.(?:c|h|py|go|so|a|pc)\b)",
                                          text_all))):
            ok()
            if name.endswith("_") or name in c_names or name in metrics or name in src_words:
                continue
            fail(rel, f"names {name}, which is neither in include/akidb.h, a metric, nor the sources")
        for name in sorted(set(re.findall(r"\b(AKIDB_[A-Z0-9_]*[A-Z0-9]_?)(?:\*)?", text_all))):
            ok()
            if name.endswith("_"):
                if not any(n.startswith(name) for n in macros | consts):
                    fail(rel, f"names {name}*, which matches nothing in include/akidb.h")
                continue
            if name not in macros and name not in consts and name not in src_words \
                    and name not in server_envs:
                fail(rel, f"names {name}, which is not in include/akidb.h, the sources or "
                     "akidb-server --help")
        for kind, lang, code, section in spans:
            python_ctx = lang == "python" or (kind == "inline" and (
                rel == "bindings/python/README.md" or section.startswith("Python")))
            go_ctx = lang == "go" or (kind == "inline" and (
                rel == "bindings/go/README.md" or section.startswith("Go")))
            if lang in ("text", "json"):
                continue
            for m in re.finditer(r"(?:^|[\s;(&|`$])make((?:\s+(?:-\S+|[A-Z_]+=\S*))*)\s+([a-z][\w-]*)",
                                 code, re.M):
                ok()
                if m.group(2) not in targets:
                    fail(rel, f"`make {m.group(2)}`: no such target in the Makefile")
            if lang in ("sh", "") or kind == "inline":
                for m in re.finditer(r"(?:^|\s)(?:build/)?akidb\s+([a-z][a-z-]*)", code, re.M):
                    ok()
                    if m.group(1) not in subs:
                        fail(rel, f"`akidb {m.group(1)}`: the tool has no such command")
            for p in REPO_PATH.findall(code):
                if "<" in p or re.search(r"/N\.", p):
                    continue
                ok()
                # A program is named by its source: examples/quickstart(.c).
                if not glob.glob(os.path.join(ROOT, p)) and not os.path.exists(os.path.join(ROOT, p + ".c")):
                    fail(rel, f"names {p}, which does not exist")
            if py and python_ctx:
                for attr in set(re.findall(r"\bakidb\.([A-Za-z_]\w*)", code)):
                    ok()
                    if attr not in py["module"]:
                        fail(rel, f"akidb.{attr}: the Python package has no such name")
                for obj, attr in set(re.findall(r"\b(db|col|docs)\.([a-z_]\w*)\b", code)):
                    ok()
                    have = py["db"] if obj == "db" else py["col"]
                    if attr not in have:
                        fail(rel, f"{obj}.{attr}: no such Python method")
                for attr in set(re.findall(r"\bhit\.(\w+)", code)):
                    ok()
                    if attr not in py["hit"]:
                        fail(rel, f"hit.{attr}: Hit has no such field")
            if go_ctx:
                for name in set(re.findall(r"\bakidb\.([A-Z]\w*)", code)):
                    ok()
                    if name not in go_names:
                        fail(rel, f"akidb.{name}: bindings/go declares no such name")
                for obj, name in set(re.findall(r"\b(db|docs)\.([A-Z]\w*)\(", code)):
                    ok()
                    recv = "DB" if obj == "db" else "Collection"
                    if name not in go_methods.get(recv, set()):
                        fail(rel, f"{obj}.{name}: *akidb.{recv} has no such method")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose):
            if re.match(r"\w+://", target):
                continue
            ok()
            if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(path), target))):
                fail(rel, f"link to {target}, which does not exist")


# --------------------------------------------------------------------------
# 4: the programs of GETTING_STARTED.md


def expected_after(md, end):
    m = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
    for b in m.finditer(md, end):
        if b.group(1) == "text":
            return b.group(2)
        if b.group(1) in ("c", "python", "go"):
            return None
    return None


def same_output(got, want):
    norm = lambda s: [l.rstrip() for l in s.strip().splitlines()]
    return norm(got) == norm(want)


def run_getting_started(build, py):
    path = os.path.join(ROOT, "docs", "GETTING_STARTED.md")
    md = read(path)
    pc_dirs = [os.path.join(build, "pkgconfig"), os.path.join(build, "go", "pkgconfig")]
    pc_path = ":".join(d for d in pc_dirs if os.path.exists(os.path.join(d, "akidb-uninstalled.pc")))
    ran = {"c": 0, "python": 0, "go": 0}
    for b in re.finditer(r"^```(c|python|go)\n(.*?)^```", md, re.M | re.S):
        lang, code = b.group(1), b.group(2)
        want = expected_after(md, b.end())
        tmp = tempfile.mkdtemp(prefix="akidb-doc-")
        try:
            env = dict(os.environ)
            if lang == "c":
                with open(os.path.join(tmp, "example.c"), "w") as f:
                    f.write(code)
                flags = subprocess.run(["pkg-config", "--cflags", "--libs", "akidb-uninstalled"],
                                       capture_output=True, text=True,
                                       env=dict(env, PKG_CONFIG_PATH=pc_path))
                if flags.returncode:
                    fail("GETTING_STARTED.md", f"pkg-config akidb-uninstalled: {flags.stderr.strip()}")
                    continue
                cc = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "example.c"]
                                    + flags.stdout.split() + ["-o", "example"], cwd=tmp,
                                    capture_output=True, text=True)
                if cc.returncode:
                    fail("GETTING_STARTED.md", f"the C program does not build:\n{cc.stderr}")
                    continue
                cmd = ["./example"]
            elif lang == "python":
                if not py:
                    fail("GETTING_STARTED.md", "no Python with akidb (AKIDB_DOCS_PYTHON) to run "
                         "the Python program")
                    continue
                with open(os.path.join(tmp, "example.py"), "w") as f:
                    f.write(code)
                cmd = [py, "example.py"]
            else:
                os.makedirs(os.path.join(tmp, "prog"))
                with open(os.path.join(tmp, "prog", "main.go"), "w") as f:
                    f.write(code)
                with open(os.path.join(tmp, "prog", "go.mod"), "w") as f:
                    f.write("module example\n\ngo 1.19\n\nrequire github.com/akidb/akidb-go v0.0.0\n\n"
                            f"replace github.com/akidb/akidb-go => {ROOT}/bindings/go\n")
                env["PKG_CONFIG_PATH"] = pc_path
                res = subprocess.run(["go", "build", "-o", "../example", "."],
                                     cwd=os.path.join(tmp, "prog"), capture_output=True,
                                     text=True, env=env)
                if res.returncode:
                    fail("GETTING_STARTED.md", f"the Go program does not build:\n{res.stderr}")
                    continue
                cmd = ["./example"]
            res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=env, timeout=120)
            ok()
            ran[lang] += 1
            if res.returncode:
                fail("GETTING_STARTED.md", f"the {lang} program failed (exit {res.returncode}):\n"
                     f"{res.stdout}{res.stderr}")
            elif want is None:
                fail("GETTING_STARTED.md", f"the {lang} program has no ```text output block after it")
            elif not same_output(res.stdout, want):
                fail("GETTING_STARTED.md", f"the {lang} program printed\n{res.stdout}\ninstead of\n{want}")
            else:
                print(f"check_docs: GETTING_STARTED.md {lang} program ok")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for lang, n in ran.items():
        if n == 0:
            fail("GETTING_STARTED.md", f"no {lang} program was run")


def json_holds(got, want):
    """got (a JSON value) holds want: objects may have more keys than want
    shows, arrays are equal in length, numbers equal to 6 digits."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and json_holds(got[k], v)
                                             for k, v in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and \
            all(json_holds(g, w) for g, w in zip(got, want))
    if isinstance(want, bool) or want is None or isinstance(want, str):
        return type(got) is type(want) and got == want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)) \
            and not isinstance(got, bool):
        return abs(got - want) <= 1e-6 * max(abs(got), abs(want), 1e-12)
    return False


def run_getting_started_http(build):
    """The "## HTTP" section of GETTING_STARTED.md: against a fresh
    akidb-server that creates its first admin key (as `make run` does),
    each ```sh block that runs curl is run with bash (AKIDB_KEY set to the
    key the server printed, http://127.0.0.1:8080 replaced by its address),
    and what it prints must be JSON holding the ```text block after it
    (json_holds: the doc may leave out fields such as timestamps)."""
    md = read(os.path.join(ROOT, "docs", "GETTING_STARTED.md"))
    m = re.search(r"^## HTTP\n(.*?)(?=^## |\Z)", md, re.M | re.S)
    if not m:
        fail("GETTING_STARTED.md", "has no \"## HTTP\" section")
        return
    blocks = list(re.finditer(r"^```(\w*)\n(.*?)^```", m.group(1), re.M | re.S))
    pairs = []
    for i, b in enumerate(blocks):
        if b.group(1) == "sh" and re.search(r"^curl\s", b.group(2), re.M):
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            if nxt is None or nxt.group(1) != "text":
                fail("GETTING_STARTED.md", f"HTTP: no ```text block after {b.group(2)[:60]!r}")
                continue
            pairs.append((b.group(2), nxt.group(2)))
    if not pairs:
        fail("GETTING_STARTED.md", "HTTP: no curl command to run")
        return
    srv = os.path.join(build, "akidb-server")
    tmp = tempfile.mkdtemp(prefix="akidb-doc-http-")
    proc = subprocess.Popen([srv, "--host", "127.0.0.1", "--port", "0", "--data-dir",
                             os.path.join(tmp, "db"), "--log-requests", "false"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import queue
        import threading
        # A thread reads its output (a select() on a buffered pipe would
        # miss lines already read into the buffer) and keeps it flowing,
        # so the server never blocks on a full pipe.
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout] and None,
                         daemon=True).start()
        url = key = None
        seen = []
        deadline = time.monotonic() + 20
        while (url is None or key is None) and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(line)
            u = re.search(r"listening on (http://\S+)", line)
            k = re.search(r"export AKIDB_KEY=(\S+)", line)
            url = u.group(1) if u else url
            key = k.group(1) if k else key
        if url is None or key is None:
            fail("akidb-server", "HTTP: did not print its address and an `export AKIDB_KEY=` "
                 f"line: {''.join(seen)!r}")
            return
        for cmd, want in pairs:
            ok()
            res = subprocess.run(["bash", "-c", cmd.replace("http://127.0.0.1:8080", url)],
                                 env=dict(os.environ, AKIDB_KEY=key), capture_output=True,
                                 text=True, timeout=60)
            try:
                got, expected = json.loads(res.stdout), json.loads(want)
            except ValueError as e:
                fail("GETTING_STARTED.md", f"HTTP: {cmd.splitlines()[0]}: not JSON ({e}): "
                     f"{res.stdout!r} {res.stderr!r} / {want!r}")
                continue
            if res.returncode or not json_holds(got, expected):
                fail("GETTING_STARTED.md", f"HTTP: {cmd.splitlines()[0]} answered\n"
                     f"{res.stdout}\ninstead of\n{want}")
            else:
                where = re.search(r"http://\S+", cmd).group(0)
                print(f"check_docs: GETTING_STARTED.md HTTP {where} ok")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# 5: the operations docs

OPS_DOCS = ["docs/S3.md", "docs/RUNBOOK.md", "deploy/README.md"]
# Lines run by these commands carry their own options, not akidb's.
OTHER_COMMANDS = {"docker", "helm", "kubectl", "systemctl", "journalctl", "curl", "aws",
                  "install", "printf", "rsync", "cp", "du", "fuser", "lsof", "sqlite3"}


def server_facts(build):
    """(flags, env names, [(method, template)], metric names) of the built
    akidb-server; metric names from a live /metrics."""
    srv = os.path.join(build, "akidb-server")
    res = subprocess.run([srv, "--help"], capture_output=True, text=True, timeout=30)
    flags = set(re.findall(r"^\s+(--[a-z][a-z0-9-]*)", res.stdout, re.M))
    envs = set(re.findall(r"\b(AKIDB_[A-Z0-9_]+)\b", res.stdout))
    res = subprocess.run([srv, "--list-routes"], capture_output=True, text=True, timeout=30)
    routes = [tuple(l.split()[:2]) for l in res.stdout.splitlines() if len(l.split()) >= 2]
    if not flags or not routes:
        fail("akidb-server", "--help or --list-routes printed nothing")
    metrics = set()
    tmp = tempfile.mkdtemp(prefix="akidb-doc-srv-")
    proc = subprocess.Popen([srv, "--no-auth", "--host", "127.0.0.1", "--port", "0",
                             "--data-dir", os.path.join(tmp, "db"), "--log-requests", "false"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        import select
        import urllib.request
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else ""
        m = re.search(r"listening on (http://\S+)", line)
        if not m:
            fail("akidb-server", f"did not start for the metrics check: {line.strip()!r}")
        else:
            with urllib.request.urlopen(m.group(1) + "/metrics", timeout=20) as r:
                text = r.read().decode()
            for name, kind in re.findall(r"^# TYPE (\S+) (\S+)", text, re.M):
                metrics.add(name)
                if kind == "histogram":
                    metrics |= {name + "_bucket", name + "_sum", name + "_count"}
            if not metrics:
                fail("akidb-server", "/metrics has no # TYPE lines")
            # Metrics printed only with a feature on (TLS: the certificate's
            # expiry): their "# TYPE" line in server/*.c stands for them.
            for path in glob.glob(os.path.join(ROOT, "server", "*.c")):
                metrics |= set(re.findall(r"# TYPE (akidb_\w+) ", read(path)))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return flags, envs, routes, metrics


def tool_flags(build, sub):
    res = subprocess.run([os.path.join(build, "akidb"), sub, "--help"], capture_output=True,
                         text=True, timeout=30)
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", res.stdout + res.stderr))


C_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "'": "'", "r": "\r"}
CONVERSION = re.compile(r"%[-+ #0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|z|j|t)?"
                        r"([diouxXeEfgGsScp%])")


def message_formats():
    """Every string literal of lib/ and server/ (adjacent literals joined,
    PRIu64-style macros read as %llu), as (regex, literal_text): %s and
    %c match anything, numbers match digits, the rest is literal."""
    out, plain = [], set()
    lit = r'"(?:[^"\\\n]|\\.)*"'
    run = re.compile(r"(?:%s|\s*PRI[diux]64\s*)(?:\s*(?:%s|PRI[diux]64))*" % (lit, lit))
    paths = glob.glob(os.path.join(ROOT, "lib", "*", "*.c")) + \
        glob.glob(os.path.join(ROOT, "server", "*.c"))
    for path in paths:
        for m in run.finditer(read(path)):
            parts = re.findall(r'"((?:[^"\\\n]|\\.)*)"|(PRI[diux]64)', m.group(0))
            text = "".join(a if a else "llu" for a, b in parts)
            text = re.sub(r"\\(.)", lambda e: C_ESCAPES.get(e.group(1), e.group(1)), text)
            text = text.rstrip("\n")
            if "%" not in text:
                if len(text) >= 12:
                    plain.add(text)
                continue
            rx, pos, fixed = "", 0, ""
            for c in CONVERSION.finditer(text):
                rx += re.escape(text[pos:c.start()])
                fixed += text[pos:c.start()]
                conv = c.group(1)
                rx += "%" if conv == "%" else ".*" if conv in "sSc" else r"[-+0-9a-fA-Fx.]+"
                pos = c.end()
            rx += re.escape(text[pos:])
            fixed += text[pos:]
            out.append((re.compile(rx, re.S), fixed))
    return out, plain


def message_ok(line, formats, plain):
    """A quoted message is one the code prints: it matches a format whose
    fixed text is at least 12 characters, or it matches a shorter format
    ("%s: %s: %s") and holds a literal of the sources (the "what" the
    caller passed, e.g. "cannot append to log").  An "akidb-server: "
    prefix (how main.c prints startup errors) is allowed."""
    cands = [line]
    if line.startswith("akidb-server: "):
        cands.append(line[len("akidb-server: "):])
    for cand in cands:
        for rx, fixed in formats:
            if not rx.fullmatch(cand):
                continue
            if len(fixed.replace("akidb-server: ", "")) >= 12:
                return True
            rest = cand[len("akidb-server: "):] if cand.startswith("akidb-server: ") else cand
            if any(p in rest for p in plain if "akidb-server" not in p):
                return True
    return False


def check_ops_docs(build, c_names, macros_lower, consts):
    flags, envs, routes, metrics = server_facts(build)
    route_rx = [(meth, re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(t)) + "$"))
                for meth, t in routes]
    formats, plain = message_formats()
    # Shell variables the server's own output tells users to set
    # ("export AKIDB_KEY=..."): in a string literal of server/.
    server_literals = set()
    for p in glob.glob(os.path.join(ROOT, "server", "*.c")):
        server_literals |= set(re.findall(r"\b(AKIDB_[A-Z0-9_]+)", " ".join(
            re.findall(r'"(?:[^"\\\n]|\\.)*"', read(p)))))
    tool_cache = {}
    for sub in set(re.findall(r"(?:^|\s|`)(?:build/)?akidb\s+([a-z][a-z-]*)",
                              "".join(read(os.path.join(ROOT, d)) for d in OPS_DOCS
                                      if os.path.isfile(os.path.join(ROOT, d))))):
        tool_cache[sub] = tool_flags(build, sub)
    for rel in OPS_DOCS:
        path = os.path.join(ROOT, rel)
        if not os.path.isfile(path):
            fail(rel, "does not exist")
            continue
        md = read(path)
        spans, _ = code_spans(md)
        # Flags, by the command they belong to.
        for kind, lang, code, _section in spans:
            if lang in ("text", "json", "logfmt", "c"):
                continue
            code = re.sub(r"\\\n", " ", code)
            for line in code.splitlines():
                words = [w for w in line.split() if w != "sudo"]
                if words and words[0] in OTHER_COMMANDS:
                    continue
                tm = re.search(r"(?:^|\s)(?:build/)?akidb\s+([a-z][a-z-]*)", line)
                if tm and "akidb-server" not in line:
                    sub = tm.group(1)
                    if sub not in tool_cache:
                        tool_cache[sub] = tool_flags(build, sub)
                    have, who = tool_cache[sub], f"akidb {sub} --help"
                elif "akidb-server" in line:
                    have, who = flags, "akidb-server --help"
                elif kind == "inline" and line.startswith("--"):
                    # A bare flag: the server's, or one of an akidb command
                    # the same file names.
                    have = flags.union(*tool_cache.values())
                    who = "akidb-server --help or the akidb commands named here"
                else:
                    continue
                for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line):
                    ok()
                    if flag not in have:
                        fail(rel, f"{flag}: not an option of {who}")
        # Settings and result codes.
        for name in sorted(set(re.findall(r"\b(AKIDB_[A-Z0-9_]*[A-Z0-9])\b", md))):
            ok()
            if name not in envs and name not in consts and name not in server_literals:
                fail(rel, f"{name}: neither a setting of akidb-server --help nor in include/akidb.h")
        # Routes: "METHOD /path" anywhere, and every /v1/... or /health/... path.
        for meth, p in re.findall(r"\b(GET|POST|PUT|DELETE|PATCH)\s+(/[\w/{}.-]*[\w}])", md):
            ok()
            if not any(m == meth and rx.match(p) for m, rx in route_rx):
                fail(rel, f"{meth} {p}: akidb-server has no such route")
        for p in set(re.findall(r"(?<![\w.:/-])(/(?:v1|health)/[\w/{}.-]*[\w}]|/metrics\b)", md)):
            ok()
            if not any(rx.match(p) for _m, rx in route_rx):
                fail(rel, f"{p}: akidb-server has no such route")
        # Metrics.
        for name in sorted(set(re.findall(r"(?<![\w/.-])((?:akidb|process)_[a-z0-9_]*[a-z0-9])\b", md))):
            if name in c_names or name in macros_lower:
                continue
            ok()
            if name not in metrics:
                fail(rel, f"{name}: neither in include/akidb.h nor a metric the server's "
                     "/metrics prints")
        # Quoted messages.
        for m in re.finditer(r"^```text\n(.*?)^```", md, re.M | re.S):
            for line in m.group(1).splitlines():
                line = line.strip()
                if not line:
                    continue
                ok()
                if not message_ok(line, formats, plain):
                    fail(rel, f"the message {line!r} matches no format string in lib/ or server/")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    build = os.path.abspath(argv[1])
    py = os.environ.get("AKIDB_DOCS_PYTHON")
    names = header_names()
    funcs, structs, enums, macros, consts, _ = names
    check_api_reference(build, funcs, structs, enums, macros)
    pyapi = python_api(py)
    if py is None:
        fail("check_docs", "AKIDB_DOCS_PYTHON is not set: Python names cannot be checked")
    metrics = set(pyapi["metrics"]) if pyapi else set()
    if pyapi and not metrics:
        fail("check_docs", "the library rendered no metrics")
    check_names(build, names, source_words(), metrics, pyapi, go_api())
    run_getting_started(build, py)
    run_getting_started_http(build)
    macros_lower = set(re.findall(r"^#\s*define\s+(akidb_\w+)", read(HEADER), re.M))
    check_ops_docs(build, funcs | structs | enums | {s.replace("struct ", "") for s in structs},
                   macros_lower, consts | macros)
    for f in failures:
        print(f"check_docs: FAIL {f}", file=sys.stderr)
    print(f"check_docs: {checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
