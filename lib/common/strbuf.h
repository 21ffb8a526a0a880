/*
 * strbuf.h - a growing, always NUL-terminated string for building text
 * (SigV4 canonical requests, S3 XML bodies, JSON metadata on import).
 *
 * Out of memory is sticky: once an append fails, `oom` is set and later
 * appends do nothing, so a builder appends freely and checks once at the
 * end.  Memory comes from the C library (these strings are short-lived and
 * often handed to libcurl); free `p` with free().
 */
#ifndef AKIDB_STRBUF_H
#define AKIDB_STRBUF_H

#include <stdlib.h>
#include <string.h>

typedef struct akidb__str {
    char *p;
    size_t len, cap;
    int oom;
} akidb__str;

static inline void akidb__str_add(akidb__str *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = (char *)realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void akidb__str_cat(akidb__str *b, const char *s)
{
    akidb__str_add(b, s, strlen(s));
}

#endif
