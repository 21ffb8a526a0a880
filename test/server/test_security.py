#!/usr/bin/env python3
"""test_security.py - black-box tests of akidb-server's security (issue 15).

    python3 test/server/test_security.py [-v] [TestClass[.test_name] ...]

Also run by test_server.py (so `make test` and `make asan` run them).  Every
test starts the real binary; certificates and keys are made at test time by
the `openssl` command (secutil.py), nothing secret is committed.

  TestAuthMatrix     API keys, JWTs (HS256, RS256, ES256: valid, expired,
                     not yet valid, wrong signature, alg none, HS/RS
                     confusion, missing tenant claim, ...) and mTLS
                     identities x roles x routes x tenants: a literal table
                     with the expected status of every cell
  TestTLS            curl --tlsv1.3, openssl s_client (1.2 refused unless
                     allowed, mTLS without a certificate refused, a foreign
                     CA refused), ALPN, plain HTTP to the TLS port, the
                     handshake deadline, SIGHUP reload without dropping a
                     connection, the key file's mode
  TestJWT            leeway, key rotation by SIGHUP, secret file mode,
                     tokens and keys never in the logs
  TestAudit          each audited action and its line; rotation; metrics
  TestRuntimeConfig  GET/PUT /v1/admin/config: validation, effect, restart
  TestSecureDefaults X-Request-Id and security headers on every response,
                     file modes, brute-force protection
"""
import json
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import secutil  # noqa: E402
from harness import ADMIN_KEY, SCALE, Server, call, parse_responses, raw_exchange  # noqa: E402

_PKI = None


def pki():
    """One PKI for the whole run (key generation is the slow part)."""
    global _PKI
    if _PKI is None:
        d = tempfile.mkdtemp(prefix="pki-", dir=harness._TMP_ROOT)
        p = secutil.PKI(d)
        p.server = p.issue("server", "/CN=localhost", server=True)
        p.server2 = p.issue("server2", "/CN=localhost/O=Second", server=True)
        p.alice = p.issue("alice", "/CN=alice/O=AkiTest")
        p.bob = p.issue("bob", "/CN=bob/O=AkiTest")
        p.mallory = p.issue("mallory", "/CN=mallory/O=AkiTest")
        p.rogue = p.issue("rogue", "/CN=alice/O=AkiTest", ca="rogue-ca")
        # Subjects as the documentation tells operators to print them.
        for who in ("alice", "bob", "mallory"):
            out = subprocess.run(["openssl", "x509", "-in", getattr(p, who)[0], "-noout",
                                  "-subject", "-nameopt", "RFC2253"], capture_output=True,
                                 text=True, check=True).stdout.strip()
            setattr(p, who + "_subject", out.split("subject=", 1)[1])
        p.rsa = p._key("jwt-rsa", "rsa")
        p.rsa_other = p._key("jwt-rsa-other", "rsa")
        p.ec = p._key("jwt-ec", "ec")
        p.ec_other = p._key("jwt-ec-other", "ec")
        for name, key in (("rsa", p.rsa), ("ec", p.ec)):
            with open(p.path("jwt-%s.pub" % name), "wb") as f:
                f.write(secutil.public_pem(key))
        _PKI = p
    return _PKI


def client_map():
    p = pki()
    return json.dumps({
        p.alice_subject: {"tenant": "acme", "role": "writer"},
        p.bob_subject: {"tenant": "beta", "role": "reader"},
    })
HS_SECRET = b"hs256-test-secret-0123456789abcdef-xyz"


def tls_args(p, *extra):
    cert, key = p.server
    return ["--tls-cert", cert, "--tls-key", key] + list(extra)


def audit_lines(srv):
    path = os.path.join(srv.data, "audit.log")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def key_for(t, srv, tenant, role, name=""):
    r = call(srv, "POST", "/v1/admin/keys", {"tenant": tenant, "role": role, "name": name})
    t.assertEqual(r.status, 201, r)
    return r.json["key"], r.json["id"]


# ---------------------------------------------------------------------------
# The auth matrix

# Columns: (label, method, path, body).  Tenant acme owns the collection
# "acme-only", tenant beta owns "beta-only"; for any other tenant they do
# not exist (404), which is checked after the role (403).
COLUMNS = [
    ("live", "GET", "/health/live", None),
    ("list", "GET", "/v1/collections", None),
    ("get-acme", "GET", "/v1/collections/acme-only", None),
    ("get-beta", "GET", "/v1/collections/beta-only", None),
    ("search-acme", "POST", "/v1/collections/acme-only/search", {"vector": [1, 0], "k": 1}),
    ("search-beta", "POST", "/v1/collections/beta-only/search", {"vector": [1, 0], "k": 1}),
    ("insert-acme", "POST", "/v1/collections/acme-only/vectors", {"vectors": [{"vector": [1, 1]}]}),
    ("insert-beta", "POST", "/v1/collections/beta-only/vectors", {"vectors": [{"vector": [1, 1]}]}),
    ("keys", "GET", "/v1/admin/keys", None),
    ("config", "GET", "/v1/admin/config", None),
    ("quota", "GET", "/v1/admin/tenants/acme/quota", None),
]

# Rows: identity -> expected status per column, in COLUMNS order.
#           live list gAcm gBet sAcm sBet iAcm iBet keys conf quot
OK_ACME_READER = "200 200 200 404 200 404 403 403 403 403 403"
OK_ACME_WRITER = "200 200 200 404 200 404 201 404 403 403 403"
OK_ACME_ADMIN = "200 200 200 404 200 404 201 404 200 200 200"
OK_BETA_READER = "200 200 404 200 404 200 403 403 403 403 403"
OK_BETA_WRITER = "200 200 404 200 404 200 404 201 403 403 403"
DENIED = "200 401 401 401 401 401 401 401 401 401 401"

MATRIX_M = {
    # server M: TLS, client certificates optional, JWT HS256 (aud akidb-test)
    "no credential": DENIED,
    "malformed header (Basic)": DENIED,
    "malformed header (two tokens)": DENIED,
    "api key: unknown": DENIED,
    "api key: revoked": DENIED,
    "api key: acme reader": OK_ACME_READER,
    "api key: acme writer": OK_ACME_WRITER,
    "api key: acme admin": OK_ACME_ADMIN,
    "api key: beta writer": OK_BETA_WRITER,
    "jwt hs256: acme reader": OK_ACME_READER,
    "jwt hs256: acme writer": OK_ACME_WRITER,
    "jwt hs256: acme admin": OK_ACME_ADMIN,
    "jwt hs256: beta reader": OK_BETA_READER,
    "jwt hs256: expired": DENIED,
    "jwt hs256: not yet valid (nbf)": DENIED,
    "jwt hs256: issued in the future (iat)": DENIED,
    "jwt hs256: no exp": DENIED,
    "jwt hs256: wrong signature": DENIED,
    "jwt hs256: tampered claims": DENIED,
    "jwt: alg none": DENIED,
    "jwt: alg NONE (case variant), admin": DENIED,
    "jwt rs256 on an hs256 server": DENIED,
    "jwt hs256: missing tenant claim": DENIED,
    "jwt hs256: invalid tenant claim": DENIED,
    "jwt hs256: empty tenant claim": DENIED,
    "jwt hs256: missing role claim": DENIED,
    "jwt hs256: unknown role": DENIED,
    "jwt hs256: wrong audience": DENIED,
    "jwt hs256: crit header": DENIED,
    "mtls: alice (acme writer)": OK_ACME_WRITER,
    "mtls: bob (beta reader)": OK_BETA_READER,
    "mtls: mallory (not mapped)": DENIED,
    "mtls: alice + bearer beta writer key (header decides)": OK_BETA_WRITER,
    "mtls: alice + bad bearer key (header decides)": DENIED,
}

MATRIX_RS = {
    # server R: JWT RS256 with the public key; plain HTTP
    "jwt rs256: acme reader": OK_ACME_READER,
    "jwt rs256: acme admin": OK_ACME_ADMIN,
    "jwt rs256: beta writer": OK_BETA_WRITER,
    "jwt rs256: signed by another key": DENIED,
    "jwt rs256: expired": DENIED,
    "jwt: hs256 signed with the rs256 public key (confusion)": DENIED,
    "jwt: alg none": DENIED,
    "jwt es256 on an rs256 server": DENIED,
    "jwt rs256: missing tenant claim": DENIED,
    "api key: acme writer": OK_ACME_WRITER,
}

MATRIX_ES = {
    # server E: JWT ES256 with the public key; plain HTTP
    "jwt es256: acme writer": OK_ACME_WRITER,
    "jwt es256: beta reader": OK_BETA_READER,
    "jwt es256: signed by another key": DENIED,
    "jwt es256: not yet valid (nbf)": DENIED,
    "jwt rs256 on an es256 server": DENIED,
    "jwt: hs256 signed with the es256 public key (confusion)": DENIED,
    "jwt es256: missing tenant claim": DENIED,
}


def _setup_tenants(t, srv):
    """Keys per tenant and role; the two collections, with one vector each."""
    keys = {}
    for tenant in ("acme", "beta"):
        for role in ("reader", "writer", "admin"):
            keys[(tenant, role)] = key_for(t, srv, tenant, role)[0]
    for tenant, coll in (("acme", "acme-only"), ("beta", "beta-only")):
        k = keys[(tenant, "writer")]
        r = call(srv, "POST", "/v1/collections", {"name": coll, "dim": 2}, key=k)
        t.assertEqual(r.status, 201, r)
        r = call(srv, "POST", "/v1/collections/%s/vectors" % coll,
                 {"vectors": [{"vector": [1, 0]}]}, key=k)
        t.assertEqual(r.status, 201, r)
    return keys


def _run_matrix(t, srv, identities, matrix):
    """identities: label -> dict(headers=..., cert=...).  Checks every cell."""
    t.assertEqual(set(identities), set(matrix), "every row has an identity and an expectation")
    failures = []
    cells = 0
    for label, want_row in matrix.items():
        want = want_row.split()
        t.assertEqual(len(want), len(COLUMNS), label)
        ident = identities[label]
        for (col, method, path, body), expect in zip(COLUMNS, want):
            r = call(srv, method, path, body, key=None, headers=ident.get("headers"),
                     cert=ident.get("cert"))
            cells += 1
            if r.status != int(expect):
                failures.append("%-55s %-12s want %s got %d %s" % (
                    label, col, expect, r.status, r.text[:120]))
            if r.status == 401:
                t.assertIn("www-authenticate", r.headers, (label, col))
    t.assertEqual(failures, [], "\n" + "\n".join(failures))
    return cells


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


class TestAuthMatrix(unittest.TestCase):

    def test_matrix_tls_hs256_mtls(self):
        p = pki()
        srv = Server(*tls_args(p, "--tls-client-ca", p.ca, "--tls-client-auth", "optional",
                               "--tls-client-map", client_map(), "--jwt-alg", "HS256",
                               "--jwt-audience", "akidb-test", "--auth-fail-limit", "0",
                               "--rate-qps", "0"),
                     ca=p.ca, env={"AKIDB_JWT_SECRET": HS_SECRET.decode()}).start()
        try:
            keys = _setup_tenants(self, srv)
            revoked, rid = key_for(self, srv, "acme", "admin")
            self.assertEqual(call(srv, "DELETE", "/v1/admin/keys/" + rid).status, 204)
            aud = {"aud": "akidb-test"}
            now = int(time.time())

            def hs(**kw):
                c = secutil.claims(**dict(aud, **kw))
                return secutil.jwt(c, "HS256", HS_SECRET)

            good = hs(role="reader")
            head, payload, sig = good.split(".")
            forged_payload = secutil.b64url(json.dumps(secutil.claims(role="admin", aud="akidb-test")).encode())
            ids = {
                "no credential": {},
                "malformed header (Basic)": {"headers": {"Authorization": "Basic YTpi"}},
                "malformed header (two tokens)": {"headers": {"Authorization": "Bearer a b"}},
                "api key: unknown": {"headers": bearer("akidb_" + "x" * 43)},
                "api key: revoked": {"headers": bearer(revoked)},
                "api key: acme reader": {"headers": bearer(keys[("acme", "reader")])},
                "api key: acme writer": {"headers": bearer(keys[("acme", "writer")])},
                "api key: acme admin": {"headers": bearer(keys[("acme", "admin")])},
                "api key: beta writer": {"headers": bearer(keys[("beta", "writer")])},
                "jwt hs256: acme reader": {"headers": bearer(good)},
                "jwt hs256: acme writer": {"headers": bearer(hs(role="writer"))},
                "jwt hs256: acme admin": {"headers": bearer(hs(role="admin"))},
                "jwt hs256: beta reader": {"headers": bearer(hs(tenant="beta"))},
                "jwt hs256: expired": {"headers": bearer(hs(exp_in=-3600))},
                "jwt hs256: not yet valid (nbf)": {"headers": bearer(hs(nbf=now + 3600))},
                "jwt hs256: issued in the future (iat)": {"headers": bearer(hs(iat=now + 3600))},
                "jwt hs256: no exp": {"headers": bearer(hs(exp=None))},
                "jwt hs256: wrong signature": {"headers": bearer(
                    secutil.jwt(secutil.claims(aud="akidb-test"), "HS256", b"another-secret-0123456789abcdefghij"))},
                "jwt hs256: tampered claims": {"headers": bearer(head + "." + forged_payload + "." + sig)},
                "jwt: alg none": {"headers": bearer(secutil.jwt(secutil.claims(role="admin", aud="akidb-test"), "none"))},
                "jwt: alg NONE (case variant), admin": {"headers": bearer(
                    secutil.jwt(secutil.claims(role="admin", aud="akidb-test"), "none", header={"alg": "NONE"}))},
                "jwt rs256 on an hs256 server": {"headers": bearer(
                    secutil.jwt(secutil.claims(aud="akidb-test"), "RS256", p.rsa))},
                "jwt hs256: missing tenant claim": {"headers": bearer(hs(tenant=None))},
                "jwt hs256: invalid tenant claim": {"headers": bearer(hs(tenant="Not_A_Tenant"))},
                "jwt hs256: empty tenant claim": {"headers": bearer(hs(tenant=""))},
                "jwt hs256: missing role claim": {"headers": bearer(hs(role=None))},
                "jwt hs256: unknown role": {"headers": bearer(hs(role="root"))},
                "jwt hs256: wrong audience": {"headers": bearer(hs(aud="someone-else"))},
                "jwt hs256: crit header": {"headers": bearer(secutil.jwt(
                    secutil.claims(aud="akidb-test"), "HS256", HS_SECRET, header={"crit": ["exp"]}))},
                "mtls: alice (acme writer)": {"cert": p.alice},
                "mtls: bob (beta reader)": {"cert": p.bob},
                "mtls: mallory (not mapped)": {"cert": p.mallory},
                "mtls: alice + bearer beta writer key (header decides)": {
                    "cert": p.alice, "headers": bearer(keys[("beta", "writer")])},
                "mtls: alice + bad bearer key (header decides)": {
                    "cert": p.alice, "headers": bearer("akidb_" + "y" * 43)},
            }
            cells = _run_matrix(self, srv, ids, MATRIX_M)
            self.assertEqual(cells, len(MATRIX_M) * len(COLUMNS))
            # No token or key ever reaches a log.
            logs = srv.stderr() + "".join(json.dumps(l) for l in audit_lines(srv))
            for ident in ids.values():
                a = ident.get("headers", {}).get("Authorization", "")
                cred = a.split(" ", 1)[1] if " " in a else ""
                if len(cred) > 8:
                    self.assertNotIn(cred, logs)
                    for part in cred.split("."):
                        if len(part) > 20:
                            self.assertNotIn(part, logs)
            self.assertNotIn(HS_SECRET.decode(), logs)
            # mTLS identities are named by subject in the audit log.
            self.assertEqual(p.alice_subject, "O=AkiTest,CN=alice")
            self.assertTrue(any(l.get("actor_type") == "mtls" and l.get("actor") == p.alice_subject
                                and l["action"] == "auth.denied" for l in audit_lines(srv)))
        finally:
            srv.stop_clean(self)

    def _pub_server(self, alg, pub):
        p = pki()
        srv = Server("--jwt-alg", alg, "--jwt-key-file", p.path(pub), "--auth-fail-limit", "0",
                     "--rate-qps", "0").start()
        return srv

    def test_matrix_rs256(self):
        p = pki()
        srv = self._pub_server("RS256", "jwt-rsa.pub")
        try:
            keys = _setup_tenants(self, srv)
            with open(p.path("jwt-rsa.pub"), "rb") as f:
                pub = f.read()
            rs = lambda **kw: secutil.jwt(secutil.claims(**kw), "RS256", p.rsa)  # noqa: E731
            ids = {
                "jwt rs256: acme reader": {"headers": bearer(rs())},
                "jwt rs256: acme admin": {"headers": bearer(rs(role="admin"))},
                "jwt rs256: beta writer": {"headers": bearer(rs(tenant="beta", role="writer"))},
                "jwt rs256: signed by another key": {"headers": bearer(
                    secutil.jwt(secutil.claims(role="admin"), "RS256", p.rsa_other))},
                "jwt rs256: expired": {"headers": bearer(rs(exp_in=-600))},
                "jwt: hs256 signed with the rs256 public key (confusion)": {"headers": bearer(
                    secutil.jwt(secutil.claims(role="admin"), "HS256", pub))},
                "jwt: alg none": {"headers": bearer(secutil.jwt(secutil.claims(role="admin"), "none"))},
                "jwt es256 on an rs256 server": {"headers": bearer(
                    secutil.jwt(secutil.claims(), "ES256", p.ec))},
                "jwt rs256: missing tenant claim": {"headers": bearer(rs(tenant=None))},
                "api key: acme writer": {"headers": bearer(keys[("acme", "writer")])},
            }
            _run_matrix(self, srv, ids, MATRIX_RS)
        finally:
            srv.stop_clean(self)

    def test_matrix_es256(self):
        p = pki()
        srv = self._pub_server("ES256", "jwt-ec.pub")
        try:
            _setup_tenants(self, srv)
            with open(p.path("jwt-ec.pub"), "rb") as f:
                pub = f.read()
            es = lambda **kw: secutil.jwt(secutil.claims(**kw), "ES256", p.ec)  # noqa: E731
            ids = {
                "jwt es256: acme writer": {"headers": bearer(es(role="writer"))},
                "jwt es256: beta reader": {"headers": bearer(es(tenant="beta"))},
                "jwt es256: signed by another key": {"headers": bearer(
                    secutil.jwt(secutil.claims(), "ES256", p.ec_other))},
                "jwt es256: not yet valid (nbf)": {"headers": bearer(es(nbf=int(time.time()) + 600))},
                "jwt rs256 on an es256 server": {"headers": bearer(
                    secutil.jwt(secutil.claims(), "RS256", p.rsa))},
                "jwt: hs256 signed with the es256 public key (confusion)": {"headers": bearer(
                    secutil.jwt(secutil.claims(role="admin"), "HS256", pub))},
                "jwt es256: missing tenant claim": {"headers": bearer(es(tenant=None))},
            }
            _run_matrix(self, srv, ids, MATRIX_ES)
        finally:
            srv.stop_clean(self)


# ---------------------------------------------------------------------------
# TLS

def s_client(port, *args, stdin=b"", timeout=20):
    """openssl s_client against 127.0.0.1:port; (returncode, output)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost",
           "-CAfile", pki().ca, "-verify_return_error", "-ign_eof"] + list(args)
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout * SCALE)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


HTTP_GET_LIVE = b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


class TestTLS(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        p = pki()
        cls.srv = Server(*tls_args(p, "--tls-handshake-timeout-ms", "500"), ca=p.ca).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        err = cls.srv.stderr()
        if re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", err) or rc != 0:
            raise AssertionError("server exit %r\n%s" % (rc, err[-6000:]))

    def test_curl_tlsv13_and_headers(self):
        r = subprocess.run(["curl", "-sS", "-i", "--tlsv1.3", "--cacert", pki().ca,
                            "-w", "\n%{http_version} %{ssl_verify_result}",
                            "https://localhost:%d/health/live" % self.srv.port],
                           capture_output=True, text=True, timeout=30 * SCALE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("HTTP/1.1 200", r.stdout)
        self.assertRegex(r.stdout, r"(?i)strict-transport-security: max-age=31536000")
        self.assertRegex(r.stdout, r"(?i)x-content-type-options: nosniff")
        self.assertTrue(r.stdout.rstrip().endswith("1.1 0"), r.stdout)
        # An API call works as well, with the key.
        r = subprocess.run(["curl", "-sS", "--tlsv1.3", "--cacert", pki().ca, "-H",
                            "Authorization: Bearer " + ADMIN_KEY,
                            "https://localhost:%d/v1/collections" % self.srv.port],
                           capture_output=True, text=True, timeout=30 * SCALE)
        self.assertEqual(json.loads(r.stdout), {"collections": []}, r.stderr)

    def test_s_client_tls13_alpn(self):
        rc, out = s_client(self.srv.port, "-alpn", "http/1.1", stdin=HTTP_GET_LIVE)
        self.assertEqual(rc, 0, out)
        self.assertIn("Protocol  : TLSv1.3", out)
        self.assertIn("ALPN protocol: http/1.1", out)
        self.assertIn("HTTP/1.1 200 OK", out)
        self.assertIn("Verify return code: 0 (ok)", out)

    def test_alpn_without_http11_refused(self):
        ctx = self.srv.tls_context()
        ctx.set_alpn_protocols(["h2"])
        with self.assertRaises(ssl.SSLError) as e:
            with socket.create_connection(("127.0.0.1", self.srv.port), timeout=10 * SCALE) as s:
                with ctx.wrap_socket(s, server_hostname="localhost"):
                    pass
        self.assertRegex(str(e.exception).upper(), r"NO.APPLICATION.PROTOCOL")

    def test_tls12_refused_by_default(self):
        rc, out = s_client(self.srv.port, "-tls1_2", stdin=HTTP_GET_LIVE)
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("HTTP/1.1 200", out)
        self.assertRegex(out, r"alert protocol version|no protocols available|unsupported protocol")
        r = subprocess.run(["curl", "-sS", "--tls-max", "1.2", "--cacert", pki().ca,
                            "https://localhost:%d/health/live" % self.srv.port],
                           capture_output=True, text=True, timeout=30 * SCALE)
        self.assertNotEqual(r.returncode, 0)

    def test_tls12_when_allowed(self):
        p = pki()
        s = Server(*tls_args(p, "--tls-min-version", "1.2"), ca=p.ca).start()
        try:
            rc, out = s_client(s.port, "-tls1_2", stdin=HTTP_GET_LIVE)
            self.assertEqual(rc, 0, out)
            self.assertIn("Protocol  : TLSv1.2", out)
            self.assertRegex(out, r"Cipher is ECDHE-(ECDSA|RSA)-(AES\d+-GCM|CHACHA20)")
            self.assertIn("HTTP/1.1 200 OK", out)
            # Weak ciphers are still refused.
            rc, out = s_client(s.port, "-tls1_2", "-cipher", "AES128-SHA", stdin=HTTP_GET_LIVE)
            self.assertNotEqual(rc, 0, out)
        finally:
            s.stop_clean(self)

    def test_plain_http_to_tls_port_is_closed(self):
        t0 = time.time()
        out = raw_exchange(self.srv, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n",
                           read_timeout=10)
        self.assertLess(time.time() - t0, 5 * SCALE, "the server must close, not hang")
        self.assertNotIn(b"HTTP/1.1", out)
        self.assertIn('reason="http request"', self.srv.stderr())

    def test_silent_client_closed_after_handshake_timeout(self):
        t0 = time.time()
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=10 * SCALE) as s:
            self.assertEqual(s.recv(10), b"")
        self.assertLess(time.time() - t0, 5 * SCALE)
        self.assertIn('reason="handshake timeout"', self.srv.stderr())

    def test_metrics(self):
        call(self.srv, "GET", "/health/live", key=None)
        r = call(self.srv, "GET", "/metrics", key=None)
        m = re.search(r'^akidb_tls_handshakes_total\{result="success"\} (\d+)$', r.text, re.M)
        self.assertTrue(m and int(m.group(1)) >= 1, r.text[-3000:])
        m = re.search(r"^akidb_tls_certificate_expiry_seconds (\d+)$", r.text, re.M)
        self.assertTrue(m, r.text[-3000:])
        self.assertGreater(int(m.group(1)), time.time())
        self.assertLess(int(m.group(1)), time.time() + 3 * 86400)

    def test_key_file_readable_by_others_refused(self):
        p = pki()
        d = tempfile.mkdtemp(dir=harness._TMP_ROOT)
        key = os.path.join(d, "open.key")
        with open(p.server[1], "rb") as f, open(key, "wb") as g:
            g.write(f.read())
        for mode in (0o644, 0o640, 0o604):
            os.chmod(key, mode)
            s = Server("--tls-cert", p.server[0], "--tls-key", key)
            self.assertEqual(s.start(expect_fail=True), 1)
            self.assertIn(key, s.stderr())
            self.assertIn("0%o" % mode, s.stderr())
        os.chmod(key, 0o400)
        s = Server("--tls-cert", p.server[0], "--tls-key", key, ca=p.ca).start()
        self.assertEqual(call(s, "GET", "/health/live", key=None).status, 200)
        s.stop_clean(self)
        # A key that does not match the certificate is a startup error too.
        s = Server("--tls-cert", p.server[0], "--tls-key", p.alice[1])
        self.assertEqual(s.start(expect_fail=True), 1)
        self.assertIn("does not match", s.stderr())
        # Half a TLS configuration is refused, not ignored.
        s = Server("--tls-cert", p.server[0])
        self.assertEqual(s.start(expect_fail=True), 1)
        self.assertIn("tls_key", s.stderr())

    def test_sighup_reloads_without_dropping_connections(self):
        p = pki()
        d = tempfile.mkdtemp(dir=harness._TMP_ROOT)
        cert, key = os.path.join(d, "c.pem"), os.path.join(d, "c.key")

        def install(pair):
            for src, dst in zip(pair, (cert, key)):
                with open(src, "rb") as f, open(dst + ".tmp", "wb") as g:
                    g.write(f.read())
                os.chmod(dst + ".tmp", 0o600)
                os.replace(dst + ".tmp", dst)

        install(p.server)
        s = Server("--tls-cert", cert, "--tls-key", key, ca=p.ca).start()
        try:
            def subject_of_new_connection():
                ctx = s.tls_context()
                with socket.create_connection(("127.0.0.1", s.port), timeout=10 * SCALE) as sk:
                    with ctx.wrap_socket(sk, server_hostname="localhost") as t:
                        return dict(x[0] for x in t.getpeercert()["subject"])

            self.assertEqual(subject_of_new_connection(), {"commonName": "localhost"})
            # A keep-alive connection made before the reload...
            import http.client
            conn = http.client.HTTPSConnection("localhost", s.port, timeout=10 * SCALE,
                                               context=s.tls_context())
            conn.request("GET", "/health/live")
            self.assertEqual(conn.getresponse().read(), b'{"status":"live"}')
            install(p.server2)
            s.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10 * SCALE
            while "TLS certificate reloaded" not in s.stderr() and time.time() < deadline:
                time.sleep(0.05)
            self.assertIn("TLS certificate reloaded", s.stderr())
            # ...still works after it,
            conn.request("GET", "/health/live")
            r = conn.getresponse()
            self.assertEqual((r.status, r.read()), (200, b'{"status":"live"}'))
            conn.close()
            # and new connections get the new certificate.
            self.assertEqual(subject_of_new_connection(),
                             {"commonName": "localhost", "organizationName": "Second"})
            # A reload that fails (the key made world-readable) keeps the
            # current certificate, and says so.
            os.chmod(key, 0o644)
            s.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10 * SCALE
            while "TLS reload failed" not in s.stderr() and time.time() < deadline:
                time.sleep(0.05)
            self.assertIn("TLS reload failed", s.stderr())
            self.assertEqual(subject_of_new_connection()["organizationName"], "Second")
            r = call(s, "GET", "/metrics", key=None)
            self.assertIn('akidb_tls_reloads_total{result="success"} 1', r.text)
            self.assertIn('akidb_tls_reloads_total{result="failure"} 1', r.text)
            reloads = [l for l in audit_lines(s) if l["action"] == "config.reload"]
            self.assertEqual([l["result"] for l in reloads], ["success", "failure"], reloads)
            self.assertIn("0644", reloads[1]["reason"])
        finally:
            s.stop_clean(self)


class TestMutualTLS(unittest.TestCase):
    """tls_client_auth require: no certificate, no connection."""

    @classmethod
    def setUpClass(cls):
        p = pki()
        cls.srv = Server(*tls_args(p, "--tls-client-ca", p.ca, "--tls-client-map", client_map()),
                         ca=p.ca).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        err = cls.srv.stderr()
        if re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", err) or rc != 0:
            raise AssertionError("server exit %r\n%s" % (rc, err[-6000:]))

    def test_s_client_without_certificate_refused(self):
        rc, out = s_client(self.srv.port, stdin=HTTP_GET_LIVE)
        self.assertNotIn("HTTP/1.1 200", out)
        self.assertRegex(out, r"certificate required|alert number 116|handshake failure")

    def test_s_client_with_certificate(self):
        cert, key = pki().alice
        rc, out = s_client(self.srv.port, "-cert", cert, "-key", key, stdin=HTTP_GET_LIVE)
        self.assertEqual(rc, 0, out)
        self.assertIn("HTTP/1.1 200 OK", out)

    def test_foreign_ca_refused(self):
        cert, key = pki().rogue      # same subject as alice, another CA
        rc, out = s_client(self.srv.port, "-cert", cert, "-key", key, stdin=HTTP_GET_LIVE)
        self.assertNotIn("HTTP/1.1 200", out)
        self.assertRegex(out, r"unknown ca|alert number 48|certificate verify failed|bad certificate")

    def test_mapped_identity(self):
        r = call(self.srv, "GET", "/v1/collections", key=None, cert=pki().alice)
        self.assertEqual(r.status, 200, r)
        r = call(self.srv, "GET", "/v1/admin/keys", key=None, cert=pki().alice)
        self.assertEqual(r.status, 403, r)
        r = call(self.srv, "GET", "/v1/collections", key=None, cert=pki().mallory)
        self.assertEqual(r.status, 401, r)
        self.assertIn("not mapped", r.json["error"]["message"])

    def test_revoked_certificate_refused_after_sighup(self):
        p = pki()
        d = tempfile.mkdtemp(dir=harness._TMP_ROOT)
        crl = p.crl(os.path.join(d, "ca.crl"))
        s = Server(*tls_args(p, "--tls-client-ca", p.ca, "--tls-client-crl", crl,
                             "--tls-client-map", client_map()), ca=p.ca).start()
        try:
            self.assertEqual(call(s, "GET", "/v1/collections", key=None, cert=p.bob).status, 200)
            p.crl(crl, revoked=[p.bob[0]])
            s.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10 * SCALE
            while "TLS certificate reloaded" not in s.stderr() and time.time() < deadline:
                time.sleep(0.05)
            self.assertIn("TLS certificate reloaded", s.stderr())
            rc, out = s_client(s.port, "-cert", p.bob[0], "-key", p.bob[1], stdin=HTTP_GET_LIVE)
            self.assertNotIn("HTTP/1.1 200", out)
            self.assertRegex(out, r"certificate revoked|alert number 44")
            self.assertEqual(call(s, "GET", "/v1/collections", key=None, cert=p.alice).status, 200)
        finally:
            s.stop_clean(self)

    def test_map_needs_a_ca(self):
        p = pki()
        s = Server(*tls_args(p, "--tls-client-map", client_map()))
        self.assertEqual(s.start(expect_fail=True), 1)
        self.assertIn("tls_client_ca", s.stderr())
        s = Server(*tls_args(p, "--tls-client-ca", p.ca, "--tls-client-map",
                             '{"CN=x": {"tenant": "acme", "role": "root"}}'))
        self.assertEqual(s.start(expect_fail=True), 1)
        self.assertIn("CN=x", s.stderr())


# ---------------------------------------------------------------------------
# JWT beyond the matrix

class TestJWT(unittest.TestCase):

    def test_leeway(self):
        s = Server("--jwt-alg", "HS256", "--jwt-leeway-s", "30",
                   env={"AKIDB_JWT_SECRET": HS_SECRET.decode()}).start()
        try:
            def status(**kw):
                tok = secutil.jwt(secutil.claims(**kw), "HS256", HS_SECRET)
                return call(s, "GET", "/v1/collections", key=tok).status
            now = int(time.time())
            self.assertEqual(status(exp_in=-10), 200)           # within the leeway
            self.assertEqual(status(exp_in=-120), 401)
            self.assertEqual(status(nbf=now + 10), 200)
            self.assertEqual(status(nbf=now + 120), 401)
            self.assertEqual(status(iat=now + 10), 200)
            self.assertEqual(status(iat=now + 120), 401)
            # The leeway is runtime configuration.
            r = call(s, "PUT", "/v1/admin/config", {"jwt_leeway_s": 0})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(status(exp_in=-10), 401)
            r = call(s, "GET", "/v1/collections", key=secutil.jwt(
                secutil.claims(exp_in=-120), "HS256", HS_SECRET))
            self.assertEqual(r.json["error"]["message"], "the token has expired")
        finally:
            s.stop_clean(self)

    def test_secret_rotation_by_sighup(self):
        d = tempfile.mkdtemp(dir=harness._TMP_ROOT)
        f = os.path.join(d, "secrets")
        old, new = b"old-secret-0123456789abcdef0123456789", b"new-secret-0123456789abcdef0123456789"

        def write(*secrets):
            with open(f + ".tmp", "wb") as g:
                g.write(b"\n".join(secrets) + b"\n")
            os.chmod(f + ".tmp", 0o600)
            os.replace(f + ".tmp", f)

        write(old)
        s = Server("--jwt-alg", "HS256", "--jwt-key-file", f).start()
        try:
            t_old = secutil.jwt(secutil.claims(), "HS256", old)
            t_new = secutil.jwt(secutil.claims(sub="new"), "HS256", new)
            self.assertEqual(call(s, "GET", "/v1/collections", key=t_old).status, 200)
            self.assertEqual(call(s, "GET", "/v1/collections", key=t_new).status, 401)

            def hup(n):
                s.proc.send_signal(signal.SIGHUP)
                deadline = time.time() + 10 * SCALE
                while s.stderr().count("JWT keys reloaded") < n and time.time() < deadline:
                    time.sleep(0.05)
                self.assertEqual(s.stderr().count("JWT keys reloaded"), n)

            write(old, new)              # overlap: both accepted
            hup(1)
            self.assertEqual(call(s, "GET", "/v1/collections", key=t_new).status, 200)
            self.assertEqual(call(s, "GET", "/v1/collections", key=t_old).status, 200)
            write(new)                   # the old one retired
            hup(2)
            self.assertEqual(call(s, "GET", "/v1/collections", key=t_old).status, 401)
            self.assertEqual(call(s, "GET", "/v1/collections", key=t_new).status, 200)
            self.assertNotIn(old.decode(), s.stderr())
            self.assertNotIn(new.decode(), s.stderr())
        finally:
            s.stop_clean(self)

    def test_bad_configurations_refused(self):
        d = tempfile.mkdtemp(dir=harness._TMP_ROOT)
        f = os.path.join(d, "secret")
        with open(f, "wb") as g:
            g.write(b"long-enough-secret-0123456789abcdef\n")
        os.chmod(f, 0o644)
        s = Server("--jwt-alg", "HS256", "--jwt-key-file", f)
        self.assertEqual(s.start(expect_fail=True), 1)
        self.assertIn(f, s.stderr())
        self.assertIn("0644", s.stderr())
        s = Server("--jwt-alg", "HS256", env={"AKIDB_JWT_SECRET": "short"})
        self.assertEqual(s.start(expect_fail=True), 1)
        self.assertIn("32 bytes", s.stderr())
        s = Server("--jwt-alg", "none")
        self.assertEqual(s.start(expect_fail=True), 1)
        self.assertIn("jwt_alg", s.stderr())
        # An EC key given for RS256 is a configuration error, not a silent
        # "every token fails".
        s = Server("--jwt-alg", "RS256", "--jwt-key-file", pki().path("jwt-ec.pub"))
        self.assertEqual(s.start(expect_fail=True), 1)
        self.assertIn("RSA", s.stderr())


# ---------------------------------------------------------------------------
# Audit log

class TestAudit(unittest.TestCase):

    def test_every_action_has_its_line(self):
        s = Server("--auth-fail-limit", "3", "--auth-fail-window-s", "600").start()
        try:
            def rid(tag):
                return {"X-Request-Id": "audit-" + tag}

            r = call(s, "POST", "/v1/admin/keys", {"tenant": "acme", "role": "writer", "name": "ci"},
                     headers=rid("keycreate"))
            self.assertEqual(r.status, 201)
            wkey, wid = r.json["key"], r.json["id"]
            admin_id = [k["id"] for k in call(s, "GET", "/v1/admin/keys").json["keys"]
                        if k["tenant"] == "default"][0]
            call(s, "POST", "/v1/collections", {"name": "docs", "dim": 2}, key=wkey,
                 headers=rid("collcreate"))
            call(s, "POST", "/v1/collections/docs/vectors", {"vectors": [{"vector": [1, 2]}]}, key=wkey)
            sid = call(s, "POST", "/v1/collections/docs/snapshots", key=wkey,
                       headers=rid("snapcreate")).json["id"]
            self.assertEqual(call(s, "POST", "/v1/collections/docs/snapshots/%s/restore" % sid,
                                  key=wkey, headers=rid("restore")).status, 200)
            call(s, "DELETE", "/v1/collections/docs/snapshots/%s" % sid, key=wkey, headers=rid("snapdel"))
            call(s, "PUT", "/v1/admin/tenants/acme/quota", {"qps": 50, "burst": 60}, headers=rid("quota"))
            call(s, "DELETE", "/v1/admin/tenants/acme/quota", headers=rid("quotareset"))
            call(s, "PUT", "/v1/admin/config", {"max_k": 500}, headers=rid("config"))
            r = call(s, "PUT", "/v1/admin/config", {"max_k": 0}, headers=rid("configbad"))
            self.assertEqual(r.status, 400)
            call(s, "GET", "/v1/admin/keys", key=wkey, headers=rid("denied"))       # 403
            call(s, "DELETE", "/v1/collections/docs", key=wkey, headers=rid("colldrop"))
            call(s, "DELETE", "/v1/admin/keys/" + wid, headers=rid("keyrevoke"))
            call(s, "GET", "/v1/collections", key=wkey, headers=rid("revokedkey"))  # 401
            call(s, "GET", "/v1/collections", key=None, headers=rid("nokey"))       # 401, not counted
            call(s, "GET", "/v1/collections", key="wrong-1", headers=rid("bad1"))
            r = call(s, "GET", "/v1/collections", key="wrong-2", headers=rid("bad2"))
            self.assertEqual(r.status, 401)
            r = call(s, "GET", "/v1/collections", key=ADMIN_KEY, headers=rid("locked"))
            self.assertEqual(r.status, 429, r)         # 3 failures: locked out
            self.assertEqual(r.json["error"]["code"], "TOO_MANY_AUTH_FAILURES")
            self.assertGreaterEqual(int(r.headers["retry-after"]), 1)

            lines = audit_lines(s)
            by_id = {}
            for l in lines:
                by_id.setdefault(l.get("request_id"), []).append(l)
                for k in ("ts", "action", "result"):
                    self.assertIn(k, l)
                self.assertRegex(l["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

            def one(tag, action, result, **fields):
                got = by_id.get("audit-" + tag, [])
                self.assertEqual(len(got), 1, (tag, got))
                l = got[0]
                self.assertEqual((l["action"], l["result"]), (action, result), l)
                self.assertRegex(l.get("source", ""), r"^127\.0\.0\.1:\d+$", l)
                for k, v in fields.items():
                    self.assertEqual(l.get(k), v, (tag, k, l))
                return l

            one("keycreate", "key.create", "success", status=201, tenant="default",
                actor_type="api_key", actor=admin_id, target="key=" + wid,
                detail="tenant=acme role=writer name=ci")
            one("collcreate", "collection.create", "success", status=201, tenant="acme",
                actor=wid, target="collection=docs")
            one("snapcreate", "snapshot.create", "success", tenant="acme")
            l = one("restore", "snapshot.restore", "success", status=200, tenant="acme", actor=wid)
            self.assertEqual(l["target"], "/v1/collections/docs/snapshots/%s/restore" % sid)
            one("snapdel", "snapshot.delete", "success", status=204)
            one("quota", "quota.set", "success", target="tenant=acme",
                detail="qps=50 burst=60 max_collections=0 max_vectors=0")
            one("quotareset", "quota.reset", "success", target="tenant=acme")
            one("config", "config.change", "success", detail="max_k=500")
            one("configbad", "config.change", "failure", status=400)
            one("denied", "auth.denied", "failure", status=403, tenant="acme", actor=wid)
            one("colldrop", "collection.drop", "success", status=204, target="/v1/collections/docs")
            one("keyrevoke", "key.revoke", "success", status=204, target="key=" + wid,
                detail="tenant=acme role=writer name=ci")
            l = one("revokedkey", "auth.failure", "failure", status=401)
            self.assertIn("unknown or revoked", l["reason"])
            one("nokey", "auth.failure", "failure", status=401)
            one("bad1", "auth.failure", "failure")
            throttled = [l for l in lines if l["action"] == "auth.throttled"]
            self.assertEqual(len(throttled), 1, throttled)
            self.assertEqual(throttled[0]["request_id"], "audit-bad2")
            self.assertEqual(by_id.get("audit-locked"), None)    # a refused request is a metric
            # The first admin key of the database was audited when made.
            self.assertEqual(lines[0]["action"], "key.create")
            self.assertEqual(lines[0]["actor_type"], "system")
            # Never a secret.
            text = open(os.path.join(s.data, "audit.log")).read()
            for secret in (wkey, ADMIN_KEY, "wrong-1", "wrong-2"):
                self.assertNotIn(secret, text)
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(s.data, "audit.log")).st_mode), 0o600)
            # Counted in the metrics.
            m = call(s, "GET", "/metrics", key=None).text
            for action, result, n in (("key.create", "success", 2), ("auth.failure", "failure", 4),
                                      ("auth.throttled", "failure", 1), ("config.change", "failure", 1),
                                      ("collection.drop", "success", 1)):
                self.assertIn('akidb_audit_events_total{action="%s",result="%s"} %d' % (action, result, n), m)
            self.assertIn("akidb_auth_lockouts_total 1", m)
            self.assertIn("akidb_audit_write_errors_total 0", m)
        finally:
            s.stop_clean(self)

    def test_rotation_and_retention(self):
        d = tempfile.mkdtemp(dir=harness._TMP_ROOT)
        path = os.path.join(d, "audit", "a.log")
        os.makedirs(os.path.dirname(path))
        s = Server("--audit-log", path, "--audit-max-bytes", "4096", "--audit-keep", "2",
                   "--auth-fail-limit", "0").start()
        try:
            for i in range(80):
                call(s, "GET", "/v1/collections", key="bad-%03d" % i, headers={"X-Request-Id": "rot-%03d" % i})
            files = sorted(os.listdir(os.path.dirname(path)))
            self.assertEqual(files, ["a.log", "a.log.1", "a.log.2"])
            seen = []
            for name in ("a.log.2", "a.log.1", "a.log"):
                p = os.path.join(os.path.dirname(path), name)
                self.assertLessEqual(os.path.getsize(p), 4096, name)
                self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600, name)
                with open(p) as f:
                    seen += [json.loads(l)["request_id"] for l in f if "rot-" in l]
            # The newest lines are kept, in order, none torn; the oldest went.
            self.assertEqual(seen, sorted(seen))
            self.assertEqual(seen[-1], "rot-079")
            self.assertNotIn("rot-000", seen)
            self.assertIn("akidb_audit_rotations_total", call(s, "GET", "/metrics", key=None).text)
        finally:
            s.stop_clean(self)


# ---------------------------------------------------------------------------
# Runtime configuration

class TestRuntimeConfig(unittest.TestCase):

    def test_get_put_validate_persist(self):
        s = Server("--rate-qps", "0", "--max-k", "100").start()
        try:
            r = call(s, "GET", "/v1/admin/config")
            self.assertEqual(r.status, 200, r)
            before = r.json
            self.assertEqual(before["config"]["max_k"], 100)
            self.assertEqual(before["overridden"], [])
            # Bad values: 400 naming the field, nothing changes.
            for body, field in (({"rate_qps": -1}, "rate_qps"),
                                ({"max_k": 10, "max_batch": "many"}, "max_batch"),
                                ({"max_k": 10, "log_level": "verbose"}, "log_level"),
                                ({"max_k": 10, "port": 9999}, "port"),
                                ({"max_k": 10, "no_such": 1}, "no_such"),
                                ({"max_k": [1]}, "max_k"),
                                ({"rate_qps": 5, "rate_burst": 0}, "rate_burst"),
                                ({"max_body_bytes": 10}, "max_body_bytes")):
                r = call(s, "PUT", "/v1/admin/config", body)
                self.assertEqual(r.status, 400, (body, r))
                self.assertIn(field, r.json["error"]["message"], body)
                self.assertEqual(call(s, "GET", "/v1/admin/config").json, before, body)
            self.assertEqual(call(s, "PUT", "/v1/admin/config", {}).status, 400)
            # A reader or writer may not.
            k, _ = key_for(self, s, "default", "writer")
            self.assertEqual(call(s, "PUT", "/v1/admin/config", {"max_k": 5}, key=k).status, 403)
            self.assertEqual(call(s, "GET", "/v1/admin/config", key=k).status, 403)
            # A change applies at once.
            call(s, "POST", "/v1/collections", {"name": "c", "dim": 2})
            call(s, "POST", "/v1/collections/c/vectors", {"vectors": [{"vector": [1, 2]}]})
            self.assertEqual(call(s, "POST", "/v1/collections/c/search", {"vector": [1, 2], "k": 50}).status, 200)
            r = call(s, "PUT", "/v1/admin/config", {"max_k": 20, "rate_qps": 0.5, "rate_burst": 2,
                                                   "max_body_bytes": 2048, "log_level": "debug"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["config"]["max_k"], 20)
            self.assertEqual(sorted(r.json["overridden"]), ["log_level", "max_body_bytes", "max_k",
                                                            "rate_burst", "rate_qps"])
            r = call(s, "POST", "/v1/collections/c/search", {"vector": [1, 2], "k": 50})
            self.assertEqual(r.status, 400)
            self.assertIn("k", r.json["error"]["message"])
            r = call(s, "POST", "/v1/collections/c/vectors", {"vectors": [{"vector": [1, 2], "metadata": "x" * 3000}]})
            self.assertEqual(r.status, 413)
            q = call(s, "GET", "/v1/admin/tenants/zz/quota").json
            self.assertEqual((q["qps"], q["burst"]), (0.5, 2))
            statuses = [call(s, "GET", "/v1/collections", key=k).status for _ in range(6)]
            self.assertIn(429, statuses)
            self.assertIn("level=debug", s.stderr())
            rc = s.stop()
            self.assertEqual(rc, 0)
            # Kept across a restart (over the flags), and null goes back.
            s.start()
            r = call(s, "GET", "/v1/admin/config")
            self.assertEqual(r.json["config"]["max_k"], 20)
            self.assertIn("overrides a setting", s.stderr())
            r = call(s, "PUT", "/v1/admin/config", {"max_k": None, "rate_qps": None,
                                                   "max_body_bytes": None, "log_level": None})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["config"]["max_k"], 100)
            self.assertEqual(r.json["config"]["rate_qps"], 0)
            self.assertEqual(r.json["overridden"], ["rate_burst"])
            s.stop()
            s.start()
            self.assertEqual(call(s, "GET", "/v1/admin/config").json["config"]["max_k"], 100)
            lines = [l for l in audit_lines(s) if l["action"] == "config.change"]
            self.assertTrue(any("max_k=20" in l.get("detail", "") for l in lines), lines)
        finally:
            s.stop_clean(self)


# ---------------------------------------------------------------------------
# Secure defaults

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class TestSecureDefaults(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--max-header-bytes", "1024").start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        if rc != 0:
            raise AssertionError("server exit %r\n%s" % (rc, cls.srv.stderr()[-6000:]))

    def check_headers(self, headers, what):
        for k, v in SECURITY_HEADERS.items():
            self.assertEqual(headers.get(k), v, (what, k, headers))
        self.assertRegex(headers.get("x-request-id", ""), r"^[A-Za-z0-9._-]{1,64}$", what)
        self.assertNotIn("strict-transport-security", headers, what)   # plain HTTP

    def test_headers_on_every_response(self):
        s = self.srv
        for method, path, key in (("GET", "/health/live", None), ("GET", "/metrics", None),
                                  ("GET", "/v1/collections", ADMIN_KEY),
                                  ("GET", "/v1/collections", None),          # 401
                                  ("GET", "/v1/collections/nope", ADMIN_KEY),  # 404
                                  ("GET", "/nowhere", None),                   # unmatched
                                  ("PATCH", "/v1/collections", None)):         # 405
            r = call(s, method, path, key=key, check=False)
            self.check_headers(r.headers, (method, path, r.status))
        # Answers the HTTP layer gives on its own (400, 431) too.
        for raw in (b"NONSENSE\r\n\r\n",
                    b"GET / HTTP/1.1\r\nX: " + b"a" * 2000 + b"\r\n\r\n"):
            out = parse_responses(raw_exchange(s, raw))
            self.assertTrue(out, raw[:20])
            status, headers, _ = out[0]
            self.assertIn(status, (400, 431))
            self.check_headers(headers, raw[:20])

    def test_request_id(self):
        s = self.srv
        r = call(s, "GET", "/health/live", key=None, headers={"X-Request-Id": "client.id-42_A"})
        self.assertEqual(r.headers["x-request-id"], "client.id-42_A")
        for bad in ("has space", "x" * 65, "semi;colon", "üñí"):
            r = call(s, "GET", "/health/live", key=None, headers={"X-Request-Id": bad.encode("utf-8")})
            self.assertNotEqual(r.headers["x-request-id"], bad)
            self.assertRegex(r.headers["x-request-id"], r"^[0-9a-f]{16}$")
        a = call(s, "GET", "/health/live", key=None).headers["x-request-id"]
        b = call(s, "GET", "/health/live", key=None).headers["x-request-id"]
        self.assertNotEqual(a, b)
        # The id is in the request log.
        call(s, "GET", "/v1/collections", headers={"X-Request-Id": "find-me-in-the-log"})
        self.assertIn("request_id=find-me-in-the-log", s.stderr())

    def test_file_modes(self):
        s = self.srv
        call(s, "POST", "/v1/collections", {"name": "m", "dim": 2})
        call(s, "POST", "/v1/collections/m/vectors", {"vectors": [{"vector": [1, 2]}]})
        call(s, "POST", "/v1/collections/m/snapshots")
        bad = []
        n = 0
        for root, dirs, files in os.walk(s.data):
            for name in dirs + files:
                p = os.path.join(root, name)
                mode = stat.S_IMODE(os.lstat(p).st_mode)
                n += 1
                if mode & 0o077:
                    bad.append("%s %o" % (os.path.relpath(p, s.data), mode))
        self.assertGreater(n, 5)
        self.assertEqual(bad, [], "group/other access under the data directory")
        self.assertEqual(stat.S_IMODE(os.stat(s.data).st_mode), 0o700)


class TestBruteForce(unittest.TestCase):

    def test_lockout_and_recovery(self):
        s = Server("--auth-fail-limit", "2", "--auth-fail-window-s", "2").start()
        try:
            # Requests without any credential guess nothing: not counted.
            for _ in range(5):
                self.assertEqual(call(s, "GET", "/v1/collections", key=None).status, 401)
            self.assertEqual(call(s, "GET", "/v1/collections").status, 200)
            self.assertEqual(call(s, "GET", "/v1/collections", key="guess-1").status, 401)
            self.assertEqual(call(s, "GET", "/v1/collections", key="guess-2").status, 401)
            r = call(s, "GET", "/v1/collections")                 # even the right key
            self.assertEqual(r.status, 429, r)
            self.assertIn("retry-after", r.headers)
            self.assertEqual(call(s, "GET", "/health/live", key=None).status, 200)  # no auth: fine
            time.sleep(float(r.headers["retry-after"]) + 0.2)
            self.assertEqual(call(s, "GET", "/v1/collections").status, 200)
            m = call(s, "GET", "/metrics", key=None).text
            self.assertIn("akidb_auth_lockouts_total 1", m)
            self.assertRegex(m, r"akidb_auth_throttled_requests_total [1-9]")
            self.assertIn('akidb_auth_failures_total{kind="missing"} 5', m)
            self.assertIn('akidb_auth_failures_total{kind="api_key"} 2', m)
            self.assertIn("locked out", s.stderr())
        finally:
            s.stop_clean(self)


if __name__ == "__main__":
    unittest.main(verbosity=int(os.environ.get("AKT_VERBOSE", "1")))
