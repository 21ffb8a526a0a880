/*
 * hash.c - SHA-256 through OpenSSL's EVP interface.  See hash.h.
 *
 * EVP rather than the SHA256() shortcuts: it is the interface OpenSSL 3
 * keeps, and it streams, so a snapshot is hashed as it is written instead
 * of being read back.
 */
#include <openssl/evp.h>

#include "common/hash.h"

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void akidb__sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data ? data : (const void *)"", len, d, &n, EVP_sha256(), NULL) || n != 32) {
        out[0] = '\0';
        return;
    }
    to_hex(d, 32, out);
}

akidb__sha256 *akidb__sha256_new(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return (akidb__sha256 *)ctx;
}

int akidb__sha256_update(akidb__sha256 *h, const void *data, size_t len)
{
    return EVP_DigestUpdate((EVP_MD_CTX *)h, data, len) == 1 ? 0 : -1;
}

int akidb__sha256_final(akidb__sha256 *h, char out[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex((EVP_MD_CTX *)h, d, &n) == 1 && n == 32;
    EVP_MD_CTX_free((EVP_MD_CTX *)h);
    if (!ok) {
        out[0] = '\0';
        return -1;
    }
    to_hex(d, 32, out);
    return 0;
}

void akidb__sha256_free(akidb__sha256 *h)
{
    EVP_MD_CTX_free((EVP_MD_CTX *)h);
}
