/*
 * test_concurrency.c - one handle shared by many threads.
 *
 * Readers search while a writer inserts, upserts and deletes on the same
 * collection; writers work on different collections (and on one shared
 * collection) in parallel; collections are created and dropped while
 * others are searched.  Every test is bounded by iteration counts, not wall
 * time, and checks what the thread rules promise: no errors, every hit a
 * document that existed, results sorted, no id twice in one result, deleted
 * documents never returned, untouched documents read back unchanged.  The
 * suite must also be clean under `make tsan`.
 */
#include "runner.h"
#include "helpers.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#include "akidb.h"

/* ---- helpers ---------------------------------------------------------- */

/* The vector of document `key` at `version`: deterministic. */
static void doc_vec(float *out, uint32_t dim, uint64_t key, uint32_t version)
{
    uint64_t s = key * 0x100000001B3ull + version * 0x9E3779B97F4A7C15ull + 1;
    for (uint32_t d = 0; d < dim; d++)
        out[d] = rand_sym(&s) * 4.0f;
}

/* These tests are about threads, not durability: most skip the fsync. */
static akidb *open_db(akidb_sync_mode sync_mode)
{
    char path[512];
    snprintf(path, sizeof path, "%s/db", akt_dir);
    akidb_options opts;
    akidb_options_init(&opts);
    opts.sync_mode = sync_mode;
    akidb *db = NULL;
    ASSERT_OK(akidb_open(path, &opts, &db));
    return db;
}

static void create_coll(akidb *db, const char *name, uint32_t dim, akidb_metric metric,
                        uint32_t ef_construction)
{
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, dim, metric);
    cfg.ef_construction = ef_construction;
    ASSERT_OK(akidb_collection_create(db, name, &cfg));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int in_sorted(const uint64_t *set, size_t n, uint64_t id)
{
    return bsearch(&id, set, n, sizeof *set, cmp_u64) != NULL;
}

static double l2sq_ref(const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    for (uint32_t i = 0; i < dim; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return s;
}

/* Thread failures are recorded, not asserted (akt_fail exits the process
 * from whichever thread calls it, which is fine, but a message naming the
 * thread's view is more useful); the main thread asserts after joining. */
typedef struct failure {
    char what[256];
} failure;

static void record(failure *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keep the first failure only. */
static void record(failure *f, const char *fmt, ...)
{
    if (f->what[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->what, sizeof f->what, fmt, ap);
    va_end(ap);
}

/* ---- readers + one writer on one collection --------------------------- */

enum {
    RW_DIM = 16,
    RW_BASE = 2000,     /* documents before the readers start */
    RW_K = 10,
    RW_READERS = 4,
    RW_WRITER_OPS = 800,
    RW_MIN_SEARCHES = 300,
    RW_MAX_SEARCHES = 40000,
};

typedef struct rw_shared {
    akidb *db;
    uint64_t base_ids[RW_BASE];        /* by base index */
    uint64_t sorted_deleted[RW_BASE];  /* D: deleted before readers start */
    size_t n_deleted;
    uint64_t sorted_immutable[RW_BASE];/* never touched by the writer */
    size_t n_immutable;
    atomic_int writer_done;
} rw_shared;

typedef struct rw_reader {
    rw_shared *sh;
    int idx;
    uint64_t *seen;                    /* every hit id, checked after join */
    size_t n_seen, seen_cap;
    unsigned n_searches;
    failure fail;
} rw_reader;

static void *rw_reader_main(void *arg)
{
    rw_reader *r = arg;
    rw_shared *sh = r->sh;
    uint64_t seed = 1000 + (uint64_t)r->idx;
    akidb_search_params p;
    akidb_search_params_init(&p);
    unsigned i = 0;
    while (i < RW_MIN_SEARCHES ||
           (!atomic_load(&sh->writer_done) && i < RW_MAX_SEARCHES)) {
        float q[RW_DIM];
        doc_vec(q, RW_DIM, splitmix64(&seed) % RW_BASE, 0);
        q[0] += 0.5f;
        p.exact = (i % 7 == 3);
        akidb_hit hits[RW_K];
        uint32_t n_hits = 0;
        int rc = akidb_search(sh->db, "c", q, RW_K, &p, hits, &n_hits);
        if (rc != AKIDB_OK) {
            record(&r->fail, "search %u: rc %d (%s)", i, rc, akidb_errmsg(NULL));
            break;
        }
        if (n_hits != RW_K)
            record(&r->fail, "search %u: n_hits %u != %d", i, n_hits, RW_K);
        for (uint32_t h = 0; h < n_hits; h++) {
            if (h > 0 && !(hits[h - 1].distance <= hits[h].distance))
                record(&r->fail, "search %u: unsorted at rank %u", i, h);
            for (uint32_t j = 0; j < h; j++)
                if (hits[j].id == hits[h].id)
                    record(&r->fail, "search %u: id %llu twice", i,
                           (unsigned long long)hits[h].id);
            if (in_sorted(sh->sorted_deleted, sh->n_deleted, hits[h].id))
                record(&r->fail, "search %u: returned id %llu, deleted before it began", i,
                       (unsigned long long)hits[h].id);
            if (r->n_seen < r->seen_cap)
                r->seen[r->n_seen++] = hits[h].id;
            /* an untouched document: its stored vector gives the distance */
            if (in_sorted(sh->sorted_immutable, sh->n_immutable, hits[h].id)) {
                float v[RW_DIM];
                rc = akidb_get(sh->db, "c", hits[h].id, v, NULL);
                if (rc != AKIDB_OK)
                    record(&r->fail, "get of untouched id %llu: rc %d",
                           (unsigned long long)hits[h].id, rc);
                else if (fabs(l2sq_ref(q, v, RW_DIM) - hits[h].distance) >
                         1e-4 * fmax(1.0, hits[h].distance))
                    record(&r->fail, "search %u: distance of untouched id %llu is off", i,
                           (unsigned long long)hits[h].id);
            }
        }
        if (i % 16 == 0) {
            uint64_t n = 0;
            rc = akidb_collection_count(sh->db, "c", &n);
            if (rc != AKIDB_OK || n < RW_BASE - sh->n_deleted)
                record(&r->fail, "count: rc %d, n %llu", rc, (unsigned long long)n);
            /* an untouched base document by external id */
            char ext[32];
            size_t b = (size_t)(splitmix64(&seed) % RW_BASE);
            b = b - b % 4 + 1;   /* base index % 4 == 1: untouched */
            if (b >= RW_BASE)
                b = 1;
            snprintf(ext, sizeof ext, "base-%zu", b);
            uint64_t id = 0;
            rc = akidb_lookup(sh->db, "c", ext, &id);
            if (rc != AKIDB_OK || id != sh->base_ids[b])
                record(&r->fail, "lookup %s: rc %d, id %llu", ext, rc, (unsigned long long)id);
        }
        i++;
    }
    r->n_searches = i;
    return NULL;
}

typedef struct rw_writer {
    rw_shared *sh;
    uint64_t *inserted;      /* ids of documents it inserted */
    size_t n_inserted;
    failure fail;
} rw_writer;

static void *rw_writer_main(void *arg)
{
    rw_writer *w = arg;
    akidb *db = w->sh->db;
    uint64_t seed = 4242;
    for (int op = 0; op < RW_WRITER_OPS; op++) {
        /* insert a batch of 4 new documents */
        float v[4 * RW_DIM];
        char ext_buf[4][32];
        const char *ext[4];
        const char *meta[4] = { "{\"w\":1}", NULL, "{\"w\":2}", NULL };
        for (int j = 0; j < 4; j++) {
            doc_vec(v + j * RW_DIM, RW_DIM, 100000 + (uint64_t)op * 4 + (uint64_t)j, 0);
            snprintf(ext_buf[j], sizeof ext_buf[j], "new-%d-%d", op, j);
            ext[j] = ext_buf[j];
        }
        uint64_t ids[4];
        int rc = akidb_insert(db, "c", 4, v, ext, meta, ids);
        if (rc != AKIDB_OK) {
            record(&w->fail, "%s: insert rc %d op %d", akidb_errmsg(NULL), rc, op);
            break;
        }
        for (int j = 0; j < 4; j++)
            w->inserted[w->n_inserted++] = ids[j];
        /* delete one of its own new documents */
        rc = akidb_delete(db, "c", ids[op % 4]);
        if (rc != AKIDB_OK)
            record(&w->fail, "%s: delete rc %d op %d", akidb_errmsg(NULL), rc, op);
        /* upsert two base documents with index % 4 == 2 or 3 (never D,
         * never the untouched ones) to a new version */
        size_t b1 = (size_t)(splitmix64(&seed) % (RW_BASE / 4)) * 4 + 2;
        size_t b2 = (size_t)(splitmix64(&seed) % (RW_BASE / 4)) * 4 + 3;
        char e1[32], e2[32];
        snprintf(e1, sizeof e1, "base-%zu", b1);
        snprintf(e2, sizeof e2, "base-%zu", b2);
        const char *uext[2] = { e1, e2 };
        float uv[2 * RW_DIM];
        doc_vec(uv, RW_DIM, b1, (uint32_t)op + 1);
        doc_vec(uv + RW_DIM, RW_DIM, b2, (uint32_t)op + 1);
        uint64_t uids[2];
        rc = akidb_upsert(db, "c", 2, uv, uext, NULL, uids);
        if (rc != AKIDB_OK)
            record(&w->fail, "%s: upsert rc %d op %d", akidb_errmsg(NULL), rc, op);
        else if (uids[0] != w->sh->base_ids[b1] || uids[1] != w->sh->base_ids[b2])
            record(&w->fail, "%s: upsert changed the id (op %d)", e1, op);
    }
    atomic_store(&w->sh->writer_done, 1);
    return NULL;
}

TEST_TIMEOUT(conc_readers_and_writer, 120)
{
    rw_shared *sh = calloc(1, sizeof *sh);
    ASSERT(sh != NULL);
    sh->db = open_db(AKIDB_SYNC_NONE);
    create_coll(sh->db, "c", RW_DIM, AKIDB_METRIC_L2, 64);

    /* phase 0: the base documents */
    float *v = malloc((size_t)RW_BASE * RW_DIM * sizeof(float));
    char (*ext_buf)[32] = malloc((size_t)RW_BASE * 32);
    const char **ext = malloc(RW_BASE * sizeof *ext);
    ASSERT(v != NULL && ext_buf != NULL && ext != NULL);
    for (size_t i = 0; i < RW_BASE; i++) {
        doc_vec(v + i * RW_DIM, RW_DIM, i, 0);
        snprintf(ext_buf[i], 32, "base-%zu", i);
        ext[i] = ext_buf[i];
    }
    ASSERT_OK(akidb_insert(sh->db, "c", RW_BASE, v, ext, NULL, sh->base_ids));

    /* phase 1: delete D (base index % 4 == 0) before any reader starts */
    for (size_t i = 0; i < RW_BASE; i += 4) {
        ASSERT_OK(akidb_delete(sh->db, "c", sh->base_ids[i]));
        sh->sorted_deleted[sh->n_deleted++] = sh->base_ids[i];
    }
    qsort(sh->sorted_deleted, sh->n_deleted, sizeof(uint64_t), cmp_u64);
    for (size_t i = 1; i < RW_BASE; i += 4)
        sh->sorted_immutable[sh->n_immutable++] = sh->base_ids[i];
    qsort(sh->sorted_immutable, sh->n_immutable, sizeof(uint64_t), cmp_u64);

    /* phase 2: readers and the writer together */
    rw_reader readers[RW_READERS];
    pthread_t rt[RW_READERS], wt;
    rw_writer w;
    memset(&w, 0, sizeof w);
    w.sh = sh;
    w.inserted = malloc(RW_WRITER_OPS * 4 * sizeof(uint64_t));
    ASSERT(w.inserted != NULL);
    for (int i = 0; i < RW_READERS; i++) {
        memset(&readers[i], 0, sizeof readers[i]);
        readers[i].sh = sh;
        readers[i].idx = i;
        readers[i].seen_cap = (size_t)RW_MAX_SEARCHES * RW_K;
        readers[i].seen = malloc(readers[i].seen_cap * sizeof(uint64_t));
        ASSERT(readers[i].seen != NULL);
        ASSERT_EQ(pthread_create(&rt[i], NULL, rw_reader_main, &readers[i]), 0);
    }
    ASSERT_EQ(pthread_create(&wt, NULL, rw_writer_main, &w), 0);
    ASSERT_EQ(pthread_join(wt, NULL), 0);
    for (int i = 0; i < RW_READERS; i++)
        ASSERT_EQ(pthread_join(rt[i], NULL), 0);

    if (w.fail.what[0])
        akt_fail(__FILE__, __LINE__, "writer: %s", w.fail.what);
    ASSERT_EQ(w.n_inserted, RW_WRITER_OPS * 4);

    /* every id any reader saw was inserted at some point */
    size_t n_all = RW_BASE + w.n_inserted;
    uint64_t *all = malloc(n_all * sizeof *all);
    ASSERT(all != NULL);
    memcpy(all, sh->base_ids, RW_BASE * sizeof *all);
    memcpy(all + RW_BASE, w.inserted, w.n_inserted * sizeof *all);
    qsort(all, n_all, sizeof *all, cmp_u64);
    for (size_t i = 1; i < n_all; i++)
        ASSERT_NE(all[i - 1], all[i]);
    unsigned total_searches = 0;
    for (int i = 0; i < RW_READERS; i++) {
        if (readers[i].fail.what[0])
            akt_fail(__FILE__, __LINE__, "reader %d: %s", i, readers[i].fail.what);
        ASSERT_GE(readers[i].n_searches, RW_MIN_SEARCHES);
        for (size_t j = 0; j < readers[i].n_seen; j++)
            if (!in_sorted(all, n_all, readers[i].seen[j]))
                akt_fail(__FILE__, __LINE__, "reader %d saw id %llu, never inserted", i,
                         (unsigned long long)readers[i].seen[j]);
        total_searches += readers[i].n_searches;
        free(readers[i].seen);
    }
    fprintf(stderr, "  %u searches during %d writer ops\n", total_searches, RW_WRITER_OPS);

    /* the final state is exactly what the writer did */
    uint64_t n = 0;
    ASSERT_OK(akidb_collection_count(sh->db, "c", &n));
    ASSERT_EQ(n, RW_BASE - RW_BASE / 4 + RW_WRITER_OPS * 3);
    for (int op = 0; op < RW_WRITER_OPS; op++)
        for (int j = 0; j < 4; j++) {
            char e[32];
            uint64_t id;
            snprintf(e, sizeof e, "new-%d-%d", op, j);
            ASSERT_RC(akidb_lookup(sh->db, "c", e, &id), j == op % 4 ? AKIDB_NOTFOUND : AKIDB_OK);
        }
    for (size_t i = 0; i < RW_BASE; i += 4) {
        ASSERT_RC(akidb_get(sh->db, "c", sh->base_ids[i], NULL, NULL), AKIDB_NOTFOUND);
        float back[RW_DIM];
        ASSERT_OK(akidb_get(sh->db, "c", sh->base_ids[i + 1], back, NULL));
        ASSERT_EQ(memcmp(back, v + (i + 1) * RW_DIM, sizeof back), 0);
    }
    ASSERT_OK(akidb_close(sh->db));
    free(all);
    free(w.inserted);
    free(v);
    free(ext_buf);
    free(ext);
    free(sh);
}

/* ---- writers on different collections, and on one shared collection --- */

enum { MW_DIM = 8, MW_WRITERS = 3 };

typedef struct mw_job {
    akidb *db;
    const char *coll;     /* own collection */
    int idx;
    int n_ops;
    failure fail;
} mw_job;

/* Writes a deterministic history into its own collection and into
 * "shared" (external ids prefixed with its index). */
static void *mw_writer_main(void *arg)
{
    mw_job *j = arg;
    for (int op = 0; op < j->n_ops && !j->fail.what[0]; op++) {
        float v[3 * MW_DIM];
        char eb[3][32];
        const char *ext[3];
        for (int i = 0; i < 3; i++) {
            uint64_t key = (uint64_t)j->idx * 1000000 + (uint64_t)op * 3 + (uint64_t)i;
            doc_vec(v + i * MW_DIM, MW_DIM, key, 0);
            snprintf(eb[i], sizeof eb[i], "w%d-%d-%d", j->idx, op, i);
            ext[i] = eb[i];
        }
        const char *colls[2] = { j->coll, "shared" };
        for (int c = 0; c < 2; c++) {
            uint64_t ids[3];
            int rc = akidb_insert(j->db, colls[c], 3, v, ext, NULL, ids);
            if (rc != AKIDB_OK) {
                record(&j->fail, "%s: insert rc %d op %d", colls[c], rc, op);
                break;
            }
            /* delete the middle one, upsert the first to version 1 */
            rc = akidb_delete(j->db, colls[c], ids[1]);
            if (rc != AKIDB_OK)
                record(&j->fail, "%s: delete rc %d op %d", colls[c], rc, op);
            float nv[MW_DIM];
            doc_vec(nv, MW_DIM, (uint64_t)j->idx * 1000000 + (uint64_t)op * 3, 1);
            uint64_t uid = 0;
            rc = akidb_upsert(j->db, colls[c], 1, nv, ext, NULL, &uid);
            if (rc != AKIDB_OK || uid != ids[0])
                record(&j->fail, "%s: upsert rc %d op %d", colls[c], rc, op);
            akidb_hit hits[3];
            uint32_t n_hits = 0;
            rc = akidb_search(j->db, colls[c], nv, 3, NULL, hits, &n_hits);
            if (rc != AKIDB_OK || n_hits < 1 || hits[0].id != ids[0] || hits[0].distance != 0.0f)
                record(&j->fail, "%s: search after upsert rc %d op %d", colls[c], rc, op);
        }
    }
    return NULL;
}

static void writers_parallel(akidb_sync_mode sync_mode, int n_ops)
{
    akidb *db = open_db(sync_mode);
    const char *names[MW_WRITERS] = { "own0", "own1", "own2" };
    for (int i = 0; i < MW_WRITERS; i++)
        create_coll(db, names[i], MW_DIM, AKIDB_METRIC_L2, 40);
    create_coll(db, "shared", MW_DIM, AKIDB_METRIC_L2, 40);
    mw_job jobs[MW_WRITERS];
    pthread_t th[MW_WRITERS];
    for (int i = 0; i < MW_WRITERS; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].db = db;
        jobs[i].coll = names[i];
        jobs[i].idx = i;
        jobs[i].n_ops = n_ops;
        ASSERT_EQ(pthread_create(&th[i], NULL, mw_writer_main, &jobs[i]), 0);
    }
    for (int i = 0; i < MW_WRITERS; i++)
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < MW_WRITERS; i++)
        if (jobs[i].fail.what[0])
            akt_fail(__FILE__, __LINE__, "writer %d: %s", i, jobs[i].fail.what);

    /* exact final states */
    uint64_t n = 0;
    for (int i = 0; i < MW_WRITERS; i++) {
        ASSERT_OK(akidb_collection_count(db, names[i], &n));
        ASSERT_EQ(n, n_ops * 2);
    }
    ASSERT_OK(akidb_collection_count(db, "shared", &n));
    ASSERT_EQ(n, n_ops * 2 * MW_WRITERS);
    const char *check[2] = { NULL, "shared" };
    for (int w = 0; w < MW_WRITERS; w++) {
        check[0] = names[w];
        for (int c = 0; c < 2; c++)
            for (int op = 0; op < n_ops; op += 7) {
                char e[32];
                uint64_t id;
                float back[MW_DIM], want[MW_DIM];
                snprintf(e, sizeof e, "w%d-%d-1", w, op);
                ASSERT_RC(akidb_lookup(db, check[c], e, &id), AKIDB_NOTFOUND);
                snprintf(e, sizeof e, "w%d-%d-0", w, op);
                ASSERT_OK(akidb_lookup(db, check[c], e, &id));
                ASSERT_OK(akidb_get(db, check[c], id, back, NULL));
                doc_vec(want, MW_DIM, (uint64_t)w * 1000000 + (uint64_t)op * 3, 1);
                ASSERT_EQ(memcmp(back, want, sizeof back), 0);
                snprintf(e, sizeof e, "w%d-%d-2", w, op);
                ASSERT_OK(akidb_lookup(db, check[c], e, &id));
                ASSERT_OK(akidb_get(db, check[c], id, back, NULL));
                doc_vec(want, MW_DIM, (uint64_t)w * 1000000 + (uint64_t)op * 3 + 2, 0);
                ASSERT_EQ(memcmp(back, want, sizeof back), 0);
            }
    }
    ASSERT_OK(akidb_close(db));
}

TEST_TIMEOUT(conc_writers_parallel, 120)
{
    writers_parallel(AKIDB_SYNC_NONE, 500);
}

/* Group commit: concurrent writers share fsyncs (few ops: real fsyncs). */
TEST_TIMEOUT(conc_writers_group_commit, 120)
{
    writers_parallel(AKIDB_SYNC_INTERVAL, 30);
}

/* ---- create/drop while searching -------------------------------------- */

enum { CD_DIM = 12, CD_N = 1000, CD_Q = 40, CD_K = 8, CD_ROUNDS = 150 };

typedef struct cd_shared {
    akidb *db;
    float queries[CD_Q * CD_DIM];
    akidb_hit expect[CD_Q * CD_K];   /* single-threaded answers on "stable" */
    atomic_int churn_done;
} cd_shared;

typedef struct cd_reader {
    cd_shared *sh;
    unsigned n_searches;
    unsigned n_tmp_ok, n_tmp_notfound;
    failure fail;
} cd_reader;

static void *cd_reader_main(void *arg)
{
    cd_reader *r = arg;
    cd_shared *sh = r->sh;
    unsigned i = 0;
    while (i < 200 || (!atomic_load(&sh->churn_done) && i < 100000)) {
        unsigned qi = i % CD_Q;
        akidb_hit hits[CD_K];
        uint32_t n_hits = 0;
        int rc = akidb_search(sh->db, "stable", sh->queries + qi * CD_DIM, CD_K, NULL,
                              hits, &n_hits);
        if (rc != AKIDB_OK || n_hits != CD_K) {
            record(&r->fail, "stable: search rc %d n_hits %u (%s)", rc, n_hits, akidb_errmsg(NULL));
            break;
        }
        /* the stable collection never changes: same answer as alone */
        for (uint32_t h = 0; h < n_hits; h++)
            if (hits[h].id != sh->expect[qi * CD_K + h].id ||
                hits[h].distance != sh->expect[qi * CD_K + h].distance)
                record(&r->fail, "stable: query %u rank %u differs from the lone search", qi, h);
        /* a churning collection: present or not, never another error */
        char name[32];
        snprintf(name, sizeof name, "tmp-%u", i % 3);
        rc = akidb_search(sh->db, name, sh->queries, 3, NULL, hits, &n_hits);
        if (rc == AKIDB_OK) {
            r->n_tmp_ok++;
            if (n_hits > 3)
                record(&r->fail, "%s: n_hits %u > 3", name, n_hits);
        } else if (rc == AKIDB_NOTFOUND) {
            r->n_tmp_notfound++;
        } else {
            record(&r->fail, "%s: search rc %d (%s)", name, rc, akidb_errmsg(NULL));
        }
        uint64_t n = 0;
        rc = akidb_collection_count(sh->db, name, &n);
        if (rc != AKIDB_OK && rc != AKIDB_NOTFOUND)
            record(&r->fail, "%s: count rc %d (%s)", name, rc, akidb_errmsg(NULL));
        i++;
    }
    r->n_searches = i;
    return NULL;
}

typedef struct cd_churn {
    cd_shared *sh;
    failure fail;
} cd_churn;

static void *cd_churn_main(void *arg)
{
    cd_churn *c = arg;
    akidb *db = c->sh->db;
    float v[50 * CD_DIM];
    for (int i = 0; i < 50; i++)
        doc_vec(v + i * CD_DIM, CD_DIM, 777 + (uint64_t)i, 0);
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, CD_DIM, AKIDB_METRIC_COSINE);
    cfg.ef_construction = 32;
    for (int round = 0; round < CD_ROUNDS && !c->fail.what[0]; round++) {
        char name[32];
        snprintf(name, sizeof name, "tmp-%d", round % 3);
        int rc = akidb_collection_create(db, name, &cfg);
        if (rc != AKIDB_OK) {
            record(&c->fail, "%s: create rc %d round %d", name, rc, round);
            break;
        }
        rc = akidb_insert(db, name, 50, v, NULL, NULL, NULL);
        if (rc != AKIDB_OK)
            record(&c->fail, "%s: insert rc %d round %d", name, rc, round);
        /* keep up to two alive at a time: drop the one created before */
        if (round >= 1) {
            snprintf(name, sizeof name, "tmp-%d", (round - 1) % 3);
            rc = akidb_collection_drop(db, name);
            if (rc != AKIDB_OK)
                record(&c->fail, "%s: drop rc %d round %d", name, rc, round);
        }
    }
    atomic_store(&c->sh->churn_done, 1);
    return NULL;
}

TEST_TIMEOUT(conc_create_drop_while_searching, 120)
{
    cd_shared *sh = calloc(1, sizeof *sh);
    ASSERT(sh != NULL);
    sh->db = open_db(AKIDB_SYNC_NONE);
    create_coll(sh->db, "stable", CD_DIM, AKIDB_METRIC_L2, 64);
    float *v = malloc((size_t)CD_N * CD_DIM * sizeof(float));
    ASSERT(v != NULL);
    for (size_t i = 0; i < CD_N; i++)
        doc_vec(v + i * CD_DIM, CD_DIM, 5000 + i, 0);
    ASSERT_OK(akidb_insert(sh->db, "stable", CD_N, v, NULL, NULL, NULL));
    /* "never changes" includes its graph: let the indexer finish first */
    ASSERT_OK(akidb_index_wait(sh->db, "stable", AKIDB_NEVER));
    for (int q = 0; q < CD_Q; q++) {
        doc_vec(sh->queries + q * CD_DIM, CD_DIM, 90000 + (uint64_t)q, 0);
        uint32_t n_hits = 0;
        ASSERT_OK(akidb_search(sh->db, "stable", sh->queries + q * CD_DIM, CD_K, NULL,
                               sh->expect + q * CD_K, &n_hits));
        ASSERT_EQ(n_hits, CD_K);
    }

    enum { NR = 3 };
    cd_reader readers[NR];
    pthread_t rt[NR], ct;
    cd_churn churn;
    memset(&churn, 0, sizeof churn);
    churn.sh = sh;
    for (int i = 0; i < NR; i++) {
        memset(&readers[i], 0, sizeof readers[i]);
        readers[i].sh = sh;
        ASSERT_EQ(pthread_create(&rt[i], NULL, cd_reader_main, &readers[i]), 0);
    }
    ASSERT_EQ(pthread_create(&ct, NULL, cd_churn_main, &churn), 0);
    ASSERT_EQ(pthread_join(ct, NULL), 0);
    for (int i = 0; i < NR; i++)
        ASSERT_EQ(pthread_join(rt[i], NULL), 0);
    if (churn.fail.what[0])
        akt_fail(__FILE__, __LINE__, "churn: %s", churn.fail.what);
    for (int i = 0; i < NR; i++) {
        if (readers[i].fail.what[0])
            akt_fail(__FILE__, __LINE__, "reader %d: %s", i, readers[i].fail.what);
        ASSERT_GE(readers[i].n_searches, 200);
    }
    /* after the churn exactly one tmp collection is left: the last one */
    uint64_t n = 0;
    char last[32];
    snprintf(last, sizeof last, "tmp-%d", (CD_ROUNDS - 1) % 3);
    ASSERT_OK(akidb_collection_count(sh->db, last, &n));
    ASSERT_EQ(n, 50);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "tmp-%d", i);
        if (strcmp(name, last) != 0)
            ASSERT_RC(akidb_collection_count(sh->db, name, &n), AKIDB_NOTFOUND);
    }
    ASSERT_OK(akidb_close(sh->db));
    free(v);
    free(sh);
}
