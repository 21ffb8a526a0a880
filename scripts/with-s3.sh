#!/bin/bash
# with-s3.sh CMD [ARG...] - run CMD with a throwaway S3 server on 127.0.0.1.
#
# Starts scripts/s3-server.sh in a fresh temporary directory, exports its
# AKIDB_TEST_S3_* variables, runs CMD, stops the server (by the PIDs it
# recorded) and removes the directory, also when interrupted.  Exits with
# CMD's status.  Everything this script says goes to stderr, so CMD's last
# line (the test runner's "N passed, N failed") stays the last line on
# stdout.
#
# If the server cannot start, CMD still runs without the variables (so the
# other tests run, and the S3 tests fail saying why) after a loud warning.
#
#   scripts/with-s3.sh build/test/akidb_test s3_
#   AKIDB_S3_SERVER=moto scripts/with-s3.sh build/test/akidb_test s3_
set -u

if [ $# -eq 0 ]; then
    echo "usage: $0 CMD [ARG...]" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
# Short: the server's unix sockets live below it (108-byte path limit).
dir=$(mktemp -d /tmp/akidb-s3.XXXXXX) || exit 1

cleanup() {
    "$here/s3-server.sh" stop "$dir" >&2 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if env_lines=$("$here/s3-server.sh" start "$dir"); then
    eval "$env_lines"
else
    echo "with-s3.sh: WARNING: the S3 test server did not start (see above);" \
         "the S3 tests will fail" >&2
fi

"$@"
exit $?
