/*
 * quant.h - the compact forms of a float vector that the index walks on:
 * binary16 ("f16") and 8-bit codes ("int8").  See quant.c.
 *
 * f16    each value rounded to the nearest binary16.  Values are clamped
 *        to +-AKIDB__F16_MAX first (and counted as clipped): that bound
 *        keeps every difference of two stored values finite in half
 *        precision, which the NEON fp16 kernels rely on.
 *
 * int8   one byte per dimension on a grid with a per-dimension offset and
 *        one scale for all dimensions:
 *            x[i] ~ offset[i] + scale * q[i],   q[i] in [-128, 127]
 *        stored as c[i] = q[i] + 128 (u8, offset binary; distance.h).  One
 *        scale, because then squared L2 on the grid is scale^2 times an
 *        integer sum (q_a - q_b)^2, which the kernels compute exactly, one
 *        multiply-accumulate per byte (a scale per dimension would need a
 *        weight per dimension inside the loop, i.e. float arithmetic on
 *        every byte).  The offsets centre each dimension's trained range,
 *        so a dimension narrower than the widest keeps headroom on both
 *        sides before it clips.  A value that falls off the grid is
 *        clamped to the nearest end and counted.
 *
 * Training (akidb__i8_train): the minimum and maximum of every dimension
 * over the rows given; scale = the widest range / 255.  The index trains
 * once, on its first train_rows (4096) nodes.  Measured on a shifted set
 * (30k x 96 floats; the first 4096 from 10 of the 100 clusters at half
 * the spread): 0.09% of later values clip, and re-ranked recall@10 equals
 * f32's (0.984 / 0.998 / 0.999 at ef 32 / 64 / 128); retraining on all
 * rows removes the clipping and leaves recall unchanged, so the first
 * batch is robust with re-ranking and nothing retrains by itself
 * (akidb__hnsw_retrain exists for a distribution that moves further).  Nothing in this
 * file allocates or locks; the index owns the parameter arrays.
 */
#ifndef AKIDB_QUANT_H
#define AKIDB_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* The storage kinds of the index (akidb_storage in akidb.h, same values). */
typedef enum akidb__storage {
    AKIDB__STORAGE_F32 = 1,
    AKIDB__STORAGE_F16 = 2,
    AKIDB__STORAGE_INT8 = 3
} akidb__storage;

/* The largest magnitude f16 storage holds: 2 * 32752 = 65504 is the
 * largest finite binary16. */
#define AKIDB__F16_MAX 32752.0f

/* x[0..dim) to binary16 in out[0..dim); returns how many values were
 * clamped to +-AKIDB__F16_MAX. */
uint32_t akidb__f16_encode(const float *x, uint32_t dim, uint16_t *out);
void akidb__f16_decode(const uint16_t *h, uint32_t dim, float *out);

/* int8 parameters: offset[dim] and scale, owned by the caller. */
typedef struct akidb__i8_params {
    uint32_t dim;
    float scale;
    const float *offset;
} akidb__i8_params;

/* Train offset[0..dim) and *scale from n >= 1 rows; row(ctx, i) returns
 * row i (dim floats, finite); scratch has room for dim floats.  A data set
 * where every dimension is constant gets a tiny positive scale, so any
 * other value clips (and is counted) rather than dividing by zero. */
void akidb__i8_train(uint32_t dim, uint32_t n, const float *(*row)(void *ctx, uint32_t i),
                     void *ctx, float *offset, float *scale, float *scratch);

/* Whether parameters read from a file are usable: scale finite and > 0,
 * every offset finite, and the whole grid (offset +- 128 scale) finite. */
int akidb__i8_params_valid(const akidb__i8_params *p);

/* Encode a stored vector: codes c[0..dim) (offset binary); returns the
 * number of values clamped.  *norm_out (may be NULL) gets sum(q^2) and
 * *lin_out (may be NULL) gets sum(offset[i] * q[i]): the terms the index
 * keeps per node for L2 and for inner products.  *residual_out (may be
 * NULL) gets |x - g|, g the grid point (offset + scale * q), clipping
 * included, rounded up: never less than the true distance, so
 * |a - b| >= |ga - gb| - residual(a) - residual(b) holds for any two
 * encoded vectors (the bound that lets the index skip re-ranking a
 * candidate whose grid distance is already too far). */
uint32_t akidb__i8_encode(const akidb__i8_params *p, const float *x, uint8_t *c,
                          int32_t *norm_out, float *lin_out, float *residual_out);

/* Prepare a query: signed levels q[0..dim), with sum(q), sum(q^2),
 * sum(offset[i] * q[i]) and the residual as akidb__i8_encode gives it.
 * Clamped like a stored vector (not counted: a query is not stored). */
void akidb__i8_query(const akidb__i8_params *p, const float *x, int8_t *q, int32_t *sum_out,
                     int32_t *norm_out, float *lin_out, float *residual_out);

/* Codes back to floats (the grid point: offset + scale * q). */
void akidb__i8_decode(const akidb__i8_params *p, const uint8_t *c, float *out);

#endif
