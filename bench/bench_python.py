#!/usr/bin/env python3
"""bench_python.py - what the Python binding costs per search, against the
library called from C on the same database and queries, in the same run.

    python bench/bench_python.py BUILD [N] [DIM]      (defaults 20000, 128)

Run it with a Python that has the akidb package (and numpy: the queries
are numpy rows, the zero-copy case).  It builds a collection of N random
vectors, writes 1000 queries to a file, runs bench/bench_search_c (built
here with cc against BUILD/libakidb.a) on it, then times in Python:
  ctypes    lib.akidb_search called directly through ctypes (the floor)
  search    col.search(q, k=10, documents=False)
  search+d  col.search(q, k=10) (fetches external id and metadata per hit)
  list      col.search(list, k=10, documents=False)
and search_batch with 1 and 2 workers (threads; the GIL is released).
Each figure is the median of ROUNDS rounds over all queries; the
overhead is (Python - C) per call and the ratio Python / C.  The machine is
shared: the load average and the run's CPU/wall ratio are printed too.
"""

import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import akidb
from akidb import _capi

ROUNDS = 5
K = 10
N_Q = 1000


def per_call(fn, queries):
    """(wall, CPU) nanoseconds per call, medians of ROUNDS rounds.  CPU time
    is what a loaded machine distorts least, so overheads use it."""
    walls, cpus = [], []
    for _ in range(ROUNDS):
        t0, c0 = time.perf_counter(), time.process_time()
        for q in queries:
            fn(q)
        walls.append((time.perf_counter() - t0) / len(queries) * 1e9)
        cpus.append((time.process_time() - c0) / len(queries) * 1e9)
    return statistics.median(walls), statistics.median(cpus)


def main(argv):
    build = os.path.abspath(argv[1])
    n = int(argv[2]) if len(argv) > 2 else 20000
    dim = int(argv[3]) if len(argv) > 3 else 128
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tmp = tempfile.mkdtemp(prefix="akidb-bench-py-")
    rng = np.random.default_rng(1)
    data = rng.standard_normal((n, dim), dtype=np.float32)
    queries = rng.standard_normal((N_Q, dim), dtype=np.float32)
    qfile = os.path.join(tmp, "queries.f32")
    queries.tofile(qfile)
    dbdir = os.path.join(tmp, "db")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with akidb.open(dbdir, sync="none") as db:
        col = db.create_collection("bench", dim, metric="l2")
        for i in range(0, n, 5000):
            col.insert(data[i:i + 5000], metadata=[{"row": r} for r in range(i, min(n, i + 5000))],
                       external_ids=[f"r{r}" for r in range(i, min(n, i + 5000))])
    build_s = time.perf_counter() - wall0

    exe = os.path.join(tmp, "bench_search_c")
    libs = subprocess.run(["pkg-config", "--libs", "sqlite3", "libcurl", "openssl", "libzstd"],
                          capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["cc", "-O2", f"-I{root}/include", os.path.join(root, "bench", "bench_search_c.c"),
                    os.path.join(build, "libakidb.a")] + libs + ["-lm", "-pthread", "-o", exe],
                   check=True)
    out = subprocess.run([exe, dbdir, "bench", qfile, str(dim), str(K), str(ROUNDS)],
                         capture_output=True, text=True, check=True).stdout.split()
    c_ns, c_cpu = float(out[0]), float(out[1])

    rows = [q for q in queries]          # numpy rows: the zero-copy path
    lists = [q.tolist() for q in queries]
    with akidb.open(dbdir, read_only=True) as db:
        col = db.collection("bench")
        h = db._h
        hits = (_capi.Hit * K)()
        nh = ctypes.c_uint32()
        name = b"bench"
        raw = _capi.lib.akidb_search

        def ctypes_call(q):
            raw(h, name, q.ctypes.data, K, None, hits, ctypes.byref(nh))

        res = {
            "ctypes": per_call(ctypes_call, rows),
            "search": per_call(lambda q: col.search(q, K, documents=False), rows),
            "search+d": per_call(lambda q: col.search(q, K), rows),
            "list": per_call(lambda q: col.search(q, K, documents=False), lists),
        }
        batch = {}
        for w in (1, 2):
            r, c = [], []
            for _ in range(ROUNDS):
                t0, c0 = time.perf_counter(), time.process_time()
                col.search_batch(queries, K, documents=False, workers=w)
                r.append(time.perf_counter() - t0)
                c.append(time.process_time() - c0)
            batch[w] = (N_Q / statistics.median(r), statistics.median(c) / statistics.median(r))
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    load = os.getloadavg()

    print(f"# Python binding overhead: N={n} dim={dim} k={K}, {N_Q} queries x {ROUNDS} rounds "
          f"(collection built in {build_s:.1f} s)")
    print(f"# load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs; "
          f"this process CPU/wall {cpu / wall:.2f}")
    print("| call | wall ns/search | CPU ns/search | CPU overhead vs C (ns) | CPU ratio to C |")
    print("|---|---|---|---|---|")
    print(f"| C akidb_search | {c_ns:.0f} | {c_cpu:.0f} | - | 1.00 |")
    for key, label in (("ctypes", "ctypes, raw"), ("search", "col.search(numpy row, documents=False)"),
                       ("list", "col.search(list, documents=False)"),
                       ("search+d", "col.search(numpy row), with documents")):
        w, c = res[key]
        print(f"| {label} | {w:.0f} | {c:.0f} | {c - c_cpu:.0f} | {c / c_cpu:.2f} |")
    for wk in (1, 2):
        qps, ratio = batch[wk]
        print(f"| search_batch, {wk} worker(s) | {1e9 / qps:.0f} | | | "
              f"throughput {qps:.0f}/s, CPU/wall {ratio:.2f} |")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)
