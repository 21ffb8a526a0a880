/*
 * thrift.c - Thrift compact protocol encoder, skipping decoder and
 * table-driven struct decoder (the encoding of every Parquet metadata
 * struct).
 *
 * Wire format (apache/thrift doc/specs/thrift-compact-protocol.md):
 *
 *   field header   (delta << 4) | type        when 0 < id - last <= 15
 *                  type, zigzag-varint(id)    otherwise
 *   bool field     no value: type 1 = true, 2 = false
 *   i16/i32/i64    zigzag, then ULEB128;  i8: one byte;  double: 8 bytes LE
 *   binary         ULEB128 length, bytes
 *   list/set       (n << 4) | elem_type if n <= 14, else 0xF0 | elem_type,
 *                  ULEB128 n; elements follow without headers (a bool
 *                  element is one byte)
 *   map            ULEB128 n, then (key_type << 4 | val_type) if n > 0
 *   struct         fields, then 0x00; `last` restarts at 0 inside it
 *
 * The decoder is written for hostile input: each read checks the bytes
 * left, every element of every collection takes at least one byte (so a
 * count larger than the bytes left is rejected up front and a loop always
 * advances), varints longer than their type allows are rejected, and
 * nesting is capped at AKIDB__THRIFT_MAX_DEPTH, recursion included.
 *
 * The struct decoder (akidb__tr_struct) runs a struct's field loop from a
 * table, so the reader states each Parquet struct as data instead of
 * repeating the loop per struct.  Its cost per field is one table index
 * (tables are indexed by field id) and a switch on the field's kind: the
 * reader's footers took no more instructions (callgrind) than with the
 * hand-written loop per struct that this replaced.
 */
#include <stdio.h>
#include <string.h>
#include "common/env.h"
#include "common/alloc.h"
#include "format/thrift.h"

/* ---- encoder --------------------------------------------------------- */

void akidb__tw_init(akidb__tw *w, const akidb_allocator *alloc)
{
    memset(w, 0, sizeof *w);
    w->alloc = alloc;
}

void akidb__tw_reset(akidb__tw *w)
{
    w->len = 0;
    w->rc = AKIDB_OK;
    w->depth = 0;
    w->last = 0;
}

void akidb__tw_free(akidb__tw *w)
{
    akidb__free(w->alloc, w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

int akidb__tw_error(const akidb__tw *w)
{
    return w->rc;
}

/* Make room for n more bytes; 0 on success. */
static int tw_reserve(akidb__tw *w, size_t n)
{
    if (w->rc)
        return -1;
    if (w->cap - w->len >= n)
        return 0;
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->len < n) {
        if (cap > SIZE_MAX / 2) {
            w->rc = AKIDB_NOMEM;
            return -1;
        }
        cap *= 2;
    }
    unsigned char *p = akidb__realloc(w->alloc, w->buf, cap);
    if (!p) {
        w->rc = AKIDB_NOMEM;
        return -1;
    }
    w->buf = p;
    w->cap = cap;
    return 0;
}

void akidb__tw_bytes(akidb__tw *w, const void *p, size_t len)
{
    if (tw_reserve(w, len))
        return;
    if (len)
        memcpy(w->buf + w->len, p, len);
    w->len += len;
}

void akidb__tw_varint(akidb__tw *w, uint64_t v)
{
    if (tw_reserve(w, 10))
        return;
    unsigned char *o = w->buf + w->len;
    while (v >= 0x80) {
        *o++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *o++ = (unsigned char)v;
    w->len = (size_t)(o - w->buf);
}

void akidb__tw_zigzag(akidb__tw *w, int64_t v)
{
    akidb__tw_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void tw_byte(akidb__tw *w, unsigned b)
{
    unsigned char c = (unsigned char)b;
    akidb__tw_bytes(w, &c, 1);
}

void akidb__tw_field_header(akidb__tw *w, int16_t id, int type)
{
    if (id <= 0) {
        w->rc = w->rc ? w->rc : AKIDB_INVALID;
        return;
    }
    int delta = id - w->last;
    if (delta > 0 && delta <= 15) {
        tw_byte(w, (unsigned)(delta << 4 | type));
    } else {
        tw_byte(w, (unsigned)type);
        akidb__tw_zigzag(w, id);
    }
    w->last = id;
}

void akidb__tw_collection_header(akidb__tw *w, int elem_type, size_t n)
{
    if (n <= 14) {
        tw_byte(w, (unsigned)(n << 4 | (size_t)elem_type));
    } else {
        tw_byte(w, 0xF0u | (unsigned)elem_type);
        akidb__tw_varint(w, n);
    }
}

void akidb__tw_map_header(akidb__tw *w, int key_type, int val_type, size_t n)
{
    akidb__tw_varint(w, n);
    if (n)
        tw_byte(w, (unsigned)(key_type << 4 | val_type));
}

void akidb__tw_i32(akidb__tw *w, int16_t id, int32_t v)
{
    akidb__tw_field_header(w, id, AKIDB__T_I32);
    akidb__tw_zigzag(w, v);
}

void akidb__tw_i64(akidb__tw *w, int16_t id, int64_t v)
{
    akidb__tw_field_header(w, id, AKIDB__T_I64);
    akidb__tw_zigzag(w, v);
}

void akidb__tw_bool(akidb__tw *w, int16_t id, int v)
{
    akidb__tw_field_header(w, id, v ? AKIDB__T_TRUE : AKIDB__T_FALSE);
}

void akidb__tw_binary(akidb__tw *w, int16_t id, const void *p, size_t len)
{
    akidb__tw_field_header(w, id, AKIDB__T_BINARY);
    akidb__tw_varint(w, len);
    akidb__tw_bytes(w, p, len);
}

void akidb__tw_string(akidb__tw *w, int16_t id, const char *s)
{
    akidb__tw_binary(w, id, s, strlen(s));
}

static void tw_enter(akidb__tw *w)
{
    if (w->depth >= AKIDB__THRIFT_MAX_DEPTH) {
        w->rc = w->rc ? w->rc : AKIDB_INVALID;
        return;
    }
    w->saved[w->depth++] = w->last;
    w->last = 0;
}

void akidb__tw_struct_begin(akidb__tw *w, int16_t id)
{
    akidb__tw_field_header(w, id, AKIDB__T_STRUCT);
    tw_enter(w);
}

void akidb__tw_elem_struct_begin(akidb__tw *w)
{
    tw_enter(w);
}

void akidb__tw_struct_end(akidb__tw *w)
{
    tw_byte(w, AKIDB__T_STOP);
    if (w->depth > 0)
        w->last = w->saved[--w->depth];
}

void akidb__tw_list_begin(akidb__tw *w, int16_t id, int elem_type, size_t n)
{
    akidb__tw_field_header(w, id, AKIDB__T_LIST);
    akidb__tw_collection_header(w, elem_type, n);
}

void akidb__tw_elem_i32(akidb__tw *w, int32_t v)
{
    akidb__tw_zigzag(w, v);
}

void akidb__tw_elem_i64(akidb__tw *w, int64_t v)
{
    akidb__tw_zigzag(w, v);
}

void akidb__tw_elem_binary(akidb__tw *w, const void *p, size_t len)
{
    akidb__tw_varint(w, len);
    akidb__tw_bytes(w, p, len);
}

void akidb__tw_elem_string(akidb__tw *w, const char *s)
{
    akidb__tw_elem_binary(w, s, strlen(s));
}

/* ---- decoder --------------------------------------------------------- */

void akidb__tr_init(akidb__tr *r, const void *p, size_t len, uint64_t base_off,
                    const char *what)
{
    memset(r, 0, sizeof *r);
    r->p = p;
    r->len = len;
    r->base_off = base_off;
    r->what = what;
}

int akidb__tr_fail(const akidb__tr *r, const char *msg)
{
    return akidb__err(AKIDB_CORRUPT, "parquet: %s at file offset %llu: %s", r->what,
                      (unsigned long long)(r->base_off + r->pos), msg);
}

static int tr_varint(akidb__tr *r, uint64_t *v, int max_bytes)
{
    uint64_t x = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (r->pos >= r->len)
            return akidb__tr_fail(r, "truncated varint");
        unsigned b = r->p[r->pos++];
        if (i == 9 && b > 1)
            return akidb__tr_fail(r, "varint overflows 64 bits");
        x |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return AKIDB_OK;
        }
    }
    return akidb__tr_fail(r, "varint too long");
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int tr_need(akidb__tr *r, size_t n)
{
    if (r->len - r->pos < n)
        return akidb__tr_fail(r, "truncated");
    return AKIDB_OK;
}

int akidb__tr_struct_begin(akidb__tr *r)
{
    if (r->depth >= AKIDB__THRIFT_MAX_DEPTH)
        return akidb__tr_fail(r, "structs nested too deeply");
    r->saved[r->depth++] = r->last;
    r->last = 0;
    return AKIDB_OK;
}

static inline int tr_field(akidb__tr *r, int *type, int16_t *id)
{
    int rc = tr_need(r, 1);
    if (rc)
        return rc;
    unsigned b = r->p[r->pos++];
    int t = (int)(b & 0x0F);
    if (t == AKIDB__T_STOP) {
        if (b != 0) {
            r->pos--;
            return akidb__tr_fail(r, "bad field header");
        }
        *type = AKIDB__T_STOP;
        *id = 0;
        if (r->depth > 0)
            r->last = r->saved[--r->depth];
        return AKIDB_OK;
    }
    if (t > AKIDB__T_UUID) {
        r->pos--;
        return akidb__tr_fail(r, "unknown field type");
    }
    int delta = (int)(b >> 4);
    int32_t fid;
    if (delta) {
        fid = r->last + delta;
        if (fid > INT16_MAX) {
            r->pos--;
            return akidb__tr_fail(r, "field id out of range");
        }
    } else {
        uint64_t v = 0;
        rc = tr_varint(r, &v, 3);
        if (rc)
            return rc;
        int64_t s = unzigzag(v);
        if (s < INT16_MIN || s > INT16_MAX)
            return akidb__tr_fail(r, "field id out of range");
        fid = (int32_t)s;
    }
    r->last = (int16_t)fid;
    *type = t;
    *id = (int16_t)fid;
    return AKIDB_OK;
}

int akidb__tr_field(akidb__tr *r, int *type, int16_t *id)
{
    return tr_field(r, type, id);
}

/* Integer of any width (i8 is a raw byte, the others zigzag varints). */
static int tr_int(akidb__tr *r, int type, int64_t *v)
{
    int rc;
    uint64_t u = 0;
    switch (type) {
    case AKIDB__T_I8:
        if ((rc = tr_need(r, 1)))
            return rc;
        *v = (int8_t)r->p[r->pos++];
        return AKIDB_OK;
    case AKIDB__T_I16:
        if ((rc = tr_varint(r, &u, 3)))
            return rc;
        *v = unzigzag(u);
        if (*v < INT16_MIN || *v > INT16_MAX)
            return akidb__tr_fail(r, "i16 out of range");
        return AKIDB_OK;
    case AKIDB__T_I32:
        if ((rc = tr_varint(r, &u, 5)))
            return rc;
        *v = unzigzag(u);
        if (*v < INT32_MIN || *v > INT32_MAX)
            return akidb__tr_fail(r, "i32 out of range");
        return AKIDB_OK;
    case AKIDB__T_I64:
        if ((rc = tr_varint(r, &u, 10)))
            return rc;
        *v = unzigzag(u);
        return AKIDB_OK;
    default:
        return akidb__tr_fail(r, "field has a non-integer type where an integer is expected");
    }
}

int akidb__tr_i32(akidb__tr *r, int type, int32_t *v)
{
    if (type == AKIDB__T_I64)
        return akidb__tr_fail(r, "i64 where an i32 is expected");
    int64_t x;
    int rc = tr_int(r, type, &x);
    if (rc == AKIDB_OK)
        *v = (int32_t)x;
    return rc;
}

int akidb__tr_i64(akidb__tr *r, int type, int64_t *v)
{
    return tr_int(r, type, v);
}

int akidb__tr_bool(akidb__tr *r, int type, int *v)
{
    if (type != AKIDB__T_TRUE && type != AKIDB__T_FALSE)
        return akidb__tr_fail(r, "field has a non-bool type where a bool is expected");
    *v = type == AKIDB__T_TRUE;
    return AKIDB_OK;
}

int akidb__tr_binary(akidb__tr *r, int type, const unsigned char **p, size_t *len)
{
    if (type != AKIDB__T_BINARY)
        return akidb__tr_fail(r, "field has a non-binary type where binary is expected");
    uint64_t n = 0;
    int rc = tr_varint(r, &n, 5);
    if (rc)
        return rc;
    if (n > r->len - r->pos)
        return akidb__tr_fail(r, "binary length exceeds the bytes left");
    *p = r->p + r->pos;
    *len = (size_t)n;
    r->pos += (size_t)n;
    return AKIDB_OK;
}

static int valid_elem_type(int t)
{
    return t >= AKIDB__T_TRUE && t <= AKIDB__T_UUID;
}

int akidb__tr_list_begin(akidb__tr *r, int type, int *elem_type, size_t *n)
{
    if (type != AKIDB__T_LIST && type != AKIDB__T_SET)
        return akidb__tr_fail(r, "field has a non-list type where a list is expected");
    int rc = tr_need(r, 1);
    if (rc)
        return rc;
    unsigned b = r->p[r->pos++];
    uint64_t cnt = b >> 4;
    if (cnt == 15 && (rc = tr_varint(r, &cnt, 5)))
        return rc;
    if (!valid_elem_type((int)(b & 0x0F)))
        return akidb__tr_fail(r, "bad list element type");
    if (cnt > r->len - r->pos)
        return akidb__tr_fail(r, "list size exceeds the bytes left");
    *elem_type = (int)(b & 0x0F);
    *n = (size_t)cnt;
    return AKIDB_OK;
}

/* Skip one value of type t; `elem` says it is a collection element (a
 * bool then takes one byte instead of none). */
static int tr_skip(akidb__tr *r, int t, int elem)
{
    int rc;
    int64_t iv;
    uint64_t u = 0;
    size_t n;
    switch (t) {
    case AKIDB__T_TRUE:
    case AKIDB__T_FALSE:
        if (!elem)
            return AKIDB_OK;
        if ((rc = tr_need(r, 1)))
            return rc;
        r->pos++;
        return AKIDB_OK;
    case AKIDB__T_I8:
    case AKIDB__T_I16:
    case AKIDB__T_I32:
    case AKIDB__T_I64:
        return tr_int(r, t, &iv);
    case AKIDB__T_DOUBLE:
        if ((rc = tr_need(r, 8)))
            return rc;
        r->pos += 8;
        return AKIDB_OK;
    case AKIDB__T_UUID:
        if ((rc = tr_need(r, 16)))
            return rc;
        r->pos += 16;
        return AKIDB_OK;
    case AKIDB__T_BINARY: {
        const unsigned char *p;
        return akidb__tr_binary(r, t, &p, &n);
    }
    case AKIDB__T_LIST:
    case AKIDB__T_SET: {
        int et;
        if ((rc = akidb__tr_list_begin(r, t, &et, &n)))
            return rc;
        if (r->depth >= AKIDB__THRIFT_MAX_DEPTH)
            return akidb__tr_fail(r, "nested too deeply");
        r->depth++;
        for (size_t i = 0; i < n && rc == AKIDB_OK; i++)
            rc = tr_skip(r, et, 1);
        r->depth--;
        return rc;
    }
    case AKIDB__T_MAP: {
        if ((rc = tr_varint(r, &u, 5)))
            return rc;
        if (u == 0)
            return AKIDB_OK;
        if ((rc = tr_need(r, 1)))
            return rc;
        unsigned kv = r->p[r->pos++];
        int kt = (int)(kv >> 4), vt = (int)(kv & 0x0F);
        if (!valid_elem_type(kt) || !valid_elem_type(vt))
            return akidb__tr_fail(r, "bad map key/value type");
        if (u > (r->len - r->pos) / 2)
            return akidb__tr_fail(r, "map size exceeds the bytes left");
        if (r->depth >= AKIDB__THRIFT_MAX_DEPTH)
            return akidb__tr_fail(r, "nested too deeply");
        r->depth++;
        for (uint64_t i = 0; i < u && rc == AKIDB_OK; i++) {
            rc = tr_skip(r, kt, 1);
            if (rc == AKIDB_OK)
                rc = tr_skip(r, vt, 1);
        }
        r->depth--;
        return rc;
    }
    case AKIDB__T_STRUCT: {
        if ((rc = akidb__tr_struct_begin(r)))
            return rc;
        for (;;) {
            int ft = AKIDB__T_STOP;   /* tr_field sets it; gcc -O1 cannot tell */
            int16_t id;
            if ((rc = tr_field(r, &ft, &id)))
                return rc;
            if (ft == AKIDB__T_STOP)
                return AKIDB_OK;
            if ((rc = tr_skip(r, ft, 0)))
                return rc;
        }
    }
    default:
        return akidb__tr_fail(r, "unknown type");
    }
}

int akidb__tr_skip(akidb__tr *r, int type)
{
    return tr_skip(r, type, 0);
}

/* ---- table-driven struct decoder ------------------------------------- */

static void tf_store(void *obj, uint16_t off, const void *v, size_t len)
{
    memcpy((char *)obj + off, v, len);
}

static int tf_list(akidb__tr *r, const akidb__tfield *f, int type, void *obj, void *ctx)
{
    const akidb__tstruct *sub = f->sub;
    int et, rc;
    size_t n;
    if ((rc = akidb__tr_list_begin(r, type, &et, &n)))
        return rc;
    if ((n && et != AKIDB__T_STRUCT) || (n == 0 && (f->flags & AKIDB__TF_NONEMPTY))) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s is not a %slist of structs", f->name,
                 f->flags & AKIDB__TF_NONEMPTY ? "non-empty " : "");
        return akidb__tr_fail(r, msg);
    }
    /* n is at most the bytes left (every element takes one), so the array
     * is bounded by the input times the element size. */
    const akidb_allocator *a = r->alloc ? r->alloc : &akidb__default_allocator;
    unsigned char *arr = akidb__calloc(a, n ? n : 1, sub->size);
    if (!arr)
        return akidb__err(AKIDB_NOMEM, "parquet: out of memory (%s)", f->name);
    tf_store(obj, f->off, &arr, sizeof arr);
    tf_store(obj, f->off2, &n, sizeof n);
    for (size_t i = 0; i < n; i++)
        if ((rc = akidb__tr_struct(r, sub, arr + i * sub->size, ctx)))
            return rc;
    return AKIDB_OK;
}

/* Decode the value of field f (wire type `type`, id `id`) into obj. */
static int tf_value(akidb__tr *r, const akidb__tfield *f, int16_t id, int type, void *obj,
                    void *ctx)
{
    int rc;
    switch (f->kind) {
    case AKIDB__TF_I32: {
        int32_t v = 0;
        if ((rc = akidb__tr_i32(r, type, &v)) == AKIDB_OK)
            tf_store(obj, f->off, &v, sizeof v);
        return rc;
    }
    case AKIDB__TF_I64: {
        int64_t v = 0;
        if ((rc = akidb__tr_i64(r, type, &v)) == AKIDB_OK)
            tf_store(obj, f->off, &v, sizeof v);
        return rc;
    }
    case AKIDB__TF_BOOL: {
        int v = 0;
        if ((rc = akidb__tr_bool(r, type, &v)) == AKIDB_OK)
            tf_store(obj, f->off, &v, sizeof v);
        return rc;
    }
    case AKIDB__TF_BINARY: {
        const unsigned char *p;
        size_t len;
        if ((rc = akidb__tr_binary(r, type, &p, &len)) == AKIDB_OK) {
            tf_store(obj, f->off, &p, sizeof p);
            tf_store(obj, f->off2, &len, sizeof len);
        }
        return rc;
    }
    case AKIDB__TF_MARK: {
        const int one = 1;
        tf_store(obj, f->off, &one, sizeof one);
        return akidb__tr_skip(r, type);
    }
    case AKIDB__TF_STRUCT:
        if (type != AKIDB__T_STRUCT)
            return akidb__tr_fail(r, "field has a non-struct type where a struct is expected");
        return akidb__tr_struct(r, f->sub, (char *)obj + f->off, ctx);
    case AKIDB__TF_LIST:
        return tf_list(r, f, type, obj, ctx);
    case AKIDB__TF_FN:
        return f->fn(r, id, type, obj, ctx);
    default:
        return akidb__tr_skip(r, type);
    }
}

/* The less common rules of field f (wire types to skip, first/once, tag):
 * *skip says to skip the value instead of decoding it. */
static int tf_rules(akidb__tr *r, const akidb__tstruct *s, const akidb__tfield *f, int16_t id,
                    int type, uint32_t seen_it, void *obj, int *skip)
{
    *skip = (f->skip & AKIDB__TBIT(type)) || ((f->flags & AKIDB__TF_FIRST) && seen_it);
    if (*skip)
        return AKIDB_OK;
    if ((f->flags & AKIDB__TF_ONCE) && seen_it) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s appears twice", f->name);
        return akidb__tr_fail(r, msg);
    }
    if (f->flags & AKIDB__TF_TAG) {
        const int tag = id;
        tf_store(obj, s->tag_off, &tag, sizeof tag);
    }
    return AKIDB_OK;
}

static int tf_missing(akidb__tr *r, const akidb__tstruct *s, uint32_t missing)
{
    char msg[128];
    snprintf(msg, sizeof msg, "%s lacks %s (a required field)", s->name,
             s->fields[__builtin_ctz(missing)].name);
    return akidb__tr_fail(r, msg);
}

int akidb__tr_struct(akidb__tr *r, const akidb__tstruct *s, void *obj, void *ctx)
{
    const akidb__tfield *const fields = s->fields;
    const unsigned n = s->n_fields;
    int rc, type = AKIDB__T_STOP;
    int16_t id = 0;
    uint32_t seen = 0;
    if (s->init)
        s->init(obj, r->base_off + r->pos);
    if ((rc = akidb__tr_struct_begin(r)))
        return rc;
    for (;;) {
        if ((rc = tr_field(r, &type, &id)))
            return rc;
        if (type == AKIDB__T_STOP)
            break;
        /* a negative id converts to a large unsigned one: unlisted */
        const akidb__tfield *f = (unsigned)id < n && fields[id].name ? &fields[id] : s->other;
        const uint32_t bit = (unsigned)id < n ? AKIDB__TID(id) : 0;
        if (f && (f->skip | (f->flags & (AKIDB__TF_FIRST | AKIDB__TF_ONCE | AKIDB__TF_TAG)))) {
            int skip;
            if ((rc = tf_rules(r, s, f, id, type, seen & bit, obj, &skip)))
                return rc;
            if (skip)
                f = NULL;
        }
        if (!f) {
            if ((rc = tr_skip(r, type, 0)))
                return rc;
            continue;
        }
        if ((rc = tf_value(r, f, id, type, obj, ctx)))
            return rc;
        seen |= bit;
    }
    if (s->required & ~seen)
        return tf_missing(r, s, s->required & ~seen);
    return s->check ? s->check(r, obj, seen, ctx) : AKIDB_OK;
}
