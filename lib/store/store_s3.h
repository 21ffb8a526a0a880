/*
 * store_s3.h - test controls of the S3 backend (never installed).
 *
 * The backend itself is public (akidb_store_s3_open() in akidb.h); these
 * let test/test_s3.c count requests, inject a failure into a multipart
 * upload and send raw signed requests (ListMultipartUploads) to check what
 * the server holds.  Every function requires a store from
 * akidb_store_s3_open().
 */
#ifndef AKIDB_STORE_S3_H
#define AKIDB_STORE_S3_H

#include <stddef.h>
#include <stdint.h>
#include "akidb.h"
#include "store/sigv4.h"

/* HTTP requests this store has sent (every attempt counts).  Thread safe. */
uint64_t akidb__s3_request_count(akidb_store *s);

/* New connections this store has opened (requests on a kept-alive
 * connection open none).  Thread safe. */
uint64_t akidb__s3_connect_count(akidb_store *s);

/* Make part `part_number` (1-based) of every later multipart upload fail
 * after the server has stored it, as if the response had been lost: the
 * upload must then be aborted.  0 turns the injection off. */
void akidb__s3_test_fail_part(akidb_store *s, uint32_t part_number);

/* Send one signed request for the bucket itself (key NULL) or an object,
 * with the given query parameters, and hand back the HTTP status and the
 * body (akidb_malloc()ed, NUL-terminated; free with akidb_free()).
 * Returns AKIDB_OK when an HTTP answer arrived (any status), AKIDB_IOERR
 * on a transport failure, AKIDB_NOMEM. */
int akidb__s3_test_request(akidb_store *s, const char *method, const char *key,
                           const akidb__sigv4_param *params, size_t n_params,
                           long *status_out, char **body_out, size_t *body_len_out);

#endif
