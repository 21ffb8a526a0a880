/*
 * log.h - one-line-per-event logging in logfmt (key=value pairs).
 *
 *   ts=2026-12-01T10:00:00.123Z level=info msg=request method=POST ...
 *
 * A line is built in a stack buffer (log_begin, log_kv_*, log_end) and
 * written with one write(2), so lines from the loop thread and from the
 * thread pool (the library's log callback) never interleave.  Values are
 * quoted and escaped when they need it, so a client-supplied string can
 * never forge a field or a second line.  Never pass a secret (API key, S3
 * secret) to these functions.  Reusable: includes nothing from the server.
 * Thread safe.
 */
#ifndef AKIDB_SERVER_LOG_H
#define AKIDB_SERVER_LOG_H

#include <stddef.h>
#include <stdint.h>

enum { LOG_ERROR = 1, LOG_WARN = 2, LOG_INFO = 3, LOG_DEBUG = 4 };

typedef struct logline {
    char buf[2048];
    size_t len;
    int active;          /* 0 when the level is filtered out */
} logline;

/* Lines above `level` are dropped.  `fd` is where lines go (2 = stderr).
 * Call before other threads log. */
void log_setup(int level, int fd);

/* Change the level (any thread). */
void log_set_level(int level);

/* Parse "error" | "warn" | "info" | "debug"; -1 if none of them. */
int log_level_parse(const char *s);

/* Start a line with ts, level and msg=`msg`. */
void log_begin(logline *l, int level, const char *msg);
void log_kv_str(logline *l, const char *key, const char *value);   /* NULL = "" */
void log_kv_strn(logline *l, const char *key, const char *value, size_t n);
void log_kv_int(logline *l, const char *key, int64_t value);
void log_kv_double(logline *l, const char *key, double value);
/* Write the line (truncated at the buffer size, still one line). */
void log_end(logline *l);

/* Shorthand for a line with only a message and one optional detail. */
void log_msg(int level, const char *msg, const char *detail_key, const char *detail);

#endif /* AKIDB_SERVER_LOG_H */
