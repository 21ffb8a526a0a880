/*
 * runner.c - runs the registered tests, each in its own child process.
 *
 * Why fork: a crashing or hanging test must not take the others down, and
 * each test starts from a clean address space, so one test's leak or
 * corruption is reported against that test (LeakSanitizer runs at the
 * child's exit).  Usage:
 *
 *   akidb_test             run every test
 *   akidb_test NAME...     run the tests whose name contains any NAME
 *   akidb_test -l [NAME...] list the names of those tests, one per line
 *
 * Environment: AKT_NOFORK=1 runs tests in-process (for a debugger; no
 * timeouts), AKT_TIMEOUT_SCALE=N multiplies every timeout (slow sanitizers,
 * qemu), AKT_SELFTEST=1 adds the runner's own tests (runner_selftest_*,
 * run by test/runner_selftest.sh) and nothing else is changed.
 *
 * Timeouts are the parent's business.  Each child leads its own process
 * group; the parent waits for it with a deadline (SIGCHLD is blocked and
 * collected with sigtimedwait, so no polling and no lost wake-up) and, when
 * the deadline passes, sends SIGTERM to the whole group, waits a short
 * grace period (a test may remove a mount in its handler) and then
 * SIGKILLs the group.  A test cannot extend its own time the way it could
 * re-arm an alarm(), and processes it forked die with it.  A test that
 * needs more time says so when it registers (TEST_TIMEOUT, or
 * TEST_TIMEOUT_FN for a time computed from the environment).  After a
 * child exits, whatever it left running in its group is killed as well.
 * A timeout is reported as "timed out after N s, having used C s of CPU":
 * C near N is a hang or a slow test, C far below N a starved machine.
 */
#define _GNU_SOURCE
#include "runner.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct akt_test {
    const char *name;
    akt_fn fn;
    int timeout_s;
    int (*timeout_fn)(void);    /* when set, asked (in the parent) instead */
} akt_test;

static akt_test *tests;
static size_t n_tests, cap_tests;
const char *akt_dir;
const char *(*akt_rc_detail_fn)(void);

/* Seconds between SIGTERM and SIGKILL when a test times out. */
#define AKT_KILL_GRACE_S 2

/* The process group of the running test, for the SIGINT/SIGTERM forwarder.
 * Written only by the main flow, read by the handler. */
static volatile sig_atomic_t current_pgid;

static void add_test(const char *name, akt_fn fn, int timeout_s, int (*timeout_fn)(void))
{
    if (n_tests == cap_tests) {
        cap_tests = cap_tests ? cap_tests * 2 : 64;
        tests = realloc(tests, cap_tests * sizeof *tests);
        if (!tests) { perror("akt_register"); abort(); }
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    tests[n_tests].timeout_s = timeout_s;
    tests[n_tests].timeout_fn = timeout_fn;
    n_tests++;
}

void akt_register(const char *name, akt_fn fn, int timeout_s)
{
    add_test(name, fn, timeout_s, NULL);
}

void akt_register_fn(const char *name, akt_fn fn, int (*timeout_fn)(void))
{
    add_test(name, fn, AKT_DEFAULT_TIMEOUT, timeout_fn);
}

void akt_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "  %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    exit(1);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_tests(const void *a, const void *b)
{
    const akt_test *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static int selected(const char *name, int argc, char **argv)
{
    if (argc <= 0)
        return 1;
    for (int i = 0; i < argc; i++)
        if (strstr(name, argv[i]))
            return 1;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Ctrl-C or a TERM to the runner: the test child leads its own group, so
 * the terminal's signal does not reach it; take it down, then die of the
 * same signal. */
static void forward_and_die(int sig)
{
    pid_t pg = (pid_t)current_pgid;
    if (pg > 0)
        kill(-pg, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A SIGCHLD handler that does nothing: the signal stays blocked and is
 * collected by sigtimedwait; the handler only makes sure it is never
 * discarded as "ignored by default". */
static void on_sigchld(int sig) { (void)sig; }

/* Wait until child `pid` has exited (it stays a zombie: WNOWAIT), or until
 * `deadline` (CLOCK_MONOTONIC seconds) passes.  Returns 1 if it exited. */
static int wait_exit_until(pid_t pid, double deadline)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            return 1;
        double left = deadline - now_s();
        if (left <= 0)
            return 0;
        struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
        sigtimedwait(&chld, NULL, &ts);     /* EAGAIN / EINTR: check again */
    }
}

/* Run one test; returns 1 on pass.  `why` receives the reason on failure. */
static int run_one(const akt_test *t, int scale, const sigset_t *child_mask,
                   char *why, size_t why_len)
{
    char tmpl[] = "/tmp/akidb-test-XXXXXX";
    if (!mkdtemp(tmpl)) {
        snprintf(why, why_len, "mkdtemp: %s", strerror(errno));
        return 0;
    }
    akt_dir = tmpl;
    if (getenv("AKT_NOFORK")) {
        t->fn();
        remove_tree(tmpl);
        return 1;
    }
    int timeout_s = (t->timeout_fn ? t->timeout_fn() : t->timeout_s) * scale;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_len, "fork: %s", strerror(errno));
        remove_tree(tmpl);
        return 0;
    }
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, child_mask, NULL);
        t->fn();
        exit(0);
    }
    /* Both sides set the group, so it exists before either relies on it. */
    if (setpgid(pid, pid) != 0 && errno != EACCES && errno != ESRCH)
        fprintf(stderr, "runner: setpgid(%d): %s\n", (int)pid, strerror(errno));
    current_pgid = pid;

    int timed_out = 0;
    if (!wait_exit_until(pid, now_s() + timeout_s)) {
        timed_out = 1;
        kill(-pid, SIGTERM);
        kill(pid, SIGTERM);
        if (!wait_exit_until(pid, now_s() + AKT_KILL_GRACE_S)) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
        }
    }
    /* The child is a zombie now (or about to be), so its pid, which names
     * the group, cannot be reused yet: kill what the test left running. */
    kill(-pid, SIGKILL);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {}
    current_pgid = 0;
    remove_tree(tmpl);
    if (timed_out) {
        /* The CPU it used tells a hang or a slow test (CPU close to the
         * timeout) from a starved one on a loaded machine (far below). */
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        snprintf(why, why_len, "timed out after %d s, having used %.1f s of CPU",
                 timeout_s, cpu);
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 1;
    if (WIFSIGNALED(status))
        snprintf(why, why_len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(why, why_len, "exit status %d", WEXITSTATUS(status));
    return 0;
}

/* ---- the runner's own tests (AKT_SELFTEST=1; see test/runner_selftest.sh) */

/* Fork a process that sleeps forever and write its pid to
 * $AKT_SELFTEST_PIDFILE, so the script can check that it was killed. */
static void selftest_leave_sleeper(void)
{
    pid_t p = fork();
    if (p == 0) {
        for (;;)
            pause();
    }
    const char *f = getenv("AKT_SELFTEST_PIDFILE");
    FILE *fp = f ? fopen(f, "a") : NULL;
    if (fp) {
        fprintf(fp, "%d\n", (int)p);
        fclose(fp);
    }
}

static void selftest_pass(void) {}

static void selftest_fail(void) { ASSERT_EQ(1, 2); }

/* Everything a test could do to outlive its timeout with alarm(): ignore
 * SIGALRM and SIGTERM, re-arm the alarm, and leave a grandchild behind. */
static void selftest_hang(void)
{
    selftest_leave_sleeper();
    signal(SIGALRM, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    for (;;) {
        alarm(1000);
        sleep(1);
    }
}

/* Passes, but leaves a process behind: it must not survive the test. */
static void selftest_leftover(void) { selftest_leave_sleeper(); }

static int selftest_timeout(void) { return 1; }

static void register_selftests(void)
{
    akt_register("runner_selftest_pass", selftest_pass, 5);
    akt_register("runner_selftest_fail", selftest_fail, 5);
    akt_register_fn("runner_selftest_hang", selftest_hang, selftest_timeout);
    akt_register("runner_selftest_leftover", selftest_leftover, 5);
}

int main(int argc, char **argv)
{
    const char *st = getenv("AKT_SELFTEST");
    if (st && strcmp(st, "1") == 0)
        register_selftests();
    qsort(tests, n_tests, sizeof *tests, cmp_tests);
    if (argc >= 2 && strcmp(argv[1], "-l") == 0) {
        for (size_t i = 0; i < n_tests; i++)
            if (selected(tests[i].name, argc - 2, argv + 2))
                printf("%s\n", tests[i].name);
        return 0;
    }
    int scale = 1;
    const char *s = getenv("AKT_TIMEOUT_SCALE");
    if (s && atoi(s) > 0)
        scale = atoi(s);

    /* SIGCHLD stays blocked in the runner (see wait_exit_until); children
     * get the mask the runner started with. */
    sigset_t chld, child_mask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &child_mask);
    signal(SIGCHLD, on_sigchld);
    signal(SIGINT, forward_and_die);
    signal(SIGTERM, forward_and_die);

    unsigned passed = 0, failed = 0;
    for (size_t i = 0; i < n_tests; i++) {
        if (!selected(tests[i].name, argc - 1, argv + 1))
            continue;
        char why[256] = "";
        double t0 = now_s();
        if (run_one(&tests[i], scale, &child_mask, why, sizeof why)) {
            printf("ok %s (%.2f s)\n", tests[i].name, now_s() - t0);
            passed++;
        } else {
            printf("FAIL %s (%s)\n", tests[i].name, why);
            failed++;
        }
        fflush(stdout);
    }
    if (passed + failed == 0) {
        fprintf(stderr, "no test matched\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
