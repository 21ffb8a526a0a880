/*
 * runner.h - the test harness shared by every test/test_<subsys>.c file.
 *
 * Each test is a function declared with TEST(name); a constructor registers
 * it, so adding a test needs no list to maintain.  The runner (runner.c)
 * forks one child per test with a timeout (enforced by the parent, which
 * kills the child's process group), gives it a fresh temporary
 * directory (akt_dir), prints `ok NAME` or `FAIL NAME (why)`, and ends with
 * the line `N passed, N failed`.  A failed assertion prints the file, line,
 * the expression and both values, then exits the child with status 1.
 *
 * The ASSERT_* macros evaluate each argument exactly once.
 */
#ifndef AKIDB_TEST_RUNNER_H
#define AKIDB_TEST_RUNNER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

typedef void (*akt_fn)(void);

void akt_register(const char *name, akt_fn fn, int timeout_s);
/* Like akt_register, but the timeout is timeout_fn()'s result, asked in the
 * runner's process right before the test starts (e.g. from the
 * environment). */
void akt_register_fn(const char *name, akt_fn fn, int (*timeout_fn)(void));
void akt_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

/* The current test's private temporary directory (removed afterwards). */
extern const char *akt_dir;

/* Default per-test timeout in seconds; TEST_TIMEOUT overrides it. */
#define AKT_DEFAULT_TIMEOUT 60

#define TEST_TIMEOUT(name, secs)                                            \
    static void test_##name(void);                                          \
    __attribute__((constructor)) static void akt_reg_##name(void)           \
    { akt_register(#name, test_##name, (secs)); }                           \
    static void test_##name(void)

/* A timeout the test computes (in seconds, before AKT_TIMEOUT_SCALE):
 * `static int my_timeout(void)` is called by the runner, not by the test,
 * because a test cannot extend its own time once it runs. */
#define TEST_TIMEOUT_FN(name, timeout_fn)                                   \
    static void test_##name(void);                                          \
    __attribute__((constructor)) static void akt_reg_##name(void)           \
    { akt_register_fn(#name, test_##name, (timeout_fn)); }                  \
    static void test_##name(void)

#define TEST(name) TEST_TIMEOUT(name, AKT_DEFAULT_TIMEOUT)

#define ASSERT(cond)                                                        \
    do { if (!(cond)) akt_fail(__FILE__, __LINE__, "assertion failed: %s", #cond); } while (0)

#define ASSERT_EQ(a, b)                                                     \
    do { long long akt_a_ = (long long)(a), akt_b_ = (long long)(b);        \
         if (akt_a_ != akt_b_)                                              \
             akt_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld",         \
                      #a, #b, akt_a_, akt_b_); } while (0)

#define ASSERT_NE(a, b)                                                     \
    do { long long akt_a_ = (long long)(a), akt_b_ = (long long)(b);        \
         if (akt_a_ == akt_b_)                                              \
             akt_fail(__FILE__, __LINE__, "%s != %s: both %lld",            \
                      #a, #b, akt_a_); } while (0)

#define ASSERT_GE(a, b)                                                     \
    do { double akt_a_ = (double)(a), akt_b_ = (double)(b);                 \
         if (!(akt_a_ >= akt_b_))                                           \
             akt_fail(__FILE__, __LINE__, "%s >= %s: %g < %g",              \
                      #a, #b, akt_a_, akt_b_); } while (0)

#define ASSERT_LE(a, b)                                                     \
    do { double akt_a_ = (double)(a), akt_b_ = (double)(b);                 \
         if (!(akt_a_ <= akt_b_))                                           \
             akt_fail(__FILE__, __LINE__, "%s <= %s: %g > %g",              \
                      #a, #b, akt_a_, akt_b_); } while (0)

/* |a - b| <= eps * max(1, |a|, |b|): a relative check for floats. */
#define ASSERT_NEAR(a, b, eps)                                              \
    do { double akt_a_ = (double)(a), akt_b_ = (double)(b);                 \
         double akt_s_ = fmax(1.0, fmax(fabs(akt_a_), fabs(akt_b_)));       \
         if (!(fabs(akt_a_ - akt_b_) <= (eps) * akt_s_))                    \
             akt_fail(__FILE__, __LINE__, "%s ~= %s: %.9g vs %.9g (eps %g)",\
                      #a, #b, akt_a_, akt_b_, (double)(eps)); } while (0)

#define ASSERT_STR_EQ(a, b)                                                 \
    do { const char *akt_a_ = (a), *akt_b_ = (b);                           \
         if (akt_a_ == NULL || akt_b_ == NULL || strcmp(akt_a_, akt_b_) != 0) \
             akt_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"",     \
                      #a, #b, akt_a_ ? akt_a_ : "(null)",                   \
                      akt_b_ ? akt_b_ : "(null)"); } while (0)

/* Result-code checks: print the code's name when they fail.  They need
 * akidb.h, which tests of the cross-compiled kernels do not include, so the
 * message carries the number and the caller's text only. */
#define ASSERT_RC(rc, expected)                                             \
    do { int akt_r_ = (rc), akt_e_ = (expected);                            \
         if (akt_r_ != akt_e_)                                              \
             akt_fail(__FILE__, __LINE__, "%s: got rc %d, expected %d (%s)",\
                      #rc, akt_r_, akt_e_, akt_rc_detail());                \
    } while (0)

#define ASSERT_OK(rc) ASSERT_RC(rc, 0)

/* Extra text for ASSERT_RC failures; helpers.c sets it to a function
 * returning akidb_errmsg(NULL) in the native build.  Defaults to "". */
extern const char *(*akt_rc_detail_fn)(void);
static inline const char *akt_rc_detail(void)
{ return akt_rc_detail_fn ? akt_rc_detail_fn() : ""; }

#endif
