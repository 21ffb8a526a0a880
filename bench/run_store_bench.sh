#!/bin/bash
# run_store_bench.sh - the object-store benchmark (issue 4): AkiDB's S3
# client and parallel uploader against the mock store with injected latency
# and against a local Ceph radosgw, with awscli and curl moving the same
# objects in the same run.  Prints the tables at the end.
#
#   bench/run_store_bench.sh OUTDIR [--quick] [--report]
#
# OUTDIR holds bench_store (built by bench/store.mk).  Written there:
# store.raw (`time NAME ROUND SECONDS`, one line per timed operation),
# store.md (the tables), store-machine.txt; scratch data goes to
# OUTDIR/store-tmp and is removed at the end.  STORE_ROUNDS (environment,
# default 3) sets the radosgw rounds; each figure is the median over rounds.
# --quick: 200 objects, a 32 MiB big object, one round (a smoke run).
# --report: measure nothing; rebuild store.md from OUTDIR's store.raw.
#
# Steps:
#   1. mock: bench_store mock (sequential vs uploader at 16, 32, 64).
#   2. bench_store gen: the same bytes as files, for awscli.
#   3. per round, a fresh radosgw from scripts/with-s3.sh (its memstore OSD
#      holds 2 GiB and radosgw frees replaced multipart data only hours
#      later, so one server for all rounds would fill up), running this
#      script with --round:
#        awscli start-up (`aws s3api head-bucket`), AkiDB sequential and parallel
#        PUTs, `aws s3 cp --recursive` of the same files; the big object
#        up with AkiDB and with `aws s3 cp`, then down with AkiDB, with
#        `aws s3 cp` and with a plain curl GET to /dev/null.
#
# awscli is the Debian one (/usr/bin/aws; AWS_CLI overrides), configured
# only through the environment and a config file in the scratch directory:
# default settings (10 concurrent requests, 8 MiB multipart chunks).  curl
# signs its GET itself (--aws-sigv4; curl 7.88 needs the
# x-amz-content-sha256 header added by hand for radosgw), falling back to a
# presigned URL if the server refuses it.  Everything talks to 127.0.0.1
# only; every external command runs under a timeout.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
AWS_CLI=${AWS_CLI:-/usr/bin/aws}

say() { echo "run_store_bench: $*" >&2; }

now() { date +%s.%N; }
# Seconds between two `now` stamps.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }

# ---------------------------------------------------------------------------
# One radosgw round (run by scripts/with-s3.sh): --round OUT TMP R N SIZE BIG

if [ "${1:-}" = "--round" ]; then
    OUT=$2 TMP=$3 R=$4 N=$5 SIZE=$6 BIG=$7 CONC=$8
    RAW=$OUT/store.raw
    if [ -z "${AKIDB_TEST_S3_ENDPOINT:-}" ]; then
        say "round $R: ERROR: no S3 server (scripts/with-s3.sh could not start radosgw)"
        exit 1
    fi
    ep=$AKIDB_TEST_S3_ENDPOINT
    bucket=$AKIDB_TEST_S3_BUCKET
    region=${AKIDB_TEST_S3_REGION:-us-east-1}
    prefix=bench
    awshome=$TMP/awshome
    mkdir -p "$awshome"
    printf '[default]\nregion = %s\n' "$region" >"$awshome/config"
    : >"$awshome/credentials"
    awsc() {
        env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL \
            HOME="$awshome" AWS_CONFIG_FILE="$awshome/config" \
            AWS_SHARED_CREDENTIALS_FILE="$awshome/credentials" \
            AWS_ACCESS_KEY_ID="$AKIDB_TEST_S3_ACCESS_KEY" \
            AWS_SECRET_ACCESS_KEY="$AKIDB_TEST_S3_SECRET_KEY" \
            AWS_DEFAULT_REGION="$region" AWS_EC2_METADATA_DISABLED=true AWS_PAGER= \
            timeout 300 "$AWS_CLI" --endpoint-url "$ep" "$@"
    }
    # Time "$@" as NAME; a failure ends the round.
    timed() {
        local name=$1 t0 t1; shift
        t0=$(now)
        "$@" || { say "round $R: ERROR: $name failed: $*"; exit 1; }
        t1=$(now)
        echo "time $name $R $(elapsed "$t0" "$t1")" | tee -a "$RAW"
    }
    ak() { timeout 300 "$OUT/bench_store" "$@" --round "$R" --n "$N" --size "$SIZE" \
               --big-mib "$BIG" --dir "$TMP" --prefix "$prefix" | tee -a "$RAW"
           [ "${PIPESTATUS[0]}" -eq 0 ] || { say "round $R: ERROR: bench_store $1 failed"; exit 1; }; }

    say "round $R: radosgw at $ep"
    # awscli's own start-up plus one request (HEAD bucket), for reading its
    # figures: every `aws` command pays it.
    timed aws.startup awsc s3api head-bucket --bucket "$bucket"

    # 1. N small objects: AkiDB one by one, AkiDB's uploader, awscli.
    ak s3-small --conc "$CONC"
    timed aws.small awsc s3 cp --only-show-errors --recursive "$TMP/data/small" "s3://$bucket/$prefix/aws/"
    n_listed=$(awsc s3 ls "s3://$bucket/$prefix/aws/" | awk -v s="$SIZE" '$3 == s' | wc -l)
    [ "$n_listed" -eq "$N" ] ||
        { say "round $R: ERROR: awscli uploaded $n_listed of $N objects"; exit 1; }

    # 2. The big object up: AkiDB (multipart), awscli (multipart).
    ak s3-big-up
    timed aws.big_up awsc s3 cp --only-show-errors "$TMP/data/big.bin" "s3://$bucket/$prefix/big-aws"

    # 3. Down, all three reading the object AkiDB uploaded.
    ak s3-big-down
    rm -f "$TMP/dl.bin"
    timed aws.big_down awsc s3 cp --only-show-errors "s3://$bucket/$prefix/big-akidb" "$TMP/dl.bin"
    cmp -s "$TMP/dl.bin" "$TMP/data/big.bin" ||
        { say "round $R: ERROR: awscli downloaded different bytes"; exit 1; }
    rm -f "$TMP/dl.bin"

    url="$ep/$bucket/$prefix/big-akidb"
    want=$((BIG * 1048576))
    curl_get() {  # curl_get OUTFILE ARGS...: prints "HTTP_CODE BYTES SECONDS"
        local out=$1; shift
        timeout 120 curl -s --noproxy '*' --max-time 110 -o "$out" \
            -w '%{http_code} %{size_download} %{time_total}\n' "$@"
    }
    res=$(curl_get /dev/null --aws-sigv4 "aws:amz:$region:s3" \
            --user "$AKIDB_TEST_S3_ACCESS_KEY:$AKIDB_TEST_S3_SECRET_KEY" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$url")
    how="--aws-sigv4"
    if [ "${res%% *}" != 200 ]; then
        say "round $R: curl --aws-sigv4 got '${res}'; using a presigned URL"
        purl=$(awsc s3 presign "s3://$bucket/$prefix/big-akidb" --expires-in 600) ||
            { say "round $R: ERROR: aws s3 presign failed"; exit 1; }
        res=$(curl_get /dev/null "$purl")
        how=presigned
    fi
    set -- $res
    if [ "${1:-}" != 200 ] || [ "${2:-}" != "$want" ]; then
        say "round $R: ERROR: curl GET: '$res' (wanted 200 and $want bytes)"
        exit 1
    fi
    # curl's own clock (time_total) leaves out its process start-up.
    echo "time curl.big_down $R $3" | tee -a "$RAW"
    echo "note curl_auth $how" >>"$RAW"
    # The same GET into memory (a file on tmpfs): what landing the bytes in
    # RAM adds, which AkiDB (returning a buffer) cannot avoid.
    if shm=$(mktemp -p /dev/shm akidb-bench.XXXXXX 2>/dev/null); then
        if [ "$how" = presigned ]; then
            res=$(curl_get "$shm" "$purl")
        else
            res=$(curl_get "$shm" --aws-sigv4 "aws:amz:$region:s3" \
                    --user "$AKIDB_TEST_S3_ACCESS_KEY:$AKIDB_TEST_S3_SECRET_KEY" \
                    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$url")
        fi
        rm -f "$shm"
        set -- $res
        if [ "${1:-}" = 200 ] && [ "${2:-}" = "$want" ]; then
            echo "time curl.big_down_mem $R $3" | tee -a "$RAW"
        else
            say "round $R: curl GET into /dev/shm: '$res' (not counted)"
        fi
    fi
    exit 0
fi

# ---------------------------------------------------------------------------
# The whole benchmark.

OUT=${1:?usage: run_store_bench.sh OUTDIR [--quick] [--report]}
shift
N=1000 SIZE=65536 BIG=256 ROUNDS=${STORE_ROUNDS:-3} MOCK_ROUNDS=3
MOCK_CONC=16,32,64 S3_CONC=16,64 LATENCY=10
REPORT_ONLY=0
for a in "$@"; do
    case $a in
        --quick) N=200 BIG=32 ROUNDS=1 MOCK_ROUNDS=1 ;;
        --report) REPORT_ONLY=1 ;;
        *) echo "usage: run_store_bench.sh OUTDIR [--quick] [--report]" >&2; exit 2 ;;
    esac
done

RAW=$OUT/store.raw
MD=$OUT/store.md
status=0
start=$(date +%s)
# Everything measured goes to $RAW; status becomes 1 if a step failed.
measure() {
    for tool in "$AWS_CLI" curl awk sort cmp timeout; do
        command -v "$tool" >/dev/null 2>&1 ||
            { say "ERROR: $tool not found (scripts/deps.sh bench installs awscli)"; exit 1; }
    done
    [ -x "$OUT/bench_store" ] ||
        { say "ERROR: $OUT/bench_store missing (make -f bench/bench.mk store-program)"; exit 1; }

    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    # Two runs at once would share (and delete) each other's files, and time
    # each other: a second run waits for the first (at most 15 minutes).
    exec 9>"$OUT/store.lock"
    if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
        say "another store benchmark is running in $OUT; waiting for it"
        flock -w 900 9 || { say "ERROR: still locked after 15 minutes"; exit 1; }
    fi
    TMP=$OUT/store-tmp
    rm -rf "$TMP"
    mkdir -p "$TMP"
    : >"$RAW"
    trap 'rm -rf "$TMP"' EXIT

    model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
    {
        echo "machine: ${model:-unknown}, $(nproc) CPUs, Linux $(uname -r)"
        echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "tools:   $("$AWS_CLI" --version 2>&1 | head -n 1 | cut -d' ' -f1-2); $(curl --version | head -n 1 | cut -d' ' -f1-2); radosgw $(dpkg-query -W -f='${Version}' radosgw 2>/dev/null || echo '?')"
        echo "args:    ${*:-(none)}; $N x $SIZE B, big $BIG MiB, mock latency $LATENCY ms, radosgw rounds $ROUNDS"
        echo "load:    $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) (1/5/15 min) before the run"
    } | tee "$OUT/store-machine.txt"

    echo
    echo "== mock store, $LATENCY ms per call: $N x $SIZE B, sequential vs uploader ($MOCK_CONC) =="
    timeout 600 "$OUT/bench_store" mock --n "$N" --size "$SIZE" --latency "$LATENCY" \
        --rounds "$MOCK_ROUNDS" --conc "$MOCK_CONC" --dir "$TMP" | tee -a "$RAW"
    [ "${PIPESTATUS[0]}" -eq 0 ] || { say "ERROR: the mock run failed"; status=1; }

    echo
    echo "== the same bytes as files for awscli =="
    "$OUT/bench_store" gen --n "$N" --size "$SIZE" --big-mib "$BIG" --dir "$TMP/data" ||
        { say "ERROR: bench_store gen failed"; exit 1; }

    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        echo
        echo "== radosgw round $r/$ROUNDS (fresh server) =="
        "$root/scripts/with-s3.sh" "$here/run_store_bench.sh" --round "$OUT" "$TMP" "$r" \
            "$N" "$SIZE" "$BIG" "$S3_CONC" 9>&- || { say "ERROR: radosgw round $r failed"; status=1; }
        r=$((r + 1))
    done
}

if [ $REPORT_ONLY = 0 ]; then
    measure "$@"
else
    # Tables only, from an earlier run's store.raw (same N/SIZE/BIG options).
    [ -s "$RAW" ] || { say "ERROR: $RAW is missing or empty"; exit 1; }
fi

# ---------------------------------------------------------------------------
# Tables: medians over rounds.

med() {  # med NAME -> median seconds over rounds, or nothing
    awk -v k="$1" '$1 == "time" && $2 == k { print $4 }' "$RAW" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) printf "%.4f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# all NAME -> every round's seconds, in round order: "1.23 / 1.30 / 1.25"
all() {
    awk -v k="$1" '$1 == "time" && $2 == k { printf "%s%.2f", (n++ ? " / " : ""), $4 }' "$RAW"
}
cnt() { awk -v k="$1" '$1 == "time" && $2 == k { n++ } END { print n + 0 }' "$RAW"; }
# calc EXPR NAME=VALUE...: EXPR evaluated by awk; n/a if a value is missing
calc() {
    local expr=$1 v args=(); shift
    for v in "$@"; do
        [ -n "${v#*=}" ] || { echo "n/a"; return; }
        args+=(-v "$v")
    done
    awk "${args[@]}" "BEGIN { printf \"%s\", $expr }" 2>/dev/null || echo "n/a"
}
fmt() { calc 'sprintf("%.3f", s)' "s=$1"; }
ops() { calc 'sprintf("%.0f", n / s)' "n=$N" "s=$1"; }
mbs() { calc 'sprintf("%.1f", bytes / s / 1e6)' "bytes=$2" "s=$1"; }
ratio() { calc 'sprintf("%.2fx", x / y)' "x=$1" "y=$2"; }
verdict() {  # verdict VALUE OP LIMIT
    case $1 in n/a) echo "not measured"; return ;; esac
    if awk -v v="${1%x}" -v l="$3" "BEGIN { exit !(v $2 l) }"; then echo "met"; else echo "**missed**"; fi
}

small_bytes=$((N * SIZE))
big_bytes=$((BIG * 1048576))
seq_m=$(med mock.seq)
s3_seq=$(med s3.seq)
aws_small=$(med aws.small)
aws_start=$(med aws.startup)
curl_auth=$(awk '$1 == "note" && $2 == "curl_auth" { v = $3 } END { print v }' "$RAW")
{
    echo "Machine and tools:"
    echo
    sed 's/^/    /' "$OUT/store-machine.txt"
    echo
    echo "**Mock store, $LATENCY ms injected per call, $N x $((SIZE / 1024)) KiB** (median of $(cnt mock.seq))"
    echo
    echo "| upload | time (s) | ops/s | vs sequential | rounds (s) |"
    echo "|---|---:|---:|---:|---|"
    echo "| sequential \`akidb_store_put\` | $(fmt "$seq_m") | $(ops "$seq_m") | 1.00x | $(all mock.seq) |"
    for c in ${MOCK_CONC//,/ }; do
        t=$(med "mock.par$c")
        echo "| uploader, $c in flight | $(fmt "$t") | $(ops "$t") | $(ratio "$seq_m" "$t") | $(all "mock.par$c") |"
    done
    echo
    echo "**radosgw, $N x $((SIZE / 1024)) KiB PUTs** (median of $(cnt s3.seq) rounds)"
    echo
    echo "| upload | time (s) | ops/s | MB/s | vs awscli | rounds (s) |"
    echo "|---|---:|---:|---:|---:|---|"
    echo "| AkiDB sequential \`akidb_store_put\` | $(fmt "$s3_seq") | $(ops "$s3_seq") | $(mbs "$s3_seq" $small_bytes) | $(ratio "$aws_small" "$s3_seq") | $(all s3.seq) |"
    for c in ${S3_CONC//,/ }; do
        t=$(med "s3.par$c")
        echo "| AkiDB uploader, $c in flight | $(fmt "$t") | $(ops "$t") | $(mbs "$t" $small_bytes) | $(ratio "$aws_small" "$t") | $(all "s3.par$c") |"
    done
    echo "| \`aws s3 cp --recursive\` (10 in flight) | $(fmt "$aws_small") | $(ops "$aws_small") | $(mbs "$aws_small" $small_bytes) | $(ratio "$aws_small" "$aws_small") | $(all aws.small) |"
    echo "| (awscli start-up + one request, \`aws s3api head-bucket\`) | $(fmt "$aws_start") | | | | $(all aws.startup) |"
    echo
    echo "**radosgw, one $BIG MiB object** (median of $(cnt s3.big_up) rounds; MB = 10^6 bytes)"
    echo
    bu=$(med s3.big_up) au=$(med aws.big_up) bd=$(med s3.big_down) ad=$(med aws.big_down) cd=$(med curl.big_down)
    echo "| transfer | time (s) | MB/s | vs awscli | vs curl | rounds (s) |"
    echo "|---|---:|---:|---:|---:|---|"
    echo "| up: AkiDB \`akidb_store_put\` (multipart, 8 MiB parts, 8 in flight) | $(fmt "$bu") | $(mbs "$bu" $big_bytes) | $(ratio "$au" "$bu") | | $(all s3.big_up) |"
    echo "| up: \`aws s3 cp\` | $(fmt "$au") | $(mbs "$au" $big_bytes) | $(ratio "$au" "$au") | | $(all aws.big_up) |"
    echo "| down: AkiDB \`akidb_store_get\` (ranged GETs, 8 in flight, into memory) | $(fmt "$bd") | $(mbs "$bd" $big_bytes) | $(ratio "$ad" "$bd") | $(ratio "$bd" "$cd") of curl's time | $(all s3.big_down) |"
    echo "| down: \`aws s3 cp\` (to a file) | $(fmt "$ad") | $(mbs "$ad" $big_bytes) | $(ratio "$ad" "$ad") | $(ratio "$ad" "$cd") of curl's time | $(all aws.big_down) |"
    echo "| down: plain \`curl\` GET to /dev/null (${curl_auth:-?}) | $(fmt "$cd") | $(mbs "$cd" $big_bytes) | | $(ratio "$cd" "$cd") | $(all curl.big_down) |"
    cm=$(med curl.big_down_mem) mt=$(med mem.touch)
    echo "| (reference) plain \`curl\` GET into memory (a file on /dev/shm) | $(fmt "$cm") | $(mbs "$cm" $big_bytes) | | $(ratio "$cm" "$cd") | $(all curl.big_down_mem) |"
    echo "| (reference) malloc + memset of $BIG MiB, no network | $(fmt "$mt") | $(mbs "$mt" $big_bytes) | | $(ratio "$mt" "$cd") | $(all mem.touch) |"
    echo
    echo "\"vs awscli\" is awscli's time / AkiDB's (above 1 = AkiDB faster)."
    echo
    echo "**Targets**"
    echo
    m16=$(ratio "$seq_m" "$(med mock.par16)")
    p16=$(ratio "$aws_small" "$(med s3.par16)")
    up=$(ratio "$au" "$bu")
    dn_aws=$(ratio "$ad" "$bd")
    dn_curl=$(ratio "$bd" "$cd")
    echo "| target | measured | |"
    echo "|---|---:|---|"
    echo "| mock: uploader (16) >= 5x sequential ops/s | $m16 | $(verdict "$m16" '>=' 5) |"
    echo "| radosgw: uploader (16) ops/s >= \`aws s3 cp --recursive\` | $p16 | $(verdict "$p16" '>=' 1) |"
    echo "| radosgw: $BIG MiB up MB/s >= \`aws s3 cp\` | $up | $(verdict "$up" '>=' 1) |"
    echo "| radosgw: $BIG MiB down MB/s >= \`aws s3 cp\` | $dn_aws | $(verdict "$dn_aws" '>=' 1) |"
    echo "| radosgw: $BIG MiB down within 1.3x of curl's time | $dn_curl | $(verdict "$dn_curl" '<=' 1.3) |"
    dn_mem=$(ratio "$bd" "$cm")
    echo "| (not a target) $BIG MiB down vs curl into memory | $dn_mem | |"
    # awscli pays its start-up (~1-2 s of Python imports) on every command;
    # net of it (approximately: aws.startup also holds one request), the
    # comparison is of the transfers alone.
    net() { calc 'sprintf("%.2fx", (a - st) / b)' "a=$1" "st=$aws_start" "b=$2"; }
    echo "| (not a target) uploader (16) vs awscli net of its start-up | $(net "$aws_small" "$(med s3.par16)") | |"
    echo "| (not a target) $BIG MiB up vs awscli net of its start-up | $(net "$au" "$bu") | |"
    echo "| (not a target) $BIG MiB down vs awscli net of its start-up | $(net "$ad" "$bd") | |"
} >"$MD"

echo
echo "== results ($(( $(date +%s) - start )) s) =="
cat "$MD"
exit $status
