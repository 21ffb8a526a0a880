#!/bin/sh
# run-tests.sh - run the test suite binary, with a throwaway S3 server only
# when a selected test needs one.
#
#   scripts/run-tests.sh BUILD/test/akidb_test [NAME...]
#
# Asks the runner which tests NAME... selects (`akidb_test -l NAME...`);
# if one of them is an S3 test (name starting with s3_), the suite runs
# under scripts/with-s3.sh (a local radosgw on 127.0.0.1), otherwise
# directly, so `make test TEST=hnsw` does not spend seconds and 400 MB on a
# Ceph cluster it never uses.  Exits with the suite's status.
set -u
bin=${1:?usage: $0 TEST_BINARY [NAME...]}
shift
here=$(cd "$(dirname "$0")" && pwd)

names=$("$bin" -l "$@") || { echo "run-tests.sh: $bin -l failed" >&2; exit 1; }
if printf '%s\n' "$names" | grep -q '^s3_'; then
    exec "$here/with-s3.sh" "$bin" "$@"
fi
exec "$bin" "$@"
