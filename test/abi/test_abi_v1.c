/*
 * test_abi_v1.c - an "old program": built against the frozen version-1
 * header (akidb_v1.h, never include/akidb.h) and run against today's
 * shared library, as an application compiled before an upgrade would be.
 *
 * It checks what an ABI break would break: the library accepts the old
 * struct versions, reads no byte past an old input struct and writes no
 * byte past an old output struct.  Each struct the library writes sits in
 * a buffer whose tail is filled with a guard pattern, checked after the
 * call; each struct the library reads is followed by bytes that would be
 * nonsense as newer fields (0xA5), so reading past the end would show.
 *
 *   test_abi_v1 DIR      (an empty or missing directory to create the db in)
 *
 * Prints "abi_v1: ok" and exits 0, or names the first failure and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "akidb_v1.h"

#define GUARD 0xA5
#define SLACK 256   /* bytes past each struct: room for many future fields */

static int failures;

#define CHECK(cond, ...) do {                                                 \
    if (!(cond)) {                                                            \
        fprintf(stderr, "abi_v1: %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
        fprintf(stderr, __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                  \
        failures++;                                                           \
    }                                                                         \
} while (0)

#define CHECK_RC(call) do {                                                   \
    int rc_ = (call);                                                         \
    CHECK(rc_ == AKIDB_OK, "%s: %s", akidb_errname(rc_), akidb_errmsg(NULL)); \
} while (0)

/* A struct of `size` bytes followed by SLACK guard bytes. */
static void *guarded(size_t size)
{
    unsigned char *p = malloc(size + SLACK);
    if (!p) {
        perror("malloc");
        exit(1);
    }
    memset(p, GUARD, size + SLACK);
    return p;
}

static int guard_intact(const void *p, size_t size)
{
    const unsigned char *g = (const unsigned char *)p + size;
    for (size_t i = 0; i < SLACK; i++)
        if (g[i] != GUARD)
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    /* Input structs, with newer-looking garbage after them. */
    akidb_options *o = guarded(sizeof *o);
    akidb_options_init(o);   /* the library must fill the v1 fields only */
    if (!guard_intact(o, sizeof *o)) {
        fprintf(stderr, "abi_v1: akidb_options_init wrote past a v1 struct\n");
        return 1;
    }
    memset((char *)o + sizeof *o, GUARD, SLACK);
    CHECK(o->version == 1 && o->sync_mode == AKIDB_SYNC_ALWAYS, "version %u sync %d",
          o->version, (int)o->sync_mode);
    o->sync_mode = AKIDB_SYNC_NONE;
    akidb *db = NULL;
    CHECK_RC(akidb_open(argv[1], o, &db));
    if (!db)
        return 1;

    akidb_collection_config *cfg = guarded(sizeof *cfg);
    akidb_collection_config_init(cfg, 4, AKIDB_METRIC_L2);
    CHECK(guard_intact(cfg, sizeof *cfg), "akidb_collection_config_init wrote past v1");
    CHECK(cfg->hnsw_m == 16 && cfg->dim == 4, "hnsw_m %u dim %u", cfg->hnsw_m, cfg->dim);
    cfg->ef_construction = 100;
    cfg->ef_search = 32;
    CHECK_RC(akidb_collection_create(db, "docs", cfg));

    const float vecs[3 * 4] = { 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0 };
    const char *ext[3] = { "a", "b", "c" };
    const char *meta[3] = { "{\"n\":1}", NULL, "{\"n\":3}" };
    uint64_t ids[3] = { 0 };
    CHECK_RC(akidb_insert(db, "docs", 3, vecs, ext, meta, ids));

    /* Output structs: the library must stop at the v1 size. */
    akidb_collection_config *info = guarded(sizeof *info);
    info->version = 1;
    CHECK_RC(akidb_collection_info(db, "docs", info));
    CHECK(info->dim == 4 && info->metric == AKIDB_METRIC_L2 && info->ef_search == 32,
          "dim %u metric %d ef_search %u", info->dim, (int)info->metric, info->ef_search);
    CHECK(guard_intact(info, sizeof *info), "akidb_collection_info wrote past a v1 config");

    akidb_collection_stats *st = guarded(sizeof *st);
    st->version = 1;
    CHECK_RC(akidb_collection_stat(db, "docs", st));
    CHECK(st->count == 3 && st->dim == 4 && st->tier == AKIDB_TIER_HOT,
          "count %llu dim %u tier %d", (unsigned long long)st->count, st->dim, (int)st->tier);
    CHECK(guard_intact(st, sizeof *st), "akidb_collection_stat wrote past v1 stats");

    akidb_document *doc = guarded(sizeof *doc);
    doc->version = 1;
    float v[4];
    CHECK_RC(akidb_document_get(db, "docs", ids[2], v, doc));
    CHECK(doc->id == ids[2] && doc->external_id && strcmp(doc->external_id, "c") == 0 &&
          doc->metadata_json && strcmp(doc->metadata_json, "{\"n\":3}") == 0 && v[2] == 1.0f,
          "document %llu", (unsigned long long)doc->id);
    CHECK(guard_intact(doc, sizeof *doc), "akidb_document_get wrote past a v1 document");
    akidb_document_clear(doc);

    akidb_search_params *sp = guarded(sizeof *sp);
    akidb_search_params_init(sp);
    CHECK(guard_intact(sp, sizeof *sp), "akidb_search_params_init wrote past v1");
    sp->ef = 16;
    akidb_hit hits[2];
    uint32_t n_hits = 0;
    const float q[4] = { 0.9f, 0.1f, 0, 0 };
    CHECK_RC(akidb_search(db, "docs", q, 2, sp, hits, &n_hits));
    CHECK(n_hits == 2 && hits[0].id == ids[0], "n_hits %u first %llu", n_hits,
          (unsigned long long)hits[0].id);

    /* Library-allocated lists: entries are reached through pointers, so a
     * v1 program reads the v1 prefix of whatever the library wrote. */
    char snap[AKIDB_SNAPSHOT_ID_LEN];
    CHECK_RC(akidb_snapshot_create(db, "docs", snap, sizeof snap));
    akidb_snapshot_info **list = NULL;
    size_t n = 0;
    CHECK_RC(akidb_snapshot_list(db, "docs", &list, &n));
    CHECK(n == 1 && list && list[0]->version >= 1 && strcmp(list[0]->id, snap) == 0 &&
          list[0]->rows == 3 && strlen(list[0]->sha256) == 64,
          "%zu snapshots", n);
    akidb_free(list);

    CHECK_RC(akidb_close(db));
    free(o);
    free(cfg);
    free(info);
    free(st);
    free(doc);
    free(sp);
    if (failures) {
        fprintf(stderr, "abi_v1: %d failures\n", failures);
        return 1;
    }
    printf("abi_v1: ok\n");
    return 0;
}
