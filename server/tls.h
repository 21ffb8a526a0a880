/*
 * tls.h - TLS for the HTTP layer: OpenSSL over memory BIOs.
 *
 * The event loop owns the sockets; OpenSSL never sees one.  Each
 * connection has an SSL object with two memory BIOs: bytes read from the
 * socket go into the read BIO (tls_conn_feed), OpenSSL turns them into
 * handshake messages and plaintext (tls_conn_read), and whatever it wants
 * to send (handshake records, encrypted responses, alerts) accumulates in
 * the write BIO, which the caller drains (tls_conn_take_out) and writes
 * with uv_write.  Nothing here blocks or waits: "want more input" is an
 * answer, not a wait.  This is the design of Node.js's TLSWrap.
 *
 * Policy, fixed here so no caller can weaken it by accident:
 *   - TLS 1.3 only, unless the caller asks for 1.2 explicitly (then only
 *     ECDHE with AES-GCM or ChaCha20-Poly1305); no renegotiation, no
 *     compression.
 *   - ALPN: "http/1.1" is selected; a client that offers ALPN without it
 *     gets the fatal no_application_protocol alert (RFC 7301, 3.2).
 *   - The private key file must not be accessible to group or others
 *     (checked at start and at every reload, with the file and mode named).
 *   - Client certificates (mTLS): with a CA file, a client certificate is
 *     verified against it; "require" refuses a handshake without one,
 *     "optional" accepts it and leaves authentication to the request.
 *     With a CRL file, a revoked client certificate is refused too (the
 *     CRL is re-read with everything else on reload).
 *
 * Reload: tls_ctx_reload() builds a whole new SSL_CTX from the files and
 * swaps it in only if every step worked; connections already open keep a
 * reference to the context they started with (SSL_CTX is reference
 * counted), so a reload never drops one.  A failed reload keeps the old
 * context and says why.
 *
 * Reusable: includes nothing from the rest of the server.  Threads: a
 * tls_ctx and its connections belong to one thread (the loop thread).
 */
#ifndef AKIDB_SERVER_TLS_H
#define AKIDB_SERVER_TLS_H

#include <stddef.h>
#include <stdint.h>

typedef struct tls_settings {
    const char *cert_file;       /* PEM: the certificate, then its chain */
    const char *key_file;        /* PEM private key; mode 0600 or stricter */
    const char *client_ca_file;  /* NULL or "": no client certificates */
    const char *client_crl_file; /* NULL or "": PEM CRLs of that CA, checked */
    int client_auth_required;    /* with a CA: 1 = require, 0 = optional */
    int allow_tls12;             /* 0: TLS 1.3 only */
} tls_settings;

typedef struct tls_ctx tls_ctx;
typedef struct tls_conn tls_conn;

/* Load the certificate, the key (checked against the certificate) and the
 * client CA.  The settings' strings are copied.  0 or -1 with err. */
int tls_ctx_new(tls_ctx **out, const tls_settings *s, char *err, size_t err_len);

/* Re-read the files named at creation.  0: new connections use the new
 * certificate; -1 with err: nothing changed. */
int tls_ctx_reload(tls_ctx *t, char *err, size_t err_len);

/* The current certificate's notAfter (Unix seconds), its subject (RFC
 * 2253), and how many reloads worked.  Borrowed strings, valid until the
 * next reload. */
int64_t tls_ctx_not_after(const tls_ctx *t);
const char *tls_ctx_subject(const tls_ctx *t);

/* NULL is a no-op.  Connections still open keep their context alive. */
void tls_ctx_free(tls_ctx *t);

/* ---- connections */

enum {
    TLS_WANT = 0,      /* nothing (more) to read until more input arrives */
    TLS_DATA = 1,      /* plaintext was returned */
    TLS_CLOSED = 2,    /* the peer sent close_notify */
    TLS_ERROR = -1     /* the connection cannot continue; see tls_conn_error */
};

/* A server-side connection on the current context.  NULL if out of memory. */
tls_conn *tls_conn_new(tls_ctx *t);
void tls_conn_free(tls_conn *c);

/* Ciphertext from the socket.  0, or -1 (out of memory). */
int tls_conn_feed(tls_conn *c, const char *p, size_t n);

/* Advance the handshake and return plaintext into buf[0..cap): TLS_DATA
 * with *got > 0, or TLS_WANT / TLS_CLOSED / TLS_ERROR.  Call until it
 * stops returning TLS_DATA; then drain the output. */
int tls_conn_read(tls_conn *c, char *buf, size_t cap, size_t *got);

/* Encrypt plaintext into the output.  Only after the handshake.  0 or -1. */
int tls_conn_write(tls_conn *c, const char *p, size_t n);

/* Queue a close_notify alert (best effort). */
void tls_conn_shutdown(tls_conn *c);

/* The ciphertext waiting to be sent, as one malloc'ed buffer the caller
 * frees; NULL with *n = 0 when there is none (or out of memory). */
char *tls_conn_take_out(tls_conn *c, size_t *n);

/* 1 once the handshake has completed. */
int tls_conn_ready(const tls_conn *c);

/* The verified client certificate's subject (RFC 2253, e.g.
 * "CN=alice,O=Acme"), or NULL when the client sent none.  Borrowed, valid
 * as long as the connection. */
const char *tls_conn_peer_subject(const tls_conn *c);

/* Why the connection failed (static text, e.g. "http request" for plain
 * HTTP on the TLS port, "no client certificate"); "" if it did not. */
const char *tls_conn_error(const tls_conn *c);

/* Negotiated protocol version ("TLSv1.3") and ALPN ("http/1.1" or ""). */
const char *tls_conn_version(const tls_conn *c);

#endif /* AKIDB_SERVER_TLS_H */
