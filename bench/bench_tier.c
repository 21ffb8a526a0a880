/*
 * bench_tier.c - the tiering benchmark (issue 12): how long each tier
 * transition takes for N x 512-d collections, against the mock store or a
 * real S3 server, with the physical floors measured in the same run:
 *
 *   HOT -> WARM                 akidb_tier_set(WARM): checkpoint + free
 *   WARM -> HOT                 the first search after WARM (load + search)
 *     vs `cat CKPT > /dev/null` from the page cache, and vs touching as
 *     many bytes of fresh memory as the collection holds (mmap + one write
 *     per page: the other floor of a load, which cat does not pay; on a
 *     virtual machine it can be the larger one)
 *   WARM -> COLD                akidb_tier_set(COLD): upload + read back
 *   COLD -> HOT                 the first search after COLD (download,
 *                               checks, local copy, load, search)
 *     vs a plain `curl` GET of the same object to /dev/null (S3 only)
 *   RSS                         before the collection existed, HOT, after
 *                               its demotion (target: within 10% of before)
 *   ZSTD snapshot vs checkpoint as the cold object: size, upload, load
 *   hot search P99 while another collection is demoted and promoted in a
 *     loop, against the P99 with nothing moving (same process, same run)
 *
 *   bench_tier --n N [--dim 512] [--rounds 3] [--store mock|s3] --dir DIR
 *              [--p99]
 *
 * --store s3 reads AKIDB_TEST_S3_* (scripts/with-s3.sh sets them).  Lines
 * "result NAME VALUE" on stdout carry the figures (seconds, bytes, KiB);
 * bench/run_tier_bench.sh turns them into docs/BENCHMARKS.md's tables.
 * Public API only, plus the directory layout of the checkpoints
 * (DIR/ckpt/N.ckpt) to time `cat` on the same file.
 */
#define _GNU_SOURCE
#include <glob.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "akidb.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (!f || fscanf(f, "%ld %ld", &pages, &res) != 2)
        res = -1;
    if (f)
        fclose(f);
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_tier: %s: %s: %s\n", what, akidb_errname(rc), akidb_errmsg(NULL));
    exit(1);
}
#define CHECK(call, what) do { int rc_ = (call); if (rc_) die(what, rc_); } while (0)

static uint64_t rng_state = 12345;
static float rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

static void result(const char *name, double v)
{
    printf("result %s %.6f\n", name, v);
    fflush(stdout);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double percentile(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    int i = (int)ceil(p * n) - 1;
    return v[i < 0 ? 0 : i];
}

/* Fill collection `name` with n random dim-vectors, 1000 at a time (no
 * copy of the whole set stays in this process: the RSS figures are the
 * library's), and wait until the graph holds all of them: inserts are
 * acknowledged before the background indexer links them, and a tail
 * still being linked would both change what a transition moves (the
 * unlinked tail is saved and loaded as a tail) and compete with the
 * searches of the P99 part for the collection's lock. */
static void fill(akidb *db, const char *name, uint32_t n, uint32_t dim)
{
    float *v = malloc((size_t)1000 * dim * sizeof *v);
    for (uint32_t done = 0; done < n; done += 1000) {
        uint32_t k = n - done < 1000 ? n - done : 1000;
        for (size_t i = 0; i < (size_t)k * dim; i++)
            v[i] = rnd();
        CHECK(akidb_insert(db, name, k, v, NULL, NULL, NULL), "insert");
    }
    free(v);
    CHECK(akidb_index_wait(db, name, AKIDB_NEVER), "index wait");
}

static void search_once(akidb *db, const char *name, uint32_t dim)
{
    float q[4096];
    for (uint32_t i = 0; i < dim; i++)
        q[i] = rnd();
    akidb_hit hits[10];
    uint32_t nh = 0;
    CHECK(akidb_search(db, name, q, 10, NULL, hits, &nh), "search");
    if (nh != 10) {
        fprintf(stderr, "bench_tier: search found %u hits\n", nh);
        exit(1);
    }
}

/* Seconds a shell command takes (fork/exec included: ~1 ms). */
static double time_cmd(const char *cmd)
{
    double t0 = now();
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_tier: command failed: %s\n", cmd);
        exit(1);
    }
    return now() - t0;
}

/* Seconds to map and first touch `bytes` of fresh anonymous memory (the
 * kernel zeroes every page on its first fault). */
static double touch_fresh(size_t bytes)
{
    double t0 = now();
    unsigned char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "bench_tier: mmap of %zu bytes failed\n", bytes);
        exit(1);
    }
    for (size_t i = 0; i < bytes; i += 4096)
        p[i] = 1;
    double t = now() - t0;
    munmap(p, bytes);
    return t;
}

/* curl's own time_total for a signed GET of `key` to /dev/null. */
static double curl_get(const char *key, uint64_t want)
{
    char cmd[4096];
    const char *ep = getenv("AKIDB_TEST_S3_ENDPOINT"), *bk = getenv("AKIDB_TEST_S3_BUCKET");
    const char *ak = getenv("AKIDB_TEST_S3_ACCESS_KEY"), *sk = getenv("AKIDB_TEST_S3_SECRET_KEY");
    const char *rg = getenv("AKIDB_TEST_S3_REGION");
    snprintf(cmd, sizeof cmd, "curl -s --noproxy '*' --max-time 110 -o /dev/null "
             "-w '%%{http_code} %%{size_download} %%{time_total}' --aws-sigv4 'aws:amz:%s:s3' "
             "--user '%s:%s' -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' '%s/%s/%s'",
             rg ? rg : "us-east-1", ak, sk, ep, bk, key);
    FILE *p = popen(cmd, "r");
    int code = 0;
    unsigned long long got = 0;
    double secs = -1;
    if (!p || fscanf(p, "%d %llu %lf", &code, &got, &secs) != 3 || code != 200 || got != want) {
        fprintf(stderr, "bench_tier: curl GET %s: HTTP %d, %llu bytes (want %llu)\n", key, code,
                got, (unsigned long long)want);
        exit(1);
    }
    pclose(p);
    return secs;
}

static akidb_store *open_store(const char *kind)
{
    akidb_store *s = NULL;
    if (strcmp(kind, "mock") == 0) {
        CHECK(akidb_store_mock_open(&s), "mock store");
    } else {
        akidb_s3_config c;
        akidb_s3_config_init(&c);
        c.endpoint = getenv("AKIDB_TEST_S3_ENDPOINT");
        c.access_key = getenv("AKIDB_TEST_S3_ACCESS_KEY");
        c.secret_key = getenv("AKIDB_TEST_S3_SECRET_KEY");
        c.bucket = getenv("AKIDB_TEST_S3_BUCKET");
        c.region = getenv("AKIDB_TEST_S3_REGION");
        if (!c.endpoint || !c.bucket) {
            fprintf(stderr, "bench_tier: --store s3 needs AKIDB_TEST_S3_* (scripts/with-s3.sh)\n");
            exit(1);
        }
        CHECK(akidb_store_s3_open(&c, &s), "s3 store");
    }
    return s;
}

static void the_ckpt(const char *dir, char *out, size_t len)
{
    char pat[1024];
    snprintf(pat, sizeof pat, "%s/ckpt/*.ckpt", dir);
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0 || g.gl_pathc < 1) {
        fprintf(stderr, "bench_tier: no checkpoint under %s/ckpt\n", dir);
        exit(1);
    }
    snprintf(out, len, "%s", g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
}

/* ---- P99 of a hot collection while another moves --------------------- */

typedef struct mover {
    akidb *db;
    const char *name;
    uint32_t dim;
    volatile int stop;
    int moves;
} mover;

static void *move_loop(void *p)
{
    mover *m = p;
    /* As the library's worker thread does (tier.c, background_priority). */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    akidb_tier seq[] = { AKIDB_TIER_WARM, AKIDB_TIER_HOT, AKIDB_TIER_COLD, AKIDB_TIER_HOT };
    while (!__atomic_load_n(&m->stop, __ATOMIC_RELAXED)) {
        CHECK(akidb_tier_set(m->db, m->name, seq[m->moves % 4]), "move");
        m->moves++;
    }
    return NULL;
}

static void search_p99(akidb *db, const char *name, uint32_t dim, int n, double *p50,
                       double *p99)
{
    double *lat = malloc((size_t)n * sizeof *lat);
    for (int i = 0; i < n; i++) {
        double t0 = now();
        search_once(db, name, dim);
        lat[i] = now() - t0;
    }
    *p99 = percentile(lat, n, 0.99);
    *p50 = percentile(lat, n, 0.50);
    free(lat);
}

int main(int argc, char **argv)
{
    uint32_t n = 10000, dim = 512;
    int rounds = 3, p99 = 0;
    const char *store_kind = "mock", *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) n = (uint32_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc) dim = (uint32_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--store") && i + 1 < argc) store_kind = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--p99")) p99 = 1;
        else {
            fprintf(stderr, "usage: bench_tier --n N [--dim D] [--rounds R] "
                    "[--store mock|s3] --dir DIR [--p99]\n");
            return 2;
        }
    }
    if (!dir || rounds < 1 || rounds > 50) {
        fprintf(stderr, "bench_tier: --dir is required; rounds 1..50\n");
        return 2;
    }
    int is_s3 = strcmp(store_kind, "s3") == 0;
    akidb_store *store = open_store(store_kind);
    akidb_options o;
    akidb_options_init(&o);
    o.store = store;
    o.sync_mode = AKIDB_SYNC_NONE;   /* the inserts are not what is measured */
    o.tier_interval_ms = AKIDB_NEVER;
    o.dlq_retry_interval_ms = AKIDB_NEVER;
    akidb *db = NULL;
    CHECK(akidb_open(dir, &o, &db), "open");
    printf("config n %u dim %u store %s rounds %d\n", n, dim, store_kind, rounds);

    long rss0 = rss_kb();
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, dim, AKIDB_METRIC_L2);
    cfg.hnsw_m = 16;
    cfg.ef_construction = 40;   /* the build is not what is measured */
    CHECK(akidb_collection_create(db, "big", &cfg), "create");
    double t0 = now();
    fill(db, "big", n, dim);
    result("build_s", now() - t0);
    search_once(db, "big", dim);
    long rss_hot = rss_kb();
    akidb_collection_stats cs;
    memset(&cs, 0, sizeof cs);
    cs.version = AKIDB_COLLECTION_STATS_VERSION;
    CHECK(akidb_collection_stat(db, "big", &cs), "stat");
    result("coll_bytes", (double)cs.bytes);

    double *hw = calloc((size_t)rounds, sizeof(double)), *wh = calloc((size_t)rounds, sizeof(double));
    double *wc = calloc((size_t)rounds, sizeof(double)), *ch = calloc((size_t)rounds, sizeof(double));
    double *cat = calloc((size_t)rounds, sizeof(double)), *cu = calloc((size_t)rounds, sizeof(double));
    double *zc = calloc((size_t)rounds, sizeof(double)), *zr = calloc((size_t)rounds, sizeof(double));
    double *tf = calloc((size_t)rounds, sizeof(double));
    double cpu_wh = 0, cpu_ch = 0, wall_wh = 0, wall_ch = 0;
    long rss_warm = 0;
    char ckpt[1024], catcmd[1200];
    uint64_t cold_bytes = 0, zstd_bytes = 0;
    for (int r = 0; r < rounds; r++) {
        if (r > 0) {   /* a change, so each round uploads anew */
            float v[4096];
            for (uint32_t i = 0; i < dim; i++)
                v[i] = rnd();
            CHECK(akidb_insert(db, "big", 1, v, NULL, NULL, NULL), "insert");
            CHECK(akidb_index_wait(db, "big", AKIDB_NEVER), "index wait");
        }
        /* HOT -> WARM */
        t0 = now();
        CHECK(akidb_tier_set(db, "big", AKIDB_TIER_WARM), "hot->warm");
        hw[r] = now() - t0;
        if (r == 0)
            rss_warm = rss_kb();
        /* The floor: the same file from the page cache. */
        the_ckpt(dir, ckpt, sizeof ckpt);
        snprintf(catcmd, sizeof catcmd, "cat '%s' > /dev/null", ckpt);
        time_cmd(catcmd);
        cat[r] = time_cmd(catcmd);
        tf[r] = touch_fresh((size_t)cs.bytes);
        /* WARM -> HOT, first search answered */
        double c0 = cpu_now();
        t0 = now();
        search_once(db, "big", dim);
        wh[r] = now() - t0;
        wall_wh += wh[r];
        cpu_wh += cpu_now() - c0;
        /* HOT -> WARM -> COLD; the WARM -> COLD step alone is timed */
        CHECK(akidb_tier_set(db, "big", AKIDB_TIER_WARM), "hot->warm");
        t0 = now();
        CHECK(akidb_tier_set(db, "big", AKIDB_TIER_COLD), "warm->cold");
        wc[r] = now() - t0;
        akidb_tier_info ti;
        memset(&ti, 0, sizeof ti);
        ti.version = AKIDB_TIER_INFO_VERSION;
        CHECK(akidb_tier_info_get(db, "big", &ti), "info");
        cold_bytes = ti.cold_bytes;
        akidb_snapshot_info **list = NULL;
        size_t ns = 0;
        CHECK(akidb_snapshot_list(db, "big", &list, &ns), "list");
        char key[1100];
        snprintf(key, sizeof key, "%s", list[0]->key);
        akidb_free(list);
        if (is_s3)
            cu[r] = curl_get(key, cold_bytes);
        /* COLD -> HOT, first search answered */
        c0 = cpu_now();
        t0 = now();
        search_once(db, "big", dim);
        ch[r] = now() - t0;
        wall_ch += ch[r];
        cpu_ch += cpu_now() - c0;
        /* The ZSTD snapshot as the cold object: upload, then load it
         * (restore: download, SHA-256, decode, swap, checkpoint). */
        char id[AKIDB_SNAPSHOT_ID_LEN];
        t0 = now();
        CHECK(akidb_snapshot_create(db, "big", id, sizeof id), "snapshot");
        zc[r] = now() - t0;
        CHECK(akidb_snapshot_list(db, "big", &list, &ns), "list");
        zstd_bytes = list[0]->bytes;
        akidb_free(list);
        t0 = now();
        CHECK(akidb_snapshot_restore(db, "big", id), "restore");
        zr[r] = now() - t0;
        CHECK(akidb_snapshot_delete(db, "big", id), "snapshot delete");
    }
    result("rss_before_kb", (double)rss0);
    result("rss_hot_kb", (double)rss_hot);
    result("rss_warm_kb", (double)rss_warm);
    result("hot_warm_s", median(hw, rounds));
    result("warm_hot_s", median(wh, rounds));
    result("cat_s", median(cat, rounds));
    result("touch_s", median(tf, rounds));
    result("warm_cold_s", median(wc, rounds));
    result("cold_hot_s", median(ch, rounds));
    if (is_s3)
        result("curl_s", median(cu, rounds));
    result("cold_bytes", (double)cold_bytes);
    result("zstd_bytes", (double)zstd_bytes);
    result("zstd_upload_s", median(zc, rounds));
    result("zstd_load_s", median(zr, rounds));
    result("warm_hot_cpu_over_wall", cpu_wh / wall_wh);
    result("cold_hot_cpu_over_wall", cpu_ch / wall_ch);

    if (p99) {
        /* A hot 10k x dim collection searched alone, then while "big"
         * cycles WARM, HOT, COLD, HOT in another thread. */
        CHECK(akidb_collection_create(db, "hot", &cfg), "create");
        fill(db, "hot", 10000, dim);
        double a50, a99, b50, b99;
        search_p99(db, "hot", dim, 3000, &a50, &a99);
        mover m = { db, "big", dim, 0, 0 };
        pthread_t th;
        pthread_create(&th, NULL, move_loop, &m);
        search_p99(db, "hot", dim, 3000, &b50, &b99);
        __atomic_store_n(&m.stop, 1, __ATOMIC_RELAXED);
        pthread_join(th, NULL);
        double c50, c99;
        search_p99(db, "hot", dim, 3000, &c50, &c99);   /* idle again: drift check */
        result("p99_idle_s", a99);
        result("p50_idle_s", a50);
        result("p99_moving_s", b99);
        result("p50_moving_s", b50);
        result("p99_idle_after_s", c99);
        result("moves_during", m.moves);
    }
    CHECK(akidb_close(db), "close");
    akidb_store_close(store);
    free(hw); free(wh); free(wc); free(ch); free(cat); free(cu); free(zc); free(zr); free(tf);
    return 0;
}
