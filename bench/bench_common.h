/*
 * bench_common.h - helpers shared by the AkiDB benchmark driver
 * (bench_hnsw.c) and the hnswlib peer (hnswlib_peer.cpp): loading
 * Fashion-MNIST, the ground-truth cache, recall, timing and RSS.
 *
 * Both programs link the same object (compiled once, as C, -O2), so data
 * loading and scoring are byte-for-byte identical on both sides.
 *
 * Distances for scoring are exact: Fashion-MNIST pixels are integers 0..255,
 * so squared L2 distances are integers (at most 784 * 255^2 < 2^31) and are
 * computed in integer arithmetic.  Ties therefore compare exactly.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_K 10
#define BENCH_NO_ID UINT32_MAX

/* Wall-clock (monotonic) and process CPU time, in seconds. */
double bench_now(void);
double bench_cpu_now(void);
/* Minor page faults of the process so far (getrusage): a load's first
 * touch of fresh memory, which on some virtual machines costs more than
 * the work itself (docs/BENCHMARKS.md, snapshot restore). */
long bench_minor_faults(void);

/* Median of v[0..n) (n >= 1); v is left as it was. */
double bench_median(const double *v, int n);

/* VmRSS and VmHWM of this process in KiB (from /proc/self/status).
 * Returns 0 on success, -1 when /proc is not readable (values set to -1). */
int bench_rss_kb(long *rss_kb, long *hwm_kb);

/* Load up to max_n images of a gzip IDX3 file (decompressed through
 * `gzip -dc`, so no zlib is needed) as float32 rows of rows*cols values
 * 0..255.  Returns a malloc'd array (free()) or NULL after printing why. */
float *bench_load_idx(const char *path, uint32_t max_n, uint32_t *n_out, uint32_t *dim_out);

/* Exact squared L2 distance of two integer-valued float vectors. */
int64_t bench_l2_exact(const float *a, const float *b, uint32_t dim);

/* Brute-force k nearest rows of base[n x dim] to q (exact integer distances,
 * ties broken by the lower row), closest first. */
void bench_brute_topk(const float *base, uint32_t n, uint32_t dim, const float *q,
                      uint32_t k, uint32_t *ids, int64_t *dist);

/* A checksum of a float array, to tie the ground-truth cache to its data. */
uint64_t bench_checksum(const float *v, size_t n_floats);

/* Ground truth: for each of nq queries, the k nearest base rows and their
 * exact distances, closest first. */
typedef struct bench_gt {
    uint32_t n_base, nq, dim, k;
    uint64_t checksum;   /* bench_checksum(base) ^ bench_checksum(queries) */
    uint32_t source;     /* BENCH_GT_SRC_* */
    uint32_t *ids;       /* nq*k */
    int64_t *dist;       /* nq*k */
} bench_gt;

#define BENCH_GT_SRC_AKIDB_EXACT 1 /* AkiDB exact mode, cross-checked */
#define BENCH_GT_SRC_BRUTE       2 /* the bench's own brute-force loop */

const char *bench_gt_source_name(uint32_t source);

/* Allocate gt for nq*k entries.  Returns 0 or -1. */
int bench_gt_alloc(bench_gt *gt, uint32_t n_base, uint32_t nq, uint32_t dim, uint32_t k,
                   uint64_t checksum);
void bench_gt_free(bench_gt *gt);

/* Load a cache file; it must match n_base, nq, dim, k and checksum.
 * Returns 0, or -1 (missing or stale; gt left empty). */
int bench_gt_load(const char *path, uint32_t n_base, uint32_t nq, uint32_t dim, uint32_t k,
                  uint64_t checksum, bench_gt *gt);
/* Write atomically (temp file + rename).  Returns 0 or -1. */
int bench_gt_save(const char *path, const bench_gt *gt);

/* Brute-force ground truth for all queries (slow: nq * n * dim). */
int bench_gt_brute(bench_gt *gt, const float *base, const float *queries);

/* recall@k of result rows (nq*k, BENCH_NO_ID where fewer were returned).
 * Tie-aware (the ann-benchmarks rule): a returned row counts when its exact
 * distance is <= the k-th true distance; a row returned twice counts once.
 * *recall_ids_out (may be NULL) gets the plain id-overlap recall. */
double bench_recall(const bench_gt *gt, const float *base, const float *queries,
                    const uint32_t *result_rows, double *recall_ids_out);

/* Parse "16,32,64" into up to max values; returns the count (0 on error). */
int bench_parse_list(const char *s, uint32_t *out, int max);

#ifdef __cplusplus
}
#endif

#endif
