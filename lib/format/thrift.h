/*
 * thrift.h - the Thrift compact protocol, as far as Parquet's metadata
 * needs it: an encoder into a growable buffer and a pull decoder over an
 * untrusted byte range that can skip any field it does not model.
 *
 * Encoder: calls never fail individually; an allocation failure is sticky
 * and reported once by akidb__tw_error(), so building a struct is a plain
 * sequence of calls followed by one check.
 *
 * Decoders: akidb__tr_field/_skip/_i32... pull one value at a time;
 * akidb__tr_struct decodes a whole struct described by a field table.
 * Every read is bounded by the range given to akidb__tr_init();
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
    const akidb_allocator *alloc;   /* for lists of structs (akidb__tr_struct) */
    int depth;
    int16_t last;
    int16_t saved[AKIDB__THRIFT_MAX_DEPTH];
} akidb__tr;

/* Starts with alloc NULL (the default allocator); set r->alloc after init
 * to allocate the arrays of akidb__tr_struct's lists elsewhere. */
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

/* ---- table-driven struct decoder --------------------------------------
 *
 * A struct is described by a table of its fields (akidb__tstruct), indexed
 * by field id; one call decodes it into a C object, storing each listed
 * field at its offset and skipping every other field, whatever its type.
 * The rules every Parquet struct shares live here once: bounds and depth
 * (as above), required fields (a missing one is AKIDB_CORRUPT "<struct>
 * lacks <field> (a required field)", at the struct's end), a field that
 * may appear only once, wire types that make a listed field count as
 * unlisted.  What is specific to one struct goes in its init and check
 * hooks or in an AKIDB__TF_FN field.
 *
 * Values are stored at an offset into the object (offsetof), in the C type
 * the kind names; the decoder copies bytes (memcpy), so an `int` member
 * takes an AKIDB__TF_I32 where int is 32 bits.
 *
 * Tables are written with designated initializers, [id] = { ... }: the
 * lookup is one index, and an id without an entry (name NULL) is unlisted.
 */

typedef enum akidb__tf_kind {
    AKIDB__TF_SKIP,     /* skip the value (with AKIDB__TF_TAG: note the id) */
    AKIDB__TF_I32,      /* int32_t at off; i8/i16/i32 accepted, others CORRUPT */
    AKIDB__TF_I64,      /* int64_t at off; any integer type accepted */
    AKIDB__TF_BOOL,     /* int at off, 0 or 1 */
    AKIDB__TF_BINARY,   /* const unsigned char * at off, its size_t length at
                         * off2; borrowed from the decoded range */
    AKIDB__TF_MARK,     /* int at off set to 1; the value is skipped */
    AKIDB__TF_STRUCT,   /* a nested struct, table `sub`, decoded into obj + off */
    AKIDB__TF_LIST,     /* a list of structs, table `sub`: an array of
                         * max(n, 1) zeroed elements of sub->size bytes is
                         * allocated and stored at off (a pointer), n at off2
                         * (size_t), then each element decoded into it.  The
                         * caller frees the array even when decoding fails. */
    AKIDB__TF_FN        /* fn(r, id, type, obj, ctx) decodes the value */
} akidb__tf_kind;

enum {
    AKIDB__TF_ONCE = 1 << 0,        /* a second occurrence: CORRUPT "appears twice" */
    AKIDB__TF_FIRST = 1 << 1,       /* a second occurrence is skipped */
    AKIDB__TF_TAG = 1 << 2,         /* also store the field id in the int at the
                                     * struct's tag_off (a union's member) */
    AKIDB__TF_NONEMPTY = 1 << 3     /* AKIDB__TF_LIST: an empty list is CORRUPT */
};

/* A bit per wire type, for akidb__tfield.skip. */
#define AKIDB__TBIT(t) (1u << (t))
/* Every wire type but t. */
#define AKIDB__TBUT(t) (0xFFFFu & ~AKIDB__TBIT(t))
/* A bit per field id, for akidb__tstruct.required and the seen masks. */
#define AKIDB__TID(id) (1u << (id))

struct akidb__tstruct;

typedef int (*akidb__tf_fn)(akidb__tr *r, int16_t id, int type, void *obj, void *ctx);

typedef struct akidb__tfield {
    uint8_t kind;               /* akidb__tf_kind */
    uint8_t flags;              /* AKIDB__TF_* flags */
    uint16_t skip;              /* wire types (AKIDB__TBIT) for which this field is
                                 * taken as unlisted: skipped, not counted as seen */
    uint16_t off, off2;         /* where the value goes in the object */
    const struct akidb__tstruct *sub;   /* AKIDB__TF_STRUCT, AKIDB__TF_LIST */
    akidb__tf_fn fn;            /* AKIDB__TF_FN */
    const char *name;           /* for messages ("num_rows"); NULL: no entry */
} akidb__tfield;

typedef struct akidb__tstruct {
    const char *name;           /* for messages: "row group" */
    const akidb__tfield *fields;    /* fields[id], 0 < id < n_fields */
    uint8_t n_fields;           /* at most 32 */
    uint32_t required;          /* AKIDB__TID bits of the required ids */
    /* How to take a field whose id has no entry; NULL: skip it. */
    const akidb__tfield *other;
    uint16_t tag_off;           /* AKIDB__TF_TAG: where the int receiving the id is */
    size_t size;                /* the object's size, for lists of it */
    /* Before the first field: file offset of the struct's first byte. */
    void (*init)(void *obj, uint64_t off);
    /* After the last, the required fields present: seen has the
     * AKIDB__TID bits of the ids decoded.  An error fails the decode. */
    int (*check)(akidb__tr *r, void *obj, uint32_t seen, void *ctx);
} akidb__tstruct;

/* Decode one struct of table s into obj (the struct begins at the current
 * position: a top-level struct, a STRUCT field's value or a list element).
 * ctx is passed to the hooks and fn fields.  AKIDB_OK, AKIDB_CORRUPT,
 * AKIDB_NOMEM (a list array), or what a hook returns. */
int akidb__tr_struct(akidb__tr *r, const akidb__tstruct *s, void *obj, void *ctx);

#endif
