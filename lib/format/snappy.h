/*
 * snappy.h - a SNAPPY decompressor for the raw block format Parquet uses
 * (google/snappy format_description.txt): a ULEB128 uncompressed length,
 * then literal and copy elements.  No compressor: AkiDB writes ZSTD, and
 * reads SNAPPY only because pyarrow, DuckDB and Polars write it by default.
 */
#ifndef AKIDB_SNAPPY_H
#define AKIDB_SNAPPY_H

#include <stddef.h>

/* The most a block can expand per input byte: a copy of up to 64 bytes
 * costs at least 3 input bytes (one with a 1-byte offset, 2 bytes, yields
 * at most 11), so output <= 22 * input; 32 is a safe ceiling. */
#define AKIDB__SNAPPY_MAX_RATIO 32

/* Read the uncompressed length from the block's preamble.  Returns 0, or
 * -1 when the preamble is malformed (then *err_pos is the bad byte). */
int akidb__snappy_length(const void *src, size_t src_len, size_t *out_len, size_t *err_pos);

/* Decompress src into dst, which must be exactly the preamble's length.
 * Every element is bounds-checked against both buffers; a copy may overlap
 * its own output.  Returns 0, or -1 with *err_pos = offset in src of the
 * offending element (or src_len if the input ended early). */
int akidb__snappy_decompress(const void *src, size_t src_len, void *dst, size_t dst_len,
                             size_t *err_pos);

#endif
