/*
 * quant.c - f16 and int8 encodings of float vectors (quant.h).
 *
 * Everything here is plain C on one vector at a time: encoding runs once
 * per insert and per query, next to hundreds of distance computations, so
 * it is not worth SIMD.  Results are the same on every platform: the
 * arithmetic is IEEE single precision without contraction (the build is
 * ISO C, where GCC does not fuse a*b+c), and rounding is lrintf's round to
 * nearest even in the default rounding mode.
 */
#include <math.h>

#include "index/distance.h"
#include "index/quant.h"

uint32_t akidb__f16_encode(const float *x, uint32_t dim, uint16_t *out)
{
    uint32_t clipped = 0;
    for (uint32_t i = 0; i < dim; i++) {
        float v = x[i];
        if (v > AKIDB__F16_MAX) {
            v = AKIDB__F16_MAX;
            clipped++;
        } else if (v < -AKIDB__F16_MAX) {
            v = -AKIDB__F16_MAX;
            clipped++;
        }
        out[i] = akidb__f32_to_f16(v);
    }
    return clipped;
}

void akidb__f16_decode(const uint16_t *h, uint32_t dim, float *out)
{
    for (uint32_t i = 0; i < dim; i++)
        out[i] = akidb__f16_to_f32(h[i]);
}

void akidb__i8_train(uint32_t dim, uint32_t n, const float *(*row)(void *ctx, uint32_t i),
                     void *ctx, float *offset, float *scale, float *scratch)
{
    /* One pass: offset[] collects the minima, scratch[] the maxima. */
    const float *r0 = row(ctx, 0);
    for (uint32_t d = 0; d < dim; d++)
        offset[d] = scratch[d] = r0[d];
    for (uint32_t i = 1; i < n; i++) {
        const float *r = row(ctx, i);
        for (uint32_t d = 0; d < dim; d++) {
            if (r[d] < offset[d])
                offset[d] = r[d];
            if (r[d] > scratch[d])
                scratch[d] = r[d];
        }
    }
    float widest = 0.0f, biggest = 0.0f;
    for (uint32_t d = 0; d < dim; d++) {
        float range = scratch[d] - offset[d];
        if (range > widest)
            widest = range;
        if (fabsf(scratch[d]) > biggest)
            biggest = fabsf(scratch[d]);
        if (fabsf(offset[d]) > biggest)
            biggest = fabsf(offset[d]);
        /* the centre of [min, max] */
        offset[d] = offset[d] + range * 0.5f;
    }
    float s = widest / 255.0f;
    if (!(s > 0.0f) || !isfinite(s)) {
        /* every dimension constant (or a range beyond float): a tiny
         * step, so that anything else clips and is counted */
        s = biggest * (1.0f / 65536.0f);
        if (!isfinite(s))
            s = 1e19f;
        else if (!(s >= 1e-19f))
            s = 1e-19f;
    }
    /* Half a step up, so the 256 levels -128..127 sit symmetrically
     * around the centre: the minimum lands on level >= -128 and the
     * maximum on level <= 127, for the widest dimension exactly. */
    for (uint32_t d = 0; d < dim; d++)
        offset[d] += 0.5f * s;
    *scale = s;
}

int akidb__i8_params_valid(const akidb__i8_params *p)
{
    if (!(p->scale > 0.0f) || !isfinite(p->scale) || !isfinite(128.0f * p->scale))
        return 0;
    for (uint32_t d = 0; d < p->dim; d++) {
        float o = p->offset[d];
        if (!isfinite(o) || !isfinite(o + 128.0f * p->scale) || !isfinite(o - 128.0f * p->scale))
            return 0;
    }
    return 1;
}

/* The level of x on dimension d's grid, clamped; *clip set when clamped. */
static inline int level_of(const akidb__i8_params *p, uint32_t d, float x, int *clip)
{
    float v = (x - p->offset[d]) / p->scale;
    if (!(v >= -128.5f)) {
        *clip = 1;
        return -128;
    }
    if (v >= 127.5f) {
        *clip = 1;
        return 127;
    }
    *clip = 0;
    return (int)lrintf(v);
}

/* |x - grid point| from the squared differences summed in double, rounded
 * up to a float so that it never understates (the re-ranking bound in
 * hnsw.c relies on that). */
static float residual_up(double sum_sq)
{
    float r = (float)sqrt(sum_sq);
    return nextafterf(r, INFINITY);
}

/* x[d] minus its grid value, in double: its rounding is far below a
 * float's, which residual_up's one step up covers. */
static inline double grid_diff(const akidb__i8_params *p, uint32_t d, float x, int q)
{
    return (double)x - ((double)p->offset[d] + (double)p->scale * (double)q);
}

uint32_t akidb__i8_encode(const akidb__i8_params *p, const float *x, uint8_t *c,
                          int32_t *norm_out, float *lin_out, float *residual_out)
{
    uint32_t clipped = 0;
    int32_t norm = 0;
    float lin = 0.0f;
    double resid = 0.0;
    for (uint32_t d = 0; d < p->dim; d++) {
        int clip;
        int q = level_of(p, d, x[d], &clip);
        clipped += (uint32_t)clip;
        c[d] = (uint8_t)(q + 128);
        norm += q * q;
        lin += p->offset[d] * (float)q;
        double e = grid_diff(p, d, x[d], q);
        resid += e * e;
    }
    if (norm_out)
        *norm_out = norm;
    if (lin_out)
        *lin_out = lin;
    if (residual_out)
        *residual_out = residual_up(resid);
    return clipped;
}

void akidb__i8_query(const akidb__i8_params *p, const float *x, int8_t *q, int32_t *sum_out,
                     int32_t *norm_out, float *lin_out, float *residual_out)
{
    int32_t sum = 0, norm = 0;
    float lin = 0.0f;
    double resid = 0.0;
    for (uint32_t d = 0; d < p->dim; d++) {
        int clip;
        int l = level_of(p, d, x[d], &clip);
        q[d] = (int8_t)l;
        sum += l;
        norm += l * l;
        lin += p->offset[d] * (float)l;
        double e = grid_diff(p, d, x[d], l);
        resid += e * e;
    }
    *sum_out = sum;
    *norm_out = norm;
    *lin_out = lin;
    *residual_out = residual_up(resid);
}

void akidb__i8_decode(const akidb__i8_params *p, const uint8_t *c, float *out)
{
    for (uint32_t d = 0; d < p->dim; d++)
        out[d] = p->offset[d] + p->scale * (float)((int)c[d] - 128);
}
