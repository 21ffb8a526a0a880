/*
 * test_quant_coll.c - f16 and int8 storage through the public API (issue
 * 16): the versioned config and its checks, round trips of every storage
 * kind through a checkpoint and reopen, a snapshot and restore, and a tier
 * cycle (HOT -> WARM -> COLD -> HOT on the mock store) with identical hits
 * and distances; recall with re-ranking against exact search on clustered
 * float data; exact returned distances; clipping counted; a checkpoint with
 * damaged quantiser parameters is AKIDB_CORRUPT naming the key.
 *
 * The index-level behaviour (kernels, training, the tail, exact modes) is
 * in test_quant.c; this file checks what a caller of akidb.h sees.
 */
#include "runner.h"
#include "helpers.h"

#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "akidb.h"
#include "common/crc.h"

static const char *errmsg_detail(void)
{
    return akidb_errmsg(NULL);
}

__attribute__((constructor)) static void set_detail(void)
{
    akt_rc_detail_fn = errmsg_detail;
}

/* ---- helpers ---------------------------------------------------------- */

/* n points around n_clusters gaussian centres (sigma around each); the
 * queries use the same centre_seed.  Values are not small integers. */
static float *clustered(uint64_t centre_seed, uint64_t seed, uint32_t n, uint32_t dim,
                        uint32_t n_clusters, double sigma)
{
    float *centres = malloc((size_t)n_clusters * dim * sizeof(float));
    float *v = malloc((size_t)n * dim * sizeof(float));
    ASSERT(centres != NULL && v != NULL);
    for (size_t i = 0; i < (size_t)n_clusters * dim; i++)
        centres[i] = (float)(3.0 * rand_gauss(&centre_seed));
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = rand_below(&seed, n_clusters);
        for (uint32_t d = 0; d < dim; d++)
            v[(size_t)i * dim + d] = centres[(size_t)c * dim + d] + (float)(sigma * rand_gauss(&seed));
    }
    free(centres);
    return v;
}

static akidb *open_db(akidb_store *store)
{
    char path[512];
    snprintf(path, sizeof path, "%s/db", akt_dir);
    akidb_options o;
    akidb_options_init(&o);
    o.store = store;
    o.sync_mode = AKIDB_SYNC_NONE;
    o.tier_interval_ms = AKIDB_NEVER;
    o.dlq_retry_interval_ms = AKIDB_NEVER;
    akidb *db = NULL;
    ASSERT_OK(akidb_open(path, &o, &db));
    return db;
}

static void create(akidb *db, const char *name, uint32_t dim, akidb_storage storage,
                   akidb_exact_vectors exact)
{
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, dim, AKIDB_METRIC_L2);
    cfg.hnsw_m = 12;
    cfg.ef_construction = 64;
    cfg.storage = storage;
    cfg.exact = exact;
    ASSERT_OK(akidb_collection_create(db, name, &cfg));
}

static void insert_all(akidb *db, const char *name, const float *v, uint32_t n, uint32_t dim)
{
    for (uint32_t i = 0; i < n; i += 1000) {
        uint32_t nb = n - i < 1000 ? n - i : 1000;
        ASSERT_OK(akidb_insert(db, name, nb, v + (size_t)i * dim, NULL, NULL, NULL));
    }
    ASSERT_OK(akidb_index_wait(db, name, 120000));
}

/* k hits for each of n_q queries at ef. */
static void search_all(akidb *db, const char *name, const float *qs, uint32_t n_q, uint32_t dim,
                       uint32_t k, uint32_t ef, akidb_hit *out)
{
    akidb_search_params p;
    akidb_search_params_init(&p);
    p.ef = ef;
    for (uint32_t q = 0; q < n_q; q++) {
        uint32_t nh = 0;
        ASSERT_OK(akidb_search(db, name, qs + (size_t)q * dim, k, &p, out + (size_t)q * k, &nh));
        ASSERT_EQ(nh, k);
    }
}

static void same_hits(const akidb_hit *a, const akidb_hit *b, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].id != b[i].id || memcmp(&a[i].distance, &b[i].distance, sizeof(float)) != 0)
            akt_fail(__FILE__, __LINE__, "%s: hit %zu is id %llu at %.9g, was id %llu at %.9g",
                     what, i, (unsigned long long)b[i].id, (double)b[i].distance,
                     (unsigned long long)a[i].id, (double)a[i].distance);
}

static double l2(const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    for (uint32_t d = 0; d < dim; d++) {
        double x = (double)a[d] - b[d];
        s += x * x;
    }
    return s;
}

static int64_t metric(akidb *db, const char *name)
{
    int64_t v = -1;
    ASSERT_OK(akidb_metric_value(db, name, &v));
    return v;
}

/* ---- the config -------------------------------------------------------- */

TEST(quant_config_versions_and_checks)
{
    akidb *db = open_db(NULL);
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 8, AKIDB_METRIC_COSINE);
    ASSERT_EQ(cfg.version, 2);
    ASSERT_EQ(cfg.storage, AKIDB_STORAGE_F32);
    ASSERT_EQ(cfg.exact, AKIDB_EXACT_RAM);
    ASSERT_EQ(cfg.rerank, 0);
    /* bad values name the field */
    cfg.storage = (akidb_storage)4;
    ASSERT_RC(akidb_collection_create(db, "a", &cfg), AKIDB_INVALID);
    ASSERT(strstr(akidb_errmsg(NULL), "storage 4") != NULL);
    cfg.storage = (akidb_storage)-1;
    ASSERT_RC(akidb_collection_create(db, "a", &cfg), AKIDB_INVALID);
    /* a zeroed struct with its version set by hand (the Go binding, the
     * server) makes an f32 collection */
    akidb_collection_config z;
    memset(&z, 0, sizeof z);
    z.version = AKIDB_COLLECTION_CONFIG_VERSION;
    z.dim = 4;
    z.metric = AKIDB_METRIC_L2;
    z.hnsw_m = 16;
    z.ef_construction = 100;
    z.ef_search = 32;
    ASSERT_OK(akidb_collection_create(db, "z", &z));
    akidb_collection_config zi;
    akidb_collection_config_init(&zi, 0, AKIDB_METRIC_L2);
    ASSERT_OK(akidb_collection_info(db, "z", &zi));
    ASSERT_EQ(zi.storage, AKIDB_STORAGE_F32);
    cfg.storage = AKIDB_STORAGE_INT8;
    cfg.exact = (akidb_exact_vectors)3;
    ASSERT_RC(akidb_collection_create(db, "a", &cfg), AKIDB_INVALID);
    ASSERT(strstr(akidb_errmsg(NULL), "exact 3") != NULL);
    cfg.exact = (akidb_exact_vectors)-1;
    ASSERT_RC(akidb_collection_create(db, "a", &cfg), AKIDB_INVALID);
    cfg.exact = AKIDB_EXACT_NONE;
    cfg.rerank = 65;
    ASSERT_RC(akidb_collection_create(db, "a", &cfg), AKIDB_INVALID);
    ASSERT(strstr(akidb_errmsg(NULL), "rerank 65") != NULL);
    cfg.rerank = 8;
    ASSERT_OK(akidb_collection_create(db, "a", &cfg));
    /* a version 1 struct (a program built against the old header): f32,
     * and the library neither reads nor writes past its end */
    struct {
        uint32_t version, dim;
        akidb_metric metric;
        uint32_t hnsw_m, ef_construction, ef_search;
        uint32_t guard[3];
    } v1;
    memset(&v1, 0xAB, sizeof v1);
    akidb_collection_config_init_v((akidb_collection_config *)(void *)&v1, 4, AKIDB_METRIC_L2, 1);
    ASSERT_EQ(v1.version, 1);
    ASSERT_EQ(v1.guard[0], 0xABABABABu);
    ASSERT_OK(akidb_collection_create(db, "b", (akidb_collection_config *)(void *)&v1));
    ASSERT_OK(akidb_collection_info(db, "a", (akidb_collection_config *)(void *)&v1));
    ASSERT_EQ(v1.dim, 8);
    ASSERT_EQ(v1.guard[0], 0xABABABABu);
    ASSERT_EQ(v1.guard[2], 0xABABABABu);
    ASSERT_OK(akidb_close(db));
    /* the kind comes back from the catalog */
    db = open_db(NULL);
    akidb_collection_config out;
    akidb_collection_config_init(&out, 0, AKIDB_METRIC_L2);
    ASSERT_OK(akidb_collection_info(db, "a", &out));
    ASSERT_EQ(out.storage, AKIDB_STORAGE_INT8);
    ASSERT_EQ(out.exact, AKIDB_EXACT_NONE);
    ASSERT_EQ(out.rerank, 8);
    ASSERT_EQ(out.metric, AKIDB_METRIC_COSINE);
    ASSERT_OK(akidb_collection_info(db, "b", &out));
    ASSERT_EQ(out.storage, AKIDB_STORAGE_F32);
    ASSERT_EQ(out.exact, AKIDB_EXACT_RAM);
    ASSERT_OK(akidb_close(db));
}

/* ---- round trips ------------------------------------------------------- */

#define RT_N 6000      /* past int8's 4096 training rows */
#define RT_DIM 24
#define RT_Q 30
#define RT_K 10

static void round_trip(akidb_storage storage, akidb_exact_vectors exact)
{
    akidb_store *st = NULL;
    ASSERT_OK(akidb_store_mock_open(&st));
    akidb *db = open_db(st);
    create(db, "c", RT_DIM, storage, exact);
    float *v = clustered(1, 2, RT_N, RT_DIM, 20, 1.0);
    float *qs = clustered(1, 3, RT_Q, RT_DIM, 20, 1.0);
    insert_all(db, "c", v, RT_N, RT_DIM);
    size_t nh = (size_t)RT_Q * RT_K;
    akidb_hit *h0 = malloc(nh * sizeof *h0), *h = malloc(nh * sizeof *h);
    ASSERT(h0 != NULL && h != NULL);
    if (exact == AKIDB_EXACT_FILE) {
        /* the hits from RAM copies, then the same from the file */
        akidb_hit *hr = malloc(nh * sizeof *hr);
        ASSERT(hr != NULL);
        search_all(db, "c", qs, RT_Q, RT_DIM, RT_K, 64, hr);
        ASSERT_OK(akidb_checkpoint(db, "c"));
        search_all(db, "c", qs, RT_Q, RT_DIM, RT_K, 64, h0);
        same_hits(hr, h0, nh, "read from the checkpoint file");
        free(hr);
    } else {
        search_all(db, "c", qs, RT_Q, RT_DIM, RT_K, 64, h0);
    }

    /* distances: exact (the f32 distance of the returned ids) with exact
     * vectors; approximate but close without */
    double max_err = 0;
    for (size_t i = 0; i < nh; i++) {
        float got[RT_DIM];
        ASSERT_OK(akidb_get(db, "c", h0[i].id, got, NULL));
        const float *orig = v + (size_t)(h0[i].id - 1) * RT_DIM;   /* ids from 1 */
        double truth = l2(qs + (i / RT_K) * RT_DIM, orig, RT_DIM);
        double err = fabs(h0[i].distance - truth) / (truth > 1 ? truth : 1);
        if (err > max_err)
            max_err = err;
        if (exact != AKIDB_EXACT_NONE || storage == AKIDB_STORAGE_F32)
            ASSERT(memcmp(got, orig, sizeof got) == 0);
    }
    fprintf(stderr, "  storage %d exact %d: max relative distance error %.3g\n", (int)storage,
            (int)exact, max_err);
    if (exact != AKIDB_EXACT_NONE || storage == AKIDB_STORAGE_F32)
        ASSERT_LE(max_err, 1e-5);
    else
        ASSERT(max_err > 0 && max_err < 0.2);

    /* checkpoint, reopen */
    ASSERT_OK(akidb_checkpoint(db, "c"));
    ASSERT_OK(akidb_close(db));
    db = open_db(st);
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 0, AKIDB_METRIC_L2);
    ASSERT_OK(akidb_collection_info(db, "c", &cfg));
    ASSERT_EQ(cfg.storage, storage);
    search_all(db, "c", qs, RT_Q, RT_DIM, RT_K, 64, h);
    same_hits(h0, h, nh, "after reopen");

    /* snapshot, change, restore */
    char sid[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_OK(akidb_snapshot_create(db, "c", sid, sizeof sid));
    insert_all(db, "c", qs, RT_Q, RT_DIM);           /* the queries themselves: hits change */
    search_all(db, "c", qs, RT_Q, RT_DIM, RT_K, 64, h);
    ASSERT(h[0].distance == 0.0f || storage != AKIDB_STORAGE_F32);
    ASSERT_OK(akidb_snapshot_restore(db, "c", sid));
    ASSERT_OK(akidb_index_wait(db, "c", 120000));
    search_all(db, "c", qs, RT_Q, RT_DIM, RT_K, 64, h);
    same_hits(h0, h, nh, "after restore");

    /* tier cycle */
    ASSERT_OK(akidb_tier_set(db, "c", AKIDB_TIER_WARM));
    ASSERT_OK(akidb_tier_set(db, "c", AKIDB_TIER_COLD));
    ASSERT_OK(akidb_tier_set(db, "c", AKIDB_TIER_HOT));
    ASSERT_OK(akidb_index_wait(db, "c", 120000));
    search_all(db, "c", qs, RT_Q, RT_DIM, RT_K, 64, h);
    same_hits(h0, h, nh, "after HOT -> WARM -> COLD -> HOT");

    /* clipping is counted (int8: a value far outside the trained range) */
    int64_t clipped = metric(db, "akidb_quant_values_clipped_total");
    float far[RT_DIM];
    memcpy(far, v, sizeof far);
    far[0] = 1e4f;
    ASSERT_OK(akidb_insert(db, "c", 1, far, NULL, NULL, NULL));
    ASSERT_OK(akidb_index_wait(db, "c", 120000));
    int64_t after = metric(db, "akidb_quant_values_clipped_total");
    ASSERT_EQ(after - clipped, storage == AKIDB_STORAGE_INT8 ? 1 : 0);
    /* and found, at its exact distance where exact vectors are kept */
    akidb_hit hit;
    uint32_t n1 = 0;
    ASSERT_OK(akidb_search(db, "c", far, 1, NULL, &hit, &n1));
    ASSERT_EQ(n1, 1);
    ASSERT_EQ(hit.id, RT_N + 1);
    if (exact != AKIDB_EXACT_NONE || storage == AKIDB_STORAGE_F32)
        ASSERT(hit.distance == 0.0f);

    ASSERT_OK(akidb_close(db));
    akidb_store_close(st);
    free(h0);
    free(h);
    free(v);
    free(qs);
}

TEST_TIMEOUT(quant_round_trip_f32, 180) { round_trip(AKIDB_STORAGE_F32, AKIDB_EXACT_RAM); }
TEST_TIMEOUT(quant_round_trip_f16, 180) { round_trip(AKIDB_STORAGE_F16, AKIDB_EXACT_RAM); }
TEST_TIMEOUT(quant_round_trip_int8, 180) { round_trip(AKIDB_STORAGE_INT8, AKIDB_EXACT_RAM); }
TEST_TIMEOUT(quant_round_trip_f16_file, 180) { round_trip(AKIDB_STORAGE_F16, AKIDB_EXACT_FILE); }
TEST_TIMEOUT(quant_round_trip_int8_file, 180)
{
    round_trip(AKIDB_STORAGE_INT8, AKIDB_EXACT_FILE);
}
TEST_TIMEOUT(quant_round_trip_f16_none, 180) { round_trip(AKIDB_STORAGE_F16, AKIDB_EXACT_NONE); }
TEST_TIMEOUT(quant_round_trip_int8_none, 180)
{
    round_trip(AKIDB_STORAGE_INT8, AKIDB_EXACT_NONE);
}

/* ---- exact vectors in the checkpoint file ------------------------------ */

#define EF_N 9000
#define EF_DIM 64

static uint64_t vector_bytes(akidb *db, const char *name)
{
    akidb_collection_stats st;
    memset(&st, 0, sizeof st);
    st.version = AKIDB_COLLECTION_STATS_VERSION;
    ASSERT_OK(akidb_collection_stat(db, name, &st));
    return st.vector_bytes;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n);
    ASSERT(p != NULL);
    ASSERT_EQ(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void write_file(const char *path, const unsigned char *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(p, 1, len, f), len);
    fclose(f);
}

/* The checkpoint file of the second collection made in the database at
 * akt_dir/db ("file": collection ids 1 and 2, one digit each). */
static void ckpt_file(char *out, size_t len)
{
    char pat[512];
    glob_t g;
    snprintf(pat, sizeof pat, "%s/db/ckpt/*.ckpt", akt_dir);
    ASSERT_EQ(glob(pat, 0, NULL, &g), 0);
    ASSERT(g.gl_pathc >= 1);
    snprintf(out, len, "%s", g.gl_pathv[g.gl_pathc - 1]);
    ASSERT(strstr(out, "/2.ckpt") != NULL);
    globfree(&g);
}

/* AKIDB_EXACT_FILE against AKIDB_EXACT_RAM on the same data: the RAM
 * copies leave once a checkpoint holds the vectors (and after a reopen,
 * a promotion from COLD, a checkpoint directory deleted under the
 * handle), distances stay exact, and a file damaged under the handle
 * fails searches with an error naming it, without a crash. */
TEST_TIMEOUT(quant_exact_file_memory_and_errors, 240)
{
    akidb_store *st = NULL;
    ASSERT_OK(akidb_store_mock_open(&st));
    akidb *db = open_db(st);
    create(db, "ram", EF_DIM, AKIDB_STORAGE_INT8, AKIDB_EXACT_RAM);
    create(db, "file", EF_DIM, AKIDB_STORAGE_INT8, AKIDB_EXACT_FILE);
    float *v = clustered(5, 6, EF_N, EF_DIM, 30, 1.0);
    float *qs = clustered(5, 7, RT_Q, EF_DIM, 30, 1.0);
    insert_all(db, "ram", v, EF_N, EF_DIM);
    insert_all(db, "file", v, EF_N, EF_DIM);
    ASSERT_OK(akidb_checkpoint(db, "ram"));
    size_t nh = (size_t)RT_Q * RT_K;
    akidb_hit *h0 = malloc(nh * sizeof *h0), *h = malloc(nh * sizeof *h);
    ASSERT(h0 != NULL && h != NULL);
    search_all(db, "file", qs, RT_Q, EF_DIM, RT_K, 64, h0);
    uint64_t ram_bytes = vector_bytes(db, "ram"), before = vector_bytes(db, "file");
    ASSERT_EQ(before, ram_bytes);   /* no checkpoint yet: every copy in RAM */

    ASSERT_OK(akidb_checkpoint(db, "file"));
    uint64_t after = vector_bytes(db, "file");
    fprintf(stderr, "  vector bytes: RAM mode %llu, file mode %llu after a checkpoint\n",
            (unsigned long long)ram_bytes, (unsigned long long)after);
    /* what stays: the last, partly filled block of nodes */
    ASSERT_LE(after * 4, ram_bytes);
    search_all(db, "file", qs, RT_Q, EF_DIM, RT_K, 64, h);
    same_hits(h0, h, nh, "after the checkpoint");
    for (size_t i = 0; i < nh; i++) {
        const float *orig = v + (size_t)(h[i].id - 1) * EF_DIM;
        ASSERT_LE(fabs(h[i].distance - l2(qs + (i / RT_K) * EF_DIM, orig, EF_DIM)),
                  1e-4 * (1 + h[i].distance));
        float got[EF_DIM];
        ASSERT_OK(akidb_get(db, "file", h[i].id, got, NULL));
        ASSERT(memcmp(got, orig, sizeof got) == 0);
    }
    /* an exact scan reads every vector through the file */
    akidb_search_params sp;
    akidb_search_params_init(&sp);
    sp.exact = 1;
    akidb_hit ex[RT_K];
    uint32_t n_ex = 0;
    ASSERT_OK(akidb_search(db, "file", qs, RT_K, &sp, ex, &n_ex));
    ASSERT_EQ(n_ex, RT_K);
    ASSERT_EQ(ex[0].id, h[0].id);

    /* reopen: loaded with the file as the source, nothing copied */
    ASSERT_OK(akidb_close(db));
    db = open_db(st);
    ASSERT_OK(akidb_index_wait(db, "file", 120000));
    ASSERT_LE(vector_bytes(db, "file"), after);
    search_all(db, "file", qs, RT_Q, EF_DIM, RT_K, 64, h);
    same_hits(h0, h, nh, "after reopen");

    /* a cold page cache (the file's pages dropped; a no-op where the
     * directory is tmpfs): the re-rank's first read would wait, the other
     * candidates are hinted (test_quant.c checks how), same answers */
    char path[600];
    ckpt_file(path, sizeof path);
    {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ASSERT(fd >= 0);
        ASSERT_EQ(fsync(fd), 0);   /* only clean pages are dropped */
        for (int pass = 0; pass < 2; pass++) {
            ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
            search_all(db, "file", qs, RT_Q, EF_DIM, RT_K, 64, h);
            same_hits(h0, h, nh, "with the page cache dropped");
        }
        close(fd);
    }

    /* the file truncated under the handle: searches fail naming it */
    size_t len = 0;
    unsigned char *bytes = read_file(path, &len);
    ASSERT_EQ(truncate(path, 4096), 0);
    akidb_hit one[RT_K];
    uint32_t n1 = 0;
    int rc = akidb_search(db, "file", qs, RT_K, NULL, one, &n1);
    ASSERT_RC(rc, AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(db), ".ckpt") != NULL);
    ASSERT(strstr(akidb_errmsg(db), "truncated") != NULL);
    float got[EF_DIM];
    ASSERT_RC(akidb_get(db, "file", h0[0].id, got, NULL), AKIDB_CORRUPT);
    write_file(path, bytes, len);   /* put back: searches work again */
    search_all(db, "file", qs, RT_Q, EF_DIM, RT_K, 64, h);
    same_hits(h0, h, nh, "after the file was put back");
    free(bytes);

    /* the checkpoint directory deleted under the handle: the open file
     * still serves; the next checkpoint makes a new one and moves there */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/db/ckpt", akt_dir);
    {
        char pat[700];
        glob_t g;
        snprintf(pat, sizeof pat, "%s/*", dir);
        ASSERT_EQ(glob(pat, 0, NULL, &g), 0);
        for (size_t i = 0; i < g.gl_pathc; i++)
            ASSERT_EQ(unlink(g.gl_pathv[i]), 0);
        globfree(&g);
        ASSERT_EQ(rmdir(dir), 0);
    }
    search_all(db, "file", qs, RT_Q, EF_DIM, RT_K, 64, h);
    same_hits(h0, h, nh, "with the checkpoint directory deleted");
    ASSERT_OK(akidb_checkpoint(db, "file"));
    ckpt_file(path, sizeof path);
    ASSERT_LE(vector_bytes(db, "file"), after);
    search_all(db, "file", qs, RT_Q, EF_DIM, RT_K, 64, h);
    same_hits(h0, h, nh, "after a new checkpoint");

    /* WARM -> COLD -> HOT: the downloaded checkpoint becomes the file */
    ASSERT_OK(akidb_tier_set(db, "file", AKIDB_TIER_COLD));
    ASSERT_OK(akidb_tier_set(db, "file", AKIDB_TIER_HOT));
    ASSERT_OK(akidb_index_wait(db, "file", 120000));
    search_all(db, "file", qs, RT_Q, EF_DIM, RT_K, 64, h);
    same_hits(h0, h, nh, "after COLD -> HOT");
    for (int i = 0; i < 2000 && vector_bytes(db, "file") > after; i++)
        usleep(5000);   /* the local copy is written behind the promotion */
    ASSERT_LE(vector_bytes(db, "file"), after);

    ASSERT_OK(akidb_close(db));
    akidb_store_close(st);
    free(h0);
    free(h);
    free(v);
    free(qs);
}

/* Searches and reads while checkpoints move the exact vectors from RAM
 * to a new file and swap the file under them (AKIDB_EXACT_FILE): every
 * search succeeds with the exact distance of its own vector (0), every
 * read returns the vector written.  A name with "concurrent" in it, so
 * `make tsan` runs it. */
typedef struct file_reader {
    akidb *db;
    const float *v;
    uint32_t n;
    uint32_t total;          /* rows the collection will hold */
    int *stop;               /* read and written atomically */
    int failures, rounds, misses;
} file_reader;

static void *file_reader_main(void *arg)
{
    file_reader *r = arg;
    uint64_t seed = 77;
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        uint32_t i = rand_below(&seed, r->n);
        akidb_hit h;
        uint32_t nh = 0;
        float got[EF_DIM];
        int rc1 = akidb_search(r->db, "c", r->v + (size_t)i * EF_DIM, 1, NULL, &h, &nh);
        int rc2 = akidb_get(r->db, "c", i + 1, got, NULL);
        /* the distance returned is the exact one of the vector returned
         * (read from whichever file was current): the walk may miss row i
         * itself now and then (an approximate search), never misread */
        int exact = rc1 == AKIDB_OK && nh == 1 && h.id >= 1 && h.id <= r->total &&
                    fabs(h.distance - l2(r->v + (size_t)i * EF_DIM,
                                         r->v + (size_t)(h.id - 1) * EF_DIM, EF_DIM)) <=
                        1e-4 * (1 + h.distance);
        if (!exact || rc2 != AKIDB_OK || memcmp(got, r->v + (size_t)i * EF_DIM, sizeof got) != 0) {
            if (r->failures++ < 5)
                fprintf(stderr, "  row %u: search %d (%s) hit %llu at %g, get %d\n", i, rc1,
                        rc1 ? akidb_errmsg(r->db) : "", (unsigned long long)h.id, h.distance, rc2);
        }
        r->misses += exact && h.id != i + 1;
        r->rounds++;
    }
    return NULL;
}

TEST_TIMEOUT(quant_exact_file_concurrent_checkpoints, 240)
{
    enum { FIRST = 5000, BATCH = 500, BATCHES = 8 };
    akidb_store *st = NULL;
    ASSERT_OK(akidb_store_mock_open(&st));
    akidb *db = open_db(st);
    create(db, "c", EF_DIM, AKIDB_STORAGE_INT8, AKIDB_EXACT_FILE);
    uint32_t total = FIRST + BATCH * BATCHES;
    float *v = clustered(8, 9, total, EF_DIM, 30, 1.0);
    insert_all(db, "c", v, FIRST, EF_DIM);
    ASSERT_OK(akidb_checkpoint(db, "c"));
    int stop = 0;
    file_reader r[2] = { { db, v, FIRST, total, &stop, 0, 0, 0 },
                         { db, v, FIRST, total, &stop, 0, 0, 0 } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, file_reader_main, &r[i]), 0);
    for (uint32_t b = 0; b < BATCHES; b++) {
        ASSERT_OK(akidb_insert(db, "c", BATCH, v + (size_t)(FIRST + b * BATCH) * EF_DIM, NULL,
                               NULL, NULL));
        ASSERT_OK(akidb_index_wait(db, "c", 120000));
        ASSERT_OK(akidb_checkpoint(db, "c"));   /* a new file, swapped under the readers */
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    fprintf(stderr, "  %d + %d searches and reads during %d checkpoints (%d "
            "missed the row itself)\n", r[0].rounds, r[1].rounds, BATCHES,
            r[0].misses + r[1].misses);
    ASSERT_EQ(r[0].failures + r[1].failures, 0);
    ASSERT(r[0].rounds > 0 && r[1].rounds > 0);
    /* an approximate search, but not a broken one */
    ASSERT_LE(r[0].misses + r[1].misses, (r[0].rounds + r[1].rounds) / 20);
    ASSERT_OK(akidb_close(db));
    akidb_store_close(st);
    free(v);
}

/* ---- recall ------------------------------------------------------------- */

static int cmp_double_idx(const void *a, const void *b)
{
    const double *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Recall@10 of f16 and int8 (exact vectors in RAM, re-ranked) within 0.002
 * of f32 at the same ef, on 20k clustered 48-dimensional float vectors
 * with overlapping clusters; distances returned exact. */
TEST_TIMEOUT(quant_recall_vs_f32, 400)
{
    const uint32_t n = 20000, dim = 48, n_q = 200, k = 10;
    float *v = clustered(7, 8, n, dim, 64, 2.5);
    float *qs = clustered(7, 9, n_q, dim, 64, 2.5);
    uint64_t *truth = malloc((size_t)n_q * k * sizeof *truth);
    double *all = malloc((size_t)n * 2 * sizeof *all);
    ASSERT(truth != NULL && all != NULL);
    for (uint32_t q = 0; q < n_q; q++) {
        for (uint32_t i = 0; i < n; i++) {
            all[2 * i] = l2(qs + (size_t)q * dim, v + (size_t)i * dim, dim);
            all[2 * i + 1] = i;
        }
        qsort(all, n, 2 * sizeof *all, cmp_double_idx);
        for (uint32_t j = 0; j < k; j++)
            truth[(size_t)q * k + j] = (uint64_t)all[2 * j + 1] + 1;
    }
    free(all);
    akidb *db = open_db(NULL);
    static const akidb_storage kinds[] = { AKIDB_STORAGE_F32, AKIDB_STORAGE_F16,
                                           AKIDB_STORAGE_INT8 };
    static const char *const names[] = { "f32", "f16", "int8" };
    static const uint32_t efs[] = { 40, 64, 128 };
    double recall[3][3];
    akidb_hit *h = malloc((size_t)n_q * k * sizeof *h);
    ASSERT(h != NULL);
    for (int ki = 0; ki < 3; ki++) {
        create(db, names[ki], dim, kinds[ki], AKIDB_EXACT_RAM);
        insert_all(db, names[ki], v, n, dim);
        for (int ei = 0; ei < 3; ei++) {
            search_all(db, names[ki], qs, n_q, dim, k, efs[ei], h);
            uint32_t found = 0;
            for (uint32_t q = 0; q < n_q; q++)
                for (uint32_t j = 0; j < k; j++) {
                    const akidb_hit *x = &h[(size_t)q * k + j];
                    for (uint32_t t = 0; t < k; t++)
                        found += x->id == truth[(size_t)q * k + t];
                    double d = l2(qs + (size_t)q * dim, v + (size_t)(x->id - 1) * dim, dim);
                    ASSERT_LE(fabs(x->distance - d), 1e-5 * (d > 1 ? d : 1));
                }
            recall[ki][ei] = (double)found / (n_q * k);
        }
    }
    for (int ei = 0; ei < 3; ei++) {
        fprintf(stderr, "  ef %u: recall@10 f32 %.4f, f16 %.4f, int8 %.4f\n", efs[ei],
                recall[0][ei], recall[1][ei], recall[2][ei]);
        ASSERT_GE(recall[1][ei], recall[0][ei] - 0.002);
        ASSERT_GE(recall[2][ei], recall[0][ei] - 0.002);
    }
    /* the data is not trivially easy: f32 itself misses some at ef 40 */
    ASSERT(recall[0][0] < 0.999);
    ASSERT_OK(akidb_close(db));
    free(h);
    free(truth);
    free(v);
    free(qs);
}

/* ---- damaged parameters ------------------------------------------------ */

static unsigned char *find_bytes(unsigned char *p, size_t len, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(p + i, s, n) == 0)
            return p + i;
    return NULL;
}

/* The value bytes of footer key `key` (thrift compact: the key string,
 * then field 2's header 0x18 and a one-byte length). */
static unsigned char *kv_value(unsigned char *p, size_t len, const char *key, size_t *vlen)
{
    unsigned char *k = find_bytes(p, len, key);
    ASSERT(k != NULL);
    unsigned char *h = k + strlen(key);
    ASSERT_EQ(h[0], 0x18);
    size_t n = 0, at = 1;
    for (int shift = 0;; shift += 7) {
        n |= (size_t)(h[at] & 0x7F) << shift;
        if (!(h[at++] & 0x80))
            break;
    }
    *vlen = n;
    return h + at;
}

/* Set the checkpoint's whole-file CRC (checkpoint.c) after an edit, so
 * the damage reaches the parameter checks. */
static void fix_crc(unsigned char *p, size_t len)
{
    unsigned char *d = find_bytes(p, len, "akidb.file_crc32c\x18\x08");
    ASSERT(d != NULL);
    d += strlen("akidb.file_crc32c") + 2;
    memcpy(d, "00000000", 8);
    char digits[9];
    snprintf(digits, sizeof digits, "%08x", (unsigned)akidb__crc32c(0, p, len));
    memcpy(d, digits, 8);
}

static void damaged(const char *key, char first, const char *expect)
{
    akidb *db = open_db(NULL);
    create(db, "c", RT_DIM, AKIDB_STORAGE_INT8, AKIDB_EXACT_RAM);
    float *v = clustered(4, 5, 4500, RT_DIM, 10, 1.0);
    insert_all(db, "c", v, 4500, RT_DIM);
    ASSERT_OK(akidb_checkpoint(db, "c"));
    ASSERT_OK(akidb_close(db));
    char pat[600];
    snprintf(pat, sizeof pat, "%s/db/ckpt/*.ckpt", akt_dir);
    glob_t g;
    ASSERT_EQ(glob(pat, 0, NULL, &g), 0);
    ASSERT_EQ(g.gl_pathc, 1);
    size_t len, vlen;
    unsigned char *p = read_file(g.gl_pathv[0], &len);
    unsigned char *val = kv_value(p, len, key, &vlen);
    ASSERT(vlen > 1);
    val[0] = (unsigned char)first;
    fix_crc(p, len);
    write_file(g.gl_pathv[0], p, len);
    /* the open loads the checkpoint (a lazy load would fail the search) */
    char path[512];
    snprintf(path, sizeof path, "%s/db", akt_dir);
    akidb_options o;
    akidb_options_init(&o);
    o.sync_mode = AKIDB_SYNC_NONE;
    db = NULL;
    int rc = akidb_open(path, &o, &db);
    if (rc == AKIDB_OK) {
        akidb_hit hit;
        uint32_t nh = 0;
        rc = akidb_search(db, "c", v, 1, NULL, &hit, &nh);
    }
    ASSERT_RC(rc, AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), expect) != NULL);
    akidb_close(db);
    globfree(&g);
    free(p);
    free(v);
}

TEST_TIMEOUT(quant_damaged_scale_is_corrupt, 120)
{
    damaged("akidb.i8_scale", '-', "akidb.i8_scale");
}

TEST_TIMEOUT(quant_damaged_offset_is_corrupt, 120)
{
    damaged("akidb.i8_offset", '!', "akidb.i8_offset");
}

TEST_TIMEOUT(quant_damaged_storage_is_corrupt, 120)
{
    damaged("akidb.storage", 'x', "akidb.storage");
}

/* akidb_collection_stats version 3: bytes by component, as the memory
 * budget counts them.  int8 without exact vectors holds one byte a
 * dimension and no float copy beyond the last, partly filled block; f16
 * with exact vectors holds both; f32 no compact copy.  The total is the
 * sum of the parts, and a version-2 caller's struct ends before
 * compact_bytes. */
TEST_TIMEOUT(quant_stats_bytes_by_component, 120)
{
    akidb *db = open_db(NULL);
    const uint32_t n = 5000, dim = 64;
    float *v = clustered(1, 2, n, dim, 20, 0.5);
    create(db, "i8", dim, AKIDB_STORAGE_INT8, AKIDB_EXACT_NONE);
    create(db, "f16", dim, AKIDB_STORAGE_F16, AKIDB_EXACT_RAM);
    create(db, "f32", dim, AKIDB_STORAGE_F32, AKIDB_EXACT_RAM);
    insert_all(db, "i8", v, n, dim);
    insert_all(db, "f16", v, n, dim);
    insert_all(db, "f32", v, n, dim);
    akidb_collection_stats st[3];
    const char *names[3] = { "i8", "f16", "f32" };
    for (int i = 0; i < 3; i++) {
        memset(&st[i], 0, sizeof st[i]);
        st[i].version = AKIDB_COLLECTION_STATS_VERSION;
        ASSERT_OK(akidb_collection_stat(db, names[i], &st[i]));
        ASSERT_EQ(st[i].bytes, st[i].vector_bytes + st[i].compact_bytes + st[i].graph_bytes +
                               st[i].document_bytes);
    }
    const uint64_t floats = (uint64_t)n * dim * sizeof(float);
    /* int8, no exact vectors: codes >= n x dim bytes, floats only for the
     * last block of 1024 (5000 = 4 full blocks + 904) */
    ASSERT(st[0].compact_bytes >= (uint64_t)n * dim);
    ASSERT(st[0].compact_bytes < floats / 2);
    ASSERT(st[0].vector_bytes <= 1024ull * dim * sizeof(float) + 64);
    /* f16 with exact vectors: 2 bytes a dimension plus every float */
    ASSERT(st[1].compact_bytes >= (uint64_t)n * dim * 2);
    ASSERT(st[1].vector_bytes >= floats);
    /* f32: no compact copy */
    ASSERT_EQ(st[2].compact_bytes, 0);
    ASSERT(st[2].vector_bytes >= floats);
    ASSERT(st[0].bytes < st[2].bytes);
    /* a version-2 caller: nothing written past its struct */
    unsigned char buf[sizeof(akidb_collection_stats) + 16];
    memset(buf, 0xAB, sizeof buf);
    akidb_collection_stats *old = (akidb_collection_stats *)(void *)buf;
    old->version = 2;
    ASSERT_OK(akidb_collection_stat(db, "i8", old));
    size_t v2_end = offsetof(akidb_collection_stats, compact_bytes);
    for (size_t i = v2_end; i < sizeof buf; i++)
        ASSERT_EQ(buf[i], 0xAB);
    ASSERT_EQ(old->bytes, st[0].bytes);
    free(v);
    ASSERT_OK(akidb_close(db));
}
