/*
 * test_snapshot.c - snapshots end to end through the public API and the
 * `akidb` command-line tool: round trips with exact values and identical
 * search results, corruption that must leave the collection alone, the
 * fallback to the newest snapshot that verifies, list/delete, export and
 * import, inspect.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "akidb.h"
#include "common/crc.h"
#include "runner.h"
#include "helpers.h"

/* [-1, 1) in float arithmetic (not rand_sym, which rounds once: the
 * values this file was written with must not change). */
static float rng_float(uint64_t *s)
{
    return (float)rand_u01(s) * 2.0f - 1.0f;
}

static akidb *open_db(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", akt_dir, name);
    akidb_options o;
    akidb_options_init(&o);
    o.sync_mode = AKIDB_SYNC_NONE;
    akidb *db = NULL;
    ASSERT_OK(akidb_open(path, &o, &db));
    return db;
}

/* n documents of dim floats, with external ids and metadata; every 7th
 * has no external id, every 5th no metadata. */
static void fill(akidb *db, const char *coll, uint32_t n, uint32_t dim, akidb_metric metric,
                 uint64_t seed)
{
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, dim, metric);
    cfg.ef_construction = 64;
    ASSERT_OK(akidb_collection_create(db, coll, &cfg));
    const uint32_t batch = 500;
    float *v = malloc((size_t)batch * dim * sizeof *v);
    char (*ext)[32] = malloc((size_t)batch * 32);
    char (*meta)[96] = malloc((size_t)batch * 96);
    const char **ext_p = malloc(batch * sizeof *ext_p);
    const char **meta_p = malloc(batch * sizeof *meta_p);
    ASSERT(v && ext && meta && ext_p && meta_p);
    uint64_t s = seed;
    for (uint32_t at = 0; at < n; at += batch) {
        uint32_t m = n - at < batch ? n - at : batch;
        for (uint32_t i = 0; i < m; i++) {
            uint32_t row = at + i;
            for (uint32_t j = 0; j < dim; j++)
                v[(size_t)i * dim + j] = rng_float(&s);
            snprintf(ext[i], sizeof ext[i], "doc-%u", row);
            snprintf(meta[i], sizeof meta[i], "{\"row\": %u, \"name\": \"r\\u00e9sum\\u00e9 %u\"}",
                     row, row);
            ext_p[i] = row % 7 == 3 ? NULL : ext[i];
            meta_p[i] = row % 5 == 2 ? NULL : meta[i];
        }
        ASSERT_OK(akidb_insert(db, coll, m, v, ext_p, meta_p, NULL));
    }
    free(v);
    free(ext);
    free(meta);
    free(ext_p);
    free(meta_p);
}

/* Everything observable about a collection must be equal in a and b. */
static void assert_same(akidb *a, const char *ca, akidb *b, const char *cb, uint32_t n_queries)
{
    /* graph answers compare only once both graphs are complete */
    ASSERT_OK(akidb_index_wait(a, ca, AKIDB_NEVER));
    ASSERT_OK(akidb_index_wait(b, cb, AKIDB_NEVER));
    uint64_t na, nb;
    ASSERT_OK(akidb_collection_count(a, ca, &na));
    ASSERT_OK(akidb_collection_count(b, cb, &nb));
    ASSERT_EQ(na, nb);
    akidb_collection_config cfg;
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    ASSERT_OK(akidb_collection_info(a, ca, &cfg));
    float *qa = malloc(cfg.dim * sizeof *qa), *qb = malloc(cfg.dim * sizeof *qb);
    ASSERT(qa && qb);
    uint64_t s = 77;
    for (uint32_t q = 0; q < n_queries; q++) {
        for (uint32_t j = 0; j < cfg.dim; j++)
            qa[j] = rng_float(&s);
        akidb_hit ha[10], hb[10];
        uint32_t nha, nhb;
        akidb_search_params p;
        akidb_search_params_init(&p);
        for (int exact = 0; exact <= 1; exact++) {
            p.exact = exact;
            ASSERT_OK(akidb_search(a, ca, qa, 10, &p, ha, &nha));
            ASSERT_OK(akidb_search(b, cb, qa, 10, &p, hb, &nhb));
            ASSERT_EQ(nha, nhb);
            for (uint32_t i = 0; i < nha; i++) {
                ASSERT_EQ(ha[i].id, hb[i].id);
                ASSERT_EQ(ha[i].distance == hb[i].distance, 1);
            }
        }
        /* and the documents behind the hits, bit for bit */
        for (uint32_t i = 0; i < nha; i++) {
            char *ma = NULL, *mb = NULL;
            ASSERT_OK(akidb_get(a, ca, ha[i].id, qa, &ma));
            ASSERT_OK(akidb_get(b, cb, ha[i].id, qb, &mb));
            ASSERT(memcmp(qa, qb, cfg.dim * sizeof *qa) == 0);
            ASSERT((ma == NULL) == (mb == NULL));
            if (ma)
                ASSERT_STR_EQ(ma, mb);
            akidb_free(ma);
            akidb_free(mb);
        }
    }
    free(qa);
    free(qb);
}

/* Search results of n_queries seeded queries: HNSW then exact, k = 10. */
typedef struct results {
    akidb_hit hits[2][64][10];
    uint32_t n[2][64];
} results;

static void record(akidb *db, const char *coll, uint32_t dim, uint32_t n_queries, results *r)
{
    /* the answers of the complete graph, whenever the indexer ran */
    ASSERT_OK(akidb_index_wait(db, coll, AKIDB_NEVER));
    float *q = malloc(dim * sizeof *q);
    ASSERT(q != NULL && n_queries <= 64);
    uint64_t s = 4242;
    akidb_search_params p;
    akidb_search_params_init(&p);
    for (uint32_t i = 0; i < n_queries; i++) {
        for (uint32_t j = 0; j < dim; j++)
            q[j] = rng_float(&s);
        for (int exact = 0; exact <= 1; exact++) {
            p.exact = exact;
            ASSERT_OK(akidb_search(db, coll, q, 10, &p, r->hits[exact][i], &r->n[exact][i]));
        }
    }
    free(q);
}

static void assert_results_equal(const results *a, const results *b, uint32_t n_queries,
                                 int modes)
{
    for (int exact = 2 - modes; exact <= 1; exact++)
        for (uint32_t i = 0; i < n_queries; i++) {
            ASSERT_EQ(a->n[exact][i], b->n[exact][i]);
            for (uint32_t k = 0; k < a->n[exact][i]; k++) {
                ASSERT_EQ(a->hits[exact][i][k].id, b->hits[exact][i][k].id);
                ASSERT_EQ(a->hits[exact][i][k].distance == b->hits[exact][i][k].distance, 1);
            }
        }
}

TEST_TIMEOUT(snapshot_roundtrip_10k_512, 240)
{
    akidb *db = open_db("db");
    fill(db, "c", 10000, 512, AKIDB_METRIC_L2, 1);
    static results before, after;
    record(db, "c", 512, 25, &before);
    char id[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_OK(akidb_snapshot_create(db, "c", id, sizeof id));
    akidb_snapshot_info **info;
    size_t n;
    ASSERT_OK(akidb_snapshot_list(db, "c", &info, &n));
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(info[0]->id, id);
    ASSERT_EQ(info[0]->rows, 10000);
    ASSERT(info[0]->bytes > 10000ull * 512 * 3);   /* floats barely compress */
    ASSERT_EQ(strlen(info[0]->sha256), 64);
    akidb_free(info);
    /* an untouched copy to compare documents with */
    akidb *ref = open_db("ref");
    fill(ref, "c", 10000, 512, AKIDB_METRIC_L2, 1);

    /* change the collection, then restore: the changes are gone and every
     * search answers exactly as before (same graph, same ids, same
     * distances) */
    for (uint64_t d = 1; d <= 10000; d += 50)
        ASSERT_OK(akidb_delete(db, "c", d));
    float junk[512] = { 0 };
    junk[0] = 1;
    ASSERT_OK(akidb_insert(db, "c", 1, junk, NULL, NULL, NULL));
    ASSERT_OK(akidb_snapshot_restore(db, "c", id));
    record(db, "c", 512, 25, &after);
    assert_results_equal(&before, &after, 25, 2);
    assert_same(db, "c", ref, "c", 25);
    /* the restore is durable: reopen and compare again */
    ASSERT_OK(akidb_close(db));
    db = open_db("db");
    record(db, "c", 512, 25, &after);
    assert_results_equal(&before, &after, 25, 2);
    /* writes after a restore get fresh ids above every restored id */
    uint64_t new_id;
    ASSERT_OK(akidb_insert(db, "c", 1, junk, NULL, NULL, &new_id));
    ASSERT(new_id > 10000);
    ASSERT_OK(akidb_close(db));
    ASSERT_OK(akidb_close(ref));
}

/* HNSW recall@10 against the exact answers of the same queries. */
static double recall(const results *r, uint32_t n_queries)
{
    uint32_t found = 0, total = 0;
    for (uint32_t i = 0; i < n_queries; i++)
        for (uint32_t k = 0; k < r->n[1][i]; k++, total++)
            for (uint32_t j = 0; j < r->n[0][i]; j++)
                if (r->hits[0][i][j].id == r->hits[1][i][k].id) {
                    found++;
                    break;
                }
    return total ? (double)found / total : 1.0;
}

/* Tombstones are not written: exact answers stay identical, the graph
 * keeps its quality. */
TEST_TIMEOUT(snapshot_with_tombstones, 120)
{
    akidb *db = open_db("db");
    fill(db, "c", 4000, 32, AKIDB_METRIC_L2, 8);
    for (uint64_t d = 1; d <= 4000; d += 3)
        ASSERT_OK(akidb_delete(db, "c", d));
    static results before, after;
    record(db, "c", 32, 40, &before);
    char id[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_OK(akidb_snapshot_create(db, "c", id, sizeof id));
    ASSERT_OK(akidb_snapshot_restore(db, "c", id));
    record(db, "c", 32, 40, &after);
    assert_results_equal(&before, &after, 40, 1);   /* exact mode */
    double r_before = recall(&before, 40), r_after = recall(&after, 40);
    fprintf(stderr, "  recall@10 with 1/3 tombstones: %.4f before, %.4f after the restore\n",
            r_before, r_after);
    /* dropping tombstones removes some shortcuts: allow a small loss only */
    ASSERT_GE(r_after, r_before - 0.03);
    ASSERT_GE(r_after, 0.90);
    ASSERT_OK(akidb_close(db));
}

TEST(snapshot_every_metric_and_reopen)
{
    akidb_metric metrics[] = { AKIDB_METRIC_L2, AKIDB_METRIC_COSINE, AKIDB_METRIC_DOT };
    for (int m = 0; m < 3; m++) {
        char name[32];
        snprintf(name, sizeof name, "db%d", m);
        akidb *db = open_db(name);
        fill(db, "c", 1500, 24, metrics[m], 10 + (uint64_t)m);
        char id[AKIDB_SNAPSHOT_ID_LEN];
        ASSERT_OK(akidb_snapshot_create(db, "c", id, sizeof id));
        snprintf(name, sizeof name, "ref%d", m);
        akidb *ref = open_db(name);
        fill(ref, "c", 1500, 24, metrics[m], 10 + (uint64_t)m);
        for (uint64_t d = 1; d <= 300; d++)
            ASSERT_OK(akidb_delete(db, "c", d));
        ASSERT_OK(akidb_snapshot_restore(db, "c", NULL));
        assert_same(db, "c", ref, "c", 20);
        ASSERT_OK(akidb_close(db));
        ASSERT_OK(akidb_close(ref));
    }
}

static void flip_byte(const char *path, long offset)
{
    FILE *f = fopen(path, "r+b");
    ASSERT(f != NULL);
    ASSERT_EQ(fseek(f, offset, offset < 0 ? SEEK_END : SEEK_SET), 0);
    int ch = fgetc(f);
    ASSERT(ch != EOF);
    ASSERT_EQ(fseek(f, -1, SEEK_CUR), 0);
    fputc(ch ^ 0x5a, f);
    ASSERT_EQ(fclose(f), 0);
}

TEST(snapshot_corrupt_is_refused_and_falls_back)
{
    akidb *db = open_db("db");
    fill(db, "c", 800, 16, AKIDB_METRIC_L2, 3);
    char good[AKIDB_SNAPSHOT_ID_LEN], bad[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_OK(akidb_snapshot_create(db, "c", good, sizeof good));
    ASSERT_OK(akidb_delete(db, "c", 1));
    ASSERT_OK(akidb_snapshot_create(db, "c", bad, sizeof bad));
    akidb_snapshot_info **info;
    size_t n;
    ASSERT_OK(akidb_snapshot_list(db, "c", &info, &n));
    ASSERT_EQ(n, 2);
    ASSERT_STR_EQ(info[0]->id, bad);   /* newest first */
    char path[2048];
    snprintf(path, sizeof path, "%s/db/objects/%s", akt_dir, info[0]->key);
    akidb_free(info);
    flip_byte(path, 200);

    /* explicit id: refused, the collection untouched */
    ASSERT_OK(akidb_delete(db, "c", 2));
    ASSERT_RC(akidb_snapshot_restore(db, "c", bad), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "SHA-256") != NULL);
    uint64_t count;
    ASSERT_OK(akidb_collection_count(db, "c", &count));
    ASSERT_EQ(count, 798);
    /* no id: the newest that verifies (the older one) */
    ASSERT_OK(akidb_snapshot_restore(db, "c", NULL));
    ASSERT_OK(akidb_collection_count(db, "c", &count));
    ASSERT_EQ(count, 800);
    ASSERT_RC(akidb_snapshot_restore(db, "c", "no-such-id"), AKIDB_NOTFOUND);

    /* delete: the object and the entry */
    ASSERT_OK(akidb_snapshot_delete(db, "c", bad));
    struct stat st;
    ASSERT_NE(stat(path, &st), 0);
    ASSERT_RC(akidb_snapshot_delete(db, "c", bad), AKIDB_NOTFOUND);
    ASSERT_OK(akidb_snapshot_list(db, "c", &info, &n));
    ASSERT_EQ(n, 1);
    akidb_free(info);
    ASSERT_OK(akidb_close(db));
}

TEST(snapshot_argument_checks)
{
    akidb *db = open_db("db");
    fill(db, "c", 10, 4, AKIDB_METRIC_L2, 4);
    char small[8];
    ASSERT_RC(akidb_snapshot_create(db, "c", small, sizeof small), AKIDB_INVALID);
    ASSERT_RC(akidb_snapshot_create(db, "nope", NULL, 0), AKIDB_NOTFOUND);
    ASSERT_RC(akidb_snapshot_create(NULL, "c", NULL, 0), AKIDB_MISUSE);
    ASSERT_RC(akidb_snapshot_restore(db, "c", NULL), AKIDB_NOTFOUND);   /* none yet */
    akidb_snapshot_info **info = (akidb_snapshot_info **)1;
    size_t n = 9;
    ASSERT_OK(akidb_snapshot_list(db, "c", &info, &n));
    ASSERT_EQ(n, 0);
    ASSERT(info == NULL);
    ASSERT_OK(akidb_snapshot_create(db, "c", NULL, 0));
    ASSERT_OK(akidb_close(db));
}

TEST(snapshot_export_import_inspect)
{
    akidb *db = open_db("db");
    fill(db, "src", 1200, 12, AKIDB_METRIC_COSINE, 5);
    char file[512];
    snprintf(file, sizeof file, "%s/export.parquet", akt_dir);
    ASSERT_OK(akidb_export_parquet(db, "src", file));
    char *text = NULL;
    ASSERT_OK(akidb_parquet_inspect(file, &text));
    ASSERT(strstr(text, "vector") && strstr(text, "external_id") && strstr(text, "metadata"));
    ASSERT(strstr(text, "ZSTD") != NULL);
    akidb_free(text);
    /* import into a new collection: created with the file's dimension */
    akidb_import_options o;
    akidb_import_options_init(&o);
    o.metric = AKIDB_METRIC_COSINE;
    uint64_t rows = 0;
    ASSERT_OK(akidb_import_parquet(db, "copy", file, &o, &rows));
    ASSERT_EQ(rows, 1200);
    akidb_collection_config cfg;
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    ASSERT_OK(akidb_collection_info(db, "copy", &cfg));
    ASSERT_EQ(cfg.dim, 12);
    /* every document came across: external ids, vectors, metadata */
    for (uint32_t row = 0; row < 1200; row += 37) {
        char ext[32];
        snprintf(ext, sizeof ext, "doc-%u", row);
        uint64_t a, b;
        if (row % 7 == 3)
            continue;
        ASSERT_OK(akidb_lookup(db, "src", ext, &a));
        ASSERT_OK(akidb_lookup(db, "copy", ext, &b));
        float va[12], vb[12];
        char *ma = NULL, *mb = NULL;
        ASSERT_OK(akidb_get(db, "src", a, va, &ma));
        ASSERT_OK(akidb_get(db, "copy", b, vb, &mb));
        for (int j = 0; j < 12; j++)
            ASSERT_NEAR(va[j], vb[j], 1e-6);
        ASSERT((ma == NULL) == (mb == NULL));
        if (ma)
            ASSERT_STR_EQ(ma, mb);
        akidb_free(ma);
        akidb_free(mb);
    }
    /* re-import upserts by external id instead of failing */
    ASSERT_OK(akidb_import_parquet(db, "copy", file, &o, &rows));
    uint64_t count;
    ASSERT_OK(akidb_collection_count(db, "copy", &count));
    ASSERT_EQ(count, 1200 - 1200 / 7 + 1200 / 7 * 2 + (1200 % 7 > 3));
    /* wrong column names and types are named */
    o.vector_column = "nope";
    ASSERT_RC(akidb_import_parquet(db, "copy", file, &o, &rows), AKIDB_INVALID);
    ASSERT(strstr(akidb_errmsg(NULL), "nope") != NULL);
    o.vector_column = "external_id";
    ASSERT_RC(akidb_import_parquet(db, "copy", file, &o, &rows), AKIDB_INVALID);
    /* a file that is not Parquet */
    char junk[512];
    snprintf(junk, sizeof junk, "%s/junk.parquet", akt_dir);
    FILE *f = fopen(junk, "wb");
    ASSERT(f != NULL);
    fputs("this is not a parquet file at all", f);
    fclose(f);
    ASSERT_RC(akidb_parquet_inspect(junk, &text), AKIDB_CORRUPT);
    ASSERT_OK(akidb_close(db));
}

/* The CLI, run as a user would. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(snapshot_cli)
{
    const char *tool = akt_tool_path();
    akidb *db = open_db("db");
    fill(db, "c", 300, 8, AKIDB_METRIC_L2, 6);
    ASSERT_OK(akidb_close(db));
    const char *d = akt_dir;
    ASSERT_EQ(run("%s export --db %s/db --collection c --parquet %s/out.parquet >/dev/null",
                  tool, d, d), 0);
    ASSERT_EQ(run("%s inspect %s/out.parquet | grep -q 'LIST<FLOAT>'", tool, d), 0);
    ASSERT_EQ(run("%s import --db %s/db --collection c2 --parquet %s/out.parquet "
                  "--metadata-columns id,inserted_at >/dev/null", tool, d, d), 0);
    ASSERT_EQ(run("%s snapshot create --db %s/db --collection c2 > %s/id.txt", tool, d, d), 0);
    ASSERT_EQ(run("%s snapshot list --db %s/db --collection c2 | grep -q \"$(cat %s/id.txt)\"",
                  tool, d, d), 0);
    ASSERT_EQ(run("%s snapshot restore --db %s/db --collection c2 >/dev/null", tool, d), 0);
    ASSERT_EQ(run("%s snapshot delete --db %s/db --collection c2 --id \"$(cat %s/id.txt)\" "
                  ">/dev/null", tool, d, d), 0);
    /* errors: exit 1 with the code's name; usage: exit 2 */
    ASSERT_EQ(run("%s export --db %s/db --collection missing --parquet %s/x.parquet "
                  "2>%s/err.txt", tool, d, d, d), 1);
    ASSERT_EQ(run("grep -q 'AKIDB_NOTFOUND' %s/err.txt", d), 0);
    ASSERT_EQ(run("%s import --db %s/db 2>/dev/null", tool, d), 2);
    ASSERT_EQ(run("%s bogus 2>/dev/null", tool), 2);
    db = open_db("db");
    uint64_t n;
    ASSERT_OK(akidb_collection_count(db, "c2", &n));
    ASSERT_EQ(n, 300);
    /* --metadata-columns built a JSON object from the named columns */
    char *meta = NULL;
    ASSERT_OK(akidb_get(db, "c2", 1, NULL, &meta));
    ASSERT(meta && strstr(meta, "\"id\":") && strstr(meta, "\"inserted_at\":"));
    akidb_free(meta);
    ASSERT_OK(akidb_close(db));
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f != NULL);
    ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ASSERT(n > 0);
    rewind(f);
    unsigned char *p = malloc((size_t)n);
    ASSERT(p != NULL);
    ASSERT_EQ(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void spill(const char *path, const unsigned char *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(p, 1, len, f), len);
    ASSERT_EQ(fclose(f), 0);
}

/*
 * The log's checkpoint is a Parquet file of the snapshot format: it keeps
 * tombstones (flagged, so an import skips them) and reopens into the same
 * graph; damage anywhere, the footer included, is refused.
 */
TEST_TIMEOUT(snapshot_checkpoint_is_parquet, 120)
{
    akidb *db = open_db("db");
    fill(db, "c", 2000, 16, AKIDB_METRIC_L2, 11);
    for (uint32_t row = 0; row < 2000; row += 4) {
        char ext[32];
        uint64_t id;
        snprintf(ext, sizeof ext, "doc-%u", row);
        if (row % 7 == 3)
            continue;
        ASSERT_OK(akidb_lookup(db, "c", ext, &id));
        ASSERT_OK(akidb_delete(db, "c", id));
    }
    uint64_t live;
    ASSERT_OK(akidb_collection_count(db, "c", &live));
    results before, after;
    record(db, "c", 16, 40, &before);
    ASSERT_OK(akidb_close(db));   /* checkpoints */

    char ckpt[512];
    snprintf(ckpt, sizeof ckpt, "%s/db/ckpt/1.ckpt", akt_dir);
    char *text = NULL;
    ASSERT_OK(akidb_parquet_inspect(ckpt, &text));
    ASSERT(strstr(text, "hnsw_deleted") && strstr(text, "hnsw_links") && strstr(text, "vector"));
    ASSERT(strstr(text, "checkpoint") && strstr(text, "akidb.last_seq"));
    akidb_free(text);

    /* reopened: the same graph, so the same answers, HNSW and exact */
    db = open_db("db");
    record(db, "c", 16, 40, &after);
    assert_results_equal(&before, &after, 40, 2);
    uint64_t count;
    ASSERT_OK(akidb_collection_count(db, "c", &count));
    ASSERT_EQ(count, live);
    ASSERT_OK(akidb_close(db));

    /* an import of the checkpoint brings back the live documents only */
    akidb *other = open_db("other");
    akidb_import_options o;
    akidb_import_options_init(&o);
    uint64_t rows = 0;
    ASSERT_OK(akidb_import_parquet(other, "imp", ckpt, &o, &rows));
    ASSERT_EQ(rows, live);
    ASSERT_OK(akidb_collection_count(other, "imp", &count));
    ASSERT_EQ(count, live);
    uint64_t id;
    ASSERT_RC(akidb_lookup(other, "imp", "doc-4", &id), AKIDB_NOTFOUND);
    ASSERT_OK(akidb_lookup(other, "imp", "doc-5", &id));
    ASSERT_OK(akidb_close(other));

    /* a digit of akidb.last_seq changed in the footer, where no page CRC
     * reaches: refused by the whole-file checksum */
    size_t len;
    unsigned char *orig = slurp(ckpt, &len);
    unsigned char *bad = malloc(len);
    ASSERT(bad != NULL);
    memcpy(bad, orig, len);
    static const char key[] = "akidb.last_seq";
    unsigned char *at = memmem(bad, len, key, sizeof key - 1);
    ASSERT(at != NULL);
    unsigned char *digit = at + sizeof key - 1 + 2;   /* field header, length */
    ASSERT(*digit >= '0' && *digit <= '9');
    *digit = *digit == '9' ? '1' : (unsigned char)(*digit + 1);
    spill(ckpt, bad, len);
    char path[512];
    snprintf(path, sizeof path, "%s/db", akt_dir);
    akidb_options opts;
    akidb_options_init(&opts);
    ASSERT_RC(akidb_open(path, &opts, &db), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "checksum") && strstr(akidb_errmsg(NULL), "1.ckpt"));

    /* a page byte: the same */
    memcpy(bad, orig, len);
    bad[len / 3] ^= 0x10;
    spill(ckpt, bad, len);
    ASSERT_RC(akidb_open(path, &opts, &db), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "1.ckpt") != NULL);

    /* cut short */
    spill(ckpt, orig, len - 100);
    ASSERT_RC(akidb_open(path, &opts, &db), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "1.ckpt") != NULL);

    /* the binary format of pre-release builds is named, not misread */
    memcpy(bad, orig, len);
    memcpy(bad, "AKIDBCKP", 8);
    spill(ckpt, bad, len);
    ASSERT_RC(akidb_open(path, &opts, &db), AKIDB_INVALID);
    ASSERT(strstr(akidb_errmsg(NULL), "pre-release") != NULL);

    /* and the original still opens */
    spill(ckpt, orig, len);
    ASSERT_OK(akidb_open(path, &opts, &db));
    ASSERT_OK(akidb_collection_count(db, "c", &count));
    ASSERT_EQ(count, live);
    ASSERT_OK(akidb_close(db));
    free(orig);
    free(bad);
}

/* Put a valid whole-file CRC-32C over the akidb.file_crc32c digits of the
 * checkpoint in buf (docs/FORMATS.md: computed with the digits "00000000"). */
static void reseal_checkpoint(unsigned char *buf, size_t len)
{
    static const char marker[] = "akidb.file_crc32c\x18\x08";
    unsigned char *at = memmem(buf, len, marker, sizeof marker - 1);
    ASSERT(at != NULL);
    unsigned char *digits = at + sizeof marker - 1;
    memcpy(digits, "00000000", 8);
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", (unsigned)akidb__crc32c(0, buf, len));
    memcpy(digits, hex, 8);
}

/* A checkpoint a newer library wrote (another akidb.format, intact) is
 * refused as INVALID, not reported as damage; resealing alone changes
 * nothing (so the test's checksum is the library's). */
TEST(snapshot_checkpoint_of_newer_format_is_invalid)
{
    akidb *db = open_db("db");
    fill(db, "c", 50, 8, AKIDB_METRIC_L2, 5);
    /* every node linked, so the checkpoint is format 1 (a tail the
     * indexer had not reached would make it 2: a loaded machine did) */
    ASSERT_OK(akidb_index_wait(db, "c", AKIDB_NEVER));
    ASSERT_OK(akidb_close(db));   /* checkpoints */
    char ckpt[512], path[512];
    snprintf(ckpt, sizeof ckpt, "%s/db/ckpt/1.ckpt", akt_dir);
    snprintf(path, sizeof path, "%s/db", akt_dir);
    size_t len;
    unsigned char *orig = slurp(ckpt, &len);
    unsigned char *buf = malloc(len);
    ASSERT(buf != NULL);
    akidb_options opts;
    akidb_options_init(&opts);
    uint64_t count;

    memcpy(buf, orig, len);
    reseal_checkpoint(buf, len);
    ASSERT(memcmp(buf, orig, len) == 0);

    static const char key[] = "akidb.format\x18\x01";   /* then the one-byte value */
    unsigned char *at = memmem(buf, len, key, sizeof key - 1);
    ASSERT(at != NULL);
    ASSERT_EQ(at[sizeof key - 1], '1');
    at[sizeof key - 1] = '3';   /* "2" is a file with a graph tail (issue 11) */
    spill(ckpt, buf, len);
    ASSERT_RC(akidb_open(path, &opts, &db), AKIDB_CORRUPT);     /* not resealed: damage */
    reseal_checkpoint(buf, len);
    spill(ckpt, buf, len);
    ASSERT_RC(akidb_open(path, &opts, &db), AKIDB_INVALID);
    ASSERT(strstr(akidb_errmsg(NULL), "1.ckpt") && strstr(akidb_errmsg(NULL), "format 3"));

    spill(ckpt, orig, len);
    ASSERT_OK(akidb_open(path, &opts, &db));
    ASSERT_OK(akidb_collection_count(db, "c", &count));
    ASSERT_EQ(count, 50);
    ASSERT_OK(akidb_close(db));
    free(orig);
    free(buf);
}
