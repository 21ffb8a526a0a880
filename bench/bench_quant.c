/*
 * bench_quant.c - the AkiDB side of the quantized-storage benchmark
 * (issue 16): one collection of one storage kind (f32, f16 or int8) on one
 * prepared data set, through include/akidb.h only.
 *
 *   bench_quant --data DIR --set STEM --storage f32|f16|int8 [--impl NAME]
 *               [--exact ram|file|none] [--rerank N] [--efs 10,16,...]
 *               [--passes 3] [--workdir DIR] [--batch 1000]
 *               [--sync default|always|interval|none] [--check-codes N]
 *               [--m 16] [--efc 200] [--budget BYTES] [--cold 1]
 *
 * As bench_hnsw: M=16, ef_construction=200 (--m, --efc), default open
 * options (sync
 * ALWAYS) with the index-lag bound off, so the build time runs from the
 * first insert until akidb_index_wait returns (the indexer thread links
 * every vector); index memory is VmRSS after the build minus VmRSS after
 * the data was loaded.  Then, per ef, recall@10 and QPS over all queries
 * on one thread (fastest of --passes), scored by quant_common.  Every
 * side is measured after a checkpoint (AKIDB_EXACT_FILE's vectors are in
 * the file then).  --budget sets akidb_options.memory_budget: after the
 * build the tier worker runs once, and the collection's tier and the
 * bytes the budget counts (akidb_collection_stat) are reported (the
 * million-vector run of docs/BENCHMARKS.md).  --cold 1 measures each ef
 * with a cold page cache instead: before the ef's one timed pass (no
 * warm-up, no best of several) every file of the database is dropped
 * from the page cache (posix_fadvise DONTNEED, which drops clean pages
 * only: the checkpoint was synced), and the pages still resident after
 * that are counted with mincore and reported, so a run where the drop
 * did not happen shows it.  What this measures is AKIDB_EXACT_FILE's
 * re-ranking reads coming from the disk (the compact vectors and the
 * graph are in RAM either way); for the other modes it is a control.
 *
 * The storage kind, where the exact vectors live and the re-rank factor
 * are fields of akidb_collection_config version 2 (storage, exact,
 * rerank).  They are enums, which the preprocessor cannot see, so the
 * code tests the struct's version macro: built against a library whose
 * config is version 1, only f32 runs and the other kinds report
 * "kind=skipped" and exit 3 (the run script shows them as not run).
 *
 * Output: human-readable lines and `RESULT impl=... set=... kind=...`
 * lines for bench/quant_report.py.
 */
#define _GNU_SOURCE
#include "akidb.h"
#include "quant_common.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define COLL "quant"
#define EXIT_SKIPPED 3

#if AKIDB_COLLECTION_CONFIG_VERSION >= 2
#define HAVE_STORAGE 1
#else
#define HAVE_STORAGE 0
#endif

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_quant --data DIR --set STEM --storage f32|f16|int8 [--impl NAME]\n"
            "                   [--exact ram|file|none] [--rerank N] [--efs 10,16,...]\n"
            "                   [--passes 3] [--workdir DIR] [--batch 1000]\n"
            "                   [--sync default|always|interval|none] [--check-codes N]\n"
            "                   [--m 16] [--efc 200] [--budget BYTES] [--cold 1]\n");
    exit(2);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

typedef struct search_ctx {
    akidb *db;
    const quant_set *s;
    akidb_search_params sp;
    uint64_t first_id;
} search_ctx;

static int search_one(void *vctx, uint32_t q, uint32_t *rows)
{
    search_ctx *c = vctx;
    akidb_hit hits[QUANT_K];
    uint32_t n_hits = 0, j;
    int rc = akidb_search(c->db, COLL, c->s->queries.v + (size_t)q * c->s->queries.dim, QUANT_K,
                          &c->sp, hits, &n_hits);
    if (rc != AKIDB_OK) {
        fprintf(stderr, "bench_quant: search: %s (%s)\n", akidb_errstr(rc), akidb_errmsg(c->db));
        return -1;
    }
    for (j = 0; j < QUANT_K; j++) {
        uint64_t r = j < n_hits ? hits[j].id - c->first_id : UINT64_MAX;
        rows[j] = r < c->s->base.n ? (uint32_t)r : QUANT_NO_ROW;
    }
    return 0;
}

/* --cold: what evict_entry saw, summed over the database's files (nftw
 * callbacks take no context). */
static uint64_t cold_pages, cold_resident;
static int cold_errno;

/* Drop one file's pages from the page cache, then count the pages still
 * resident (mmap does not fault them in; mincore only looks). */
static int evict_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n_pages, i;
    unsigned char *resident = NULL;
    void *map = MAP_FAILED;
    int fd, err;

    (void)ftw;
    if (flag != FTW_F || !S_ISREG(st->st_mode) || st->st_size == 0)
        return 0;
    n_pages = ((size_t)st->st_size + page - 1) / page;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        goto fail;
    }
    if ((err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)) != 0)
        goto fail;
    map = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_SHARED, fd, 0);
    resident = malloc(n_pages);
    if (map == MAP_FAILED || !resident || mincore(map, (size_t)st->st_size, resident) != 0) {
        err = resident ? errno : ENOMEM;
        goto fail;
    }
    for (i = 0; i < n_pages; i++)
        cold_resident += resident[i] & 1;
    cold_pages += n_pages;
    err = 0;
fail:
    if (err && !cold_errno) {
        cold_errno = err;
        fprintf(stderr, "bench_quant: --cold: %s: %s\n", path, strerror(err));
    }
    if (map != MAP_FAILED)
        munmap(map, (size_t)st->st_size);
    free(resident);
    if (fd >= 0)
        close(fd);
    return err ? -1 : 0;
}

/* One ef with a cold page cache: drop the database's pages, then one
 * timed pass over every query (see the file's header). */
static int measure_cold(const char *impl, const char *dbdir, const quant_set *s, uint32_t ef,
                        search_ctx *ctx, uint32_t *rows)
{
    double t0, c0, wall, cpu, recall, recall_ids;
    uint32_t q, nq = s->queries.n;

    cold_pages = cold_resident = 0;
    cold_errno = 0;
    if (nftw(dbdir, evict_entry, 16, FTW_PHYS) != 0 || cold_errno) {
        fprintf(stderr, "bench_quant: --cold: could not drop %s from the page cache\n", dbdir);
        return -1;
    }
    t0 = quant_now();
    c0 = quant_cpu_now();
    for (q = 0; q < nq; q++)
        if (search_one(ctx, q, rows + (size_t)q * QUANT_K) != 0)
            return -1;
    wall = quant_now() - t0;
    cpu = quant_cpu_now() - c0;
    recall = quant_recall(&s->gt, &s->base, &s->queries, rows, &recall_ids);
    printf("%-14s ef=%-4u recall@10 %.4f (id overlap %.4f)  %8.0f QPS, cold page cache "
           "(%llu of %llu pages resident after the drop), cpu/wall %.2f\n",
           impl, ef, recall, recall_ids, nq / wall, (unsigned long long)cold_resident,
           (unsigned long long)cold_pages, cpu / wall);
    printf("RESULT impl=%s set=%s kind=search_cold ef=%u recall=%.4f recall_ids=%.4f qps=%.1f "
           "cpu_per_wall=%.2f pages=%llu resident_after_drop=%llu\n",
           impl, s->name, ef, recall, recall_ids, nq / wall, cpu / wall,
           (unsigned long long)cold_pages, (unsigned long long)cold_resident);
    return 0;
}

/* Does quant_common's int8 quantiser (the one usearch i8 is fed with)
 * make the same codes as the library?  Only visible without exact
 * vectors (AKIDB_EXACT_NONE), where akidb_get returns the decoded compact
 * vector, offset[d] + scale * code.  The library trains on the first
 * CHECK_TRAIN_ROWS vectors linked (AKIDB__TRAIN_ROWS_DEFAULT, an internal
 * constant mirrored here), so the check trains on those rows too; the
 * usearch side trains on the whole base, as the benchmark's spec says.
 * Outside any timing.  Returns 0, or -1 when akidb_get fails. */
#define CHECK_TRAIN_ROWS 4096
static int check_codes_against(akidb *db, const quant_set *s, uint64_t first_id, uint32_t n_check,
                               const char *impl)
{
    quant_vectors head = s->base;
    quant_i8 q8 = {0, 0, NULL};
    float *got = malloc((size_t)s->base.dim * sizeof *got);
    int8_t *code = malloc(s->base.dim);
    uint64_t bad_values = 0;
    uint32_t bad_rows = 0, exact_rows = 0, i, d, step;
    int ret = -1;

    if (head.n > CHECK_TRAIN_ROWS)
        head.n = CHECK_TRAIN_ROWS;
    if (!got || !code || quant_i8_train(&q8, &head) != 0) {
        fprintf(stderr, "bench_quant: out of memory\n");
        goto fail;
    }
    if (n_check > s->base.n)
        n_check = s->base.n;
    step = s->base.n / n_check;
    for (i = 0; i < n_check; i++) {
        uint32_t row = i * step, row_bad = 0, row_exact = 0;
        const float *x = s->base.v + (size_t)row * s->base.dim;
        int rc = akidb_get(db, COLL, first_id + row, got, NULL);
        if (rc != AKIDB_OK) {
            fprintf(stderr, "bench_quant: get: %s (%s)\n", akidb_errstr(rc), akidb_errmsg(db));
            goto fail;
        }
        quant_i8_encode(&q8, x, code);
        for (d = 0; d < s->base.dim; d++) {
            row_bad += got[d] != q8.offset[d] + q8.scale * (float)code[d];
            row_exact += got[d] == x[d];
        }
        if (row_bad && row_exact == s->base.dim) {
            /* akidb.h: the newest, partly filled block keeps exact vectors */
            exact_rows++;
            continue;
        }
        if (row_bad && bad_rows < 3)
            printf("int8 codes: row %u: %u of %u values differ (first: got %g, expected %g "
                   "from %g)\n", row, row_bad, s->base.dim, got[0],
                   q8.offset[0] + q8.scale * (float)code[0], x[0]);
        bad_values += row_bad;
        bad_rows += row_bad != 0;
    }
    printf("int8 codes: %u rows read back: %u decode from quant_common's codes, %u differ "
           "(%llu values), %u still exact (the newest block)\n",
           n_check, n_check - bad_rows - exact_rows, bad_rows, (unsigned long long)bad_values,
           exact_rows);
    printf("RESULT impl=%s set=%s kind=codes rows=%u rows_differing=%u values_differing=%llu "
           "rows_exact=%u train_rows=%d\n",
           impl, s->name, n_check, bad_rows, (unsigned long long)bad_values, exact_rows,
           CHECK_TRAIN_ROWS);
    ret = 0;
fail:
    quant_i8_free(&q8);
    free(got);
    free(code);
    return ret;
}

int main(int argc, char **argv)
{
    const char *data = "build/bench/quant", *set = NULL, *storage = "f32", *impl = NULL;
    const char *exact = NULL, *workdir = "build/bench", *sync = "default";
    uint32_t rerank = 0, passes = 3, batch = 1000, check_codes = 0, efs[QUANT_MAX_EFS], i, n, dim;
    uint32_t m = 16, efc = 200, cold = 0;
    unsigned long long budget = 0;
    int n_efs = quant_parse_list("10,16,24,32,48,64,96,128,192,256", efs, QUANT_MAX_EFS);
    int e, rc, ret = 1, have_dir = 0;
    char dbdir[4096], implbuf[64];
    quant_set s;
    akidb *db = NULL;
    akidb_options aopts;
    akidb_collection_config cfg;
    uint64_t *ids = NULL;
    uint32_t *rows = NULL;
    long rss_start, hwm_start, rss_data, hwm_data, rss_build, hwm_build, rss_end, hwm_end;
    long rss_settled, hwm_settled;
    double t0, c0, ack_s, build_s, build_cpu;
    search_ctx ctx;

    for (i = 1; i < (uint32_t)argc; i++) {
        const char *a = argv[i], *v = i + 1 < (uint32_t)argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--set")) set = v;
        else if (!strcmp(a, "--storage")) storage = v;
        else if (!strcmp(a, "--impl")) impl = v;
        else if (!strcmp(a, "--exact")) exact = v;
        else if (!strcmp(a, "--rerank")) rerank = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--passes")) passes = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--batch")) batch = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--check-codes")) check_codes = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--workdir")) workdir = v;
        else if (!strcmp(a, "--sync")) sync = v;
        else if (!strcmp(a, "--m")) m = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--efc")) efc = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--budget")) budget = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--cold")) cold = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--efs")) {
            if ((n_efs = quant_parse_list(v, efs, QUANT_MAX_EFS)) == 0)
                usage();
        } else
            usage();
    }
    if (!set || passes == 0 || batch == 0)
        usage();
    if (strcmp(storage, "f32") && strcmp(storage, "f16") && strcmp(storage, "int8"))
        usage();
    if (!impl) {
        snprintf(implbuf, sizeof implbuf, "akidb-%s", storage);
        impl = implbuf;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Kinds this library cannot make: say so before loading anything. */
    if (!HAVE_STORAGE && (strcmp(storage, "f32") != 0 || exact || rerank)) {
        printf("bench_quant: %s: this libakidb (%s) has akidb_collection_config version %d, "
               "without storage kinds: not run\n",
               impl, akidb_version(), AKIDB_COLLECTION_CONFIG_VERSION);
        printf("RESULT impl=%s set=%s kind=skipped reason=config_version_%d\n", impl, set,
               AKIDB_COLLECTION_CONFIG_VERSION);
        return EXIT_SKIPPED;
    }

    quant_rss_kb(&rss_start, &hwm_start);
    if (quant_set_load(data, set, &s) != 0)
        return 1;
    n = s.base.n;
    dim = s.base.dim;
    ids = malloc((size_t)n * sizeof *ids);
    rows = malloc((size_t)s.queries.n * QUANT_K * sizeof *rows);
    if (!ids || !rows) {
        fprintf(stderr, "bench_quant: out of memory\n");
        goto out;
    }
    memset(ids, 0, (size_t)n * sizeof *ids);
    memset(rows, 0, (size_t)s.queries.n * QUANT_K * sizeof *rows);
    quant_rss_settled_kb(&rss_data, &hwm_data);

    akidb_options_init(&aopts);
    if (!strcmp(sync, "always")) aopts.sync_mode = AKIDB_SYNC_ALWAYS;
    else if (!strcmp(sync, "interval")) aopts.sync_mode = AKIDB_SYNC_INTERVAL;
    else if (!strcmp(sync, "none")) aopts.sync_mode = AKIDB_SYNC_NONE;
    else if (strcmp(sync, "default") != 0)
        usage();
    aopts.max_index_lag = AKIDB_NEVER;
    if (budget) {
        aopts.memory_budget = budget;
        aopts.tier_interval_ms = AKIDB_NEVER;   /* run once below, after the build */
    }

    akidb_collection_config_init(&cfg, dim, AKIDB_METRIC_L2);
    cfg.hnsw_m = m;
    cfg.ef_construction = efc;
#if HAVE_STORAGE
    if (!strcmp(storage, "f16"))
        cfg.storage = AKIDB_STORAGE_F16;
    else if (!strcmp(storage, "int8"))
        cfg.storage = AKIDB_STORAGE_INT8;
    else
        cfg.storage = AKIDB_STORAGE_F32;
    if (exact) {
        if (!strcmp(exact, "ram"))
            cfg.exact = AKIDB_EXACT_RAM;
        else if (!strcmp(exact, "none"))
            cfg.exact = AKIDB_EXACT_NONE;
        else if (!strcmp(exact, "file"))
            cfg.exact = AKIDB_EXACT_FILE;
        else
            usage();
    }
    if (rerank)
        cfg.rerank = rerank;
    printf("RESULT impl=%s set=%s kind=info version=%s storage=%s exact=%d rerank=%u n=%u "
           "nq=%u dim=%u k=%d m=%u efc=%u passes=%u\n",
           impl, set, akidb_version(), storage, (int)cfg.exact, (unsigned)cfg.rerank, n,
           s.queries.n, dim, QUANT_K, m, efc, passes);
#else
    printf("RESULT impl=%s set=%s kind=info version=%s storage=f32 exact=ram rerank=0 n=%u "
           "nq=%u dim=%u k=%d m=%u efc=%u passes=%u\n",
           impl, set, akidb_version(), n, s.queries.n, dim, QUANT_K, m, efc, passes);
#endif
    printf("akidb %s %s: %s, %u x %u, %u queries\n", akidb_version(), storage, set, n, dim,
           s.queries.n);

    /* On disk under workdir (not /tmp, which may be tmpfs). */
    mkdir(workdir, 0777);
    snprintf(dbdir, sizeof dbdir, "%s/akidb-quant-XXXXXX", workdir);
    if (!mkdtemp(dbdir)) {
        fprintf(stderr, "bench_quant: mkdtemp %s: %s\n", dbdir, strerror(errno));
        goto out;
    }
    have_dir = 1;
    rc = akidb_open(dbdir, &aopts, &db);
    if (rc != AKIDB_OK) {
        fprintf(stderr, "bench_quant: open: %s\n", akidb_errstr(rc));
        goto out;
    }
    rc = akidb_collection_create(db, COLL, &cfg);
    if (rc != AKIDB_OK) {
        fprintf(stderr, "bench_quant: collection_create (%s): %s (%s)\n", storage,
                akidb_errstr(rc), akidb_errmsg(db));
        goto out;
    }

#if HAVE_STORAGE
    {
        /* What the library recorded (rerank 0 = its default), for the log. */
        akidb_collection_config got;
        akidb_collection_config_init(&got, dim, AKIDB_METRIC_L2);
        rc = akidb_collection_info(db, COLL, &got);
        if (rc != AKIDB_OK) {
            fprintf(stderr, "bench_quant: collection_info: %s (%s)\n", akidb_errstr(rc),
                    akidb_errmsg(db));
            goto out;
        }
        printf("RESULT impl=%s set=%s kind=config storage=%d exact=%d rerank=%u\n", impl, set,
               (int)got.storage, (int)got.exact, (unsigned)got.rerank);
    }
#endif

    t0 = quant_now();
    c0 = quant_cpu_now();
    for (i = 0; i < n; i += batch) {
        uint32_t chunk = n - i < batch ? n - i : batch;
        rc = akidb_insert(db, COLL, chunk, s.base.v + (size_t)i * dim, NULL, NULL, ids + i);
        if (rc != AKIDB_OK) {
            fprintf(stderr, "bench_quant: insert: %s (%s)\n", akidb_errstr(rc), akidb_errmsg(db));
            goto out;
        }
    }
    ack_s = quant_now() - t0;
    rc = akidb_index_wait(db, COLL, AKIDB_NEVER);
    if (rc != AKIDB_OK) {
        fprintf(stderr, "bench_quant: index_wait: %s (%s)\n", akidb_errstr(rc), akidb_errmsg(db));
        goto out;
    }
    build_s = quant_now() - t0;
    build_cpu = quant_cpu_now() - c0;
    /* Every side is measured as after a checkpoint, the steady state of
     * a database (the log has been written out): for AKIDB_EXACT_FILE it
     * is what moves the exact vectors from RAM to the file. */
    t0 = quant_now();
    rc = akidb_checkpoint(db, COLL);
    if (rc != AKIDB_OK) {
        fprintf(stderr, "bench_quant: checkpoint: %s (%s)\n", akidb_errstr(rc), akidb_errmsg(db));
        goto out;
    }
    printf("RESULT impl=%s set=%s kind=checkpoint seconds=%.3f\n", impl, set, quant_now() - t0);
    quant_rss_kb(&rss_build, &hwm_build);
    quant_rss_settled_kb(&rss_settled, &hwm_settled);
    for (i = 0; i < n; i++)
        if (ids[i] != ids[0] + i) {
            fprintf(stderr, "bench_quant: ids are not dense (id %llu at row %u after %llu)\n",
                    (unsigned long long)ids[i], i, (unsigned long long)ids[0]);
            goto out;
        }
    printf("build: %.2f s (cpu %.2f s), inserts acknowledged after %.2f s; index %.1f MiB\n",
           build_s, build_cpu, ack_s, (rss_settled - rss_data) / 1024.0);
    printf("RESULT impl=%s set=%s kind=build seconds=%.3f cpu_seconds=%.3f ack_seconds=%.3f\n",
           impl, set, build_s, build_cpu, ack_s);
    printf("RESULT impl=%s set=%s kind=memory rss_data_kb=%ld rss_build_kb=%ld hwm_build_kb=%ld "
           "index_kb=%ld index_raw_kb=%ld\n",
           impl, set, rss_data, rss_build, hwm_build, rss_settled - rss_data,
           rss_build - rss_data);

    {
        /* What the memory budget counts, by component (akidb.h) */
        akidb_collection_stats st;
        akidb_tier tier = AKIDB_TIER_HOT;
        memset(&st, 0, sizeof st);
        st.version = AKIDB_COLLECTION_STATS_VERSION;
        rc = akidb_collection_stat(db, COLL, &st);
        if (rc == AKIDB_OK && budget)
            rc = akidb_tier_run_once(db);
        if (rc == AKIDB_OK)
            rc = akidb_tier_get(db, COLL, &tier);
        if (rc != AKIDB_OK) {
            fprintf(stderr, "bench_quant: stats/tier: %s (%s)\n", akidb_errstr(rc),
                    akidb_errmsg(db));
            goto out;
        }
        printf("counted bytes: %.1f MiB (vectors %.1f, compact %.1f, graph %.1f, documents "
               "%.1f); budget %.1f MiB; tier %s\n", st.bytes / 1048576.0,
               st.vector_bytes / 1048576.0, st.compact_bytes / 1048576.0,
               st.graph_bytes / 1048576.0, st.document_bytes / 1048576.0, budget / 1048576.0,
               tier == AKIDB_TIER_HOT ? "hot" : "not hot");
        printf("RESULT impl=%s set=%s kind=bytes total=%llu vectors=%llu compact=%llu graph=%llu "
               "documents=%llu budget=%llu tier=%d\n",
               impl, set, (unsigned long long)st.bytes, (unsigned long long)st.vector_bytes,
               (unsigned long long)st.compact_bytes, (unsigned long long)st.graph_bytes,
               (unsigned long long)st.document_bytes, budget, (int)tier);
        if (budget && tier != AKIDB_TIER_HOT) {
            fprintf(stderr, "bench_quant: the collection left HOT under a budget of %llu bytes\n",
                    budget);
            goto out;
        }
    }
    if (check_codes && check_codes_against(db, &s, ids[0], check_codes, impl) != 0)
        goto out;

    memset(&ctx, 0, sizeof ctx);
    ctx.db = db;
    ctx.s = &s;
    ctx.first_id = ids[0];
    akidb_search_params_init(&ctx.sp);
    for (e = 0; e < n_efs; e++) {
        ctx.sp.ef = efs[e];
        if (cold ? measure_cold(impl, dbdir, &s, efs[e], &ctx, rows)
                 : quant_measure_ef(impl, &s, efs[e], passes, search_one, &ctx, rows))
            goto out;
    }
    quant_rss_kb(&rss_end, &hwm_end);
    printf("RESULT impl=%s set=%s kind=memory_end rss_end_kb=%ld hwm_end_kb=%ld\n", impl, set,
           rss_end, hwm_end);
    ret = 0;
out:
    if (db)
        akidb_close(db);
    if (have_dir)
        nftw(dbdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    quant_set_free(&s);
    free(ids);
    free(rows);
    return ret;
}
