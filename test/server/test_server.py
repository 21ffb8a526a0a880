#!/usr/bin/env python3
"""test_server.py - black-box tests of akidb-server over HTTP.

    python3 test/server/test_server.py [-v] [TestClass[.test_name] ...]
    AKIDB_SERVER_BIN=build-asan/akidb-server python3 test/server/test_server.py

Every test starts the real binary (harness.Server) on a free 127.0.0.1 port
with a temporary data directory and drives it over HTTP.  Every answer of a
documented route is checked against docs/openapi.yaml by harness.call().
The run ends with unittest's summary; the exit code is 1 on any failure or
error.  Nothing is skipped.
"""
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ADMIN_KEY, SCALE, Server, call, parse_responses, raw_exchange  # noqa: E402


def make_key(t, srv, tenant, role, name=""):
    r = call(srv, "POST", "/v1/admin/keys", {"tenant": tenant, "role": role, "name": name})
    t.assertEqual(r.status, 201, r)
    return r.json["key"], r.json["id"]


def create(t, srv, name, dim=4, metric="l2", key=ADMIN_KEY, **extra):
    body = {"name": name, "dim": dim, "metric": metric}
    body.update(extra)
    r = call(srv, "POST", "/v1/collections", body, key=key)
    t.assertEqual(r.status, 201, r)
    return r.json


def insert(t, srv, coll, items, key=ADMIN_KEY, status=201):
    r = call(srv, "POST", "/v1/collections/%s/vectors" % coll, {"vectors": items}, key=key)
    t.assertEqual(r.status, status, r)
    return r


class ServerCase(unittest.TestCase):
    """One server for the whole class."""
    ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(*cls.ARGS).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        err = cls.srv.stderr()
        if re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", err) or rc != 0:
            raise AssertionError("%s: server exit %r\n%s" % (cls.__name__, rc, err[-6000:]))


# ---------------------------------------------------------------------------

class TestHealth(ServerCase):
    def test_live_ready_metrics_openapi_need_no_key(self):
        r = call(self.srv, "GET", "/health/live", key=None)
        self.assertEqual((r.status, r.json), (200, {"status": "live"}))
        r = call(self.srv, "GET", "/health/ready", key=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "ready")
        r = call(self.srv, "GET", "/metrics", key=None)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/plain"))
        for name in ("akidb_http_requests_total", "akidb_http_request_duration_seconds_bucket",
                     "akidb_http_requests_in_flight", "akidb_http_connections",
                     "process_resident_memory_bytes", "akidb_http_rate_limited_total",
                     "akidb_wal_"):
            self.assertIn(name, r.text)
        # Labels are route templates, never raw paths.
        call(self.srv, "GET", "/v1/collections/some-raw-name", check=False)
        r = call(self.srv, "GET", "/metrics", key=None)
        self.assertNotIn("some-raw-name", r.text)
        self.assertIn('route="/v1/collections/{name}"', r.text)
        r = call(self.srv, "GET", "/v1/openapi.json", key=None)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.json["openapi"].startswith("3.1"))

    def test_metrics_format(self):
        r = call(self.srv, "GET", "/metrics", key=None)
        seen_type = set()
        for line in r.text.splitlines():
            if line.startswith("# TYPE"):
                name = line.split()[2]
                self.assertNotIn(name, seen_type, "TYPE twice: " + name)
                seen_type.add(name)
                continue
            if not line or line.startswith("#"):
                continue
            self.assertRegex(line, r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]+="[^"\\\n]*",?)*\})? '
                                   r'[-+0-9.eEinfNa]+$')
        for name in seen_type:
            kind = [l for l in r.text.splitlines() if l.startswith("# TYPE %s " % name)][0].split()[3]
            if kind == "counter":
                self.assertTrue(name.endswith("_total"), name)

    def test_unknown_route_and_method(self):
        r = call(self.srv, "GET", "/nope", key=None)
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json["error"]["code"], "NOT_FOUND")
        r = call(self.srv, "PATCH", "/v1/collections", key=None)
        self.assertEqual(r.status, 405)
        self.assertEqual(set(x.strip() for x in r.headers["allow"].split(",")), {"POST", "GET"})
        r = call(self.srv, "DELETE", "/health/live", key=None)
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers["allow"], "GET")


class TestReadiness(unittest.TestCase):
    def test_unreachable_object_store_is_not_ready(self):
        # Port 1 on loopback: nothing listens, so the store cannot answer.
        secret = "s3-secret-never-logged-0123456789"
        s = Server("--store", "s3", "--s3-endpoint", "http://127.0.0.1:1", "--s3-bucket", "b",
                   env={"AKIDB_S3_ACCESS_KEY": "ak", "AKIDB_S3_SECRET_KEY": secret}).start()
        try:
            r = call(s, "GET", "/health/ready", key=None)
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json["error"]["code"], "NOT_READY")
            self.assertIn("object store", r.json["error"]["message"])
            self.assertIn("retry-after", r.headers)
            self.assertEqual(call(s, "GET", "/health/live", key=None).status, 200)
        finally:
            s.stop_clean(self)
        self.assertNotIn(secret, s.stderr())
        self.assertNotIn(secret, "\n".join(s.stdout_lines))

    def test_s3_without_credentials_refuses_to_start(self):
        s = Server("--store", "s3", "--s3-endpoint", "http://127.0.0.1:1", "--s3-bucket", "b",
                   env={"AKIDB_S3_ACCESS_KEY": "", "AKIDB_S3_SECRET_KEY": ""})
        self.assertEqual(s.start(expect_fail=True), 1)
        self.assertIn("S3 credentials", s.stderr())


class TestCollections(ServerCase):
    def test_lifecycle(self):
        c = create(self, self.srv, "life", dim=8, metric="cosine",
                   hnsw={"m": 8, "ef_construction": 50, "ef_search": 20})
        self.assertEqual((c["name"], c["dim"], c["metric"], c["count"], c["tier"], c["pinned"]),
                         ("life", 8, "cosine", 0, "hot", False))
        self.assertEqual(c["hnsw"], {"m": 8, "ef_construction": 50, "ef_search": 20})
        r = call(self.srv, "POST", "/v1/collections", {"name": "life", "dim": 8})
        self.assertEqual(r.status, 409)
        self.assertEqual(r.json["error"]["code"], "AKIDB_EXISTS")
        self.assertNotIn("default__", r.json["error"]["message"])
        r = call(self.srv, "GET", "/v1/collections")
        self.assertIn("life", [x["name"] for x in r.json["collections"]])
        r = call(self.srv, "GET", "/v1/collections/life")
        self.assertEqual(r.json["dim"], 8)
        r = call(self.srv, "DELETE", "/v1/collections/life")
        self.assertEqual(r.status, 204)
        r = call(self.srv, "GET", "/v1/collections/life")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json["error"]["code"], "AKIDB_NOTFOUND")
        r = call(self.srv, "DELETE", "/v1/collections/life")
        self.assertEqual(r.status, 404)

    def test_storage_kinds(self):
        # The create route takes the storage kind; the info shows it and
        # the RAM by component (an int8 copy without exact vectors holds
        # no floats once trained: beyond 4096 vectors).
        c = create(self, self.srv, "plain", dim=4)
        self.assertEqual((c["storage"], c["exact_vectors"]), ("f32", "ram"))
        self.assertEqual(c["bytes_by_component"]["compact_vectors"], 0)
        c = create(self, self.srv, "small", dim=16, metric="l2", storage="int8",
                   exact_vectors="none", rerank=3)
        self.assertEqual((c["storage"], c["exact_vectors"], c["rerank"]), ("int8", "none", 3))
        rows = [[float((i * 7 + d) % 13) for d in range(16)] for i in range(5000)]
        for at in range(0, 5000, 1000):
            insert(self, self.srv, "small", [{"vector": v} for v in rows[at:at + 1000]])
        r = call(self.srv, "POST", "/v1/collections/small/search", {"vector": rows[3], "k": 3})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json["hits"]), 3)
        info = call(self.srv, "GET", "/v1/collections/small").json
        parts = info["bytes_by_component"]
        self.assertEqual(info["bytes"], sum(parts.values()))
        self.assertGreaterEqual(parts["compact_vectors"], 5000 * 16)
        self.assertEqual(info["storage"], "int8")
        c = create(self, self.srv, "infile", dim=16, metric="l2", storage="int8",
                   exact_vectors="file")
        self.assertEqual((c["storage"], c["exact_vectors"]), ("int8", "file"))
        self.assertEqual(call(self.srv, "GET", "/v1/collections/infile").json["exact_vectors"],
                         "file")

    def test_default_metric_and_every_metric(self):
        c = create(self, self.srv, "dm", dim=2, metric="l2")
        self.assertEqual(c["metric"], "l2")
        r = call(self.srv, "POST", "/v1/collections", {"name": "dm2", "dim": 2})
        self.assertEqual((r.status, r.json["metric"]), (201, "l2"))
        self.assertEqual(create(self, self.srv, "dm3", dim=2, metric="dot")["metric"], "dot")

    def test_bad_create_bodies(self):
        bad = [
            ({"name": "x"}, "dim"),
            ({"dim": 3}, "name"),
            ({"name": "x", "dim": 0}, "dim"),
            ({"name": "x", "dim": 4097}, "dim"),
            ({"name": "x", "dim": 10 ** 12}, "dim"),
            ({"name": "x", "dim": -1}, "dim"),
            ({"name": "x", "dim": 3.5}, "dim"),
            ({"name": "x", "dim": "3"}, "dim"),
            ({"name": "x", "dim": 3, "metric": "hamming"}, "metric"),
            ({"name": "x", "dim": 3, "metric": 1}, "metric"),
            ({"name": 5, "dim": 3}, "name"),
            ({"name": "bad name", "dim": 3}, "collection names"),
            ({"name": "a/b", "dim": 3}, "collection names"),
            ({"name": "", "dim": 3}, "collection names"),
            ({"name": "x", "dim": 3, "extra": 1}, "unknown field"),
            ({"name": "x", "dim": 3, "hnsw": {"m": 1}}, "'m'"),
            ({"name": "x", "dim": 3, "hnsw": {"m": 500}}, "'m'"),
            ({"name": "x", "dim": 3, "hnsw": {"q": 1}}, "unknown field"),
            ({"name": "x", "dim": 3, "hnsw": [1]}, "hnsw"),
            ({"name": "x", "dim": 3, "storage": "int4"}, "'storage'"),
            ({"name": "x", "dim": 3, "storage": 8}, "storage"),
            ({"name": "x", "dim": 3, "exact_vectors": "disk"}, "'exact_vectors'"),
            ({"name": "x", "dim": 3, "rerank": 0}, "rerank"),
            ({"name": "x", "dim": 3, "rerank": 65}, "rerank"),
        ]
        for body, words in bad:
            r = call(self.srv, "POST", "/v1/collections", body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertIn(words, r.json["error"]["message"], body)
        self.assertNotIn("x", [c["name"] for c in call(self.srv, "GET", "/v1/collections").json["collections"]])

    def test_name_length_limit_is_per_tenant(self):
        # tenant "default" (7 characters): names up to 64 - 7 - 2 = 55.
        create(self, self.srv, "n" * 55, dim=2)
        r = call(self.srv, "POST", "/v1/collections", {"name": "n" * 56, "dim": 2})
        self.assertEqual(r.status, 400)
        self.assertIn("1..55", r.json["error"]["message"])
        # Underscores, even doubled, are fine in a name.
        create(self, self.srv, "a__b_c-D9", dim=2)
        r = call(self.srv, "GET", "/v1/collections/a__b_c-D9")
        self.assertEqual(r.status, 200)


class TestDocuments(ServerCase):
    ARGS = ("--max-batch", "10")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = call(cls.srv, "POST", "/v1/collections", {"name": "d", "dim": 3, "metric": "l2"})
        assert r.status == 201, r

    def count(self, coll="d"):
        return call(self.srv, "GET", "/v1/collections/" + coll).json["count"]

    def test_insert_get_delete(self):
        meta = {"title": "caf\u00e9 \u6771\u4eac \U0001F600", "n": 12345678901234,
                "pi": 3.141592653589793, "tiny": 1.5e-300, "neg": -0.1, "list": [1, 2.5, None, True],
                "nested": {"a": {"b": [{}]}}}
        r = insert(self, self.srv, "d", [
            {"external_id": "doc-1", "vector": [1, 2, 3], "metadata": meta},
            {"vector": [0.5, -1e-8, 3.4e38]},
        ])
        ids = r.json["ids"]
        self.assertEqual(len(ids), 2)
        g = call(self.srv, "GET", "/v1/collections/d/vectors/%d" % ids[0])
        self.assertEqual(g.status, 200)
        self.assertEqual(g.json["external_id"], "doc-1")
        self.assertEqual(g.json["vector"], [1, 2, 3])
        self.assertEqual(g.json["metadata"], meta)   # every digit of every double
        g2 = call(self.srv, "GET", "/v1/collections/d/vectors/%d" % ids[1])
        self.assertEqual(g2.json["external_id"], None)
        self.assertEqual(g2.json["metadata"], None)
        self.assertAlmostEqual(g2.json["vector"][2] / 3.4e38, 1, places=6)
        e = call(self.srv, "GET", "/v1/collections/d/vectors?external_id=doc-1")
        self.assertEqual(e.json["id"], ids[0])
        e = call(self.srv, "GET", "/v1/collections/d/vectors?external_id=nope")
        self.assertEqual(e.status, 404)
        r = call(self.srv, "DELETE", "/v1/collections/d/vectors/%d" % ids[0])
        self.assertEqual(r.status, 204)
        self.assertEqual(call(self.srv, "GET", "/v1/collections/d/vectors/%d" % ids[0]).status, 404)
        self.assertEqual(call(self.srv, "DELETE", "/v1/collections/d/vectors/%d" % ids[0]).status, 404)

    def test_external_id_query_is_decoded(self):
        ext = "a b&c=d/\u00e9?"
        ids = insert(self, self.srv, "d", [{"external_id": ext, "vector": [1, 1, 1]}]).json["ids"]
        from urllib.parse import quote
        r = call(self.srv, "GET", "/v1/collections/d/vectors?external_id=" + quote(ext, safe=""))
        self.assertEqual((r.status, r.json["id"]), (200, ids[0]))
        r = call(self.srv, "GET", "/v1/collections/d/vectors?external_id=%ZZ")
        self.assertEqual(r.status, 400)
        r = call(self.srv, "GET", "/v1/collections/d/vectors?external_id=%ff%fe")   # not UTF-8
        self.assertEqual(r.status, 400)
        r = call(self.srv, "GET", "/v1/collections/d/vectors")
        self.assertEqual(r.status, 400)

    def test_bad_ids(self):
        for bad in ("abc", "-1", "0", "1.5", "99999999999999999999", "9223372036854775808"):
            r = call(self.srv, "GET", "/v1/collections/d/vectors/" + bad)
            self.assertEqual(r.status, 400, bad)
        self.assertEqual(call(self.srv, "GET", "/v1/collections/d/vectors/9223372036854775807").status, 404)

    def test_batch_is_atomic_and_checked(self):
        before = self.count()
        cases = [
            ([{"vector": [1, 2, 3]}, {"vector": [1, 2]}], "has 2 values"),
            ([{"vector": [1, 2, 3]}, {"vector": [1, "2", 3]}], "not a number"),
            ([{"vector": [1, 2, 3]}, {"vector": [1, 2, 1e39]}], "32-bit float"),
            ([{"vector": [1, 2, 3]}, {"vector": None}], "vector"),
            ([{"vector": [1, 2, 3]}, {}], "required"),
            ([{"vector": [1, 2, 3]}, {"vector": [1, 2, 3], "external_id": 7}], "external_id"),
            ([{"vector": [1, 2, 3]}, {"vector": [1, 2, 3], "external_id": ""}], "external_id"),
            ([{"vector": [1, 2, 3]}, {"vector": [1, 2, 3], "external_id": "x" * 1025}], "external_id"),
            ([{"vector": [1, 2, 3]}, {"vector": [1, 2, 3], "colour": 1}], "unknown field"),
            ([{"vector": [1, 2, 3]}, [1, 2, 3]], "must be an object"),
            ([], "1..10"),
            ([{"vector": [1, 2, 3]}] * 11, "1..10"),
        ]
        for items, words in cases:
            r = call(self.srv, "POST", "/v1/collections/d/vectors", {"vectors": items})
            self.assertEqual(r.status, 400, (items[:3], r))
            self.assertIn(words, r.json["error"]["message"])
        for body in ({"vectors": {"vector": [1, 2, 3]}}, {"vector": [1, 2, 3]}, {}):
            self.assertEqual(call(self.srv, "POST", "/v1/collections/d/vectors", body).status, 400)
        # Duplicate external ids: within the batch, or with a stored one.
        r = call(self.srv, "POST", "/v1/collections/d/vectors",
                 {"vectors": [{"external_id": "dup", "vector": [1, 2, 3]},
                              {"external_id": "dup", "vector": [1, 2, 3]}]})
        self.assertIn(r.status, (400, 409), r)
        insert(self, self.srv, "d", [{"external_id": "exists", "vector": [1, 2, 3]}])
        r = call(self.srv, "POST", "/v1/collections/d/vectors",
                 {"vectors": [{"external_id": "fresh", "vector": [1, 2, 3]},
                              {"external_id": "exists", "vector": [1, 2, 3]}]})
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json["error"]["code"], "AKIDB_EXISTS")
        self.assertEqual(call(self.srv, "GET", "/v1/collections/d/vectors?external_id=fresh").status, 404)
        self.assertEqual(self.count(), before + 1)

    def test_upsert(self):
        r = call(self.srv, "PUT", "/v1/collections/d/vectors",
                 {"vectors": [{"external_id": "u1", "vector": [1, 0, 0], "metadata": {"v": 1}},
                              {"external_id": "u2", "vector": [0, 1, 0]}]})
        self.assertEqual(r.status, 200, r)
        first = r.json["ids"]
        r = call(self.srv, "PUT", "/v1/collections/d/vectors",
                 {"vectors": [{"external_id": "u1", "vector": [9, 9, 9], "metadata": {"v": 2}}]})
        self.assertEqual(r.json["ids"], [first[0]])
        g = call(self.srv, "GET", "/v1/collections/d/vectors/%d" % first[0])
        self.assertEqual((g.json["vector"], g.json["metadata"]), ([9, 9, 9], {"v": 2}))
        r = call(self.srv, "PUT", "/v1/collections/d/vectors", {"vectors": [{"vector": [1, 0, 0]}]})
        self.assertEqual(r.status, 400)
        self.assertIn("required for an upsert", r.json["error"]["message"])

    def test_missing_collection(self):
        r = call(self.srv, "POST", "/v1/collections/nope/vectors", {"vectors": [{"vector": [1]}]})
        self.assertEqual(r.status, 404)
        self.assertEqual(call(self.srv, "GET", "/v1/collections/nope/vectors/1").status, 404)
        self.assertEqual(call(self.srv, "DELETE", "/v1/collections/nope/vectors/1").status, 404)

    def test_cosine_zero_vector_is_400(self):
        create(self, self.srv, "cz", dim=2, metric="cosine")
        r = call(self.srv, "POST", "/v1/collections/cz/vectors", {"vectors": [{"vector": [0, 0]}]})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["error"]["code"], "AKIDB_INVALID")


class TestSearch(ServerCase):
    ARGS = ("--max-k", "50", "--max-batch", "20")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        assert call(cls.srv, "POST", "/v1/collections", {"name": "s", "dim": 2}).status == 201
        items = [{"external_id": "p%d" % i, "vector": [float(i), 0.0], "metadata": {"i": i}}
                 for i in range(20)]
        r = call(cls.srv, "POST", "/v1/collections/s/vectors", {"vectors": items})
        assert r.status == 201, r
        cls.ids = r.json["ids"]

    def test_hits_ascending_with_metadata_and_vector(self):
        r = call(self.srv, "POST", "/v1/collections/s/search",
                 {"vector": [3.2, 0], "k": 5, "include_metadata": True, "include_vector": True})
        self.assertEqual(r.status, 200, r)
        hits = r.json["hits"]
        self.assertEqual([h["external_id"] for h in hits], ["p3", "p4", "p2", "p5", "p1"])
        d = [h["distance"] for h in hits]
        self.assertEqual(d, sorted(d))
        self.assertAlmostEqual(d[0], 0.04, places=5)
        self.assertEqual(hits[0]["metadata"], {"i": 3})
        self.assertEqual(hits[0]["vector"], [3, 0])
        self.assertEqual(hits[0]["id"], self.ids[3])
        r = call(self.srv, "POST", "/v1/collections/s/search", {"vector": [3.2, 0], "k": 2})
        self.assertNotIn("metadata", r.json["hits"][0])
        self.assertNotIn("vector", r.json["hits"][0])

    def test_exact_and_ef_and_default_k(self):
        r = call(self.srv, "POST", "/v1/collections/s/search", {"vector": [0, 0], "exact": True, "ef": 100})
        self.assertEqual(len(r.json["hits"]), 10)
        self.assertEqual(r.json["hits"][0]["external_id"], "p0")
        r = call(self.srv, "POST", "/v1/collections/s/search", {"vector": [0, 0], "k": 50})
        self.assertEqual(len(r.json["hits"]), 20)

    def test_bad_searches(self):
        cases = [
            ({"vector": [1, 2], "k": 51}, "'k'"),
            ({"vector": [1, 2], "k": 0}, "'k'"),
            ({"vector": [1, 2], "k": "5"}, "'k'"),
            ({"vector": [1]}, "dimension"),
            ({"k": 3}, "'vector' is required"),
            ({"vector": [1, 2], "exact": "yes"}, "'exact'"),
            ({"vector": [1, 2], "ef": 0}, "'ef'"),
            ({"vector": [1, 2], "filter": {}}, "unknown field"),
            ({"vector": "12"}, "array"),
        ]
        for body, words in cases:
            r = call(self.srv, "POST", "/v1/collections/s/search", body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertIn(words, r.json["error"]["message"])
        self.assertEqual(call(self.srv, "POST", "/v1/collections/none/search", {"vector": [1, 2]}).status, 404)

    def test_batch(self):
        r = call(self.srv, "POST", "/v1/collections/s/search/batch",
                 {"queries": [[0, 0], [19, 0], [7.1, 0]], "k": 1, "include_metadata": True})
        self.assertEqual(r.status, 200, r)
        self.assertEqual([x["hits"][0]["external_id"] for x in r.json["results"]], ["p0", "p19", "p7"])
        self.assertEqual(r.json["results"][1]["hits"][0]["metadata"], {"i": 19})
        for body in ({"queries": []}, {"queries": [[0, 0]] * 21}, {"queries": [[0, 0], [1]]},
                     {"queries": [[0, 0]], "vector": [0, 0]}, {"queries": "x"}):
            self.assertEqual(call(self.srv, "POST", "/v1/collections/s/search/batch", body).status, 400, body)

    def test_search_sees_fresh_writes_and_not_deleted(self):
        ids = insert(self, self.srv, "s", [{"external_id": "fresh", "vector": [100, 100]}]).json["ids"]
        r = call(self.srv, "POST", "/v1/collections/s/search", {"vector": [100, 100], "k": 1})
        self.assertEqual(r.json["hits"][0]["id"], ids[0])
        call(self.srv, "DELETE", "/v1/collections/s/vectors/%d" % ids[0])
        r = call(self.srv, "POST", "/v1/collections/s/search", {"vector": [100, 100], "k": 1})
        self.assertNotEqual(r.json["hits"][0]["id"], ids[0])


class TestSnapshots(ServerCase):
    def test_lifecycle(self):
        create(self, self.srv, "snap", dim=2)
        insert(self, self.srv, "snap", [{"vector": [1, 1]}, {"vector": [2, 2]}])
        r = call(self.srv, "POST", "/v1/collections/snap/snapshots")
        self.assertEqual(r.status, 201, r)
        sid = r.json["id"]
        self.assertEqual(r.json["rows"], 2)
        insert(self, self.srv, "snap", [{"vector": [3, 3]}])
        self.assertEqual(call(self.srv, "GET", "/v1/collections/snap").json["count"], 3)
        r = call(self.srv, "GET", "/v1/collections/snap/snapshots")
        self.assertEqual([s["id"] for s in r.json["snapshots"]], [sid])
        r = call(self.srv, "POST", "/v1/collections/snap/snapshots/%s/restore" % sid)
        self.assertEqual((r.status, r.json), (200, {"restored": sid, "count": 2}))
        self.assertEqual(call(self.srv, "GET", "/v1/collections/snap").json["count"], 2)
        r = call(self.srv, "POST", "/v1/collections/snap/snapshots/nonexistent/restore")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(call(self.srv, "DELETE", "/v1/collections/snap/snapshots/%s" % sid).status, 204)
        self.assertEqual(call(self.srv, "GET", "/v1/collections/snap/snapshots").json["snapshots"], [])
        self.assertEqual(call(self.srv, "DELETE", "/v1/collections/snap/snapshots/%s" % sid).status, 404)
        self.assertEqual(call(self.srv, "POST", "/v1/collections/nosuch/snapshots").status, 404)


class TestTiers(ServerCase):
    """The tier routes: moves, pins, roles, tenants, errors, audit, metrics."""

    def tier(self, name="t", key=ADMIN_KEY):
        r = call(self.srv, "GET", "/v1/collections/%s/tier" % name, key=key)
        self.assertEqual(r.status, 200, r)
        return r.json

    def move(self, to, name="t", key=ADMIN_KEY, status=200, rid=None):
        r = call(self.srv, "POST", "/v1/collections/%s/tier" % name, {"tier": to}, key=key,
                 headers={"X-Request-Id": rid} if rid else None)
        self.assertEqual(r.status, status, r)
        return r.json

    def audit(self):
        with open(os.path.join(self.srv.data, "audit.log"), encoding="utf-8") as f:
            return [json.loads(l) for l in f if l.strip()]

    def test_hot_cold_search_brings_it_back(self):
        create(self, self.srv, "t", dim=2)
        insert(self, self.srv, "t", [{"external_id": "a", "vector": [1, 1]},
                                     {"external_id": "b", "vector": [5, 5]},
                                     {"external_id": "c", "vector": [9, 9]}])
        ti = self.tier()
        self.assertEqual((ti["name"], ti["tier"], ti["pinned"], ti["busy"], ti["last_error"]),
                         ("t", "hot", False, False, None))
        self.assertGreater(ti["bytes"]["hot"], 0)
        self.assertEqual(ti["bytes"]["cold"], 0)
        # HOT -> COLD, step by step, in one call.
        ti = self.move("cold", rid="tier-cold")
        self.assertEqual(ti["tier"], "cold")
        self.assertGreater(ti["bytes"]["cold"], 0)
        self.assertEqual(self.tier()["tier"], "cold")
        c = call(self.srv, "GET", "/v1/collections/t").json
        self.assertEqual((c["tier"], c["count"]), ("cold", 3))
        # A search brings it back to HOT and answers from it.
        r = call(self.srv, "POST", "/v1/collections/t/search", {"vector": [5, 5], "k": 1})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["hits"][0]["external_id"], "b")
        ti = self.tier()
        self.assertEqual(ti["tier"], "hot")
        self.assertGreater(ti["last_access_us"], 0)
        # HOT -> WARM -> HOT by hand; a move to where it is is a no-op 200.
        self.assertEqual(self.move("warm")["tier"], "warm")
        self.assertGreater(self.tier()["bytes"]["warm"], 0)
        self.assertEqual(self.move("warm")["tier"], "warm")
        self.assertEqual(self.move("hot")["tier"], "hot")
        # Writes after the round trip work and nothing was lost.
        insert(self, self.srv, "t", [{"external_id": "d", "vector": [2, 2]}])
        self.assertEqual(call(self.srv, "GET", "/v1/collections/t").json["count"], 4)
        # The library's tier metrics are on /metrics.
        m = call(self.srv, "GET", "/metrics", key=None).text
        for series in ('akidb_tier_transitions_total{from="hot",to="warm",result="ok"}',
                       'akidb_tier_transitions_total{from="warm",to="cold",result="ok"}',
                       'akidb_tier_collections{tier="hot"}', "akidb_tier_load_seconds_count"):
            self.assertRegex(m, r"(?m)^%s [1-9]" % re.escape(series), series)
        # (a gauge the library's worker refreshes each cycle: present, any value)
        self.assertRegex(m, r'(?m)^akidb_tier_bytes\{tier="cold"\} \d+$')
        for route in ("/v1/collections/{name}/tier",):
            self.assertIn('route="%s"' % route, m)
        # Audited: the move, who, what, from where to where.
        lines = [l for l in self.audit() if l.get("request_id") == "tier-cold"]
        self.assertEqual(len(lines), 1, lines)
        l = lines[0]
        self.assertEqual((l["action"], l["result"], l["status"], l["target"], l["detail"]),
                         ("tier.change", "success", 200, "collection=t", "from=hot to=cold"))
        self.assertEqual(l["tenant"], "default")

    def test_pin_and_unpin(self):
        create(self, self.srv, "p", dim=2)
        insert(self, self.srv, "p", [{"vector": [1, 2]}])
        r = call(self.srv, "PUT", "/v1/collections/p/pin", headers={"X-Request-Id": "tier-pin"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["pinned"], r.json["tier"]), (True, "hot"))
        self.assertTrue(self.tier("p")["pinned"])
        self.assertTrue(call(self.srv, "GET", "/v1/collections/p").json["pinned"])
        # A pin stops the policy, not a manual move.
        self.assertEqual(self.move("warm", "p")["tier"], "warm")
        self.assertTrue(self.tier("p")["pinned"])
        self.assertEqual(self.move("hot", "p")["tier"], "hot")
        r = call(self.srv, "DELETE", "/v1/collections/p/pin", headers={"X-Request-Id": "tier-unpin"})
        self.assertEqual((r.status, r.json["pinned"]), (200, False))
        self.assertFalse(self.tier("p")["pinned"])
        # Idempotent.
        self.assertEqual(call(self.srv, "DELETE", "/v1/collections/p/pin").status, 200)
        by = {l.get("request_id"): l for l in self.audit()}
        self.assertEqual((by["tier-pin"]["action"], by["tier-pin"]["result"],
                          by["tier-pin"]["target"], by["tier-pin"]["detail"]),
                         ("tier.pin", "success", "collection=p", "pinned=true"))
        self.assertEqual((by["tier-unpin"]["action"], by["tier-unpin"]["detail"]),
                         ("tier.pin", "pinned=false"))

    def test_bad_bodies_are_400_naming_the_field(self):
        create(self, self.srv, "b", dim=2)
        for body in ({"tier": "lukewarm"}, {"tier": "HOT"}, {"tier": 1}, {"tier": None}, {},
                     {"tier": "hot", "extra": 1}):
            r = call(self.srv, "POST", "/v1/collections/b/tier", body,
                     headers={"X-Request-Id": "tier-bad"})
            self.assertEqual(r.status, 400, (body, r))
            self.assertEqual(r.json["error"]["code"], "BAD_REQUEST", body)
            self.assertIn("extra" if "extra" in body else "tier", r.json["error"]["message"], body)
        r = call(self.srv, "POST", "/v1/collections/b/tier", raw=b"")
        self.assertEqual(r.status, 400, r)
        r = call(self.srv, "POST", "/v1/collections/b/tier", raw=b"[\"cold\"]")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.tier("b")["tier"], "hot")
        bad = [l for l in self.audit() if l.get("request_id") == "tier-bad"]
        self.assertEqual(len(bad), 6, bad)
        self.assertTrue(all(l["action"] == "tier.change" and l["result"] == "failure" and
                            l["status"] == 400 for l in bad), bad)
        # A bad collection name is a 400 too.
        self.assertEqual(call(self.srv, "GET", "/v1/collections/a%20b/tier").status, 400)

    def test_unknown_collection_is_404(self):
        for method, path, body in (("GET", "/v1/collections/nosuch/tier", None),
                                   ("POST", "/v1/collections/nosuch/tier", {"tier": "warm"}),
                                   ("PUT", "/v1/collections/nosuch/pin", None),
                                   ("DELETE", "/v1/collections/nosuch/pin", None)):
            r = call(self.srv, method, path, body)
            self.assertEqual(r.status, 404, (method, path, r))
            self.assertEqual(r.json["error"]["code"], "AKIDB_NOTFOUND")
        r = call(self.srv, "PATCH", "/v1/collections/nosuch/pin")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers["allow"], "PUT, DELETE")

    def test_roles_and_tenants(self):
        owner, _ = make_key(self, self.srv, "tier-a", "writer")
        reader, _ = make_key(self, self.srv, "tier-a", "reader")
        other, _ = make_key(self, self.srv, "tier-b", "admin")
        create(self, self.srv, "mine", dim=2, key=owner)
        insert(self, self.srv, "mine", [{"vector": [1, 1]}], key=owner)
        # Reader: GET yes, the rest 403 (and nothing moves).
        self.assertEqual(self.tier("mine", key=reader)["tier"], "hot")
        for method, path, body in (("POST", "/v1/collections/mine/tier", {"tier": "cold"}),
                                   ("PUT", "/v1/collections/mine/pin", None),
                                   ("DELETE", "/v1/collections/mine/pin", None)):
            r = call(self.srv, method, path, body, key=reader)
            self.assertEqual(r.status, 403, (method, path, r))
            self.assertEqual(r.json["error"]["code"], "FORBIDDEN")
        ti = self.tier("mine", key=owner)
        self.assertEqual((ti["tier"], ti["pinned"]), ("hot", False))
        # Another tenant (even an admin) does not see it: 404, never its name.
        for method, path, body in (("GET", "/v1/collections/mine/tier", None),
                                   ("POST", "/v1/collections/mine/tier", {"tier": "cold"}),
                                   ("PUT", "/v1/collections/mine/pin", None),
                                   ("DELETE", "/v1/collections/mine/pin", None)):
            r = call(self.srv, method, path, body, key=other)
            self.assertEqual(r.status, 404, (method, path, r))
            self.assertNotIn("tier-a", r.text)
        # The writer moves and pins its own.
        self.assertEqual(self.move("warm", "mine", key=owner)["tier"], "warm")
        self.assertEqual(call(self.srv, "PUT", "/v1/collections/mine/pin", key=owner).status, 200)
        ti = self.tier("mine", key=reader)
        self.assertEqual((ti["tier"], ti["pinned"]), ("warm", True))
        denied = [l for l in self.audit() if l["action"] == "auth.denied" and
                  l.get("target", "").startswith("/v1/collections/mine/")]
        self.assertEqual(len(denied), 3, denied)


class TestTierPolicyConfig(unittest.TestCase):
    """The database's tiering policy through /v1/admin/config: validated,
    applied to the library (seen through the memory budget), audited, kept
    across a restart."""

    def test_policy_fields(self):
        s = Server().start()
        try:
            c = call(s, "GET", "/v1/admin/config").json["config"]
            self.assertEqual((c["tier_hot_ttl_s"], c["tier_warm_ttl_s"], c["tier_promote_per_hour"],
                              c["tier_disabled"], c["tier_snapshot_retention"],
                              c["tier_memory_budget"], c["tier_store_quota"]),
                             (21600, 604800, 10, False, 3, 0, 0))
            before = call(s, "GET", "/v1/admin/config").json
            for body, field in (({"tier_promote_per_hour": 0}, "tier_promote_per_hour"),
                                ({"tier_snapshot_retention": 0}, "tier_snapshot_retention"),
                                ({"tier_hot_ttl_s": -1}, "tier_hot_ttl_s"),
                                ({"tier_memory_budget": "lots"}, "tier_memory_budget"),
                                ({"tier_disabled": "maybe"}, "tier_disabled"),
                                ({"tier_store_quota": 5, "tier_warm_ttl_s": 1.5}, "tier_warm_ttl_s"),
                                ({"tier_policy": 1}, "tier_policy")):
                r = call(s, "PUT", "/v1/admin/config", body)
                self.assertEqual(r.status, 400, (body, r))
                self.assertIn(field, r.json["error"]["message"], body)
                self.assertEqual(call(s, "GET", "/v1/admin/config").json, before, body)
            call(s, "POST", "/v1/collections", {"name": "big", "dim": 2})
            call(s, "POST", "/v1/collections/big/vectors", {"vectors": [{"vector": [1, 2]}]})
            r = call(s, "POST", "/v1/collections/big/tier", {"tier": "warm"})
            self.assertEqual(r.status, 200, r)
            # A 1-byte memory budget reaches the library: the collection no
            # longer fits in RAM, so bringing it back is refused (507).
            r = call(s, "PUT", "/v1/admin/config", {"tier_memory_budget": 1, "tier_hot_ttl_s": 0},
                     headers={"X-Request-Id": "tier-budget"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["config"]["tier_memory_budget"], 1)
            self.assertEqual(sorted(r.json["overridden"]), ["tier_hot_ttl_s", "tier_memory_budget"])
            r = call(s, "POST", "/v1/collections/big/tier", {"tier": "hot"})
            self.assertEqual((r.status, r.json["error"]["code"]), (507, "AKIDB_QUOTA"), r)
            self.assertNotIn("default__", r.text)
            self.assertEqual(call(s, "GET", "/v1/collections/big/tier").json["tier"], "warm")
            with open(os.path.join(s.data, "audit.log"), encoding="utf-8") as f:
                lines = [json.loads(l) for l in f if l.strip()]
            l = [x for x in lines if x.get("request_id") == "tier-budget"]
            self.assertEqual(len(l), 1, l)
            self.assertEqual((l[0]["action"], l[0]["result"]), ("config.change", "success"))
            self.assertIn("tier_memory_budget=1", l[0]["detail"])
            # Kept across a restart (the library itself does not keep it).
            self.assertEqual(s.stop(), 0)
            s.start()
            self.assertEqual(call(s, "GET", "/v1/admin/config").json["config"]["tier_memory_budget"], 1)
            r = call(s, "POST", "/v1/collections/big/tier", {"tier": "hot"})
            self.assertEqual(r.status, 507, r)
            # null: back to the startup value (unlimited), and it loads.
            r = call(s, "PUT", "/v1/admin/config", {"tier_memory_budget": None})
            self.assertEqual((r.status, r.json["config"]["tier_memory_budget"]), (200, 0))
            r = call(s, "POST", "/v1/collections/big/tier", {"tier": "hot"})
            self.assertEqual((r.status, r.json["tier"]), (200, "hot"), r)
        finally:
            s.stop_clean(self)

    def test_startup_flag(self):
        s = Server("--tier-memory-budget", "1", "--tier-disabled").start()
        try:
            c = call(s, "GET", "/v1/admin/config").json
            self.assertEqual((c["config"]["tier_memory_budget"], c["config"]["tier_disabled"],
                              c["overridden"]), (1, True, []))
            call(s, "POST", "/v1/collections", {"name": "x", "dim": 2})
            call(s, "POST", "/v1/collections/x/vectors", {"vectors": [{"vector": [1, 2]}]})
            self.assertEqual(call(s, "POST", "/v1/collections/x/tier", {"tier": "cold"}).status, 200)
            self.assertEqual(call(s, "POST", "/v1/collections/x/tier", {"tier": "hot"}).status, 507)
        finally:
            s.stop_clean(self)
        s = Server("--tier-promote-per-hour", "0")
        self.assertNotEqual(s.start(expect_fail=True), 0)


class TestTierFailure(unittest.TestCase):
    """A move that fails leaves the collection where the library left it,
    readable, with the error in GET .../tier and a failure audit line."""

    def test_failed_move_is_reported(self):
        s = Server()
        objs = os.path.join(s.tmp, "objs")
        os.makedirs(objs)
        s.args += ["--store-dir", objs]
        s.start()
        try:
            call(s, "POST", "/v1/collections", {"name": "f", "dim": 2})
            call(s, "POST", "/v1/collections/f/vectors", {"vectors": [{"vector": [1, 2]}]})
            # The object store breaks: its directory becomes a file.
            shutil.rmtree(objs)
            with open(objs, "w") as f:
                f.write("not a directory")
            r = call(s, "POST", "/v1/collections/f/tier", {"tier": "cold"},
                     headers={"X-Request-Id": "tier-fail"})
            self.assertGreaterEqual(r.status, 400, r)
            self.assertRegex(r.json["error"]["code"], r"^AKIDB_[A-Z]+$")
            ti = call(s, "GET", "/v1/collections/f/tier").json
            self.assertIn(ti["tier"], ("hot", "warm"))
            self.assertEqual(ti["bytes"]["cold"], 0)
            self.assertIsNotNone(ti["last_error"])
            self.assertEqual(ti["last_error"]["code"], r.json["error"]["code"])
            self.assertIn("local store", ti["last_error"]["message"])
            self.assertNotIn("default__", json.dumps(ti))
            r2 = call(s, "POST", "/v1/collections/f/search", {"vector": [1, 2], "k": 1})
            self.assertEqual((r2.status, len(r2.json["hits"])), (200, 1))
            with open(os.path.join(s.data, "audit.log"), encoding="utf-8") as f:
                lines = [json.loads(l) for l in f if l.strip()]
            l = [x for x in lines if x.get("request_id") == "tier-fail"]
            self.assertEqual(len(l), 1, l)
            self.assertEqual((l[0]["action"], l[0]["result"], l[0]["status"]),
                             ("tier.change", "failure", r.status))
            # The store is back (the local store holds its directory open:
            # a restart opens the new one): the move goes through.
            os.remove(objs)
            os.makedirs(objs)
            self.assertEqual(s.stop(), 0)
            s.start()
            r = call(s, "POST", "/v1/collections/f/tier", {"tier": "cold"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["tier"], "cold")
            self.assertGreater(r.json["bytes"]["cold"], 0)
        finally:
            s.stop_clean(self)


class TestAuth(ServerCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()

    def test_no_key_bad_key_malformed(self):
        r = call(self.srv, "GET", "/v1/collections", key=None)
        self.assertEqual(r.status, 401)
        self.assertIn("Bearer", r.headers["www-authenticate"])
        self.assertEqual(call(self.srv, "GET", "/v1/collections", key="wrong").status, 401)
        self.assertEqual(call(self.srv, "GET", "/v1/collections", key=ADMIN_KEY[:-1]).status, 401)
        self.assertEqual(call(self.srv, "GET", "/v1/collections", key=ADMIN_KEY + "x").status, 401)
        for h in ("Basic abc", "Bearer", "Bearer ", ADMIN_KEY, "bearer" + ADMIN_KEY):
            r = call(self.srv, "GET", "/v1/collections", key=None, headers={"Authorization": h})
            self.assertEqual(r.status, 401, h)
        # The scheme is case-insensitive.
        r = call(self.srv, "GET", "/v1/collections", key=None,
                 headers={"Authorization": "bearer " + ADMIN_KEY})
        self.assertEqual(r.status, 200)

    def test_roles(self):
        reader, _ = make_key(self, self.srv, "roles", "reader")
        writer, _ = make_key(self, self.srv, "roles", "writer")
        r = call(self.srv, "POST", "/v1/collections", {"name": "c", "dim": 2}, key=reader)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json["error"]["code"], "FORBIDDEN")
        create(self, self.srv, "c", dim=2, key=writer)
        self.assertEqual(call(self.srv, "POST", "/v1/collections/c/vectors",
                              {"vectors": [{"vector": [1, 2]}]}, key=reader).status, 403)
        insert(self, self.srv, "c", [{"vector": [1, 2]}], key=writer)
        self.assertEqual(call(self.srv, "POST", "/v1/collections/c/search", {"vector": [1, 2]}, key=reader).status, 200)
        self.assertEqual(call(self.srv, "GET", "/v1/collections/c", key=reader).status, 200)
        self.assertEqual(call(self.srv, "DELETE", "/v1/collections/c/vectors/1", key=reader).status, 403)
        self.assertEqual(call(self.srv, "POST", "/v1/collections/c/snapshots", key=reader).status, 403)
        self.assertEqual(call(self.srv, "DELETE", "/v1/collections/c", key=reader).status, 403)
        for key in (reader, writer):
            self.assertEqual(call(self.srv, "GET", "/v1/admin/keys", key=key).status, 403)
            self.assertEqual(call(self.srv, "POST", "/v1/admin/keys", {"tenant": "x", "role": "admin"}, key=key).status, 403)
            self.assertEqual(call(self.srv, "PUT", "/v1/admin/tenants/roles/quota", {"qps": 0}, key=key).status, 403)

    def test_revoked_key(self):
        k, kid = make_key(self, self.srv, "rev", "writer", "to revoke")
        self.assertEqual(call(self.srv, "GET", "/v1/collections", key=k).status, 200)
        r = call(self.srv, "GET", "/v1/admin/keys")
        listed = [x for x in r.json["keys"] if x["id"] == kid]
        self.assertEqual(listed[0]["name"], "to revoke")
        self.assertNotIn(k, r.text)            # the key itself is never listed
        self.assertEqual(call(self.srv, "DELETE", "/v1/admin/keys/" + kid).status, 204)
        r = call(self.srv, "GET", "/v1/collections", key=k)
        self.assertEqual(r.status, 401)
        self.assertEqual(call(self.srv, "DELETE", "/v1/admin/keys/" + kid).status, 404)
        r = call(self.srv, "GET", "/v1/admin/keys?tenant=rev")
        self.assertEqual(r.json["keys"], [])

    def test_tenant_isolation(self):
        a, _ = make_key(self, self.srv, "tenant-a", "writer")
        b, _ = make_key(self, self.srv, "tenant-b", "writer")
        create(self, self.srv, "secret", dim=2, key=a)
        insert(self, self.srv, "secret", [{"external_id": "s", "vector": [1, 1]}], key=a)
        for method, path, body in (
                ("GET", "/v1/collections/secret", None),
                ("DELETE", "/v1/collections/secret", None),
                ("POST", "/v1/collections/secret/vectors", {"vectors": [{"vector": [1, 1]}]}),
                ("GET", "/v1/collections/secret/vectors/1", None),
                ("GET", "/v1/collections/secret/vectors?external_id=s", None),
                ("DELETE", "/v1/collections/secret/vectors/1", None),
                ("POST", "/v1/collections/secret/search", {"vector": [1, 1]}),
                ("POST", "/v1/collections/secret/snapshots", None),
                ("GET", "/v1/collections/secret/snapshots", None)):
            r = call(self.srv, method, path, body, key=b)
            self.assertEqual(r.status, 404, (method, path, r))
            self.assertNotIn("tenant-a", r.text)
        self.assertNotIn("secret", [c["name"] for c in call(self.srv, "GET", "/v1/collections", key=b).json["collections"]])
        # Same name, other tenant: a separate collection.
        create(self, self.srv, "secret", dim=3, key=b)
        self.assertEqual(call(self.srv, "GET", "/v1/collections/secret", key=a).json["dim"], 2)
        self.assertEqual(call(self.srv, "GET", "/v1/collections/secret", key=b).json["dim"], 3)
        self.assertEqual(call(self.srv, "GET", "/v1/collections/secret", key=b).json["count"], 0)

    def test_key_create_validation(self):
        for body in ({"tenant": "Bad", "role": "reader"}, {"tenant": "a_b", "role": "reader"},
                     {"tenant": "-a", "role": "reader"}, {"tenant": "a--b", "role": "reader"},
                     {"tenant": "x" * 33, "role": "reader"}, {"tenant": "ok", "role": "root"},
                     {"tenant": "ok"}, {"role": "reader"}, {"tenant": "ok", "role": "reader", "name": "a\nb"},
                     {"tenant": "ok", "role": "reader", "x": 1}):
            r = call(self.srv, "POST", "/v1/admin/keys", body)
            self.assertEqual(r.status, 400, body)
        r = call(self.srv, "POST", "/v1/admin/keys", {"tenant": "ok-1", "role": "reader"})
        self.assertRegex(r.json["key"], r"^akidb_[A-Za-z0-9_-]{43}$")

    def test_last_admin_key_cannot_be_revoked(self):
        s = Server().start()
        try:
            admins = call(s, "GET", "/v1/admin/keys").json["keys"]
            self.assertEqual(len(admins), 1)
            r = call(s, "DELETE", "/v1/admin/keys/" + admins[0]["id"])
            self.assertEqual(r.status, 409, r)
            new, nid = make_key(self, s, "default", "admin")
            self.assertEqual(call(s, "DELETE", "/v1/admin/keys/" + admins[0]["id"], key=new).status, 204)
            self.assertEqual(call(s, "GET", "/v1/collections").status, 401)   # ADMIN_KEY revoked
            self.assertEqual(call(s, "DELETE", "/v1/admin/keys/" + nid, key=new).status, 409)
            self.assertEqual(call(s, "GET", "/v1/admin/keys", key=new).status, 200)
        finally:
            s.stop_clean(self)


class TestNoAuth(unittest.TestCase):
    def test_no_auth_refused_off_loopback(self):
        s = Server("--no-auth", "--host", "0.0.0.0", admin_key=None)
        rc = s.start(expect_fail=True)
        self.assertEqual(rc, 1)
        self.assertIn("non-loopback", s.stderr())

    def test_no_auth_on_loopback(self):
        s = Server("--no-auth", admin_key=None).start()
        try:
            r = call(s, "POST", "/v1/collections", {"name": "free", "dim": 2}, key=None)
            self.assertEqual(r.status, 201, r)
            self.assertEqual(call(s, "GET", "/v1/admin/keys", key=None).json["keys"], [])
        finally:
            s.stop_clean(self)


class TestHttpLimits(ServerCase):
    ARGS = ("--max-body-bytes", "4096", "--max-header-bytes", "2048", "--max-url-bytes", "512",
            "--request-timeout-ms", "1500", "--idle-timeout-ms", "3000", "--max-connections", "8",
            "--max-json-depth", "8")

    def test_body_too_large(self):
        r = call(self.srv, "POST", "/v1/collections", raw=b"{" + b" " * 5000 + b"}")
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json["error"]["code"], "PAYLOAD_TOO_LARGE")
        # Refused on the declared length, before any body byte is sent.
        out = raw_exchange(self.srv, b"POST /v1/collections HTTP/1.1\r\nHost: x\r\n"
                                     b"Content-Length: 100000000\r\n\r\n")
        self.assertEqual(parse_responses(out)[0][0], 413)
        # Chunked: cut off once past the limit.
        chunk = b"%x\r\n%s\r\n" % (1000, b"a" * 1000)
        out = raw_exchange(self.srv, b"POST /v1/collections HTTP/1.1\r\nHost: x\r\n"
                                     b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 6 + b"0\r\n\r\n")
        self.assertEqual(parse_responses(out)[0][0], 413)

    def test_headers_and_url_too_large(self):
        out = raw_exchange(self.srv, b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " +
                           b"a" * 3000 + b"\r\n\r\n")
        resp = parse_responses(out)
        self.assertEqual(resp[0][0], 431)
        self.assertEqual(json.loads(resp[0][2])["error"]["code"], "HEADERS_TOO_LARGE")
        many = b"".join(b"X-%d: y\r\n" % i for i in range(150))
        out = raw_exchange(self.srv, b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        self.assertEqual(parse_responses(out)[0][0], 431)
        out = raw_exchange(self.srv, b"GET /health/live?" + b"a" * 600 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(parse_responses(out)[0][0], 414)

    def test_malformed_json_bodies(self):
        create(self, self.srv, "j", dim=2)
        cases = [
            (b"{", "malformed JSON"),
            (b"", "empty"),
            (b"   ", "empty"),
            (b"[1,2]", "must be a JSON object"),
            (b"null", "must be a JSON object"),
            (b'{"vector": [NaN, 1]}', "malformed JSON"),
            (b'{"vector": [Infinity, 1]}', "malformed JSON"),
            (b'{"vector": [1e999, 1]}', "malformed JSON"),
            (b'{"vector": [1, 2], "vector": [1, 2]}', "malformed JSON"),
            (b'{"vector": [1, 2], "k": 1}garbage', "malformed JSON"),
            (b'{"vector": "\xff\xfe"}', "malformed JSON"),
            (b'{"vector": [1, 2], "x\xc3": 1}', "malformed JSON"),
            (b'{"vector": "\\u0000"}', "malformed JSON"),
            (b'{"a":' * 9 + b"1" + b"}" * 9, "nested deeper"),
            (b"[" * 4000, "nested deeper"),
            (b'{"vector": [1, 2], "k": 99999999999999999999999}', "malformed JSON"),
        ]
        for body, words in cases:
            r = call(self.srv, "POST", "/v1/collections/j/search", raw=body,
                     headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, (body[:40], r))
            self.assertIn(words, r.json["error"]["message"], body[:40])
            self.assertEqual(r.json["error"]["code"], "INVALID_JSON")
        # Within the depth limit, nesting is fine (metadata).
        meta = {"a": {"b": {"c": {"d": [1]}}}}
        r = call(self.srv, "POST", "/v1/collections/j/vectors", {"vectors": [{"vector": [1, 2], "metadata": meta}]})
        self.assertEqual(r.status, 201, r)

    def test_bad_request_lines(self):
        out = raw_exchange(self.srv, b"GET /health/live HTTP/2.0\r\n\r\n")
        self.assertEqual(parse_responses(out)[0][0], 505)
        for data in (b"GARBAGE\r\n\r\n", b"\x00\x01\x02\r\n\r\n",
                     b"GET /health/live HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                     b"POST /v1/collections HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                     b"GET /health/live HTTP/1.1\r\nBad Header\r\n\r\n"):
            out = raw_exchange(self.srv, data)
            resp = parse_responses(out)
            self.assertTrue(resp, data)
            self.assertEqual(resp[0][0], 400, (data, out[:200]))
        self.assertEqual(call(self.srv, "GET", "/health/live", key=None).status, 200)

    def test_slowloris_gets_408(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10 * SCALE)
        t0 = time.time()
        s.sendall(b"GET /health/live HTTP/1.1\r\n")
        out = b""
        try:
            for i in range(40):
                time.sleep(0.1)
                s.sendall(b"X-Slow-%d: y\r\n" % i)   # trickle, never finish
        except OSError:
            pass                                      # closed by the server: fine
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
        except OSError:
            pass
        s.close()
        elapsed = time.time() - t0
        resp = parse_responses(out)
        self.assertEqual(resp[0][0], 408, out[:300])
        self.assertLess(elapsed, 6 * SCALE)
        self.assertEqual(call(self.srv, "GET", "/health/live", key=None).status, 200)

    def test_idle_connection_closed(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=15 * SCALE)
        t0 = time.time()
        self.assertEqual(s.recv(10), b"")      # closed quietly after the idle timeout
        self.assertGreater(time.time() - t0, 2.0)
        s.close()

    def test_disconnects_mid_request(self):
        create(self, self.srv, "mid", dim=2)
        for i in range(20):
            s = socket.create_connection(("127.0.0.1", self.srv.port))
            body = json.dumps({"vectors": [{"vector": [1, 2]}]}).encode()
            s.sendall(b"POST /v1/collections/mid/vectors HTTP/1.1\r\nAuthorization: Bearer " +
                      ADMIN_KEY.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) +
                      body[:len(body) // 2 if i % 2 else len(body)])
            s.close()      # half a body, or a whole request and then gone
        time.sleep(0.3)
        self.assertEqual(call(self.srv, "GET", "/health/live", key=None).status, 200)
        n = call(self.srv, "GET", "/v1/collections/mid").json["count"]
        self.assertLessEqual(n, 10)             # only complete requests could insert

    def test_max_connections(self):
        socks = []
        try:
            for _ in range(8):
                socks.append(socket.create_connection(("127.0.0.1", self.srv.port)))
            time.sleep(0.2)
            extra = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
            out = b""
            while True:
                chunk = extra.recv(4096)
                if not chunk:
                    break
                out += chunk
            extra.close()
            resp = parse_responses(out)
            self.assertEqual(resp[0][0], 503)
            self.assertEqual(resp[0][1]["retry-after"], "1")
        finally:
            for s in socks:
                s.close()
        time.sleep(0.3)
        self.assertEqual(call(self.srv, "GET", "/health/live", key=None).status, 200)

    def test_keepalive_pipelining_chunked_expect(self):
        req = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-Id: r%d\r\n\r\n"
        body = b'{"name": "pipe", "dim": 2}'
        pipelined = (req % 1 + b"POST /v1/collections HTTP/1.1\r\nAuthorization: Bearer " +
                     ADMIN_KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\nX-Request-Id: r2\r\n\r\n" +
                     b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:]) +
                     req % 3 + b"GET /nope HTTP/1.1\r\nX-Request-Id: r4\r\nConnection: close\r\n\r\n")
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        s.sendall(pipelined)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        resp = parse_responses(out)
        self.assertEqual([r[0] for r in resp], [200, 201, 200, 404])
        self.assertEqual([r[1]["x-request-id"] for r in resp], ["r1", "r2", "r3", "r4"])
        self.assertEqual(resp[0][1]["connection"], "keep-alive")
        self.assertEqual(resp[3][1]["connection"], "close")
        # Expect: 100-continue
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        s.sendall(b"POST /v1/collections HTTP/1.1\r\nAuthorization: Bearer " + ADMIN_KEY.encode() +
                  b"\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body.replace(b"pipe", b"expc")))
        first = s.recv(100)
        self.assertTrue(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first)
        s.sendall(body.replace(b"pipe", b"expc"))
        rest = first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
        while b"\r\n\r\n" not in rest:
            rest += s.recv(4096)
        self.assertIn(b" 201 ", rest.split(b"\r\n")[0])
        s.close()
        # HTTP/1.0 without keep-alive: one answer, then close.
        out = raw_exchange(self.srv, b"GET /health/live HTTP/1.0\r\n\r\n")
        resp = parse_responses(out)
        self.assertEqual((resp[0][0], resp[0][1]["connection"]), (200, "close"))

    def test_pipelined_partial_request(self):
        # The first write holds a whole request and the start of the next;
        # the rest of the second comes later, on the same connection.
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        s.sendall(b"GET /health/live HTTP/1.1\r\nX-Request-Id: a\r\n\r\nGET /health/li")
        got = b""
        while got.count(b"\r\n\r\n") < 1 or not got.endswith(b"}"):
            got += s.recv(4096)
        time.sleep(0.2)
        s.sendall(b"ve HTTP/1.1\r\nX-Request-Id: b\r\nConnection: close\r\n\r\n")
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        s.close()
        resp = parse_responses(got)
        self.assertEqual([(r[0], r[1]["x-request-id"]) for r in resp], [(200, "a"), (200, "b")])

    def test_request_id_header(self):
        r = call(self.srv, "GET", "/health/live", key=None, headers={"X-Request-Id": "abc-123"})
        self.assertEqual(r.headers["x-request-id"], "abc-123")
        r = call(self.srv, "GET", "/health/live", key=None, headers={"X-Request-Id": "bad id\u00e9".encode("utf-8").decode("latin-1")})
        self.assertRegex(r.headers["x-request-id"], r"^[0-9a-f]{16}$")


class TestRateLimits(ServerCase):
    ARGS = ("--rate-qps", "1000", "--rate-burst", "1000")

    def test_429_headers_and_runtime_change(self):
        k, _ = make_key(self, self.srv, "limited", "reader")
        r = call(self.srv, "PUT", "/v1/admin/tenants/limited/quota", {"qps": 0.5, "burst": 3})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["qps"], r.json["burst"], r.json["is_default"]), (0.5, 3, False))
        got = [call(self.srv, "GET", "/v1/collections", key=k) for _ in range(4)]
        self.assertEqual([g.status for g in got], [200, 200, 200, 429])
        self.assertEqual(got[0].headers["x-ratelimit-limit"], "3")
        self.assertEqual(got[0].headers["x-ratelimit-remaining"], "2")
        self.assertEqual(got[2].headers["x-ratelimit-remaining"], "0")
        lim = got[3]
        self.assertEqual(lim.json["error"]["code"], "RATE_LIMITED")
        self.assertEqual(lim.headers["retry-after"], "2")
        self.assertEqual(lim.headers["x-ratelimit-remaining"], "0")
        self.assertIn(int(lim.headers["x-ratelimit-reset"]), (5, 6))
        # Other tenants are not affected.
        self.assertEqual(call(self.srv, "GET", "/v1/collections").status, 200)
        m = call(self.srv, "GET", "/metrics", key=None).text
        self.assertRegex(m, r'akidb_http_rate_limited_total\{tenant="limited"\} [1-9]')
        # Raised at run time: applies to the next request.
        r = call(self.srv, "PUT", "/v1/admin/tenants/limited/quota", {"qps": 100, "burst": 100})
        self.assertEqual(r.status, 200)
        self.assertEqual(call(self.srv, "GET", "/v1/collections", key=k).status, 200)
        r = call(self.srv, "DELETE", "/v1/admin/tenants/limited/quota")
        self.assertEqual(r.status, 204)
        r = call(self.srv, "GET", "/v1/admin/tenants/limited/quota")
        self.assertEqual((r.json["qps"], r.json["is_default"]), (1000, True))

    def test_bad_quota_bodies(self):
        for body in ({"qps": -1}, {"qps": "1"}, {"qps": 5, "burst": 0}, {"max_vectors": -1},
                     {"max_collections": 1.5}, {"other": 1}):
            self.assertEqual(call(self.srv, "PUT", "/v1/admin/tenants/x/quota", body).status, 400, body)
        self.assertEqual(call(self.srv, "GET", "/v1/admin/tenants/Bad_Tenant/quota").status, 400)

    def test_collection_and_vector_quotas(self):
        k, _ = make_key(self, self.srv, "small", "writer")
        r = call(self.srv, "PUT", "/v1/admin/tenants/small/quota",
                 {"qps": 0, "max_collections": 1, "max_vectors": 5})
        self.assertEqual(r.status, 200)
        create(self, self.srv, "one", dim=2, key=k)
        r = call(self.srv, "POST", "/v1/collections", {"name": "two", "dim": 2}, key=k)
        self.assertEqual(r.status, 507, r)
        self.assertEqual(r.json["error"]["code"], "QUOTA_EXCEEDED")
        self.assertNotIn("x-ratelimit-limit", r.headers)   # qps 0: unlimited
        insert(self, self.srv, "one", [{"external_id": "e%d" % i, "vector": [i, i]} for i in range(4)], key=k)
        r = call(self.srv, "POST", "/v1/collections/one/vectors",
                 {"vectors": [{"vector": [1, 1]}, {"vector": [2, 2]}]}, key=k)
        self.assertEqual(r.status, 507, r)
        # An upsert that only replaces does not count.
        r = call(self.srv, "PUT", "/v1/collections/one/vectors",
                 {"vectors": [{"external_id": "e%d" % i, "vector": [0, i]} for i in range(4)]}, key=k)
        self.assertEqual(r.status, 200, r)
        insert(self, self.srv, "one", [{"vector": [1, 1]}], key=k)
        self.assertEqual(call(self.srv, "GET", "/v1/collections/one", key=k).json["count"], 5)


class TestLifecycle(unittest.TestCase):
    """Restarts, shutdown, bootstrap, config precedence."""

    def test_restart_keeps_keys_quotas_collections(self):
        s = Server().start()
        k, kid = make_key(self, s, "keep", "writer")
        create(self, s, "kept", dim=2, key=k)
        ids = insert(self, s, "kept", [{"external_id": "x", "vector": [1, 2], "metadata": {"m": 1}}], key=k).json["ids"]
        call(s, "PUT", "/v1/admin/tenants/keep/quota", {"qps": 77, "burst": 88, "max_vectors": 1000})
        s.stop_clean(self)
        s.admin_key = "another-bootstrap-key-is-ignored-now"
        s.start()
        self.assertIn("ignored", s.stderr())
        self.assertEqual(call(s, "GET", "/v1/collections", key="another-bootstrap-key-is-ignored-now").status, 401)
        r = call(s, "GET", "/v1/collections/kept/vectors/%d" % ids[0], key=k)
        self.assertEqual((r.status, r.json["metadata"]), (200, {"m": 1}))
        q = call(s, "GET", "/v1/admin/tenants/keep/quota").json
        self.assertEqual((q["qps"], q["burst"], q["max_vectors"], q["is_default"]), (77, 88, 1000, False))
        self.assertIn(kid, [x["id"] for x in call(s, "GET", "/v1/admin/keys").json["keys"]])
        s.stop_clean(self)

    def test_first_start_prints_key_once(self):
        s = Server(admin_key=None).start()
        out = "\n".join(s.stdout_lines)
        m = re.search(r"export AKIDB_KEY=(akidb_[A-Za-z0-9_-]{43})", out)
        self.assertTrue(m, out)
        self.assertIn("curl -H \"Authorization: Bearer $AKIDB_KEY\" http://127.0.0.1:", out)
        key = m.group(1)
        self.assertEqual(call(s, "GET", "/v1/collections", key=key).status, 200)
        self.assertNotIn(key, s.stderr())           # never in the log
        s.stop_clean(self)
        s.start()
        self.assertNotIn(key, "\n".join(s.stdout_lines))
        self.assertEqual(call(s, "GET", "/v1/collections", key=key).status, 200)
        s.stop_clean(self)
        # --create-admin-key (server stopped) adds one more.
        r = subprocess.run([harness.BIN, "--data-dir", s.data, "--create-admin-key"],
                           capture_output=True, text=True, timeout=60 * SCALE)
        self.assertEqual(r.returncode, 0, r.stderr)
        newkey = re.search(r"(akidb_[A-Za-z0-9_-]{43})", r.stdout).group(1)
        s.start()
        self.assertEqual(call(s, "GET", "/v1/admin/keys", key=newkey).status, 200)
        # ... and refuses while the server runs (the database is locked).
        r = subprocess.run([harness.BIN, "--data-dir", s.data, "--create-admin-key"],
                           capture_output=True, text=True, timeout=60 * SCALE)
        self.assertEqual(r.returncode, 1)
        self.assertIn("AKIDB_BUSY", r.stderr)
        s.stop_clean(self)

    def test_bad_bootstrap_key(self):
        s = Server(admin_key="short")
        self.assertEqual(s.start(expect_fail=True), 1)
        self.assertIn("AKIDB_BOOTSTRAP_ADMIN_KEY", s.stderr())

    def test_sigterm_during_batch_inserts_loses_no_acknowledged_write(self):
        s = Server("--sync", "always", "--threads", "4", "--rate-qps", "0").start()
        create(self, s, "dur", dim=8)
        acked = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(w):
            i = 0
            while not stop.is_set():
                items = [{"external_id": "w%d-%d-%d" % (w, i, j), "vector": [w, i, j, 1, 2, 3, 4, 5]}
                         for j in range(20)]
                try:
                    r = call(s, "POST", "/v1/collections/dur/vectors", {"vectors": items}, check=False,
                             timeout=30)
                except OSError:
                    return               # refused or reset: the server is going away
                if r.status == 201:
                    with lock:
                        acked.extend(zip(r.json["ids"], [it["external_id"] for it in items]))
                elif r.status != 503:
                    raise AssertionError(r)
                i += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        rc = s.stop(signal.SIGTERM)
        stop.set()
        for t in threads:
            t.join(60)
        self.assertEqual(rc, 0, s.stderr()[-3000:])
        self.assertFalse(re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", s.stderr()))
        self.assertGreater(len(acked), 0)
        self.assertIn("shutting down", s.stderr())
        s.start()
        for id_, ext in acked:
            r = call(s, "GET", "/v1/collections/dur/vectors/%d" % id_)
            self.assertEqual((r.status, r.json["external_id"] if r.json else None), (200, ext))
        self.assertGreaterEqual(call(s, "GET", "/v1/collections/dur").json["count"], len(acked))
        s.stop_clean(self)

    def test_shutdown_waits_for_in_flight_request(self):
        # A snapshot is started, then SIGTERM is sent.  Whether the snapshot
        # is still running at the signal depends on the machine's speed, so
        # the collection grows until the server's shutdown line reports a
        # request in flight; an attempt where it had finished first proves
        # nothing and is not counted.  Never in flight after every size is a failure.
        for batches in (3, 12, 48):
            s = Server("--shutdown-timeout-ms", "20000").start()
            create(self, s, "big", dim=64)
            for b in range(batches):
                insert(self, s, "big", [{"vector": [float((b * 1000 + i) % 97)] * 64}
                                        for i in range(1000)])
            result = {}

            def slow():
                result["r"] = call(s, "POST", "/v1/collections/big/snapshots", check=False)

            t = threading.Thread(target=slow)
            t.start()
            time.sleep(0.05)
            rc = s.stop(signal.SIGTERM)
            t.join(30)
            self.assertEqual(rc, 0, s.stderr()[-2000:])
            self.assertIn("r", result, "the in-flight request got no answer")
            m = re.search(r"shutting down.*requests_in_flight[=:\"]+ *(\d+)", s.stderr())
            self.assertIsNotNone(m, s.stderr()[-2000:])
            if int(m.group(1)) == 0:
                continue        # finished before the signal: try a larger snapshot
            self.assertIn(result["r"].status, (201, 503))
            self.assertEqual(result["r"].headers.get("connection"), "close")
            return
        self.fail("no snapshot was still in flight at SIGTERM, even at 48,000 vectors")

    def test_config_precedence_and_help(self):
        tmp = tempfile.mkdtemp(dir=harness._TMP_ROOT)
        cfg = os.path.join(tmp, "c.json")
        with open(cfg, "w") as f:
            json.dump({"rate_qps": 7, "rate_burst": 70, "max_k": 5}, f)

        def qps(*args, env=None):
            s = Server("--config", cfg, *args, env=env or {}).start()
            try:
                return call(s, "GET", "/v1/admin/tenants/t/quota").json["qps"]
            finally:
                s.stop_clean(self)

        self.assertEqual(qps(), 7)
        self.assertEqual(qps(env={"AKIDB_RATE_QPS": "8"}), 8)
        self.assertEqual(qps("--rate-qps", "9", env={"AKIDB_RATE_QPS": "8"}), 9)
        self.assertEqual(qps("--rate-qps=10"), 10)
        with open(cfg, "w") as f:
            json.dump({"rate_qpz": 7}, f)
        s = Server("--config", cfg)
        self.assertEqual(s.start(expect_fail=True), 1)
        self.assertIn("unknown setting 'rate_qpz'", s.stderr())
        for bad in (["--port", "70000"], ["--threads", "0"], ["--sync", "sometimes"], ["--bogus"],
                    ["--max-k", "abc"]):
            s = Server(*bad)
            self.assertEqual(s.start(expect_fail=True), 1, bad)
        h = subprocess.run([harness.BIN, "--help"], capture_output=True, text=True)
        self.assertEqual(h.returncode, 0)
        for word in ("--host", "--port", "--data-dir", "--no-auth", "--threads", "--max-body-bytes",
                     "--idle-timeout-ms", "--request-timeout-ms", "--max-connections", "--rate-qps",
                     "--rate-burst", "--sync", "--store", "--s3-endpoint", "AKIDB_PORT",
                     "default: 8080", "default: 127.0.0.1", "default: ./akidb-data",
                     "AKIDB_BOOTSTRAP_ADMIN_KEY"):
            self.assertIn(word, h.stdout)

    def test_embedded_default(self):
        # No data-dir flag: ./akidb-data in the working directory, local store inside it.
        wd = tempfile.mkdtemp(dir=harness._TMP_ROOT)
        s = Server(workdir=wd)
        s.data = "./akidb-data"
        s.start()
        self.assertTrue(os.path.isdir(os.path.join(wd, "akidb-data")))
        self.assertEqual(call(s, "GET", "/health/ready", key=None).json["object_store"], "local")
        create(self, s, "c", dim=2)
        call(s, "POST", "/v1/collections/c/snapshots")
        self.assertTrue(os.path.isdir(os.path.join(wd, "akidb-data", "objects")))
        s.stop_clean(self)


class TestOpenAPI(ServerCase):
    def test_routes_match_document(self):
        out = subprocess.run([harness.BIN, "--list-routes"], capture_output=True, text=True,
                             check=True).stdout
        registered = set(tuple(l.split()) for l in out.splitlines())
        doc = harness.openapi(self.srv)
        documented = set()
        for path, item in doc["paths"].items():
            for m in item:
                if m in ("get", "put", "post", "delete", "patch", "head", "options"):
                    documented.add((m.upper(), path))
        self.assertEqual(registered - documented, set(), "registered but not documented")
        self.assertEqual(documented - registered, set(), "documented but not registered")
        # Every operation documents its errors with the one error shape.
        for path, item in doc["paths"].items():
            for m, op in item.items():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                for status, resp in op["responses"].items():
                    if int(status) >= 400:
                        resp = harness._resolve(doc, resp)
                        schema = resp["content"]["application/json"]["schema"]
                        self.assertEqual(schema, {"$ref": "#/components/schemas/Error"}, (path, m, status))

    def test_sample_responses_validate(self):
        # call() validates every answer against the document; make sure the
        # sample covers each route at least once.
        s = self.srv
        create(self, s, "oa", dim=2, metric="dot")
        ids = insert(self, s, "oa", [{"external_id": "e", "vector": [1, 2], "metadata": [1, "x"]}]).json["ids"]
        call(s, "PUT", "/v1/collections/oa/vectors", {"vectors": [{"external_id": "e", "vector": [2, 2]}]})
        call(s, "GET", "/v1/collections")
        call(s, "GET", "/v1/collections/oa")
        call(s, "GET", "/v1/collections/oa/vectors/%d" % ids[0])
        call(s, "GET", "/v1/collections/oa/vectors?external_id=e")
        call(s, "POST", "/v1/collections/oa/search", {"vector": [1, 1], "include_metadata": True, "include_vector": True})
        call(s, "POST", "/v1/collections/oa/search/batch", {"queries": [[1, 1]], "include_metadata": True})
        sid = call(s, "POST", "/v1/collections/oa/snapshots").json["id"]
        call(s, "GET", "/v1/collections/oa/snapshots")
        call(s, "POST", "/v1/collections/oa/snapshots/%s/restore" % sid)
        call(s, "DELETE", "/v1/collections/oa/snapshots/%s" % sid)
        key, kid = make_key(self, s, "oa", "reader", "n")
        call(s, "GET", "/v1/admin/keys")
        call(s, "DELETE", "/v1/admin/keys/" + kid)
        call(s, "GET", "/v1/admin/tenants/oa/quota")
        call(s, "PUT", "/v1/admin/tenants/oa/quota", {"qps": 3, "burst": 3})
        call(s, "DELETE", "/v1/admin/tenants/oa/quota")
        call(s, "DELETE", "/v1/collections/oa/vectors/%d" % ids[0])
        call(s, "DELETE", "/v1/collections/oa")
        call(s, "GET", "/health/live", key=None)
        call(s, "GET", "/health/ready", key=None)
        call(s, "GET", "/v1/collections/oa", key="bad")
        self.assertGreater(harness.VALIDATED["responses"], 20)


class TestReadmeSession(unittest.TestCase):
    """The README's curl session runs as written (against a fresh server)."""

    def test_readme_session(self):
        with open(os.path.join(harness.ROOT, "README.md"), encoding="utf-8") as f:
            text = f.read()
        m = re.search(r"<!-- server-session -->\s*```sh\n(.*?)```", text, re.S)
        self.assertTrue(m, "README.md has no <!-- server-session --> block")
        block = m.group(1)
        s = Server(admin_key=None).start()
        try:
            out = "\n".join(s.stdout_lines)
            key = re.search(r"export AKIDB_KEY=(\S+)", out).group(1)
            # Run the commands as written, with the server's real port.
            script = block.replace("127.0.0.1:8080", "127.0.0.1:%d" % s.port)
            script = re.sub(r"(?m)^export AKIDB_KEY=.*$", "export AKIDB_KEY=%s" % key, script)
            cmds = [c for c in re.split(r"\n(?=curl|export)", script) if c.strip()]
            expected = re.findall(r"(?m)^# => (.*)$", block)
            outputs = []
            for c in cmds:
                body = "\n".join(l for l in c.splitlines() if not l.startswith("# =>"))
                r = subprocess.run(["bash", "-euo", "pipefail", "-c", body], capture_output=True,
                                   text=True, timeout=60 * SCALE,
                                   env=dict(os.environ, AKIDB_KEY=key))
                self.assertEqual(r.returncode, 0, (body, r.stdout, r.stderr))
                if r.stdout.strip():
                    outputs.append(r.stdout.strip())
            self.assertEqual(len(outputs), len(expected), (outputs, expected))
            volatile = {"created_at_us", "inserted_at_us", "bytes", "bytes_by_component",
                        "log_bytes", "sha256"}

            def same(a, b, path=""):
                if isinstance(a, dict):
                    self.assertIsInstance(b, dict, path)
                    self.assertEqual(set(a), set(b), path)
                    for k in a:
                        if k not in volatile:
                            same(a[k], b[k], path + "." + k)
                elif isinstance(a, list):
                    self.assertEqual(len(a), len(b), path)
                    for x, y in zip(a, b):
                        same(x, y, path)
                elif isinstance(a, float) or isinstance(b, float):
                    self.assertTrue(math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6), (path, a, b))
                else:
                    self.assertEqual(a, b, path)

            for got, want in zip(outputs, expected):
                same(json.loads(want), json.loads(got))
        finally:
            s.stop_clean(self)


# The security suite (issue 15) runs with this one, so `make test` and
# `make asan` cover it without another line in the Makefile.
from test_security import *  # noqa: E402,F401,F403


if __name__ == "__main__":
    unittest.main(verbosity=int(os.environ.get("AKT_VERBOSE", "1")))
