/*
 * edge_cache.c - an edge box that keeps only what is in use in RAM and
 * lets the rest go to the object store: a collection demoted to COLD, then
 * brought back by the next search (docs/TIERING.md).
 *
 *   edge_cache [DIR]        (default ./akidb-data)
 *
 * The cold tier goes to S3 when the environment says where (the same
 * variables as akidb-server's, docs/S3.md):
 *   AKIDB_S3_ENDPOINT    e.g. http://127.0.0.1:7480 or https://s3.eu-west-1.amazonaws.com
 *   AKIDB_S3_BUCKET      must exist
 *   AKIDB_S3_REGION      default us-east-1
 *   AKIDB_S3_PATH_STYLE  "false" for virtual-hosted style (default path style)
 *   AKIDB_S3_ACCESS_KEY, AKIDB_S3_SECRET_KEY
 * Without AKIDB_S3_ENDPOINT it uses a local object store in DIR/objects
 * (where the library would put it by default; opened here so the example
 * can look into it), which is how `make test` runs it.
 *
 * What it does: opens the database with an edge-box policy (a memory
 * budget, short TTLs), fills a collection, searches it, demotes it to
 * COLD (akidb_tier_set) and shows that nothing is left in RAM or on the
 * local disk but a copy is in the store, then searches again: that search
 * loads it back to HOT.  It prints the tier and the time of each step, and
 * exits non-zero unless the collection came back HOT with exactly the
 * results it gave before.  Uses only the public header.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "akidb.h"

enum { DIM = 64, N_DOCS = 5000, N_QUERIES = 8, K = 10 };

static const char *const COLL = "edge_cache";

#define CHECK(call)                                                         \
    do {                                                                    \
        int rc_ = (call);                                                   \
        if (rc_ != AKIDB_OK) {                                              \
            fprintf(stderr, "%s: %s: %s\n", #call, akidb_errname(rc_),      \
                    akidb_errmsg(db));                                      \
            goto fail;                                                      \
        }                                                                   \
    } while (0)

#define EXPECT(cond, ...)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "edge_cache: FAILED: " __VA_ARGS__);            \
            fprintf(stderr, "\n");                                          \
            goto fail;                                                      \
        }                                                                   \
    } while (0)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* xorshift64*: the same data on every run. */
static float rng_float(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (float)((*s * 2685821657736338717ull) >> 40) / (float)(1u << 24) * 2.0f - 1.0f;
}

static void make_vector(uint64_t seed, float *v)
{
    uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (int d = 0; d < DIM; d++)
        v[d] = rng_float(&s);
}

static const char *tier_name(akidb_tier t)
{
    switch (t) {
    case AKIDB_TIER_HOT: return "HOT";
    case AKIDB_TIER_WARM: return "WARM";
    case AKIDB_TIER_COLD: return "COLD";
    }
    return "?";
}

/* The store for the cold tier: S3 from the environment, else local. */
static int open_store(const char *dir, akidb_store **out, char *what, size_t what_len)
{
    const char *endpoint = getenv("AKIDB_S3_ENDPOINT");
    if (endpoint && *endpoint) {
        akidb_s3_config cfg;
        akidb_s3_config_init(&cfg);
        const char *style = getenv("AKIDB_S3_PATH_STYLE");
        cfg.endpoint = endpoint;
        cfg.bucket = getenv("AKIDB_S3_BUCKET");
        cfg.region = getenv("AKIDB_S3_REGION");
        cfg.access_key = getenv("AKIDB_S3_ACCESS_KEY");
        cfg.secret_key = getenv("AKIDB_S3_SECRET_KEY");
        cfg.path_style = !(style && strcmp(style, "false") == 0);
        if (!cfg.bucket || !*cfg.bucket) {
            fprintf(stderr, "edge_cache: AKIDB_S3_ENDPOINT is set but AKIDB_S3_BUCKET is not\n");
            return AKIDB_INVALID;
        }
        snprintf(what, what_len, "S3 %s, bucket %s", endpoint, cfg.bucket);
        return akidb_store_s3_open(&cfg, out);
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%s/objects", dir) >= (int)sizeof path)
        return AKIDB_INVALID;
    /* The database directory may not exist yet: the store's parent must. */
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "edge_cache: mkdir %s: %s\n", dir, strerror(errno));
        return AKIDB_IOERR;
    }
    snprintf(what, what_len, "local %s", path);
    return akidb_store_local_open(path, out);
}

/* The top K of every query: ids and distances, to compare runs with. */
static int search_all(akidb *db, const float *queries, akidb_hit *out, uint32_t *n_out)
{
    for (int q = 0; q < N_QUERIES; q++) {
        int rc = akidb_search(db, COLL, queries + (size_t)q * DIM, K, NULL, out + q * K,
                              n_out + q);
        if (rc != AKIDB_OK)
            return rc;
    }
    return AKIDB_OK;
}

static int show_tier(akidb *db, const char *when, akidb_tier_info *ti)
{
    memset(ti, 0, sizeof *ti);
    ti->version = AKIDB_TIER_INFO_VERSION;
    int rc = akidb_tier_info_get(db, COLL, ti);
    if (rc == AKIDB_OK)
        printf("%-22s tier %-4s  RAM %8" PRIu64 " B  local disk %8" PRIu64 " B  "
               "object store %8" PRIu64 " B\n", when, tier_name(ti->tier),
               ti->tier == AKIDB_TIER_HOT ? ti->hot_bytes : 0, ti->local_bytes, ti->cold_bytes);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "./akidb-data";
    akidb *db = NULL;
    akidb_store *store = NULL;
    akidb_options opts;
    akidb_collection_config cfg;
    akidb_tier_info ti;
    akidb_snapshot_info **snaps = NULL;
    size_t n_snaps = 0;
    float *vecs = NULL, queries[N_QUERIES * DIM];
    const char **ext_p = NULL;
    char (*ext)[24] = NULL;
    akidb_hit before[N_QUERIES * K], after[N_QUERIES * K];
    uint32_t n_before[N_QUERIES], n_after[N_QUERIES];
    char what[4200];
    int ok = 0;

    int rc = open_store(dir, &store, what, sizeof what);
    if (rc != AKIDB_OK) {
        fprintf(stderr, "edge_cache: cannot open the object store: %s: %s\n", akidb_errname(rc),
                akidb_errmsg(NULL));
        return 1;
    }
    printf("object store: %s\n", what);

    /* An edge box: 256 MiB of RAM for HOT collections, idle ones go WARM
     * after 10 minutes and COLD after a day (the worker, once a minute);
     * this program demotes by hand to show the whole trip at once. */
    akidb_options_init(&opts);
    opts.store = store;
    opts.memory_budget = 256u << 20;
    opts.tier_hot_ttl_s = 600;
    opts.tier_warm_ttl_s = 86400;
    opts.snapshot_retention = 2;
    CHECK(akidb_open(dir, &opts, &db));

    rc = akidb_collection_drop(db, COLL);      /* start afresh on a re-run */
    if (rc != AKIDB_NOTFOUND)
        CHECK(rc);
    akidb_collection_config_init(&cfg, DIM, AKIDB_METRIC_COSINE);
    CHECK(akidb_collection_create(db, COLL, &cfg));

    vecs = malloc(sizeof *vecs * DIM * N_DOCS);
    ext = malloc(sizeof *ext * N_DOCS);
    ext_p = malloc(sizeof *ext_p * N_DOCS);
    EXPECT(vecs && ext && ext_p, "out of memory");
    for (int i = 0; i < N_DOCS; i++) {
        make_vector((uint64_t)i, vecs + (size_t)i * DIM);
        snprintf(ext[i], sizeof ext[i], "item-%d", i);
        ext_p[i] = ext[i];
    }
    double t0 = now_ms();
    CHECK(akidb_insert(db, COLL, N_DOCS, vecs, ext_p, NULL, NULL));
    printf("inserted %d documents of dim %d in %.1f ms\n", N_DOCS, DIM, now_ms() - t0);
    for (int q = 0; q < N_QUERIES; q++)   /* near documents 0, 600, 1200, ... */
        make_vector((uint64_t)q * 600, queries + q * DIM);

    t0 = now_ms();
    CHECK(search_all(db, queries, before, n_before));
    double t_hot = now_ms() - t0;
    CHECK(show_tier(db, "filled:", &ti));
    EXPECT(ti.tier == AKIDB_TIER_HOT, "a new collection is %s, not HOT", tier_name(ti.tier));
    for (int q = 0; q < N_QUERIES; q++)
        EXPECT(n_before[q] == K, "query %d: %u hits, want %d", q, n_before[q], K);

    /* Demote: HOT -> WARM (checkpoint, RAM freed) -> COLD (uploaded, read
     * back and checked, local files removed). */
    t0 = now_ms();
    CHECK(akidb_tier_set(db, COLL, AKIDB_TIER_COLD));
    double t_demote = now_ms() - t0;
    CHECK(show_tier(db, "after akidb_tier_set:", &ti));
    EXPECT(ti.tier == AKIDB_TIER_COLD, "tier %s after akidb_tier_set(COLD)", tier_name(ti.tier));
    EXPECT(ti.local_bytes == 0, "a COLD collection still has %" PRIu64 " bytes on local disk",
           ti.local_bytes);
    EXPECT(ti.cold_bytes > 0, "a COLD collection without a copy in the store");
    printf("demoted to COLD in %.1f ms\n", t_demote);

    /* The cold copy is a snapshot in the store, listed like any other. */
    CHECK(akidb_snapshot_list(db, COLL, &snaps, &n_snaps));
    EXPECT(n_snaps >= 1, "no snapshot listed for a COLD collection");
    uint64_t size = 0;
    rc = akidb_store_size(store, snaps[0]->key, &size);
    if (rc != AKIDB_OK) {
        fprintf(stderr, "akidb_store_size(%s): %s: %s\n", snaps[0]->key, akidb_errname(rc),
                akidb_errmsg(NULL));
        goto fail;
    }
    printf("cold copy: %s (%" PRIu64 " bytes, %" PRIu64 " rows)\n", snaps[0]->key, size,
           snaps[0]->rows);
    EXPECT(size == snaps[0]->bytes && snaps[0]->rows == N_DOCS,
           "the store holds %" PRIu64 " bytes, the catalog says %" PRIu64, size, snaps[0]->bytes);

    /* The next search brings it back: the first query waits for the
     * download and load, the rest are served from RAM. */
    t0 = now_ms();
    CHECK(akidb_search(db, COLL, queries, K, NULL, after, n_after));
    double t_load = now_ms() - t0;
    CHECK(show_tier(db, "after one search:", &ti));
    t0 = now_ms();
    CHECK(search_all(db, queries, after, n_after));
    double t_hot2 = now_ms() - t0;
    printf("first search after COLD: %.1f ms (load included); %d searches when HOT: "
           "%.2f ms before, %.2f ms after\n", t_load, N_QUERIES, t_hot, t_hot2);
    EXPECT(ti.tier == AKIDB_TIER_HOT, "the search left the collection %s, not HOT",
           tier_name(ti.tier));
    for (int q = 0; q < N_QUERIES; q++) {
        EXPECT(n_after[q] == n_before[q], "query %d: %u hits after the load, %u before", q,
               n_after[q], n_before[q]);
        for (uint32_t h = 0; h < n_after[q]; h++)
            EXPECT(after[q * K + h].id == before[q * K + h].id &&
                   after[q * K + h].distance == before[q * K + h].distance,
                   "query %d hit %u: id %" PRIu64 " (%.6f) after the load, %" PRIu64
                   " (%.6f) before", q, h, after[q * K + h].id, after[q * K + h].distance,
                   before[q * K + h].id, before[q * K + h].distance);
    }
    /* Writes are accepted again (they wait for the local copy). */
    CHECK(akidb_insert(db, COLL, 1, queries, NULL, NULL, NULL));

    akidb_tier_stats st;
    memset(&st, 0, sizeof st);
    st.version = AKIDB_TIER_STATS_VERSION;
    CHECK(akidb_tier_stats_get(db, &st));
    EXPECT(st.loads >= 1, "akidb_tier_stats counts no load");
    printf("tier stats: %" PRIu64 " load(s), %.1f ms loading; transitions HOT->WARM %" PRIu64
           ", WARM->COLD %" PRIu64 "\n", st.loads, (double)st.load_us_total / 1e3,
           st.transitions_ok[AKIDB_TIER_HOT][AKIDB_TIER_WARM],
           st.transitions_ok[AKIDB_TIER_WARM][AKIDB_TIER_COLD]);
    printf("OK: the COLD collection came back HOT with the same %d x %d results\n", N_QUERIES, K);
    ok = 1;

fail:
    akidb_free(snaps);
    if (akidb_close(db) != AKIDB_OK) {
        fprintf(stderr, "akidb_close: %s\n", akidb_errmsg(NULL));
        ok = 0;
    }
    akidb_store_close(store);   /* after the handle that borrowed it */
    free(vecs);
    free(ext);
    free(ext_p);
    return ok ? 0 : 1;
}
