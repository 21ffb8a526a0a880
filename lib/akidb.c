/*
 * akidb.c - the public entry points: argument checks, the collection table,
 * error reporting, version and memory helpers.
 *
 * Every public function starts by clearing the calling thread's error, then
 * checks its arguments (NULL handles and out-parameters are AKIDB_MISUSE;
 * bad values are AKIDB_INVALID with a message naming the value), then does
 * its work with the locks held in this order, never the reverse:
 *
 *   db->lock (rwlock: shared for anything inside one collection,
 *             exclusive to create or drop a collection)
 *     -> collection lock (inside collection.c)
 *
 * Holding db->lock shared for the whole call is what keeps a collection
 * alive while it is used: drop needs the lock exclusively, so it waits for
 * calls in flight and frees the collection when no one can reach it.
 *
 * Error messages are thread-local, so threads sharing one handle never see
 * each other's errors.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "akidb_int.h"
#include "alloc.h"
#include "collection.h"

struct akidb {
    char *dir;
    akidb_options opts;
    akidb_allocator alloc;
    pthread_rwlock_t lock;
    akidb__collection **colls;
    size_t n_colls, colls_cap;
};

/* ---- errors ---------------------------------------------------------- */

static _Thread_local struct {
    int rc;
    char msg[512];
} thread_err;

int akidb__err(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(thread_err.msg, sizeof thread_err.msg, fmt, ap);
    va_end(ap);
    thread_err.rc = rc;
    return rc;
}

void akidb__err_clear(void)
{
    thread_err.rc = AKIDB_OK;
}

const char *akidb_errmsg(const akidb *db)
{
    (void)db;   /* messages are per thread, whichever handle raised them */
    if (thread_err.rc == AKIDB_OK)
        return akidb_errstr(AKIDB_OK);
    return thread_err.msg;
}

/* Length of the valid UTF-8 sequence (2..4 bytes) at s, or 0. */
static size_t utf8_seq_len(const unsigned char *s)
{
    size_t len;
    uint32_t cp;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) { len = 2; cp = s[0] & 0x1F; }
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) { len = 3; cp = s[0] & 0x0F; }
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) { len = 4; cp = s[0] & 0x07; }
    else return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

const char *akidb__quote(char *buf, size_t buf_len, const char *s, size_t max)
{
    /* Valid UTF-8 passes through so names read as typed; control bytes,
     * quotes and invalid sequences are escaped, so the message is always
     * printable, valid UTF-8 (the server puts it in JSON). */
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, i = 0;
    while (u[i] && i < max && o + 5 < buf_len) {
        size_t seq = u[i] >= 0x80 ? utf8_seq_len(u + i) : 0;
        if (seq && o + seq + 1 < buf_len) {
            memcpy(buf + o, u + i, seq);
            o += seq;
            i += seq;
        } else if (u[i] >= 0x20 && u[i] < 0x7f && u[i] != '"' && u[i] != '\\') {
            buf[o++] = (char)u[i++];
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[u[i] >> 4];
            buf[o++] = hex[u[i] & 15];
            i++;
        }
    }
    if (u[i] && o + 4 <= buf_len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* The table of result codes, in one place (frozen values: see akidb.h). */
#define AKIDB_ERRORS(X)                                   \
    X(AKIDB_OK,          "not an error")                  \
    X(AKIDB_ERROR,       "internal error")                \
    X(AKIDB_NOMEM,       "out of memory")                 \
    X(AKIDB_MISUSE,      "library used incorrectly")      \
    X(AKIDB_INVALID,     "invalid argument")              \
    X(AKIDB_NOTFOUND,    "not found")                     \
    X(AKIDB_EXISTS,      "already exists")                \
    X(AKIDB_IOERR,       "I/O error")                     \
    X(AKIDB_CORRUPT,     "data is corrupt")               \
    X(AKIDB_CONFLICT,    "conflicting concurrent change") \
    X(AKIDB_BUSY,        "resource busy")                 \
    X(AKIDB_QUOTA,       "limit exceeded")                \
    X(AKIDB_UNAVAILABLE, "service unavailable")

const char *akidb_errstr(int rc)
{
    switch (rc) {
#define AKIDB_ERRSTR_CASE(code, text) case code: return text;
    AKIDB_ERRORS(AKIDB_ERRSTR_CASE)
#undef AKIDB_ERRSTR_CASE
    }
    return "unknown error";
}

/* ---- version and memory ---------------------------------------------- */

const char *akidb_version(void)
{
    return AKIDB_VERSION_STRING;
}

int akidb_version_number(void)
{
    return AKIDB_VERSION_NUMBER;
}

void *akidb_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void akidb_free(void *p)
{
    free(p);
}

/* ---- argument checks ------------------------------------------------- */

static int check_name(const char *name, const char *what)
{
    size_t len = 0;
    int ok = 1;
    for (; name[len]; len++) {
        char ch = name[len];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            ok = 0;
        if (len > AKIDB_MAX_NAME_LEN)
            break;
    }
    if (ok && len >= 1 && len <= AKIDB_MAX_NAME_LEN)
        return AKIDB_OK;
    char q[128];
    return akidb__err(AKIDB_INVALID, "%s name \"%s\" is invalid: use 1..%d characters "
                      "from [A-Za-z0-9_-]", what, akidb__quote(q, sizeof q, name, 70),
                      AKIDB_MAX_NAME_LEN);
}

static int check_config(const char *name, const akidb_collection_config *cfg)
{
    if (cfg->version != AKIDB_COLLECTION_CONFIG_VERSION)
        return akidb__err(AKIDB_INVALID, "collection %s: config version %u is not supported "
                          "(expected %d; call akidb_collection_config_init)", name,
                          cfg->version, AKIDB_COLLECTION_CONFIG_VERSION);
    if (cfg->dim < 1 || cfg->dim > AKIDB_MAX_DIM)
        return akidb__err(AKIDB_INVALID, "collection %s: dim %u is out of range 1..%d",
                          name, cfg->dim, AKIDB_MAX_DIM);
    if (cfg->metric != AKIDB_METRIC_L2 && cfg->metric != AKIDB_METRIC_COSINE &&
        cfg->metric != AKIDB_METRIC_DOT)
        return akidb__err(AKIDB_INVALID, "collection %s: metric %d is unknown (use "
                          "AKIDB_METRIC_L2, _COSINE or _DOT)", name, (int)cfg->metric);
    if (cfg->hnsw_m < 2 || cfg->hnsw_m > 128)
        return akidb__err(AKIDB_INVALID, "collection %s: hnsw_m %u is out of range 2..128",
                          name, cfg->hnsw_m);
    if (cfg->ef_construction < 1 || cfg->ef_construction > 100000)
        return akidb__err(AKIDB_INVALID, "collection %s: ef_construction %u is out of "
                          "range 1..100000", name, cfg->ef_construction);
    if (cfg->ef_search < 1 || cfg->ef_search > 100000)
        return akidb__err(AKIDB_INVALID, "collection %s: ef_search %u is out of range "
                          "1..100000", name, cfg->ef_search);
    return AKIDB_OK;
}

static int misuse(const char *fn, const char *arg)
{
    return akidb__err(AKIDB_MISUSE, "%s: %s must not be NULL", fn, arg);
}

/* ---- open / close ---------------------------------------------------- */

void akidb_options_init(akidb_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->version = AKIDB_OPTIONS_VERSION;
    opts->sync_mode = AKIDB_SYNC_ALWAYS;
    opts->sync_interval_ms = 10;
}

static int64_t now_us(const akidb *db)
{
    if (db->opts.clock_us)
        return db->opts.clock_us(db->opts.clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int akidb_open(const char *dir, const akidb_options *opts, akidb **out)
{
    akidb__err_clear();
    if (!out)
        return misuse("akidb_open", "out");
    *out = NULL;
    if (!dir)
        return misuse("akidb_open", "dir");

    akidb_options o;
    if (opts) {
        if (opts->version != AKIDB_OPTIONS_VERSION)
            return akidb__err(AKIDB_INVALID, "akidb_open: options version %u is not "
                              "supported (expected %d; call akidb_options_init)",
                              opts->version, AKIDB_OPTIONS_VERSION);
        o = *opts;
    } else {
        akidb_options_init(&o);
    }
    if (o.sync_mode < AKIDB_SYNC_ALWAYS || o.sync_mode > AKIDB_SYNC_NONE)
        return akidb__err(AKIDB_INVALID, "akidb_open: sync_mode %d is unknown", (int)o.sync_mode);
    if (o.allocator && (!o.allocator->malloc_fn || !o.allocator->realloc_fn ||
                        !o.allocator->free_fn))
        return akidb__err(AKIDB_INVALID, "akidb_open: allocator must set malloc_fn, "
                          "realloc_fn and free_fn");
    if (dir[0] == '\0')
        return akidb__err(AKIDB_INVALID, "akidb_open: directory path is empty");

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return akidb__err(AKIDB_IOERR, "akidb_open: cannot create directory %s: %s",
                          dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0)
        return akidb__err(AKIDB_IOERR, "akidb_open: %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return akidb__err(AKIDB_IOERR, "akidb_open: %s is not a directory", dir);

    const akidb_allocator *a = o.allocator ? o.allocator : &akidb__default_allocator;
    akidb *db = akidb__calloc(a, 1, sizeof *db);
    if (!db)
        return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
    db->alloc = *a;
    db->opts = o;
    db->opts.allocator = NULL;  /* copied into db->alloc; the caller's may go away */
    db->dir = akidb__strdup(&db->alloc, dir);
    if (!db->dir) {
        akidb__free(&db->alloc, db);
        return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
    }
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&db->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        akidb__free(&db->alloc, db->dir);
        akidb__free(&db->alloc, db);
        return akidb__err(AKIDB_ERROR, "akidb_open: cannot create lock");
    }
    *out = db;
    return AKIDB_OK;
}

int akidb_close(akidb *db)
{
    akidb__err_clear();
    if (!db)
        return AKIDB_OK;
    for (size_t i = 0; i < db->n_colls; i++)
        akidb__coll_free(db->colls[i]);
    akidb_allocator a = db->alloc;
    akidb__free(&a, db->colls);
    akidb__free(&a, db->dir);
    pthread_rwlock_destroy(&db->lock);
    akidb__free(&a, db);
    return AKIDB_OK;
}

/* ---- collections ----------------------------------------------------- */

/* Caller holds db->lock (either mode). */
static akidb__collection *find_coll(const akidb *db, const char *name, size_t *index_out)
{
    for (size_t i = 0; i < db->n_colls; i++)
        if (strcmp(akidb__coll_name(db->colls[i]), name) == 0) {
            if (index_out)
                *index_out = i;
            return db->colls[i];
        }
    return NULL;
}

void akidb_collection_config_init(akidb_collection_config *cfg, uint32_t dim, akidb_metric metric)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->version = AKIDB_COLLECTION_CONFIG_VERSION;
    cfg->dim = dim;
    cfg->metric = metric;
    cfg->hnsw_m = 16;
    cfg->ef_construction = 200;
    cfg->ef_search = 64;
}

int akidb_collection_create(akidb *db, const char *name, const akidb_collection_config *cfg)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_collection_create", "db");
    if (!name) return misuse("akidb_collection_create", "name");
    if (!cfg) return misuse("akidb_collection_create", "cfg");
    int rc = check_name(name, "collection");
    if (rc || (rc = check_config(name, cfg)))
        return rc;

    pthread_rwlock_wrlock(&db->lock);
    if (find_coll(db, name, NULL)) {
        rc = akidb__err(AKIDB_EXISTS, "collection %s already exists", name);
        goto done;
    }
    if (db->n_colls == db->colls_cap) {
        size_t cap = db->colls_cap ? db->colls_cap * 2 : 8;
        akidb__collection **c = akidb__realloc_array(&db->alloc, db->colls, cap, sizeof *c);
        if (!c) {
            rc = akidb__err(AKIDB_NOMEM, "collection %s: out of memory", name);
            goto done;
        }
        db->colls = c;
        db->colls_cap = cap;
    }
    akidb__collection *coll;
    rc = akidb__coll_new(name, cfg, &db->alloc, &coll);
    if (rc == AKIDB_OK)
        db->colls[db->n_colls++] = coll;
done:
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

int akidb_collection_drop(akidb *db, const char *name)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_collection_drop", "db");
    if (!name) return misuse("akidb_collection_drop", "name");
    int rc = check_name(name, "collection");
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&db->lock);
    size_t i;
    akidb__collection *c = find_coll(db, name, &i);
    if (c) {
        db->colls[i] = db->colls[--db->n_colls];
        akidb__coll_free(c);
    } else {
        rc = akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", name);
    }
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

/* Enter a call on collection `name`: db->lock is held shared on success and
 * must be released with leave(). */
static int enter(akidb *db, const char *name, akidb__collection **out)
{
    int rc = check_name(name, "collection");
    if (rc)
        return rc;
    pthread_rwlock_rdlock(&db->lock);
    *out = find_coll(db, name, NULL);
    if (!*out) {
        pthread_rwlock_unlock(&db->lock);
        return akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", name);
    }
    return AKIDB_OK;
}

static void leave(akidb *db)
{
    pthread_rwlock_unlock(&db->lock);
}

int akidb_collection_count(akidb *db, const char *name, uint64_t *n_out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_collection_count", "db");
    if (!name) return misuse("akidb_collection_count", "name");
    if (!n_out) return misuse("akidb_collection_count", "n_out");
    akidb__collection *c;
    int rc = enter(db, name, &c);
    if (rc)
        return rc;
    *n_out = akidb__coll_count(c);
    leave(db);
    return AKIDB_OK;
}

int akidb_collection_info(akidb *db, const char *name, akidb_collection_config *cfg_out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_collection_info", "db");
    if (!name) return misuse("akidb_collection_info", "name");
    if (!cfg_out) return misuse("akidb_collection_info", "cfg_out");
    akidb__collection *c;
    int rc = enter(db, name, &c);
    if (rc)
        return rc;
    akidb__coll_config(c, cfg_out);
    leave(db);
    return AKIDB_OK;
}

/* ---- documents ------------------------------------------------------- */

static int write_docs(akidb *db, const char *fn, int upsert, const char *coll, size_t n,
                      const float *vectors, const char *const *external_ids,
                      const char *const *metadata_json, uint64_t *ids_out)
{
    akidb__err_clear();
    if (!db) return misuse(fn, "db");
    if (!coll) return misuse(fn, "coll");
    if (!vectors && n > 0) return misuse(fn, "vectors");
    if (upsert && !external_ids && n > 0) return misuse(fn, "external_ids");
    akidb__collection *c;
    int rc = enter(db, coll, &c);
    if (rc)
        return rc;
    if (n > 0)
        rc = akidb__coll_write(c, upsert, n, vectors, external_ids, metadata_json, ids_out,
                               now_us(db));
    leave(db);
    return rc;
}

int akidb_insert(akidb *db, const char *coll, size_t n, const float *vectors,
                 const char *const *external_ids, const char *const *metadata_json,
                 uint64_t *ids_out)
{
    return write_docs(db, "akidb_insert", 0, coll, n, vectors, external_ids, metadata_json,
                      ids_out);
}

int akidb_upsert(akidb *db, const char *coll, size_t n, const float *vectors,
                 const char *const *external_ids, const char *const *metadata_json,
                 uint64_t *ids_out)
{
    return write_docs(db, "akidb_upsert", 1, coll, n, vectors, external_ids, metadata_json,
                      ids_out);
}

int akidb_delete(akidb *db, const char *coll, uint64_t id)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_delete", "db");
    if (!coll) return misuse("akidb_delete", "coll");
    akidb__collection *c;
    int rc = enter(db, coll, &c);
    if (rc)
        return rc;
    rc = akidb__coll_delete(c, id);
    leave(db);
    return rc;
}

int akidb_lookup(akidb *db, const char *coll, const char *external_id, uint64_t *id_out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_lookup", "db");
    if (!coll) return misuse("akidb_lookup", "coll");
    if (!external_id) return misuse("akidb_lookup", "external_id");
    if (!id_out) return misuse("akidb_lookup", "id_out");
    akidb__collection *c;
    int rc = enter(db, coll, &c);
    if (rc)
        return rc;
    rc = akidb__coll_lookup(c, external_id, id_out);
    leave(db);
    return rc;
}

int akidb_get(akidb *db, const char *coll, uint64_t id, float *vector_out,
              char **metadata_json_out)
{
    akidb__err_clear();
    if (metadata_json_out)
        *metadata_json_out = NULL;
    if (!db) return misuse("akidb_get", "db");
    if (!coll) return misuse("akidb_get", "coll");
    akidb__collection *c;
    int rc = enter(db, coll, &c);
    if (rc)
        return rc;
    rc = akidb__coll_get(c, id, vector_out, metadata_json_out);
    leave(db);
    return rc;
}

/* ---- search ---------------------------------------------------------- */

void akidb_search_params_init(akidb_search_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof *p);
    p->version = AKIDB_SEARCH_PARAMS_VERSION;
}

#define AKIDB_MAX_K 1000000u

int akidb_search(akidb *db, const char *coll, const float *query, uint32_t k,
                 const akidb_search_params *params, akidb_hit *hits, uint32_t *n_hits)
{
    akidb__err_clear();
    if (n_hits)
        *n_hits = 0;
    if (!db) return misuse("akidb_search", "db");
    if (!coll) return misuse("akidb_search", "coll");
    if (!query) return misuse("akidb_search", "query");
    if (!hits) return misuse("akidb_search", "hits");
    if (!n_hits) return misuse("akidb_search", "n_hits");
    if (k == 0 || k > AKIDB_MAX_K)
        return akidb__err(AKIDB_INVALID, "akidb_search: k %u is out of range 1..%u", k,
                          AKIDB_MAX_K);
    if (params && params->version != AKIDB_SEARCH_PARAMS_VERSION)
        return akidb__err(AKIDB_INVALID, "akidb_search: params version %u is not supported "
                          "(expected %d; call akidb_search_params_init)", params->version,
                          AKIDB_SEARCH_PARAMS_VERSION);
    if (params && params->ef > 100000)
        return akidb__err(AKIDB_INVALID, "akidb_search: ef %u is out of range 0..100000",
                          params->ef);
    akidb__collection *c;
    int rc = enter(db, coll, &c);
    if (rc)
        return rc;
    rc = akidb__coll_search(c, query, k, params, hits, n_hits);
    leave(db);
    return rc;
}
