/*
 * helpers.c - test support that needs the library (helpers.h has the
 * rest): every ASSERT_RC/ASSERT_OK failure prints the calling thread's
 * akidb_errmsg(), so a failing result code comes with the library's own
 * explanation.  akt_tool_path() finds the `akidb` tool of the same build.
 *
 * One constructor for the whole native test binary (every test file links
 * into it); the aarch64 build, which has no akidb_* entry points, does not
 * link this file, and its failures print the numbers only.
 */
#include "helpers.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
