/*
 * http.h - an HTTP/1.1 server on a libuv loop, parsed by http-parser.
 *
 * What it does: accepts TCP connections, parses requests (keep-alive,
 * pipelining, chunked request bodies, Expect: 100-continue), enforces the
 * limits (header bytes 431, URL bytes 414, body bytes 413, idle and request
 * timeouts 408, connection count 503 with Retry-After), and hands each
 * complete request to one callback.  Responses go back in request order:
 * a connection parses its next pipelined request only after the current
 * one has been answered, so a client can pipeline freely and a slow
 * request never reorders answers.
 *
 * TLS (optional, http_server_set_tls): the same connections, with OpenSSL
 * between the socket and the parser (tls.h).  The handshake has its own
 * deadline; a client that speaks plain HTTP to a TLS port, or fails the
 * handshake, is closed at once (there is no HTTP to answer in yet).
 *
 * Every response carries X-Request-Id (the client's when well formed,
 * else a generated one) and the headers given to http_server_set_headers
 * (security headers; Strict-Transport-Security only on TLS connections).
 *
 * What it does not do: routing, auth, JSON, the database.  It includes
 * nothing from the rest of the server (reusable, like Redis's ae.c), and
 * its error bodies use the server's JSON error shape
 * {"error": {"code": ..., "message": ...}} built here with fixed texts.
 *
 * Threads: everything here runs on the loop thread.  A handler that
 * passes work to the thread pool must call http_respond() back on the loop
 * thread (from the uv_after_work callback).
 */
#ifndef AKIDB_SERVER_HTTP_H
#define AKIDB_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tls.h"

typedef struct http_server http_server;
typedef struct http_conn http_conn;

typedef struct http_limits {
    size_t max_header_bytes;      /* request line + headers; over it: 431 */
    size_t max_url_bytes;         /* over it: 414 */
    size_t max_body_bytes;        /* declared or received; over it: 413 */
    unsigned max_headers;         /* header lines; over it: 431 */
    unsigned max_connections;     /* open at once; over it: 503 + close */
    uint64_t idle_timeout_ms;     /* keep-alive connection with no request */
    uint64_t request_timeout_ms;  /* first byte to last byte of a request; 408 */
    uint64_t write_timeout_ms;    /* a response that the peer does not read */
} http_limits;

/* A parsed request.  Owned by the HTTP layer; valid from the on_request
 * callback until http_respond() is called for it (exactly once). */
typedef struct http_req {
    http_conn *conn;
    int method;                 /* enum http_method of http_parser.h */
    const char *method_name;    /* "GET", ... */
    char *path;                 /* the URL's path, raw (not %-decoded) */
    char *query;                /* after '?', raw; NULL when absent */
    char *authorization;        /* header values, NULL when absent */
    char *content_type;
    char request_id[65];        /* X-Request-Id when sane, else generated */
    char *body;                 /* NUL-terminated; body_len bytes */
    size_t body_len;
    uint64_t start_ns;          /* uv_hrtime() when the first byte arrived */
    char peer[64];              /* "ip:port" */
    int tls;                    /* arrived over TLS */
    char *client_subject;       /* verified client certificate (RFC 2253), or NULL */
    void *user;                 /* for the callback's own use */
} http_req;

typedef struct http_callbacks {
    /* A complete request.  Call http_respond(req, ...) now or later. */
    void (*on_request)(void *ctx, http_req *req);
    /* The HTTP layer answered by itself (400/408/413/414/431/503) or
     * dropped a connection; for metrics and logs.  status 0 = dropped
     * without an answer (peer gone, idle timeout). */
    void (*on_protocol_error)(void *ctx, int status, const char *code, const char *peer);
    /* Connection count changed (accepted or closed). */
    void (*on_connection)(void *ctx, int opened);
    void *ctx;
    /* A TLS handshake ended: ok, and the protocol version ("TLSv1.3") or
     * the reason it failed (static text, never peer data).  May be NULL. */
    void (*on_tls_handshake)(void *ctx, int ok, const char *what, const char *peer);
} http_callbacks;

/* Set up a server on `loop` (no socket yet).  Returns 0 or a negative
 * libuv error. */
int http_server_init(http_server **out, uv_loop_t *loop, const http_limits *limits,
                     const http_callbacks *cb);

/* Bind and listen on host:port (IPv4 or IPv6 literal).  port 0 picks a
 * free port; http_server_port() tells which.  Returns 0 or a negative
 * libuv error. */
int http_server_listen(http_server *s, const char *host, int port);
int http_server_port(const http_server *s);

/* Serve TLS on every connection accepted from now on (borrowed; NULL turns
 * it off).  handshake_timeout_ms bounds the handshake. */
void http_server_set_tls(http_server *s, tls_ctx *tls, uint64_t handshake_timeout_ms);

/* Header lines (each ending in "\r\n") added to every response, and to
 * every response on a TLS connection.  Copied.  0 or -1 (out of memory). */
int http_server_set_headers(http_server *s, const char *all, const char *tls_only);

/* Change the body limit for requests that start from now on. */
void http_server_set_max_body(http_server *s, size_t max_body_bytes);

/* Answer `req` and release it.  `headers`: extra header lines, each ending
 * in "\r\n", or NULL.  The body is copied.  status 204/304 send no body.
 * After this call `req` is gone.  If the peer has gone away meanwhile the
 * answer is dropped quietly. */
void http_respond(http_req *req, int status, const char *headers, const char *content_type,
                  const char *body, size_t body_len);

/* Graceful shutdown, step one: stop accepting, close idle connections,
 * and from now on close every connection after its current response.
 * Requests already being read are still answered. */
void http_server_drain(http_server *s);

/* Connections still open, and requests handed out but not yet answered. */
unsigned http_server_connections(const http_server *s);
unsigned http_server_requests_in_flight(const http_server *s);

/* Close every connection now (answers in progress are dropped; requests
 * still being handled are released when http_respond() is called). */
void http_server_close_all(http_server *s);

/* Free the server once every handle is closed: call after the loop has
 * run to completion.  NULL is a no-op. */
void http_server_free(http_server *s);

/* The reason phrase of a status code ("Not Found"). */
const char *http_status_text(int status);

/* ---- In-process use (the fuzz target): a connection without a socket.
 * Bytes fed in are parsed exactly as if they had been read from TCP;
 * everything the server would write goes to `sink`.  The connection
 * closes itself when the server would close a socket. */
http_conn *http_conn_virtual(http_server *s, void (*sink)(void *ctx, const char *p, size_t n),
                             void *sink_ctx);
void http_conn_feed(http_conn *c, const char *p, size_t n);
/* The peer closed its side (EOF).  The caller's pointer is invalid after
 * this call; until it, the connection stays allocated even when the server
 * has closed it (feeding a closed connection does nothing). */
void http_conn_feed_eof(http_conn *c);

#endif /* AKIDB_SERVER_HTTP_H */
