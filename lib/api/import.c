/*
 * import.c - Parquet files in and out of collections for people and other
 * tools: akidb_import_parquet (files written by DuckDB, pyarrow, Polars or
 * AkiDB), and akidb_parquet_inspect (what a file holds, for the CLI).
 * Snapshots, which carry the saved graph, are snapshot.c's business; an
 * import inserts rows through the ordinary write path, so they are logged
 * and indexed like any other write.
 *
 * Column mapping: a LIST<FLOAT> vector column (default "vector"); an
 * optional id column whose values become external ids (then rows upsert);
 * metadata either from a "metadata" JSON/STRING column taken as is, or
 * built as a JSON object from named columns.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/env.h"
#include "common/alloc.h"
#include "common/file.h"
#include "format/parquet.h"
#include "common/strbuf.h"

#define IMPORT_BATCH 1024

void akidb_import_options_init_v(akidb_import_options *opts, uint32_t version)
{
    if (!opts)
        return;
    if (version != 1) {   /* the only version so far; see akidb_options_init_v */
        opts->version = version;
        return;
    }
    memset(opts, 0, sizeof *opts);
    opts->version = version;
    opts->vector_column = "vector";
    opts->metric = AKIDB_METRIC_L2;
}

typedef struct mapped {
    const void *data;
    size_t len;
} mapped;

/* The input file, mapped; a missing file is an error worth a message. */
static int map_input(const char *path, mapped *m)
{
    int rc = akidb__map_file(path, &m->data, &m->len);
    if (rc == AKIDB_NOTFOUND)
        return akidb__err(AKIDB_NOTFOUND, "%s: no such file", path);
    return rc;
}

static void unmap_input(mapped *m)
{
    akidb__unmap_file(m->data, m->len);
}

static void sb_json_string(akidb__str *b, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    akidb__str_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = { '\\', (char)ch };
            akidb__str_add(b, e, 2);
        } else if (ch < 0x20) {
            char e[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };
            akidb__str_add(b, e, 6);
        } else {
            akidb__str_add(b, (const char *)&ch, 1);
        }
    }
    akidb__str_add(b, "\"", 1);
}

/* Append the JSON value of row `row` of column values v. */
static void sb_json_value(akidb__str *b, const akidb__pqr_values *v, size_t row)
{
    char num[64];
    if (v->nulls && v->nulls[row]) {
        akidb__str_cat(b, "null");
        return;
    }
    switch (v->kind) {
    case AKIDB__PQ_INT64:
    case AKIDB__PQ_TIMESTAMP_US:
        snprintf(num, sizeof num, "%" PRId64, v->i64[row]);
        akidb__str_cat(b, num);
        break;
    case AKIDB__PQ_INT32:
        snprintf(num, sizeof num, "%" PRId32, v->i32[row]);
        akidb__str_cat(b, num);
        break;
    case AKIDB__PQ_FLOAT:
        if (isfinite(v->f32[row]))
            snprintf(num, sizeof num, "%.9g", (double)v->f32[row]);
        else
            snprintf(num, sizeof num, "null");
        akidb__str_cat(b, num);
        break;
    case AKIDB__PQ_JSON:
        akidb__str_add(b, (const char *)v->bytes + v->offsets[row], v->offsets[row + 1] - v->offsets[row]);
        break;
    case AKIDB__PQ_STRING:
    case AKIDB__PQ_BINARY:
        sb_json_string(b, v->bytes + v->offsets[row], v->offsets[row + 1] - v->offsets[row]);
        break;
    case AKIDB__PQ_FLOAT_LIST:
    case AKIDB__PQ_INT32_LIST:
        akidb__str_cat(b, "[");
        for (uint64_t k = v->offsets[row]; k < v->offsets[row + 1]; k++) {
            if (k > v->offsets[row])
                akidb__str_cat(b, ",");
            if (v->kind == AKIDB__PQ_INT32_LIST)
                snprintf(num, sizeof num, "%" PRId32, v->i32[k]);
            else if (isfinite(v->f32[k]))
                snprintf(num, sizeof num, "%.9g", (double)v->f32[k]);
            else
                snprintf(num, sizeof num, "null");
            akidb__str_cat(b, num);
        }
        akidb__str_cat(b, "]");
        break;
    }
}

/* ---- import ---------------------------------------------------------- */

static int find_typed(const akidb__pqr *r, const char *name, const akidb__pq_kind *kinds,
                      size_t n_kinds, const char *want, const char *path, int *col_out)
{
    int col = akidb__pqr_find_column(r, name);
    if (col < 0) {
        char q[96];
        return akidb__err(AKIDB_INVALID, "%s: no column named \"%s\"", path,
                          akidb__quote(q, sizeof q, name, 60));
    }
    akidb__pqr_column_info info;
    int rc = akidb__pqr_column(r, (size_t)col, &info);
    if (rc)
        return rc;
    for (size_t i = 0; i < n_kinds; i++)
        if (info.kind == kinds[i]) {
            *col_out = col;
            return AKIDB_OK;
        }
    return akidb__err(AKIDB_INVALID, "%s: column \"%s\" is %s %s; need %s", path, name,
                      info.physical, info.logical, want);
}

int akidb_import_parquet(akidb *db, const char *coll, const char *path,
                         const akidb_import_options *opts, uint64_t *rows_out)
{
    akidb__err_clear();
    if (!db) return akidb__err(AKIDB_MISUSE, "akidb_import_parquet: db must not be NULL");
    if (!coll) return akidb__err(AKIDB_MISUSE, "akidb_import_parquet: coll must not be NULL");
    if (!path) return akidb__err(AKIDB_MISUSE, "akidb_import_parquet: path must not be NULL");
    akidb_import_options o;
    if (opts) {
        if (opts->version != AKIDB_IMPORT_OPTIONS_VERSION)
            return akidb__err(AKIDB_INVALID, "akidb_import_parquet: options version %u is not "
                              "supported", opts->version);
        o = *opts;
    } else {
        akidb_import_options_init(&o);
    }
    if (!o.vector_column)
        o.vector_column = "vector";
    if (rows_out)
        *rows_out = 0;

    mapped m = { NULL, 0 };
    akidb__pqr *r = NULL;
    int *meta_cols = NULL;
    float *gv = NULL;                 /* one batch of vectors, gathered per pass */
    int rc = map_input(path, &m);
    if (rc || (rc = akidb__pqr_open(m.data, m.len, &akidb__default_allocator, &r)))
        goto done;

    static const akidb__pq_kind vec_kinds[] = { AKIDB__PQ_FLOAT_LIST };
    static const akidb__pq_kind id_kinds[] = { AKIDB__PQ_STRING, AKIDB__PQ_INT64,
                                               AKIDB__PQ_INT32, AKIDB__PQ_BINARY };
    static const akidb__pq_kind meta_kinds[] = { AKIDB__PQ_JSON, AKIDB__PQ_STRING };
    static const akidb__pq_kind any_kinds[] = {
        AKIDB__PQ_INT64, AKIDB__PQ_INT32, AKIDB__PQ_FLOAT, AKIDB__PQ_STRING, AKIDB__PQ_JSON,
        AKIDB__PQ_TIMESTAMP_US, AKIDB__PQ_FLOAT_LIST, AKIDB__PQ_INT32_LIST, AKIDB__PQ_BINARY
    };
    int vec_col = -1, id_col = -1, raw_meta_col = -1;
    if ((rc = find_typed(r, o.vector_column, vec_kinds, 1, "LIST<FLOAT>", path, &vec_col)))
        goto done;
    const char *id_name = o.id_column;
    if (!id_name && akidb__pqr_find_column(r, "external_id") >= 0)
        id_name = "external_id";
    if (id_name && (rc = find_typed(r, id_name, id_kinds, 4, "a string or integer", path,
                                    &id_col)))
        goto done;
    if (o.n_metadata_columns) {
        meta_cols = calloc(o.n_metadata_columns, sizeof *meta_cols);
        if (!meta_cols) {
            rc = akidb__err(AKIDB_NOMEM, "%s: out of memory", path);
            goto done;
        }
        for (size_t i = 0; i < o.n_metadata_columns; i++)
            if ((rc = find_typed(r, o.metadata_columns[i], any_kinds, 9, "a readable type", path,
                                 &meta_cols[i])))
                goto done;
    } else if (akidb__pqr_find_column(r, "metadata") >= 0) {
        if ((rc = find_typed(r, "metadata", meta_kinds, 2, "JSON or STRING", path, &raw_meta_col)))
            goto done;
    }

    /* A checkpoint keeps its deleted documents (as graph nodes) in
     * flagged rows; importing one must not bring them back. */
    const char *kind = akidb__pqr_kv(r, "akidb.kind");
    int del_col = -1;
    if (kind && strcmp(kind, "checkpoint") == 0) {
        static const akidb__pq_kind flag_kinds[] = { AKIDB__PQ_INT32 };
        if ((rc = find_typed(r, "hnsw_deleted", flag_kinds, 1, "INT32", path, &del_col)))
            goto done;
    }

    uint64_t total = akidb__pqr_num_rows(r), done_rows = 0;
    uint32_t dim = 0;
    char *gid[IMPORT_BATCH], *gmeta[IMPORT_BATCH];
    akidb_collection_config cfg;
    int have_coll = akidb_collection_info(db, coll, &cfg) == AKIDB_OK;
    if (have_coll)
        dim = cfg.dim;
    akidb__err_clear();

    for (size_t rg = 0; rg < akidb__pqr_num_row_groups(r) && rc == AKIDB_OK; rg++) {
        akidb__pqr_values vv, iv, rmv, dv;
        akidb__pqr_values *mv = NULL;
        memset(&vv, 0, sizeof vv);
        memset(&iv, 0, sizeof iv);
        memset(&rmv, 0, sizeof rmv);
        memset(&dv, 0, sizeof dv);
        size_t n_meta_read = 0;
        char **ids = NULL, **metas = NULL;
        size_t rows = 0;
        if ((rc = akidb__pqr_read(r, rg, (size_t)vec_col, &vv)))
            goto group_done;
        rows = vv.n_rows;
        if (id_col >= 0 && (rc = akidb__pqr_read(r, rg, (size_t)id_col, &iv)))
            goto group_done;
        if (raw_meta_col >= 0 && (rc = akidb__pqr_read(r, rg, (size_t)raw_meta_col, &rmv)))
            goto group_done;
        if (del_col >= 0 && (rc = akidb__pqr_read(r, rg, (size_t)del_col, &dv)))
            goto group_done;
        if (del_col >= 0 && dv.n_rows != rows) {
            rc = akidb__err(AKIDB_CORRUPT, "%s: row group %zu: hnsw_deleted has %zu rows, the "
                            "vectors %zu", path, rg, dv.n_rows, rows);
            goto group_done;
        }
        if (o.n_metadata_columns) {
            mv = calloc(o.n_metadata_columns, sizeof *mv);
            if (!mv) {
                rc = akidb__err(AKIDB_NOMEM, "%s: out of memory", path);
                goto group_done;
            }
            for (; n_meta_read < o.n_metadata_columns; n_meta_read++)
                if ((rc = akidb__pqr_read(r, rg, (size_t)meta_cols[n_meta_read],
                                          &mv[n_meta_read])))
                    goto group_done;
        }
        for (size_t i = 0; i < rows; i++) {
            uint64_t len = vv.offsets[i + 1] - vv.offsets[i];
            if ((vv.nulls && vv.nulls[i]) || len == 0 || len > AKIDB_MAX_DIM) {
                rc = akidb__err(AKIDB_INVALID, "%s: row %llu: vector is null, empty or longer "
                                "than %d", path, (unsigned long long)(done_rows + i),
                                AKIDB_MAX_DIM);
                goto group_done;
            }
            if (!dim)
                dim = (uint32_t)len;
            if (len != dim) {
                rc = akidb__err(AKIDB_INVALID, "%s: row %llu: vector has %llu values, expected "
                                "%u%s", path, (unsigned long long)(done_rows + i),
                                (unsigned long long)len, dim,
                                have_coll ? " (the collection's dimension)" : "");
                goto group_done;
            }
        }
        if (!have_coll && dim) {
            akidb_collection_config_init(&cfg, dim, o.metric);
            if ((rc = akidb_collection_create(db, coll, &cfg)))
                goto group_done;
            have_coll = 1;
        }
        if (!gv && !(gv = malloc((size_t)IMPORT_BATCH * dim * sizeof *gv))) {
            rc = akidb__err(AKIDB_NOMEM, "%s: out of memory", path);
            goto group_done;
        }
        ids = id_col >= 0 ? calloc(rows ? rows : 1, sizeof *ids) : NULL;
        metas = (mv || raw_meta_col >= 0) ? calloc(rows ? rows : 1, sizeof *metas) : NULL;
        if ((id_col >= 0 && !ids) || ((mv || raw_meta_col >= 0) && !metas)) {
            rc = akidb__err(AKIDB_NOMEM, "%s: out of memory", path);
            goto group_done;
        }
        for (size_t i = 0; i < rows; i++) {
            if (ids && !(iv.nulls && iv.nulls[i])) {
                char num[32];
                if (iv.kind == AKIDB__PQ_INT64)
                    snprintf(num, sizeof num, "%" PRId64, iv.i64[i]);
                else if (iv.kind == AKIDB__PQ_INT32)
                    snprintf(num, sizeof num, "%" PRId32, iv.i32[i]);
                ids[i] = (iv.kind == AKIDB__PQ_INT64 || iv.kind == AKIDB__PQ_INT32)
                    ? strdup(num)
                    : strndup((const char *)iv.bytes + iv.offsets[i],
                              iv.offsets[i + 1] - iv.offsets[i]);
                if (!ids[i]) {
                    rc = akidb__err(AKIDB_NOMEM, "%s: out of memory", path);
                    goto group_done;
                }
            }
            if (raw_meta_col >= 0 && !(rmv.nulls && rmv.nulls[i])) {
                metas[i] = strndup((const char *)rmv.bytes + rmv.offsets[i],
                                   rmv.offsets[i + 1] - rmv.offsets[i]);
                if (!metas[i]) {
                    rc = akidb__err(AKIDB_NOMEM, "%s: out of memory", path);
                    goto group_done;
                }
            } else if (mv) {
                akidb__str b = { NULL, 0, 0, 0 };
                akidb__str_cat(&b, "{");
                for (size_t k = 0; k < o.n_metadata_columns; k++) {
                    if (k)
                        akidb__str_cat(&b, ",");
                    sb_json_string(&b, (const unsigned char *)o.metadata_columns[k],
                                   strlen(o.metadata_columns[k]));
                    akidb__str_cat(&b, ":");
                    sb_json_value(&b, &mv[k], i);
                }
                akidb__str_cat(&b, "}");
                if (b.oom) {
                    free(b.p);
                    rc = akidb__err(AKIDB_NOMEM, "%s: out of memory", path);
                    goto group_done;
                }
                metas[i] = b.p;
            }
        }
        /* Insert in batches.  Rows with an external id upsert (a re-import
         * replaces them instead of failing); rows without one insert. */
        for (size_t at = 0; at < rows && rc == AKIDB_OK; at += IMPORT_BATCH) {
            size_t n = rows - at < IMPORT_BATCH ? rows - at : IMPORT_BATCH, imported = 0;
            for (int pass = 0; pass < 2 && rc == AKIDB_OK; pass++) {
                size_t k = 0;
                for (size_t i = 0; i < n; i++) {
                    int has_id = ids && ids[at + i];
                    if (has_id != (pass == 0) || (del_col >= 0 && dv.i32[at + i]))
                        continue;
                    memcpy(gv + k * dim, vv.f32 + vv.offsets[at + i], (size_t)dim * sizeof *gv);
                    gid[k] = has_id ? ids[at + i] : NULL;
                    gmeta[k] = metas ? metas[at + i] : NULL;
                    k++;
                }
                if (!k)
                    continue;
                imported += k;
                rc = pass == 0 ? akidb_upsert(db, coll, k, gv, (const char *const *)gid,
                                              (const char *const *)gmeta, NULL)
                               : akidb_insert(db, coll, k, gv, NULL, (const char *const *)gmeta,
                                              NULL);
            }
            if (rc) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", akidb_errmsg(NULL));
                rc = akidb__err(rc, "%s: rows %llu..%llu: %s", path,
                                (unsigned long long)(done_rows + at),
                                (unsigned long long)(done_rows + at + n - 1), msg);
                break;
            }
            if (rows_out)
                *rows_out += imported;
            if (o.progress)
                o.progress(o.progress_ctx, done_rows + at + n, total);
        }
group_done:
        for (size_t i = 0; i < rows; i++) {
            if (ids)
                free(ids[i]);
            if (metas)
                free(metas[i]);
        }
        free(ids);
        free(metas);
        akidb__pqr_values_free(r, &vv);
        akidb__pqr_values_free(r, &iv);
        akidb__pqr_values_free(r, &rmv);
        akidb__pqr_values_free(r, &dv);
        for (size_t k = 0; mv && k < n_meta_read; k++)
            akidb__pqr_values_free(r, &mv[k]);
        free(mv);
        done_rows += rows;
    }
    if (rc == AKIDB_OK && !have_coll)
        rc = akidb__err(AKIDB_INVALID, "%s: the file has no rows, so the vector dimension of a "
                        "new collection %s is unknown", path, coll);
done:
    free(gv);
    free(meta_cols);
    akidb__pqr_free(r);
    unmap_input(&m);
    return rc;
}

/* ---- inspect --------------------------------------------------------- */

int akidb_parquet_inspect(const char *path, char **text_out)
{
    akidb__err_clear();
    if (!path) return akidb__err(AKIDB_MISUSE, "akidb_parquet_inspect: path must not be NULL");
    if (!text_out) return akidb__err(AKIDB_MISUSE, "akidb_parquet_inspect: text_out must not be NULL");
    *text_out = NULL;
    mapped m = { NULL, 0 };
    akidb__pqr *r = NULL;
    int rc = map_input(path, &m);
    if (rc || (rc = akidb__pqr_open(m.data, m.len, &akidb__default_allocator, &r)))
        goto done;
    akidb__str b = { NULL, 0, 0, 0 };
    char line[1024];
    size_t n_cols = akidb__pqr_num_columns(r), n_rg = akidb__pqr_num_row_groups(r);
    snprintf(line, sizeof line, "file: %s\nsize: %zu bytes\nrows: %llu\nrow groups: %zu\n",
             path, m.len, (unsigned long long)akidb__pqr_num_rows(r), n_rg);
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
    unmap_input(&m);
    return rc;
}
