/*
 * token.h - bearer credentials: the Authorization header and JWTs.
 *
 * The header: "Bearer <credential>" (scheme case-insensitive, RFC 7235),
 * the credential being 1..8192 visible ASCII characters (RFC 6750's
 * token68 alphabet, widened to what AKIDB_BOOTSTRAP_ADMIN_KEY allows).
 * Anything else is malformed.  An API key and a JWT are told apart by shape only (a JWT
 * is three base64url parts joined by two dots); the caller decides what
 * to do with each.
 *
 * JWTs are verified by Debian's libjwt, never parsed by hand here.  What
 * libjwt 1.10 leaves to the caller, and this file therefore does:
 *   - The algorithm.  jwt_decode() accepts any algorithm the token names,
 *     using the configured key as whatever that algorithm needs; so an
 *     HS256 token "signed" with the RS256 public key verifies (the classic
 *     algorithm-confusion attack).  After decoding, the token's algorithm
 *     must equal the configured one, or it is rejected.  "none" is
 *     rejected by libjwt when a key is given, and again by that check.
 *   - The claims: exp is required (a token that never expires is
 *     refused), nbf and iat are honoured, each with `leeway_s` of clock
 *     skew; aud (string or array) and iss when configured; tenant and role
 *     must be non-empty strings (their values are the caller's to
 *     validate); a
 *     header that lists "crit" extensions is refused (none is understood).
 * Keys: HS256 takes secrets of at least 32 bytes, one per line of the
 * key file (or AKIDB_JWT_SECRET); RS256/ES256 take PEM public keys, one or
 * more in the key file.  A token is accepted when any key verifies it,
 * which is how keys are rotated without a flag day.  The HS secret file
 * must not be readable by group or others.
 *
 * A small cache maps a token's SHA-256 to its verified identity until the
 * token expires, so a client that sends the same JWT on every request
 * pays for one signature check, not one per request.  A reload empties it.
 *
 * Nothing here logs, and the reasons returned are static texts: a token
 * or a key never reaches a log line through this file.  Reusable: includes
 * nothing from the rest of the server.  Not thread safe: one verifier per
 * thread (the server uses it on the loop thread only).
 */
#ifndef AKIDB_SERVER_TOKEN_H
#define AKIDB_SERVER_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_MAX_LEN 8192
#define TOKEN_MAX_KEYS 8

/* Find the credential of "Bearer <credential>" in an Authorization header
 * value.  0 with *cred and *len pointing into `header`; -1 if the header is
 * not a well-formed Bearer credential. */
int token_bearer(const char *header, const char **cred, size_t *len);

/* 1 if the credential has the shape of a JWS compact serialization. */
int token_is_jwt(const char *cred, size_t len);

typedef struct token_settings {
    const char *alg;            /* "HS256" | "RS256" | "ES256" */
    const char *key_file;       /* "" allowed for HS256 with `secret` */
    const char *secret;         /* HS256 secret from the environment, or NULL */
    int64_t leeway_s;
    const char *audience;       /* "" or NULL: not checked */
    const char *issuer;
} token_settings;

typedef struct token_verifier token_verifier;

/* Load the keys.  Strings are copied.  0 or -1 with err. */
int token_verifier_new(token_verifier **out, const token_settings *s, char *err, size_t err_len);

/* Re-read the key file; on failure nothing changes.  0 or -1 with err. */
int token_verifier_reload(token_verifier *v, char *err, size_t err_len);

/* The number of keys loaded. */
int token_verifier_keys(const token_verifier *v);

void token_verifier_free(token_verifier *v);

/* Change the leeway (runtime configuration); empties the cache. */
void token_verifier_set_leeway(token_verifier *v, int64_t leeway_s);

typedef struct token_identity {
    char tenant[65];            /* the claims as sent (bounded) */
    char role[17];
    char subject[129];          /* sub, or "" */
    int64_t exp;
} token_identity;

/* Verify a JWT at time `now` (Unix seconds).  0 with *id filled, or -1
 * with *reason set to a static text ("expired", "bad signature", ...). */
int token_verify(token_verifier *v, const char *cred, size_t len, int64_t now,
                 token_identity *id, const char **reason);

#endif /* AKIDB_SERVER_TOKEN_H */
