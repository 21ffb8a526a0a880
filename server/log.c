/*
 * log.c - logfmt lines, one write(2) each (see log.h).
 *
 * Quoting follows the common logfmt readers (Grafana Loki, go-logfmt):
 * a bare value is printable ASCII without space, '"' or '='; anything else
 * is written in double quotes with \" \\ \n \r \t and \xHH escapes, so a
 * hostile value cannot add a field or break the line.  Non-ASCII UTF-8
 * bytes are escaped too: the log stays ASCII whatever a client sends.
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The level changes at run time (PUT /v1/admin/config) while pool threads
 * log: atomic, relaxed (a line more or less around the change is fine). */
static atomic_int g_level = LOG_INFO;
static int g_fd = 2;

void log_setup(int level, int fd)
{
    atomic_store_explicit(&g_level, level, memory_order_relaxed);
    g_fd = fd;
}

void log_set_level(int level)
{
    if (level >= LOG_ERROR && level <= LOG_DEBUG)
        atomic_store_explicit(&g_level, level, memory_order_relaxed);
}

int log_level_parse(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i + 1;
    return -1;
}

static void put(logline *l, const char *s, size_t n)
{
    /* Keep 1 byte for the newline. */
    size_t room = sizeof l->buf - 1 - l->len;
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_value(logline *l, const char *v, size_t n)
{
    int bare = n > 0;
    for (size_t i = 0; i < n && bare; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c >= 0x7f || c == '"' || c == '=' || c == '\\')
            bare = 0;
    }
    if (bare) {
        put(l, v, n);
        return;
    }
    put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        char esc[8];
        switch (c) {
        case '"':  put(l, "\\\"", 2); break;
        case '\\': put(l, "\\\\", 2); break;
        case '\n': put(l, "\\n", 2); break;
        case '\r': put(l, "\\r", 2); break;
        case '\t': put(l, "\\t", 2); break;
        default:
            if (c < ' ' || c >= 0x7f) {
                snprintf(esc, sizeof esc, "\\x%02x", c);
                put(l, esc, 4);
            } else {
                put(l, (const char *)&v[i], 1);
            }
        }
    }
    put(l, "\"", 1);
}

void log_begin(logline *l, int level, const char *msg)
{
    static const char *const names[] = {"", "error", "warn", "info", "debug"};
    l->len = 0;
    l->active = level <= atomic_load_explicit(&g_level, memory_order_relaxed);
    if (!l->active)
        return;
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    time_t t = tv.tv_sec;
    gmtime_r(&t, &tm);
    char ts[64];
    int n = snprintf(ts, sizeof ts, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000),
                     names[level >= 1 && level <= 4 ? level : 3]);
    put(l, ts, (size_t)n);
    log_kv_str(l, "msg", msg);
}

void log_kv_strn(logline *l, const char *key, const char *value, size_t n)
{
    if (!l->active)
        return;
    put(l, " ", 1);
    put(l, key, strlen(key));
    put(l, "=", 1);
    put_value(l, value ? value : "", value ? n : 0);
}

void log_kv_str(logline *l, const char *key, const char *value)
{
    log_kv_strn(l, key, value, value ? strlen(value) : 0);
}

void log_kv_int(logline *l, const char *key, int64_t value)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)value);
    log_kv_str(l, key, v);
}

void log_kv_double(logline *l, const char *key, double value)
{
    char v[48];
    snprintf(v, sizeof v, "%.3f", value);
    log_kv_str(l, key, v);
}

void log_end(logline *l)
{
    if (!l->active)
        return;
    l->buf[l->len++] = '\n';
    size_t off = 0;
    while (off < l->len) {
        ssize_t w = write(g_fd, l->buf + off, l->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;          /* nowhere to report a failing log */
        off += (size_t)w;
    }
    l->active = 0;
}

void log_msg(int level, const char *msg, const char *detail_key, const char *detail)
{
    logline l;
    log_begin(&l, level, msg);
    if (detail_key)
        log_kv_str(&l, detail_key, detail);
    log_end(&l);
}
