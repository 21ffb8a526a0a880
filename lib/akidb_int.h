/*
 * akidb_int.h - definitions shared by the files of lib/ (never installed).
 *
 * Errors are raised in exactly one way, through akidb__err(), which records
 * the calling thread's detailed message and returns the code, so
 *     return akidb__err(AKIDB_INVALID, "collection %s: dim %u out of range", ...);
 * is the only pattern, and there is one place for a breakpoint.
 */
#ifndef AKIDB_INT_H
#define AKIDB_INT_H

#include <stdint.h>
#include "akidb.h"

#if defined(__GNUC__)
#  define AKIDB__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define AKIDB__PRINTF(f, a)
#endif

/* Record rc and a formatted message for the calling thread; returns rc. */
int akidb__err(int rc, const char *fmt, ...) AKIDB__PRINTF(2, 3);

/* Forget the calling thread's last error (start of every public call). */
void akidb__err_clear(void);

/* Write a printable, truncated rendering of untrusted text `s` into buf:
 * non-printable bytes become \xNN, and more than `max` bytes end in "...".
 * Returns buf. */
const char *akidb__quote(char *buf, size_t buf_len, const char *s, size_t max);

#endif
