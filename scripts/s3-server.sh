#!/bin/bash
# s3-server.sh - a throwaway S3 server on 127.0.0.1 for the test suite.
#
#   scripts/s3-server.sh start DIR   start a server whose files all live in DIR
#                                    (created; must be short: unix sockets go
#                                    there) and print `export` lines on stdout
#   scripts/s3-server.sh env DIR     print the `export` lines again
#   scripts/s3-server.sh stop DIR    stop it, by the PIDs recorded in DIR
#
# The exported variables are what test/test_s3.c reads:
#   AKIDB_TEST_S3_ENDPOINT  AKIDB_TEST_S3_ACCESS_KEY  AKIDB_TEST_S3_SECRET_KEY
#   AKIDB_TEST_S3_BUCKET    AKIDB_TEST_S3_REGION      AKIDB_TEST_S3_VHOST_ENDPOINT
#   AKIDB_TEST_S3_SERVER    (radosgw or moto)
#
# AKIDB_S3_SERVER picks the server:
#   radosgw (default)  Ceph's RADOS Gateway: one monitor, one in-memory OSD
#                      (memstore) and radosgw, all on 127.0.0.1 with cephx.
#                      A strict S3 (checks signatures and body hashes), the
#                      reference target.  2-3 s to start (monitor commits
#                      are not batched), ~400 MB of memory.
#   moto               moto_server (Python, must be on PATH), a few seconds to
#                      start, slower per request; it checks no signatures, so
#                      the wrong-credentials test cannot pass against it.
#
# Missing Debian packages are installed when running as root (CI); otherwise
# the script says which to install.  Every wait is bounded; a failed start
# prints the tail of the logs and stops whatever did start.  Processes are
# only ever stopped by the PIDs this script recorded, never by name.
# Progress goes to stderr; stdout carries only the export lines.
set -eEu

ACCESS_KEY=AKIDBTESTACCESSKEY01
SECRET_KEY=akidb-test-secret-key/0123456789+abc
BUCKET=akidb-test
REGION=us-east-1
START_TIMEOUT=${AKIDB_S3_START_TIMEOUT:-90}

say() { echo "s3-server: $*" >&2; }
die() { say "$*"; exit 1; }

usage() { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
D=$2
case $D in /*) ;; *) D=$PWD/$D ;; esac

# ---- helpers -------------------------------------------------------------

# A TCP port nobody listens on now, below the kernel's ephemeral range (so
# an outgoing connection cannot take it before the server binds it).  A
# race with another starter is still possible; a bind failure then fails
# the start loudly.
free_port() {
    local p i lo=32768
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    [ "$lo" -gt 12000 ] || lo=32768
    for i in $(seq 1 200); do
        p=$(( (RANDOM * 32768 + RANDOM) % (lo - 11000) + 10000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
           ! grep -qx "$p" "$D/ports" 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free TCP port found"
}

# Is PID alive and one of ours (its command line names DIR, or it runs in
# DIR)?  Guards against a recycled PID.
ours() {
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$D" && return 0
    [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$D" ]
}

# TERM every recorded process at once, KILL what is left after a short
# grace period: the data is thrown away anyway, and ceph daemons linger for
# seconds waiting for each other.
stop_server() {
    local f pid i alive pids=""
    for f in "$D"/pids/*; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if ours "$pid"; then
            kill "$pid" 2>/dev/null || true
            pids="$pids $pid"
        fi
    done
    for i in $(seq 1 20); do
        alive=""
        for pid in $pids; do ours "$pid" && alive="$alive $pid"; done
        pids=$alive
        [ -z "$pids" ] && break
        sleep 0.1
    done
    for pid in $pids; do
        if ours "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    done
    rm -f "$D"/pids/*
}

print_env() {
    [ -f "$D/env" ] || die "no server recorded in $D (run: $0 start $D)"
    cat "$D/env"
}

logs_tail() {
    local f
    for f in "$D"/log/*; do
        [ -s "$f" ] || continue
        echo "---- $f (last 25 lines)" >&2
        tail -n 25 "$f" >&2
    done
}

fail_start() {
    trap - ERR
    say "start failed: $*"
    logs_tail
    stop_server
    exit 1
}

# Wait until "$@" succeeds, at most $1 seconds.
wait_for() {
    local secs=$1; shift
    local deadline=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# Wait for a daemon (its PID file name) to pass "$@"; fail at once if it
# exits, or after START_TIMEOUT seconds.
wait_daemon() {
    local name=$1; shift
    local pid deadline=$(( $(date +%s) + START_TIMEOUT ))
    pid=$(cat "$D/pids/$name")
    until "$@" >/dev/null 2>&1; do
        ours "$pid" || fail_start "$name exited during startup"
        [ "$(date +%s)" -lt "$deadline" ] ||
            fail_start "$name not ready after $START_TIMEOUT s: $*"
        sleep 0.2
    done
}

http_up() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/"; }

# The packages are scripts/deps.sh's set `s3` (the one list): installed as
# root, named with the install command otherwise.  Its output goes to
# stderr: stdout carries only the export lines.
need_s3_packages() {
    "$(dirname "$0")/deps.sh" s3 >&2 || die "the S3 server's packages are missing (see above)"
}

# Create the test bucket with one SigV4-signed PUT (python3's hmac; the
# signing rules are the ones lib/sigv4.c implements).
create_bucket() {
    local port=$1
    python3 - "$port" "$ACCESS_KEY" "$SECRET_KEY" "$REGION" "$BUCKET" <<'PY' >>"$D/log/setup.out" 2>&1
import datetime, hashlib, hmac, http.client, sys
port, ak, sk, region, bucket = sys.argv[1:]
now = datetime.datetime.now(datetime.timezone.utc)
amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
host = "127.0.0.1:" + port
body_hash = hashlib.sha256(b"").hexdigest()
creq = "\n".join(["PUT", "/" + bucket, "", "host:" + host, "x-amz-content-sha256:" + body_hash,
                  "x-amz-date:" + amz, "", "host;x-amz-content-sha256;x-amz-date", body_hash])
scope = "/".join([day, region, "s3", "aws4_request"])
sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
k = ("AWS4" + sk).encode()
for part in (day, region, "s3", "aws4_request"):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
auth = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
        "Signature=%s" % (ak, scope, sig))
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=20)
c.request("PUT", "/" + bucket, body=b"", headers={"Host": host, "x-amz-date": amz,
          "x-amz-content-sha256": body_hash, "Authorization": auth})
r = c.getresponse()
text = r.read().decode(errors="replace")
if r.status not in (200, 409):
    sys.exit("create bucket %s: HTTP %d %s" % (bucket, r.status, text[:300]))
PY
}

write_env() {
    local port=$1 server=$2
    cat >"$D/env" <<EOF
export AKIDB_TEST_S3_SERVER=$server
export AKIDB_TEST_S3_ENDPOINT=http://127.0.0.1:$port
export AKIDB_TEST_S3_VHOST_ENDPOINT=http://localhost:$port
export AKIDB_TEST_S3_ACCESS_KEY=$ACCESS_KEY
export AKIDB_TEST_S3_SECRET_KEY='$SECRET_KEY'
export AKIDB_TEST_S3_BUCKET=$BUCKET
export AKIDB_TEST_S3_REGION=$REGION
EOF
}

# ---- radosgw --------------------------------------------------------------

start_radosgw() {
    need_s3_packages
    local mon2 mon1 rgw C fsid id
    mon2=$(free_port); echo "$mon2" >>"$D/ports"
    mon1=$(free_port); echo "$mon1" >>"$D/ports"
    rgw=$(free_port);  echo "$rgw"  >>"$D/ports"
    C=$D/ceph.conf
    fsid=$(uuidgen)
    mkdir -p "$D/mon/ceph-a" "$D/osd" "$D/run" "$D/rgw"
    cat >"$C" <<CONF
[global]
fsid = $fsid
mon_initial_members = a
mon_host = [v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
# Commit monitor changes at once rather than batching them for a second:
# radosgw's first start issues a dozen pool commands, one after the other.
paxos_propose_interval = 0.01
paxos_min_wait = 0.001
osd_crush_chooseleaf_type = 0
osd_objectstore = memstore
memstore_device_bytes = 2147483648
run_dir = $D/run
admin_socket = $D/run/\$name.asok
pid_file = $D/run/\$name.pid
log_file = $D/log/\$name.log
mon_cluster_log_file = default=$D/log/\$cluster.\$channel.log cluster=$D/log/\$cluster.log
mon_data = $D/mon/ceph-\$id
osd_data = $D/osd/ceph-\$id
keyring = $D/\$name.keyring
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$rgw tcp_nodelay=1
rgw_data = $D/rgw
rgw_dns_name = localhost
CONF
    # Keys: the monitor's, and an admin that the later steps act as.
    ceph-authtool --create-keyring "$D/mon.a.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$D/client.admin.keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$D/mon.a.keyring" --import-keyring "$D/client.admin.keyring" >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]" \
        "$D/monmap" >/dev/null
    ceph-mon -c "$C" --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.a.keyring" \
        >"$D/log/mon.mkfs.out" 2>&1 || fail_start "ceph-mon --mkfs"

    ceph-mon -c "$C" -i a -f >"$D/log/mon.out" 2>&1 &
    echo $! >"$D/pids/1-mon"
    wait_daemon 1-mon timeout 5 ceph -c "$C" mon stat

    # One OSD on memstore.
    id=$(timeout 30 ceph -c "$C" osd create 2>>"$D/log/setup.out") || fail_start "ceph osd create"
    mkdir -p "$D/osd/ceph-$id"
    timeout 30 ceph -c "$C" auth get-or-create "osd.$id" mon 'allow profile osd' osd 'allow *' \
        mgr 'allow profile osd' -o "$D/osd.$id.keyring" 2>>"$D/log/setup.out" ||
        fail_start "osd key"
    timeout 60 ceph-osd -c "$C" -i "$id" --mkfs >"$D/log/osd.mkfs.out" 2>&1 ||
        fail_start "ceph-osd --mkfs"
    ceph-osd -c "$C" -i "$id" -f >"$D/log/osd.out" 2>&1 &
    echo $! >"$D/pids/2-osd"

    # The gateway.
    timeout 30 ceph -c "$C" auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' \
        -o "$D/client.rgw.a.keyring" 2>>"$D/log/setup.out" || fail_start "rgw key"
    radosgw -c "$C" -n client.rgw.a -f >"$D/log/rgw.out" 2>&1 &
    echo $! >"$D/pids/0-rgw"
    wait_daemon 0-rgw http_up "$rgw"

    timeout 60 radosgw-admin -c "$C" user create --uid=akidb-test --display-name="akidb test" \
        --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$D/log/user.out" 2>&1 ||
        fail_start "radosgw-admin user create"
    # A gateway that has just come up may still answer 5xx for a moment.
    wait_for 30 create_bucket "$rgw" ||
        fail_start "could not create bucket $BUCKET (log/setup.out)"
    write_env "$rgw" radosgw
}

# ---- moto -----------------------------------------------------------------

start_moto() {
    command -v moto_server >/dev/null 2>&1 ||
        die "moto_server not found (pip install 'moto[server]')"
    command -v curl >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 ||
        die "moto needs curl and python3 on PATH"
    local port
    port=$(free_port); echo "$port" >>"$D/ports"
    # Started in DIR, which is how stop recognises it (its command line
    # does not name DIR).
    (cd "$D" && exec moto_server -H 127.0.0.1 -p "$port" >"$D/log/moto.out" 2>&1) &
    echo $! >"$D/pids/0-moto"
    wait_daemon 0-moto http_up "$port"
    create_bucket "$port" || fail_start "could not create bucket $BUCKET (log/setup.out)"
    write_env "$port" moto
}

# ---- main -------------------------------------------------------------------

case $cmd in
start)
    server=${AKIDB_S3_SERVER:-radosgw}
    if [ -d "$D/pids" ]; then stop_server; fi
    rm -rf "$D"
    mkdir -p "$D/pids" "$D/log"
    started=$(date +%s)
    # Any setup command that fails unexpectedly fails the start loudly.
    trap 'fail_start "a setup command failed (line $LINENO)"' ERR
    case $server in
        radosgw) start_radosgw ;;
        moto) start_moto ;;
        *) die "AKIDB_S3_SERVER=$server: unknown (radosgw or moto)" ;;
    esac
    trap - ERR
    say "$server ready in $(( $(date +%s) - started )) s: $(grep ENDPOINT= "$D/env" | head -1 | sed 's/.*=//')"
    print_env
    ;;
stop) stop_server ;;
env) print_env ;;
*) usage ;;
esac
