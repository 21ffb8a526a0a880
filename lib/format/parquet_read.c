/*
 * parquet_read.c - a Parquet reader over an in-memory buffer, for the
 * files AkiDB writes and for what DuckDB, pyarrow/arrow-rs and Polars
 * write for the same logical shapes (see docs/FORMATS.md).
 *
 * Layout read: "PAR1" | pages | FileMetaData | u32 LE footer length | "PAR1".
 * A column chunk is read page by page:
 *
 *   DICTIONARY_PAGE  PLAIN values (must come before the data pages)
 *   DATA_PAGE (v1)   whole body compressed: [u32 len | rep levels]
 *                    [u32 len | def levels] values
 *   DATA_PAGE_V2     rep levels | def levels (never compressed, no length
 *                    prefix) | values (compressed if is_compressed)
 *   anything else    skipped
 *
 * Values: PLAIN, PLAIN_DICTIONARY / RLE_DICTIONARY (with fallback to PLAIN
 * inside a chunk), BYTE_STREAM_SPLIT, DELTA_BINARY_PACKED,
 * DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY.  Levels: RLE / bit-packed
 * hybrid at any bit width.  Codecs: UNCOMPRESSED, SNAPPY (snappy.c), ZSTD.
 *
 * Shapes (akidb__pq_kind): flat INT32/INT64/FLOAT/BYTE_ARRAY leaves with
 * their annotations; lists of FLOAT (or DOUBLE, narrowed), INT32 in the
 * 3-level form (element named anything: `element`, `item`, `array`...),
 * the legacy 2-level form (`repeated float x` inside the LIST group) and a
 * bare `repeated float x` field.  Everything else is listed with kind 0.
 *
 * Trust: the buffer is hostile.  Every offset and length is checked against
 * the buffer and the enclosing structure before use; counts are checked
 * against each other (pages against the chunk's num_values, rows against
 * the row group, row groups against the file); a chunk's path_in_schema
 * and physical type must be those of the schema leaf at its position (the
 * chunks are mapped to leaves by position); list and string sizes are
 * checked against the bytes that hold them.  No allocation is sized by a
 * number from the file alone: metadata arrays are bounded by the footer's
 * length, decompression buffers by the compressed bytes times the codec's
 * largest possible ratio (zstd output grows as it is actually produced),
 * and decoded values are appended in batches as the levels produce them.
 * A failure is AKIDB_CORRUPT naming the file offset (of the page, for data
 * inside a compressed page), or AKIDB_INVALID naming an unsupported
 * feature -- only in a file that is otherwise well formed: e.g. encryption
 * ("PARE" at both ends, or a plaintext footer with encryption_algorithm) is
 * decided after the rest of the footer proved consistent, so damage that
 * happens to look like it stays AKIDB_CORRUPT.
 *
 * Threads: after akidb__pqr_open() the reader is read-only; reads of
 * different (or the same) columns may run concurrently, each keeps its
 * scratch to itself.  libzstd allocates its decompression context on its
 * own (not through the akidb_allocator).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <zstd.h>
#if defined(__SSE2__)
#  include <emmintrin.h>
#endif

#include "common/env.h"
#include "common/alloc.h"
#include "common/crc.h"
#include "format/parquet.h"
#include "format/snappy.h"
#include "format/thrift.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#  error "parquet_read.c assumes a little-endian host (Parquet is little-endian)"
#endif

enum { PT_BOOLEAN = 0, PT_INT32 = 1, PT_INT64 = 2, PT_INT96 = 3, PT_FLOAT = 4,
       PT_DOUBLE = 5, PT_BYTE_ARRAY = 6, PT_FLBA = 7 };
enum { REP_REQUIRED = 0, REP_OPTIONAL = 1, REP_REPEATED = 2 };
enum { CT_UTF8 = 0, CT_MAP = 1, CT_MAP_KEY_VALUE = 2, CT_LIST = 3, CT_ENUM = 4,
       CT_DECIMAL = 5, CT_DATE = 6, CT_TIME_MILLIS = 7, CT_TIME_MICROS = 8,
       CT_TIMESTAMP_MILLIS = 9, CT_TIMESTAMP_MICROS = 10, CT_UINT_8 = 11,
       CT_UINT_16 = 12, CT_UINT_32 = 13, CT_UINT_64 = 14, CT_INT_8 = 15,
       CT_INT_16 = 16, CT_INT_32 = 17, CT_INT_64 = 18, CT_JSON = 19, CT_BSON = 20 };
enum { LT_STRING = 1, LT_MAP = 2, LT_LIST = 3, LT_ENUM = 4, LT_DECIMAL = 5,
       LT_DATE = 6, LT_TIME = 7, LT_TIMESTAMP = 8, LT_INTEGER = 10, LT_JSON = 12,
       LT_BSON = 13, LT_UUID = 14, LT_FLOAT16 = 15 };
enum { ENC_PLAIN = 0, ENC_PLAIN_DICTIONARY = 2, ENC_RLE = 3, ENC_BIT_PACKED = 4,
       ENC_DELTA_BINARY_PACKED = 5, ENC_DELTA_LENGTH_BYTE_ARRAY = 6,
       ENC_DELTA_BYTE_ARRAY = 7, ENC_RLE_DICTIONARY = 8, ENC_BYTE_STREAM_SPLIT = 9 };
enum { CODEC_UNCOMPRESSED = 0, CODEC_SNAPPY = 1, CODEC_GZIP = 2, CODEC_LZO = 3,
       CODEC_BROTLI = 4, CODEC_LZ4 = 5, CODEC_ZSTD = 6, CODEC_LZ4_RAW = 7 };
enum { PAGE_DATA = 0, PAGE_INDEX = 1, PAGE_DICTIONARY = 2, PAGE_DATA_V2 = 3 };
enum { TS_NONE = 0, TS_MILLIS = 1, TS_MICROS = 2, TS_NANOS = 3 };

#define MAX_SCHEMA_DEPTH 16
/* The largest row group read (consistent files only reach this check): a
 * run of null rows costs a few bytes in the file but 9 bytes per row in
 * memory, so a limit keeps a tiny hostile file from asking for gigabytes.
 * DuckDB writes 122880 rows per group, pyarrow 1Mi, Polars 256Ki. */
#define MAX_ROW_GROUP_ROWS ((int64_t)1 << 26)
#define BATCH 4096

/* ---- metadata model ------------------------------------------------------ */

typedef struct pq_node {
    const unsigned char *name;  /* borrowed from the buffer */
    size_t name_len;
    int32_t type;               /* physical type, -1 for a group */
    int32_t repetition;         /* -1 when absent (the root) */
    int32_t num_children;
    int32_t converted;          /* -1 when absent */
    int logical;                /* LogicalType member id, 0 when absent */
    int ts_unit;
    int int_bits, int_signed;
    size_t parent;              /* index of the enclosing group (0 = the root) */
} pq_node;

typedef struct pq_col {
    char *name;
    akidb__pq_kind kind;
    int optional;
    size_t leaf;                /* first leaf (column chunk index) */
    size_t n_leaves;
    int phys;                   /* leaf physical type (-1 for groups) */
    int is_list;
    int max_def, max_rep;
    int list_def;               /* def level from which the list is not null */
    int elem_def;               /* def level from which an element exists */
    int ts_unit;
    char physical[24];
    char logical[48];
} pq_col;

typedef struct pq_chunk {
    uint64_t off;               /* file offset of the ColumnChunk struct */
    int has_meta;               /* meta_data present */
    int has_crypto;             /* crypto_metadata present */
    int32_t type;
    int32_t codec;
    int has_path;               /* file_path: the pages are in another file */
    /* path_in_schema, left encoded in the footer: n_path strings in
     * path[0..path_len), a list header at file offset path_off.  Checked
     * against the schema once at open (check_path). */
    const unsigned char *path;
    size_t path_len, n_path;
    uint64_t path_off;
    int64_t num_values;
    int64_t total_uncompressed, total_compressed;
    int64_t data_off, dict_off;     /* dict_off -1 when absent */
    uint64_t start, end;            /* checked byte range of the pages */
} pq_chunk;

typedef struct pq_rg {
    int64_t num_rows;
    pq_chunk *chunks;
    size_t n_chunks;
} pq_rg;

typedef struct pq_kv {
    const unsigned char *k, *v; /* borrowed from the buffer while decoding */
    size_t k_len, v_len;
    char *key;                  /* copies, NUL-terminated */
    char *val;                  /* NULL when the pair has no value */
} pq_kv;

typedef struct pq_leaf {
    int32_t type;
    int max_rep;
    size_t node;                /* its schema element */
    int depth;                  /* elements on its path (1 for a top-level leaf) */
} pq_leaf;

struct akidb__pqr {
    akidb_allocator alloc;
    /* The whole file (akidb__pqr_open), or its tail from file offset
     * buf_off (akidb__pqr_open_tail: the footer; row groups then come
     * through fetch, one window at a time). */
    const unsigned char *buf;
    size_t len;                 /* the file's size */
    uint64_t buf_off;
    akidb__pqr_fetch_fn fetch;
    void *fetch_ctx;
    const unsigned char *win;   /* file bytes [win_off, win_off + win_len) */
    uint64_t win_off;
    size_t win_len;
    int pages_verified;         /* the caller checked every byte: skip page CRCs */
    uint64_t footer_off;
    size_t footer_len;

    pq_node *nodes;
    size_t n_nodes;
    pq_col *cols;
    size_t n_cols;
    pq_leaf *leaves;
    size_t n_leaves;
    pq_rg *rgs;
    size_t n_rgs;
    int64_t num_rows;
    int encrypted;              /* FileMetaData.encryption_algorithm present */
    pq_kv *kvs;                 /* key_value_metadata, in file order */
    size_t n_kv;
    const unsigned char *created_by;    /* borrowed from the buffer */
    size_t created_by_len;
};

static int corrupt_at(uint64_t off, const char *detail)
{
    return akidb__err(AKIDB_CORRUPT, "parquet: at file offset %llu: %s",
                      (unsigned long long)off, detail);
}

/* A footer fact that contradicts another: named with the footer's offset. */
static int footer_corrupt(const akidb__pqr *r, const char *fmt, ...) AKIDB__PRINTF(2, 3);
static int footer_corrupt(const akidb__pqr *r, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return akidb__err(AKIDB_CORRUPT, "parquet: footer at file offset %llu: %s",
                      (unsigned long long)r->footer_off, msg);
}

static char *dup_bytes(const akidb_allocator *a, const unsigned char *p, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *s = akidb__malloc(a, len + 1);
    if (s) {
        if (len)
            memcpy(s, p, len);
        s[len] = 0;
    }
    return s;
}

/* ---- footer parsing ------------------------------------------------------
 *
 * One table per Thrift struct of parquet.thrift that the reader needs (the
 * decoder, rules and limits: akidb__tr_struct in thrift.c).  Fields not
 * listed are skipped whatever their type; a listed field whose wire type
 * is in `skip` counts as unknown too (e.g. a union member that is not a
 * struct).  The hooks hold what is specific to one struct: defaults before
 * it is decoded, consistency checks after.  The decoded values are checked
 * against each other and against the file later (build_schema,
 * check_row_groups), once the whole footer is known.
 */

#define F_(id, kind, flags, skip, off, off2, sub, fn, name) \
    [id] = { kind, flags, skip, off, off2, sub, fn, name }
/* A value stored at offsetof(T, m). */
#define F_VAL(id, kind, T, m, flags, name) \
    F_(id, kind, flags, 0, offsetof(T, m), 0, NULL, NULL, name)
#define F_BIN(id, T, m, m_len, flags, skip, name) \
    F_(id, AKIDB__TF_BINARY, flags, skip, offsetof(T, m), offsetof(T, m_len), NULL, NULL, name)
#define F_LIST(id, T, m, n_m, sub, flags, name) \
    F_(id, AKIDB__TF_LIST, flags, 0, offsetof(T, m), offsetof(T, n_m), sub, NULL, name)
/* A struct-valued field decoded into the same object; any other wire type
 * is skipped. */
#define F_SUB(id, sub, flags, name) \
    F_(id, AKIDB__TF_STRUCT, flags, AKIDB__TBUT(AKIDB__T_STRUCT), 0, 0, sub, NULL, name)
#define F_MARK(id, T, m, type, name) \
    F_(id, AKIDB__TF_MARK, 0, AKIDB__TBUT(type), offsetof(T, m), 0, NULL, NULL, name)
#define F_FN(id, fn, flags, name) F_(id, AKIDB__TF_FN, flags, 0, 0, 0, NULL, fn, name)
/* The entries of a table (its largest id + 1), at most 32 (a compile
 * error otherwise: the seen masks are 32 bits). */
#define N_(fields) (uint8_t)(sizeof fields / sizeof fields[0] + \
                             0 * sizeof(char[sizeof fields / sizeof fields[0] <= 32 ? 1 : -1]))

/* The tables store AKIDB__TF_I32 values and tags into `int` members too. */
_Static_assert(sizeof(int) == sizeof(int32_t), "int must be 32 bits");

/* TimeUnit, a union: MILLIS 1, MICROS 2, NANOS 3 (empty structs); the
 * member's id is the unit.  Other ids leave the unit unset. */
static const akidb__tfield time_unit_fields[] = {
    F_(1, AKIDB__TF_SKIP, AKIDB__TF_TAG, AKIDB__TBUT(AKIDB__T_STRUCT), 0, 0, NULL, NULL, "MILLIS"),
    F_(2, AKIDB__TF_SKIP, AKIDB__TF_TAG, AKIDB__TBUT(AKIDB__T_STRUCT), 0, 0, NULL, NULL, "MICROS"),
    F_(3, AKIDB__TF_SKIP, AKIDB__TF_TAG, AKIDB__TBUT(AKIDB__T_STRUCT), 0, 0, NULL, NULL, "NANOS"),
};
static const akidb__tstruct time_unit_t = {
    .name = "time unit",
    .fields = time_unit_fields,
    .n_fields = N_(time_unit_fields),
    .tag_off = offsetof(pq_node, ts_unit),
};

/* TimestampType: 1 isAdjustedToUTC (not needed), 2 unit. */
static const akidb__tfield timestamp_fields[] = {
    F_SUB(2, &time_unit_t, 0, "unit"),
};
static const akidb__tstruct timestamp_t = {
    .name = "timestamp type",
    .fields = timestamp_fields,
    .n_fields = N_(timestamp_fields),
};

/* IntType: 1 bitWidth (i8; a bool there is skipped), 2 isSigned. */
static const akidb__tfield int_type_fields[] = {
    F_(1, AKIDB__TF_I32, 0, AKIDB__TBIT(AKIDB__T_TRUE) | AKIDB__TBIT(AKIDB__T_FALSE),
       offsetof(pq_node, int_bits), 0, NULL, NULL, "bitWidth"),
    F_VAL(2, AKIDB__TF_BOOL, pq_node, int_signed, 0, "isSigned"),
};
static const akidb__tstruct int_type_t = {
    .name = "integer type",
    .fields = int_type_fields,
    .n_fields = N_(int_type_fields),
};

/* LogicalType, a union: the member's id is the logical type (LT_*); only
 * TIMESTAMP and INTEGER carry parameters the reader uses. */
static const akidb__tfield logical_fields[] = {
    F_(LT_TIMESTAMP, AKIDB__TF_STRUCT, AKIDB__TF_TAG, AKIDB__TBUT(AKIDB__T_STRUCT), 0, 0,
       &timestamp_t, NULL, "TIMESTAMP"),
    F_(LT_INTEGER, AKIDB__TF_STRUCT, AKIDB__TF_TAG, AKIDB__TBUT(AKIDB__T_STRUCT), 0, 0,
       &int_type_t, NULL, "INTEGER"),
};
/* every other member names the type too */
static const akidb__tfield logical_other = {
    AKIDB__TF_SKIP, AKIDB__TF_TAG, AKIDB__TBUT(AKIDB__T_STRUCT), 0, 0, NULL, NULL, "member"
};
static const akidb__tstruct logical_t = {
    .name = "logical type",
    .fields = logical_fields,
    .n_fields = N_(logical_fields),
    .other = &logical_other,
    .tag_off = offsetof(pq_node, logical),
};

static void schema_element_init(void *obj, uint64_t off)
{
    pq_node *n = obj;
    (void)off;
    memset(n, 0, sizeof *n);
    n->type = -1;
    n->repetition = -1;
    n->converted = -1;
    n->int_signed = 1;
}

static int schema_element_check(akidb__tr *t, void *obj, uint32_t seen, void *ctx)
{
    pq_node *n = obj;
    (void)seen;
    (void)ctx;
    if (n->num_children < 0)
        return akidb__tr_fail(t, "schema element with a negative num_children");
    if (n->num_children == 0 && (n->type < PT_BOOLEAN || n->type > PT_FLBA))
        return akidb__tr_fail(t, "schema leaf without a valid physical type");
    if (n->repetition < -1 || n->repetition > REP_REPEATED)
        return akidb__tr_fail(t, "schema element with a bad repetition type");
    if (n->num_children > 0)
        n->type = -1;
    return AKIDB_OK;
}

static const akidb__tfield schema_element_fields[] = {
    F_VAL(1, AKIDB__TF_I32, pq_node, type, 0, "type"),
    F_VAL(3, AKIDB__TF_I32, pq_node, repetition, 0, "repetition_type"),
    F_BIN(4, pq_node, name, name_len, 0, 0, "name"),
    F_VAL(5, AKIDB__TF_I32, pq_node, num_children, 0, "num_children"),
    F_VAL(6, AKIDB__TF_I32, pq_node, converted, 0, "converted_type"),
    F_SUB(10, &logical_t, 0, "logicalType"),
};
static const akidb__tstruct schema_element_t = {
    .name = "schema element",
    .fields = schema_element_fields,
    .n_fields = N_(schema_element_fields),
    .required = AKIDB__TID(4),
    .size = sizeof(pq_node),
    .init = schema_element_init,
    .check = schema_element_check,
};

/* ColumnMetaData.path_in_schema: validated here, compared with the schema
 * after the whole footer is read (the schema may come after the row groups). */
static int parse_path(akidb__tr *t, int16_t id, int ft, void *obj, void *ctx)
{
    pq_chunk *c = obj;
    int rc, et;
    size_t n;
    (void)id;
    (void)ctx;
    c->path_off = t->base_off + t->pos;
    if ((rc = akidb__tr_list_begin(t, ft, &et, &n)))
        return rc;
    if (n && et != AKIDB__T_BINARY)
        return akidb__tr_fail(t, "path_in_schema is not a list of strings");
    const size_t start = t->pos;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p;
        size_t len;
        if ((rc = akidb__tr_binary(t, AKIDB__T_BINARY, &p, &len)))
            return rc;
    }
    c->path = t->p + start;
    c->path_len = t->pos - start;
    c->n_path = n;
    return AKIDB_OK;
}

static int column_meta_check(akidb__tr *t, void *obj, uint32_t seen, void *ctx)
{
    (void)t;
    (void)seen;
    (void)ctx;
    ((pq_chunk *)obj)->has_meta = 1;
    return AKIDB_OK;
}

static const akidb__tfield column_meta_fields[] = {
    F_VAL(1, AKIDB__TF_I32, pq_chunk, type, 0, "type"),
    F_FN(3, parse_path, 0, "path_in_schema"),
    F_VAL(4, AKIDB__TF_I32, pq_chunk, codec, 0, "codec"),
    F_VAL(5, AKIDB__TF_I64, pq_chunk, num_values, 0, "num_values"),
    F_VAL(6, AKIDB__TF_I64, pq_chunk, total_uncompressed, 0, "total_uncompressed_size"),
    F_VAL(7, AKIDB__TF_I64, pq_chunk, total_compressed, 0, "total_compressed_size"),
    F_VAL(9, AKIDB__TF_I64, pq_chunk, data_off, 0, "data_page_offset"),
    F_VAL(11, AKIDB__TF_I64, pq_chunk, dict_off, 0, "dictionary_page_offset"),
};
static const akidb__tstruct column_meta_t = {
    .name = "column metadata",
    .fields = column_meta_fields,
    .n_fields = N_(column_meta_fields),
    .required = AKIDB__TID(1) | AKIDB__TID(3) | AKIDB__TID(4) | AKIDB__TID(5) |
                AKIDB__TID(6) | AKIDB__TID(7) | AKIDB__TID(9),
    .check = column_meta_check,
};

static void column_chunk_init(void *obj, uint64_t off)
{
    pq_chunk *c = obj;
    memset(c, 0, sizeof *c);
    c->dict_off = -1;
    c->off = off;
}

/* A chunk without meta_data is only coherent in a file with columns
 * encrypted (crypto_metadata here, encryption_algorithm in FileMetaData);
 * that is decided in check_row_groups once the whole footer has parsed. */
static const akidb__tfield column_chunk_fields[] = {
    F_MARK(1, pq_chunk, has_path, AKIDB__T_BINARY, "file_path"),
    F_SUB(3, &column_meta_t, 0, "meta_data"),
    F_MARK(8, pq_chunk, has_crypto, AKIDB__T_STRUCT, "crypto_metadata"),
};
static const akidb__tstruct column_chunk_t = {
    .name = "column chunk",
    .fields = column_chunk_fields,
    .n_fields = N_(column_chunk_fields),
    .size = sizeof(pq_chunk),
    .init = column_chunk_init,
};

static int row_group_check(akidb__tr *t, void *obj, uint32_t seen, void *ctx)
{
    (void)seen;
    (void)ctx;
    if (((pq_rg *)obj)->num_rows < 0)
        return akidb__tr_fail(t, "row group with negative num_rows");
    return AKIDB_OK;
}

/* A second columns list is skipped. */
static const akidb__tfield row_group_fields[] = {
    F_LIST(1, pq_rg, chunks, n_chunks, &column_chunk_t, AKIDB__TF_FIRST, "columns"),
    F_VAL(3, AKIDB__TF_I64, pq_rg, num_rows, 0, "num_rows"),
};
static const akidb__tstruct row_group_t = {
    .name = "row group",
    .fields = row_group_fields,
    .n_fields = N_(row_group_fields),
    .required = AKIDB__TID(1) | AKIDB__TID(3),
    .size = sizeof(pq_rg),
    .check = row_group_check,
};

/* KeyValue: the key is copied (NUL-terminated) once the pair has decoded. */
static int kv_check(akidb__tr *t, void *obj, uint32_t seen, void *ctx)
{
    pq_kv *kv = obj;
    const akidb__pqr *r = ctx;
    (void)t;
    (void)seen;
    kv->key = dup_bytes(&r->alloc, kv->k, kv->k_len);
    kv->val = kv->v ? dup_bytes(&r->alloc, kv->v, kv->v_len) : NULL;
    if (!kv->key || (kv->v && !kv->val))
        return akidb__err(AKIDB_NOMEM, "parquet: out of memory");
    return AKIDB_OK;
}

static const akidb__tfield kv_fields[] = {
    F_BIN(1, pq_kv, k, k_len, 0, 0, "key"),
    F_BIN(2, pq_kv, v, v_len, 0, 0, "value"),
};
static const akidb__tstruct kv_t = {
    .name = "key_value_metadata entry",
    .fields = kv_fields,
    .n_fields = N_(kv_fields),
    .required = AKIDB__TID(1),
    .size = sizeof(pq_kv),
    .check = kv_check,
};

/* FileMetaData.  encryption_algorithm (8: a plaintext footer with encrypted
 * columns) is refused (INVALID) only once the rest of the footer has
 * proved consistent: from a damaged footer it is just damage. */
static const akidb__tfield footer_fields[] = {
    F_LIST(2, akidb__pqr, nodes, n_nodes, &schema_element_t,
           AKIDB__TF_ONCE | AKIDB__TF_NONEMPTY, "schema"),
    F_VAL(3, AKIDB__TF_I64, akidb__pqr, num_rows, 0, "num_rows"),
    F_LIST(4, akidb__pqr, rgs, n_rgs, &row_group_t, AKIDB__TF_ONCE, "row_groups"),
    F_LIST(5, akidb__pqr, kvs, n_kv, &kv_t, AKIDB__TF_ONCE, "key_value_metadata"),
    F_BIN(6, akidb__pqr, created_by, created_by_len, AKIDB__TF_FIRST,
          AKIDB__TBUT(AKIDB__T_BINARY), "created_by"),
    F_MARK(8, akidb__pqr, encrypted, AKIDB__T_STRUCT, "encryption_algorithm"),
};
static const akidb__tstruct footer_t = {
    .name = "footer",
    .fields = footer_fields,
    .n_fields = N_(footer_fields),
    .required = AKIDB__TID(2) | AKIDB__TID(3) | AKIDB__TID(4),
};

/* ---- schema ----------------------------------------------------------------- */

static const char *phys_name(int t)
{
    static const char *const names[] = { "BOOLEAN", "INT32", "INT64", "INT96", "FLOAT",
                                         "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY" };
    return t >= 0 && t <= PT_FLBA ? names[t] : "GROUP";
}

static int name_is(const pq_node *n, const char *s)
{
    size_t l = strlen(s);
    return n->name_len == l && memcmp(n->name, s, l) == 0;
}

/* Count the leaves under node *i (advancing *i past the subtree), record
 * each element's parent and each leaf's type, max repetition level, element
 * and depth. */
static int walk(akidb__pqr *r, size_t *i, size_t parent, int depth, int rep_above,
                size_t *n_leaves)
{
    if (depth > MAX_SCHEMA_DEPTH)
        return corrupt_at(r->footer_off, "schema nested too deeply");
    if (*i >= r->n_nodes)
        return corrupt_at(r->footer_off, "schema num_children exceeds the elements");
    const size_t self = (*i)++;
    pq_node *n = &r->nodes[self];
    n->parent = parent;
    int rep = rep_above + (n->repetition == REP_REPEATED);
    if (n->num_children == 0) {
        pq_leaf *l = &r->leaves[r->n_leaves++];
        l->type = n->type;
        l->max_rep = rep;
        l->node = self;
        l->depth = depth;
        (*n_leaves)++;
        return AKIDB_OK;
    }
    for (int32_t k = 0; k < n->num_children; k++) {
        int rc = walk(r, i, self, depth + 1, rep, n_leaves);
        if (rc)
            return rc;
    }
    return AKIDB_OK;
}

/* The kind of a flat leaf, from its physical type and annotations. */
static akidb__pq_kind leaf_kind(const pq_node *n, int *ts_unit, const char **logical)
{
    int ct = n->converted, lt = n->logical;
    *ts_unit = TS_NONE;
    *logical = "";
    switch (n->type) {
    case PT_INT64:
        if (lt == LT_TIMESTAMP || ct == CT_TIMESTAMP_MILLIS || ct == CT_TIMESTAMP_MICROS) {
            int u = lt == LT_TIMESTAMP ? n->ts_unit
                  : ct == CT_TIMESTAMP_MILLIS ? TS_MILLIS : TS_MICROS;
            *ts_unit = u;
            *logical = u == TS_MILLIS ? "TIMESTAMP(MILLIS)" : u == TS_MICROS ? "TIMESTAMP(MICROS)"
                     : u == TS_NANOS ? "TIMESTAMP(NANOS)" : "TIMESTAMP(?)";
            return u ? AKIDB__PQ_TIMESTAMP_US : 0;
        }
        if (lt == LT_INTEGER) {
            *logical = n->int_signed ? "INTEGER" : "UNSIGNED INTEGER";
            return n->int_signed || n->int_bits < 64 ? AKIDB__PQ_INT64 : 0;
        }
        if (lt == 0 && (ct == -1 || ct == CT_INT_64 || ct == CT_INT_32 || ct == CT_INT_16 ||
                        ct == CT_INT_8 || ct == CT_UINT_8 || ct == CT_UINT_16 ||
                        ct == CT_UINT_32))
            return AKIDB__PQ_INT64;
        *logical = lt == LT_DECIMAL || ct == CT_DECIMAL ? "DECIMAL" : "TIME/OTHER";
        return 0;
    case PT_INT32:
        if (lt == LT_INTEGER) {
            *logical = n->int_signed ? "INTEGER" : "UNSIGNED INTEGER";
            return n->int_signed || n->int_bits < 32 ? AKIDB__PQ_INT32 : 0;
        }
        if (lt == 0 && (ct == -1 || ct == CT_INT_32 || ct == CT_INT_16 || ct == CT_INT_8 ||
                        ct == CT_UINT_8 || ct == CT_UINT_16))
            return AKIDB__PQ_INT32;
        *logical = lt == LT_DATE || ct == CT_DATE ? "DATE"
                 : lt == LT_DECIMAL || ct == CT_DECIMAL ? "DECIMAL" : "TIME/OTHER";
        return 0;
    case PT_FLOAT:
        return AKIDB__PQ_FLOAT;
    case PT_BYTE_ARRAY:
        if (lt == LT_STRING || ct == CT_UTF8) {
            *logical = "STRING";
            return AKIDB__PQ_STRING;
        }
        if (lt == LT_ENUM || ct == CT_ENUM) {
            *logical = "ENUM";
            return AKIDB__PQ_STRING;
        }
        if (lt == LT_JSON || ct == CT_JSON) {
            *logical = "JSON";
            return AKIDB__PQ_JSON;
        }
        if (lt == LT_BSON || ct == CT_BSON) {
            *logical = "BSON";
            return AKIDB__PQ_BINARY;
        }
        if (lt == 0 && ct == -1)
            return AKIDB__PQ_BINARY;
        *logical = "DECIMAL/OTHER";
        return 0;
    default:
        return 0;
    }
}

/* Decide what top-level field `ti` is and how its levels map to rows. */
static void classify(akidb__pqr *r, size_t ti, pq_col *c)
{
    const pq_node *t = &r->nodes[ti];
    const char *logical = "";
    c->phys = t->type;
    c->optional = t->repetition == REP_OPTIONAL;
    snprintf(c->physical, sizeof c->physical, "%s", phys_name(t->type));
    c->logical[0] = 0;

    if (t->num_children == 0) {
        if (t->repetition == REP_REPEATED) {
            /* bare `repeated float x`: a required list of required elements */
            c->optional = 0;
            c->is_list = 1;
            c->list_def = 0;
            c->elem_def = 1;
            c->max_def = 1;
            c->max_rep = 1;
            if (t->type == PT_FLOAT || t->type == PT_DOUBLE)
                c->kind = AKIDB__PQ_FLOAT_LIST;
            else if (t->type == PT_INT32)
                c->kind = AKIDB__PQ_INT32_LIST;
            snprintf(c->logical, sizeof c->logical, "LIST<%s>", phys_name(t->type));
            return;
        }
        c->kind = leaf_kind(t, &c->ts_unit, &logical);
        c->max_def = c->optional;
        snprintf(c->logical, sizeof c->logical, "%s", logical);
        return;
    }

    int is_list = t->converted == CT_LIST || t->logical == LT_LIST;
    int is_map = t->converted == CT_MAP || t->converted == CT_MAP_KEY_VALUE ||
                 t->logical == LT_MAP;
    snprintf(c->logical, sizeof c->logical, "%s", is_map ? "MAP" : "STRUCT");
    if (!is_list || t->repetition == REP_REPEATED || t->num_children != 1 ||
        ti + 1 >= r->n_nodes)
        return;
    const pq_node *rep = &r->nodes[ti + 1];
    if (rep->repetition != REP_REPEATED)
        return;
    const pq_node *e;
    if (rep->num_children == 0) {
        e = rep;                        /* 2-level: repeated float element */
    } else {
        if (rep->num_children != 1 || ti + 2 >= r->n_nodes || name_is(rep, "array"))
            return;
        if (rep->name_len == t->name_len + 6 && memcmp(rep->name, t->name, t->name_len) == 0 &&
            memcmp(rep->name + t->name_len, "_tuple", 6) == 0)
            return;
        e = &r->nodes[ti + 2];
        if (e->num_children != 0 || e->repetition == REP_REPEATED)
            return;
    }
    snprintf(c->physical, sizeof c->physical, "%s", phys_name(e->type));
    snprintf(c->logical, sizeof c->logical, "LIST<%s>", phys_name(e->type));
    c->phys = e->type;
    c->is_list = 1;
    c->max_rep = 1;
    c->list_def = c->optional;
    c->elem_def = c->list_def + 1;
    c->max_def = c->elem_def + (e != rep && e->repetition == REP_OPTIONAL);
    int ts;
    const char *lg;
    akidb__pq_kind ek = e == rep ? (e->type == PT_FLOAT ? AKIDB__PQ_FLOAT : e->type == PT_INT32
                                    ? AKIDB__PQ_INT32 : 0)
                                 : leaf_kind(e, &ts, &lg);
    if (e->type == PT_DOUBLE && ek == 0)
        c->kind = AKIDB__PQ_FLOAT_LIST;
    else if (ek == AKIDB__PQ_FLOAT)
        c->kind = AKIDB__PQ_FLOAT_LIST;
    else if (ek == AKIDB__PQ_INT32)
        c->kind = AKIDB__PQ_INT32_LIST;
}

static int build_schema(akidb__pqr *r)
{
    const pq_node *root = &r->nodes[0];
    if (root->num_children == 0 || (size_t)root->num_children >= r->n_nodes)
        return corrupt_at(r->footer_off, "schema root's num_children does not fit the schema");
    r->leaves = akidb__calloc(&r->alloc, r->n_nodes, sizeof *r->leaves);
    r->cols = akidb__calloc(&r->alloc, (size_t)root->num_children, sizeof *r->cols);
    if (!r->leaves || !r->cols)
        return akidb__err(AKIDB_NOMEM, "parquet: out of memory");
    size_t i = 1;
    for (int32_t k = 0; k < root->num_children; k++) {
        if (i >= r->n_nodes)
            return corrupt_at(r->footer_off, "schema num_children exceeds the elements");
        pq_col *c = &r->cols[r->n_cols++];
        size_t ti = i;
        c->leaf = r->n_leaves;
        int rc = walk(r, &i, 0, 1, 0, &c->n_leaves);
        if (rc)
            return rc;
        const pq_node *t = &r->nodes[ti];
        if (!(c->name = dup_bytes(&r->alloc, t->name, t->name_len)))
            return akidb__err(AKIDB_NOMEM, "parquet: out of memory");
        classify(r, ti, c);
        if (c->n_leaves != 1)
            c->kind = 0;
    }
    if (i != r->n_nodes)
        return corrupt_at(r->footer_off, "schema has elements outside the tree");
    return AKIDB_OK;
}

/* A name from the file, for a message: printable, bounded. */
typedef struct pq_text {
    char s[160];
    size_t len;
    int full;
} pq_text;

static void text_add(pq_text *x, const unsigned char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len && !x->full; ) {
        unsigned char c[5] = { 0 };     /* zero-padded: a cut sequence is invalid */
        memcpy(c, p + i, len - i < 4 ? len - i : 4);
        size_t seq = c[0] >= 0x80 ? akidb__utf8_len(c) : 0;
        int plain = c[0] >= 0x20 && c[0] < 0x7f && c[0] != '"' && c[0] != '\\';
        size_t need = seq ? seq : plain ? 1 : 4;
        if (x->len + need + 4 > sizeof x->s) {
            memcpy(x->s + x->len, "...", 4);
            x->len += 3;
            x->full = 1;
            return;
        }
        if (seq) {
            memcpy(x->s + x->len, c, seq);
        } else if (plain) {
            x->s[x->len] = (char)c[0];
        } else {
            x->s[x->len] = '\\';
            x->s[x->len + 1] = 'x';
            x->s[x->len + 2] = hex[c[0] >> 4];
            x->s[x->len + 3] = hex[c[0] & 15];
        }
        x->len += need;
        x->s[x->len] = 0;
        i += seq ? seq : 1;
    }
}

/* ColumnMetaData.path_in_schema of chunk i against the path of leaf i: the
 * chunks are mapped to leaves by position, so a chunk listed out of order
 * (or misnamed) would be read as another column. */
static int check_path(const akidb__pqr *r, size_t g, size_t i, const pq_chunk *c)
{
    const pq_leaf *l = &r->leaves[i];
    size_t idx[MAX_SCHEMA_DEPTH];
    size_t d = (size_t)l->depth, k = l->node;
    for (size_t j = d; j-- > 0; k = r->nodes[k].parent)
        idx[j] = k;
    akidb__tr t;
    akidb__tr_init(&t, c->path, c->path_len, c->path_off, "footer");
    int same = c->n_path == d;
    for (size_t j = 0; j < c->n_path && same; j++) {
        const unsigned char *p;
        size_t len;
        int rc = akidb__tr_binary(&t, AKIDB__T_BINARY, &p, &len);
        if (rc)
            return rc;      /* not reached: validated by parse_path */
        const pq_node *n = &r->nodes[idx[j]];
        same = len == n->name_len && (len == 0 || memcmp(p, n->name, len) == 0);
    }
    if (same)
        return AKIDB_OK;
    pq_text found = { .len = 0 }, want = { .len = 0 };
    akidb__tr_init(&t, c->path, c->path_len, c->path_off, "footer");
    for (size_t j = 0; j < c->n_path; j++) {
        const unsigned char *p;
        size_t len;
        if (akidb__tr_binary(&t, AKIDB__T_BINARY, &p, &len))
            break;
        if (j)
            text_add(&found, (const unsigned char *)".", 1);
        text_add(&found, p, len);
    }
    for (size_t j = 0; j < d; j++) {
        if (j)
            text_add(&want, (const unsigned char *)".", 1);
        text_add(&want, r->nodes[idx[j]].name, r->nodes[idx[j]].name_len);
    }
    return akidb__err(AKIDB_CORRUPT, "parquet: at file offset %llu: row group %zu, column %zu: "
                      "path_in_schema is %s, the schema says %s",
                      (unsigned long long)c->path_off, g, i,
                      c->n_path ? found.s : "empty", want.s);
}

static const char *type_name(int32_t t, char *buf, size_t buf_len)
{
    if (t >= PT_BOOLEAN && t <= PT_FLBA)
        return phys_name(t);
    snprintf(buf, buf_len, "%d (unknown)", (int)t);
    return buf;
}

/* Check every chunk's byte range and counts against the file, and its
 * path and type against the schema. */
static int check_row_groups(akidb__pqr *r)
{
    int64_t total = 0;
    for (size_t g = 0; g < r->n_rgs; g++) {
        pq_rg *rg = &r->rgs[g];
        if (rg->n_chunks != r->n_leaves)
            return footer_corrupt(r, "row group %zu has %zu column chunks, the schema %zu "
                                  "leaves", g, rg->n_chunks, r->n_leaves);
        if (rg->num_rows > INT64_MAX - total)
            return corrupt_at(r->footer_off, "row counts overflow");
        total += rg->num_rows;
        for (size_t i = 0; i < rg->n_chunks; i++) {
            pq_chunk *c = &rg->chunks[i];
            int rc;
            if (!c->has_meta) {
                if (r->encrypted && c->has_crypto)
                    continue;   /* an encrypted column: the file is refused below */
                return akidb__err(AKIDB_CORRUPT, "parquet: at file offset %llu: row group %zu: "
                                  "column chunk %zu has no metadata%s",
                                  (unsigned long long)c->off, g, i,
                                  c->has_crypto ? " (crypto_metadata, but the file has no "
                                  "encryption_algorithm)" : r->encrypted ? " and no "
                                  "crypto_metadata" : "");
            }
            if (c->has_crypto && !r->encrypted)
                return akidb__err(AKIDB_CORRUPT, "parquet: at file offset %llu: row group %zu: "
                                  "column chunk %zu has crypto_metadata, but the file has no "
                                  "encryption_algorithm", (unsigned long long)c->off, g, i);
            if ((rc = check_path(r, g, i, c)))
                return rc;
            if (c->type != r->leaves[i].type) {
                char a[24], b[24];
                return footer_corrupt(r, "row group %zu, column %zu: physical type %s, the "
                                      "schema says %s", g, i, type_name(c->type, a, sizeof a),
                                      type_name(r->leaves[i].type, b, sizeof b));
            }
            if (c->num_values < 0 || c->total_compressed < 0 || c->data_off < 0)
                return footer_corrupt(r, "row group %zu column %zu: negative size, count or "
                                      "offset", g, i);
            if (r->leaves[i].max_rep == 0 ? c->num_values != rg->num_rows
                                          : c->num_values < rg->num_rows)
                return footer_corrupt(r, "row group %zu column %zu: %lld values for %lld rows",
                                      g, i, (long long)c->num_values, (long long)rg->num_rows);
            if (c->has_path)
                continue;       /* external chunk: refused when read */
            uint64_t start = (uint64_t)c->data_off;
            if (c->dict_off > 0 && (uint64_t)c->dict_off < start)
                start = (uint64_t)c->dict_off;
            if (start < 4 || start > r->footer_off ||
                (uint64_t)c->total_compressed > r->footer_off - start)
                return footer_corrupt(r, "row group %zu column %zu: pages at file offset %llu "
                                      "(+%lld bytes) lie outside the data region 4..%llu",
                                      g, i, (unsigned long long)start,
                                      (long long)c->total_compressed,
                                      (unsigned long long)r->footer_off);
            c->start = start;
            c->end = start + (uint64_t)c->total_compressed;
        }
    }
    if (total != r->num_rows)
        return footer_corrupt(r, "the file has %lld rows, its row groups %lld",
                              (long long)r->num_rows, (long long)total);
    /* Only now, with the whole footer consistent, is encryption_algorithm
     * taken for what it says (from a damaged footer it is damage). */
    if (r->encrypted)
        return akidb__err(AKIDB_INVALID, "parquet: the footer at file offset %llu names an "
                          "encryption_algorithm: encrypted columns are not supported",
                          (unsigned long long)r->footer_off);
    for (size_t g = 0; g < r->n_rgs; g++)
        if (r->rgs[g].num_rows > MAX_ROW_GROUP_ROWS)
            return akidb__err(AKIDB_INVALID, "parquet: row group %zu has %lld rows; AkiDB reads "
                              "row groups of at most %lld", g, (long long)r->rgs[g].num_rows,
                              (long long)MAX_ROW_GROUP_ROWS);
    return AKIDB_OK;
}

void akidb__pqr_free(akidb__pqr *r)
{
    if (!r)
        return;
    const akidb_allocator *a = &r->alloc;
    for (size_t i = 0; r->cols && i < r->n_cols; i++)
        akidb__free(a, r->cols[i].name);
    akidb__free(a, r->cols);
    akidb__free(a, r->nodes);
    akidb__free(a, r->leaves);
    for (size_t g = 0; r->rgs && g < r->n_rgs; g++)
        akidb__free(a, r->rgs[g].chunks);
    akidb__free(a, r->rgs);
    for (size_t i = 0; r->kvs && i < r->n_kv; i++) {
        akidb__free(a, r->kvs[i].key);
        akidb__free(a, r->kvs[i].val);
    }
    akidb__free(a, r->kvs);
    akidb_allocator copy = *a;
    akidb__free(&copy, r);
}

/* Open the reader of a file of len bytes: `head` is its first 4 bytes,
 * `tail` its bytes from file offset tail_off to the end (the whole file
 * when tail_off is 0). */
static int open_reader(const unsigned char *head, const unsigned char *tail, uint64_t tail_off,
                       size_t len, const akidb_allocator *alloc, akidb__pqr **out)
{
    *out = NULL;
    if (!alloc)
        alloc = &akidb__default_allocator;
    const unsigned char *end = tail + (len - tail_off);   /* one past the file's last byte */
    /* An encrypted footer is "PARE" at both ends (Parquet modular
     * encryption); any other pairing is damage. */
    const int lead_e = memcmp(head, "PARE", 4) == 0, tail_e = memcmp(end - 4, "PARE", 4) == 0;
    if (!lead_e && memcmp(head, "PAR1", 4) != 0)
        return corrupt_at(0, "bad leading magic (not a Parquet file)");
    if (!tail_e && memcmp(end - 4, "PAR1", 4) != 0)
        return corrupt_at(len - 4, "bad trailing magic (truncated file?)");
    if (lead_e != tail_e)
        return lead_e ? corrupt_at(0, "leading magic PARE (encrypted footer), trailing PAR1")
                      : corrupt_at(len - 4, "trailing magic PARE (encrypted footer), leading PAR1");
    uint32_t flen;
    memcpy(&flen, end - 8, 4);
    if (flen == 0 || flen > len - 12)
        return corrupt_at(len - 8, "footer length exceeds the file");
    if (len - 8 - flen < tail_off)
        return akidb__err(AKIDB_INVALID, "parquet: the footer starts at file offset %llu, "
                          "before the %llu given", (unsigned long long)(len - 8 - flen),
                          (unsigned long long)tail_off);
    if (tail_e)
        return akidb__err(AKIDB_INVALID, "parquet: the footer at file offset %llu is encrypted: "
                          "encrypted files are not supported",
                          (unsigned long long)(len - 8 - flen));

    akidb__pqr *r = akidb__calloc(alloc, 1, sizeof *r);
    if (!r)
        return akidb__err(AKIDB_NOMEM, "parquet: out of memory");
    r->alloc = *alloc;
    r->buf = tail;
    r->buf_off = tail_off;
    r->len = len;
    r->footer_len = flen;
    r->footer_off = len - 8 - flen;

    akidb__tr t;
    akidb__tr_init(&t, tail + (r->footer_off - tail_off), flen, r->footer_off, "footer");
    t.alloc = &r->alloc;
    int rc = akidb__tr_struct(&t, &footer_t, r, r);
    if (rc == AKIDB_OK)
        rc = build_schema(r);
    if (rc == AKIDB_OK)
        rc = check_row_groups(r);
    if (rc) {
        akidb__pqr_free(r);
        return rc;
    }
    *out = r;
    return AKIDB_OK;
}

int akidb__pqr_open(const void *buf, size_t len, const akidb_allocator *alloc,
                    akidb__pqr **out)
{
    *out = NULL;
    if (!buf && len)
        return akidb__err(AKIDB_INVALID, "parquet: no buffer");
    if (len < 12)   /* before open_reader reads the magic at both ends */
        return akidb__err(AKIDB_CORRUPT, "parquet: at file offset 0: %zu bytes is too short for "
                          "a Parquet file", len);
    return open_reader(buf, buf, 0, len, alloc, out);
}

int akidb__pqr_open_tail(const void *head, const void *tail, size_t tail_len, uint64_t file_size,
                         akidb__pqr_fetch_fn fetch, void *ctx, const akidb_allocator *alloc,
                         akidb__pqr **out)
{
    *out = NULL;
    if (!head || !tail || !fetch || tail_len < 8 || tail_len > file_size || file_size > SIZE_MAX)
        return akidb__err(AKIDB_INVALID, "parquet: open_tail: bad arguments (tail of %zu bytes "
                          "of a %llu-byte file)", tail_len, (unsigned long long)file_size);
    if (file_size < 12)
        return akidb__err(AKIDB_CORRUPT, "parquet: at file offset 0: %llu bytes is too short for "
                          "a Parquet file", (unsigned long long)file_size);
    int rc = open_reader(head, tail, file_size - tail_len, (size_t)file_size, alloc, out);
    if (rc == AKIDB_OK) {
        (*out)->fetch = fetch;
        (*out)->fetch_ctx = ctx;
    }
    return rc;
}

/* File bytes [ch->start, ch->end) of the column chunk, with p[0] at
 * ch->start: from the whole buffer, or, for a reader of
 * akidb__pqr_open_tail, from a window over the chunk's whole row group
 * (one fetch per row group, as its columns are read one after another). */
static int chunk_bytes(akidb__pqr *r, const pq_rg *g, const pq_chunk *ch,
                       const unsigned char **p)
{
    if (!r->fetch) {
        *p = r->buf + ch->start;
        return AKIDB_OK;
    }
    if (!r->win || ch->start < r->win_off || ch->end > r->win_off + r->win_len) {
        uint64_t lo = ch->start, hi = ch->end;
        for (size_t i = 0; i < g->n_chunks; i++)
            if (!g->chunks[i].has_path && g->chunks[i].has_meta) {
                if (g->chunks[i].start < lo)
                    lo = g->chunks[i].start;
                if (g->chunks[i].end > hi)
                    hi = g->chunks[i].end;
            }
        const unsigned char *w = NULL;
        r->win = NULL;
        int rc = r->fetch(r->fetch_ctx, lo, (size_t)(hi - lo), &w);
        if (rc)
            return rc;
        r->win = w;
        r->win_off = lo;
        r->win_len = (size_t)(hi - lo);
    }
    *p = r->win + (ch->start - r->win_off);
    return AKIDB_OK;
}

/* ---- accessors -------------------------------------------------------------- */

size_t akidb__pqr_num_columns(const akidb__pqr *r)
{
    return r->n_cols;
}

int akidb__pqr_column(const akidb__pqr *r, size_t i, akidb__pqr_column_info *out)
{
    if (i >= r->n_cols)
        return akidb__err(AKIDB_INVALID, "parquet: column %zu of %zu", i, r->n_cols);
    const pq_col *c = &r->cols[i];
    out->name = c->name;
    out->kind = c->kind;
    out->physical = c->physical;
    out->logical = c->logical;
    out->optional = c->optional;
    return AKIDB_OK;
}

int akidb__pqr_find_column(const akidb__pqr *r, const char *name)
{
    for (size_t i = 0; i < r->n_cols && i < INT32_MAX; i++)
        if (strcmp(r->cols[i].name, name) == 0)
            return (int)i;
    return -1;
}

uint64_t akidb__pqr_num_rows(const akidb__pqr *r)
{
    return (uint64_t)r->num_rows;
}

void akidb__pqr_trust_pages(akidb__pqr *r)
{
    r->pages_verified = 1;
}

size_t akidb__pqr_file_size(const akidb__pqr *r)
{
    return r->len;
}

size_t akidb__pqr_num_row_groups(const akidb__pqr *r)
{
    return r->n_rgs;
}

uint64_t akidb__pqr_row_group_rows(const akidb__pqr *r, size_t rg)
{
    return rg < r->n_rgs ? (uint64_t)r->rgs[rg].num_rows : 0;
}

size_t akidb__pqr_num_kv(const akidb__pqr *r)
{
    return r->n_kv;
}

const char *akidb__pqr_kv_at(const akidb__pqr *r, size_t i, const char **value_out)
{
    *value_out = r->kvs[i].val ? r->kvs[i].val : "";
    return r->kvs[i].key;
}

const char *akidb__pqr_kv(const akidb__pqr *r, const char *key)
{
    for (size_t i = 0; i < r->n_kv; i++)
        if (strcmp(r->kvs[i].key, key) == 0)
            return r->kvs[i].val ? r->kvs[i].val : "";
    return NULL;
}

static const char *codec_name(int32_t c)
{
    switch (c) {
    case CODEC_UNCOMPRESSED: return "UNCOMPRESSED";
    case CODEC_SNAPPY: return "SNAPPY";
    case CODEC_GZIP: return "GZIP";
    case CODEC_LZO: return "LZO";
    case CODEC_BROTLI: return "BROTLI";
    case CODEC_LZ4: return "LZ4";
    case CODEC_ZSTD: return "ZSTD";
    case CODEC_LZ4_RAW: return "LZ4_RAW";
    default: return "UNKNOWN";
    }
}

const char *akidb__pqr_codec(const akidb__pqr *r, size_t rg, size_t col)
{
    if (rg >= r->n_rgs || col >= r->n_cols)
        return NULL;
    return codec_name(r->rgs[rg].chunks[r->cols[col].leaf].codec);
}

/* ---- RLE / bit-packed hybrid decoding -------------------------------------- */

typedef struct hyb {
    const unsigned char *p;
    size_t len, pos;
    int bw;
    uint32_t left;              /* values left in the current run */
    int rle;
    uint32_t val;
    const unsigned char *bp;    /* current bit-packed run */
    size_t bp_len;
    uint32_t bp_idx;
} hyb;

static void hyb_init(hyb *h, const unsigned char *p, size_t len, int bw)
{
    memset(h, 0, sizeof *h);
    h->p = p;
    h->len = len;
    h->bw = bw;
}

/* Start the next run; -1 when the data ends or is malformed. */
static int hyb_next_run(hyb *h)
{
    uint64_t hdr = 0;
    for (int i = 0;; i++) {
        if (i == 5 || h->pos >= h->len)
            return -1;
        unsigned b = h->p[h->pos++];
        hdr |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    if (hdr > UINT32_MAX)
        return -1;
    if (hdr & 1) {
        uint64_t groups = hdr >> 1;
        uint64_t bytes = groups * (uint64_t)h->bw;
        size_t avail = h->len - h->pos;
        uint64_t vals = groups * 8;
        if (bytes > avail) {
            /* The last run may be cut short; keep the values it holds. */
            bytes = avail;
            vals = h->bw ? bytes * 8 / (uint64_t)h->bw : vals;
        }
        if (vals > UINT32_MAX)
            vals = UINT32_MAX;
        h->rle = 0;
        h->bp = h->p + h->pos;
        h->bp_len = (size_t)bytes;
        h->bp_idx = 0;
        h->left = (uint32_t)vals;
        h->pos += (size_t)bytes;
    } else {
        size_t nb = ((size_t)h->bw + 7) / 8;
        if (h->len - h->pos < nb)
            return -1;
        uint32_t v = 0;
        for (size_t i = 0; i < nb; i++)
            v |= (uint32_t)h->p[h->pos + i] << (8 * i);
        h->pos += nb;
        if (h->bw < 32 && (v >> h->bw))
            return -1;
        h->rle = 1;
        h->val = v;
        h->left = (uint32_t)(hdr >> 1);
    }
    return 0;
}

static inline uint64_t load_le64(const unsigned char *p, size_t avail)
{
    uint64_t v = 0;
    if (avail >= 8)
        memcpy(&v, p, 8);
    else
        memcpy(&v, p, avail);
    return v;
}

/* Decode n values; -1 when the data runs out or is malformed. */
#define HYB_GET(NAME, T)                                                        \
static int NAME(hyb *h, T *out, size_t n)                                       \
{                                                                               \
    const uint64_t mask = h->bw >= 32 ? 0xFFFFFFFFu : ((uint64_t)1 << h->bw) - 1; \
    while (n) {                                                                 \
        if (h->left == 0) {                                                     \
            if (hyb_next_run(h))                                                \
                return -1;                                                      \
            continue;                                                           \
        }                                                                       \
        size_t m = n < h->left ? n : h->left;                                   \
        if (h->rle && sizeof(T) == 1) {                                         \
            memset(out, (int)h->val, m);                                        \
        } else if (h->rle) {                                                    \
            for (size_t i = 0; i < m; i++)                                      \
                out[i] = (T)h->val;                                             \
        } else if (h->bw == 0) {                                                \
            memset(out, 0, m * sizeof(T));                                      \
        } else {                                                                \
            size_t i = 0;                                                       \
            if (h->bw <= 8 && (h->bp_idx & 7) == 0) {                           \
                /* whole groups: 8 values in bw bytes */                        \
                const unsigned char *g = h->bp + (size_t)(h->bp_idx / 8) * (size_t)h->bw; \
                for (; i + 8 <= m && (size_t)(g - h->bp) + 8 <= h->bp_len;      \
                     i += 8, g += h->bw) {                                      \
                    uint64_t x;                                                 \
                    memcpy(&x, g, 8);                                           \
                    for (int k = 0; k < 8; k++)                                 \
                        out[i + (size_t)k] = (T)((x >> (k * h->bw)) & mask);    \
                }                                                               \
            }                                                                   \
            uint64_t bit = ((uint64_t)h->bp_idx + i) * (uint64_t)h->bw;         \
            for (; i < m; i++, bit += (uint64_t)h->bw) {                        \
                size_t byte = (size_t)(bit >> 3);                               \
                out[i] = (T)((load_le64(h->bp + byte, h->bp_len - byte) >>      \
                              (bit & 7)) & mask);                               \
            }                                                                   \
            h->bp_idx += (uint32_t)m;                                           \
        }                                                                       \
        h->left -= (uint32_t)m;                                                 \
        out += m;                                                               \
        n -= m;                                                                 \
    }                                                                           \
    return 0;                                                                   \
}
HYB_GET(hyb_get8, uint8_t)
HYB_GET(hyb_get32, uint32_t)

/* ---- DELTA_BINARY_PACKED ------------------------------------------------------ */

typedef struct dbp {
    const unsigned char *p;
    size_t len, pos;
    uint64_t block_size, n_mini, per_mini, total, done;
    uint64_t last;
    uint64_t min_delta;
    size_t bw_pos;              /* offset of the current block's bit widths */
    uint64_t mini;              /* current miniblock in the block */
    uint64_t in_mini;           /* values used from it */
    size_t mini_pos;            /* offset of its packed data */
    int bw;
    int in_block;
} dbp;

static int dbp_varint(dbp *d, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (d->pos >= d->len)
            return -1;
        unsigned b = d->p[d->pos++];
        x |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static int dbp_init(dbp *d, const unsigned char *p, size_t len)
{
    memset(d, 0, sizeof *d);
    d->p = p;
    d->len = len;
    uint64_t first;
    if (dbp_varint(d, &d->block_size) || dbp_varint(d, &d->n_mini) ||
        dbp_varint(d, &d->total) || dbp_varint(d, &first))
        return -1;
    if (d->block_size == 0 || d->block_size % 128 || d->block_size > (1u << 20) ||
        d->n_mini == 0 || d->block_size % d->n_mini || (d->block_size / d->n_mini) % 8)
        return -1;
    d->per_mini = d->block_size / d->n_mini;
    d->last = (first >> 1) ^ -(first & 1);
    return 0;
}

/* Open the miniblock after the current one (a new block when needed). */
static int dbp_next_mini(dbp *d)
{
    if (d->in_block) {
        d->mini_pos += (size_t)(d->per_mini * (uint64_t)d->bw / 8);
        d->mini++;
        if (d->mini_pos > d->len)
            return -1;
    }
    if (!d->in_block || d->mini == d->n_mini) {
        uint64_t md;
        if (d->in_block)
            d->pos = d->mini_pos;
        if (dbp_varint(d, &md))
            return -1;
        d->min_delta = (md >> 1) ^ -(md & 1);
        if (d->len - d->pos < d->n_mini)
            return -1;
        d->bw_pos = d->pos;
        d->pos += (size_t)d->n_mini;
        d->mini_pos = d->pos;
        d->mini = 0;
        d->in_block = 1;
    }
    d->bw = d->p[d->bw_pos + d->mini];
    if (d->bw > 64)
        return -1;
    d->in_mini = 0;
    /* The miniblock's data must be present (its last one may be cut short
     * only if the values it is asked for are present; checked per value). */
    return 0;
}

/* Decode n values (modular 64-bit arithmetic; INT32 callers truncate). */
static int dbp_get(dbp *d, uint64_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (d->done >= d->total)
            return -1;
        if (d->done == 0) {
            out[i] = d->last;
            d->done++;
            continue;
        }
        if (!d->in_block || d->in_mini == d->per_mini)
            if (dbp_next_mini(d))
                return -1;
        uint64_t v = 0;
        if (d->bw) {
            uint64_t bit = d->in_mini * (uint64_t)d->bw;
            size_t byte = d->mini_pos + (size_t)(bit >> 3);
            unsigned sh = (unsigned)(bit & 7);
            size_t need = ((size_t)sh + (size_t)d->bw + 7) / 8;
            if (byte > d->len || d->len - byte < need)
                return -1;
            unsigned char tmp[9] = { 0 };
            memcpy(tmp, d->p + byte, need);
            uint64_t lo;
            memcpy(&lo, tmp, 8);
            v = lo >> sh;
            if (sh && sh + (unsigned)d->bw > 64)
                v |= (uint64_t)tmp[8] << (64 - sh);
            if (d->bw < 64)
                v &= ((uint64_t)1 << d->bw) - 1;
        }
        d->in_mini++;
        d->last = d->last + d->min_delta + v;
        out[i] = d->last;
        d->done++;
    }
    return 0;
}

/* Where the encoded stream ends: skip the values not yet read. */
static int dbp_end(dbp *d, size_t *end)
{
    uint64_t tmp[64];
    while (d->done < d->total) {
        /* whole miniblocks are skipped without decoding */
        if (d->done > 0 && d->in_block && d->in_mini == d->per_mini &&
            d->total - d->done > d->per_mini) {
            if (dbp_next_mini(d))
                return -1;
            d->in_mini = d->per_mini;
            d->done += d->per_mini;
            continue;
        }
        uint64_t k = d->total - d->done;
        if (d->done > 0 && d->in_block && d->per_mini - d->in_mini < k &&
            d->in_mini < d->per_mini)
            k = d->per_mini - d->in_mini;
        if (k > 64)
            k = 64;
        if (dbp_get(d, tmp, (size_t)k))
            return -1;
    }
    if (d->in_block) {
        size_t e = d->mini_pos + (size_t)(d->per_mini * (uint64_t)d->bw / 8);
        *end = e < d->len ? e : d->len;
    } else {
        *end = d->pos;
    }
    return 0;
}

/* ---- column read state -------------------------------------------------------- */

typedef struct rd {
    akidb__pqr *r;
    const pq_col *col;
    const pq_chunk *ch;
    const pq_rg *rg;
    akidb__pqr_values *out;
    const akidb_allocator *a;
    size_t width;               /* physical value width (0 for BYTE_ARRAY) */
    uint64_t page_off;          /* file offset of the page being decoded */

    size_t n_rows, cap_rows;
    size_t n_vals, cap_vals;    /* list elements or flat values */
    size_t n_bytes, cap_bytes;
    int row_has_elems;
    int64_t entries;            /* level entries so far */

    /* dictionary */
    int has_dict;
    size_t dict_n;
    unsigned char *dict_buf;    /* owned copy of the decompressed page */
    const unsigned char *dict_vals;
    uint32_t *dict_off;         /* BYTE_ARRAY: n + 1 offsets into dict_vals */

    /* scratch */
    unsigned char *page_buf;
    size_t page_cap;
    ZSTD_DCtx *dctx;
    uint8_t rep[BATCH], def[BATCH];
    uint32_t idx[BATCH];
    uint64_t tmp64[BATCH];
} rd;

static int page_corrupt(const rd *d, const char *msg)
{
    return akidb__err(AKIDB_CORRUPT, "parquet: column %s, page at file offset %llu: %s",
                      d->col->name, (unsigned long long)d->page_off, msg);
}

static int nomem(void)
{
    return akidb__err(AKIDB_NOMEM, "parquet: out of memory");
}

static int grow(const akidb_allocator *a, void **p, size_t *cap, size_t need, size_t elem,
                size_t extra)
{
    if (need <= *cap)
        return AKIDB_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 4)
            return nomem();
        c *= 2;
    }
    if (c + extra < c || akidb__mul_overflows(c + extra, elem))
        return nomem();
    void *q = akidb__realloc(a, *p, (c + extra) * elem);
    if (!q)
        return nomem();
    akidb__advise_huge(a, q, (c + extra) * elem);   /* beyond the old size: untouched */
    *p = q;
    *cap = c;
    return AKIDB_OK;
}

static int resize(const akidb_allocator *a, void **p, size_t n, size_t elem)
{
    if (akidb__mul_overflows(n, elem))
        return nomem();
    void *q = akidb__realloc(a, *p, n * elem);
    if (!q)
        return nomem();
    *p = q;
    return AKIDB_OK;
}

/* Room for `more` rows: offsets (one extra slot), the flat values array
 * and the nulls all follow cap_rows. */
static int ensure_rows(rd *d, size_t more)
{
    if ((uint64_t)d->n_rows + more > (uint64_t)d->rg->num_rows)
        return page_corrupt(d, "more rows than the row group holds");
    size_t need = d->n_rows + more;
    if (need <= d->cap_rows)
        return AKIDB_OK;
    size_t c = d->cap_rows ? d->cap_rows : 64;
    while (c < need) {
        if (c > SIZE_MAX / 4)
            return nomem();
        c *= 2;
    }
    akidb__pqr_values *o = d->out;
    int rc;
    if (o->offsets && (rc = resize(d->a, (void **)&o->offsets, c + 1, sizeof *o->offsets)))
        return rc;
    if (!d->col->is_list && d->width) {
        void **arr = o->i64 ? (void **)&o->i64 : o->i32 ? (void **)&o->i32 : (void **)&o->f32;
        if ((rc = resize(d->a, arr, c, o->i64 ? 8 : 4)))
            return rc;
    }
    if (o->nulls && (rc = resize(d->a, (void **)&o->nulls, c, 1)))
        return rc;
    d->cap_rows = c;
    return AKIDB_OK;
}

/* The first null: create the nulls array, all rows so far present. */
static int start_nulls(rd *d)
{
    akidb__pqr_values *o = d->out;
    if (o->nulls)
        return AKIDB_OK;
    o->nulls = akidb__malloc(d->a, d->cap_rows);
    if (!o->nulls)
        return nomem();
    memset(o->nulls, 0, d->cap_rows);
    return AKIDB_OK;
}

static int ensure_vals(rd *d, size_t more)
{
    if (more > SIZE_MAX - d->n_vals)
        return nomem();
    size_t need = d->n_vals + more;
    if (need <= d->cap_vals)
        return AKIDB_OK;
    akidb__pqr_values *o = d->out;
    void **arr = d->col->kind == AKIDB__PQ_INT32_LIST ? (void **)&o->i32 : (void **)&o->f32;
    return grow(d->a, arr, &d->cap_vals, need, 4, 0);
}

static int ensure_bytes(rd *d, size_t more)
{
    if (more > SIZE_MAX - d->n_bytes)
        return nomem();
    return grow(d->a, (void **)&d->out->bytes, &d->cap_bytes, d->n_bytes + more, 1, 0);
}

/* ---- decompression -------------------------------------------------------------- */

static int scratch(rd *d, size_t n)
{
    if (n <= d->page_cap)
        return AKIDB_OK;
    unsigned char *p = akidb__realloc(d->a, d->page_buf, n);
    if (!p)
        return nomem();
    d->page_buf = p;
    d->page_cap = n;
    return AKIDB_OK;
}

/* Decompress src (the page's bytes in the file) to exactly unc_len bytes;
 * *out points at the result (src itself when stored).  The output buffer
 * is the rd's scratch; zstd output grows only as it is produced. */
static int decompress(rd *d, const unsigned char *src, size_t src_len, size_t unc_len,
                      const unsigned char **out)
{
    int rc;
    int32_t codec = d->ch->codec;
    if (codec == CODEC_UNCOMPRESSED) {
        if (src_len != unc_len)
            return page_corrupt(d, "stored page: compressed and uncompressed sizes differ");
        *out = src;
        return AKIDB_OK;
    }
    if (unc_len == 0 && src_len == 0) {
        *out = src;
        return AKIDB_OK;
    }
    if (codec == CODEC_SNAPPY) {
        size_t n, at;
        if (akidb__snappy_length(src, src_len, &n, &at))
            return page_corrupt(d, "snappy: bad length preamble");
        if (n != unc_len)
            return page_corrupt(d, "snappy: length differs from the page header's");
        if (unc_len / AKIDB__SNAPPY_MAX_RATIO > src_len)
            return page_corrupt(d, "snappy: uncompressed size impossible for the input size");
        if ((rc = scratch(d, unc_len)))
            return rc;
        if (akidb__snappy_decompress(src, src_len, d->page_buf, unc_len, &at)) {
            char msg[96];
            snprintf(msg, sizeof msg, "snappy: bad data at byte %zu of the page body", at);
            return page_corrupt(d, msg);
        }
        *out = d->page_buf;
        return AKIDB_OK;
    }
    if (codec == CODEC_ZSTD) {
        unsigned long long fcs = ZSTD_getFrameContentSize(src, src_len);
        if (fcs == ZSTD_CONTENTSIZE_ERROR)
            return page_corrupt(d, "zstd: bad frame header");
        if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != unc_len)
            return page_corrupt(d, "zstd: frame size differs from the page header's");
        if (!d->dctx && !(d->dctx = ZSTD_createDCtx()))
            return nomem();
        ZSTD_DCtx_reset(d->dctx, ZSTD_reset_session_only);
        /* Start with what the input can plausibly produce; grow on demand. */
        size_t cap = unc_len;
        if (src_len < SIZE_MAX / 16 && cap > src_len * 16 + 65536)
            cap = src_len * 16 + 65536;
        if ((rc = scratch(d, cap ? cap : 1)))
            return rc;
        ZSTD_inBuffer in = { src, src_len, 0 };
        ZSTD_outBuffer ob = { d->page_buf, cap, 0 };
        for (;;) {
            size_t in_before = in.pos, out_before = ob.pos;
            size_t z = ZSTD_decompressStream(d->dctx, &ob, &in);
            if (ZSTD_isError(z)) {
                char msg[96];
                snprintf(msg, sizeof msg, "zstd: %s", ZSTD_getErrorName(z));
                return page_corrupt(d, msg);
            }
            if (z == 0 && in.pos == in.size)
                break;
            if (ob.pos == ob.size) {
                if (ob.size == unc_len)
                    return page_corrupt(d, "zstd: data decompresses to more than the page "
                                        "header says");
                size_t nc = ob.size * 2 < unc_len ? ob.size * 2 : unc_len;
                if ((rc = scratch(d, nc)))
                    return rc;
                ob.dst = d->page_buf;
                ob.size = nc;
            } else if (in.pos == in.size) {
                return page_corrupt(d, "zstd: truncated frame");
            } else if (in.pos == in_before && ob.pos == out_before) {
                return page_corrupt(d, "zstd: no progress");
            }
        }
        if (ob.pos != unc_len)
            return page_corrupt(d, "zstd: data decompresses to a different size than the page "
                                "header says");
        *out = d->page_buf;
        return AKIDB_OK;
    }
    return akidb__err(AKIDB_INVALID, "parquet: column %s: codec %s (%d) is not supported "
                      "(use UNCOMPRESSED, SNAPPY or ZSTD)", d->col->name, codec_name(codec),
                      codec);
}

/* ---- value sources ---------------------------------------------------------------- */

typedef struct vsrc {
    int enc;
    const unsigned char *p;
    size_t len;
    size_t pos;                 /* PLAIN: byte position */
    size_t idx, stride;         /* BYTE_STREAM_SPLIT */
    hyb ix;                     /* dictionary indices */
    dbp lens;                   /* DELTA_*: (suffix) lengths */
    dbp prefix;                 /* DELTA_BYTE_ARRAY prefixes */
    dbp ints;                   /* DELTA_BINARY_PACKED values */
    size_t data;                /* DELTA_*: position of the bytes */
    size_t prev_off, prev_len;  /* DELTA_BYTE_ARRAY: previous value in out->bytes */
    int have_prev;
} vsrc;

static const char *enc_name(int e)
{
    switch (e) {
    case ENC_PLAIN: return "PLAIN";
    case ENC_PLAIN_DICTIONARY: return "PLAIN_DICTIONARY";
    case ENC_RLE: return "RLE";
    case ENC_BIT_PACKED: return "BIT_PACKED";
    case ENC_DELTA_BINARY_PACKED: return "DELTA_BINARY_PACKED";
    case ENC_DELTA_LENGTH_BYTE_ARRAY: return "DELTA_LENGTH_BYTE_ARRAY";
    case ENC_DELTA_BYTE_ARRAY: return "DELTA_BYTE_ARRAY";
    case ENC_RLE_DICTIONARY: return "RLE_DICTIONARY";
    case ENC_BYTE_STREAM_SPLIT: return "BYTE_STREAM_SPLIT";
    default: return "UNKNOWN";
    }
}

static int vsrc_init(rd *d, vsrc *v, int enc, const unsigned char *p, size_t len)
{
    memset(v, 0, sizeof *v);
    v->enc = enc;
    v->p = p;
    v->len = len;
    const int phys = d->col->phys;
    switch (enc) {
    case ENC_PLAIN:
        return AKIDB_OK;
    case ENC_PLAIN_DICTIONARY:
    case ENC_RLE_DICTIONARY:
        if (!d->has_dict)
            return page_corrupt(d, "dictionary-encoded page without a dictionary page");
        if (len < 1 || p[0] > 32)
            return page_corrupt(d, "bad dictionary index bit width");
        hyb_init(&v->ix, p + 1, len - 1, p[0]);
        return AKIDB_OK;
    case ENC_BYTE_STREAM_SPLIT:
        if (d->width == 0)
            break;
        if (len % d->width)
            return page_corrupt(d, "BYTE_STREAM_SPLIT data is not a whole number of values");
        v->stride = len / d->width;
        return AKIDB_OK;
    case ENC_DELTA_BINARY_PACKED:
        if (phys != PT_INT32 && phys != PT_INT64)
            break;
        if (dbp_init(&v->ints, p, len))
            return page_corrupt(d, "bad DELTA_BINARY_PACKED header");
        return AKIDB_OK;
    case ENC_DELTA_LENGTH_BYTE_ARRAY:
    case ENC_DELTA_BYTE_ARRAY: {
        if (phys != PT_BYTE_ARRAY)
            break;
        dbp probe;
        size_t end = 0, end2;
        if (enc == ENC_DELTA_BYTE_ARRAY) {
            if (dbp_init(&v->prefix, p, len) || dbp_init(&probe, p, len) ||
                dbp_end(&probe, &end))
                return page_corrupt(d, "bad DELTA_BYTE_ARRAY prefix lengths");
        }
        if (dbp_init(&v->lens, p + end, len - end) || dbp_init(&probe, p + end, len - end) ||
            dbp_end(&probe, &end2))
            return page_corrupt(d, "bad DELTA lengths");
        v->data = end + end2;
        return AKIDB_OK;
    }
    default:
        break;
    }
    return akidb__err(AKIDB_INVALID, "parquet: column %s: encoding %s (%d) is not supported "
                      "for %s values", d->col->name, enc_name(enc), enc, phys_name(phys));
}

/* n fixed-width values (d->width bytes each) into dst. */
static int vsrc_fixed(rd *d, vsrc *v, unsigned char *dst, size_t n)
{
    const size_t w = d->width;
    switch (v->enc) {
    case ENC_PLAIN:
        if (n > (v->len - v->pos) / w)
            return page_corrupt(d, "fewer values than the levels announce");
        memcpy(dst, v->p + v->pos, n * w);
        v->pos += n * w;
        return AKIDB_OK;
    case ENC_BYTE_STREAM_SPLIT:
        if (n > v->stride - v->idx)
            return page_corrupt(d, "fewer values than the levels announce");
        if (w == 4) {
            const unsigned char *s0 = v->p + v->idx, *s1 = s0 + v->stride,
                                *s2 = s1 + v->stride, *s3 = s2 + v->stride;
            size_t i = 0;
#if defined(__SSE2__)
            /* 16 values at a time: interleave bytes, then byte pairs */
            for (; i + 16 <= n; i += 16) {
                __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s0 + i));
                __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s1 + i));
                __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s2 + i));
                __m128i e = _mm_loadu_si128((const __m128i *)(const void *)(s3 + i));
                __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
                __m128i ce0 = _mm_unpacklo_epi8(c, e), ce1 = _mm_unpackhi_epi8(c, e);
                __m128i *o = (__m128i *)(void *)(dst + 4 * i);
                _mm_storeu_si128(o, _mm_unpacklo_epi16(ab0, ce0));
                _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(ab0, ce0));
                _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(ab1, ce1));
                _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(ab1, ce1));
            }
#endif
            for (; i < n; i++) {
                uint32_t x = (uint32_t)s0[i] | (uint32_t)s1[i] << 8 |
                             (uint32_t)s2[i] << 16 | (uint32_t)s3[i] << 24;
                memcpy(dst + 4 * i, &x, 4);
            }
        } else {
            for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < w; k++)
                    dst[i * w + k] = v->p[k * v->stride + v->idx + i];
        }
        v->idx += n;
        return AKIDB_OK;
    case ENC_PLAIN_DICTIONARY:
    case ENC_RLE_DICTIONARY:
        while (n) {
            size_t m = n < BATCH ? n : BATCH;
            if (hyb_get32(&v->ix, d->idx, m))
                return page_corrupt(d, "dictionary indices run out or are malformed");
            for (size_t i = 0; i < m; i++) {
                if (d->idx[i] >= d->dict_n)
                    return page_corrupt(d, "dictionary index out of range");
                memcpy(dst + i * w, d->dict_vals + (size_t)d->idx[i] * w, w);
            }
            dst += m * w;
            n -= m;
        }
        return AKIDB_OK;
    case ENC_DELTA_BINARY_PACKED:
        while (n) {
            size_t m = n < BATCH ? n : BATCH;
            if (dbp_get(&v->ints, d->tmp64, m))
                return page_corrupt(d, "DELTA_BINARY_PACKED values run out or are malformed");
            if (w == 8) {
                memcpy(dst, d->tmp64, m * 8);
            } else {
                for (size_t i = 0; i < m; i++) {
                    uint32_t x = (uint32_t)d->tmp64[i];
                    memcpy(dst + 4 * i, &x, 4);
                }
            }
            dst += m * w;
            n -= m;
        }
        return AKIDB_OK;
    default:
        return page_corrupt(d, "unexpected value encoding");
    }
}

/* The next BYTE_ARRAY value, appended to out->bytes. */
static int vsrc_bytes(rd *d, vsrc *v)
{
    int rc;
    const unsigned char *src = NULL;
    size_t len = 0;
    size_t prefix = 0;
    switch (v->enc) {
    case ENC_PLAIN: {
        uint32_t l;
        if (v->len - v->pos < 4)
            return page_corrupt(d, "fewer values than the levels announce");
        memcpy(&l, v->p + v->pos, 4);
        if (l > v->len - v->pos - 4)
            return page_corrupt(d, "byte array length exceeds the page");
        src = v->p + v->pos + 4;
        len = l;
        v->pos += 4 + (size_t)l;
        break;
    }
    case ENC_PLAIN_DICTIONARY:
    case ENC_RLE_DICTIONARY: {
        uint32_t ix;
        if (hyb_get32(&v->ix, &ix, 1))
            return page_corrupt(d, "dictionary indices run out or are malformed");
        if (ix >= d->dict_n)
            return page_corrupt(d, "dictionary index out of range");
        src = d->dict_vals + d->dict_off[ix];
        len = d->dict_off[ix + 1] - d->dict_off[ix];
        break;
    }
    case ENC_DELTA_LENGTH_BYTE_ARRAY:
    case ENC_DELTA_BYTE_ARRAY: {
        uint64_t l, pl = 0;
        if (dbp_get(&v->lens, &l, 1))
            return page_corrupt(d, "DELTA lengths run out or are malformed");
        if (v->enc == ENC_DELTA_BYTE_ARRAY) {
            if (dbp_get(&v->prefix, &pl, 1))
                return page_corrupt(d, "DELTA_BYTE_ARRAY prefixes run out or are malformed");
            if (pl > (v->have_prev ? v->prev_len : 0))
                return page_corrupt(d, "DELTA_BYTE_ARRAY prefix longer than the previous value");
        }
        if (l > v->len - v->data)
            return page_corrupt(d, "DELTA byte array length exceeds the page");
        src = v->p + v->data;
        len = (size_t)l;
        prefix = (size_t)pl;
        v->data += len;
        break;
    }
    default:
        return page_corrupt(d, "unexpected value encoding");
    }
    if ((rc = ensure_bytes(d, prefix + len)))
        return rc;
    if (prefix)
        memmove(d->out->bytes + d->n_bytes, d->out->bytes + v->prev_off, prefix);
    if (len)
        memcpy(d->out->bytes + d->n_bytes + prefix, src, len);
    v->prev_off = d->n_bytes;
    v->prev_len = prefix + len;
    v->have_prev = 1;
    d->n_bytes += prefix + len;
    return AKIDB_OK;
}

/* n list elements appended to the f32 / i32 output. */
static int put_elements(rd *d, vsrc *v, size_t n)
{
    int rc;
    if (!n)
        return AKIDB_OK;
    if ((rc = ensure_vals(d, n)))
        return rc;
    akidb__pqr_values *o = d->out;
    if (d->col->phys == PT_DOUBLE) {
        float *dst = o->f32 + d->n_vals;
        while (n) {
            size_t m = n < BATCH ? n : BATCH;
            if ((rc = vsrc_fixed(d, v, (unsigned char *)d->tmp64, m)))
                return rc;
            for (size_t i = 0; i < m; i++) {
                double x;
                memcpy(&x, &d->tmp64[i], 8);
                dst[i] = (float)x;
            }
            dst += m;
            d->n_vals += m;
            n -= m;
        }
        return AKIDB_OK;
    }
    unsigned char *dst = d->col->kind == AKIDB__PQ_INT32_LIST
                         ? (unsigned char *)(o->i32 + d->n_vals)
                         : (unsigned char *)(o->f32 + d->n_vals);
    if ((rc = vsrc_fixed(d, v, dst, n)))
        return rc;
    d->n_vals += n;
    return AKIDB_OK;
}

/* ---- levels to rows ------------------------------------------------------------------ */

/* One batch of k level entries of a list column. */
static int list_batch(rd *d, vsrc *v, const uint8_t *rep, const uint8_t *def, size_t k)
{
    const pq_col *c = d->col;
    int rc;
    size_t rows = 0;
    unsigned rep_or = 0, def_diff = 0;
    const unsigned max_def = (unsigned)c->max_def;
    for (size_t i = 0; i < k; i++) {
        rows += rep[i] == 0;
        rep_or |= rep[i];
        def_diff |= def[i] ^ max_def;
    }
    if ((rc = ensure_rows(d, rows)))
        return rc;
    uint64_t *offs = d->out->offsets;
    size_t nv = 0;
    /* Fast path: every entry is a present element (the common dense vector
     * case): rows start at the zeros of the repetition levels. */
    if (def_diff == 0 && rep_or <= 1) {
        if (rep[0] != 0 && !d->row_has_elems)
            return page_corrupt(d, "repetition level continues an empty or missing list");
        const uint8_t *z = rep, *end = rep + k;
        while ((z = memchr(z, 0, (size_t)(end - z))) != NULL) {
            offs[d->n_rows++] = d->n_vals + (size_t)(z - rep);
            z++;
        }
        if (rows && d->out->nulls)
            memset(d->out->nulls + d->n_rows - rows, 0, rows);
        d->row_has_elems = 1;
        return put_elements(d, v, k);
    }
    for (size_t i = 0; i < k; i++) {
        unsigned dl = def[i], rl = rep[i];
        if (dl > max_def || rl > 1)
            return page_corrupt(d, "level above the maximum");
        if (rl == 0) {
            int null = dl < (unsigned)c->list_def;
            if (null && (rc = start_nulls(d)))
                return rc;
            if (d->out->nulls)
                d->out->nulls[d->n_rows] = (uint8_t)null;
            offs[d->n_rows++] = d->n_vals + nv;
            d->row_has_elems = dl >= (unsigned)c->elem_def;
        } else if (!d->row_has_elems || dl < (unsigned)c->elem_def) {
            return page_corrupt(d, "repetition level continues an empty or missing list");
        }
        if (dl >= (unsigned)c->elem_def) {
            if (dl < max_def)
                return akidb__err(AKIDB_INVALID, "parquet: column %s, page at file offset "
                                  "%llu: a list holds a null element (vectors cannot)",
                                  c->name, (unsigned long long)d->page_off);
            nv++;
        }
    }
    return put_elements(d, v, nv);
}

/* One batch of k entries of a flat column (def NULL when required). */
static int flat_batch(rd *d, vsrc *v, const uint8_t *def, size_t k)
{
    const pq_col *c = d->col;
    akidb__pqr_values *o = d->out;
    int rc;
    if ((rc = ensure_rows(d, k)))
        return rc;
    size_t nn = k;
    if (def) {
        nn = 0;
        for (size_t i = 0; i < k; i++) {
            if (def[i] > c->max_def)
                return page_corrupt(d, "definition level above the maximum");
            nn += def[i] == c->max_def;
        }
        if (nn < k && (rc = start_nulls(d)))
            return rc;
        if (o->nulls)
            for (size_t i = 0; i < k; i++)
                o->nulls[d->n_rows + i] = def[i] != c->max_def;
    }
    if (d->width == 0) {
        for (size_t i = 0; i < k; i++) {
            o->offsets[d->n_rows + i] = d->n_bytes;
            if ((!def || def[i] == c->max_def) && (rc = vsrc_bytes(d, v)))
                return rc;
        }
        d->n_rows += k;
        o->offsets[d->n_rows] = d->n_bytes;
        return AKIDB_OK;
    }
    size_t ow = c->kind == AKIDB__PQ_INT64 || c->kind == AKIDB__PQ_TIMESTAMP_US ? 8 : 4;
    unsigned char *base = o->i64 ? (unsigned char *)o->i64 : o->i32 ? (unsigned char *)o->i32
                                                                    : (unsigned char *)o->f32;
    unsigned char *dst = base + d->n_rows * ow;
    if ((rc = vsrc_fixed(d, v, dst, nn)))
        return rc;
    if (nn < k) {
        /* Spread the dense values out to their rows, back to front. */
        size_t j = nn;
        for (size_t i = k; i-- > 0;) {
            if (def[i] == c->max_def)
                memmove(dst + i * ow, dst + --j * ow, ow);
            else
                memset(dst + i * ow, 0, ow);
        }
    }
    d->n_rows += k;
    return AKIDB_OK;
}

/* Decode the n level entries of one data page. */
static int page_levels(rd *d, vsrc *v, const unsigned char *rl, size_t rl_len,
                       const unsigned char *dl, size_t dl_len, size_t n)
{
    const pq_col *c = d->col;
    hyb hr, hd;
    int bw_r = 0, bw_d = 0;
    while ((1 << bw_r) <= c->max_rep)
        bw_r++;
    while ((1 << bw_d) <= c->max_def)
        bw_d++;
    hyb_init(&hr, rl, rl_len, bw_r);
    hyb_init(&hd, dl, dl_len, bw_d);
    int rc;
    while (n) {
        size_t k = n < BATCH ? n : BATCH;
        if (c->max_rep && hyb_get8(&hr, d->rep, k))
            return page_corrupt(d, "repetition levels run out or are malformed");
        if (c->max_def && hyb_get8(&hd, d->def, k))
            return page_corrupt(d, "definition levels run out or are malformed");
        if (c->is_list) {
            if (!c->max_rep)
                memset(d->rep, 0, k);
            rc = list_batch(d, v, d->rep, d->def, k);
        } else {
            rc = flat_batch(d, v, c->max_def ? d->def : NULL, k);
        }
        if (rc)
            return rc;
        n -= k;
    }
    return AKIDB_OK;
}

/* ---- pages -------------------------------------------------------------------------- */

typedef struct page_hdr {
    int32_t type, unc, comp;
    int has_crc;
    uint32_t crc;
    int has_sub;
    int32_t n_values, encoding, def_enc, rep_enc;       /* v1 and dictionary */
    int32_t num_nulls, num_rows, def_len, rep_len;      /* v2 */
    int is_compressed;
} page_hdr;

/* The sub-header matching the page type: DataPageHeader (5),
 * DictionaryPageHeader (7), DataPageHeaderV2 (8).  Their i32 fields are
 * read only when not struct-typed (statistics and the like are skipped). */
#define F_PAGE(id, m, name)                                                     \
    F_(id, AKIDB__TF_I32, 0, AKIDB__TBIT(AKIDB__T_STRUCT), offsetof(page_hdr, m), 0,   \
       NULL, NULL, name)

static int page_sub_check(akidb__tr *t, void *obj, uint32_t seen, void *ctx)
{
    (void)t;
    (void)seen;
    (void)ctx;
    ((page_hdr *)obj)->has_sub = 1;
    return AKIDB_OK;
}

static const akidb__tfield data_page_fields[] = {
    F_PAGE(1, n_values, "num_values"),
    F_PAGE(2, encoding, "encoding"),
    F_PAGE(3, def_enc, "definition_level_encoding"),
    F_PAGE(4, rep_enc, "repetition_level_encoding"),
};
static const akidb__tstruct data_page_t = {
    .name = "data page header",
    .fields = data_page_fields,
    .n_fields = N_(data_page_fields),
    .required = AKIDB__TID(1) | AKIDB__TID(2) | AKIDB__TID(3) | AKIDB__TID(4),
    .check = page_sub_check,
};

static const akidb__tfield dict_page_fields[] = {
    F_PAGE(1, n_values, "num_values"),
    F_PAGE(2, encoding, "encoding"),
};
static const akidb__tstruct dict_page_t = {
    .name = "dictionary page header",
    .fields = dict_page_fields,
    .n_fields = N_(dict_page_fields),
    .required = AKIDB__TID(1) | AKIDB__TID(2),
    .check = page_sub_check,
};

static const akidb__tfield data_page_v2_fields[] = {
    F_PAGE(1, n_values, "num_values"),
    F_PAGE(2, num_nulls, "num_nulls"),
    F_PAGE(3, num_rows, "num_rows"),
    F_PAGE(4, encoding, "encoding"),
    F_PAGE(5, def_len, "definition_levels_byte_length"),
    F_PAGE(6, rep_len, "repetition_levels_byte_length"),
    F_VAL(7, AKIDB__TF_BOOL, page_hdr, is_compressed, 0, "is_compressed"),
};
static const akidb__tstruct data_page_v2_t = {
    .name = "data page v2 header",
    .fields = data_page_v2_fields,
    .n_fields = N_(data_page_v2_fields),
    .required = AKIDB__TID(1) | AKIDB__TID(2) | AKIDB__TID(3) | AKIDB__TID(4) |
                AKIDB__TID(5) | AKIDB__TID(6),
    .check = page_sub_check,
};

/* Fields 5, 7, 8: decoded when they match the page type read before them
 * (type is field 1; a sub-header before it, or of another type, is
 * skipped). */
static int parse_sub(akidb__tr *t, int16_t id, int ft, void *obj, void *ctx)
{
    page_hdr *h = obj;
    const akidb__tstruct *sub = id == 5 && h->type == PAGE_DATA ? &data_page_t
                              : id == 7 && h->type == PAGE_DICTIONARY ? &dict_page_t
                              : id == 8 && h->type == PAGE_DATA_V2 ? &data_page_v2_t : NULL;
    if (!sub || ft != AKIDB__T_STRUCT)
        return akidb__tr_skip(t, ft);
    return akidb__tr_struct(t, sub, h, ctx);
}

static void page_header_init(void *obj, uint64_t off)
{
    page_hdr *h = obj;
    (void)off;
    memset(h, 0, sizeof *h);
    h->type = -1;               /* not read yet: matches no sub-header */
    h->is_compressed = 1;
}

static int page_header_check(akidb__tr *t, void *obj, uint32_t seen, void *ctx)
{
    page_hdr *h = obj;
    (void)ctx;
    h->has_crc = (seen & AKIDB__TID(4)) != 0;
    if (h->unc < 0 || h->comp < 0)
        return akidb__tr_fail(t, "page header has a negative size");
    return AKIDB_OK;
}

static const akidb__tfield page_header_fields[] = {
    F_VAL(1, AKIDB__TF_I32, page_hdr, type, 0, "type"),
    F_VAL(2, AKIDB__TF_I32, page_hdr, unc, 0, "uncompressed_page_size"),
    F_VAL(3, AKIDB__TF_I32, page_hdr, comp, 0, "compressed_page_size"),
    F_VAL(4, AKIDB__TF_I32, page_hdr, crc, 0, "crc"),       /* the i32's bits, as uint32_t */
    F_FN(5, parse_sub, 0, "data_page_header"),
    F_FN(7, parse_sub, 0, "dictionary_page_header"),
    F_FN(8, parse_sub, 0, "data_page_header_v2"),
};
static const akidb__tstruct page_header_t = {
    .name = "page header",
    .fields = page_header_fields,
    .n_fields = N_(page_header_fields),
    .required = AKIDB__TID(1) | AKIDB__TID(2) | AKIDB__TID(3),
    .init = page_header_init,
    .check = page_header_check,
};

static int read_dictionary(rd *d, const page_hdr *h, const unsigned char *body)
{
    int rc;
    const unsigned char *p;
    if (d->has_dict)
        return page_corrupt(d, "a second dictionary page");
    if (d->entries > 0)
        return page_corrupt(d, "dictionary page after data pages");
    if (h->encoding != ENC_PLAIN && h->encoding != ENC_PLAIN_DICTIONARY)
        return page_corrupt(d, "dictionary page is not PLAIN-encoded");
    if (h->n_values < 0)
        return page_corrupt(d, "negative dictionary size");
    if ((rc = decompress(d, body, (size_t)h->comp, (size_t)h->unc, &p)))
        return rc;
    size_t len = (size_t)h->unc, n = (size_t)h->n_values;
    d->dict_buf = akidb__malloc(d->a, len);
    if (!d->dict_buf)
        return nomem();
    if (len)
        memcpy(d->dict_buf, p, len);
    d->dict_vals = d->dict_buf;
    if (d->width) {
        if (n > len / d->width)
            return page_corrupt(d, "dictionary holds fewer values than announced");
    } else {
        if (n > len / 4)
            return page_corrupt(d, "dictionary holds fewer values than announced");
        d->dict_off = akidb__alloc_array(d->a, n + 1, sizeof *d->dict_off);
        if (!d->dict_off)
            return nomem();
        /* Compact the values in place (dropping the length prefixes) so
         * value i is dict_vals[dict_off[i] .. dict_off[i + 1]). */
        size_t pos = 0, wpos = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t l;
            if (len - pos < 4)
                return page_corrupt(d, "dictionary holds fewer values than announced");
            memcpy(&l, d->dict_buf + pos, 4);
            if (l > len - pos - 4)
                return page_corrupt(d, "dictionary value length exceeds the page");
            memmove(d->dict_buf + wpos, d->dict_buf + pos + 4, l);
            d->dict_off[i] = (uint32_t)wpos;
            wpos += l;
            pos += 4 + (size_t)l;
        }
        d->dict_off[n] = (uint32_t)wpos;
    }
    d->dict_n = n;
    d->has_dict = 1;
    return AKIDB_OK;
}

static int read_data_page(rd *d, const page_hdr *h, const unsigned char *body)
{
    const pq_col *c = d->col;
    int rc;
    if (!h->has_sub)
        return page_corrupt(d, "data page without its sub-header");
    if (h->n_values < 0)
        return page_corrupt(d, "negative value count");
    if ((int64_t)h->n_values > d->ch->num_values - d->entries)
        return page_corrupt(d, "pages hold more values than the column chunk announces");
    const unsigned char *rl = NULL, *dl = NULL, *vals;
    size_t rl_len = 0, dl_len = 0, vals_len;
    if (h->type == PAGE_DATA) {
        const unsigned char *p;
        if ((rc = decompress(d, body, (size_t)h->comp, (size_t)h->unc, &p)))
            return rc;
        size_t len = (size_t)h->unc, pos = 0;
        uint32_t l;
        if (c->max_rep) {
            if (h->rep_enc != ENC_RLE)
                return akidb__err(AKIDB_INVALID, "parquet: column %s: level encoding %s is not "
                                  "supported", c->name, enc_name(h->rep_enc));
            if (len < 4)
                return page_corrupt(d, "truncated repetition levels");
            memcpy(&l, p, 4);
            if (l > len - 4)
                return page_corrupt(d, "repetition levels exceed the page");
            rl = p + 4;
            rl_len = l;
            pos = 4 + (size_t)l;
        }
        if (c->max_def) {
            if (h->def_enc != ENC_RLE)
                return akidb__err(AKIDB_INVALID, "parquet: column %s: level encoding %s is not "
                                  "supported", c->name, enc_name(h->def_enc));
            if (len - pos < 4)
                return page_corrupt(d, "truncated definition levels");
            memcpy(&l, p + pos, 4);
            if (l > len - pos - 4)
                return page_corrupt(d, "definition levels exceed the page");
            dl = p + pos + 4;
            dl_len = l;
            pos += 4 + (size_t)l;
        }
        vals = p + pos;
        vals_len = len - pos;
    } else {
        if (h->rep_len < 0 || h->def_len < 0 || h->num_rows < 0 || h->num_nulls < 0 ||
            h->num_nulls > h->n_values)
            return page_corrupt(d, "negative or inconsistent v2 counts");
        size_t lev = (size_t)h->rep_len + (size_t)h->def_len;
        if (lev > (size_t)h->comp || lev > (size_t)h->unc)
            return page_corrupt(d, "v2 level lengths exceed the page");
        if ((size_t)h->num_rows > (size_t)h->n_values)
            return page_corrupt(d, "v2 page has more rows than values");
        if (!c->max_rep && h->rep_len)
            return page_corrupt(d, "repetition levels in a column without repetition");
        if (!c->max_def && h->def_len)
            return page_corrupt(d, "definition levels in a column without definition");
        rl = body;
        rl_len = (size_t)h->rep_len;
        dl = body + rl_len;
        dl_len = (size_t)h->def_len;
        size_t vc = (size_t)h->comp - lev, vu = (size_t)h->unc - lev;
        if (h->is_compressed && d->ch->codec != CODEC_UNCOMPRESSED) {
            if ((rc = decompress(d, body + lev, vc, vu, &vals)))
                return rc;
        } else {
            if (vc != vu)
                return page_corrupt(d, "uncompressed v2 values: sizes differ");
            vals = body + lev;
        }
        vals_len = vu;
    }
    vsrc v;
    if ((rc = vsrc_init(d, &v, h->encoding, vals, vals_len)))
        return rc;
    size_t rows_before = d->n_rows;
    if ((rc = page_levels(d, &v, rl, rl_len, dl, dl_len, (size_t)h->n_values)))
        return rc;
    if (h->type == PAGE_DATA_V2 && d->n_rows - rows_before != (size_t)h->num_rows)
        return page_corrupt(d, "v2 page row count differs from its levels");
    d->entries += h->n_values;
    return AKIDB_OK;
}

static void values_release(const akidb_allocator *a, akidb__pqr_values *v)
{
    akidb__free(a, v->i64);
    akidb__free(a, v->i32);
    akidb__free(a, v->f32);
    akidb__free(a, v->bytes);
    akidb__free(a, v->offsets);
    akidb__free(a, v->nulls);
    memset(v, 0, sizeof *v);
}

void akidb__pqr_values_free(akidb__pqr *r, akidb__pqr_values *v)
{
    if (r && v)
        values_release(&r->alloc, v);
}

static int convert_timestamps(rd *d)
{
    int64_t *x = d->out->i64;
    size_t n = d->n_rows;
    if (d->col->ts_unit == TS_MILLIS) {
        for (size_t i = 0; i < n; i++)
            if (__builtin_mul_overflow(x[i], (int64_t)1000, &x[i]))
                return akidb__err(AKIDB_INVALID, "parquet: column %s: timestamp in row %zu is "
                                  "out of range", d->col->name, i);
    } else if (d->col->ts_unit == TS_NANOS) {
        for (size_t i = 0; i < n; i++) {
            int64_t q = x[i] / 1000;
            if (x[i] % 1000 < 0)
                q--;
            x[i] = q;
        }
    }
    return AKIDB_OK;
}

static int allocate_outputs(rd *d)
{
    const pq_col *c = d->col;
    akidb__pqr_values *o = d->out;
    const pq_chunk *ch = d->ch;
    /* Start from a size the chunk's bytes can plausibly hold; grow later. */
    uint64_t rows = (uint64_t)d->rg->num_rows;
    if (rows > 4096 + (uint64_t)ch->total_compressed)
        rows = 4096 + (uint64_t)ch->total_compressed;
    d->cap_rows = (size_t)rows;
    if (c->is_list || d->width == 0) {
        o->offsets = akidb__alloc_array(d->a, d->cap_rows + 1, sizeof *o->offsets);
        if (!o->offsets)
            return nomem();
        o->offsets[0] = 0;
    }
    if (c->is_list) {
        uint64_t vals = (uint64_t)ch->num_values;
        uint64_t est = (uint64_t)ch->total_compressed / 4 * 2 + 4096;
        d->cap_vals = (size_t)(vals < est ? vals : est);
        void *p = akidb__alloc_array(d->a, d->cap_vals ? d->cap_vals : 1, 4);
        if (!p)
            return nomem();
        /* The vectors and links: the big buffers of a load, still untouched. */
        akidb__advise_huge(d->a, p, d->cap_vals * 4);
        if (c->kind == AKIDB__PQ_INT32_LIST)
            o->i32 = p;
        else
            o->f32 = p;
    } else if (d->width == 0) {
        d->cap_bytes = (size_t)((uint64_t)ch->total_compressed * 2 + 4096);
        if (!(o->bytes = akidb__malloc(d->a, d->cap_bytes)))
            return nomem();
    } else {
        size_t w = c->kind == AKIDB__PQ_INT64 || c->kind == AKIDB__PQ_TIMESTAMP_US ? 8 : 4;
        void *p = akidb__alloc_array(d->a, d->cap_rows ? d->cap_rows : 1, w);
        if (!p)
            return nomem();
        if (w == 8)
            o->i64 = p;
        else if (c->kind == AKIDB__PQ_INT32)
            o->i32 = p;
        else
            o->f32 = p;
    }
    return AKIDB_OK;
}

int akidb__pqr_read(akidb__pqr *r, size_t rg, size_t col, akidb__pqr_values *out)
{
    memset(out, 0, sizeof *out);
    if (rg >= r->n_rgs || col >= r->n_cols)
        return akidb__err(AKIDB_INVALID, "parquet: row group %zu / column %zu out of range",
                          rg, col);
    const pq_col *c = &r->cols[col];
    if (c->kind == 0)
        return akidb__err(AKIDB_INVALID, "parquet: column %s (%s %s) has a shape AkiDB cannot "
                          "read", c->name, c->physical, c->logical);
    const pq_chunk *ch = &r->rgs[rg].chunks[c->leaf];
    if (ch->has_path)
        return akidb__err(AKIDB_INVALID, "parquet: column %s: chunks in other files are not "
                          "supported", c->name);

    rd *d = akidb__calloc(&r->alloc, 1, sizeof *d);
    if (!d)
        return nomem();
    d->r = r;
    d->col = c;
    d->ch = ch;
    d->rg = &r->rgs[rg];
    d->out = out;
    d->a = &r->alloc;
    d->width = c->phys == PT_INT64 || c->phys == PT_DOUBLE ? 8
             : c->phys == PT_BYTE_ARRAY ? 0 : 4;
    out->kind = c->kind;
    int rc = allocate_outputs(d);

    const unsigned char *chunk = NULL;   /* chunk[0] is file byte ch->start */
    if (rc == AKIDB_OK)
        rc = chunk_bytes(r, d->rg, ch, &chunk);
    uint64_t pos = ch->start;
    while (rc == AKIDB_OK && d->entries < ch->num_values) {
        if (pos >= ch->end) {
            rc = akidb__err(AKIDB_CORRUPT, "parquet: column %s: the chunk ends at file offset "
                            "%llu with %lld of %lld values read", c->name,
                            (unsigned long long)ch->end, (long long)d->entries,
                            (long long)ch->num_values);
            break;
        }
        akidb__tr t;
        page_hdr h;
        d->page_off = pos;
        akidb__tr_init(&t, chunk + (pos - ch->start), (size_t)(ch->end - pos), pos,
                       "page header");
        if ((rc = akidb__tr_struct(&t, &page_header_t, &h, NULL)))
            break;
        uint64_t body_off = pos + t.pos;
        if ((uint64_t)h.comp > ch->end - body_off) {
            rc = page_corrupt(d, "compressed page size exceeds the column chunk");
            break;
        }
        const unsigned char *body = chunk + (body_off - ch->start);
        if (h.has_crc && !r->pages_verified &&
            akidb__crc32(0, body, (size_t)h.comp) != h.crc) {
            rc = page_corrupt(d, "page CRC-32 mismatch");
            break;
        }
        switch (h.type) {
        case PAGE_DICTIONARY:
            if (!h.has_sub) {
                rc = page_corrupt(d, "dictionary page without its sub-header");
                break;
            }
            rc = read_dictionary(d, &h, body);
            break;
        case PAGE_DATA:
        case PAGE_DATA_V2:
            rc = read_data_page(d, &h, body);
            break;
        default:
            break;              /* index pages and unknown types are skipped */
        }
        pos = body_off + (uint64_t)h.comp;
    }
    if (rc == AKIDB_OK && d->n_rows != (size_t)d->rg->num_rows)
        rc = akidb__err(AKIDB_CORRUPT, "parquet: column %s, chunk at file offset %llu: the "
                        "pages hold %zu rows, the row group %lld", c->name,
                        (unsigned long long)ch->start, d->n_rows, (long long)d->rg->num_rows);
    if (rc == AKIDB_OK && c->is_list)
        out->offsets[d->n_rows] = d->n_vals;
    if (rc == AKIDB_OK && c->kind == AKIDB__PQ_TIMESTAMP_US)
        rc = convert_timestamps(d);
    if (rc == AKIDB_OK && out->nulls) {
        int any = 0;
        for (size_t i = 0; i < d->n_rows && !any; i++)
            any = out->nulls[i];
        if (!any) {
            akidb__free(d->a, out->nulls);
            out->nulls = NULL;
        }
    }
    out->n_rows = d->n_rows;
    ZSTD_freeDCtx(d->dctx);
    akidb__free(d->a, d->page_buf);
    akidb__free(d->a, d->dict_buf);
    akidb__free(d->a, d->dict_off);
    akidb__free(d->a, d);
    if (rc)
        values_release(&r->alloc, out);
    return rc;
}

/* ---- where plain float values lie in the file ---------------------------- */

/* File bytes [off, off + len) at *p: from the buffer, or through fetch
 * (which replaces the window chunk_bytes keeps). */
static int span_bytes(akidb__pqr *r, uint64_t off, size_t len, const unsigned char **p)
{
    if (!r->fetch) {
        *p = r->buf + off;
        return AKIDB_OK;
    }
    r->win = NULL;
    return r->fetch(r->fetch_ctx, off, len, p);
}

static int not_plain(const pq_col *c, uint64_t off, const char *why)
{
    return akidb__err(AKIDB_INVALID, "parquet: column %s, page at file offset %llu: %s, so its "
                      "values cannot be read in place", c->name, (unsigned long long)off, why);
}

/* A page header is read from a window of this many bytes (or to the
 * chunk's end): headers without statistics, as AkiDB writes them, take
 * under a hundred. */
#define SPAN_HEADER_WINDOW 4096

int akidb__pqr_plain_spans(akidb__pqr *r, size_t col, uint32_t per_row, akidb__pq_span **out,
                           size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (col >= r->n_cols || per_row == 0)
        return akidb__err(AKIDB_INVALID, "parquet: column %zu out of range", col);
    const pq_col *c = &r->cols[col];
    if (c->kind != AKIDB__PQ_FLOAT_LIST || c->phys != PT_FLOAT)
        return akidb__err(AKIDB_INVALID, "parquet: column %s is not a list of floats", c->name);
    akidb__pq_span *spans = NULL;
    size_t n = 0, cap = 0;
    uint64_t row = 0;
    int rc = AKIDB_OK;
    for (size_t g = 0; g < r->n_rgs && rc == AKIDB_OK; g++) {
        const pq_chunk *ch = &r->rgs[g].chunks[c->leaf];
        uint64_t pos = ch->start, rg_rows = 0;
        int64_t entries = 0;
        if (ch->has_path || ch->codec != CODEC_UNCOMPRESSED) {
            rc = not_plain(c, ch->start, "the column chunk is compressed or elsewhere");
            break;
        }
        while (rc == AKIDB_OK && entries < ch->num_values) {
            if (pos >= ch->end) {
                rc = corrupt_at(ch->end, "column chunk ends before its values do");
                break;
            }
            const unsigned char *p;
            size_t want = ch->end - pos < SPAN_HEADER_WINDOW ? (size_t)(ch->end - pos)
                                                             : SPAN_HEADER_WINDOW;
            if ((rc = span_bytes(r, pos, want, &p)))
                break;
            akidb__tr t;
            page_hdr h;
            akidb__tr_init(&t, p, want, pos, "page header");
            if ((rc = akidb__tr_struct(&t, &page_header_t, &h, NULL)))
                break;
            uint64_t body = pos + t.pos, left = (uint64_t)h.comp;
            if (left > ch->end - body) {
                rc = corrupt_at(pos, "compressed page size exceeds the column chunk");
                break;
            }
            if (h.type == PAGE_DICTIONARY || h.type == PAGE_DATA_V2) {
                rc = not_plain(c, pos, "it is a dictionary or v2 page");
                break;
            }
            if (h.type == PAGE_DATA) {
                if (!h.has_sub || h.n_values < 0 || h.encoding != ENC_PLAIN || h.comp != h.unc) {
                    rc = not_plain(c, pos, "its values are not PLAIN");
                    break;
                }
                /* skip the length-prefixed levels to the values */
                for (int level = 0; level < 2 && rc == AKIDB_OK; level++) {
                    if (!(level == 0 ? c->max_rep : c->max_def))
                        continue;
                    uint32_t l;
                    if (left < 4) {
                        rc = corrupt_at(body, "truncated levels");
                        break;
                    }
                    if ((rc = span_bytes(r, body, 4, &p)))
                        break;
                    memcpy(&l, p, 4);
                    if (l > left - 4) {
                        rc = corrupt_at(body, "levels exceed the page");
                        break;
                    }
                    body += 4 + (uint64_t)l;
                    left -= 4 + (uint64_t)l;
                }
                if (rc)
                    break;
                if (left != (uint64_t)h.n_values * 4 || h.n_values % per_row) {
                    rc = not_plain(c, pos, "its values are not whole vectors");
                    break;
                }
                if (n == cap) {
                    size_t ncap = cap ? cap * 2 : 64;
                    akidb__pq_span *s = akidb__realloc_array(&r->alloc, spans, ncap, sizeof *s);
                    if (!s) {
                        rc = nomem();
                        break;
                    }
                    spans = s;
                    cap = ncap;
                }
                uint64_t rows = (uint64_t)h.n_values / per_row;
                spans[n++] = (akidb__pq_span){ row, rows, body };
                row += rows;
                rg_rows += rows;
                entries += h.n_values;
            }
            pos = pos + t.pos + (uint64_t)h.comp;
        }
        if (rc == AKIDB_OK && rg_rows != (uint64_t)r->rgs[g].num_rows)
            rc = not_plain(c, ch->start, "its pages do not hold one vector per row");
    }
    if (rc) {
        akidb__free(&r->alloc, spans);
        return rc;
    }
    *out = spans;
    *n_out = n;
    return AKIDB_OK;
}
