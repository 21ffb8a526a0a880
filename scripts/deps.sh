#!/bin/sh
# deps.sh - make sure the Debian packages a build step needs are installed.
#
#   scripts/deps.sh [core|test|bench|all]     (default: core)
#
# Silent and fast (one dpkg-query) when everything is present, so every make
# target can call it.  Missing packages are installed with apt-get when we
# are root (CI containers); otherwise the script names them, prints the
# command to run, and fails.  Never reads stdin.
set -eu

set_name=${1:-core}

core="build-essential pkg-config libsqlite3-dev libcurl4-openssl-dev libssl-dev
      libzstd-dev libuv1-dev libjansson-dev libhttp-parser-dev python3-yaml"
# aarch64-linux-gnu-gcc -static needs the cross libc (a Recommends of the
# compiler, so --no-install-recommends would skip it); qemu-user runs it.
test_extra="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
test_extra="$test_extra radosgw ceph-mon ceph-osd uuid-runtime curl python3"
test_extra="$test_extra clang-14 libclang-rt-14-dev"
# The bindings' tests (scripts/test-bindings.sh): a venv for pip install,
# Debian's numpy for the numpy tests, Go for the cgo package.
test_extra="$test_extra python3-venv python3-numpy golang-go"
bench_extra="g++ libhnswlib-dev dataset-fashion-mnist awscli wrk nginx"

case $set_name in
    core)  want=$core ;;
    test)  want="$core $test_extra" ;;
    bench) want="$core $bench_extra" ;;
    all)   want="$core $test_extra $bench_extra" ;;
    *)     echo "usage: $0 [core|test|bench|all]" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: not a Debian system; make sure the equivalents of these are installed:" >&2
    echo "  $(echo $want)" >&2
    exit 0
fi

# One query for all; packages dpkg has never heard of are simply not listed.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' $want 2>/dev/null |
            awk '$2 == "install" && $4 == "installed" { print $1 }') || true
missing=
for p in $want; do
    case " $(echo $installed) " in
        *" $p "*) ;;
        *) missing="$missing $p" ;;
    esac
done
# The Parquet interop tests and the snapshot benchmark run DuckDB and
# arrow-rs from npm.  Check the commands, not the packages: a node from
# another source (nodesource ships npm inside its nodejs) must not get
# Debian's npm package on top, which conflicts with it.
case $set_name in
    test|bench|all)
        command -v node >/dev/null 2>&1 || missing="$missing nodejs"
        command -v npm >/dev/null 2>&1 || missing="$missing npm" ;;
esac
missing=${missing# }
[ -z "$missing" ] && exit 0

apt_install="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh ($set_name): missing Debian packages: $missing" >&2
    echo "install them with:" >&2
    echo "  sudo apt-get update && sudo $apt_install" >&2
    exit 1
fi

echo "deps.sh ($set_name): installing $missing"
export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (unattended upgrades) instead of failing.
apt-get -o DPkg::Lock::Timeout=600 update </dev/null
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing </dev/null
