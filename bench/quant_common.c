/*
 * quant_common.c - data files, ground truth, recall, the int8 quantiser and
 * timing for the quantized-storage benchmark.  See quant_common.h.
 *
 * Compiled once as C (-O2, no -march) and linked into every side, so
 * loading and scoring are the same code everywhere.  quant_prep compiles
 * its own brute force with -O3 -march=native (the slow part); the
 * quant_l2 here is only used for scoring, on k rows per query.
 */
#define _GNU_SOURCE
#include "quant_common.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char VEC_MAGIC[8] = {'A', 'K', 'Q', 'V', '0', '1', '\0', '\0'};
static const char GT_MAGIC[8] = {'A', 'K', 'Q', 'G', '0', '1', '\0', '\0'};

int quant_vectors_read(const char *path, quant_vectors *out)
{
    char magic[8];
    uint32_t h[2];
    size_t total;
    FILE *f = fopen(path, "rb");

    memset(out, 0, sizeof *out);
    if (!f) {
        fprintf(stderr, "quant: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, VEC_MAGIC, 8) != 0 ||
        fread(h, sizeof h[0], 2, f) != 2 || h[0] == 0 || h[1] == 0 || h[1] > 65536 ||
        h[0] > (uint32_t)1 << 30) {
        fprintf(stderr, "quant: %s: not a vectors file (bad header)\n", path);
        goto fail;
    }
    total = (size_t)h[0] * h[1];
    out->v = malloc(total * sizeof(float));
    if (!out->v) {
        fprintf(stderr, "quant: out of memory reading %s\n", path);
        goto fail;
    }
    if (fread(out->v, sizeof(float), total, f) != total) {
        fprintf(stderr, "quant: %s: truncated\n", path);
        goto fail;
    }
    out->n = h[0];
    out->dim = h[1];
    fclose(f);
    return 0;
fail:
    quant_vectors_free(out);
    fclose(f);
    return -1;
}

int quant_vectors_write(const char *path, const quant_vectors *vs)
{
    char tmp[4096];
    uint32_t h[2] = {vs->n, vs->dim};
    size_t total = (size_t)vs->n * vs->dim;
    FILE *f;
    int ok;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "quant: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    ok = fwrite(VEC_MAGIC, 1, 8, f) == 8 && fwrite(h, sizeof h[0], 2, f) == 2 &&
         fwrite(vs->v, sizeof(float), total, f) == total;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "quant: cannot write %s\n", path);
        remove(tmp);
        return -1;
    }
    return 0;
}

void quant_vectors_free(quant_vectors *vs)
{
    free(vs->v);
    vs->v = NULL;
    vs->n = vs->dim = 0;
}

uint64_t quant_checksum(const quant_vectors *vs)
{
    const unsigned char *p = (const unsigned char *)vs->v;
    size_t i, len = (size_t)vs->n * vs->dim * sizeof(float);
    uint64_t h = 1469598103934665603ull;
    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h ^ ((uint64_t)vs->n << 32 | vs->dim);
}

int quant_truth_alloc(quant_truth *gt, uint32_t n_base, uint32_t nq, uint32_t dim, uint32_t k)
{
    memset(gt, 0, sizeof *gt);
    gt->n_base = n_base;
    gt->nq = nq;
    gt->dim = dim;
    gt->k = k;
    gt->ids = calloc((size_t)nq * k, sizeof *gt->ids);
    gt->dist = calloc((size_t)nq * k, sizeof *gt->dist);
    if (!gt->ids || !gt->dist) {
        quant_truth_free(gt);
        return -1;
    }
    return 0;
}

void quant_truth_free(quant_truth *gt)
{
    free(gt->ids);
    free(gt->dist);
    gt->ids = NULL;
    gt->dist = NULL;
}

int quant_truth_read(const char *path, const quant_vectors *base, const quant_vectors *queries,
                     quant_truth *gt)
{
    char magic[8];
    uint32_t h[4];
    uint64_t sum;
    size_t m, i;
    FILE *f = fopen(path, "rb");

    memset(gt, 0, sizeof *gt);
    if (!f)
        return -1;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, GT_MAGIC, 8) != 0 ||
        fread(h, sizeof h[0], 4, f) != 4 || fread(&sum, sizeof sum, 1, f) != 1)
        goto corrupt;
    if (h[0] != base->n || h[1] != queries->n || h[2] != base->dim || h[3] != QUANT_K ||
        sum != (quant_checksum(base) ^ quant_checksum(queries)))
        goto stale;
    if (quant_truth_alloc(gt, h[0], h[1], h[2], h[3]) != 0)
        goto corrupt;
    gt->checksum = sum;
    m = (size_t)gt->nq * gt->k;
    if (fread(gt->ids, sizeof *gt->ids, m, f) != m || fread(gt->dist, sizeof *gt->dist, m, f) != m)
        goto corrupt;
    for (i = 0; i < m; i++)
        if ((gt->ids[i] >= gt->n_base && gt->ids[i] != QUANT_NO_ROW) || !(gt->dist[i] >= 0))
            goto corrupt;
    fclose(f);
    return 0;
corrupt:
    fprintf(stderr, "quant: %s: corrupt ground-truth file (ignored)\n", path);
stale:
    quant_truth_free(gt);
    fclose(f);
    return -1;
}

int quant_truth_write(const char *path, const quant_truth *gt)
{
    char tmp[4096];
    uint32_t h[4] = {gt->n_base, gt->nq, gt->dim, gt->k};
    size_t m = (size_t)gt->nq * gt->k;
    FILE *f;
    int ok;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "quant: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    ok = fwrite(GT_MAGIC, 1, 8, f) == 8 && fwrite(h, sizeof h[0], 4, f) == 4 &&
         fwrite(&gt->checksum, sizeof gt->checksum, 1, f) == 1 &&
         fwrite(gt->ids, sizeof *gt->ids, m, f) == m &&
         fwrite(gt->dist, sizeof *gt->dist, m, f) == m;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "quant: cannot write %s\n", path);
        remove(tmp);
        return -1;
    }
    return 0;
}

double quant_l2(const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    uint32_t i;
    for (i = 0; i < dim; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return s;
}

double quant_recall(const quant_truth *gt, const quant_vectors *base,
                    const quant_vectors *queries, const uint32_t *rows, double *recall_ids)
{
    uint64_t hits = 0, hits_ids = 0;
    uint32_t q, i, j, k = gt->k;

    for (q = 0; q < gt->nq; q++) {
        const uint32_t *res = rows + (size_t)q * k;
        const uint32_t *tru = gt->ids + (size_t)q * k;
        const float *qv = queries->v + (size_t)q * gt->dim;
        double kth = gt->dist[(size_t)q * k + k - 1];
        for (i = 0; i < k; i++) {
            int dup = 0;
            if (res[i] == QUANT_NO_ROW || res[i] >= gt->n_base)
                continue;
            for (j = 0; j < i; j++)
                dup |= res[j] == res[i];
            if (dup)
                continue;
            if (quant_l2(base->v + (size_t)res[i] * gt->dim, qv, gt->dim) <= kth)
                hits++;
            for (j = 0; j < k; j++)
                if (tru[j] == res[i]) {
                    hits_ids++;
                    break;
                }
        }
    }
    if (recall_ids)
        *recall_ids = (double)hits_ids / ((double)gt->nq * k);
    return (double)hits / ((double)gt->nq * k);
}

int quant_i8_train(quant_i8 *q, const quant_vectors *base)
{
    uint32_t d, i, dim = base->dim;
    float *mx, widest = 0.0f, biggest = 0.0f, s;

    q->dim = dim;
    q->offset = malloc((size_t)dim * sizeof *q->offset);
    mx = malloc((size_t)dim * sizeof *mx);
    if (!q->offset || !mx) {
        free(mx);
        quant_i8_free(q);
        return -1;
    }
    /* As akidb__i8_train: offset[] collects the minima, mx[] the maxima. */
    for (d = 0; d < dim; d++)
        q->offset[d] = mx[d] = base->v[d];
    for (i = 1; i < base->n; i++) {
        const float *r = base->v + (size_t)i * dim;
        for (d = 0; d < dim; d++) {
            if (r[d] < q->offset[d])
                q->offset[d] = r[d];
            if (r[d] > mx[d])
                mx[d] = r[d];
        }
    }
    for (d = 0; d < dim; d++) {
        float range = mx[d] - q->offset[d];
        if (range > widest)
            widest = range;
        if (fabsf(mx[d]) > biggest)
            biggest = fabsf(mx[d]);
        if (fabsf(q->offset[d]) > biggest)
            biggest = fabsf(q->offset[d]);
        q->offset[d] = q->offset[d] + range * 0.5f;
    }
    s = widest / 255.0f;
    if (!(s > 0.0f) || !isfinite(s)) {
        s = biggest * (1.0f / 65536.0f);
        if (!isfinite(s))
            s = 1e19f;
        else if (!(s >= 1e-19f))
            s = 1e-19f;
    }
    for (d = 0; d < dim; d++)
        q->offset[d] += 0.5f * s;
    q->scale = s;
    free(mx);
    return 0;
}

void quant_i8_free(quant_i8 *q)
{
    free(q->offset);
    q->offset = NULL;
}

uint32_t quant_i8_encode(const quant_i8 *q, const float *x, int8_t *out)
{
    uint32_t d, clipped = 0;
    for (d = 0; d < q->dim; d++) {
        float v = (x[d] - q->offset[d]) / q->scale;
        int l;
        if (!(v >= -128.5f)) {
            l = -128;
            clipped++;
        } else if (v >= 127.5f) {
            l = 127;
            clipped++;
        } else
            l = (int)lrintf(v);
        out[d] = (int8_t)l;
    }
    return clipped;
}

double quant_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double quant_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int quant_rss_kb(long *rss_kb, long *hwm_kb)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    *rss_kb = -1;
    *hwm_kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return (*rss_kb >= 0 && *hwm_kb >= 0) ? 0 : -1;
}

int quant_rss_settled_kb(long *rss_kb, long *hwm_kb)
{
    malloc_trim(0);
    return quant_rss_kb(rss_kb, hwm_kb);
}

int quant_parse_list(const char *s, uint32_t *out, int max)
{
    int n = 0;
    while (*s) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v == 0 || v > 1000000 || n == max)
            return 0;
        out[n++] = (uint32_t)v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return 0;
    }
    return n;
}

int quant_set_load(const char *data_dir, const char *set, quant_set *s)
{
    char path[4096];

    memset(s, 0, sizeof *s);
    s->name = set;
    snprintf(path, sizeof path, "%s/%s.base", data_dir, set);
    if (quant_vectors_read(path, &s->base) != 0)
        goto fail;
    snprintf(path, sizeof path, "%s/%s.query", data_dir, set);
    if (quant_vectors_read(path, &s->queries) != 0)
        goto fail;
    if (s->queries.dim != s->base.dim) {
        fprintf(stderr, "quant: %s: query dim %u != base dim %u\n", set, s->queries.dim,
                s->base.dim);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/%s.gt", data_dir, set);
    if (quant_truth_read(path, &s->base, &s->queries, &s->gt) != 0) {
        fprintf(stderr, "quant: %s: no valid ground truth in %s (run quant_prep)\n", set, path);
        goto fail;
    }
    return 0;
fail:
    quant_set_free(s);
    return -1;
}

void quant_set_free(quant_set *s)
{
    quant_vectors_free(&s->base);
    quant_vectors_free(&s->queries);
    quant_truth_free(&s->gt);
}

int quant_measure_ef(const char *impl, const quant_set *s, uint32_t ef, uint32_t passes,
                     quant_search_fn search, void *ctx, uint32_t *rows)
{
    static int warmed;
    double best = 1e30, cpu_best = 0, cpu_min = 1e30, recall, recall_ids;
    uint32_t p, q, nq = s->queries.n;

    /* One untimed pass before the first timed one, on every side: the
     * first searches of a fresh index fault pages in and fill caches,
     * which a single timed pass (--quick) would otherwise charge to
     * whichever ef comes first. */
    if (!warmed) {
        for (q = 0; q < nq; q++)
            if (search(ctx, q, rows + (size_t)q * QUANT_K) != 0)
                return -1;
        warmed = 1;
    }
    for (p = 0; p < passes; p++) {
        double t0 = quant_now(), c0 = quant_cpu_now(), t, c;
        for (q = 0; q < nq; q++)
            if (search(ctx, q, rows + (size_t)q * QUANT_K) != 0)
                return -1;
        t = quant_now() - t0;
        c = quant_cpu_now() - c0;
        if (t < best) {
            best = t;
            cpu_best = c;
        }
        if (c < cpu_min)
            cpu_min = c;
    }
    recall = quant_recall(&s->gt, &s->base, &s->queries, rows, &recall_ids);
    printf("%-14s ef=%-4u recall@10 %.4f (id overlap %.4f)  %8.0f QPS\n", impl, ef, recall,
           recall_ids, nq / best);
    printf("RESULT impl=%s set=%s kind=search ef=%u recall=%.4f recall_ids=%.4f qps=%.1f "
           "qps_cpu=%.1f cpu_per_wall=%.2f\n",
           impl, s->name, ef, recall, recall_ids, nq / best, nq / cpu_min, cpu_best / best);
    return 0;
}
