#!/bin/sh
# check-abi.sh - guard the public ABI of libakidb.
#
#   scripts/check-abi.sh build/libakidb.so.X.Y.Z include/akidb.h [SYMBOL_LIST]
#
# 1. Every symbol the shared object exports is public API: it starts with
#    `akidb_` but not `akidb__` (internal cross-file names are hidden).
# 2. Every function the header marks AKIDB_API is actually exported.
# 3. The header compiles alone as C99 -pedantic and as C++11 -pedantic,
#    with -Werror, so embedders on either language can include it.
# 4. With SYMBOL_LIST (scripts/abi-symbols.txt): the exported symbols are
#    exactly the committed list.  A symbol missing from the library breaks
#    every program that uses it (an ABI break: never within a major
#    version); a new one must be added to the list on purpose, in the same
#    commit that documents it in the header.
set -eu
export LC_ALL=C   # one collation for sort and comm

so=${1:?usage: $0 LIBAKIDB_SO HEADER [SYMBOL_LIST]}
hdr=${2:?usage: $0 LIBAKIDB_SO HEADER [SYMBOL_LIST]}
list=${3:-}
CC=${CC:-cc}
CXX=${CXX:-c++}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- exported symbols --------------------------------------------------------
nm -D --defined-only "$so" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u > "$tmp/exported"
bad=$(grep -v '^akidb_[A-Za-z0-9]' "$tmp/exported" || true)
if [ -n "$bad" ]; then
    echo "check-abi: FAIL: $so exports symbols outside the akidb_ API:" >&2
    echo "$bad" | sed 's/^/    /' >&2
    fail=1
fi
if ! grep -qx 'akidb_open' "$tmp/exported"; then
    echo "check-abi: FAIL: $so does not export akidb_open" >&2
    fail=1
fi

# Declarations look like `AKIDB_API <type> akidb_name(`, possibly with `*`.
tr '\n' ' ' < "$hdr" | grep -o 'AKIDB_API[^;(]*(' |
    sed -n 's/.*[ *]\(akidb_[A-Za-z0-9_]*\)[ ]*($/\1/p' | sort -u > "$tmp/declared"
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
    echo "check-abi: FAIL: declared AKIDB_API in $hdr but not exported by $so:" >&2
    echo "$missing" | sed 's/^/    /' >&2
    fail=1
fi

# --- the committed symbol list -----------------------------------------------
if [ -n "$list" ]; then
    gone=$(comm -13 "$tmp/exported" "$list")
    new=$(comm -23 "$tmp/exported" "$list")
    if [ -n "$gone" ]; then
        echo "check-abi: FAIL: symbols in $list that $so no longer exports (an ABI break):" >&2
        echo "$gone" | sed 's/^/    /' >&2
        fail=1
    fi
    if [ -n "$new" ]; then
        echo "check-abi: FAIL: $so exports symbols that $list does not list; add them" >&2
        echo "    (sorted, one per line) if they are meant to be public:" >&2
        echo "$new" | sed 's/^/    /' >&2
        fail=1
    fi
fi

# --- header portability ------------------------------------------------------
inc=$(dirname "$hdr")
printf '#include "%s"\nint main(void) { return akidb_version_number() == AKIDB_VERSION_NUMBER ? 0 : 1; }\n' \
    "$(basename "$hdr")" > "$tmp/h.c"
cp "$tmp/h.c" "$tmp/h.cpp"
if ! $CC -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only -I"$inc" "$tmp/h.c"; then
    echo "check-abi: FAIL: $hdr does not compile as C99 -pedantic" >&2
    fail=1
fi
if ! $CXX -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only -I"$inc" "$tmp/h.cpp"; then
    echo "check-abi: FAIL: $hdr does not compile as C++11 -pedantic" >&2
    fail=1
fi

if [ $fail -ne 0 ]; then
    exit 1
fi
echo "check-abi: ok ($(wc -l < "$tmp/exported") exported symbols, all akidb_; header ok as C99 and C++11)"
