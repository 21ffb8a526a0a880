/*
 * test_quant.c - the compact storage kinds of the index (f16, int8) and
 * the quantiser, through lib/index/hnsw.h and quant.h.
 *
 * Recall of each kind against exact search on clustered data (L2, cosine,
 * dot), next to f32 at the same ef; exact distances after re-ranking; the
 * exact vectors in RAM, behind a source (with a failing source), or
 * nowhere (approximate distances, decoded vectors); int8 training (walk on
 * floats until train_rows, then codes), clipping counted, retraining;
 * degenerate data (all-equal dimensions, constant data); parameters
 * checked; saved images rebuilt with their parameters; scalar and SIMD
 * kernels giving the identical int8 graph.
 *
 * Cross-compiled for aarch64 with only alloc.c, distance.c, quant.c and
 * hnsw.c (make test-aarch64), so only internal headers are used.
 */
#include "runner.h"

#include <math.h>
#include <stdint.h>

#include "akidb.h"
#include "common/alloc.h"
#include "index/distance.h"
#include "index/hnsw.h"
#include "index/quant.h"

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rand_u01(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

static double rand_gauss(uint64_t *s)
{
    double u = rand_u01(s), v = rand_u01(s);
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void normalize(float *v, uint32_t dim)
{
    double n = 0;
    for (uint32_t i = 0; i < dim; i++)
        n += (double)v[i] * v[i];
    n = sqrt(n);
    for (uint32_t i = 0; i < dim; i++)
        v[i] = (float)(v[i] / n);
}

/* n points around n_clusters gaussian centres; queries share centre_seed. */
static float *clustered(uint64_t centre_seed, uint64_t seed, uint32_t n, uint32_t dim,
                        uint32_t n_clusters, double sigma, int unit)
{
    float *centres = malloc((size_t)n_clusters * dim * sizeof(float));
    float *v = malloc((size_t)n * dim * sizeof(float));
    ASSERT(centres != NULL && v != NULL);
    for (size_t i = 0; i < (size_t)n_clusters * dim; i++)
        centres[i] = (float)rand_gauss(&centre_seed);
    seed ^= 0x5DEECE66Dull;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = (uint32_t)(splitmix64(&seed) % n_clusters);
        for (uint32_t d = 0; d < dim; d++)
            v[(size_t)i * dim + d] = centres[(size_t)c * dim + d] + (float)(sigma * rand_gauss(&seed));
        if (unit)
            normalize(v + (size_t)i * dim, dim);
    }
    free(centres);
    return v;
}

static double ref_distance(akidb__hnsw_space space, int negate_dot, const float *a,
                           const float *b, uint32_t dim)
{
    double s = 0;
    if (space == AKIDB__SPACE_L2) {
        for (uint32_t i = 0; i < dim; i++) {
            double d = (double)a[i] - b[i];
            s += d * d;
        }
        return s;
    }
    for (uint32_t i = 0; i < dim; i++)
        s += (double)a[i] * b[i];
    return negate_dot ? -s : 1.0 - s;
}

typedef struct ref_hit {
    uint32_t node;
    double distance;
} ref_hit;

static int cmp_ref_hit(const void *x, const void *y)
{
    const ref_hit *a = x, *b = y;
    if (a->distance < b->distance) return -1;
    if (a->distance > b->distance) return 1;
    return a->node < b->node ? -1 : a->node > b->node;
}

static void brute_force(const float *vecs, uint32_t n, uint32_t dim, akidb__hnsw_space space,
                        int negate_dot, const float *q, uint32_t k, ref_hit *out)
{
    ref_hit *all = malloc((size_t)n * sizeof *all);
    ASSERT(all != NULL);
    for (uint32_t i = 0; i < n; i++) {
        all[i].node = i;
        all[i].distance = ref_distance(space, negate_dot, q, vecs + (size_t)i * dim, dim);
    }
    qsort(all, n, sizeof *all, cmp_ref_hit);
    memcpy(out, all, k * sizeof *out);
    free(all);
}

typedef struct idx_opts {
    akidb__storage storage;
    akidb__exact_mode exact;
    uint32_t rerank, train_rows;
    const akidb__kernels *kernels;
} idx_opts;

static akidb__hnsw *make_index(uint32_t dim, akidb__hnsw_space space, int negate_dot,
                               const idx_opts *o)
{
    akidb__hnsw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dim = dim;
    cfg.space = space;
    cfg.negate_dot = negate_dot;
    cfg.m = 16;
    cfg.ef_construction = 100;
    cfg.seed = 42;
    cfg.storage = o->storage;
    cfg.exact = o->exact;
    cfg.rerank = o->rerank;
    cfg.train_rows = o->train_rows;
    akidb__hnsw *h = NULL;
    ASSERT_OK(akidb__hnsw_new(&cfg, &akidb__default_allocator, o->kernels, &h));
    ASSERT(h != NULL);
    return h;
}

static void add_all(akidb__hnsw *h, const float *vecs, uint32_t n, uint32_t dim, uint32_t batch)
{
    uint32_t base = akidb__hnsw_size(h);
    for (uint32_t i = 0; i < n; i += batch) {
        uint32_t nb = n - i < batch ? n - i : batch;
        ASSERT_OK(akidb__hnsw_reserve(h, nb));
        for (uint32_t j = 0; j < nb; j++)
            ASSERT_EQ(akidb__hnsw_add(h, vecs + (size_t)(i + j) * dim), base + i + j);
    }
}

typedef struct run_result {
    double recall;
    double max_rel_err;   /* largest |returned - true| / max(1, |true|) */
} run_result;

/* recall@10 at ef over n_q queries, and how far the returned distances
 * are from the true ones. */
static run_result measure(akidb__hnsw *h, const float *vecs, uint32_t n, uint32_t dim,
                          akidb__hnsw_space space, int negate_dot, const float *qs, uint32_t n_q,
                          uint32_t ef)
{
    const uint32_t k = 10;
    akidb__hnsw_hit hits[10];
    ref_hit truth[10];
    uint32_t found = 0;
    double max_err = 0;
    for (uint32_t qi = 0; qi < n_q; qi++) {
        const float *q = qs + (size_t)qi * dim;
        uint32_t n_hits = 0;
        ASSERT_OK(akidb__hnsw_search(h, q, k, ef, 0, hits, &n_hits));
        ASSERT_EQ(n_hits, k);
        brute_force(vecs, n, dim, space, negate_dot, q, k, truth);
        for (uint32_t i = 0; i < k; i++) {
            if (i > 0)
                ASSERT_LE(hits[i - 1].distance, hits[i].distance);
            double want = ref_distance(space, negate_dot, q, vecs + (size_t)hits[i].node * dim, dim);
            double err = fabs(hits[i].distance - want) / fmax(1.0, fabs(want));
            if (err > max_err)
                max_err = err;
            for (uint32_t j = 0; j < k; j++)
                if (hits[i].node == truth[j].node) {
                    found++;
                    break;
                }
        }
    }
    run_result r = { (double)found / (double)(n_q * k), max_err };
    return r;
}

static const char *space_name(akidb__hnsw_space space, int negate_dot)
{
    return space == AKIDB__SPACE_L2 ? "l2" : negate_dot ? "dot" : "cosine";
}

/* Every kind against f32 on the same data and ef: recall within 0.01 (the
 * issue asks 0.002 on the benchmark sets; this set is small, so one query
 * more or less moves recall by 0.0005), and with exact vectors the
 * distances returned are the exact ones. */
static void kinds_recall(akidb__hnsw_space space, int negate_dot, uint64_t seed)
{
    const uint32_t n = 6000, dim = 48, n_q = 200, ef = 48;
    int unit = space == AKIDB__SPACE_IP && !negate_dot;
    float *vecs = clustered(seed, seed, n, dim, 40, 0.6, unit);
    float *qs = clustered(seed, seed + 7, n_q, dim, 40, 0.6, unit);
    idx_opts o;
    memset(&o, 0, sizeof o);
    o.train_rows = 1000;
    akidb__hnsw *h = make_index(dim, space, negate_dot, &o);
    add_all(h, vecs, n, dim, 500);
    run_result f32 = measure(h, vecs, n, dim, space, negate_dot, qs, n_q, ef);
    akidb__hnsw_free(h);
    ASSERT_LE(f32.max_rel_err, 1e-4);
    static const akidb__storage kinds[] = { AKIDB__STORAGE_F16, AKIDB__STORAGE_INT8 };
    for (size_t ki = 0; ki < 2; ki++) {
        o.storage = kinds[ki];
        o.exact = AKIDB__EXACT_RAM;
        h = make_index(dim, space, negate_dot, &o);
        add_all(h, vecs, n, dim, 500);
        run_result r = measure(h, vecs, n, dim, space, negate_dot, qs, n_q, ef);
        akidb__hnsw_quant_stats st;
        akidb__hnsw_quant_stats_get(h, &st);
        fprintf(stderr, "  %s %s: recall %.4f (f32 %.4f), max rel. distance error %.2g; "
                "clipped %llu of %llu\n", space_name(space, negate_dot),
                kinds[ki] == AKIDB__STORAGE_F16 ? "f16" : "int8", r.recall, f32.recall,
                r.max_rel_err, (unsigned long long)st.values_clipped,
                (unsigned long long)st.values_encoded);
        ASSERT_GE(r.recall, f32.recall - 0.01);
        ASSERT_LE(r.max_rel_err, 1e-4);          /* re-ranked: exact */
        ASSERT_EQ(st.values_encoded, (uint64_t)n * dim);
        if (kinds[ki] == AKIDB__STORAGE_INT8) {
            ASSERT_EQ(st.trainings, 1);
            /* trained on the first 1000: the other 5000 come from the
             * same clusters, so few values fall off the grid */
            ASSERT_LE((double)st.values_clipped, 0.001 * (double)st.values_encoded);
        } else {
            ASSERT_EQ(st.values_clipped, 0);
        }
        akidb__hnsw_free(h);
    }
    free(vecs);
    free(qs);
}

TEST_TIMEOUT(quant_recall_l2, 120) { kinds_recall(AKIDB__SPACE_L2, 0, 11); }
TEST_TIMEOUT(quant_recall_cosine, 120) { kinds_recall(AKIDB__SPACE_IP, 0, 12); }
TEST_TIMEOUT(quant_recall_dot, 120) { kinds_recall(AKIDB__SPACE_IP, 1, 13); }

/* Without exact vectors the distances are the walk's: approximate but
 * close (int8 on this grid: a few percent), vectors read back decoded. */
TEST_TIMEOUT(quant_exact_none, 120)
{
    const uint32_t n = 3000, dim = 32, n_q = 100;
    float *vecs = clustered(5, 5, n, dim, 30, 0.5, 0);
    float *qs = clustered(5, 6, n_q, dim, 30, 0.5, 0);
    static const akidb__storage kinds[] = { AKIDB__STORAGE_F16, AKIDB__STORAGE_INT8 };
    for (size_t ki = 0; ki < 2; ki++) {
        idx_opts o = { kinds[ki], AKIDB__EXACT_NONE, 0, 500, NULL };
        akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, &o);
        add_all(h, vecs, n, dim, 300);
        akidb__hnsw_bytes b;
        akidb__hnsw_memory_parts(h, &b);
        /* dropped after training and linking, but for the last chunk,
         * which the next appends land in (at most 1024 rows) */
        ASSERT_LE(b.exact, 1024 * dim * sizeof(float) + 64);
        ASSERT(b.compact > 0);
        ASSERT(akidb__hnsw_vector(h, 0) == NULL);
        run_result r = measure(h, vecs, n, dim, AKIDB__SPACE_L2, 0, qs, n_q, 64);
        fprintf(stderr, "  none %s: recall %.4f, max rel. distance error %.3g\n",
                kinds[ki] == AKIDB__STORAGE_F16 ? "f16" : "int8", r.recall, r.max_rel_err);
        ASSERT_GE(r.recall, 0.85);
        ASSERT(r.max_rel_err > 0);                /* approximate, and says so */
        /* int8: the query is on the grid too; a near neighbour's small
         * distance carries the noise of both */
        ASSERT_LE(r.max_rel_err, kinds[ki] == AKIDB__STORAGE_F16 ? 0.01 : 0.25);
        /* the vector read back is the decoded one, close to the original */
        float *out = malloc(dim * sizeof(float));
        ASSERT(out != NULL);
        int is_exact = -1;
        ASSERT_OK(akidb__hnsw_vector_copy(h, 17, out, &is_exact));
        ASSERT_EQ(is_exact, 0);
        akidb__i8_params p;
        double step = akidb__hnsw_i8_params(h, &p) ? p.scale : 0.01;
        for (uint32_t d = 0; d < dim; d++)
            ASSERT_LE(fabs(out[d] - vecs[17 * dim + d]), step);
        free(out);
        /* exact mode scans the codes: same approximate distances */
        akidb__hnsw_hit hits[5];
        uint32_t nh = 0;
        ASSERT_OK(akidb__hnsw_search(h, qs, 5, 0, 1, hits, &nh));
        ASSERT_EQ(nh, 5);
        akidb__hnsw_free(h);
    }
    free(vecs);
    free(qs);
}

/* ---- exact vectors behind a source ------------------------------------ */

typedef struct test_source {
    const float *vecs;
    uint32_t dim;
    uint64_t reads;
    int fail;
} test_source;

static int source_read(void *ctx, uint32_t node, float *out)
{
    test_source *s = ctx;
    __atomic_add_fetch(&s->reads, 1, __ATOMIC_RELAXED);
    if (s->fail)
        return AKIDB_IOERR;
    memcpy(out, s->vecs + (size_t)node * s->dim, s->dim * sizeof(float));
    return AKIDB_OK;
}

TEST_TIMEOUT(quant_exact_source, 120)
{
    const uint32_t n = 4000, dim = 40, n_q = 100;
    float *vecs = clustered(9, 9, n, dim, 30, 0.5, 0);
    float *qs = clustered(9, 10, n_q, dim, 30, 0.5, 0);
    idx_opts ram = { AKIDB__STORAGE_INT8, AKIDB__EXACT_RAM, 0, 800, NULL };
    idx_opts srco = { AKIDB__STORAGE_INT8, AKIDB__EXACT_SOURCE, 0, 800, NULL };
    akidb__hnsw *a = make_index(dim, AKIDB__SPACE_L2, 0, &ram);
    akidb__hnsw *b = make_index(dim, AKIDB__SPACE_L2, 0, &srco);
    add_all(a, vecs, n, dim, 400);
    add_all(b, vecs, 3000, dim, 400);
    akidb__hnsw_bytes before, after;
    akidb__hnsw_memory_parts(b, &before);
    ASSERT(before.exact >= (size_t)3000 * dim * sizeof(float));  /* no source yet: RAM */
    /* "a checkpoint": the first 3000 nodes become readable elsewhere */
    test_source ts = { vecs, dim, 0, 0 };
    akidb__exact_source src = { .read = source_read, .ctx = &ts, .n_nodes = 3000 };
    akidb__hnsw_set_exact_source(b, &src);
    akidb__hnsw_drop_exact(b);
    akidb__hnsw_memory_parts(b, &after);
    ASSERT(after.exact < before.exact / 4);
    /* later nodes are kept in RAM until the source covers them */
    add_all(b, vecs + (size_t)3000 * dim, n - 3000, dim, 400);
    ASSERT(akidb__hnsw_vector(b, n - 1) != NULL);
    /* identical graphs (same data, same training), identical answers */
    akidb__hnsw_hit ha[10], hb[10];
    for (uint32_t qi = 0; qi < n_q; qi++) {
        uint32_t na = 0, nb = 0;
        ASSERT_OK(akidb__hnsw_search(a, qs + (size_t)qi * dim, 10, 32, 0, ha, &na));
        ASSERT_OK(akidb__hnsw_search(b, qs + (size_t)qi * dim, 10, 32, 0, hb, &nb));
        ASSERT_EQ(na, nb);
        for (uint32_t i = 0; i < na; i++) {
            ASSERT_EQ(ha[i].node, hb[i].node);
            ASSERT(ha[i].distance == hb[i].distance);
        }
    }
    ASSERT(ts.reads > 0);
    /* at most rerank x k = 40 reads per query */
    ASSERT_LE(ts.reads, (uint64_t)n_q * AKIDB__RERANK_DEFAULT * 10);
    float v[40];
    int is_exact = 0;
    ASSERT_OK(akidb__hnsw_vector_copy(b, 5, v, &is_exact));
    ASSERT_EQ(is_exact, 1);
    ASSERT(memcmp(v, vecs + 5 * dim, sizeof v) == 0);
    /* a failing source fails the search, never a wrong answer */
    ts.fail = 1;
    uint32_t nb = 99;
    ASSERT_EQ(akidb__hnsw_search(b, qs, 10, 32, 0, hb, &nb), AKIDB_IOERR);
    ASSERT_EQ(nb, 0);
    ASSERT_EQ(akidb__hnsw_search(b, qs, 10, 32, 1, hb, &nb), AKIDB_IOERR);
    ASSERT_EQ(akidb__hnsw_vector_copy(b, 5, v, NULL), AKIDB_IOERR);
    ASSERT_EQ(akidb__hnsw_retrain(b, 0), AKIDB_IOERR);
    ts.fail = 0;
    ASSERT_OK(akidb__hnsw_search(b, qs, 10, 32, 1, hb, &nb));
    ASSERT_EQ(nb, 10);
    akidb__hnsw_free(a);
    akidb__hnsw_free(b);
    free(vecs);
    free(qs);
}

/* The re-ranking bound reads fewer exact vectors and changes nothing:
 * the same hits, the same exact distances, as re-ranking every
 * candidate; on L2 and cosine, with queries inside and far outside the
 * trained grid (clipped: a large residual, so nothing may be skipped
 * wrongly), at several ef and re-rank factors. */
static void rerank_bound_case(akidb__hnsw_space space, uint64_t seed)
{
    const uint32_t n = 3000, dim = 48, n_q = 120;
    int unit = space == AKIDB__SPACE_IP;
    float *vecs = clustered(seed, seed, n, dim, 25, 0.4, unit);
    float *qs = clustered(seed, seed + 1, n_q, dim, 25, 0.4, unit);
    /* every third query pushed off the grid (cosine: a direction the
     * data does not span, still of unit length) */
    for (uint32_t qi = 0; qi < n_q; qi += 3) {
        float *q = qs + (size_t)qi * dim;
        for (uint32_t d = 0; d < dim; d++)
            q[d] = d % 2 ? q[d] * 8.0f : -q[d] * 8.0f;
        if (unit)
            normalize(q, dim);
    }
    idx_opts srco = { AKIDB__STORAGE_INT8, AKIDB__EXACT_SOURCE, 0, 500, NULL };
    akidb__hnsw *h = make_index(dim, space, 0, &srco);
    add_all(h, vecs, n, dim, 500);
    test_source ts = { vecs, dim, 0, 0 };
    akidb__exact_source src = { .read = source_read, .ctx = &ts, .n_nodes = n };
    akidb__hnsw_set_exact_source(h, &src);
    akidb__hnsw_drop_exact(h);
    static const uint32_t efs[] = { 10, 24, 64 }, reranks[] = { 1, 2, 4 };
    uint64_t reads_bound = 0, reads_all = 0;
    for (uint32_t e = 0; e < 3; e++)
        for (uint32_t r = 0; r < 3; r++)
            for (uint32_t qi = 0; qi < n_q; qi++) {
                const float *q = qs + (size_t)qi * dim;
                akidb__hnsw_hit hb[10], ha[10];
                uint32_t nb = 0, na = 0;
                akidb__hnsw_set_rerank_bound(h, 1);
                ts.reads = 0;
                ASSERT_OK(akidb__hnsw_search2(h, q, 10, efs[e], 0, reranks[r], hb, &nb));
                reads_bound += ts.reads;
                akidb__hnsw_set_rerank_bound(h, 0);
                ts.reads = 0;
                ASSERT_OK(akidb__hnsw_search2(h, q, 10, efs[e], 0, reranks[r], ha, &na));
                reads_all += ts.reads;
                /* the last chunk's vectors stay in RAM (drop_exact frees
                 * whole chunks), so a search may read fewer than k */
                ASSERT_LE(ts.reads, (uint64_t)reranks[r] * 10);
                ASSERT_EQ(nb, 10);
                ASSERT_EQ(na, nb);
                for (uint32_t i = 0; i < na; i++) {
                    ASSERT_EQ(hb[i].node, ha[i].node);
                    ASSERT(hb[i].distance == ha[i].distance);
                }
            }
    /* re-rank 1 x k reads exactly k either way; wider ones skip some */
    ASSERT(reads_bound < reads_all);
    fprintf(stderr, "    %s: exact reads %llu with the bound, %llu without\n",
            space == AKIDB__SPACE_L2 ? "l2" : "cosine", (unsigned long long)reads_bound,
            (unsigned long long)reads_all);
    akidb__hnsw_free(h);
    free(vecs);
    free(qs);
}

TEST_TIMEOUT(quant_rerank_bound, 120)
{
    rerank_bound_case(AKIDB__SPACE_L2, 21);
    rerank_bound_case(AKIDB__SPACE_IP, 22);
}

/* A source that can tell a read would wait (a cold page cache): reads ask
 * until one would block, and then the candidates after it are hinted
 * before the search waits.  Same answers as a source without the two
 * calls; a warm source is asked at every read (which is the read) and
 * never hinted; an error after a hint still fails the search. */
typedef struct ahead_source {
    test_source base;
    int cold;              /* read_cached would block: 0 never, 1 always, 2 odd nodes */
    uint32_t n_nodes;
    uint64_t asked, hints, hints_out_of_range;
} ahead_source;

static int ahead_read(void *ctx, uint32_t node, float *out)
{
    return source_read(&((ahead_source *)ctx)->base, node, out);
}

static int ahead_read_cached(void *ctx, uint32_t node, float *out)
{
    ahead_source *s = ctx;
    s->asked++;
    int blocks = s->cold == 2 ? (int)(node & 1) : s->cold;
    return blocks ? AKIDB__EXACT_WOULD_BLOCK : source_read(&s->base, node, out);
}

static void ahead_will_need(void *ctx, uint32_t node)
{
    ahead_source *s = ctx;
    s->hints++;
    s->hints_out_of_range += node >= s->n_nodes;
}

TEST_TIMEOUT(quant_exact_source_read_ahead, 120)
{
    const uint32_t n = 3000, dim = 32, n_q = 80, k = 10;
    float *vecs = clustered(31, 31, n, dim, 25, 0.4, 0);
    float *qs = clustered(31, 32, n_q, dim, 25, 0.4, 0);
    idx_opts srco = { AKIDB__STORAGE_INT8, AKIDB__EXACT_SOURCE, 0, 500, NULL };
    akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, &srco);
    add_all(h, vecs, n, dim, 500);
    test_source plain = { vecs, dim, 0, 0 };
    ahead_source ahead = { { vecs, dim, 0, 0 }, 1, n, 0, 0, 0 };
    akidb__exact_source src_plain = { .read = source_read, .ctx = &plain, .n_nodes = n };
    akidb__exact_source src_ahead = { .read = ahead_read, .ctx = &ahead, .n_nodes = n,
                                      .read_cached = ahead_read_cached,
                                      .will_need = ahead_will_need };
    akidb__hnsw_set_exact_source(h, &src_plain);
    akidb__hnsw_drop_exact(h);
    uint64_t plain_reads = 0, searches_hinting = 0;
    /* cold, warm, then a cache holding the even nodes only */
    static const int colds[] = { 1, 0, 2 };
    for (int mode = 0; mode < 3; mode++) {
        ahead.cold = colds[mode];
        int warm = ahead.cold == 0;
        searches_hinting = 0;
        ahead.base.reads = ahead.asked = ahead.hints = 0;
        plain_reads = 0;
        for (uint32_t qi = 0; qi < n_q; qi++) {
            const float *q = qs + (size_t)qi * dim;
            akidb__hnsw_hit hp[10], ha[10];
            uint32_t np = 0, na = 0;
            akidb__hnsw_set_exact_source(h, &src_plain);
            plain.reads = 0;
            ASSERT_OK(akidb__hnsw_search2(h, q, k, 24, 0, 3, hp, &np));
            plain_reads += plain.reads;
            akidb__hnsw_set_exact_source(h, &src_ahead);
            uint64_t asked = ahead.asked, hints = ahead.hints;
            ASSERT_OK(akidb__hnsw_search2(h, q, k, 24, 0, 3, ha, &na));
            /* cold: asked once, by the first read through the source;
             * warm: every read asks (and reads); half: until an odd node */
            if (warm)
                ASSERT_EQ(ahead.asked - asked, plain.reads);
            else if (ahead.cold == 1)
                ASSERT_EQ(ahead.asked - asked, plain.reads ? 1 : 0);
            else
                ASSERT_LE(ahead.asked - asked, plain.reads);
            /* at most the other candidates of a 3 x k re-rank */
            ASSERT_LE(ahead.hints - hints, 3 * k - 1);
            searches_hinting += ahead.hints > hints;
            ASSERT_EQ(na, np);
            for (uint32_t i = 0; i < na; i++) {
                ASSERT_EQ(ha[i].node, hp[i].node);
                ASSERT(ha[i].distance == hp[i].distance);
            }
        }
        ASSERT_EQ(ahead.hints_out_of_range, 0);
        if (warm) {
            /* warm: no hints, and the asking reads are the reads */
            ASSERT_EQ(ahead.hints, 0);
            ASSERT_EQ(ahead.base.reads, plain_reads);
        } else {
            /* the blocking asks read nothing: every vector read once */
            ASSERT_EQ(ahead.base.reads, plain_reads);
            ASSERT(searches_hinting > n_q / 2);
        }
    }
    /* a read that fails after the hints fails the search */
    ahead.cold = 1;
    ahead.base.fail = 1;
    uint32_t nb = 99;
    akidb__hnsw_hit hb[10];
    ASSERT_EQ(akidb__hnsw_search2(h, qs, k, 24, 0, 3, hb, &nb), AKIDB_IOERR);
    ASSERT_EQ(nb, 0);
    akidb__hnsw_free(h);
    free(vecs);
    free(qs);
}

/* ---- training and clipping ------------------------------------------- */

TEST(quant_int8_training)
{
    const uint32_t dim = 16;
    float *vecs = clustered(3, 3, 600, dim, 5, 0.3, 0);
    idx_opts o = { AKIDB__STORAGE_INT8, AKIDB__EXACT_RAM, 0, 200, NULL };
    akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, &o);
    akidb__i8_params p;
    /* below train_rows: walked exactly, no parameters yet */
    add_all(h, vecs, 199, dim, 50);
    ASSERT_EQ(akidb__hnsw_i8_params(h, &p), 0);
    akidb__hnsw_hit hits[3];
    uint32_t nh;
    ASSERT_OK(akidb__hnsw_search(h, vecs + 10 * dim, 3, 16, 0, hits, &nh));
    ASSERT_EQ(hits[0].node, 10);
    ASSERT(hits[0].distance == 0.0f);
    akidb__hnsw_quant_stats st;
    akidb__hnsw_quant_stats_get(h, &st);
    ASSERT_EQ(st.trainings, 0);
    /* the 200th is still linked on floats: training happens before the
     * node after the first train_rows is linked, on exactly those */
    add_all(h, vecs + 199 * dim, 1, dim, 1);
    ASSERT_EQ(akidb__hnsw_i8_params(h, &p), 0);
    /* the 201st (far outside the range) trains on the first 200, then is
     * encoded: clipped and counted, the search still exact */
    float far[16];
    for (uint32_t d = 0; d < dim; d++)
        far[d] = d < 3 ? 1e3f : vecs[d];
    add_all(h, far, 1, dim, 1);
    ASSERT_EQ(akidb__hnsw_i8_params(h, &p), 1);
    ASSERT_EQ(p.dim, dim);
    ASSERT(p.scale > 0);
    akidb__hnsw_quant_stats_get(h, &st);
    ASSERT_EQ(st.trainings, 1);
    ASSERT_EQ(st.values_encoded, 201 * dim);
    ASSERT_EQ(st.values_clipped, 3);            /* the training rows fit, far does not */
    /* every training value is within half a step of its grid point */
    for (uint32_t i = 0; i < 200; i++)
        for (uint32_t d = 0; d < dim; d++) {
            float x = vecs[i * dim + d];
            float lv = (x - p.offset[d]) / p.scale;
            ASSERT(lv >= -128.5f && lv < 127.5f);
        }
    ASSERT_OK(akidb__hnsw_search(h, far, 1, 16, 0, hits, &nh));
    ASSERT_EQ(hits[0].node, 200);
    ASSERT(hits[0].distance == 0.0f);
    /* retrain: the grid now covers it, nothing clips */
    ASSERT_OK(akidb__hnsw_retrain(h, 0));
    akidb__hnsw_quant_stats_get(h, &st);
    ASSERT_EQ(st.trainings, 2);
    ASSERT_EQ(st.values_clipped, 0);
    ASSERT_EQ(st.values_encoded, 201 * dim);
    ASSERT_EQ(akidb__hnsw_i8_params(h, &p), 1);
    ASSERT(p.offset[0] + 127 * p.scale >= 999.0f);
    /* a sampled retrain works too */
    ASSERT_OK(akidb__hnsw_retrain(h, 50));
    ASSERT_OK(akidb__hnsw_search(h, vecs + 33 * dim, 1, 16, 0, hits, &nh));
    ASSERT_EQ(hits[0].node, 33);
    /* f16 has nothing to train */
    idx_opts of = { AKIDB__STORAGE_F16, AKIDB__EXACT_RAM, 0, 0, NULL };
    akidb__hnsw *f = make_index(dim, AKIDB__SPACE_L2, 0, &of);
    ASSERT_EQ(akidb__hnsw_retrain(f, 0), AKIDB_INVALID);
    ASSERT_EQ(akidb__hnsw_i8_params(f, &p), 0);
    /* f16 clamps beyond +-32752 and counts it */
    float big[16];
    for (uint32_t d = 0; d < dim; d++)
        big[d] = d == 0 ? 1e6f : d == 1 ? -40000.0f : 1.0f;
    add_all(f, big, 1, dim, 1);
    akidb__hnsw_quant_stats_get(f, &st);
    ASSERT_EQ(st.values_clipped, 2);
    ASSERT_EQ(st.values_encoded, dim);
    /* a retrain after exact vectors are gone is refused */
    idx_opts on = { AKIDB__STORAGE_INT8, AKIDB__EXACT_NONE, 0, 10, NULL };
    akidb__hnsw *g = make_index(dim, AKIDB__SPACE_L2, 0, &on);
    add_all(g, vecs, 20, dim, 20);
    ASSERT_EQ(akidb__hnsw_retrain(g, 0), AKIDB_INVALID);
    akidb__hnsw_free(g);
    akidb__hnsw_free(f);
    akidb__hnsw_free(h);
    free(vecs);
}

/* Degenerate data: every dimension constant (training finds no range), or
 * some dimensions constant and one huge. */
TEST(quant_int8_degenerate)
{
    const uint32_t dim = 24, n = 300;
    float *v = malloc((size_t)n * dim * sizeof(float));
    ASSERT(v != NULL);
    for (uint32_t i = 0; i < n * dim; i++)
        v[i] = 2.5f;
    idx_opts o = { AKIDB__STORAGE_INT8, AKIDB__EXACT_RAM, 0, 100, NULL };
    akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, &o);
    add_all(h, v, n, dim, 100);
    akidb__i8_params p;
    ASSERT_EQ(akidb__hnsw_i8_params(h, &p), 1);
    ASSERT(p.scale > 0 && isfinite(p.scale));
    ASSERT(akidb__i8_params_valid(&p));
    akidb__hnsw_quant_stats st;
    akidb__hnsw_quant_stats_get(h, &st);
    ASSERT_EQ(st.values_clipped, 0);
    /* a different value clips, and is counted; search stays exact */
    float q[24];
    for (uint32_t d = 0; d < dim; d++)
        q[d] = d == 5 ? 3.0f : 2.5f;
    add_all(h, q, 1, dim, 1);
    akidb__hnsw_quant_stats_get(h, &st);
    ASSERT_EQ(st.values_clipped, 1);
    akidb__hnsw_hit hits[2];
    uint32_t nh;
    ASSERT_OK(akidb__hnsw_search(h, q, 1, 400, 0, hits, &nh));
    ASSERT_EQ(hits[0].node, n);
    ASSERT(hits[0].distance == 0.0f);
    akidb__hnsw_free(h);
    /* one wide dimension, the others narrow: the narrow ones keep
     * headroom around their centre and never clip within it */
    uint64_t seed = 77;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t d = 0; d < dim; d++)
            v[i * dim + d] = d == 0 ? (float)(rand_u01(&seed) * 1000.0) : (float)rand_u01(&seed);
    h = make_index(dim, AKIDB__SPACE_L2, 0, &o);
    add_all(h, v, n, dim, 100);
    ASSERT_EQ(akidb__hnsw_i8_params(h, &p), 1);
    float lo = v[0], hi = v[0];
    for (uint32_t i = 0; i < 100; i++) {     /* trained on the first 100 */
        lo = fminf(lo, v[i * dim]);
        hi = fmaxf(hi, v[i * dim]);
    }
    ASSERT_NEAR(p.scale, (hi - lo) / 255.0, 1e-5);
    /* (rows 100.. may fall just off dimension 0's trained range) */
    akidb__hnsw_quant_stats_get(h, &st);
    uint64_t clipped_before = st.values_clipped;
    ASSERT_LE(clipped_before, 10);
    for (uint32_t d = 0; d < dim; d++)
        q[d] = d == 0 ? 500.0f : 100.0f;    /* far off dim d's range, within the grid */
    add_all(h, q, 1, dim, 1);
    akidb__hnsw_quant_stats_get(h, &st);
    ASSERT_EQ(st.values_clipped, clipped_before);
    akidb__hnsw_free(h);
    free(v);
}

TEST(quant_params_checked)
{
    float off[4] = { 0, 1, 2, 3 };
    akidb__i8_params p = { 4, 0.5f, off };
    ASSERT(akidb__i8_params_valid(&p));
    p.scale = 0;
    ASSERT(!akidb__i8_params_valid(&p));
    p.scale = -1;
    ASSERT(!akidb__i8_params_valid(&p));
    p.scale = NAN;
    ASSERT(!akidb__i8_params_valid(&p));
    p.scale = INFINITY;
    ASSERT(!akidb__i8_params_valid(&p));
    p.scale = 3e36f;                          /* 128 * scale overflows */
    ASSERT(!akidb__i8_params_valid(&p));
    p.scale = 0.5f;
    off[2] = NAN;
    ASSERT(!akidb__i8_params_valid(&p));
    off[2] = 3.4e38f;                         /* the grid's end overflows */
    p.scale = 1e36f;
    ASSERT(!akidb__i8_params_valid(&p));
    p.scale = 0.5f;
    ASSERT(akidb__i8_params_valid(&p));       /* 3.4e38 + 64 is finite */
    off[2] = 2;
    idx_opts o = { AKIDB__STORAGE_INT8, AKIDB__EXACT_RAM, 0, 0, NULL };
    akidb__hnsw *h = make_index(4, AKIDB__SPACE_L2, 0, &o);
    ASSERT_EQ(akidb__hnsw_set_i8_params(h, off, 0.0f), AKIDB_INVALID);
    ASSERT_EQ(akidb__hnsw_set_i8_params(h, off, NAN), AKIDB_INVALID);
    ASSERT_OK(akidb__hnsw_set_i8_params(h, off, 0.5f));
    add_all(h, off, 1, 4, 1);
    ASSERT_EQ(akidb__hnsw_set_i8_params(h, off, 0.5f), AKIDB_INVALID);  /* not empty */
    akidb__hnsw_free(h);
    idx_opts f = { AKIDB__STORAGE_F16, AKIDB__EXACT_RAM, 0, 0, NULL };
    h = make_index(4, AKIDB__SPACE_L2, 0, &f);
    ASSERT_EQ(akidb__hnsw_set_i8_params(h, off, 0.5f), AKIDB_INVALID);  /* not int8 */
    akidb__hnsw_free(h);
    /* bad kinds and modes */
    akidb__hnsw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dim = 4;
    cfg.space = AKIDB__SPACE_L2;
    cfg.m = 8;
    cfg.ef_construction = 10;
    cfg.storage = (akidb__storage)9;
    ASSERT_EQ(akidb__hnsw_new(&cfg, NULL, NULL, &h), AKIDB_INVALID);
    cfg.storage = AKIDB__STORAGE_INT8;
    cfg.exact = (akidb__exact_mode)7;
    ASSERT_EQ(akidb__hnsw_new(&cfg, NULL, NULL, &h), AKIDB_INVALID);
}

static const float *rows_at(void *ctx, uint32_t i)
{
    return ((const float *const *)ctx)[i];
}

/* Encoding round trip: decode(encode(x)) is within half a step, and
 * encode(decode(c)) == c (what a file written with decoded vectors needs). */
TEST(quant_encode_round_trip)
{
    const uint32_t dim = 100, n = 50;
    uint64_t seed = 1;
    float *rows = malloc(n * dim * sizeof(float));
    ASSERT(rows != NULL);
    for (uint32_t i = 0; i < n * dim; i++)
        rows[i] = (float)(rand_gauss(&seed) * (1 + i % 7) + (i % 13) * 10);
    const float *row_ptr[50];
    for (uint32_t i = 0; i < n; i++)
        row_ptr[i] = rows + (size_t)i * dim;
    float off[100], scratch[100], scale, dec[100], dec2[100];
    akidb__i8_train(dim, n, rows_at, (void *)row_ptr, off, &scale, scratch);
    akidb__i8_params p = { dim, scale, off };
    ASSERT(akidb__i8_params_valid(&p));
    uint8_t c[100], c2[100];
    int8_t q[100];
    for (uint32_t i = 0; i < n; i++) {
        int32_t norm, sum, qnorm;
        float lin, qlin, resid, qresid;
        ASSERT_EQ(akidb__i8_encode(&p, row_ptr[i], c, &norm, &lin, &resid), 0);
        akidb__i8_decode(&p, c, dec);
        int32_t want_norm = 0;
        double want_resid = 0.0;
        for (uint32_t d = 0; d < dim; d++) {
            ASSERT_LE(fabs(dec[d] - row_ptr[i][d]), 0.5 * scale * 1.001);
            want_norm += ((int)c[d] - 128) * ((int)c[d] - 128);
            double g = (double)off[d] + (double)scale * ((int)c[d] - 128);
            want_resid += (row_ptr[i][d] - g) * (row_ptr[i][d] - g);
        }
        ASSERT_EQ(norm, want_norm);
        /* the residual never understates |x - grid point|, and is tight */
        ASSERT(resid >= sqrt(want_resid));
        ASSERT_LE(resid, sqrt(want_resid) * (1 + 1e-6) + 1e-30);
        ASSERT_LE(resid, 0.5 * scale * sqrt((double)dim) * 1.001);
        ASSERT_EQ(akidb__i8_encode(&p, dec, c2, NULL, NULL, NULL), 0);
        ASSERT(memcmp(c, c2, dim) == 0);
        /* a query is the same levels, signed, with the same residual */
        akidb__i8_query(&p, row_ptr[i], q, &sum, &qnorm, &qlin, &qresid);
        ASSERT_EQ(qnorm, norm);
        ASSERT(qlin == lin);
        ASSERT(qresid == resid);
        for (uint32_t d = 0; d < dim; d++)
            ASSERT_EQ(q[d], (int)c[d] - 128);
    }
    /* clipping: the residual includes what the clamp cut off */
    float far[100];
    for (uint32_t d = 0; d < dim; d++)
        far[d] = off[d] + (d % 2 ? 1000.0f : -1000.0f) * scale;
    float far_resid;
    ASSERT_EQ(akidb__i8_encode(&p, far, c, NULL, NULL, &far_resid), dim);
    ASSERT(far_resid >= 871.0 * scale * sqrt((double)dim));
    /* f16: exact for values binary16 holds, clamped beyond +-32752 */
    float x[5] = { 1.5f, -0.0f, 65504.0f, -1e9f, 3.0e-5f };
    uint16_t hx[5];
    ASSERT_EQ(akidb__f16_encode(x, 5, hx), 2);
    akidb__f16_decode(hx, 5, dec2);
    ASSERT(dec2[0] == 1.5f && dec2[1] == 0.0f && dec2[2] == 32752.0f && dec2[3] == -32752.0f);
    ASSERT_NEAR(dec2[4], 3.0e-5, 1e-7);
    free(rows);
}

/* int8 kernels are exact integers, so the scalar kernels and the SIMD
 * ones build the same graph and answer the same, bit for bit. */
TEST_TIMEOUT(quant_int8_kernels_agree, 120)
{
    const uint32_t n = 2000, dim = 72, n_q = 50;
    float *vecs = clustered(21, 21, n, dim, 20, 0.5, 1);
    float *qs = clustered(21, 22, n_q, dim, 20, 0.5, 1);
    const akidb__kernels *ks[8];
    size_t n_k = akidb__kernels_all(ks);
    idx_opts o = { AKIDB__STORAGE_INT8, AKIDB__EXACT_NONE, 0, 300, ks[0] };
    akidb__hnsw *ref = make_index(dim, AKIDB__SPACE_IP, 0, &o);
    add_all(ref, vecs, n, dim, 250);
    for (size_t ki = 1; ki < n_k + 1; ki++) {
        o.kernels = ki < n_k ? ks[ki] : akidb__kernels_best();
        akidb__hnsw *h = make_index(dim, AKIDB__SPACE_IP, 0, &o);
        add_all(h, vecs, n, dim, 250);
        for (uint32_t node = 0; node < n; node++) {
            uint32_t ca, cb;
            const uint32_t *la = akidb__hnsw_links(ref, node, 0, &ca);
            const uint32_t *lb = akidb__hnsw_links(h, node, 0, &cb);
            ASSERT_EQ(ca, cb);
            ASSERT(memcmp(la, lb, ca * sizeof *la) == 0);
        }
        for (uint32_t qi = 0; qi < n_q; qi++) {
            akidb__hnsw_hit a[10], b[10];
            uint32_t na, nb;
            ASSERT_OK(akidb__hnsw_search(ref, qs + (size_t)qi * dim, 10, 40, 0, a, &na));
            ASSERT_OK(akidb__hnsw_search(h, qs + (size_t)qi * dim, 10, 40, 0, b, &nb));
            ASSERT_EQ(na, nb);
            for (uint32_t i = 0; i < na; i++) {
                ASSERT_EQ(a[i].node, b[i].node);
                ASSERT(a[i].distance == b[i].distance);
            }
        }
        akidb__hnsw_free(h);
    }
    akidb__hnsw_free(ref);
    free(vecs);
    free(qs);
}

/* A saved int8 index rebuilt from its parts and its parameters answers
 * exactly as the original; dimensions 1 and 4096 work. */
/* Build from saved parts (what a checkpoint load does) for both kinds and
 * exact modes, at dim 1 and 4096: searches equal the original's, and both
 * grow on identically afterwards.  Without exact vectors the parts carry
 * the decoded vectors (as the files do), which encode to the same codes;
 * with and without build_set_linked before the nodes. */
TEST_TIMEOUT(quant_build_and_extremes, 240)
{
    static const uint32_t dims[] = { 1, 4096 };
    for (size_t di = 0; di < 2; di++) {
        /* 150 + 60 nodes at dim 4096 (past the 100 training rows): the
         * case costs ~8 s under ASan and minutes under qemu as it is */
        uint32_t dim = dims[di], n = dim == 1 ? 400 : 150, extra = dim == 1 ? 150 : 60;
        float *vecs = clustered(31, 31, n + extra, dim, 10, 0.5, 0);
        float *saved = malloc((size_t)n * dim * sizeof(float));
        ASSERT(saved != NULL);
        static const akidb__storage kinds[] = { AKIDB__STORAGE_F16, AKIDB__STORAGE_INT8 };
        for (size_t ki = 0; ki < 2; ki++)
        for (int variant = 0; variant < 3; variant++) {
            akidb__exact_mode mode = variant ? AKIDB__EXACT_NONE : AKIDB__EXACT_RAM;
            idx_opts o = { kinds[ki], mode, 0, 100, NULL };
            akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, &o);
            add_all(h, vecs, n, dim, 100);
            /* save: vectors as the files do, levels, links */
            for (uint32_t i = 0; i < n; i++)
                ASSERT_OK(akidb__hnsw_vector_copy(h, i, saved + (size_t)i * dim, NULL));
            int32_t *levels = malloc(n * sizeof(int32_t));
            uint64_t *off = malloc((n + 1) * sizeof(uint64_t));
            int32_t *links = malloc((size_t)n * 16 * (2 * 16 + 1) * sizeof(int32_t));
            ASSERT(levels && off && links);
            uint64_t p = 0;
            for (uint32_t i = 0; i < n; i++) {
                levels[i] = akidb__hnsw_level(h, i);
                off[i] = p;
                for (int l = 0; l <= levels[i]; l++) {
                    uint32_t cnt;
                    const uint32_t *ll = akidb__hnsw_links(h, i, l, &cnt);
                    links[p++] = (int32_t)cnt;
                    for (uint32_t j = 0; j < cnt; j++)
                        links[p++] = (int32_t)ll[j];
                }
            }
            off[n] = p;
            akidb__hnsw_config cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.dim = dim;
            cfg.space = AKIDB__SPACE_L2;
            cfg.m = 16;
            cfg.ef_construction = 100;
            cfg.seed = 42;
            cfg.storage = kinds[ki];
            cfg.exact = mode;
            cfg.train_rows = 100;
            akidb__hnsw *r = NULL;
            const char *why;
            ASSERT_OK(akidb__hnsw_build_begin(&cfg, NULL, &r));
            akidb__i8_params ip;
            if (akidb__hnsw_i8_params(h, &ip))
                ASSERT_OK(akidb__hnsw_set_i8_params(r, ip.offset, ip.scale));
            if (variant == 1)
                akidb__hnsw_build_set_linked(r, n);
            ASSERT_OK(akidb__hnsw_build_nodes(r, n, saved, levels, NULL, links, off, &why));
            ASSERT_OK(akidb__hnsw_build_end(r, akidb__hnsw_entry(h), NULL, &why));
            akidb__hnsw_rng rng;
            akidb__hnsw_get_rng(h, &rng);
            akidb__hnsw_free(r);
            /* again with the generator's state, so both grow alike */
            ASSERT_OK(akidb__hnsw_build_begin(&cfg, NULL, &r));
            if (akidb__hnsw_i8_params(h, &ip))
                ASSERT_OK(akidb__hnsw_set_i8_params(r, ip.offset, ip.scale));
            if (variant == 1)
                akidb__hnsw_build_set_linked(r, n);
            ASSERT_OK(akidb__hnsw_build_nodes(r, n, saved, levels, NULL, links, off, &why));
            ASSERT_OK(akidb__hnsw_build_end(r, akidb__hnsw_entry(h), &rng, &why));
            akidb__hnsw_bytes bh, br;
            akidb__hnsw_memory_parts(h, &bh);
            akidb__hnsw_memory_parts(r, &br);
            ASSERT_EQ(bh.exact, br.exact);
            for (int round = 0; round < 2; round++) {
                for (uint32_t qi = 0; qi < 20; qi++) {
                    akidb__hnsw_hit a[5], b[5];
                    uint32_t na, nb;
                    const float *q = vecs + (size_t)(qi * 7) * dim;
                    ASSERT_OK(akidb__hnsw_search(h, q, 5, 20, 0, a, &na));
                    ASSERT_OK(akidb__hnsw_search(r, q, 5, 20, 0, b, &nb));
                    ASSERT_EQ(na, 5);
                    ASSERT_EQ(na, nb);
                    if (mode == AKIDB__EXACT_RAM)
                        ASSERT_EQ(a[0].node, qi * 7);
                    for (uint32_t i = 0; i < na; i++) {
                        ASSERT_EQ(a[i].node, b[i].node);
                        ASSERT(a[i].distance == b[i].distance);
                    }
                }
                if (round == 0) {
                    /* both grow on alike: same codes, same levels drawn */
                    add_all(h, vecs + (size_t)n * dim, extra, dim, 50);
                    add_all(r, vecs + (size_t)n * dim, extra, dim, 50);
                    for (uint32_t i = 0; i < n + extra; i++) {
                        ASSERT_EQ(akidb__hnsw_level(h, i), akidb__hnsw_level(r, i));
                        uint32_t ca, cb;
                        const uint32_t *la = akidb__hnsw_links(h, i, 0, &ca);
                        const uint32_t *lb = akidb__hnsw_links(r, i, 0, &cb);
                        ASSERT_EQ(ca, cb);
                        ASSERT(memcmp(la, lb, ca * sizeof *la) == 0);
                    }
                }
            }
            free(levels);
            free(off);
            free(links);
            akidb__hnsw_free(r);
            akidb__hnsw_free(h);
        }
        free(saved);
        free(vecs);
    }
}

/* ---- the tail (appended, not yet linked) ------------------------------ */

/* Every kind and exact mode: appended nodes are found at once with exact
 * distances (the tail keeps its exact vectors until linked), linking in
 * any slices gives the same graph as add() (int8 trains at the same
 * point of the linking order), and a linked EXACT_NONE index drops the
 * exact vectors of its full chunks. */
TEST_TIMEOUT(quant_tail_every_kind, 120)
{
    const uint32_t n = 2500, dim = 24;
    float *vecs = clustered(21, 22, n, dim, 8, 0.4, 0);
    static const akidb__storage kinds[] = { AKIDB__STORAGE_F32, AKIDB__STORAGE_F16,
                                            AKIDB__STORAGE_INT8 };
    static const akidb__exact_mode modes[] = { AKIDB__EXACT_RAM, AKIDB__EXACT_NONE };
    for (size_t ki = 0; ki < 3; ki++)
        for (size_t mi = 0; mi < 2; mi++) {
            idx_opts o = { kinds[ki], modes[mi], 0, 300, NULL };
            akidb__hnsw *ref = make_index(dim, AKIDB__SPACE_L2, 0, &o);
            add_all(ref, vecs, n, dim, 250);
            akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, &o);
            uint64_t seed = 77;
            uint32_t done = 0;
            while (done < n) {
                uint32_t nb = 1 + (uint32_t)(splitmix64(&seed) % 400);
                if (nb > n - done)
                    nb = n - done;
                ASSERT_OK(akidb__hnsw_reserve(h, nb));
                for (uint32_t j = 0; j < nb; j++)
                    ASSERT_EQ(akidb__hnsw_append(h, vecs + (size_t)(done + j) * dim), done + j);
                done += nb;
                /* the newest node, unlinked, is found exactly */
                ASSERT(akidb__hnsw_linked(h) < done);
                akidb__hnsw_hit hit;
                uint32_t nh = 0;
                ASSERT_OK(akidb__hnsw_search(h, vecs + (size_t)(done - 1) * dim, 1, 32, 0, &hit,
                                             &nh));
                ASSERT_EQ(nh, 1);
                ASSERT_EQ(hit.node, done - 1);
                ASSERT(hit.distance == 0.0f);
                /* link a random part of the tail */
                uint32_t nl = (uint32_t)(splitmix64(&seed) % (done - akidb__hnsw_linked(h) + 1));
                for (uint32_t j = 0; j < nl; j++)
                    akidb__hnsw_link_next(h);
            }
            while (akidb__hnsw_linked(h) < n)
                akidb__hnsw_link_next(h);
            /* the same graph as one-step inserts */
            ASSERT_EQ(akidb__hnsw_entry(h), akidb__hnsw_entry(ref));
            for (uint32_t i = 0; i < n; i++) {
                ASSERT_EQ(akidb__hnsw_level(h, i), akidb__hnsw_level(ref, i));
                for (int l = 0; l <= akidb__hnsw_level(h, i); l++) {
                    uint32_t ca = 0, cb = 0;
                    const uint32_t *la = akidb__hnsw_links(h, i, l, &ca);
                    const uint32_t *lb = akidb__hnsw_links(ref, i, l, &cb);
                    ASSERT_EQ(ca, cb);
                    ASSERT(memcmp(la, lb, ca * sizeof *la) == 0);
                }
            }
            akidb__hnsw_bytes b;
            akidb__hnsw_memory_parts(h, &b);
            if (kinds[ki] != AKIDB__STORAGE_F32 && modes[mi] == AKIDB__EXACT_NONE) {
                ASSERT_LE(b.exact, 1024 * dim * sizeof(float) + 64);
                ASSERT(akidb__hnsw_vector(h, 0) == NULL);
            } else {
                ASSERT(b.exact >= (size_t)n * dim * sizeof(float));
            }
            akidb__hnsw_free(h);
            akidb__hnsw_free(ref);
        }
    free(vecs);
}

/* ---- out of memory ------------------------------------------------------ */

typedef struct oom_alloc {
    unsigned long n_calls, fail_at;
    long live;
} oom_alloc;

static void *oom_malloc(void *ctx, size_t size)
{
    oom_alloc *s = ctx;
    if (++s->n_calls == s->fail_at)
        return NULL;
    void *p = malloc(size ? size : 1);
    if (p)
        s->live++;
    return p;
}

static void *oom_realloc(void *ctx, void *ptr, size_t size)
{
    oom_alloc *s = ctx;
    if (!ptr)
        return oom_malloc(ctx, size);
    if (++s->n_calls == s->fail_at)
        return NULL;
    return realloc(ptr, size ? size : 1);
}

static void oom_free(void *ctx, void *ptr)
{
    oom_alloc *s = ctx;
    if (ptr)
        s->live--;
    free(ptr);
}

/* One run: new, reserve and append in batches (a failed reserve leaves
 * the index as it was, and the batch is retried), link, search.  Returns
 * whether the injected failure was reached. */
static int oom_run(akidb__storage storage, akidb__exact_mode exact, unsigned long fail_at,
                   const float *vecs, uint32_t n, uint32_t dim)
{
    oom_alloc s = { 0, fail_at, 0 };
    akidb_allocator al = { oom_malloc, oom_realloc, oom_free, &s };
    akidb__hnsw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dim = dim;
    cfg.space = AKIDB__SPACE_L2;
    cfg.m = 8;
    cfg.ef_construction = 32;
    cfg.seed = 5;
    cfg.storage = storage;
    cfg.exact = exact;
    cfg.train_rows = 60;
    akidb__hnsw *h = NULL;
    int rc = akidb__hnsw_new(&cfg, &al, NULL, &h);
    if (rc) {
        ASSERT_EQ(rc, AKIDB_NOMEM);
        ASSERT(h == NULL);
        ASSERT_EQ(s.live, 0);
        return 1;
    }
    for (uint32_t i = 0; i < n; i += 50) {
        uint32_t nb = n - i < 50 ? n - i : 50;
        while ((rc = akidb__hnsw_reserve(h, nb)) != AKIDB_OK) {
            ASSERT_EQ(rc, AKIDB_NOMEM);
            ASSERT_EQ(akidb__hnsw_size(h), i);
        }
        for (uint32_t j = 0; j < nb; j++)
            akidb__hnsw_append(h, vecs + (size_t)(i + j) * dim);
        /* link half of it now: a tail stays across the next reserve */
        while (akidb__hnsw_linked(h) < i + nb / 2)
            akidb__hnsw_link_next(h);
    }
    while (akidb__hnsw_linked(h) < n)
        akidb__hnsw_link_next(h);
    akidb__hnsw_hit hits[5];
    uint32_t nh = 0;
    while ((rc = akidb__hnsw_search(h, vecs + 7 * dim, 5, 32, 0, hits, &nh)) != AKIDB_OK)
        ASSERT_EQ(rc, AKIDB_NOMEM);
    ASSERT_EQ(nh, 5);
    ASSERT_EQ(hits[0].node, 7);
    akidb__hnsw_free(h);
    if (s.live != 0)
        akt_fail(__FILE__, __LINE__, "%ld blocks leaked (fail_at %lu)", s.live, fail_at);
    return s.n_calls >= fail_at && fail_at > 0;
}

/* Fail allocation N = 1, 2, ... of a run for every storage kind and exact
 * mode (int8 trains midway): AKIDB_NOMEM, nothing half-done, no leak. */
TEST_TIMEOUT(quant_oom_fail_nth, 300)
{
    const uint32_t n = 300, dim = 20;
    float *vecs = clustered(31, 32, n, dim, 6, 0.5, 0);
    static const akidb__storage kinds[] = { AKIDB__STORAGE_F32, AKIDB__STORAGE_F16,
                                            AKIDB__STORAGE_INT8 };
    static const akidb__exact_mode modes[] = { AKIDB__EXACT_RAM, AKIDB__EXACT_NONE };
    for (size_t ki = 0; ki < 3; ki++)
        for (size_t mi = 0; mi < 2; mi++) {
            unsigned long f, n_runs = 0;
            for (f = 1; f < 5000 && oom_run(kinds[ki], modes[mi], f, vecs, n, dim); f++)
                n_runs++;
            ASSERT(f < 5000);
            ASSERT(n_runs > 5);
        }
    free(vecs);
}
