/*
 * tier.h - hot/warm/cold tiering: the collection table's slots, the
 * transitions between tiers, the policy and its worker.  See tier.c.
 *
 * db.c owns the table of slots (create, drop, lookup, the calls' enter and
 * leave); tier.c moves a slot's collection between RAM (HOT), its local
 * checkpoint (WARM) and the object store (COLD), and runs the policy.
 */
#ifndef AKIDB_TIER_H
#define AKIDB_TIER_H

#include <pthread.h>
#include <stdint.h>
#include "common/env.h"
#include "engine/catalog.h"
#include "engine/collection.h"

/*
 * One collection of the table, whatever its tier.
 *
 * Locks (see db.c for the order): db->lock guards the table itself.  A
 * slot is kept alive by its reference count (the table holds one; a call
 * holds one from enter to leave).
 *
 *   use   reader-writer lock: every call that uses `coll` holds it shared
 *         from enter to leave; whoever changes `coll` (a promotion, a
 *         demotion, a restore swap, a drop) holds it exclusively, which
 *         waits for the calls in flight and holds new ones back for as
 *         long as the pointer change takes.
 *   cat   mutex: held while the slot's catalog row is rebuilt and written,
 *         so a pin and a transition never write it over each other.
 *   mu    mutex + cond: the tier state below.  Nothing but the tier
 *         policy's own short lock is taken, and no I/O is done, while it
 *         is held.
 *   busy  under mu: one transition (or restore, or drop) owns the slot at
 *         a time; the others wait on cond for it to end, so concurrent
 *         callers share ONE load.
 *
 * Access statistics are relaxed atomics written without any lock (the
 * search path must not pay for them): a coarse timestamp that is only
 * stored when it changes, and a counter.
 */
typedef struct akidb__slot {
    /* immutable after creation */
    char name[AKIDB_MAX_NAME_LEN + 1];
    int64_t coll_id;
    akidb_collection_config cfg;
    int64_t created_at;

    int refs;                       /* atomic */
    pthread_rwlock_t use;
    akidb__collection *coll;        /* under use; NULL unless HOT */
    int gone;                       /* dropped: under use (written exclusively) */

    pthread_mutex_t cat;            /* held while the catalog row is rewritten */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int busy;                       /* under mu */
    uint32_t fails;                 /* under mu: failed transitions in a row */
    int row_dirty;                  /* under mu: the catalog row lags (a lazy WARM -> HOT) */
    int localizing;                 /* under mu: promoted from COLD, local copy being made */
    int local_rc;                   /* under mu: how the last local copy ended */
    char local_err[256];            /* under mu: and why it failed */
    akidb_tier tier;                /* under mu: what the catalog says */
    int pinned;                     /* under mu */
    akidb__catalog_policy policy;   /* under mu: overrides, -1 = inherit */
    uint64_t hot_bytes;             /* under mu: RAM bytes when last HOT */
    uint64_t doc_count, doc_deleted;/* under mu: as of the last demotion */
    uint64_t local_bytes;           /* under mu: checkpoint + log bytes on disk */
    uint64_t cold_bytes;            /* under mu: newest tier snapshot, 0 if none */
    int last_rc;                    /* under mu: last failed transition's code */
    char last_err[256];             /* under mu: and its message */
    int64_t retry_at;               /* under mu: no policy retry before this */

    int64_t last_access;            /* atomic, relaxed: microseconds */
    uint64_t accesses;              /* atomic, relaxed: in the current window */
    int64_t window_start;           /* under mu: start of the current hour window */
    uint64_t prev_window;           /* under mu: accesses in the previous window */
    int64_t saved_access;           /* worker only: last_access as last persisted */
    uint64_t saved_count;           /* worker only: accesses as last persisted */
} akidb__slot;

/* Count one access at time now_us: no lock, and no store at all for the
 * timestamp unless it moved by a second or more. */
static inline void akidb__slot_touch(akidb__slot *s, int64_t now_us)
{
    int64_t last = __atomic_load_n(&s->last_access, __ATOMIC_RELAXED);
    if (now_us - last >= 1000000 || now_us < last)
        __atomic_store_n(&s->last_access, now_us, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->accesses, 1, __ATOMIC_RELAXED);
}

typedef struct akidb__tier akidb__tier;

/* The policy in effect for the database (options at open, then
 * akidb_tier_policy_apply).  TTLs in seconds; UINT64_MAX = never. */
typedef struct akidb__tier_policy {
    uint64_t hot_ttl_s, warm_ttl_s;
    uint64_t promote_per_hour;
    int disabled;
    uint64_t retention;
    uint64_t memory_budget, store_quota;   /* 0 = unlimited */
    uint64_t max_collections;              /* 0 = unlimited */
} akidb__tier_policy;

/* The tier state of handle db, from options o (complete, checked). */
int akidb__tier_new(akidb *db, const akidb_options *o, akidb__tier **out);
/* Start the worker thread (unless the interval is AKIDB_NEVER or the
 * handle is read-only). */
int akidb__tier_start(akidb__tier *t);
/* Stop and join the worker; persist the access statistics. */
void akidb__tier_stop(akidb__tier *t);
void akidb__tier_free(akidb__tier *t);

/* Open: fill a new slot from its catalog row (tier, pin, statistics). */
void akidb__tier_slot_init(akidb__tier *t, akidb__slot *s, const akidb__catalog_coll *mc);
/* Open, after every slot is in the table: finish or roll back the
 * transitions a crash interrupted (catalog intents), remove the local
 * files of cold collections.  Not on a read-only handle. */
int akidb__tier_recover(akidb__tier *t);

/* Make slot s HOT (a call needs its collection).  Waits for a transition
 * in flight; concurrent callers share one load.  AKIDB_NOTFOUND if the
 * slot was dropped meanwhile. */
int akidb__tier_promote(akidb__tier *t, akidb__slot *s);
/* The same for a caller that has claimed s (akidb__tier_claim). */
int akidb__tier_promote_claimed(akidb__tier *t, akidb__slot *s);

/* A collection promoted from COLD is served at once while a thread makes
 * its local copy durable; writes wait for that: returns AKIDB_OK, or the
 * code of a copy that failed (the collection went back to COLD; err gets
 * the message). */
int akidb__tier_wait_local(akidb__slot *s, char *err, size_t err_len);

/* Before a drop: wait until no transition runs on s and claim it (the
 * drop then owns the slot; there is no release: the slot is gone).
 * Afterwards: delete its local files' leftovers and objects (best effort,
 * tier_gc keeps what failed). */
void akidb__tier_claim(akidb__slot *s);
void akidb__tier_release(akidb__slot *s);
void akidb__tier_after_drop(akidb__tier *t);

/* A create that would pass the collection limit: AKIDB_QUOTA. */
int akidb__tier_check_count(akidb__tier *t, size_t n_now, const char *name);
/* A collection was created (HOT) or dropped (in tier `tier`): gauges. */
void akidb__tier_created(akidb__tier *t);
void akidb__tier_dropped(akidb__tier *t, akidb_tier tier);

/* The public calls (arguments already checked). */
int akidb__tier_get(akidb__tier *t, akidb__slot *s, akidb_tier *out);
int akidb__tier_set(akidb__tier *t, akidb__slot *s, akidb_tier tier);
int akidb__tier_pin(akidb__tier *t, akidb__slot *s, int pinned);
int akidb__tier_run_once(akidb__tier *t);
int akidb__tier_info(akidb__tier *t, akidb__slot *s, akidb_tier_info *out);
int akidb__tier_stats(akidb__tier *t, akidb_tier_stats *out);
/* p: which fields are set / reset, values; s NULL = the database. */
int akidb__tier_policy_apply(akidb__tier *t, akidb__slot *s, const akidb_tier_policy *p);
void akidb__tier_policy_get(akidb__tier *t, akidb__slot *s, akidb_tier_policy *out);

/* The snapshot retention count in effect for s. */
uint64_t akidb__tier_retention(akidb__tier *t, akidb__slot *s);

#endif
