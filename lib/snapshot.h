/*
 * snapshot.h - a collection as one Parquet file, and back (snapshot.c).
 */
#ifndef AKIDB_SNAPSHOT_H
#define AKIDB_SNAPSHOT_H

#include <stdint.h>
#include "akidb_int.h"
#include "collection.h"

typedef struct akidb__snap_result {
    uint64_t rows;
    uint64_t bytes;
    char sha256[65];
} akidb__snap_result;

/* Write collection c to the local file `path` (created, fsync'ed) at one
 * point in time: c's lock is held shared while writing.  zstd_level 0 =
 * uncompressed.  The file is removed on failure. */
int akidb__snap_write(const akidb__env *env, akidb__collection *c, const char *path,
                      int zstd_level, akidb__snap_result *res);

/* Fill the empty, unshared collection c (created with the snapshot's
 * settings) from the snapshot bytes data[0..len).  `what` names the source
 * in messages.  AKIDB_CORRUPT / AKIDB_INVALID / AKIDB_NOMEM. */
int akidb__snap_load(const akidb__env *env, const void *data, size_t len, const char *what,
                     akidb__collection *c);

#endif
