/*
 * routes_vectors.c - writing, reading and deleting documents.
 *
 *   POST /v1/collections/{name}/vectors   insert a batch  -> 201 {ids}
 *   PUT  /v1/collections/{name}/vectors   upsert a batch by external_id -> 200 {ids}
 *   GET  /v1/collections/{name}/vectors?external_id=X   one document
 *   GET  /v1/collections/{name}/vectors/{id}            one document
 *   DELETE /v1/collections/{name}/vectors/{id}          -> 204
 *
 * A batch is checked completely (shape, types, every value a finite float
 * of the collection's dimension, batch size) before the library sees it,
 * and then goes to akidb_insert/akidb_upsert in one call, which is atomic:
 * all of it is acknowledged, or none.  The answer comes only after the
 * library returned, i.e. after the write is in the write-ahead log: an
 * acknowledged write survives a SIGTERM, a crash or a restart.
 *
 * A tenant's vector limit (max_vectors) is checked under the tenant's
 * write lock together with the write; for an upsert only the external ids
 * that are new count.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse a document id: decimal, 1..2^63-1.  0 or -1 after answering 400. */
static int parse_id(rctx *c, const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = strlen(s);
    int ok = n >= 1 && n <= 19;
    for (size_t i = 0; ok && i < n; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (!ok || v == 0 || v > (uint64_t)INT64_MAX) {
        rc_error(c, 400, "BAD_REQUEST", "a document id is a decimal integer in 1..2^63-1");
        return -1;
    }
    *out = v;
    return 0;
}

/* Total live documents of the tenant.  Library rc. */
static int tenant_vectors(rctx *c, uint64_t *total)
{
    char **names = NULL;
    size_t n = 0;
    int rc = tenant_collections(c, &names, &n);
    *total = 0;
    for (size_t i = 0; rc == AKIDB_OK && i < n; i++) {
        uint64_t k = 0;
        rc = akidb_collection_count(c->srv->db, names[i], &k);
        if (rc == AKIDB_NOTFOUND)
            rc = AKIDB_OK;            /* dropped meanwhile */
        *total += k;
    }
    akidb_free(names);
    return rc;
}

typedef struct batch {
    size_t n;
    uint32_t dim;
    float *vectors;
    char **ext;                 /* n entries, NULL = none */
    char **meta;                /* n entries, NULL = none */
    int any_ext, any_meta;
} batch;

static void batch_free(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->ext)
            free(b->ext[i]);
        if (b->meta)
            free(b->meta[i]);
    }
    free(b->ext);
    free(b->meta);
    free(b->vectors);
}

static const char *const WRITE_FIELDS[] = {"vectors", NULL};
static const char *const ITEM_FIELDS[] = {"external_id", "vector", "metadata", NULL};

/* Check the whole body and build the batch.  0, or -1 after answering. */
static int read_batch(rctx *c, json_t *j, uint32_t dim, int upsert, batch *b)
{
    char err[512], what[64];
    memset(b, 0, sizeof *b);
    if (jx_only(j, WRITE_FIELDS, NULL, err, sizeof err))
        goto bad;
    json_t *arr = json_object_get(j, "vectors");
    if (!json_is_array(arr)) {
        snprintf(err, sizeof err, "'vectors' must be an array of {external_id?, vector, metadata?}");
        goto bad;
    }
    size_t n = json_array_size(arr);
    if (n == 0 || n > (size_t)c->lim.max_batch) {
        snprintf(err, sizeof err, "'vectors' must hold 1..%lld items, not %zu",
                 (long long)c->lim.max_batch, n);
        goto bad;
    }
    b->n = n;
    b->dim = dim;
    b->vectors = malloc(n * dim * sizeof(float));
    b->ext = calloc(n, sizeof *b->ext);
    b->meta = calloc(n, sizeof *b->meta);
    if (!b->vectors || !b->ext || !b->meta) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(arr, i);
        snprintf(what, sizeof what, "vectors[%zu]", i);
        if (!json_is_object(it)) {
            snprintf(err, sizeof err, "'%s' must be an object", what);
            goto bad;
        }
        if (jx_only(it, ITEM_FIELDS, what, err, sizeof err))
            goto bad;
        snprintf(what, sizeof what, "vectors[%zu].vector", i);
        json_t *vec = json_object_get(it, "vector");
        if (!vec) {
            snprintf(err, sizeof err, "'%s' is required", what);
            goto bad;
        }
        if (jx_vector(vec, b->vectors + i * dim, dim, what, err, sizeof err))
            goto bad;
        json_t *e = json_object_get(it, "external_id");
        if (e && !json_is_null(e)) {
            size_t len = json_string_length(e);
            if (!json_is_string(e) || len == 0 || len > AKIDB_MAX_EXTERNAL_ID_LEN) {
                snprintf(err, sizeof err, "'vectors[%zu].external_id' must be a string of "
                         "1..%d bytes", i, AKIDB_MAX_EXTERNAL_ID_LEN);
                goto bad;
            }
            if (!(b->ext[i] = strdup(json_string_value(e))))
                goto oom;
            b->any_ext = 1;
        } else if (upsert) {
            snprintf(err, sizeof err, "'vectors[%zu].external_id' is required for an upsert", i);
            goto bad;
        }
        json_t *m = json_object_get(it, "metadata");
        if (m && !json_is_null(m)) {
            sbuf mb = {0};
            jw mw;
            jw_init(&mw, &mb);
            jw_json(&mw, m);
            if (!(b->meta[i] = sbuf_take(&mb)))
                goto oom;
            b->any_meta = 1;
        }
    }
    return 0;
bad:
    rc_error(c, 400, "BAD_REQUEST", "%s", err);
    return -1;
oom:
    rc_error(c, 503, "UNAVAILABLE", "out of memory");
    return -1;
}

static void write_vectors(rctx *c, int upsert)
{
    char lib[AKIDB_MAX_NAME_LEN + 1];
    akidb *db = c->srv->db;
    batch b;
    memset(&b, 0, sizeof b);
    uint64_t *ids = NULL;
    int locked = 0, rc;
    if (rc_coll(c, c->param[0], lib))
        return;
    json_t *j = rc_body(c);
    if (!j)
        return;
    akidb_collection_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    rc = akidb_collection_info(db, lib, &cfg);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        goto done;
    }
    if (read_batch(c, j, cfg.dim, upsert, &b))
        goto done;
    json_decref(j);
    j = NULL;
    if (!(ids = malloc(b.n * sizeof *ids))) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        goto done;
    }
    if (c->q.max_vectors) {
        uv_mutex_lock(&c->tn->write_lock);
        locked = 1;
        uint64_t total = 0, adding = b.n;
        rc = tenant_vectors(c, &total);
        if (rc == AKIDB_OK && upsert) {
            adding = 0;
            for (size_t i = 0; i < b.n && rc == AKIDB_OK; i++) {
                uint64_t id;
                rc = akidb_lookup(db, lib, b.ext[i], &id);
                if (rc == AKIDB_NOTFOUND) {
                    adding++;
                    rc = AKIDB_OK;
                }
            }
        }
        if (rc != AKIDB_OK) {
            rc_lib(c, rc);
            goto done;
        }
        if (total + adding > c->q.max_vectors) {
            rc_error(c, 507, "QUOTA_EXCEEDED",
                     "tenant '%s' may hold at most %llu vectors; it has %llu and this adds %llu",
                     c->tenant, (unsigned long long)c->q.max_vectors,
                     (unsigned long long)total, (unsigned long long)adding);
            goto done;
        }
    }
    const char *const *ext = b.any_ext ? (const char *const *)b.ext : NULL;
    const char *const *meta = b.any_meta ? (const char *const *)b.meta : NULL;
    if (upsert)
        rc = akidb_upsert(db, lib, b.n, b.vectors, ext, meta, ids);
    else
        rc = akidb_insert(db, lib, b.n, b.vectors, ext, meta, ids);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        goto done;
    }
    jw w;
    rc_json(c, upsert ? 200 : 201, &w);
    jw_obj(&w);
    jw_key(&w, "ids");
    jw_arr(&w);
    for (size_t i = 0; i < b.n; i++)
        jw_uint(&w, ids[i]);
    jw_arr_end(&w);
    jw_obj_end(&w);
done:
    if (locked)
        uv_mutex_unlock(&c->tn->write_lock);
    json_decref(j);
    batch_free(&b);
    free(ids);
}

void h_vec_insert(rctx *c)
{
    write_vectors(c, 0);
}

void h_vec_upsert(rctx *c)
{
    write_vectors(c, 1);
}

/* Write document `id` of `lib` as the answer (200). */
static void answer_document(rctx *c, const char *lib, uint64_t id)
{
    akidb *db = c->srv->db;
    akidb_collection_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    int rc = akidb_collection_info(db, lib, &cfg);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    float *vec = malloc(cfg.dim * sizeof(float));
    if (!vec) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        return;
    }
    akidb_document doc;
    memset(&doc, 0, sizeof doc);
    doc.version = AKIDB_DOCUMENT_VERSION;
    rc = akidb_document_get(db, lib, id, vec, &doc);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        free(vec);
        return;
    }
    jw w;
    rc_json(c, 200, &w);
    jw_obj(&w);
    jw_key(&w, "id");
    jw_uint(&w, doc.id);
    jw_key(&w, "external_id");
    jw_str(&w, doc.external_id);
    jw_key(&w, "vector");
    jw_arr(&w);
    for (uint32_t i = 0; i < cfg.dim; i++)
        jw_float(&w, vec[i]);
    jw_arr_end(&w);
    jw_key(&w, "metadata");
    if (doc.metadata_json)
        jw_raw_json(&w, doc.metadata_json);
    else
        jw_null(&w);
    jw_key(&w, "inserted_at_us");
    jw_int(&w, doc.inserted_at_us);
    jw_obj_end(&w);
    akidb_document_clear(&doc);
    free(vec);
}

void h_vec_get(rctx *c)
{
    char lib[AKIDB_MAX_NAME_LEN + 1];
    uint64_t id;
    if (rc_coll(c, c->param[0], lib) || parse_id(c, c->param[1], &id))
        return;
    answer_document(c, lib, id);
}

void h_vec_lookup(rctx *c)
{
    char lib[AKIDB_MAX_NAME_LEN + 1], ext[AKIDB_MAX_EXTERNAL_ID_LEN + 1];
    if (rc_coll(c, c->param[0], lib))
        return;
    int r = rc_query(c, "external_id", ext, sizeof ext);
    if (r < 0)
        return;
    if (r == 0 || !ext[0]) {
        rc_error(c, 400, "BAD_REQUEST",
                 "give ?external_id=... (documents by id are at .../vectors/{id})");
        return;
    }
    uint64_t id;
    int rc = akidb_lookup(c->srv->db, lib, ext, &id);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    answer_document(c, lib, id);
}

void h_vec_delete(rctx *c)
{
    char lib[AKIDB_MAX_NAME_LEN + 1];
    uint64_t id;
    if (rc_coll(c, c->param[0], lib) || parse_id(c, c->param[1], &id))
        return;
    int rc = akidb_delete(c->srv->db, lib, id);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    c->status = 204;
}
