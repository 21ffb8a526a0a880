#!/bin/sh
# readme_commands.sh - run what README.md shows a user, as written, so the
# README cannot drift from the library and the tool:
#
#   test/readme_commands.sh CC BUILD LIBS     (from the repository root;
#                                             `make test` runs it after the build)
#
# 1. The first ```c block (the example) is compiled against BUILD/libakidb.a
#    and run twice in a row in one directory: both runs must succeed and
#    print the same two hits, doc 1 first (a second run finds the
#    collection already there).
# 2. Every ```sh block whose lines all start with `build/akidb ` (the tool
#    section) is run line by line, as written, in that directory with
#    `build` pointing at BUILD; each command must exit 0 (its output is
#    shown when it does not), and a few results are checked.
# 3. Every file and directory the database directories then hold is named
#    in the README's "A database directory" block (DIR/NAME), so the
#    layout it documents is the one a user finds.
set -eu
cc=${1:-cc}
build=${2:-build}
libs=${3:--lsqlite3 -lcurl -lssl -lcrypto -lzstd -ljansson -lm -pthread}
root=$(pwd)
[ -f "$root/README.md" ] || { echo "readme_commands: run from the repository root" >&2; exit 1; }
case $build in /*) ;; *) build=$root/$build ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "readme_commands: FAIL: $*" >&2; exit 1; }

# 1. the example, twice
awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on { print }' README.md > "$tmp/example.c"
[ -s "$tmp/example.c" ] || fail "no \`\`\`c block in README.md"
# shellcheck disable=SC2086
$cc -std=c99 -Wall -Wextra -Wpedantic -Werror -I"$root/include" "$tmp/example.c" \
    "$build/libakidb.a" $libs -o "$tmp/example" || fail "the README example does not compile"
first=$(cd "$tmp" && ./example) || fail "the example failed on its first run"
second=$(cd "$tmp" && ./example) || fail "the example failed on its second run (in the same directory)"
echo "$first" | head -n 1 | grep -q '^id 1 distance' || fail "unexpected output: $first"
[ "$(echo "$first" | wc -l)" -eq 2 ] || fail "expected 2 hits, got: $first"
[ "$first" = "$second" ] || fail "the second run printed something else: $second (first: $first)"
echo "readme_commands: the example runs twice in a row with the same result"

# 2. the tool's commands, as written
ln -s "$build" "$tmp/build"
awk '/^```sh$/ { on = 1; n = 0; all = 1; block = ""; next }
     on && /^```$/ { on = 0; if (n && all) printf "%s", block; next }
     on { n++; if ($0 !~ /^build\/akidb /) all = 0; block = block $0 "\n" }' README.md \
    > "$tmp/commands"
[ -s "$tmp/commands" ] || fail "no \`\`\`sh block of build/akidb commands in README.md"
while IFS= read -r cmd; do
    (cd "$tmp" && sh -c "$cmd") > "$tmp/out" 2>&1 || { cat "$tmp/out"; fail "exit $?: $cmd"; }
    case $cmd in
        *" search "*)
            sed -n 2p "$tmp/out" | grep -q '^1 *a ' ||
                { cat "$tmp/out"; fail "search: doc 1 (a) is not the first hit"; } ;;
        *" collections "*)
            grep -q '^docs ' "$tmp/out" || { cat "$tmp/out"; fail "collections: no docs"; } ;;
        *" import "*)
            grep -q '^imported 3 rows into docs' "$tmp/out" ||
                { cat "$tmp/out"; fail "import: not 3 rows"; } ;;
    esac
done < "$tmp/commands"
echo "readme_commands: $(grep -c . "$tmp/commands") tool commands ran as written"

# 3. the directory layout
layout=$(awk '/^## A database directory/ { on = 1 } on && /^## / && !/A database directory/ { exit }
              on' README.md)
for db in example-db copy-db; do
    for entry in $(ls -A "$tmp/$db"); do
        echo "$layout" | grep -q "^DIR/$entry\([ /]\|\$\)" ||
            fail "$db holds $entry, which the README's \"A database directory\" does not name"
    done
done
echo "readme_commands: every file of the databases is in the README's directory layout"
echo "readme_commands: ok"
