/*
 * routes_collections.c - create, list, describe and drop collections.
 *
 * Every name a client sends is the tenant's own: rc_coll() turns "docs"
 * into the library name "TENANT__docs" (router.c says why that cannot be
 * ambiguous), and listings show only names with the caller's prefix,
 * with the prefix removed.  A tenant's collection limit (max_collections)
 * is checked and the collection created under the tenant's write lock, so
 * two concurrent creates cannot both slip under it.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *metric_name(akidb_metric m)
{
    switch (m) {
    case AKIDB_METRIC_L2: return "l2";
    case AKIDB_METRIC_COSINE: return "cosine";
    case AKIDB_METRIC_DOT: return "dot";
    default: return "unknown";
    }
}

static const char *storage_name(akidb_storage k)
{
    switch (k) {
    case AKIDB_STORAGE_F16: return "f16";
    case AKIDB_STORAGE_INT8: return "int8";
    default: return "f32";   /* 0 reads as f32 (akidb.h) */
    }
}

static const char *tier_name(int t)
{
    switch (t) {
    case AKIDB_TIER_HOT: return "hot";
    case AKIDB_TIER_WARM: return "warm";
    case AKIDB_TIER_COLD: return "cold";
    default: return "unknown";
    }
}

int tenant_collections(rctx *c, char ***names, size_t *n)
{
    char **all = NULL;
    size_t n_all = 0, k = 0;
    int rc = akidb_collection_list(c->srv->db, &all, &n_all);
    if (rc != AKIDB_OK)
        return rc;
    char pre[TENANT_MAX + 3];
    snprintf(pre, sizeof pre, "%s__", c->tenant);
    size_t pl = strlen(pre);
    for (size_t i = 0; i < n_all; i++)
        if (strncmp(all[i], pre, pl) == 0 && all[i][pl])
            all[k++] = all[i];
    *names = all;
    *n = k;
    return AKIDB_OK;
}

/* Write one collection's description; rc of the library on failure. */
static int coll_json(rctx *c, jw *w, const char *lib)
{
    akidb_collection_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    akidb_collection_stats st;
    memset(&st, 0, sizeof st);
    st.version = AKIDB_COLLECTION_STATS_VERSION;
    int rc = akidb_collection_info(c->srv->db, lib, &cfg);
    if (rc == AKIDB_OK)
        rc = akidb_collection_stat(c->srv->db, lib, &st);
    if (rc != AKIDB_OK)
        return rc;
    jw_obj(w);
    jw_key(w, "name");
    jw_str(w, lib + strlen(c->tenant) + 2);
    jw_key(w, "dim");
    jw_uint(w, cfg.dim);
    jw_key(w, "metric");
    jw_str(w, metric_name(cfg.metric));
    jw_key(w, "hnsw");
    jw_obj(w);
    jw_key(w, "m");
    jw_uint(w, cfg.hnsw_m);
    jw_key(w, "ef_construction");
    jw_uint(w, cfg.ef_construction);
    jw_key(w, "ef_search");
    jw_uint(w, cfg.ef_search);
    jw_obj_end(w);
    jw_key(w, "storage");
    jw_str(w, storage_name(cfg.storage));
    jw_key(w, "exact_vectors");
    jw_str(w, cfg.exact == AKIDB_EXACT_NONE ? "none" : cfg.exact == AKIDB_EXACT_FILE ? "file" : "ram");
    jw_key(w, "rerank");
    jw_uint(w, cfg.rerank);
    jw_key(w, "count");
    jw_uint(w, st.count);
    jw_key(w, "deleted");
    jw_uint(w, st.deleted);
    jw_key(w, "tier");
    jw_str(w, tier_name(st.tier));
    jw_key(w, "pinned");
    jw_bool(w, st.pinned);
    jw_key(w, "bytes");
    jw_uint(w, st.bytes);
    jw_key(w, "bytes_by_component");
    jw_obj(w);
    jw_key(w, "vectors");
    jw_uint(w, st.vector_bytes);
    jw_key(w, "compact_vectors");
    jw_uint(w, st.compact_bytes);
    jw_key(w, "graph");
    jw_uint(w, st.graph_bytes);
    jw_key(w, "documents");
    jw_uint(w, st.document_bytes);
    jw_obj_end(w);
    jw_key(w, "log_bytes");
    jw_uint(w, st.log_bytes);
    jw_key(w, "index_lag");
    jw_uint(w, st.index_lag);
    jw_key(w, "created_at_us");
    jw_int(w, st.created_at_us);
    jw_obj_end(w);
    return AKIDB_OK;
}

static const char *const CREATE_FIELDS[] = {"name", "dim", "metric", "hnsw", "storage",
                                             "exact_vectors", "rerank", NULL};
static const char *const HNSW_FIELDS[] = {"m", "ef_construction", "ef_search", NULL};

void h_coll_create(rctx *c)
{
    char err[512], lib[AKIDB_MAX_NAME_LEN + 1];
    json_t *j = rc_body(c);
    if (!j)
        return;
    const char *name = NULL, *metric = "l2", *storage = "f32", *exact = "ram";
    uint64_t dim = 0, v;
    akidb_collection_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    int locked = 0, r;
    if (jx_only(j, CREATE_FIELDS, NULL, err, sizeof err) ||
        jx_get_str(j, "name", &name, err, sizeof err) < 0 ||
        jx_get_uint(j, "dim", 1, AKIDB_MAX_DIM, &dim, err, sizeof err) < 0 ||
        jx_get_str(j, "metric", &metric, err, sizeof err) < 0 ||
        jx_get_str(j, "storage", &storage, err, sizeof err) < 0 ||
        jx_get_str(j, "exact_vectors", &exact, err, sizeof err) < 0)
        goto bad;
    if (!name) {
        snprintf(err, sizeof err, "'name' is required");
        goto bad;
    }
    if (!dim) {
        snprintf(err, sizeof err, "'dim' is required (1..%d)", AKIDB_MAX_DIM);
        goto bad;
    }
    akidb_metric m;
    if (!strcmp(metric, "l2"))
        m = AKIDB_METRIC_L2;
    else if (!strcmp(metric, "cosine"))
        m = AKIDB_METRIC_COSINE;
    else if (!strcmp(metric, "dot"))
        m = AKIDB_METRIC_DOT;
    else {
        snprintf(err, sizeof err, "'metric' must be \"l2\", \"cosine\" or \"dot\"");
        goto bad;
    }
    akidb_storage kind;
    if (!strcmp(storage, "f32"))
        kind = AKIDB_STORAGE_F32;
    else if (!strcmp(storage, "f16"))
        kind = AKIDB_STORAGE_F16;
    else if (!strcmp(storage, "int8"))
        kind = AKIDB_STORAGE_INT8;
    else {
        snprintf(err, sizeof err, "'storage' must be \"f32\", \"f16\" or \"int8\"");
        goto bad;
    }
    if (strcmp(exact, "ram") && strcmp(exact, "file") && strcmp(exact, "none")) {
        snprintf(err, sizeof err, "'exact_vectors' must be \"ram\", \"file\" or \"none\"");
        goto bad;
    }
    if (rc_coll(c, name, lib))
        goto done;
    snprintf(c->audit_target, sizeof c->audit_target, "collection=%s", name);
    snprintf(c->audit_detail, sizeof c->audit_detail, "dim=%llu metric=%s storage=%s",
             (unsigned long long)dim, metric, storage);
    akidb_collection_config_init(&cfg, (uint32_t)dim, m);
    cfg.storage = kind;
    cfg.exact = !strcmp(exact, "none")   ? AKIDB_EXACT_NONE
              : !strcmp(exact, "file") ? AKIDB_EXACT_FILE
                                       : AKIDB_EXACT_RAM;
    if ((r = jx_get_uint(j, "rerank", 1, 64, &v, err, sizeof err)) < 0)
        goto bad;
    if (r)
        cfg.rerank = (uint32_t)v;
    json_t *h = json_object_get(j, "hnsw");
    if (h && !json_is_null(h)) {
        if (!json_is_object(h)) {
            snprintf(err, sizeof err, "'hnsw' must be an object");
            goto bad;
        }
        if (jx_only(h, HNSW_FIELDS, "'hnsw'", err, sizeof err))
            goto bad;
        if ((r = jx_get_uint(h, "m", 2, 128, &v, err, sizeof err)) < 0)
            goto bad;
        if (r)
            cfg.hnsw_m = (uint32_t)v;
        if ((r = jx_get_uint(h, "ef_construction", 1, 100000, &v, err, sizeof err)) < 0)
            goto bad;
        if (r)
            cfg.ef_construction = (uint32_t)v;
        if ((r = jx_get_uint(h, "ef_search", 1, 100000, &v, err, sizeof err)) < 0)
            goto bad;
        if (r)
            cfg.ef_search = (uint32_t)v;
    }
    if (c->q.max_collections) {
        uv_mutex_lock(&c->tn->write_lock);
        locked = 1;
        char **names = NULL;
        size_t n = 0;
        int rc = tenant_collections(c, &names, &n);
        akidb_free(names);
        if (rc != AKIDB_OK) {
            rc_lib(c, rc);
            goto done;
        }
        if (n >= c->q.max_collections) {
            rc_error(c, 507, "QUOTA_EXCEEDED", "tenant '%s' may have at most %llu collections",
                     c->tenant, (unsigned long long)c->q.max_collections);
            goto done;
        }
    }
    int rc = akidb_collection_create(c->srv->db, lib, &cfg);
    if (locked) {
        uv_mutex_unlock(&c->tn->write_lock);
        locked = 0;
    }
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        goto done;
    }
    jw w;
    rc_json(c, 201, &w);
    rc = coll_json(c, &w, lib);
    if (rc != AKIDB_OK)
        rc_lib(c, rc);
    goto done;
bad:
    rc_error(c, 400, "BAD_REQUEST", "%s", err);
done:
    if (locked)
        uv_mutex_unlock(&c->tn->write_lock);
    json_decref(j);
}

void h_coll_list(rctx *c)
{
    char **names = NULL;
    size_t n = 0;
    int rc = tenant_collections(c, &names, &n);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    jw w;
    rc_json(c, 200, &w);
    jw_obj(&w);
    jw_key(&w, "collections");
    jw_arr(&w);
    for (size_t i = 0; i < n; i++) {
        /* coll_json writes nothing when it fails: a collection dropped
         * since the listing is simply left out. */
        (void)coll_json(c, &w, names[i]);
    }
    jw_arr_end(&w);
    jw_obj_end(&w);
    akidb_free(names);
}

void h_coll_get(rctx *c)
{
    char lib[AKIDB_MAX_NAME_LEN + 1];
    if (rc_coll(c, c->param[0], lib))
        return;
    jw w;
    rc_json(c, 200, &w);
    int rc = coll_json(c, &w, lib);
    if (rc != AKIDB_OK)
        rc_lib(c, rc);
}

void h_coll_drop(rctx *c)
{
    char lib[AKIDB_MAX_NAME_LEN + 1];
    if (rc_coll(c, c->param[0], lib))
        return;
    int rc = akidb_collection_drop(c->srv->db, lib);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    c->status = 204;
}
