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
     equal the ```text block that follows it.

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
    tool = os.path.join(build, "akidb")
    res = subprocess.run([tool, "--help"], capture_output=True, text=True)
    text = res.stdout + res.stderr
    subs = set(re.findall(r"^\s*akidb\s+([a-z-]+)", text, re.M))
    for line in text.splitlines():   # "snapshot create|list|restore|delete"
        m = re.match(r"^\s*akidb\s+\w+\s+([a-z|]+)\s", line)
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
    docs = [p for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
            if os.path.basename(p) != "API.md"]
    docs += [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "CHANGELOG.md")]
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
            if name not in macros and name not in consts and name not in src_words:
                fail(rel, f"names {name}, which is not in include/akidb.h or the sources")
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
    for f in failures:
        print(f"check_docs: FAIL {f}", file=sys.stderr)
    print(f"check_docs: {checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
