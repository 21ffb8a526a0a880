/*
 * hnsw.c - Hierarchical Navigable Small World graph (Malkov & Yashunin,
 * Algorithms 1-5, with the neighbour-selection heuristic of Algorithm 4).
 *
 * Storage.  Nodes are dense numbers 0..n-1 in insertion order.  Node data
 * lives in fixed-size chunks so the index grows without ever copying
 * vectors (a realloc of one big array would briefly need twice the memory,
 * which an edge device may not have).  A chunk holds `chunk_nodes` nodes:
 *
 *   [ walk rows: chunk_nodes x row_bytes, 64-byte aligned ]
 *   [ level-0 links: chunk_nodes x (1 + 2M) u32: count, then links ]
 *
 * A walk row is what the graph walk reads per hop (hnsw.h, storage kinds):
 *   f32   dim_pad floats; dim_pad rounds dim up to a multiple of 16, the
 *         padding is zero, so the kernels run without a residual loop
 *   f16   dim rounded up to 16 halves, zero padding
 *   int8  dim code bytes, then at the next multiple of 4 one 32-bit term
 *         (sum(q^2) for L2 and cosine, sum(offset * q) for dot) and the
 *         float residual (the vector's distance to its grid point, for
 *         the re-ranking bound); nothing rounds the row further (the
 *         kernels load unaligned, and every byte of padding is a byte of
 *         RAM a vector: at dim 384 a row is 392 bytes, not 400)
 * Compact kinds keep exact float vectors (when they keep them) in a block
 * per chunk beside it, chunk_nodes x dim_pad floats, touched only by the
 * re-ranking of a search's final candidates.
 *
 * With the default allocator, chunks are carved from 2 MiB-aligned
 * regions of their own (mmap, MADV_HUGEPAGE), not from the heap: freeing
 * an index unmaps them, so a collection that leaves RAM (tiering) gives
 * its memory back to the system at once instead of leaving it in a heap
 * glibc keeps, and a loaded index takes one page fault per 2 MiB instead
 * of one per 4 KiB.  A custom allocator sees every chunk as before; so do
 * sanitizer builds, whose checks only cover the allocator's memory.  The
 * exact blocks of compact kinds come from the allocator (they are freed
 * one by one as chunks stop needing them).
 * Upper-level links (few nodes have them) are one small array per node:
 * level x (1 + M) u32.
 *
 * Distances on int8 rows: with levels q (stored c = q + 128),
 *   |a - b|^2 ~ scale^2 * (|q_a|^2 + |q_b|^2 - 2 q_a.q_b)
 * all in exact integers (the norms are the row terms, the dot product
 * one kernel call); cosine is that over 2 (unit vectors); dot is
 *   a.b ~ |offset|^2 + scale * (lin_a + lin_b) + scale^2 q_a.q_b.
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
#include "index/quant.h"

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
    void *cquery;                /* compact query: f16 codes or int8 levels */
    float *exact_buf;            /* one vector read from an exact source */
} search_ctx;

/* A query prepared for the walk: the float vector, and its compact form
 * with the int8 terms. */
typedef struct qprep {
    const float *f;
    const void *c;
    int32_t sum, norm;
    float lin;
    float resid;                 /* int8: |query - its grid point|, rounded up */
} qprep;

/* What the walk reads. */
enum { WALK_F32, WALK_F16, WALK_I8 };

struct akidb__hnsw {
    akidb__hnsw_config cfg;
    const akidb_allocator *alloc;
    const akidb__kernels *kern;
    akidb__dist_fn dist;
    int ip;                      /* inner-product space */
    float ip_bias;               /* distance = ip_bias - dot */
    uint32_t dim, dim_pad;

    /* storage */
    akidb__storage storage;
    int walk;                    /* WALK_*: int8 walks floats until trained */
    size_t row_bytes;            /* bytes of one walk row */
    uint32_t f16_pad;            /* f16: dim rounded up to 16 */
    size_t i8_term_off;          /* int8: offset of the row's 32-bit term, then its residual */
    akidb__dist_f16_fn dist_f16;
    float **exact;               /* per chunk: exact float rows, or NULL */
    akidb__exact_source src;     /* AKIDB__EXACT_SOURCE; read NULL = none */
    uint32_t rerank;
    int rerank_bound;            /* int8: skip candidates the residual bound rules out */
    double i8_bound_f;           /* exact distance = f |a - b|^2: 1 (L2) or 1/2 (cosine) */
    double i8_bound_abs;         /* absolute margin under the bound (cosine) */
    uint32_t train_rows;
    /* int8 quantiser */
    int trained;
    float *i8_offset;            /* dim */
    float *i8_scratch;           /* dim, for training */
    float i8_scale;
    float i8_l2_mult;            /* scale^2, halved for cosine */
    float i8_scale2;             /* scale^2 */
    float i8_c0;                 /* |offset|^2 */
    uint64_t values_encoded, values_clipped, trainings;
    uint64_t clipped_total;      /* values_clipped, never reset */
    float dup_eps;               /* compact: distance at or below which rows are compared */
    uint32_t m, m0;              /* max links: upper levels, level 0 */
    double level_mult;
    uint64_t rng;                /* level draws */
    uint64_t dup_rng;            /* duplicate sampling in select_neighbors */

    uint32_t n, n_deleted;
    uint32_t n_linked;           /* nodes [0, n_linked) are in the graph; the rest is the tail */
    int building;                /* between build_begin and build_end */
    uint32_t n_exact_blocks;     /* non-NULL entries of exact[] */
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

static inline unsigned char *row_at(const akidb__hnsw *h, uint32_t node)
{
    unsigned char *c = h->chunks[node >> h->chunk_shift];
    return c + (size_t)(node & h->chunk_mask) * h->row_bytes;
}

/* The exact float copy of a node in RAM, or NULL. */
static inline float *exact_at(const akidb__hnsw *h, uint32_t node)
{
    if (h->storage == AKIDB__STORAGE_F32)
        return (float *)row_at(h, node);
    float *e = h->exact[node >> h->chunk_shift];
    return e ? e + (size_t)(node & h->chunk_mask) * h->dim_pad : NULL;
}

/* The float vector the walk reads (f32 storage, or int8 before training,
 * when every node has its exact copy in RAM). */
static inline const float *vec_at(const akidb__hnsw *h, uint32_t node)
{
    return exact_at(h, node);
}

static inline int32_t row_term_i32(const akidb__hnsw *h, const unsigned char *row)
{
    int32_t t;
    memcpy(&t, row + h->i8_term_off, sizeof t);
    return t;
}

static inline float row_term_f32(const akidb__hnsw *h, const unsigned char *row)
{
    float t;
    memcpy(&t, row + h->i8_term_off, sizeof t);
    return t;
}

/* int8: |x - grid point| of the row's vector (akidb__i8_encode). */
static inline float row_resid(const akidb__hnsw *h, const unsigned char *row)
{
    float r;
    memcpy(&r, row + h->i8_term_off + 4, sizeof r);
    return r;
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

/* int8: distance from the exact integer dot product q_a.q_b and the two
 * rows' terms. */
static inline float i8_dist(const akidb__hnsw *h, int32_t dot, int32_t ta, int32_t tb)
{
    /* norms <= 128^2 * 4096 = 2^26 each, so ta + tb - 2 dot < 2^29 */
    return h->i8_l2_mult * (float)(ta + tb - 2 * dot);
}

static inline float i8_dist_ip(const akidb__hnsw *h, int32_t dot, float la, float lb)
{
    return -(h->i8_c0 + h->i8_scale * (la + lb) + h->i8_scale2 * (float)dot);
}

/* Query to node, on the walk rows. */
static inline float dist_qn(const akidb__hnsw *h, const qprep *q, uint32_t node)
{
    const unsigned char *r = row_at(h, node);
    float d;
    switch (h->walk) {
    case WALK_I8: {
        int32_t dot = h->kern->dot_u8s8(r, (const int8_t *)q->c, h->dim) - 128 * q->sum;
        if (h->cfg.negate_dot)
            return i8_dist_ip(h, dot, row_term_f32(h, r), q->lin);
        return i8_dist(h, dot, row_term_i32(h, r), q->norm);
    }
    case WALK_F16:
        d = h->dist_f16((const uint16_t *)r, (const uint16_t *)q->c, h->f16_pad);
        break;
    default:
        d = h->dist(q->f, vec_at(h, node), h->dim_pad);
        break;
    }
    return h->ip ? h->ip_bias - d : d;
}

/* Node to node, on the walk rows. */
static inline float dist_nn(const akidb__hnsw *h, uint32_t a, uint32_t b)
{
    float d;
    switch (h->walk) {
    case WALK_I8: {
        const unsigned char *ra = row_at(h, a), *rb = row_at(h, b);
        int32_t dot = h->kern->dot_u8u8(ra, rb, h->dim);
        if (h->cfg.negate_dot)
            return i8_dist_ip(h, dot, row_term_f32(h, ra), row_term_f32(h, rb));
        return i8_dist(h, dot, row_term_i32(h, ra), row_term_i32(h, rb));
    }
    case WALK_F16:
        d = h->dist_f16((const uint16_t *)row_at(h, a), (const uint16_t *)row_at(h, b), h->f16_pad);
        break;
    default:
        d = h->dist(vec_at(h, a), vec_at(h, b), h->dim_pad);
        break;
    }
    return h->ip ? h->ip_bias - d : d;
}

/* Whether two nodes hold the same walk row (duplicates, see
 * select_neighbors). */
static inline int same_row(const akidb__hnsw *h, uint32_t a, uint32_t b)
{
    if (h->walk == WALK_F32)
        return memcmp(vec_at(h, a), vec_at(h, b), (size_t)h->dim * sizeof(float)) == 0;
    return memcmp(row_at(h, a), row_at(h, b), h->walk == WALK_I8 ? h->dim : h->row_bytes) == 0;
}

static inline void prefetch_vec(const akidb__hnsw *h, uint32_t node)
{
    const char *p = h->walk == WALK_F32 ? (const char *)vec_at(h, node)
                                        : (const char *)row_at(h, node);
    /* The first lines; the hardware prefetcher follows the stream.  A
     * compact row is short: all of it. */
    size_t n = h->walk == WALK_F32 ? 256 : h->row_bytes;
    if (n > 512)
        n = 512;
    for (size_t off = 0; off < n; off += 64)
        __builtin_prefetch(p + off);
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
    akidb__aligned_free(h->alloc, c->cquery);
    akidb__aligned_free(h->alloc, c->exact_buf);
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
    if (!c->gather || !c->query)
        goto fail;
    memset(c->query, 0, (size_t)h->dim_pad * sizeof(float));
    if (h->storage != AKIDB__STORAGE_F32) {
        /* f16: f16_pad halves; int8: dim levels (the f16 size covers it) */
        size_t cq = (size_t)h->f16_pad * sizeof(uint16_t);
        c->cquery = akidb__aligned_alloc(h->alloc, cq, 64);
        c->exact_buf = akidb__aligned_alloc(h->alloc, (size_t)h->dim_pad * sizeof(float), 64);
        if (!c->cquery || !c->exact_buf)
            goto fail;
        memset(c->cquery, 0, cq);
        memset(c->exact_buf, 0, (size_t)h->dim_pad * sizeof(float));
    }
    *out = c;
    return AKIDB_OK;
fail:
    ctx_free(h, c);
    return AKIDB_NOMEM;
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
    akidb__storage storage = cfg->storage ? cfg->storage : AKIDB__STORAGE_F32;
    if (cfg->dim < 1 || cfg->dim > AKIDB_MAX_DIM || cfg->m < 2 || cfg->m > 128 ||
        cfg->ef_construction < 1 ||
        (cfg->space != AKIDB__SPACE_L2 && cfg->space != AKIDB__SPACE_IP) ||
        (storage != AKIDB__STORAGE_F32 && storage != AKIDB__STORAGE_F16 &&
         storage != AKIDB__STORAGE_INT8) ||
        ((unsigned)cfg->exact > AKIDB__EXACT_NONE))
        return AKIDB_INVALID;
    if (!alloc)
        alloc = &akidb__default_allocator;
    if (!kernels)
        kernels = akidb__kernels_best();

    akidb__hnsw *h = akidb__calloc(alloc, 1, sizeof *h);
    if (!h)
        return AKIDB_NOMEM;
    h->cfg = *cfg;
    h->cfg.storage = storage;
    if (storage == AKIDB__STORAGE_F32)
        h->cfg.exact = AKIDB__EXACT_RAM;
    h->alloc = alloc;
    h->kern = kernels;
    h->ip = cfg->space == AKIDB__SPACE_IP;
    h->dist = h->ip ? kernels->dot : kernels->l2sq;
    h->dist_f16 = h->ip ? kernels->dot_f16 : kernels->l2sq_f16;
    h->ip_bias = cfg->negate_dot ? 0.0f : 1.0f;
    h->dim = cfg->dim;
    h->dim_pad = (cfg->dim + AKIDB__DIM_PAD - 1) / AKIDB__DIM_PAD * AKIDB__DIM_PAD;
    h->f16_pad = (cfg->dim + 15) / 16 * 16;
    h->storage = storage;
    h->rerank = cfg->rerank ? cfg->rerank : AKIDB__RERANK_DEFAULT;
    h->train_rows = cfg->train_rows ? cfg->train_rows : AKIDB__TRAIN_ROWS_DEFAULT;
    /* compact rows are compared byte for byte below this distance (see
     * select_neighbors): identical int8 rows are exactly 0 apart, f16
     * cosine rows up to the rounding of |a|^2 */
    h->dup_eps = storage == AKIDB__STORAGE_F16 && h->ip ? 1e-2f : 0.0f;
    switch (storage) {
    case AKIDB__STORAGE_F16:
        h->walk = WALK_F16;
        h->row_bytes = (size_t)h->f16_pad * sizeof(uint16_t);
        break;
    case AKIDB__STORAGE_INT8:
        h->walk = WALK_F32;               /* until trained */
        h->i8_term_off = ((size_t)h->dim + 3) / 4 * 4;
        /* codes, the 32-bit term, the residual */
        h->row_bytes = h->i8_term_off + 8;
        /* The residual bound holds for squared L2 and for cosine (half
         * the squared L2 of unit vectors), not for a raw inner product. */
        h->rerank_bound = !cfg->negate_dot;
        break;
    default:
        h->walk = WALK_F32;
        h->row_bytes = (size_t)h->dim_pad * sizeof(float);
        break;
    }
    h->m = cfg->m;
    h->m0 = 2 * cfg->m;
    h->level_mult = 1.0 / log((double)cfg->m);
    h->rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ull;
    h->dup_rng = h->rng ^ 0xD1B54A32D192ED03ull;
    h->max_level = -1;
    h->build_linked = UINT32_MAX;

    size_t node_bytes = h->row_bytes + (1 + (size_t)h->m0) * sizeof(uint32_t);
    uint32_t shift = 4;
    while (shift < 10 && ((size_t)2 << shift) * node_bytes <= CHUNK_TARGET_BYTES)
        shift++;
    h->chunk_shift = shift;
    h->chunk_nodes = 1u << shift;
    h->chunk_mask = h->chunk_nodes - 1;
    h->chunk_vec_bytes = (size_t)h->chunk_nodes * h->row_bytes;
    h->chunk_bytes = h->chunk_vec_bytes + (size_t)h->chunk_nodes * (1 + h->m0) * sizeof(uint32_t);
    h->regions_on = USE_REGIONS && alloc->malloc_fn == akidb__default_allocator.malloc_fn;
    h->chunk_stride = (h->chunk_bytes + 63) & ~(size_t)63;
    h->per_region = (uint32_t)(REGION_ALIGN / h->chunk_stride);
    if (h->per_region == 0)
        h->per_region = 1;
    h->region_bytes = ((size_t)h->per_region * h->chunk_stride + REGION_ALIGN - 1) &
                      ~(REGION_ALIGN - 1);

    if (storage == AKIDB__STORAGE_INT8) {
        h->i8_offset = akidb__calloc(alloc, h->dim, sizeof(float));
        h->i8_scratch = akidb__calloc(alloc, h->dim, sizeof(float));
        if (!h->i8_offset || !h->i8_scratch) {
            akidb__free(alloc, h->i8_offset);
            akidb__free(alloc, h->i8_scratch);
            akidb__free(alloc, h);
            return AKIDB_NOMEM;
        }
    }
    if (pthread_mutex_init(&h->pool_lock, NULL) != 0) {
        akidb__free(alloc, h->i8_offset);
        akidb__free(alloc, h->i8_scratch);
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
    for (uint32_t i = 0; h->exact && i < h->n_chunks; i++)
        akidb__aligned_free(a, h->exact[i]);
    akidb__free(a, h->chunks);
    akidb__free(a, h->exact);
    akidb__free(a, h->i8_offset);
    akidb__free(a, h->i8_scratch);
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

/* Whether nodes of chunk ci keep an exact float copy in RAM (compact
 * storage only): while int8 is untrained (the walk reads floats), while
 * the chunk holds or will hold a tail node (the tail is scanned exactly,
 * and linking encodes a query from it), and in AKIDB__EXACT_RAM always. */
static int chunk_needs_exact(const akidb__hnsw *h, uint32_t ci)
{
    if (h->storage == AKIDB__STORAGE_INT8 && !h->trained)
        return 1;
    /* A build without build_set_linked does not know yet where the graph
     * ends: it keeps every block, and build_end frees what is not needed
     * (a block dropped now could not be refilled for the last chunk). */
    if (h->building && h->build_linked == UINT32_MAX)
        return 1;
    uint32_t linked = h->building ? h->build_linked : h->n_linked;
    if (((uint64_t)ci + 1) * h->chunk_nodes > linked)
        return 1;
    switch (h->cfg.exact) {
    case AKIDB__EXACT_RAM:
        return 1;
    case AKIDB__EXACT_SOURCE:
        return !h->src.read || ((uint64_t)ci + 1) * h->chunk_nodes > h->src.n_nodes;
    default:
        return 0;
    }
}

static void free_chunk_exact(akidb__hnsw *h, uint32_t ci)
{
    if (h->exact[ci] && !chunk_needs_exact(h, ci)) {
        akidb__aligned_free(h->alloc, h->exact[ci]);
        h->exact[ci] = NULL;
        h->n_exact_blocks--;
    }
}

/* Free the exact copies nobody needs any more. */
static void free_unneeded_exact(akidb__hnsw *h)
{
    for (uint32_t ci = 0; h->exact && ci < h->n_chunks; ci++)
        free_chunk_exact(h, ci);
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
        if (h->storage != AKIDB__STORAGE_F32) {
            float **e = akidb__realloc_array(h->alloc, h->exact, cap, sizeof *e);
            if (!e)
                return AKIDB_NOMEM;
            h->exact = e;
        }
        h->chunks_cap = cap;
    }
    while (h->n_chunks < chunks_needed) {
        unsigned char *c = h->regions_on ? region_chunk(h)
                                         : akidb__aligned_alloc(h->alloc, h->chunk_bytes, 64);
        if (!c)
            return AKIDB_NOMEM;
        /* Link counts must start at zero (a fresh mapping already is);
         * vectors are written on append. */
        if (!h->regions_on)
            memset(c + h->chunk_vec_bytes, 0, h->chunk_bytes - h->chunk_vec_bytes);
        if (h->exact)
            h->exact[h->n_chunks] = NULL;
        h->chunks[h->n_chunks++] = c;
    }
    /* Exact copies for the chunks the new nodes land in, where they are
     * kept (a chunk dropped earlier is wholly covered by the source and
     * never needs one again). */
    for (uint32_t ci = h->n >> h->chunk_shift; h->exact && ci < chunks_needed; ci++) {
        if (h->exact[ci] || !chunk_needs_exact(h, ci))
            continue;
        h->exact[ci] = akidb__aligned_alloc(h->alloc, (size_t)h->chunk_nodes * h->dim_pad *
                                                          sizeof(float), 64);
        if (!h->exact[ci])
            return AKIDB_NOMEM;
        h->n_exact_blocks++;
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
static int search_layer(const akidb__hnsw *h, search_ctx *c, const qprep *q, uint32_t ep,
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
            float d = dist_qn(h, q, nb);
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
static uint32_t greedy_step(const akidb__hnsw *h, const qprep *q, uint32_t cur,
                            float *cur_dist, int level)
{
    int changed = 1;
    while (changed) {
        changed = 0;
        const uint32_t *ll = links_at(h, cur, level);
        uint32_t cnt = ll[0];
        for (uint32_t i = 1; i <= cnt; i++) {
            float d = dist_qn(h, q, ll[i]);
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
        uint32_t v = cand[i].node;
        int good = 1, dup = 0;
        for (uint32_t j = 0; j < kept; j++) {
            float d = dist_nn(h, v, cand[j].node);
            /* Identical: 0 in L2, 1 - 1 (up to rounding) for cosine.
             * Compact rows: the same bytes (f16 cosine rounds further
             * from 0, so its distance only says when to compare). */
            if (h->walk == WALK_F32
                    ? (!h->ip && d <= 0.0f) || (h->ip && !h->cfg.negate_dot && d <= 1e-6f)
                    : !h->cfg.negate_dot && d <= h->dup_eps && same_row(h, v, cand[j].node)) {
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
    heap_item *s = c->scratch;
    for (uint32_t i = 0; i < cnt; i++) {
        s[i].node = ll[1 + i];
        s[i].dist = dist_nn(h, nb, ll[1 + i]);
    }
    s[cnt].node = node;
    s[cnt].dist = dist_nn(h, nb, node);
    qsort(s, cnt + 1, sizeof *s, cmp_heap_item);
    uint32_t kept = select_neighbors(h, s, cnt + 1, max_links);
    for (uint32_t i = 0; i < kept; i++)
        ll[1 + i] = s[i].node;
    ll[0] = kept;
}

/* Write node's vector: its exact copy where one is kept, its walk row. */
static void store_node(akidb__hnsw *h, uint32_t node, const float *vec)
{
    float *e = exact_at(h, node);
    if (e) {
        memcpy(e, vec, (size_t)h->dim * sizeof(float));
        memset(e + h->dim, 0, (size_t)(h->dim_pad - h->dim) * sizeof(float));
    }
    unsigned char *r = row_at(h, node);
    if (h->storage == AKIDB__STORAGE_F16) {
        uint16_t *hr = (uint16_t *)r;
        uint32_t clipped = akidb__f16_encode(vec, h->dim, hr);
        h->values_clipped += clipped;
        h->clipped_total += clipped;
        memset(hr + h->dim, 0, (size_t)(h->f16_pad - h->dim) * sizeof(uint16_t));
        h->values_encoded += h->dim;
    } else if (h->storage == AKIDB__STORAGE_INT8 && h->trained) {
        akidb__i8_params p = { h->dim, h->i8_scale, h->i8_offset };
        int32_t norm;
        float lin, resid;
        uint32_t clipped = akidb__i8_encode(&p, vec, r, &norm, &lin, &resid);
        h->values_clipped += clipped;
        h->clipped_total += clipped;
        memset(r + h->dim, 128, h->i8_term_off - h->dim);
        if (h->cfg.negate_dot)
            memcpy(r + h->i8_term_off, &lin, sizeof lin);
        else
            memcpy(r + h->i8_term_off, &norm, sizeof norm);
        memcpy(r + h->i8_term_off + 4, &resid, sizeof resid);
        h->values_encoded += h->dim;
    }
}

/* The derived constants of trained int8 parameters. */
static void i8_derive(akidb__hnsw *h)
{
    float c0 = 0.0f;
    for (uint32_t d = 0; d < h->dim; d++)
        c0 += h->i8_offset[d] * h->i8_offset[d];
    h->i8_c0 = c0;
    h->i8_scale2 = h->i8_scale * h->i8_scale;
    /* cosine: 1 - a.b = |a - b|^2 / 2 on unit vectors */
    h->i8_l2_mult = h->ip ? 0.5f * h->i8_scale2 : h->i8_scale2;
    h->i8_bound_f = h->ip ? 0.5 : 1.0;
    /* 1 - a.b in float over dim products of unit vectors is off by at
     * most dim ulps of 1 (see i8_lower_bound) */
    h->i8_bound_abs = h->ip ? (double)h->dim * 0x1p-23 : 0.0;
}

/* Encode every node [0, n) again from its exact vector (all in RAM). */
static void encode_all(akidb__hnsw *h)
{
    h->values_encoded = 0;
    h->values_clipped = 0;
    for (uint32_t i = 0; i < h->n; i++)
        store_node(h, i, exact_at(h, i));
}

static const float *train_row(void *ctx, uint32_t i)
{
    return exact_at((const akidb__hnsw *)ctx, i);
}

/* int8: train on the exact vectors of nodes [0, n_rows) (in RAM: an
 * untrained index keeps every exact vector), encode every node, walk on
 * codes from now on.  Cannot fail: everything was allocated earlier. */
static void train_now(akidb__hnsw *h, uint32_t n_rows)
{
    akidb__i8_train(h->dim, n_rows, train_row, h, h->i8_offset, &h->i8_scale, h->i8_scratch);
    i8_derive(h);
    h->trained = 1;
    h->trainings++;
    encode_all(h);
    h->walk = WALK_I8;
}

/* Copy the query and prepare its compact form. */
static void prepare_query(const akidb__hnsw *h, search_ctx *c, const float *query, qprep *q)
{
    memcpy(c->query, query, (size_t)h->dim * sizeof(float));
    q->f = c->query;
    q->c = c->cquery;
    q->sum = q->norm = 0;
    q->lin = q->resid = 0.0f;
    if (h->walk == WALK_F16) {
        (void)akidb__f16_encode(query, h->dim, c->cquery);   /* padding stays zero */
    } else if (h->walk == WALK_I8) {
        akidb__i8_params p = { h->dim, h->i8_scale, h->i8_offset };
        akidb__i8_query(&p, query, c->cquery, &q->sum, &q->norm, &q->lin, &q->resid);
    }
}

uint32_t akidb__hnsw_append(akidb__hnsw *h, const float *vec)
{
    uint32_t node = h->n;
    store_node(h, node, vec);
    h->n++;
    return node;
}

/* Link node (the oldest tail node; its exact vector is in RAM, as every
 * tail node's is) into the graph: Algorithm 1 on the walk rows. */
static void link_node(akidb__hnsw *h, uint32_t node)
{
    const float *vec = exact_at(h, node);
    int level = h->levels[node];

    if (h->max_level < 0) {
        h->entry = node;
        h->max_level = level;
        return;
    }

    search_ctx *c = h->insert_ctx;
    qprep qp;
    prepare_query(h, c, vec, &qp);
    uint32_t cur = h->entry;
    float cur_dist = dist_qn(h, &qp, cur);
    for (int l = h->max_level; l > level; l--)
        cur = greedy_step(h, &qp, cur, &cur_dist, l);

    for (int l = level < h->max_level ? level : h->max_level; l >= 0; l--) {
        /* Construction walks deleted nodes too: they are still graph nodes,
         * and reserve() sized the heaps so this cannot fail. */
        (void)search_layer(h, c, &qp, cur, cur_dist, h->cfg.ef_construction, l, 0);
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

void akidb__hnsw_link_next(akidb__hnsw *h)
{
    if (h->n_linked >= h->n)
        return;
    uint32_t node = h->n_linked;
    /* The walk's rows change once, at a fixed point of the linking order
     * (int8: before the node after the first train_rows is linked, on
     * exactly those nodes), so the graph still depends only on the
     * appended vectors and their order. */
    if (h->storage == AKIDB__STORAGE_INT8 && !h->trained && node >= h->train_rows) {
        train_now(h, h->train_rows);
        free_unneeded_exact(h);
    }
    link_node(h, node);
    h->n_linked = node + 1;
    /* a chunk whose nodes are all linked may not need its exact block */
    if (h->exact && (node & h->chunk_mask) == h->chunk_mask)
        free_chunk_exact(h, node >> h->chunk_shift);
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

/* ---- exact vectors -------------------------------------------------- */

/* Whether every node has an exact float vector somewhere (RAM or source). */
static int has_exact(const akidb__hnsw *h)
{
    return h->storage == AKIDB__STORAGE_F32 || h->walk == WALK_F32 ||
           h->cfg.exact != AKIDB__EXACT_NONE;
}

const float *akidb__hnsw_vector(const akidb__hnsw *h, uint32_t node)
{
    return node < h->n ? exact_at(h, node) : NULL;
}

int akidb__hnsw_vector_copy(const akidb__hnsw *h, uint32_t node, float *out, int *exact_out)
{
    int rc = AKIDB_OK, is_exact = 1;
    const float *e = exact_at(h, node);
    if (e) {
        memcpy(out, e, (size_t)h->dim * sizeof(float));
    } else if (h->src.read && node < h->src.n_nodes) {
        rc = h->src.read(h->src.ctx, node, out);
    } else if (h->walk == WALK_I8) {
        akidb__i8_params p = { h->dim, h->i8_scale, h->i8_offset };
        akidb__i8_decode(&p, row_at(h, node), out);
        is_exact = 0;
    } else {
        akidb__f16_decode((const uint16_t *)row_at(h, node), h->dim, out);
        is_exact = 0;
    }
    if (exact_out)
        *exact_out = is_exact;
    return rc;
}

float akidb__hnsw_distance(const akidb__hnsw *h, const float *query, uint32_t node)
{
    /* The query may be unpadded: compare on the real dimension. */
    const float *v = exact_at(h, node);
    if (!v)
        return NAN;
    float d = h->dist(query, v, h->dim);
    return h->ip ? h->ip_bias - d : d;
}

float akidb__hnsw_node_distance(const akidb__hnsw *h, uint32_t a, uint32_t b)
{
    return dist_nn(h, a, b);
}

void akidb__hnsw_set_exact_source(akidb__hnsw *h, const akidb__exact_source *src)
{
    if (src && src->read) {
        h->src = *src;
    } else {
        memset(&h->src, 0, sizeof h->src);
    }
}

void akidb__hnsw_drop_exact(akidb__hnsw *h)
{
    if (h->cfg.exact == AKIDB__EXACT_SOURCE && h->src.read)
        free_unneeded_exact(h);
}

/* ---- int8 parameters --------------------------------------------------- */

int akidb__hnsw_i8_params(const akidb__hnsw *h, akidb__i8_params *out)
{
    if (h->storage != AKIDB__STORAGE_INT8 || !h->trained)
        return 0;
    out->dim = h->dim;
    out->scale = h->i8_scale;
    out->offset = h->i8_offset;
    return 1;
}

int akidb__hnsw_set_i8_params(akidb__hnsw *h, const float *offset, float scale)
{
    akidb__i8_params p = { h->dim, scale, offset };
    if (h->storage != AKIDB__STORAGE_INT8 || h->n != 0 || !akidb__i8_params_valid(&p))
        return AKIDB_INVALID;
    memcpy(h->i8_offset, offset, (size_t)h->dim * sizeof(float));
    h->i8_scale = scale;
    i8_derive(h);
    h->trained = 1;
    h->walk = WALK_I8;
    return AKIDB_OK;
}

static const float *retrain_row(void *ctx, uint32_t i)
{
    return ((const float *const *)ctx)[i];
}
int akidb__hnsw_retrain(akidb__hnsw *h, uint32_t sample)
{
    if (h->storage != AKIDB__STORAGE_INT8 || !has_exact(h))
        return AKIDB_INVALID;
    if (h->n == 0)
        return AKIDB_OK;
    uint32_t n_sample = sample && sample < h->n ? sample : h->n;
    /* Every sampled row must be addressable at once: the ones in RAM are,
     * the ones behind the source are read into one temporary block. */
    uint32_t n_src = 0;
    for (uint32_t i = 0; i < n_sample; i++)
        if (!exact_at(h, (uint32_t)((uint64_t)i * h->n / n_sample)))
            n_src++;
    float *tmp = NULL;
    const float **rows = akidb__alloc_array(h->alloc, n_sample, sizeof *rows);
    if (!rows)
        return AKIDB_NOMEM;
    if (n_src && !(tmp = akidb__alloc_array(h->alloc, (size_t)n_src * h->dim_pad, sizeof(float)))) {
        akidb__free(h->alloc, rows);
        return AKIDB_NOMEM;
    }
    int rc = AKIDB_OK;
    for (uint32_t i = 0, j = 0; i < n_sample; i++) {
        uint32_t node = (uint32_t)((uint64_t)i * h->n / n_sample);
        const float *e = exact_at(h, node);
        if (!e) {
            float *buf = tmp + (size_t)j++ * h->dim_pad;
            if ((rc = h->src.read(h->src.ctx, node, buf)) != AKIDB_OK)
                goto out;
            e = buf;
        }
        rows[i] = e;
    }
    akidb__i8_train(h->dim, n_sample, retrain_row, (void *)rows, h->i8_offset, &h->i8_scale,
                    h->i8_scratch);
    i8_derive(h);
    h->trained = 1;
    h->trainings++;
    h->walk = WALK_I8;
    /* re-encode every node from its exact vector */
    h->values_encoded = 0;
    h->values_clipped = 0;
    float *buf = tmp ? tmp : NULL;
    for (uint32_t i = 0; i < h->n; i++) {
        const float *e = exact_at(h, i);
        if (!e) {
            /* read through the source into the first temporary row (or a
             * search context's buffer when nothing was sampled from it) */
            float *dst = buf ? buf : h->insert_ctx ? h->insert_ctx->exact_buf : NULL;
            if (!dst) {
                rc = AKIDB_NOMEM;
                goto out;
            }
            if ((rc = h->src.read(h->src.ctx, i, dst)) != AKIDB_OK)
                goto out;
            e = dst;
        }
        store_node(h, i, e);
    }
out:
    akidb__free(h->alloc, tmp);
    akidb__free(h->alloc, rows);
    return rc;
}

void akidb__hnsw_quant_stats_get(const akidb__hnsw *h, akidb__hnsw_quant_stats *out)
{
    out->values_encoded = h->values_encoded;
    out->values_clipped = h->values_clipped;
    out->clipped_total = h->clipped_total;
    out->trainings = h->trainings;
}

/* ---- search ---------------------------------------------------------- */

/* Prefetch a whole stored vector.  The exact scan streams through memory,
 * but hardware prefetchers stop at 4 KiB page boundaries, which a 3 KiB
 * vector crosses every other row; fetching whole vectors a few rows ahead
 * keeps enough misses in flight to run near the memory bandwidth. */
static inline void prefetch_whole(const void *vec, size_t bytes)
{
    const char *p = vec;
    for (size_t off = 0; off < bytes; off += 64)
        __builtin_prefetch(p + off);
}

/* Whether node's exact vector is read through the source (not in RAM). */
static inline int from_source(const akidb__hnsw *h, uint32_t node)
{
    return h->src.read && node < h->src.n_nodes && !exact_at(h, node);
}

/* Node i's distance to the query in an exact scan: on its exact vector
 * where the index has one (RAM or source), else on its walk row (an index
 * without exact vectors: approximate).  A source's error goes to *rc. */
static inline float scan_dist(const akidb__hnsw *h, search_ctx *c, const qprep *q, uint32_t i,
                              int *rc)
{
    const float *v = exact_at(h, i);
    if (v)
        return dist_vv(h, q->f, v);
    if (h->src.read && i < h->src.n_nodes) {
        if ((*rc = h->src.read(h->src.ctx, i, c->exact_buf)) != AKIDB_OK)
            return INFINITY;
        return dist_vv(h, q->f, c->exact_buf);
    }
    return dist_qn(h, q, i);
}

/* Scan nodes [from, n), merging into the k best already in the result
 * heap (a graph walk's, trimmed to k; or nothing).  The tail always has
 * its exact vectors in RAM, so a tail scan is exact for every kind. */
static int exact_scan(akidb__hnsw *h, search_ctx *c, const qprep *q, uint32_t k, uint32_t from)
{
    while (c->n_res > k)
        maxheap_pop(c->res, &c->n_res);
    float bound = c->n_res == k ? c->res[0].dist : INFINITY;
    /* About 8 KiB ahead: far enough to hide latency, near enough to stay
     * in L1/L2 until used. */
    size_t vec_bytes = (size_t)h->dim_pad * sizeof(float);
    uint32_t ahead = (uint32_t)(8192 / vec_bytes) + 1;
    for (uint32_t i = from; i < h->n; i++) {
        if (i + ahead < h->n) {
            const float *e = exact_at(h, i + ahead);
            if (e)
                prefetch_whole(e, vec_bytes);
            else
                prefetch_whole(row_at(h, i + ahead), h->row_bytes);
        }
        if (h->deleted[i])
            continue;
        int rc = AKIDB_OK;
        float d = scan_dist(h, c, q, i, &rc);
        if (rc)
            return rc;
        if (c->n_res < k || d < bound) {
            heap_item it = { d, i };
            maxheap_push(c->res, &c->n_res, it);
            if (c->n_res > k)
                maxheap_pop(c->res, &c->n_res);
            if (c->n_res == k)
                bound = c->res[0].dist;
        }
    }
    return AKIDB_OK;
}

/*
 * int8: the least exact distance node can be at, from its walk distance.
 * With g the grid points and r the residuals akidb__i8_encode measured,
 * |q - x| >= |gq - gx| - r(q) - r(x) (triangle inequality), and the walk
 * distance is f |gq - gx|^2 exactly up to float rounding (f = 1 for
 * squared L2, 1/2 for cosine: 1 - a.b on unit vectors).  The margins
 * keep the bound below the float arithmetic on both sides: 2^-20 for the
 * two roundings of the walk distance, 2^-10 of the bound for the exact
 * distance's sum over up to AKIDB_MAX_DIM terms (<= 2^-12 relative for
 * squared L2, whose terms are all >= 0), and for cosine, whose exact
 * distance cancels near 0, dim ulps of 1 absolute.
 */
static inline double i8_lower_bound(const akidb__hnsw *h, const qprep *q, uint32_t node,
                                    float walk_dist)
{
    double grid = sqrt((double)walk_dist / h->i8_bound_f) * (1.0 - 0x1p-20);
    double gap = grid - (double)q->resid - (double)row_resid(h, row_at(h, node));
    if (!(gap > 0.0))
        return 0.0;
    return h->i8_bound_f * gap * gap * (1.0 - 0x1p-10) - h->i8_bound_abs;
}

/* Prefetch the exact vector of node when it is in RAM (a source reads
 * its own way). */
static inline void prefetch_exact(const akidb__hnsw *h, uint32_t node)
{
    const float *e = exact_at(h, node);
    if (e)
        prefetch_whole(e, (size_t)h->dim * sizeof(float));
}

/*
 * A compact walk's result heap (approximate distances) becomes its best
 * k.  When the index has exact vectors, the best n_rerank candidates (in
 * walk order) get exact distances and the best k of those stay: without
 * exact vectors, the walk's own best k stay with their approximate
 * distances.  int8 L2 and cosine skip a candidate once k exact distances
 * are known and the candidate's lower bound (i8_lower_bound) is above the
 * k-th of them: it could not enter the k, so the result is the one every
 * candidate re-ranked would give, at fewer exact reads (each a pread in
 * AKIDB__EXACT_SOURCE mode).
 */
static int rerank_walk(akidb__hnsw *h, search_ctx *c, const qprep *q, uint32_t k,
                       uint32_t n_rerank)
{
    heap_item *s = c->scratch;
    uint32_t n_found = drain_sorted(c, s);
    if (!has_exact(h)) {
        for (uint32_t i = 0; i < n_found && i < k; i++)
            maxheap_push(c->res, &c->n_res, s[i]);
        return AKIDB_OK;
    }
    uint32_t n_cand = n_found < n_rerank ? n_found : n_rerank;
    int bound = h->walk == WALK_I8 && h->rerank_bound;
    /* Reads through a source ask whether they would wait for the disk;
     * the first that would starts the reads of the candidates after it
     * before it waits, and the rest of the search reads plainly
     * (akidb__exact_source).  A warm cache costs nothing more (the asking
     * read is the read), and a search hints at most once. */
    int hinted = !h->src.read_cached || !h->src.will_need;
    for (uint32_t i = 0; i < n_cand; i++) {
        if (c->n_res == k && bound && i8_lower_bound(h, q, s[i].node, s[i].dist) > c->res[0].dist)
            continue;
        if (i + 1 < n_cand)
            prefetch_exact(h, s[i + 1].node);
        int rc = AKIDB_OK;
        heap_item it = { 0.0f, s[i].node };
        if (!hinted && from_source(h, s[i].node)) {
            rc = h->src.read_cached(h->src.ctx, s[i].node, c->exact_buf);
            if (rc == AKIDB__EXACT_WOULD_BLOCK) {
                hinted = 1;
                for (uint32_t j = i + 1; j < n_cand; j++)
                    if (from_source(h, s[j].node))
                        h->src.will_need(h->src.ctx, s[j].node);
                rc = h->src.read(h->src.ctx, s[i].node, c->exact_buf);
            }
            if (rc)
                return rc;
            it.dist = dist_vv(h, q->f, c->exact_buf);
        } else {
            it.dist = scan_dist(h, c, q, s[i].node, &rc);
            if (rc)
                return rc;
        }
        if (c->n_res < k) {
            maxheap_push(c->res, &c->n_res, it);
        } else if (it.dist < c->res[0].dist) {
            maxheap_pop(c->res, &c->n_res);
            maxheap_push(c->res, &c->n_res, it);
        }
    }
    return AKIDB_OK;
}

void akidb__hnsw_set_rerank_bound(akidb__hnsw *h, int on)
{
    h->rerank_bound = on && h->storage == AKIDB__STORAGE_INT8 && !h->cfg.negate_dot;
}

/*
 * A graph search walks [0, n_linked) and then scans the tail exactly,
 * merging it into the walk's results: the k best of (the walk's ef best
 * U the tail) are the k best of (the walk's k best U the tail), so the
 * tail costs one distance per node and a search never misses a node
 * because it is not linked yet.  A compact walk collects at least
 * rerank x k candidates and re-ranks them exactly (rerank_walk) before
 * the tail is merged.  If the merged set still holds fewer than k live
 * nodes while more exist (heavy deletion), the whole index is scanned
 * instead.
 */
int akidb__hnsw_search2(akidb__hnsw *h, const float *query, uint32_t k, uint32_t ef,
                        int exact, uint32_t rerank, akidb__hnsw_hit *hits, uint32_t *n_hits)
{
    *n_hits = 0;
    uint32_t live = akidb__hnsw_live(h);
    if (k == 0 || live == 0)
        return AKIDB_OK;
    if (k > live)
        k = live;
    if (ef < k)
        ef = k;
    uint32_t n_rerank = k;
    if (h->walk != WALK_F32) {
        uint64_t want = (uint64_t)(rerank ? rerank : h->rerank) * k;
        n_rerank = want < live ? (uint32_t)want : live;
        if (ef < n_rerank)
            ef = n_rerank;
    }

    search_ctx *c;
    int rc = ctx_acquire(h, exact ? k : ef, &c);
    if (rc)
        return rc;
    qprep qp;
    prepare_query(h, c, query, &qp);

    c->n_res = 0;
    if (!exact) {
        if (h->max_level >= 0) {
            uint32_t cur = h->entry;
            float cur_dist = dist_qn(h, &qp, cur);
            for (int l = h->max_level; l > 0; l--)
                cur = greedy_step(h, &qp, cur, &cur_dist, l);
            rc = search_layer(h, c, &qp, cur, cur_dist, ef, 0, 1);
            if (rc == AKIDB_OK && h->walk != WALK_F32)
                rc = rerank_walk(h, c, &qp, k, n_rerank);
            if (rc)
                goto out;
        }
        if (h->n_linked < h->n && (rc = exact_scan(h, c, &qp, k, h->n_linked)) != AKIDB_OK)
            goto out;
        if (c->n_res < k) {
            exact = 1;
            c->n_res = 0;
        }
    }
    if (exact && (rc = exact_scan(h, c, &qp, k, 0)) != AKIDB_OK)
        goto out;

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
out:
    ctx_release(h, c);
    return rc;
}

int akidb__hnsw_search(akidb__hnsw *h, const float *query, uint32_t k, uint32_t ef,
                       int exact, akidb__hnsw_hit *hits, uint32_t *n_hits)
{
    return akidb__hnsw_search2(h, query, k, ef, exact, 0, hits, n_hits);
}

/* O(1): the tiering policy sums these over every collection. */
void akidb__hnsw_memory_parts(const akidb__hnsw *h, akidb__hnsw_bytes *out)
{
    size_t rows = (size_t)h->n_chunks * (h->chunk_vec_bytes + 64);
    size_t links = (size_t)h->n_chunks * (h->chunk_bytes - h->chunk_vec_bytes);
    size_t graph = sizeof *h + links + (size_t)h->node_cap * (2 + sizeof(uint32_t *)) +
                   (size_t)h->chunks_cap * sizeof(void *) * (h->exact ? 2 : 1) +
                   (size_t)h->level_sum * (1 + h->m) * sizeof(uint32_t);
    size_t exact = 0, compact = 0;
    if (h->storage == AKIDB__STORAGE_F32) {
        exact = rows;
    } else {
        compact = rows;
        if (h->i8_offset)
            compact += 2 * (size_t)h->dim * sizeof(float);
        exact = (size_t)h->n_exact_blocks * ((size_t)h->chunk_nodes * h->dim_pad * sizeof(float) + 64);
    }
    out->exact = exact;
    out->compact = compact;
    out->graph = graph;
}

size_t akidb__hnsw_memory(const akidb__hnsw *h)
{
    akidb__hnsw_bytes b;
    akidb__hnsw_memory_parts(h, &b);
    return b.exact + b.compact + b.graph;
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
    int rc = akidb__hnsw_new(cfg, alloc, NULL, out);
    if (rc == AKIDB_OK)
        (*out)->building = 1;
    return rc;
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
        const float *v = vectors + (size_t)i * h->dim;
        for (uint32_t j = 0; j < h->dim; j++)
            if (!isfinite(v[j])) {
                *why = "vector value is not finite";
                return AKIDB_CORRUPT;
            }
        store_node(h, node, v);
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
        /* a filled chunk of linked nodes may drop its exact block now, so
         * a load never holds every exact vector at once */
        if (h->exact && (node & h->chunk_mask) == h->chunk_mask)
            free_chunk_exact(h, node >> h->chunk_shift);
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
    /* every tail node needs its exact vector (chunk_needs_exact); a
     * build_set_linked after build_nodes may have dropped some */
    for (uint32_t ci = n_linked >> h->chunk_shift; h->exact && ci < h->n_chunks; ci++)
        if (!h->exact[ci]) {
            *why = "a node waiting to be linked lost its exact vector";
            return AKIDB_INVALID;
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
    h->building = 0;
    /* int8 saved untrained past the point where linking trains (a file
     * without the parameters) trains now, on the same nodes as linking
     * did: the codes come out the same. */
    if (h->storage == AKIDB__STORAGE_INT8 && !h->trained && n_linked > h->train_rows)
        train_now(h, h->train_rows);
    free_unneeded_exact(h);
    return AKIDB_OK;
}
