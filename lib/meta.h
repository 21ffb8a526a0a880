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

#endif
