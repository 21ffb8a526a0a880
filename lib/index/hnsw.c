/*
 * hnsw.c - Hierarchical Navigable Small World graph (Malkov & Yashunin,
 * Algorithms 1-5, with the neighbour-selection heuristic of Algorithm 4).
 *
 * Storage.  Nodes are dense numbers 0..n-1 in insertion order.  Node data
 * lives in fixed-size chunks so the index grows without ever copying
 * vectors (a realloc of one big array would briefly need twice the memory,
 * which an edge device may not have).  A chunk holds `chunk_nodes` nodes:
 *
 *   [ vectors: chunk_nodes x dim_pad floats, 64-byte aligned ]
 *   [ level-0 links: chunk_nodes x (1 + 2M) u32: count, then links ]
 *
 * dim_pad rounds dim up to a multiple of 16 floats; the padding is zero, so
 * the kernels run without a residual loop and the distances are unchanged.
 *
 * With the default allocator, chunks are carved from 2 MiB-aligned
 * regions of their own (mmap, MADV_HUGEPAGE), not from the heap: freeing
 * an index unmaps them, so a collection that leaves RAM (tiering) gives
 * its memory back to the system at once instead of leaving it in a heap
 * glibc keeps, and a loaded index takes one page fault per 2 MiB instead
 * of one per 4 KiB.  A custom allocator sees every chunk as before; so do
 * sanitizer builds, whose checks only cover the allocator's memory.
 * Upper-level links (few nodes have them) are one small array per node:
 * level x (1 + M) u32.
 *
 * Writes: akidb__hnsw_reserve() draws the levels of the next nodes and
 * allocates all they need (chunks, upper links, the insert scratch), so
 * appending never fails and a batch enters whole or not at all.
 *
 * Appending and linking are two steps.  akidb__hnsw_append() stores a
 * node's vector (its level was drawn by reserve); the node is then in the
 * "tail": counted, searchable and deletable, but not in the graph.
 * akidb__hnsw_link_next() links the oldest tail node into the graph
 * (Algorithm 1).  Nodes are linked strictly in node order, tombstoned or
 * not, with the level drawn when they were reserved, and linking never
 * looks at tombstones, so the finished graph depends only on the sequence
 * of appended vectors, never on when the linking ran.  Invariant: nodes
 * [0, n_linked) form the graph, nodes [n_linked, n) have no links at all
 * and nothing links to them.  A search walks the graph and scans the tail
 * exactly (the same kernels), merging both into one result.
 *
 * Search scratch: a pool of contexts, one per concurrent search, each with
 * a visited array of u16 tags (a search bumps the tag instead of clearing
 * the array), a candidate min-heap and a result max-heap of (dist, node).
 * The pool is the only state searches write, under a mutex held just to
 * take or return a context.
 *
 * Deleted nodes stay in the graph (they keep it navigable) but never enter
 * a query's result set.  If a graph walk finds fewer than k live nodes
 * while more exist (heavy deletion, a disconnected region), the search
 * falls back to an exact scan, so callers always get min(k, live) hits.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/alloc.h"
#include "index/distance.h"
#include "index/hnsw.h"

#define MAX_LEVEL 15
#define CHUNK_TARGET_BYTES (128u * 1024u)
#define REGION_ALIGN ((size_t)2 << 20)   /* a transparent huge page */

#if !AKIDB__SANITIZED && defined(MADV_HUGEPAGE)
#define USE_REGIONS 1
#else
#define USE_REGIONS 0
#endif

typedef struct heap_item {
    float dist;
    uint32_t node;
} heap_item;

typedef struct search_ctx {
    struct search_ctx *next;     /* pool free list */
    uint16_t *visited;
    uint32_t visited_cap;
    uint16_t tag;
    heap_item *cand;             /* min-heap: closest on top */
    uint32_t n_cand, cand_cap;
    heap_item *res;              /* max-heap: farthest on top */
    uint32_t n_res, res_cap;
    heap_item *scratch;          /* neighbour selection, sorted lists */
    uint32_t scratch_cap;
    uint32_t *gather;            /* unvisited neighbours of one node */
    float *query;                /* the query, padded and aligned */
} search_ctx;

struct akidb__hnsw {
    akidb__hnsw_config cfg;
    const akidb_allocator *alloc;
    akidb__dist_fn dist;
    int ip;                      /* inner-product space */
    float ip_bias;               /* distance = ip_bias - dot */
    uint32_t dim, dim_pad;
    uint32_t m, m0;              /* max links: upper levels, level 0 */
    double level_mult;
    uint64_t rng;                /* level draws */
    uint64_t dup_rng;            /* duplicate sampling in select_neighbors */

    uint32_t n, n_deleted;
    uint32_t n_linked;           /* nodes [0, n_linked) are in the graph; the rest is the tail */
    uint32_t build_linked;       /* build_set_linked's value until build_end (UINT32_MAX: all) */
    uint32_t n_prepared;         /* nodes [n, n_prepared) have levels drawn */
    uint32_t node_cap;           /* capacity of the per-node arrays */
    uint8_t *levels;
    uint8_t *deleted;
    uint32_t **upper;
    uint64_t level_sum;          /* sum of levels[0..n_prepared): sizes the upper links */

    uint32_t chunk_shift, chunk_mask, chunk_nodes;
    size_t chunk_vec_bytes, chunk_bytes;
    unsigned char **chunks;
    uint32_t n_chunks, chunks_cap;
    /* Chunks from regions of their own (default allocator, see the top):
     * region r holds chunks [r * per_region, (r + 1) * per_region). */
    int regions_on;
    size_t chunk_stride, region_bytes;
    uint32_t per_region;
    unsigned char **regions;
    uint32_t n_regions, regions_cap;

    int max_level;               /* -1 when empty */
    uint32_t entry;

    search_ctx *insert_ctx;
    pthread_mutex_t pool_lock;
    search_ctx *pool;
    uint32_t n_ctx;
};

/* ---- node access ------------------------------------------------------ */

static inline float *vec_at(const akidb__hnsw *h, uint32_t node)
{
    unsigned char *c = h->chunks[node >> h->chunk_shift];
    return (float *)c + (size_t)(node & h->chunk_mask) * h->dim_pad;
}

static inline uint32_t *links_at(const akidb__hnsw *h, uint32_t node, int level)
{
    if (level == 0) {
        unsigned char *c = h->chunks[node >> h->chunk_shift] + h->chunk_vec_bytes;
        return (uint32_t *)c + (size_t)(node & h->chunk_mask) * (1 + h->m0);
    }
    return h->upper[node] + (size_t)(level - 1) * (1 + h->m);
}

static inline float dist_vv(const akidb__hnsw *h, const float *a, const float *b)
{
    float d = h->dist(a, b, h->dim_pad);
    return h->ip ? h->ip_bias - d : d;
}

static inline void prefetch_vec(const akidb__hnsw *h, uint32_t node)
{
    const char *p = (const char *)vec_at(h, node);
    /* The first lines; the hardware prefetcher follows the stream. */
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
    __builtin_prefetch(p + 128);
    __builtin_prefetch(p + 192);
}

/* ---- heaps of (dist, node) ------------------------------------------- */

static void minheap_push(heap_item *a, uint32_t *n, heap_item it)
{
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (a[p].dist <= it.dist)
            break;
        a[i] = a[p];
        i = p;
    }
    a[i] = it;
}

static heap_item minheap_pop(heap_item *a, uint32_t *n)
{
    heap_item top = a[0], last = a[--(*n)];
    uint32_t i = 0, cnt = *n;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= cnt)
            break;
        if (c + 1 < cnt && a[c + 1].dist < a[c].dist)
            c++;
        if (last.dist <= a[c].dist)
            break;
        a[i] = a[c];
        i = c;
    }
    if (cnt)
        a[i] = last;
    return top;
}

static void maxheap_push(heap_item *a, uint32_t *n, heap_item it)
{
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (a[p].dist >= it.dist)
            break;
        a[i] = a[p];
        i = p;
    }
    a[i] = it;
}

static heap_item maxheap_pop(heap_item *a, uint32_t *n)
{
    heap_item top = a[0], last = a[--(*n)];
    uint32_t i = 0, cnt = *n;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= cnt)
            break;
        if (c + 1 < cnt && a[c + 1].dist > a[c].dist)
            c++;
        if (last.dist >= a[c].dist)
            break;
        a[i] = a[c];
        i = c;
    }
    if (cnt)
        a[i] = last;
    return top;
}

static int cmp_heap_item(const void *x, const void *y)
{
    const heap_item *a = x, *b = y;
    if (a->dist < b->dist) return -1;
    if (a->dist > b->dist) return 1;
    return (a->node > b->node) - (a->node < b->node);
}

/* ---- search contexts ------------------------------------------------- */

static void ctx_free(const akidb__hnsw *h, search_ctx *c)
{
    if (!c)
        return;
    akidb__free(h->alloc, c->visited);
    akidb__free(h->alloc, c->cand);
    akidb__free(h->alloc, c->res);
    akidb__free(h->alloc, c->scratch);
    akidb__free(h->alloc, c->gather);
    akidb__aligned_free(h->alloc, c->query);
    akidb__free(h->alloc, c);
}

static int grow_items(const akidb__hnsw *h, heap_item **a, uint32_t *cap, uint32_t need)
{
    if (*cap >= need)
        return AKIDB_OK;
    heap_item *p = akidb__realloc_array(h->alloc, *a, need, sizeof *p);
    if (!p)
        return AKIDB_NOMEM;
    *a = p;
    *cap = need;
    return AKIDB_OK;
}

/* Make `c` big enough for a search over `n_nodes` nodes with list size ef. */
static int ctx_fit(const akidb__hnsw *h, search_ctx *c, uint32_t n_nodes, uint32_t ef)
{
    if (c->visited_cap < n_nodes) {
        /* Grow with headroom so a growing index does not realloc per batch. */
        uint32_t cap = n_nodes + n_nodes / 2 + 64;
        if (cap < n_nodes)
            cap = n_nodes;
        uint16_t *v = akidb__realloc_array(h->alloc, c->visited, cap, sizeof *v);
        if (!v)
            return AKIDB_NOMEM;
        memset(v, 0, (size_t)cap * sizeof *v);
        c->visited = v;
        c->visited_cap = cap;
        c->tag = 0;
    }
    /* Candidates: ef live entries plus one node's worth of pushes before the
     * heap is pruned (see push_candidate). */
    uint32_t need_cand = 2 * ef + h->m0 + 1;
    uint32_t need_scratch = (ef > h->m0 + 1 ? ef : h->m0 + 1) + 1;
    if (grow_items(h, &c->cand, &c->cand_cap, need_cand) ||
        grow_items(h, &c->res, &c->res_cap, ef + 1) ||
        grow_items(h, &c->scratch, &c->scratch_cap, need_scratch))
        return AKIDB_NOMEM;
    return AKIDB_OK;
}

static int ctx_new(const akidb__hnsw *h, search_ctx **out)
{
    search_ctx *c = akidb__calloc(h->alloc, 1, sizeof *c);
    if (!c)
        return AKIDB_NOMEM;
    c->gather = akidb__alloc_array(h->alloc, h->m0 + 1, sizeof *c->gather);
    c->query = akidb__aligned_alloc(h->alloc, (size_t)h->dim_pad * sizeof(float), 64);
    if (!c->gather || !c->query) {
        ctx_free(h, c);
        return AKIDB_NOMEM;
    }
    memset(c->query, 0, (size_t)h->dim_pad * sizeof(float));
    *out = c;
    return AKIDB_OK;
}

static int ctx_acquire(akidb__hnsw *h, uint32_t ef, search_ctx **out)
{
    pthread_mutex_lock(&h->pool_lock);
    search_ctx *c = h->pool;
    if (c)
        h->pool = c->next;
    pthread_mutex_unlock(&h->pool_lock);
    if (!c) {
        int rc = ctx_new(h, &c);
        if (rc)
            return rc;
        pthread_mutex_lock(&h->pool_lock);
        h->n_ctx++;
        pthread_mutex_unlock(&h->pool_lock);
    }
    int rc = ctx_fit(h, c, h->n, ef);
    if (rc) {
        pthread_mutex_lock(&h->pool_lock);
        c->next = h->pool;
        h->pool = c;
        pthread_mutex_unlock(&h->pool_lock);
        return rc;
    }
    *out = c;
    return AKIDB_OK;
}

static void ctx_release(akidb__hnsw *h, search_ctx *c)
{
    pthread_mutex_lock(&h->pool_lock);
    c->next = h->pool;
    h->pool = c;
    pthread_mutex_unlock(&h->pool_lock);
}

static inline uint16_t ctx_next_tag(search_ctx *c)
{
    if (++c->tag == 0) {
        memset(c->visited, 0, (size_t)c->visited_cap * sizeof *c->visited);
        c->tag = 1;
    }
    return c->tag;
}

/* ---- create / destroy ------------------------------------------------ */

int akidb__hnsw_new(const akidb__hnsw_config *cfg, const akidb_allocator *alloc,
                    const akidb__kernels *kernels, akidb__hnsw **out)
{
    *out = NULL;
    if (cfg->dim < 1 || cfg->dim > AKIDB_MAX_DIM || cfg->m < 2 || cfg->m > 128 ||
        cfg->ef_construction < 1 ||
        (cfg->space != AKIDB__SPACE_L2 && cfg->space != AKIDB__SPACE_IP))
        return AKIDB_INVALID;
    if (!alloc)
        alloc = &akidb__default_allocator;
    if (!kernels)
        kernels = akidb__kernels_best();

    akidb__hnsw *h = akidb__calloc(alloc, 1, sizeof *h);
    if (!h)
        return AKIDB_NOMEM;
    h->cfg = *cfg;
    h->alloc = alloc;
    h->ip = cfg->space == AKIDB__SPACE_IP;
    h->dist = h->ip ? kernels->dot : kernels->l2sq;
    h->ip_bias = cfg->negate_dot ? 0.0f : 1.0f;
    h->dim = cfg->dim;
    h->dim_pad = (cfg->dim + AKIDB__DIM_PAD - 1) / AKIDB__DIM_PAD * AKIDB__DIM_PAD;
    h->m = cfg->m;
    h->m0 = 2 * cfg->m;
    h->level_mult = 1.0 / log((double)cfg->m);
    h->rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ull;
    h->dup_rng = h->rng ^ 0xD1B54A32D192ED03ull;
    h->max_level = -1;
    h->build_linked = UINT32_MAX;

    size_t node_bytes = (size_t)h->dim_pad * sizeof(float) + (1 + (size_t)h->m0) * sizeof(uint32_t);
    uint32_t shift = 4;
    while (shift < 10 && ((size_t)2 << shift) * node_bytes <= CHUNK_TARGET_BYTES)
        shift++;
    h->chunk_shift = shift;
    h->chunk_nodes = 1u << shift;
    h->chunk_mask = h->chunk_nodes - 1;
    h->chunk_vec_bytes = (size_t)h->chunk_nodes * h->dim_pad * sizeof(float);
    h->chunk_bytes = h->chunk_vec_bytes + (size_t)h->chunk_nodes * (1 + h->m0) * sizeof(uint32_t);
    h->regions_on = USE_REGIONS && alloc->malloc_fn == akidb__default_allocator.malloc_fn;
    h->chunk_stride = (h->chunk_bytes + 63) & ~(size_t)63;
    h->per_region = (uint32_t)(REGION_ALIGN / h->chunk_stride);
    if (h->per_region == 0)
        h->per_region = 1;
    h->region_bytes = ((size_t)h->per_region * h->chunk_stride + REGION_ALIGN - 1) &
                      ~(REGION_ALIGN - 1);

    if (pthread_mutex_init(&h->pool_lock, NULL) != 0) {
        akidb__free(alloc, h);
        return AKIDB_ERROR;
    }
    *out = h;
    return AKIDB_OK;
}

void akidb__hnsw_free(akidb__hnsw *h)
{
    if (!h)
        return;
    const akidb_allocator *a = h->alloc;
    for (uint32_t i = 0; i < h->n_prepared; i++)
        akidb__free(a, h->upper[i]);
    if (h->regions_on) {
        for (uint32_t i = 0; i < h->n_regions; i++)
            munmap(h->regions[i], h->region_bytes);
        akidb__free(a, h->regions);
    } else {
        for (uint32_t i = 0; i < h->n_chunks; i++)
            akidb__aligned_free(a, h->chunks[i]);
    }
    akidb__free(a, h->chunks);
    akidb__free(a, h->levels);
    akidb__free(a, h->deleted);
    akidb__free(a, h->upper);
    ctx_free(h, h->insert_ctx);
    while (h->pool) {
        search_ctx *c = h->pool;
        h->pool = c->next;
        ctx_free(h, c);
    }
    pthread_mutex_destroy(&h->pool_lock);
    akidb__free(a, h);
}

/* ---- reserve / add --------------------------------------------------- */

/* The next chunk from the regions, mapping a new 2 MiB-aligned region
 * when the last one is full; NULL when out of memory. */
static unsigned char *region_chunk(akidb__hnsw *h)
{
    uint32_t r = h->n_chunks / h->per_region, k = h->n_chunks % h->per_region;
    if (r == h->n_regions) {
        if (h->n_regions == h->regions_cap) {
            uint32_t cap = h->regions_cap ? h->regions_cap * 2 : 4;
            unsigned char **a = akidb__realloc_array(h->alloc, h->regions, cap, sizeof *a);
            if (!a)
                return NULL;
            h->regions = a;
            h->regions_cap = cap;
        }
        /* Over-map by one alignment unit, then unmap the ends, so the
         * region starts on a huge-page boundary. */
        size_t len = h->region_bytes + REGION_ALIGN;
        unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        uintptr_t start = ((uintptr_t)p + REGION_ALIGN - 1) & ~(uintptr_t)(REGION_ALIGN - 1);
        size_t head = start - (uintptr_t)p, tail = len - head - h->region_bytes;
        if (head)
            munmap(p, head);
        if (tail)
            munmap((unsigned char *)start + h->region_bytes, tail);
        madvise((void *)start, h->region_bytes, MADV_HUGEPAGE);
        h->regions[h->n_regions++] = (unsigned char *)start;
    }
    return h->regions[r] + (size_t)k * h->chunk_stride;
}


/* splitmix64: tiny and fast; good enough for levels and sampling. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int draw_level(akidb__hnsw *h)
{
    uint64_t z = next_random(&h->rng);
    double u = ((double)(z >> 11) + 1.0) * (1.0 / 9007199254740992.0); /* (0, 1] */
    double l = -log(u) * h->level_mult;
    return l >= MAX_LEVEL ? MAX_LEVEL : (int)l;
}

static int grow_node_arrays(akidb__hnsw *h, uint32_t need)
{
    if (h->node_cap >= need)
        return AKIDB_OK;
    uint32_t cap = h->node_cap ? h->node_cap : 16;
    while (cap < need)
        cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
    uint8_t *lv = akidb__realloc(h->alloc, h->levels, cap);
    if (!lv)
        return AKIDB_NOMEM;
    h->levels = lv;
    uint8_t *del = akidb__realloc(h->alloc, h->deleted, cap);
    if (!del)
        return AKIDB_NOMEM;
    h->deleted = del;
    uint32_t **up = akidb__realloc_array(h->alloc, h->upper, cap, sizeof *up);
    if (!up)
        return AKIDB_NOMEM;
    h->upper = up;
    h->node_cap = cap;
    return AKIDB_OK;
}

int akidb__hnsw_reserve(akidb__hnsw *h, uint32_t n_more)
{
    if (n_more > UINT32_MAX - 1 - h->n)
        return AKIDB_NOMEM;
    uint32_t need = h->n + n_more;
    int rc = grow_node_arrays(h, need);
    if (rc)
        return rc;

    uint32_t chunks_needed = (need + h->chunk_mask) >> h->chunk_shift;
    if (chunks_needed > h->chunks_cap) {
        uint32_t cap = h->chunks_cap ? h->chunks_cap * 2 : 8;
        if (cap < chunks_needed)
            cap = chunks_needed;
        unsigned char **c = akidb__realloc_array(h->alloc, h->chunks, cap, sizeof *c);
        if (!c)
            return AKIDB_NOMEM;
        h->chunks = c;
        h->chunks_cap = cap;
    }
    while (h->n_chunks < chunks_needed) {
        unsigned char *c = h->regions_on ? region_chunk(h)
                                         : akidb__aligned_alloc(h->alloc, h->chunk_bytes, 64);
        if (!c)
            return AKIDB_NOMEM;
        /* Link counts must start at zero (a fresh mapping already is);
         * vectors are written on add. */
        if (!h->regions_on)
            memset(c + h->chunk_vec_bytes, 0, h->chunk_bytes - h->chunk_vec_bytes);
        h->chunks[h->n_chunks++] = c;
    }

    while (h->n_prepared < need) {
        uint32_t node = h->n_prepared;
        int level = draw_level(h);
        uint32_t *up = NULL;
        if (level > 0) {
            up = akidb__calloc(h->alloc, (size_t)level * (1 + h->m), sizeof *up);
            if (!up)
                return AKIDB_NOMEM;
        }
        h->levels[node] = (uint8_t)level;
        h->level_sum += (uint64_t)level;
        h->upper[node] = up;
        h->deleted[node] = 0;
        h->n_prepared++;
    }

    if (!h->insert_ctx && (rc = ctx_new(h, &h->insert_ctx)) != AKIDB_OK)
        return rc;
    return ctx_fit(h, h->insert_ctx, need, h->cfg.ef_construction);
}

/* Keep the candidate heap bounded: entries no closer than the current worst
 * result can never be expanded (the walk stops before reaching them), so
 * they are dropped when the heap fills.  Returns 0 if there is no room. */
static int push_candidate(search_ctx *c, heap_item it, float bound)
{
    if (c->n_cand == c->cand_cap) {
        uint32_t j = 0;
        for (uint32_t i = 0; i < c->n_cand; i++)
            if (c->cand[i].dist < bound)
                c->cand[j++] = c->cand[i];
        uint32_t cnt = 0;
        for (uint32_t i = 0; i < j; i++)
            minheap_push(c->cand, &cnt, c->cand[i]);
        c->n_cand = cnt;
        if (c->n_cand == c->cand_cap)
            return 0;
    }
    minheap_push(c->cand, &c->n_cand, it);
    return 1;
}

/*
 * Best-first walk of one level from entry point `ep` (Algorithm 2).  Leaves
 * up to ef results in c->res (max-heap).  With skip_deleted, deleted nodes
 * are walked through but not collected, and the walk goes on until ef live
 * results are found or the reachable graph is exhausted.
 */
static int search_layer(const akidb__hnsw *h, search_ctx *c, const float *q, uint32_t ep,
                        float ep_dist, uint32_t ef, int level, int skip_deleted)
{
    uint16_t tag = ctx_next_tag(c);
    uint16_t *visited = c->visited;
    c->n_cand = 0;
    c->n_res = 0;
    heap_item first = { ep_dist, ep };
    minheap_push(c->cand, &c->n_cand, first);
    if (!skip_deleted || !h->deleted[ep])
        maxheap_push(c->res, &c->n_res, first);
    visited[ep] = tag;
    float bound = c->n_res ? ep_dist : INFINITY;

    while (c->n_cand) {
        heap_item cur = minheap_pop(c->cand, &c->n_cand);
        if (cur.dist > bound && c->n_res == ef)
            break;
        const uint32_t *ll = links_at(h, cur.node, level);
        uint32_t cnt = ll[0], n_new = 0;
        for (uint32_t i = 1; i <= cnt; i++) {
            uint32_t nb = ll[i];
            if (visited[nb] != tag) {
                visited[nb] = tag;
                c->gather[n_new++] = nb;
            }
        }
        if (n_new)
            prefetch_vec(h, c->gather[0]);
        for (uint32_t i = 0; i < n_new; i++) {
            uint32_t nb = c->gather[i];
            if (i + 1 < n_new)
                prefetch_vec(h, c->gather[i + 1]);
            float d = dist_vv(h, q, vec_at(h, nb));
            if (c->n_res < ef || d < bound) {
                heap_item it = { d, nb };
                /* Prune only against a full result set: until then every
                 * candidate may still matter. */
                if (!push_candidate(c, it, c->n_res == ef ? bound : INFINITY)) {
                    /* Only a query walking through many deleted nodes gets
                     * here (construction fits the bound: see ctx_fit). */
                    if (grow_items(h, &c->cand, &c->cand_cap, c->cand_cap * 2))
                        return AKIDB_NOMEM;
                    minheap_push(c->cand, &c->n_cand, it);
                }
                if (!skip_deleted || !h->deleted[nb]) {
                    maxheap_push(c->res, &c->n_res, it);
                    if (c->n_res > ef)
                        maxheap_pop(c->res, &c->n_res);
                    bound = c->res[0].dist;
                }
            }
        }
    }
    return AKIDB_OK;
}

/* Greedy descent with ef = 1 through one upper level. */
static uint32_t greedy_step(const akidb__hnsw *h, const float *q, uint32_t cur,
                            float *cur_dist, int level)
{
    int changed = 1;
    while (changed) {
        changed = 0;
        const uint32_t *ll = links_at(h, cur, level);
        uint32_t cnt = ll[0];
        for (uint32_t i = 1; i <= cnt; i++) {
            float d = dist_vv(h, q, vec_at(h, ll[i]));
            if (d < *cur_dist) {
                *cur_dist = d;
                cur = ll[i];
                changed = 1;
            }
        }
    }
    return cur;
}

/*
 * Neighbour-selection heuristic (Algorithm 4): walk candidates closest
 * first and keep one only if it is closer to the base than to every
 * neighbour kept so far; this keeps links pointing in diverse directions.
 *
 * One change from the paper (and hnswlib): a candidate identical to a kept
 * neighbour (distance 0) is set aside, and such duplicates only fill the
 * slots left at the end, chosen at random.  Without this, a node among
 * many identical vectors keeps a full list of duplicates and drops the
 * back-link of any new, distinct node, which then becomes unreachable; and
 * a fixed choice among duplicates would always drop the newest one, so
 * duplicates inserted late would have no in-links at all.  With no exact
 * duplicates in the data the selection is the paper's.
 *
 * `cand` is sorted ascending and is overwritten with the kept ones.
 */
static uint32_t select_neighbors(akidb__hnsw *h, heap_item *cand, uint32_t n_cand,
                                 uint32_t max_keep)
{
    if (n_cand <= max_keep)
        return n_cand;
    heap_item dups[256];          /* a uniform sample (reservoir) of duplicates */
    uint32_t kept = 0, n_dups = 0, seen_dups = 0;
    for (uint32_t i = 0; i < n_cand && kept < max_keep; i++) {
        const float *v = vec_at(h, cand[i].node);
        int good = 1, dup = 0;
        for (uint32_t j = 0; j < kept; j++) {
            float d = dist_vv(h, v, vec_at(h, cand[j].node));
            /* Identical: 0 in L2, 1 - 1 (up to rounding) for cosine. */
            if ((!h->ip && d <= 0.0f) || (h->ip && !h->cfg.negate_dot && d <= 1e-6f)) {
                dup = 1;
                break;
            }
            if (d < cand[i].dist) {
                good = 0;
                break;
            }
        }
        if (dup) {
            seen_dups++;
            if (n_dups < 256) {
                dups[n_dups++] = cand[i];
            } else {
                uint64_t r = next_random(&h->dup_rng) % seen_dups;
                if (r < 256)
                    dups[r] = cand[i];
            }
        } else if (good) {
            cand[kept++] = cand[i];
        }
    }
    /* Fill the free slots with a random choice of the duplicates. */
    for (uint32_t i = 0; i < n_dups && kept < max_keep; i++) {
        uint32_t j = i + (uint32_t)(next_random(&h->dup_rng) % (n_dups - i));
        heap_item t = dups[i];
        dups[i] = dups[j];
        dups[j] = t;
        cand[kept++] = dups[i];
    }
    return kept;
}

/* Drain the result max-heap into scratch, closest first. */
static uint32_t drain_sorted(search_ctx *c, heap_item *out)
{
    uint32_t n = c->n_res;
    for (uint32_t i = n; i > 0; i--)
        out[i - 1] = maxheap_pop(c->res, &c->n_res);
    return n;
}

/* Add `node` to the link list of `nb` at `level`, pruning with the
 * heuristic when the list is full. */
static void link_back(akidb__hnsw *h, search_ctx *c, uint32_t nb, uint32_t node, int level)
{
    uint32_t max_links = level == 0 ? h->m0 : h->m;
    uint32_t *ll = links_at(h, nb, level);
    uint32_t cnt = ll[0];
    for (uint32_t i = 1; i <= cnt; i++)
        if (ll[i] == node)
            return;
    if (cnt < max_links) {
        ll[1 + cnt] = node;
        ll[0] = cnt + 1;
        return;
    }
    const float *base = vec_at(h, nb);
    heap_item *s = c->scratch;
    for (uint32_t i = 0; i < cnt; i++) {
        s[i].node = ll[1 + i];
        s[i].dist = dist_vv(h, base, vec_at(h, ll[1 + i]));
    }
    s[cnt].node = node;
    s[cnt].dist = dist_vv(h, base, vec_at(h, node));
    qsort(s, cnt + 1, sizeof *s, cmp_heap_item);
    uint32_t kept = select_neighbors(h, s, cnt + 1, max_links);
    for (uint32_t i = 0; i < kept; i++)
        ll[1 + i] = s[i].node;
    ll[0] = kept;
}

uint32_t akidb__hnsw_append(akidb__hnsw *h, const float *vec)
{
    uint32_t node = h->n;
    float *v = vec_at(h, node);
    memcpy(v, vec, (size_t)h->dim * sizeof(float));
    memset(v + h->dim, 0, (size_t)(h->dim_pad - h->dim) * sizeof(float));
    h->n++;
    return node;
}

void akidb__hnsw_link_next(akidb__hnsw *h)
{
    if (h->n_linked >= h->n)
        return;
    uint32_t node = h->n_linked++;
    const float *v = vec_at(h, node);
    int level = h->levels[node];

    if (h->max_level < 0) {
        h->entry = node;
        h->max_level = level;
        return;
    }

    search_ctx *c = h->insert_ctx;
    uint32_t cur = h->entry;
    float cur_dist = dist_vv(h, v, vec_at(h, cur));
    for (int l = h->max_level; l > level; l--)
        cur = greedy_step(h, v, cur, &cur_dist, l);

    for (int l = level < h->max_level ? level : h->max_level; l >= 0; l--) {
        /* Construction walks deleted nodes too: they are still graph nodes,
         * and reserve() sized the heaps so this cannot fail. */
        (void)search_layer(h, c, v, cur, cur_dist, h->cfg.ef_construction, l, 0);
        /* The scratch area is reused by link_back, so keep the selected
         * neighbours in this node's own link list first. */
        heap_item *s = c->scratch;
        uint32_t n_found = drain_sorted(c, s);
        uint32_t kept = select_neighbors(h, s, n_found, h->m);
        uint32_t *ll = links_at(h, node, l);
        for (uint32_t i = 0; i < kept; i++)
            ll[1 + i] = s[i].node;
        ll[0] = kept;
        cur = s[0].node;
        cur_dist = s[0].dist;
        for (uint32_t i = 0; i < kept; i++)
            link_back(h, c, ll[1 + i], node, l);
    }
    if (level > h->max_level) {
        h->max_level = level;
        h->entry = node;
    }
}

uint32_t akidb__hnsw_add(akidb__hnsw *h, const float *vec)
{
    uint32_t node = akidb__hnsw_append(h, vec);
    while (h->n_linked < h->n)
        akidb__hnsw_link_next(h);
    return node;
}

uint32_t akidb__hnsw_linked(const akidb__hnsw *h) { return h->n_linked; }

void akidb__hnsw_mark_deleted(akidb__hnsw *h, uint32_t node)
{
    if (node < h->n && !h->deleted[node]) {
        h->deleted[node] = 1;
        h->n_deleted++;
    }
}

int akidb__hnsw_is_deleted(const akidb__hnsw *h, uint32_t node)
{
    return node >= h->n || h->deleted[node];
}

uint32_t akidb__hnsw_size(const akidb__hnsw *h) { return h->n; }
uint32_t akidb__hnsw_live(const akidb__hnsw *h) { return h->n - h->n_deleted; }

const float *akidb__hnsw_vector(const akidb__hnsw *h, uint32_t node)
{
    return node < h->n ? vec_at(h, node) : NULL;
}

float akidb__hnsw_distance(const akidb__hnsw *h, const float *query, uint32_t node)
{
    /* The query may be unpadded: compare on the real dimension. */
    float d = h->dist(query, vec_at(h, node), h->dim);
    return h->ip ? h->ip_bias - d : d;
}

/* ---- search ---------------------------------------------------------- */

/* Prefetch a whole stored vector.  The exact scan streams through memory,
 * but hardware prefetchers stop at 4 KiB page boundaries, which a 3 KiB
 * vector crosses every other row; fetching whole vectors a few rows ahead
 * keeps enough misses in flight to run near the memory bandwidth. */
static inline void prefetch_whole(const akidb__hnsw *h, uint32_t node)
{
    const char *p = (const char *)vec_at(h, node);
    size_t bytes = (size_t)h->dim_pad * sizeof(float);
    for (size_t off = 0; off < bytes; off += 64)
        __builtin_prefetch(p + off);
}

/* Scan nodes [from, n) exactly, merging into the k best already in the
 * result heap (a graph walk's, trimmed to k; or nothing). */
static void exact_scan(akidb__hnsw *h, search_ctx *c, const float *q, uint32_t k, uint32_t from)
{
    while (c->n_res > k)
        maxheap_pop(c->res, &c->n_res);
    float bound = c->n_res == k ? c->res[0].dist : INFINITY;
    /* About 8 KiB ahead: far enough to hide latency, near enough to stay
     * in L1/L2 until used. */
    size_t vec_bytes = (size_t)h->dim_pad * sizeof(float);
    uint32_t ahead = (uint32_t)(8192 / vec_bytes) + 1;
    for (uint32_t i = from; i < h->n; i++) {
        if (i + ahead < h->n)
            prefetch_whole(h, i + ahead);
        if (h->deleted[i])
            continue;
        float d = dist_vv(h, q, vec_at(h, i));
        if (c->n_res < k || d < bound) {
            heap_item it = { d, i };
            maxheap_push(c->res, &c->n_res, it);
            if (c->n_res > k)
                maxheap_pop(c->res, &c->n_res);
            if (c->n_res == k)
                bound = c->res[0].dist;
        }
    }
}

/*
 * A graph search walks [0, n_linked) and then scans the tail exactly,
 * merging it into the walk's results: the k best of (the walk's ef best
 * U the tail) are the k best of (the walk's k best U the tail), so the
 * tail costs one distance per node and a search never misses a node
 * because it is not linked yet.  If the merged set still holds fewer
 * than k live nodes while more exist (heavy deletion), the whole index
 * is scanned instead.
 */
int akidb__hnsw_search(akidb__hnsw *h, const float *query, uint32_t k, uint32_t ef,
                       int exact, akidb__hnsw_hit *hits, uint32_t *n_hits)
{
    *n_hits = 0;
    uint32_t live = akidb__hnsw_live(h);
    if (k == 0 || live == 0)
        return AKIDB_OK;
    if (k > live)
        k = live;
    if (ef < k)
        ef = k;

    search_ctx *c;
    int rc = ctx_acquire(h, exact ? k : ef, &c);
    if (rc)
        return rc;
    memcpy(c->query, query, (size_t)h->dim * sizeof(float));
    const float *q = c->query;

    c->n_res = 0;
    if (!exact) {
        if (h->max_level >= 0) {
            uint32_t cur = h->entry;
            float cur_dist = dist_vv(h, q, vec_at(h, cur));
            for (int l = h->max_level; l > 0; l--)
                cur = greedy_step(h, q, cur, &cur_dist, l);
            rc = search_layer(h, c, q, cur, cur_dist, ef, 0, 1);
            if (rc) {
                ctx_release(h, c);
                return rc;
            }
        }
        if (h->n_linked < h->n)
            exact_scan(h, c, q, k, h->n_linked);
        if (c->n_res < k) {
            exact = 1;
            c->n_res = 0;
        }
    }
    if (exact)
        exact_scan(h, c, q, k, 0);

    /* The heap holds up to ef results; keep the k closest, sorted. */
    while (c->n_res > k)
        maxheap_pop(c->res, &c->n_res);
    uint32_t n = c->n_res;
    for (uint32_t i = n; i > 0; i--) {
        heap_item it = maxheap_pop(c->res, &c->n_res);
        hits[i - 1].node = it.node;
        hits[i - 1].distance = it.dist;
    }
    *n_hits = n;
    ctx_release(h, c);
    return AKIDB_OK;
}

size_t akidb__hnsw_memory(const akidb__hnsw *h)
{
    /* O(1): the tiering policy sums this over every collection. */
    size_t bytes = sizeof *h + (size_t)h->n_chunks * (h->chunk_bytes + 64);
    bytes += (size_t)h->node_cap * (2 + sizeof(uint32_t *));
    bytes += (size_t)h->level_sum * (1 + h->m) * sizeof(uint32_t);
    return bytes;
}

/* ---- the saved graph: accessors and rebuild from parts ---------------- */

int akidb__hnsw_level(const akidb__hnsw *h, uint32_t node)
{
    return h->levels[node];
}

const uint32_t *akidb__hnsw_links(const akidb__hnsw *h, uint32_t node, int level,
                                  uint32_t *count_out)
{
    const uint32_t *ll = links_at(h, node, level);
    *count_out = ll[0];
    return ll + 1;
}

uint32_t akidb__hnsw_entry(const akidb__hnsw *h) { return h->entry; }

void akidb__hnsw_get_rng(const akidb__hnsw *h, akidb__hnsw_rng *out)
{
    out->rng = h->rng;
    out->dup_rng = h->dup_rng;
}

/*
 * A build grows the index batch by batch, reserving room for each batch as
 * it comes, so memory follows the nodes actually supplied and never a count
 * a damaged file merely claims.  Link targets may point forward, into a
 * batch not seen yet, so their range and whether they have the level they
 * are linked at are checked in build_end, before anything follows a link.
 * Meanwhile h->n counts the nodes filled and max_level stays -1; the index
 * is private to the builder until build_end succeeds.
 */
int akidb__hnsw_build_begin(const akidb__hnsw_config *cfg, const akidb_allocator *alloc,
                            akidb__hnsw **out)
{
    return akidb__hnsw_new(cfg, alloc, NULL, out);
}

int akidb__hnsw_build_nodes(akidb__hnsw *h, uint32_t count, const float *vectors,
                            const int32_t *levels, const int32_t *deleted,
                            const int32_t *links, const uint64_t *link_off, const char **why)
{
    *why = "";
    uint32_t first = h->n;
    if (count > UINT32_MAX - 2 - first) {
        *why = "more than 2^32 - 2 nodes";
        return AKIDB_CORRUPT;
    }
    int rc = akidb__hnsw_reserve(h, count);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t node = first + i;
        int32_t level = levels[i];
        if (level < 0 || level > MAX_LEVEL) {
            *why = "level out of range";
            return AKIDB_CORRUPT;
        }
        if (deleted && (deleted[i] < 0 || deleted[i] > 1)) {
            *why = "tombstone flag is neither 0 nor 1";
            return AKIDB_CORRUPT;
        }
        /* reserve() drew a random level and sized the upper links for
         * it; the saved level replaces it. */
        if (h->levels[node] != level) {
            akidb__free(h->alloc, h->upper[node]);
            h->upper[node] = NULL;
            h->level_sum -= h->levels[node];
            h->levels[node] = 0;
            if (level > 0 && !(h->upper[node] = akidb__calloc(h->alloc, (size_t)level * (1 + h->m),
                                                              sizeof(uint32_t))))
                return AKIDB_NOMEM;
            h->levels[node] = (uint8_t)level;
            h->level_sum += (uint64_t)level;
        }
        h->deleted[node] = deleted ? (uint8_t)deleted[i] : 0;
        float *v = vec_at(h, node);
        memcpy(v, vectors + (size_t)i * h->dim, (size_t)h->dim * sizeof(float));
        memset(v + h->dim, 0, (size_t)(h->dim_pad - h->dim) * sizeof(float));
        for (uint32_t j = 0; j < h->dim; j++)
            if (!isfinite(v[j])) {
                *why = "vector value is not finite";
                return AKIDB_CORRUPT;
            }
        uint64_t p = link_off[i], end = link_off[i + 1];
        if (end < p) {
            *why = "link offsets go backwards";
            return AKIDB_CORRUPT;
        }
        for (int l = 0; l <= level; l++) {
            uint32_t max_links = l == 0 ? h->m0 : h->m;
            if (p >= end || links[p] < 0 || (uint32_t)links[p] > max_links ||
                (uint64_t)links[p] > end - p - 1) {
                *why = "link list length out of range";
                return AKIDB_CORRUPT;
            }
            uint32_t cnt = (uint32_t)links[p++];
            uint32_t *ll = links_at(h, node, l);
            for (uint32_t k = 0; k < cnt; k++) {
                if (links[p + k] < 0) {
                    *why = "link out of range";
                    return AKIDB_CORRUPT;
                }
                ll[1 + k] = (uint32_t)links[p + k];
            }
            ll[0] = cnt;
            p += cnt;
        }
        if (p != end) {
            *why = "trailing links after the last level";
            return AKIDB_CORRUPT;
        }
        h->n = node + 1;
    }
    return AKIDB_OK;
}

void akidb__hnsw_build_set_linked(akidb__hnsw *h, uint32_t n_linked)
{
    h->build_linked = n_linked;
}

int akidb__hnsw_build_end(akidb__hnsw *h, uint32_t entry, const akidb__hnsw_rng *rng,
                          const char **why)
{
    uint32_t n = h->n;
    uint32_t n_linked = h->build_linked == UINT32_MAX ? n : h->build_linked;
    *why = "";
    if (h->n_prepared != n) {
        *why = "a batch was not filled";
        return AKIDB_CORRUPT;
    }
    if (n_linked > n) {
        *why = "more nodes in the graph than nodes";
        return AKIDB_CORRUPT;
    }
    if (n_linked && entry >= n_linked) {
        *why = "entry point out of range";
        return AKIDB_CORRUPT;
    }
    int max_level = n_linked ? h->levels[entry] : -1;
    uint32_t n_deleted = 0;
    for (uint32_t i = 0; i < n; i++) {
        int in_graph = i < n_linked;
        if (in_graph && h->levels[i] > max_level) {
            *why = "entry point is not on the top level";
            return AKIDB_CORRUPT;
        }
        n_deleted += h->deleted[i];
        for (int l = 0; l <= h->levels[i]; l++) {
            const uint32_t *ll = links_at(h, i, l);
            /* a tail node is linked later, from nothing: it has no links
             * yet, and (below) nothing links to it */
            if (!in_graph && ll[0] != 0) {
                *why = "a node waiting to be linked has links";
                return AKIDB_CORRUPT;
            }
            /* an upper-level walk reads the target's own list at that
             * level, so a target without that level would read out of
             * bounds */
            for (uint32_t k = 1; k <= ll[0]; k++) {
                if (ll[k] >= n_linked) {
                    *why = "link out of range";
                    return AKIDB_CORRUPT;
                }
                if (h->levels[ll[k]] < l) {
                    *why = "link to a node that lacks the level";
                    return AKIDB_CORRUPT;
                }
            }
        }
    }
    h->n_deleted = n_deleted;
    h->n_linked = n_linked;
    h->build_linked = UINT32_MAX;
    h->max_level = max_level;
    h->entry = n_linked ? entry : 0;
    if (rng) {
        h->rng = rng->rng;
        h->dup_rng = rng->dup_rng;
    }
    return AKIDB_OK;
}
