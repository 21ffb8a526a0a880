#!/usr/bin/python3
"""check_deploy.py - the deployment files in deploy/ cannot drift from the server.

    /usr/bin/python3 test/check_deploy.py BUILD/akidb-server     (make test)

Docker, helm and a Kubernetes cluster are not available where the tests
run, so this checks what can be checked without them, each failure printed
with the file and what is wrong:

  1. every --flag and AKIDB_* variable named in deploy/Dockerfile, the
     systemd unit and the Helm chart (templates, values, comments) is one
     `akidb-server --help` lists; the command lines themselves (the
     Dockerfile's CMD with its ENV, the unit's ExecStart, the chart's args
     and env with values.yaml filled in) are parsed by the server itself:
     it is run with them plus --help, which validates every setting
     (unknown flag, bad value, --no-auth off loopback) and exits;
  2. Chart.yaml and values.yaml parse (python3-yaml); each template parses
     as YAML once its template actions are blanked out; every .Values.X
     a template uses exists in values.yaml, and every value in values.yaml
     is used by a template;
  3. the probe paths (Helm liveness/readiness, the Dockerfile's
     HEALTHCHECK) are GET routes of docs/openapi.yaml and of the server
     (--list-routes): liveness on /health/live, readiness on /health/ready;
  4. the systemd unit passes `systemd-analyze verify` (with ExecStart
     pointed at the built binary, since /usr/local/bin holds none here)
     and has the sandboxing the deploy brief requires; without
     systemd-analyze this check is reported as NOT RUN, never as passed;
  5. the Dockerfile: a debian:bookworm build stage running make, a
     debian:bookworm-slim runtime whose packages are exactly the runtime
     libraries of scripts/deps.sh's core -dev packages (from each -dev
     package's Depends, as dpkg knows them) plus a short list of named
     extras, no -dev package; every shared library the built server needs
     (NEEDED) comes from one of them (dpkg -S) or from libc6 (in the base
     image); non-root USER; the data directory is the VOLUME.

  6. monitoring: deploy/prometheus/*.yaml (alert rules) and
     deploy/grafana/*.json (dashboard) parse; every metric name in each
     PromQL expression is one a live server prints: a server is started
     here (127.0.0.1, port 0, a temporary directory), answers one request,
     and its /metrics TYPE lines are the list (plus the metrics server/*.c
     prints only with a feature on, such as the TLS certificate's expiry);
     a label matched in a selector must appear on that metric's samples
     when it has labelled samples.  promtool is not available: the PromQL
     syntax itself is not checked.  The chart's ServiceMonitor scrapes a
     route the server has.

Exit status 1 if anything failed; the last line gives the counts.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
UNIT = os.path.join(DEPLOY, "systemd", "akidb-server.service")
CHART = os.path.join(DEPLOY, "helm", "akidb")

# Runtime packages that are not a library of the server, and why.
DOCKER_EXTRAS = {
    "ca-certificates": "trust for an https S3 endpoint",
    "curl": "the HEALTHCHECK's HTTP client",
}
# Commands whose own --options appear in the deploy files' comments.
OTHER_COMMANDS = ("docker", "systemctl", "journalctl", "helm", "kubectl", "install ",
                  "apt-get", "useradd", "groupadd", "curl", "HEALTHCHECK", "COPY", "RUN")

failures, passed, not_run = [], 0, []

# The C loader when python3-yaml has it (openapi.yaml is large).
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Result code names (AKIDB_BUSY, ...) may be named in comments.
RESULT_CODES = {"AKIDB_" + n for n in re.findall(
    r"X\((\w+),\s*\d+", open(os.path.join(ROOT, "include", "akidb.h")).read())}


def fail(where, msg):
    failures.append(f"{os.path.relpath(where, ROOT) if os.path.isabs(where) else where}: {msg}")


def ok():
    global passed
    passed += 1


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def server_help(binary):
    res = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    if res.returncode:
        sys.exit(f"check_deploy: {binary} --help failed: {res.stderr.strip()}")
    text = res.stdout
    flags = set(re.findall(r"^\s+(--[a-z][a-z0-9-]*)", text, re.M)) | {"-h"}
    envs = set(re.findall(r"\b(AKIDB_[A-Z0-9_]+)\b", text))
    return flags, envs


def server_accepts(binary, args, env, where):
    """Run the server with args + --help: config_load() checks every setting
    before --help is acted on, so exit 0 means the command line is valid."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("AKIDB_")}
    e.update(env)
    res = subprocess.run([binary] + args + ["--help"], capture_output=True, text=True,
                         env=e, timeout=10)
    ok()
    if res.returncode:
        fail(where, f"akidb-server refuses {' '.join(args)} (env {sorted(env)}): "
             f"{res.stderr.strip()}")


def check_names(path, text, flags, envs):
    """Every --flag (outside other commands' lines) and AKIDB_* name."""
    text = re.sub(r"\\\n", " ", text)
    for line in text.splitlines():
        own = line.find("akidb-server")
        if any(c in line and (own < 0 or line.find(c) < own) for c in OTHER_COMMANDS):
            continue
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line):
            ok()
            if flag not in flags:
                fail(path, f"names {flag}, which akidb-server --help does not list")
    for env in sorted(set(re.findall(r"\b(AKIDB_[A-Z0-9_]*[A-Z0-9])\b", text))):
        ok()
        if env not in envs and env not in RESULT_CODES:
            fail(path, f"names {env}, which akidb-server --help does not list")


# --------------------------------------------------------------------------
# Routes


def openapi_gets():
    spec = yaml.load(read(os.path.join(ROOT, "docs", "openapi.yaml")), Loader=LOADER)
    return {p for p, ops in spec.get("paths", {}).items() if isinstance(ops, dict) and "get" in ops}


def server_gets(binary):
    res = subprocess.run([binary, "--list-routes"], capture_output=True, text=True, timeout=10)
    return {l.split()[1] for l in res.stdout.splitlines() if l.startswith("GET ")}


def check_probe(where, kind, path, gets_api, gets_srv):
    want = {"liveness": "/health/live", "readiness": "/health/ready"}[kind]
    ok()
    if path not in gets_api:
        fail(where, f"{kind} probe {path} is not a GET route of docs/openapi.yaml")
    elif path not in gets_srv:
        fail(where, f"{kind} probe {path} is not a route of akidb-server --list-routes")
    elif path != want:
        fail(where, f"{kind} probe on {path}, expected {want}")


# --------------------------------------------------------------------------
# 5: Dockerfile


def docker_instructions(text):
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            word, _, rest = s.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def deps_core_dev():
    table = re.search(r"TABLE='(.*?)'", read(os.path.join(ROOT, "scripts", "deps.sh")), re.S)
    devs = []
    for line in table.group(1).splitlines():
        f = line.split()
        if len(f) >= 3 and f[0] == "core" and f[1] == "pkg" and f[2].endswith("-dev"):
            devs.append(f[2])
    return devs


def runtime_libs(devs):
    """{dev: [runtime library packages it Depends on]}, from one dpkg-query;
    a package dpkg does not know is left out."""
    res = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Status}\t${Depends}\n"] + devs,
                         capture_output=True, text=True)
    out = {}
    for line in res.stdout.splitlines():
        pkg, status, deps = (line.split("\t") + ["", ""])[:3]
        if "installed" not in status.split():
            continue
        libs = []
        for alt in deps.split(","):
            name = alt.split("|")[0].split("(")[0].split(":")[0].strip()
            if name.startswith("lib") and not name.endswith("-dev"):
                libs.append(name)
        out[pkg] = libs
    return out


def check_dockerfile(binary, flags, envs, gets_api, gets_srv):
    text = read(DOCKERFILE)
    check_names(DOCKERFILE, text, flags, envs)
    ins = docker_instructions(text)
    froms = [rest for word, rest in ins if word == "FROM"]
    ok()
    if len(froms) != 2 or not re.match(r"debian:bookworm\s+AS\s+\w+", froms[0], re.I) \
            or not re.match(r"debian:bookworm-slim\b", froms[1]):
        fail(DOCKERFILE, f"expected FROM debian:bookworm AS build, then debian:bookworm-slim; "
             f"found {froms}")
    stage = -1
    runs = [[], []]
    env, user, volumes, cmd, entry, health = {}, None, [], None, None, None
    for word, rest in ins:
        if word == "FROM":
            stage += 1
            continue
        if word == "RUN":
            runs[min(stage, 1)].append(rest)
        if stage < 1:
            continue
        if word == "ENV":
            for k, v in re.findall(r"(\w+)=(\S+)", rest):
                env[k] = v
        elif word == "USER":
            user = rest.split(":")[0]
        elif word == "VOLUME":
            volumes += json.loads(rest) if rest.startswith("[") else rest.split()
        elif word == "CMD":
            cmd = json.loads(rest)
        elif word == "ENTRYPOINT":
            entry = json.loads(rest)
        elif word == "HEALTHCHECK":
            health = rest
    ok()
    if not any(re.search(r"\bmake\b", r) for r in runs[0]):
        fail(DOCKERFILE, "the build stage does not run the project's make")
    ok()
    if not user or user in ("root", "0"):
        fail(DOCKERFILE, f"the runtime stage runs as {user or 'root (no USER)'}")
    # The command line, validated by the server itself.
    ok()
    if not entry or not entry[0].endswith("/akidb-server"):
        fail(DOCKERFILE, f"ENTRYPOINT is {entry}, not akidb-server")
    args = (entry or [])[1:] + (cmd or [])
    server_accepts(binary, args, {k: v for k, v in env.items() if k.startswith("AKIDB_")},
                   DOCKERFILE)
    data_dir = env.get("AKIDB_DATA_DIR")
    if "--data-dir" in args:
        data_dir = args[args.index("--data-dir") + 1]
    host = args[args.index("--host") + 1] if "--host" in args else env.get("AKIDB_HOST")
    ok()
    if host != "0.0.0.0":
        fail(DOCKERFILE, f"the server listens on {host}, not 0.0.0.0")
    ok()
    if not data_dir or data_dir not in volumes:
        fail(DOCKERFILE, f"the data directory {data_dir} is not a VOLUME ({volumes})")
    ok()
    m = re.search(r"https?://[^/\s]+(/[^\s\"']*)", health or "")
    if not m:
        fail(DOCKERFILE, "no HEALTHCHECK with an HTTP URL")
    else:
        check_probe(DOCKERFILE, "liveness", m.group(1), gets_api, gets_srv)
    # Runtime packages against deps.sh's core -dev packages.
    pkgs = set()
    for r in runs[1]:
        m = re.search(r"apt-get install\s+(.*?)(?:&&|$)", r)
        if m:
            pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    ok()
    if not pkgs:
        fail(DOCKERFILE, "the runtime stage installs no packages")
    want = set()
    devs = deps_core_dev()
    known = runtime_libs(devs)
    for dev in devs:
        libs = known.get(dev)
        ok()
        if libs is None:
            fail("scripts/deps.sh", f"{dev} is not installed: cannot read its Depends "
                 "(run scripts/deps.sh core)")
            continue
        if not libs:
            fail("scripts/deps.sh", f"{dev} depends on no runtime library package")
        want |= set(libs)
    for p in sorted(want):
        ok()
        if p not in pkgs:
            fail(DOCKERFILE, f"the runtime stage lacks {p} (the runtime library of a core "
                 "-dev package in scripts/deps.sh)")
    for p in sorted(pkgs - want):
        ok()
        if p.endswith("-dev"):
            fail(DOCKERFILE, f"the runtime stage installs {p}, a -dev package")
        elif p not in DOCKER_EXTRAS:
            fail(DOCKERFILE, f"the runtime stage installs {p}, which is neither the runtime "
                 "of a deps.sh core package nor a listed extra (DOCKER_EXTRAS)")
    # Every NEEDED library of the built server comes from those packages.
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True)
    paths = re.findall(r"=>\s+(/\S+)", ldd.stdout)
    owners = {}
    # Exact paths (a glob makes dpkg scan every file list: seconds); with
    # the /usr merge a library may be registered under /lib or /usr/lib.
    variants = set()
    for p in paths:
        variants |= {p, re.sub(r"^/usr/", "/", p), re.sub(r"^/lib", "/usr/lib", p)}
    res = subprocess.run(["dpkg", "-S"] + sorted(variants), capture_output=True, text=True)
    for line in res.stdout.splitlines():
        pkgs_of, _, file = line.partition(": ")
        if line.startswith("diversion"):
            continue
        for pk in pkgs_of.split(","):
            owners.setdefault(os.path.basename(file), set()).add(pk.strip().split(":")[0])
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]",
                        subprocess.run(["readelf", "-d", binary], capture_output=True,
                                       text=True).stdout)
    ok()
    if not needed:
        fail(binary, "readelf shows no NEEDED libraries")
    for so in needed:
        ok()
        own = owners.get(so, set())
        if so.startswith("ld-linux"):
            own = {"libc6"}     # the dynamic loader: ldd prints no "=>" for it
        if not own & (pkgs | {"libc6"}):
            fail(DOCKERFILE, f"the server needs {so} (package {sorted(own) or '?'}), which the "
                 "runtime stage does not install")


# --------------------------------------------------------------------------
# 4: systemd


def unit_values(text, key):
    return [l.split("=", 1)[1].strip() for l in text.splitlines() if l.startswith(key + "=")]


def check_unit(binary, flags, envs):
    text = read(UNIT)
    check_names(UNIT, text, flags, envs)
    execs = unit_values(text, "ExecStart")
    ok()
    if len(execs) != 1 or not execs[0].split()[0].endswith("/akidb-server"):
        fail(UNIT, f"ExecStart is {execs}, not one akidb-server command")
        return
    args = execs[0].split()[1:]
    server_accepts(binary, args, {}, UNIT)
    data_dir = args[args.index("--data-dir") + 1] if "--data-dir" in args else None
    required = {"ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
                "ProtectHome": "yes"}
    for key, val in required.items():
        ok()
        if val not in unit_values(text, key):
            fail(UNIT, f"lacks {key}={val}")
    ok()
    if "yes" not in unit_values(text, "DynamicUser") and not unit_values(text, "User"):
        fail(UNIT, "neither DynamicUser=yes nor a dedicated User=")
    ok()
    rw = " ".join(unit_values(text, "ReadWritePaths")).split()
    if not data_dir or data_dir not in rw:
        fail(UNIT, f"the data directory {data_dir} is not in ReadWritePaths ({rw})")
    tool = shutil.which("systemd-analyze")
    if not tool:
        not_run.append("systemd-analyze verify (systemd-analyze is not installed)")
        return
    tmp = tempfile.mkdtemp(prefix="akidb-unit-")
    try:
        unit = os.path.join(tmp, os.path.basename(UNIT))
        with open(unit, "w") as f:
            f.write(text.replace(execs[0].split()[0], os.path.abspath(binary)))
        res = subprocess.run([tool, "verify", unit], capture_output=True, text=True, timeout=30)
        ok()
        out = (res.stdout + res.stderr).strip()
        if res.returncode or out:
            fail(UNIT, f"systemd-analyze verify: exit {res.returncode}: {out}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# 2 and 3: Helm


def lookup(values, dotted):
    node = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None, False
        node = node[part]
    return node, True


def leaves(node, prefix=""):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix


def render_for_parsing(text, values):
    """Blank out template actions so the YAML structure can be parsed:
    comments and control lines go, `{{ .Values.x }}` (optionally | quote)
    becomes the value, any other expression a placeholder."""
    text = re.sub(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        if re.fullmatch(r"\s*(\{\{-?.*?-?\}\}\s*)+", line):
            continue

        def sub(m):
            expr = m.group(1).strip()
            v = re.fullmatch(r"\.Values\.([\w.]+)(\s*\|\s*quote)?", expr)
            if v:
                val, found = lookup(values, v.group(1))
                if found and not isinstance(val, (dict, list)):
                    return json.dumps(str(val)) if v.group(2) else str(val)
            return "placeholder"
        out.append(re.sub(r"\{\{-?(.*?)-?\}\}", sub, line))
    return "\n".join(out)


def check_helm(binary, flags, envs, gets_api, gets_srv):
    chart_path = os.path.join(CHART, "Chart.yaml")
    values_path = os.path.join(CHART, "values.yaml")
    try:
        chart = yaml.load(read(chart_path), Loader=LOADER)
        ok()
        for key in ("apiVersion", "name", "version", "appVersion"):
            ok()
            if not chart.get(key):
                fail(chart_path, f"no {key}")
        if chart.get("apiVersion") != "v2":
            fail(chart_path, "apiVersion must be v2 (Helm 3)")
    except yaml.YAMLError as e:
        fail(chart_path, f"does not parse: {e}")
    try:
        values = yaml.load(read(values_path), Loader=LOADER)
        ok()
    except yaml.YAMLError as e:
        fail(values_path, f"does not parse: {e}")
        return
    check_names(values_path, read(values_path), flags, envs)
    templates = sorted(glob.glob(os.path.join(CHART, "templates", "*")))
    used = set()
    kinds = {}
    for path in templates:
        text = read(path)
        check_names(path, text, flags, envs)
        for ref in re.findall(r"\.Values\.([A-Za-z_][\w.]*)", text):
            ref = ref.rstrip(".")
            used.add(ref)
            ok()
            if not lookup(values, ref)[1]:
                fail(path, f"uses .Values.{ref}, which values.yaml does not define")
        if not path.endswith(".yaml"):
            continue
        try:
            docs = [d for d in yaml.load_all(render_for_parsing(text, values), Loader=LOADER) if d]
            ok()
        except yaml.YAMLError as e:
            fail(path, f"does not parse as YAML once template actions are blanked: {e}")
            continue
        for d in docs:
            kinds.setdefault(d.get("kind"), []).append((path, d))
    for leaf in leaves(values):
        ok()
        if not any(leaf == u or leaf.startswith(u + ".") for u in used):
            fail(values_path, f"{leaf} is not used by any template")
    for kind in ("StatefulSet", "Service", "Secret"):
        ok()
        if kind not in kinds:
            fail(CHART, f"no template makes a {kind}")
    for path, sm in kinds.get("ServiceMonitor", []):
        for ep in sm["spec"].get("endpoints", []):
            ok()
            if ep.get("path") not in gets_api or ep.get("path") not in gets_srv:
                fail(path, f"scrapes {ep.get('path')}, not a GET route of the server")
    for path, sts in kinds.get("StatefulSet", []):
        spec = sts["spec"]
        ok()
        if not spec.get("volumeClaimTemplates"):
            fail(path, "the StatefulSet has no volumeClaimTemplates (PVC for the data directory)")
        c = spec["template"]["spec"]["containers"][0]
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
        claims = [v["metadata"]["name"] for v in spec.get("volumeClaimTemplates", [])]
        args = [str(a) for a in c.get("args", [])]
        data_dir = args[args.index("--data-dir") + 1] if "--data-dir" in args else None
        ok()
        if not any(mounts.get(n) == data_dir for n in claims):
            fail(path, f"the data directory {data_dir} is not mounted from the PVC")
        env = {}
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = str(e["value"])
        # Secret-sourced variables: a stand-in value so the check can run.
        for e in c.get("env", []):
            if "valueFrom" in e:
                env[e["name"]] = "x" * 32
        env = {k: v for k, v in env.items() if v != "placeholder"}
        server_accepts(binary, args, env, path)
        ok()
        if "AKIDB_BOOTSTRAP_ADMIN_KEY" not in env:
            fail(path, "no AKIDB_BOOTSTRAP_ADMIN_KEY from a Secret")
        for kind, key in (("liveness", "livenessProbe"), ("readiness", "readinessProbe")):
            ok()
            probe = c.get(key, {}).get("httpGet", {})
            if not probe:
                fail(path, f"no {key} with httpGet")
                continue
            check_probe(path, kind, str(probe.get("path")), gets_api, gets_srv)


# --------------------------------------------------------------------------
# 6: alert rules and dashboard


PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                "group_right", "bool", "offset", "inf", "nan"}
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def live_metrics(binary):
    """{metric name: set of label names on its samples} of a live server."""
    import select
    import urllib.request
    tmp = tempfile.mkdtemp(prefix="akidb-deploy-srv-")
    proc = subprocess.Popen([binary, "--no-auth", "--host", "127.0.0.1", "--port", "0",
                             "--data-dir", os.path.join(tmp, "db"), "--log-requests", "false"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    names = {}
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else ""
        m = re.search(r"listening on (http://\S+)", line)
        if not m:
            fail(binary, f"did not start for the metrics check: {line.strip()!r}")
            return None
        urllib.request.urlopen(m.group(1) + "/health/live", timeout=20).read()
        text = urllib.request.urlopen(m.group(1) + "/metrics", timeout=20).read().decode()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)", text, re.M):
        names.setdefault(name, set())
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names.setdefault(name + suffix, set())
    for name, labels in re.findall(r"^([A-Za-z_:][\w:]*)\{([^}]*)\}", text, re.M):
        names.setdefault(name, set()).update(re.findall(r"(\w+)=\"", labels))
    ok()
    if not names:
        fail(binary, "/metrics printed no # TYPE lines")
    for path in glob.glob(os.path.join(ROOT, "server", "*.c")):
        for name in re.findall(r"# TYPE (akidb_\w+) ", read(path)):
            names.setdefault(name, set())
    return names


def check_expr(where, expr, metrics):
    """The metric names (and matched labels) of one PromQL expression."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    for name, sel in re.findall(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}", e):
        if name in metrics and metrics[name]:
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", sel):
                ok()
                if label not in metrics[name] and label not in ("instance", "job"):
                    fail(where, f"{name}{{{label}=...}}: the server's {name} samples have no "
                         f"label {label} (they have {sorted(metrics[name])})")
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    found = 0
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)\b(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        found += 1
        ok()
        if word not in metrics and word not in PROMETHEUS_OWN:
            fail(where, f"{word}: not a metric the server's /metrics prints (in {expr!r})")
    ok()
    if not found:
        fail(where, f"no metric in {expr!r}")


def check_monitoring(binary):
    rules = sorted(glob.glob(os.path.join(DEPLOY, "prometheus", "*.yaml")))
    dashboards = sorted(glob.glob(os.path.join(DEPLOY, "grafana", "*.json")))
    ok()
    if not rules or not dashboards:
        fail(DEPLOY, "no alert rules (prometheus/*.yaml) or no dashboard (grafana/*.json)")
    metrics = live_metrics(binary)
    if metrics is None:
        return
    for path in rules:
        try:
            doc = yaml.load(read(path), Loader=LOADER)
            ok()
        except yaml.YAMLError as e:
            fail(path, f"does not parse: {e}")
            continue
        n = 0
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                n += 1
                ok()
                if not rule.get("alert") or not rule.get("expr"):
                    fail(path, f"a rule without alert or expr: {rule}")
                    continue
                check_expr(f"{os.path.relpath(path, ROOT)} {rule['alert']}", str(rule["expr"]),
                           metrics)
        ok()
        if n == 0:
            fail(path, "no rules")
    for path in dashboards:
        try:
            dash = json.loads(read(path))
            ok()
        except ValueError as e:
            fail(path, f"does not parse: {e}")
            continue
        exprs = [t["expr"] for p in dash.get("panels", []) for t in p.get("targets", [])
                 if "expr" in t]
        ok()
        if not exprs:
            fail(path, "no panel has a query")
        for e in exprs:
            check_expr(os.path.relpath(path, ROOT), e, metrics)
        for v in dash.get("templating", {}).get("list", []):
            m = re.match(r"label_values\((\w+)", str(v.get("query", "")))
            if m:
                ok()
                if m.group(1) not in metrics:
                    fail(path, f"variable {v.get('name')}: {m.group(1)} is not a metric")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = argv[1]
    flags, envs = server_help(binary)
    gets_api, gets_srv = openapi_gets(), server_gets(binary)
    check_dockerfile(binary, flags, envs, gets_api, gets_srv)
    check_unit(binary, flags, envs)
    check_helm(binary, flags, envs, gets_api, gets_srv)
    check_monitoring(binary)
    for f in failures:
        print(f"check_deploy: FAIL {f}", file=sys.stderr)
    for n in not_run:
        print(f"check_deploy: NOT RUN {n}")
    print(f"check_deploy: {passed - len(failures)} passed, {len(failures)} failed, "
          f"{len(not_run)} not run")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
