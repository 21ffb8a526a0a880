/*
 * server_setup.c - the in-process side of the server load test.
 *
 *   server_setup DIR N DIM THREADS SECONDS
 *
 * 1. Makes the database DIR with collection "default__bench" (the server's
 *    collection "bench" of tenant "default"): N random vectors of DIM
 *    floats, uniform in [-1, 1] (the distribution bench/server_load.c
 *    queries with), M 16, ef_construction 100, external ids "e<i>",
 *    inserted in batches of 1000.  Skipped when the collection exists.
 * 2. Measures the in-process search rate on it: THREADS threads, each
 *    running akidb_search (k 10, default ef) on random queries for SECONDS,
 *    plus akidb_document_get of every hit (what the HTTP search answer
 *    includes: the hits' external ids), and prints one JSON line.
 *    This is the peer of the HTTP search figure: same data, same machine,
 *    same run; the HTTP figure divided by this one is the ratio the issue
 *    asks for (target >= 0.6).
 * The database is closed (checkpointed) at the end, so the server opens
 * it without replaying a log.
 */
#include <akidb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLL "default__bench"

static akidb *db;
static unsigned dim;
static double seconds;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rndf(uint64_t *s)
{
    return (float)((double)(mix(s) >> 11) / 9007199254740992.0 * 2 - 1);
}

static void *worker(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 7919 + 1;
    float *q = malloc(dim * sizeof *q);
    akidb_hit hits[10];
    uint64_t *count = calloc(1, sizeof *count);
    akidb_search_params p;
    akidb_search_params_init(&p);
    double end = now_s() + seconds;
    while (now_s() < end) {
        for (unsigned i = 0; i < dim; i++)
            q[i] = rndf(&seed);
        uint32_t n = 0;
        if (akidb_search(db, COLL, q, 10, &p, hits, &n) != AKIDB_OK) {
            fprintf(stderr, "search: %s\n", akidb_errmsg(NULL));
            exit(1);
        }
        for (uint32_t h = 0; h < n; h++) {
            akidb_document d;
            memset(&d, 0, sizeof d);
            d.version = AKIDB_DOCUMENT_VERSION;
            if (akidb_document_get(db, COLL, hits[h].id, NULL, &d) == AKIDB_OK)
                akidb_document_clear(&d);
        }
        (*count)++;
    }
    free(q);
    return count;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: server_setup DIR N DIM THREADS SECONDS\n");
        return 2;
    }
    const char *dir = argv[1];
    unsigned long n = strtoul(argv[2], NULL, 10);
    dim = (unsigned)strtoul(argv[3], NULL, 10);
    int threads = atoi(argv[4]);
    seconds = atof(argv[5]);
    akidb_options o;
    akidb_options_init(&o);
    o.sync_mode = AKIDB_SYNC_NONE;
    if (akidb_open(dir, &o, &db) != AKIDB_OK) {
        fprintf(stderr, "open %s: %s\n", dir, akidb_errmsg(NULL));
        return 1;
    }
    uint64_t have = 0;
    double build_s = 0;
    if (akidb_collection_count(db, COLL, &have) != AKIDB_OK) {
        akidb_collection_config cfg;
        akidb_collection_config_init(&cfg, dim, AKIDB_METRIC_L2);
        cfg.ef_construction = 100;
        if (akidb_collection_create(db, COLL, &cfg) != AKIDB_OK) {
            fprintf(stderr, "create: %s\n", akidb_errmsg(NULL));
            return 1;
        }
        double t0 = now_s();
        uint64_t seed = 12345;
        float *v = malloc(1000 * (size_t)dim * sizeof *v);
        char names[1000][24];
        const char *ext[1000];
        for (unsigned long done = 0; done < n;) {
            size_t b = n - done < 1000 ? n - done : 1000;
            for (size_t i = 0; i < b * dim; i++)
                v[i] = rndf(&seed);
            for (size_t i = 0; i < b; i++) {
                snprintf(names[i], sizeof names[i], "e%lu", done + i);
                ext[i] = names[i];
            }
            if (akidb_insert(db, COLL, b, v, ext, NULL, NULL) != AKIDB_OK) {
                fprintf(stderr, "insert: %s\n", akidb_errmsg(NULL));
                return 1;
            }
            done += b;
        }
        free(v);
        /* Inserts are acknowledged before the background indexer links
         * them: wait for the whole graph, so the in-process figure and
         * the server (which opens the checkpoint written at close) search
         * a complete graph, with no indexing left to compete with them. */
        if (akidb_index_wait(db, COLL, AKIDB_NEVER) != AKIDB_OK) {
            fprintf(stderr, "index wait: %s\n", akidb_errmsg(NULL));
            return 1;
        }
        build_s = now_s() - t0;
        akidb_collection_count(db, COLL, &have);
    }
    pthread_t th[64];
    if (threads < 1 || threads > 64)
        threads = 1;
    double t0 = now_s();
    clock_t c0 = clock();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
    uint64_t total = 0;
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(th[i], &r);
        total += *(uint64_t *)r;
        free(r);
    }
    double wall = now_s() - t0;
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("{\"vectors\": %llu, \"dim\": %u, \"build_s\": %.1f, \"threads\": %d, "
           "\"inproc_search_qps\": %.1f, \"cpu_per_wall\": %.2f}\n",
           (unsigned long long)have, dim, build_s, threads, (double)total / wall, cpu / wall);
    if (akidb_close(db) != AKIDB_OK) {
        fprintf(stderr, "close: %s\n", akidb_errmsg(NULL));
        return 1;
    }
    return 0;
}
