/*
 * hnswlib_peer.cpp - the hnswlib 0.6.2 side of the HNSW benchmark.
 *
 * Same data, same parameters and same scoring as bench_hnsw.c (both link
 * bench_common.o), in its own process so resident memory compares:
 * HierarchicalNSW<float> with L2Space(784), M=16, ef_construction=200,
 * addPoint() in a plain loop on one thread (no ParallelFor), then for each
 * ef: setEf() and searchKnn(k=10) over all queries, best of several passes.
 * hnswlib is compiled as it is meant to be: g++ -O3 -march=native.
 *
 * The ground truth is read from the cache that bench_hnsw writes (AkiDB
 * exact search, cross-checked by brute force).  --brute-gt computes it here
 * instead when no cache exists (for running this side alone).
 */
#include <hnswlib/hnswlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench_common.h"

#define MAX_EFS 32

static void usage()
{
    std::fprintf(stderr,
                 "usage: hnswlib_peer [--data DIR] [--gt FILE] [--n N] [--nq N]\n"
                 "                    [--efs 10,16,...] [--passes 3] [--brute-gt]\n");
    std::exit(2);
}

int main(int argc, char **argv)
{
    const char *data = "/usr/share/datasets/fashion-mnist";
    const char *gt_path = "build/bench/fmnist-gt.bin";
    uint32_t max_n = 0, max_nq = 1000, passes = 3;
    uint32_t efs[MAX_EFS];
    int n_efs = bench_parse_list("16,32,64,128", efs, MAX_EFS);
    bool brute_gt = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!std::strcmp(a, "--brute-gt")) {
            brute_gt = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!std::strcmp(a, "--data")) data = v;
        else if (!std::strcmp(a, "--gt")) gt_path = v;
        else if (!std::strcmp(a, "--n")) max_n = (uint32_t)std::strtoul(v, NULL, 10);
        else if (!std::strcmp(a, "--nq")) max_nq = (uint32_t)std::strtoul(v, NULL, 10);
        else if (!std::strcmp(a, "--passes")) passes = (uint32_t)std::strtoul(v, NULL, 10);
        else if (!std::strcmp(a, "--efs")) {
            n_efs = bench_parse_list(v, efs, MAX_EFS);
            if (n_efs == 0)
                usage();
        } else
            usage();
    }
    if (max_nq == 0 || passes == 0)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);

    long rss_start, hwm_start, rss_data, hwm_data, rss_build, hwm_build, rss_end, hwm_end;
    bench_rss_kb(&rss_start, &hwm_start);

    char path[4096];
    uint32_t n = 0, dim = 0, nq = 0, qdim = 0;
    std::snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", data);
    float *base = bench_load_idx(path, max_n, &n, &dim);
    std::snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", data);
    float *queries = bench_load_idx(path, max_nq, &nq, &qdim);
    if (!base || !queries || qdim != dim)
        return 1;
    std::vector<uint32_t> rows((size_t)nq * BENCH_K, 0);
    bench_rss_kb(&rss_data, &hwm_data);

    std::printf("hnswlib 0.6.2: %u base x %u dims, %u queries, k=%d\n", n, dim, nq, BENCH_K);
    std::printf("RESULT impl=hnswlib kind=info version=0.6.2 n=%u nq=%u dim=%u k=%d m=16 "
                "efc=200 passes=%u\n",
                n, nq, dim, BENCH_K, passes);

    uint64_t sum = bench_checksum(base, (size_t)n * dim) ^
                   bench_checksum(queries, (size_t)nq * dim);
    bench_gt gt;
    if (bench_gt_load(gt_path, n, nq, dim, BENCH_K, sum, &gt) != 0) {
        if (!brute_gt) {
            std::fprintf(stderr, "hnswlib_peer: no ground truth in %s; run bench_hnsw first "
                                 "(or pass --brute-gt)\n", gt_path);
            return 1;
        }
        if (bench_gt_alloc(&gt, n, nq, dim, BENCH_K, sum) != 0)
            return 1;
        double t0 = bench_now();
        bench_gt_brute(&gt, base, queries);
        std::printf("ground truth: brute force in %.1f s\n", bench_now() - t0);
        bench_gt_save(gt_path, &gt);
    }
    std::printf("RESULT impl=hnswlib kind=gt source=%s\n", bench_gt_source_name(gt.source));

    /* The ground truth is only needed for scoring; keep it out of the RSS
     * figures by measuring the data baseline again now that it is loaded. */
    bench_rss_kb(&rss_data, &hwm_data);

    hnswlib::L2Space space(dim);
    double t0 = bench_now(), c0 = bench_cpu_now();
    hnswlib::HierarchicalNSW<float> *index =
        new hnswlib::HierarchicalNSW<float>(&space, n, 16, 200, 100);
    for (uint32_t i = 0; i < n; i++)
        index->addPoint(base + (size_t)i * dim, (hnswlib::labeltype)i);
    double build_s = bench_now() - t0, build_cpu = bench_cpu_now() - c0;
    bench_rss_kb(&rss_build, &hwm_build);
    std::printf("build: %.2f s (cpu %.2f s), %u addPoint calls\n", build_s, build_cpu, n);
    std::printf("RESULT impl=hnswlib kind=build seconds=%.3f cpu_seconds=%.3f batch=1\n",
                build_s, build_cpu);
    std::printf("RESULT impl=hnswlib kind=memory rss_start_kb=%ld rss_data_kb=%ld "
                "rss_build_kb=%ld hwm_build_kb=%ld index_kb=%ld\n",
                rss_start, rss_data, rss_build, hwm_build, rss_build - rss_data);

    std::vector<hnswlib::labeltype> raw((size_t)nq * BENCH_K);
    for (int e = 0; e < n_efs; e++) {
        double best = 1e30, cpu_best = 0, cpu_min = 1e30;
        index->setEf(efs[e]);
        for (uint32_t p = 0; p < passes; p++) {
            double t1 = bench_now(), c1 = bench_cpu_now();
            for (uint32_t q = 0; q < nq; q++) {
                std::priority_queue<std::pair<float, hnswlib::labeltype>> res =
                    index->searchKnn(queries + (size_t)q * dim, BENCH_K);
                /* The queue pops farthest first; fill from the back. */
                size_t got = res.size();
                for (size_t j = got; j < BENCH_K; j++)
                    raw[(size_t)q * BENCH_K + j] = (hnswlib::labeltype)-1;
                for (size_t j = got; j-- > 0;) {
                    raw[(size_t)q * BENCH_K + j] = res.top().second;
                    res.pop();
                }
            }
            double t = bench_now() - t1, c = bench_cpu_now() - c1;
            if (t < best) {
                best = t;
                cpu_best = c;
            }
            if (c < cpu_min)
                cpu_min = c;
        }
        for (size_t i = 0; i < raw.size(); i++)
            rows[i] = raw[i] < n ? (uint32_t)raw[i] : BENCH_NO_ID;
        double recall_ids, recall = bench_recall(&gt, base, queries, rows.data(), &recall_ids);
        std::printf("ef=%-4u recall@10 %.4f (id overlap %.4f)  %8.0f QPS\n", efs[e], recall,
                    recall_ids, nq / best);
        std::printf("RESULT impl=hnswlib kind=search ef=%u recall=%.4f recall_ids=%.4f "
                    "qps=%.1f qps_cpu=%.1f cpu_per_wall=%.2f\n",
                    efs[e], recall, recall_ids, nq / best, nq / cpu_min, cpu_best / best);
    }

    bench_rss_kb(&rss_end, &hwm_end);
    std::printf("RESULT impl=hnswlib kind=memory_end rss_end_kb=%ld hwm_end_kb=%ld\n", rss_end,
                hwm_end);
    delete index;
    bench_gt_free(&gt);
    std::free(base);
    std::free(queries);
    return 0;
}
