/*
 * fault.h - test-only fault injection at the points where a crash or an I/O
 * error is most dangerous for durability.
 *
 * Not part of the public API: tests link the static library and call
 * akidb__set_fault_hook() directly.  The library itself never exits or
 * prints; a test that wants a crash at a point calls _exit() or raise()
 * from its hook.  The hook returns 0 to carry on, or an errno value (EIO,
 * ENOSPC, ...) to make the operation fail as if the OS had returned it.
 */
#ifndef AKIDB_FAULT_H
#define AKIDB_FAULT_H

#include "akidb.h"

typedef enum akidb__fault_point {
    AKIDB__FAULT_WAL_WRITE = 1,       /* before a log record is written */
    AKIDB__FAULT_WAL_MID_RECORD = 2,  /* half of a record written, the rest not yet */
    AKIDB__FAULT_WAL_BEFORE_SYNC = 3, /* record written, not yet fsync'ed */
    AKIDB__FAULT_CKPT_WRITE = 4,      /* before the checkpoint's temporary file is written */
    AKIDB__FAULT_CKPT_BEFORE_RENAME = 5, /* temporary checkpoint synced, not yet renamed */
    AKIDB__FAULT_CKPT_AFTER_RENAME = 6,  /* checkpoint in place, log not yet emptied */
    /* Tier transitions (tier.c); numbered apart so other subsystems can
     * add points below without renumbering these. */
    AKIDB__FAULT_TIER_DEMOTE = 20,        /* HOT -> WARM: checkpoint written, catalog not updated */
    AKIDB__FAULT_TIER_BEFORE_UPLOAD = 21, /* -> COLD: intent recorded, nothing uploaded */
    AKIDB__FAULT_TIER_AFTER_PUT = 22,     /* -> COLD: object stored, not yet read back */
    AKIDB__FAULT_TIER_AFTER_UPLOAD = 23,  /* -> COLD: object verified, catalog not updated */
    AKIDB__FAULT_TIER_AFTER_CATALOG = 24, /* -> COLD: catalog says COLD, local files remain */
    AKIDB__FAULT_TIER_LOCAL_DELETE = 25,  /* -> COLD: checkpoint removed, log not yet */
    AKIDB__FAULT_TIER_PROMOTE = 26,       /* COLD -> HOT/WARM: local copy written, catalog not */
    AKIDB__FAULT_TIER_CYCLE = 27          /* worker: after each transition of a cycle */
} akidb__fault_point;

typedef int (*akidb__fault_fn)(void *ctx, akidb__fault_point point);

/* Install (fn non-NULL) or remove (NULL) the hook of handle db.  Call it
 * while no other thread uses the handle. */
void akidb__set_fault_hook(akidb *db, akidb__fault_fn fn, void *ctx);

/* Pause (paused = 1: returns once the indexer thread is between slices
 * and will start no other) or resume the handle's indexer, so a test can
 * look at writes that are acknowledged but not linked yet.  Writers still
 * link under back-pressure. */
void akidb__db_index_pause(akidb *db, int paused);

/* The handle's uploader, for tests that drive dead-letter cycles by hand
 * (open with dlq_retry_interval_ms = AKIDB_NEVER). */
struct akidb__uploader;
struct akidb__uploader *akidb__db_uploader(akidb *db);

#endif
