/*
 * test_api_v2.c - the calls and rules added with the layered library:
 * versioned structs (every version from 1 to the current one accepted,
 * newer or zero refused, nothing read or written past the caller's
 * version), collection listing and stats, documents with their strings,
 * application records (akidb_kv_*), and the public mock-store controls.
 * The cross-build check of the same rules is test/abi/test_abi_v1.c.
 */
#include "runner.h"

#include <stddef.h>
#include <stdint.h>

#include "akidb.h"

static akidb *open_db(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/db", akt_dir);
    akidb_options opts;
    akidb_options_init(&opts);
    opts.sync_mode = AKIDB_SYNC_NONE;
    akidb *db = NULL;
    ASSERT_OK(akidb_open(path, &opts, &db));
    return db;
}

static void make_coll(akidb *db, const char *name, uint32_t dim, akidb_metric metric)
{
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, dim, metric);
    ASSERT_OK(akidb_collection_create(db, name, &cfg));
}

/* ---- versions ---------------------------------------------------------- */

TEST(api_versions_refused_when_unknown)
{
    char path[512];
    snprintf(path, sizeof path, "%s/db", akt_dir);
    akidb_options opts;
    akidb_options_init(&opts);
    akidb *db = NULL;
    opts.version = 0;
    ASSERT_RC(akidb_open(path, &opts, &db), AKIDB_INVALID);
    ASSERT(strstr(akidb_errmsg(NULL), "version 0") != NULL);
    opts.version = AKIDB_OPTIONS_VERSION + 1;
    ASSERT_RC(akidb_open(path, &opts, &db), AKIDB_INVALID);
    ASSERT(db == NULL);
    opts.version = 1;   /* the first version: still accepted */
    ASSERT_OK(akidb_open(path, &opts, &db));

    make_coll(db, "c", 3, AKIDB_METRIC_L2);
    akidb_collection_config cfg;
    cfg.version = 0;
    ASSERT_RC(akidb_collection_info(db, "c", &cfg), AKIDB_INVALID);
    cfg.version = AKIDB_COLLECTION_CONFIG_VERSION + 1;
    ASSERT_RC(akidb_collection_info(db, "c", &cfg), AKIDB_INVALID);
    akidb_collection_config_init(&cfg, 3, AKIDB_METRIC_L2);
    cfg.version = 99;
    ASSERT_RC(akidb_collection_create(db, "d", &cfg), AKIDB_INVALID);

    akidb_collection_stats st;
    st.version = 0;
    ASSERT_RC(akidb_collection_stat(db, "c", &st), AKIDB_INVALID);
    akidb_document doc;
    doc.version = AKIDB_DOCUMENT_VERSION + 1;
    ASSERT_RC(akidb_document_get(db, "c", 1, NULL, &doc), AKIDB_INVALID);
    akidb_search_params sp;
    akidb_search_params_init(&sp);
    sp.version = 0;
    const float q[3] = { 1, 0, 0 };
    akidb_hit hit;
    uint32_t n = 0;
    ASSERT_RC(akidb_search(db, "c", q, 1, &sp, &hit, &n), AKIDB_INVALID);
    ASSERT_OK(akidb_close(db));
}

TEST(api_output_struct_stops_at_its_version)
{
    /* An output struct is written up to its version's size only: here the
     * caller's struct is the current one, followed by a guard that must
     * survive (the cross-version check is test/abi/test_abi_v1.c). */
    akidb *db = open_db();
    make_coll(db, "c", 2, AKIDB_METRIC_DOT);
    struct { akidb_collection_stats st; unsigned char guard[64]; } g;
    memset(&g, 0x5A, sizeof g);
    g.st.version = AKIDB_COLLECTION_STATS_VERSION;
    ASSERT_OK(akidb_collection_stat(db, "c", &g.st));
    ASSERT_EQ(g.st.version, AKIDB_COLLECTION_STATS_VERSION);
    ASSERT_EQ(g.st.dim, 2);
    ASSERT_EQ(g.st.metric, AKIDB_METRIC_DOT);
    for (size_t i = 0; i < sizeof g.guard; i++)
        ASSERT_EQ(g.guard[i], 0x5A);
    ASSERT_OK(akidb_close(db));
}

/* ---- listing and stats -------------------------------------------------- */

TEST(api_collection_list)
{
    akidb *db = open_db();
    char **names = (char **)1;
    size_t n = 99;
    ASSERT_OK(akidb_collection_list(db, &names, &n));
    ASSERT_EQ(n, 0);
    ASSERT(names == NULL);
    const char *order[] = { "zeta", "Alpha", "alpha", "b-2", "b_1" };
    for (size_t i = 0; i < 5; i++)
        make_coll(db, order[i], 4, AKIDB_METRIC_L2);
    ASSERT_OK(akidb_collection_drop(db, "b-2"));
    ASSERT_OK(akidb_collection_list(db, &names, &n));
    ASSERT_EQ(n, 4);
    /* ascending byte order: uppercase before lowercase, '_' after 'b' digits */
    ASSERT_STR_EQ(names[0], "Alpha");
    ASSERT_STR_EQ(names[1], "alpha");
    ASSERT_STR_EQ(names[2], "b_1");
    ASSERT_STR_EQ(names[3], "zeta");
    akidb_free(names);   /* one allocation: strings included */
    ASSERT_RC(akidb_collection_list(NULL, &names, &n), AKIDB_MISUSE);
    ASSERT_RC(akidb_collection_list(db, NULL, &n), AKIDB_MISUSE);
    ASSERT_RC(akidb_collection_list(db, &names, NULL), AKIDB_MISUSE);
    ASSERT_OK(akidb_close(db));

    db = open_db();   /* and after a reopen */
    ASSERT_OK(akidb_collection_list(db, &names, &n));
    ASSERT_EQ(n, 4);
    ASSERT_STR_EQ(names[3], "zeta");
    akidb_free(names);
    ASSERT_OK(akidb_close(db));
}

TEST(api_collection_stat_counts_and_bytes)
{
    akidb *db = open_db();
    make_coll(db, "c", 8, AKIDB_METRIC_L2);
    akidb_collection_stats st;
    st.version = AKIDB_COLLECTION_STATS_VERSION;
    ASSERT_OK(akidb_collection_stat(db, "c", &st));
    ASSERT_EQ(st.count, 0);
    ASSERT_EQ(st.deleted, 0);
    ASSERT_EQ(st.tier, AKIDB_TIER_HOT);
    ASSERT_EQ(st.pinned, 0);
    ASSERT(st.created_at_us > 0);
    uint64_t empty_docs = st.document_bytes;

    float v[100 * 8];
    for (size_t i = 0; i < 100 * 8; i++)
        v[i] = (float)(i % 17) - 8.0f;
    const char *ext[100], *meta[100];
    char ext_buf[100][16];
    for (int i = 0; i < 100; i++) {
        snprintf(ext_buf[i], sizeof ext_buf[i], "doc-%03d", i);
        ext[i] = ext_buf[i];
        meta[i] = "{\"tag\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    }
    uint64_t ids[100];
    ASSERT_OK(akidb_insert(db, "c", 100, v, ext, meta, ids));
    ASSERT_OK(akidb_delete(db, "c", ids[0]));
    ASSERT_OK(akidb_delete(db, "c", ids[1]));
    ASSERT_OK(akidb_collection_stat(db, "c", &st));
    ASSERT_EQ(st.count, 98);
    ASSERT_EQ(st.deleted, 2);
    ASSERT_EQ(st.dim, 8);
    /* every node's vector, tombstones included, is held (in blocks of
     * 1024 vectors: what is allocated is what is counted) */
    ASSERT(st.vector_bytes >= 100ull * 8 * sizeof(float));
    ASSERT(st.vector_bytes <= 1024ull * 8 * sizeof(float) + 64);
    ASSERT(st.graph_bytes > 0);
    ASSERT_EQ(st.compact_bytes, 0);   /* f32 storage */
    /* 98 live documents' strings alone are > 98 * (8 + 48) bytes */
    ASSERT(st.document_bytes >= empty_docs + 98ull * 56);
    ASSERT_EQ(st.bytes, st.vector_bytes + st.graph_bytes + st.document_bytes);
    ASSERT(st.log_bytes > 100ull * 8 * sizeof(float));
    ASSERT_OK(akidb_checkpoint(db, "c"));
    ASSERT_OK(akidb_collection_stat(db, "c", &st));
    ASSERT(st.log_bytes < 1024);   /* just the header after a checkpoint */
    ASSERT_RC(akidb_collection_stat(db, "nope", &st), AKIDB_NOTFOUND);
    ASSERT_RC(akidb_collection_stat(db, "c", NULL), AKIDB_MISUSE);
    ASSERT_OK(akidb_close(db));
}

/* ---- documents --------------------------------------------------------- */

TEST(api_document_get)
{
    akidb *db = open_db();
    make_coll(db, "c", 2, AKIDB_METRIC_L2);
    const float v[4] = { 1, 2, 3, 4 };
    const char *ext[2] = { "first", NULL };
    const char *meta[2] = { NULL, "{\"k\":[1,2]}" };
    uint64_t ids[2];
    ASSERT_OK(akidb_insert(db, "c", 2, v, ext, meta, ids));

    akidb_document d;
    memset(&d, 0, sizeof d);
    d.version = AKIDB_DOCUMENT_VERSION;
    float got[2];
    ASSERT_OK(akidb_document_get(db, "c", ids[0], got, &d));
    ASSERT_EQ(d.id, ids[0]);
    ASSERT_STR_EQ(d.external_id, "first");
    ASSERT(d.metadata_json == NULL);
    ASSERT(d.inserted_at_us > 0);
    ASSERT_EQ(got[1], 2.0f);
    akidb_document_clear(&d);
    ASSERT(d.external_id == NULL && d.metadata_json == NULL);

    ASSERT_OK(akidb_document_get(db, "c", ids[1], NULL, &d));
    ASSERT(d.external_id == NULL);
    ASSERT_STR_EQ(d.metadata_json, "{\"k\":[1,2]}");
    akidb_document_clear(&d);

    /* a failure leaves the strings NULL, so clearing is always safe */
    d.external_id = (char *)1;
    ASSERT_RC(akidb_document_get(db, "c", 12345, NULL, &d), AKIDB_NOTFOUND);
    ASSERT(d.external_id == NULL && d.metadata_json == NULL);
    akidb_document_clear(&d);
    akidb_document_clear(NULL);
    ASSERT_RC(akidb_document_get(db, "c", ids[0], NULL, NULL), AKIDB_MISUSE);
    ASSERT_OK(akidb_close(db));
}

/* ---- application records ---------------------------------------------- */

TEST(api_kv_roundtrip_and_reopen)
{
    akidb *db = open_db();
    const unsigned char bin[5] = { 0, 1, 0, 255, 7 };
    ASSERT_OK(akidb_kv_put(db, "server.keys", "key-1", bin, sizeof bin));
    ASSERT_OK(akidb_kv_put(db, "server.keys", "key-0", "text", 4));
    ASSERT_OK(akidb_kv_put(db, "other", "key-1", "", 0));
    void *val = NULL;
    size_t len = 0;
    ASSERT_OK(akidb_kv_get(db, "server.keys", "key-1", &val, &len));
    ASSERT_EQ(len, 5);
    ASSERT(memcmp(val, bin, 5) == 0);
    ASSERT_EQ(((unsigned char *)val)[5], 0);   /* the NUL after the value */
    akidb_free(val);
    ASSERT_OK(akidb_kv_get(db, "other", "key-1", &val, &len));
    ASSERT_EQ(len, 0);
    ASSERT_STR_EQ((char *)val, "");
    akidb_free(val);
    /* replace */
    ASSERT_OK(akidb_kv_put(db, "server.keys", "key-0", "new text", 8));
    ASSERT_OK(akidb_close(db));

    db = open_db();
    ASSERT_OK(akidb_kv_get(db, "server.keys", "key-0", &val, &len));
    ASSERT_STR_EQ((char *)val, "new text");
    akidb_free(val);
    char **keys = NULL;
    size_t n = 0;
    ASSERT_OK(akidb_kv_list(db, "server.keys", &keys, &n));
    ASSERT_EQ(n, 2);
    ASSERT_STR_EQ(keys[0], "key-0");
    ASSERT_STR_EQ(keys[1], "key-1");
    akidb_free(keys);
    ASSERT_OK(akidb_kv_delete(db, "server.keys", "key-0"));
    ASSERT_RC(akidb_kv_delete(db, "server.keys", "key-0"), AKIDB_NOTFOUND);
    ASSERT_RC(akidb_kv_get(db, "server.keys", "key-0", &val, &len), AKIDB_NOTFOUND);
    ASSERT(val == NULL && len == 0);
    ASSERT(strstr(akidb_errmsg(NULL), "key-0") != NULL);
    ASSERT_OK(akidb_kv_list(db, "empty.ns", &keys, &n));
    ASSERT_EQ(n, 0);
    ASSERT(keys == NULL);
    ASSERT_OK(akidb_close(db));
}

TEST(api_kv_bad_arguments)
{
    akidb *db = open_db();
    void *val;
    size_t len;
    char **keys;
    size_t n;
    ASSERT_RC(akidb_kv_put(db, "", "k", "v", 1), AKIDB_INVALID);
    ASSERT_RC(akidb_kv_put(db, "a/b", "k", "v", 1), AKIDB_INVALID);
    char long_ns[80];
    memset(long_ns, 'n', sizeof long_ns - 1);
    long_ns[sizeof long_ns - 1] = '\0';
    ASSERT_RC(akidb_kv_put(db, long_ns, "k", "v", 1), AKIDB_INVALID);
    ASSERT_RC(akidb_kv_put(db, "ns", "", "v", 1), AKIDB_INVALID);
    ASSERT_RC(akidb_kv_put(db, "ns", "bad\xff", "v", 1), AKIDB_INVALID);
    char long_key[1100];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    ASSERT_RC(akidb_kv_put(db, "ns", long_key, "v", 1), AKIDB_INVALID);
    ASSERT_RC(akidb_kv_put(db, "ns", "k", NULL, 1), AKIDB_MISUSE);
    ASSERT_RC(akidb_kv_put(db, "ns", NULL, "v", 1), AKIDB_MISUSE);
    ASSERT_RC(akidb_kv_put(NULL, "ns", "k", "v", 1), AKIDB_MISUSE);
    char *big = malloc(AKIDB_MAX_KV_VALUE_LEN + 1);
    ASSERT(big != NULL);
    memset(big, 'x', AKIDB_MAX_KV_VALUE_LEN + 1);
    ASSERT_RC(akidb_kv_put(db, "ns", "big", big, AKIDB_MAX_KV_VALUE_LEN + 1), AKIDB_INVALID);
    ASSERT_OK(akidb_kv_put(db, "ns", "big", big, AKIDB_MAX_KV_VALUE_LEN));
    free(big);
    ASSERT_OK(akidb_kv_get(db, "ns", "big", &val, &len));
    ASSERT_EQ(len, AKIDB_MAX_KV_VALUE_LEN);
    akidb_free(val);
    ASSERT_RC(akidb_kv_get(db, "ns", "k", NULL, &len), AKIDB_MISUSE);
    ASSERT_RC(akidb_kv_list(db, "ns", NULL, &n), AKIDB_MISUSE);
    ASSERT_RC(akidb_kv_list(db, "bad ns", &keys, &n), AKIDB_INVALID);
    ASSERT_OK(akidb_close(db));
}

/* ---- the public mock store --------------------------------------------- */

TEST(api_mock_store_controls)
{
    akidb_store *s = NULL;
    ASSERT_OK(akidb_store_mock_open(&s));
    ASSERT_OK(akidb_store_put(s, "a/1", "one", 3));
    ASSERT_OK(akidb_store_mock_inject(s, AKIDB_MOCK_OP_GET, "a/*", AKIDB_MOCK_403, 1, 0));
    void *buf = NULL;
    size_t len = 0;
    ASSERT_RC(akidb_store_get(s, "a/1", 0, UINT64_MAX, &buf, &len), AKIDB_INVALID);
    ASSERT(strstr(akidb_errmsg(NULL), "403") != NULL);
    ASSERT_OK(akidb_store_get(s, "a/1", 0, UINT64_MAX, &buf, &len));   /* rule used up */
    ASSERT_EQ(len, 3);
    akidb_free(buf);
    akidb_mock_stats st;
    akidb_store_mock_stats_get(s, &st);
    ASSERT_EQ(st.faults, 1);
    ASSERT_EQ(st.objects, 1);
    ASSERT_EQ(st.calls[0], 2);   /* two gets */
    /* bad arguments are refused, not crashes */
    ASSERT_RC(akidb_store_mock_inject(s, 0, NULL, AKIDB_MOCK_503, 1, 0), AKIDB_INVALID);
    ASSERT_RC(akidb_store_mock_inject(s, AKIDB_MOCK_OP_ANY, NULL, AKIDB_MOCK_503, 0, 0),
              AKIDB_INVALID);
    ASSERT_RC(akidb_store_mock_inject(s, AKIDB_MOCK_OP_ANY, NULL, (akidb_mock_fault)42, 1, 0),
              AKIDB_INVALID);
    ASSERT_RC(akidb_store_mock_inject(NULL, AKIDB_MOCK_OP_ANY, NULL, AKIDB_MOCK_503, 1, 0),
              AKIDB_MISUSE);
    akidb_store *local = NULL;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/local", akt_dir);
    ASSERT_OK(akidb_store_local_open(dir, &local));
    ASSERT_RC(akidb_store_mock_inject(local, AKIDB_MOCK_OP_ANY, NULL, AKIDB_MOCK_503, 1, 0),
              AKIDB_MISUSE);   /* not a mock store */
    akidb_store_mock_set_latency(local, 5);   /* ignored on a non-mock store */
    akidb_store_mock_stats_get(local, &st);
    ASSERT_EQ(st.objects, 0);
    akidb_store_close(local);
    akidb_store_mock_clear_faults(s);
    akidb_store_close(s);
}

TEST(api_init_functions_by_version)
{
    /* The exported _v forms write exactly the caller's version; an unknown
     * version only sets the version field, so the next call names it. */
    akidb_options o;
    memset(&o, 0x7F, sizeof o);
    akidb_options_init_v(&o, 0);
    ASSERT_EQ(o.version, 0);
    ASSERT_EQ(o.sync_mode, (akidb_sync_mode)0x7F7F7F7F);   /* untouched */
    akidb_options_init_v(&o, AKIDB_OPTIONS_VERSION + 1);
    ASSERT_EQ(o.version, AKIDB_OPTIONS_VERSION + 1);
    memset(&o, 0x7F, sizeof o);
    akidb_options_init_v(&o, 1);   /* version 1 ends where read_only begins */
    ASSERT_EQ(o.version, 1);
    ASSERT_EQ(o.sync_mode, AKIDB_SYNC_ALWAYS);
    ASSERT_EQ(o.dlq_retry_batch, 0);
    ASSERT_EQ(o.read_only, 0x7F7F7F7F);
    memset(&o, 0x7F, sizeof o);
    akidb_options_init_v(&o, 2);   /* version 2 ends where max_index_lag begins */
    ASSERT_EQ(o.version, 2);
    ASSERT_EQ(o.read_only, 0);
    ASSERT_EQ(o.tier_interval_ms, 0);
    ASSERT_EQ(o.max_index_lag, 0x7F7F7F7F);
    akidb_options_init(&o);
    ASSERT_EQ(o.version, AKIDB_OPTIONS_VERSION);
    ASSERT_EQ(o.read_only, 0);
    ASSERT_EQ(o.file_mode, 0);
    ASSERT_EQ(o.max_index_lag, 0);
    akidb_options_init(NULL);
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 7, AKIDB_METRIC_COSINE);
    ASSERT_EQ(cfg.version, AKIDB_COLLECTION_CONFIG_VERSION);
    ASSERT_EQ(cfg.dim, 7);
    ASSERT_EQ(cfg.ef_construction, 200);
    akidb_search_params sp;
    akidb_search_params_init(&sp);
    ASSERT_EQ(sp.version, AKIDB_SEARCH_PARAMS_VERSION);
    ASSERT_EQ(sp.ef, 0);
    akidb_s3_config s3;
    akidb_s3_config_init(&s3);
    ASSERT_EQ(s3.version, AKIDB_S3_CONFIG_VERSION);
    ASSERT_EQ(s3.path_style, 1);
    akidb_import_options io;
    akidb_import_options_init(&io);
    ASSERT_EQ(io.version, AKIDB_IMPORT_OPTIONS_VERSION);
    ASSERT_STR_EQ(io.vector_column, "vector");
}

/* A program built against options version 2 (before max_index_lag) passes
 * a smaller struct: the open reads only its bytes (ASan would see a read
 * past this allocation) and uses the default lag bound. */
TEST(api_options_v2_struct_opens)
{
    size_t v2_size = offsetof(akidb_options, max_index_lag);
    akidb_options *o = malloc(v2_size);   /* no member is touched here: */
    ASSERT(o != NULL);                     /* the compiler sees the size */
    akidb_options_init_v(o, 2);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/v2", akt_dir);
    akidb *db = NULL;
    ASSERT_OK(akidb_open(dir, o, &db));
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 4, AKIDB_METRIC_L2);
    ASSERT_OK(akidb_collection_create(db, "c", &cfg));
    float v[4] = { 1, 2, 3, 4 };
    ASSERT_OK(akidb_insert(db, "c", 1, v, NULL, NULL, NULL));
    ASSERT_OK(akidb_index_wait(db, "c", AKIDB_NEVER));
    ASSERT_OK(akidb_close(db));
    free(o);
}
