/*
 * json.h - JSON in (jansson, with the checks a network server needs) and
 * JSON out (a small streaming writer).
 *
 * In: request bodies are untrusted.  jx_parse() refuses deep nesting
 * before jansson sees the text (jansson's own limit is 2048 levels and
 * its error says little), duplicate keys, invalid UTF-8 and any top level
 * that is not an object; the jx_get_* helpers give messages that name the
 * field and what was expected, so every 400 tells the client what to fix.
 *
 * Out: responses are written with `jw`, not built as jansson trees: it is
 * faster on the hot search path, prints a float with the 9 significant
 * digits that round-trip it (jansson prints every real with 17), and it
 * can embed stored metadata text as it is, so a double in a user's
 * metadata comes back with every digit it went in with.
 *
 * Reusable: includes nothing from the rest of the server.  Thread safe
 * (no shared state); used on the loop thread and in the thread pool.
 */
#ifndef AKIDB_SERVER_JSON_H
#define AKIDB_SERVER_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* ---- input */

/* Parse `p` (n bytes) as one JSON object.  NULL on error with a message in
 * err: empty body, nesting deeper than max_depth, syntax (with the
 * position), duplicate key, invalid UTF-8, or a top level that is not an
 * object.  The caller owns the result (json_decref). */
json_t *jx_parse(const char *p, size_t n, int max_depth, char *err, size_t err_len);

/* 0 if every key of `obj` is in the NULL-terminated `allowed` list, else
 * -1 with "unknown field 'x'" in err. */
int jx_only(json_t *obj, const char *const *allowed, const char *where, char *err,
            size_t err_len);

/* Typed field readers: return 1 (found and valid), 0 (absent or null;
 * *out untouched), -1 (present with a wrong type or out of range; err set). */
int jx_get_uint(json_t *obj, const char *key, uint64_t min, uint64_t max, uint64_t *out,
                char *err, size_t err_len);
int jx_get_bool(json_t *obj, const char *key, int *out, char *err, size_t err_len);
int jx_get_str(json_t *obj, const char *key, const char **out, char *err, size_t err_len);
int jx_get_num(json_t *obj, const char *key, double min, double max, double *out, char *err,
               size_t err_len);

/* Read a JSON array of exactly `dim` numbers into out[0..dim) as floats:
 * every value finite and within float range.  0 or -1 with err naming
 * `what` ("vectors[3].vector") and the offending index. */
int jx_vector(json_t *arr, float *out, size_t dim, const char *what, char *err,
              size_t err_len);

/* 1 if p[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int utf8_valid(const char *p, size_t n);

/* ---- output */

typedef struct jw {
    sbuf *b;
    int depth;
    int after_key;
    unsigned char has_item[256];  /* per depth: a value was written */
} jw;

void jw_init(jw *w, sbuf *b);
void jw_obj(jw *w);
void jw_obj_end(jw *w);
void jw_arr(jw *w);
void jw_arr_end(jw *w);
void jw_key(jw *w, const char *key);
void jw_str(jw *w, const char *s);               /* NULL writes null */
void jw_strn(jw *w, const char *s, size_t n);
void jw_int(jw *w, int64_t v);
void jw_uint(jw *w, uint64_t v);
void jw_float(jw *w, double v);                  /* as float32, shortest; non-finite -> null */
void jw_double(jw *w, double v);                 /* %.17g; non-finite -> null */
void jw_bool(jw *w, int v);
void jw_null(jw *w);
/* Write a jansson value; reals in the shortest form that reads back as
 * the same double (jansson's own dump always prints 17 digits). */
void jw_json(jw *w, const json_t *v);
/* Embed JSON text as a value.  It is checked with jansson first; text
 * that does not parse is written as a JSON string instead. */
void jw_raw_json(jw *w, const char *text);

/* A complete error body {"error":{"code":...,"message":...}} into b. */
void jw_error_body(sbuf *b, const char *code, const char *message);

#endif /* AKIDB_SERVER_JSON_H */
