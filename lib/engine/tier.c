/*
 * tier.c - hot/warm/cold tiering: the transitions of a collection between
 * RAM, its local checkpoint and the object store, the policy that decides
 * them, and the worker thread that applies it.
 *
 * What each tier holds (see also akidb.h, "Tiering"):
 *
 *   HOT   the collection object in RAM, its log open (db.c's slot->coll).
 *   WARM  ckpt/N.ckpt + wal/N.wal: exactly what open's recovery reads, so
 *         a promotion from WARM *is* that recovery (akidb__db_load), and a
 *         demotion to WARM is a checkpoint plus freeing the RAM.  The
 *         checkpoint is uncompressed Parquet with the exact graph
 *         (tombstones, generator state) and a whole-file CRC-32C.
 *   COLD  a "tier" snapshot in the store: the checkpoint file's bytes as
 *         they are, recorded in the catalog's snapshots table with their
 *         size, CRC-32C and SHA-256 (so akidb_snapshot_restore and any
 *         Parquet reader use it too); no local file.  The checkpoint
 *         rather than the ZSTD snapshot because it holds the exact graph,
 *         needs no encoding to upload (the file is sent as is) and loads
 *         at memory speed; docs/BENCHMARKS.md has the measured sizes and
 *         times of both.
 *
 * Transitions, each run by the one thread that claimed the slot (busy,
 * tier.h).  Every step that puts data in a new place is recorded in the
 * catalog first (tier_intents: intent, then done), and data leaves a tier
 * only once the next one holds a copy that was read back and checked:
 *
 *   HOT -> WARM   checkpoint with the collection's lock shared (searches go
 *                 on); then slot->use exclusively (calls in flight finish,
 *                 new ones wait), a second checkpoint if writes came in
 *                 (usually a no-op), the file read back and its whole-file
 *                 CRC-32C checked, catalog tier = warm, coll detached and
 *                 freed.  A checkpoint that fails for lack of disk (any
 *                 I/O error) makes a policy demotion go straight to COLD.
 *                 The tail of unlinked documents (issue 11) is in the
 *                 checkpoint; the indexer's linking of it is held from the
 *                 first checkpoint to the free (see hot_to_warm).
 *   WARM -> COLD  (log folded into the checkpoint first if it holds
 *                 records) intent STARTED with the object key, size and
 *                 CRC; put; read back in ranges and checked against size
 *                 and CRC-32C; intent VERIFIED; one catalog transaction
 *                 adds the snapshot, sets tier = cold and drops the
 *                 intent; then the local files are removed and tier
 *                 snapshots beyond the retention count are deleted.  If
 *                 the newest tier snapshot already holds these very bytes
 *                 (same size and CRC: the collection came back and was
 *                 only read) nothing is uploaded again.
 *   HOT -> COLD   (disk full only) the same from an in-memory checkpoint,
 *                 with slot->use held exclusively throughout.
 *   COLD -> HOT   the newest tier snapshot is downloaded and checked (size,
 *                 CRC-32C) and loaded from the downloaded bytes; the
 *                 collection is served at once, and a thread (localize_job)
 *                 writes the bytes as the local checkpoint, creates a
 *                 fresh log and sets catalog tier = hot.  Until then writes
 *                 wait, so none is acknowledged while the catalog still
 *                 says COLD (a crash brings back the cold copy, and it is
 *                 complete).  A snapshot that does not verify makes it
 *                 fall back to the previous one that does (logged as an
 *                 error, counted in akidb_tier_fallbacks_total, shown in
 *                 akidb_tier_info).
 *   COLD -> WARM  the same, synchronously, without loading.
 *   WARM -> HOT   akidb__db_load; the catalog row is saved lazily (HOT and
 *                 WARM both have complete local files: the row only says
 *                 whether the next open loads the collection eagerly).
 *                 Either promotion loads the saved tail as a tail (searches
 *                 scan it) and wakes the indexer once the collection is in
 *                 its slot, so the tail is linked in the background.
 *
 * Recovery at open (akidb__tier_recover), per intent left by a crash:
 *   -> COLD, VERIFIED   roll forward: the object is complete and checked,
 *                       so the catalog change is made, local files removed
 *                       (nothing is uploaded twice);
 *   -> COLD, STARTED    roll back: the object, maybe partial, goes to
 *                       tier_gc (deleted by the next cycle), the
 *                       collection stays where it was, files intact;
 * and every COLD collection's local files are removed: leftovers of a
 * crash while they were being removed, or of an unfinished copy out of
 * the cold tier (the catalog still said COLD, so no write was accepted).
 *
 * Access tracking costs a relaxed atomic add (and rarely a store) per call
 * (akidb__slot_touch); the worker rolls hour-long windows and saves the
 * statistics to the catalog every cycle and at close.
 *
 * Memory: after a collection leaves RAM the RSS must drop by about its
 * size (an edge box counts RSS).  With the default allocator the vectors
 * and graph live in mappings of their own (hnsw.c), unmapped when the
 * index is freed, and malloc_trim(0) hands back what the heap kept of the
 * rest (documents, lookup tables).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/crc.h"
#include "common/file.h"
#include "common/hash.h"
#include "engine/catalog.h"
#include "engine/checkpoint.h"
#include "engine/collection.h"
#include "engine/db.h"
#include "engine/snapshot.h"
#include "engine/tier.h"
#include "engine/wal.h"
#include "store/store.h"

#define HOUR_US ((int64_t)3600 * 1000000)
#define DEFAULT_HOT_TTL_S ((uint64_t)6 * 3600)
#define DEFAULT_WARM_TTL_S ((uint64_t)7 * 24 * 3600)
#define DEFAULT_PROMOTE 10
#define DEFAULT_RETENTION 3
#define DEFAULT_INTERVAL_MS 60000u
#define RETRY_BASE_US ((int64_t)60 * 1000000)
#define RETRY_CAP_US HOUR_US
#define VERIFY_CHUNK ((uint64_t)16 << 20)

struct akidb__tier {
    akidb *db;
    akidb__env *env;
    int read_only;
    pthread_mutex_t lock;          /* pol; innermost: nothing is taken under it */
    akidb__tier_policy pol;
    uint32_t interval_ms;
    pthread_mutex_t cycle_lock;    /* one worker cycle at a time */
    pthread_t thread;
    int started, stopping;         /* under wlock */
    int jobs;                      /* under wlock: localize jobs running */
    pthread_mutex_t wlock;
    pthread_cond_t wcond;
    /* statistics since open (atomics) */
    uint64_t ok[4][4], failed[4][4];
    uint64_t loads, load_us, cycles;
};

static const akidb__metric_id dir_metric[4][4][2] = {
    [AKIDB_TIER_HOT][AKIDB_TIER_WARM] = { AKIDB__M_TIER_hot_warm_OK, AKIDB__M_TIER_hot_warm_FAILED },
    [AKIDB_TIER_WARM][AKIDB_TIER_COLD] = { AKIDB__M_TIER_warm_cold_OK, AKIDB__M_TIER_warm_cold_FAILED },
    [AKIDB_TIER_HOT][AKIDB_TIER_COLD] = { AKIDB__M_TIER_hot_cold_OK, AKIDB__M_TIER_hot_cold_FAILED },
    [AKIDB_TIER_COLD][AKIDB_TIER_WARM] = { AKIDB__M_TIER_cold_warm_OK, AKIDB__M_TIER_cold_warm_FAILED },
    [AKIDB_TIER_WARM][AKIDB_TIER_HOT] = { AKIDB__M_TIER_warm_hot_OK, AKIDB__M_TIER_warm_hot_FAILED },
    [AKIDB_TIER_COLD][AKIDB_TIER_HOT] = { AKIDB__M_TIER_cold_hot_OK, AKIDB__M_TIER_cold_hot_FAILED },
};

static const akidb__metric_id count_gauge[4] = {
    0, AKIDB__M_TIER_COLLS_HOT, AKIDB__M_TIER_COLLS_WARM, AKIDB__M_TIER_COLLS_COLD
};

static const char *tname(akidb_tier t)
{
    return akidb__catalog_tier_name(t);
}

static int64_t now_us(const akidb__tier *t)
{
    return akidb__db_now_us(t->db);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Hand freed heap back to the system after a collection left RAM.  Not
 * in sanitizer builds: there the sanitizer's allocator holds the memory,
 * so glibc's malloc_trim() has nothing to give back, and it is known to
 * corrupt glibc's per-thread arena state under them (a SEGV under ASan,
 * google/sanitizers#1721; here under TSan a thread's exit then aborted
 * in __malloc_arena_thread_freeres, seen once in tier_worker_and_api_
 * concurrently). */
static void give_back_memory(const akidb__tier *t)
{
    if (!AKIDB__SANITIZED && t->env->alloc.malloc_fn == akidb__default_allocator.malloc_fn)
        malloc_trim(0);
}

/* ---- policy ----------------------------------------------------------- */

static void policy_defaults(akidb__tier_policy *p, const akidb_options *o)
{
    p->hot_ttl_s = o->tier_hot_ttl_s ? o->tier_hot_ttl_s : DEFAULT_HOT_TTL_S;
    p->warm_ttl_s = o->tier_warm_ttl_s ? o->tier_warm_ttl_s : DEFAULT_WARM_TTL_S;
    p->promote_per_hour = o->tier_promote_per_hour ? o->tier_promote_per_hour : DEFAULT_PROMOTE;
    p->disabled = o->tier_disabled != 0;
    p->retention = o->snapshot_retention ? o->snapshot_retention : DEFAULT_RETENTION;
    p->memory_budget = o->memory_budget;
    p->store_quota = o->store_quota;
    p->max_collections = o->max_collections;
}

static akidb__tier_policy db_policy(akidb__tier *t)
{
    pthread_mutex_lock(&t->lock);
    akidb__tier_policy p = t->pol;
    pthread_mutex_unlock(&t->lock);
    return p;
}

/* The policy for slot s: the database's with s's overrides.  Caller holds
 * s->mu. */
static akidb__tier_policy slot_policy_locked(akidb__tier *t, const akidb__slot *s)
{
    akidb__tier_policy p = db_policy(t);
    const int64_t *v = s->policy.v;
    if (v[0] >= 0) p.hot_ttl_s = (uint64_t)v[0] == (uint64_t)INT64_MAX ? UINT64_MAX : (uint64_t)v[0];
    if (v[1] >= 0) p.warm_ttl_s = (uint64_t)v[1] == (uint64_t)INT64_MAX ? UINT64_MAX : (uint64_t)v[1];
    if (v[2] >= 0) p.promote_per_hour = (uint64_t)v[2];
    if (v[3] >= 0) p.disabled = v[3] != 0;
    if (v[4] >= 0) p.retention = (uint64_t)v[4];
    return p;
}

static akidb__tier_policy slot_policy(akidb__tier *t, akidb__slot *s)
{
    pthread_mutex_lock(&s->mu);
    akidb__tier_policy p = slot_policy_locked(t, s);
    pthread_mutex_unlock(&s->mu);
    return p;
}

uint64_t akidb__tier_retention(akidb__tier *t, akidb__slot *s)
{
    return slot_policy(t, s).retention;
}

/* ---- lifecycle -------------------------------------------------------- */

int akidb__tier_new(akidb *db, const akidb_options *o, akidb__tier **out)
{
    akidb__env *env = akidb__db_env(db);
    akidb__tier *t = akidb__calloc(&env->alloc, 1, sizeof *t);
    if (!t)
        return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
    t->db = db;
    t->env = env;
    t->read_only = o->read_only != 0;
    policy_defaults(&t->pol, o);
    t->interval_ms = o->tier_interval_ms ? o->tier_interval_ms : DEFAULT_INTERVAL_MS;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->cycle_lock, NULL);
    pthread_mutex_init(&t->wlock, NULL);
    pthread_cond_init(&t->wcond, NULL);
    *out = t;
    return AKIDB_OK;
}

void akidb__tier_free(akidb__tier *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->cycle_lock);
    pthread_mutex_destroy(&t->wlock);
    pthread_cond_destroy(&t->wcond);
    akidb__free(&t->env->alloc, t);
}

void akidb__tier_slot_init(akidb__tier *t, akidb__slot *s, const akidb__catalog_coll *mc)
{
    (void)t;
    s->tier = mc->tier ? mc->tier : AKIDB_TIER_HOT;
    s->pinned = mc->pinned;
    s->policy = mc->policy;
    s->hot_bytes = mc->hot_bytes;
    s->doc_count = mc->doc_count;
    s->doc_deleted = mc->doc_deleted;
    s->last_access = mc->last_access;
    s->accesses = mc->access_count;
    s->window_start = mc->access_window ? mc->access_window : mc->last_access;
    s->saved_access = mc->last_access;
    s->saved_count = mc->access_count;
}

static void gauge_add(akidb__tier *t, akidb_tier tier, int64_t delta)
{
    if (tier >= AKIDB_TIER_HOT && tier <= AKIDB_TIER_COLD)
        akidb__metric_add(&t->env->metrics, count_gauge[tier], delta);
}

void akidb__tier_created(akidb__tier *t)
{
    gauge_add(t, AKIDB_TIER_HOT, 1);
}

void akidb__tier_dropped(akidb__tier *t, akidb_tier tier)
{
    gauge_add(t, tier, -1);
}

/* The slot's tier changes (caller holds s->mu). */
static void set_tier_locked(akidb__tier *t, akidb__slot *s, akidb_tier tier)
{
    if (s->tier != tier) {
        gauge_add(t, s->tier, -1);
        gauge_add(t, tier, 1);
        s->tier = tier;
    }
}

int akidb__tier_check_count(akidb__tier *t, size_t n_now, const char *name)
{
    uint64_t max = db_policy(t).max_collections;
    if (max && n_now >= max)
        return akidb__err(AKIDB_QUOTA, "collection %s: the database already holds %zu "
                          "collections, its limit (max_collections %llu)", name, n_now,
                          (unsigned long long)max);
    return AKIDB_OK;
}

/* ---- claiming a slot -------------------------------------------------- */

void akidb__tier_claim(akidb__slot *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->busy || s->localizing)
        pthread_cond_wait(&s->cond, &s->mu);
    s->busy = 1;
    pthread_mutex_unlock(&s->mu);
}

static int try_claim(akidb__slot *s)
{
    pthread_mutex_lock(&s->mu);
    int got = !s->busy && !s->localizing;
    if (got)
        s->busy = 1;
    pthread_mutex_unlock(&s->mu);
    return got;
}

void akidb__tier_release(akidb__slot *s)
{
    pthread_mutex_lock(&s->mu);
    s->busy = 0;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static akidb_tier get_tier(akidb__slot *s)
{
    pthread_mutex_lock(&s->mu);
    akidb_tier tier = s->tier;
    pthread_mutex_unlock(&s->mu);
    return tier;
}

/* ---- bookkeeping ------------------------------------------------------ */

/* Record the outcome of one transition: statistics, metrics, and on a
 * failure the slot's error, a log line and the back-off before the policy
 * tries again.  The thread's error message is kept. */
static int record(akidb__tier *t, akidb__slot *s, akidb_tier from, akidb_tier to, int rc)
{
    int failed = rc != AKIDB_OK;
    __atomic_fetch_add(failed ? &t->failed[from][to] : &t->ok[from][to], 1, __ATOMIC_RELAXED);
    akidb__metric_add(&t->env->metrics, dir_metric[from][to][failed], 1);
    pthread_mutex_lock(&s->mu);
    if (failed) {
        snprintf(s->last_err, sizeof s->last_err, "%s", akidb__errmsg());
        s->last_rc = rc;
        uint32_t shift = s->fails < 6 ? s->fails : 6;
        int64_t wait = RETRY_BASE_US << shift;
        s->retry_at = now_us(t) + (wait < RETRY_CAP_US ? wait : RETRY_CAP_US);
        s->fails++;
    } else {
        s->fails = 0;
        s->retry_at = 0;
    }
    pthread_mutex_unlock(&s->mu);
    if (failed) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", akidb__errmsg());
        akidb__log(t->env, AKIDB_LOG_WARN, "collection %s: %s -> %s failed, it stays %s: %s",
                   s->name, tname(from), tname(to), tname(from), msg);
        akidb__err(rc, "%s", msg);
    } else {
        akidb__log(t->env, AKIDB_LOG_INFO, "collection %s: %s -> %s", s->name, tname(from),
                   tname(to));
    }
    return rc;
}

/* The slot's catalog row as it would be with `tier` (caller holds s->mu). */
static akidb__catalog_coll row_locked(const akidb__slot *s, akidb_tier tier)
{
    akidb__catalog_coll r;
    memset(&r, 0, sizeof r);
    r.coll_id = s->coll_id;
    snprintf(r.name, sizeof r.name, "%s", s->name);
    r.cfg = s->cfg;
    r.created_at = s->created_at;
    r.tier = tier;
    r.pinned = s->pinned;
    r.last_access = __atomic_load_n(&s->last_access, __ATOMIC_RELAXED);
    r.hot_bytes = s->hot_bytes;
    r.doc_count = s->doc_count;
    r.doc_deleted = s->doc_deleted;
    r.access_count = __atomic_load_n(&s->accesses, __ATOMIC_RELAXED);
    r.access_window = s->window_start;
    r.policy = s->policy;
    return r;
}

/* What a transition changes in the slot besides its tier. */
typedef struct change {
    akidb_tier tier;
    int set_sizes;                 /* hot_bytes, doc_count, doc_deleted below */
    uint64_t hot_bytes, doc_count, doc_deleted;
    int reset_access;              /* a promotion: the access count starts over */
    int64_t now;
    int lazy;                      /* WARM -> HOT: the row is saved by the next cycle */
} change;

static void apply_locked(akidb__tier *t, akidb__slot *s, const change *ch)
{
    set_tier_locked(t, s, ch->tier);
    s->row_dirty = ch->lazy;
    if (ch->set_sizes) {
        s->hot_bytes = ch->hot_bytes;
        s->doc_count = ch->doc_count;
        s->doc_deleted = ch->doc_deleted;
    }
    if (ch->reset_access) {
        __atomic_store_n(&s->accesses, 0, __ATOMIC_RELAXED);
        s->prev_window = 0;
        s->window_start = ch->now;
    }
}

/* Commit a transition's end in the catalog (with snap_add, dropping the
 * intent) and, on success, in the slot. */
static int commit(akidb__tier *t, akidb__slot *s, const change *ch,
                  const akidb__catalog_snap *snap_add)
{
    int rc = AKIDB_OK;
    pthread_mutex_lock(&s->cat);
    pthread_mutex_lock(&s->mu);
    akidb__catalog_coll row = row_locked(s, ch->tier);
    pthread_mutex_unlock(&s->mu);
    if (ch->set_sizes) {
        row.hot_bytes = ch->hot_bytes;
        row.doc_count = ch->doc_count;
        row.doc_deleted = ch->doc_deleted;
    }
    if (ch->reset_access) {
        row.access_count = 0;
        row.access_window = ch->now;
    }
    if (!t->read_only && !ch->lazy)
        rc = akidb__catalog_tier_commit(akidb__db_catalog(t->db), &row, snap_add, 1);
    if (rc == AKIDB_OK) {
        pthread_mutex_lock(&s->mu);
        apply_locked(t, s, ch);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&s->cat);
    return rc;
}

static int fault(akidb__tier *t, akidb__fault_point point, const char *what, const char *name)
{
    int err = akidb__fault(t->env, point);
    return err ? akidb__err(AKIDB_IOERR, "collection %s: %s: %s", name, what, strerror(err))
               : AKIDB_OK;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Bytes of s's local files (checkpoint + log). */
static uint64_t local_bytes(akidb__tier *t, const akidb__slot *s)
{
    char *c = akidb__db_path(t->db, "ckpt", s->coll_id, ".ckpt");
    char *w = akidb__db_path(t->db, "wal", s->coll_id, ".wal");
    uint64_t n = file_size(c) + file_size(w);
    akidb__free(&t->env->alloc, c);
    akidb__free(&t->env->alloc, w);
    return n;
}

/* Remove s's local files for good: checkpoint, then log, then sync. */
static int remove_local(akidb__tier *t, const akidb__slot *s)
{
    char *c = akidb__db_path(t->db, "ckpt", s->coll_id, ".ckpt");
    char *w = akidb__db_path(t->db, "wal", s->coll_id, ".wal");
    int rc = AKIDB_OK;
    if (!c || !w) {
        rc = akidb__err(AKIDB_NOMEM, "collection %s: out of memory", s->name);
        goto done;
    }
    if (unlink(c) != 0 && errno != ENOENT)
        akidb__log(t->env, AKIDB_LOG_WARN, "%s: cannot remove: %s", c, strerror(errno));
    if ((rc = fault(t, AKIDB__FAULT_TIER_LOCAL_DELETE, "cannot remove the log", s->name)))
        goto done;
    if (unlink(w) != 0 && errno != ENOENT)
        akidb__log(t->env, AKIDB_LOG_WARN, "%s: cannot remove: %s", w, strerror(errno));
    akidb__fsync_parent(c);
    akidb__fsync_parent(w);
done:
    akidb__free(&t->env->alloc, c);
    akidb__free(&t->env->alloc, w);
    return rc;
}

/* ---- snapshots of a collection --------------------------------------- */

typedef struct snap_list {
    akidb__catalog_snap *rows;
    size_t n, cap;
    const akidb_allocator *alloc;
} snap_list;

static int snap_collect(void *ctx, const akidb__catalog_snap *e)
{
    snap_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        akidb__catalog_snap *r = akidb__realloc_array(l->alloc, l->rows, cap, sizeof *r);
        if (!r)
            return akidb__err(AKIDB_NOMEM, "out of memory listing snapshots");
        l->rows = r;
        l->cap = cap;
    }
    l->rows[l->n++] = *e;
    return AKIDB_OK;
}

/* s's snapshots, newest first (coll_id 0: every collection's). */
static int snaps_of(akidb__tier *t, int64_t coll_id, snap_list *l)
{
    memset(l, 0, sizeof *l);
    l->alloc = &t->env->alloc;
    akidb__catalog *cat = akidb__db_catalog(t->db);
    return coll_id ? akidb__catalog_snap_list_id(cat, coll_id, snap_collect, l)
                   : akidb__catalog_snap_all(cat, snap_collect, l);
}

static void snaps_free(snap_list *l)
{
    akidb__free(l->alloc, l->rows);
    memset(l, 0, sizeof *l);
}

/* The newest tier snapshot of collection coll_id: 1 and *out, or 0. */
static int newest_tier_snap(akidb__tier *t, int64_t coll_id, akidb__catalog_snap *out)
{
    snap_list l;
    int found = 0;
    if (snaps_of(t, coll_id, &l) == AKIDB_OK)
        for (size_t i = 0; i < l.n && !found; i++)
            if (l.rows[i].kind == AKIDB__SNAP_TIER) {
                *out = l.rows[i];
                found = 1;
            }
    snaps_free(&l);
    return found;
}

/* Delete a snapshot: its row and, through tier_gc, its object. */
static int delete_snap(akidb__tier *t, const akidb__catalog_snap *e, const char *why)
{
    akidb__catalog *cat = akidb__db_catalog(t->db);
    int rc = akidb__catalog_gc_snap(cat, e, why, now_us(t));
    if (rc == AKIDB_OK && akidb__disp_delete(akidb__db_disp(t->db), e->object_key) == AKIDB_OK)
        akidb__catalog_gc_delete(cat, e->object_key);
    return rc;
}

/* Tier snapshots of s beyond its retention count, oldest beyond it first. */
static void prune(akidb__tier *t, akidb__slot *s)
{
    uint64_t keep = akidb__tier_retention(t, s);
    snap_list l;
    if (snaps_of(t, s->coll_id, &l) == AKIDB_OK) {
        uint64_t seen = 0;
        for (size_t i = 0; i < l.n; i++) {
            if (l.rows[i].kind != AKIDB__SNAP_TIER || ++seen <= keep)
                continue;
            if (delete_snap(t, &l.rows[i], "beyond the retention count") == AKIDB_OK)
                akidb__log(t->env, AKIDB_LOG_INFO, "collection %s: snapshot %s deleted "
                           "(retention %llu)", s->name, l.rows[i].snapshot_id,
                           (unsigned long long)keep);
        }
    }
    snaps_free(&l);
}

static int cmp_age(const void *x, const void *y)
{
    const akidb__catalog_snap *a = *(const akidb__catalog_snap *const *)x;
    const akidb__catalog_snap *b = *(const akidb__catalog_snap *const *)y;
    return (a->created_at > b->created_at) - (a->created_at < b->created_at);
}

/* Make room for `need` more bytes under the store quota: snapshots beyond
 * their collection's retention count go, oldest first; never the copy a
 * COLD collection lives in.  AKIDB_QUOTA with the sizes if that is not
 * enough. */
static int make_store_room(akidb__tier *t, akidb__slot *s, uint64_t need)
{
    akidb__tier_policy pol = db_policy(t);
    akidb__catalog *cat = akidb__db_catalog(t->db);
    uint64_t used = 0;
    int rc;
    if (!pol.store_quota)
        return AKIDB_OK;
    if ((rc = akidb__catalog_snap_total(cat, &used)))
        return rc;
    if (used + need <= pol.store_quota)
        return AKIDB_OK;
    snap_list l;
    akidb__slot **slots = NULL;
    size_t n_slots = 0;
    const akidb__catalog_snap **cand = NULL;
    size_t n_cand = 0;
    if ((rc = snaps_of(t, 0, &l)) || (rc = akidb__db_slots(t->db, &slots, &n_slots)))
        goto done;
    cand = akidb__alloc_array(&t->env->alloc, l.n ? l.n : 1, sizeof *cand);
    if (!cand) {
        rc = akidb__err(AKIDB_NOMEM, "out of memory");
        goto done;
    }
    /* Rows come grouped by collection name, newest first within one: user
     * snapshots are kept under the name across drops (a dropped
     * collection's count against the name's live collection, or have no
     * retention left when there is none); tier snapshots exist only for
     * live collections (a drop collects them). */
    for (size_t i = 0; i < l.n;) {
        size_t j = i;
        akidb__slot *owner = NULL;
        for (size_t k = 0; k < n_slots; k++)
            if (strcmp(slots[k]->name, l.rows[i].coll_name) == 0)
                owner = slots[k];
        uint64_t keep = owner ? akidb__tier_retention(t, owner) : 0;
        int cold = owner && get_tier(owner) == AKIDB_TIER_COLD;
        int newest_tier_seen = 0;
        for (; j < l.n && strcmp(l.rows[j].coll_name, l.rows[i].coll_name) == 0; j++) {
            int is_cold_copy = cold && l.rows[j].kind == AKIDB__SNAP_TIER && !newest_tier_seen;
            if (l.rows[j].kind == AKIDB__SNAP_TIER)
                newest_tier_seen = 1;
            if ((uint64_t)(j - i) >= keep && !is_cold_copy)
                cand[n_cand++] = &l.rows[j];
        }
        i = j;
    }
    qsort(cand, n_cand, sizeof *cand, cmp_age);
    for (size_t k = 0; k < n_cand && used + need > pol.store_quota; k++) {
        if (delete_snap(t, cand[k], "store quota") != AKIDB_OK)
            continue;
        akidb__log(t->env, AKIDB_LOG_INFO, "store quota: deleted snapshot %s (%llu bytes) "
                   "to make room for collection %s", cand[k]->snapshot_id,
                   (unsigned long long)cand[k]->bytes, s->name);
        used = used > cand[k]->bytes ? used - cand[k]->bytes : 0;
    }
    if (used + need > pol.store_quota)
        rc = akidb__err(AKIDB_QUOTA, "collection %s: its snapshot of %llu bytes does not fit the "
                        "store quota of %llu bytes (%llu in use by snapshots within their "
                        "retention count)", s->name, (unsigned long long)need,
                        (unsigned long long)pol.store_quota, (unsigned long long)used);
done:
    akidb__free(&t->env->alloc, cand);
    if (slots)
        akidb__db_slots_free(t->db, slots, n_slots);
    snaps_free(&l);
    return rc;
}

/* ---- the memory budget ------------------------------------------------ */

static int move_claimed(akidb__tier *t, akidb__slot *s, akidb_tier target, int policy);

/* RAM held by s if it is HOT now, else 0. */
static uint64_t hot_now(akidb__slot *s)
{
    uint64_t b = 0;
    pthread_rwlock_rdlock(&s->use);
    if (s->coll)
        b = akidb__coll_bytes(s->coll, NULL, NULL);
    pthread_rwlock_unlock(&s->use);
    return b;
}

/* The same for a figure that must not wait for a transition in progress
 * (it holds `use` for seconds): the size recorded when s last moved. */
static uint64_t hot_now_or_last(akidb__slot *s)
{
    if (pthread_rwlock_tryrdlock(&s->use) != 0) {
        pthread_mutex_lock(&s->mu);
        uint64_t b = s->hot_bytes;
        pthread_mutex_unlock(&s->mu);
        return b;
    }
    uint64_t b = s->coll ? akidb__coll_bytes(s->coll, NULL, NULL) : 0;
    pthread_rwlock_unlock(&s->use);
    return b;
}

/* What s will hold in RAM once loaded: its size when it last left, or its
 * files' when that is unknown. */
static uint64_t estimate(akidb__tier *t, akidb__slot *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t b = s->hot_bytes;
    pthread_mutex_unlock(&s->mu);
    if (!b)
        b = local_bytes(t, s);
    if (!b) {
        akidb__catalog_snap e;
        if (newest_tier_snap(t, s->coll_id, &e))
            b = e.bytes;
    }
    return b;
}

/* Demote least recently used HOT collections (not s, not pinned, not
 * disabled, not busy, last used before `colder_than`) until the HOT ones
 * hold at most budget - need.  `need` 0 with s NULL: the worker's pass. */
static int make_room(akidb__tier *t, akidb__slot *s, uint64_t need, int64_t colder_than)
{
    akidb__tier_policy pol = db_policy(t);
    if (!pol.memory_budget)
        return AKIDB_OK;
    if (s && need > pol.memory_budget)
        return akidb__err(AKIDB_QUOTA, "collection %s needs %llu bytes of RAM, more than the "
                          "whole memory budget of %llu bytes", s->name,
                          (unsigned long long)need, (unsigned long long)pol.memory_budget);
    akidb__slot **slots;
    size_t n;
    int rc = akidb__db_slots(t->db, &slots, &n);
    if (rc)
        return rc;
    uint64_t *held = akidb__calloc(&t->env->alloc, n ? n : 1, sizeof *held);
    if (!held) {
        akidb__db_slots_free(t->db, slots, n);
        return akidb__err(AKIDB_NOMEM, "out of memory");
    }
    uint64_t used = 0;
    for (size_t i = 0; i < n; i++)
        if (slots[i] != s)
            used += held[i] = hot_now(slots[i]);
    while (used + need > pol.memory_budget) {
        /* The least recently used candidate. */
        size_t best = n;
        int64_t best_access = 0;
        for (size_t i = 0; i < n; i++) {
            akidb__slot *v = slots[i];
            if (v == s || !held[i])
                continue;
            pthread_mutex_lock(&v->mu);
            akidb__tier_policy vp = slot_policy_locked(t, v);
            int movable = !v->pinned && !vp.disabled && !v->busy && !v->localizing;
            pthread_mutex_unlock(&v->mu);
            int64_t la = __atomic_load_n(&v->last_access, __ATOMIC_RELAXED);
            if (movable && la < colder_than && (best == n || la < best_access)) {
                best = i;
                best_access = la;
            }
        }
        if (best == n) {
            rc = akidb__err(AKIDB_QUOTA, "memory budget of %llu bytes: %llu are held by "
                            "collections that cannot be demoted now (pinned, tiering "
                            "disabled, busy or more recently used)%s%s needs %llu",
                            (unsigned long long)pol.memory_budget, (unsigned long long)used,
                            s ? "; collection " : "", s ? s->name : "",
                            (unsigned long long)need);
            break;
        }
        akidb__slot *v = slots[best];
        uint64_t freed = held[best];
        held[best] = 0;
        if (!try_claim(v))
            continue;
        /* A budget demotion frees RAM, so it may fall back to COLD. */
        int vrc = AKIDB_OK;
        if (!v->gone && get_tier(v) == AKIDB_TIER_HOT)
            vrc = move_claimed(t, v, AKIDB_TIER_WARM, 1);
        akidb__tier_release(v);
        if (vrc == AKIDB_OK) {
            akidb__log(t->env, AKIDB_LOG_INFO, "memory budget: collection %s (%llu bytes) "
                       "demoted%s%s", v->name, (unsigned long long)freed,
                       s ? " to make room for " : "", s ? s->name : "");
            used = used > freed ? used - freed : 0;
        }
    }
    akidb__free(&t->env->alloc, held);
    akidb__db_slots_free(t->db, slots, n);
    return rc;
}

/* ---- transitions ------------------------------------------------------ */

static void intent_init(akidb__tier *t, akidb__slot *s, akidb_tier from, akidb_tier to,
                        akidb__catalog_intent *e)
{
    memset(e, 0, sizeof *e);
    e->coll_id = s->coll_id;
    e->from = from;
    e->to = to;
    e->step = AKIDB__INTENT_STARTED;
    e->started_at = now_us(t);
}

/* Detach and free s's collection (caller holds busy; `use` is taken). */
static void detach(akidb__tier *t, akidb__slot *s, int have_use)
{
    if (!have_use)
        pthread_rwlock_wrlock(&s->use);
    akidb__collection *c = s->coll;
    s->coll = NULL;
    pthread_rwlock_unlock(&s->use);
    akidb__coll_free(c);
    give_back_memory(t);
}

/* Write len bytes to path atomically (temporary file, fsync, rename,
 * directory fsync). */
static int write_file(akidb__tier *t, const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return akidb__err(AKIDB_INVALID, "%s: path too long", path);
    int err = akidb__fault(t->env, AKIDB__FAULT_CKPT_WRITE);
    if (err)
        return akidb__err(AKIDB_IOERR, "%s: cannot write: %s", tmp, strerror(err));
    /* akidb_options.file_mode; ckpt/ is made again if it was removed (as
     * checkpoint.c does). */
    const unsigned mode = akidb__env_file_mode(t->env);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0 && errno == ENOENT && akidb__mkdir_parent(tmp, akidb__env_dir_mode(t->env)) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return akidb__err(AKIDB_IOERR, "%s: cannot create: %s", tmp, strerror(errno));
    int rc = AKIDB_OK;
    if ((err = akidb__pwrite_all(fd, data, len, 0)) != 0)
        rc = akidb__err(AKIDB_IOERR, "%s: write failed: %s", tmp, strerror(err));
    else if (fsync(fd) != 0)
        rc = akidb__err(AKIDB_IOERR, "%s: fsync failed: %s", tmp, strerror(errno));
    close(fd);
    if (rc == AKIDB_OK && rename(tmp, path) != 0)
        rc = akidb__err(AKIDB_IOERR, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (rc == AKIDB_OK && (err = akidb__fsync_parent(path)) != 0)
        rc = akidb__err(AKIDB_IOERR, "%s: cannot sync directory: %s", path, strerror(err));
    if (rc)
        unlink(tmp);
    return rc;
}

/* Upload data as object `key` and read it back in ranges, checking the
 * size and CRC-32C.  On failure the object is deleted (or left to tier_gc
 * when even that fails). */
static int upload_verified(akidb__tier *t, akidb__slot *s, const char *key, const void *data,
                           size_t len, uint32_t crc)
{
    akidb__store_disp *d = akidb__db_disp(t->db);
    int rc = fault(t, AKIDB__FAULT_TIER_BEFORE_UPLOAD, "cannot upload", s->name);
    if (rc == AKIDB_OK)
        rc = akidb__disp_put(d, key, data, len);
    if (rc == AKIDB_OK)
        rc = fault(t, AKIDB__FAULT_TIER_AFTER_PUT, "cannot read back", s->name);
    uint64_t size = 0;
    if (rc == AKIDB_OK && (rc = akidb__disp_size(d, key, &size)) == AKIDB_OK && size != len)
        rc = akidb__err(AKIDB_CORRUPT, "collection %s: object %s holds %llu bytes after its "
                        "upload of %zu", s->name, key, (unsigned long long)size, len);
    /* Read back in ranges: the check needs no second copy of the whole
     * collection in RAM. */
    uint32_t got = 0;
    for (uint64_t off = 0; rc == AKIDB_OK && off < len; off += VERIFY_CHUNK) {
        void *buf = NULL;
        size_t n = 0;
        uint64_t want = len - off < VERIFY_CHUNK ? len - off : VERIFY_CHUNK;
        if ((rc = akidb__disp_get(d, key, off, want, &buf, &n)) == AKIDB_OK) {
            if (n != want)
                rc = akidb__err(AKIDB_CORRUPT, "collection %s: object %s: read back %zu bytes "
                                "at offset %llu, expected %llu", s->name, key, n,
                                (unsigned long long)off, (unsigned long long)want);
            else
                got = akidb__crc32c(got, buf, n);
        }
        akidb__out_free(buf);
    }
    if (rc == AKIDB_OK && got != crc)
        rc = akidb__err(AKIDB_CORRUPT, "collection %s: object %s read back with CRC-32C %08x, "
                        "uploaded %08x", s->name, key, got, crc);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", akidb__errmsg());
        if (akidb__disp_delete(d, key) != AKIDB_OK)
            akidb__catalog_gc_add(akidb__db_catalog(t->db), key, "failed upload", now_us(t));
        akidb__err(rc, "%s", msg);
    }
    return rc;
}

/* The rest of a demotion to COLD once the object is verified: catalog,
 * local files, retention. */
static int finish_cold(akidb__tier *t, akidb__slot *s, akidb__catalog_intent *e,
                       const akidb__catalog_snap *snap, const change *ch)
{
    akidb__catalog *cat = akidb__db_catalog(t->db);
    int rc = AKIDB_OK;
    if (e) {
        e->step = AKIDB__INTENT_VERIFIED;
        rc = akidb__catalog_intent_put(cat, e);
    }
    if (rc == AKIDB_OK)
        rc = fault(t, AKIDB__FAULT_TIER_AFTER_UPLOAD, "cannot record the cold copy", s->name);
    if (rc == AKIDB_OK)
        rc = commit(t, s, ch, snap);
    return rc;
}

/* Remove what a demotion to COLD leaves locally once the catalog says
 * COLD; failures are logged (the next open finishes the job). */
static void after_cold(akidb__tier *t, akidb__slot *s)
{
    if (fault(t, AKIDB__FAULT_TIER_AFTER_CATALOG, "cannot remove local files", s->name) ||
        remove_local(t, s)) {
        akidb__log(t->env, AKIDB_LOG_WARN, "collection %s is cold, but its local files could "
                   "not be removed now (the next open removes them): %s", s->name,
                   akidb__errmsg());
    }
    prune(t, s);
}

/* Fill a snapshot row for an upload of a checkpoint (bytes data[0..len)). */
static int cold_snap(akidb__tier *t, akidb__slot *s, const void *data, size_t len,
                     akidb__catalog_snap *e, uint32_t *crc_out)
{
    memset(e, 0, sizeof *e);
    uint64_t coll_id = 0, last_seq = 0, rows = 0;
    int rc = akidb__ckpt_peek(t->env, data, len, s->name, &coll_id, &last_seq, &rows);
    if (rc)
        return rc;
    e->coll_id = s->coll_id;
    snprintf(e->coll_name, sizeof e->coll_name, "%s", s->name);
    akidb__db_snapshot_name(t->db, s->name, now_us(t), e);
    e->rows = rows;
    e->bytes = len;
    akidb__sha256_hex(data, len, e->sha256);
    *crc_out = akidb__crc32c(0, data, len);
    e->crc32c = *crc_out;
    e->kind = AKIDB__SNAP_TIER;
    e->last_seq = last_seq;
    return AKIDB_OK;
}

/* Upload a checkpoint (bytes data[0..len)) as s's new cold copy. */
static int upload_cold(akidb__tier *t, akidb__slot *s, akidb_tier from, const void *data,
                       size_t len, const change *ch)
{
    akidb__catalog_snap e;
    uint32_t crc = 0;
    akidb__catalog_intent in;
    int rc = cold_snap(t, s, data, len, &e, &crc);
    if (rc == AKIDB_OK)
        rc = make_store_room(t, s, len);
    if (rc)
        return rc;
    intent_init(t, s, from, AKIDB_TIER_COLD, &in);
    snprintf(in.snapshot_id, sizeof in.snapshot_id, "%s", e.snapshot_id);
    snprintf(in.object_key, sizeof in.object_key, "%s", e.object_key);
    snprintf(in.sha256, sizeof in.sha256, "%s", e.sha256);
    in.bytes = len;
    in.crc32c = crc;
    in.rows = e.rows;
    in.last_seq = e.last_seq;
    akidb__catalog *cat = akidb__db_catalog(t->db);
    if ((rc = akidb__catalog_intent_put(cat, &in)))
        return rc;
    if ((rc = upload_verified(t, s, e.object_key, data, len, crc)) == AKIDB_OK &&
        (rc = finish_cold(t, s, &in, &e, ch)) != AKIDB_OK) {
        /* Verified but not recorded: the object is no one's. */
        if (akidb__disp_delete(akidb__db_disp(t->db), e.object_key) != AKIDB_OK)
            akidb__catalog_gc_add(cat, e.object_key, "unrecorded upload", now_us(t));
    }
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", akidb__errmsg());
        akidb__catalog_intent_delete(cat, s->coll_id);
        akidb__err(rc, "%s", msg);
    }
    return rc;
}

/* HOT -> COLD without a local file (the local write failed): the
 * checkpoint is built in memory with slot->use held exclusively, so no
 * write can slip in between the copy and the catalog change. */
static int hot_to_cold(akidb__tier *t, akidb__slot *s)
{
    pthread_rwlock_wrlock(&s->use);
    akidb__collection *c = s->coll;
    void *buf = NULL;
    size_t len = 0;
    change ch = { .tier = AKIDB_TIER_COLD, .set_sizes = 1 };
    ch.hot_bytes = akidb__coll_bytes(c, &ch.doc_count, &ch.doc_deleted);
    akidb__coll_rdlock(c);
    int rc = akidb__ckpt_write_mem(t->env, c, (uint64_t)s->coll_id, akidb__coll_last_seq(c),
                                   s->name, &buf, &len);
    akidb__coll_unlock(c);
    if (rc == AKIDB_OK)
        rc = upload_cold(t, s, AKIDB_TIER_HOT, buf, len, &ch);
    akidb__free(&t->env->alloc, buf);
    if (rc) {
        pthread_rwlock_unlock(&s->use);
        return record(t, s, AKIDB_TIER_HOT, AKIDB_TIER_COLD, rc);
    }
    detach(t, s, 1);
    pthread_mutex_lock(&s->mu);
    s->cold_bytes = len;
    pthread_mutex_unlock(&s->mu);
    after_cold(t, s);
    return record(t, s, AKIDB_TIER_HOT, AKIDB_TIER_COLD, AKIDB_OK);
}

/* Read s's checkpoint back and check it (its whole-file CRC-32C) before
 * the RAM copy goes: the local tier must hold a good copy first. */
static int verify_local(akidb__tier *t, akidb__slot *s)
{
    char *ckpt = akidb__db_path(t->db, "ckpt", s->coll_id, ".ckpt");
    const void *data = NULL;
    size_t len = 0;
    int rc = ckpt ? akidb__map_file(ckpt, &data, &len)
                  : akidb__err(AKIDB_NOMEM, "collection %s: out of memory", s->name);
    if (rc == AKIDB_NOTFOUND)
        rc = akidb__err(AKIDB_IOERR, "collection %s: checkpoint %s is missing after it was "
                        "written", s->name, ckpt);
    if (rc == AKIDB_OK)
        rc = akidb__ckpt_check_mem(data, len, ckpt);
    if (data)
        akidb__unmap_file(data, len);
    akidb__free(&t->env->alloc, ckpt);
    return rc;
}

/* HOT -> WARM (see hot_to_warm), with the linking of the tail held. */
static int hot_to_warm_held(akidb__tier *t, akidb__slot *s, int fallback)
{
    akidb__collection *c = s->coll;   /* stable: only the claimer changes it */
    int rc = akidb__coll_checkpoint(c, 0);
    if (rc == AKIDB_OK)
        rc = fault(t, AKIDB__FAULT_TIER_DEMOTE, "cannot demote", s->name);
    if (rc == AKIDB_IOERR && fallback) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", akidb__errmsg());
        akidb__log(t->env, AKIDB_LOG_WARN, "collection %s: the warm tier cannot take it (%s); "
                   "demoting it to the cold tier directly", s->name, msg);
        return hot_to_cold(t, s);
    }
    if (rc)
        return record(t, s, AKIDB_TIER_HOT, AKIDB_TIER_WARM, rc);
    /* From here no call uses the collection: writes that came in during
     * the checkpoint go into a second one (a no-op when there were none). */
    pthread_rwlock_wrlock(&s->use);
    change ch = { .tier = AKIDB_TIER_WARM, .set_sizes = 1 };
    rc = akidb__coll_checkpoint(c, 0);
    ch.hot_bytes = akidb__coll_bytes(c, &ch.doc_count, &ch.doc_deleted);
    if (rc == AKIDB_OK)
        rc = verify_local(t, s);
    if (rc == AKIDB_OK)
        rc = commit(t, s, &ch, NULL);
    if (rc) {
        pthread_rwlock_unlock(&s->use);
        return record(t, s, AKIDB_TIER_HOT, AKIDB_TIER_WARM, rc);
    }
    detach(t, s, 1);
    return record(t, s, AKIDB_TIER_HOT, AKIDB_TIER_WARM, AKIDB_OK);
}

/* HOT -> WARM.  fallback: when the local checkpoint cannot be written,
 * go to COLD instead (policy demotions: the RAM must be freed).
 *
 * The indexer may be linking the collection's tail: its linking is held
 * from here until the collection is freed.  The checkpoint saves graph +
 * tail, so nothing is lost, and a node linked after the first checkpoint
 * would only be thrown away with the RAM copy after forcing the second
 * one (under `use` held exclusively) to rewrite the whole file.  The
 * indexer itself only ever touches a collection with its slot's `use`
 * held shared (db.c, index_work), so detach() never frees it under the
 * indexer.  If the collection stays HOT (the demotion failed), linking
 * resumes. */
static int hot_to_warm(akidb__tier *t, akidb__slot *s, int fallback)
{
    akidb__collection *c = s->coll;
    akidb__coll_index_hold(c, 1);
    int rc = hot_to_warm_held(t, s, fallback);
    if (rc != AKIDB_OK)
        akidb__coll_index_hold(c, 0);   /* still HOT (s->coll is c): link again */
    return rc;
}

/* WARM -> COLD. */
static int warm_to_cold(akidb__tier *t, akidb__slot *s)
{
    char *ckpt = akidb__db_path(t->db, "ckpt", s->coll_id, ".ckpt");
    char *wal = akidb__db_path(t->db, "wal", s->coll_id, ".wal");
    const void *data = NULL;
    size_t len = 0;
    int rc = AKIDB_OK;
    if (!ckpt || !wal) {
        rc = akidb__err(AKIDB_NOMEM, "collection %s: out of memory", s->name);
        goto done;
    }
    /* The object must hold everything: a log with records (a crash, or
     * a demotion that raced with writes) is folded into the checkpoint
     * first. */
    struct stat st;
    if (stat(ckpt, &st) != 0 || file_size(wal) > AKIDB__WAL_HEADER_LEN) {
        akidb__collection *c = NULL;
        if ((rc = akidb__db_load(t->db, s, &c)) == AKIDB_OK)
            rc = akidb__coll_checkpoint(c, 0);
        akidb__coll_free(c);
        give_back_memory(t);
        if (rc)
            goto done;
    }
    if ((rc = akidb__map_file(ckpt, &data, &len))) {
        if (rc == AKIDB_NOTFOUND)
            rc = akidb__err(AKIDB_CORRUPT, "collection %s: checkpoint %s vanished", s->name,
                            ckpt);
        goto done;
    }
    change ch = { .tier = AKIDB_TIER_COLD };
    akidb__catalog_snap last;
    if (newest_tier_snap(t, s->coll_id, &last) && last.bytes == len && last.crc32c >= 0 &&
        (uint32_t)last.crc32c == akidb__crc32c(0, data, len)) {
        /* The store already holds these very bytes (checked when they were
         * uploaded): nothing to send again. */
        uint64_t size = 0;
        if ((rc = akidb__disp_size(akidb__db_disp(t->db), last.object_key, &size)) ==
                AKIDB_OK && size != len)
            rc = AKIDB_NOTFOUND;
        if (rc == AKIDB_OK) {
            rc = commit(t, s, &ch, NULL);
        } else if (rc == AKIDB_NOTFOUND) {
            rc = upload_cold(t, s, AKIDB_TIER_WARM, data, len, &ch);
        }
    } else {
        rc = upload_cold(t, s, AKIDB_TIER_WARM, data, len, &ch);
    }
    if (rc == AKIDB_OK) {
        pthread_mutex_lock(&s->mu);
        s->cold_bytes = len;
        pthread_mutex_unlock(&s->mu);
    }
done:
    if (data)
        akidb__unmap_file(data, len);
    akidb__free(&t->env->alloc, ckpt);
    akidb__free(&t->env->alloc, wal);
    if (rc == AKIDB_OK)
        after_cold(t, s);
    return record(t, s, AKIDB_TIER_WARM, AKIDB_TIER_COLD, rc);
}

/* The bytes of s's cold copy, downloaded and checked: the newest tier
 * snapshot, or (when it does not verify) the newest older snapshot that
 * does.  *is_ckpt: the bytes are a checkpoint (else a user snapshot). */
static int fetch_cold(akidb__tier *t, akidb__slot *s, void **data_out, size_t *len_out,
                      int *is_ckpt)
{
    snap_list l;
    int rc = snaps_of(t, s->coll_id, &l);
    if (rc)
        return rc;
    akidb__store_disp *d = akidb__db_disp(t->db);
    if (!d) {   /* read-only, no akidb_options.store and no DIR/objects */
        snaps_free(&l);
        return akidb__err(AKIDB_UNAVAILABLE, "collection %s is in the cold tier and this "
                          "read-only handle has no object store (no akidb_options.store, and "
                          "the database has no objects/ directory)", s->name);
    }
    /* The newest tier snapshot first, then every other, newest first. */
    size_t first = l.n;
    for (size_t i = 0; i < l.n && first == l.n; i++)
        if (l.rows[i].kind == AKIDB__SNAP_TIER)
            first = i;
    char first_err[512] = "";
    int tried = 0;
    rc = AKIDB_NOTFOUND;
    for (size_t k = 0; k <= l.n; k++) {
        size_t i = k == 0 ? first : k - 1;
        if (i >= l.n || (k > 0 && i == first))
            continue;
        const akidb__catalog_snap *e = &l.rows[i];
        void *buf = NULL;
        size_t len = 0;
        if (e->kind == AKIDB__SNAP_TIER && e->crc32c >= 0) {
            rc = akidb__disp_get_checked(d, e->object_key, e->bytes, (uint32_t)e->crc32c, &buf,
                                         &len);
        } else if ((rc = akidb__disp_get(d, e->object_key, 0, UINT64_MAX, &buf, &len)) ==
                   AKIDB_OK) {
            char sha[65];
            if (len != e->bytes || (akidb__sha256_hex(buf, len, sha), strcmp(sha, e->sha256)))
                rc = akidb__err(AKIDB_CORRUPT, "snapshot %s: %zu bytes or its SHA-256 do not "
                                "match the catalog", e->object_key, len);
        }
        if (rc == AKIDB_OK) {
            if (tried) {
                akidb__metric_add(&t->env->metrics, AKIDB__M_TIER_FALLBACKS, 1);
                akidb__log(t->env, AKIDB_LOG_ERROR, "collection %s: the newest snapshot in the "
                           "store did not verify (%s); loaded the older snapshot %s instead: "
                           "writes made after it are not in it", s->name, first_err,
                           e->snapshot_id);
                pthread_mutex_lock(&s->mu);
                /* last_err is short: the reason is cut (the log has it whole) */
                snprintf(s->last_err, sizeof s->last_err, "promoted from the older snapshot "
                         "%s: the newest did not verify: %.100s", e->snapshot_id, first_err);
                s->last_rc = AKIDB_CORRUPT;
                pthread_mutex_unlock(&s->mu);
            }
            *data_out = buf;
            *len_out = len;
            *is_ckpt = e->kind == AKIDB__SNAP_TIER;
            break;
        }
        akidb__out_free(buf);
        if (rc != AKIDB_CORRUPT && rc != AKIDB_NOTFOUND)
            break;   /* the store is down: older data is no answer to that */
        if (!tried++)
            snprintf(first_err, sizeof first_err, "%s", akidb__errmsg());
        akidb__log(t->env, AKIDB_LOG_WARN, "collection %s: snapshot %s does not verify: %s",
                   s->name, e->snapshot_id, akidb__errmsg());
    }
    if (rc == AKIDB_NOTFOUND && !tried)
        rc = akidb__err(AKIDB_CORRUPT, "collection %s is in the cold tier, but the catalog "
                        "lists no snapshot of it", s->name);
    else if (rc == AKIDB_CORRUPT || rc == AKIDB_NOTFOUND)
        rc = akidb__err(AKIDB_CORRUPT, "collection %s: no snapshot in the store verifies "
                        "(newest: %s)", s->name, first_err);
    snaps_free(&l);
    return rc;
}

/* Load s's cold copy into a new collection object, in RAM only: *data_out
 * keeps the downloaded bytes (the caller frees them with akidb__out_free)
 * for the local copy; *last_seq the log position they hold. */
static int cold_load(akidb__tier *t, akidb__slot *s, akidb__collection **c_out,
                     void **data_out, size_t *len_out, int *is_ckpt, uint64_t *last_seq)
{
    akidb__collection *c = NULL;
    *c_out = NULL;
    *data_out = NULL;
    *last_seq = 0;
    int rc = fetch_cold(t, s, data_out, len_out, is_ckpt);
    if (rc == AKIDB_OK && (rc = akidb__db_new_coll(t->db, s, &c)) == AKIDB_OK) {
        if (*is_ckpt) {
            /* fetch_cold checked the whole bytes against the catalog's
             * CRC-32C: the file's own need not be computed again. */
            rc = akidb__ckpt_read_mem(t->env, c, *data_out, *len_out, s->name,
                                      (uint64_t)s->coll_id, last_seq, 1);
            if (rc == AKIDB_OK)
                akidb__coll_set_last_seq(c, *last_seq);
        } else {
            char what[AKIDB_MAX_NAME_LEN + 64];
            snprintf(what, sizeof what, "snapshot of collection %s", s->name);
            if ((rc = akidb__snap_load(t->env, *data_out, *len_out, what, c)) == AKIDB_OK)
                akidb__coll_set_restored(c, 0);
        }
    }
    if (rc) {
        akidb__coll_free(c);
        akidb__out_free(*data_out);
        *data_out = NULL;
        give_back_memory(t);
        return rc;
    }
    akidb__coll_set_owner(c, s);
    *c_out = c;
    return AKIDB_OK;
}

/* The durable local copy of a collection that came from the cold tier:
 * its checkpoint (the downloaded bytes as they are, or written from RAM
 * for a user snapshot) and a new, empty log continuing after last_seq,
 * attached to c when c is not NULL.  On failure the files are removed. */
static int cold_localize(akidb__tier *t, akidb__slot *s, akidb__collection *c,
                         const void *data, size_t len, int is_ckpt, uint64_t last_seq)
{
    char *ckpt = akidb__db_path(t->db, "ckpt", s->coll_id, ".ckpt");
    char *walp = akidb__db_path(t->db, "wal", s->coll_id, ".wal");
    akidb__wal *w = NULL;
    int rc = AKIDB_OK;
    if (!ckpt || !walp)
        rc = akidb__err(AKIDB_NOMEM, "collection %s: out of memory", s->name);
    if (rc == AKIDB_OK && is_ckpt)
        rc = write_file(t, ckpt, data, len);
    if (rc == AKIDB_OK &&
        (rc = akidb__wal_create(t->env, walp, (uint64_t)s->coll_id, s->cfg.dim, &w)) ==
            AKIDB_OK)
        rc = akidb__wal_watch(w, ckpt);
    /* The new log is empty: replaying it only sets where its records
     * continue (after the checkpoint's last_seq). */
    if (rc == AKIDB_OK && c)
        rc = akidb__wal_replay(w, last_seq, akidb__coll_replay, c);
    if (rc == AKIDB_OK && c) {
        akidb__coll_attach_wal(c, w);
        w = NULL;
        if (!is_ckpt)   /* a user snapshot: the local checkpoint from RAM */
            rc = akidb__coll_checkpoint(c, 0);
        else            /* AKIDB_EXACT_FILE: read from it now (a failure is logged) */
            (void)akidb__coll_reload_vectors(c);
    }
    if (rc == AKIDB_OK)
        rc = fault(t, AKIDB__FAULT_TIER_PROMOTE, "cannot promote", s->name);
    akidb__wal_close(w);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", akidb__errmsg());
        if (c)
            akidb__wal_close(akidb__coll_detach_wal(c));
        remove_local(t, s);
        akidb__err(rc, "%s", msg);
    }
    akidb__free(&t->env->alloc, ckpt);
    akidb__free(&t->env->alloc, walp);
    return rc;
}

/* COLD -> WARM: the local files only; no collection stays in RAM. */
static int from_cold_to_warm(akidb__tier *t, akidb__slot *s)
{
    void *data = NULL;
    size_t len = 0;
    int is_ckpt = 0;
    uint64_t last_seq = 0, id = 0, rows = 0;
    akidb__collection *c = NULL;
    /* A checkpoint needs no decoding (its footer says where its log
     * continues); a user snapshot is loaded to write the local checkpoint
     * from RAM. */
    int rc = fetch_cold(t, s, &data, &len, &is_ckpt);
    if (rc == AKIDB_OK && !is_ckpt) {
        akidb__out_free(data);
        rc = cold_load(t, s, &c, &data, &len, &is_ckpt, &last_seq);
    } else if (rc == AKIDB_OK) {
        rc = akidb__ckpt_peek(t->env, data, len, s->name, &id, &last_seq, &rows);
    }
    if (rc == AKIDB_OK)
        rc = cold_localize(t, s, c, data, len, is_ckpt, last_seq);
    akidb__out_free(data);
    akidb__coll_free(c);
    give_back_memory(t);
    return rc;
}

/* What a promotion from COLD leaves to a thread of its own once the
 * collection is served from RAM: the durable local copy and the catalog
 * change.  Until it ends, the slot is "localizing": searches and reads go
 * on, writes and other transitions wait (a write must not be acknowledged
 * before the catalog says the collection lives on local disk again, or a
 * crash would bring back the cold copy without it).  The local write of a
 * large collection takes far longer than its download (an fsync'ed file
 * of the collection's size), so the first answer does not wait for it. */
typedef struct localize_job {
    akidb__tier *t;
    akidb__slot *s;
    akidb__collection *c;
    void *data;
    size_t len;
    int is_ckpt;
    uint64_t last_seq;
} localize_job;

static void localize_run(localize_job *j)
{
    akidb__tier *t = j->t;
    akidb__slot *s = j->s;
    int rc = cold_localize(t, s, j->c, j->data, j->len, j->is_ckpt, j->last_seq);
    akidb__out_free(j->data);
    if (rc == AKIDB_OK) {
        change ch = { .tier = AKIDB_TIER_HOT, .set_sizes = 1, .reset_access = 1,
                      .now = now_us(t) };
        ch.hot_bytes = akidb__coll_bytes(j->c, &ch.doc_count, &ch.doc_deleted);
        if ((rc = commit(t, s, &ch, NULL)) != AKIDB_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", akidb__errmsg());
            akidb__wal_close(akidb__coll_detach_wal(j->c));
            remove_local(t, s);
            akidb__err(rc, "%s", msg);
        }
    }
    if (rc) {
        /* Back to COLD: the collection leaves RAM again (no write was
         * accepted meanwhile); the catalog never said otherwise. */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", akidb__errmsg());
        detach(t, s, 0);
        pthread_mutex_lock(&s->mu);
        set_tier_locked(t, s, AKIDB_TIER_COLD);
        pthread_mutex_unlock(&s->mu);
        akidb__err(rc, "%s", msg);
    }
    record(t, s, AKIDB_TIER_COLD, AKIDB_TIER_HOT, rc);
    pthread_mutex_lock(&s->mu);
    s->local_rc = rc;
    if (rc)
        snprintf(s->local_err, sizeof s->local_err, "%s", s->last_err);
    s->localizing = 0;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

/* Background threads of the tiering (the worker, local copies) yield to
 * the calls: on a two-core edge box a demotion's checksums and encoding
 * must not take the CPU from the searches of other collections.  Linux
 * nice values are per thread; failure changes nothing. */
static void background_priority(void)
{
#if defined(__linux__) && defined(SYS_gettid)
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
#endif
}

static void localize_finish(localize_job *j)
{
    akidb__tier *t = j->t;
    akidb__slot *s = j->s;
    localize_run(j);
    akidb__free(&t->env->alloc, j);
    akidb__slot_unref(t->db, s);
    pthread_mutex_lock(&t->wlock);
    t->jobs--;
    pthread_cond_broadcast(&t->wcond);
    pthread_mutex_unlock(&t->wlock);
}

static void *localize_main(void *arg)
{
    background_priority();
    localize_finish(arg);
    return NULL;
}

int akidb__tier_wait_local(akidb__slot *s, char *err, size_t err_len)
{
    pthread_mutex_lock(&s->mu);
    while (s->localizing)
        pthread_cond_wait(&s->cond, &s->mu);
    int rc = s->local_rc;
    if (rc && err)
        snprintf(err, err_len, "%s", s->local_err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* WARM or COLD -> HOT. */
static int to_hot(akidb__tier *t, akidb__slot *s, int policy)
{
    akidb_tier from = get_tier(s);
    int64_t t0 = mono_us();
    akidb__collection *c = NULL;
    void *data = NULL;
    size_t len = 0;
    int is_ckpt = 0;
    uint64_t last_seq = 0;
    int64_t colder_than = policy ? __atomic_load_n(&s->last_access, __ATOMIC_RELAXED)
                                 : INT64_MAX;
    int rc = make_room(t, s, estimate(t, s), colder_than);
    if (rc == AKIDB_OK)
        rc = from == AKIDB_TIER_WARM ? akidb__db_load(t->db, s, &c)
                                     : cold_load(t, s, &c, &data, &len, &is_ckpt, &last_seq);
    localize_job *job = NULL;
    if (rc == AKIDB_OK && (from == AKIDB_TIER_WARM || t->read_only)) {
        /* From WARM the catalog is not written now: HOT and WARM both have
         * complete local files and differ only in whether the next open
         * loads the collection eagerly, so the row is saved by the next
         * worker cycle or the close, not on the path of the call that is
         * waiting for its first answer.  Read-only: RAM only. */
        change ch = { .tier = AKIDB_TIER_HOT, .set_sizes = 1, .reset_access = 1,
                      .now = now_us(t), .lazy = 1 };
        ch.hot_bytes = akidb__coll_bytes(c, &ch.doc_count, &ch.doc_deleted);
        rc = commit(t, s, &ch, NULL);
        akidb__out_free(data);
        data = NULL;
    } else if (rc == AKIDB_OK) {
        /* From COLD: served now, made durable by a job (localize_job). */
        job = akidb__calloc(&t->env->alloc, 1, sizeof *job);
        if (!job)
            rc = akidb__err(AKIDB_NOMEM, "collection %s: out of memory", s->name);
    }
    if (rc) {
        akidb__coll_free(c);
        akidb__out_free(data);
        give_back_memory(t);
        return record(t, s, from, AKIDB_TIER_HOT, rc);
    }
    if (job) {
        pthread_mutex_lock(&s->mu);
        s->localizing = 1;
        s->local_rc = AKIDB_OK;
        set_tier_locked(t, s, AKIDB_TIER_HOT);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_rwlock_wrlock(&s->use);
    s->coll = c;
    pthread_rwlock_unlock(&s->use);
    /* Its tail (the checkpoint's or the snapshot's, and the log's records
     * replayed) was loaded while the indexer could not see it: from now
     * on the indexer links it, and searches scan it meanwhile. */
    akidb__db_index_kick(t->db);
    int64_t us = mono_us() - t0;
    __atomic_fetch_add(&t->loads, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&t->load_us, (uint64_t)us, __ATOMIC_RELAXED);
    akidb__histogram_observe(&t->env->metrics, AKIDB__H_TIER_LOAD, us);
    if (!job)
        return record(t, s, from, AKIDB_TIER_HOT, AKIDB_OK);
    *job = (localize_job){ t, s, c, data, len, is_ckpt, last_seq };
    akidb__slot_ref(s);
    pthread_mutex_lock(&t->wlock);
    t->jobs++;
    pthread_mutex_unlock(&t->wlock);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, localize_main, job) != 0)
        localize_finish(job);   /* no thread: do it here */
    pthread_attr_destroy(&attr);
    return AKIDB_OK;
}

/* COLD -> WARM. */
static int cold_to_warm(akidb__tier *t, akidb__slot *s)
{
    int rc = from_cold_to_warm(t, s);
    if (rc == AKIDB_OK) {
        change ch = { .tier = AKIDB_TIER_WARM };
        if ((rc = commit(t, s, &ch, NULL)) != AKIDB_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", akidb__errmsg());
            remove_local(t, s);
            akidb__err(rc, "%s", msg);
        }
    }
    return record(t, s, AKIDB_TIER_COLD, AKIDB_TIER_WARM, rc);
}

/* Move claimed slot s step by step to `target`.  policy: a demotion by
 * the worker or the budget (may fall back from WARM to COLD; a promotion
 * only evicts colder collections). */
static int move_claimed(akidb__tier *t, akidb__slot *s, akidb_tier target, int policy)
{
    if (s->gone)
        return akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", s->name);
    if (t->read_only) {
        if (target == AKIDB_TIER_HOT && get_tier(s) != AKIDB_TIER_HOT)
            return to_hot(t, s, policy);
        return get_tier(s) == target ? AKIDB_OK
                                     : akidb__err(AKIDB_READONLY, "collection %s: the database "
                                                  "is open read-only: no tier change",
                                                  s->name);
    }
    for (int steps = 0; steps < 4; steps++) {
        akidb_tier cur = get_tier(s);
        int rc;
        if (cur == target)
            return AKIDB_OK;
        if (target == AKIDB_TIER_HOT)
            rc = to_hot(t, s, policy);
        else if (cur == AKIDB_TIER_HOT)
            rc = hot_to_warm(t, s, policy);
        else if (cur == AKIDB_TIER_WARM)
            rc = warm_to_cold(t, s);
        else
            rc = cold_to_warm(t, s);
        if (rc)
            return rc;
        if (policy && target == AKIDB_TIER_WARM && get_tier(s) == AKIDB_TIER_COLD)
            return AKIDB_OK;   /* fell back to COLD: the RAM is free, which was the point */
        if (steps < 3 && (rc = fault(t, AKIDB__FAULT_TIER_CYCLE, "interrupted", s->name)))
            return rc;
    }
    return AKIDB_OK;
}

/* After a transition by an explicit call: a promotion from COLD is only
 * "there" once its local copy is durable. */
static int settled(akidb__slot *s, int rc)
{
    char why[256];
    if (rc == AKIDB_OK && (rc = akidb__tier_wait_local(s, why, sizeof why)) != AKIDB_OK)
        akidb__err(rc, "collection %s: %s", s->name, why);
    return rc;
}

int akidb__tier_promote_claimed(akidb__tier *t, akidb__slot *s)
{
    if (s->gone)
        return akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", s->name);
    if (get_tier(s) == AKIDB_TIER_HOT)
        return settled(s, AKIDB_OK);
    return settled(s, move_claimed(t, s, AKIDB_TIER_HOT, 0));
}

int akidb__tier_promote(akidb__tier *t, akidb__slot *s)
{
    /* A call that needs the collection: answered as soon as it is in RAM
     * (a write waits for the local copy in akidb__db_enter_slot). */
    akidb__tier_claim(s);
    int rc = s->gone ? akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", s->name)
                     : move_claimed(t, s, AKIDB_TIER_HOT, 0);
    akidb__tier_release(s);
    return rc;
}

/* ---- object deletes ---------------------------------------------------- */

static int gc_one(void *ctx, const char *key)
{
    akidb__tier *t = ctx;
    if (akidb__disp_delete(akidb__db_disp(t->db), key) == AKIDB_OK)
        akidb__catalog_gc_delete(akidb__db_catalog(t->db), key);
    else
        akidb__log(t->env, AKIDB_LOG_WARN, "object %s: delete failed, will retry: %s", key,
                   akidb__errmsg());
    return AKIDB_OK;
}

static int gc_run(akidb__tier *t)
{
    if (t->read_only)
        return AKIDB_OK;
    return akidb__catalog_gc_list(akidb__db_catalog(t->db), gc_one, t);
}

void akidb__tier_after_drop(akidb__tier *t)
{
    gc_run(t);
}

/* ---- recovery at open -------------------------------------------------- */

typedef struct recover_ctx {
    akidb__tier *t;
    akidb__slot **slots;
    size_t n;
} recover_ctx;

static int recover_intent(void *ctx, const akidb__catalog_intent *e)
{
    recover_ctx *r = ctx;
    akidb__tier *t = r->t;
    akidb__catalog *cat = akidb__db_catalog(t->db);
    akidb__slot *s = NULL;
    for (size_t i = 0; i < r->n; i++)
        if (r->slots[i]->coll_id == e->coll_id)
            s = r->slots[i];
    if (!s)
        return akidb__catalog_intent_delete(cat, e->coll_id);
    if (e->to == AKIDB_TIER_COLD && e->step == AKIDB__INTENT_VERIFIED &&
        s->tier != AKIDB_TIER_COLD) {
        /* Roll forward: the object is complete and was read back. */
        akidb__catalog_snap snap;
        memset(&snap, 0, sizeof snap);
        snap.coll_id = e->coll_id;
        snprintf(snap.coll_name, sizeof snap.coll_name, "%s", s->name);
        snprintf(snap.snapshot_id, sizeof snap.snapshot_id, "%s", e->snapshot_id);
        snprintf(snap.object_key, sizeof snap.object_key, "%s", e->object_key);
        snprintf(snap.sha256, sizeof snap.sha256, "%s", e->sha256);
        snap.rows = e->rows;
        snap.bytes = e->bytes;
        snap.created_at = e->started_at;
        snap.kind = AKIDB__SNAP_TIER;
        snap.crc32c = e->crc32c;
        snap.last_seq = e->last_seq;
        change ch = { .tier = AKIDB_TIER_COLD };
        if (s->coll) {
            ch.set_sizes = 1;
            ch.hot_bytes = akidb__coll_bytes(s->coll, &ch.doc_count, &ch.doc_deleted);
        }
        int rc = commit(t, s, &ch, &snap);
        if (rc)
            return rc;
        if (s->coll)
            detach(t, s, 0);
        s->cold_bytes = e->bytes;
        akidb__log(t->env, AKIDB_LOG_INFO, "collection %s: finished its interrupted move to "
                   "the cold tier (object %s)", s->name, e->object_key);
        return AKIDB_OK;   /* its local files go below, with every cold collection's */
    }
    if (e->to == AKIDB_TIER_COLD && e->step == AKIDB__INTENT_STARTED && e->object_key[0]) {
        /* Roll back: the object may be partial. */
        int rc = akidb__catalog_gc_add(cat, e->object_key, "interrupted upload", now_us(t));
        if (rc)
            return rc;
        akidb__log(t->env, AKIDB_LOG_INFO, "collection %s: rolled back its interrupted move "
                   "to the cold tier; it stays %s", s->name, tname(s->tier));
    }
    if (e->from == AKIDB_TIER_COLD && s->tier == AKIDB_TIER_COLD)
        akidb__log(t->env, AKIDB_LOG_INFO, "collection %s: rolled back its interrupted move "
                   "out of the cold tier", s->name);
    return akidb__catalog_intent_delete(cat, e->coll_id);
}

int akidb__tier_recover(akidb__tier *t)
{
    recover_ctx r = { t, NULL, 0 };
    int rc = akidb__db_slots(t->db, &r.slots, &r.n);
    if (rc)
        return rc;
    if (!t->read_only)
        rc = akidb__catalog_intent_list(akidb__db_catalog(t->db), recover_intent, &r);
    for (size_t i = 0; i < r.n; i++)
        gauge_add(t, r.slots[i]->tier, 1);
    for (size_t i = 0; i < r.n && rc == AKIDB_OK && !t->read_only; i++) {
        akidb__slot *s = r.slots[i];
        /* A cold collection has no local files: what is there is left
         * from a crash while they were removed, or while a promotion
         * wrote them (the catalog never said so: rolled back). */
        if (s->tier == AKIDB_TIER_COLD && local_bytes(t, s))
            rc = remove_local(t, s);
    }
    akidb__db_slots_free(t->db, r.slots, r.n);
    return rc;
}

/* ---- the worker -------------------------------------------------------- */

static void persist_access(akidb__tier *t, akidb__slot **slots, size_t n)
{
    if (t->read_only)
        return;
    akidb__catalog *cat = akidb__db_catalog(t->db);
    akidb__catalog_access *rows = akidb__alloc_array(&t->env->alloc, n ? n : 1, sizeof *rows);
    if (!rows)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        akidb__slot *s = slots[i];
        /* A row that lags a lazy promotion is written whole. */
        pthread_mutex_lock(&s->cat);
        pthread_mutex_lock(&s->mu);
        int dirty = s->row_dirty;
        akidb__catalog_coll row = row_locked(s, s->tier);
        pthread_mutex_unlock(&s->mu);
        if (dirty && akidb__catalog_coll_update(cat, &row) == AKIDB_OK) {
            pthread_mutex_lock(&s->mu);
            s->row_dirty = 0;
            s->saved_access = row.last_access;
            s->saved_count = row.access_count;
            pthread_mutex_unlock(&s->mu);
        }
        pthread_mutex_unlock(&s->cat);
        int64_t la = __atomic_load_n(&s->last_access, __ATOMIC_RELAXED);
        uint64_t cnt = __atomic_load_n(&s->accesses, __ATOMIC_RELAXED);
        pthread_mutex_lock(&s->mu);
        int changed = la != s->saved_access || cnt != s->saved_count;
        if (changed) {
            rows[k].coll_id = s->coll_id;
            rows[k].last_access = la;
            rows[k].access_count = cnt;
            rows[k].access_window = s->window_start;
            s->saved_access = la;
            s->saved_count = cnt;
            k++;
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (akidb__catalog_access_update(cat, k, rows) != AKIDB_OK)
        akidb__log(t->env, AKIDB_LOG_WARN, "cannot save access statistics: %s", akidb__errmsg());
    akidb__free(&t->env->alloc, rows);
}

/* Seconds to microseconds, saturating (a TTL of NEVER stays out of reach). */
static int64_t ttl_us(uint64_t s)
{
    return s >= (uint64_t)INT64_MAX / 1000000 ? INT64_MAX : (int64_t)s * 1000000;
}

/* One policy decision for s at time now: the tier it should move to, or
 * 0.  Caller holds s->mu. */
static akidb_tier decide_locked(akidb__tier *t, akidb__slot *s, int64_t now, int claimed)
{
    akidb__tier_policy p = slot_policy_locked(t, s);
    if (p.disabled || s->pinned || (s->busy && !claimed) || s->localizing || now < s->retry_at)
        return 0;
    int64_t la = __atomic_load_n(&s->last_access, __ATOMIC_RELAXED);
    int64_t idle = now - la;
    uint64_t cur = __atomic_load_n(&s->accesses, __ATOMIC_RELAXED);
    uint64_t rate = cur > s->prev_window ? cur : s->prev_window;
    if (s->tier != AKIDB_TIER_HOT && rate >= p.promote_per_hour)
        return AKIDB_TIER_HOT;
    if (s->tier != AKIDB_TIER_COLD && idle >= ttl_us(p.warm_ttl_s))
        return AKIDB_TIER_COLD;
    if (s->tier == AKIDB_TIER_HOT && idle >= ttl_us(p.hot_ttl_s))
        return AKIDB_TIER_WARM;
    return 0;
}

static int cycle(akidb__tier *t)
{
    if (t->read_only)
        return akidb__err(AKIDB_READONLY, "akidb_tier_run_once: the database is open "
                          "read-only");
    pthread_mutex_lock(&t->cycle_lock);
    akidb__slot **slots;
    size_t n;
    int rc = akidb__db_slots(t->db, &slots, &n);
    if (rc) {
        pthread_mutex_unlock(&t->cycle_lock);
        return rc;
    }
    gc_run(t);
    int64_t now = now_us(t);
    /* Access windows: an hour each; the previous one's count is kept. */
    for (size_t i = 0; i < n; i++) {
        akidb__slot *s = slots[i];
        pthread_mutex_lock(&s->mu);
        if (now - s->window_start >= HOUR_US || now < s->window_start) {
            uint64_t cnt = __atomic_exchange_n(&s->accesses, 0, __ATOMIC_RELAXED);
            s->prev_window = now - s->window_start < 2 * HOUR_US ? cnt : 0;
            s->window_start = now;
        }
        pthread_mutex_unlock(&s->mu);
    }
    akidb__tier_policy pol = db_policy(t);
    for (size_t i = 0; i < n && !pol.disabled; i++) {
        akidb__slot *s = slots[i];
        pthread_mutex_lock(&s->mu);
        akidb_tier want = decide_locked(t, s, now, 0);
        pthread_mutex_unlock(&s->mu);
        if (!want || !try_claim(s))
            continue;
        /* Decided again under the claim: a call may have changed things. */
        pthread_mutex_lock(&s->mu);
        want = decide_locked(t, s, now, 1);
        pthread_mutex_unlock(&s->mu);
        if (want && !s->gone)
            move_claimed(t, s, want, 1);   /* failures are recorded in the slot */
        akidb__tier_release(s);
    }
    if (!pol.disabled && pol.memory_budget && make_room(t, NULL, 0, INT64_MAX) != AKIDB_OK)
        akidb__log(t->env, AKIDB_LOG_WARN, "memory budget: %s", akidb__errmsg());
    persist_access(t, slots, n);
    akidb__db_slots_free(t->db, slots, n);
    __atomic_fetch_add(&t->cycles, 1, __ATOMIC_RELAXED);
    akidb__metric_add(&t->env->metrics, AKIDB__M_TIER_CYCLES, 1);
    pthread_mutex_unlock(&t->cycle_lock);
    return AKIDB_OK;
}

int akidb__tier_run_once(akidb__tier *t)
{
    return cycle(t);
}

static void *worker_main(void *arg)
{
    akidb__tier *t = arg;
    background_priority();
    pthread_mutex_lock(&t->wlock);
    while (!t->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)t->interval_ms * 1000000u;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&t->wcond, &t->wlock, &until);
        if (t->stopping)
            break;
        pthread_mutex_unlock(&t->wlock);
        if (cycle(t) != AKIDB_OK)
            akidb__log(t->env, AKIDB_LOG_WARN, "tier worker cycle failed: %s", akidb__errmsg());
        pthread_mutex_lock(&t->wlock);
    }
    pthread_mutex_unlock(&t->wlock);
    return NULL;
}

int akidb__tier_start(akidb__tier *t)
{
    if (t->read_only || t->interval_ms == AKIDB_NEVER)
        return AKIDB_OK;
    if (pthread_create(&t->thread, NULL, worker_main, t) != 0)
        return akidb__err(AKIDB_ERROR, "akidb_open: cannot start the tier worker");
    t->started = 1;
    return AKIDB_OK;
}

void akidb__tier_stop(akidb__tier *t)
{
    if (!t)
        return;
    /* Local copies of promoted collections finish first. */
    pthread_mutex_lock(&t->wlock);
    while (t->jobs)
        pthread_cond_wait(&t->wcond, &t->wlock);
    pthread_mutex_unlock(&t->wlock);
    if (t->started) {
        pthread_mutex_lock(&t->wlock);
        t->stopping = 1;
        pthread_cond_broadcast(&t->wcond);
        pthread_mutex_unlock(&t->wlock);
        pthread_join(t->thread, NULL);
        t->started = 0;
    }
    akidb__slot **slots;
    size_t n;
    if (!t->read_only && akidb__db_slots(t->db, &slots, &n) == AKIDB_OK) {
        persist_access(t, slots, n);
        akidb__db_slots_free(t->db, slots, n);
    }
}

/* ---- the public calls -------------------------------------------------- */

int akidb__tier_get(akidb__tier *t, akidb__slot *s, akidb_tier *out)
{
    (void)t;
    *out = get_tier(s);
    return AKIDB_OK;
}

int akidb__tier_set(akidb__tier *t, akidb__slot *s, akidb_tier tier)
{
    akidb__tier_claim(s);
    int rc = move_claimed(t, s, tier, 0);
    akidb__tier_release(s);
    return settled(s, rc);
}

int akidb__tier_pin(akidb__tier *t, akidb__slot *s, int pinned)
{
    if (t->read_only)
        return akidb__err(AKIDB_READONLY, "akidb_tier_pin: the database is open read-only");
    pthread_mutex_lock(&s->cat);
    pthread_mutex_lock(&s->mu);
    akidb__catalog_coll row = row_locked(s, s->tier);
    pthread_mutex_unlock(&s->mu);
    row.pinned = pinned != 0;
    int rc = akidb__catalog_coll_update(akidb__db_catalog(t->db), &row);
    if (rc == AKIDB_OK) {
        pthread_mutex_lock(&s->mu);
        s->pinned = pinned != 0;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&s->cat);
    return rc;
}

int akidb__tier_info(akidb__tier *t, akidb__slot *s, akidb_tier_info *out)
{
    akidb__catalog_snap e;
    uint64_t cold = newest_tier_snap(t, s->coll_id, &e) ? e.bytes : 0;
    uint64_t hot = hot_now(s);
    uint64_t local = local_bytes(t, s);
    pthread_mutex_lock(&s->mu);
    out->tier = s->tier;
    out->pinned = s->pinned;
    out->busy = s->busy || s->localizing;
    out->last_access_us = __atomic_load_n(&s->last_access, __ATOMIC_RELAXED);
    out->accesses = __atomic_load_n(&s->accesses, __ATOMIC_RELAXED);
    out->hot_bytes = hot ? hot : s->hot_bytes;
    out->local_bytes = local;
    out->cold_bytes = cold;
    out->last_error = s->last_rc;
    snprintf(out->last_error_msg, sizeof out->last_error_msg, "%s", s->last_err);
    pthread_mutex_unlock(&s->mu);
    return AKIDB_OK;
}

/* Collections and bytes per tier into out, and into the byte gauges.
 * wait: a HOT collection in a transition is waited for (else its last
 * recorded size counts). */
static int count_tiers(akidb__tier *t, akidb_tier_stats *out, int wait)
{
    akidb__slot **slots;
    size_t n;
    int rc = akidb__db_slots(t->db, &slots, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        akidb__slot *s = slots[i];
        akidb_tier tier = get_tier(s);
        uint64_t b = 0;
        akidb__catalog_snap e;
        if (tier == AKIDB_TIER_HOT)
            b = wait ? hot_now(s) : hot_now_or_last(s);
        else if (tier == AKIDB_TIER_WARM)
            b = local_bytes(t, s);
        else if (newest_tier_snap(t, s->coll_id, &e))
            b = e.bytes;
        out->collections[tier]++;
        out->bytes[tier] += b;
    }
    akidb__db_slots_free(t->db, slots, n);
    static const akidb__metric_id bytes_gauge[4] = {
        0, AKIDB__M_TIER_BYTES_HOT, AKIDB__M_TIER_BYTES_WARM, AKIDB__M_TIER_BYTES_COLD
    };
    for (int k = AKIDB_TIER_HOT; k <= AKIDB_TIER_COLD; k++)
        akidb__metric_set(&t->env->metrics, bytes_gauge[k], (int64_t)out->bytes[k]);
    return AKIDB_OK;
}

void akidb__tier_refresh_gauges(akidb__tier *t)
{
    akidb_tier_stats ts;
    memset(&ts, 0, sizeof ts);
    (void)count_tiers(t, &ts, 0);   /* out of memory: the gauges keep their values */
}

int akidb__tier_stats(akidb__tier *t, akidb_tier_stats *out)
{
    int rc = count_tiers(t, out, 1);
    if (rc)
        return rc;
    akidb__tier_policy pol = db_policy(t);
    out->memory_budget = pol.memory_budget;
    out->store_quota = pol.store_quota;
    if ((rc = akidb__catalog_snap_total(akidb__db_catalog(t->db), &out->store_bytes)))
        return rc;
    for (int f = 0; f < 4; f++)
        for (int to = 0; to < 4; to++) {
            out->transitions_ok[f][to] = __atomic_load_n(&t->ok[f][to], __ATOMIC_RELAXED);
            out->transitions_failed[f][to] = __atomic_load_n(&t->failed[f][to],
                                                             __ATOMIC_RELAXED);
        }
    out->loads = __atomic_load_n(&t->loads, __ATOMIC_RELAXED);
    out->load_us_total = __atomic_load_n(&t->load_us, __ATOMIC_RELAXED);
    out->worker_cycles = __atomic_load_n(&t->cycles, __ATOMIC_RELAXED);
    return AKIDB_OK;
}

/* Policy values as stored per collection: a TTL of NEVER as INT64_MAX. */
static int64_t stored_ttl(uint64_t s)
{
    return s >= (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)s;
}

int akidb__tier_policy_apply(akidb__tier *t, akidb__slot *s, const akidb_tier_policy *p)
{
    uint32_t set = p->set;
    if ((set & AKIDB_TIER_P_PROMOTE) && p->promote_per_hour < 1)
        return akidb__err(AKIDB_INVALID, "akidb_tier_policy_apply: promote_per_hour must be "
                          ">= 1");
    if ((set & AKIDB_TIER_P_RETENTION) && p->snapshot_retention < 1)
        return akidb__err(AKIDB_INVALID, "akidb_tier_policy_apply: snapshot_retention must be "
                          ">= 1");
    if ((set & AKIDB_TIER_P_HOT_TTL) && p->hot_ttl_s == 0)
        return akidb__err(AKIDB_INVALID, "akidb_tier_policy_apply: hot_ttl_s must be >= 1");
    if ((set & AKIDB_TIER_P_WARM_TTL) && p->warm_ttl_s == 0)
        return akidb__err(AKIDB_INVALID, "akidb_tier_policy_apply: warm_ttl_s must be >= 1");
    if (!s) {
        if (p->reset)
            return akidb__err(AKIDB_INVALID, "akidb_tier_policy_apply: reset applies to a "
                              "collection's overrides only");
        pthread_mutex_lock(&t->lock);
        if (set & AKIDB_TIER_P_HOT_TTL) t->pol.hot_ttl_s = p->hot_ttl_s;
        if (set & AKIDB_TIER_P_WARM_TTL) t->pol.warm_ttl_s = p->warm_ttl_s;
        if (set & AKIDB_TIER_P_PROMOTE) t->pol.promote_per_hour = p->promote_per_hour;
        if (set & AKIDB_TIER_P_DISABLED) t->pol.disabled = p->disabled != 0;
        if (set & AKIDB_TIER_P_RETENTION) t->pol.retention = p->snapshot_retention;
        if (set & AKIDB_TIER_P_MEMORY_BUDGET) t->pol.memory_budget = p->memory_budget;
        if (set & AKIDB_TIER_P_STORE_QUOTA) t->pol.store_quota = p->store_quota;
        if (set & AKIDB_TIER_P_MAX_COLLECTIONS) t->pol.max_collections = p->max_collections;
        pthread_mutex_unlock(&t->lock);
        return AKIDB_OK;
    }
    const uint32_t db_only = AKIDB_TIER_P_MEMORY_BUDGET | AKIDB_TIER_P_STORE_QUOTA |
                             AKIDB_TIER_P_MAX_COLLECTIONS;
    if ((set | p->reset) & db_only)
        return akidb__err(AKIDB_INVALID, "akidb_tier_policy_apply: memory_budget, store_quota "
                          "and max_collections are the database's, not collection %s's",
                          s->name);
    if (t->read_only)
        return akidb__err(AKIDB_READONLY, "akidb_tier_policy_apply: the database is open "
                          "read-only");
    pthread_mutex_lock(&s->cat);
    pthread_mutex_lock(&s->mu);
    akidb__catalog_policy pol = s->policy;
    pthread_mutex_unlock(&s->mu);
    const uint32_t bits[AKIDB__N_POLICY] = { AKIDB_TIER_P_HOT_TTL, AKIDB_TIER_P_WARM_TTL,
                                             AKIDB_TIER_P_PROMOTE, AKIDB_TIER_P_DISABLED,
                                             AKIDB_TIER_P_RETENTION };
    const int64_t vals[AKIDB__N_POLICY] = { stored_ttl(p->hot_ttl_s), stored_ttl(p->warm_ttl_s),
                                            p->promote_per_hour, p->disabled != 0,
                                            p->snapshot_retention };
    for (int k = 0; k < AKIDB__N_POLICY; k++) {
        if (p->reset & bits[k])
            pol.v[k] = -1;
        if (set & bits[k])
            pol.v[k] = vals[k];
    }
    pthread_mutex_lock(&s->mu);
    akidb__catalog_coll row = row_locked(s, s->tier);
    pthread_mutex_unlock(&s->mu);
    row.policy = pol;
    int rc = akidb__catalog_coll_update(akidb__db_catalog(t->db), &row);
    if (rc == AKIDB_OK) {
        pthread_mutex_lock(&s->mu);
        s->policy = pol;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&s->cat);
    return rc;
}

void akidb__tier_policy_get(akidb__tier *t, akidb__slot *s, akidb_tier_policy *out)
{
    akidb__tier_policy p;
    uint32_t set = 0xFFu;
    if (s) {
        pthread_mutex_lock(&s->mu);
        p = slot_policy_locked(t, s);
        set = 0;
        const uint32_t bits[AKIDB__N_POLICY] = { AKIDB_TIER_P_HOT_TTL, AKIDB_TIER_P_WARM_TTL,
                                                 AKIDB_TIER_P_PROMOTE, AKIDB_TIER_P_DISABLED,
                                                 AKIDB_TIER_P_RETENTION };
        for (int k = 0; k < AKIDB__N_POLICY; k++)
            if (s->policy.v[k] >= 0)
                set |= bits[k];
        pthread_mutex_unlock(&s->mu);
    } else {
        p = db_policy(t);
    }
    out->set = set;
    out->reset = 0;
    out->hot_ttl_s = p.hot_ttl_s;
    out->warm_ttl_s = p.warm_ttl_s;
    out->promote_per_hour = (uint32_t)p.promote_per_hour;
    out->disabled = p.disabled;
    out->snapshot_retention = (uint32_t)p.retention;
    out->memory_budget = p.memory_budget;
    out->store_quota = p.store_quota;
    out->max_collections = (uint32_t)p.max_collections;
}
