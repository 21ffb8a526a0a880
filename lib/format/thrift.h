/*
 * thrift.h - the Thrift compact protocol, as far as Parquet's metadata
 * needs it: an encoder into a growable buffer and a pull decoder over an
 * untrusted byte range that can skip any field it does not model.
 *
 * Encoder: calls never fail individually; an allocation failure is sticky
 * and reported once by akidb__tw_error(), so building a struct is a plain
 * sequence of calls followed by one check.
 *
 * Decoder: every read is bounded by the range given to akidb__tr_init();
 * nesting is limited to AKIDB__THRIFT_MAX_DEPTH; a string or collection
 * length larger than the bytes left is rejected before anything is sized
 * by it.  Errors are AKIDB_CORRUPT, raised through akidb__err() with the
 * absolute file offset of the bad byte and the decoder's `what` label.
 */
#ifndef AKIDB_THRIFT_H
#define AKIDB_THRIFT_H

#include <stddef.h>
#include <stdint.h>
#include "akidb.h"

/* Compact protocol type ids (as they appear in field and list headers). */
enum {
    AKIDB__T_STOP = 0,
    AKIDB__T_TRUE = 1,          /* bool field whose value is true (also "bool" in lists) */
    AKIDB__T_FALSE = 2,
    AKIDB__T_I8 = 3,
    AKIDB__T_I16 = 4,
    AKIDB__T_I32 = 5,
    AKIDB__T_I64 = 6,
    AKIDB__T_DOUBLE = 7,
    AKIDB__T_BINARY = 8,
    AKIDB__T_LIST = 9,
    AKIDB__T_SET = 10,
    AKIDB__T_MAP = 11,
    AKIDB__T_STRUCT = 12,
    AKIDB__T_UUID = 13
};

#define AKIDB__THRIFT_MAX_DEPTH 32

/* ---- encoder --------------------------------------------------------- */

typedef struct akidb__tw {
    const akidb_allocator *alloc;
    unsigned char *buf;
    size_t len, cap;
    int rc;                     /* sticky: AKIDB_OK, AKIDB_NOMEM, AKIDB_INVALID (misuse) */
    int depth;
    int16_t last;               /* last field id written in the current struct */
    int16_t saved[AKIDB__THRIFT_MAX_DEPTH];
} akidb__tw;

void akidb__tw_init(akidb__tw *w, const akidb_allocator *alloc);
/* Empty the buffer (keeping its memory) and start a new top-level struct. */
void akidb__tw_reset(akidb__tw *w);
void akidb__tw_free(akidb__tw *w);
/* AKIDB_OK, or the first error of any call since init/reset. */
int akidb__tw_error(const akidb__tw *w);

/* Fields of the current struct.  Ids must be > 0; any order works (the
 * long header form is used when the delta is not 1..15). */
void akidb__tw_i32(akidb__tw *w, int16_t id, int32_t v);
void akidb__tw_i64(akidb__tw *w, int16_t id, int64_t v);
void akidb__tw_bool(akidb__tw *w, int16_t id, int v);
void akidb__tw_binary(akidb__tw *w, int16_t id, const void *p, size_t len);
void akidb__tw_string(akidb__tw *w, int16_t id, const char *s);
/* A struct-valued field: begin writes the header and enters it; end writes
 * the stop byte and returns to the enclosing struct.  At depth 0 end
 * terminates the top-level struct. */
void akidb__tw_struct_begin(akidb__tw *w, int16_t id);
void akidb__tw_struct_end(akidb__tw *w);
/* A list-valued field of n elements of elem_type; write exactly n
 * elements next with the elem_* calls (elem_struct_begin/struct_end for
 * struct elements). */
void akidb__tw_list_begin(akidb__tw *w, int16_t id, int elem_type, size_t n);
void akidb__tw_elem_struct_begin(akidb__tw *w);
void akidb__tw_elem_i32(akidb__tw *w, int32_t v);
void akidb__tw_elem_i64(akidb__tw *w, int64_t v);
void akidb__tw_elem_binary(akidb__tw *w, const void *p, size_t len);
void akidb__tw_elem_string(akidb__tw *w, const char *s);

/* Raw building blocks, for the tests (fields of types Parquet does not use:
 * i8, i16, double, set, map, bools in lists ...). */
void akidb__tw_field_header(akidb__tw *w, int16_t id, int type);
void akidb__tw_collection_header(akidb__tw *w, int elem_type, size_t n);   /* list or set */
void akidb__tw_map_header(akidb__tw *w, int key_type, int val_type, size_t n);
void akidb__tw_varint(akidb__tw *w, uint64_t v);
void akidb__tw_zigzag(akidb__tw *w, int64_t v);
void akidb__tw_bytes(akidb__tw *w, const void *p, size_t len);

/* ---- decoder --------------------------------------------------------- */

typedef struct akidb__tr {
    const unsigned char *p;     /* the range being decoded */
    size_t len, pos;
    uint64_t base_off;          /* file offset of p[0], for messages */
    const char *what;           /* "footer", "page header", ... */
    int depth;
    int16_t last;
    int16_t saved[AKIDB__THRIFT_MAX_DEPTH];
} akidb__tr;

void akidb__tr_init(akidb__tr *r, const void *p, size_t len, uint64_t base_off,
                    const char *what);

/* Enter a struct (the top-level one, or a field/element of type STRUCT). */
int akidb__tr_struct_begin(akidb__tr *r);
/* Next field of the current struct: *type and *id.  At the end of the
 * struct *type is AKIDB__T_STOP and the decoder has left the struct. */
int akidb__tr_field(akidb__tr *r, int *type, int16_t *id);
/* Skip one value of `type` (any type, nested to the depth limit). */
int akidb__tr_skip(akidb__tr *r, int type);

/* Values, given the type announced by the field or list header.  A value
 * of another type than expected is AKIDB_CORRUPT.  i32 accepts i8/i16/i32,
 * i64 accepts any integer type. */
int akidb__tr_i32(akidb__tr *r, int type, int32_t *v);
int akidb__tr_i64(akidb__tr *r, int type, int64_t *v);
int akidb__tr_bool(akidb__tr *r, int type, int *v);       /* a bool field */
int akidb__tr_binary(akidb__tr *r, int type, const unsigned char **p, size_t *len);
/* A list (or set) header: *n is at most the bytes left. */
int akidb__tr_list_begin(akidb__tr *r, int type, int *elem_type, size_t *n);

/* Report a semantic error at the decoder's position (AKIDB_CORRUPT). */
int akidb__tr_fail(const akidb__tr *r, const char *msg);

#endif
