#!/bin/sh
# run_tls_bench.sh - akidb-server over TLS 1.3 against Debian's nginx with
# the same certificate (issue 15), one run.
#
#   bench/run_tls_bench.sh OUT SERVER_BIN SETUP_BIN [--quick]
#
# Everything on 127.0.0.1, every process started here and stopped by PID;
# the certificate (EC P-256, its own CA) is made here by `openssl`.
#   1. data: N x DIM vectors (server_setup), collection "bench";
#   2. keep-alive throughput of GET /health/live over TLS 1.3: wrk -c32
#      against akidb-server, then against nginx serving the same 17-byte
#      body with the same certificate (target: >= 50% of nginx);
#   3. handshake rate: the same with "Connection: close", so every request
#      is a new TCP connection and a new TLS handshake (wrk offers its last
#      session for resumption to both servers alike);
#   4. TLS overhead on a search: P50/P99 of POST .../search (k 10) with one
#      connection (latency without queueing), then with 16, over plain
#      HTTP and over TLS: two servers on the same data, one after the other.
# Writes OUT/tls/{bench.log,results.txt,tls.md}.  The machine's load and
# each phase's server CPU/wall ratio are recorded: on a shared machine
# compare the ratios, not the absolute figures.
set -eu

OUT=$1
BIN=$2
SETUP=$3
QUICK=${4:-}
N=20000; DIM=128; T=15
if [ "$QUICK" = --quick ]; then N=2000; T=3; fi

mkdir -p "$OUT/tls"
D=$(cd "$OUT/tls" && pwd)
LOG=$D/bench.log
RES=$D/results.txt
: > "$RES"; : > "$LOG"
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

for tool in wrk nginx curl openssl; do
    command -v $tool >/dev/null 2>&1 || [ -x /usr/sbin/$tool ] || {
        echo "run_tls_bench: $tool is missing (scripts/deps.sh bench installs it)" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
wait_url() {   # URL: up to 60 s
    i=0
    until curl -s -o /dev/null --cacert "$D/pki/ca.pem" "$1"; do
        i=$((i + 1)); [ $i -gt 600 ] && { echo "run_tls_bench: $1 did not come up" >&2; exit 1; }
        sleep 0.1
    done
}
start_server() {   # extra args...
    PORT=$(free_port)
    AKIDB_BOOTSTRAP_ADMIN_KEY=$KEY "$BIN" --port "$PORT" --data-dir "$D/data" --threads 4 \
        --rate-qps 0 --log-requests false --sync interval --max-connections 4096 \
        --auth-fail-limit 0 "$@" >> "$D/server.out" 2>> "$D/server.err" &
    SERVER_PID=$!
}
stop_server() {
    kill -TERM "$SERVER_PID"; rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
    [ $rc -eq 0 ] || { echo "run_tls_bench: server exit $rc" >&2; exit 1; }
}
wrk_field() {  # FILE FIELD
    case $2 in
        rps) awk '/^Requests\/sec:/ {print $2}' "$1" ;;
        errors) awk '/Non-2xx|Socket errors/ {print}' "$1" | tr '\n' ' ' | grep . || echo none ;;
        p50|p99) awk -v p=$([ "$2" = p50 ] && echo "50%" || echo "99%") '$1 == p {print $2}' "$1" ;;
    esac
}
phase() {  # LABEL FILE wrk-args...: run wrk, record rps and the server's CPU/wall
    label=$1; file=$2; shift 2
    pid=${PHASE_PID:-$SERVER_PID}
    c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
    wrk "$@" > "$file" 2>&1 || true
    c1=$(cpu_ticks "$pid"); t1=$(date +%s.%N)
    cat "$file" >> "$LOG"
    result "${label}_rps" "$(wrk_field "$file" rps)"
    result "${label}_p50" "$(wrk_field "$file" p50)"
    result "${label}_p99" "$(wrk_field "$file" p99)"
    result "${label}_errors" "\"$(wrk_field "$file" errors)\""
    result "${label}_cpu_per_wall" "$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" \
        -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz / (e - s)}')"
}

log "== akidb-server TLS benchmark $(date -u +%FT%TZ) commit $(git -C "$BENCH_DIR/.." rev-parse --short HEAD 2>/dev/null || echo ?)"
log "uptime at start: $(uptime)"
log "cores: $(nproc)  N=$N DIM=$DIM T=${T}s; $(openssl version); $("$NGINX" -v 2>&1); $(wrk -v 2>&1 | head -1)"

# The certificate: a CA and a server certificate for 127.0.0.1.
rm -rf "$D/pki" "$D/data" "$D/nginx"
mkdir -p "$D/pki"
( cd "$D/pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
      -out ca.pem -days 2 -subj "/CN=bench CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
      -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
  printf "subjectAltName=IP:127.0.0.1,DNS:localhost\n" > ext.cnf
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
      -days 2 -extfile ext.cnf 2>/dev/null
  chmod 600 server.key ca.key )
CERT=$D/pki/server.pem; TKEY=$D/pki/server.key

# 1. Data.
"$SETUP" "$D/data" $N $DIM 4 1 >> "$LOG"

# nginx, TLS, same certificate and body.
mkdir -p "$D/nginx/tmp" "$D/nginx/root"
printf '{"status":"live"}' > "$D/nginx/root/live.json"
NPORT=$(free_port)
sed -e "s|@PORT@|$NPORT|" -e "s|@ROOT@|$D/nginx/root|" -e "s|@PREFIX@|$D/nginx|" \
    -e "s|@CERT@|$CERT|" -e "s|@KEY@|$TKEY|" "$BENCH_DIR/server/nginx-tls.conf.in" > "$D/nginx/nginx.conf"
"$NGINX" -p "$D/nginx" -c "$D/nginx/nginx.conf" -e "$D/nginx/error.log" &
NGINX_PID=$!
wait_url "https://127.0.0.1:$NPORT/live.json"

# The server over TLS.
start_server --tls-cert "$CERT" --tls-key "$TKEY"
wait_url "https://127.0.0.1:$PORT/health/live"
URL=https://127.0.0.1:$PORT
NURL=https://127.0.0.1:$NPORT
log "protocols: server $(curl -s -o /dev/null -w '%{http_version}' --cacert "$D/pki/ca.pem" "$URL/health/live") \
$(echo | openssl s_client -connect 127.0.0.1:$PORT -brief 2>&1 | grep -m1 'Protocol version'), \
nginx $(echo | openssl s_client -connect 127.0.0.1:$NPORT -brief 2>&1 | grep -m1 'Protocol version')"
log "body sizes: server $(curl -s --cacert "$D/pki/ca.pem" "$URL/health/live" | wc -c), nginx $(curl -s --cacert "$D/pki/ca.pem" "$NURL/live.json" | wc -c)"

# 2. Keep-alive throughput.
phase live_tls "$D/wrk_live_tls.txt" -t1 -c32 -d${T}s --latency "$URL/health/live"
PHASE_PID=$NGINX_PID phase nginx_tls "$D/wrk_nginx_tls.txt" -t1 -c32 -d${T}s --latency "$NURL/live.json"

# 3. Handshakes: a new connection per request.
phase hs_tls "$D/wrk_hs_tls.txt" -t1 -c16 -d${T}s --latency -H "Connection: close" "$URL/health/live"
PHASE_PID=$NGINX_PID phase hs_nginx "$D/wrk_hs_nginx.txt" -t1 -c16 -d${T}s --latency -H "Connection: close" "$NURL/live.json"
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=

# 4. Search over TLS, then over plain HTTP (same data).
for c in 1 16; do
    phase "search_tls_c$c" "$D/wrk_search_tls_c$c.txt" -t1 -c$c -d${T}s --latency \
        -s "$BENCH_DIR/server/search.lua" "$URL" -- $KEY $DIM bench
done
stop_server
start_server
i=0; until curl -s -o /dev/null "http://127.0.0.1:$PORT/health/live"; do i=$((i+1)); [ $i -gt 600 ] && exit 1; sleep 0.1; done
for c in 1 16; do
    phase "search_http_c$c" "$D/wrk_search_http_c$c.txt" -t1 -c$c -d${T}s --latency \
        -s "$BENCH_DIR/server/search.lua" "http://127.0.0.1:$PORT" -- $KEY $DIM bench
done
stop_server
log "uptime at end: $(uptime)"

python3 - "$RES" > "$D/tls.md" <<'PY'
import sys
r = {}
for line in open(sys.argv[1]):
    _, k, v = line.split(None, 2)
    r[k] = v.strip().strip('"')
g = r.get
def ms(v):
    v = v or "?"
    for suf, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(suf):
            try:
                return float(v[:-len(suf)]) * f
            except ValueError:
                break
    return float("nan")
def ratio(a, b):
    try:
        return "%.2f" % (float(g(a)) / float(g(b)))
    except (TypeError, ValueError, ZeroDivisionError):
        return "?"
print("| measure | akidb-server | peer | ratio |")
print("|---|---|---|---|")
print("| /health/live keep-alive, TLS 1.3, wrk -c32 (req/s) | %s | nginx %s | %s |" % (g("live_tls_rps"), g("nginx_tls_rps"), ratio("live_tls_rps", "nginx_tls_rps")))
print("| new connection + handshake per request, wrk -c16 (req/s) | %s | nginx %s | %s |" % (g("hs_tls_rps"), g("hs_nginx_rps"), ratio("hs_tls_rps", "hs_nginx_rps")))
for c in ("1", "16"):
    t, h = "search_tls_c" + c, "search_http_c" + c
    print("| search k=10, %s connection(s): req/s TLS vs plain | %s | plain %s | %s |" % (c, g(t + "_rps"), g(h + "_rps"), ratio(t + "_rps", h + "_rps")))
    print("| search, %s connection(s): P50 / P99 TLS vs plain | %s / %s | %s / %s | P99 +%.3f ms |" % (
        c, g(t + "_p50"), g(t + "_p99"), g(h + "_p50"), g(h + "_p99"), ms(g(t + "_p99")) - ms(g(h + "_p99"))))
print("| server CPU/wall: live / handshakes / search c16 TLS | %s / %s / %s | nginx %s / %s | |" % (
    g("live_tls_cpu_per_wall"), g("hs_tls_cpu_per_wall"), g("search_tls_c16_cpu_per_wall"),
    g("nginx_tls_cpu_per_wall"), g("hs_nginx_cpu_per_wall")))
errs = [k for k in r if k.endswith("_errors") and r[k] != "none"]
print("")
print("wrk errors: %s" % ("; ".join("%s: %s" % (k, r[k]) for k in errs) if errs else "none"))
PY
cat "$D/tls.md" | tee -a "$LOG"
