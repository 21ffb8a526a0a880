/*
 * uploader.h - parallel uploads to the object store, and the persistent
 * dead-letter queue of background uploads that failed.  See uploader.c.
 */
#ifndef AKIDB_UPLOADER_H
#define AKIDB_UPLOADER_H

#include <stddef.h>
#include <stdint.h>
#include "common/env.h"
#include "engine/catalog.h"
#include "store/store.h"

typedef struct akidb__uploader akidb__uploader;

typedef struct akidb__uploader_config {
    uint32_t concurrency;       /* uploads in flight at once (worker threads) */
    uint32_t max_attempts;      /* a dead letter becomes permanent after this many */
    uint32_t backoff_base_ms;   /* dead-letter retry n waits min(cap, base * 2^n) */
    uint32_t backoff_cap_ms;
    int64_t (*now_us)(void *ctx);
    void *clock_ctx;
} akidb__uploader_config;

/* disp and meta are borrowed for the uploader's lifetime. */
int akidb__uploader_new(const akidb__env *env, akidb__store_disp *disp, akidb__catalog *meta,
                        const akidb__uploader_config *cfg, akidb__uploader **out);
/* Finishes queued uploads, then stops and joins the workers. */
void akidb__uploader_free(akidb__uploader *u);

/* Upload n in-memory objects, up to `concurrency` at once, and wait for
 * all.  rcs (n entries) receives each result; the return value is
 * AKIDB_OK when all succeeded, else the first failure's code (message of
 * that failure).  Buffers are borrowed until the call returns. */
int akidb__uploader_put_many(akidb__uploader *u, size_t n, const char *const *keys,
                             const void *const *bufs, const size_t *lens, int *rcs);

/* Queue a background upload of the local file `path` as `key`.  If it
 * fails (after the dispatch layer's retries), it becomes a dead letter. */
int akidb__uploader_submit_file(akidb__uploader *u, const char *key, const char *path);

/* Wait until no background upload is queued or running. */
void akidb__uploader_drain(akidb__uploader *u);

/* One retry cycle: up to `limit` due dead letters are uploaded again; a
 * success removes the entry, a failure records the attempt, reschedules
 * with backoff, or marks it permanent after max_attempts.  Counts go to
 * the out-parameters (either may be NULL). */
int akidb__uploader_dlq_cycle(akidb__uploader *u, uint32_t limit, uint32_t *n_tried,
                              uint32_t *n_ok);

/* Retry dead letter `dlq_id` now (0 = every entry, permanent ones too). */
int akidb__uploader_dlq_retry(akidb__uploader *u, int64_t dlq_id);

#endif
