/*
 * json.c - request parsing checks and the response writer (see json.h).
 */
#include "json.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Input */

/* Deepest nesting of [ and { outside strings; stops counting past max. */
static int nesting_too_deep(const char *p, size_t n, int max)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return 1;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

json_t *jx_parse(const char *p, size_t n, int max_depth, char *err, size_t err_len)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    if (i == n) {
        snprintf(err, err_len, "the request body is empty; a JSON object is expected");
        return NULL;
    }
    if (nesting_too_deep(p, n, max_depth)) {
        snprintf(err, err_len, "the JSON is nested deeper than %d levels", max_depth);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root) {
        snprintf(err, err_len, "malformed JSON at byte %d: %s", je.position, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(err, err_len, "the request body must be a JSON object");
        return NULL;
    }
    return root;
}

int jx_only(json_t *obj, const char *const *allowed, const char *where, char *err,
            size_t err_len)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            /* The key is valid UTF-8 (jansson checked); cap its length. */
            snprintf(err, err_len, "unknown field '%.64s'%s%s", key, where ? " in " : "",
                     where ? where : "");
            return -1;
        }
    }
    return 0;
}

int jx_get_uint(json_t *obj, const char *key, uint64_t min, uint64_t max, uint64_t *out,
                char *err, size_t err_len)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) < min || (uint64_t)json_integer_value(v) > max) {
        snprintf(err, err_len, "'%s' must be an integer in %" PRIu64 "..%" PRIu64, key, min, max);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

int jx_get_num(json_t *obj, const char *key, double min, double max, double *out, char *err,
               size_t err_len)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    if (!(d >= min && d <= max)) {
        snprintf(err, err_len, "'%s' must be a number in %g..%g", key, min, max);
        return -1;
    }
    *out = d;
    return 1;
}

int jx_get_bool(json_t *obj, const char *key, int *out, char *err, size_t err_len)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, err_len, "'%s' must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

int jx_get_str(json_t *obj, const char *key, const char **out, char *err, size_t err_len)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        snprintf(err, err_len, "'%s' must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

int jx_vector(json_t *arr, float *out, size_t dim, const char *what, char *err, size_t err_len)
{
    if (!json_is_array(arr)) {
        snprintf(err, err_len, "'%s' must be an array of %zu numbers", what, dim);
        return -1;
    }
    size_t n = json_array_size(arr);
    if (n != dim) {
        snprintf(err, err_len, "'%s' has %zu values; the collection's dimension is %zu", what,
                 n, dim);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_number(v)) {
            snprintf(err, err_len, "'%s[%zu]' is not a number", what, i);
            return -1;
        }
        double d = json_number_value(v);
        if (!isfinite(d) || fabs(d) > FLT_MAX) {
            snprintf(err, err_len, "'%s[%zu]' is outside the range of a 32-bit float", what, i);
            return -1;
        }
        out[i] = (float)d;
    }
    return 0;
}

int utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* ------------------------------------------------------------------------
 * Output */

void jw_init(jw *w, sbuf *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
}

static void sep(jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->has_item[w->depth])
        sbuf_putc(w->b, ',');
    w->has_item[w->depth] = 1;
}

static void open_(jw *w, char c)
{
    sep(w);
    sbuf_putc(w->b, c);
    if (w->depth < (int)sizeof w->has_item - 1)
        w->depth++;
    w->has_item[w->depth] = 0;
}

static void close_(jw *w, char c)
{
    sbuf_putc(w->b, c);
    if (w->depth > 0)
        w->depth--;
}

void jw_obj(jw *w) { open_(w, '{'); }
void jw_obj_end(jw *w) { close_(w, '}'); }
void jw_arr(jw *w) { open_(w, '['); }
void jw_arr_end(jw *w) { close_(w, ']'); }

static void put_string(sbuf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    sbuf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sbuf_append(b, e, 2);
            i++;
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            sbuf_append(b, e, 6);
            i++;
        } else if (c < 0x80) {
            size_t j = i;
            while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '"' && p[j] != '\\')
                j++;
            sbuf_append(b, s + i, j - i);
            i = j;
        } else {
            /* Copy one valid UTF-8 sequence, or write U+FFFD for a bad byte
             * (messages can quote what a client sent). */
            size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
            if (len && i + len <= n && utf8_valid(s + i, len)) {
                sbuf_append(b, s + i, len);
                i += len;
            } else {
                sbuf_puts(b, "\\ufffd");
                i++;
            }
        }
    }
    sbuf_putc(b, '"');
}

void jw_key(jw *w, const char *key)
{
    sep(w);
    put_string(w->b, key, strlen(key));
    sbuf_putc(w->b, ':');
    w->after_key = 1;
}

void jw_strn(jw *w, const char *s, size_t n)
{
    sep(w);
    put_string(w->b, s, n);
}

void jw_str(jw *w, const char *s)
{
    if (!s) {
        jw_null(w);
        return;
    }
    jw_strn(w, s, strlen(s));
}

void jw_int(jw *w, int64_t v)
{
    sep(w);
    sbuf_printf(w->b, "%" PRId64, v);
}

void jw_uint(jw *w, uint64_t v)
{
    sep(w);
    sbuf_printf(w->b, "%" PRIu64, v);
}

void jw_float(jw *w, double v)
{
    sep(w);
    if (!isfinite(v)) {
        sbuf_puts(w->b, "null");
        return;
    }
    /* The shortest text that reads back as the same float32 (at most 9
     * significant digits): 0.8f prints as 0.8, not 0.800000012. */
    char tmp[40];
    float f = (float)v;
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)f);
        if (strtof(tmp, NULL) == f)
            break;
    }
    sbuf_puts(w->b, tmp);
}

void jw_double(jw *w, double v)
{
    sep(w);
    if (!isfinite(v))
        sbuf_puts(w->b, "null");
    else
        sbuf_printf(w->b, "%.17g", v);
}

/* Shortest %.Ng (N = 1..17) that strtod reads back as exactly v. */
static void put_shortest(sbuf *b, double v)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* Keep a real a real: "1" would read back as an integer. */
    if (!strpbrk(tmp, ".eEn"))
        strcat(tmp, ".0");
    sbuf_puts(b, tmp);
}

void jw_json(jw *w, const json_t *v)
{
    const char *key;
    json_t *x;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        jw_obj(w);
        json_object_foreach((json_t *)v, key, x) {
            jw_key(w, key);
            jw_json(w, x);
        }
        jw_obj_end(w);
        break;
    case JSON_ARRAY:
        jw_arr(w);
        json_array_foreach(v, i, x)
            jw_json(w, x);
        jw_arr_end(w);
        break;
    case JSON_STRING:
        jw_strn(w, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        jw_int(w, json_integer_value(v));
        break;
    case JSON_REAL:
        sep(w);
        if (isfinite(json_real_value(v)))
            put_shortest(w->b, json_real_value(v));
        else
            sbuf_puts(w->b, "null");
        break;
    case JSON_TRUE:
        jw_bool(w, 1);
        break;
    case JSON_FALSE:
        jw_bool(w, 0);
        break;
    default:
        jw_null(w);
        break;
    }
}

void jw_bool(jw *w, int v)
{
    sep(w);
    sbuf_puts(w->b, v ? "true" : "false");
}

void jw_null(jw *w)
{
    sep(w);
    sbuf_puts(w->b, "null");
}

void jw_raw_json(jw *w, const char *text)
{
    json_error_t je;
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!v) {
        jw_str(w, text);
        return;
    }
    json_decref(v);
    sep(w);
    /* Valid JSON: drop a trailing newline or spaces, keep the rest. */
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '\r' ||
                 text[n - 1] == '\t'))
        n--;
    sbuf_append(w->b, text, n);
}

void jw_error_body(sbuf *b, const char *code, const char *message)
{
    jw w;
    jw_init(&w, b);
    jw_obj(&w);
    jw_key(&w, "error");
    jw_obj(&w);
    jw_key(&w, "code");
    jw_str(&w, code);
    jw_key(&w, "message");
    jw_str(&w, message);
    jw_obj_end(&w);
    jw_obj_end(&w);
}
