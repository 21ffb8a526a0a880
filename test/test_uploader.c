/*
 * test_uploader.c - parallel uploads and the dead-letter queue, through
 * the public API where it exists (akidb_upload_file, akidb_dlq_*) and the
 * uploader directly for batches and single retry cycles.  The object store
 * is the mock, with injected faults; time is a fake clock, and the
 * background retry thread is off (AKIDB_NEVER), so nothing sleeps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "akidb.h"
#include "common/fault.h"
#include "runner.h"
#include "engine/uploader.h"

typedef struct env {
    akidb *db;
    akidb_store *mock;
    int64_t now_us;
} env;

static int64_t fake_clock(void *ctx) { return ((env *)ctx)->now_us; }

static void open_env(env *e, uint32_t max_attempts)
{
    char path[512];
    snprintf(path, sizeof path, "%s/db", akt_dir);
    if (!e->mock)
        ASSERT_OK(akidb_store_mock_open(&e->mock));
    if (!e->now_us)
        e->now_us = 1000000000000;
    akidb_options o;
    akidb_options_init(&o);
    o.store = e->mock;
    o.clock_us = fake_clock;
    o.clock_ctx = e;
    o.dlq_max_attempts = max_attempts;
    o.dlq_retry_interval_ms = AKIDB_NEVER;
    ASSERT_OK(akidb_open(path, &o, &e->db));
}

static void close_env(env *e, int keep_mock)
{
    ASSERT_OK(akidb_close(e->db));
    e->db = NULL;
    if (!keep_mock) {
        akidb_store_close(e->mock);
        e->mock = NULL;
    }
}

/* A source file with known content. */
static void make_source(char *path, size_t len, int n)
{
    snprintf(path, len, "%s/src-%d.bin", akt_dir, n);
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    fprintf(f, "payload %d", n);
    ASSERT_EQ(fclose(f), 0);
}

static size_t dlq_count(akidb *db, akidb_dlq_entry ***out)
{
    akidb_dlq_entry **e = NULL;
    size_t n = 99;
    ASSERT_OK(akidb_dlq_list(db, &e, &n));
    if (out)
        *out = e;
    else
        akidb_free(e);
    return n;
}

static void assert_object(akidb_store *s, const char *key, int n)
{
    char want[64];
    snprintf(want, sizeof want, "payload %d", n);
    void *buf = NULL;
    size_t len = 0;
    ASSERT_OK(akidb_store_get(s, key, 0, UINT64_MAX, &buf, &len));
    ASSERT_EQ(len, strlen(want));
    ASSERT(memcmp(buf, want, len) == 0);
    akidb_free(buf);
}

TEST(upload_background_success)
{
    env e = { 0 };
    open_env(&e, 5);
    char src[512];
    make_source(src, sizeof src, 1);
    ASSERT_OK(akidb_upload_file(e.db, "backups/one.bin", src));
    ASSERT_OK(akidb_upload_wait(e.db));
    assert_object(e.mock, "backups/one.bin", 1);
    ASSERT_EQ(dlq_count(e.db, NULL), 0);
    int64_t uploads = 0;
    ASSERT_OK(akidb_metric_value(e.db, "akidb_uploads_total", &uploads));
    ASSERT_EQ(uploads, 1);
    ASSERT_RC(akidb_upload_file(e.db, "../escape", src), AKIDB_INVALID);
    ASSERT_RC(akidb_upload_file(NULL, "k", src), AKIDB_MISUSE);
    close_env(&e, 0);
}

TEST(upload_dlq_retry_success)
{
    env e = { 0 };
    open_env(&e, 5);
    char src[512];
    make_source(src, sizeof src, 2);
    /* every put answers 503 until the faults are cleared */
    ASSERT_OK(akidb_store_mock_inject(e.mock, AKIDB_MOCK_OP_PUT, NULL, AKIDB_MOCK_503, 1000, 0));
    ASSERT_OK(akidb_upload_file(e.db, "k/two", src));
    ASSERT_OK(akidb_upload_wait(e.db));
    akidb_dlq_entry **ent;
    ASSERT_EQ(dlq_count(e.db, &ent), 1);
    ASSERT_STR_EQ(ent[0]->key, "k/two");
    ASSERT_STR_EQ(ent[0]->source_path, src);
    ASSERT_EQ(ent[0]->attempts, 1);
    ASSERT_EQ(ent[0]->permanent, 0);
    ASSERT(strstr(ent[0]->reason, "503") != NULL);
    ASSERT(ent[0]->next_attempt_at_us > e.now_us);
    int64_t due = ent[0]->next_attempt_at_us;
    akidb_free(ent);

    /* not due yet: a cycle does nothing */
    uint32_t tried = 9, ok = 9;
    akidb__uploader *u = akidb__db_uploader(e.db);
    ASSERT_OK(akidb__uploader_dlq_cycle(u, 10, &tried, &ok));
    ASSERT_EQ(tried, 0);
    /* due, and the store has recovered */
    akidb_store_mock_clear_faults(e.mock);
    e.now_us = due;
    ASSERT_OK(akidb__uploader_dlq_cycle(u, 10, &tried, &ok));
    ASSERT_EQ(tried, 1);
    ASSERT_EQ(ok, 1);
    ASSERT_EQ(dlq_count(e.db, NULL), 0);
    assert_object(e.mock, "k/two", 2);
    close_env(&e, 0);
}

TEST(upload_dlq_max_attempts_permanent)
{
    env e = { 0 };
    open_env(&e, 3);
    char src[512];
    make_source(src, sizeof src, 3);
    ASSERT_OK(akidb_store_mock_inject(e.mock, AKIDB_MOCK_OP_PUT, NULL, AKIDB_MOCK_403, 1000, 0));
    ASSERT_OK(akidb_upload_file(e.db, "k/three", src));
    ASSERT_OK(akidb_upload_wait(e.db));
    akidb__uploader *u = akidb__db_uploader(e.db);
    uint32_t tried, ok;
    for (int cycle = 0; cycle < 2; cycle++) {
        e.now_us += 24LL * 3600 * 1000000;   /* far past any backoff */
        ASSERT_OK(akidb__uploader_dlq_cycle(u, 10, &tried, &ok));
        ASSERT_EQ(tried, 1);
        ASSERT_EQ(ok, 0);
    }
    akidb_dlq_entry **ent;
    ASSERT_EQ(dlq_count(e.db, &ent), 1);
    ASSERT_EQ(ent[0]->attempts, 3);
    ASSERT_EQ(ent[0]->permanent, 1);
    ASSERT(strstr(ent[0]->reason, "403") != NULL);
    int64_t id = ent[0]->id;
    akidb_free(ent);
    int64_t perm = 0;
    ASSERT_OK(akidb_metric_value(e.db, "akidb_dlq_permanent_total", &perm));
    ASSERT_EQ(perm, 1);
    /* permanent: automatic cycles leave it alone */
    e.now_us += 24LL * 3600 * 1000000;
    ASSERT_OK(akidb__uploader_dlq_cycle(u, 10, &tried, &ok));
    ASSERT_EQ(tried, 0);
    /* an operator retry while still failing reports it, keeps it */
    ASSERT_RC(akidb_dlq_retry(e.db, id), AKIDB_UNAVAILABLE);
    ASSERT_EQ(dlq_count(e.db, NULL), 1);
    ASSERT_RC(akidb_dlq_retry(e.db, id + 1000), AKIDB_NOTFOUND);
    /* fixed: the operator retry succeeds and removes it */
    akidb_store_mock_clear_faults(e.mock);
    ASSERT_OK(akidb_dlq_retry(e.db, id));
    ASSERT_EQ(dlq_count(e.db, NULL), 0);
    assert_object(e.mock, "k/three", 3);
    close_env(&e, 0);
}

TEST(upload_dlq_batch_limit_per_cycle)
{
    env e = { 0 };
    open_env(&e, 5);
    ASSERT_OK(akidb_store_mock_inject(e.mock, AKIDB_MOCK_OP_PUT, NULL, AKIDB_MOCK_TIMEOUT, 100000, 0));
    char src[512], key[64];
    for (int i = 0; i < 15; i++) {
        make_source(src, sizeof src, 100 + i);
        snprintf(key, sizeof key, "batch/%02d", i);
        ASSERT_OK(akidb_upload_file(e.db, key, src));
    }
    ASSERT_OK(akidb_upload_wait(e.db));
    ASSERT_EQ(dlq_count(e.db, NULL), 15);
    akidb_store_mock_clear_faults(e.mock);
    e.now_us += 3600LL * 1000000;
    akidb__uploader *u = akidb__db_uploader(e.db);
    uint32_t tried, ok;
    ASSERT_OK(akidb__uploader_dlq_cycle(u, 10, &tried, &ok));
    ASSERT_EQ(tried, 10);
    ASSERT_EQ(ok, 10);
    ASSERT_EQ(dlq_count(e.db, NULL), 5);
    ASSERT_OK(akidb__uploader_dlq_cycle(u, 10, &tried, &ok));
    ASSERT_EQ(tried, 5);
    ASSERT_EQ(ok, 5);
    ASSERT_EQ(dlq_count(e.db, NULL), 0);
    for (int i = 0; i < 15; i++) {
        snprintf(key, sizeof key, "batch/%02d", i);
        assert_object(e.mock, key, 100 + i);
    }
    close_env(&e, 0);
}

TEST(upload_dlq_survives_reopen_and_purge)
{
    env e = { 0 };
    open_env(&e, 2);
    char src[512];
    make_source(src, sizeof src, 4);
    ASSERT_OK(akidb_store_mock_inject(e.mock, AKIDB_MOCK_OP_PUT, NULL, AKIDB_MOCK_403, 1000, 0));
    ASSERT_OK(akidb_upload_file(e.db, "p/one", src));
    ASSERT_OK(akidb_upload_file(e.db, "p/two", src));
    ASSERT_OK(akidb_upload_wait(e.db));
    close_env(&e, 1);
    open_env(&e, 2);
    akidb_dlq_entry **ent;
    ASSERT_EQ(dlq_count(e.db, &ent), 2);
    int64_t first = ent[0]->id;
    akidb_free(ent);
    /* make both permanent, then purge one by id and the rest wholesale */
    e.now_us += 24LL * 3600 * 1000000;
    uint32_t tried, ok;
    ASSERT_OK(akidb__uploader_dlq_cycle(akidb__db_uploader(e.db), 10, &tried, &ok));
    ASSERT_EQ(tried, 2);
    ASSERT_OK(akidb_dlq_purge(e.db, first));
    ASSERT_RC(akidb_dlq_purge(e.db, first), AKIDB_NOTFOUND);
    ASSERT_EQ(dlq_count(e.db, NULL), 1);
    ASSERT_OK(akidb_dlq_purge(e.db, 0));
    ASSERT_EQ(dlq_count(e.db, NULL), 0);
    close_env(&e, 0);
}

TEST(upload_put_many_parallel)
{
    env e = { 0 };
    open_env(&e, 5);
    enum { N = 200 };
    char keys[N][32];
    const char *key_ptrs[N];
    const void *bufs[N];
    size_t lens[N];
    int rcs[N];
    static unsigned char data[N][256];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "many/%03d", i);
        key_ptrs[i] = keys[i];
        memset(data[i], i & 0xff, sizeof data[i]);
        bufs[i] = data[i];
        lens[i] = (size_t)(i % 256);
        rcs[i] = -1;
    }
    /* one key fails for good: its result says so, the others succeed */
    ASSERT_OK(akidb_store_mock_inject(e.mock, AKIDB_MOCK_OP_PUT, "many/042", AKIDB_MOCK_403, 100, 0));
    akidb_store_mock_set_latency(e.mock, 2);
    akidb__uploader *u = akidb__db_uploader(e.db);
    ASSERT_RC(akidb__uploader_put_many(u, N, key_ptrs, bufs, lens, rcs), AKIDB_INVALID);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(rcs[i], i == 42 ? AKIDB_INVALID : AKIDB_OK);
    akidb_store_mock_set_latency(e.mock, 0);
    for (int i = 0; i < N; i++) {
        void *buf = NULL;
        size_t len = 0;
        int rc = akidb_store_get(e.mock, keys[i], 0, UINT64_MAX, &buf, &len);
        if (i == 42) {
            ASSERT_RC(rc, AKIDB_NOTFOUND);
            continue;
        }
        ASSERT_OK(rc);
        ASSERT_EQ(len, lens[i]);
        ASSERT(len == 0 || memcmp(buf, data[i], len) == 0);
        akidb_free(buf);
    }
    ASSERT_OK(akidb__uploader_put_many(u, 0, NULL, NULL, NULL, NULL));
    close_env(&e, 0);
}
