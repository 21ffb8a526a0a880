/*
 * checkpoint.h - a collection's state written to one file, so reopening
 * loads it (graph included) instead of replaying or rebuilding.  The file
 * is a Parquet snapshot of the "checkpoint" kind; see checkpoint.c.
 */
#ifndef AKIDB_CHECKPOINT_H
#define AKIDB_CHECKPOINT_H

#include <stdint.h>
#include "engine/collection.h"

/* Write c to `path` atomically: path.tmp, fsync, rename, fsync directory.
 * The caller holds c's lock (shared).  last_seq = the last log record the
 * state includes.  Errors name the file; a failure leaves any previous
 * checkpoint at `path` untouched. */
int akidb__ckpt_write(const akidb__env *env, const akidb__collection *c, const char *path,
                      uint64_t coll_id, uint64_t last_seq);

/* Load the checkpoint at `path` into the empty collection c (created with
 * the catalog's settings): every byte is checked against the whole-file
 * checksum first, then the recorded collection id against coll_id and the
 * recorded settings against c's.  Returns AKIDB_OK (and *last_seq_out),
 * AKIDB_NOTFOUND (no file), AKIDB_CORRUPT (naming the file), AKIDB_INVALID
 * (a pre-release binary checkpoint), AKIDB_IOERR, AKIDB_NOMEM. */
int akidb__ckpt_read(const akidb__env *env, akidb__collection *c, const char *path,
                     uint64_t coll_id, uint64_t *last_seq_out);

#endif
