/*
 * quant_common.h - what every side of the quantized-storage benchmark
 * (issue 16) shares: the prepared data files, float ground truth, recall,
 * the int8 quantiser AkiDB uses, and the RESULT lines.
 *
 * One program (quant_prep) writes each data set once into the build
 * directory as plain files: base vectors, query vectors and the exact
 * top-k.  Every side (bench_quant for AkiDB, hnswlib_quant_peer,
 * usearch_quant_peer) reads those files through this code and is scored
 * by this code, so data and scoring are byte-for-byte the same for all.
 *
 * Distances for scoring are squared L2 computed in double from the float
 * values, always by quant_l2 (the same function for the ground truth and
 * for scoring), so a returned vector ties a true neighbour exactly when the
 * two distances are equal.  On Fashion-MNIST (integer pixels) the double
 * sums are exact integers.
 *
 * File layouts (host byte order: a cache is only read on the machine that
 * wrote it):
 *   vectors  char magic[8] "AKQV01\0\0"; uint32 n, dim; float v[n*dim]
 *   truth    char magic[8] "AKQG01\0\0"; uint32 n_base, nq, dim, k;
 *            uint64 checksum (quant_checksum of base ^ of queries);
 *            uint32 ids[nq*k]; double dist[nq*k]   (closest first)
 */
#ifndef QUANT_COMMON_H
#define QUANT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QUANT_K 10
#define QUANT_NO_ROW UINT32_MAX

/* A set of float vectors (malloc'd; quant_vectors_free). */
typedef struct quant_vectors {
    uint32_t n, dim;
    float *v;
} quant_vectors;

/* Read/write a vectors file.  Return 0, or -1 after printing why. */
int quant_vectors_read(const char *path, quant_vectors *out);
int quant_vectors_write(const char *path, const quant_vectors *vs);
void quant_vectors_free(quant_vectors *vs);

/* FNV-1a over the raw bytes of the floats. */
uint64_t quant_checksum(const quant_vectors *vs);

/* Exact top-k: ids (rows of the base) and distances, closest first. */
typedef struct quant_truth {
    uint32_t n_base, nq, dim, k;
    uint64_t checksum;
    uint32_t *ids;
    double *dist;
} quant_truth;

int quant_truth_alloc(quant_truth *gt, uint32_t n_base, uint32_t nq, uint32_t dim, uint32_t k);
void quant_truth_free(quant_truth *gt);
/* Load and check against base and queries (sizes and checksum); returns 0,
 * or -1 when missing or stale (quietly) or corrupt (with a message). */
int quant_truth_read(const char *path, const quant_vectors *base, const quant_vectors *queries,
                     quant_truth *gt);
int quant_truth_write(const char *path, const quant_truth *gt);
/* Brute force: every query against every base row, in double. */
void quant_truth_brute(quant_truth *gt, const quant_vectors *base, const quant_vectors *queries);

/* Squared L2 in double. */
double quant_l2(const float *a, const float *b, uint32_t dim);

/* recall@k of result rows (nq*k; QUANT_NO_ROW where fewer came back).
 * Tie-aware (the ann-benchmarks rule, as bench_recall): a returned row
 * counts when its distance is <= the k-th true distance; a row returned
 * twice counts once.  *recall_ids (may be NULL): plain id overlap. */
double quant_recall(const quant_truth *gt, const quant_vectors *base,
                    const quant_vectors *queries, const uint32_t *rows, double *recall_ids);

/* The int8 quantiser of AkiDB's int8 storage (lib/index/quant.c on the
 * quant branch, akidb__i8_train/encode), reproduced here to feed usearch
 * the same codes: per dimension the centre of [min, max] over the base
 * plus half a step, one scale for all dimensions = widest range / 255,
 * q = round-to-nearest-even((x - offset[d]) / scale) clamped to
 * [-128, 127]. */
typedef struct quant_i8 {
    uint32_t dim;
    float scale;
    float *offset; /* dim */
} quant_i8;

int quant_i8_train(quant_i8 *q, const quant_vectors *base);
void quant_i8_free(quant_i8 *q);
/* Encode one vector; returns how many values were clipped. */
uint32_t quant_i8_encode(const quant_i8 *q, const float *x, int8_t *out);

/* Time and memory, as bench_common (kept separate so this file does not
 * drag in the Fashion-MNIST loader's integer scoring). */
double quant_now(void);
double quant_cpu_now(void);
int quant_rss_kb(long *rss_kb, long *hwm_kb);
/* The same after malloc_trim(0): freed heap memory that glibc still holds
 * (build-time scratch, buffers of inserts already applied) is returned
 * to the system first, so the figure is what the index keeps.  Every side
 * measures this way; the raw VmRSS is reported next to it. */
int quant_rss_settled_kb(long *rss_kb, long *hwm_kb);

/* Parse "16,32,64" into up to max values; returns the count (0 on error). */
int quant_parse_list(const char *s, uint32_t *out, int max);

/* Common options of the three measuring programs. */
#define QUANT_MAX_EFS 32
typedef struct quant_opts {
    const char *data_dir;  /* --data: where quant_prep wrote the files */
    const char *set;       /* --set: the set's file stem */
    uint32_t passes;       /* --passes: timed passes per ef (best kept) */
    uint32_t efs[QUANT_MAX_EFS];
    int n_efs;
} quant_opts;

/* A loaded data set: base, queries and the truth, by stem. */
typedef struct quant_set {
    const char *name; /* the stem, borrowed from the caller */
    quant_vectors base, queries;
    quant_truth gt;
} quant_set;

int quant_set_load(const char *data_dir, const char *set, quant_set *s);
void quant_set_free(quant_set *s);

/* One ef's timing: run `search` over all queries `passes` times, keep the
 * fastest pass; then score the rows it wrote.  The first call of a
 * process runs one more, untimed, pass first (warm-up).  search(ctx, q, rows) fills
 * QUANT_K rows for query q and returns 0, or -1 to abort. */
typedef int (*quant_search_fn)(void *ctx, uint32_t q, uint32_t *rows);
int quant_measure_ef(const char *impl, const quant_set *s, uint32_t ef, uint32_t passes,
                     quant_search_fn search, void *ctx, uint32_t *rows_scratch);

#ifdef __cplusplus
}
#endif

#endif
