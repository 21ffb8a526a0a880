/*
 * collection.c - an in-RAM collection: documents over an HNSW index.
 *
 * A document is (id, external id, vector, metadata, inserted_at).  The
 * index numbers its nodes densely; this layer maps them to documents:
 *
 *   node_id[node], node_ext[node], node_meta[node], node_time[node]
 *   id_map:  public id   -> node of the live document with that id
 *   ext_map: external id -> node of the live document with that external id
 *
 * Public ids are assigned from a counter and never reused.  An upsert that
 * replaces a document tombstones its old node and adds a new one under the
 * same id, so a document keeps its id for life.  Deleted nodes keep no
 * strings (they are freed at once); their vectors stay in the index, which
 * needs them to stay navigable.
 *
 * Writes are atomic per batch, in two phases: "prepare" validates every
 * input and performs every allocation the batch needs (map capacity, node
 * arrays, index reserve, string copies); "commit" then cannot fail.  So a
 * batch that fails with AKIDB_NOMEM or a bad input leaves no trace.
 *
 * The maps are open-addressing tables with linear probing and
 * backward-shift deletion (no tombstones, so probes stay short under churn).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "akidb_int.h"
#include "alloc.h"
#include "collection.h"
#include "hnsw.h"

typedef struct map_slot {
    uint64_t key;     /* the id, or the external id's hash */
    uint32_t node;
    uint32_t used;
} map_slot;

typedef struct map {
    map_slot *slots;
    uint32_t mask;    /* capacity - 1 (capacity a power of two), or 0 */
    uint32_t count;
} map;

struct akidb__collection {
    char name[AKIDB_MAX_NAME_LEN + 1];
    akidb_collection_config cfg;
    const akidb_allocator *alloc;
    pthread_rwlock_t lock;
    akidb__hnsw *index;

    uint64_t *node_id;
    char **node_ext;
    char **node_meta;
    int64_t *node_time;
    uint32_t node_cap;

    map id_map;
    map ext_map;
    uint64_t next_id;
};

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
    return mix64(h);
}

static void map_free(const akidb_allocator *a, map *m)
{
    akidb__free(a, m->slots);
    memset(m, 0, sizeof *m);
}

static void map_put_slot(map *m, uint64_t key, uint32_t node)
{
    uint32_t i = (uint32_t)mix64(key) & m->mask;
    while (m->slots[i].used)
        i = (i + 1) & m->mask;
    m->slots[i].key = key;
    m->slots[i].node = node;
    m->slots[i].used = 1;
    m->count++;
}

/* Make room for `more` entries at a load factor of at most 3/4. */
static int map_reserve(const akidb_allocator *a, map *m, size_t more)
{
    size_t need = (size_t)m->count + more;
    size_t cap = m->slots ? (size_t)m->mask + 1 : 0;
    if (need * 4 <= cap * 3)
        return AKIDB_OK;
    size_t new_cap = cap ? cap : 16;
    while (need * 4 > new_cap * 3) {
        if (new_cap > (size_t)UINT32_MAX / 2)
            return AKIDB_NOMEM;
        new_cap *= 2;
    }
    map_slot *slots = akidb__calloc(a, new_cap, sizeof *slots);
    if (!slots)
        return AKIDB_NOMEM;
    map old = *m;
    m->slots = slots;
    m->mask = (uint32_t)(new_cap - 1);
    m->count = 0;
    for (size_t i = 0; old.slots && i <= old.mask; i++)
        if (old.slots[i].used)
            map_put_slot(m, old.slots[i].key, old.slots[i].node);
    akidb__free(a, old.slots);
    return AKIDB_OK;
}

static void map_remove_at(map *m, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        if (!m->slots[j].used)
            break;
        uint32_t home = (uint32_t)mix64(m->slots[j].key) & m->mask;
        /* Slot j may move back to i only if its home is not in (i, j]. */
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        m->slots[i] = m->slots[j];
        i = j;
    }
    m->slots[i].used = 0;
    m->count--;
}

static int64_t id_find(const map *m, uint64_t id)
{
    if (!m->slots)
        return -1;
    for (uint32_t i = (uint32_t)mix64(id) & m->mask; m->slots[i].used; i = (i + 1) & m->mask)
        if (m->slots[i].key == id)
            return i;
    return -1;
}

static int64_t ext_find(const akidb__collection *c, const char *ext, uint64_t h)
{
    const map *m = &c->ext_map;
    if (!m->slots)
        return -1;
    for (uint32_t i = (uint32_t)mix64(h) & m->mask; m->slots[i].used; i = (i + 1) & m->mask)
        if (m->slots[i].key == h && strcmp(c->node_ext[m->slots[i].node], ext) == 0)
            return i;
    return -1;
}

/* ---- lifecycle ------------------------------------------------------- */

int akidb__coll_new(const char *name, const akidb_collection_config *cfg,
                    const akidb_allocator *alloc, akidb__collection **out)
{
    *out = NULL;
    akidb__collection *c = akidb__calloc(alloc, 1, sizeof *c);
    if (!c)
        return akidb__err(AKIDB_NOMEM, "collection %s: out of memory", name);
    strncpy(c->name, name, AKIDB_MAX_NAME_LEN);
    c->cfg = *cfg;
    c->cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    c->alloc = alloc;
    c->next_id = 1;

    akidb__hnsw_config hc;
    memset(&hc, 0, sizeof hc);
    hc.dim = cfg->dim;
    hc.space = cfg->metric == AKIDB_METRIC_L2 ? AKIDB__SPACE_L2 : AKIDB__SPACE_IP;
    hc.negate_dot = cfg->metric == AKIDB_METRIC_DOT;
    hc.m = cfg->hnsw_m;
    hc.ef_construction = cfg->ef_construction;
    hc.seed = hash_str(name);
    int rc = akidb__hnsw_new(&hc, alloc, NULL, &c->index);
    if (rc) {
        akidb__free(alloc, c);
        return akidb__err(rc, "collection %s: cannot create index", name);
    }
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Searches are frequent and short; without this, a steady stream of
     * them would starve writers forever. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    rc = pthread_rwlock_init(&c->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        akidb__hnsw_free(c->index);
        akidb__free(alloc, c);
        return akidb__err(AKIDB_ERROR, "collection %s: cannot create lock", name);
    }
    *out = c;
    return AKIDB_OK;
}

void akidb__coll_free(akidb__collection *c)
{
    if (!c)
        return;
    const akidb_allocator *a = c->alloc;
    uint32_t n = akidb__hnsw_size(c->index);
    for (uint32_t i = 0; i < n; i++) {
        akidb__free(a, c->node_ext[i]);
        akidb__free(a, c->node_meta[i]);
    }
    akidb__free(a, c->node_id);
    akidb__free(a, c->node_ext);
    akidb__free(a, c->node_meta);
    akidb__free(a, c->node_time);
    map_free(a, &c->id_map);
    map_free(a, &c->ext_map);
    akidb__hnsw_free(c->index);
    pthread_rwlock_destroy(&c->lock);
    akidb__free(a, c);
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
    pthread_rwlock_rdlock(&c->lock);
    uint64_t n = c->id_map.count;
    pthread_rwlock_unlock(&c->lock);
    return n;
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
    char **ext = akidb__realloc_array(c->alloc, c->node_ext, cap, sizeof *ext);
    if (!ext)
        return AKIDB_NOMEM;
    c->node_ext = ext;
    char **meta = akidb__realloc_array(c->alloc, c->node_meta, cap, sizeof *meta);
    if (!meta)
        return AKIDB_NOMEM;
    c->node_meta = meta;
    int64_t *t = akidb__realloc_array(c->alloc, c->node_time, cap, sizeof *t);
    if (!t)
        return AKIDB_NOMEM;
    c->node_time = t;
    c->node_cap = cap;
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

/* Strings copied during prepare, owned by the batch until commit. */
typedef struct batch {
    char **ext;
    char **meta;
    uint64_t *hash;
    int64_t *replaces;   /* upsert: node of the replaced document, or -1 */
    float *normalised;   /* cosine: n * dim */
    size_t n;
} batch;

static void batch_free(const akidb_allocator *a, batch *b, int free_strings)
{
    if (free_strings) {
        for (size_t i = 0; i < b->n; i++) {
            if (b->ext) akidb__free(a, b->ext[i]);
            if (b->meta) akidb__free(a, b->meta[i]);
        }
    }
    akidb__free(a, b->ext);
    akidb__free(a, b->meta);
    akidb__free(a, b->hash);
    akidb__free(a, b->replaces);
    akidb__free(a, b->normalised);
}

/* Duplicate external ids inside one batch, found by sorting hashes. */
typedef struct hash_row { uint64_t hash; size_t row; } hash_row;

static int cmp_hash_row(const void *x, const void *y)
{
    const hash_row *a = x, *b = y;
    return (a->hash > b->hash) - (a->hash < b->hash);
}

static int check_batch_duplicates(const akidb__collection *c, const batch *b,
                                  const char *const *ext)
{
    size_t n_ext = 0;
    for (size_t i = 0; i < b->n; i++)
        n_ext += ext[i] != NULL;
    if (n_ext < 2)
        return AKIDB_OK;
    hash_row *hr = akidb__alloc_array(c->alloc, n_ext, sizeof *hr);
    if (!hr)
        return akidb__err(AKIDB_NOMEM, "collection %s: out of memory", c->name);
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        if (ext[i]) {
            hr[k].hash = b->hash[i];
            hr[k].row = i;
            k++;
        }
    qsort(hr, n_ext, sizeof *hr, cmp_hash_row);
    int rc = AKIDB_OK;
    for (size_t i = 0; i + 1 < n_ext && rc == AKIDB_OK; i++)
        for (size_t j = i + 1; j < n_ext && hr[j].hash == hr[i].hash; j++)
            if (strcmp(ext[hr[i].row], ext[hr[j].row]) == 0) {
                char q[96];
                size_t r1 = hr[i].row < hr[j].row ? hr[i].row : hr[j].row;
                size_t r2 = hr[i].row < hr[j].row ? hr[j].row : hr[i].row;
                rc = akidb__err(AKIDB_INVALID, "collection %s: external id \"%s\" appears "
                                "twice in the batch (rows %zu and %zu)", c->name,
                                akidb__quote(q, sizeof q, ext[r1], 40), r1, r2);
                break;
            }
    akidb__free(c->alloc, hr);
    return rc;
}

static int prepare(akidb__collection *c, int upsert, size_t n, const float *vectors,
                   const char *const *external_ids, const char *const *metadata_json,
                   batch *b)
{
    const akidb_allocator *a = c->alloc;
    const uint32_t dim = c->cfg.dim;
    memset(b, 0, sizeof *b);

    if (n > (size_t)UINT32_MAX - 1 - akidb__hnsw_size(c->index))
        return akidb__err(AKIDB_QUOTA, "collection %s: batch of %zu would exceed %u documents",
                          c->name, n, UINT32_MAX - 1);

    if (c->cfg.metric == AKIDB_METRIC_COSINE) {
        b->normalised = akidb__alloc_array(a, n, (size_t)dim * sizeof(float));
        if (!b->normalised)
            goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        float *norm_out = b->normalised ? b->normalised + i * dim : NULL;
        int rc = check_vector(c, vectors + i * dim, "row", i, norm_out);
        if (rc) {
            batch_free(a, b, 0);
            return rc;
        }
    }

    if (external_ids) {
        b->ext = akidb__calloc(a, n, sizeof *b->ext);
        b->hash = akidb__calloc(a, n, sizeof *b->hash);
        b->replaces = akidb__alloc_array(a, n, sizeof *b->replaces);
        if (!b->ext || !b->hash || !b->replaces)
            goto nomem;
        for (size_t i = 0; i < n; i++) {
            b->replaces[i] = -1;
            if (!external_ids[i]) {
                if (upsert) {
                    batch_free(a, b, 0);
                    return akidb__err(AKIDB_INVALID, "collection %s: upsert row %zu has no "
                                      "external id", c->name, i);
                }
                continue;
            }
            int rc = check_external_id(c, external_ids[i], i);
            if (rc) {
                batch_free(a, b, 0);
                return rc;
            }
            b->hash[i] = hash_str(external_ids[i]);
            int64_t slot = ext_find(c, external_ids[i], b->hash[i]);
            if (slot >= 0) {
                if (!upsert) {
                    char q[96];
                    batch_free(a, b, 0);
                    return akidb__err(AKIDB_EXISTS, "collection %s: row %zu: external id "
                                      "\"%s\" already exists (id %llu)", c->name, i,
                                      akidb__quote(q, sizeof q, external_ids[i], 40),
                                      (unsigned long long)c->node_id[c->ext_map.slots[slot].node]);
                }
                /* A node, not a slot: map_reserve() below may rehash. */
                b->replaces[i] = c->ext_map.slots[slot].node;
            }
        }
        b->n = n;   /* from here on batch_free frees copied strings */
        int rc = check_batch_duplicates(c, b, external_ids);
        if (rc) {
            batch_free(a, b, 1);
            return rc;
        }
        for (size_t i = 0; i < n; i++)
            if (external_ids[i] && !(b->ext[i] = akidb__strdup(a, external_ids[i])))
                goto nomem;
    } else if (upsert) {
        return akidb__err(AKIDB_MISUSE, "collection %s: upsert needs external ids", c->name);
    }

    if (metadata_json) {
        b->meta = akidb__calloc(a, n, sizeof *b->meta);
        if (!b->meta)
            goto nomem;
        b->n = n;
        for (size_t i = 0; i < n; i++)
            if (metadata_json[i] && !(b->meta[i] = akidb__strdup(a, metadata_json[i])))
                goto nomem;
    }

    /* Capacity for everything commit will touch. */
    uint32_t need = akidb__hnsw_size(c->index) + (uint32_t)n;
    if (grow_nodes(c, need) || map_reserve(a, &c->id_map, n) ||
        (external_ids && map_reserve(a, &c->ext_map, n)) ||
        akidb__hnsw_reserve(c->index, (uint32_t)n))
        goto nomem;
    return AKIDB_OK;

nomem:
    b->n = n;
    batch_free(a, b, 1);
    return akidb__err(AKIDB_NOMEM, "collection %s: out of memory for a batch of %zu", c->name, n);
}

static void commit(akidb__collection *c, size_t n, const float *vectors, batch *b,
                   uint64_t *ids_out, int64_t now_us)
{
    const uint32_t dim = c->cfg.dim;
    for (size_t i = 0; i < n; i++) {
        const float *v = b->normalised ? b->normalised + i * dim : vectors + i * dim;
        uint32_t node = akidb__hnsw_add(c->index, v);
        uint64_t id;
        int64_t replaced = b->replaces ? b->replaces[i] : -1;
        if (replaced >= 0) {
            /* Same external id, same public id: repoint both maps. */
            uint32_t old = (uint32_t)replaced;
            id = c->node_id[old];
            c->ext_map.slots[ext_find(c, b->ext[i], b->hash[i])].node = node;
            c->id_map.slots[id_find(&c->id_map, id)].node = node;
            akidb__hnsw_mark_deleted(c->index, old);
            akidb__free(c->alloc, c->node_ext[old]);
            akidb__free(c->alloc, c->node_meta[old]);
            c->node_ext[old] = NULL;
            c->node_meta[old] = NULL;
        } else {
            id = c->next_id++;
            map_put_slot(&c->id_map, id, node);
            if (b->ext && b->ext[i])
                map_put_slot(&c->ext_map, b->hash[i], node);
        }
        c->node_id[node] = id;
        c->node_ext[node] = b->ext ? b->ext[i] : NULL;
        c->node_meta[node] = b->meta ? b->meta[i] : NULL;
        c->node_time[node] = now_us;
        if (ids_out)
            ids_out[i] = id;
    }
}

int akidb__coll_write(akidb__collection *c, int upsert, size_t n, const float *vectors,
                      const char *const *external_ids, const char *const *metadata_json,
                      uint64_t *ids_out, int64_t now_us)
{
    batch b;
    pthread_rwlock_wrlock(&c->lock);
    int rc = prepare(c, upsert, n, vectors, external_ids, metadata_json, &b);
    if (rc == AKIDB_OK) {
        commit(c, n, vectors, &b, ids_out, now_us);
        batch_free(c->alloc, &b, 0);   /* the strings now belong to nodes */
    }
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

int akidb__coll_delete(akidb__collection *c, uint64_t id)
{
    pthread_rwlock_wrlock(&c->lock);
    int64_t slot = id_find(&c->id_map, id);
    if (slot < 0) {
        pthread_rwlock_unlock(&c->lock);
        return akidb__err(AKIDB_NOTFOUND, "collection %s: no document with id %llu",
                          c->name, (unsigned long long)id);
    }
    uint32_t node = c->id_map.slots[slot].node;
    map_remove_at(&c->id_map, (uint32_t)slot);
    if (c->node_ext[node]) {
        int64_t es = ext_find(c, c->node_ext[node], hash_str(c->node_ext[node]));
        if (es >= 0)
            map_remove_at(&c->ext_map, (uint32_t)es);
        akidb__free(c->alloc, c->node_ext[node]);
        c->node_ext[node] = NULL;
    }
    akidb__free(c->alloc, c->node_meta[node]);
    c->node_meta[node] = NULL;
    akidb__hnsw_mark_deleted(c->index, node);
    pthread_rwlock_unlock(&c->lock);
    return AKIDB_OK;
}

/* ---- reads ----------------------------------------------------------- */

int akidb__coll_lookup(akidb__collection *c, const char *external_id, uint64_t *id_out)
{
    pthread_rwlock_rdlock(&c->lock);
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

int akidb__coll_get(akidb__collection *c, uint64_t id, float *vector_out,
                    char **metadata_json_out)
{
    int rc = AKIDB_OK;
    char *meta_copy = NULL;
    pthread_rwlock_rdlock(&c->lock);
    int64_t slot = id_find(&c->id_map, id);
    if (slot < 0) {
        rc = akidb__err(AKIDB_NOTFOUND, "collection %s: no document with id %llu",
                        c->name, (unsigned long long)id);
        goto done;
    }
    uint32_t node = c->id_map.slots[slot].node;
    if (metadata_json_out && c->node_meta[node]) {
        size_t len = strlen(c->node_meta[node]) + 1;
        meta_copy = akidb_malloc(len);
        if (!meta_copy) {
            rc = akidb__err(AKIDB_NOMEM, "collection %s: out of memory copying metadata",
                            c->name);
            goto done;
        }
        memcpy(meta_copy, c->node_meta[node], len);
    }
    if (vector_out)
        memcpy(vector_out, akidb__hnsw_vector(c->index, node), (size_t)c->cfg.dim * sizeof(float));
    if (metadata_json_out)
        *metadata_json_out = meta_copy;
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

    pthread_rwlock_rdlock(&c->lock);
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
    if (rc == AKIDB_OK)
        for (uint32_t i = 0; i < n; i++) {
            hits[i].id = c->node_id[hh[i].node];
            hits[i].distance = hh[i].distance;
        }
    pthread_rwlock_unlock(&c->lock);
    if (hh != stack_hits)
        akidb__free(c->alloc, hh);
    if (rc)
        return akidb__err(rc, "collection %s: search failed: %s", c->name, akidb_errstr(rc));
    *n_hits = n;
    return AKIDB_OK;
}
