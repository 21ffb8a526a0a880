#!/bin/sh
# test-bindings.sh - what make test runs beyond the C suite: the examples,
# the Python package, the Go module and the documentation checks.
#
#   scripts/test-bindings.sh BUILD [TEST]
#   scripts/test-bindings.sh --asan BUILD [TEST]   (make asan: BUILD=build-asan)
#
# BUILD is make's build directory (already built: library, examples, tool).
# TEST is make test's filter: when set, only the parts whose name contains
# it run (examples, python, go, docs), and none when no part matches, so
# `make test TEST=hnsw` stays quick.
#
#   examples  every program in BUILD/examples/, each in a fresh directory;
#             each checks its own results and exits non-zero on a problem.
#             edge_cache tiers to the local object store; when
#             AKIDB_TEST_S3_ENDPOINT is set (scripts/with-s3.sh
#             scripts/test-bindings.sh BUILD examples) it runs once more
#             against that S3 server.
#   python    `pip install ./bindings/python` into a fresh venv, offline
#             (PIP_NO_INDEX=1: anything that would download fails), then the
#             unittest suite with that venv's python; twice: with python3 on
#             PATH, and with Debian's /usr/bin/python3 and its python3-numpy
#             (a venv with --system-site-packages), where the numpy tests
#             must run (AKIDB_TEST_REQUIRE_NUMPY=1 turns a skip into a failure).
#   go        go vet and go test in bindings/go, offline (GOPROXY=off,
#             GOFLAGS=-mod=mod), caches under BUILD/go; pkg-config finds
#             BUILD/pkgconfig/akidb-uninstalled.pc, or one written here.
#   docs      test/check_docs.py: API.md current and complete, the names the
#             docs use exist, the getting-started programs run.
#
# --asan: BUILD holds an AddressSanitizer+UBSan build.  The examples run as
# they are; the Python tests run (with Debian's python3 and numpy, so the
# zero-copy paths are covered) from the source tree with AKIDB_LIBRARY set
# to BUILD/libakidb.so and the sanitizer runtimes preloaded (the interpreter
# is not instrumented; its own leaks are not ours, so leak checking is off);
# the Go tests run with go test -asan against BUILD/libakidb.a.  The docs
# part is skipped (it checks text, not memory).
#
# Everything it creates stays under BUILD (and temporary directories it
# removes).  Any failure stops the script with a message and exit 1.
set -eu

asan=0
if [ "${1:-}" = --asan ]; then
    asan=1
    shift
fi
build=${1:?usage: scripts/test-bindings.sh BUILD [TEST]}
filter=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case $build in /*) ;; *) build=$root/$build ;; esac

want() {
    [ -z "$filter" ] && return 0
    case $1 in *"$filter"*) return 0 ;; esac
    return 1
}
say() { echo "test-bindings: $*"; }
die() { echo "test-bindings: FAIL: $*" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! want examples && ! want python && ! want go && ! want docs; then
    say "TEST=$filter selects none of examples, python, go, docs"
    exit 0
fi

# ---------------------------------------------------------------- examples
if want examples; then
    ran=0
    for ex in "$build"/examples/*; do
        [ -f "$ex" ] && [ -x "$ex" ] || continue
        name=$(basename "$ex")
        case $name in
            batch_import) args="$tmp/$name-db 5000" ;;
            *) args="$tmp/$name-db" ;;
        esac
        say "examples/$name $args"
        # Local object store: an AKIDB_S3_* of the caller's environment
        # would send edge_cache to that bucket instead.
        # shellcheck disable=SC2086
        env -u AKIDB_S3_ENDPOINT "$ex" $args || die "examples/$name failed (exit $?)"
        ran=$((ran + 1))
        if [ "$name" = edge_cache ] && [ -n "${AKIDB_TEST_S3_ENDPOINT:-}" ]; then
            say "examples/$name against S3 ($AKIDB_TEST_S3_ENDPOINT)"
            AKIDB_S3_ENDPOINT=$AKIDB_TEST_S3_ENDPOINT AKIDB_S3_BUCKET=$AKIDB_TEST_S3_BUCKET \
                AKIDB_S3_REGION=${AKIDB_TEST_S3_REGION:-us-east-1} \
                AKIDB_S3_ACCESS_KEY=$AKIDB_TEST_S3_ACCESS_KEY \
                AKIDB_S3_SECRET_KEY=$AKIDB_TEST_S3_SECRET_KEY \
                "$ex" "$tmp/$name-s3-db" || die "examples/$name against S3 failed (exit $?)"
        fi
    done
    n_src=$(ls examples/*.c | wc -l)
    [ "$ran" -eq "$n_src" ] || die "$n_src examples in examples/ but $ran built in $build/examples"
    say "examples: $ran passed"
fi

# ---------------------------------------------------------------- python
venv_test() {   # venv_test NAME PYTHON [venv options...]
    name=$1 py=$2
    shift 2
    venv=$build/python/$name
    rm -rf "$venv"
    mkdir -p "$build/python"
    "$py" -m venv "$@" "$venv" || die "$py -m venv failed (Debian: python3-venv)"
    say "python ($name): pip install ./bindings/python (offline)"
    PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 BUILD=$build \
        "$venv/bin/pip" install --quiet ./bindings/python ||
        die "pip install ./bindings/python failed in $venv"
    say "python ($name): unittest"
    (cd bindings/python/tests && AKIDB_TEST_EXPECT_BUNDLED=1 \
        "$venv/bin/python" -m unittest discover -s . -t .) ||
        die "the Python tests failed ($name: $("$venv/bin/python" --version 2>&1))"
}
if [ "$asan" = 1 ]; then
    if want python; then
        [ -f "$build/libakidb.so" ] || die "$build/libakidb.so is missing"
        preload=
        for rt in asan ubsan; do
            f=$(${CC:-cc} -print-file-name=lib$rt.so)
            [ -f "$f" ] || die "cannot find lib$rt.so (${CC:-cc} -print-file-name)"
            preload="$preload $f"
        done
        say "python (ASan): unittest from the source tree against $build/libakidb.so"
        (cd bindings/python/tests && PYTHONPATH="$root/bindings/python" \
            AKIDB_LIBRARY="$build/libakidb.so" LD_PRELOAD="${preload# }" \
            ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:${ASAN_OPTIONS:-}" \
            UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
            AKIDB_TEST_REQUIRE_NUMPY=1 /usr/bin/python3 -m unittest discover -s . -t .) ||
            die "the Python tests failed under ASan"
    fi
elif want python || want docs; then
    command -v python3 >/dev/null || die "python3 is not installed"
    venv_test path python3
    if want python; then
        [ -x /usr/bin/python3 ] || die "/usr/bin/python3 is missing (Debian python3)"
        /usr/bin/python3 -c 'import numpy' 2>/dev/null ||
            die "Debian's python3-numpy is missing (scripts/deps.sh test installs it)"
        AKIDB_TEST_REQUIRE_NUMPY=1 venv_test debian /usr/bin/python3 --system-site-packages
    fi
fi

# ---------------------------------------------------------------- go
if want go || { want docs && [ "$asan" = 0 ]; }; then
    command -v go >/dev/null || die "go is not installed (Debian golang-go)"
    export GOCACHE="$build/go/cache" GOPATH="$build/go/path" GOFLAGS=-mod=mod GOPROXY=off \
           GOTOOLCHAIN=local GO111MODULE=on CGO_ENABLED=1
    # The Makefile writes the build tree's .pc (make all, make test-build):
    # its Requires are the library's modules, the one list in the Makefile.
    pcdir=$build/pkgconfig
    [ -f "$pcdir/akidb-uninstalled.pc" ] ||
        die "$pcdir/akidb-uninstalled.pc is missing (make BUILD=$build all writes it)"
    export PKG_CONFIG_PATH="$pcdir"
    # Go's build cache does not notice a change in what pkg-config prints
    # (a module added to the library's Requires): a stale link line, "undefined
    # reference".  One cache per set of flags.
    GOCACHE="$build/go/cache-$(pkg-config --cflags --libs akidb | cksum | cut -d' ' -f1)"
    if want go; then
        say "go: vet (PKG_CONFIG_PATH=$pcdir)"
        (cd bindings/go && go vet ./...) || die "go vet failed"
        say "go: test"
        if [ "$asan" = 1 ]; then
            (cd bindings/go && CGO_LDFLAGS="-fsanitize=undefined" \
                ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" go test -asan -count=1 ./...) ||
                die "go test -asan failed"
        else
            (cd bindings/go && go test -count=1 ./...) || die "go test failed"
        fi
    fi
fi

# ---------------------------------------------------------------- docs
if want docs && [ "$asan" = 0 ]; then
    AKIDB_DOCS_PYTHON=$build/python/path/bin/python python3 test/check_docs.py "$build" ||
        die "the documentation checks failed"
fi
