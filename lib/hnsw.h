/*
 * hnsw.h - the HNSW graph index (Malkov & Yashunin) over float vectors.
 *
 * The index knows nodes (0..n-1, dense, in insertion order), their vectors
 * and a deleted flag; it knows nothing of ids, names or metadata, which the
 * collection layer maps onto nodes.
 *
 * Writes follow "reserve, then add": akidb__hnsw_reserve() performs every
 * allocation the next n adds will need, so akidb__hnsw_add() cannot fail
 * and a batch either fully enters the index or not at all.
 *
 * Threading: the caller serializes writes (reserve, add, mark_deleted)
 * against everything else; searches may run concurrently with each other.
 */
#ifndef AKIDB_HNSW_H
#define AKIDB_HNSW_H

#include <stdint.h>
#include "akidb.h"

typedef struct akidb__hnsw akidb__hnsw;

/* The distance the index ranks by. */
typedef enum akidb__hnsw_space {
    AKIDB__SPACE_L2 = 1,  /* squared L2 */
    AKIDB__SPACE_IP = 2   /* 1 - dot: cosine on unit vectors (DOT uses -dot, see below) */
} akidb__hnsw_space;

typedef struct akidb__hnsw_config {
    uint32_t dim;
    akidb__hnsw_space space;
    int negate_dot;           /* IP space: distance = -dot instead of 1 - dot */
    uint32_t m;               /* 2..128 */
    uint32_t ef_construction; /* >= 1 */
    uint64_t seed;            /* level generator seed */
} akidb__hnsw_config;

typedef struct akidb__hnsw_hit {
    uint32_t node;
    float distance;
} akidb__hnsw_hit;

/* Create an empty index; kernels NULL = akidb__kernels_best().  The
 * allocator pointer is borrowed for the index's lifetime.
 * Returns AKIDB_OK, AKIDB_INVALID (bad config), AKIDB_NOMEM. */
struct akidb__kernels;
int akidb__hnsw_new(const akidb__hnsw_config *cfg, const akidb_allocator *alloc,
                    const struct akidb__kernels *kernels, akidb__hnsw **out);
void akidb__hnsw_free(akidb__hnsw *h);

/* Allocate everything the next n_more adds need.  AKIDB_OK or AKIDB_NOMEM
 * (then the index is unchanged and still usable). */
int akidb__hnsw_reserve(akidb__hnsw *h, uint32_t n_more);

/* Add one vector (dim floats, finite, already normalised for cosine);
 * returns its node number.  Requires a prior reserve covering it. */
uint32_t akidb__hnsw_add(akidb__hnsw *h, const float *vec);

/* Tombstone a node: it stays in the graph for navigation but never appears
 * in results. */
void akidb__hnsw_mark_deleted(akidb__hnsw *h, uint32_t node);
int akidb__hnsw_is_deleted(const akidb__hnsw *h, uint32_t node);

uint32_t akidb__hnsw_size(const akidb__hnsw *h);       /* nodes incl. deleted */
uint32_t akidb__hnsw_live(const akidb__hnsw *h);       /* nodes not deleted */
const float *akidb__hnsw_vector(const akidb__hnsw *h, uint32_t node);

/* Distance between the query and a stored node, in the index's space. */
float akidb__hnsw_distance(const akidb__hnsw *h, const float *query, uint32_t node);

/* k nearest live nodes to `query` (dim floats), closest first.
 *   ef     candidate list size (the search uses max(ef, k)).
 *   exact  non-zero: brute-force scan instead of the graph.
 * Writes up to k hits into `hits` and their number into *n_hits.
 * Returns AKIDB_OK or AKIDB_NOMEM.  Safe to call concurrently. */
int akidb__hnsw_search(akidb__hnsw *h, const float *query, uint32_t k, uint32_t ef,
                       int exact, akidb__hnsw_hit *hits, uint32_t *n_hits);

/* Stream callbacks for save/load: return AKIDB_OK, or an error code that
 * aborts the operation and is passed back unchanged. */
typedef int (*akidb__write_fn)(void *ctx, const void *buf, size_t len);
typedef int (*akidb__read_fn)(void *ctx, void *buf, size_t len);

/* Write the whole index (vectors, levels, tombstones, links, generator
 * state) as a flat little-endian image. */
int akidb__hnsw_save(const akidb__hnsw *h, akidb__write_fn write, void *ctx);

/* Read an image written by akidb__hnsw_save into a new index built for
 * cfg.  `avail` bounds the image size (the bytes left in the file), so a
 * damaged count cannot make us allocate without limit.  Every count, level,
 * link and value is checked: a bad image gives AKIDB_CORRUPT with *why set
 * to a static description.  Also AKIDB_NOMEM, or the reader's error. */
int akidb__hnsw_load(const akidb__hnsw_config *cfg, const akidb_allocator *alloc,
                     const struct akidb__kernels *kernels, akidb__read_fn read, void *ctx,
                     uint64_t avail, akidb__hnsw **out, const char **why);

/* Graph accessors for snapshots (caller holds the collection lock). */
int akidb__hnsw_level(const akidb__hnsw *h, uint32_t node);
/* The links of node at level (0..level(node)); *count_out entries. */
const uint32_t *akidb__hnsw_links(const akidb__hnsw *h, uint32_t node, int level,
                                  uint32_t *count_out);
uint32_t akidb__hnsw_entry(const akidb__hnsw *h);   /* valid when size > 0 */

/* Build an index directly from saved parts (a snapshot), with the same
 * checks as akidb__hnsw_load:
 *   vectors  n * dim floats, row-major
 *   levels   n levels
 *   links    for node i: links[link_off[i] .. link_off[i+1]), laid out as
 *            level 0 (count, then that many links), then level 1, ... up
 *            to levels[i], each as (count, links...)
 * No tombstones: every node is live.  entry must have level max_level. */
int akidb__hnsw_build(const akidb__hnsw_config *cfg, const akidb_allocator *alloc,
                      uint32_t n, const float *vectors, const int32_t *levels,
                      const int32_t *links, const uint64_t *link_off, uint32_t entry,
                      akidb__hnsw **out, const char **why);

/* Bytes of memory the index holds (vectors, links, search contexts). */
size_t akidb__hnsw_memory(const akidb__hnsw *h);

#endif
