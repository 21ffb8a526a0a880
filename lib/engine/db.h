/*
 * db.h - the database handle: the directory, the collection table,
 * recovery at open, the background threads, and the operations that span
 * collections (create, drop, snapshots and their restore swap).  See db.c.
 *
 * lib/api/ checks arguments and calls these; everything here assumes
 * valid, non-NULL arguments (names already checked, options complete).
 */
#ifndef AKIDB_DB_H
#define AKIDB_DB_H

#include <stddef.h>
#include <stdint.h>
#include "common/env.h"
#include "engine/catalog.h"
#include "engine/collection.h"

struct akidb__uploader;

/* Open (creating if needed) the database in `dir` with options `o` (a
 * complete struct of the current version, validated by the caller) and
 * recover every collection.  Errors as akidb_open(). */
int akidb__db_open(const char *dir, const akidb_options *o, akidb **out);

/* Stop the background threads, checkpoint every collection and free the
 * handle (always freed).  Errors as akidb_close(). */
int akidb__db_close(akidb *db);

/* What the handle's subsystems share (metrics among them). */
akidb__env *akidb__db_env(akidb *db);
akidb__catalog *akidb__db_catalog(akidb *db);
int64_t akidb__db_now_us(const akidb *db);

/* Install (fn non-NULL) or remove (NULL) the test-only fault hook of
 * handle db.  Call it while no other thread uses the handle. */
void akidb__set_fault_hook(akidb *db, akidb__fault_fn fn, void *ctx);

/* The handle's uploader, for the upload calls and for tests that drive
 * dead-letter cycles by hand (open with dlq_retry_interval_ms =
 * AKIDB_NEVER). */
struct akidb__uploader *akidb__db_uploader(akidb *db);

/* Enter a call on collection `name` (a valid name): on AKIDB_OK the handle
 * is held shared, so the collection cannot be dropped or swapped until
 * akidb__db_leave(); AKIDB_NOTFOUND otherwise. */
int akidb__db_enter(akidb *db, const char *name, akidb__collection **out);
void akidb__db_leave(akidb *db);

/* AKIDB_OK, or AKIDB_READONLY naming fn when the handle is read-only. */
int akidb__db_writable(akidb *db, const char *fn);

/* Writes to an entered collection: akidb__coll_write / akidb__coll_delete,
 * refused on a read-only handle. */
int akidb__db_write(akidb *db, akidb__collection *c, int upsert, size_t n,
                    const float *vectors, const char *const *external_ids,
                    const char *const *metadata_json, uint64_t *ids_out);
int akidb__db_delete(akidb *db, akidb__collection *c, uint64_t id);

/* The handle-level fields of an entered collection's stats: tier, pinned,
 * created_at. */
void akidb__db_coll_state(akidb *db, akidb__collection *c, akidb_collection_stats *out);

int akidb__db_create(akidb *db, const char *name, const akidb_collection_config *cfg);
int akidb__db_drop(akidb *db, const char *name);

/* Checkpoint collection `name`, or every collection when name is NULL. */
int akidb__db_checkpoint(akidb *db, const char *name);

/* The names of every collection, sorted, as one akidb_malloc() block (the
 * array of pointers, then the strings); NULL when *n_out is 0. */
int akidb__db_list(akidb *db, char ***names_out, size_t *n_out);

/* Snapshots: see the public akidb_snapshot_* for the semantics.  The list
 * is the catalog's rows, newest first, in a block freed with
 * akidb__out_free(). */
int akidb__db_snapshot_create(akidb *db, const char *coll, char id_out[AKIDB_SNAPSHOT_ID_LEN]);
int akidb__db_snapshot_list(akidb *db, const char *coll, akidb__catalog_snap **rows_out,
                            size_t *n_out);
int akidb__db_snapshot_restore(akidb *db, const char *coll, const char *id);
int akidb__db_snapshot_delete(akidb *db, const char *coll, const char *id);

#endif
