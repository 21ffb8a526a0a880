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
 *
 * Opening is recovery.  The directory holds:
 *   LOCK          flock()ed while a handle is open (AKIDB_BUSY for others)
 *   akidb.db      the catalog (meta.c): which collections exist
 *   wal/N.wal     the log of collection N (wal.c)
 *   ckpt/N.ckpt   its last checkpoint (checkpoint.c)
 * Each catalog row is rebuilt from its checkpoint plus its log.  Files are
 * named by the catalog's collection number, never reused, so a drop that
 * crashed before deleting its files leaves only files numbered below the
 * catalog's high-water mark: those are removed.  Files numbered above it
 * mean the catalog lost rows (a damaged or replaced akidb.db): that is
 * AKIDB_CORRUPT, never a silent deletion of data.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "akidb_int.h"
#include "alloc.h"
#include "checkpoint.h"
#include "collection.h"
#include "file.h"
#include "meta.h"
#include "sigv4.h"
#include "snapshot.h"
#include "store.h"
#include "uploader.h"
#include "wal.h"

#define DEFAULT_CHECKPOINT_BYTES ((uint64_t)64 << 20)

struct akidb {
    char *dir;
    akidb_options opts;
    akidb__env env;
    int lock_fd;
    akidb__meta *meta;
    pthread_rwlock_t lock;
    akidb__collection **colls;
    size_t n_colls, colls_cap;

    akidb_store *store;          /* opts.store, or our own local store */
    int own_store;
    akidb__store_disp *disp;
    akidb__uploader *uploader;
    pthread_t dlq_thread;
    int dlq_thread_started;
    int dlq_stopping;
    pthread_mutex_t dlq_lock;
    pthread_cond_t dlq_cond;
};

akidb__uploader *akidb__db_uploader(akidb *db)
{
    return db->uploader;
}

void akidb__log(const akidb__env *env, akidb_log_level level, const char *fmt, ...)
{
    if (!env->log_fn)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    env->log_fn(env->log_ctx, level, msg);
}

void akidb__set_fault_hook(akidb *db, akidb__fault_fn fn, void *ctx)
{
    db->env.fault_fn = fn;
    db->env.fault_ctx = ctx;
}

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

int akidb__err_is_set(void)
{
    return thread_err.rc != AKIDB_OK;
}

int akidb_set_errmsg(int rc, const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(thread_err.msg, sizeof thread_err.msg, fmt, ap);
        va_end(ap);
    } else {
        thread_err.msg[0] = '\0';
    }
    thread_err.rc = rc;
    return rc;
}

const char *akidb_errmsg(const akidb *db)
{
    (void)db;   /* messages are per thread, whichever handle raised them */
    if (thread_err.rc == AKIDB_OK)
        return akidb_errstr(AKIDB_OK);
    return thread_err.msg;
}

size_t akidb__utf8_len(const unsigned char *s)
{
    uint32_t cp;
    size_t len;
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) { len = 2; cp = s[0] & 0x1F; }
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) { len = 3; cp = s[0] & 0x0F; }
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) { len = 4; cp = s[0] & 0x07; }
    else return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates, beyond U+10FFFF, and the C1 controls
     * (U+0080..U+009F: not printable) are all refused. */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp <= 0x9F))
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
        size_t seq = u[i] >= 0x80 ? akidb__utf8_len(u + i) : 0;
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
}

static int64_t now_us(const akidb *db)
{
    if (db->opts.clock_us)
        return db->opts.clock_us(db->opts.clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* dir + "/" + rel (+ optional numeric file), into a new allocation. */
static char *path_join(const akidb *db, const char *rel, int64_t coll_id, const char *ext)
{
    char buf[4096];
    int n = coll_id >= 0 ? snprintf(buf, sizeof buf, "%s/%s/%lld%s", db->dir, rel,
                                    (long long)coll_id, ext)
                         : snprintf(buf, sizeof buf, "%s/%s", db->dir, rel);
    if (n < 0 || (size_t)n >= sizeof buf)
        return NULL;
    return akidb__strdup(&db->env.alloc, buf);
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return akidb__err(AKIDB_IOERR, "akidb_open: cannot create directory %s: %s", path,
                          strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0)
        return akidb__err(AKIDB_IOERR, "akidb_open: %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return akidb__err(AKIDB_IOERR, "akidb_open: %s is not a directory", path);
    return AKIDB_OK;
}

/* Numbers of the collections that have files in `sub` with suffix `ext`
 * ("N.wal"); leftover "*.tmp" files are removed on the way. */
typedef struct id_list { int64_t *ids; size_t n, cap; } id_list;

static int scan_dir(akidb *db, const char *sub, const char *ext, id_list *out)
{
    char *path = path_join(db, sub, -1, "");
    if (!path)
        return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
    DIR *d = opendir(path);
    if (!d) {
        int rc = akidb__err(AKIDB_IOERR, "akidb_open: cannot read %s: %s", path, strerror(errno));
        akidb__free(&db->env.alloc, path);
        return rc;
    }
    int rc = AKIDB_OK;
    struct dirent *e;
    size_t ext_len = strlen(ext);
    while (rc == AKIDB_OK && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) {
            /* A checkpoint that never made it to its rename. */
            unlinkat(dirfd(d), e->d_name, 0);
            continue;
        }
        if (len <= ext_len || strcmp(e->d_name + len - ext_len, ext) != 0)
            continue;
        char *end;
        long long id = strtoll(e->d_name, &end, 10);
        if (end != e->d_name + len - ext_len || id <= 0)
            continue;
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 16;
            int64_t *ids = akidb__realloc_array(&db->env.alloc, out->ids, cap, sizeof *ids);
            if (!ids) {
                rc = akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
                break;
            }
            out->ids = ids;
            out->cap = cap;
        }
        out->ids[out->n++] = id;
    }
    closedir(d);
    akidb__free(&db->env.alloc, path);
    return rc;
}

static int add_coll(akidb *db, akidb__collection *c)
{
    if (db->n_colls == db->colls_cap) {
        size_t cap = db->colls_cap ? db->colls_cap * 2 : 8;
        akidb__collection **a = akidb__realloc_array(&db->env.alloc, db->colls, cap, sizeof *a);
        if (!a)
            return akidb__err(AKIDB_NOMEM, "collection %s: out of memory", akidb__coll_name(c));
        db->colls = a;
        db->colls_cap = cap;
    }
    db->colls[db->n_colls++] = c;
    akidb__metric_set(&db->env.metrics, AKIDB__M_COLLECTIONS, (int64_t)db->n_colls);
    return AKIDB_OK;
}

/* Rebuild one collection: checkpoint, then log replay.  (meta_list callback) */
static int recover_coll(void *ctx, const akidb__meta_coll *mc)
{
    akidb *db = ctx;
    const akidb_allocator *a = &db->env.alloc;
    char *wal_path = path_join(db, "wal", mc->coll_id, ".wal");
    char *ckpt_path = path_join(db, "ckpt", mc->coll_id, ".ckpt");
    akidb__collection *c = NULL;
    akidb__wal *w = NULL;
    int rc;
    if (!wal_path || !ckpt_path) {
        rc = akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        goto done;
    }
    if ((rc = akidb__coll_new(mc->name, &mc->cfg, &db->env, (uint64_t)mc->coll_id, ckpt_path,
                              &c)))
        goto done;
    uint64_t last_seq = 0;
    int have_ckpt = 0;
    rc = akidb__ckpt_read(&db->env, c, ckpt_path, (uint64_t)mc->coll_id, &last_seq);
    if (rc == AKIDB_OK) {
        have_ckpt = 1;
        akidb__coll_set_last_seq(c, last_seq);
    } else if (rc != AKIDB_NOTFOUND) {
        goto done;
    }
    rc = akidb__wal_open(&db->env, wal_path, (uint64_t)mc->coll_id, mc->cfg.dim, &w);
    if (rc != AKIDB_OK && !have_ckpt) {
        /* Created in the catalog, crashed before the log header was
         * synced: the collection never acknowledged a write. */
        struct stat st;
        int missing = stat(wal_path, &st) != 0 && errno == ENOENT;
        int short_file = !missing && st.st_size < AKIDB__WAL_HEADER_LEN;
        if (missing || short_file) {
            akidb__log(&db->env, AKIDB_LOG_WARN, "%s: log %s; creating an empty one "
                       "(collection %s was created just before a crash)", wal_path,
                       missing ? "is missing" : "has a torn header", mc->name);
            rc = akidb__wal_create(&db->env, wal_path, (uint64_t)mc->coll_id, mc->cfg.dim, &w);
        }
    } else if (rc == AKIDB_NOTFOUND) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: log is missing but checkpoint %s exists",
                        wal_path, ckpt_path);
    }
    if (rc)
        goto done;
    akidb__coll_attach_wal(c, w);
    if ((rc = akidb__wal_replay(w, last_seq, akidb__coll_replay, c)))
        goto done;
    rc = add_coll(db, c);
done:
    if (rc)
        akidb__coll_free(c);   /* also closes w, which is attached once opened */
    akidb__free(a, wal_path);
    akidb__free(a, ckpt_path);
    return rc;
}

static int id_in_catalog(const akidb *db, int64_t id)
{
    for (size_t i = 0; i < db->n_colls; i++)
        if ((int64_t)akidb__coll_id(db->colls[i]) == id)
            return 1;
    return 0;
}

/* Files of collections the catalog does not list: leftovers of a drop
 * (removed) or evidence of a damaged catalog (AKIDB_CORRUPT). */
static int check_orphans(akidb *db, const id_list *ids, const char *sub, const char *ext)
{
    int64_t max_id = 0;
    int rc = akidb__meta_max_coll_id(db->meta, &max_id);
    if (rc)
        return rc;
    for (size_t i = 0; i < ids->n; i++) {
        if (id_in_catalog(db, ids->ids[i]))
            continue;
        char *p = path_join(db, sub, ids->ids[i], ext);
        if (!p)
            return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        if (ids->ids[i] > max_id) {
            rc = akidb__err(AKIDB_CORRUPT, "akidb_open: %s belongs to collection %lld, which "
                            "the catalog %s/akidb.db has never recorded: the catalog is "
                            "damaged or was replaced", p, (long long)ids->ids[i], db->dir);
            akidb__free(&db->env.alloc, p);
            return rc;
        }
        akidb__log(&db->env, AKIDB_LOG_INFO, "%s: removing the file of dropped collection "
                   "%lld", p, (long long)ids->ids[i]);
        unlink(p);
        akidb__free(&db->env.alloc, p);
    }
    return AKIDB_OK;
}

static void stop_background(akidb *db)
{
    if (db->dlq_thread_started) {
        pthread_mutex_lock(&db->dlq_lock);
        db->dlq_stopping = 1;
        pthread_cond_broadcast(&db->dlq_cond);
        pthread_mutex_unlock(&db->dlq_lock);
        pthread_join(db->dlq_thread, NULL);
        db->dlq_thread_started = 0;
    }
    akidb__uploader_free(db->uploader);   /* finishes queued uploads first */
    db->uploader = NULL;
    akidb__disp_free(db->disp);
    db->disp = NULL;
    if (db->own_store)
        akidb_store_close(db->store);
    db->store = NULL;
}

static void free_handle(akidb *db)
{
    stop_background(db);
    pthread_mutex_destroy(&db->dlq_lock);
    pthread_cond_destroy(&db->dlq_cond);
    for (size_t i = 0; i < db->n_colls; i++)
        akidb__coll_free(db->colls[i]);
    akidb__meta_close(db->meta);
    if (db->lock_fd >= 0)
        close(db->lock_fd);   /* releases the flock */
    akidb_allocator a = db->env.alloc;
    akidb__free(&a, db->colls);
    akidb__free(&a, db->dir);
    pthread_rwlock_destroy(&db->lock);
    akidb__free(&a, db);
}

static int64_t clock_us_of(void *ctx)
{
    return now_us(ctx);
}

static int64_t clock_ms_of(void *ctx)
{
    return now_us(ctx) / 1000;
}

/* The background thread retrying dead letters. */
static void *dlq_main(void *arg)
{
    akidb *db = arg;
    uint32_t interval = db->opts.dlq_retry_interval_ms ? db->opts.dlq_retry_interval_ms : 1000;
    uint32_t batch = db->opts.dlq_retry_batch ? db->opts.dlq_retry_batch : 10;
    pthread_mutex_lock(&db->dlq_lock);
    while (!db->dlq_stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)interval * 1000000u;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&db->dlq_cond, &db->dlq_lock, &until);
        if (db->dlq_stopping)
            break;
        pthread_mutex_unlock(&db->dlq_lock);
        uint32_t tried = 0, ok = 0;
        if (akidb__uploader_dlq_cycle(db->uploader, batch, &tried, &ok) != AKIDB_OK)
            akidb__log(&db->env, AKIDB_LOG_WARN, "dead-letter retry cycle failed: %s",
                       akidb_errmsg(NULL));
        pthread_mutex_lock(&db->dlq_lock);
    }
    pthread_mutex_unlock(&db->dlq_lock);
    return NULL;
}

/* The object store, its dispatch, the uploader and the retry thread. */
static int start_background(akidb *db)
{
    int rc;
    if (db->opts.store) {
        db->store = db->opts.store;
    } else {
        char *p = path_join(db, "objects", -1, "");
        if (!p)
            return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        rc = akidb_store_local_open(p, &db->store);
        akidb__free(&db->env.alloc, p);
        if (rc)
            return rc;
        db->own_store = 1;
    }
    /* The breaker's cool-down follows the handle's clock, like every other
     * timed policy, so tests drive it without sleeping. */
    akidb__store_policy policy;
    akidb__store_policy_init(&policy);
    policy.now_ms = clock_ms_of;
    policy.time_ctx = db;
    if ((rc = akidb__disp_new(db->store, &policy, &db->env.metrics, &db->env.alloc, &db->disp)))
        return rc;
    akidb__uploader_config ucfg;
    memset(&ucfg, 0, sizeof ucfg);
    ucfg.concurrency = db->opts.upload_concurrency;
    ucfg.max_attempts = db->opts.dlq_max_attempts;
    ucfg.now_us = clock_us_of;
    ucfg.clock_ctx = db;
    if ((rc = akidb__uploader_new(&db->env, db->disp, db->meta, &ucfg, &db->uploader)))
        return rc;
    if (db->opts.dlq_retry_interval_ms != AKIDB_NEVER) {
        if (pthread_create(&db->dlq_thread, NULL, dlq_main, db) != 0)
            return akidb__err(AKIDB_ERROR, "akidb_open: cannot start the retry thread");
        db->dlq_thread_started = 1;
    }
    return AKIDB_OK;
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
    int rc = make_dir(dir);
    if (rc)
        return rc;

    const akidb_allocator *a = o.allocator ? o.allocator : &akidb__default_allocator;
    akidb *db = akidb__calloc(a, 1, sizeof *db);
    if (!db)
        return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
    db->env.alloc = *a;
    db->lock_fd = -1;
    db->opts = o;
    db->opts.allocator = NULL;  /* copied into env; the caller's may go away */
    db->env.sync_mode = o.sync_mode;
    db->env.checkpoint_bytes = o.checkpoint_bytes ? o.checkpoint_bytes : DEFAULT_CHECKPOINT_BYTES;
    db->env.log_fn = o.log_fn;
    db->env.log_ctx = o.log_ctx;
    pthread_mutex_init(&db->dlq_lock, NULL);
    pthread_cond_init(&db->dlq_cond, NULL);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int lrc = pthread_rwlock_init(&db->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (lrc != 0) {
        akidb__free(a, db);
        return akidb__err(AKIDB_ERROR, "akidb_open: cannot create lock");
    }
    db->dir = akidb__strdup(&db->env.alloc, dir);
    if (!db->dir) {
        rc = akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        goto fail;
    }

    char *p = NULL;
    id_list wal_ids = { 0 }, ckpt_ids = { 0 };
    if (!(p = path_join(db, "LOCK", -1, ""))) {
        rc = akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        goto fail;
    }
    db->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (db->lock_fd < 0) {
        rc = akidb__err(AKIDB_IOERR, "akidb_open: cannot open %s: %s", p, strerror(errno));
    } else if (flock(db->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK
            ? akidb__err(AKIDB_BUSY, "akidb_open: database %s is open in another handle or "
                         "process", dir)
            : akidb__err(AKIDB_IOERR, "akidb_open: cannot lock %s: %s", p, strerror(errno));
    }
    akidb__free(&db->env.alloc, p);
    if (rc)
        goto fail;

    const char *subdirs[] = { "wal", "ckpt" };
    for (int i = 0; i < 2; i++) {
        if (!(p = path_join(db, subdirs[i], -1, ""))) {
            rc = akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
            goto fail;
        }
        rc = make_dir(p);
        akidb__free(&db->env.alloc, p);
        if (rc)
            goto fail;
    }
    if ((rc = scan_dir(db, "wal", ".wal", &wal_ids)) ||
        (rc = scan_dir(db, "ckpt", ".ckpt", &ckpt_ids)))
        goto fail_ids;
    if (!(p = path_join(db, "akidb.db", -1, ""))) {
        rc = akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        goto fail_ids;
    }
    rc = akidb__meta_open(p, wal_ids.n + ckpt_ids.n == 0, &db->meta);
    akidb__free(&db->env.alloc, p);
    if (rc ||
        (rc = akidb__meta_list(db->meta, recover_coll, db)) ||
        (rc = check_orphans(db, &wal_ids, "wal", ".wal")) ||
        (rc = check_orphans(db, &ckpt_ids, "ckpt", ".ckpt")))
        goto fail_ids;
    akidb__free(&db->env.alloc, wal_ids.ids);
    akidb__free(&db->env.alloc, ckpt_ids.ids);
    if ((rc = start_background(db)))
        goto fail;
    *out = db;
    return AKIDB_OK;

fail_ids:
    akidb__free(&db->env.alloc, wal_ids.ids);
    akidb__free(&db->env.alloc, ckpt_ids.ids);
fail:
    free_handle(db);
    return rc;
}

int akidb_close(akidb *db)
{
    akidb__err_clear();
    if (!db)
        return AKIDB_OK;
    int rc = AKIDB_OK;
    char first_err[512] = "";
    stop_background(db);   /* queued uploads finish first */
    for (size_t i = 0; i < db->n_colls; i++) {
        int crc = akidb__coll_checkpoint(db->colls[i], 0);
        if (crc != AKIDB_OK && rc == AKIDB_OK) {
            rc = crc;
            snprintf(first_err, sizeof first_err, "%s", akidb_errmsg(NULL));
        }
    }
    free_handle(db);
    if (rc)
        return akidb__err(rc, "akidb_close: checkpoint failed (the log was kept, nothing is "
                          "lost): %s", first_err);
    return AKIDB_OK;
}

int akidb_checkpoint(akidb *db, const char *name)
{
    akidb__err_clear();
    if (!db)
        return misuse("akidb_checkpoint", "db");
    int rc = AKIDB_OK;
    if (name && (rc = check_name(name, "collection")))
        return rc;
    pthread_rwlock_rdlock(&db->lock);
    int found = 0;
    for (size_t i = 0; i < db->n_colls && rc == AKIDB_OK; i++)
        if (!name || strcmp(akidb__coll_name(db->colls[i]), name) == 0) {
            found = 1;
            rc = akidb__coll_checkpoint(db->colls[i], 0);
        }
    pthread_rwlock_unlock(&db->lock);
    if (rc == AKIDB_OK && name && !found)
        rc = akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", name);
    return rc;
}

int akidb_metric_value(akidb *db, const char *name, int64_t *value_out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_metric_value", "db");
    if (!name) return misuse("akidb_metric_value", "name");
    if (!value_out) return misuse("akidb_metric_value", "value_out");
    if (akidb__metric_get(&db->env.metrics, name, value_out) != 0) {
        char q[96];
        return akidb__err(AKIDB_NOTFOUND, "akidb_metric_value: no metric named \"%s\"",
                          akidb__quote(q, sizeof q, name, 60));
    }
    return AKIDB_OK;
}

int akidb_metrics_render(akidb *db, char **text_out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_metrics_render", "db");
    if (!text_out) return misuse("akidb_metrics_render", "text_out");
    *text_out = akidb__metrics_render(&db->env.metrics);
    if (!*text_out)
        return akidb__err(AKIDB_NOMEM, "akidb_metrics_render: out of memory");
    return AKIDB_OK;
}

/* ---- uploads and dead letters ---------------------------------------- */

int akidb_upload_file(akidb *db, const char *key, const char *path)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_upload_file", "db");
    if (!key) return misuse("akidb_upload_file", "key");
    if (!path) return misuse("akidb_upload_file", "path");
    return akidb__uploader_submit_file(db->uploader, key, path);
}

int akidb_upload_wait(akidb *db)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_upload_wait", "db");
    akidb__uploader_drain(db->uploader);
    return AKIDB_OK;
}

typedef struct dlq_copy {
    akidb__meta_dlq *rows;
    size_t n, cap, string_bytes;
    int nomem;
} dlq_copy;

static int copy_dlq_row(void *ctx, const akidb__meta_dlq *e)
{
    dlq_copy *c = ctx;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        akidb__meta_dlq *r = realloc(c->rows, cap * sizeof *r);
        if (!r) {
            c->nomem = 1;
            return AKIDB_NOMEM;
        }
        c->rows = r;
        c->cap = cap;
    }
    akidb__meta_dlq *d = &c->rows[c->n];
    *d = *e;
    d->object_key = strdup(e->object_key);
    d->source_path = strdup(e->source_path);
    d->reason = strdup(e->reason);
    c->n++;
    if (!d->object_key || !d->source_path || !d->reason) {
        c->nomem = 1;
        return AKIDB_NOMEM;
    }
    c->string_bytes += strlen(e->object_key) + strlen(e->source_path) + strlen(e->reason) + 3;
    return AKIDB_OK;
}

int akidb_dlq_list(akidb *db, akidb_dlq_entry **entries_out, size_t *n_out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_dlq_list", "db");
    if (!entries_out) return misuse("akidb_dlq_list", "entries_out");
    if (!n_out) return misuse("akidb_dlq_list", "n_out");
    *entries_out = NULL;
    *n_out = 0;
    dlq_copy c = { NULL, 0, 0, 0, 0 };
    int rc = akidb__meta_dlq_list(db->meta, copy_dlq_row, &c);
    if (c.nomem)
        rc = akidb__err(AKIDB_NOMEM, "akidb_dlq_list: out of memory");
    if (rc == AKIDB_OK && c.n) {
        /* One block: the entries, then their strings. */
        akidb_dlq_entry *out = akidb_malloc(c.n * sizeof *out + c.string_bytes);
        if (!out) {
            rc = akidb__err(AKIDB_NOMEM, "akidb_dlq_list: out of memory");
        } else {
            char *str = (char *)(out + c.n);
            for (size_t i = 0; i < c.n; i++) {
                const akidb__meta_dlq *e = &c.rows[i];
                out[i].id = e->dlq_id;
                out[i].attempts = e->attempts;
                out[i].permanent = e->permanent;
                out[i].created_at_us = e->created_at;
                out[i].next_attempt_at_us = e->next_attempt_at;
                const char *src[3] = { e->object_key, e->source_path, e->reason };
                const char **dst[3] = { &out[i].key, &out[i].source_path, &out[i].reason };
                for (int k = 0; k < 3; k++) {
                    size_t len = strlen(src[k]) + 1;
                    memcpy(str, src[k], len);
                    *dst[k] = str;
                    str += len;
                }
            }
            *entries_out = out;
            *n_out = c.n;
        }
    }
    for (size_t i = 0; i < c.n; i++) {
        free(c.rows[i].object_key);
        free(c.rows[i].source_path);
        free(c.rows[i].reason);
    }
    free(c.rows);
    return rc;
}

int akidb_dlq_retry(akidb *db, int64_t id)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_dlq_retry", "db");
    return akidb__uploader_dlq_retry(db->uploader, id);
}

static int count_row(void *ctx, const akidb__meta_dlq *e)
{
    (void)e;
    (*(size_t *)ctx)++;
    return AKIDB_OK;
}

int akidb_dlq_purge(akidb *db, int64_t id)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_dlq_purge", "db");
    if (id == 0)
        return akidb__meta_dlq_purge_permanent(db->meta);
    size_t found = 0;
    int rc = akidb__meta_dlq_get(db->meta, id, count_row, &found);
    if (rc == AKIDB_OK && !found)
        return akidb__err(AKIDB_NOTFOUND, "akidb_dlq_purge: no dead letter %lld", (long long)id);
    return rc ? rc : akidb__meta_dlq_delete(db->meta, id);
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
    akidb__collection *coll = NULL;
    akidb__wal *w = NULL;
    char *wal_path = NULL, *ckpt_path = NULL;
    int64_t coll_id = 0;
    if (find_coll(db, name, NULL)) {
        rc = akidb__err(AKIDB_EXISTS, "collection %s already exists", name);
        goto done;
    }
    /* Catalog row first: a crash after it leaves a collection whose log
     * is recreated on open; a crash before it leaves nothing. */
    if ((rc = akidb__meta_create(db->meta, name, cfg, now_us(db), &coll_id)))
        goto done;
    wal_path = path_join(db, "wal", coll_id, ".wal");
    ckpt_path = path_join(db, "ckpt", coll_id, ".ckpt");
    if (!wal_path || !ckpt_path) {
        rc = akidb__err(AKIDB_NOMEM, "collection %s: out of memory", name);
    } else if ((rc = akidb__coll_new(name, cfg, &db->env, (uint64_t)coll_id, ckpt_path,
                                     &coll)) == AKIDB_OK &&
               (rc = akidb__wal_create(&db->env, wal_path, (uint64_t)coll_id, cfg->dim,
                                       &w)) == AKIDB_OK) {
        akidb__coll_attach_wal(coll, w);
        rc = add_coll(db, coll);
    }
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", akidb_errmsg(NULL));
        akidb__coll_free(coll);
        if (wal_path)
            unlink(wal_path);
        akidb__meta_drop(db->meta, coll_id);
        akidb__err(rc, "%s", msg);
    }
done:
    akidb__free(&db->env.alloc, wal_path);
    akidb__free(&db->env.alloc, ckpt_path);
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
    if (!c) {
        rc = akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", name);
    } else if ((rc = akidb__meta_drop(db->meta, (int64_t)akidb__coll_id(c))) == AKIDB_OK) {
        /* The row is gone: from here the files are leftovers that the next
         * open would remove anyway, so failures are only logged. */
        int64_t id = (int64_t)akidb__coll_id(c);
        db->colls[i] = db->colls[--db->n_colls];
        akidb__metric_set(&db->env.metrics, AKIDB__M_COLLECTIONS, (int64_t)db->n_colls);
        akidb__coll_free(c);
        const char *subs[2][2] = { { "wal", ".wal" }, { "ckpt", ".ckpt" } };
        for (int k = 0; k < 2; k++) {
            char *p = path_join(db, subs[k][0], id, subs[k][1]);
            if (p && unlink(p) != 0 && errno != ENOENT)
                akidb__log(&db->env, AKIDB_LOG_WARN, "%s: cannot remove: %s", p, strerror(errno));
            akidb__free(&db->env.alloc, p);
        }
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

/* ---- snapshots -------------------------------------------------------- */

/* Read a whole local file through mmap; release with munmap_file. */
static int map_file(const char *path, void **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return akidb__err(errno == ENOENT ? AKIDB_NOTFOUND : AKIDB_IOERR, "%s: %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return akidb__err(AKIDB_IOERR, "%s: %s", path, strerror(errno));
    }
    *len = (size_t)st.st_size;
    *data = *len ? mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (*data == MAP_FAILED)
        return akidb__err(AKIDB_IOERR, "%s: cannot map: %s", path, strerror(errno));
    return AKIDB_OK;
}

static void unmap_file(void *data, size_t len)
{
    if (data && len)
        munmap(data, len);
}

/* A temporary path under dir/tmp for one snapshot being written. */
static char *tmp_path(akidb *db, const char *what)
{
    char *dir = path_join(db, "tmp", -1, "");
    if (!dir)
        return NULL;
    mkdir(dir, 0755);
    char buf[4096];
    static _Thread_local unsigned counter;
    snprintf(buf, sizeof buf, "%s/%s-%ld-%u-%u.tmp", dir, what, (long)getpid(),
             (unsigned)(uintptr_t)&counter % 100000u, ++counter);
    akidb__free(&db->env.alloc, dir);
    return akidb__strdup(&db->env.alloc, buf);
}

int akidb_export_parquet(akidb *db, const char *coll, const char *path)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_export_parquet", "db");
    if (!coll) return misuse("akidb_export_parquet", "coll");
    if (!path) return misuse("akidb_export_parquet", "path");
    akidb__collection *c;
    int rc = enter(db, coll, &c);
    if (rc)
        return rc;
    akidb__snap_result res;
    rc = akidb__snap_write(&db->env, c, path, 1, &res);
    leave(db);
    return rc;
}

int akidb_snapshot_create(akidb *db, const char *coll, char *id_out, size_t id_len)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_snapshot_create", "db");
    if (!coll) return misuse("akidb_snapshot_create", "coll");
    if (id_out && id_len < AKIDB_SNAPSHOT_ID_LEN)
        return akidb__err(AKIDB_INVALID, "akidb_snapshot_create: id_len %zu is below "
                          "AKIDB_SNAPSHOT_ID_LEN (%d)", id_len, AKIDB_SNAPSHOT_ID_LEN);
    akidb__collection *c;
    int rc = enter(db, coll, &c);
    if (rc)
        return rc;
    akidb__meta_snap e;
    memset(&e, 0, sizeof e);
    e.coll_id = (int64_t)akidb__coll_id(c);
    e.created_at = now_us(db);
    /* Time-ordered ids; the counter separates snapshots of one microsecond
     * (an injected clock can stand still). */
    static _Atomic unsigned seq;
    snprintf(e.snapshot_id, sizeof e.snapshot_id, "%016llx-%04x",
             (unsigned long long)e.created_at, (unsigned)(seq++ & 0xffff));
    snprintf(e.object_key, sizeof e.object_key, "snapshots/%s/%s.parquet", coll, e.snapshot_id);
    char *tmp = tmp_path(db, "snapshot");
    akidb__snap_result res;
    if (!tmp)
        rc = akidb__err(AKIDB_NOMEM, "akidb_snapshot_create: out of memory");
    else
        rc = akidb__snap_write(&db->env, c, tmp, 0, &res);   /* the store makes it durable */
    leave(db);   /* the upload needs no lock: the file is a private copy */
    void *data = NULL;
    size_t len = 0;
    if (rc == AKIDB_OK && (rc = map_file(tmp, &data, &len)) == AKIDB_OK) {
        rc = akidb__disp_put(db->disp, e.object_key, data, len);
        unmap_file(data, len);
    }
    if (rc == AKIDB_OK) {
        e.rows = res.rows;
        e.bytes = res.bytes;
        memcpy(e.sha256, res.sha256, sizeof e.sha256);
        rc = akidb__meta_snap_add(db->meta, &e);
        if (rc)   /* not recorded: do not leave an object no one knows of */
            akidb__disp_delete(db->disp, e.object_key);
    }
    if (tmp) {
        unlink(tmp);
        akidb__free(&db->env.alloc, tmp);
    }
    if (rc == AKIDB_OK && id_out)
        snprintf(id_out, id_len, "%s", e.snapshot_id);
    return rc;
}

typedef struct snap_rows {
    akidb__meta_snap *rows;
    size_t n, cap;
} snap_rows;

static int collect_snap(void *ctx, const akidb__meta_snap *e)
{
    snap_rows *s = ctx;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        akidb__meta_snap *r = realloc(s->rows, cap * sizeof *r);
        if (!r)
            return akidb__err(AKIDB_NOMEM, "out of memory listing snapshots");
        s->rows = r;
        s->cap = cap;
    }
    s->rows[s->n++] = *e;
    return AKIDB_OK;
}

/* The catalog's snapshots of collection `coll`, newest first. */
static int list_snaps(akidb *db, const char *coll, int64_t *coll_id, snap_rows *out)
{
    akidb__collection *c;
    int rc = enter(db, coll, &c);
    if (rc)
        return rc;
    *coll_id = (int64_t)akidb__coll_id(c);
    leave(db);
    memset(out, 0, sizeof *out);
    return akidb__meta_snap_list(db->meta, *coll_id, collect_snap, out);
}

int akidb_snapshot_list(akidb *db, const char *coll, akidb_snapshot_info **out, size_t *n_out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_snapshot_list", "db");
    if (!coll) return misuse("akidb_snapshot_list", "coll");
    if (!out) return misuse("akidb_snapshot_list", "out");
    if (!n_out) return misuse("akidb_snapshot_list", "n_out");
    *out = NULL;
    *n_out = 0;
    int64_t coll_id;
    snap_rows s;
    int rc = list_snaps(db, coll, &coll_id, &s);
    if (rc == AKIDB_OK && s.n) {
        akidb_snapshot_info *info = akidb_malloc(s.n * sizeof *info);
        if (!info) {
            rc = akidb__err(AKIDB_NOMEM, "akidb_snapshot_list: out of memory");
        } else {
            for (size_t i = 0; i < s.n; i++) {
                memset(&info[i], 0, sizeof info[i]);
                snprintf(info[i].id, sizeof info[i].id, "%s", s.rows[i].snapshot_id);
                snprintf(info[i].key, sizeof info[i].key, "%s", s.rows[i].object_key);
                snprintf(info[i].sha256, sizeof info[i].sha256, "%s", s.rows[i].sha256);
                info[i].rows = s.rows[i].rows;
                info[i].bytes = s.rows[i].bytes;
                info[i].created_at_us = s.rows[i].created_at;
            }
            *out = info;
            *n_out = s.n;
        }
    }
    free(s.rows);
    return rc;
}

/* Download snapshot e, verify it, and build a detached collection. */
static int load_snapshot(akidb *db, const char *coll, const akidb_collection_config *cfg,
                         int64_t coll_id, const akidb__meta_snap *e, akidb__collection **out)
{
    void *data = NULL;
    size_t len = 0;
    char sha[65], what[AKIDB_MAX_KEY_LEN + 32];
    snprintf(what, sizeof what, "snapshot %s", e->object_key);
    int rc = akidb__disp_get(db->disp, e->object_key, 0, UINT64_MAX, &data, &len);
    if (rc)
        return rc;
    if (len != e->bytes) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: %zu bytes, the catalog recorded %llu", what, len,
                        (unsigned long long)e->bytes);
    } else if (akidb__sha256_hex(data, len, sha), strcmp(sha, e->sha256) != 0) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: SHA-256 %s does not match the recorded %s", what,
                        sha, e->sha256);
    }
    char *ckpt = path_join(db, "ckpt", coll_id, ".ckpt");
    akidb__collection *c = NULL;
    if (rc == AKIDB_OK && !ckpt)
        rc = akidb__err(AKIDB_NOMEM, "%s: out of memory", what);
    if (rc == AKIDB_OK &&
        (rc = akidb__coll_new(coll, cfg, &db->env, (uint64_t)coll_id, ckpt, &c)) == AKIDB_OK &&
        (rc = akidb__snap_load(&db->env, data, len, what, c)) != AKIDB_OK) {
        akidb__coll_free(c);
        c = NULL;
    }
    akidb__free(&db->env.alloc, ckpt);
    akidb_free(data);
    *out = c;
    return rc;
}

int akidb_snapshot_restore(akidb *db, const char *coll, const char *id)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_snapshot_restore", "db");
    if (!coll) return misuse("akidb_snapshot_restore", "coll");
    int64_t coll_id;
    snap_rows s;
    int rc = list_snaps(db, coll, &coll_id, &s);
    if (rc) {
        free(s.rows);
        return rc;
    }
    akidb_collection_config cfg;
    if ((rc = akidb_collection_info(db, coll, &cfg)))
        goto done;
    akidb__collection *fresh = NULL;
    int tried = 0;
    char last_err[512] = "";
    for (size_t i = 0; i < s.n && !fresh; i++) {
        if (id && strcmp(s.rows[i].snapshot_id, id) != 0)
            continue;
        tried++;
        rc = load_snapshot(db, coll, &cfg, coll_id, &s.rows[i], &fresh);
        if (rc) {
            snprintf(last_err, sizeof last_err, "%s", akidb_errmsg(NULL));
            if (id || (rc != AKIDB_CORRUPT && rc != AKIDB_NOTFOUND))
                goto done;
            akidb__log(&db->env, AKIDB_LOG_WARN, "restore of %s: skipping snapshot %s: %s",
                       coll, s.rows[i].snapshot_id, last_err);
        }
    }
    if (!fresh) {
        rc = !tried ? akidb__err(AKIDB_NOTFOUND, "collection %s has no snapshot%s%s", coll,
                                 id ? " " : "", id ? id : "")
                    : akidb__err(rc, "collection %s: no snapshot verifies; last error: %s",
                                 coll, last_err);
        goto done;
    }
    /* Swap: same name, same log; the checkpoint makes it durable. */
    pthread_rwlock_wrlock(&db->lock);
    size_t at;
    akidb__collection *old = find_coll(db, coll, &at);
    if (!old || (int64_t)akidb__coll_id(old) != coll_id) {
        pthread_rwlock_unlock(&db->lock);
        akidb__coll_free(fresh);
        rc = akidb__err(AKIDB_CONFLICT, "collection %s was dropped or recreated during the "
                        "restore", coll);
        goto done;
    }
    akidb__coll_attach_wal(fresh, akidb__coll_detach_wal(old));
    akidb__coll_set_restored(fresh, akidb__coll_last_seq(old));
    rc = akidb__coll_checkpoint(fresh, 0);
    if (rc) {
        akidb__coll_attach_wal(old, akidb__coll_detach_wal(fresh));
        akidb__coll_free(fresh);
    } else {
        db->colls[at] = fresh;
        akidb__coll_free(old);
    }
    pthread_rwlock_unlock(&db->lock);
done:
    free(s.rows);
    return rc;
}

int akidb_snapshot_delete(akidb *db, const char *coll, const char *id)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_snapshot_delete", "db");
    if (!coll) return misuse("akidb_snapshot_delete", "coll");
    if (!id) return misuse("akidb_snapshot_delete", "id");
    int64_t coll_id;
    snap_rows s;
    int rc = list_snaps(db, coll, &coll_id, &s);
    const akidb__meta_snap *e = NULL;
    for (size_t i = 0; rc == AKIDB_OK && i < s.n; i++)
        if (strcmp(s.rows[i].snapshot_id, id) == 0)
            e = &s.rows[i];
    if (rc == AKIDB_OK && !e)
        rc = akidb__err(AKIDB_NOTFOUND, "collection %s has no snapshot %s", coll, id);
    /* The object first: a catalog row without its object is noticed at
     * restore; an object without its row would be leaked. */
    if (rc == AKIDB_OK && (rc = akidb__disp_delete(db->disp, e->object_key)) == AKIDB_OK)
        rc = akidb__meta_snap_delete(db->meta, coll_id, id);
    free(s.rows);
    return rc;
}
