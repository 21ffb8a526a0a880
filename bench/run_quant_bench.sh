#!/bin/sh
# run_quant_bench.sh - run the quantized-storage benchmark (issue 16): every
# side on every data set, one process at a time, in rounds whose order
# rotates, then the tables (bench/quant_report.py).
#
#   bench/run_quant_bench.sh OUTDIR [--quick] [--sets "fmnist clustered"]
#
# OUTDIR holds the programs (bench/quant.mk builds them).  Writes
# OUTDIR/quant/: the prepared data sets (NAME.base, NAME.query, NAME.gt;
# kept between runs), logs/SET.SIDE.ROUND.log, machine.txt and quant.md.
#
# Environment:
#   QUANT_ROUNDS  rounds (default 5; --quick: 1).  Each figure in the
#                 tables is the median over rounds.
#   QUANT_IMPLS   the sides, space-separated (default: akidb-f32 akidb-f16
#                 akidb-int8 akidb-int8-r1 akidb-int8-noexact hnswlib-f32
#                 usearch-f32 usearch-f16 usearch-i8).  akidb-int8 uses
#                 the library's default re-rank (a walk of at least
#                 rerank x k candidates whatever the ef); akidb-int8-rN
#                 sets rerank N (any N in 1..64: a sweep over N is how the
#                 default is chosen).
#                 akidb-int8-noexact is int8 without exact vectors
#                 (AKIDB_EXACT_NONE: approximate distances, like usearch
#                 i8).  Also known:
#                 usearch-i8-px128 (usearch fed pixel-128, Fashion-MNIST
#                 only), akidb-int8-warm (int8,
#                 exact vectors in the checkpoint file: AKIDB_EXACT_FILE),
#                 akidb-int8-rN (int8, re-rank N x k).
#   QUANT_AKIDB_ARGS  extra arguments for every AkiDB side (e.g. --sync none)
#
# Rotation: round r starts the list of sides at position r, so each side
# runs early and late, after a different neighbour, across rounds; the
# sets alternate which goes first.  A side the AkiDB library cannot run
# (storage kinds missing: exit 3) is shown as "not run"; any other failure
# is reported, the run goes on, and the script exits 1 at the end.
set -u

OUT=${1:?usage: run_quant_bench.sh OUTDIR [--quick] [--sets "..."]}
shift
quick=0
SETS="fmnist clustered"
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1 ;;
        --sets) SETS=${2:?--sets needs a list}; shift ;;
        *) echo "run_quant_bench: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

IMPLS=${QUANT_IMPLS:-}
[ -n "$IMPLS" ] || IMPLS="akidb-f32 akidb-f16 akidb-int8 akidb-int8-r1 akidb-int8-noexact hnswlib-f32 usearch-f32 usearch-f16 usearch-i8"
if [ $quick = 1 ]; then
    ROUNDS=${QUANT_ROUNDS_QUICK:-1}
    PASSES=2
    EFS=10,16,24,32,64,128
    FM_N=10000; FM_NQ=500
    CL_N=10000; CL_NQ=500; CL_C=100
else
    ROUNDS=${QUANT_ROUNDS:-5}
    PASSES=3
    EFS=10,16,24,32,48,64,96,128,192,256
    FM_N=60000; FM_NQ=1000
    CL_N=100000; CL_NQ=1000; CL_C=1000
fi
CL_DIM=384
SEED=42

Q="$OUT/quant"
DATA="$Q/data"
LOGS="$Q/logs"
mkdir -p "$DATA" "$LOGS"
rm -f "$LOGS"/*.log
status=0

# Data sets: made once, kept (names carry every parameter; g1 = generator
# version, to bump when quant_prep's generator changes).
stem_of() {
    case $1 in
        fmnist) echo "fmnist-n$FM_N-q$FM_NQ" ;;
        clustered) echo "clustered-g1-n$CL_N-d$CL_DIM-c$CL_C-q$CL_NQ-s$SEED" ;;
    esac
}
for set in $SETS; do
    case $set in
        fmnist)
            "$OUT/quant_prep" --out "$DATA" --name "$(stem_of fmnist)" --set fmnist \
                --n $FM_N --nq $FM_NQ --fmnist-gt "$OUT/fmnist-gt.bin" || exit 1 ;;
        clustered)
            "$OUT/quant_prep" --out "$DATA" --name "$(stem_of clustered)" --set clustered \
                --n $CL_N --nq $CL_NQ --dim $CL_DIM --clusters $CL_C --seed $SEED || exit 1 ;;
        *) echo "run_quant_bench: unknown set $set" >&2; exit 2 ;;
    esac
done

model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
{
    echo "machine: ${model:-unknown}, $(nproc) CPUs, Linux $(uname -r)"
    echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "mode:    $([ $quick = 1 ] && echo quick || echo full); rounds $ROUNDS; passes $PASSES; ef $EFS"
    echo "sides:   $IMPLS${QUANT_AKIDB_ARGS:+; AkiDB: $QUANT_AKIDB_ARGS}"
    echo "usearch: $(cat "$OUT/usearch/VERSION" 2>/dev/null || echo '?')"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the run"
} | tee "$Q/machine.txt"

# One side on one set; prints its log, returns its exit status.
run_side() { # set-stem impl round
    stem=$1 impl=$2 r=$3
    log="$LOGS/$stem.$impl.$r.log"
    common="--data $DATA --set $stem --efs $EFS --passes $PASSES"
    case $impl in
        akidb-f32) cmd="$OUT/bench_quant $common --storage f32 --workdir $Q ${QUANT_AKIDB_ARGS:-}" ;;
        akidb-f16) cmd="$OUT/bench_quant $common --storage f16 --workdir $Q ${QUANT_AKIDB_ARGS:-}" ;;
        akidb-int8) cmd="$OUT/bench_quant $common --storage int8 --workdir $Q ${QUANT_AKIDB_ARGS:-}" ;;
        akidb-int8-noexact)
            # --check-codes: AkiDB's decoded vectors against the codes the
            # usearch i8 side is fed (quant_common's copy of the quantiser)
            cmd="$OUT/bench_quant $common --storage int8 --exact none --check-codes 1000 --impl $impl --workdir $Q ${QUANT_AKIDB_ARGS:-}" ;;
        akidb-int8-warm)
            cmd="$OUT/bench_quant $common --storage int8 --exact file --impl $impl --workdir $Q ${QUANT_AKIDB_ARGS:-}" ;;
        akidb-int8-r*)
            cmd="$OUT/bench_quant $common --storage int8 --rerank ${impl#akidb-int8-r} --impl $impl --workdir $Q ${QUANT_AKIDB_ARGS:-}" ;;
        hnswlib-f32) cmd="$OUT/hnswlib_quant_peer $common" ;;
        usearch-f32) cmd="$OUT/usearch_quant_peer $common --scalar f32" ;;
        usearch-f16) cmd="$OUT/usearch_quant_peer $common --scalar f16" ;;
        usearch-i8) cmd="$OUT/usearch_quant_peer $common --scalar i8" ;;
        usearch-i8-px128)
            case $stem in
                fmnist*) cmd="$OUT/usearch_quant_peer $common --scalar i8 --i8-input pixel128" ;;
                *) return 0 ;;  # exact only on 0..255 integer data
            esac ;;
        *) echo "run_quant_bench: unknown side $impl" >&2; return 2 ;;
    esac
    echo
    echo "== round $r/$ROUNDS: $stem: $impl =="
    # shellcheck disable=SC2086  # word splitting of the command is intended
    $cmd >"$log" 2>&1
    rc=$?
    cat "$log"
    return $rc
}

n_impls=$(echo $IMPLS | wc -w)
t0=$(date +%s)
r=1
while [ "$r" -le "$ROUNDS" ]; do
    # sides rotated by r-1; sets alternate which goes first
    order=$(echo $IMPLS | tr ' ' '\n' | awk -v s=$(( (r - 1) % n_impls )) -v n=$n_impls \
        '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[(i + s) % n] }')
    sets=$SETS
    [ $((r % 2)) = 0 ] && sets=$(echo $SETS | tr ' ' '\n' | awk '{ a[NR] = $0 } END { for (i = NR; i >= 1; i--) print a[i] }')
    for set in $sets; do
        stem=$(stem_of "$set")
        for impl in $order; do
            run_side "$stem" "$impl" "$r"
            rc=$?
            if [ $rc = 3 ]; then
                echo "run_quant_bench: $impl not run on this library (see its log)"
            elif [ $rc != 0 ]; then
                echo "run_quant_bench: $impl on $stem FAILED (exit $rc)" >&2
                status=1
            fi
        done
    done
    r=$((r + 1))
done
t1=$(date +%s)
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) after the run; $((t1 - t0)) s" |
    tee -a "$Q/machine.txt"

python3 bench/quant_report.py --machine "$Q/machine.txt" "$LOGS"/*.log | tee "$Q/quant.md" ||
    status=1
exit $status
