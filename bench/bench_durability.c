/*
 * bench_durability.c - the durability benchmark (issue 3): what the
 * write-ahead log, group commit and checkpoints cost, and what they save.
 *
 * Measures, through the public API only (plus SQLite as the peer):
 *   - insert throughput (rows/s) for every sync mode (ALWAYS, INTERVAL,
 *     NONE) x batch size (1, 100), one writer; and for INTERVAL and NONE
 *     with 8 writer threads sharing one collection that already holds n
 *     documents, the two modes alternating in short pairs (target:
 *     INTERVAL >= 0.80 x NONE);
 *   - SQLite inserting the same rows (id INTEGER PRIMARY KEY, vector BLOB
 *     of dim*4 bytes) in WAL mode with synchronous=FULL, and NORMAL for
 *     reference, one transaction per batch; the AkiDB/SQLite ratio;
 *   - recovery: akidb_open() of a database whose log holds n records and
 *     no checkpoint (target < 1 s), split into log reading (delete-only
 *     records; records for a minimal index) and HNSW re-insertion;
 *   - reopen from a checkpoint (saved graph) vs rebuilding the graph
 *     (target: >= 10x faster).
 *
 * Data: n rows of dim 128 float32, a seeded mixture of 256 Gaussian
 * clusters (bench_clustered in bench_akidb.c).  Collections use the default
 * HNSW parameters (M=16, ef_construction=200) unless said otherwise.  Throughput runs set
 * checkpoint_bytes to 1 TiB so that no checkpoint lands inside a timed
 * run; one run uses the default (64 MiB) for comparison.
 *
 * Logs that must survive without a checkpoint are written by a forked
 * child that _exit()s without akidb_close() (close would checkpoint); the
 * parent then times akidb_open().  Everything lives under --dir, which must
 * be on the disk being measured (fsync cost depends on it).
 *
 * Output: human-readable progress, machine-readable `RESULT key=value ...`
 * lines, and a markdown table (also written to --md).
 */
#define _GNU_SOURCE
#include "akidb.h"
#include "bench_akidb.h"
#include "bench_common.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define COLL "vecs"
#define MAX_REPS 9
#define BIG_CKPT ((uint64_t)1 << 40)   /* 1 TiB: no checkpoint inside a run */

typedef struct opts {
    uint32_t n;          /* rows for most runs */
    uint32_t n_sync;     /* rows for runs that fsync every row */
    uint32_t n_multi;    /* rows per concurrent-writer run, added to an n-row base */
    int reps_multi;      /* INTERVAL/NONE pairs of concurrent-writer runs */
    uint32_t dim;
    int writers;
    int reps;            /* repetitions of the cheap measurements */
    int reps_long;       /* repetitions of the one-writer batch-100 runs */
    const char *dir;
    const char *md;
    int skip_default_ckpt;
    uint32_t interval_ms; /* sync_interval_ms for INTERVAL runs */
    unsigned sections;    /* SEC_* */
} opts;

#define SEC_RECOVERY 1u
#define SEC_SINGLE   2u
#define SEC_MULTI    4u
#define SEC_SQLITE   8u

static opts g_o;
static float *g_data;    /* (n + n_multi) x dim */
static FILE *g_md;       /* collected markdown (a memstream) */
static char *g_md_buf;
static size_t g_md_len;

/* ---- small helpers ------------------------------------------------------ */

static void md(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(g_md, fmt, ap);
    va_end(ap);
}

static void path_of(char *buf, size_t cap, const char *name)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", g_o.dir, name) >= cap)
        bench_die("path too long: %s/%s", g_o.dir, name);
}

static void copy_tree(const char *from, const char *to)
{
    char cmd[8300];
    bench_rm_tree(to);
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", from, to);
    if (system(cmd) != 0)
        bench_die("copy failed: %s", cmd);
}

/* Bytes in the regular files of dir/wal (the collection logs). */
static uint64_t wal_bytes(const char *db_dir)
{
    char cmd[4200], line[256];
    uint64_t total = 0;
    snprintf(cmd, sizeof cmd, "du -sb '%s/wal' 2>/dev/null", db_dir);
    FILE *p = popen(cmd, "r");
    if (p) {
        if (fgets(line, sizeof line, p))
            total = strtoull(line, NULL, 10);
        pclose(p);
    }
    return total;
}

/* First line of `cmd`'s output that contains `key` (or the last line when
 * key is NULL), stripped; "unknown" when there is none. */
static void shell_line(const char *cmd, const char *key, char *out, size_t cap)
{
    char line[512];
    snprintf(out, cap, "unknown");
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        if (!key || strstr(line, key)) {
            const char *s = line;
            if (key && (s = strchr(line, ':')) != NULL)
                for (s++; *s == ' '; s++) {
                }
            snprintf(out, cap, "%s", s ? s : line);
            if (key)
                break;
        }
    }
    pclose(p);
}

/* ---- data --------------------------------------------------------------- */

/* ---- AkiDB helpers ------------------------------------------------------ */

static const char *mode_name(akidb_sync_mode m)
{
    return m == AKIDB_SYNC_ALWAYS ? "always" : m == AKIDB_SYNC_INTERVAL ? "interval" : "none";
}

static akidb *open_db(const char *dir, akidb_sync_mode mode, uint64_t ckpt_bytes)
{
    akidb_options o;
    akidb *db = NULL;
    akidb_options_init(&o);
    o.sync_mode = mode;
    o.checkpoint_bytes = ckpt_bytes;
    bench_check(akidb_open(dir, &o, &db), NULL, dir);
    return db;
}

static void create_coll(akidb *db, uint32_t m, uint32_t efc)
{
    akidb_collection_config c;
    akidb_collection_config_init(&c, g_o.dim, AKIDB_METRIC_L2);
    if (m)
        c.hnsw_m = m;
    if (efc)
        c.ef_construction = efc;
    bench_check(akidb_collection_create(db, COLL, &c), db, "collection_create");
}

static int64_t metric(akidb *db, const char *name)
{
    int64_t v = -1;
    bench_check(akidb_metric_value(db, name, &v), db, name);
    return v;
}

static uint64_t count_docs(akidb *db)
{
    uint64_t n = 0;
    bench_check(akidb_collection_count(db, COLL, &n), db, "collection_count");
    return n;
}

/* Insert rows [first, first+n) of g_data in batches. */
static void insert_rows(akidb *db, uint32_t first, uint32_t n, uint32_t batch)
{
    for (uint32_t i = 0; i < n; i += batch) {
        uint32_t k = n - i < batch ? n - i : batch;
        bench_check(akidb_insert(db, COLL, k, g_data + (size_t)(first + i) * g_o.dim, NULL, NULL,
                           NULL), db, "insert");
    }
}

typedef struct writer {
    akidb *db;
    pthread_barrier_t *start;
    uint32_t first, n, batch;
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    pthread_barrier_wait(w->start);
    insert_rows(w->db, w->first, w->n, w->batch);
    return NULL;
}

typedef struct run_result {
    double seconds, cpu_seconds, rows_per_s;
    int64_t syncs, checkpoints, records, wal_bytes;
    long vcsw, ivcsw;    /* voluntary / involuntary context switches */
} run_result;

static void ctx_switches(long *v, long *iv)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *v = ru.ru_nvcsw;
    *iv = ru.ru_nivcsw;
}

/* One insert run: rows [first, first+n) of g_data by `writers` threads,
 * each inserting its own contiguous share.  Into a fresh database with an
 * empty collection, or, when `base` is given, into a copy of that
 * checkpointed database (holding base_docs documents).  Only the inserts
 * are timed. */
static run_result insert_run_on(const char *base, uint64_t base_docs, uint32_t first,
                                akidb_sync_mode mode, uint32_t batch, int writers, uint32_t n,
                                uint64_t ckpt_bytes, const char *label)
{
    char dir[4096];
    run_result r;
    path_of(dir, sizeof dir, "run");
    bench_rm_tree(dir);
    if (base)
        copy_tree(base, dir);
    akidb *db = open_db(dir, mode, ckpt_bytes);
    if (!base)
        create_coll(db, 0, 0);
    int64_t syncs0 = metric(db, "akidb_wal_syncs_total");
    long v0, iv0, v1, iv1;
    ctx_switches(&v0, &iv0);
    double c0 = bench_cpu_now(), t0 = bench_now();
    if (writers <= 1) {
        insert_rows(db, first, n, batch);
    } else {
        pthread_t th[64];
        writer w[64];
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)writers + 1);
        for (int i = 0; i < writers; i++) {
            uint32_t lo = (uint32_t)((uint64_t)n * (uint64_t)i / (uint64_t)writers);
            uint32_t hi = (uint32_t)((uint64_t)n * (uint64_t)(i + 1) / (uint64_t)writers);
            w[i] = (writer){ db, &start, first + lo, hi - lo, batch };
            if (pthread_create(&th[i], NULL, writer_main, &w[i]) != 0)
                bench_die("pthread_create failed");
        }
        t0 = bench_now();
        c0 = bench_cpu_now();
        ctx_switches(&v0, &iv0);
        pthread_barrier_wait(&start);
        for (int i = 0; i < writers; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&start);
    }
    r.seconds = bench_now() - t0;
    r.cpu_seconds = bench_cpu_now() - c0;
    ctx_switches(&v1, &iv1);
    r.vcsw = v1 - v0;
    r.ivcsw = iv1 - iv0;
    r.rows_per_s = n / r.seconds;
    r.wal_bytes = metric(db, "akidb_wal_bytes_total");
    r.syncs = metric(db, "akidb_wal_syncs_total") - syncs0;
    r.checkpoints = metric(db, "akidb_checkpoints_total");
    r.records = metric(db, "akidb_wal_records_total");
    if (count_docs(db) != base_docs + n)
        bench_die("%s: %llu documents after inserting %u", label,
            (unsigned long long)count_docs(db), n);
    bench_check(akidb_close(db), NULL, "close");
    bench_rm_tree(dir);
    printf("RESULT kind=insert impl=akidb label=%s mode=%s batch=%u writers=%d rows=%u "
           "base_docs=%llu seconds=%.3f cpu_seconds=%.3f rows_per_s=%.1f syncs=%lld "
           "records=%lld checkpoints=%lld ckpt_bytes=%llu vcsw=%ld ivcsw=%ld\n", label,
           mode_name(mode), batch, writers, n, (unsigned long long)base_docs, r.seconds,
           r.cpu_seconds, r.rows_per_s, (long long)r.syncs, (long long)r.records,
           (long long)r.checkpoints, (unsigned long long)ckpt_bytes, r.vcsw, r.ivcsw);
    fflush(stdout);
    return r;
}

/* An insert run into a fresh database and an empty collection. */
static run_result insert_run(akidb_sync_mode mode, uint32_t batch, int writers, uint32_t n,
                             uint64_t ckpt_bytes, const char *label)
{
    return insert_run_on(NULL, 0, 0, mode, batch, writers, n, ckpt_bytes, label);
}

/* ---- child processes ---------------------------------------------------- */

/* What a child reports back through its pipe. */
typedef struct child_msg {
    double seconds, cpu_seconds;
    int64_t a, b, c;
} child_msg;

typedef void (*child_fn)(void *arg, child_msg *m);

/* Run fn in a forked child, which reports *m and _exit(0)s without
 * closing anything (so logs stay un-checkpointed). */
static child_msg in_child(child_fn fn, void *arg)
{
    int p[2];
    child_msg m;
    memset(&m, 0, sizeof m);
    if (pipe(p) != 0)
        bench_die("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        fn(arg, &m);
        if (write(p[1], &m, sizeof m) != (ssize_t)sizeof m)
            _exit(2);
        fflush(stdout);
        _exit(0);   /* no akidb_close(): it would checkpoint */
    }
    close(p[1]);
    ssize_t got = read(p[0], &m, sizeof m);
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (got != (ssize_t)sizeof m || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_die("child failed (status %d)", st);
    return m;
}

typedef struct fill_arg {
    const char *dir;
    uint32_t m, efc;   /* HNSW parameters, 0 = default */
    uint32_t n;
} fill_arg;

/* Child: a fresh database, n rows inserted one per call with sync NONE
 * (the log format does not depend on the mode).  Reports the insert time,
 * records appended and log bytes. */
static void child_fill(void *arg, child_msg *m)
{
    const fill_arg *f = arg;
    bench_rm_tree(f->dir);
    akidb *db = open_db(f->dir, AKIDB_SYNC_NONE, BIG_CKPT);
    create_coll(db, f->m, f->efc);
    double c0 = bench_cpu_now(), t0 = bench_now();
    insert_rows(db, 0, f->n, 1);
    m->seconds = bench_now() - t0;
    m->cpu_seconds = bench_cpu_now() - c0;
    m->a = metric(db, "akidb_wal_records_total");
    m->b = metric(db, "akidb_wal_bytes_total");
    m->c = (int64_t)count_docs(db);
}

/* Child: open a checkpointed database and delete every document, one
 * delete record each (sync NONE). */
static void child_delete_all(void *arg, child_msg *m)
{
    const fill_arg *f = arg;
    akidb *db = open_db(f->dir, AKIDB_SYNC_NONE, BIG_CKPT);
    uint64_t left = count_docs(db);
    double t0 = bench_now();
    int64_t deleted = 0;
    /* Ids are assigned from 1 upward; probe a little past n. */
    for (uint64_t id = 1; left > 0 && id <= (uint64_t)f->n + 1000; id++) {
        int rc = akidb_delete(db, COLL, id);
        if (rc == AKIDB_OK) {
            deleted++;
            left--;
        } else if (rc != AKIDB_NOTFOUND) {
            bench_check(rc, db, "delete");
        }
    }
    m->seconds = bench_now() - t0;
    m->a = deleted;
    m->b = metric(db, "akidb_wal_records_total");
    m->c = (int64_t)left;
}

/* Child: time akidb_open() (recovery), then _exit without closing so the
 * log is left as it was for the next repetition. */
static void child_open(void *arg, child_msg *m)
{
    const fill_arg *f = arg;
    double c0 = bench_cpu_now(), t0 = bench_now();
    akidb *db = open_db(f->dir, AKIDB_SYNC_NONE, BIG_CKPT);
    m->seconds = bench_now() - t0;
    m->cpu_seconds = bench_cpu_now() - c0;
    m->a = metric(db, "akidb_wal_replayed_records_total");
    m->b = (int64_t)count_docs(db);
}

/* Median over `reps` child-timed opens of `dir`. */
static double timed_opens(const char *dir, const char *label, int reps, int64_t *replayed,
                          int64_t *docs)
{
    double t[MAX_REPS];
    fill_arg f = { dir, 0, 0, 0 };
    for (int r = 0; r < reps; r++) {
        child_msg m = in_child(child_open, &f);
        t[r] = m.seconds;
        *replayed = m.a;
        *docs = m.b;
        printf("RESULT kind=open label=%s rep=%d seconds=%.4f cpu_seconds=%.4f "
               "replayed=%lld docs=%lld\n", label, r + 1, m.seconds, m.cpu_seconds,
               (long long)m.a, (long long)m.b);
    }
    return bench_median(t, reps);
}

/* ---- SQLite peer -------------------------------------------------------- */

static void sq_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        bench_die("sqlite: %s: %s", sql, err ? err : "?");
}

/* SQLite in WAL mode inserting rows [0, n) as (id, vector BLOB), one
 * transaction per batch.  Returns rows/s over the inserts. */
static double sqlite_run(const char *sync, uint32_t batch, uint32_t n)
{
    char path[4096], pragma[64];
    path_of(path, sizeof path, "peer.sqlite");
    char side[4200];
    const char *sfx[] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        snprintf(side, sizeof side, "%s%s", path, sfx[i]);
        remove(side);
    }
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        bench_die("sqlite open %s: %s", path, sqlite3_errmsg(db));
    sq_exec(db, "PRAGMA journal_mode=WAL");
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous=%s", sync);
    sq_exec(db, pragma);
    sq_exec(db, "CREATE TABLE vecs (id INTEGER PRIMARY KEY, vector BLOB NOT NULL)");
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(db, "INSERT INTO vecs (id, vector) VALUES (?, ?)", -1, &ins,
                           NULL) != SQLITE_OK)
        bench_die("sqlite prepare: %s", sqlite3_errmsg(db));
    const int blob_len = (int)(g_o.dim * sizeof(float));
    double t0 = bench_now();
    for (uint32_t i = 0; i < n; i += batch) {
        uint32_t k = n - i < batch ? n - i : batch;
        sq_exec(db, "BEGIN");
        for (uint32_t j = i; j < i + k; j++) {
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)j + 1);
            sqlite3_bind_blob(ins, 2, g_data + (size_t)j * g_o.dim, blob_len, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE)
                bench_die("sqlite insert: %s", sqlite3_errmsg(db));
            sqlite3_reset(ins);
        }
        sq_exec(db, "COMMIT");
    }
    double secs = bench_now() - t0;
    sqlite3_finalize(ins);
    sqlite3_close(db);
    for (int i = 0; i < 3; i++) {
        snprintf(side, sizeof side, "%s%s", path, sfx[i]);
        remove(side);
    }
    return n / secs;
}

/* ---- main --------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_durability [--n N] [--n-sync N] [--writers W] [--reps R]\n"
            "                        [--dir DIR] [--md FILE] [--quick] [--no-default-ckpt]\n"
            "  --n N        rows for most runs (default 100000)\n"
            "  --n-sync N   rows for one-writer runs that fsync every row\n"
            "               (ALWAYS and INTERVAL with batch 1; SQLite FULL batch 1;\n"
            "               default 5000)\n"
            "  --writers W  concurrent writer threads (default 8)\n"
            "  --n-multi N  rows each concurrent-writer run adds to a collection that\n"
            "               already holds n (default 8000)\n"
            "  --reps-multi R  INTERVAL/NONE pairs of concurrent-writer runs (default 5)\n"
            "  --reps R     repetitions of the cheap measurements, median (default 3)\n"
            "  --reps-long R  repetitions of the one-writer batch-100 runs (n rows each,\n"
            "               about 20 s each here; default 1)\n"
            "  --dir DIR    scratch directory, on the disk to measure (default\n"
            "               build/bench/durability-tmp)\n"
            "  --md FILE    also write the markdown tables there\n"
            "  --only LIST  sections to run, comma-separated: recovery, single, multi,\n"
            "               sqlite (default all)\n"
            "  --interval-ms N   ignored (the option it set was removed from the library)\n"
            "  --no-default-ckpt skip the run with the default checkpoint_bytes\n"
            "  --quick      smoke run: --n 5000 --n-sync 500 --n-multi 1000\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    g_o.n = 100000;
    g_o.n_sync = 5000;
    g_o.dim = 128;
    g_o.writers = 8;
    g_o.reps = 3;
    g_o.reps_long = 1;
    g_o.n_multi = 8000;
    g_o.reps_multi = 5;
    g_o.dir = "build/bench/durability-tmp";
    g_o.interval_ms = 10;
    g_o.sections = SEC_RECOVERY | SEC_SINGLE | SEC_MULTI | SEC_SQLITE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            g_o.n = 5000;
            g_o.n_sync = 500;
            g_o.n_multi = 1000;
        } else if (!strcmp(a, "--no-default-ckpt")) {
            g_o.skip_default_ckpt = 1;
        } else if (!v) {
            usage();
        } else if (!strcmp(a, "--n")) {
            g_o.n = (uint32_t)strtoul(v, NULL, 10); i++;
        } else if (!strcmp(a, "--n-sync")) {
            g_o.n_sync = (uint32_t)strtoul(v, NULL, 10); i++;
        } else if (!strcmp(a, "--reps-multi")) {
            g_o.reps_multi = atoi(v); i++;
        } else if (!strcmp(a, "--n-multi")) {
            g_o.n_multi = (uint32_t)strtoul(v, NULL, 10); i++;
        } else if (!strcmp(a, "--writers")) {
            g_o.writers = atoi(v); i++;
        } else if (!strcmp(a, "--reps")) {
            g_o.reps = atoi(v); i++;
        } else if (!strcmp(a, "--reps-long")) {
            g_o.reps_long = atoi(v); i++;
        } else if (!strcmp(a, "--dir")) {
            g_o.dir = v; i++;
        } else if (!strcmp(a, "--interval-ms")) {
            g_o.interval_ms = (uint32_t)strtoul(v, NULL, 10); i++;
        } else if (!strcmp(a, "--only")) {
            g_o.sections = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                if (!strcmp(tok, "recovery")) g_o.sections |= SEC_RECOVERY;
                else if (!strcmp(tok, "single")) g_o.sections |= SEC_SINGLE;
                else if (!strcmp(tok, "multi")) g_o.sections |= SEC_MULTI;
                else if (!strcmp(tok, "sqlite")) g_o.sections |= SEC_SQLITE;
                else usage();
            }
            i++;
        } else if (!strcmp(a, "--md")) {
            g_o.md = v; i++;
        } else {
            usage();
        }
    }
    if (g_o.n < 100 || g_o.n_sync < 1 || g_o.n_sync > g_o.n || g_o.writers < 1 ||
        g_o.writers > 64 || g_o.reps < 1 || g_o.reps > MAX_REPS || !g_o.sections ||
        g_o.reps_long < 1 || g_o.reps_long > MAX_REPS || g_o.n_multi < 1 ||
        g_o.n_multi > 10000000 || g_o.reps_multi < 1 || g_o.reps_multi > MAX_REPS ||
        g_o.interval_ms < 1 || g_o.interval_ms > 10000)
        usage();
}

static const char *pass(int ok) { return ok ? "met" : "**missed**"; }

/* Everything measured, for the tables. */
typedef struct results {
    /* recovery */
    double fill_s, fill_cpu_s, recover_s, recover_cpu_s, ckpt_s, reopen_s;
    double rebuild_s;   /* recover_s + akidb_index_wait: the graph complete */
    double del_open_s, del_replay_s, small_open_s;
    int64_t fill_records, replayed, del_replayed, small_replayed;
    uint64_t log_bytes;
    /* throughput: [always, interval, none][batch 1, 100] and
     * [interval, none][batch 1, 100] */
    run_result single[3][2], multi[2][2], defck;
    double multi_ratio[2][MAX_REPS], multi_ratio_med[2];   /* per pair, median */
    double multi_busy[2][2];   /* median CPU/wall of the runs */
    char base[4096];   /* a checkpointed database holding rows [0, n), or "" */
    double sq[2][2];   /* SQLite [FULL, NORMAL][batch 1, 100], rows/s */
} results;

static const akidb_sync_mode k_modes[3] = { AKIDB_SYNC_ALWAYS, AKIDB_SYNC_INTERVAL,
                                            AKIDB_SYNC_NONE };

/* Rows a one-writer run uses: runs that fsync every row use n_sync. */
static uint32_t single_rows(int mi, int bi)
{
    return (bi == 0 && k_modes[mi] != AKIDB_SYNC_NONE) ? g_o.n_sync : g_o.n;
}

/* 1-3: recovery of an n-record log, reopen from a checkpoint, and the
 * split of recovery time.  The fill is also the NONE / batch 1 run. */
static void section_recovery(results *R)
{
    const uint32_t n = g_o.n;
    char dbdir[4096], deldir[4096], smalldir[4096];

    printf("\n== recovery: %u single-row insert records, no checkpoint ==\n", n);
    path_of(dbdir, sizeof dbdir, "rec");
    fill_arg fa = { dbdir, 0, 0, n };
    child_msg fill = in_child(child_fill, &fa);
    R->fill_s = fill.seconds;
    R->fill_cpu_s = fill.cpu_seconds;
    R->fill_records = fill.a;
    R->log_bytes = wal_bytes(dbdir);
    run_result *r = &R->single[2][0];
    r->seconds = fill.seconds;
    r->cpu_seconds = fill.cpu_seconds;
    r->rows_per_s = n / fill.seconds;
    r->records = fill.a;
    printf("RESULT kind=insert impl=akidb label=single mode=none batch=1 writers=1 rows=%u "
           "seconds=%.3f cpu_seconds=%.3f rows_per_s=%.1f syncs=0 records=%lld "
           "checkpoints=0 ckpt_bytes=%llu\n", n, fill.seconds, fill.cpu_seconds,
           r->rows_per_s, (long long)fill.a, (unsigned long long)BIG_CKPT);
    printf("RESULT kind=log label=full records=%lld bytes=%llu\n", (long long)fill.a,
           (unsigned long long)R->log_bytes);

    /* Timed in the parent, once (it costs as much as a rebuild); then the
     * same handle checkpoints, timed too. */
    double c0 = bench_cpu_now(), t0 = bench_now();
    akidb *db = open_db(dbdir, AKIDB_SYNC_NONE, BIG_CKPT);
    R->recover_s = bench_now() - t0;
    R->recover_cpu_s = bench_cpu_now() - c0;
    R->replayed = metric(db, "akidb_wal_replayed_records_total");
    if (count_docs(db) != n)
        bench_die("recovery: %llu documents, expected %u", (unsigned long long)count_docs(db), n);
    printf("RESULT kind=recovery label=full records=%lld seconds=%.3f cpu_seconds=%.3f "
           "replayed=%lld\n", (long long)fill.a, R->recover_s, R->recover_cpu_s,
           (long long)R->replayed);
    /* The open returns with the replayed documents in the tail (searched
     * exactly); the indexer links them afterwards.  The rebuild that a
     * checkpoint saves is open + linking. */
    t0 = bench_now();
    bench_check(akidb_index_wait(db, COLL, AKIDB_NEVER), db, "index wait");
    R->rebuild_s = R->recover_s + (bench_now() - t0);
    printf("RESULT kind=rebuild label=full records=%lld seconds=%.3f\n", (long long)fill.a,
           R->rebuild_s);
    t0 = bench_now();
    bench_check(akidb_checkpoint(db, COLL), db, "checkpoint");
    R->ckpt_s = bench_now() - t0;
    bench_check(akidb_close(db), NULL, "close");
    printf("RESULT kind=checkpoint docs=%u seconds=%.3f\n", n, R->ckpt_s);

    /* A copy of the checkpointed database gets n delete records, one per
     * document.  Opening it = loading the same checkpoint + replaying them;
     * the two kinds of open alternate so both see the same machine load. */
    printf("\n== reopen from checkpoint; recovery split: delete-only log ==\n");
    path_of(deldir, sizeof deldir, "del");
    copy_tree(dbdir, deldir);
    fill_arg da = { deldir, 0, 0, n };
    child_msg del = in_child(child_delete_all, &da);
    if (del.a != (int64_t)n || del.c != 0)
        bench_die("delete-all: deleted %lld of %u", (long long)del.a, n);
    double t_ck[MAX_REPS], t_del[MAX_REPS], t_diff[MAX_REPS];
    int64_t docs = 0;
    for (int i = 0; i < g_o.reps; i++) {
        int64_t rp = 0;
        t_ck[i] = timed_opens(dbdir, "checkpoint", 1, &rp, &docs);
        if (docs != (int64_t)n || rp != 0)
            bench_die("reopen: %lld documents, %lld replayed", (long long)docs, (long long)rp);
        t_del[i] = timed_opens(deldir, "delete_log", 1, &R->del_replayed, &docs);
        if (docs != 0 || R->del_replayed != (int64_t)n)
            bench_die("delete log: %lld docs, %lld replayed", (long long)docs,
                (long long)R->del_replayed);
        t_diff[i] = t_del[i] - t_ck[i];
    }
    R->reopen_s = bench_median(t_ck, g_o.reps);
    R->del_open_s = bench_median(t_del, g_o.reps);
    R->del_replay_s = bench_median(t_diff, g_o.reps);
    printf("RESULT kind=recovery label=delete_only records=%lld seconds=%.4f "
           "checkpoint_load_seconds=%.4f replay_seconds=%.4f\n", (long long)R->del_replayed,
           R->del_open_s, R->reopen_s, R->del_replay_s);
    bench_rm_tree(deldir);
    snprintf(R->base, sizeof R->base, "%s", dbdir);   /* kept for section_multi */

    printf("\n== recovery split: minimal-index log ==\n");
    path_of(smalldir, sizeof smalldir, "small");
    fill_arg sa = { smalldir, 2, 1, n };
    child_msg sfill = in_child(child_fill, &sa);
    R->small_open_s = timed_opens(smalldir, "minimal_index_log", g_o.reps,
                                  &R->small_replayed, &docs);
    if (docs != (int64_t)n || R->small_replayed != (int64_t)n)
        bench_die("minimal-index log: %lld docs, %lld replayed", (long long)docs,
            (long long)R->small_replayed);
    printf("RESULT kind=recovery label=minimal_index records=%lld seconds=%.4f "
           "fill_seconds=%.3f\n", (long long)R->small_replayed, R->small_open_s,
           sfill.seconds);
    bench_rm_tree(smalldir);
}

/* 4: one writer, every mode x batch (NONE / batch 1 is the recovery fill,
 * unless that section did not run).  The machine may be shared and the
 * disk's fsync latency drifts, so the modes alternate and the medians
 * count: ALWAYS and INTERVAL with batch 1 (n_sync rows each, reps times),
 * then all three modes with batch 100 (n rows each, reps_long times). */
static void section_single(results *R, int have_fill)
{
    printf("\n== insert throughput, one writer (checkpoint_bytes 1 TiB) ==\n");
    if (!have_fill)
        R->single[2][0] = insert_run(AKIDB_SYNC_NONE, 1, 1, single_rows(2, 0), BIG_CKPT,
                                     "single");
    for (int bi = 0; bi < 2; bi++) {
        const int n_modes = bi ? 3 : 2, reps = bi ? g_o.reps_long : g_o.reps;
        double rps[3][MAX_REPS], secs[3][MAX_REPS], cpus[3][MAX_REPS];
        for (int i = 0; i < reps; i++)
            for (int mi = 0; mi < n_modes; mi++) {
                R->single[mi][bi] = insert_run(k_modes[mi], bi ? 100 : 1, 1,
                                               single_rows(mi, bi), BIG_CKPT, "single");
                rps[mi][i] = R->single[mi][bi].rows_per_s;
                secs[mi][i] = R->single[mi][bi].seconds;
                cpus[mi][i] = R->single[mi][bi].cpu_seconds;
            }
        for (int mi = 0; mi < n_modes; mi++) {
            R->single[mi][bi].rows_per_s = bench_median(rps[mi], reps);
            R->single[mi][bi].seconds = bench_median(secs[mi], reps);
            R->single[mi][bi].cpu_seconds = bench_median(cpus[mi], reps);
        }
    }
    if (!g_o.skip_default_ckpt) {
        printf("\n== default checkpoint_bytes (64 MiB), one writer, INTERVAL, batch 100 ==\n");
        R->defck = insert_run(AKIDB_SYNC_INTERVAL, 100, 1, g_o.n, 0, "default_ckpt");
    }
}

/* 5: concurrent writers on one collection, INTERVAL vs NONE.  Each run
 * copies a checkpointed database holding the n base rows and adds n_multi
 * more (rows n .. n+n_multi-1), so every run inserts into a collection of
 * n documents.  The two modes alternate (INTERVAL, NONE, INTERVAL, ...) in
 * reps_multi short pairs, and the ratio is the median of the pairs'
 * ratios: a burst of load from elsewhere on the machine spoils one pair,
 * not one mode. */
static void section_multi(results *R)
{
    if (!R->base[0]) {
        printf("\n== base: %u rows, batch 1000, NONE ==\n", g_o.n);
        path_of(R->base, sizeof R->base, "base");
        bench_rm_tree(R->base);
        akidb *db = open_db(R->base, AKIDB_SYNC_NONE, BIG_CKPT);
        create_coll(db, 0, 0);
        insert_rows(db, 0, g_o.n, 1000);
        bench_check(akidb_close(db), NULL, "close");
    }
    printf("\n== insert throughput, %d writers on one collection of %u ==\n", g_o.writers,
           g_o.n);
    const int reps = g_o.reps_multi;
    for (int bi = 0; bi < 2; bi++) {
        double rps[2][MAX_REPS], cpus[2][MAX_REPS], syncs[2][MAX_REPS], busy[2][MAX_REPS];
        for (int i = 0; i < reps; i++) {
            for (int mi = 0; mi < 2; mi++) {
                run_result r = insert_run_on(R->base, g_o.n, g_o.n,
                                             mi ? AKIDB_SYNC_NONE : AKIDB_SYNC_INTERVAL,
                                             bi ? 100 : 1, g_o.writers, g_o.n_multi, BIG_CKPT,
                                             "multi");
                rps[mi][i] = r.rows_per_s;
                cpus[mi][i] = r.cpu_seconds;
                syncs[mi][i] = (double)r.syncs;
                busy[mi][i] = r.cpu_seconds / r.seconds;
            }
            R->multi_ratio[bi][i] = rps[0][i] / rps[1][i];
        }
        for (int mi = 0; mi < 2; mi++) {
            R->multi[mi][bi].rows_per_s = bench_median(rps[mi], reps);
            R->multi[mi][bi].cpu_seconds = bench_median(cpus[mi], reps);
            R->multi[mi][bi].syncs = (int64_t)bench_median(syncs[mi], reps);
            R->multi_busy[mi][bi] = bench_median(busy[mi], reps);
        }
        R->multi_ratio_med[bi] = bench_median(R->multi_ratio[bi], reps);
    }
}

/* 7: SQLite, WAL mode, FULL and NORMAL, batch 1 and 100; medians. */
static void section_sqlite(results *R)
{
    static const char *const sync_name[2] = { "FULL", "NORMAL" };
    printf("\n== SQLite %s, WAL mode, one writer ==\n", sqlite3_libversion());
    for (int si = 0; si < 2; si++)
        for (int bi = 0; bi < 2; bi++) {
            uint32_t batch = bi ? 100 : 1;
            uint32_t rows = (si == 0 && batch == 1) ? g_o.n_sync : g_o.n;
            double v[MAX_REPS];
            for (int i = 0; i < g_o.reps; i++) {
                v[i] = sqlite_run(sync_name[si], batch, rows);
                printf("RESULT kind=insert impl=sqlite synchronous=%s batch=%u rows=%u rep=%d "
                       "rows_per_s=%.1f\n", sync_name[si], batch, rows, i + 1, v[i]);
            }
            R->sq[si][bi] = bench_median(v, g_o.reps);
        }
}

static void ratio_cell(double a, double b)
{
    if (a > 0 && b > 0)
        md(" %.0f | %.2f |", b, a / b);
    else
        md(" n/a | n/a |");
}

static void tables(const results *R, const char *machine)
{
    const uint32_t n = g_o.n;
    md("%s\n\n", machine);
    md("Data: %u x %u float32 (256-cluster Gaussian mixture, seed 42), L2, HNSW M=16, "
       "ef_construction=200.  Throughput runs start from an empty collection, use "
       "checkpoint_bytes = 1 TiB (no checkpoint inside a run) and time only the insert "
       "calls.\n", n, g_o.dim);

    if (g_o.sections & (SEC_SINGLE | SEC_RECOVERY)) {
        md("\n#### Insert throughput, one writer\n\n");
        md("| sync mode | batch | rows | AkiDB rows/s | fsyncs/run | SQLite FULL rows/s | "
           "AkiDB / SQLite FULL | SQLite NORMAL rows/s | AkiDB / SQLite NORMAL |\n");
        md("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int mi = 0; mi < 3; mi++)
            for (int bi = 0; bi < 2; bi++) {
                const run_result *r = &R->single[mi][bi];
                if (r->rows_per_s <= 0)
                    continue;
                md("| %s | %d | %u | %.0f | %lld |", mode_name(k_modes[mi]), bi ? 100 : 1,
                   single_rows(mi, bi), r->rows_per_s, (long long)r->syncs);
                ratio_cell(r->rows_per_s, R->sq[0][bi]);
                ratio_cell(r->rows_per_s, R->sq[1][bi]);
                md("\n");
            }
        md("\nAkiDB: batch 1 with ALWAYS and INTERVAL, median of %d runs, the two "
           "alternating; batch 100, %s; NONE with batch 1, one run%s.  ", g_o.reps,
           g_o.reps_long > 1 ? "median of alternating runs" : "one run each",
           (g_o.sections & SEC_RECOVERY) ? " (the fill of the recovery test)" : "");
        md("SQLite: the same rows (id INTEGER PRIMARY KEY, vector BLOB of %u bytes), WAL "
           "mode, one transaction per batch; FULL with batch 1 inserts %u rows, every other "
           "SQLite run %u; medians of %d runs.  AkiDB builds the HNSW graph on every insert, "
           "SQLite only appends a B-tree row.\n", g_o.dim * 4, g_o.n_sync, n, g_o.reps);
        if (!g_o.skip_default_ckpt && (g_o.sections & SEC_SINGLE))
            md("\nWith the default checkpoint_bytes (64 MiB) instead of 1 TiB, one writer, "
               "INTERVAL, batch 100, %u rows: %.0f rows/s, %lld checkpoint(s) during the run "
               "(the run wrote %.1f MiB of log).\n", n, R->defck.rows_per_s,
               (long long)R->defck.checkpoints, R->defck.wal_bytes / 1048576.0);
    }

    if (g_o.sections & SEC_MULTI) {
        md("\n#### Insert throughput, %d writer threads on one collection of %u documents"
           "\n\n", g_o.writers, n);
        md("| batch | INTERVAL rows/s | fsyncs/run | CPU s | NONE rows/s | CPU s | "
           "NONE CPU/wall | INTERVAL / NONE | each pair | target | |\n");
        md("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n");
        for (int bi = 0; bi < 2; bi++) {
            const run_result *iv = &R->multi[0][bi], *no = &R->multi[1][bi];
            double r = R->multi_ratio_med[bi];
            md("| %d | %.0f | %lld | %.1f | %.0f | %.1f | %.2f | %.3f |", bi ? 100 : 1,
               iv->rows_per_s, (long long)iv->syncs, iv->cpu_seconds, no->rows_per_s,
               no->cpu_seconds, R->multi_busy[1][bi], r);
            for (int i = 0; i < g_o.reps_multi; i++)
                md("%s%.2f", i ? ", " : " ", R->multi_ratio[bi][i]);
            md(" | >= 0.80 | %s |\n", pass(r >= 0.80));
        }
        md("\nEach run adds %u rows to a copy of a checkpointed collection of %u (each "
           "writer inserts its own 1/%d share).  %d pairs of runs, INTERVAL and NONE "
           "alternating; medians, and INTERVAL / NONE is the median of the pairs' ratios.  "
           "CPU s: CPU time of the process (all threads) during a run.  "
           "Index work on one collection is serialized, so a "
           "NONE run keeps about one CPU busy: a NONE CPU/wall well below 0.9 means "
           "other processes took the CPU, which also hides INTERVAL's fsync waits, and "
           "the ratio then reads higher than on an idle machine.\n", g_o.n_multi, n,
           g_o.writers, g_o.reps_multi);
    }

    if (g_o.sections & SEC_RECOVERY) {
        double ratio = R->rebuild_s / R->reopen_s;
        md("\n#### Recovery and reopen\n\n");
        md("| measure | seconds | target | |\n|---|---:|---|---|\n");
        md("| recovery: open with a %u-record log (%.1f MiB, %lld records replayed), no "
           "checkpoint; the replayed documents are searchable (scanned) when it returns "
           "and linked after (CPU time of the open: %.2f s) | %.2f | < 1 s | %s |\n",
           n, R->log_bytes / 1048576.0, (long long)R->replayed, R->recover_cpu_s,
           R->recover_s, pass(R->recover_s < 1.0));
        md("| recovery of %lld delete records over a checkpoint, log reading + apply only "
           "(open %.3f s minus checkpoint load %.3f s; median of paired differences) | "
           "%.3f | | |\n", (long long)R->del_replayed, R->del_open_s, R->reopen_s,
           R->del_replay_s);
        md("| recovery of %lld insert records into a minimal index (M=2, ef_construction=1), "
           "median of %d | %.3f | | |\n", (long long)R->small_replayed, g_o.reps,
           R->small_open_s);
        md("| checkpoint of %u documents (akidb_checkpoint) | %.3f | | |\n", n, R->ckpt_s);
        md("| reopen from checkpoint (saved graph), median of %d | %.3f | | |\n", g_o.reps,
           R->reopen_s);
        md("| rebuild: the recovery above, then akidb_index_wait (graph complete) | %.2f "
           "| | |\n", R->rebuild_s);
        md("| **rebuild / reopen from checkpoint** | **%.0fx** | >= 10x | %s |\n", ratio,
           pass(ratio >= 10.0));
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const double t_start = bench_now();
    char cpu[256], fs[512], load0[128], load1[128], path[4096], machine[1200];
    static results R;

    if (mkdir(g_o.dir, 0755) != 0 && errno != EEXIST)
        bench_die("cannot create %s: %s", g_o.dir, strerror(errno));
    g_md = open_memstream(&g_md_buf, &g_md_len);
    if (!g_md)
        bench_die("open_memstream failed");

    shell_line("lscpu 2>/dev/null", "Model name", cpu, sizeof cpu);
    snprintf(path, sizeof path, "df -T '%s' | tail -n 1 | awk '{print $1\" \"$2}'", g_o.dir);
    shell_line(path, NULL, fs, sizeof fs);
    shell_line("cut -d' ' -f1-3 /proc/loadavg", NULL, load0, sizeof load0);
    printf("machine: %s, %ld CPUs; bench dir %s on %s; AkiDB %s, SQLite %s\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), g_o.dir, fs, akidb_version(), sqlite3_libversion());
    printf("load average at start: %s\n", load0);
    printf("data: %u x %u float32, 256-cluster Gaussian mixture, seed 42; HNSW M=16 "
           "ef_construction=200 unless noted\n", g_o.n, g_o.dim);
    g_data = bench_clustered(g_o.n + g_o.n_multi, g_o.dim);

    if (g_o.sections & SEC_RECOVERY)
        section_recovery(&R);
    if (g_o.sections & SEC_SINGLE)
        section_single(&R, (g_o.sections & SEC_RECOVERY) != 0);
    if (g_o.sections & SEC_MULTI)
        section_multi(&R);
    if (R.base[0])
        bench_rm_tree(R.base);
    if (g_o.sections & SEC_SQLITE)
        section_sqlite(&R);

    shell_line("cut -d' ' -f1-3 /proc/loadavg", NULL, load1, sizeof load1);
    double total_s = bench_now() - t_start;
    snprintf(machine, sizeof machine, "Machine: %s, %ld CPUs; bench directory on %s; "
             "AkiDB %s; SQLite %s.  Load average at start / end: %s / %s.  Wall time of "
             "the whole run: %.0f s.", cpu, sysconf(_SC_NPROCESSORS_ONLN), fs,
             akidb_version(), sqlite3_libversion(), load0, load1, total_s);
    tables(&R, machine);
    fclose(g_md);

    if ((g_o.sections & (SEC_RECOVERY | SEC_MULTI)) == (SEC_RECOVERY | SEC_MULTI))
        printf("\nRESULT kind=summary recovery_seconds=%.3f reopen_seconds=%.4f "
               "rebuild_ratio=%.1f interval_none_b1=%.3f interval_none_b100=%.3f "
               "total_seconds=%.1f\n", R.recover_s, R.reopen_s, R.rebuild_s / R.reopen_s,
               R.multi_ratio_med[0], R.multi_ratio_med[1], total_s);
    printf("\n%s", g_md_buf);
    if (g_o.md) {
        FILE *f = fopen(g_o.md, "w");
        if (!f || fputs(g_md_buf, f) < 0 || fclose(f) != 0)
            bench_die("cannot write %s", g_o.md);
    }
    free(g_md_buf);
    free(g_data);
    return 0;
}
