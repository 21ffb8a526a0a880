/*
 * uploader.c - uploads to the object store, many at a time, and the
 * dead-letter queue for background uploads that keep failing.
 *
 * Why a pool: against S3 each PUT is a round trip (milliseconds to tens of
 * milliseconds), so uploading the many small objects of a tier move one
 * after another wastes the link; `concurrency` worker threads keep that
 * many requests in flight.  Both kinds of job share the pool:
 *   - foreground batches (put_many): the caller waits for the whole batch;
 *   - background files (submit_file): fire and forget.  A background
 *     upload that still fails after the dispatch layer's retries is not
 *     dropped: it becomes a row in the catalog's dead_letters table (key,
 *     source file, reason, attempts), which survives restarts.
 *
 * Dead letters are retried in cycles (akidb__uploader_dlq_cycle, run by
 * the handle's background thread or by a test), at most `limit` per cycle
 * so a long queue cannot monopolise the store, with exponential backoff
 * per entry; after max_attempts an entry is marked permanent and stays
 * visible (akidb_dlq_list) until an operator retries or purges it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/file.h"
#include "engine/uploader.h"

typedef struct batch {
    pthread_mutex_t lock;
    pthread_cond_t done;
    size_t remaining;
    int *rcs;
    int first_rc;
    char first_msg[512];
} batch;

typedef struct job {
    struct job *next;
    const char *key;            /* borrowed (batch) or owned (file) */
    const void *buf;
    size_t len;
    char *path;                 /* file jobs: owned */
    char *owned_key;
    batch *batch;
    size_t index;
} job;

struct akidb__uploader {
    const akidb__env *env;
    akidb__store_disp *disp;
    akidb__catalog *meta;
    akidb__uploader_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t work;        /* a job was queued, or stopping */
    pthread_cond_t idle;        /* background work finished */
    job *head, *tail;
    size_t background;          /* file jobs queued or running */
    int stopping;
    pthread_t *threads;
    uint32_t n_threads;
    pthread_mutex_t cycle_lock; /* one dead-letter cycle at a time */
};

static int64_t now_us(const akidb__uploader *u)
{
    return u->cfg.now_us(u->cfg.clock_ctx);
}

/* Read a whole local file into an akidb_malloc buffer. */
static int read_file(const char *path, void **buf_out, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return akidb__err(errno == ENOENT ? AKIDB_NOTFOUND : AKIDB_IOERR,
                          "upload source %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return akidb__err(AKIDB_IOERR, "upload source %s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    char *buf = akidb__out_malloc(len + 1);
    if (!buf) {
        close(fd);
        return akidb__err(AKIDB_NOMEM, "upload source %s: out of memory for %zu bytes", path,
                          len);
    }
    ssize_t got = akidb__pread_full(fd, buf, len, 0);
    close(fd);
    if (got < 0 || (size_t)got != len) {
        akidb__out_free(buf);
        return akidb__err(AKIDB_IOERR, "upload source %s: short read", path);
    }
    *buf_out = buf;
    *len_out = len;
    return AKIDB_OK;
}

static int upload_file(akidb__uploader *u, const char *key, const char *path)
{
    void *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len);
    if (rc)
        return rc;
    rc = akidb__disp_put(u->disp, key, buf, len);
    akidb__out_free(buf);
    return rc;
}

static int64_t backoff_us(const akidb__uploader *u, uint32_t attempts)
{
    uint64_t ms = (uint64_t)u->cfg.backoff_base_ms << (attempts < 30 ? attempts : 30);
    if (ms > u->cfg.backoff_cap_ms)
        ms = u->cfg.backoff_cap_ms;
    return (int64_t)ms * 1000;
}

static void dead_letter(akidb__uploader *u, const char *key, const char *path, const char *why)
{
    akidb__catalog_dlq e;
    memset(&e, 0, sizeof e);
    e.object_key = (char *)key;
    e.source_path = (char *)path;
    e.reason = (char *)why;
    e.attempts = 1;
    e.permanent = u->cfg.max_attempts <= 1;
    e.created_at = now_us(u);
    e.next_attempt_at = e.created_at + backoff_us(u, 1);
    int64_t id = 0;
    if (akidb__catalog_dlq_add(u->meta, &e, &id) == AKIDB_OK) {
        akidb__metric_add((akidb__metrics *)&u->env->metrics, AKIDB__M_DLQ_ADDED, 1);
        akidb__log(u->env, AKIDB_LOG_WARN, "upload of %s failed, queued for retry as dead "
                   "letter %lld: %s", key, (long long)id, why);
    } else {
        /* The catalog refused too: the source file is still there, so the
         * loss is of the reminder, not of data.  Say so loudly. */
        akidb__log(u->env, AKIDB_LOG_ERROR, "upload of %s (from %s) failed and could not be "
                   "recorded as a dead letter: %s", key, path, akidb__errmsg());
    }
}

static void run_job(akidb__uploader *u, job *j)
{
    akidb__err_clear();
    if (j->batch) {
        int rc = akidb__disp_put(u->disp, j->key, j->buf, j->len);
        batch *b = j->batch;
        pthread_mutex_lock(&b->lock);
        b->rcs[j->index] = rc;
        if (rc && !b->first_rc) {
            b->first_rc = rc;
            snprintf(b->first_msg, sizeof b->first_msg, "%s", akidb__errmsg());
        }
        if (--b->remaining == 0)
            pthread_cond_broadcast(&b->done);
        pthread_mutex_unlock(&b->lock);
        return;
    }
    int rc = upload_file(u, j->key, j->path);
    if (rc != AKIDB_OK)
        dead_letter(u, j->key, j->path, akidb__errmsg());
    else
        akidb__metric_add((akidb__metrics *)&u->env->metrics, AKIDB__M_UPLOADS, 1);
    akidb__free(&u->env->alloc, j->owned_key);
    akidb__free(&u->env->alloc, j->path);
    akidb__free(&u->env->alloc, j);
    pthread_mutex_lock(&u->lock);
    if (--u->background == 0)
        pthread_cond_broadcast(&u->idle);
    pthread_mutex_unlock(&u->lock);
}

static void *worker_main(void *arg)
{
    akidb__uploader *u = arg;
    pthread_mutex_lock(&u->lock);
    for (;;) {
        while (!u->head && !u->stopping)
            pthread_cond_wait(&u->work, &u->lock);
        if (!u->head)
            break;   /* stopping, and the queue is empty */
        job *j = u->head;
        u->head = j->next;
        if (!u->head)
            u->tail = NULL;
        pthread_mutex_unlock(&u->lock);
        run_job(u, j);
        pthread_mutex_lock(&u->lock);
    }
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

static int64_t real_now_us(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int akidb__uploader_new(const akidb__env *env, akidb__store_disp *disp, akidb__catalog *meta,
                        const akidb__uploader_config *cfg, akidb__uploader **out)
{
    *out = NULL;
    akidb__uploader *u = akidb__calloc(&env->alloc, 1, sizeof *u);
    if (!u)
        return akidb__err(AKIDB_NOMEM, "uploader: out of memory");
    u->env = env;
    u->disp = disp;
    u->meta = meta;
    u->cfg = *cfg;
    if (!u->cfg.concurrency)
        u->cfg.concurrency = 16;
    if (!u->cfg.max_attempts)
        u->cfg.max_attempts = 5;
    if (!u->cfg.backoff_base_ms)
        u->cfg.backoff_base_ms = 1000;
    if (!u->cfg.backoff_cap_ms)
        u->cfg.backoff_cap_ms = 3600 * 1000;
    if (!u->cfg.now_us)
        u->cfg.now_us = real_now_us;
    pthread_mutex_init(&u->lock, NULL);
    pthread_mutex_init(&u->cycle_lock, NULL);
    pthread_cond_init(&u->work, NULL);
    pthread_cond_init(&u->idle, NULL);
    u->threads = akidb__calloc(&env->alloc, u->cfg.concurrency, sizeof *u->threads);
    if (!u->threads) {
        akidb__uploader_free(u);
        return akidb__err(AKIDB_NOMEM, "uploader: out of memory");
    }
    for (; u->n_threads < u->cfg.concurrency; u->n_threads++)
        if (pthread_create(&u->threads[u->n_threads], NULL, worker_main, u) != 0) {
            akidb__uploader_free(u);
            return akidb__err(AKIDB_ERROR, "uploader: cannot start worker threads");
        }
    *out = u;
    return AKIDB_OK;
}

void akidb__uploader_free(akidb__uploader *u)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->lock);
    u->stopping = 1;
    pthread_cond_broadcast(&u->work);
    pthread_mutex_unlock(&u->lock);
    for (uint32_t i = 0; i < u->n_threads; i++)
        pthread_join(u->threads[i], NULL);
    pthread_mutex_destroy(&u->lock);
    pthread_mutex_destroy(&u->cycle_lock);
    pthread_cond_destroy(&u->work);
    pthread_cond_destroy(&u->idle);
    akidb__free(&u->env->alloc, u->threads);
    akidb__free(&u->env->alloc, u);
}

static void enqueue(akidb__uploader *u, job *first, job *last)
{
    pthread_mutex_lock(&u->lock);
    if (u->tail)
        u->tail->next = first;
    else
        u->head = first;
    u->tail = last;
    pthread_cond_broadcast(&u->work);
    pthread_mutex_unlock(&u->lock);
}

int akidb__uploader_put_many(akidb__uploader *u, size_t n, const char *const *keys,
                             const void *const *bufs, const size_t *lens, int *rcs)
{
    if (n == 0)
        return AKIDB_OK;
    job *jobs = akidb__calloc(&u->env->alloc, n, sizeof *jobs);
    if (!jobs)
        return akidb__err(AKIDB_NOMEM, "uploader: out of memory for %zu uploads", n);
    batch b;
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.done, NULL);
    b.remaining = n;
    b.rcs = rcs;
    for (size_t i = 0; i < n; i++) {
        jobs[i].key = keys[i];
        jobs[i].buf = bufs[i];
        jobs[i].len = lens[i];
        jobs[i].batch = &b;
        jobs[i].index = i;
        jobs[i].next = i + 1 < n ? &jobs[i + 1] : NULL;
    }
    enqueue(u, &jobs[0], &jobs[n - 1]);
    pthread_mutex_lock(&b.lock);
    while (b.remaining)
        pthread_cond_wait(&b.done, &b.lock);
    pthread_mutex_unlock(&b.lock);
    pthread_mutex_destroy(&b.lock);
    pthread_cond_destroy(&b.done);
    akidb__free(&u->env->alloc, jobs);
    if (b.first_rc)
        return akidb__err(b.first_rc, "%s", b.first_msg);
    return AKIDB_OK;
}

int akidb__uploader_submit_file(akidb__uploader *u, const char *key, const char *path)
{
    int rc = akidb__store_key_check(key);
    if (rc)
        return rc;
    job *j = akidb__calloc(&u->env->alloc, 1, sizeof *j);
    char *k = akidb__strdup(&u->env->alloc, key);
    char *p = akidb__strdup(&u->env->alloc, path);
    if (!j || !k || !p) {
        akidb__free(&u->env->alloc, j);
        akidb__free(&u->env->alloc, k);
        akidb__free(&u->env->alloc, p);
        return akidb__err(AKIDB_NOMEM, "uploader: out of memory");
    }
    j->key = j->owned_key = k;
    j->path = p;
    pthread_mutex_lock(&u->lock);
    u->background++;
    pthread_mutex_unlock(&u->lock);
    enqueue(u, j, j);
    return AKIDB_OK;
}

void akidb__uploader_drain(akidb__uploader *u)
{
    pthread_mutex_lock(&u->lock);
    while (u->background)
        pthread_cond_wait(&u->idle, &u->lock);
    pthread_mutex_unlock(&u->lock);
}

/* ---- dead letters ---------------------------------------------------- */

typedef struct cycle_ctx {
    akidb__uploader *u;
    uint32_t tried, ok;
} cycle_ctx;

static int retry_entry(void *arg, const akidb__catalog_dlq *e)
{
    cycle_ctx *cx = arg;
    akidb__uploader *u = cx->u;
    cx->tried++;
    akidb__err_clear();
    int rc = upload_file(u, e->object_key, e->source_path);
    if (rc == AKIDB_OK) {
        cx->ok++;
        akidb__metric_add((akidb__metrics *)&u->env->metrics, AKIDB__M_UPLOADS, 1);
        akidb__log(u->env, AKIDB_LOG_INFO, "dead letter %lld (%s) uploaded on attempt %u",
                   (long long)e->dlq_id, e->object_key, e->attempts + 1);
        return akidb__catalog_dlq_delete(u->meta, e->dlq_id);
    }
    char why[512];
    snprintf(why, sizeof why, "%s", akidb__errmsg());
    uint32_t attempts = e->attempts + 1;
    int permanent = attempts >= u->cfg.max_attempts;
    if (permanent && !e->permanent) {
        akidb__metric_add((akidb__metrics *)&u->env->metrics, AKIDB__M_DLQ_PERMANENT, 1);
        akidb__log(u->env, AKIDB_LOG_ERROR, "dead letter %lld (%s) failed %u times; giving up "
                   "(kept for akidb_dlq_list): %s", (long long)e->dlq_id, e->object_key,
                   attempts, why);
    }
    return akidb__catalog_dlq_update(u->meta, e->dlq_id, why, attempts, permanent,
                                  now_us(u) + backoff_us(u, attempts));
}

int akidb__uploader_dlq_cycle(akidb__uploader *u, uint32_t limit, uint32_t *n_tried,
                              uint32_t *n_ok)
{
    cycle_ctx cx = { u, 0, 0 };
    pthread_mutex_lock(&u->cycle_lock);
    int rc = akidb__catalog_dlq_due(u->meta, now_us(u), limit, retry_entry, &cx);
    pthread_mutex_unlock(&u->cycle_lock);
    if (n_tried)
        *n_tried = cx.tried;
    if (n_ok)
        *n_ok = cx.ok;
    return rc;
}

int akidb__uploader_dlq_retry(akidb__uploader *u, int64_t dlq_id)
{
    cycle_ctx cx = { u, 0, 0 };
    pthread_mutex_lock(&u->cycle_lock);
    int rc = dlq_id ? akidb__catalog_dlq_get(u->meta, dlq_id, retry_entry, &cx)
                    : akidb__catalog_dlq_list(u->meta, retry_entry, &cx);
    pthread_mutex_unlock(&u->cycle_lock);
    if (rc == AKIDB_OK && dlq_id && cx.tried == 0)
        return akidb__err(AKIDB_NOTFOUND, "no dead letter %lld", (long long)dlq_id);
    if (rc == AKIDB_OK && cx.ok < cx.tried)
        return akidb__err(AKIDB_UNAVAILABLE, "%u of %u dead letters still failed; see "
                          "akidb_dlq_list for reasons", cx.tried - cx.ok, cx.tried);
    return rc;
}
