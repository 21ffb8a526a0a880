/*
 * test_hnsw.c - the HNSW index alone, through lib/hnsw.h.
 *
 * Recall against an exact scan on clustered synthetic data (L2 and inner
 * product), the exact mode, tombstones, empty and tiny indexes, the
 * reserve/add contract, degenerate data (many identical vectors), the
 * extreme dimensions 1 and 4096, and the saved image (round trip, and
 * truncated, damaged or unreadable images, or no memory, while loading).
 *
 * Cross-compiled for aarch64 with only alloc.c, distance.c and hnsw.c, so
 * only internal headers are used.  Sizes are modest because the suite also
 * runs under qemu and sanitizers.
 */
#include "runner.h"
#include "helpers.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "akidb.h"
#include "common/alloc.h"
#include "index/distance.h"
#include "index/hnsw.h"

static void normalize(float *v, uint32_t dim)
{
    double n = 0;
    for (uint32_t i = 0; i < dim; i++)
        n += (double)v[i] * v[i];
    n = sqrt(n);
    for (uint32_t i = 0; i < dim; i++)
        v[i] = (float)(v[i] / n);
}

/* n points around n_clusters gaussian centres (centres ~N(0, 1) drawn
 * from centre_seed, spread sigma, points drawn from seed), malloc'ed,
 * n*dim floats.  Queries share the data's centre_seed. */
static float *clustered2(uint64_t centre_seed, uint64_t seed, uint32_t n, uint32_t dim,
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
            v[(size_t)i * dim + d] =
                centres[(size_t)c * dim + d] + (float)(sigma * rand_gauss(&seed));
        if (unit)
            normalize(v + (size_t)i * dim, dim);
    }
    free(centres);
    return v;
}

static float *clustered(uint64_t seed, uint32_t n, uint32_t dim, uint32_t n_clusters,
                        double sigma, int unit)
{
    return clustered2(seed, seed, n, dim, n_clusters, sigma, unit);
}

static double ref_distance(akidb__hnsw_space space, int negate_dot,
                           const float *a, const float *b, uint32_t dim)
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

/* Exact k nearest among the first n vectors, skipping deleted[] (may be
 * NULL).  Returns how many were written. */
static uint32_t brute_force(const float *vecs, uint32_t n, uint32_t dim,
                            akidb__hnsw_space space, int negate_dot,
                            const unsigned char *deleted, const float *q,
                            uint32_t k, ref_hit *out)
{
    ref_hit *all = malloc((size_t)(n ? n : 1) * sizeof *all);
    ASSERT(all != NULL);
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (deleted && deleted[i])
            continue;
        all[m].node = i;
        all[m].distance = ref_distance(space, negate_dot, q, vecs + (size_t)i * dim, dim);
        m++;
    }
    qsort(all, m, sizeof *all, cmp_ref_hit);
    uint32_t r = m < k ? m : k;
    memcpy(out, all, r * sizeof *out);
    free(all);
    return r;
}

static akidb__hnsw *make_index(uint32_t dim, akidb__hnsw_space space, int negate_dot,
                               uint32_t m, uint32_t ef_c, uint64_t seed)
{
    akidb__hnsw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dim = dim;
    cfg.space = space;
    cfg.negate_dot = negate_dot;
    cfg.m = m;
    cfg.ef_construction = ef_c;
    cfg.seed = seed;
    akidb__hnsw *h = NULL;
    ASSERT_OK(akidb__hnsw_new(&cfg, &akidb__default_allocator, NULL, &h));
    ASSERT(h != NULL);
    return h;
}

/* Reserve and add n vectors in batches; node numbers must be dense. */
static void add_all(akidb__hnsw *h, const float *vecs, uint32_t n, uint32_t dim,
                    uint32_t batch)
{
    uint32_t base = akidb__hnsw_size(h);
    for (uint32_t i = 0; i < n; i += batch) {
        uint32_t nb = n - i < batch ? n - i : batch;
        ASSERT_OK(akidb__hnsw_reserve(h, nb));
        for (uint32_t j = 0; j < nb; j++) {
            uint32_t node = akidb__hnsw_add(h, vecs + (size_t)(i + j) * dim);
            ASSERT_EQ(node, base + i + j);
        }
    }
    ASSERT_EQ(akidb__hnsw_size(h), base + n);
}

/* Hits are sorted ascending, unique, in range, live, and each distance is
 * the true distance of its node. */
static void check_hits(const akidb__hnsw *h, const float *vecs, uint32_t dim,
                       akidb__hnsw_space space, int negate_dot, const float *q,
                       const akidb__hnsw_hit *hits, uint32_t n_hits)
{
    uint32_t size = akidb__hnsw_size(h);
    for (uint32_t i = 0; i < n_hits; i++) {
        ASSERT(hits[i].node < size);
        ASSERT(!akidb__hnsw_is_deleted(h, hits[i].node));
        if (i > 0)
            ASSERT_LE(hits[i - 1].distance, hits[i].distance);
        for (uint32_t j = 0; j < i; j++)
            ASSERT_NE(hits[j].node, hits[i].node);
        double want = ref_distance(space, negate_dot, q, vecs + (size_t)hits[i].node * dim, dim);
        ASSERT_NEAR(hits[i].distance, want, 1e-4);
    }
}

static double recall_run(akidb__hnsw_space space, int negate_dot, uint64_t seed)
{
    const uint32_t n = 5000, dim = 32, n_q = 200, k = 10;
    int unit = space == AKIDB__SPACE_IP;
    float *vecs = clustered(seed, n, dim, 50, 1.0, unit);
    float *qs = clustered2(seed, seed + 1000, n_q, dim, 50, 1.0, unit);

    akidb__hnsw *h = make_index(dim, space, negate_dot, 16, 200, 42);
    add_all(h, vecs, n, dim, 512);
    ASSERT_EQ(akidb__hnsw_live(h), n);

    akidb__hnsw_hit hits[10];
    ref_hit truth[10];
    uint32_t found = 0;
    for (uint32_t qi = 0; qi < n_q; qi++) {
        const float *q = qs + (size_t)qi * dim;
        uint32_t n_hits = 0;
        ASSERT_OK(akidb__hnsw_search(h, q, k, 64, 0, hits, &n_hits));
        ASSERT_EQ(n_hits, k);
        check_hits(h, vecs, dim, space, negate_dot, q, hits, n_hits);
        uint32_t n_truth = brute_force(vecs, n, dim, space, negate_dot, NULL, q, k, truth);
        ASSERT_EQ(n_truth, k);
        for (uint32_t i = 0; i < k; i++)
            for (uint32_t j = 0; j < k; j++)
                if (hits[i].node == truth[j].node) {
                    found++;
                    break;
                }
    }
    akidb__hnsw_free(h);
    free(vecs);
    free(qs);
    return (double)found / (double)(n_q * k);
}

TEST_TIMEOUT(hnsw_recall_l2, 60)
{
    double r = recall_run(AKIDB__SPACE_L2, 0, 1);
    fprintf(stderr, "  recall@10 L2 = %.4f\n", r);
    ASSERT_GE(r, 0.95);
}

TEST_TIMEOUT(hnsw_recall_ip, 60)
{
    double r = recall_run(AKIDB__SPACE_IP, 0, 2);
    fprintf(stderr, "  recall@10 IP = %.4f\n", r);
    ASSERT_GE(r, 0.95);
}

/* Self-queries: every stored point is its own nearest neighbour. */
TEST(hnsw_finds_itself)
{
    const uint32_t n = 2000, dim = 24;
    float *vecs = clustered(7, n, dim, 20, 0.3, 0);
    akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, 12, 100, 5);
    add_all(h, vecs, n, dim, 2000);
    uint32_t self_first = 0;
    for (uint32_t i = 0; i < n; i++) {
        akidb__hnsw_hit hits[1];
        uint32_t n_hits = 0;
        ASSERT_OK(akidb__hnsw_search(h, vecs + (size_t)i * dim, 1, 32, 0, hits, &n_hits));
        ASSERT_EQ(n_hits, 1);
        if (hits[0].node == i)
            self_first++;
    }
    ASSERT_GE((double)self_first / n, 0.99);
    akidb__hnsw_free(h);
    free(vecs);
}

/* Exact mode is the true top-k, sorted ascending; also with negate_dot. */
TEST(hnsw_exact_mode)
{
    const uint32_t n = 1500, dim = 20, k = 25;
    static const struct { akidb__hnsw_space space; int neg; int unit; } cases[] = {
        { AKIDB__SPACE_L2, 0, 0 }, { AKIDB__SPACE_IP, 0, 1 }, { AKIDB__SPACE_IP, 1, 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *vecs = clustered(100 + c, n, dim, 10, 0.5, cases[c].unit);
        float *qs = clustered2(100 + c, 200 + c, 20, dim, 10, 0.5, cases[c].unit);
        akidb__hnsw *h = make_index(dim, cases[c].space, cases[c].neg, 8, 40, 3);
        add_all(h, vecs, n, dim, 100);
        for (uint32_t qi = 0; qi < 20; qi++) {
            const float *q = qs + (size_t)qi * dim;
            akidb__hnsw_hit hits[25];
            ref_hit truth[25];
            uint32_t n_hits = 0;
            ASSERT_OK(akidb__hnsw_search(h, q, k, 1, 1, hits, &n_hits));
            ASSERT_EQ(n_hits, k);
            check_hits(h, vecs, dim, cases[c].space, cases[c].neg, q, hits, n_hits);
            ASSERT_EQ(brute_force(vecs, n, dim, cases[c].space, cases[c].neg, NULL, q, k,
                                  truth), k);
            for (uint32_t i = 0; i < k; i++) {
                /* distances match rank by rank; ids match unless tied */
                ASSERT_NEAR(hits[i].distance, truth[i].distance, 1e-4);
                if (hits[i].node != truth[i].node)
                    ASSERT_NEAR(truth[i].distance,
                                ref_distance(cases[c].space, cases[c].neg, q,
                                             vecs + (size_t)hits[i].node * dim, dim), 1e-6);
            }
            /* akidb__hnsw_distance agrees with the reference */
            for (uint32_t i = 0; i < 5; i++)
                ASSERT_NEAR(akidb__hnsw_distance(h, q, i),
                            ref_distance(cases[c].space, cases[c].neg, q,
                                         vecs + (size_t)i * dim, dim), 1e-4);
        }
        akidb__hnsw_free(h);
        free(vecs);
        free(qs);
    }
}

/* 90% deleted: k live hits still come back, none of them deleted, in both
 * graph and exact modes, and they are the true nearest live nodes. */
TEST(hnsw_deleted_never_returned)
{
    const uint32_t n = 1000, dim = 16, k = 10;
    float *vecs = clustered(11, n, dim, 10, 0.4, 0);
    akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, 16, 100, 9);
    add_all(h, vecs, n, dim, 250);
    unsigned char *del = calloc(n, 1);
    ASSERT(del != NULL);
    for (uint32_t i = 0; i < n; i++)
        if (i % 10 != 3) {
            akidb__hnsw_mark_deleted(h, i);
            del[i] = 1;
        }
    ASSERT_EQ(akidb__hnsw_size(h), n);
    ASSERT_EQ(akidb__hnsw_live(h), n / 10);
    for (uint32_t i = 0; i < n; i++)
        ASSERT_EQ(!!akidb__hnsw_is_deleted(h, i), del[i]);

    uint64_t seed = 3;
    uint32_t found = 0, total = 0;
    for (uint32_t qi = 0; qi < 100; qi++) {
        /* query on a deleted point: its own node must not come back */
        uint32_t target = (uint32_t)(splitmix64(&seed) % n);
        const float *q = vecs + (size_t)target * dim;
        for (int exact = 0; exact <= 1; exact++) {
            akidb__hnsw_hit hits[10];
            uint32_t n_hits = 0;
            ASSERT_OK(akidb__hnsw_search(h, q, k, 64, exact, hits, &n_hits));
            ASSERT_EQ(n_hits, k);
            check_hits(h, vecs, dim, AKIDB__SPACE_L2, 0, q, hits, n_hits);
            for (uint32_t i = 0; i < n_hits; i++)
                ASSERT_EQ(del[hits[i].node], 0);
            ref_hit truth[10];
            ASSERT_EQ(brute_force(vecs, n, dim, AKIDB__SPACE_L2, 0, del, q, k, truth), k);
            for (uint32_t i = 0; i < k; i++) {
                if (exact) {
                    ASSERT_NEAR(hits[i].distance, truth[i].distance, 1e-4);
                } else {
                    total++;
                    for (uint32_t j = 0; j < k; j++)
                        if (hits[i].node == truth[j].node) {
                            found++;
                            break;
                        }
                }
            }
        }
    }
    fprintf(stderr, "  recall@10 with 90%% deleted = %.4f\n", (double)found / total);
    ASSERT_GE((double)found / total, 0.9);

    /* Delete every live node: searches return nothing. */
    for (uint32_t i = 0; i < n; i++)
        if (!del[i])
            akidb__hnsw_mark_deleted(h, i);
    ASSERT_EQ(akidb__hnsw_live(h), 0);
    for (int exact = 0; exact <= 1; exact++) {
        akidb__hnsw_hit hits[10];
        uint32_t n_hits = 99;
        ASSERT_OK(akidb__hnsw_search(h, vecs, k, 64, exact, hits, &n_hits));
        ASSERT_EQ(n_hits, 0);
    }
    /* and new nodes added after the mass delete are found */
    float extra[16];
    for (uint32_t d = 0; d < dim; d++)
        extra[d] = 100.0f + (float)d;
    ASSERT_OK(akidb__hnsw_reserve(h, 1));
    ASSERT_EQ(akidb__hnsw_add(h, extra), n);
    for (int exact = 0; exact <= 1; exact++) {
        akidb__hnsw_hit hits[10];
        uint32_t n_hits = 0;
        ASSERT_OK(akidb__hnsw_search(h, vecs, k, 64, exact, hits, &n_hits));
        ASSERT_EQ(n_hits, 1);
        ASSERT_EQ(hits[0].node, n);
    }
    akidb__hnsw_free(h);
    free(del);
    free(vecs);
}

TEST(hnsw_empty_index)
{
    akidb__hnsw *h = make_index(8, AKIDB__SPACE_L2, 0, 16, 200, 1);
    ASSERT_EQ(akidb__hnsw_size(h), 0);
    ASSERT_EQ(akidb__hnsw_live(h), 0);
    float q[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    for (int exact = 0; exact <= 1; exact++) {
        akidb__hnsw_hit hits[5];
        uint32_t n_hits = 77;
        ASSERT_OK(akidb__hnsw_search(h, q, 5, 64, exact, hits, &n_hits));
        ASSERT_EQ(n_hits, 0);
    }
    /* A reserve with nothing added leaves it empty and searchable. */
    ASSERT_OK(akidb__hnsw_reserve(h, 100));
    ASSERT_EQ(akidb__hnsw_size(h), 0);
    akidb__hnsw_hit hits[5];
    uint32_t n_hits = 77;
    ASSERT_OK(akidb__hnsw_search(h, q, 5, 64, 0, hits, &n_hits));
    ASSERT_EQ(n_hits, 0);
    akidb__hnsw_free(h);
    akidb__hnsw_free(NULL);
}

/* k above the live count returns every live node, once each. */
TEST(hnsw_k_larger_than_live)
{
    const uint32_t n = 50, dim = 8;
    float *vecs = clustered(21, n, dim, 5, 0.5, 0);
    akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, 4, 16, 2);
    add_all(h, vecs, n, dim, 7);
    akidb__hnsw_hit hits[200];
    for (int exact = 0; exact <= 1; exact++) {
        uint32_t n_hits = 0;
        ASSERT_OK(akidb__hnsw_search(h, vecs, 200, 10, exact, hits, &n_hits));
        ASSERT_EQ(n_hits, n);
        check_hits(h, vecs, dim, AKIDB__SPACE_L2, 0, vecs, hits, n_hits);
    }
    for (uint32_t i = 0; i < n; i += 3)
        akidb__hnsw_mark_deleted(h, i);
    uint32_t live = akidb__hnsw_live(h);
    ASSERT_EQ(live, n - (n + 2) / 3);
    for (int exact = 0; exact <= 1; exact++) {
        uint32_t n_hits = 0;
        ASSERT_OK(akidb__hnsw_search(h, vecs, 200, 10, exact, hits, &n_hits));
        ASSERT_EQ(n_hits, live);
        check_hits(h, vecs, dim, AKIDB__SPACE_L2, 0, vecs, hits, n_hits);
    }
    /* a single node */
    akidb__hnsw *one = make_index(dim, AKIDB__SPACE_L2, 0, 4, 16, 2);
    add_all(one, vecs, 1, dim, 1);
    uint32_t n_hits = 0;
    ASSERT_OK(akidb__hnsw_search(one, vecs + dim, 10, 10, 0, hits, &n_hits));
    ASSERT_EQ(n_hits, 1);
    ASSERT_EQ(hits[0].node, 0);
    akidb__hnsw_free(one);
    akidb__hnsw_free(h);
    free(vecs);
}

/* Reserve/add in uneven steps; vectors read back exactly; sizes count. */
TEST(hnsw_reserve_add_sequence)
{
    const uint32_t dim = 13;   /* not a multiple of the padding */
    akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, 6, 30, 77);
    size_t mem0 = akidb__hnsw_memory(h);
    ASSERT(mem0 > 0);
    static const uint32_t steps[] = { 1, 1, 2, 5, 17, 64, 3, 200, 1, 500 };
    uint64_t seed = 8;
    uint32_t total = 0;
    float *all = malloc(1000 * dim * sizeof(float));
    ASSERT(all != NULL);
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        ASSERT_OK(akidb__hnsw_reserve(h, steps[s]));
        /* reserving more than is used, or twice, is harmless */
        if (s % 2)
            ASSERT_OK(akidb__hnsw_reserve(h, steps[s] + 10));
        for (uint32_t j = 0; j < steps[s]; j++) {
            float *v = all + (size_t)total * dim;
            for (uint32_t d = 0; d < dim; d++)
                v[d] = (float)(rand_u01(&seed) * 4.0 - 2.0);
            ASSERT_EQ(akidb__hnsw_add(h, v), total);
            total++;
            ASSERT_EQ(akidb__hnsw_size(h), total);
            ASSERT_EQ(akidb__hnsw_live(h), total);
        }
    }
    ASSERT(akidb__hnsw_memory(h) > mem0);
    for (uint32_t i = 0; i < total; i++) {
        const float *got = akidb__hnsw_vector(h, i);
        ASSERT(got != NULL);
        ASSERT_EQ(memcmp(got, all + (size_t)i * dim, dim * sizeof(float)), 0);
    }
    /* exact search on each point finds it at distance 0 */
    for (uint32_t i = 0; i < total; i += 37) {
        akidb__hnsw_hit hits[3];
        uint32_t n_hits = 0;
        ASSERT_OK(akidb__hnsw_search(h, all + (size_t)i * dim, 3, 0, 1, hits, &n_hits));
        ASSERT_EQ(n_hits, 3);
        ASSERT_EQ(hits[0].node, i);
        ASSERT_EQ(hits[0].distance == 0.0f, 1);
    }
    akidb__hnsw_free(h);
    free(all);
}

TEST(hnsw_bad_config)
{
    akidb__hnsw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dim = 8;
    cfg.space = AKIDB__SPACE_L2;
    cfg.m = 16;
    cfg.ef_construction = 100;
    akidb__hnsw *h = NULL;
    akidb__hnsw_config bad;

    bad = cfg; bad.dim = 0;
    ASSERT_RC(akidb__hnsw_new(&bad, &akidb__default_allocator, NULL, &h), AKIDB_INVALID);
    ASSERT(h == NULL);
    bad = cfg; bad.m = 1;
    ASSERT_RC(akidb__hnsw_new(&bad, &akidb__default_allocator, NULL, &h), AKIDB_INVALID);
    bad = cfg; bad.m = 129;
    ASSERT_RC(akidb__hnsw_new(&bad, &akidb__default_allocator, NULL, &h), AKIDB_INVALID);
    bad = cfg; bad.ef_construction = 0;
    ASSERT_RC(akidb__hnsw_new(&bad, &akidb__default_allocator, NULL, &h), AKIDB_INVALID);
    bad = cfg; bad.space = (akidb__hnsw_space)7;
    ASSERT_RC(akidb__hnsw_new(&bad, &akidb__default_allocator, NULL, &h), AKIDB_INVALID);
    ASSERT(h == NULL);

    /* the boundaries are accepted */
    bad = cfg; bad.m = 2;
    ASSERT_OK(akidb__hnsw_new(&bad, &akidb__default_allocator, NULL, &h));
    akidb__hnsw_free(h);
    bad = cfg; bad.m = 128; bad.ef_construction = 1;
    ASSERT_OK(akidb__hnsw_new(&bad, &akidb__default_allocator, NULL, &h));
    akidb__hnsw_free(h);
}

/* 1000 identical vectors plus a few distinct ones. */
TEST(hnsw_duplicate_vectors)
{
    const uint32_t dim = 8, n_dup = 1000;
    akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, 16, 100, 4);
    float same[8] = { 0.5f, -1, 2, 0, 0, 1, 1, 1 };
    ASSERT_OK(akidb__hnsw_reserve(h, n_dup));
    for (uint32_t i = 0; i < n_dup; i++)
        ASSERT_EQ(akidb__hnsw_add(h, same), i);
    float other[5][8];
    ASSERT_OK(akidb__hnsw_reserve(h, 5));
    for (uint32_t j = 0; j < 5; j++) {
        for (uint32_t d = 0; d < dim; d++)
            other[j][d] = (float)(10 * (j + 1)) + (float)d;
        ASSERT_EQ(akidb__hnsw_add(h, other[j]), n_dup + j);
    }
    akidb__hnsw_hit hits[20];
    uint32_t n_hits = 0;
    for (int exact = 0; exact <= 1; exact++) {
        ASSERT_OK(akidb__hnsw_search(h, same, 20, 64, exact, hits, &n_hits));
        ASSERT_EQ(n_hits, 20);
        for (uint32_t i = 0; i < n_hits; i++) {
            ASSERT(hits[i].node < n_dup);
            ASSERT_EQ(hits[i].distance == 0.0f, 1);
            for (uint32_t j = 0; j < i; j++)
                ASSERT_NE(hits[i].node, hits[j].node);
        }
    }
    /* the distinct points are still reachable through the graph */
    for (uint32_t j = 0; j < 5; j++) {
        ASSERT_OK(akidb__hnsw_search(h, other[j], 1, 64, 0, hits, &n_hits));
        ASSERT_EQ(n_hits, 1);
        ASSERT_EQ(hits[0].node, n_dup + j);
        ASSERT_EQ(hits[0].distance == 0.0f, 1);
    }
    /* delete most duplicates: the survivors still come back */
    for (uint32_t i = 0; i < n_dup - 3; i++)
        akidb__hnsw_mark_deleted(h, i);
    ASSERT_OK(akidb__hnsw_search(h, same, 5, 64, 0, hits, &n_hits));
    ASSERT_EQ(n_hits, 5);
    for (uint32_t i = 0; i < 3; i++) {
        ASSERT(hits[i].node >= n_dup - 3 && hits[i].node < n_dup);
        ASSERT_EQ(hits[i].distance == 0.0f, 1);
    }
    ASSERT_EQ(hits[3].node, n_dup);   /* nearest distinct: other[0] */
    akidb__hnsw_free(h);
}

TEST(hnsw_dim_1)
{
    const uint32_t n = 500;
    akidb__hnsw *h = make_index(1, AKIDB__SPACE_L2, 0, 8, 50, 6);
    ASSERT_OK(akidb__hnsw_reserve(h, n));
    /* points 0, 2, 4, ... in a shuffled order */
    uint32_t *perm = malloc(n * sizeof *perm);
    ASSERT(perm != NULL);
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    uint64_t seed = 17;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(splitmix64(&seed) % (i + 1));
        uint32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    for (uint32_t i = 0; i < n; i++) {
        float v = 2.0f * (float)perm[i];
        ASSERT_EQ(akidb__hnsw_add(h, &v), i);
    }
    uint32_t good = 0;
    for (uint32_t t = 0; t < n; t += 7) {
        float q = 2.0f * (float)t + 0.5f;   /* nearest is 2t, then 2t+2 */
        akidb__hnsw_hit hits[2];
        uint32_t n_hits = 0;
        ASSERT_OK(akidb__hnsw_search(h, &q, 2, 32, 1, hits, &n_hits));
        ASSERT_EQ(n_hits, 2);
        ASSERT_EQ(perm[hits[0].node], t);
        ASSERT_NEAR(hits[0].distance, 0.25, 1e-6);
        ASSERT_OK(akidb__hnsw_search(h, &q, 2, 32, 0, hits, &n_hits));
        ASSERT_EQ(n_hits, 2);
        if (perm[hits[0].node] == t)
            good++;
    }
    ASSERT_GE((double)good / ((n + 6) / 7), 0.95);
    akidb__hnsw_free(h);
    free(perm);
}

TEST_TIMEOUT(hnsw_dim_4096, 60)
{
    const uint32_t n = 200, dim = 4096;
    float *vecs = clustered(31, n, dim, 10, 0.3, 0);
    akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, 16, 64, 8);
    add_all(h, vecs, n, dim, 64);
    for (uint32_t i = 0; i < n; i += 11) {
        const float *q = vecs + (size_t)i * dim;
        akidb__hnsw_hit hits[5];
        uint32_t n_hits = 0;
        ASSERT_OK(akidb__hnsw_search(h, q, 5, 32, 0, hits, &n_hits));
        ASSERT_EQ(n_hits, 5);
        ASSERT_EQ(hits[0].node, i);
        ASSERT_EQ(hits[0].distance == 0.0f, 1);
        check_hits(h, vecs, dim, AKIDB__SPACE_L2, 0, q, hits, n_hits);
        ASSERT_EQ(memcmp(akidb__hnsw_vector(h, i), q, dim * sizeof(float)), 0);
    }
    akidb__hnsw_free(h);
    free(vecs);
}

/* The kernels argument is honoured: an index on the scalar kernels gives
 * the same exact results as one on the best kernels. */
TEST(hnsw_explicit_kernels)
{
    const uint32_t n = 300, dim = 37;
    float *vecs = clustered(41, n, dim, 6, 0.5, 0);
    akidb__hnsw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dim = dim;
    cfg.space = AKIDB__SPACE_L2;
    cfg.m = 8;
    cfg.ef_construction = 50;
    cfg.seed = 1;
    akidb__hnsw *hs = NULL, *hb = NULL;
    ASSERT_OK(akidb__hnsw_new(&cfg, &akidb__default_allocator, akidb__kernels_scalar(), &hs));
    ASSERT_OK(akidb__hnsw_new(&cfg, &akidb__default_allocator, akidb__kernels_best(), &hb));
    add_all(hs, vecs, n, dim, 100);
    add_all(hb, vecs, n, dim, 100);
    for (uint32_t qi = 0; qi < 20; qi++) {
        const float *q = vecs + (size_t)(qi * 13) * dim;
        akidb__hnsw_hit a[10], b[10];
        uint32_t na = 0, nb = 0;
        ASSERT_OK(akidb__hnsw_search(hs, q, 10, 0, 1, a, &na));
        ASSERT_OK(akidb__hnsw_search(hb, q, 10, 0, 1, b, &nb));
        ASSERT_EQ(na, 10);
        ASSERT_EQ(nb, 10);
        for (uint32_t i = 0; i < 10; i++)
            ASSERT_NEAR(a[i].distance, b[i].distance, 1e-4);
        ASSERT_EQ(a[0].node, qi * 13);
        ASSERT_EQ(b[0].node, qi * 13);
    }
    akidb__hnsw_free(hs);
    akidb__hnsw_free(hb);
    free(vecs);
}

typedef struct search_job {
    akidb__hnsw *h;
    const float *qs;
    uint32_t n_q, dim;
    const akidb__hnsw_hit *expect;   /* n_q * 10 hits from one thread */
    int failures;
} search_job;

static void *search_thread(void *arg)
{
    search_job *j = arg;
    for (int round = 0; round < 3; round++)
        for (uint32_t qi = 0; qi < j->n_q; qi++) {
            akidb__hnsw_hit hits[10];
            uint32_t n_hits = 0;
            if (akidb__hnsw_search(j->h, j->qs + (size_t)qi * j->dim, 10, 48, 0,
                                   hits, &n_hits) != AKIDB_OK || n_hits != 10) {
                j->failures++;
                continue;
            }
            for (uint32_t i = 0; i < 10; i++)
                if (hits[i].node != j->expect[qi * 10 + i].node)
                    j->failures++;
        }
    return NULL;
}

/* Concurrent searches on a fixed index agree with a lone search: a
 * search's scratch state is not shared between threads. */
TEST(hnsw_concurrent_searches)
{
    const uint32_t n = 2000, dim = 16, n_q = 100;
    float *vecs = clustered(51, n, dim, 20, 0.4, 0);
    float *qs = clustered2(51, 52, n_q, dim, 20, 0.4, 0);
    akidb__hnsw *h = make_index(dim, AKIDB__SPACE_L2, 0, 12, 80, 10);
    add_all(h, vecs, n, dim, 1000);
    akidb__hnsw_hit *expect = malloc((size_t)n_q * 10 * sizeof *expect);
    ASSERT(expect != NULL);
    for (uint32_t qi = 0; qi < n_q; qi++) {
        uint32_t n_hits = 0;
        ASSERT_OK(akidb__hnsw_search(h, qs + (size_t)qi * dim, 10, 48, 0,
                                     expect + qi * 10, &n_hits));
        ASSERT_EQ(n_hits, 10);
    }
    search_job jobs[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (search_job){ h, qs, n_q, dim, expect, 0 };
        ASSERT_EQ(pthread_create(&th[t], NULL, search_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        ASSERT_EQ(pthread_join(th[t], NULL), 0);
        ASSERT_EQ(jobs[t].failures, 0);
    }
    akidb__hnsw_free(h);
    free(expect);
    free(vecs);
    free(qs);
}

/* ---- build from saved parts (snapshots and checkpoints) --------------- */

/* An index taken apart through the accessors, as snapshot.c saves it. */
typedef struct parts {
    uint32_t n, dim;
    float *vecs;
    int32_t *levels, *deleted, *links;
    uint64_t *off;             /* n + 1 */
    uint32_t entry;
    akidb__hnsw_rng rng;
} parts;

static void take_apart(const akidb__hnsw *h, uint32_t dim, parts *p)
{
    memset(p, 0, sizeof *p);
    p->n = akidb__hnsw_size(h);
    p->dim = dim;
    size_t cap = 16;
    p->vecs = malloc(((size_t)p->n + 1) * dim * sizeof(float));
    p->levels = malloc(((size_t)p->n + 1) * sizeof(int32_t));
    p->deleted = malloc(((size_t)p->n + 1) * sizeof(int32_t));
    p->off = malloc(((size_t)p->n + 1) * sizeof(uint64_t));
    p->links = malloc(cap * sizeof(int32_t));
    ASSERT(p->vecs && p->levels && p->deleted && p->off && p->links);
    size_t len = 0;
    p->off[0] = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        memcpy(p->vecs + (size_t)i * dim, akidb__hnsw_vector(h, i), dim * sizeof(float));
        p->levels[i] = akidb__hnsw_level(h, i);
        p->deleted[i] = akidb__hnsw_is_deleted(h, i);
        for (int l = 0; l <= p->levels[i]; l++) {
            uint32_t cnt;
            const uint32_t *ll = akidb__hnsw_links(h, i, l, &cnt);
            while (len + 1 + cnt > cap) {
                cap *= 2;
                p->links = realloc(p->links, cap * sizeof(int32_t));
                ASSERT(p->links != NULL);
            }
            p->links[len++] = (int32_t)cnt;
            for (uint32_t k = 0; k < cnt; k++)
                p->links[len++] = (int32_t)ll[k];
        }
        p->off[i + 1] = len;
    }
    p->entry = p->n ? akidb__hnsw_entry(h) : 0;
    akidb__hnsw_get_rng(h, &p->rng);
}

static void parts_free(parts *p)
{
    free(p->vecs);
    free(p->levels);
    free(p->deleted);
    free(p->links);
    free(p->off);
}

static int parts_equal(const parts *a, const parts *b)
{
    return a->n == b->n && a->entry == b->entry && a->rng.rng == b->rng.rng &&
           a->rng.dup_rng == b->rng.dup_rng && a->off[a->n] == b->off[b->n] &&
           !memcmp(a->vecs, b->vecs, (size_t)a->n * a->dim * sizeof(float)) &&
           !memcmp(a->levels, b->levels, (size_t)a->n * sizeof(int32_t)) &&
           !memcmp(a->deleted, b->deleted, (size_t)a->n * sizeof(int32_t)) &&
           !memcmp(a->off, b->off, ((size_t)a->n + 1) * sizeof(uint64_t)) &&
           !memcmp(a->links, b->links, a->off[a->n] * sizeof(int32_t));
}

/* Build from p in batches of `batch` nodes (link offsets rebased per
 * batch, as a Parquet row group gives them).  On error *out is NULL. */
static int build_from(const akidb__hnsw_config *cfg, const akidb_allocator *al, const parts *p,
                      uint32_t batch, int with_rng, akidb__hnsw **out, const char **why)
{
    *why = "";
    int rc = akidb__hnsw_build_begin(cfg, al, out);
    if (rc)
        return rc;
    uint64_t *off = malloc(((size_t)batch + 1) * sizeof *off);
    ASSERT(off != NULL);
    for (uint32_t first = 0; rc == AKIDB_OK && first < p->n; first += batch) {
        uint32_t cnt = p->n - first < batch ? p->n - first : batch;
        for (uint32_t i = 0; i <= cnt; i++)
            off[i] = p->off[first + i] - p->off[first];
        rc = akidb__hnsw_build_nodes(*out, cnt, p->vecs + (size_t)first * p->dim,
                                     p->levels + first, p->deleted + first,
                                     p->links + p->off[first], off, why);
    }
    free(off);
    if (rc == AKIDB_OK)
        rc = akidb__hnsw_build_end(*out, p->entry, with_rng ? &p->rng : NULL, why);
    if (rc) {
        akidb__hnsw_free(*out);
        *out = NULL;
    }
    return rc;
}

static akidb__hnsw_config cfg_of(uint32_t dim, akidb__hnsw_space space, int neg, uint32_t m,
                                 uint32_t ef_c, uint64_t seed)
{
    akidb__hnsw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dim = dim;
    cfg.space = space;
    cfg.negate_dot = neg;
    cfg.m = m;
    cfg.ef_construction = ef_c;
    cfg.seed = seed;
    return cfg;
}

/* Same nodes, tombstones, vectors and answers. */
static void assert_same_index(akidb__hnsw *a, akidb__hnsw *b, const float *qs, uint32_t n_q,
                              uint32_t dim)
{
    ASSERT_EQ(akidb__hnsw_size(a), akidb__hnsw_size(b));
    ASSERT_EQ(akidb__hnsw_live(a), akidb__hnsw_live(b));
    for (uint32_t i = 0; i < akidb__hnsw_size(a); i++) {
        ASSERT_EQ(akidb__hnsw_is_deleted(a, i), akidb__hnsw_is_deleted(b, i));
        ASSERT_EQ(memcmp(akidb__hnsw_vector(a, i), akidb__hnsw_vector(b, i),
                         dim * sizeof(float)), 0);
    }
    for (uint32_t qi = 0; qi < n_q; qi++)
        for (int exact = 0; exact <= 1; exact++) {
            akidb__hnsw_hit ha[10], hb[10];
            uint32_t na = 0, nb = 0;
            ASSERT_OK(akidb__hnsw_search(a, qs + (size_t)qi * dim, 10, 20, exact, ha, &na));
            ASSERT_OK(akidb__hnsw_search(b, qs + (size_t)qi * dim, 10, 20, exact, hb, &nb));
            ASSERT_EQ(na, nb);
            for (uint32_t i = 0; i < na; i++) {
                ASSERT_EQ(ha[i].node, hb[i].node);
                ASSERT_EQ(ha[i].distance == hb[i].distance, 1);
            }
        }
}

/* An index rebuilt from its parts, in any batch size, answers exactly as
 * the original, takes apart into the same parts, and -- given the saved
 * generator state -- grows exactly as the original would. */
TEST(hnsw_build_roundtrip)
{
    static const struct { akidb__hnsw_space space; int neg; int unit; uint32_t dim; } cases[] = {
        { AKIDB__SPACE_L2, 0, 0, 24 }, { AKIDB__SPACE_IP, 0, 1, 7 }, { AKIDB__SPACE_IP, 1, 0, 33 },
    };
    static const uint32_t batches[] = { 1, 97, 100000 };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const uint32_t n = 1500, extra = 300, dim = cases[c].dim;
        float *vecs = clustered(300 + c, n + extra, dim, 12, 0.6, cases[c].unit);
        float *qs = clustered2(300 + c, 400 + c, 30, dim, 12, 0.6, cases[c].unit);
        akidb__hnsw_config cfg = cfg_of(dim, cases[c].space, cases[c].neg, 6, 40, 99 + c);
        akidb__hnsw *h = NULL;
        ASSERT_OK(akidb__hnsw_new(&cfg, &akidb__default_allocator, NULL, &h));
        add_all(h, vecs, n, dim, 250);   /* exact reserves: nothing prepared ahead */
        for (uint32_t i = 0; i < n; i += 9)
            akidb__hnsw_mark_deleted(h, i);
        parts p;
        take_apart(h, dim, &p);

        akidb__hnsw *g = NULL;
        const char *why = NULL;
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            ASSERT_OK(build_from(&cfg, &akidb__default_allocator, &p, batches[b], 1, &g, &why));
            assert_same_index(h, g, qs, 30, dim);
            parts q;
            take_apart(g, dim, &q);
            ASSERT(parts_equal(&p, &q));
            parts_free(&q);
            if (b + 1 < sizeof batches / sizeof batches[0])
                akidb__hnsw_free(g);
        }

        /* both grow the same way */
        add_all(h, vecs + (size_t)n * dim, extra, dim, extra);
        add_all(g, vecs + (size_t)n * dim, extra, dim, extra);
        assert_same_index(h, g, qs, 30, dim);
        parts ph, pg;
        take_apart(h, dim, &ph);
        take_apart(g, dim, &pg);
        ASSERT(parts_equal(&ph, &pg));

        akidb__hnsw_free(h);
        akidb__hnsw_free(g);
        parts_free(&p);
        parts_free(&ph);
        parts_free(&pg);
        free(vecs);
        free(qs);
    }
}

TEST(hnsw_build_empty)
{
    akidb__hnsw_config cfg = cfg_of(5, AKIDB__SPACE_L2, 0, 4, 10, 1);
    akidb__hnsw *g = NULL;
    const char *why = NULL;
    ASSERT_OK(akidb__hnsw_build_begin(&cfg, &akidb__default_allocator, &g));
    ASSERT_OK(akidb__hnsw_build_end(g, 0, NULL, &why));
    ASSERT_EQ(akidb__hnsw_size(g), 0);
    float q[5] = { 1, 2, 3, 4, 5 };
    akidb__hnsw_hit hits[3];
    uint32_t n_hits = 9;
    ASSERT_OK(akidb__hnsw_search(g, q, 3, 10, 0, hits, &n_hits));
    ASSERT_EQ(n_hits, 0);
    /* and it grows from empty */
    ASSERT_OK(akidb__hnsw_reserve(g, 1));
    ASSERT_EQ(akidb__hnsw_add(g, q), 0);
    ASSERT_OK(akidb__hnsw_search(g, q, 3, 10, 0, hits, &n_hits));
    ASSERT_EQ(n_hits, 1);
    akidb__hnsw_free(g);
}

/* A counting allocator that can fail the Nth allocation. */
typedef struct count_alloc {
    long n_calls, fail_at, live;
} count_alloc;

static void *ca_malloc(void *ctx, size_t size)
{
    count_alloc *c = ctx;
    if (++c->n_calls == c->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        c->live++;
    return p;
}

static void *ca_realloc(void *ctx, void *ptr, size_t size)
{
    count_alloc *c = ctx;
    if (!ptr)
        return ca_malloc(ctx, size);
    if (++c->n_calls == c->fail_at)
        return NULL;
    return realloc(ptr, size);
}

static void ca_free(void *ctx, void *ptr)
{
    count_alloc *c = ctx;
    if (ptr)
        c->live--;
    free(ptr);
}

/* A small index with upper levels and tombstones, taken apart. */
static akidb__hnsw *small_index(akidb__hnsw_config *cfg, parts *p, float **vecs_out)
{
    *cfg = cfg_of(4, AKIDB__SPACE_L2, 0, 3, 12, 5);
    float *vecs = clustered(500, 80, 4, 4, 0.5, 0);
    akidb__hnsw *h = NULL;
    ASSERT_OK(akidb__hnsw_new(cfg, &akidb__default_allocator, NULL, &h));
    add_all(h, vecs, 80, 4, 80);
    for (uint32_t i = 0; i < 80; i += 7)
        akidb__hnsw_mark_deleted(h, i);
    take_apart(h, 4, p);
    *vecs_out = vecs;
    return h;
}

/* Each kind of inconsistency is refused by name, leaking nothing. */
TEST(hnsw_build_checks)
{
    akidb__hnsw_config cfg;
    parts p;
    float *vecs;
    akidb__hnsw *h = small_index(&cfg, &p, &vecs);
    count_alloc ca = { 0, 0, 0 };
    akidb_allocator al = { ca_malloc, ca_realloc, ca_free, &ca };
    akidb__hnsw *g = NULL;
    const char *why = NULL;
    /* a node with an upper level, and the top-level entry point */
    uint32_t up = 0;
    while (up < p.n && (p.levels[up] == 0 || up == p.entry))
        up++;
    ASSERT(up < p.n);
    ASSERT(p.levels[p.entry] > 0);
    /* a node with level-1 links, and one with level 0 only */
    uint32_t up1 = 0, flat = 0;
    while (up1 < p.n && (p.levels[up1] == 0 || p.links[p.off[up1] + 1 + p.links[p.off[up1]]] == 0))
        up1++;
    while (flat < p.n && p.levels[flat] != 0)
        flat++;
    ASSERT(up1 < p.n && flat < p.n);
    ASSERT(p.links[p.off[5]] > 0);

    /* a build stopped after 10 nodes holds 10, and its links to nodes
     * 10.. are out of range at the end */
    ASSERT_OK(akidb__hnsw_build_begin(&cfg, &al, &g));
    ASSERT_OK(akidb__hnsw_build_nodes(g, 10, p.vecs, p.levels, p.deleted, p.links, p.off,
                                      &why));
    ASSERT_EQ(akidb__hnsw_size(g), 10);
    ASSERT_RC(akidb__hnsw_build_end(g, p.entry < 10 ? p.entry : 0, &p.rng, &why),
              AKIDB_CORRUPT);
    ASSERT(strstr(why, "out of range") || strstr(why, "top level") || strstr(why, "lacks"));
    akidb__hnsw_free(g);
    ASSERT_EQ(ca.live, 0);

    static const struct { const char *expect; int what; } cases[] = {
        { "level out of range", 0 }, { "tombstone flag", 1 }, { "not finite", 2 },
        { "link list length", 3 }, { "link out of range", 4 }, { "lacks the level", 5 },
        { "entry point out of range", 6 }, { "not on the top level", 7 },
        { "trailing links", 8 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        parts q = p;
        int32_t levels[80], deleted[80], links[4096];
        float v[80 * 4];
        uint64_t off[81];
        ASSERT(p.off[p.n] + 1 <= 4096);
        memcpy(levels, p.levels, sizeof levels);
        memcpy(deleted, p.deleted, sizeof deleted);
        memcpy(links, p.links, p.off[p.n] * sizeof(int32_t));
        memcpy(v, p.vecs, sizeof v);
        memcpy(off, p.off, sizeof off);
        q.levels = levels;
        q.deleted = deleted;
        q.links = links;
        q.vecs = v;
        q.off = off;
        uint32_t last = p.n - 1;
        switch (cases[k].what) {
        case 0: levels[up] = 16; break;
        case 1: deleted[3] = 2; break;
        case 2: v[5] = NAN; break;
        case 3: links[off[5]] = 2 * 3 + 1; break;                /* more than 2M links */
        case 4: links[off[5] + 1] = (int32_t)p.n; break;
        case 5:     /* a level-1 link to a node that has only level 0 */
            links[off[up1] + 1 + (uint64_t)links[off[up1]] + 1] = (int32_t)flat;
            break;
        case 6: q.entry = p.n; break;
        case 7: q.entry = flat; break;
        case 8: off[last + 1] = off[last + 1] + 1; links[off[last + 1] - 1] = 0; break;
        }
        int rc = build_from(&cfg, &al, &q, 13, 1, &g, &why);
        if (rc != AKIDB_CORRUPT || !strstr(why, cases[k].expect))
            akt_fail(__FILE__, __LINE__, "case %zu: rc %d, why \"%s\", expected \"%s\"", k, rc,
                     why, cases[k].expect);
        ASSERT(g == NULL);
        ASSERT_EQ(ca.live, 0);
    }
    /* the parts themselves build through the counting allocator */
    ASSERT_OK(build_from(&cfg, &al, &p, 13, 1, &g, &why));
    ASSERT_EQ(akidb__hnsw_size(g), 80);
    akidb__hnsw_free(g);
    ASSERT_EQ(ca.live, 0);
    akidb__hnsw_free(h);
    parts_free(&p);
    free(vecs);
}

/* Random damage: the build either refuses (CORRUPT) or yields an index
 * that is safe to search, grow and free.  ASan checks the "safe". */
TEST(hnsw_build_corrupted)
{
    akidb__hnsw_config cfg;
    parts p;
    float *vecs;
    akidb__hnsw *h = small_index(&cfg, &p, &vecs);
    size_t n_links = p.off[p.n];
    int32_t *levels = malloc(p.n * sizeof *levels), *deleted = malloc(p.n * sizeof *deleted);
    int32_t *links = malloc(n_links * sizeof *links);
    ASSERT(levels && deleted && links);
    uint64_t seed = 2024;
    unsigned n_ok = 0, n_corrupt = 0;
    for (int trial = 0; trial < 3000; trial++) {
        memcpy(levels, p.levels, p.n * sizeof *levels);
        memcpy(deleted, p.deleted, p.n * sizeof *deleted);
        memcpy(links, p.links, n_links * sizeof *links);
        parts q = p;
        q.levels = levels;
        q.deleted = deleted;
        q.links = links;
        int n_hits_damage = 1 + (int)(splitmix64(&seed) % 3);
        for (int f = 0; f < n_hits_damage; f++) {
            uint64_t r = splitmix64(&seed);
            int32_t val = (int32_t)(splitmix64(&seed) % 100) - 5;
            switch (r % 4) {
            case 0: levels[(r >> 8) % p.n] = val % 4; break;
            case 1: deleted[(r >> 8) % p.n] = val % 3; break;
            case 2: links[(r >> 8) % n_links] = val; break;
            default: q.entry = (uint32_t)((r >> 8) % (p.n + 2)); break;
            }
        }
        akidb__hnsw *g = NULL;
        const char *why = NULL;
        int rc = build_from(&cfg, &akidb__default_allocator, &q, 1 + trial % 40, trial & 1,
                            &g, &why);
        if (rc == AKIDB_CORRUPT) {
            n_corrupt++;
            ASSERT(g == NULL);
            ASSERT(why != NULL && why[0] != '\0');
            continue;
        }
        if (rc != AKIDB_OK)
            akt_fail(__FILE__, __LINE__, "trial %d: rc %d", trial, rc);
        n_ok++;
        uint32_t size = akidb__hnsw_size(g);
        for (uint32_t qi = 0; qi < 5; qi++) {
            akidb__hnsw_hit hits[10];
            uint32_t n_hits = 0;
            for (int exact = 0; exact <= 1; exact++) {
                ASSERT_OK(akidb__hnsw_search(g, vecs + qi * 4, 10, 16, exact, hits, &n_hits));
                ASSERT(n_hits <= 10);
                ASSERT(n_hits <= akidb__hnsw_live(g));
                for (uint32_t i = 0; i < n_hits; i++) {
                    ASSERT(hits[i].node < size);
                    ASSERT(!akidb__hnsw_is_deleted(g, hits[i].node));
                }
            }
        }
        ASSERT_OK(akidb__hnsw_reserve(g, 3));
        for (uint32_t i = 0; i < 3; i++)
            ASSERT_EQ(akidb__hnsw_add(g, vecs + i * 4), size + i);
        akidb__hnsw_free(g);
    }
    fprintf(stderr, "  damaged parts: %u refused, %u built\n", n_corrupt, n_ok);
    ASSERT(n_corrupt > 100);
    ASSERT(n_ok > 0);
    akidb__hnsw_free(h);
    parts_free(&p);
    free(levels);
    free(deleted);
    free(links);
    free(vecs);
}

/* Out of memory at every allocation of a build: NOMEM, nothing leaked. */
TEST(hnsw_build_nomem)
{
    akidb__hnsw_config cfg;
    parts p;
    float *vecs;
    akidb__hnsw *h = small_index(&cfg, &p, &vecs);
    long n;
    for (n = 1; n < 10000; n++) {
        count_alloc ca = { 0, n, 0 };
        akidb_allocator al = { ca_malloc, ca_realloc, ca_free, &ca };
        akidb__hnsw *g = NULL;
        const char *why = NULL;
        int rc = build_from(&cfg, &al, &p, 7, 1, &g, &why);
        if (ca.n_calls < n) {          /* the failure was never reached */
            ASSERT_OK(rc);
            akidb__hnsw_free(g);
            ASSERT_EQ(ca.live, 0);
            break;
        }
        ASSERT_RC(rc, AKIDB_NOMEM);
        ASSERT(g == NULL);
        ASSERT_EQ(ca.live, 0);
    }
    ASSERT(n > 1 && n < 10000);
    akidb__hnsw_free(h);
    parts_free(&p);
    free(vecs);
}

/* ---- the tail: append now, link later (issue 11) ------------------------ */

/* Appending everything first and linking later, in uneven slices with
 * searches and tombstones in between, gives exactly the index that adding
 * (append + link at once) gives; every search in between finds tail nodes
 * exactly. */
TEST(hnsw_tail_append_then_link)
{
    const uint32_t n = 1200, dim = 12;
    float *vecs = clustered(900, n, dim, 10, 0.5, 0);
    float *qs = clustered2(900, 901, 40, dim, 10, 0.5, 0);
    akidb__hnsw_config cfg = cfg_of(dim, AKIDB__SPACE_L2, 0, 6, 40, 17);
    akidb__hnsw *a = NULL, *b = NULL;
    ASSERT_OK(akidb__hnsw_new(&cfg, &akidb__default_allocator, NULL, &a));
    ASSERT_OK(akidb__hnsw_new(&cfg, &akidb__default_allocator, NULL, &b));
    add_all(a, vecs, n, dim, 100);
    for (uint32_t i = 0; i < n; i += 100) {
        ASSERT_OK(akidb__hnsw_reserve(b, 100));
        for (uint32_t j = i; j < i + 100; j++)
            ASSERT_EQ(akidb__hnsw_append(b, vecs + (size_t)j * dim), j);
    }
    ASSERT_EQ(akidb__hnsw_size(b), n);
    ASSERT_EQ(akidb__hnsw_linked(b), 0);
    uint64_t rng = 5;
    uint32_t step = 0;
    while (akidb__hnsw_linked(b) < n) {
        /* tombstones before, during and after linking: linking ignores them */
        uint32_t victim = (uint32_t)(splitmix64(&rng) % n);
        akidb__hnsw_mark_deleted(b, victim);
        akidb__hnsw_mark_deleted(a, victim);
        /* graph search with a tail = exact search (the graph part may
         * miss, the tail part may not): every tail node that belongs in
         * the exact top 10 is in the graph search's top 10 */
        const float *q = qs + (size_t)(step % 40) * dim;
        akidb__hnsw_hit ex[10], gr[10];
        uint32_t n_ex = 0, n_gr = 0;
        ASSERT_OK(akidb__hnsw_search(b, q, 10, 20, 1, ex, &n_ex));
        ASSERT_OK(akidb__hnsw_search(b, q, 10, 20, 0, gr, &n_gr));
        ASSERT_EQ(n_ex, n_gr);
        for (uint32_t i = 0; i < n_ex; i++) {
            ASSERT(!akidb__hnsw_is_deleted(b, gr[i].node));
            if (ex[i].node < akidb__hnsw_linked(b))
                continue;
            int in = 0;
            for (uint32_t j = 0; j < n_gr; j++)
                in |= gr[j].node == ex[i].node;
            ASSERT(in);
        }
        uint32_t slice = 1 + (uint32_t)(splitmix64(&rng) % 97);
        for (uint32_t k = 0; k < slice; k++)
            akidb__hnsw_link_next(b);
        step++;
    }
    akidb__hnsw_link_next(b);   /* an empty tail: a no-op */
    ASSERT_EQ(akidb__hnsw_linked(b), n);
    parts pa, pb;
    take_apart(a, dim, &pa);
    take_apart(b, dim, &pb);
    ASSERT(parts_equal(&pa, &pb));
    parts_free(&pa);
    parts_free(&pb);
    akidb__hnsw_free(a);
    akidb__hnsw_free(b);
    free(vecs);
    free(qs);
}

/* An index saved with a tail (tail nodes: their levels, no links) builds
 * back with the same tail, and linking it then gives the index the
 * original gives by linking its own tail. */
TEST(hnsw_tail_build_roundtrip)
{
    const uint32_t n = 900, linked = 500, dim = 9;
    float *vecs = clustered(910, n, dim, 8, 0.5, 0);
    akidb__hnsw_config cfg = cfg_of(dim, AKIDB__SPACE_L2, 0, 5, 30, 23);
    akidb__hnsw *h = NULL;
    ASSERT_OK(akidb__hnsw_new(&cfg, &akidb__default_allocator, NULL, &h));
    ASSERT_OK(akidb__hnsw_reserve(h, n));
    for (uint32_t i = 0; i < n; i++)
        akidb__hnsw_append(h, vecs + (size_t)i * dim);
    for (uint32_t i = 0; i < linked; i++)
        akidb__hnsw_link_next(h);
    for (uint32_t i = 3; i < n; i += 11)
        akidb__hnsw_mark_deleted(h, i);
    parts p;
    take_apart(h, dim, &p);
    akidb__hnsw *g = NULL;
    const char *why = "";
    ASSERT_OK(akidb__hnsw_build_begin(&cfg, &akidb__default_allocator, &g));
    ASSERT_OK(akidb__hnsw_build_nodes(g, p.n, p.vecs, p.levels, p.deleted, p.links, p.off, &why));
    akidb__hnsw_build_set_linked(g, linked);
    ASSERT_OK(akidb__hnsw_build_end(g, p.entry, &p.rng, &why));
    ASSERT_EQ(akidb__hnsw_linked(g), linked);
    ASSERT_EQ(akidb__hnsw_size(g), n);
    for (uint32_t i = linked; i < n; i++) {
        akidb__hnsw_link_next(h);
        akidb__hnsw_link_next(g);
    }
    parts ph, pg;
    take_apart(h, dim, &ph);
    take_apart(g, dim, &pg);
    ASSERT(parts_equal(&ph, &pg));
    parts_free(&ph);
    parts_free(&pg);

    /* what build_end refuses: a tail node with links, a link into the
     * tail, an entry point in the tail, more linked nodes than nodes */
    struct { uint32_t linked; uint32_t entry; const char *why; } bad[] = {
        /* node linked-1 has links, and linked nodes link to it: the
         * first found is the link into the tail */
        { linked - 1, p.entry, "link out of range" },
        { n + 1, p.entry, "more nodes in the graph than nodes" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        akidb__hnsw_free(g);
        ASSERT_OK(akidb__hnsw_build_begin(&cfg, &akidb__default_allocator, &g));
        ASSERT_OK(akidb__hnsw_build_nodes(g, p.n, p.vecs, p.levels, p.deleted, p.links, p.off,
                                          &why));
        akidb__hnsw_build_set_linked(g, bad[k].linked);
        ASSERT_EQ(akidb__hnsw_build_end(g, bad[k].entry, &p.rng, &why), AKIDB_CORRUPT);
        ASSERT_STR_EQ(why, bad[k].why);
    }
    /* a link from the graph into the tail: point node 0's first level-0
     * link at the first tail node */
    ASSERT(p.links[p.off[0]] > 0);
    int32_t saved = p.links[p.off[0] + 1];
    p.links[p.off[0] + 1] = (int32_t)linked;
    akidb__hnsw_free(g);
    ASSERT_OK(akidb__hnsw_build_begin(&cfg, &akidb__default_allocator, &g));
    ASSERT_OK(akidb__hnsw_build_nodes(g, p.n, p.vecs, p.levels, p.deleted, p.links, p.off, &why));
    akidb__hnsw_build_set_linked(g, linked);
    ASSERT_EQ(akidb__hnsw_build_end(g, p.entry, &p.rng, &why), AKIDB_CORRUPT);
    ASSERT_STR_EQ(why, "link out of range");
    p.links[p.off[0] + 1] = saved;
    /* a tail node with links: give the first tail node the links of the
     * last linked node (same level 0 list shape) */
    {
        parts q;
        take_apart(h, dim, &q);   /* h is fully linked now: q has no tail */
        akidb__hnsw_free(g);
        /* nothing may link to node n-1: point those links at the entry
         * point (which has every level) instead */
        ASSERT(q.entry != n - 1);
        for (uint32_t i = 0; i < n - 1; i++) {
            uint64_t o = q.off[i];
            for (int l = 0; l <= q.levels[i]; l++) {
                int32_t cnt = q.links[o++];
                for (int32_t k = 0; k < cnt; k++, o++)
                    if (q.links[o] == (int32_t)(n - 1))
                        q.links[o] = (int32_t)q.entry;
            }
        }
        ASSERT_OK(akidb__hnsw_build_begin(&cfg, &akidb__default_allocator, &g));
        ASSERT_OK(akidb__hnsw_build_nodes(g, q.n, q.vecs, q.levels, q.deleted, q.links, q.off,
                                          &why));
        akidb__hnsw_build_set_linked(g, n - 1);
        ASSERT_EQ(akidb__hnsw_build_end(g, q.entry, &q.rng, &why), AKIDB_CORRUPT);
        ASSERT_STR_EQ(why, "a node waiting to be linked has links");
        parts_free(&q);
    }
    /* an entry point in the tail */
    uint32_t tail_top = linked;
    akidb__hnsw_free(g);
    ASSERT_OK(akidb__hnsw_build_begin(&cfg, &akidb__default_allocator, &g));
    ASSERT_OK(akidb__hnsw_build_nodes(g, p.n, p.vecs, p.levels, p.deleted, p.links, p.off, &why));
    akidb__hnsw_build_set_linked(g, linked);
    ASSERT_EQ(akidb__hnsw_build_end(g, tail_top, &p.rng, &why), AKIDB_CORRUPT);
    ASSERT_STR_EQ(why, "entry point out of range");
    /* all of it a tail: nothing linked, any entry */
    parts none;
    akidb__hnsw *t = NULL;
    ASSERT_OK(akidb__hnsw_new(&cfg, &akidb__default_allocator, NULL, &t));
    ASSERT_OK(akidb__hnsw_reserve(t, 50));
    for (uint32_t i = 0; i < 50; i++)
        akidb__hnsw_append(t, vecs + (size_t)i * dim);
    take_apart(t, dim, &none);
    akidb__hnsw_free(g);
    ASSERT_OK(akidb__hnsw_build_begin(&cfg, &akidb__default_allocator, &g));
    ASSERT_OK(akidb__hnsw_build_nodes(g, none.n, none.vecs, none.levels, none.deleted,
                                      none.links, none.off, &why));
    akidb__hnsw_build_set_linked(g, 0);
    ASSERT_OK(akidb__hnsw_build_end(g, 0, &none.rng, &why));
    akidb__hnsw_hit hits[5];
    uint32_t n_hits = 0;
    ASSERT_OK(akidb__hnsw_search(g, vecs + 7 * dim, 5, 10, 0, hits, &n_hits));
    ASSERT_EQ(n_hits, 5);
    ASSERT_EQ(hits[0].node, 7);
    ASSERT_EQ(hits[0].distance == 0.0f, 1);
    parts_free(&none);
    akidb__hnsw_free(t);
    akidb__hnsw_free(g);
    akidb__hnsw_free(h);
    parts_free(&p);
    free(vecs);
}
