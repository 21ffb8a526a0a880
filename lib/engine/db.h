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
struct akidb__slot;
struct akidb__tier;
struct akidb__store_disp;

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
struct akidb__store_disp *akidb__db_disp(akidb *db);
struct akidb__tier *akidb__db_tier(akidb *db);
int akidb__db_read_only(const akidb *db);
const char *akidb__db_dir(const akidb *db);
/* dir/sub/<coll_id><ext> (coll_id < 0: dir/sub), allocated with the
 * handle's allocator; NULL when out of memory or too long. */
char *akidb__db_path(const akidb *db, const char *sub, int64_t coll_id, const char *ext);

/* Install (fn non-NULL) or remove (NULL) the test-only fault hook of
 * handle db.  Call it while no other thread uses the handle. */
void akidb__set_fault_hook(akidb *db, akidb__fault_fn fn, void *ctx);

/* The handle's uploader, for the upload calls and for tests that drive
 * dead-letter cycles by hand (open with dlq_retry_interval_ms =
 * AKIDB_NEVER). */
struct akidb__uploader *akidb__db_uploader(akidb *db);

/* Enter a call on collection `name` (a valid name), loading it into RAM
 * if it is not (tier.c) and counting the access: on AKIDB_OK the
 * collection cannot be dropped, swapped or demoted until
 * akidb__db_leave(db, *out); AKIDB_NOTFOUND otherwise, or the errors of a
 * promotion (akidb_tier_set). */
int akidb__db_enter(akidb *db, const char *name, akidb__collection **out);
/* The same for a write (insert, upsert, delete). */
int akidb__db_enter_write(akidb *db, const char *name, akidb__collection **out);
void akidb__db_leave(akidb *db, akidb__collection *c);

/* The same on the slot: flags AKIDB__ENTER_LOAD (promote when not in RAM;
 * without it slot->coll may be NULL) and AKIDB__ENTER_COUNT (an access).
 * Leave with akidb__db_leave_slot. */
#define AKIDB__ENTER_LOAD 1u
#define AKIDB__ENTER_COUNT 2u
#define AKIDB__ENTER_WRITE 4u   /* a write: waits until a promotion is durable */
int akidb__db_enter_slot(akidb *db, const char *name, unsigned flags,
                         struct akidb__slot **slot_out);
void akidb__db_leave_slot(akidb *db, struct akidb__slot *s);

/* The slot of `name` with a reference taken (AKIDB_NOTFOUND), and every
 * slot with references taken (free with akidb__db_slots_free). */
int akidb__db_slot(akidb *db, const char *name, struct akidb__slot **out);
void akidb__slot_ref(struct akidb__slot *s);
void akidb__slot_unref(akidb *db, struct akidb__slot *s);
int akidb__db_slots(akidb *db, struct akidb__slot ***out, size_t *n_out);
void akidb__db_slots_free(akidb *db, struct akidb__slot **slots, size_t n);

/* Rebuild slot s's collection from its local checkpoint and log (the
 * open's recovery, and a promotion from WARM). */
int akidb__db_load(akidb *db, const struct akidb__slot *s, akidb__collection **out);
/* A new, empty collection object for slot s (no log attached). */
int akidb__db_new_coll(akidb *db, const struct akidb__slot *s, akidb__collection **out);
/* Remove collection coll_id's log and checkpoint (missing is fine). */
void akidb__db_remove_local(akidb *db, int64_t coll_id);
/* A new snapshot id and object key for collection coll at time now. */
void akidb__db_snapshot_name(akidb *db, const char *coll, int64_t now, akidb__catalog_snap *e);

/* Count, config and stats of `name` without loading it (count and stats
 * of a collection not in RAM are those of its last demotion).  Every
 * out-parameter may be NULL. */
int akidb__db_stat(akidb *db, const char *name, akidb_collection_stats *out,
                   akidb_collection_config *cfg_out, uint64_t *count_out);

/* AKIDB_OK, or AKIDB_READONLY naming fn when the handle is read-only. */
int akidb__db_writable(akidb *db, const char *fn);

/* Writes to an entered collection: akidb__coll_write / akidb__coll_delete,
 * refused on a read-only handle. */
int akidb__db_write(akidb *db, akidb__collection *c, int upsert, size_t n,
                    const float *vectors, const char *const *external_ids,
                    const char *const *metadata_json, uint64_t *ids_out);
int akidb__db_delete(akidb *db, akidb__collection *c, uint64_t id);

int akidb__db_create(akidb *db, const char *name, const akidb_collection_config *cfg);
int akidb__db_drop(akidb *db, const char *name);

/* Wait until the tail of collection `name` (NULL: of every collection)
 * is empty: AKIDB_OK, AKIDB_NOTFOUND, or AKIDB_BUSY after timeout_ms
 * (AKIDB_NEVER: no limit).  Holds no lock while it sleeps. */
int akidb__db_index_wait(akidb *db, const char *name, uint32_t timeout_ms);

/* Wake the indexer: a collection with a tail was put into a slot
 * (promotion, restore) while the indexer could not see it. */
void akidb__db_index_kick(akidb *db);

/* Tests: stop (1) or resume (0) the indexer thread; see fault.h. */
void akidb__db_index_pause(akidb *db, int paused);

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
