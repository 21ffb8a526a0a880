/*
 * quickstart.c - the smallest complete AkiDB program: open a database,
 * create a collection, insert three documents, search, read them back.
 *
 *   quickstart [DIR]        (default ./akidb-data)
 *
 * Uses only the public header.  Re-running it starts the collection afresh.
 */
#include <inttypes.h>
#include <stdio.h>

#include "akidb.h"

#define CHECK(call)                                                         \
    do {                                                                    \
        int rc_ = (call);                                                   \
        if (rc_ != AKIDB_OK) {                                              \
            fprintf(stderr, "%s: %s (%s)\n", #call, akidb_errstr(rc_),      \
                    akidb_errmsg(db));                                      \
            goto fail;                                                      \
        }                                                                   \
    } while (0)

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "./akidb-data";
    const float vectors[3 * 4] = {
        1.0f, 0.0f, 0.0f, 0.0f,
        0.0f, 1.0f, 0.0f, 0.0f,
        0.9f, 0.1f, 0.0f, 0.0f,
    };
    const char *const ext_ids[3] = { "doc-a", "doc-b", "doc-c" };
    const char *const meta[3] = {
        "{\"title\": \"alpha\"}", "{\"title\": \"beta\"}", "{\"title\": \"gamma\"}",
    };
    const float query[4] = { 1.0f, 0.05f, 0.0f, 0.0f };
    akidb *db = NULL;
    akidb_collection_config cfg;
    akidb_search_params params;
    uint64_t ids[3];
    akidb_hit hits[3];
    uint32_t n_hits = 0;

    printf("libakidb %s\n", akidb_version());
    CHECK(akidb_open(dir, NULL, &db));

    int rc = akidb_collection_drop(db, "quickstart");
    if (rc != AKIDB_OK && rc != AKIDB_NOTFOUND)
        CHECK(rc);
    akidb_collection_config_init(&cfg, 4, AKIDB_METRIC_L2);
    CHECK(akidb_collection_create(db, "quickstart", &cfg));
    CHECK(akidb_insert(db, "quickstart", 3, vectors, ext_ids, meta, ids));

    akidb_search_params_init(&params);
    CHECK(akidb_search(db, "quickstart", query, 3, &params, hits, &n_hits));
    for (uint32_t i = 0; i < n_hits; i++) {
        const char *ext = "?";
        char *json = NULL;
        for (int j = 0; j < 3; j++)
            if (ids[j] == hits[i].id)
                ext = ext_ids[j];
        CHECK(akidb_get(db, "quickstart", hits[i].id, NULL, &json));
        printf("id %" PRIu64 " (%s)  distance %.4f  %s\n", hits[i].id, ext,
               (double)hits[i].distance, json ? json : "(no metadata)");
        akidb_free(json);
    }
    akidb_close(db);
    return 0;

fail:
    akidb_close(db);
    return 1;
}
