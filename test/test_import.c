/*
 * test_import.c - akidb_import_parquet as a user meets it: files with bad
 * values (NUL bytes, NaN), failures in the middle of the writes, the
 * file's own settings, the column mapping (an `id` column, JSON in a text
 * column), duplicates, resuming with skip_rows, the handle's allocator,
 * version 1 of the options struct, and files DuckDB wrote.
 *
 * Files are written with the library's own Parquet writer (write_file
 * below), whose output test_parquet_interop checks against DuckDB and
 * arrow-rs; the import_duckdb_* tests have DuckDB write them (through
 * scripts/parquet-interop.sh sql, which needs node and npm packages).
 */
#include "runner.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "akidb.h"
#include "common/fault.h"
#include "format/parquet.h"

static const char *errmsg_detail(void) { return akidb_errmsg(NULL); }
__attribute__((constructor)) static void set_detail(void) { akt_rc_detail_fn = errmsg_detail; }

#define ASSERT_HAS(hay, needle)                                                      \
    do { const char *akt_h_ = (hay), *akt_n_ = (needle);                             \
         if (!akt_h_ || !strstr(akt_h_, akt_n_))                                     \
             akt_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"",          \
                      akt_h_ ? akt_h_ : "(null)", akt_n_); } while (0)

/* ---- writing test files ------------------------------------------------- */

/* One column of a test file: strings (s[r] NULL = null; len NULL: strlen),
 * 64-bit integers, or vectors of dim floats. */
typedef struct tcolumn {
    const char *name;
    akidb__pq_kind kind;            /* STRING, JSON, INT64 or FLOAT_LIST */
    char **s;
    const size_t *len;
    const int64_t *i64;
    const float *f32;
    uint32_t dim;
} tcolumn;

static int file_sink(void *ctx, const void *buf, size_t len)
{
    return fwrite(buf, 1, len, (FILE *)ctx) == len ? AKIDB_OK : AKIDB_IOERR;
}

/* Write n rows in row groups of rg rows, with key/value metadata. */
static void write_file(const char *path, size_t n, size_t rg, const tcolumn *cols,
                       size_t n_cols, const char *const *kv_k, const char *const *kv_v,
                       size_t n_kv)
{
    akidb__pq_column_def defs[8];
    ASSERT(n_cols <= 8);
    for (size_t c = 0; c < n_cols; c++) {
        defs[c].name = cols[c].name;
        defs[c].kind = cols[c].kind;
        defs[c].optional = cols[c].kind == AKIDB__PQ_STRING || cols[c].kind == AKIDB__PQ_JSON;
    }
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    akidb__pqw_options o = { 0, 0, 0, kv_k, kv_v, n_kv, "akidb test_import" };
    akidb__pqw *w;
    ASSERT_OK(akidb__pqw_open(defs, n_cols, &o, NULL, file_sink, f, &w));
    for (size_t at = 0; at < n; at += rg) {
        size_t rows = n - at < rg ? n - at : rg;
        akidb__pq_values v[8];
        uint64_t *offs[8] = { 0 };
        unsigned char *bytes[8] = { 0 };
        uint8_t *nulls[8] = { 0 };
        memset(v, 0, sizeof v);
        for (size_t c = 0; c < n_cols; c++) {
            const tcolumn *tc = &cols[c];
            if (tc->kind == AKIDB__PQ_INT64) {
                v[c].i64 = tc->i64 + at;
            } else if (tc->kind == AKIDB__PQ_FLOAT_LIST) {
                offs[c] = malloc((rows + 1) * sizeof **offs);
                for (size_t r = 0; r <= rows; r++)
                    offs[c][r] = (uint64_t)r * tc->dim;
                v[c].f32 = tc->f32 + at * tc->dim;
                v[c].offsets = offs[c];
            } else {
                size_t total = 0;
                for (size_t r = 0; r < rows; r++)
                    if (tc->s[at + r])
                        total += tc->len ? tc->len[at + r] : strlen(tc->s[at + r]);
                offs[c] = malloc((rows + 1) * sizeof **offs);
                bytes[c] = malloc(total + 1);
                nulls[c] = calloc(rows, 1);
                offs[c][0] = 0;
                for (size_t r = 0; r < rows; r++) {
                    const char *s = tc->s[at + r];
                    size_t l = s ? (tc->len ? tc->len[at + r] : strlen(s)) : 0;
                    if (s)
                        memcpy(bytes[c] + offs[c][r], s, l);
                    else
                        nulls[c][r] = 1;
                    offs[c][r + 1] = offs[c][r] + l;
                }
                v[c].bytes = bytes[c];
                v[c].offsets = offs[c];
                v[c].nulls = nulls[c];
            }
        }
        ASSERT_OK(akidb__pqw_write_row_group(w, rows, v));
        for (size_t c = 0; c < n_cols; c++) {
            free(offs[c]);
            free(bytes[c]);
            free(nulls[c]);
        }
    }
    uint64_t size;
    ASSERT_OK(akidb__pqw_finish(w, &size));
    akidb__pqw_free(w);
    ASSERT_EQ(fclose(f), 0);
}

static float *make_vectors(size_t n, uint32_t dim, uint64_t seed)
{
    float *v = malloc(n * dim * sizeof *v);
    ASSERT(v != NULL);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n * dim; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[i] = (float)((double)(x >> 11) / 9007199254740992.0) - 0.5f;
    }
    return v;
}

/* n strings: prefix, the row number, suffix. */
static char **make_strings(size_t n, const char *prefix, const char *suffix)
{
    char **s = malloc(n * sizeof *s);
    ASSERT(s != NULL);
    for (size_t i = 0; i < n; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s%zu%s", prefix, i, suffix);
        s[i] = strdup(buf);
    }
    return s;
}

static void free_strings(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

static char *path_in(const char *name)
{
    char *p = malloc(strlen(akt_dir) + strlen(name) + 2);
    ASSERT(p != NULL);
    sprintf(p, "%s/%s", akt_dir, name);
    return p;
}

static akidb *open_db(const char *name)
{
    char *dir = path_in(name);
    akidb_options o;
    akidb_options_init(&o);
    o.sync_mode = AKIDB_SYNC_NONE;
    akidb *db;
    ASSERT_OK(akidb_open(dir, &o, &db));
    free(dir);
    return db;
}

static uint64_t count_of(akidb *db, const char *coll)
{
    uint64_t n = 0;
    ASSERT_OK(akidb_collection_count(db, coll, &n));
    return n;
}

static void assert_no_collection(akidb *db, const char *coll)
{
    uint64_t n;
    ASSERT_RC(akidb_collection_count(db, coll, &n), AKIDB_NOTFOUND);
}

/* The notices of one import, concatenated, WARN ones marked. */
typedef struct notices {
    char text[16384];
    size_t len;
    int n_warn;
} notices;

static void notice_cb(void *ctx, akidb_log_level level, const char *msg)
{
    notices *n = ctx;
    int w = snprintf(n->text + n->len, sizeof n->text - n->len, "%s%s\n",
                     level == AKIDB_LOG_WARN ? "WARN " : "", msg);
    if (w > 0 && (size_t)w < sizeof n->text - n->len)
        n->len += (size_t)w;
    n->n_warn += level == AKIDB_LOG_WARN;
}

static char *metadata_of(akidb *db, const char *coll, const char *ext)
{
    uint64_t id;
    char *meta = NULL;
    ASSERT_OK(akidb_lookup(db, coll, ext, &id));
    ASSERT_OK(akidb_get(db, coll, id, NULL, &meta));
    return meta;
}

/* ---- item 3: NUL bytes ---------------------------------------------------- */

/* 'k\0a' and 'k\0b' are distinct in the file; cut at the NUL they would
 * be one id, and one row would silently replace the other (or, in one
 * batch, the error would blame a duplicate the file does not have). */
TEST(import_nul_in_external_id_is_refused)
{
    enum { N = 2000, DIM = 4 };
    float *vec = make_vectors(N, DIM, 1);
    char **ids = make_strings(N, "k", "");
    size_t len[N];
    for (size_t i = 0; i < N; i++)
        len[i] = strlen(ids[i]);
    akidb *db = open_db("db");
    static const struct { size_t a, b; } cases[] = { { 700, 701 }, { 10, 1500 } };
    for (size_t t = 0; t < 2; t++) {
        size_t a = cases[t].a, b = cases[t].b;
        char ka[] = { 'k', 0, 'a' }, kb[] = { 'k', 0, 'b' };
        char *oa = ids[a], *ob = ids[b];
        ids[a] = ka, ids[b] = kb;
        len[a] = len[b] = 3;
        tcolumn cols[] = {
            { "external_id", AKIDB__PQ_STRING, ids, len, NULL, NULL, 0 },
            { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM },
        };
        char *file = path_in("nul.parquet");
        write_file(file, N, 1024, cols, 2, NULL, NULL, 0);
        uint64_t rows = 99;
        ASSERT_RC(akidb_import_parquet(db, "c", file, NULL, &rows), AKIDB_INVALID);
        char want[64];
        snprintf(want, sizeof want, "file row %zu, column \"external_id\"", a);
        ASSERT_HAS(akidb_errmsg(NULL), want);
        ASSERT_HAS(akidb_errmsg(NULL), "NUL byte");
        ASSERT_HAS(akidb_errmsg(NULL), "nothing was imported");
        ASSERT_EQ(rows, 0);
        assert_no_collection(db, "c");
        ids[a] = oa, ids[b] = ob;
        len[a] = strlen(oa), len[b] = strlen(ob);
        free(file);
    }
    /* metadata "x\0y" would be stored as "x" */
    char **meta = make_strings(N, "{\"row\":", "}");
    size_t mlen[N];
    for (size_t i = 0; i < N; i++)
        mlen[i] = strlen(meta[i]);
    char xy[] = { '"', 'x', 0, 'y', '"' };
    char *om = meta[1234];
    meta[1234] = xy;
    mlen[1234] = sizeof xy;
    tcolumn cols[] = {
        { "external_id", AKIDB__PQ_STRING, ids, len, NULL, NULL, 0 },
        { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM },
        { "metadata", AKIDB__PQ_STRING, meta, mlen, NULL, NULL, 0 },
    };
    char *file = path_in("nulmeta.parquet");
    write_file(file, N, 1024, cols, 3, NULL, NULL, 0);
    ASSERT_RC(akidb_import_parquet(db, "c", file, NULL, NULL), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "file row 1234, column \"metadata\"");
    ASSERT_HAS(akidb_errmsg(NULL), "NUL byte");
    assert_no_collection(db, "c");
    /* without the bad value every row arrives */
    meta[1234] = om;
    mlen[1234] = strlen(om);
    write_file(file, N, 1024, cols, 3, NULL, NULL, 0);
    uint64_t rows = 0;
    ASSERT_OK(akidb_import_parquet(db, "c", file, NULL, &rows));
    ASSERT_EQ(rows, N);
    ASSERT_EQ(count_of(db, "c"), N);
    char *m = metadata_of(db, "c", "k1234");
    ASSERT_STR_EQ(m, "{\"row\":1234}");
    akidb_free(m);
    free(file);
    ASSERT_OK(akidb_close(db));
    free_strings(meta, N);
    free_strings(ids, N);
    free(vec);
}

/* Other text that cannot be stored as it is: invalid UTF-8, control
 * characters in ids, a JSON column holding something that is not JSON. */
TEST(import_bad_text_is_refused_by_file_row)
{
    enum { N = 50, DIM = 3 };
    float *vec = make_vectors(N, DIM, 2);
    char **ids = make_strings(N, "doc-", "");
    akidb *db = open_db("db");
    char *file = path_in("bad.parquet");
    tcolumn cols[] = {
        { "external_id", AKIDB__PQ_STRING, ids, NULL, NULL, NULL, 0 },
        { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM },
    };
    char bad_utf8[] = "doc-\xff";
    char ctl[] = "doc\x1b[31m";
    char *was = ids[17];
    ids[17] = bad_utf8;
    write_file(file, N, 20, cols, 2, NULL, NULL, 0);
    ASSERT_RC(akidb_import_parquet(db, "c", file, NULL, NULL), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "file row 17, column \"external_id\"");
    ASSERT_HAS(akidb_errmsg(NULL), "UTF-8");
    ids[17] = ctl;
    write_file(file, N, 20, cols, 2, NULL, NULL, 0);
    ASSERT_RC(akidb_import_parquet(db, "c", file, NULL, NULL), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "control character");
    ids[17] = was;
    char **meta = make_strings(N, "{\"n\":", "}");
    char *om = meta[33];
    meta[33] = "{\"n\": oops}";
    tcolumn jcols[] = {
        { "external_id", AKIDB__PQ_STRING, ids, NULL, NULL, NULL, 0 },
        { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM },
        { "metadata", AKIDB__PQ_JSON, meta, NULL, NULL, NULL, 0 },
    };
    write_file(file, N, 20, jcols, 3, NULL, NULL, 0);
    ASSERT_RC(akidb_import_parquet(db, "c", file, NULL, NULL), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "file row 33, column \"metadata\"");
    ASSERT_HAS(akidb_errmsg(NULL), "is not");
    assert_no_collection(db, "c");
    meta[33] = "{\"n\":1,\"n\":2}";   /* two tools would read two documents */
    write_file(file, N, 20, jcols, 3, NULL, NULL, 0);
    ASSERT_RC(akidb_import_parquet(db, "c", file, NULL, NULL), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "file row 33, column \"metadata\"");
    ASSERT_HAS(akidb_errmsg(NULL), "duplicate");
    assert_no_collection(db, "c");
    meta[33] = om;
    free(file);
    ASSERT_OK(akidb_close(db));
    free_strings(meta, N);
    free_strings(ids, N);
    free(vec);
}

/* ---- item 7: failures, kept rows, resuming -------------------------------- */

/* A NaN at file row 9,000: refused before any row is written, the row
 * named as a file row (not "row 808" of a batch). */
TEST(import_nan_changes_nothing)
{
    enum { N = 10000, DIM = 8 };
    float *vec = make_vectors(N, DIM, 3);
    vec[9000 * DIM + 1] = NAN;
    char **ids = make_strings(N, "doc-", "");
    tcolumn cols[] = {
        { "external_id", AKIDB__PQ_STRING, ids, NULL, NULL, NULL, 0 },
        { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM },
    };
    char *file = path_in("nan.parquet");
    write_file(file, N, 4096, cols, 2, NULL, NULL, 0);
    akidb *db = open_db("db");
    akidb_import_options o;
    akidb_import_options_init(&o);
    uint64_t rows = 99, resume = 99;
    o.resume_row_out = &resume;
    ASSERT_RC(akidb_import_parquet(db, "new", file, &o, &rows), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "file row 9000, column \"vector\": value 1 is NaN");
    ASSERT_HAS(akidb_errmsg(NULL), "nothing was imported");
    ASSERT_EQ(rows, 0);
    ASSERT_EQ(resume, 0);
    assert_no_collection(db, "new");          /* no empty collection left behind */
    /* into a collection that exists: it stays as it was */
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, DIM, AKIDB_METRIC_L2);
    ASSERT_OK(akidb_collection_create(db, "old", &cfg));
    ASSERT_OK(akidb_insert(db, "old", 3, vec, NULL, NULL, NULL));
    ASSERT_RC(akidb_import_parquet(db, "old", file, &o, &rows), AKIDB_INVALID);
    ASSERT_EQ(count_of(db, "old"), 3);
    /* a zero vector, for a cosine collection only */
    vec[9000 * DIM + 1] = 0.5f;
    memset(vec + 42 * DIM, 0, DIM * sizeof *vec);
    write_file(file, N, 4096, cols, 2, NULL, NULL, 0);
    o.metric = AKIDB_METRIC_COSINE;
    ASSERT_RC(akidb_import_parquet(db, "cos", file, &o, &rows), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "file row 42, column \"vector\": a zero vector");
    assert_no_collection(db, "cos");
    o.metric = AKIDB_METRIC_L2;
    ASSERT_OK(akidb_import_parquet(db, "l2", file, &o, &rows));
    ASSERT_EQ(rows, N);
    ASSERT_EQ(resume, N);
    ASSERT_OK(akidb_close(db));
    free_strings(ids, N);
    free(vec);
    free(file);
}

typedef struct fault_plan {
    int writes;        /* log writes seen */
    int fail_at;       /* the one that fails with ENOSPC (1-based); 0 = none */
} fault_plan;

static int fault_hook(void *ctx, akidb__fault_point point)
{
    fault_plan *f = ctx;
    if (point != AKIDB__FAULT_WAL_WRITE)
        return 0;
    return ++f->writes == f->fail_at ? ENOSPC : 0;
}

/* The disk fills in the middle: the batches before stay, the message and
 * resume_row_out say where to go on, and going on completes the file. */
TEST(import_write_failure_keeps_rows_and_resumes)
{
    enum { N = 5000, DIM = 6 };
    float *vec = make_vectors(N, DIM, 4);
    char **ids = make_strings(N, "doc-", "");
    char **meta = make_strings(N, "{\"row\":", "}");
    tcolumn cols[] = {
        { "external_id", AKIDB__PQ_STRING, ids, NULL, NULL, NULL, 0 },
        { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM },
        { "metadata", AKIDB__PQ_STRING, meta, NULL, NULL, NULL, 0 },
    };
    char *file = path_in("full.parquet");
    write_file(file, N, 2048, cols, 3, NULL, NULL, 0);
    akidb *db = open_db("db");
    fault_plan f = { 0, 3 };
    akidb__set_fault_hook(db, fault_hook, &f);
    akidb_import_options o;
    akidb_import_options_init(&o);
    uint64_t rows = 0, resume = 0;
    o.resume_row_out = &resume;
    ASSERT_RC(akidb_import_parquet(db, "c", file, &o, &rows), AKIDB_IOERR);
    akidb__set_fault_hook(db, NULL, NULL);
    /* batches of 1024 rows: the third write is file rows 2048..3071 */
    ASSERT_EQ(f.writes, 3);
    ASSERT_EQ(rows, 2048);
    ASSERT_EQ(resume, 2048);
    ASSERT_HAS(akidb_errmsg(NULL), "file rows 2048..3071");
    ASSERT_HAS(akidb_errmsg(NULL), "2048 rows before it (file rows 0..2047) were imported");
    ASSERT_HAS(akidb_errmsg(NULL), "resume at file row 2048 (skip_rows 2048)");
    ASSERT_EQ(count_of(db, "c"), 2048);
    uint64_t id;
    ASSERT_OK(akidb_lookup(db, "c", "doc-2047", &id));
    ASSERT_RC(akidb_lookup(db, "c", "doc-2048", &id), AKIDB_NOTFOUND);
    /* resume */
    o.skip_rows = resume;
    ASSERT_OK(akidb_import_parquet(db, "c", file, &o, &rows));
    ASSERT_EQ(rows, N - 2048);
    ASSERT_EQ(resume, N);
    ASSERT_EQ(count_of(db, "c"), N);
    char *m = metadata_of(db, "c", "doc-4999");
    ASSERT_STR_EQ(m, "{\"row\":4999}");
    akidb_free(m);

    /* the first write fails: a collection the import created is dropped
     * again, so a failed import leaves nothing or exactly what it says */
    f.writes = 0;
    f.fail_at = 1;
    akidb__set_fault_hook(db, fault_hook, &f);
    o.skip_rows = 0;
    ASSERT_RC(akidb_import_parquet(db, "fresh", file, &o, &rows), AKIDB_IOERR);
    akidb__set_fault_hook(db, NULL, NULL);
    ASSERT_EQ(rows, 0);
    ASSERT_EQ(resume, 0);
    ASSERT_HAS(akidb_errmsg(NULL), "nothing was imported (the collection the import created "
                                   "was dropped again)");
    assert_no_collection(db, "fresh");
    ASSERT_OK(akidb_close(db));
    free_strings(meta, N);
    free_strings(ids, N);
    free(vec);
    free(file);
}

/* Rows with the same external id in one file: applied in order, the last
 * one wins, whatever the batches and row groups (not an error about a
 * duplicate "in the batch"). */
TEST(import_repeated_ids_upsert_in_file_order)
{
    enum { N = 3000, DIM = 4 };
    float *vec = make_vectors(N, DIM, 5);
    char **ids = malloc(N * sizeof *ids);
    for (size_t i = 0; i < N; i++) {
        char b[32];
        snprintf(b, sizeof b, "id-%zu", i % 1000);
        ids[i] = strdup(b);
    }
    char **meta = make_strings(N, "{\"row\":", "}");
    tcolumn cols[] = {
        { "external_id", AKIDB__PQ_STRING, ids, NULL, NULL, NULL, 0 },
        { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM },
        { "metadata", AKIDB__PQ_STRING, meta, NULL, NULL, NULL, 0 },
    };
    char *file = path_in("dups.parquet");
    write_file(file, N, 1700, cols, 3, NULL, NULL, 0);
    akidb *db = open_db("db");
    uint64_t rows = 0;
    ASSERT_OK(akidb_import_parquet(db, "c", file, NULL, &rows));
    ASSERT_EQ(rows, N);
    ASSERT_EQ(count_of(db, "c"), 1000);
    for (size_t k = 0; k < 1000; k += 111) {
        char ext[32], want[32];
        snprintf(ext, sizeof ext, "id-%zu", k);
        snprintf(want, sizeof want, "{\"row\":%zu}", 2000 + k);
        char *m = metadata_of(db, "c", ext);
        ASSERT_STR_EQ(m, want);
        akidb_free(m);
    }
    ASSERT_OK(akidb_close(db));
    free_strings(meta, N);
    free_strings(ids, N);
    free(vec);
    free(file);
}

static void progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    uint64_t *last = ctx;
    ASSERT(done >= last[0]);
    ASSERT_EQ(total, last[1]);
    last[0] = done;
}

TEST(import_skip_rows)
{
    enum { N = 1000, DIM = 3 };
    float *vec = make_vectors(N, DIM, 6);
    char **ids = make_strings(N, "doc-", "");
    tcolumn cols[] = {
        { "external_id", AKIDB__PQ_STRING, ids, NULL, NULL, NULL, 0 },
        { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM },
    };
    char *file = path_in("skip.parquet");
    write_file(file, N, 300, cols, 2, NULL, NULL, 0);
    akidb *db = open_db("db");
    akidb_import_options o;
    akidb_import_options_init(&o);
    uint64_t rows = 0, resume = 0, last[2] = { 0, N };
    o.skip_rows = 400;
    o.resume_row_out = &resume;
    o.progress = progress_cb;
    o.progress_ctx = last;
    ASSERT_OK(akidb_import_parquet(db, "c", file, &o, &rows));
    ASSERT_EQ(rows, 600);
    ASSERT_EQ(resume, N);
    ASSERT_EQ(last[0], N);
    ASSERT_EQ(count_of(db, "c"), 600);
    uint64_t id;
    ASSERT_RC(akidb_lookup(db, "c", "doc-399", &id), AKIDB_NOTFOUND);
    ASSERT_OK(akidb_lookup(db, "c", "doc-400", &id));
    o.skip_rows = N;   /* everything done already: nothing to do */
    ASSERT_OK(akidb_import_parquet(db, "c", file, &o, &rows));
    ASSERT_EQ(rows, 0);
    o.skip_rows = N + 1;
    ASSERT_RC(akidb_import_parquet(db, "c", file, &o, &rows), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "past the end");
    ASSERT_EQ(count_of(db, "c"), 600);
    ASSERT_OK(akidb_close(db));
    free_strings(ids, N);
    free(vec);
    free(file);
}

/* ---- item 8: the file's settings -------------------------------------------- */

TEST(import_honours_the_files_metric_and_hnsw_settings)
{
    enum { N = 300, DIM = 5 };
    float *vec = make_vectors(N, DIM, 7);
    char **ids = make_strings(N, "doc-", "");
    akidb *db = open_db("db");
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, DIM, AKIDB_METRIC_COSINE);
    cfg.hnsw_m = 8;
    cfg.ef_construction = 64;
    cfg.ef_search = 33;
    ASSERT_OK(akidb_collection_create(db, "src", &cfg));
    ASSERT_OK(akidb_insert(db, "src", N, vec, (const char *const *)ids, NULL, NULL));
    char *file = path_in("cos.parquet");
    ASSERT_OK(akidb_export_parquet(db, "src", file));

    notices nt;
    memset(&nt, 0, sizeof nt);
    akidb_import_options o;
    akidb_import_options_init(&o);
    o.notice = notice_cb;
    o.notice_ctx = &nt;
    ASSERT_OK(akidb_import_parquet(db, "copy", file, &o, NULL));
    akidb_collection_config got;
    got.version = AKIDB_COLLECTION_CONFIG_VERSION;
    ASSERT_OK(akidb_collection_info(db, "copy", &got));
    ASSERT_EQ(got.metric, AKIDB_METRIC_COSINE);
    ASSERT_EQ(got.hnsw_m, 8);
    ASSERT_EQ(got.ef_construction, 64);
    ASSERT_EQ(got.ef_search, 33);
    ASSERT_HAS(nt.text, "created collection copy: dim 5, metric cosine, hnsw_m 8");
    ASSERT_EQ(nt.n_warn, 0);
    /* the same answers as the source */
    akidb_hit a[5], b[5];
    uint32_t na, nb;
    akidb_search_params p;
    akidb_search_params_init(&p);
    p.exact = 1;
    ASSERT_OK(akidb_search(db, "src", vec + 17 * DIM, 5, &p, a, &na));
    ASSERT_OK(akidb_search(db, "copy", vec + 17 * DIM, 5, &p, b, &nb));
    ASSERT_EQ(na, nb);
    for (uint32_t i = 0; i < na; i++)
        ASSERT_NEAR(a[i].distance, b[i].distance, 1e-5);

    /* a metric that contradicts the file, or an existing collection */
    o.metric = AKIDB_METRIC_L2;
    ASSERT_RC(akidb_import_parquet(db, "copy2", file, &o, NULL), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "metric l2 conflicts with the file's akidb.metric cosine");
    assert_no_collection(db, "copy2");
    akidb_collection_config_init(&cfg, DIM, AKIDB_METRIC_L2);
    ASSERT_OK(akidb_collection_create(db, "l2c", &cfg));
    o.metric = AKIDB_METRIC_DOT;
    ASSERT_RC(akidb_import_parquet(db, "l2c", file, &o, NULL), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "metric dot conflicts with collection l2c, which uses l2");
    ASSERT_EQ(count_of(db, "l2c"), 0);
    /* no metric given: into the existing collection, with a warning */
    o.metric = 0;
    nt.len = 0;
    nt.n_warn = 0;
    ASSERT_OK(akidb_import_parquet(db, "l2c", file, &o, NULL));
    ASSERT_EQ(count_of(db, "l2c"), N);
    ASSERT_EQ(nt.n_warn, 1);
    ASSERT_HAS(nt.text, "WARN ");
    ASSERT_HAS(nt.text, "exported from a cosine collection");
    /* an explicit metric that matches is fine */
    o.metric = AKIDB_METRIC_COSINE;
    ASSERT_OK(akidb_import_parquet(db, "copy3", file, &o, NULL));
    ASSERT_OK(akidb_close(db));
    free_strings(ids, N);
    free(vec);
    free(file);
}

/* Storage kinds (options version 3): a new collection takes the file's
 * akidb.storage (an int8 collection's export says int8), or the storage,
 * exact and rerank asked for; into an existing collection only its own
 * kind is accepted; unknown values are refused before anything is read. */
TEST(import_storage_kind)
{
    enum { N = 300, DIM = 8 };
    float *vec = make_vectors(N, DIM, 9);
    akidb *db = open_db("db");
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, DIM, AKIDB_METRIC_L2);
    cfg.storage = AKIDB_STORAGE_INT8;
    ASSERT_OK(akidb_collection_create(db, "i8", &cfg));
    ASSERT_OK(akidb_insert(db, "i8", N, vec, NULL, NULL, NULL));
    char *file = path_in("i8.parquet");
    ASSERT_OK(akidb_export_parquet(db, "i8", file));

    notices nt;
    memset(&nt, 0, sizeof nt);
    akidb_import_options o;
    akidb_import_options_init(&o);
    ASSERT_EQ(o.storage, 0);
    ASSERT_EQ(o.exact, AKIDB_EXACT_RAM);
    ASSERT_EQ(o.rerank, 0);
    o.notice = notice_cb;
    o.notice_ctx = &nt;
    ASSERT_OK(akidb_import_parquet(db, "from_file", file, &o, NULL));
    akidb_collection_config got;
    got.version = AKIDB_COLLECTION_CONFIG_VERSION;
    ASSERT_OK(akidb_collection_info(db, "from_file", &got));
    ASSERT_EQ(got.storage, AKIDB_STORAGE_INT8);
    ASSERT_EQ(got.exact, AKIDB_EXACT_RAM);
    ASSERT_HAS(nt.text, "stores int8 (the file's akidb.storage)");

    o.storage = AKIDB_STORAGE_F16;
    o.exact = AKIDB_EXACT_FILE;
    o.rerank = 3;
    ASSERT_OK(akidb_import_parquet(db, "asked", file, &o, NULL));
    ASSERT_OK(akidb_collection_info(db, "asked", &got));
    ASSERT_EQ(got.storage, AKIDB_STORAGE_F16);
    ASSERT_EQ(got.exact, AKIDB_EXACT_FILE);
    ASSERT_EQ(got.rerank, 3);
    ASSERT_EQ(count_of(db, "asked"), N);

    /* into an existing collection: its own kind, or none named */
    o.storage = AKIDB_STORAGE_INT8;
    ASSERT_RC(akidb_import_parquet(db, "asked", file, &o, NULL), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "storage int8 conflicts with collection asked, which "
                                   "stores f16");
    ASSERT_EQ(count_of(db, "asked"), N);
    o.storage = 0;
    ASSERT_OK(akidb_import_parquet(db, "asked", file, &o, NULL));
    ASSERT_EQ(count_of(db, "asked"), 2 * N);

    o.storage = (akidb_storage)7;
    ASSERT_RC(akidb_import_parquet(db, "bad", file, &o, NULL), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "storage 7 is unknown");
    o.storage = 0;
    o.exact = (akidb_exact_vectors)5;
    ASSERT_RC(akidb_import_parquet(db, "bad", file, &o, NULL), AKIDB_INVALID);
    o.exact = AKIDB_EXACT_RAM;
    o.rerank = 65;
    ASSERT_RC(akidb_import_parquet(db, "bad", file, &o, NULL), AKIDB_INVALID);
    assert_no_collection(db, "bad");
    ASSERT_OK(akidb_close(db));
    free(vec);
    free(file);
}

/* A version 2 struct (before storage) is read by its size too. */
TEST(import_options_version_2_is_read_by_its_size)
{
    size_t v2_size = offsetof(akidb_import_options, storage);
    unsigned char *v2 = malloc(v2_size + 64);
    ASSERT(v2 != NULL);
    memset(v2, 0xA5, v2_size + 64);
    akidb_import_options_init_v((akidb_import_options *)v2, 2);
    for (size_t i = v2_size; i < v2_size + 64; i++)
        ASSERT_EQ(v2[i], 0xA5);
    enum { N = 20, DIM = 3 };
    float *vec = make_vectors(N, DIM, 10);
    tcolumn cols[] = { { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM } };
    char *file = path_in("v2.parquet");
    write_file(file, N, 16, cols, 1, NULL, NULL, 0);
    akidb *db = open_db("db");
    uint64_t rows = 0;
    ASSERT_OK(akidb_import_parquet(db, "c", file, (const akidb_import_options *)v2, &rows));
    ASSERT_EQ(rows, N);
    akidb_collection_config got;
    got.version = AKIDB_COLLECTION_CONFIG_VERSION;
    ASSERT_OK(akidb_collection_info(db, "c", &got));
    ASSERT_EQ(got.storage, AKIDB_STORAGE_F32);
    ASSERT_OK(akidb_close(db));
    free(v2);
    free(vec);
    free(file);
}

/* A program built against version 1 of akidb_import_options (no
 * skip_rows, notice, resume_row_out) passes a smaller struct: the library
 * must read only that much (ASan catches a read past it). */
TEST(import_options_version_1_is_read_by_its_size)
{
    enum { N = 40, DIM = 3 };
    float *vec = make_vectors(N, DIM, 8);
    tcolumn cols[] = { { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM } };
    char *file = path_in("v1.parquet");
    write_file(file, N, 16, cols, 1, NULL, NULL, 0);
    size_t v1_size = offsetof(akidb_import_options, skip_rows);
    /* its init writes the version-1 fields only: guard bytes after them */
    unsigned char *v1 = malloc(v1_size + 64);
    ASSERT(v1 != NULL);
    memset(v1, 0xA5, v1_size + 64);
    akidb_import_options_init_v((akidb_import_options *)v1, 1);
    for (size_t i = v1_size; i < v1_size + 64; i++)
        ASSERT_EQ(v1[i], 0xA5);
    akidb_import_options full;
    memcpy(&full, v1, v1_size);
    ASSERT_EQ(full.version, 1);
    ASSERT_STR_EQ(full.vector_column, "vector");
    ASSERT_EQ(full.metric, 0);
    full.metric = AKIDB_METRIC_DOT;
    memcpy(v1, &full, v1_size);
    akidb *db = open_db("db");
    uint64_t rows = 0;
    ASSERT_OK(akidb_import_parquet(db, "c", file, (const akidb_import_options *)v1, &rows));
    ASSERT_EQ(rows, N);
    akidb_collection_config got;
    got.version = AKIDB_COLLECTION_CONFIG_VERSION;
    ASSERT_OK(akidb_collection_info(db, "c", &got));
    ASSERT_EQ(got.metric, AKIDB_METRIC_DOT);
    full.version = AKIDB_IMPORT_OPTIONS_VERSION + 1;
    ASSERT_RC(akidb_import_parquet(db, "c", file, &full, &rows), AKIDB_INVALID);
    ASSERT_OK(akidb_close(db));
    free(v1);
    free(vec);
    free(file);
}

/* ---- item 13: the mapping ------------------------------------------------------ */

/* DuckDB tables have an `id` column more often than an `external_id`
 * one: it is the external id, so a second import does not double them. */
TEST(import_uses_a_column_named_id)
{
    enum { N = 500, DIM = 4 };
    float *vec = make_vectors(N, DIM, 9);
    int64_t idv[N];
    for (size_t i = 0; i < N; i++)
        idv[i] = (int64_t)i * 10;
    tcolumn cols[] = {
        { "id", AKIDB__PQ_INT64, NULL, NULL, idv, NULL, 0 },
        { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM },
    };
    char *file = path_in("id.parquet");
    write_file(file, N, 200, cols, 2, NULL, NULL, 0);
    akidb *db = open_db("db");
    notices nt;
    memset(&nt, 0, sizeof nt);
    akidb_import_options o;
    akidb_import_options_init(&o);
    o.notice = notice_cb;
    o.notice_ctx = &nt;
    ASSERT_OK(akidb_import_parquet(db, "c", file, &o, NULL));
    ASSERT_HAS(nt.text, "column \"id\" (INT64) -> external ids");
    ASSERT_HAS(nt.text, "no \"external_id\" column");
    ASSERT_OK(akidb_import_parquet(db, "c", file, &o, NULL));
    ASSERT_EQ(count_of(db, "c"), N);
    ASSERT_EQ(nt.n_warn, 0);
    uint64_t id;
    ASSERT_OK(akidb_lookup(db, "c", "4990", &id));
    ASSERT_OK(akidb_close(db));
    free(vec);
    free(file);
}

/* Importing a file without external ids into a collection that has
 * documents adds them again: said before it happens. */
TEST(import_warns_when_a_reimport_duplicates)
{
    enum { N = 100, DIM = 4 };
    float *vec = make_vectors(N, DIM, 10);
    tcolumn cols[] = { { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM } };
    char *file = path_in("noid.parquet");
    write_file(file, N, 64, cols, 1, NULL, NULL, 0);
    akidb *db = open_db("db");
    notices nt;
    memset(&nt, 0, sizeof nt);
    akidb_import_options o;
    akidb_import_options_init(&o);
    o.notice = notice_cb;
    o.notice_ctx = &nt;
    ASSERT_OK(akidb_import_parquet(db, "c", file, &o, NULL));
    ASSERT_EQ(nt.n_warn, 0);
    ASSERT_HAS(nt.text, "no external id column");
    nt.len = 0;
    ASSERT_OK(akidb_import_parquet(db, "c", file, &o, NULL));
    ASSERT_EQ(nt.n_warn, 1);
    ASSERT_HAS(nt.text, "WARN collection c already holds 100 documents and 100 rows of the "
                        "file have no external id");
    ASSERT_HAS(nt.text, "importing the same file again adds them again");
    ASSERT_EQ(count_of(db, "c"), 2 * N);
    ASSERT_OK(akidb_close(db));
    free(vec);
    free(file);
}

/* A text column that holds JSON objects is JSON, not a JSON string inside
 * JSON; text that is not JSON stays a string, and the notice says why. */
TEST(import_text_column_holding_json)
{
    enum { N = 60, DIM = 3 };
    float *vec = make_vectors(N, DIM, 11);
    char **ids = make_strings(N, "doc-", "");
    char **meta = make_strings(N, "{\"n\":", ",\"tag\":\"t\"}");
    char **title = make_strings(N, "name ", "");
    char **mixed = make_strings(N, "{\"n\":", "}");
    char *om = mixed[7];
    mixed[7] = "oops";
    tcolumn cols[] = {
        { "external_id", AKIDB__PQ_STRING, ids, NULL, NULL, NULL, 0 },
        { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM },
        { "meta", AKIDB__PQ_STRING, meta, NULL, NULL, NULL, 0 },
        { "title", AKIDB__PQ_STRING, title, NULL, NULL, NULL, 0 },
        { "mixed", AKIDB__PQ_STRING, mixed, NULL, NULL, NULL, 0 },
    };
    char *file = path_in("json.parquet");
    write_file(file, N, 25, cols, 5, NULL, NULL, 0);
    akidb *db = open_db("db");
    notices nt;
    memset(&nt, 0, sizeof nt);
    akidb_import_options o;
    akidb_import_options_init(&o);
    o.notice = notice_cb;
    o.notice_ctx = &nt;
    const char *one[] = { "meta" };
    o.metadata_columns = one;
    o.n_metadata_columns = 1;
    ASSERT_OK(akidb_import_parquet(db, "one", file, &o, NULL));
    char *m = metadata_of(db, "one", "doc-5");
    ASSERT_STR_EQ(m, "{\"n\":5,\"tag\":\"t\"}");
    akidb_free(m);
    ASSERT_HAS(nt.text, "column \"meta\" (STRING, BYTE_ARRAY), holding JSON -> metadata, as it is");

    const char *two[] = { "meta", "title" };
    o.metadata_columns = two;
    o.n_metadata_columns = 2;
    ASSERT_OK(akidb_import_parquet(db, "two", file, &o, NULL));
    m = metadata_of(db, "two", "doc-5");
    ASSERT_STR_EQ(m, "{\"meta\":{\"n\":5,\"tag\":\"t\"},\"title\":\"name 5\"}");
    akidb_free(m);

    const char *mix[] = { "mixed" };
    o.metadata_columns = mix;
    o.n_metadata_columns = 1;
    nt.len = 0;
    ASSERT_OK(akidb_import_parquet(db, "mix", file, &o, NULL));
    m = metadata_of(db, "mix", "doc-5");
    ASSERT_STR_EQ(m, "{\"mixed\":\"{\\\"n\\\":5}\"}");
    akidb_free(m);
    ASSERT_HAS(nt.text, "holding text (file row 7 is not a JSON object or array)");
    mixed[7] = om;
    ASSERT_OK(akidb_close(db));
    free_strings(mixed, N);
    free_strings(title, N);
    free_strings(meta, N);
    free_strings(ids, N);
    free(vec);
    free(file);
}

/* ---- the handle's allocator ----------------------------------------------------- */

typedef struct counting {
    atomic_ulong calls, bytes;
    unsigned long fail_at;      /* 1-based call to fail; 0 = none */
    atomic_long live;
} counting;

#define HDR sizeof(max_align_t)

static void *c_malloc(void *ctx, size_t n)
{
    counting *c = ctx;
    unsigned long k = atomic_fetch_add(&c->calls, 1) + 1;
    if (c->fail_at && k == c->fail_at)
        return NULL;
    unsigned char *p = malloc(n + HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    atomic_fetch_add(&c->bytes, n);
    atomic_fetch_add(&c->live, 1);
    return p + HDR;
}

static void c_free(void *ctx, void *p)
{
    counting *c = ctx;
    if (!p)
        return;
    atomic_fetch_sub(&c->live, 1);
    free((unsigned char *)p - HDR);
}

static void *c_realloc(void *ctx, void *p, size_t n)
{
    counting *c = ctx;
    if (!p)
        return c_malloc(ctx, n);
    unsigned long k = atomic_fetch_add(&c->calls, 1) + 1;
    if (c->fail_at && k == c->fail_at)
        return NULL;
    unsigned char *q = realloc((unsigned char *)p - HDR, n + HDR);
    if (!q)
        return NULL;
    memcpy(q, &n, sizeof n);
    atomic_fetch_add(&c->bytes, n);
    return q + HDR;
}

/* The decoded file goes through the handle's allocator (it did not: the
 * reader used the C library's), and running out of it anywhere in an
 * import is AKIDB_NOMEM with the collection holding exactly the rows
 * reported. */
TEST_TIMEOUT(import_allocates_through_the_handle, 240)
{
    enum { N = 4000, DIM = 32 };
    float *vec = make_vectors(N, DIM, 12);
    vec[0] = NAN;   /* refused at once: nothing of the insert path runs */
    tcolumn cols[] = { { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM } };
    char *file = path_in("alloc.parquet");
    write_file(file, N, N, cols, 1, NULL, NULL, 0);
    counting cnt;
    memset(&cnt, 0, sizeof cnt);
    akidb_allocator al = { c_malloc, c_realloc, c_free, &cnt };
    akidb_options opts;
    akidb_options_init(&opts);
    opts.allocator = &al;
    opts.sync_mode = AKIDB_SYNC_NONE;
    char *dir = path_in("db");
    akidb *db;
    ASSERT_OK(akidb_open(dir, &opts, &db));
    unsigned long before = atomic_load(&cnt.bytes);
    ASSERT_RC(akidb_import_parquet(db, "c", file, NULL, NULL), AKIDB_INVALID);
    ASSERT_GE((double)(atomic_load(&cnt.bytes) - before), (double)N * DIM * sizeof(float));

    /* fail each allocation of a small import in turn */
    enum { M = 120, MD = 4 };
    float *small = make_vectors(M, MD, 13);
    char **ids = make_strings(M, "doc-", "");
    char **meta = make_strings(M, "{\"n\":", "}");
    tcolumn scols[] = {
        { "external_id", AKIDB__PQ_STRING, ids, NULL, NULL, NULL, 0 },
        { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, small, MD },
        { "metadata", AKIDB__PQ_STRING, meta, NULL, NULL, NULL, 0 },
    };
    write_file(file, M, 50, scols, 3, NULL, NULL, 0);
    int completed = 0, n_nomem = 0;
    for (unsigned long k = 1; !completed && k < 100000; k++) {
        char coll[32];
        snprintf(coll, sizeof coll, "c%lu", k);
        unsigned long base = atomic_load(&cnt.calls);
        cnt.fail_at = base + k;
        uint64_t rows = 0;
        int rc = akidb_import_parquet(db, coll, file, NULL, &rows);
        cnt.fail_at = 0;
        if (rc == AKIDB_OK) {
            completed = atomic_load(&cnt.calls) < base + k;   /* never reached k */
            ASSERT_EQ(rows, M);
        } else {
            ASSERT_RC(rc, AKIDB_NOMEM);
            n_nomem++;
        }
        uint64_t n;
        int crc = akidb_collection_count(db, coll, &n);
        if (crc == AKIDB_OK) {
            ASSERT_EQ(n, rows);
            ASSERT_OK(akidb_collection_drop(db, coll));
        } else {
            ASSERT_RC(crc, AKIDB_NOTFOUND);
            ASSERT_EQ(rows, 0);
        }
    }
    ASSERT(completed);
    ASSERT_GE(n_nomem, 10);
    ASSERT_OK(akidb_close(db));
    ASSERT_EQ(atomic_load(&cnt.live), 0);
    free_strings(meta, M);
    free_strings(ids, M);
    free(small);
    free(vec);
    free(file);
    free(dir);
}

/* ---- files DuckDB writes ---------------------------------------------------------- */

static const char *src_dir(void)
{
    const char *d = getenv("AKIDB_SRCDIR");
    return d && d[0] ? d : ".";
}

/* Run DuckDB statements through the interop harness (npm packages). */
static void duckdb_sql(const char *sql)
{
    char script[1024];
    snprintf(script, sizeof script, "%s/scripts/parquet-interop.sh", src_dir());
    if (access(script, X_OK) != 0)
        akt_fail(__FILE__, __LINE__, "%s is missing (run from the repository root or set "
                 "AKIDB_SRCDIR)", script);
    size_t len = strlen(script) + strlen(sql) * 4 + 64;
    char *cmd = malloc(len);
    ASSERT(cmd != NULL);
    /* single-quote sql for the shell */
    size_t o = (size_t)snprintf(cmd, len, "'%s' sql '", script);
    for (const char *p = sql; *p; p++) {
        if (*p == '\'') {
            memcpy(cmd + o, "'\\''", 4);
            o += 4;
        } else {
            cmd[o++] = *p;
        }
    }
    snprintf(cmd + o, len - o, "' >/dev/null");
    fflush(stdout);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        akt_fail(__FILE__, __LINE__, "DuckDB (scripts/parquet-interop.sh sql) failed with "
                 "status %d; this test needs node and the npm packages and does not pass "
                 "without them", st);
    free(cmd);
}

/* The file: 2,000 distinct ids, two of them 'k\0a' and 'k\0b',
 * and metadata 'x\0y', written by DuckDB. */
TEST_TIMEOUT(import_duckdb_nul_bytes, 180)
{
    char *file = path_in("duck_nul.parquet");
    char sql[2048];
    snprintf(sql, sizeof sql,
             "COPY (SELECT CASE WHEN i = 600 THEN 'k' || chr(0) || 'a' "
             "WHEN i = 601 THEN 'k' || chr(0) || 'b' ELSE 'id' || i END AS external_id, "
             "[i::FLOAT, 1.0, 2.0]::FLOAT[] AS vector, "
             "CASE WHEN i = 1500 THEN 'x' || chr(0) || 'y' ELSE '{\"n\":' || i || '}' END "
             "AS metadata FROM range(2000) t(i)) TO '%s' (FORMAT parquet)", file);
    duckdb_sql(sql);
    akidb *db = open_db("db");
    uint64_t rows = 9;
    ASSERT_RC(akidb_import_parquet(db, "c", file, NULL, &rows), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "file row 600, column \"external_id\": the external id "
                                   "holds a NUL byte");
    ASSERT_EQ(rows, 0);
    assert_no_collection(db, "c");
    /* the ids fixed, the metadata is next */
    snprintf(sql, sizeof sql,
             "COPY (SELECT 'id' || i AS external_id, [i::FLOAT, 1.0, 2.0]::FLOAT[] AS vector, "
             "CASE WHEN i = 1500 THEN 'x' || chr(0) || 'y' ELSE '{\"n\":' || i || '}' END "
             "AS metadata FROM range(2000) t(i)) TO '%s' (FORMAT parquet)", file);
    duckdb_sql(sql);
    ASSERT_RC(akidb_import_parquet(db, "c", file, NULL, &rows), AKIDB_INVALID);
    ASSERT_HAS(akidb_errmsg(NULL), "file row 1500, column \"metadata\"");
    ASSERT_HAS(akidb_errmsg(NULL), "NUL byte");
    assert_no_collection(db, "c");
    ASSERT_OK(akidb_close(db));
    free(file);
}

/* A DuckDB table with an `id` column and JSON in a VARCHAR column, as
 * people have them: imported twice, it is there once, with its metadata
 * as JSON. */
TEST_TIMEOUT(import_duckdb_id_and_json_text, 180)
{
    char *file = path_in("duck_json.parquet");
    char sql[1024];
    snprintf(sql, sizeof sql,
             "COPY (SELECT i AS id, [sin(i)::FLOAT, cos(i)::FLOAT, 1.0]::FLOAT[] AS vector, "
             "'{\"n\":' || i || ',\"tag\":\"t' || (i %% 3) || '\"}' AS meta "
             "FROM range(3000) t(i)) TO '%s' (FORMAT parquet)", file);
    duckdb_sql(sql);
    akidb *db = open_db("db");
    akidb_import_options o;
    akidb_import_options_init(&o);
    const char *cols[] = { "meta" };
    o.metadata_columns = cols;
    o.n_metadata_columns = 1;
    uint64_t rows = 0;
    ASSERT_OK(akidb_import_parquet(db, "c", file, &o, &rows));
    ASSERT_OK(akidb_import_parquet(db, "c", file, &o, &rows));
    ASSERT_EQ(rows, 3000);
    ASSERT_EQ(count_of(db, "c"), 3000);
    char *m = metadata_of(db, "c", "2024");
    ASSERT_STR_EQ(m, "{\"n\":2024,\"tag\":\"t2\"}");
    akidb_free(m);
    ASSERT_OK(akidb_close(db));
    free(file);
}

/* ---- a collection replaced under a running import ---------------------------------- */

typedef struct swapper {
    akidb *db;
    atomic_int stop;
    int swaps;
} swapper;

static void *swap_loop(void *arg)
{
    swapper *s = arg;
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 64, AKIDB_METRIC_L2);
    while (!atomic_load(&s->stop)) {
        usleep(3000);
        if (akidb_collection_drop(s->db, "c") == AKIDB_OK) {
            akidb_collection_create(s->db, "c", &cfg);
            s->swaps++;
        }
    }
    return NULL;
}

/* Another thread drops the collection and creates one of the same name
 * with a larger dimension while an import writes: the import must notice
 * (AKIDB_CONFLICT or AKIDB_NOTFOUND), never hand the new collection
 * vectors of the old length (a read past the batch, which ASan saw when
 * the import wrote through akidb_insert by name). */
TEST_TIMEOUT(import_collection_replaced_meanwhile, 180)
{
    /* Enough rows that the import outlasts the first swap: since inserts
     * no longer build the graph (issue 11), 20000 rows went in before the
     * swapper's first 20 ms were up, in all 5 rounds. */
    enum { N = 200000, DIM = 8 };
    float *vec = make_vectors(N, DIM, 14);
    tcolumn cols[] = { { "vector", AKIDB__PQ_FLOAT_LIST, NULL, NULL, NULL, vec, DIM } };
    char *file = path_in("race.parquet");
    write_file(file, N, 4096, cols, 1, NULL, NULL, 0);
    akidb *db = open_db("db");
    int conflicts = 0;
    for (int round = 0; round < 5; round++) {
        akidb_collection_config cfg;
        akidb_collection_config_init(&cfg, DIM, AKIDB_METRIC_L2);
        int rc = akidb_collection_create(db, "c", &cfg);
        if (rc == AKIDB_EXISTS) {
            ASSERT_OK(akidb_collection_drop(db, "c"));
            ASSERT_OK(akidb_collection_create(db, "c", &cfg));
        } else {
            ASSERT_OK(rc);
        }
        swapper s = { db, 0, 0 };
        pthread_t t;
        ASSERT_EQ(pthread_create(&t, NULL, swap_loop, &s), 0);
        uint64_t rows = 0;
        rc = akidb_import_parquet(db, "c", file, NULL, &rows);
        atomic_store(&s.stop, 1);
        ASSERT_EQ(pthread_join(t, NULL), 0);
        if (rc == AKIDB_INVALID) {
            /* replaced before the import began: the new one's dimension */
            ASSERT_HAS(akidb_errmsg(NULL), "the collection's dimension");
        } else if (rc != AKIDB_OK) {
            if (rc != AKIDB_NOTFOUND)
                ASSERT_RC(rc, AKIDB_CONFLICT);
            conflicts++;
        }
    }
    printf("  %d of 5 imports saw the collection replaced under them\n", conflicts);
    ASSERT_GE(conflicts, 1);
    ASSERT_OK(akidb_close(db));
    free(vec);
    free(file);
}
