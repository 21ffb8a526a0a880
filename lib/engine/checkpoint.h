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
 * the catalog's settings), streaming it: each row group is counted into
 * the whole-file checksum and decoded as it is read, and the checksum is
 * compared at the end (a mismatch is AKIDB_CORRUPT naming it, whatever
 * the decoder made of the damage); the recorded collection id is checked
 * against coll_id and the recorded settings against c's.  On any error c
 * may hold part of the file: the caller frees it.  Returns AKIDB_OK (and
 * *last_seq_out), AKIDB_NOTFOUND (no file; no message), AKIDB_CORRUPT
 * (naming the file), AKIDB_INVALID (a pre-release binary checkpoint, not
 * a regular file), AKIDB_IOERR, AKIDB_NOMEM. */
int akidb__ckpt_read(const akidb__env *env, akidb__collection *c, const char *path,
                     uint64_t coll_id, uint64_t *last_seq_out);

/* The same from bytes already in memory (a checkpoint downloaded from the
 * object store); `what` names them in messages.  checked: the caller has
 * already checked the whole bytes against a CRC-32C recorded for them
 * (the catalog's), so the file's own checksum is not computed again. */
int akidb__ckpt_read_mem(const akidb__env *env, akidb__collection *c, const void *data,
                         size_t len, const char *what, uint64_t coll_id, uint64_t *last_seq_out,
                         int checked);

/* Check only the whole-file checksum of checkpoint bytes: AKIDB_OK or
 * AKIDB_CORRUPT naming `what`. */
int akidb__ckpt_check_mem(const void *data, size_t len, const char *what);

/* The collection id, log position and row count a checkpoint's footer
 * records (nothing else is decoded or checked). */
int akidb__ckpt_peek(const akidb__env *env, const void *data, size_t len, const char *what,
                     uint64_t *coll_id_out, uint64_t *last_seq_out, uint64_t *rows_out);

/* Write c as a checkpoint into memory (the caller holds c's lock shared):
 * *buf_out, allocated with env's allocator, holds *len_out bytes, exactly
 * what akidb__ckpt_write would put in the file.  For a demotion whose
 * local write failed (disk full): the store gets the bytes directly. */
int akidb__ckpt_write_mem(const akidb__env *env, const akidb__collection *c, uint64_t coll_id,
                          uint64_t last_seq, const char *what, void **buf_out, size_t *len_out);

/* The exact vectors of the checkpoint file at `path` (opened by path; when
 * fd >= 0, it must be the file fd has open, else AKIDB_IOERR), read in
 * place one vector at a time (AKIDB_EXACT_FILE): *out's source reads row n's dim floats with
 * pread.  Only the footer and the page headers are read here, so the
 * file must be one whose rows were checked (a checkpoint just written, or
 * one loaded or being loaded with its checksum).  The file stays open
 * (renamed over or deleted, it stays readable) until out->close.
 * AKIDB_OK; AKIDB_INVALID when its vectors cannot be read in place (a
 * compressed file), AKIDB_CORRUPT, AKIDB_IOERR, AKIDB_NOMEM, all naming
 * the file.  Reads may run concurrently. */
int akidb__ckpt_vectors_open(const akidb__env *env, const char *path, int fd, uint32_t dim,
                             akidb__coll_vectors *out);

#endif
