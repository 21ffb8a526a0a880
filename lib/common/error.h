/*
 * error.h - how every file of lib/ reports errors and logs.
 *
 * Errors are raised in exactly one way, through akidb__err(), which records
 * the calling thread's detailed message and returns the code, so
 *     return akidb__err(AKIDB_INVALID, "collection %s: dim %u out of range", ...);
 * is the only pattern, and there is one place for a breakpoint.  Messages
 * are thread-local: threads sharing one handle never see each other's.
 *
 * This is the bottom of the library: it depends on nothing but the public
 * header and libc, so every layer may use it (see lib/README.md).
 */
#ifndef AKIDB_ERROR_H
#define AKIDB_ERROR_H

#include <stdarg.h>
#include <stddef.h>
#include "akidb.h"

#if defined(__GNUC__)
#  define AKIDB__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define AKIDB__PRINTF(f, a)
#endif

/* Record rc and a formatted message for the calling thread; returns rc. */
int akidb__err(int rc, const char *fmt, ...) AKIDB__PRINTF(2, 3);
/* The same with a va_list; fmt NULL records an empty message. */
int akidb__err_v(int rc, const char *fmt, va_list ap) AKIDB__PRINTF(2, 0);

/* Forget the calling thread's last error (start of every public call). */
void akidb__err_clear(void);

/* Whether the calling thread has an error message since the last clear. */
int akidb__err_is_set(void);

/* The calling thread's last message, or "not an error" after a success.
 * Valid until the thread's next library call. */
const char *akidb__errmsg(void);

/* Static text and name of a result code (the public akidb_errstr and
 * akidb_errname). */
const char *akidb__errstr(int rc);
const char *akidb__errname(int rc);

/* Length of the character at s: 1 for ASCII, 2..4 for a valid UTF-8
 * sequence of a printable-range code point, 0 for anything invalid
 * (overlong, surrogate, out of range, C1 control, truncated). */
size_t akidb__utf8_len(const unsigned char *s);

/* Whether s[0..len) is entirely valid UTF-8 in the sense of
 * akidb__utf8_len (no NUL, no invalid sequence).  *bad_at receives the
 * offset of the first bad byte when it is not (may be NULL). */
int akidb__utf8_valid(const char *s, size_t len, size_t *bad_at);

/* Write a printable, truncated rendering of untrusted text `s` into buf:
 * non-printable bytes become \xNN, and more than `max` bytes end in "...".
 * Returns buf. */
const char *akidb__quote(char *buf, size_t buf_len, const char *s, size_t max);

#endif
