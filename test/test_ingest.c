/*
 * test_ingest.c - writes acknowledged before they are indexed (issue 11).
 *
 * A write is acknowledged once it is logged and in the collection's
 * memory; its HNSW node is linked later by the handle's indexer thread,
 * and until then searches scan it exactly (the "tail").  What is checked
 * here, through the public API plus the test-only pause of the indexer
 * (common/fault.h):
 *
 *   - every acknowledged write is found at once, by graph search and by
 *     exact search, before it is linked; deletes and upserts of tail
 *     documents apply at once;
 *   - the finished graph depends only on the order of the writes, not on
 *     when the linking ran (indexer paused, running, writers helping,
 *     close + reopen with a saved tail): the checkpoint files compare
 *     byte for byte;
 *   - back-pressure keeps the tail within max_index_lag;
 *   - akidb_index_wait (OK, BUSY at the timeout, errors) and the metrics;
 *   - checkpoints save the tail and a reopen puts it back in the tail;
 *     close saves a graph that grew since the last checkpoint;
 *   - a process SIGKILLed while the indexer is busy loses no acknowledged
 *     write: after reopen each is found by get, exact search and graph
 *     search, before and after the indexer catches up;
 *   - threads: writers, searchers, waiters and checkpoints at once (make
 *     tsan).
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "akidb.h"
#include "common/fault.h"

#define FAILF(...) akt_fail(__FILE__, __LINE__, __VA_ARGS__)

static const char *errmsg_detail(void)
{
    return akidb_errmsg(NULL);
}

__attribute__((constructor)) static void set_detail(void)
{
    akt_rc_detail_fn = errmsg_detail;
}

/* ---- helpers ---------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The vector of document `key` at `version`: distinct for distinct keys. */
static void doc_vec(float *out, uint32_t dim, uint64_t key, uint32_t version)
{
    uint64_t s = key * 0x100000001B3ull + version * 0x9E3779B97F4A7C15ull + 7;
    for (uint32_t d = 0; d < dim; d++)
        out[d] = (float)((double)(splitmix64(&s) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A clock that stands still, so two runs write identical inserted_at. */
static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return 1700000000000000;
}

static akidb *open_dir(const char *name, akidb_sync_mode mode, uint32_t max_lag,
                       uint64_t ckpt_bytes)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", akt_dir, name);
    akidb_options o;
    akidb_options_init(&o);
    o.sync_mode = mode;
    o.max_index_lag = max_lag;
    o.checkpoint_bytes = ckpt_bytes;
    o.clock_us = fixed_clock;
    akidb *db = NULL;
    ASSERT_OK(akidb_open(path, &o, &db));
    return db;
}

static void create(akidb *db, const char *name, uint32_t dim, akidb_metric metric, uint32_t m,
                   uint32_t ef_c)
{
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, dim, metric);
    cfg.hnsw_m = m;
    cfg.ef_construction = ef_c;
    ASSERT_OK(akidb_collection_create(db, name, &cfg));
}

static uint64_t lag_of(akidb *db, const char *coll)
{
    akidb_collection_stats st;
    memset(&st, 0, sizeof st);
    st.version = AKIDB_COLLECTION_STATS_VERSION;
    ASSERT_OK(akidb_collection_stat(db, coll, &st));
    return st.index_lag;
}

static int64_t metric(akidb *db, const char *name)
{
    int64_t v = -1;
    ASSERT_OK(akidb_metric_value(db, name, &v));
    return v;
}

/* Search for `v` (graph search unless exact); 1 if the best hit is `id`
 * at distance 0 (vectors are distinct, so nothing else can tie). */
static int finds(akidb *db, const char *coll, const float *v, uint64_t id, int exact)
{
    akidb_search_params p;
    akidb_search_params_init(&p);
    p.exact = exact;
    p.ef = 128;
    akidb_hit hits[3];
    uint32_t n = 0;
    ASSERT_OK(akidb_search(db, coll, v, 3, &p, hits, &n));
    /* L2: exactly 0; cosine: 1 - a rounded unit dot product */
    return n > 0 && hits[0].id == id && fabsf(hits[0].distance) <= 1e-5f;
}

/* 1 if no hit of a search for v (k = 5, graph search) is `id`. */
static int never_returns(akidb *db, const char *coll, const float *v, uint64_t id)
{
    akidb_hit hits[5];
    uint32_t n = 0;
    ASSERT_OK(akidb_search(db, coll, v, 5, NULL, hits, &n));
    for (uint32_t i = 0; i < n; i++)
        if (hits[i].id == id)
            return 0;
    return 1;
}

static unsigned char *slurp(const char *path, size_t *len_out)
{
    int fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    struct stat st;
    ASSERT(fstat(fd, &st) == 0);
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    ASSERT(buf != NULL);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        ASSERT(r > 0);
        got += (size_t)r;
    }
    close(fd);
    *len_out = got;
    return buf;
}

/* ---- the tail is searched ----------------------------------------------- */

TEST(ingest_search_sees_tail)
{
    static const akidb_metric metrics[] = { AKIDB_METRIC_L2, AKIDB_METRIC_COSINE,
                                            AKIDB_METRIC_DOT };
    enum { DIM = 24, N = 600 };
    akidb *db = open_dir("db", AKIDB_SYNC_NONE, AKIDB_NEVER, 0);
    float *v = malloc((size_t)N * DIM * sizeof(float));
    uint64_t *ids = malloc(N * sizeof *ids);
    ASSERT(v && ids);
    for (size_t mi = 0; mi < 3; mi++) {
        char name[16];
        snprintf(name, sizeof name, "c%zu", mi);
        create(db, name, DIM, metrics[mi], 8, 64);
        /* half linked, half in the tail */
        for (uint32_t i = 0; i < N; i++)
            doc_vec(v + (size_t)i * DIM, DIM, i, (uint32_t)mi);
        ASSERT_OK(akidb_insert(db, name, N / 2, v, NULL, NULL, ids));
        ASSERT_OK(akidb_index_wait(db, name, AKIDB_NEVER));
        akidb__db_index_pause(db, 1);
        ASSERT_OK(akidb_insert(db, name, N / 2, v + (size_t)(N / 2) * DIM, NULL, NULL,
                               ids + N / 2));
        ASSERT_EQ(lag_of(db, name), N / 2);
        for (uint32_t i = 0; i < N; i++) {
            float back[DIM];
            ASSERT_OK(akidb_get(db, name, ids[i], back, NULL));
            /* for cosine the stored (normalised) vector is what is found at 0 */
            const float *q = metrics[mi] == AKIDB_METRIC_COSINE ? back : v + (size_t)i * DIM;
            if (metrics[mi] == AKIDB_METRIC_DOT) {
                /* DOT has no distance-0 self match: check membership */
                akidb_hit hits[N];
                uint32_t n = 0;
                akidb_search_params p;
                akidb_search_params_init(&p);
                p.exact = 1;
                ASSERT_OK(akidb_search(db, name, q, 10, &p, hits, &n));
                akidb_hit g[10];
                uint32_t ng = 0;
                ASSERT_OK(akidb_search(db, name, q, 10, NULL, g, &ng));
                /* the tail's exact part: any tail document in the exact
                 * top 10 is in the graph search's top 10 too */
                for (uint32_t h = 0; h < n; h++) {
                    if (hits[h].id <= ids[N / 2 - 1])
                        continue;
                    int in = 0;
                    for (uint32_t j = 0; j < ng; j++)
                        in |= g[j].id == hits[h].id;
                    if (!in)
                        FAILF("%s: tail document %llu of the exact top 10 is missing from "
                              "the graph search", name, (unsigned long long)hits[h].id);
                }
                continue;
            }
            if (!finds(db, name, q, ids[i], 0) || !finds(db, name, q, ids[i], 1))
                FAILF("%s: document %u (id %llu, %s) not found by its own vector", name, i,
                      (unsigned long long)ids[i], i < N / 2 ? "linked" : "in the tail");
        }
        akidb__db_index_pause(db, 0);
        ASSERT_OK(akidb_index_wait(db, name, AKIDB_NEVER));
        ASSERT_EQ(lag_of(db, name), 0);
    }
    free(v);
    free(ids);
    ASSERT_OK(akidb_close(db));
}

TEST(ingest_deletes_and_upserts_in_tail)
{
    enum { DIM = 16, N = 400 };
    akidb *db = open_dir("db", AKIDB_SYNC_NONE, AKIDB_NEVER, 0);
    create(db, "c", DIM, AKIDB_METRIC_L2, 8, 64);
    float v[DIM];
    /* a linked graph first, so a graph search returns k hits of its own
     * and only the tail scan can bring the tail's documents in */
    for (uint32_t i = 0; i < 200; i++) {
        doc_vec(v, DIM, 50000 + i, 0);
        ASSERT_OK(akidb_insert(db, "c", 1, v, NULL, NULL, NULL));
    }
    ASSERT_OK(akidb_index_wait(db, "c", AKIDB_NEVER));
    akidb__db_index_pause(db, 1);
    uint64_t ids[N];
    char ext[N][16];
    for (uint32_t i = 0; i < N; i++) {
        doc_vec(v, DIM, i, 0);
        snprintf(ext[i], sizeof ext[i], "k%u", i);
        const char *e = ext[i];
        ASSERT_OK(akidb_insert(db, "c", 1, v, &e, NULL, &ids[i]));
    }
    ASSERT_EQ(lag_of(db, "c"), N);
    /* delete every 4th, upsert every 4th + 1 with a new vector: all while
     * every node is still in the tail */
    for (uint32_t i = 0; i < N; i += 4) {
        ASSERT_OK(akidb_delete(db, "c", ids[i]));
        doc_vec(v, DIM, i + 1, 1);
        const char *e = ext[i + 1];
        uint64_t id;
        ASSERT_OK(akidb_upsert(db, "c", 1, v, &e, NULL, &id));
        ASSERT_EQ(id, ids[i + 1]);
    }
    uint64_t count = 0;
    ASSERT_OK(akidb_collection_count(db, "c", &count));
    ASSERT_EQ(count, 200 + N - N / 4);
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < N; i++) {
            doc_vec(v, DIM, i, 0);
            if (i % 4 == 0) {
                ASSERT_EQ(akidb_get(db, "c", ids[i], NULL, NULL), AKIDB_NOTFOUND);
                if (!never_returns(db, "c", v, ids[i]))
                    FAILF("round %d: deleted document %u returned by a search", round, i);
            } else if (i % 4 == 1) {
                /* the old vector is gone, the new one is found under the same id */
                float now[DIM];
                ASSERT_OK(akidb_get(db, "c", ids[i], now, NULL));
                float nv[DIM];
                doc_vec(nv, DIM, i, 1);
                ASSERT_EQ(memcmp(now, nv, sizeof nv), 0);
                if (!finds(db, "c", nv, ids[i], 0) || !finds(db, "c", nv, ids[i], 1))
                    FAILF("round %d: upserted document %u not found by its new vector", round,
                          i);
                akidb_hit h[1];
                uint32_t n = 0;
                ASSERT_OK(akidb_search(db, "c", v, 1, NULL, h, &n));
                ASSERT(n == 1 && !(h[0].id == ids[i] && h[0].distance == 0.0f));
            } else if (!finds(db, "c", v, ids[i], 0)) {
                FAILF("round %d: document %u not found", round, i);
            }
        }
        /* the same after the indexer has linked everything, tombstones too */
        akidb__db_index_pause(db, 0);
        ASSERT_OK(akidb_index_wait(db, "c", AKIDB_NEVER));
        akidb_collection_stats st;
        memset(&st, 0, sizeof st);
        st.version = AKIDB_COLLECTION_STATS_VERSION;
        ASSERT_OK(akidb_collection_stat(db, "c", &st));
        ASSERT_EQ(st.index_lag, 0);
        ASSERT_EQ(st.count, 200 + N - N / 4);
        ASSERT_EQ(st.deleted, N / 4 + N / 4);   /* deleted + replaced nodes */
    }
    ASSERT_OK(akidb_close(db));
}

/* ---- the graph does not depend on when it was linked -------------------- */

enum { G_DIM = 8, G_BATCHES = 30, G_BATCH = 40 };

/* One step of the workload: insert batch b, then delete and upsert a few
 * documents of earlier batches (some linked, some in the tail). */
static void g_step(akidb *db, uint32_t b)
{
    float v[G_BATCH * G_DIM];
    char ext[G_BATCH][16];
    const char *ep[G_BATCH];
    for (uint32_t i = 0; i < G_BATCH; i++) {
        doc_vec(v + i * G_DIM, G_DIM, (uint64_t)b * G_BATCH + i, 0);
        snprintf(ext[i], sizeof ext[i], "e%u", b * G_BATCH + i);
        ep[i] = ext[i];
    }
    ASSERT_OK(akidb_insert(db, "g", G_BATCH, v, ep, NULL, NULL));
    if (b == 0)
        return;
    uint64_t id;
    char e[16];
    snprintf(e, sizeof e, "e%u", (b - 1) * G_BATCH + b % G_BATCH);
    ASSERT_OK(akidb_lookup(db, "g", e, &id));
    ASSERT_OK(akidb_delete(db, "g", id));
    const char *up = ext[(b * 7) % G_BATCH];
    doc_vec(v, G_DIM, 100000 + b, 1);
    ASSERT_OK(akidb_upsert(db, "g", 1, v, &up, NULL, NULL));
}

/* Run the workload in directory `name` in one of four ways, checkpoint
 * the finished graph and return the checkpoint file's bytes. */
static unsigned char *g_run(const char *name, int how, size_t *len)
{
    uint32_t lag = how == 3 ? 25 : AKIDB_NEVER;
    akidb *db = open_dir(name, AKIDB_SYNC_NONE, lag, 1ull << 40);
    create(db, "g", G_DIM, AKIDB_METRIC_L2, 6, 40);
    if (how == 0 || how == 2 || how == 3)
        akidb__db_index_pause(db, 1);   /* 3: writers do all the linking */
    for (uint32_t b = 0; b < G_BATCHES; b++) {
        g_step(db, b);
        if (how == 1)
            ASSERT_OK(akidb_index_wait(db, "g", AKIDB_NEVER));
        if (how == 2 && b == G_BATCHES / 2) {
            /* a checkpoint holding a tail, then a reopen that loads it */
            ASSERT(lag_of(db, "g") > 0);
            ASSERT_OK(akidb_close(db));
            db = open_dir(name, AKIDB_SYNC_NONE, lag, 1ull << 40);
            akidb__db_index_pause(db, 1);
        }
    }
    if (how == 3)
        ASSERT_LE(lag_of(db, "g"), 25);
    akidb__db_index_pause(db, 0);
    ASSERT_OK(akidb_index_wait(db, "g", AKIDB_NEVER));
    ASSERT_OK(akidb_checkpoint(db, "g"));
    ASSERT_OK(akidb_close(db));
    char path[512];
    snprintf(path, sizeof path, "%s/%s/ckpt/1.ckpt", akt_dir, name);
    return slurp(path, len);
}

TEST_TIMEOUT(ingest_graph_independent_of_timing, 120)
{
    static const char *how_name[] = { "indexer paused until the end",
                                      "index_wait after every step",
                                      "close and reopen with a tail halfway",
                                      "writers linking under back-pressure" };
    size_t len0;
    unsigned char *ref = g_run("how0", 0, &len0);
    for (int how = 1; how < 4; how++) {
        char name[16];
        snprintf(name, sizeof name, "how%d", how);
        size_t len;
        unsigned char *got = g_run(name, how, &len);
        if (len != len0 || memcmp(got, ref, len) != 0)
            FAILF("checkpoint after \"%s\" differs from \"%s\" (%zu vs %zu bytes)",
                  how_name[how], how_name[0], len, len0);
        free(got);
    }
    free(ref);
}

/* ---- back-pressure and waiting -------------------------------------- */

TEST(ingest_backpressure)
{
    enum { DIM = 8, BOUND = 100, BATCH = 40, ROUNDS = 30 };
    akidb *db = open_dir("db", AKIDB_SYNC_NONE, BOUND, 0);
    create(db, "c", DIM, AKIDB_METRIC_L2, 8, 32);
    akidb__db_index_pause(db, 1);
    float v[BATCH * DIM];
    for (uint32_t r = 0; r < ROUNDS; r++) {
        for (uint32_t i = 0; i < BATCH; i++)
            doc_vec(v + i * DIM, DIM, (uint64_t)r * BATCH + i, 0);
        ASSERT_OK(akidb_insert(db, "c", BATCH, v, NULL, NULL, NULL));
        uint64_t lag = lag_of(db, "c");
        ASSERT_LE(lag, BOUND);
        ASSERT_EQ(lag, (r + 1) * BATCH < BOUND ? (r + 1) * BATCH : BOUND);
    }
    /* only the writers linked, exactly what went past the bound */
    ASSERT_EQ(metric(db, "akidb_index_writer_linked_total"), ROUNDS * BATCH - BOUND);
    ASSERT_EQ(metric(db, "akidb_index_linked_total"), ROUNDS * BATCH - BOUND);
    ASSERT_EQ(metric(db, "akidb_index_pending_documents"), BOUND);
    /* paused: the tail does not drain, so a wait times out */
    double t0 = now_s();
    ASSERT_EQ(akidb_index_wait(db, "c", 50), AKIDB_BUSY);
    ASSERT_GE(now_s() - t0, 0.045);
    ASSERT(strstr(akidb_errmsg(db), "100 documents") != NULL);
    ASSERT_EQ(akidb_index_wait(db, NULL, 0), AKIDB_BUSY);
    akidb__db_index_pause(db, 0);
    ASSERT_OK(akidb_index_wait(db, NULL, AKIDB_NEVER));
    ASSERT_EQ(metric(db, "akidb_index_pending_documents"), 0);
    ASSERT_EQ(metric(db, "akidb_index_linked_total"), ROUNDS * BATCH);
    ASSERT_EQ(metric(db, "akidb_index_writer_linked_total"), ROUNDS * BATCH - BOUND);
    ASSERT_OK(akidb_close(db));
}

typedef struct resumer {
    akidb *db;
    int delay_ms;
} resumer;

static void *resume_later(void *arg)
{
    resumer *r = arg;
    struct timespec ts = { 0, (long)r->delay_ms * 1000000L };
    nanosleep(&ts, NULL);
    akidb__db_index_pause(r->db, 0);
    return NULL;
}

TEST(ingest_index_wait_api)
{
    akidb *db = open_dir("db", AKIDB_SYNC_NONE, 0, 0);
    ASSERT_OK(akidb_index_wait(db, NULL, 0));              /* no collection at all */
    create(db, "a", 4, AKIDB_METRIC_L2, 4, 16);
    create(db, "b", 4, AKIDB_METRIC_L2, 4, 16);
    ASSERT_OK(akidb_index_wait(db, "a", 0));               /* empty */
    ASSERT_EQ(akidb_index_wait(db, "nope", 0), AKIDB_NOTFOUND);
    ASSERT_EQ(akidb_index_wait(db, "bad name!", 0), AKIDB_INVALID);
    ASSERT_EQ(akidb_index_wait(NULL, "a", 0), AKIDB_MISUSE);

    akidb__db_index_pause(db, 1);
    float v[4] = { 1, 2, 3, 4 };
    ASSERT_OK(akidb_insert(db, "b", 1, v, NULL, NULL, NULL));
    ASSERT_OK(akidb_index_wait(db, "a", 0));               /* a's tail is empty */
    ASSERT_EQ(akidb_index_wait(db, "b", 0), AKIDB_BUSY);
    ASSERT_EQ(akidb_index_wait(db, NULL, 10), AKIDB_BUSY);
    /* a waiter with no limit returns when the indexer resumes and drains */
    resumer r = { db, 100 };
    pthread_t t;
    double t0 = now_s();   /* before the thread starts its 100 ms */
    ASSERT_EQ(pthread_create(&t, NULL, resume_later, &r), 0);
    ASSERT_OK(akidb_index_wait(db, NULL, AKIDB_NEVER));
    double waited = now_s() - t0;
    pthread_join(t, NULL);
    ASSERT_GE(waited, 0.099);
    ASSERT_EQ(lag_of(db, "b"), 0);

    /* dropping a collection with a tail wakes its waiters */
    akidb__db_index_pause(db, 1);
    ASSERT_OK(akidb_insert(db, "a", 1, v, NULL, NULL, NULL));
    ASSERT_EQ(akidb_index_wait(db, NULL, 0), AKIDB_BUSY);
    ASSERT_OK(akidb_collection_drop(db, "a"));
    ASSERT_OK(akidb_index_wait(db, NULL, 0));
    ASSERT_EQ(metric(db, "akidb_index_pending_documents"), 0);
    akidb__db_index_pause(db, 0);
    ASSERT_OK(akidb_close(db));
}

/* ---- checkpoints, close and reopen -------------------------------------- */

TEST_TIMEOUT(ingest_checkpoint_keeps_tail, 120)
{
    /* 2800 documents to link after the reopen with ef_construction 400:
     * about a second of the indexer's work, against the few milliseconds
     * the checks of the newest documents take right after the open */
    enum { DIM = 32, N = 3000 };
    akidb *db = open_dir("db", AKIDB_SYNC_NONE, AKIDB_NEVER, 0);
    create(db, "c", DIM, AKIDB_METRIC_L2, 16, 400);
    float *v = malloc((size_t)N * DIM * sizeof(float));
    uint64_t *ids = malloc(N * sizeof *ids);
    ASSERT(v != NULL && ids != NULL);
    for (uint32_t i = 0; i < N; i++)
        doc_vec(v + (size_t)i * DIM, DIM, i, 0);
    ASSERT_OK(akidb_insert(db, "c", 200, v, NULL, NULL, ids));
    ASSERT_OK(akidb_index_wait(db, "c", AKIDB_NEVER));
    akidb__db_index_pause(db, 1);
    ASSERT_OK(akidb_insert(db, "c", N - 200, v + 200 * DIM, NULL, NULL, ids + 200));
    ASSERT_EQ(lag_of(db, "c"), N - 200);
    ASSERT_OK(akidb_checkpoint(db, "c"));
    /* the file says where its tail starts, and is format 2 */
    char path[512], *text = NULL;
    snprintf(path, sizeof path, "%s/db/ckpt/1.ckpt", akt_dir);
    ASSERT_OK(akidb_parquet_inspect(path, &text));
    if (!strstr(text, "akidb.hnsw_linked_rows") || !strstr(text, "200"))
        FAILF("the checkpoint does not record its tail:\n%s", text);
    akidb_free(text);
    /* close writes nothing more (no record since the checkpoint, graph
     * unchanged: paused); the reopen loads graph + tail from the
     * checkpoint, with nothing linked during the open */
    struct stat s0, s1, s2;
    ASSERT(stat(path, &s0) == 0);
    ASSERT_OK(akidb_close(db));
    ASSERT(stat(path, &s1) == 0);
    ASSERT(s0.st_ino == s1.st_ino);
    db = open_dir("db", AKIDB_SYNC_NONE, AKIDB_NEVER, 0);
    uint64_t lag = lag_of(db, "c");
    ASSERT_LE(lag, N - 200);
    /* the newest first: they are the end of the tail */
    for (uint32_t i = N; i-- > N - 100;)
        if (!finds(db, "c", v + (size_t)i * DIM, ids[i], 0))
            FAILF("document %u not found after the reopen (lag %llu)", i,
                  (unsigned long long)lag);
    /* still in the tail after those checks: they found tail documents */
    uint64_t lag_after = lag_of(db, "c");
    if (lag_after < 100)
        FAILF("the indexer linked %llu documents during 100 searches: the checks did not "
              "see a tail (the machine is much faster than this test assumes)",
              (unsigned long long)(lag - lag_after));
    for (uint32_t i = 0; i < N; i++)
        if (!finds(db, "c", v + (size_t)i * DIM, ids[i], 0))
            FAILF("document %u not found after the reopen", i);
    ASSERT_OK(akidb_index_wait(db, "c", AKIDB_NEVER));
    for (uint32_t i = 0; i < N; i++)
        if (!finds(db, "c", v + (size_t)i * DIM, ids[i], 0))
            FAILF("document %u not found once linked", i);
    /* close saves the graph that grew since the checkpoint, without any
     * new log record: the next open has nothing left to link */
    ASSERT_OK(akidb_close(db));
    ASSERT_OK(akidb_parquet_inspect(path, &text));
    ASSERT(strstr(text, "akidb.hnsw_linked_rows") == NULL);
    akidb_free(text);
    db = open_dir("db", AKIDB_SYNC_NONE, AKIDB_NEVER, 0);
    ASSERT_EQ(lag_of(db, "c"), 0);
    /* and a close with nothing new writes nothing */
    ASSERT(stat(path, &s1) == 0);
    ASSERT_OK(akidb_close(db));
    ASSERT(stat(path, &s2) == 0);
    ASSERT(s1.st_ino == s2.st_ino && s1.st_mtim.tv_nsec == s2.st_mtim.tv_nsec &&
           s1.st_mtim.tv_sec == s2.st_mtim.tv_sec);
    free(v);
    free(ids);
}

/* A snapshot taken with a tail restores it as a tail. */
TEST(ingest_snapshot_with_tail)
{
    enum { DIM = 8, N = 300 };
    akidb *db = open_dir("db", AKIDB_SYNC_NONE, AKIDB_NEVER, 0);
    create(db, "c", DIM, AKIDB_METRIC_L2, 6, 32);
    float v[N * DIM];
    uint64_t ids[N];
    for (uint32_t i = 0; i < N; i++)
        doc_vec(v + i * DIM, DIM, i, 0);
    ASSERT_OK(akidb_insert(db, "c", 100, v, NULL, NULL, ids));
    ASSERT_OK(akidb_index_wait(db, "c", AKIDB_NEVER));
    akidb__db_index_pause(db, 1);
    ASSERT_OK(akidb_insert(db, "c", N - 100, v + 100 * DIM, NULL, NULL, ids + 100));
    for (uint32_t i = 0; i < 100; i += 3)
        ASSERT_OK(akidb_delete(db, "c", ids[i]));     /* linked tombstones */
    for (uint32_t i = 101; i < N; i += 3)
        ASSERT_OK(akidb_delete(db, "c", ids[i]));     /* tail tombstones */
    char id[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_OK(akidb_snapshot_create(db, "c", id, sizeof id));
    float junk[DIM] = { 9 };
    ASSERT_OK(akidb_insert(db, "c", 1, junk, NULL, NULL, NULL));
    ASSERT_OK(akidb_snapshot_restore(db, "c", id));
    uint64_t lag = lag_of(db, "c");
    ASSERT(lag > 0 && lag < N - 100);   /* the live tail documents */
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < N; i++) {
            int deleted = (i < 100 && i % 3 == 0) || (i > 100 && (i - 101) % 3 == 0);
            if (deleted ? !never_returns(db, "c", v + i * DIM, ids[i])
                        : !finds(db, "c", v + i * DIM, ids[i], 0))
                FAILF("round %d: document %u (%s) wrong after the restore", round, i,
                      deleted ? "deleted" : "live");
        }
        akidb__db_index_pause(db, 0);
        ASSERT_OK(akidb_index_wait(db, "c", AKIDB_NEVER));
    }
    /* restored while the indexer runs (and sleeps, its work done): the
     * restored tail is linked without any other write to wake it */
    ASSERT_OK(akidb_snapshot_restore(db, "c", id));
    ASSERT_OK(akidb_index_wait(db, "c", 30000));
    ASSERT_OK(akidb_close(db));
}

/* ---- SIGKILL while the indexer is busy ---------------------------------- */

enum { K_DIM = 16, K_BATCH = 25 };

typedef struct kill_msg {
    uint32_t batch;       /* acknowledged insert of batch `batch` ... */
    uint32_t deleted;     /* ... or (batch | 1<<31) an acknowledged delete of `deleted` */
    uint32_t lag;         /* the tail after it */
} kill_msg;

static void k_ext(char *buf, size_t len, uint32_t batch, uint32_t i)
{
    snprintf(buf, len, "k%u-%u", batch, i);
}

/* Child: insert batches from `first` on (and delete a document of an
 * earlier acknowledged batch now and then), reporting each acknowledged
 * call; it runs until killed. */
static void k_writer(const char *dir, uint64_t ckpt_bytes, uint32_t first, int wfd)
{
    akidb_options o;
    akidb_options_init(&o);
    o.sync_mode = AKIDB_SYNC_ALWAYS;
    o.checkpoint_bytes = ckpt_bytes;
    o.max_index_lag = AKIDB_NEVER;
    akidb *db = NULL;
    if (akidb_open(dir, &o, &db) != AKIDB_OK)
        _exit(3);
    float v[K_BATCH * K_DIM];
    char ext[K_BATCH][24];
    const char *ep[K_BATCH];
    for (uint32_t b = first;; b++) {
        for (uint32_t i = 0; i < K_BATCH; i++) {
            doc_vec(v + i * K_DIM, K_DIM, (uint64_t)b * K_BATCH + i, 0);
            k_ext(ext[i], sizeof ext[i], b, i);
            ep[i] = ext[i];
        }
        if (akidb_insert(db, "k", K_BATCH, v, ep, NULL, NULL) != AKIDB_OK)
            _exit(4);
        kill_msg m = { b, 0, (uint32_t)lag_of(db, "k") };
        if (write(wfd, &m, sizeof m) != sizeof m)
            _exit(5);
        if (b % 3 == 2) {
            /* delete document 0 of this batch (acknowledged just above) */
            uint64_t id;
            char e[24];
            k_ext(e, sizeof e, b, 0);
            if (akidb_lookup(db, "k", e, &id) != AKIDB_OK || akidb_delete(db, "k", id) != AKIDB_OK)
                _exit(6);
            kill_msg d = { b | 1u << 31, 0, (uint32_t)lag_of(db, "k") };
            if (write(wfd, &d, sizeof d) != sizeof d)
                _exit(5);
        }
    }
}

/* Every acknowledged document is found by get, exact search and graph
 * search; acknowledged deletes hold.  acked[b]: 1 inserted, 2 and doc 0
 * deleted, 3 inserted and the delete of doc 0 maybe in flight at the kill
 * (it may be durable without its acknowledgement: either outcome is
 * right). */
static void k_verify(akidb *db, const unsigned char *acked, uint32_t n_batches,
                     const char *when, uint64_t *lag_after_newest)
{
    float v[K_DIM];
    /* newest first: they are the end of the tail, if there is one */
    uint32_t seen = 0;
    for (uint32_t b = n_batches; b-- > 0;) {
        if (!acked[b])
            continue;
        if (seen++ == 2 && lag_after_newest)
            *lag_after_newest = lag_of(db, "k");
        for (uint32_t i = 0; i < K_BATCH; i++) {
            char e[24];
            k_ext(e, sizeof e, b, i);
            uint64_t id = 0;
            int rc = akidb_lookup(db, "k", e, &id);
            if (i == 0 && acked[b] == 3 && rc == AKIDB_NOTFOUND)
                continue;
            if (i == 0 && acked[b] == 2) {
                if (rc != AKIDB_NOTFOUND)
                    FAILF("%s: %s was deleted (acknowledged) but lookup gives %d", when, e, rc);
                continue;
            }
            if (rc != AKIDB_OK)
                FAILF("%s: acknowledged document %s lost (lookup %d)", when, e, rc);
            doc_vec(v, K_DIM, (uint64_t)b * K_BATCH + i, 0);
            float back[K_DIM];
            ASSERT_OK(akidb_get(db, "k", id, back, NULL));
            ASSERT_EQ(memcmp(back, v, sizeof v), 0);
            if (!finds(db, "k", v, id, 1))
                FAILF("%s: %s not found by exact search", when, e);
            if (!finds(db, "k", v, id, 0))
                FAILF("%s: %s not found by graph search (lag %llu)", when, e,
                      (unsigned long long)lag_of(db, "k"));
        }
    }
}

TEST_TIMEOUT(ingest_crash_while_indexing, 240)
{
    enum { ITERS = 6, MAX_BATCHES = 4096 };
    char dir[512];
    snprintf(dir, sizeof dir, "%s/kdb", akt_dir);
    akidb_options o;
    akidb_options_init(&o);
    akidb *db = NULL;
    ASSERT_OK(akidb_open(dir, &o, &db));
    create(db, "k", K_DIM, AKIDB_METRIC_L2, 16, 200);   /* slow linking: a long tail */
    ASSERT_OK(akidb_close(db));
    unsigned char *acked = calloc(MAX_BATCHES, 1);
    ASSERT(acked != NULL);
    uint32_t next = 0, busy_kills = 0, busy_reopens = 0;
    uint64_t seed = 0x1CEB00DA;
    for (int it = 0; it < ITERS; it++) {
        /* even iterations checkpoint often (the tail goes into checkpoint
         * files), odd ones never (it is all in the log) */
        uint64_t ckpt_bytes = it % 2 ? 1ull << 40 : 64 * 1024;
        uint32_t kill_after = 10 + (uint32_t)(splitmix64(&seed) % 40);
        int fds[2];
        ASSERT(pipe(fds) == 0);
        fflush(stderr);
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(fds[0]);
            k_writer(dir, ckpt_bytes, next, fds[1]);
            _exit(0);
        }
        close(fds[1]);
        uint32_t n_msgs = 0, last_lag = 0, max_batch = next;
        kill_msg m;
        while (n_msgs < kill_after && read(fds[0], &m, sizeof m) == sizeof m) {
            uint32_t b = m.batch & ~(1u << 31);
            ASSERT(b < MAX_BATCHES);
            acked[b] = m.batch >> 31 ? 2 : 1;
            if (b + 1 > max_batch)
                max_batch = b + 1;
            last_lag = m.lag;
            n_msgs++;
        }
        kill(pid, SIGKILL);
        int st;
        ASSERT(waitpid(pid, &st, 0) == pid);
        /* acknowledgements written before the kill still count */
        while (read(fds[0], &m, sizeof m) == sizeof m) {
            uint32_t b = m.batch & ~(1u << 31);
            ASSERT(b < MAX_BATCHES);
            acked[b] = m.batch >> 31 ? 2 : 1;
            if (b + 1 > max_batch)
                max_batch = b + 1;
        }
        close(fds[0]);
        /* the newest batch's delete may have been in flight (k_writer
         * deletes doc 0 of every third batch right after inserting it) */
        if (max_batch > 0 && acked[max_batch - 1] == 1 && (max_batch - 1) % 3 == 2)
            acked[max_batch - 1] = 3;
        if (!WIFSIGNALED(st))
            FAILF("iteration %d: the writer exited with status %d before the kill", it,
                  WEXITSTATUS(st));
        if (n_msgs < kill_after)
            FAILF("iteration %d: the writer stopped after %u acknowledgements", it, n_msgs);
        busy_kills += last_lag > 0;
        /* the batch in flight at the kill may be applied or not: skip its
         * number for good either way (a re-insert would be a duplicate) */
        next = max_batch + 1;

        double t0 = now_s();
        ASSERT_OK(akidb_open(dir, &o, &db));
        double open_s = now_s() - t0;
        /* The indexer ran from the open on; stop it while the newest
         * writes (the end of the tail, linked last) are checked, so the
         * check sees them unlinked however fast the indexer is compared
         * with this thread on a loaded machine (it found none in the tail
         * once under `make test`). */
        akidb__db_index_pause(db, 1);
        char when[96];
        snprintf(when, sizeof when, "iteration %d, right after the reopen (%.3f s)", it, open_s);
        uint64_t lag_after = 0;
        k_verify(db, acked, next, when, &lag_after);
        /* the two newest acknowledged batches were checked while
         * unlinked if a tail of 2 batches was still left after them */
        busy_reopens += lag_after >= 2 * K_BATCH;
        akidb__db_index_pause(db, 0);
        ASSERT_OK(akidb_index_wait(db, "k", AKIDB_NEVER));
        snprintf(when, sizeof when, "iteration %d, once linked", it);
        k_verify(db, acked, next, when, NULL);
        ASSERT_OK(akidb_close(db));
    }
    fprintf(stderr, "  %d kills, %u with the indexer behind (tail > 0 at the last "
            "acknowledgement), %u reopens checked the newest writes in the tail\n", ITERS,
            busy_kills, busy_reopens);
    if (busy_kills == 0 || busy_reopens == 0)
        FAILF("no kill found the indexer behind, or no reopen had a tail when checked: the "
              "test did not test anything");
    free(acked);
}

/* ---- threads -------------------------------------------------------- */

enum { T_DIM = 12, T_WRITERS = 2, T_OPS = 150 };

typedef struct t_shared {
    akidb *db;
    atomic_int writers_done;
    atomic_int failures;
    char what[256];
    pthread_mutex_t mu;
} t_shared;

typedef struct t_writer {
    t_shared *sh;
    int idx;
} t_writer;

static void t_fail(t_shared *sh, const char *what, int a, int b)
{
    pthread_mutex_lock(&sh->mu);
    if (atomic_fetch_add(&sh->failures, 1) == 0)
        snprintf(sh->what, sizeof sh->what, "%s (%d, %d): %s", what, a, b, akidb_errmsg(NULL));
    pthread_mutex_unlock(&sh->mu);
}

/* Insert, then find the write at once by graph search; delete every
 * third, and check it is gone at once. */
static void *t_writer_main(void *arg)
{
    t_writer *w = arg;
    t_shared *sh = w->sh;
    for (int i = 0; i < T_OPS; i++) {
        float v[T_DIM];
        uint64_t key = (uint64_t)w->idx * 1000000 + (uint64_t)i;
        doc_vec(v, T_DIM, key, 3);
        uint64_t id;
        int rc = akidb_insert(sh->db, "t", 1, v, NULL, NULL, &id);
        if (rc != AKIDB_OK) {
            t_fail(sh, "insert", w->idx, i);
            break;
        }
        akidb_hit h[2];
        uint32_t n = 0;
        rc = akidb_search(sh->db, "t", v, 2, NULL, h, &n);
        if (rc != AKIDB_OK || n == 0 || h[0].id != id || h[0].distance != 0.0f)
            t_fail(sh, "own write not found at once", w->idx, i);
        if (i % 3 == 0) {
            if (akidb_delete(sh->db, "t", id) != AKIDB_OK)
                t_fail(sh, "delete", w->idx, i);
            rc = akidb_search(sh->db, "t", v, 2, NULL, h, &n);
            if (rc != AKIDB_OK || (n > 0 && h[0].id == id))
                t_fail(sh, "deleted write still found", w->idx, i);
        }
    }
    atomic_fetch_add(&sh->writers_done, 1);
    return NULL;
}

static void *t_waiter_main(void *arg)
{
    t_shared *sh = arg;
    int round = 0;
    while (atomic_load(&sh->writers_done) < T_WRITERS) {
        int rc = akidb_index_wait(sh->db, round % 2 ? "t" : NULL, 2);
        if (rc != AKIDB_OK && rc != AKIDB_BUSY)
            t_fail(sh, "index_wait", rc, round);
        if (round % 5 == 0 && akidb_checkpoint(sh->db, "t") != AKIDB_OK)
            t_fail(sh, "checkpoint", round, 0);
        akidb_collection_stats st;
        memset(&st, 0, sizeof st);
        st.version = AKIDB_COLLECTION_STATS_VERSION;
        if (akidb_collection_stat(sh->db, "t", &st) != AKIDB_OK)
            t_fail(sh, "stat", round, 0);
        round++;
    }
    return NULL;
}

TEST_TIMEOUT(ingest_threads, 120)
{
    t_shared sh;
    memset(&sh, 0, sizeof sh);
    pthread_mutex_init(&sh.mu, NULL);
    sh.db = open_dir("db", AKIDB_SYNC_INTERVAL, 64, 32 * 1024);
    create(sh.db, "t", T_DIM, AKIDB_METRIC_L2, 8, 64);
    pthread_t wt[T_WRITERS], waiter;
    t_writer w[T_WRITERS];
    for (int i = 0; i < T_WRITERS; i++) {
        w[i].sh = &sh;
        w[i].idx = i;
        ASSERT_EQ(pthread_create(&wt[i], NULL, t_writer_main, &w[i]), 0);
    }
    ASSERT_EQ(pthread_create(&waiter, NULL, t_waiter_main, &sh), 0);
    for (int i = 0; i < T_WRITERS; i++)
        pthread_join(wt[i], NULL);
    pthread_join(waiter, NULL);
    if (atomic_load(&sh.failures))
        FAILF("%d failures; first: %s", atomic_load(&sh.failures), sh.what);
    ASSERT_OK(akidb_index_wait(sh.db, NULL, AKIDB_NEVER));
    uint64_t n = 0;
    ASSERT_OK(akidb_collection_count(sh.db, "t", &n));
    ASSERT_EQ(n, T_WRITERS * (T_OPS - (T_OPS + 2) / 3));
    ASSERT_OK(akidb_close(sh.db));
    pthread_mutex_destroy(&sh.mu);
}
