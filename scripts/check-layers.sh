#!/bin/sh
# check-layers.sh - fail when an object of lib/ depends on a layer it may
# not (lib/README.md has the rule and why):
#
#   common  <-  index, format, store  <-  engine  <-  api
#
#   - an object in LAYER may reference (nm 'U') an akidb__ symbol only if a
#     layer it may depend on defines it; index, format and store never use
#     each other;
#   - no object below api references a public akidb_* entry point;
#   - public entry points are defined in api/, except the object-store API
#     (akidb_store_*, akidb_s3_*) that store/ defines itself.
#
#   scripts/check-layers.sh BUILD_DIR       (objects in BUILD_DIR/lib/LAYER/*.o)
#   scripts/check-layers.sh --self-test     (proves the check catches a bad edge)
#
# Reads symbols with nm, so it checks what the code really calls, macros
# and inline functions included.  Prints every broken edge; exit 1 if any.
set -eu

allowed() {   # allowed LAYER -> the layers it may use (itself included)
    case $1 in
        common) echo "common" ;;
        index)  echo "index common" ;;
        format) echo "format common" ;;
        store)  echo "store common" ;;
        engine) echo "engine index format store common" ;;
        api)    echo "api engine index format store common" ;;
        *)      echo "" ;;
    esac
}

check() {
    build=$1
    [ -d "$build/lib" ] || { echo "check-layers: $build/lib does not exist (build first)" >&2; return 2; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # symbol layer, for every akidb symbol some object defines
    : > "$tmp/defs"
    : > "$tmp/uses"
    n_obj=0
    for o in "$build"/lib/*/*.o; do
        [ -e "$o" ] || continue
        layer=$(basename "$(dirname "$o")")
        if [ -z "$(allowed "$layer")" ]; then
            echo "check-layers: $o is in lib/$layer/, which is not a known layer" >&2
            return 1
        fi
        n_obj=$((n_obj + 1))
        nm "$o" | awk -v L="$layer" -v O="${o#"$build"/}" '
            $2 ~ /^[TDBRC]$/ && $3 ~ /^akidb_/ { print $3, L, O >> "'"$tmp/defs"'" }
            $1 == "U" && $2 ~ /^akidb_/        { print $2, L, O >> "'"$tmp/uses"'" }'
    done
    [ "$n_obj" -gt 0 ] || { echo "check-layers: no objects under $build/lib" >&2; return 2; }
    bad=0
    while read -r sym layer obj; do
        case $sym in
            akidb_store_*|akidb_s3_*) [ "$layer" = store ] && continue ;;
            akidb__*) continue ;;
        esac
        if [ "$layer" != api ]; then
            echo "check-layers: $obj defines public $sym: entry points belong in lib/api/"
            bad=1
        fi
    done < "$tmp/defs"
    while read -r sym layer obj; do
        case $sym in
            akidb__*)
                def=$(awk -v S="$sym" '$1 == S { print $2; exit }' "$tmp/defs")
                if [ -z "$def" ]; then
                    continue   # defined outside lib/ (a test hook); not a layer edge
                fi
                case " $(allowed "$layer") " in
                    *" $def "*) ;;
                    *) echo "check-layers: $obj ($layer) uses $sym from lib/$def/: $layer may use only: $(allowed "$layer")"
                       bad=1 ;;
                esac ;;
            *)
                if [ "$layer" != api ]; then
                    echo "check-layers: $obj ($layer) calls public $sym: only lib/api/ may call entry points"
                    bad=1
                fi ;;
        esac
    done < "$tmp/uses"
    [ "$bad" = 0 ] && echo "check-layers: $n_obj objects, every edge points down"
    return $bad
}

self_test() {
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    mkdir -p "$dir/good/lib/common" "$dir/good/lib/index" "$dir/bad/lib/common" \
             "$dir/bad/lib/index" "$dir/bad/lib/format"
    cc=${CC:-cc}
    printf 'int akidb__low(void) { return 1; }\n' > "$dir/low.c"
    printf 'int akidb__low(void); int akidb__idx(void) { return akidb__low(); }\n' > "$dir/idx.c"
    printf 'int akidb__idx(void); int akidb__fmt(void) { return akidb__idx(); }\n' > "$dir/fmt.c"
    printf 'int akidb_open(void); int akidb__up(void) { return akidb_open(); }\n' > "$dir/up.c"
    $cc -c "$dir/low.c" -o "$dir/good/lib/common/low.o"
    $cc -c "$dir/idx.c" -o "$dir/good/lib/index/idx.o"
    cp "$dir/good/lib/common/low.o" "$dir/bad/lib/common/"
    cp "$dir/good/lib/index/idx.o" "$dir/bad/lib/index/"
    $cc -c "$dir/fmt.c" -o "$dir/bad/lib/format/fmt.o"    # format -> index: sibling edge
    $cc -c "$dir/up.c" -o "$dir/bad/lib/common/up.o"      # common -> public entry point
    (check "$dir/good") >/dev/null || { echo "check-layers self-test: a clean tree was refused" >&2; return 1; }
    out=$( (check "$dir/bad") 2>&1) && { echo "check-layers self-test: bad edges passed" >&2; return 1; }
    echo "$out" | grep -q 'fmt.o (format) uses akidb__idx from lib/index/' ||
        { echo "check-layers self-test: the sibling edge was not named: $out" >&2; return 1; }
    echo "$out" | grep -q 'up.o (common) calls public akidb_open' ||
        { echo "check-layers self-test: the upward call was not named: $out" >&2; return 1; }
    echo "check-layers self-test: ok"
}

case ${1:-} in
    --self-test) self_test ;;
    "") echo "usage: $0 BUILD_DIR | --self-test" >&2; exit 2 ;;
    *) check "$1" ;;
esac
