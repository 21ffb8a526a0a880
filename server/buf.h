/*
 * buf.h - a growable byte buffer for the server (header only).
 *
 * The HTTP layer accumulates URLs, header fields and bodies that arrive in
 * pieces, and the response writers build text; both want "append, with a
 * hard cap, and tell me when the cap is hit" rather than a silent
 * truncation.  The buffer always keeps one spare byte and a NUL after the
 * data, so it can be handed out as a C string.  Reusable: includes nothing
 * from the server.
 */
#ifndef AKIDB_SERVER_BUF_H
#define AKIDB_SERVER_BUF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *data;   /* NULL until the first append; NUL-terminated after it */
    size_t len;
    size_t cap;
} sbuf;

/* Make room for `more` bytes beyond len (plus the NUL).  Returns 0 or -1
 * (out of memory or overflow); the buffer is unchanged on failure. */
static inline int sbuf_reserve(sbuf *b, size_t more)
{
    if (more > (size_t)-1 / 2 - b->len - 1)
        return -1;
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static inline int sbuf_append(sbuf *b, const void *p, size_t n)
{
    if (sbuf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static inline int sbuf_puts(sbuf *b, const char *s)
{
    return sbuf_append(b, s, strlen(s));
}

static inline int sbuf_putc(sbuf *b, char c)
{
    return sbuf_append(b, &c, 1);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline int sbuf_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return sbuf_append(b, small, (size_t)n);
    if (sbuf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Forget the contents but keep the allocation. */
static inline void sbuf_reset(sbuf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static inline void sbuf_free(sbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Hand the contents to the caller (free() it); the buffer becomes empty.
 * Never NULL unless out of memory: an empty buffer gives "". */
static inline char *sbuf_take(sbuf *b)
{
    if (!b->data && sbuf_reserve(b, 0) != 0)
        return NULL;
    if (b->len == 0)
        b->data[0] = '\0';
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

#endif /* AKIDB_SERVER_BUF_H */
