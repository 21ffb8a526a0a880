/*
 * distance.h - distance kernels: scalar, AVX2, AVX-512 (x86-64) and NEON
 * (aarch64), chosen once at run time.
 *
 * Two primitives cover all three metrics, because stored vectors are
 * prepared at insert time:
 *   L2      l2sq(a, b)  = sum((a[i]-b[i])^2)
 *   COSINE  1 - dot(a, b) on unit vectors (normalised on insert)
 *   DOT     -dot(a, b)
 * Kernels accept any dim >= 1 and unaligned pointers; the index pads its
 * vectors to a multiple of AKIDB__DIM_PAD floats with zeros (which changes
 * neither primitive) so the residual loop never runs on the hot path.
 */
#ifndef AKIDB_DISTANCE_H
#define AKIDB_DISTANCE_H

#include <stddef.h>

#define AKIDB__DIM_PAD 16

typedef float (*akidb__dist_fn)(const float *a, const float *b, size_t dim);

typedef struct akidb__kernels {
    const char *name;        /* "scalar", "avx2", "avx512", "neon" */
    akidb__dist_fn l2sq;
    akidb__dist_fn dot;
} akidb__kernels;

/* Each returns NULL when the running CPU (or the build) lacks the ISA. */
const akidb__kernels *akidb__kernels_scalar(void);
const akidb__kernels *akidb__kernels_avx2(void);
const akidb__kernels *akidb__kernels_avx512(void);
const akidb__kernels *akidb__kernels_neon(void);

/* The fastest kernels this CPU supports.  The environment is never read
 * here (lib/ reads no environment); tests pick variants explicitly. */
const akidb__kernels *akidb__kernels_best(void);

#endif
