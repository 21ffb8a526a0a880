/*
 * db.c - the database handle: its directory, the collection table,
 * recovery, the background threads, and what spans collections (create,
 * drop, the catalog's snapshots and the restore swap).
 *
 * The collection table is an array of slots (tier.h), one per collection
 * whatever its tier; a slot's collection object is in RAM only while the
 * collection is HOT.  tier.c moves slots between tiers.
 *
 * Locks, taken in this order, never the reverse:
 *
 *   db->lock (rwlock: shared to look a slot up, exclusive to add or
 *             remove one; held only for that, never across I/O or a call)
 *     -> slot->use (rwlock: shared for a call from enter to leave,
 *                   exclusive to change slot->coll)
 *       -> collection lock (inside collection.c)
 *   slot->mu is a leaf (tier.h).
 * The indexer thread (index_work) follows the same order and holds
 * slot->use shared while it links a slice, so whatever takes a collection
 * away (with slot->use exclusive) never frees it under the indexer.
 *
 * A call looks its slot up under db->lock, takes a reference (so the slot
 * outlives a concurrent drop), releases db->lock, then holds slot->use
 * shared for the whole call: that is what keeps the collection object
 * alive while it is used, since a demotion, restore or drop needs
 * slot->use exclusively to take it away.  A call on a collection that is
 * not in RAM promotes it first (tier.c), without holding any of these
 * locks while it loads, so other collections stay usable.
 *
 * Opening is recovery.  The directory holds:
 *   akidb.db      the catalog (catalog.c): which collections exist, and
 *                 in which tier; SQLite's akidb.db-wal and akidb.db-shm
 *                 beside it
 *   wal/N.wal     the log of collection N (wal.c), HOT and WARM
 *   ckpt/N.ckpt   its last checkpoint (checkpoint.c), HOT and WARM
 *   tmp/          snapshot copies being written (*.tmp, removed at open:
 *                 a process killed during a snapshot leaves its copy)
 *   objects/      the default object store (snapshots, uploads, COLD
 *                 collections' copies)
 *   LOCK          locked by builds that locked a file (see below)
 *
 * The lock is flock() on the database directory itself: exclusive for a
 * read-write handle, shared for a read-only one, so a second writer, or a
 * reader beside a writer, gets AKIDB_BUSY.  A lock on a file inside the
 * directory (what DIR/LOCK used to be) is defeated by an `rm DIR/LOCK`:
 * the next opener creates a new LOCK and locks that, and two writers then
 * each lose the other's acknowledged writes.  A directory cannot be
 * removed while it holds files (an rm -rf takes the database with it),
 * and renaming it moves the data along, so nothing done to the files in
 * it can take the lock away.  A writer still takes
 * DIR/LOCK as well (a reader: shared, if it exists), so a process running
 * an older build of the library is excluded too.
 *
 * A read-only handle (akidb_options.read_only) creates and changes
 * nothing: no directory, no catalog migration, no tmp/ cleanup, no removal
 * of a dropped collection's files, no log truncation (a torn tail is
 * skipped in memory), no checkpoint at close, no uploads, no tier worker
 * and no tier transition (akidb_tier_set to WARM or COLD, _pin, _run_once
 * and a collection's policy return AKIDB_READONLY); every write returns
 * AKIDB_READONLY.  A WARM or COLD collection is still read: tier.c loads
 * it into RAM without changing its tier in the catalog or any file.
 *
 * Files and directories the handle creates get akidb_options.file_mode
 * (default 0644; directories the same plus x where r is set), the tier
 * transitions' included.
 * Each HOT catalog row is rebuilt from its checkpoint plus its log; WARM
 * and COLD ones stay on disk or in the store until used.  Files are
 * named by the catalog's collection number, never reused, so a drop that
 * crashed before deleting its files leaves only files numbered below the
 * catalog's high-water mark: those are removed.  Files numbered above it
 * mean the catalog lost rows (a damaged or replaced akidb.db): that is
 * AKIDB_CORRUPT, never a silent deletion of data.
 *
 * Recovery loads each checkpoint (graph + tail) and appends the log's
 * records to the tail, with no graph work, so akidb_open costs about a
 * read of the files.  The handle's indexer thread (indexer.c), started
 * once every collection is loaded, links the tails in the background:
 * index_work picks the collections round-robin and links one slice of
 * one per call, holding db->lock shared only for that slice.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/env.h"
#include "common/file.h"
#include "common/hash.h"
#include "common/json.h"
#include "engine/catalog.h"
#include "engine/checkpoint.h"
#include "engine/collection.h"
#include "engine/db.h"
#include "engine/indexer.h"
#include "engine/snapshot.h"
#include "engine/tier.h"
#include "engine/uploader.h"
#include "engine/wal.h"
#include "store/store.h"

#define DEFAULT_CHECKPOINT_BYTES ((uint64_t)64 << 20)

struct akidb {
    char *dir;
    akidb_options opts;
    akidb__env env;
    int dir_fd;                  /* the database directory, flock()ed */
    int legacy_lock_fd;          /* DIR/LOCK, for older builds; -1 if none */
    akidb__catalog *meta;
    pthread_rwlock_t lock;
    akidb__slot **slots;
    size_t n_slots, slots_cap;
    akidb__tier *tier;

    akidb_store *store;          /* opts.store, or our own local store */
    int own_store;
    akidb__store_disp *disp;
    akidb__uploader *uploader;
    pthread_t dlq_thread;
    int dlq_thread_started;
    int dlq_stopping;
    pthread_mutex_t dlq_lock;
    pthread_cond_t dlq_cond;
    akidb__indexer *indexer;     /* links the tails; its thread starts after recovery */
    size_t index_rr;             /* next collection the indexer looks at (its thread only) */
};

akidb__uploader *akidb__db_uploader(akidb *db)
{
    return db->uploader;
}

void akidb__set_fault_hook(akidb *db, akidb__fault_fn fn, void *ctx)
{
    db->env.fault_fn = fn;
    db->env.fault_ctx = ctx;
}

akidb__env *akidb__db_env(akidb *db)
{
    return &db->env;
}

akidb__catalog *akidb__db_catalog(akidb *db)
{
    return db->meta;
}

akidb__store_disp *akidb__db_disp(akidb *db)
{
    return db->disp;
}

akidb__tier *akidb__db_tier(akidb *db)
{
    return db->tier;
}

int akidb__db_read_only(const akidb *db)
{
    return db->opts.read_only != 0;
}

const char *akidb__db_dir(const akidb *db)
{
    return db->dir;
}

int64_t akidb__db_now_us(const akidb *db)
{
    if (db->opts.clock_us)
        return db->opts.clock_us(db->opts.clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* dir + "/" + rel (+ optional numeric file), into a new allocation. */
static char *path_join(const akidb *db, const char *rel, int64_t coll_id, const char *ext)
{
    char buf[4096];
    int n = coll_id >= 0 ? snprintf(buf, sizeof buf, "%s/%s/%lld%s", db->dir, rel,
                                    (long long)coll_id, ext)
                         : snprintf(buf, sizeof buf, "%s/%s", db->dir, rel);
    if (n < 0 || (size_t)n >= sizeof buf)
        return NULL;
    return akidb__strdup(&db->env.alloc, buf);
}

char *akidb__db_path(const akidb *db, const char *sub, int64_t coll_id, const char *ext)
{
    return path_join(db, sub, coll_id, ext);
}

/* A new, empty collection that checkpoints through checkpoint.c. */
static int new_coll(akidb *db, const char *name, const akidb_collection_config *cfg,
                    int64_t coll_id, const char *ckpt_path, int64_t created_at,
                    akidb__collection **out)
{
    int rc = akidb__coll_new(name, cfg, &db->env, (uint64_t)coll_id, ckpt_path, out);
    if (rc == AKIDB_OK) {
        akidb__coll_set_saver(*out, akidb__ckpt_write);
        akidb__coll_set_vectors_opener(*out, akidb__ckpt_vectors_open);
        akidb__coll_set_created_at(*out, created_at);
        akidb__coll_set_indexer(*out, db->indexer);
    }
    return rc;
}

int akidb__db_new_coll(akidb *db, const akidb__slot *s, akidb__collection **out)
{
    *out = NULL;
    char *ckpt_path = path_join(db, "ckpt", s->coll_id, ".ckpt");
    if (!ckpt_path)
        return akidb__err(AKIDB_NOMEM, "collection %s: out of memory", s->name);
    int rc = new_coll(db, s->name, &s->cfg, s->coll_id, ckpt_path, s->created_at, out);
    akidb__free(&db->env.alloc, ckpt_path);
    return rc;
}

static int make_dir(const char *path, unsigned mode)
{
    if (mkdir(path, (mode_t)mode) != 0 && errno != EEXIST)
        return akidb__err(AKIDB_IOERR, "akidb_open: cannot create directory %s: %s", path,
                          strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0)
        return akidb__err(AKIDB_IOERR, "akidb_open: %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return akidb__err(AKIDB_IOERR, "akidb_open: %s is not a directory", path);
    return AKIDB_OK;
}

/* Numbers of the collections that have files in `sub` with suffix `ext`
 * ("N.wal"); leftover "*.tmp" files are removed on the way. */
typedef struct id_list { int64_t *ids; size_t n, cap; } id_list;

static int scan_dir(akidb *db, const char *sub, const char *ext, id_list *out)
{
    char *path = path_join(db, sub, -1, "");
    if (!path)
        return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
    DIR *d = opendir(path);
    if (!d) {
        /* Read-only: a database whose collections never had files. */
        int rc = db->opts.read_only && errno == ENOENT ? AKIDB_OK
            : akidb__err(AKIDB_IOERR, "akidb_open: cannot read %s: %s", path, strerror(errno));
        akidb__free(&db->env.alloc, path);
        return rc;
    }
    int rc = AKIDB_OK;
    struct dirent *e;
    size_t ext_len = strlen(ext);
    while (rc == AKIDB_OK && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) {
            /* A checkpoint (or a log made anew) that never made it to its
             * rename. */
            if (!db->opts.read_only)
                unlinkat(dirfd(d), e->d_name, 0);
            continue;
        }
        if (len <= ext_len || strcmp(e->d_name + len - ext_len, ext) != 0)
            continue;
        char *end;
        long long id = strtoll(e->d_name, &end, 10);
        if (end != e->d_name + len - ext_len || id <= 0)
            continue;
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 16;
            int64_t *ids = akidb__realloc_array(&db->env.alloc, out->ids, cap, sizeof *ids);
            if (!ids) {
                rc = akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
                break;
            }
            out->ids = ids;
            out->cap = cap;
        }
        out->ids[out->n++] = id;
    }
    closedir(d);
    akidb__free(&db->env.alloc, path);
    return rc;
}

/* ---- slots ------------------------------------------------------------ */

static void slot_free(akidb *db, akidb__slot *s)
{
    akidb__coll_free(s->coll);   /* also closes its log */
    pthread_rwlock_destroy(&s->use);
    pthread_mutex_destroy(&s->cat);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    akidb__free(&db->env.alloc, s);
}

static int new_slot(akidb *db, const akidb__catalog_coll *mc, akidb__slot **out)
{
    *out = NULL;
    akidb__slot *s = akidb__calloc(&db->env.alloc, 1, sizeof *s);
    if (!s)
        return akidb__err(AKIDB_NOMEM, "collection %s: out of memory", mc->name);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* A waiting demotion holds new calls back rather than wait for a
     * stream of searches that never pauses. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int lrc = pthread_rwlock_init(&s->use, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (lrc != 0) {
        akidb__free(&db->env.alloc, s);
        return akidb__err(AKIDB_ERROR, "collection %s: cannot create lock", mc->name);
    }
    pthread_mutex_init(&s->cat, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    snprintf(s->name, sizeof s->name, "%s", mc->name);
    s->coll_id = mc->coll_id;
    s->cfg = mc->cfg;
    s->created_at = mc->created_at;
    s->refs = 1;   /* the table's */
    akidb__tier_slot_init(db->tier, s, mc);
    *out = s;
    return AKIDB_OK;
}

void akidb__slot_ref(akidb__slot *s)
{
    __atomic_fetch_add(&s->refs, 1, __ATOMIC_RELAXED);
}

void akidb__slot_unref(akidb *db, akidb__slot *s)
{
    if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
        slot_free(db, s);
}

/* Caller holds db->lock exclusively. */
static int add_slot(akidb *db, akidb__slot *s)
{
    if (db->n_slots == db->slots_cap) {
        size_t cap = db->slots_cap ? db->slots_cap * 2 : 8;
        akidb__slot **a = akidb__realloc_array(&db->env.alloc, db->slots, cap, sizeof *a);
        if (!a)
            return akidb__err(AKIDB_NOMEM, "collection %s: out of memory", s->name);
        db->slots = a;
        db->slots_cap = cap;
    }
    db->slots[db->n_slots++] = s;
    akidb__metric_set(&db->env.metrics, AKIDB__M_COLLECTIONS, (int64_t)db->n_slots);
    return AKIDB_OK;
}

/* Caller holds db->lock (either mode). */
static akidb__slot *find_slot(const akidb *db, const char *name, size_t *index_out)
{
    for (size_t i = 0; i < db->n_slots; i++)
        if (strcmp(db->slots[i]->name, name) == 0) {
            if (index_out)
                *index_out = i;
            return db->slots[i];
        }
    return NULL;
}

/* The slot of `name` with a reference taken, or AKIDB_NOTFOUND. */
static int get_slot(akidb *db, const char *name, akidb__slot **out)
{
    pthread_rwlock_rdlock(&db->lock);
    akidb__slot *s = find_slot(db, name, NULL);
    if (s)
        akidb__slot_ref(s);
    pthread_rwlock_unlock(&db->lock);
    *out = s;
    return s ? AKIDB_OK : akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", name);
}

int akidb__db_slot(akidb *db, const char *name, akidb__slot **out)
{
    return get_slot(db, name, out);
}

int akidb__db_slots(akidb *db, akidb__slot ***out, size_t *n_out)
{
    pthread_rwlock_rdlock(&db->lock);
    size_t n = db->n_slots;
    akidb__slot **a = akidb__alloc_array(&db->env.alloc, n ? n : 1, sizeof *a);
    if (a)
        for (size_t i = 0; i < n; i++) {
            a[i] = db->slots[i];
            akidb__slot_ref(a[i]);
        }
    pthread_rwlock_unlock(&db->lock);
    *out = a;
    *n_out = a ? n : 0;
    return a ? AKIDB_OK : akidb__err(AKIDB_NOMEM, "out of memory listing collections");
}

void akidb__db_slots_free(akidb *db, akidb__slot **slots, size_t n)
{
    for (size_t i = 0; i < n; i++)
        akidb__slot_unref(db, slots[i]);
    akidb__free(&db->env.alloc, slots);
}

/* ---- loading from local files ----------------------------------------- */

int akidb__db_load(akidb *db, const akidb__slot *s, akidb__collection **out)
{
    const akidb_allocator *a = &db->env.alloc;
    char *wal_path = path_join(db, "wal", s->coll_id, ".wal");
    char *ckpt_path = path_join(db, "ckpt", s->coll_id, ".ckpt");
    akidb__collection *c = NULL;
    akidb__wal *w = NULL;
    int rc;
    *out = NULL;
    if (!wal_path || !ckpt_path) {
        rc = akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        goto done;
    }
    if ((rc = new_coll(db, s->name, &s->cfg, s->coll_id, ckpt_path, s->created_at, &c)))
        goto done;
    uint64_t last_seq = 0;
    int have_ckpt = 0;
    rc = akidb__ckpt_read(&db->env, c, ckpt_path, (uint64_t)s->coll_id, &last_seq);
    if (rc == AKIDB_OK) {
        have_ckpt = 1;
        akidb__coll_set_last_seq(c, last_seq);
    } else if (rc != AKIDB_NOTFOUND) {
        goto done;
    }
    rc = akidb__wal_open(&db->env, wal_path, (uint64_t)s->coll_id, s->cfg.dim, &w);
    if (rc != AKIDB_OK && !have_ckpt) {
        /* Created in the catalog, crashed before the log header was
         * synced: the collection never acknowledged a write. */
        struct stat st;
        int missing = stat(wal_path, &st) != 0 && errno == ENOENT;
        int short_file = !missing && st.st_size < AKIDB__WAL_HEADER_LEN;
        if (missing || short_file) {
            akidb__log(&db->env, AKIDB_LOG_WARN, "%s: log %s; %s (collection %s was created "
                       "just before a crash)", wal_path,
                       missing ? "is missing" : "has a torn header",
                       db->opts.read_only ? "reading the collection as empty"
                                          : "creating an empty one", s->name);
            /* (read-only: a log in memory only, nothing is written) */
            rc = akidb__wal_create(&db->env, wal_path, (uint64_t)s->coll_id, s->cfg.dim, &w);
        }
    } else if (rc == AKIDB_NOTFOUND) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: log is missing but checkpoint %s exists",
                        wal_path, ckpt_path);
    }
    if (rc)
        goto done;
    akidb__coll_attach_wal(c, w);
    if ((rc = akidb__wal_watch(w, ckpt_path)) ||
        (rc = akidb__wal_replay(w, last_seq, akidb__coll_replay, c)))
        goto done;
    akidb__coll_set_owner(c, (void *)s);
    *out = c;
    c = NULL;
done:
    akidb__coll_free(c);   /* also closes w, which is attached once opened */
    akidb__free(a, wal_path);
    akidb__free(a, ckpt_path);
    return rc;
}

/* Open: one slot per catalog row; HOT ones are rebuilt from their
 * checkpoint and log now.  (catalog_list callback) */
static int recover_coll(void *ctx, const akidb__catalog_coll *mc)
{
    akidb *db = ctx;
    akidb__slot *s;
    int rc = new_slot(db, mc, &s);
    if (rc)
        return rc;
    if (s->tier == AKIDB_TIER_HOT)
        rc = akidb__db_load(db, s, &s->coll);
    if (rc == AKIDB_OK)
        rc = add_slot(db, s);
    if (rc)
        slot_free(db, s);
    return rc;
}

static int id_in_catalog(const akidb *db, int64_t id)
{
    for (size_t i = 0; i < db->n_slots; i++)
        if (db->slots[i]->coll_id == id)
            return 1;
    return 0;
}

/* Files of collections the catalog does not list: leftovers of a drop
 * (removed) or evidence of a damaged catalog (AKIDB_CORRUPT). */
static int check_orphans(akidb *db, const id_list *ids, const char *sub, const char *ext)
{
    int64_t max_id = 0;
    int rc = akidb__catalog_max_coll_id(db->meta, &max_id);
    if (rc)
        return rc;
    for (size_t i = 0; i < ids->n; i++) {
        if (id_in_catalog(db, ids->ids[i]))
            continue;
        char *p = path_join(db, sub, ids->ids[i], ext);
        if (!p)
            return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        if (ids->ids[i] > max_id) {
            rc = akidb__err(AKIDB_CORRUPT, "akidb_open: %s belongs to collection %lld, which "
                            "the catalog %s/akidb.db has never recorded: the catalog is "
                            "damaged or was replaced", p, (long long)ids->ids[i], db->dir);
            akidb__free(&db->env.alloc, p);
            return rc;
        }
        if (!db->opts.read_only) {
            akidb__log(&db->env, AKIDB_LOG_INFO, "%s: removing the file of dropped collection "
                       "%lld", p, (long long)ids->ids[i]);
            unlink(p);
        }
        akidb__free(&db->env.alloc, p);
    }
    return AKIDB_OK;
}

/* The indexer's unit of work: one slice of the next HOT collection
 * (round robin) whose tail is not empty and not held (collection.h).
 * The collection is used under its slot's `use` lock held shared, like
 * any call, so a demotion, restore or drop (which take it exclusively to
 * take the collection away and free it) never frees it under the
 * indexer; db->lock is held only to look at the table.  A slot whose
 * `use` lock is taken exclusively (a transition in progress) is skipped
 * without waiting, unless nothing else has work: then the indexer waits
 * for that transition and looks at the slot again, so a tail that the
 * transition leaves in RAM is never forgotten. */
static int index_work(void *ctx)
{
    akidb *db = ctx;
    akidb__slot *pick = NULL, *blocked = NULL;
    pthread_rwlock_rdlock(&db->lock);
    size_t n = db->n_slots;
    for (size_t k = 0; k < n && !pick; k++) {
        size_t i = (db->index_rr + k) % n;
        akidb__slot *s = db->slots[i];
        if (pthread_rwlock_tryrdlock(&s->use) != 0) {
            if (!blocked) {
                blocked = s;
                akidb__slot_ref(s);
            }
            continue;
        }
        if (s->coll && !s->gone && akidb__coll_index_pending(s->coll)) {
            pick = s;   /* `use` stays held for the slice */
            akidb__slot_ref(s);
            db->index_rr = i + 1;
        } else {
            pthread_rwlock_unlock(&s->use);
        }
    }
    pthread_rwlock_unlock(&db->lock);
    if (!pick && blocked) {
        pthread_rwlock_rdlock(&blocked->use);   /* the transition ends */
        if (blocked->coll && !blocked->gone && akidb__coll_index_pending(blocked->coll)) {
            pick = blocked;
            blocked = NULL;
        } else {
            pthread_rwlock_unlock(&blocked->use);
        }
    }
    int worked = pick != NULL || blocked != NULL;   /* blocked: look again */
    if (pick) {
        akidb__coll_index_step(pick->coll, AKIDB__INDEX_SLICE_NS, 0, 0);
        pthread_rwlock_unlock(&pick->use);
        akidb__slot_unref(db, pick);
    }
    akidb__slot_unref(db, blocked);
    return worked;
}

void akidb__db_index_kick(akidb *db)
{
    akidb__indexer_kick(db->indexer);
}

static void stop_background(akidb *db)
{
    /* The tier worker first (it may use the store, and it moves
     * collections in and out of the slots, kicking the indexer), then the
     * indexer: the collections outlive it (close checkpoints them
     * afterwards), so they forget it. */
    akidb__tier_stop(db->tier);
    akidb__indexer_free(db->indexer);
    db->indexer = NULL;
    for (size_t i = 0; i < db->n_slots; i++)
        if (db->slots[i]->coll)
            akidb__coll_set_indexer(db->slots[i]->coll, NULL);
    if (db->dlq_thread_started) {
        pthread_mutex_lock(&db->dlq_lock);
        db->dlq_stopping = 1;
        pthread_cond_broadcast(&db->dlq_cond);
        pthread_mutex_unlock(&db->dlq_lock);
        pthread_join(db->dlq_thread, NULL);
        db->dlq_thread_started = 0;
    }
    akidb__uploader_free(db->uploader);   /* finishes queued uploads first */
    db->uploader = NULL;
    akidb__disp_free(db->disp);
    db->disp = NULL;
    if (db->own_store)
        akidb__store_destroy(db->store);
    db->store = NULL;
}

static void free_handle(akidb *db)
{
    stop_background(db);
    pthread_mutex_destroy(&db->dlq_lock);
    pthread_cond_destroy(&db->dlq_cond);
    for (size_t i = 0; i < db->n_slots; i++)
        slot_free(db, db->slots[i]);   /* nothing else holds a reference now */
    akidb__tier_free(db->tier);
    akidb__catalog_close(db->meta);
    if (db->legacy_lock_fd >= 0)
        close(db->legacy_lock_fd);
    if (db->dir_fd >= 0)
        close(db->dir_fd);   /* releases the flock */
    akidb_allocator a = db->env.alloc;
    akidb__free(&a, db->slots);
    akidb__free(&a, db->dir);
    pthread_rwlock_destroy(&db->lock);
    akidb__free(&a, db);
}

static int64_t clock_us_of(void *ctx)
{
    return akidb__db_now_us(ctx);
}

static int64_t clock_ms_of(void *ctx)
{
    return akidb__db_now_us(ctx) / 1000;
}

/* The background thread retrying dead letters. */
static void *dlq_main(void *arg)
{
    akidb *db = arg;
    uint32_t interval = db->opts.dlq_retry_interval_ms ? db->opts.dlq_retry_interval_ms : 1000;
    uint32_t batch = db->opts.dlq_retry_batch ? db->opts.dlq_retry_batch : 10;
    pthread_mutex_lock(&db->dlq_lock);
    while (!db->dlq_stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)interval * 1000000u;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&db->dlq_cond, &db->dlq_lock, &until);
        if (db->dlq_stopping)
            break;
        pthread_mutex_unlock(&db->dlq_lock);
        uint32_t tried = 0, ok = 0;
        if (akidb__uploader_dlq_cycle(db->uploader, batch, &tried, &ok) != AKIDB_OK)
            akidb__log(&db->env, AKIDB_LOG_WARN, "dead-letter retry cycle failed: %s",
                       akidb__errmsg());
        pthread_mutex_lock(&db->dlq_lock);
    }
    pthread_mutex_unlock(&db->dlq_lock);
    return NULL;
}

/* The object store, its dispatch, the uploader and the retry thread. */
static int start_background(akidb *db)
{
    int rc;
    if (db->opts.store) {
        db->store = db->opts.store;
    } else if (db->opts.read_only) {
        /* Only a COLD collection's promotion (in RAM) reads the store;
         * snapshot lists come from the catalog.  The local store is opened
         * when its directory exists (opening it then creates nothing);
         * without it there is nothing to read, and tier.c says so. */
        char *p = path_join(db, "objects", -1, "");
        if (!p)
            return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        struct stat st;
        rc = stat(p, &st) == 0 && S_ISDIR(st.st_mode)
            ? akidb__store_local_new(p, akidb__env_file_mode(&db->env), &db->store)
            : AKIDB_OK;
        akidb__free(&db->env.alloc, p);
        if (rc || !db->store)
            return rc;
        db->own_store = 1;
    } else {
        char *p = path_join(db, "objects", -1, "");
        if (!p)
            return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        rc = akidb__store_local_new(p, akidb__env_file_mode(&db->env), &db->store);
        akidb__free(&db->env.alloc, p);
        if (rc)
            return rc;
        db->own_store = 1;
    }
    /* The breaker's cool-down follows the handle's clock, like every other
     * timed policy, so tests drive it without sleeping. */
    akidb__store_policy policy;
    akidb__store_policy_init(&policy);
    policy.now_ms = clock_ms_of;
    policy.time_ctx = db;
    if ((rc = akidb__disp_new(db->store, &policy, &db->env.metrics, &db->env.alloc, &db->disp)))
        return rc;
    if (db->opts.read_only)
        return AKIDB_OK;   /* no uploads, no dead-letter retries: both write */
    akidb__uploader_config ucfg;
    memset(&ucfg, 0, sizeof ucfg);
    ucfg.concurrency = db->opts.upload_concurrency;
    ucfg.max_attempts = db->opts.dlq_max_attempts;
    ucfg.now_us = clock_us_of;
    ucfg.clock_ctx = db;
    if ((rc = akidb__uploader_new(&db->env, db->disp, db->meta, &ucfg, &db->uploader)))
        return rc;
    if (db->opts.dlq_retry_interval_ms != AKIDB_NEVER) {
        if (pthread_create(&db->dlq_thread, NULL, dlq_main, db) != 0)
            return akidb__err(AKIDB_ERROR, "akidb_open: cannot start the retry thread");
        db->dlq_thread_started = 1;
    }
    return AKIDB_OK;
}

/* Take the database's lock (see the top of this file).  The directory fd
 * is held for the handle's life: closing it releases the lock. */
static int lock_dir(akidb *db)
{
    const int ro = db->opts.read_only;
    db->dir_fd = open(db->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (db->dir_fd < 0)
        return ro && errno == ENOENT
            ? akidb__err(AKIDB_NOTFOUND, "akidb_open: %s does not exist (a read-only open "
                         "creates nothing)", db->dir)
            : akidb__err(AKIDB_IOERR, "akidb_open: cannot open directory %s: %s", db->dir,
                         strerror(errno));
    if (flock(db->dir_fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0)
        return errno == EWOULDBLOCK
            ? akidb__err(AKIDB_BUSY, "akidb_open: database %s is open%s in another handle or "
                         "process", db->dir, ro ? " read-write" : "")
            : akidb__err(AKIDB_IOERR, "akidb_open: cannot lock directory %s: %s", db->dir,
                         strerror(errno));
    /* DIR/LOCK, the lock of older builds.  A writer creates and locks it;
     * a reader locks it shared when it can open it, and otherwise relies
     * on the directory lock (read-only media, or no LOCK ever made). */
    char *p = path_join(db, "LOCK", -1, "");
    if (!p)
        return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
    int rc = AKIDB_OK;
    db->legacy_lock_fd = ro ? open(p, O_RDONLY | O_CLOEXEC)
                            : open(p, O_RDWR | O_CREAT | O_CLOEXEC,
                                   (mode_t)akidb__env_file_mode(&db->env));
    if (db->legacy_lock_fd < 0) {
        if (!ro)
            rc = akidb__err(AKIDB_IOERR, "akidb_open: cannot open %s: %s", p, strerror(errno));
    } else if (flock(db->legacy_lock_fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK
            ? akidb__err(AKIDB_BUSY, "akidb_open: database %s is open in another process (one "
                         "that locks %s)", db->dir, p)
            : akidb__err(AKIDB_IOERR, "akidb_open: cannot lock %s: %s", p, strerror(errno));
    }
    akidb__free(&db->env.alloc, p);
    return rc;
}

/* Remove the snapshot copies a killed process left in tmp/ (all of them
 * ours: the handle holds the directory exclusively). */
static void clean_tmp(akidb *db)
{
    char *p = path_join(db, "tmp", -1, "");
    DIR *d = p ? opendir(p) : NULL;
    if (!d) {
        akidb__free(&db->env.alloc, p);
        return;
    }
    struct dirent *e;
    unsigned n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0 &&
            unlinkat(dirfd(d), e->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    if (n)
        akidb__log(&db->env, AKIDB_LOG_INFO, "%s: removed %u temporary file%s that an "
                   "interrupted snapshot left", p, n, n == 1 ? "" : "s");
    akidb__free(&db->env.alloc, p);
}

int akidb__db_open(const char *dir, const akidb_options *o, akidb **out)
{
    *out = NULL;
    int rc;
    const akidb_allocator *a = o->allocator ? o->allocator : &akidb__default_allocator;
    akidb *db = akidb__calloc(a, 1, sizeof *db);
    if (!db)
        return akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
    db->env.alloc = *a;
    db->dir_fd = db->legacy_lock_fd = -1;
    db->opts = *o;
    db->opts.allocator = NULL;  /* copied into env; the caller's may go away */
    db->env.sync_mode = o->sync_mode;
    db->env.checkpoint_bytes = o->checkpoint_bytes ? o->checkpoint_bytes
                                                   : DEFAULT_CHECKPOINT_BYTES;
    db->env.checkpoint_auto = o->checkpoint_bytes == 0;
    db->env.max_index_lag = o->max_index_lag;
    db->env.log_fn = o->log_fn;
    db->env.log_ctx = o->log_ctx;
    db->env.file_mode = o->file_mode;
    db->env.read_only = o->read_only != 0;
    db->opts.read_only = db->env.read_only;
    const unsigned dir_mode = akidb__env_dir_mode(&db->env);
    pthread_mutex_init(&db->dlq_lock, NULL);
    pthread_cond_init(&db->dlq_cond, NULL);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int lrc = pthread_rwlock_init(&db->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (lrc != 0) {
        pthread_mutex_destroy(&db->dlq_lock);
        pthread_cond_destroy(&db->dlq_cond);
        akidb__free(a, db);
        return akidb__err(AKIDB_ERROR, "akidb_open: cannot create lock");
    }
    char *p = NULL;
    id_list wal_ids = { 0 }, ckpt_ids = { 0 };
    db->dir = akidb__strdup(&db->env.alloc, dir);
    if (!db->dir) {
        rc = akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        goto fail;
    }
    if ((!db->opts.read_only && (rc = make_dir(dir, dir_mode))) || (rc = lock_dir(db)))
        goto fail;

    if (!db->opts.read_only) {
        const char *subdirs[] = { "wal", "ckpt" };
        for (int i = 0; i < 2; i++) {
            if (!(p = path_join(db, subdirs[i], -1, ""))) {
                rc = akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
                goto fail;
            }
            rc = make_dir(p, dir_mode);
            akidb__free(&db->env.alloc, p);
            if (rc)
                goto fail;
        }
        clean_tmp(db);
    }
    if ((rc = scan_dir(db, "wal", ".wal", &wal_ids)) ||
        (rc = scan_dir(db, "ckpt", ".ckpt", &ckpt_ids)))
        goto fail_ids;
    if (!(p = path_join(db, "akidb.db", -1, ""))) {
        rc = akidb__err(AKIDB_NOMEM, "akidb_open: out of memory");
        goto fail_ids;
    }
    rc = akidb__catalog_open(p, wal_ids.n + ckpt_ids.n == 0, akidb__env_file_mode(&db->env),
                             db->opts.read_only, &db->meta);
    akidb__free(&db->env.alloc, p);
    /* Recovery appends to the tails and kicks the indexer, whose thread
     * starts only once every collection is in place. */
    if (rc == AKIDB_OK)
        rc = akidb__indexer_new(&db->env, index_work, db, &db->indexer);
    if (rc ||
        (rc = akidb__tier_new(db, o, &db->tier)) ||
        (rc = akidb__catalog_list(db->meta, recover_coll, db)) ||
        (rc = check_orphans(db, &wal_ids, "wal", ".wal")) ||
        (rc = check_orphans(db, &ckpt_ids, "ckpt", ".ckpt")))
        goto fail_ids;
    akidb__free(&db->env.alloc, wal_ids.ids);
    akidb__free(&db->env.alloc, ckpt_ids.ids);
    if ((rc = start_background(db)) || (rc = akidb__indexer_start(db->indexer)))
        goto fail;
    if ((rc = akidb__tier_recover(db->tier)))
        goto fail;
    if ((rc = akidb__tier_start(db->tier)))
        goto fail;
    *out = db;
    return AKIDB_OK;

fail_ids:
    akidb__free(&db->env.alloc, wal_ids.ids);
    akidb__free(&db->env.alloc, ckpt_ids.ids);
fail:
    free_handle(db);
    return rc;
}

int akidb__db_close(akidb *db)
{
    int rc = AKIDB_OK;
    char first_err[512] = "", lost[640] = "";
    stop_background(db);   /* the tier worker and queued uploads finish first */
    for (size_t i = 0; i < db->n_slots; i++) {
        if (!db->slots[i]->coll || db->opts.read_only)
            continue;
        int crc = akidb__coll_checkpoint(db->slots[i]->coll, 0);
        if (crc != AKIDB_OK && rc == AKIDB_OK) {
            rc = crc;
            snprintf(first_err, sizeof first_err, "%s", akidb__errmsg());
        }
        /* Only a log or checkpoint deleted under the handle makes a failed
         * checkpoint lose data; say which, and never "nothing is lost"
         * then. */
        char why[512];
        if (crc != AKIDB_OK && !lost[0] &&
            !akidb__coll_intact(db->slots[i]->coll, why, sizeof why))
            snprintf(lost, sizeof lost, "collection %s: %s, so documents held only in memory "
                     "are lost", db->slots[i]->name, why);
    }
    free_handle(db);
    if (rc && lost[0])
        return akidb__err(rc, "akidb_close: checkpoint failed (%s): %s", lost, first_err);
    if (rc)
        return akidb__err(rc, "akidb_close: checkpoint failed (the log was kept, nothing is "
                          "lost): %s", first_err);
    return AKIDB_OK;
}

void akidb__db_index_pause(akidb *db, int paused)
{
    akidb__indexer_pause(db->indexer, paused);
}

/* The tail sizes of collection `name` (NULL: all) summed; AKIDB_NOTFOUND
 * when it does not exist.  Only HOT collections have a tail in RAM: a WARM
 * or COLD one keeps its tail in its file, linked after it is loaded. */
static int sum_lag(akidb *db, const char *name, uint64_t *lag_out)
{
    uint64_t lag = 0;
    int found = 0;
    akidb__slot **slots;
    size_t n;
    *lag_out = 0;
    int rc = akidb__db_slots(db, &slots, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        akidb__slot *s = slots[i];
        if (name && strcmp(s->name, name) != 0)
            continue;
        found = 1;
        pthread_rwlock_rdlock(&s->use);
        if (s->coll && !s->gone)
            lag += akidb__coll_index_lag(s->coll);
        pthread_rwlock_unlock(&s->use);
    }
    akidb__db_slots_free(db, slots, n);
    *lag_out = lag;
    if (name && !found)
        return akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", name);
    return AKIDB_OK;
}

/* Sleep without holding db->lock (a drop must not wait for a waiter):
 * read the indexer's drain counter, look at the tails, sleep until the
 * counter moves, look again. */
int akidb__db_index_wait(akidb *db, const char *name, uint32_t timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms == AKIDB_NEVER) {
        deadline.tv_sec += (time_t)100 * 365 * 86400;   /* a century */
    } else {
        uint64_t ns = (uint64_t)deadline.tv_nsec + (uint64_t)(timeout_ms % 1000) * 1000000u;
        deadline.tv_sec += (time_t)(timeout_ms / 1000 + ns / 1000000000u);
        deadline.tv_nsec = (long)(ns % 1000000000u);
    }
    for (;;) {
        uint64_t gen = akidb__indexer_gen(db->indexer), lag;
        int rc = sum_lag(db, name, &lag);
        if (rc || lag == 0)
            return rc;
        if (akidb__indexer_wait(db->indexer, gen, &deadline)) {
            if ((rc = sum_lag(db, name, &lag)) || lag == 0)
                return rc;
            return akidb__err(AKIDB_BUSY, "akidb_index_wait: %llu document%s of %s still "
                              "waiting to be indexed after %u ms", (unsigned long long)lag,
                              lag == 1 ? "" : "s", name ? name : "all collections",
                              timeout_ms);
        }
    }
}

int akidb__db_checkpoint(akidb *db, const char *name)
{
    /* Collections not in RAM have nothing to write: their checkpoint is
     * their state (WARM) or they have no local state at all (COLD). */
    akidb__slot **slots;
    size_t n;
    int rc = akidb__db_writable(db, "akidb_checkpoint");
    if (rc)
        return rc;
    if ((rc = akidb__db_slots(db, &slots, &n)))
        return rc;
    int found = 0;
    for (size_t i = 0; i < n && rc == AKIDB_OK; i++) {
        akidb__slot *s = slots[i];
        if (name && strcmp(s->name, name) != 0)
            continue;
        found = 1;
        akidb__tier_wait_local(s, NULL, 0);   /* its log is attached by then */
        pthread_rwlock_rdlock(&s->use);
        if (s->coll && !s->gone)
            rc = akidb__coll_checkpoint(s->coll, 0);
        pthread_rwlock_unlock(&s->use);
    }
    if (slots)
        akidb__db_slots_free(db, slots, n);
    if (rc == AKIDB_OK && name && !found)
        rc = akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", name);
    return rc;
}

/* ---- collections ----------------------------------------------------- */

int akidb__db_create(akidb *db, const char *name, const akidb_collection_config *cfg)
{
    int rc = akidb__db_writable(db, "akidb_collection_create");
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&db->lock);
    akidb__slot *s = NULL;
    akidb__wal *w = NULL;
    char *wal_path = NULL, *ckpt_path = NULL;
    akidb__catalog_coll mc;
    memset(&mc, 0, sizeof mc);
    if (find_slot(db, name, NULL)) {
        rc = akidb__err(AKIDB_EXISTS, "collection %s already exists", name);
        goto done;
    }
    if ((rc = akidb__tier_check_count(db->tier, db->n_slots, name)))
        goto done;
    /* Catalog row first: a crash after it leaves a collection whose log
     * is recreated on open; a crash before it leaves nothing. */
    int64_t created_at = akidb__db_now_us(db);
    if ((rc = akidb__catalog_create(db->meta, name, cfg, created_at, &mc.coll_id)))
        goto done;
    snprintf(mc.name, sizeof mc.name, "%s", name);
    mc.cfg = *cfg;
    mc.created_at = created_at;
    mc.tier = AKIDB_TIER_HOT;
    mc.last_access = created_at;
    for (int k = 0; k < AKIDB__N_POLICY; k++)
        mc.policy.v[k] = -1;
    wal_path = path_join(db, "wal", mc.coll_id, ".wal");
    ckpt_path = path_join(db, "ckpt", mc.coll_id, ".ckpt");
    if (!wal_path || !ckpt_path) {
        rc = akidb__err(AKIDB_NOMEM, "collection %s: out of memory", name);
    } else if ((rc = new_slot(db, &mc, &s)) == AKIDB_OK &&
               (rc = akidb__db_new_coll(db, s, &s->coll)) == AKIDB_OK &&
               (rc = akidb__wal_create(&db->env, wal_path, (uint64_t)mc.coll_id, cfg->dim,
                                       &w)) == AKIDB_OK) {
        akidb__coll_attach_wal(s->coll, w);
        akidb__coll_set_owner(s->coll, s);
        if ((rc = akidb__wal_watch(w, ckpt_path)) == AKIDB_OK &&
            (rc = add_slot(db, s)) == AKIDB_OK)
            akidb__tier_created(db->tier);
    }
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", akidb__errmsg());
        if (s)
            slot_free(db, s);
        if (wal_path)
            unlink(wal_path);
        akidb__catalog_drop(db->meta, mc.coll_id, created_at);
        akidb__err(rc, "%s", msg);
    }
done:
    akidb__free(&db->env.alloc, wal_path);
    akidb__free(&db->env.alloc, ckpt_path);
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

void akidb__db_remove_local(akidb *db, int64_t coll_id)
{
    const char *subs[2][2] = { { "wal", ".wal" }, { "ckpt", ".ckpt" } };
    for (int k = 0; k < 2; k++) {
        char *p = path_join(db, subs[k][0], coll_id, subs[k][1]);
        if (p && unlink(p) != 0 && errno != ENOENT)
            akidb__log(&db->env, AKIDB_LOG_WARN, "%s: cannot remove: %s", p, strerror(errno));
        akidb__free(&db->env.alloc, p);
    }
}

int akidb__db_drop(akidb *db, const char *name)
{
    /* Its user snapshots stay: they are backups, recorded under the name
     * (see akidb_collection_drop); its tier snapshots go (catalog drop). */
    int rc = akidb__db_writable(db, "akidb_collection_drop");
    if (rc)
        return rc;
    akidb__slot *s;
    if ((rc = get_slot(db, name, &s)))
        return rc;
    /* No transition may run while the collection goes: wait for one in
     * flight, and keep others out from here on. */
    akidb__tier_claim(s);
    pthread_mutex_lock(&s->mu);
    akidb_tier tier = s->tier;
    pthread_mutex_unlock(&s->mu);
    pthread_rwlock_wrlock(&db->lock);
    size_t i;
    if (find_slot(db, name, &i) != s) {
        pthread_rwlock_unlock(&db->lock);
        akidb__tier_release(s);
        akidb__slot_unref(db, s);
        return akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", name);
    }
    if ((rc = akidb__catalog_drop(db->meta, s->coll_id, akidb__db_now_us(db))) != AKIDB_OK) {
        pthread_rwlock_unlock(&db->lock);
        akidb__tier_release(s);
        akidb__slot_unref(db, s);
        return rc;
    }
    db->slots[i] = db->slots[--db->n_slots];
    akidb__metric_set(&db->env.metrics, AKIDB__M_COLLECTIONS, (int64_t)db->n_slots);
    pthread_rwlock_unlock(&db->lock);
    /* The row is gone: from here the files are leftovers that the next
     * open would remove anyway, so failures are only logged.  Calls in
     * flight finish first; later ones find the slot gone. */
    pthread_rwlock_wrlock(&s->use);
    s->gone = 1;
    akidb__collection *c = s->coll;
    s->coll = NULL;
    pthread_rwlock_unlock(&s->use);
    akidb__coll_free(c);
    akidb__db_remove_local(db, s->coll_id);
    akidb__tier_release(s);
    akidb__tier_dropped(db->tier, tier);
    akidb__tier_after_drop(db->tier);   /* the tier snapshots' objects */
    akidb__slot_unref(db, s);           /* the table's reference */
    akidb__slot_unref(db, s);           /* ours */
    return AKIDB_OK;
}

int akidb__db_enter_slot(akidb *db, const char *name, unsigned flags, akidb__slot **slot_out)
{
    akidb__slot *s;
    *slot_out = NULL;
    int rc = get_slot(db, name, &s);
    if (rc)
        return rc;
    if (flags & AKIDB__ENTER_COUNT)
        akidb__slot_touch(s, akidb__db_now_us(db));
    for (;;) {
        pthread_rwlock_rdlock(&s->use);
        if (s->gone) {
            pthread_rwlock_unlock(&s->use);
            akidb__slot_unref(db, s);
            return akidb__err(AKIDB_NOTFOUND, "collection %s does not exist", name);
        }
        if (s->coll && (flags & AKIDB__ENTER_WRITE)) {
            /* Just promoted from COLD and still being made durable: a
             * write waits for that (tier.c, localize_job). */
            pthread_mutex_lock(&s->mu);
            int localizing = s->localizing;
            pthread_mutex_unlock(&s->mu);
            if (localizing) {
                pthread_rwlock_unlock(&s->use);
                char why[256] = "";
                if ((rc = akidb__tier_wait_local(s, why, sizeof why))) {
                    akidb__slot_unref(db, s);
                    return akidb__err(rc, "collection %s: %s", name, why);
                }
                continue;
            }
        }
        if (s->coll || !(flags & AKIDB__ENTER_LOAD)) {
            *slot_out = s;
            return AKIDB_OK;
        }
        pthread_rwlock_unlock(&s->use);
        /* Not in RAM: load it (or wait for whoever is), then look again,
         * since a demotion may have taken it away in between. */
        if ((rc = akidb__tier_promote(db->tier, s))) {
            akidb__slot_unref(db, s);
            return rc;
        }
    }
}

int akidb__db_enter_write(akidb *db, const char *name, akidb__collection **out)
{
    akidb__slot *s;
    int rc = akidb__db_enter_slot(db, name, AKIDB__ENTER_LOAD | AKIDB__ENTER_COUNT |
                                  AKIDB__ENTER_WRITE, &s);
    *out = rc ? NULL : s->coll;
    return rc;
}

void akidb__db_leave_slot(akidb *db, akidb__slot *s)
{
    pthread_rwlock_unlock(&s->use);
    akidb__slot_unref(db, s);
}

int akidb__db_enter(akidb *db, const char *name, akidb__collection **out)
{
    akidb__slot *s;
    int rc = akidb__db_enter_slot(db, name, AKIDB__ENTER_LOAD | AKIDB__ENTER_COUNT, &s);
    *out = rc ? NULL : s->coll;
    return rc;
}

void akidb__db_leave(akidb *db, akidb__collection *c)
{
    akidb__db_leave_slot(db, akidb__coll_owner(c));
}

int akidb__db_writable(akidb *db, const char *fn)
{
    if (db->opts.read_only)
        return akidb__err(AKIDB_READONLY, "%s: database %s is open read-only", fn, db->dir);
    return AKIDB_OK;
}

#define MAX_METADATA_LEN ((size_t)1 << 20)

/* The strings of a batch, checked before the collection is locked: what
 * the library stores must be readable by the tools that read its exports
 * and snapshots (Parquet STRING is UTF-8, JSON columns are JSON), so an
 * external id must be UTF-8 without control characters and metadata JSON
 * (common/json.c says which).  Only new writes are checked: log replay and
 * snapshot loads take what was stored before, as it is. */
static int check_strings(const char *fn, const char *coll, size_t n,
                         const char *const *external_ids, const char *const *metadata_json)
{
    char q[96];
    for (size_t i = 0; external_ids && i < n; i++) {
        const char *ext = external_ids[i];
        size_t len = ext ? strlen(ext) : 0, bad = 0;
        if (!ext || len > AKIDB_MAX_EXTERNAL_ID_LEN)
            continue;   /* the collection reports a bad length */
        if (!akidb__utf8_valid(ext, len, &bad))
            return akidb__err(AKIDB_INVALID, "%s: collection %s: row %zu: external id \"%s\" is "
                              "not valid UTF-8 (byte %zu)", fn, coll, i,
                              akidb__quote(q, sizeof q, ext, 40), bad);
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)ext[k] < 0x20 && ext[k] != '\t')
                return akidb__err(AKIDB_INVALID, "%s: collection %s: row %zu: external id "
                                  "\"%s\" holds control character 0x%02x (byte %zu)", fn, coll,
                                  i, akidb__quote(q, sizeof q, ext, 40), (unsigned)ext[k], k);
    }
    for (size_t i = 0; metadata_json && i < n; i++) {
        const char *meta = metadata_json[i];
        if (!meta)
            continue;
        size_t len = strlen(meta), at = 0;
        char why[160];
        if (len > MAX_METADATA_LEN)
            return akidb__err(AKIDB_INVALID, "%s: collection %s: row %zu: metadata of %zu bytes "
                              "is larger than 1 MiB", fn, coll, i, len);
        if (!akidb__json_valid(meta, len, why, sizeof why, &at))
            return akidb__err(AKIDB_INVALID, "%s: collection %s: row %zu: metadata is not valid "
                              "JSON: %s (byte %zu of \"%s\")", fn, coll, i, why, at,
                              akidb__quote(q, sizeof q, meta, 40));
    }
    return AKIDB_OK;
}

int akidb__db_write(akidb *db, akidb__collection *c, int upsert, size_t n,
                    const float *vectors, const char *const *external_ids,
                    const char *const *metadata_json, uint64_t *ids_out)
{
    const char *fn = upsert ? "akidb_upsert" : "akidb_insert";
    int rc = akidb__db_writable(db, fn);
    if (rc || (rc = check_strings(fn, akidb__coll_name(c), n, external_ids, metadata_json)))
        return rc;
    return akidb__coll_write(c, upsert, n, vectors, external_ids, metadata_json, ids_out,
                             akidb__db_now_us(db));
}

int akidb__db_delete(akidb *db, akidb__collection *c, uint64_t id)
{
    int rc = akidb__db_writable(db, "akidb_delete");
    return rc ? rc : akidb__coll_delete(c, id);
}

int akidb__db_stat(akidb *db, const char *name, akidb_collection_stats *out,
                   akidb_collection_config *cfg_out, uint64_t *count_out)
{
    akidb__slot *s;
    int rc = akidb__db_enter_slot(db, name, AKIDB__ENTER_COUNT, &s);
    if (rc)
        return rc;
    if (cfg_out)
        *cfg_out = s->cfg;
    if (out) {
        if (s->coll)
            akidb__coll_stat(s->coll, out);
        out->dim = s->cfg.dim;
        out->metric = s->cfg.metric;
        out->created_at_us = s->created_at;
    }
    pthread_mutex_lock(&s->mu);
    if (!s->coll) {
        /* Not in RAM: what it held when it left, and no RAM now. */
        if (out) {
            out->count = s->doc_count;
            out->deleted = s->doc_deleted;
        }
        if (count_out)
            *count_out = s->doc_count;
    }
    if (out) {
        out->tier = s->coll ? AKIDB_TIER_HOT : s->tier;
        out->pinned = s->pinned;
    }
    pthread_mutex_unlock(&s->mu);
    if (s->coll && count_out)
        *count_out = akidb__coll_count(s->coll);
    akidb__db_leave_slot(db, s);
    return AKIDB_OK;
}

/* ---- snapshots -------------------------------------------------------- */

/* A temporary path under dir/tmp for one snapshot being written. */
static char *tmp_path(akidb *db, const char *what)
{
    char *dir = path_join(db, "tmp", -1, "");
    if (!dir)
        return NULL;
    mkdir(dir, (mode_t)akidb__env_dir_mode(&db->env));
    char buf[4096];
    static _Thread_local unsigned counter;
    snprintf(buf, sizeof buf, "%s/%s-%ld-%u-%u.tmp", dir, what, (long)getpid(),
             (unsigned)(uintptr_t)&counter % 100000u, ++counter);
    akidb__free(&db->env.alloc, dir);
    return akidb__strdup(&db->env.alloc, buf);
}

void akidb__db_snapshot_name(akidb *db, const char *coll, int64_t now,
                             akidb__catalog_snap *e)
{
    (void)db;
    /* Time-ordered ids; the counter separates snapshots of one microsecond
     * (an injected clock can stand still), and 32 random bits separate
     * processes (a restarted or forked one counts from the same values
     * again at the same injected time). */
    static _Atomic unsigned seq;
    uint32_t t = 0;
    if (getrandom(&t, sizeof t, 0) != (ssize_t)sizeof t) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t = (uint32_t)ts.tv_nsec ^ (uint32_t)getpid() << 16;
    }
    e->created_at = now;
    snprintf(e->snapshot_id, sizeof e->snapshot_id, "%016llx-%04x-%08x",
             (unsigned long long)now, (unsigned)(seq++ & 0xffff), (unsigned)t);
    snprintf(e->object_key, sizeof e->object_key, "snapshots/%s/%s.parquet", coll,
             e->snapshot_id);
}

int akidb__db_snapshot_create(akidb *db, const char *coll, char id_out[AKIDB_SNAPSHOT_ID_LEN])
{
    /* A backup is not a use: it loads the collection if it must but does
     * not make it look busy to the tiering policy. */
    akidb__slot *s;
    int rc = akidb__db_writable(db, "akidb_snapshot_create");
    if (rc || (rc = akidb__db_enter_slot(db, coll, AKIDB__ENTER_LOAD, &s)))
        return rc;
    akidb__collection *c = s->coll;
    akidb__catalog_snap e;
    memset(&e, 0, sizeof e);
    e.coll_id = (int64_t)akidb__coll_id(c);
    snprintf(e.coll_name, sizeof e.coll_name, "%s", coll);
    e.crc32c = -1;
    akidb__db_snapshot_name(db, coll, akidb__db_now_us(db), &e);
    char *tmp = tmp_path(db, "snapshot");
    akidb__snap_result res;
    if (!tmp)
        rc = akidb__err(AKIDB_NOMEM, "akidb_snapshot_create: out of memory");
    else
        rc = akidb__snap_write(&db->env, c, tmp, 0, &res);   /* the store makes it durable */
    akidb__db_leave_slot(db, s);   /* the upload needs no lock: the file is a private copy */
    const void *data = NULL;
    size_t len = 0;
    if (rc == AKIDB_OK && (rc = akidb__map_file(tmp, &data, &len)) == AKIDB_OK) {
        rc = akidb__disp_put(db->disp, e.object_key, data, len);
        akidb__unmap_file(data, len);
    } else if (rc == AKIDB_NOTFOUND) {
        rc = akidb__err(AKIDB_IOERR, "%s: the snapshot copy vanished before its upload", tmp);
    }
    if (rc == AKIDB_OK) {
        e.rows = res.rows;
        e.bytes = res.bytes;
        memcpy(e.sha256, res.sha256, sizeof e.sha256);
        rc = akidb__catalog_snap_add(db->meta, &e);
        if (rc)   /* not recorded: do not leave an object no one knows of */
            akidb__disp_delete(db->disp, e.object_key);
    }
    if (tmp) {
        unlink(tmp);
        akidb__free(&db->env.alloc, tmp);
    }
    if (rc == AKIDB_OK)
        memcpy(id_out, e.snapshot_id, AKIDB_SNAPSHOT_ID_LEN);
    return rc;
}

typedef struct snap_rows {
    akidb__catalog_snap *rows;
    size_t n, cap;
} snap_rows;

static int collect_snap(void *ctx, const akidb__catalog_snap *e)
{
    snap_rows *s = ctx;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        akidb__catalog_snap *r = akidb__out_malloc(cap * sizeof *r);
        if (!r)
            return akidb__err(AKIDB_NOMEM, "out of memory listing snapshots");
        if (s->n)
            memcpy(r, s->rows, s->n * sizeof *r);
        akidb__out_free(s->rows);
        s->rows = r;
        s->cap = cap;
    }
    s->rows[s->n++] = *e;
    return AKIDB_OK;
}

/* The catalog's snapshots of collection `coll`, newest first: those taken
 * under its name, by it or by an earlier collection of that name that was
 * dropped.  The collection must exist (AKIDB_NOTFOUND).  *out is cleared
 * first, so the caller frees it whatever happens. */
static int list_snaps(akidb *db, const char *coll, int64_t *coll_id, snap_rows *out)
{
    memset(out, 0, sizeof *out);
    akidb__slot *s;
    int rc = get_slot(db, coll, &s);
    if (rc)
        return rc;
    *coll_id = s->coll_id;
    akidb__slot_unref(db, s);
    return akidb__catalog_snap_list(db->meta, coll, collect_snap, out);
}

int akidb__db_snapshot_list(akidb *db, const char *coll, akidb__catalog_snap **rows_out,
                            size_t *n_out)
{
    int64_t coll_id;
    snap_rows s;
    int rc = list_snaps(db, coll, &coll_id, &s);
    if (rc) {
        akidb__out_free(s.rows);
        s.rows = NULL;
        s.n = 0;
    }
    *rows_out = s.rows;
    *n_out = s.n;
    return rc;
}

/* Download snapshot e, verify it, and build a detached collection. */
static int load_snapshot(akidb *db, const char *coll, const akidb_collection_config *cfg,
                         int64_t coll_id, int64_t created_at, const akidb__catalog_snap *e,
                         akidb__collection **out)
{
    void *data = NULL;
    size_t len = 0;
    char sha[65], what[AKIDB_MAX_KEY_LEN + 32];
    snprintf(what, sizeof what, "snapshot %s", e->object_key);
    int rc = akidb__disp_get(db->disp, e->object_key, 0, UINT64_MAX, &data, &len);
    if (rc)
        return rc;
    if (len != e->bytes) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: %zu bytes, the catalog recorded %llu", what, len,
                        (unsigned long long)e->bytes);
    } else if (akidb__sha256_hex(data, len, sha), strcmp(sha, e->sha256) != 0) {
        rc = akidb__err(AKIDB_CORRUPT, "%s: SHA-256 %s does not match the recorded %s", what,
                        sha, e->sha256);
    }
    char *ckpt = path_join(db, "ckpt", coll_id, ".ckpt");
    akidb__collection *c = NULL;
    if (rc == AKIDB_OK && !ckpt)
        rc = akidb__err(AKIDB_NOMEM, "%s: out of memory", what);
    if (rc == AKIDB_OK && (rc = new_coll(db, coll, cfg, coll_id, ckpt, created_at, &c)) == AKIDB_OK &&
        (rc = akidb__snap_load(&db->env, data, len, what, c)) != AKIDB_OK) {
        akidb__coll_free(c);
        c = NULL;
    }
    akidb__free(&db->env.alloc, ckpt);
    akidb__out_free(data);
    *out = c;
    return rc;
}

int akidb__db_snapshot_restore(akidb *db, const char *coll, const char *id)
{
    int64_t coll_id;
    snap_rows s;
    akidb__slot *slot = NULL;
    int claimed = 0;
    memset(&s, 0, sizeof s);
    int rc = akidb__db_writable(db, "akidb_snapshot_restore");
    if (rc || (rc = list_snaps(db, coll, &coll_id, &s)))
        goto done;
    if ((rc = get_slot(db, coll, &slot)))
        goto done;
    akidb_collection_config cfg = slot->cfg;
    int64_t created_at = slot->created_at;
    akidb__collection *fresh = NULL;
    int tried = 0;
    char last_err[512] = "";
    for (size_t i = 0; i < s.n && !fresh; i++) {
        if (id && strcmp(s.rows[i].snapshot_id, id) != 0)
            continue;
        tried++;
        rc = load_snapshot(db, coll, &cfg, coll_id, created_at, &s.rows[i], &fresh);
        if (rc) {
            snprintf(last_err, sizeof last_err, "%s", akidb__errmsg());
            /* INVALID: settings that differ, a snapshot of an earlier
             * collection of the name: not this one's newest backup. */
            if (id || (rc != AKIDB_CORRUPT && rc != AKIDB_NOTFOUND && rc != AKIDB_INVALID))
                goto done;
            akidb__log(&db->env, AKIDB_LOG_WARN, "restore of %s: skipping snapshot %s: %s",
                       coll, s.rows[i].snapshot_id, last_err);
        }
    }
    if (!fresh) {
        rc = !tried ? akidb__err(AKIDB_NOTFOUND, "collection %s has no snapshot%s%s", coll,
                                 id ? " " : "", id ? id : "")
                    : akidb__err(rc, "collection %s: no snapshot verifies; last error: %s",
                                 coll, last_err);
        goto done;
    }
    /* Swap: same name, same log; the checkpoint makes it durable.  The
     * slot is claimed so no tier transition runs meanwhile, and HOT so
     * the log is open. */
    akidb__tier_claim(slot);
    claimed = 1;
    pthread_rwlock_rdlock(&slot->use);
    int gone = slot->gone;
    pthread_rwlock_unlock(&slot->use);
    if (gone) {
        akidb__coll_free(fresh);
        rc = akidb__err(AKIDB_CONFLICT, "collection %s was dropped or recreated during the "
                        "restore", coll);
        goto done;
    }
    if ((rc = akidb__tier_promote_claimed(db->tier, slot))) {
        akidb__coll_free(fresh);
        goto done;
    }
    pthread_rwlock_wrlock(&slot->use);
    akidb__collection *old = slot->coll;
    akidb__coll_attach_wal(fresh, akidb__coll_detach_wal(old));
    akidb__coll_set_restored(fresh, akidb__coll_last_seq(old));
    akidb__coll_set_owner(fresh, slot);
    rc = akidb__coll_checkpoint(fresh, 0);
    if (rc) {
        akidb__coll_attach_wal(old, akidb__coll_detach_wal(fresh));
        pthread_rwlock_unlock(&slot->use);
        akidb__coll_free(fresh);
    } else {
        slot->coll = fresh;
        pthread_rwlock_unlock(&slot->use);
        akidb__coll_free(old);
        /* its tail (a snapshot may hold one) was loaded while the indexer
         * could not see it: wake the indexer now that it can */
        akidb__indexer_kick(db->indexer);
    }
done:
    if (claimed)
        akidb__tier_release(slot);
    akidb__slot_unref(db, slot);
    akidb__out_free(s.rows);
    return rc;
}

int akidb__db_snapshot_delete(akidb *db, const char *coll, const char *id)
{
    int64_t coll_id;
    snap_rows s;
    akidb__slot *slot = NULL;
    memset(&s, 0, sizeof s);
    int rc = akidb__db_writable(db, "akidb_snapshot_delete");
    /* Claimed: no demotion or promotion changes which copy a COLD
     * collection lives in while we look. */
    if (rc == AKIDB_OK && (rc = get_slot(db, coll, &slot)) == AKIDB_OK)
        akidb__tier_claim(slot);
    if (rc == AKIDB_OK)
        rc = list_snaps(db, coll, &coll_id, &s);
    const akidb__catalog_snap *e = NULL, *live = NULL;
    for (size_t i = 0; rc == AKIDB_OK && i < s.n; i++) {
        if (strcmp(s.rows[i].snapshot_id, id) == 0)
            e = &s.rows[i];
        if (!live && s.rows[i].kind == AKIDB__SNAP_TIER && s.rows[i].coll_id == slot->coll_id)
            live = &s.rows[i];
    }
    if (rc == AKIDB_OK && !e)
        rc = akidb__err(AKIDB_NOTFOUND, "collection %s has no snapshot %s", coll, id);
    if (rc == AKIDB_OK && e == live) {
        pthread_mutex_lock(&slot->mu);
        int cold = slot->tier == AKIDB_TIER_COLD;
        pthread_mutex_unlock(&slot->mu);
        if (cold)
            rc = akidb__err(AKIDB_CONFLICT, "collection %s: snapshot %s is the cold copy the "
                            "collection lives in; promote it first (akidb_tier_set)", coll, id);
    }
    /* The object first: a catalog row without its object is noticed at
     * restore; an object without its row would be leaked. */
    if (rc == AKIDB_OK && (rc = akidb__disp_delete(db->disp, e->object_key)) == AKIDB_OK)
        rc = akidb__catalog_snap_delete(db->meta, coll, id);
    if (slot) {
        akidb__tier_release(slot);
        akidb__slot_unref(db, slot);
    }
    akidb__out_free(s.rows);
    return rc;
}

/* ---- listing ----------------------------------------------------------- */

static int cmp_name(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

int akidb__db_list(akidb *db, char ***names_out, size_t *n_out)
{
    *names_out = NULL;
    *n_out = 0;
    pthread_rwlock_rdlock(&db->lock);
    size_t n = db->n_slots, bytes = n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(db->slots[i]->name) + 1;
    char **names = n ? akidb__out_malloc(bytes) : NULL;
    if (n && !names) {
        pthread_rwlock_unlock(&db->lock);
        return akidb__err(AKIDB_NOMEM, "akidb_collection_list: out of memory");
    }
    char *str = (char *)(names + n);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(db->slots[i]->name) + 1;
        memcpy(str, db->slots[i]->name, len);
        names[i] = str;
        str += len;
    }
    pthread_rwlock_unlock(&db->lock);
    if (n)
        qsort(names, n, sizeof *names, cmp_name);
    *names_out = names;
    *n_out = n;
    return AKIDB_OK;
}
