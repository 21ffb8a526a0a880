/*
 * sigv4.c - AWS Signature Version 4 for S3 requests, with OpenSSL.
 *
 * Why by hand: libcurl's CURLOPT_AWS_SIGV4 changes behaviour with the
 * libcurl that happens to be linked.  7.88 (Debian 12) never sends
 * x-amz-content-sha256, signs the query unsorted and unencoded, mishandles
 * valueless parameters such as "?uploads" and hashes an empty body for
 * uploads; strict servers (radosgw, AWS) answer 403.  Signing here makes
 * the client correct on every libcurl.
 *
 * The algorithm (AWS "Signature Version 4, header-based"):
 *   CanonicalRequest = METHOD \n URI \n QUERY \n HEADERS \n SIGNED \n HASH
 *     URI     path percent-encoded once (S3 does not double-encode)
 *     QUERY   names and values encoded (also '/' and '='), sorted by name
 *     HEADERS "name:value\n" per header: lowercase names, trimmed values,
 *             sorted by name
 *     SIGNED  the header names joined by ';'
 *     HASH    hex SHA-256 of the body, or UNSIGNED-PAYLOAD
 *   StringToSign = "AWS4-HMAC-SHA256\n" amzdate "\n" scope "\n" hex(SHA-256(CanonicalRequest))
 *     scope  = yyyymmdd/region/service/aws4_request
 *   key = HMAC("AWS4" secret, yyyymmdd) -> region -> service -> "aws4_request"
 *   signature = hex(HMAC(key, StringToSign))
 *
 * Every function is pure (no global state) and thread safe.  Strings come
 * from malloc(): this code runs below any akidb handle.
 */
#include "store/sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "common/hash.h"
#include "common/strbuf.h"


static char *sb_finish(akidb__str *b)
{
    if (b->oom || !b->p) {
        free(b->p);
        return b->oom ? NULL : strdup("");
    }
    return b->p;
}

/* ---- hashing ----------------------------------------------------------- */

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void akidb__md5_base64(const void *data, size_t len, char out[25])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    /* EVP rather than MD5(): the latter is deprecated in OpenSSL 3. */
    if (!EVP_Digest(data ? data : (const void *)"", len, d, &n, EVP_md5(), NULL) || n != 16) {
        out[0] = '\0';
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, d, 16);
}

static int hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &n)
        || n != 32)
        return -1;
    return 0;
}

/* ---- encoding ---------------------------------------------------------- */

size_t akidb__sigv4_encode(char *out, const char *s, size_t len, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

static char *encode_dup(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(3 * len + 1);
    if (out)
        akidb__sigv4_encode(out, s, len, 0);
    return out;
}

typedef struct enc_param {
    char *name, *value;
} enc_param;

static int cmp_param(const void *a, const void *b)
{
    const enc_param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

char *akidb__sigv4_query(const akidb__sigv4_param *params, size_t n_params)
{
    if (n_params == 0)
        return strdup("");
    enc_param *e = calloc(n_params, sizeof *e);
    if (!e)
        return NULL;
    akidb__str b = { 0 };
    size_t i;
    for (i = 0; i < n_params; i++) {
        e[i].name = encode_dup(params[i].name);
        e[i].value = encode_dup(params[i].value ? params[i].value : "");
        if (!e[i].name || !e[i].value) {
            b.oom = 1;
            i++;
            goto done;
        }
    }
    qsort(e, n_params, sizeof *e, cmp_param);
    for (size_t j = 0; j < n_params; j++) {
        if (j)
            akidb__str_add(&b, "&", 1);
        akidb__str_cat(&b, e[j].name);
        akidb__str_add(&b, "=", 1);
        akidb__str_cat(&b, e[j].value);
    }
done:
    for (size_t j = 0; j < i; j++) {
        free(e[j].name);
        free(e[j].value);
    }
    free(e);
    return sb_finish(&b);
}

/* ---- the canonical request -------------------------------------------- */

static int cmp_header(const void *a, const void *b)
{
    const akidb__sigv4_header *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* Trim blanks at both ends and collapse inner runs to one space. */
static void add_trimmed(akidb__str *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    int pending_space = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            pending_space = 1;
            continue;
        }
        if (pending_space)
            akidb__str_add(b, " ", 1);
        pending_space = 0;
        akidb__str_add(b, v, 1);
    }
}

char *akidb__sigv4_canonical_request(const akidb__sigv4_req *r, char **signed_headers_out)
{
    if (signed_headers_out)
        *signed_headers_out = NULL;
    for (size_t i = 0; i < r->n_headers; i++)
        for (const char *c = r->headers[i].name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                return NULL;
    akidb__sigv4_header *h = malloc((r->n_headers ? r->n_headers : 1) * sizeof *h);
    if (!h)
        return NULL;
    memcpy(h, r->headers, r->n_headers * sizeof *h);
    qsort(h, r->n_headers, sizeof *h, cmp_header);

    akidb__str b = { 0 }, names = { 0 };
    akidb__str_cat(&b, r->method);
    akidb__str_add(&b, "\n", 1);
    akidb__str_cat(&b, r->canonical_uri && r->canonical_uri[0] ? r->canonical_uri : "/");
    akidb__str_add(&b, "\n", 1);
    akidb__str_cat(&b, r->canonical_query ? r->canonical_query : "");
    akidb__str_add(&b, "\n", 1);
    for (size_t i = 0; i < r->n_headers; i++) {
        akidb__str_cat(&b, h[i].name);
        akidb__str_add(&b, ":", 1);
        add_trimmed(&b, h[i].value ? h[i].value : "");
        akidb__str_add(&b, "\n", 1);
        if (i)
            akidb__str_add(&names, ";", 1);
        akidb__str_cat(&names, h[i].name);
    }
    akidb__str_add(&b, "\n", 1);
    akidb__str_add(&b, names.p ? names.p : "", names.len);
    akidb__str_add(&b, "\n", 1);
    akidb__str_cat(&b, r->payload_hash);
    free(h);

    char *signed_names = sb_finish(&names);
    char *creq = sb_finish(&b);
    if (!creq || !signed_names || !signed_headers_out) {
        free(signed_names);
        if (!signed_names) {
            free(creq);
            return NULL;
        }
        return creq;
    }
    *signed_headers_out = signed_names;
    return creq;
}

static void scope_of(const akidb__sigv4_req *r, akidb__str *b)
{
    akidb__str_add(b, r->amz_date, 8);
    akidb__str_add(b, "/", 1);
    akidb__str_cat(b, r->region);
    akidb__str_add(b, "/", 1);
    akidb__str_cat(b, r->service);
    akidb__str_cat(b, "/aws4_request");
}

char *akidb__sigv4_string_to_sign(const akidb__sigv4_req *r, const char *canonical_request)
{
    if (strlen(r->amz_date) != 16)
        return NULL;
    char hash[65];
    akidb__sha256_hex(canonical_request, strlen(canonical_request), hash);
    akidb__str b = { 0 };
    akidb__str_cat(&b, "AWS4-HMAC-SHA256\n");
    akidb__str_cat(&b, r->amz_date);
    akidb__str_add(&b, "\n", 1);
    scope_of(r, &b);
    akidb__str_add(&b, "\n", 1);
    akidb__str_cat(&b, hash);
    return sb_finish(&b);
}

int akidb__sigv4_sign(const akidb__sigv4_req *r, char sig_hex[65], char **auth_out)
{
    int rc = -1;
    char *signed_names = NULL, *sts = NULL, *kinit = NULL;
    char *creq = akidb__sigv4_canonical_request(r, &signed_names);
    if (auth_out)
        *auth_out = NULL;
    sig_hex[0] = '\0';
    if (!creq || !(sts = akidb__sigv4_string_to_sign(r, creq)))
        goto done;

    /* The derived key chain. */
    size_t secret_len = strlen(r->secret_key);
    kinit = malloc(secret_len + 5);
    if (!kinit)
        goto done;
    memcpy(kinit, "AWS4", 4);
    memcpy(kinit + 4, r->secret_key, secret_len + 1);
    char date[9];
    memcpy(date, r->amz_date, 8);
    date[8] = '\0';
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    if (hmac(kinit, secret_len + 4, date, k1) || hmac(k1, 32, r->region, k2) ||
        hmac(k2, 32, r->service, k3) || hmac(k3, 32, "aws4_request", k4) ||
        hmac(k4, 32, sts, sig))
        goto done;
    to_hex(sig, 32, sig_hex);
    OPENSSL_cleanse(k1, sizeof k1);
    OPENSSL_cleanse(k4, sizeof k4);

    if (auth_out) {
        akidb__str b = { 0 };
        akidb__str_cat(&b, "AWS4-HMAC-SHA256 Credential=");
        akidb__str_cat(&b, r->access_key);
        akidb__str_add(&b, "/", 1);
        scope_of(r, &b);
        akidb__str_cat(&b, ", SignedHeaders=");
        akidb__str_cat(&b, signed_names);
        akidb__str_cat(&b, ", Signature=");
        akidb__str_cat(&b, sig_hex);
        if (!(*auth_out = sb_finish(&b)))
            goto done;
    }
    rc = 0;
done:
    if (kinit) {
        OPENSSL_cleanse(kinit, secret_len + 4);
        free(kinit);
    }
    free(creq);
    free(sts);
    free(signed_names);
    return rc;
}

void akidb__sigv4_amz_date(int64_t t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        memcpy(out, "19700101T000000Z", 17);
}
