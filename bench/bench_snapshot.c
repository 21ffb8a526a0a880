/*
 * bench_snapshot.c - the AkiDB half of the snapshot benchmark (issue 5):
 * how long a Parquet snapshot takes to write and to restore, and how big it
 * is next to the same rows as JSON.  bench/snapshot_duckdb.mjs times DuckDB
 * writing and reading the same table; bench/run_snapshot_bench.sh runs both
 * and prints the table.
 *
 * For one size n (one invocation; --n), through the public API only:
 *   - data: n random unit-normalised dim-d float vectors (Gaussian
 *     coordinates, seeded), external id "doc-%08u" and a small JSON
 *     metadata object per row, inserted into an L2 collection with the
 *     default HNSW parameters (--efc overrides ef_construction: the build
 *     is not what is measured, and 100k x 512 at ef_construction 200 takes
 *     a long time on one core).  L2 keeps every stored float bit-identical
 *     to the generated one, so the JSON, the snapshot and DuckDB's table
 *     hold the same numbers.
 *   - create: akidb_snapshot_create() into the default local store
 *     (dir/objects), reps times, median.  Includes the Parquet writer
 *     (BYTE_STREAM_SPLIT + zstd 1, page CRCs, SHA-256), the fsync of the
 *     temporary file, the store's put (copy, fsync, rename, fsync of the
 *     directory) and the catalog row.
 *   - export: akidb_export_parquet() to a plain file (the same writer and
 *     fsync, no store): the operation that matches DuckDB's COPY.  The last
 *     export is the file DuckDB loads its table from.
 *   - restore: akidb_snapshot_restore() of one of those snapshots, reps
 *     times, median: store read, size + SHA-256 check, every page CRC,
 *     decode, the index rebuilt from the saved graph (no distance
 *     computation), the atomic swap and the checkpoint that makes the
 *     restore durable.  After each restore the count is checked and a few
 *     HNSW searches must return exactly what they returned before the
 *     snapshot: the same index, ready to search.
 *   - checkpoint: the checkpoint share of a restore, measured on its own:
 *     after each restore one row is upserted unchanged (so the log is not
 *     empty) and akidb_checkpoint() is timed.  restore - checkpoint is an
 *     estimate of the load (read, verify, decode, graph) alone.
 *   - disk: as many bytes as the snapshot written to a new file and
 *     fsync'ed (stdio + fsync), reps times, median: what the disk alone
 *     costs for one copy of the snapshot.  Create writes two copies.
 *   - json: the same rows as JSON lines (id, external_id, vector as an
 *     array of %.9g floats, metadata as an object), written to --files; the
 *     size is compared with the snapshot's bytes.
 *
 * Output: progress, and `RESULT kind=... key=value ...` lines (per
 * repetition and one `kind=akidb` summary with the medians) that the script
 * collects.  Timings are wall clock (CLOCK_MONOTONIC) with process CPU time
 * beside them; everything runs on the calling thread.
 */
#define _GNU_SOURCE
#include "akidb.h"
#include "bench_common.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COLL "snap"
#define MAX_REPS 9
#define BATCH 1000
#define N_PROBES 5

typedef struct opts {
    uint32_t n;
    uint32_t dim;
    uint32_t efc;        /* 0 = the default */
    int reps;
    uint64_t seed;
    const char *dir;     /* scratch: the database goes to dir/db-N */
    const char *files;   /* the exported Parquet and the JSON lines */
    int keep;            /* keep the database afterwards */
} opts;

static opts g_o;

/* ---- small helpers ------------------------------------------------------ */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_snapshot: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void check(int rc, const akidb *db, const char *what)
{
    if (rc != AKIDB_OK)
        die("%s: %s (%s)", what, akidb_errstr(rc), akidb_errmsg(db));
}



static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        fprintf(stderr, "bench_snapshot: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        die("%s: %s", path, strerror(errno));
    return (uint64_t)st.st_size;
}

/* ---- data --------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* (0, 1]: never 0, so the logarithm below is finite. */
static double unit_open(uint64_t *s)
{
    return ((double)(splitmix64(s) >> 11) + 1.0) / 9007199254740992.0;
}

/* n x dim Gaussian coordinates (Box-Muller), each row scaled to length 1:
 * uniform directions on the sphere, the hardest case for compression
 * (embeddings from a model compress no better: PARQUET.md measured 1.19x
 * with BYTE_STREAM_SPLIT + zstd). */
static float *gen_vectors(uint32_t n, uint32_t dim, uint64_t seed)
{
    float *v = malloc((size_t)n * dim * sizeof *v);
    if (!v)
        die("out of memory for %u x %u floats", n, dim);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        float *row = v + i * dim;
        double norm = 0;
        for (uint32_t d = 0; d < dim; d += 2) {
            double r = sqrt(-2.0 * log(unit_open(&s))), t = 6.283185307179586 * unit_open(&s);
            row[d] = (float)(r * cos(t));
            if (d + 1 < dim)
                row[d + 1] = (float)(r * sin(t));
        }
        for (uint32_t d = 0; d < dim; d++)
            norm += (double)row[d] * row[d];
        const double inv = 1.0 / sqrt(norm);
        for (uint32_t d = 0; d < dim; d++)
            row[d] = (float)(row[d] * inv);
    }
    return v;
}

static const char *const k_colors[4] = { "red", "green", "blue", "amber" };

static void ext_id(char *buf, size_t cap, uint32_t i)
{
    snprintf(buf, cap, "doc-%08u", i);
}

/* A small metadata object, 50-60 bytes. */
static void meta_json(char *buf, size_t cap, uint32_t i)
{
    snprintf(buf, cap, "{\"n\":%u,\"group\":\"g%02u\",\"color\":\"%s\",\"even\":%s}", i,
             i % 97, k_colors[i % 4], i % 2 ? "false" : "true");
}

/* ---- the phases --------------------------------------------------------- */

static akidb *open_db(const char *dir)
{
    akidb_options o;
    akidb *db = NULL;
    akidb_options_init(&o);   /* defaults: SYNC_ALWAYS, local store in dir/objects */
    check(akidb_open(dir, &o, &db), NULL, dir);
    return db;
}

/* Insert every row in batches; returns the seconds taken. */
static double build(akidb *db, const float *vec, uint64_t *ids)
{
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, g_o.dim, AKIDB_METRIC_L2);
    if (g_o.efc)
        cfg.ef_construction = g_o.efc;
    check(akidb_collection_create(db, COLL, &cfg), db, "akidb_collection_create");
    printf("build: %u x %u, L2, M=%u, ef_construction=%u, batches of %d\n", g_o.n, g_o.dim,
           cfg.hnsw_m, cfg.ef_construction, BATCH);
    fflush(stdout);
    char (*ext)[32] = malloc(BATCH * sizeof *ext);
    char (*meta)[96] = malloc(BATCH * sizeof *meta);
    const char *ext_p[BATCH], *meta_p[BATCH];
    if (!ext || !meta)
        die("out of memory");
    const double t0 = bench_now();
    double last = t0;
    for (uint32_t first = 0; first < g_o.n; first += BATCH) {
        const uint32_t k = g_o.n - first < BATCH ? g_o.n - first : BATCH;
        for (uint32_t j = 0; j < k; j++) {
            ext_id(ext[j], sizeof ext[j], first + j);
            meta_json(meta[j], sizeof meta[j], first + j);
            ext_p[j] = ext[j];
            meta_p[j] = meta[j];
        }
        check(akidb_insert(db, COLL, k, vec + (size_t)first * g_o.dim, ext_p, meta_p,
                           ids + first),
              db, "akidb_insert");
        if (bench_now() - last >= 15) {
            last = bench_now();
            printf("  %u rows, %.0f s\n", first + k, last - t0);
            fflush(stdout);
        }
    }
    free(ext);
    free(meta);
    /* Inserts are acknowledged before the background indexer links them:
     * wait for the whole graph, so the snapshots hold a complete one (as
     * before background indexing) rather than an unlinked tail. */
    check(akidb_index_wait(db, COLL, AKIDB_NEVER), db, "akidb_index_wait");
    /* Start the timed part from an empty log: nothing left to checkpoint. */
    check(akidb_checkpoint(db, COLL), db, "akidb_checkpoint");
    return bench_now() - t0;
}

/* Reference answers: N_PROBES HNSW searches (k 10, default ef) taken
 * right after the build, before any snapshot. */
static akidb_hit g_ref[N_PROBES][10];

static uint32_t probe_row(uint32_t q)
{
    return (uint32_t)(((uint64_t)q * 7919 + 13) % g_o.n);
}

/* The collection holds n documents and the probe searches walk the graph
 * to exactly the answers they gave before the snapshot (same ids, same
 * distances): the restore rebuilt the same index from the saved graph and
 * it is ready to search.  `record` stores the answers instead. */
static void check_ready(akidb *db, const float *vec, const char *when, int record)
{
    uint64_t count = 0;
    check(akidb_collection_count(db, COLL, &count), db, "akidb_collection_count");
    if (count != g_o.n)
        die("%s: %llu documents, expected %u", when, (unsigned long long)count, g_o.n);
    akidb_search_params p;
    akidb_search_params_init(&p);
    for (uint32_t q = 0; q < N_PROBES; q++) {
        akidb_hit hits[10];
        uint32_t n_hits = 0;
        check(akidb_search(db, COLL, vec + (size_t)probe_row(q) * g_o.dim, 10, &p, hits,
                           &n_hits), db, "akidb_search");
        if (n_hits != 10)
            die("%s: search %u: %u hits, expected 10", when, q, n_hits);
        if (record) {
            memcpy(g_ref[q], hits, sizeof hits);
            continue;
        }
        for (uint32_t k = 0; k < 10; k++)
            if (hits[k].id != g_ref[q][k].id || hits[k].distance != g_ref[q][k].distance)
                die("%s: search %u, hit %u: id %llu at %g; before the snapshot id %llu at %g",
                    when, q, k, (unsigned long long)hits[k].id, (double)hits[k].distance,
                    (unsigned long long)g_ref[q][k].id, (double)g_ref[q][k].distance);
    }
}

/* JSON lines: {"id":..,"external_id":"..","vector":[..],"metadata":{..}}. */
static uint64_t write_json(const char *path, const float *vec, const uint64_t *ids)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("%s: %s", path, strerror(errno));
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    for (uint32_t i = 0; i < g_o.n; i++) {
        char ext[32], meta[96];
        ext_id(ext, sizeof ext, i);
        meta_json(meta, sizeof meta, i);
        fprintf(f, "{\"id\":%llu,\"external_id\":\"%s\",\"vector\":[",
                (unsigned long long)ids[i], ext);
        const float *row = vec + (size_t)i * g_o.dim;
        for (uint32_t d = 0; d < g_o.dim; d++)
            fprintf(f, d ? ",%.9g" : "%.9g", (double)row[d]);
        fprintf(f, "],\"metadata\":%s}\n", meta);
    }
    if (fclose(f) != 0)
        die("%s: write failed", path);
    return file_size(path);
}

/* The disk's share: write `len` bytes to a new file under the scratch
 * directory and fsync it, as a snapshot's file is written (create does
 * this twice: its temporary file, then the store's copy).  *fsync_s gets
 * the fsync alone. */
static double disk_floor(const char *dir, const void *buf, size_t len, double *fsync_s)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/disk-floor.tmp", dir);
    const double t0 = bench_now();
    FILE *f = fopen(path, "w");
    if (!f || fwrite(buf, 1, len, f) != len || fflush(f) != 0)
        die("%s: write failed: %s", path, strerror(errno));
    const double t1 = bench_now();
    if (fsync(fileno(f)) != 0)
        die("%s: fsync failed: %s", path, strerror(errno));
    const double t2 = bench_now();
    fclose(f);
    unlink(path);
    *fsync_s = t2 - t1;
    return t2 - t0;
}

/* ---- main --------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_snapshot [--n N] [--dim D] [--reps R] [--efc EF] [--seed S]\n"
            "                      [--dir DIR] [--files DIR] [--keep]\n"
            "  --n N      rows (default 10000)\n"
            "  --dim D    dimension (default 512)\n"
            "  --reps R   repetitions of each timed operation, median (default 3, max %d)\n"
            "  --efc EF   ef_construction of the collection (default: the library's, 200)\n"
            "  --seed S   data seed (default 5)\n"
            "  --dir DIR  scratch; the database goes to DIR/db-N (default\n"
            "             build/bench/snapshot/tmp), removed at the end unless --keep\n"
            "  --files DIR  where akidb-N.parquet (the last export) and rows-N.jsonl go\n"
            "             (default: --dir)\n",
            MAX_REPS);
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    g_o.n = 10000;
    g_o.dim = 512;
    g_o.reps = 3;
    g_o.seed = 5;
    g_o.dir = "build/bench/snapshot/tmp";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep")) {
            g_o.keep = 1;
        } else if (!v) {
            usage();
        } else if (!strcmp(a, "--n")) {
            g_o.n = (uint32_t)strtoul(v, NULL, 10); i++;
        } else if (!strcmp(a, "--dim")) {
            g_o.dim = (uint32_t)strtoul(v, NULL, 10); i++;
        } else if (!strcmp(a, "--reps")) {
            g_o.reps = atoi(v); i++;
        } else if (!strcmp(a, "--efc")) {
            g_o.efc = (uint32_t)strtoul(v, NULL, 10); i++;
        } else if (!strcmp(a, "--seed")) {
            g_o.seed = strtoull(v, NULL, 10); i++;
        } else if (!strcmp(a, "--dir")) {
            g_o.dir = v; i++;
        } else if (!strcmp(a, "--files")) {
            g_o.files = v; i++;
        } else {
            usage();
        }
    }
    if (g_o.n < N_PROBES || g_o.dim < 1 || g_o.dim > AKIDB_MAX_DIM || g_o.reps < 1 ||
        g_o.reps > MAX_REPS)
        usage();
    if (!g_o.files)
        g_o.files = g_o.dir;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const uint32_t n = g_o.n;
    const int reps = g_o.reps;
    char dbdir[4096], pq[4096], js[4096];
    snprintf(dbdir, sizeof dbdir, "%s/db-%u", g_o.dir, n);
    snprintf(pq, sizeof pq, "%s/akidb-%u.parquet", g_o.files, n);
    snprintf(js, sizeof js, "%s/rows-%u.jsonl", g_o.files, n);
    mkdir(g_o.dir, 0755);
    mkdir(g_o.files, 0755);
    rm_tree(dbdir);

    printf("== snapshot benchmark: n=%u dim=%u reps=%d seed=%llu, libakidb %s ==\n", n,
           g_o.dim, reps, (unsigned long long)g_o.seed, akidb_version());
    float *vec = gen_vectors(n, g_o.dim, g_o.seed);
    uint64_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids)
        die("out of memory");
    /* What DuckDB must add up to when it reads every vector back. */
    double vec_sum = 0;
    for (size_t i = 0; i < (size_t)n * g_o.dim; i++)
        vec_sum += vec[i];

    akidb *db = open_db(dbdir);
    const double build_s = build(db, vec, ids);
    akidb_collection_config cfg;
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
    check(akidb_collection_info(db, COLL, &cfg), db, "akidb_collection_info");
    printf("RESULT kind=build n=%u dim=%u m=%u efc=%u seconds=%.3f\n", n, g_o.dim, cfg.hnsw_m,
           cfg.ef_construction, build_s);
    check_ready(db, vec, "after the build", 1);

    /* create */
    double create_s[MAX_REPS], create_cpu[MAX_REPS];
    char snap_id[MAX_REPS][AKIDB_SNAPSHOT_ID_LEN];
    for (int r = 0; r < reps; r++) {
        const long f0 = bench_minor_faults();
        const double c0 = bench_cpu_now(), t0 = bench_now();
        check(akidb_snapshot_create(db, COLL, snap_id[r], sizeof snap_id[r]), db,
              "akidb_snapshot_create");
        create_s[r] = bench_now() - t0;
        create_cpu[r] = bench_cpu_now() - c0;
        printf("RESULT kind=create n=%u rep=%d seconds=%.4f cpu_seconds=%.4f id=%s "
               "minor_faults=%ld\n", n, r + 1, create_s[r], create_cpu[r], snap_id[r],
               bench_minor_faults() - f0);
    }
    akidb_snapshot_info **info = NULL;
    size_t n_info = 0;
    check(akidb_snapshot_list(db, COLL, &info, &n_info), db, "akidb_snapshot_list");
    if (n_info != (size_t)reps || info[0]->rows != n)
        die("akidb_snapshot_list: %zu snapshots, newest has %llu rows; expected %d and %u",
            n_info, n_info ? (unsigned long long)info[0]->rows : 0ull, reps, n);
    const uint64_t snap_bytes = info[0]->bytes;
    for (size_t i = 1; i < n_info; i++)
        if (info[i]->bytes != snap_bytes)
            printf("note: snapshot %s has %llu bytes, %s has %llu\n", info[i]->id,
                   (unsigned long long)info[i]->bytes, info[0]->id,
                   (unsigned long long)snap_bytes);
    akidb_free(info);

    /* the disk floor: the same number of bytes written and fsync'ed */
    unsigned char *junk = malloc((size_t)snap_bytes);
    if (!junk)
        die("out of memory");
    uint64_t js_seed = g_o.seed;
    for (size_t i = 0; i < (size_t)snap_bytes; i += 8) {
        const uint64_t x = splitmix64(&js_seed);
        memcpy(junk + i, &x, (size_t)snap_bytes - i < 8 ? (size_t)snap_bytes - i : 8);
    }
    double floor_s[MAX_REPS], floor_fsync[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        floor_s[r] = disk_floor(g_o.dir, junk, (size_t)snap_bytes, &floor_fsync[r]);
        printf("RESULT kind=disk n=%u rep=%d bytes=%llu seconds=%.4f fsync_seconds=%.4f\n", n,
               r + 1, (unsigned long long)snap_bytes, floor_s[r], floor_fsync[r]);
    }

    free(junk);

    /* export: the same writer to a plain file, like DuckDB's COPY */
    double export_s[MAX_REPS], export_cpu[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        const double c0 = bench_cpu_now(), t0 = bench_now();
        check(akidb_export_parquet(db, COLL, pq), db, "akidb_export_parquet");
        export_s[r] = bench_now() - t0;
        export_cpu[r] = bench_cpu_now() - c0;
        printf("RESULT kind=export n=%u rep=%d seconds=%.4f cpu_seconds=%.4f\n", n, r + 1,
               export_s[r], export_cpu[r]);
    }
    const uint64_t export_bytes = file_size(pq);

    /* restore, and the checkpoint share of it */
    double restore_s[MAX_REPS], restore_cpu[MAX_REPS], ckpt_s[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        const char *id = snap_id[(r + 1) % reps];
        const long f0 = bench_minor_faults();
        const double c0 = bench_cpu_now(), t0 = bench_now();
        check(akidb_snapshot_restore(db, COLL, id), db, "akidb_snapshot_restore");
        restore_s[r] = bench_now() - t0;
        restore_cpu[r] = bench_cpu_now() - c0;
        const long faults = bench_minor_faults() - f0;
        check_ready(db, vec, "after the restore", 0);
        /* Upsert row 0 unchanged so that the log holds a record, then
         * time the checkpoint alone: the write a restore ends with. */
        char ext[32], meta[96];
        ext_id(ext, sizeof ext, 0);
        meta_json(meta, sizeof meta, 0);
        const char *ext_p = ext, *meta_p = meta;
        check(akidb_upsert(db, COLL, 1, vec, &ext_p, &meta_p, NULL), db, "akidb_upsert");
        const double t1 = bench_now();
        check(akidb_checkpoint(db, COLL), db, "akidb_checkpoint");
        ckpt_s[r] = bench_now() - t1;
        printf("RESULT kind=restore n=%u rep=%d seconds=%.4f cpu_seconds=%.4f id=%s "
               "checkpoint_seconds=%.4f minor_faults=%ld\n", n, r + 1, restore_s[r],
               restore_cpu[r], id, ckpt_s[r], faults);
    }

    /* JSON lines */
    const double tj = bench_now();
    const uint64_t json_bytes = write_json(js, vec, ids);
    printf("json: %s, %llu bytes, written in %.1f s\n", js, (unsigned long long)json_bytes,
           bench_now() - tj);

    for (int r = 0; r < reps; r++)
        check(akidb_snapshot_delete(db, COLL, snap_id[r]), db, "akidb_snapshot_delete");
    check(akidb_close(db), NULL, "akidb_close");
    if (!g_o.keep)
        rm_tree(dbdir);

    const double raw_bytes = (double)n * g_o.dim * 4;
    printf("RESULT kind=akidb n=%u dim=%u reps=%d m=%u efc=%u build_s=%.3f "
           "create_s=%.4f create_cpu_s=%.4f export_s=%.4f export_cpu_s=%.4f "
           "restore_s=%.4f restore_cpu_s=%.4f ckpt_s=%.4f disk_s=%.4f disk_fsync_s=%.4f "
           "snap_bytes=%llu export_bytes=%llu "
           "json_bytes=%llu raw_vector_bytes=%.0f vec_sum=%.6f parquet=%s\n",
           n, g_o.dim, reps, cfg.hnsw_m, cfg.ef_construction, build_s, bench_median(create_s, reps),
           bench_median(create_cpu, reps), bench_median(export_s, reps), bench_median(export_cpu, reps),
           bench_median(restore_s, reps), bench_median(restore_cpu, reps), bench_median(ckpt_s, reps),
           bench_median(floor_s, reps), bench_median(floor_fsync, reps), (unsigned long long)snap_bytes, (unsigned long long)export_bytes,
           (unsigned long long)json_bytes, raw_bytes, vec_sum, pq);
    printf("summary: create %.1f ms, export %.1f ms, restore %.1f ms (checkpoint %.1f ms), "
           "snapshot %.2f MB, JSON %.2f MB (%.2fx)\n",
           bench_median(create_s, reps) * 1e3, bench_median(export_s, reps) * 1e3,
           bench_median(restore_s, reps) * 1e3, bench_median(ckpt_s, reps) * 1e3, snap_bytes / 1e6,
           json_bytes / 1e6, (double)json_bytes / (double)snap_bytes);
    free(vec);
    free(ids);
    return 0;
}
