/*
 * helpers.c - test support that needs the library (helpers.h has the
 * rest): every ASSERT_RC/ASSERT_OK failure prints the calling thread's
 * akidb_errmsg(), so a failing result code comes with the library's own
 * explanation.
 *
 * One constructor for the whole native test binary (every test file links
 * into it); the aarch64 build, which has no akidb_* entry points, does not
 * link this file, and its failures print the numbers only.
 */
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
