/*
 * test_distance.c - the distance kernels against a double-precision
 * reference.
 *
 * Every kernel set the CPU offers (scalar always; AVX2/AVX-512 on x86-64;
 * NEON on aarch64) computes l2sq and dot on seeded random vectors of many
 * dimensions, including every residual length 1..70 and sizes just around
 * the SIMD widths, from unaligned starting addresses.  Inputs are copied
 * into exactly-sized heap blocks so ASan flags any read past the end.
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
static size_t available_kernels(kernel_entry out[4])
{
    size_t n = 0;
    const akidb__kernels *k;
    if ((k = akidb__kernels_scalar()) != NULL)
        out[n++] = (kernel_entry){ "scalar", k };
    if ((k = akidb__kernels_avx2()) != NULL)
        out[n++] = (kernel_entry){ "avx2", k };
    if ((k = akidb__kernels_avx512()) != NULL)
        out[n++] = (kernel_entry){ "avx512", k };
    if ((k = akidb__kernels_neon()) != NULL)
        out[n++] = (kernel_entry){ "neon", k };
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

TEST(distance_kernels_available)
{
    kernel_entry ks[4];
    size_t n = available_kernels(ks);
    fprintf(stderr, "  kernels available:");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", ks[i].k->name ? ks[i].k->name : "(null name)");
    const akidb__kernels *best = akidb__kernels_best();
    fprintf(stderr, "; best: %s\n", best && best->name ? best->name : "(null)");

    ASSERT(akidb__kernels_scalar() != NULL);
    ASSERT(best != NULL);
    ASSERT(best->l2sq != NULL);
    ASSERT(best->dot != NULL);
    int best_is_available = 0;
    for (size_t i = 0; i < n; i++) {
        ASSERT(ks[i].k->name != NULL);
        ASSERT_STR_EQ(ks[i].k->name, ks[i].expect_name);
        ASSERT(ks[i].k->l2sq != NULL);
        ASSERT(ks[i].k->dot != NULL);
        if (ks[i].k == best)
            best_is_available = 1;
    }
    ASSERT(best_is_available);
    /* Calling again gives the same answer (chosen once). */
    ASSERT(akidb__kernels_best() == best);

#if defined(__aarch64__)
    ASSERT(akidb__kernels_neon() != NULL);
    ASSERT(akidb__kernels_avx2() == NULL);
    ASSERT(akidb__kernels_avx512() == NULL);
#elif defined(__x86_64__)
    ASSERT(akidb__kernels_neon() == NULL);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        ASSERT(akidb__kernels_avx2() != NULL);
    if (__builtin_cpu_supports("avx512f"))
        ASSERT(akidb__kernels_avx512() != NULL);
    /* The best set should be the widest one available. */
    if (akidb__kernels_avx512())
        ASSERT_STR_EQ(best->name, "avx512");
    else if (akidb__kernels_avx2())
        ASSERT_STR_EQ(best->name, "avx2");
#endif
}

/* Random vectors, every dim, aligned and misaligned by 1..3 floats, each in
 * an exactly-sized block. */
TEST(distance_kernels_match_reference)
{
    kernel_entry ks[4];
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
    kernel_entry ks[4];
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
    kernel_entry ks[4];
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
    kernel_entry ks[4];
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
