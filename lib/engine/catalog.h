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

/* A collection's policy overrides (tier.c): hot idle TTL (s), warm idle
 * TTL (s), promotion threshold (accesses per hour), tiering disabled
 * (0/1), snapshot retention; -1 = the database's value (NULL in SQL). */
#define AKIDB__N_POLICY 5
typedef struct akidb__catalog_policy {
    int64_t v[AKIDB__N_POLICY];
} akidb__catalog_policy;

typedef struct akidb__catalog_coll {
    int64_t coll_id;                 /* never reused; names the files */
    char name[AKIDB_MAX_NAME_LEN + 1];
    akidb_collection_config cfg;
    int64_t created_at;              /* microseconds since the epoch */
    /* tiering (tier.c) */
    akidb_tier tier;
    int pinned;
    int64_t last_access;             /* microseconds since the epoch */
    uint64_t hot_bytes;              /* RAM it held when last in the hot tier */
    uint64_t doc_count, doc_deleted; /* as of its last demotion */
    uint64_t access_count;           /* accesses in the window starting at access_window */
    int64_t access_window;
    akidb__catalog_policy policy;
} akidb__catalog_coll;

/* Open or create the catalog at `path`, migrating it to the current
 * schema.  may_create = 0 refuses a missing or empty catalog with
 * AKIDB_CORRUPT (the caller found data files that a catalog must list).
 * A new catalog file gets permission bits file_mode (SQLite gives its
 * -wal and -shm files the same).  read_only: nothing is created or
 * written (see catalog.c); a missing catalog is AKIDB_NOTFOUND and one
 * that needs a migration AKIDB_READONLY.
 * Returns AKIDB_OK, AKIDB_INVALID (made by a newer library: untouched),
 * AKIDB_CORRUPT, AKIDB_IOERR, AKIDB_NOMEM, AKIDB_NOTFOUND, AKIDB_READONLY. */
int akidb__catalog_open(const char *path, int may_create, unsigned file_mode, int read_only,
                        akidb__catalog **out);
void akidb__catalog_close(akidb__catalog *m);

/* Call cb for every collection, in coll_id order; a non-zero return from
 * cb stops the walk and is returned. */
int akidb__catalog_list(akidb__catalog *m, int (*cb)(void *ctx, const akidb__catalog_coll *c),
                     void *ctx);

/* The largest coll_id ever assigned (dropped ones included), 0 if none. */
int akidb__catalog_max_coll_id(akidb__catalog *m, int64_t *out);

int akidb__catalog_create(akidb__catalog *m, const char *name, const akidb_collection_config *cfg,
                       int64_t created_at, int64_t *coll_id_out);
/* Remove the collection's row, its tier transition and its tier
 * snapshots (their objects go to the tier_gc list, stamped `now`), in one
 * transaction. */
int akidb__catalog_drop(akidb__catalog *m, int64_t coll_id, int64_t now);

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

/* One snapshot of a collection (see snapshot.c): made by the user, or by
 * a demotion to the cold tier (tier.c; the object is the checkpoint file,
 * with its CRC-32C and log position). */
#define AKIDB__SNAP_USER 0
#define AKIDB__SNAP_TIER 1
typedef struct akidb__catalog_snap {
    char snapshot_id[AKIDB_SNAPSHOT_ID_LEN];
    int64_t coll_id;                 /* the collection that took it */
    char coll_name[AKIDB_MAX_NAME_LEN + 1];   /* what finds it: kept across drops */
    char object_key[AKIDB_MAX_KEY_LEN + 1];
    uint64_t rows;
    uint64_t bytes;
    char sha256[65];           /* lowercase hex */
    int64_t created_at;        /* microseconds since the epoch */
    int kind;                  /* AKIDB__SNAP_USER or AKIDB__SNAP_TIER */
    int64_t crc32c;            /* of the whole object; -1 when not recorded */
    uint64_t last_seq;         /* tier snapshots: the log position they hold */
} akidb__catalog_snap;

int akidb__catalog_snap_add(akidb__catalog *m, const akidb__catalog_snap *e);
/* The snapshots recorded under collection name coll_name, whichever
 * collection of that name took them; newest first; callbacks run without
 * the catalog lock. */
int akidb__catalog_snap_list(akidb__catalog *m, const char *coll_name,
                          int (*cb)(void *ctx, const akidb__catalog_snap *e), void *ctx);
int akidb__catalog_snap_delete(akidb__catalog *m, const char *coll_name,
                               const char *snapshot_id);
/* The snapshots collection coll_id took (tier.c: its tier snapshots),
 * newest first. */
int akidb__catalog_snap_list_id(akidb__catalog *m, int64_t coll_id,
                                int (*cb)(void *ctx, const akidb__catalog_snap *e), void *ctx);
/* Every snapshot, grouped by collection name, newest first within one. */
int akidb__catalog_snap_all(akidb__catalog *m,
                            int (*cb)(void *ctx, const akidb__catalog_snap *e), void *ctx);
/* Bytes of every snapshot the catalog records (the object-store quota). */
int akidb__catalog_snap_total(akidb__catalog *m, uint64_t *bytes_out);

/* ---- tiering (tier.c) ----
 * Tiers are stored as text: "hot", "warm", "cold". */
akidb_tier akidb__catalog_tier_parse(const char *s);   /* 0 if unknown */
const char *akidb__catalog_tier_name(akidb_tier t);

/* Write a collection's mutable columns (tier .. policy) from *c. */
int akidb__catalog_coll_update(akidb__catalog *m, const akidb__catalog_coll *c);

/* Access statistics of many collections, in one transaction. */
typedef struct akidb__catalog_access {
    int64_t coll_id;
    int64_t last_access;
    uint64_t access_count;
    int64_t access_window;
} akidb__catalog_access;
int akidb__catalog_access_update(akidb__catalog *m, size_t n, const akidb__catalog_access *rows);

/* The transition in progress of one collection (at most one): written
 * before the first step that changes anything, updated as steps complete,
 * removed with the final tier change (akidb__catalog_tier_commit). */
#define AKIDB__INTENT_STARTED 1    /* the object may be partial or absent */
#define AKIDB__INTENT_VERIFIED 2   /* the object is complete and was read back */
typedef struct akidb__catalog_intent {
    int64_t coll_id;
    akidb_tier from, to;
    int step;
    char snapshot_id[AKIDB_SNAPSHOT_ID_LEN];
    char object_key[AKIDB_MAX_KEY_LEN + 1];
    uint64_t bytes;
    uint32_t crc32c;
    char sha256[65];
    uint64_t rows;
    uint64_t last_seq;
    int64_t started_at;
} akidb__catalog_intent;
int akidb__catalog_intent_put(akidb__catalog *m, const akidb__catalog_intent *e);
int akidb__catalog_intent_delete(akidb__catalog *m, int64_t coll_id);
/* Every intent; callbacks run without the catalog lock. */
int akidb__catalog_intent_list(akidb__catalog *m,
                               int (*cb)(void *ctx, const akidb__catalog_intent *e), void *ctx);

/* One transaction: add snap_add (if not NULL), write c's mutable columns,
 * and remove c's intent when intent_delete is set. */
int akidb__catalog_tier_commit(akidb__catalog *m, const akidb__catalog_coll *c,
                               const akidb__catalog_snap *snap_add, int intent_delete);

/* Objects to delete from the store (dropped collections' tier snapshots,
 * pruned snapshots, partial uploads): kept until the delete succeeds.
 * gc_snap removes a snapshot row and lists its object, atomically.  list's
 * callback runs without the catalog lock. */
int akidb__catalog_gc_add(akidb__catalog *m, const char *key, const char *reason, int64_t now);
int akidb__catalog_gc_snap(akidb__catalog *m, const akidb__catalog_snap *e, const char *reason,
                           int64_t now);
int akidb__catalog_gc_delete(akidb__catalog *m, const char *key);
int akidb__catalog_gc_list(akidb__catalog *m, int (*cb)(void *ctx, const char *key), void *ctx);

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
