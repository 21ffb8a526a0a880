/*
 * snapshot.c - a collection as one Parquet file, and back.
 *
 * A snapshot is a plain Parquet file that DuckDB, pandas or Polars read
 * directly: one row per live document,
 *
 *   id           INT64                     required
 *   external_id  STRING                    optional
 *   vector       LIST<FLOAT>               required, dim elements
 *   metadata     JSON                      optional
 *   inserted_at  TIMESTAMP(MICROS, UTC)    required
 *   hnsw_level   INT32                     the node's top level in the graph
 *   hnsw_links   LIST<INT32>               its links, level 0 first, each
 *                                          level as (count, row numbers...)
 *
 * plus key_value_metadata with the collection's settings (akidb.format,
 * akidb.kind, akidb.dim, akidb.metric, akidb.hnsw_m, akidb.ef_construction,
 * akidb.ef_search, akidb.next_id, akidb.hnsw_entry_row).  Links name rows
 * (0-based, across row groups), so a restore rebuilds the index from the
 * saved graph without a single distance computation.
 *
 * Two kinds (akidb.kind; a file without it is a snapshot):
 *
 *   snapshot    what users keep and ship.  Tombstones are not written:
 *               links through them are repaired two hops out (see
 *               repair_links) and the entry point moves to a live node on
 *               the highest remaining level.  Vectors use BYTE_STREAM_SPLIT
 *               + ZSTD level 1: measured 6-9% smaller than PLAIN + ZSTD on
 *               embeddings, and level 3 is slower and no smaller.
 *   checkpoint  the log's checkpoint (checkpoint.c frames it).  Every node
 *               in node order, so row number = node number, with an eighth
 *               column hnsw_deleted INT32 (1 for a tombstone: id 0, no
 *               strings), links and entry verbatim, and the level
 *               generator's state (akidb.hnsw_rng, akidb.hnsw_dup_rng):
 *               a reopened collection is exactly the saved one.  Plain
 *               uncompressed floats, because it is written while writers
 *               wait and read at every open.
 *
 * The graph's tail.  Documents are acknowledged before they are linked
 * into the graph (collection.c), so a collection may hold nodes that are
 * not linked yet: always the last ones in node order.  Both kinds save
 * them as rows like any other, with their level (drawn when they were
 * written) and empty link lists at every level, after the linked rows,
 * and say where the tail starts:
 *
 *   akidb.hnsw_linked_rows  rows [0, this) are the graph; the rest is the
 *                           tail, linked again after a load.  Written only
 *                           when there is a tail, and such a file says
 *                           akidb.format "2" (AKIDB__SNAP_FORMAT_TAIL), so
 *                           that a library that knows only format "1"
 *                           (which would take tail rows for linked nodes
 *                           nothing points to, and never find them by
 *                           graph search) refuses it.
 *
 * A file without the key (every file written before the tail existed) is
 * all graph.  The entry point is always a linked row.
 *
 * Row groups hold ~32 MiB of vectors (a checkpoint's ~4 MiB), so the
 * writer's memory is bounded by one row group (the vectors themselves are
 * not copied: the writer reads them where the index keeps them), and a
 * load decodes one row group at a time straight into the index.
 *
 * The format in full, and what other library versions do with it:
 * docs/FORMATS.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "engine/collection.h"
#include "common/file.h"
#include "index/hnsw.h"
#include "format/parquet.h"
#include "common/hash.h"
#include "engine/snapshot.h"


/* The columns of both kinds; a checkpoint has all eight, a snapshot the
 * first seven. */
static const akidb__pq_column_def columns[] = {
    { "id", AKIDB__PQ_INT64, 0 },
    { "external_id", AKIDB__PQ_STRING, 1 },
    { "vector", AKIDB__PQ_FLOAT_LIST, 0 },
    { "metadata", AKIDB__PQ_JSON, 1 },
    { "inserted_at", AKIDB__PQ_TIMESTAMP_US, 0 },
    { "hnsw_level", AKIDB__PQ_INT32, 0 },
    { "hnsw_links", AKIDB__PQ_INT32_LIST, 0 },
    { "hnsw_deleted", AKIDB__PQ_INT32, 0 },
};
enum { C_ID, C_EXT, C_VEC, C_META, C_TIME, C_LEVEL, C_LINKS, C_DELETED, N_COLS };
#define N_SNAPSHOT_COLS C_DELETED

static const char *metric_name(akidb_metric m)
{
    return m == AKIDB_METRIC_L2 ? "l2" : m == AKIDB_METRIC_COSINE ? "cosine" : "dot";
}

/* ---- writing --------------------------------------------------------- */

typedef struct file_sink {
    int fd;
    const char *path;
    uint64_t off;
    akidb__sha256 *sha;
} file_sink;

static int sink_write(void *ctx, const void *buf, size_t len)
{
    file_sink *s = ctx;
    int err = akidb__pwrite_all(s->fd, buf, len, s->off);
    if (err)
        return akidb__err(AKIDB_IOERR, "%s: write failed: %s", s->path, strerror(err));
    s->off += len;
    if (s->sha && akidb__sha256_update(s->sha, buf, len) != 0)
        return akidb__err(AKIDB_ERROR, "%s: SHA-256 failed", s->path);
    return AKIDB_OK;
}

/* Growable byte/number buffers for one row group. */
typedef struct growbuf {
    unsigned char *p;
    size_t len, cap;
} growbuf;

/* Room for `need` bytes in all. */
static int buf_reserve(const akidb_allocator *a, growbuf *b, size_t need)
{
    if (need <= b->cap)
        return AKIDB_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    unsigned char *p = akidb__realloc(a, b->p, cap);
    if (!p)
        return AKIDB_NOMEM;
    b->p = p;
    b->cap = cap;
    return AKIDB_OK;
}

static int buf_add(const akidb_allocator *a, growbuf *b, const void *src, size_t len)
{
    if (buf_reserve(a, b, b->len + len))
        return AKIDB_NOMEM;
    if (len)
        memcpy(b->p + b->len, src, len);
    b->len += len;
    return AKIDB_OK;
}

/* One row group's columns.  The vectors stay where the index keeps them:
 * vec_rows points at each, and the writer copies them into its pages. */
typedef struct group {
    growbuf ids, ext, ext_off, ext_null, vec_rows, vec_off, meta, meta_off, meta_null, time, level,
        links, links_off, deleted;
    /* Rows whose index holds no exact vector (AKIDB_EXACT_NONE) get a NULL
     * in vec_rows and their decoded vector here, in row order; flush_group
     * points the NULLs at them (dec moves as it grows). */
    growbuf dec;
} group;

static void group_reset(group *g)
{
    growbuf *all[] = { &g->ids, &g->ext, &g->ext_off, &g->ext_null, &g->vec_rows, &g->vec_off, &g->meta,
                       &g->meta_off, &g->meta_null, &g->time, &g->level, &g->links, &g->links_off,
                       &g->deleted, &g->dec };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        all[i]->len = 0;
}

static void group_free(const akidb_allocator *a, group *g)
{
    growbuf *all[] = { &g->ids, &g->ext, &g->ext_off, &g->ext_null, &g->vec_rows, &g->vec_off, &g->meta,
                       &g->meta_off, &g->meta_null, &g->time, &g->level, &g->links, &g->links_off,
                       &g->deleted, &g->dec };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        akidb__free(a, all[i]->p);
}

static int add_u64(const akidb_allocator *a, growbuf *b, uint64_t v) { return buf_add(a, b, &v, 8); }
static int add_i32(const akidb_allocator *a, growbuf *b, int32_t v) { return buf_add(a, b, &v, 4); }
static int add_ptr(const akidb_allocator *a, growbuf *b, const void *p)
{
    return buf_add(a, b, &p, sizeof p);
}

/* Node i's vector for the f32 column: a pointer to the index's exact
 * vector in RAM; else a copy, read from the file holding it
 * (AKIDB_EXACT_FILE) or (no exact vector: AKIDB_EXACT_NONE) its decoded
 * compact vector, which a load encodes back to the same codes. */
static int add_vector(const akidb_allocator *a, group *g, const akidb__hnsw *h, uint32_t i,
                      uint32_t dim)
{
    const float *v = akidb__hnsw_vector(h, i);
    if (v)
        return add_ptr(a, &g->vec_rows, v);
    size_t bytes = (size_t)dim * sizeof(float);
    if (add_ptr(a, &g->vec_rows, NULL) || buf_reserve(a, &g->dec, g->dec.len + bytes))
        return AKIDB_NOMEM;
    int rc = akidb__hnsw_vector_copy(h, i, (float *)(void *)(g->dec.p + g->dec.len), NULL);
    g->dec.len += bytes;
    return rc;
}

static int flush_group(akidb__pqw *w, group *g, size_t rows, uint32_t dim)
{
    const float **vr = (const float **)(void *)g->vec_rows.p;
    size_t n_dec = 0;
    for (size_t i = 0; i < rows && g->dec.len; i++)
        if (!vr[i])
            vr[i] = (const float *)(const void *)g->dec.p + n_dec++ * dim;
    akidb__pq_values v[N_COLS];
    memset(v, 0, sizeof v);
    v[C_ID].i64 = (const int64_t *)g->ids.p;
    v[C_EXT].bytes = g->ext.p;
    v[C_EXT].offsets = (const uint64_t *)g->ext_off.p;
    v[C_EXT].nulls = g->ext_null.p;
    v[C_VEC].f32_rows = (const float *const *)(const void *)g->vec_rows.p;
    v[C_VEC].offsets = (const uint64_t *)g->vec_off.p;
    v[C_META].bytes = g->meta.p;
    v[C_META].offsets = (const uint64_t *)g->meta_off.p;
    v[C_META].nulls = g->meta_null.p;
    v[C_TIME].i64 = (const int64_t *)g->time.p;
    v[C_LEVEL].i32 = (const int32_t *)g->level.p;
    v[C_LINKS].i32 = (const int32_t *)g->links.p;
    v[C_LINKS].offsets = (const uint64_t *)g->links_off.p;
    v[C_DELETED].i32 = (const int32_t *)g->deleted.p;
    int rc = akidb__pqw_write_row_group(w, rows, v);
    group_reset(g);
    return rc;
}

typedef struct cand {
    float dist;
    uint32_t node;
} cand;

static int cmp_cand(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    return (a->dist > b->dist) - (a->dist < b->dist);
}

/*
 * The live links of `node` at `level`, into out[] (room for 2M).  A link
 * to a tombstone is not written; its slot goes to the tombstone's own
 * live neighbours, closest first (a two-hop repair), so the graph keeps
 * the paths that ran through deleted nodes.  Without it, a snapshot of a
 * collection with a third of its documents deleted lost ~5 points of
 * recall@10; with it, none measurable.
 */
static uint32_t repair_links(const akidb__hnsw *h, const uint32_t *row_of, uint32_t node,
                             int level, uint32_t m, uint32_t *out)
{
    uint32_t max_links = level == 0 ? 2 * m : m;
    uint32_t cnt, n_out = 0, n_dead = 0;
    const uint32_t *ll = akidb__hnsw_links(h, node, level, &cnt);
    for (uint32_t k = 0; k < cnt; k++) {
        if (row_of[ll[k]] != UINT32_MAX)
            out[n_out++] = ll[k];
        else
            n_dead++;
    }
    if (!n_dead || n_out >= max_links)
        return n_out;
    cand cands[512];
    uint32_t n_cands = 0;
    const float *v = akidb__hnsw_vector(h, node);
    for (uint32_t k = 0; k < cnt && n_cands < 512; k++) {
        if (row_of[ll[k]] != UINT32_MAX)
            continue;
        uint32_t c2;
        const uint32_t *l2 = akidb__hnsw_links(h, ll[k], level, &c2);
        for (uint32_t j = 0; j < c2 && n_cands < 512; j++) {
            uint32_t x = l2[j];
            int seen = x == node || row_of[x] == UINT32_MAX;
            for (uint32_t t = 0; !seen && t < n_out; t++)
                seen = out[t] == x;
            for (uint32_t t = 0; !seen && t < n_cands; t++)
                seen = cands[t].node == x;
            if (!seen) {
                cands[n_cands].node = x;
                cands[n_cands].dist = v ? akidb__hnsw_distance(h, v, x)
                                        : akidb__hnsw_node_distance(h, node, x);
                n_cands++;
            }
        }
    }
    qsort(cands, n_cands, sizeof *cands, cmp_cand);
    for (uint32_t t = 0; t < n_cands && n_out < max_links; t++)
        out[n_out++] = cands[t].node;
    return n_out;
}

/* Row numbers: row_of[node] for every node written, UINT32_MAX for a
 * tombstone a snapshot drops (exact = 0; a checkpoint keeps every node).
 * *linked_rows_out is the number of rows of graph nodes (the tail's rows
 * follow them).  *entry_row is the row of the saved entry point if it is
 * kept (it is on the top level), else of the first live node on the
 * highest remaining level; -1 when no row is written. */
static int number_rows(const akidb_allocator *a, const akidb__hnsw *h, uint32_t n, int exact,
                       uint32_t **row_of_out, uint32_t *rows_out, uint32_t *linked_rows_out,
                       int64_t *entry_row)
{
    uint32_t *row_of = akidb__alloc_array(a, n ? n : 1, sizeof *row_of);
    if (!row_of)
        return AKIDB_NOMEM;
    uint32_t rows = 0, linked_rows = 0;
    const uint32_t n_linked = akidb__hnsw_linked(h);
    int top_level = -1;
    int64_t top_row = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (!exact && akidb__hnsw_is_deleted(h, i)) {
            row_of[i] = UINT32_MAX;
            continue;
        }
        row_of[i] = rows++;
        if (i >= n_linked)
            continue;   /* the tail: kept, in no graph yet */
        linked_rows = rows;
        if (akidb__hnsw_level(h, i) > top_level) {
            top_level = akidb__hnsw_level(h, i);
            top_row = row_of[i];
        }
    }
    /* With no graph at all (every row in the tail), row 0: a loader that
     * sees no linked row reads it as nothing. */
    *entry_row = -1;
    if (linked_rows) {
        uint32_t e = akidb__hnsw_entry(h);
        *entry_row = row_of[e] != UINT32_MAX ? row_of[e] : top_row;
    } else if (rows) {
        *entry_row = 0;
    }
    *row_of_out = row_of;
    *rows_out = rows;
    *linked_rows_out = linked_rows;
    return AKIDB_OK;
}

/* The text of the metadata pairs both kinds carry (it must outlive the
 * writer, which copies it at open). */
/* ---- the quantiser's parameters in key/value metadata ------------------
 * akidb.storage    "f16" or "int8" (absent: f32, every older file)
 * akidb.i8_scale   the int8 grid's step, "%.9g" (round-trips a float)
 * akidb.i8_offset  the per-dimension offsets: base64 (RFC 4648, padded)
 *                  of dim little-endian IEEE binary32 values
 * The int8 pair is written once the quantiser is trained; a load encodes
 * the f32 column with them, so codes and graph come back identical. */

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 of in[0..len) into out (room for 4 * ceil(len / 3) + 1). */
static void b64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64_chars[(v >> 18) & 63];
        out[o++] = b64_chars[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_chars[v & 63] : '=';
    }
    out[o] = '\0';
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64_chars, c) : NULL;
    return p ? (int)(p - b64_chars) : -1;
}

/* Decode exactly want bytes from the padded base64 text s; 0 when s is
 * not that (wrong length, a stray character, bad padding). */
static int b64_decode(const char *s, unsigned char *out, size_t want)
{
    size_t len = strlen(s);
    if (len != (want + 2) / 3 * 4)
        return 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int c[4];
        for (int k = 0; k < 4; k++)
            c[k] = s[i + k] == '=' ? -2 : b64_value(s[i + k]);
        uint32_t v = 0;
        for (int k = 0; k < 4; k++) {
            int pad_ok = i + 4 == len && k >= 2 && c[k] == -2 && (k == 3 || c[3] == -2);
            if (c[k] < 0 && !pad_ok)
                return 0;
            v = v << 6 | (uint32_t)(c[k] < 0 ? 0 : c[k]);
        }
        unsigned char b[3] = { (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                               (unsigned char)v };
        for (int k = 0; k < 3 && o < want; k++)
            out[o++] = b[k];
    }
    return o == want;
}

static const char *storage_name(akidb_storage s)
{
    return s == AKIDB_STORAGE_F16 ? "f16" : s == AKIDB_STORAGE_INT8 ? "int8" : "f32";
}

typedef struct quant_kv {
    char scale[32];
    char *offset;               /* allocated; NULL when not written */
} quant_kv;

/* Append akidb.storage (not f32) and, for a trained int8 index, its
 * parameters; returns the new count, or 0 when out of memory. */
static size_t add_quant_kv(const akidb_allocator *a, const akidb_collection_config *cfg,
                           const akidb__hnsw *h, quant_kv *t, const char **keys,
                           const char **vals, size_t n_kv)
{
    if (cfg->storage == AKIDB_STORAGE_F32)
        return n_kv;
    keys[n_kv] = "akidb.storage";
    vals[n_kv++] = storage_name(cfg->storage);
    akidb__i8_params p;
    if (!akidb__hnsw_i8_params(h, &p))
        return n_kv;
    unsigned char *le = akidb__alloc_array(a, p.dim, 4);
    t->offset = akidb__malloc(a, ((size_t)p.dim * 4 + 2) / 3 * 4 + 1);
    if (!le || !t->offset) {
        akidb__free(a, le);
        return 0;
    }
    for (uint32_t d = 0; d < p.dim; d++) {
        uint32_t bits;
        memcpy(&bits, &p.offset[d], 4);
        for (int k = 0; k < 4; k++)
            le[(size_t)d * 4 + (size_t)k] = (unsigned char)(bits >> (8 * k));
    }
    b64_encode(le, (size_t)p.dim * 4, t->offset);
    akidb__free(a, le);
    snprintf(t->scale, sizeof t->scale, "%.9g", (double)p.scale);
    keys[n_kv] = "akidb.i8_scale";
    vals[n_kv++] = t->scale;
    keys[n_kv] = "akidb.i8_offset";
    vals[n_kv++] = t->offset;
    return n_kv;
}

typedef struct common_kv {
    char dim[16], m[16], efc[16], efs[16], next[32], entry[32], linked[16];
} common_kv;

/* Append the 9 pairs both kinds carry to keys/vals after the first n_kv,
 * and a 10th, akidb.hnsw_linked_rows, when the file has a tail (rows
 * above linked_rows); returns the new count. */
static size_t add_common_kv(const akidb__collection *c, const akidb_collection_config *cfg,
                            int64_t entry_row, uint32_t rows, uint32_t linked_rows,
                            common_kv *t, const char **keys, const char **vals, size_t n_kv)
{
    int tail = linked_rows < rows;
    snprintf(t->dim, sizeof t->dim, "%u", cfg->dim);
    snprintf(t->m, sizeof t->m, "%u", cfg->hnsw_m);
    snprintf(t->efc, sizeof t->efc, "%u", cfg->ef_construction);
    snprintf(t->efs, sizeof t->efs, "%u", cfg->ef_search);
    snprintf(t->next, sizeof t->next, "%llu", (unsigned long long)akidb__coll_next_id(c));
    snprintf(t->entry, sizeof t->entry, "%lld", (long long)entry_row);
    const char *common_keys[] = { "akidb.format", "akidb.collection", "akidb.dim",
                                  "akidb.metric", "akidb.hnsw_m", "akidb.ef_construction",
                                  "akidb.ef_search", "akidb.next_id", "akidb.hnsw_entry_row" };
    const char *common_vals[] = { tail ? AKIDB__SNAP_FORMAT_TAIL : AKIDB__SNAP_FORMAT,
                                  akidb__coll_name(c), t->dim, metric_name(cfg->metric), t->m,
                                  t->efc, t->efs, t->next, t->entry };
    for (size_t i = 0; i < sizeof common_keys / sizeof common_keys[0]; i++) {
        keys[n_kv] = common_keys[i];
        vals[n_kv++] = common_vals[i];
    }
    if (tail) {
        snprintf(t->linked, sizeof t->linked, "%u", linked_rows);
        keys[n_kv] = "akidb.hnsw_linked_rows";
        vals[n_kv++] = t->linked;
    }
    return n_kv;
}

/* Append node i as row in_group of the row group g: its document, a
 * pointer to its vector (not a copy), its level and its links (each level
 * as count, row numbers; a snapshot's repaired around tombstones).
 * Returns AKIDB_OK or AKIDB_NOMEM. */
static int add_row(const akidb_allocator *a, group *g, const akidb__collection *c,
                   const akidb__hnsw *h, const uint32_t *row_of, uint32_t i, size_t in_group,
                   int exact, uint32_t dim, uint32_t m)
{
    uint64_t id = 0;
    const char *ext = NULL, *meta = NULL;
    int64_t t;
    int32_t dead = !akidb__coll_node(c, i, &id, &ext, &meta, &t);
    /* the offsets arrays start with a 0 for each row group */
    if (in_group == 0 && (add_u64(a, &g->ext_off, 0) || add_u64(a, &g->vec_off, 0) ||
                          add_u64(a, &g->meta_off, 0) || add_u64(a, &g->links_off, 0)))
        return AKIDB_NOMEM;
    unsigned char ext_null = ext == NULL, meta_null = meta == NULL;
    int lv = akidb__hnsw_level(h, i);
    int rc = add_vector(a, g, h, i, dim);   /* NOMEM, or the file's error (EXACT_FILE) */
    if (rc)
        return rc;
    int bad = add_u64(a, &g->ids, id) ||
              buf_add(a, &g->ext, ext, ext ? strlen(ext) : 0) ||
              add_u64(a, &g->ext_off, g->ext.len) || buf_add(a, &g->ext_null, &ext_null, 1) ||
              add_u64(a, &g->vec_off, (uint64_t)(in_group + 1) * dim) ||
              buf_add(a, &g->meta, meta, meta ? strlen(meta) : 0) ||
              add_u64(a, &g->meta_off, g->meta.len) || buf_add(a, &g->meta_null, &meta_null, 1) ||
              add_u64(a, &g->time, (uint64_t)t) || add_i32(a, &g->level, lv) ||
              (exact && add_i32(a, &g->deleted, dead));
    for (int l = 0; !bad && l <= lv; l++) {
        uint32_t kept[256], n_kept;
        const uint32_t *out = kept;
        if (exact)
            out = akidb__hnsw_links(h, i, l, &n_kept);
        else
            n_kept = repair_links(h, row_of, i, l, m, kept);
        bad = add_i32(a, &g->links, (int32_t)n_kept);
        for (uint32_t k = 0; !bad && k < n_kept; k++)
            bad = add_i32(a, &g->links, (int32_t)row_of[out[k]]);
    }
    if (bad || add_u64(a, &g->links_off, g->links.len / 4))
        return AKIDB_NOMEM;
    return AKIDB_OK;
}

/*
 * The encoder both kinds share.  exact = 0 (a snapshot): live documents
 * only, links through tombstones repaired.  exact = 1 (a checkpoint): every
 * node in node order, tombstones flagged in hnsw_deleted, links and entry
 * point verbatim.  The caller holds c's lock and has put the kind-specific
 * pairs in keys/vals (n_kv of them, with room for the 10 common ones).
 */
static int encode(const akidb__env *env, const akidb__collection *c, int exact,
                  const char **keys, const char **vals, size_t n_kv, akidb__pq_sink sink,
                  void *sink_ctx, const char *what, uint64_t *rows_out, uint64_t *bytes_out)
{
    const akidb_allocator *a = &env->alloc;
    akidb_collection_config cfg;
    akidb__coll_config(c, &cfg);
    const akidb__hnsw *h = akidb__coll_index(c);
    uint32_t n = akidb__coll_nodes(c), rows = 0;
    uint32_t *row_of = NULL;
    int64_t entry_row;
    group g;
    memset(&g, 0, sizeof g);
    akidb__pqw *w = NULL;
    common_kv kv_text;
    quant_kv qkv = { "", NULL };

    uint32_t linked_rows = 0;
    int rc = number_rows(a, h, n, exact, &row_of, &rows, &linked_rows, &entry_row);
    if (rc)
        return akidb__err(rc, "%s: out of memory", what);
    n_kv = add_common_kv(c, &cfg, entry_row, rows, linked_rows, &kv_text, keys, vals, n_kv);
    size_t n_common = n_kv;
    if (!(n_kv = add_quant_kv(a, &cfg, h, &qkv, keys, vals, n_common))) {
        rc = akidb__err(AKIDB_NOMEM, "%s: out of memory", what);
        goto done;
    }
    akidb__pqw_options o;
    memset(&o, 0, sizeof o);
    /* A snapshot is kept and shipped: ZSTD over BYTE_STREAM_SPLIT floats
     * makes it ~20% smaller.  A checkpoint is written while writers wait
     * and read back at every open: plain floats, uncompressed, take half
     * the CPU both ways, and its whole-file checksum covers the bytes. */
    o.zstd_level = exact ? 0 : 1;
    o.byte_stream_split = !exact;
    o.kv_keys = keys;
    o.kv_values = vals;
    o.n_kv = n_kv;
    o.created_by = "akidb version " AKIDB_VERSION_STRING;
    if ((rc = akidb__pqw_open(columns, exact ? N_COLS : N_SNAPSHOT_COLS, &o, a, sink, sink_ctx,
                              &w)))
        goto done;

    /* Snapshots: ~32 MiB row groups, which readers like DuckDB handle
     * well.  Checkpoints: ~4 MiB, so the one row group a reopen decodes at
     * a time stays small on a device short of memory. */
    size_t row_bytes = (size_t)cfg.dim * 4 + 160;
    size_t rg_rows = ((size_t)(exact ? 4 : 32) << 20) / row_bytes;
    if (rg_rows < 256)
        rg_rows = 256;

    size_t in_group = 0;
    for (uint32_t i = 0; i < n && rc == AKIDB_OK; i++) {
        if (row_of[i] == UINT32_MAX)
            continue;
        if ((rc = add_row(a, &g, c, h, row_of, i, in_group, exact, cfg.dim, cfg.hnsw_m))) {
            rc = rc == AKIDB_NOMEM ? akidb__err(rc, "%s: out of memory", what)
                                   : akidb__err(rc, "%s: %s", what, akidb__errmsg());
            break;
        }
        if (++in_group == rg_rows) {
            rc = flush_group(w, &g, in_group, cfg.dim);
            in_group = 0;
        }
    }
    if (rc == AKIDB_OK && in_group)
        rc = flush_group(w, &g, in_group, cfg.dim);
    if (rc == AKIDB_OK)
        rc = akidb__pqw_finish(w, bytes_out);
    *rows_out = rows;
done:
    akidb__pqw_free(w);
    group_free(a, &g);
    akidb__free(a, row_of);
    akidb__free(a, qkv.offset);
    return rc;
}

int akidb__snap_write(const akidb__env *env, akidb__collection *c, const char *path,
                      int durable, akidb__snap_result *res)
{
    memset(res, 0, sizeof *res);
    file_sink sink = { -1, path, 0, NULL };
    sink.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, akidb__env_file_mode(env));
    if (sink.fd < 0)
        return akidb__err(AKIDB_IOERR, "%s: cannot create: %s", path, strerror(errno));
    sink.sha = akidb__sha256_new();
    if (!sink.sha) {
        close(sink.fd);
        unlink(path);
        return akidb__err(AKIDB_NOMEM, "%s: cannot start SHA-256", path);
    }
    const char *keys[24] = { "akidb.kind" }, *vals[24] = { "snapshot" };
    akidb__coll_rdlock(c);   /* a point in time: writers wait, searches go on */
    int rc = encode(env, c, 0, keys, vals, 1, sink_write, &sink, path, &res->rows, &res->bytes);
    akidb__coll_unlock(c);
    if (rc == AKIDB_OK) {
        int hrc = akidb__sha256_final(sink.sha, res->sha256);
        sink.sha = NULL;
        if (hrc != 0)
            rc = akidb__err(AKIDB_ERROR, "%s: SHA-256 failed", path);
        if (rc == AKIDB_OK && durable && fsync(sink.fd) != 0)
            rc = akidb__err(AKIDB_IOERR, "%s: fsync failed: %s", path, strerror(errno));
    }
    akidb__sha256_free(sink.sha);
    close(sink.fd);
    if (rc)
        unlink(path);
    return rc;
}

int akidb__snap_encode_exact(const akidb__env *env, const akidb__collection *c,
                             const char *const *kv_keys, const char *const *kv_vals, size_t n_kv,
                             akidb__pq_sink sink, void *sink_ctx, const char *what)
{
    akidb__hnsw_rng st;
    akidb__hnsw_get_rng(akidb__coll_index(c), &st);
    char kv_rng[24], kv_dup[24];
    snprintf(kv_rng, sizeof kv_rng, "%llu", (unsigned long long)st.rng);
    snprintf(kv_dup, sizeof kv_dup, "%llu", (unsigned long long)st.dup_rng);
    const char *keys[24] = { "akidb.kind", "akidb.hnsw_rng", "akidb.hnsw_dup_rng" };
    const char *vals[24] = { "checkpoint", kv_rng, kv_dup };
    size_t k = 3;
    if (n_kv > 24 - k - 10)
        return akidb__err(AKIDB_INVALID, "%s: too many metadata pairs", what);
    for (size_t i = 0; i < n_kv; i++, k++) {
        keys[k] = kv_keys[i];
        vals[k] = kv_vals[i];
    }
    uint64_t rows, bytes;
    return encode(env, c, 1, keys, vals, k, sink, sink_ctx, what, &rows, &bytes);
}

/* ---- reading --------------------------------------------------------- */

int akidb__snap_kv_u64(const akidb__pqr *r, const char *key, uint64_t *out, const char *what)
{
    const char *v = akidb__pqr_kv(r, key);
    char *end;
    if (!v || !*v)
        return akidb__err(AKIDB_CORRUPT, "%s: metadata %s is missing", what, key);
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || errno || v[0] == '-' || v[0] == '+' || v[0] == ' ')
        return akidb__err(AKIDB_CORRUPT, "%s: metadata %s=\"%.40s\" is not a number", what,
                          key, v);
    *out = x;
    return AKIDB_OK;
}

/* Documents of the rows loaded so far, until the collection adopts them. */
typedef struct docs {
    uint64_t *ids;
    int64_t *times;
    char **ext, **meta;
    size_t n;                   /* rows with room in all four arrays */
} docs;

/* Room for `more` rows after the first `have`; the new string slots NULL. */
static int docs_grow(const akidb_allocator *a, docs *d, uint64_t have, size_t more)
{
    size_t n = (size_t)have + more;
    uint64_t *ids = akidb__realloc_array(a, d->ids, n, sizeof *ids);
    if (!ids)
        return AKIDB_NOMEM;
    d->ids = ids;
    int64_t *times = akidb__realloc_array(a, d->times, n, sizeof *times);
    if (!times)
        return AKIDB_NOMEM;
    d->times = times;
    char **ext = akidb__realloc_array(a, d->ext, n, sizeof *ext);
    if (!ext)
        return AKIDB_NOMEM;
    d->ext = ext;
    memset(ext + have, 0, more * sizeof *ext);
    char **meta = akidb__realloc_array(a, d->meta, n, sizeof *meta);
    if (!meta)
        return AKIDB_NOMEM;
    d->meta = meta;
    memset(meta + have, 0, more * sizeof *meta);
    d->n = n;
    return AKIDB_OK;
}

/* Copy row i of a row group's string column sv into *dst (NULL for null). */
static int take_string(const akidb_allocator *a, const akidb__pqr_values *sv, size_t i,
                       int is_ext, uint64_t row, const char *what, char **dst)
{
    if (sv->nulls && sv->nulls[i])
        return AKIDB_OK;
    uint64_t b = sv->offsets[i], e = sv->offsets[i + 1];
    if (memchr(sv->bytes + b, 0, e - b) ||
        (is_ext && (e == b || e - b > AKIDB_MAX_EXTERNAL_ID_LEN)))
        return akidb__err(AKIDB_CORRUPT, "%s: row %llu: bad %s", what, (unsigned long long)row,
                          is_ext ? "external id" : "metadata");
    if (!(*dst = akidb__malloc(a, e - b + 1)))
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", what);
    memcpy(*dst, sv->bytes + b, e - b);
    (*dst)[e - b] = '\0';
    return AKIDB_OK;
}

/* What the file's metadata says, checked against the collection it is
 * loaded into, and where its columns are. */
typedef struct load_plan {
    int exact;                  /* a checkpoint (every node, tombstones flagged) */
    size_t n_cols;
    int col[N_COLS];            /* reader column of each of `columns` */
    uint64_t n, dim, next_id;
    uint64_t linked;            /* rows [0, linked) are the graph, the rest its tail */
    uint32_t entry;             /* row of the entry point (0 when n == 0) */
    akidb__hnsw_rng saved_rng;  /* a checkpoint's level generator */
    akidb_storage storage;      /* akidb.storage (f32 when absent) */
    float *i8_offset;           /* akidb.i8_offset, dim values; NULL when absent */
    float i8_scale;             /* akidb.i8_scale */
} load_plan;

/* akidb.storage and, for int8, the quantiser's parameters (both keys or
 * neither); p->i8_offset is allocated from a (the caller frees it).  Any
 * damage is AKIDB_CORRUPT naming the key. */
static int plan_quant(const akidb__pqr *r, const akidb_allocator *a, const char *what,
                      load_plan *p)
{
    const char *st = akidb__pqr_kv(r, "akidb.storage");
    const char *sc = akidb__pqr_kv(r, "akidb.i8_scale");
    const char *of = akidb__pqr_kv(r, "akidb.i8_offset");
    p->storage = AKIDB_STORAGE_F32;
    if (st) {
        if (!strcmp(st, "f16"))
            p->storage = AKIDB_STORAGE_F16;
        else if (!strcmp(st, "int8"))
            p->storage = AKIDB_STORAGE_INT8;
        else if (strcmp(st, "f32"))
            return akidb__err(AKIDB_CORRUPT, "%s: metadata akidb.storage=\"%.40s\" is not "
                              "f32, f16 or int8", what, st);
    }
    if (!sc && !of)
        return AKIDB_OK;
    if (p->storage != AKIDB_STORAGE_INT8)
        return akidb__err(AKIDB_CORRUPT, "%s: metadata %s in a file whose akidb.storage is "
                          "not int8", what, sc ? "akidb.i8_scale" : "akidb.i8_offset");
    if (!sc || !of)
        return akidb__err(AKIDB_CORRUPT, "%s: metadata %s is missing (akidb.i8_scale and "
                          "akidb.i8_offset go together)", what,
                          sc ? "akidb.i8_offset" : "akidb.i8_scale");
    char *end = NULL;
    errno = 0;
    float scale = strtof(sc, &end);
    if (!*sc || *end || errno || !(scale > 0.0f) || !isfinite(scale))
        return akidb__err(AKIDB_CORRUPT, "%s: metadata akidb.i8_scale=\"%.40s\" is not a "
                          "finite number above 0", what, sc);
    if (p->dim < 1 || p->dim > AKIDB_MAX_DIM)
        return akidb__err(AKIDB_CORRUPT, "%s: metadata akidb.dim is out of range", what);
    unsigned char *le = akidb__alloc_array(a, (size_t)p->dim, 4);
    p->i8_offset = akidb__alloc_array(a, (size_t)p->dim, sizeof(float));
    if (!le || !p->i8_offset) {
        akidb__free(a, le);
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", what);
    }
    int ok = b64_decode(of, le, (size_t)p->dim * 4);
    for (uint64_t d = 0; ok && d < p->dim; d++) {
        uint32_t bits = 0;
        for (int k = 0; k < 4; k++)
            bits |= (uint32_t)le[d * 4 + (uint64_t)k] << (8 * k);
        memcpy(&p->i8_offset[d], &bits, 4);
    }
    akidb__free(a, le);
    if (!ok)
        return akidb__err(AKIDB_CORRUPT, "%s: metadata akidb.i8_offset is not base64 of %llu "
                          "little-endian floats", what, (unsigned long long)p->dim);
    akidb__i8_params ip = { (uint32_t)p->dim, scale, p->i8_offset };
    if (!akidb__i8_params_valid(&ip))
        return akidb__err(AKIDB_CORRUPT, "%s: metadata akidb.i8_offset holds a value that is "
                          "not finite on the grid of akidb.i8_scale %.9g", what, (double)scale);
    p->i8_scale = scale;
    return AKIDB_OK;
}

/* Fill *p from r's metadata: format and kind, the settings (which must be
 * the collection's), the columns (present, of the right kind), the entry
 * row, and a row count the file can hold.  AKIDB_CORRUPT for a damaged or
 * inconsistent file, AKIDB_INVALID for a valid one that does not fit. */
static int plan_load(const akidb__pqr *r, const akidb_collection_config *cfg, const char *what,
                     load_plan *p)
{
    int rc;
    uint64_t m = 0;
    const char *fmt = akidb__pqr_kv(r, "akidb.format");
    const char *kind = akidb__pqr_kv(r, "akidb.kind");
    const char *metric = akidb__pqr_kv(r, "akidb.metric");
    const char *entry_s = akidb__pqr_kv(r, "akidb.hnsw_entry_row");
    memset(p, 0, sizeof *p);
    p->n = akidb__pqr_num_rows(r);
    if (!fmt || (strcmp(fmt, AKIDB__SNAP_FORMAT) != 0 && strcmp(fmt, AKIDB__SNAP_FORMAT_TAIL) != 0))
        return akidb__err(fmt ? AKIDB_INVALID : AKIDB_CORRUPT, "%s: not an AkiDB snapshot of "
                          "format %s or %s (akidb.format is %s)", what, AKIDB__SNAP_FORMAT,
                          AKIDB__SNAP_FORMAT_TAIL, fmt ? fmt : "missing");
    /* Snapshots written before akidb.kind existed have none. */
    p->exact = kind && strcmp(kind, "checkpoint") == 0;
    if (kind && !p->exact && strcmp(kind, "snapshot") != 0)
        return akidb__err(AKIDB_INVALID, "%s: akidb.kind \"%.40s\" is neither snapshot nor "
                          "checkpoint", what, kind);
    if ((rc = akidb__snap_kv_u64(r, "akidb.dim", &p->dim, what)) ||
        (rc = akidb__snap_kv_u64(r, "akidb.hnsw_m", &m, what)) ||
        (rc = akidb__snap_kv_u64(r, "akidb.next_id", &p->next_id, what)) ||
        (p->exact && ((rc = akidb__snap_kv_u64(r, "akidb.hnsw_rng", &p->saved_rng.rng, what)) ||
                      (rc = akidb__snap_kv_u64(r, "akidb.hnsw_dup_rng", &p->saved_rng.dup_rng,
                                               what)))))
        return rc;
    if (p->dim != cfg->dim || m != cfg->hnsw_m || !metric ||
        strcmp(metric, metric_name(cfg->metric)))
        return akidb__err(AKIDB_INVALID, "%s: snapshot is for dim %llu, metric %s, M %llu; the "
                          "collection has dim %u, metric %s, M %u", what,
                          (unsigned long long)p->dim, metric ? metric : "?",
                          (unsigned long long)m, cfg->dim, metric_name(cfg->metric),
                          cfg->hnsw_m);
    p->n_cols = p->exact ? N_COLS : N_SNAPSHOT_COLS;
    for (size_t i = 0; i < p->n_cols; i++) {
        p->col[i] = akidb__pqr_find_column(r, columns[i].name);
        akidb__pqr_column_info info;
        if (p->col[i] < 0 || akidb__pqr_column(r, (size_t)p->col[i], &info) != AKIDB_OK ||
            info.kind != columns[i].kind)
            return akidb__err(AKIDB_CORRUPT, "%s: column %s is missing or has the wrong type",
                              what, columns[i].name);
    }
    char *end = NULL;
    long long entry = entry_s ? strtoll(entry_s, &end, 10) : -1;
    if (p->n && (!entry_s || *end || entry < 0 || (uint64_t)entry >= p->n))
        return akidb__err(AKIDB_CORRUPT, "%s: akidb.hnsw_entry_row is missing or out of range",
                          what);
    p->entry = p->n ? (uint32_t)entry : 0;
    /* n is bounded by the file (the reader checked row counts against the
     * pages) and each row holds dim floats, which compress at most ~64x. */
    if (p->n > UINT32_MAX - 2 || p->n * p->dim * 4 > (uint64_t)akidb__pqr_file_size(r) * 64)
        return akidb__err(AKIDB_CORRUPT, "%s: %llu rows cannot fit in %llu bytes", what,
                          (unsigned long long)p->n,
                          (unsigned long long)akidb__pqr_file_size(r));
    /* Where the tail starts (see the top of this file); no key: no tail. */
    p->linked = p->n;
    if (akidb__pqr_kv(r, "akidb.hnsw_linked_rows") &&
        (rc = akidb__snap_kv_u64(r, "akidb.hnsw_linked_rows", &p->linked, what)))
        return rc;
    if (p->linked > p->n)
        return akidb__err(AKIDB_CORRUPT, "%s: akidb.hnsw_linked_rows %llu is above the %llu "
                          "rows", what, (unsigned long long)p->linked,
                          (unsigned long long)p->n);
    return AKIDB_OK;
}

/* Copy the documents of a decoded row group (v, rows rows) into d from
 * row done_rows on, checking each vector's length. */
static int take_documents(const akidb_allocator *a, const akidb__pqr_values *v, size_t rows,
                          const load_plan *p, uint64_t done_rows, docs *d, const char *what)
{
    int rc;
    /* The documents grow with the rows decoded, like the index: memory
     * follows what the file holds, not what its footer claims. */
    if (rows && (rc = docs_grow(a, d, done_rows, rows)))
        return akidb__err(rc, "%s: out of memory", what);
    for (size_t i = 0; i < rows; i++) {
        uint64_t row = done_rows + i;
        uint64_t got = v[C_VEC].offsets[i + 1] - v[C_VEC].offsets[i];
        if (got != p->dim)
            return akidb__err(AKIDB_CORRUPT, "%s: row %llu has a vector of %llu values, not "
                              "%llu", what, (unsigned long long)row, (unsigned long long)got,
                              (unsigned long long)p->dim);
        d->ids[row] = (uint64_t)v[C_ID].i64[i];
        d->times[row] = v[C_TIME].i64[i];
        if ((rc = take_string(a, &v[C_EXT], i, 1, row, what, &d->ext[row])) ||
            (rc = take_string(a, &v[C_META], i, 0, row, what, &d->meta[row])))
            return rc;
    }
    return AKIDB_OK;
}

/* Decode row group rg: its documents into d, its vectors and saved links
 * into index (nodes done_rows onwards); *rows_out is how many rows it held. */
static int load_row_group(akidb__pqr *r, size_t rg, const load_plan *p, uint64_t done_rows,
                          const akidb_allocator *a, docs *d, akidb__hnsw *index,
                          const char *what, size_t *rows_out)
{
    akidb__pqr_values v[N_COLS];
    memset(v, 0, sizeof v);
    int rc = AKIDB_OK;
    for (size_t i = 0; i < p->n_cols && rc == AKIDB_OK; i++)
        rc = akidb__pqr_read(r, rg, (size_t)p->col[i], &v[i]);
    size_t rows = rc ? 0 : v[C_ID].n_rows;
    for (size_t i = 0; i < p->n_cols && rc == AKIDB_OK; i++)
        if (v[i].n_rows != rows)
            rc = akidb__err(AKIDB_CORRUPT, "%s: row group %zu: columns disagree on the row "
                            "count", what, rg);
    if (rc == AKIDB_OK && rows > p->n - done_rows)
        rc = akidb__err(AKIDB_CORRUPT, "%s: row groups hold more rows than the footer "
                        "says", what);
    if (rc == AKIDB_OK)
        rc = take_documents(a, v, rows, p, done_rows, d, what);
    /* Every row holds dim values, so the vectors are contiguous. */
    if (rc == AKIDB_OK && rows) {
        const char *why = "";
        const float *vecs = v[C_VEC].f32 + v[C_VEC].offsets[0];
        rc = akidb__hnsw_build_nodes(index, (uint32_t)rows, vecs, v[C_LEVEL].i32,
                                     p->exact ? v[C_DELETED].i32 : NULL, v[C_LINKS].i32,
                                     v[C_LINKS].offsets, &why);
        if (rc == AKIDB_CORRUPT)
            rc = akidb__err(rc, "%s: saved graph, row group %zu: %s", what, rg, why);
        else if (rc)
            rc = akidb__err(rc, "%s: out of memory building the index", what);
    }
    for (size_t i = 0; i < p->n_cols; i++)
        akidb__pqr_values_free(r, &v[i]);
    *rows_out = rows;
    return rc;
}

/* The index of a collection with these settings, empty, ready for its
 * saved nodes (no distance is computed: the links are in the file). */
static int begin_index(const akidb_collection_config *cfg, uint64_t next_id,
                       const akidb_allocator *a, const char *what, akidb__hnsw **index)
{
    akidb__hnsw_config hc;
    akidb__coll_hnsw_config(cfg, next_id * 0x9E3779B97F4A7C15ull + 1, &hc);
    int rc = akidb__hnsw_build_begin(&hc, a, index);
    if (rc)
        return akidb__err(rc, "%s: cannot make an index for these settings", what);
    return AKIDB_OK;
}

int akidb__snap_load_reader(const akidb__env *env, akidb__pqr *r, const char *what,
                            akidb__collection *c)
{
    const akidb_allocator *a = &env->alloc;
    akidb_collection_config cfg;
    akidb__coll_config(c, &cfg);
    docs d = { NULL, NULL, NULL, NULL, 0 };
    akidb__hnsw *index = NULL;
    load_plan p;
    uint64_t done_rows = 0;
    int rc = plan_load(r, &cfg, what, &p);
    if (rc)
        return rc;
    if ((rc = plan_quant(r, a, what, &p)) ||
        (rc = begin_index(&cfg, p.next_id, a, what, &index)))
        goto done;
    /* a checkpoint read in place (AKIDB_EXACT_FILE): before the rows */
    akidb__coll_prepare_index(c, index);
    /* The saved parameters, when the collection is int8 too: the f32
     * column encodes to the codes the file's index had.  (A file of
     * another kind loads as well: the graph is kept, the rows encoded
     * for this collection's kind, int8 trained as linking would.) */
    if (cfg.storage == AKIDB_STORAGE_INT8 && p.i8_offset &&
        (rc = akidb__hnsw_set_i8_params(index, p.i8_offset, p.i8_scale)))
        rc = akidb__err(AKIDB_CORRUPT, "%s: metadata akidb.i8_offset does not fit the "
                        "collection", what);
    if (rc)
        goto done;
    /* before the nodes: a compact index keeps exact vectors for the tail */
    akidb__hnsw_build_set_linked(index, (uint32_t)p.linked);
    /* One row group at a time: its decoded columns are freed before the
     * next is read. */
    for (size_t rg = 0; rg < akidb__pqr_num_row_groups(r) && rc == AKIDB_OK; rg++) {
        size_t rows = 0;
        rc = load_row_group(r, rg, &p, done_rows, a, &d, index, what, &rows);
        done_rows += rows;
    }
    if (rc == AKIDB_OK && done_rows != p.n)
        rc = akidb__err(AKIDB_CORRUPT, "%s: row groups hold %llu rows, the footer says %llu",
                        what, (unsigned long long)done_rows, (unsigned long long)p.n);
    const char *why = "";
    if (rc == AKIDB_OK &&
        (rc = akidb__hnsw_build_end(index, p.entry, p.exact ? &p.saved_rng : NULL, &why)))
        rc = akidb__err(rc, "%s: saved graph: %s", what, why);
    if (rc == AKIDB_OK &&
        (rc = akidb__coll_adopt(c, index, (uint32_t)p.n, d.ids, d.ext, d.meta, d.times,
                                p.next_id, what)) == AKIDB_OK)
        index = NULL;   /* the collection owns it now */
done:
    akidb__hnsw_free(index);
    akidb__free(a, p.i8_offset);
    for (size_t i = 0; i < d.n; i++) {
        akidb__free(a, d.ext[i]);
        akidb__free(a, d.meta[i]);
    }
    akidb__free(a, d.ext);
    akidb__free(a, d.meta);
    akidb__free(a, d.ids);
    akidb__free(a, d.times);
    return rc;
}

int akidb__snap_load(const akidb__env *env, const void *data, size_t len, const char *what,
                     akidb__collection *c)
{
    akidb__pqr *r = NULL;
    int rc = akidb__pqr_open(data, len, &env->alloc, &r);
    if (rc == AKIDB_OK)
        rc = akidb__snap_load_reader(env, r, what, c);
    akidb__pqr_free(r);
    return rc;
}
