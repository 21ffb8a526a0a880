/*
 * meta.h - the catalog: collections and their settings (later: snapshots,
 * dead-letter queue, tier transitions, API keys), in SQLite.  See meta.c.
 * Errors are raised through akidb__err() with the catalog path named.
 */
#ifndef AKIDB_META_H
#define AKIDB_META_H

#include <stdint.h>
#include "akidb.h"

typedef struct akidb__meta akidb__meta;

typedef struct akidb__meta_coll {
    int64_t coll_id;                 /* never reused; names the files */
    char name[AKIDB_MAX_NAME_LEN + 1];
    akidb_collection_config cfg;
    int64_t created_at;              /* microseconds since the epoch */
} akidb__meta_coll;

/* Open or create the catalog at `path`, migrating it to the current
 * schema.  may_create = 0 refuses a missing or empty catalog with
 * AKIDB_CORRUPT (the caller found data files that a catalog must list).
 * Returns AKIDB_OK, AKIDB_INVALID (made by a newer library: untouched),
 * AKIDB_CORRUPT, AKIDB_IOERR, AKIDB_NOMEM. */
int akidb__meta_open(const char *path, int may_create, akidb__meta **out);
void akidb__meta_close(akidb__meta *m);

/* Call cb for every collection, in coll_id order; a non-zero return from
 * cb stops the walk and is returned. */
int akidb__meta_list(akidb__meta *m, int (*cb)(void *ctx, const akidb__meta_coll *c),
                     void *ctx);

/* The largest coll_id ever assigned (dropped ones included), 0 if none. */
int akidb__meta_max_coll_id(akidb__meta *m, int64_t *out);

int akidb__meta_create(akidb__meta *m, const char *name, const akidb_collection_config *cfg,
                       int64_t created_at, int64_t *coll_id_out);
int akidb__meta_drop(akidb__meta *m, int64_t coll_id);

/* One failed background upload (see uploader.c). */
typedef struct akidb__meta_dlq {
    int64_t dlq_id;
    char *object_key;
    char *source_path;     /* the local file to upload again */
    char *reason;          /* the last error message */
    uint32_t attempts;
    int permanent;         /* gave up: kept for the operator to see */
    int64_t created_at;    /* microseconds since the epoch */
    int64_t next_attempt_at;
} akidb__meta_dlq;

int akidb__meta_dlq_add(akidb__meta *m, const akidb__meta_dlq *e, int64_t *id_out);
/* Callbacks get rows that are valid only during the call, and run without
 * the catalog lock held (they may update or delete entries). */
int akidb__meta_dlq_list(akidb__meta *m, int (*cb)(void *ctx, const akidb__meta_dlq *e),
                         void *ctx);
/* Entries not permanent and due at `now`, oldest due first, at most limit. */
int akidb__meta_dlq_due(akidb__meta *m, int64_t now, uint32_t limit,
                        int (*cb)(void *ctx, const akidb__meta_dlq *e), void *ctx);
int akidb__meta_dlq_get(akidb__meta *m, int64_t dlq_id,
                        int (*cb)(void *ctx, const akidb__meta_dlq *e), void *ctx);
int akidb__meta_dlq_update(akidb__meta *m, int64_t dlq_id, const char *reason,
                           uint32_t attempts, int permanent, int64_t next_attempt_at);
int akidb__meta_dlq_delete(akidb__meta *m, int64_t dlq_id);
int akidb__meta_dlq_purge_permanent(akidb__meta *m);

/* One snapshot of a collection (see snapshot.c). */
typedef struct akidb__meta_snap {
    char snapshot_id[AKIDB_SNAPSHOT_ID_LEN];
    int64_t coll_id;
    char object_key[AKIDB_MAX_KEY_LEN + 1];
    uint64_t rows;
    uint64_t bytes;
    char sha256[65];           /* lowercase hex */
    int64_t created_at;        /* microseconds since the epoch */
} akidb__meta_snap;

int akidb__meta_snap_add(akidb__meta *m, const akidb__meta_snap *e);
/* Newest first; callbacks run without the catalog lock. */
int akidb__meta_snap_list(akidb__meta *m, int64_t coll_id,
                          int (*cb)(void *ctx, const akidb__meta_snap *e), void *ctx);
int akidb__meta_snap_delete(akidb__meta *m, int64_t coll_id, const char *snapshot_id);

#endif
