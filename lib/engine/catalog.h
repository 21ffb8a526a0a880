/*
 * catalog.h - the catalog: collections and their settings, snapshots, the
 * dead-letter queue and the application records, in SQLite.  See
 * catalog.c.
 * Errors are raised through akidb__err() with the catalog path named.
 */
#ifndef AKIDB_CATALOG_H
#define AKIDB_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include "akidb.h"

typedef struct akidb__catalog akidb__catalog;

typedef struct akidb__catalog_coll {
    int64_t coll_id;                 /* never reused; names the files */
    char name[AKIDB_MAX_NAME_LEN + 1];
    akidb_collection_config cfg;
    int64_t created_at;              /* microseconds since the epoch */
} akidb__catalog_coll;

/* Open or create the catalog at `path`, migrating it to the current
 * schema.  may_create = 0 refuses a missing or empty catalog with
 * AKIDB_CORRUPT (the caller found data files that a catalog must list).
 * Returns AKIDB_OK, AKIDB_INVALID (made by a newer library: untouched),
 * AKIDB_CORRUPT, AKIDB_IOERR, AKIDB_NOMEM. */
int akidb__catalog_open(const char *path, int may_create, akidb__catalog **out);
void akidb__catalog_close(akidb__catalog *m);

/* Call cb for every collection, in coll_id order; a non-zero return from
 * cb stops the walk and is returned. */
int akidb__catalog_list(akidb__catalog *m, int (*cb)(void *ctx, const akidb__catalog_coll *c),
                     void *ctx);

/* The largest coll_id ever assigned (dropped ones included), 0 if none. */
int akidb__catalog_max_coll_id(akidb__catalog *m, int64_t *out);

int akidb__catalog_create(akidb__catalog *m, const char *name, const akidb_collection_config *cfg,
                       int64_t created_at, int64_t *coll_id_out);
int akidb__catalog_drop(akidb__catalog *m, int64_t coll_id);

/* One failed background upload (see uploader.c). */
typedef struct akidb__catalog_dlq {
    int64_t dlq_id;
    char *object_key;
    char *source_path;     /* the local file to upload again */
    char *reason;          /* the last error message */
    uint32_t attempts;
    int permanent;         /* gave up: kept for the operator to see */
    int64_t created_at;    /* microseconds since the epoch */
    int64_t next_attempt_at;
} akidb__catalog_dlq;

int akidb__catalog_dlq_add(akidb__catalog *m, const akidb__catalog_dlq *e, int64_t *id_out);
/* Callbacks get rows that are valid only during the call, and run without
 * the catalog lock held (they may update or delete entries). */
int akidb__catalog_dlq_list(akidb__catalog *m, int (*cb)(void *ctx, const akidb__catalog_dlq *e),
                         void *ctx);
/* Entries not permanent and due at `now`, oldest due first, at most limit. */
int akidb__catalog_dlq_due(akidb__catalog *m, int64_t now, uint32_t limit,
                        int (*cb)(void *ctx, const akidb__catalog_dlq *e), void *ctx);
int akidb__catalog_dlq_get(akidb__catalog *m, int64_t dlq_id,
                        int (*cb)(void *ctx, const akidb__catalog_dlq *e), void *ctx);
int akidb__catalog_dlq_update(akidb__catalog *m, int64_t dlq_id, const char *reason,
                           uint32_t attempts, int permanent, int64_t next_attempt_at);
int akidb__catalog_dlq_delete(akidb__catalog *m, int64_t dlq_id);
int akidb__catalog_dlq_purge_permanent(akidb__catalog *m);

/* One snapshot of a collection (see snapshot.c). */
typedef struct akidb__catalog_snap {
    char snapshot_id[AKIDB_SNAPSHOT_ID_LEN];
    int64_t coll_id;
    char object_key[AKIDB_MAX_KEY_LEN + 1];
    uint64_t rows;
    uint64_t bytes;
    char sha256[65];           /* lowercase hex */
    int64_t created_at;        /* microseconds since the epoch */
} akidb__catalog_snap;

int akidb__catalog_snap_add(akidb__catalog *m, const akidb__catalog_snap *e);
/* Newest first; callbacks run without the catalog lock. */
int akidb__catalog_snap_list(akidb__catalog *m, int64_t coll_id,
                          int (*cb)(void *ctx, const akidb__catalog_snap *e), void *ctx);
int akidb__catalog_snap_delete(akidb__catalog *m, int64_t coll_id, const char *snapshot_id);

/* Application records (akidb_kv_*): arguments already checked.  get
 * returns an akidb__out_malloc copy with a NUL after it, or AKIDB_NOTFOUND
 * without a message; delete of a missing record is AKIDB_NOTFOUND without
 * a message.  list calls cb in key order with the catalog locked (cb must
 * not call back into the catalog). */
int akidb__catalog_kv_put(akidb__catalog *m, const char *ns, const char *key,
                          const void *value, size_t len);
int akidb__catalog_kv_get(akidb__catalog *m, const char *ns, const char *key,
                          void **value_out, size_t *len_out);
int akidb__catalog_kv_delete(akidb__catalog *m, const char *ns, const char *key);
int akidb__catalog_kv_list(akidb__catalog *m, const char *ns,
                           int (*cb)(void *ctx, const char *key), void *ctx);

#endif
