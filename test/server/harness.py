"""harness.py - start the real akidb-server and talk HTTP to it, for the tests.

Python 3 standard library only (the `python3` of a fresh machine).

- Server: starts the binary ($AKIDB_SERVER_BIN, default build/akidb-server) on
  127.0.0.1 port 0 with a temporary data directory, reads the port from its
  "listening on" line, stops it by PID with SIGTERM and reports the exit code.
  A server that does not come up fails the test with its stderr: nothing is
  skipped.  Under ASan the exit code of a clean SIGTERM shutdown is 0 only if
  no leak or error was found, and stderr is checked for sanitizer reports.
- call(): one request on a fresh connection; every JSON answer of a known
  route is validated against docs/openapi.yaml (served by the server as
  /v1/openapi.json), and its status must be one the document lists for
  that operation, so the document cannot drift from the server.
- validate(): the JSON Schema subset the document uses.
"""
import atexit
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("AKIDB_SERVER_BIN", os.path.join(ROOT, "build", "akidb-server")))
SCALE = float(os.environ.get("AKT_TIMEOUT_SCALE", "1"))
ADMIN_KEY = "test-admin-key-0123456789abcdef"

_openapi = None
VALIDATED = {"responses": 0}

# Every server's directory lives under one root, removed when the run ends
# (AKIDB_KEEP_TMP=1 keeps it for a post-mortem).
_TMP_ROOT = tempfile.mkdtemp(prefix="akidb-srv-tests-")
if not os.environ.get("AKIDB_KEEP_TMP"):
    atexit.register(shutil.rmtree, _TMP_ROOT, True)


class Server:
    """One akidb-server process."""

    def __init__(self, *args, data_dir=None, admin_key=ADMIN_KEY, env=None, workdir=None,
                 ca=None):
        self.args = list(args)
        self.ca = ca                # PEM file: the server speaks TLS, verified against it
        self.tmp = tempfile.mkdtemp(prefix="srv-", dir=_TMP_ROOT)
        self.data = data_dir or os.path.join(self.tmp, "data")
        self.admin_key = admin_key
        self.extra_env = env or {}
        self.workdir = workdir
        self.proc = None
        self.port = None
        self.stdout_lines = []
        self.err_path = None

    def start(self, expect_fail=False):
        env = os.environ.copy()
        env.pop("AKIDB_BOOTSTRAP_ADMIN_KEY", None)
        if self.admin_key is not None:
            env["AKIDB_BOOTSTRAP_ADMIN_KEY"] = self.admin_key
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        env.update(self.extra_env)
        cmd = [BIN, "--port", "0", "--data-dir", self.data] + self.args
        self.err_path = os.path.join(self.tmp, "stderr.%d" % int(time.time() * 1e6))
        self.stdout_lines = []
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env,
                                         cwd=self.workdir)
        got = threading.Event()

        def reader():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stdout_lines.append(line)
                m = re.search(r"listening on https?://[^ ]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    got.set()
            got.set()

        threading.Thread(target=reader, daemon=True).start()
        got.wait(30 * SCALE)
        if expect_fail:
            rc = self.proc.wait(30 * SCALE)
            self.proc.stdout.close()
            self.proc = None
            return rc
        if not self.port:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("akidb-server did not start: %s\nstdout: %s\nstderr: %s" % (
                " ".join(cmd), "\n".join(self.stdout_lines), self.stderr()))
        return self

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signal the server and wait; return its exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout * SCALE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("akidb-server did not stop within %d s of %s" % (timeout, sig))
        self.proc.stdout.close()
        self.proc = None
        return rc

    def stop_clean(self, testcase):
        rc = self.stop()
        err = self.stderr()
        testcase.assertFalse(re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", err),
                             "sanitizer report:\n" + err[-6000:])
        testcase.assertEqual(rc, 0, "akidb-server exit code %r; stderr tail:\n%s" % (rc, err[-3000:]))

    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.ca else "http", self.port)

    def tls_context(self, cert=None, key=None):
        """A client context that trusts the test CA (TLS 1.3, ALPN http/1.1)."""
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.set_alpn_protocols(["http/1.1"])
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.text = body.decode("utf-8", "replace")
        self.raw = body
        self.json = None
        ctype = headers.get("content-type", "")
        if ctype.startswith("application/json") and body:
            self.json = json.loads(body)

    def __repr__(self):
        return "<%d %s>" % (self.status, self.text[:300])


def openapi(srv=None, cert=None):
    global _openapi
    if _openapi is None:
        if srv is None:
            raise RuntimeError("no server to fetch the OpenAPI document from")
        r = call(srv, "GET", "/v1/openapi.json", key=None, check=False, cert=cert)
        assert r.status == 200, r
        _openapi = r.json
    return _openapi


def call(srv, method, path, body=None, key=ADMIN_KEY, headers=None, raw=None, check=True,
         timeout=60, cert=None):
    """One request on a new connection.  body: JSON-encoded; raw: bytes as is.
    Over TLS when the server has a CA; cert = (certfile, keyfile) for mTLS."""
    if srv.ca:
        ctx = srv.tls_context(*(cert or (None, None)))
        conn = http.client.HTTPSConnection("localhost", srv.port, timeout=timeout * SCALE,
                                           context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout * SCALE)
    h = dict(headers or {})
    if key is not None:
        h["Authorization"] = "Bearer " + key
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    resp = Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    conn.close()
    if check:
        check_response(srv, method, path, resp, cert)
    return resp


# ---------------------------------------------------------------------------
# OpenAPI checks

def _resolve(doc, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part]
        seen += 1
        assert seen < 20, "reference loop"
    return node


def find_operation(doc, method, path):
    """The (template, operation) of the document that serves method+path."""
    path = path.split("?", 1)[0]
    for tmpl, item in doc["paths"].items():
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(tmpl)) + "$"
        if re.match(rx, path):
            op = item.get(method.lower())
            if op is not None:
                return tmpl, op
    return None, None


class SchemaError(AssertionError):
    pass


def validate(schema, value, doc, where="$"):
    schema = _resolve(doc, schema)
    if not isinstance(schema, dict):
        return
    for key in ("oneOf", "anyOf"):
        if key in schema:
            errs = []
            ok = 0
            for sub in schema[key]:
                try:
                    validate(sub, value, doc, where)
                    ok += 1
                except SchemaError as e:
                    errs.append(str(e))
            if ok == 0 or (key == "oneOf" and ok != 1):
                raise SchemaError("%s: %s failed: %s" % (where, key, errs))
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        def is_type(tn):
            return {
                "object": isinstance(value, dict),
                "array": isinstance(value, list),
                "string": isinstance(value, str),
                "boolean": isinstance(value, bool),
                "integer": isinstance(value, int) and not isinstance(value, bool),
                "number": isinstance(value, (int, float)) and not isinstance(value, bool),
                "null": value is None,
            }[tn]
        if not any(is_type(tn) for tn in types):
            raise SchemaError("%s: %r is not of type %s" % (where, value, t))
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError("%s: %r not in %r" % (where, value, schema["enum"]))
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise SchemaError("%s: %r does not match %s" % (where, value, schema["pattern"]))
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1 << 62):
            raise SchemaError("%s: length of %r out of range" % (where, value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError("%s: %r < minimum %r" % (where, value, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError("%s: %r > maximum %r" % (where, value, schema["maximum"]))
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1 << 62):
            raise SchemaError("%s: %d items out of range" % (where, len(value)))
        if "items" in schema:
            for i, v in enumerate(value):
                validate(schema["items"], v, doc, "%s[%d]" % (where, i))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in value:
                raise SchemaError("%s: missing required %r" % (where, req))
        for k, v in value.items():
            if k in props:
                validate(props[k], v, doc, "%s.%s" % (where, k))
            else:
                ap = schema.get("additionalProperties", True)
                if ap is False:
                    raise SchemaError("%s: unexpected property %r" % (where, k))
                if isinstance(ap, dict):
                    validate(ap, v, doc, "%s.%s" % (where, k))


def check_response(srv, method, path, resp, cert=None):
    """Error shape everywhere; the documented schema and status for routes."""
    if resp.status >= 400:
        assert resp.json is not None, "error without a JSON body: %r" % resp
        assert set(resp.json) == {"error"}, resp
        assert set(resp.json["error"]) == {"code", "message"}, resp
        assert isinstance(resp.json["error"]["code"], str) and resp.json["error"]["code"], resp
        assert isinstance(resp.json["error"]["message"], str), resp
    if resp.status >= 500 and resp.status not in (503, 507):
        # A 500 must never come from bad input: the tests send none that
        # should give one, so any 500 is a bug.
        raise AssertionError("unexpected %d: %r" % (resp.status, resp))
    doc = openapi(srv, cert)
    tmpl, op = find_operation(doc, method, path)
    if op is None:
        return
    responses = op.get("responses", {})
    spec = responses.get(str(resp.status))
    if spec is None:
        raise AssertionError("%s %s answered %d, which docs/openapi.yaml does not list for %s %s"
                             % (method, path, resp.status, method, tmpl))
    spec = _resolve(doc, spec)
    content = spec.get("content", {})
    if resp.status == 204:
        assert resp.raw == b"", resp
        return
    media = content.get("application/json")
    if media and "schema" in media:
        assert resp.json is not None, "%s %s: JSON expected: %r" % (method, path, resp)
        try:
            validate(media["schema"], resp.json, doc)
        except SchemaError as e:
            raise AssertionError("%s %s -> %d does not match its schema: %s\n%s" % (
                method, path, resp.status, e, resp.text[:2000]))
        VALIDATED["responses"] += 1


# ---------------------------------------------------------------------------
# Raw sockets, for what http.client will not send

def raw_exchange(srv, data, read_timeout=5.0, until_close=True):
    """Send bytes, read until the server closes (or the timeout)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=read_timeout * SCALE)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if not until_close and b"\r\n\r\n" in out:
                break
        return out
    finally:
        s.close()


def parse_responses(data):
    """Split a byte stream into (status, headers, body) triples."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out
