/*
 * akidb_cli.c - the `akidb` command-line tool: look into a database
 * (collections, info, count, search, get), move data in and out (Parquet
 * import and export, snapshots), drop collections, show and change
 * collections' tiers (hot, warm, cold) and inspect Parquet files, for
 * people and for shell scripts.
 *
 * A consumer of include/akidb.h only: every command is a few library calls
 * plus argument parsing and output.  `akidb help` and `akidb COMMAND
 * --help` describe each command; the table `commands` below is where they
 * are defined.
 *
 * Rules every command follows:
 *   - Exit status: 0 success; 1 the command failed (the message names the
 *     library's result code, e.g. "AKIDB_NOTFOUND", and its detail); 2 bad
 *     usage (unknown command or option, a missing or malformed value).
 *   - Only `import` creates a database.  Every other command refuses a
 *     directory that holds no database (no DIR/akidb.db) instead of
 *     creating one there, and the commands that only read open it
 *     read-only (akidb_options.read_only: a shared lock, nothing written).
 *     `import` refuses to create a database in a directory that holds
 *     other files, and removes the database again if it created it and
 *     imported nothing, so a mistyped --db leaves no trace.
 *   - Results go to stdout; diagnostics, warnings and progress to stderr.
 *     Long work (import, export, snapshots) reports progress: a bar on a
 *     terminal, a line every 5 s otherwise (AKIDB_PROGRESS_SECONDS changes
 *     the interval), so a log or a pipe shows that it is alive.
 *   - Text that comes from the database or a file (external ids,
 *     metadata) is printed with control characters escaped (\xNN), so it
 *     cannot drive the terminal.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "akidb.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* ---- options ----------------------------------------------------------- */

/* Every option the tool knows; each command accepts a subset. */
enum {
    O_DB = 1u << 0, O_COLLECTION = 1u << 1, O_PARQUET = 1u << 2, O_ID_COLUMN = 1u << 3,
    O_VECTOR_COLUMN = 1u << 4, O_METADATA_COLUMNS = 1u << 5, O_METRIC = 1u << 6,
    O_ID = 1u << 7, O_EXTERNAL_ID = 1u << 8, O_VECTOR = 1u << 9, O_K = 1u << 10,
    O_EF = 1u << 11, O_EXACT = 1u << 12, O_SKIP = 1u << 13, O_TIER = 1u << 14,
    O_STORAGE = 1u << 15, O_EXACT_VECTORS = 1u << 16, O_RERANK = 1u << 17
};

typedef struct args {
    const char *db, *collection, *parquet, *id_column, *vector_column, *metadata_columns,
        *metric, *id, *external_id, *vector, *k, *ef, *skip, *tier, *storage, *exact_vectors,
        *rerank;
    int exact;
    int help;
    const char *pos[2];   /* positional words (snapshot action, inspect file, help topic) */
    int n_pos;
    unsigned seen;        /* O_* bits given */
    int argc;             /* the command line, for the resume hint */
    char **argv;
} args;

typedef struct opt_def {
    const char *flag;
    unsigned bit;
    size_t slot;          /* offsetof(args, ...) of the value; SIZE_MAX: a switch */
} opt_def;

static const opt_def options[] = {
    { "--db", O_DB, offsetof(args, db) },
    { "--collection", O_COLLECTION, offsetof(args, collection) },
    { "--parquet", O_PARQUET, offsetof(args, parquet) },
    { "--id-column", O_ID_COLUMN, offsetof(args, id_column) },
    { "--vector-column", O_VECTOR_COLUMN, offsetof(args, vector_column) },
    { "--metadata-columns", O_METADATA_COLUMNS, offsetof(args, metadata_columns) },
    { "--metric", O_METRIC, offsetof(args, metric) },
    { "--id", O_ID, offsetof(args, id) },
    { "--external-id", O_EXTERNAL_ID, offsetof(args, external_id) },
    { "--vector", O_VECTOR, offsetof(args, vector) },
    { "-k", O_K, offsetof(args, k) },
    { "--ef", O_EF, offsetof(args, ef) },
    { "--exact", O_EXACT, SIZE_MAX },
    { "--skip", O_SKIP, offsetof(args, skip) },
    { "--tier", O_TIER, offsetof(args, tier) },
    { "--storage", O_STORAGE, offsetof(args, storage) },
    { "--exact-vectors", O_EXACT_VECTORS, offsetof(args, exact_vectors) },
    { "--rerank", O_RERANK, offsetof(args, rerank) },
};

/* ---- commands ------------------------------------------------------------ */

typedef struct command command;
struct command {
    const char *name;
    const char *synopsis;      /* after "akidb NAME " */
    const char *summary;       /* one line, for `akidb help` */
    const char *details;       /* the rest of `akidb NAME --help` */
    unsigned allowed;          /* O_* it accepts */
    int max_pos;               /* positional words it accepts */
    int (*run)(const command *cmd, const args *a);
};

static const command *find_command(const char *name);
static void print_command_help(FILE *f, const command *c);
static void print_help(FILE *f);

static int usage_error(const command *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const command *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "akidb%s%s: ", c ? " " : "", c ? c->name : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (c)
        fprintf(stderr, "usage: akidb %s %s\n(see 'akidb %s --help')\n", c->name, c->synopsis,
                c->name);
    else
        fprintf(stderr, "(see 'akidb help')\n");
    return EXIT_USAGE;
}

/* A library failure: the code's name and the detailed message. */
static int fail(const command *c, int rc)
{
    fprintf(stderr, "akidb %s: %s: %s\n", c->name, akidb_errname(rc), akidb_errmsg(NULL));
    return EXIT_FAIL;
}

/* A failure the tool finds itself, printed like the library's. */
static int fail_with(const command *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_with(const command *c, int rc, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "akidb %s: %s: ", c->name, akidb_errname(rc));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

static int need(const command *c, const char *value, const char *flag)
{
    return value ? 0 : usage_error(c, "%s is required", flag);
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* Untrusted text (from the database or a file) with control characters
 * escaped as \xNN: C0, DEL, and the C1 controls in their UTF-8 form
 * (U+0080..U+009F, which some terminals obey: U+009B starts a sequence). */
static void print_safe(FILE *f, const char *s)
{
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if (*u < 0x20 || *u == 0x7f) {
            fprintf(f, "\\x%02x", *u);
        } else if (*u == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f) {
            fprintf(f, "\\x%02x\\x%02x", u[0], u[1]);
            u++;
        } else {
            fputc(*u, f);
        }
    }
}

/* Strict unsigned decimal in [lo, hi]. */
static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || s[0] < '0' || s[0] > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_metric(const char *s, akidb_metric *out)
{
    if (strcmp(s, "l2") == 0) *out = AKIDB_METRIC_L2;
    else if (strcmp(s, "cosine") == 0) *out = AKIDB_METRIC_COSINE;
    else if (strcmp(s, "dot") == 0) *out = AKIDB_METRIC_DOT;
    else return -1;
    return 0;
}

static const char *metric_name(akidb_metric m)
{
    return m == AKIDB_METRIC_L2 ? "l2" : m == AKIDB_METRIC_COSINE ? "cosine"
         : m == AKIDB_METRIC_DOT ? "dot" : "?";
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *utc(int64_t us, char *buf, size_t len)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(buf, len, "%lld us", (long long)us);
    return buf;
}

static const char *human_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

/* ---- progress ------------------------------------------------------------- */

/* Progress of one long library call, drawn by a thread of its own so a
 * call without a progress callback (export, snapshots) still shows it is
 * alive: a bar redrawn on a terminal, a line every few seconds elsewhere. */
typedef struct ticker {
    const char *what;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running, stop, tty, drawn;
    double t0, interval;
    _Atomic uint64_t done, total;   /* rows; total 0 = not known */
} ticker;

static void ticker_draw(ticker *t)
{
    double el = now_s() - t->t0;
    uint64_t done = atomic_load(&t->done), total = atomic_load(&t->total);
    if (t->tty) {
        if (el < 0.5)
            return;   /* quick calls draw nothing */
        if (total) {
            int width = 30, filled = (int)((double)done / (double)total * width);
            fprintf(stderr, "\r%s [%.*s%*s] %" PRIu64 "/%" PRIu64 " rows, %.0f s ", t->what,
                    filled, "##############################", width - filled, "", done,
                    total, el);
        } else {
            fprintf(stderr, "\r%s: %.0f s ", t->what, el);
        }
        t->drawn = 1;
    } else if (total) {
        fprintf(stderr, "akidb %s: %" PRIu64 " of %" PRIu64 " rows (%.0f%%), %.0f s\n", t->what,
                done, total, 100.0 * (double)done / (double)total, el);
    } else {
        fprintf(stderr, "akidb %s: still working, %.0f s\n", t->what, el);
    }
    fflush(stderr);
}

static void *ticker_main(void *arg)
{
    ticker *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        double w = t->tty ? 0.2 : t->interval;
        until.tv_sec += (time_t)w;
        until.tv_nsec += (long)((w - floor(w)) * 1e9);
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!t->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&t->cv, &t->mu, &until);
        if (!t->stop)
            ticker_draw(t);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void ticker_start(ticker *t, const char *what)
{
    memset(t, 0, sizeof *t);
    t->what = what;
    t->tty = isatty(STDERR_FILENO);
    t->t0 = now_s();
    t->interval = 5;
    const char *env = getenv("AKIDB_PROGRESS_SECONDS");
    if (env && atof(env) >= 0.05)
        t->interval = atof(env);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    /* Without the thread the work still runs; only progress is missing. */
    t->running = pthread_create(&t->thread, NULL, ticker_main, t) == 0;
}

static void ticker_stop(ticker *t)
{
    if (t->running) {
        pthread_mutex_lock(&t->mu);
        t->stop = 1;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    if (t->drawn)
        fprintf(stderr, "\r%*s\r", 79, "");
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
}

static void progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    ticker *t = ctx;
    atomic_store(&t->total, total);
    atomic_store(&t->done, done);
}

/* ---- opening the database --------------------------------------------------- */

static void log_cb(void *ctx, akidb_log_level level, const char *msg)
{
    const command *c = ctx;
    if (level > AKIDB_LOG_WARN)
        return;
    fprintf(stderr, "akidb %s: %s: ", c->name, level == AKIDB_LOG_ERROR ? "error" : "warning");
    print_safe(stderr, msg);
    fputc('\n', stderr);
}

/* 0 when dir holds a database; else prints why (exit 1). */
static int require_db(const command *c, const char *dir)
{
    struct stat st;
    char path[4096];
    if (stat(dir, &st) != 0)
        return fail_with(c, AKIDB_NOTFOUND, "%s: %s (no database there; 'akidb import' "
                         "creates one)", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail_with(c, AKIDB_NOTFOUND, "%s is not a directory, so not a database", dir);
    snprintf(path, sizeof path, "%s/akidb.db", dir);
    if (stat(path, &st) != 0)
        return fail_with(c, AKIDB_NOTFOUND, "%s is not an AkiDB database (it has no "
                         "akidb.db); nothing was created there", dir);
    return 0;
}

enum { OPEN_READ, OPEN_WRITE, OPEN_CREATE };

static int open_db(const command *c, const char *dir, int mode, akidb **db)
{
    *db = NULL;
    if (mode != OPEN_CREATE && require_db(c, dir))
        return EXIT_FAIL;
    akidb_options o;
    akidb_options_init(&o);
    o.read_only = mode == OPEN_READ;
    o.log_fn = log_cb;
    o.log_ctx = (void *)c;
    int rc = akidb_open(dir, &o, db);
    if (rc) {
        fprintf(stderr, "akidb %s: %s: cannot open %s: %s\n", c->name, akidb_errname(rc), dir,
                akidb_errmsg(NULL));
        return EXIT_FAIL;
    }
    return 0;
}

/* Close, and turn a failed close into the exit status (rc: so far). */
static int close_db(const command *c, akidb *db, int status)
{
    int rc = akidb_close(db);
    if (rc && status == 0)
        return fail(c, rc);
    return status;
}

/* ---- import -------------------------------------------------------------- */

static int valid_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '-'))
            return 0;
    return n >= 1 && n <= AKIDB_MAX_NAME_LEN;
}

/* What --db was before an import: missing, an empty directory, a
 * database, or something else (refused). */
enum { DIR_MISSING, DIR_EMPTY, DIR_DATABASE, DIR_OTHER };

static int dir_state(const char *dir)
{
    struct stat st;
    char path[4096];
    if (stat(dir, &st) != 0)
        return errno == ENOENT ? DIR_MISSING : DIR_OTHER;
    if (!S_ISDIR(st.st_mode))
        return DIR_OTHER;
    snprintf(path, sizeof path, "%s/akidb.db", dir);
    if (stat(path, &st) == 0)
        return DIR_DATABASE;
    DIR *d = opendir(dir);
    if (!d)
        return DIR_OTHER;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    closedir(d);
    return empty ? DIR_EMPTY : DIR_OTHER;
}

static const char *rm_top;
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (strcmp(path, rm_top) == 0)
        return 0;   /* the directory itself: the caller decides */
    return remove(path) != 0;
}

/* Remove what the open of a new database created in dir: its contents,
 * and dir itself when it did not exist before. */
static void undo_new_db(const command *c, const char *dir, int was)
{
    rm_top = dir;
    int bad = nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0;
    if (!bad && was == DIR_MISSING)
        bad = rmdir(dir) != 0;
    if (bad)
        fprintf(stderr, "akidb %s: could not remove the new, empty database in %s\n", c->name,
                dir);
    else
        fprintf(stderr, "akidb %s: removed the new database in %s again (nothing was "
                "imported)\n", c->name, dir);
}

static void notice_cb(void *ctx, akidb_log_level level, const char *msg)
{
    const command *c = ctx;
    fprintf(stderr, "akidb %s: %s", c->name, level <= AKIDB_LOG_WARN ? "warning: " : "");
    print_safe(stderr, msg);
    fputc('\n', stderr);
}

/* The command line again, with --skip N in place of any --skip: what to
 * run to resume.  Words are single-quoted for a POSIX shell. */
static void print_resume(const args *a, uint64_t row)
{
    fprintf(stderr, "  to resume once the cause is fixed:\n   ");
    for (int i = 0; i < a->argc; i++) {
        if (strcmp(a->argv[i], "--skip") == 0 && i + 1 < a->argc) {
            i++;
            continue;
        }
        if (strncmp(a->argv[i], "--skip=", 7) == 0)
            continue;
        fputs(" '", stderr);
        for (const char *p = a->argv[i]; *p; p++)
            if (*p == '\'')
                fputs("'\\''", stderr);
            else
                fputc(*p, stderr);
        fputc('\'', stderr);
    }
    fprintf(stderr, " --skip %" PRIu64 "\n", row);
}

static int split_columns(const command *c, char *list, const char **cols, size_t max,
                         size_t *n)
{
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == max)
            return usage_error(c, "at most %zu metadata columns", max);
        cols[(*n)++] = tok;
    }
    if (*n == 0)
        return usage_error(c, "--metadata-columns names no column");
    return 0;
}

static int cmd_import(const command *c, const args *a)
{
    if (need(c, a->db, "--db") || need(c, a->collection, "--collection") ||
        need(c, a->parquet, "--parquet"))
        return EXIT_USAGE;
    akidb_import_options o;
    akidb_import_options_init(&o);
    if (a->vector_column)
        o.vector_column = a->vector_column;
    o.id_column = a->id_column;
    if (a->metric && parse_metric(a->metric, &o.metric))
        return usage_error(c, "--metric must be l2, cosine or dot, not %s", a->metric);
    if (a->skip && parse_u64(a->skip, 0, UINT64_MAX, &o.skip_rows))
        return usage_error(c, "--skip needs a row number (0 or more), not %s", a->skip);
    if (a->storage) {
        if (!strcmp(a->storage, "f32")) o.storage = AKIDB_STORAGE_F32;
        else if (!strcmp(a->storage, "f16")) o.storage = AKIDB_STORAGE_F16;
        else if (!strcmp(a->storage, "int8")) o.storage = AKIDB_STORAGE_INT8;
        else return usage_error(c, "--storage must be f32, f16 or int8, not %s", a->storage);
    }
    if (a->exact_vectors) {
        if (!strcmp(a->exact_vectors, "ram")) o.exact = AKIDB_EXACT_RAM;
        else if (!strcmp(a->exact_vectors, "file")) o.exact = AKIDB_EXACT_FILE;
        else if (!strcmp(a->exact_vectors, "none")) o.exact = AKIDB_EXACT_NONE;
        else return usage_error(c, "--exact-vectors must be ram, file or none, not %s",
                                a->exact_vectors);
    }
    uint64_t rerank = 0;
    if (a->rerank && parse_u64(a->rerank, 1, 64, &rerank))
        return usage_error(c, "--rerank must be 1..64, not %s", a->rerank);
    o.rerank = (uint32_t)rerank;
    if (!valid_name(a->collection))
        return usage_error(c, "collection name \"%s\" is invalid: use 1..%d characters from "
                           "[A-Za-z0-9_-]", a->collection, AKIDB_MAX_NAME_LEN);
    if (access(a->parquet, R_OK) != 0)
        return fail_with(c, errno == ENOENT ? AKIDB_NOTFOUND : AKIDB_IOERR, "%s: %s",
                         a->parquet, strerror(errno));
    char list[4096];
    const char *cols[256];
    size_t n_cols = 0;
    if (a->metadata_columns) {
        if (strlen(a->metadata_columns) >= sizeof list)
            return usage_error(c, "--metadata-columns is too long");
        snprintf(list, sizeof list, "%s", a->metadata_columns);
        if (split_columns(c, list, cols, 256, &n_cols))
            return EXIT_USAGE;
        o.metadata_columns = cols;
        o.n_metadata_columns = n_cols;
    }
    int was = dir_state(a->db);
    if (was == DIR_OTHER)
        return fail_with(c, AKIDB_INVALID, "%s is not an AkiDB database and not an empty "
                         "directory; refusing to create a database there", a->db);
    akidb *db;
    if (open_db(c, a->db, OPEN_CREATE, &db))
        return EXIT_FAIL;
    uint64_t before = 0, after = 0, rows = 0, resume = 0;
    int existed = akidb_collection_count(db, a->collection, &before) == AKIDB_OK;
    ticker t;
    o.notice = notice_cb;
    o.notice_ctx = (void *)c;
    o.resume_row_out = &resume;
    o.progress = progress_cb;
    o.progress_ctx = &t;
    double t0 = now_s();
    ticker_start(&t, "import");
    int rc = akidb_import_parquet(db, a->collection, a->parquet, &o, &rows);
    ticker_stop(&t);
    double secs = now_s() - t0;
    if (rc) {
        fail(c, rc);
        int nothing = rows == 0;
        close_db(c, db, EXIT_FAIL);
        if (nothing && was != DIR_DATABASE)
            undo_new_db(c, a->db, was);
        else if (!nothing)
            print_resume(a, resume);
        return EXIT_FAIL;
    }
    int src = akidb_collection_count(db, a->collection, &after);
    if (src)
        return close_db(c, db, fail(c, src));
    uint64_t added = after - before;
    printf("imported %" PRIu64 " %s into %s%s in %.2f s", rows, plural(rows, "row", "rows"),
           a->collection, existed ? "" : " (new collection)", secs);
    if (rows > added)
        printf(": %" PRIu64 " new %s, %" PRIu64 " replaced %s with the same external id",
               added, plural(added, "document", "documents"), rows - added,
               plural(rows - added, "document", "documents"));
    printf("\n");
    return close_db(c, db, 0);
}

/* ---- export, snapshots ----------------------------------------------------- */

static int cmd_export(const command *c, const args *a)
{
    if (need(c, a->db, "--db") || need(c, a->collection, "--collection") ||
        need(c, a->parquet, "--parquet"))
        return EXIT_USAGE;
    akidb *db;
    if (open_db(c, a->db, OPEN_READ, &db))
        return EXIT_FAIL;
    uint64_t n = 0;
    int rc = akidb_collection_count(db, a->collection, &n);
    if (rc)
        return close_db(c, db, fail(c, rc));
    ticker t;
    double t0 = now_s();
    ticker_start(&t, "export");
    rc = akidb_export_parquet(db, a->collection, a->parquet);
    ticker_stop(&t);
    if (rc)
        return close_db(c, db, fail(c, rc));
    struct stat st;
    char hb[32];
    printf("exported %" PRIu64 " %s of %s to %s (%s) in %.2f s\n", n,
           plural(n, "document", "documents"), a->collection, a->parquet,
           stat(a->parquet, &st) == 0 ? human_bytes((uint64_t)st.st_size, hb, sizeof hb) : "?",
           now_s() - t0);
    return close_db(c, db, 0);
}

static void print_snapshot(const akidb_snapshot_info *s)
{
    char when[48];
    printf("%-24s %10" PRIu64 " %12" PRIu64 "  %-23s %s\n", s->id, s->rows, s->bytes,
           utc(s->created_at_us, when, sizeof when), s->sha256);
}

static int snapshot_list(const command *c, akidb *db, const args *a)
{
    akidb_snapshot_info **info = NULL;
    size_t n = 0, shown = 0;
    int rc = akidb_snapshot_list(db, a->collection, &info, &n);
    if (rc)
        return fail(c, rc);
    for (size_t i = 0; i < n; i++) {
        if (a->id && strcmp(info[i]->id, a->id) != 0)
            continue;
        if (shown++ == 0)
            printf("%-24s %10s %12s  %-23s %s\n", "id", "rows", "bytes", "created", "sha256");
        print_snapshot(info[i]);
    }
    akidb_free(info);
    if (a->id && !shown)
        return fail_with(c, AKIDB_NOTFOUND, "collection %s has no snapshot %s", a->collection,
                         a->id);
    if (!shown)
        fprintf(stderr, "akidb %s: collection %s has no snapshots\n", c->name, a->collection);
    return 0;
}

/* Restore without --id: the newest snapshot that verifies, trying older
 * ones after a corrupt one, and saying which it was. */
static int snapshot_restore_newest(const command *c, akidb *db, const args *a)
{
    akidb_snapshot_info **info = NULL;
    size_t n = 0;
    int rc = akidb_snapshot_list(db, a->collection, &info, &n);
    if (rc)
        return fail(c, rc);
    if (n == 0) {
        akidb_free(info);
        return fail_with(c, AKIDB_NOTFOUND, "collection %s has no snapshot to restore",
                         a->collection);
    }
    for (size_t i = 0; i < n; i++) {
        rc = akidb_snapshot_restore(db, a->collection, info[i]->id);
        if (rc == AKIDB_OK) {
            char when[48];
            printf("restored %s from snapshot %s (%" PRIu64 " %s, taken %s)\n", a->collection,
                   info[i]->id, info[i]->rows, plural(info[i]->rows, "row", "rows"),
                   utc(info[i]->created_at_us, when, sizeof when));
            akidb_free(info);
            return 0;
        }
        if (rc != AKIDB_CORRUPT)
            break;
        fprintf(stderr, "akidb %s: snapshot %s does not verify (%s); trying an older one\n",
                c->name, info[i]->id, akidb_errmsg(NULL));
    }
    int status = fail(c, rc);
    akidb_free(info);
    return status;
}

static int cmd_snapshot(const command *c, const args *a)
{
    if (a->n_pos != 1)
        return usage_error(c, "name one action: create, list, restore or delete");
    const char *act = a->pos[0];
    int create = strcmp(act, "create") == 0, list = strcmp(act, "list") == 0;
    int restore = strcmp(act, "restore") == 0, del = strcmp(act, "delete") == 0;
    if (!create && !list && !restore && !del)
        return usage_error(c, "unknown action %s (create, list, restore or delete)", act);
    if (need(c, a->db, "--db") || need(c, a->collection, "--collection"))
        return EXIT_USAGE;
    if (create && a->id)
        return usage_error(c, "snapshot create: --id cannot be chosen; the library assigns "
                           "snapshot ids and this command prints the new one");
    if (del && need(c, a->id, "--id"))
        return EXIT_USAGE;
    akidb *db;
    if (open_db(c, a->db, list ? OPEN_READ : OPEN_WRITE, &db))
        return EXIT_FAIL;
    int status = 0, rc;
    ticker t;
    if (list) {
        status = snapshot_list(c, db, a);
    } else if (create) {
        char id[AKIDB_SNAPSHOT_ID_LEN];
        ticker_start(&t, "snapshot create");
        rc = akidb_snapshot_create(db, a->collection, id, sizeof id);
        ticker_stop(&t);
        if (rc)
            status = fail(c, rc);
        else
            printf("%s\n", id);
    } else if (restore && !a->id) {
        ticker_start(&t, "snapshot restore");
        status = snapshot_restore_newest(c, db, a);
        ticker_stop(&t);
    } else if (restore) {
        ticker_start(&t, "snapshot restore");
        rc = akidb_snapshot_restore(db, a->collection, a->id);
        ticker_stop(&t);
        if (rc)
            status = fail(c, rc);
        else
            printf("restored %s from snapshot %s\n", a->collection, a->id);
    } else {
        if ((rc = akidb_snapshot_delete(db, a->collection, a->id)))
            status = fail(c, rc);
        else
            printf("deleted snapshot %s of %s\n", a->id, a->collection);
    }
    return close_db(c, db, status);
}

/* ---- tiers ----------------------------------------------------------------------- */

static const char *tier_name(akidb_tier t)
{
    return t == AKIDB_TIER_HOT ? "hot" : t == AKIDB_TIER_WARM ? "warm"
         : t == AKIDB_TIER_COLD ? "cold" : "?";
}

/* One line of `tier stats`: 0, or the failure's exit status. */
static int print_tier_info(const command *c, akidb *db, const char *name)
{
    akidb_tier_info ti;
    memset(&ti, 0, sizeof ti);
    ti.version = AKIDB_TIER_INFO_VERSION;
    int rc = akidb_tier_info_get(db, name, &ti);
    if (rc)
        return fail(c, rc);
    char when[48] = "never";
    if (ti.last_access_us > 0)
        utc(ti.last_access_us, when, sizeof when);
    printf("%-24s %-5s %-6s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "  %-23s ", name,
           tier_name(ti.tier), ti.pinned ? "pinned" : "", ti.hot_bytes, ti.local_bytes,
           ti.cold_bytes, when);
    if (ti.last_error)
        print_safe(stdout, ti.last_error_msg);
    putchar('\n');
    return 0;
}

static int tier_stats(const command *c, akidb *db, const args *a)
{
    akidb_tier_stats ts;
    memset(&ts, 0, sizeof ts);
    ts.version = AKIDB_TIER_STATS_VERSION;
    char **names = NULL;
    size_t n = 0, shown = 0;
    int rc = akidb_tier_stats_get(db, &ts);
    if (rc == AKIDB_OK)
        rc = akidb_collection_list(db, &names, &n);
    if (rc)
        return fail(c, rc);
    for (int t = AKIDB_TIER_HOT; t <= AKIDB_TIER_COLD; t++)
        printf("%-5s %6" PRIu64 " collections %14" PRIu64 " bytes\n", tier_name((akidb_tier)t),
               ts.collections[t], ts.bytes[t]);
    printf("memory budget %" PRIu64 " bytes (0 = unlimited); store %" PRIu64 " bytes of %"
           PRIu64 " (0 = unlimited)\n\n", ts.memory_budget, ts.store_bytes, ts.store_quota);
    printf("%-24s %-5s %-6s %12s %12s %12s  %-23s %s\n", "collection", "tier", "", "ram bytes",
           "local bytes", "cold bytes", "last access (UTC)", "last error");
    int status = 0;
    for (size_t i = 0; i < n && status == 0; i++)
        if (!a->collection || strcmp(a->collection, names[i]) == 0) {
            shown++;
            status = print_tier_info(c, db, names[i]);
        }
    akidb_free(names);
    if (status == 0 && a->collection && !shown)
        status = fail_with(c, AKIDB_NOTFOUND, "collection %s does not exist", a->collection);
    return status;
}

static int cmd_tier(const command *c, const args *a)
{
    if (a->n_pos != 1)
        return usage_error(c, "name one action: get, set, pin, unpin or stats");
    const char *act = a->pos[0];
    int get = strcmp(act, "get") == 0, set = strcmp(act, "set") == 0;
    int pin = strcmp(act, "pin") == 0, unpin = strcmp(act, "unpin") == 0;
    int stats = strcmp(act, "stats") == 0;
    if (!get && !set && !pin && !unpin && !stats)
        return usage_error(c, "unknown action %s (get, set, pin, unpin or stats)", act);
    if (need(c, a->db, "--db") || (!stats && need(c, a->collection, "--collection")) ||
        (set && need(c, a->tier, "--tier")))
        return EXIT_USAGE;
    if (!set && a->tier)
        return usage_error(c, "--tier goes with tier set only");
    akidb_tier target = 0;
    if (set) {
        for (int t = AKIDB_TIER_HOT; t <= AKIDB_TIER_COLD; t++)
            if (strcmp(a->tier, tier_name((akidb_tier)t)) == 0)
                target = (akidb_tier)t;
        if (!target)
            return usage_error(c, "--tier must be hot, warm or cold, not %s", a->tier);
    }
    /* get and stats only read: a read-only open (which could not change a
     * tier anyway). */
    akidb *db;
    if (open_db(c, a->db, get || stats ? OPEN_READ : OPEN_WRITE, &db))
        return EXIT_FAIL;
    int status = 0, rc;
    ticker t;
    if (get) {
        akidb_tier tier;
        if ((rc = akidb_tier_get(db, a->collection, &tier)))
            status = fail(c, rc);
        else
            printf("%s\n", tier_name(tier));
    } else if (set) {
        ticker_start(&t, "tier set");
        rc = akidb_tier_set(db, a->collection, target);
        ticker_stop(&t);
        if (rc)
            status = fail(c, rc);
        else
            printf("%s is %s\n", a->collection, tier_name(target));
    } else if (pin || unpin) {
        if ((rc = akidb_tier_pin(db, a->collection, pin)))
            status = fail(c, rc);
        else
            printf("%s %s\n", a->collection, pin ? "pinned" : "unpinned");
    } else {
        status = tier_stats(c, db, a);
    }
    return close_db(c, db, status);
}

/* ---- looking at a database --------------------------------------------------- */

static int cmd_collections(const command *c, const args *a)
{
    if (need(c, a->db, "--db"))
        return EXIT_USAGE;
    akidb *db;
    if (open_db(c, a->db, OPEN_READ, &db))
        return EXIT_FAIL;
    char **names = NULL;
    size_t n = 0;
    int rc = akidb_collection_list(db, &names, &n);
    if (rc)
        return close_db(c, db, fail(c, rc));
    if (n)
        printf("%-32s %12s %6s %-7s\n", "collection", "documents", "dim", "metric");
    for (size_t i = 0; i < n; i++) {
        akidb_collection_stats st;
        memset(&st, 0, sizeof st);
        st.version = AKIDB_COLLECTION_STATS_VERSION;
        if ((rc = akidb_collection_stat(db, names[i], &st)) == AKIDB_NOTFOUND)
            continue;   /* dropped meanwhile (another reader's view is ours) */
        if (rc) {
            akidb_free(names);
            return close_db(c, db, fail(c, rc));
        }
        printf("%-32s %12" PRIu64 " %6u %-7s\n", names[i], st.count, st.dim,
               metric_name(st.metric));
    }
    if (!n)
        fprintf(stderr, "akidb %s: %s holds no collections\n", c->name, a->db);
    akidb_free(names);
    return close_db(c, db, 0);
}

static int cmd_info(const command *c, const args *a)
{
    if (need(c, a->db, "--db") || need(c, a->collection, "--collection"))
        return EXIT_USAGE;
    akidb *db;
    if (open_db(c, a->db, OPEN_READ, &db))
        return EXIT_FAIL;
    akidb_collection_config cfg;
    akidb_collection_stats st;
    memset(&st, 0, sizeof st);
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    st.version = AKIDB_COLLECTION_STATS_VERSION;
    int rc = akidb_collection_info(db, a->collection, &cfg);
    if (rc || (rc = akidb_collection_stat(db, a->collection, &st)))
        return close_db(c, db, fail(c, rc));
    static const char *const tiers[] = { "?", "hot", "warm", "cold" };
    char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], when[48];
    printf("collection       %s\n", a->collection);
    printf("dim              %u\n", cfg.dim);
    printf("metric           %s\n", metric_name(cfg.metric));
    printf("hnsw_m           %u\n", cfg.hnsw_m);
    printf("ef_construction  %u\n", cfg.ef_construction);
    printf("ef_search        %u\n", cfg.ef_search);
    printf("storage          %s", cfg.storage == AKIDB_STORAGE_F16    ? "f16"
                                  : cfg.storage == AKIDB_STORAGE_INT8 ? "int8"
                                                                      : "f32");
    if (cfg.storage == AKIDB_STORAGE_F16 || cfg.storage == AKIDB_STORAGE_INT8)
        printf(", exact vectors %s, re-rank %u x k%s",
               cfg.exact == AKIDB_EXACT_NONE   ? "none (approximate distances)"
               : cfg.exact == AKIDB_EXACT_FILE ? "in the checkpoint file"
                                               : "in RAM",
               cfg.rerank ? cfg.rerank : 2, cfg.rerank ? "" : " (default)");
    printf("\n");
    printf("documents        %" PRIu64 "\n", st.count);
    printf("deleted          %" PRIu64 " (nodes kept in the graph)\n", st.deleted);
    printf("memory           %" PRIu64 " bytes (%s): vectors %s, compact vectors %s, "
           "graph %s, documents %s\n", st.bytes, human_bytes(st.bytes, b1, sizeof b1),
           human_bytes(st.vector_bytes, b2, sizeof b2),
           human_bytes(st.compact_bytes, b6, sizeof b6),
           human_bytes(st.graph_bytes, b3, sizeof b3),
           human_bytes(st.document_bytes, b4, sizeof b4));
    printf("log              %" PRIu64 " bytes (%s) since the last checkpoint\n", st.log_bytes,
           human_bytes(st.log_bytes, b5, sizeof b5));
    printf("index lag        %" PRIu64 "\n", st.index_lag);
    printf("tier             %s%s\n", st.tier >= 1 && st.tier <= 3 ? tiers[st.tier] : "?",
           st.pinned ? " (pinned)" : "");
    printf("created          %s\n", utc(st.created_at_us, when, sizeof when));
    return close_db(c, db, 0);
}

static int cmd_count(const command *c, const args *a)
{
    if (need(c, a->db, "--db") || need(c, a->collection, "--collection"))
        return EXIT_USAGE;
    akidb *db;
    if (open_db(c, a->db, OPEN_READ, &db))
        return EXIT_FAIL;
    uint64_t n;
    int rc = akidb_collection_count(db, a->collection, &n);
    if (rc)
        return close_db(c, db, fail(c, rc));
    printf("%" PRIu64 "\n", n);
    return close_db(c, db, 0);
}

/* A JSON array of numbers: '[' [number (',' number)*] ']', nothing else. */
static int parse_vector(const char *s, float **out, uint32_t *n_out)
{
    size_t cap = 16, n = 0;
    float *v = malloc(cap * sizeof *v);
    if (!v)
        return -1;
    const char *p = s;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (*p++ != '[')
        goto bad;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (*p == ']' && n == 0) {
            p++;
            break;
        }
        /* JSON's number grammar: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
        const char *q = p;
        if (*q == '-')
            q++;
        if (*q < '0' || *q > '9')
            goto bad;
        char *end;
        errno = 0;
        double d = strtod(p, &end);
        for (const char *r = q; r < end; r++)
            if (!strchr("0123456789.eE+-", *r))
                goto bad;
        if (end == p || errno == ERANGE || !isfinite(d) || fabs(d) > 3.4e38)
            goto bad;
        if (n == cap) {
            float *w = realloc(v, (cap *= 2) * sizeof *v);
            if (!w)
                goto bad;
            v = w;
        }
        v[n++] = (float)d;
        p = end;
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p++ != ']')
            goto bad;
        break;
    }
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (*p || n == 0 || n > AKIDB_MAX_DIM)
        goto bad;
    *out = v;
    *n_out = (uint32_t)n;
    return 0;
bad:
    free(v);
    return -1;
}

static int cmd_search(const command *c, const args *a)
{
    if (need(c, a->db, "--db") || need(c, a->collection, "--collection") ||
        need(c, a->vector, "--vector"))
        return EXIT_USAGE;
    uint64_t k = 10, ef = 0;
    if (a->k && parse_u64(a->k, 1, 1000000, &k))
        return usage_error(c, "-k needs a number of hits, 1..1000000, not %s", a->k);
    if (a->ef && parse_u64(a->ef, 1, 100000, &ef))
        return usage_error(c, "--ef needs a number 1..100000, not %s", a->ef);
    float *q = NULL;
    uint32_t dim = 0;
    if (parse_vector(a->vector, &q, &dim))
        return usage_error(c, "--vector needs a JSON array of 1..%d finite numbers, like "
                           "'[0.1, 0.2, 0.3]'", AKIDB_MAX_DIM);
    akidb *db;
    if (open_db(c, a->db, OPEN_READ, &db)) {
        free(q);
        return EXIT_FAIL;
    }
    akidb_collection_config cfg;
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    akidb_hit *hits = NULL;
    int status = 0, rc = akidb_collection_info(db, a->collection, &cfg);
    if (rc) {
        status = fail(c, rc);
        goto done;
    }
    if (cfg.dim != dim) {
        status = fail_with(c, AKIDB_INVALID, "the vector has %u %s; collection %s has "
                           "dimension %u", dim, plural(dim, "value", "values"), a->collection,
                           cfg.dim);
        goto done;
    }
    akidb_search_params p;
    akidb_search_params_init(&p);
    p.ef = (uint32_t)ef;
    p.exact = a->exact;
    uint32_t n_hits = 0;
    if (!(hits = malloc((size_t)k * sizeof *hits))) {
        status = fail_with(c, AKIDB_NOMEM, "no memory for %" PRIu64 " hits", k);
        goto done;
    }
    if ((rc = akidb_search(db, a->collection, q, (uint32_t)k, &p, hits, &n_hits))) {
        status = fail(c, rc);
        goto done;
    }
    printf("%-20s %-32s %s\n", "id", "external_id", "distance");
    for (uint32_t i = 0; i < n_hits; i++) {
        akidb_document doc;
        memset(&doc, 0, sizeof doc);
        doc.version = AKIDB_DOCUMENT_VERSION;
        rc = akidb_document_get(db, a->collection, hits[i].id, NULL, &doc);
        printf("%-20" PRIu64 " ", hits[i].id);
        if (rc == AKIDB_OK && doc.external_id) {
            print_safe(stdout, doc.external_id);
            int w = (int)strlen(doc.external_id);
            printf("%*s", w < 32 ? 32 - w : 0, "");
        } else {
            printf("%-32s", "-");
        }
        printf(" %.6g\n", (double)hits[i].distance);
        akidb_document_clear(&doc);
    }
    if (n_hits < k)
        fprintf(stderr, "akidb %s: %u %s (the collection holds fewer than %" PRIu64 ")\n",
                c->name, n_hits, plural(n_hits, "hit", "hits"), k);
done:
    free(hits);
    free(q);
    return close_db(c, db, status);
}

static int cmd_get(const command *c, const args *a)
{
    if (need(c, a->db, "--db") || need(c, a->collection, "--collection"))
        return EXIT_USAGE;
    if (!!a->id == !!a->external_id)
        return usage_error(c, "give either --id N or --external-id S");
    uint64_t id = 0;
    if (a->id && parse_u64(a->id, 1, UINT64_MAX, &id))
        return usage_error(c, "--id needs a document id (a number from 1), not %s", a->id);
    akidb *db;
    if (open_db(c, a->db, OPEN_READ, &db))
        return EXIT_FAIL;
    akidb_collection_config cfg;
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    akidb_document doc;
    memset(&doc, 0, sizeof doc);
    doc.version = AKIDB_DOCUMENT_VERSION;
    float *v = NULL;
    int status = 0, rc = akidb_collection_info(db, a->collection, &cfg);
    if (rc == AKIDB_OK && a->external_id)
        rc = akidb_lookup(db, a->collection, a->external_id, &id);
    if (rc == AKIDB_OK && !(v = malloc((size_t)cfg.dim * sizeof *v)))
        rc = AKIDB_NOMEM;
    if (rc == AKIDB_OK)
        rc = akidb_document_get(db, a->collection, id, v, &doc);
    if (rc) {
        status = rc == AKIDB_NOMEM && !v ? fail_with(c, rc, "no memory for the vector")
                                         : fail(c, rc);
        goto done;
    }
    char when[48];
    printf("id           %" PRIu64 "\n", doc.id);
    printf("external_id  ");
    if (doc.external_id)
        print_safe(stdout, doc.external_id);
    else
        printf("(none)");
    printf("\ninserted_at  %s\n", utc(doc.inserted_at_us, when, sizeof when));
    printf("metadata     ");
    if (doc.metadata_json)
        print_safe(stdout, doc.metadata_json);
    else
        printf("(none)");
    printf("\nvector       [");
    for (uint32_t i = 0; i < cfg.dim; i++)
        printf("%s%.9g", i ? ", " : "", (double)v[i]);
    printf("]\n");
done:
    akidb_document_clear(&doc);
    free(v);
    return close_db(c, db, status);
}

static int cmd_drop(const command *c, const args *a)
{
    if (need(c, a->db, "--db") || need(c, a->collection, "--collection"))
        return EXIT_USAGE;
    akidb *db;
    if (open_db(c, a->db, OPEN_WRITE, &db))
        return EXIT_FAIL;
    uint64_t n = 0;
    int rc = akidb_collection_count(db, a->collection, &n);
    if (rc == AKIDB_OK)
        rc = akidb_collection_drop(db, a->collection);
    if (rc)
        return close_db(c, db, fail(c, rc));
    printf("dropped collection %s (%" PRIu64 " %s)\n", a->collection, n,
           plural(n, "document", "documents"));
    return close_db(c, db, 0);
}

/* ---- no database ------------------------------------------------------------ */

static int cmd_inspect(const command *c, const args *a)
{
    if (a->n_pos != 1)
        return usage_error(c, "name one Parquet file");
    char *text = NULL;
    int rc = akidb_parquet_inspect(a->pos[0], &text);
    if (rc)
        return fail(c, rc);
    fputs(text, stdout);
    akidb_free(text);
    return 0;
}

static int cmd_version(const command *c, const args *a)
{
    (void)c;
    (void)a;
    printf("akidb %s (library %s)\n", AKIDB_VERSION_STRING, akidb_version());
    return 0;
}

static int cmd_help(const command *c, const args *a)
{
    if (a->n_pos == 0) {
        print_help(stdout);
        return 0;
    }
    const command *topic = find_command(a->pos[0]);
    if (!topic)
        return usage_error(c, "no command named %s", a->pos[0]);
    print_command_help(stdout, topic);
    return 0;
}

/* ---- the table ----------------------------------------------------------------- */

static const command commands[] = {
    { "import", "--db DIR --collection NAME --parquet FILE [--id-column C]\n"
      "                    [--vector-column C] [--metadata-columns C,...]\n"
      "                    [--metric l2|cosine|dot] [--skip N] [--storage f32|f16|int8]\n"
      "                    [--exact-vectors ram|file|none] [--rerank N]",
      "import a Parquet file (DuckDB, pyarrow, Polars, AkiDB) into a collection",
      "Creates the database (in a missing or empty directory) and the collection\n"
      "when they do not exist.  A new collection takes the file's vector dimension;\n"
      "its metric is --metric, else the file's akidb.metric (files AkiDB exported),\n"
      "else l2, and AkiDB files also give their HNSW settings.  A --metric that\n"
      "differs from the file's or from an existing collection's is refused.\n"
      "\n"
      "Storage of a new collection (akidb.h, akidb_storage):\n"
      "  --storage f32|f16|int8  what the graph search walks on (default: the file's\n"
      "                        akidb.storage, else f32); into an existing collection\n"
      "                        only its own kind is accepted\n"
      "  --exact-vectors ram|file|none  f16/int8: where the exact vectors stay for\n"
      "                        re-ranking: RAM (default), only the checkpoint file,\n"
      "                        or nowhere (approximate distances)\n"
      "  --rerank N            f16/int8: candidates re-ranked per hit, 1..64 (default 2)\n"
      "\n"
      "Columns (the mapping chosen is printed):\n"
      "  --vector-column C     the vectors, LIST<FLOAT> (default: vector)\n"
      "  --id-column C         external ids; rows with one upsert, so importing a\n"
      "                        file again replaces instead of duplicating (default:\n"
      "                        the column external_id, else the column id)\n"
      "  --metadata-columns C,...  metadata: one column holding JSON is used as it\n"
      "                        is; otherwise an object {column: value} (default: the\n"
      "                        column metadata, if any)\n"
      "\n"
      "Every row is checked before anything is written: a bad value (a NaN, a\n"
      "NUL byte in a string, a vector of the wrong length) changes nothing and is\n"
      "named by its file row (counted from 0) and column.  If writing fails\n"
      "later, the rows before the failure are kept; the message says how many and\n"
      "prints the command to resume with --skip N (the first file row to import).\n"
      "A collection that already holds documents gets a warning when rows without\n"
      "an external id would be added again.",
      O_DB | O_COLLECTION | O_PARQUET | O_ID_COLUMN | O_VECTOR_COLUMN | O_METADATA_COLUMNS |
      O_METRIC | O_SKIP | O_STORAGE | O_EXACT_VECTORS | O_RERANK, 0, cmd_import },
    { "export", "--db DIR --collection NAME --parquet FILE",
      "write a collection to a Parquet file (the snapshot format)",
      "FILE is replaced.  DuckDB, pandas and Polars read it; 'akidb import' reads\n"
      "it back with the collection's metric and HNSW settings.  Opens the database\n"
      "read-only.",
      O_DB | O_COLLECTION | O_PARQUET, 0, cmd_export },
    { "collections", "--db DIR", "list the collections with their size, dimension and metric",
      "Opens the database read-only.", O_DB, 0, cmd_collections },
    { "info", "--db DIR --collection NAME",
      "show a collection's settings and state (documents, memory, log, tier)",
      "Opens the database read-only.", O_DB | O_COLLECTION, 0, cmd_info },
    { "count", "--db DIR --collection NAME", "print the number of documents",
      "Prints one number.  Opens the database read-only.", O_DB | O_COLLECTION, 0, cmd_count },
    { "search", "--db DIR --collection NAME --vector '[x, y, ...]' [-k N]\n"
      "                    [--ef N] [--exact]",
      "find the documents nearest to a vector",
      "Prints id, external id and distance of the k nearest documents (default\n"
      "10), closest first.  --vector is a JSON array of the collection's dimension.\n"
      "--ef sets the candidate list size (default: the collection's ef_search);\n"
      "--exact compares with every document instead of walking the HNSW graph.\n"
      "Opens the database read-only.",
      O_DB | O_COLLECTION | O_VECTOR | O_K | O_EF | O_EXACT, 0, cmd_search },
    { "get", "--db DIR --collection NAME (--id N | --external-id S)",
      "show one document: ids, time, metadata and vector",
      "Opens the database read-only.", O_DB | O_COLLECTION | O_ID | O_EXTERNAL_ID, 0, cmd_get },
    { "drop", "--db DIR --collection NAME", "delete a collection and all its documents",
      "Its snapshots are not deleted (they stay listed under the name); the\n"
      "copies the cold tier made of it are.", O_DB | O_COLLECTION, 0, cmd_drop },
    { "snapshot", "create|list|restore|delete --db DIR --collection NAME [--id ID]",
      "manage a collection's snapshots in the object store",
      "create   take a snapshot; prints its id (ids are assigned, not chosen)\n"
      "list     the snapshots, newest first; --id ID shows that one only\n"
      "         (opens the database read-only)\n"
      "restore  replace the collection with snapshot --id ID, or without --id the\n"
      "         newest snapshot that verifies; prints which one it restored\n"
      "delete   delete snapshot --id ID",
      O_DB | O_COLLECTION | O_ID, 1, cmd_snapshot },
    { "tier", "get|set|pin|unpin|stats --db DIR [--collection NAME]\n"
      "                    [--tier hot|warm|cold]",
      "show or change where a collection lives: RAM, local disk or the object store",
      "get      print the collection's tier: hot, warm or cold (opens the database\n"
      "         read-only; nothing is loaded)\n"
      "set      move the collection to --tier hot|warm|cold now; from cold, returns\n"
      "         once its local copy is durable\n"
      "pin      keep the collection where it is: the tier worker and the memory\n"
      "         budget never demote it (set still moves it)\n"
      "unpin    undo pin\n"
      "stats    collections and bytes per tier, the memory budget and store quota,\n"
      "         then one line per collection (--collection: that one only); opens\n"
      "         the database read-only\n"
      "docs/TIERING.md describes the tiers and the policy.",
      O_DB | O_COLLECTION | O_TIER, 1, cmd_tier },
    { "inspect", "FILE", "describe a Parquet file: schema, row groups, codecs, metadata",
      "Needs no database.", 0, 1, cmd_inspect },
    { "version", "", "print the tool's and the library's version", "", 0, 0, cmd_version },
    { "help", "[COMMAND]", "this overview, or a command's help", "", 0, 1, cmd_help },
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char exit_status_text[] =
    "Exit status: 0 success; 1 the command failed (the message names the library's\n"
    "result code, e.g. AKIDB_NOTFOUND, and why); 2 bad usage.\n";

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_command_help(FILE *f, const command *c)
{
    fprintf(f, "usage: akidb %s %s\n\n%s.\n", c->name, c->synopsis, c->summary);
    if (c->details[0])
        fprintf(f, "\n%s\n", c->details);
    fprintf(f, "\n%s", exit_status_text);
}

static void print_help(FILE *f)
{
    fprintf(f, "akidb %s - the AkiDB command-line tool\n\nusage: akidb COMMAND [OPTIONS]\n\n"
            "commands:\n", AKIDB_VERSION_STRING);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'akidb COMMAND --help' (or 'akidb help COMMAND') describes a command.\n"
            "Only import creates a database; every other command needs DIR to hold one\n"
            "(DIR/akidb.db), and commands that only read open it read-only.\n"
            "Progress of long work goes to stderr: a bar on a terminal, otherwise a line\n"
            "every 5 s (AKIDB_PROGRESS_SECONDS sets the interval).\n\n%s", exit_status_text);
}

/* ---- main ----------------------------------------------------------------------- */

/* Parse the words after the command.  --flag value and --flag=value. */
static int parse(const command *c, int argc, char **argv, int first, args *a)
{
    for (int i = first; i < argc; i++) {
        const char *w = argv[i];
        if (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0) {
            a->help = 1;
            continue;
        }
        if (w[0] != '-' || strcmp(w, "-") == 0) {
            if (a->n_pos >= c->max_pos)
                return usage_error(c, "unexpected argument %s", w);
            a->pos[a->n_pos++] = w;
            continue;
        }
        size_t flen = strcspn(w, "=");
        const opt_def *o = NULL;
        for (size_t k = 0; k < sizeof options / sizeof options[0]; k++)
            if (strlen(options[k].flag) == flen && strncmp(w, options[k].flag, flen) == 0)
                o = &options[k];
        if (!o || !(c->allowed & o->bit))
            return usage_error(c, "unknown option %.*s", (int)flen, w);
        if (a->seen & o->bit)
            return usage_error(c, "%s is given twice", o->flag);
        a->seen |= o->bit;
        if (o->slot == SIZE_MAX) {
            if (w[flen])
                return usage_error(c, "%s takes no value", o->flag);
            a->exact = 1;
            continue;
        }
        const char *value = w[flen] ? w + flen + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc)
                return usage_error(c, "%s needs a value", o->flag);
            value = argv[++i];
        }
        *(const char **)((char *)a + o->slot) = value;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    else if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
        name = "version";
    const command *c = find_command(name);
    if (!c)
        return usage_error(NULL, "unknown command %s", argv[1]);
    args a;
    memset(&a, 0, sizeof a);
    a.argc = argc;
    a.argv = argv;
    if (parse(c, argc, argv, 2, &a))
        return EXIT_USAGE;
    if (a.help) {
        print_command_help(stdout, c);
        return 0;
    }
    return c->run(c, &a);
}
