/*
 * sigv4.h - AWS Signature Version 4 (header-based), signed by hand.
 *
 * Pure functions over strings: no network, no curl, no global state, so
 * the known-answer tests run without a server.  See sigv4.c for why the
 * library does not use libcurl's own signer.
 */
#ifndef AKIDB_SIGV4_H
#define AKIDB_SIGV4_H

#include <stddef.h>
#include <stdint.h>

/* One header to sign.  The name must already be lowercase; the value is
 * trimmed (leading/trailing blanks) and inner runs of blanks collapsed
 * while building the canonical request, as SigV4 requires. */
typedef struct akidb__sigv4_header {
    const char *name;
    const char *value;
} akidb__sigv4_header;

/* A request as it will be sent. */
typedef struct akidb__sigv4_req {
    const char *method;           /* "GET", "PUT", ... */
    const char *canonical_uri;    /* encoded path, e.g. "/bucket/a%20b" */
    const char *canonical_query;  /* from akidb__sigv4_query(); "" if none */
    const akidb__sigv4_header *headers;  /* any order; must include host,
                                            x-amz-date, x-amz-content-sha256 */
    size_t n_headers;
    const char *payload_hash;     /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;         /* "20130524T000000Z" */
    const char *region;           /* "us-east-1" */
    const char *service;          /* "s3" */
    const char *access_key;
    const char *secret_key;
} akidb__sigv4_req;

/* A query parameter before encoding; value NULL or "" gives "name=". */
typedef struct akidb__sigv4_param {
    const char *name;
    const char *value;
} akidb__sigv4_param;

/* Percent-encode s[0..len) for a SigV4 URI (keep_slash 1) or a query
 * name/value (keep_slash 0): everything but A-Za-z0-9-_.~ (and '/' when
 * kept) becomes %XX with uppercase hex, byte by byte (UTF-8 stays UTF-8).
 * out needs room for 3 * len + 1 bytes.  Returns the length written. */
size_t akidb__sigv4_encode(char *out, const char *s, size_t len, int keep_slash);

/* The canonical query string: each name and value encoded, sorted by
 * encoded name (then value), "k=v" joined by '&'.  The same string goes
 * into the URL, so what is signed is what is sent.  Returns a string from
 * malloc(), or NULL when out of memory. */
char *akidb__sigv4_query(const akidb__sigv4_param *params, size_t n_params);

/* Step 1: the canonical request (malloc()ed; NULL when out of memory or
 * when a header name is not lowercase).  *signed_headers_out, when not
 * NULL, receives the "host;range;x-amz-date" list (malloc()ed too). */
char *akidb__sigv4_canonical_request(const akidb__sigv4_req *r, char **signed_headers_out);

/* Step 2: the string to sign for a canonical request (malloc()ed). */
char *akidb__sigv4_string_to_sign(const akidb__sigv4_req *r, const char *canonical_request);

/* Steps 1-4: the signature (64 hex digits + NUL into sig_hex) and the
 * whole Authorization header value (malloc()ed into *auth_out when
 * auth_out is not NULL).  Returns 0, or -1 when out of memory or the
 * request is malformed. */
int akidb__sigv4_sign(const akidb__sigv4_req *r, char sig_hex[65], char **auth_out);

/* Base64 MD5 of data, the value of a Content-MD5 header (24 chars + NUL). */
void akidb__md5_base64(const void *data, size_t len, char out[25]);

/* "20130524T000000Z" for Unix time t (UTC). */
void akidb__sigv4_amz_date(int64_t t, char out[17]);

#endif
