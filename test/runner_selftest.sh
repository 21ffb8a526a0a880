#!/bin/sh
# runner_selftest.sh - check that the test runner (test/runner.c) enforces
# timeouts from the parent: a test that ignores SIGALRM and SIGTERM, keeps
# re-arming alarm() and leaves a grandchild behind is still stopped at its
# deadline, reported as "timed out after N s", and nothing it started
# survives.  Also: a pass, a failure, a passing test that leaves a process
# behind (killed), and that the self-tests exist only under AKT_SELFTEST=1.
#
#   test/runner_selftest.sh BUILD/test/akidb_test
set -u
bin=${1:?usage: $0 TEST_BINARY}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "runner_selftest: FAIL: $*" >&2; [ -f "$tmp/out" ] && sed 's/^/    /' "$tmp/out" >&2; exit 1; }

scale=${AKT_TIMEOUT_SCALE:-1}
case $scale in ''|*[!0-9]*|0) scale=1 ;; esac

if "$bin" -l | grep -q '^runner_selftest'; then
    fail "the self-tests are listed without AKT_SELFTEST=1"
fi

t0=$(date +%s)
AKT_SELFTEST=1 AKT_SELFTEST_PIDFILE="$tmp/pids" "$bin" runner_selftest_ >"$tmp/out" 2>&1
rc=$?
t1=$(date +%s)
[ "$rc" -eq 1 ] || fail "exit status $rc, expected 1"
grep -q '^ok runner_selftest_pass ' "$tmp/out" || fail "runner_selftest_pass did not pass"
grep -q '^FAIL runner_selftest_fail (exit status 1)$' "$tmp/out" ||
    fail "runner_selftest_fail not reported as a failure"
grep -q "^FAIL runner_selftest_hang (timed out after $scale s, having used [0-9.]* s of CPU)\$" "$tmp/out" ||
    fail "runner_selftest_hang not reported as 'timed out after $scale s, having used C s of CPU'"
grep -q '^ok runner_selftest_leftover ' "$tmp/out" || fail "runner_selftest_leftover did not pass"
[ "$(tail -n 1 "$tmp/out")" = "2 passed, 2 failed" ] || fail "last line is not '2 passed, 2 failed'"
# the hang: its timeout, the 2 s grace after SIGTERM, and slack for a loaded machine
limit=$((scale + 2 + 10))
[ $((t1 - t0)) -le "$limit" ] || fail "took $((t1 - t0)) s, more than $limit s"

# Both grandchildren (of the hang and of the leftover test) must be gone.  A
# zombie counts as gone: it waits for a parent (init) to collect it.
[ "$(wc -l <"$tmp/pids")" -eq 2 ] || fail "expected 2 grandchild pids, got: $(cat "$tmp/pids")"
for i in 1 2 3 4 5 6 7 8 9 10; do
    alive=
    while read -r pid; do
        st=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$pid/stat" 2>/dev/null)
        [ -n "$st" ] && [ "$st" != Z ] && alive="$alive $pid"
    done <"$tmp/pids"
    [ -z "$alive" ] && break
    sleep 0.2
done
[ -z "$alive" ] || fail "processes left by the tests are still running:$alive"
echo "runner_selftest: ok (a hanging test stopped after $((t1 - t0)) s, its processes killed)"
