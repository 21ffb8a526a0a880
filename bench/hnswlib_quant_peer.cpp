/*
 * hnswlib_quant_peer.cpp - the hnswlib 0.6.2 side (f32) of the
 * quantized-storage benchmark (issue 16), after bench/hnswlib_peer.cpp:
 * HierarchicalNSW<float> with L2Space, M=16, ef_construction=200,
 * addPoint() in a plain loop on one thread, then per ef setEf() and
 * searchKnn(k=10) over all queries (fastest of --passes).  Data, ground
 * truth and scoring from quant_common (the files quant_prep wrote).
 * Built g++ -O3 -march=native, the way hnswlib is meant to be used.
 *
 *   hnswlib_quant_peer --data DIR --set STEM [--efs ...] [--passes 3]
 */
#include <hnswlib/hnswlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "quant_common.h"

#define IMPL "hnswlib-f32"

static void usage()
{
    std::fprintf(stderr, "usage: hnswlib_quant_peer --data DIR --set STEM [--efs 10,16,...] "
                         "[--passes 3]\n");
    std::exit(2);
}

struct ctx_t {
    hnswlib::HierarchicalNSW<float> *index;
    const quant_set *s;
};

static int search_one(void *vctx, uint32_t q, uint32_t *rows)
{
    ctx_t *c = (ctx_t *)vctx;
    std::priority_queue<std::pair<float, hnswlib::labeltype>> res =
        c->index->searchKnn(c->s->queries.v + (size_t)q * c->s->queries.dim, QUANT_K);
    /* The queue pops farthest first; fill from the back. */
    size_t got = res.size();
    for (size_t j = got; j < QUANT_K; j++)
        rows[j] = QUANT_NO_ROW;
    for (size_t j = got; j-- > 0;) {
        rows[j] = res.top().second < c->s->base.n ? (uint32_t)res.top().second : QUANT_NO_ROW;
        res.pop();
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *data = "build/bench/quant", *set = NULL;
    uint32_t passes = 3, efs[QUANT_MAX_EFS];
    int n_efs = quant_parse_list("10,16,24,32,48,64,96,128,192,256", efs, QUANT_MAX_EFS);

    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *a = argv[i], *v = argv[++i];
        if (!std::strcmp(a, "--data")) data = v;
        else if (!std::strcmp(a, "--set")) set = v;
        else if (!std::strcmp(a, "--passes")) passes = (uint32_t)std::strtoul(v, NULL, 10);
        else if (!std::strcmp(a, "--efs")) {
            if ((n_efs = quant_parse_list(v, efs, QUANT_MAX_EFS)) == 0)
                usage();
        } else
            usage();
    }
    if (!set || passes == 0)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);

    quant_set s;
    if (quant_set_load(data, set, &s) != 0)
        return 1;
    uint32_t n = s.base.n, dim = s.base.dim;
    uint32_t *rows = (uint32_t *)std::calloc((size_t)s.queries.n * QUANT_K, sizeof *rows);
    if (!rows)
        return 1;
    long rss_data, hwm_data, rss_build, hwm_build, rss_settled, hwm_settled, rss_end, hwm_end;
    quant_rss_settled_kb(&rss_data, &hwm_data);
    std::printf("RESULT impl=%s set=%s kind=info version=0.6.2 n=%u nq=%u dim=%u k=%d m=16 "
                "efc=200 passes=%u\n",
                IMPL, set, n, s.queries.n, dim, QUANT_K, passes);

    hnswlib::L2Space space(dim);
    double t0 = quant_now(), c0 = quant_cpu_now();
    hnswlib::HierarchicalNSW<float> *index =
        new hnswlib::HierarchicalNSW<float>(&space, n, 16, 200, 100);
    for (uint32_t i = 0; i < n; i++)
        index->addPoint(s.base.v + (size_t)i * dim, (hnswlib::labeltype)i);
    double build_s = quant_now() - t0, build_cpu = quant_cpu_now() - c0;
    quant_rss_kb(&rss_build, &hwm_build);
    quant_rss_settled_kb(&rss_settled, &hwm_settled);
    std::printf("build: %.2f s (cpu %.2f s); index %.1f MiB\n", build_s, build_cpu,
                (rss_settled - rss_data) / 1024.0);
    std::printf("RESULT impl=%s set=%s kind=build seconds=%.3f cpu_seconds=%.3f\n", IMPL, set,
                build_s, build_cpu);
    std::printf("RESULT impl=%s set=%s kind=memory rss_data_kb=%ld rss_build_kb=%ld "
                "hwm_build_kb=%ld index_kb=%ld index_raw_kb=%ld\n",
                IMPL, set, rss_data, rss_build, hwm_build, rss_settled - rss_data,
                rss_build - rss_data);

    ctx_t ctx = {index, &s};
    for (int e = 0; e < n_efs; e++) {
        index->setEf(efs[e]);
        quant_measure_ef(IMPL, &s, efs[e], passes, search_one, &ctx, rows);
    }
    quant_rss_kb(&rss_end, &hwm_end);
    std::printf("RESULT impl=%s set=%s kind=memory_end rss_end_kb=%ld hwm_end_kb=%ld\n", IMPL,
                set, rss_end, hwm_end);
    delete index;
    std::free(rows);
    quant_set_free(&s);
    return 0;
}
