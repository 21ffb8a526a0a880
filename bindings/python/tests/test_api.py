"""test_api.py - the Pythonic API against the real library, without numpy."""

import array
import datetime
import json
import math
import os
import sys
import unittest

import akidb
from _util import DBTest


class InstallTest(unittest.TestCase):
    def test_library_found(self):
        self.assertEqual(akidb.library_version().split(".")[0], "0")
        self.assertTrue(os.path.isfile(akidb.library_path()), akidb.library_path())
        self.assertIn(akidb.library_origin(), ("bundled", "AKIDB_LIBRARY", "system"))

    @unittest.skipUnless(os.environ.get("AKIDB_TEST_EXPECT_BUNDLED") == "1",
                         "only when testing an installed wheel")
    def test_installed_package_uses_bundled_library(self):
        # make test installs the package into a venv: it must be that copy
        # (not the source tree) and it must use the library it bundles.
        self.assertEqual(akidb.library_origin(), "bundled")
        pkg = os.path.dirname(akidb.__file__)
        self.assertIn("site-packages", pkg)
        self.assertEqual(os.path.dirname(akidb.library_path()), pkg)
        self.assertEqual(akidb.__version__, akidb.library_version())


class CollectionTest(DBTest):
    def test_create_list_drop(self):
        self.assertEqual(self.db.collections(), [])
        self.db.create_collection("b", 3, metric="l2")
        self.db.create_collection("a", 5, metric="dot", m=8, ef_construction=50, ef_search=20)
        self.assertEqual(self.db.collections(), ["a", "b"])
        self.assertIn("a", self.db)
        self.assertNotIn("zz", self.db)
        cfg = self.db.collection("a").config()
        self.assertEqual(cfg, {"dim": 5, "metric": "dot", "m": 8, "ef_construction": 50,
                               "ef_search": 20, "storage": "f32", "exact_vectors": "ram",
                               "rerank": 0})
        self.assertEqual(self.db["b"].dim, 3)
        self.assertEqual(self.db["b"].metric, "l2")
        self.db.drop_collection("a")
        self.assertEqual(self.db.collections(), ["b"])
        with self.assertRaises(akidb.NotFound):
            self.db.collection("a")
        with self.assertRaises(akidb.NotFound):
            self.db.drop_collection("a")

    def test_create_errors(self):
        self.db.create_collection("c", 4)
        with self.assertRaises(akidb.AlreadyExists):
            self.db.create_collection("c", 4)
        self.assertEqual(self.db.create_collection("c", 4, exist_ok=True).name, "c")
        with self.assertRaises(akidb.AlreadyExists) as cm:
            self.db.create_collection("c", 8, exist_ok=True)
        self.assertIn("dim 4", str(cm.exception))
        with self.assertRaises(akidb.InvalidArgument) as cm:
            self.db.create_collection("bad name!", 4)
        self.assertIn("bad name!", cm.exception.message)
        with self.assertRaises(akidb.InvalidArgument):
            self.db.create_collection("x", 5000)
        with self.assertRaises(akidb.InvalidArgument):
            self.db.create_collection("x", 0)
        with self.assertRaises(akidb.InvalidArgument):
            self.db.create_collection("x", 4, metric="manhattan")
        with self.assertRaises(akidb.InvalidArgument):
            self.db.create_collection("x\0y", 4)
        with self.assertRaises(TypeError):
            self.db.create_collection(17, 4)
        self.assertEqual(self.db.collections(), ["c"])

    def test_insert_search_get(self):
        col = self.db.create_collection("docs", 4, metric="l2")
        ids = col.insert([[1, 0, 0, 0], [0, 1, 0, 0], [0.9, 0.1, 0, 0]],
                         external_ids=["a", None, "c"],
                         metadata=[{"title": "alpha", "n": 1}, None, ["x", 2.5]])
        self.assertEqual(ids, [1, 2, 3])
        self.assertEqual(len(col), 3)
        hits = col.search([1, 0.05, 0, 0], k=2)
        self.assertEqual([h.id for h in hits], [1, 3])
        self.assertEqual(hits[0].external_id, "a")
        self.assertEqual(hits[0].metadata, {"title": "alpha", "n": 1})
        self.assertEqual(hits[1].metadata, ["x", 2.5])
        self.assertAlmostEqual(hits[0].distance, 0.05 ** 2, places=6)
        self.assertLessEqual(hits[0].distance, hits[1].distance)
        # Fewer hits than k when the collection is small; exact agrees.
        self.assertEqual([h.id for h in col.search([0, 1, 0, 0], k=10, exact=True)],
                         [2, 3, 1])
        bare = col.search([0, 1, 0, 0], k=1, documents=False)
        self.assertEqual(bare, [akidb.Hit(2, 0.0)])
        self.assertIsNone(bare[0].external_id)
        doc = col.get(3)
        self.assertEqual(doc.id, 3)
        self.assertEqual(doc.external_id, "c")
        self.assertEqual(doc.vector, [0.8999999761581421, 0.10000000149011612, 0.0, 0.0])
        self.assertIsInstance(doc.inserted_at, datetime.datetime)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - doc.inserted_at).total_seconds()), 600)
        self.assertIsNone(col.get(2, vector=False).vector)
        self.assertIsNone(col.get(2).metadata)
        self.assertEqual(col.lookup("c"), 3)
        with self.assertRaises(akidb.NotFound):
            col.lookup("nope")
        with self.assertRaises(akidb.NotFound):
            col.get(99)

    def test_single_vector_and_buffers(self):
        col = self.db.create_collection("v", 3, metric="l2")
        self.assertEqual(col.insert([1, 2, 3], external_ids="one", metadata={"k": "v"}), [1])
        self.assertEqual(col.insert(array.array("f", [4, 5, 6, 7, 8, 9])), [2, 3])
        self.assertEqual(col.insert((x for x in [(1, 1, 1)])), [4])
        self.assertEqual(col.search(array.array("f", [7, 8, 9]), k=1)[0].id, 3)
        self.assertEqual(col.get(1).metadata, {"k": "v"})
        self.assertEqual(col.insert([]), [])
        self.assertEqual(len(col), 4)

    def test_cosine_normalises(self):
        col = self.db.create_collection("cos", 2)   # cosine is the default
        self.assertEqual(col.metric, "cosine")
        col.insert([[3, 4]])
        v = col.get(1).vector
        self.assertAlmostEqual(v[0], 0.6, places=6)
        self.assertAlmostEqual(v[1], 0.8, places=6)
        with self.assertRaises(akidb.InvalidArgument):
            col.insert([[0, 0]])
        with self.assertRaises(akidb.InvalidArgument):
            col.search([0, 0])

    def test_bad_inputs(self):
        col = self.db.create_collection("b", 3, metric="l2")
        col.insert([[1, 2, 3]], external_ids=["taken"])
        cases = [
            ([[1, 2]], None, None, akidb.InvalidArgument),           # wrong dim
            ([[1, 2, 3, 4]], None, None, akidb.InvalidArgument),
            ([[1, float("nan"), 3]], None, None, akidb.InvalidArgument),
            ([[1, float("inf"), 3]], None, None, akidb.InvalidArgument),
            ([[1, 2, 3]], ["taken"], None, akidb.AlreadyExists),
            ([[1, 2, 3], [4, 5, 6]], ["d", "d"], None, akidb.InvalidArgument),
            ([[1, 2, 3]], ["a", "b"], None, akidb.InvalidArgument),   # count mismatch
            ([[1, 2, 3]], ["nul\0"], None, akidb.InvalidArgument),
            ([[1, 2, 3]], [""], None, akidb.InvalidArgument),
            ([[1, 2, 3]], ["x" * 1025], None, akidb.InvalidArgument),
            ([[1, 2, 3]], None, [{"f": float("nan")}], akidb.InvalidArgument),
            ([[1, 2, 3]], None, [{1, 2}], akidb.InvalidArgument),     # not JSON
            ([["a", "b", "c"]], None, None, akidb.InvalidArgument),
        ]
        for vectors, ext, meta, exc in cases:
            with self.subTest(vectors=vectors, ext=ext, meta=meta):
                with self.assertRaises(exc):
                    col.insert(vectors, external_ids=ext, metadata=meta)
        with self.assertRaises(TypeError):
            col.insert("abc")
        with self.assertRaises(TypeError):
            col.insert([[1, 2, 3]], external_ids=[7])
        # An atomic batch: the good first row of a failing batch is not kept.
        with self.assertRaises(akidb.InvalidArgument) as cm:
            col.insert([[1, 1, 1], [1, float("nan"), 1]], external_ids=["ok", "bad"])
        self.assertIn("row 1", cm.exception.message)
        self.assertEqual(len(col), 1)
        with self.assertRaises(akidb.NotFound):
            col.lookup("ok")
        for k in (0, -1, 1000001, 1.5, True):
            with self.subTest(k=k):
                with self.assertRaises(akidb.InvalidArgument):
                    col.search([1, 2, 3], k=k)
        with self.assertRaises(akidb.InvalidArgument):
            col.search([[1, 2, 3], [1, 2, 3]])
        with self.assertRaises(akidb.InvalidArgument):
            col.search([1, 2, 3], ef=0)
        for bad in (-1, 2 ** 64, "1", 1.0):
            with self.subTest(id=bad):
                with self.assertRaises(akidb.InvalidArgument):
                    col.get(bad)

    def test_upsert_delete(self):
        col = self.db.create_collection("u", 2, metric="l2")
        ids = col.upsert([[1, 0], [0, 1]], ["a", "b"], metadata=[{"v": 1}, {"v": 1}])
        again = col.upsert([[5, 5]], ["a"], metadata=[{"v": 2}])
        self.assertEqual(again, [ids[0]])
        self.assertEqual(col.get(ids[0]).metadata, {"v": 2})
        self.assertEqual(col.get(ids[0]).vector, [5.0, 5.0])
        self.assertEqual(len(col), 2)
        with self.assertRaises(akidb.InvalidArgument):
            col.upsert([[1, 1]], [None])
        with self.assertRaises(akidb.InvalidArgument):
            col.upsert([[1, 1]], None)
        col.delete(ids[1])
        self.assertEqual(len(col), 1)
        self.assertEqual([h.id for h in col.search([0, 1], k=5)], [ids[0]])
        with self.assertRaises(akidb.NotFound):
            col.delete(ids[1])
        more = col.insert([[1, 1], [2, 2], [3, 3]])
        col.delete(more[:2])
        self.assertEqual(len(col), 2)

    def test_stats(self):
        col = self.db.create_collection("s", 8, metric="l2")
        col.insert([[float(i)] * 8 for i in range(10)])
        col.delete(3)
        st = col.stats()
        self.assertEqual((st.dim, st.metric, st.count, st.deleted), (8, "l2", 9, 1))
        self.assertEqual(st.tier, "hot")
        self.assertFalse(st.pinned)
        self.assertGreaterEqual(st.vector_bytes, 10 * 8 * 4)
        self.assertEqual(st.bytes, st.vector_bytes + st.graph_bytes + st.document_bytes)
        self.assertGreater(st.log_bytes, 0)
        col.checkpoint()
        self.assertLess(col.stats().log_bytes, st.log_bytes)

    def test_storage_kinds(self):
        # int8 and f16 walk a compact copy; with exact vectors in RAM the
        # answers carry exact distances, so the top hit of a stored vector
        # is itself at distance 0 whatever the kind; without them the
        # compact copy is all that is held.
        import random
        rng = random.Random(3)
        # more than the 4096 vectors int8 is trained on (until then it walks
        # the exact vectors and keeps them all)
        rows = [[rng.gauss(0, 1) for _ in range(48)] for _ in range(5000)]
        sizes = {}
        for storage, exact in (("f32", "ram"), ("f16", "ram"), ("int8", "ram"),
                               ("int8", "file"), ("int8", "none")):
            name = f"{storage}_{exact}"
            col = self.db.create_collection(name, 48, metric="l2", storage=storage,
                                            exact_vectors=exact, rerank=3)
            ids = col.insert(rows)
            col.index_wait()
            col.checkpoint()    # "file": the exact vectors leave RAM for the file
            cfg = col.config()
            # rerank is ignored (kept as 0) for f32, whose vectors are exact
            self.assertEqual((cfg["storage"], cfg["exact_vectors"], cfg["rerank"]),
                             (storage, exact, 0 if storage == "f32" else 3))
            hits = col.search(rows[17], k=5)
            self.assertEqual(hits[0].id, ids[17])
            if exact in ("ram", "file"):
                self.assertEqual(hits[0].distance, 0.0)
            st = col.stats()
            self.assertEqual(st.bytes, st.vector_bytes + st.compact_bytes + st.graph_bytes +
                             st.document_bytes)
            sizes[name] = st
        self.assertEqual(sizes["f32_ram"].compact_bytes, 0)
        self.assertGreaterEqual(sizes["int8_ram"].compact_bytes, 5000 * 48)
        self.assertLess(sizes["int8_none"].vector_bytes, sizes["int8_ram"].vector_bytes)
        # what stays in RAM: the last partly filled block of 1024
        self.assertLess(sizes["int8_file"].vector_bytes * 4, sizes["int8_ram"].vector_bytes)
        for bad in ({"storage": "int4"}, {"storage": None}, {"exact_vectors": "disk"},
                    {"rerank": 0}, {"rerank": 65}):
            with self.assertRaises(akidb.InvalidArgument, msg=repr(bad)):
                self.db.create_collection("bad", 4, **bad)
        self.assertNotIn("bad", self.db)

    def test_max_index_lag(self):
        # A small bound: every insert returns with the unlinked tail within
        # it (writers link the rest themselves).  No bound (NEVER): a big
        # insert returns long before the indexer could have linked it.
        import random
        rng = random.Random(7)

        def vecs(n):
            return [[rng.uniform(-1, 1) for _ in range(32)] for _ in range(n)]
        batches = [vecs(1000) for _ in range(6)]   # made first: inserts back to back
        db = self.reopen(max_index_lag=1024)
        col = db.create_collection("bounded", 32, metric="l2", ef_construction=200)
        for batch in batches:
            col.insert(batch)
            self.assertLessEqual(col.stats().index_lag, 1024)
        db = self.reopen(max_index_lag=akidb.NEVER)
        bulk = db.create_collection("bulk", 32, metric="l2", ef_construction=200)
        bulk.insert([v for batch in batches for v in batch])
        self.assertGreater(bulk.stats().index_lag, 1024)
        bulk.index_wait()
        self.assertEqual(bulk.stats().index_lag, 0)
        self.db.close()
        for bad in (0, -1, 2**32, 2**32 - 1, 1.5, "10"):
            with self.assertRaises(akidb.InvalidArgument, msg=repr(bad)):
                akidb.open(self.dir, max_index_lag=bad)
        self.db = akidb.open(self.dir)

    def test_durable_across_reopen(self):
        col = self.db.create_collection("d", 2, metric="l2")
        col.insert([[1, 2], [3, 4]], external_ids=["x", "y"], metadata=[{"é": "ü"}, None])
        db = self.reopen(sync="interval")
        col = db.collection("d")
        self.assertEqual(len(col), 2)
        self.assertEqual(col.get(col.lookup("x")).metadata, {"é": "ü"})

    def test_read_only(self):
        self.db.create_collection("r", 2).insert([[1, 2]])
        db = self.reopen(read_only=True)
        self.assertEqual(len(db.collection("r")), 1)
        with self.assertRaises(akidb.ReadOnly) as cm:
            db.collection("r").insert([[3, 4]])
        self.assertEqual(cm.exception.name, "AKIDB_READONLY")
        self.assertEqual(len(db.collection("r")), 1)

    def test_busy_and_closed(self):
        with self.assertRaises(akidb.Busy):
            akidb.open(self.dir)
        col = self.db.create_collection("c", 2)
        self.db.close()
        self.assertTrue(self.db.closed)
        with self.assertRaises(akidb.Misuse):
            col.search([1, 0])
        with self.assertRaises(akidb.Misuse):
            self.db.collections()
        self.db.close()   # twice is fine
        with akidb.open(self.dir) as db:
            self.assertEqual(db.collections(), ["c"])
        self.assertTrue(db.closed)

    def test_open_errors(self):
        with self.assertRaises(akidb.InvalidArgument):
            akidb.open(self.dir + "2", sync="sometimes")
        with self.assertRaises(akidb.IoError) as cm:
            akidb.open(os.path.join(self.tmp, "no", "parent", "here"))
        self.assertIn("no/parent", cm.exception.message)
        with self.assertRaises(TypeError):
            akidb.open(self.dir, bogus_option=1)
        with self.assertRaises(akidb.InvalidArgument):
            akidb.open(self.dir + "3", file_mode=0o4777)

    def test_snapshots_and_parquet(self):
        col = self.db.create_collection("snap", 3, metric="l2")
        col.insert([[1, 2, 3], [4, 5, 6]], external_ids=["a", "b"],
                   metadata=[{"m": 1}, {"m": 2}])
        sid = col.snapshot()
        snaps = col.snapshots()
        self.assertEqual([s.id for s in snaps], [sid])
        self.assertEqual(snaps[0].rows, 2)
        self.assertEqual(len(snaps[0].sha256), 64)
        col.insert([[7, 8, 9]])
        self.assertEqual(len(col), 3)
        col.restore(sid)
        self.assertEqual(len(col), 2)
        self.assertEqual(col.get(col.lookup("b")).metadata, {"m": 2})
        path = os.path.join(self.tmp, "out.parquet")
        col.export_parquet(path)
        self.assertIn("rows: 2", akidb.inspect_parquet(path))
        seen = []
        n = self.db.import_parquet("copy", path, progress=lambda d, t: seen.append((d, t)))
        self.assertEqual(n, 2)
        self.assertEqual(seen[-1], (2, 2))
        copy = self.db.collection("copy")
        self.assertEqual(copy.dim, 3)
        self.assertEqual(copy.search([4, 5, 6], k=1)[0].external_id, "b")
        # a cosine collection's export comes back cosine, not l2
        cos = self.db.create_collection("cos", 3, metric="cosine")
        cos.insert([[1, 2, 3]])
        cpath = os.path.join(self.tmp, "cos.parquet")
        cos.export_parquet(cpath)
        self.db.import_parquet("cos_copy", cpath)
        self.assertEqual(self.db.collection("cos_copy").metric, "cosine")
        with self.assertRaises(akidb.InvalidArgument):
            self.db.import_parquet("cos_l2", cpath, metric="l2")
        # the storage kind of a collection the import creates
        self.db.import_parquet("i8_copy", cpath, storage="int8", exact_vectors="file",
                               rerank=3)
        cfg = self.db.collection("i8_copy").config()
        self.assertEqual((cfg["storage"], cfg["exact_vectors"], cfg["rerank"]),
                         ("int8", "file", 3))
        with self.assertRaises(akidb.InvalidArgument):
            self.db.import_parquet("i8_copy", cpath, storage="f16")
        with self.assertRaises(akidb.InvalidArgument):
            self.db.import_parquet("x", cpath, storage="int4")
        with self.assertRaises(akidb.InvalidArgument):
            self.db.import_parquet("x", cpath, rerank=0)
        col.delete_snapshot(sid)
        self.assertEqual(col.snapshots(), [])
        with self.assertRaises(akidb.NotFound):
            col.restore(sid)
        with self.assertRaises(akidb.Corrupt):
            bad = os.path.join(self.tmp, "bad.parquet")
            with open(bad, "wb") as f:
                f.write(b"PAR1" + b"\0" * 64 + b"PAR1")
            akidb.inspect_parquet(bad)

    def test_mock_store_faults(self):
        store = akidb.MockStore()
        db = self.reopen(store=store)
        col = db.create_collection("m", 2)
        col.insert([[1, 0]])
        store.inject("403", ops=["put"], count=10)
        with self.assertRaises(akidb.InvalidArgument) as cm:
            col.snapshot()
        self.assertIn("403", cm.exception.message)
        store.clear_faults()
        col.snapshot()
        with self.assertRaises(akidb.Misuse):
            store.close()          # still used by the open database
        db.close()
        store.close()
        with self.assertRaises(akidb.InvalidArgument):
            akidb.MockStore().inject("meteor")

    def test_local_store(self):
        store = akidb.LocalStore(os.path.join(self.tmp, "objects"))
        db = self.reopen(store=store)
        col = db.create_collection("l", 2)
        col.insert([[1, 0]])
        sid = col.snapshot()
        self.assertEqual(col.snapshots()[0].id, sid)
        found = []
        for root, _, files in os.walk(os.path.join(self.tmp, "objects")):
            found += [f for f in files if f.endswith(".parquet")]
        self.assertEqual(len(found), 1)
        db.close()
        store.close()

    def test_metrics(self):
        col = self.db.create_collection("mm", 2)
        col.insert([[1, 0]])
        col.search([1, 0])
        col.search([0, 1])
        metrics = self.db.metrics()
        self.assertGreaterEqual(metrics["akidb_searches_total"], 2)
        self.assertEqual(self.db.metric("akidb_searches_total"),
                         int(metrics["akidb_searches_total"]))
        self.assertIn("# TYPE akidb_searches_total counter", self.db.metrics_text())
        with self.assertRaises(akidb.NotFound):
            self.db.metric("no_such_metric")

    def test_records(self):
        rec = self.db.records("app.config")
        self.assertEqual(len(rec), 0)
        rec["b"] = b"\x00\xffbinary"
        rec["a"] = "text ✓"
        self.assertEqual(rec["b"], b"\x00\xffbinary")
        self.assertEqual(rec["a"].decode(), "text ✓")
        self.assertEqual(list(rec), ["a", "b"])
        del rec["a"]
        with self.assertRaises(KeyError):
            rec["a"]
        with self.assertRaises(KeyError):
            del rec["a"]
        self.reopen()
        self.assertEqual(dict(self.db.records("app.config")), {"b": b"\x00\xffbinary"})
        with self.assertRaises(akidb.InvalidArgument):
            self.db.records("bad ns!")["k"] = b""

    def test_log_callback(self):
        # A torn log tail is cut on open and reported through the log
        # callback (level 2, warning) and a metric.
        self.db.create_collection("lg", 2).insert([[1, 0]])
        self.db.close()
        wal_dir = os.path.join(self.dir, "wal")
        wal = os.path.join(wal_dir, sorted(os.listdir(wal_dir))[0])
        with open(wal, "ab") as f:
            f.write(b"\x07torn tail")
        messages = []
        db = self.reopen(log=lambda level, msg: messages.append((level, msg)))
        self.assertEqual(len(db.collection("lg")), 1)
        self.assertEqual(db.metric("akidb_wal_truncations_total"), 1)
        self.assertTrue(any(level == 2 and "cut 10 bytes" in msg for level, msg in messages), messages)


class ErrorTest(unittest.TestCase):
    def test_every_library_code_has_its_own_class(self):
        # A code added to the library must get a named class in _errors.py:
        # this fails until it does (at run time it would get a generated one).
        self.assertGreaterEqual(len(akidb.CODES), 13)
        from akidb import _errors
        self.assertEqual(_errors.GENERATED, {}, "codes without a named class")
        for code, name in akidb.CODES.items():
            with self.subTest(name=name):
                err = akidb.error_for(code, "msg")
                self.assertIsInstance(err, akidb.Error)
                self.assertIsNot(type(err), akidb.Error)
                self.assertEqual((err.code, err.name, err.message), (code, name, "msg"))
                self.assertEqual(str(err), f"{name}: msg")
        self.assertIs(type(akidb.error_for(5, "")), akidb.NotFound)
        self.assertTrue(issubclass(akidb.NotFound, LookupError))
        self.assertTrue(issubclass(akidb.InvalidArgument, ValueError))
        unknown = akidb.error_for(999, "x")
        self.assertIs(type(unknown), akidb.Error)
        self.assertEqual(unknown.name, "AKIDB_UNKNOWN")


if __name__ == "__main__":
    unittest.main()
