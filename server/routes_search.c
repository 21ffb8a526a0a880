/*
 * routes_search.c - k-nearest-neighbour search, one query or a batch.
 *
 *   POST /v1/collections/{name}/search
 *        {vector, k?=10, ef?, exact?, include_metadata?, include_vector?}
 *        -> {hits: [{id, external_id, distance, metadata?, vector?}]}
 *   POST /v1/collections/{name}/search/batch
 *        {queries: [[...], ...], k?, ef?, exact?, include_metadata?, include_vector?}
 *        -> {results: [{hits: [...]}, ...]} in query order
 *
 * Hits are closest first (ascending distance; see akidb_metric for what
 * the distance of each metric is).  The search sees every acknowledged
 * write, indexed or not (the library scans the unindexed tail).  A hit's
 * external id and metadata are read after the search; a document deleted
 * in between is left out of the answer rather than shown half-empty.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sopts {
    uint64_t k;
    akidb_search_params p;
    int include_metadata, include_vector;
} sopts;

static int read_opts(rctx *c, json_t *j, sopts *o, char *err, size_t n)
{
    uint64_t ef = 0;
    int exact = 0;
    o->k = 10;
    o->include_metadata = o->include_vector = 0;
    akidb_search_params_init(&o->p);
    if (jx_get_uint(j, "k", 1, (uint64_t)c->lim.max_k, &o->k, err, n) < 0 ||
        jx_get_uint(j, "ef", 1, 100000, &ef, err, n) < 0 ||
        jx_get_bool(j, "exact", &exact, err, n) < 0 ||
        jx_get_bool(j, "include_metadata", &o->include_metadata, err, n) < 0 ||
        jx_get_bool(j, "include_vector", &o->include_vector, err, n) < 0)
        return -1;
    o->p.ef = (uint32_t)ef;
    o->p.exact = exact;
    return 0;
}

/* Search once and write {"hits":[...]}.  Library rc (nothing written on
 * failure). */
static int search_one(rctx *c, jw *w, const char *lib, uint32_t dim, const float *q,
                      const sopts *o, akidb_hit *hits, float *vec)
{
    akidb *db = c->srv->db;
    uint32_t n = 0;
    int rc = akidb_search(db, lib, q, (uint32_t)o->k, &o->p, hits, &n);
    if (rc != AKIDB_OK)
        return rc;
    jw_obj(w);
    jw_key(w, "hits");
    jw_arr(w);
    for (uint32_t i = 0; i < n; i++) {
        akidb_document doc;
        memset(&doc, 0, sizeof doc);
        doc.version = AKIDB_DOCUMENT_VERSION;
        rc = akidb_document_get(db, lib, hits[i].id, o->include_vector ? vec : NULL, &doc);
        if (rc == AKIDB_NOTFOUND)
            continue;               /* deleted since the search */
        if (rc != AKIDB_OK)
            return rc;
        jw_obj(w);
        jw_key(w, "id");
        jw_uint(w, hits[i].id);
        jw_key(w, "external_id");
        jw_str(w, doc.external_id);
        jw_key(w, "distance");
        jw_float(w, hits[i].distance);
        if (o->include_metadata) {
            jw_key(w, "metadata");
            if (doc.metadata_json)
                jw_raw_json(w, doc.metadata_json);
            else
                jw_null(w);
        }
        if (o->include_vector) {
            jw_key(w, "vector");
            jw_arr(w);
            for (uint32_t d = 0; d < dim; d++)
                jw_float(w, vec[d]);
            jw_arr_end(w);
        }
        jw_obj_end(w);
        akidb_document_clear(&doc);
    }
    jw_arr_end(w);
    jw_obj_end(w);
    return AKIDB_OK;
}

static const char *const SEARCH_FIELDS[] = {"vector", "k", "ef", "exact", "include_metadata",
                                            "include_vector", NULL};
static const char *const BATCH_FIELDS[] = {"queries", "k", "ef", "exact", "include_metadata",
                                           "include_vector", NULL};

/* Largest queries x k of one batch: bounds the answer's size. */
#define MAX_BATCH_HITS 1000000

static void search(rctx *c, int batch)
{
    char lib[AKIDB_MAX_NAME_LEN + 1], err[512];
    akidb *db = c->srv->db;
    float *q = NULL, *vec = NULL;
    akidb_hit *hits = NULL;
    sopts o;
    int rc;
    if (rc_coll(c, c->param[0], lib))
        return;
    json_t *j = rc_body(c);
    if (!j)
        return;
    if (jx_only(j, batch ? BATCH_FIELDS : SEARCH_FIELDS, NULL, err, sizeof err) ||
        read_opts(c, j, &o, err, sizeof err))
        goto bad;
    akidb_collection_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    rc = akidb_collection_info(db, lib, &cfg);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        goto done;
    }
    json_t *qs = json_object_get(j, batch ? "queries" : "vector");
    size_t nq = 1;
    if (batch) {
        nq = json_array_size(qs);
        if (!json_is_array(qs) || nq == 0 || nq > (size_t)c->lim.max_batch) {
            snprintf(err, sizeof err, "'queries' must be an array of 1..%lld vectors",
                     (long long)c->lim.max_batch);
            goto bad;
        }
        if (nq * o.k > MAX_BATCH_HITS) {
            snprintf(err, sizeof err, "queries x k is at most %d per batch", MAX_BATCH_HITS);
            goto bad;
        }
    } else if (!qs) {
        snprintf(err, sizeof err, "'vector' is required");
        goto bad;
    }
    q = malloc(nq * cfg.dim * sizeof(float));
    vec = malloc(cfg.dim * sizeof(float));
    hits = malloc(o.k * sizeof *hits);
    if (!q || !vec || !hits) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nq; i++) {
        char what[48];
        if (batch)
            snprintf(what, sizeof what, "queries[%zu]", i);
        else
            snprintf(what, sizeof what, "vector");
        if (jx_vector(batch ? json_array_get(qs, i) : qs, q + i * cfg.dim, cfg.dim, what, err,
                      sizeof err))
            goto bad;
    }
    jw w;
    rc_json(c, 200, &w);
    if (batch) {
        jw_obj(&w);
        jw_key(&w, "results");
        jw_arr(&w);
    }
    for (size_t i = 0; i < nq; i++) {
        rc = search_one(c, &w, lib, cfg.dim, q + i * cfg.dim, &o, hits, vec);
        if (rc != AKIDB_OK) {
            rc_lib(c, rc);
            goto done;
        }
    }
    if (batch) {
        jw_arr_end(&w);
        jw_obj_end(&w);
    }
    goto done;
bad:
    rc_error(c, 400, "BAD_REQUEST", "%s", err);
done:
    json_decref(j);
    free(q);
    free(vec);
    free(hits);
}

void h_search(rctx *c)
{
    search(c, 0);
}

void h_search_batch(rctx *c)
{
    search(c, 1);
}
