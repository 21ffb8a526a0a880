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

/* ---- the saved graph (snapshots and checkpoints; snapshot.c) ----------
 * The caller holds the collection lock, so the graph does not change. */
int akidb__hnsw_level(const akidb__hnsw *h, uint32_t node);
/* The links of node at level (0..level(node)); *count_out entries. */
const uint32_t *akidb__hnsw_links(const akidb__hnsw *h, uint32_t node, int level,
                                  uint32_t *count_out);
uint32_t akidb__hnsw_entry(const akidb__hnsw *h);   /* valid when size > 0 */

/* The level generator's state.  Saved with a checkpoint and given back to
 * build_end, it makes a reloaded index draw the same levels for its next
 * inserts as the original would have: recovery is then bit-identical. */
typedef struct akidb__hnsw_rng {
    uint64_t rng, dup_rng;
} akidb__hnsw_rng;
void akidb__hnsw_get_rng(const akidb__hnsw *h, akidb__hnsw_rng *out);

/*
 * Build an index from saved parts without a single distance computation,
 * a batch of nodes at a time, so a loader needs one batch of decoded
 * values beside the index and never a second copy of every vector:
 *
 *   akidb__hnsw_build_begin(cfg, alloc, &h)      an empty index
 *   akidb__hnsw_build_nodes(h, count, ...)       the next count nodes, in order
 *   akidb__hnsw_build_end(h, entry, rng, &why)   checks the whole graph
 *
 * Each batch is allocated as it comes, so memory follows the nodes given,
 * not a count read from a file.  build_nodes reads, for the i-th node of
 * the batch: vectors[i*dim .. (i+1)*dim), levels[i], deleted ? deleted[i]
 * (0 or 1) : 0, and its links links[link_off[i] .. link_off[i+1]): level 0
 * as (count, node numbers...), then level 1, ... up to levels[i].  Node
 * numbers count across all batches from 0.  build_end checks that every
 * link target exists and has the level it is linked at, and that `entry`
 * is on the top level; rng is NULL (keep the generator seeded from cfg)
 * or a saved state.  The caller checks the node count it expected
 * (akidb__hnsw_size).
 *
 * Damage gives AKIDB_CORRUPT with *why set to a static description;
 * running out of memory gives AKIDB_NOMEM; a bad cfg AKIDB_INVALID.  After
 * any error the caller frees h with akidb__hnsw_free; until build_end
 * succeeds, h must not be searched or grown.
 */
int akidb__hnsw_build_begin(const akidb__hnsw_config *cfg, const akidb_allocator *alloc,
                            akidb__hnsw **out);
int akidb__hnsw_build_nodes(akidb__hnsw *h, uint32_t count, const float *vectors,
                            const int32_t *levels, const int32_t *deleted,
                            const int32_t *links, const uint64_t *link_off, const char **why);
int akidb__hnsw_build_end(akidb__hnsw *h, uint32_t entry, const akidb__hnsw_rng *rng,
                          const char **why);

/* Bytes of memory the index holds (vectors, links, search contexts). */
size_t akidb__hnsw_memory(const akidb__hnsw *h);

#endif
