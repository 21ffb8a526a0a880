/*
 * store_mock.c - an in-memory object store for tests (the library's and its
 * users'): thread safe, with simulated latency, injected faults and call
 * counters, all public API (akidb_store_mock_* in akidb.h).
 *
 * The tier, snapshot and crash tests run against it to provoke what a real
 * S3 does on a bad day (503 SlowDown, timeouts, 403, an upload cut off
 * midway, a corrupted read) deterministically and without a network.
 * Objects live in a sorted array (binary search; listing is a range), under
 * one mutex; latency is slept outside the mutex so calls overlap as they
 * would against a server.
 */
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "store/store.h"

typedef struct object {
    char *key;
    unsigned char *data;
    size_t len;
} object;

typedef struct fault_rule {
    unsigned ops;
    char *glob;
    akidb_mock_fault fault;
    uint32_t left;
    uint32_t retry_after_ms;
} fault_rule;

typedef struct mock_store {
    akidb_store base;
    pthread_mutex_t lock;
    object *objs;
    size_t n, cap;
    fault_rule *rules;
    size_t n_rules;
    uint32_t latency_ms;
    akidb_mock_stats stats;
} mock_store;

static mock_store *as_mock(akidb_store *s) { return (mock_store *)s; }

/* Index of key, or -(insertion point) - 1.  Caller holds the lock. */
static long find(const mock_store *m, const char *key)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->objs[mid].key, key);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

static void sleep_latency(const mock_store *m)
{
    uint32_t ms = __atomic_load_n(&m->latency_ms, __ATOMIC_RELAXED);
    if (!ms)
        return;
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Count the call and consume a matching fault rule.  Caller holds the lock. */
static akidb_mock_fault take_fault(mock_store *m, unsigned op_bit, int op_index,
                                    const char *key, uint32_t *retry_after)
{
    m->stats.calls[op_index]++;
    for (size_t i = 0; i < m->n_rules; i++) {
        fault_rule *r = &m->rules[i];
        if (!r->left || !(r->ops & op_bit))
            continue;
        if (r->glob && fnmatch(r->glob, key, 0) != 0)
            continue;
        r->left--;
        m->stats.faults++;
        *retry_after = r->retry_after_ms;
        return r->fault;
    }
    return 0;
}

/* The error an injected fault produces (0: no error, e.g. corrupt read). */
static int fault_error(akidb_mock_fault f, const char *op, const char *key, uint32_t retry_after)
{
    switch (f) {
    case AKIDB_MOCK_503:
        if (retry_after)
            akidb__store_hint_retry_after(retry_after);
        return akidb__err(AKIDB_IOERR, "mock store: %s %s: HTTP 503 SlowDown", op, key);
    case AKIDB_MOCK_TIMEOUT:
        return akidb__err(AKIDB_IOERR, "mock store: %s %s: timeout", op, key);
    case AKIDB_MOCK_403:
        return akidb__err(AKIDB_INVALID, "mock store: %s %s: HTTP 403 AccessDenied", op, key);
    case AKIDB_MOCK_PARTIAL_WRITE:
        return akidb__err(AKIDB_IOERR, "mock store: %s %s: connection lost mid-upload", op, key);
    case AKIDB_MOCK_CORRUPT_READ:
        return 0;
    }
    return 0;
}

static int mock_get(akidb_store *s, const char *key, uint64_t offset, uint64_t len,
                    void **buf_out, size_t *len_out)
{
    mock_store *m = as_mock(s);
    sleep_latency(m);
    pthread_mutex_lock(&m->lock);
    uint32_t ra = 0;
    akidb_mock_fault f = take_fault(m, AKIDB_MOCK_OP_GET, 0, key, &ra);
    int rc = fault_error(f, "get", key, ra);
    long i = rc ? -1 : find(m, key);
    if (!rc && i < 0)
        rc = akidb__err(AKIDB_NOTFOUND, "mock store: no object \"%s\"", key);
    if (!rc) {
        const object *o = &m->objs[i];
        size_t avail = offset < o->len ? o->len - (size_t)offset : 0;
        size_t want = len < avail ? (size_t)len : avail;
        unsigned char *buf = akidb__out_malloc(want + 1);
        if (!buf) {
            rc = akidb__err(AKIDB_NOMEM, "mock store: out of memory");
        } else {
            if (want)
                memcpy(buf, o->data + offset, want);
            if (f == AKIDB_MOCK_CORRUPT_READ && want)
                buf[want / 2] ^= 0x40;
            m->stats.bytes_out += want;
            *buf_out = buf;
            *len_out = want;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mock_size(akidb_store *s, const char *key, uint64_t *size_out)
{
    mock_store *m = as_mock(s);
    sleep_latency(m);
    pthread_mutex_lock(&m->lock);
    uint32_t ra = 0;
    int rc = fault_error(take_fault(m, AKIDB_MOCK_OP_SIZE, 1, key, &ra), "size", key, ra);
    long i = rc ? -1 : find(m, key);
    if (!rc && i < 0)
        rc = akidb__err(AKIDB_NOTFOUND, "mock store: no object \"%s\"", key);
    if (!rc)
        *size_out = m->objs[i].len;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Caller holds the lock.  0, or -1 (the array is unchanged). */
static int grow(mock_store *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    object *o = realloc(m->objs, cap * sizeof *o);
    if (!o)
        return -1;
    m->objs = o;
    m->cap = cap;
    return 0;
}

static int mock_put(akidb_store *s, const char *key, const void *buf, size_t len)
{
    mock_store *m = as_mock(s);
    sleep_latency(m);
    /* Copy outside the lock: big objects should not stall other calls. */
    unsigned char *data = malloc(len ? len : 1);
    char *k = strdup(key);
    if (!data || !k) {
        free(data);
        free(k);
        return akidb__err(AKIDB_NOMEM, "mock store: out of memory");
    }
    if (len)
        memcpy(data, buf, len);
    pthread_mutex_lock(&m->lock);
    uint32_t ra = 0;
    int rc = fault_error(take_fault(m, AKIDB_MOCK_OP_PUT, 2, key, &ra), "put", key, ra);
    if (!rc) {
        long i = find(m, key);
        if (i >= 0) {
            free(m->objs[i].data);
            m->objs[i].data = data;
            m->objs[i].len = len;
            free(k);
            data = NULL;
            k = NULL;
        } else if (m->n == m->cap && grow(m) != 0) {
            rc = akidb__err(AKIDB_NOMEM, "mock store: out of memory");
        } else {
            size_t at = (size_t)(-i - 1);
            memmove(m->objs + at + 1, m->objs + at, (m->n - at) * sizeof *m->objs);
            m->objs[at].key = k;
            m->objs[at].data = data;
            m->objs[at].len = len;
            m->n++;
            data = NULL;
            k = NULL;
        }
        if (!rc)
            m->stats.bytes_in += len;
    }
    m->stats.objects = m->n;
    pthread_mutex_unlock(&m->lock);
    free(data);
    free(k);
    return rc;
}

static int mock_del(akidb_store *s, const char *key)
{
    mock_store *m = as_mock(s);
    sleep_latency(m);
    pthread_mutex_lock(&m->lock);
    uint32_t ra = 0;
    int rc = fault_error(take_fault(m, AKIDB_MOCK_OP_DEL, 3, key, &ra), "delete", key, ra);
    if (!rc) {
        long i = find(m, key);
        if (i >= 0) {
            free(m->objs[i].key);
            free(m->objs[i].data);
            memmove(m->objs + i, m->objs + i + 1, (m->n - (size_t)i - 1) * sizeof *m->objs);
            m->n--;
        }
    }
    m->stats.objects = m->n;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mock_list(akidb_store *s, const char *prefix,
                     int (*cb)(void *ctx, const char *key, uint64_t size), void *ctx)
{
    mock_store *m = as_mock(s);
    sleep_latency(m);
    /* Snapshot the matching keys under the lock, call back outside it. */
    pthread_mutex_lock(&m->lock);
    uint32_t ra = 0;
    int rc = fault_error(take_fault(m, AKIDB_MOCK_OP_LIST, 4, prefix, &ra), "list", prefix, ra);
    size_t pl = strlen(prefix), first = 0, n = 0;
    char **keys = NULL;
    uint64_t *sizes = NULL;
    if (!rc) {
        long i = find(m, prefix);
        first = i >= 0 ? (size_t)i : (size_t)(-i - 1);
        while (first + n < m->n && strncmp(m->objs[first + n].key, prefix, pl) == 0)
            n++;
        keys = calloc(n ? n : 1, sizeof *keys);
        sizes = calloc(n ? n : 1, sizeof *sizes);
        if (!keys || !sizes)
            rc = akidb__err(AKIDB_NOMEM, "mock store: out of memory");
        for (size_t j = 0; !rc && j < n; j++) {
            if (!(keys[j] = strdup(m->objs[first + j].key)))
                rc = akidb__err(AKIDB_NOMEM, "mock store: out of memory");
            sizes[j] = m->objs[first + j].len;
        }
    }
    pthread_mutex_unlock(&m->lock);
    for (size_t j = 0; !rc && j < n; j++)
        rc = cb(ctx, keys[j], sizes[j]);
    for (size_t j = 0; keys && j < n; j++)
        free(keys[j]);
    free(keys);
    free(sizes);
    return rc;
}

static void mock_destroy(akidb_store *s)
{
    mock_store *m = as_mock(s);
    for (size_t i = 0; i < m->n; i++) {
        free(m->objs[i].key);
        free(m->objs[i].data);
    }
    akidb_store_mock_clear_faults(s);
    free(m->objs);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static const akidb_store_methods mock_methods = {
    AKIDB_STORE_METHODS_VERSION, mock_get, mock_size, mock_put, mock_del, mock_list,
    mock_destroy
};

int akidb_store_mock_open(akidb_store **out)
{
    akidb__err_clear();
    if (!out)
        return akidb__err(AKIDB_MISUSE, "akidb_store_mock_open: out must not be NULL");
    mock_store *m = calloc(1, sizeof *m);
    if (!m) {
        *out = NULL;
        return akidb__err(AKIDB_NOMEM, "mock store: out of memory");
    }
    m->base.methods = &mock_methods;
    pthread_mutex_init(&m->lock, NULL);
    *out = &m->base;
    return AKIDB_OK;
}

/* The mock of s, or NULL (with AKIDB_MISUSE recorded) when s is not one. */
static mock_store *mock_of(akidb_store *s, const char *fn)
{
    if (!s || s->methods != &mock_methods) {
        akidb__err(AKIDB_MISUSE, "%s: the store is %s", fn,
                   s ? "not a mock store (akidb_store_mock_open)" : "NULL");
        return NULL;
    }
    return as_mock(s);
}

int akidb_store_mock_inject(akidb_store *s, unsigned ops, const char *key_glob,
                            akidb_mock_fault fault, uint32_t count, uint32_t retry_after_ms)
{
    akidb__err_clear();
    mock_store *m = mock_of(s, "akidb_store_mock_inject");
    if (!m)
        return AKIDB_MISUSE;
    if (count == 0 || (ops & AKIDB_MOCK_OP_ANY) == 0 || (ops & ~AKIDB_MOCK_OP_ANY) != 0)
        return akidb__err(AKIDB_INVALID, "akidb_store_mock_inject: count %u / ops 0x%x: "
                          "count must be at least 1 and ops a mask of AKIDB_MOCK_OP_*",
                          count, ops);
    if (fault < AKIDB_MOCK_503 || fault > AKIDB_MOCK_CORRUPT_READ)
        return akidb__err(AKIDB_INVALID, "akidb_store_mock_inject: fault %d is unknown",
                          (int)fault);
    char *glob = key_glob ? strdup(key_glob) : NULL;
    if (key_glob && !glob)
        return akidb__err(AKIDB_NOMEM, "mock store: out of memory");
    pthread_mutex_lock(&m->lock);
    fault_rule *r = realloc(m->rules, (m->n_rules + 1) * sizeof *r);
    if (!r) {
        pthread_mutex_unlock(&m->lock);
        free(glob);
        return akidb__err(AKIDB_NOMEM, "mock store: out of memory");
    }
    m->rules = r;
    fault_rule rule = { ops, glob, fault, count, retry_after_ms };
    m->rules[m->n_rules++] = rule;
    pthread_mutex_unlock(&m->lock);
    return AKIDB_OK;
}

void akidb_store_mock_clear_faults(akidb_store *s)
{
    mock_store *m = mock_of(s, "akidb_store_mock_clear_faults");
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_rules; i++)
        free(m->rules[i].glob);
    free(m->rules);
    m->rules = NULL;
    m->n_rules = 0;
    pthread_mutex_unlock(&m->lock);
}

void akidb_store_mock_set_latency(akidb_store *s, uint32_t latency_ms)
{
    mock_store *m = mock_of(s, "akidb_store_mock_set_latency");
    if (m)
        __atomic_store_n(&m->latency_ms, latency_ms, __ATOMIC_RELAXED);
}

void akidb_store_mock_stats_get(akidb_store *s, akidb_mock_stats *out)
{
    mock_store *m = mock_of(s, "akidb_store_mock_stats_get");
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    *out = m->stats;
    pthread_mutex_unlock(&m->lock);
}
