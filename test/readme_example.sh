#!/bin/sh
# readme_example.sh - run what README.md tells a user to type, so the
# documentation cannot drift from the header, the build or the install.
#
#   test/readme_example.sh CC BUILD MAKE      (from the repository root; `make
#                                             test` runs it after `make all`)
#
# 1. The first ```c block of README.md is compiled with CC and strict
#    warnings (-std=c99 -Wall -Wextra -Wpedantic -Werror) and run; it must
#    print two hits, doc 1 first, and create its database directory.
# 2. The README's build-tree command (the line starting `cc example.c $(`
#    that names akidb-uninstalled) is run exactly as written, in a scratch
#    directory where `build` points at BUILD, and its program is run.
# 3. `MAKE install DESTDIR=...` stages an install; the staged files are
#    checked, and the README's installed-library command (the other
#    `cc example.c $(` line) is run as written, with PKG_CONFIG_PATH and
#    PKG_CONFIG_SYSROOT_DIR pointing into the stage; its program must run
#    against the staged shared library.
set -eu
cc=${1:-cc}
build=${2:-build}
make=${3:-make}
root=$(pwd)
[ -f "$root/README.md" ] || { echo "readme_example: run from the repository root" >&2; exit 1; }
case $build in /*) ;; *) build=$root/$build ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "readme_example: FAIL: $*" >&2; exit 1; }

# Two hits, closest first: doc 1 (1,0,0,0) is nearest to (0.9,0.1,0,0).
check_output() {    # DIR PROGRAM [ENV...]
    dir=$1; prog=$2; shift 2
    rm -rf "$dir/example-db"
    out=$(cd "$dir" && env "$@" "$prog") || fail "$prog exited with $?"
    [ -d "$dir/example-db/wal" ] || fail "$prog created no database directory"
    echo "$out" | head -n 1 | grep -q '^id 1 distance' || fail "$prog: unexpected output: $out"
    [ "$(echo "$out" | wc -l)" -eq 2 ] || fail "$prog: expected 2 hits, got: $out"
}

awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on { print }' README.md > "$tmp/example.c"
[ -s "$tmp/example.c" ] || fail "no \`\`\`c block found in README.md"

# The build commands, as documented.
cmds=$(grep '^cc example\.c \$(' README.md || true)
tree_cmd=$(echo "$cmds" | grep 'akidb-uninstalled' || true)
inst_cmd=$(echo "$cmds" | grep -v 'akidb-uninstalled' || true)
[ "$(echo "$tree_cmd" | grep -c .)" -eq 1 ] ||
    fail "README.md: expected one line 'cc example.c \$(... akidb-uninstalled)', found: $tree_cmd"
[ "$(echo "$inst_cmd" | grep -c .)" -eq 1 ] ||
    fail "README.md: expected one line 'cc example.c \$(pkg-config ... akidb)', found: $inst_cmd"

# 1. strict warnings, through the same .pc file
pcflags=$(PKG_CONFIG_PATH=$build/pkgconfig pkg-config --cflags --libs akidb-uninstalled) ||
    fail "pkg-config cannot read $build/pkgconfig/akidb-uninstalled.pc"
# shellcheck disable=SC2086
$cc -std=c99 -Wall -Wextra -Wpedantic -Werror "$tmp/example.c" $pcflags -o "$tmp/example-strict" ||
    fail "the README example does not compile cleanly"
check_output "$tmp" "$tmp/example-strict"
echo "readme_example: the example compiles with -Werror and prints 2 hits"

# 2. the build-tree command, verbatim, in a directory that looks like the root
mkdir "$tmp/tree"
cp "$tmp/example.c" "$tmp/tree/"
ln -s "$build" "$tmp/tree/build"
(cd "$tmp/tree" && sh -c "$tree_cmd") || fail "the README's build-tree command failed: $tree_cmd"
check_output "$tmp/tree" ./a.out
echo "readme_example: ok: $tree_cmd"

# 3. install into a stage, then the installed-library command, verbatim
stage=$tmp/stage
$make --no-print-directory -s install DESTDIR="$stage" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "make install DESTDIR=$stage failed"; }
prefix=$(sed -n 's/^prefix=//p' "$build/pkgconfig/akidb.pc")
libdir=$(pkg-config --define-variable=prefix="$prefix" --variable=libdir "$build/pkgconfig/akidb.pc")
for f in "$prefix/include/akidb.h" "$libdir/libakidb.a" "$libdir/libakidb.so" \
         "$libdir/pkgconfig/akidb.pc" "$prefix/bin/akidb"; do
    [ -e "$stage$f" ] || fail "make install DESTDIR: $stage$f missing"
done
soname=$(ls "$stage$libdir" | grep '^libakidb\.so\.[0-9]*$' || true)
[ -n "$soname" ] && [ -L "$stage$libdir/$soname" ] || fail "make install: no libakidb.so.MAJOR symlink"
mkdir "$tmp/inst"
cp "$tmp/example.c" "$tmp/inst/"
(cd "$tmp/inst" &&
 PKG_CONFIG_PATH="$stage$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage" sh -c "$inst_cmd") ||
    fail "the README's installed-library command failed: $inst_cmd"
readelf -d "$tmp/inst/a.out" | grep -q "NEEDED.*\[$soname\]" ||
    fail "the program built by '$inst_cmd' does not use $soname"
check_output "$tmp/inst" ./a.out LD_LIBRARY_PATH="$stage$libdir"
echo "readme_example: ok: make install DESTDIR=..., then $inst_cmd"
