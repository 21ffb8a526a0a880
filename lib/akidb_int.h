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
#include "fault.h"
#include "metrics.h"

#if defined(__GNUC__)
#  define AKIDB__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define AKIDB__PRINTF(f, a)
#endif

/* Record rc and a formatted message for the calling thread; returns rc. */
int akidb__err(int rc, const char *fmt, ...) AKIDB__PRINTF(2, 3);

/* Forget the calling thread's last error (start of every public call). */
void akidb__err_clear(void);

/* Whether the calling thread has an error message since the last clear. */
int akidb__err_is_set(void);

/* Length of the character at s: 1 for ASCII, 2..4 for a valid UTF-8
 * sequence of a printable-range code point, 0 for anything invalid
 * (overlong, surrogate, out of range, C1 control, truncated). */
size_t akidb__utf8_len(const unsigned char *s);

/* Write a printable, truncated rendering of untrusted text `s` into buf:
 * non-printable bytes become \xNN, and more than `max` bytes end in "...".
 * Returns buf. */
const char *akidb__quote(char *buf, size_t buf_len, const char *s, size_t max);

/* What every subsystem of one handle shares: the allocator, metrics,
 * logging, durability settings and the test-only fault hook.  Owned by the
 * akidb handle; read-only after open except for the metrics (atomic) and
 * the fault hook (set only while the handle is idle). */
typedef struct akidb__env {
    akidb_allocator alloc;
    akidb__metrics metrics;
    akidb_sync_mode sync_mode;
    uint64_t checkpoint_bytes;
    void (*log_fn)(void *ctx, akidb_log_level level, const char *msg);
    void *log_ctx;
    akidb__fault_fn fault_fn;
    void *fault_ctx;
} akidb__env;

/* Send a formatted message to the log callback, if there is one. */
void akidb__log(const akidb__env *env, akidb_log_level level, const char *fmt, ...)
    AKIDB__PRINTF(3, 4);

/* 0 to carry on, or the errno value a test wants injected at `point`. */
static inline int akidb__fault(const akidb__env *env, akidb__fault_point point)
{
    return env->fault_fn ? env->fault_fn(env->fault_ctx, point) : 0;
}

#endif
