#!/bin/sh
# readme_example.sh - compile and run the C example in README.md, so the
# documentation cannot drift from the header.  Extracts the first ```c block.
#
#   test/readme_example.sh CC STATIC_LIB LIBS
set -eu
cc=${1:-cc}
lib=${2:-build/libakidb.a}
libs=${3:--lsqlite3 -lm -pthread}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on { print }' README.md > "$tmp/example.c"
if [ ! -s "$tmp/example.c" ]; then
    echo "readme_example: no \`\`\`c block found in README.md" >&2
    exit 1
fi
$cc -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude "$tmp/example.c" "$lib" $libs -o "$tmp/example"
out=$(cd "$tmp" && ./example)
[ -d "$tmp/example-db/wal" ] || { echo "readme_example: no database directory created" >&2; exit 1; }
echo "$out"
# Two hits, closest first: doc 1 (1,0,0,0) is nearest to (0.9,0.1,0,0).
echo "$out" | head -n 1 | grep -q '^id 1 distance' || {
    echo "readme_example: unexpected output" >&2
    exit 1
}
[ "$(echo "$out" | wc -l)" -eq 2 ] || { echo "readme_example: expected 2 hits" >&2; exit 1; }
echo "readme_example: ok"
