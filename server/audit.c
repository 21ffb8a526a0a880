/*
 * audit.c - the audit log file: JSON lines, size rotation, fsync for
 * changes of state, counters (see audit.h).
 *
 * The size is tracked in memory (set from fstat at open), so deciding to
 * rotate costs nothing per line.  Rotation renames from the oldest down,
 * so a crash in the middle leaves every line in some file, at worst with
 * one number skipped; the directory is synced after it so the renames
 * survive a power cut along with the lines synced after them.
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"

#define FIELD_MAX 512

struct audit_log {
    pthread_mutex_t lock;
    char *path;
    int fd;
    uint64_t size, max_bytes;
    unsigned keep;
    uint64_t count[AUDIT_N][2];
    uint64_t write_errors;
    uint64_t rotations;
};

static const char *const NAMES[AUDIT_N] = {
    "none",
#define AUDIT_NAME(e, name) name,
    AUDIT_ACTIONS(AUDIT_NAME)
#undef AUDIT_NAME
};

const char *audit_action_name(int action)
{
    return action > 0 && action < AUDIT_N ? NAMES[action] : "none";
}

static int open_file(audit_log *a, char *err, size_t n)
{
    int fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, n, "cannot open the audit log %s: %s", a->path, strerror(errno));
        return -1;
    }
    struct stat st;
    /* An existing file keeps its lines but not a wider mode. */
    if (fstat(fd, &st) != 0 || ((st.st_mode & 077) && fchmod(fd, 0600) != 0)) {
        snprintf(err, n, "cannot secure the audit log %s: %s", a->path, strerror(errno));
        close(fd);
        return -1;
    }
    a->fd = fd;
    a->size = (uint64_t)st.st_size;
    return 0;
}

int audit_open(audit_log **out, const char *path, uint64_t max_bytes, unsigned keep, char *err,
               size_t n)
{
    *out = NULL;
    audit_log *a = calloc(1, sizeof *a);
    if (!a || !(a->path = strdup(path))) {
        free(a);
        snprintf(err, n, "out of memory");
        return -1;
    }
    a->fd = -1;
    a->max_bytes = max_bytes;
    a->keep = keep ? keep : 1;
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        free(a->path);
        free(a);
        snprintf(err, n, "cannot create a mutex");
        return -1;
    }
    if (open_file(a, err, n) != 0) {
        audit_close(a);
        return -1;
    }
    *out = a;
    return 0;
}

static void sync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Under the lock. */
static int rotate(audit_log *a)
{
    size_t pl = strlen(a->path) + 16;
    char *from = malloc(pl), *to = malloc(pl);
    int rc = -1;
    if (!from || !to)
        goto out;
    snprintf(to, pl, "%s.%u", a->path, a->keep);
    if (unlink(to) != 0 && errno != ENOENT)
        goto out;
    for (unsigned i = a->keep; i > 1; i--) {
        snprintf(from, pl, "%s.%u", a->path, i - 1);
        snprintf(to, pl, "%s.%u", a->path, i);
        if (rename(from, to) != 0 && errno != ENOENT)
            goto out;
    }
    snprintf(to, pl, "%s.1", a->path);
    fsync(a->fd);
    if (rename(a->path, to) != 0)
        goto out;
    close(a->fd);
    a->fd = -1;
    char err[512];
    if (open_file(a, err, sizeof err) != 0) {
        log_msg(LOG_ERROR, "audit log", "error", err);
        goto out;
    }
    sync_dir(a->path);
    a->rotations++;
    rc = 0;
out:
    free(from);
    free(to);
    return rc;
}

static void field(jw *w, const char *key, const char *v)
{
    if (!v || !v[0])
        return;
    size_t n = strlen(v);
    jw_key(w, key);
    jw_strn(w, v, n > FIELD_MAX ? FIELD_MAX : n);
}

void audit_write(audit_log *a, const audit_event *e, int durable)
{
    if (!a)
        return;
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    time_t t = tv.tv_sec;
    gmtime_r(&t, &tm);
    char ts[64];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(tv.tv_usec / 1000));
    sbuf b = {0};
    jw w;
    jw_init(&w, &b);
    jw_obj(&w);
    field(&w, "ts", ts);
    field(&w, "action", audit_action_name(e->action));
    field(&w, "result", e->ok ? "success" : "failure");
    if (e->status) {
        jw_key(&w, "status");
        jw_int(&w, e->status);
    }
    field(&w, "request_id", e->request_id);
    field(&w, "tenant", e->tenant);
    field(&w, "actor_type", e->actor_type);
    field(&w, "actor", e->actor);
    field(&w, "source", e->source);
    field(&w, "target", e->target);
    field(&w, "detail", e->detail);
    field(&w, "reason", e->reason);
    jw_obj_end(&w);
    sbuf_putc(&b, '\n');

    pthread_mutex_lock(&a->lock);
    int action = e->action > 0 && e->action < AUDIT_N ? e->action : 0;
    a->count[action][e->ok ? 1 : 0]++;
    int failed = !b.data;
    if (!failed && a->size > 0 && a->size + b.len > a->max_bytes && rotate(a) != 0)
        failed = 1;
    if (!failed && a->fd < 0)
        failed = 1;
    size_t off = 0;
    while (!failed && off < b.len) {
        ssize_t r = write(a->fd, b.data + off, b.len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            failed = 1;
        else
            off += (size_t)r;
    }
    a->size += off;
    if (!failed && durable && fdatasync(a->fd) != 0)
        failed = 1;
    if (failed)
        a->write_errors++;
    pthread_mutex_unlock(&a->lock);
    if (failed) {
        logline l;
        log_begin(&l, LOG_ERROR, "cannot write the audit log");
        log_kv_str(&l, "path", a->path);
        log_kv_str(&l, "action", audit_action_name(e->action));
        log_kv_str(&l, "error", errno ? strerror(errno) : "out of memory");
        log_end(&l);
    }
    sbuf_free(&b);
}

void audit_render_metrics(audit_log *a, sbuf *b)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    sbuf_puts(b, "# HELP akidb_audit_events_total Audit log lines, by action and result.\n"
                 "# TYPE akidb_audit_events_total counter\n");
    for (int i = 1; i < AUDIT_N; i++)
        for (int ok = 1; ok >= 0; ok--)
            sbuf_printf(b, "akidb_audit_events_total{action=\"%s\",result=\"%s\"} %llu\n",
                        NAMES[i], ok ? "success" : "failure",
                        (unsigned long long)a->count[i][ok]);
    sbuf_printf(b, "# HELP akidb_audit_write_errors_total Audit lines that could not be "
                   "written.\n# TYPE akidb_audit_write_errors_total counter\n"
                   "akidb_audit_write_errors_total %llu\n"
                   "# HELP akidb_audit_rotations_total Audit log rotations.\n"
                   "# TYPE akidb_audit_rotations_total counter\n"
                   "akidb_audit_rotations_total %llu\n",
                (unsigned long long)a->write_errors, (unsigned long long)a->rotations);
    pthread_mutex_unlock(&a->lock);
}

void audit_close(audit_log *a)
{
    if (!a)
        return;
    if (a->fd >= 0) {
        fsync(a->fd);
        close(a->fd);
    }
    pthread_mutex_destroy(&a->lock);
    free(a->path);
    free(a);
}
