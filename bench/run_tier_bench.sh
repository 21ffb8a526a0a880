#!/bin/bash
# run_tier_bench.sh - the tiering benchmark (issue 12): bench_tier for
# 10k and 100k x 512 against the mock store and against a local radosgw
# (started by scripts/with-s3.sh, one per size), then the tables.
#
#   bench/run_tier_bench.sh OUTDIR [--quick] [--report]
#
# OUTDIR holds bench_tier (built by bench/tier.mk).  Written there:
# tier.raw (the programs' "result" lines, prefixed with store and size),
# tier.md (the tables), tier-machine.txt (load, CPU/wall: the machine is
# shared; figures taken under load say so).  TIER_ROUNDS (default 3) sets
# the rounds per figure (medians).  --quick: 2k and 10k, one round.
# --report: rebuild tier.md from tier.raw only.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
OUT=${1:?usage: $0 OUTDIR [--quick] [--report]}
shift
RAW=$OUT/tier.raw
ROUNDS=${TIER_ROUNDS:-3}
say() { echo "run_tier_bench: $*" >&2; }
quick=0 report=0
for a in "$@"; do
    case $a in
        --s3-one) ;;
        [0-9]*) ;;
        --quick) quick=1 ;;
        --report) report=1 ;;
        *) echo "run_tier_bench: unknown option $a" >&2; exit 2 ;;
    esac
done
sizes="10000 100000"
[ $quick = 1 ] && { sizes="2000 10000"; ROUNDS=1; }

run_one() {   # run_one STORE N [--p99]
    local store=$1 n=$2 extra=${3:-} tmp
    tmp=$(mktemp -d /tmp/akidb-tierbench.XXXXXX) || exit 1
    say "$store $n x 512 ($ROUNDS rounds) ..."
    local t0 t1
    t0=$(date +%s.%N)
    "$OUT/bench_tier" --n "$n" --rounds "$ROUNDS" --store "$store" --dir "$tmp/db" $extra \
        > "$tmp/out" || { say "ERROR: bench_tier $store $n failed"; cat "$tmp/out" >&2; rm -rf "$tmp"; exit 1; }
    t1=$(date +%s.%N)
    awk -v s="$store" -v n="$n" '$1 == "result" { print s, n, $2, $3 }' "$tmp/out" >> "$RAW"
    echo "$store $n wall_total $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" >> "$RAW"
    echo "$store $n loadavg $(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')" >> "$RAW"
    rm -rf "$tmp"
}

# One size against the radosgw that scripts/with-s3.sh started for us.
if [ "${1:-}" = "--s3-one" ]; then
    if [ -z "${AKIDB_TEST_S3_ENDPOINT:-}" ]; then
        say "ERROR: no S3 server (scripts/with-s3.sh could not start radosgw)"
        exit 1
    fi
    run_one s3 "$2"
    exit 0
fi

if [ $report = 0 ]; then
    [ -x "$OUT/bench_tier" ] || { say "ERROR: $OUT/bench_tier is missing (make -f bench/bench.mk tier)"; exit 1; }
    : > "$RAW"
    {
        echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "commit:  $(git -C "$root" rev-parse --short HEAD 2>/dev/null)"
        echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
        echo "uptime:  $(uptime)"
    } > "$OUT/tier-machine.txt"
    for n in $sizes; do
        p99=; [ "$n" = 10000 ] && p99=--p99
        run_one mock "$n" $p99
    done
    for n in $sizes; do
        # A fresh radosgw per size: its in-memory OSD holds 2 GiB.
        TIER_ROUNDS=$ROUNDS "$root/scripts/with-s3.sh" "$0" "$OUT" --s3-one "$n" ||
            say "ERROR: the radosgw run for $n failed"
    done
    echo "uptime after: $(uptime)" >> "$OUT/tier-machine.txt"
fi

# Rebuild the tables.
get() { awk -v s="$1" -v n="$2" -v k="$3" '$1 == s && $2 == n && $3 == k { v = $4 } END { print v }' "$RAW"; }
ms() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.0f", v * 1000 }'; }
mb() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.1f", v / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
{
    echo "| store | N x 512 | HOT->WARM (ms) | WARM->HOT, first search (ms) | cat ckpt (ms) | vs cat | touch fresh RAM (ms) | WARM->COLD (ms) | COLD->HOT, first search (ms) | curl GET (ms) | vs curl |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    for s in mock s3; do for n in $sizes; do
        [ -n "$(get $s $n hot_warm_s)" ] || continue
        echo "| $s | $n | $(ms "$(get $s $n hot_warm_s)") | $(ms "$(get $s $n warm_hot_s)") | $(ms "$(get $s $n cat_s)") | $(ratio "$(get $s $n warm_hot_s)" "$(get $s $n cat_s)") | $(ms "$(get $s $n touch_s)") | $(ms "$(get $s $n warm_cold_s)") | $(ms "$(get $s $n cold_hot_s)") | $(ms "$(get $s $n curl_s)") | $(ratio "$(get $s $n cold_hot_s)" "$(get $s $n curl_s)") |"
    done; done
    echo
    echo "| store | N x 512 | checkpoint object (MiB) | ZSTD snapshot (MiB) | ZSTD/ckpt | WARM->COLD upload (ms) | ZSTD snapshot upload (ms) | COLD->HOT (ms) | ZSTD restore (ms) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for s in mock s3; do for n in $sizes; do
        [ -n "$(get $s $n cold_bytes)" ] || continue
        echo "| $s | $n | $(mb "$(get $s $n cold_bytes)") | $(mb "$(get $s $n zstd_bytes)") | $(ratio "$(get $s $n zstd_bytes)" "$(get $s $n cold_bytes)") | $(ms "$(get $s $n warm_cold_s)") | $(ms "$(get $s $n zstd_upload_s)") | $(ms "$(get $s $n cold_hot_s)") | $(ms "$(get $s $n zstd_load_s)") |"
    done; done
    echo
    echo "| store | N x 512 | collection (MiB) | RSS before create (MiB) | RSS HOT (MiB) | RSS after demotion (MiB) | after/before | CPU/wall WARM->HOT | CPU/wall COLD->HOT | load avg |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for s in mock s3; do for n in $sizes; do
        [ -n "$(get $s $n rss_before_kb)" ] || continue
        b=$(get $s $n rss_before_kb) h=$(get $s $n rss_hot_kb) w=$(get $s $n rss_warm_kb)
        echo "| $s | $n | $(mb "$(get $s $n coll_bytes)") | $(awk -v v="$b" 'BEGIN{printf "%.1f", v/1024}') | $(awk -v v="$h" 'BEGIN{printf "%.1f", v/1024}') | $(awk -v v="$w" 'BEGIN{printf "%.1f", v/1024}') | $(ratio "$w" "$b") | $(get $s $n warm_hot_cpu_over_wall | cut -c1-4) | $(get $s $n cold_hot_cpu_over_wall | cut -c1-4) | $(get $s $n loadavg) |"
    done; done
    p=$(get mock 10000 p99_idle_s)
    if [ -n "$p" ]; then
        echo
        echo "| hot 10k x 512 search | p50 (ms) | p99 (ms) |"
        echo "|---|---|---|"
        echo "| nothing moving | $(awk -v v="$(get mock 10000 p50_idle_s)" 'BEGIN{printf "%.2f", v*1000}') | $(awk -v v="$p" 'BEGIN{printf "%.2f", v*1000}') |"
        echo "| another collection moving ($(get mock 10000 moves_during | cut -d. -f1) transitions) | $(awk -v v="$(get mock 10000 p50_moving_s)" 'BEGIN{printf "%.2f", v*1000}') | $(awk -v v="$(get mock 10000 p99_moving_s)" 'BEGIN{printf "%.2f", v*1000}') |"
        echo "| nothing moving, again | - | $(awk -v v="$(get mock 10000 p99_idle_after_s)" 'BEGIN{printf "%.2f", v*1000}') |"
        echo "| ratio moving / idle (p99) | | $(ratio "$(get mock 10000 p99_moving_s)" "$p") |"
    fi
} > "$OUT/tier.md"
cat "$OUT/tier-machine.txt" "$OUT/tier.md"
