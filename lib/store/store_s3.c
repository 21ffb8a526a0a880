/*
 * store_s3.c - the object store in an S3 bucket (AWS S3, Ceph radosgw,
 * MinIO, moto, ...), over libcurl, with SigV4 signed by sigv4.c.
 *
 * This is the only file of the library that includes curl/curl.h.
 *
 * Requests (path-style http://endpoint/bucket/key, or virtual-host style
 * http://bucket.endpoint/key):
 *   put    PutObject with Content-MD5 and Content-Type
 *          application/octet-stream; at or above multipart_threshold a
 *          multipart upload whose parts (part_size bytes) go up in
 *          parallel, each thread with its own easy handle; any failure
 *          aborts the upload so no parts are left behind, and a 200 from
 *          CompleteMultipartUpload is parsed for an <Error> inside it.
 *   get    GetObject with Range.  A request of multipart_threshold bytes or
 *          more (or "to the end") first fetches one part_size chunk, whose
 *          Content-Range gives the object's size, then the rest as parallel
 *          ranged GETs into one akidb__out_malloc() buffer, each with If-Match
 *          on the first chunk's ETag so a concurrent replace cannot mix two
 *          versions (it fails with AKIDB_IOERR and the wrapper retries).
 *          That saves the HEAD round trip for the common small whole-object
 *          read.  A range past the end (HTTP 416) is 0 bytes, not an error.
 *   size   HeadObject.
 *   del    DeleteObject (204 even when absent: AKIDB_OK).
 *   list   ListObjectsV2, 1000 keys a page, following
 *          NextContinuationToken while IsTruncated; the XML is parsed here
 *          (Key, Size, IsTruncated, NextContinuationToken) and keys are
 *          XML-unescaped.
 *
 * Errors (retries happen in store.c, never here): transport failures,
 * HTTP 5xx, 429, 400 RequestTimeout and 403 RequestTimeTooSkewed (after
 * correcting our clock from the server's Date) are AKIDB_IOERR; 404 is
 * AKIDB_NOTFOUND (NoSuchBucket is AKIDB_INVALID: a configuration problem);
 * other 4xx are AKIDB_INVALID.  Messages name the method, key, HTTP status
 * and the S3 error Code, never the secret or the Authorization header.  A
 * Retry-After reaches the dispatch layer through
 * akidb__store_hint_retry_after() on the calling thread.
 *
 * Connections: a pool of idle easy handles behind a mutex.  A handle keeps
 * its connection cache across curl_easy_reset(), so keep-alive connections
 * are reused from call to call.  (CURLSH connection sharing is documented
 * as unsafe between concurrent threads, hence a pool.)
 *
 * Global state: curl_global_init() once per process (pthread_once); the
 * library has no other.  Every method is thread safe; the store's fields
 * are immutable after open except the pool (mutex), the request counter,
 * the clock offset and the test hook (atomics).
 */
#include <curl/curl.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/alloc.h"
#include "common/env.h"
#include "common/hash.h"
#include "store/sigv4.h"
#include "store/store.h"
#include "store/store_s3.h"
#include "common/strbuf.h"

#define MIB (1024u * 1024u)
#define POOL_MAX 32             /* idle easy handles kept */
#define MAX_PARTS 10000         /* S3's limit on parts per upload */
#define MAX_CONCURRENCY 64
#define ERROR_BODY_MAX (1u * MIB)
#define XML_BODY_MAX (64u * MIB)
#define MSG_LEN 512

/* ---- process-wide libcurl setup -------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_ALL);
}

/* ---- the store ------------------------------------------------------- */

typedef struct s3 {
    akidb_store base;
    char *scheme;           /* "http" or "https" */
    char *host;             /* Host header and URL authority (bucket. prefixed for vhost) */
    char *uri_base;         /* canonical URI of the bucket: "/bucket" or "" */
    char *region, *bucket, *access_key, *secret_key;
    long connect_timeout_ms, request_timeout_ms;
    uint32_t max_concurrency;
    uint64_t multipart_threshold, part_size;

    pthread_mutex_t lock;   /* guards pool, n_pool */
    CURL *pool[POOL_MAX];
    size_t n_pool;

    atomic_uint_fast64_t n_requests;
    atomic_uint_fast64_t n_connects;    /* new connections opened */
    atomic_int_fast64_t clock_skew_s;   /* server time - our time */
    atomic_uint fail_part;              /* test hook */
} s3;

/* Retry-After seen by the calling thread's last failed request, in ms.  A
 * worker thread's value is carried back to the caller by run_parallel(). */
static _Thread_local uint32_t tls_retry_after_ms;

static CURL *handle_get(s3 *st)
{
    CURL *h = NULL;
    pthread_mutex_lock(&st->lock);
    if (st->n_pool)
        h = st->pool[--st->n_pool];
    pthread_mutex_unlock(&st->lock);
    return h ? h : curl_easy_init();
}

static void handle_put(s3 *st, CURL *h)
{
    /* Reset drops options (pointers into this call's stack) but keeps the
     * live connections. */
    curl_easy_reset(h);
    pthread_mutex_lock(&st->lock);
    if (st->n_pool < POOL_MAX) {
        st->pool[st->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&st->lock);
    if (h)
        curl_easy_cleanup(h);
}

/* ---- one request ----------------------------------------------------- */

typedef struct s3_req {
    const char *method;         /* GET HEAD PUT POST DELETE */
    const char *key;            /* NULL: the bucket itself */
    const char *query;          /* canonical query (akidb__sigv4_query), or NULL */
    const void *body;
    size_t body_len;
    const char *range;          /* Range value, or NULL */
    const char *if_match;
    const char *content_type;
    int content_md5;            /* send Content-MD5 of the body */
    char *dst;                  /* 2xx body goes here (exactly), else a growing buffer */
    size_t dst_cap;
    size_t body_max;            /* limit of a growing 2xx body (0 = XML_BODY_MAX) */
} s3_req;

typedef struct s3_resp {
    long status;
    CURLcode cc;
    char errbuf[CURL_ERROR_SIZE];
    char *body;                 /* akidb_malloc; NUL-terminated when not dst */
    size_t body_len, body_cap;
    int to_dst;                 /* body went to req->dst */
    int overflow, oom;
    int has_length, has_total;
    uint64_t content_length, range_total;
    char etag[256];
    int64_t date;               /* server Date, or -1 */
    uint32_t retry_after_ms;
    /* for the callbacks */
    const s3_req *req;
    size_t upload_pos;
} s3_resp;

static void resp_init(s3_resp *rs, const s3_req *rq)
{
    memset(rs, 0, sizeof *rs);
    rs->req = rq;
    rs->date = -1;
}

static void resp_free(s3_resp *rs)
{
    if (!rs->to_dst)
        akidb__out_free(rs->body);
    rs->body = NULL;
}

/* Take the growing body away from rs (the caller frees it). */
static char *resp_take(s3_resp *rs)
{
    char *b = rs->body;
    rs->body = NULL;
    return b;
}

/* Make room for `need` more bytes (+1 for a NUL) in the growing body.
 * Grows by allocating anew, since akidb__out_malloc() has no realloc. */
static int body_reserve(s3_resp *rs, size_t need, size_t max)
{
    if (rs->body && rs->body_len + need + 1 <= rs->body_cap)
        return 0;
    size_t cap = rs->body_cap ? rs->body_cap : 16384;
    /* Content-Length sizes the buffer once, but is not trusted past max. */
    if (!rs->body && rs->has_length && rs->content_length > cap - 1)
        cap = (size_t)(rs->content_length < max ? rs->content_length : max) + 1;
    while (cap < rs->body_len + need + 1) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = akidb__out_malloc(cap);
    if (!p)
        return -1;
    akidb__advise_huge(&akidb__default_allocator, p, cap);
    if (rs->body) {
        memcpy(p, rs->body, rs->body_len);
        akidb__out_free(rs->body);
    }
    rs->body = p;
    rs->body_cap = cap;
    return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ctx)
{
    s3_resp *rs = ctx;
    const s3_req *rq = rs->req;
    size_t n = size * nmemb;
    int success = rs->status >= 200 && rs->status < 300;
    if (success && rq->dst) {
        rs->to_dst = 1;
        rs->body = rq->dst;
        if (n > rq->dst_cap - rs->body_len) {
            rs->overflow = 1;
            return 0;
        }
        memcpy(rq->dst + rs->body_len, data, n);
        rs->body_len += n;
        return n;
    }
    size_t max = !success ? ERROR_BODY_MAX
                 /* a server that ignores Range sends the whole object */
                 : (rs->status == 200 && rq->range) ? SIZE_MAX - 1
                 : rq->body_max ? rq->body_max : XML_BODY_MAX;
    if (n > max - rs->body_len) {
        rs->overflow = 1;
        return 0;
    }
    if (body_reserve(rs, n, max)) {
        rs->oom = 1;
        return 0;
    }
    memcpy(rs->body + rs->body_len, data, n);
    rs->body_len += n;
    rs->body[rs->body_len] = '\0';
    return n;
}

static int header_is(const char *line, size_t len, const char *name, const char **value,
                     size_t *value_len)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return 0;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *value = v;
    *value_len = (size_t)(end - v);
    return 1;
}

static uint64_t parse_u64(const char *s, size_t len, int *ok)
{
    uint64_t v = 0;
    *ok = len > 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10) {
            *ok = 0;
            return 0;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    s3_resp *rs = ctx;
    size_t n = size * nmemb;
    const char *v;
    size_t vl;
    int ok;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new response (e.g. after 100 Continue): forget the last one. */
        const char *sp = memchr(data, ' ', n);
        rs->status = 0;
        if (sp && (size_t)(data + n - sp) > 4) {
            uint64_t code = parse_u64(sp + 1, 3, &ok);
            rs->status = ok ? (long)code : 0;
        }
        rs->has_length = rs->has_total = 0;
        rs->etag[0] = '\0';
    } else if (header_is(data, n, "content-length", &v, &vl)) {
        rs->content_length = parse_u64(v, vl, &ok);
        rs->has_length = ok;
    } else if (header_is(data, n, "content-range", &v, &vl)) {
        /* "bytes 0-9/1234" */
        const char *slash = memchr(v, '/', vl);
        if (slash) {
            rs->range_total = parse_u64(slash + 1, (size_t)(v + vl - slash - 1), &ok);
            rs->has_total = ok;
        }
    } else if (header_is(data, n, "etag", &v, &vl)) {
        if (vl < sizeof rs->etag) {
            memcpy(rs->etag, v, vl);
            rs->etag[vl] = '\0';
        }
    } else if (header_is(data, n, "date", &v, &vl)) {
        char tmp[64];
        if (vl < sizeof tmp) {
            memcpy(tmp, v, vl);
            tmp[vl] = '\0';
            time_t t = curl_getdate(tmp, NULL);
            rs->date = t == (time_t)-1 ? -1 : (int64_t)t;
        }
    }
    return n;
}

static size_t on_read(char *out, size_t size, size_t nmemb, void *ctx)
{
    s3_resp *rs = ctx;
    size_t left = rs->req->body_len - rs->upload_pos;
    size_t n = size * nmemb < left ? size * nmemb : left;
    if (n)
        memcpy(out, (const char *)rs->req->body + rs->upload_pos, n);
    rs->upload_pos += n;
    return n;
}

/* A reused connection may turn out dead after the body was partly sent;
 * curl then rewinds and resends. */
static int on_seek(void *ctx, curl_off_t offset, int origin)
{
    s3_resp *rs = ctx;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > rs->req->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    rs->upload_pos = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}


/* Append "Name: value" to a curl header list; returns 0 or -1. */
static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    akidb__str b = { 0 };
    akidb__str_cat(&b, name);
    akidb__str_add(&b, ": ", value[0] ? 2 : 1);
    akidb__str_cat(&b, value);
    struct curl_slist *l = b.oom ? NULL : curl_slist_append(*list, b.p);
    free(b.p);
    if (!l)
        return -1;
    *list = l;
    return 0;
}

/* The request's canonical URI (what SigV4 signs: st->uri_base, then the
 * key percent-encoded) into *uri, and the URL curl sends (scheme, host,
 * the same URI, the query) into *url: both from the same strings, so what
 * is signed is what is sent.  Returns 0, or -1 when out of memory. */
static int build_urls(const s3 *st, const s3_req *rq, akidb__str *uri, akidb__str *url)
{
    akidb__str_cat(uri, st->uri_base);
    if (rq->key) {
        size_t klen = strlen(rq->key);
        char *enc = malloc(3 * klen + 1);
        if (!enc)
            return -1;
        akidb__sigv4_encode(enc, rq->key, klen, 1);
        akidb__str_add(uri, "/", 1);
        akidb__str_cat(uri, enc);
        free(enc);
    } else if (!st->uri_base[0]) {
        akidb__str_add(uri, "/", 1);
    }
    akidb__str_cat(url, st->scheme);
    akidb__str_cat(url, "://");
    akidb__str_cat(url, st->host);
    akidb__str_add(url, uri->p ? uri->p : "", uri->len);
    if (rq->query && rq->query[0]) {
        akidb__str_add(url, "?", 1);
        akidb__str_cat(url, rq->query);
    }
    return uri->oom || url->oom ? -1 : 0;
}

/* Sign the request (SigV4 over uri and the headers below) and build the
 * header list curl sends: every signed header under its usual spelling,
 * Authorization, and two that turn curl's defaults off.  *auth holds the
 * Authorization value for the caller to wipe and free.  Returns 0, or -1
 * when out of memory. */
static int sign_headers(const s3 *st, const s3_req *rq, const char *uri,
                        struct curl_slist **hdrs, char **auth)
{
    char amz_date[17], payload_hash[65], md5[25];
    /* the server's clock, as far as a 403 RequestTimeTooSkewed taught it */
    akidb__sigv4_amz_date((int64_t)time(NULL) + atomic_load(&st->clock_skew_s), amz_date);
    akidb__sha256_hex(rq->body, rq->body_len, payload_hash);

    akidb__sigv4_header sh[8];
    size_t n_sh = 0;
    sh[n_sh++] = (akidb__sigv4_header){ "host", st->host };
    sh[n_sh++] = (akidb__sigv4_header){ "x-amz-date", amz_date };
    sh[n_sh++] = (akidb__sigv4_header){ "x-amz-content-sha256", payload_hash };
    if (rq->range)
        sh[n_sh++] = (akidb__sigv4_header){ "range", rq->range };
    if (rq->if_match)
        sh[n_sh++] = (akidb__sigv4_header){ "if-match", rq->if_match };
    if (rq->content_type)
        sh[n_sh++] = (akidb__sigv4_header){ "content-type", rq->content_type };
    if (rq->content_md5) {
        akidb__md5_base64(rq->body, rq->body_len, md5);
        sh[n_sh++] = (akidb__sigv4_header){ "content-md5", md5 };
    }
    akidb__sigv4_req sig = {
        rq->method, uri, rq->query ? rq->query : "", sh, n_sh, payload_hash, amz_date,
        st->region, "s3", st->access_key, st->secret_key
    };
    char sig_hex[65];
    if (akidb__sigv4_sign(&sig, sig_hex, auth))
        return -1;

    /* SigV4 signs lower-case names; send the spelling servers log. */
    static const char *const names[] = { "Host", "x-amz-date", "x-amz-content-sha256", "Range",
                                         "If-Match", "Content-Type", "Content-MD5" };
    for (size_t i = 0; i < n_sh; i++) {
        const char *name = sh[i].name;
        for (size_t j = 0; j < sizeof names / sizeof names[0]; j++)
            if (strcasecmp(names[j], name) == 0)
                name = names[j];
        if (add_header(hdrs, name, sh[i].value))
            return -1;
    }
    /* No 100-continue round trip; no curl-chosen Content-Type on a POST. */
    if (add_header(hdrs, "Authorization", *auth) || add_header(hdrs, "Expect", ""))
        return -1;
    if (!rq->content_type && add_header(hdrs, "Content-Type", ""))
        return -1;
    return 0;
}

/* Options for one request on a pooled handle (reset when it was put back):
 * HTTP/1.1 keep-alive, the store's timeouts, no signals (threads), the
 * response callbacks, and the method with its body. */
static void setup_handle(const s3 *st, CURL *h, const s3_req *rq, s3_resp *rs, const char *url,
                         struct curl_slist *hdrs)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, st->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, st->request_timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, rs->errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, rs);
    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, rs);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, rs);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
    } else if (strcmp(rq->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    }
}

/* Run the request on h: 0 when an HTTP answer arrived (its status, the
 * connections it opened and any Retry-After recorded), -1 on a transport
 * failure (rs->cc, and rs->errbuf never empty). */
static int run_request(s3 *st, CURL *h, s3_resp *rs)
{
    atomic_fetch_add(&st->n_requests, 1);
    rs->cc = curl_easy_perform(h);
    if (rs->cc != CURLE_OK) {
        if (!rs->errbuf[0])
            snprintf(rs->errbuf, sizeof rs->errbuf, "%s", curl_easy_strerror(rs->cc));
        return -1;
    }
    long code = 0;
    long connects = 0;
    curl_off_t retry_after = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    rs->status = code;
    if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
        atomic_fetch_add(&st->n_connects, (uint64_t)connects);
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
        rs->retry_after_ms = retry_after > 3600 ? 3600000u : (uint32_t)retry_after * 1000u;
    return 0;
}

/* Send one request and collect the answer.  Returns 0 when an HTTP
 * answer arrived (any status; rs->status says which), -1 on a transport
 * failure or when out of memory (rs->cc, rs->oom). */
static int perform(s3 *st, const s3_req *rq, s3_resp *rs)
{
    int rc = -1;
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL;
    char *auth = NULL;
    akidb__str uri = { 0 }, url = { 0 };

    resp_init(rs, rq);
    if (build_urls(st, rq, &uri, &url) || sign_headers(st, rq, uri.p, &hdrs, &auth) ||
        !(h = handle_get(st))) {
        rs->oom = 1;
        goto done;
    }
    setup_handle(st, h, rq, rs, url.p, hdrs);
    rc = run_request(st, h, rs);
    handle_put(st, h);
done:
    curl_slist_free_all(hdrs);
    if (auth) {
        /* the Authorization value is a credential: not left in the heap */
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    free(uri.p);
    free(url.p);
    return rc;
}

/* ---- XML ------------------------------------------------------------- */

/* The next <tag>...</tag> in [p, end): *content and *len; *after points
 * past the closing tag.  An empty element (<tag/>) has len 0.  Returns 0
 * when there is none. */
static int xml_next(const char *p, const char *end, const char *tag, const char **content,
                    size_t *len, const char **after)
{
    size_t tl = strlen(tag);
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || (size_t)(end - lt) < tl + 2)
            return 0;
        p = lt + 1;
        if (memcmp(p, tag, tl) != 0)
            continue;
        const char *q = p + tl;
        if (*q != '>' && *q != ' ' && *q != '/' && *q != '\t' && *q != '\r' && *q != '\n')
            continue;
        const char *gt = memchr(q, '>', (size_t)(end - q));
        if (!gt)
            return 0;
        if (gt[-1] == '/') {
            *content = gt + 1;
            *len = 0;
            *after = gt + 1;
            return 1;
        }
        const char *c = gt + 1;
        /* The closing tag: the first "</tag>" after the content. */
        for (const char *s = c; s + tl + 3 <= end; s++) {
            s = memchr(s, '<', (size_t)(end - s));
            if (!s || (size_t)(end - s) < tl + 3)
                return 0;
            if (s[1] == '/' && memcmp(s + 2, tag, tl) == 0 && s[2 + tl] == '>') {
                *content = c;
                *len = (size_t)(s - c);
                *after = s + tl + 3;
                return 1;
            }
        }
        return 0;
    }
    return 0;
}

static void put_utf8(akidb__str *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) { u[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    akidb__str_add(b, u, n);
}

/* XML character data -> text (malloc()ed).  Returns NULL when out of
 * memory or on a malformed reference (*bad set). */
static char *xml_text(const char *s, size_t len, int *bad)
{
    akidb__str b = { 0 };
    *bad = 0;
    akidb__str_add(&b, "", 0);
    for (size_t i = 0; i < len;) {
        if (s[i] != '&') {
            const char *amp = memchr(s + i, '&', len - i);
            size_t n = amp ? (size_t)(amp - (s + i)) : len - i;
            akidb__str_add(&b, s + i, n);
            i += n;
            continue;
        }
        const char *semi = memchr(s + i, ';', len - i < 12 ? len - i : 12);
        if (!semi) {
            *bad = 1;
            break;
        }
        const char *e = s + i + 1;
        size_t el = (size_t)(semi - e);
        if (el == 3 && memcmp(e, "amp", 3) == 0) akidb__str_add(&b, "&", 1);
        else if (el == 2 && memcmp(e, "lt", 2) == 0) akidb__str_add(&b, "<", 1);
        else if (el == 2 && memcmp(e, "gt", 2) == 0) akidb__str_add(&b, ">", 1);
        else if (el == 4 && memcmp(e, "quot", 4) == 0) akidb__str_add(&b, "\"", 1);
        else if (el == 4 && memcmp(e, "apos", 4) == 0) akidb__str_add(&b, "'", 1);
        else if (el >= 2 && e[0] == '#') {
            int hex = e[1] == 'x' || e[1] == 'X';
            uint32_t cp = 0;
            size_t k = hex ? 2 : 1;
            if (k >= el)
                *bad = 1;
            for (; k < el && !*bad; k++) {
                char c = e[k];
                uint32_t d = c >= '0' && c <= '9' ? (uint32_t)(c - '0')
                           : hex && c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
                           : hex && c >= 'A' && c <= 'F' ? (uint32_t)(c - 'A' + 10) : 99;
                if (d > (hex ? 15u : 9u) || cp > 0x10FFFF)
                    *bad = 1;
                cp = cp * (hex ? 16 : 10) + d;
            }
            if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                *bad = 1;
            if (*bad)
                break;
            put_utf8(&b, cp);
        } else {
            *bad = 1;
            break;
        }
        i = (size_t)(semi - s) + 1;
    }
    if (*bad || b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* Copy the text of the first <tag> in body into buf (unescaped,
 * truncated); "" when absent. */
static void xml_get(const char *body, size_t len, const char *tag, char *buf, size_t buf_len)
{
    const char *c, *after;
    size_t cl;
    buf[0] = '\0';
    if (!body || !xml_next(body, body + len, tag, &c, &cl, &after))
        return;
    int bad;
    char *t = xml_text(c, cl, &bad);
    if (t) {
        snprintf(buf, buf_len, "%s", t);
        free(t);
    }
}

/* ---- errors ---------------------------------------------------------- */

/* Does this server error deserve a retry? */
static int transient(long status, const char *code)
{
    return status >= 500 || status == 429 ||
           (status == 400 && strcmp(code, "RequestTimeout") == 0) ||
           (status == 403 && strcmp(code, "RequestTimeTooSkewed") == 0) ||
           strcmp(code, "SlowDown") == 0 || strcmp(code, "InternalError") == 0;
}

/* Raise the error for a failed request: rc by the rules in the header
 * comment, a message with method, key, status and S3 code. */
static int fail(s3 *st, const s3_req *rq, s3_resp *rs)
{
    char qk[160], qm[200];
    const char *what = rq->key ? akidb__quote(qk, sizeof qk, rq->key, 120) : st->bucket;
    const char *kind = rq->key ? "key" : "bucket";
    if (rs->oom)
        return akidb__err(AKIDB_NOMEM, "S3 %s %s \"%s\": out of memory", rq->method, kind, what);
    if (rs->overflow)
        return akidb__err(AKIDB_IOERR, "S3 %s %s \"%s\": the server sent more data than "
                          "requested (HTTP %ld)", rq->method, kind, what, rs->status);
    if (rs->cc != CURLE_OK)
        return akidb__err(AKIDB_IOERR, "S3 %s %s \"%s\": %s (curl error %d)", rq->method, kind,
                          what, rs->errbuf, (int)rs->cc);

    char code[64], message[256];
    xml_get(rs->body, rs->body_len, "Code", code, sizeof code);
    xml_get(rs->body, rs->body_len, "Message", message, sizeof message);
    if (rs->retry_after_ms && rs->retry_after_ms > tls_retry_after_ms)
        tls_retry_after_ms = rs->retry_after_ms;

    int rc;
    if (rs->status >= 200 && rs->status < 300 && code[0])
        rc = AKIDB_IOERR;       /* an <Error> inside a 200 (CompleteMultipartUpload) */
    else if (transient(rs->status, code))
        rc = AKIDB_IOERR;
    else if (rs->status == 404 && strcmp(code, "NoSuchBucket") != 0)
        rc = AKIDB_NOTFOUND;
    else
        rc = AKIDB_INVALID;

    if (rs->status == 403 && strcmp(code, "RequestTimeTooSkewed") == 0 && rs->date >= 0)
        atomic_store(&st->clock_skew_s, rs->date - (int64_t)time(NULL));

    return akidb__err(rc, "S3 %s %s \"%s\": HTTP %ld%s%s%s%s", rq->method, kind, what,
                      rs->status, code[0] ? " " : "", code, message[0] ? ": " : "",
                      message[0] ? akidb__quote(qm, sizeof qm, message, 160) : "");
}

/* ---- running requests in parallel ------------------------------------ */

typedef struct par {
    size_t n_jobs;
    atomic_size_t next;
    atomic_int failed;
    int (*fn)(void *ctx, size_t i);
    void *ctx;
    pthread_mutex_t lock;
    int rc;                     /* the first failure */
    char msg[MSG_LEN];
    uint32_t retry_after_ms;
} par;

static void par_work(par *p)
{
    for (;;) {
        if (atomic_load(&p->failed))
            return;
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_jobs)
            return;
        tls_retry_after_ms = 0;
        int rc = p->fn(p->ctx, i);
        if (rc) {
            pthread_mutex_lock(&p->lock);
            if (!atomic_load(&p->failed)) {
                p->rc = rc;
                snprintf(p->msg, sizeof p->msg, "%s", akidb__errmsg());
            }
            if (tls_retry_after_ms > p->retry_after_ms)
                p->retry_after_ms = tls_retry_after_ms;
            atomic_store(&p->failed, 1);
            pthread_mutex_unlock(&p->lock);
            return;
        }
    }
}

static void *par_thread(void *arg)
{
    par_work(arg);
    return NULL;
}

/* Run fn(ctx, 0..n_jobs-1) on up to `threads` threads (the caller's is one
 * of them); stop starting jobs after the first failure.  Returns its code,
 * with its message raised on the calling thread. */
static int run_parallel(size_t n_jobs, uint32_t threads, int (*fn)(void *, size_t), void *ctx)
{
    par p;
    memset(&p, 0, sizeof p);
    p.n_jobs = n_jobs;
    atomic_init(&p.next, 0);
    atomic_init(&p.failed, 0);
    p.fn = fn;
    p.ctx = ctx;
    pthread_mutex_init(&p.lock, NULL);

    size_t n_threads = threads < n_jobs ? threads : n_jobs;
    pthread_t tid[MAX_CONCURRENCY];
    size_t started = 0;
    for (size_t i = 1; i < n_threads; i++) {
        if (pthread_create(&tid[started], NULL, par_thread, &p) != 0)
            break;      /* fewer threads; the work still gets done */
        started++;
    }
    uint32_t own_retry_after = tls_retry_after_ms;
    par_work(&p);
    for (size_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    pthread_mutex_destroy(&p.lock);
    tls_retry_after_ms = own_retry_after > p.retry_after_ms ? own_retry_after : p.retry_after_ms;
    if (!p.rc)
        return AKIDB_OK;
    return akidb__err(p.rc, "%s", p.msg);
}

/* ---- put ------------------------------------------------------------- */

typedef struct upload {
    s3 *st;
    const char *key;
    const char *upload_id;
    const unsigned char *buf;
    size_t len;
    uint64_t part_size;
    char **etags;               /* per part, malloc()ed */
} upload;

static int upload_part(void *ctx, size_t i)
{
    upload *u = ctx;
    char num[24];
    snprintf(num, sizeof num, "%zu", i + 1);
    akidb__sigv4_param params[2] = { { "partNumber", num }, { "uploadId", u->upload_id } };
    char *query = akidb__sigv4_query(params, 2);
    if (!query)
        return akidb__err(AKIDB_NOMEM, "S3 upload part %s of \"%s\": out of memory", num, u->key);
    size_t off = (size_t)(i * u->part_size);
    size_t n = u->len - off < u->part_size ? u->len - off : (size_t)u->part_size;
    s3_req rq = { .method = "PUT", .key = u->key, .query = query, .body = u->buf + off,
                  .body_len = n, .content_md5 = 1 };
    s3_resp rs;
    int rc = AKIDB_OK;
    if (perform(u->st, &rq, &rs) || rs.status != 200) {
        rc = fail(u->st, &rq, &rs);
    } else if (!rs.etag[0]) {
        rc = akidb__err(AKIDB_IOERR, "S3 PUT key \"%s\" part %s: no ETag in the answer",
                        u->key, num);
    } else if (!(u->etags[i] = strdup(rs.etag))) {
        rc = akidb__err(AKIDB_NOMEM, "S3 PUT key \"%s\" part %s: out of memory", u->key, num);
    } else if (atomic_load(&u->st->fail_part) == i + 1) {
        rc = akidb__err(AKIDB_IOERR, "S3 PUT key \"%s\" part %s: injected failure (test hook)",
                        u->key, num);
    }
    resp_free(&rs);
    free(query);
    return rc;
}

/* Abort an upload, quietly: the caller already has its error.  Tried a
 * few times, since parts left behind cost storage until a lifecycle rule
 * removes them. */
static void abort_upload(s3 *st, const char *key, const char *upload_id)
{
    akidb__sigv4_param param = { "uploadId", upload_id };
    char *query = akidb__sigv4_query(&param, 1);
    if (!query)
        return;
    for (int attempt = 0; attempt < 3; attempt++) {
        s3_req rq = { .method = "DELETE", .key = key, .query = query };
        s3_resp rs;
        int sent = perform(st, &rq, &rs) == 0;
        long status = rs.status;
        resp_free(&rs);
        if (sent && (status < 500 && status != 429))
            break;      /* done (204), or gone already (404 NoSuchUpload) */
    }
    free(query);
}

/* CreateMultipartUpload: *upload_id (malloc'ed) names the new upload. */
static int create_upload(s3 *st, const char *key, char **upload_id)
{
    int rc;
    *upload_id = NULL;
    akidb__sigv4_param create_param = { "uploads", "" };
    char *create_query = akidb__sigv4_query(&create_param, 1);
    if (!create_query)
        return akidb__err(AKIDB_NOMEM, "S3 POST key \"%s\": out of memory", key);
    s3_req crq = { .method = "POST", .key = key, .query = create_query,
                   .content_type = "application/octet-stream" };
    s3_resp crs;
    if (perform(st, &crq, &crs) || crs.status != 200) {
        rc = fail(st, &crq, &crs);
        resp_free(&crs);
        free(create_query);
        return rc;
    }
    char code[64];
    xml_get(crs.body, crs.body_len, "Code", code, sizeof code);
    const char *c, *after;
    size_t cl;
    int bad = 0, found = 0;
    if (crs.body && xml_next(crs.body, crs.body + crs.body_len, "UploadId", &c, &cl, &after)) {
        found = 1;
        *upload_id = xml_text(c, cl, &bad);
    }
    rc = AKIDB_OK;
    if (!*upload_id || !(*upload_id)[0]) {
        int nomem = found && !bad && !*upload_id;
        rc = code[0] ? fail(st, &crq, &crs)
                     : akidb__err(nomem ? AKIDB_NOMEM : AKIDB_IOERR,
                                  "S3 POST key \"%s\": %s", key,
                                  nomem ? "out of memory" : "no UploadId in the answer");
        free(*upload_id);
        *upload_id = NULL;
    }
    resp_free(&crs);
    free(create_query);
    return rc;
}

/* The CompleteMultipartUpload body: the n_parts parts in ascending order,
 * with their ETags XML-escaped.  Returns 0, or -1 when out of memory. */
static int complete_xml(akidb__str *xml, char *const *etags, size_t n_parts)
{
    akidb__str_cat(xml, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < n_parts; i++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", i + 1);
        akidb__str_cat(xml, "<Part><PartNumber>");
        akidb__str_cat(xml, num);
        akidb__str_cat(xml, "</PartNumber><ETag>");
        for (const char *e = etags[i]; *e; e++) {
            if (*e == '"') akidb__str_cat(xml, "&quot;");
            else if (*e == '&') akidb__str_cat(xml, "&amp;");
            else if (*e == '<') akidb__str_cat(xml, "&lt;");
            else if (*e == '>') akidb__str_cat(xml, "&gt;");
            else akidb__str_add(xml, e, 1);
        }
        akidb__str_cat(xml, "</ETag></Part>");
    }
    akidb__str_cat(xml, "</CompleteMultipartUpload>");
    return xml->oom ? -1 : 0;
}

/* CompleteMultipartUpload with the parts' ETags. */
static int complete_upload(s3 *st, const char *key, const char *upload_id, char *const *etags,
                           size_t n_parts)
{
    int rc = AKIDB_OK;
    akidb__str xml = { 0 };
    akidb__sigv4_param complete_param = { "uploadId", upload_id };
    char *complete_query = akidb__sigv4_query(&complete_param, 1);
    if (complete_xml(&xml, etags, n_parts) || !complete_query) {
        rc = akidb__err(AKIDB_NOMEM, "S3 put \"%s\": out of memory", key);
        goto done;
    }
    s3_req prq = { .method = "POST", .key = key, .query = complete_query, .body = xml.p,
                   .body_len = xml.len, .content_type = "application/xml" };
    s3_resp prs;
    if (perform(st, &prq, &prs) || prs.status != 200) {
        rc = fail(st, &prq, &prs);
    } else {
        /* A 200 may still carry an <Error> (the server failed while it was
         * already streaming the answer). */
        char code[64];
        xml_get(prs.body, prs.body_len, "Code", code, sizeof code);
        const char *e_c, *e_after;
        size_t e_len;
        if (code[0] || !prs.body ||
            xml_next(prs.body, prs.body + prs.body_len, "Error", &e_c, &e_len, &e_after))
            rc = code[0] ? fail(st, &prq, &prs)
                         : akidb__err(AKIDB_IOERR, "S3 POST key \"%s\": CompleteMultipartUpload "
                                      "answered 200 with %s", key,
                                      prs.body ? "an <Error>" : "no body");
    }
    resp_free(&prs);
done:
    free(xml.p);
    free(complete_query);
    return rc;
}

static int put_multipart(s3 *st, const char *key, const void *buf, size_t len)
{
    char *upload_id = NULL;
    upload u = { st, key, NULL, buf, len, st->part_size, NULL };

    /* Parts: part_size, made larger if S3's 10,000-part limit needs it. */
    uint64_t n_parts = (len + u.part_size - 1) / u.part_size;
    if (n_parts > MAX_PARTS) {
        u.part_size = ((len + MAX_PARTS - 1) / MAX_PARTS + MIB - 1) / MIB * MIB;
        n_parts = (len + u.part_size - 1) / u.part_size;
    }
    int rc = create_upload(st, key, &upload_id);
    if (rc)
        return rc;
    u.upload_id = upload_id;

    /* From here on, every failure aborts the upload, so no parts are left
     * behind (they would be billed, invisible, until a lifecycle rule). */
    if (!(u.etags = calloc((size_t)n_parts, sizeof *u.etags)))
        rc = akidb__err(AKIDB_NOMEM, "S3 put \"%s\": out of memory", key);
    if (rc == AKIDB_OK)
        rc = run_parallel((size_t)n_parts, st->max_concurrency, upload_part, &u);
    if (rc == AKIDB_OK)
        rc = complete_upload(st, key, upload_id, u.etags, (size_t)n_parts);
    if (rc) {
        /* Abort without losing the message of the real failure. */
        char msg[MSG_LEN];
        snprintf(msg, sizeof msg, "%s", akidb__errmsg());
        abort_upload(st, key, upload_id);
        rc = akidb__err(rc, "%s (multipart upload aborted)", msg);
    }
    if (u.etags)
        for (size_t i = 0; i < n_parts; i++)
            free(u.etags[i]);
    free(u.etags);
    free(upload_id);
    return rc;
}

static int s3_put(akidb_store *s, const char *key, const void *buf, size_t len)
{
    s3 *st = (s3 *)s;
    int rc;
    tls_retry_after_ms = 0;
    if (len >= st->multipart_threshold) {
        rc = put_multipart(st, key, buf, len);
    } else {
        s3_req rq = { .method = "PUT", .key = key, .body = buf, .body_len = len,
                      .content_type = "application/octet-stream", .content_md5 = 1 };
        s3_resp rs;
        rc = (perform(st, &rq, &rs) || rs.status != 200) ? fail(st, &rq, &rs) : AKIDB_OK;
        resp_free(&rs);
    }
    if (rc && tls_retry_after_ms)
        akidb__store_hint_retry_after(tls_retry_after_ms);
    return rc;
}

/* ---- get ------------------------------------------------------------- */

static void format_range(char *out, size_t out_len, uint64_t first, uint64_t n)
{
    if (n == UINT64_MAX || first + n < first || first + n - 1 == UINT64_MAX)
        snprintf(out, out_len, "bytes=%llu-", (unsigned long long)first);
    else
        snprintf(out, out_len, "bytes=%llu-%llu", (unsigned long long)first,
                 (unsigned long long)(first + n - 1));
}

typedef struct download {
    s3 *st;
    const char *key;
    const char *etag;           /* If-Match, or NULL */
    char *buf;                  /* the whole result */
    uint64_t offset;            /* object offset of buf[0] */
    size_t start;               /* first byte of buf the chunks fill */
    size_t len;                 /* bytes in buf */
    uint64_t chunk;
} download;

static int download_chunk(void *ctx, size_t i)
{
    download *d = ctx;
    size_t from = d->start + (size_t)(i * d->chunk);
    size_t n = d->len - from < d->chunk ? d->len - from : (size_t)d->chunk;
    char range[64];
    format_range(range, sizeof range, d->offset + from, n);
    s3_req rq = { .method = "GET", .key = d->key, .range = range, .if_match = d->etag,
                  .dst = d->buf + from, .dst_cap = n };
    s3_resp rs;
    int rc = AKIDB_OK;
    if (perform(d->st, &rq, &rs) || rs.status != 206) {
        if (rs.cc == CURLE_OK && !rs.oom && !rs.overflow && rs.status == 412)
            rc = akidb__err(AKIDB_IOERR, "S3 GET key \"%s\" %s: the object changed while "
                            "it was read (HTTP 412)", d->key, range);
        else if (rs.cc == CURLE_OK && !rs.oom && !rs.overflow && rs.status == 200)
            rc = akidb__err(AKIDB_IOERR, "S3 GET key \"%s\" %s: the server ignored the Range",
                            d->key, range);
        else
            rc = fail(d->st, &rq, &rs);
    } else if (rs.body_len != n) {
        rc = akidb__err(AKIDB_IOERR, "S3 GET key \"%s\" %s: %zu bytes instead of %zu (the "
                        "object changed?)", d->key, range, rs.body_len, n);
    }
    resp_free(&rs);
    return rc;
}

static int s3_size(akidb_store *s, const char *key, uint64_t *size_out);

/* A 0-byte result: a 1-byte buffer (callers free what they get). */
static int empty_result(const char *key, void **buf_out)
{
    if (!(*buf_out = akidb__out_malloc(1)))
        return akidb__err(AKIDB_NOMEM, "S3 GET key \"%s\": out of memory", key);
    return AKIDB_OK;
}

/* The server ignored the Range and sent the whole object (200): keep the
 * want bytes from offset, in the body's own buffer. */
static int slice_whole(s3_resp *rs, const char *key, uint64_t offset, uint64_t want,
                       void **buf_out, size_t *len_out)
{
    size_t total = rs->body_len;
    size_t from = offset < total ? (size_t)offset : total;
    size_t n = want < total - from ? (size_t)want : total - from;
    char *b = resp_take(rs);
    if (!b && !(b = akidb__out_malloc(1)))
        return akidb__err(AKIDB_NOMEM, "S3 GET key \"%s\": out of memory", key);
    memmove(b, b + from, n);
    *buf_out = b;
    *len_out = n;
    return AKIDB_OK;
}

/* The first chunk (head, got bytes from offset) did not reach stop: fetch
 * the rest as parallel ranged GETs into one buffer, each with If-Match on
 * the first chunk's ETag so a concurrent replace cannot mix two versions.
 * Takes head. */
static int get_rest(s3 *st, const char *key, const char *etag, char *head, size_t got,
                    uint64_t offset, uint64_t stop, void **buf_out, size_t *len_out)
{
    if (stop - offset > SIZE_MAX - 1) {
        akidb__out_free(head);
        return akidb__err(AKIDB_INVALID, "S3 GET key \"%s\": %llu bytes do not fit in memory",
                          key, (unsigned long long)(stop - offset));
    }
    download d = { st, key, etag, NULL, offset, got, (size_t)(stop - offset), st->part_size };
    if (!(d.buf = akidb__out_malloc(d.len))) {
        akidb__out_free(head);
        return akidb__err(AKIDB_NOMEM, "S3 GET key \"%s\": out of memory for %zu bytes", key,
                          d.len);
    }
    akidb__advise_huge(&akidb__default_allocator, d.buf, d.len);
    memcpy(d.buf, head, got);
    akidb__out_free(head);
    size_t n_chunks = (size_t)((d.len - got + d.chunk - 1) / d.chunk);
    int rc = run_parallel(n_chunks, st->max_concurrency, download_chunk, &d);
    if (rc) {
        akidb__out_free(d.buf);
        return rc;
    }
    *buf_out = d.buf;
    *len_out = d.len;
    return AKIDB_OK;
}

static int s3_get_impl(s3 *st, const char *key, uint64_t offset, uint64_t len, void **buf_out,
                       size_t *len_out)
{
    *buf_out = NULL;
    *len_out = 0;
    if (len == 0) {
        /* Nothing to read, but the key must exist. */
        uint64_t size;
        int rc = s3_size(&st->base, key, &size);
        return rc ? rc : empty_result(key, buf_out);
    }
    uint64_t end = (len == UINT64_MAX || offset + len < offset) ? UINT64_MAX : offset + len;
    uint64_t want = end - offset;
    /* Small: one request for all of it.  Large or unknown: one chunk to
     * learn the size, then the rest in parallel. */
    uint64_t first = want < st->multipart_threshold ? want : st->part_size;
    if (first > SIZE_MAX - 1)
        return akidb__err(AKIDB_INVALID, "S3 GET key \"%s\": %llu bytes do not fit in memory",
                          key, (unsigned long long)first);
    char range[64];
    format_range(range, sizeof range, offset, first);
    s3_req rq = { .method = "GET", .key = key, .range = range, .body_max = (size_t)first };
    s3_resp rs;
    int rc;
    if (perform(st, &rq, &rs) || (rs.status != 416 && rs.status != 200 && rs.status != 206)) {
        rc = fail(st, &rq, &rs);
        resp_free(&rs);
        return rc;
    }
    if (rs.status == 416) {
        /* offset at or past the end (or an empty object): no bytes. */
        resp_free(&rs);
        return empty_result(key, buf_out);
    }
    if (rs.status == 200)
        return slice_whole(&rs, key, offset, want, buf_out, len_out);
    size_t got = rs.body_len;
    char *head = resp_take(&rs);
    if (!head && !(head = akidb__out_malloc(1)))
        return akidb__err(AKIDB_NOMEM, "S3 GET key \"%s\": out of memory", key);
    if (!rs.has_total && got == first && got < want) {
        /* Without the object's size we cannot tell whether there is more. */
        akidb__out_free(head);
        return akidb__err(AKIDB_IOERR, "S3 GET key \"%s\" %s: HTTP 206 without a usable "
                          "Content-Range", key, range);
    }
    uint64_t total = rs.has_total ? rs.range_total : offset + got;
    uint64_t stop = end < total ? end : total;      /* object offset where we stop */
    if (got >= want || offset + got >= stop) {
        *buf_out = head;
        *len_out = got;
        return AKIDB_OK;
    }
    if (got != first) {
        akidb__out_free(head);
        return akidb__err(AKIDB_IOERR, "S3 GET key \"%s\" %s: %zu bytes instead of %llu",
                          key, range, got, (unsigned long long)first);
    }
    return get_rest(st, key, rs.etag[0] ? rs.etag : NULL, head, got, offset, stop, buf_out,
                    len_out);
}

static int s3_get(akidb_store *s, const char *key, uint64_t offset, uint64_t len,
                  void **buf_out, size_t *len_out)
{
    tls_retry_after_ms = 0;
    int rc = s3_get_impl((s3 *)s, key, offset, len, buf_out, len_out);
    if (rc && tls_retry_after_ms)
        akidb__store_hint_retry_after(tls_retry_after_ms);
    return rc;
}

/* ---- size, delete ---------------------------------------------------- */

static int s3_size(akidb_store *s, const char *key, uint64_t *size_out)
{
    s3 *st = (s3 *)s;
    tls_retry_after_ms = 0;
    s3_req rq = { .method = "HEAD", .key = key };
    s3_resp rs;
    int rc = AKIDB_OK;
    if (perform(st, &rq, &rs) || rs.status != 200)
        rc = fail(st, &rq, &rs);
    else if (!rs.has_length)
        rc = akidb__err(AKIDB_IOERR, "S3 HEAD key \"%s\": no Content-Length in the answer",
                        key);
    else
        *size_out = rs.content_length;
    resp_free(&rs);
    if (rc && tls_retry_after_ms)
        akidb__store_hint_retry_after(tls_retry_after_ms);
    return rc;
}

static int s3_del(akidb_store *s, const char *key)
{
    s3 *st = (s3 *)s;
    tls_retry_after_ms = 0;
    s3_req rq = { .method = "DELETE", .key = key };
    s3_resp rs;
    int rc = AKIDB_OK;
    /* S3 answers 204 for a missing key too; some servers say 404. */
    if (perform(st, &rq, &rs) ||
        (rs.status != 204 && rs.status != 200 && rs.status != 404))
        rc = fail(st, &rq, &rs);
    resp_free(&rs);
    if (rc && tls_retry_after_ms)
        akidb__store_hint_retry_after(tls_retry_after_ms);
    return rc;
}

/* ---- list ------------------------------------------------------------ */

/* One ListObjectsV2 page: call cb per key; *token_out receives the next
 * continuation token (malloc()ed) or NULL at the end. */
static int list_page(s3 *st, const char *prefix, const char *token,
                     int (*cb)(void *, const char *, uint64_t), void *ctx, char **token_out)
{
    *token_out = NULL;
    akidb__sigv4_param params[4] = {
        { "list-type", "2" }, { "max-keys", "1000" }, { "prefix", prefix }, { "continuation-token", token }
    };
    char *query = akidb__sigv4_query(params, token ? 4 : 3);
    if (!query)
        return akidb__err(AKIDB_NOMEM, "S3 list \"%s\": out of memory", prefix);
    s3_req rq = { .method = "GET", .query = query };
    s3_resp rs;
    int rc = AKIDB_OK;
    if (perform(st, &rq, &rs) || rs.status != 200) {
        rc = fail(st, &rq, &rs);
        goto done;
    }
    const char *p = rs.body, *end = rs.body ? rs.body + rs.body_len : NULL;
    const char *c, *after;
    size_t cl;
    if (!p || !xml_next(p, end, "ListBucketResult", &c, &cl, &after)) {
        rc = akidb__err(AKIDB_IOERR, "S3 list bucket \"%s\" prefix \"%s\": the answer is not a "
                        "ListBucketResult", st->bucket, prefix);
        goto done;
    }
    end = c + cl;       /* only look inside the result element */
    char truncated[16];
    xml_get(c, cl, "IsTruncated", truncated, sizeof truncated);
    int is_truncated = strcmp(truncated, "true") == 0;

    const char *q = c;
    const char *item;
    size_t item_len;
    while (rc == AKIDB_OK && xml_next(q, end, "Contents", &item, &item_len, &after)) {
        q = after;
        const char *kc, *sc, *ka, *sa;
        size_t kl, sl;
        int bad = 0, ok = 0;
        if (!xml_next(item, item + item_len, "Key", &kc, &kl, &ka) ||
            !xml_next(item, item + item_len, "Size", &sc, &sl, &sa)) {
            rc = akidb__err(AKIDB_IOERR, "S3 list prefix \"%s\": an entry without Key or Size",
                            prefix);
            break;
        }
        uint64_t size = parse_u64(sc, sl, &ok);
        char *key = xml_text(kc, kl, &bad);
        if (!key || !ok) {
            free(key);
            rc = (!key && !bad) ? akidb__err(AKIDB_NOMEM, "S3 list \"%s\": out of memory", prefix)
                                : akidb__err(AKIDB_IOERR, "S3 list prefix \"%s\": a malformed "
                                             "Key or Size", prefix);
            break;
        }
        rc = cb(ctx, key, size);
        free(key);
    }
    if (rc == AKIDB_OK && is_truncated) {
        int bad = 0;
        if (xml_next(c, end, "NextContinuationToken", &item, &item_len, &after))
            *token_out = xml_text(item, item_len, &bad);
        if (!*token_out || !(*token_out)[0]) {
            free(*token_out);
            *token_out = NULL;
            rc = akidb__err(AKIDB_IOERR, "S3 list prefix \"%s\": truncated answer without a "
                            "NextContinuationToken", prefix);
        } else if (token && strcmp(token, *token_out) == 0) {
            free(*token_out);
            *token_out = NULL;
            rc = akidb__err(AKIDB_IOERR, "S3 list prefix \"%s\": the server repeated the "
                            "continuation token", prefix);
        }
    }
done:
    resp_free(&rs);
    free(query);
    return rc;
}

static int s3_list(akidb_store *s, const char *prefix,
                   int (*cb)(void *ctx, const char *key, uint64_t size), void *ctx)
{
    s3 *st = (s3 *)s;
    char *token = NULL;
    int rc;
    tls_retry_after_ms = 0;
    for (;;) {
        char *next = NULL;
        rc = list_page(st, prefix ? prefix : "", token, cb, ctx, &next);
        free(token);
        token = next;
        if (rc || !token)
            break;
    }
    free(token);
    if (rc && tls_retry_after_ms)
        akidb__store_hint_retry_after(tls_retry_after_ms);
    return rc;
}

/* ---- open, close ----------------------------------------------------- */

static void s3_destroy(akidb_store *s)
{
    s3 *st = (s3 *)s;
    if (!st)
        return;
    for (size_t i = 0; i < st->n_pool; i++)
        curl_easy_cleanup(st->pool[i]);
    pthread_mutex_destroy(&st->lock);
    if (st->secret_key)
        memset(st->secret_key, 0, strlen(st->secret_key));
    free(st->scheme);
    free(st->host);
    free(st->uri_base);
    free(st->region);
    free(st->bucket);
    free(st->access_key);
    free(st->secret_key);
    free(st);
}

static const akidb_store_methods s3_methods = {
    AKIDB_STORE_METHODS_VERSION, s3_get, s3_size, s3_put, s3_del, s3_list, s3_destroy
};

void akidb_s3_config_init_v(akidb_s3_config *cfg, uint32_t version)
{
    if (!cfg)
        return;
    if (version != 1) {   /* the only version so far; see akidb_options_init_v */
        cfg->version = version;
        return;
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->version = version;
    cfg->path_style = 1;
    cfg->connect_timeout_ms = 5000;
    cfg->request_timeout_ms = 60000;
    cfg->max_concurrency = 8;
    cfg->multipart_threshold = 16u * MIB;
    cfg->part_size = 8u * MIB;
}

static int bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 1 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

static char *dup_range(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* endpoint = scheme://host[:port][/]: *scheme ("http" or "https") and
 * the authority (host[:port], a default port left out of Host, as curl
 * would) as authority[0..*alen). */
static int parse_endpoint(const char *ep, const char **scheme, const char **authority,
                          size_t *alen)
{
    char q[96];
    size_t skip;
    if (!ep || !ep[0])
        return akidb__err(AKIDB_INVALID, "S3 config: endpoint is missing");
    if (strncasecmp(ep, "http://", 7) == 0) {
        *scheme = "http";
        skip = 7;
    } else if (strncasecmp(ep, "https://", 8) == 0) {
        *scheme = "https";
        skip = 8;
    } else {
        return akidb__err(AKIDB_INVALID, "S3 config: endpoint \"%s\" must start with http:// "
                          "or https://", akidb__quote(q, sizeof q, ep, 60));
    }
    const char *a = ep + skip;
    size_t n = strcspn(a, "/?#");
    const char *rest = a + n;
    if (n == 0 || strcspn(a, "@ \t\r\n") < n || (rest[0] && strcmp(rest, "/") != 0))
        return akidb__err(AKIDB_INVALID, "S3 config: endpoint \"%s\" must be "
                          "scheme://host[:port] (no path, query or user)",
                          akidb__quote(q, sizeof q, ep, 60));
    if ((*scheme)[4] == '\0' && n > 3 && strncmp(a + n - 3, ":80", 3) == 0)
        n -= 3;
    else if ((*scheme)[4] == 's' && n > 4 && strncmp(a + n - 4, ":443", 4) == 0)
        n -= 4;
    *authority = a;
    *alen = n;
    return AKIDB_OK;
}

/* Everything in cfg but the endpoint, checked before anything is made. */
static int check_config(const akidb_s3_config *cfg)
{
    if (!cfg->bucket || !bucket_ok(cfg->bucket)) {
        char q[96];
        return akidb__err(AKIDB_INVALID, "S3 config: bucket \"%s\" is missing or not a valid "
                          "bucket name (1..255 of A-Z a-z 0-9 . - _)",
                          cfg->bucket ? akidb__quote(q, sizeof q, cfg->bucket, 60) : "");
    }
    if (!cfg->access_key || !cfg->access_key[0])
        return akidb__err(AKIDB_INVALID, "S3 config: access_key is missing");
    if (!cfg->secret_key || !cfg->secret_key[0])
        return akidb__err(AKIDB_INVALID, "S3 config: secret_key is missing");
    if (cfg->region && !cfg->region[0])
        return akidb__err(AKIDB_INVALID, "S3 config: region is empty (NULL means us-east-1)");
    if (cfg->part_size < 5u * MIB || cfg->part_size > 5ull * 1024 * MIB)
        return akidb__err(AKIDB_INVALID, "S3 config: part_size %llu must be 5 MiB..5 GiB",
                          (unsigned long long)cfg->part_size);
    if (cfg->multipart_threshold < 1)
        return akidb__err(AKIDB_INVALID, "S3 config: multipart_threshold must be at least 1");
    if (cfg->max_concurrency < 1 || cfg->max_concurrency > MAX_CONCURRENCY)
        return akidb__err(AKIDB_INVALID, "S3 config: max_concurrency %u must be 1..%d",
                          cfg->max_concurrency, MAX_CONCURRENCY);
    if (cfg->connect_timeout_ms > INT32_MAX || cfg->request_timeout_ms > INT32_MAX)
        return akidb__err(AKIDB_INVALID, "S3 config: connect_timeout_ms/request_timeout_ms "
                          "too large");
    return AKIDB_OK;
}

/* st->host and st->uri_base from the authority: path style keeps the host
 * and puts the bucket in the path; virtual-host style prefixes the host
 * with "bucket.".  Left NULL when out of memory. */
static void set_host(s3 *st, const char *authority, size_t alen, const char *bucket,
                     int path_style)
{
    char *host = dup_range(authority, alen);
    if (!host)
        return;
    /* Lowercase the host (Host is compared case-insensitively, but it is
     * signed byte for byte). */
    for (char *c = host; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    size_t bl = strlen(bucket);
    if (path_style) {
        st->host = host;
        if ((st->uri_base = malloc(bl + 2))) {
            st->uri_base[0] = '/';
            memcpy(st->uri_base + 1, bucket, bl + 1);
        }
        return;
    }
    size_t hl = strlen(host);
    if ((st->host = malloc(bl + hl + 2))) {
        memcpy(st->host, bucket, bl);
        st->host[bl] = '.';
        memcpy(st->host + bl + 1, host, hl + 1);
    }
    free(host);
    st->uri_base = strdup("");
}

int akidb_store_s3_open(const akidb_s3_config *cfg, akidb_store **out)
{
    akidb__err_clear();
    if (!out)
        return akidb__err(AKIDB_MISUSE, "akidb_store_s3_open: out must not be NULL");
    *out = NULL;
    if (!cfg)
        return akidb__err(AKIDB_MISUSE, "akidb_store_s3_open: cfg must not be NULL");
    if (cfg->version < 1)
        return akidb__err(AKIDB_INVALID, "S3 config: version %u (fill the struct with "
                          "akidb_s3_config_init())", cfg->version);
    const char *scheme = NULL, *authority = NULL;
    size_t alen = 0;
    int rc = parse_endpoint(cfg->endpoint, &scheme, &authority, &alen);
    if (rc || (rc = check_config(cfg)))
        return rc;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return akidb__err(AKIDB_ERROR, "S3: curl_global_init failed: %s",
                          curl_easy_strerror(curl_init_rc));

    s3 *st = calloc(1, sizeof *st);
    if (!st)
        return akidb__err(AKIDB_NOMEM, "S3 open: out of memory");
    st->base.methods = &s3_methods;
    pthread_mutex_init(&st->lock, NULL);
    atomic_init(&st->n_requests, 0);
    atomic_init(&st->n_connects, 0);
    atomic_init(&st->clock_skew_s, 0);
    atomic_init(&st->fail_part, 0);
    st->scheme = strdup(scheme);
    st->region = strdup(cfg->region ? cfg->region : "us-east-1");
    st->bucket = strdup(cfg->bucket);
    st->access_key = strdup(cfg->access_key);
    st->secret_key = strdup(cfg->secret_key);
    set_host(st, authority, alen, cfg->bucket, cfg->path_style);
    st->connect_timeout_ms = (long)cfg->connect_timeout_ms;
    st->request_timeout_ms = (long)cfg->request_timeout_ms;
    st->max_concurrency = cfg->max_concurrency;
    st->multipart_threshold = cfg->multipart_threshold;
    st->part_size = cfg->part_size;
    if (!st->scheme || !st->region || !st->bucket || !st->access_key || !st->secret_key ||
        !st->host || !st->uri_base) {
        s3_destroy(&st->base);
        return akidb__err(AKIDB_NOMEM, "S3 open: out of memory");
    }
    *out = &st->base;
    return AKIDB_OK;
}

/* ---- test controls (store_s3.h) -------------------------------------- */

uint64_t akidb__s3_request_count(akidb_store *s)
{
    return atomic_load(&((s3 *)s)->n_requests);
}

uint64_t akidb__s3_connect_count(akidb_store *s)
{
    return atomic_load(&((s3 *)s)->n_connects);
}

void akidb__s3_test_fail_part(akidb_store *s, uint32_t part_number)
{
    atomic_store(&((s3 *)s)->fail_part, part_number);
}

int akidb__s3_test_request(akidb_store *s, const char *method, const char *key,
                           const akidb__sigv4_param *params, size_t n_params,
                           long *status_out, char **body_out, size_t *body_len_out)
{
    s3 *st = (s3 *)s;
    *status_out = 0;
    *body_out = NULL;
    *body_len_out = 0;
    char *query = akidb__sigv4_query(params, n_params);
    if (!query)
        return akidb__err(AKIDB_NOMEM, "S3 test request: out of memory");
    s3_req rq = { .method = method, .key = key, .query = query };
    s3_resp rs;
    int rc = AKIDB_OK;
    if (perform(st, &rq, &rs)) {
        rc = fail(st, &rq, &rs);
    } else {
        *status_out = rs.status;
        *body_len_out = rs.body_len;
        *body_out = resp_take(&rs);
        if (!*body_out && (*body_out = akidb__out_malloc(1)))
            (*body_out)[0] = '\0';
    }
    resp_free(&rs);
    free(query);
    return rc;
}
