#!/usr/bin/env python3
"""quant_report.py - the tables of the quantized-storage benchmark (issue 16).

    bench/quant_report.py [--machine FILE] LOG...

Reads the RESULT lines of the logs bench/run_quant_bench.sh wrote (one per
data set, side and round) and prints Markdown:

- per set, the figures at recall@10 0.95 and 0.99: each side's QPS there,
  as a ratio to usearch i8 and to AkiDB f32, with build time and index
  memory (RSS increment) and their ratios;
- the issue-16 targets read from those figures;
- per set, recall and QPS at every ef.

Every figure is the median over rounds (QPS, build seconds, index KiB,
recall).  QPS at a recall is read off the side's own ef sweep the way
run_hnsw_bench.sh reads hnswlib's: points sorted by recall, made Pareto
(the best QPS seen at that recall or higher), then linear interpolation
between the two points around the target.  A target below the side's
lowest recall (ef=10 already above it) gets that point's QPS, marked >=
(a lower bound); a target above its highest recall is "not reached".
Standard library only.
"""
import re
import statistics
import sys
from collections import defaultdict

TARGETS = (0.95, 0.99)
ANCHOR_PEER = "usearch-i8"
ANCHOR_SELF = "akidb-f32"
ORDER = ["akidb-int8", "akidb-int8-warm", "akidb-int8-noexact", "akidb-f16", "akidb-f32",
         "usearch-i8", "usearch-i8-px128", "usearch-f16", "usearch-f32", "hnswlib-f32"]


def parse(paths):
    """-> runs[(set, impl)] = list of per-round dicts."""
    runs = defaultdict(list)
    for path in paths:
        m = re.search(r"\.(\d+)\.log$", path)
        rnd = int(m.group(1)) if m else 0
        rec = {"round": rnd, "search": {}, "path": path}
        key = None
        with open(path, errors="replace") as f:
            for line in f:
                if not line.startswith("RESULT "):
                    continue
                kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
                key = (kv.get("set"), kv.get("impl"))
                kind = kv.get("kind")
                if kind == "search":
                    rec["search"][int(kv["ef"])] = kv
                else:
                    rec[kind] = kv
        if key:
            runs[key].append(rec)
    return runs


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fnum(rec, kind, field):
    try:
        return float(rec[kind][field])
    except (KeyError, ValueError, TypeError):
        return None


def summarise(recs):
    """Medians over rounds for one (set, impl)."""
    s = {"rounds": len(recs)}
    done = [r for r in recs if r["search"]]
    s["skipped"] = not done and any("skipped" in r for r in recs)
    s["ran"] = len(done)
    s["build"] = med([fnum(r, "build", "seconds") for r in done])
    s["build_cpu"] = med([fnum(r, "build", "cpu_seconds") for r in done])
    s["index_kb"] = med([fnum(r, "memory", "index_kb") for r in done])
    s["index_raw_kb"] = med([fnum(r, "memory", "index_raw_kb") for r in done])
    info = next((r["info"] for r in done if "info" in r), {})
    s["info"] = info
    s["isa"] = next((r["kernels"]["isa"] for r in done if "kernels" in r), None)
    s["config"] = next((r["config"] for r in done if "config" in r), {})
    s["codes"] = next((r["codes"] for r in done if "codes" in r), {})
    efs = sorted({ef for r in done for ef in r["search"]})
    s["ef"] = {}
    for ef in efs:
        pts = [r["search"][ef] for r in done if ef in r["search"]]
        qps = [float(p["qps"]) for p in pts]
        s["ef"][ef] = {
            "recall": med([float(p["recall"]) for p in pts]),
            "qps": med(qps),
            "qps_min": min(qps),
            "qps_max": max(qps),
            "cpu_per_wall": med([float(p["cpu_per_wall"]) for p in pts]),
        }
    return s


def at_recall(s, target):
    """(qps, mark, ef_bracket) at recall `target` along s's sweep."""
    pts = sorted(((v["recall"], v["qps"], ef) for ef, v in s["ef"].items()),
                 key=lambda p: (p[0], -p[1]))
    if not pts:
        return None, "", ""
    curve = []
    for rec, qps, ef in pts:          # one point per recall: the fastest
        if curve and curve[-1][0] == rec:
            continue
        curve.append([rec, qps, ef])
    for i in range(len(curve) - 2, -1, -1):   # Pareto: QPS non-increasing in recall
        curve[i][1] = max(curve[i][1], curve[i + 1][1])
    if target < curve[0][0]:
        return curve[0][1], ">= ", "ef %d" % curve[0][2]
    if target > curve[-1][0]:
        return None, "max %.4f" % curve[-1][0], ""
    for i, (rec, qps, ef) in enumerate(curve):
        if rec == target:
            return qps, "", "ef %d" % ef
        if i + 1 < len(curve) and rec < target < curve[i + 1][0]:
            r2, q2, ef2 = curve[i + 1]
            return qps + (q2 - qps) * (target - rec) / (r2 - rec), "", "ef %d-%d" % (ef, ef2)
    return None, "", ""


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "n/a"


def show_qps(q, mark):
    if q is None:
        return "not reached (%s)" % mark if mark else "n/a"
    return "%s%.0f" % (mark, q)


def order_key(impl):
    m = re.match(r"akidb-int8-r(\d+)$", impl)
    if m:  # re-rank variants right after the default int8 side
        return (ORDER.index("akidb-int8"), int(m.group(1)))
    return (ORDER.index(impl) if impl in ORDER else len(ORDER), 0 if impl in ORDER else impl)


def main(argv):
    machine, paths = None, argv[1:]
    if paths[:1] == ["--machine"] and len(paths) > 1:
        machine, paths = paths[1], paths[2:]
    runs = parse(paths)
    if not runs:
        print("quant_report: no RESULT lines in the logs", file=sys.stderr)
        return 1
    if machine:
        print("```")
        with open(machine) as f:
            print(f.read().rstrip())
        print("```")
        print()
    sets = sorted({k[0] for k in runs})
    worst_cpu = 1.0
    for st in sets:
        S = {impl: summarise(recs) for (s2, impl), recs in runs.items() if s2 == st}
        impls = sorted(S, key=order_key)
        ran = [i for i in impls if S[i]["ran"]]
        info = next((S[i]["info"] for i in ran if S[i]["info"]), {})
        print("### %s: %s x %s, %s queries, k=10, one thread, M=16, ef_construction=200"
              % (st, info.get("n", "?"), info.get("dim", "?"), info.get("nq", "?")))
        print()
        rounds = max((S[i]["ran"] for i in ran), default=0)
        print("Medians of %d round(s); QPS at a recall interpolated along each side's own ef "
              "sweep (Pareto, linear; `>=` = already above the target at ef=10)." % rounds)
        print()
        A = {t: {i: at_recall(S[i], t) for i in ran} for t in TARGETS}
        head = "| side |"
        rule = "|---|"
        for t in TARGETS:
            head += " QPS @%.2f | x %s | x %s |" % (t, ANCHOR_PEER, ANCHOR_SELF)
            rule += "---:|---:|---:|"
        head += " build s | index MiB (raw) | mem x %s | mem x %s | max recall |" % (
            ANCHOR_PEER, ANCHOR_SELF)
        rule += "---:|---:|---:|---:|---:|"
        print(head)
        print(rule)
        for i in impls:
            s = S[i]
            if not s["ran"]:
                print("| %s | not run%s |" % (i, " (library without storage kinds)"
                                              if s["skipped"] else " (failed: see the log)"))
                continue
            row = "| %s |" % i
            for t in TARGETS:
                q, mark, _ = A[t][i]
                qp = A[t].get(ANCHOR_PEER, (None,))[0]
                qs = A[t].get(ANCHOR_SELF, (None,))[0]
                row += " %s | %s | %s |" % (show_qps(q, mark), ratio(q, qp), ratio(q, qs))
            kb = s["index_kb"]
            kp = S.get(ANCHOR_PEER, {}).get("index_kb")
            ks = S.get(ANCHOR_SELF, {}).get("index_kb")
            maxr = max(v["recall"] for v in s["ef"].values())
            raw = s["index_raw_kb"]
            row += " %s | %s%s | %s | %s | %.4f |" % (
                "%.2f" % s["build"] if s["build"] is not None else "n/a",
                "%.1f" % (kb / 1024) if kb is not None else "n/a",
                " (%.1f)" % (raw / 1024) if raw is not None else "", ratio(kb, kp), ratio(kb, ks),
                maxr)
            print(row)
        print()

        # The issue-16 targets, as far as this run measured them.
        print("Targets (issue 16) on this set:")
        print()
        print("| target | measured | met |")
        print("|---|---|---|")

        def met(cond):
            return "n/a" if cond is None else ("yes" if cond else "**no**")

        int8_sides = [i for i in impls if i == "akidb-int8" or re.match(r"akidb-int8-r\d+$", i)]
        for ak in int8_sides or ["akidb-int8"]:
            for t in TARGETS:
                q = A[t].get(ak, (None,))[0]
                for anchor, want in ((ANCHOR_PEER, 1.0), (ANCHOR_SELF, 1.3)):
                    qa = A[t].get(anchor, (None,))[0]
                    r = q / qa if q is not None and qa else None
                    m_ak = A[t].get(ak, (None, ""))[1]
                    m_an = A[t].get(anchor, (None, ""))[1]
                    if q is not None and qa is None and m_an.startswith("max "):
                        # the anchor never gets there; AkiDB does
                        print("| %s QPS >= %.1fx %s at recall %.2f | %s never reaches %.2f (%s); "
                              "%s does (%s QPS) | yes |" % (ak, want, anchor, t, anchor, t, m_an,
                                                          ak, show_qps(q, m_ak)))
                        continue
                    note = "" if not (m_ak or m_an) else " (%s: %s; %s: %s)" % (
                        ak, m_ak.strip() or "interpolated", anchor, m_an.strip() or "interpolated")
                    print("| %s QPS >= %.1fx %s at recall %.2f | %s%s | %s |"
                          % (ak, want, anchor, t, "%.2f" % r if r is not None else "n/a", note,
                             met(None if r is None else r >= want)))
            if ak in S and ANCHOR_SELF in S and S[ak]["ran"] and S[ANCHOR_SELF]["ran"]:
                common = sorted(set(S[ak]["ef"]) & set(S[ANCHOR_SELF]["ef"]))
                # shortfall: how far int8 falls below f32 (above is fine: the
                # re-rank walk may look at more candidates than ef)
                diffs = [(S[ANCHOR_SELF]["ef"][e]["recall"] - S[ak]["ef"][e]["recall"], e)
                         for e in common]
                d, e = max(diffs) if diffs else (None, None)
                print("| %s recall at most 0.002 below %s at the same ef | largest shortfall %s "
                      "(ef %s; negative = int8 above f32 at every ef) | %s |"
                      % (ak, ANCHOR_SELF, "%.4f" % d if d is not None else "n/a", e,
                         met(None if d is None else d <= 0.002)))
        warm = "akidb-int8-warm"
        ks = S.get(ANCHOR_SELF, {}).get("index_kb")
        kw = S[warm]["index_kb"] if S.get(warm, {}).get("ran") else None
        if kw:
            measured = ratio(kw, ks)
        else:
            ne = "akidb-int8-noexact"
            kn = S[ne]["index_kb"] if S.get(ne, {}).get("ran") else None
            measured = "not run" + ("; without exact vectors at all (%s): %s" % (ne, ratio(kn, ks))
                                    if kn else "")
        print("| index memory, exact vectors in the warm file (%s), <= 0.35x %s | %s | %s |"
              % (warm, ANCHOR_SELF, measured,
                 met(None if not kw or not ks else kw / ks <= 0.35)))
        print()

        # Every ef.
        efs = sorted({ef for i in ran for ef in S[i]["ef"]})
        print("Recall@10 / QPS per ef (medians over rounds):")
        print()
        print("| ef | " + " | ".join(ran) + " |")
        print("|---:|" + "---:|" * len(ran))
        for ef in efs:
            cells = []
            for i in ran:
                v = S[i]["ef"].get(ef)
                cells.append("%.4f / %.0f" % (v["recall"], v["qps"]) if v else "")
                if v:
                    worst_cpu = min(worst_cpu, v["cpu_per_wall"])
            print("| %d | %s |" % (ef, " | ".join(cells)))
        print()
        notes = []
        for i in ran:
            s = S[i]
            bits = []
            if s["build"] and s["build_cpu"]:
                bits.append("build CPU/wall %.2f" % (s["build_cpu"] / s["build"]))
            if s["isa"]:
                bits.append("kernels %s" % s["isa"])
            if s["config"]:
                c = s["config"]
                bits.append("config: storage %s, exact %s, rerank %s" % (
                    c.get("storage"), c.get("exact"),
                    "default" if c.get("rerank") == "0" else c.get("rerank")))
            if s["info"].get("i8_input") not in (None, "none"):
                bits.append("int8 input %s (clipped: base %s, queries %s values)"
                            % (s["info"]["i8_input"], s["info"].get("base_clipped"),
                               s["info"].get("query_clipped")))
            if s["codes"]:
                c = s["codes"]
                bits.append("int8 codes read back: %s rows, %s differ from the quantiser usearch "
                            "i8 is fed (trained on the first %s rows here), %s still exact"
                            % (c.get("rows"), c.get("rows_differing"), c.get("train_rows"),
                               c.get("rows_exact")))
            if s["info"].get("version"):
                bits.append("version %s" % s["info"]["version"])
            spread = max((v["qps_max"] / v["qps_min"] for v in s["ef"].values() if v["qps_min"]),
                         default=1.0)
            if s["ran"] > 1:
                bits.append("widest QPS spread over rounds %.2fx" % spread)
            notes.append("- %s: %s" % (i, "; ".join(bits)))
        print("\n".join(notes))
        print()
    print("Lowest CPU/wall of any search point: %.2f (1.00 = one busy thread; lower = the "
          "machine was busy elsewhere: figures UNDER LOAD)." % worst_cpu)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
