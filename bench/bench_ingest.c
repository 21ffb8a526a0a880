/*
 * bench_ingest.c - the fast-ingest benchmark (issue 11): what acknowledging
 * writes before they are indexed buys, and what it costs.
 *
 * Through the public API only (plus SQLite as the peer), in one run:
 *
 *   reopen      a process inserts n single-row records (n x dim, sync
 *               NONE, no checkpoint, the indexer far behind) and is
 *               SIGKILLed; a fresh process opens the directory and runs one
 *               search for the last acknowledged record.  Timed: akidb_open,
 *               and open + that first search (target < 1 s), which must
 *               return the record at distance 0 with count == n; then the
 *               time until the indexer has linked the whole tail.
 *   throughput  8 writer threads, batch 1 and batch 100, sync ALWAYS and
 *               INTERVAL, inserting rows (vector, JSON metadata) into a
 *               fresh collection, against SQLite (WAL, synchronous=FULL,
 *               8 threads with a connection each, BEGIN IMMEDIATE, one
 *               transaction per batch) inserting the same rows (id INTEGER
 *               PRIMARY KEY, vector BLOB, metadata TEXT), alternating, in
 *               the same run.  Batch 100 three times: a burst that stays
 *               within the default index-lag bound, a sustained run of n
 *               rows that goes past it (writers then link under
 *               back-pressure), and the same sustained run with the bound
 *               lifted (max_index_lag = AKIDB_NEVER, a bulk load).
 *   latency     search latency (one thread, k 10, ef 64) on a collection
 *               of n documents, idle and while one writer inserts batches
 *               of 100 (INTERVAL) as fast as it can; and the cost of an
 *               exact scan of a tail of the default bound.
 *   wa          write amplification at a sustained insert rate: one writer,
 *               INTERVAL, batch 100, n_wa rows: bytes logged and bytes of
 *               checkpoint files written per byte inserted, with the
 *               default checkpoint threshold (which follows the
 *               collection's size) and with a fixed 64 MiB one (the rule
 *               before issue 11); plus what the kernel counted
 *               (/proc/self/io write_bytes).
 *
 * Data: a seeded 256-cluster Gaussian mixture of dim 128, as in
 * bench_durability.c.  Output: progress, `RESULT key=value` lines and
 * markdown tables (also to --md).  Everything lives under --dir, which must
 * be on the disk being measured.
 */
#define _GNU_SOURCE
#include "akidb.h"
#include "bench_common.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define COLL "vecs"
#define N_CLUSTERS 256
#define MAX_REPS 9
#define MAX_WRITERS 64
#define BIG_CKPT ((uint64_t)1 << 40)

typedef struct opts {
    uint32_t n, dim, n_b1, n_burst, n_wa, n_lat_q;
    int writers, reps;
    const char *dir, *md;
    unsigned sections;
} opts;

#define SEC_REOPEN 1u
#define SEC_THROUGHPUT 2u
#define SEC_LATENCY 4u
#define SEC_WA 8u

static opts g_o;
static float *g_data;       /* (2n + n_wa) x dim */
static uint32_t g_rows;
static FILE *g_md;
static char *g_md_buf;
static size_t g_md_len;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_ingest: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void check(int rc, const akidb *db, const char *what)
{
    if (rc != AKIDB_OK)
        die("%s: %s (%s)", what, akidb_errstr(rc), akidb_errmsg(db));
}

static void md(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(g_md, fmt, ap);
    va_end(ap);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void path_of(char *buf, size_t cap, const char *name)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", g_o.dir, name) >= cap)
        die("path too long: %s/%s", g_o.dir, name);
}

static void shell_line(const char *cmd, char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    char line[512];
    if (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(out, cap, "%.255s", line);
    }
    pclose(p);
}

/* Bytes this process has caused to be written to storage so far. */
static uint64_t io_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    uint64_t v = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "write_bytes:", 12))
            v = strtoull(line + 12, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float unit(uint64_t *s)
{
    return (float)(splitmix64(s) >> 40) / 16777216.0f;
}

/* The same mixture as bench_durability.c (seed 42). */
static float *gen_data(uint32_t n, uint32_t dim)
{
    uint64_t s = 42;
    float *cen = malloc((size_t)N_CLUSTERS * dim * sizeof *cen);
    float *v = malloc((size_t)n * dim * sizeof *v);
    if (!cen || !v)
        die("out of memory for %u x %u floats", n, dim);
    for (size_t i = 0; i < (size_t)N_CLUSTERS * dim; i++)
        cen[i] = unit(&s);
    for (size_t i = 0; i < n; i++) {
        const float *c = cen + (splitmix64(&s) % N_CLUSTERS) * dim;
        for (uint32_t d = 0; d < dim; d++) {
            float g = unit(&s) + unit(&s) + unit(&s) + unit(&s) - 2.0f;
            v[i * dim + d] = c[d] + 0.1f * g;
        }
    }
    free(cen);
    return v;
}

static const float *row(uint32_t i)
{
    return g_data + (size_t)(i % g_rows) * g_o.dim;
}

/* The JSON metadata of row i (~40 bytes). */
static int meta_of(uint32_t i, char *buf, size_t cap)
{
    return snprintf(buf, cap, "{\"row\":%u,\"tag\":\"t%u\",\"score\":%u.5}", i, i % 97,
                    i % 1000);
}

static const char *mode_name(akidb_sync_mode m)
{
    return m == AKIDB_SYNC_ALWAYS ? "always" : m == AKIDB_SYNC_INTERVAL ? "interval" : "none";
}

static akidb *open_db(const char *dir, akidb_sync_mode mode, uint64_t ckpt_bytes,
                      uint32_t max_lag)
{
    akidb_options o;
    akidb *db = NULL;
    akidb_options_init(&o);
    o.sync_mode = mode;
    o.checkpoint_bytes = ckpt_bytes;
    o.max_index_lag = max_lag;
    check(akidb_open(dir, &o, &db), NULL, dir);
    return db;
}

static void create_coll(akidb *db, uint32_t efc)
{
    akidb_collection_config c;
    akidb_collection_config_init(&c, g_o.dim, AKIDB_METRIC_L2);
    if (efc)
        c.ef_construction = efc;
    check(akidb_collection_create(db, COLL, &c), db, "collection_create");
}

static int64_t metric(akidb *db, const char *name)
{
    int64_t v = -1;
    check(akidb_metric_value(db, name, &v), db, name);
    return v;
}

static uint64_t count_docs(akidb *db)
{
    uint64_t n = 0;
    check(akidb_collection_count(db, COLL, &n), db, "count");
    return n;
}

static uint64_t lag_of(akidb *db)
{
    akidb_collection_stats st;
    memset(&st, 0, sizeof st);
    st.version = AKIDB_COLLECTION_STATS_VERSION;
    check(akidb_collection_stat(db, COLL, &st), db, "stat");
    return st.index_lag;
}

/* Insert rows [first, first+n) in batches, with metadata. */
static void insert_rows(akidb *db, uint32_t first, uint32_t n, uint32_t batch)
{
    char (*meta)[64] = malloc((size_t)batch * sizeof *meta);
    const char **mp = malloc((size_t)batch * sizeof *mp);
    float *v = malloc((size_t)batch * g_o.dim * sizeof *v);
    if (!meta || !mp || !v)
        die("out of memory");
    for (uint32_t i = 0; i < n; i += batch) {
        uint32_t k = n - i < batch ? n - i : batch;
        for (uint32_t j = 0; j < k; j++) {
            meta_of(first + i + j, meta[j], sizeof meta[j]);
            mp[j] = meta[j];
            memcpy(v + (size_t)j * g_o.dim, row(first + i + j), g_o.dim * sizeof *v);
        }
        check(akidb_insert(db, COLL, k, v, NULL, mp, NULL), db, "insert");
    }
    free(meta);
    free(mp);
    free(v);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* ---- reopen after SIGKILL ------------------------------------------------ */

typedef struct reopen_res {
    double open_s, first_s, catchup_s, fill_s, cpu_open_s;
    uint64_t lag_at_kill, lag_at_first, log_bytes, docs;
} reopen_res;

/* Child: n single-row inserts, then SIGKILL itself with the indexer behind;
 * reports through the pipe first. */
static void fill_and_die(const char *dir, int wfd)
{
    rm_tree(dir);
    akidb *db = open_db(dir, AKIDB_SYNC_NONE, BIG_CKPT, AKIDB_NEVER);
    create_coll(db, 0);
    double t0 = bench_now();
    insert_rows(db, 0, g_o.n, 1);
    double secs[2] = { bench_now() - t0, (double)lag_of(db) };
    if (write(wfd, secs, sizeof secs) != sizeof secs)
        _exit(2);
    raise(SIGKILL);
}

/* Child: open, search for the last record, report; optionally wait for
 * the indexer; never closes (close would checkpoint). */
static void open_and_search(const char *dir, int catchup, int wfd)
{
    double c0 = bench_cpu_now(), t0 = bench_now();
    akidb *db = open_db(dir, AKIDB_SYNC_NONE, BIG_CKPT, 0);
    double t_open = bench_now() - t0, cpu_open = bench_cpu_now() - c0;
    akidb_hit hits[10];
    uint32_t nh = 0;
    check(akidb_search(db, COLL, row(g_o.n - 1), 10, NULL, hits, &nh), db, "search");
    double t_first = bench_now() - t0;
    uint64_t lag = lag_of(db), docs = count_docs(db);
    if (nh == 0 || hits[0].id != g_o.n || hits[0].distance != 0.0f)
        die("first search after the reopen: best hit id %llu at %g, expected id %u at 0",
            nh ? (unsigned long long)hits[0].id : 0ull, nh ? hits[0].distance : -1.0, g_o.n);
    double t_catch = 0;
    if (catchup) {
        check(akidb_index_wait(db, COLL, AKIDB_NEVER), db, "index_wait");
        t_catch = bench_now() - t0;
    }
    double out[6] = { t_open, t_first, t_catch, cpu_open, (double)lag, (double)docs };
    if (write(wfd, out, sizeof out) != sizeof out)
        _exit(2);
    if (catchup == 2) {
        check(akidb_close(db), NULL, "close");   /* keep it as the latency base */
        _exit(0);
    }
    _exit(0);
}

static void run_child(void (*fn)(const char *, int), void (*fn2)(const char *, int, int),
                      const char *dir, int arg, void *out, size_t len)
{
    int p[2];
    if (pipe(p) != 0)
        die("pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(p[0]);
        if (fn)
            fn(dir, p[1]);
        else
            fn2(dir, arg, p[1]);
        _exit(0);
    }
    close(p[1]);
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(p[0], (char *)out + got, len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    if (got != len)
        die("child reported %zu of %zu bytes (status %d)", got, len, st);
}

static uint64_t dir_bytes(const char *dir, const char *sub)
{
    char cmd[4300], out[64];
    snprintf(cmd, sizeof cmd, "du -sb '%s/%s' 2>/dev/null | cut -f1", dir, sub);
    shell_line(cmd, out, sizeof out);
    return strtoull(out, NULL, 10);
}

static void section_reopen(reopen_res *R, char *base_out, size_t base_cap)
{
    char dir[4096];
    path_of(dir, sizeof dir, "reopen");
    printf("\n== reopen after SIGKILL: %u single-row records, no checkpoint ==\n", g_o.n);
    double fill[2];
    run_child(fill_and_die, NULL, dir, 0, fill, sizeof fill);
    R->fill_s = fill[0];
    R->lag_at_kill = (uint64_t)fill[1];
    R->log_bytes = dir_bytes(dir, "wal");
    printf("RESULT kind=fill rows=%u seconds=%.3f lag_at_kill=%llu log_bytes=%llu\n", g_o.n,
           fill[0], (unsigned long long)R->lag_at_kill, (unsigned long long)R->log_bytes);
    double o[MAX_REPS], f[MAX_REPS], c[MAX_REPS];
    for (int r = 0; r < g_o.reps; r++) {
        double out[6];
        int last = r == g_o.reps - 1;
        run_child(NULL, open_and_search, dir, last ? 2 : 0, out, sizeof out);
        o[r] = out[0];
        f[r] = out[1];
        c[r] = out[3];
        R->lag_at_first = (uint64_t)out[4];
        R->docs = (uint64_t)out[5];
        if (last)
            R->catchup_s = out[2];
        printf("RESULT kind=reopen rep=%d open_s=%.4f first_search_s=%.4f cpu_open_s=%.4f "
               "lag_at_first_search=%.0f docs=%.0f%s", r + 1, out[0], out[1], out[3], out[4],
               out[5], last ? "" : "\n");
        if (last)
            printf(" caught_up_s=%.3f\n", out[2]);
        if (R->docs != g_o.n)
            die("reopen: %llu documents, expected %u", (unsigned long long)R->docs, g_o.n);
    }
    R->open_s = bench_median(o, g_o.reps);
    R->first_s = bench_median(f, g_o.reps);
    R->cpu_open_s = bench_median(c, g_o.reps);
    snprintf(base_out, base_cap, "%s", dir);   /* checkpointed, fully linked: latency base */
}

/* ---- throughput: 8 writers against SQLite -------------------------------- */

typedef struct tw {
    akidb *db;
    sqlite3 *sq;
    pthread_barrier_t *start;
    uint32_t first, n, batch;
    int fail;
} tw;

static void *akidb_writer(void *arg)
{
    tw *w = arg;
    pthread_barrier_wait(w->start);
    insert_rows(w->db, w->first, w->n, w->batch);
    return NULL;
}

static void sq_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        die("sqlite: %s: %s", sql, err ? err : "?");
}

static void *sqlite_writer(void *arg)
{
    tw *w = arg;
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(w->sq, "INSERT INTO vecs (id, vector, metadata) VALUES (?, ?, ?)",
                           -1, &ins, NULL) != SQLITE_OK)
        die("sqlite prepare: %s", sqlite3_errmsg(w->sq));
    const int blob_len = (int)(g_o.dim * sizeof(float));
    char meta[64];
    pthread_barrier_wait(w->start);
    for (uint32_t i = 0; i < w->n; i += w->batch) {
        uint32_t k = w->n - i < w->batch ? w->n - i : w->batch;
        sq_exec(w->sq, "BEGIN IMMEDIATE");
        for (uint32_t j = w->first + i; j < w->first + i + k; j++) {
            int len = meta_of(j, meta, sizeof meta);
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)j + 1);
            sqlite3_bind_blob(ins, 2, row(j), blob_len, SQLITE_STATIC);
            sqlite3_bind_text(ins, 3, meta, len, SQLITE_TRANSIENT);
            if (sqlite3_step(ins) != SQLITE_DONE)
                die("sqlite insert: %s", sqlite3_errmsg(w->sq));
            sqlite3_reset(ins);
        }
        sq_exec(w->sq, "COMMIT");
    }
    sqlite3_finalize(ins);
    return NULL;
}

typedef struct tp_res {
    double rows_per_s, seconds, cpu_s;
    uint64_t lag_end, writer_linked;
    double graph_s;     /* AkiDB: until the tail was empty */
} tp_res;

/* `writers` threads insert n rows (each its share) with batch size
 * `batch`; sqlite = 1 for the peer; max_lag is AkiDB's max_index_lag
 * (0 = the default bound). */
static tp_res tp_run(int sqlite, akidb_sync_mode mode, uint32_t batch, uint32_t n,
                     uint32_t max_lag)
{
    char dir[4096], path[4200];
    tp_res r;
    memset(&r, 0, sizeof r);
    path_of(dir, sizeof dir, "tp");
    rm_tree(dir);
    mkdir(dir, 0755);
    akidb *db = NULL;
    sqlite3 *conns[MAX_WRITERS];
    if (sqlite) {
        snprintf(path, sizeof path, "%s/peer.sqlite", dir);
        for (int i = 0; i < g_o.writers; i++) {
            if (sqlite3_open(path, &conns[i]) != SQLITE_OK)
                die("sqlite open %s", path);
            sqlite3_busy_timeout(conns[i], 60000);
            sq_exec(conns[i], "PRAGMA journal_mode=WAL");
            sq_exec(conns[i], "PRAGMA synchronous=FULL");
            if (i == 0)
                sq_exec(conns[i], "CREATE TABLE vecs (id INTEGER PRIMARY KEY, "
                                  "vector BLOB NOT NULL, metadata TEXT)");
        }
    } else {
        snprintf(path, sizeof path, "%s/akidb", dir);
        db = open_db(path, mode, BIG_CKPT, max_lag);
        create_coll(db, 0);
    }
    pthread_t th[MAX_WRITERS];
    tw w[MAX_WRITERS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)g_o.writers + 1);
    for (int i = 0; i < g_o.writers; i++) {
        uint32_t lo = (uint32_t)((uint64_t)n * (uint64_t)i / (uint64_t)g_o.writers);
        uint32_t hi = (uint32_t)((uint64_t)n * (uint64_t)(i + 1) / (uint64_t)g_o.writers);
        w[i] = (tw){ db, sqlite ? conns[i] : NULL, &start, lo, hi - lo, batch, 0 };
        if (pthread_create(&th[i], NULL, sqlite ? sqlite_writer : akidb_writer, &w[i]) != 0)
            die("pthread_create");
    }
    double c0 = bench_cpu_now(), t0 = bench_now();
    pthread_barrier_wait(&start);
    for (int i = 0; i < g_o.writers; i++)
        pthread_join(th[i], NULL);
    r.seconds = bench_now() - t0;
    r.cpu_s = bench_cpu_now() - c0;
    r.rows_per_s = n / r.seconds;
    pthread_barrier_destroy(&start);
    if (sqlite) {
        for (int i = 0; i < g_o.writers; i++)
            sqlite3_close(conns[i]);
    } else {
        r.lag_end = lag_of(db);
        r.writer_linked = (uint64_t)metric(db, "akidb_index_writer_linked_total");
        if (count_docs(db) != n)
            die("throughput: %llu documents after %u inserts",
                (unsigned long long)count_docs(db), n);
        check(akidb_index_wait(db, COLL, AKIDB_NEVER), db, "index_wait");
        r.graph_s = bench_now() - t0;
        check(akidb_close(db), NULL, "close");
    }
    rm_tree(dir);
    printf("RESULT kind=throughput impl=%s mode=%s batch=%u writers=%d rows=%u seconds=%.3f "
           "cpu_seconds=%.3f rows_per_s=%.1f lag_at_end=%llu writer_linked=%llu "
           "graph_complete_s=%.3f max_index_lag=%s\n", sqlite ? "sqlite" : "akidb",
           sqlite ? "FULL" : mode_name(mode), batch, g_o.writers, n, r.seconds, r.cpu_s,
           r.rows_per_s, (unsigned long long)r.lag_end, (unsigned long long)r.writer_linked,
           r.graph_s, max_lag == AKIDB_NEVER ? "never" : "default");
    return r;
}

/* [ALWAYS, INTERVAL][batch 1, burst 100, sustained 100, sustained 100
 * with the lag bound lifted] and SQLite's. */
#define TP_ROWS 4
typedef struct tp_table {
    tp_res ak[2][TP_ROWS], sq[TP_ROWS];
    uint32_t rows[TP_ROWS];
} tp_table;

static void section_throughput(tp_table *T)
{
    static const akidb_sync_mode modes[2] = { AKIDB_SYNC_ALWAYS, AKIDB_SYNC_INTERVAL };
    static const uint32_t batches[TP_ROWS] = { 1, 100, 100, 100 };
    static const uint32_t lags[TP_ROWS] = { 0, 0, 0, AKIDB_NEVER };
    T->rows[0] = g_o.n_b1;
    T->rows[1] = g_o.n_burst;
    T->rows[2] = g_o.n;
    T->rows[3] = g_o.n;
    printf("\n== throughput: %d writers, AkiDB (ALWAYS, INTERVAL) and SQLite (WAL, FULL) ==\n",
           g_o.writers);
    for (int bi = 0; bi < TP_ROWS; bi++) {
        int reps = bi >= 2 ? 1 : g_o.reps;
        double v[3][MAX_REPS], g[2][MAX_REPS];
        for (int r = 0; r < reps; r++) {
            for (int mi = 0; mi < 2; mi++) {
                T->ak[mi][bi] = tp_run(0, modes[mi], batches[bi], T->rows[bi], lags[bi]);
                v[mi][r] = T->ak[mi][bi].rows_per_s;
                g[mi][r] = T->ak[mi][bi].graph_s;
            }
            T->sq[bi] = tp_run(1, AKIDB_SYNC_ALWAYS, batches[bi], T->rows[bi], 0);
            v[2][r] = T->sq[bi].rows_per_s;
        }
        for (int mi = 0; mi < 2; mi++) {
            T->ak[mi][bi].rows_per_s = bench_median(v[mi], reps);
            T->ak[mi][bi].graph_s = bench_median(g[mi], reps);
        }
        T->sq[bi].rows_per_s = bench_median(v[2], reps);
    }
}

/* ---- latency during a sustained insert stream ---------------------------- */

typedef struct lat_res {
    double idle[4], busy[4];     /* p50, p99, p99.9, max (ms) */
    double busy_rows_per_s, busy_cpu_ratio, idle_cpu_ratio;
    uint64_t max_lag, linked;
    double scan_ms, graph_ms;    /* exact scan of a bound-sized tail; graph search */
    uint32_t bound;
} lat_res;

typedef struct stream {
    akidb *db;
    volatile int stop;
    uint32_t first, rows;
    uint64_t max_lag;
} stream;

static void *stream_main(void *arg)
{
    stream *s = arg;
    while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
        insert_rows(s->db, s->first + s->rows, 100, 100);
        s->rows += 100;
        uint64_t lag = lag_of(s->db);
        if (lag > s->max_lag)
            s->max_lag = lag;
    }
    return NULL;
}

static void latencies(akidb *db, int nq, double *out4, double *cpu_ratio)
{
    double *ms = malloc((size_t)nq * sizeof *ms);
    if (!ms)
        die("out of memory");
    akidb_search_params p;
    akidb_search_params_init(&p);
    p.ef = 64;
    float q[4096];
    uint64_t s = 99;
    double c0 = bench_cpu_now(), t0 = bench_now();
    for (int i = 0; i < nq; i++) {
        const float *r = row((uint32_t)(splitmix64(&s) % g_o.n));
        for (uint32_t d = 0; d < g_o.dim; d++)
            q[d] = r[d] + 0.02f * (unit(&s) - 0.5f);
        akidb_hit hits[10];
        uint32_t nh;
        double a = bench_now();
        check(akidb_search(db, COLL, q, 10, &p, hits, &nh), db, "search");
        ms[i] = (bench_now() - a) * 1000.0;
    }
    *cpu_ratio = (bench_cpu_now() - c0) / (bench_now() - t0);
    out4[0] = pct(ms, nq, 0.50);
    out4[1] = pct(ms, nq, 0.99);
    out4[2] = pct(ms, nq, 0.999);
    out4[3] = ms[nq - 1];
    free(ms);
}

static void section_latency(lat_res *L, const char *base)
{
    char dir[4096];
    path_of(dir, sizeof dir, "lat");
    printf("\n== search latency: idle, and during an insert stream ==\n");
    if (base && base[0]) {
        rm_tree(dir);
        if (rename(base, dir) != 0)
            die("rename %s: %s", base, strerror(errno));
    } else {
        rm_tree(dir);
        akidb *db = open_db(dir, AKIDB_SYNC_NONE, BIG_CKPT, AKIDB_NEVER);
        create_coll(db, 0);
        insert_rows(db, 0, g_o.n, 1000);
        check(akidb_index_wait(db, COLL, AKIDB_NEVER), db, "index_wait");
        check(akidb_close(db), NULL, "close");
    }
    akidb *db = open_db(dir, AKIDB_SYNC_INTERVAL, BIG_CKPT, 0);
    check(akidb_index_wait(db, COLL, AKIDB_NEVER), db, "index_wait");
    latencies(db, g_o.n_lat_q, L->idle, &L->idle_cpu_ratio);
    int64_t linked0 = metric(db, "akidb_index_linked_total");
    stream s = { db, 0, g_o.n, 0, 0 };
    pthread_t t;
    if (pthread_create(&t, NULL, stream_main, &s) != 0)
        die("pthread_create");
    double t0 = bench_now(), c0 = bench_cpu_now();
    latencies(db, g_o.n_lat_q, L->busy, &L->busy_cpu_ratio);
    double secs = bench_now() - t0, cpu = bench_cpu_now() - c0;
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
    L->busy_rows_per_s = s.rows / secs;
    L->max_lag = s.max_lag;
    L->linked = (uint64_t)(metric(db, "akidb_index_linked_total") - linked0);
    printf("RESULT kind=latency state=idle p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
           "cpu_wall=%.2f\n", L->idle[0], L->idle[1], L->idle[2], L->idle[3],
           L->idle_cpu_ratio);
    printf("RESULT kind=latency state=inserting p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f "
           "max_ms=%.3f search_thread_cpu_wall=%.2f process_cpu_wall=%.2f rows=%u "
           "rows_per_s=%.0f linked=%llu max_lag=%llu\n", L->busy[0], L->busy[1], L->busy[2],
           L->busy[3], L->busy_cpu_ratio, cpu / secs, s.rows, L->busy_rows_per_s,
           (unsigned long long)L->linked, (unsigned long long)L->max_lag);
    check(akidb_close(db), NULL, "close");
    rm_tree(dir);

    /* A tail of the default bound costs an exact scan of that many
     * vectors: time one, next to a graph search over n. */
    path_of(dir, sizeof dir, "scan");
    rm_tree(dir);
    db = open_db(dir, AKIDB_SYNC_NONE, BIG_CKPT, AKIDB_NEVER);
    create_coll(db, 0);
    /* the default bound: 8 MiB of vectors, as the library computes it */
    uint32_t bound = (uint32_t)((1u << 21) / g_o.dim);
    if (bound < 1024) bound = 1024;
    L->bound = bound;
    insert_rows(db, 0, bound, 1000);
    akidb_search_params p;
    akidb_search_params_init(&p);
    p.exact = 1;
    double v[200];
    akidb_hit hits[10];
    uint32_t nh;
    for (int i = 0; i < 200; i++) {
        double a = bench_now();
        check(akidb_search(db, COLL, row((uint32_t)i), 10, &p, hits, &nh), db, "scan");
        v[i] = (bench_now() - a) * 1000.0;
    }
    L->scan_ms = pct(v, 200, 0.5);
    L->graph_ms = L->idle[0];
    check(akidb_close(db), NULL, "close");
    rm_tree(dir);
    printf("RESULT kind=tail_scan rows=%u median_ms=%.3f graph_search_p50_ms=%.3f\n", bound,
           L->scan_ms, L->graph_ms);
}

/* ---- write amplification ---------------------------------------------------- */

typedef struct wa_res {
    double seconds, rows_per_s;
    uint64_t payload, wal, ckpt, n_ckpt, io, final_ckpt;
} wa_res;

static wa_res wa_run(uint64_t ckpt_bytes, const char *label)
{
    char dir[4096];
    wa_res r;
    memset(&r, 0, sizeof r);
    path_of(dir, sizeof dir, "wa");
    rm_tree(dir);
    uint64_t io0 = io_write_bytes();
    akidb *db = open_db(dir, AKIDB_SYNC_INTERVAL, ckpt_bytes, 0);
    create_coll(db, 40);   /* cheaper linking: the bytes do not depend on it */
    double t0 = bench_now();
    insert_rows(db, 0, g_o.n_wa, 100);
    r.seconds = bench_now() - t0;
    r.rows_per_s = g_o.n_wa / r.seconds;
    char meta[64];
    for (uint32_t i = 0; i < g_o.n_wa; i++)
        r.payload += (uint64_t)g_o.dim * 4 + (uint64_t)meta_of(i, meta, sizeof meta);
    r.wal = (uint64_t)metric(db, "akidb_wal_bytes_total");
    r.ckpt = (uint64_t)metric(db, "akidb_checkpoint_bytes_total");
    r.n_ckpt = (uint64_t)metric(db, "akidb_checkpoints_total");
    r.io = io_write_bytes() - io0;
    r.final_ckpt = dir_bytes(dir, "ckpt");
    check(akidb_close(db), NULL, "close");   /* not counted: it follows the run */
    rm_tree(dir);
    printf("RESULT kind=wa label=%s rows=%u seconds=%.2f rows_per_s=%.0f payload=%llu "
           "wal=%llu ckpt=%llu checkpoints=%llu io_write_bytes=%llu wa=%.2f wa_io=%.2f\n",
           label, g_o.n_wa, r.seconds, r.rows_per_s, (unsigned long long)r.payload,
           (unsigned long long)r.wal, (unsigned long long)r.ckpt,
           (unsigned long long)r.n_ckpt, (unsigned long long)r.io,
           (double)(r.wal + r.ckpt) / (double)r.payload, (double)r.io / (double)r.payload);
    return r;
}

/* ---- main --------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_ingest [--n N] [--n-b1 N] [--n-burst N] [--n-wa N] [--writers W]\n"
            "                    [--reps R] [--queries Q] [--dir DIR] [--md FILE]\n"
            "                    [--only reopen,throughput,latency,wa] [--quick]\n"
            "  --n N        records of the reopen test, documents of the latency test,\n"
            "               rows of the sustained batch-100 runs (default 100000)\n"
            "  --n-b1 N     rows of the batch-1 runs (default 4000)\n"
            "  --n-burst N  rows of the burst batch-100 runs (default 16000)\n"
            "  --n-wa N     rows of each write-amplification run (default 300000)\n"
            "  --writers W  writer threads of the throughput runs (default 8)\n"
            "  --reps R     repetitions (medians; default 3)\n"
            "  --queries Q  searches per latency measurement (default 2000)\n"
            "  --quick      smoke run: --n 5000 --n-b1 400 --n-burst 2000 --n-wa 20000\n"
            "               --reps 1 --queries 300\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    g_o.n = 100000;
    g_o.dim = 128;
    g_o.n_b1 = 4000;
    g_o.n_burst = 16000;
    g_o.n_wa = 300000;
    g_o.n_lat_q = 2000;
    g_o.writers = 8;
    g_o.reps = 3;
    g_o.dir = "build/bench/ingest-tmp";
    g_o.sections = SEC_REOPEN | SEC_THROUGHPUT | SEC_LATENCY | SEC_WA;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            g_o.n = 5000; g_o.n_b1 = 400; g_o.n_burst = 2000; g_o.n_wa = 20000;
            g_o.reps = 1; g_o.n_lat_q = 300;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--n")) g_o.n = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--n-b1")) g_o.n_b1 = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--n-burst")) g_o.n_burst = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--n-wa")) g_o.n_wa = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--writers")) g_o.writers = atoi(v);
        else if (!strcmp(a, "--reps")) g_o.reps = atoi(v);
        else if (!strcmp(a, "--queries")) g_o.n_lat_q = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--dir")) g_o.dir = v;
        else if (!strcmp(a, "--md")) g_o.md = v;
        else if (!strcmp(a, "--only")) {
            char buf[256];
            g_o.sections = 0;
            snprintf(buf, sizeof buf, "%s", v);
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                if (!strcmp(t, "reopen")) g_o.sections |= SEC_REOPEN;
                else if (!strcmp(t, "throughput")) g_o.sections |= SEC_THROUGHPUT;
                else if (!strcmp(t, "latency")) g_o.sections |= SEC_LATENCY;
                else if (!strcmp(t, "wa")) g_o.sections |= SEC_WA;
                else usage();
            }
        } else usage();
    }
    if (g_o.n < 1000 || g_o.writers < 1 || g_o.writers > MAX_WRITERS || g_o.reps < 1 ||
        g_o.reps > MAX_REPS || g_o.n_b1 < (uint32_t)g_o.writers || g_o.n_lat_q < 10 ||
        !g_o.sections)
        usage();
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    double t_start = bench_now();
    char cpu[256], load0[128], load1[128], cmd[4200], fs[256];
    if (mkdir(g_o.dir, 0755) != 0 && errno != EEXIST)
        die("cannot create %s: %s", g_o.dir, strerror(errno));
    g_md = open_memstream(&g_md_buf, &g_md_len);
    shell_line("lscpu | sed -n 's/^Model name: *//p'", cpu, sizeof cpu);
    shell_line("cut -d' ' -f1-3 /proc/loadavg", load0, sizeof load0);
    snprintf(cmd, sizeof cmd, "df -T '%s' | tail -n 1 | awk '{print $1\" \"$2}'", g_o.dir);
    shell_line(cmd, fs, sizeof fs);
    printf("machine: %s, %ld CPUs; dir %s on %s; AkiDB %s; SQLite %s; load %s\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), g_o.dir, fs, akidb_version(), sqlite3_libversion(),
           load0);
    uint32_t need = g_o.n * 2;
    if (g_o.n_wa > need) need = g_o.n_wa;
    if (g_o.n_burst > need) need = g_o.n_burst;
    g_rows = need;
    g_data = gen_data(g_rows, g_o.dim);
    double cpu0 = bench_cpu_now();

    static reopen_res R;
    static tp_table T;
    static lat_res L;
    static wa_res W[2];
    char base[4096] = "";
    if (g_o.sections & SEC_REOPEN)
        section_reopen(&R, base, sizeof base);
    if (g_o.sections & SEC_LATENCY)
        section_latency(&L, base);
    else if (base[0])
        rm_tree(base);
    if (g_o.sections & SEC_THROUGHPUT)
        section_throughput(&T);
    if (g_o.sections & SEC_WA) {
        printf("\n== write amplification: %u rows, batch 100, INTERVAL ==\n", g_o.n_wa);
        W[0] = wa_run(0, "default");
        W[1] = wa_run(64ull << 20, "fixed_64MiB");
    }
    shell_line("cut -d' ' -f1-3 /proc/loadavg", load1, sizeof load1);
    double total = bench_now() - t_start, total_cpu = bench_cpu_now() - cpu0;

    md("Machine: %s, %ld CPUs; directory on %s; AkiDB %s; SQLite %s.  Load average at "
       "start / end: %s / %s.  Whole run: %.0f s wall, %.0f s CPU of this process.  Data: "
       "%u-d float32, 256-cluster Gaussian mixture (seed 42), L2, M=16, "
       "ef_construction=200 unless noted.\n", cpu, sysconf(_SC_NPROCESSORS_ONLN), fs,
       akidb_version(), sqlite3_libversion(), load0, load1, total, total_cpu, g_o.dim);
    if (g_o.sections & SEC_REOPEN) {
        md("\n#### Reopen after SIGKILL with an unindexed log tail\n\n");
        md("| measure | value | target | |\n|---|---:|---|---|\n");
        md("| records in the log (single-row inserts, %.1f MiB), tail at the kill | %u, "
           "%llu unlinked | | |\n", R.log_bytes / 1048576.0, g_o.n,
           (unsigned long long)R.lag_at_kill);
        md("| akidb_open, median of %d (CPU %.3f s) | %.3f s | | |\n", g_o.reps, R.cpu_open_s,
           R.open_s);
        md("| open + first search (finds the last record at distance 0; count = %llu; %llu "
           "still unlinked when it answered) | %.3f s | < 1 s | %s |\n",
           (unsigned long long)R.docs, (unsigned long long)R.lag_at_first, R.first_s,
           R.first_s < 1.0 ? "met" : "**missed**");
        md("| open until the indexer had linked the whole tail | %.1f s | | |\n", R.catchup_s);
    }
    if (g_o.sections & SEC_THROUGHPUT) {
        static const char *bn[TP_ROWS] = { "1", "100 (burst)", "100 (sustained)",
                                           "100 (sustained, max_index_lag = AKIDB_NEVER)" };
        md("\n#### Durable insert throughput, %d writer threads, rows (vector, JSON metadata)"
           "\n\n", g_o.writers);
        md("| batch | rows | SQLite FULL rows/s | ALWAYS rows/s | / SQLite | INTERVAL rows/s | "
           "/ SQLite | target | graph complete (ALWAYS / INTERVAL) |\n");
        md("|---|---:|---:|---:|---:|---:|---:|---|---|\n");
        for (int bi = 0; bi < TP_ROWS; bi++) {
            double s = T.sq[bi].rows_per_s, a = T.ak[0][bi].rows_per_s,
                   iv = T.ak[1][bi].rows_per_s;
            double target = bi == 0 ? 1.0 : 0.8;
            md("| %s | %u | %.0f | %.0f | %.2f | %.0f | %.2f | >= %.1f: %s | %.1f s / %.1f s |\n",
               bn[bi], T.rows[bi], s, a, a / s, iv, iv / s, target,
               (a / s >= target && iv / s >= target) ? "met"
               : (a / s >= target || iv / s >= target) ? "one mode" : "**missed**",
               T.ak[0][bi].graph_s, T.ak[1][bi].graph_s);
        }
        md("\nMedians of %d runs (the sustained runs: one), AkiDB ALWAYS, INTERVAL and SQLite "
           "alternating.  Each writer inserts its own share; rows/s counts acknowledged "
           "rows.  \"graph complete\": from the start until akidb_index_wait returned.  The "
           "first sustained runs pass the default index-lag bound (%u at %u-d), so writers "
           "link nodes themselves and run at the indexing rate; the last lift the bound (a "
           "bulk load: the tail, which searches scan, grows until the indexer catches "
           "up).\n", g_o.reps,
           (1u << 21) / g_o.dim, g_o.dim);
    }
    if (g_o.sections & SEC_LATENCY) {
        md("\n#### Search latency, idle and during a sustained insert stream\n\n");
        md("| state | P50 ms | P99 ms | P99.9 ms | max ms |\n|---|---:|---:|---:|---:|\n");
        md("| idle (%u documents, linked) | %.3f | %.3f | %.3f | %.3f |\n", g_o.n, L.idle[0],
           L.idle[1], L.idle[2], L.idle[3]);
        md("| one writer inserting batches of 100 (INTERVAL): %.0f rows/s, %llu linked, tail "
           "up to %llu | %.3f | %.3f | %.3f | %.3f |\n", L.busy_rows_per_s,
           (unsigned long long)L.linked, (unsigned long long)L.max_lag, L.busy[0], L.busy[1],
           L.busy[2], L.busy[3]);
        md("\n%u searches each, one thread, k=10, ef=64; CPU/wall of the search thread: "
           "idle %.2f, inserting %.2f (2 CPUs shared by the searcher, the writer and the "
           "indexer).  An exact scan of a tail of the default bound (%u vectors) takes "
           "%.3f ms (median), against %.3f ms for an idle graph search.\n", g_o.n_lat_q,
           L.idle_cpu_ratio, L.busy_cpu_ratio, L.bound, L.scan_ms, L.graph_ms);
    }
    if (g_o.sections & SEC_WA) {
        md("\n#### Write amplification, one writer, batch 100, INTERVAL, %u rows\n\n",
           g_o.n_wa);
        md("| checkpoint threshold | rows/s | payload MiB | log MiB | checkpoints | checkpoint "
           "MiB | (log + checkpoints) / payload | kernel write_bytes / payload |\n");
        md("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        static const char *wn[2] = { "default (64 MiB or the last checkpoint's size)",
                                     "fixed 64 MiB (before issue 11)" };
        for (int i = 0; i < 2; i++)
            md("| %s | %.0f | %.1f | %.1f | %llu | %.1f | %.2f | %.2f |\n", wn[i],
               W[i].rows_per_s, W[i].payload / 1048576.0, W[i].wal / 1048576.0,
               (unsigned long long)W[i].n_ckpt, W[i].ckpt / 1048576.0,
               (double)(W[i].wal + W[i].ckpt) / W[i].payload, (double)W[i].io / W[i].payload);
        md("\nPayload: vector bytes + metadata bytes inserted.  ef_construction=40 in these "
           "runs (the bytes do not depend on it).  The close after each run is not counted.\n");
    }
    fclose(g_md);
    printf("\n%s", g_md_buf);
    if (g_o.md) {
        FILE *f = fopen(g_o.md, "w");
        if (!f || fputs(g_md_buf, f) < 0 || fclose(f) != 0)
            die("cannot write %s", g_o.md);
    }
    free(g_md_buf);
    free(g_data);
    return 0;
}
