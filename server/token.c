/*
 * token.c - Bearer header parsing and JWT verification (see token.h).
 *
 * Public keys are parsed with OpenSSL when loaded, so a wrong key type
 * (an EC key with RS256, an RSA key under 2048 bits) is a startup error
 * instead of every token failing; libjwt then receives each key as PEM
 * text, which is what its jwt_decode() takes.  Secrets are wiped when
 * replaced or freed.
 */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_SLOTS 256

typedef struct key_blob {
    unsigned char *p;
    size_t len;
} key_blob;

typedef struct cache_entry {
    unsigned char hash[32];
    int used;
    token_identity id;
} cache_entry;

struct token_verifier {
    jwt_alg_t alg;
    char *alg_name, *key_file, *secret, *audience, *issuer;
    int64_t leeway_s;
    key_blob keys[TOKEN_MAX_KEYS];
    int n_keys;
    cache_entry cache[CACHE_SLOTS];
};

/* ------------------------------------------------------------------------
 * The header */

/* RFC 6750 allows only the token68 alphabet in a Bearer credential; API
 * keys set by AKIDB_BOOTSTRAP_ADMIN_KEY may be any visible ASCII, so that
 * is what is accepted (still no spaces, controls or non-ASCII bytes). */
static int cred_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f;
}

int token_bearer(const char *h, const char **cred, size_t *len)
{
    *cred = NULL;
    *len = 0;
    if (!h)
        return -1;
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return -1;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = 0;
    while (cred_char((unsigned char)h[n]))
        n++;
    size_t tail = n;
    while (h[tail] == ' ' || h[tail] == '\t')
        tail++;
    if (n == 0 || h[tail] != '\0' || n > TOKEN_MAX_LEN)
        return -1;
    *cred = h;
    *len = n;
    return 0;
}

static int b64url_char(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

int token_is_jwt(const char *p, size_t n)
{
    /* header "." payload "." signature: the first two non-empty. */
    size_t part_len[3] = {0, 0, 0};
    int part = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '.') {
            if (++part > 2)
                return 0;
        } else if (b64url_char((unsigned char)p[i])) {
            part_len[part]++;
        } else {
            return 0;
        }
    }
    return part == 2 && part_len[0] > 0 && part_len[1] > 0;
}

/* ------------------------------------------------------------------------
 * Keys */

static void blob_free(key_blob *b)
{
    if (b->p) {
        OPENSSL_cleanse(b->p, b->len);
        free(b->p);
    }
    b->p = NULL;
    b->len = 0;
}

static void keys_free(key_blob *k, int n)
{
    for (int i = 0; i < n; i++)
        blob_free(&k[i]);
}

/* Read a whole file through one descriptor; `private_file` refuses group
 * or other access.  malloc'ed, NUL-terminated; NULL with err. */
static char *read_file(const char *path, int private_file, size_t *len, char *err, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *text = NULL;
    if (fd < 0) {
        snprintf(err, n, "JWT key file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, n, "JWT key file %s is not a regular file", path);
        goto out;
    }
    if (private_file && (st.st_mode & 077)) {
        snprintf(err, n, "JWT secret file %s has mode 0%03o: group or others can access it "
                 "(chmod 600 %s)", path, (unsigned)(st.st_mode & 0777), path);
        goto out;
    }
    if (st.st_size > 1 << 20) {
        snprintf(err, n, "JWT key file %s is larger than 1 MiB", path);
        goto out;
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text) {
        snprintf(err, n, "out of memory");
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, text + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    text[got] = '\0';
    *len = got;
out:
    close(fd);
    return text;
}

static int add_key(key_blob *keys, int *n_keys, const void *p, size_t len, char *err, size_t n)
{
    if (*n_keys == TOKEN_MAX_KEYS) {
        snprintf(err, n, "more than %d JWT keys", TOKEN_MAX_KEYS);
        return -1;
    }
    key_blob *b = &keys[*n_keys];
    if (!(b->p = malloc(len + 1))) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    memcpy(b->p, p, len);
    b->p[len] = '\0';
    b->len = len;
    (*n_keys)++;
    return 0;
}

static int load_secrets(token_verifier *v, key_blob *keys, int *n_keys, char *err, size_t n)
{
    if (v->secret && v->secret[0]) {
        if (strlen(v->secret) < 32) {
            snprintf(err, n, "AKIDB_JWT_SECRET is shorter than 32 bytes (HS256 needs at least "
                     "as many bytes as its hash)");
            return -1;
        }
        if (add_key(keys, n_keys, v->secret, strlen(v->secret), err, n))
            return -1;
    }
    if (v->key_file[0]) {
        size_t len = 0;
        char *text = read_file(v->key_file, 1, &len, err, n);
        if (!text)
            return -1;
        int rc = 0, line_no = 0;
        for (char *line = text; rc == 0 && line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            line_no++;
            size_t ll = strlen(line);
            if (ll && line[ll - 1] == '\r')
                line[--ll] = '\0';
            if (ll > 0 && ll < 32) {
                snprintf(err, n, "JWT secret file %s, line %d: a secret must be at least 32 "
                         "bytes", v->key_file, line_no);
                rc = -1;
            } else if (ll > 0) {
                rc = add_key(keys, n_keys, line, ll, err, n);
            }
            line = nl ? nl + 1 : NULL;
        }
        OPENSSL_cleanse(text, len);
        free(text);
        if (rc)
            return -1;
    }
    if (*n_keys == 0) {
        snprintf(err, n, "JWT HS256 needs a secret: AKIDB_JWT_SECRET or jwt_key_file");
        return -1;
    }
    return 0;
}

static int load_public_keys(token_verifier *v, key_blob *keys, int *n_keys, char *err, size_t n)
{
    size_t len = 0;
    char *text = read_file(v->key_file, 0, &len, err, n);
    if (!text)
        return -1;
    int rc = -1;
    BIO *in = BIO_new_mem_buf(text, (int)len);
    if (!in) {
        snprintf(err, n, "out of memory");
        goto out;
    }
    ERR_clear_error();
    for (;;) {
        EVP_PKEY *pk = PEM_read_bio_PUBKEY(in, NULL, NULL, NULL);
        if (!pk)
            break;
        int type = EVP_PKEY_get_base_id(pk);
        int ok = v->alg == JWT_ALG_RS256 ? type == EVP_PKEY_RSA && EVP_PKEY_get_bits(pk) >= 2048
               : type == EVP_PKEY_EC && EVP_PKEY_get_bits(pk) == 256;
        if (!ok) {
            snprintf(err, n, "JWT key file %s: key %d is not %s", v->key_file, *n_keys + 1,
                     v->alg == JWT_ALG_RS256 ? "an RSA public key of 2048 bits or more"
                                             : "a P-256 EC public key");
            EVP_PKEY_free(pk);
            goto out;
        }
        BIO *pem = BIO_new(BIO_s_mem());
        char *p = NULL;
        long pl = 0;
        if (!pem || PEM_write_bio_PUBKEY(pem, pk) != 1 || (pl = BIO_get_mem_data(pem, &p)) <= 0 ||
            add_key(keys, n_keys, p, (size_t)pl, err, n) != 0) {
            if (!err[0])
                snprintf(err, n, "out of memory");
            BIO_free(pem);
            EVP_PKEY_free(pk);
            goto out;
        }
        BIO_free(pem);
        EVP_PKEY_free(pk);
    }
    ERR_clear_error();
    if (*n_keys == 0) {
        snprintf(err, n, "JWT key file %s holds no PEM public key", v->key_file);
        goto out;
    }
    rc = 0;
out:
    BIO_free(in);
    free(text);
    return rc;
}

static int load_keys(token_verifier *v, char *err, size_t n)
{
    key_blob keys[TOKEN_MAX_KEYS];
    int n_keys = 0;
    memset(keys, 0, sizeof keys);
    err[0] = '\0';
    int rc = v->alg == JWT_ALG_HS256 ? load_secrets(v, keys, &n_keys, err, n)
                                     : load_public_keys(v, keys, &n_keys, err, n);
    if (rc) {
        keys_free(keys, n_keys);
        return -1;
    }
    keys_free(v->keys, v->n_keys);
    memcpy(v->keys, keys, sizeof keys);
    v->n_keys = n_keys;
    memset(v->cache, 0, sizeof v->cache);
    return 0;
}

int token_verifier_new(token_verifier **out, const token_settings *s, char *err, size_t n)
{
    *out = NULL;
    token_verifier *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    v->alg = !strcmp(s->alg, "HS256") ? JWT_ALG_HS256
           : !strcmp(s->alg, "RS256") ? JWT_ALG_RS256
           : !strcmp(s->alg, "ES256") ? JWT_ALG_ES256
                                       : JWT_ALG_INVAL;
    if (v->alg == JWT_ALG_INVAL) {
        snprintf(err, n, "JWT algorithm must be HS256, RS256 or ES256");
        goto fail;
    }
    v->alg_name = strdup(s->alg);
    v->key_file = strdup(s->key_file ? s->key_file : "");
    v->secret = s->secret ? strdup(s->secret) : NULL;
    v->audience = strdup(s->audience ? s->audience : "");
    v->issuer = strdup(s->issuer ? s->issuer : "");
    v->leeway_s = s->leeway_s;
    if (!v->alg_name || !v->key_file || (s->secret && !v->secret) || !v->audience ||
        !v->issuer) {
        snprintf(err, n, "out of memory");
        goto fail;
    }
    if (v->alg != JWT_ALG_HS256 && !v->key_file[0]) {
        snprintf(err, n, "JWT %s needs a key file of PEM public keys", s->alg);
        goto fail;
    }
    if (load_keys(v, err, n))
        goto fail;
    *out = v;
    return 0;
fail:
    token_verifier_free(v);
    return -1;
}

int token_verifier_reload(token_verifier *v, char *err, size_t n)
{
    return load_keys(v, err, n);
}

int token_verifier_keys(const token_verifier *v)
{
    return v->n_keys;
}

void token_verifier_set_leeway(token_verifier *v, int64_t leeway_s)
{
    v->leeway_s = leeway_s;
    memset(v->cache, 0, sizeof v->cache);
}

void token_verifier_free(token_verifier *v)
{
    if (!v)
        return;
    keys_free(v->keys, v->n_keys);
    if (v->secret) {
        OPENSSL_cleanse(v->secret, strlen(v->secret));
        free(v->secret);
    }
    free(v->alg_name);
    free(v->key_file);
    free(v->audience);
    free(v->issuer);
    free(v);
}

/* ------------------------------------------------------------------------
 * Verification */

/* A NumericDate claim: -1 malformed, 0 absent, 1 present in *out. */
static int numeric_date(json_t *claims, const char *name, int64_t *out)
{
    json_t *v = json_object_get(claims, name);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!isfinite(d) || d < -1e15 || d > 1e15)
        return -1;
    *out = (int64_t)floor(d);
    return 1;
}

static int copy_claim(json_t *claims, const char *name, char *out, size_t cap, int required)
{
    json_t *v = json_object_get(claims, name);
    if (!v)
        return required ? -1 : 0;
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return -1;
    if (required && json_string_length(v) == 0)
        return -1;              /* "" names no tenant or role */
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return -1;              /* an embedded NUL */
    memcpy(out, s, json_string_length(v) + 1);
    return 1;
}

static int audience_ok(json_t *claims, const char *want)
{
    json_t *aud = json_object_get(claims, "aud");
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (json_is_array(aud)) {
        size_t i;
        json_t *x;
        json_array_foreach(aud, i, x)
            if (json_is_string(x) && strcmp(json_string_value(x), want) == 0)
                return 1;
    }
    return 0;
}

static int check_claims(token_verifier *v, jwt_t *j, int64_t now, token_identity *id,
                        const char **reason)
{
    int rc = -1;
    char *hdr = jwt_get_headers_json(j, "crit");
    if (hdr) {
        free(hdr);
        *reason = "the token has critical header extensions this server does not understand";
        return -1;
    }
    char *text = jwt_get_grants_json(j, NULL);
    json_t *claims = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!json_is_object(claims)) {
        *reason = "the token's claims are not a JSON object";
        goto out;
    }
    int64_t exp = 0, nbf = 0, iat = 0;
    int has_exp = numeric_date(claims, "exp", &exp);
    int has_nbf = numeric_date(claims, "nbf", &nbf);
    int has_iat = numeric_date(claims, "iat", &iat);
    if (has_exp < 0 || has_nbf < 0 || has_iat < 0) {
        *reason = "exp, nbf and iat must be numbers (seconds since the epoch)";
        goto out;
    }
    if (!has_exp) {
        *reason = "the token has no exp claim (tokens must expire)";
        goto out;
    }
    if (now > exp + v->leeway_s) {
        *reason = "the token has expired";
        goto out;
    }
    if (has_nbf && now + v->leeway_s < nbf) {
        *reason = "the token is not valid yet (nbf)";
        goto out;
    }
    if (has_iat && now + v->leeway_s < iat) {
        *reason = "the token was issued in the future (iat)";
        goto out;
    }
    if (v->audience[0] && !audience_ok(claims, v->audience)) {
        *reason = "the token is not for this audience (aud)";
        goto out;
    }
    if (v->issuer[0]) {
        json_t *iss = json_object_get(claims, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), v->issuer) != 0) {
            *reason = "the token is not from the expected issuer (iss)";
            goto out;
        }
    }
    memset(id, 0, sizeof *id);
    if (copy_claim(claims, "tenant", id->tenant, sizeof id->tenant, 1) < 0) {
        *reason = "the token has no valid tenant claim (a non-empty string of at most 64 bytes)";
        goto out;
    }
    if (copy_claim(claims, "role", id->role, sizeof id->role, 1) < 0) {
        *reason = "the token has no valid role claim (a non-empty string of at most 16 bytes)";
        goto out;
    }
    if (copy_claim(claims, "sub", id->subject, sizeof id->subject, 0) < 0) {
        *reason = "the token's sub claim must be a string of at most 128 bytes";
        goto out;
    }
    id->exp = exp;
    rc = 0;
out:
    json_decref(claims);
    return rc;
}

int token_verify(token_verifier *v, const char *cred, size_t len, int64_t now,
                 token_identity *id, const char **reason)
{
    *reason = "malformed token";
    if (len == 0 || len > TOKEN_MAX_LEN || !token_is_jwt(cred, len))
        return -1;
    unsigned char h[32];
    unsigned int hl = 0;
    if (EVP_Digest(cred, len, h, &hl, EVP_sha256(), NULL) != 1) {
        *reason = "out of memory";
        return -1;
    }
    cache_entry *e = &v->cache[(h[0] | h[1] << 8) % CACHE_SLOTS];
    if (e->used && CRYPTO_memcmp(e->hash, h, 32) == 0) {
        if (now <= e->id.exp + v->leeway_s) {
            *id = e->id;
            return 0;
        }
        e->used = 0;
        *reason = "the token has expired";
        return -1;
    }
    char *tok = malloc(len + 1);
    if (!tok) {
        *reason = "out of memory";
        return -1;
    }
    memcpy(tok, cred, len);
    tok[len] = '\0';
    jwt_t *j = NULL;
    int rc = -1;
    for (int k = 0; k < v->n_keys && !j; k++) {
        if (jwt_decode(&j, tok, v->keys[k].p, (int)v->keys[k].len) != 0) {
            jwt_free(j);
            j = NULL;
        }
    }
    free(tok);
    if (!j) {
        *reason = "the token is malformed or its signature does not verify";
        goto out;
    }
    /* libjwt verified with whatever algorithm the token names: make sure
     * it is the one configured (HS/RS confusion, "none"). */
    if (jwt_get_alg(j) != v->alg) {
        *reason = "the token's algorithm is not the one this server accepts";
        goto out;
    }
    if (check_claims(v, j, now, id, reason) != 0)
        goto out;
    memcpy(e->hash, h, 32);
    e->id = *id;
    e->used = 1;
    rc = 0;
out:
    jwt_free(j);
    ERR_clear_error();
    return rc;
}
