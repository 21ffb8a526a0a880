/*
 * hash.h - SHA-256, whole or streamed, as lowercase hex: the checksum the
 * catalog records for every snapshot and the hash SigV4 signs.
 *
 * A thin layer over OpenSSL's EVP interface (hash.c is the one file of
 * lib/common that links OpenSSL), so the rest of the library names no
 * OpenSSL type.
 */
#ifndef AKIDB_HASH_H
#define AKIDB_HASH_H

#include <stddef.h>

/* Hex SHA-256 of data[0..len) (64 digits + NUL).  data may be NULL when
 * len is 0. */
void akidb__sha256_hex(const void *data, size_t len, char out[65]);

/* A running SHA-256: new, update any number of times, then final (which
 * frees it).  new returns NULL when out of memory; update returns 0, or -1
 * on an OpenSSL failure; final writes 64 hex digits + NUL and returns 0 or
 * -1.  free releases a digest without finishing it (NULL is a no-op). */
typedef struct akidb__sha256 akidb__sha256;
akidb__sha256 *akidb__sha256_new(void);
int akidb__sha256_update(akidb__sha256 *h, const void *data, size_t len);
int akidb__sha256_final(akidb__sha256 *h, char out[65]);
void akidb__sha256_free(akidb__sha256 *h);

#endif
