/*
 * collection.h - an in-RAM collection: documents (id, external id, vector,
 * metadata, insertion time) over an HNSW index.  See collection.c.
 *
 * Locking is internal: every function takes the collection's reader-writer
 * lock (shared for reads and searches, exclusive for writes).  The caller
 * guarantees the collection is not destroyed during a call.
 */
#ifndef AKIDB_COLLECTION_H
#define AKIDB_COLLECTION_H

#include <stddef.h>
#include <stdint.h>
#include "akidb.h"

typedef struct akidb__collection akidb__collection;

/* cfg must already be validated by the caller. */
int akidb__coll_new(const char *name, const akidb_collection_config *cfg,
                    const akidb_allocator *alloc, akidb__collection **out);
void akidb__coll_free(akidb__collection *c);

const char *akidb__coll_name(const akidb__collection *c);
void akidb__coll_config(const akidb__collection *c, akidb_collection_config *out);
uint64_t akidb__coll_count(akidb__collection *c);

/* upsert = 0: akidb_insert() semantics; 1: akidb_upsert().  now_us stamps
 * inserted_at. */
int akidb__coll_write(akidb__collection *c, int upsert, size_t n, const float *vectors,
                      const char *const *external_ids, const char *const *metadata_json,
                      uint64_t *ids_out, int64_t now_us);
int akidb__coll_delete(akidb__collection *c, uint64_t id);
int akidb__coll_lookup(akidb__collection *c, const char *external_id, uint64_t *id_out);
int akidb__coll_get(akidb__collection *c, uint64_t id, float *vector_out,
                    char **metadata_json_out);
int akidb__coll_search(akidb__collection *c, const float *query, uint32_t k,
                       const akidb_search_params *params, akidb_hit *hits, uint32_t *n_hits);

#endif
