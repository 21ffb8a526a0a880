/*
 * shim.h - the C side of the Go package: every library call the package
 * makes goes through one of these wrappers, which return the result code
 * AND, on failure, a copy of the calling thread's akidb_errmsg().
 *
 * Why: akidb_errmsg() is thread-local, and the Go scheduler may move a
 * goroutine to another OS thread between two cgo calls, so calling
 * akidb_errmsg() from Go after a failed call could read another call's
 * message.  One cgo call runs on one OS thread from start to end, so the
 * wrapper, which makes the call and reads the message inside the same cgo
 * call, always gets the right one.  *msg is malloc'ed (free with free());
 * it is left untouched on success.
 *
 * The options and config structs are filled here with the version of the
 * header this package was compiled against, not with the library's *_init
 * functions: those fill a struct of the library's size, which a newer
 * library would make larger than ours.
 */
#ifndef AKIDB_GO_SHIM_H
#define AKIDB_GO_SHIM_H

#include <stdlib.h>
#include <string.h>

#include <akidb.h>

static inline int akgo_rc(int rc, char **msg)
{
    if (rc != AKIDB_OK && msg) {
        const char *m = akidb_errmsg(NULL);
        *msg = strdup(m ? m : "");
    }
    return rc;
}

static inline void akgo_options_default(akidb_options *o)
{
    memset(o, 0, sizeof *o);
    o->version = AKIDB_OPTIONS_VERSION;
    o->sync_mode = AKIDB_SYNC_ALWAYS;
}

static inline void akgo_config_default(akidb_collection_config *c, uint32_t dim, int metric)
{
    memset(c, 0, sizeof *c);
    c->version = AKIDB_COLLECTION_CONFIG_VERSION;
    c->dim = dim;
    c->metric = (akidb_metric)metric;
    c->hnsw_m = 16;
    c->ef_construction = 200;
    c->ef_search = 64;
}

static inline void akgo_s3_default(akidb_s3_config *c)
{
    memset(c, 0, sizeof *c);
    c->version = AKIDB_S3_CONFIG_VERSION;
    c->path_style = 1;
    c->connect_timeout_ms = 5000;
    c->request_timeout_ms = 60000;
    c->max_concurrency = 8;
    c->multipart_threshold = 16u << 20;
    c->part_size = 8u << 20;
}

/* Element i of a library-allocated array of pointers. */
static inline void *akgo_index(void *arr, size_t i) { return ((void **)arr)[i]; }

static inline int akgo_open(const char *dir, const akidb_options *o, akidb **out, char **msg)
{ return akgo_rc(akidb_open(dir, o, out), msg); }
static inline int akgo_close(akidb *db, char **msg)
{ return akgo_rc(akidb_close(db), msg); }
static inline int akgo_checkpoint(akidb *db, const char *name, char **msg)
{ return akgo_rc(akidb_checkpoint(db, name), msg); }
static inline int akgo_index_wait(akidb *db, const char *name, uint32_t timeout_ms, char **msg)
{ return akgo_rc(akidb_index_wait(db, name, timeout_ms), msg); }
static inline int akgo_metric_value(akidb *db, const char *name, int64_t *v, char **msg)
{ return akgo_rc(akidb_metric_value(db, name, v), msg); }
static inline int akgo_metrics_render(akidb *db, char **text, char **msg)
{ return akgo_rc(akidb_metrics_render(db, text), msg); }
static inline int akgo_collection_create(akidb *db, const char *name,
                                         const akidb_collection_config *cfg, char **msg)
{ return akgo_rc(akidb_collection_create(db, name, cfg), msg); }
static inline int akgo_collection_drop(akidb *db, const char *name, char **msg)
{ return akgo_rc(akidb_collection_drop(db, name), msg); }
static inline int akgo_collection_count(akidb *db, const char *name, uint64_t *n, char **msg)
{ return akgo_rc(akidb_collection_count(db, name, n), msg); }
static inline int akgo_collection_info(akidb *db, const char *name, akidb_collection_config *cfg,
                                       char **msg)
{
    akgo_config_default(cfg, 0, AKIDB_METRIC_L2);
    return akgo_rc(akidb_collection_info(db, name, cfg), msg);
}
static inline int akgo_collection_list(akidb *db, char ***names, size_t *n, char **msg)
{ return akgo_rc(akidb_collection_list(db, names, n), msg); }
static inline int akgo_collection_stat(akidb *db, const char *name, akidb_collection_stats *st,
                                       char **msg)
{
    memset(st, 0, sizeof *st);
    st->version = AKIDB_COLLECTION_STATS_VERSION;
    return akgo_rc(akidb_collection_stat(db, name, st), msg);
}
static inline int akgo_insert(akidb *db, const char *coll, size_t n, const float *v,
                              char **ext, char **meta, uint64_t *ids, int upsert, char **msg)
{
    if (upsert)
        return akgo_rc(akidb_upsert(db, coll, n, v, (const char *const *)ext,
                                    (const char *const *)meta, ids), msg);
    return akgo_rc(akidb_insert(db, coll, n, v, (const char *const *)ext,
                                (const char *const *)meta, ids), msg);
}
static inline int akgo_delete(akidb *db, const char *coll, uint64_t id, char **msg)
{ return akgo_rc(akidb_delete(db, coll, id), msg); }
static inline int akgo_lookup(akidb *db, const char *coll, const char *ext, uint64_t *id,
                              char **msg)
{ return akgo_rc(akidb_lookup(db, coll, ext, id), msg); }
static inline int akgo_document_get(akidb *db, const char *coll, uint64_t id, float *vec,
                                    akidb_document *doc, char **msg)
{
    memset(doc, 0, sizeof *doc);
    doc->version = AKIDB_DOCUMENT_VERSION;
    return akgo_rc(akidb_document_get(db, coll, id, vec, doc), msg);
}
static inline int akgo_search(akidb *db, const char *coll, const float *q, uint32_t k,
                              uint32_t ef, int exact, akidb_hit *hits, uint32_t *n_hits,
                              char **msg)
{
    akidb_search_params p;
    memset(&p, 0, sizeof p);
    p.version = AKIDB_SEARCH_PARAMS_VERSION;
    p.ef = ef;
    p.exact = exact;
    return akgo_rc(akidb_search(db, coll, q, k, &p, hits, n_hits), msg);
}
static inline int akgo_kv_put(akidb *db, const char *ns, const char *key, const void *v,
                              size_t len, char **msg)
{ return akgo_rc(akidb_kv_put(db, ns, key, v, len), msg); }
static inline int akgo_kv_get(akidb *db, const char *ns, const char *key, void **v,
                              size_t *len, char **msg)
{ return akgo_rc(akidb_kv_get(db, ns, key, v, len), msg); }
static inline int akgo_kv_delete(akidb *db, const char *ns, const char *key, char **msg)
{ return akgo_rc(akidb_kv_delete(db, ns, key), msg); }
static inline int akgo_kv_list(akidb *db, const char *ns, char ***keys, size_t *n, char **msg)
{ return akgo_rc(akidb_kv_list(db, ns, keys, n), msg); }
static inline int akgo_snapshot_create(akidb *db, const char *coll, char *id, size_t len,
                                       char **msg)
{ return akgo_rc(akidb_snapshot_create(db, coll, id, len), msg); }
static inline int akgo_snapshot_list(akidb *db, const char *coll, akidb_snapshot_info ***out,
                                     size_t *n, char **msg)
{ return akgo_rc(akidb_snapshot_list(db, coll, out, n), msg); }
static inline int akgo_snapshot_restore(akidb *db, const char *coll, const char *id, char **msg)
{ return akgo_rc(akidb_snapshot_restore(db, coll, id), msg); }
static inline int akgo_snapshot_delete(akidb *db, const char *coll, const char *id, char **msg)
{ return akgo_rc(akidb_snapshot_delete(db, coll, id), msg); }
static inline int akgo_export_parquet(akidb *db, const char *coll, const char *path, char **msg)
{ return akgo_rc(akidb_export_parquet(db, coll, path), msg); }
static inline int akgo_import_parquet(akidb *db, const char *coll, const char *path,
                                      const char *vector_column, const char *id_column,
                                      char **meta_cols, size_t n_meta, int metric,
                                      int storage, int exact, uint32_t rerank,
                                      uint64_t *rows, char **msg)
{
    akidb_import_options o;
    memset(&o, 0, sizeof o);
    o.version = AKIDB_IMPORT_OPTIONS_VERSION;
    o.vector_column = vector_column ? vector_column : "vector";
    o.id_column = id_column;
    o.metadata_columns = (const char *const *)meta_cols;
    o.n_metadata_columns = n_meta;
    o.metric = (akidb_metric)metric;
    o.storage = (akidb_storage)storage;
    o.exact = (akidb_exact_vectors)exact;
    o.rerank = rerank;
    return akgo_rc(akidb_import_parquet(db, coll, path, &o, rows), msg);
}
static inline int akgo_store_local_open(const char *dir, akidb_store **out, char **msg)
{ return akgo_rc(akidb_store_local_open(dir, out), msg); }
static inline int akgo_store_mock_open(akidb_store **out, char **msg)
{ return akgo_rc(akidb_store_mock_open(out), msg); }
static inline int akgo_store_mock_inject(akidb_store *s, unsigned ops, const char *glob,
                                         int fault, uint32_t count, uint32_t retry_after_ms,
                                         char **msg)
{ return akgo_rc(akidb_store_mock_inject(s, ops, glob, (akidb_mock_fault)fault, count,
                                         retry_after_ms), msg); }
static inline int akgo_store_s3_open(const akidb_s3_config *cfg, akidb_store **out, char **msg)
{ return akgo_rc(akidb_store_s3_open(cfg, out), msg); }

/* Tiering. */
static inline int akgo_tier_get(akidb *db, const char *coll, int *tier, char **msg)
{
    akidb_tier t = 0;
    int rc = akgo_rc(akidb_tier_get(db, coll, &t), msg);
    *tier = (int)t;
    return rc;
}
static inline int akgo_tier_set(akidb *db, const char *coll, int tier, char **msg)
{ return akgo_rc(akidb_tier_set(db, coll, (akidb_tier)tier), msg); }
static inline int akgo_tier_pin(akidb *db, const char *coll, int pinned, char **msg)
{ return akgo_rc(akidb_tier_pin(db, coll, pinned), msg); }
static inline int akgo_tier_run_once(akidb *db, char **msg)
{ return akgo_rc(akidb_tier_run_once(db), msg); }
static inline int akgo_tier_info_get(akidb *db, const char *coll, akidb_tier_info *out, char **msg)
{
    memset(out, 0, sizeof *out);
    out->version = AKIDB_TIER_INFO_VERSION;
    return akgo_rc(akidb_tier_info_get(db, coll, out), msg);
}
static inline int akgo_tier_stats_get(akidb *db, akidb_tier_stats *out, char **msg)
{
    memset(out, 0, sizeof *out);
    out->version = AKIDB_TIER_STATS_VERSION;
    return akgo_rc(akidb_tier_stats_get(db, out), msg);
}
/* The policy struct is filled field by field (not with
 * akidb_tier_policy_init_v, see above). */
static inline void akgo_tier_policy_default(akidb_tier_policy *p)
{
    memset(p, 0, sizeof *p);
    p->version = AKIDB_TIER_POLICY_VERSION;
}
static inline int akgo_tier_policy_apply(akidb *db, const char *coll, const akidb_tier_policy *p,
                                         char **msg)
{ return akgo_rc(akidb_tier_policy_apply(db, coll, p), msg); }
static inline int akgo_tier_policy_get(akidb *db, const char *coll, akidb_tier_policy *p,
                                       char **msg)
{
    akgo_tier_policy_default(p);
    return akgo_rc(akidb_tier_policy_get(db, coll, p), msg);
}
/* transitions_ok / transitions_failed [from][to] (cgo cannot index a 2-D
 * C array directly). */
static inline uint64_t akgo_tier_transitions(const akidb_tier_stats *s, int failed, int from, int to)
{ return failed ? s->transitions_failed[from][to] : s->transitions_ok[from][to]; }

#endif
