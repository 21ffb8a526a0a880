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
 *
 * Compact vectors (the f16 and int8 storage kinds, see quant.h) have
 * kernels of their own:
 *
 *   f16   IEEE 754 binary16 values held in uint16_t.  l2sq_f16 and
 *         dot_f16 convert to float and accumulate in float, so they agree
 *         with the f32 kernels applied to the converted values up to
 *         summation order, except the NEON fp16 flavours, which subtract
 *         in half precision (relative error <= 2^-10 on l2sq; see
 *         distance.c).
 *   int8  codes of one byte per dimension.  A stored code is a u8 in
 *         offset binary (c = q + 128 for the signed level q in
 *         [-128, 127]); a prepared query is the signed level q itself.
 *           dot_u8s8(c, q) = sum(c[i] * q[i])              (stored x query)
 *           dot_u8u8(a, b) = sum((a[i]-128) * (b[i]-128))  (stored x stored)
 *         Both are exact integers: every flavour returns the same value
 *         bit for bit, and |result| < 2^31 for dim <= AKIDB_MAX_DIM
 *         (255 * 128 * 4096 < 2^27).  The index turns them into squared
 *         L2 through stored norms (|a-b|^2 = |a|^2 + |b|^2 - 2 a.b, exact
 *         in integers), so the hot loop is one multiply-accumulate per
 *         byte: VPDPBUSD on AVX-512 VNNI / AVX-VNNI, SDOT on ARMv8.2.
 *         Padding bytes must be 128 in stored codes (level 0) and 0 in
 *         queries, so they add nothing.
 */
#ifndef AKIDB_DISTANCE_H
#define AKIDB_DISTANCE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AKIDB__DIM_PAD 16

typedef float (*akidb__dist_fn)(const float *a, const float *b, size_t dim);
typedef float (*akidb__dist_f16_fn)(const uint16_t *a, const uint16_t *b, size_t dim);
typedef int32_t (*akidb__dot_u8s8_fn)(const uint8_t *a, const int8_t *b, size_t dim);
typedef int32_t (*akidb__dot_u8u8_fn)(const uint8_t *a, const uint8_t *b, size_t dim);

typedef struct akidb__kernels {
    const char *name;        /* "scalar", "avx2", "avx512", "neon", ... */
    akidb__dist_fn l2sq;
    akidb__dist_fn dot;
    akidb__dist_f16_fn l2sq_f16;
    akidb__dist_f16_fn dot_f16;
    akidb__dot_u8s8_fn dot_u8s8;
    akidb__dot_u8u8_fn dot_u8u8;
} akidb__kernels;

/* Each returns NULL when the running CPU (or the build) lacks the ISA.
 * A set fills every function: where its ISA adds nothing for one (AVX-512
 * VNNI for floats, say) it reuses the next lower set's function.
 *   avx2         AVX2 + FMA + F16C
 *   avx2_vnni    avx2 + AVX-VNNI (VEX VPDPBUSD: Alder Lake, Zen 5)
 *   avx512       AVX-512 F + BW + VL (every AVX-512 CPU since Skylake-SP)
 *   avx512_vnni  avx512 + AVX512_VNNI
 *   neon         ARMv8.0 Advanced SIMD
 *   neon_dotprod neon + SDOT (FEAT_DotProd, ARMv8.2)
 *   neon_fp16    neon + half-precision arithmetic (FEAT_FP16) for f16,
 *                with FMLAL (FEAT_FHM) when the CPU has it too */
const akidb__kernels *akidb__kernels_scalar(void);
const akidb__kernels *akidb__kernels_avx2(void);
const akidb__kernels *akidb__kernels_avx2_vnni(void);
const akidb__kernels *akidb__kernels_avx512(void);
const akidb__kernels *akidb__kernels_avx512_vnni(void);
const akidb__kernels *akidb__kernels_neon(void);
const akidb__kernels *akidb__kernels_neon_dotprod(void);
const akidb__kernels *akidb__kernels_neon_fp16(void);

/* Every set above this CPU supports (scalar first), for tests and tools;
 * returns how many (at most 8) were written to out. */
size_t akidb__kernels_all(const akidb__kernels *out[8]);

/* The fastest kernels this CPU supports, function by function (so the
 * table may combine sets; its name says which, e.g.
 * "avx512+avx512_vnni").  Chosen once; thread safe.  The environment is
 * never read here (lib/ reads no environment); tests pick sets explicitly. */
const akidb__kernels *akidb__kernels_best(void);

/* ---- binary16 conversion (portable; exact in the f16 -> f32 direction) -- */

static inline float akidb__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);          /* inf, NaN */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);  /* normal */
    } else if (man == 0) {
        bits = sign;                                       /* +-0 */
    } else {                                               /* subnormal */
        exp = 113;
        while (!(man & 0x400u)) {
            man <<= 1;
            exp--;
        }
        bits = sign | (exp << 23) | ((man & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Round to nearest even.  Finite values beyond the binary16 range become
 * +-inf: callers that must not see inf clamp first (quant.c does). */
static inline uint16_t akidb__f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u)                                 /* inf, NaN */
        return (uint16_t)(sign | 0x7C00u | (ax > 0x7F800000u ? 0x200u : 0));
    if (ax >= 0x477FF000u)                                 /* rounds past 65504 */
        return (uint16_t)(sign | 0x7C00u);
    if (ax < 0x38800000u) {                                /* subnormal or zero */
        if (ax < 0x33000000u)                              /* below half the smallest */
            return (uint16_t)sign;
        uint32_t man = (ax & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126 - (ax >> 23);                 /* 14..24 */
        uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ax - 0x38000000u;                         /* rebias 127 -> 15 */
    uint32_t q = r >> 13, rem = r & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1)))
        q++;                                               /* may carry into exp: fine */
    return (uint16_t)(sign | q);
}

#endif
