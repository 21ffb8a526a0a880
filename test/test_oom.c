/*
 * test_oom.c - running out of memory, through the per-handle allocator.
 *
 * A counting allocator (akidb_allocator) fails chosen allocations and
 * tracks live blocks and bytes.  A scenario (open, create, insert in
 * batches with external ids and metadata, upsert, delete, search, get,
 * close) runs again and again:
 *
 *   - failing only the Nth allocation, for N = 1, 2, 3, ... until a run
 *     completes without reaching the Nth allocation; a call that fails is
 *     retried, so every later step also runs after a recovered failure;
 *   - failing every Kth allocation throughout (no retries).
 *
 * Every call must return AKIDB_OK or AKIDB_NOMEM (nothing else, no crash),
 * a failed write must leave no trace (atomic batches), and after close no
 * block or file descriptor may remain.  A small checkpoint_bytes makes
 * checkpoints run in the middle of the writes too.  Each run's directory is
 * then reopened with the default allocator and compared with what was
 * acknowledged.
 */
#include "runner.h"
#include "helpers.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "akidb.h"

/* ---- the failing, counting allocator ---------------------------------- */

typedef struct fa_state {
    atomic_ulong n_calls;       /* malloc + realloc calls so far */
    atomic_ulong n_failed;      /* injected failures */
    unsigned long fail_at;      /* fail call number fail_at (1-based); 0 = never */
    unsigned long fail_every;   /* fail every call number divisible by it; 0 = never */
    atomic_long live;           /* blocks allocated and not freed */
    atomic_long live_bytes;
} fa_state;

/* Room before each block for its size, keeping malloc's alignment. */
#define FA_HDR (sizeof(max_align_t) > sizeof(size_t) ? sizeof(max_align_t) : sizeof(size_t))

static int fa_should_fail(fa_state *s)
{
    unsigned long n = atomic_fetch_add(&s->n_calls, 1) + 1;
    if ((s->fail_at && n == s->fail_at) || (s->fail_every && n % s->fail_every == 0)) {
        atomic_fetch_add(&s->n_failed, 1);
        return 1;
    }
    return 0;
}

static void *fa_malloc(void *ctx, size_t size)
{
    fa_state *s = ctx;
    if (fa_should_fail(s) || size > SIZE_MAX - FA_HDR)
        return NULL;
    unsigned char *raw = malloc(size + FA_HDR);
    if (!raw)
        return NULL;
    memcpy(raw, &size, sizeof size);
    atomic_fetch_add(&s->live, 1);
    atomic_fetch_add(&s->live_bytes, (long)size);
    return raw + FA_HDR;
}

static void *fa_realloc(void *ctx, void *ptr, size_t size)
{
    fa_state *s = ctx;
    if (!ptr)
        return fa_malloc(ctx, size);
    if (fa_should_fail(s) || size > SIZE_MAX - FA_HDR)
        return NULL;
    unsigned char *raw = (unsigned char *)ptr - FA_HDR;
    size_t old;
    memcpy(&old, raw, sizeof old);
    unsigned char *q = realloc(raw, size + FA_HDR);
    if (!q)
        return NULL;
    memcpy(q, &size, sizeof size);
    atomic_fetch_add(&s->live_bytes, (long)size - (long)old);
    return q + FA_HDR;
}

static void fa_free(void *ctx, void *ptr)
{
    fa_state *s = ctx;
    if (!ptr)
        return;
    unsigned char *raw = (unsigned char *)ptr - FA_HDR;
    size_t old;
    memcpy(&old, raw, sizeof old);
    atomic_fetch_sub(&s->live, 1);
    atomic_fetch_sub(&s->live_bytes, (long)old);
    free(raw);
}

/* Open file descriptors of this process: a failure path must not leak
 * them any more than memory. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* ---- the scenario ----------------------------------------------------- */

enum {
    DIM = 16,
    N_DOCS = 200,
    BATCH = 50,
    N_UPSERT_OLD = 10,   /* e0..e9 replaced */
    N_UPSERT_NEW = 10,   /* u0..u9 inserted */
    DEL_FROM = 10, DEL_TO = 40,
};

static void doc_vec(float *out, uint64_t key, uint32_t version)
{
    uint64_t s = key * 1000003u + version * 7919u + 11;
    for (int d = 0; d < DIM; d++)
        out[d] = (float)((double)(splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0)) - 0.5f;
}

typedef struct model {
    int have_coll;
    int present_e[N_DOCS];
    uint64_t id_e[N_DOCS];
    uint32_t version_e[N_DOCS];
    int deleted_e[N_DOCS];      /* deleted by step_delete */
    int present_u[N_UPSERT_NEW];
    uint64_t count;
    int tmp_exists;             /* "tmp" could not be dropped */
} model;

typedef struct run_ctx {
    fa_state *fa;
    int retry;           /* retry a call that failed with NOMEM */
    akidb *db;
    model m;
    unsigned n_nomem;    /* NOMEM results seen */
} run_ctx;

/* A call's result must be OK or NOMEM (or `also`, when not -1). */
static int check_rc(run_ctx *r, int rc, int also, const char *what, int line)
{
    if (rc == AKIDB_NOMEM) {
        r->n_nomem++;
        const char *msg = akidb_errmsg(NULL);
        if (msg == NULL || strcmp(msg, "not an error") == 0)
            akt_fail(__FILE__, line, "%s: NOMEM without a message", what);
        return rc;
    }
    if (rc != AKIDB_OK && rc != also)
        akt_fail(__FILE__, line, "%s: rc %d (%s), expected OK or NOMEM (fail_at %lu, "
                 "fail_every %lu, call %lu)", what, rc, akidb_errmsg(NULL), r->fa->fail_at,
                 r->fa->fail_every, (unsigned long)atomic_load(&r->fa->n_calls));
    return rc;
}
#define CHECK(r, rc, what) check_rc((r), (rc), -1, (what), __LINE__)
#define CHECK_OR(r, rc, also, what) check_rc((r), (rc), (also), (what), __LINE__)

/* The live count equals the model's, unless the count itself ran out of
 * memory. */
static void check_count(run_ctx *r, int line)
{
    uint64_t n = 0;
    int rc = akidb_collection_count(r->db, "c", &n);
    if (!r->m.have_coll) {
        if (rc != AKIDB_NOTFOUND && rc != AKIDB_NOMEM)
            akt_fail(__FILE__, line, "count without collection: rc %d", rc);
        return;
    }
    if (check_rc(r, rc, -1, "count", line) == AKIDB_OK && n != r->m.count)
        akt_fail(__FILE__, line, "count %llu, model %llu (fail_at %lu, fail_every %lu)",
                 (unsigned long long)n, (unsigned long long)r->m.count, r->fa->fail_at,
                 r->fa->fail_every);
}

/* External id `ext` is absent (or the lookup ran out of memory). */
static void check_absent(run_ctx *r, const char *ext, int line)
{
    uint64_t id;
    int rc = akidb_lookup(r->db, "c", ext, &id);
    if (rc != AKIDB_NOTFOUND && rc != AKIDB_NOMEM)
        akt_fail(__FILE__, line, "lookup %s after a failed write: rc %d", ext, rc);
}

/* Document e[i] holds version `v` of its vector. */
static void check_vec(run_ctx *r, int i, int line)
{
    float back[DIM], want[DIM];
    int rc = akidb_get(r->db, "c", r->m.id_e[i], back, NULL);
    if (check_rc(r, rc, -1, "get", line) != AKIDB_OK)
        return;
    doc_vec(want, (uint64_t)i, r->m.version_e[i]);
    if (memcmp(back, want, sizeof back) != 0)
        akt_fail(__FILE__, line, "e%d: vector is not version %u", i, r->m.version_e[i]);
}

static void step_insert(run_ctx *r, int b)
{
    float v[BATCH * DIM];
    char eb[BATCH][16], mb[BATCH][32];
    const char *ext[BATCH], *meta[BATCH];
    for (int j = 0; j < BATCH; j++) {
        int i = b * BATCH + j;
        doc_vec(v + j * DIM, (uint64_t)i, 0);
        snprintf(eb[j], sizeof eb[j], "e%d", i);
        snprintf(mb[j], sizeof mb[j], "{\"i\":%d}", i);
        ext[j] = eb[j];
        meta[j] = (j % 5 == 4) ? NULL : mb[j];
    }
    uint64_t ids[BATCH];
    for (int attempt = 0; attempt < (r->retry ? 20 : 1); attempt++) {
        int rc = akidb_insert(r->db, "c", BATCH, v, ext, meta, ids);
        if (!r->m.have_coll) {
            CHECK_OR(r, rc, AKIDB_NOTFOUND, "insert");
            return;
        }
        if (CHECK(r, rc, "insert") == AKIDB_OK) {
            for (int j = 0; j < BATCH; j++) {
                r->m.present_e[b * BATCH + j] = 1;
                r->m.id_e[b * BATCH + j] = ids[j];
                r->m.version_e[b * BATCH + j] = 0;
            }
            r->m.count += BATCH;
            return;
        }
        /* atomic: nothing of the batch is there */
        check_count(r, __LINE__);
        check_absent(r, ext[0], __LINE__);
        check_absent(r, ext[BATCH - 1], __LINE__);
    }
}

static void step_upsert(run_ctx *r)
{
    enum { N = N_UPSERT_OLD + N_UPSERT_NEW };
    float v[N * DIM];
    char eb[N][16];
    const char *ext[N], *meta[N];
    for (int j = 0; j < N; j++) {
        if (j < N_UPSERT_OLD) {
            doc_vec(v + j * DIM, (uint64_t)j, 1);
            snprintf(eb[j], sizeof eb[j], "e%d", j);
        } else {
            doc_vec(v + j * DIM, 5000 + (uint64_t)j, 0);
            snprintf(eb[j], sizeof eb[j], "u%d", j - N_UPSERT_OLD);
        }
        ext[j] = eb[j];
        meta[j] = (j % 2) ? "{\"up\":true}" : NULL;
    }
    uint64_t ids[N];
    for (int attempt = 0; attempt < (r->retry ? 20 : 1); attempt++) {
        int rc = akidb_upsert(r->db, "c", N, v, ext, meta, ids);
        if (!r->m.have_coll) {
            CHECK_OR(r, rc, AKIDB_NOTFOUND, "upsert");
            return;
        }
        if (CHECK(r, rc, "upsert") == AKIDB_OK) {
            for (int j = 0; j < N_UPSERT_OLD; j++) {
                if (r->m.present_e[j]) {
                    if (ids[j] != r->m.id_e[j])
                        akt_fail(__FILE__, __LINE__, "upsert changed the id of e%d", j);
                } else {
                    r->m.present_e[j] = 1;
                    r->m.id_e[j] = ids[j];
                    r->m.count++;
                }
                r->m.version_e[j] = 1;
            }
            for (int j = 0; j < N_UPSERT_NEW; j++)
                if (!r->m.present_u[j]) {
                    r->m.present_u[j] = 1;
                    r->m.count++;
                }
            return;
        }
        check_count(r, __LINE__);
        check_absent(r, "u0", __LINE__);
        if (r->m.present_e[0])
            check_vec(r, 0, __LINE__);
    }
}

static void step_delete(run_ctx *r)
{
    for (int i = DEL_FROM; i < DEL_TO; i++) {
        if (!r->m.present_e[i])
            continue;
        for (int attempt = 0; attempt < (r->retry ? 20 : 1); attempt++) {
            int rc = akidb_delete(r->db, "c", r->m.id_e[i]);
            if (CHECK(r, rc, "delete") == AKIDB_OK) {
                r->m.present_e[i] = 0;
                r->m.deleted_e[i] = 1;
                r->m.count--;
                break;
            }
            check_count(r, __LINE__);
        }
    }
}

static void step_search(run_ctx *r)
{
    float q[DIM];
    doc_vec(q, 77, 0);
    akidb_search_params p;
    akidb_search_params_init(&p);
    for (p.exact = 0; p.exact <= 1; p.exact++) {
        akidb_hit hits[10];
        uint32_t n_hits = 0;
        int rc = akidb_search(r->db, "c", q, 10, &p, hits, &n_hits);
        if (!r->m.have_coll) {
            CHECK_OR(r, rc, AKIDB_NOTFOUND, "search");
            continue;
        }
        if (CHECK(r, rc, "search") != AKIDB_OK)
            continue;
        uint64_t want = r->m.count < 10 ? r->m.count : 10;
        if (n_hits != want)
            akt_fail(__FILE__, __LINE__, "search: %u hits, want %llu", n_hits,
                     (unsigned long long)want);
        for (uint32_t i = 1; i < n_hits; i++)
            ASSERT_LE(hits[i - 1].distance, hits[i].distance);
        for (uint32_t i = 0; i < n_hits; i++)
            for (int d = DEL_FROM; d < DEL_TO; d++)
                if (r->m.deleted_e[d] && hits[i].id == r->m.id_e[d])
                    akt_fail(__FILE__, __LINE__, "search returned deleted e%d", d);
    }
}

static void step_get(run_ctx *r)
{
    for (int i = 0; i < N_DOCS; i += 13) {
        if (!r->m.present_e[i])
            continue;
        float back[DIM], want[DIM];
        char *meta = NULL;
        int rc = akidb_get(r->db, "c", r->m.id_e[i], back, &meta);
        if (CHECK(r, rc, "get") != AKIDB_OK)
            continue;
        doc_vec(want, (uint64_t)i, r->m.version_e[i]);
        if (memcmp(back, want, sizeof back) != 0)
            akt_fail(__FILE__, __LINE__, "e%d: vector is not version %u", i, r->m.version_e[i]);
        char expect[32];
        if (r->m.version_e[i] == 1) {
            if ((i % 2 == 1) != (meta != NULL))
                akt_fail(__FILE__, __LINE__, "e%d: metadata after upsert", i);
        } else if (i % BATCH % 5 == 4) {
            ASSERT(meta == NULL);
        } else {
            snprintf(expect, sizeof expect, "{\"i\":%d}", i);
            ASSERT_STR_EQ(meta, expect);
        }
        akidb_free(meta);
        uint64_t id = 0;
        char ext[16];
        snprintf(ext, sizeof ext, "e%d", i);
        rc = akidb_lookup(r->db, "c", ext, &id);
        if (CHECK(r, rc, "lookup") == AKIDB_OK)
            ASSERT_EQ(id, r->m.id_e[i]);
    }
}

/* Reopen `path` with the default allocator and compare with the model. */
static void verify_reopened(const char *path, const model *m)
{
    akidb *db = NULL;
    ASSERT_OK(akidb_open(path, NULL, &db));
    uint64_t n = 0;
    if (!m->have_coll) {
        ASSERT_RC(akidb_collection_count(db, "c", &n), AKIDB_NOTFOUND);
        ASSERT_OK(akidb_close(db));
        return;
    }
    ASSERT_OK(akidb_collection_count(db, "c", &n));
    if (n != m->count)
        akt_fail(__FILE__, __LINE__, "reopened: count %llu, acknowledged %llu",
                 (unsigned long long)n, (unsigned long long)m->count);
    for (int i = 0; i < N_DOCS; i++) {
        char ext[16];
        uint64_t id = 0;
        snprintf(ext, sizeof ext, "e%d", i);
        if (m->present_e[i]) {
            ASSERT_OK(akidb_lookup(db, "c", ext, &id));
            ASSERT_EQ(id, m->id_e[i]);
            float back[DIM], want[DIM];
            ASSERT_OK(akidb_get(db, "c", id, back, NULL));
            doc_vec(want, (uint64_t)i, m->version_e[i]);
            if (memcmp(back, want, sizeof back) != 0)
                akt_fail(__FILE__, __LINE__, "reopened: e%d is not version %u", i,
                         m->version_e[i]);
        } else {
            ASSERT_RC(akidb_lookup(db, "c", ext, &id), AKIDB_NOTFOUND);
            if (m->deleted_e[i])
                ASSERT_RC(akidb_get(db, "c", m->id_e[i], NULL, NULL), AKIDB_NOTFOUND);
        }
    }
    for (int j = 0; j < N_UPSERT_NEW; j++) {
        char ext[16];
        uint64_t id;
        snprintf(ext, sizeof ext, "u%d", j);
        ASSERT_RC(akidb_lookup(db, "c", ext, &id), m->present_u[j] ? AKIDB_OK : AKIDB_NOTFOUND);
    }
    ASSERT_RC(akidb_collection_count(db, "tmp", &n),
              m->tmp_exists ? AKIDB_OK : AKIDB_NOTFOUND);
    ASSERT_OK(akidb_close(db));
}

/* One run of the scenario in its own directory, which is then reopened
 * and checked against the model: acknowledged writes are durable and
 * failed ones left nothing in the log.  Returns 1 if the allocator
 * injected any failure. */
/* The storage kind of collection "c" (issue 16: f16 and int8 keep exact
 * blocks per chunk beside the compact rows). */
static akidb_storage g_storage = AKIDB_STORAGE_F32;

static int run_scenario(fa_state *fa, int retry, unsigned iter)
{
    run_ctx r;
    memset(&r, 0, sizeof r);
    r.fa = fa;
    r.retry = retry;

    akidb_allocator al = { fa_malloc, fa_realloc, fa_free, fa };
    akidb_options opts;
    akidb_options_init(&opts);
    opts.allocator = &al;
    opts.sync_mode = AKIDB_SYNC_NONE;
    opts.checkpoint_bytes = 8192;   /* checkpoints happen in the middle, too */
    char path[512];
    snprintf(path, sizeof path, "%s/db%u", akt_dir, iter);
    int fds_before = count_fds();

    for (int attempt = 0; attempt < 20 && !r.db; attempt++) {
        akidb *db = (akidb *)&r;
        int rc = akidb_open(path, &opts, &db);
        if (CHECK(&r, rc, "open") == AKIDB_OK) {
            ASSERT(db != NULL);
            r.db = db;
        } else {
            ASSERT(db == NULL);
            ASSERT_EQ(atomic_load(&fa->live), 0);
        }
    }
    if (r.db) {
        akidb_collection_config cfg;
        akidb_collection_config_init(&cfg, DIM, AKIDB_METRIC_L2);
        cfg.hnsw_m = 8;
        cfg.ef_construction = 24;
        cfg.storage = g_storage;
        for (int attempt = 0; attempt < 20 && !r.m.have_coll; attempt++) {
            int rc = akidb_collection_create(r.db, "c", &cfg);
            if (CHECK(&r, rc, "create") == AKIDB_OK)
                r.m.have_coll = 1;
            else
                check_count(&r, __LINE__);   /* NOTFOUND: nothing half-made */
        }
        /* a second collection created and dropped */
        akidb_collection_config_init(&cfg, 4, AKIDB_METRIC_COSINE);
        int rc = akidb_collection_create(r.db, "tmp", &cfg);
        if (CHECK(&r, rc, "create tmp") == AKIDB_OK) {
            rc = AKIDB_NOMEM;
            for (int attempt = 0; attempt < 20 && rc != AKIDB_OK; attempt++)
                rc = CHECK(&r, akidb_collection_drop(r.db, "tmp"), "drop tmp");
            r.m.tmp_exists = rc != AKIDB_OK;
        }
        uint64_t n;
        rc = akidb_collection_count(r.db, "tmp", &n);
        if (!r.m.tmp_exists)
            CHECK_OR(&r, rc, AKIDB_NOTFOUND, "count tmp");
        if (rc == AKIDB_OK && !r.m.tmp_exists)
            akt_fail(__FILE__, __LINE__, "tmp still exists after a failed create or a drop");

        for (int b = 0; b < N_DOCS / BATCH; b++)
            step_insert(&r, b);
        check_count(&r, __LINE__);
        step_upsert(&r);
        check_count(&r, __LINE__);
        step_delete(&r);
        check_count(&r, __LINE__);
        step_search(&r);
        step_get(&r);
        /* close may fail to checkpoint (the log is kept); it still closes */
        CHECK(&r, akidb_close(r.db), "close");
    }
    if (atomic_load(&fa->live) != 0 || atomic_load(&fa->live_bytes) != 0)
        akt_fail(__FILE__, __LINE__, "leak after close: %ld blocks, %ld bytes (fail_at %lu, "
                 "fail_every %lu, %lu calls)", (long)atomic_load(&fa->live),
                 (long)atomic_load(&fa->live_bytes), fa->fail_at, fa->fail_every,
                 (unsigned long)atomic_load(&fa->n_calls));
    if (count_fds() != fds_before)
        akt_fail(__FILE__, __LINE__, "%d file descriptors open after close, %d before "
                 "(fail_at %lu, fail_every %lu)", count_fds(), fds_before, fa->fail_at,
                 fa->fail_every);
    /* in retry mode a completed run reached its final state */
    if (retry && r.db) {
        ASSERT(r.m.have_coll);
        ASSERT_EQ(r.m.count, N_DOCS + N_UPSERT_NEW - (DEL_TO - DEL_FROM));
    }
    /* what was acknowledged is durable, and what failed left no trace in
     * the log either */
    if (r.db)
        verify_reopened(path, &r.m);
    if (!retry)
        fprintf(stderr, "  every %lu: %lu calls, %u NOMEM results, %s, %llu documents\n",
                fa->fail_every, (unsigned long)atomic_load(&fa->n_calls), r.n_nomem,
                !r.db ? "open failed" : r.m.have_coll ? "collection made" : "no collection",
                (unsigned long long)r.m.count);
    return atomic_load(&fa->n_failed) != 0;
}

TEST_TIMEOUT(oom_no_failures, 60)
{
    fa_state fa;
    memset(&fa, 0, sizeof fa);
    ASSERT_EQ(run_scenario(&fa, 1, 0), 0);
    fprintf(stderr, "  scenario makes %lu allocation calls\n",
            (unsigned long)atomic_load(&fa.n_calls));
    ASSERT(atomic_load(&fa.n_calls) > 0);
}

/* Fail allocation N = 1, 2, ... until a run no longer reaches N. */
/* ~2000 opens, each with SQLite and checkpoint fsyncs: 20 s on a quiet
 * machine, several minutes on a loaded one. */
TEST_TIMEOUT(oom_fail_nth, 400)
{
    unsigned long n;
    unsigned long n_runs = 0;
    for (n = 1; n <= 5000; n++) {
        fa_state fa;
        memset(&fa, 0, sizeof fa);
        fa.fail_at = n;
        if (!run_scenario(&fa, 1, (unsigned)n))
            break;
        n_runs++;
    }
    fprintf(stderr, "  %lu runs with an injected failure\n", n_runs);
    if (n > 5000)
        akt_fail(__FILE__, __LINE__, "the scenario still allocates after 5000 failures");
    ASSERT(n_runs > 0);
}

TEST_TIMEOUT(oom_fail_every_kth, 60)
{
    static const unsigned long ks[] = { 3, 7, 31, 53, 97, 211 };
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        fa_state fa;
        memset(&fa, 0, sizeof fa);
        fa.fail_every = ks[i];
        ASSERT_EQ(run_scenario(&fa, 0, 100000 + (unsigned)i), 1);
    }
}

/* The same for f16 and int8 storage. */
TEST_TIMEOUT(oom_fail_every_kth_f16_int8, 120)
{
    static const unsigned long ks[] = { 3, 7, 31, 53, 97, 211 };
    static const akidb_storage kinds[] = { AKIDB_STORAGE_F16, AKIDB_STORAGE_INT8 };
    for (size_t s = 0; s < 2; s++) {
        g_storage = kinds[s];
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
            fa_state fa;
            memset(&fa, 0, sizeof fa);
            fa.fail_every = ks[i];
            ASSERT_EQ(run_scenario(&fa, 0, 200000 + (unsigned)(s * 100 + i)), 1);
        }
    }
}
