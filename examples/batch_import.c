/*
 * batch_import.c - loading many documents quickly, with a progress line.
 *
 *   batch_import [DIR] [N]        (defaults ./akidb-data and 20000)
 *
 * Two ways in, both with progress:
 *   1. from memory: N vectors (generated here, deterministically) inserted
 *      in batches of BATCH with akidb_insert(), each batch one atomic
 *      write-ahead-log record;
 *   2. from a Parquet file: the collection is exported to DIR/../batch.parquet
 *      (any Parquet file with a LIST<FLOAT> column works: DuckDB, pyarrow,
 *      Polars write them) and imported into a second collection with
 *      akidb_import_parquet(), whose progress callback drives the same line.
 *
 * Bulk-load advice it follows: open with AKIDB_SYNC_NONE (no fsync per
 * batch) and call akidb_checkpoint() at the end, which writes everything
 * out and fsyncs it, so the load is durable once the program says so.
 *
 * It then checks what it loaded (counts, external ids, every sampled
 * document found by a search for its own vector) and exits non-zero if
 * anything is off, so `make test` can run it.  Uses only the public header.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "akidb.h"

enum { DIM = 64, BATCH = 1000, SAMPLES = 20, K = 10 };

#define CHECK(call)                                                         \
    do {                                                                    \
        int rc_ = (call);                                                   \
        if (rc_ != AKIDB_OK) {                                              \
            fprintf(stderr, "\n%s: %s: %s\n", #call, akidb_errname(rc_),    \
                    akidb_errmsg(db));                                      \
            goto fail;                                                      \
        }                                                                   \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The progress line: rewritten in place on a terminal, one line per
 * quarter otherwise (so logs and `make test` output stay short). */
typedef struct progress {
    const char *what;
    double start;
    int tty;
    int quarter;   /* last quarter printed when not a tty */
} progress;

static void progress_show(progress *p, uint64_t done, uint64_t total)
{
    double secs = now_s() - p->start;
    double rate = secs > 0 ? (double)done / secs : 0;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (p->tty) {
        printf("\r%s: %" PRIu64 "/%" PRIu64 " (%3d%%)  %.0f docs/s ", p->what, done, total,
               pct, rate);
        if (done == total)
            printf("\n");
        fflush(stdout);
    } else if (pct / 25 > p->quarter || done == total) {
        p->quarter = pct / 25;
        printf("%s: %" PRIu64 "/%" PRIu64 " (%d%%)  %.0f docs/s\n", p->what, done, total, pct,
               rate);
    }
}

/* akidb_import_parquet's callback: ctx is the progress line. */
static void on_import_progress(void *ctx, uint64_t rows_done, uint64_t rows_total)
{
    progress_show(ctx, rows_done, rows_total);
}

/* xorshift64*: the same data on every run and every machine. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static float rng_float(uint64_t *s)
{
    return (float)(rng_next(s) >> 40) / (float)(1u << 24) * 2.0f - 1.0f;
}

/* Vector i: one of 64 cluster centres plus noise, as embeddings tend to be. */
static void make_vector(uint64_t i, float *v)
{
    uint64_t centre = 0x9E3779B97F4A7C15ull * (i % 64 + 1), noise = 0xD1B54A32D192ED03ull * (i + 1);
    for (int d = 0; d < DIM; d++)
        v[d] = rng_float(&centre) + 0.3f * rng_float(&noise);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "./akidb-data";
    long n_arg = argc > 2 ? strtol(argv[2], NULL, 10) : 20000;
    akidb *db = NULL;
    akidb_options opts;
    akidb_collection_config cfg;
    akidb_import_options iopts;
    float *vecs = NULL;
    uint64_t *ids = NULL;
    char (*ext)[32] = NULL, (*meta)[48] = NULL;
    const char **ext_p = NULL, **meta_p = NULL;
    char parquet[4096];
    int ok = 0;

    if (n_arg < 1 || n_arg > 10000000) {
        fprintf(stderr, "usage: batch_import [DIR] [N]   (N in 1..10000000)\n");
        return 2;
    }
    const uint64_t n = (uint64_t)n_arg;
    if (snprintf(parquet, sizeof parquet, "%s.batch.parquet", dir) >= (int)sizeof parquet) {
        fprintf(stderr, "batch_import: DIR is too long\n");
        return 2;
    }

    vecs = malloc(sizeof *vecs * DIM * BATCH);
    ids = malloc(sizeof *ids * n);
    ext = malloc(sizeof *ext * BATCH);
    meta = malloc(sizeof *meta * BATCH);
    ext_p = malloc(sizeof *ext_p * BATCH);
    meta_p = malloc(sizeof *meta_p * BATCH);
    if (!vecs || !ids || !ext || !meta || !ext_p || !meta_p) {
        fprintf(stderr, "batch_import: out of memory\n");
        goto fail;
    }

    akidb_options_init(&opts);
    opts.sync_mode = AKIDB_SYNC_NONE;        /* durable at the checkpoint below */
    CHECK(akidb_open(dir, &opts, &db));
    for (int i = 0; i < 2; i++) {
        int rc = akidb_collection_drop(db, i ? "batch_parquet" : "batch");
        if (rc != AKIDB_NOTFOUND)
            CHECK(rc);
    }
    akidb_collection_config_init(&cfg, DIM, AKIDB_METRIC_L2);
    CHECK(akidb_collection_create(db, "batch", &cfg));

    /* 1. From memory, BATCH documents per call. */
    progress p = { "insert", now_s(), isatty(STDOUT_FILENO), -1 };
    for (uint64_t done = 0; done < n;) {
        size_t b = n - done < BATCH ? (size_t)(n - done) : BATCH;
        for (size_t j = 0; j < b; j++) {
            make_vector(done + j, vecs + j * DIM);
            snprintf(ext[j], sizeof ext[j], "doc-%" PRIu64, done + j);
            snprintf(meta[j], sizeof meta[j], "{\"row\": %" PRIu64 ", \"cluster\": %" PRIu64 "}",
                     done + j, (done + j) % 64);
            ext_p[j] = ext[j];
            meta_p[j] = meta[j];
        }
        CHECK(akidb_insert(db, "batch", b, vecs, ext_p, meta_p, ids + done));
        done += b;
        progress_show(&p, done, n);
    }
    double t_insert = now_s() - p.start;
    double t0 = now_s();
    CHECK(akidb_checkpoint(db, "batch"));
    printf("checkpoint (durable from here): %.2f s\n", now_s() - t0);

    /* 2. From a Parquet file. */
    CHECK(akidb_export_parquet(db, "batch", parquet));
    progress pq = { "parquet import", now_s(), isatty(STDOUT_FILENO), -1 };
    uint64_t rows = 0;
    akidb_import_options_init(&iopts);
    iopts.id_column = "external_id";
    iopts.progress = on_import_progress;
    iopts.progress_ctx = &pq;
    CHECK(akidb_import_parquet(db, "batch_parquet", parquet, &iopts, &rows));
    double t_import = now_s() - pq.start;
    CHECK(akidb_checkpoint(db, "batch_parquet"));

    /* Check what was loaded. */
    uint64_t count = 0, count_pq = 0;
    CHECK(akidb_collection_count(db, "batch", &count));
    CHECK(akidb_collection_count(db, "batch_parquet", &count_pq));
    if (count != n || count_pq != n || rows != n) {
        fprintf(stderr, "batch_import: expected %" PRIu64 " documents, have %" PRIu64
                " and %" PRIu64 " (%" PRIu64 " rows imported)\n", n, count, count_pq, rows);
        goto fail;
    }
    for (int s = 0; s < SAMPLES; s++) {
        uint64_t row = (uint64_t)s * (n / SAMPLES), id = 0;
        akidb_hit hits[K];
        uint32_t n_hits = 0;
        int found = 0;
        snprintf(ext[0], sizeof ext[0], "doc-%" PRIu64, row);
        make_vector(row, vecs);
        CHECK(akidb_lookup(db, "batch", ext[0], &id));
        CHECK(akidb_search(db, "batch", vecs, K, NULL, hits, &n_hits));
        for (uint32_t h = 0; h < n_hits; h++)
            found |= hits[h].id == id;
        if (id != ids[row] || !found) {
            fprintf(stderr, "batch_import: %s (id %" PRIu64 ") not found by its own vector\n",
                    ext[0], ids[row]);
            goto fail;
        }
        CHECK(akidb_lookup(db, "batch_parquet", ext[0], &id));
        CHECK(akidb_search(db, "batch_parquet", vecs, K, NULL, hits, &n_hits));
        found = 0;
        for (uint32_t h = 0; h < n_hits; h++)
            found |= hits[h].id == id;
        if (!found) {
            fprintf(stderr, "batch_import: %s not found in the imported collection\n", ext[0]);
            goto fail;
        }
    }
    printf("loaded %" PRIu64 " documents of dim %d: insert %.2f s (%.0f docs/s), "
           "Parquet import %.2f s (%.0f docs/s); %d samples found by search\n",
           n, DIM, t_insert, (double)n / t_insert, t_import, (double)n / t_import, SAMPLES);
    ok = 1;

fail:
    if (akidb_close(db) != AKIDB_OK) {
        fprintf(stderr, "akidb_close: %s\n", akidb_errmsg(NULL));
        ok = 0;
    }
    remove(parquet);
    free(vecs);
    free(ids);
    free(ext);
    free(meta);
    free(ext_p);
    free(meta_p);
    return ok ? 0 : 1;
}
