/*
 * bench_akidb.c - helpers of the benchmark programs that use libakidb; see
 * bench_akidb.h.
 */
#define _GNU_SOURCE
#include "bench_akidb.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

void bench_check(int rc, const akidb *db, const char *what)
{
    if (rc != AKIDB_OK)
        bench_die("%s: %s (%s)", what, akidb_errstr(rc), akidb_errmsg(db));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        fprintf(stderr, "%s: cannot remove %s: %s\n", program_invocation_short_name, path,
                strerror(errno));
    return 0;
}

void bench_rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t bench_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float bench_unit(uint64_t *s)
{
    return (float)(bench_splitmix64(s) >> 40) / 16777216.0f;
}

#define N_CLUSTERS 256

float *bench_clustered(uint32_t n, uint32_t dim)
{
    uint64_t s = 42;
    float *cen = malloc((size_t)N_CLUSTERS * dim * sizeof *cen);
    float *v = malloc((size_t)n * dim * sizeof *v);
    if (!cen || !v)
        bench_die("out of memory for %u x %u floats", n, dim);
    for (size_t i = 0; i < (size_t)N_CLUSTERS * dim; i++)
        cen[i] = bench_unit(&s);
    for (size_t i = 0; i < n; i++) {
        const float *c = cen + (bench_splitmix64(&s) % N_CLUSTERS) * dim;
        for (uint32_t d = 0; d < dim; d++) {
            float g = bench_unit(&s) + bench_unit(&s) + bench_unit(&s) + bench_unit(&s) - 2.0f;
            v[i * dim + d] = c[d] + 0.1f * g;
        }
    }
    free(cen);
    return v;
}
