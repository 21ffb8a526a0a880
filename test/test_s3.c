/*
 * test_s3.c - the S3 backend.
 *
 * Without a server:
 *   - SigV4 known answers from AWS's documentation, and URI/query encoding;
 *   - config validation and defaults;
 *   - error classification against a scripted fake HTTP server on
 *     127.0.0.1 (5xx, 429 + Retry-After, 400 RequestTimeout, 403, 404,
 *     416, an <Error> inside a 200 CompleteMultipartUpload, transport
 *     failures).
 * With a real server (scripts/with-s3.sh starts one and exports
 * AKIDB_TEST_S3_*; without them these tests FAIL, never pass silently):
 *   the shared conformance suite, awkward keys, pagination over 1,000 keys,
 *   ranged reads, a 40 MiB multipart round trip with no uploads left
 *   behind, an aborted multipart upload, wrong credentials (one request,
 *   no retry storm) and virtual-host addressing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "akidb.h"
#include "runner.h"
#include "common/hash.h"
#include "store/sigv4.h"
#include "store_conformance.h"
#include "store/store_s3.h"

#define MIB (1024u * 1024u)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
}

/* ---- SigV4, no server --------------------------------------------------- */

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EX_ACCESS "AKIAIOSFODNN7EXAMPLE"
#define EX_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

/* AWS's example: GET /test.txt with Range bytes=0-9 from examplebucket. */
TEST(s3_sigv4_known_answer)
{
    akidb__sigv4_header h[] = {
        { "x-amz-date", "20130524T000000Z" },
        { "range", "bytes=0-9" },
        { "x-amz-content-sha256", EMPTY_SHA256 },
        { "host", "examplebucket.s3.amazonaws.com" },
    };
    akidb__sigv4_req r = { "GET", "/test.txt", "", h, 4, EMPTY_SHA256, "20130524T000000Z",
                           "us-east-1", "s3", EX_ACCESS, EX_SECRET };
    char *signed_headers = NULL;
    char *creq = akidb__sigv4_canonical_request(&r, &signed_headers);
    ASSERT(creq != NULL);
    ASSERT_STR_EQ(creq, "GET\n/test.txt\n\n"
                        "host:examplebucket.s3.amazonaws.com\n"
                        "range:bytes=0-9\n"
                        "x-amz-content-sha256:" EMPTY_SHA256 "\n"
                        "x-amz-date:20130524T000000Z\n\n"
                        "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
    ASSERT_STR_EQ(signed_headers, "host;range;x-amz-content-sha256;x-amz-date");
    char *sts = akidb__sigv4_string_to_sign(&r, creq);
    ASSERT_STR_EQ(sts, "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                       "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    char sig[65], *auth = NULL;
    ASSERT_EQ(akidb__sigv4_sign(&r, sig, &auth), 0);
    ASSERT_STR_EQ(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    ASSERT_STR_EQ(auth, "AWS4-HMAC-SHA256 Credential=" EX_ACCESS "/20130524/us-east-1/s3/"
                        "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    free(creq);
    free(signed_headers);
    free(sts);
    free(auth);

    /* Header values are trimmed and inner blanks collapsed; names must be
     * lowercase. */
    akidb__sigv4_header h2[] = {
        { "host", "  examplebucket.s3.amazonaws.com " },
        { "range", "bytes=0-9\t" },
        { "x-amz-content-sha256", EMPTY_SHA256 },
        { "x-amz-date", "20130524T000000Z" },
    };
    r.headers = h2;
    ASSERT_EQ(akidb__sigv4_sign(&r, sig, NULL), 0);
    ASSERT_STR_EQ(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    akidb__sigv4_header h3[] = { { "Host", "x" } };
    r.headers = h3;
    r.n_headers = 1;
    ASSERT_EQ(akidb__sigv4_sign(&r, sig, NULL), -1);
}

/* AWS's other examples: a PUT with a body and an odd key, a valueless
 * query parameter (?lifecycle) and a sorted query (?max-keys=2&prefix=J). */
TEST(s3_sigv4_known_answer_more)
{
    const char *body = "Welcome to Amazon S3.";
    char body_hash[65];
    akidb__sha256_hex(body, strlen(body), body_hash);
    ASSERT_STR_EQ(body_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    char uri[64];
    akidb__sigv4_encode(uri, "/test$file.text", 15, 1);
    ASSERT_STR_EQ(uri, "/test%24file.text");
    akidb__sigv4_header put_h[] = {
        { "host", "examplebucket.s3.amazonaws.com" },
        { "date", "Fri, 24 May 2013 00:00:00 GMT" },
        { "x-amz-date", "20130524T000000Z" },
        { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
        { "x-amz-content-sha256", body_hash },
    };
    akidb__sigv4_req put = { "PUT", uri, "", put_h, 5, body_hash, "20130524T000000Z",
                             "us-east-1", "s3", EX_ACCESS, EX_SECRET };
    char sig[65];
    ASSERT_EQ(akidb__sigv4_sign(&put, sig, NULL), 0);
    ASSERT_STR_EQ(sig, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");

    akidb__sigv4_header get_h[] = {
        { "host", "examplebucket.s3.amazonaws.com" },
        { "x-amz-date", "20130524T000000Z" },
        { "x-amz-content-sha256", EMPTY_SHA256 },
    };
    akidb__sigv4_param lifecycle = { "lifecycle", NULL };
    char *q = akidb__sigv4_query(&lifecycle, 1);
    ASSERT_STR_EQ(q, "lifecycle=");
    akidb__sigv4_req get = { "GET", "/", q, get_h, 3, EMPTY_SHA256, "20130524T000000Z",
                             "us-east-1", "s3", EX_ACCESS, EX_SECRET };
    ASSERT_EQ(akidb__sigv4_sign(&get, sig, NULL), 0);
    ASSERT_STR_EQ(sig, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    free(q);

    akidb__sigv4_param list[] = { { "prefix", "J" }, { "max-keys", "2" } };
    q = akidb__sigv4_query(list, 2);
    ASSERT_STR_EQ(q, "max-keys=2&prefix=J");
    get.canonical_query = q;
    ASSERT_EQ(akidb__sigv4_sign(&get, sig, NULL), 0);
    ASSERT_STR_EQ(sig, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    free(q);
}

TEST(s3_sigv4_encoding)
{
    char out[256];
    /* URI: '/' kept, everything outside A-Za-z0-9-_.~ encoded once. */
    akidb__sigv4_encode(out, "dir/a b+c%d", 11, 1);
    ASSERT_STR_EQ(out, "dir/a%20b%2Bc%25d");
    akidb__sigv4_encode(out, "AZaz09-_.~", 10, 1);
    ASSERT_STR_EQ(out, "AZaz09-_.~");
    akidb__sigv4_encode(out, "*'()!$&,;=:@?#[]\"<>", 19, 1);
    ASSERT_STR_EQ(out, "%2A%27%28%29%21%24%26%2C%3B%3D%3A%40%3F%23%5B%5D%22%3C%3E");
    /* Unicode: UTF-8 bytes, uppercase hex. */
    akidb__sigv4_encode(out, "caf\xc3\xa9/\xe2\x82\xac", 9, 1);
    ASSERT_STR_EQ(out, "caf%C3%A9/%E2%82%AC");
    /* Query: '/' and '=' encoded too. */
    akidb__sigv4_encode(out, "a/b=c", 5, 0);
    ASSERT_STR_EQ(out, "a%2Fb%3Dc");
    ASSERT_EQ(akidb__sigv4_encode(out, "", 0, 0), 0);
    ASSERT_STR_EQ(out, "");

    /* Canonical query: encoded, sorted by encoded name, valueless "k=". */
    akidb__sigv4_param p[] = {
        { "prefix", "dir/a b" },
        { "list-type", "2" },
        { "continuation-token", "1/x=+y" },
        { "max-keys", "1000" },
    };
    char *q = akidb__sigv4_query(p, 4);
    ASSERT_STR_EQ(q, "continuation-token=1%2Fx%3D%2By&list-type=2&max-keys=1000&prefix=dir%2Fa%20b");
    free(q);
    akidb__sigv4_param up[] = { { "uploadId", "2~abc/def+=" }, { "partNumber", "10" } };
    q = akidb__sigv4_query(up, 2);
    ASSERT_STR_EQ(q, "partNumber=10&uploadId=2~abc%2Fdef%2B%3D");
    free(q);
    akidb__sigv4_param byte_order[] = { { "b", "" }, { "a-", NULL }, { "A", "" }, { "a", "2" },
                                        { "a", "1" } };
    q = akidb__sigv4_query(byte_order, 5);
    ASSERT_STR_EQ(q, "A=&a=1&a=2&a-=&b=");
    free(q);
    q = akidb__sigv4_query(NULL, 0);
    ASSERT_STR_EQ(q, "");
    free(q);

    /* Content-MD5 and the date format. */
    char md5[25];
    akidb__md5_base64("", 0, md5);
    ASSERT_STR_EQ(md5, "1B2M2Y8AsgTpgAmY7PhCfg==");
    akidb__md5_base64("hello", 5, md5);
    ASSERT_STR_EQ(md5, "XUFAKrxLKna5cZ2REBfFkg==");
    char date[17];
    akidb__sigv4_amz_date(1369353600, date);
    ASSERT_STR_EQ(date, "20130524T000000Z");
}

/* ---- config, no server ---------------------------------------------------- */

static void base_config(akidb_s3_config *c)
{
    akidb_s3_config_init(c);
    c->endpoint = "http://127.0.0.1:9";
    c->bucket = "bucket";
    c->access_key = "ak";
    c->secret_key = "sk";
}

static void expect_invalid(const akidb_s3_config *c, const char *field)
{
    akidb_store *s = (akidb_store *)1;
    ASSERT_RC(akidb_store_s3_open(c, &s), AKIDB_INVALID);
    ASSERT(s == NULL);
    if (!strstr(akidb_errmsg(NULL), field))
        akt_fail(__FILE__, __LINE__, "message \"%s\" does not name %s", akidb_errmsg(NULL), field);
}

TEST(s3_config)
{
    akidb_s3_config c;
    akidb_s3_config_init(&c);
    ASSERT_EQ(c.version, AKIDB_S3_CONFIG_VERSION);
    ASSERT_EQ(c.path_style, 1);
    ASSERT_EQ(c.connect_timeout_ms, 5000);
    ASSERT_EQ(c.request_timeout_ms, 60000);
    ASSERT_EQ(c.max_concurrency, 8);
    ASSERT_EQ(c.multipart_threshold, 16 * MIB);
    ASSERT_EQ(c.part_size, 8 * MIB);
    ASSERT(c.endpoint == NULL && c.region == NULL && c.bucket == NULL);
    akidb_s3_config_init(NULL);

    akidb_store *s = NULL;
    ASSERT_RC(akidb_store_s3_open(NULL, &s), AKIDB_MISUSE);
    base_config(&c);
    ASSERT_RC(akidb_store_s3_open(&c, NULL), AKIDB_MISUSE);

    base_config(&c); c.endpoint = NULL; expect_invalid(&c, "endpoint");
    base_config(&c); c.endpoint = "ftp://x"; expect_invalid(&c, "endpoint");
    base_config(&c); c.endpoint = "127.0.0.1:9000"; expect_invalid(&c, "endpoint");
    base_config(&c); c.endpoint = "http://"; expect_invalid(&c, "endpoint");
    base_config(&c); c.endpoint = "http://h/path"; expect_invalid(&c, "endpoint");
    base_config(&c); c.endpoint = "http://user:pw@h"; expect_invalid(&c, "endpoint");
    base_config(&c); c.bucket = NULL; expect_invalid(&c, "bucket");
    base_config(&c); c.bucket = ""; expect_invalid(&c, "bucket");
    base_config(&c); c.bucket = "a/b"; expect_invalid(&c, "bucket");
    base_config(&c); c.access_key = NULL; expect_invalid(&c, "access_key");
    base_config(&c); c.access_key = ""; expect_invalid(&c, "access_key");
    base_config(&c); c.secret_key = NULL; expect_invalid(&c, "secret_key");
    base_config(&c); c.region = ""; expect_invalid(&c, "region");
    base_config(&c); c.part_size = 5 * MIB - 1; expect_invalid(&c, "part_size");
    base_config(&c); c.max_concurrency = 0; expect_invalid(&c, "max_concurrency");
    base_config(&c); c.multipart_threshold = 0; expect_invalid(&c, "multipart_threshold");
    base_config(&c); c.version = 0; expect_invalid(&c, "version");

    /* Valid ones open without any request; the secret never shows up in
     * a message. */
    const char *ok_endpoints[] = { "http://127.0.0.1:9", "https://s3.eu-west-1.amazonaws.com",
                                   "HTTP://Example.COM:80/", "http://[::1]:9000" };
    for (size_t i = 0; i < sizeof ok_endpoints / sizeof ok_endpoints[0]; i++) {
        base_config(&c);
        c.endpoint = ok_endpoints[i];
        c.path_style = (int)(i % 2);
        ASSERT_OK(akidb_store_s3_open(&c, &s));
        ASSERT_EQ(akidb__s3_request_count(s), 0);
        akidb_store_close(s);
    }
    akidb_store_close(NULL);
}

/* ---- a scripted fake HTTP server, for error classes ------------------------ */

typedef struct fake_answer {
    int status;                 /* -1: read the request, answer nothing for 1 s */
    const char *headers;        /* extra header lines, each ending in \r\n */
    const char *body;
} fake_answer;

typedef struct fake_server {
    int fd, port;
    pthread_t thread;
    const fake_answer *answers;
    size_t n_answers;
    char lines[16][256];        /* request lines seen */
    char dates[16][20];         /* their x-amz-date */
    size_t n_lines;
} fake_server;

static void *fake_main(void *arg)
{
    fake_server *f = arg;
    for (size_t i = 0; i < f->n_answers; i++) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        /* Read the headers, then Content-Length bytes of body. */
        static char req[1 << 16];
        size_t got = 0;
        char *end = NULL;
        while (!end && got < sizeof req - 1) {
            ssize_t n = read(c, req + got, sizeof req - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            req[got] = '\0';
            end = strstr(req, "\r\n\r\n");
        }
        if (!end) {
            close(c);
            continue;
        }
        size_t body_have = got - (size_t)(end + 4 - req), body_len = 0;
        const char *cl = strcasestr(req, "\r\ncontent-length:");
        if (cl && cl < end)
            body_len = strtoull(cl + 17, NULL, 10);
        while (body_have < body_len) {
            char sink[65536];
            size_t want = body_len - body_have < sizeof sink ? body_len - body_have : sizeof sink;
            ssize_t n = read(c, sink, want);
            if (n <= 0)
                break;
            body_have += (size_t)n;
        }
        if (f->n_lines < 16) {
            size_t l = strcspn(req, "\r");
            const char *d = strcasestr(req, "\r\nx-amz-date: ");
            if (d && d < end)
                snprintf(f->dates[f->n_lines], sizeof f->dates[0], "%.16s", d + 14);
            snprintf(f->lines[f->n_lines++], sizeof f->lines[0], "%.*s", (int)l, req);
        }
        const fake_answer *a = &f->answers[i];
        if (a->status < 0) {
            struct timespec ts = { 1, 0 };
            nanosleep(&ts, NULL);
            close(c);
            continue;
        }
        char head[1024];
        int hl = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
                          "Connection: close\r\n%s\r\n", a->status, strlen(a->body),
                          a->headers ? a->headers : "");
        if (write(c, head, (size_t)hl) < 0 || write(c, a->body, strlen(a->body)) < 0) {
        }
        close(c);
    }
    return NULL;
}

static void fake_start(fake_server *f, const fake_answer *answers, size_t n)
{
    memset(f, 0, sizeof *f);
    f->answers = answers;
    f->n_answers = n;
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(f->fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ(listen(f->fd, 16), 0);
    socklen_t al = sizeof a;
    ASSERT_EQ(getsockname(f->fd, (struct sockaddr *)&a, &al), 0);
    f->port = ntohs(a.sin_port);
    ASSERT_EQ(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(fake_server *f)
{
    shutdown(f->fd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->fd);
}

static akidb_store *fake_store(const fake_server *f, char *endpoint, size_t len)
{
    akidb_s3_config c;
    akidb_s3_config_init(&c);
    snprintf(endpoint, len, "http://127.0.0.1:%d", f->port);
    c.endpoint = endpoint;
    c.bucket = "bkt";
    c.access_key = "AKFAKE";
    c.secret_key = "fake-secret-never-shown";
    c.multipart_threshold = 5 * MIB;
    c.part_size = 5 * MIB;
    c.max_concurrency = 1;
    c.request_timeout_ms = 10000;
    akidb_store *s = NULL;
    ASSERT_OK(akidb_store_s3_open(&c, &s));
    return s;
}

#define ERR(code) "<?xml version=\"1.0\"?><Error><Code>" code "</Code><Message>m &amp; m</Message></Error>"

static void expect_msg(const char *want)
{
    const char *m = akidb_errmsg(NULL);
    if (!strstr(m, want))
        akt_fail(__FILE__, __LINE__, "message \"%s\" lacks \"%s\"", m, want);
    if (strstr(m, "fake-secret") || strstr(m, "Signature=") || strstr(m, "Authorization"))
        akt_fail(__FILE__, __LINE__, "message \"%s\" leaks credentials", m);
}

TEST(s3_error_classes)
{
    static const fake_answer answers[] = {
        { 503, "Retry-After: 1\r\n", ERR("SlowDown") },       /* 0 get: transient */
        { 500, NULL, ERR("InternalError") },                   /* 1 put */
        { 429, NULL, "" },                                     /* 2 del */
        { 400, NULL, ERR("RequestTimeout") },                  /* 3 put */
        { 404, NULL, ERR("NoSuchKey") },                       /* 4 get */
        { 404, NULL, ERR("NoSuchBucket") },                    /* 5 get */
        { 403, NULL, ERR("AccessDenied") },                    /* 6 put */
        { 400, NULL, ERR("BadDigest") },                       /* 7 put */
        { 416, NULL, ERR("InvalidRange") },                    /* 8 get past the end */
        { 204, NULL, "" },                                     /* 9 delete */
        { 200, NULL, "garbage" },                              /* 10 list: not XML */
        { 503, "Retry-After: 1\r\n", ERR("SlowDown") },       /* 11 wrapper: waits >= 1 s */
        { 206, "Content-Range: bytes 0-2/3\r\n", "abc" },      /* 12 then succeeds */
    };
    fake_server f;
    fake_start(&f, answers, sizeof answers / sizeof answers[0]);
    char ep[64];
    akidb_store *s = fake_store(&f, ep, sizeof ep);
    const akidb_store_methods *m = s->methods;
    void *buf = NULL;
    size_t len = 0;

    ASSERT_RC(m->get(s, "k1", 0, UINT64_MAX, &buf, &len), AKIDB_IOERR);
    expect_msg("GET key \"k1\": HTTP 503 SlowDown: m & m");
    ASSERT_RC(m->put(s, "k2", "x", 1), AKIDB_IOERR);
    expect_msg("HTTP 500 InternalError");
    ASSERT_RC(m->del(s, "k3"), AKIDB_IOERR);
    expect_msg("DELETE key \"k3\": HTTP 429");
    ASSERT_RC(m->put(s, "k4", "x", 1), AKIDB_IOERR);
    expect_msg("HTTP 400 RequestTimeout");
    ASSERT_RC(m->get(s, "k5", 0, 10, &buf, &len), AKIDB_NOTFOUND);
    expect_msg("HTTP 404 NoSuchKey");
    ASSERT_RC(m->get(s, "k6", 0, 10, &buf, &len), AKIDB_INVALID);
    expect_msg("HTTP 404 NoSuchBucket");
    ASSERT_RC(m->put(s, "dir/k 7", "x", 1), AKIDB_INVALID);
    expect_msg("PUT key \"dir/k 7\": HTTP 403 AccessDenied");
    ASSERT_RC(m->put(s, "k8", "x", 1), AKIDB_INVALID);
    expect_msg("HTTP 400 BadDigest");
    ASSERT_OK(m->get(s, "k9", 100, 10, &buf, &len));
    ASSERT_EQ(len, 0);
    akidb_free(buf);
    ASSERT_OK(m->del(s, "k10"));
    ASSERT_RC(m->list(s, "p/", sc_collect, NULL), AKIDB_IOERR);
    expect_msg("not a ListBucketResult");

    /* Through the wrapper: the 503's Retry-After (1 s) is honoured. */
    double t0 = now_s();
    ASSERT_OK(akidb_store_get(s, "k12", 0, 3, &buf, &len));
    ASSERT_GE(now_s() - t0, 0.95);
    ASSERT_EQ(len, 3);
    ASSERT(memcmp(buf, "abc", 3) == 0);
    akidb_free(buf);
    ASSERT_EQ(akidb__s3_request_count(s), 13);
    fake_stop(&f);

    /* The requests as sent: path-style, key encoded, Range on reads. */
    ASSERT_STR_EQ(f.lines[0], "GET /bkt/k1 HTTP/1.1");
    ASSERT_STR_EQ(f.lines[6], "PUT /bkt/dir/k%207 HTTP/1.1");
    ASSERT_STR_EQ(f.lines[9], "DELETE /bkt/k10 HTTP/1.1");
    ASSERT_STR_EQ(f.lines[10], "GET /bkt?list-type=2&max-keys=1000&prefix=p%2F HTTP/1.1");
    akidb_store_close(s);
}

/* CompleteMultipartUpload answering 200 with an <Error> inside: the put
 * fails as transient and the upload is aborted. */
TEST(s3_complete_error_in_200_aborts)
{
    static const fake_answer answers[] = {
        { 200, NULL, "<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>big</Key>"
                     "<UploadId>U&amp;1</UploadId></InitiateMultipartUploadResult>" },
        { 200, "ETag: \"e1\"\r\n", "" },
        { 200, "ETag: \"e2\"\r\n", "" },
        { 200, NULL, "<?xml version=\"1.0\"?>\n<Error><Code>InternalError</Code>"
                     "<Message>We encountered an internal error.</Message></Error>" },
        { 204, NULL, "" },
    };
    fake_server f;
    fake_start(&f, answers, sizeof answers / sizeof answers[0]);
    char ep[64];
    akidb_store *s = fake_store(&f, ep, sizeof ep);
    size_t n = 5 * MIB + 100;
    unsigned char *data = malloc(n);
    ASSERT(data);
    fill(data, n, 1);
    ASSERT_RC(s->methods->put(s, "big", data, n), AKIDB_IOERR);
    expect_msg("InternalError");
    expect_msg("aborted");
    fake_stop(&f);
    ASSERT_EQ(f.n_lines, 5);
    ASSERT_STR_EQ(f.lines[0], "POST /bkt/big?uploads= HTTP/1.1");
    ASSERT_STR_EQ(f.lines[1], "PUT /bkt/big?partNumber=1&uploadId=U%261 HTTP/1.1");
    ASSERT_STR_EQ(f.lines[2], "PUT /bkt/big?partNumber=2&uploadId=U%261 HTTP/1.1");
    ASSERT_STR_EQ(f.lines[3], "POST /bkt/big?uploadId=U%261 HTTP/1.1");
    ASSERT_STR_EQ(f.lines[4], "DELETE /bkt/big?uploadId=U%261 HTTP/1.1");
    free(data);
    akidb_store_close(s);
}

/* A server that does not answer: the request timeout fires, AKIDB_IOERR. */
TEST(s3_request_timeout)
{
    static const fake_answer answers[] = { { -1, NULL, "" } };
    fake_server f;
    fake_start(&f, answers, 1);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", f.port);
    akidb_s3_config c;
    base_config(&c);
    c.endpoint = ep;
    c.request_timeout_ms = 300;
    akidb_store *s = NULL;
    ASSERT_OK(akidb_store_s3_open(&c, &s));
    double t0 = now_s();
    void *buf = NULL;
    size_t len;
    ASSERT_RC(s->methods->get(s, "slow", 0, 10, &buf, &len), AKIDB_IOERR);
    double took = now_s() - t0;
    ASSERT_GE(took, 0.25);
    ASSERT_LE(took, 1.5);
    expect_msg("GET key \"slow\"");
    expect_msg("curl error 28");
    fake_stop(&f);
    akidb_store_close(s);
}

/* 403 RequestTimeTooSkewed: transient, and the next request is signed with
 * the server's clock (from its Date header). */
TEST(s3_clock_skew_corrected)
{
    static const fake_answer answers[] = {
        { 403, "Date: Wed, 01 Jan 2031 00:00:00 GMT\r\n", ERR("RequestTimeTooSkewed") },
        { 200, NULL, "" },
    };
    fake_server f;
    fake_start(&f, answers, 2);
    char ep[64];
    akidb_store *s = fake_store(&f, ep, sizeof ep);
    ASSERT_RC(s->methods->put(s, "k", "x", 1), AKIDB_IOERR);
    expect_msg("RequestTimeTooSkewed");
    ASSERT_OK(s->methods->put(s, "k", "x", 1));
    fake_stop(&f);
    ASSERT_EQ(strncmp(f.dates[0], "2031", 4) != 0, 1);
    if (strncmp(f.dates[1], "20310101T0000", 13) != 0)
        akt_fail(__FILE__, __LINE__, "second request signed at %s, not the server's time",
                 f.dates[1]);
    akidb_store_close(s);
}

/* Nothing listens: a transport error, retryable, one request per call. */
TEST(s3_transport_error)
{
    fake_server f;
    fake_start(&f, NULL, 0);            /* a port that was free a moment ago */
    int port = f.port;
    fake_stop(&f);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
    akidb_s3_config c;
    base_config(&c);
    c.endpoint = ep;
    akidb_store *s = NULL;
    ASSERT_OK(akidb_store_s3_open(&c, &s));
    uint64_t size;
    ASSERT_RC(s->methods->size(s, "k", &size), AKIDB_IOERR);
    expect_msg("HEAD key \"k\"");
    expect_msg("curl error");
    ASSERT_EQ(akidb__s3_request_count(s), 1);
    /* The wrapper retries transient failures, then gives up. */
    ASSERT_RC(akidb_store_size(s, "k", &size), AKIDB_UNAVAILABLE);
    ASSERT_EQ(akidb__s3_request_count(s), 5);
    akidb_store_close(s);
}

/* ---- against a real server ------------------------------------------------- */

static const char *env_or_fail(const char *name)
{
    const char *v = getenv(name);
    if (!v || !v[0])
        akt_fail(__FILE__, __LINE__,
                 "%s is not set: the S3 tests need a server.  Run them through "
                 "scripts/with-s3.sh, e.g.  scripts/with-s3.sh build/test/akidb_test s3_   "
                 "(or `make test`, which does that)", name);
    return v;
}

static void live_config(akidb_s3_config *c)
{
    akidb_s3_config_init(c);
    c->endpoint = env_or_fail("AKIDB_TEST_S3_ENDPOINT");
    c->access_key = env_or_fail("AKIDB_TEST_S3_ACCESS_KEY");
    c->secret_key = env_or_fail("AKIDB_TEST_S3_SECRET_KEY");
    c->bucket = env_or_fail("AKIDB_TEST_S3_BUCKET");
    c->region = env_or_fail("AKIDB_TEST_S3_REGION");
}

static akidb_store *live_open(akidb_s3_config *c)
{
    akidb_store *s = NULL;
    ASSERT_OK(akidb_store_s3_open(c, &s));
    return s;
}

/* A prefix no other test (or earlier run) uses. */
static void unique_prefix(char *buf, size_t len, const char *test)
{
    snprintf(buf, len, "%s-%ld-%ld/", test, (long)getpid(), (long)time(NULL));
}

static int server_is(const char *name)
{
    const char *v = getenv("AKIDB_TEST_S3_SERVER");
    return v && strcmp(v, name) == 0;
}

/* Uploads in progress under prefix, as ListMultipartUploads shows them. */
static int open_uploads(akidb_store *s, const char *prefix)
{
    akidb__sigv4_param p[] = { { "uploads", NULL }, { "prefix", prefix } };
    long status = 0;
    char *body = NULL;
    size_t len = 0;
    ASSERT_OK(akidb__s3_test_request(s, "GET", NULL, p, 2, &status, &body, &len));
    if (status != 200)
        akt_fail(__FILE__, __LINE__, "ListMultipartUploads: HTTP %ld %s", status, body);
    ASSERT(strstr(body, "ListMultipartUploadsResult") != NULL);
    int n = 0;
    for (const char *q = body; (q = strstr(q, "<Upload>")); q++)
        n++;
    akidb_free(body);
    return n;
}

TEST_TIMEOUT(s3_conformance, 90)
{
    akidb_s3_config c;
    live_config(&c);
    akidb_store *s = live_open(&c);
    char prefix[128];
    unique_prefix(prefix, sizeof prefix, "conformance");
    store_conformance_run(s, prefix);
    akidb_store_close(s);
}

/* Keys that need encoding in the URI and escaping in the listing XML. */
TEST(s3_awkward_keys)
{
    akidb_s3_config c;
    live_config(&c);
    akidb_store *s = live_open(&c);
    char prefix[128];
    unique_prefix(prefix, sizeof prefix, "keys");
    const char *names[] = {
        "a key with spaces", "plus+plus", "percent%25%", "unicode-\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
        "xml&amp<lt>gt\"quote'apos", "sym!$'()*,;=:@[]~^`{}|", "dir/sub dir/file.bin", "tilde~",
    };
    size_t n = sizeof names / sizeof names[0];
    char keys[8][256];
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "%s%s", prefix, names[i]);
        ASSERT_OK(akidb_store_put(s, keys[i], names[i], strlen(names[i])));
    }
    for (size_t i = 0; i < n; i++) {
        void *buf;
        size_t len;
        uint64_t size;
        ASSERT_OK(akidb_store_get(s, keys[i], 0, UINT64_MAX, &buf, &len));
        ASSERT_EQ(len, strlen(names[i]));
        ASSERT(memcmp(buf, names[i], len) == 0);
        akidb_free(buf);
        ASSERT_OK(akidb_store_size(s, keys[i], &size));
        ASSERT_EQ(size, strlen(names[i]));
    }
    /* The listing gives back exactly the keys, in byte order. */
    sc_listing l;
    memset(&l, 0, sizeof l);
    ASSERT_OK(akidb_store_list(s, prefix, sc_collect, &l));
    ASSERT_EQ(l.n, n);
    for (int i = 0; i < l.n; i++) {
        int found = 0;
        for (size_t j = 0; j < n; j++)
            found |= strcmp(l.keys[i], keys[j]) == 0;
        if (!found)
            akt_fail(__FILE__, __LINE__, "listed key \"%s\" was never put", l.keys[i]);
        if (i)
            ASSERT(strcmp(l.keys[i - 1], l.keys[i]) < 0);
    }
    /* A prefix that itself needs encoding. */
    char sub[300];
    snprintf(sub, sizeof sub, "%sdir/sub dir/", prefix);
    memset(&l, 0, sizeof l);
    ASSERT_OK(akidb_store_list(s, sub, sc_collect, &l));
    ASSERT_EQ(l.n, 1);
    ASSERT_STR_EQ(l.keys[0], keys[6]);
    for (size_t i = 0; i < n; i++)
        ASSERT_OK(akidb_store_delete(s, keys[i]));
    memset(&l, 0, sizeof l);
    ASSERT_OK(akidb_store_list(s, prefix, sc_collect, &l));
    ASSERT_EQ(l.n, 0);
    akidb_store_close(s);
}

/* ---- pagination: 1,050 keys, put and deleted by 8 threads ---- */

#define N_PAGED 1050

typedef struct fan {
    akidb_store *s;
    const char *prefix;
    int deleting;
    int first, step;
    int rc;
    char msg[256];
} fan;

static void *fan_main(void *arg)
{
    fan *f = arg;
    for (int i = f->first; i < N_PAGED && !f->rc; i += f->step) {
        char key[256], val[32];
        snprintf(key, sizeof key, "%sobj-%05d", f->prefix, i);
        int len = snprintf(val, sizeof val, "v%d", i);
        f->rc = f->deleting ? akidb_store_delete(f->s, key)
                            : akidb_store_put(f->s, key, val, (size_t)len);
        if (f->rc)
            snprintf(f->msg, sizeof f->msg, "%s", akidb_errmsg(NULL));
    }
    return NULL;
}

static void fan_out(akidb_store *s, const char *prefix, int deleting)
{
    enum { T = 8 };
    fan f[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        f[i] = (fan){ s, prefix, deleting, i, T, 0, "" };
        ASSERT_EQ(pthread_create(&t[i], NULL, fan_main, &f[i]), 0);
    }
    for (int i = 0; i < T; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < T; i++)
        if (f[i].rc)
            akt_fail(__FILE__, __LINE__, "thread %d: rc %d: %s", i, f[i].rc, f[i].msg);
}

typedef struct paged {
    int n, sorted, sizes_ok;
    char last[256];
} paged;

static int paged_cb(void *ctx, const char *key, uint64_t size)
{
    paged *p = ctx;
    if (p->n && strcmp(p->last, key) >= 0)
        p->sorted = 0;
    snprintf(p->last, sizeof p->last, "%s", key);
    const char *dash = strrchr(key, '-');
    char want[32];
    snprintf(want, sizeof want, "v%d", dash ? atoi(dash + 1) : -1);
    if (size != strlen(want))
        p->sizes_ok = 0;
    p->n++;
    return 0;
}

TEST_TIMEOUT(s3_list_pagination, 120)
{
    akidb_s3_config c;
    live_config(&c);
    akidb_store *s = live_open(&c);
    char prefix[128], other[160];
    unique_prefix(prefix, sizeof prefix, "paged");
    fan_out(s, prefix, 0);
    /* Neighbours outside the prefix must not be listed. */
    snprintf(other, sizeof other, "%.*sX", (int)strlen(prefix) - 1, prefix);
    ASSERT_OK(akidb_store_put(s, other, "x", 1));

    uint64_t before = akidb__s3_request_count(s);
    paged p = { 0, 1, 1, "" };
    ASSERT_OK(akidb_store_list(s, prefix, paged_cb, &p));
    ASSERT_EQ(p.n, N_PAGED);
    ASSERT(p.sorted);
    ASSERT(p.sizes_ok);
    ASSERT_EQ(akidb__s3_request_count(s) - before, 2);     /* two pages */
    /* One thread after another: one kept-alive connection serves them. */
    uint64_t conn0 = akidb__s3_connect_count(s);
    for (int i = 0; i < 20; i++) {
        uint64_t size;
        ASSERT_OK(akidb_store_size(s, other, &size));
    }
    if (!server_is("moto"))     /* moto's server closes every connection */
        ASSERT_LE(akidb__s3_connect_count(s) - conn0, 1);

    /* Early stop on the second page. */
    sc_listing l;
    memset(&l, 0, sizeof l);
    l.stop_after = 1020;
    ASSERT_EQ(akidb_store_list(s, prefix, sc_collect, &l), 7);
    ASSERT_EQ(l.n, 1020);

    fan_out(s, prefix, 1);
    ASSERT_OK(akidb_store_delete(s, other));
    p = (paged){ 0, 1, 1, "" };
    ASSERT_OK(akidb_store_list(s, prefix, paged_cb, &p));
    ASSERT_EQ(p.n, 0);
    akidb_store_close(s);
}

static void expect_range(akidb_store *s, const char *key, const unsigned char *data,
                         size_t size, uint64_t off, uint64_t len)
{
    void *buf = NULL;
    size_t got = 0;
    ASSERT_OK(akidb_store_get(s, key, off, len, &buf, &got));
    size_t want = off >= size ? 0 : (len < size - off ? (size_t)len : size - (size_t)off);
    if (got != want)
        akt_fail(__FILE__, __LINE__, "get(%llu, %llu): %zu bytes, expected %zu",
                 (unsigned long long)off, (unsigned long long)len, got, want);
    ASSERT(buf != NULL);
    if (want && memcmp(buf, data + off, want) != 0)
        akt_fail(__FILE__, __LINE__, "get(%llu, %llu): wrong bytes", (unsigned long long)off,
                 (unsigned long long)len);
    akidb_free(buf);
}

TEST(s3_ranged_reads)
{
    akidb_s3_config c;
    live_config(&c);
    akidb_store *s = live_open(&c);
    char prefix[128], key[200], empty[200];
    unique_prefix(prefix, sizeof prefix, "range");
    snprintf(key, sizeof key, "%sobj", prefix);
    snprintf(empty, sizeof empty, "%sempty", prefix);
    unsigned char data[1000];
    fill(data, sizeof data, 7);
    ASSERT_OK(akidb_store_put(s, key, data, sizeof data));
    ASSERT_OK(akidb_store_put(s, empty, data, 0));
    const uint64_t cases[][2] = {
        { 0, 1 }, { 0, 1000 }, { 0, UINT64_MAX }, { 1, 998 }, { 999, 1 }, { 999, 5 },
        { 500, UINT64_MAX }, { 990, 100 }, { 1000, 1 }, { 1000, UINT64_MAX }, { 5000, 10 },
        { 0, 0 }, { 10, 0 }, { UINT64_MAX - 5, 10 }, { 3, UINT64_MAX - 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_range(s, key, data, sizeof data, cases[i][0], cases[i][1]);
    expect_range(s, empty, data, 0, 0, UINT64_MAX);
    expect_range(s, empty, data, 0, 0, 10);
    expect_range(s, empty, data, 0, 7, 10);
    /* A missing key is NOTFOUND for every shape of read. */
    char missing[200];
    snprintf(missing, sizeof missing, "%smissing", prefix);
    void *buf = NULL;
    size_t got = 0;
    ASSERT_RC(akidb_store_get(s, missing, 0, 10, &buf, &got), AKIDB_NOTFOUND);
    ASSERT_RC(akidb_store_get(s, missing, 0, 0, &buf, &got), AKIDB_NOTFOUND);
    ASSERT_RC(akidb_store_get(s, missing, 0, UINT64_MAX, &buf, &got), AKIDB_NOTFOUND);
    ASSERT(buf == NULL);
    ASSERT_OK(akidb_store_delete(s, key));
    ASSERT_OK(akidb_store_delete(s, empty));
    akidb_store_close(s);
}

TEST_TIMEOUT(s3_multipart_40mib, 90)
{
    akidb_s3_config c;
    live_config(&c);
    akidb_store *s = live_open(&c);
    char prefix[128], key[200];
    unique_prefix(prefix, sizeof prefix, "mp40");
    snprintf(key, sizeof key, "%sbig object.bin", prefix);
    size_t n = 40 * MIB;
    unsigned char *data = malloc(n);
    ASSERT(data);
    fill(data, n, 40);

    uint64_t r0 = akidb__s3_request_count(s);
    ASSERT_OK(akidb_store_put(s, key, data, n));
    /* create + 5 parts of 8 MiB + complete */
    ASSERT_EQ(akidb__s3_request_count(s) - r0, 7);
    ASSERT_EQ(open_uploads(s, prefix), 0);
    uint64_t size = 0;
    ASSERT_OK(akidb_store_size(s, key, &size));
    ASSERT_EQ(size, n);

    /* The whole object: one chunk learns the size, the rest in parallel. */
    r0 = akidb__s3_request_count(s);
    void *buf = NULL;
    size_t got = 0;
    ASSERT_OK(akidb_store_get(s, key, 0, UINT64_MAX, &buf, &got));
    ASSERT_EQ(got, n);
    ASSERT(memcmp(buf, data, n) == 0);
    akidb_free(buf);
    ASSERT_EQ(akidb__s3_request_count(s) - r0, 5);
    /* Large ranges across part boundaries, and one running past the end. */
    expect_range(s, key, data, n, 8 * MIB - 100, 20 * MIB);
    expect_range(s, key, data, n, 3, 16 * MIB);
    expect_range(s, key, data, n, 30 * MIB + 1, 30 * MIB);
    expect_range(s, key, data, n, 39 * MIB, UINT64_MAX);
    expect_range(s, key, data, n, 1, 100);

    sc_listing l;
    memset(&l, 0, sizeof l);
    ASSERT_OK(akidb_store_list(s, prefix, sc_collect, &l));
    ASSERT_EQ(l.n, 1);
    ASSERT_EQ(l.sizes[0], n);
    ASSERT_OK(akidb_store_delete(s, key));
    free(data);
    akidb_store_close(s);
}

/* A part fails after the server stored it: the upload is aborted, so no
 * upload (and none of its parts) is left, and the key does not appear. */
TEST_TIMEOUT(s3_multipart_abort_on_failure, 90)
{
    akidb_s3_config c;
    live_config(&c);
    c.multipart_threshold = 5 * MIB;
    c.part_size = 5 * MIB;
    c.max_concurrency = 2;
    akidb_store *s = live_open(&c);
    char prefix[128], key[200];
    unique_prefix(prefix, sizeof prefix, "mpabort");
    snprintf(key, sizeof key, "%sobj", prefix);
    size_t n = 12 * MIB;
    unsigned char *data = malloc(n);
    ASSERT(data);
    fill(data, n, 12);

    akidb__s3_test_fail_part(s, 2);
    uint64_t r0 = akidb__s3_request_count(s);
    ASSERT_RC(s->methods->put(s, key, data, n), AKIDB_IOERR);
    expect_msg("part 2: injected failure");
    expect_msg("aborted");
    /* create, parts (2 at least, 3 at most), abort */
    uint64_t sent = akidb__s3_request_count(s) - r0;
    ASSERT_GE(sent, 4);
    ASSERT_LE(sent, 5);
    ASSERT_EQ(open_uploads(s, prefix), 0);
    uint64_t size;
    ASSERT_RC(akidb_store_size(s, key, &size), AKIDB_NOTFOUND);

    /* Through the wrapper the failure is retried, each attempt aborted. */
    ASSERT_RC(akidb_store_put(s, key, data, n), AKIDB_UNAVAILABLE);
    ASSERT_EQ(open_uploads(s, prefix), 0);

    akidb__s3_test_fail_part(s, 0);
    ASSERT_OK(akidb_store_put(s, key, data, n));
    ASSERT_EQ(open_uploads(s, prefix), 0);
    expect_range(s, key, data, n, 0, UINT64_MAX);
    ASSERT_OK(akidb_store_delete(s, key));
    free(data);
    akidb_store_close(s);
}

/* Wrong credentials are permanent: one request, AKIDB_INVALID, fast, and
 * the wrapper does not retry them. */
TEST(s3_wrong_credentials)
{
    if (server_is("moto"))
        akt_fail(__FILE__, __LINE__, "moto does not check signatures: this test needs radosgw "
                 "(AKIDB_S3_SERVER=radosgw scripts/with-s3.sh ...)");
    akidb_s3_config c;
    live_config(&c);
    c.secret_key = "not-the-secret-key";
    akidb_store *s = live_open(&c);
    char prefix[128], key[200];
    unique_prefix(prefix, sizeof prefix, "auth");
    snprintf(key, sizeof key, "%sobj", prefix);

    double t0 = now_s();
    ASSERT_RC(s->methods->put(s, key, "x", 1), AKIDB_INVALID);
    expect_msg("HTTP 403");
    expect_msg("SignatureDoesNotMatch");
    if (strstr(akidb_errmsg(NULL), "not-the-secret"))
        akt_fail(__FILE__, __LINE__, "the secret leaked: %s", akidb_errmsg(NULL));
    ASSERT_EQ(akidb__s3_request_count(s), 1);
    ASSERT_RC(akidb_store_put(s, key, "x", 1), AKIDB_INVALID);
    ASSERT_EQ(akidb__s3_request_count(s), 2);
    void *buf = NULL;
    size_t got;
    ASSERT_RC(akidb_store_get(s, key, 0, UINT64_MAX, &buf, &got), AKIDB_INVALID);
    ASSERT_EQ(akidb__s3_request_count(s), 3);
    ASSERT_LE(now_s() - t0, 2.0);
    akidb_store_close(s);

    /* An unknown access key too. */
    live_config(&c);
    c.access_key = "NOSUCHACCESSKEY";
    s = live_open(&c);
    uint64_t size;
    ASSERT_RC(akidb_store_size(s, key, &size), AKIDB_INVALID);
    expect_msg("HTTP 403");
    ASSERT_EQ(akidb__s3_request_count(s), 1);
    akidb_store_close(s);
}

/* Virtual-host addressing: http://bucket.localhost:PORT/key. */
TEST(s3_virtual_host)
{
    akidb_s3_config c;
    live_config(&c);
    c.endpoint = env_or_fail("AKIDB_TEST_S3_VHOST_ENDPOINT");
    c.path_style = 0;
    akidb_store *s = live_open(&c);
    char prefix[128], key[200];
    unique_prefix(prefix, sizeof prefix, "vhost");
    snprintf(key, sizeof key, "%sa b+c", prefix);
    ASSERT_OK(akidb_store_put(s, key, "hello", 5));
    void *buf;
    size_t got;
    ASSERT_OK(akidb_store_get(s, key, 1, 3, &buf, &got));
    ASSERT_EQ(got, 3);
    ASSERT(memcmp(buf, "ell", 3) == 0);
    akidb_free(buf);
    sc_listing l;
    memset(&l, 0, sizeof l);
    ASSERT_OK(akidb_store_list(s, prefix, sc_collect, &l));
    ASSERT_EQ(l.n, 1);
    ASSERT_STR_EQ(l.keys[0], key);

    /* The object really is in the configured bucket: path-style sees it,
     * and sees it gone after a virtual-host delete. */
    akidb_s3_config pc;
    live_config(&pc);
    akidb_store *ps = live_open(&pc);
    uint64_t size = 0;
    ASSERT_OK(akidb_store_size(ps, key, &size));
    ASSERT_EQ(size, 5);
    ASSERT_OK(akidb_store_delete(s, key));
    ASSERT_RC(akidb_store_size(ps, key, &size), AKIDB_NOTFOUND);
    akidb_store_close(ps);
    akidb_store_close(s);
}

/* Many threads share one store (and its connection pool). */
typedef struct par_ctx {
    akidb_store *s;
    const char *prefix;
    int id;
    int rc;
    char msg[256];
} par_ctx;

static void *par_main(void *arg)
{
    par_ctx *p = arg;
    for (int i = 0; i < 20 && !p->rc; i++) {
        char key[256], val[64];
        snprintf(key, sizeof key, "%st%d-%d", p->prefix, p->id, i);
        int len = snprintf(val, sizeof val, "thread %d item %d", p->id, i);
        void *buf = NULL;
        size_t got = 0;
        p->rc = akidb_store_put(p->s, key, val, (size_t)len);
        if (!p->rc)
            p->rc = akidb_store_get(p->s, key, 0, UINT64_MAX, &buf, &got);
        if (!p->rc && (got != (size_t)len || memcmp(buf, val, got) != 0))
            p->rc = -1;
        akidb_free(buf);
        if (!p->rc)
            p->rc = akidb_store_delete(p->s, key);
        if (p->rc)
            snprintf(p->msg, sizeof p->msg, "%s", akidb_errmsg(NULL));
    }
    return NULL;
}

TEST(s3_threads_share_a_store)
{
    akidb_s3_config c;
    live_config(&c);
    akidb_store *s = live_open(&c);
    char prefix[128];
    unique_prefix(prefix, sizeof prefix, "threads");
    enum { T = 12 };
    par_ctx p[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        p[i] = (par_ctx){ s, prefix, i, 0, "" };
        ASSERT_EQ(pthread_create(&t[i], NULL, par_main, &p[i]), 0);
    }
    for (int i = 0; i < T; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < T; i++)
        if (p[i].rc)
            akt_fail(__FILE__, __LINE__, "thread %d: rc %d: %s", i, p[i].rc, p[i].msg);
    ASSERT_EQ(akidb__s3_request_count(s), T * 20 * 3);
    /* Connections are kept alive and reused: at most a few per thread. */
    if (!server_is("moto"))     /* moto's server closes every connection */
        ASSERT_LE(akidb__s3_connect_count(s), 3 * T);
    akidb_store_close(s);
}

static int count_key(void *ctx, const char *key, uint64_t size)
{
    (void)key;
    (void)size;
    (*(int *)ctx)++;
    return 0;
}

/* Tiering against the real server: a collection goes HOT -> COLD (its
 * local files removed, one object in the bucket) and back HOT, answering
 * the same searches bit for bit; a drop deletes its objects. */
TEST_TIMEOUT(s3_tier_hot_cold_hot, 120)
{
    akidb_s3_config c;
    live_config(&c);
    akidb_store *s = live_open(&c);
    char dir[512], name[64], prefix[128];
    snprintf(dir, sizeof dir, "%s/db", akt_dir);
    snprintf(name, sizeof name, "tier-%ld-%ld", (long)getpid(), (long)time(NULL));
    snprintf(prefix, sizeof prefix, "snapshots/%s/", name);
    akidb_options o;
    akidb_options_init(&o);
    o.store = s;
    o.sync_mode = AKIDB_SYNC_NONE;
    o.tier_interval_ms = AKIDB_NEVER;
    akidb *db = NULL;
    ASSERT_OK(akidb_open(dir, &o, &db));
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 64, AKIDB_METRIC_COSINE);
    ASSERT_OK(akidb_collection_create(db, name, &cfg));
    enum { N = 3000, D = 64 };
    float *v = malloc((size_t)N * D * sizeof *v);
    ASSERT(v != NULL);
    for (size_t i = 0; i < (size_t)N * D; i++)
        v[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f + (float)(i % 7);
    ASSERT_OK(akidb_insert(db, name, N, v, NULL, NULL, NULL));
    /* graph answers compare only once the graph is complete (whenever the
     * background indexer ran); the cold copy then holds no tail */
    ASSERT_OK(akidb_index_wait(db, name, AKIDB_NEVER));
    akidb_hit before[10][10], after[10][10];
    uint32_t nb[10], na[10];
    for (int q = 0; q < 10; q++)
        ASSERT_OK(akidb_search(db, name, v + (size_t)q * 97 * D, 10, NULL, before[q], &nb[q]));

    ASSERT_OK(akidb_tier_set(db, name, AKIDB_TIER_COLD));
    akidb_tier t = 0;
    ASSERT_OK(akidb_tier_get(db, name, &t));
    ASSERT_EQ(t, AKIDB_TIER_COLD);
    akidb_tier_info ti;
    memset(&ti, 0, sizeof ti);
    ti.version = AKIDB_TIER_INFO_VERSION;
    ASSERT_OK(akidb_tier_info_get(db, name, &ti));
    ASSERT_EQ(ti.local_bytes, 0);
    ASSERT(ti.cold_bytes > (uint64_t)N * D * sizeof(float));
    int n = 0;
    ASSERT_OK(akidb_store_list(s, prefix, count_key, &n));
    ASSERT_EQ(n, 1);

    ASSERT_OK(akidb_tier_set(db, name, AKIDB_TIER_HOT));
    for (int q = 0; q < 10; q++) {
        ASSERT_OK(akidb_search(db, name, v + (size_t)q * 97 * D, 10, NULL, after[q], &na[q]));
        ASSERT_EQ(na[q], nb[q]);
        for (uint32_t j = 0; j < na[q]; j++) {
            ASSERT_EQ(after[q][j].id, before[q][j].id);
            ASSERT(after[q][j].distance == before[q][j].distance);
        }
    }
    uint64_t count = 0;
    ASSERT_OK(akidb_collection_count(db, name, &count));
    ASSERT_EQ(count, N);
    /* Transparently, through a second round trip and a close. */
    ASSERT_OK(akidb_tier_set(db, name, AKIDB_TIER_COLD));
    ASSERT_OK(akidb_close(db));
    ASSERT_OK(akidb_open(dir, &o, &db));
    ASSERT_OK(akidb_search(db, name, v, 10, NULL, after[0], &na[0]));
    ASSERT_EQ(after[0][0].id, before[0][0].id);
    ASSERT_OK(akidb_collection_drop(db, name));
    n = 0;
    ASSERT_OK(akidb_store_list(s, prefix, count_key, &n));
    ASSERT_EQ(n, 0);
    ASSERT_OK(akidb_close(db));
    free(v);
    akidb_store_close(s);
}
