/*
 * collection.c - an in-RAM collection: documents over an HNSW index.
 *
 * A document is (id, external id, vector, metadata, inserted_at).  The
 * index numbers its nodes densely; this layer maps them to documents:
 *
 *   node_id[node], node_ext[node], node_meta[node], node_time[node]
 *            (node_ext and node_meta exist once a document has an external
 *            id or metadata: a collection of bare vectors saves their 16
 *            bytes a document)
 *   id_map:  public id   -> node of the live document with that id (a
 *            slot holds only the node: the id is node_id[node])
 *   ext_map: external id -> node of the live document with that external id
 *
 * Public ids are assigned from a counter and never reused.  An upsert that
 * replaces a document tombstones its old node and adds a new one under the
 * same id, so a document keeps its id for life.  Deleted nodes keep no
 * strings (they are freed at once); their vectors stay in the index, which
 * needs them to stay navigable.
 *
 * Writes are atomic per batch, in four steps under the write lock:
 *   validate  every input checked, ids decided (new, or the replaced one's)
 *   reserve   every allocation the batch needs (strings, maps, node arrays,
 *             index); nothing visible changes
 *   log       the batch appended to the write-ahead log (and fsync'ed in
 *             ALWAYS mode); from here the batch is acknowledged
 *   commit    applied in RAM; cannot fail
 * So a batch that fails with a bad input, AKIDB_NOMEM or AKIDB_IOERR
 * leaves no trace, in RAM or in the log.  Recovery replays logged batches
 * through the same reserve and commit steps.
 *
 * Commit appends the vectors to the index's tail (a copy, no graph work):
 * from then on the documents are found by lookups, gets and searches (the
 * index scans its tail exactly).  Linking the tail into the graph happens
 * later, in slices under the write lock (akidb__coll_index_step), by the
 * handle's indexer thread (indexer.c), or by a writer itself when the
 * tail has grown past the bound (back-pressure, see help_index).  Nodes
 * are linked in node order whoever does it, so the graph is the same as
 * if every write had linked its own nodes at once.
 *
 * Log payloads (little-endian):
 *   u8 type (1 put, 2 delete), 3 zero bytes, u32 n, then n entries:
 *   put     u64 id, i64 inserted_at, u32 ext_len, u32 meta_len (0xFFFFFFFF =
 *           absent), ext bytes, meta bytes, f32[dim] (as stored: normalised
 *           for cosine)
 *   delete  u64 id
 * A put of an id that exists replaces that document (upsert).
 *
 * The maps are open-addressing tables with linear probing and
 * backward-shift deletion (no tombstones, so probes stay short under churn).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <time.h>

#include "common/env.h"
#include "common/alloc.h"
#include "engine/collection.h"
#include "engine/indexer.h"
#include "index/hnsw.h"
#include "engine/wal.h"

#define REC_PUT 1
#define REC_DELETE 2
#define NO_LEN 0xFFFFFFFFu

/* The external-id map's slots.  12 bytes, packed: a map keeps 1.3 to 2.7
 * slots per entry (it grows by doubling at 3/4 full), so packing saves 5
 * to 11 bytes an entry over 16-byte slots (8 MiB at a million documents).
 * The slot keeps the hash, so a probe compares strings only on a hash
 * match.  A key of 0 marks a free slot: hash_str never returns 0. */
typedef struct __attribute__((packed)) map_slot {
    uint64_t key;     /* the external id's hash; 0 = free */
    uint32_t node;
} map_slot;
_Static_assert(sizeof(map_slot) == 12, "map slots are 12 bytes");

typedef struct map {
    map_slot *slots;
    uint32_t mask;    /* capacity - 1 (capacity a power of two), or 0 */
    uint32_t count;
} map;

/* The id map is keyed by the node's own id: a slot holds only the node
 * (ID_SLOT_FREE when free) and its key is node_id[node], so a slot takes
 * 4 bytes instead of 12 (16 MiB less at a million documents, 2 MiB at
 * 100,000).  A lookup by id pays a load of node_id per probe; lookups by
 * id are gets, deletes and upserts, never a search.  Invariant: for every
 * node in the map, node_id[node] is its id (commit and adopt set node_id
 * before they insert). */
#define ID_SLOT_FREE UINT32_MAX

typedef struct idmap {
    uint32_t *slots;
    uint32_t mask;    /* capacity - 1 (capacity a power of two), or 0 */
    uint32_t count;
} idmap;

struct akidb__collection {
    char name[AKIDB_MAX_NAME_LEN + 1];
    uint64_t clip_seen;          /* the index's clipped_total already counted */
    akidb_collection_config cfg;
    const akidb__env *env;
    const akidb_allocator *alloc;
    uint64_t coll_id;
    char *ckpt_path;
    akidb__coll_saver_fn saver;  /* writes checkpoints; set by the owner */
    akidb__coll_vectors_fn open_vectors;  /* reads a checkpoint's vectors in place */
    akidb__coll_vectors vecs;    /* AKIDB_EXACT_FILE: the file's, once one holds them */
    int64_t created_at;          /* from the catalog, for the stats */
    akidb__wal *wal;
    uint64_t last_seq;           /* last log record applied */
    int has_checkpoint;
    uint64_t ckpt_retry_at;      /* log size before retrying a failed checkpoint */
    pthread_rwlock_t lock;
    pthread_mutex_t ckpt_lock;   /* one checkpoint at a time (they share a temp file) */
    akidb__hnsw *index;

    akidb__indexer *ix;          /* woken when the tail grows; NULL = none */
    uint32_t lag_bound;          /* back-pressure: writers link while the tail exceeds it */
    uint32_t lag;                /* tail size: written under the write lock, read atomically */
    uint32_t index_hold;         /* atomic: > 0 while linking is held (akidb__coll_index_hold) */
    uint32_t read_waiters;       /* atomic hints: calls waiting for `lock`, */
    uint32_t write_waiters;      /* shared / exclusive (lock_shared, lock_exclusive) */
    uint32_t ckpt_linked;        /* graph nodes in the last checkpoint written or loaded */
    uint64_t ckpt_file_bytes;    /* and its size: the default checkpoint threshold follows it */

    uint64_t *node_id;
    char **node_ext;
    char **node_meta;
    int64_t *node_time;
    uint32_t node_cap;

    idmap id_map;
    map ext_map;
    uint64_t next_id;
    uint64_t str_bytes;          /* bytes of the nodes' strings, kept as they change */
    void *owner;                 /* the handle's table entry (db.c) */
};

/* Bytes a string takes in the accounting (akidb__coll_stat). */
static inline uint64_t str_cost(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* ---- hashing and maps ------------------------------------------------ */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a, then a final mix */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    h = mix64(h);
    return h ? h : 1;   /* 0 marks a free map slot */
}

static void map_free(const akidb_allocator *a, map *m)
{
    akidb__free(a, m->slots);
    memset(m, 0, sizeof *m);
}

static void map_put_slot(map *m, uint64_t key, uint32_t node)
{
    uint32_t i = (uint32_t)mix64(key) & m->mask;
    while (m->slots[i].key)
        i = (i + 1) & m->mask;
    m->slots[i].key = key;
    m->slots[i].node = node;
    m->count++;
}

/* The slot count a table of `cap` slots (a power of two, or 0) needs to
 * hold `count + more` entries at a load factor of at most 3/4, in
 * *new_cap: `cap` itself when it already does.  AKIDB_NOMEM when no slot
 * count a uint32_t can index would. */
static int table_capacity(size_t count, size_t more, size_t cap, size_t *new_cap)
{
    if (more > (size_t)UINT32_MAX)
        return AKIDB_NOMEM;
    size_t need = count + more;
    size_t grown = cap;
    if (need * 4 > grown * 3) {
        grown = cap ? cap : 16;
        while (need * 4 > grown * 3) {
            if (grown > (size_t)UINT32_MAX / 2)
                return AKIDB_NOMEM;
            grown *= 2;
        }
    }
    *new_cap = grown;
    return AKIDB_OK;
}

/* Make room for `more` entries at a load factor of at most 3/4. */
static int map_reserve(const akidb_allocator *a, map *m, size_t more)
{
    size_t cap = m->slots ? (size_t)m->mask + 1 : 0;
    size_t new_cap;
    if (table_capacity(m->count, more, cap, &new_cap))
        return AKIDB_NOMEM;
    if (new_cap == cap)
        return AKIDB_OK;
    map_slot *slots = akidb__calloc(a, new_cap, sizeof *slots);
    if (!slots)
        return AKIDB_NOMEM;
    map old = *m;
    m->slots = slots;
    m->mask = (uint32_t)(new_cap - 1);
    m->count = 0;
    for (size_t i = 0; old.slots && i <= old.mask; i++)
        if (old.slots[i].key)
            map_put_slot(m, old.slots[i].key, old.slots[i].node);
    akidb__free(a, old.slots);
    return AKIDB_OK;
}

static void map_remove_at(map *m, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        if (!m->slots[j].key)
            break;
        uint32_t home = (uint32_t)mix64(m->slots[j].key) & m->mask;
        /* Slot j may move back to i only if its home is not in (i, j]. */
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        m->slots[i] = m->slots[j];
        i = j;
    }
    m->slots[i].key = 0;
    m->count--;
}

static int64_t ext_find(const akidb__collection *c, const char *ext, uint64_t h)
{
    const map *m = &c->ext_map;
    if (!m->slots || !c->node_ext)
        return -1;
    for (uint32_t i = (uint32_t)mix64(h) & m->mask; m->slots[i].key; i = (i + 1) & m->mask)
        if (m->slots[i].key == h && strcmp(c->node_ext[m->slots[i].node], ext) == 0)
            return i;
    return -1;
}

static void idmap_free(const akidb_allocator *a, idmap *m)
{
    akidb__free(a, m->slots);
    memset(m, 0, sizeof *m);
}

static void idmap_put(idmap *m, uint64_t id, uint32_t node)
{
    uint32_t i = (uint32_t)mix64(id) & m->mask;
    while (m->slots[i] != ID_SLOT_FREE)
        i = (i + 1) & m->mask;
    m->slots[i] = node;
    m->count++;
}

/* Make room for `more` ids at a load factor of at most 3/4; the keys of
 * the entries moved are read from node_id, so the node arrays must hold
 * every mapped node (grow_nodes keeps them). */
static int idmap_reserve(akidb__collection *c, size_t more)
{
    idmap *m = &c->id_map;
    size_t cap = m->slots ? (size_t)m->mask + 1 : 0;
    size_t new_cap;
    if (table_capacity(m->count, more, cap, &new_cap))
        return AKIDB_NOMEM;
    if (new_cap == cap)
        return AKIDB_OK;
    uint32_t *slots = akidb__alloc_array(c->alloc, new_cap, sizeof *slots);
    if (!slots)
        return AKIDB_NOMEM;
    memset(slots, 0xff, new_cap * sizeof *slots);   /* every slot ID_SLOT_FREE */
    idmap old = *m;
    m->slots = slots;
    m->mask = (uint32_t)(new_cap - 1);
    m->count = 0;
    for (size_t i = 0; old.slots && i <= old.mask; i++)
        if (old.slots[i] != ID_SLOT_FREE)
            idmap_put(m, c->node_id[old.slots[i]], old.slots[i]);
    akidb__free(c->alloc, old.slots);
    return AKIDB_OK;
}

static void idmap_remove_at(akidb__collection *c, uint32_t i)
{
    idmap *m = &c->id_map;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        if (m->slots[j] == ID_SLOT_FREE)
            break;
        uint32_t home = (uint32_t)mix64(c->node_id[m->slots[j]]) & m->mask;
        /* Slot j may move back to i only if its home is not in (i, j]. */
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        m->slots[i] = m->slots[j];
        i = j;
    }
    m->slots[i] = ID_SLOT_FREE;
    m->count--;
}

/* The slot of the live document with this id, or -1. */
static int64_t id_find(const akidb__collection *c, uint64_t id)
{
    const idmap *m = &c->id_map;
    if (!m->slots)
        return -1;
    for (uint32_t i = (uint32_t)mix64(id) & m->mask; m->slots[i] != ID_SLOT_FREE;
         i = (i + 1) & m->mask)
        if (c->node_id[m->slots[i]] == id)
            return i;
    return -1;
}

/* ---- lifecycle ------------------------------------------------------- */

void akidb__coll_hnsw_config(const akidb_collection_config *cfg, uint64_t seed,
                             akidb__hnsw_config *out)
{
    memset(out, 0, sizeof *out);
    out->dim = cfg->dim;
    out->space = cfg->metric == AKIDB_METRIC_L2 ? AKIDB__SPACE_L2 : AKIDB__SPACE_IP;
    out->negate_dot = cfg->metric == AKIDB_METRIC_DOT;
    out->m = cfg->hnsw_m;
    out->ef_construction = cfg->ef_construction;
    out->seed = seed;
    /* the public and internal enums share their values (quant.h, hnsw.h) */
    out->storage = (akidb__storage)cfg->storage;
    out->exact = cfg->exact == AKIDB_EXACT_NONE   ? AKIDB__EXACT_NONE
               : cfg->exact == AKIDB_EXACT_FILE ? AKIDB__EXACT_SOURCE
                                                : AKIDB__EXACT_RAM;
    out->rerank = cfg->rerank;
}

int akidb__coll_new(const char *name, const akidb_collection_config *cfg,
                    const akidb__env *env, uint64_t coll_id, const char *ckpt_path,
                    akidb__collection **out)
{
    const akidb_allocator *alloc = &env->alloc;
    *out = NULL;
    akidb__collection *c = akidb__calloc(alloc, 1, sizeof *c);
    if (!c)
        return akidb__err(AKIDB_NOMEM, "collection %s: out of memory", name);
    strncpy(c->name, name, AKIDB_MAX_NAME_LEN);
    c->cfg = *cfg;
    c->cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    c->env = env;
    c->alloc = alloc;
    c->coll_id = coll_id;
    c->next_id = 1;
    c->ckpt_path = akidb__strdup(alloc, ckpt_path);
    if (!c->ckpt_path) {
        akidb__free(alloc, c);
        return akidb__err(AKIDB_NOMEM, "collection %s: out of memory", name);
    }

    akidb__hnsw_config hc;
    akidb__coll_hnsw_config(cfg, hash_str(name), &hc);
    int rc = akidb__hnsw_new(&hc, alloc, NULL, &c->index);
    if (rc) {
        akidb__free(alloc, c->ckpt_path);
        akidb__free(alloc, c);
        return akidb__err(rc, "collection %s: cannot create index", name);
    }
    c->lag_bound = env->max_index_lag ? env->max_index_lag
                                      : akidb__coll_default_lag_bound(cfg->dim);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Searches are frequent and short; without this, a steady stream of
     * them would starve writers forever. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    rc = pthread_rwlock_init(&c->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc == 0 && pthread_mutex_init(&c->ckpt_lock, NULL) != 0) {
        pthread_rwlock_destroy(&c->lock);
        rc = -1;
    }
    if (rc != 0) {
        akidb__hnsw_free(c->index);
        akidb__free(alloc, c->ckpt_path);
        akidb__free(alloc, c);
        return akidb__err(AKIDB_ERROR, "collection %s: cannot create lock", name);
    }
    *out = c;
    return AKIDB_OK;
}

static void free_contents(akidb__collection *c)
{
    const akidb_allocator *a = c->alloc;
    uint32_t n = c->index ? akidb__hnsw_size(c->index) : 0;
    for (uint32_t i = 0; i < n && c->node_ext; i++) {
        akidb__free(a, c->node_ext[i]);
        akidb__free(a, c->node_meta[i]);
    }
    akidb__free(a, c->node_id);
    akidb__free(a, c->node_ext);
    akidb__free(a, c->node_meta);
    akidb__free(a, c->node_time);
    c->node_id = NULL;
    c->node_ext = c->node_meta = NULL;
    c->node_time = NULL;
    c->node_cap = 0;
    c->str_bytes = 0;
    idmap_free(a, &c->id_map);
    map_free(a, &c->ext_map);
    akidb__hnsw_free(c->index);
    c->index = NULL;
    if (c->vecs.close)
        c->vecs.close(c->vecs.src.ctx);
    memset(&c->vecs, 0, sizeof c->vecs);
}

void akidb__coll_free(akidb__collection *c)
{
    if (!c)
        return;
    /* Its tail leaves the handle's count; a waiter for every tail to
     * drain must look again. */
    uint32_t lag = __atomic_load_n(&c->lag, __ATOMIC_RELAXED);
    if (lag) {
        akidb__metric_add((akidb__metrics *)&c->env->metrics, AKIDB__M_INDEX_PENDING,
                          -(int64_t)lag);
        if (c->ix)
            akidb__indexer_drained(c->ix);
    }
    free_contents(c);
    akidb__wal_close(c->wal);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->ckpt_lock);
    akidb__free(c->alloc, c->ckpt_path);
    akidb__free(c->alloc, c);
}

void akidb__coll_set_saver(akidb__collection *c, akidb__coll_saver_fn saver)
{
    c->saver = saver;
}

void akidb__coll_set_vectors_opener(akidb__collection *c, akidb__coll_vectors_fn open_vectors)
{
    c->open_vectors = open_vectors;
}

int akidb__coll_wants_file_vectors(const akidb__collection *c)
{
    return c->cfg.exact == AKIDB_EXACT_FILE && c->cfg.storage != AKIDB_STORAGE_F32;
}

void akidb__coll_set_vectors(akidb__collection *c, const akidb__coll_vectors *v)
{
    if (c->vecs.close)
        c->vecs.close(c->vecs.src.ctx);
    c->vecs = *v;
}

void akidb__coll_prepare_index(const akidb__collection *c, akidb__hnsw *index)
{
    if (c->vecs.src.read)
        akidb__hnsw_set_exact_source(index, &c->vecs.src);
}

static void lock_exclusive(akidb__collection *c);

/* Switch c to the vectors of its checkpoint file as it is now (the
 * caller holds ckpt_lock, so no checkpoint replaces the file meanwhile)
 * and free the RAM copies they cover.  The swap takes the lock
 * exclusively: searches read through the old file until then. */
static int refresh_vectors(akidb__collection *c)
{
    if (!akidb__coll_wants_file_vectors(c) || !c->open_vectors)
        return AKIDB_OK;
    akidb__coll_vectors v;
    int rc = c->open_vectors(c->env, c->ckpt_path, -1, c->cfg.dim, &v);
    if (rc == AKIDB_OK) {
        lock_exclusive(c);
        /* nodes are never removed, so a checkpoint of this state holds
         * at most the nodes the index has */
        if (v.src.n_nodes <= akidb__hnsw_size(c->index)) {
            akidb__coll_vectors old = c->vecs;
            c->vecs = v;
            akidb__hnsw_set_exact_source(c->index, &c->vecs.src);
            akidb__hnsw_drop_exact(c->index);
            v = old;
        } else {
            rc = akidb__err(AKIDB_CORRUPT, "%s: holds %u rows, the collection %u nodes",
                            c->ckpt_path, v.src.n_nodes, akidb__hnsw_size(c->index));
        }
        pthread_rwlock_unlock(&c->lock);
        if (v.close)
            v.close(v.src.ctx);
    }
    if (rc)
        akidb__log(c->env, AKIDB_LOG_WARN, "collection %s: exact vectors stay in RAM until the "
                   "next checkpoint: %s", c->name, akidb__errmsg());
    return rc;
}

int akidb__coll_reload_vectors(akidb__collection *c)
{
    pthread_mutex_lock(&c->ckpt_lock);
    int rc = refresh_vectors(c);
    pthread_mutex_unlock(&c->ckpt_lock);
    return rc;
}

void akidb__coll_set_owner(akidb__collection *c, void *owner)
{
    c->owner = owner;
}

void *akidb__coll_owner(const akidb__collection *c)
{
    return c->owner;
}

void akidb__coll_set_created_at(akidb__collection *c, int64_t us)
{
    c->created_at = us;
}

int64_t akidb__coll_created_at(const akidb__collection *c)
{
    return c->created_at;
}

/* The collection lock, taken for calls (searches, reads, writes).  A call
 * that cannot take it at once counts itself in read_waiters or
 * write_waiters while it waits: linking reads those hints and gives way
 * (see akidb__coll_index_step).  Without it, the indexer's back-to-back
 * slices won the lock again and again on a 2-core box (the lock prefers
 * writers, and the indexer is always the next writer): eight writers got
 * a tenth of their throughput and searches waited tens of milliseconds
 * (docs/BENCHMARKS.md, "Fast ingest"). */
static void lock_shared(akidb__collection *c)
{
    if (pthread_rwlock_tryrdlock(&c->lock) == 0)
        return;
    __atomic_fetch_add(&c->read_waiters, 1, __ATOMIC_RELAXED);
    pthread_rwlock_rdlock(&c->lock);
    __atomic_fetch_sub(&c->read_waiters, 1, __ATOMIC_RELAXED);
}

static void lock_exclusive(akidb__collection *c)
{
    if (pthread_rwlock_trywrlock(&c->lock) == 0)
        return;
    __atomic_fetch_add(&c->write_waiters, 1, __ATOMIC_RELAXED);
    pthread_rwlock_wrlock(&c->lock);
    __atomic_fetch_sub(&c->write_waiters, 1, __ATOMIC_RELAXED);
}

/* Whether calls wait that linking should let in: the indexer gives way
 * to every call; a writer linking under back-pressure only to reads
 * (other writers would wait for the same linking anyway, and handing the
 * lock around between them node by node halved the sustained rate). */
static int lock_wanted(const akidb__collection *c, int by_writer)
{
    return __atomic_load_n(&c->read_waiters, __ATOMIC_RELAXED) != 0 ||
           (!by_writer && __atomic_load_n(&c->write_waiters, __ATOMIC_RELAXED) != 0);
}

void akidb__coll_attach_wal(akidb__collection *c, akidb__wal *wal)
{
    /* Under the lock: a promotion from the cold tier attaches the log
     * while searches already use the collection. */
    lock_exclusive(c);
    c->wal = wal;
    pthread_rwlock_unlock(&c->lock);
}

uint64_t akidb__coll_id(const akidb__collection *c)
{
    return c->coll_id;
}

uint64_t akidb__coll_last_seq(const akidb__collection *c)
{
    return c->last_seq;
}

void akidb__coll_set_last_seq(akidb__collection *c, uint64_t seq)
{
    c->last_seq = seq;
    c->has_checkpoint = 1;
    struct stat st;
    if (stat(c->ckpt_path, &st) == 0)
        c->ckpt_file_bytes = (uint64_t)st.st_size;
}

uint32_t akidb__coll_default_lag_bound(uint32_t dim)
{
    uint32_t b = (uint32_t)(((uint32_t)1 << 21) / (dim ? dim : 1));
    return b < 1024 ? 1024 : b > ((uint32_t)1 << 20) ? (uint32_t)1 << 20 : b;
}

void akidb__coll_set_indexer(akidb__collection *c, akidb__indexer *ix)
{
    c->ix = ix;
}

uint32_t akidb__coll_index_lag(const akidb__collection *c)
{
    return __atomic_load_n(&c->lag, __ATOMIC_RELAXED);
}

uint32_t akidb__coll_lag_bound(const akidb__collection *c)
{
    return c->lag_bound;
}

static int index_held(const akidb__collection *c)
{
    return __atomic_load_n(&c->index_hold, __ATOMIC_ACQUIRE) != 0;
}

void akidb__coll_index_hold(akidb__collection *c, int hold)
{
    if (hold) {
        __atomic_fetch_add(&c->index_hold, 1, __ATOMIC_ACQ_REL);
        return;
    }
    /* The last release wakes the indexer for what the tail holds. */
    if (__atomic_sub_fetch(&c->index_hold, 1, __ATOMIC_ACQ_REL) == 0 && c->ix &&
        akidb__coll_index_lag(c) > 0)
        akidb__indexer_kick(c->ix);
}

int akidb__coll_index_pending(const akidb__collection *c)
{
    return akidb__coll_index_lag(c) > 0 && !index_held(c);
}

/* Count the values f16/int8 encoding clamped since the last call (append
 * encodes; int8 training, during linking, encodes every node again).  The
 * caller holds the write lock. */
static void count_clipped(akidb__collection *c)
{
    if (c->cfg.storage == AKIDB_STORAGE_F32)
        return;
    akidb__hnsw_quant_stats st;
    akidb__hnsw_quant_stats_get(c->index, &st);
    if (st.clipped_total > c->clip_seen)
        akidb__metric_add((akidb__metrics *)&c->env->metrics, AKIDB__M_QUANT_CLIPPED,
                          (int64_t)(st.clipped_total - c->clip_seen));
    c->clip_seen = st.clipped_total;
}

/* Under the write lock: publish the tail size after appends or links. */
static void update_lag(akidb__collection *c)
{
    uint32_t lag = akidb__hnsw_size(c->index) - akidb__hnsw_linked(c->index);
    uint32_t old = __atomic_exchange_n(&c->lag, lag, __ATOMIC_RELAXED);
    if (lag != old)
        akidb__metric_add((akidb__metrics *)&c->env->metrics, AKIDB__M_INDEX_PENDING,
                          (int64_t)lag - (int64_t)old);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t akidb__coll_index_step(akidb__collection *c, uint64_t budget_ns, uint32_t stop_at,
                                int by_writer)
{
    akidb__metrics *m = (akidb__metrics *)&c->env->metrics;
    /* Linking gives way to calls (lock_wanted): it lets waiting ones in
     * first (the indexer for up to ~1 ms, so it still makes progress
     * under a constant stream; a writer for 50 us), and ends its slice
     * after any node once one waits.  So a search waits for about one
     * node's linking, not for a 2 ms slice. */
    for (int i = 0; i < (by_writer ? 1 : 20) && lock_wanted(c, by_writer); i++) {
        struct timespec pause = { 0, 50000 };
        nanosleep(&pause, NULL);
    }
    if (by_writer)
        lock_exclusive(c);
    else
        pthread_rwlock_wrlock(&c->lock);
    uint64_t t0 = mono_ns(), t = t0;
    uint32_t linked = 0;
    /* At least one node, however small the budget: progress is certain
     * (unless linking is held: then none). */
    int held = index_held(c);
    while (!held && akidb__hnsw_size(c->index) - akidb__hnsw_linked(c->index) > stop_at &&
           (linked == 0 || (t - t0 < budget_ns && !lock_wanted(c, by_writer)))) {
        akidb__hnsw_link_next(c->index);
        linked++;
        t = mono_ns();
    }
    update_lag(c);
    count_clipped(c);
    uint32_t left = c->lag;
    pthread_rwlock_unlock(&c->lock);
    if (linked) {
        akidb__metric_add(m, AKIDB__M_INDEX_LINKED, linked);
        akidb__metric_add(m, AKIDB__M_INDEX_LINK_US, (int64_t)((t - t0) / 1000));
        if (by_writer)
            akidb__metric_add(m, AKIDB__M_INDEX_WRITER_LINKED, linked);
        if (left == 0 && c->ix)
            akidb__indexer_drained(c->ix);
    }
    return left;
}

/* Back-pressure, after a write was logged and applied: while the tail is
 * longer than the bound, the writer links nodes itself, a slice at a
 * time so searches get the lock between slices.  The write is durable
 * already; it is acknowledged (returns) when the tail is back within the
 * bound, which keeps the exact scan of the tail that every search pays
 * bounded however fast writes come. */
static void help_index(akidb__collection *c)
{
    /* Not while linking is held (a checkpoint or demotion in progress,
     * which is short): the tail may pass the bound until it ends. */
    while (akidb__coll_index_lag(c) > c->lag_bound && !index_held(c))
        akidb__coll_index_step(c, AKIDB__INDEX_SLICE_NS, c->lag_bound, 1);
}

const char *akidb__coll_name(const akidb__collection *c)
{
    return c->name;
}

void akidb__coll_config(const akidb__collection *c, akidb_collection_config *out)
{
    *out = c->cfg;   /* immutable after creation: no lock needed */
}

uint64_t akidb__coll_count(akidb__collection *c)
{
    lock_shared(c);
    uint64_t n = c->id_map.count;
    pthread_rwlock_unlock(&c->lock);
    return n;
}

/* Caller holds the lock (either mode).  O(1): kept up to date by the
 * writes, because the tiering policy sums it over every collection. */
/* RAM by component: float vectors, compact rows (f16/int8), graph,
 * documents; the index says what it holds (by storage kind and exact
 * mode), so a budget counts the real bytes. */
static void byte_counts(const akidb__collection *c, uint64_t *vec, uint64_t *compact,
                        uint64_t *graph, uint64_t *docs)
{
    akidb__hnsw_bytes parts;
    akidb__hnsw_memory_parts(c->index, &parts);
    *vec = parts.exact + c->vecs.bytes;   /* (the file's vectors are in the page cache) */
    *compact = parts.compact;
    *graph = parts.graph;
    *docs = (uint64_t)c->node_cap * (sizeof *c->node_id + sizeof *c->node_time) +
            (c->node_ext ? (uint64_t)c->node_cap * (sizeof *c->node_ext + sizeof *c->node_meta)
                         : 0) +
            (c->id_map.slots ? (uint64_t)c->id_map.mask + 1 : 0) * sizeof *c->id_map.slots +
            (c->ext_map.slots ? (uint64_t)c->ext_map.mask + 1 : 0) * sizeof(map_slot) +
            c->str_bytes;
}

void akidb__coll_stat(akidb__collection *c, akidb_collection_stats *out)
{
    lock_shared(c);
    uint32_t nodes = akidb__hnsw_size(c->index);
    out->dim = c->cfg.dim;
    out->metric = c->cfg.metric;
    out->count = c->id_map.count;
    out->deleted = nodes - c->id_map.count;
    byte_counts(c, &out->vector_bytes, &out->compact_bytes, &out->graph_bytes,
                &out->document_bytes);
    out->bytes = out->vector_bytes + out->compact_bytes + out->graph_bytes +
                 out->document_bytes;
    out->log_bytes = c->wal ? akidb__wal_size(c->wal) : 0;
    out->log_truncated_bytes = c->wal ? akidb__wal_cut_bytes(c->wal) : 0;
    out->index_lag = c->lag;
    pthread_rwlock_unlock(&c->lock);
}

uint64_t akidb__coll_bytes(akidb__collection *c, uint64_t *count_out, uint64_t *deleted_out)
{
    uint64_t v, k, g, d;
    lock_shared(c);
    byte_counts(c, &v, &k, &g, &d);
    if (count_out)
        *count_out = c->id_map.count;
    if (deleted_out)
        *deleted_out = akidb__hnsw_size(c->index) - c->id_map.count;
    pthread_rwlock_unlock(&c->lock);
    return v + k + g + d;
}

/* ---- writes ---------------------------------------------------------- */

static int grow_nodes(akidb__collection *c, uint32_t need)
{
    if (c->node_cap >= need)
        return AKIDB_OK;
    uint32_t cap = c->node_cap ? c->node_cap : 16;
    while (cap < need)
        cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
    /* Each array is replaced only once its realloc succeeded, so a failure
     * midway leaves every array valid (some merely larger). */
    uint64_t *ids = akidb__realloc_array(c->alloc, c->node_id, cap, sizeof *ids);
    if (!ids)
        return AKIDB_NOMEM;
    c->node_id = ids;
    if (c->node_ext) {
        char **ext = akidb__realloc_array(c->alloc, c->node_ext, cap, sizeof *ext);
        if (!ext)
            return AKIDB_NOMEM;
        c->node_ext = ext;
        char **meta = akidb__realloc_array(c->alloc, c->node_meta, cap, sizeof *meta);
        if (!meta)
            return AKIDB_NOMEM;
        c->node_meta = meta;
    }
    int64_t *t = akidb__realloc_array(c->alloc, c->node_time, cap, sizeof *t);
    if (!t)
        return AKIDB_NOMEM;
    c->node_time = t;
    c->node_cap = cap;
    return AKIDB_OK;
}

/* A node's external id and metadata: NULL when it has none, or when no
 * document of the collection has had any (the arrays do not exist). */
static inline char *ext_of(const akidb__collection *c, uint32_t node)
{
    return c->node_ext ? c->node_ext[node] : NULL;
}

static inline char *meta_of(const akidb__collection *c, uint32_t node)
{
    return c->node_meta ? c->node_meta[node] : NULL;
}

/* Make node_ext and node_meta (every entry NULL), before the first
 * document that has an external id or metadata. */
static int need_strings(akidb__collection *c)
{
    if (c->node_ext)
        return AKIDB_OK;
    size_t cap = c->node_cap ? c->node_cap : 1;
    char **ext = akidb__calloc(c->alloc, cap, sizeof *ext);
    char **meta = akidb__calloc(c->alloc, cap, sizeof *meta);
    if (!ext || !meta) {
        akidb__free(c->alloc, ext);
        akidb__free(c->alloc, meta);
        return AKIDB_NOMEM;
    }
    c->node_ext = ext;
    c->node_meta = meta;
    return AKIDB_OK;
}

/* Check one vector; for cosine, write its normalised form to `out`. */
static int check_vector(const akidb__collection *c, const float *v, const char *what,
                        size_t row, float *out)
{
    double norm2 = 0;
    for (uint32_t j = 0; j < c->cfg.dim; j++) {
        if (!isfinite(v[j]))
            return akidb__err(AKIDB_INVALID, "collection %s: %s %zu: value %u is %s",
                              c->name, what, row, j, isnan(v[j]) ? "NaN" : "infinite");
        norm2 += (double)v[j] * v[j];
    }
    if (!isfinite(norm2))
        return akidb__err(AKIDB_INVALID, "collection %s: %s %zu: norm overflows float",
                          c->name, what, row);
    if (c->cfg.metric == AKIDB_METRIC_COSINE) {
        if (norm2 == 0)
            return akidb__err(AKIDB_INVALID, "collection %s: %s %zu: zero vector has no "
                              "direction for cosine", c->name, what, row);
        double inv = 1.0 / sqrt(norm2);
        for (uint32_t j = 0; j < c->cfg.dim; j++)
            out[j] = (float)(v[j] * inv);
    }
    return AKIDB_OK;
}

/* Ids are never reused, so a collection that has handed out the largest
 * one takes no new documents (2^63 ids: not reachable in practice, but a
 * restored snapshot may carry any next id below the limit). */
static int ids_exhausted(const akidb__collection *c)
{
    return akidb__err(AKIDB_QUOTA, "collection %s: every id up to 2^63-1 has been used; "
                      "no new document can get one", c->name);
}

static int check_external_id(const akidb__collection *c, const char *ext, size_t row)
{
    size_t len = strlen(ext);
    if (len == 0 || len > AKIDB_MAX_EXTERNAL_ID_LEN) {
        char q[96];
        return akidb__err(AKIDB_INVALID, "collection %s: row %zu: external id \"%s\" must be "
                          "1..%d bytes (is %zu)", c->name, row,
                          akidb__quote(q, sizeof q, ext, 40), AKIDB_MAX_EXTERNAL_ID_LEN, len);
    }
    return AKIDB_OK;
}

/* One batch on its way in: what validate decided and reserve copied. */
typedef struct batch {
    size_t n;
    const float *vectors;    /* n * dim, as they will be stored */
    float *owned_vectors;    /* normalised or decoded copy, if any */
    uint64_t *ids;
    int64_t *times;
    char **ext;              /* owned copies (NULL entries: none) */
    char **meta;
    uint64_t *hash;          /* of ext[i] */
} batch;

static void batch_free(const akidb_allocator *a, batch *b, int free_strings)
{
    if (free_strings) {
        for (size_t i = 0; i < b->n; i++) {
            if (b->ext) akidb__free(a, b->ext[i]);
            if (b->meta) akidb__free(a, b->meta[i]);
        }
    }
    akidb__free(a, b->owned_vectors);
    akidb__free(a, b->ids);
    akidb__free(a, b->times);
    akidb__free(a, b->ext);
    akidb__free(a, b->meta);
    akidb__free(a, b->hash);
    memset(b, 0, sizeof *b);
}

static int batch_alloc(const akidb__collection *c, batch *b, size_t n)
{
    const akidb_allocator *a = c->alloc;
    memset(b, 0, sizeof *b);
    b->n = n;
    b->ids = akidb__calloc(a, n, sizeof *b->ids);
    b->times = akidb__calloc(a, n, sizeof *b->times);
    b->ext = akidb__calloc(a, n, sizeof *b->ext);
    b->meta = akidb__calloc(a, n, sizeof *b->meta);
    b->hash = akidb__calloc(a, n, sizeof *b->hash);
    if (!b->ids || !b->times || !b->ext || !b->meta || !b->hash) {
        batch_free(a, b, 0);
        return akidb__err(AKIDB_NOMEM, "collection %s: out of memory for a batch of %zu",
                          c->name, n);
    }
    return AKIDB_OK;
}

/* Duplicate external ids inside one batch, found by sorting hashes. */
typedef struct hash_row { uint64_t hash; size_t row; } hash_row;

static int cmp_hash_row(const void *x, const void *y)
{
    const hash_row *a = x, *b = y;
    return (a->hash > b->hash) - (a->hash < b->hash);
}

/* Returns AKIDB_OK, AKIDB_NOMEM, or `dup_rc` (with a message) on a
 * duplicate, describing rows as `what`. */
static int check_batch_duplicates(const akidb__collection *c, const batch *b, int dup_rc,
                                  const char *what)
{
    size_t n_ext = 0;
    for (size_t i = 0; i < b->n; i++)
        n_ext += b->ext[i] != NULL;
    if (n_ext < 2)
        return AKIDB_OK;
    hash_row *hr = akidb__alloc_array(c->alloc, n_ext, sizeof *hr);
    if (!hr)
        return akidb__err(AKIDB_NOMEM, "collection %s: out of memory", c->name);
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->ext[i]) {
            hr[k].hash = b->hash[i];
            hr[k].row = i;
            k++;
        }
    qsort(hr, n_ext, sizeof *hr, cmp_hash_row);
    int rc = AKIDB_OK;
    for (size_t i = 0; i + 1 < n_ext && rc == AKIDB_OK; i++)
        for (size_t j = i + 1; j < n_ext && hr[j].hash == hr[i].hash; j++)
            if (strcmp(b->ext[hr[i].row], b->ext[hr[j].row]) == 0) {
                char q[96];
                size_t r1 = hr[i].row < hr[j].row ? hr[i].row : hr[j].row;
                size_t r2 = hr[i].row < hr[j].row ? hr[j].row : hr[i].row;
                rc = akidb__err(dup_rc, "collection %s: %s: external id \"%s\" appears twice "
                                "(rows %zu and %zu)", c->name, what,
                                akidb__quote(q, sizeof q, b->ext[r1], 40), r1, r2);
                break;
            }
    akidb__free(c->alloc, hr);
    return rc;
}

/* Step 1 (live writes): check every input, copy the strings, decide ids. */
static int validate(akidb__collection *c, int upsert, size_t n, const float *vectors,
                    const char *const *external_ids, const char *const *metadata_json,
                    int64_t now_us, batch *b)
{
    const akidb_allocator *a = c->alloc;
    const uint32_t dim = c->cfg.dim;

    if (n > (size_t)UINT32_MAX - 1 - akidb__hnsw_size(c->index))
        return akidb__err(AKIDB_QUOTA, "collection %s: batch of %zu would exceed %u documents",
                          c->name, n, UINT32_MAX - 1);
    if (upsert && !external_ids)
        return akidb__err(AKIDB_MISUSE, "collection %s: upsert needs external ids", c->name);
    int rc = batch_alloc(c, b, n);
    if (rc)
        return rc;
    b->vectors = vectors;
    if (c->cfg.metric == AKIDB_METRIC_COSINE) {
        b->owned_vectors = akidb__alloc_array(a, n, (size_t)dim * sizeof(float));
        if (!b->owned_vectors)
            goto nomem;
        b->vectors = b->owned_vectors;
    }
    for (size_t i = 0; i < n; i++) {
        float *norm_out = b->owned_vectors ? b->owned_vectors + i * dim : NULL;
        if ((rc = check_vector(c, vectors + i * dim, "row", i, norm_out)))
            goto fail;
    }

    uint64_t next = c->next_id;
    for (size_t i = 0; i < n; i++) {
        b->times[i] = now_us;
        const char *ext = external_ids ? external_ids[i] : NULL;
        if (!ext) {
            if (upsert) {
                rc = akidb__err(AKIDB_INVALID, "collection %s: upsert row %zu has no external "
                                "id", c->name, i);
                goto fail;
            }
            if (next > AKIDB__MAX_DOC_ID) {
                rc = ids_exhausted(c);
                goto fail;
            }
            b->ids[i] = next++;
            continue;
        }
        if ((rc = check_external_id(c, ext, i)))
            goto fail;
        b->hash[i] = hash_str(ext);
        int64_t slot = ext_find(c, ext, b->hash[i]);
        if (slot >= 0 && !upsert) {
            char q[96];
            rc = akidb__err(AKIDB_EXISTS, "collection %s: row %zu: external id \"%s\" already "
                            "exists (id %llu)", c->name, i, akidb__quote(q, sizeof q, ext, 40),
                            (unsigned long long)c->node_id[c->ext_map.slots[slot].node]);
            goto fail;
        }
        if (slot < 0 && next > AKIDB__MAX_DOC_ID) {
            rc = ids_exhausted(c);
            goto fail;
        }
        b->ids[i] = slot >= 0 ? c->node_id[c->ext_map.slots[slot].node] : next++;
        if (!(b->ext[i] = akidb__strdup(a, ext)))
            goto nomem;
    }
    if ((rc = check_batch_duplicates(c, b, AKIDB_INVALID, "batch")))
        goto fail;
    for (size_t i = 0; metadata_json && i < n; i++)
        if (metadata_json[i] && !(b->meta[i] = akidb__strdup(a, metadata_json[i])))
            goto nomem;
    return AKIDB_OK;

nomem:
    rc = akidb__err(AKIDB_NOMEM, "collection %s: out of memory for a batch of %zu", c->name, n);
fail:
    batch_free(a, b, 1);
    return rc;
}

/* How many of n strings are there (not NULL). */
static size_t count_present(char *const *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] != NULL;
    return k;
}

/* Step 2: capacity for everything commit will touch.  The external-id
 * map grows only for rows that have one: a collection without external
 * ids saves its 32 bytes per document. */
static int reserve(akidb__collection *c, const batch *b)
{
    uint32_t need = akidb__hnsw_size(c->index) + (uint32_t)b->n;
    size_t n_ext = count_present(b->ext, b->n);
    if (grow_nodes(c, need) || idmap_reserve(c, b->n) ||
        map_reserve(c->alloc, &c->ext_map, n_ext) ||
        ((n_ext || count_present(b->meta, b->n)) && need_strings(c)) ||
        akidb__hnsw_reserve(c->index, (uint32_t)b->n))
        return akidb__err(AKIDB_NOMEM, "collection %s: out of memory for a batch of %zu",
                          c->name, b->n);
    return AKIDB_OK;
}

/* Unlink a live node's document from the maps, free its strings and
 * tombstone it.  The id_map entry is the caller's business. */
static void retire_node(akidb__collection *c, uint32_t node)
{
    char *ext = ext_of(c, node), *meta = meta_of(c, node);
    c->str_bytes -= str_cost(ext) + str_cost(meta);
    if (ext) {
        int64_t es = ext_find(c, ext, hash_str(ext));
        if (es >= 0)
            map_remove_at(&c->ext_map, (uint32_t)es);
        akidb__free(c->alloc, ext);
        c->node_ext[node] = NULL;
    }
    if (meta) {
        akidb__free(c->alloc, meta);
        c->node_meta[node] = NULL;
    }
    akidb__hnsw_mark_deleted(c->index, node);
}

/* Step 4: apply in RAM.  Cannot fail: reserve() made room.  The batch's
 * strings now belong to the nodes. */
static void commit(akidb__collection *c, batch *b)
{
    const uint32_t dim = c->cfg.dim;
    for (size_t i = 0; i < b->n; i++) {
        uint32_t node = akidb__hnsw_append(c->index, b->vectors + i * dim);
        uint64_t id = b->ids[i];
        int64_t slot = id_find(c, id);
        c->node_id[node] = id;   /* the id map's key, before the map sees node */
        if (slot >= 0) {
            /* A replacement keeps its id: repoint the id, retire the old. */
            uint32_t old = c->id_map.slots[slot];
            c->id_map.slots[slot] = node;
            retire_node(c, old);
        } else {
            idmap_put(&c->id_map, id, node);
        }
        if (b->ext[i])
            map_put_slot(&c->ext_map, b->hash[i], node);
        if (c->node_ext) {   /* else reserve() saw no strings in the batch */
            c->node_ext[node] = b->ext[i];
            c->node_meta[node] = b->meta[i];
        }
        c->str_bytes += str_cost(b->ext[i]) + str_cost(b->meta[i]);
        c->node_time[node] = b->times[i];
        b->ext[i] = b->meta[i] = NULL;
        if (id >= c->next_id)
            c->next_id = id + 1;
    }
    akidb__metric_add((akidb__metrics *)&c->env->metrics, AKIDB__M_DOCS_WRITTEN, (int64_t)b->n);
    update_lag(c);
    count_clipped(c);
    if (c->ix && b->n)
        akidb__indexer_kick(c->ix);
}

static inline void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint32_t get_u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t get_u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Step 3a: the batch as a log payload (see the top of this file). */
static int encode_put(const akidb__collection *c, const batch *b, unsigned char **out,
                      size_t *len_out)
{
    const size_t vec_bytes = (size_t)c->cfg.dim * sizeof(float);
    size_t len = 8;
    for (size_t i = 0; i < b->n; i++) {
        size_t meta_len = b->meta[i] ? strlen(b->meta[i]) : 0;
        if (meta_len >= NO_LEN)
            return akidb__err(AKIDB_INVALID, "collection %s: row %zu: metadata of %zu bytes "
                              "is too large", c->name, i, meta_len);
        len += 24 + (b->ext[i] ? strlen(b->ext[i]) : 0) + meta_len + vec_bytes;
    }
    unsigned char *p = akidb__malloc(c->alloc, len);
    if (!p)
        return akidb__err(AKIDB_NOMEM, "collection %s: out of memory for a %zu-byte log "
                          "record", c->name, len);
    unsigned char *o = p;
    memset(o, 0, 4);
    o[0] = REC_PUT;
    put_u32(o + 4, (uint32_t)b->n);
    o += 8;
    for (size_t i = 0; i < b->n; i++) {
        size_t ext_len = b->ext[i] ? strlen(b->ext[i]) : 0;
        size_t meta_len = b->meta[i] ? strlen(b->meta[i]) : 0;
        put_u64(o, b->ids[i]);
        put_u64(o + 8, (uint64_t)b->times[i]);
        put_u32(o + 16, b->ext[i] ? (uint32_t)ext_len : NO_LEN);
        put_u32(o + 20, b->meta[i] ? (uint32_t)meta_len : NO_LEN);
        o += 24;
        memcpy(o, b->ext[i] ? b->ext[i] : "", ext_len);
        o += ext_len;
        memcpy(o, b->meta[i] ? b->meta[i] : "", meta_len);
        o += meta_len;
        memcpy(o, b->vectors + i * c->cfg.dim, vec_bytes);
        o += vec_bytes;
    }
    *out = p;
    *len_out = len;
    return AKIDB_OK;
}

/* Log a payload: append (+fsync in ALWAYS mode). */
static int log_payload(akidb__collection *c, const unsigned char *payload, size_t len,
                       uint64_t *seq_out)
{
    int rc = akidb__wal_append(c->wal, payload, len, seq_out);
    if (rc == AKIDB_OK)
        c->last_seq = *seq_out;
    return rc;
}

/* Under the write lock: has the log grown past the checkpoint threshold
 * (and past the point where a failed checkpoint is retried)? */
static uint64_t checkpoint_due(const akidb__collection *c)
{
    uint64_t limit = c->env->checkpoint_bytes;
    /* The default threshold grows with the collection: a checkpoint
     * rewrites all of it, so waiting for as many log bytes as the last
     * checkpoint file held keeps it to at most one byte written per byte
     * logged, however large the collection grows (write amplification
     * about 2 in all, instead of growing with the collection's size).
     * Replay is cheap (no graph work at open), so the longer log costs
     * little at the next open. */
    if (c->env->checkpoint_auto && c->ckpt_file_bytes > limit)
        limit = c->ckpt_file_bytes;
    if (c->ckpt_retry_at > limit)
        limit = c->ckpt_retry_at;
    return akidb__wal_size(c->wal) >= limit ? limit : 0;
}

/* After a write, with no lock held: checkpoint if it was due.  A failure
 * is logged, not returned: the write itself is safely logged. */
static void run_due_checkpoint(akidb__collection *c, uint64_t due)
{
    if (due && akidb__coll_checkpoint(c, due) != AKIDB_OK)
        akidb__log(c->env, AKIDB_LOG_WARN, "collection %s: checkpoint failed, will retry "
                   "later: %s", c->name, akidb__errmsg());
}

int akidb__coll_write(akidb__collection *c, int upsert, size_t n, const float *vectors,
                      const char *const *external_ids, const char *const *metadata_json,
                      uint64_t *ids_out, int64_t now_us)
{
    batch b;
    unsigned char *payload = NULL;
    size_t len = 0;
    uint64_t seq = 0, due = 0;
    lock_exclusive(c);
    int rc = validate(c, upsert, n, vectors, external_ids, metadata_json, now_us, &b);
    if (rc == AKIDB_OK) {
        if ((rc = reserve(c, &b)) == AKIDB_OK &&
            (rc = encode_put(c, &b, &payload, &len)) == AKIDB_OK &&
            (rc = log_payload(c, payload, len, &seq)) == AKIDB_OK) {
            if (ids_out)
                memcpy(ids_out, b.ids, n * sizeof *ids_out);
            commit(c, &b);
            due = checkpoint_due(c);
        }
        batch_free(c->alloc, &b, 1);
    }
    pthread_rwlock_unlock(&c->lock);
    akidb__free(c->alloc, payload);
    if (rc == AKIDB_OK)
        rc = akidb__wal_sync(c->wal, seq);
    if (rc == AKIDB_OK) {
        run_due_checkpoint(c, due);
        help_index(c);
    }
    return rc;
}

static void apply_delete(akidb__collection *c, int64_t slot)
{
    uint32_t node = c->id_map.slots[slot];
    idmap_remove_at(c, (uint32_t)slot);
    retire_node(c, node);
    akidb__metric_add((akidb__metrics *)&c->env->metrics, AKIDB__M_DOCS_DELETED, 1);
}

int akidb__coll_delete(akidb__collection *c, uint64_t id)
{
    uint64_t seq = 0, due = 0;
    lock_exclusive(c);
    int rc;
    int64_t slot = id_find(c, id);
    if (slot < 0) {
        rc = akidb__err(AKIDB_NOTFOUND, "collection %s: no document with id %llu",
                        c->name, (unsigned long long)id);
    } else {
        unsigned char payload[16] = { REC_DELETE, 0, 0, 0 };
        put_u32(payload + 4, 1);
        put_u64(payload + 8, id);
        if ((rc = log_payload(c, payload, sizeof payload, &seq)) == AKIDB_OK) {
            apply_delete(c, slot);
            due = checkpoint_due(c);
        }
    }
    pthread_rwlock_unlock(&c->lock);
    if (rc == AKIDB_OK)
        rc = akidb__wal_sync(c->wal, seq);
    if (rc == AKIDB_OK)
        run_due_checkpoint(c, due);
    return rc;
}

/* ---- recovery -------------------------------------------------------- */

static int bad_record(const akidb__collection *c, uint64_t seq, const char *why)
{
    return akidb__err(AKIDB_CORRUPT, "%s: record %llu of collection %s: %s",
                      akidb__wal_path(c->wal), (unsigned long long)seq, c->name, why);
}

static int replay_put(akidb__collection *c, uint64_t seq, const unsigned char *p, size_t len,
                      uint32_t n)
{
    const akidb_allocator *a = c->alloc;
    const uint32_t dim = c->cfg.dim;
    const size_t vec_bytes = (size_t)dim * sizeof(float);
    /* Each entry takes at least 24 + vec_bytes bytes: bound n first. */
    if (n == 0 || (uint64_t)n * (24 + vec_bytes) > len)
        return bad_record(c, seq, "entry count does not fit the record");
    batch b;
    int rc = batch_alloc(c, &b, n);
    if (rc)
        return rc;
    b.owned_vectors = akidb__alloc_array(a, n, vec_bytes);
    if (!b.owned_vectors) {
        batch_free(a, &b, 0);
        return akidb__err(AKIDB_NOMEM, "collection %s: out of memory replaying record %llu",
                          c->name, (unsigned long long)seq);
    }
    b.vectors = b.owned_vectors;
    size_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < 24) {
            rc = bad_record(c, seq, "entry header runs past the record");
            goto fail;
        }
        b.ids[i] = get_u64(p + off);
        b.times[i] = (int64_t)get_u64(p + off + 8);
        uint32_t ext_len = get_u32(p + off + 16), meta_len = get_u32(p + off + 20);
        off += 24;
        size_t el = ext_len == NO_LEN ? 0 : ext_len, ml = meta_len == NO_LEN ? 0 : meta_len;
        if (b.ids[i] == 0 || b.ids[i] > AKIDB__MAX_DOC_ID ||
            (ext_len != NO_LEN && (ext_len == 0 || ext_len > AKIDB_MAX_EXTERNAL_ID_LEN))) {
            rc = bad_record(c, seq, "entry has an id out of range or a bad external id length");
            goto fail;
        }
        if (el > len - off || ml > len - off - el || vec_bytes > len - off - el - ml) {
            rc = bad_record(c, seq, "entry runs past the record");
            goto fail;
        }
        if ((ext_len != NO_LEN && memchr(p + off, 0, el)) ||
            (meta_len != NO_LEN && memchr(p + off + el, 0, ml))) {
            rc = bad_record(c, seq, "external id or metadata contains a NUL byte");
            goto fail;
        }
        if (ext_len != NO_LEN) {
            if (!(b.ext[i] = akidb__malloc(a, el + 1)))
                goto nomem;
            memcpy(b.ext[i], p + off, el);
            b.ext[i][el] = '\0';
            b.hash[i] = hash_str(b.ext[i]);
        }
        if (meta_len != NO_LEN) {
            if (!(b.meta[i] = akidb__malloc(a, ml + 1)))
                goto nomem;
            memcpy(b.meta[i], p + off + el, ml);
            b.meta[i][ml] = '\0';
        }
        off += el + ml;
        float *v = b.owned_vectors + (size_t)i * dim;
        memcpy(v, p + off, vec_bytes);
        off += vec_bytes;
        for (uint32_t j = 0; j < dim; j++)
            if (!isfinite(v[j])) {
                rc = bad_record(c, seq, "vector value is not finite");
                goto fail;
            }
        if (b.ext[i]) {
            int64_t es = ext_find(c, b.ext[i], b.hash[i]);
            if (es >= 0 && c->node_id[c->ext_map.slots[es].node] != b.ids[i]) {
                rc = bad_record(c, seq, "external id belongs to another document");
                goto fail;
            }
        }
    }
    if (off != len) {
        rc = bad_record(c, seq, "trailing bytes after the last entry");
        goto fail;
    }
    if ((rc = check_batch_duplicates(c, &b, AKIDB_CORRUPT, "log record")) ||
        (rc = reserve(c, &b)))
        goto fail;
    commit(c, &b);
    batch_free(a, &b, 1);
    return AKIDB_OK;
nomem:
    rc = akidb__err(AKIDB_NOMEM, "collection %s: out of memory replaying record %llu",
                    c->name, (unsigned long long)seq);
fail:
    batch_free(a, &b, 1);
    return rc;
}

int akidb__coll_replay(void *ctx, uint64_t seq, const unsigned char *payload, size_t len)
{
    akidb__collection *c = ctx;
    if (len < 8 || payload[1] || payload[2] || payload[3])
        return bad_record(c, seq, "record header is malformed");
    uint32_t n = get_u32(payload + 4);
    int rc;
    if (payload[0] == REC_PUT) {
        rc = replay_put(c, seq, payload + 8, len - 8, n);
    } else if (payload[0] == REC_DELETE) {
        if (n == 0 || (uint64_t)n * 8 != len - 8)
            return bad_record(c, seq, "delete record has a bad length");
        for (uint32_t i = 0; i < n; i++) {
            uint64_t id = get_u64(payload + 8 + 8 * (size_t)i);
            int64_t slot = id_find(c, id);
            if (slot >= 0)
                apply_delete(c, slot);
            else
                akidb__log(c->env, AKIDB_LOG_WARN, "%s: record %llu deletes id %llu, which "
                           "does not exist; ignored", akidb__wal_path(c->wal),
                           (unsigned long long)seq, (unsigned long long)id);
        }
        rc = AKIDB_OK;
    } else {
        return bad_record(c, seq, "unknown record type");
    }
    if (rc == AKIDB_OK)
        c->last_seq = seq;
    return rc;
}

/* ---- checkpoints ----------------------------------------------------- */

int akidb__coll_intact(akidb__collection *c, char *why, size_t why_len)
{
    pthread_mutex_lock(&c->ckpt_lock);   /* no checkpoint renames meanwhile */
    int ok = !c->wal || akidb__wal_intact(c->wal, why, why_len);
    pthread_mutex_unlock(&c->ckpt_lock);
    return ok;
}

int akidb__coll_checkpoint(akidb__collection *c, uint64_t min_log_bytes)
{
    /* Linking is held meanwhile: an indexer queued for the write lock
     * behind the checkpoint's shared lock would hold every search back
     * (the lock prefers writers) for as long as the file takes to write. */
    akidb__coll_index_hold(c, 1);
    pthread_mutex_lock(&c->ckpt_lock);
    lock_shared(c);
    int rc = AKIDB_OK;
    uint64_t size = akidb__wal_size(c->wal);
    uint32_t linked = akidb__hnsw_linked(c->index);
    /* Re-checked under the locks: a concurrent writer may have done it.
     * A log or checkpoint deleted under the handle makes it due however
     * small the log: the state in RAM is then the only complete copy.  A
     * graph that grew since the last checkpoint is worth saving too:
     * otherwise the next open would link those nodes all over again. */
    int due = min_log_bytes ? size >= min_log_bytes
                            : size > AKIDB__WAL_HEADER_LEN || !c->has_checkpoint ||
                              !akidb__wal_intact(c->wal, NULL, 0) ||
                              linked != c->ckpt_linked;
    if (due) {
        rc = c->saver ? c->saver(c->env, c, c->ckpt_path, c->coll_id, c->last_seq)
                      : akidb__err(AKIDB_ERROR, "collection %s: no checkpoint writer", c->name);
        if (rc == AKIDB_OK) {
            struct stat st;
            c->has_checkpoint = 1;
            c->ckpt_linked = linked;
            c->ckpt_file_bytes = stat(c->ckpt_path, &st) == 0 ? (uint64_t)st.st_size : 0;
            akidb__metric_add((akidb__metrics *)&c->env->metrics, AKIDB__M_CHECKPOINT_BYTES,
                              (int64_t)c->ckpt_file_bytes);
            /* Crash here: the log still holds records the checkpoint has;
             * replay skips them by seq. */
            int err = akidb__fault(c->env, AKIDB__FAULT_CKPT_AFTER_RENAME);
            rc = err ? akidb__err(AKIDB_IOERR, "%s: cannot empty log: %s",
                                  akidb__wal_path(c->wal), strerror(err))
                     : akidb__wal_reset(c->wal, c->last_seq);
        }
        /* Written under ckpt_lock + the shared lock; read by writers under
         * the exclusive lock, so never concurrently. */
        c->ckpt_retry_at = rc ? size + c->env->checkpoint_bytes / 4 : 0;
        akidb__metric_add((akidb__metrics *)&c->env->metrics,
                          rc ? AKIDB__M_CHECKPOINT_ERRORS : AKIDB__M_CHECKPOINTS, 1);
    }
    pthread_rwlock_unlock(&c->lock);
    if (due && rc == AKIDB_OK)
        (void)refresh_vectors(c);   /* a failure is logged; the copies stay in RAM */
    pthread_mutex_unlock(&c->ckpt_lock);
    akidb__coll_index_hold(c, 0);
    return rc;
}

/* ---- reads ----------------------------------------------------------- */

int akidb__coll_lookup(akidb__collection *c, const char *external_id, uint64_t *id_out)
{
    lock_shared(c);
    int64_t slot = ext_find(c, external_id, hash_str(external_id));
    if (slot >= 0)
        *id_out = c->node_id[c->ext_map.slots[slot].node];
    pthread_rwlock_unlock(&c->lock);
    if (slot < 0) {
        char q[96];
        return akidb__err(AKIDB_NOTFOUND, "collection %s: no document with external id \"%s\"",
                          c->name, akidb__quote(q, sizeof q, external_id, 40));
    }
    return AKIDB_OK;
}

/* An akidb__out_malloc copy of s (NULL stays NULL); 0 when out of memory. */
static int out_copy(const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return 1;
    size_t len = strlen(s) + 1;
    if (!(*out = akidb__out_malloc(len)))
        return 0;
    memcpy(*out, s, len);
    return 1;
}

int akidb__coll_get(akidb__collection *c, uint64_t id, float *vector_out,
                    char **metadata_json_out, char **external_id_out, int64_t *inserted_at_out)
{
    int rc = AKIDB_OK;
    char *meta_copy = NULL, *ext_copy = NULL;
    lock_shared(c);
    int64_t slot = id_find(c, id);
    if (slot < 0) {
        rc = akidb__err(AKIDB_NOTFOUND, "collection %s: no document with id %llu",
                        c->name, (unsigned long long)id);
        goto done;
    }
    uint32_t node = c->id_map.slots[slot];
    if ((metadata_json_out && !out_copy(meta_of(c, node), &meta_copy)) ||
        (external_id_out && !out_copy(ext_of(c, node), &ext_copy))) {
        akidb__out_free(meta_copy);
        rc = akidb__err(AKIDB_NOMEM, "collection %s: out of memory copying document %llu",
                        c->name, (unsigned long long)id);
        goto done;
    }
    /* the exact vector, or (AKIDB_EXACT_NONE) the decoded compact one */
    if (vector_out && (rc = akidb__hnsw_vector_copy(c->index, node, vector_out, NULL)) != AKIDB_OK) {
        akidb__out_free(meta_copy);
        akidb__out_free(ext_copy);
        goto done;
    }
    if (metadata_json_out)
        *metadata_json_out = meta_copy;
    if (external_id_out)
        *external_id_out = ext_copy;
    if (inserted_at_out)
        *inserted_at_out = c->node_time[node];
done:
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

int akidb__coll_search(akidb__collection *c, const float *query, uint32_t k,
                       const akidb_search_params *params, akidb_hit *hits, uint32_t *n_hits)
{
    float normalised[AKIDB_MAX_DIM];
    akidb__hnsw_hit stack_hits[256];
    akidb__hnsw_hit *hh = stack_hits;

    int rc = check_vector(c, query, "query", 0, normalised);
    if (rc)
        return rc;
    if (c->cfg.metric == AKIDB_METRIC_COSINE)
        query = normalised;
    uint32_t ef = params && params->ef ? params->ef : c->cfg.ef_search;
    int exact = params ? params->exact : 0;

    lock_shared(c);
    uint32_t live = akidb__hnsw_live(c->index);
    uint32_t want = k < live ? k : live;
    if (want > sizeof stack_hits / sizeof stack_hits[0]) {
        hh = akidb__alloc_array(c->alloc, want, sizeof *hh);
        if (!hh) {
            pthread_rwlock_unlock(&c->lock);
            return akidb__err(AKIDB_NOMEM, "collection %s: out of memory for %u hits",
                              c->name, want);
        }
    }
    uint32_t n = 0;
    rc = akidb__hnsw_search(c->index, query, want, ef, exact, hh, &n);
    akidb__metric_add((akidb__metrics *)&c->env->metrics, AKIDB__M_SEARCHES, 1);
    if (rc == AKIDB_OK)
        for (uint32_t i = 0; i < n; i++) {
            hits[i].id = c->node_id[hh[i].node];
            hits[i].distance = hh[i].distance;
        }
    pthread_rwlock_unlock(&c->lock);
    if (hh != stack_hits)
        akidb__free(c->alloc, hh);
    if (rc)
        /* the index raises a message only for an exact source's error */
        return akidb__err(rc, "collection %s: search failed: %s", c->name,
                          rc == AKIDB_NOMEM ? akidb__errstr(rc) : akidb__errmsg());
    *n_hits = n;
    return AKIDB_OK;
}

/* ---- snapshot support ------------------------------------------------ */

void akidb__coll_rdlock(akidb__collection *c) { lock_shared(c); }
void akidb__coll_unlock(akidb__collection *c) { pthread_rwlock_unlock(&c->lock); }
uint32_t akidb__coll_nodes(const akidb__collection *c) { return akidb__hnsw_size(c->index); }
const akidb__hnsw *akidb__coll_index(const akidb__collection *c) { return c->index; }
uint64_t akidb__coll_next_id(const akidb__collection *c) { return c->next_id; }

int akidb__coll_node(const akidb__collection *c, uint32_t node, uint64_t *id,
                     const char **ext, const char **meta, int64_t *inserted_at)
{
    *inserted_at = c->node_time[node];
    if (akidb__hnsw_is_deleted(c->index, node))
        return 0;
    *id = c->node_id[node];
    *ext = ext_of(c, node);
    *meta = meta_of(c, node);
    return 1;
}

akidb__wal *akidb__coll_detach_wal(akidb__collection *c)
{
    akidb__wal *w = c->wal;
    c->wal = NULL;
    return w;
}

int akidb__coll_adopt(akidb__collection *c, akidb__hnsw *index, uint32_t n,
                      const uint64_t *ids, char **ext, char **meta, const int64_t *times,
                      uint64_t next_id, const char *what)
{
    const char *why = NULL;
    if (akidb__hnsw_size(index) != n)
        return akidb__err(AKIDB_CORRUPT, "%s: index holds %u nodes for %u documents", what,
                          akidb__hnsw_size(index), n);
    size_t n_ext = count_present(ext, n);
    if (grow_nodes(c, n ? n : 1) || idmap_reserve(c, n) ||
        map_reserve(c->alloc, &c->ext_map, n_ext) ||
        ((n_ext || count_present(meta, n)) && need_strings(c)))
        return akidb__err(AKIDB_NOMEM, "%s: out of memory", what);
    uint64_t max_id = 0;
    for (uint32_t i = 0; i < n && !why; i++) {
        if (akidb__hnsw_is_deleted(index, i)) {
            /* a tombstone keeps its place in the graph and nothing else */
            if (ids[i] != 0 || ext[i] || meta[i])
                why = "a deleted node still has a document";
            c->node_id[i] = 0;
            if (c->node_ext)
                c->node_ext[i] = NULL;
            continue;
        }
        if (ids[i] == 0 || ids[i] > AKIDB__MAX_DOC_ID || id_find(c, ids[i]) >= 0) {
            why = "an id is out of range (1..2^63-1) or appears twice";
            break;
        }
        /* The maps look strings up through node_ext, so fill it first. */
        c->node_id[i] = ids[i];
        if (c->node_ext)   /* else no document has strings */
            c->node_ext[i] = ext[i];
        idmap_put(&c->id_map, ids[i], i);
        if (ext[i]) {
            uint64_t h = hash_str(ext[i]);
            if (ext_find(c, ext[i], h) >= 0) {
                why = "an external id appears twice";
                break;
            }
            map_put_slot(&c->ext_map, h, i);
        }
        if (ids[i] > max_id)
            max_id = ids[i];
    }
    if (!why && (next_id <= max_id || next_id > AKIDB__MAX_DOC_ID + 1))
        why = "next id is not above every id, or past 2^63";
    if (why) {
        idmap_free(c->alloc, &c->id_map);
        map_free(c->alloc, &c->ext_map);
        if (c->node_ext)
            memset(c->node_ext, 0, (size_t)c->node_cap * sizeof *c->node_ext);
        return akidb__err(AKIDB_CORRUPT, "%s: %s", what, why);
    }
    for (uint32_t i = 0; i < n; i++) {
        if (c->node_meta)
            c->node_meta[i] = meta[i];
        c->node_time[i] = times[i];
        c->str_bytes += str_cost(ext[i]) + str_cost(meta[i]);
        ext[i] = meta[i] = NULL;   /* moved */
    }
    akidb__hnsw_free(c->index);
    c->index = index;
    c->next_id = next_id;
    c->ckpt_linked = akidb__hnsw_linked(index);
    /* a load encodes what was counted when it was first written */
    akidb__hnsw_quant_stats st;
    akidb__hnsw_quant_stats_get(index, &st);
    c->clip_seen = st.clipped_total;
    update_lag(c);
    if (c->ix && c->lag)
        akidb__indexer_kick(c->ix);
    return AKIDB_OK;
}

void akidb__coll_set_restored(akidb__collection *c, uint64_t last_seq)
{
    c->last_seq = last_seq;
    c->has_checkpoint = 0;
}
