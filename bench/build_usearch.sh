#!/bin/sh
# build_usearch.sh - fetch usearch from npm and build its C library, the
# way PEERS.md records it, for the quantized-storage benchmark (issue 16).
#
#   bench/build_usearch.sh DIR [VERSION]
#
# `npm install usearch[@VERSION]` into DIR (never into the repository: its
# sources are not ours to commit), then compile NumKong (the SIMD kernels,
# dispatched at run time) and usearch's C API (c/lib.cpp) with -O3
# -march=native and link them into DIR/libusearch_c.so.  Idempotent: does
# nothing when the library is newer than the package.  Prints the version
# and writes it to DIR/VERSION.
#
# Flags as in PEERS.md: NK_DYNAMIC_DISPATCH=1 (NumKong picks AVX-512 /
# VNNI / AVX2 at run time), NK_NATIVE_F16=0 and NK_NATIVE_BF16=0 (gcc 12
# has no usable _Float16 arithmetic for these files), no OpenMP (one
# thread, like every side of the benchmark).
set -eu

DIR=${1:?usage: build_usearch.sh DIR [VERSION]}
VERSION=${2:-}
mkdir -p "$DIR"
cd "$DIR"
PKG=node_modules/usearch
if [ ! -f "$PKG/c/lib.cpp" ]; then
    command -v npm >/dev/null 2>&1 ||
        { echo "build_usearch: npm missing: run scripts/deps.sh bench" >&2; exit 1; }
    [ -f package.json ] || echo '{"private": true}' > package.json
    # --ignore-scripts: we want the sources only, not the prebuilt addon.
    npm install --no-audit --no-fund --ignore-scripts "usearch${VERSION:+@$VERSION}" >npm.log 2>&1 ||
        { cat npm.log >&2; echo "build_usearch: npm install usearch failed" >&2; exit 1; }
fi
[ -f "$PKG/c/lib.cpp" ] ||
    { echo "build_usearch: $PKG/c/lib.cpp missing (the npm package no longer ships sources?)" >&2; exit 1; }
ver=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$PKG/package.json" | head -n 1)
echo "$ver" > VERSION

if [ -f libusearch_c.so ] && [ libusearch_c.so -nt "$PKG/package.json" ]; then
    echo "build_usearch: usearch $ver already built in $DIR"
    exit 0
fi

NK_DEFS="-DNK_DYNAMIC_DISPATCH=1 -DNK_NATIVE_F16=0 -DNK_NATIVE_BF16=0"
mkdir -p obj
objs=
for src in "$PKG"/numkong/c/numkong.c "$PKG"/numkong/c/dispatch_*.c; do
    o=obj/$(basename "$src" .c).o
    gcc -O3 -march=native -std=c11 -fPIC $NK_DEFS -I"$PKG"/numkong/include -c -o "$o" "$src"
    objs="$objs $o"
done
g++ -O3 -march=native -std=c++17 -fPIC -DUSEARCH_USE_NUMKONG=1 -DUSEARCH_USE_OPENMP=0 $NK_DEFS \
    -I"$PKG"/include -I"$PKG"/numkong/include -c -o obj/lib.o "$PKG"/c/lib.cpp
g++ -shared -o libusearch_c.so.tmp obj/lib.o $objs -lm -pthread
mv libusearch_c.so.tmp libusearch_c.so
cp "$PKG"/c/usearch.h usearch.h
echo "build_usearch: usearch $ver built: $DIR/libusearch_c.so"
