/*
 * distance.c - distance kernels and their run-time selection.
 *
 * Two primitives (squared L2 and dot product) in four flavours: portable
 * scalar C, AVX2+FMA and AVX-512F on x86-64 (compiled with per-function
 * target attributes, so the rest of the library needs no -mavx flags and
 * still runs on any x86-64), and NEON on aarch64 (part of the base ISA
 * there, so always available).  The best x86 flavour is picked once with
 * __builtin_cpu_supports().
 *
 * Every SIMD kernel keeps several independent accumulators: one FMA chain
 * would be bound by FMA latency (4 cycles) instead of throughput (2 per
 * cycle), which costs 2-4x on the 784-d vectors this index is tuned for.
 * The residual loop (dim not a multiple of the vector width) is scalar;
 * the index pads stored vectors so it does not run on the hot path.
 *
 * Summation order differs between flavours, so results agree with the
 * scalar kernels to float rounding (relative ~1e-6), not bit for bit.
 *
 * Compact kernels (distance.h describes the storage):
 *   f16   x86: F16C/AVX-512F convert 8 or 16 halves per instruction, then
 *         the float code path.  NEON: FCVTL widening (ARMv8.0); with
 *         FEAT_FP16 the difference a-b is taken in half precision (8
 *         lanes per instruction; exact when a and b are within a factor
 *         of two of each other, otherwise rounded to 11 bits, so l2sq is
 *         within 2^-10 relative of the float result) and, with FEAT_FHM,
 *         squared and accumulated by FMLAL straight into float lanes.
 *   int8  exact integer dot products.  AVX2/AVX-512 BW widen to 16 bits
 *         and use VPMADDWD (VPMADDUBSW would saturate on 255 * -128 * 2);
 *         the VNNI flavours use VPDPBUSD, u8 x s8 into int32, 64 bytes per
 *         instruction, which is exactly the stored x query product; for
 *         stored x stored one side is flipped to signed with an XOR and
 *         the sum of the other side (VPSADBW) corrects for it.  NEON
 *         widens with SMLAL/UMLAL; with FEAT_DotProd it flips the stored
 *         side to signed and uses SDOT, 16 bytes per instruction.
 * Integer results are the same from every flavour, bit for bit.
 */
#include "index/distance.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#  define AKIDB_X86 1
#  include <immintrin.h>
#endif
#if defined(__aarch64__)
#  include <arm_neon.h>
#  include <sys/auxv.h>
#  ifndef HWCAP_ASIMDHP
#    define HWCAP_ASIMDHP (1 << 10)
#  endif
#  ifndef HWCAP_ASIMDDP
#    define HWCAP_ASIMDDP (1 << 20)
#  endif
#  ifndef HWCAP_ASIMDFHM
#    define HWCAP_ASIMDFHM (1 << 23)
#  endif
#endif

/* ---- scalar ---------------------------------------------------------- */

static float l2sq_scalar(const float *a, const float *b, size_t dim)
{
    /* Four partial sums let the compiler keep four chains in flight. */
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
        float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
    }
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

static float dot_scalar(const float *a, const float *b, size_t dim)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3];
    }
    for (; i < dim; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float l2sq_f16_scalar(const uint16_t *a, const uint16_t *b, size_t dim)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= dim; i += 2) {
        float d0 = akidb__f16_to_f32(a[i]) - akidb__f16_to_f32(b[i]);
        float d1 = akidb__f16_to_f32(a[i + 1]) - akidb__f16_to_f32(b[i + 1]);
        s0 += d0 * d0;
        s1 += d1 * d1;
    }
    for (; i < dim; i++) {
        float d = akidb__f16_to_f32(a[i]) - akidb__f16_to_f32(b[i]);
        s0 += d * d;
    }
    return s0 + s1;
}

static float dot_f16_scalar(const uint16_t *a, const uint16_t *b, size_t dim)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= dim; i += 2) {
        s0 += akidb__f16_to_f32(a[i]) * akidb__f16_to_f32(b[i]);
        s1 += akidb__f16_to_f32(a[i + 1]) * akidb__f16_to_f32(b[i + 1]);
    }
    for (; i < dim; i++)
        s0 += akidb__f16_to_f32(a[i]) * akidb__f16_to_f32(b[i]);
    return s0 + s1;
}

static int32_t dot_u8s8_scalar(const uint8_t *a, const int8_t *b, size_t dim)
{
    int32_t s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (int32_t)a[i] * b[i];
    return s;
}

static int32_t dot_u8u8_scalar(const uint8_t *a, const uint8_t *b, size_t dim)
{
    int32_t s = 0;
    for (size_t i = 0; i < dim; i++)
        s += ((int32_t)a[i] - 128) * ((int32_t)b[i] - 128);
    return s;
}

static const akidb__kernels kernels_scalar = {
    "scalar", l2sq_scalar, dot_scalar, l2sq_f16_scalar, dot_f16_scalar,
    dot_u8s8_scalar, dot_u8u8_scalar
};

const akidb__kernels *akidb__kernels_scalar(void)
{
    return &kernels_scalar;
}

/* ---- AVX2 + FMA + F16C ----------------------------------------------- */

#ifdef AKIDB_X86
#include <cpuid.h>

/* F16C (CPUID.1:ECX[29]) and AVX-VNNI (CPUID.(7,1):EAX[4]) by hand:
 * __builtin_cpu_supports does not know them in every GCC.  Both use the
 * AVX register state, whose OS support the avx2 check already covers. */
static int x86_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

static int x86_has_avx_vnni(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 1, a, b, c, d);
    return (a >> 4) & 1;
}
#define AKIDB_AVX2 __attribute__((target("avx2,fma,f16c")))

AKIDB_AVX2 static inline float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

AKIDB_AVX2 static inline int32_t hsum256_epi32(__m256i v)
{
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 0, 3, 2)));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(x);
}

AKIDB_AVX2 static float l2sq_avx2(const float *a, const float *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= dim; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

AKIDB_AVX2 static float dot_avx2(const float *a, const float *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= dim; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < dim; i++)
        s += a[i] * b[i];
    return s;
}

#define LOAD_PH8(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))

AKIDB_AVX2 static float l2sq_f16_avx2(const uint16_t *a, const uint16_t *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256 d0 = _mm256_sub_ps(LOAD_PH8(a + i), LOAD_PH8(b + i));
        __m256 d1 = _mm256_sub_ps(LOAD_PH8(a + i + 8), LOAD_PH8(b + i + 8));
        __m256 d2 = _mm256_sub_ps(LOAD_PH8(a + i + 16), LOAD_PH8(b + i + 16));
        __m256 d3 = _mm256_sub_ps(LOAD_PH8(a + i + 24), LOAD_PH8(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= dim; i += 8) {
        __m256 d = _mm256_sub_ps(LOAD_PH8(a + i), LOAD_PH8(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < dim; i++) {
        float d = akidb__f16_to_f32(a[i]) - akidb__f16_to_f32(b[i]);
        s += d * d;
    }
    return s;
}

AKIDB_AVX2 static float dot_f16_avx2(const uint16_t *a, const uint16_t *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_fmadd_ps(LOAD_PH8(a + i), LOAD_PH8(b + i), s0);
        s1 = _mm256_fmadd_ps(LOAD_PH8(a + i + 8), LOAD_PH8(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(LOAD_PH8(a + i + 16), LOAD_PH8(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(LOAD_PH8(a + i + 24), LOAD_PH8(b + i + 24), s3);
    }
    for (; i + 8 <= dim; i += 8)
        s0 = _mm256_fmadd_ps(LOAD_PH8(a + i), LOAD_PH8(b + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < dim; i++)
        s += akidb__f16_to_f32(a[i]) * akidb__f16_to_f32(b[i]);
    return s;
}

#define LOAD_16B(p) _mm_loadu_si128((const __m128i *)(const void *)(p))

/* 16 bytes widened to 16 x i16, multiplied pairwise and summed into 8 x
 * i32 (VPMADDWD): exact, |255 * 128 * 2| fits. */
AKIDB_AVX2 static int32_t dot_u8s8_avx2(const uint8_t *a, const int8_t *b, size_t dim)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256i a0 = _mm256_cvtepu8_epi16(LOAD_16B(a + i));
        __m256i b0 = _mm256_cvtepi8_epi16(LOAD_16B(b + i));
        __m256i a1 = _mm256_cvtepu8_epi16(LOAD_16B(a + i + 16));
        __m256i b1 = _mm256_cvtepi8_epi16(LOAD_16B(b + i + 16));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(a0, b0));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(a1, b1));
    }
    for (; i + 16 <= dim; i += 16) {
        __m256i a0 = _mm256_cvtepu8_epi16(LOAD_16B(a + i));
        __m256i b0 = _mm256_cvtepi8_epi16(LOAD_16B(b + i));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(a0, b0));
    }
    int32_t s = hsum256_epi32(_mm256_add_epi32(s0, s1));
    for (; i < dim; i++)
        s += (int32_t)a[i] * b[i];
    return s;
}

AKIDB_AVX2 static int32_t dot_u8u8_avx2(const uint8_t *a, const uint8_t *b, size_t dim)
{
    const __m256i off = _mm256_set1_epi16(128);
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256i a0 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(LOAD_16B(a + i)), off);
        __m256i b0 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(LOAD_16B(b + i)), off);
        __m256i a1 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(LOAD_16B(a + i + 16)), off);
        __m256i b1 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(LOAD_16B(b + i + 16)), off);
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(a0, b0));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(a1, b1));
    }
    for (; i + 16 <= dim; i += 16) {
        __m256i a0 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(LOAD_16B(a + i)), off);
        __m256i b0 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(LOAD_16B(b + i)), off);
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(a0, b0));
    }
    int32_t s = hsum256_epi32(_mm256_add_epi32(s0, s1));
    for (; i < dim; i++)
        s += ((int32_t)a[i] - 128) * ((int32_t)b[i] - 128);
    return s;
}

static const akidb__kernels kernels_avx2 = {
    "avx2", l2sq_avx2, dot_avx2, l2sq_f16_avx2, dot_f16_avx2, dot_u8s8_avx2, dot_u8u8_avx2
};

/* ---- AVX-VNNI (VEX-encoded VPDPBUSD on 256 bits) ---------------------- */

#define AKIDB_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define LOAD_32B(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

AKIDB_AVXVNNI static int32_t dot_u8s8_avx2_vnni(const uint8_t *a, const int8_t *b, size_t dim)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        s0 = _mm256_dpbusd_avx_epi32(s0, LOAD_32B(a + i), LOAD_32B(b + i));
        s1 = _mm256_dpbusd_avx_epi32(s1, LOAD_32B(a + i + 32), LOAD_32B(b + i + 32));
    }
    for (; i + 32 <= dim; i += 32)
        s0 = _mm256_dpbusd_avx_epi32(s0, LOAD_32B(a + i), LOAD_32B(b + i));
    int32_t s = hsum256_epi32(_mm256_add_epi32(s0, s1));
    for (; i < dim; i++)
        s += (int32_t)a[i] * b[i];
    return s;
}

/* sum((a-128)(b-128)) = sum(a * (b-128)) - 128 * sum(b-128): b ^ 0x80 is
 * b - 128 as a signed byte, and VPSADBW against zero sums b. */
AKIDB_AVXVNNI static int32_t dot_u8u8_avx2_vnni(const uint8_t *a, const uint8_t *b, size_t dim)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80), zero = _mm256_setzero_si256();
    __m256i s0 = zero, s1 = zero, sb = zero;
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        __m256i b0 = LOAD_32B(b + i), b1 = LOAD_32B(b + i + 32);
        s0 = _mm256_dpbusd_avx_epi32(s0, LOAD_32B(a + i), _mm256_xor_si256(b0, flip));
        s1 = _mm256_dpbusd_avx_epi32(s1, LOAD_32B(a + i + 32), _mm256_xor_si256(b1, flip));
        sb = _mm256_add_epi64(sb, _mm256_add_epi64(_mm256_sad_epu8(b0, zero),
                                                   _mm256_sad_epu8(b1, zero)));
    }
    for (; i + 32 <= dim; i += 32) {
        __m256i b0 = LOAD_32B(b + i);
        s0 = _mm256_dpbusd_avx_epi32(s0, LOAD_32B(a + i), _mm256_xor_si256(b0, flip));
        sb = _mm256_add_epi64(sb, _mm256_sad_epu8(b0, zero));
    }
    /* sb holds 4 u64 lane sums of b; each fits easily in 32 bits. */
    int64_t sum_b = (int64_t)_mm256_extract_epi64(sb, 0) + _mm256_extract_epi64(sb, 1) +
                    _mm256_extract_epi64(sb, 2) + _mm256_extract_epi64(sb, 3);
    int32_t s = hsum256_epi32(_mm256_add_epi32(s0, s1)) - 128 * ((int32_t)sum_b - 128 * (int32_t)i);
    for (; i < dim; i++)
        s += ((int32_t)a[i] - 128) * ((int32_t)b[i] - 128);
    return s;
}

static const akidb__kernels kernels_avx2_vnni = {
    "avx2_vnni", l2sq_avx2, dot_avx2, l2sq_f16_avx2, dot_f16_avx2,
    dot_u8s8_avx2_vnni, dot_u8u8_avx2_vnni
};

/* ---- AVX-512 F + BW + VL --------------------------------------------------- */

#define AKIDB_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

AKIDB_AVX512 static float l2sq_avx512(const float *a, const float *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= dim; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < dim) {
        /* A masked load handles the tail without reading past the end. */
        __mmask16 m = (__mmask16)((1u << (dim - i)) - 1);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AKIDB_AVX512 static float dot_avx512(const float *a, const float *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= dim; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < dim) {
        __mmask16 m = (__mmask16)((1u << (dim - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

#define LOAD_PH16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define LOAD_PH16_MASK(m, p) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16((m), (p)))

AKIDB_AVX512 static float l2sq_f16_avx512(const uint16_t *a, const uint16_t *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        __m512 d0 = _mm512_sub_ps(LOAD_PH16(a + i), LOAD_PH16(b + i));
        __m512 d1 = _mm512_sub_ps(LOAD_PH16(a + i + 16), LOAD_PH16(b + i + 16));
        __m512 d2 = _mm512_sub_ps(LOAD_PH16(a + i + 32), LOAD_PH16(b + i + 32));
        __m512 d3 = _mm512_sub_ps(LOAD_PH16(a + i + 48), LOAD_PH16(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= dim; i += 16) {
        __m512 d = _mm512_sub_ps(LOAD_PH16(a + i), LOAD_PH16(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < dim) {
        __mmask16 m = (__mmask16)((1u << (dim - i)) - 1);
        __m512 d = _mm512_sub_ps(LOAD_PH16_MASK(m, a + i), LOAD_PH16_MASK(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AKIDB_AVX512 static float dot_f16_avx512(const uint16_t *a, const uint16_t *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        s0 = _mm512_fmadd_ps(LOAD_PH16(a + i), LOAD_PH16(b + i), s0);
        s1 = _mm512_fmadd_ps(LOAD_PH16(a + i + 16), LOAD_PH16(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(LOAD_PH16(a + i + 32), LOAD_PH16(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(LOAD_PH16(a + i + 48), LOAD_PH16(b + i + 48), s3);
    }
    for (; i + 16 <= dim; i += 16)
        s0 = _mm512_fmadd_ps(LOAD_PH16(a + i), LOAD_PH16(b + i), s0);
    if (i < dim) {
        __mmask16 m = (__mmask16)((1u << (dim - i)) - 1);
        s1 = _mm512_fmadd_ps(LOAD_PH16_MASK(m, a + i), LOAD_PH16_MASK(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* Bytes [i, dim) as a load mask of up to 32 lanes. */
AKIDB_AVX512 static inline __mmask32 tail_mask32(size_t n)
{
    return n >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << n) - 1);
}

#define LOAD_M256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

AKIDB_AVX512 static int32_t dot_u8s8_avx512(const uint8_t *a, const int8_t *b, size_t dim)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        __m512i a0 = _mm512_cvtepu8_epi16(LOAD_M256(a + i));
        __m512i b0 = _mm512_cvtepi8_epi16(LOAD_M256(b + i));
        __m512i a1 = _mm512_cvtepu8_epi16(LOAD_M256(a + i + 32));
        __m512i b1 = _mm512_cvtepi8_epi16(LOAD_M256(b + i + 32));
        s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(a0, b0));
        s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(a1, b1));
    }
    for (; i < dim; i += 32) {
        __mmask32 m = tail_mask32(dim - i);
        __m512i a0 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
        __m512i b0 = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
        s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(a0, b0));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

AKIDB_AVX512 static int32_t dot_u8u8_avx512(const uint8_t *a, const uint8_t *b, size_t dim)
{
    const __m512i off = _mm512_set1_epi16(128);
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        __m512i a0 = _mm512_sub_epi16(_mm512_cvtepu8_epi16(LOAD_M256(a + i)), off);
        __m512i b0 = _mm512_sub_epi16(_mm512_cvtepu8_epi16(LOAD_M256(b + i)), off);
        __m512i a1 = _mm512_sub_epi16(_mm512_cvtepu8_epi16(LOAD_M256(a + i + 32)), off);
        __m512i b1 = _mm512_sub_epi16(_mm512_cvtepu8_epi16(LOAD_M256(b + i + 32)), off);
        s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(a0, b0));
        s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(a1, b1));
    }
    for (; i < dim; i += 32) {
        /* Masked-off lanes load 0 and become -128 after the offset on both
         * sides, so they are zeroed again before the multiply. */
        __mmask32 m = tail_mask32(dim - i);
        __m512i a0 = _mm512_maskz_sub_epi16(m, _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, a + i)), off);
        __m512i b0 = _mm512_maskz_sub_epi16(m, _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, b + i)), off);
        s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(a0, b0));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

static const akidb__kernels kernels_avx512 = {
    "avx512", l2sq_avx512, dot_avx512, l2sq_f16_avx512, dot_f16_avx512,
    dot_u8s8_avx512, dot_u8u8_avx512
};

/* ---- AVX-512 VNNI ---------------------------------------------------- */

#define AKIDB_AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

AKIDB_AVX512VNNI static inline __mmask64 tail_mask64(size_t n)
{
    return n >= 64 ? (__mmask64)~0ull : (__mmask64)((1ull << n) - 1);
}

AKIDB_AVX512VNNI static int32_t dot_u8s8_avx512_vnni(const uint8_t *a, const int8_t *b, size_t dim)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= dim; i += 128) {
        s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(a + i + 64), _mm512_loadu_si512(b + i + 64));
    }
    for (; i < dim; i += 64) {
        __mmask64 m = tail_mask64(dim - i);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_maskz_loadu_epi8(m, a + i),
                                 _mm512_maskz_loadu_epi8(m, b + i));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

AKIDB_AVX512VNNI static int32_t dot_u8u8_avx512_vnni(const uint8_t *a, const uint8_t *b, size_t dim)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80), zero = _mm512_setzero_si512();
    __m512i s0 = zero, s1 = zero, sb = zero;
    size_t i = 0;
    for (; i + 128 <= dim; i += 128) {
        __m512i b0 = _mm512_loadu_si512(b + i), b1 = _mm512_loadu_si512(b + i + 64);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(a + i), _mm512_xor_si512(b0, flip));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(a + i + 64), _mm512_xor_si512(b1, flip));
        sb = _mm512_add_epi64(sb, _mm512_add_epi64(_mm512_sad_epu8(b0, zero),
                                                   _mm512_sad_epu8(b1, zero)));
    }
    for (; i < dim; i += 64) {
        /* Masked-off lanes: a loads 0, so it adds nothing to the dot
         * product; b loads 0x80 there (level 0), which the correction
         * below subtracts again with the other 128s. */
        __mmask64 m = tail_mask64(dim - i);
        __m512i b0 = _mm512_mask_loadu_epi8(flip, m, b + i);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_maskz_loadu_epi8(m, a + i), _mm512_xor_si512(b0, flip));
        sb = _mm512_add_epi64(sb, _mm512_sad_epu8(b0, zero));
    }
    /* i is now the dimension rounded up to 64, every byte counted in sb
     * (padding lanes as 128). */
    int64_t sum_b = _mm512_reduce_add_epi64(sb) - 128 * (int64_t)i;
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1)) - 128 * (int32_t)sum_b;
}

static const akidb__kernels kernels_avx512_vnni = {
    "avx512_vnni", l2sq_avx512, dot_avx512, l2sq_f16_avx512, dot_f16_avx512,
    dot_u8s8_avx512_vnni, dot_u8u8_avx512_vnni
};
#endif /* AKIDB_X86 */

const akidb__kernels *akidb__kernels_avx2(void)
{
#ifdef AKIDB_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && x86_has_f16c())
        return &kernels_avx2;
#endif
    return NULL;
}

const akidb__kernels *akidb__kernels_avx2_vnni(void)
{
#ifdef AKIDB_X86
    if (akidb__kernels_avx2() && x86_has_avx_vnni())
        return &kernels_avx2_vnni;
#endif
    return NULL;
}

const akidb__kernels *akidb__kernels_avx512(void)
{
#ifdef AKIDB_X86
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return &kernels_avx512;
#endif
    return NULL;
}

const akidb__kernels *akidb__kernels_avx512_vnni(void)
{
#ifdef AKIDB_X86
    if (akidb__kernels_avx512() && __builtin_cpu_supports("avx512vnni"))
        return &kernels_avx512_vnni;
#endif
    return NULL;
}

/* ---- NEON ------------------------------------------------------------ */

#if defined(__aarch64__)
static float l2sq_neon(const float *a, const float *b, size_t dim)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    float32x4_t s2 = vdupq_n_f32(0), s3 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        float32x4_t d1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        float32x4_t d2 = vsubq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        float32x4_t d3 = vsubq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
        s2 = vfmaq_f32(s2, d2, d2);
        s3 = vfmaq_f32(s3, d3, d3);
    }
    for (; i + 4 <= dim; i += 4) {
        float32x4_t d = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        s0 = vfmaq_f32(s0, d, d);
    }
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

static float dot_neon(const float *a, const float *b, size_t dim)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    float32x4_t s2 = vdupq_n_f32(0), s3 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= dim; i += 4)
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < dim; i++)
        s += a[i] * b[i];
    return s;
}

/* Eight halves widened to two float vectors with FCVTL/FCVTL2 (base
 * ARMv8: no FEAT_FP16 needed for conversions). */
#define F16_LO(v) vcvt_f32_f16(vget_low_f16(v))
#define F16_HI(v) vcvt_high_f32_f16(v)
#define LD_F16(p) vreinterpretq_f16_u16(vld1q_u16(p))

static float l2sq_f16_neon(const uint16_t *a, const uint16_t *b, size_t dim)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        float16x8_t va = LD_F16(a + i), vb = LD_F16(b + i);
        float32x4_t d0 = vsubq_f32(F16_LO(va), F16_LO(vb));
        float32x4_t d1 = vsubq_f32(F16_HI(va), F16_HI(vb));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < dim; i++) {
        float d = akidb__f16_to_f32(a[i]) - akidb__f16_to_f32(b[i]);
        s += d * d;
    }
    return s;
}

static float dot_f16_neon(const uint16_t *a, const uint16_t *b, size_t dim)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        float16x8_t va = LD_F16(a + i), vb = LD_F16(b + i);
        s0 = vfmaq_f32(s0, F16_LO(va), F16_LO(vb));
        s1 = vfmaq_f32(s1, F16_HI(va), F16_HI(vb));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < dim; i++)
        s += akidb__f16_to_f32(a[i]) * akidb__f16_to_f32(b[i]);
    return s;
}

/* Widening multiply-accumulate: u8 and s8 to s16 (exact), SMLAL to s32. */
static int32_t dot_u8s8_neon(const uint8_t *a, const int8_t *b, size_t dim)
{
    int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        int16x8_t va = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(a + i)));
        int16x8_t vb = vmovl_s8(vld1_s8(b + i));
        s0 = vmlal_s16(s0, vget_low_s16(va), vget_low_s16(vb));
        s1 = vmlal_high_s16(s1, va, vb);
    }
    int32_t s = vaddvq_s32(vaddq_s32(s0, s1));
    for (; i < dim; i++)
        s += (int32_t)a[i] * b[i];
    return s;
}

static int32_t dot_u8u8_neon(const uint8_t *a, const uint8_t *b, size_t dim)
{
    const int8x8_t flip = vdup_n_s8((int8_t)-128);
    int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        /* a ^ 0x80 is a - 128 as a signed byte */
        int16x8_t va = vmovl_s8(veor_s8(vreinterpret_s8_u8(vld1_u8(a + i)), flip));
        int16x8_t vb = vmovl_s8(veor_s8(vreinterpret_s8_u8(vld1_u8(b + i)), flip));
        s0 = vmlal_s16(s0, vget_low_s16(va), vget_low_s16(vb));
        s1 = vmlal_high_s16(s1, va, vb);
    }
    int32_t s = vaddvq_s32(vaddq_s32(s0, s1));
    for (; i < dim; i++)
        s += ((int32_t)a[i] - 128) * ((int32_t)b[i] - 128);
    return s;
}

static const akidb__kernels kernels_neon = {
    "neon", l2sq_neon, dot_neon, l2sq_f16_neon, dot_f16_neon, dot_u8s8_neon, dot_u8u8_neon
};

/* ---- NEON SDOT (FEAT_DotProd) ----------------------------------------- */

#define AKIDB_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

/* sum(a * b) with a unsigned: (a ^ 0x80) is a - 128 signed, so
 * sum(a * b) = SDOT(a ^ 0x80, b) + 128 * sum(b), and sum(b) is one more
 * SDOT against a vector of ones. */
AKIDB_DOTPROD static int32_t dot_u8s8_neon_dotprod(const uint8_t *a, const int8_t *b, size_t dim)
{
    const int8x16_t flip = vdupq_n_s8((int8_t)-128), ones = vdupq_n_s8(1);
    int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0), sb = vdupq_n_s32(0);
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        int8x16_t b0 = vld1q_s8(b + i), b1 = vld1q_s8(b + i + 16);
        s0 = vdotq_s32(s0, veorq_s8(vreinterpretq_s8_u8(vld1q_u8(a + i)), flip), b0);
        s1 = vdotq_s32(s1, veorq_s8(vreinterpretq_s8_u8(vld1q_u8(a + i + 16)), flip), b1);
        sb = vdotq_s32(sb, ones, b0);
        sb = vdotq_s32(sb, ones, b1);
    }
    for (; i + 16 <= dim; i += 16) {
        int8x16_t b0 = vld1q_s8(b + i);
        s0 = vdotq_s32(s0, veorq_s8(vreinterpretq_s8_u8(vld1q_u8(a + i)), flip), b0);
        sb = vdotq_s32(sb, ones, b0);
    }
    int32_t s = vaddvq_s32(vaddq_s32(s0, s1)) + 128 * vaddvq_s32(sb);
    for (; i < dim; i++)
        s += (int32_t)a[i] * b[i];
    return s;
}

AKIDB_DOTPROD static int32_t dot_u8u8_neon_dotprod(const uint8_t *a, const uint8_t *b, size_t dim)
{
    const int8x16_t flip = vdupq_n_s8((int8_t)-128);
    int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = vdotq_s32(s0, veorq_s8(vreinterpretq_s8_u8(vld1q_u8(a + i)), flip),
                       veorq_s8(vreinterpretq_s8_u8(vld1q_u8(b + i)), flip));
        s1 = vdotq_s32(s1, veorq_s8(vreinterpretq_s8_u8(vld1q_u8(a + i + 16)), flip),
                       veorq_s8(vreinterpretq_s8_u8(vld1q_u8(b + i + 16)), flip));
    }
    for (; i + 16 <= dim; i += 16)
        s0 = vdotq_s32(s0, veorq_s8(vreinterpretq_s8_u8(vld1q_u8(a + i)), flip),
                       veorq_s8(vreinterpretq_s8_u8(vld1q_u8(b + i)), flip));
    int32_t s = vaddvq_s32(vaddq_s32(s0, s1));
    for (; i < dim; i++)
        s += ((int32_t)a[i] - 128) * ((int32_t)b[i] - 128);
    return s;
}

static const akidb__kernels kernels_neon_dotprod = {
    "neon_dotprod", l2sq_neon, dot_neon, l2sq_f16_neon, dot_f16_neon,
    dot_u8s8_neon_dotprod, dot_u8u8_neon_dotprod
};

/* ---- NEON half-precision arithmetic (FEAT_FP16, FEAT_FHM) ------------- */

#define AKIDB_FP16 __attribute__((target("arch=armv8.2-a+fp16")))
#define AKIDB_FHM __attribute__((target("arch=armv8.2-a+fp16+fp16fml")))

/* The difference in half precision (8 lanes), then widened and squared
 * in float: one FSUB instead of two conversions per side.  The squares
 * must not be formed in half precision (255^2 already overflows the
 * significand's exactness, 256^2 the range). */
AKIDB_FP16 static float l2sq_f16_neon_fp16(const uint16_t *a, const uint16_t *b, size_t dim)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        float16x8_t d = vsubq_f16(LD_F16(a + i), LD_F16(b + i));
        float32x4_t d0 = F16_LO(d), d1 = F16_HI(d);
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < dim; i++) {
        float d = akidb__f16_to_f32(a[i]) - akidb__f16_to_f32(b[i]);
        s += d * d;
    }
    return s;
}

/* FMLAL/FMLAL2: float lanes += half x half, the product exact. */
AKIDB_FHM static float l2sq_f16_neon_fhm(const uint16_t *a, const uint16_t *b, size_t dim)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        float16x8_t d = vsubq_f16(LD_F16(a + i), LD_F16(b + i));
        s0 = vfmlalq_low_f16(s0, d, d);
        s1 = vfmlalq_high_f16(s1, d, d);
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < dim; i++) {
        float d = akidb__f16_to_f32(a[i]) - akidb__f16_to_f32(b[i]);
        s += d * d;
    }
    return s;
}

AKIDB_FHM static float dot_f16_neon_fhm(const uint16_t *a, const uint16_t *b, size_t dim)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        float16x8_t va = LD_F16(a + i), vb = LD_F16(b + i);
        s0 = vfmlalq_low_f16(s0, va, vb);
        s1 = vfmlalq_high_f16(s1, va, vb);
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < dim; i++)
        s += akidb__f16_to_f32(a[i]) * akidb__f16_to_f32(b[i]);
    return s;
}

static const akidb__kernels kernels_neon_fp16 = {
    "neon_fp16", l2sq_neon, dot_neon, l2sq_f16_neon_fp16, dot_f16_neon,
    dot_u8s8_neon, dot_u8u8_neon
};
static const akidb__kernels kernels_neon_fhm = {
    "neon_fp16", l2sq_neon, dot_neon, l2sq_f16_neon_fhm, dot_f16_neon_fhm,
    dot_u8s8_neon, dot_u8u8_neon
};
#endif

const akidb__kernels *akidb__kernels_neon(void)
{
#if defined(__aarch64__)
    return &kernels_neon;
#else
    return NULL;
#endif
}

const akidb__kernels *akidb__kernels_neon_dotprod(void)
{
#if defined(__aarch64__)
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP)
        return &kernels_neon_dotprod;
#endif
    return NULL;
}

const akidb__kernels *akidb__kernels_neon_fp16(void)
{
#if defined(__aarch64__)
    unsigned long hw = getauxval(AT_HWCAP);
    if ((hw & HWCAP_ASIMDHP) && (hw & HWCAP_ASIMDFHM))
        return &kernels_neon_fhm;
    if (hw & HWCAP_ASIMDHP)
        return &kernels_neon_fp16;
#endif
    return NULL;
}

/* ---- selection ------------------------------------------------------- */

size_t akidb__kernels_all(const akidb__kernels *out[8])
{
    const akidb__kernels *(*const probes[])(void) = {
        akidb__kernels_scalar, akidb__kernels_avx2, akidb__kernels_avx2_vnni,
        akidb__kernels_avx512, akidb__kernels_avx512_vnni, akidb__kernels_neon,
        akidb__kernels_neon_dotprod, akidb__kernels_neon_fp16,
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        const akidb__kernels *k = probes[i]();
        if (k)
            out[n++] = k;
    }
    return n;
}

/* Composed once: the float kernels of the widest float set, the f16 and
 * int8 kernels of the best set for each. */
static akidb__kernels best_table;
static char best_name[64];
static pthread_once_t best_once = PTHREAD_ONCE_INIT;

static void append_name(const char *part)
{
    size_t len = strlen(best_name);
    /* the same set named twice in a row is named once */
    if (len >= strlen(part) && strcmp(best_name + len - strlen(part), part) == 0)
        return;
    snprintf(best_name + len, sizeof best_name - len, "%s%s", len ? "+" : "", part);
}

static void choose_best(void)
{
    const akidb__kernels *f32 = akidb__kernels_avx512();
    if (!f32) f32 = akidb__kernels_avx2();
    if (!f32) f32 = akidb__kernels_neon();
    if (!f32) f32 = akidb__kernels_scalar();
    const akidb__kernels *f16 = akidb__kernels_avx512();
    if (!f16) f16 = akidb__kernels_avx2();
    if (!f16) f16 = akidb__kernels_neon_fp16();
    if (!f16) f16 = akidb__kernels_neon();
    if (!f16) f16 = akidb__kernels_scalar();
    const akidb__kernels *i8 = akidb__kernels_avx512_vnni();
    if (!i8) i8 = akidb__kernels_avx2_vnni();
    if (!i8) i8 = akidb__kernels_avx512();
    if (!i8) i8 = akidb__kernels_avx2();
    if (!i8) i8 = akidb__kernels_neon_dotprod();
    if (!i8) i8 = akidb__kernels_neon();
    if (!i8) i8 = akidb__kernels_scalar();
    append_name(f32->name);
    append_name(f16->name);
    append_name(i8->name);
    best_table.name = best_name;
    best_table.l2sq = f32->l2sq;
    best_table.dot = f32->dot;
    best_table.l2sq_f16 = f16->l2sq_f16;
    best_table.dot_f16 = f16->dot_f16;
    best_table.dot_u8s8 = i8->dot_u8s8;
    best_table.dot_u8u8 = i8->dot_u8u8;
}

const akidb__kernels *akidb__kernels_best(void)
{
    pthread_once(&best_once, choose_best);
    return &best_table;
}
