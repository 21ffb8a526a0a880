/*
 * bench_hnsw.c - AkiDB side of the HNSW benchmark on Fashion-MNIST.
 *
 * One process, one thread of ours: load 60k base + 1000 query vectors, build
 * a collection (M=16, ef_construction=200) through the public API, then
 *   - build time: from the first insert until akidb_index_wait returns,
 *     i.e. until the graph holds every vector.  By default the index-lag
 *     bound is off (--max-lag never), so the inserts are acknowledged at
 *     once and the handle's indexer thread does all the linking: this is
 *     the indexer's time to absorb the data, against hnswlib's
 *     single-thread build; the time until the last insert was
 *     acknowledged is reported too.  --max-lag default uses the library's
 *     bound (writers then link under back-pressure);
 *   - ground truth: exact top-10 by AkiDB's exact mode, cross-checked against
 *     a brute-force loop on a subset, cached for the hnswlib peer;
 *   - recall@10 and QPS for each ef (best of several passes);
 *   - RSS before loading, after loading, after building;
 *   - exact-search bandwidth against this machine's single-thread memory
 *     read bandwidth (membw.c).
 * Output: human-readable lines plus machine-readable `RESULT key=value ...`
 * lines, parsed by run_hnsw_bench.sh.  Uses include/akidb.h only.
 */
#define _GNU_SOURCE
#include "akidb.h"
#include "bench_common.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* membw.c */
float *bench_membw_alloc(size_t bytes);
double bench_membw_pass(const float *buf, size_t bytes, double *sink);

#define COLL "fmnist"
#define MAX_EFS 16

typedef struct row_map {
    uint64_t id;
    uint32_t row;
} row_map;

static int cmp_row_map(const void *a, const void *b)
{
    const row_map *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Map AkiDB ids back to data rows: a fast path for the usual dense ids,
 * binary search otherwise.  Done outside the timed loops. */
typedef struct id_index {
    uint64_t first;
    int dense;
    row_map *sorted;
    uint32_t n;
} id_index;

static int id_index_build(id_index *ix, const uint64_t *ids, uint32_t n)
{
    uint32_t i;
    ix->first = ids[0];
    ix->dense = 1;
    ix->n = n;
    ix->sorted = NULL;
    for (i = 0; i < n; i++)
        if (ids[i] != ids[0] + i)
            ix->dense = 0;
    if (ix->dense)
        return 0;
    ix->sorted = malloc((size_t)n * sizeof *ix->sorted);
    if (!ix->sorted)
        return -1;
    for (i = 0; i < n; i++) {
        ix->sorted[i].id = ids[i];
        ix->sorted[i].row = i;
    }
    qsort(ix->sorted, n, sizeof *ix->sorted, cmp_row_map);
    return 0;
}

static uint32_t id_index_row(const id_index *ix, uint64_t id)
{
    row_map key, *hit;
    if (id == UINT64_MAX)
        return BENCH_NO_ID;
    if (ix->dense)
        return (id >= ix->first && id - ix->first < ix->n) ? (uint32_t)(id - ix->first)
                                                           : BENCH_NO_ID;
    key.id = id;
    hit = bsearch(&key, ix->sorted, ix->n, sizeof *ix->sorted, cmp_row_map);
    return hit ? hit->row : BENCH_NO_ID;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_hnsw [--data DIR] [--gt FILE] [--workdir DIR] [--n N] [--nq N]\n"
            "                  [--efs 16,32,64,128] [--passes 3] [--verify 100]\n"
            "                  [--exact-queries 20] [--membw-mib 512] [--batch 1000]\n"
            "                  [--sync default|always|interval|none]\n"
            "                  [--max-lag never|default|N]\n");
    exit(2);
}

typedef struct opts {
    const char *data, *gt, *workdir, *sync, *max_lag;
    uint32_t n, nq, passes, verify, exact_queries, membw_mib, batch;
    uint32_t efs[MAX_EFS];
    int n_efs;
} opts;

static void parse_args(int argc, char **argv, opts *o)
{
    int i;
    o->data = "/usr/share/datasets/fashion-mnist";
    o->gt = "build/bench/fmnist-gt.bin";
    o->workdir = "build/bench";
    o->sync = "default";
    o->max_lag = "never";
    o->n = 0;
    o->nq = 1000;
    o->passes = 3;
    o->verify = 100;
    o->exact_queries = 20;
    o->membw_mib = 512;
    o->batch = 1000;
    o->n_efs = bench_parse_list("16,32,64,128", o->efs, MAX_EFS);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--gt")) o->gt = v;
        else if (!strcmp(a, "--workdir")) o->workdir = v;
        else if (!strcmp(a, "--sync")) o->sync = v;
        else if (!strcmp(a, "--max-lag")) o->max_lag = v;
        else if (!strcmp(a, "--n")) o->n = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--nq")) o->nq = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--passes")) o->passes = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--verify")) o->verify = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--exact-queries")) o->exact_queries = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--membw-mib")) o->membw_mib = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--batch")) o->batch = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--efs")) {
            o->n_efs = bench_parse_list(v, o->efs, MAX_EFS);
            if (o->n_efs == 0)
                usage();
        } else
            usage();
    }
    if (o->nq == 0 || o->passes == 0 || o->batch == 0)
        usage();
}

static int fail_akidb(akidb *db, const char *what, int rc)
{
    fprintf(stderr, "bench_hnsw: %s: %s (%s)\n", what, akidb_errstr(rc), akidb_errmsg(db));
    return 1;
}

/* Ground truth by AkiDB's exact mode: rows re-sorted by exact integer
 * distance (ties by row), so it is directly comparable with brute force. */
static int gt_by_akidb(akidb *db, const id_index *ix, const float *base, const float *queries,
                       bench_gt *gt)
{
    akidb_search_params sp;
    akidb_hit hits[BENCH_K];
    uint32_t q, i, n_hits, k = gt->k;
    int rc;

    akidb_search_params_init(&sp);
    sp.exact = 1;
    for (q = 0; q < gt->nq; q++) {
        const float *qv = queries + (size_t)q * gt->dim;
        uint32_t *ids = gt->ids + (size_t)q * k;
        int64_t *dist = gt->dist + (size_t)q * k;
        rc = akidb_search(db, COLL, qv, k, &sp, hits, &n_hits);
        if (rc != AKIDB_OK)
            return fail_akidb(db, "exact search", rc);
        for (i = 0; i < k; i++) {
            uint32_t j;
            uint32_t row = i < n_hits ? id_index_row(ix, hits[i].id) : BENCH_NO_ID;
            int64_t d = row == BENCH_NO_ID ? INT64_MAX
                                           : bench_l2_exact(base + (size_t)row * gt->dim, qv,
                                                            gt->dim);
            for (j = i; j > 0 && (dist[j - 1] > d || (dist[j - 1] == d && ids[j - 1] > row)); j--) {
                dist[j] = dist[j - 1];
                ids[j] = ids[j - 1];
            }
            dist[j] = d;
            ids[j] = row;
        }
    }
    gt->source = BENCH_GT_SRC_AKIDB_EXACT;
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    char path[4096], dbdir[4096];
    float *base = NULL, *queries = NULL;
    uint32_t n = 0, dim = 0, nq = 0, qdim = 0, i, e, p;
    long rss_start, hwm_start, rss_data, hwm_data, rss_build, hwm_build, rss_end, hwm_end;
    uint64_t *ids = NULL, *raw = NULL;
    uint32_t *rows = NULL;
    id_index ix = {0, 0, NULL, 0};
    bench_gt gt = {0};
    akidb *db = NULL;
    akidb_collection_config cfg;
    akidb_options aopts;
    akidb_search_params sp;
    akidb_hit hits[BENCH_K];
    double t0, c0, build_s, build_cpu, ack_s;
    int rc, ret = 1, have_dir = 0;

    parse_args(argc, argv, &o);
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_rss_kb(&rss_start, &hwm_start);

    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", o.data);
    base = bench_load_idx(path, o.n, &n, &dim);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", o.data);
    queries = bench_load_idx(path, o.nq, &nq, &qdim);
    if (!base || !queries)
        goto out;
    if (qdim != dim) {
        fprintf(stderr, "bench_hnsw: query dim %u != base dim %u\n", qdim, dim);
        goto out;
    }
    ids = malloc((size_t)n * sizeof *ids);
    raw = malloc((size_t)nq * BENCH_K * sizeof *raw);
    rows = malloc((size_t)nq * BENCH_K * sizeof *rows);
    if (!ids || !raw || !rows) {
        fprintf(stderr, "bench_hnsw: out of memory\n");
        goto out;
    }
    memset(ids, 0, (size_t)n * sizeof *ids);
    memset(raw, 0, (size_t)nq * BENCH_K * sizeof *raw);
    memset(rows, 0, (size_t)nq * BENCH_K * sizeof *rows);
    bench_rss_kb(&rss_data, &hwm_data);

    printf("akidb %s: %u base x %u dims, %u queries, k=%d\n", akidb_version(), n, dim, nq,
           BENCH_K);
    /* Default open options unless --sync says otherwise: the default is
     * what a user gets (sync_mode ALWAYS, write-ahead log and checkpoints
     * included in the build time). */
    akidb_options_init(&aopts);
    if (!strcmp(o.sync, "always")) aopts.sync_mode = AKIDB_SYNC_ALWAYS;
    else if (!strcmp(o.sync, "interval")) aopts.sync_mode = AKIDB_SYNC_INTERVAL;
    else if (!strcmp(o.sync, "none")) aopts.sync_mode = AKIDB_SYNC_NONE;
    else if (strcmp(o.sync, "default") != 0)
        usage();
    if (!strcmp(o.max_lag, "never")) aopts.max_index_lag = AKIDB_NEVER;
    else if (!strcmp(o.max_lag, "default")) aopts.max_index_lag = 0;
    else if ((aopts.max_index_lag = (uint32_t)strtoul(o.max_lag, NULL, 10)) == 0)
        usage();
    printf("RESULT impl=akidb kind=info version=%s n=%u nq=%u dim=%u k=%d m=16 efc=200 "
           "sync=%s passes=%u\n",
           akidb_version(), n, nq, dim, BENCH_K, o.sync, o.passes);

    /* The database lives on disk under workdir (not /tmp, which may be
     * tmpfs and would move WAL bytes into RAM). */
    mkdir(o.workdir, 0777);
    snprintf(dbdir, sizeof dbdir, "%s/akidb-bench-XXXXXX", o.workdir);
    if (!mkdtemp(dbdir)) {
        fprintf(stderr, "bench_hnsw: mkdtemp %s: %s\n", dbdir, strerror(errno));
        goto out;
    }
    have_dir = 1;
    rc = akidb_open(dbdir, &aopts, &db);
    if (rc != AKIDB_OK) {
        fail_akidb(NULL, "open", rc);
        goto out;
    }
    akidb_collection_config_init(&cfg, dim, AKIDB_METRIC_L2);
    cfg.hnsw_m = 16;
    cfg.ef_construction = 200;
    rc = akidb_collection_create(db, COLL, &cfg);
    if (rc != AKIDB_OK) {
        fail_akidb(db, "collection_create", rc);
        goto out;
    }

    /* Build. */
    t0 = bench_now();
    c0 = bench_cpu_now();
    for (i = 0; i < n; i += o.batch) {
        uint32_t m = n - i < o.batch ? n - i : o.batch;
        rc = akidb_insert(db, COLL, m, base + (size_t)i * dim, NULL, NULL, ids + i);
        if (rc != AKIDB_OK) {
            fail_akidb(db, "insert", rc);
            goto out;
        }
    }
    ack_s = bench_now() - t0;
    rc = akidb_index_wait(db, COLL, AKIDB_NEVER);
    if (rc != AKIDB_OK) {
        fail_akidb(db, "index_wait", rc);
        goto out;
    }
    build_s = bench_now() - t0;
    build_cpu = bench_cpu_now() - c0;
    bench_rss_kb(&rss_build, &hwm_build);
    printf("build: %.2f s (cpu %.2f s), %u inserts in batches of %u, all acknowledged after "
           "%.2f s (max-lag %s)\n", build_s, build_cpu, n, o.batch, ack_s, o.max_lag);
    printf("RESULT impl=akidb kind=ingest ack_seconds=%.3f graph_seconds=%.3f max_lag=%s\n",
           ack_s, build_s, o.max_lag);
    printf("RESULT impl=akidb kind=build seconds=%.3f cpu_seconds=%.3f batch=%u\n", build_s,
           build_cpu, o.batch);
    printf("RESULT impl=akidb kind=memory rss_start_kb=%ld rss_data_kb=%ld rss_build_kb=%ld "
           "hwm_build_kb=%ld index_kb=%ld\n",
           rss_start, rss_data, rss_build, hwm_build, rss_build - rss_data);
    if (id_index_build(&ix, ids, n) != 0) {
        fprintf(stderr, "bench_hnsw: out of memory\n");
        goto out;
    }

    /* Ground truth: cached, or AkiDB exact cross-checked by brute force. */
    {
        uint64_t sum = bench_checksum(base, (size_t)n * dim) ^
                       bench_checksum(queries, (size_t)nq * dim);
        if (bench_gt_load(o.gt, n, nq, dim, BENCH_K, sum, &gt) == 0 &&
            gt.source == BENCH_GT_SRC_AKIDB_EXACT) {
            printf("ground truth: cached in %s\n", o.gt);
            printf("RESULT impl=akidb kind=gt source=cache seconds=0 verified=0 mismatches=0\n");
        } else {
            uint32_t n_verify = o.verify < nq ? o.verify : nq, mismatches = 0;
            uint32_t bids[BENCH_K];
            int64_t bdist[BENCH_K];
            double gt_s, v_s;
            bench_gt_free(&gt);
            if (bench_gt_alloc(&gt, n, nq, dim, BENCH_K, sum) != 0) {
                fprintf(stderr, "bench_hnsw: out of memory\n");
                goto out;
            }
            t0 = bench_now();
            if (gt_by_akidb(db, &ix, base, queries, &gt) != 0)
                goto out;
            gt_s = bench_now() - t0;
            t0 = bench_now();
            for (i = 0; i < n_verify; i++) {
                bench_brute_topk(base, n, dim, queries + (size_t)i * dim, BENCH_K, bids, bdist);
                /* Distances must agree exactly; rows may differ only on ties. */
                if (memcmp(bdist, gt.dist + (size_t)i * BENCH_K, sizeof bdist) != 0)
                    mismatches++;
            }
            v_s = bench_now() - t0;
            printf("ground truth: AkiDB exact for %u queries in %.1f s; brute-force check of "
                   "%u queries in %.1f s: %u mismatching\n",
                   nq, gt_s, n_verify, v_s, mismatches);
            printf("RESULT impl=akidb kind=gt source=akidb-exact seconds=%.3f verified=%u "
                   "mismatches=%u\n",
                   gt_s, n_verify, mismatches);
            if (mismatches) {
                fprintf(stderr, "bench_hnsw: WARNING: AkiDB exact search disagrees with brute "
                                "force on %u of %u queries; scoring against brute force\n",
                        mismatches, n_verify);
                t0 = bench_now();
                bench_gt_brute(&gt, base, queries);
                printf("ground truth: brute force for %u queries in %.1f s\n", nq,
                       bench_now() - t0);
            }
            if (bench_gt_save(o.gt, &gt) != 0)
                goto out;
        }
    }

    /* Approximate search: best of `passes` over all queries, per ef. */
    akidb_search_params_init(&sp);
    for (e = 0; e < (uint32_t)o.n_efs; e++) {
        double best = 1e30, cpu_best = 0, cpu_min = 1e30, recall, recall_ids;
        sp.ef = o.efs[e];
        sp.exact = 0;
        for (p = 0; p < o.passes; p++) {
            double t, c;
            t0 = bench_now();
            c0 = bench_cpu_now();
            for (i = 0; i < nq; i++) {
                uint32_t n_hits = 0, j;
                rc = akidb_search(db, COLL, queries + (size_t)i * dim, BENCH_K, &sp, hits,
                                  &n_hits);
                if (rc != AKIDB_OK) {
                    fail_akidb(db, "search", rc);
                    goto out;
                }
                for (j = 0; j < BENCH_K; j++)
                    raw[(size_t)i * BENCH_K + j] = j < n_hits ? hits[j].id : UINT64_MAX;
            }
            t = bench_now() - t0;
            c = bench_cpu_now() - c0;
            if (t < best) {
                best = t;
                cpu_best = c;
            }
            if (c < cpu_min)
                cpu_min = c;
        }
        for (i = 0; i < nq * BENCH_K; i++)
            rows[i] = id_index_row(&ix, raw[i]);
        recall = bench_recall(&gt, base, queries, rows, &recall_ids);
        printf("ef=%-4u recall@10 %.4f (id overlap %.4f)  %8.0f QPS\n", o.efs[e], recall,
               recall_ids, nq / best);
        printf("RESULT impl=akidb kind=search ef=%u recall=%.4f recall_ids=%.4f qps=%.1f "
               "qps_cpu=%.1f cpu_per_wall=%.2f\n",
               o.efs[e], recall, recall_ids, nq / best, nq / cpu_min, cpu_best / best);
    }

    /* Exact search bandwidth versus the machine's memory bandwidth.  The
     * two alternate (exact pass, memory pass, ...) and each keeps its best,
     * so both bests come from the same stretch of time on a shared host. */
    if (o.exact_queries > 0) {
        uint32_t nx = o.exact_queries < nq ? o.exact_queries : nq;
        uint32_t n_rounds = o.passes > 5 ? o.passes : 5;
        size_t mbytes = (size_t)o.membw_mib << 20;
        double best = 1e30, cpu_best = 0, bytes = (double)n * dim * sizeof(float), gbps;
        double mbw = 0, sink = 0;
        float *mbuf = bench_membw_alloc(mbytes);
        if (!mbuf) {
            fprintf(stderr, "bench_hnsw: cannot allocate %u MiB for the bandwidth test\n",
                    o.membw_mib);
            goto out;
        }
        sp.ef = 0;
        sp.exact = 1;
        for (p = 0; p < n_rounds; p++) {
            double t, c, m;
            t0 = bench_now();
            c0 = bench_cpu_now();
            for (i = 0; i < nx; i++) {
                uint32_t n_hits = 0;
                rc = akidb_search(db, COLL, queries + (size_t)i * dim, BENCH_K, &sp, hits,
                                  &n_hits);
                if (rc != AKIDB_OK) {
                    free(mbuf);
                    fail_akidb(db, "exact search", rc);
                    goto out;
                }
            }
            t = bench_now() - t0;
            c = bench_cpu_now() - c0;
            if (t < best) {
                best = t;
                cpu_best = c;
            }
            m = bench_membw_pass(mbuf, mbytes, &sink);
            if (m > mbw)
                mbw = m;
        }
        free(mbuf);
        gbps = bytes * nx / best / 1e9;
        printf("exact: %.2f ms/query = %.2f GB/s of vectors; memory read bandwidth %.2f GB/s "
               "(1 thread, %u MiB); ratio %.2f (best of %u alternating passes each)\n",
               best / nx * 1e3, gbps, mbw, o.membw_mib, gbps / mbw, n_rounds);
        printf("RESULT impl=akidb kind=exact queries=%u ms_per_query=%.3f gbps=%.3f "
               "membw_gbps=%.3f ratio=%.3f cpu_per_wall=%.2f sink=%g\n",
               nx, best / nx * 1e3, gbps, mbw, gbps / mbw, cpu_best / best, sink > 0 ? 1.0 : 0.0);
    }

    bench_rss_kb(&rss_end, &hwm_end);
    printf("RESULT impl=akidb kind=memory_end rss_end_kb=%ld hwm_end_kb=%ld\n", rss_end, hwm_end);
    ret = 0;
out:
    if (db)
        akidb_close(db);
    if (have_dir)
        nftw(dbdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    bench_gt_free(&gt);
    free(ix.sorted);
    free(ids);
    free(raw);
    free(rows);
    free(base);
    free(queries);
    return ret;
}
