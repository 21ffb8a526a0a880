/*
 * import.c - Parquet files in and out of collections for people and other
 * tools: akidb_import_parquet (files written by DuckDB, pyarrow, Polars or
 * AkiDB), and akidb_parquet_inspect (what a file holds, for the CLI).
 * Snapshots, which carry the saved graph, are snapshot.c's business; an
 * import inserts rows through the ordinary write path, so they are logged
 * and indexed like any other write.
 *
 * Column mapping (reported through the notice callback, so a user sees
 * what was decided):
 *   - vectors: a LIST<FLOAT> column (default "vector");
 *   - external ids: the id_column option, else a column named
 *     "external_id", else one named "id" (DuckDB tables usually have one);
 *     rows with an external id upsert, so importing a file twice does not
 *     double it;
 *   - metadata: the named columns, else a column named "metadata".  One
 *     column holding JSON (logical type JSON, or text whose every value is
 *     a JSON object or array) is the metadata as it is; otherwise each row's
 *     metadata is an object {column: value}, JSON values embedded as JSON
 *     (never a JSON string inside JSON).
 *
 * An import runs in two passes over the file:
 *   1. check: every row is decoded and checked (vector, external id,
 *      metadata) before anything is written, and the metadata columns are
 *      classified (JSON or text).  A file with one bad value changes
 *      nothing; the error names the file row and the column.
 *   2. write: rows go in file order, in atomic batches of at most
 *      IMPORT_BATCH rows ("runs": consecutive rows that all have, or all
 *      lack, an external id, without a repeated id, so a later row of the
 *      file replaces an earlier one with the same id, as a re-import does,
 *      whatever the batch boundaries).  A batch the collection refuses for
 *      one of its rows (INVALID, EXISTS) is split in halves until that row
 *      is found, so every row before it is written; any other failure
 *      (I/O, memory, quota) stops at the batch.  Either way the message
 *      says how many rows were kept and where to resume (skip_rows).
 *      Each batch is written into the collection pass 1 checked against
 *      (its catalog number), so one dropped or replaced meanwhile by
 *      another thread stops the import instead of receiving vectors of
 *      another length.
 *
 * Why not atomic: an import into an existing collection upserts documents
 * that are already there; undoing that needs a copy of the whole
 * collection (a staging collection swapped in at the end), twice the
 * memory of a large collection on a small device.  Pass 1 makes the common
 * failure, bad data, change nothing; what remains (disk full, I/O errors)
 * is reported exactly and resumable.  A collection the import created is
 * dropped again when nothing was written, so a failed import leaves either
 * nothing or exactly the rows it reports.
 *
 * Memory: everything an import keeps goes through the handle's allocator
 * (one row group of decoded columns and its strings at a time); jansson,
 * which checks metadata, allocates on its own.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/alloc.h"
#include "common/env.h"
#include "common/file.h"
#include "common/strbuf.h"
#include "engine/db.h"
#include "format/parquet.h"

#define IMPORT_BATCH 1024
#define MAX_METADATA_LEN (1024u * 1024u)   /* akidb_insert's limit */

/* ---- options ----------------------------------------------------------- */

/* Where each version of akidb_import_options ends (see akidb.c). */
static const size_t import_ends[] = {
    offsetof(akidb_import_options, skip_rows),   /* version 1 ends where 2 begins */
    offsetof(akidb_import_options, storage),
    sizeof(akidb_import_options),
};

/* The defaults, copied up to the caller's version (an older program's
 * struct is smaller).  Version 1 callers get metric 0 too: the file's
 * akidb.metric, else L2 (their header said L2, which a file without the
 * key still gets; a file AkiDB exported now keeps its metric). */
void akidb_import_options_init_v(akidb_import_options *opts, uint32_t version)
{
    if (!opts)
        return;
    if (version < 1 || version > AKIDB_IMPORT_OPTIONS_VERSION) {
        opts->version = version;   /* the next call that reads it names the problem */
        return;
    }
    akidb_import_options full;
    memset(&full, 0, sizeof full);
    full.version = version;
    full.vector_column = "vector";
    full.metric = 0;
    memcpy(opts, &full, import_ends[version - 1]);
}

/* A complete, current struct from the caller's (any version 1..current). */
static int read_options(const akidb_import_options *in, akidb_import_options *o)
{
    akidb_import_options_init(o);
    if (!in)
        return AKIDB_OK;
    if (in->version < 1 || in->version > AKIDB_IMPORT_OPTIONS_VERSION)
        return akidb__err(AKIDB_INVALID, "akidb_import_parquet: options version %u is not "
                          "supported (this library knows 1..%u; fill the struct with "
                          "akidb_import_options_init)", in->version,
                          AKIDB_IMPORT_OPTIONS_VERSION);
    memcpy(o, in, import_ends[in->version - 1]);
    o->version = AKIDB_IMPORT_OPTIONS_VERSION;
    if (!o->vector_column)
        o->vector_column = "vector";
    if (o->metric != 0 && o->metric != AKIDB_METRIC_L2 && o->metric != AKIDB_METRIC_COSINE &&
        o->metric != AKIDB_METRIC_DOT)
        return akidb__err(AKIDB_INVALID, "akidb_import_parquet: metric %d is unknown (use 0 "
                          "for the file's, or AKIDB_METRIC_L2, _COSINE, _DOT)", (int)o->metric);
    if (o->storage != 0 && o->storage != AKIDB_STORAGE_F32 && o->storage != AKIDB_STORAGE_F16 &&
        o->storage != AKIDB_STORAGE_INT8)
        return akidb__err(AKIDB_INVALID, "akidb_import_parquet: storage %d is unknown (use 0 "
                          "for the file's, or AKIDB_STORAGE_F32, _F16, _INT8)", (int)o->storage);
    if (o->exact != AKIDB_EXACT_RAM && o->exact != AKIDB_EXACT_FILE &&
        o->exact != AKIDB_EXACT_NONE)
        return akidb__err(AKIDB_INVALID, "akidb_import_parquet: exact %d is unknown (use "
                          "AKIDB_EXACT_RAM, _FILE or _NONE)", (int)o->exact);
    if (o->rerank > 64)
        return akidb__err(AKIDB_INVALID, "akidb_import_parquet: rerank %u is out of range "
                          "0..64", o->rerank);
    if (o->n_metadata_columns && !o->metadata_columns)
        return akidb__err(AKIDB_MISUSE, "akidb_import_parquet: metadata_columns must not be "
                          "NULL when n_metadata_columns is %zu", o->n_metadata_columns);
    for (size_t i = 0; i < o->n_metadata_columns; i++)
        if (!o->metadata_columns[i])
            return akidb__err(AKIDB_MISUSE, "akidb_import_parquet: metadata_columns[%zu] "
                              "is NULL", i);
    return AKIDB_OK;
}

static const char *metric_name(akidb_metric m)
{
    return m == AKIDB_METRIC_L2 ? "l2" : m == AKIDB_METRIC_COSINE ? "cosine"
         : m == AKIDB_METRIC_DOT ? "dot" : "unknown";
}

/* ---- strings of one row group, from the handle's allocator ------------- */

/* A growing byte buffer; strings inside are addressed by offset because
 * the buffer moves as it grows.  Out of memory is sticky (as in strbuf.h):
 * append freely, check `oom` once. */
typedef struct arena {
    const akidb_allocator *a;
    char *p;
    size_t len, cap;
    int oom;
} arena;

static void ar_add(arena *b, const void *s, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = akidb__realloc(b->a, b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void ar_cat(arena *b, const char *s)
{
    ar_add(b, s, strlen(s));
}

static void ar_free(arena *b)
{
    akidb__free(b->a, b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

/* A JSON string of s[0..n) (valid UTF-8 without NUL: checked in pass 1). */
static void ar_json_string(arena *b, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    ar_add(b, "\"", 1);
    size_t run = 0;   /* bytes copied as they are, in one append */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (ch != '"' && ch != '\\' && ch >= 0x20 && ch != 0x7f) {
            run++;
            continue;
        }
        ar_add(b, s + i - run, run);
        run = 0;
        if (ch == '"' || ch == '\\') {
            char e[2] = { '\\', (char)ch };
            ar_add(b, e, 2);
        } else {
            char e[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };
            ar_add(b, e, 6);
        }
    }
    ar_add(b, s + n - run, run);
    ar_add(b, "\"", 1);
}

static void ar_float(arena *b, float f)
{
    char num[32];
    if (isfinite(f))
        snprintf(num, sizeof num, "%.9g", (double)f);
    else
        snprintf(num, sizeof num, "null");   /* JSON has no NaN or infinity */
    ar_cat(b, num);
}

/* The JSON value of row `row` of column values v; `json`: a text column
 * whose values are JSON text, embedded as they are. */
static void ar_json_value(arena *b, const akidb__pqr_values *v, size_t row, int json)
{
    char num[32];
    if (v->nulls && v->nulls[row]) {
        ar_cat(b, "null");
        return;
    }
    const unsigned char *s = v->bytes ? v->bytes + v->offsets[row] : NULL;
    switch (v->kind) {
    case AKIDB__PQ_INT64:
    case AKIDB__PQ_TIMESTAMP_US:
        snprintf(num, sizeof num, "%" PRId64, v->i64[row]);
        ar_cat(b, num);
        break;
    case AKIDB__PQ_INT32:
        snprintf(num, sizeof num, "%" PRId32, v->i32[row]);
        ar_cat(b, num);
        break;
    case AKIDB__PQ_FLOAT:
        ar_float(b, v->f32[row]);
        break;
    case AKIDB__PQ_JSON:
    case AKIDB__PQ_STRING:
    case AKIDB__PQ_BINARY:
        if (json)
            ar_add(b, s, v->offsets[row + 1] - v->offsets[row]);
        else
            ar_json_string(b, s, v->offsets[row + 1] - v->offsets[row]);
        break;
    case AKIDB__PQ_FLOAT_LIST:
    case AKIDB__PQ_INT32_LIST:
        ar_cat(b, "[");
        for (uint64_t k = v->offsets[row]; k < v->offsets[row + 1]; k++) {
            if (k > v->offsets[row])
                ar_cat(b, ",");
            if (v->kind == AKIDB__PQ_INT32_LIST) {
                snprintf(num, sizeof num, "%" PRId32, v->i32[k]);
                ar_cat(b, num);
            } else {
                ar_float(b, v->f32[k]);
            }
        }
        ar_cat(b, "]");
        break;
    }
}

/* ---- the import's state ------------------------------------------------ */

/* How the metadata of a row is made. */
enum { META_NONE, META_AS_IS, META_OBJECT };

typedef struct job {
    akidb *db;
    const char *coll, *path;
    akidb_import_options o;
    const akidb_allocator *a;
    const void *data;               /* the mapped file */
    size_t len;
    akidb__pqr *r;
    uint64_t total;                 /* rows in the file */
    int vec_col, id_col, del_col;   /* -1: none */
    const char *id_why;             /* why id_col was chosen, for the notice */
    int meta_mode;
    size_t n_meta;
    int *meta_col;                  /* n_meta column indexes */
    const char **meta_name;         /* n_meta names (borrowed) */
    unsigned char *meta_text;       /* n_meta: a text (STRING/BINARY) column */
    unsigned char *meta_json;       /* n_meta: its values are JSON text */
    uint64_t *meta_not_json;        /* n_meta: first file row that is not, or UINT64_MAX */
    int have_coll, created;
    uint64_t coll_id;               /* the collection's catalog number (never reused) */
    akidb_collection_config cfg;    /* the collection's (existing or to create) */
    const char *storage_from;       /* why cfg.storage, for the notice */
    const char *settings_from;      /* for the notice: where cfg came from */
    uint64_t count_before;
    uint64_t rows_without_id;       /* rows pass 1 found without an external id */
    uint64_t written;               /* documents written */
    uint64_t next_row;              /* every file row before it is done */
    float *gv;                      /* one batch of vectors, gathered */
} job;

AKIDB__PRINTF(3, 4)
static void notice(const job *j, akidb_log_level level, const char *fmt, ...)
{
    if (!j->o.notice)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    j->o.notice(j->o.notice_ctx, level, msg);
}

/* "name" (PHYSICAL LOGICAL), for messages about a column. */
static const char *describe_column(const job *j, int col, char *buf, size_t len)
{
    akidb__pqr_column_info info;
    char q[96];
    if (akidb__pqr_column(j->r, (size_t)col, &info) != AKIDB_OK) {
        snprintf(buf, len, "column %d", col);
        return buf;
    }
    snprintf(buf, len, "\"%s\" (%s%s%s)", akidb__quote(q, sizeof q, info.name, 60),
             info.logical[0] ? info.logical : info.physical, info.logical[0] ? ", " : "",
             info.logical[0] ? info.physical : "");
    return buf;
}

static const char *column_name(const job *j, int col)
{
    akidb__pqr_column_info info;
    return akidb__pqr_column(j->r, (size_t)col, &info) == AKIDB_OK ? info.name : "?";
}

/* ---- step 1: columns ---------------------------------------------------- */

/* Column `name` of one of the kinds given; AKIDB_INVALID naming it if it
 * is missing or of another type. */
static int find_typed(const job *j, const char *name, const akidb__pq_kind *kinds,
                      size_t n_kinds, const char *want, int *col_out)
{
    char q[96];
    int col = akidb__pqr_find_column(j->r, name);
    if (col < 0)
        return akidb__err(AKIDB_INVALID, "%s: no column named \"%s\"", j->path,
                          akidb__quote(q, sizeof q, name, 60));
    akidb__pqr_column_info info;
    int rc = akidb__pqr_column(j->r, (size_t)col, &info);
    if (rc)
        return rc;
    for (size_t i = 0; i < n_kinds; i++)
        if (info.kind == kinds[i]) {
            *col_out = col;
            return AKIDB_OK;
        }
    return akidb__err(AKIDB_INVALID, "%s: column \"%s\" is %s %s; need %s", j->path,
                      akidb__quote(q, sizeof q, name, 60), info.physical, info.logical, want);
}

static int map_id_column(job *j)
{
    static const akidb__pq_kind id_kinds[] = { AKIDB__PQ_STRING, AKIDB__PQ_INT64,
                                               AKIDB__PQ_INT32, AKIDB__PQ_BINARY };
    const char *name = j->o.id_column;
    j->id_why = "the id column asked for";
    if (!name && akidb__pqr_find_column(j->r, "external_id") >= 0) {
        name = "external_id";
        j->id_why = "its name";
    } else if (!name && akidb__pqr_find_column(j->r, "id") >= 0) {
        name = "id";
        j->id_why = "its name; the file has no \"external_id\" column";
    }
    if (!name)
        return AKIDB_OK;
    return find_typed(j, name, id_kinds, 4, "a string or integer column for external ids",
                      &j->id_col);
}

static int map_metadata_columns(job *j)
{
    static const akidb__pq_kind any_kinds[] = {
        AKIDB__PQ_INT64, AKIDB__PQ_INT32, AKIDB__PQ_FLOAT, AKIDB__PQ_STRING, AKIDB__PQ_JSON,
        AKIDB__PQ_TIMESTAMP_US, AKIDB__PQ_FLOAT_LIST, AKIDB__PQ_INT32_LIST, AKIDB__PQ_BINARY
    };
    static const char *const default_name[] = { "metadata" };
    const char *const *names = j->o.metadata_columns;
    size_t n = j->o.n_metadata_columns;
    if (!n && akidb__pqr_find_column(j->r, "metadata") >= 0) {
        names = default_name;
        n = 1;
    }
    if (!n)
        return AKIDB_OK;
    j->n_meta = n;
    j->meta_col = akidb__calloc(j->a, n, sizeof *j->meta_col);
    j->meta_name = akidb__calloc(j->a, n, sizeof *j->meta_name);
    j->meta_text = akidb__calloc(j->a, n, 1);
    j->meta_json = akidb__calloc(j->a, n, 1);
    j->meta_not_json = akidb__calloc(j->a, n, sizeof *j->meta_not_json);
    if (!j->meta_col || !j->meta_name || !j->meta_text || !j->meta_json || !j->meta_not_json)
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", j->path);
    for (size_t i = 0; i < n; i++) {
        int rc = find_typed(j, names[i], any_kinds, 9, "a readable type", &j->meta_col[i]);
        if (rc)
            return rc;
        akidb__pqr_column_info info;
        if ((rc = akidb__pqr_column(j->r, (size_t)j->meta_col[i], &info)))
            return rc;
        j->meta_name[i] = names[i];
        j->meta_text[i] = info.kind == AKIDB__PQ_STRING || info.kind == AKIDB__PQ_BINARY ||
                          info.kind == AKIDB__PQ_JSON;
        /* A JSON column must hold JSON (pass 1 checks it); a text column
         * is JSON if pass 1 finds every value to be an object or array. */
        j->meta_json[i] = j->meta_text[i];
        j->meta_not_json[i] = UINT64_MAX;
    }
    return AKIDB_OK;
}

static int map_columns(job *j)
{
    static const akidb__pq_kind vec_kinds[] = { AKIDB__PQ_FLOAT_LIST };
    int rc = find_typed(j, j->o.vector_column, vec_kinds, 1, "LIST<FLOAT>", &j->vec_col);
    if (rc || (rc = map_id_column(j)) || (rc = map_metadata_columns(j)))
        return rc;
    /* A checkpoint keeps its deleted documents (as graph nodes) in
     * flagged rows; importing one must not bring them back. */
    const char *kind = akidb__pqr_kv(j->r, "akidb.kind");
    if (kind && strcmp(kind, "checkpoint") == 0) {
        static const akidb__pq_kind flag_kinds[] = { AKIDB__PQ_INT32 };
        if ((rc = find_typed(j, "hnsw_deleted", flag_kinds, 1, "INT32", &j->del_col)))
            return rc;
    }
    return AKIDB_OK;
}

/* ---- step 2: the collection's settings ----------------------------------- */

static const char *storage_name(akidb_storage s)
{
    return s == AKIDB_STORAGE_F16 ? "f16" : s == AKIDB_STORAGE_INT8 ? "int8" : "f32";
}

static const char *exact_name(akidb_exact_vectors e)
{
    return e == AKIDB_EXACT_NONE ? "none" : e == AKIDB_EXACT_FILE ? "file" : "ram";
}

/* The storage kind named by the file's akidb.storage (written for f16
 * and int8 collections, docs/FORMATS.md): 0 when the file has none or
 * names another (a warning, as for the HNSW settings: the vectors are
 * f32 in every case, so the import goes on). */
static void file_storage(const job *j, akidb_storage *out)
{
    const char *s = akidb__pqr_kv(j->r, "akidb.storage");
    *out = 0;
    if (!s)
        return;
    if (!strcmp(s, "f32"))
        *out = AKIDB_STORAGE_F32;
    else if (!strcmp(s, "f16"))
        *out = AKIDB_STORAGE_F16;
    else if (!strcmp(s, "int8"))
        *out = AKIDB_STORAGE_INT8;
    else {
        char q[64];
        notice(j, AKIDB_LOG_WARN, "%s: the file's akidb.storage %s is not f32, f16 or int8; "
               "ignored", j->path, akidb__quote(q, sizeof q, s, 32));
    }
}

/* A metric named by the file's akidb.metric: 0 when the file has none. */
static int file_metric(const job *j, akidb_metric *out)
{
    const char *s = akidb__pqr_kv(j->r, "akidb.metric");
    *out = 0;
    if (!s)
        return AKIDB_OK;
    if (strcmp(s, "l2") == 0) *out = AKIDB_METRIC_L2;
    else if (strcmp(s, "cosine") == 0) *out = AKIDB_METRIC_COSINE;
    else if (strcmp(s, "dot") == 0) *out = AKIDB_METRIC_DOT;
    else {
        char q[64];
        return akidb__err(AKIDB_INVALID, "%s: the file's akidb.metric \"%s\" is not l2, cosine "
                          "or dot", j->path, akidb__quote(q, sizeof q, s, 32));
    }
    return AKIDB_OK;
}

/* An HNSW setting from the file's metadata, if present and in range;
 * otherwise the default stays (with a warning when present but bad). */
static int file_setting(const job *j, const char *key, uint32_t lo, uint32_t hi, uint32_t *v)
{
    const char *s = akidb__pqr_kv(j->r, key);
    if (!s)
        return 0;
    char *end;
    errno = 0;
    unsigned long x = strtoul(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end || errno || x < lo || x > hi) {
        char q[64];
        notice(j, AKIDB_LOG_WARN, "%s: the file's %s \"%s\" is not in %u..%u; using %u",
               j->path, key, akidb__quote(q, sizeof q, s, 32), lo, hi, *v);
        return 0;
    }
    *v = (uint32_t)x;
    return 1;
}

/* The collection is entered for each batch, not for the whole import (a
 * long import would hold off every create and drop on the handle), so
 * another thread may drop it between two batches, or replace it with one
 * of another dimension that must never receive vectors of this length.
 * Its catalog number, never reused, tells: pin_collection records it (and
 * the settings, the document count) and enter_pinned checks it. */
static int pin_collection(job *j)
{
    akidb__collection *c;
    int rc = akidb__db_enter(j->db, j->coll, &c);
    if (rc)
        return rc;
    akidb_collection_config cfg;
    akidb__coll_config(c, &cfg);
    int same = !j->cfg.dim || (cfg.dim == j->cfg.dim && cfg.metric == j->cfg.metric);
    j->coll_id = akidb__coll_id(c);
    j->count_before = akidb__coll_count(c);
    akidb__db_leave(j->db, c);
    if (!same)
        return akidb__err(AKIDB_CONFLICT, "%s: collection %s was replaced during the import "
                          "(dim %u, metric %s)", j->path, j->coll, cfg.dim,
                          metric_name(cfg.metric));
    j->cfg = cfg;
    return AKIDB_OK;
}

static int enter_pinned(const job *j, akidb__collection **c)
{
    if (akidb__db_enter(j->db, j->coll, c))
        return akidb__err(AKIDB_NOTFOUND, "collection %s was dropped during the import",
                          j->coll);
    if (akidb__coll_id(*c) != j->coll_id) {
        akidb__db_leave(j->db, *c);
        return akidb__err(AKIDB_CONFLICT, "collection %s was dropped and created again during "
                          "the import", j->coll);
    }
    return AKIDB_OK;
}

/* Settle metric and HNSW settings: an existing collection's are kept (a
 * conflicting opts.metric is refused); a new one takes opts.metric, else
 * the file's settings (files AkiDB exported carry them), else defaults.
 * The dimension of a new collection is known only after pass 1. */
static int settle_settings(job *j)
{
    akidb_metric fm;
    int rc = file_metric(j, &fm);
    if (rc)
        return rc;
    akidb_metric want = j->o.metric;
    akidb_collection_config probe;
    probe.version = AKIDB_COLLECTION_CONFIG_VERSION;
    rc = akidb_collection_info(j->db, j->coll, &probe);   /* checks the name */
    if (rc == AKIDB_OK)
        rc = pin_collection(j);
    if (rc != AKIDB_OK && rc != AKIDB_NOTFOUND)
        return rc;   /* a bad name, for one */
    akidb__err_clear();
    j->have_coll = rc == AKIDB_OK;
    akidb_storage fs;
    file_storage(j, &fs);
    akidb_storage want_storage = j->o.storage ? j->o.storage : fs;
    if (j->have_coll) {
        if (j->o.storage && j->o.storage != j->cfg.storage)
            return akidb__err(AKIDB_INVALID, "%s: storage %s conflicts with collection %s, "
                              "which stores %s (leave the storage unset to import into it)",
                              j->path, storage_name(j->o.storage), j->coll,
                              storage_name(j->cfg.storage));
        if (want && want != j->cfg.metric)
            return akidb__err(AKIDB_INVALID, "%s: metric %s conflicts with collection %s, "
                              "which uses %s (leave the metric unset to import into it)",
                              j->path, metric_name(want), j->coll, metric_name(j->cfg.metric));
        if (fm && fm != j->cfg.metric)
            notice(j, AKIDB_LOG_WARN, "%s was exported from a %s collection (akidb.metric); "
                   "collection %s uses %s, so its distances will differ", j->path,
                   metric_name(fm), j->coll, metric_name(j->cfg.metric));
        return AKIDB_OK;
    }
    if (want && fm && want != fm)
        return akidb__err(AKIDB_INVALID, "%s: metric %s conflicts with the file's akidb.metric "
                          "%s (the collection it was exported from); leave the metric unset "
                          "to use %s", j->path, metric_name(want), metric_name(fm),
                          metric_name(fm));
    akidb_collection_config_init(&j->cfg, 0, want ? want : fm ? fm : AKIDB_METRIC_L2);
    j->settings_from = want ? "the metric asked for" : fm ? "the metric of the file's akidb.metric"
                            : "the default metric";
    int from_file = file_setting(j, "akidb.hnsw_m", 2, 128, &j->cfg.hnsw_m);
    from_file |= file_setting(j, "akidb.ef_construction", 1, 100000, &j->cfg.ef_construction);
    from_file |= file_setting(j, "akidb.ef_search", 1, 100000, &j->cfg.ef_search);
    if (from_file && !want)
        j->settings_from = "the metric and HNSW settings of the file's metadata";
    else if (from_file)
        j->settings_from = "the metric asked for, the HNSW settings of the file's metadata";
    j->cfg.storage = want_storage ? want_storage : AKIDB_STORAGE_F32;
    if (j->cfg.storage != AKIDB_STORAGE_F32) {
        j->cfg.exact = j->o.exact;
        j->cfg.rerank = j->o.rerank;
    }
    j->storage_from = j->o.storage ? "asked for" : fs ? "the file's akidb.storage" : "the default";
    return AKIDB_OK;
}

/* ---- reading a row group ------------------------------------------------- */

typedef struct group {
    size_t rg;
    uint64_t first;                 /* file row of the group's row 0 */
    size_t n;                       /* rows in the group */
    size_t from;                    /* first row to import (skip_rows) */
    akidb__pqr_values vec, ids, del;
    akidb__pqr_values *meta;        /* n_meta */
    size_t n_meta_read;
    arena strs;                     /* ids and metadata of the rows, built */
    size_t *id_at, *meta_at;        /* n offsets into strs; SIZE_MAX = none */
} group;

static void group_free(const job *j, group *g)
{
    akidb__pqr_values_free(j->r, &g->vec);
    akidb__pqr_values_free(j->r, &g->ids);
    akidb__pqr_values_free(j->r, &g->del);
    for (size_t k = 0; g->meta && k < g->n_meta_read; k++)
        akidb__pqr_values_free(j->r, &g->meta[k]);
    akidb__free(j->a, g->meta);
    ar_free(&g->strs);
    akidb__free(j->a, g->id_at);
    akidb__free(j->a, g->meta_at);
    memset(g, 0, sizeof *g);
}

/* Decode the columns of row group rg that the import uses. */
static int read_group(const job *j, size_t rg, uint64_t first, group *g)
{
    memset(g, 0, sizeof *g);
    g->rg = rg;
    g->first = first;
    g->strs.a = j->a;
    int rc = akidb__pqr_read(j->r, rg, (size_t)j->vec_col, &g->vec);
    if (rc)
        return rc;
    g->n = g->vec.n_rows;
    g->from = j->o.skip_rows > first ? (size_t)(j->o.skip_rows - first < g->n
                                                ? j->o.skip_rows - first : g->n) : 0;
    if (j->id_col >= 0 && (rc = akidb__pqr_read(j->r, rg, (size_t)j->id_col, &g->ids)))
        return rc;
    if (j->del_col >= 0 && (rc = akidb__pqr_read(j->r, rg, (size_t)j->del_col, &g->del)))
        return rc;
    if (j->n_meta) {
        if (!(g->meta = akidb__calloc(j->a, j->n_meta, sizeof *g->meta)))
            return akidb__err(AKIDB_NOMEM, "%s: out of memory", j->path);
        for (; g->n_meta_read < j->n_meta; g->n_meta_read++)
            if ((rc = akidb__pqr_read(j->r, rg, (size_t)j->meta_col[g->n_meta_read],
                                      &g->meta[g->n_meta_read])))
                return rc;
    }
    /* Columns of one row group must agree on its rows. */
    size_t n_meta = g->n_meta_read;
    int bad = (j->id_col >= 0 && g->ids.n_rows != g->n) ||
              (j->del_col >= 0 && g->del.n_rows != g->n);
    for (size_t k = 0; k < n_meta; k++)
        bad |= g->meta[k].n_rows != g->n;
    if (bad)
        return akidb__err(AKIDB_CORRUPT, "%s: row group %zu: its columns have different "
                          "numbers of rows", j->path, rg);
    return AKIDB_OK;
}

static int tombstone(const job *j, const group *g, size_t i)
{
    return j->del_col >= 0 && g->del.i32[i] != 0;
}

/* ---- step 3: pass 1, every row checked ----------------------------------- */

AKIDB__PRINTF(5, 6)
static int row_err(const job *j, const group *g, size_t i, int col, const char *fmt, ...)
{
    char what[512], q[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return akidb__err(AKIDB_INVALID, "%s: file row %llu, column \"%s\": %s; nothing was "
                      "imported", j->path, (unsigned long long)(g->first + i),
                      akidb__quote(q, sizeof q, column_name(j, col), 60), what);
}

static int check_vector(job *j, const group *g, size_t i)
{
    const akidb__pqr_values *v = &g->vec;
    uint64_t len = v->offsets[i + 1] - v->offsets[i];
    if ((v->nulls && v->nulls[i]) || len == 0)
        return row_err(j, g, i, j->vec_col, "the vector is %s", len ? "null" : "empty");
    if (len > AKIDB_MAX_DIM)
        return row_err(j, g, i, j->vec_col, "the vector has %llu values, more than %d",
                       (unsigned long long)len, AKIDB_MAX_DIM);
    if (!j->cfg.dim)
        j->cfg.dim = (uint32_t)len;
    if (len != j->cfg.dim)
        return row_err(j, g, i, j->vec_col, "the vector has %llu values, not %u (%s)",
                       (unsigned long long)len, j->cfg.dim,
                       j->have_coll ? "the collection's dimension" : "the first row's");
    const float *x = v->f32 + v->offsets[i];
    double norm2 = 0;
    for (uint32_t k = 0; k < j->cfg.dim; k++) {
        if (!isfinite(x[k]))
            return row_err(j, g, i, j->vec_col, "value %u is %s", k,
                           isnan(x[k]) ? "NaN" : "infinite");
        norm2 += (double)x[k] * x[k];
    }
    if (norm2 == 0 && j->cfg.metric == AKIDB_METRIC_COSINE)
        return row_err(j, g, i, j->vec_col, "a zero vector has no direction for cosine");
    return AKIDB_OK;
}

/* Text the library stores must be what the file holds: a NUL byte would
 * cut it short (the C API takes NUL-terminated strings), so it is refused,
 * as is text that is not UTF-8 (other tools reject the exports). */
static int check_text(const job *j, const group *g, size_t i, int col,
                      const unsigned char *s, size_t n, const char *what)
{
    if (n == 0)
        return AKIDB_OK;
    const unsigned char *nul = memchr(s, 0, n);
    if (nul)
        return row_err(j, g, i, col, "%s holds a NUL byte (at byte %zu); it cannot be stored "
                       "exactly", what, (size_t)(nul - s));
    size_t bad;
    if (!akidb__utf8_valid((const char *)s, n, &bad))
        return row_err(j, g, i, col, "%s is not valid UTF-8 text (byte %zu)", what, bad);
    return AKIDB_OK;
}

static int check_external_id(job *j, const group *g, size_t i)
{
    const akidb__pqr_values *v = &g->ids;
    if (j->id_col < 0 || (v->nulls && v->nulls[i])) {
        j->rows_without_id++;
        return AKIDB_OK;
    }
    if (v->kind != AKIDB__PQ_STRING && v->kind != AKIDB__PQ_BINARY)
        return AKIDB_OK;   /* integers: decimal text, always valid */
    const unsigned char *s = v->bytes + v->offsets[i];
    size_t n = v->offsets[i + 1] - v->offsets[i];
    if (n == 0 || n > AKIDB_MAX_EXTERNAL_ID_LEN)
        return row_err(j, g, i, j->id_col, "an external id must be 1..%d bytes (this one is "
                       "%zu)", AKIDB_MAX_EXTERNAL_ID_LEN, n);
    int rc = check_text(j, g, i, j->id_col, s, n, "the external id");
    if (rc)
        return rc;
    for (size_t k = 0; k < n; k++)
        if ((s[k] < 0x20 && s[k] != '\t') || s[k] == 0x7f)
            return row_err(j, g, i, j->id_col, "the external id holds control character "
                           "0x%02x (byte %zu)", s[k], k);
    return AKIDB_OK;
}

/* Whether s[0..n) is JSON text the collection will take: the rules of
 * akidb_insert's check (any value, \u0000 allowed, duplicate member names
 * refused, integers past 64 bits read as doubles); an error description
 * in err when not. */
static int is_json(const unsigned char *s, size_t n, json_error_t *err)
{
    if (n == 0) {
        snprintf(err->text, sizeof err->text, "an empty value");
        err->position = 0;
        return 0;
    }
    json_t *v = json_loadb((const char *)s, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES |
                           JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, err);
    if (!v)
        return 0;
    json_decref(v);
    return 1;
}

/* An object or array: what "a text column holding JSON" means. */
static int is_json_container(const unsigned char *s, size_t n)
{
    size_t k = 0;
    while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r'))
        k++;
    json_error_t err;
    return k < n && (s[k] == '{' || s[k] == '[') && is_json(s, n, &err);
}

static int check_metadata(job *j, const group *g, size_t i)
{
    for (size_t c = 0; c < j->n_meta; c++) {
        const akidb__pqr_values *v = &g->meta[c];
        if (!j->meta_text[c] || (v->nulls && v->nulls[i]))
            continue;
        const unsigned char *s = v->bytes + v->offsets[i];
        size_t n = v->offsets[i + 1] - v->offsets[i];
        int rc = check_text(j, g, i, j->meta_col[c], s, n, "the value");
        if (rc)
            return rc;
        if (n > MAX_METADATA_LEN)
            return row_err(j, g, i, j->meta_col[c], "the value has %zu bytes; metadata is at "
                           "most %u", n, MAX_METADATA_LEN);
        json_error_t err;
        if (v->kind == AKIDB__PQ_JSON && !is_json(s, n, &err))
            return row_err(j, g, i, j->meta_col[c], "the column's type is JSON but this value "
                           "is not: %s (at character %d)", err.text, err.position);
        if (v->kind != AKIDB__PQ_JSON && j->meta_json[c] && !is_json_container(s, n)) {
            j->meta_json[c] = 0;
            j->meta_not_json[c] = g->first + i;
        }
    }
    return AKIDB_OK;
}

static int check_group(job *j, const group *g)
{
    for (size_t i = g->from; i < g->n; i++) {
        if (tombstone(j, g, i))
            continue;
        int rc = check_vector(j, g, i);
        if (rc || (rc = check_external_id(j, g, i)) || (rc = check_metadata(j, g, i)))
            return rc;
    }
    return AKIDB_OK;
}

static int check_file(job *j)
{
    uint64_t first = 0;
    for (size_t rg = 0; rg < akidb__pqr_num_row_groups(j->r); rg++) {
        uint64_t rows = akidb__pqr_row_group_rows(j->r, rg);
        if (first + rows > j->o.skip_rows) {
            group g;
            int rc = read_group(j, rg, first, &g);
            if (rc == AKIDB_OK)
                rc = check_group(j, &g);
            group_free(j, &g);
            if (rc)
                return rc;
        }
        first += rows;
    }
    /* One column of JSON is the metadata as it is; else an object. */
    if (j->n_meta == 1 && j->meta_json[0])
        j->meta_mode = META_AS_IS;
    else if (j->n_meta)
        j->meta_mode = META_OBJECT;
    return AKIDB_OK;
}

/* ---- step 4: say what was decided ---------------------------------------- */

static void report_mapping(const job *j)
{
    char d[160];
    notice(j, AKIDB_LOG_INFO, "%s: %llu rows in %zu row group%s", j->path,
           (unsigned long long)j->total, akidb__pqr_num_row_groups(j->r),
           akidb__pqr_num_row_groups(j->r) == 1 ? "" : "s");
    notice(j, AKIDB_LOG_INFO, "column %s -> vectors", describe_column(j, j->vec_col, d, sizeof d));
    if (j->id_col >= 0)
        notice(j, AKIDB_LOG_INFO, "column %s -> external ids (chosen by %s); rows with one "
               "upsert", describe_column(j, j->id_col, d, sizeof d), j->id_why);
    else
        notice(j, AKIDB_LOG_INFO, "no external id column (none asked for, no column named "
               "\"external_id\" or \"id\"): every row is a new document");
    for (size_t c = 0; c < j->n_meta; c++) {
        const char *how = j->meta_mode == META_AS_IS ? "metadata, as it is"
                        : j->meta_json[c] ? "metadata field (JSON values embedded as JSON)"
                        : "metadata field";
        describe_column(j, j->meta_col[c], d, sizeof d);
        if (j->meta_text[c] && j->meta_json[c])
            notice(j, AKIDB_LOG_INFO, "column %s, holding JSON -> %s", d, how);
        else if (j->meta_text[c] && j->meta_not_json[c] != UINT64_MAX)
            notice(j, AKIDB_LOG_INFO, "column %s, holding text (file row %llu is not a JSON "
                   "object or array) -> %s, as a string", d,
                   (unsigned long long)j->meta_not_json[c], how);
        else
            notice(j, AKIDB_LOG_INFO, "column %s -> %s", d, how);
    }
    if (!j->n_meta)
        notice(j, AKIDB_LOG_INFO, "no metadata (no metadata columns asked for, no column "
               "named \"metadata\")");
    if (j->del_col >= 0)
        notice(j, AKIDB_LOG_INFO, "an AkiDB checkpoint: rows flagged in \"hnsw_deleted\" "
               "are deleted documents and are skipped");
    if (j->o.skip_rows)
        notice(j, AKIDB_LOG_INFO, "skipping file rows 0..%llu (skip_rows)",
               (unsigned long long)j->o.skip_rows - 1);
    if (j->have_coll && j->count_before && j->rows_without_id)
        notice(j, AKIDB_LOG_WARN, "collection %s already holds %llu document%s and %llu row%s "
               "of the file %s no external id: %s added as new documents, so importing the "
               "same file again adds them again (name an id column to upsert instead)",
               j->coll, (unsigned long long)j->count_before, j->count_before == 1 ? "" : "s",
               (unsigned long long)j->rows_without_id, j->rows_without_id == 1 ? "" : "s",
               j->rows_without_id == 1 ? "has" : "have",
               j->rows_without_id == 1 ? "it is" : "they are");
}

static int create_collection(job *j)
{
    if (j->have_coll)
        return AKIDB_OK;
    if (!j->cfg.dim) {
        /* No row to learn the dimension from: a file AkiDB wrote says it. */
        const char *s = akidb__pqr_kv(j->r, "akidb.dim");
        char *end;
        unsigned long dim = s ? strtoul(s, &end, 10) : 0;
        if (!s || s[0] < '0' || s[0] > '9' || *end || dim < 1 || dim > AKIDB_MAX_DIM)
            return akidb__err(AKIDB_INVALID, "%s: the file has no rows to import, so the "
                              "vector dimension of a new collection %s is unknown", j->path,
                              j->coll);
        j->cfg.dim = (uint32_t)dim;
    }
    int rc = akidb_collection_create(j->db, j->coll, &j->cfg);
    if (rc || (rc = pin_collection(j)))
        return rc;
    j->have_coll = j->created = 1;
    notice(j, AKIDB_LOG_INFO, "created collection %s: dim %u, metric %s, hnsw_m %u, "
           "ef_construction %u, ef_search %u (%s)", j->coll, j->cfg.dim,
           metric_name(j->cfg.metric), j->cfg.hnsw_m, j->cfg.ef_construction,
           j->cfg.ef_search, j->settings_from);
    if (j->cfg.storage != AKIDB_STORAGE_F32)
        notice(j, AKIDB_LOG_INFO, "collection %s stores %s (%s), exact vectors %s, re-rank %u x k",
               j->coll, storage_name(j->cfg.storage), j->storage_from, exact_name(j->cfg.exact),
               j->cfg.rerank ? j->cfg.rerank : 2);
    return AKIDB_OK;
}

/* ---- step 5: pass 2, writing --------------------------------------------- */

/* The external ids and metadata of the rows to import, as strings. */
static int build_strings(const job *j, group *g)
{
    arena *b = &g->strs;
    if (j->id_col >= 0 && !(g->id_at = akidb__alloc_array(j->a, g->n ? g->n : 1,
                                                           sizeof *g->id_at)))
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", j->path);
    if (j->n_meta && !(g->meta_at = akidb__alloc_array(j->a, g->n ? g->n : 1,
                                                        sizeof *g->meta_at)))
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", j->path);
    for (size_t i = g->from; i < g->n; i++) {
        const akidb__pqr_values *iv = &g->ids;
        if (g->id_at && (iv->nulls && iv->nulls[i])) {
            g->id_at[i] = SIZE_MAX;
        } else if (g->id_at) {
            char num[32];
            g->id_at[i] = b->len;
            if (iv->kind == AKIDB__PQ_INT64)
                snprintf(num, sizeof num, "%" PRId64, iv->i64[i]);
            else if (iv->kind == AKIDB__PQ_INT32)
                snprintf(num, sizeof num, "%" PRId32, iv->i32[i]);
            if (iv->kind == AKIDB__PQ_INT64 || iv->kind == AKIDB__PQ_INT32)
                ar_cat(b, num);
            else
                ar_add(b, iv->bytes + iv->offsets[i], iv->offsets[i + 1] - iv->offsets[i]);
            ar_add(b, "", 1);
        }
        if (j->meta_mode == META_AS_IS) {
            const akidb__pqr_values *v = &g->meta[0];
            if (v->nulls && v->nulls[i]) {
                g->meta_at[i] = SIZE_MAX;
                continue;
            }
            g->meta_at[i] = b->len;
            ar_add(b, v->bytes + v->offsets[i], v->offsets[i + 1] - v->offsets[i]);
            ar_add(b, "", 1);
        } else if (j->meta_mode == META_OBJECT) {
            g->meta_at[i] = b->len;
            ar_cat(b, "{");
            for (size_t c = 0; c < j->n_meta; c++) {
                if (c)
                    ar_cat(b, ",");
                ar_json_string(b, (const unsigned char *)j->meta_name[c], strlen(j->meta_name[c]));
                ar_cat(b, ":");
                ar_json_value(b, &g->meta[c], i, j->meta_json[c]);
            }
            ar_add(b, "}", 2);   /* with its NUL */
        }
    }
    if (b->oom)
        return akidb__err(AKIDB_NOMEM, "%s: out of memory for the strings of row group %zu",
                          j->path, g->rg);
    return AKIDB_OK;
}

/* One batch of consecutive rows, gathered for one insert or upsert call. */
typedef struct gather {
    size_t k;                       /* rows gathered */
    int with_ids;                   /* upsert (all have an external id) or insert */
    size_t end;                     /* group row after the batch's last row */
    size_t row[IMPORT_BATCH];       /* group row of each */
    const char *id[IMPORT_BATCH];
    const char *meta[IMPORT_BATCH];
    uint64_t hash[IMPORT_BATCH];
    uint32_t slot[2 * IMPORT_BATCH];   /* open addressing over hash; 0 = empty, else index + 1 */
} gather;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Whether external id `id` is already in the batch; adds it if not. */
static int seen_in_batch(gather *gt, const char *id)
{
    uint64_t h = hash_str(id);
    size_t mask = 2 * IMPORT_BATCH - 1, s = (size_t)h & mask;
    for (; gt->slot[s]; s = (s + 1) & mask) {
        size_t other = gt->slot[s] - 1;
        if (gt->hash[other] == h && strcmp(gt->id[other], id) == 0)
            return 1;
    }
    gt->hash[gt->k] = h;
    gt->slot[s] = (uint32_t)gt->k + 1;
    return 0;
}

/* Gather the next batch from group row `at`: consecutive rows that all
 * have, or all lack, an external id, with no id twice. */
static void gather_batch(const job *j, const group *g, size_t at, gather *gt)
{
    gt->k = 0;
    gt->with_ids = -1;
    memset(gt->slot, 0, sizeof gt->slot);
    size_t i = at;
    for (; i < g->n && gt->k < IMPORT_BATCH; i++) {
        if (tombstone(j, g, i))
            continue;
        const char *id = g->id_at && g->id_at[i] != SIZE_MAX ? g->strs.p + g->id_at[i] : NULL;
        if (gt->with_ids < 0)
            gt->with_ids = id != NULL;
        if ((id != NULL) != gt->with_ids || (id && seen_in_batch(gt, id)))
            break;
        memcpy(j->gv + gt->k * j->cfg.dim, g->vec.f32 + g->vec.offsets[i],
               (size_t)j->cfg.dim * sizeof *j->gv);
        gt->row[gt->k] = i;
        gt->id[gt->k] = id;
        gt->meta[gt->k] = g->meta_at && g->meta_at[i] != SIZE_MAX ? g->strs.p + g->meta_at[i]
                                                                  : NULL;
        gt->k++;
    }
    gt->end = i;
}

/* Failures that belong to a row (so halving the batch finds it), as
 * opposed to the state of the system (I/O, memory, quota). */
static int row_specific(int rc)
{
    return rc == AKIDB_INVALID || rc == AKIDB_EXISTS;
}

/* Write gathered rows [s, e); on a row-specific failure of several rows,
 * halve until the row is found, so every row before it is written.
 * *bad_out: the gathered index where the failure was pinned down. */
static int write_span(job *j, const group *g, const gather *gt, size_t s, size_t e,
                      size_t *bad_out, size_t *bad_n_out)
{
    if (s == e)
        return AKIDB_OK;
    const float *v = j->gv + s * j->cfg.dim;
    const char *const *meta = j->meta_mode != META_NONE ? gt->meta + s : NULL;
    akidb__collection *c;
    int rc = enter_pinned(j, &c);
    if (rc == AKIDB_OK) {
        rc = akidb__db_write(j->db, c, gt->with_ids, e - s, v, gt->with_ids ? gt->id + s : NULL,
                             meta, NULL);
        akidb__db_leave(j->db, c);
    }
    if (rc == AKIDB_OK) {
        j->written += e - s;
        j->next_row = g->first + (e < gt->k ? gt->row[e] : gt->end);
        if (j->o.progress)
            j->o.progress(j->o.progress_ctx, j->next_row, j->total);
        return AKIDB_OK;
    }
    if (e - s == 1 || !row_specific(rc)) {
        *bad_out = s;
        *bad_n_out = e - s;
        return rc;
    }
    size_t mid = s + (e - s) / 2;
    rc = write_span(j, g, gt, s, mid, bad_out, bad_n_out);
    return rc ? rc : write_span(j, g, gt, mid, e, bad_out, bad_n_out);
}

/* Say where a write failed, what was kept and where to resume; a
 * collection the import created and wrote nothing to is dropped. */
static int write_failed(job *j, const group *g, const gather *gt, size_t bad, size_t bad_n,
                        int rc)
{
    char msg[768], rows[96], kept[256];
    snprintf(msg, sizeof msg, "%s", akidb__errmsg());
    uint64_t lo = g->first + gt->row[bad], hi = g->first + gt->row[bad + bad_n - 1];
    if (bad_n == 1)
        snprintf(rows, sizeof rows, "file row %llu", (unsigned long long)lo);
    else
        snprintf(rows, sizeof rows, "file rows %llu..%llu (one batch; none of it was written)",
                 (unsigned long long)lo, (unsigned long long)hi);
    j->next_row = lo;
    /* Not when the collection was dropped or replaced meanwhile: the one
     * there now is someone else's. */
    if (j->written == 0 && j->created && rc != AKIDB_CONFLICT && rc != AKIDB_NOTFOUND) {
        int drc = akidb_collection_drop(j->db, j->coll);
        snprintf(kept, sizeof kept, "nothing was imported%s",
                 drc ? " (the collection the import created could not be dropped again)"
                     : " (the collection the import created was dropped again)");
    } else if (j->written == 0) {
        snprintf(kept, sizeof kept, "nothing was imported");
    } else {
        snprintf(kept, sizeof kept, "%llu row%s before it (file rows %llu..%llu) %s imported "
                 "and kept; resume at file row %llu (skip_rows %llu)",
                 (unsigned long long)j->written, j->written == 1 ? "" : "s",
                 (unsigned long long)j->o.skip_rows, (unsigned long long)lo - 1,
                 j->written == 1 ? "was" : "were", (unsigned long long)lo,
                 (unsigned long long)lo);
    }
    return akidb__err(rc, "%s: %s: %s; %s", j->path, rows, msg, kept);
}

static int write_group(job *j, group *g)
{
    int rc = build_strings(j, g);
    if (rc)
        return rc;
    gather *gt = akidb__malloc(j->a, sizeof *gt);
    if (!gt)
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", j->path);
    for (size_t at = g->from; at < g->n && rc == AKIDB_OK; at = gt->end) {
        gather_batch(j, g, at, gt);
        size_t bad = 0, bad_n = 0;
        rc = write_span(j, g, gt, 0, gt->k, &bad, &bad_n);
        if (rc)
            rc = write_failed(j, g, gt, bad, bad_n, rc);
        else
            j->next_row = g->first + gt->end;
    }
    akidb__free(j->a, gt);
    return rc;
}

static int write_file(job *j)
{
    j->next_row = j->o.skip_rows;
    if (j->cfg.dim && !(j->gv = akidb__alloc_array(j->a, (size_t)IMPORT_BATCH * j->cfg.dim,
                                                   sizeof *j->gv)))
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", j->path);
    uint64_t first = 0;
    for (size_t rg = 0; rg < akidb__pqr_num_row_groups(j->r); rg++) {
        uint64_t rows = akidb__pqr_row_group_rows(j->r, rg);
        if (first + rows > j->o.skip_rows) {
            group g;
            int rc = read_group(j, rg, first, &g);
            if (rc == AKIDB_OK)
                rc = write_group(j, &g);
            group_free(j, &g);
            if (rc)
                return rc;
        }
        first += rows;
    }
    j->next_row = j->total;
    return AKIDB_OK;
}

/* ---- the entry point ------------------------------------------------------ */

static void job_free(job *j)
{
    akidb__free(j->a, j->gv);
    akidb__free(j->a, j->meta_col);
    akidb__free(j->a, j->meta_name);
    akidb__free(j->a, j->meta_text);
    akidb__free(j->a, j->meta_json);
    akidb__free(j->a, j->meta_not_json);
    akidb__pqr_free(j->r);
    if (j->data)
        akidb__unmap_file(j->data, j->len);
}

static int open_file(job *j)
{
    int rc = akidb__map_file(j->path, &j->data, &j->len);
    if (rc == AKIDB_NOTFOUND)
        return akidb__err(AKIDB_NOTFOUND, "%s: no such file", j->path);
    if (rc || (rc = akidb__pqr_open(j->data, j->len, j->a, &j->r)))
        return rc;
    j->total = akidb__pqr_num_rows(j->r);
    if (j->o.skip_rows > j->total)
        return akidb__err(AKIDB_INVALID, "%s: skip_rows %llu is past the end of the file "
                          "(%llu rows)", j->path, (unsigned long long)j->o.skip_rows,
                          (unsigned long long)j->total);
    return AKIDB_OK;
}

int akidb_import_parquet(akidb *db, const char *coll, const char *path,
                         const akidb_import_options *opts, uint64_t *rows_out)
{
    akidb__err_clear();
    if (!db) return akidb__err(AKIDB_MISUSE, "akidb_import_parquet: db must not be NULL");
    if (!coll) return akidb__err(AKIDB_MISUSE, "akidb_import_parquet: coll must not be NULL");
    if (!path) return akidb__err(AKIDB_MISUSE, "akidb_import_parquet: path must not be NULL");
    if (rows_out)
        *rows_out = 0;
    job j;
    memset(&j, 0, sizeof j);
    j.db = db;
    j.coll = coll;
    j.path = path;
    j.vec_col = j.id_col = j.del_col = -1;
    j.a = &akidb__db_env(db)->alloc;
    int rc = read_options(opts, &j.o);
    if (rc)
        return rc;
    if (j.o.resume_row_out)
        *j.o.resume_row_out = j.o.skip_rows;
    j.next_row = j.o.skip_rows;
    if ((rc = akidb__db_writable(db, "akidb_import_parquet")) || (rc = open_file(&j)) ||
        (rc = map_columns(&j)) || (rc = settle_settings(&j)) || (rc = check_file(&j)))
        goto done;
    report_mapping(&j);
    if ((rc = create_collection(&j)) == AKIDB_OK)
        rc = write_file(&j);
done:
    if (rows_out)
        *rows_out = j.written;
    if (j.o.resume_row_out)
        *j.o.resume_row_out = j.next_row;
    job_free(&j);
    return rc;
}

/* ---- inspect --------------------------------------------------------- */

int akidb_parquet_inspect(const char *path, char **text_out)
{
    akidb__err_clear();
    if (!path) return akidb__err(AKIDB_MISUSE, "akidb_parquet_inspect: path must not be NULL");
    if (!text_out) return akidb__err(AKIDB_MISUSE, "akidb_parquet_inspect: text_out must not be NULL");
    *text_out = NULL;
    const void *data = NULL;
    size_t len = 0;
    akidb__pqr *r = NULL;
    int rc = akidb__map_file(path, &data, &len);
    if (rc == AKIDB_NOTFOUND)
        rc = akidb__err(AKIDB_NOTFOUND, "%s: no such file", path);
    if (rc || (rc = akidb__pqr_open(data, len, &akidb__default_allocator, &r)))
        goto done;
    akidb__str b = { NULL, 0, 0, 0 };
    char line[1024];
    size_t n_cols = akidb__pqr_num_columns(r), n_rg = akidb__pqr_num_row_groups(r);
    snprintf(line, sizeof line, "file: %s\nsize: %zu bytes\nrows: %llu\nrow groups: %zu\n",
             path, len, (unsigned long long)akidb__pqr_num_rows(r), n_rg);
    akidb__str_cat(&b, line);
    akidb__str_cat(&b, "columns:\n");
    for (size_t i = 0; i < n_cols; i++) {
        akidb__pqr_column_info info;
        if (akidb__pqr_column(r, i, &info) != AKIDB_OK)
            continue;
        char qn[256];
        snprintf(line, sizeof line, "  %-24s %-10s %-20s %s%s\n",
                 akidb__quote(qn, sizeof qn, info.name, 200), info.physical,
                 info.logical, info.optional ? "optional" : "required",
                 info.kind ? "" : "  (not importable)");
        akidb__str_cat(&b, line);
    }
    for (size_t rg = 0; rg < n_rg; rg++) {
        snprintf(line, sizeof line, "row group %zu: %llu rows; codecs:", rg,
                 (unsigned long long)akidb__pqr_row_group_rows(r, rg));
        akidb__str_cat(&b, line);
        for (size_t i = 0; i < n_cols; i++) {
            const char *codec = akidb__pqr_codec(r, rg, i);
            snprintf(line, sizeof line, " %s", codec ? codec : "?");
            akidb__str_cat(&b, line);
        }
        akidb__str_cat(&b, "\n");
    }
    /* Every pair, quoted: keys and values are the file's, and a terminal
     * must not interpret them. */
    for (size_t i = 0; i < akidb__pqr_num_kv(r); i++) {
        const char *v, *k = akidb__pqr_kv_at(r, i, &v);
        char qk[128], qv[256];
        snprintf(line, sizeof line, "metadata %s = %s\n", akidb__quote(qk, sizeof qk, k, 100),
                 akidb__quote(qv, sizeof qv, v, 200));
        akidb__str_cat(&b, line);
    }
    if (b.oom) {
        free(b.p);
        rc = akidb__err(AKIDB_NOMEM, "akidb_parquet_inspect: out of memory");
        goto done;
    }
    /* Hand out memory from akidb_malloc, as the header promises. */
    *text_out = akidb_malloc(b.len + 1);
    if (!*text_out)
        rc = akidb__err(AKIDB_NOMEM, "akidb_parquet_inspect: out of memory");
    else
        memcpy(*text_out, b.p ? b.p : "", b.len + 1);
    free(b.p);
done:
    akidb__pqr_free(r);
    if (data)
        akidb__unmap_file(data, len);
    return rc;
}
