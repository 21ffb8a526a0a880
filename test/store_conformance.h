/*
 * store_conformance.h - the object-store conformance suite, one set of
 * checks run against every backend (local, mock, S3) through the public
 * akidb_store_* wrappers.  Include it in a test file and call
 * store_conformance_run(store, prefix); every key it touches starts with
 * `prefix`, and it deletes what it created.
 */
#ifndef AKIDB_STORE_CONFORMANCE_H
#define AKIDB_STORE_CONFORMANCE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "akidb.h"
#include "runner.h"

typedef struct sc_listing {
    char keys[64][256];
    uint64_t sizes[64];
    int n;
    int stop_after;   /* > 0: return 7 after that many keys */
} sc_listing;

static int sc_collect(void *ctx, const char *key, uint64_t size)
{
    sc_listing *l = ctx;
    if (l->n < 64) {
        snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
        l->sizes[l->n] = size;
    }
    l->n++;
    return l->stop_after && l->n >= l->stop_after ? 7 : 0;
}

static void sc_key(char *buf, size_t len, const char *prefix, const char *name)
{
    snprintf(buf, len, "%s%s", prefix, name);
}

static void sc_put_get(akidb_store *s, const char *prefix, const char *name,
                       const void *data, size_t len)
{
    char key[512];
    sc_key(key, sizeof key, prefix, name);
    ASSERT_OK(akidb_store_put(s, key, data, len));
    void *buf = NULL;
    size_t got = 0;
    ASSERT_OK(akidb_store_get(s, key, 0, UINT64_MAX, &buf, &got));
    ASSERT_EQ(got, len);
    ASSERT(len == 0 || memcmp(buf, data, len) == 0);
    akidb_free(buf);
    uint64_t size = 0;
    ASSERT_OK(akidb_store_size(s, key, &size));
    ASSERT_EQ(size, len);
}

static void store_conformance_run(akidb_store *s, const char *prefix)
{
    char key[512], key2[512];
    unsigned char data[4096];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 131 + 7);

    /* put / get / size round trips, including empty objects and odd keys */
    sc_put_get(s, prefix, "plain", data, sizeof data);
    sc_put_get(s, prefix, "empty", data, 0);
    sc_put_get(s, prefix, "dir/sub/deep.bin", data, 100);
    sc_put_get(s, prefix, "with space", data, 10);
    sc_put_get(s, prefix, "plus+sign", data, 11);
    sc_put_get(s, prefix, "percent%20sign", data, 12);
    sc_put_get(s, prefix, "unicode-\xc3\xa9\xe2\x82\xac", data, 13);

    /* replace is whole */
    sc_key(key, sizeof key, prefix, "plain");
    ASSERT_OK(akidb_store_put(s, key, data + 1, 50));
    void *buf = NULL;
    size_t got = 0;
    ASSERT_OK(akidb_store_get(s, key, 0, UINT64_MAX, &buf, &got));
    ASSERT_EQ(got, 50);
    ASSERT(memcmp(buf, data + 1, 50) == 0);
    akidb_free(buf);

    /* ranged reads: inside, up to the end, past the end, at the end */
    ASSERT_OK(akidb_store_get(s, key, 10, 5, &buf, &got));
    ASSERT_EQ(got, 5);
    ASSERT(memcmp(buf, data + 11, 5) == 0);
    akidb_free(buf);
    ASSERT_OK(akidb_store_get(s, key, 45, 100, &buf, &got));
    ASSERT_EQ(got, 5);
    ASSERT(memcmp(buf, data + 46, 5) == 0);
    akidb_free(buf);
    ASSERT_OK(akidb_store_get(s, key, 50, 10, &buf, &got));
    ASSERT_EQ(got, 0);
    akidb_free(buf);
    ASSERT_OK(akidb_store_get(s, key, 1000, UINT64_MAX, &buf, &got));
    ASSERT_EQ(got, 0);
    akidb_free(buf);

    /* missing keys */
    sc_key(key2, sizeof key2, prefix, "does-not-exist");
    uint64_t size = 0;
    buf = NULL;
    ASSERT_RC(akidb_store_get(s, key2, 0, UINT64_MAX, &buf, &got), AKIDB_NOTFOUND);
    ASSERT(buf == NULL);
    ASSERT_RC(akidb_store_size(s, key2, &size), AKIDB_NOTFOUND);
    ASSERT_OK(akidb_store_delete(s, key2));   /* deleting nothing is fine */

    /* listing: sorted, filtered by prefix, sizes right, early stop */
    sc_listing l;
    memset(&l, 0, sizeof l);
    ASSERT_OK(akidb_store_list(s, prefix, sc_collect, &l));
    ASSERT_EQ(l.n, 7);
    for (int i = 1; i < l.n; i++)
        ASSERT(strcmp(l.keys[i - 1], l.keys[i]) < 0);
    for (int i = 0; i < l.n; i++)
        ASSERT(strncmp(l.keys[i], prefix, strlen(prefix)) == 0);
    sc_key(key, sizeof key, prefix, "dir/");
    memset(&l, 0, sizeof l);
    ASSERT_OK(akidb_store_list(s, key, sc_collect, &l));
    ASSERT_EQ(l.n, 1);
    sc_key(key2, sizeof key2, prefix, "dir/sub/deep.bin");
    ASSERT_STR_EQ(l.keys[0], key2);
    ASSERT_EQ(l.sizes[0], 100);
    memset(&l, 0, sizeof l);
    l.stop_after = 2;
    ASSERT_EQ(akidb_store_list(s, prefix, sc_collect, &l), 7);
    ASSERT_EQ(l.n, 2);

    /* invalid keys never reach the backend */
    const char *bad[] = { "", "/abs", "a/../b", "..", "a//b", "trail/", "ctl\x01x", "bad\xff" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_RC(akidb_store_put(s, bad[i], data, 1), AKIDB_INVALID);
    char longkey[AKIDB_MAX_KEY_LEN + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    ASSERT_RC(akidb_store_put(s, longkey, data, 1), AKIDB_INVALID);

    /* delete everything; the listing is then empty */
    memset(&l, 0, sizeof l);
    ASSERT_OK(akidb_store_list(s, prefix, sc_collect, &l));
    for (int i = 0; i < l.n && i < 64; i++)
        ASSERT_OK(akidb_store_delete(s, l.keys[i]));
    sc_listing after;
    memset(&after, 0, sizeof after);
    ASSERT_OK(akidb_store_list(s, prefix, sc_collect, &after));
    ASSERT_EQ(after.n, 0);
    sc_key(key, sizeof key, prefix, "plain");
    ASSERT_RC(akidb_store_size(s, key, &size), AKIDB_NOTFOUND);
}

#endif
