"""test_threads.py - the GIL is released inside library calls, threads share
one handle correctly, error messages stay with the thread that failed, and
close() waits for calls in flight instead of freeing the handle under them."""

import random
import threading
import time
import unittest

import akidb
from _util import DBTest

DIM = 32


def _vectors(n, seed):
    rng = random.Random(seed)
    return [[rng.uniform(-1, 1) for _ in range(DIM)] for _ in range(n)]


class ThreadTest(DBTest):
    def test_gil_released_during_a_long_call(self):
        # One call that waits while a graph is built (ef_construction
        # large): inserts return before the background indexer links them,
        # and index_wait waits for it.  If the call held the GIL, the main
        # thread could not run a single Python bytecode until it returned;
        # with the GIL released it keeps looping throughout.
        col = self.db.create_collection("gil", DIM, metric="l2", ef_construction=400)
        data = _vectors(2500, 1)
        span = {}

        def work():
            col.insert(data)
            span["start"] = time.perf_counter()
            col.index_wait()
            span["end"] = time.perf_counter()

        t = threading.Thread(target=work)
        stamps = []
        t.start()
        while t.is_alive():
            stamps.append(time.perf_counter())
        t.join()
        duration = span["end"] - span["start"]
        inside = [s for s in stamps if span["start"] <= s <= span["end"]]
        self.assertGreater(duration, 0.2, "the call was too short to tell anything")
        gaps = [b - a for a, b in zip(inside, inside[1:])]
        self.assertGreater(len(inside), 100)
        # Generous: the machine is shared, and Python itself switches threads
        # every 5 ms; a held GIL would make one gap as long as the call.
        self.assertLess(max(gaps), duration / 2,
                        f"main thread stalled {max(gaps):.3f}s during a {duration:.3f}s call")
        self.assertEqual(len(col), 2500)

    def test_concurrent_search_and_insert(self):
        col = self.db.create_collection("conc", DIM, metric="l2")
        base = _vectors(300, 2)
        col.insert(base, external_ids=[f"b{i}" for i in range(300)])
        errors = []

        def searcher(seed):
            try:
                rng = random.Random(seed)
                for _ in range(150):
                    i = rng.randrange(300)
                    hits = col.search(base[i], k=1, exact=True)
                    if hits[0].external_id != f"b{i}":
                        errors.append(f"search for b{i} found {hits[0]}")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        def inserter(t):
            try:
                for j in range(20):
                    col.insert(_vectors(5, 100 + t * 50 + j),
                               external_ids=[f"t{t}-{j}-{k}" for k in range(5)])
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=searcher, args=(s,)) for s in range(4)]
        threads += [threading.Thread(target=inserter, args=(t,)) for t in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(col), 300 + 2 * 20 * 5)

    def test_error_messages_stay_with_their_thread(self):
        # Two threads fail in different ways at the same time; each must see
        # its own message (akidb_errmsg is per thread and read on the
        # failing thread right after the call).
        col = self.db.create_collection("errs", 3, metric="l2")
        wrong = []

        def missing(tag):
            for _ in range(300):
                try:
                    self.db.collection(f"missing-{tag}")
                except akidb.NotFound as e:
                    if f"missing-{tag}" not in e.message:
                        wrong.append(e.message)

        def nan():
            for _ in range(300):
                try:
                    col.insert([[1.0, float("nan"), 0.0]])
                except akidb.InvalidArgument as e:
                    if "NaN" not in e.message:
                        wrong.append(e.message)

        def ok():
            for _ in range(300):
                col.search([1, 2, 3], k=1)

        threads = [threading.Thread(target=missing, args=(t,)) for t in "ab"]
        threads += [threading.Thread(target=nan), threading.Thread(target=ok)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(wrong, [])

    def test_close_waits_for_calls_in_flight(self):
        col = self.db.create_collection("cl", DIM, metric="l2", ef_construction=300)
        data = _vectors(2000, 3)
        result = {}
        started = threading.Event()

        def work():
            started.set()
            try:
                result["ids"] = col.insert(data)
            except Exception as e:  # noqa: BLE001
                result["error"] = e

        t = threading.Thread(target=work)
        t.start()
        started.wait()
        time.sleep(0.05)          # let the insert get into the library
        self.db.close()           # must wait for it, not free the handle
        t.join()
        self.assertNotIn("error", result)
        self.assertEqual(len(result["ids"]), 2000)
        with self.assertRaises(akidb.Misuse):
            col.search(data[0])
        db = self.reopen()
        self.assertEqual(len(db.collection("cl")), 2000)

    def test_create_and_drop_while_searching(self):
        # Create/drop run exclusively: searches on another collection keep
        # working around them, and a collection re-created with another
        # dim is never searched with a buffer of the old one.
        keep = self.db.create_collection("keep", 4, metric="l2")
        keep.insert([[1, 0, 0, 0]])
        stop = threading.Event()
        errors = []

        def searcher():
            while not stop.is_set():
                try:
                    if keep.search([1, 0, 0, 0], k=1)[0].id != 1:
                        errors.append("wrong hit")
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))

        def flipper():
            for i in range(20):
                dim = 4 if i % 2 else 64
                c = self.db.create_collection("flip", dim, metric="l2")
                c.insert([[0.5] * dim])
                self.db.drop_collection("flip")

        t = threading.Thread(target=searcher)
        t.start()
        try:
            flipper()
        finally:
            stop.set()
            t.join()
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()
