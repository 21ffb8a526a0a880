/*
 * store.h - the object-store dispatch layer shared by every backend and
 * every consumer inside the library.  See store.c.
 */
#ifndef AKIDB_STORE_H
#define AKIDB_STORE_H

#include <stdint.h>
#include "common/env.h"

/* AKIDB_OK, or AKIDB_INVALID with a message naming the key's problem. */
int akidb__store_key_check(const char *key);

/* The local-directory backend (akidb_store_local_open) with the
 * permission bits of the objects it creates (file_mode & 0777; its
 * directories get the same plus x wherever r is set). */
int akidb__store_local_new(const char *dir, unsigned file_mode, akidb_store **out);

/* Destroy any store (akidb_store_close); NULL is a no-op. */
void akidb__store_destroy(akidb_store *s);

/* Backends call this when a server asked to wait (HTTP Retry-After); the
 * next retry of the calling thread waits at least that long. */
void akidb__store_hint_retry_after(uint32_t ms);

/* A consumer's view of a store: retries, a circuit breaker and metrics.
 * Time and sleep are injectable so tests never sleep for real. */
typedef struct akidb__store_policy {
    uint32_t max_attempts;      /* >= 1 */
    uint32_t base_ms, cap_ms;   /* full-jitter backoff: random(0, min(cap, base * 2^n)) */
    uint32_t breaker_failures;  /* consecutive failed calls that open the breaker; 0 = never */
    uint32_t breaker_open_ms;   /* how long it stays open before one probe (half-open) */
    int64_t (*now_ms)(void *ctx);
    void (*sleep_ms)(void *ctx, uint32_t ms);
    void *time_ctx;
} akidb__store_policy;

/* Defaults: 4 attempts, 50 ms base, 2 s cap, breaker after 5 failures for
 * 10 s, real clock and nanosleep. */
void akidb__store_policy_init(akidb__store_policy *p);

typedef struct akidb__store_disp akidb__store_disp;

/* The store is borrowed; metrics may be NULL. */
int akidb__disp_new(akidb_store *store, const akidb__store_policy *policy,
                    akidb__metrics *metrics, const akidb_allocator *alloc,
                    akidb__store_disp **out);
void akidb__disp_free(akidb__store_disp *d);

/* Same semantics as the akidb_store_* wrappers, plus the breaker: while it
 * is open, calls fail at once with AKIDB_UNAVAILABLE. */
int akidb__disp_put(akidb__store_disp *d, const char *key, const void *buf, size_t len);
int akidb__disp_get(akidb__store_disp *d, const char *key, uint64_t offset, uint64_t len,
                    void **buf_out, size_t *len_out);
int akidb__disp_size(akidb__store_disp *d, const char *key, uint64_t *size_out);
int akidb__disp_delete(akidb__store_disp *d, const char *key);

/* Read a whole object and check it against the expected size and CRC-32C;
 * a mismatch is retried like a transient failure (a corrupted read), and
 * is AKIDB_CORRUPT when it persists. */
int akidb__disp_get_checked(akidb__store_disp *d, const char *key, uint64_t expect_len,
                            uint32_t expect_crc32c, void **buf_out, size_t *len_out);

typedef enum akidb__breaker_state {
    AKIDB__BREAKER_CLOSED = 0, AKIDB__BREAKER_OPEN = 1, AKIDB__BREAKER_HALF_OPEN = 2
} akidb__breaker_state;
akidb__breaker_state akidb__disp_breaker(akidb__store_disp *d);

#endif
