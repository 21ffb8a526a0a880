/*
 * snapshot.h - a collection as one Parquet file, and back (snapshot.c).
 *
 * Two kinds share the format: a snapshot (live documents, for users and
 * other tools) and a checkpoint (every node, tombstones and generator state
 * included, so reopening rebuilds exactly the graph that was saved;
 * checkpoint.c frames it).  Both save the graph's tail (nodes not linked
 * yet) as their last rows and load it back as a tail.
 *
 * "Write the whole collection state to a file" is akidb__ckpt_write (or
 * akidb__snap_encode_exact into any sink) under the collection's shared
 * lock; "load it back" is akidb__ckpt_read / akidb__snap_load into an
 * empty collection: both are complete steps on their own, for whatever
 * moves a collection through a file (checkpoints, tiering).
 */
#ifndef AKIDB_SNAPSHOT_H
#define AKIDB_SNAPSHOT_H

#include <stdint.h>
#include "common/env.h"
#include "engine/collection.h"
#include "format/parquet.h"

/* The value of akidb.format this library writes and reads (docs/FORMATS.md,
 * "Versions and upgrades"). */
#define AKIDB__SNAP_FORMAT "1"
/* ... and the value it writes instead when the file holds a graph tail
 * (akidb.hnsw_linked_rows below the row count; snapshot.c), so that a
 * library that reads only "1" refuses the file rather than load tail rows
 * as graph nodes that nothing links to. */
#define AKIDB__SNAP_FORMAT_TAIL "2"

typedef struct akidb__snap_result {
    uint64_t rows;
    uint64_t bytes;
    char sha256[65];
} akidb__snap_result;

/* Write a snapshot of c to the local file `path` (created; fsync'ed when
 * `durable`, which a private copy about to go to the store need not be) at
 * one point in time: c's lock is held shared while writing, so searches go
 * on and writers wait.  The file is removed on failure. */
int akidb__snap_write(const akidb__env *env, akidb__collection *c, const char *path,
                      int durable, akidb__snap_result *res);

/* Encode every node of c, in node order, as a checkpoint through `sink`,
 * adding the n_kv (at most 12) key/value pairs given.  The caller holds
 * c's lock.  Errors name `what`; the sink's own errors come back as is. */
int akidb__snap_encode_exact(const akidb__env *env, const akidb__collection *c,
                             const char *const *kv_keys, const char *const *kv_vals, size_t n_kv,
                             akidb__pq_sink sink, void *sink_ctx, const char *what);

/* Fill the empty, unshared collection c (created with the file's settings)
 * from a snapshot or checkpoint: from bytes data[0..len), or from a reader
 * already open on them.  `what` names the source in messages.
 * AKIDB_CORRUPT / AKIDB_INVALID / AKIDB_NOMEM. */
int akidb__snap_load(const akidb__env *env, const void *data, size_t len, const char *what,
                     akidb__collection *c);
int akidb__snap_load_reader(const akidb__env *env, akidb__pqr *r, const char *what,
                            akidb__collection *c);

/* A decimal u64 from the file's key_value_metadata: AKIDB_CORRUPT naming
 * `what` and the key when it is missing or not a plain number. */
int akidb__snap_kv_u64(const akidb__pqr *r, const char *key, uint64_t *out, const char *what);

#endif
