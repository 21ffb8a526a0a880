/*
 * helpers.c - test support that needs the library (helpers.h has the
 * rest): every ASSERT_RC/ASSERT_OK failure prints the calling thread's
 * akidb_errmsg(), so a failing result code comes with the library's own
 * explanation.  akt_tool_path() finds the `akidb` tool of the same build;
 * akt_fork_child() and akt_wait_child() run a child process under a
 * deadline (the crash and lock tests).
 *
 * One constructor for the whole native test binary (every test file links
 * into it); the aarch64 build, which has no akidb_* entry points, does not
 * link this file, and its failures print the numbers only.
 */
#include "helpers.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "akidb.h"
#include "runner.h"

static const char *errmsg_detail(void)
{
    return akidb_errmsg(NULL);
}

__attribute__((constructor)) static void set_detail(void)
{
    akt_rc_detail_fn = errmsg_detail;
}

/* The tool of the build this binary belongs to (BUILD/test/akidb_test ->
 * BUILD/akidb: build-asan's tool under ASan), or $AKIDB_CLI; the test fails
 * when it is missing. */
const char *akt_tool_path(void)
{
    static char path[PATH_MAX];
    const char *env = getenv("AKIDB_CLI");
    if (env && env[0])
        return env;
    if (!path[0]) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
        ASSERT(n > 0);
        path[n] = '\0';
        char *slash = strrchr(path, '/');          /* BUILD/test/akidb_test */
        ASSERT(slash != NULL);
        *slash = '\0';
        slash = strrchr(path, '/');
        ASSERT(slash != NULL);
        strcpy(slash, "/akidb");
    }
    struct stat st;
    if (stat(path, &st) != 0)
        akt_fail(__FILE__, __LINE__, "the tool %s is missing (make builds it; or set AKIDB_CLI)",
                 path);
    return path;
}

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

pid_t akt_fork_child(void)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        akt_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
    if (pid == 0)
        prctl(PR_SET_PDEATHSIG, SIGKILL);
    return pid;
}

int akt_wait_child(pid_t pid, double secs, const char *what)
{
    const char *env = getenv("AKT_TIMEOUT_SCALE");
    double scale = env && atoi(env) > 0 ? atoi(env) : 1;
    double end = monotonic_s() + secs * scale;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR)
            akt_fail(__FILE__, __LINE__, "waitpid (%s): %s", what, strerror(errno));
        if (monotonic_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            akt_fail(__FILE__, __LINE__, "%s: still running after %g s (hang?); killed", what,
                     secs * scale);
        }
        usleep(500);
    }
}
