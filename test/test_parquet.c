/*
 * test_parquet.c - the Parquet layer on its own: Thrift compact protocol
 * (encoding, skipping unknown fields of every type, limits), SNAPPY
 * decompression vectors, CRC-32, writer -> reader round trips of every
 * column kind and option, and the reader's handling of what other writers
 * produce (dictionary pages, data page v2, bit-packed levels, SNAPPY,
 * DELTA encodings, other list shapes, timestamp units) through files built
 * page by page here.  Interop with DuckDB/arrow-rs and the corruption
 * fuzzing live in test_parquet_interop.c.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <zstd.h>

#include "akidb.h"
#include "common/env.h"
#include "common/alloc.h"
#include "common/crc.h"
#include "common/error.h"
#include "engine/checkpoint.h"
#include "engine/collection.h"
#include "format/parquet.h"
#include "runner.h"
#include "format/snappy.h"
#include "engine/snapshot.h"
#include "format/thrift.h"

/* ---- helpers -------------------------------------------------------------- */

typedef struct membuf {
    unsigned char *p;
    size_t len, cap;
    long fail_at;               /* sink call number that fails, -1 = never */
    long calls;
} membuf;

static void mb_put(membuf *m, const void *p, size_t n)
{
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + n)
            cap *= 2;
        m->p = realloc(m->p, cap);
        ASSERT(m->p);
        m->cap = cap;
    }
    if (n)
        memcpy(m->p + m->len, p, n);
    m->len += n;
}

static void mb_u32(membuf *m, uint32_t v) { mb_put(m, &v, 4); }

static int mem_sink(void *ctx, const void *buf, size_t len)
{
    membuf *m = ctx;
    if (m->fail_at >= 0 && m->calls++ == m->fail_at)
        return AKIDB_IOERR;
    mb_put(m, buf, len);
    return AKIDB_OK;
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A counting allocator: every byte the layer keeps goes through it. */
typedef struct counting { long live; long total; long fail_after; } counting;
static void *c_malloc(void *ctx, size_t n)
{
    counting *c = ctx;
    if (c->fail_after >= 0 && c->total >= c->fail_after)
        return NULL;
    c->total++;
    void *p = malloc(n);
    if (p)
        c->live++;
    return p;
}
static void *c_realloc(void *ctx, void *p, size_t n)
{
    counting *c = ctx;
    if (c->fail_after >= 0 && c->total >= c->fail_after)
        return NULL;
    c->total++;
    void *q = realloc(p, n);
    if (q && !p)
        c->live++;
    return q;
}
static void c_free(void *ctx, void *p)
{
    counting *c = ctx;
    if (p)
        c->live--;
    free(p);
}

/* ---- Thrift ------------------------------------------------------------------ */

TEST(parquet_thrift_fields)
{
    akidb__tw w;
    akidb__tw_init(&w, &akidb__default_allocator);
    akidb__tw_reset(&w);
    akidb__tw_i32(&w, 1, -5);
    akidb__tw_i64(&w, 2, INT64_MIN);
    akidb__tw_bool(&w, 3, 1);
    akidb__tw_bool(&w, 4, 0);
    akidb__tw_string(&w, 5, "hello");
    akidb__tw_i32(&w, 300, 7);          /* long delta: long form */
    akidb__tw_i32(&w, 20, 8);           /* backwards: long form */
    akidb__tw_i64(&w, 21, INT64_MAX);   /* delta 1 after a long form */
    akidb__tw_list_begin(&w, 22, AKIDB__T_I32, 40);
    for (int i = 0; i < 40; i++)
        akidb__tw_elem_i32(&w, i * 1000 - 7);
    akidb__tw_struct_begin(&w, 23);
    akidb__tw_i32(&w, 1, 11);
    akidb__tw_struct_begin(&w, 15);
    akidb__tw_i32(&w, 2, 12);
    akidb__tw_struct_end(&w);
    akidb__tw_i32(&w, 16, 13);          /* last id restored after the inner struct */
    akidb__tw_struct_end(&w);
    akidb__tw_list_begin(&w, 24, AKIDB__T_STRUCT, 15);
    for (int i = 0; i < 15; i++) {
        akidb__tw_elem_struct_begin(&w);
        akidb__tw_string(&w, 1, "x");
        akidb__tw_i32(&w, 2, i);
        akidb__tw_struct_end(&w);
    }
    akidb__tw_i32(&w, 25, INT32_MIN);
    akidb__tw_struct_end(&w);
    ASSERT_OK(akidb__tw_error(&w));
    /* the long-delta header: type byte then zigzag(300) = 600 as a varint */
    ASSERT(w.len > 20);

    akidb__tr r;
    akidb__tr_init(&r, w.buf, w.len, 1000, "test");
    ASSERT_OK(akidb__tr_struct_begin(&r));
    int t, seen = 0;
    int16_t id;
    for (;;) {
        ASSERT_OK(akidb__tr_field(&r, &t, &id));
        if (t == AKIDB__T_STOP)
            break;
        int32_t i32;
        int64_t i64;
        int b;
        const unsigned char *p;
        size_t len, n;
        int et;
        switch (id) {
        case 1: ASSERT_OK(akidb__tr_i32(&r, t, &i32)); ASSERT_EQ(i32, -5); break;
        case 2: ASSERT_OK(akidb__tr_i64(&r, t, &i64)); ASSERT(i64 == INT64_MIN); break;
        case 3: ASSERT_OK(akidb__tr_bool(&r, t, &b)); ASSERT_EQ(b, 1); break;
        case 4: ASSERT_OK(akidb__tr_bool(&r, t, &b)); ASSERT_EQ(b, 0); break;
        case 5:
            ASSERT_OK(akidb__tr_binary(&r, t, &p, &len));
            ASSERT_EQ(len, 5);
            ASSERT(memcmp(p, "hello", 5) == 0);
            break;
        case 300: ASSERT_OK(akidb__tr_i32(&r, t, &i32)); ASSERT_EQ(i32, 7); break;
        case 20: ASSERT_OK(akidb__tr_i32(&r, t, &i32)); ASSERT_EQ(i32, 8); break;
        case 21: ASSERT_OK(akidb__tr_i64(&r, t, &i64)); ASSERT(i64 == INT64_MAX); break;
        case 22:
            ASSERT_OK(akidb__tr_list_begin(&r, t, &et, &n));
            ASSERT_EQ(et, AKIDB__T_I32);
            ASSERT_EQ(n, 40);
            for (int i = 0; i < 40; i++) {
                ASSERT_OK(akidb__tr_i32(&r, et, &i32));
                ASSERT_EQ(i32, i * 1000 - 7);
            }
            break;
        case 23: {
            ASSERT_OK(akidb__tr_struct_begin(&r));
            int t2, inner = 0;
            int16_t id2;
            for (;;) {
                ASSERT_OK(akidb__tr_field(&r, &t2, &id2));
                if (t2 == AKIDB__T_STOP)
                    break;
                if (id2 == 15) {
                    ASSERT_OK(akidb__tr_struct_begin(&r));
                    int t3;
                    int16_t id3;
                    ASSERT_OK(akidb__tr_field(&r, &t3, &id3));
                    ASSERT_EQ(id3, 2);
                    ASSERT_OK(akidb__tr_i32(&r, t3, &i32));
                    ASSERT_EQ(i32, 12);
                    ASSERT_OK(akidb__tr_field(&r, &t3, &id3));
                    ASSERT_EQ(t3, AKIDB__T_STOP);
                    inner |= 2;
                } else {
                    ASSERT_OK(akidb__tr_i32(&r, t2, &i32));
                    ASSERT_EQ(i32, id2 == 1 ? 11 : 13);
                    inner |= id2 == 1 ? 1 : 4;
                }
            }
            ASSERT_EQ(inner, 7);
            break;
        }
        case 24:
            ASSERT_OK(akidb__tr_list_begin(&r, t, &et, &n));
            ASSERT_EQ(n, 15);
            for (size_t i = 0; i < n; i++)
                ASSERT_OK(akidb__tr_skip(&r, et));
            break;
        case 25: ASSERT_OK(akidb__tr_i32(&r, t, &i32)); ASSERT(i32 == INT32_MIN); break;
        default: ASSERT(0);
        }
        seen++;
    }
    ASSERT_EQ(seen, 12);
    ASSERT_EQ(r.pos, w.len);
    akidb__tw_free(&w);
}

/* A struct with one unknown field of every type, then a known one: the
 * reader must skip them all and still find field 100. */
TEST(parquet_thrift_skip_every_type)
{
    akidb__tw w;
    akidb__tw_init(&w, &akidb__default_allocator);
    akidb__tw_reset(&w);
    akidb__tw_bool(&w, 1, 1);
    akidb__tw_bool(&w, 2, 0);
    akidb__tw_field_header(&w, 3, AKIDB__T_I8);
    akidb__tw_bytes(&w, "\xff", 1);
    akidb__tw_field_header(&w, 4, AKIDB__T_I16);
    akidb__tw_zigzag(&w, -300);
    akidb__tw_i32(&w, 5, 123456);
    akidb__tw_i64(&w, 6, -1234567890123ll);
    akidb__tw_field_header(&w, 7, AKIDB__T_DOUBLE);
    double dv = 3.5;
    akidb__tw_bytes(&w, &dv, 8);
    akidb__tw_binary(&w, 8, "abc", 3);
    akidb__tw_field_header(&w, 9, AKIDB__T_LIST);     /* list<bool> of 20 */
    akidb__tw_collection_header(&w, AKIDB__T_TRUE, 20);
    for (int i = 0; i < 20; i++)
        akidb__tw_bytes(&w, i & 1 ? "\x01" : "\x02", 1);
    akidb__tw_field_header(&w, 10, AKIDB__T_SET);      /* set<binary> */
    akidb__tw_collection_header(&w, AKIDB__T_BINARY, 2);
    akidb__tw_elem_string(&w, "a");
    akidb__tw_elem_string(&w, "bb");
    akidb__tw_field_header(&w, 11, AKIDB__T_MAP);      /* map<i32, struct> */
    akidb__tw_map_header(&w, AKIDB__T_I32, AKIDB__T_STRUCT, 2);
    for (int i = 0; i < 2; i++) {
        akidb__tw_elem_i32(&w, i);
        akidb__tw_elem_struct_begin(&w);
        akidb__tw_string(&w, 1, "v");
        akidb__tw_struct_end(&w);
    }
    akidb__tw_field_header(&w, 12, AKIDB__T_MAP);      /* empty map: no type byte */
    akidb__tw_map_header(&w, 0, 0, 0);
    akidb__tw_struct_begin(&w, 13);                    /* nested structs with lists */
    akidb__tw_struct_begin(&w, 1);
    akidb__tw_list_begin(&w, 1, AKIDB__T_LIST, 2);
    akidb__tw_collection_header(&w, AKIDB__T_I64, 1);
    akidb__tw_elem_i64(&w, 5);
    akidb__tw_collection_header(&w, AKIDB__T_DOUBLE, 1);
    akidb__tw_bytes(&w, &dv, 8);
    akidb__tw_struct_end(&w);
    akidb__tw_struct_end(&w);
    akidb__tw_field_header(&w, 14, AKIDB__T_UUID);
    akidb__tw_bytes(&w, "0123456789abcdef", 16);
    akidb__tw_field_header(&w, 15, AKIDB__T_LIST);     /* list<i8> */
    akidb__tw_collection_header(&w, AKIDB__T_I8, 3);
    akidb__tw_bytes(&w, "\x01\x02\x03", 3);
    akidb__tw_i32(&w, 100, 42);
    akidb__tw_struct_end(&w);
    ASSERT_OK(akidb__tw_error(&w));

    akidb__tr r;
    akidb__tr_init(&r, w.buf, w.len, 0, "test");
    ASSERT_OK(akidb__tr_struct_begin(&r));
    int t, found = 0, skipped = 0;
    int16_t id;
    for (;;) {
        ASSERT_OK(akidb__tr_field(&r, &t, &id));
        if (t == AKIDB__T_STOP)
            break;
        if (id == 100) {
            int32_t v;
            ASSERT_OK(akidb__tr_i32(&r, t, &v));
            ASSERT_EQ(v, 42);
            found = 1;
        } else {
            ASSERT_OK(akidb__tr_skip(&r, t));
            skipped++;
        }
    }
    ASSERT(found);
    ASSERT_EQ(skipped, 15);
    ASSERT_EQ(r.pos, w.len);

    /* Every truncation of that struct is CORRUPT, never a crash. */
    for (size_t cut = 0; cut < w.len; cut++) {
        akidb__tr_init(&r, w.buf, cut, 0, "test");
        int rc = akidb__tr_struct_begin(&r);
        while (rc == AKIDB_OK) {
            rc = akidb__tr_field(&r, &t, &id);
            if (rc || t == AKIDB__T_STOP)
                break;
            rc = akidb__tr_skip(&r, t);
        }
        ASSERT_RC(rc, AKIDB_CORRUPT);
    }
    akidb__tw_free(&w);
}

TEST(parquet_thrift_limits)
{
    akidb__tr r;
    int t, et;
    int16_t id;
    size_t n;
    /* list claiming 1000 elements in 3 bytes */
    const unsigned char big_list[] = { 0x19, 0xF5, 0x07 };
    akidb__tr_init(&r, big_list, sizeof big_list, 0, "test");
    ASSERT_OK(akidb__tr_struct_begin(&r));
    ASSERT_OK(akidb__tr_field(&r, &t, &id));
    ASSERT_RC(akidb__tr_list_begin(&r, t, &et, &n), AKIDB_CORRUPT);
    /* binary longer than the buffer */
    const unsigned char big_bin[] = { 0x18, 0x80, 0x80, 0x80, 0x80, 0x08, 'a' };
    akidb__tr_init(&r, big_bin, sizeof big_bin, 0, "test");
    ASSERT_OK(akidb__tr_struct_begin(&r));
    ASSERT_OK(akidb__tr_field(&r, &t, &id));
    ASSERT_RC(akidb__tr_skip(&r, t), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "offset"));
    /* nesting: 100 structs deep */
    unsigned char deep[201];
    for (int i = 0; i < 100; i++) {
        deep[i] = 0x1C;                 /* field 1, struct */
        deep[100 + i] = 0;
    }
    deep[200] = 0;
    akidb__tr_init(&r, deep, sizeof deep, 0, "test");
    ASSERT_OK(akidb__tr_struct_begin(&r));
    ASSERT_OK(akidb__tr_field(&r, &t, &id));
    ASSERT_RC(akidb__tr_skip(&r, t), AKIDB_CORRUPT);
    /* nested lists deep */
    unsigned char deep_list[100];
    memset(deep_list, 0x19, sizeof deep_list);          /* list of 1 list */
    akidb__tr_init(&r, deep_list, sizeof deep_list, 0, "test");
    ASSERT_RC(akidb__tr_skip(&r, AKIDB__T_LIST), AKIDB_CORRUPT);
    /* over-long varint */
    const unsigned char longv[] = { 0x15, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 };
    akidb__tr_init(&r, longv, sizeof longv, 0, "test");
    ASSERT_OK(akidb__tr_struct_begin(&r));
    ASSERT_OK(akidb__tr_field(&r, &t, &id));
    int32_t v;
    ASSERT_RC(akidb__tr_i32(&r, t, &v), AKIDB_CORRUPT);
    /* wrong type for a known field */
    const unsigned char wrong[] = { 0x18, 0x01, 'x', 0 };
    akidb__tr_init(&r, wrong, sizeof wrong, 0, "test");
    ASSERT_OK(akidb__tr_struct_begin(&r));
    ASSERT_OK(akidb__tr_field(&r, &t, &id));
    ASSERT_RC(akidb__tr_i32(&r, t, &v), AKIDB_CORRUPT);
    /* bad type nibble */
    const unsigned char badt[] = { 0x1E };
    akidb__tr_init(&r, badt, sizeof badt, 0, "test");
    ASSERT_OK(akidb__tr_struct_begin(&r));
    ASSERT_RC(akidb__tr_field(&r, &t, &id), AKIDB_CORRUPT);
    /* map claiming more entries than bytes */
    const unsigned char bigmap[] = { 0x1B, 0x64, 0x55, 0x02, 0x02 };
    akidb__tr_init(&r, bigmap, sizeof bigmap, 0, "test");
    ASSERT_OK(akidb__tr_struct_begin(&r));
    ASSERT_OK(akidb__tr_field(&r, &t, &id));
    ASSERT_RC(akidb__tr_skip(&r, t), AKIDB_CORRUPT);
}

/* ---- the table-driven struct decoder (akidb__tr_struct) ------------------------ */

typedef struct tt_inner {
    int32_t a;
    int tag;                    /* union member id */
} tt_inner;

typedef struct tt_elem {
    const unsigned char *s;
    size_t s_len;
    int64_t v;
    uint64_t off;               /* from the init hook */
    uint32_t seen;              /* from the check hook */
} tt_elem;

typedef struct tt_obj {
    int32_t i32;
    int64_t i64;
    int b;
    const unsigned char *bin;
    size_t bin_len;
    int mark;
    tt_inner inner;
    tt_elem *elems;
    size_t n_elems;
    int fn_calls;
    int32_t fn_val;
    int32_t first;
    int32_t lenient;
    int32_t req2;
} tt_obj;

#define TT_(id, kind, flags, skip, off, off2, sub, fn, name) \
    [id] = { kind, flags, skip, off, off2, sub, fn, name }

static void tt_elem_init(void *obj, uint64_t off)
{
    tt_elem *e = obj;
    e->off = off;
}

static int tt_elem_check(akidb__tr *r, void *obj, uint32_t seen, void *ctx)
{
    tt_elem *e = obj;
    (void)ctx;
    e->seen = seen;
    return e->v < 0 ? akidb__tr_fail(r, "negative v") : AKIDB_OK;
}

static const akidb__tfield tt_elem_fields[] = {
    TT_(1, AKIDB__TF_BINARY, 0, 0, offsetof(tt_elem, s), offsetof(tt_elem, s_len), NULL, NULL,
        "s"),
    TT_(2, AKIDB__TF_I64, 0, 0, offsetof(tt_elem, v), 0, NULL, NULL, "v"),
};
static const akidb__tstruct tt_elem_t = {
    .name = "elem", .fields = tt_elem_fields, .n_fields = 3, .required = AKIDB__TID(1),
    .size = sizeof(tt_elem), .init = tt_elem_init, .check = tt_elem_check,
};

static const akidb__tfield tt_inner_fields[] = {
    TT_(1, AKIDB__TF_I32, 0, 0, offsetof(tt_inner, a), 0, NULL, NULL, "a"),
    TT_(4, AKIDB__TF_SKIP, AKIDB__TF_TAG, AKIDB__TBUT(AKIDB__T_STRUCT), 0, 0, NULL, NULL, "m4"),
};
static const akidb__tfield tt_inner_other = {
    AKIDB__TF_SKIP, AKIDB__TF_TAG, AKIDB__TBUT(AKIDB__T_STRUCT), 0, 0, NULL, NULL, "member"
};
static const akidb__tstruct tt_inner_t = {
    .name = "inner", .fields = tt_inner_fields, .n_fields = 5, .other = &tt_inner_other,
    .tag_off = offsetof(tt_inner, tag),
};

static int tt_fn(akidb__tr *r, int16_t id, int type, void *obj, void *ctx)
{
    tt_obj *o = obj;
    ASSERT_EQ(id, 8);
    ASSERT(ctx == (void *)&tt_elem_t);        /* the ctx given to akidb__tr_struct */
    o->fn_calls++;
    return akidb__tr_i32(r, type, &o->fn_val);
}

static const akidb__tfield tt_fields[] = {
    TT_(1, AKIDB__TF_I32, 0, 0, offsetof(tt_obj, i32), 0, NULL, NULL, "i32"),
    TT_(2, AKIDB__TF_I64, 0, 0, offsetof(tt_obj, i64), 0, NULL, NULL, "i64"),
    TT_(3, AKIDB__TF_BOOL, 0, 0, offsetof(tt_obj, b), 0, NULL, NULL, "b"),
    TT_(4, AKIDB__TF_BINARY, 0, 0, offsetof(tt_obj, bin), offsetof(tt_obj, bin_len), NULL, NULL,
        "bin"),
    TT_(5, AKIDB__TF_MARK, 0, AKIDB__TBUT(AKIDB__T_STRUCT), offsetof(tt_obj, mark), 0, NULL,
        NULL, "mark"),
    TT_(6, AKIDB__TF_STRUCT, 0, 0, offsetof(tt_obj, inner), 0, &tt_inner_t, NULL, "inner"),
    TT_(7, AKIDB__TF_LIST, AKIDB__TF_ONCE, 0, offsetof(tt_obj, elems), offsetof(tt_obj, n_elems),
        &tt_elem_t, NULL, "elems"),
    TT_(8, AKIDB__TF_FN, 0, 0, 0, 0, NULL, tt_fn, "fn"),
    TT_(9, AKIDB__TF_I32, AKIDB__TF_FIRST, 0, offsetof(tt_obj, first), 0, NULL, NULL, "first"),
    TT_(10, AKIDB__TF_I32, 0, AKIDB__TBIT(AKIDB__T_STRUCT), offsetof(tt_obj, lenient), 0, NULL,
        NULL, "lenient"),
    TT_(12, AKIDB__TF_I32, 0, 0, offsetof(tt_obj, req2), 0, NULL, NULL, "req2"),
};
static const akidb__tstruct tt_t = {
    .name = "test struct", .fields = tt_fields,
    .n_fields = (uint8_t)(sizeof tt_fields / sizeof tt_fields[0]),
    .required = AKIDB__TID(1) | AKIDB__TID(12),
};

/* Decode w's bytes with table s into *o (zeroed first) at file offset 500;
 * the list array is freed whatever happens. */
static int tt_decode(const akidb__tw *w, const akidb__tstruct *s, tt_obj *o,
                     const akidb_allocator *a)
{
    akidb__tr r;
    memset(o, 0, sizeof *o);
    akidb__tr_init(&r, w->buf, w->len, 500, "test");
    r.alloc = a;
    int rc = akidb__tr_struct(&r, s, o, (void *)&tt_elem_t);
    if (rc == AKIDB_OK)
        ASSERT_EQ(r.pos, w->len);
    return rc;
}

static void tt_free(tt_obj *o, const akidb_allocator *a)
{
    akidb__free(a ? a : &akidb__default_allocator, o->elems);
    o->elems = NULL;
}

/* The unknown fields of every type, between known ones. */
static void tt_put_unknowns(akidb__tw *w, int16_t id)
{
    akidb__tw_field_header(w, id, AKIDB__T_DOUBLE);
    double d = 1.5;
    akidb__tw_bytes(w, &d, 8);
    akidb__tw_field_header(w, (int16_t)(id + 1), AKIDB__T_MAP);
    akidb__tw_map_header(w, AKIDB__T_BINARY, AKIDB__T_STRUCT, 1);
    akidb__tw_elem_string(w, "k");
    akidb__tw_elem_struct_begin(w);
    akidb__tw_i32(w, 1, 1);
    akidb__tw_struct_end(w);
    akidb__tw_field_header(w, (int16_t)(id + 2), AKIDB__T_UUID);
    akidb__tw_bytes(w, "0123456789abcdef", 16);
    akidb__tw_list_begin(w, (int16_t)(id + 3), AKIDB__T_I64, 2);
    akidb__tw_elem_i64(w, 1);
    akidb__tw_elem_i64(w, -1);
    akidb__tw_bool(w, (int16_t)(id + 4), 1);
    akidb__tw_field_header(w, (int16_t)(id + 5), AKIDB__T_I8);
    akidb__tw_bytes(w, "\x80", 1);
}

TEST(parquet_thrift_table_decoder)
{
    akidb__tw w;
    akidb__tw_init(&w, &akidb__default_allocator);
    tt_obj o;

    /* every kind, with unknown fields of every type around them */
    akidb__tw_reset(&w);
    akidb__tw_i32(&w, 1, -7);
    akidb__tw_i64(&w, 2, INT64_MIN);
    akidb__tw_bool(&w, 3, 1);
    akidb__tw_string(&w, 4, "bytes");
    akidb__tw_struct_begin(&w, 5);                      /* a mark: the value is skipped */
    akidb__tw_i32(&w, 1, 1);
    akidb__tw_struct_end(&w);
    akidb__tw_struct_begin(&w, 6);
    akidb__tw_i32(&w, 1, 99);
    akidb__tw_struct_begin(&w, 7);                      /* an unlisted member: the tag */
    akidb__tw_struct_end(&w);
    akidb__tw_struct_end(&w);
    akidb__tw_list_begin(&w, 7, AKIDB__T_STRUCT, 3);
    for (int i = 0; i < 3; i++) {
        akidb__tw_elem_struct_begin(&w);
        akidb__tw_string(&w, 1, i == 1 ? "one" : "x");
        if (i != 2)
            akidb__tw_i64(&w, 2, 1000 + i);
        akidb__tw_struct_end(&w);
    }
    akidb__tw_i32(&w, 8, 88);
    akidb__tw_i32(&w, 9, 9);
    akidb__tw_i32(&w, 9, 10);                           /* FIRST: ignored */
    akidb__tw_struct_begin(&w, 10);                     /* skip mask: ignored */
    akidb__tw_struct_end(&w);
    akidb__tw_i32(&w, 10, 1010);
    akidb__tw_i32(&w, 12, 12);
    tt_put_unknowns(&w, 13);                            /* ids beyond the table */
    tt_put_unknowns(&w, 0x100);
    akidb__tw_field_header(&w, 11, AKIDB__T_LIST);      /* a hole in the table, out of order */
    akidb__tw_collection_header(&w, AKIDB__T_STRUCT, 1);
    akidb__tw_bytes(&w, "\x00", 1);
    akidb__tw_bytes(&w, "\x06\x09", 2);                 /* long form: id -5 (zigzag 9), i64 */
    akidb__tw_zigzag(&w, 5);
    akidb__tw_i32(&w, 1, -8);                           /* a repeat overrides */
    akidb__tw_struct_end(&w);
    ASSERT_OK(akidb__tw_error(&w));
    ASSERT_OK(tt_decode(&w, &tt_t, &o, NULL));
    ASSERT_EQ(o.i32, -8);
    ASSERT(o.i64 == INT64_MIN);
    ASSERT_EQ(o.b, 1);
    ASSERT_EQ(o.bin_len, 5);
    ASSERT(memcmp(o.bin, "bytes", 5) == 0);
    ASSERT_EQ(o.mark, 1);
    ASSERT_EQ(o.inner.a, 99);
    ASSERT_EQ(o.inner.tag, 7);
    ASSERT_EQ(o.n_elems, 3);
    ASSERT_EQ(o.elems[1].s_len, 3);
    ASSERT(memcmp(o.elems[1].s, "one", 3) == 0);
    ASSERT_EQ(o.elems[0].v, 1000);
    ASSERT_EQ(o.elems[1].v, 1001);
    ASSERT_EQ(o.elems[2].v, 0);
    ASSERT_EQ(o.elems[0].seen, AKIDB__TID(1) | AKIDB__TID(2));
    ASSERT_EQ(o.elems[2].seen, AKIDB__TID(1));
    ASSERT(o.elems[0].off > 500 && o.elems[0].off < o.elems[1].off);
    ASSERT_EQ(o.fn_calls, 1);
    ASSERT_EQ(o.fn_val, 88);
    ASSERT_EQ(o.first, 9);
    ASSERT_EQ(o.lenient, 1010);
    ASSERT_EQ(o.req2, 12);
    tt_free(&o, NULL);

    /* every truncation: CORRUPT, never a crash or a leak */
    const size_t full = w.len;
    for (size_t cut = 0; cut < full; cut++) {
        w.len = cut;
        ASSERT_RC(tt_decode(&w, &tt_t, &o, NULL), AKIDB_CORRUPT);
        tt_free(&o, NULL);
    }
    w.len = full;

    /* a required field missing: named, with the offset of the struct's end */
    akidb__tw_reset(&w);
    akidb__tw_i32(&w, 1, 1);
    akidb__tw_struct_end(&w);
    ASSERT_RC(tt_decode(&w, &tt_t, &o, NULL), AKIDB_CORRUPT);
    ASSERT_STR_EQ(akidb_errmsg(NULL), "parquet: test at file offset 503: test struct lacks "
                  "req2 (a required field)");
    /* ... also in a list element */
    akidb__tw_reset(&w);
    akidb__tw_i32(&w, 1, 1);
    akidb__tw_list_begin(&w, 7, AKIDB__T_STRUCT, 1);
    akidb__tw_elem_struct_begin(&w);
    akidb__tw_i64(&w, 2, 5);
    akidb__tw_struct_end(&w);
    akidb__tw_i32(&w, 12, 1);
    akidb__tw_struct_end(&w);
    ASSERT_RC(tt_decode(&w, &tt_t, &o, NULL), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "elem lacks s (a required field)"));
    tt_free(&o, NULL);

    /* ONCE: a second list is CORRUPT; the check hook's error stops the decode */
    for (int variant = 0; variant < 2; variant++) {
        akidb__tw_reset(&w);
        akidb__tw_i32(&w, 1, 1);
        for (int k = 0; k < 2 - variant; k++) {
            akidb__tw_list_begin(&w, 7, AKIDB__T_STRUCT, 1);
            akidb__tw_elem_struct_begin(&w);
            akidb__tw_string(&w, 1, "s");
            akidb__tw_i64(&w, 2, variant ? -1 : 1);
            akidb__tw_struct_end(&w);
        }
        akidb__tw_i32(&w, 12, 1);
        akidb__tw_struct_end(&w);
        ASSERT_RC(tt_decode(&w, &tt_t, &o, NULL), AKIDB_CORRUPT);
        ASSERT(strstr(akidb_errmsg(NULL), variant ? "negative v" : "elems appears twice"));
        tt_free(&o, NULL);
    }

    /* wrong wire types for listed fields: CORRUPT, except the skip mask's */
    const int bad_types[][2] = {
        { 1, AKIDB__T_BINARY }, { 1, AKIDB__T_I64 }, { 2, AKIDB__T_DOUBLE },
        { 3, AKIDB__T_I32 }, { 4, AKIDB__T_I32 }, { 6, AKIDB__T_I32 }, { 7, AKIDB__T_I32 },
        { 10, AKIDB__T_BINARY },
    };
    for (size_t k = 0; k < sizeof bad_types / sizeof bad_types[0]; k++) {
        akidb__tw_reset(&w);
        akidb__tw_field_header(&w, (int16_t)bad_types[k][0], bad_types[k][1]);
        akidb__tw_bytes(&w, "\x02\x02\x02\x02\x02\x02\x02\x02\x02", 9);
        akidb__tw_struct_end(&w);
        ASSERT_RC(tt_decode(&w, &tt_t, &o, NULL), AKIDB_CORRUPT);
        tt_free(&o, NULL);
    }

    /* a list of non-structs, an empty list of anything */
    akidb__tw_reset(&w);
    akidb__tw_i32(&w, 1, 1);
    akidb__tw_list_begin(&w, 7, AKIDB__T_I32, 1);
    akidb__tw_elem_i32(&w, 1);
    akidb__tw_struct_end(&w);
    ASSERT_RC(tt_decode(&w, &tt_t, &o, NULL), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "elems is not a list of structs"));
    tt_free(&o, NULL);
    akidb__tw_reset(&w);
    akidb__tw_i32(&w, 1, 1);
    akidb__tw_list_begin(&w, 7, AKIDB__T_I32, 0);
    akidb__tw_i32(&w, 12, 1);
    akidb__tw_struct_end(&w);
    ASSERT_OK(tt_decode(&w, &tt_t, &o, NULL));
    ASSERT_EQ(o.n_elems, 0);
    ASSERT(o.elems != NULL);
    tt_free(&o, NULL);
    /* ... which NONEMPTY refuses */
    akidb__tfield fields2[sizeof tt_fields / sizeof tt_fields[0]];
    memcpy(fields2, tt_fields, sizeof fields2);
    fields2[7].flags |= AKIDB__TF_NONEMPTY;
    akidb__tstruct t2 = tt_t;
    t2.fields = fields2;
    ASSERT_RC(tt_decode(&w, &t2, &o, NULL), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "elems is not a non-empty list of structs"));
    tt_free(&o, NULL);

    /* the list's array comes from r->alloc: NOMEM when it fails, and no
     * leak either way */
    akidb__tw_reset(&w);
    akidb__tw_i32(&w, 1, 1);
    akidb__tw_list_begin(&w, 7, AKIDB__T_STRUCT, 1);
    akidb__tw_elem_struct_begin(&w);
    akidb__tw_string(&w, 1, "s");
    akidb__tw_struct_end(&w);
    akidb__tw_i32(&w, 12, 1);
    akidb__tw_struct_end(&w);
    counting cnt = { 0, 0, 0 };
    akidb_allocator ca = { c_malloc, c_realloc, c_free, &cnt };
    ASSERT_RC(tt_decode(&w, &tt_t, &o, &ca), AKIDB_NOMEM);
    ASSERT_EQ(cnt.live, 0);
    cnt.fail_after = -1;
    ASSERT_OK(tt_decode(&w, &tt_t, &o, &ca));
    ASSERT_EQ(cnt.live, 1);
    tt_free(&o, &ca);
    ASSERT_EQ(cnt.live, 0);

    /* nesting is bounded like the skipping decoder's: a struct field whose
     * table nests itself, fed 40 levels */
    akidb__tfield self[2];
    memset(self, 0, sizeof self);
    akidb__tstruct selft = { .name = "self", .fields = self, .n_fields = 2 };
    self[1].kind = AKIDB__TF_STRUCT;
    self[1].sub = &selft;
    self[1].name = "self";
    unsigned char deep[81];
    for (int i = 0; i < 40; i++) {
        deep[i] = 0x1C;
        deep[40 + i] = 0;
    }
    deep[80] = 0;
    akidb__tr r;
    char obj[1];
    akidb__tr_init(&r, deep, sizeof deep, 0, "test");
    ASSERT_RC(akidb__tr_struct(&r, &selft, obj, NULL), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "nested too deeply"));
    akidb__tw_free(&w);
}

/* ---- SNAPPY and CRC ------------------------------------------------------------ */

static void snappy_ok(const unsigned char *src, size_t len, const char *expect, size_t n)
{
    size_t out_len, at;
    ASSERT_EQ(akidb__snappy_length(src, len, &out_len, &at), 0);
    ASSERT_EQ(out_len, n);
    unsigned char *dst = malloc(n ? n : 1);
    ASSERT_EQ(akidb__snappy_decompress(src, len, dst, n, &at), 0);
    ASSERT(memcmp(dst, expect, n) == 0);
    free(dst);
}

static void snappy_bad(const unsigned char *src, size_t len, size_t n)
{
    size_t at;
    unsigned char *dst = malloc(n ? n : 1);
    ASSERT_EQ(akidb__snappy_decompress(src, len, dst, n, &at), -1);
    ASSERT_LE(at, len);
    free(dst);
}

TEST(parquet_snappy_vectors)
{
    /* literal only */
    const unsigned char lit[] = { 5, 4 << 2, 'h', 'e', 'l', 'l', 'o' };
    snappy_ok(lit, sizeof lit, "hello", 5);
    /* empty */
    const unsigned char empty[] = { 0 };
    snappy_ok(empty, 1, "", 0);
    /* "ab" then copy-1 len 8 offset 2 (overlapping) -> "ababababab" */
    const unsigned char ov[] = { 10, 1 << 2, 'a', 'b', 0x01 | (8 - 4) << 2, 2 };
    snappy_ok(ov, sizeof ov, "ababababab", 10);
    /* "a" then copy-1 offset 1 len 11: run of one byte */
    const unsigned char run[] = { 12, 0 << 2, 'a', 0x01 | 7 << 2, 1 };
    snappy_ok(run, sizeof run, "aaaaaaaaaaaa", 12);
    /* copy-2: "abcd" + copy len 4 offset 4 */
    const unsigned char c2[] = { 8, 3 << 2, 'a', 'b', 'c', 'd', 0x02 | 3 << 2, 4, 0 };
    snappy_ok(c2, sizeof c2, "abcdabcd", 8);
    /* copy-4: "xyz" + copy len 5 offset 3 */
    const unsigned char c4[] = { 8, 2 << 2, 'x', 'y', 'z', 0x03 | 4 << 2, 3, 0, 0, 0 };
    snappy_ok(c4, sizeof c4, "xyzxyzxy", 8);
    /* copy-1 with an 11-bit offset (high bits in the tag) */
    {
        unsigned char src[400];
        char expect[300];
        size_t n = 0;
        src[n++] = 0xAC; src[n++] = 0x02;               /* 300 */
        src[n++] = 60 << 2; src[n++] = 255;             /* literal of 256 (1 length byte) */
        for (int i = 0; i < 256; i++) {
            src[n++] = (unsigned char)i;
            expect[i] = (char)i;
        }
        /* copy-1: len 4+7=11, offset 256 + 0 = 0x100: tag bits 5..7 = 1 */
        src[n++] = 0x01 | 7 << 2 | 1 << 5; src[n++] = 0;
        for (int i = 0; i < 11; i++)
            expect[256 + i] = (char)i;
        /* copy-2 len 33 offset 267 (overlap free) */
        src[n++] = 0x02 | 32 << 2; src[n++] = 0x0B; src[n++] = 0x01;
        for (int i = 0; i < 33; i++)
            expect[267 + i] = expect[i];
        snappy_ok(src, n, expect, 300);
    }
    /* literal with 2-byte length (tag 61) */
    {
        unsigned char src[1100];
        char expect[1000];
        size_t n = 0;
        src[n++] = 0xE8; src[n++] = 0x07;               /* 1000 */
        src[n++] = 61 << 2; src[n++] = (999 & 0xFF); src[n++] = 999 >> 8;
        for (int i = 0; i < 1000; i++) {
            expect[i] = (char)(i * 7);
            src[n++] = (unsigned char)(i * 7);
        }
        snappy_ok(src, n, expect, 1000);
    }
    /* errors */
    const unsigned char off0[] = { 6, 1 << 2, 'a', 'b', 0x01, 0 };          /* offset 0 */
    snappy_bad(off0, sizeof off0, 6);
    const unsigned char far[] = { 7, 1 << 2, 'a', 'b', 0x01 | 1 << 2, 3 };  /* offset > output */
    snappy_bad(far, sizeof far, 7);
    const unsigned char trunc_lit[] = { 5, 4 << 2, 'h', 'e' };
    snappy_bad(trunc_lit, sizeof trunc_lit, 5);
    const unsigned char longer[] = { 3, 4 << 2, 'h', 'e', 'l', 'l', 'o' };  /* output overflows */
    snappy_bad(longer, sizeof longer, 3);
    const unsigned char shorter[] = { 9, 4 << 2, 'h', 'e', 'l', 'l', 'o' }; /* output short */
    snappy_bad(shorter, sizeof shorter, 9);
    const unsigned char trunc_copy[] = { 8, 3 << 2, 'a', 'b', 'c', 'd', 0x02 | 3 << 2, 4 };
    snappy_bad(trunc_copy, sizeof trunc_copy, 8);
    const unsigned char badlen[] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F };
    size_t ol, at;
    ASSERT_EQ(akidb__snappy_length(badlen, sizeof badlen, &ol, &at), -1);
    ASSERT_EQ(akidb__snappy_length(badlen, 2, &ol, &at), -1);
    /* mismatch between preamble and the caller's length */
    snappy_bad(lit, sizeof lit, 4);
    /* random garbage never crashes */
    for (int it = 0; it < 2000; it++) {
        unsigned char g[64], out[256];
        for (size_t i = 0; i < sizeof g; i++)
            g[i] = (unsigned char)rnd();
        g[0] = (unsigned char)(rnd() % 200);
        if (g[0] >= 0x80)
            g[0] &= 0x7F;
        (void)akidb__snappy_decompress(g, 1 + rnd() % 63, out, g[0], &at);
    }
}

TEST(parquet_crc32)
{
    ASSERT_EQ(akidb__crc32(0, "123456789", 9), 0xCBF43926u);
    ASSERT_EQ(akidb__crc32(0, "", 0), 0);
    /* incremental == one shot, at every split and alignment */
    unsigned char buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)rnd();
    uint32_t whole = akidb__crc32(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut += 7)
        ASSERT_EQ(akidb__crc32(akidb__crc32(0, buf, cut), buf + cut, sizeof buf - cut),
                  whole);
    /* against a bitwise reference, at every length and two alignments (the
     * folding path starts at 64 bytes) */
    for (size_t start = 0; start < 2; start++)
        for (size_t len = 0; len + start <= sizeof buf; len++) {
            uint32_t c = 0xFFFFFFFFu;
            for (size_t i = start; i < start + len; i++) {
                c ^= buf[i];
                for (int k = 0; k < 8; k++)
                    c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
            }
            ASSERT_EQ(akidb__crc32(0, buf + start, len), ~c);
        }
}

/* ---- writer -> reader round trips ----------------------------------------------- */

#define ALL_KINDS 9

typedef struct tcol {
    akidb__pq_column_def def;
    /* owned data for up to n rows */
    int64_t *i64;
    int32_t *i32;
    float *f32;
    unsigned char *bytes;
    uint64_t *offsets;
    uint8_t *nulls;
} tcol;

/* Fill column data for n rows: nulls with probability 1/null_every in
 * optional columns, list lengths 0..max_len (empty ones too). */
static void gen_col(tcol *c, size_t n, int null_every, size_t max_len)
{
    memset(&c->i64, 0, sizeof *c - offsetof(tcol, i64));
    if (c->def.optional && null_every) {
        c->nulls = calloc(n ? n : 1, 1);
        for (size_t r = 0; r < n; r++)
            c->nulls[r] = rnd() % (uint64_t)null_every == 0;
    }
    int isnull;
    switch (c->def.kind) {
    case AKIDB__PQ_INT64:
    case AKIDB__PQ_TIMESTAMP_US:
        c->i64 = malloc((n ? n : 1) * 8);
        for (size_t r = 0; r < n; r++)
            c->i64[r] = (int64_t)rnd();
        break;
    case AKIDB__PQ_INT32:
        c->i32 = malloc((n ? n : 1) * 4);
        for (size_t r = 0; r < n; r++)
            c->i32[r] = (int32_t)rnd();
        break;
    case AKIDB__PQ_FLOAT:
        c->f32 = malloc((n ? n : 1) * 4);
        for (size_t r = 0; r < n; r++)
            c->f32[r] = (float)((double)(int64_t)rnd() / 1e15);
        break;
    default: {
        c->offsets = malloc((n + 1) * 8);
        size_t total = 0;
        c->offsets[0] = 0;
        for (size_t r = 0; r < n; r++) {
            isnull = c->nulls && c->nulls[r];
            size_t k = isnull ? 0 : (size_t)(rnd() % (max_len + 1));
            total += k;
            c->offsets[r + 1] = total;
        }
        if (c->def.kind == AKIDB__PQ_FLOAT_LIST) {
            c->f32 = malloc((total ? total : 1) * 4);
            for (size_t i = 0; i < total; i++)
                c->f32[i] = (float)((double)(int64_t)rnd() / 9.2e18);
        } else if (c->def.kind == AKIDB__PQ_INT32_LIST) {
            c->i32 = malloc((total ? total : 1) * 4);
            for (size_t i = 0; i < total; i++)
                c->i32[i] = (int32_t)rnd();
        } else {
            c->bytes = malloc(total ? total : 1);
            for (size_t i = 0; i < total; i++)
                c->bytes[i] = c->def.kind == AKIDB__PQ_BINARY ? (unsigned char)rnd()
                                                              : (unsigned char)('a' + rnd() % 26);
        }
        break;
    }
    }
}

static void free_col(tcol *c)
{
    free(c->i64); free(c->i32); free(c->f32); free(c->bytes); free(c->offsets); free(c->nulls);
}

static akidb__pq_values col_values(const tcol *c)
{
    akidb__pq_values v = { c->i64, c->i32, c->f32, c->bytes, c->offsets, c->nulls, NULL };
    return v;
}

/* Compare what the reader returned for rows [0, n) with the source. */
static void check_col(const tcol *c, const akidb__pqr_values *v, size_t n)
{
    ASSERT_EQ(v->n_rows, n);
    ASSERT_EQ(v->kind, c->def.kind);
    int any_null = 0;
    for (size_t r = 0; r < n; r++)
        any_null |= c->nulls && c->nulls[r];
    if (!any_null)
        ASSERT(v->nulls == NULL);
    for (size_t r = 0; r < n; r++) {
        int isnull = c->nulls && c->nulls[r];
        ASSERT_EQ(v->nulls ? v->nulls[r] : 0, isnull);
        switch (c->def.kind) {
        case AKIDB__PQ_INT64:
        case AKIDB__PQ_TIMESTAMP_US:
            if (!isnull)
                ASSERT_EQ(v->i64[r], c->i64[r]);
            break;
        case AKIDB__PQ_INT32:
            if (!isnull)
                ASSERT_EQ(v->i32[r], c->i32[r]);
            break;
        case AKIDB__PQ_FLOAT:
            if (!isnull)
                ASSERT(memcmp(&v->f32[r], &c->f32[r], 4) == 0);
            break;
        default: {
            size_t k = (size_t)(c->offsets[r + 1] - c->offsets[r]);
            ASSERT_EQ(v->offsets[r + 1] - v->offsets[r], k);
            const void *a, *b;
            size_t w = 1;
            if (c->def.kind == AKIDB__PQ_FLOAT_LIST) {
                a = v->f32 + v->offsets[r];
                b = c->f32 + c->offsets[r];
                w = 4;
            } else if (c->def.kind == AKIDB__PQ_INT32_LIST) {
                a = v->i32 + v->offsets[r];
                b = c->i32 + c->offsets[r];
                w = 4;
            } else {
                a = v->bytes + v->offsets[r];
                b = c->bytes + c->offsets[r];
            }
            if (k)
                ASSERT(memcmp(a, b, k * w) == 0);
            break;
        }
        }
    }
}

static const akidb__pq_kind kinds[ALL_KINDS] = {
    AKIDB__PQ_INT64, AKIDB__PQ_INT32, AKIDB__PQ_FLOAT, AKIDB__PQ_STRING, AKIDB__PQ_JSON,
    AKIDB__PQ_TIMESTAMP_US, AKIDB__PQ_FLOAT_LIST, AKIDB__PQ_INT32_LIST, AKIDB__PQ_BINARY
};
static const char *const kind_names[ALL_KINDS] = {
    "id", "level", "score", "external_id", "metadata", "inserted_at", "vector", "links", "blob"
};

/* Write every kind twice (required and optional) over `groups` row groups
 * of `rows` rows, read it all back and compare. */
static void round_trip(int zstd_level, int bss, size_t page_bytes, size_t groups, size_t rows,
                       int null_every, size_t max_len)
{
    enum { NC = 2 * ALL_KINDS };
    akidb__pq_column_def defs[NC];
    char names[NC][32];
    for (int i = 0; i < NC; i++) {
        snprintf(names[i], sizeof names[i], "%s%s", kind_names[i % ALL_KINDS],
                 i >= ALL_KINDS ? "_opt" : "");
        defs[i].name = names[i];
        defs[i].kind = kinds[i % ALL_KINDS];
        defs[i].optional = i >= ALL_KINDS;
    }
    const char *keys[] = { "akidb.dim", "akidb.metric" };
    const char *vals[] = { "512", "cosine" };
    akidb__pqw_options o = { zstd_level, bss, page_bytes, keys, vals, 2, "akidb version test" };
    membuf m = { .fail_at = -1 };
    akidb__pqw *w;
    ASSERT_OK(akidb__pqw_open(defs, NC, &o, NULL, mem_sink, &m, &w));
    tcol *data = calloc(groups * NC, sizeof *data);
    for (size_t g = 0; g < groups; g++) {
        akidb__pq_values v[NC];
        for (int i = 0; i < NC; i++) {
            tcol *c = &data[g * NC + i];
            c->def = defs[i];
            gen_col(c, rows, null_every, max_len);
            v[i] = col_values(c);
        }
        ASSERT_OK(akidb__pqw_write_row_group(w, rows, v));
    }
    uint64_t size = 0;
    ASSERT_OK(akidb__pqw_finish(w, &size));
    ASSERT_EQ(size, m.len);
    akidb__pqw_free(w);

    akidb__pqr *r;
    ASSERT_OK(akidb__pqr_open(m.p, m.len, NULL, &r));
    ASSERT_EQ(akidb__pqr_num_columns(r), NC);
    ASSERT_EQ(akidb__pqr_num_rows(r), groups * rows);
    ASSERT_EQ(akidb__pqr_num_row_groups(r), groups);
    ASSERT_STR_EQ(akidb__pqr_kv(r, "akidb.dim"), "512");
    ASSERT_STR_EQ(akidb__pqr_kv(r, "akidb.metric"), "cosine");
    ASSERT(akidb__pqr_kv(r, "nope") == NULL);
    for (int i = 0; i < NC; i++) {
        akidb__pqr_column_info info;
        ASSERT_OK(akidb__pqr_column(r, (size_t)i, &info));
        ASSERT_STR_EQ(info.name, names[i]);
        ASSERT_EQ(info.kind, defs[i].kind);
        ASSERT_EQ(info.optional, defs[i].optional);
        ASSERT_EQ(akidb__pqr_find_column(r, names[i]), i);
    }
    for (size_t g = 0; g < groups; g++) {
        ASSERT_EQ(akidb__pqr_row_group_rows(r, g), rows);
        for (int i = 0; i < NC; i++) {
            ASSERT_STR_EQ(akidb__pqr_codec(r, g, (size_t)i), zstd_level ? "ZSTD" : "UNCOMPRESSED");
            akidb__pqr_values v;
            ASSERT_OK(akidb__pqr_read(r, g, (size_t)i, &v));
            check_col(&data[g * NC + i], &v, rows);
            akidb__pqr_values_free(r, &v);
        }
    }
    akidb__pqr_free(r);
    for (size_t i = 0; i < groups * NC; i++)
        free_col(&data[i]);
    free(data);
    free(m.p);
}

TEST(parquet_roundtrip_all_kinds)
{
    round_trip(1, 1, 0, 1, 500, 5, 20);
    round_trip(0, 0, 0, 1, 500, 5, 20);
}

TEST(parquet_roundtrip_many_pages_and_groups)
{
    round_trip(1, 1, 256, 3, 700, 4, 40);       /* tiny pages: hundreds per chunk */
    round_trip(0, 0, 1, 2, 100, 3, 5);          /* one row per page */
    round_trip(3, 0, 4096, 4, 1000, 0, 64);     /* no nulls at all */
}

TEST(parquet_roundtrip_zstd_levels)
{
    for (int lvl = 1; lvl <= 19; lvl += 6)
        round_trip(lvl, lvl & 1, 8192, 1, 300, 7, 33);
}

TEST(parquet_roundtrip_edge_rows)
{
    round_trip(1, 1, 0, 1, 1, 2, 3);            /* one row */
    round_trip(1, 1, 0, 2, 50, 1, 3);           /* every optional row null */
    round_trip(1, 0, 0, 1, 300, 2, 0);          /* every list and string empty */
    round_trip(0, 1, 64, 1, 2000, 9, 1);        /* lists of at most 1 element */
}

TEST(parquet_empty_file)
{
    akidb__pq_column_def d[2] = { { "id", AKIDB__PQ_INT64, 0 },
                                  { "v", AKIDB__PQ_FLOAT_LIST, 0 } };
    membuf m = { .fail_at = -1 };
    akidb__pqw *w;
    ASSERT_OK(akidb__pqw_open(d, 2, NULL, NULL, mem_sink, &m, &w));
    ASSERT_OK(akidb__pqw_write_row_group(w, 0, NULL));
    ASSERT_OK(akidb__pqw_finish(w, NULL));
    akidb__pqw_free(w);
    akidb__pqr *r;
    ASSERT_OK(akidb__pqr_open(m.p, m.len, NULL, &r));
    ASSERT_EQ(akidb__pqr_num_rows(r), 0);
    ASSERT_EQ(akidb__pqr_num_row_groups(r), 0);
    ASSERT_EQ(akidb__pqr_num_columns(r), 2);
    ASSERT(akidb__pqr_kv(r, "x") == NULL);
    akidb__pqr_free(r);
    free(m.p);
}

/* Exact expected values of a small hand-checked file: levels and schema. */
TEST(parquet_writer_layout)
{
    akidb__pq_column_def d[2] = { { "id", AKIDB__PQ_INT64, 0 },
                                  { "vector", AKIDB__PQ_FLOAT_LIST, 0 } };
    int64_t ids[3] = { 1, 2, 3 };
    float f[5] = { 1, 2, 3, 4, 5 };
    uint64_t off[4] = { 0, 3, 3, 5 };
    akidb__pq_values v[2] = { { .i64 = ids }, { .f32 = f, .offsets = off } };
    membuf m = { .fail_at = -1 };
    akidb__pqw *w;
    ASSERT_OK(akidb__pqw_open(d, 2, NULL, NULL, mem_sink, &m, &w));
    ASSERT_OK(akidb__pqw_write_row_group(w, 3, v));
    ASSERT_OK(akidb__pqw_finish(w, NULL));
    akidb__pqw_free(w);
    ASSERT(memcmp(m.p, "PAR1", 4) == 0);
    ASSERT(memcmp(m.p + m.len - 4, "PAR1", 4) == 0);
    /* The vector page body (uncompressed): rep levels 0,1,1,0,0,1 and def
     * levels 1,1,1,0,1,1 as bit-packed groups of bit width 1. */
    const unsigned char rep[] = { 2, 0, 0, 0, 0x03, 0x26 };
    const unsigned char def[] = { 2, 0, 0, 0, 0x03, 0x37 };
    unsigned char *hit = memmem(m.p, m.len, rep, sizeof rep);
    ASSERT(hit);
    ASSERT(memcmp(hit + sizeof rep, def, sizeof def) == 0);
    ASSERT(memcmp(hit + sizeof rep + sizeof def, f, sizeof f) == 0);
    /* names in the footer */
    ASSERT(memmem(m.p, m.len, "element", 7));
    ASSERT(memmem(m.p, m.len, "akidb version", 13));
    akidb__pqr *r;
    ASSERT_OK(akidb__pqr_open(m.p, m.len, NULL, &r));
    akidb__pqr_column_info info;
    ASSERT_OK(akidb__pqr_column(r, 1, &info));
    ASSERT_STR_EQ(info.physical, "FLOAT");
    ASSERT_STR_EQ(info.logical, "LIST<FLOAT>");
    ASSERT_OK(akidb__pqr_column(r, 0, &info));
    ASSERT_STR_EQ(info.physical, "INT64");
    ASSERT_STR_EQ(info.logical, "");
    ASSERT_RC(akidb__pqr_column(r, 2, &info), AKIDB_INVALID);
    akidb__pqr_values out;
    ASSERT_RC(akidb__pqr_read(r, 1, 0, &out), AKIDB_INVALID);
    akidb__pqr_free(r);
    free(m.p);
}

TEST(parquet_writer_errors)
{
    akidb__pq_column_def d[2] = { { "a", AKIDB__PQ_INT64, 0 }, { "a", AKIDB__PQ_INT32, 0 } };
    membuf m = { .fail_at = -1 };
    akidb__pqw *w;
    ASSERT_RC(akidb__pqw_open(d, 2, NULL, NULL, mem_sink, &m, &w), AKIDB_INVALID);
    akidb__pqw_options o = { .zstd_level = 25 };
    ASSERT_RC(akidb__pqw_open(d, 1, &o, NULL, mem_sink, &m, &w), AKIDB_INVALID);
    akidb__pq_column_def bad = { "x", (akidb__pq_kind)42, 0 };
    ASSERT_RC(akidb__pqw_open(&bad, 1, NULL, NULL, mem_sink, &m, &w), AKIDB_INVALID);
    ASSERT_RC(akidb__pqw_open(d, 0, NULL, NULL, mem_sink, &m, &w), AKIDB_INVALID);

    /* null in a required column */
    ASSERT_OK(akidb__pqw_open(d, 1, NULL, NULL, mem_sink, &m, &w));
    int64_t ids[2] = { 1, 2 };
    uint8_t nulls[2] = { 0, 1 };
    akidb__pq_values v = { .i64 = ids, .nulls = nulls };
    ASSERT_RC(akidb__pqw_write_row_group(w, 2, &v), AKIDB_INVALID);
    v.nulls = NULL;
    ASSERT_OK(akidb__pqw_write_row_group(w, 2, &v));
    ASSERT_OK(akidb__pqw_finish(w, NULL));
    ASSERT_RC(akidb__pqw_finish(w, NULL), AKIDB_INVALID);
    akidb__pqw_free(w);
    akidb__pqw_free(NULL);

    /* decreasing offsets */
    akidb__pq_column_def s = { "s", AKIDB__PQ_STRING, 0 };
    uint64_t offs[3] = { 0, 5, 3 };
    akidb__pq_values sv = { .bytes = (const unsigned char *)"hello", .offsets = offs };
    ASSERT_OK(akidb__pqw_open(&s, 1, NULL, NULL, mem_sink, &m, &w));
    ASSERT_RC(akidb__pqw_write_row_group(w, 2, &sv), AKIDB_INVALID);
    akidb__pqw_free(w);

    /* a failing sink is sticky */
    for (long at = 0; at < 5; at++) {       /* magic, page header, page, footer, tail */
        membuf f = { .fail_at = at };
        int rc = akidb__pqw_open(d, 1, NULL, NULL, mem_sink, &f, &w);
        if (rc == AKIDB_OK) {
            rc = akidb__pqw_write_row_group(w, 2, &v);
            if (rc == AKIDB_OK)
                rc = akidb__pqw_finish(w, NULL);
            else
                ASSERT_RC(akidb__pqw_finish(w, NULL), AKIDB_IOERR);
            akidb__pqw_free(w);
        }
        ASSERT_RC(rc, AKIDB_IOERR);
        free(f.p);
    }
    free(m.p);
}

/* Allocation failures at every step: NOMEM, no leaks (ASan checks). */
TEST(parquet_oom)
{
    akidb__pq_column_def d[3] = { { "id", AKIDB__PQ_INT64, 0 },
                                  { "s", AKIDB__PQ_STRING, 1 },
                                  { "v", AKIDB__PQ_FLOAT_LIST, 1 } };
    int64_t ids[3] = { 1, 2, 3 };
    uint64_t so[4] = { 0, 1, 1, 3 };
    uint8_t nl[3] = { 0, 1, 0 };
    float f[4] = { 1, 2, 3, 4 };
    uint64_t vo[4] = { 0, 2, 2, 4 };
    akidb__pq_values v[3] = { { .i64 = ids }, { .bytes = (const unsigned char *)"abc",
                              .offsets = so, .nulls = nl }, { .f32 = f, .offsets = vo } };
    const char *k[] = { "k" }, *kv[] = { "v" };
    akidb__pqw_options o = { 1, 1, 0, k, kv, 1, NULL };
    membuf good = { .fail_at = -1 };
    akidb__pqw *w;
    ASSERT_OK(akidb__pqw_open(d, 3, &o, NULL, mem_sink, &good, &w));
    ASSERT_OK(akidb__pqw_write_row_group(w, 3, v));
    ASSERT_OK(akidb__pqw_finish(w, NULL));
    akidb__pqw_free(w);
    int ok_seen = 0;
    for (long fail = 0; fail < 200 && !ok_seen; fail++) {
        counting c = { 0, 0, fail };
        akidb_allocator a = { c_malloc, c_realloc, c_free, &c };
        membuf m = { .fail_at = -1 };
        int rc = akidb__pqw_open(d, 3, &o, &a, mem_sink, &m, &w);
        if (rc == AKIDB_OK) {
            rc = akidb__pqw_write_row_group(w, 3, v);
            if (rc == AKIDB_OK)
                rc = akidb__pqw_finish(w, NULL);
            akidb__pqw_free(w);
        }
        ASSERT(rc == AKIDB_OK || rc == AKIDB_NOMEM);
        ASSERT_EQ(c.live, 0);
        if (rc == AKIDB_OK) {
            ASSERT_EQ(m.len, good.len);
            ASSERT(memcmp(m.p, good.p, m.len) == 0);
            ok_seen = 1;
        }
        free(m.p);
    }
    ASSERT(ok_seen);
    ok_seen = 0;
    for (long fail = 0; fail < 200 && !ok_seen; fail++) {
        counting c = { 0, 0, fail };
        akidb_allocator a = { c_malloc, c_realloc, c_free, &c };
        akidb__pqr *r;
        int rc = akidb__pqr_open(good.p, good.len, &a, &r);
        if (rc == AKIDB_OK) {
            for (size_t i = 0; i < 3 && rc == AKIDB_OK; i++) {
                akidb__pqr_values out;
                rc = akidb__pqr_read(r, 0, i, &out);
                if (rc == AKIDB_OK)
                    akidb__pqr_values_free(r, &out);
            }
            akidb__pqr_free(r);
        }
        ASSERT(rc == AKIDB_OK || rc == AKIDB_NOMEM);
        ASSERT_EQ(c.live, 0);
        ok_seen = rc == AKIDB_OK;
    }
    ASSERT(ok_seen);
    free(good.p);
}

/* Every single-byte change and every truncation of a small file is either
 * read correctly or rejected with CORRUPT/INVALID: never a crash. */
TEST_TIMEOUT(parquet_reader_damage, 240)
{
    akidb__pq_column_def d[4] = { { "id", AKIDB__PQ_INT64, 0 },
                                  { "s", AKIDB__PQ_STRING, 1 },
                                  { "v", AKIDB__PQ_FLOAT_LIST, 0 },
                                  { "l", AKIDB__PQ_INT32_LIST, 1 } };
    for (int variant = 0; variant < 2; variant++) {
        tcol c[4];
        akidb__pq_values v[4];
        for (int i = 0; i < 4; i++) {
            c[i].def = d[i];
            gen_col(&c[i], 20, 3, 6);
            v[i] = col_values(&c[i]);
        }
        akidb__pqw_options o = { variant ? 1 : 0, variant, 64, NULL, NULL, 0, NULL };
        membuf m = { .fail_at = -1 };
        akidb__pqw *w;
        ASSERT_OK(akidb__pqw_open(d, 4, &o, NULL, mem_sink, &m, &w));
        ASSERT_OK(akidb__pqw_write_row_group(w, 20, v));
        ASSERT_OK(akidb__pqw_write_row_group(w, 20, v));
        ASSERT_OK(akidb__pqw_finish(w, NULL));
        akidb__pqw_free(w);
        unsigned char *copy = malloc(m.len);
        size_t flips = 0, rejected = 0;
        for (size_t pos = 0; pos < m.len; pos++) {
            for (int bit = 0; bit < 8; bit += 3) {
                memcpy(copy, m.p, m.len);
                copy[pos] ^= (unsigned char)(1 << bit);
                akidb__pqr *r;
                int rc = akidb__pqr_open(copy, m.len, NULL, &r);
                flips++;
                if (rc) {
                    ASSERT(rc == AKIDB_CORRUPT || rc == AKIDB_INVALID);
                    rejected++;
                    continue;
                }
                for (size_t g = 0; g < akidb__pqr_num_row_groups(r); g++)
                    for (size_t i = 0; i < akidb__pqr_num_columns(r); i++) {
                        akidb__pqr_values out;
                        rc = akidb__pqr_read(r, g, i, &out);
                        if (rc == AKIDB_OK)
                            akidb__pqr_values_free(r, &out);
                        else
                            ASSERT(rc == AKIDB_CORRUPT || rc == AKIDB_INVALID);
                    }
                akidb__pqr_free(r);
            }
        }
        for (size_t cut = 0; cut < m.len; cut++) {
            akidb__pqr *r;
            unsigned char *t = malloc(cut ? cut : 1);
            memcpy(t, m.p, cut);
            int rc = akidb__pqr_open(t, cut, NULL, &r);
            ASSERT(rc == AKIDB_CORRUPT);
            free(t);
        }
        ASSERT_GE(rejected, 1);
        free(copy);
        free(m.p);
        for (int i = 0; i < 4; i++)
            free_col(&c[i]);
    }
}

/* ---- files as other writers make them ----------------------------------------------
 *
 * A tiny raw builder: schema elements and pages are given field by field,
 * so the tests control every detail the reader must cope with. */

typedef struct snode {
    const char *name;
    int type;                   /* -1 group */
    int rep;                    /* -1 none (root) */
    int children;
    int converted;              /* -1 none */
    int logical;                /* 0 none; 8 = TIMESTAMP with ts_unit */
    int ts_unit;
} snode;

typedef struct rpage {
    int type;                   /* 0 v1, 2 dictionary, 3 v2 */
    int encoding;
    int n_values;               /* level entries (dictionary: entries) */
    int num_nulls, num_rows;    /* v2 */
    membuf rep, def, vals;      /* levels without prefix; values */
    int no_crc;
    int v2_not_compressed;
    int omit_is_compressed;
} rpage;

typedef struct rchunk {
    int type;
    int codec;
    int64_t num_values;
    rpage pages[8];
    int n_pages;
    const char *path[3];
    int n_path;
    int no_path_field;          /* omit path_in_schema (a required field) */
    int no_meta;                /* omit meta_data altogether */
    int crypto;                 /* add crypto_metadata (ENCRYPTION_WITH_FOOTER_KEY) */
} rchunk;

/* File-level extras for build_file_x. */
typedef struct bfopts {
    int encryption;             /* 1: FileMetaData.encryption_algorithm (AES_GCM_V1);
                                   2: the same field with a damaged struct inside */
    int64_t file_rows;          /* FileMetaData.num_rows if not 0 (else n_rows) */
} bfopts;

/* SNAPPY "compression" for tests: literals, plus one copy when the input
 * starts with a repeat, which is enough to exercise the reader. */
static void snappy_compress(membuf *out, const unsigned char *p, size_t n)
{
    uint64_t v = n;
    while (v >= 0x80) {
        unsigned char b = (unsigned char)(v | 0x80);
        mb_put(out, &b, 1);
        v >>= 7;
    }
    unsigned char b = (unsigned char)v;
    mb_put(out, &b, 1);
    size_t i = 0;
    while (i < n) {
        size_t k = n - i < 60 ? n - i : 60;
        b = (unsigned char)((k - 1) << 2);
        mb_put(out, &b, 1);
        mb_put(out, p + i, k);
        i += k;
        /* then copy as much of the last 8 bytes as repeats */
        if (i >= 8) {
            size_t run = 0;
            while (i + run < n && run < 64 && p[i + run] == p[i + run - 8])
                run++;
            if (run >= 1) {
                unsigned char c[3] = { (unsigned char)(0x02 | (run - 1) << 2), 8, 0 };
                mb_put(out, c, 3);
                i += run;
            }
        }
    }
}

static void compress_block(int codec, membuf *out, const unsigned char *p, size_t n)
{
    if (codec == 0) {
        mb_put(out, p, n);
    } else if (codec == 1) {
        snappy_compress(out, p, n);
    } else {
        size_t bound = ZSTD_compressBound(n);
        unsigned char *z = malloc(bound);
        size_t zn = ZSTD_compress(z, bound, p, n, 3);
        ASSERT(!ZSTD_isError(zn));
        mb_put(out, z, zn);
        free(z);
    }
}

static void emit_page(membuf *f, const rchunk *c, const rpage *pg)
{
    membuf body = { .fail_at = -1 }, unc = { .fail_at = -1 };
    int32_t unc_len;
    if (pg->type == 3) {
        mb_put(&body, pg->rep.p, pg->rep.len);
        mb_put(&body, pg->def.p, pg->def.len);
        if (pg->v2_not_compressed)
            mb_put(&body, pg->vals.p, pg->vals.len);
        else
            compress_block(c->codec, &body, pg->vals.p, pg->vals.len);
        unc_len = (int32_t)(pg->rep.len + pg->def.len + pg->vals.len);
    } else {
        if (pg->rep.len) {
            mb_u32(&unc, (uint32_t)pg->rep.len);
            mb_put(&unc, pg->rep.p, pg->rep.len);
        }
        if (pg->def.len) {
            mb_u32(&unc, (uint32_t)pg->def.len);
            mb_put(&unc, pg->def.p, pg->def.len);
        }
        mb_put(&unc, pg->vals.p, pg->vals.len);
        compress_block(c->codec, &body, unc.p, unc.len);
        unc_len = (int32_t)unc.len;
    }
    akidb__tw t;
    akidb__tw_init(&t, &akidb__default_allocator);
    akidb__tw_reset(&t);
    akidb__tw_i32(&t, 1, pg->type);
    akidb__tw_i32(&t, 2, unc_len);
    akidb__tw_i32(&t, 3, (int32_t)body.len);
    if (!pg->no_crc)
        akidb__tw_i32(&t, 4, (int32_t)akidb__crc32(0, body.p, body.len));
    if (pg->type == 0) {
        akidb__tw_struct_begin(&t, 5);
        akidb__tw_i32(&t, 1, pg->n_values);
        akidb__tw_i32(&t, 2, pg->encoding);
        akidb__tw_i32(&t, 3, 3);
        akidb__tw_i32(&t, 4, 3);
        akidb__tw_struct_begin(&t, 5);      /* statistics: skipped */
        akidb__tw_binary(&t, 5, "zz", 2);
        akidb__tw_struct_end(&t);
        akidb__tw_struct_end(&t);
    } else if (pg->type == 2) {
        akidb__tw_struct_begin(&t, 7);
        akidb__tw_i32(&t, 1, pg->n_values);
        akidb__tw_i32(&t, 2, pg->encoding);
        akidb__tw_bool(&t, 3, 0);
        akidb__tw_struct_end(&t);
    } else {
        akidb__tw_struct_begin(&t, 8);
        akidb__tw_i32(&t, 1, pg->n_values);
        akidb__tw_i32(&t, 2, pg->num_nulls);
        akidb__tw_i32(&t, 3, pg->num_rows);
        akidb__tw_i32(&t, 4, pg->encoding);
        akidb__tw_i32(&t, 5, (int32_t)pg->def.len);
        akidb__tw_i32(&t, 6, (int32_t)pg->rep.len);
        if (!pg->omit_is_compressed)
            akidb__tw_bool(&t, 7, !pg->v2_not_compressed);
        akidb__tw_struct_end(&t);
    }
    akidb__tw_struct_end(&t);
    ASSERT_OK(akidb__tw_error(&t));
    mb_put(f, t.buf, t.len);
    mb_put(f, body.p, body.len);
    akidb__tw_free(&t);
    free(body.p);
    free(unc.p);
}

/* One row group of n_rows rows with the given chunks. */
static membuf build_file_x(const snode *schema, int n_nodes, rchunk *chunks, int n_chunks,
                           int64_t n_rows, const bfopts *o)
{
    const bfopts none = { 0, 0 };
    if (!o)
        o = &none;
    membuf f = { .fail_at = -1 };
    mb_put(&f, "PAR1", 4);
    int64_t start[16], size[16], dict_off[16], data_off[16];
    for (int i = 0; i < n_chunks; i++) {
        start[i] = (int64_t)f.len;
        dict_off[i] = data_off[i] = -1;
        for (int p = 0; p < chunks[i].n_pages; p++) {
            if (chunks[i].pages[p].type == 2)
                dict_off[i] = (int64_t)f.len;
            else if (data_off[i] < 0)
                data_off[i] = (int64_t)f.len;
            emit_page(&f, &chunks[i], &chunks[i].pages[p]);
        }
        size[i] = (int64_t)f.len - start[i];
    }
    akidb__tw t;
    akidb__tw_init(&t, &akidb__default_allocator);
    akidb__tw_reset(&t);
    akidb__tw_i32(&t, 1, 2);
    akidb__tw_list_begin(&t, 2, AKIDB__T_STRUCT, (size_t)n_nodes);
    for (int i = 0; i < n_nodes; i++) {
        const snode *s = &schema[i];
        akidb__tw_elem_struct_begin(&t);
        if (s->type >= 0)
            akidb__tw_i32(&t, 1, s->type);
        if (s->rep >= 0)
            akidb__tw_i32(&t, 3, s->rep);
        akidb__tw_string(&t, 4, s->name);
        if (s->children)
            akidb__tw_i32(&t, 5, s->children);
        if (s->converted >= 0)
            akidb__tw_i32(&t, 6, s->converted);
        if (s->logical) {
            akidb__tw_struct_begin(&t, 10);
            akidb__tw_struct_begin(&t, (int16_t)s->logical);
            if (s->logical == 8) {
                akidb__tw_bool(&t, 1, 0);
                akidb__tw_struct_begin(&t, 2);
                akidb__tw_struct_begin(&t, (int16_t)s->ts_unit);
                akidb__tw_struct_end(&t);
                akidb__tw_struct_end(&t);
            }
            akidb__tw_struct_end(&t);
            akidb__tw_struct_end(&t);
        }
        akidb__tw_struct_end(&t);
    }
    akidb__tw_i64(&t, 3, o->file_rows ? o->file_rows : n_rows);
    akidb__tw_list_begin(&t, 4, AKIDB__T_STRUCT, 1);
    akidb__tw_elem_struct_begin(&t);
    akidb__tw_list_begin(&t, 1, AKIDB__T_STRUCT, (size_t)n_chunks);
    for (int i = 0; i < n_chunks; i++) {
        akidb__tw_elem_struct_begin(&t);
        akidb__tw_i64(&t, 2, 0);
        if (chunks[i].no_meta)
            goto chunk_tail;
        akidb__tw_struct_begin(&t, 3);
        akidb__tw_i32(&t, 1, chunks[i].type);
        akidb__tw_list_begin(&t, 2, AKIDB__T_I32, 1);
        akidb__tw_elem_i32(&t, 0);
        if (!chunks[i].no_path_field) {
            akidb__tw_list_begin(&t, 3, AKIDB__T_BINARY, (size_t)chunks[i].n_path);
            for (int k = 0; k < chunks[i].n_path; k++)
                akidb__tw_elem_string(&t, chunks[i].path[k]);
        }
        akidb__tw_i32(&t, 4, chunks[i].codec);
        akidb__tw_i64(&t, 5, chunks[i].num_values);
        akidb__tw_i64(&t, 6, size[i]);
        akidb__tw_i64(&t, 7, size[i]);
        /* like most writers: data_page_offset at the first data page,
         * dictionary_page_offset before it */
        akidb__tw_i64(&t, 9, data_off[i] >= 0 ? data_off[i] : start[i]);
        if (dict_off[i] >= 0)
            akidb__tw_i64(&t, 11, dict_off[i]);
        akidb__tw_struct_begin(&t, 12);         /* statistics: skipped */
        akidb__tw_binary(&t, 1, "max", 3);
        akidb__tw_struct_end(&t);
        akidb__tw_struct_end(&t);
    chunk_tail:
        akidb__tw_i64(&t, 4, 12345);            /* offset_index_offset: skipped */
        if (chunks[i].crypto) {
            akidb__tw_struct_begin(&t, 8);      /* crypto_metadata */
            akidb__tw_struct_begin(&t, 1);      /* ENCRYPTION_WITH_FOOTER_KEY {} */
            akidb__tw_struct_end(&t);
            akidb__tw_struct_end(&t);
        }
        akidb__tw_struct_end(&t);
    }
    akidb__tw_i64(&t, 2, 100);
    akidb__tw_i64(&t, 3, n_rows);
    akidb__tw_struct_end(&t);
    akidb__tw_string(&t, 6, "test builder");
    akidb__tw_list_begin(&t, 7, AKIDB__T_STRUCT, 1);    /* column_orders: skipped */
    akidb__tw_elem_struct_begin(&t);
    akidb__tw_struct_begin(&t, 1);
    akidb__tw_struct_end(&t);
    akidb__tw_struct_end(&t);
    if (o->encryption) {
        akidb__tw_struct_begin(&t, 8);          /* encryption_algorithm */
        akidb__tw_struct_begin(&t, 1);          /* AES_GCM_V1 */
        akidb__tw_binary(&t, 2, "uniq", 4);     /* aad_file_unique */
        if (o->encryption == 2) {
            const unsigned char bad = 0x1e;     /* field header of type 14: no such type */
            akidb__tw_bytes(&t, &bad, 1);
        }
        akidb__tw_struct_end(&t);
        akidb__tw_struct_end(&t);
    }
    akidb__tw_struct_end(&t);
    ASSERT_OK(akidb__tw_error(&t));
    mb_put(&f, t.buf, t.len);
    mb_u32(&f, (uint32_t)t.len);
    mb_put(&f, "PAR1", 4);
    akidb__tw_free(&t);
    for (int i = 0; i < n_chunks; i++)
        for (int p = 0; p < chunks[i].n_pages; p++) {
            free(chunks[i].pages[p].rep.p);
            free(chunks[i].pages[p].def.p);
            free(chunks[i].pages[p].vals.p);
        }
    return f;
}

static membuf build_file(const snode *schema, int n_nodes, rchunk *chunks, int n_chunks,
                         int64_t n_rows)
{
    return build_file_x(schema, n_nodes, chunks, n_chunks, n_rows, NULL);
}

static void put_varint(membuf *m, uint64_t v)
{
    while (v >= 0x80) {
        unsigned char b = (unsigned char)(v | 0x80);
        mb_put(m, &b, 1);
        v >>= 7;
    }
    unsigned char b = (unsigned char)v;
    mb_put(m, &b, 1);
}

/* Levels/indices as ONE bit-packed run (the form Arrow favours). */
static void hyb_bitpacked(membuf *m, const uint32_t *v, size_t n, int bw)
{
    size_t groups = (n + 7) / 8;
    put_varint(m, groups << 1 | 1);
    size_t nbytes = groups * (size_t)bw;
    unsigned char *b = calloc(nbytes ? nbytes : 1, 1);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < bw; k++)
            if (v[i] >> k & 1) {
                size_t bit = i * (size_t)bw + (size_t)k;
                b[bit / 8] |= (unsigned char)(1 << (bit % 8));
            }
    mb_put(m, b, nbytes);
    free(b);
}

/* A run of one value. */
static void hyb_rle(membuf *m, uint32_t v, size_t count, int bw)
{
    put_varint(m, count << 1);
    mb_put(m, &v, (size_t)(bw + 7) / 8);
}

static akidb__pqr *open_ok(const membuf *f)
{
    akidb__pqr *r;
    ASSERT_OK(akidb__pqr_open(f->p, f->len, NULL, &r));
    return r;
}

/* pyarrow's default shape: optional list, optional element named "item",
 * SNAPPY, dictionary page + RLE_DICTIONARY data page, then a PLAIN fallback
 * page; max_def 3, levels bit-packed with bit width 2. */
TEST(parquet_read_dictionary_and_item_lists)
{
    const snode schema[] = {
        { "schema", -1, -1, 2, -1, 0, 0 },
        { "id", 2, 0, 0, -1, 0, 0 },
        { "vec", -1, 1, 1, 3, 3, 0 },
        { "list", -1, 2, 1, -1, 0, 0 },
        { "item", 4, 1, 0, -1, 0, 0 },
    };
    /* rows: [1,2], null, [], [2,2,1] | page 2: [7.5], [8.5, 9.5] */
    rchunk ch[2] = { { .type = 2, .codec = 1, .num_values = 6, .n_pages = 1,
                       .path = { "id" }, .n_path = 1 },
                     { .type = 4, .codec = 1, .num_values = 11, .n_pages = 3,
                       .path = { "vec", "list", "item" }, .n_path = 3 } };
    int64_t ids[6] = { 10, 11, 12, 13, 14, 15 };
    rpage *p = &ch[0].pages[0];
    p->type = 0;
    p->encoding = 0;
    p->n_values = 6;
    mb_put(&p->vals, ids, sizeof ids);

    float dict[3] = { 1.0f, 2.0f, 0.5f };
    p = &ch[1].pages[0];
    p->type = 2;
    p->encoding = 0;
    p->n_values = 3;
    mb_put(&p->vals, dict, sizeof dict);

    p = &ch[1].pages[1];
    p->type = 0;
    p->encoding = 8;
    p->n_values = 7;
    uint32_t rep1[7] = { 0, 1, 0, 0, 0, 1, 1 };
    uint32_t def1[7] = { 3, 3, 0, 1, 3, 3, 3 };
    hyb_bitpacked(&p->rep, rep1, 7, 1);
    hyb_bitpacked(&p->def, def1, 7, 2);
    unsigned char bw = 2;
    mb_put(&p->vals, &bw, 1);
    uint32_t idx[5] = { 0, 1, 1, 1, 0 };
    hyb_bitpacked(&p->vals, idx, 5, 2);

    p = &ch[1].pages[2];
    p->type = 0;
    p->encoding = 0;
    p->n_values = 4;
    hyb_rle(&p->rep, 0, 2, 1);
    hyb_rle(&p->rep, 1, 1, 1);
    hyb_rle(&p->rep, 1, 1, 1);            /* two runs of the same value: legal */
    hyb_rle(&p->def, 3, 4, 2);
    float plain[4] = { 7.5f, 8.5f, 9.5f, 10.5f };
    mb_put(&p->vals, plain, sizeof plain);
    /* rows 4..5 of the chunk: [7.5], [8.5, 9.5, 10.5] */

    membuf f = build_file(schema, 5, ch, 2, 6);
    akidb__pqr *r = open_ok(&f);
    akidb__pqr_column_info info;
    ASSERT_OK(akidb__pqr_column(r, 1, &info));
    ASSERT_EQ(info.kind, AKIDB__PQ_FLOAT_LIST);
    ASSERT_EQ(info.optional, 1);
    ASSERT_STR_EQ(akidb__pqr_codec(r, 0, 1), "SNAPPY");
    akidb__pqr_values v;
    ASSERT_OK(akidb__pqr_read(r, 0, 0, &v));
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(v.i64[i], ids[i]);
    akidb__pqr_values_free(r, &v);
    ASSERT_OK(akidb__pqr_read(r, 0, 1, &v));
    ASSERT_EQ(v.n_rows, 6);
    const uint64_t eo[7] = { 0, 2, 2, 2, 5, 6, 9 };
    const float ev[9] = { 1, 2, 2, 2, 1, 7.5f, 8.5f, 9.5f, 10.5f };
    for (int i = 0; i < 7; i++)
        ASSERT_EQ(v.offsets[i], eo[i]);
    for (int i = 0; i < 9; i++)
        ASSERT_NEAR(v.f32[i], ev[i], 0);
    ASSERT(v.nulls);
    ASSERT_EQ(v.nulls[1], 1);
    ASSERT_EQ(v.nulls[2], 0);
    akidb__pqr_values_free(r, &v);
    akidb__pqr_free(r);
    free(f.p);
}

/* DATA_PAGE_V2 (levels outside the compressed block), ZSTD, strings with
 * a dictionary of strings, an optional string column with nulls, a bare
 * `repeated int32` list and a 2-level list. */
TEST(parquet_read_v2_pages)
{
    const snode schema[] = {
        { "schema", -1, -1, 4, -1, 0, 0 },
        { "name", 6, 1, 0, 0, 1, 0 },
        { "tags", 1, 2, 0, -1, 0, 0 },
        { "two", -1, 1, 1, 3, 0, 0 },
        { "array", 4, 2, 0, -1, 0, 0 },
        { "ts", 2, 0, 0, -1, 8, 1 },
    };
    rchunk ch[4] = {
        { .type = 6, .codec = 6, .num_values = 4, .n_pages = 3, .path = { "name" }, .n_path = 1 },
        { .type = 1, .codec = 6, .num_values = 6, .n_pages = 2, .path = { "tags" }, .n_path = 1 },
        { .type = 4, .codec = 0, .num_values = 5, .n_pages = 1, .path = { "two", "array" },
          .n_path = 2 },
        { .type = 2, .codec = 6, .num_values = 4, .n_pages = 1, .path = { "ts" }, .n_path = 1 },
    };
    /* name: dict ["foo", "barbaz"]; page 1 (v2): "foo", null; page 2 (v2,
     * PLAIN fallback, is_compressed absent = true): "", "barbaz" */
    rpage *p = &ch[0].pages[0];
    p->type = 2;
    p->n_values = 2;
    mb_u32(&p->vals, 3);
    mb_put(&p->vals, "foo", 3);
    mb_u32(&p->vals, 6);
    mb_put(&p->vals, "barbaz", 6);
    p = &ch[0].pages[1];
    p->type = 3;
    p->encoding = 2;                    /* PLAIN_DICTIONARY */
    p->n_values = 2;
    p->num_nulls = 1;
    p->num_rows = 2;
    hyb_rle(&p->def, 1, 1, 1);
    hyb_rle(&p->def, 0, 1, 1);
    unsigned char bw = 1;
    mb_put(&p->vals, &bw, 1);
    hyb_rle(&p->vals, 0, 1, 1);
    p = &ch[0].pages[2];
    p->type = 3;
    p->encoding = 0;
    p->n_values = 2;
    p->num_rows = 2;
    p->omit_is_compressed = 1;
    hyb_rle(&p->def, 1, 2, 1);
    mb_u32(&p->vals, 0);
    mb_u32(&p->vals, 6);
    mb_put(&p->vals, "barbaz", 6);

    /* tags (bare repeated int32): [5, 6, 7], [], [8] | [9] ; the second
     * page is v2 with is_compressed = false */
    p = &ch[1].pages[0];
    p->type = 3;
    p->encoding = 0;
    p->n_values = 5;
    p->num_rows = 3;
    uint32_t r1[5] = { 0, 1, 1, 0, 0 }, d1[5] = { 1, 1, 1, 0, 1 };
    hyb_bitpacked(&p->rep, r1, 5, 1);
    hyb_bitpacked(&p->def, d1, 5, 1);
    int32_t t1[4] = { 5, 6, 7, 8 };
    mb_put(&p->vals, t1, sizeof t1);
    p = &ch[1].pages[1];
    p->type = 3;
    p->encoding = 0;
    p->n_values = 1;
    p->num_rows = 1;
    p->v2_not_compressed = 1;
    hyb_rle(&p->rep, 0, 1, 1);
    hyb_rle(&p->def, 1, 1, 1);
    int32_t t2 = 9;
    mb_put(&p->vals, &t2, 4);

    /* two (2-level list, element "array"): [1.5], null, [], [2.5, 3.5] */
    p = &ch[2].pages[0];
    p->type = 0;
    p->encoding = 0;
    p->n_values = 5;
    uint32_t r2[5] = { 0, 0, 0, 0, 1 }, d2[5] = { 2, 0, 1, 2, 2 };
    hyb_bitpacked(&p->rep, r2, 5, 1);
    hyb_bitpacked(&p->def, d2, 5, 2);
    float f2[3] = { 1.5f, 2.5f, 3.5f };
    mb_put(&p->vals, f2, sizeof f2);

    /* ts: TIMESTAMP(MILLIS) -> micros */
    p = &ch[3].pages[0];
    p->type = 0;
    p->encoding = 0;
    p->n_values = 4;
    int64_t ms[4] = { 1700000000123, -1, 0, 42 };
    mb_put(&p->vals, ms, sizeof ms);

    membuf f = build_file(schema, 6, ch, 4, 4);
    akidb__pqr *r = open_ok(&f);
    ASSERT_EQ(akidb__pqr_num_columns(r), 4);
    akidb__pqr_column_info info;
    ASSERT_OK(akidb__pqr_column(r, 1, &info));
    ASSERT_EQ(info.kind, AKIDB__PQ_INT32_LIST);
    ASSERT_OK(akidb__pqr_column(r, 2, &info));
    ASSERT_EQ(info.kind, AKIDB__PQ_FLOAT_LIST);
    ASSERT_OK(akidb__pqr_column(r, 3, &info));
    ASSERT_EQ(info.kind, AKIDB__PQ_TIMESTAMP_US);
    ASSERT_STR_EQ(info.logical, "TIMESTAMP(MILLIS)");

    akidb__pqr_values v;
    ASSERT_OK(akidb__pqr_read(r, 0, 0, &v));
    ASSERT_EQ(v.n_rows, 4);
    ASSERT(v.nulls && v.nulls[1] && !v.nulls[0] && !v.nulls[2]);
    ASSERT_EQ(v.offsets[1] - v.offsets[0], 3);
    ASSERT(memcmp(v.bytes + v.offsets[0], "foo", 3) == 0);
    ASSERT_EQ(v.offsets[2] - v.offsets[1], 0);
    ASSERT_EQ(v.offsets[3] - v.offsets[2], 0);
    ASSERT_EQ(v.offsets[4] - v.offsets[3], 6);
    ASSERT(memcmp(v.bytes + v.offsets[3], "barbaz", 6) == 0);
    akidb__pqr_values_free(r, &v);

    ASSERT_OK(akidb__pqr_read(r, 0, 1, &v));
    const uint64_t to[5] = { 0, 3, 3, 4, 5 };
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(v.offsets[i], to[i]);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(v.i32[i], t1[i]);
    ASSERT_EQ(v.i32[4], 9);
    ASSERT(v.nulls == NULL);
    akidb__pqr_values_free(r, &v);

    ASSERT_OK(akidb__pqr_read(r, 0, 2, &v));
    const uint64_t fo[5] = { 0, 1, 1, 1, 3 };
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(v.offsets[i], fo[i]);
    ASSERT(v.nulls && v.nulls[1] && !v.nulls[2]);
    ASSERT_NEAR(v.f32[2], 3.5, 0);
    akidb__pqr_values_free(r, &v);

    ASSERT_OK(akidb__pqr_read(r, 0, 3, &v));
    ASSERT_EQ(v.i64[0], 1700000000123000ll);
    ASSERT_EQ(v.i64[1], -1000);
    ASSERT_EQ(v.i64[3], 42000);
    akidb__pqr_values_free(r, &v);
    akidb__pqr_free(r);
    free(f.p);
}

/* DELTA_BINARY_PACKED encoder (block 128, 4 miniblocks of 32). */
static void dbp_encode(membuf *m, const int64_t *v, size_t n)
{
    put_varint(m, 128);
    put_varint(m, 4);
    put_varint(m, n);
    int64_t first = n ? v[0] : 0;
    put_varint(m, ((uint64_t)first << 1) ^ (uint64_t)(first >> 63));
    size_t i = 1;
    while (i < n) {
        int64_t deltas[128] = { 0 };   /* k >= 1 below (i < n); gcc -O1 cannot see it */
        size_t k = 0;
        for (; k < 128 && i + k < n; k++)
            deltas[k] = (int64_t)((uint64_t)v[i + k] - (uint64_t)v[i + k - 1]);
        int64_t mn = deltas[0];
        for (size_t j = 1; j < k; j++)
            if (deltas[j] < mn)
                mn = deltas[j];
        put_varint(m, ((uint64_t)mn << 1) ^ (uint64_t)(mn >> 63));
        unsigned char bws[4] = { 0 };
        uint64_t packed[128] = { 0 };
        for (size_t j = 0; j < k; j++) {
            packed[j] = (uint64_t)deltas[j] - (uint64_t)mn;
            int b = 0;
            while (b < 64 && (packed[j] >> b))
                b++;
            if (b > bws[j / 32])
                bws[j / 32] = (unsigned char)b;
        }
        mb_put(m, bws, 4);
        for (size_t mi = 0; mi < 4 && mi * 32 < k; mi++) {
            int bw = bws[mi];
            unsigned char buf[32 * 8] = { 0 };
            for (size_t j = 0; j < 32; j++) {
                uint64_t x = packed[mi * 32 + j];
                for (int b = 0; b < bw; b++)
                    if (x >> b & 1) {
                        size_t bit = j * (size_t)bw + (size_t)b;
                        buf[bit / 8] |= (unsigned char)(1 << (bit % 8));
                    }
            }
            mb_put(m, buf, 32 * (size_t)bw / 8);
        }
        i += k;
    }
}

TEST(parquet_read_delta_encodings)
{
    const snode schema[] = {
        { "schema", -1, -1, 4, -1, 0, 0 },
        { "a", 2, 0, 0, -1, 0, 0 },
        { "b", 1, 1, 0, -1, 0, 0 },
        { "s", 6, 0, 0, 0, 0, 0 },
        { "p", 6, 0, 0, 0, 0, 0 },
    };
    enum { N = 300 };
    int64_t a[N], b64[N];
    int32_t b[N];
    for (int i = 0; i < N; i++) {
        a[i] = i % 7 == 0 ? INT64_MIN + i : (int64_t)rnd() >> (i % 60);
        b[i] = (int32_t)(rnd() >> 40) - (1 << 22);
        b64[i] = b[i];
    }
    rchunk ch[4] = {
        { .type = 2, .codec = 0, .num_values = N, .n_pages = 1, .path = { "a" }, .n_path = 1 },
        { .type = 1, .codec = 6, .num_values = N, .n_pages = 1, .path = { "b" }, .n_path = 1 },
        { .type = 6, .codec = 1, .num_values = N, .n_pages = 1, .path = { "s" }, .n_path = 1 },
        { .type = 6, .codec = 0, .num_values = N, .n_pages = 1, .path = { "p" }, .n_path = 1 },
    };
    rpage *p = &ch[0].pages[0];
    p->type = 0;
    p->encoding = 5;
    p->n_values = N;
    dbp_encode(&p->vals, a, N);
    p = &ch[1].pages[0];
    p->type = 3;
    p->encoding = 5;
    p->n_values = N;
    p->num_rows = N;
    hyb_rle(&p->def, 1, N, 1);
    dbp_encode(&p->vals, b64, N);
    /* s: DELTA_LENGTH_BYTE_ARRAY of "x", "yy", ... */
    int64_t lens[N], prefix[N], suffix[N];
    membuf data = { .fail_at = -1 }, pdata = { .fail_at = -1 };
    char strs[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(strs[i], sizeof strs[i], "key%05d", i * 3);
        lens[i] = (int64_t)strlen(strs[i]);
        mb_put(&data, strs[i], (size_t)lens[i]);
        size_t pre = 0;
        if (i)
            while (strs[i][pre] && strs[i][pre] == strs[i - 1][pre])
                pre++;
        prefix[i] = (int64_t)pre;
        suffix[i] = lens[i] - prefix[i];
        mb_put(&pdata, strs[i] + pre, (size_t)suffix[i]);
    }
    p = &ch[2].pages[0];
    p->type = 0;
    p->encoding = 6;
    p->n_values = N;
    dbp_encode(&p->vals, lens, N);
    mb_put(&p->vals, data.p, data.len);
    p = &ch[3].pages[0];
    p->type = 0;
    p->encoding = 7;
    p->n_values = N;
    dbp_encode(&p->vals, prefix, N);
    dbp_encode(&p->vals, suffix, N);
    mb_put(&p->vals, pdata.p, pdata.len);
    free(data.p);
    free(pdata.p);

    membuf f = build_file(schema, 5, ch, 4, N);
    akidb__pqr *r = open_ok(&f);
    akidb__pqr_values v;
    ASSERT_OK(akidb__pqr_read(r, 0, 0, &v));
    for (int i = 0; i < N; i++)
        ASSERT_EQ(v.i64[i], a[i]);
    akidb__pqr_values_free(r, &v);
    ASSERT_OK(akidb__pqr_read(r, 0, 1, &v));
    for (int i = 0; i < N; i++)
        ASSERT_EQ(v.i32[i], b[i]);
    akidb__pqr_values_free(r, &v);
    for (size_t col = 2; col < 4; col++) {
        ASSERT_OK(akidb__pqr_read(r, 0, col, &v));
        for (int i = 0; i < N; i++) {
            ASSERT_EQ(v.offsets[i + 1] - v.offsets[i], strlen(strs[i]));
            ASSERT(memcmp(v.bytes + v.offsets[i], strs[i], strlen(strs[i])) == 0);
        }
        akidb__pqr_values_free(r, &v);
    }
    akidb__pqr_free(r);
    free(f.p);
}

/* Levels of odd bit widths (optional list of optional int32: max_def 3
 * means bit width 2; dictionary indices of width 11), NANOS timestamps,
 * a null element inside a list (INVALID), an unsupported codec and an
 * unreadable column shape. */
TEST(parquet_read_odd_widths_and_refusals)
{
    const snode schema[] = {
        { "schema", -1, -1, 4, -1, 0, 0 },
        { "l", -1, 1, 1, 3, 3, 0 },
        { "list", -1, 2, 1, -1, 0, 0 },
        { "element", 1, 1, 0, -1, 0, 0 },
        { "ns", 2, 1, 0, -1, 8, 3 },
        { "big", 1, 0, 0, -1, 0, 0 },
        { "d", 5, 0, 0, -1, 0, 0 },
    };
    enum { N = 2000 };
    rchunk ch[4] = {
        { .type = 1, .codec = 0, .num_values = 3, .n_pages = 1,
          .path = { "l", "list", "element" }, .n_path = 3 },
        { .type = 2, .codec = 0, .num_values = 3, .n_pages = 1, .path = { "ns" }, .n_path = 1 },
        { .type = 1, .codec = 0, .num_values = 3, .n_pages = 2, .path = { "big" }, .n_path = 1 },
        { .type = 5, .codec = 2, .num_values = 3, .n_pages = 1, .path = { "d" }, .n_path = 1 },
    };
    rpage *p = &ch[0].pages[0];
    p->type = 0;
    p->n_values = 3;
    uint32_t rl[3] = { 0, 1, 0 }, dl[3] = { 3, 2, 1 };    /* [7, null], [] */
    hyb_bitpacked(&p->rep, rl, 3, 1);
    hyb_bitpacked(&p->def, dl, 3, 2);
    int32_t seven = 7;
    mb_put(&p->vals, &seven, 4);
    p = &ch[1].pages[0];
    p->type = 0;
    p->n_values = 3;
    hyb_rle(&p->def, 1, 3, 1);
    int64_t ns[3] = { 1999, -1, -1001 };
    mb_put(&p->vals, ns, sizeof ns);
    /* big: dictionary of N int32, indices with bit width 11 */
    p = &ch[2].pages[0];
    p->type = 2;
    p->n_values = N;
    for (int i = 0; i < N; i++) {
        int32_t x = i * 3;
        mb_put(&p->vals, &x, 4);
    }
    p = &ch[2].pages[1];
    p->type = 0;
    p->encoding = 8;
    p->n_values = 3;
    unsigned char bw = 11;
    mb_put(&p->vals, &bw, 1);
    uint32_t ix[3] = { 1999, 0, 1234 };
    hyb_bitpacked(&p->vals, ix, 3, 11);
    p = &ch[3].pages[0];
    p->type = 0;
    p->n_values = 3;
    double dd[3] = { 1, 2, 3 };
    mb_put(&p->vals, dd, sizeof dd);
    /* GZIP "compression" is not done: the reader refuses before looking */

    membuf f = build_file(schema, 7, ch, 4, 3);
    akidb__pqr *r = open_ok(&f);
    akidb__pqr_values v;
    ASSERT_RC(akidb__pqr_read(r, 0, 0, &v), AKIDB_INVALID);
    ASSERT(strstr(akidb_errmsg(NULL), "null element"));
    ASSERT_OK(akidb__pqr_read(r, 0, 1, &v));
    ASSERT_EQ(v.i64[0], 1);
    ASSERT_EQ(v.i64[1], -1);
    ASSERT_EQ(v.i64[2], -2);
    akidb__pqr_values_free(r, &v);
    ASSERT_OK(akidb__pqr_read(r, 0, 2, &v));
    ASSERT_EQ(v.i32[0], 1999 * 3);
    ASSERT_EQ(v.i32[1], 0);
    ASSERT_EQ(v.i32[2], 1234 * 3);
    akidb__pqr_values_free(r, &v);
    akidb__pqr_column_info info;
    ASSERT_OK(akidb__pqr_column(r, 3, &info));
    ASSERT_EQ(info.kind, 0);
    ASSERT_STR_EQ(info.physical, "DOUBLE");
    ASSERT_RC(akidb__pqr_read(r, 0, 3, &v), AKIDB_INVALID);
    ASSERT_STR_EQ(akidb__pqr_codec(r, 0, 3), "GZIP");
    akidb__pqr_free(r);
    free(f.p);

    /* the GZIP codec on a readable column names the codec */
    const snode s2[] = { { "schema", -1, -1, 1, -1, 0, 0 }, { "x", 1, 0, 0, -1, 0, 0 } };
    rchunk c2 = { .type = 1, .codec = 2, .num_values = 1, .n_pages = 1, .path = { "x" },
                  .n_path = 1 };
    c2.pages[0].type = 0;
    c2.pages[0].n_values = 1;
    mb_put(&c2.pages[0].vals, &seven, 4);
    f = build_file(s2, 2, &c2, 1, 1);
    r = open_ok(&f);
    ASSERT_RC(akidb__pqr_read(r, 0, 0, &v), AKIDB_INVALID);
    ASSERT(strstr(akidb_errmsg(NULL), "GZIP"));
    akidb__pqr_free(r);
    free(f.p);
}

/* Inconsistent counts and hostile sizes in otherwise valid files. */
TEST(parquet_read_hostile_counts)
{
    const snode s[] = { { "schema", -1, -1, 1, -1, 0, 0 },
                        { "v", -1, 0, 1, 3, 3, 0 },
                        { "list", -1, 2, 1, -1, 0, 0 },
                        { "element", 4, 0, 0, -1, 0, 0 } };
    for (int variant = 0; variant < 6; variant++) {
        rchunk c = { .type = 4, .codec = 0, .num_values = 4, .n_pages = 1,
                     .path = { "v", "list", "element" }, .n_path = 3 };
        rpage *p = &c.pages[0];
        p->type = 0;
        p->n_values = 4;
        int64_t rows = 2;
        hyb_rle(&p->rep, 0, 1, 1);
        hyb_rle(&p->rep, 1, 2, 1);
        hyb_rle(&p->rep, 0, 1, 1);
        hyb_rle(&p->def, 1, 4, 1);
        float x[4] = { 1, 2, 3, 4 };
        mb_put(&p->vals, x, variant == 0 ? 12 : 16);    /* 0: a value missing */
        if (variant == 1)
            c.num_values = 5;                            /* chunk claims more */
        if (variant == 2)
            rows = 3;                                    /* row group claims more rows */
        if (variant == 3) {                              /* RLE run of 2^30 levels */
            p->def.len = 0;
            hyb_rle(&p->def, 1, 1u << 30, 1);
            p->n_values = 1 << 30;
            c.num_values = 1 << 30;
        }
        if (variant == 4) {                              /* a def level above max */
            p->def.len = 0;
            hyb_rle(&p->def, 1, 3, 1);
            hyb_rle(&p->def, 1, 0, 1);                   /* empty run: legal */
            uint32_t three[1] = { 1 };
            hyb_bitpacked(&p->def, three, 1, 1);
        }
        if (variant == 5) {                              /* list continues before a row */
            p->rep.len = 0;
            hyb_rle(&p->rep, 1, 4, 1);
        }
        membuf f = build_file(s, 4, &c, 1, rows);
        akidb__pqr *r;
        int rc = akidb__pqr_open(f.p, f.len, NULL, &r);
        if (rc == AKIDB_OK) {
            akidb__pqr_values v;
            rc = akidb__pqr_read(r, 0, 0, &v);
            if (rc == AKIDB_OK)
                akidb__pqr_values_free(r, &v);
            akidb__pqr_free(r);
        }
        if (variant == 4)
            ASSERT_OK(rc);
        else
            ASSERT_RC(rc, AKIDB_CORRUPT);
        ASSERT(rc == AKIDB_OK || strstr(akidb_errmsg(NULL), "offset"));
        free(f.p);
    }

    /* a page header claiming a 2 GiB body, and a zstd page whose header
     * claims 2 GiB uncompressed */
    akidb__pq_column_def d = { "x", AKIDB__PQ_INT64, 0 };
    int64_t vals[4] = { 1, 2, 3, 4 };
    akidb__pq_values pv = { .i64 = vals };
    for (int z = 0; z <= 1; z++) {
        akidb__pqw_options o = { .zstd_level = z };
        membuf m = { .fail_at = -1 };
        akidb__pqw *w;
        ASSERT_OK(akidb__pqw_open(&d, 1, &o, NULL, mem_sink, &m, &w));
        ASSERT_OK(akidb__pqw_write_row_group(w, 4, &pv));
        ASSERT_OK(akidb__pqw_finish(w, NULL));
        akidb__pqw_free(w);
        for (int field = 2; field <= 3; field++) {
            /* re-encode the page header with one size replaced */
            akidb__tr t;
            akidb__tr_init(&t, m.p + 4, m.len - 4, 4, "test");
            int ft;
            int16_t id;
            ASSERT_OK(akidb__tr_struct_begin(&t));
            int32_t sizes[3] = { 0 };
            size_t sub_start = 0;
            for (;;) {
                ASSERT_OK(akidb__tr_field(&t, &ft, &id));
                if (ft == AKIDB__T_STOP)
                    break;
                if (id >= 1 && id <= 3) {
                    ASSERT_OK(akidb__tr_i32(&t, ft, &sizes[id - 1]));
                } else {
                    if (id == 4)
                        sub_start = t.pos - 1;
                    ASSERT_OK(akidb__tr_skip(&t, ft));
                }
            }
            size_t hdr_len = t.pos;
            akidb__tw nw;
            akidb__tw_init(&nw, &akidb__default_allocator);
            akidb__tw_reset(&nw);
            akidb__tw_i32(&nw, 1, 0);
            akidb__tw_i32(&nw, 2, field == 2 ? INT32_MAX : sizes[1]);
            akidb__tw_i32(&nw, 3, field == 3 ? INT32_MAX : sizes[2]);
            /* crc and sub-header bytes copied as they were */
            akidb__tw_bytes(&nw, m.p + 4 + sub_start, hdr_len - sub_start);
            membuf g = { .fail_at = -1 };
            mb_put(&g, "PAR1", 4);
            mb_put(&g, nw.buf, nw.len);
            mb_put(&g, m.p + 4 + hdr_len, m.len - 4 - hdr_len);
            akidb__tw_free(&nw);
            /* the footer's offsets are now off by the header growth; the
             * chunk size check or the page checks must catch it */
            akidb__pqr *r;
            int rc = akidb__pqr_open(g.p, g.len, NULL, &r);
            if (rc == AKIDB_OK) {
                akidb__pqr_values v;
                rc = akidb__pqr_read(r, 0, 0, &v);
                if (rc == AKIDB_OK)
                    akidb__pqr_values_free(r, &v);
                akidb__pqr_free(r);
            }
            ASSERT_RC(rc, AKIDB_CORRUPT);
            free(g.p);
        }
        free(m.p);
    }
}

/* ---- speed ----------------------------------------------------------------------------- */

/* 10k x 512 unit-normalised floats with an id column: write and read back,
 * timing both.  The bound is loose (sanitizers); the numbers are printed. */
TEST_TIMEOUT(parquet_perf_10k_x_512, 300)
{
    enum { N = 10000, DIM = 512 };
    float *vec = malloc((size_t)N * DIM * 4);
    uint64_t *off = malloc((N + 1) * 8);
    int64_t *ids = malloc(N * 8);
    for (size_t i = 0; i < N; i++) {
        double norm = 0;
        for (size_t k = 0; k < DIM; k++) {
            /* roughly normal via the sum of uniforms */
            double g = 0;
            for (int u = 0; u < 4; u++)
                g += (double)(rnd() >> 11) / 9007199254740992.0;
            vec[i * DIM + k] = (float)(g - 2.0);
            norm += (g - 2.0) * (g - 2.0);
        }
        for (size_t k = 0; k < DIM; k++)
            vec[i * DIM + k] /= (float)sqrt(norm);
        off[i] = i * DIM;
        ids[i] = (int64_t)i;
    }
    off[N] = (uint64_t)N * DIM;
    akidb__pq_column_def d[2] = { { "id", AKIDB__PQ_INT64, 0 },
                                  { "vector", AKIDB__PQ_FLOAT_LIST, 0 } };
    akidb__pq_values v[2] = { { .i64 = ids }, { .f32 = vec, .offsets = off } };
    const int configs[3][2] = { { 1, 1 }, { 1, 0 }, { 0, 0 } };
    for (int ci = 0; ci < 3; ci++) {
        akidb__pqw_options o = { configs[ci][0], configs[ci][1], 0, NULL, NULL, 0, NULL };
        membuf m = { .fail_at = -1 };
        m.p = malloc(24u << 20);
        m.cap = 24u << 20;
        double best_w = 1e9, best_r = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            m.len = 0;
            double t0 = now_s();
            akidb__pqw *w;
            ASSERT_OK(akidb__pqw_open(d, 2, &o, NULL, mem_sink, &m, &w));
            ASSERT_OK(akidb__pqw_write_row_group(w, N, v));
            ASSERT_OK(akidb__pqw_finish(w, NULL));
            akidb__pqw_free(w);
            double t1 = now_s();
            akidb__pqr *r;
            ASSERT_OK(akidb__pqr_open(m.p, m.len, NULL, &r));
            akidb__pqr_values a, b;
            ASSERT_OK(akidb__pqr_read(r, 0, 0, &a));
            ASSERT_OK(akidb__pqr_read(r, 0, 1, &b));
            double t2 = now_s();
            ASSERT_EQ(b.offsets[N], (uint64_t)N * DIM);
            ASSERT(memcmp(b.f32, vec, (size_t)N * DIM * 4) == 0);
            ASSERT_EQ(a.i64[N - 1], N - 1);
            akidb__pqr_values_free(r, &a);
            akidb__pqr_values_free(r, &b);
            akidb__pqr_free(r);
            if (t1 - t0 < best_w)
                best_w = t1 - t0;
            if (t2 - t1 < best_r)
                best_r = t2 - t1;
        }
        double mb = (double)N * DIM * 4 / 1e6;
        fprintf(stderr, "  10k x 512 %s%s: %.1f MB -> %.1f MB; write %.1f ms (%.0f MB/s), "
                "read %.1f ms (%.0f MB/s)\n", configs[ci][0] ? "zstd-1" : "uncompressed",
                configs[ci][1] ? " + BYTE_STREAM_SPLIT" : "", mb, (double)m.len / 1e6,
                best_w * 1e3, mb / best_w, best_r * 1e3, mb / best_r);
        ASSERT_LE(best_w, 5.0);
        ASSERT_LE(best_r, 5.0);
        free(m.p);
    }
    free(vec);
    free(off);
    free(ids);
}

/* ---- concurrency and size limits ----------------------------------------------------- */

typedef struct par_arg {
    akidb__pqr *r;
    const float *expect;
    size_t n_floats;
    int rc;
} par_arg;

static void *par_read(void *p)
{
    par_arg *a = p;
    for (int it = 0; it < 20 && a->rc == AKIDB_OK; it++) {
        akidb__pqr_values v;
        a->rc = akidb__pqr_read(a->r, 0, 1, &v);
        if (a->rc == AKIDB_OK) {
            if (v.offsets[v.n_rows] != a->n_floats ||
                memcmp(v.f32, a->expect, a->n_floats * 4) != 0)
                a->rc = -1;
            akidb__pqr_values_free(a->r, &v);
        }
    }
    return NULL;
}

/* One reader, several threads reading at once (restore reads columns in
 * parallel): each read keeps its scratch to itself. */
TEST(parquet_concurrent_reads)
{
    enum { N = 500, DIM = 64, T = 4 };
    akidb__pq_column_def d[2] = { { "id", AKIDB__PQ_INT64, 0 },
                                  { "v", AKIDB__PQ_FLOAT_LIST, 0 } };
    float *f = malloc(N * DIM * 4);
    uint64_t off[N + 1];
    int64_t ids[N];
    for (size_t i = 0; i < N * DIM; i++)
        f[i] = (float)(rnd() % 1000) / 7.0f;
    for (size_t i = 0; i <= N; i++)
        off[i] = i * DIM;
    for (size_t i = 0; i < N; i++)
        ids[i] = (int64_t)i;
    akidb__pq_values v[2] = { { .i64 = ids }, { .f32 = f, .offsets = off } };
    akidb__pqw_options o = { 1, 1, 4096, NULL, NULL, 0, NULL };
    membuf m = { .fail_at = -1 };
    akidb__pqw *w;
    ASSERT_OK(akidb__pqw_open(d, 2, &o, NULL, mem_sink, &m, &w));
    ASSERT_OK(akidb__pqw_write_row_group(w, N, v));
    ASSERT_OK(akidb__pqw_finish(w, NULL));
    akidb__pqw_free(w);
    akidb__pqr *r = open_ok(&m);
    pthread_t th[T];
    par_arg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (par_arg){ r, f, N * DIM, AKIDB_OK };
        ASSERT_EQ(pthread_create(&th[i], NULL, par_read, &args[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ASSERT_OK(args[i].rc);
    }
    akidb__pqr_free(r);
    free(m.p);
    free(f);
}

/* A run of null rows costs a few bytes: a consistent file of 2^27 nulls is
 * refused at open (INVALID, not an allocation of a gigabyte); one of 2^20
 * is read. */
TEST(parquet_null_run_limits)
{
    const snode s[] = { { "schema", -1, -1, 1, -1, 0, 0 }, { "x", 1, 1, 0, -1, 0, 0 } };
    const int64_t counts[2] = { (int64_t)1 << 27, (int64_t)1 << 20 };
    for (int i = 0; i < 2; i++) {
        rchunk c = { .type = 1, .codec = 6, .num_values = counts[i], .n_pages = 1,
                     .path = { "x" }, .n_path = 1 };
        c.pages[0].type = 0;
        c.pages[0].n_values = (int)counts[i];
        hyb_rle(&c.pages[0].def, 0, (size_t)counts[i], 1);
        membuf f = build_file(s, 2, &c, 1, counts[i]);
        akidb__pqr *r;
        int rc = akidb__pqr_open(f.p, f.len, NULL, &r);
        if (i == 0) {
            ASSERT_RC(rc, AKIDB_INVALID);
        } else {
            ASSERT_OK(rc);
            akidb__pqr_values v;
            ASSERT_OK(akidb__pqr_read(r, 0, 0, &v));
            ASSERT_EQ(v.n_rows, counts[i]);
            ASSERT(v.nulls && v.nulls[0] && v.nulls[counts[i] - 1]);
            akidb__pqr_values_free(r, &v);
            akidb__pqr_free(r);
        }
        free(f.p);
    }
}

/* ---- footer facts checked against each other ---------------------------------------- */

/* akidb__pqr_open of f gives rc, and the message holds every string given
 * (a NULL ends the list). */
static void open_fails(const unsigned char *p, size_t len, int rc, ...)
{
    unsigned char *copy = malloc(len);     /* exact size: ASan sees overreads */
    ASSERT(copy);
    memcpy(copy, p, len);
    akidb__pqr *r = NULL;
    int got = akidb__pqr_open(copy, len, NULL, &r);
    const char *msg = akidb_errmsg(NULL);
    if (got != rc)
        akt_fail(__FILE__, __LINE__, "open: rc %d (%s), expected %d: %s", got, akidb_errstr(got),
                 rc, msg);
    ASSERT(r == NULL);
    va_list ap;
    va_start(ap, rc);
    for (const char *want; (want = va_arg(ap, const char *)) != NULL; )
        if (!strstr(msg, want))
            akt_fail(__FILE__, __LINE__, "message \"%s\" lacks \"%s\"", msg, want);
    va_end(ap);
    free(copy);
}

/* Offsets of the occurrences of s in the footer of f, in file order. */
static size_t footer_find(const membuf *f, const char *s, size_t *at, size_t max)
{
    uint32_t flen;
    memcpy(&flen, f->p + f->len - 8, 4);
    const size_t start = f->len - 8 - flen, n = strlen(s);
    size_t k = 0;
    for (size_t i = start; i + n <= f->len - 8; i++)
        if (memcmp(f->p + i, s, n) == 0) {
            ASSERT(k < max);
            at[k++] = i;
        }
    return k;
}

/* Chunks are matched to schema leaves by position; path_in_schema says which
 * leaf a chunk holds.  Files of our writer whose column names differ in one
 * byte, with that byte changed in the footer's strings only (same length,
 * so the Thrift stays intact and no page CRC changes). */
TEST(parquet_read_path_in_schema_checked)
{
    akidb__pq_column_def d[3] = { { "colA", AKIDB__PQ_INT64, 0 },
                                  { "colB", AKIDB__PQ_INT64, 0 },
                                  { "vector", AKIDB__PQ_FLOAT_LIST, 0 } };
    const int64_t a[4] = { 1, 2, 3, 4 }, b[4] = { 5, 6, 7, 8 };
    const float fl[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    const uint64_t off[5] = { 0, 2, 4, 6, 8 };
    akidb__pq_values v[3] = { { .i64 = a }, { .i64 = b }, { .f32 = fl, .offsets = off } };
    akidb__pqw_options o = { 0, 0, 0, NULL, NULL, 0, "akidb test" };
    membuf m = { .fail_at = -1 };
    akidb__pqw *w;
    ASSERT_OK(akidb__pqw_open(d, 3, &o, NULL, mem_sink, &m, &w));
    ASSERT_OK(akidb__pqw_write_row_group(w, 4, v));
    ASSERT_OK(akidb__pqw_write_row_group(w, 4, v));
    ASSERT_OK(akidb__pqw_finish(w, NULL));
    akidb__pqw_free(w);
    akidb__pqr *r = open_ok(&m);
    akidb__pqr_free(r);

    /* each name: once in the schema, then once per row group */
    size_t at_a[8], at_b[8], at_e[8];
    ASSERT_EQ(footer_find(&m, "colA", at_a, 8), 3);
    ASSERT_EQ(footer_find(&m, "colB", at_b, 8), 3);
    ASSERT_EQ(footer_find(&m, "element", at_e, 8), 3);
    ASSERT(at_a[0] < at_b[0] && at_b[0] < at_e[0] && at_e[0] < at_a[1]);
    unsigned char *c = malloc(m.len);

    /* row group 1 lists its first two chunks swapped (same type: only the
     * paths tell) */
    memcpy(c, m.p, m.len);
    c[at_a[2] + 3] = 'B';
    c[at_b[2] + 3] = 'A';
    open_fails(c, m.len, AKIDB_CORRUPT, "at file offset",
               "row group 1, column 0: path_in_schema is colB, the schema says colA", NULL);

    /* a damaged byte in a nested path */
    memcpy(c, m.p, m.len);
    c[at_e[1] + 6] = 'X';
    open_fails(c, m.len, AKIDB_CORRUPT, "at file offset",
               "row group 0, column 2: path_in_schema is vector.list.elemenX, the schema says "
               "vector.list.element", NULL);

    /* a damaged byte in the schema's name: the chunks no longer match it */
    memcpy(c, m.p, m.len);
    c[at_a[0] + 2] = 'x';
    open_fails(c, m.len, AKIDB_CORRUPT,
               "row group 0, column 0: path_in_schema is colA, the schema says coxA", NULL);

    /* a byte that is not printable is shown escaped */
    memcpy(c, m.p, m.len);
    c[at_b[1] + 1] = 0x01;
    open_fails(c, m.len, AKIDB_CORRUPT,
               "row group 0, column 1: path_in_schema is c\\x01lB, the schema says colB", NULL);
    free(c);
    free(m.p);
}

/* path_in_schema and type of hand-built chunks: shorter, empty, missing,
 * and a physical type other than the schema's. */
TEST(parquet_read_chunk_meta_against_schema)
{
    const snode schema[] = {
        { "schema", -1, -1, 2, -1, 0, 0 },
        { "id", 2, 0, 0, -1, 0, 0 },
        { "vec", -1, 1, 1, 3, 3, 0 },
        { "list", -1, 2, 1, -1, 0, 0 },
        { "item", 4, 1, 0, -1, 0, 0 },
    };
    for (int variant = 0; variant < 5; variant++) {
        rchunk ch[2] = { { .type = 2, .codec = 0, .num_values = 2, .n_pages = 1,
                           .path = { "id" }, .n_path = 1 },
                         { .type = 4, .codec = 0, .num_values = 2, .n_pages = 1,
                           .path = { "vec", "list", "item" }, .n_path = 3 } };
        int64_t ids[2] = { 10, 11 };
        rpage *p = &ch[0].pages[0];
        p->n_values = 2;
        mb_put(&p->vals, ids, sizeof ids);
        p = &ch[1].pages[0];
        p->n_values = 2;
        hyb_rle(&p->rep, 0, 2, 1);
        hyb_rle(&p->def, 3, 2, 2);
        float fv[2] = { 1.5f, 2.5f };
        mb_put(&p->vals, fv, sizeof fv);
        switch (variant) {
        case 0: break;
        case 1: ch[1].n_path = 2; break;
        case 2: ch[1].n_path = 0; break;
        case 3: ch[1].no_path_field = 1; break;
        case 4:             /* INT32 values where the schema says INT64 */
            ch[0].type = 1;
            ch[0].pages[0].vals.len = 8;
            break;
        }
        membuf f = build_file(schema, 5, ch, 2, 2);
        if (variant == 0) {
            akidb__pqr *r = open_ok(&f);
            akidb__pqr_values out;
            ASSERT_OK(akidb__pqr_read(r, 0, 1, &out));
            ASSERT_EQ(out.offsets[2], 2);
            akidb__pqr_values_free(r, &out);
            akidb__pqr_free(r);
        } else if (variant == 1) {
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset", "row group 0, column 1: "
                       "path_in_schema is vec.list, the schema says vec.list.item", NULL);
        } else if (variant == 2) {
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset", "row group 0, column 1: "
                       "path_in_schema is empty, the schema says vec.list.item", NULL);
        } else if (variant == 3) {
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset",
                       "column metadata lacks path_in_schema", NULL);
        } else {
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset", "row group 0, column 0: "
                       "physical type INT32, the schema says INT64", NULL);
        }
        free(f.p);
    }
}

/* AKIDB_INVALID ("encrypted ... not supported") only for a footer that is
 * consistent and really sets encryption up; a footer that merely contains
 * the field, or chunks without metadata that carry no crypto_metadata, are
 * damage: AKIDB_CORRUPT with the offset. */
TEST(parquet_read_encryption_vs_damage)
{
    const snode schema[] = {
        { "schema", -1, -1, 2, -1, 0, 0 },
        { "a", 2, 0, 0, -1, 0, 0 },
        { "b", 2, 0, 0, -1, 0, 0 },
    };
    enum { PLAIN, ENC_OK, ENC_BAD_STRUCT, ENC_BAD_ROWS, ENC_BAD_PATH, ENC_NO_META_CRYPTO,
           ENC_NO_META, NO_META, NO_META_CRYPTO, META_CRYPTO, N_CASES };
    for (int k = 0; k < N_CASES; k++) {
        rchunk ch[2] = { { .type = 2, .codec = 0, .num_values = 2, .n_pages = 1,
                           .path = { "a" }, .n_path = 1 },
                         { .type = 2, .codec = 6, .num_values = 2, .n_pages = 1,
                           .path = { "b" }, .n_path = 1 } };
        int64_t vals[2] = { 3, 4 };
        for (int i = 0; i < 2; i++) {
            ch[i].pages[0].n_values = 2;
            mb_put(&ch[i].pages[0].vals, vals, sizeof vals);
        }
        bfopts o = { 0, 0 };
        switch (k) {
        case ENC_OK: o.encryption = 1; break;
        case ENC_BAD_STRUCT: o.encryption = 2; break;
        case ENC_BAD_ROWS: o.encryption = 1; o.file_rows = 3; break;
        case ENC_BAD_PATH: o.encryption = 1; ch[1].path[0] = "a"; break;
        case ENC_NO_META_CRYPTO: o.encryption = 1; ch[1].no_meta = ch[1].crypto = 1; break;
        case ENC_NO_META: o.encryption = 1; ch[1].no_meta = 1; ch[0].crypto = 1; break;
        case NO_META: ch[1].no_meta = 1; break;
        case NO_META_CRYPTO: ch[1].no_meta = ch[1].crypto = 1; break;
        case META_CRYPTO: ch[1].crypto = 1; break;
        }
        membuf f = build_file_x(schema, 3, ch, 2, 2, &o);
        switch (k) {
        case PLAIN: {
            akidb__pqr *r = open_ok(&f);
            akidb__pqr_free(r);
            /* "PARE" at both ends: an encrypted footer */
            memcpy(f.p, "PARE", 4);
            memcpy(f.p + f.len - 4, "PARE", 4);
            open_fails(f.p, f.len, AKIDB_INVALID, "is encrypted", "not supported", NULL);
            /* ... but then the footer length must still fit */
            uint32_t flen, big = (uint32_t)f.len;
            memcpy(&flen, f.p + f.len - 8, 4);
            memcpy(f.p + f.len - 8, &big, 4);
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset", "footer length", NULL);
            memcpy(f.p + f.len - 8, &flen, 4);
            /* only one end says PARE: damage */
            memcpy(f.p, "PAR1", 4);
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset", "trailing magic PARE", NULL);
            memcpy(f.p, "PARE", 4);
            memcpy(f.p + f.len - 4, "PAR1", 4);
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset", "leading magic PARE", NULL);
            break;
        }
        case ENC_OK:
        case ENC_NO_META_CRYPTO:
            open_fails(f.p, f.len, AKIDB_INVALID, "at file offset", "encryption_algorithm",
                       "encrypted columns are not supported", NULL);
            break;
        case ENC_BAD_STRUCT:
            open_fails(f.p, f.len, AKIDB_CORRUPT, "footer at file offset", "unknown field type",
                       NULL);
            break;
        case ENC_BAD_ROWS:
            open_fails(f.p, f.len, AKIDB_CORRUPT, "footer at file offset",
                       "the file has 3 rows, its row groups 2", NULL);
            break;
        case ENC_BAD_PATH:
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset",
                       "row group 0, column 1: path_in_schema is a, the schema says b", NULL);
            break;
        case ENC_NO_META:
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset",
                       "row group 0: column chunk 1 has no metadata and no crypto_metadata",
                       NULL);
            break;
        case NO_META:
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset",
                       "row group 0: column chunk 1 has no metadata", NULL);
            break;
        case NO_META_CRYPTO:
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset",
                       "column chunk 1 has no metadata (crypto_metadata, but the file has no "
                       "encryption_algorithm)", NULL);
            break;
        case META_CRYPTO:
            open_fails(f.p, f.len, AKIDB_CORRUPT, "at file offset",
                       "column chunk 1 has crypto_metadata, but the file has no "
                       "encryption_algorithm", NULL);
            break;
        }
        free(f.p);
    }
}

/* ---- the snapshot loader's limits on ids -------------------------------- */

/* A one-row snapshot (dim 2, L2, M 4) with the given id and
 * akidb.next_id, written by our writer, loaded into a fresh collection;
 * with keep, that collection is handed over (it refers to *env). */
static int load_one_row_into(akidb__env *env, int64_t id, const char *next_id,
                             uint64_t *next_out, akidb__collection **keep)
{
    static const akidb__pq_column_def cols[] = {
        { "id", AKIDB__PQ_INT64, 0 },          { "external_id", AKIDB__PQ_STRING, 1 },
        { "vector", AKIDB__PQ_FLOAT_LIST, 0 }, { "metadata", AKIDB__PQ_JSON, 1 },
        { "inserted_at", AKIDB__PQ_TIMESTAMP_US, 0 }, { "hnsw_level", AKIDB__PQ_INT32, 0 },
        { "hnsw_links", AKIDB__PQ_INT32_LIST, 0 },
    };
    const char *keys[] = { "akidb.format", "akidb.kind", "akidb.dim", "akidb.metric",
                           "akidb.hnsw_m", "akidb.next_id", "akidb.hnsw_entry_row" };
    const char *vals[] = { "1", "snapshot", "2", "l2", "4", next_id, "0" };
    akidb__pqw_options o;
    memset(&o, 0, sizeof o);
    o.kv_keys = keys;
    o.kv_values = vals;
    o.n_kv = 7;
    int64_t ids[1] = { id }, ts[1] = { 1 };
    float vec[2] = { 0.5f, -1.0f };
    uint64_t vec_off[2] = { 0, 2 }, str_off[2] = { 0, 0 }, link_off[2] = { 0, 1 };
    uint8_t null1[1] = { 1 };
    int32_t level[1] = { 0 }, links[1] = { 0 };
    akidb__pq_values v[7];
    memset(v, 0, sizeof v);
    v[0].i64 = ids;
    v[1].offsets = str_off; v[1].nulls = null1;
    v[2].f32 = vec; v[2].offsets = vec_off;
    v[3].offsets = str_off; v[3].nulls = null1;
    v[4].i64 = ts;
    v[5].i32 = level;
    v[6].i32 = links; v[6].offsets = link_off;
    membuf m = { NULL, 0, 0, -1, 0 };
    akidb__pqw *w = NULL;
    ASSERT_OK(akidb__pqw_open(cols, 7, &o, NULL, mem_sink, &m, &w));
    ASSERT_OK(akidb__pqw_write_row_group(w, 1, v));
    uint64_t bytes;
    ASSERT_OK(akidb__pqw_finish(w, &bytes));
    akidb__pqw_free(w);

    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 2, AKIDB_METRIC_L2);
    cfg.hnsw_m = 4;
    akidb__collection *c = NULL;
    ASSERT_OK(akidb__coll_new("c", &cfg, env, 1, "/nonexistent/1.ckpt", &c));
    int rc = akidb__snap_load(env, m.p, m.len, "one-row", c);
    if (rc == AKIDB_OK && next_out)
        *next_out = akidb__coll_next_id(c);
    if (rc == AKIDB_OK && keep)
        *keep = c;
    else
        akidb__coll_free(c);
    free(m.p);
    return rc;
}

static int load_one_row(int64_t id, const char *next_id, uint64_t *next_out)
{
    akidb__env env;
    memset(&env, 0, sizeof env);
    env.alloc = akidb__default_allocator;
    return load_one_row_into(&env, id, next_id, next_out, NULL);
}

/* Ids are 1..2^63-1 (they are INT64 in the file and in every reader);
 * a next id past 2^63 would wrap to 0, the id of nothing, after the first
 * insert, and no later checkpoint would load.  The loader refuses both. */
TEST(snapshot_load_id_limits)
{
    uint64_t next = 0;
    ASSERT_OK(load_one_row(7, "8", &next));
    ASSERT_EQ(next, 8);
    ASSERT_OK(load_one_row(INT64_MAX, "9223372036854775808", &next));   /* 2^63: full */
    ASSERT_EQ(next, (uint64_t)INT64_MAX + 1);
    ASSERT_RC(load_one_row(7, "9223372036854775809", NULL), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "next id") != NULL);
    ASSERT_RC(load_one_row(7, "18446744073709551615", NULL), AKIDB_CORRUPT);
    ASSERT_RC(load_one_row(-5, "8", NULL), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "out of range") != NULL);
    ASSERT_RC(load_one_row(0, "8", NULL), AKIDB_CORRUPT);
    ASSERT_RC(load_one_row(7, "7", NULL), AKIDB_CORRUPT);                /* not above */
}

/* A collection whose ids are used up (its checkpoint says next id 2^63)
 * refuses new documents with AKIDB_QUOTA and stays usable and reopenable. */
TEST(snapshot_ids_exhausted_is_quota)
{
    char dir[600], ckpt[700];
    snprintf(dir, sizeof dir, "%s/q", akt_dir);
    snprintf(ckpt, sizeof ckpt, "%s/ckpt/1.ckpt", dir);
    akidb_options o;
    akidb_options_init(&o);
    o.sync_mode = AKIDB_SYNC_NONE;
    akidb *db = NULL;
    ASSERT_OK(akidb_open(dir, &o, &db));
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 2, AKIDB_METRIC_L2);
    cfg.hnsw_m = 4;
    ASSERT_OK(akidb_collection_create(db, "c", &cfg));
    float v[2] = { 0.25f, 0.75f };
    const char *ext[1] = { "a" };
    ASSERT_OK(akidb_insert(db, "c", 1, v, ext, NULL, NULL));
    ASSERT_OK(akidb_close(db));   /* checkpoints; the log continues it */

    /* the last log record the checkpoint holds */
    FILE *f = fopen(ckpt, "rb");
    ASSERT(f != NULL);
    unsigned char *buf = malloc(1 << 20);
    ASSERT(buf != NULL);
    size_t len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    akidb__pqr *r = NULL;
    ASSERT_OK(akidb__pqr_open(buf, len, NULL, &r));
    const char *seq_s = akidb__pqr_kv(r, "akidb.last_seq");
    ASSERT(seq_s != NULL);
    uint64_t last_seq = strtoull(seq_s, NULL, 10);
    akidb__pqr_free(r);
    free(buf);

    /* the same collection, but with every id handed out */
    akidb__env env;
    memset(&env, 0, sizeof env);
    env.alloc = akidb__default_allocator;
    akidb__collection *c = NULL;
    ASSERT_OK(load_one_row_into(&env, INT64_MAX, "9223372036854775808", NULL, &c));
    ASSERT_OK(akidb__ckpt_write(&env, c, ckpt, 1, last_seq));
    akidb__coll_free(c);

    ASSERT_OK(akidb_open(dir, &o, &db));
    uint64_t count = 0, id = 0;
    ASSERT_OK(akidb_collection_count(db, "c", &count));
    ASSERT_EQ(count, 1);
    ASSERT_RC(akidb_insert(db, "c", 1, v, NULL, NULL, NULL), AKIDB_QUOTA);
    ASSERT(strstr(akidb_errmsg(NULL), "2^63") != NULL);
    const char *ext_b[1] = { "b" };
    ASSERT_RC(akidb_upsert(db, "c", 1, v, ext_b, NULL, NULL), AKIDB_QUOTA);
    ASSERT_OK(akidb_collection_count(db, "c", &count));
    ASSERT_EQ(count, 1);
    /* the existing document can still be read and deleted */
    akidb_hit hit;
    uint32_t n_hits = 0;
    ASSERT_OK(akidb_search(db, "c", v, 1, NULL, &hit, &n_hits));
    ASSERT_EQ(n_hits, 1);
    ASSERT_EQ(hit.id, (uint64_t)INT64_MAX);
    ASSERT_OK(akidb_delete(db, "c", hit.id));
    ASSERT_RC(akidb_insert(db, "c", 1, v, NULL, NULL, &id), AKIDB_QUOTA);
    ASSERT_OK(akidb_close(db));
    ASSERT_OK(akidb_open(dir, &o, &db));
    ASSERT_OK(akidb_collection_count(db, "c", &count));
    ASSERT_EQ(count, 0);
    ASSERT_OK(akidb_close(db));

    /* a checkpoint whose settings are not the catalog's (M 4 against M 8
     * here) is damage, not something to load */
    char dir2[600], ckpt2[700];
    snprintf(dir2, sizeof dir2, "%s/q2", akt_dir);
    snprintf(ckpt2, sizeof ckpt2, "%s/ckpt/1.ckpt", dir2);
    ASSERT_OK(akidb_open(dir2, &o, &db));
    cfg.hnsw_m = 8;
    ASSERT_OK(akidb_collection_create(db, "c", &cfg));
    ASSERT_OK(akidb_insert(db, "c", 1, v, ext, NULL, NULL));
    ASSERT_OK(akidb_close(db));
    ASSERT_OK(load_one_row_into(&env, 3, "4", NULL, &c));
    ASSERT_OK(akidb__ckpt_write(&env, c, ckpt2, 1, last_seq));
    akidb__coll_free(c);
    ASSERT_RC(akidb_open(dir2, &o, &db), AKIDB_CORRUPT);
    ASSERT(strstr(akidb_errmsg(NULL), "1.ckpt") && strstr(akidb_errmsg(NULL), "M 4"));
}

/* akidb__pqr_plain_spans: where each row's floats lie in an uncompressed
 * file (several row groups, pages cut at row boundaries), checked against
 * the values written; a ZSTD file, a row of another length and a column
 * that is not a float list are refused as not readable in place. */
TEST(parquet_plain_spans)
{
    enum { DIM = 12, ROWS_PER_RG = 700, RGS = 3 };
    akidb__pq_column_def d[2] = { { "id", AKIDB__PQ_INT64, 0 },
                                  { "vector", AKIDB__PQ_FLOAT_LIST, 0 } };
    static float f[RGS * ROWS_PER_RG * DIM];
    static int64_t ids[ROWS_PER_RG];
    static uint64_t off[ROWS_PER_RG + 1];
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        f[i] = (float)i * 0.25f;
    for (int zstd = 0; zstd <= 1; zstd++) {
        akidb__pqw_options o = { .zstd_level = zstd, .page_bytes = 4096 };
        membuf m = { .fail_at = -1 };
        akidb__pqw *w;
        ASSERT_OK(akidb__pqw_open(d, 2, &o, NULL, mem_sink, &m, &w));
        for (int g = 0; g < RGS; g++) {
            for (int r = 0; r <= ROWS_PER_RG; r++)
                off[r] = (uint64_t)r * DIM;
            akidb__pq_values v[2] = { { .i64 = ids },
                                      { .f32 = f + (size_t)g * ROWS_PER_RG * DIM,
                                        .offsets = off } };
            ASSERT_OK(akidb__pqw_write_row_group(w, ROWS_PER_RG, v));
        }
        ASSERT_OK(akidb__pqw_finish(w, NULL));
        akidb__pqw_free(w);
        akidb__pqr *r;
        ASSERT_OK(akidb__pqr_open(m.p, m.len, NULL, &r));
        akidb__pq_span *sp = NULL;
        size_t n = 0;
        int rc = akidb__pqr_plain_spans(r, 1, DIM, &sp, &n);
        if (zstd) {
            ASSERT_RC(rc, AKIDB_INVALID);
            ASSERT(strstr(akidb__errmsg(), "compressed") != NULL);
        } else {
            ASSERT_OK(rc);
            ASSERT(n > (size_t)RGS);   /* 4 KiB pages: several per row group */
            uint64_t next = 0;
            for (size_t i = 0; i < n; i++) {
                ASSERT_EQ(sp[i].first_row, next);
                ASSERT(sp[i].rows > 0);
                ASSERT_LE(sp[i].offset + sp[i].rows * DIM * 4, (uint64_t)m.len);
                ASSERT(memcmp(m.p + sp[i].offset, f + sp[i].first_row * DIM,
                              sp[i].rows * DIM * 4) == 0);
                next += sp[i].rows;
            }
            ASSERT_EQ(next, (uint64_t)RGS * ROWS_PER_RG);
            free(sp);
            /* rows of DIM values are not rows of 7 */
            ASSERT_RC(akidb__pqr_plain_spans(r, 1, 7, &sp, &n), AKIDB_INVALID);
            ASSERT(strstr(akidb__errmsg(), "in place") != NULL);
            ASSERT_RC(akidb__pqr_plain_spans(r, 0, DIM, &sp, &n), AKIDB_INVALID);
            ASSERT_RC(akidb__pqr_plain_spans(r, 7, DIM, &sp, &n), AKIDB_INVALID);
        }
        akidb__pqr_free(r);
        free(m.p);
    }
}
