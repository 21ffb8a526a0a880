/*
 * bench_store.c - the object-store benchmark (issue 4): the AkiDB side of
 * it.  bench/run_store_bench.sh drives it, runs the peers (awscli, curl)
 * between its steps and builds the table.
 *
 * Subcommands (each prints `time NAME ROUND SECONDS` lines, one per timed
 * operation, plus progress on stderr; nothing else on stdout):
 *
 *   mock      N objects of SIZE bytes into the in-memory mock store with
 *             LATENCY ms injected per call: one after another with
 *             akidb_store_put() ("mock.seq"), then with the parallel
 *             uploader, akidb__uploader_put_many(), at each concurrency
 *             of --conc ("mock.parC"); --rounds rounds, interleaved.
 *   gen       write the same bytes as files for the peers: DIR/small/NNNNNN
 *             (N files of SIZE bytes) and DIR/big.bin (BIG MiB).
 *   s3-small  one round against the S3 store of AKIDB_TEST_S3_*: the N
 *             objects with akidb_store_put() one after another
 *             ("s3.seq", keys PREFIX/seq/NNNNNN), then with the uploader
 *             at each --conc ("s3.parC", keys PREFIX/parC/NNNNNN).  Each
 *             upload is checked afterwards by listing the prefix.
 *   s3-big-up   akidb_store_put() of the BIG MiB object (multipart upload,
 *               parts in parallel) as PREFIX/big-akidb ("s3.big_up").
 *   s3-big-down akidb_store_get() of it, whole (ranged GETs in parallel)
 *               ("s3.big_down"); the bytes are compared afterwards.  First
 *               it times malloc + memset of a buffer that size ("mem.touch"):
 *               the page-fault cost any download into fresh memory pays.
 *
 * Why internal headers: the issue asks for "the parallel uploader", which
 * the public API reaches only through files (akidb_upload_file); uploading
 * in-memory objects in parallel is akidb__uploader_put_many()
 * (lib/engine/uploader.h), the uploader of an open handle (akidb__db_uploader,
 * lib/fault.h).  Its requests go through the same retrying dispatch layer
 * as akidb_store_put().  The mock's latency knob is public (akidb_store_mock_set_latency).
 * Everything else is the public API.
 *
 * Data: object i is SIZE bytes from a splitmix64 stream seeded with i (the
 * big object: seed 0xB16), so `gen` files and uploaded objects are the same
 * bytes, and incompressible.
 */
#define _GNU_SOURCE
#include "akidb.h"
#include "common/fault.h"
#include "engine/uploader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONC 8
#define BIG_SEED 0xB16u

typedef struct opts {
    const char *cmd;
    uint32_t n;              /* small objects */
    size_t size;             /* bytes each */
    uint32_t latency_ms;     /* mock */
    int rounds;              /* mock */
    int round;               /* s3-*: the round number printed */
    uint32_t conc[MAX_CONC]; /* uploader concurrencies */
    int n_conc;
    uint32_t big_mib;
    uint32_t s3_conc;        /* akidb_s3_config.max_concurrency; 0 = default */
    const char *dir;         /* scratch (catalogs) or gen output */
    const char *prefix;      /* key prefix on S3 */
} opts;

static opts g_o;

/* ---- helpers ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_store: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void check(int rc, const char *what)
{
    if (rc != AKIDB_OK)
        die("%s: %s (%s)", what, akidb_errstr(rc), akidb_errmsg(NULL));
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

static void report(const char *name, int round, double secs)
{
    printf("time %s %d %.6f\n", name, round, secs);
    fflush(stdout);
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill(unsigned char *buf, size_t len, uint64_t seed)
{
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 1;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = splitmix64(&s);
        memcpy(buf + i, &v, 8);
    }
    if (i < len) {
        uint64_t v = splitmix64(&s);
        memcpy(buf + i, &v, len - i);
    }
}

/* The small objects: one allocation, n pointers into it, and their keys. */
typedef struct objects {
    unsigned char *data;
    const void **bufs;
    size_t *lens;
    char (*keys)[160];
    const char **key_ptrs;
    int *rcs;
} objects;

static void objects_make(objects *ob)
{
    uint32_t n = g_o.n;
    ob->data = xmalloc((size_t)n * g_o.size);
    ob->bufs = xmalloc(n * sizeof *ob->bufs);
    ob->lens = xmalloc(n * sizeof *ob->lens);
    ob->keys = xmalloc(n * sizeof *ob->keys);
    ob->key_ptrs = xmalloc(n * sizeof *ob->key_ptrs);
    ob->rcs = xmalloc(n * sizeof *ob->rcs);
    for (uint32_t i = 0; i < n; i++) {
        unsigned char *p = ob->data + (size_t)i * g_o.size;
        fill(p, g_o.size, i);
        ob->bufs[i] = p;
        ob->lens[i] = g_o.size;
        ob->key_ptrs[i] = ob->keys[i];
    }
}

static void objects_set_prefix(objects *ob, const char *prefix)
{
    for (uint32_t i = 0; i < g_o.n; i++)
        snprintf(ob->keys[i], sizeof ob->keys[i], "%s/%06u", prefix, i);
}

static void objects_free(objects *ob)
{
    free(ob->data);
    free(ob->bufs);
    free(ob->lens);
    free(ob->keys);
    free(ob->key_ptrs);
    free(ob->rcs);
}

/* n akidb_store_put() calls, one after another. */
static double put_sequential(akidb_store *s, const objects *ob)
{
    double t0 = now_s();
    for (uint32_t i = 0; i < g_o.n; i++)
        check(akidb_store_put(s, ob->key_ptrs[i], ob->bufs[i], ob->lens[i]), ob->key_ptrs[i]);
    return now_s() - t0;
}

/* A handle on store s whose uploader runs `conc` workers; its catalog
 * lives in a fresh directory under --dir. */
static akidb *open_uploader_db(akidb_store *s, uint32_t conc, char *path, size_t path_len)
{
    snprintf(path, path_len, "%s/db-XXXXXX", g_o.dir);
    if (!mkdtemp(path))
        die("mkdtemp %s: %s", path, strerror(errno));
    akidb_options o;
    akidb_options_init(&o);
    o.store = s;
    o.upload_concurrency = conc;
    o.dlq_retry_interval_ms = AKIDB_NEVER;
    o.sync_mode = AKIDB_SYNC_NONE;
    akidb *db = NULL;
    check(akidb_open(path, &o, &db), "akidb_open");
    return db;
}

static void rm_db_dir(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_store: could not remove %s\n", path);
}

/* All n objects through the uploader, `conc` in flight. */
static double put_parallel(akidb_store *s, uint32_t conc, objects *ob)
{
    char path[4096];
    akidb *db = open_uploader_db(s, conc, path, sizeof path);
    akidb__uploader *u = akidb__db_uploader(db);
    double t0 = now_s();
    int rc = akidb__uploader_put_many(u, g_o.n, ob->key_ptrs, ob->bufs, ob->lens, ob->rcs);
    double t = now_s() - t0;
    check(rc, "akidb__uploader_put_many");
    for (uint32_t i = 0; i < g_o.n; i++)
        check(ob->rcs[i], ob->key_ptrs[i]);
    check(akidb_close(db), "akidb_close");
    rm_db_dir(path);
    return t;
}

/* ---- mock ----------------------------------------------------------------- */

static void run_mock(void)
{
    objects ob;
    objects_make(&ob);
    for (int r = 1; r <= g_o.rounds; r++) {
        akidb_store *s = NULL;
        check(akidb_store_mock_open(&s), "akidb_store_mock_open");
        akidb_store_mock_set_latency(s, g_o.latency_ms);
        objects_set_prefix(&ob, "seq");
        fprintf(stderr, "mock round %d: %u sequential puts ...\n", r, g_o.n);
        report("mock.seq", r, put_sequential(s, &ob));
        for (int c = 0; c < g_o.n_conc; c++) {
            char name[64], prefix[32];
            snprintf(prefix, sizeof prefix, "par%u", g_o.conc[c]);
            objects_set_prefix(&ob, prefix);
            snprintf(name, sizeof name, "mock.par%u", g_o.conc[c]);
            report(name, r, put_parallel(s, g_o.conc[c], &ob));
        }
        akidb_mock_stats st;
        akidb_store_mock_stats_get(s, &st);
        uint64_t want = (uint64_t)g_o.n * (uint64_t)(1 + g_o.n_conc);
        if (st.objects != want || st.bytes_in != want * g_o.size)
            die("mock holds %llu objects / %llu bytes, expected %llu / %llu",
                (unsigned long long)st.objects, (unsigned long long)st.bytes_in,
                (unsigned long long)want, (unsigned long long)(want * g_o.size));
        akidb_store_close(s);
    }
    objects_free(&ob);
}

/* ---- gen ------------------------------------------------------------------ */

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
        die("write %s: %s", path, strerror(errno));
}

static void run_gen(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/small", g_o.dir);
    if (mkdir(g_o.dir, 0755) != 0 && errno != EEXIST)
        die("mkdir %s: %s", g_o.dir, strerror(errno));
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("mkdir %s: %s", path, strerror(errno));
    unsigned char *buf = xmalloc(g_o.size);
    for (uint32_t i = 0; i < g_o.n; i++) {
        fill(buf, g_o.size, i);
        snprintf(path, sizeof path, "%s/small/%06u", g_o.dir, i);
        write_file(path, buf, g_o.size);
    }
    free(buf);
    size_t big = (size_t)g_o.big_mib << 20;
    buf = xmalloc(big);
    fill(buf, big, BIG_SEED);
    snprintf(path, sizeof path, "%s/big.bin", g_o.dir);
    write_file(path, buf, big);
    free(buf);
}

/* ---- S3 ------------------------------------------------------------------- */

static const char *env_need(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        die("%s is not set (run under scripts/with-s3.sh)", name);
    return v;
}

static akidb_store *open_s3(void)
{
    akidb_s3_config cfg;
    akidb_s3_config_init(&cfg);
    cfg.endpoint = env_need("AKIDB_TEST_S3_ENDPOINT");
    cfg.access_key = env_need("AKIDB_TEST_S3_ACCESS_KEY");
    cfg.secret_key = env_need("AKIDB_TEST_S3_SECRET_KEY");
    cfg.bucket = env_need("AKIDB_TEST_S3_BUCKET");
    cfg.region = getenv("AKIDB_TEST_S3_REGION");
    if (g_o.s3_conc)
        cfg.max_concurrency = g_o.s3_conc;
    akidb_store *s = NULL;
    check(akidb_store_s3_open(&cfg, &s), "akidb_store_s3_open");
    return s;
}

typedef struct list_count {
    uint64_t n, bad_size;
    size_t want;
} list_count;

static int count_cb(void *ctx, const char *key, uint64_t size)
{
    list_count *lc = ctx;
    (void)key;
    lc->n++;
    if (size != lc->want)
        lc->bad_size++;
    return 0;
}

static void verify_listing(akidb_store *s, const char *prefix)
{
    char p[128];
    snprintf(p, sizeof p, "%s/", prefix);
    list_count lc = { 0, 0, g_o.size };
    check(akidb_store_list(s, p, count_cb, &lc), "akidb_store_list");
    if (lc.n != g_o.n || lc.bad_size)
        die("%s: listed %llu objects (%llu of the wrong size), expected %u of %zu bytes", p,
            (unsigned long long)lc.n, (unsigned long long)lc.bad_size, g_o.n, g_o.size);
}

static void run_s3_small(void)
{
    akidb_store *s = open_s3();
    objects ob;
    objects_make(&ob);
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s/seq", g_o.prefix);
    objects_set_prefix(&ob, prefix);
    fprintf(stderr, "s3 round %d: %u sequential puts ...\n", g_o.round, g_o.n);
    report("s3.seq", g_o.round, put_sequential(s, &ob));
    verify_listing(s, prefix);
    for (int c = 0; c < g_o.n_conc; c++) {
        char name[64];
        snprintf(prefix, sizeof prefix, "%s/par%u", g_o.prefix, g_o.conc[c]);
        objects_set_prefix(&ob, prefix);
        snprintf(name, sizeof name, "s3.par%u", g_o.conc[c]);
        fprintf(stderr, "s3 round %d: %u puts, uploader concurrency %u ...\n", g_o.round, g_o.n,
                g_o.conc[c]);
        report(name, g_o.round, put_parallel(s, g_o.conc[c], &ob));
        verify_listing(s, prefix);
    }
    objects_free(&ob);
    akidb_store_close(s);
}

static unsigned char *big_data(size_t *len)
{
    *len = (size_t)g_o.big_mib << 20;
    unsigned char *buf = xmalloc(*len);
    fill(buf, *len, BIG_SEED);
    return buf;
}

static void run_s3_big_up(void)
{
    akidb_store *s = open_s3();
    size_t len;
    unsigned char *buf = big_data(&len);
    char key[128];
    snprintf(key, sizeof key, "%s/big-akidb", g_o.prefix);
    double t0 = now_s();
    check(akidb_store_put(s, key, buf, len), key);
    report("s3.big_up", g_o.round, now_s() - t0);
    uint64_t size = 0;
    check(akidb_store_size(s, key, &size), key);
    if (size != len)
        die("%s: size %llu after upload, expected %zu", key, (unsigned long long)size, len);
    free(buf);
    akidb_store_close(s);
}

static void run_s3_big_down(void)
{
    akidb_store *s = open_s3();
    size_t len;
    unsigned char *want = big_data(&len);
    char key[128];
    snprintf(key, sizeof key, "%s/big-akidb", g_o.prefix);
    /* What the bytes landing in fresh memory cost by themselves: the
     * download fills a new buffer of this size, whose pages the kernel
     * must fault in and zero (a large malloc is a fresh mmap each time). */
    double t0 = now_s();
    unsigned char *scratch = xmalloc(len);
    memset(scratch, 0x5A, len);
    double t_touch = now_s() - t0;
    if (scratch[len / 2] != 0x5A)
        die("memset");
    free(scratch);
    report("mem.touch", g_o.round, t_touch);

    void *got = NULL;
    size_t got_len = 0;
    t0 = now_s();
    check(akidb_store_get(s, key, 0, UINT64_MAX, &got, &got_len), key);
    report("s3.big_down", g_o.round, now_s() - t0);
    if (got_len != len || memcmp(got, want, len) != 0)
        die("%s: downloaded %zu bytes that differ from the %zu uploaded", key, got_len, len);
    akidb_free(got);
    free(want);
    akidb_store_close(s);
}

/* ---- main ----------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_store mock|gen|s3-small|s3-big-up|s3-big-down [options]\n"
            "  --n N            small objects (1000)\n"
            "  --size BYTES     size of each (65536)\n"
            "  --conc LIST      uploader concurrencies, e.g. 16,32,64 (16)\n"
            "  --latency MS     mock latency per call (10)\n"
            "  --rounds R       mock rounds (3)\n"
            "  --round R        s3-*: round number to print (1)\n"
            "  --big-mib M      big object, MiB (256)\n"
            "  --s3-conc C      S3 store max_concurrency (library default)\n"
            "  --dir DIR        scratch directory (catalogs; gen: output)\n"
            "  --prefix P       key prefix on S3 (bench)\n");
    exit(2);
}

static unsigned long num(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end)
        die("bad %s: %s", what, s);
    return v;
}

static void parse_conc(const char *s)
{
    char *copy = strdup(s), *save = NULL;
    if (!copy)
        die("out of memory");
    g_o.n_conc = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (g_o.n_conc == MAX_CONC)
            die("--conc: at most %d values", MAX_CONC);
        unsigned long v = num(t, "--conc");
        if (v < 1 || v > 1024)
            die("--conc: %lu out of range 1..1024", v);
        g_o.conc[g_o.n_conc++] = (uint32_t)v;
    }
    free(copy);
}

static void parse_args(int argc, char **argv)
{
    if (argc < 2)
        usage();
    g_o.cmd = argv[1];
    g_o.n = 1000;
    g_o.size = 65536;
    g_o.latency_ms = 10;
    g_o.rounds = 3;
    g_o.round = 1;
    g_o.conc[0] = 16;
    g_o.n_conc = 1;
    g_o.big_mib = 256;
    g_o.dir = ".";
    g_o.prefix = "bench";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--n"))
            g_o.n = (uint32_t)num(v, a);
        else if (!strcmp(a, "--size"))
            g_o.size = num(v, a);
        else if (!strcmp(a, "--conc"))
            parse_conc(v);
        else if (!strcmp(a, "--latency"))
            g_o.latency_ms = (uint32_t)num(v, a);
        else if (!strcmp(a, "--rounds"))
            g_o.rounds = (int)num(v, a);
        else if (!strcmp(a, "--round"))
            g_o.round = (int)num(v, a);
        else if (!strcmp(a, "--big-mib"))
            g_o.big_mib = (uint32_t)num(v, a);
        else if (!strcmp(a, "--s3-conc"))
            g_o.s3_conc = (uint32_t)num(v, a);
        else if (!strcmp(a, "--dir"))
            g_o.dir = v;
        else if (!strcmp(a, "--prefix"))
            g_o.prefix = v;
        else
            usage();
    }
    if (strlen(g_o.prefix) < 1 || strlen(g_o.prefix) > 64)
        die("--prefix: 1..64 characters");
    if (g_o.n < 1 || g_o.size < 1 || g_o.rounds < 1 || g_o.big_mib < 1 || g_o.big_mib > 4096)
        die("--n, --size, --rounds and --big-mib (<= 4096) must be positive");
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    if (!strcmp(g_o.cmd, "mock"))
        run_mock();
    else if (!strcmp(g_o.cmd, "gen"))
        run_gen();
    else if (!strcmp(g_o.cmd, "s3-small"))
        run_s3_small();
    else if (!strcmp(g_o.cmd, "s3-big-up"))
        run_s3_big_up();
    else if (!strcmp(g_o.cmd, "s3-big-down"))
        run_s3_big_down();
    else
        usage();
    return 0;
}
