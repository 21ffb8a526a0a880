/*
 * hnsw.h - the HNSW graph index (Malkov & Yashunin) over float vectors.
 *
 * The index knows nodes (0..n-1, dense, in insertion order), their vectors
 * and a deleted flag; it knows nothing of ids, names or metadata, which the
 * collection layer maps onto nodes.
 *
 * Writes follow "reserve, then append": akidb__hnsw_reserve() performs
 * every allocation (and draws the level of) the next n nodes, so
 * akidb__hnsw_append() cannot fail and a batch either fully enters the
 * index or not at all.  An appended node is in the "tail": counted,
 * searchable (scanned exactly) and deletable at once, linked into the
 * graph later by akidb__hnsw_link_next(), strictly in node order.  The
 * finished graph depends only on the appended vectors and their order.
 *
 * Storage kinds (quant.h).  An index walks its graph on one copy of each
 * vector, the "walk rows":
 *   f32   the float vectors themselves (exact; the default).
 *   f16   binary16 codes: half the bytes per hop.
 *   int8  one byte per dimension (per-dimension offset, one scale):
 *         a quarter of the bytes, integer kernels.
 * With f16 or int8 the walk's distances are approximate, so a search
 * collects at least `rerank` x k candidates and re-ranks them with exact
 * float distances, read from the index's exact copy (AKIDB__EXACT_RAM),
 * from a source the caller attaches (AKIDB__EXACT_SOURCE: nodes below its
 * count are read through it, the rest are kept in RAM until the caller
 * moves the source on and drops them), or not at all (AKIDB__EXACT_NONE:
 * the returned distances of linked nodes are the walk's, approximate,
 * and vectors read back are the decoded codes).
 *
 * The tail works the same for every kind: a tail node keeps its exact
 * vector in RAM until it is linked (whatever the mode), the tail is
 * scanned on those exact vectors, and linking walks the compact rows.
 *
 * int8 training: the first `train_rows` nodes are linked on their exact
 * vectors (kept in RAM whatever the mode); before the next node is
 * linked, the quantiser is trained on exactly those nodes and every node
 * (tail included) is encoded; from then on the walk runs on codes.  The
 * point is fixed in the linking order, so the graph still depends only on
 * the appended vectors.  akidb__hnsw_retrain() trains again on the exact
 * vectors (all, or an even sample) and re-encodes every node, for when
 * values have drifted off the grid (akidb__hnsw_quant_stats counts them).
 *
 * Threading: the caller serializes writes (reserve, append, link_next,
 * mark_deleted, retrain, set_exact_source, drop_exact) against everything
 * else; searches may run concurrently with each other.
 */
#ifndef AKIDB_HNSW_H
#define AKIDB_HNSW_H

#include <stddef.h>
#include <stdint.h>
#include "akidb.h"
#include "index/quant.h"

typedef struct akidb__hnsw akidb__hnsw;

/* The distance the index ranks by. */
typedef enum akidb__hnsw_space {
    AKIDB__SPACE_L2 = 1,  /* squared L2 */
    AKIDB__SPACE_IP = 2   /* 1 - dot: cosine on unit vectors (DOT uses -dot, see below) */
} akidb__hnsw_space;

/* Where the exact vectors of a compact index live. */
typedef enum akidb__exact_mode {
    AKIDB__EXACT_RAM = 0,     /* a float copy of every node in RAM */
    AKIDB__EXACT_SOURCE = 1,  /* read through akidb__hnsw_set_exact_source */
    AKIDB__EXACT_NONE = 2     /* nowhere: approximate distances */
} akidb__exact_mode;

/* Default of akidb__hnsw_config.rerank and .train_rows (0 selects them).
 * rerank 2, measured (clustered float sets, 30k x 96 and 20k x 256, M 16,
 * k 10): int8 re-ranking 1 x k stays ~0.03 below f32 recall at any ef
 * (the grid reorders close neighbours), 2 x k matches f32 within 0.001 at
 * the same ef (32, 64, 128), and 3 or 4 x k add nothing at ef >= 40 but
 * cost 5-25% QPS (4 raises the walk below ef 40). */
#define AKIDB__RERANK_DEFAULT 2
#define AKIDB__TRAIN_ROWS_DEFAULT 4096

typedef struct akidb__hnsw_config {
    uint32_t dim;
    akidb__hnsw_space space;
    int negate_dot;           /* IP space: distance = -dot instead of 1 - dot */
    uint32_t m;               /* 2..128 */
    uint32_t ef_construction; /* >= 1 */
    uint64_t seed;            /* level generator seed */
    /* Compact storage (all zero: float vectors, as before). */
    akidb__storage storage;   /* 0 = AKIDB__STORAGE_F32 */
    akidb__exact_mode exact;  /* ignored for f32 */
    uint32_t rerank;          /* candidates re-ranked per search = rerank x k; 0 = default */
    uint32_t train_rows;      /* int8: nodes walked exactly before training; 0 = default */
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

/* Append one vector (dim floats, finite, already normalised for cosine)
 * to the tail; returns its node number.  Requires a prior reserve
 * covering it.  Costs a copy: no distance is computed. */
uint32_t akidb__hnsw_append(akidb__hnsw *h, const float *vec);

/* Link the oldest tail node (node akidb__hnsw_linked()) into the graph;
 * a no-op when the tail is empty.  Cannot fail (reserve sized the
 * scratch).  Tombstoned nodes are linked too: they keep the graph
 * navigable, and skipping them would make the graph depend on when a
 * delete happened relative to the linking. */
void akidb__hnsw_link_next(akidb__hnsw *h);

/* Nodes [0, linked) are in the graph; [linked, size) are the tail. */
uint32_t akidb__hnsw_linked(const akidb__hnsw *h);

/* append, then link every tail node: the one-step insert. */
uint32_t akidb__hnsw_add(akidb__hnsw *h, const float *vec);

/* Tombstone a node: it stays in the graph for navigation but never appears
 * in results. */
void akidb__hnsw_mark_deleted(akidb__hnsw *h, uint32_t node);
int akidb__hnsw_is_deleted(const akidb__hnsw *h, uint32_t node);

uint32_t akidb__hnsw_size(const akidb__hnsw *h);       /* nodes incl. deleted */
uint32_t akidb__hnsw_live(const akidb__hnsw *h);       /* nodes not deleted */

/* The float vector of a node where the index holds one in RAM (f32
 * storage, or an exact copy), else NULL: use akidb__hnsw_vector_copy. */
const float *akidb__hnsw_vector(const akidb__hnsw *h, uint32_t node);

/* Copy node's vector (dim floats) to out: the exact one where the index
 * has it (RAM or source), else the decoded walk row; *exact_out (may be
 * NULL) says which.  AKIDB_OK, or the source's error (AKIDB_IOERR...). */
int akidb__hnsw_vector_copy(const akidb__hnsw *h, uint32_t node, float *out, int *exact_out);

/* Distance between the query and a stored node, in the index's space,
 * on the float vector where the index holds one in RAM, else on the walk
 * rows (the query is encoded first). */
float akidb__hnsw_distance(const akidb__hnsw *h, const float *query, uint32_t node);

/* Distance between two stored nodes on the walk rows (what the graph's
 * construction compares). */
float akidb__hnsw_node_distance(const akidb__hnsw *h, uint32_t a, uint32_t b);

/* k nearest live nodes to `query` (dim floats), closest first.
 *   ef     candidate list size (the search uses max(ef, k)).
 *   exact  non-zero: brute-force scan instead of the graph (on the exact
 *          vectors; on the walk rows for nodes without one).
 * A graph search also scans the tail exactly and merges it in, so every
 * appended node can be found whether it is linked or not.
 * Writes up to k hits into `hits` and their number into *n_hits.
 * Compact storage re-ranks the walk's best cfg.rerank x k candidates
 * (akidb__hnsw_search2: `rerank` x k; 0 = the config's) on exact
 * vectors, so the distances returned are exact unless the index has no
 * exact vectors (AKIDB__EXACT_NONE after training).
 * Returns AKIDB_OK, AKIDB_NOMEM, or an exact source's error.  Safe to
 * call concurrently. */
int akidb__hnsw_search(akidb__hnsw *h, const float *query, uint32_t k, uint32_t ef,
                       int exact, akidb__hnsw_hit *hits, uint32_t *n_hits);
int akidb__hnsw_search2(akidb__hnsw *h, const float *query, uint32_t k, uint32_t ef,
                        int exact, uint32_t rerank, akidb__hnsw_hit *hits, uint32_t *n_hits);

/* ---- compact storage ----------------------------------------------- */

/* A reader of exact vectors: read(ctx, node, out) writes dim floats and
 * returns AKIDB_OK or an error code (raised with akidb__err).  Called
 * concurrently by searches.
 *
 * read_cached and will_need are optional, offered both or neither
 * (NULL: not offered).  read_cached reads as read does when that needs
 * no wait for the disk, and otherwise returns AKIDB__EXACT_WOULD_BLOCK,
 * raising nothing (read then reads, or reports the error).  will_need(ctx, node)
 * is a hint that node is read soon: the source starts fetching it.  A
 * re-rank reads through read_cached until a read would block, then hints
 * the candidates after it before it waits, so their disk reads overlap
 * instead of following one another (2.5-3.7x the QPS with a cold page
 * cache, docs/BENCHMARKS.md); a warm cache costs nothing more. */
#define AKIDB__EXACT_WOULD_BLOCK (-1)
typedef struct akidb__exact_source {
    int (*read)(void *ctx, uint32_t node, float *out);
    void *ctx;
    uint32_t n_nodes;         /* nodes [0, n_nodes) are read through it */
    int (*read_cached)(void *ctx, uint32_t node, float *out);
    void (*will_need)(void *ctx, uint32_t node);
} akidb__exact_source;

/* int8 L2 and cosine re-rank with a bound (see rerank_walk in hnsw.c):
 * a candidate whose grid distance, less its and the query's quantisation
 * residuals, is already beyond the k-th exact distance is not read, so
 * the answer is the one re-ranking every candidate gives, from fewer
 * exact vectors.  on = 0 re-ranks every candidate (tests compare the
 * two); not safe while the index is searched. */
void akidb__hnsw_set_rerank_bound(akidb__hnsw *h, int on);

/* AKIDB__EXACT_SOURCE: attach (or, with NULL, detach) the source.  Nodes
 * it covers stop being copied to RAM when added (build_nodes included);
 * copies already in RAM stay until akidb__hnsw_drop_exact. */
void akidb__hnsw_set_exact_source(akidb__hnsw *h, const akidb__exact_source *src);
/* Free the RAM copies the source covers (whole chunks of nodes). */
void akidb__hnsw_drop_exact(akidb__hnsw *h);

/* int8: whether the quantiser is trained, and its parameters (borrowed
 * until the next write); NULL when untrained or not int8. */
int akidb__hnsw_i8_params(const akidb__hnsw *h, akidb__i8_params *out);
/* int8: install trained parameters (from a saved file) before the first
 * node is added or built.  AKIDB_INVALID when they are not usable, or
 * the index is not int8, or not empty. */
int akidb__hnsw_set_i8_params(akidb__hnsw *h, const float *offset, float scale);

/* Train the int8 quantiser again on the exact vectors (every node when
 * there are at most `sample` of them, an even sample otherwise; 0 = all)
 * and re-encode every node.  The graph is kept.  AKIDB_OK; AKIDB_INVALID
 * when the index is not int8 or has no exact vectors for every node;
 * AKIDB_NOMEM; a source's error. */
int akidb__hnsw_retrain(akidb__hnsw *h, uint32_t sample);

typedef struct akidb__hnsw_quant_stats {
    uint64_t values_encoded;  /* stored values encoded since training */
    uint64_t values_clipped;  /* of those, clamped to the grid's ends */
    uint64_t clipped_total;   /* every value clamped since the index was made */
    uint64_t trainings;       /* int8: times trained (incl. the first) */
} akidb__hnsw_quant_stats;
void akidb__hnsw_quant_stats_get(const akidb__hnsw *h, akidb__hnsw_quant_stats *out);

/* Bytes of memory by component. */
typedef struct akidb__hnsw_bytes {
    size_t exact;             /* float vectors (f32 walk rows, or exact copies) */
    size_t compact;           /* f16/int8 walk rows, quantiser parameters */
    size_t graph;             /* links, levels, flags, search contexts */
} akidb__hnsw_bytes;
void akidb__hnsw_memory_parts(const akidb__hnsw *h, akidb__hnsw_bytes *out);

/* ---- the saved graph (snapshots and checkpoints; snapshot.c) ----------
 * The caller holds the collection lock, so the graph does not change. */
int akidb__hnsw_level(const akidb__hnsw *h, uint32_t node);
/* The links of node at level (0..level(node)); *count_out entries. */
const uint32_t *akidb__hnsw_links(const akidb__hnsw *h, uint32_t node, int level,
                                  uint32_t *count_out);
uint32_t akidb__hnsw_entry(const akidb__hnsw *h);   /* valid when size > 0 */

/* The level of a node is drawn when it is reserved, so a tail node has
 * one too (and no links at any level). */

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
 * A saved index may have a tail: akidb__hnsw_build_set_linked(h, n_linked)
 * says that nodes [n_linked, size) are not linked yet.  Call it before the
 * first build_nodes: then a compact index without exact vectors drops
 * each full chunk's exact block as it is built, instead of holding every
 * exact vector until build_end.
 * build_end then checks that they have no links and that no link points
 * at them, and that `entry` is a linked node; without the call every node
 * is linked (what every file written before the tail existed holds).
 *
 * A compact index: the vectors given are encoded as append would (int8
 * with akidb__hnsw_set_i8_params called after build_begin, or trained in
 * build_end on the first train_rows nodes when more are linked and no
 * parameters were given), so codes and graph equal the saved index's.
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
void akidb__hnsw_build_set_linked(akidb__hnsw *h, uint32_t n_linked);
int akidb__hnsw_build_end(akidb__hnsw *h, uint32_t entry, const akidb__hnsw_rng *rng,
                          const char **why);

/* Bytes of memory the index holds (the sum of akidb__hnsw_memory_parts). */
size_t akidb__hnsw_memory(const akidb__hnsw *h);

#endif
