/*
 * fuzz_parquet.c - libFuzzer target for the Parquet reader (lib/parquet_read.c,
 * lib/thrift.c, lib/snappy.c and the zstd path) and for the snapshot and
 * checkpoint loader behind it (lib/snapshot.c, lib/hnsw.c, lib/collection.c).
 *
 * Each input is a whole file: akidb__pqr_open() on an exact-size copy (so
 * AddressSanitizer sees any read past the end), then every accessor and
 * akidb__pqr_read() of every column of every row group, touching every
 * decoded value.  Any rc is fine; a crash, a sanitizer report, a leak, a
 * hang or an allocation beyond -malloc_limit_mb is a bug.
 *
 * A file the reader accepts then goes to akidb__snap_load_reader(), as a
 * snapshot from the store or a checkpoint from disk would.  A checkpoint's
 * whole-file CRC is checked by checkpoint.c, not there, so mutated
 * checkpoints reach the decoder; and the loader reads a copy whose page
 * CRC-32s are recomputed (fix_page_crcs), so mutated pages reach the
 * graph checks too (the reader's pass above sees the input as it is).
 * The collection is created with the settings the file claims (akidb.dim,
 * akidb.metric, akidb.hnsw_m); files that claim none in range, or a graph
 * larger than MAX_LOAD_BYTES, are not loaded.  The loader may return OK,
 * CORRUPT, INVALID or NOMEM; anything else aborts.  A loaded collection
 * must then be safe to use: graph and exact searches, a get and a lookup,
 * an insert, an upsert over a loaded document, a delete of one, searches
 * over the grown graph, and a checkpoint of the result, which must load
 * again (abort otherwise: a checkpoint that cannot be reopened is a
 * database that cannot be opened).
 * Writes need a write-ahead log: one log, created at start-up in a
 * directory that is removed at once (the open descriptor keeps the file),
 * passes from collection to collection and is emptied now and then.
 *
 *   make fuzz          build into build-fuzz/ and run 60 s
 *   make fuzz-long     the same for 10 minutes
 *   build-fuzz/fuzz_parquet CRASH-FILE     replay one input
 *
 * Seeds: the committed fixtures (test/parquet_fixtures/NAME.parquet, written by
 * DuckDB and arrow-rs), files of our own writer, and real snapshots
 * (akidb_export_parquet) and checkpoints (ckpt/ID.ckpt) of small collections
 * with tombstones and upper HNSW levels, which this target writes itself
 * when AKIDB_FUZZ_WRITE_SEEDS=DIR is set (LLVMFuzzerInitialize runs before
 * libFuzzer reads its corpus directories).
 */
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "akidb.h"
#include "common/env.h"
#include "common/alloc.h"
#include "common/crc.h"
#include "engine/collection.h"
#include "index/hnsw.h"
#include "format/parquet.h"
#include "engine/snapshot.h"
#include "format/thrift.h"
#include "engine/wal.h"

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

/* ---- page checksums ------------------------------------------------------------ */

/* Most bytes of a page are under its CRC-32, so nearly every mutation of a
 * vector, a level or a link would stop at "page CRC-32 mismatch" and never
 * reach the graph checks.  For the loader's pass, the input's pages are
 * walked (they lie back to back from offset 4 to the footer in the files
 * of our writer) and every CRC field is set to its body's checksum, where
 * the new value encodes in as many bytes as the old.  Returns how many
 * checksums changed; the walk stops at the first page it cannot parse. */
static size_t fix_page_crcs(uint8_t *buf, size_t size)
{
    if (size < 12 || memcmp(buf + size - 4, "PAR1", 4) != 0)
        return 0;
    uint64_t footer_len = (uint64_t)buf[size - 8] | (uint64_t)buf[size - 7] << 8 |
                          (uint64_t)buf[size - 6] << 16 | (uint64_t)buf[size - 5] << 24;
    if (footer_len > size - 12)
        return 0;
    size_t end = size - 8 - (size_t)footer_len, off = 4, changed = 0;
    while (off < end) {
        akidb__tr t;
        akidb__tr_init(&t, buf + off, end - off, off, "fuzz page header");
        int type;
        int16_t id;
        int32_t comp = -1, v;
        size_t crc_pos = 0, crc_len = 0;
        if (akidb__tr_struct_begin(&t) != AKIDB_OK)
            return changed;
        for (;;) {
            if (akidb__tr_field(&t, &type, &id) != AKIDB_OK)
                return changed;
            if (type == AKIDB__T_STOP)
                break;
            size_t at = t.pos;
            int rc = id == 3 ? akidb__tr_i32(&t, type, &comp)
                   : id == 4 ? akidb__tr_i32(&t, type, &v) : akidb__tr_skip(&t, type);
            if (rc != AKIDB_OK)
                return changed;
            if (id == 4 && type == AKIDB__T_I32) {
                crc_pos = at;
                crc_len = t.pos - at;
            }
        }
        size_t body = off + t.pos;
        if (comp < 0 || (size_t)comp > end - body)
            return changed;
        if (crc_len) {
            uint32_t crc = akidb__crc32(0, buf + body, (size_t)comp);
            uint32_t zz = (crc << 1) ^ (0u - (crc >> 31));   /* zigzag of the i32 */
            uint8_t enc[5];
            size_t n = 0;
            do {
                enc[n] = (uint8_t)(zz & 0x7F);
                zz >>= 7;
                if (zz)
                    enc[n] |= 0x80;
                n++;
            } while (zz);
            if (n == crc_len && memcmp(buf + off + crc_pos, enc, n) != 0) {
                memcpy(buf + off + crc_pos, enc, n);
                changed++;
            }
        }
        off = body + (size_t)comp;
    }
    return changed;
}

/* ---- the snapshot and checkpoint loader -------------------------------------- */

/* Loads whose index would exceed this are skipped: the library bounds rows
 * by the file (rows * dim * 4 <= 64 * file size), but a small file may
 * still legitimately claim more rows than -rss_limit_mb allows. */
#define MAX_LOAD_BYTES ((uint64_t)256 << 20)
#define NOW_US INT64_C(1700000000000000)

/* Static: the log and every collection keep a pointer to it. */
static akidb__env fuzz_env;
static akidb__wal *fuzz_wal;

static void die(const char *what, int rc)
{
    fprintf(stderr, "fuzz_parquet: %s returned %d (%s): %s\n", what, rc, akidb_errstr(rc),
            akidb_errmsg(NULL));
    abort();
}

/* Only these may come back from a load or a use of a loaded collection;
 * NOMEM is fine too, the fuzzer caps malloc. */
static void expect(const char *what, int rc, int ok1, int ok2)
{
    if (rc != AKIDB_OK && rc != AKIDB_NOMEM && rc != ok1 && rc != ok2)
        die(what, rc);
}

/* A growing in-memory sink for re-encoding a loaded collection. */
typedef struct mem_sink {
    unsigned char *buf;
    size_t len, cap;
} mem_sink;

static int mem_sink_write(void *ctx, const void *b, size_t len)
{
    mem_sink *m = ctx;
    if (len > m->cap - m->len) {
        size_t cap = m->cap ? m->cap : 4096;
        while (len > cap - m->len)
            cap *= 2;
        unsigned char *p = realloc(m->buf, cap);
        if (!p)
            return AKIDB_NOMEM;
        m->buf = p;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, b, len);
    m->len += len;
    return AKIDB_OK;
}

/* Graph and exact search.  A query copied from a loaded vector may be
 * zero, which cosine refuses (AKIDB_INVALID); a made-up one may not. */
static void search_both(akidb__collection *c, const float *q, int from_file)
{
    akidb_hit hits[5];
    for (int exact = 0; exact <= 1; exact++) {
        akidb_search_params sp;
        akidb_search_params_init(&sp);
        sp.exact = exact;
        uint32_t n_hits = 0;
        int rc = akidb__coll_search(c, q, 5, &sp, hits, &n_hits);
        expect("akidb__coll_search", rc, from_file ? AKIDB_INVALID : AKIDB_OK, AKIDB_OK);
        for (uint32_t i = 0; rc == AKIDB_OK && i < n_hits; i++)
            sink_sum += hits[i].id + (uint64_t)(hits[i].distance != hits[i].distance);
    }
}

/* Use a freshly loaded collection the way a database would. */
static void exercise(akidb__collection *c, uint32_t dim)
{
    static float q[AKIDB_MAX_DIM], v[AKIDB_MAX_DIM];
    static char ext[AKIDB_MAX_EXTERNAL_ID_LEN + 1];
    const akidb__hnsw *h = akidb__coll_index(c);
    uint32_t n_nodes = akidb__hnsw_size(h);

    /* A query at a stored vector, and one that is none of them. */
    for (uint32_t j = 0; j < dim; j++)
        q[j] = 0.25f + (float)(j % 5) * 0.5f;
    search_both(c, q, 0);
    if (n_nodes) {
        memcpy(q, akidb__hnsw_vector(h, n_nodes / 2), (size_t)dim * sizeof(float));
        q[0] += 0.125f;
        search_both(c, q, 1);
    }

    /* A loaded document: the first live node (with its external id, if
     * one has any among the first few). */
    uint64_t live_id = 0;
    ext[0] = '\0';
    akidb__coll_rdlock(c);
    for (uint32_t i = 0; i < n_nodes && i < 64; i++) {
        uint64_t id = 0;
        const char *e = NULL, *meta = NULL;
        int64_t t;
        if (!akidb__coll_node(c, i, &id, &e, &meta, &t))
            continue;
        if (!live_id)
            live_id = id;
        if (e && !ext[0]) {
            snprintf(ext, sizeof ext, "%s", e);
            break;
        }
    }
    akidb__coll_unlock(c);
    if (live_id) {
        char *meta = NULL;
        int rc = akidb__coll_get(c, live_id, v, &meta, NULL, NULL);
        expect("akidb__coll_get", rc, AKIDB_OK, AKIDB_OK);
        akidb_free(meta);
    }
    if (ext[0]) {
        uint64_t id = 0;
        expect("akidb__coll_lookup", akidb__coll_lookup(c, ext, &id), AKIDB_OK, AKIDB_OK);
    }

    /* Grow the graph: an insert, an upsert over a loaded document, a delete. */
    akidb__coll_attach_wal(c, fuzz_wal);
    for (uint32_t j = 0; j < dim; j++)
        v[j] = 1.0f - (float)(j % 7) * 0.25f;
    const char *ins_ext[1] = { "fuzz-new" }, *ins_meta[1] = { "{\"fuzz\":1}" };
    uint64_t new_id = 0;
    int rc = akidb__coll_write(c, 0, 1, v, ins_ext, ins_meta, &new_id, NOW_US);
    expect("akidb__coll_write (insert)", rc, AKIDB_EXISTS, AKIDB_OK);
    if (rc == AKIDB_OK && new_id == 0)
        die("akidb__coll_write (insert) gave id 0,", rc);
    if (ext[0]) {
        const char *up_ext[1] = { ext };
        v[0] += 0.5f;
        rc = akidb__coll_write(c, 1, 1, v, up_ext, NULL, NULL, NOW_US + 1);
        expect("akidb__coll_write (upsert)", rc, AKIDB_OK, AKIDB_OK);
    }
    if (live_id)
        expect("akidb__coll_delete", akidb__coll_delete(c, live_id), AKIDB_OK, AKIDB_OK);
    search_both(c, q, n_nodes > 0);
    search_both(c, v, 0);
    /* The log is shared: keep it small (an fdatasync now and then). */
    akidb__wal *w = akidb__coll_detach_wal(c);
    if (akidb__wal_size(w) > ((uint64_t)1 << 20) &&
        (rc = akidb__wal_reset(w, akidb__wal_last_seq(w))) != AKIDB_OK)
        die("akidb__wal_reset", rc);

    /* A checkpoint of the grown collection must load again. */
    mem_sink m = { NULL, 0, 0 };
    akidb__coll_rdlock(c);
    rc = akidb__snap_encode_exact(&fuzz_env, c, NULL, NULL, 0, mem_sink_write, &m, "fuzz-ckpt");
    akidb__coll_unlock(c);
    expect("akidb__snap_encode_exact", rc, AKIDB_OK, AKIDB_OK);
    if (rc == AKIDB_OK) {
        akidb_collection_config cfg;
        akidb__collection *c2 = NULL;
        akidb__coll_config(c, &cfg);
        rc = akidb__coll_new("fuzz", &cfg, &fuzz_env, 1, "/nonexistent/fuzz.ckpt", &c2);
        if (rc == AKIDB_OK) {
            rc = akidb__snap_load(&fuzz_env, m.buf, m.len, "fuzz-reload", c2);
            expect("akidb__snap_load of a checkpoint of a loaded collection", rc, AKIDB_OK,
                   AKIDB_OK);
            if (rc == AKIDB_OK && akidb__coll_nodes(c2) != akidb__coll_nodes(c))
                die("akidb__snap_load of a checkpoint: node count differs,", rc);
        }
        akidb__coll_free(c2);
    }
    free(m.buf);
}

/* A setting from the file's metadata in lo..hi, or 0. */
static uint64_t kv_in_range(const akidb__pqr *r, const char *key, uint64_t lo, uint64_t hi)
{
    uint64_t x;
    if (akidb__snap_kv_u64(r, key, &x, "fuzz") != AKIDB_OK || x < lo || x > hi)
        return 0;
    return x;
}

static void load_snapshot(akidb__pqr *r)
{
    uint64_t dim = kv_in_range(r, "akidb.dim", 1, AKIDB_MAX_DIM);
    uint64_t m = kv_in_range(r, "akidb.hnsw_m", 2, 128);
    const char *ms = akidb__pqr_kv(r, "akidb.metric");
    if (!dim || !m || !ms)
        return;
    akidb_metric metric;
    if (strcmp(ms, "l2") == 0)
        metric = AKIDB_METRIC_L2;
    else if (strcmp(ms, "cosine") == 0)
        metric = AKIDB_METRIC_COSINE;
    else if (strcmp(ms, "dot") == 0)
        metric = AKIDB_METRIC_DOT;
    else
        return;
    /* What the load allocates per row: the padded vector and level-0
     * links in the index, the documents' arrays and maps (upper levels
     * come on top, about 1/M of the nodes). */
    uint64_t n = akidb__pqr_num_rows(r);
    uint64_t row_bytes = (dim + 15) / 16 * 64 + (2 * m + 1) * 4 + 128;
    if (n * dim * 4 > ((uint64_t)64 << 20) || n > MAX_LOAD_BYTES / row_bytes)
        return;

    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, (uint32_t)dim, metric);
    cfg.hnsw_m = (uint32_t)m;
    cfg.ef_construction = 16;
    cfg.ef_search = 16;
    akidb__collection *c = NULL;
    int rc = akidb__coll_new("fuzz", &cfg, &fuzz_env, 1, "/nonexistent/fuzz.ckpt", &c);
    if (rc == AKIDB_OK) {
        rc = akidb__snap_load_reader(&fuzz_env, r, "fuzz", c);
        if (rc != AKIDB_OK && rc != AKIDB_CORRUPT && rc != AKIDB_INVALID && rc != AKIDB_NOMEM)
            die("akidb__snap_load_reader", rc);
        if (rc == AKIDB_OK)
            exercise(c, (uint32_t)dim);
    } else if (rc != AKIDB_NOMEM) {
        die("akidb__coll_new", rc);
    }
    akidb__coll_free(c);
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
        int vcol = akidb__pqr_find_column(r, "vector");
        /* Where a vector column's values lie (AKIDB_EXACT_FILE reads them
         * in place): every span must be inside the file. */
        for (uint32_t per_row = 1; vcol >= 0 && per_row <= 4; per_row++) {
            akidb__pq_span *sp = NULL;
            size_t n_sp = 0;
            if (akidb__pqr_plain_spans(r, (size_t)vcol, per_row, &sp, &n_sp) != AKIDB_OK)
                continue;
            for (size_t i = 0; i < n_sp; i++) {
                if (sp[i].offset > size || sp[i].rows * per_row * 4 > size - sp[i].offset)
                    abort();
                sink_sum += buf[sp[i].offset] + sp[i].first_row;
            }
            free(sp);
        }
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
        /* The loader reads a copy whose page checksums are right. */
        uint8_t *fixed = malloc(size);
        if (fixed) {
            memcpy(fixed, data, size);
            if (fix_page_crcs(fixed, size)) {
                akidb__pqr_free(r);
                r = NULL;
                if (akidb__pqr_open(fixed, size, NULL, &r) != AKIDB_OK)
                    r = NULL;
            }
        }
        if (r)
            load_snapshot(r);
        akidb__pqr_free(r);
        free(fixed);
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

/* ---- seeds: real snapshots and checkpoints ------------------------------------ */

static void seed_check(int rc, const char *what)
{
    if (rc != AKIDB_OK) {
        fprintf(stderr, "fuzz seeds: %s: rc %d: %s\n", what, rc, akidb_errmsg(NULL));
        exit(1);
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[65536];
    size_t got;
    int ok = in && out;
    while (ok && (got = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, got, out) == got;
    ok = ok && !ferror(in);
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "fuzz seeds: cannot copy %s to %s\n", from, to);
        exit(1);
    }
}

/* One collection: n documents (every third with an external id, every
 * fifth with metadata), M small enough that upper levels exist, a tenth
 * deleted, and upserts that tombstone the nodes they replace. */
static void fill_collection(akidb *db, const char *name, uint32_t dim, akidb_metric metric,
                            uint32_t m, size_t n)
{
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, dim, metric);
    cfg.hnsw_m = m;
    cfg.ef_construction = 32;
    seed_check(akidb_collection_create(db, name, &cfg), "create");
    uint64_t state = 0x2545F4914F6CDD1Dull ^ dim;
    for (size_t i = 0; i < n; i++) {
        float v[16];
        for (uint32_t j = 0; j < dim; j++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            v[j] = (float)(state >> 40) / (float)(1u << 24) - 0.5f;
        }
        v[0] += 0.01f;   /* never the zero vector (cosine) */
        char ext[32], meta[48];
        snprintf(ext, sizeof ext, "doc-%zu", i);
        snprintf(meta, sizeof meta, "{\"i\":%zu,\"tag\":\"t%zu\"}", i, i % 7);
        const char *exts[1] = { i % 3 == 0 ? ext : NULL };
        const char *metas[1] = { i % 5 == 0 ? meta : NULL };
        uint64_t id;
        seed_check(akidb_insert(db, name, 1, v, exts, metas, &id), "insert");
        if (i % 10 == 7)
            seed_check(akidb_delete(db, name, id), "delete");
        if (i % 30 == 0 && i > 0) {
            v[0] += 0.25f;
            snprintf(ext, sizeof ext, "doc-%zu", i - 15);
            exts[0] = ext;
            seed_check(akidb_upsert(db, name, 1, v, exts, NULL, NULL), "upsert");
        }
    }
}

static void write_db_seeds(const char *seed_dir)
{
    char tmp[] = "/tmp/akidb-fuzz-seeds-XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("fuzz seeds: mkdtemp");
        exit(1);
    }
    akidb_options opts;
    akidb_options_init(&opts);
    opts.sync_mode = AKIDB_SYNC_NONE;
    akidb *db = NULL;
    seed_check(akidb_open(tmp, &opts, &db), "open");
    static const struct {
        const char *name;
        uint32_t dim;
        akidb_metric metric;
        uint32_t m;
        size_t n;
    } colls[] = {
        { "l2", 4, AKIDB_METRIC_L2, 4, 300 },
        { "cosine", 8, AKIDB_METRIC_COSINE, 4, 200 },
        { "dot", 5, AKIDB_METRIC_DOT, 3, 120 },
        { "tiny", 6, AKIDB_METRIC_L2, 2, 3 },
    };
    char path[4096], from[4096];
    for (size_t i = 0; i < sizeof colls / sizeof colls[0]; i++) {
        fill_collection(db, colls[i].name, colls[i].dim, colls[i].metric, colls[i].m,
                        colls[i].n);
        snprintf(path, sizeof path, "%s/akidb_snapshot_%s.parquet", seed_dir, colls[i].name);
        seed_check(akidb_export_parquet(db, colls[i].name, path), "export");
    }
    seed_check(akidb_checkpoint(db, NULL), "checkpoint");
    /* Checkpoints are named by the catalog's collection id: take them all. */
    snprintf(path, sizeof path, "%s/ckpt", tmp);
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        exit(1);
    }
    size_t n_ckpt = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".ckpt") != 0)
            continue;
        snprintf(from, sizeof from, "%s/ckpt/%s", tmp, e->d_name);
        snprintf(path, sizeof path, "%s/akidb_checkpoint_%s", seed_dir, e->d_name);
        copy_file(from, path);
        n_ckpt++;
    }
    closedir(d);
    seed_check(akidb_close(db), "close");
    if (nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "fuzz seeds: cannot remove %s\n", tmp);
    if (n_ckpt != sizeof colls / sizeof colls[0]) {
        fprintf(stderr, "fuzz seeds: expected %zu checkpoints, found %zu\n",
                sizeof colls / sizeof colls[0], n_ckpt);
        exit(1);
    }
}

/* The one write-ahead log every loaded collection borrows for its writes.
 * The file stays at its path until the process exits: the log notices a
 * file deleted under it and refuses writes (issue 10), so it cannot be
 * unlinked at once any more. */
static char fuzz_wal_dir[] = "/tmp/akidb-fuzz-wal-XXXXXX";
static char fuzz_wal_path[64];

static void remove_fuzz_wal(void)
{
    unlink(fuzz_wal_path);
    rmdir(fuzz_wal_dir);
}

static void open_fuzz_wal(void)
{
    fuzz_env.alloc = akidb__default_allocator;
    fuzz_env.sync_mode = AKIDB_SYNC_NONE;
    fuzz_env.checkpoint_bytes = UINT64_MAX;   /* never checkpoint on a write */
    if (!mkdtemp(fuzz_wal_dir)) {
        perror("fuzz_parquet: mkdtemp");
        exit(1);
    }
    snprintf(fuzz_wal_path, sizeof fuzz_wal_path, "%s/fuzz.wal", fuzz_wal_dir);
    atexit(remove_fuzz_wal);
    int rc = akidb__wal_create(&fuzz_env, fuzz_wal_path, 1, 1, &fuzz_wal);
    if (rc != AKIDB_OK) {
        fprintf(stderr, "fuzz_parquet: cannot create the log: %s\n", akidb_errmsg(NULL));
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
        write_db_seeds(dir);
    }
    open_fuzz_wal();
    return 0;
}
