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
#include "common/env.h"
#include "index/hnsw.h"

typedef struct akidb__collection akidb__collection;
struct akidb__wal;

/* A new, empty collection.  cfg must already be validated by the caller.
 * ckpt_path is where its checkpoints go (copied). */
/* The index settings of a collection with settings cfg (storage kind
 * included); seed draws the levels. */
void akidb__coll_hnsw_config(const akidb_collection_config *cfg, uint64_t seed,
                             akidb__hnsw_config *out);
int akidb__coll_new(const char *name, const akidb_collection_config *cfg,
                    const akidb__env *env, uint64_t coll_id, const char *ckpt_path,
                    akidb__collection **out);
/* Frees the collection and closes its log. */
void akidb__coll_free(akidb__collection *c);

/* How the collection's state is written to its checkpoint file: the
 * owner passes checkpoint.c's akidb__ckpt_write.  A parameter rather than
 * a call, so the collection (which the checkpoint format reads) does not
 * depend on the checkpoint format in turn.  The saver is called with the
 * collection's lock held shared. */
typedef int (*akidb__coll_saver_fn)(const akidb__env *env, const akidb__collection *c,
                                    const char *path, uint64_t coll_id, uint64_t last_seq);
void akidb__coll_set_saver(akidb__collection *c, akidb__coll_saver_fn saver);

/* Exact vectors read from a file rather than held in RAM
 * (AKIDB_EXACT_FILE): an index source (hnsw.h; src.n_nodes = the rows the
 * file holds, rows = nodes), what closes it, and the RAM it takes. */
typedef struct akidb__coll_vectors {
    akidb__exact_source src;
    void (*close)(void *ctx);
    size_t bytes;
} akidb__coll_vectors;

/* How a checkpoint file's vectors are opened for reading in place: the
 * owner passes checkpoint.c's akidb__ckpt_vectors_open (a parameter for
 * the reason the saver is one).  After each checkpoint it writes, a
 * collection whose exact vectors live in the file (akidb__coll_wants_
 * file_vectors) opens the new file through it and drops the RAM copies
 * the file now holds. */
typedef int (*akidb__coll_vectors_fn)(const akidb__env *env, const char *path, int fd,
                                      uint32_t dim, akidb__coll_vectors *out);
void akidb__coll_set_vectors_opener(akidb__collection *c, akidb__coll_vectors_fn open_vectors);

/* Whether c keeps its exact vectors in its checkpoint file: storage F16
 * or INT8 with exact AKIDB_EXACT_FILE. */
int akidb__coll_wants_file_vectors(const akidb__collection *c);

/* Give c, still being loaded (not yet shared), the vectors of the
 * checkpoint it is loaded from (the collection owns them from now on);
 * akidb__coll_prepare_index attaches them to the index the load builds,
 * before its rows, so they are never copied to RAM. */
void akidb__coll_set_vectors(akidb__collection *c, const akidb__coll_vectors *v);
void akidb__coll_prepare_index(const akidb__collection *c, akidb__hnsw *index);

/* Read c's exact vectors from its checkpoint file as it is now, and free
 * the RAM copies it holds (tier.c, after a checkpoint downloaded from the
 * object store became the local file).  A no-op unless c wants file
 * vectors.  Takes c's lock exclusively.  On failure (logged) the vectors
 * stay where they are: AKIDB_OK or the error. */
int akidb__coll_reload_vectors(akidb__collection *c);

/* An opaque pointer the owner keeps with the collection (db.c: the
 * table entry a call on it must release). */
void akidb__coll_set_owner(akidb__collection *c, void *owner);
void *akidb__coll_owner(const akidb__collection *c);

/* When the collection was created (microseconds; the catalog's record). */
void akidb__coll_set_created_at(akidb__collection *c, int64_t us);
int64_t akidb__coll_created_at(const akidb__collection *c);

/* ---- the tail and its indexing ----
 * Writes append their vectors to the index's tail (see collection.c);
 * these link it into the graph. */

/* The indexer to wake when the tail grows (borrowed; NULL = none). */
struct akidb__indexer;
void akidb__coll_set_indexer(akidb__collection *c, struct akidb__indexer *ix);

/* How long one slice of linking holds the write lock: searches and writes
 * wait at most this long for the indexer (see docs/BENCHMARKS.md for how
 * it was chosen). */
#ifndef AKIDB__INDEX_SLICE_NS
#define AKIDB__INDEX_SLICE_NS ((uint64_t)2000000)
#endif

/* Link tail nodes, in order, under the write lock, for up to budget_ns
 * (at least one node when the tail is longer than stop_at) or until the
 * tail is stop_at long.  by_writer counts them as back-pressure in the
 * metrics.  Returns the tail size left. */
uint32_t akidb__coll_index_step(akidb__collection *c, uint64_t budget_ns, uint32_t stop_at,
                                int by_writer);

/* The tail size now (no lock: a relaxed read of a value writers keep). */
uint32_t akidb__coll_index_lag(const akidb__collection *c);

/* Hold (1) or release (0) the linking of c's tail; holds nest.  While
 * held, akidb__coll_index_step links nothing and writers do not link
 * under back-pressure.  A checkpoint holds it while it writes (so an
 * indexer waiting for the write lock does not stall searches), and a
 * demotion from the start of its checkpoint to the collection's free
 * (nodes linked after the checkpoint would be thrown away with the RAM
 * copy, and would make the second checkpoint under the slot's exclusive
 * lock rewrite the file).  The last release wakes the indexer. */
void akidb__coll_index_hold(akidb__collection *c, int hold);

/* The tail is not empty and its linking is not held: the indexer has
 * work here. */
int akidb__coll_index_pending(const akidb__collection *c);

/* Writers link nodes themselves while the tail exceeds this bound
 * (akidb_options.max_index_lag, or by default the number of vectors of
 * this dimension in 8 MiB: 16384 at 128-d, clamped to 1024..2^20). */
uint32_t akidb__coll_lag_bound(const akidb__collection *c);
uint32_t akidb__coll_default_lag_bound(uint32_t dim);

/* Give the collection its log (ownership passes to the collection). */
void akidb__coll_attach_wal(akidb__collection *c, struct akidb__wal *wal);
uint64_t akidb__coll_id(const akidb__collection *c);
uint64_t akidb__coll_last_seq(const akidb__collection *c);

/* Recovery: apply one log record (the akidb__wal_replay callback; ctx is
 * the collection).  Errors name the log and the record's seq. */
int akidb__coll_replay(void *ctx, uint64_t seq, const unsigned char *payload, size_t len);

/* Write a checkpoint of the collection and empty its log, holding the
 * collection's lock shared (searches go on, writes wait).  With
 * min_log_bytes 0: unless the log holds no record and a checkpoint exists
 * and neither file was deleted under the handle; otherwise only if the
 * log has at least that many bytes. */
int akidb__coll_checkpoint(akidb__collection *c, uint64_t min_log_bytes);

void akidb__coll_set_last_seq(akidb__collection *c, uint64_t seq);

/* 1 when the collection's log and checkpoint files are still the ones it
 * wrote; else 0, with a sentence naming the one deleted or replaced while
 * the handle was open (akidb__wal_intact). */
int akidb__coll_intact(akidb__collection *c, char *why, size_t why_len);

/* ---- snapshots (snapshot.c) ----
 * A consistent read view: hold the shared lock around the accessors. */
void akidb__coll_rdlock(akidb__collection *c);
void akidb__coll_unlock(akidb__collection *c);
uint32_t akidb__coll_nodes(const akidb__collection *c);
/* Document of a node; 0 when the node is a tombstone (then only
 * *inserted_at, the deleted document's, is set).  Strings borrowed while
 * the lock is held; NULL when absent. */
int akidb__coll_node(const akidb__collection *c, uint32_t node, uint64_t *id,
                     const char **ext, const char **meta, int64_t *inserted_at);
const akidb__hnsw *akidb__coll_index(const akidb__collection *c);
uint64_t akidb__coll_next_id(const akidb__collection *c);

/* The largest document id: ids fit a signed 64-bit integer, the type of
 * the id column in Parquet (and of integers in SQL and most JSON readers). */
#define AKIDB__MAX_DOC_ID ((uint64_t)INT64_MAX)

/* Fill an empty, unshared collection with the n nodes of `index` and
 * their documents (ids[i] 0 and no strings for a node the index holds as
 * deleted).  On success the collection owns `index` and every string of
 * ext/meta (the pointer arrays stay the caller's); on failure nothing
 * changes hands.  AKIDB_CORRUPT (duplicate ids or external ids, a
 * tombstone with a document, next_id not above every id, naming `what`)
 * or AKIDB_NOMEM. */
int akidb__coll_adopt(akidb__collection *c, akidb__hnsw *index, uint32_t n,
                      const uint64_t *ids, char **ext, char **meta, const int64_t *times,
                      uint64_t next_id, const char *what);

/* Move the log from one collection object to another (restore replaces
 * the object under the same name and log). */
struct akidb__wal *akidb__coll_detach_wal(akidb__collection *c);

/* A restored collection continues the old one's log at last_seq and has
 * no checkpoint of its own yet (the next checkpoint writes one). */
void akidb__coll_set_restored(akidb__collection *c, uint64_t last_seq);

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
/* Read document id; every out-parameter may be NULL.  Strings are
 * akidb__out_malloc copies (NULL when absent). */
int akidb__coll_get(akidb__collection *c, uint64_t id, float *vector_out,
                    char **metadata_json_out, char **external_id_out, int64_t *inserted_at_out);
/* Fill the collection-level fields of *out (dim .. index_lag and
 * log_truncated_bytes; not tier, pinned or created_at, which the handle
 * knows). */
void akidb__coll_stat(akidb__collection *c, akidb_collection_stats *out);
/* RAM held (the stats' bytes), and the live and deleted counts; O(1). */
uint64_t akidb__coll_bytes(akidb__collection *c, uint64_t *count_out, uint64_t *deleted_out);
int akidb__coll_search(akidb__collection *c, const float *query, uint32_t k,
                       const akidb_search_params *params, akidb_hit *hits, uint32_t *n_hits);

#endif
