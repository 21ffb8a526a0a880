#!/bin/bash
# parquet-interop.sh - check AkiDB's Parquet files against other writers and
# readers: DuckDB (@duckdb/node-api) and arrow-rs (parquet-wasm), both from
# the npm registry.  The work is done by parquet-interop.mjs beside this
# script; this wrapper installs the npm packages and runs it.
#
#   scripts/parquet-interop.sh install            install the npm packages (idempotent)
#   scripts/parquet-interop.sh fixtures [DIR]     regenerate the committed fixtures
#                                                 (default test/parquet_fixtures) and
#                                                 self-check each with both readers
#   scripts/parquet-interop.sh check FILE EXPECT  read FILE with DuckDB and arrow-rs and
#                                                 compare it with EXPECT (the format
#                                                 is described in parquet-interop.mjs);
#                                                 exit 1 on any difference
#   scripts/parquet-interop.sh read FILE          DuckDB's rows as JSON, one per line
#   scripts/parquet-interop.sh schema FILE        DuckDB's DESCRIBE and parquet_schema()
#   scripts/parquet-interop.sh metadata FILE      DuckDB's parquet_metadata() (pages,
#                                                 encodings, codecs per column chunk)
#   scripts/parquet-interop.sh sql STATEMENT...   run the statements in an in-memory
#                                                 DuckDB (e.g. COPY ... TO 'f.parquet');
#                                                 the last one's rows as JSON lines
#
# The packages go to $AKIDB_NPM_DIR (default build/npm under the repository),
# at the exact versions pinned below, so regenerated fixtures are
# reproducible.  A present, matching install costs one file comparison.  If
# npm cannot install them (no network) the script fails loudly: the tests
# that call it must fail, never pass silently.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
NPM_DIR=${AKIDB_NPM_DIR:-$ROOT/build/npm}

# Pinned: the versions PARQUET.md was checked against.
PACKAGES="@duckdb/node-api@1.5.6-r.1 parquet-wasm@0.8.0 apache-arrow@21.2.0"

die() { echo "parquet-interop: $*" >&2; exit 1; }

install_packages() {
    command -v node >/dev/null 2>&1 || die "node is not installed (Debian: apt-get install nodejs npm)"
    command -v npm >/dev/null 2>&1 || die "npm is not installed (Debian: apt-get install npm)"
    local stamp="$NPM_DIR/.akidb-packages"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PACKAGES" ] &&
       [ -f "$NPM_DIR/node_modules/@duckdb/node-api/package.json" ] &&
       [ -f "$NPM_DIR/node_modules/parquet-wasm/package.json" ] &&
       [ -f "$NPM_DIR/node_modules/apache-arrow/package.json" ]; then
        return 0
    fi
    mkdir -p "$NPM_DIR"
    # One installer at a time (make test and make asan may run together).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$NPM_DIR/.lock"
        flock 9
        if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PACKAGES" ]; then
            return 0
        fi
    fi
    echo "parquet-interop: npm install $PACKAGES into $NPM_DIR" >&2
    # shellcheck disable=SC2086
    if ! npm install --prefix "$NPM_DIR" --no-audit --no-fund \
            --loglevel=error $PACKAGES >&2; then
        die "npm install failed (is the npm registry reachable?); the Parquet interop tests cannot run"
    fi
    echo "$PACKAGES" > "$stamp"
}

usage() {
    sed -n '2,/^set -e/p' "$0" | sed -e '/^set -e/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
    install)
        install_packages
        ;;
    fixtures)
        install_packages
        AKIDB_NPM_DIR=$NPM_DIR exec node "$HERE/parquet-interop.mjs" fixtures \
            "${1:-$ROOT/test/parquet_fixtures}"
        ;;
    check)
        [ $# -eq 2 ] || usage
        install_packages
        AKIDB_NPM_DIR=$NPM_DIR exec node "$HERE/parquet-interop.mjs" check "$1" "$2"
        ;;
    read | schema | metadata)
        [ $# -eq 1 ] || usage
        install_packages
        AKIDB_NPM_DIR=$NPM_DIR exec node "$HERE/parquet-interop.mjs" "$cmd" "$1"
        ;;
    sql)
        [ $# -ge 1 ] || usage
        install_packages
        AKIDB_NPM_DIR=$NPM_DIR exec node "$HERE/parquet-interop.mjs" sql "$@"
        ;;
    -h | --help | help)
        usage
        ;;
    *)
        usage
        ;;
esac
