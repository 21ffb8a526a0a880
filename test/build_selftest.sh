#!/bin/bash
# build_selftest.sh - check the package step of the build without touching
# the machine's packages: scripts/deps.sh and the Makefile's first pass run
# against fake dpkg-query / apt-get / id commands (a scratch PATH), the way
# they would on a fresh machine, as root and as a user.
#
#   test/build_selftest.sh          (from the repository root; `make test`)
#
# Checks:
#  - deps.sh --list / --list-own print each set's packages, one per line;
#    the tools (compiler, make, curl, python3, node) are never in --list-own
#    (CI purges that list);
#  - on a machine with nothing installed, as a user: deps.sh fails, names
#    every missing package and the install command, installs nothing;
#  - the same as root: one apt-get update, one apt-get install of exactly
#    the missing packages;
#  - tools count as present when their command is on PATH, wherever from
#    (pyenv's python3), and their package is added only when it is not;
#  - an unknown set fails;
#  - the Makefile's first pass runs deps.sh with the sets each goal needs,
#    before anything else, then re-invokes make with AKIDB_DEPS_CHECKED=1;
#  - the second pass stops with the module, its package and the install
#    command when pkg-config cannot resolve a module, and when pkg-config
#    itself is missing; `make clean` needs neither.
set -u
# Run by `make test`: the make calls below must start from a user's shell,
# not inherit the running make's second pass (AKIDB_DEPS_CHECKED=1 travels
# in MAKEFLAGS and in the environment).
unset MAKEFLAGS MFLAGS GNUMAKEFLAGS MAKELEVEL MAKEOVERRIDES AKIDB_DEPS_CHECKED
root=$(pwd)
[ -x "$root/scripts/deps.sh" ] || { echo "build_selftest: run from the repository root" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "build_selftest: FAIL: $*" >&2; fails=$((fails + 1)); }
deps=$root/scripts/deps.sh

# ---- --list --------------------------------------------------------------
for set in core s3 interop test cross fuzz bench all; do
    out=$("$deps" --list "$set") || fail "--list $set exited $?"
    [ -n "$out" ] || fail "--list $set printed nothing"
    [ "$(echo "$out" | sort | uniq -d)" = "" ] || fail "--list $set has duplicates"
    echo "$out" | grep -qv '^[a-z0-9][a-z0-9.+-]*$' && fail "--list $set: not one package per line: $out"
done
has() { echo "$1" | grep -qx -- "$2"; }
l=$("$deps" --list test)
for p in libcurl4-openssl-dev libzstd-dev pkg-config radosgw ceph-mon curl python3 nodejs npm; do
    has "$l" "$p" || fail "--list test lacks $p"
done
has "$l" qemu-user && fail "--list test has qemu-user (make test does not cross-build)"
has "$("$deps" --list test-aarch64 2>/dev/null)" qemu-user && fail "--list accepts a goal name"
has "$("$deps" --list cross)" qemu-user || fail "--list cross lacks qemu-user"
has "$("$deps" --list fuzz)" libclang-rt-14-dev || fail "--list fuzz lacks libclang-rt-14-dev"
own=$("$deps" --list-own all)
for p in build-essential g++ curl python3 nodejs npm; do
    has "$own" "$p" && fail "--list-own all has $p (a tool every machine has; CI must not purge it)"
done
for p in libcurl4-openssl-dev radosgw gcc-aarch64-linux-gnu qemu-user clang-14; do
    has "$own" "$p" || fail "--list-own all lacks $p"
done
"$deps" --list nosuchset >/dev/null 2>&1 && fail "--list nosuchset succeeded"
"$deps" nosuchset >/dev/null 2>&1 && fail "deps.sh nosuchset succeeded"
[ "$("$deps" --pc libcurl)" = libcurl4-openssl-dev ] || fail "--pc libcurl"

# ---- a machine with nothing installed ------------------------------------
# fake/: dpkg-query knows no package, apt-get logs its arguments, id says
# $FAKE_UID.  base/: the few real commands deps.sh itself uses.
mkdir -p "$tmp/fake" "$tmp/base" "$tmp/tools"
for c in sh awk tr sed cat; do ln -s "$(command -v $c)" "$tmp/base/$c"; done
cat >"$tmp/fake/dpkg-query" <<'EOF'
#!/bin/sh
exit 1
EOF
cat >"$tmp/fake/apt-get" <<EOF
#!/bin/sh
echo "apt-get \$*" >>"$tmp/apt.log"
EOF
cat >"$tmp/fake/id" <<'EOF'
#!/bin/sh
echo "${FAKE_UID:-1000}"
EOF
for c in cc make c++ curl python3 openssl node npm; do
    printf '#!/bin/sh\nexit 0\n' >"$tmp/tools/$c"
done
chmod +x "$tmp"/fake/* "$tmp"/tools/*

core_pkgs=$("$deps" --list-own core | tr '\n' ' ')
rm -f "$tmp/apt.log"
out=$(FAKE_UID=1000 PATH="$tmp/fake:$tmp/base" "$deps" core 2>&1) && fail "as a user, missing packages: deps.sh succeeded"
for p in $core_pkgs build-essential; do
    echo "$out" | grep 'missing Debian packages:' | tr ' ' '\n' | grep -qx -- "$p" ||
        fail "as a user: $p not named: $out"
done
echo "$out" | grep -q 'sudo apt-get update && sudo .*apt-get install -y --no-install-recommends' ||
    fail "as a user: no install command printed: $out"
[ -e "$tmp/apt.log" ] && fail "as a user, deps.sh ran apt-get: $(cat "$tmp/apt.log")"

rm -f "$tmp/apt.log"
FAKE_UID=0 PATH="$tmp/fake:$tmp/base" "$deps" test >/dev/null 2>&1 || fail "as root: deps.sh test failed"
[ "$(grep -c '^apt-get .* update' "$tmp/apt.log" 2>/dev/null)" = 1 ] || fail "as root: not one apt-get update"
inst=$(grep '^apt-get .* install ' "$tmp/apt.log" | sed 's/.*--no-install-recommends //' | tr ' ' '\n' | sort)
want=$("$deps" --list test | sort)
[ "$inst" = "$want" ] || fail "as root, nothing installed: installed [$(echo $inst)], expected [$(echo $want)]"

# tools present (wherever from): only the project's packages are missing
rm -f "$tmp/apt.log"
FAKE_UID=0 PATH="$tmp/fake:$tmp/base:$tmp/tools" "$deps" test >/dev/null 2>&1 || fail "as root with tools: failed"
inst=$(grep '^apt-get .* install ' "$tmp/apt.log" | sed 's/.*--no-install-recommends //' | tr ' ' '\n' | sort)
want=$("$deps" --list-own test | sort)
[ "$inst" = "$want" ] || fail "with the tools on PATH: installed [$(echo $inst)], expected [$(echo $want)]"
# ... and python3 missing alone brings Debian's python3
rm "$tmp/tools/python3"
rm -f "$tmp/apt.log"
FAKE_UID=0 PATH="$tmp/fake:$tmp/base:$tmp/tools" "$deps" s3 >/dev/null 2>&1
grep -q 'install .* python3\b' "$tmp/apt.log" 2>/dev/null || fail "python3 missing from PATH: not installed"
grep -q 'install .* curl\b' "$tmp/apt.log" 2>/dev/null && fail "curl on PATH, yet installed"

# everything present: silent, no apt-get
cat >"$tmp/fake/dpkg-query" <<'EOF'
#!/bin/sh
# every package asked about is installed
for a in "$@"; do case $a in -*) ;; *) echo "$a install ok installed" ;; esac; done
EOF
printf '#!/bin/sh\nexit 0\n' >"$tmp/tools/python3"; chmod +x "$tmp/tools/python3"
rm -f "$tmp/apt.log"
out=$(FAKE_UID=1000 PATH="$tmp/fake:$tmp/base:$tmp/tools" "$deps" all 2>&1) || fail "all present: failed: $out"
[ -z "$out" ] || fail "all present: not silent: $out"
[ -e "$tmp/apt.log" ] && fail "all present: apt-get ran"

# ---- the Makefile's first pass -------------------------------------------
first_line() { make -n --no-print-directory "$@" 2>/dev/null | head -n 2; }
check_goal() {     # GOAL SETS...
    local goal=$1; shift
    local got
    got=$(first_line "$goal")
    [ "$(echo "$got" | head -n 1)" = "scripts/deps.sh $*" ] ||
        fail "make $goal: first command is not 'scripts/deps.sh $*': $got"
    echo "$got" | sed -n 2p | grep -q "AKIDB_DEPS_CHECKED=1 $goal\$" ||
        fail "make $goal: no second pass after deps.sh: $got"
}
check_goal lib core
check_goal install core
check_goal check-abi core
check_goal run core
check_goal test test
check_goal asan test
check_goal tsan test
check_goal crash core
check_goal fuzz core fuzz
check_goal test-aarch64 core cross
check_goal bench bench
got=$(first_line)
[ "$(echo "$got" | head -n 1)" = "scripts/deps.sh core" ] || fail "make (no goal): $got"
got=$(make -n --no-print-directory lib test-aarch64 2>/dev/null | head -n 2)
[ "$(echo "$got" | head -n 1)" = "scripts/deps.sh core cross" ] || fail "make lib test-aarch64: $got"
echo "$got" | sed -n 2p | grep -q 'AKIDB_DEPS_CHECKED=1 lib test-aarch64$' || fail "make lib test-aarch64: $got"
make -n --no-print-directory clean 2>/dev/null | grep -q deps.sh && fail "make clean runs deps.sh"

# ---- the second pass: no guessed flags ---------------------------------------
out=$(PKG_CONFIG_LIBDIR=$tmp/empty make -n AKIDB_DEPS_CHECKED=1 lib 2>&1) && fail "lib without .pc files succeeded"
echo "$out" | grep -q "cannot find the module(s) sqlite3 libcurl openssl libzstd jansson (Debian: libsqlite3-dev libcurl4-openssl-dev libssl-dev libzstd-dev libjansson-dev); install with: sudo scripts/deps.sh core" ||
    fail "lib without .pc files: unexpected message: $out"
echo "$out" | grep -q -- '-llibcurl\|-lopenssl\|-llibzstd' && fail "a guessed fallback is back: $out"
ln -s "$(command -v make)" "$tmp/base/make"
out=$(PATH="$tmp/base" make -n AKIDB_DEPS_CHECKED=1 lib 2>&1) && fail "lib without pkg-config succeeded"
echo "$out" | grep -q "pkg-config is not installed; install it with: sudo scripts/deps.sh core" ||
    fail "lib without pkg-config: unexpected message: $out"
PATH="$tmp/base" make -n AKIDB_DEPS_CHECKED=1 clean >/dev/null 2>&1 || fail "make clean needs pkg-config"

if [ "$fails" -ne 0 ]; then
    echo "build_selftest: $fails check(s) failed" >&2
    exit 1
fi
echo "build_selftest: ok (deps.sh sets, install and naming paths, the Makefile's two passes)"
