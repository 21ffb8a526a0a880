/*
 * parquet_write.c - a streaming Parquet writer for AkiDB's column shapes
 * (see docs/FORMATS.md, which every choice here follows).
 *
 * File layout:
 *
 *   "PAR1"
 *   row group 1: column chunk 1 .. column chunk N
 *                (a chunk = pages back to back: PageHeader + body)
 *   ...
 *   FileMetaData (Thrift compact) | u32 LE length of it | "PAR1"
 *
 * Each column chunk holds data pages v1 only (no dictionary): the body is
 *
 *   [u32 LE len | repetition levels]   lists only
 *   [u32 LE len | definition levels]   optional columns and lists
 *   values                             PLAIN, or BYTE_STREAM_SPLIT floats
 *
 * compressed as one block (ZSTD frame or stored), then CRC-32 (zlib's) over
 * the bytes as written.  Levels are RLE/bit-packed hybrid runs.  Pages are
 * cut at row boundaries once the values reach page_bytes.
 *
 * Shapes (both converted_type and logicalType are written, consistently):
 *
 *   INT64 / INT32 / FLOAT      <rep> int64|int32|float name
 *   STRING / JSON / BINARY     <rep> binary name (UTF8/STRING | JSON/JSON | none)
 *   TIMESTAMP_US               <rep> int64 name (TIMESTAMP_MICROS / TIMESTAMP(MICROS, UTC))
 *   FLOAT_LIST / INT32_LIST    <rep> group name (LIST) {
 *                                  repeated group list { required float|int32 element; } }
 *
 * Levels: an optional flat column has max_def 1; a required list max_rep 1,
 * max_def 1 ([a,b,c] = rep 0,1,1 def 1,1,1; [] = rep 0 def 0); an optional
 * list max_def 2 (null = def 0, [] = def 1, elements def 2).
 *
 * Memory: one page's scratch buffers plus the metadata of the chunks
 * already written; pages go to the sink as soon as they are built, so a
 * row group is never copied as a whole.  After any error the writer is
 * dead: every later call returns that error.
 */
#include <string.h>
#include <zstd.h>
#if defined(__SSE2__)
#  include <emmintrin.h>
#endif

#include "common/env.h"
#include "common/alloc.h"
#include "common/crc.h"
#include "format/parquet.h"
#include "format/thrift.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#  error "parquet_write.c assumes a little-endian host (Parquet is little-endian)"
#endif

/* Parquet enums (parquet.thrift). */
enum { PT_INT32 = 1, PT_INT64 = 2, PT_FLOAT = 4, PT_BYTE_ARRAY = 6 };
enum { REP_REQUIRED = 0, REP_OPTIONAL = 1, REP_REPEATED = 2 };
enum { CT_UTF8 = 0, CT_LIST = 3, CT_TIMESTAMP_MICROS = 10, CT_JSON = 19 };
enum { LT_STRING = 1, LT_LIST = 3, LT_TIMESTAMP = 8, LT_JSON = 12 };
enum { ENC_PLAIN = 0, ENC_RLE = 3, ENC_BYTE_STREAM_SPLIT = 9 };
enum { CODEC_UNCOMPRESSED = 0, CODEC_ZSTD = 6 };
enum { PAGE_DATA = 0 };

#define DEFAULT_PAGE_BYTES (1u << 20)
#define MAX_PAGE_BYTES (256u << 20)
/* Room left below INT32_MAX for level bytes and the page's last row. */
#define PAGE_I32_LIMIT ((size_t)INT32_MAX - 4096)

/* ---- growable byte buffer ---------------------------------------------- */

typedef struct bbuf {
    unsigned char *p;
    size_t len, cap;
} bbuf;

/* Ensure room for n more bytes; 0 or -1 (out of memory). */
static int bb_reserve(const akidb_allocator *a, bbuf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return -1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    unsigned char *p = akidb__realloc(a, b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void bb_free(const akidb_allocator *a, bbuf *b)
{
    akidb__free(a, b->p);
    memset(b, 0, sizeof *b);
}

static inline void put_u32le(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* ---- RLE / bit-packed hybrid encoder for levels (bit width 1..8) -------
 *
 * The parquet-mr scheme: values are buffered in groups of 8; 8 or more
 * equal values in a row become an RLE run, anything else is bit-packed
 * (up to 63 groups per run, so the run header is one byte).  put_run()
 * makes a long run cost O(1) once it is established.  The output is the
 * caller's bbuf; the encoder never shrinks or rewinds it except to patch
 * a bit-packed run's reserved header byte. */

typedef struct rle_enc {
    const akidb_allocator *a;
    bbuf *out;
    int bw;
    int nomem;
    uint32_t prev;
    size_t repeat;
    uint32_t buf[8];
    int n_buf;
    size_t bp_hdr;              /* offset of the open bit-packed run's header, or SIZE_MAX */
    int bp_groups;
} rle_enc;

static void rle_init(rle_enc *e, const akidb_allocator *a, bbuf *out, int bw)
{
    memset(e, 0, sizeof *e);
    e->a = a;
    e->out = out;
    e->bw = bw;
    e->prev = UINT32_MAX;
    e->bp_hdr = SIZE_MAX;
}

static void rle_end_bp(rle_enc *e)
{
    if (e->bp_hdr != SIZE_MAX) {
        e->out->p[e->bp_hdr] = (unsigned char)(e->bp_groups << 1 | 1);
        e->bp_hdr = SIZE_MAX;
        e->bp_groups = 0;
    }
}

static void rle_write_varint(rle_enc *e, uint64_t v)
{
    if (bb_reserve(e->a, e->out, 10)) {
        e->nomem = 1;
        return;
    }
    unsigned char *o = e->out->p + e->out->len;
    while (v >= 0x80) {
        *o++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *o++ = (unsigned char)v;
    e->out->len = (size_t)(o - e->out->p);
}

static void rle_write_run(rle_enc *e)
{
    rle_end_bp(e);
    rle_write_varint(e, (uint64_t)e->repeat << 1);
    if (!e->nomem && !bb_reserve(e->a, e->out, 1))
        e->out->p[e->out->len++] = (unsigned char)e->prev;
    else
        e->nomem = 1;
    e->repeat = 0;
    e->n_buf = 0;
}

static void rle_write_group(rle_enc *e)
{
    if (e->bp_groups >= 63)
        rle_end_bp(e);
    if (bb_reserve(e->a, e->out, 1 + 8)) {
        e->nomem = 1;
        e->n_buf = 0;
        return;
    }
    if (e->bp_hdr == SIZE_MAX) {
        e->bp_hdr = e->out->len;
        e->out->p[e->out->len++] = 0;
    }
    uint64_t acc = 0;
    for (int i = 0; i < 8; i++)
        acc |= (uint64_t)e->buf[i] << (i * e->bw);
    memcpy(e->out->p + e->out->len, &acc, (size_t)e->bw);
    e->out->len += (size_t)e->bw;
    e->bp_groups++;
    e->n_buf = 0;
    e->repeat = 0;
}

static inline void rle_put(rle_enc *e, uint32_t v)
{
    if (v == e->prev) {
        if (++e->repeat >= 8)
            return;
    } else {
        if (e->repeat >= 8)
            rle_write_run(e);
        e->repeat = 1;
        e->prev = v;
    }
    e->buf[e->n_buf++] = v;
    if (e->n_buf == 8)
        rle_write_group(e);
}

static inline void rle_put_run(rle_enc *e, uint32_t v, size_t n)
{
    while (n && !(v == e->prev && e->repeat >= 8)) {
        rle_put(e, v);
        n--;
    }
    e->repeat += n;
}

static void rle_finish(rle_enc *e)
{
    if (e->repeat >= 8) {
        rle_write_run(e);
    } else if (e->n_buf > 0) {
        while (e->n_buf < 8)
            e->buf[e->n_buf++] = 0;
        rle_write_group(e);
    }
    rle_end_bp(e);
}

/* ---- BYTE_STREAM_SPLIT ---------------------------------------------------- */

/* n floats from src into 4 streams of n bytes at dst (stream k = byte k of
 * every value).  On x86-64 (SSE2 is part of the base ISA) 16 values at a
 * time are transposed with three rounds of byte interleaves. */
static void bss_split4(unsigned char *dst, const float *src, size_t n)
{
    unsigned char *d0 = dst, *d1 = dst + n, *d2 = dst + 2 * n, *d3 = dst + 3 * n;
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
        const __m128i *q = (const __m128i *)(const void *)(s + 4 * i);
        __m128i v0 = _mm_loadu_si128(q), v1 = _mm_loadu_si128(q + 1);
        __m128i v2 = _mm_loadu_si128(q + 2), v3 = _mm_loadu_si128(q + 3);
        __m128i t0 = _mm_unpacklo_epi8(v0, v1), t1 = _mm_unpackhi_epi8(v0, v1);
        __m128i t2 = _mm_unpacklo_epi8(v2, v3), t3 = _mm_unpackhi_epi8(v2, v3);
        __m128i u0 = _mm_unpacklo_epi8(t0, t1), u1 = _mm_unpackhi_epi8(t0, t1);
        __m128i u2 = _mm_unpacklo_epi8(t2, t3), u3 = _mm_unpackhi_epi8(t2, t3);
        __m128i w0 = _mm_unpacklo_epi8(u0, u1), w1 = _mm_unpackhi_epi8(u0, u1);
        __m128i w2 = _mm_unpacklo_epi8(u2, u3), w3 = _mm_unpackhi_epi8(u2, u3);
        _mm_storeu_si128((__m128i *)(void *)(d0 + i), _mm_unpacklo_epi64(w0, w2));
        _mm_storeu_si128((__m128i *)(void *)(d1 + i), _mm_unpackhi_epi64(w0, w2));
        _mm_storeu_si128((__m128i *)(void *)(d2 + i), _mm_unpacklo_epi64(w1, w3));
        _mm_storeu_si128((__m128i *)(void *)(d3 + i), _mm_unpackhi_epi64(w1, w3));
    }
#endif
    for (; i < n; i++) {
        d0[i] = s[4 * i];
        d1[i] = s[4 * i + 1];
        d2[i] = s[4 * i + 2];
        d3[i] = s[4 * i + 3];
    }
}

/* ---- writer state ----------------------------------------------------- */

typedef struct pqw_col {
    char *name;
    akidb__pq_kind kind;
    int optional;
    int is_list;
    int phys;                   /* leaf physical type */
    int max_def, max_rep;
    int value_enc;              /* PLAIN or BYTE_STREAM_SPLIT */
} pqw_col;

typedef struct pqw_chunk {
    int64_t num_values;         /* level entries */
    int64_t unc_size, comp_size;    /* page headers included */
    int64_t data_off;
} pqw_chunk;

typedef struct pqw_rg {
    int64_t num_rows;
    int64_t file_offset;
    pqw_chunk *chunks;
} pqw_rg;

struct akidb__pqw {
    akidb_allocator alloc;
    akidb__pq_sink sink;
    void *sink_ctx;
    pqw_col *cols;
    size_t n_cols;
    int zstd_level;
    size_t page_bytes;
    char **kv_keys, **kv_vals;
    size_t n_kv;
    char *created_by;

    uint64_t pos;               /* bytes written so far */
    int64_t total_rows;
    int rc;                     /* sticky error */
    int finished;
    pqw_rg *rgs;
    size_t n_rgs, cap_rgs;

    bbuf rep, def, body, comp;  /* one page's scratch */
    akidb__tw tw;
    ZSTD_CCtx *cctx;
};

static int w_fail(akidb__pqw *w, int rc)
{
    if (!w->rc)
        w->rc = rc;
    return rc;
}

static int w_nomem(akidb__pqw *w)
{
    return w_fail(w, akidb__err(AKIDB_NOMEM, "parquet writer: out of memory"));
}

static int w_emit(akidb__pqw *w, const void *p, size_t len)
{
    if (!len)
        return AKIDB_OK;
    int rc = w->sink(w->sink_ctx, p, len);
    if (rc != AKIDB_OK) {
        if (!akidb__err_is_set())
            akidb__err(rc, "parquet writer: the sink failed at offset %llu",
                       (unsigned long long)w->pos);
        return w_fail(w, rc);
    }
    w->pos += len;
    return AKIDB_OK;
}

static int kind_valid(akidb__pq_kind k)
{
    return k >= AKIDB__PQ_INT64 && k <= AKIDB__PQ_BINARY;
}

static void w_release(akidb__pqw *w)
{
    const akidb_allocator *a = &w->alloc;
    for (size_t i = 0; w->cols && i < w->n_cols; i++)
        akidb__free(a, w->cols[i].name);
    akidb__free(a, w->cols);
    for (size_t i = 0; i < w->n_kv; i++) {
        akidb__free(a, w->kv_keys ? w->kv_keys[i] : NULL);
        akidb__free(a, w->kv_vals ? w->kv_vals[i] : NULL);
    }
    akidb__free(a, w->kv_keys);
    akidb__free(a, w->kv_vals);
    akidb__free(a, w->created_by);
    for (size_t i = 0; i < w->n_rgs; i++)
        akidb__free(a, w->rgs[i].chunks);
    akidb__free(a, w->rgs);
    bb_free(a, &w->rep);
    bb_free(a, &w->def);
    bb_free(a, &w->body);
    bb_free(a, &w->comp);
    akidb__tw_free(&w->tw);
    ZSTD_freeCCtx(w->cctx);
    akidb_allocator copy = *a;
    akidb__free(&copy, w);
}

void akidb__pqw_free(akidb__pqw *w)
{
    if (w)
        w_release(w);
}

int akidb__pqw_open(const akidb__pq_column_def *cols, size_t n_cols,
                    const akidb__pqw_options *opts, const akidb_allocator *alloc,
                    akidb__pq_sink sink, void *sink_ctx, akidb__pqw **out)
{
    *out = NULL;
    if (!alloc)
        alloc = &akidb__default_allocator;
    if (!sink || (!cols && n_cols))
        return akidb__err(AKIDB_INVALID, "parquet writer: no sink or no columns");
    if (n_cols == 0)
        return akidb__err(AKIDB_INVALID, "parquet writer: a file needs at least one column");
    if (n_cols > INT32_MAX / 4)
        return akidb__err(AKIDB_INVALID, "parquet writer: too many columns (%zu)", n_cols);
    akidb__pqw_options o;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    if (o.zstd_level < 0 || o.zstd_level > 19)
        return akidb__err(AKIDB_INVALID, "parquet writer: zstd level %d is out of range 0..19",
                          o.zstd_level);
    if (o.n_kv && (!o.kv_keys || !o.kv_values))
        return akidb__err(AKIDB_INVALID, "parquet writer: key_value_metadata arrays missing");
    for (size_t i = 0; i < n_cols; i++) {
        if (!cols[i].name || !cols[i].name[0])
            return akidb__err(AKIDB_INVALID, "parquet writer: column %zu has no name", i);
        if (!kind_valid(cols[i].kind))
            return akidb__err(AKIDB_INVALID, "parquet writer: column %s: unknown kind %d",
                              cols[i].name, (int)cols[i].kind);
        for (size_t j = 0; j < i; j++)
            if (strcmp(cols[i].name, cols[j].name) == 0)
                return akidb__err(AKIDB_INVALID, "parquet writer: column %s appears twice",
                                  cols[i].name);
    }
    for (size_t i = 0; i < o.n_kv; i++)
        if (!o.kv_keys[i])
            return akidb__err(AKIDB_INVALID, "parquet writer: key_value_metadata key %zu is NULL",
                              i);

    akidb__pqw *w = akidb__calloc(alloc, 1, sizeof *w);
    if (!w)
        return akidb__err(AKIDB_NOMEM, "parquet writer: out of memory");
    w->alloc = *alloc;
    const akidb_allocator *a = &w->alloc;
    w->sink = sink;
    w->sink_ctx = sink_ctx;
    w->zstd_level = o.zstd_level;
    w->page_bytes = o.page_bytes ? o.page_bytes : DEFAULT_PAGE_BYTES;
    if (w->page_bytes > MAX_PAGE_BYTES)
        w->page_bytes = MAX_PAGE_BYTES;
    akidb__tw_init(&w->tw, a);

    w->cols = akidb__calloc(a, n_cols, sizeof *w->cols);
    if (!w->cols)
        goto nomem;
    w->n_cols = n_cols;
    for (size_t i = 0; i < n_cols; i++) {
        pqw_col *c = &w->cols[i];
        if (!(c->name = akidb__strdup(a, cols[i].name)))
            goto nomem;
        c->kind = cols[i].kind;
        c->optional = cols[i].optional != 0;
        c->value_enc = ENC_PLAIN;
        switch (c->kind) {
        case AKIDB__PQ_INT64:
        case AKIDB__PQ_TIMESTAMP_US:
            c->phys = PT_INT64;
            break;
        case AKIDB__PQ_INT32:
            c->phys = PT_INT32;
            break;
        case AKIDB__PQ_FLOAT:
            c->phys = PT_FLOAT;
            if (o.byte_stream_split)
                c->value_enc = ENC_BYTE_STREAM_SPLIT;
            break;
        case AKIDB__PQ_STRING:
        case AKIDB__PQ_JSON:
        case AKIDB__PQ_BINARY:
            c->phys = PT_BYTE_ARRAY;
            break;
        case AKIDB__PQ_FLOAT_LIST:
            c->phys = PT_FLOAT;
            c->is_list = 1;
            if (o.byte_stream_split)
                c->value_enc = ENC_BYTE_STREAM_SPLIT;
            break;
        case AKIDB__PQ_INT32_LIST:
            c->phys = PT_INT32;
            c->is_list = 1;
            break;
        }
        c->max_rep = c->is_list;
        c->max_def = c->is_list + c->optional;
    }
    if (o.n_kv) {
        w->kv_keys = akidb__calloc(a, o.n_kv, sizeof *w->kv_keys);
        w->kv_vals = akidb__calloc(a, o.n_kv, sizeof *w->kv_vals);
        if (!w->kv_keys || !w->kv_vals)
            goto nomem;
        w->n_kv = o.n_kv;
        for (size_t i = 0; i < o.n_kv; i++) {
            if (!(w->kv_keys[i] = akidb__strdup(a, o.kv_keys[i])))
                goto nomem;
            if (o.kv_values[i] && !(w->kv_vals[i] = akidb__strdup(a, o.kv_values[i])))
                goto nomem;
        }
    }
    w->created_by = akidb__strdup(a, o.created_by ? o.created_by
                                                  : "akidb version " AKIDB_VERSION_STRING);
    if (!w->created_by)
        goto nomem;
    if (w->zstd_level > 0) {
        if (!(w->cctx = ZSTD_createCCtx()))
            goto nomem;
        if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->zstd_level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 0))) {
            w_release(w);
            return akidb__err(AKIDB_INVALID, "parquet writer: zstd rejected level %d",
                              o.zstd_level);
        }
    }
    int rc = w_emit(w, "PAR1", 4);
    if (rc) {
        w_release(w);
        return rc;
    }
    *out = w;
    return AKIDB_OK;
nomem:
    w_release(w);
    return akidb__err(AKIDB_NOMEM, "parquet writer: out of memory");
}

/* ---- input validation ------------------------------------------------- */

static int check_values(const pqw_col *c, size_t n_rows, const akidb__pq_values *v)
{
    if (!c->optional && v->nulls) {
        for (size_t r = 0; r < n_rows; r++)
            if (v->nulls[r])
                return akidb__err(AKIDB_INVALID, "parquet writer: column %s is required but row "
                                  "%zu is null", c->name, r);
    }
    switch (c->kind) {
    case AKIDB__PQ_INT64:
    case AKIDB__PQ_TIMESTAMP_US:
        if (!v->i64 && n_rows)
            goto missing;
        return AKIDB_OK;
    case AKIDB__PQ_INT32:
        if (!v->i32 && n_rows)
            goto missing;
        return AKIDB_OK;
    case AKIDB__PQ_FLOAT:
        if (!v->f32 && n_rows)
            goto missing;
        return AKIDB_OK;
    default:
        break;
    }
    if (!v->offsets)
        goto missing;
    for (size_t r = 0; r < n_rows; r++) {
        if (v->offsets[r + 1] < v->offsets[r])
            return akidb__err(AKIDB_INVALID, "parquet writer: column %s: offsets decrease at "
                              "row %zu", c->name, r);
        if (c->is_list && v->offsets[r + 1] - v->offsets[r] > (uint64_t)INT32_MAX / 8)
            return akidb__err(AKIDB_INVALID, "parquet writer: column %s: row %zu has too many "
                              "elements", c->name, r);
        if (!c->is_list && v->offsets[r + 1] - v->offsets[r] > PAGE_I32_LIMIT / 2)
            return akidb__err(AKIDB_INVALID, "parquet writer: column %s: row %zu is too long "
                              "for a page", c->name, r);
    }
    if (v->offsets[n_rows] > v->offsets[0]) {
        if (c->kind == AKIDB__PQ_FLOAT_LIST && !v->f32 && !v->f32_rows)
            goto missing;
        if (c->kind == AKIDB__PQ_INT32_LIST && !v->i32)
            goto missing;
        if (!c->is_list && !v->bytes)
            goto missing;
    }
    return AKIDB_OK;
missing:
    return akidb__err(AKIDB_INVALID, "parquet writer: column %s: values missing for kind %d",
                      c->name, (int)c->kind);
}

/* ---- pages ------------------------------------------------------------- */

static inline int is_null(const akidb__pq_values *v, size_t r)
{
    return v->nulls && v->nulls[r];
}

/* Values bytes of row r (0 for a null), the measure pages are cut by. */
static inline size_t row_bytes(const pqw_col *c, const akidb__pq_values *v, size_t r)
{
    if (is_null(v, r))
        return 0;
    switch (c->kind) {
    case AKIDB__PQ_INT64:
    case AKIDB__PQ_TIMESTAMP_US:
        return 8;
    case AKIDB__PQ_INT32:
    case AKIDB__PQ_FLOAT:
        return 4;
    case AKIDB__PQ_FLOAT_LIST:
    case AKIDB__PQ_INT32_LIST:
        return 4 * (size_t)(v->offsets[r + 1] - v->offsets[r]);
    default:
        return 4 + (size_t)(v->offsets[r + 1] - v->offsets[r]);
    }
}

/* Encode the levels of rows [r0, r1) into w->rep / w->def (each prefixed
 * by its u32 length, as v1 pages want); returns the number of entries. */
static int encode_levels(akidb__pqw *w, const pqw_col *c, const akidb__pq_values *v,
                         size_t r0, size_t r1, int64_t *n_entries)
{
    const akidb_allocator *a = &w->alloc;
    rle_enc er, ed;
    int64_t n = 0;
    w->rep.len = w->def.len = 0;
    if (c->max_def == 0) {
        *n_entries = (int64_t)(r1 - r0);
        return AKIDB_OK;
    }
    if (bb_reserve(a, &w->rep, 4) || bb_reserve(a, &w->def, 4))
        return w_nomem(w);
    w->rep.len = w->def.len = 4;
    rle_init(&er, a, &w->rep, 1);
    rle_init(&ed, a, &w->def, c->max_def > 1 ? 2 : 1);
    if (!c->is_list) {
        for (size_t r = r0; r < r1; r++)
            rle_put(&ed, !is_null(v, r));
        n = (int64_t)(r1 - r0);
    } else {
        const uint32_t list_def = (uint32_t)c->optional;
        for (size_t r = r0; r < r1; r++) {
            size_t k = (size_t)(v->offsets[r + 1] - v->offsets[r]);
            rle_put(&er, 0);
            if (is_null(v, r)) {
                rle_put(&ed, 0);
                n++;
            } else if (k == 0) {
                rle_put(&ed, list_def);
                n++;
            } else {
                rle_put_run(&er, 1, k - 1);
                rle_put_run(&ed, (uint32_t)c->max_def, k);
                n += (int64_t)k;
            }
        }
        rle_finish(&er);
        put_u32le(w->rep.p, (uint32_t)(w->rep.len - 4));
    }
    rle_finish(&ed);
    put_u32le(w->def.p, (uint32_t)(w->def.len - 4));
    if (er.nomem || ed.nomem)
        return w_nomem(w);
    if (!c->is_list)
        w->rep.len = 0;
    *n_entries = n;
    return AKIDB_OK;
}

/* Append the values of rows [r0, r1) to w->body (already holding levels):
 * PLAIN values are copied in place; BYTE_STREAM_SPLIT floats are split
 * straight from the caller's array when the rows are contiguous, else
 * gathered (from f32_rows, or around nulls) behind the page first. */
static int encode_values(akidb__pqw *w, const pqw_col *c, const akidb__pq_values *v,
                         size_t r0, size_t r1, size_t value_bytes)
{
    const akidb_allocator *a = &w->alloc;
    bbuf *b = &w->body;
    const int bss = c->value_enc == ENC_BYTE_STREAM_SPLIT;
    if (bb_reserve(a, b, bss ? 2 * value_bytes : value_bytes))
        return w_nomem(w);
    unsigned char *o = b->p + b->len;
    unsigned char *gather = bss ? o + value_bytes : o;
    const unsigned char *contiguous = NULL;
    const int has_nulls = v->nulls != NULL;
    switch (c->kind) {
    case AKIDB__PQ_INT64:
    case AKIDB__PQ_TIMESTAMP_US:
    case AKIDB__PQ_INT32:
    case AKIDB__PQ_FLOAT: {
        const size_t width = c->phys == PT_INT64 ? 8 : 4;
        const unsigned char *src = c->phys == PT_INT64 ? (const void *)v->i64
                                 : c->phys == PT_INT32 ? (const void *)v->i32
                                                       : (const void *)v->f32;
        if (!has_nulls) {
            contiguous = src + r0 * width;
        } else {
            unsigned char *q = gather;
            for (size_t r = r0; r < r1; r++)
                if (!v->nulls[r]) {
                    memcpy(q, src + r * width, width);
                    q += width;
                }
        }
        break;
    }
    case AKIDB__PQ_FLOAT_LIST:
    case AKIDB__PQ_INT32_LIST: {
        const unsigned char *src = c->phys == PT_FLOAT ? (const void *)v->f32
                                                       : (const void *)v->i32;
        if (c->kind == AKIDB__PQ_FLOAT_LIST && v->f32_rows) {
            unsigned char *q = gather;
            for (size_t r = r0; r < r1; r++) {
                size_t k = (size_t)(v->offsets[r + 1] - v->offsets[r]);
                if (!is_null(v, r) && k) {
                    memcpy(q, v->f32_rows[r], k * 4);
                    q += k * 4;
                }
            }
        } else if (!has_nulls) {
            if (value_bytes)
                contiguous = src + v->offsets[r0] * 4;
        } else {
            unsigned char *q = gather;
            for (size_t r = r0; r < r1; r++) {
                size_t k = (size_t)(v->offsets[r + 1] - v->offsets[r]);
                if (!v->nulls[r] && k) {
                    memcpy(q, src + v->offsets[r] * 4, k * 4);
                    q += k * 4;
                }
            }
        }
        break;
    }
    default: {
        unsigned char *q = o;
        for (size_t r = r0; r < r1; r++) {
            if (is_null(v, r))
                continue;
            size_t k = (size_t)(v->offsets[r + 1] - v->offsets[r]);
            put_u32le(q, (uint32_t)k);
            if (k)
                memcpy(q + 4, v->bytes + v->offsets[r], k);
            q += 4 + k;
        }
        break;
    }
    }
    if (bss)
        bss_split4(o, (const float *)(const void *)(contiguous ? contiguous : gather),
                   value_bytes / 4);
    else if (contiguous && value_bytes)
        memcpy(o, contiguous, value_bytes);
    b->len += value_bytes;
    return AKIDB_OK;
}

/* Build, compress, checksum and emit one data page of rows [r0, r1). */
static int write_page(akidb__pqw *w, const pqw_col *c, pqw_chunk *ch,
                      const akidb__pq_values *v, size_t r0, size_t r1, size_t value_bytes)
{
    const akidb_allocator *a = &w->alloc;
    int64_t n_entries = 0;
    int rc = encode_levels(w, c, v, r0, r1, &n_entries);
    if (rc)
        return rc;
    w->body.len = 0;
    if (bb_reserve(a, &w->body, w->rep.len + w->def.len))
        return w_nomem(w);
    if (w->rep.len)
        memcpy(w->body.p, w->rep.p, w->rep.len);
    if (w->def.len)
        memcpy(w->body.p + w->rep.len, w->def.p, w->def.len);
    w->body.len = w->rep.len + w->def.len;
    if ((rc = encode_values(w, c, v, r0, r1, value_bytes)))
        return rc;
    if (w->body.len > (size_t)INT32_MAX || n_entries > INT32_MAX)
        return w_fail(w, akidb__err(AKIDB_INVALID, "parquet writer: column %s: page too large",
                                    c->name));

    const unsigned char *page = w->body.p;
    size_t page_len = w->body.len;
    if (w->cctx) {
        size_t bound = ZSTD_compressBound(w->body.len);
        w->comp.len = 0;
        if (bb_reserve(a, &w->comp, bound))
            return w_nomem(w);
        size_t z = ZSTD_compress2(w->cctx, w->comp.p, bound, w->body.p, w->body.len);
        if (ZSTD_isError(z))
            return w_fail(w, akidb__err(AKIDB_NOMEM, "parquet writer: zstd: %s",
                                        ZSTD_getErrorName(z)));
        if (z > (size_t)INT32_MAX)
            return w_fail(w, akidb__err(AKIDB_INVALID, "parquet writer: column %s: page too large",
                                        c->name));
        page = w->comp.p;
        page_len = z;
    }
    uint32_t crc = akidb__crc32(0, page, page_len);

    akidb__tw *t = &w->tw;
    akidb__tw_reset(t);
    akidb__tw_i32(t, 1, PAGE_DATA);
    akidb__tw_i32(t, 2, (int32_t)w->body.len);
    akidb__tw_i32(t, 3, (int32_t)page_len);
    akidb__tw_i32(t, 4, (int32_t)crc);
    akidb__tw_struct_begin(t, 5);
    akidb__tw_i32(t, 1, (int32_t)n_entries);
    akidb__tw_i32(t, 2, c->value_enc);
    akidb__tw_i32(t, 3, ENC_RLE);
    akidb__tw_i32(t, 4, ENC_RLE);
    akidb__tw_struct_end(t);
    akidb__tw_struct_end(t);
    if (akidb__tw_error(t))
        return w_nomem(w);

    if ((rc = w_emit(w, t->buf, t->len)) || (rc = w_emit(w, page, page_len)))
        return rc;
    ch->num_values += n_entries;
    ch->unc_size += (int64_t)(t->len + w->body.len);
    ch->comp_size += (int64_t)(t->len + page_len);
    return AKIDB_OK;
}

static int write_chunk(akidb__pqw *w, const pqw_col *c, pqw_chunk *ch, size_t n_rows,
                       const akidb__pq_values *v)
{
    int rc;
    size_t r0 = 0, bytes = 0, entries = 0;
    ch->data_off = (int64_t)w->pos;
    for (size_t r = 0; r < n_rows; r++) {
        size_t rb = row_bytes(c, v, r);
        size_t re = c->is_list && rb ? rb / 4 : 1;
        /* Cut before this row if the page is already big enough, or if
         * adding it could overflow a page's i32 sizes or counts. */
        if (r > r0 && (bytes >= w->page_bytes || bytes + rb > PAGE_I32_LIMIT ||
                       entries + re > (size_t)INT32_MAX / 2)) {
            if ((rc = write_page(w, c, ch, v, r0, r, bytes)))
                return rc;
            r0 = r;
            bytes = entries = 0;
        }
        bytes += rb;
        entries += re;
    }
    return write_page(w, c, ch, v, r0, n_rows, bytes);
}

int akidb__pqw_write_row_group(akidb__pqw *w, size_t n_rows, const akidb__pq_values *vals)
{
    if (!w)
        return akidb__err(AKIDB_INVALID, "parquet writer: NULL writer");
    if (w->rc)
        return akidb__err(w->rc, "parquet writer: an earlier call failed");
    if (w->finished)
        return akidb__err(AKIDB_INVALID, "parquet writer: already finished");
    if (n_rows == 0)
        return AKIDB_OK;
    if (!vals)
        return akidb__err(AKIDB_INVALID, "parquet writer: no values");
    if (n_rows > (size_t)INT64_MAX - (size_t)w->total_rows)
        return akidb__err(AKIDB_INVALID, "parquet writer: too many rows");
    for (size_t i = 0; i < w->n_cols; i++) {
        int rc = check_values(&w->cols[i], n_rows, &vals[i]);
        if (rc)
            return rc;
    }
    if (w->n_rgs == w->cap_rgs) {
        size_t cap = w->cap_rgs ? w->cap_rgs * 2 : 8;
        pqw_rg *p = akidb__realloc_array(&w->alloc, w->rgs, cap, sizeof *p);
        if (!p)
            return w_nomem(w);
        w->rgs = p;
        w->cap_rgs = cap;
    }
    pqw_rg *rg = &w->rgs[w->n_rgs];
    memset(rg, 0, sizeof *rg);
    rg->chunks = akidb__calloc(&w->alloc, w->n_cols, sizeof *rg->chunks);
    if (!rg->chunks)
        return w_nomem(w);
    w->n_rgs++;
    rg->num_rows = (int64_t)n_rows;
    rg->file_offset = (int64_t)w->pos;
    for (size_t i = 0; i < w->n_cols; i++) {
        int rc = write_chunk(w, &w->cols[i], &rg->chunks[i], n_rows, &vals[i]);
        if (rc)
            return rc;
    }
    w->total_rows += (int64_t)n_rows;
    return AKIDB_OK;
}

/* ---- footer ------------------------------------------------------------- */

static void write_schema_leaf(akidb__tw *t, const pqw_col *c, const char *name, int rep)
{
    akidb__tw_elem_struct_begin(t);
    akidb__tw_i32(t, 1, c->phys);
    akidb__tw_i32(t, 3, rep);
    akidb__tw_string(t, 4, name);
    switch (c->is_list ? 0 : c->kind) {
    case AKIDB__PQ_STRING:
        akidb__tw_i32(t, 6, CT_UTF8);
        akidb__tw_struct_begin(t, 10);
        akidb__tw_struct_begin(t, LT_STRING);
        akidb__tw_struct_end(t);
        akidb__tw_struct_end(t);
        break;
    case AKIDB__PQ_JSON:
        akidb__tw_i32(t, 6, CT_JSON);
        akidb__tw_struct_begin(t, 10);
        akidb__tw_struct_begin(t, LT_JSON);
        akidb__tw_struct_end(t);
        akidb__tw_struct_end(t);
        break;
    case AKIDB__PQ_TIMESTAMP_US:
        akidb__tw_i32(t, 6, CT_TIMESTAMP_MICROS);
        akidb__tw_struct_begin(t, 10);
        akidb__tw_struct_begin(t, LT_TIMESTAMP);
        akidb__tw_bool(t, 1, 1);                /* isAdjustedToUTC */
        akidb__tw_struct_begin(t, 2);           /* unit */
        akidb__tw_struct_begin(t, 2);           /* MICROS */
        akidb__tw_struct_end(t);
        akidb__tw_struct_end(t);
        akidb__tw_struct_end(t);
        akidb__tw_struct_end(t);
        break;
    default:
        break;
    }
    akidb__tw_struct_end(t);
}

static size_t schema_size(const akidb__pqw *w)
{
    size_t n = 1;
    for (size_t i = 0; i < w->n_cols; i++)
        n += w->cols[i].is_list ? 3 : 1;
    return n;
}

static void write_schema(akidb__tw *t, const akidb__pqw *w)
{
    akidb__tw_list_begin(t, 2, AKIDB__T_STRUCT, schema_size(w));
    akidb__tw_elem_struct_begin(t);
    akidb__tw_string(t, 4, "schema");
    akidb__tw_i32(t, 5, (int32_t)w->n_cols);
    akidb__tw_struct_end(t);
    for (size_t i = 0; i < w->n_cols; i++) {
        const pqw_col *c = &w->cols[i];
        int rep = c->optional ? REP_OPTIONAL : REP_REQUIRED;
        if (!c->is_list) {
            write_schema_leaf(t, c, c->name, rep);
            continue;
        }
        akidb__tw_elem_struct_begin(t);
        akidb__tw_i32(t, 3, rep);
        akidb__tw_string(t, 4, c->name);
        akidb__tw_i32(t, 5, 1);
        akidb__tw_i32(t, 6, CT_LIST);
        akidb__tw_struct_begin(t, 10);
        akidb__tw_struct_begin(t, LT_LIST);
        akidb__tw_struct_end(t);
        akidb__tw_struct_end(t);
        akidb__tw_struct_end(t);
        akidb__tw_elem_struct_begin(t);
        akidb__tw_i32(t, 3, REP_REPEATED);
        akidb__tw_string(t, 4, "list");
        akidb__tw_i32(t, 5, 1);
        akidb__tw_struct_end(t);
        write_schema_leaf(t, c, "element", REP_REQUIRED);
    }
}

static void write_column_meta(akidb__tw *t, const akidb__pqw *w, const pqw_col *c,
                              const pqw_chunk *ch)
{
    akidb__tw_elem_struct_begin(t);             /* ColumnChunk */
    akidb__tw_i64(t, 2, 0);                     /* file_offset (deprecated) */
    akidb__tw_struct_begin(t, 3);               /* ColumnMetaData */
    akidb__tw_i32(t, 1, c->phys);
    if (c->value_enc == ENC_PLAIN) {
        akidb__tw_list_begin(t, 2, AKIDB__T_I32, 2);
        akidb__tw_elem_i32(t, ENC_PLAIN);
        akidb__tw_elem_i32(t, ENC_RLE);
    } else {
        akidb__tw_list_begin(t, 2, AKIDB__T_I32, 2);
        akidb__tw_elem_i32(t, ENC_RLE);
        akidb__tw_elem_i32(t, c->value_enc);
    }
    akidb__tw_list_begin(t, 3, AKIDB__T_BINARY, c->is_list ? 3 : 1);
    akidb__tw_elem_string(t, c->name);
    if (c->is_list) {
        akidb__tw_elem_string(t, "list");
        akidb__tw_elem_string(t, "element");
    }
    akidb__tw_i32(t, 4, w->cctx ? CODEC_ZSTD : CODEC_UNCOMPRESSED);
    akidb__tw_i64(t, 5, ch->num_values);
    akidb__tw_i64(t, 6, ch->unc_size);
    akidb__tw_i64(t, 7, ch->comp_size);
    akidb__tw_i64(t, 9, ch->data_off);
    akidb__tw_struct_end(t);
    akidb__tw_struct_end(t);
}

int akidb__pqw_finish(akidb__pqw *w, uint64_t *bytes_out)
{
    if (!w)
        return akidb__err(AKIDB_INVALID, "parquet writer: NULL writer");
    if (w->rc)
        return akidb__err(w->rc, "parquet writer: an earlier call failed");
    if (w->finished)
        return akidb__err(AKIDB_INVALID, "parquet writer: already finished");
    akidb__tw *t = &w->tw;
    akidb__tw_reset(t);
    akidb__tw_i32(t, 1, 1);
    write_schema(t, w);
    akidb__tw_i64(t, 3, w->total_rows);
    akidb__tw_list_begin(t, 4, AKIDB__T_STRUCT, w->n_rgs);
    for (size_t g = 0; g < w->n_rgs; g++) {
        const pqw_rg *rg = &w->rgs[g];
        int64_t unc = 0, comp = 0;
        akidb__tw_elem_struct_begin(t);
        akidb__tw_list_begin(t, 1, AKIDB__T_STRUCT, w->n_cols);
        for (size_t i = 0; i < w->n_cols; i++) {
            write_column_meta(t, w, &w->cols[i], &rg->chunks[i]);
            unc += rg->chunks[i].unc_size;
            comp += rg->chunks[i].comp_size;
        }
        akidb__tw_i64(t, 2, unc);
        akidb__tw_i64(t, 3, rg->num_rows);
        akidb__tw_i64(t, 5, rg->file_offset);
        akidb__tw_i64(t, 6, comp);
        akidb__tw_field_header(t, 7, AKIDB__T_I16);
        akidb__tw_zigzag(t, g < INT16_MAX ? (int64_t)g : INT16_MAX);
        akidb__tw_struct_end(t);
    }
    if (w->n_kv) {
        akidb__tw_list_begin(t, 5, AKIDB__T_STRUCT, w->n_kv);
        for (size_t i = 0; i < w->n_kv; i++) {
            akidb__tw_elem_struct_begin(t);
            akidb__tw_string(t, 1, w->kv_keys[i]);
            if (w->kv_vals[i])
                akidb__tw_string(t, 2, w->kv_vals[i]);
            akidb__tw_struct_end(t);
        }
    }
    akidb__tw_string(t, 6, w->created_by);
    akidb__tw_struct_end(t);
    if (akidb__tw_error(t))
        return w_nomem(w);
    if (t->len > UINT32_MAX)
        return w_fail(w, akidb__err(AKIDB_INVALID, "parquet writer: footer too large"));
    unsigned char tail[8];
    put_u32le(tail, (uint32_t)t->len);
    memcpy(tail + 4, "PAR1", 4);
    int rc;
    if ((rc = w_emit(w, t->buf, t->len)) || (rc = w_emit(w, tail, 8)))
        return rc;
    w->finished = 1;
    if (bytes_out)
        *bytes_out = w->pos;
    return AKIDB_OK;
}
