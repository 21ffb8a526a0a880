/*
 * test_store.c - object stores: the conformance suite against the local
 * and mock backends, local-store confinement, and the dispatch layer's
 * policy (retries, backoff, Retry-After, circuit breaker, checked reads)
 * driven by the mock's fault injection with a fake clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "akidb.h"
#include "common/alloc.h"
#include "common/crc.h"
#include "runner.h"
#include "store/store.h"
#include "store_conformance.h"

TEST(store_local_conformance)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/objects", akt_dir);
    akidb_store *s = NULL;
    ASSERT_OK(akidb_store_local_open(dir, &s));
    store_conformance_run(s, "conf/");
    store_conformance_run(s, "");
    akidb_store_close(s);
}

TEST(store_mock_conformance)
{
    akidb_store *s = NULL;
    ASSERT_OK(akidb_store_mock_open(&s));
    store_conformance_run(s, "conf/");
    store_conformance_run(s, "");
    akidb_store_close(s);
}

TEST(store_local_persists_and_is_atomic)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/objects", akt_dir);
    akidb_store *s = NULL;
    ASSERT_OK(akidb_store_local_open(dir, &s));
    ASSERT_OK(akidb_store_put(s, "a/b.bin", "hello", 5));
    akidb_store_close(s);
    /* the object is a plain file, readable by anything */
    snprintf(path, sizeof path, "%s/a/b.bin", dir);
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_size, 5);
    /* a temporary file left by a crash is neither listed nor readable as a key */
    snprintf(path, sizeof path, "%s/a/b.bin.123.akidb-tmp", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    ASSERT(fd >= 0);
    close(fd);
    ASSERT_OK(akidb_store_local_open(dir, &s));
    sc_listing l;
    memset(&l, 0, sizeof l);
    ASSERT_OK(akidb_store_list(s, "", sc_collect, &l));
    ASSERT_EQ(l.n, 1);
    ASSERT_STR_EQ(l.keys[0], "a/b.bin");
    ASSERT_RC(akidb_store_put(s, "x.akidb-tmp", "x", 1), AKIDB_INVALID);
    akidb_store_close(s);
}

TEST(store_local_never_leaves_root)
{
    char dir[512], outside[512], link[600], path[700];
    snprintf(dir, sizeof dir, "%s/objects", akt_dir);
    snprintf(outside, sizeof outside, "%s/outside", akt_dir);
    ASSERT_EQ(mkdir(outside, 0755), 0);
    akidb_store *s = NULL;
    ASSERT_OK(akidb_store_local_open(dir, &s));
    /* a symlink planted inside the root, pointing out of it */
    snprintf(link, sizeof link, "%s/escape", dir);
    ASSERT_EQ(symlink(outside, link), 0);
    int rc = akidb_store_put(s, "escape/pwned", "x", 1);
    ASSERT_NE(rc, AKIDB_OK);
    snprintf(path, sizeof path, "%s/pwned", outside);
    struct stat st;
    ASSERT_NE(stat(path, &st), 0);
    /* reading through it fails too */
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, "secret", 6), 6);
    close(fd);
    void *buf = NULL;
    size_t got = 0;
    ASSERT_RC(akidb_store_get(s, "escape/pwned", 0, UINT64_MAX, &buf, &got), AKIDB_NOTFOUND);
    /* and ".." never passes the key check */
    ASSERT_RC(akidb_store_put(s, "../outside/x", "x", 1), AKIDB_INVALID);
    akidb_store_close(s);
}

/* ---- dispatch policy, with a fake clock ------------------------------ */

typedef struct fake_time {
    int64_t now;
    uint32_t sleeps[64];
    int n_sleeps;
} fake_time;

static int64_t fake_now(void *ctx) { return ((fake_time *)ctx)->now; }

static void fake_sleep(void *ctx, uint32_t ms)
{
    fake_time *t = ctx;
    if (t->n_sleeps < 64)
        t->sleeps[t->n_sleeps] = ms;
    t->n_sleeps++;
    t->now += ms;
}

static akidb__store_disp *make_disp(akidb_store *s, fake_time *t, akidb__metrics *m)
{
    akidb__store_policy p;
    akidb__store_policy_init(&p);
    p.now_ms = fake_now;
    p.sleep_ms = fake_sleep;
    p.time_ctx = t;
    p.breaker_failures = 3;
    p.breaker_open_ms = 5000;
    akidb__store_disp *d = NULL;
    ASSERT_OK(akidb__disp_new(s, &p, m, &akidb__default_allocator, &d));
    return d;
}

TEST(store_dispatch_retries_503_then_succeeds)
{
    akidb_store *s;
    ASSERT_OK(akidb_store_mock_open(&s));
    fake_time t = { 0 };
    akidb__metrics m;
    memset(&m, 0, sizeof m);
    akidb__store_disp *d = make_disp(s, &t, &m);
    ASSERT_OK(akidb_store_mock_inject(s, AKIDB_MOCK_OP_PUT, NULL, AKIDB_MOCK_503, 2, 0));
    ASSERT_OK(akidb__disp_put(d, "k", "abc", 3));
    akidb_mock_stats st;
    akidb_store_mock_stats_get(s, &st);
    ASSERT_EQ(st.calls[2], 3);          /* two 503s, then success */
    ASSERT_EQ(t.n_sleeps, 2);           /* backed off before each retry */
    ASSERT_LE(t.sleeps[0], 50);         /* full jitter: random(0, base) */
    ASSERT_LE(t.sleeps[1], 100);        /* then random(0, 2 * base) */
    int64_t retries = 0;
    ASSERT_EQ(akidb__metric_get(&m, "akidb_store_retries_total", &retries), 0);
    ASSERT_EQ(retries, 2);
    akidb__disp_free(d);
    akidb_store_close(s);
}

TEST(store_dispatch_honours_retry_after)
{
    akidb_store *s;
    ASSERT_OK(akidb_store_mock_open(&s));
    fake_time t = { 0 };
    akidb__store_disp *d = make_disp(s, &t, NULL);
    ASSERT_OK(akidb_store_mock_inject(s, AKIDB_MOCK_OP_GET, NULL, AKIDB_MOCK_503, 1, 1500));
    ASSERT_OK(akidb__disp_put(d, "k", "abc", 3));
    void *buf;
    size_t len;
    ASSERT_OK(akidb__disp_get(d, "k", 0, UINT64_MAX, &buf, &len));
    akidb_free(buf);
    ASSERT_EQ(t.n_sleeps, 1);
    ASSERT_GE(t.sleeps[0], 1500);
    akidb__disp_free(d);
    akidb_store_close(s);
}

TEST(store_dispatch_403_fails_at_once)
{
    akidb_store *s;
    ASSERT_OK(akidb_store_mock_open(&s));
    fake_time t = { 0 };
    akidb__store_disp *d = make_disp(s, &t, NULL);
    ASSERT_OK(akidb_store_mock_inject(s, AKIDB_MOCK_OP_ANY, NULL, AKIDB_MOCK_403, 10, 0));
    ASSERT_RC(akidb__disp_put(d, "k", "abc", 3), AKIDB_INVALID);
    ASSERT(strstr(akidb_errmsg(NULL), "403") != NULL);
    akidb_mock_stats st;
    akidb_store_mock_stats_get(s, &st);
    ASSERT_EQ(st.calls[2], 1);          /* no retry of a permanent error */
    ASSERT_EQ(t.n_sleeps, 0);
    /* a permanent answer is still an answer: the breaker stays closed */
    ASSERT_EQ(akidb__disp_breaker(d), AKIDB__BREAKER_CLOSED);
    akidb__disp_free(d);
    akidb_store_close(s);
}

TEST(store_dispatch_timeout_retried_then_unavailable)
{
    akidb_store *s;
    ASSERT_OK(akidb_store_mock_open(&s));
    fake_time t = { 0 };
    akidb__store_disp *d = make_disp(s, &t, NULL);
    ASSERT_OK(akidb_store_mock_inject(s, AKIDB_MOCK_OP_SIZE, NULL, AKIDB_MOCK_TIMEOUT, 100, 0));
    uint64_t size;
    ASSERT_RC(akidb__disp_size(d, "k", &size), AKIDB_UNAVAILABLE);
    ASSERT(strstr(akidb_errmsg(NULL), "gave up after 4 attempts") != NULL);
    ASSERT(strstr(akidb_errmsg(NULL), "timeout") != NULL);
    akidb_mock_stats st;
    akidb_store_mock_stats_get(s, &st);
    ASSERT_EQ(st.calls[1], 4);
    ASSERT_EQ(t.n_sleeps, 3);
    akidb__disp_free(d);
    akidb_store_close(s);
}

TEST(store_dispatch_partial_upload_leaves_nothing)
{
    akidb_store *s;
    ASSERT_OK(akidb_store_mock_open(&s));
    fake_time t = { 0 };
    akidb__store_disp *d = make_disp(s, &t, NULL);
    ASSERT_OK(akidb_store_mock_inject(s, AKIDB_MOCK_OP_PUT, NULL, AKIDB_MOCK_PARTIAL_WRITE, 100, 0));
    ASSERT_RC(akidb__disp_put(d, "obj", "abcdef", 6), AKIDB_UNAVAILABLE);
    akidb_mock_stats st;
    akidb_store_mock_stats_get(s, &st);
    ASSERT_EQ(st.objects, 0);
    uint64_t size;
    akidb_store_mock_clear_faults(s);
    ASSERT_RC(akidb__disp_size(d, "obj", &size), AKIDB_NOTFOUND);
    akidb__disp_free(d);
    akidb_store_close(s);
}

TEST(store_dispatch_corrupted_read_detected)
{
    akidb_store *s;
    ASSERT_OK(akidb_store_mock_open(&s));
    fake_time t = { 0 };
    akidb__store_disp *d = make_disp(s, &t, NULL);
    const char data[] = "the quick brown fox jumps over the lazy dog";
    uint32_t crc = akidb__crc32c(0, data, sizeof data);
    ASSERT_OK(akidb__disp_put(d, "obj", data, sizeof data));
    /* one corrupted read: detected, re-read, correct data returned */
    ASSERT_OK(akidb_store_mock_inject(s, AKIDB_MOCK_OP_GET, NULL, AKIDB_MOCK_CORRUPT_READ, 1, 0));
    void *buf;
    size_t len;
    ASSERT_OK(akidb__disp_get_checked(d, "obj", sizeof data, crc, &buf, &len));
    ASSERT_EQ(len, sizeof data);
    ASSERT(memcmp(buf, data, len) == 0);
    akidb_free(buf);
    /* persistent corruption: AKIDB_CORRUPT, no buffer */
    ASSERT_OK(akidb_store_mock_inject(s, AKIDB_MOCK_OP_GET, NULL, AKIDB_MOCK_CORRUPT_READ, 100, 0));
    buf = (void *)1;
    ASSERT_RC(akidb__disp_get_checked(d, "obj", sizeof data, crc, &buf, &len), AKIDB_CORRUPT);
    ASSERT(buf == NULL);
    akidb__disp_free(d);
    akidb_store_close(s);
}

TEST(store_dispatch_breaker_opens_and_half_opens)
{
    akidb_store *s;
    ASSERT_OK(akidb_store_mock_open(&s));
    fake_time t = { 0 };
    akidb__metrics m;
    memset(&m, 0, sizeof m);
    akidb__store_disp *d = make_disp(s, &t, &m);
    ASSERT_OK(akidb_store_mock_inject(s, AKIDB_MOCK_OP_ANY, NULL, AKIDB_MOCK_503, 1000, 0));
    for (int i = 0; i < 3; i++)
        ASSERT_RC(akidb__disp_put(d, "k", "x", 1), AKIDB_UNAVAILABLE);
    ASSERT_EQ(akidb__disp_breaker(d), AKIDB__BREAKER_OPEN);
    akidb_mock_stats before, after;
    akidb_store_mock_stats_get(s, &before);
    /* while open: fails fast, the backend is not called */
    ASSERT_RC(akidb__disp_put(d, "k", "x", 1), AKIDB_UNAVAILABLE);
    ASSERT(strstr(akidb_errmsg(NULL), "circuit breaker open") != NULL);
    akidb_store_mock_stats_get(s, &after);
    ASSERT_EQ(after.calls[2], before.calls[2]);
    /* after the cool-down: half-open; a failed probe re-opens it */
    t.now += 5000;
    ASSERT_EQ(akidb__disp_breaker(d), AKIDB__BREAKER_HALF_OPEN);
    ASSERT_RC(akidb__disp_put(d, "k", "x", 1), AKIDB_UNAVAILABLE);
    ASSERT_EQ(akidb__disp_breaker(d), AKIDB__BREAKER_OPEN);
    /* the service recovers: the next probe closes it */
    akidb_store_mock_clear_faults(s);
    t.now += 5000;
    ASSERT_OK(akidb__disp_put(d, "k", "x", 1));
    ASSERT_EQ(akidb__disp_breaker(d), AKIDB__BREAKER_CLOSED);
    int64_t opens = 0;
    ASSERT_EQ(akidb__metric_get(&m, "akidb_store_breaker_opens_total", &opens), 0);
    ASSERT_EQ(opens, 2);
    akidb__disp_free(d);
    akidb_store_close(s);
}

TEST(store_public_wrappers_retry_and_report)
{
    akidb_store *s;
    ASSERT_OK(akidb_store_mock_open(&s));
    ASSERT_OK(akidb_store_mock_inject(s, AKIDB_MOCK_OP_PUT, NULL, AKIDB_MOCK_503, 1, 0));
    ASSERT_OK(akidb_store_put(s, "k", "abc", 3));    /* retried after one 503 */
    ASSERT_OK(akidb_store_mock_inject(s, AKIDB_MOCK_OP_DEL, NULL, AKIDB_MOCK_403, 1, 0));
    ASSERT_RC(akidb_store_delete(s, "k"), AKIDB_INVALID);
    ASSERT_RC(akidb_store_put(NULL, "k", "a", 1), AKIDB_MISUSE);
    void *buf;
    ASSERT_RC(akidb_store_get(s, "k", 0, 1, &buf, NULL), AKIDB_MISUSE);
    akidb_store_close(s);
    akidb_store_close(NULL);
}

/* A custom backend written against the public header only. */
typedef struct counting_store {
    akidb_store base;
    int puts;
} counting_store;

static int cs_put(akidb_store *s, const char *key, const void *buf, size_t len)
{
    (void)buf;
    (void)len;
    counting_store *c = (counting_store *)s;
    if (++c->puts < 3)
        return akidb_set_errmsg(AKIDB_IOERR, "custom: flaky put of %s", key);
    return AKIDB_OK;
}

TEST(store_custom_backend)
{
    static const akidb_store_methods methods = {
        AKIDB_STORE_METHODS_VERSION, NULL, NULL, cs_put, NULL, NULL, NULL
    };
    counting_store c = { { &methods }, 0 };
    ASSERT_OK(akidb_store_put(&c.base, "key", "v", 1));
    ASSERT_EQ(c.puts, 3);
}

TEST(store_mock_latency_overlaps)
{
    akidb_store *s;
    ASSERT_OK(akidb_store_mock_open(&s));
    akidb_store_mock_set_latency(s, 20);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ASSERT_OK(akidb_store_put(s, "k", "v", 1));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    ASSERT_GE(ms, 19.0);   /* a floor, not a performance target */
    akidb_store_close(s);
}
