/*
 * error.c - thread-local error messages, the result-code table, the log
 * callback, the UTF-8 check and the quoting of untrusted text in messages.
 *
 * Every public call starts by clearing the calling thread's error and ends
 * with either AKIDB_OK or a code whose message was recorded here, so
 * akidb_errmsg() always describes the calling thread's last call.  Thread-
 * local storage (not a per-handle buffer) is what lets server threads share
 * one handle, and lets akidb_open() report why it failed before any handle
 * exists.
 */
#include <stdio.h>
#include <string.h>

#include "common/env.h"
#include "common/error.h"

static _Thread_local struct {
    int rc;
    char msg[512];
} thread_err;

int akidb__err_v(int rc, const char *fmt, va_list ap)
{
    if (fmt)
        vsnprintf(thread_err.msg, sizeof thread_err.msg, fmt, ap);
    else
        thread_err.msg[0] = '\0';
    thread_err.rc = rc;
    return rc;
}

int akidb__err(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    akidb__err_v(rc, fmt, ap);
    va_end(ap);
    return rc;
}

void akidb__err_clear(void)
{
    thread_err.rc = AKIDB_OK;
}

int akidb__err_is_set(void)
{
    return thread_err.rc != AKIDB_OK;
}

const char *akidb__errmsg(void)
{
    if (thread_err.rc == AKIDB_OK)
        return akidb__errstr(AKIDB_OK);
    return thread_err.msg;
}

const char *akidb__errstr(int rc)
{
    switch (rc) {
#define AKIDB__ERRSTR_CASE(name, value, text) case AKIDB_##name: return text;
    AKIDB_ERRNO_MAP(AKIDB__ERRSTR_CASE)
#undef AKIDB__ERRSTR_CASE
    }
    return "unknown error";
}

const char *akidb__errname(int rc)
{
    switch (rc) {
#define AKIDB__ERRNAME_CASE(name, value, text) case AKIDB_##name: return "AKIDB_" #name;
    AKIDB_ERRNO_MAP(AKIDB__ERRNAME_CASE)
#undef AKIDB__ERRNAME_CASE
    }
    return "AKIDB_UNKNOWN";
}

size_t akidb__utf8_len(const unsigned char *s)
{
    uint32_t cp;
    size_t len;
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) { len = 2; cp = s[0] & 0x1F; }
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) { len = 3; cp = s[0] & 0x0F; }
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) { len = 4; cp = s[0] & 0x07; }
    else return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates, beyond U+10FFFF, and the C1 controls
     * (U+0080..U+009F: not printable) are all refused. */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp <= 0x9F))
        return 0;
    return len;
}

int akidb__utf8_valid(const char *s, size_t len, size_t *bad_at)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* The lead byte says how long the sequence claims to be; check that
         * it fits before akidb__utf8_len reads its continuation bytes. */
        size_t need = u[i] < 0x80 ? 1 : u[i] < 0xE0 ? 2 : u[i] < 0xF0 ? 3 : 4;
        size_t seq = u[i] && need <= len - i ? akidb__utf8_len(u + i) : 0;
        if (seq == 0) {
            if (bad_at)
                *bad_at = i;
            return 0;
        }
        i += seq;
    }
    return 1;
}

void akidb__log(const akidb__env *env, akidb_log_level level, const char *fmt, ...)
{
    if (!env->log_fn)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    env->log_fn(env->log_ctx, level, msg);
}

const char *akidb__quote(char *buf, size_t buf_len, const char *s, size_t max)
{
    /* Valid UTF-8 passes through so names read as typed; control bytes,
     * quotes and invalid sequences are escaped, so the message is always
     * printable, valid UTF-8 (the server puts it in JSON). */
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, i = 0;
    while (u[i] && i < max && o + 5 < buf_len) {
        size_t seq = u[i] >= 0x80 ? akidb__utf8_len(u + i) : 0;
        if (seq && o + seq + 1 < buf_len) {
            memcpy(buf + o, u + i, seq);
            o += seq;
            i += seq;
        } else if (u[i] >= 0x20 && u[i] < 0x7f && u[i] != '"' && u[i] != '\\') {
            buf[o++] = (char)u[i++];
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[u[i] >> 4];
            buf[o++] = hex[u[i] & 15];
            i++;
        }
    }
    if (u[i] && o + 4 <= buf_len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}
