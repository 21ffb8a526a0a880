/*
 * store_mock.h - test controls of the in-memory mock store
 * (akidb_store_mock_open).  Internal: tests link the static library.
 */
#ifndef AKIDB_STORE_MOCK_H
#define AKIDB_STORE_MOCK_H

#include <stdint.h>
#include "akidb.h"

typedef enum akidb__mock_fault {
    AKIDB__MOCK_503 = 1,        /* AKIDB_IOERR "503 SlowDown" (retry_after_ms hint if set) */
    AKIDB__MOCK_TIMEOUT = 2,    /* AKIDB_IOERR "timeout" */
    AKIDB__MOCK_403 = 3,        /* AKIDB_INVALID "403 AccessDenied" */
    AKIDB__MOCK_PARTIAL_WRITE = 4, /* put: connection lost mid-upload: AKIDB_IOERR, nothing stored */
    AKIDB__MOCK_CORRUPT_READ = 5   /* get: AKIDB_OK but one byte flipped */
} akidb__mock_fault;

#define AKIDB__MOCK_OP_GET  1u
#define AKIDB__MOCK_OP_SIZE 2u
#define AKIDB__MOCK_OP_PUT  4u
#define AKIDB__MOCK_OP_DEL  8u
#define AKIDB__MOCK_OP_LIST 16u
#define AKIDB__MOCK_OP_ANY  31u

/* Fail the next `count` calls matching `ops` (a mask) and `key_glob`
 * (fnmatch pattern, NULL = any key) with `fault`.  Rules are checked in
 * the order added. */
int akidb__mock_inject(akidb_store *s, unsigned ops, const char *key_glob,
                       akidb__mock_fault fault, uint32_t count, uint32_t retry_after_ms);
void akidb__mock_clear_faults(akidb_store *s);
void akidb__mock_set_latency(akidb_store *s, uint32_t latency_ms);

typedef struct akidb__mock_stats {
    uint64_t calls[5];          /* get, size, put, del, list */
    uint64_t faults;            /* calls answered by an injected fault */
    uint64_t bytes_in;          /* stored by put */
    uint64_t bytes_out;         /* returned by get */
    uint64_t objects;           /* currently stored */
} akidb__mock_stats;
void akidb__mock_stats_get(akidb_store *s, akidb__mock_stats *out);

#endif
