/*
 * parquet.h - the hand-written Parquet layer: a streaming writer for the
 * snapshot schema and a reader for what AkiDB, DuckDB, pyarrow/arrow-rs
 * and Polars write.  Internal to the library (snapshot.c and the CLI's
 * import/export use it through the public snapshot API).
 *
 *   lib/format/thrift.c  Thrift compact protocol (writer + skipping reader)
 *   lib/format/parquet_write.c  akidb__pqw_*  (see docs/FORMATS.md)
 *   lib/format/parquet_read.c  akidb__pqr_*
 *
 * Errors go through akidb__err(): AKIDB_CORRUPT with the byte offset for
 * bad input, AKIDB_INVALID for unsupported features (named), AKIDB_NOMEM,
 * AKIDB_IOERR for a failing sink.
 */
#ifndef AKIDB_PARQUET_H
#define AKIDB_PARQUET_H

#include <stddef.h>
#include <stdint.h>
#include "akidb.h"

/* ---- column kinds (the logical shapes AkiDB reads and writes) -------- */

typedef enum akidb__pq_kind {
    AKIDB__PQ_INT64 = 1,        /* INT64 */
    AKIDB__PQ_INT32 = 2,        /* INT32 */
    AKIDB__PQ_FLOAT = 3,        /* FLOAT */
    AKIDB__PQ_STRING = 4,       /* BYTE_ARRAY (STRING / UTF8) */
    AKIDB__PQ_JSON = 5,         /* BYTE_ARRAY (JSON): read also accepts STRING */
    AKIDB__PQ_TIMESTAMP_US = 6, /* INT64 TIMESTAMP(MICROS, UTC); read converts MILLIS/NANOS */
    AKIDB__PQ_FLOAT_LIST = 7,   /* LIST<FLOAT> (list/element or list/item, any optionality) */
    AKIDB__PQ_INT32_LIST = 8,   /* LIST<INT32> */
    AKIDB__PQ_BINARY = 9        /* BYTE_ARRAY without logical type */
} akidb__pq_kind;

/* One column's values for a batch of rows.  Which fields are used depends
 * on the kind:
 *   INT64, TIMESTAMP_US  i64[n_rows]
 *   INT32                i32[n_rows]
 *   FLOAT                f32[n_rows]
 *   STRING, JSON, BINARY bytes + offsets[n_rows + 1] (row r is
 *                        bytes[offsets[r] .. offsets[r+1]) )
 *   FLOAT_LIST           f32 + offsets[n_rows + 1] (element counts, as above);
 *                        or (writer only) f32_rows[n_rows], row r's values
 *                        at f32_rows[r], offsets still giving the counts,
 *                        so rows scattered in memory need no gathering copy
 *   INT32_LIST           i32 + offsets[n_rows + 1]
 *   nulls                NULL, or n_rows bytes, 1 = null (optional columns only;
 *                        a null list or string has an empty range in offsets) */
typedef struct akidb__pq_values {
    const int64_t *i64;
    const int32_t *i32;
    const float *f32;
    const unsigned char *bytes;
    const uint64_t *offsets;
    const uint8_t *nulls;
    const float *const *f32_rows;
} akidb__pq_values;

/* ---- writer ---------------------------------------------------------- */

typedef struct akidb__pq_column_def {
    const char *name;
    akidb__pq_kind kind;
    int optional;               /* OPTIONAL vs REQUIRED (for lists: the list itself) */
} akidb__pq_column_def;

typedef struct akidb__pqw_options {
    int zstd_level;             /* 0 = UNCOMPRESSED; 1..19 = ZSTD at that level */
    int byte_stream_split;      /* FLOAT and FLOAT_LIST values as BYTE_STREAM_SPLIT */
    size_t page_bytes;          /* target page size before compression; 0 = 1 MiB */
    const char *const *kv_keys; /* key_value_metadata, n_kv pairs (copied) */
    const char *const *kv_values;
    size_t n_kv;
    const char *created_by;     /* e.g. "akidb version 0.1.0" */
} akidb__pqw_options;

/* The byte sink: return AKIDB_OK or an error code (IOERR, NOMEM...). */
typedef int (*akidb__pq_sink)(void *ctx, const void *buf, size_t len);

typedef struct akidb__pqw akidb__pqw;

/* Start a file: writes "PAR1".  Column defs and options are copied. */
int akidb__pqw_open(const akidb__pq_column_def *cols, size_t n_cols,
                    const akidb__pqw_options *opts, const akidb_allocator *alloc,
                    akidb__pq_sink sink, void *sink_ctx, akidb__pqw **out);

/* Write one row group of n_rows rows; vals[i] belongs to cols[i].  Pages
 * are cut at row boundaries near page_bytes; every page carries a CRC-32.
 * Memory use is bounded by this row group (the caller chooses its size). */
int akidb__pqw_write_row_group(akidb__pqw *w, size_t n_rows, const akidb__pq_values *vals);

/* Write the footer and "PAR1"; *bytes_out = total file size. */
int akidb__pqw_finish(akidb__pqw *w, uint64_t *bytes_out);

/* Free (also after an error; an unfinished file is simply incomplete). */
void akidb__pqw_free(akidb__pqw *w);

/* ---- reader ---------------------------------------------------------- */

typedef struct akidb__pqr akidb__pqr;

/* Parse the footer of the file in buf[0..len) (borrowed: it must outlive
 * the reader).  Every offset and length is checked against len.  After
 * open the reader is read-only: akidb__pqr_read() calls on one reader may
 * run concurrently from several threads. */
int akidb__pqr_open(const void *buf, size_t len, const akidb_allocator *alloc,
                    akidb__pqr **out);

/* A reader that does not need the whole file in memory: fetch(ctx, off,
 * len, &bytes) makes file bytes [off, off + len) available at *bytes
 * until the next fetch or until the reader is freed, or returns an error
 * code (raised).  akidb__pqr_read fetches the span of the row group it
 * reads (all its column chunks, so the columns of one row group cost one
 * fetch), in row-group order when the caller reads in that order.
 * akidb__pqr_open_tail parses the footer from `tail`, the file's last
 * tail_len bytes (which must hold the whole footer, its length and the
 * trailing magic; borrowed like buf above), and checks `head`, the
 * file's first 4 bytes.  Reads of such a reader must not run
 * concurrently (they share the window). */
typedef int (*akidb__pqr_fetch_fn)(void *ctx, uint64_t off, size_t len,
                                   const unsigned char **bytes);
int akidb__pqr_open_tail(const void *head, const void *tail, size_t tail_len, uint64_t file_size,
                         akidb__pqr_fetch_fn fetch, void *ctx, const akidb_allocator *alloc,
                         akidb__pqr **out);
void akidb__pqr_free(akidb__pqr *r);

/* What a top-level column is, for the CLI's `inspect` and for import. */
typedef struct akidb__pqr_column_info {
    const char *name;           /* top-level field name (borrowed from the reader) */
    akidb__pq_kind kind;        /* 0 when AkiDB cannot read this shape */
    const char *physical;       /* "INT64", "BYTE_ARRAY", ... */
    const char *logical;        /* "STRING", "LIST<FLOAT>", "TIMESTAMP(MICROS)", "" ... */
    int optional;
} akidb__pqr_column_info;

size_t akidb__pqr_num_columns(const akidb__pqr *r);
int akidb__pqr_column(const akidb__pqr *r, size_t i, akidb__pqr_column_info *out);
int akidb__pqr_find_column(const akidb__pqr *r, const char *name);  /* index or -1 */
uint64_t akidb__pqr_num_rows(const akidb__pqr *r);
size_t akidb__pqr_file_size(const akidb__pqr *r);    /* the len given to open */
/* The caller has verified every byte of the buffer (a checkpoint's
 * whole-file checksum), so reads need not check page CRCs again. */
void akidb__pqr_trust_pages(akidb__pqr *r);
size_t akidb__pqr_num_row_groups(const akidb__pqr *r);
uint64_t akidb__pqr_row_group_rows(const akidb__pqr *r, size_t rg);
/* key_value_metadata lookup; NULL if absent (borrowed from the reader) */
const char *akidb__pqr_kv(const akidb__pqr *r, const char *key);
/* The i-th pair (i < akidb__pqr_num_kv), in file order: key returned,
 * value in *value_out ("" when the file gives none); borrowed. */
size_t akidb__pqr_num_kv(const akidb__pqr *r);
const char *akidb__pqr_kv_at(const akidb__pqr *r, size_t i, const char **value_out);
/* Codec names used by a column chunk, e.g. "ZSTD" (for inspect) */
const char *akidb__pqr_codec(const akidb__pqr *r, size_t rg, size_t col);

/* Decoded values of one column in one row group, in the layout of
 * akidb__pq_values (owned by this struct; free with akidb__pqr_values_free).
 * Handles data page v1 and v2, dictionary pages (PLAIN_DICTIONARY /
 * RLE_DICTIONARY) with fallback to PLAIN, BYTE_STREAM_SPLIT, RLE and
 * bit-packed levels, required/optional lists and elements, SNAPPY, ZSTD,
 * UNCOMPRESSED; verifies page CRCs when present.  A null element inside a
 * list is AKIDB_INVALID (vectors cannot hold nulls). */
typedef struct akidb__pqr_values {
    akidb__pq_kind kind;
    size_t n_rows;
    int64_t *i64;
    int32_t *i32;
    float *f32;
    unsigned char *bytes;
    uint64_t *offsets;          /* n_rows + 1, for strings and lists */
    uint8_t *nulls;             /* n_rows, or NULL when no row is null */
} akidb__pqr_values;

int akidb__pqr_read(akidb__pqr *r, size_t rg, size_t col, akidb__pqr_values *out);

/* Where the values of a LIST<FLOAT> column lie in the file, for reading
 * single vectors in place (a checkpoint's exact vectors, AKIDB_EXACT_FILE):
 * span i holds rows [first_row, first_row + rows) of the whole file, row
 * first_row + j's per_row floats starting at file offset
 * offset + 4 * per_row * j.  Only the page headers and level lengths are
 * read (through fetch, a few bytes at a time), not the values, so it
 * trusts that every row holds per_row values (a load that decoded the
 * file checked that; AkiDB's writer makes it so).  AKIDB_INVALID (named)
 * when the column cannot be read in place: compressed, not PLAIN,
 * dictionary or v2 pages, pages not holding whole vectors; AKIDB_CORRUPT,
 * AKIDB_NOMEM, a fetch's error.  *out is freed with the reader's
 * allocator (akidb__free). */
typedef struct akidb__pq_span {
    uint64_t first_row;
    uint64_t rows;
    uint64_t offset;
} akidb__pq_span;
int akidb__pqr_plain_spans(akidb__pqr *r, size_t col, uint32_t per_row, akidb__pq_span **out,
                           size_t *n_out);
void akidb__pqr_values_free(akidb__pqr *r, akidb__pqr_values *v);

#endif
