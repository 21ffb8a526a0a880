/*
 * usearch_quant_peer.c - the usearch side (f32, f16, i8) of the
 * quantized-storage benchmark (issue 16), through usearch's C API
 * (c/usearch.h of the npm package, built by bench/build_usearch.sh with
 * -O3 -march=native; NumKong picks its SIMD kernels at run time).
 *
 *   usearch_quant_peer --data DIR --set STEM --scalar f32|f16|i8
 *                      [--i8-input akidb|pixel128] [--efs ...] [--passes 3]
 *
 * Index: metric l2sq, connectivity 16, expansion_add 200 (usearch's names
 * for M and ef_construction), one thread for adds and searches,
 * usearch_add() in a plain loop with key = row.  Per ef,
 * usearch_change_expansion_search() then usearch_search(k=10) over all
 * queries (fastest of --passes), scored by quant_common against the exact
 * float ground truth.
 *
 * What usearch is fed:
 *   f32, f16  the float vectors; usearch converts to f16 itself (a plain
 *             cast, fine for L2).
 *   i8        int8 codes made here.  usearch's own float -> i8 conversion
 *             normalises each vector and scales it to [-127, 127]: meant
 *             for cosine, it loses the norms L2 needs (recall 0.47 on
 *             Fashion-MNIST).  So it gets the best int8 we have: AkiDB's
 *             own quantiser (quant_common.h: per-dimension offset, one
 *             scale = widest range / 255, clamped to [-128, 127]) for base
 *             and queries, passed as i8 with the l2sq metric, so its
 *             distances are squared L2 between the codes.  --i8-input
 *             pixel128 feeds x - 128 instead, which is exact on 0..255
 *             integer data such as Fashion-MNIST (refused on other data).
 */
#define _GNU_SOURCE
#include "quant_common.h"
#include "usearch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr,
            "usage: usearch_quant_peer --data DIR --set STEM --scalar f32|f16|i8\n"
            "                          [--i8-input akidb|pixel128] [--efs 10,16,...]\n"
            "                          [--passes 3]\n");
    exit(2);
}

typedef struct ctx_t {
    usearch_index_t index;
    const quant_set *s;
    const int8_t *qcodes; /* i8: the queries' codes; else NULL */
} ctx_t;

static int search_one(void *vctx, uint32_t q, uint32_t *rows)
{
    ctx_t *c = vctx;
    usearch_key_t keys[QUANT_K];
    usearch_distance_t dist[QUANT_K];
    usearch_error_t err = NULL;
    uint32_t dim = c->s->queries.dim;
    size_t got, j;
    if (c->qcodes)
        got = usearch_search(c->index, c->qcodes + (size_t)q * dim, usearch_scalar_i8_k, QUANT_K,
                             keys, dist, &err);
    else
        got = usearch_search(c->index, c->s->queries.v + (size_t)q * dim, usearch_scalar_f32_k,
                             QUANT_K, keys, dist, &err);
    if (err) {
        fprintf(stderr, "usearch_quant_peer: search: %s\n", err);
        return -1;
    }
    for (j = 0; j < QUANT_K; j++)
        rows[j] = j < got && keys[j] < c->s->base.n ? (uint32_t)keys[j] : QUANT_NO_ROW;
    return 0;
}

/* Codes for every row of vs; returns malloc'd n*dim bytes or NULL. */
static int8_t *encode_all(const quant_vectors *vs, const quant_i8 *q8, int pixel128,
                          uint64_t *clipped)
{
    int8_t *c = malloc((size_t)vs->n * vs->dim);
    size_t i, total = (size_t)vs->n * vs->dim;
    if (!c)
        return NULL;
    *clipped = 0;
    if (pixel128) {
        for (i = 0; i < total; i++)
            c[i] = (int8_t)((int)vs->v[i] - 128);
        return c;
    }
    for (i = 0; i < vs->n; i++)
        *clipped += quant_i8_encode(q8, vs->v + i * vs->dim, c + i * vs->dim);
    return c;
}

int main(int argc, char **argv)
{
    const char *data = "build/bench/quant", *set = NULL, *scalar = NULL, *i8_input = "akidb";
    uint32_t passes = 3, efs[QUANT_MAX_EFS], i, n, dim;
    int n_efs = quant_parse_list("10,16,24,32,48,64,96,128,192,256", efs, QUANT_MAX_EFS);
    int e, ret = 1, pixel128 = 0;
    char impl[64];
    quant_set s;
    quant_i8 q8 = {0, 0, NULL};
    int8_t *bcodes = NULL, *qcodes = NULL;
    uint32_t *rows = NULL;
    usearch_init_options_t uo;
    usearch_index_t index = NULL;
    usearch_error_t err = NULL;
    usearch_scalar_kind_t kind;
    long rss_data, hwm_data, rss_build, hwm_build, rss_settled, hwm_settled, rss_end, hwm_end;
    double t0, c0, build_s, build_cpu;
    uint64_t bclip = 0, qclip = 0;
    ctx_t ctx;

    for (i = 1; i < (uint32_t)argc; i++) {
        const char *a = argv[i], *v = i + 1 < (uint32_t)argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--set")) set = v;
        else if (!strcmp(a, "--scalar")) scalar = v;
        else if (!strcmp(a, "--i8-input")) i8_input = v;
        else if (!strcmp(a, "--passes")) passes = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--efs")) {
            if ((n_efs = quant_parse_list(v, efs, QUANT_MAX_EFS)) == 0)
                usage();
        } else
            usage();
    }
    if (!set || !scalar || passes == 0)
        usage();
    if (!strcmp(scalar, "f32")) kind = usearch_scalar_f32_k;
    else if (!strcmp(scalar, "f16")) kind = usearch_scalar_f16_k;
    else if (!strcmp(scalar, "i8")) kind = usearch_scalar_i8_k;
    else
        usage();
    if (!strcmp(i8_input, "pixel128")) pixel128 = 1;
    else if (strcmp(i8_input, "akidb") != 0)
        usage();
    snprintf(impl, sizeof impl, "usearch-%s%s", scalar,
             kind == usearch_scalar_i8_k && pixel128 ? "-px128" : "");
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (quant_set_load(data, set, &s) != 0)
        return 1;
    n = s.base.n;
    dim = s.base.dim;
    rows = calloc((size_t)s.queries.n * QUANT_K, sizeof *rows);
    if (!rows)
        goto oom;
    if (kind == usearch_scalar_i8_k) {
        if (pixel128) {
            size_t total = (size_t)n * dim;
            for (i = 0; i < 2; i++) {
                const quant_vectors *vs = i ? &s.queries : &s.base;
                size_t j, t = i ? (size_t)vs->n * dim : total;
                for (j = 0; j < t; j++)
                    if (!(vs->v[j] >= 0 && vs->v[j] <= 255 && vs->v[j] == floorf(vs->v[j]))) {
                        fprintf(stderr, "usearch_quant_peer: --i8-input pixel128 needs integer "
                                        "values 0..255; %s has %g\n", set, vs->v[j]);
                        goto out;
                    }
            }
        } else if (quant_i8_train(&q8, &s.base) != 0)
            goto oom;
        bcodes = encode_all(&s.base, &q8, pixel128, &bclip);
        qcodes = encode_all(&s.queries, &q8, pixel128, &qclip);
        if (!bcodes || !qcodes)
            goto oom;
    }
    /* The caller's copies (floats, and codes for i8) are in the baseline. */
    quant_rss_settled_kb(&rss_data, &hwm_data);

    memset(&uo, 0, sizeof uo);
    uo.metric_kind = usearch_metric_l2sq_k;
    uo.metric = NULL;
    uo.quantization = kind;
    uo.dimensions = dim;
    uo.connectivity = 16;
    uo.expansion_add = 200;
    uo.expansion_search = 64;
    uo.multi = false;

    printf("RESULT impl=%s set=%s kind=info version=%s n=%u nq=%u dim=%u k=%d m=16 efc=200 "
           "passes=%u i8_input=%s base_clipped=%llu query_clipped=%llu\n",
           impl, set, usearch_version(), n, s.queries.n, dim, QUANT_K, passes,
           kind == usearch_scalar_i8_k ? i8_input : "none", (unsigned long long)bclip,
           (unsigned long long)qclip);

    t0 = quant_now();
    c0 = quant_cpu_now();
    index = usearch_init(&uo, &err);
    if (err || !index) {
        fprintf(stderr, "usearch_quant_peer: init: %s\n", err ? err : "NULL index");
        goto out;
    }
    usearch_reserve(index, n, &err);
    if (!err)
        usearch_change_threads_add(index, 1, &err);
    if (!err)
        usearch_change_threads_search(index, 1, &err);
    if (err) {
        fprintf(stderr, "usearch_quant_peer: reserve: %s\n", err);
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (bcodes)
            usearch_add(index, i, bcodes + (size_t)i * dim, usearch_scalar_i8_k, &err);
        else
            usearch_add(index, i, s.base.v + (size_t)i * dim, usearch_scalar_f32_k, &err);
        if (err) {
            fprintf(stderr, "usearch_quant_peer: add %u: %s\n", i, err);
            goto out;
        }
    }
    build_s = quant_now() - t0;
    build_cpu = quant_cpu_now() - c0;
    quant_rss_kb(&rss_build, &hwm_build);
    quant_rss_settled_kb(&rss_settled, &hwm_settled);
    {
        const char *hw = usearch_hardware_acceleration(index, &err);
        printf("usearch %s %s on %s: build %.2f s (cpu %.2f s); index %.1f MiB; kernels %s\n",
               usearch_version(), scalar, set, build_s, build_cpu,
               (rss_settled - rss_data) / 1024.0, hw && !err ? hw : "?");
        printf("RESULT impl=%s set=%s kind=kernels isa=%s\n", impl, set, hw && !err ? hw : "?");
        err = NULL;
    }
    printf("RESULT impl=%s set=%s kind=build seconds=%.3f cpu_seconds=%.3f\n", impl, set, build_s,
           build_cpu);
    printf("RESULT impl=%s set=%s kind=memory rss_data_kb=%ld rss_build_kb=%ld hwm_build_kb=%ld "
           "index_kb=%ld index_raw_kb=%ld usearch_memory_kb=%zu\n",
           impl, set, rss_data, rss_build, hwm_build, rss_settled - rss_data, rss_build - rss_data,
           usearch_memory_usage(index, &err) / 1024);
    err = NULL;

    ctx.index = index;
    ctx.s = &s;
    ctx.qcodes = qcodes;
    for (e = 0; e < n_efs; e++) {
        usearch_change_expansion_search(index, efs[e], &err);
        if (err) {
            fprintf(stderr, "usearch_quant_peer: expansion_search: %s\n", err);
            goto out;
        }
        if (quant_measure_ef(impl, &s, efs[e], passes, search_one, &ctx, rows) != 0)
            goto out;
    }
    quant_rss_kb(&rss_end, &hwm_end);
    printf("RESULT impl=%s set=%s kind=memory_end rss_end_kb=%ld hwm_end_kb=%ld\n", impl, set,
           rss_end, hwm_end);
    ret = 0;
    goto out;
oom:
    fprintf(stderr, "usearch_quant_peer: out of memory\n");
out:
    if (index) {
        err = NULL;
        usearch_free(index, &err);
    }
    quant_i8_free(&q8);
    free(bcodes);
    free(qcodes);
    free(rows);
    quant_set_free(&s);
    return ret;
}
