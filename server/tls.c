/*
 * tls.c - OpenSSL contexts and memory-BIO connections (see tls.h).
 *
 * The private key is read through one open descriptor: fstat() on it
 * checks the mode, and the same descriptor's bytes are parsed, so the file
 * checked is the file loaded (no window between a stat() and an open()
 * for a symlink swap to use).  The key text is wiped from memory once
 * OpenSSL has parsed it.
 *
 * OpenSSL's error queue is per thread and sticky; every entry point that
 * can fail clears it first, and a failure keeps only the reason text of
 * the first error (a static string of OpenSSL), so nothing a peer sent is
 * ever echoed into a log line.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct tls_ctx {
    SSL_CTX *ctx;
    char *cert_file, *key_file, *client_ca_file, *client_crl_file;
    int client_auth_required;
    int allow_tls12;
    int64_t not_after;
    char subject[512];
};

struct tls_conn {
    SSL *ssl;
    BIO *wbio;                 /* owned by ssl; we drain it */
    BIO *rbio;                 /* owned by ssl; we fill it */
    int ready;
    const char *err;
    char *peer_subject;
};

/* ------------------------------------------------------------------------
 * Errors */

static void ssl_err(char *err, size_t n, const char *what, const char *file)
{
    unsigned long e = ERR_peek_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    snprintf(err, n, "%s%s%s%s%s", what, file ? " " : "", file ? file : "", buf[0] ? ": " : "",
             buf);
}

/* ------------------------------------------------------------------------
 * Files */

/* Read the key through one descriptor: mode check and contents agree. */
static EVP_PKEY *load_key(const char *path, char *err, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    EVP_PKEY *key = NULL;
    char *text = NULL;
    size_t len = 0;
    if (fd < 0) {
        snprintf(err, n, "TLS key file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, n, "TLS key file %s is not a regular file", path);
        goto fail;
    }
    if (st.st_mode & 077) {
        snprintf(err, n, "TLS key file %s has mode 0%03o: group or others can access it "
                 "(a private key must be 0600 or stricter; chmod 600 %s)", path,
                 (unsigned)(st.st_mode & 0777), path);
        goto fail;
    }
    if (st.st_size <= 0 || st.st_size > 1 << 20) {
        snprintf(err, n, "TLS key file %s: unexpected size %lld", path, (long long)st.st_size);
        goto fail;
    }
    text = malloc((size_t)st.st_size);
    if (!text) {
        snprintf(err, n, "out of memory");
        goto fail;
    }
    while (len < (size_t)st.st_size) {
        ssize_t r = read(fd, text + len, (size_t)st.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    BIO *b = BIO_new_mem_buf(text, (int)len);
    if (b) {
        ERR_clear_error();
        key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    if (!key)
        ssl_err(err, n, "cannot read the private key in", path);
fail:
    if (text) {
        OPENSSL_cleanse(text, (size_t)st.st_size);
        free(text);
    }
    close(fd);
    return key;
}

/* ------------------------------------------------------------------------
 * Context */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof h11 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static void name_rfc2253(X509_NAME *name, char *out, size_t n)
{
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        int len = BIO_read(b, out, (int)n - 1);
        out[len > 0 ? len : 0] = '\0';
    }
    BIO_free(b);
}

/* Build a context from t's settings; NULL with err on failure. */
static SSL_CTX *build(tls_ctx *t, char *err, size_t n)
{
    ERR_clear_error();
    EVP_PKEY *key = load_key(t->key_file, err, n);
    if (!key)
        return NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_err(err, n, "cannot create a TLS context", NULL);
        goto fail;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, t->allow_tls12 ? TLS1_2_VERSION : TLS1_3_VERSION)) {
        ssl_err(err, n, "cannot set the minimum TLS version", NULL);
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* Idle connections give their record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (t->allow_tls12 &&
        !SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!SHA1")) {
        ssl_err(err, n, "cannot set the TLS 1.2 ciphers", NULL);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
        ssl_err(err, n, "cannot read the certificate in", t->cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err(err, n, "the private key does not match the certificate in", t->cert_file);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    /* Resumed sessions keep the client-verification context. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"akidb", 5);
    if (t->client_ca_file && t->client_ca_file[0]) {
        if (SSL_CTX_load_verify_locations(ctx, t->client_ca_file, NULL) != 1) {
            ssl_err(err, n, "cannot read the client CA file", t->client_ca_file);
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->client_ca_file);
        if (!names) {
            ssl_err(err, n, "no CA certificate in", t->client_ca_file);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        if (t->client_crl_file[0]) {
            X509_STORE *st = SSL_CTX_get_cert_store(ctx);
            X509_LOOKUP *lu = st ? X509_STORE_add_lookup(st, X509_LOOKUP_file()) : NULL;
            if (!lu || X509_load_crl_file(lu, t->client_crl_file, X509_FILETYPE_PEM) <= 0) {
                ssl_err(err, n, "cannot read the client CRL file", t->client_crl_file);
                goto fail;
            }
            X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
                                    (t->client_auth_required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
    }
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    t->not_after = asn1_time_unix(cert ? X509_get0_notAfter(cert) : NULL);
    if (cert)
        name_rfc2253(X509_get_subject_name(cert), t->subject, sizeof t->subject);
    EVP_PKEY_free(key);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    EVP_PKEY_free(key);
    return NULL;
}

int tls_ctx_new(tls_ctx **out, const tls_settings *s, char *err, size_t n)
{
    *out = NULL;
    tls_ctx *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    t->cert_file = strdup(s->cert_file ? s->cert_file : "");
    t->key_file = strdup(s->key_file ? s->key_file : "");
    t->client_ca_file = strdup(s->client_ca_file ? s->client_ca_file : "");
    t->client_crl_file = strdup(s->client_crl_file ? s->client_crl_file : "");
    t->client_auth_required = s->client_auth_required;
    t->allow_tls12 = s->allow_tls12;
    if (!t->cert_file || !t->key_file || !t->client_ca_file || !t->client_crl_file) {
        snprintf(err, n, "out of memory");
        goto fail;
    }
    if (!t->cert_file[0] || !t->key_file[0]) {
        snprintf(err, n, "TLS needs both a certificate (--tls-cert) and a key (--tls-key)");
        goto fail;
    }
    if (!(t->ctx = build(t, err, n)))
        goto fail;
    *out = t;
    return 0;
fail:
    tls_ctx_free(t);
    return -1;
}

int tls_ctx_reload(tls_ctx *t, char *err, size_t n)
{
    int64_t old_after = t->not_after;
    char old_subject[sizeof t->subject];
    memcpy(old_subject, t->subject, sizeof old_subject);
    SSL_CTX *ctx = build(t, err, n);
    if (!ctx) {
        t->not_after = old_after;
        memcpy(t->subject, old_subject, sizeof old_subject);
        return -1;
    }
    /* Open connections hold their own reference to the old context. */
    SSL_CTX_free(t->ctx);
    t->ctx = ctx;
    return 0;
}

int64_t tls_ctx_not_after(const tls_ctx *t)
{
    return t->not_after;
}

const char *tls_ctx_subject(const tls_ctx *t)
{
    return t->subject;
}

void tls_ctx_free(tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->cert_file);
    free(t->key_file);
    free(t->client_ca_file);
    free(t->client_crl_file);
    free(t);
}

/* ------------------------------------------------------------------------
 * Connections */

tls_conn *tls_conn_new(tls_ctx *t)
{
    tls_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ssl = SSL_new(t->ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    /* An empty read BIO means "retry later", not end of file. */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
    c->err = "";
    return c;
}

void tls_conn_free(tls_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);
    free(c->peer_subject);
    free(c);
}

int tls_conn_feed(tls_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        int w = BIO_write(c->rbio, p, chunk);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *reason_of(int ssl_error)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    if (r)
        return r;
    return ssl_error == SSL_ERROR_SYSCALL ? "unexpected end of the TLS stream" : "TLS error";
}

static void capture_peer(tls_conn *c)
{
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (!peer || SSL_get_verify_result(c->ssl) != X509_V_OK)
        return;
    char name[512];
    name_rfc2253(X509_get_subject_name(peer), name, sizeof name);
    c->peer_subject = strdup(name);
}

int tls_conn_read(tls_conn *c, char *buf, size_t cap, size_t *got)
{
    *got = 0;
    if (c->err[0])
        return TLS_ERROR;
    ERR_clear_error();
    if (!c->ready) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return TLS_WANT;
            c->err = reason_of(e);
            return TLS_ERROR;
        }
        c->ready = 1;
        capture_peer(c);
    }
    int r = SSL_read(c->ssl, buf, cap > (1u << 30) ? 1 << 30 : (int)cap);
    if (r > 0) {
        *got = (size_t)r;
        return TLS_DATA;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return TLS_WANT;
    if (e == SSL_ERROR_ZERO_RETURN)
        return TLS_CLOSED;
    c->err = reason_of(e);
    return TLS_ERROR;
}

int tls_conn_write(tls_conn *c, const char *p, size_t n)
{
    if (!c->ready || c->err[0])
        return -1;
    ERR_clear_error();
    while (n > 0) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        int w = SSL_write(c->ssl, p, chunk);
        if (w <= 0) {
            c->err = reason_of(SSL_get_error(c->ssl, w));
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void tls_conn_shutdown(tls_conn *c)
{
    if (c->ready && !c->err[0]) {
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
}

char *tls_conn_take_out(tls_conn *c, size_t *n)
{
    *n = 0;
    size_t pending = BIO_ctrl_pending(c->wbio);
    if (pending == 0)
        return NULL;
    char *buf = malloc(pending);
    if (!buf)
        return NULL;
    int r = BIO_read(c->wbio, buf, (int)pending);
    if (r <= 0) {
        free(buf);
        return NULL;
    }
    *n = (size_t)r;
    return buf;
}

int tls_conn_ready(const tls_conn *c)
{
    return c->ready;
}

const char *tls_conn_peer_subject(const tls_conn *c)
{
    return c->peer_subject;
}

const char *tls_conn_error(const tls_conn *c)
{
    return c->err;
}

const char *tls_conn_version(const tls_conn *c)
{
    return SSL_get_version(c->ssl);
}
