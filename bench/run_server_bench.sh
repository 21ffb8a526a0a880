#!/bin/sh
# run_server_bench.sh - the akidb-server load test (issue 13), one run.
#
#   bench/run_server_bench.sh OUT SERVER_BIN [--quick]
#
# Steps, all on 127.0.0.1, every process started here and stopped by PID:
#   1. idle RSS of a server on an empty database;
#   2. a 100k x 128 collection made in process (server_setup), and the
#      in-process search rate on it (the peer of the HTTP search figure);
#   3. the server on that database (--threads 4, --sync interval, no rate
#      limit, no request log); RSS at start;
#   4. HTTP search at saturation: wrk, search only, closed loop;
#   5. /health/live against Debian's nginx serving a 17-byte static file
#      (the same body), same wrk settings, one after the other;
#   6. the mixed load (70% search, 20% insert, 10% get) open loop at 100
#      and 1,000 req/s (server_load: latency from the scheduled send time,
#      no coordinated omission), 60 s each;
#   7. the mixed load closed loop at saturation (wrk, mixed.lua);
#   8. RSS at the end; SIGTERM; the exit code.
# Writes OUT/server/bench.log (everything), results.txt (RESULT lines) and
# server.md (the table for docs/BENCHMARKS.md).  The machine's load
# (uptime) and each phase's CPU/wall ratio are recorded, because a shared
# machine makes absolute figures drift: compare the ratios.
# --quick: 5k vectors, 5 s phases (a smoke run of the whole pipeline).
set -eu

OUT=$1
BIN=$2
QUICK=${3:-}
N=100000; DIM=128; THREADS=4; RUN=60; SAT=20; LIVE=10; CONNS=16
if [ "$QUICK" = --quick ]; then N=5000; RUN=5; SAT=5; LIVE=3; fi

mkdir -p "$OUT/server"
D=$(cd "$OUT/server" && pwd)
LOG=$D/bench.log
RES=$D/results.txt
: > "$RES"
KEY=bench-admin-key-0123456789abcdef
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
SERVER_PID=
NGINX_PID=

log() { echo "$*" | tee -a "$LOG"; }
result() { echo "RESULT $1 $2" | tee -a "$LOG" >> "$RES"; }
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for tool in wrk nginx curl; do
    command -v $tool >/dev/null 2>&1 || [ -x /usr/sbin/$tool ] || {
        echo "run_server_bench: $tool is missing (scripts/deps.sh bench installs it)" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/$1/status; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
wait_http() {   # URL: up to 60 s
    i=0
    until curl -s -o /dev/null "$1"; do
        i=$((i + 1)); [ $i -gt 600 ] && { echo "run_server_bench: $1 did not come up" >&2; exit 1; }
        sleep 0.1
    done
}
start_server() {   # DATA_DIR
    PORT=$(free_port)
    AKIDB_BOOTSTRAP_ADMIN_KEY=$KEY "$BIN" --port "$PORT" --data-dir "$1" --threads $THREADS \
        --rate-qps 0 --log-requests false --sync interval --max-connections 4096 \
        >> "$D/server.out" 2>> "$D/server.err" &
    SERVER_PID=$!
    wait_http "http://127.0.0.1:$PORT/health/live"
}
stop_server() {
    kill -TERM "$SERVER_PID"
    rc=0; wait "$SERVER_PID" || rc=$?
    SERVER_PID=
    return $rc
}
wrk_field() {  # FILE FIELD
    case $2 in
        rps) awk '/^Requests\/sec:/ {print $2}' "$1" ;;
        non2xx) awk '/Non-2xx/ {print $NF}' "$1" | grep . || echo 0 ;;
        sockerr) awk '/Socket errors/ {print}' "$1" | grep . || echo none ;;
        p50|p99) awk -v p=$([ "$2" = p50 ] && echo "50%" || echo "99%") '$1 == p {print $2}' "$1" ;;
    esac
}
phase_cpu() {  # LABEL START_TICKS START_TIME
    t=$(cpu_ticks "$SERVER_PID"); now=$(date +%s.%N)
    hz=$(getconf CLK_TCK)
    ratio=$(awk -v a="$2" -v b="$t" -v s="$3" -v e="$now" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz / (e - s)}')
    result "$1_server_cpu_per_wall" "$ratio"
}

log "== akidb-server load test $(date -u +%FT%TZ) commit $(git -C "$BENCH_DIR/.." rev-parse --short HEAD 2>/dev/null || echo ?)"
log "uptime at start: $(uptime)"
log "cores: $(nproc)  N=$N DIM=$DIM THREADS=$THREADS RUN=${RUN}s"

# 1. Idle RSS on an empty database.
rm -rf "$D/empty" && mkdir -p "$D/empty"
start_server "$D/empty/data"
sleep 1
result idle_rss_kb "$(rss_kb $SERVER_PID)"
stop_server

# 2. Data and the in-process search rate.
DATA=$D/data
"$D/server_setup" "$DATA" $N $DIM $THREADS $SAT | tee -a "$LOG" > "$D/inproc.json"
INPROC=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["inproc_search_qps"])' "$D/inproc.json")
result inproc_search_qps "$INPROC"

# 3. The server on it.
start_server "$DATA"
URL=http://127.0.0.1:$PORT
result start_rss_kb "$(rss_kb $SERVER_PID)"

# 4. HTTP search at saturation.
c0=$(cpu_ticks $SERVER_PID); t0=$(date +%s.%N)
wrk -t1 -c$CONNS -d${SAT}s --latency -s "$BENCH_DIR/server/search.lua" "$URL" -- $KEY $DIM bench \
    > "$D/wrk_search.txt" 2>&1
phase_cpu search_sat "$c0" "$t0"
cat "$D/wrk_search.txt" >> "$LOG"
HTTP_SEARCH=$(wrk_field "$D/wrk_search.txt" rps)
result http_search_qps "$HTTP_SEARCH"
result http_search_non2xx "$(wrk_field "$D/wrk_search.txt" non2xx)"
result search_http_over_inproc "$(awk -v a="$HTTP_SEARCH" -v b="$INPROC" 'BEGIN {printf "%.2f", a / b}')"

# 5. /health/live against nginx with the same body.
mkdir -p "$D/nginx/tmp" "$D/nginx/root"
curl -s "$URL/health/live" > "$D/nginx/root/live.json"
NPORT=$(free_port)
sed -e "s|@PORT@|$NPORT|" -e "s|@ROOT@|$D/nginx/root|" -e "s|@PREFIX@|$D/nginx|" \
    "$BENCH_DIR/server/nginx.conf.in" > "$D/nginx/nginx.conf"
"$NGINX" -p "$D/nginx" -c "$D/nginx/nginx.conf" -e "$D/nginx/error.log" &
NGINX_PID=$!
wait_http "http://127.0.0.1:$NPORT/live.json"
log "body sizes: server $(curl -s "$URL/health/live" | wc -c), nginx $(curl -s "http://127.0.0.1:$NPORT/live.json" | wc -c)"
wrk -t1 -c32 -d${LIVE}s --latency "$URL/health/live" > "$D/wrk_live.txt" 2>&1
wrk -t1 -c32 -d${LIVE}s --latency "http://127.0.0.1:$NPORT/live.json" > "$D/wrk_nginx.txt" 2>&1
cat "$D/wrk_live.txt" "$D/wrk_nginx.txt" >> "$LOG"
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
LIVE_RPS=$(wrk_field "$D/wrk_live.txt" rps); NGINX_RPS=$(wrk_field "$D/wrk_nginx.txt" rps)
result live_rps "$LIVE_RPS"
result nginx_rps "$NGINX_RPS"
result live_over_nginx "$(awk -v a="$LIVE_RPS" -v b="$NGINX_RPS" 'BEGIN {printf "%.2f", a / b}')"

# 6. Mixed, open loop, fixed rates.
for rate in 100 1000; do
    c0=$(cpu_ticks $SERVER_PID); t0=$(date +%s.%N)
    rc=0
    "$D/server_load" --port "$PORT" --key $KEY --collection bench --dim $DIM --ids $N \
        --rate $rate --duration $RUN --connections 64 --mix 70,20,10 > "$D/open_$rate.json" || rc=$?
    phase_cpu "open_$rate" "$c0" "$t0"
    cat "$D/open_$rate.json" >> "$LOG"
    python3 - "$D/open_$rate.json" "$rate" >> "$RES" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("achieved_rps", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "errors",
          "connection_errors", "completed"):
    print("RESULT open_%s_%s %s" % (sys.argv[2], k, r[k]))
EOF
    log "open loop $rate req/s exit $rc"
done

# 7. Mixed, closed loop, saturation.
c0=$(cpu_ticks $SERVER_PID); t0=$(date +%s.%N)
wrk -t1 -c$CONNS -d${SAT}s --latency -s "$BENCH_DIR/server/mixed.lua" "$URL" -- $KEY $DIM bench $N \
    > "$D/wrk_mixed.txt" 2>&1
phase_cpu mixed_sat "$c0" "$t0"
cat "$D/wrk_mixed.txt" >> "$LOG"
result mixed_sat_rps "$(wrk_field "$D/wrk_mixed.txt" rps)"
result mixed_sat_p50 "$(wrk_field "$D/wrk_mixed.txt" p50)"
result mixed_sat_p99 "$(wrk_field "$D/wrk_mixed.txt" p99)"
result mixed_sat_non2xx "$(wrk_field "$D/wrk_mixed.txt" non2xx)"

# 8. The end.
result end_rss_kb "$(rss_kb $SERVER_PID)"
t0=$(date +%s.%N)
rc=0; stop_server || rc=$?
result shutdown_s "$(awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e - s}')"
result server_exit_code "$rc"
log "uptime at end: $(uptime)"
grep -c "level=error" "$D/server.err" | sed 's/^/server error lines: /' | tee -a "$LOG" || true

python3 - "$RES" > "$D/server.md" <<'EOF'
import sys
r = {}
for line in open(sys.argv[1]):
    _, k, v = line.split(None, 2)
    r[k] = v.strip()
g = r.get
print("| measure | value |")
print("|---|---|")
rows = [
    ("idle RSS (empty database)", "%.1f MB" % (float(g("idle_rss_kb")) / 1024)),
    ("RSS with 100k x 128 loaded: start / end", "%.0f / %.0f MB" % (float(g("start_rss_kb")) / 1024, float(g("end_rss_kb")) / 1024)),
    ("search, in process (same threads)", "%s /s" % g("inproc_search_qps")),
    ("search over HTTP at saturation (wrk)", "%s /s, non-2xx %s" % (g("http_search_qps"), g("http_search_non2xx"))),
    ("HTTP / in process", g("search_http_over_inproc")),
    ("/health/live (wrk -c32)", "%s /s" % g("live_rps")),
    ("nginx, same 17-byte body", "%s /s" % g("nginx_rps")),
    ("live / nginx", g("live_over_nginx")),
]
for rate in ("100", "1000"):
    p = "open_%s_" % rate
    rows.append(("mixed %s req/s open loop: achieved, P50/P95/P99/P99.9, errors" % rate,
                 "%s /s, %s / %s / %s / %s ms, %s errors (%s conn)" % (
                     g(p + "achieved_rps"), g(p + "p50_ms"), g(p + "p95_ms"), g(p + "p99_ms"),
                     g(p + "p999_ms"), g(p + "errors"), g(p + "connection_errors"))))
rows.append(("mixed at saturation (wrk closed loop): rate, P50/P99, non-2xx",
             "%s /s, %s / %s, %s" % (g("mixed_sat_rps"), g("mixed_sat_p50"), g("mixed_sat_p99"), g("mixed_sat_non2xx"))))
rows.append(("server CPU/wall: search sat / open 100 / open 1000 / mixed sat",
             " / ".join(g(k + "_server_cpu_per_wall", "?") for k in ("search_sat", "open_100", "open_1000", "mixed_sat"))))
rows.append(("SIGTERM to exit; exit code", "%s s; %s" % (g("shutdown_s"), g("server_exit_code"))))
for k, v in rows:
    print("| %s | %s |" % (k, v))
EOF
cat "$D/server.md" | tee -a "$LOG"
