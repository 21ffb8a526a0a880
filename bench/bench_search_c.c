/*
 * bench_search_c.c - the C side of bench/bench_python.py: time akidb_search
 * on an existing database, so the Python binding's per-call overhead can be
 * measured against the library called directly, on the same data in the
 * same run.
 *
 *   bench_search_c DIR COLLECTION QUERIES.f32 DIM K ROUNDS
 *
 * QUERIES.f32 holds raw float32 vectors of DIM values.  Each round searches
 * every query once; prints the median round's nanoseconds per search and
 * the process CPU time per search.  Public header only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "akidb.h"

static double now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_search_c DIR COLLECTION QUERIES.f32 DIM K ROUNDS\n");
        return 2;
    }
    const char *coll = argv[2];
    long dim = strtol(argv[4], NULL, 10), k = strtol(argv[5], NULL, 10);
    long rounds = strtol(argv[6], NULL, 10);
    FILE *f = fopen(argv[3], "rb");
    if (!f || dim < 1 || k < 1 || k > 1000 || rounds < 1 || rounds > 1000) {
        fprintf(stderr, "bench_search_c: bad arguments\n");
        return 2;
    }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    rewind(f);
    size_t n_q = (size_t)bytes / (sizeof(float) * (size_t)dim);
    float *q = malloc((size_t)bytes);
    akidb_hit *hits = malloc(sizeof *hits * (size_t)k);
    double *round_ns = malloc(sizeof *round_ns * (size_t)rounds);
    if (!q || !hits || !round_ns || n_q == 0 || fread(q, 1, (size_t)bytes, f) != (size_t)bytes) {
        fprintf(stderr, "bench_search_c: cannot read %s\n", argv[3]);
        return 1;
    }
    fclose(f);
    akidb *db = NULL;
    akidb_options o;
    akidb_options_init(&o);
    o.read_only = 1;
    if (akidb_open(argv[1], &o, &db) != AKIDB_OK) {
        fprintf(stderr, "open: %s\n", akidb_errmsg(NULL));
        return 1;
    }
    double cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (long r = 0; r < rounds; r++) {
        double t0 = now_ns(CLOCK_MONOTONIC);
        for (size_t i = 0; i < n_q; i++) {
            uint32_t n_hits;
            if (akidb_search(db, coll, q + i * (size_t)dim, (uint32_t)k, NULL, hits, &n_hits)) {
                fprintf(stderr, "search: %s\n", akidb_errmsg(db));
                return 1;
            }
        }
        round_ns[r] = (now_ns(CLOCK_MONOTONIC) - t0) / (double)n_q;
    }
    double cpu = (now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / (double)(n_q * (size_t)rounds);
    qsort(round_ns, (size_t)rounds, sizeof *round_ns, cmp_double);
    printf("%.0f %.0f\n", round_ns[rounds / 2], cpu);
    akidb_close(db);
    free(q);
    free(hits);
    free(round_ns);
    return 0;
}
