#!/bin/sh
# deps.sh - the Debian packages each build step needs: the one list, and the
# step that installs them.
#
#   scripts/deps.sh [SET...]           make sure SET's packages are there (default: core)
#   scripts/deps.sh --list [SET...]    print SET's Debian packages, one per line
#   scripts/deps.sh --list-own [SET...]
#                                      only the project's own dependencies (kind
#                                      `pkg` below): what CI's fresh-machine step
#                                      purges
#   scripts/deps.sh --pc MODULE...     the Debian package that provides each
#                                      pkg-config module (for the Makefile's errors)
#
# SETs (several may be given; the union is taken):
#   core     build the library, the examples and the `akidb` tool
#   s3       the local Ceph radosgw the S3 tests and benchmarks start
#   interop  node + npm (DuckDB and arrow-rs read our Parquet files)
#   bindings python3-venv, numpy and Go (the Python and Go packages' tests)
#   test     core s3 interop bindings: `make test`, `make asan`, `make tsan`
#   cross    the aarch64 cross compiler and qemu-user (`make test-aarch64`)
#   fuzz     clang-14 and its libFuzzer runtime (`make fuzz`)
#   bench    test + the benchmark peers (`make bench`)
#   all      every set
#
# Two kinds of entries.  `pkg` is a dependency of this project: checked with
# dpkg, installed when missing; a fresh machine does not have it.  `tool` is
# a command every development machine already has (compiler, make, curl,
# python3, node), possibly not from Debian (pyenv's python3, NodeSource's
# node): it is checked with `command -v`, and its Debian package is
# installed only when the command is missing.  Checking the package instead
# would install Debian's python3 beside pyenv's, or Debian's npm on top of a
# NodeSource node that ships its own (the two conflict).
#
# Silent and fast (one dpkg-query) when everything is present, so every make
# target can call it.  Missing packages are installed with apt-get when we
# are root (CI containers); otherwise the script names them, prints the
# command to run, and fails.  Never reads stdin.
set -eu

# set      kind  Debian package            command(s) that stand for it (tools)
TABLE='
core      tool  build-essential           cc,make
core      pkg   pkg-config
core      pkg   libsqlite3-dev
core      pkg   libcurl4-openssl-dev
core      pkg   libssl-dev
core      pkg   libzstd-dev
core      pkg   libuv1-dev
core      pkg   libjansson-dev
core      pkg   libhttp-parser-dev
core      pkg   libjwt-dev
core      pkg   python3-yaml
s3        pkg   radosgw
s3        pkg   ceph-mon
s3        pkg   ceph-osd
s3        pkg   uuid-runtime
s3        tool  curl                      curl
s3        tool  python3                   python3
s3        tool  openssl                   openssl
bindings  pkg   python3-venv
bindings  pkg   python3-numpy
bindings  pkg   golang-go
interop   tool  nodejs                    node
interop   tool  npm                       npm
cross     pkg   gcc-aarch64-linux-gnu
cross     pkg   libc6-dev-arm64-cross
cross     pkg   qemu-user
fuzz      pkg   clang-14
fuzz      pkg   libclang-rt-14-dev
bench     tool  g++                       c++
bench     pkg   libhnswlib-dev
bench     pkg   dataset-fashion-mnist
bench     pkg   awscli
bench     pkg   wrk
bench     pkg   nginx
'
# aarch64-linux-gnu-gcc -static needs the cross libc, a Recommends of the
# compiler that --no-install-recommends skips: hence libc6-dev-arm64-cross.
# clang-14 alone has no libFuzzer: libclang-rt-14-dev holds it.
# openssl is a tool: the security tests make certificates and sign JWTs
# with the command, and purging it would take ca-certificates along.
# bindings: a venv for pip install, Debian's numpy for the numpy tests, Go
# for the cgo package (scripts/test-bindings.sh).

# pkg-config module -> the Debian package that ships its .pc file.
PC_TABLE='
sqlite3   libsqlite3-dev
libcurl   libcurl4-openssl-dev
openssl   libssl-dev
libssl    libssl-dev
libcrypto libssl-dev
libzstd   libzstd-dev
libuv     libuv1-dev
jansson   libjansson-dev
libjwt    libjwt-dev
'

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

# expand SET... into the basic sets of the table
expand() {
    for s in "$@"; do
        case $s in
            core | s3 | interop | bindings | cross | fuzz) echo "$s" ;;
            test)  echo core s3 interop bindings ;;
            bench) echo core s3 interop bindings bench ;;
            all)   echo core s3 interop bindings cross fuzz bench ;;
            *)     echo "deps.sh: unknown set '$s'" >&2; usage ;;
        esac
    done
}

# rows of TABLE for the sets given, as "kind package commands"
rows() {
    sets=" $(expand "$@" | tr '\n' ' ') "
    echo "$TABLE" | while read -r set kind pkg cmds; do
        [ -n "$set" ] || continue
        case $sets in *" $set "*) echo "$kind $pkg ${cmds:-}" ;; esac
    done | awk '!seen[$2]++'
}

mode=install
case ${1:-} in
    --list)     mode=list; shift ;;
    --list-own) mode=own; shift ;;
    --pc)
        shift
        [ $# -gt 0 ] || usage
        for m in "$@"; do
            p=$(echo "$PC_TABLE" | awk -v m="$m" '$1 == m { print $2 }')
            echo "${p:-unknown-package-for-$m}"
        done
        exit 0 ;;
    -h | --help) usage ;;
    -*) usage ;;
esac
[ $# -gt 0 ] || set -- core
for s in "$@"; do expand "$s" >/dev/null; done    # an unknown set fails here
all_rows=$(rows "$@")

case $mode in
    list) echo "$all_rows" | awk '{ print $2 }'; exit 0 ;;
    own)  echo "$all_rows" | awk '$1 == "pkg" { print $2 }'; exit 0 ;;
esac

want=$(echo "$all_rows" | awk '{ print $2 }' | tr '\n' ' ')
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: not a Debian system; make sure the equivalents of these are installed:" >&2
    echo "  $want" >&2
    exit 0
fi

# One query for all packages; those dpkg has never heard of are not listed.
pkgs=$(echo "$all_rows" | awk '$1 == "pkg" { print $2 }' | tr '\n' ' ')
installed=" $(dpkg-query -W -f='${Package} ${Status}\n' $pkgs 2>/dev/null |
              awk '$2 == "install" && $4 == "installed" { print $1 }' | tr '\n' ' ') " || true
missing=
for p in $pkgs; do
    case $installed in
        *" $p "*) ;;
        *) missing="$missing $p" ;;
    esac
done
# Tools: the command, wherever it comes from.
tools=$(echo "$all_rows" | awk '$1 == "tool" { print $2 "=" $3 }')
for t in $tools; do
    pkg=${t%%=*}
    for c in $(echo "${t#*=}" | tr ',' ' '); do
        if ! command -v "$c" >/dev/null 2>&1; then
            missing="$missing $pkg"
            break
        fi
    done
done
missing=${missing# }
[ -z "$missing" ] && exit 0

sets=$(echo "$@")
apt_install="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh ($sets): missing Debian packages: $missing" >&2
    echo "install them with:" >&2
    echo "  sudo apt-get update && sudo $apt_install" >&2
    echo "(or run: sudo scripts/deps.sh $sets)" >&2
    exit 1
fi

echo "deps.sh ($sets): installing $missing"
export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (unattended upgrades, another build) instead
# of failing.
apt-get -o DPkg::Lock::Timeout=600 update </dev/null
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing </dev/null
