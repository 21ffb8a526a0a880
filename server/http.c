/*
 * http.c - HTTP/1.1 connections over libuv, parsed by http-parser.
 *
 * A connection is a small state machine, all on the loop thread:
 *
 *   READING   bytes are read and parsed.  Before the first byte of a
 *             request the idle timer runs (keep-alive idle: close
 *             quietly); from the first byte the request deadline runs and
 *             is never extended, so a client trickling one header byte a
 *             second (slowloris) still gets 408 when the deadline passes.
 *   HANDLING  one complete request is with the callback.  Reading stops
 *             and the parser is paused; bytes that arrived after the
 *             request (pipelining) wait in `pending`.  This is what keeps
 *             answers in request order, and it bounds the memory a client
 *             can make us hold to one request plus one read buffer.
 *   WRITING   the answer is being written (write timer runs).  Then, with
 *             keep-alive, back to READING: the pending bytes are parsed
 *             first, reading resumes when they are used up.
 *
 * Limits are checked while parsing, not after: the URL and header bytes
 * are counted in the callbacks (http-parser's own 80 KiB ceiling is only a
 * backstop), a declared Content-Length over the limit is refused before a
 * body byte is read, and a chunked body is cut off the moment it grows past
 * the limit.  Any protocol error answers once and closes the connection,
 * because after a framing error the next request's start is unknown.
 *
 * TLS: with a context set, a connection first runs the handshake (its
 * own deadline, the handshake timeout), then every byte read is decrypted
 * before the parser sees it and every write is encrypted on its way out
 * (one uv_write per response still, so the write-completion logic is the
 * same for both).  Whatever OpenSSL wants to send (handshake records,
 * tickets, alerts) is flushed after each read.  A close_notify from the
 * peer is an end of file; ours is sent, best effort, before closing.
 *
 * Lifetime: a connection is freed when both its handles are closed and no
 * request of it is with the callback; http_respond() on a request whose
 * connection has closed just frees the request.  One read buffer serves
 * every connection (libuv calls alloc_cb and read_cb back to back on the
 * loop thread), so 10,000 idle connections cost their structs only.
 */
#include "http.h"

#include "buf.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { C_READING, C_HANDLING, C_WRITING };

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    http_server *srv;
    http_parser parser;
    int state;
    int handles_open;          /* tcp + timer not yet closed */
    int closing;
    int handed;                /* a request of ours is with the callback */
    int reject;                /* over max_connections: answer 503, close */
    int in_request;            /* first byte of a request seen */
    int msg_done;              /* on_message_complete fired */
    int keep_alive;            /* of the request being answered */
    int pending_writes;
    tls_conn *tls;             /* NULL: plain TCP */
    int tls_dead;              /* failed or peer gone: no close_notify */
    int peer_eof;              /* TLS close_notify while a request is handled */
    /* The virtual (socketless) transport of the fuzz target. */
    int is_virtual;
    void (*sink)(void *ctx, const char *p, size_t n);
    void *sink_ctx;
    int virt_done_due;         /* a response "write" completes on the timer */
    int owner_ref;             /* virtual: freed only after http_conn_feed_eof */
    int virt_close_after;
    /* Bytes read but not yet parsed (pipelined requests). */
    char *pending;
    size_t pending_len;
    /* The request being parsed, then handled. */
    http_req *req;
    sbuf url, field, value;
    int in_value;
    size_t header_bytes;
    unsigned n_headers;
    int expect_continue;
    size_t body_cap;
    /* Set by a parser callback that refuses the request. */
    int err_status;
    const char *err_code;
    const char *err_msg;
    char peer[64];
    http_conn *prev, *next;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int listening;
    int draining;
    http_limits lim;
    http_callbacks cb;
    http_conn *conns;          /* doubly linked list of open connections */
    unsigned n_conns;          /* counted against max_connections */
    unsigned n_in_flight;
    uint64_t req_seq;
    uint64_t req_seed;
    http_parser_settings settings;
    tls_ctx *tls;
    uint64_t handshake_timeout_ms;
    char *hdr_all, *hdr_tls;
    char readbuf[64 * 1024];
    char plainbuf[16 * 1024];  /* one TLS record of plaintext at a time */
    time_t date_sec;
    char date[64];
};

typedef struct wreq {
    uv_write_t w;
    http_conn *c;
    char *buf;
    int is_response;
    int close_after;
} wreq;

static void conn_close(http_conn *c);
static void conn_free(http_conn *c);
static int conn_start_reading(http_conn *c);
static void conn_process(http_conn *c, const char *data, size_t len);
static void conn_after_response(http_conn *c, int close_after);

/* ------------------------------------------------------------------------
 * Small helpers */

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default:  return "Unknown";
    }
}

static const char *http_date(http_server *s)
{
    time_t now = time(NULL);
    if (now != s->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_sec = now;
    }
    return s->date;
}

static void req_free(http_req *r)
{
    if (!r)
        return;
    free(r->path);
    free(r->query);
    free(r->authorization);
    free(r->content_type);
    free(r->client_subject);
    free(r->body);
    free(r);
}

static void conn_reset_parse(http_conn *c)
{
    sbuf_reset(&c->url);
    sbuf_reset(&c->field);
    sbuf_reset(&c->value);
    c->in_value = 0;
    c->header_bytes = 0;
    c->n_headers = 0;
    c->expect_continue = 0;
    c->body_cap = 0;
    c->in_request = 0;
    c->msg_done = 0;
    c->err_status = 0;
    c->err_code = NULL;
    c->err_msg = NULL;
}

static int ascii_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y || !x)
            return x - y;
    }
}

static int refuse(http_conn *c, int status, const char *code, const char *msg)
{
    if (!c->err_status) {
        c->err_status = status;
        c->err_code = code;
        c->err_msg = msg;
    }
    return -1;
}

/* ------------------------------------------------------------------------
 * Writing */

static void timer_start(http_conn *c, uint64_t ms);

static void on_write(uv_write_t *w, int status)
{
    wreq *wr = (wreq *)w;
    http_conn *c = wr->c;
    int is_response = wr->is_response, close_after = wr->close_after;
    free(wr->buf);
    free(wr);
    c->pending_writes--;
    if (c->closing)
        return;     /* libuv runs write callbacks before the close callback */
    if (status < 0) {
        if (c->srv->cb.on_protocol_error)
            c->srv->cb.on_protocol_error(c->srv->cb.ctx, 0, "write_failed", c->peer);
        conn_close(c);
        return;
    }
    if (is_response)
        conn_after_response(c, close_after);
}

/* Queue `buf` (taken over) for the socket as it is. */
static void sock_write(http_conn *c, char *buf, size_t len, int is_response, int close_after)
{
    if (c->closing) {
        free(buf);
        return;
    }
    if (c->is_virtual) {
        c->sink(c->sink_ctx, buf, len);
        free(buf);
        if (is_response) {
            /* Complete on the next loop turn, as a socket write would, so
             * a pipelined burst never recurses. */
            c->virt_done_due = 1;
            c->virt_close_after = close_after;
            timer_start(c, 0);
        }
        return;
    }
    wreq *wr = calloc(1, sizeof *wr);
    if (!wr) {
        free(buf);
        conn_close(c);
        return;
    }
    wr->c = c;
    wr->buf = buf;
    wr->is_response = is_response;
    wr->close_after = close_after;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    c->pending_writes++;
    int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        c->pending_writes--;
        free(buf);
        free(wr);
        conn_close(c);
    }
}

/* Send what OpenSSL has queued (handshake, tickets, alerts). */
static void tls_flush(http_conn *c)
{
    size_t n;
    char *out = tls_conn_take_out(c->tls, &n);
    if (out)
        sock_write(c, out, n, 0, 0);
}

/* Queue `buf` (plaintext, taken over) for writing. */
static void conn_write(http_conn *c, char *buf, size_t len, int is_response, int close_after)
{
    if (!c->tls || c->closing) {
        sock_write(c, buf, len, is_response, close_after);
        return;
    }
    int rc = tls_conn_write(c->tls, buf, len);
    free(buf);
    size_t n = 0;
    char *out = rc == 0 ? tls_conn_take_out(c->tls, &n) : NULL;
    if (!out) {
        c->tls_dead = 1;
        conn_close(c);
        return;
    }
    sock_write(c, out, n, is_response, close_after);
}

/* A request id for an answer that has none (the HTTP layer's own). */
static void make_request_id(http_server *s, char out[65])
{
    uint64_t x = s->req_seed ^ (++s->req_seq * 0x9E3779B97F4A7C15ull);
    x ^= x >> 31;
    snprintf(out, 65, "%016llx", (unsigned long long)x);
}

/* Build and queue a whole response. */
static void conn_send(http_conn *c, int status, const char *request_id, const char *headers,
                      const char *ctype, const char *body, size_t body_len, int close_after)
{
    sbuf b = {0};
    int no_body = status == 204 || status == 304 || status < 200;
    sbuf_printf(&b, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: akidb\r\n", status,
                http_status_text(status), http_date(c->srv));
    if (!no_body) {
        sbuf_printf(&b, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                    ctype ? ctype : "application/json", body_len);
    }
    sbuf_puts(&b, close_after ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
    char own_id[65];
    if (!request_id || !request_id[0]) {
        make_request_id(c->srv, own_id);
        request_id = own_id;
    }
    sbuf_printf(&b, "X-Request-Id: %s\r\n", request_id);
    if (c->srv->hdr_all)
        sbuf_puts(&b, c->srv->hdr_all);
    if (c->tls && c->srv->hdr_tls)
        sbuf_puts(&b, c->srv->hdr_tls);
    if (headers)
        sbuf_puts(&b, headers);
    sbuf_puts(&b, "\r\n");
    if (!no_body && body_len)
        sbuf_append(&b, body, body_len);
    if (!b.data) {            /* out of memory: nothing sensible to send */
        conn_close(c);
        return;
    }
    size_t len = b.len;
    c->state = C_WRITING;
    timer_start(c, c->srv->lim.write_timeout_ms);
    conn_write(c, sbuf_take(&b), len, 1, close_after);
}

/* An answer the HTTP layer gives by itself; the connection closes after. */
static void conn_send_error(http_conn *c, int status, const char *code, const char *msg,
                            const char *extra_headers)
{
    char body[512];
    /* code and msg are fixed texts of this file: no escaping needed. */
    int n = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                     code, msg);
    if (c->srv->cb.on_protocol_error)
        c->srv->cb.on_protocol_error(c->srv->cb.ctx, status, code, c->peer);
    if (!c->is_virtual)
        uv_read_stop((uv_stream_t *)&c->tcp);
    conn_send(c, status, c->req ? c->req->request_id : NULL, extra_headers,
              "application/json", body, (size_t)n, 1);
}

/* ------------------------------------------------------------------------
 * Timers */

static void on_timer(uv_timer_t *t)
{
    http_conn *c = t->data;
    if (c->closing)
        return;
    if (c->is_virtual) {
        if (c->virt_done_due) {
            c->virt_done_due = 0;
            conn_after_response(c, c->virt_close_after);
        }
        return;
    }
    switch (c->state) {
    case C_READING:
        if (c->in_request || c->pending_len) {
            conn_send_error(c, 408, "REQUEST_TIMEOUT",
                            "the request was not received completely in time", NULL);
        } else if (c->tls && !tls_conn_ready(c->tls)) {
            c->tls_dead = 1;
            if (c->srv->cb.on_tls_handshake)
                c->srv->cb.on_tls_handshake(c->srv->cb.ctx, 0, "handshake timeout", c->peer);
            conn_close(c);
        } else {
            if (c->srv->cb.on_protocol_error)
                c->srv->cb.on_protocol_error(c->srv->cb.ctx, 0, "idle_timeout", c->peer);
            conn_close(c);
        }
        break;
    case C_WRITING:
        if (c->srv->cb.on_protocol_error)
            c->srv->cb.on_protocol_error(c->srv->cb.ctx, 0, "write_timeout", c->peer);
        conn_close(c);
        break;
    default:
        break;
    }
}

static void timer_start(http_conn *c, uint64_t ms)
{
    if (c->closing)
        return;
    if (c->is_virtual && !c->virt_done_due)
        return;             /* the fuzz target runs without clocks */
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ------------------------------------------------------------------------
 * Closing */

static void on_handle_closed(uv_handle_t *h)
{
    http_conn *c = h->data;
    if (--c->handles_open == 0 && !c->handed && !c->owner_ref)
        conn_free(c);
}

static void conn_free(http_conn *c)
{
    tls_conn_free(c->tls);
    free(c->pending);
    sbuf_free(&c->url);
    sbuf_free(&c->field);
    sbuf_free(&c->value);
    if (!c->handed)
        req_free(c->req);
    free(c);
}

static void conn_close(http_conn *c)
{
    if (c->closing)
        return;
    if (c->tls && !c->tls_dead && tls_conn_ready(c->tls)) {
        /* close_notify, best effort: libuv tries a write at once, so it
         * usually leaves before the socket closes. */
        c->tls_dead = 1;
        tls_conn_shutdown(c->tls);
        tls_flush(c);
        if (c->closing)
            return;         /* the write failed and closed us */
    }
    c->closing = 1;
    http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (!c->reject) {
        s->n_conns--;
        if (s->cb.on_connection)
            s->cb.on_connection(s->cb.ctx, 0);
    }
    uv_timer_stop(&c->timer);
    /* A request being parsed is ours to free; one with the callback is
     * freed by http_respond(). */
    if (!c->handed) {
        req_free(c->req);
        c->req = NULL;
    }
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (!c->is_virtual)
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* ------------------------------------------------------------------------
 * Parser callbacks */

static int count_header_bytes(http_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->srv->lim.max_header_bytes)
        return refuse(c, 431, "HEADERS_TOO_LARGE", "the request headers are too large");
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http_conn *c = p->data;
    conn_reset_parse(c);
    c->in_request = 1;
    req_free(c->req);
    c->req = calloc(1, sizeof *c->req);
    if (!c->req)
        return refuse(c, 503, "UNAVAILABLE", "out of memory");
    c->req->conn = c;
    c->req->start_ns = uv_hrtime();
    snprintf(c->req->peer, sizeof c->req->peer, "%s", c->peer);
    if (c->tls) {
        const char *subj = tls_conn_peer_subject(c->tls);
        c->req->tls = 1;
        if (subj && !(c->req->client_subject = strdup(subj)))
            return refuse(c, 503, "UNAVAILABLE", "out of memory");
    }
    timer_start(c, c->srv->lim.request_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    http_conn *c = p->data;
    if (c->url.len + n > c->srv->lim.max_url_bytes)
        return refuse(c, 414, "URI_TOO_LONG", "the request URL is too long");
    if (count_header_bytes(c, n) || sbuf_append(&c->url, at, n))
        return refuse(c, 431, "HEADERS_TOO_LARGE", "the request headers are too large");
    return 0;
}

static int take_value(char **dst, const sbuf *v)
{
    free(*dst);
    *dst = strdup(v->data ? v->data : "");
    return *dst ? 0 : -1;
}

static int request_id_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
            return 0;
    }
    return 1;
}

/* One complete header line: keep the few the server uses. */
static int commit_header(http_conn *c)
{
    if (!c->field.len)
        return 0;
    if (++c->n_headers > c->srv->lim.max_headers)
        return refuse(c, 431, "HEADERS_TOO_LARGE", "too many request headers");
    const char *f = c->field.data;
    const sbuf *v = &c->value;
    int rc = 0;
    if (ascii_casecmp(f, "authorization") == 0)
        rc = take_value(&c->req->authorization, v);
    else if (ascii_casecmp(f, "content-type") == 0)
        rc = take_value(&c->req->content_type, v);
    else if (ascii_casecmp(f, "x-request-id") == 0) {
        if (v->data && request_id_ok(v->data, v->len))
            memcpy(c->req->request_id, v->data, v->len + 1);
    } else if (ascii_casecmp(f, "expect") == 0) {
        if (v->data && ascii_casecmp(v->data, "100-continue") == 0)
            c->expect_continue = 1;
        else
            return refuse(c, 417, "EXPECTATION_FAILED", "unsupported Expect header");
    }
    sbuf_reset(&c->field);
    sbuf_reset(&c->value);
    if (rc)
        return refuse(c, 503, "UNAVAILABLE", "out of memory");
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    http_conn *c = p->data;
    if (c->in_value) {
        if (commit_header(c))
            return -1;
        c->in_value = 0;
    }
    if (count_header_bytes(c, n) || sbuf_append(&c->field, at, n))
        return refuse(c, 431, "HEADERS_TOO_LARGE", "the request headers are too large");
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    http_conn *c = p->data;
    c->in_value = 1;
    if (count_header_bytes(c, n) || sbuf_append(&c->value, at, n))
        return refuse(c, 431, "HEADERS_TOO_LARGE", "the request headers are too large");
    return 0;
}

static int split_url(http_conn *c)
{
    const char *u = c->url.data ? c->url.data : "";
    if (u[0] != '/') {
        /* absolute-form ("http://host/path?q") is legal for HTTP/1.1. */
        struct http_parser_url pu;
        http_parser_url_init(&pu);
        if (http_parser_parse_url(u, c->url.len, 0, &pu) != 0)
            return refuse(c, 400, "BAD_REQUEST", "malformed request target");
        const char *path = "/";
        size_t plen = 1;
        if (pu.field_set & (1 << UF_PATH)) {
            path = u + pu.field_data[UF_PATH].off;
            plen = pu.field_data[UF_PATH].len;
        }
        c->req->path = strndup(path, plen);
        if (pu.field_set & (1 << UF_QUERY))
            c->req->query = strndup(u + pu.field_data[UF_QUERY].off,
                                    pu.field_data[UF_QUERY].len);
    } else {
        const char *q = strchr(u, '?');
        c->req->path = q ? strndup(u, (size_t)(q - u)) : strdup(u);
        if (q)
            c->req->query = strdup(q + 1);
    }
    if (!c->req->path)
        return refuse(c, 503, "UNAVAILABLE", "out of memory");
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_conn *c = p->data;
    http_server *s = c->srv;
    if (c->in_value && commit_header(c))
        return -1;
    c->in_value = 0;
    if (p->http_major != 1)
        return refuse(c, 505, "HTTP_VERSION_NOT_SUPPORTED", "only HTTP/1.0 and HTTP/1.1 are served");
    if (split_url(c))
        return -1;
    c->req->method = p->method;
    c->req->method_name = http_method_str((enum http_method)p->method);
    int chunked = (p->flags & F_CHUNKED) != 0;
    if (!chunked && (p->flags & F_CONTENTLENGTH)) {
        if (p->content_length > s->lim.max_body_bytes)
            return refuse(c, 413, "PAYLOAD_TOO_LARGE", "the request body is too large");
        if (p->content_length > 0) {
            if (!(c->req->body = malloc(p->content_length + 1)))
                return refuse(c, 503, "UNAVAILABLE", "out of memory");
            c->body_cap = p->content_length + 1;
        }
    }
    if (c->expect_continue && p->http_major == 1 && p->http_minor >= 1 &&
        (chunked || ((p->flags & F_CONTENTLENGTH) && p->content_length > 0))) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        char *b = malloc(sizeof cont);
        if (b) {
            memcpy(b, cont, sizeof cont);
            conn_write(c, b, sizeof cont - 1, 0, 0);
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    http_conn *c = p->data;
    http_req *r = c->req;
    size_t max = c->srv->lim.max_body_bytes;
    if (r->body_len + n > max)
        return refuse(c, 413, "PAYLOAD_TOO_LARGE", "the request body is too large");
    if (r->body_len + n + 1 > c->body_cap) {
        /* Chunked (or no length): grow geometrically, capped at the limit
         * plus the NUL, so a body of many small chunks stays linear. */
        size_t cap = c->body_cap ? c->body_cap : 16 * 1024;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *nb = realloc(r->body, cap);
        if (!nb)
            return refuse(c, 503, "UNAVAILABLE", "out of memory");
        r->body = nb;
        c->body_cap = cap;
    }
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn *c = p->data;
    c->msg_done = 1;
    c->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    if (!c->req->body) {
        c->req->body = calloc(1, 1);
        if (!c->req->body)
            return refuse(c, 503, "UNAVAILABLE", "out of memory");
    }
    http_parser_pause(p, 1);
    return 0;
}

/* ------------------------------------------------------------------------
 * Dispatch and the request cycle */

static void dispatch(http_conn *c)
{
    http_server *s = c->srv;
    http_req *r = c->req;
    if (!r->request_id[0])
        make_request_id(s, r->request_id);
    c->state = C_HANDLING;
    c->handed = 1;
    uv_timer_stop(&c->timer);
    if (!c->is_virtual)
        uv_read_stop((uv_stream_t *)&c->tcp);
    s->n_in_flight++;
    s->cb.on_request(s->cb.ctx, r);
}

void http_respond(http_req *r, int status, const char *headers, const char *ctype,
                  const char *body, size_t body_len)
{
    http_conn *c = r->conn;
    http_server *s = c->srv;
    s->n_in_flight--;
    c->handed = 0;
    c->req = NULL;
    if (c->closing) {
        req_free(r);
        if (c->handles_open == 0 && !c->owner_ref)
            conn_free(c);   /* both handles closed while we were handling */
        return;
    }
    int close_after = !c->keep_alive || s->draining;
    conn_send(c, status, r->request_id, headers, ctype, body, body_len, close_after);
    req_free(r);
}

/* The answer went out: close, or go on with the next request. */
static void conn_after_response(http_conn *c, int close_after)
{
    if (close_after || c->srv->draining || c->peer_eof) {
        conn_close(c);
        return;
    }
    c->state = C_READING;
    conn_reset_parse(c);
    http_parser_pause(&c->parser, 0);
    if (c->pending_len) {
        char *p = c->pending;
        size_t n = c->pending_len;
        c->pending = NULL;
        c->pending_len = 0;
        conn_process(c, p, n);      /* sets the idle or request timer */
        free(p);
        /* A whole request was there (it is being handled now), or an
         * error is being answered: reading waits.  Otherwise the rest of
         * a request is still to come: read it. */
        if (c->closing || c->state != C_READING)
            return;
    } else {
        timer_start(c, c->srv->lim.idle_timeout_ms);
    }
    if (!c->is_virtual && conn_start_reading(c) != 0)
        conn_close(c);
}

static int map_parser_error(http_conn *c, enum http_errno e, const char **code,
                            const char **msg)
{
    if (c->err_status) {
        *code = c->err_code;
        *msg = c->err_msg;
        return c->err_status;
    }
    if (e == HPE_HEADER_OVERFLOW) {
        *code = "HEADERS_TOO_LARGE";
        *msg = "the request headers are too large";
        return 431;
    }
    *code = "BAD_REQUEST";
    *msg = http_errno_description(e);
    return 400;
}

static void conn_process(http_conn *c, const char *data, size_t len)
{
    size_t n = http_parser_execute(&c->parser, &c->srv->settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED && c->msg_done) {
        if (n < len) {
            char *rest = malloc(len - n);
            if (!rest) {
                conn_close(c);
                return;
            }
            memcpy(rest, data + n, len - n);
            free(c->pending);
            c->pending = rest;
            c->pending_len = len - n;
        }
        dispatch(c);
        return;
    }
    if (e != HPE_OK) {
        const char *code, *msg;
        int status = map_parser_error(c, e, &code, &msg);
        conn_send_error(c, status, code, msg, NULL);
        return;
    }
    if (!c->in_request)
        timer_start(c, c->srv->lim.idle_timeout_ms);
}

/* ------------------------------------------------------------------------
 * libuv glue */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    http_conn *c = h->data;
    buf->base = c->srv->readbuf;
    buf->len = sizeof c->srv->readbuf;
}

/* Ciphertext in: handshake, then plaintext to the parser, then whatever
 * OpenSSL has to say back.  Plaintext that arrives while a request is
 * being handled is queued by http_conn_feed, as pipelined bytes are. */
static void tls_pump(http_conn *c, const char *p, size_t n)
{
    http_server *s = c->srv;
    if (tls_conn_feed(c->tls, p, n) != 0) {
        c->tls_dead = 1;
        conn_close(c);
        return;
    }
    for (;;) {
        size_t got = 0;
        int was_ready = tls_conn_ready(c->tls);
        int r = tls_conn_read(c->tls, s->plainbuf, sizeof s->plainbuf, &got);
        if (!was_ready && tls_conn_ready(c->tls)) {
            if (s->cb.on_tls_handshake)
                s->cb.on_tls_handshake(s->cb.ctx, 1, tls_conn_version(c->tls), c->peer);
            if (!c->in_request && c->state == C_READING)
                timer_start(c, s->lim.idle_timeout_ms);
        }
        if (r == TLS_DATA) {
            http_conn_feed(c, s->plainbuf, got);
            if (c->closing)
                return;
            continue;
        }
        tls_flush(c);
        if (c->closing || r == TLS_WANT)
            return;
        c->tls_dead = 1;
        if (r == TLS_CLOSED) {
            /* The peer's end of file.  An answer being computed is still
             * sent (as with a half-closed plain socket), then we close. */
            if (c->state == C_READING && !c->handed) {
                if (c->srv->cb.on_protocol_error && c->in_request)
                    c->srv->cb.on_protocol_error(c->srv->cb.ctx, 0, "client_closed", c->peer);
                conn_close(c);
            } else {
                c->peer_eof = 1;
            }
            return;
        }
        if (!was_ready) {
            if (s->cb.on_tls_handshake)
                s->cb.on_tls_handshake(s->cb.ctx, 0, tls_conn_error(c->tls), c->peer);
        } else if (s->cb.on_protocol_error) {
            s->cb.on_protocol_error(s->cb.ctx, 0, "tls_error", c->peer);
        }
        conn_close(c);
        return;
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    http_conn *c = st->data;
    if (c->closing)
        return;
    if (nread < 0) {
        c->tls_dead = 1;
        /* EOF or error.  A request cut short is a client that went away
         * mid-request: nothing to answer. */
        if (c->srv->cb.on_protocol_error && (c->in_request || nread != UV_EOF))
            c->srv->cb.on_protocol_error(c->srv->cb.ctx, 0, "client_closed", c->peer);
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->tls)
        tls_pump(c, buf->base, (size_t)nread);
    else
        http_conn_feed(c, buf->base, (size_t)nread);
}

static int conn_start_reading(http_conn *c)
{
    return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static http_conn *conn_new(http_server *s)
{
    http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = s;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = C_READING;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 1;
    return c;
}

static void conn_link(http_server *s, http_conn *c)
{
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
}

static void on_connection(uv_stream_t *listener, int status)
{
    http_server *s = listener->data;
    if (status < 0)
        return;
    http_conn *c = conn_new(s);
    if (!c)
        return;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->handles_open = 2;
    conn_link(s, c);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->reject = 1;
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        char ip[48] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof ip);
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof ip);
            port = ntohs(a->sin6_port);
        }
        snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
    }
    if (s->n_conns >= s->lim.max_connections && s->tls) {
        /* No HTTP can be spoken before a handshake: just close. */
        c->reject = 1;
        if (s->cb.on_protocol_error)
            s->cb.on_protocol_error(s->cb.ctx, 0, "too_many_connections", c->peer);
        conn_close(c);
        return;
    }
    if (s->n_conns >= s->lim.max_connections) {
        /* Answer so the client knows to back off, then close. */
        c->reject = 1;
        conn_send_error(c, 503, "TOO_MANY_CONNECTIONS",
                        "the server has too many open connections; retry later",
                        "Retry-After: 1\r\n");
        return;
    }
    if (s->tls && !(c->tls = tls_conn_new(s->tls))) {
        c->reject = 1;
        conn_close(c);
        return;
    }
    s->n_conns++;
    if (s->cb.on_connection)
        s->cb.on_connection(s->cb.ctx, 1);
    timer_start(c, c->tls ? s->handshake_timeout_ms : s->lim.idle_timeout_ms);
    if (conn_start_reading(c) != 0)
        conn_close(c);
}

/* ------------------------------------------------------------------------
 * Server */

int http_server_init(http_server **out, uv_loop_t *loop, const http_limits *limits,
                     const http_callbacks *cb)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return UV_ENOMEM;
    s->loop = loop;
    s->lim = *limits;
    s->cb = *cb;
    s->req_seed = uv_hrtime() * 0xD6E8FEB86659FD93ull;
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_value = on_header_value;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
    *out = s;
    return 0;
}

int http_server_listen(http_server *s, const char *host, int port)
{
    struct sockaddr_storage ss;
    int rc;
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc)
        return rc;
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listening = 1;
    rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    return rc;
}

int http_server_port(const http_server *s)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (!s->listening || uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &sl))
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void stop_listening(http_server *s)
{
    if (s->listening) {
        s->listening = 0;
        uv_close((uv_handle_t *)&s->listener, NULL);
    }
}

void http_server_drain(http_server *s)
{
    s->draining = 1;
    stop_listening(s);
    http_conn *c = s->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state == C_READING && !c->in_request && !c->pending_len)
            conn_close(c);
    }
}

unsigned http_server_connections(const http_server *s)
{
    return s->n_conns;
}

unsigned http_server_requests_in_flight(const http_server *s)
{
    return s->n_in_flight;
}

void http_server_close_all(http_server *s)
{
    s->draining = 1;
    stop_listening(s);
    while (s->conns)
        conn_close(s->conns);
}

void http_server_free(http_server *s)
{
    if (!s)
        return;
    free(s->hdr_all);
    free(s->hdr_tls);
    free(s);
}

void http_server_set_tls(http_server *s, tls_ctx *tls, uint64_t handshake_timeout_ms)
{
    s->tls = tls;
    s->handshake_timeout_ms = handshake_timeout_ms;
}

int http_server_set_headers(http_server *s, const char *all, const char *tls_only)
{
    char *a = all && *all ? strdup(all) : NULL;
    char *t = tls_only && *tls_only ? strdup(tls_only) : NULL;
    if ((all && *all && !a) || (tls_only && *tls_only && !t)) {
        free(a);
        free(t);
        return -1;
    }
    free(s->hdr_all);
    free(s->hdr_tls);
    s->hdr_all = a;
    s->hdr_tls = t;
    return 0;
}

void http_server_set_max_body(http_server *s, size_t max_body_bytes)
{
    s->lim.max_body_bytes = max_body_bytes;
}

/* ------------------------------------------------------------------------
 * Virtual connections */

http_conn *http_conn_virtual(http_server *s, void (*sink)(void *ctx, const char *p, size_t n),
                             void *sink_ctx)
{
    http_conn *c = conn_new(s);
    if (!c)
        return NULL;
    c->is_virtual = 1;
    c->owner_ref = 1;
    c->sink = sink;
    c->sink_ctx = sink_ctx;
    snprintf(c->peer, sizeof c->peer, "virtual");
    conn_link(s, c);
    s->n_conns++;
    return c;
}

void http_conn_feed(http_conn *c, const char *p, size_t n)
{
    if (c->closing || n == 0)
        return;
    if (c->state != C_READING) {
        /* Queue behind what is waiting, as the socket buffer would. */
        char *np = realloc(c->pending, c->pending_len + n);
        if (!np)
            return;
        memcpy(np + c->pending_len, p, n);
        c->pending = np;
        c->pending_len += n;
        return;
    }
    conn_process(c, p, n);
}

void http_conn_feed_eof(http_conn *c)
{
    c->owner_ref = 0;
    if (!c->closing)
        conn_close(c);              /* freed by the close callback */
    else if (c->handles_open == 0 && !c->handed)
        conn_free(c);
}
