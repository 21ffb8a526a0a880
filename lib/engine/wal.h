/*
 * wal.h - one collection's write-ahead log.  See wal.c for the format.
 *
 * Threading: append, reset and replay are called with the collection's
 * write lock held (one at a time); sync may be called by many writers at
 * once, outside that lock, and shares one fsync among them.
 */
#ifndef AKIDB_WAL_H
#define AKIDB_WAL_H

#include <stddef.h>
#include <stdint.h>
#include "common/env.h"

typedef struct akidb__wal akidb__wal;

#define AKIDB__WAL_HEADER_LEN 32

/* Create a new, empty log at `path` (fsync'ed, directory too; created with
 * the env's file mode); an existing file there is replaced.  On a
 * read-only env no file is made: the log exists in memory only, empty,
 * and refuses appends.  Errors name the file. */
int akidb__wal_create(const akidb__env *env, const char *path, uint64_t coll_id,
                      uint32_t dim, akidb__wal **out);

/* Open an existing log (read-only on a read-only env) and check its
 * header (AKIDB_CORRUPT if damaged or if it belongs to another
 * collection; AKIDB_INVALID for a format version this build does not
 * know). */
int akidb__wal_open(const akidb__env *env, const char *path, uint64_t coll_id,
                    uint32_t dim, akidb__wal **out);

void akidb__wal_close(akidb__wal *w);

/* Replay every valid record with seq > after_seq through apply (payload is
 * borrowed for the call).  A torn tail, or damage after which no record or
 * sync marker claims to have been synced, is cut off (on a read-only env:
 * skipped in memory, the file untouched; logged, metric counted, size in
 * akidb__wal_cut_bytes); damage followed by proof that it was synced is
 * AKIDB_CORRUPT.  apply's non-OK result stops the replay and is returned.
 * Afterwards appends continue after the last valid record, with
 * seq > max(after_seq, last seq). */
int akidb__wal_replay(akidb__wal *w, uint64_t after_seq,
                      int (*apply)(void *ctx, uint64_t seq, const unsigned char *payload,
                                   size_t len),
                      void *ctx);

/* Append one record; on failure the file is cut back to where it was
 * (AKIDB_IOERR, message names the file and the OS error).  In ALWAYS mode
 * the record is also fsync'ed before returning, and a sync marker written
 * after it.  AKIDB_IOERR too, with nothing appended, when the log file
 * (checked after each fsync, or each write in NONE mode) or its
 * checkpoint (checked after each fsync) was deleted while open; appends
 * are then refused until akidb__wal_reset. */
int akidb__wal_append(akidb__wal *w, const void *payload, size_t len, uint64_t *seq_out);

/* INTERVAL mode: return once the record `seq` is durable, sharing the
 * fsync with concurrent callers.  A failed fsync poisons the log: this
 * and every later append return AKIDB_IOERR until reopen.  A log or
 * checkpoint found deleted after the fsync gives AKIDB_IOERR too, and
 * appends are refused until akidb__wal_reset.  No-op in other modes. */
int akidb__wal_sync(akidb__wal *w, uint64_t seq);

/* After a checkpoint that holds every record up to last_seq: empty the log
 * (and mark those records durable for waiting writers).  A log file that
 * was deleted or replaced while open is created anew at its path (its
 * directory too), and the watched checkpoint noted anew; appends
 * are accepted again afterwards. */
int akidb__wal_reset(akidb__wal *w, uint64_t last_seq);

/* Watch the checkpoint at ckpt_path (copied), which this log continues,
 * so the write path can notice its deletion (by path: no descriptor is
 * held).  A missing file is fine (no checkpoint yet).  AKIDB_OK or
 * AKIDB_NOMEM. */
int akidb__wal_watch(akidb__wal *w, const char *ckpt_path);

/* 1 when the log file is still at its path and the watched checkpoint
 * (if there is one) still at its; else 0 and, if why is not NULL, a
 * sentence saying which was deleted or replaced.  Path lookups: for
 * checkpoints and close, not for the write path. */
int akidb__wal_intact(akidb__wal *w, char *why, size_t why_len);

uint64_t akidb__wal_size(const akidb__wal *w);     /* bytes, header included */
uint64_t akidb__wal_last_seq(const akidb__wal *w); /* last appended seq */
const char *akidb__wal_path(const akidb__wal *w);
/* Bytes of torn or damaged tail cut off (or skipped) when it was replayed. */
uint64_t akidb__wal_cut_bytes(const akidb__wal *w);

#endif
