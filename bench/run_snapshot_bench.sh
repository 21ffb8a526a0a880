#!/bin/bash
# run_snapshot_bench.sh - the snapshot benchmark (issue 5): AkiDB's Parquet
# snapshot create and restore against DuckDB writing and reading the same
# table on one thread, in the same run, plus the size next to JSON.  Prints
# the tables at the end.
#
#   bench/run_snapshot_bench.sh OUTDIR [--quick] [--reps R] [--sizes "N[:EFC] ..."]
#
# OUTDIR/snapshot holds bench_snapshot (built by bench/snapshot.mk).
# Written there: snapshot.log (everything), snapshot.raw (the RESULT
# lines), snapshot.md (the tables), machine.txt.  Scratch data (databases,
# Parquet files, JSON lines: about 2 GB for 100k rows) goes to
# OUTDIR/snapshot/tmp, on the disk being measured, and is removed at the
# end.
#
# Sizes: 10,000 rows with the default HNSW parameters, and 100,000 rows
# with ef_construction 64 (at the default 200 the 100k x 512 build alone
# took 456 s on this machine, more than the whole run may take; the build
# is not what is measured, and the snapshot came out 0.06% larger with the
# same timings).
# --sizes overrides, e.g. --sizes "10000 100000:200".  --quick: 2,000 rows
# only (a smoke run, about 10 s).  --reps: repetitions per timed step
# (default 3; each figure is the median).
#
# Per size, the AkiDB side runs first (bench_snapshot: build, then create,
# export, restore; it writes the Parquet file and the JSON lines), then the
# DuckDB side (bench/snapshot_duckdb.mjs: loads AkiDB's export into a
# table, untimed, then times COPY ... (FORMAT parquet, COMPRESSION zstd) and
# reading the file back with SET threads=1).  Never both at once.
#
# DuckDB is @duckdb/node-api from npm, installed by
# `scripts/parquet-interop.sh install` into build/npm (shared with the
# Parquet interop tests; AKIDB_NPM_DIR overrides).  If it cannot be
# installed the benchmark fails loudly.
set -u

OUT=${1:?usage: run_snapshot_bench.sh OUTDIR [--quick] [--reps R] [--sizes LIST]}
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
SIZES="10000 100000:64"
REPS=3
while [ $# -gt 0 ]; do
    case $1 in
        --quick) SIZES=2000; shift ;;
        --reps) REPS=${2:?--reps needs a value}; shift 2 ;;
        --sizes) SIZES=${2:?--sizes needs a value}; shift 2 ;;
        *) echo "run_snapshot_bench: unknown argument $1" >&2; exit 2 ;;
    esac
done

say() { echo "run_snapshot_bench: $*" >&2; }

D=$OUT/snapshot
TMP=$D/tmp
LOG=$D/snapshot.log
RAW=$D/snapshot.raw
MD=$D/snapshot.md
mkdir -p "$D"
rm -rf "$TMP"
mkdir -p "$TMP"
: >"$LOG"
: >"$RAW"

export AKIDB_NPM_DIR=${AKIDB_NPM_DIR:-$root/build/npm}
if ! "$root/scripts/parquet-interop.sh" install; then
    say "ERROR: cannot install @duckdb/node-api; the DuckDB side cannot run"
    exit 1
fi

model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
{
    echo "machine: ${model:-unknown}, $(nproc) CPUs, Linux $(uname -r)"
    echo "disk:    $(df -h "$D" | awk 'NR == 2 { print $1 " (" $6 ")" }')"
    echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "sizes:   $SIZES; reps: $REPS"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the run"
} | tee "$D/machine.txt"

status=0
t0=$(date +%s)
for spec in $SIZES; do
    n=${spec%%:*}
    efc=
    [ "$spec" != "$n" ] && efc=${spec#*:}
    echo | tee -a "$LOG"
    echo "== AkiDB: $n rows${efc:+, ef_construction $efc} ==" | tee -a "$LOG"
    timeout 1800 "$D/bench_snapshot" --n "$n" --reps "$REPS" ${efc:+--efc "$efc"} \
        --dir "$TMP" --files "$TMP" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        say "ERROR: bench_snapshot --n $n failed (exit $rc)"
        status=1
        continue
    fi
    line=$(grep "^RESULT kind=akidb n=$n " "$LOG" | tail -n 1)
    echo "$line" >>"$RAW"
    vec_sum=$(printf '%s\n' "$line" | sed -n 's/.* vec_sum=\([^ ]*\).*/\1/p')
    echo "== DuckDB: $n rows ==" | tee -a "$LOG"
    timeout 900 node "$here/snapshot_duckdb.mjs" time "$TMP/akidb-$n.parquet" "$n" "$REPS" \
        "$vec_sum" "$TMP" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        say "ERROR: the DuckDB side for $n rows failed (exit $rc)"
        status=1
    fi
    grep "^RESULT kind=duckdb n=$n " "$LOG" | tail -n 1 >>"$RAW"
    # The big files of this size are done with.
    rm -f "$TMP/akidb-$n.parquet" "$TMP/duckdb-$n.parquet" "$TMP/rows-$n.jsonl"
done
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) after the run, $(( $(date +%s) - t0 )) s" |
    tee -a "$D/machine.txt"
rm -rf "$TMP"

if grep -q "^RESULT kind=akidb" "$RAW"; then
    node "$here/snapshot_duckdb.mjs" table "$RAW" >"$MD" || status=1
    echo
    cat "$D/machine.txt"
    echo
    cat "$MD"
else
    say "ERROR: no results"
    status=1
fi
exit $status
