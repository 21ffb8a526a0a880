/*
 * fuzz_token.c - libFuzzer over akidb-server's token path: the
 * Authorization header and JWT verification (server/token.c with
 * Debian's libjwt), in process.
 *
 * The first input byte picks what the rest is, so the fuzzer reaches both
 * the parsing and the checks that only a correctly signed token gets to:
 *   0  an Authorization header value: token_bearer(), token_is_jwt(), then
 *      token_verify() against an HS256, an RS256 and an ES256 verifier
 *   1  a JWT as is: token_verify() against the three verifiers
 *   2  a claims object (JSON text): signed HS256 with the verifier's own
 *      secret by libjwt, then verified, so exp/nbf/iat/aud/iss/tenant/role
 *      handling sees arbitrary claims
 *   3  "<header JSON>\n<claims JSON>": encoded and HMAC-signed here
 *      (header fields such as alg, crit, typ reach the checks)
 *
 * Failures, besides sanitizer reports, leaks and hangs:
 *   - a token accepted in modes 0 and 1 (the fuzzer has no key: accepting
 *     one would be a forgery), except the seed tokens signed with the
 *     fuzz secret, which are re-signed in mode 2 instead;
 *   - an accepted token whose identity is empty or unterminated, or whose
 *     exp is before the fixed clock minus the leeway;
 *   - an RS256/ES256 verifier accepting an HS256-signed token (algorithm
 *     confusion) in mode 3.
 * The clock is fixed (NOW), so a run is reproducible.
 */
#include "token.h"

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000
#define LEEWAY 30
static const char SECRET[] = "fuzz-token-secret-0123456789abcdef-not-a-real-one";

static token_verifier *g_hs, *g_rs, *g_es;
static char g_dir[64];

static void die(const char *what)
{
    fprintf(stderr, "fuzz_token: %s\n", what);
    abort();
}

/* A fresh key pair; the public half as PEM in DIR/name. */
static void make_pub(const char *name, EVP_PKEY *k, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    if (!k || !f || PEM_write_PUBKEY(f, k) != 1)
        die("cannot write a public key");
    fclose(f);
    EVP_PKEY_free(k);
}

static token_verifier *verifier(const char *alg, const char *key_file)
{
    token_settings s = {alg, key_file, key_file[0] ? NULL : SECRET, LEEWAY, "", ""};
    token_verifier *v = NULL;
    char err[512];
    if (token_verifier_new(&v, &s, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_token: %s\n", err);
        abort();
    }
    return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(g_dir, sizeof g_dir, "/tmp/akidb-fuzz-token-XXXXXX");
    if (!mkdtemp(g_dir))
        die("mkdtemp");
    char rs[128], es[128];
    make_pub("rs.pem", EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), rs, sizeof rs);
    make_pub("es.pem", EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), es, sizeof es);
    g_hs = verifier("HS256", "");
    g_rs = verifier("RS256", rs);
    g_es = verifier("ES256", es);
    unlink(rs);
    unlink(es);
    rmdir(g_dir);
    return 0;
}

static void check_identity(const token_identity *id)
{
    if (memchr(id->tenant, 0, sizeof id->tenant) == NULL ||
        memchr(id->role, 0, sizeof id->role) == NULL ||
        memchr(id->subject, 0, sizeof id->subject) == NULL)
        die("unterminated identity");
    if (!id->tenant[0] || !id->role[0])
        die("accepted a token without tenant or role");
    if (id->exp + LEEWAY < NOW)
        die("accepted an expired token");
}

/* Verify with all three; returns a bit per verifier that accepted. */
static int verify_all(const char *tok, size_t n)
{
    token_verifier *v[3] = {g_hs, g_rs, g_es};
    int ok = 0;
    for (int i = 0; i < 3; i++) {
        token_identity id;
        const char *reason = NULL;
        if (token_verify(v[i], tok, n, NOW, &id, &reason) == 0) {
            check_identity(&id);
            ok |= 1 << i;
        } else if (!reason || !reason[0]) {
            die("a refusal without a reason");
        }
    }
    return ok;
}

static char *b64url(const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(4 * (n + 2) / 3 + 4);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = tab[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = tab[v & 63];
    }
    out[o] = '\0';
    return out;
}

/* Mode 3: header and claims as given, HMAC-SHA256 with the secret. */
static void signed_by_hand(const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    if (!nl)
        return;
    char *h = b64url((const unsigned char *)p, (size_t)(nl - p));
    char *c = b64url((const unsigned char *)nl + 1, n - (size_t)(nl - p) - 1);
    char *tok = NULL;
    if (h && c) {
        size_t in_len = strlen(h) + 1 + strlen(c);
        tok = malloc(in_len + 64);
        if (tok) {
            snprintf(tok, in_len + 64, "%s.%s", h, c);
            unsigned char mac[32];
            unsigned int ml = 0;
            HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)tok, in_len, mac, &ml);
            char *s = b64url(mac, ml);
            if (s) {
                snprintf(tok + in_len, 64, ".%s", s);
                free(s);
                int ok = verify_all(tok, strlen(tok));
                if (ok & 6)
                    die("an RS256/ES256 verifier accepted an HMAC-signed token");
            }
        }
    }
    free(h);
    free(c);
    free(tok);
}

/* Mode 2: claims signed by libjwt. */
static void signed_by_libjwt(const char *p, size_t n)
{
    char *claims = malloc(n + 1);
    jwt_t *j = NULL;
    if (!claims)
        return;
    memcpy(claims, p, n);
    claims[n] = '\0';
    if (jwt_new(&j) == 0 && jwt_add_grants_json(j, claims) == 0 &&
        jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET)) == 0) {
        char *tok = jwt_encode_str(j);
        if (tok) {
            int ok = verify_all(tok, strlen(tok));
            if (ok & 6)
                die("an RS256/ES256 verifier accepted an HS256 token");
            free(tok);
        }
    }
    jwt_free(j);
    free(claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    int mode = data[0] & 3;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    char *text = malloc(n + 1);
    if (!text)
        return 0;
    memcpy(text, p, n);
    text[n] = '\0';
    switch (mode) {
    case 0: {
        const char *cred;
        size_t len;
        if (token_bearer(text, &cred, &len) == 0) {
            if (len == 0 || cred < text || cred + len > text + n)
                die("credential outside the header");
            if (token_is_jwt(cred, len) && verify_all(cred, len))
                die("accepted a token the fuzzer could not have signed");
        }
        break;
    }
    case 1:
        if (verify_all(text, n))
            die("accepted a token the fuzzer could not have signed");
        break;
    case 2:
        signed_by_libjwt(text, n);
        break;
    default:
        signed_by_hand(text, n);
        break;
    }
    free(text);
    return 0;
}
