/*
 * runner.c - runs the registered tests, each in its own child process.
 *
 * Why fork: a crashing or hanging test must not take the others down, and
 * each test starts from a clean address space, so one test's leak or
 * corruption is reported against that test (LeakSanitizer runs at the
 * child's exit).  Usage:
 *
 *   akidb_test            run every test
 *   akidb_test NAME...    run the tests whose name contains any NAME
 *   akidb_test -l         list test names
 *
 * Environment: AKT_NOFORK=1 runs tests in-process (for a debugger),
 * AKT_TIMEOUT_SCALE=N multiplies every timeout (slow sanitizers, qemu).
 */
#define _GNU_SOURCE
#include "runner.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct akt_test {
    const char *name;
    akt_fn fn;
    int timeout_s;
} akt_test;

static akt_test *tests;
static size_t n_tests, cap_tests;
const char *akt_dir;
const char *(*akt_rc_detail_fn)(void);

void akt_register(const char *name, akt_fn fn, int timeout_s)
{
    if (n_tests == cap_tests) {
        cap_tests = cap_tests ? cap_tests * 2 : 64;
        tests = realloc(tests, cap_tests * sizeof *tests);
        if (!tests) { perror("akt_register"); abort(); }
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    tests[n_tests].timeout_s = timeout_s;
    n_tests++;
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
    if (argc <= 1)
        return 1;
    for (int i = 1; i < argc; i++)
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

/* Run one test; returns 1 on pass.  `why` receives the reason on failure. */
static int run_one(const akt_test *t, int scale, char *why, size_t why_len)
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
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_len, "fork: %s", strerror(errno));
        remove_tree(tmpl);
        return 0;
    }
    if (pid == 0) {
        alarm((unsigned)(t->timeout_s * scale));
        t->fn();
        exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    remove_tree(tmpl);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 1;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        snprintf(why, why_len, "timeout after %d s", t->timeout_s * scale);
    else if (WIFSIGNALED(status))
        snprintf(why, why_len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(why, why_len, "exit status %d", WEXITSTATUS(status));
    return 0;
}

int main(int argc, char **argv)
{
    qsort(tests, n_tests, sizeof *tests, cmp_tests);
    if (argc == 2 && strcmp(argv[1], "-l") == 0) {
        for (size_t i = 0; i < n_tests; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    int scale = 1;
    const char *s = getenv("AKT_TIMEOUT_SCALE");
    if (s && atoi(s) > 0)
        scale = atoi(s);

    unsigned passed = 0, failed = 0;
    for (size_t i = 0; i < n_tests; i++) {
        if (!selected(tests[i].name, argc, argv))
            continue;
        char why[256] = "";
        double t0 = now_s();
        if (run_one(&tests[i], scale, why, sizeof why)) {
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
