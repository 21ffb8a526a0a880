/*
 * fuzz_parquet.c - libFuzzer target for the Parquet reader (lib/parquet_read.c,
 * lib/thrift.c, lib/snappy.c and the zstd path).
 *
 * Each input is a whole file: akidb__pqr_open() on an exact-size copy (so
 * AddressSanitizer sees any read past the end), then every accessor and
 * akidb__pqr_read() of every column of every row group, touching every
 * decoded value.  Any rc is fine; a crash, a sanitizer report, a leak, a
 * hang or an allocation beyond -malloc_limit_mb is a bug.
 *
 *   make fuzz          build into build-fuzz/ and run 60 s
 *   make fuzz-long     the same for 10 minutes
 *   build-fuzz/fuzz_parquet CRASH-FILE     replay one input
 *
 * Seeds: the committed fixtures (test/parquet_fixtures/NAME.parquet, written by
 * DuckDB and arrow-rs) and files of our own writer, which this target writes
 * itself when AKIDB_FUZZ_WRITE_SEEDS=DIR is set (LLVMFuzzerInitialize runs
 * before libFuzzer reads its corpus directories).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "akidb.h"
#include "parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static volatile uint64_t sink_sum;

static void touch_values(const akidb__pqr_values *v)
{
    uint64_t s = v->n_rows;
    for (size_t i = 0; i < v->n_rows; i++) {
        if (v->nulls)
            s += v->nulls[i];
        switch (v->kind) {
        case AKIDB__PQ_INT64: case AKIDB__PQ_TIMESTAMP_US:
            s += (uint64_t)v->i64[i];
            break;
        case AKIDB__PQ_INT32:
            s += (uint64_t)(uint32_t)v->i32[i];
            break;
        case AKIDB__PQ_FLOAT: {
            uint32_t u;
            memcpy(&u, &v->f32[i], 4);
            s += u;
            break;
        }
        case AKIDB__PQ_STRING: case AKIDB__PQ_JSON: case AKIDB__PQ_BINARY:
            for (uint64_t k = v->offsets[i]; k < v->offsets[i + 1]; k++)
                s += v->bytes[k];
            break;
        case AKIDB__PQ_FLOAT_LIST:
            for (uint64_t k = v->offsets[i]; k < v->offsets[i + 1]; k++) {
                uint32_t u;
                memcpy(&u, &v->f32[k], 4);
                s += u;
            }
            break;
        case AKIDB__PQ_INT32_LIST:
            for (uint64_t k = v->offsets[i]; k < v->offsets[i + 1]; k++)
                s += (uint64_t)(uint32_t)v->i32[k];
            break;
        default:
            break;
        }
    }
    sink_sum += s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    akidb__pqr *r = NULL;
    if (akidb__pqr_open(buf, size, NULL, &r) == AKIDB_OK) {
        size_t n_cols = akidb__pqr_num_columns(r);
        size_t n_rg = akidb__pqr_num_row_groups(r);
        sink_sum += akidb__pqr_num_rows(r);
        for (size_t c = 0; c < n_cols; c++) {
            akidb__pqr_column_info info;
            if (akidb__pqr_column(r, c, &info) == AKIDB_OK) {
                sink_sum += strlen(info.name) + strlen(info.physical) + strlen(info.logical);
                sink_sum += (uint64_t)akidb__pqr_find_column(r, info.name);
            }
        }
        (void)akidb__pqr_kv(r, "akidb.dim");
        (void)akidb__pqr_find_column(r, "vector");
        for (size_t g = 0; g < n_rg; g++) {
            sink_sum += akidb__pqr_row_group_rows(r, g);
            for (size_t c = 0; c < n_cols; c++) {
                const char *codec = akidb__pqr_codec(r, g, c);
                if (codec)
                    sink_sum += strlen(codec);
                akidb__pqr_values v;
                memset(&v, 0, sizeof v);
                if (akidb__pqr_read(r, g, c, &v) == AKIDB_OK) {
                    touch_values(&v);
                    akidb__pqr_values_free(r, &v);
                }
            }
        }
        akidb__pqr_free(r);
    }
    free(buf);
    return 0;
}

/* ---- seeds from our own writer ------------------------------------------------ */

static int file_sink(void *ctx, const void *b, size_t len)
{
    return fwrite(b, 1, len, (FILE *)ctx) == len ? AKIDB_OK : AKIDB_IOERR;
}

static void write_seed(const char *dir, int zstd_level, int bss, size_t page_bytes, size_t n_rows)
{
    static const akidb__pq_column_def cols[] = {
        { "id", AKIDB__PQ_INT64, 0 },
        { "external_id", AKIDB__PQ_STRING, 1 },
        { "vector", AKIDB__PQ_FLOAT_LIST, 0 },
        { "metadata", AKIDB__PQ_JSON, 1 },
        { "inserted_at", AKIDB__PQ_TIMESTAMP_US, 0 },
        { "level", AKIDB__PQ_INT32, 0 },
        { "links", AKIDB__PQ_INT32_LIST, 0 },
    };
    enum { DIM = 4, N = 7 };
    int64_t id[64], ts[64];
    int32_t level[64], links[64 * 3];
    float vec[64 * DIM];
    uint64_t str_off[65], vec_off[65], link_off[65];
    uint8_t nulls[64];
    char strs[64 * 12];
    if (n_rows > 64)
        n_rows = 64;
    str_off[0] = vec_off[0] = link_off[0] = 0;
    for (size_t i = 0; i < n_rows; i++) {
        id[i] = (int64_t)i * 31 - 7;
        ts[i] = INT64_C(1700000000000000) + (int64_t)i;
        level[i] = (int32_t)(i % 3);
        for (size_t k = 0; k < DIM; k++)
            vec[i * DIM + k] = (float)i / (float)(k + 1);
        vec_off[i + 1] = vec_off[i] + DIM;
        nulls[i] = i % 3 == 1;
        size_t l = nulls[i] ? 0 : (size_t)snprintf(strs + str_off[i], 12, "{\"a\":%zu}", i % 100);
        str_off[i + 1] = str_off[i] + l;
        size_t nl = i % 4;
        for (size_t k = 0; k < nl; k++)
            links[link_off[i] + k] = (int32_t)(i + k);
        link_off[i + 1] = link_off[i] + nl;
    }
    akidb__pq_values v[N];
    memset(v, 0, sizeof v);
    v[0].i64 = id;
    v[1].bytes = (const unsigned char *)strs; v[1].offsets = str_off; v[1].nulls = nulls;
    v[2].f32 = vec; v[2].offsets = vec_off;
    v[3].bytes = (const unsigned char *)strs; v[3].offsets = str_off; v[3].nulls = nulls;
    v[4].i64 = ts;
    v[5].i32 = level;
    v[6].i32 = links; v[6].offsets = link_off;

    static const char *const keys[] = { "akidb.dim" };
    static const char *const vals[] = { "4" };
    akidb__pqw_options o;
    memset(&o, 0, sizeof o);
    o.zstd_level = zstd_level;
    o.byte_stream_split = bss;
    o.page_bytes = page_bytes;
    o.kv_keys = keys;
    o.kv_values = vals;
    o.n_kv = 1;
    o.created_by = "akidb fuzz seed";
    char path[4096];
    snprintf(path, sizeof path, "%s/akidb_z%d_b%d_p%zu_n%zu.parquet", dir, zstd_level, bss,
             page_bytes, n_rows);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    akidb__pqw *w = NULL;
    uint64_t bytes;
    int rc = akidb__pqw_open(cols, N, &o, NULL, file_sink, f, &w);
    if (rc == AKIDB_OK)
        rc = akidb__pqw_write_row_group(w, n_rows, v);
    if (rc == AKIDB_OK && n_rows > 1)
        rc = akidb__pqw_write_row_group(w, n_rows / 2, v);
    if (rc == AKIDB_OK)
        rc = akidb__pqw_finish(w, &bytes);
    akidb__pqw_free(w);
    fclose(f);
    if (rc != AKIDB_OK) {
        fprintf(stderr, "fuzz seed %s: writer failed: rc %d: %s\n", path, rc, akidb_errmsg(NULL));
        exit(1);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("AKIDB_FUZZ_WRITE_SEEDS");
    if (dir && dir[0]) {
        write_seed(dir, 0, 0, 0, 5);
        write_seed(dir, 0, 1, 64, 13);
        write_seed(dir, 1, 0, 96, 20);
        write_seed(dir, 3, 1, 0, 40);
        write_seed(dir, 0, 0, 32, 1);
    }
    return 0;
}
