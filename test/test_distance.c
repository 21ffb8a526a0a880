/*
 * test_distance.c - the distance kernels against a double-precision
 * reference.
 *
 * Every kernel set the CPU offers (scalar always; AVX2, AVX-VNNI, AVX-512,
 * AVX-512 VNNI on x86-64; NEON, SDOT and fp16 arithmetic on aarch64)
 * computes l2sq and dot on seeded random vectors of many dimensions,
 * including every residual length 1..70 and sizes just around the SIMD
 * widths, from unaligned starting addresses.  Inputs are copied into
 * exactly-sized heap blocks so ASan flags any read past the end.  The
 * compact kernels (f16, int8) are checked the same way, plus adversarial
 * inputs: the extremes of each type, all-equal dimensions, every position
 * alone; the int8 ones must match an int64 reference bit for bit.
 *
 * This file is also cross-compiled for aarch64 with only alloc.c,
 * distance.c and hnsw.c, so it uses internal headers and no akidb_* call.
 */
#include "runner.h"
#include "helpers.h"

#include <stdint.h>

#include "akidb.h"
#include "common/alloc.h"
#include "index/distance.h"

typedef struct kernel_entry {
    const char *expect_name;
    const akidb__kernels *k;
} kernel_entry;

/* Collects the available kernel sets; returns how many. */
static size_t available_kernels(kernel_entry out[8])
{
    const akidb__kernels *ks[8];
    size_t n = akidb__kernels_all(ks);
    for (size_t i = 0; i < n; i++)
        out[i] = (kernel_entry){ ks[i]->name, ks[i] };
    return n;
}

static void ref_dist(const float *a, const float *b, size_t dim,
                     double *l2, double *l2_mag, double *dot, double *dot_mag)
{
    double s_l2 = 0, s_dot = 0, m_dot = 0;
    for (size_t i = 0; i < dim; i++) {
        double d = (double)a[i] - (double)b[i];
        double p = (double)a[i] * (double)b[i];
        s_l2 += d * d;
        s_dot += p;
        m_dot += fabs(p);
    }
    *l2 = s_l2;
    *l2_mag = s_l2;     /* every term is positive: no cancellation */
    *dot = s_dot;
    *dot_mag = m_dot;   /* dot can cancel: scale by the sum of |terms| */
}

/* Relative tolerance for a float sum of `dim` terms: ~1e-5, growing slowly
 * with the length so a plain sequential scalar sum also passes at 4096. */
static double tolerance(size_t dim)
{
    double t = 1e-5;
    if (dim > 128)
        t *= sqrt((double)dim / 128.0);
    return t;
}

static void check_one(const kernel_entry *ke, const float *a, const float *b,
                      size_t dim, const char *what)
{
    double l2, l2_mag, dot, dot_mag;
    ref_dist(a, b, dim, &l2, &l2_mag, &dot, &dot_mag);
    double tol = tolerance(dim);
    double got_l2 = (double)ke->k->l2sq(a, b, dim);
    double got_dot = (double)ke->k->dot(a, b, dim);
    if (!(fabs(got_l2 - l2) <= tol * l2_mag + 1e-30))
        akt_fail(__FILE__, __LINE__, "%s l2sq dim %zu (%s): got %.9g, want %.9g",
                 ke->expect_name, dim, what, got_l2, l2);
    if (!(fabs(got_dot - dot) <= tol * dot_mag + 1e-30))
        akt_fail(__FILE__, __LINE__, "%s dot dim %zu (%s): got %.9g, want %.9g",
                 ke->expect_name, dim, what, got_dot, dot);
}

static const size_t big_dims[] = { 127, 128, 129, 255, 256, 257, 784, 1000, 4096 };

/* All dims tested: 1..70 and big_dims. */
static size_t dim_at(size_t i)
{
    return i < 70 ? i + 1 : big_dims[i - 70];
}
#define N_DIMS (70 + sizeof big_dims / sizeof big_dims[0])

static int is_set_function(const kernel_entry *ks, size_t n, const akidb__kernels *best)
{
    int l2 = 0, dot = 0, l2h = 0, doth = 0, us = 0, uu = 0;
    for (size_t i = 0; i < n; i++) {
        l2 |= ks[i].k->l2sq == best->l2sq;
        dot |= ks[i].k->dot == best->dot;
        l2h |= ks[i].k->l2sq_f16 == best->l2sq_f16;
        doth |= ks[i].k->dot_f16 == best->dot_f16;
        us |= ks[i].k->dot_u8s8 == best->dot_u8s8;
        uu |= ks[i].k->dot_u8u8 == best->dot_u8u8;
    }
    return l2 && dot && l2h && doth && us && uu;
}

TEST(distance_kernels_available)
{
    kernel_entry ks[8];
    size_t n = available_kernels(ks);
    fprintf(stderr, "  kernels available:");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", ks[i].k->name ? ks[i].k->name : "(null name)");
    const akidb__kernels *best = akidb__kernels_best();
    fprintf(stderr, "; best: %s\n", best && best->name ? best->name : "(null)");

    ASSERT(akidb__kernels_scalar() != NULL);
    ASSERT(n >= 1);
    ASSERT(ks[0].k == akidb__kernels_scalar());
    ASSERT(best != NULL && best->name != NULL);
    static const char *const known[] = { "scalar", "avx2", "avx2_vnni", "avx512", "avx512_vnni",
                                         "neon", "neon_dotprod", "neon_fp16" };
    for (size_t i = 0; i < n; i++) {
        ASSERT(ks[i].k->name != NULL);
        int found = 0;
        for (size_t j = 0; j < sizeof known / sizeof known[0]; j++)
            found |= strcmp(ks[i].k->name, known[j]) == 0;
        ASSERT(found);
        for (size_t j = 0; j < i; j++)
            ASSERT(strcmp(ks[i].k->name, ks[j].k->name) != 0);
        ASSERT(ks[i].k->l2sq != NULL && ks[i].k->dot != NULL);
        ASSERT(ks[i].k->l2sq_f16 != NULL && ks[i].k->dot_f16 != NULL);
        ASSERT(ks[i].k->dot_u8s8 != NULL && ks[i].k->dot_u8u8 != NULL);
    }
    /* the best table takes every function from a set the CPU has */
    ASSERT(is_set_function(ks, n, best));
    /* Calling again gives the same answer (chosen once). */
    ASSERT(akidb__kernels_best() == best);

#if defined(__aarch64__)
    ASSERT(akidb__kernels_neon() != NULL);
    ASSERT(akidb__kernels_avx2() == NULL);
    ASSERT(akidb__kernels_avx512() == NULL);
    ASSERT(best->l2sq == akidb__kernels_neon()->l2sq);
    if (akidb__kernels_neon_dotprod())
        ASSERT(best->dot_u8s8 == akidb__kernels_neon_dotprod()->dot_u8s8);
    if (akidb__kernels_neon_fp16())
        ASSERT(best->l2sq_f16 == akidb__kernels_neon_fp16()->l2sq_f16);
#elif defined(__x86_64__)
    ASSERT(akidb__kernels_neon() == NULL);
    ASSERT(akidb__kernels_neon_dotprod() == NULL);
    ASSERT(akidb__kernels_neon_fp16() == NULL);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        ASSERT(akidb__kernels_avx2() != NULL);   /* every AVX2 CPU has F16C */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        ASSERT(akidb__kernels_avx512() != NULL);
    if (akidb__kernels_avx512() && __builtin_cpu_supports("avx512vnni"))
        ASSERT(akidb__kernels_avx512_vnni() != NULL);
    /* The best set should be the widest one available, per function. */
    if (akidb__kernels_avx512()) {
        ASSERT(best->l2sq == akidb__kernels_avx512()->l2sq);
        ASSERT(best->l2sq_f16 == akidb__kernels_avx512()->l2sq_f16);
    } else if (akidb__kernels_avx2()) {
        ASSERT(best->l2sq == akidb__kernels_avx2()->l2sq);
    }
    if (akidb__kernels_avx512_vnni())
        ASSERT(best->dot_u8s8 == akidb__kernels_avx512_vnni()->dot_u8s8);
    else if (akidb__kernels_avx2_vnni())
        ASSERT(best->dot_u8s8 == akidb__kernels_avx2_vnni()->dot_u8s8);
#endif
}

/* Random vectors, every dim, aligned and misaligned by 1..3 floats, each in
 * an exactly-sized block. */
TEST(distance_kernels_match_reference)
{
    kernel_entry ks[8];
    size_t n_k = available_kernels(ks);
    ASSERT(n_k >= 1);
    uint64_t seed = 12345;
    size_t n_checked = 0;
    for (size_t di = 0; di < N_DIMS; di++) {
        size_t dim = dim_at(di);
        for (size_t off = 0; off < 4; off++) {
            /* a at offset `off` floats, b at offset (off + 1) % 4. */
            size_t off_b = (off + 1) % 4;
            float *buf_a = malloc((dim + off) * sizeof(float));
            float *buf_b = malloc((dim + off_b) * sizeof(float));
            ASSERT(buf_a != NULL && buf_b != NULL);
            float *a = buf_a + off, *b = buf_b + off_b;
            for (int rep = 0; rep < 3; rep++) {
                for (size_t i = 0; i < dim; i++) {
                    a[i] = rand_sym(&seed);
                    b[i] = rand_sym(&seed);
                }
                for (size_t ki = 0; ki < n_k; ki++) {
                    check_one(&ks[ki], a, b, dim, off ? "unaligned" : "aligned");
                    n_checked++;
                }
            }
            free(buf_a);
            free(buf_b);
        }
    }
    ASSERT_EQ(n_checked, N_DIMS * 4 * 3 * n_k);
}

/* Magnitudes far from 1 and mixed signs: the tolerance is relative. */
TEST(distance_kernels_scaled_values)
{
    kernel_entry ks[8];
    size_t n_k = available_kernels(ks);
    static const float scales[] = { 1e-3f, 1.0f, 37.5f, 1e3f };
    uint64_t seed = 777;
    for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
        for (size_t di = 0; di < N_DIMS; di += 3) {
            size_t dim = dim_at(di);
            float *a = malloc(dim * sizeof(float));
            float *b = malloc(dim * sizeof(float));
            ASSERT(a != NULL && b != NULL);
            for (size_t i = 0; i < dim; i++) {
                a[i] = rand_sym(&seed) * scales[si];
                /* b near a: l2sq is a small difference of close values */
                b[i] = a[i] + rand_sym(&seed) * scales[si] * 0.01f;
            }
            for (size_t ki = 0; ki < n_k; ki++)
                check_one(&ks[ki], a, b, dim, "scaled");
            free(a);
            free(b);
        }
    }
}

/* Exact identities every kernel must honour bit for bit. */
TEST(distance_kernels_exact_identities)
{
    kernel_entry ks[8];
    size_t n_k = available_kernels(ks);
    uint64_t seed = 99;
    for (size_t di = 0; di < N_DIMS; di++) {
        size_t dim = dim_at(di);
        float *a = malloc(dim * sizeof(float));
        float *z = calloc(dim, sizeof(float));
        float *one = malloc(dim * sizeof(float));
        ASSERT(a != NULL && z != NULL && one != NULL);
        for (size_t i = 0; i < dim; i++) {
            a[i] = rand_sym(&seed) * 10.0f;
            one[i] = 1.0f;
        }
        for (size_t ki = 0; ki < n_k; ki++) {
            const akidb__kernels *k = ks[ki].k;
            /* distance to itself is exactly 0 */
            ASSERT_EQ(k->l2sq(a, a, dim) == 0.0f, 1);
            /* dot with the zero vector is exactly 0 */
            ASSERT_EQ(k->dot(a, z, dim) == 0.0f, 1);
            ASSERT_EQ(k->dot(z, z, dim) == 0.0f, 1);
            /* small integers sum exactly in float: dot(1,1) = dim,
             * l2sq(1, 0) = dim */
            ASSERT_EQ((double)k->dot(one, one, dim), (double)dim);
            ASSERT_EQ((double)k->l2sq(one, z, dim), (double)dim);
            /* symmetric */
            float ab = k->l2sq(a, one, dim), ba = k->l2sq(one, a, dim);
            ASSERT_NEAR(ab, ba, 1e-6);
            ASSERT_NEAR(k->dot(a, one, dim), k->dot(one, a, dim), 1e-6);
        }
        free(a);
        free(z);
        free(one);
    }
}

/* A single non-zero element in the residual tail or the last SIMD lane is
 * not dropped. */
TEST(distance_kernels_every_position_counts)
{
    kernel_entry ks[8];
    size_t n_k = available_kernels(ks);
    static const size_t dims[] = { 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 129 };
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        size_t dim = dims[di];
        float *a = calloc(dim, sizeof(float));
        float *b = calloc(dim, sizeof(float));
        ASSERT(a != NULL && b != NULL);
        for (size_t pos = 0; pos < dim; pos++) {
            a[pos] = 3.0f;
            b[pos] = -2.0f;
            for (size_t ki = 0; ki < n_k; ki++) {
                const akidb__kernels *k = ks[ki].k;
                if (k->l2sq(a, b, dim) != 25.0f)
                    akt_fail(__FILE__, __LINE__, "%s l2sq dim %zu pos %zu: %g != 25",
                             k->name, dim, pos, (double)k->l2sq(a, b, dim));
                if (k->dot(a, b, dim) != -6.0f)
                    akt_fail(__FILE__, __LINE__, "%s dot dim %zu pos %zu: %g != -6",
                             k->name, dim, pos, (double)k->dot(a, b, dim));
            }
            a[pos] = 0.0f;
            b[pos] = 0.0f;
        }
        free(a);
        free(b);
    }
}

/* The aligned helpers of alloc.h: alignment holds and free finds the block. */
TEST(distance_aligned_alloc)
{
    const akidb_allocator *al = &akidb__default_allocator;
    static const size_t aligns[] = { 2, 4, 16, 32, 64, 128 };
    for (size_t ai = 0; ai < sizeof aligns / sizeof aligns[0]; ai++) {
        for (size_t n = 0; n < 300; n += 37) {
            unsigned char *p = akidb__aligned_alloc(al, n, aligns[ai]);
            ASSERT(p != NULL);
            ASSERT_EQ((uintptr_t)p % aligns[ai], 0);
            memset(p, 0xAB, n);
            akidb__aligned_free(al, p);
        }
    }
    ASSERT(akidb__alloc_array(al, SIZE_MAX / 2, 4) == NULL);
    ASSERT(akidb__calloc(al, SIZE_MAX / 8, 16) == NULL);
    int *c = akidb__calloc(al, 10, sizeof(int));
    ASSERT(c != NULL);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(c[i], 0);
    akidb__free(al, c);
    akidb__free(al, NULL);
    akidb__aligned_free(al, NULL);
}

/* ---- binary16 conversion -------------------------------------------- */

TEST(distance_f16_conversion)
{
    /* Every half converts to float and back to itself (NaN payloads
     * aside: NaN stays NaN). */
    for (uint32_t h = 0; h <= 0xFFFF; h++) {
        float f = akidb__f16_to_f32((uint16_t)h);
        uint16_t back = akidb__f32_to_f16(f);
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) {
            ASSERT(isnan(f));
            ASSERT((back & 0x7C00) == 0x7C00 && (back & 0x3FF));
        } else if (back != h) {
            akt_fail(__FILE__, __LINE__, "half 0x%04x -> %g -> 0x%04x", h, (double)f, back);
        }
    }
    /* Known values, rounding to nearest even, overflow, underflow. */
    ASSERT_EQ(akidb__f32_to_f16(1.0f), 0x3C00);
    ASSERT_EQ(akidb__f32_to_f16(-2.0f), 0xC000);
    ASSERT_EQ(akidb__f32_to_f16(65504.0f), 0x7BFF);
    ASSERT_EQ(akidb__f32_to_f16(65519.0f), 0x7BFF);   /* below the halfway point */
    ASSERT_EQ(akidb__f32_to_f16(65520.0f), 0x7C00);   /* halfway: rounds to even = inf */
    ASSERT_EQ(akidb__f32_to_f16(-1e30f), 0xFC00);
    ASSERT_EQ(akidb__f32_to_f16(1.0f + 1.0f / 2048), 0x3C00);            /* tie, to even */
    ASSERT_EQ(akidb__f32_to_f16(1.0f + 3.0f / 2048), 0x3C02);            /* tie, to even */
    ASSERT_EQ(akidb__f32_to_f16(1.0f + 1.0f / 2048 + 1.0f / 65536), 0x3C01);
    ASSERT_EQ(akidb__f32_to_f16(5.9604645e-8f), 0x0001);                 /* 2^-24 */
    ASSERT_EQ(akidb__f32_to_f16(2.9802322e-8f), 0x0000);                 /* 2^-25: tie to 0 */
    ASSERT_EQ(akidb__f32_to_f16(4.4703484e-8f), 0x0001);                 /* 1.5 * 2^-25 */
    ASSERT_EQ(akidb__f32_to_f16(6.1035156e-5f), 0x0400);                 /* smallest normal */
    ASSERT_EQ(akidb__f32_to_f16(6.1e-5f), 0x03FF);                       /* largest subnormal */
    ASSERT_EQ(akidb__f32_to_f16(-0.0f), 0x8000);
    /* Every float in a sweep rounds to one of its two neighbouring halves,
     * the nearer one. */
    uint64_t seed = 4242;
    for (int i = 0; i < 200000; i++) {
        float f = (float)(rand_sym(&seed) * pow(2.0, (double)(splitmix64(&seed) % 40) - 26.0));
        uint16_t h = akidb__f32_to_f16(f);
        double back = akidb__f16_to_f32(h);
        double err = fabs(back - f);
        uint16_t up = (uint16_t)(h + 1), dn = (uint16_t)(h - 1);
        if ((h & 0x7FFF) != 0x7BFF && (h & 0x7FFF) != 0)
            ASSERT(err <= fabs((double)akidb__f16_to_f32(up) - f));
        if ((h & 0x7FFF) != 0)
            ASSERT(err <= fabs((double)akidb__f16_to_f32(dn) - f));
    }
}

/* ---- f16 kernels ----------------------------------------------------- */

/* The NEON fp16 flavour subtracts in half precision: l2sq is within 2^-10
 * relative (distance.h); every other flavour converts first. */
static double f16_l2_tolerance(const akidb__kernels *k, size_t dim)
{
    return strcmp(k->name, "neon_fp16") == 0 ? 1.0 / 1024 : tolerance(dim);
}

static void check_f16(const akidb__kernels *k, const uint16_t *a, const uint16_t *b, size_t dim,
                      const char *what)
{
    double l2 = 0, dot = 0, dot_mag = 0;
    for (size_t i = 0; i < dim; i++) {
        double x = akidb__f16_to_f32(a[i]), y = akidb__f16_to_f32(b[i]);
        l2 += (x - y) * (x - y);
        dot += x * y;
        dot_mag += fabs(x * y);
    }
    double got_l2 = k->l2sq_f16(a, b, dim), got_dot = k->dot_f16(a, b, dim);
    if (!(fabs(got_l2 - l2) <= f16_l2_tolerance(k, dim) * l2 + 1e-30))
        akt_fail(__FILE__, __LINE__, "%s l2sq_f16 dim %zu (%s): got %.9g, want %.9g", k->name,
                 dim, what, got_l2, l2);
    if (!(fabs(got_dot - dot) <= tolerance(dim) * dot_mag + 1e-30))
        akt_fail(__FILE__, __LINE__, "%s dot_f16 dim %zu (%s): got %.9g, want %.9g", k->name,
                 dim, what, got_dot, dot);
}

TEST(distance_f16_kernels_match_reference)
{
    kernel_entry ks[8];
    size_t n_k = available_kernels(ks);
    uint64_t seed = 2024;
    static const float scales[] = { 1e-3f, 1.0f, 300.0f, 30000.0f };
    for (size_t di = 0; di < N_DIMS; di++) {
        size_t dim = dim_at(di);
        for (size_t off = 0; off < 2; off++) {
            uint16_t *buf_a = malloc((dim + off) * sizeof(uint16_t));
            uint16_t *buf_b = malloc((dim + 1 - off) * sizeof(uint16_t));
            ASSERT(buf_a != NULL && buf_b != NULL);
            uint16_t *a = buf_a + off, *b = buf_b + 1 - off;
            for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
                for (size_t i = 0; i < dim; i++) {
                    a[i] = akidb__f32_to_f16(rand_sym(&seed) * scales[si]);
                    /* half the rows near a (small differences), half apart */
                    float nb = si & 1 ? akidb__f16_to_f32(a[i]) * (1.0f + 0.01f * rand_sym(&seed))
                                      : rand_sym(&seed) * scales[si];
                    b[i] = akidb__f32_to_f16(nb);
                }
                for (size_t ki = 0; ki < n_k; ki++)
                    check_f16(ks[ki].k, a, b, dim, off ? "unaligned" : "aligned");
            }
            free(buf_a);
            free(buf_b);
        }
    }
}

/* The storage range (quant.h clamps f16 values to +-32752 so that a
 * difference never overflows half precision), subnormals, zeros, all-equal
 * dimensions, and a lone value in every position. */
TEST(distance_f16_kernels_adversarial)
{
    kernel_entry ks[8];
    size_t n_k = available_kernels(ks);
    static const size_t dims[] = { 1, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 129, 784, 4096 };
    const uint16_t big = akidb__f32_to_f16(32752.0f), nbig = (uint16_t)(big | 0x8000);
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        size_t dim = dims[di];
        uint16_t *a = malloc(dim * sizeof(uint16_t)), *b = malloc(dim * sizeof(uint16_t));
        ASSERT(a != NULL && b != NULL);
        for (size_t ki = 0; ki < n_k; ki++) {
            const akidb__kernels *k = ks[ki].k;
            /* +max against -max: the largest difference the storage holds */
            for (size_t i = 0; i < dim; i++) { a[i] = big; b[i] = nbig; }
            check_f16(k, a, b, dim, "extremes");
            ASSERT(isfinite(k->l2sq_f16(a, b, dim)));
            /* identical vectors: exactly 0 */
            ASSERT(k->l2sq_f16(a, a, dim) == 0.0f);
            /* subnormals (2^-24 .. 2^-14) */
            for (size_t i = 0; i < dim; i++) { a[i] = (uint16_t)(1 + i % 0x3FF); b[i] = (uint16_t)(0x8000 | (0x3FF - i % 0x3FF)); }
            check_f16(k, a, b, dim, "subnormal");
            /* all dimensions equal */
            for (size_t i = 0; i < dim; i++) { a[i] = 0x4248; b[i] = 0xC248; }   /* 3.14, -3.14 */
            check_f16(k, a, b, dim, "all-equal");
            /* zeros: +0 and -0 */
            for (size_t i = 0; i < dim; i++) { a[i] = 0; b[i] = 0x8000; }
            ASSERT(k->l2sq_f16(a, b, dim) == 0.0f);
            ASSERT(k->dot_f16(a, b, dim) == 0.0f);
            /* a lone value in each position: exact small integers */
            for (size_t pos = 0; pos < dim && pos < 200; pos++) {
                a[pos] = 0x4200;      /* 3 */
                b[pos] = 0xC000;      /* -2 */
                if (k->l2sq_f16(a, b, dim) != 25.0f || k->dot_f16(a, b, dim) != -6.0f)
                    akt_fail(__FILE__, __LINE__, "%s f16 dim %zu pos %zu: %g %g", k->name, dim,
                             pos, (double)k->l2sq_f16(a, b, dim), (double)k->dot_f16(a, b, dim));
                a[pos] = 0;
                b[pos] = 0x8000;
            }
        }
        free(a);
        free(b);
    }
}

/* ---- int8 kernels ---------------------------------------------------- */

static int64_t ref_u8s8(const uint8_t *a, const int8_t *b, size_t dim)
{
    int64_t s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (int64_t)a[i] * b[i];
    return s;
}

static int64_t ref_u8u8(const uint8_t *a, const uint8_t *b, size_t dim)
{
    int64_t s = 0;
    for (size_t i = 0; i < dim; i++)
        s += ((int64_t)a[i] - 128) * ((int64_t)b[i] - 128);
    return s;
}

static void check_i8(const akidb__kernels *k, const uint8_t *a, const int8_t *b,
                     const uint8_t *c, size_t dim, const char *what)
{
    int64_t want_us = ref_u8s8(a, b, dim), want_uu = ref_u8u8(a, c, dim);
    int32_t got_us = k->dot_u8s8(a, b, dim), got_uu = k->dot_u8u8(a, c, dim);
    if (got_us != want_us)
        akt_fail(__FILE__, __LINE__, "%s dot_u8s8 dim %zu (%s): got %d, want %lld", k->name, dim,
                 what, got_us, (long long)want_us);
    if (got_uu != want_uu)
        akt_fail(__FILE__, __LINE__, "%s dot_u8u8 dim %zu (%s): got %d, want %lld", k->name, dim,
                 what, got_uu, (long long)want_uu);
    /* symmetric */
    ASSERT_EQ(k->dot_u8u8(c, a, dim), got_uu);
}

TEST(distance_i8_kernels_match_reference)
{
    kernel_entry ks[8];
    size_t n_k = available_kernels(ks);
    uint64_t seed = 8;
    for (size_t di = 0; di < N_DIMS; di++) {
        size_t dim = dim_at(di);
        for (size_t off = 0; off < 4; off++) {
            /* exactly-sized blocks at odd offsets: a masked tail must not
             * read past the end */
            uint8_t *buf_a = malloc(dim + off), *buf_c = malloc(dim + 3 - off);
            int8_t *buf_b = malloc(dim + (off + 1) % 4);
            ASSERT(buf_a != NULL && buf_b != NULL && buf_c != NULL);
            uint8_t *a = buf_a + off, *c = buf_c + 3 - off;
            int8_t *b = buf_b + (off + 1) % 4;
            for (int rep = 0; rep < 3; rep++) {
                for (size_t i = 0; i < dim; i++) {
                    uint64_t r = splitmix64(&seed);
                    a[i] = (uint8_t)r;
                    b[i] = (int8_t)(uint8_t)(r >> 8);
                    c[i] = (uint8_t)(r >> 16);
                }
                for (size_t ki = 0; ki < n_k; ki++)
                    check_i8(ks[ki].k, a, b, c, dim, off ? "unaligned" : "aligned");
            }
            free(buf_a);
            free(buf_b);
            free(buf_c);
        }
    }
}

/* The extremes of both types in every combination, at the largest
 * dimension (the int32 headroom), all-equal dimensions, and every
 * position alone. */
TEST(distance_i8_kernels_adversarial)
{
    kernel_entry ks[8];
    size_t n_k = available_kernels(ks);
    static const size_t dims[] = { 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 384, 784, 4096 };
    static const uint8_t us[] = { 0, 1, 127, 128, 129, 254, 255 };
    static const int8_t ss[] = { -128, -127, -1, 0, 1, 126, 127 };
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        size_t dim = dims[di];
        uint8_t *a = malloc(dim), *c = malloc(dim);
        int8_t *b = malloc(dim);
        ASSERT(a != NULL && b != NULL && c != NULL);
        for (size_t ki = 0; ki < n_k; ki++) {
            const akidb__kernels *k = ks[ki].k;
            for (size_t x = 0; x < sizeof us; x++)
                for (size_t y = 0; y < sizeof ss; y++) {
                    memset(a, us[x], dim);
                    memset(b, (uint8_t)ss[y], dim);
                    memset(c, us[(x + y) % sizeof us], dim);
                    check_i8(k, a, b, c, dim, "all-equal extremes");
                }
            /* the largest magnitudes: 255 x -128 and 0 x 0 (levels -128) */
            memset(a, 255, dim);
            memset(b, 0x80, dim);
            ASSERT_EQ(k->dot_u8s8(a, b, dim), -255LL * 128 * (long long)dim);
            memset(a, 0, dim);
            memset(c, 0, dim);
            ASSERT_EQ(k->dot_u8u8(a, c, dim), 16384LL * (long long)dim);
            /* alternating signs cancel exactly */
            for (size_t i = 0; i < dim; i++) {
                a[i] = i & 1 ? 0 : 255;
                c[i] = 255;
                b[i] = 1;
            }
            check_i8(k, a, b, c, dim, "alternating");
            /* a lone value in each position */
            memset(a, 128, dim);
            memset(c, 128, dim);
            memset(b, 0, dim);
            for (size_t pos = 0; pos < dim && pos < 300; pos++) {
                a[pos] = 131;   /* level 3 */
                c[pos] = 126;   /* level -2 */
                b[pos] = -2;
                if (k->dot_u8u8(a, c, dim) != -6 || k->dot_u8s8(a, b, dim) != -262 + 0)
                    akt_fail(__FILE__, __LINE__, "%s i8 dim %zu pos %zu: %d %d", k->name, dim,
                             pos, k->dot_u8u8(a, c, dim), k->dot_u8s8(a, b, dim));
                a[pos] = 128;
                c[pos] = 128;
                b[pos] = 0;
            }
        }
        free(a);
        free(b);
        free(c);
    }
}
