/*
 * test_libdefects.c - the library defects of issue 10 (items 1, 2, 4, 5, 6,
 * 9, 10, 14) and akidb_options.file_mode, each as its user met it:
 *
 *   defects_snapshot_missing_collection   1: snapshot calls on a missing,
 *                                         invalid or dropped collection
 *   defects_lock_*                        2: `rm DIR/LOCK` under an open
 *                                         handle must not let a second
 *                                         writer in
 *   defects_strings_*                     4: external ids must be UTF-8 and
 *                                         metadata JSON; old data loads
 *   defects_snapshots_survive_drop        5: snapshots of a dropped
 *                                         collection stay reachable
 *   defects_tmp_*                         6: snapshot copies left by a kill
 *   defects_wal_last_record_*             9: damage to the last acknowledged
 *                                         record vs a torn tail
 *   defects_deleted_*                     10: log or checkpoint deleted
 *                                         under an open handle
 *   defects_read_only_*                   14: read-only open
 *   defects_file_mode                     the file_mode option
 *
 * Crashes are real (a forked child that _exit()s without closing, or is
 * SIGKILLed), and every directory a test damages is its own copy.
 */
#include "runner.h"
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "akidb.h"
#include "engine/collection.h"
#include "engine/db.h"

static const char *errmsg_detail(void) { return akidb_errmsg(NULL); }
__attribute__((constructor)) static void set_detail(void) { akt_rc_detail_fn = errmsg_detail; }

#define FAILF(...) akt_fail(__FILE__, __LINE__, __VA_ARGS__)
#define DIM 4

/* ---- helpers ------------------------------------------------------------- */

static void pathf(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len)
        FAILF("path too long: %s", fmt);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double time_scale(void)
{
    const char *s = getenv("AKT_TIMEOUT_SCALE");
    return s && atoi(s) > 0 ? atoi(s) : 1;
}

/* The exit code of a child that must exit normally. */
static int child_exit(pid_t pid, double secs, const char *what)
{
    int st = akt_wait_child(pid, secs, what);
    if (!WIFEXITED(st))
        FAILF("%s: did not exit normally (status 0x%x)", what, st);
    return WEXITSTATUS(st);
}

static akidb *open_opts(const char *dir, akidb_sync_mode mode, int read_only, uint32_t file_mode)
{
    akidb_options o;
    akidb_options_init(&o);
    o.sync_mode = mode;
    o.read_only = read_only;
    o.file_mode = file_mode;
    o.dlq_retry_interval_ms = AKIDB_NEVER;
    akidb *db = NULL;
    ASSERT_OK(akidb_open(dir, &o, &db));
    ASSERT(db != NULL);
    return db;
}

static int try_open(const char *dir, akidb_sync_mode mode, int read_only, akidb **out)
{
    akidb_options o;
    akidb_options_init(&o);
    o.sync_mode = mode;
    o.read_only = read_only;
    o.dlq_retry_interval_ms = AKIDB_NEVER;
    return akidb_open(dir, &o, out);
}

static void create_coll(akidb *db, const char *name, uint32_t dim)
{
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, dim, AKIDB_METRIC_L2);
    ASSERT_OK(akidb_collection_create(db, name, &cfg));
}

/* Insert n documents (dim DIM) with external ids "<tag>-<i>" and JSON
 * metadata; returns akidb_insert's rc. */
static int insert_n(akidb *db, const char *coll, const char *tag, uint32_t n)
{
    float *v = calloc((size_t)n * DIM, sizeof *v);
    char (*ext)[48] = calloc(n, sizeof *ext);
    char (*meta)[64] = calloc(n, sizeof *meta);
    const char **ep = calloc(n, sizeof *ep), **mp = calloc(n, sizeof *mp);
    ASSERT(v && ext && meta && ep && mp);
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < DIM; j++)
            v[(size_t)i * DIM + j] = (float)(i + 1) * 0.25f + (float)j;
        snprintf(ext[i], sizeof ext[i], "%s-%u", tag, i);
        snprintf(meta[i], sizeof meta[i], "{\"tag\": \"%s\", \"i\": %u}", tag, i);
        ep[i] = ext[i];
        mp[i] = meta[i];
    }
    int rc = akidb_insert(db, coll, n, v, ep, mp, NULL);
    free(v);
    free(ext);
    free(meta);
    free(ep);
    free(mp);
    return rc;
}

static uint64_t count_of(akidb *db, const char *coll)
{
    uint64_t n = 0;
    ASSERT_OK(akidb_collection_count(db, coll, &n));
    return n;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The one file in dir/sub whose name ends in ext (the collection's log or
 * checkpoint), found by listing, never by guessing its number. */
static void the_file(const char *dir, const char *sub, const char *ext, char *out, size_t len)
{
    char d[1024];
    pathf(d, sizeof d, "%s/%s", dir, sub);
    DIR *dp = opendir(d);
    if (!dp)
        FAILF("cannot list %s: %s", d, strerror(errno));
    int found = 0;
    struct dirent *e;
    size_t el = strlen(ext);
    while ((e = readdir(dp)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > el && strcmp(e->d_name + n - el, ext) == 0) {
            if (found++)
                FAILF("more than one *%s in %s", ext, d);
            pathf(out, len, "%s/%s", d, e->d_name);
        }
    }
    closedir(dp);
    if (!found)
        FAILF("no *%s in %s", ext, d);
}

/* Number of entries of dir whose names end in suffix ("" = all), -1 if
 * the directory does not exist. */
static int count_entries(const char *dir, const char *suffix)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return -1;
    int n = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(dp)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && len >= sl &&
            strcmp(e->d_name + len - sl, suffix) == 0)
            n++;
    }
    closedir(dp);
    return n;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        FAILF("cannot create %s: %s", path, strerror(errno));
    ASSERT_EQ(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

static void run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run_cmd(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fflush(stderr);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAILF("command failed (status %d): %s", st, cmd);
}

/* Log callback that keeps every WARN/ERROR message, for checking what the
 * library says. */
typedef struct logcap {
    char text[8192];
    int n_warn;
} logcap;

static void capture_log(void *ctx, akidb_log_level level, const char *msg)
{
    logcap *lc = ctx;
    if (level > AKIDB_LOG_WARN)
        return;
    lc->n_warn++;
    size_t used = strlen(lc->text);
    snprintf(lc->text + used, sizeof lc->text - used, "%s\n", msg);
}

/* ---- 1. snapshot calls on collections that are not there ------------------ */

TEST(defects_snapshot_missing_collection)
{
    char dir[1024];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    akidb *db = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    create_coll(db, "live", DIM);
    create_coll(db, "gone", DIM);
    ASSERT_OK(insert_n(db, "gone", "g", 3));
    char sid[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_OK(akidb_snapshot_create(db, "gone", sid, sizeof sid));
    ASSERT_OK(akidb_collection_drop(db, "gone"));

    static const struct { const char *name; int rc; } cases[] = {
        { "nope", AKIDB_NOTFOUND },          /* never existed */
        { "bad name!", AKIDB_INVALID },      /* not a valid name */
        { "", AKIDB_INVALID },
        { "gone", AKIDB_NOTFOUND },          /* dropped (its snapshot is kept) */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        /* out starts as garbage: the call must set it, never free it */
        akidb_snapshot_info **list = (akidb_snapshot_info **)(uintptr_t)0x1;
        size_t n = 77;
        ASSERT_RC(akidb_snapshot_list(db, cases[k].name, &list, &n), cases[k].rc);
        ASSERT(list == NULL);
        ASSERT_EQ(n, 0);
        ASSERT_RC(akidb_snapshot_restore(db, cases[k].name, NULL), cases[k].rc);
        ASSERT_RC(akidb_snapshot_restore(db, cases[k].name, sid), cases[k].rc);
        ASSERT_RC(akidb_snapshot_delete(db, cases[k].name, sid), cases[k].rc);
        ASSERT_RC(akidb_snapshot_delete(db, cases[k].name, "no-such-id"), cases[k].rc);
        char id[AKIDB_SNAPSHOT_ID_LEN];
        ASSERT_RC(akidb_snapshot_create(db, cases[k].name, id, sizeof id), cases[k].rc);
    }
    /* and the handle is still fine */
    akidb_snapshot_info **list = NULL;
    size_t n = 0;
    ASSERT_OK(akidb_snapshot_list(db, "live", &list, &n));
    ASSERT_EQ(n, 0);
    ASSERT_OK(akidb_close(db));
}

/* ---- 2. the lock --------------------------------------------------------- */

/* The case: process A holds the database and has 40 acknowledged
 * writes; someone runs `rm DIR/LOCK`; process B opens the directory.  B
 * must get AKIDB_BUSY.  (Before the fix B opened, wrote 20, and one of
 * the two lost its writes: 40 of 60 were kept.)  Either way every
 * acknowledged write must be there at the end. */
TEST(defects_lock_rm_lock_file)
{
    char dir[1024], lock[1100];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    pathf(lock, sizeof lock, "%s/LOCK", dir);
    akidb *a = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    create_coll(a, "c", DIM);
    for (int i = 0; i < 40; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "a%d", i);
        ASSERT_OK(insert_n(a, "c", tag, 1));
    }
    if (exists(lock))
        ASSERT_EQ(unlink(lock), 0);

    pid_t pid = akt_fork_child();
    if (pid == 0) {
        akidb *b = NULL;
        int rc = try_open(dir, AKIDB_SYNC_ALWAYS, 0, &b);
        if (rc == AKIDB_BUSY)
            _exit(2);
        if (rc != AKIDB_OK)
            _exit(10 + rc);
        for (int i = 0; i < 20; i++) {
            char tag[16];
            snprintf(tag, sizeof tag, "b%d", i);
            if (insert_n(b, "c", tag, 1) != AKIDB_OK)
                _exit(5);
        }
        _exit(akidb_close(b) == AKIDB_OK ? 0 : 6);
    }
    int code = child_exit(pid, 60, "second opener");
    ASSERT(code == 0 || code == 2);
    uint64_t acked = 40 + (code == 0 ? 20 : 0);
    ASSERT_OK(akidb_close(a));
    akidb *c = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    uint64_t kept = count_of(c, "c");
    ASSERT_OK(akidb_close(c));
    if (kept != acked)
        FAILF("%llu acknowledged writes, %llu kept: a second writer got in after rm LOCK",
              (unsigned long long)acked, (unsigned long long)kept);
    if (code != 2)
        FAILF("the second opener was not refused with AKIDB_BUSY after rm LOCK");
}

/* Writers, readers and the lock, also with DIR/LOCK gone. */
TEST(defects_lock_readers_and_writers)
{
    char dir[1024], lock[1100];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    pathf(lock, sizeof lock, "%s/LOCK", dir);
    akidb *w = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    create_coll(w, "c", DIM);
    ASSERT_OK(insert_n(w, "c", "x", 5));
    for (int round = 0; round < 2; round++) {
        akidb *x = (akidb *)1;
        ASSERT_RC(try_open(dir, AKIDB_SYNC_NONE, 0, &x), AKIDB_BUSY);
        ASSERT(x == NULL);
        ASSERT_RC(try_open(dir, AKIDB_SYNC_NONE, 1, &x), AKIDB_BUSY);   /* reader beside a writer */
        pid_t pid = akt_fork_child();
        if (pid == 0) {
            akidb *y = NULL;
            int r1 = try_open(dir, AKIDB_SYNC_NONE, 0, &y);
            int r2 = try_open(dir, AKIDB_SYNC_NONE, 1, &y);
            _exit(r1 == AKIDB_BUSY && r2 == AKIDB_BUSY ? 0 : 1);
        }
        ASSERT_EQ(child_exit(pid, 30, "other process"), 0);
        if (exists(lock))
            unlink(lock);   /* round 2: the same without DIR/LOCK */
    }
    ASSERT_OK(akidb_close(w));

    /* readers share; a writer waits for all of them */
    akidb *r1 = open_opts(dir, AKIDB_SYNC_NONE, 1, 0);
    akidb *r2 = open_opts(dir, AKIDB_SYNC_NONE, 1, 0);
    pid_t pid = akt_fork_child();
    if (pid == 0) {
        akidb *y = NULL;
        int ro = try_open(dir, AKIDB_SYNC_NONE, 1, &y);
        uint64_t n = 0;
        if (ro == AKIDB_OK && (akidb_collection_count(y, "c", &n) != AKIDB_OK || n != 5))
            _exit(3);
        akidb_close(y);
        akidb *z = NULL;
        int rw = try_open(dir, AKIDB_SYNC_NONE, 0, &z);
        _exit(ro == AKIDB_OK && rw == AKIDB_BUSY ? 0 : 1);
    }
    ASSERT_EQ(child_exit(pid, 30, "reader process"), 0);
    akidb *x = NULL;
    ASSERT_RC(try_open(dir, AKIDB_SYNC_NONE, 0, &x), AKIDB_BUSY);
    ASSERT_OK(akidb_close(r1));
    ASSERT_RC(try_open(dir, AKIDB_SYNC_NONE, 0, &x), AKIDB_BUSY);
    ASSERT_OK(akidb_close(r2));
    x = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    ASSERT_EQ(count_of(x, "c"), 5);
    ASSERT_OK(akidb_close(x));
}

/* ---- 4. what goes in must be readable by other tools ---------------------- */

static void assert_msg_has(const char *needle)
{
    const char *m = akidb_errmsg(NULL);
    if (!strstr(m, needle))
        FAILF("message \"%s\" does not contain \"%s\"", m, needle);
}

TEST(defects_strings_validated)
{
    char dir[1024];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    akidb *db = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    create_coll(db, "c", DIM);
    float v[3 * DIM];
    for (int i = 0; i < 3 * DIM; i++)
        v[i] = (float)i;

    /* external ids: not UTF-8, or holding control characters */
    static const char *const bad_ids[] = {
        "\xff\xfe", "abc\xc3", "\xc0\x80" "x", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "a\x01" "b", "line\nbreak", "\x1b[31mred", "c1\xc2\x85",
    };
    for (size_t k = 0; k < sizeof bad_ids / sizeof bad_ids[0]; k++) {
        const char *ext[3] = { "fine-0", bad_ids[k], "fine-2" };
        ASSERT_RC(akidb_insert(db, "c", 3, v, ext, NULL, NULL), AKIDB_INVALID);
        assert_msg_has("row 1");
        assert_msg_has("external id");
        ASSERT_RC(akidb_upsert(db, "c", 3, v, ext, NULL, NULL), AKIDB_INVALID);
        assert_msg_has("row 1");
    }
    ASSERT_EQ(count_of(db, "c"), 0);

    /* metadata: not JSON */
    char *deep = malloc(2 * 5000 + 1);
    ASSERT(deep);
    memset(deep, '[', 5000);
    memset(deep + 5000, ']', 5000);
    deep[10000] = '\0';
    char *huge = malloc(((size_t)1 << 20) + 16);
    ASSERT(huge);
    huge[0] = '"';
    memset(huge + 1, 'x', (size_t)1 << 20);
    huge[((size_t)1 << 20) + 1] = '"';
    huge[((size_t)1 << 20) + 2] = '\0';
    const char *const bad_meta[] = {
        "not json", "{'a': 1}", "{\"a\": 1,}", "[1, 2", "{} x", "", "   ", "NaN",
        "{\"a\": 1, \"a\": 2}",          /* duplicate names: two readers, two documents */
        "\"\xff\"",                        /* not UTF-8 inside a string */
        "\"\\ud800\"",                     /* a lone surrogate */
        "\"tab\there\"",                   /* a raw control character in a string */
        "1e400",                           /* beyond a double */
        deep,                              /* nesting beyond 2048 */
        huge,                              /* more than 1 MiB */
    };
    for (size_t k = 0; k < sizeof bad_meta / sizeof bad_meta[0]; k++) {
        const char *meta[3] = { "{}", bad_meta[k], "null" };
        const char *ext[3] = { "m-0", "m-1", "m-2" };
        ASSERT_RC(akidb_insert(db, "c", 3, v, NULL, meta, NULL), AKIDB_INVALID);
        assert_msg_has("row 1");
        assert_msg_has("metadata");
        ASSERT_RC(akidb_upsert(db, "c", 3, v, ext, meta, NULL), AKIDB_INVALID);
        assert_msg_has("row 1");
    }
    free(deep);
    free(huge);
    ASSERT_EQ(count_of(db, "c"), 0);

    /* what is accepted: any JSON value, stored byte for byte */
    const char *const good_meta[] = {
        "{}", "[]", "null", "true", "0", "-0.5e-3", "\"a string\"", " {\"spaced\" : 1} ",
        "{\"a\": {\"b\": [1, 2.5e3, true, null, \"x\"]}}",
        "123456789012345678901234567890",   /* beyond 64 bits: a double to readers */
        "\"\\u0000 and \\ud83d\\ude00\"",     /* escapes, a surrogate pair */
        "{\"name\": \"r\xc3\xa9sum\xc3\xa9 \xe2\x98\x83\"}",
    };
    const size_t n_good = sizeof good_meta / sizeof good_meta[0];
    float *gv = calloc(n_good * DIM, sizeof *gv);
    const char **gext = calloc(n_good, sizeof *gext);
    char (*names)[32] = calloc(n_good, sizeof *names);
    ASSERT(gv && gext && names);
    for (size_t i = 0; i < n_good; i++) {
        gv[i * DIM] = (float)i;
        snprintf(names[i], sizeof names[i], "ok-\xc3\xa9-\t-%zu", i);   /* UTF-8, a tab */
        gext[i] = names[i];
    }
    uint64_t *ids = calloc(n_good, sizeof *ids);
    ASSERT_OK(akidb_insert(db, "c", n_good, gv, gext, good_meta, ids));
    for (size_t i = 0; i < n_good; i++) {
        akidb_document d;
        memset(&d, 0, sizeof d);
        d.version = AKIDB_DOCUMENT_VERSION;
        ASSERT_OK(akidb_document_get(db, "c", ids[i], NULL, &d));
        ASSERT_STR_EQ(d.metadata_json, good_meta[i]);
        ASSERT_STR_EQ(d.external_id, names[i]);
        akidb_document_clear(&d);
    }
    free(gv);
    free(gext);
    free(names);
    free(ids);
    ASSERT_OK(akidb_close(db));
}

/* Data stored before the check existed (written here through the
 * collection directly, as an older library did) loads as it is, from the
 * log and from a checkpoint. */
static void write_unchecked(akidb *db)
{
    akidb__collection *c;
    ASSERT_OK(akidb__db_enter(db, "c", &c));
    float v[2 * DIM] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    const char *ext[2] = { "old-\xff", "old-ok" };
    const char *meta[2] = { "not json at all", "{\"a\": 1, \"a\": 2}" };
    ASSERT_OK(akidb__coll_write(c, 0, 2, v, ext, meta, NULL, 1));
    akidb__db_leave(db, c);
}

static void expect_unchecked(akidb *db)
{
    uint64_t id = 0;
    ASSERT_OK(akidb_lookup(db, "c", "old-\xff", &id));
    char *meta = NULL;
    ASSERT_OK(akidb_get(db, "c", id, NULL, &meta));
    ASSERT_STR_EQ(meta, "not json at all");
    akidb_free(meta);
    ASSERT_OK(akidb_lookup(db, "c", "old-ok", &id));
    ASSERT_OK(akidb_get(db, "c", id, NULL, &meta));
    ASSERT_STR_EQ(meta, "{\"a\": 1, \"a\": 2}");
    akidb_free(meta);
}

TEST(defects_strings_old_data_loads)
{
    char dir[1024];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    akidb *db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    create_coll(db, "c", DIM);
    ASSERT_OK(akidb_close(db));

    /* in the log only: a writer that died */
    pid_t pid = akt_fork_child();
    if (pid == 0) {
        akidb *w = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
        write_unchecked(w);
        _exit(0);
    }
    ASSERT_EQ(child_exit(pid, 30, "writer"), 0);
    db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    ASSERT_EQ(count_of(db, "c"), 2);
    expect_unchecked(db);
    ASSERT_OK(akidb_close(db));   /* now in the checkpoint */
    db = open_opts(dir, AKIDB_SYNC_ALWAYS, 1, 0);
    expect_unchecked(db);
    ASSERT_OK(akidb_close(db));
    db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    expect_unchecked(db);
    /* new writes are checked, also replacing an old document */
    float v[DIM] = { 1, 1, 1, 1 };
    const char *ext[1] = { "old-ok" };
    const char *bad[1] = { "still not json" };
    ASSERT_RC(akidb_upsert(db, "c", 1, v, ext, bad, NULL), AKIDB_INVALID);
    ASSERT_OK(akidb_close(db));
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    ASSERT(s);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* DuckDB reads an export of what was accepted (and nothing else got in:
 * before the check, one non-JSON row made DuckDB refuse the whole file). */
TEST_TIMEOUT(defects_strings_duckdb_reads_export, 300)
{
    char dir[1024];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    akidb *db = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    create_coll(db, "c", DIM);
    const char *const meta[] = {
        "{\"a\": {\"b\": [1, 2.5e3, true, null]}}", "123456789012345678901234567890",
        "\"\\u00e9\\ud83d\\ude00\"", "{\"name\": \"r\xc3\xa9sum\xc3\xa9\"}", "null", "[]",
    };
    const char *const ext[] = { "\xc3\xa9t\xc3\xa9", "tab\tid", "plain", "\xe2\x98\x83",
                                "x", "y" };
    const size_t n = sizeof meta / sizeof meta[0];
    float v[6 * DIM];
    for (size_t i = 0; i < n * DIM; i++)
        v[i] = (float)i;
    ASSERT_OK(akidb_insert(db, "c", n, v, ext, meta, NULL));
    const char *bad_meta[1] = { "{oops}" };
    const char *bad_ext[1] = { "\xff" };
    ASSERT_RC(akidb_insert(db, "c", 1, v, NULL, bad_meta, NULL), AKIDB_INVALID);
    ASSERT_RC(akidb_insert(db, "c", 1, v, bad_ext, NULL, NULL), AKIDB_INVALID);
    char *pq = str_printf("%s/export.parquet", akt_dir);
    char *out = str_printf("%s/duckdb.out", akt_dir);
    ASSERT_OK(akidb_export_parquet(db, "c", pq));
    ASSERT_OK(akidb_close(db));
    const char *src = getenv("AKIDB_SRCDIR");
    char *script = str_printf("%s/scripts/parquet-interop.sh", src && src[0] ? src : ".");
    if (access(script, X_OK) != 0)
        FAILF("%s is missing (run from the repository root or set AKIDB_SRCDIR)", script);
    /* DuckDB's rows as JSON lines: the JSON column is parsed on the way */
    run_cmd("'%s' read '%s' > '%s'", script, pq, out);
    FILE *f = fopen(out, "r");
    ASSERT(f);
    char line[4096];
    size_t rows = 0;
    int saw_nested = 0, saw_accent = 0;
    while (fgets(line, sizeof line, f)) {
        rows++;
        saw_nested |= strstr(line, "2500") != NULL || strstr(line, "2.5e3") != NULL;
        saw_accent |= strstr(line, "r\xc3\xa9sum\xc3\xa9") != NULL;
    }
    fclose(f);
    ASSERT_EQ(rows, n);
    ASSERT(saw_nested);
    ASSERT(saw_accent);
    free(pq);
    free(out);
    free(script);
}

/* ---- 5. snapshots of a dropped collection ---------------------------------- */

typedef struct keyset {
    char keys[256][128];
    size_t n;
} keyset;

static int collect_key(void *ctx, const char *key, uint64_t size)
{
    (void)size;
    keyset *k = ctx;
    if (k->n < 256)
        snprintf(k->keys[k->n], sizeof k->keys[0], "%s", key);
    k->n++;
    return 0;
}

static int64_t catalog_rows(const char *dir, const char *sql)
{
    char path[1100];
    pathf(path, sizeof path, "%s/akidb.db", dir);
    sqlite3 *s = NULL;
    ASSERT_EQ(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ASSERT_EQ(sqlite3_prepare_v2(s, sql, -1, &st, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(s);
    return n;
}

TEST_TIMEOUT(defects_snapshots_survive_drop, 240)
{
    char dir[1024], objs[1100];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    pathf(objs, sizeof objs, "%s/objects", dir);
    akidb *db = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    /* 100 cycles of create, write, snapshot, drop; every third snapshot is
     * deleted while its collection lives */
    char kept[100][AKIDB_SNAPSHOT_ID_LEN];
    uint32_t kept_rows[100];
    size_t n_kept = 0;
    for (uint32_t cycle = 0; cycle < 100; cycle++) {
        create_coll(db, "c", DIM);
        ASSERT_OK(insert_n(db, "c", "d", cycle % 7 + 1));
        char sid[AKIDB_SNAPSHOT_ID_LEN];
        ASSERT_OK(akidb_snapshot_create(db, "c", sid, sizeof sid));
        if (cycle % 3 == 2) {
            ASSERT_OK(akidb_snapshot_delete(db, "c", sid));
        } else {
            memcpy(kept[n_kept], sid, sizeof sid);
            kept_rows[n_kept++] = cycle % 7 + 1;
        }
        ASSERT_OK(akidb_collection_drop(db, "c"));
    }
    ASSERT_OK(akidb_close(db));

    /* reopen (the catalog is read again), create the name once more */
    db = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    create_coll(db, "c", DIM);
    akidb_snapshot_info **list = NULL;
    size_t n = 0;
    ASSERT_OK(akidb_snapshot_list(db, "c", &list, &n));
    ASSERT_EQ(n, n_kept);
    /* newest first: the reverse of the order they were taken */
    for (size_t i = 0; i < n; i++)
        ASSERT_STR_EQ(list[i]->id, kept[n_kept - 1 - i]);
    /* every object is listed, every row has its object, nothing else */
    akidb_store *st = NULL;
    ASSERT_OK(akidb_store_local_open(objs, &st));
    keyset ks;
    memset(&ks, 0, sizeof ks);
    ASSERT_OK(akidb_store_list(st, "snapshots/", collect_key, &ks));
    ASSERT_EQ(ks.n, n_kept);
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t k = 0; k < ks.n; k++)
            found += strcmp(ks.keys[k], list[i]->key) == 0;
        ASSERT_EQ(found, 1);
    }
    ASSERT_EQ(catalog_rows(dir, "SELECT count(*) FROM snapshots"), (int64_t)n_kept);

    /* an old one restores into the new collection, the newest too */
    ASSERT_OK(akidb_snapshot_restore(db, "c", kept[5]));
    ASSERT_EQ(count_of(db, "c"), kept_rows[5]);
    ASSERT_OK(akidb_snapshot_restore(db, "c", NULL));
    ASSERT_EQ(count_of(db, "c"), kept_rows[n_kept - 1]);

    /* and every one can be deleted: then nothing is left anywhere */
    for (size_t i = 0; i < n; i++)
        ASSERT_OK(akidb_snapshot_delete(db, "c", list[i]->id));
    akidb_free(list);
    ASSERT_OK(akidb_snapshot_list(db, "c", &list, &n));
    ASSERT_EQ(n, 0);
    memset(&ks, 0, sizeof ks);
    ASSERT_OK(akidb_store_list(st, "snapshots/", collect_key, &ks));
    ASSERT_EQ(ks.n, 0);
    ASSERT_EQ(catalog_rows(dir, "SELECT count(*) FROM snapshots"), 0);
    akidb_store_close(st);

    /* a collection of the name with other settings: the old snapshot is
     * listed, refused by restore with the reason, and deletable */
    create_coll(db, "e", DIM);
    ASSERT_OK(insert_n(db, "e", "e", 3));
    char sid[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_OK(akidb_snapshot_create(db, "e", sid, sizeof sid));
    ASSERT_OK(akidb_collection_drop(db, "e"));
    create_coll(db, "e", DIM + 1);
    ASSERT_OK(akidb_snapshot_list(db, "e", &list, &n));
    ASSERT_EQ(n, 1);
    akidb_free(list);
    ASSERT_RC(akidb_snapshot_restore(db, "e", sid), AKIDB_INVALID);
    assert_msg_has("dim");
    ASSERT_RC(akidb_snapshot_restore(db, "e", NULL), AKIDB_INVALID);
    ASSERT_OK(akidb_snapshot_delete(db, "e", sid));
    ASSERT_EQ(catalog_rows(dir, "SELECT count(*) FROM snapshots"), 0);
    ASSERT_OK(akidb_close(db));
}

/* A catalog of schema 3 (before snapshots had names) with a snapshot of a
 * dropped collection: the upgrade finds it under its name. */
TEST(defects_snapshots_old_catalog_upgrade)
{
    char dir[1024], cat[1100];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    pathf(cat, sizeof cat, "%s/akidb.db", dir);
    akidb *db = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    create_coll(db, "c", DIM);
    ASSERT_OK(insert_n(db, "c", "d", 4));
    char sid[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_OK(akidb_snapshot_create(db, "c", sid, sizeof sid));
    ASSERT_OK(akidb_collection_drop(db, "c"));
    ASSERT_OK(akidb_close(db));
    /* back to schema 3: no coll_name column, none of schema 5's tiering
     * columns and tables, none of schema 6's storage columns */
    sqlite3 *s = NULL;
    ASSERT_EQ(sqlite3_open(cat, &s), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(s, "DROP INDEX snapshots_by_name; ALTER TABLE snapshots DROP COLUMN "
                           "coll_name; PRAGMA user_version=3;", NULL, NULL, NULL), SQLITE_OK);
    static const char *const schema5[] = {
        "DROP TABLE tier_intents", "DROP TABLE tier_gc",
        "ALTER TABLE snapshots DROP COLUMN kind", "ALTER TABLE snapshots DROP COLUMN crc32c",
        "ALTER TABLE snapshots DROP COLUMN last_seq",
        "ALTER TABLE collections DROP COLUMN hot_bytes",
        "ALTER TABLE collections DROP COLUMN doc_count",
        "ALTER TABLE collections DROP COLUMN doc_deleted",
        "ALTER TABLE collections DROP COLUMN access_count",
        "ALTER TABLE collections DROP COLUMN access_window",
        "ALTER TABLE collections DROP COLUMN p_hot_ttl",
        "ALTER TABLE collections DROP COLUMN p_warm_ttl",
        "ALTER TABLE collections DROP COLUMN p_promote",
        "ALTER TABLE collections DROP COLUMN p_disabled",
        "ALTER TABLE collections DROP COLUMN p_retention",
        "ALTER TABLE collections DROP COLUMN storage",
        "ALTER TABLE collections DROP COLUMN exact_vectors",
        "ALTER TABLE collections DROP COLUMN rerank",
    };
    for (size_t i = 0; i < sizeof schema5 / sizeof schema5[0]; i++)
        ASSERT_EQ(sqlite3_exec(s, schema5[i], NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(s);
    /* a read-only open cannot upgrade it, and says so */
    akidb *ro = NULL;
    ASSERT_RC(try_open(dir, AKIDB_SYNC_NONE, 1, &ro), AKIDB_READONLY);
    assert_msg_has("read-write");
    db = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    create_coll(db, "c", DIM);
    akidb_snapshot_info **list = NULL;
    size_t n = 0;
    ASSERT_OK(akidb_snapshot_list(db, "c", &list, &n));
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(list[0]->id, sid);
    akidb_free(list);
    ASSERT_OK(akidb_snapshot_restore(db, "c", sid));
    ASSERT_EQ(count_of(db, "c"), 4);
    ASSERT_OK(akidb_close(db));
}

/* ---- 6. snapshot copies left in tmp/ ----------------------------------------- */

TEST(defects_tmp_planted_files)
{
    char dir[1024], tmp[1100], f1[1200], f2[1200], other[1200];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    pathf(tmp, sizeof tmp, "%s/tmp", dir);
    pathf(f1, sizeof f1, "%s/snapshot-12345-678-9.tmp", tmp);
    pathf(f2, sizeof f2, "%s/snapshot-1-2-3.tmp", tmp);
    pathf(other, sizeof other, "%s/notes.txt", tmp);
    akidb *db = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    create_coll(db, "c", DIM);
    ASSERT_OK(akidb_close(db));
    ASSERT(mkdir(tmp, 0755) == 0 || errno == EEXIST);
    static char junk[1 << 20];
    write_file(f1, junk, sizeof junk);
    write_file(f2, "x", 1);
    write_file(other, "keep me", 7);
    /* a read-only open leaves them */
    db = open_opts(dir, AKIDB_SYNC_NONE, 1, 0);
    ASSERT_OK(akidb_close(db));
    ASSERT(exists(f1) && exists(f2));
    /* a read-write open removes them, and only them */
    db = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    ASSERT(!exists(f1));
    ASSERT(!exists(f2));
    ASSERT(exists(other));
    ASSERT_OK(akidb_close(db));
}

/* The case: kill -9 during a snapshot. */
TEST_TIMEOUT(defects_tmp_killed_snapshot, 240)
{
    char dir[1024], tmp[1100];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    pathf(tmp, sizeof tmp, "%s/tmp", dir);
    akidb *db = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 64, AKIDB_METRIC_L2);
    cfg.ef_construction = 16;
    ASSERT_OK(akidb_collection_create(db, "big", &cfg));
    enum { N = 20000, B = 1000 };
    float *v = malloc((size_t)B * 64 * sizeof *v);
    ASSERT(v);
    uint64_t s = 12345;
    for (int at = 0; at < N; at += B) {
        for (size_t i = 0; i < (size_t)B * 64; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            v[i] = (float)(s >> 40) / (float)(1 << 24);
        }
        ASSERT_OK(akidb_insert(db, "big", B, v, NULL, NULL, NULL));
    }
    free(v);
    ASSERT_OK(akidb_close(db));

    int caught = 0;
    for (int attempt = 0; attempt < 10 && !caught; attempt++) {
        pid_t pid = akt_fork_child();
        if (pid == 0) {
            akidb *w = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
            for (;;) {
                char sid[AKIDB_SNAPSHOT_ID_LEN];
                if (akidb_snapshot_create(w, "big", sid, sizeof sid) != AKIDB_OK)
                    _exit(3);
            }
        }
        /* kill it while a copy is being written */
        double end = now_s() + 60 * time_scale();
        while (count_entries(tmp, ".tmp") <= 0 && now_s() < end)
            usleep(200);
        kill(pid, SIGKILL);
        int st = akt_wait_child(pid, 30, "snapshot writer");
        ASSERT(WIFSIGNALED(st));
        caught = count_entries(tmp, ".tmp") > 0;
    }
    if (!caught)
        FAILF("10 kills during snapshots left no tmp/ file to clean: the test did not test");
    db = open_opts(dir, AKIDB_SYNC_NONE, 0, 0);
    ASSERT_EQ(count_entries(tmp, ".tmp"), 0);
    ASSERT_EQ(count_of(db, "big"), N);
    ASSERT_OK(akidb_close(db));
}

/* ---- 9. the last acknowledged record --------------------------------------- */

/* A child writes `batches` acknowledged batches under `mode` and dies
 * without closing. */
static void write_and_die(const char *dir, akidb_sync_mode mode, int batches)
{
    pid_t pid = akt_fork_child();
    if (pid == 0) {
        akidb *w = open_opts(dir, mode, 0, 0);
        create_coll(w, "c", DIM);
        for (int b = 0; b < batches; b++) {
            char tag[16];
            snprintf(tag, sizeof tag, "b%d", b);
            if (insert_n(w, "c", tag, 3) != AKIDB_OK)
                _exit(4);
        }
        _exit(0);
    }
    ASSERT_EQ(child_exit(pid, 60, "writer"), 0);
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* [start, end) of the last record with data in log `path` (records from
 * offset 32, each 24 bytes of header + the payload padded to 8; a record
 * of length 0 is a sync marker), and where its payload ends (the padding
 * after it is not covered by the CRC: a flip there damages nothing). */
static void last_record(const char *path, long long *start, long long *end,
                        long long *payload_end)
{
    long long size = file_size(path);
    int fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    long long off = 32;
    *start = *end = -1;
    while (off + 24 <= size) {
        unsigned char h[4];
        ASSERT_EQ(pread(fd, h, 4, off), 4);
        uint32_t len = get_le32(h);
        long long rec = 24 + (((long long)len + 7) & ~7LL);
        if (off + rec > size)
            break;
        if (len) {
            *start = off;
            *end = off + rec;
            *payload_end = off + 24 + len;
        }
        off += rec;
    }
    close(fd);
    ASSERT(*start >= 32);
}

static void flip_byte(const char *path, long long at)
{
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    unsigned char b;
    ASSERT_EQ(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    ASSERT_EQ(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static void copy_dir(const char *from, const char *to)
{
    run_cmd("rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
}

TEST(defects_wal_last_record_flipped)
{
    char pristine[1024], dir[1024], wal[1200];
    pathf(pristine, sizeof pristine, "%s/pristine", akt_dir);
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    write_and_die(pristine, AKIDB_SYNC_ALWAYS, 10);
    the_file(pristine, "wal", ".wal", wal, sizeof wal);
    long long s0, s1, pe;
    last_record(wal, &s0, &s1, &pe);

    /* a flipped byte anywhere in the last acknowledged record: damage to an
     * acknowledged write, AKIDB_CORRUPT (the same damage one record earlier
     * always was) */
    long long spots[] = { s0, s0 + 5, s0 + 9, s0 + 17, s0 + 24, s0 + 40, pe - 9, pe - 1 };
    for (size_t k = 0; k < sizeof spots / sizeof spots[0]; k++) {
        copy_dir(pristine, dir);
        the_file(dir, "wal", ".wal", wal, sizeof wal);
        flip_byte(wal, spots[k]);
        logcap lc;
        memset(&lc, 0, sizeof lc);
        akidb_options o;
        akidb_options_init(&o);
        o.log_fn = capture_log;
        o.log_ctx = &lc;
        akidb *db = NULL;
        int rc = akidb_open(dir, &o, &db);
        if (rc != AKIDB_CORRUPT)
            FAILF("byte %lld of the last acknowledged record (%lld..%lld) flipped: open gave "
                  "%s (%s), log said \"%s\"; expected AKIDB_CORRUPT", spots[k], s0, s1,
                  akidb_errname(rc), akidb_errmsg(NULL), lc.text);
        assert_msg_has("synced");
        ASSERT(db == NULL);
    }

    /* a torn tail (the last record cut short, no marker after it): cut,
     * visible in the stats without a log callback, and the message does not
     * claim what it cannot know */
    for (long long cut = s0 + 1; cut < s1; cut += (s1 - s0) / 5) {
        copy_dir(pristine, dir);
        the_file(dir, "wal", ".wal", wal, sizeof wal);
        ASSERT_EQ(truncate(wal, cut), 0);
        /* read-only first: skipped in memory, the file left as it is */
        akidb *db = open_opts(dir, AKIDB_SYNC_ALWAYS, 1, 0);
        ASSERT_EQ(count_of(db, "c"), 27);
#if AKIDB_COLLECTION_STATS_VERSION >= 2
        akidb_collection_stats st;
        memset(&st, 0, sizeof st);
        st.version = AKIDB_COLLECTION_STATS_VERSION;
        ASSERT_OK(akidb_collection_stat(db, "c", &st));
        ASSERT_EQ(st.log_truncated_bytes, cut - s0);
#endif
        ASSERT_OK(akidb_close(db));
        ASSERT_EQ(file_size(wal), cut);

        logcap lc;
        memset(&lc, 0, sizeof lc);
        akidb_options o;
        akidb_options_init(&o);
        o.log_fn = capture_log;
        o.log_ctx = &lc;
        db = NULL;
        ASSERT_OK(akidb_open(dir, &o, &db));
        ASSERT_EQ(count_of(db, "c"), 27);
        int64_t cuts = 0;
        ASSERT_OK(akidb_metric_value(db, "akidb_wal_truncations_total", &cuts));
        ASSERT_EQ(cuts, 1);
#if AKIDB_COLLECTION_STATS_VERSION >= 2
        memset(&st, 0, sizeof st);
        st.version = AKIDB_COLLECTION_STATS_VERSION;
        ASSERT_OK(akidb_collection_stat(db, "c", &st));
        ASSERT_EQ(st.log_truncated_bytes, cut - s0);
        /* a version 1 caller's struct ends before the field: untouched */
        unsigned char raw[sizeof(akidb_collection_stats) + 8];
        memset(raw, 0xAB, sizeof raw);
        akidb_collection_stats *v1 = (akidb_collection_stats *)raw;
        v1->version = 1;
        ASSERT_OK(akidb_collection_stat(db, "c", v1));
        ASSERT_EQ(raw[offsetof(akidb_collection_stats, log_truncated_bytes)], 0xAB);
#endif
        if (strstr(lc.text, "no acknowledged write"))
            FAILF("the cut is reported with a claim the log cannot back: %s", lc.text);
        ASSERT(strstr(lc.text, "wal/") != NULL);
        ASSERT_EQ(file_size(wal), s0);
        ASSERT_OK(akidb_close(db));
        /* a clean reopen reports nothing */
        db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
#if AKIDB_COLLECTION_STATS_VERSION >= 2
        memset(&st, 0, sizeof st);
        st.version = AKIDB_COLLECTION_STATS_VERSION;
        ASSERT_OK(akidb_collection_stat(db, "c", &st));
        ASSERT_EQ(st.log_truncated_bytes, 0);
#endif
        ASSERT_OK(akidb_close(db));
    }
}

/* A log that ends in its sync marker after a kill is simply complete. */
TEST(defects_wal_marker_is_not_a_torn_tail)
{
    char dir[1024];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    write_and_die(dir, AKIDB_SYNC_ALWAYS, 5);
    logcap lc;
    memset(&lc, 0, sizeof lc);
    akidb_options o;
    akidb_options_init(&o);
    o.log_fn = capture_log;
    o.log_ctx = &lc;
    akidb *db = NULL;
    ASSERT_OK(akidb_open(dir, &o, &db));
    ASSERT_EQ(count_of(db, "c"), 15);
    int64_t cuts = -1;
    ASSERT_OK(akidb_metric_value(db, "akidb_wal_truncations_total", &cuts));
    ASSERT_EQ(cuts, 0);
    ASSERT_EQ(lc.n_warn, 0);
    /* appends go on after it; a second crash loses nothing */
    ASSERT_OK(insert_n(db, "c", "more", 2));
    ASSERT_OK(akidb_close(db));
    db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    ASSERT_EQ(count_of(db, "c"), 17);
    ASSERT_OK(akidb_close(db));
}

/* ---- 10. files deleted under an open handle ----------------------------------- */

static void deleted_log_case(akidb_sync_mode mode)
{
    char dir[1024], wal[1200];
    pathf(dir, sizeof dir, "%s/db-%d", akt_dir, (int)mode);
    akidb *db = open_opts(dir, mode, 0, 0);
    create_coll(db, "c", DIM);
    ASSERT_OK(insert_n(db, "c", "a", 5));
    the_file(dir, "wal", ".wal", wal, sizeof wal);
    ASSERT_EQ(unlink(wal), 0);
    /* the next write is not acknowledged, nor any after it */
    ASSERT_RC(insert_n(db, "c", "b", 1), AKIDB_IOERR);
    assert_msg_has("deleted");
    ASSERT_RC(insert_n(db, "c", "c", 1), AKIDB_IOERR);
    uint64_t n = count_of(db, "c");
    /* INTERVAL applies before the shared fsync finds out: the failed write
     * is visible (as for a failed fsync) but was not acknowledged */
    ASSERT(n == 5 || (mode == AKIDB_SYNC_INTERVAL && n == 6));
    /* a checkpoint writes everything out and makes a new log */
    ASSERT_OK(akidb_checkpoint(db, "c"));
    ASSERT(exists(wal));
    ASSERT_OK(insert_n(db, "c", "d", 2));
    uint64_t acked = n + 2;
    ASSERT_OK(akidb_close(db));
    db = open_opts(dir, mode, 0, 0);
    ASSERT_EQ(count_of(db, "c"), acked);
    /* deleted again, then closed: close writes it out, nothing is lost */
    the_file(dir, "wal", ".wal", wal, sizeof wal);
    ASSERT_EQ(unlink(wal), 0);
    ASSERT_OK(akidb_close(db));
    db = open_opts(dir, mode, 0, 0);
    ASSERT_EQ(count_of(db, "c"), acked);
    ASSERT_OK(akidb_close(db));
}

TEST(defects_deleted_log_always) { deleted_log_case(AKIDB_SYNC_ALWAYS); }
TEST(defects_deleted_log_interval) { deleted_log_case(AKIDB_SYNC_INTERVAL); }
TEST(defects_deleted_log_none) { deleted_log_case(AKIDB_SYNC_NONE); }

/* A crash after the log was deleted and a write refused: what was
 * acknowledged before is still in the (unlinked) file only, so reopening
 * cannot have it, and must not pretend; but no write after the deletion
 * was acknowledged. */
TEST(defects_deleted_log_then_crash)
{
    char dir[1024];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    akidb *db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    create_coll(db, "c", DIM);
    ASSERT_OK(insert_n(db, "c", "a", 3));
    ASSERT_OK(akidb_close(db));   /* 3 documents in the checkpoint */
    int fds[2];
    ASSERT(pipe(fds) == 0);
    pid_t pid = akt_fork_child();
    if (pid == 0) {
        close(fds[0]);
        akidb *w = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
        char wal[1200];
        the_file(dir, "wal", ".wal", wal, sizeof wal);
        unlink(wal);
        int acked = 0;
        for (int i = 0; i < 5; i++)
            acked += insert_n(w, "c", "x", 1) == AKIDB_OK;
        ASSERT_EQ(write(fds[1], &acked, sizeof acked), (ssize_t)sizeof acked);
        _exit(0);   /* dies without closing */
    }
    close(fds[1]);
    int acked = -1;
    ASSERT_EQ(read(fds[0], &acked, sizeof acked), (ssize_t)sizeof acked);
    close(fds[0]);
    ASSERT_EQ(child_exit(pid, 30, "writer"), 0);
    ASSERT_EQ(acked, 0);
    /* the log is gone for good: the open says so, it does not pass
     * silently with the documents the log held missing */
    akidb *r = NULL;
    ASSERT_RC(try_open(dir, AKIDB_SYNC_ALWAYS, 0, &r), AKIDB_CORRUPT);
    assert_msg_has("wal/");
}

TEST(defects_deleted_checkpoint)
{
    char dir[1024], ckdir[1100];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    pathf(ckdir, sizeof ckdir, "%s/ckpt", dir);
    akidb *db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    create_coll(db, "c", DIM);
    ASSERT_OK(insert_n(db, "c", "a", 5));
    ASSERT_OK(akidb_checkpoint(db, "c"));   /* the 5 are only in ckpt/ now */
    run_cmd("rm -rf '%s'", ckdir);
    ASSERT_RC(insert_n(db, "c", "b", 1), AKIDB_IOERR);
    assert_msg_has("checkpoint");
    ASSERT_EQ(count_of(db, "c"), 5);
    /* close writes the checkpoint again: nothing is lost */
    ASSERT_OK(akidb_close(db));
    db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    ASSERT_EQ(count_of(db, "c"), 5);
    ASSERT_OK(insert_n(db, "c", "c", 2));
    ASSERT_OK(akidb_checkpoint(db, "c"));
    /* deleted with an empty log: close still rewrites it */
    run_cmd("rm -rf '%s'", ckdir);
    ASSERT_OK(akidb_close(db));
    db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    ASSERT_EQ(count_of(db, "c"), 7);

    /* deleted, and it cannot be written again (a file where the directory
     * was): close fails, and its message tells the truth */
    run_cmd("rm -rf '%s'", ckdir);
    write_file(ckdir, "in the way", 10);
    int rc = akidb_close(db);
    ASSERT_RC(rc, AKIDB_IOERR);
    const char *m = akidb_errmsg(NULL);
    if (strstr(m, "nothing is lost") || !strstr(m, "lost") || !strstr(m, "deleted"))
        FAILF("close after losing the checkpoint says: %s", m);
}

/* ---- 14. read-only open -------------------------------------------------------- */

/* name, size and mtime of every file below dir, one line each, sorted */
static char *tree_listing(const char *dir)
{
    char *out = str_printf("%s/listing.txt", akt_dir);
    run_cmd("cd '%s' && find . -printf '%%p %%s %%T@ %%m\\n' | sort > '%s'", dir, out);
    FILE *f = fopen(out, "r");
    ASSERT(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    free(out);
    return strdup(buf);
}

/* Everything a read-only handle may do, and every write refused. */
static void read_only_checks(akidb *db, const char *outside)
{
    ASSERT_EQ(count_of(db, "c"), 12);
    float q[DIM] = { 1, 2, 3, 4 }, v[DIM] = { 0, 0, 0, 1 };
    akidb_hit hits[3];
    uint32_t nh = 0;
    ASSERT_OK(akidb_search(db, "c", q, 3, NULL, hits, &nh));
    ASSERT_EQ(nh, 3);
    uint64_t id = 0;
    ASSERT_OK(akidb_lookup(db, "c", "r-3", &id));
    char *meta = NULL;
    ASSERT_OK(akidb_get(db, "c", id, NULL, &meta));
    ASSERT(meta && strstr(meta, "\"i\": 3"));
    akidb_free(meta);
    akidb_snapshot_info **list = NULL;
    size_t n = 0;
    ASSERT_OK(akidb_snapshot_list(db, "c", &list, &n));
    ASSERT_EQ(n, 1);
    char sid[AKIDB_SNAPSHOT_ID_LEN];
    snprintf(sid, sizeof sid, "%s", list[0]->id);
    akidb_free(list);
    void *val = NULL;
    size_t len = 0;
    ASSERT_OK(akidb_kv_get(db, "app", "k", &val, &len));
    ASSERT_EQ(len, 5);
    akidb_free(val);
    char **names = NULL;
    ASSERT_OK(akidb_collection_list(db, &names, &n));
    ASSERT_EQ(n, 1);
    akidb_free(names);
    akidb_dlq_entry **dl = NULL;
    ASSERT_OK(akidb_dlq_list(db, &dl, &n));
    akidb_free(dl);
    ASSERT_OK(akidb_upload_wait(db));
    ASSERT_OK(akidb_export_parquet(db, "c", outside));   /* a file outside the database */

    const char *ext[1] = { "new" };
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, DIM, AKIDB_METRIC_L2);
    ASSERT_RC(akidb_insert(db, "c", 1, v, NULL, NULL, NULL), AKIDB_READONLY);
    ASSERT_RC(akidb_upsert(db, "c", 1, v, ext, NULL, NULL), AKIDB_READONLY);
    ASSERT_RC(akidb_delete(db, "c", id), AKIDB_READONLY);
    ASSERT_RC(akidb_collection_create(db, "d", &cfg), AKIDB_READONLY);
    ASSERT_RC(akidb_collection_drop(db, "c"), AKIDB_READONLY);
    ASSERT_RC(akidb_checkpoint(db, "c"), AKIDB_READONLY);
    ASSERT_RC(akidb_checkpoint(db, NULL), AKIDB_READONLY);
    char nid[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_RC(akidb_snapshot_create(db, "c", nid, sizeof nid), AKIDB_READONLY);
    ASSERT_RC(akidb_snapshot_restore(db, "c", NULL), AKIDB_READONLY);
    ASSERT_RC(akidb_snapshot_restore(db, "c", sid), AKIDB_READONLY);
    ASSERT_RC(akidb_snapshot_delete(db, "c", sid), AKIDB_READONLY);
    ASSERT_RC(akidb_kv_put(db, "app", "k", "x", 1), AKIDB_READONLY);
    ASSERT_RC(akidb_kv_delete(db, "app", "k"), AKIDB_READONLY);
    ASSERT_RC(akidb_upload_file(db, "up/x", outside), AKIDB_READONLY);
    ASSERT_RC(akidb_dlq_retry(db, 0), AKIDB_READONLY);
    ASSERT_RC(akidb_dlq_purge(db, 0), AKIDB_READONLY);
    uint64_t rows = 0;
    int rc = akidb_import_parquet(db, "d", outside, NULL, &rows);
    ASSERT_RC(rc, AKIDB_READONLY);
    ASSERT_EQ(rows, 0);
    ASSERT_EQ(count_of(db, "c"), 12);
}

static void make_ro_fixture(const char *dir)
{
    akidb *db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    create_coll(db, "c", DIM);
    ASSERT_OK(insert_n(db, "c", "r", 10));
    char sid[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_OK(akidb_snapshot_create(db, "c", sid, sizeof sid));
    ASSERT_OK(akidb_kv_put(db, "app", "k", "hello", 5));
    ASSERT_OK(akidb_close(db));
    /* two more only in the log: a writer that died (a replay, and a
     * torn-free log ending in its sync marker) */
    pid_t pid = akt_fork_child();
    if (pid == 0) {
        akidb *w = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
        _exit(insert_n(w, "c", "late", 2) == AKIDB_OK ? 0 : 1);
    }
    ASSERT_EQ(child_exit(pid, 30, "writer"), 0);
}

TEST(defects_read_only_open)
{
    char dir[1024], missing[1100], empty[1100], outside[1100];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    pathf(missing, sizeof missing, "%s/nothing-here", akt_dir);
    pathf(empty, sizeof empty, "%s/empty", akt_dir);
    pathf(outside, sizeof outside, "%s/export.parquet", akt_dir);

    /* no database: NOTFOUND, and nothing is created */
    akidb *db = (akidb *)1;
    ASSERT_RC(try_open(missing, AKIDB_SYNC_ALWAYS, 1, &db), AKIDB_NOTFOUND);
    ASSERT(db == NULL);
    ASSERT(!exists(missing));
    ASSERT_EQ(mkdir(empty, 0755), 0);
    ASSERT_RC(try_open(empty, AKIDB_SYNC_ALWAYS, 1, &db), AKIDB_NOTFOUND);
    ASSERT_EQ(count_entries(empty, ""), 0);

    make_ro_fixture(dir);
    char *before = tree_listing(dir);
    db = open_opts(dir, AKIDB_SYNC_ALWAYS, 1, 0);
    akidb *db2 = open_opts(dir, AKIDB_SYNC_ALWAYS, 1, 0);   /* readers share */
    read_only_checks(db, outside);
    ASSERT_EQ(count_of(db2, "c"), 12);
    akidb *w = NULL;
    ASSERT_RC(try_open(dir, AKIDB_SYNC_ALWAYS, 0, &w), AKIDB_BUSY);
    ASSERT_OK(akidb_close(db2));
    ASSERT_OK(akidb_close(db));
    char *after = tree_listing(dir);
    if (strcmp(before, after) != 0)
        FAILF("a read-only open changed the directory:\n--- before\n%s--- after\n%s", before,
              after);
    free(before);
    free(after);
    /* and a read-write open afterwards finds everything */
    db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
    ASSERT_EQ(count_of(db, "c"), 12);
    ASSERT_OK(akidb_close(db));
}

/* In a child: a private mount namespace with dir bind-mounted read-only
 * over itself.  Returns 0, or an errno when the kernel does not allow it. */
static int ro_bind_mount(const char *dir)
{
    if (unshare(CLONE_NEWNS) != 0)
        return errno;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return errno;
    if (mount(dir, dir, NULL, MS_BIND, NULL) != 0)
        return errno;
    if (mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) != 0)
        return errno;
    return 0;
}

/* On read-only media: a read-only bind mount.  Both after a clean close
 * (no SQLite -wal file) and after a writer was killed (a -wal and -shm
 * file left). */
TEST(defects_read_only_mount)
{
    char dir[1024], outside[1100], probe[1100];
    pathf(dir, sizeof dir, "%s/db", akt_dir);
    pathf(outside, sizeof outside, "%s/export.parquet", akt_dir);
    pathf(probe, sizeof probe, "%s/probe", dir);
    make_ro_fixture(dir);
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            /* a writer killed with SQLite's journal not folded back */
            int fds[2];
            ASSERT(pipe(fds) == 0);
            pid_t pid = akt_fork_child();
            if (pid == 0) {
                close(fds[0]);
                akidb *w = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, 0);
                if (akidb_kv_put(w, "app", "k", "hello", 5) != AKIDB_OK)
                    _exit(1);
                ASSERT_EQ(write(fds[1], "k", 1), 1);
                for (;;)
                    pause();
            }
            close(fds[1]);
            char ch;
            ASSERT_EQ(read(fds[0], &ch, 1), 1);
            close(fds[0]);
            kill(pid, SIGKILL);
            akt_wait_child(pid, 30, "killed writer");
            char walf[1200];
            pathf(walf, sizeof walf, "%s/akidb.db-wal", dir);
            ASSERT(file_size(walf) > 0);
        }
        pid_t pid = akt_fork_child();
        if (pid == 0) {
            int err = ro_bind_mount(dir);
            if (err) {
                fprintf(stderr, "cannot bind-mount %s read-only: %s\n", dir, strerror(err));
                _exit(2);
            }
            /* really read-only */
            if (open(probe, O_WRONLY | O_CREAT, 0644) >= 0 || errno != EROFS)
                _exit(3);
            akidb *w = NULL;
            int rc = try_open(dir, AKIDB_SYNC_ALWAYS, 0, &w);
            if (rc == AKIDB_OK || rc == AKIDB_BUSY)
                _exit(4);   /* a writer cannot work here and must say so */
            akidb *db = open_opts(dir, AKIDB_SYNC_ALWAYS, 1, 0);
            read_only_checks(db, outside);
            ASSERT_OK(akidb_close(db));
            _exit(0);
        }
        int code = child_exit(pid, 60, "read-only mount");
        if (code == 2)
            FAILF("this test needs a read-only bind mount (unshare + mount, as root); it "
                  "could not make one (see above), so read-only media are NOT tested");
        ASSERT_EQ(code, 0);
    }
}

/* ---- file_mode ------------------------------------------------------------------- */

static void expect_mode(const char *path, unsigned want)
{
    struct stat st;
    if (stat(path, &st) != 0)
        FAILF("%s: %s", path, strerror(errno));
    if ((st.st_mode & 0777) != want)
        FAILF("%s has mode 0%o, expected 0%o", path, st.st_mode & 0777, want);
}

static void file_mode_case(uint32_t file_mode, unsigned want_file, unsigned want_dir)
{
    char dir[1024], p[1300];
    pathf(dir, sizeof dir, "%s/db-%o", akt_dir, file_mode);
    mode_t old = umask(022);
    akidb *db = open_opts(dir, AKIDB_SYNC_ALWAYS, 0, file_mode);
    create_coll(db, "c", DIM);
    ASSERT_OK(insert_n(db, "c", "m", 4));
    ASSERT_OK(akidb_checkpoint(db, "c"));
    ASSERT_OK(insert_n(db, "c", "n", 1));
    char sid[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_OK(akidb_snapshot_create(db, "c", sid, sizeof sid));
    ASSERT_OK(akidb_kv_put(db, "app", "k", "v", 1));
    /* while open: SQLite's journal files exist */
    const char *files[] = { "akidb.db", "akidb.db-wal", "akidb.db-shm", "LOCK" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        pathf(p, sizeof p, "%s/%s", dir, files[i]);
        expect_mode(p, want_file);
    }
    the_file(dir, "wal", ".wal", p, sizeof p);
    expect_mode(p, want_file);
    the_file(dir, "ckpt", ".ckpt", p, sizeof p);
    expect_mode(p, want_file);
    char sdir[1100];
    pathf(sdir, sizeof sdir, "%s/objects/snapshots/c", dir);
    pathf(p, sizeof p, "%s/%s.parquet", sdir, sid);
    expect_mode(p, want_file);
    const char *dirs[] = { "", "/wal", "/ckpt", "/tmp", "/objects", "/objects/snapshots",
                           "/objects/snapshots/c" };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        pathf(p, sizeof p, "%s%s", dir, dirs[i]);
        expect_mode(p, want_dir);
    }
    /* an export is a file the library creates too */
    char ex[1200];
    pathf(ex, sizeof ex, "%s/export-%o.parquet", akt_dir, file_mode);
    ASSERT_OK(akidb_export_parquet(db, "c", ex));
    expect_mode(ex, want_file);
    /* a log made anew after a deletion gets it too */
    the_file(dir, "wal", ".wal", p, sizeof p);
    ASSERT_EQ(unlink(p), 0);
    ASSERT_OK(akidb_checkpoint(db, "c"));
    expect_mode(p, want_file);
    ASSERT_OK(akidb_close(db));
    umask(old);
}

TEST(defects_file_mode)
{
    file_mode_case(0600, 0600, 0700);
    file_mode_case(0640, 0640, 0750);
    file_mode_case(0, 0644, 0755);   /* the default */
}
