/*
 * store.c - object-store dispatch: key checks, retries with backoff, the
 * circuit breaker and metrics, once for every backend.
 *
 * Backends (store_local.c, store_mock.c, store_s3.c, or an embedder's) only
 * classify a failure: AKIDB_IOERR is transient and retried, every other
 * code is permanent and returned at once.  Keeping the policy here means a
 * backend cannot get it subtly wrong, and tests can inject faults (the mock
 * backend) and watch one implementation of the policy react.
 *
 * Two entry points share the retry loop:
 *   - the public akidb_store_* wrappers: stateless, retries only (the
 *     public struct akidb_store has no room for state, and an embedder may
 *     allocate it);
 *   - akidb__store_disp, the library's own view of a store: retries plus a
 *     circuit breaker (closed -> open after N consecutive failed calls ->
 *     half-open after a cool-down, one probe at a time -> closed on
 *     success), metrics, and injectable time so tests never sleep.
 *
 * Backoff is "full jitter": sleep random(0, min(cap, base * 2^attempt)),
 * which spreads retries of many clients instead of synchronising them; a
 * server's Retry-After (passed up through a thread-local hint) is a floor.
 *
 * A listing is gathered completely before the caller's callback sees a
 * key, so a retried listing never reports a key twice.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/crc.h"
#include "store/store.h"

/* ---- keys ------------------------------------------------------------ */

int akidb__store_key_check(const char *key)
{
    char q[96];
    if (!key)
        return akidb__err(AKIDB_MISUSE, "object key must not be NULL");
    size_t len = strlen(key);
    if (len == 0 || len > AKIDB_MAX_KEY_LEN)
        return akidb__err(AKIDB_INVALID, "object key \"%s\" must be 1..%d bytes (is %zu)",
                          akidb__quote(q, sizeof q, key, 40), AKIDB_MAX_KEY_LEN, len);
    if (key[0] == '/')
        return akidb__err(AKIDB_INVALID, "object key \"%s\" must not start with '/'",
                          akidb__quote(q, sizeof q, key, 40));
    const unsigned char *u = (const unsigned char *)key;
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x20 || u[i] == 0x7f)
            return akidb__err(AKIDB_INVALID, "object key \"%s\" has a control character at "
                              "byte %zu", akidb__quote(q, sizeof q, key, 40), i);
        size_t l = akidb__utf8_len(u + i);
        if (!l)
            return akidb__err(AKIDB_INVALID, "object key \"%s\" is not valid UTF-8 at byte %zu",
                              akidb__quote(q, sizeof q, key, 40), i);
        i += l;
    }
    /* Segments: no "", ".", ".." (no a//b, no trailing '/'). */
    const char *seg = key;
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t seg_len = slash ? (size_t)(slash - seg) : strlen(seg);
        if (seg_len == 0 || (seg_len == 1 && seg[0] == '.') ||
            (seg_len == 2 && seg[0] == '.' && seg[1] == '.'))
            return akidb__err(AKIDB_INVALID, "object key \"%s\" has an empty, \".\" or \"..\" "
                              "path segment", akidb__quote(q, sizeof q, key, 40));
        if (!slash)
            break;
        seg = slash + 1;
    }
    return AKIDB_OK;
}

/* ---- time, jitter, hints --------------------------------------------- */

static _Thread_local uint32_t retry_after_hint_ms;
static _Thread_local uint64_t jitter_state;

void akidb__store_hint_retry_after(uint32_t ms)
{
    retry_after_hint_ms = ms;
}

static int64_t real_now_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void real_sleep_ms(void *ctx, uint32_t ms)
{
    (void)ctx;
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void akidb__store_policy_init(akidb__store_policy *p)
{
    memset(p, 0, sizeof *p);
    p->max_attempts = 4;
    p->base_ms = 50;
    p->cap_ms = 2000;
    p->breaker_failures = 5;
    p->breaker_open_ms = 10000;
    p->now_ms = real_now_ms;
    p->sleep_ms = real_sleep_ms;
}

static uint32_t jitter_ms(const akidb__store_policy *p, uint32_t attempt)
{
    if (!jitter_state) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        jitter_state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&jitter_state ^ 1;
    }
    /* xorshift64: per-thread, so no lock and no shared state. */
    jitter_state ^= jitter_state << 13;
    jitter_state ^= jitter_state >> 7;
    jitter_state ^= jitter_state << 17;
    uint64_t ceiling = (uint64_t)p->base_ms << (attempt < 20 ? attempt : 20);
    if (ceiling > p->cap_ms)
        ceiling = p->cap_ms;
    return (uint32_t)(jitter_state % (ceiling + 1));
}

/* ---- one operation, retried ------------------------------------------ */

typedef enum op_kind { OP_PUT, OP_GET, OP_SIZE, OP_DEL, OP_LIST } op_kind;

static const char *const op_names[] = { "put", "get", "size", "delete", "list" };

typedef struct key_list {
    char **keys;
    uint64_t *sizes;
    size_t n, cap;
    int nomem;
} key_list;

typedef struct op {
    op_kind kind;
    const char *key;            /* or the prefix for OP_LIST */
    const void *buf;
    size_t len;
    uint64_t offset, rlen;
    void **buf_out;
    size_t *len_out;
    uint64_t *size_out;
    key_list *list;
} op;

static void key_list_clear(key_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    free(l->keys);
    free(l->sizes);
    memset(l, 0, sizeof *l);
}

static int gather_key(void *ctx, const char *key, uint64_t size)
{
    key_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **k = realloc(l->keys, cap * sizeof *k);
        if (k)
            l->keys = k;
        uint64_t *s = realloc(l->sizes, cap * sizeof *s);
        if (s)
            l->sizes = s;
        if (!k || !s) {
            l->nomem = 1;
            return AKIDB_NOMEM;
        }
        l->cap = cap;
    }
    if (!(l->keys[l->n] = strdup(key))) {
        l->nomem = 1;
        return AKIDB_NOMEM;
    }
    l->sizes[l->n++] = size;
    return 0;
}

static int call_backend(akidb_store *s, op *o)
{
    const akidb_store_methods *m = s->methods;
    switch (o->kind) {
    case OP_PUT:
        return m->put(s, o->key, o->buf, o->len);
    case OP_GET:
        *o->buf_out = NULL;
        *o->len_out = 0;
        return m->get(s, o->key, o->offset, o->rlen, o->buf_out, o->len_out);
    case OP_SIZE:
        return m->size(s, o->key, o->size_out);
    case OP_DEL:
        return m->del(s, o->key);
    case OP_LIST:
        key_list_clear(o->list);
        return m->list(s, o->key, gather_key, o->list);
    }
    return AKIDB_ERROR;
}

/* The retry loop.  Returns the backend's result, or AKIDB_UNAVAILABLE once
 * every attempt failed transiently. */
static int run(akidb_store *s, const akidb__store_policy *p, akidb__metrics *metrics, op *o)
{
    int rc = AKIDB_IOERR;
    char last[512] = "";
    uint32_t attempts = p->max_attempts ? p->max_attempts : 1;
    for (uint32_t attempt = 0; attempt < attempts; attempt++) {
        retry_after_hint_ms = 0;
        akidb__err_clear();
        rc = call_backend(s, o);
        if (metrics)
            akidb__metric_add(metrics, AKIDB__M_STORE_REQUESTS, 1);
        if (o->kind == OP_LIST && o->list->nomem && rc != AKIDB_OK)
            return akidb__err(AKIDB_NOMEM, "list %s: out of memory", o->key);
        if (rc != AKIDB_IOERR)
            break;
        snprintf(last, sizeof last, "%s", akidb__errmsg());
        if (attempt + 1 == attempts)
            break;
        uint32_t delay = jitter_ms(p, attempt);
        if (retry_after_hint_ms > delay)
            delay = retry_after_hint_ms;
        if (metrics)
            akidb__metric_add(metrics, AKIDB__M_STORE_RETRIES, 1);
        p->sleep_ms(p->time_ctx, delay);
    }
    if (rc == AKIDB_OK && metrics) {
        if (o->kind == OP_PUT)
            akidb__metric_add(metrics, AKIDB__M_STORE_BYTES_UP, (int64_t)o->len);
        else if (o->kind == OP_GET)
            akidb__metric_add(metrics, AKIDB__M_STORE_BYTES_DOWN, (int64_t)*o->len_out);
    }
    if (rc == AKIDB_IOERR) {
        if (metrics)
            akidb__metric_add(metrics, AKIDB__M_STORE_FAILURES, 1);
        char q[96];
        return akidb__err(AKIDB_UNAVAILABLE, "%s \"%s\": gave up after %u attempts: %s",
                          op_names[o->kind], akidb__quote(q, sizeof q, o->key, 60), attempts,
                          last[0] ? last : "transient failure");
    }
    if (rc != AKIDB_OK && !akidb__err_is_set())
        akidb__err(rc, "%s \"%s\": %s", op_names[o->kind], o->key, akidb__errstr(rc));
    return rc;
}

static int check_store(akidb_store *s, const char *fn)
{
    if (!s || !s->methods)
        return akidb__err(AKIDB_MISUSE, "%s: store must not be NULL", fn);
    if (s->methods->version < 1)
        return akidb__err(AKIDB_MISUSE, "%s: store methods version %d is not supported", fn,
                          s->methods->version);
    return AKIDB_OK;
}

static int deliver_list(key_list *l, int (*cb)(void *, const char *, uint64_t), void *ctx)
{
    int rc = AKIDB_OK;
    for (size_t i = 0; i < l->n && rc == AKIDB_OK; i++)
        rc = cb(ctx, l->keys[i], l->sizes[i]);
    key_list_clear(l);
    return rc;
}

/* ---- public wrappers ------------------------------------------------- */

static const akidb__store_policy *public_policy(void)
{
    static const akidb__store_policy p = { 4, 50, 2000, 0, 0, real_now_ms, real_sleep_ms, NULL };
    return &p;
}

int akidb_store_put(akidb_store *s, const char *key, const void *buf, size_t len)
{
    akidb__err_clear();
    int rc = check_store(s, "akidb_store_put");
    if (rc || (rc = akidb__store_key_check(key)))
        return rc;
    if (!buf && len)
        return akidb__err(AKIDB_MISUSE, "akidb_store_put: buf must not be NULL");
    op o = { OP_PUT, key, buf, len, 0, 0, NULL, NULL, NULL, NULL };
    return run(s, public_policy(), NULL, &o);
}

int akidb_store_get(akidb_store *s, const char *key, uint64_t offset, uint64_t len,
                    void **buf_out, size_t *len_out)
{
    akidb__err_clear();
    int rc = check_store(s, "akidb_store_get");
    if (rc || (rc = akidb__store_key_check(key)))
        return rc;
    if (!buf_out || !len_out)
        return akidb__err(AKIDB_MISUSE, "akidb_store_get: buf_out and len_out must not be NULL");
    op o = { OP_GET, key, NULL, 0, offset, len, buf_out, len_out, NULL, NULL };
    return run(s, public_policy(), NULL, &o);
}

int akidb_store_size(akidb_store *s, const char *key, uint64_t *size_out)
{
    akidb__err_clear();
    int rc = check_store(s, "akidb_store_size");
    if (rc || (rc = akidb__store_key_check(key)))
        return rc;
    if (!size_out)
        return akidb__err(AKIDB_MISUSE, "akidb_store_size: size_out must not be NULL");
    op o = { OP_SIZE, key, NULL, 0, 0, 0, NULL, NULL, size_out, NULL };
    return run(s, public_policy(), NULL, &o);
}

int akidb_store_delete(akidb_store *s, const char *key)
{
    akidb__err_clear();
    int rc = check_store(s, "akidb_store_delete");
    if (rc || (rc = akidb__store_key_check(key)))
        return rc;
    op o = { OP_DEL, key, NULL, 0, 0, 0, NULL, NULL, NULL, NULL };
    return run(s, public_policy(), NULL, &o);
}

int akidb_store_list(akidb_store *s, const char *prefix,
                     int (*cb)(void *ctx, const char *key, uint64_t size), void *ctx)
{
    akidb__err_clear();
    int rc = check_store(s, "akidb_store_list");
    if (rc)
        return rc;
    if (!cb)
        return akidb__err(AKIDB_MISUSE, "akidb_store_list: cb must not be NULL");
    key_list l = { 0 };
    op o = { OP_LIST, prefix ? prefix : "", NULL, 0, 0, 0, NULL, NULL, NULL, &l };
    rc = run(s, public_policy(), NULL, &o);
    if (rc == AKIDB_OK)
        return deliver_list(&l, cb, ctx);
    key_list_clear(&l);
    return rc;
}

void akidb__store_destroy(akidb_store *s)
{
    if (s && s->methods && s->methods->destroy)
        s->methods->destroy(s);
}

void akidb_store_close(akidb_store *s)
{
    akidb__store_destroy(s);
}

/* ---- dispatch with a breaker ----------------------------------------- */

struct akidb__store_disp {
    akidb_store *store;
    akidb__store_policy policy;
    akidb__metrics *metrics;
    const akidb_allocator *alloc;
    pthread_mutex_t lock;
    akidb__breaker_state state;
    uint32_t failures;
    int64_t opened_at;
    int probing;
};

int akidb__disp_new(akidb_store *store, const akidb__store_policy *policy,
                    akidb__metrics *metrics, const akidb_allocator *alloc,
                    akidb__store_disp **out)
{
    *out = NULL;
    int rc = check_store(store, "store dispatch");
    if (rc)
        return rc;
    akidb__store_disp *d = akidb__calloc(alloc, 1, sizeof *d);
    if (!d)
        return akidb__err(AKIDB_NOMEM, "store dispatch: out of memory");
    d->store = store;
    if (policy)
        d->policy = *policy;
    else
        akidb__store_policy_init(&d->policy);
    if (!d->policy.now_ms)
        d->policy.now_ms = real_now_ms;
    if (!d->policy.sleep_ms)
        d->policy.sleep_ms = real_sleep_ms;
    d->metrics = metrics;
    d->alloc = alloc;
    pthread_mutex_init(&d->lock, NULL);
    *out = d;
    return AKIDB_OK;
}

void akidb__disp_free(akidb__store_disp *d)
{
    if (!d)
        return;
    pthread_mutex_destroy(&d->lock);
    akidb__free(d->alloc, d);
}

/* May this call go ahead?  Sets *probe when it is the half-open probe. */
static int breaker_enter(akidb__store_disp *d, int *probe)
{
    *probe = 0;
    if (!d->policy.breaker_failures)
        return AKIDB_OK;
    pthread_mutex_lock(&d->lock);
    int rc = AKIDB_OK;
    int64_t now = d->policy.now_ms(d->policy.time_ctx);
    if (d->state == AKIDB__BREAKER_OPEN && now - d->opened_at >= d->policy.breaker_open_ms)
        d->state = AKIDB__BREAKER_HALF_OPEN;
    if (d->state == AKIDB__BREAKER_OPEN || (d->state == AKIDB__BREAKER_HALF_OPEN && d->probing)) {
        int64_t left = d->policy.breaker_open_ms - (now - d->opened_at);
        rc = akidb__err(AKIDB_UNAVAILABLE, "object store unavailable: circuit breaker open "
                        "after %u failed calls (next probe in %lld ms)", d->failures,
                        (long long)(left > 0 ? left : 0));
    } else if (d->state == AKIDB__BREAKER_HALF_OPEN) {
        d->probing = 1;
        *probe = 1;
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static void breaker_leave(akidb__store_disp *d, int probe, int rc)
{
    if (!d->policy.breaker_failures)
        return;
    pthread_mutex_lock(&d->lock);
    if (probe)
        d->probing = 0;
    /* Any answer but "gave up on transient failures" means the service is
     * there (NOTFOUND and INVALID are answers). */
    if (rc != AKIDB_UNAVAILABLE) {
        d->failures = 0;
        d->state = AKIDB__BREAKER_CLOSED;
    } else {
        d->failures++;
        if (d->state == AKIDB__BREAKER_HALF_OPEN ||
            (d->state == AKIDB__BREAKER_CLOSED && d->failures >= d->policy.breaker_failures)) {
            d->state = AKIDB__BREAKER_OPEN;
            d->opened_at = d->policy.now_ms(d->policy.time_ctx);
            if (d->metrics)
                akidb__metric_add(d->metrics, AKIDB__M_STORE_BREAKER_OPENS, 1);
        }
    }
    pthread_mutex_unlock(&d->lock);
}

static int disp_run(akidb__store_disp *d, op *o)
{
    int probe;
    int rc = breaker_enter(d, &probe);
    if (rc)
        return rc;
    rc = run(d->store, &d->policy, d->metrics, o);
    breaker_leave(d, probe, rc);
    return rc;
}

int akidb__disp_put(akidb__store_disp *d, const char *key, const void *buf, size_t len)
{
    int rc = akidb__store_key_check(key);
    if (rc)
        return rc;
    op o = { OP_PUT, key, buf, len, 0, 0, NULL, NULL, NULL, NULL };
    return disp_run(d, &o);
}

int akidb__disp_get(akidb__store_disp *d, const char *key, uint64_t offset, uint64_t len,
                    void **buf_out, size_t *len_out)
{
    int rc = akidb__store_key_check(key);
    if (rc)
        return rc;
    op o = { OP_GET, key, NULL, 0, offset, len, buf_out, len_out, NULL, NULL };
    return disp_run(d, &o);
}

int akidb__disp_size(akidb__store_disp *d, const char *key, uint64_t *size_out)
{
    int rc = akidb__store_key_check(key);
    if (rc)
        return rc;
    op o = { OP_SIZE, key, NULL, 0, 0, 0, NULL, NULL, size_out, NULL };
    return disp_run(d, &o);
}

int akidb__disp_delete(akidb__store_disp *d, const char *key)
{
    int rc = akidb__store_key_check(key);
    if (rc)
        return rc;
    op o = { OP_DEL, key, NULL, 0, 0, 0, NULL, NULL, NULL, NULL };
    return disp_run(d, &o);
}

int akidb__disp_get_checked(akidb__store_disp *d, const char *key, uint64_t expect_len,
                            uint32_t expect_crc32c, void **buf_out, size_t *len_out)
{
    *buf_out = NULL;
    *len_out = 0;
    uint32_t attempts = d->policy.max_attempts ? d->policy.max_attempts : 1;
    size_t got_len = 0;
    uint32_t got_crc = 0;
    for (uint32_t attempt = 0; attempt < attempts; attempt++) {
        void *buf;
        size_t len;
        int rc = akidb__disp_get(d, key, 0, UINT64_MAX, &buf, &len);
        if (rc)
            return rc;
        got_len = len;
        got_crc = akidb__crc32c(0, buf, len);
        if (len == expect_len && got_crc == expect_crc32c) {
            *buf_out = buf;
            *len_out = len;
            return AKIDB_OK;
        }
        akidb__out_free(buf);
        if (attempt + 1 < attempts) {
            if (d->metrics)
                akidb__metric_add(d->metrics, AKIDB__M_STORE_RETRIES, 1);
            d->policy.sleep_ms(d->policy.time_ctx, jitter_ms(&d->policy, attempt));
        }
    }
    char q[96];
    return akidb__err(AKIDB_CORRUPT, "get \"%s\": %u reads all failed the check: expected %llu "
                      "bytes with CRC-32C %08x, got %zu bytes with %08x",
                      akidb__quote(q, sizeof q, key, 60), attempts,
                      (unsigned long long)expect_len, expect_crc32c, got_len, got_crc);
}

akidb__breaker_state akidb__disp_breaker(akidb__store_disp *d)
{
    pthread_mutex_lock(&d->lock);
    akidb__breaker_state s = d->state;
    if (s == AKIDB__BREAKER_OPEN &&
        d->policy.now_ms(d->policy.time_ctx) - d->opened_at >= d->policy.breaker_open_ms)
        s = AKIDB__BREAKER_HALF_OPEN;
    pthread_mutex_unlock(&d->lock);
    return s;
}
