/*
 * quant_prep.c - writes the data sets of the quantized-storage benchmark
 * (issue 16) into the build directory, once: base vectors, queries and the
 * exact top-10 of every query (quant_common.h has the file layouts).
 *
 *   quant_prep --out DIR --name STEM --set fmnist [--n N] [--nq N]
 *              [--fmnist-dir D] [--fmnist-gt FILE]
 *   quant_prep --out DIR --name STEM --set clustered [--n N] [--nq N]
 *              [--dim D] [--clusters C] [--seed S]
 *
 * fmnist: the Debian package dataset-fashion-mnist, loaded by bench_common
 * (the first N training images are the base, the first NQ test images the
 * queries).  Its ground truth is the one bench_hnsw caches (AkiDB exact
 * search cross-checked by brute force, --fmnist-gt) when that cache matches
 * the data; brute force here otherwise.  Pixels are integers, so the two
 * agree exactly.
 *
 * clustered: a seeded float set whose values are not small integers: C
 * Gaussian clusters (unequal sizes, per-cluster spread 0.4..0.9) around
 * centres drawn per dimension with a scale that differs by dimension
 * (e^U(-1,1), a 7x spread of ranges, so one int8 scale for all dimensions
 * is not trivially right) and a per-dimension mean (so the offset
 * matters).  Queries come from the same distribution (a separate random
 * stream, not rows of the base).
 *
 * Files that exist with a matching ground truth are kept, so runs after
 * the first only read.  The brute force is compiled -O3 -march=native and
 * computes distances in double, 16 queries per pass over the base.
 */
#define _GNU_SOURCE
#include "bench_common.h"
#include "quant_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QBLOCK 16

static void usage(void)
{
    fprintf(stderr,
            "usage: quant_prep --out DIR --name STEM --set fmnist|clustered [--n N] [--nq N]\n"
            "                  [--fmnist-dir D] [--fmnist-gt FILE]\n"
            "                  [--dim D] [--clusters C] [--seed S]\n");
    exit(2);
}

/* splitmix64: small, seedable, good enough for test data. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s)
{
    return ((double)(rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double rng_gauss(uint64_t *s)
{
    double u = rng_uniform(s), v = rng_uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

typedef struct gen_model {
    uint32_t dim, n_clusters;
    float *centre;   /* n_clusters x dim */
    float *spread;   /* n_clusters */
    double *cum;     /* n_clusters: cumulative weights */
    float *dscale;   /* dim */
} gen_model;

static int model_init(gen_model *m, uint32_t dim, uint32_t n_clusters, uint64_t seed)
{
    uint64_t s = seed;
    uint32_t c, d;
    double total = 0;
    float *mean;

    m->dim = dim;
    m->n_clusters = n_clusters;
    m->centre = malloc((size_t)n_clusters * dim * sizeof *m->centre);
    m->spread = malloc((size_t)n_clusters * sizeof *m->spread);
    m->cum = malloc((size_t)n_clusters * sizeof *m->cum);
    m->dscale = malloc((size_t)dim * sizeof *m->dscale);
    mean = malloc((size_t)dim * sizeof *mean);
    if (!m->centre || !m->spread || !m->cum || !m->dscale || !mean) {
        free(mean);
        return -1;
    }
    for (d = 0; d < dim; d++) {
        m->dscale[d] = (float)exp(2.0 * rng_uniform(&s) - 1.0);
        mean[d] = (float)((4.0 * rng_uniform(&s) - 2.0) * m->dscale[d]);
    }
    for (c = 0; c < n_clusters; c++) {
        for (d = 0; d < dim; d++)
            m->centre[(size_t)c * dim + d] = mean[d] + (float)(rng_gauss(&s) * m->dscale[d]);
        m->spread[c] = (float)(0.4 + 0.5 * rng_uniform(&s));
        total += exp(0.5 * rng_gauss(&s)); /* unequal cluster sizes */
        m->cum[c] = total;
    }
    for (c = 0; c < n_clusters; c++)
        m->cum[c] /= total;
    free(mean);
    return 0;
}

static void model_free(gen_model *m)
{
    free(m->centre);
    free(m->spread);
    free(m->cum);
    free(m->dscale);
}

static void model_draw(const gen_model *m, uint64_t *s, float *out)
{
    double u = rng_uniform(s);
    uint32_t lo = 0, hi = m->n_clusters - 1, d;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (m->cum[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (d = 0; d < m->dim; d++)
        out[d] = m->centre[(size_t)lo * m->dim + d] +
                 (float)(rng_gauss(s) * m->spread[lo] * m->dscale[d]);
}

static int generate(quant_vectors *vs, const gen_model *m, uint32_t n, uint64_t stream)
{
    uint32_t i;
    vs->n = n;
    vs->dim = m->dim;
    vs->v = malloc((size_t)n * m->dim * sizeof(float));
    if (!vs->v)
        return -1;
    for (i = 0; i < n; i++)
        model_draw(m, &stream, vs->v + (size_t)i * m->dim);
    return 0;
}

static void topk_insert(uint32_t *ids, double *dist, uint32_t *filled, uint32_t row, double d)
{
    uint32_t j;
    if (*filled == QUANT_K && d >= dist[QUANT_K - 1])
        return; /* equal distance: the lower row (already in) wins */
    j = *filled < QUANT_K ? (*filled)++ : QUANT_K - 1;
    while (j > 0 && dist[j - 1] > d) {
        dist[j] = dist[j - 1];
        ids[j] = ids[j - 1];
        j--;
    }
    dist[j] = d;
    ids[j] = row;
}

static void brute(quant_truth *gt, const quant_vectors *base, const quant_vectors *queries)
{
    uint32_t dim = base->dim, q0, i, b, d;
    for (q0 = 0; q0 < queries->n; q0 += QBLOCK) {
        uint32_t nb = queries->n - q0 < QBLOCK ? queries->n - q0 : QBLOCK;
        uint32_t filled[QBLOCK] = {0};
        for (i = 0; i < base->n; i++) {
            const float *r = base->v + (size_t)i * dim;
            for (b = 0; b < nb; b++) {
                const float *qv = queries->v + (size_t)(q0 + b) * dim;
                double s = 0;
                for (d = 0; d < dim; d++) {
                    double x = (double)r[d] - (double)qv[d];
                    s += x * x;
                }
                topk_insert(gt->ids + (size_t)(q0 + b) * QUANT_K,
                            gt->dist + (size_t)(q0 + b) * QUANT_K, &filled[b], i, s);
            }
        }
    }
}

int main(int argc, char **argv)
{
    const char *out = NULL, *name = NULL, *set = NULL;
    const char *fmnist_dir = "/usr/share/datasets/fashion-mnist", *fmnist_gt = NULL;
    uint32_t n = 0, nq = 1000, dim = 384, n_clusters = 1000, i;
    uint64_t seed = 42;
    char path[4096];
    quant_vectors base = {0, 0, NULL}, queries = {0, 0, NULL};
    quant_truth gt = {0};
    int ret = 1;
    double t0;

    for (i = 1; i < (uint32_t)argc; i++) {
        const char *a = argv[i], *v = i + 1 < (uint32_t)argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--name")) name = v;
        else if (!strcmp(a, "--set")) set = v;
        else if (!strcmp(a, "--fmnist-dir")) fmnist_dir = v;
        else if (!strcmp(a, "--fmnist-gt")) fmnist_gt = v;
        else if (!strcmp(a, "--n")) n = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--nq")) nq = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--dim")) dim = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--clusters")) n_clusters = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else
            usage();
    }
    if (!out || !name || !set || nq == 0 || dim == 0 || dim > 4096 || n_clusters == 0)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    mkdir(out, 0777);

    /* Already there? */
    snprintf(path, sizeof path, "%s/%s.gt", out, name);
    if (access(path, R_OK) == 0) {
        quant_set s;
        if (quant_set_load(out, name, &s) == 0) {
            printf("quant_prep: %s: cached (%u x %u, %u queries)\n", name, s.base.n, s.base.dim,
                   s.queries.n);
            quant_set_free(&s);
            return 0;
        }
    }

    t0 = quant_now();
    if (!strcmp(set, "fmnist")) {
        uint32_t qdim = 0;
        snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", fmnist_dir);
        base.v = bench_load_idx(path, n, &base.n, &base.dim);
        snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", fmnist_dir);
        queries.v = bench_load_idx(path, nq, &queries.n, &qdim);
        queries.dim = qdim;
        if (!base.v || !queries.v || qdim != base.dim)
            goto out;
    } else if (!strcmp(set, "clustered")) {
        gen_model m;
        if (n == 0)
            n = 100000;
        if (model_init(&m, dim, n_clusters, seed) != 0 ||
            generate(&base, &m, n, seed ^ 0x5eed0001ull) != 0 ||
            generate(&queries, &m, nq, seed ^ 0x5eed0002ull) != 0) {
            model_free(&m);
            fprintf(stderr, "quant_prep: out of memory\n");
            goto out;
        }
        model_free(&m);
    } else
        usage();
    printf("quant_prep: %s: %u x %u base, %u queries, made in %.1f s\n", name, base.n, base.dim,
           queries.n, quant_now() - t0);

    if (quant_truth_alloc(&gt, base.n, queries.n, base.dim, QUANT_K) != 0) {
        fprintf(stderr, "quant_prep: out of memory\n");
        goto out;
    }
    gt.checksum = quant_checksum(&base) ^ quant_checksum(&queries);
    t0 = quant_now();
    {
        /* bench_hnsw's cache (AkiDB exact search, cross-checked by brute
         * force) when it is for this very data. */
        bench_gt bg;
        uint64_t bsum = bench_checksum(base.v, (size_t)base.n * base.dim) ^
                        bench_checksum(queries.v, (size_t)queries.n * queries.dim);
        if (!strcmp(set, "fmnist") && fmnist_gt &&
            bench_gt_load(fmnist_gt, base.n, queries.n, base.dim, BENCH_K, bsum, &bg) == 0 &&
            bg.source == BENCH_GT_SRC_AKIDB_EXACT) {
            for (i = 0; i < queries.n * QUANT_K; i++) {
                gt.ids[i] = bg.ids[i];
                gt.dist[i] = bg.dist[i] == INT64_MAX ? HUGE_VAL : (double)bg.dist[i];
            }
            bench_gt_free(&bg);
            printf("quant_prep: %s: ground truth from bench_hnsw's cache %s\n", name, fmnist_gt);
        } else {
            brute(&gt, &base, &queries);
            printf("quant_prep: %s: ground truth by brute force in %.1f s\n", name,
                   quant_now() - t0);
        }
    }

    snprintf(path, sizeof path, "%s/%s.base", out, name);
    if (quant_vectors_write(path, &base) != 0)
        goto out;
    snprintf(path, sizeof path, "%s/%s.query", out, name);
    if (quant_vectors_write(path, &queries) != 0)
        goto out;
    snprintf(path, sizeof path, "%s/%s.gt", out, name);
    if (quant_truth_write(path, &gt) != 0)
        goto out;

    /* What the int8 quantiser does to this set (for the doc): clipped
     * query values, and the dimensions where some base value does not
     * decode to itself (none: int8 is exact for L2 on this set). */
    {
        quant_i8 q8;
        int8_t *code = malloc(base.dim);
        unsigned char *lossy = calloc(base.dim, 1);
        uint64_t clipped = 0;
        uint32_t d, n_lossy = 0;
        if (code && lossy && quant_i8_train(&q8, &base) == 0) {
            for (i = 0; i < queries.n; i++)
                clipped += quant_i8_encode(&q8, queries.v + (size_t)i * base.dim, code);
            for (i = 0; i < base.n; i++) {
                const float *r = base.v + (size_t)i * base.dim;
                quant_i8_encode(&q8, r, code);
                for (d = 0; d < base.dim; d++)
                    if (q8.offset[d] + q8.scale * code[d] != r[d])
                        lossy[d] = 1;
            }
            for (d = 0; d < base.dim; d++)
                n_lossy += lossy[d];
            printf("quant_prep: %s: int8 scale %g; query values clipped %llu of %llu; "
                   "dimensions where a base value does not decode to itself: %u of %u\n",
                   name, q8.scale, (unsigned long long)clipped,
                   (unsigned long long)queries.n * base.dim, n_lossy, base.dim);
            quant_i8_free(&q8);
        }
        free(code);
        free(lossy);
    }
    ret = 0;
out:
    quant_vectors_free(&base);
    quant_vectors_free(&queries);
    quant_truth_free(&gt);
    return ret;
}
