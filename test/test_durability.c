/*
 * test_durability.c - what survives a close, a crash, a full disk and
 * damaged files.
 *
 * The contract under test is the one include/akidb.h states on akidb_open,
 * akidb_close, akidb_checkpoint and the "Durability of every write" block:
 * an acknowledged write (AKIDB_OK) is never lost by a process crash, a
 * write that failed leaves nothing behind, a batch is all or nothing even
 * across a crash, ids are never reused, and damage is either cut off as a
 * torn log tail (logged, counted in akidb_wal_truncations_total) or
 * reported as AKIDB_CORRUPT naming the file, never a crash.
 *
 * Crashes are real: a forked child writes, reports every acknowledged call
 * to the parent through a pipe, and is killed with SIGKILL at a random
 * moment (or _exit()s from a fault hook at a chosen point, lib/fault.h).
 * The parent then reopens the directory and checks every acknowledged
 * write against a model it kept from those reports.  Documents are
 * generated from (batch, index, version) by a seeded PRNG, so the parent
 * recomputes every vector and metadata string and compares bit for bit.
 *
 * Everything is seeded; a failure prints the seed and the iteration.
 * `make crash` runs the crash loop many more times (AKT_CRASH_ITERS,
 * default 50 here; AKT_CRASH_SEED picks another base seed).
 *
 * Files are found by globbing DIR/wal/ *.wal and DIR/ckpt/ *.ckpt, never by
 * guessing a collection's numeric id.
 */
#include "runner.h"
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "akidb.h"
#include "common/crc.h"
#include "common/fault.h"

#define PATH_LEN 1024

/* snprintf into a PATH_LEN buffer; a path that does not fit fails. */
static void pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- failure context --------------------------------------------------- */

/* What the current test is doing (seed, iteration, case), printed after an
 * assertion fails so the failure can be reproduced.  Cleared at the end of
 * every test. */
static char g_ctx[768];

static void ctx_print(void)
{
    if (g_ctx[0])
        fprintf(stderr, "  context: %s\n", g_ctx);
}

static void ctx_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ctx_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_ctx, sizeof g_ctx, fmt, ap);
    va_end(ap);
}

__attribute__((constructor)) static void print_ctx_at_exit(void)
{
    atexit(ctx_print);
}

#define FAILF(...) akt_fail(__FILE__, __LINE__, __VA_ARGS__)

/* The thread's current message contains `needle`. */
static void assert_msg_has(const char *needle, const char *file, int line)
{
    const char *msg = akidb_errmsg(NULL);
    if (msg == NULL || strstr(msg, needle) == NULL)
        akt_fail(file, line, "errmsg \"%s\" does not contain \"%s\"",
                 msg ? msg : "(null)", needle);
}
#define ASSERT_MSG_HAS(needle) assert_msg_has((needle), __FILE__, __LINE__)

static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_LEN, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_LEN)
        FAILF("path too long: %s...", out);
}

/* ---- randomness and generated documents ------------------------------- */

static uint64_t mix_seed(uint64_t a, uint64_t b)
{
    uint64_t s = a ^ (b * 0xD6E8FEB86659FD93ull);
    splitmix64(&s);
    return splitmix64(&s);
}

/* The vector of document (batch, i) at version ver: values in [-1, 1). */
static void gen_vec(uint32_t batch, uint32_t i, uint32_t ver, uint32_t dim, float *out)
{
    uint64_t s = 0x243F6A8885A308D3ull ^ ((uint64_t)batch * 0x9E3779B97F4A7C15ull) ^
                 ((uint64_t)i * 0xC2B2AE3D27D4EB4Full) ^ ((uint64_t)ver * 0x165667B19E3779F9ull);
    splitmix64(&s);
    for (uint32_t d = 0; d < dim; d++)
        out[d] = (float)(rand_u01(&s) * 2.0 - 1.0);
}

static void gen_ext(char *buf, size_t len, uint32_t batch, uint32_t i)
{
    snprintf(buf, len, "b%u-%u", batch, i);
}

/* Metadata names the external id and the version; its length varies so
 * that records do not all have one size. */
static void gen_meta(char *buf, size_t len, uint32_t batch, uint32_t i, uint32_t ver)
{
    static const char pad[] = "pppppppppppppppppppppppppppppppppppppppp";
    int n_pad = (int)((batch * 7u + i * 13u + ver * 3u) % 37u);
    snprintf(buf, len, "{\"ext\":\"b%u-%u\",\"ver\":%u,\"pad\":\"%.*s\"}", batch, i, ver,
             n_pad, pad);
}

/* ---- time, processes ---------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int time_scale(void)
{
    const char *s = getenv("AKT_TIMEOUT_SCALE");
    return s && atoi(s) > 0 ? atoi(s) : 1;
}

static void sleep_us(uint32_t us)
{
    struct timespec ts = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void describe_status(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, len, "status 0x%x", st);
}

static void write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "write to pipe: %s\n", strerror(errno));
            _exit(5);
        }
        p += w;
        len -= (size_t)w;
    }
}

/* Read exactly len bytes.  Returns 1, or 0 at EOF before the first byte;
 * EOF inside, or nothing for timeout_s, fails the test. */
static int read_full(int fd, void *buf, size_t len, double timeout_s)
{
    char *p = buf;
    size_t got = 0;
    double end = now_s() + timeout_s * time_scale();
    while (got < len) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        int ms = (int)((end - now_s()) * 1000);
        if (ms <= 0)
            FAILF("no message from child process for %g s (hang?)", timeout_s * time_scale());
        int r = poll(&pfd, 1, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            continue;
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            FAILF("read from pipe: %s", strerror(errno));
        if (n == 0) {
            if (got == 0)
                return 0;
            FAILF("pipe ended inside a message (%zu of %zu bytes)", got, len);
        }
        got += (size_t)n;
    }
    return 1;
}

/* ---- files ---------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void copy_file(const char *src, const char *dst, mode_t mode)
{
    int in = open(src, O_RDONLY);
    if (in < 0)
        FAILF("open %s: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, mode & 0777);
    if (out < 0)
        FAILF("create %s: %s", dst, strerror(errno));
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            FAILF("read %s: %s", src, strerror(errno));
        if (n == 0)
            break;
        if (write(out, buf, (size_t)n) != n)
            FAILF("write %s: %s", dst, strerror(errno));
    }
    close(in);
    close(out);
}

/* cp -a for a tree of directories and regular files. */
static void copy_tree(const char *src, const char *dst)
{
    if (mkdir(dst, 0755) != 0 && errno != EEXIST)
        FAILF("mkdir %s: %s", dst, strerror(errno));
    DIR *d = opendir(src);
    if (!d)
        FAILF("opendir %s: %s", src, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char s[PATH_LEN], t[PATH_LEN];
        pathf(s, "%s/%s", src, e->d_name);
        pathf(t, "%s/%s", dst, e->d_name);
        struct stat st;
        if (lstat(s, &st) != 0)
            FAILF("stat %s: %s", s, strerror(errno));
        if (S_ISDIR(st.st_mode))
            copy_tree(s, t);
        else if (S_ISREG(st.st_mode))
            copy_file(s, t, st.st_mode);
    }
    closedir(d);
}

/* Size of a file, -1 when it does not exist. */
static long long file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (long long)st.st_size;
}

/* Where the records of log `path` end: its size, less the sync marker an
 * ALWAYS-mode append leaves after the last record (24 bytes: length 0,
 * CRC-32C of the 16 bytes after the CRC; lib/engine/wal.c). */
static long long log_data_end(const char *path)
{
    long long size = file_size(path);
    unsigned char m[24];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return size;
    int marker = size >= 32 + 24 && pread(fd, m, sizeof m, size - 24) == (ssize_t)sizeof m &&
                 m[0] == 0 && m[1] == 0 && m[2] == 0 && m[3] == 0 &&
                 akidb__crc32c(0, m + 8, 16) == ((uint32_t)m[4] | (uint32_t)m[5] << 8 |
                                                 (uint32_t)m[6] << 16 | (uint32_t)m[7] << 24);
    close(fd);
    return marker ? size - 24 : size;
}

/* The whole file in a new buffer (free() it); NULL if it cannot be opened. */
static unsigned char *slurp(const char *path, size_t *len_out)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0)
        FAILF("fstat %s: %s", path, strerror(errno));
    size_t len = (size_t)st.st_size;
    unsigned char *buf = malloc(len + 1);
    ASSERT(buf != NULL);
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            FAILF("read %s: %s", path, n < 0 ? strerror(errno) : "short file");
        got += (size_t)n;
    }
    close(fd);
    *len_out = len;
    return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        FAILF("create %s: %s", path, strerror(errno));
    if (len > 0 && write(fd, buf, len) != (ssize_t)len)
        FAILF("write %s: %s", path, strerror(errno));
    close(fd);
}

static void write_at(const char *path, long long off, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        FAILF("open %s: %s", path, strerror(errno));
    if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
        FAILF("pwrite %s: %s", path, strerror(errno));
    close(fd);
}

static void flip_bit(const char *path, long long off, int bit)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        FAILF("open %s: %s", path, strerror(errno));
    unsigned char b;
    if (pread(fd, &b, 1, (off_t)off) != 1)
        FAILF("pread %s at %lld: %s", path, off, strerror(errno));
    b ^= (unsigned char)(1u << bit);
    if (pwrite(fd, &b, 1, (off_t)off) != 1)
        FAILF("pwrite %s: %s", path, strerror(errno));
    close(fd);
}

static void truncate_to(const char *path, long long len)
{
    if (truncate(path, (off_t)len) != 0)
        FAILF("truncate %s to %lld: %s", path, len, strerror(errno));
}

/* Paths matching DIR/sub/ *suffix; returns the number found (at most max). */
static size_t find_db_files(const char *dir, const char *sub, const char *suffix,
                            char (*out)[PATH_LEN], size_t max)
{
    char pat[PATH_LEN];
    pathf(pat, "%s/%s/*%s", dir, sub, suffix);
    glob_t g;
    size_t n = 0;
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc && n < max; i++)
            pathf(out[n++], "%s", g.gl_pathv[i]);
        globfree(&g);
    }
    return n;
}

/* The single file DIR/sub/ *suffix (fails if there is not exactly one). */
static void the_db_file(const char *dir, const char *sub, const char *suffix, char *out)
{
    char found[4][PATH_LEN];
    size_t n = find_db_files(dir, sub, suffix, found, 4);
    if (n != 1)
        FAILF("expected exactly one %s/%s/*%s, found %zu", dir, sub, suffix, n);
    pathf(out, "%s", found[0]);
}

/* ---- opening, logging ------------------------------------------------------ */

/* Messages of the log callback.  WARN messages are kept (the last one) and
 * counted, with how many name a log file ("wal/"). */
typedef struct logcap {
    pthread_mutex_t mu;
    int n_warn;
    int n_warn_wal;
    char last_warn[512];
} logcap;

static void logcap_init(logcap *lc)
{
    memset(lc, 0, sizeof *lc);
    pthread_mutex_init(&lc->mu, NULL);
}

static void log_cb(void *ctx, akidb_log_level level, const char *msg)
{
    logcap *lc = ctx;
    if (msg == NULL)
        FAILF("log callback got a NULL message (level %d)", (int)level);
    if (level != AKIDB_LOG_WARN)
        return;
    pthread_mutex_lock(&lc->mu);
    lc->n_warn++;
    if (strstr(msg, "wal/"))
        lc->n_warn_wal++;
    snprintf(lc->last_warn, sizeof lc->last_warn, "%s", msg);
    pthread_mutex_unlock(&lc->mu);
}

static void make_opts(akidb_options *o, akidb_sync_mode mode, uint64_t ckpt_bytes, logcap *lc)
{
    akidb_options_init(o);
    o->sync_mode = mode;
    o->checkpoint_bytes = ckpt_bytes;
    if (lc) {
        o->log_fn = log_cb;
        o->log_ctx = lc;
    }
}

static akidb *open_ok(const char *dir, const akidb_options *o)
{
    akidb *db = NULL;
    ASSERT_OK(akidb_open(dir, o, &db));
    ASSERT(db != NULL);
    return db;
}

static int64_t truncations(akidb *db)
{
    int64_t v = -1;
    ASSERT_OK(akidb_metric_value(db, "akidb_wal_truncations_total", &v));
    ASSERT_GE(v, 0);
    return v;
}

/* ---- the crash model ------------------------------------------------------ *
 *
 * One collection CCOLL (L2, CDIM).  Documents are named by (batch, i):
 * external id "b<batch>-<i>", vector gen_vec(batch, i, ver), metadata
 * gen_meta(batch, i, ver).  The model holds what must be in the database.
 */

#define CCOLL "c"
#define CDIM 16u
#define CMAX 20u

typedef struct mdoc {
    uint32_t batch, i, ver, live;
    uint64_t id;
} mdoc;

typedef struct model {
    mdoc *docs;
    size_t n_docs, cap_docs;
    int64_t *first;      /* per batch number: index of its first doc, -1 if none */
    uint32_t *n_in;      /* per batch number: docs in it */
    size_t n_slots;
    uint32_t next_batch; /* above every batch number used */
    uint64_t max_id;     /* largest id ever acknowledged */
    uint64_t n_live;
} model;

static void model_init(model *m)
{
    memset(m, 0, sizeof *m);
}

static void model_free(model *m)
{
    free(m->docs);
    free(m->first);
    free(m->n_in);
    model_init(m);
}

static mdoc *model_find(const model *m, uint32_t batch, uint32_t i)
{
    if (batch >= m->n_slots || m->first[batch] < 0 || i >= m->n_in[batch])
        return NULL;
    return &m->docs[m->first[batch] + i];
}

/* Add batch `batch` of n new live documents at version ver with ids. */
static void model_add_batch(model *m, uint32_t batch, uint32_t n, uint32_t ver,
                            const uint64_t *ids)
{
    if (batch >= m->n_slots) {
        size_t ns = m->n_slots ? m->n_slots : 64;
        while (ns <= batch)
            ns *= 2;
        m->first = realloc(m->first, ns * sizeof *m->first);
        m->n_in = realloc(m->n_in, ns * sizeof *m->n_in);
        ASSERT(m->first && m->n_in);
        for (size_t k = m->n_slots; k < ns; k++) {
            m->first[k] = -1;
            m->n_in[k] = 0;
        }
        m->n_slots = ns;
    }
    if (m->first[batch] >= 0)
        FAILF("model: batch %u added twice", batch);
    if (m->n_docs + n > m->cap_docs) {
        m->cap_docs = (m->n_docs + n) * 2;
        m->docs = realloc(m->docs, m->cap_docs * sizeof *m->docs);
        ASSERT(m->docs != NULL);
    }
    m->first[batch] = (int64_t)m->n_docs;
    m->n_in[batch] = n;
    for (uint32_t i = 0; i < n; i++) {
        mdoc *d = &m->docs[m->n_docs++];
        d->batch = batch;
        d->i = i;
        d->ver = ver;
        d->live = 1;
        d->id = ids[i];
        if (ids[i] > m->max_id)
            m->max_id = ids[i];
    }
    m->n_live += n;
    if (batch + 1 > m->next_batch)
        m->next_batch = batch + 1;
}

/* Messages from a writer to the parent, one write() each (< PIPE_BUF, so
 * a SIGKILL never tears one). */
enum { OP_INSERT = 1, OP_UPSERT = 2, OP_DELETE = 3, OP_CKPT = 4 };
enum { MSG_BEGIN = 1, MSG_ACK = 2, MSG_DONE = 3 };

typedef struct mitem {
    uint32_t batch, i, ver, pad_;
    uint64_t id;       /* ACK: the id returned; DELETE: the id deleted */
} mitem;

typedef struct msg {
    uint32_t kind, op, tag, n;
    mitem it[CMAX];
} msg;

static const char *op_name(uint32_t op)
{
    switch (op) {
    case OP_INSERT: return "insert";
    case OP_UPSERT: return "upsert";
    case OP_DELETE: return "delete";
    case OP_CKPT: return "checkpoint";
    default: return "?";
    }
}

/* Apply an acknowledged (or found applied) op with the ids it returned.
 * check_increasing: new ids must exceed every id acknowledged before
 * (single writer; with concurrent writers the order of acks is not the
 * order of ids). */
static void model_apply(model *m, const msg *op, const uint64_t *ids, int check_increasing)
{
    switch (op->op) {
    case OP_INSERT:
        if (check_increasing)
            for (uint32_t k = 0; k < op->n; k++)
                if (ids[k] <= m->max_id)
                    FAILF("insert of batch %u got id %llu, not above the largest id "
                          "acknowledged before (%llu): ids reused?", op->it[0].batch,
                          (unsigned long long)ids[k], (unsigned long long)m->max_id);
        model_add_batch(m, op->it[0].batch, op->n, 0, ids);
        break;
    case OP_UPSERT: {
        uint64_t old_max = m->max_id;
        uint32_t k = 0;
        for (; k < op->n; k++) {
            const mitem *it = &op->it[k];
            mdoc *d = model_find(m, it->batch, it->i);
            if (!d)
                break;  /* the fresh batch, always last */
            if (d->live) {
                if (ids[k] != d->id)
                    FAILF("upsert of existing b%u-%u returned id %llu, expected %llu",
                          it->batch, it->i, (unsigned long long)ids[k],
                          (unsigned long long)d->id);
            } else {
                if (check_increasing && ids[k] <= old_max)
                    FAILF("upsert re-inserting deleted b%u-%u got id %llu <= %llu",
                          it->batch, it->i, (unsigned long long)ids[k],
                          (unsigned long long)old_max);
                d->live = 1;
                d->id = ids[k];
                m->n_live++;
                if (ids[k] > m->max_id)
                    m->max_id = ids[k];
            }
            d->ver = it->ver;
        }
        if (k < op->n) {
            for (uint32_t j = k; j < op->n; j++)
                if (check_increasing && ids[j] <= old_max)
                    FAILF("upsert inserting b%u-%u got id %llu <= %llu", op->it[j].batch,
                          op->it[j].i, (unsigned long long)ids[j],
                          (unsigned long long)old_max);
            model_add_batch(m, op->it[k].batch, op->n - k, 0, ids + k);
        }
        break;
    }
    case OP_DELETE: {
        mdoc *d = model_find(m, op->it[0].batch, op->it[0].i);
        ASSERT(d != NULL && d->live);
        d->live = 0;
        m->n_live--;
        break;
    }
    default:
        break;
    }
}

/* The documents of an insert/upsert op as the API wants them. */
typedef struct opbuf {
    float vecs[CMAX * CDIM];
    char ext[CMAX][32];
    char meta[CMAX][128];
    const char *ext_p[CMAX];
    const char *meta_p[CMAX];
} opbuf;

static void opbuf_fill(opbuf *b, const msg *op)
{
    for (uint32_t k = 0; k < op->n; k++) {
        const mitem *it = &op->it[k];
        gen_vec(it->batch, it->i, it->ver, CDIM, b->vecs + (size_t)k * CDIM);
        gen_ext(b->ext[k], sizeof b->ext[k], it->batch, it->i);
        gen_meta(b->meta[k], sizeof b->meta[k], it->batch, it->i, it->ver);
        b->ext_p[k] = b->ext[k];
        b->meta_p[k] = b->meta[k];
    }
}

/* Perform op on db; ids (room for CMAX) receives the ids. */
static int run_op(akidb *db, const msg *op, uint64_t *ids)
{
    opbuf b;
    switch (op->op) {
    case OP_INSERT:
        opbuf_fill(&b, op);
        return akidb_insert(db, CCOLL, op->n, b.vecs, b.ext_p, b.meta_p, ids);
    case OP_UPSERT:
        opbuf_fill(&b, op);
        return akidb_upsert(db, CCOLL, op->n, b.vecs, b.ext_p, b.meta_p, ids);
    case OP_DELETE:
        ids[0] = op->it[0].id;
        return akidb_delete(db, CCOLL, op->it[0].id);
    case OP_CKPT:
        return akidb_checkpoint(db, CCOLL);
    default:
        return AKIDB_MISUSE;
    }
}

static void op_insert(msg *op, uint32_t batch, uint32_t n)
{
    memset(op, 0, sizeof *op);
    op->op = OP_INSERT;
    op->n = n;
    for (uint32_t i = 0; i < n; i++) {
        op->it[i].batch = batch;
        op->it[i].i = i;
    }
}

/* A random live document (n_live > 0). */
static mdoc *pick_live(const model *m, uint64_t *rng)
{
    for (int tries = 0; tries < 64; tries++) {
        mdoc *d = &m->docs[rand_below(rng, (uint32_t)m->n_docs)];
        if (d->live)
            return d;
    }
    for (size_t k = 0; k < m->n_docs; k++)
        if (m->docs[k].live)
            return &m->docs[k];
    FAILF("pick_live: no live document");
}

/* The next random op of a single writer, from its view of the model. */
static void make_op(const model *m, uint64_t *rng, int allow_ckpt, msg *op)
{
    uint32_t r = rand_below(rng, 100);
    memset(op, 0, sizeof *op);
    if (r < 55 || m->n_live == 0) {
        op_insert(op, m->next_batch, 1 + rand_below(rng, CMAX));
    } else if (r < 77) {
        op->op = OP_UPSERT;
        uint32_t want = 1 + rand_below(rng, 8);
        for (uint32_t t = 0; t < want * 2 && op->n < want; t++) {
            /* mostly live documents; sometimes a deleted one (re-inserted) */
            const mdoc *d = rand_below(rng, 4) ? pick_live(m, rng)
                                               : &m->docs[rand_below(rng, (uint32_t)m->n_docs)];
            int dup = 0;
            for (uint32_t k = 0; k < op->n; k++)
                if (op->it[k].batch == d->batch && op->it[k].i == d->i)
                    dup = 1;
            if (dup)
                continue;
            op->it[op->n].batch = d->batch;
            op->it[op->n].i = d->i;
            op->it[op->n].ver = d->ver + 1;
            op->n++;
        }
        if (rand_below(rng, 2)) {  /* and a fresh batch, inserted by the upsert */
            uint32_t nf = 1 + rand_below(rng, 5);
            for (uint32_t i = 0; i < nf; i++) {
                op->it[op->n].batch = m->next_batch;
                op->it[op->n].i = i;
                op->it[op->n].ver = 0;
                op->n++;
            }
        }
    } else if (r < 94 || !allow_ckpt) {
        const mdoc *d = pick_live(m, rng);
        if (rand_below(rng, 4) == 0) {
            /* the newest document: after a checkpoint and a reopen its id
             * must still not be handed out again */
            for (size_t k = 0; k < m->n_docs; k++)
                if (m->docs[k].live && m->docs[k].id > d->id)
                    d = &m->docs[k];
        }
        op->op = OP_DELETE;
        op->n = 1;
        op->it[0].batch = d->batch;
        op->it[0].i = d->i;
        op->it[0].ver = d->ver;
        op->it[0].id = d->id;
    } else {
        op->op = OP_CKPT;
    }
}

/* ---- checking a database against the model ------------------------------- */

/* What the database holds for (batch, i): 0 absent, 1 present (id, the
 * vector and the metadata returned). */
static int observe(akidb *db, uint32_t batch, uint32_t i, uint64_t *id, float *vec, char **meta)
{
    char ext[32];
    gen_ext(ext, sizeof ext, batch, i);
    *meta = NULL;
    int rc = akidb_lookup(db, CCOLL, ext, id);
    if (rc == AKIDB_NOTFOUND)
        return 0;
    if (rc != AKIDB_OK)
        FAILF("lookup %s: rc %d (%s)", ext, rc, akidb_errmsg(NULL));
    rc = akidb_get(db, CCOLL, *id, vec, meta);
    if (rc != AKIDB_OK)
        FAILF("lookup %s gave id %llu but get says rc %d (%s)", ext,
              (unsigned long long)*id, rc, akidb_errmsg(NULL));
    return 1;
}

/* The content is exactly version ver of (batch, i). */
static int content_is(const float *vec, const char *meta, uint32_t batch, uint32_t i,
                      uint32_t ver)
{
    float want[CDIM];
    char want_meta[128];
    gen_vec(batch, i, ver, CDIM, want);
    gen_meta(want_meta, sizeof want_meta, batch, i, ver);
    return memcmp(vec, want, sizeof want) == 0 && meta != NULL && strcmp(meta, want_meta) == 0;
}

/* Check one live model document: lookup, id, vector bit-exact, metadata. */
static void check_live(akidb *db, const mdoc *d)
{
    uint64_t id = 0;
    float vec[CDIM];
    char *meta = NULL;
    if (!observe(db, d->batch, d->i, &id, vec, &meta))
        FAILF("acknowledged document b%u-%u (id %llu, version %u) is missing", d->batch, d->i,
              (unsigned long long)d->id, d->ver);
    if (id != d->id)
        FAILF("b%u-%u: lookup gives id %llu, acknowledged id %llu", d->batch, d->i,
              (unsigned long long)id, (unsigned long long)d->id);
    if (!content_is(vec, meta, d->batch, d->i, d->ver)) {
        int older = d->ver > 0 && content_is(vec, meta, d->batch, d->i, d->ver - 1);
        FAILF("b%u-%u (id %llu): content is not version %u%s (metadata %s)", d->batch, d->i,
              (unsigned long long)id, d->ver,
              older ? " but the version before it: an acknowledged upsert was lost" : "",
              meta ? meta : "(null)");
    }
    akidb_free(meta);
}

static void check_deleted(akidb *db, const mdoc *d)
{
    char ext[32];
    uint64_t id = 0;
    gen_ext(ext, sizeof ext, d->batch, d->i);
    int rc = akidb_lookup(db, CCOLL, ext, &id);
    if (rc != AKIDB_NOTFOUND)
        FAILF("deleted document %s (id %llu) is back: lookup rc %d, id %llu", ext,
              (unsigned long long)d->id, rc, (unsigned long long)id);
    rc = akidb_get(db, CCOLL, d->id, NULL, NULL);
    if (rc != AKIDB_NOTFOUND)
        FAILF("deleted document %s: get(id %llu) rc %d, expected NOTFOUND", ext,
              (unsigned long long)d->id, rc);
}

/* How an op that was started but not acknowledged turned out. */
typedef struct outcome {
    uint32_t tag, applied;
    uint64_t ids[CMAX];
} outcome;

/* Decide whether unacknowledged op `op` is in the database, entirely or
 * not at all; anything in between fails. */
static void resolve_op(akidb *db, const model *m, const msg *op, int check_increasing,
                       outcome *out)
{
    memset(out, 0, sizeof *out);
    out->tag = op->tag;
    if (op->op == OP_CKPT)
        return;
    uint32_t n_prior = 0, n_post = 0;
    char why[CMAX][96];
    for (uint32_t k = 0; k < op->n; k++) {
        const mitem *it = &op->it[k];
        const mdoc *d = model_find(m, it->batch, it->i);
        int prior_present = d && d->live;
        uint64_t id = 0;
        float vec[CDIM];
        char *meta = NULL;
        int present = observe(db, it->batch, it->i, &id, vec, &meta);
        int is_prior = prior_present
            ? present && id == d->id && content_is(vec, meta, it->batch, it->i, d->ver)
            : !present;
        int is_post;
        if (op->op == OP_DELETE) {
            is_post = !present;
        } else {
            is_post = present && content_is(vec, meta, it->batch, it->i, it->ver) &&
                      (prior_present ? id == d->id
                                     : (!check_increasing || id > m->max_id));
            out->ids[k] = id;
        }
        snprintf(why[k], sizeof why[k], "b%u-%u: %s id %llu, %s", it->batch, it->i,
                 present ? "present" : "absent", (unsigned long long)id,
                 is_post ? "as after the op" : is_prior ? "as before the op" : "neither");
        akidb_free(meta);
        n_prior += (uint32_t)is_prior;
        n_post += (uint32_t)is_post;
    }
    if (n_post == op->n) {
        out->applied = 1;
        for (uint32_t k = 0; op->op != OP_DELETE && k < op->n; k++)
            for (uint32_t j = 0; j < k; j++)
                if (out->ids[k] == out->ids[j])
                    FAILF("unacknowledged %s: two documents share id %llu", op_name(op->op),
                          (unsigned long long)out->ids[k]);
        return;
    }
    if (n_prior == op->n)
        return;
    char all[CMAX * 96 + 64] = "";
    size_t o = 0;
    for (uint32_t k = 0; k < op->n && o < sizeof all - 100; k++)
        o += (size_t)snprintf(all + o, sizeof all - o, "\n    %s", why[k]);
    FAILF("unacknowledged %s of %u documents is half applied (%u as after, %u as before):%s",
          op_name(op->op), op->n, n_post, n_prior, all);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Everything in the model is in the database exactly; nothing else is
 * (count); search works and finds only live documents. */
static void verify_model(akidb *db, const model *m, const logcap *lc, uint64_t seed)
{
    uint64_t n = UINT64_MAX;
    ASSERT_OK(akidb_collection_count(db, CCOLL, &n));
    uint64_t *live_ids = malloc((m->n_live + 1) * sizeof *live_ids);
    ASSERT(live_ids != NULL);
    size_t n_live = 0;
    for (size_t k = 0; k < m->n_docs; k++) {
        const mdoc *d = &m->docs[k];
        if (d->live) {
            check_live(db, d);
            live_ids[n_live++] = d->id;
        } else {
            check_deleted(db, d);
        }
    }
    ASSERT_EQ(n_live, m->n_live);
    if (n != m->n_live)
        FAILF("count is %llu, the acknowledged writes leave %llu live documents",
              (unsigned long long)n, (unsigned long long)m->n_live);
    qsort(live_ids, n_live, sizeof *live_ids, cmp_u64);
    for (size_t k = 1; k < n_live; k++)
        if (live_ids[k] == live_ids[k - 1])
            FAILF("two live documents share id %llu", (unsigned long long)live_ids[k]);

    if (n_live > 0) {
        uint64_t rng = seed;
        const mdoc *d = pick_live(m, &rng);
        float q[CDIM];
        gen_vec(d->batch, d->i, d->ver, CDIM, q);
        akidb_search_params p;
        akidb_search_params_init(&p);
        p.exact = 1;
        akidb_hit hits[10];
        uint32_t nh = 0;
        ASSERT_OK(akidb_search(db, CCOLL, q, 5, &p, hits, &nh));
        ASSERT_EQ(nh, n_live < 5 ? n_live : 5);
        if (hits[0].id != d->id || hits[0].distance != 0.0f)
            FAILF("exact search for b%u-%u's own vector: top hit id %llu at %g, expected %llu at 0",
                  d->batch, d->i, (unsigned long long)hits[0].id, (double)hits[0].distance,
                  (unsigned long long)d->id);
        p.exact = 0;
        ASSERT_OK(akidb_search(db, CCOLL, q, 10, &p, hits, &nh));
        ASSERT_EQ(nh, n_live < 10 ? n_live : 10);
        for (uint32_t h = 0; h < nh; h++)
            if (!bsearch(&hits[h].id, live_ids, n_live, sizeof *live_ids, cmp_u64))
                FAILF("HNSW search returned id %llu, which is not a live document",
                      (unsigned long long)hits[h].id);
    }
    free(live_ids);

    int64_t t = truncations(db);
    if (lc && t > 0 && lc->n_warn_wal == 0)
        FAILF("akidb_wal_truncations_total is %lld but no WARN log message named a wal/ file "
              "(last WARN: \"%s\")", (long long)t, lc->last_warn);
}

/* ---- writers in child processes ---------------------------------------------- */

typedef struct fault_state {
    akidb__fault_point point;
    int hits;        /* times the point was reached since installation */
    int fire_at;     /* act at this hit (1 = first) and, unless once, after */
    int once;
    int err;         /* errno to return, or 0 */
    int exit_code;   /* non-zero: _exit() with it instead */
} fault_state;

static int fault_hook(void *ctx, akidb__fault_point point)
{
    fault_state *f = ctx;
    if (point != f->point)
        return 0;
    f->hits++;
    if (f->hits < f->fire_at || (f->once && f->hits > f->fire_at))
        return 0;
    if (f->exit_code)
        _exit(f->exit_code);
    return f->err;
}

/* A hook that changes nothing but timing: it sleeps a little between the
 * halves of a log record and around checkpoint renames, so that a SIGKILL
 * at a random moment often lands there (a torn record, a half-done
 * checkpoint) instead of always between two system calls. */
static int slow_hook(void *ctx, akidb__fault_point point)
{
    uint64_t *rng = ctx;
    if (point == AKIDB__FAULT_WAL_MID_RECORD || point == AKIDB__FAULT_CKPT_BEFORE_RENAME ||
        point == AKIDB__FAULT_CKPT_AFTER_RENAME)
        sleep_us(rand_below(rng, 400));
    return 0;
}

typedef struct writer_cfg {
    const char *dir;
    akidb_options opts;
    uint64_t seed;
    int max_ops;
    int allow_ckpt;      /* random explicit checkpoints among the ops */
    int ckpt_every;      /* > 0: an explicit checkpoint after every that many ops */
    int fault_after;     /* >= 0: install the fault hook after this many ops */
    fault_state fault;
    int slow;            /* install slow_hook (until the fault hook replaces it) */
} writer_cfg;

/* The body of a writer process: random ops, each reported before (BEGIN)
 * and after (ACK) the call.  Never returns; failures _exit non-zero. */
static void writer_child(const writer_cfg *cfg, model *m, int wfd)
{
    akidb *db = NULL;
    int rc = akidb_open(cfg->dir, &cfg->opts, &db);
    if (rc != AKIDB_OK) {
        fprintf(stderr, "writer: akidb_open: rc %d: %s\n", rc, akidb_errmsg(NULL));
        _exit(3);
    }
    uint64_t rng = cfg->seed;
    uint64_t slow_rng = cfg->seed ^ 0x5105;
    if (cfg->slow)
        akidb__set_fault_hook(db, slow_hook, &slow_rng);
    fault_state fault = cfg->fault;
    uint32_t tag = 0;
    for (int k = 0; k < cfg->max_ops; k++) {
        if (k == cfg->fault_after)
            akidb__set_fault_hook(db, fault_hook, &fault);
        msg op;
        if (cfg->ckpt_every > 0 && k % cfg->ckpt_every == cfg->ckpt_every - 1) {
            memset(&op, 0, sizeof op);
            op.op = OP_CKPT;
        } else {
            make_op(m, &rng, cfg->allow_ckpt, &op);
        }
        op.tag = ++tag;
        op.kind = MSG_BEGIN;
        write_full(wfd, &op, sizeof op);
        uint64_t ids[CMAX];
        rc = run_op(db, &op, ids);
        if (rc != AKIDB_OK) {
            fprintf(stderr, "writer: %s of %u documents: rc %d: %s\n", op_name(op.op), op.n, rc,
                    akidb_errmsg(NULL));
            _exit(4);
        }
        op.kind = MSG_ACK;
        for (uint32_t j = 0; j < op.n; j++)
            op.it[j].id = ids[j];
        write_full(wfd, &op, sizeof op);
        model_apply(m, &op, ids, 1);
    }
    msg done;
    memset(&done, 0, sizeof done);
    done.kind = MSG_DONE;
    write_full(wfd, &done, sizeof done);
    for (;;)
        pause();
}

/* What the parent learns from a writer's messages. */
typedef struct acks {
    msg inflight[16];    /* begun, not acknowledged */
    size_t n_inflight;
    size_t n_acks;
    int done;
} acks;

static void acks_feed(acks *a, model *m, const msg *mm, int check_increasing)
{
    if (mm->kind == MSG_DONE) {
        a->done = 1;
    } else if (mm->kind == MSG_BEGIN) {
        if (a->n_inflight == 16)
            FAILF("more than 16 operations in flight");
        a->inflight[a->n_inflight++] = *mm;
    } else if (mm->kind == MSG_ACK) {
        size_t k = 0;
        while (k < a->n_inflight && a->inflight[k].tag != mm->tag)
            k++;
        if (k == a->n_inflight)
            FAILF("ack for operation %u that never began", mm->tag);
        uint64_t ids[CMAX];
        for (uint32_t j = 0; j < mm->n; j++)
            ids[j] = mm->it[j].id;
        model_apply(m, mm, ids, check_increasing);
        a->inflight[k] = a->inflight[--a->n_inflight];
        a->n_acks++;
    } else {
        FAILF("bad message kind %u", mm->kind);
    }
}

/* Resolve every in-flight op of `a` against db and apply the ones found
 * applied.  Ops are resolved in the order they began. */
static void resolve_inflight(akidb *db, model *m, acks *a, int check_increasing)
{
    for (size_t k = 0; k < a->n_inflight; k++) {
        outcome oc;
        resolve_op(db, m, &a->inflight[k], check_increasing, &oc);
        if (oc.applied)
            model_apply(m, &a->inflight[k], oc.ids, check_increasing);
    }
    a->n_inflight = 0;
}

/* Open, resolve what was in flight, check everything, insert one more
 * batch, close, reopen, check again. */
static void reopen_and_verify(const char *dir, const akidb_options *o, model *m, acks *a,
                              int check_increasing, uint64_t seed, int expect_truncation)
{
    logcap lc;
    logcap_init(&lc);
    akidb_options oo = *o;
    oo.log_fn = log_cb;
    oo.log_ctx = &lc;
    akidb *db = open_ok(dir, &oo);
    if (a)
        resolve_inflight(db, m, a, check_increasing);
    verify_model(db, m, &lc, seed);
    if (expect_truncation) {
        if (truncations(db) < 1)
            FAILF("a torn record was left by the crash but akidb_wal_truncations_total is 0");
        if (lc.n_warn_wal < 1)
            FAILF("a torn record was cut but no WARN message named the wal/ file (%d WARNs; "
                  "last \"%s\")", lc.n_warn, lc.last_warn);
    }
    msg op;
    op_insert(&op, m->next_batch, 3);
    uint64_t ids[CMAX];
    ASSERT_OK(run_op(db, &op, ids));
    model_apply(m, &op, ids, check_increasing);
    verify_model(db, m, &lc, seed + 1);
    ASSERT_OK(akidb_close(db));
    db = open_ok(dir, &oo);
    verify_model(db, m, &lc, seed + 2);
    ASSERT_OK(akidb_close(db));
}

static void create_crash_coll(const char *dir)
{
    akidb *db = open_ok(dir, NULL);
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, CDIM, AKIDB_METRIC_L2);
    cfg.hnsw_m = 8;
    cfg.ef_construction = 32;
    ASSERT_OK(akidb_collection_create(db, CCOLL, &cfg));
    ASSERT_OK(akidb_close(db));
}

/* ---- 1. persistence --------------------------------------------------------- */

typedef struct pcoll {
    const char *name;
    uint32_t dim;
    akidb_metric metric;
    uint32_t m, efc, efs;
} pcoll;

#define P_N 3
static const pcoll P_COLLS[P_N] = {
    { "l2", 8, AKIDB_METRIC_L2, 8, 40, 24 },
    { "cos", 5, AKIDB_METRIC_COSINE, 12, 100, 80 },
    { "empty", 3, AKIDB_METRIC_DOT, 4, 10, 5 },
};

/* Everything a workload created, to read back. */
typedef struct pcstate {
    uint64_t *ids;          /* every id ever returned */
    size_t n_ids;
    char (*ext)[40];        /* every external id ever used */
    size_t n_ext;
} pcstate;

typedef struct pstate {
    pcstate c[P_N];
    uint64_t max_id[P_N];
} pstate;

static void pstate_free(pstate *st)
{
    for (int c = 0; c < P_N; c++) {
        free(st->c[c].ids);
        free(st->c[c].ext);
    }
    memset(st, 0, sizeof *st);
}

static void pstate_add(pstate *st, int c, const uint64_t *ids, const char *const *ext, size_t n)
{
    pcstate *s = &st->c[c];
    s->ids = realloc(s->ids, (s->n_ids + n) * sizeof *s->ids);
    s->ext = realloc(s->ext, (s->n_ext + n) * sizeof *s->ext);
    ASSERT(s->ids && s->ext);
    for (size_t k = 0; k < n; k++) {
        int seen = 0;
        for (size_t j = 0; j < s->n_ids; j++)
            seen |= s->ids[j] == ids[k];
        if (!seen)
            s->ids[s->n_ids++] = ids[k];
        if (ids[k] > st->max_id[c])
            st->max_id[c] = ids[k];
        if (ext && ext[k]) {
            seen = 0;
            for (size_t j = 0; j < s->n_ext; j++)
                seen |= strcmp(s->ext[j], ext[k]) == 0;
            if (!seen)
                snprintf(s->ext[s->n_ext++], sizeof s->ext[0], "%s", ext[k]);
        }
    }
}

static void p_vec(int c, uint32_t b, uint32_t i, uint32_t ver, float *out)
{
    gen_vec(100000u * (uint32_t)(c + 1) + b, i, ver, P_COLLS[c].dim, out);
}

static void p_meta(char *buf, size_t len, int c, uint32_t b, uint32_t i, uint32_t ver)
{
    snprintf(buf, len, "{\"coll\":\"%s\",\"b\":%u,\"i\":%u,\"ver\":%u,\"s\":\"h\xc3\xa9llo \xe2\x9c\x93\"}",
             P_COLLS[c].name, b, i, ver);
}

/* Insert or upsert n documents of collection c: external ids "c<c>-<b>-<i>"
 * (every 7th none, unless upserting), metadata (every 5th none). */
static void p_write(akidb *db, pstate *st, int c, int upsert, uint32_t b, uint32_t n,
                    const uint32_t *is, uint32_t ver)
{
    float vecs[40 * 8];
    char ext[40][40], meta[40][160];
    const char *ext_p[40], *meta_p[40];
    uint64_t ids[40];
    ASSERT(n <= 40);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = is ? is[k] : k;
        p_vec(c, b, i, ver, vecs + (size_t)k * P_COLLS[c].dim);
        snprintf(ext[k], sizeof ext[k], "c%d-%u-%u", c, b, i);
        p_meta(meta[k], sizeof meta[k], c, b, i, ver);
        ext_p[k] = (!upsert && i % 7 == 3) ? NULL : ext[k];
        meta_p[k] = i % 5 == 2 ? NULL : meta[k];
    }
    uint64_t before = st->max_id[c];
    if (upsert)
        ASSERT_OK(akidb_upsert(db, P_COLLS[c].name, n, vecs, ext_p, meta_p, ids));
    else
        ASSERT_OK(akidb_insert(db, P_COLLS[c].name, n, vecs, ext_p, meta_p, ids));
    if (!upsert)
        for (uint32_t k = 0; k < n; k++)
            if (ids[k] <= before)
                FAILF("%s: new id %llu not above earlier id %llu", P_COLLS[c].name,
                      (unsigned long long)ids[k], (unsigned long long)before);
    pstate_add(st, c, ids, ext_p, n);
}

/* A deterministic workload over the three collections: inserts, upserts of
 * existing and new documents, deletes. */
static void p_workload(akidb *db, pstate *st, uint64_t seed)
{
    uint64_t rng = seed;
    for (int c = 0; c < P_N; c++) {
        akidb_collection_config cfg;
        akidb_collection_config_init(&cfg, P_COLLS[c].dim, P_COLLS[c].metric);
        cfg.hnsw_m = P_COLLS[c].m;
        cfg.ef_construction = P_COLLS[c].efc;
        cfg.ef_search = P_COLLS[c].efs;
        ASSERT_OK(akidb_collection_create(db, P_COLLS[c].name, &cfg));
    }
    for (int c = 0; c < 2; c++) {
        uint32_t n_batches = c == 0 ? 12 : 8;
        for (uint32_t b = 0; b < n_batches; b++)
            p_write(db, st, c, 0, b, 1 + rand_below(&rng, 30), NULL, 0);
    }
    /* upsert existing documents (new version) and new ones */
    for (int c = 0; c < 2; c++) {
        uint32_t is[40];
        for (uint32_t k = 0; k < 15; k++)
            is[k] = k * 2;  /* batch 0 and 1 have at least 1 doc; ids beyond n are new */
        p_write(db, st, c, 1, 0, 15, is, 1);
        for (uint32_t k = 0; k < 5; k++)
            is[k] = 1000 + k;
        p_write(db, st, c, 1, 1, 5, is, 2);
    }
    /* delete every 9th id ever returned (some of them upserted) */
    for (int c = 0; c < 2; c++) {
        const pcstate *s = &st->c[c];
        for (size_t k = 4; k < s->n_ids; k += 9)
            ASSERT_OK(akidb_delete(db, P_COLLS[c].name, s->ids[k]));
    }
    /* an upsert that re-inserts a deleted external id */
    for (int c = 0; c < 2; c++) {
        const pcstate *s = &st->c[c];
        size_t e = 0;
        uint64_t id = 0;
        while (e < s->n_ext && akidb_lookup(db, P_COLLS[c].name, s->ext[e], &id) != AKIDB_NOTFOUND)
            e++;
        if (e == s->n_ext)
            FAILF("workload: no deleted external id to re-insert in %s", P_COLLS[c].name);
        uint32_t b = 0, i = 0;
        ASSERT(sscanf(s->ext[e], "c%*d-%u-%u", &b, &i) == 2);
        p_write(db, st, c, 1, b, 1, &i, 7);
    }
    /* last, delete the document with the largest id: a reopen must not
     * hand that id out again */
    for (int c = 0; c < 3; c++) {
        uint32_t i = 0;
        p_write(db, st, c, 0, 9999, 1, &i, 0);
        ASSERT_OK(akidb_delete(db, P_COLLS[c].name, st->max_id[c]));
    }
}

#define P_QUERIES 6
#define P_K 10

typedef struct psnap {
    akidb_collection_config cfg[P_N];
    uint64_t count[P_N];
    int *get_rc[P_N];
    float *vec[P_N];          /* n_ids * dim */
    char **meta[P_N];
    int *lookup_rc[P_N];
    uint64_t *lookup_id[P_N];
    akidb_hit hits[P_N][2][P_QUERIES][P_K];
    uint32_t n_hits[P_N][2][P_QUERIES];
} psnap;

static void p_snapshot(akidb *db, const pstate *st, psnap *sn)
{
    memset(sn, 0, sizeof *sn);
    /* HNSW answers are compared bit for bit: the graphs must be complete
     * (the same graph whenever the indexer ran; test_ingest checks that) */
    ASSERT_OK(akidb_index_wait(db, NULL, AKIDB_NEVER));
    for (int c = 0; c < P_N; c++) {
        const pcoll *pc = &P_COLLS[c];
        const pcstate *s = &st->c[c];
        sn->cfg[c].version = AKIDB_COLLECTION_CONFIG_VERSION;
        ASSERT_OK(akidb_collection_info(db, pc->name, &sn->cfg[c]));
        ASSERT_OK(akidb_collection_count(db, pc->name, &sn->count[c]));
        sn->get_rc[c] = calloc(s->n_ids + 1, sizeof(int));
        sn->vec[c] = calloc((s->n_ids + 1) * pc->dim, sizeof(float));
        sn->meta[c] = calloc(s->n_ids + 1, sizeof(char *));
        sn->lookup_rc[c] = calloc(s->n_ext + 1, sizeof(int));
        sn->lookup_id[c] = calloc(s->n_ext + 1, sizeof(uint64_t));
        ASSERT(sn->get_rc[c] && sn->vec[c] && sn->meta[c] && sn->lookup_rc[c] &&
               sn->lookup_id[c]);
        for (size_t k = 0; k < s->n_ids; k++) {
            float *v = sn->vec[c] + k * pc->dim;
            sn->get_rc[c][k] = akidb_get(db, pc->name, s->ids[k], v, &sn->meta[c][k]);
            if (sn->get_rc[c][k] != AKIDB_OK) {  /* outputs unspecified: compare rc only */
                memset(v, 0, pc->dim * sizeof(float));
                sn->meta[c][k] = NULL;
            }
        }
        for (size_t k = 0; k < s->n_ext; k++) {
            sn->lookup_rc[c][k] = akidb_lookup(db, pc->name, s->ext[k], &sn->lookup_id[c][k]);
            if (sn->lookup_rc[c][k] != AKIDB_OK)
                sn->lookup_id[c][k] = 0;
        }
        uint64_t rng = 77 + (uint64_t)c;
        for (int q = 0; q < P_QUERIES; q++) {
            float query[8];
            for (uint32_t d = 0; d < pc->dim; d++)
                query[d] = (float)(rand_u01(&rng) * 2.0 - 1.0);
            for (int exact = 0; exact < 2; exact++) {
                akidb_search_params p;
                akidb_search_params_init(&p);
                p.exact = exact;
                ASSERT_OK(akidb_search(db, pc->name, query, P_K, &p, sn->hits[c][exact][q],
                                       &sn->n_hits[c][exact][q]));
            }
        }
    }
}

static void p_snapshot_free(psnap *sn, const pstate *st)
{
    for (int c = 0; c < P_N; c++) {
        for (size_t k = 0; sn->meta[c] && k < st->c[c].n_ids; k++)
            akidb_free(sn->meta[c][k]);
        free(sn->get_rc[c]);
        free(sn->vec[c]);
        free(sn->meta[c]);
        free(sn->lookup_rc[c]);
        free(sn->lookup_id[c]);
    }
}

/* Two snapshots of the same workload are identical, bit for bit. */
static void p_compare(const psnap *a, const psnap *b, const pstate *st, const char *what)
{
    for (int c = 0; c < P_N; c++) {
        const pcoll *pc = &P_COLLS[c];
        const pcstate *s = &st->c[c];
        if (memcmp(&a->cfg[c], &b->cfg[c], sizeof a->cfg[c]) != 0)
            FAILF("%s: %s: config differs (dim %u/%u metric %d/%d M %u/%u efc %u/%u efs %u/%u)",
                  what, pc->name, a->cfg[c].dim, b->cfg[c].dim, (int)a->cfg[c].metric,
                  (int)b->cfg[c].metric, a->cfg[c].hnsw_m, b->cfg[c].hnsw_m,
                  a->cfg[c].ef_construction, b->cfg[c].ef_construction, a->cfg[c].ef_search,
                  b->cfg[c].ef_search);
        if (a->count[c] != b->count[c])
            FAILF("%s: %s: count %llu, expected %llu", what, pc->name,
                  (unsigned long long)b->count[c], (unsigned long long)a->count[c]);
        for (size_t k = 0; k < s->n_ids; k++) {
            if (a->get_rc[c][k] != b->get_rc[c][k])
                FAILF("%s: %s: get(id %llu) rc %d, expected %d", what, pc->name,
                      (unsigned long long)s->ids[k], b->get_rc[c][k], a->get_rc[c][k]);
            if (memcmp(a->vec[c] + k * pc->dim, b->vec[c] + k * pc->dim,
                       pc->dim * sizeof(float)) != 0)
                FAILF("%s: %s: id %llu: vector differs", what, pc->name,
                      (unsigned long long)s->ids[k]);
            const char *ma = a->meta[c][k], *mb = b->meta[c][k];
            if ((ma == NULL) != (mb == NULL) || (ma && strcmp(ma, mb) != 0))
                FAILF("%s: %s: id %llu: metadata \"%s\", expected \"%s\"", what, pc->name,
                      (unsigned long long)s->ids[k], mb ? mb : "(null)", ma ? ma : "(null)");
        }
        for (size_t k = 0; k < s->n_ext; k++)
            if (a->lookup_rc[c][k] != b->lookup_rc[c][k] ||
                a->lookup_id[c][k] != b->lookup_id[c][k])
                FAILF("%s: %s: lookup(%s) rc %d id %llu, expected rc %d id %llu", what,
                      pc->name, s->ext[k], b->lookup_rc[c][k],
                      (unsigned long long)b->lookup_id[c][k], a->lookup_rc[c][k],
                      (unsigned long long)a->lookup_id[c][k]);
        for (int exact = 0; exact < 2; exact++)
            for (int q = 0; q < P_QUERIES; q++) {
                uint32_t na = a->n_hits[c][exact][q], nb = b->n_hits[c][exact][q];
                if (na != nb || memcmp(a->hits[c][exact][q], b->hits[c][exact][q],
                                       na * sizeof(akidb_hit)) != 0)
                    FAILF("%s: %s: %s search %d: results differ (%u vs %u hits; first id "
                          "%llu vs %llu)", what, pc->name, exact ? "exact" : "HNSW", q, na, nb,
                          na ? (unsigned long long)a->hits[c][exact][q][0].id : 0ull,
                          nb ? (unsigned long long)b->hits[c][exact][q][0].id : 0ull);
            }
    }
}

/* New inserts after a reopen get ids above every id ever returned. */
static void p_check_new_ids(akidb *db, pstate *st)
{
    for (int c = 0; c < P_N; c++) {
        float v[8];
        for (uint32_t d = 0; d < P_COLLS[c].dim; d++)
            v[d] = 0.25f + (float)d;
        uint64_t id = 0;
        ASSERT_OK(akidb_insert(db, P_COLLS[c].name, 1, v, NULL, NULL, &id));
        if (id <= st->max_id[c])
            FAILF("%s: id %llu after reopen is not above the largest earlier id %llu: ids "
                  "reused", P_COLLS[c].name, (unsigned long long)id,
                  (unsigned long long)st->max_id[c]);
        float back[8];
        ASSERT_OK(akidb_get(db, P_COLLS[c].name, id, back, NULL));
        st->max_id[c] = id;
    }
}

static void db_path(char *buf, const char *name)
{
    pathf(buf, "%s/%s", akt_dir, name);
}

TEST(durability_persist_close_reopen)
{
    char dir[PATH_LEN];
    db_path(dir, "db");
    pstate st;
    memset(&st, 0, sizeof st);
    psnap before, after;

    akidb *db = open_ok(dir, NULL);
    p_workload(db, &st, 1234);
    p_snapshot(db, &st, &before);
    ASSERT_OK(akidb_close(db));

    for (int round = 0; round < 2; round++) {  /* the second close has nothing to write */
        db = open_ok(dir, NULL);
        p_snapshot(db, &st, &after);
        p_compare(&before, &after, &st, round ? "second reopen" : "reopen");
        p_snapshot_free(&after, &st);
        ASSERT_OK(akidb_close(db));
    }

    db = open_ok(dir, NULL);
    p_check_new_ids(db, &st);
    ASSERT_OK(akidb_close(db));
    db = open_ok(dir, NULL);
    p_check_new_ids(db, &st);   /* and again: the id counter itself persisted */
    uint64_t n = 0;
    ASSERT_OK(akidb_collection_count(db, "empty", &n));
    ASSERT_EQ(n, 2);
    ASSERT_OK(akidb_close(db));
    p_snapshot_free(&before, &st);
    pstate_free(&st);
}

/* Run p_workload in a child that then dies without akidb_close, compare
 * with the same workload run in the parent on another directory.
 * ckpt_bytes > 0: checkpoints happen during the workload, and the log
 * holds records after the last one. */
static void persist_after_crash(uint64_t ckpt_bytes)
{
    char dir[PATH_LEN], ref[PATH_LEN];
    db_path(dir, "crashed");
    db_path(ref, "reference");
    akidb_options o;
    make_opts(&o, AKIDB_SYNC_ALWAYS, ckpt_bytes, NULL);

    pid_t pid = akt_fork_child();
    if (pid == 0) {
        akidb *db = NULL;
        if (akidb_open(dir, &o, &db) != AKIDB_OK)
            _exit(3);
        pstate st;
        memset(&st, 0, sizeof st);
        p_workload(db, &st, 99);
        if (ckpt_bytes) {
            char ck[8][PATH_LEN];
            size_t n_ck = find_db_files(dir, "ckpt", ".ckpt", ck, 8);
            if (n_ck < 2)
                FAILF("checkpoint_bytes %llu: only %zu checkpoint files after the workload",
                      (unsigned long long)ckpt_bytes, n_ck);
        }
        float v[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        uint64_t id;
        ASSERT_OK(akidb_insert(db, "l2", 1, v, NULL, NULL, &id));
        _exit(0);
    }
    char why[128];
    int status = akt_wait_child(pid, 60, "workload child");
    describe_status(status, why, sizeof why);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAILF("workload child failed: %s", why);

    /* recovery must need the log: at least one log holds records */
    char wals[8][PATH_LEN];
    size_t n_wal = find_db_files(dir, "wal", ".wal", wals, 8);
    ASSERT_EQ(n_wal, P_N);
    int nonempty = 0;
    for (size_t k = 0; k < n_wal; k++)
        nonempty += file_size(wals[k]) > 32;
    if (nonempty == 0)
        FAILF("no log holds records after the crash; the test would not exercise replay");

    pstate st;
    memset(&st, 0, sizeof st);
    akidb *rdb = open_ok(ref, NULL);
    p_workload(rdb, &st, 99);
    float v[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    uint64_t id, ids[1];
    ASSERT_OK(akidb_insert(rdb, "l2", 1, v, NULL, NULL, &id));
    ids[0] = id;
    pstate_add(&st, 0, ids, NULL, 1);
    psnap want, got;
    p_snapshot(rdb, &st, &want);
    ASSERT_OK(akidb_close(rdb));

    akidb *db = open_ok(dir, &o);
    p_snapshot(db, &st, &got);
    p_compare(&want, &got, &st, ckpt_bytes ? "checkpoints + replay" : "replay");
    p_check_new_ids(db, &st);
    ASSERT_OK(akidb_close(db));
    p_snapshot_free(&got, &st);
    p_snapshot_free(&want, &st);
    pstate_free(&st);
}

TEST(durability_persist_wal_replay)
{
    persist_after_crash(0);
}

TEST(durability_persist_checkpoints_then_replay)
{
    persist_after_crash(4096);
}

TEST(durability_persist_drop)
{
    char dir[PATH_LEN];
    db_path(dir, "db");
    akidb *db = open_ok(dir, NULL);
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 4, AKIDB_METRIC_L2);
    ASSERT_OK(akidb_collection_create(db, "a", &cfg));
    ASSERT_OK(akidb_collection_create(db, "b", &cfg));
    float v[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    const char *ext[2] = { "x", "y" };
    ASSERT_OK(akidb_insert(db, "a", 2, v, ext, NULL, NULL));
    ASSERT_OK(akidb_insert(db, "b", 2, v, ext, NULL, NULL));
    ASSERT_OK(akidb_checkpoint(db, NULL));
    ASSERT_OK(akidb_insert(db, "a", 1, v, NULL, NULL, NULL));
    char files[8][PATH_LEN];
    ASSERT_EQ(find_db_files(dir, "wal", ".wal", files, 8), 2);
    ASSERT_OK(akidb_collection_drop(db, "a"));
    ASSERT_EQ(find_db_files(dir, "wal", ".wal", files, 8), 1);
    ASSERT_EQ(find_db_files(dir, "ckpt", ".ckpt", files, 8), 1);
    ASSERT_OK(akidb_close(db));

    db = open_ok(dir, NULL);
    uint64_t n = 0;
    ASSERT_RC(akidb_collection_count(db, "a", &n), AKIDB_NOTFOUND);
    ASSERT_OK(akidb_collection_count(db, "b", &n));
    ASSERT_EQ(n, 2);
    ASSERT_OK(akidb_collection_create(db, "a", &cfg));
    ASSERT_OK(akidb_collection_count(db, "a", &n));
    ASSERT_EQ(n, 0);
    uint64_t id;
    ASSERT_RC(akidb_lookup(db, "a", "x", &id), AKIDB_NOTFOUND);
    ASSERT_OK(akidb_insert(db, "a", 1, v + 4, ext, NULL, &id));
    ASSERT_OK(akidb_close(db));
    db = open_ok(dir, NULL);
    ASSERT_OK(akidb_collection_count(db, "a", &n));
    ASSERT_EQ(n, 1);
    float back[4];
    ASSERT_OK(akidb_get(db, "a", id, back, NULL));
    ASSERT(memcmp(back, v + 4, sizeof back) == 0);
    ASSERT_OK(akidb_close(db));

    /* a crash inside a drop, after the catalog forgot the collection and
     * before its files were deleted: put a dropped collection's files back.
     * A normal state after a crash, so the open must succeed and the
     * collection stay dropped. */
    {
        akidb_collection_config c3;
        akidb_collection_config_init(&c3, 4, AKIDB_METRIC_L2);
        db = open_ok(dir, NULL);
        ASSERT_OK(akidb_collection_create(db, "doomed", &c3));
        ASSERT_OK(akidb_insert(db, "doomed", 2, v, ext, NULL, NULL));
        ASSERT_OK(akidb_checkpoint(db, "doomed"));
        ASSERT_OK(akidb_insert(db, "doomed", 1, v, NULL, NULL, NULL));
        ASSERT_OK(akidb_close(db));
        char before[16][PATH_LEN], saved[PATH_LEN];
        size_t n_before = find_db_files(dir, "wal", ".wal", before, 16);
        pathf(saved, "%s/saved", akt_dir);
        copy_tree(dir, saved);
        db = open_ok(dir, NULL);
        ASSERT_OK(akidb_collection_drop(db, "doomed"));
        ASSERT_OK(akidb_close(db));
        char after[16][PATH_LEN];
        ASSERT_EQ(find_db_files(dir, "wal", ".wal", after, 16), n_before - 1);
        /* restore every file the drop deleted */
        for (int sub = 0; sub < 2; sub++) {
            char old[16][PATH_LEN];
            size_t nf = find_db_files(saved, sub ? "ckpt" : "wal", sub ? ".ckpt" : ".wal",
                                      old, 16);
            for (size_t k = 0; k < nf; k++) {
                char dst[PATH_LEN];
                pathf(dst, "%s/%s/%s", dir, sub ? "ckpt" : "wal", strrchr(old[k], '/') + 1);
                if (file_size(dst) < 0)
                    copy_file(old[k], dst, 0644);
            }
        }
        ASSERT_EQ(find_db_files(dir, "wal", ".wal", after, 16), n_before);
        db = NULL;
        int rc = akidb_open(dir, NULL, &db);
        if (rc != AKIDB_OK)
            FAILF("files of a dropped collection (a crash inside akidb_collection_drop) make "
                  "akidb_open fail: rc %d: %s", rc, akidb_errmsg(NULL));
        ASSERT_RC(akidb_collection_count(db, "doomed", &n), AKIDB_NOTFOUND);
        ASSERT_OK(akidb_collection_count(db, "a", &n));
        ASSERT_EQ(n, 1);
        ASSERT_OK(akidb_collection_create(db, "doomed", &c3));
        ASSERT_OK(akidb_collection_count(db, "doomed", &n));
        ASSERT_EQ(n, 0);
        ASSERT_OK(akidb_close(db));
        db = open_ok(dir, NULL);
        ASSERT_OK(akidb_collection_count(db, "doomed", &n));
        ASSERT_EQ(n, 0);
        ASSERT_OK(akidb_collection_drop(db, "doomed"));
        ASSERT_OK(akidb_close(db));
        remove_tree(saved);
    }

    /* drop, re-create with another dim, and create: all durable without close */
    pid_t pid = akt_fork_child();
    if (pid == 0) {
        akidb *cdb = NULL;
        if (akidb_open(dir, NULL, &cdb) != AKIDB_OK)
            _exit(3);
        akidb_collection_config c8;
        akidb_collection_config_init(&c8, 8, AKIDB_METRIC_DOT);
        ASSERT_OK(akidb_collection_drop(cdb, "a"));
        ASSERT_OK(akidb_collection_create(cdb, "a", &c8));
        ASSERT_OK(akidb_insert(cdb, "a", 1, v, ext + 1, NULL, NULL));
        ASSERT_OK(akidb_collection_drop(cdb, "b"));
        ASSERT_OK(akidb_collection_create(cdb, "fresh", &cfg));
        _exit(0);
    }
    int st = akt_wait_child(pid, 30, "drop child");
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    db = open_ok(dir, NULL);
    akidb_collection_config got;
    got.version = AKIDB_COLLECTION_CONFIG_VERSION;
    ASSERT_OK(akidb_collection_info(db, "a", &got));
    ASSERT_EQ(got.dim, 8);
    ASSERT_EQ(got.metric, AKIDB_METRIC_DOT);
    ASSERT_OK(akidb_collection_count(db, "a", &n));
    ASSERT_EQ(n, 1);
    ASSERT_OK(akidb_lookup(db, "a", "y", &id));
    ASSERT_RC(akidb_lookup(db, "a", "x", &id), AKIDB_NOTFOUND);
    ASSERT_RC(akidb_collection_count(db, "b", &n), AKIDB_NOTFOUND);
    ASSERT_OK(akidb_collection_count(db, "fresh", &n));
    ASSERT_EQ(n, 0);
    ASSERT_OK(akidb_close(db));
    g_ctx[0] = '\0';
}

/* ---- 2. the crash harness ------------------------------------------------- */

#define CRASH_GROUP 8   /* iterations sharing one database directory */

/* Verify after a crash in a separate process (so the log's state, torn
 * tail included, is sometimes carried into the next writer instead of
 * being checkpointed away by a close).  It reports what became of the
 * in-flight op, and possibly one more acknowledged batch, via the pipe. */
typedef struct vreply {
    int64_t truncations;
    uint32_t n_out;
    outcome out[16];
    uint32_t extra_batch, extra_n;
    uint64_t extra_ids[CMAX];
} vreply;

typedef struct crash_stats {
    uint64_t acks;
    int torn;        /* kills after which the reopen cut a torn log tail */
    int mid_ckpt;    /* kills that left a temporary checkpoint file behind */
    int inflight_applied, inflight_lost;
} crash_stats;

static void crash_iteration(const char *dir, const akidb_options *o, model *m, uint64_t seed,
                            crash_stats *cs)
{
    uint64_t rng = seed;
    writer_cfg wc;
    memset(&wc, 0, sizeof wc);
    wc.dir = dir;
    wc.opts = *o;
    wc.seed = splitmix64(&rng);
    wc.max_ops = 10 + (int)rand_below(&rng, 70);
    wc.allow_ckpt = 1;
    wc.fault_after = -1;
    wc.slow = (int)rand_below(&rng, 2);
    int kill_after = (int)rand_below(&rng, (uint32_t)wc.max_ops + 6);
    uint32_t delay_us = rand_below(&rng, 3) == 0 ? 0 : rand_below(&rng, 3000);

    int fds[2];
    ASSERT(pipe(fds) == 0);
    pid_t pid = akt_fork_child();
    if (pid == 0) {
        close(fds[0]);
        writer_child(&wc, m, fds[1]);
    }
    close(fds[1]);
    acks a;
    memset(&a, 0, sizeof a);
    msg mm;
    while ((int)a.n_acks < kill_after && !a.done && read_full(fds[0], &mm, sizeof mm, 30))
        acks_feed(&a, m, &mm, 1);
    if (delay_us)
        sleep_us(delay_us);
    kill(pid, SIGKILL);
    int st = akt_wait_child(pid, 30, "writer");
    while (read_full(fds[0], &mm, sizeof mm, 30))
        acks_feed(&a, m, &mm, 1);
    close(fds[0]);
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
        char why[128];
        describe_status(st, why, sizeof why);
        FAILF("writer failed before it was killed: %s", why);
    }
    if (a.n_inflight > 1)
        FAILF("single writer had %zu operations in flight", a.n_inflight);
    cs->acks += a.n_acks;
    char tmps[4][PATH_LEN];
    if (find_db_files(dir, "ckpt", ".tmp", tmps, 4) > 0)
        cs->mid_ckpt++;

    /* verify in a child */
    int do_extra = (int)rand_below(&rng, 2), do_close = (int)rand_below(&rng, 2);
    ASSERT(pipe(fds) == 0);
    pid = akt_fork_child();
    if (pid == 0) {
        close(fds[0]);
        logcap lc;
        logcap_init(&lc);
        akidb_options vo = *o;
        vo.log_fn = log_cb;
        vo.log_ctx = &lc;
        akidb *db = open_ok(dir, &vo);
        vreply r;
        memset(&r, 0, sizeof r);
        for (size_t k = 0; k < a.n_inflight; k++) {
            resolve_op(db, m, &a.inflight[k], 1, &r.out[r.n_out]);
            if (r.out[r.n_out].applied)
                model_apply(m, &a.inflight[k], r.out[r.n_out].ids, 1);
            r.n_out++;
        }
        verify_model(db, m, &lc, seed);
        r.truncations = truncations(db);
        if (do_extra) {
            msg op;
            op_insert(&op, m->next_batch, 1 + (uint32_t)(seed % 4));
            ASSERT_OK(run_op(db, &op, r.extra_ids));
            r.extra_batch = op.it[0].batch;
            r.extra_n = op.n;
            model_apply(m, &op, r.extra_ids, 1);
            verify_model(db, m, &lc, seed + 1);
        }
        write_full(fds[1], &r, sizeof r);
        if (do_close)
            ASSERT_OK(akidb_close(db));
        _exit(0);
    }
    close(fds[1]);
    st = akt_wait_child(pid, 60, "verifier");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char why[128];
        describe_status(st, why, sizeof why);
        FAILF("verification after the crash failed (%s); its messages are above", why);
    }
    vreply r;
    if (!read_full(fds[0], &r, sizeof r, 10))
        FAILF("verifier sent no reply");
    close(fds[0]);
    ASSERT_EQ(r.n_out, a.n_inflight);
    for (uint32_t k = 0; k < r.n_out; k++) {
        if (a.inflight[k].op == OP_CKPT)
            continue;
        if (r.out[k].applied)
            model_apply(m, &a.inflight[k], r.out[k].ids, 1);
        if (r.out[k].applied)
            cs->inflight_applied++;
        else
            cs->inflight_lost++;
    }
    cs->torn += r.truncations > 0;
    if (r.extra_n) {
        msg op;
        op_insert(&op, r.extra_batch, r.extra_n);
        model_apply(m, &op, r.extra_ids, 1);
    }
}

static int crash_iters(void)
{
    const char *s = getenv("AKT_CRASH_ITERS");
    return s && atoi(s) > 0 ? atoi(s) : 50;
}

/* Asked by the runner before the test starts (the runner enforces it and
 * applies AKT_TIMEOUT_SCALE): many iterations (make crash) need more. */
static int crash_timeout(void)
{
    int iters = crash_iters();
    return iters > 50 ? 60 + iters * 3 : 150;
}

TEST_TIMEOUT_FN(durability_crash, crash_timeout)
{
    int iters = crash_iters();
    uint64_t base = 20240601;
    const char *s = getenv("AKT_CRASH_SEED");
    if (s && *s)
        base = strtoull(s, NULL, 0);
    static const uint64_t ckpt_choices[] = { 0, 4096, 512, 16384, 1 };
    char dir[PATH_LEN] = "";
    akidb_options o;
    model m;
    model_init(&m);
    crash_stats cs;
    memset(&cs, 0, sizeof cs);
    double t0 = now_s();
    for (int it = 0; it < iters; it++) {
        int group_start = it - it % CRASH_GROUP;
        if (it % CRASH_GROUP == 0) {
            if (it > 0) {
                ctx_set("durability_crash: final check of the group starting at iteration "
                        "%d (AKT_CRASH_SEED=%llu)", group_start - CRASH_GROUP,
                        (unsigned long long)base);
                reopen_and_verify(dir, &o, &m, NULL, 1, base, 0);
                remove_tree(dir);
            }
            uint64_t g = mix_seed(base, (uint64_t)it + 1000000);
            pathf(dir, "%s/crash%d", akt_dir, it / CRASH_GROUP);
            make_opts(&o, AKIDB_SYNC_ALWAYS, ckpt_choices[g % 5], NULL);
            model_free(&m);
            model_init(&m);
            create_crash_coll(dir);
        }
        uint64_t seed = mix_seed(base, (uint64_t)it);
        ctx_set("durability_crash iteration %d of %d, seed 0x%llx (reproduce with "
                "AKT_CRASH_SEED=%llu AKT_CRASH_ITERS=%d; the database was shared since "
                "iteration %d), checkpoint_bytes %llu, %llu docs in the model",
                it, iters, (unsigned long long)seed, (unsigned long long)base, it + 1,
                group_start, (unsigned long long)o.checkpoint_bytes,
                (unsigned long long)m.n_docs);
        crash_iteration(dir, &o, &m, seed, &cs);
    }
    ctx_set("durability_crash: final check (AKT_CRASH_SEED=%llu)", (unsigned long long)base);
    reopen_and_verify(dir, &o, &m, NULL, 1, base, 0);
    model_free(&m);
    fprintf(stderr, "  durability_crash: %d kills, %llu acknowledged writes checked; "
            "unacknowledged writes found applied %d, absent %d; %d torn tails cut; %d kills "
            "inside a checkpoint; %.1f s\n", iters, (unsigned long long)cs.acks,
            cs.inflight_applied, cs.inflight_lost, cs.torn, cs.mid_ckpt, now_s() - t0);
    if (cs.acks < (uint64_t)iters)
        FAILF("only %llu acknowledged writes in %d iterations: the kills come too early to "
              "test anything", (unsigned long long)cs.acks, iters);
    g_ctx[0] = '\0';
}

/* ---- 3. crashes and errors at the fault points ---------------------------- */

typedef struct fpoint {
    akidb__fault_point point;
    const char *name;
    int ckpt;   /* reached by checkpoints */
} fpoint;

static const fpoint FPOINTS[] = {
    { AKIDB__FAULT_WAL_WRITE, "WAL_WRITE", 0 },
    { AKIDB__FAULT_WAL_MID_RECORD, "WAL_MID_RECORD", 0 },
    { AKIDB__FAULT_WAL_BEFORE_SYNC, "WAL_BEFORE_SYNC", 0 },
    { AKIDB__FAULT_CKPT_WRITE, "CKPT_WRITE", 1 },
    { AKIDB__FAULT_CKPT_BEFORE_RENAME, "CKPT_BEFORE_RENAME", 1 },
    { AKIDB__FAULT_CKPT_AFTER_RENAME, "CKPT_AFTER_RENAME", 1 },
};
#define N_FPOINTS (sizeof FPOINTS / sizeof FPOINTS[0])

TEST_TIMEOUT(durability_fault_crash_points, 120)
{
    for (size_t p = 0; p < N_FPOINTS; p++) {
        for (int round = 0; round < 5; round++) {
            uint64_t seed = mix_seed(0xFA017, p * 100 + (uint64_t)round);
            uint64_t rng = seed;
            char dir[PATH_LEN];
            pathf(dir, "%s/fp-%zu-%d", akt_dir, p, round);
            /* checkpoint points: explicit checkpoints (even rounds) or automatic
             * ones (odd rounds, a small checkpoint_bytes) */
            int auto_ckpt = FPOINTS[p].ckpt && (round & 1);
            ctx_set("durability_fault_crash_points: %s round %d seed 0x%llx (%s checkpoints)",
                    FPOINTS[p].name, round, (unsigned long long)seed,
                    auto_ckpt ? "automatic" : "explicit");
            create_crash_coll(dir);
            model m;
            model_init(&m);
            writer_cfg wc;
            memset(&wc, 0, sizeof wc);
            wc.dir = dir;
            make_opts(&wc.opts, AKIDB_SYNC_ALWAYS, auto_ckpt ? 2048 : 0, NULL);
            wc.seed = splitmix64(&rng);
            wc.max_ops = 200;
            wc.ckpt_every = FPOINTS[p].ckpt && !auto_ckpt ? 3 : 0;
            wc.fault_after = 2 + (int)rand_below(&rng, 12);
            wc.fault.point = FPOINTS[p].point;
            wc.fault.fire_at = 1 + (int)rand_below(&rng, 3);
            wc.fault.exit_code = 42;

            int fds[2];
            ASSERT(pipe(fds) == 0);
            pid_t pid = akt_fork_child();
            if (pid == 0) {
                close(fds[0]);
                writer_child(&wc, &m, fds[1]);
            }
            close(fds[1]);
            acks a;
            memset(&a, 0, sizeof a);
            msg mm;
            while (read_full(fds[0], &mm, sizeof mm, 30))
                acks_feed(&a, &m, &mm, 1);
            close(fds[0]);
            int st = akt_wait_child(pid, 30, "writer");
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 42) {
                char why[128];
                describe_status(st, why, sizeof why);
                FAILF("the writer did not die at fault point %s (hit %d, hook installed after "
                      "%d ops): %s%s", FPOINTS[p].name, wc.fault.fire_at, wc.fault_after, why,
                      a.done ? "; it finished all its ops: the point is never reached" : "");
            }
            ASSERT_GE(a.n_acks, (size_t)wc.fault_after);
            reopen_and_verify(dir, &wc.opts, &m, &a, 1, seed,
                              FPOINTS[p].point == AKIDB__FAULT_WAL_MID_RECORD);
            model_free(&m);
            remove_tree(dir);
        }
    }
    g_ctx[0] = '\0';
}

/* In-process: the hook returns an errno at a log point during one write;
 * the write fails with AKIDB_IOERR and changes nothing, the same write
 * then succeeds, and a reopen shows exactly the successful writes. */
TEST(durability_fault_write_errors)
{
    static const int errs[] = { EIO, ENOSPC };
    int n_case = 0;
    for (size_t p = 0; p < 3; p++) {
        for (int e = 0; e < 2; e++) {
            for (uint32_t kind = OP_INSERT; kind <= OP_DELETE; kind++) {
                char dir[PATH_LEN];
                pathf(dir, "%s/fe-%d", akt_dir, n_case++);
                ctx_set("durability_fault_write_errors: %s returns %s during %s",
                        FPOINTS[p].name, strerror(errs[e]), op_name(kind));
                create_crash_coll(dir);
                akidb_options o;
                make_opts(&o, AKIDB_SYNC_ALWAYS, 0, NULL);
                akidb *db = open_ok(dir, &o);
                model m;
                model_init(&m);
                uint64_t rng = 5 + (uint64_t)n_case;
                uint64_t ids[CMAX];
                msg op;
                for (int k = 0; k < 5; k++) {
                    op_insert(&op, m.next_batch, 4 + (uint32_t)k);
                    ASSERT_OK(run_op(db, &op, ids));
                    model_apply(&m, &op, ids, 1);
                }
                memset(&op, 0, sizeof op);
                if (kind == OP_INSERT) {
                    op_insert(&op, m.next_batch, 6);
                } else if (kind == OP_UPSERT) {
                    op.op = OP_UPSERT;
                    for (uint32_t i = 0; i < 3; i++) {
                        op.it[i].batch = 1;
                        op.it[i].i = i;
                        op.it[i].ver = 1;
                    }
                    op.it[3].batch = m.next_batch;  /* plus a new document */
                    op.n = 4;
                } else {
                    const mdoc *d = pick_live(&m, &rng);
                    op.op = OP_DELETE;
                    op.n = 1;
                    op.it[0].batch = d->batch;
                    op.it[0].i = d->i;
                    op.it[0].id = d->id;
                }
                fault_state f = { FPOINTS[p].point, 0, 1, 1, errs[e], 0 };
                akidb__set_fault_hook(db, fault_hook, &f);
                int rc = run_op(db, &op, ids);
                akidb__set_fault_hook(db, NULL, NULL);
                if (f.hits == 0)
                    FAILF("%s of %u documents never reached %s", op_name(kind), op.n,
                          FPOINTS[p].name);
                ASSERT_RC(rc, AKIDB_IOERR);
                verify_model(db, &m, NULL, 1);          /* nothing applied */
                ASSERT_OK(run_op(db, &op, ids));        /* the same write now works */
                model_apply(&m, &op, ids, 1);
                op_insert(&op, m.next_batch, 2);
                ASSERT_OK(run_op(db, &op, ids));
                model_apply(&m, &op, ids, 1);
                verify_model(db, &m, NULL, 2);
                ASSERT_OK(akidb_close(db));
                db = open_ok(dir, &o);
                verify_model(db, &m, NULL, 3);
                ASSERT_OK(akidb_close(db));

                /* the same failure, then a crash (no close): the log must not
                 * hold the failed write, nor garbage before later records */
                pid_t pid = akt_fork_child();
                if (pid == 0) {
                    akidb *cdb = open_ok(dir, &o);
                    msg op2;
                    op_insert(&op2, m.next_batch, 5);
                    fault_state f2 = { FPOINTS[p].point, 0, 1, 1, errs[e], 0 };
                    akidb__set_fault_hook(cdb, fault_hook, &f2);
                    uint64_t ids2[CMAX];
                    ASSERT_RC(run_op(cdb, &op2, ids2), AKIDB_IOERR);
                    akidb__set_fault_hook(cdb, NULL, NULL);
                    op_insert(&op2, m.next_batch + 1, 3);
                    ASSERT_OK(run_op(cdb, &op2, ids2));
                    _exit(0);  /* no close: the parent finds the ids in the database */
                }
                int st = akt_wait_child(pid, 30, "failing writer");
                ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
                logcap lc;
                logcap_init(&lc);
                akidb_options lo = o;
                lo.log_fn = log_cb;
                lo.log_ctx = &lc;
                db = open_ok(dir, &lo);
                char ext[32];
                uint64_t id;
                for (uint32_t i = 0; i < 5; i++) {
                    gen_ext(ext, sizeof ext, m.next_batch, i);
                    if (akidb_lookup(db, CCOLL, ext, &id) != AKIDB_NOTFOUND)
                        FAILF("the failed insert's %s is present after a crash", ext);
                }
                /* the later batch is there: take its ids from the database */
                msg later;
                op_insert(&later, m.next_batch + 1, 3);
                outcome oc;
                resolve_op(db, &m, &later, 1, &oc);
                if (!oc.applied)
                    FAILF("the acknowledged insert after a failed one is lost after a crash");
                model_apply(&m, &later, oc.ids, 1);
                verify_model(db, &m, &lc, 4);
                ASSERT_EQ(truncations(db), 0);  /* the failed write was cut back at once */
                ASSERT_OK(akidb_close(db));
                model_free(&m);
                remove_tree(dir);
            }
        }
    }
    g_ctx[0] = '\0';
}

/* In-process: a checkpoint that fails at each checkpoint point returns
 * AKIDB_IOERR and loses nothing; writes go on; a close whose checkpoint
 * fails returns AKIDB_IOERR and keeps the log. */
TEST(durability_fault_checkpoint_errors)
{
    static const int errs[] = { EIO, ENOSPC };
    int n_case = 0;
    for (size_t p = 3; p < N_FPOINTS; p++) {
        for (int e = 0; e < 2; e++) {
            char dir[PATH_LEN];
            pathf(dir, "%s/ce-%d", akt_dir, n_case++);
            ctx_set("durability_fault_checkpoint_errors: %s returns %s", FPOINTS[p].name,
                    strerror(errs[e]));
            create_crash_coll(dir);
            akidb_options o;
            make_opts(&o, AKIDB_SYNC_ALWAYS, 0, NULL);
            akidb *db = open_ok(dir, &o);
            model m;
            model_init(&m);
            uint64_t rng = 11 + (uint64_t)n_case;
            uint64_t ids[CMAX];
            msg op;
            for (int k = 0; k < 30; k++) {
                make_op(&m, &rng, 0, &op);
                ASSERT_OK(run_op(db, &op, ids));
                model_apply(&m, &op, ids, 1);
                if (k == 10)
                    ASSERT_OK(akidb_checkpoint(db, CCOLL));  /* an older checkpoint exists */
            }
            fault_state f = { FPOINTS[p].point, 0, 1, 1, errs[e], 0 };
            akidb__set_fault_hook(db, fault_hook, &f);
            int rc = akidb_checkpoint(db, CCOLL);
            akidb__set_fault_hook(db, NULL, NULL);
            if (f.hits == 0)
                FAILF("akidb_checkpoint never reached %s", FPOINTS[p].name);
            ASSERT_RC(rc, AKIDB_IOERR);
            verify_model(db, &m, NULL, 1);
            for (int k = 0; k < 10; k++) {
                make_op(&m, &rng, 0, &op);
                ASSERT_OK(run_op(db, &op, ids));
                model_apply(&m, &op, ids, 1);
            }
            verify_model(db, &m, NULL, 2);
            ASSERT_OK(akidb_close(db));
            db = open_ok(dir, &o);
            verify_model(db, &m, NULL, 3);
            ASSERT_OK(akidb_checkpoint(db, NULL));
            for (int k = 0; k < 10; k++) {
                make_op(&m, &rng, 0, &op);
                ASSERT_OK(run_op(db, &op, ids));
                model_apply(&m, &op, ids, 1);
            }
            /* the close's checkpoint fails: IOERR, the log is kept */
            fault_state f2 = { FPOINTS[p].point, 0, 1, 0, errs[e], 0 };
            akidb__set_fault_hook(db, fault_hook, &f2);
            ASSERT_RC(akidb_close(db), AKIDB_IOERR);
            ASSERT_GE(f2.hits, 1);
            db = open_ok(dir, &o);
            verify_model(db, &m, NULL, 4);
            ASSERT_OK(akidb_close(db));
            /* a leftover temporary checkpoint file does not disturb anything */
            db = open_ok(dir, &o);
            verify_model(db, &m, NULL, 5);
            ASSERT_OK(akidb_close(db));
            model_free(&m);
            remove_tree(dir);
        }
    }
    g_ctx[0] = '\0';
}

/* Automatic checkpoints that keep failing: every write either succeeds
 * (and is kept) or fails with AKIDB_IOERR (and is absent). */
TEST(durability_fault_auto_checkpoint_errors)
{
    char dir[PATH_LEN];
    db_path(dir, "db");
    create_crash_coll(dir);
    akidb_options o;
    make_opts(&o, AKIDB_SYNC_ALWAYS, 2048, NULL);
    akidb *db = open_ok(dir, &o);
    model m;
    model_init(&m);
    fault_state f = { AKIDB__FAULT_CKPT_WRITE, 0, 1, 0, EIO, 0 };
    akidb__set_fault_hook(db, fault_hook, &f);
    uint64_t rng = 3;
    int n_ok = 0, n_err = 0;
    for (int k = 0; k < 40; k++) {
        msg op;
        uint64_t ids[CMAX];
        make_op(&m, &rng, 0, &op);
        int rc = run_op(db, &op, ids);
        if (rc == AKIDB_OK) {
            model_apply(&m, &op, ids, 1);
            n_ok++;
        } else {
            ASSERT_RC(rc, AKIDB_IOERR);
            n_err++;
        }
        verify_model(db, &m, NULL, (uint64_t)k);
    }
    if (f.hits == 0)
        FAILF("40 writes past checkpoint_bytes 2048 never attempted a checkpoint");
    fprintf(stderr, "  %d writes succeeded, %d failed, %d checkpoint attempts failed\n", n_ok,
            n_err, f.hits);
    akidb__set_fault_hook(db, NULL, NULL);
    msg op;
    uint64_t ids[CMAX];
    op_insert(&op, m.next_batch, 5);
    ASSERT_OK(run_op(db, &op, ids));
    model_apply(&m, &op, ids, 1);
    ASSERT_OK(akidb_close(db));
    db = open_ok(dir, &o);
    verify_model(db, &m, NULL, 99);
    ASSERT_OK(akidb_close(db));
    model_free(&m);
}

/* INTERVAL: a failed shared fsync fails the call (its change may already
 * be visible) and poisons the collection until reopen. */
TEST(durability_interval_sync_error)
{
    char dir[PATH_LEN];
    db_path(dir, "db");
    create_crash_coll(dir);
    akidb_options o;
    make_opts(&o, AKIDB_SYNC_INTERVAL, 0, NULL);
    akidb *db = open_ok(dir, &o);
    model m;
    model_init(&m);
    msg op;
    uint64_t ids[CMAX];
    for (int k = 0; k < 4; k++) {
        op_insert(&op, m.next_batch, 5);
        ASSERT_OK(run_op(db, &op, ids));
        model_apply(&m, &op, ids, 1);
    }
    fault_state f = { AKIDB__FAULT_WAL_BEFORE_SYNC, 0, 1, 1, EIO, 0 };
    akidb__set_fault_hook(db, fault_hook, &f);
    msg failed;
    op_insert(&failed, m.next_batch, 5);
    int rc = run_op(db, &failed, ids);
    akidb__set_fault_hook(db, NULL, NULL);
    if (f.hits == 0)
        FAILF("an INTERVAL-mode insert never reached WAL_BEFORE_SYNC");
    ASSERT_RC(rc, AKIDB_IOERR);
    msg later;
    op_insert(&later, m.next_batch + 1, 2);
    ASSERT_RC(run_op(db, &later, ids), AKIDB_IOERR);  /* poisoned until reopen */
    const mdoc *d = pick_live(&m, &(uint64_t){ 9 });
    ASSERT_RC(akidb_delete(db, CCOLL, d->id), AKIDB_IOERR);
    uint32_t nh = 0;
    akidb_hit hits[4];
    float q[CDIM] = { 0 };
    ASSERT_OK(akidb_search(db, CCOLL, q, 4, NULL, hits, &nh));  /* reads still work */
    rc = akidb_close(db);
    if (rc != AKIDB_OK && rc != AKIDB_IOERR)
        FAILF("close of a poisoned handle: rc %d (%s)", rc, akidb_errmsg(NULL));
    acks a;
    memset(&a, 0, sizeof a);
    a.inflight[0] = failed;
    a.n_inflight = 1;
    reopen_and_verify(dir, &o, &m, &a, 1, 7, 0);
    model_free(&m);
}

/* ---- 4. damaged files -------------------------------------------------------- */

#define PB_N 20u   /* batches in the pristine database */

static uint32_t pb_size(uint32_t b)
{
    return b == PB_N - 1 ? 2 : 3 + b % 5;
}

/* 1 when batch b is entirely present and exact, 0 when entirely absent;
 * anything else fails. */
static int batch_state(akidb *db, uint32_t b, uint32_t n)
{
    uint32_t n_present = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id;
        float vec[CDIM];
        char *meta;
        if (observe(db, b, i, &id, vec, &meta)) {
            if (!content_is(vec, meta, b, i, 0))
                FAILF("b%u-%u is present with wrong content (metadata %s)", b, i,
                      meta ? meta : "(null)");
            n_present++;
        }
        akidb_free(meta);
    }
    if (n_present != 0 && n_present != n)
        FAILF("batch %u is half present (%u of %u documents)", b, n_present, n);
    return n_present == n;
}

/* Batches lo..hi-1 are all present. */
static void expect_batches(akidb *db, uint32_t lo, uint32_t hi, const char *what)
{
    for (uint32_t b = lo; b < hi; b++)
        if (!batch_state(db, b, pb_size(b)))
            FAILF("%s: acknowledged batch %u is missing", what, b);
}

/* The database takes an insert and finds it. */
static void check_usable(akidb *db, uint32_t batch)
{
    msg op;
    op_insert(&op, batch, 3);
    uint64_t ids[CMAX];
    ASSERT_OK(run_op(db, &op, ids));
    float q[CDIM];
    gen_vec(batch, 1, 0, CDIM, q);
    akidb_search_params p;
    akidb_search_params_init(&p);
    p.exact = 1;
    akidb_hit hits[3];
    uint32_t nh = 0;
    ASSERT_OK(akidb_search(db, CCOLL, q, 3, &p, hits, &nh));
    ASSERT(nh >= 1);
    ASSERT_EQ(hits[0].id, ids[1]);
    p.exact = 0;
    ASSERT_OK(akidb_search(db, CCOLL, q, 3, &p, hits, &nh));
    ASSERT(nh >= 1);
}

/* Pristine databases for the damage tests, in akt_dir:
 *   "open":   batches 0..9 in a checkpoint, 10..19 only in the log (the
 *             writer died without closing); the last log record is batch 19
 *             and spans [*last_start, *wal_end) of the log file (a sync
 *             marker follows it).
 *   "closed": the same after a clean open + close: all in the checkpoint. */
static void build_pristine(char *open_dir, char *closed_dir, long long *last_start,
                           long long *wal_end)
{
    db_path(open_dir, "pristine-open");
    db_path(closed_dir, "pristine-closed");
    int fds[2];
    ASSERT(pipe(fds) == 0);
    pid_t pid = akt_fork_child();
    if (pid == 0) {
        close(fds[0]);
        create_crash_coll(open_dir);
        akidb *db = open_ok(open_dir, NULL);
        char wal[PATH_LEN];
        the_db_file(open_dir, "wal", ".wal", wal);
        for (uint32_t b = 0; b < PB_N; b++) {
            msg op;
            uint64_t ids[CMAX];
            op_insert(&op, b, pb_size(b));
            if (b == PB_N - 1) {
                long long s0 = log_data_end(wal);
                write_full(fds[1], &s0, sizeof s0);
            }
            ASSERT_OK(run_op(db, &op, ids));
            if (b == PB_N / 2 - 1)
                ASSERT_OK(akidb_checkpoint(db, CCOLL));
        }
        long long s1 = log_data_end(wal);
        write_full(fds[1], &s1, sizeof s1);
        _exit(0);
    }
    close(fds[1]);
    int st = akt_wait_child(pid, 30, "pristine builder");
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ASSERT(read_full(fds[0], last_start, sizeof *last_start, 5));
    ASSERT(read_full(fds[0], wal_end, sizeof *wal_end, 5));
    close(fds[0]);
    char wal[PATH_LEN];
    the_db_file(open_dir, "wal", ".wal", wal);
    ASSERT_EQ(log_data_end(wal), *wal_end);
    ASSERT_EQ(file_size(wal), *wal_end + 24);   /* the marker after the last record */
    ASSERT(*last_start > 32 && *last_start < *wal_end);
    char ck[PATH_LEN];
    the_db_file(open_dir, "ckpt", ".ckpt", ck);

    /* the open pristine itself is sound */
    char tmp[PATH_LEN];
    db_path(tmp, "pristine-check");
    copy_tree(open_dir, tmp);
    akidb *db = open_ok(tmp, NULL);
    ASSERT_EQ(truncations(db), 0);
    expect_batches(db, 0, PB_N, "pristine");
    ASSERT_OK(akidb_close(db));
    remove_tree(tmp);

    copy_tree(open_dir, closed_dir);
    db = open_ok(closed_dir, NULL);
    ASSERT_OK(akidb_close(db));
    the_db_file(closed_dir, "wal", ".wal", wal);
    if (file_size(wal) != 32)
        FAILF("after a clean close the log %s is %lld bytes, expected just its 32-byte header",
              wal, file_size(wal));
}

/* Fresh copy of pristine into akt_dir/work; its files' paths. */
typedef struct work {
    char dir[PATH_LEN], wal[PATH_LEN], ckpt[PATH_LEN], catalog[PATH_LEN];
} work;

static void work_copy(work *w, const char *pristine)
{
    db_path(w->dir, "work");
    remove_tree(w->dir);
    copy_tree(pristine, w->dir);
    the_db_file(w->dir, "wal", ".wal", w->wal);
    the_db_file(w->dir, "ckpt", ".ckpt", w->ckpt);
    pathf(w->catalog, "%s/akidb.db", w->dir);
}

/* Open the damaged copy.  Returns the rc; on AKIDB_OK *db_out is the
 * handle, on AKIDB_CORRUPT the message must contain `names`; any other
 * rc fails. */
static int open_damaged(const work *w, const char *names, logcap *lc, akidb **db_out,
                        const char *what)
{
    akidb_options o;
    make_opts(&o, AKIDB_SYNC_ALWAYS, 0, lc);
    *db_out = NULL;
    int rc = akidb_open(w->dir, &o, db_out);
    if (rc == AKIDB_CORRUPT) {
        const char *em = akidb_errmsg(NULL);
        if (!strstr(em, names))
            FAILF("%s: AKIDB_CORRUPT, but the message \"%s\" does not name the file (%s)",
                  what, em, names);
        ASSERT(*db_out == NULL);
    } else if (rc != AKIDB_OK) {
        FAILF("%s: akidb_open rc %d (%s): %s; expected OK or AKIDB_CORRUPT", what, rc,
              akidb_errstr(rc), akidb_errmsg(NULL));
    }
    return rc;
}

/* Say which of the allowed outcomes a lenient damage case got. */
static void note_outcome(const char *what, int rc)
{
    fprintf(stderr, "  %s: %s%s%s\n", what, rc == AKIDB_OK ? "opened" : akidb_errstr(rc),
            rc == AKIDB_OK ? "" : ": ", rc == AKIDB_OK ? "" : akidb_errmsg(NULL));
}

/* After damage that is allowed to cost at most the last log record: OK
 * with batches 0..18 present and 19 present, or absent and reported. */
static void expect_at_most_tail_lost(akidb *db, const logcap *lc, const char *what,
                                     uint32_t usable_batch)
{
    expect_batches(db, 0, PB_N - 1, what);
    if (!batch_state(db, PB_N - 1, pb_size(PB_N - 1))) {
        if (truncations(db) < 1 || lc->n_warn_wal < 1)
            FAILF("%s: the last record was dropped without being reported (truncations %lld, "
                  "%d WARNs naming wal/)", what, (long long)truncations(db), lc->n_warn_wal);
    }
    uint64_t n = 0;
    ASSERT_OK(akidb_collection_count(db, CCOLL, &n));
    if (usable_batch)
        check_usable(db, usable_batch);
}

TEST_TIMEOUT(durability_corrupt_torn_tail, 120)
{
    char po[PATH_LEN], pc[PATH_LEN];
    long long s0, s1;
    build_pristine(po, pc, &s0, &s1);
    work w;
    /* cuts inside the last record: every byte of its first 48 (record
     * header and the start of the payload), then every 7th, then its
     * last 8 bytes: the record goes, nothing else */
    for (long long t = s0; t < s1; t += (t < s0 + 48 || t >= s1 - 8) ? 1 : 7) {
        ctx_set("durability_corrupt_torn_tail: log cut to %lld bytes (last record %lld..%lld)",
                t, s0, s1);
        work_copy(&w, po);
        truncate_to(w.wal, t);
        logcap lc;
        logcap_init(&lc);
        akidb_options o;
        make_opts(&o, AKIDB_SYNC_ALWAYS, 0, &lc);
        akidb *db = open_ok(w.dir, &o);
        expect_batches(db, 0, PB_N - 1, "torn tail");
        if (batch_state(db, PB_N - 1, pb_size(PB_N - 1)))
            FAILF("the torn last record (batch %u) is present", PB_N - 1);
        uint64_t n = 0;
        ASSERT_OK(akidb_collection_count(db, CCOLL, &n));
        uint64_t want = 0;
        for (uint32_t b = 0; b < PB_N - 1; b++)
            want += pb_size(b);
        ASSERT_EQ(n, want);
        if (t > s0) {
            if (truncations(db) < 1)
                FAILF("a torn tail was cut (or ignored) without counting "
                      "akidb_wal_truncations_total");
            if (lc.n_warn_wal < 1)
                FAILF("a torn tail was cut without a WARN naming the wal/ file (%d WARNs, "
                      "last \"%s\")", lc.n_warn, lc.last_warn);
            const char *base = strrchr(w.wal, '/') + 1;
            if (!strstr(lc.last_warn, base))
                FAILF("the WARN \"%s\" does not name the log file %s", lc.last_warn, base);
        }
        if ((t - s0) % 24 == 0 || t == s1 - 1) {
            /* the same batch can be written again, then survives a reopen */
            msg op;
            uint64_t ids[CMAX];
            op_insert(&op, PB_N - 1, pb_size(PB_N - 1));
            ASSERT_OK(run_op(db, &op, ids));
            check_usable(db, 500);
            ASSERT_OK(akidb_close(db));
            db = open_ok(w.dir, &o);
            expect_batches(db, 0, PB_N, "after re-inserting the torn batch and reopening");
            ASSERT_EQ(batch_state(db, 500, 3), 1);
        }
        ASSERT_OK(akidb_close(db));
    }
    /* a log cut inside its header */
    for (long long t = 0; t < 32; t += 5) {
        ctx_set("durability_corrupt_torn_tail: log cut to %lld bytes (inside the header)", t);
        work_copy(&w, po);
        truncate_to(w.wal, t);
        logcap lc;
        logcap_init(&lc);
        akidb *db;
        int rc = open_damaged(&w, "wal/", &lc, &db, "log header cut");
        if (t == 0 || t == 30)
            note_outcome(t ? "log cut to 30 bytes" : "log cut to 0 bytes", rc);
        if (rc == AKIDB_OK) {
            /* allowed only if reported; the checkpointed half must be there */
            expect_batches(db, 0, PB_N / 2, "log header cut");
            if (lc.n_warn_wal < 1 && truncations(db) < 1)
                FAILF("a log cut to %lld bytes lost acknowledged batches %u..%u silently", t,
                      PB_N / 2, PB_N - 1);
            check_usable(db, 600);
            ASSERT_OK(akidb_close(db));
        }
    }
    g_ctx[0] = '\0';
}

TEST_TIMEOUT(durability_corrupt_bit_flips, 120)
{
    char po[PATH_LEN], pc[PATH_LEN];
    long long s0, s1;
    build_pristine(po, pc, &s0, &s1);
    work w;
    uint64_t rng = 0xB17F11Bull;
    int n_ok = 0, n_corrupt = 0;

    /* the log: header, last record header, anywhere */
    for (int k = 0; k < 150; k++) {
        long long pos;
        if (k < 20)
            pos = k < 8 ? k * 4 : (long long)rand_below(&rng, 32);
        else if (k < 45)
            pos = s0 + (long long)rand_below(&rng, 24);
        else
            pos = 32 + (long long)rand_below(&rng, (uint32_t)(s1 - 32));
        int bit = (int)rand_below(&rng, 8);
        ctx_set("durability_corrupt_bit_flips: log byte %lld bit %d (records from 32, last "
                "record %lld..%lld)", pos, bit, s0, s1);
        work_copy(&w, po);
        flip_bit(w.wal, pos, bit);
        logcap lc;
        logcap_init(&lc);
        akidb *db;
        if (open_damaged(&w, "wal/", &lc, &db, "log bit flip") == AKIDB_OK) {
            n_ok++;
            expect_at_most_tail_lost(db, &lc, "log bit flip", k % 10 == 0 ? 700 : 0);
            ASSERT_OK(akidb_close(db));
        } else {
            n_corrupt++;
        }
    }
    fprintf(stderr, "  log flips: %d opened, %d AKIDB_CORRUPT\n", n_ok, n_corrupt);

    /* the checkpoint (closed pristine: it holds every batch) */
    n_ok = n_corrupt = 0;
    work_copy(&w, pc);
    long long ck_len = file_size(w.ckpt);
    ASSERT(ck_len > 64);
    for (int k = 0; k < 80; k++) {
        long long pos = k < 24 ? (long long)rand_below(&rng, 64)
                               : (long long)rand_below(&rng, (uint32_t)ck_len);
        int bit = (int)rand_below(&rng, 8);
        ctx_set("durability_corrupt_bit_flips: checkpoint byte %lld of %lld bit %d", pos, ck_len,
                bit);
        work_copy(&w, pc);
        flip_bit(w.ckpt, pos, bit);
        logcap lc;
        logcap_init(&lc);
        akidb *db;
        if (open_damaged(&w, "ckpt/", &lc, &db, "checkpoint bit flip") == AKIDB_OK) {
            n_ok++;
            expect_batches(db, 0, PB_N, "checkpoint bit flip");  /* harmless flips only */
            if (k % 10 == 0)
                check_usable(db, 800);
            ASSERT_OK(akidb_close(db));
        } else {
            n_corrupt++;
        }
    }
    fprintf(stderr, "  checkpoint flips: %d opened, %d AKIDB_CORRUPT\n", n_ok, n_corrupt);
    if (n_corrupt < 40)
        FAILF("only %d of 80 checkpoint bit flips were detected", n_corrupt);

    /* the catalog: its header (first 100 bytes) and anywhere */
    n_ok = n_corrupt = 0;
    int n_bad = 0;
    char bad[8][300];
    work_copy(&w, pc);
    long long cat_len = file_size(w.catalog);
    ASSERT(cat_len >= 512);
    for (int k = 0; k < 80; k++) {
        long long pos = k < 40 ? (long long)rand_below(&rng, 100)
                               : (long long)rand_below(&rng, (uint32_t)cat_len);
        int bit = (int)rand_below(&rng, 8);
        ctx_set("durability_corrupt_bit_flips: catalog byte %lld of %lld bit %d", pos, cat_len,
                bit);
        work_copy(&w, pc);
        flip_bit(w.catalog, pos, bit);
        logcap lc;
        logcap_init(&lc);
        akidb_options o;
        make_opts(&o, AKIDB_SYNC_ALWAYS, 0, &lc);
        akidb *db = NULL;
        int rc = akidb_open(w.dir, &o, &db);
        if (rc == AKIDB_CORRUPT) {
            ASSERT_MSG_HAS("akidb.db");
            n_corrupt++;
            continue;
        }
        if (rc == AKIDB_INVALID && pos >= 60 && pos < 64) {
            /* SQLite's user_version (the schema version) now reads higher:
             * indistinguishable from a catalog of a newer library */
            ASSERT_MSG_HAS("newer");
            n_corrupt++;
            continue;
        }
        if (rc != AKIDB_OK) {
            /* collected, so one run lists every wrong outcome */
            if (n_bad < 8)
                snprintf(bad[n_bad], sizeof bad[0], "byte %lld bit %d: rc %d (%s): %s", pos,
                         bit, rc, akidb_errstr(rc), akidb_errmsg(NULL));
            n_bad++;
            continue;
        }
        n_ok++;
        /* SQLite did not notice.  The database must still work: whatever
         * collection "c" now is, reading it must not crash, and if its
         * shape is unchanged its documents are exact. */
        akidb_collection_config cfg;
        cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
        if (akidb_collection_info(db, CCOLL, &cfg) == AKIDB_OK) {
            uint64_t n = 0;
            ASSERT_OK(akidb_collection_count(db, CCOLL, &n));
            if (cfg.dim == CDIM && cfg.metric == AKIDB_METRIC_L2) {
                for (uint32_t b = 0; b < PB_N; b++)
                    (void)batch_state(db, b, pb_size(b));
                check_usable(db, 900);
            }
        }
        akidb_collection_config nc;
        akidb_collection_config_init(&nc, 4, AKIDB_METRIC_L2);
        rc = akidb_collection_create(db, "newcoll", &nc);
        if (rc == AKIDB_OK) {
            float v[4] = { 1, 2, 3, 4 };
            uint64_t id;
            ASSERT_OK(akidb_insert(db, "newcoll", 1, v, NULL, NULL, &id));
            akidb_hit h[1];
            uint32_t nh = 0;
            ASSERT_OK(akidb_search(db, "newcoll", v, 1, NULL, h, &nh));
            ASSERT_EQ(nh, 1);
            ASSERT_EQ(h[0].id, id);
        } else if (rc != AKIDB_CORRUPT && rc != AKIDB_EXISTS) {
            FAILF("catalog bit flip: create after a successful open: rc %d (%s)", rc,
                  akidb_errmsg(NULL));
        }
        rc = akidb_close(db);
        if (rc != AKIDB_OK && rc != AKIDB_IOERR)
            FAILF("catalog bit flip: close rc %d", rc);
    }
    fprintf(stderr, "  catalog flips: %d opened, %d AKIDB_CORRUPT (or \"newer\")\n", n_ok,
            n_corrupt);
    if (n_bad) {
        char all[8 * 300 + 16] = "";
        size_t o = 0;
        for (int k = 0; k < n_bad && k < 8; k++)
            o += (size_t)snprintf(all + o, sizeof all - o, "\n    %s", bad[k]);
        FAILF("%d of 80 catalog bit flips gave neither OK nor AKIDB_CORRUPT naming akidb.db:%s",
              n_bad, all);
    }
    g_ctx[0] = '\0';
}

static void fill_random(unsigned char *buf, size_t len, uint64_t seed)
{
    for (size_t k = 0; k < len; k++)
        buf[k] = (unsigned char)splitmix64(&seed);
}

/* Replace path by len random bytes. */
static void garbage_file(const char *path, size_t len, uint64_t seed)
{
    unsigned char *buf = malloc(len + 1);
    ASSERT(buf != NULL);
    fill_random(buf, len, seed);
    spit(path, buf, len);
    free(buf);
}

/* The open must fail with AKIDB_CORRUPT naming `names`. */
static void expect_corrupt(const work *w, const char *names, const char *what)
{
    akidb_options o;
    make_opts(&o, AKIDB_SYNC_ALWAYS, 0, NULL);
    akidb *db = NULL;
    int rc = akidb_open(w->dir, &o, &db);
    if (rc == AKIDB_OK) {
        akidb_close(db);
        FAILF("%s: akidb_open succeeded; expected AKIDB_CORRUPT naming %s", what, names);
    }
    if (rc != AKIDB_CORRUPT)
        FAILF("%s: akidb_open rc %d (%s): %s; expected AKIDB_CORRUPT", what, rc, akidb_errstr(rc),
              akidb_errmsg(NULL));
    if (!strstr(akidb_errmsg(NULL), names))
        FAILF("%s: the message \"%s\" does not name %s", what, akidb_errmsg(NULL), names);
}

TEST(durability_corrupt_files)
{
    char po[PATH_LEN], pc[PATH_LEN];
    long long s0, s1;
    build_pristine(po, pc, &s0, &s1);
    work w;
    logcap lc;
    akidb *db;
    const char *pristines[2] = { po, pc };

    for (int p = 0; p < 2; p++) {
        const char *which = p ? "closed" : "open";
        ctx_set("durability_corrupt_files: %s pristine: WAL header of garbage", which);
        work_copy(&w, pristines[p]);
        unsigned char junk[32];
        fill_random(junk, sizeof junk, 1);
        write_at(w.wal, 0, junk, sizeof junk);
        expect_corrupt(&w, "wal/", "a log header of garbage");

        ctx_set("durability_corrupt_files: %s pristine: WAL entirely garbage", which);
        work_copy(&w, pristines[p]);
        garbage_file(w.wal, (size_t)file_size(w.wal), 2);
        expect_corrupt(&w, "wal/", "a log of garbage");

        ctx_set("durability_corrupt_files: %s pristine: zero-length checkpoint", which);
        work_copy(&w, pristines[p]);
        truncate_to(w.ckpt, 0);
        expect_corrupt(&w, "ckpt/", "a zero-length checkpoint");

        ctx_set("durability_corrupt_files: %s pristine: checkpoint of garbage", which);
        work_copy(&w, pristines[p]);
        garbage_file(w.ckpt, (size_t)file_size(w.ckpt), 3);
        expect_corrupt(&w, "ckpt/", "a checkpoint of garbage");

        ctx_set("durability_corrupt_files: %s pristine: checkpoint cut in half", which);
        work_copy(&w, pristines[p]);
        truncate_to(w.ckpt, file_size(w.ckpt) / 2);
        expect_corrupt(&w, "ckpt/", "a checkpoint cut in half");

        /* a zero-length or deleted log: at most the records after the
         * checkpoint go, and not silently */
        for (int del = 0; del < 2; del++) {
            char what[96];
            snprintf(what, sizeof what, "%s pristine: %s", which,
                     del ? "log deleted" : "zero-length log");
            ctx_set("durability_corrupt_files: %s", what);
            work_copy(&w, pristines[p]);
            if (del)
                ASSERT(unlink(w.wal) == 0);
            else
                truncate_to(w.wal, 0);
            logcap_init(&lc);
            int rc = open_damaged(&w, "wal/", &lc, &db, what);
            note_outcome(what, rc);
            if (rc == AKIDB_OK) {
                expect_batches(db, 0, p ? PB_N : PB_N / 2, what);
                if (!p && !batch_state(db, PB_N / 2, pb_size(PB_N / 2)) && lc.n_warn_wal < 1 &&
                    truncations(db) < 1)
                    FAILF("%s: acknowledged batches lost silently", what);
                check_usable(db, 1000);
                ASSERT_OK(akidb_close(db));
            }
        }

        /* what a crash inside a checkpoint leaves: a temporary file beside
         * the checkpoint.  A normal state, so the open must succeed. */
        ctx_set("durability_corrupt_files: %s pristine: leftover temporary checkpoint", which);
        work_copy(&w, pristines[p]);
        {
            char tmp[PATH_LEN];
            pathf(tmp, "%s.tmp", w.ckpt);
            garbage_file(tmp, 777, 9);
            akidb_options o;
            make_opts(&o, AKIDB_SYNC_ALWAYS, 0, NULL);
            db = open_ok(w.dir, &o);
            expect_batches(db, 0, PB_N, "leftover temporary checkpoint");
            check_usable(db, 1200);
            ASSERT_OK(akidb_checkpoint(db, CCOLL));
            ASSERT_OK(akidb_close(db));
            db = open_ok(w.dir, &o);
            expect_batches(db, 0, PB_N, "leftover temporary checkpoint, second open");
            ASSERT_EQ(batch_state(db, 1200, 3), 1);
            ASSERT_OK(akidb_close(db));
        }

        /* stray files: another collection's leftovers, a temporary checkpoint */
        ctx_set("durability_corrupt_files: %s pristine: stray files", which);
        work_copy(&w, pristines[p]);
        char path[PATH_LEN];
        pathf(path, "%s/wal/999999.wal", w.dir);
        garbage_file(path, 300, 4);
        pathf(path, "%s/ckpt/999999.ckpt", w.dir);
        garbage_file(path, 300, 5);
        pathf(path, "%s.tmp", w.ckpt);
        garbage_file(path, 1000, 6);
        pathf(path, "%s/wal/README", w.dir);
        spit(path, "not a log\n", 10);
        logcap_init(&lc);
        int src = open_damaged(&w, "/", &lc, &db, "stray files");
        note_outcome(p ? "closed pristine: stray files" : "open pristine: stray files", src);
        if (src == AKIDB_OK) {
            expect_batches(db, 0, PB_N, "stray files");
            check_usable(db, 1100);
            ASSERT_OK(akidb_close(db));
            db = open_ok(w.dir, NULL);
            expect_batches(db, 0, PB_N, "stray files, second open");
            ASSERT_EQ(batch_state(db, 1100, 3), 1);
            ASSERT_OK(akidb_close(db));
        }
    }

    /* the catalog (closed pristine, so SQLite's own log is empty) */
    char side[PATH_LEN];
    ctx_set("durability_corrupt_files: catalog of garbage");
    work_copy(&w, pc);
    pathf(side, "%s-wal", w.catalog);
    ASSERT(file_size(side) <= 0);
    garbage_file(w.catalog, (size_t)file_size(w.catalog), 7);
    expect_corrupt(&w, "akidb.db", "a catalog of garbage");

    ctx_set("durability_corrupt_files: catalog header of garbage");
    work_copy(&w, pc);
    {
        unsigned char junk[100];
        fill_random(junk, sizeof junk, 8);
        write_at(w.catalog, 0, junk, sizeof junk);
    }
    expect_corrupt(&w, "akidb.db", "a catalog header of garbage");

    /* an empty catalog beside logs and checkpoints: never a fresh empty
     * database that throws the collections away */
    ctx_set("durability_corrupt_files: zero-length catalog");
    work_copy(&w, pc);
    truncate_to(w.catalog, 0);
    pathf(side, "%s-wal", w.catalog);
    unlink(side);
    pathf(side, "%s-shm", w.catalog);
    unlink(side);
    long long wal_len = file_size(w.wal), ck_len = file_size(w.ckpt);
    expect_corrupt(&w, "akidb.db", "a zero-length catalog");
    ASSERT_EQ(file_size(w.wal), wal_len);
    ASSERT_EQ(file_size(w.ckpt), ck_len);
    expect_corrupt(&w, "akidb.db", "a zero-length catalog, second try");

    ctx_set("durability_corrupt_files: catalog deleted");
    work_copy(&w, pc);
    ASSERT(unlink(w.catalog) == 0);
    logcap_init(&lc);
    int crc = open_damaged(&w, "akidb.db", &lc, &db, "catalog deleted");
    note_outcome("catalog deleted", crc);
    if (crc == AKIDB_OK) {
        ASSERT_OK(akidb_close(db));
        if (file_size(w.wal) != wal_len || file_size(w.ckpt) != ck_len)
            FAILF("a missing catalog made the open delete the collection's files");
    }
    g_ctx[0] = '\0';
}

/* The checkpoint file is gone.  Whatever the log still holds, the
 * checkpointed documents would be lost without a word: the open must see
 * that a checkpoint is missing (AKIDB_CORRUPT naming it or the log). */
TEST(durability_corrupt_missing_checkpoint)
{
    char po[PATH_LEN], pc[PATH_LEN];
    long long s0, s1;
    build_pristine(po, pc, &s0, &s1);
    const char *pristines[2] = { po, pc };
    for (int p = 0; p < 2; p++) {
        ctx_set("durability_corrupt_missing_checkpoint: %s pristine (checkpoint holds batches "
                "0..%u, the log %s)", p ? "closed" : "open", p ? PB_N - 1 : PB_N / 2 - 1,
                p ? "nothing" : "the rest");
        work w;
        work_copy(&w, pristines[p]);
        ASSERT(unlink(w.ckpt) == 0);
        logcap lc;
        logcap_init(&lc);
        akidb *db;
        if (open_damaged(&w, "/", &lc, &db, "checkpoint deleted") == AKIDB_OK) {
            uint64_t n = 0;
            ASSERT_OK(akidb_collection_count(db, CCOLL, &n));
            uint32_t n_present = 0;
            for (uint32_t b = 0; b < PB_N; b++)
                n_present += (uint32_t)batch_state(db, b, pb_size(b));
            ASSERT_OK(akidb_close(db));
            if (n_present < PB_N)
                FAILF("the checkpoint was deleted and akidb_open succeeded with only %u of %u "
                      "acknowledged batches (%llu documents): silent data loss", n_present,
                      PB_N, (unsigned long long)n);
        } else if (!strstr(akidb_errmsg(NULL), "ckpt/") && !strstr(akidb_errmsg(NULL), "wal/")) {
            FAILF("checkpoint deleted: the message \"%s\" names neither the checkpoint nor "
                  "the log", akidb_errmsg(NULL));
        }
    }
    g_ctx[0] = '\0';
}

/* A catalog from a newer library: AKIDB_INVALID, "newer", file untouched. */
TEST(durability_catalog_newer_version)
{
    char dir[PATH_LEN];
    db_path(dir, "db");
    create_crash_coll(dir);
    akidb *db = open_ok(dir, NULL);
    msg op;
    uint64_t ids[CMAX];
    op_insert(&op, 0, 5);
    ASSERT_OK(run_op(db, &op, ids));
    ASSERT_OK(akidb_close(db));

    char cat[PATH_LEN], side[PATH_LEN];
    pathf(cat, "%s/akidb.db", dir);
    pathf(side, "%s/akidb.db-wal", dir);
    if (file_size(side) > 0)
        FAILF("after akidb_close, SQLite's log %s still holds %lld bytes: the catalog was not "
              "checkpointed", side, file_size(side));
    size_t len0 = 0;
    unsigned char *orig = slurp(cat, &len0);
    ASSERT(orig != NULL && len0 >= 100);
    static const unsigned char v999[4] = { 0, 0, 0x03, 0xE7 };
    write_at(cat, 60, v999, 4);
    size_t len1 = 0;
    unsigned char *before = slurp(cat, &len1);

    db = NULL;
    ASSERT_RC(akidb_open(dir, NULL, &db), AKIDB_INVALID);
    ASSERT(db == NULL);
    ASSERT_MSG_HAS("newer");
    size_t len2 = 0;
    unsigned char *after = slurp(cat, &len2);
    ASSERT(after != NULL);
    if (len2 != len1 || memcmp(before, after, len1) != 0)
        FAILF("the failed open modified the newer catalog (%zu -> %zu bytes)", len1, len2);
    free(after);
    /* still refused the second time (nothing was "upgraded") */
    ASSERT_RC(akidb_open(dir, NULL, &db), AKIDB_INVALID);

    write_at(cat, 60, orig + 60, 4);
    db = open_ok(dir, NULL);
    ASSERT_EQ(batch_state(db, 0, 5), 1);
    ASSERT_OK(akidb_close(db));
    free(orig);
    free(before);
}

/* ---- 5. a full disk ----------------------------------------------------------- */

typedef struct space {
    int real;                 /* a real tmpfs */
    char filler[PATH_LEN];
    fault_state wal_f;        /* injected variant */
} space;

/* The injected "full disk": a log record gets half written, then ENOSPC
 * (as a real short write would); checkpoints fail before writing. */
static int space_hook(void *ctx, akidb__fault_point point)
{
    fault_state *f = ctx;
    if (f->err && (point == AKIDB__FAULT_WAL_MID_RECORD || point == AKIDB__FAULT_CKPT_WRITE)) {
        f->hits++;
        return ENOSPC;
    }
    return 0;
}

static void space_fill(space *s, akidb *db)
{
    if (s->real) {
        /* as much as fits, leaving ~256 KiB for the database */
        int fd = open(s->filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ASSERT(fd >= 0);
        static char chunk[65536];
        memset(chunk, 'f', sizeof chunk);
        for (int k = 0; k < 4096; k++) {
            ssize_t w = write(fd, chunk, sizeof chunk);
            if (w < (ssize_t)sizeof chunk)
                break;
        }
        close(fd);
        /* give back 256 KiB so the fill ends inside the library */
        long long sz = file_size(s->filler);
        ASSERT(sz > 262144);
        truncate_to(s->filler, sz - 262144);
    } else {
        s->wal_f.err = ENOSPC;
        akidb__set_fault_hook(db, space_hook, &s->wal_f);
    }
}

static void space_free(space *s, akidb *db)
{
    if (s->real) {
        ASSERT(unlink(s->filler) == 0);
    } else {
        s->wal_f.err = 0;
        akidb__set_fault_hook(db, NULL, NULL);
    }
}

/* Fill the disk with inserts until AKIDB_IOERR; check consistency, free
 * space, continue, reopen. */
static void disk_full_round(space *s, const char *dir, uint64_t ckpt_bytes)
{
    akidb_options o;
    make_opts(&o, AKIDB_SYNC_ALWAYS, ckpt_bytes, NULL);
    akidb *db = open_ok(dir, &o);
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, CDIM, AKIDB_METRIC_L2);
    ASSERT_OK(akidb_collection_create(db, CCOLL, &cfg));
    model m;
    model_init(&m);
    msg op;
    uint64_t ids[CMAX];
    for (int k = 0; k < 5; k++) {
        op_insert(&op, m.next_batch, 10);
        ASSERT_OK(run_op(db, &op, ids));
        model_apply(&m, &op, ids, 1);
    }
    space_fill(s, db);
    int n_fail = 0, n_ok_after_full = 0;
    uint64_t rng = ckpt_bytes + 1;
    for (int k = 0; k < 20000 && n_fail < 5; k++) {
        if (n_fail == 0)
            op_insert(&op, m.next_batch, 10);
        else
            make_op(&m, &rng, 0, &op);  /* keep trying other writes on a full disk */
        int rc = run_op(db, &op, ids);
        if (rc == AKIDB_OK) {
            model_apply(&m, &op, ids, 1);
            if (n_fail)
                n_ok_after_full++;
            continue;
        }
        if (rc != AKIDB_IOERR)
            FAILF("write on a full disk: rc %d (%s), expected AKIDB_IOERR", rc,
                  akidb_errmsg(NULL));
        n_fail++;
        verify_model(db, &m, NULL, (uint64_t)k);
    }
    if (n_fail == 0)
        FAILF("the disk never filled up");
    verify_model(db, &m, NULL, 11);
    space_free(s, db);
    for (int k = 0; k < 5; k++) {
        op_insert(&op, m.next_batch, 10);
        ASSERT_OK(run_op(db, &op, ids));
        model_apply(&m, &op, ids, 1);
    }
    verify_model(db, &m, NULL, 12);
    ASSERT_OK(akidb_close(db));
    db = open_ok(dir, &o);
    verify_model(db, &m, NULL, 13);
    ASSERT_OK(akidb_close(db));
    fprintf(stderr, "  disk full (%s, checkpoint_bytes %llu): %llu documents acknowledged, "
            "%d writes refused, %d later writes fitted\n", s->real ? "tmpfs" : "injected",
            (unsigned long long)ckpt_bytes, (unsigned long long)m.n_live, n_fail,
            n_ok_after_full);
    model_free(&m);
}

static char g_mnt[PATH_LEN];

static void unmount_mnt(void)
{
    if (g_mnt[0]) {
        umount2(g_mnt, MNT_DETACH);
        g_mnt[0] = '\0';
    }
}

static void unmount_on_signal(int sig)
{
    if (g_mnt[0])
        umount2(g_mnt, MNT_DETACH);
    signal(sig, SIG_DFL);
    raise(sig);
}

TEST_TIMEOUT(durability_disk_full, 120)
{
    space s;
    memset(&s, 0, sizeof s);
    char mnt[PATH_LEN];
    db_path(mnt, "mnt");
    ASSERT(mkdir(mnt, 0755) == 0);
    /* a private mount namespace, so the tmpfs vanishes with this process
     * whatever happens; the unmount below is for tidiness */
    if (unshare(CLONE_NEWNS) == 0)
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=4m") == 0) {
        pathf(g_mnt, "%s", mnt);
        atexit(unmount_mnt);
        /* the runner stops a test that overruns with SIGTERM (then KILL) */
        signal(SIGTERM, unmount_on_signal);
        s.real = 1;
    } else {
        fprintf(stderr, "  durability_disk_full: cannot mount a tmpfs at %s (%s); falling back "
                "to ENOSPC injected by the fault hook\n", mnt, strerror(errno));
    }
    static const uint64_t ckpts[2] = { 0, 65536 };
    for (int r = 0; r < 2; r++) {
        char dir[PATH_LEN];
        pathf(dir, "%s/db%d", mnt, r);
        pathf(s.filler, "%s/filler", mnt);
        ctx_set("durability_disk_full: %s, checkpoint_bytes %llu", s.real ? "tmpfs" : "injected",
                (unsigned long long)ckpts[r]);
        disk_full_round(&s, dir, ckpts[r]);
        remove_tree(dir);
    }
    if (s.real) {
        /* and the injected variant too: ENOSPC in the middle of a record */
        s.real = 0;
        char dir[PATH_LEN];
        db_path(dir, "injected");
        ctx_set("durability_disk_full: injected ENOSPC");
        disk_full_round(&s, dir, 0);
        ASSERT(umount2(mnt, MNT_DETACH) == 0);
        g_mnt[0] = '\0';
    }
    g_ctx[0] = '\0';
}

/* ---- 6. locking, sync modes ---------------------------------------------------- */

TEST(durability_busy)
{
    char dir[PATH_LEN];
    db_path(dir, "db");
    akidb *a = open_ok(dir, NULL);
    akidb *b = (akidb *)1;
    ASSERT_RC(akidb_open(dir, NULL, &b), AKIDB_BUSY);
    ASSERT(b == NULL);
    ASSERT_RC(akidb_open(dir, NULL, &b), AKIDB_BUSY);  /* still, and no leak */

    pid_t pid = akt_fork_child();
    if (pid == 0) {
        akidb *c = NULL;
        int rc = akidb_open(dir, NULL, &c);
        _exit(rc == AKIDB_BUSY ? 0 : 10 + rc);
    }
    int st = akt_wait_child(pid, 30, "second opener");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("a second process opening the directory did not get AKIDB_BUSY (exit %d = "
              "10 + rc)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    ASSERT_OK(akidb_close(a));
    a = open_ok(dir, NULL);
    ASSERT_OK(akidb_close(a));

    /* a holder in another process, killed: its lock goes with it */
    int fds[2];
    ASSERT(pipe(fds) == 0);
    pid = akt_fork_child();
    if (pid == 0) {
        close(fds[0]);
        akidb *c = open_ok(dir, NULL);
        akidb_collection_config cfg;
        akidb_collection_config_init(&cfg, 2, AKIDB_METRIC_L2);
        ASSERT_OK(akidb_collection_create(c, "held", &cfg));
        write_full(fds[1], "k", 1);
        for (;;)
            pause();
    }
    close(fds[1]);
    char ch;
    ASSERT(read_full(fds[0], &ch, 1, 30));
    ASSERT_RC(akidb_open(dir, NULL, &b), AKIDB_BUSY);
    kill(pid, SIGKILL);
    akt_wait_child(pid, 30, "holder");
    close(fds[0]);
    a = open_ok(dir, NULL);
    uint64_t n = 1;
    ASSERT_OK(akidb_collection_count(a, "held", &n));
    ASSERT_EQ(n, 0);
    ASSERT_OK(akidb_close(a));
}

#define T_THREADS 8

typedef struct tjob {
    akidb *db;
    int t;
    int n_batches;
    uint32_t batch[64], n[64];
    uint64_t ids[64][8];
    int rc;
} tjob;

static void *thread_writer(void *arg)
{
    tjob *j = arg;
    uint64_t rng = 1000 + (uint64_t)j->t;
    for (int k = 0; k < j->n_batches; k++) {
        msg op;
        j->batch[k] = (uint32_t)(j->t * 1000 + k);
        j->n[k] = 1 + rand_below(&rng, 8);
        op_insert(&op, j->batch[k], j->n[k]);
        int rc = run_op(j->db, &op, j->ids[k]);
        if (rc != AKIDB_OK) {
            j->rc = rc;
            return NULL;
        }
    }
    return NULL;
}

/* 8 threads insert into one collection under INTERVAL and NONE; after a
 * close and reopen, every acknowledged document is there. */
TEST(durability_sync_modes_threads)
{
    static const akidb_sync_mode modes[2] = { AKIDB_SYNC_INTERVAL, AKIDB_SYNC_NONE };
    for (int mi = 0; mi < 2; mi++) {
        char dir[PATH_LEN];
        pathf(dir, "%s/db%d", akt_dir, mi);
        ctx_set("durability_sync_modes_threads: %s", mi ? "NONE" : "INTERVAL");
        create_crash_coll(dir);
        akidb_options o;
        make_opts(&o, modes[mi], 8192, NULL);
        akidb *db = open_ok(dir, &o);
        static tjob jobs[T_THREADS];
        pthread_t th[T_THREADS];
        for (int t = 0; t < T_THREADS; t++) {
            memset(&jobs[t], 0, sizeof jobs[t]);
            jobs[t].db = db;
            jobs[t].t = t;
            jobs[t].n_batches = 40;
            ASSERT(pthread_create(&th[t], NULL, thread_writer, &jobs[t]) == 0);
        }
        for (int t = 0; t < T_THREADS; t++)
            pthread_join(th[t], NULL);
        model m;
        model_init(&m);
        for (int t = 0; t < T_THREADS; t++) {
            ASSERT_OK(jobs[t].rc);
            for (int k = 0; k < jobs[t].n_batches; k++) {
                msg op;
                op_insert(&op, jobs[t].batch[k], jobs[t].n[k]);
                model_apply(&m, &op, jobs[t].ids[k], 0);
            }
        }
        verify_model(db, &m, NULL, 1);
        ASSERT_OK(akidb_close(db));
        db = open_ok(dir, &o);
        verify_model(db, &m, NULL, 2);
        ASSERT_OK(akidb_close(db));
        model_free(&m);
    }
    g_ctx[0] = '\0';
}

/* The multi-threaded writer process of durability_sync_crash_threads. */
typedef struct tcrash {
    akidb *db;
    int wfd;
    int t;
    atomic_uint *next_batch;
    atomic_uint *next_tag;
} tcrash;

static void *thread_crash_writer(void *arg)
{
    tcrash *c = arg;
    uint64_t rng = 77 + (uint64_t)c->t;
    for (int k = 0; k < 60; k++) {
        msg op;
        op_insert(&op, atomic_fetch_add(c->next_batch, 1), 1 + rand_below(&rng, 8));
        op.tag = atomic_fetch_add(c->next_tag, 1) + 1;
        op.kind = MSG_BEGIN;
        write_full(c->wfd, &op, sizeof op);
        uint64_t ids[CMAX];
        int rc = run_op(c->db, &op, ids);
        if (rc != AKIDB_OK) {
            fprintf(stderr, "thread writer: insert: rc %d: %s\n", rc, akidb_errmsg(NULL));
            _exit(4);
        }
        op.kind = MSG_ACK;
        for (uint32_t j = 0; j < op.n; j++)
            op.it[j].id = ids[j];
        write_full(c->wfd, &op, sizeof op);
    }
    return NULL;
}

/* 8 writer threads in a child killed with SIGKILL, in every sync mode
 * (a process crash: NONE's writes are with the OS and survive too). */
TEST_TIMEOUT(durability_sync_crash_threads, 120)
{
    static const akidb_sync_mode modes[3] = { AKIDB_SYNC_ALWAYS, AKIDB_SYNC_INTERVAL,
                                              AKIDB_SYNC_NONE };
    static const char *names[3] = { "ALWAYS", "INTERVAL", "NONE" };
    for (int mi = 0; mi < 3; mi++) {
        for (int r = 0; r < 4; r++) {
            uint64_t seed = mix_seed(0x7C4A5, (uint64_t)(mi * 10 + r));
            uint64_t rng = seed;
            char dir[PATH_LEN];
            pathf(dir, "%s/t%d-%d", akt_dir, mi, r);
            int kill_after = (int)rand_below(&rng, 300);
            uint32_t delay_us = rand_below(&rng, 2000);
            uint64_t ckpt = (r & 1) ? 4096 : 0;
            ctx_set("durability_sync_crash_threads: %s round %d seed 0x%llx, kill after %d acks "
                    "+ %u us, checkpoint_bytes %llu", names[mi], r, (unsigned long long)seed,
                    kill_after, delay_us, (unsigned long long)ckpt);
            create_crash_coll(dir);
            akidb_options o;
            make_opts(&o, modes[mi], ckpt, NULL);
            int fds[2];
            ASSERT(pipe(fds) == 0);
            pid_t pid = akt_fork_child();
            if (pid == 0) {
                close(fds[0]);
                akidb *db = NULL;
                if (akidb_open(dir, &o, &db) != AKIDB_OK)
                    _exit(3);
                static atomic_uint next_batch, next_tag;
                static tcrash cs[T_THREADS];
                pthread_t th[T_THREADS];
                for (int t = 0; t < T_THREADS; t++) {
                    cs[t] = (tcrash){ db, fds[1], t, &next_batch, &next_tag };
                    if (pthread_create(&th[t], NULL, thread_crash_writer, &cs[t]) != 0)
                        _exit(6);
                }
                for (int t = 0; t < T_THREADS; t++)
                    pthread_join(th[t], NULL);
                msg done;
                memset(&done, 0, sizeof done);
                done.kind = MSG_DONE;
                write_full(fds[1], &done, sizeof done);
                for (;;)
                    pause();
            }
            close(fds[1]);
            model m;
            model_init(&m);
            acks a;
            memset(&a, 0, sizeof a);
            msg mm;
            while ((int)a.n_acks < kill_after && !a.done && read_full(fds[0], &mm, sizeof mm, 30))
                acks_feed(&a, &m, &mm, 0);
            sleep_us(delay_us);
            kill(pid, SIGKILL);
            int st = akt_wait_child(pid, 30, "thread writer");
            while (read_full(fds[0], &mm, sizeof mm, 30))
                acks_feed(&a, &m, &mm, 0);
            close(fds[0]);
            if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
                char why[128];
                describe_status(st, why, sizeof why);
                FAILF("thread writer failed before it was killed: %s", why);
            }
            reopen_and_verify(dir, &o, &m, &a, 0, seed, 0);
            model_free(&m);
            remove_tree(dir);
        }
    }
    g_ctx[0] = '\0';
}
