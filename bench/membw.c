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

float *bench_membw_alloc(size_t bytes);
double bench_membw_pass(const float *buf, size_t bytes, double *sink);

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

/* A `bytes` buffer, 64-byte aligned, every page touched (so no page fault
 * is timed); free() it.  NULL when it cannot be allocated. */
float *bench_membw_alloc(size_t bytes)
{
    size_t n = bytes / sizeof(float), i;
    float *a = NULL;
    if (posix_memalign((void **)&a, 64, n * sizeof(float)) != 0)
        return NULL;
    for (i = 0; i < n; i++)
        a[i] = (float)(i & 7);
    return a;
}

/* One timed read of the whole buffer: GB/s (1e9 bytes per second).  The
 * sum goes to *sink so that the pass cannot be optimised away.  The caller
 * takes the best of several passes, interleaved with what it compares. */
double bench_membw_pass(const float *buf, size_t bytes, double *sink)
{
    size_t n = bytes / sizeof(float);
    double t0 = now(), t;
    *sink += sum_lanes(buf, n);
    t = now() - t0;
    return (double)(n * sizeof(float)) / t / 1e9;
}
