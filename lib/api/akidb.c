/*
 * akidb.c - the public entry points: argument checks, versioned structs,
 * and the calls into the engine.  Nothing else.
 *
 * Every public function starts by clearing the calling thread's error,
 * then checks its arguments (NULL handles and out-parameters are
 * AKIDB_MISUSE; bad values are AKIDB_INVALID with a message naming the
 * value), then calls lib/engine/.  Calls on one collection hold it between
 * akidb__db_enter() (which also brings a WARM or COLD collection back into
 * RAM) and akidb__db_leave() (db.c explains the locks), which keeps the
 * collection alive, and in RAM, while it is used.
 *
 * Versioned structs (see the top of akidb.h): an input struct is read by
 * its version's fields only, through a copy into a complete current struct
 * (read_versioned); an output struct is written by its version's fields
 * only (write_versioned).  So a program built against an older header
 * never has bytes read or written beyond the struct it allocated.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/env.h"
#include "engine/catalog.h"
#include "engine/collection.h"
#include "engine/db.h"
#include "engine/snapshot.h"
#include "engine/tier.h"
#include "engine/uploader.h"

/* ---- errors, version, memory ------------------------------------------ */

const char *akidb_errstr(int rc)
{
    return akidb__errstr(rc);
}

const char *akidb_errname(int rc)
{
    return akidb__errname(rc);
}

int akidb_set_errmsg(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    akidb__err_v(rc, fmt, ap);
    va_end(ap);
    return rc;
}

const char *akidb_errmsg(const akidb *db)
{
    (void)db;   /* messages are per thread, whichever handle raised them */
    return akidb__errmsg();
}

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
    return akidb__out_malloc(n);
}

void akidb_free(void *p)
{
    akidb__out_free(p);
}

/* ---- argument checks ------------------------------------------------- */

static int misuse(const char *fn, const char *arg)
{
    return akidb__err(AKIDB_MISUSE, "%s: %s must not be NULL", fn, arg);
}

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

/* A struct's version must be 1..current: newer means a program built
 * against a newer header than this library (its fields cannot be read). */
static int check_version(const char *fn, const char *what, uint32_t version, uint32_t current)
{
    if (version >= 1 && version <= current)
        return AKIDB_OK;
    return akidb__err(AKIDB_INVALID, "%s: %s version %u is not supported (this library "
                      "knows 1..%u; fill the struct with its *_init function or set its "
                      "version)", fn, what, version, current);
}

/* Bytes of a versioned struct that version v has: the offset of the first
 * field of v+1, or the whole struct for the current version.  Each struct
 * lists the offsets where its versions end. */
static size_t versioned_size(uint32_t v, const size_t *ends, size_t n_ends)
{
    return v <= n_ends ? ends[v - 1] : ends[n_ends - 1];
}

static const size_t options_ends[] = {
    offsetof(akidb_options, read_only),   /* version 1 ends where 2 begins */
    offsetof(akidb_options, max_index_lag),
    sizeof(akidb_options),
};
static const size_t stats_ends[] = {
    offsetof(akidb_collection_stats, log_truncated_bytes),
    offsetof(akidb_collection_stats, compact_bytes),
    sizeof(akidb_collection_stats),
};
static const size_t document_ends[] = { sizeof(akidb_document) };
static const size_t config_ends[] = {
    offsetof(akidb_collection_config, storage),
    sizeof(akidb_collection_config),
};
static const size_t search_ends[] = { sizeof(akidb_search_params) };
#define N_OF(a) (sizeof a / sizeof a[0])

/* Copy the caller's input struct of version `version` over `full`, a
 * struct already filled with the current defaults. */
static void read_versioned(void *full, const void *in, uint32_t version, const size_t *ends,
                           size_t n_ends)
{
    memcpy(full, in, versioned_size(version, ends, n_ends));
}

/* Copy the library's complete struct into the caller's, up to what the
 * caller's version has; the caller's version field stays as it was. */
static void write_versioned(void *out, const void *full, uint32_t version, const size_t *ends,
                            size_t n_ends)
{
    size_t n = versioned_size(version, ends, n_ends);
    memcpy((char *)out + sizeof(uint32_t), (const char *)full + sizeof(uint32_t),
           n - sizeof(uint32_t));
}

static int check_config(const char *name, const akidb_collection_config *in,
                        akidb_collection_config *cfg)
{
    int rc = check_version("akidb_collection_create", "config", in->version,
                           AKIDB_COLLECTION_CONFIG_VERSION);
    if (rc)
        return rc;
    akidb_collection_config_init(cfg, 0, AKIDB_METRIC_L2);
    read_versioned(cfg, in, in->version, config_ends, N_OF(config_ends));
    cfg->version = AKIDB_COLLECTION_CONFIG_VERSION;
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
    /* version 1 has none of these: init's defaults (f32) stand; a zeroed
     * struct (memset, version set by hand) means f32 as well */
    if (cfg->storage == 0)
        cfg->storage = AKIDB_STORAGE_F32;
    if (cfg->storage != AKIDB_STORAGE_F32 && cfg->storage != AKIDB_STORAGE_F16 &&
        cfg->storage != AKIDB_STORAGE_INT8)
        return akidb__err(AKIDB_INVALID, "collection %s: storage %d is unknown (use "
                          "AKIDB_STORAGE_F32, _F16 or _INT8)", name, (int)cfg->storage);
    if (cfg->exact != AKIDB_EXACT_RAM && cfg->exact != AKIDB_EXACT_FILE &&
        cfg->exact != AKIDB_EXACT_NONE)
        return akidb__err(AKIDB_INVALID, "collection %s: exact %d is unknown (use "
                          "AKIDB_EXACT_RAM, _FILE or _NONE)", name, (int)cfg->exact);
    if (cfg->rerank > 64)
        return akidb__err(AKIDB_INVALID, "collection %s: rerank %u is out of range 0..64",
                          name, cfg->rerank);
    /* f32 vectors are exact: the other two fields mean nothing there */
    if (cfg->storage == AKIDB_STORAGE_F32) {
        cfg->exact = AKIDB_EXACT_RAM;
        cfg->rerank = 0;
    }
    return AKIDB_OK;
}

/* Enter collection `coll` after checking db and the name. */
static int enter(akidb *db, const char *fn, const char *coll, akidb__collection **c)
{
    if (!db) return misuse(fn, "db");
    if (!coll) return misuse(fn, "coll");
    int rc = check_name(coll, "collection");
    return rc ? rc : akidb__db_enter(db, coll, c);
}

/* The same for a write: it also waits for a promotion to be durable. */
static int enter_write(akidb *db, const char *fn, const char *coll, akidb__collection **c)
{
    if (!db) return misuse(fn, "db");
    if (!coll) return misuse(fn, "coll");
    int rc = check_name(coll, "collection");
    return rc ? rc : akidb__db_enter_write(db, coll, c);
}

/* ---- open / close ---------------------------------------------------- */

/* The *_init_v functions: the defaults of the current struct, copied up
 * to the caller's version (a struct of an older program is smaller). */
static int init_version_ok(void *out, uint32_t version, uint32_t current)
{
    if (version >= 1 && version <= current)
        return 1;
    *(uint32_t *)out = version;   /* every version starts with it */
    return 0;
}

void akidb_options_init_v(akidb_options *opts, uint32_t version)
{
    if (!opts || !init_version_ok(opts, version, AKIDB_OPTIONS_VERSION))
        return;
    akidb_options full;
    memset(&full, 0, sizeof full);
    full.version = version;
    full.sync_mode = AKIDB_SYNC_ALWAYS;
    memcpy(opts, &full, versioned_size(version, options_ends, N_OF(options_ends)));
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
    akidb_options_init(&o);
    if (opts) {
        int rc = check_version("akidb_open", "options", opts->version, AKIDB_OPTIONS_VERSION);
        if (rc)
            return rc;
        read_versioned(&o, opts, opts->version, options_ends, N_OF(options_ends));
        o.version = AKIDB_OPTIONS_VERSION;
    }
    if (o.sync_mode < AKIDB_SYNC_ALWAYS || o.sync_mode > AKIDB_SYNC_NONE)
        return akidb__err(AKIDB_INVALID, "akidb_open: sync_mode %d is unknown", (int)o.sync_mode);
    if (o.allocator && (!o.allocator->malloc_fn || !o.allocator->realloc_fn ||
                        !o.allocator->free_fn))
        return akidb__err(AKIDB_INVALID, "akidb_open: allocator must set malloc_fn, "
                          "realloc_fn and free_fn");
    if (o.file_mode & ~0777u)
        return akidb__err(AKIDB_INVALID, "akidb_open: file_mode 0%o has bits outside 0777",
                          o.file_mode);
    if (dir[0] == '\0')
        return akidb__err(AKIDB_INVALID, "akidb_open: directory path is empty");
    return akidb__db_open(dir, &o, out);
}

int akidb_close(akidb *db)
{
    akidb__err_clear();
    if (!db)
        return AKIDB_OK;
    return akidb__db_close(db);
}

int akidb_checkpoint(akidb *db, const char *name)
{
    akidb__err_clear();
    if (!db)
        return misuse("akidb_checkpoint", "db");
    int rc;
    if (name && (rc = check_name(name, "collection")))
        return rc;
    return akidb__db_checkpoint(db, name);
}

int akidb_index_wait(akidb *db, const char *coll, uint32_t timeout_ms)
{
    akidb__err_clear();
    if (!db)
        return misuse("akidb_index_wait", "db");
    int rc;
    if (coll && (rc = check_name(coll, "collection")))
        return rc;
    return akidb__db_index_wait(db, coll, timeout_ms);
}

int akidb_metric_value(akidb *db, const char *name, int64_t *value_out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_metric_value", "db");
    if (!name) return misuse("akidb_metric_value", "name");
    if (!value_out) return misuse("akidb_metric_value", "value_out");
    if (strncmp(name, "akidb_tier_bytes", 16) == 0)
        akidb__tier_refresh_gauges(akidb__db_tier(db));
    if (akidb__metric_get(&akidb__db_env(db)->metrics, name, value_out) != 0) {
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
    akidb__tier_refresh_gauges(akidb__db_tier(db));
    *text_out = akidb__metrics_render(&akidb__db_env(db)->metrics);
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
    int rc = akidb__db_writable(db, "akidb_upload_file");
    return rc ? rc : akidb__uploader_submit_file(akidb__db_uploader(db), key, path);
}

int akidb_upload_wait(akidb *db)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_upload_wait", "db");
    if (akidb__db_uploader(db))   /* a read-only handle has none */
        akidb__uploader_drain(akidb__db_uploader(db));
    return AKIDB_OK;
}

/* The rows of a dead-letter listing, copied while the catalog calls back. */
typedef struct dlq_copy {
    akidb__catalog_dlq *rows;
    size_t n, cap, string_bytes;
    const akidb_allocator *alloc;
} dlq_copy;

static char *copy_str(const akidb_allocator *a, const char *s)
{
    return akidb__strdup(a, s ? s : "");
}

static int copy_dlq_row(void *ctx, const akidb__catalog_dlq *e)
{
    dlq_copy *c = ctx;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        akidb__catalog_dlq *r = akidb__realloc_array(c->alloc, c->rows, cap, sizeof *r);
        if (!r)
            return akidb__err(AKIDB_NOMEM, "akidb_dlq_list: out of memory");
        c->rows = r;
        c->cap = cap;
    }
    akidb__catalog_dlq *d = &c->rows[c->n];
    *d = *e;
    d->object_key = copy_str(c->alloc, e->object_key);
    d->source_path = copy_str(c->alloc, e->source_path);
    d->reason = copy_str(c->alloc, e->reason);
    c->n++;
    if (!d->object_key || !d->source_path || !d->reason)
        return akidb__err(AKIDB_NOMEM, "akidb_dlq_list: out of memory");
    c->string_bytes += strlen(d->object_key) + strlen(d->source_path) + strlen(d->reason) + 3;
    return AKIDB_OK;
}

int akidb_dlq_list(akidb *db, akidb_dlq_entry ***entries_out, size_t *n_out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_dlq_list", "db");
    if (!entries_out) return misuse("akidb_dlq_list", "entries_out");
    if (!n_out) return misuse("akidb_dlq_list", "n_out");
    *entries_out = NULL;
    *n_out = 0;
    dlq_copy c = { NULL, 0, 0, 0, &akidb__db_env(db)->alloc };
    int rc = akidb__catalog_dlq_list(akidb__db_catalog(db), copy_dlq_row, &c);
    if (rc == AKIDB_OK && c.n) {
        /* One block: the pointers, the entries, then their strings. */
        akidb_dlq_entry **list = akidb__out_malloc(c.n * (sizeof *list + sizeof **list) +
                                                   c.string_bytes);
        if (!list) {
            rc = akidb__err(AKIDB_NOMEM, "akidb_dlq_list: out of memory");
        } else {
            akidb_dlq_entry *ent = (akidb_dlq_entry *)(list + c.n);
            char *str = (char *)(ent + c.n);
            for (size_t i = 0; i < c.n; i++) {
                const akidb__catalog_dlq *e = &c.rows[i];
                memset(&ent[i], 0, sizeof ent[i]);
                ent[i].version = AKIDB_DLQ_ENTRY_VERSION;
                ent[i].id = e->dlq_id;
                ent[i].attempts = e->attempts;
                ent[i].permanent = e->permanent;
                ent[i].created_at_us = e->created_at;
                ent[i].next_attempt_at_us = e->next_attempt_at;
                const char *src[3] = { e->object_key, e->source_path, e->reason };
                const char **dst[3] = { &ent[i].key, &ent[i].source_path, &ent[i].reason };
                for (int k = 0; k < 3; k++) {
                    size_t len = strlen(src[k]) + 1;
                    memcpy(str, src[k], len);
                    *dst[k] = str;
                    str += len;
                }
                list[i] = &ent[i];
            }
            *entries_out = list;
            *n_out = c.n;
        }
    }
    for (size_t i = 0; i < c.n; i++) {
        akidb__free(c.alloc, c.rows[i].object_key);
        akidb__free(c.alloc, c.rows[i].source_path);
        akidb__free(c.alloc, c.rows[i].reason);
    }
    akidb__free(c.alloc, c.rows);
    return rc;
}

int akidb_dlq_retry(akidb *db, int64_t id)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_dlq_retry", "db");
    int rc = akidb__db_writable(db, "akidb_dlq_retry");
    return rc ? rc : akidb__uploader_dlq_retry(akidb__db_uploader(db), id);
}

static int count_row(void *ctx, const akidb__catalog_dlq *e)
{
    (void)e;
    (*(size_t *)ctx)++;
    return AKIDB_OK;
}

int akidb_dlq_purge(akidb *db, int64_t id)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_dlq_purge", "db");
    int rc = akidb__db_writable(db, "akidb_dlq_purge");
    if (rc)
        return rc;
    akidb__catalog *cat = akidb__db_catalog(db);
    if (id == 0)
        return akidb__catalog_dlq_purge_permanent(cat);
    size_t found = 0;
    rc = akidb__catalog_dlq_get(cat, id, count_row, &found);
    if (rc == AKIDB_OK && !found)
        return akidb__err(AKIDB_NOTFOUND, "akidb_dlq_purge: no dead letter %lld", (long long)id);
    return rc ? rc : akidb__catalog_dlq_delete(cat, id);
}

/* ---- collections ----------------------------------------------------- */

void akidb_collection_config_init_v(akidb_collection_config *cfg, uint32_t dim,
                                    akidb_metric metric, uint32_t version)
{
    if (!cfg || !init_version_ok(cfg, version, AKIDB_COLLECTION_CONFIG_VERSION))
        return;
    akidb_collection_config full;
    memset(&full, 0, sizeof full);
    full.version = version;
    full.dim = dim;
    full.metric = metric;
    full.hnsw_m = 16;
    full.ef_construction = 200;
    full.ef_search = 64;
    full.storage = AKIDB_STORAGE_F32;
    full.exact = AKIDB_EXACT_RAM;
    full.rerank = 0;
    memcpy(cfg, &full, versioned_size(version, config_ends, N_OF(config_ends)));
}

int akidb_collection_create(akidb *db, const char *name, const akidb_collection_config *cfg)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_collection_create", "db");
    if (!name) return misuse("akidb_collection_create", "name");
    if (!cfg) return misuse("akidb_collection_create", "cfg");
    akidb_collection_config full;
    int rc = check_name(name, "collection");
    if (rc || (rc = check_config(name, cfg, &full)))
        return rc;
    return akidb__db_create(db, name, &full);
}

int akidb_collection_drop(akidb *db, const char *name)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_collection_drop", "db");
    if (!name) return misuse("akidb_collection_drop", "name");
    int rc = check_name(name, "collection");
    return rc ? rc : akidb__db_drop(db, name);
}

int akidb_collection_count(akidb *db, const char *name, uint64_t *n_out)
{
    akidb__err_clear();
    if (!n_out) return misuse("akidb_collection_count", "n_out");
    if (!db) return misuse("akidb_collection_count", "db");
    if (!name) return misuse("akidb_collection_count", "name");
    int rc = check_name(name, "collection");
    return rc ? rc : akidb__db_stat(db, name, NULL, NULL, n_out);
}

int akidb_collection_info(akidb *db, const char *name, akidb_collection_config *cfg_out)
{
    akidb__err_clear();
    if (!cfg_out) return misuse("akidb_collection_info", "cfg_out");
    int rc = check_version("akidb_collection_info", "cfg_out", cfg_out->version,
                           AKIDB_COLLECTION_CONFIG_VERSION);
    if (rc)
        return rc;
    if (!db) return misuse("akidb_collection_info", "db");
    if (!name) return misuse("akidb_collection_info", "name");
    akidb_collection_config full;
    if ((rc = check_name(name, "collection")) || (rc = akidb__db_stat(db, name, NULL, &full, NULL)))
        return rc;
    write_versioned(cfg_out, &full, cfg_out->version, config_ends, N_OF(config_ends));
    return AKIDB_OK;
}

int akidb_collection_list(akidb *db, char ***names_out, size_t *n_out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_collection_list", "db");
    if (!names_out) return misuse("akidb_collection_list", "names_out");
    if (!n_out) return misuse("akidb_collection_list", "n_out");
    return akidb__db_list(db, names_out, n_out);
}

int akidb_collection_stat(akidb *db, const char *name, akidb_collection_stats *out)
{
    akidb__err_clear();
    if (!out) return misuse("akidb_collection_stat", "out");
    int rc = check_version("akidb_collection_stat", "stats", out->version,
                           AKIDB_COLLECTION_STATS_VERSION);
    if (rc)
        return rc;
    if (!db) return misuse("akidb_collection_stat", "db");
    if (!name) return misuse("akidb_collection_stat", "name");
    akidb_collection_stats full;
    memset(&full, 0, sizeof full);
    if ((rc = check_name(name, "collection")) || (rc = akidb__db_stat(db, name, &full, NULL, NULL)))
        return rc;
    write_versioned(out, &full, out->version, stats_ends, N_OF(stats_ends));
    return AKIDB_OK;
}

/* ---- documents ------------------------------------------------------- */

static int write_docs(akidb *db, const char *fn, int upsert, const char *coll, size_t n,
                      const float *vectors, const char *const *external_ids,
                      const char *const *metadata_json, uint64_t *ids_out)
{
    akidb__err_clear();
    if (db && coll && !vectors && n > 0) return misuse(fn, "vectors");
    if (db && coll && upsert && !external_ids && n > 0) return misuse(fn, "external_ids");
    akidb__collection *c;
    int rc = enter_write(db, fn, coll, &c);
    if (rc)
        return rc;
    if (n > 0)
        rc = akidb__db_write(db, c, upsert, n, vectors, external_ids, metadata_json, ids_out);
    akidb__db_leave(db, c);
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
    akidb__collection *c;
    int rc = enter_write(db, "akidb_delete", coll, &c);
    if (rc)
        return rc;
    rc = akidb__db_delete(db, c, id);
    akidb__db_leave(db, c);
    return rc;
}

int akidb_lookup(akidb *db, const char *coll, const char *external_id, uint64_t *id_out)
{
    akidb__err_clear();
    if (!external_id) return misuse("akidb_lookup", "external_id");
    if (!id_out) return misuse("akidb_lookup", "id_out");
    akidb__collection *c;
    int rc = enter(db, "akidb_lookup", coll, &c);
    if (rc)
        return rc;
    rc = akidb__coll_lookup(c, external_id, id_out);
    akidb__db_leave(db, c);
    return rc;
}

int akidb_get(akidb *db, const char *coll, uint64_t id, float *vector_out,
              char **metadata_json_out)
{
    akidb__err_clear();
    if (metadata_json_out)
        *metadata_json_out = NULL;
    akidb__collection *c;
    int rc = enter(db, "akidb_get", coll, &c);
    if (rc)
        return rc;
    rc = akidb__coll_get(c, id, vector_out, metadata_json_out, NULL, NULL);
    akidb__db_leave(db, c);
    return rc;
}

int akidb_document_get(akidb *db, const char *coll, uint64_t id, float *vector_out,
                       akidb_document *doc_out)
{
    akidb__err_clear();
    if (!doc_out) return misuse("akidb_document_get", "doc_out");
    int rc = check_version("akidb_document_get", "doc_out", doc_out->version,
                           AKIDB_DOCUMENT_VERSION);
    if (rc)
        return rc;
    doc_out->external_id = NULL;
    doc_out->metadata_json = NULL;
    akidb__collection *c;
    if ((rc = enter(db, "akidb_document_get", coll, &c)))
        return rc;
    akidb_document full;
    memset(&full, 0, sizeof full);
    full.id = id;
    rc = akidb__coll_get(c, id, vector_out, &full.metadata_json, &full.external_id,
                         &full.inserted_at_us);
    akidb__db_leave(db, c);
    if (rc == AKIDB_OK)
        write_versioned(doc_out, &full, doc_out->version, document_ends, N_OF(document_ends));
    return rc;
}

void akidb_document_clear(akidb_document *doc)
{
    if (!doc)
        return;
    akidb__out_free(doc->external_id);
    akidb__out_free(doc->metadata_json);
    doc->external_id = NULL;
    doc->metadata_json = NULL;
}

/* ---- search ---------------------------------------------------------- */

void akidb_search_params_init_v(akidb_search_params *p, uint32_t version)
{
    if (!p || !init_version_ok(p, version, AKIDB_SEARCH_PARAMS_VERSION))
        return;
    akidb_search_params full;
    memset(&full, 0, sizeof full);
    full.version = version;
    memcpy(p, &full, versioned_size(version, search_ends, N_OF(search_ends)));
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
    akidb_search_params p;
    akidb_search_params_init(&p);
    if (params) {
        int rc = check_version("akidb_search", "params", params->version,
                               AKIDB_SEARCH_PARAMS_VERSION);
        if (rc)
            return rc;
        read_versioned(&p, params, params->version, search_ends, N_OF(search_ends));
        p.version = AKIDB_SEARCH_PARAMS_VERSION;
    }
    if (p.ef > 100000)
        return akidb__err(AKIDB_INVALID, "akidb_search: ef %u is out of range 0..100000", p.ef);
    akidb__collection *c;
    int rc = enter(db, "akidb_search", coll, &c);
    if (rc)
        return rc;
    rc = akidb__coll_search(c, query, k, &p, hits, n_hits);
    akidb__db_leave(db, c);
    return rc;
}

/* ---- snapshots -------------------------------------------------------- */

int akidb_export_parquet(akidb *db, const char *coll, const char *path)
{
    akidb__err_clear();
    if (db && coll && !path) return misuse("akidb_export_parquet", "path");
    akidb__collection *c;
    int rc = enter(db, "akidb_export_parquet", coll, &c);
    if (rc)
        return rc;
    akidb__snap_result res;
    rc = akidb__snap_write(akidb__db_env(db), c, path, 1, &res);
    akidb__db_leave(db, c);
    return rc;
}

static int check_coll_arg(akidb *db, const char *fn, const char *coll)
{
    if (!db) return misuse(fn, "db");
    if (!coll) return misuse(fn, "coll");
    return check_name(coll, "collection");
}

int akidb_snapshot_create(akidb *db, const char *coll, char *id_out, size_t id_len)
{
    akidb__err_clear();
    int rc = check_coll_arg(db, "akidb_snapshot_create", coll);
    if (rc)
        return rc;
    if (id_out && id_len < AKIDB_SNAPSHOT_ID_LEN)
        return akidb__err(AKIDB_INVALID, "akidb_snapshot_create: id_len %zu is below "
                          "AKIDB_SNAPSHOT_ID_LEN (%d)", id_len, AKIDB_SNAPSHOT_ID_LEN);
    char id[AKIDB_SNAPSHOT_ID_LEN];
    rc = akidb__db_snapshot_create(db, coll, id);
    if (rc == AKIDB_OK && id_out)
        memcpy(id_out, id, AKIDB_SNAPSHOT_ID_LEN);
    return rc;
}

int akidb_snapshot_list(akidb *db, const char *coll, akidb_snapshot_info ***out, size_t *n_out)
{
    akidb__err_clear();
    if (out)
        *out = NULL;
    if (n_out)
        *n_out = 0;
    int rc = check_coll_arg(db, "akidb_snapshot_list", coll);
    if (rc)
        return rc;
    if (!out) return misuse("akidb_snapshot_list", "out");
    if (!n_out) return misuse("akidb_snapshot_list", "n_out");
    akidb__catalog_snap *rows = NULL;
    size_t n = 0;
    if ((rc = akidb__db_snapshot_list(db, coll, &rows, &n)) || n == 0) {
        akidb__out_free(rows);
        return rc;
    }
    size_t string_bytes = 0;
    for (size_t i = 0; i < n; i++)
        string_bytes += strlen(rows[i].snapshot_id) + strlen(rows[i].object_key) +
                        strlen(rows[i].sha256) + 3;
    /* One block: the pointers, the entries, then their strings. */
    akidb_snapshot_info **list = akidb__out_malloc(n * (sizeof *list + sizeof **list) +
                                                   string_bytes);
    if (!list) {
        akidb__out_free(rows);
        return akidb__err(AKIDB_NOMEM, "akidb_snapshot_list: out of memory");
    }
    akidb_snapshot_info *ent = (akidb_snapshot_info *)(list + n);
    char *str = (char *)(ent + n);
    for (size_t i = 0; i < n; i++) {
        memset(&ent[i], 0, sizeof ent[i]);
        ent[i].version = AKIDB_SNAPSHOT_INFO_VERSION;
        ent[i].rows = rows[i].rows;
        ent[i].bytes = rows[i].bytes;
        ent[i].created_at_us = rows[i].created_at;
        const char *src[3] = { rows[i].snapshot_id, rows[i].object_key, rows[i].sha256 };
        const char **dst[3] = { &ent[i].id, &ent[i].key, &ent[i].sha256 };
        for (int k = 0; k < 3; k++) {
            size_t len = strlen(src[k]) + 1;
            memcpy(str, src[k], len);
            *dst[k] = str;
            str += len;
        }
        list[i] = &ent[i];
    }
    akidb__out_free(rows);
    *out = list;
    *n_out = n;
    return AKIDB_OK;
}

int akidb_snapshot_restore(akidb *db, const char *coll, const char *id)
{
    akidb__err_clear();
    int rc = check_coll_arg(db, "akidb_snapshot_restore", coll);
    return rc ? rc : akidb__db_snapshot_restore(db, coll, id);
}

int akidb_snapshot_delete(akidb *db, const char *coll, const char *id)
{
    akidb__err_clear();
    int rc = check_coll_arg(db, "akidb_snapshot_delete", coll);
    if (rc)
        return rc;
    if (!id) return misuse("akidb_snapshot_delete", "id");
    return akidb__db_snapshot_delete(db, coll, id);
}

/* ---- tiering ----------------------------------------------------------- */

static const size_t policy_ends[] = { sizeof(akidb_tier_policy) };
static const size_t tier_info_ends[] = { sizeof(akidb_tier_info) };
static const size_t tier_stats_ends[] = { sizeof(akidb_tier_stats) };

/* The slot of `coll` after checking db and the name; unref it after. */
static int tier_slot(akidb *db, const char *fn, const char *coll, akidb__slot **s)
{
    if (!db) return misuse(fn, "db");
    if (!coll) return misuse(fn, "coll");
    int rc = check_name(coll, "collection");
    return rc ? rc : akidb__db_slot(db, coll, s);
}

static int check_tier(const char *fn, akidb_tier tier)
{
    if (tier >= AKIDB_TIER_HOT && tier <= AKIDB_TIER_COLD)
        return AKIDB_OK;
    return akidb__err(AKIDB_INVALID, "%s: tier %d is not AKIDB_TIER_HOT, _WARM or _COLD", fn,
                      (int)tier);
}

int akidb_tier_get(akidb *db, const char *coll, akidb_tier *out)
{
    akidb__err_clear();
    if (!out) return misuse("akidb_tier_get", "out");
    akidb__slot *s;
    int rc = tier_slot(db, "akidb_tier_get", coll, &s);
    if (rc)
        return rc;
    rc = akidb__tier_get(akidb__db_tier(db), s, out);
    akidb__slot_unref(db, s);
    return rc;
}

int akidb_tier_set(akidb *db, const char *coll, akidb_tier tier)
{
    akidb__err_clear();
    int rc = check_tier("akidb_tier_set", tier);
    akidb__slot *s;
    if (rc || (rc = tier_slot(db, "akidb_tier_set", coll, &s)))
        return rc;
    rc = akidb__tier_set(akidb__db_tier(db), s, tier);
    akidb__slot_unref(db, s);
    return rc;
}

int akidb_tier_pin(akidb *db, const char *coll, int pinned)
{
    akidb__err_clear();
    akidb__slot *s;
    int rc = tier_slot(db, "akidb_tier_pin", coll, &s);
    if (rc)
        return rc;
    rc = akidb__tier_pin(akidb__db_tier(db), s, pinned);
    akidb__slot_unref(db, s);
    return rc;
}

int akidb_tier_run_once(akidb *db)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_tier_run_once", "db");
    return akidb__tier_run_once(akidb__db_tier(db));
}

void akidb_tier_policy_init_v(akidb_tier_policy *p, uint32_t version)
{
    if (!p || !init_version_ok(p, version, AKIDB_TIER_POLICY_VERSION))
        return;
    akidb_tier_policy full;
    memset(&full, 0, sizeof full);
    full.version = version;
    memcpy(p, &full, versioned_size(version, policy_ends, N_OF(policy_ends)));
}

#define POLICY_SETTER(fn, type, field, bit)        \
    void fn(akidb_tier_policy *p, type v)          \
    {                                              \
        if (!p)                                    \
            return;                                \
        p->field = v;                              \
        p->set |= bit;                             \
    }
POLICY_SETTER(akidb_tier_policy_set_hot_ttl, uint64_t, hot_ttl_s, AKIDB_TIER_P_HOT_TTL)
POLICY_SETTER(akidb_tier_policy_set_warm_ttl, uint64_t, warm_ttl_s, AKIDB_TIER_P_WARM_TTL)
POLICY_SETTER(akidb_tier_policy_set_promote_per_hour, uint32_t, promote_per_hour,
              AKIDB_TIER_P_PROMOTE)
POLICY_SETTER(akidb_tier_policy_set_disabled, int, disabled, AKIDB_TIER_P_DISABLED)
POLICY_SETTER(akidb_tier_policy_set_retention, uint32_t, snapshot_retention,
              AKIDB_TIER_P_RETENTION)
POLICY_SETTER(akidb_tier_policy_set_memory_budget, uint64_t, memory_budget,
              AKIDB_TIER_P_MEMORY_BUDGET)
POLICY_SETTER(akidb_tier_policy_set_store_quota, uint64_t, store_quota,
              AKIDB_TIER_P_STORE_QUOTA)
POLICY_SETTER(akidb_tier_policy_set_max_collections, uint32_t, max_collections,
              AKIDB_TIER_P_MAX_COLLECTIONS)
#undef POLICY_SETTER

int akidb_tier_policy_apply(akidb *db, const char *coll, const akidb_tier_policy *p)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_tier_policy_apply", "db");
    if (!p) return misuse("akidb_tier_policy_apply", "p");
    int rc = check_version("akidb_tier_policy_apply", "policy", p->version,
                           AKIDB_TIER_POLICY_VERSION);
    if (rc)
        return rc;
    akidb_tier_policy full;
    akidb_tier_policy_init(&full);
    read_versioned(&full, p, p->version, policy_ends, N_OF(policy_ends));
    if ((full.set | full.reset) & ~0xFFu)
        return akidb__err(AKIDB_INVALID, "akidb_tier_policy_apply: unknown field bits 0x%x",
                          (full.set | full.reset) & ~0xFFu);
    akidb__slot *s = NULL;
    if (coll && (rc = tier_slot(db, "akidb_tier_policy_apply", coll, &s)))
        return rc;
    rc = akidb__tier_policy_apply(akidb__db_tier(db), s, &full);
    akidb__slot_unref(db, s);
    return rc;
}

int akidb_tier_policy_get(akidb *db, const char *coll, akidb_tier_policy *out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_tier_policy_get", "db");
    if (!out) return misuse("akidb_tier_policy_get", "out");
    int rc = check_version("akidb_tier_policy_get", "policy", out->version,
                           AKIDB_TIER_POLICY_VERSION);
    if (rc)
        return rc;
    akidb__slot *s = NULL;
    if (coll && (rc = tier_slot(db, "akidb_tier_policy_get", coll, &s)))
        return rc;
    akidb_tier_policy full;
    akidb_tier_policy_init(&full);
    akidb__tier_policy_get(akidb__db_tier(db), s, &full);
    akidb__slot_unref(db, s);
    write_versioned(out, &full, out->version, policy_ends, N_OF(policy_ends));
    return AKIDB_OK;
}

int akidb_tier_info_get(akidb *db, const char *coll, akidb_tier_info *out)
{
    akidb__err_clear();
    if (!out) return misuse("akidb_tier_info_get", "out");
    int rc = check_version("akidb_tier_info_get", "info", out->version, AKIDB_TIER_INFO_VERSION);
    akidb__slot *s;
    if (rc || (rc = tier_slot(db, "akidb_tier_info_get", coll, &s)))
        return rc;
    akidb_tier_info full;
    memset(&full, 0, sizeof full);
    rc = akidb__tier_info(akidb__db_tier(db), s, &full);
    akidb__slot_unref(db, s);
    if (rc == AKIDB_OK)
        write_versioned(out, &full, out->version, tier_info_ends, N_OF(tier_info_ends));
    return rc;
}

int akidb_tier_stats_get(akidb *db, akidb_tier_stats *out)
{
    akidb__err_clear();
    if (!db) return misuse("akidb_tier_stats_get", "db");
    if (!out) return misuse("akidb_tier_stats_get", "out");
    int rc = check_version("akidb_tier_stats_get", "stats", out->version,
                           AKIDB_TIER_STATS_VERSION);
    if (rc)
        return rc;
    akidb_tier_stats full;
    memset(&full, 0, sizeof full);
    if ((rc = akidb__tier_stats(akidb__db_tier(db), &full)) == AKIDB_OK)
        write_versioned(out, &full, out->version, tier_stats_ends, N_OF(tier_stats_ends));
    return rc;
}

/* ---- application records --------------------------------------------- */

static int check_kv(akidb *db, const char *fn, const char *ns, const char *key)
{
    if (!db) return misuse(fn, "db");
    if (!ns) return misuse(fn, "ns");
    size_t len = strlen(ns);
    int ok = len >= 1 && len <= 64;
    for (size_t i = 0; ok && i < len; i++) {
        char ch = ns[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '_' || ch == '-' || ch == '.';
    }
    char q[128];
    if (!ok)
        return akidb__err(AKIDB_INVALID, "%s: namespace \"%s\" is invalid: use 1..64 "
                          "characters from [A-Za-z0-9_.-]", fn, akidb__quote(q, sizeof q, ns, 70));
    if (key) {
        size_t key_len = strlen(key), bad = 0;
        if (key_len < 1 || key_len > 1024 || !akidb__utf8_valid(key, key_len, &bad))
            return akidb__err(AKIDB_INVALID, "%s: key \"%s\" is invalid: use 1..1024 bytes "
                              "of UTF-8", fn, akidb__quote(q, sizeof q, key, 60));
    }
    return AKIDB_OK;
}

int akidb_kv_put(akidb *db, const char *ns, const char *key, const void *value, size_t len)
{
    akidb__err_clear();
    if (db && ns && !key) return misuse("akidb_kv_put", "key");
    if (db && ns && key && !value && len) return misuse("akidb_kv_put", "value");
    int rc = check_kv(db, "akidb_kv_put", ns, key);
    if (rc)
        return rc;
    if (len > AKIDB_MAX_KV_VALUE_LEN)
        return akidb__err(AKIDB_INVALID, "akidb_kv_put: value of %zu bytes is larger than "
                          "%u", len, AKIDB_MAX_KV_VALUE_LEN);
    if ((rc = akidb__db_writable(db, "akidb_kv_put")))
        return rc;
    return akidb__catalog_kv_put(akidb__db_catalog(db), ns, key, value, len);
}

int akidb_kv_get(akidb *db, const char *ns, const char *key, void **value_out, size_t *len_out)
{
    akidb__err_clear();
    if (value_out)
        *value_out = NULL;
    if (len_out)
        *len_out = 0;
    if (db && ns && !key) return misuse("akidb_kv_get", "key");
    if (!value_out) return misuse("akidb_kv_get", "value_out");
    if (!len_out) return misuse("akidb_kv_get", "len_out");
    int rc = check_kv(db, "akidb_kv_get", ns, key);
    if (rc)
        return rc;
    rc = akidb__catalog_kv_get(akidb__db_catalog(db), ns, key, value_out, len_out);
    char q[96];
    if (rc == AKIDB_NOTFOUND)
        return akidb__err(AKIDB_NOTFOUND, "akidb_kv_get: no record %s/\"%s\"", ns,
                          akidb__quote(q, sizeof q, key, 60));
    return rc;
}

int akidb_kv_delete(akidb *db, const char *ns, const char *key)
{
    akidb__err_clear();
    if (db && ns && !key) return misuse("akidb_kv_delete", "key");
    int rc = check_kv(db, "akidb_kv_delete", ns, key);
    if (rc || (rc = akidb__db_writable(db, "akidb_kv_delete")))
        return rc;
    rc = akidb__catalog_kv_delete(akidb__db_catalog(db), ns, key);
    char q[96];
    if (rc == AKIDB_NOTFOUND)
        return akidb__err(AKIDB_NOTFOUND, "akidb_kv_delete: no record %s/\"%s\"", ns,
                          akidb__quote(q, sizeof q, key, 60));
    return rc;
}

/* Keys gathered for akidb_kv_list: one growing block of NUL-terminated
 * strings, turned into the pointer array at the end. */
typedef struct key_copy {
    char *strings;
    size_t n, len, cap;
    const akidb_allocator *alloc;
} key_copy;

static int copy_key(void *ctx, const char *key)
{
    key_copy *k = ctx;
    size_t add = strlen(key) + 1;
    if (k->len + add > k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 256;
        while (cap < k->len + add)
            cap *= 2;
        char *p = akidb__realloc(k->alloc, k->strings, cap);
        if (!p)
            return akidb__err(AKIDB_NOMEM, "akidb_kv_list: out of memory");
        k->strings = p;
        k->cap = cap;
    }
    memcpy(k->strings + k->len, key, add);
    k->len += add;
    k->n++;
    return AKIDB_OK;
}

int akidb_kv_list(akidb *db, const char *ns, char ***keys_out, size_t *n_out)
{
    akidb__err_clear();
    if (keys_out)
        *keys_out = NULL;
    if (n_out)
        *n_out = 0;
    if (!keys_out) return misuse("akidb_kv_list", "keys_out");
    if (!n_out) return misuse("akidb_kv_list", "n_out");
    int rc = check_kv(db, "akidb_kv_list", ns, NULL);
    if (rc)
        return rc;
    key_copy k = { NULL, 0, 0, 0, &akidb__db_env(db)->alloc };
    rc = akidb__catalog_kv_list(akidb__db_catalog(db), ns, copy_key, &k);
    if (rc == AKIDB_OK && k.n) {
        char **keys = akidb__out_malloc(k.n * sizeof *keys + k.len);
        if (!keys) {
            rc = akidb__err(AKIDB_NOMEM, "akidb_kv_list: out of memory");
        } else {
            char *str = (char *)(keys + k.n);
            memcpy(str, k.strings, k.len);
            for (size_t i = 0; i < k.n; i++) {
                keys[i] = str;
                str += strlen(str) + 1;
            }
            *keys_out = keys;
            *n_out = k.n;
        }
    }
    akidb__free(k.alloc, k.strings);
    return rc;
}
