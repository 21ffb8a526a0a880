"""test_tier.py - tiering from Python: col.tier, set_tier, pin, tier_info,
db.tier_stats, policies and the tier options of akidb.open().

The worker thread is turned off (tier_interval_ms=akidb.NEVER) so the tests
decide when a cycle runs (db.tier_run_once()).
"""

import math
import os
import shutil
import tempfile
import threading
import time
import unittest

import akidb

DIM = 8


def _vectors(n, seed):
    out = []
    x = seed * 7919 + 1
    for _ in range(n):
        row = []
        for _ in range(DIM):
            x = (x * 1103515245 + 12345) % 2**31
            row.append(x / 2**31 - 0.5)
        out.append(row)
    return out


class TierTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="akidb-py-tier-")
        self.dir = os.path.join(self.tmp, "db")
        self.store = None
        self.db = akidb.open(self.dir, tier_interval_ms=akidb.NEVER)

    def tearDown(self):
        self.db.close()
        if self.store is not None:
            self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def reopen(self, **options):
        self.db.close()
        options.setdefault("tier_interval_ms", akidb.NEVER)
        self.db = akidb.open(self.dir, **options)
        return self.db

    def filled(self, name, n=200, seed=1):
        col = self.db.create_collection(name, DIM, metric="l2")
        col.insert(_vectors(n, seed), external_ids=[f"{name}-{i}" for i in range(n)],
                   metadata=[{"i": i} for i in range(n)])
        return col

    def test_hot_cold_search_brings_it_back(self):
        col = self.filled("c")
        q = _vectors(1, 99)[0]
        before = col.search(q, k=5)
        self.assertEqual(len(before), 5)
        self.assertEqual(col.tier, "hot")
        info = col.tier_info()
        self.assertIsInstance(info, akidb.TierInfo)
        self.assertEqual((info.tier, info.pinned, info.busy), ("hot", False, False))
        self.assertGreater(info.hot_bytes, 0)
        self.assertIsNone(info.last_error)

        col.set_tier("cold")
        self.assertEqual(col.tier, "cold")
        info = col.tier_info()
        self.assertEqual(info.tier, "cold")
        self.assertEqual(info.local_bytes, 0, "a COLD collection keeps no local file")
        self.assertGreater(info.cold_bytes, 0)
        self.assertEqual(col.stats().tier, "cold")
        self.assertEqual(len(col), 200, "count answers from the catalog without loading")
        self.assertEqual(col.tier, "cold")
        stats = self.db.tier_stats()
        self.assertEqual(stats.collections, {"hot": 0, "warm": 0, "cold": 1})
        self.assertGreater(stats.bytes["cold"], 0)
        self.assertEqual(stats.transitions_ok.get(("hot", "warm")), 1)
        self.assertEqual(stats.transitions_ok.get(("warm", "cold")), 1)
        self.assertEqual(stats.transitions_failed, {})
        loads = stats.loads

        # The search loads it back and answers exactly as before.
        self.assertEqual(col.search(q, k=5), before)
        self.assertEqual(col.tier, "hot")
        stats = self.db.tier_stats()
        self.assertEqual(stats.loads, loads + 1)
        self.assertEqual(stats.collections["hot"], 1)
        self.assertGreaterEqual(stats.load_seconds, 0)
        # Writes work after the promotion (they wait for the local copy).
        col.insert([q], external_ids=["new"])
        self.assertEqual(col.search(q, k=1)[0].external_id, "new")

    def test_warm_and_explicit_promotion(self):
        col = self.filled("w")
        q = _vectors(1, 5)[0]
        before = col.search(q, k=3)
        col.set_tier("WARM")              # names are case-insensitive
        self.assertEqual(col.tier, "warm")
        self.assertGreater(col.tier_info().local_bytes, 0)
        col.set_tier("hot")
        self.assertEqual(col.tier, "hot")
        self.assertEqual(col.search(q, k=3), before)
        col.set_tier("hot")               # already there: nothing to do
        self.assertEqual(col.tier, "hot")

    def test_cold_survives_reopen(self):
        col = self.filled("r")
        q = _vectors(1, 3)[0]
        before = col.search(q, k=4)
        col.set_tier("cold")
        self.reopen()
        col = self.db.collection("r")
        self.assertEqual(col.tier, "cold")
        self.assertEqual(col.search(q, k=4), before)
        self.assertEqual(col.tier, "hot")

    def test_bad_tier_values(self):
        col = self.filled("b", n=10)
        for bad in ("lukewarm", "", 3, None, "cold "):
            with self.assertRaises(akidb.InvalidArgument) as cm:
                col.set_tier(bad)
            self.assertIsInstance(cm.exception, ValueError)
            self.assertEqual(cm.exception.name, "AKIDB_INVALID")
        self.assertEqual(col.tier, "hot", "a refused tier change moves nothing")
        ghost = akidb.Collection(self.db, "ghost")
        for call in (lambda: ghost.tier, lambda: ghost.set_tier("cold"), ghost.pin,
                     ghost.tier_info):
            with self.assertRaises(akidb.NotFound):
                call()
        with self.assertRaises(akidb.InvalidArgument):
            akidb.Collection(self.db, "bad name!").tier_info()

    def test_pin_blocks_demotion(self):
        p = self.filled("p", seed=1)
        q = self.filled("q", seed=2)
        p.pin()
        self.assertTrue(p.pinned)
        self.assertTrue(p.tier_info().pinned)
        self.assertTrue(p.stats().pinned)
        self.assertFalse(q.pinned)
        # A memory budget of one byte: the worker demotes every HOT
        # collection it may, least recently used first; not the pinned one.
        self.db.set_tier_policy(memory_budget=1)
        self.assertEqual(self.db.tier_policy().memory_budget, 1)
        self.db.tier_run_once()
        self.assertEqual(p.tier, "hot")
        self.assertNotEqual(q.tier, "hot")
        self.assertGreaterEqual(self.db.tier_stats().worker_cycles, 1)
        # A pin only stops the worker: an explicit set_tier still moves it.
        p.set_tier("warm")
        self.assertEqual(p.tier, "warm")
        # (A promotion past the budget is refused, naming the sizes.)
        with self.assertRaises(akidb.QuotaExceeded):
            p.set_tier("hot")
        self.db.set_tier_policy(memory_budget=0)
        p.set_tier("hot")
        # Unpinned, the next cycle under the budget demotes it too.
        p.unpin()
        self.assertFalse(p.pinned)
        self.db.set_tier_policy(memory_budget=1)
        self.db.tier_run_once()
        self.assertNotEqual(p.tier, "hot")
        self.db.set_tier_policy(memory_budget=0)
        # The pin is durable.
        p.pin()
        self.reopen()
        self.assertTrue(self.db.collection("p").pinned)

    def test_ttl_options_demote_idle_collections(self):
        self.reopen(tier_hot_ttl_s=1, tier_warm_ttl_s=akidb.NEVER)
        pol = self.db.tier_policy()
        self.assertEqual(pol.hot_ttl_s, 1)
        self.assertEqual(pol.warm_ttl_s, math.inf)
        col = self.filled("t", n=20)
        kept = self.filled("k", n=20, seed=3)
        kept.set_tier_policy(disabled=True)
        self.assertEqual(kept.tier_policy().overrides, ("disabled",))
        time.sleep(1.2)
        self.db.tier_run_once()
        self.assertEqual(col.tier, "warm")
        self.assertEqual(kept.tier, "hot", "tiering disabled for this collection")
        self.db.tier_run_once()
        self.assertEqual(col.tier, "warm", "the warm TTL is NEVER")
        kept.set_tier_policy(reset=["disabled"])
        self.assertEqual(kept.tier_policy().overrides, ())

    def test_open_options_validated(self):
        self.db.close()
        for kwargs in ({"tier_hot_ttl_s": 0}, {"tier_hot_ttl_s": -5},
                       {"tier_warm_ttl_s": "1h"}, {"memory_budget": -1},
                       {"tier_interval_ms": 0}, {"snapshot_retention": 2**32},
                       {"tier_promote_per_hour": 1.5}):
            with self.assertRaises(akidb.InvalidArgument, msg=str(kwargs)):
                akidb.open(self.dir, **kwargs).close()
        self.db = akidb.open(self.dir, tier_interval_ms=akidb.NEVER, memory_budget=1 << 30,
                             store_quota=1 << 40, snapshot_retention=2, max_collections=3,
                             tier_promote_per_hour=4, tier_disabled=True)
        pol = self.db.tier_policy()
        self.assertEqual((pol.memory_budget, pol.store_quota, pol.snapshot_retention,
                          pol.max_collections, pol.promote_per_hour, pol.disabled),
                         (1 << 30, 1 << 40, 2, 3, 4, True))
        for i in range(3):
            self.db.create_collection(f"m{i}", 2)
        with self.assertRaises(akidb.QuotaExceeded):
            self.db.create_collection("m3", 2)
        with self.assertRaises(akidb.InvalidArgument):
            self.db.set_tier_policy(promote_per_hour=0)
        with self.assertRaises(TypeError):
            self.db.set_tier_policy(bogus=1)

    def test_store_failure_leaves_it_in_place(self):
        self.store = akidb.MockStore()
        self.reopen(store=self.store)
        col = self.filled("f", n=50)
        q = _vectors(1, 8)[0]
        before = col.search(q, k=3)
        self.store.inject("503", ops=("put",), count=100)
        with self.assertRaises(akidb.Unavailable):
            col.set_tier("cold")
        self.assertIn(col.tier, ("hot", "warm"))
        info = col.tier_info()
        self.assertEqual(info.last_error, "AKIDB_UNAVAILABLE")
        self.assertNotEqual(info.last_error_msg, "")
        self.assertTrue(self.db.tier_stats().transitions_failed)
        self.store.clear_faults()
        col.set_tier("cold")
        self.assertEqual(col.tier, "cold")
        self.assertEqual(col.search(q, k=3), before)

    def test_read_only_refuses_tier_changes(self):
        col = self.filled("ro", n=10)
        col.set_tier("cold")
        self.reopen(read_only=True)
        col = self.db.collection("ro")
        # A read-only handle loads a COLD collection into RAM on access
        # (nothing on disk changes) but refuses every real tier change.
        self.assertEqual(len(col.search(_vectors(1, 1)[0], k=2)), 2)
        for call in (lambda: col.set_tier("cold"), col.pin, self.db.tier_run_once,
                     lambda: col.set_tier_policy(disabled=True)):
            with self.assertRaises(akidb.ReadOnly):
                call()
        self.reopen()
        self.assertEqual(self.db.collection("ro").tier, "cold")

    def test_gil_released_during_a_cold_load(self):
        # A slow store (every call sleeps in C): the load of a COLD
        # collection takes a while, and the main thread must keep running
        # Python meanwhile.
        self.store = akidb.MockStore()
        self.reopen(store=self.store)
        col = self.filled("g", n=100)
        col.set_tier("cold")
        self.store.set_latency(400)
        span = {}

        def work():
            span["start"] = time.perf_counter()
            span["hits"] = col.search(_vectors(1, 4)[0], k=3)
            span["end"] = time.perf_counter()

        t = threading.Thread(target=work)
        stamps = []
        t.start()
        while t.is_alive():
            stamps.append(time.perf_counter())
        t.join()
        self.store.set_latency(0)
        self.assertEqual(len(span["hits"]), 3)
        duration = span["end"] - span["start"]
        self.assertGreater(duration, 0.3, "the load was too short to tell anything")
        inside = [s for s in stamps if span["start"] <= s <= span["end"]]
        self.assertGreater(len(inside), 100)
        gaps = [b - a for a, b in zip(inside, inside[1:])]
        self.assertLess(max(gaps), duration / 2,
                        f"main thread stalled {max(gaps):.3f}s during a {duration:.3f}s load")


if __name__ == "__main__":
    unittest.main()
