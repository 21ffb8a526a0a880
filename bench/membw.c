/*
 * membw.c - single-thread memory read bandwidth of this machine, the yard
 * stick for AkiDB's exact (brute-force) search.
 *
 * Built with -O3 -march=native on its own (the rest of the driver is plain
 * -O2, because libakidb picks its kernels at run time).  The loop sums a
 * 512 MiB float array into 32 independent lanes: the lanes never mix, so
 * the compiler vectorises it into several AVX2 (or wider) accumulators
 * without -ffast-math, and the loop is bound by memory, not by adds.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_membw_gbps(size_t bytes, int passes, double *sink);

#define LANES 32

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static float sum_lanes(const float *restrict a, size_t n)
{
    float acc[LANES] = {0};
    size_t i, j;
    for (i = 0; i + LANES <= n; i += LANES)
        for (j = 0; j < LANES; j++)
            acc[j] += a[i + j];
    for (j = 1; j < LANES; j++)
        acc[0] += acc[j];
    for (; i < n; i++)
        acc[0] += a[i];
    return acc[0];
}

/* Best-of-`passes` read bandwidth in GB/s (1e9 bytes per second) over a
 * `bytes` buffer, or -1 when the buffer cannot be allocated.  The sums are
 * added to *sink so that no pass can be optimised away. */
double bench_membw_gbps(size_t bytes, int passes, double *sink)
{
    size_t n = bytes / sizeof(float), i;
    float *a = NULL;
    double best = 1e30;
    int p;

    if (posix_memalign((void **)&a, 64, n * sizeof(float)) != 0)
        return -1;
    for (i = 0; i < n; i++) /* touch every page before timing */
        a[i] = (float)(i & 7);
    for (p = 0; p < passes; p++) {
        double t0 = now(), t;
        *sink += sum_lanes(a, n);
        t = now() - t0;
        if (t < best)
            best = t;
    }
    free(a);
    return (double)(n * sizeof(float)) / best / 1e9;
}
