/*
 * akidb_v1.h - a FROZEN copy of the version-1 ABI of include/akidb.h: the
 * structs and declarations a program built against the first released
 * header sees.  Never edit it to follow the header: test_abi_v1.c is that
 * old program, built against this file and linked with today's library,
 * and it must keep working (see "Structs that cross the boundary" at the
 * top of include/akidb.h).  Only what the test calls is copied.
 *
 * Frozen at: options version 1, collection config 1, search params 1,
 * collection stats 1, document 1, snapshot info 1, dead-letter entry 1,
 * import options 1, S3 config 1, store methods 1.
 */
#ifndef AKIDB_V1_H
#define AKIDB_V1_H

#include <stddef.h>
#include <stdint.h>

#define AKIDB_OK           0
#define AKIDB_INVALID      4
#define AKIDB_NOTFOUND     5
#define AKIDB_EXISTS       6

typedef struct akidb akidb;
typedef struct akidb_store akidb_store;

typedef struct akidb_allocator {
    void *(*malloc_fn)(void *ctx, size_t size);
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
    void  (*free_fn)(void *ctx, void *ptr);
    void *ctx;
} akidb_allocator;

typedef enum akidb_sync_mode {
    AKIDB_SYNC_ALWAYS = 1, AKIDB_SYNC_INTERVAL = 2, AKIDB_SYNC_NONE = 3
} akidb_sync_mode;

typedef enum akidb_log_level {
    AKIDB_LOG_ERROR = 1, AKIDB_LOG_WARN = 2, AKIDB_LOG_INFO = 3, AKIDB_LOG_DEBUG = 4
} akidb_log_level;

typedef struct akidb_options {
    uint32_t version;              /* 1 */
    akidb_store *store;
    int64_t (*clock_us)(void *ctx);
    void *clock_ctx;
    const akidb_allocator *allocator;
    akidb_sync_mode sync_mode;
    void (*log_fn)(void *ctx, akidb_log_level level, const char *msg);
    void *log_ctx;
    uint64_t checkpoint_bytes;
    uint32_t upload_concurrency;
    uint32_t dlq_max_attempts;
    uint32_t dlq_retry_interval_ms;
    uint32_t dlq_retry_batch;
} akidb_options;

typedef enum akidb_metric {
    AKIDB_METRIC_L2 = 1, AKIDB_METRIC_COSINE = 2, AKIDB_METRIC_DOT = 3
} akidb_metric;

typedef struct akidb_collection_config {
    uint32_t version;              /* 1 */
    uint32_t dim;
    akidb_metric metric;
    uint32_t hnsw_m;
    uint32_t ef_construction;
    uint32_t ef_search;
} akidb_collection_config;

typedef enum akidb_tier { AKIDB_TIER_HOT = 1, AKIDB_TIER_WARM = 2, AKIDB_TIER_COLD = 3 } akidb_tier;

typedef struct akidb_collection_stats {
    uint32_t version;              /* 1 */
    uint32_t dim;
    akidb_metric metric;
    akidb_tier tier;
    int pinned;
    uint64_t count;
    uint64_t deleted;
    uint64_t bytes;
    uint64_t vector_bytes;
    uint64_t graph_bytes;
    uint64_t document_bytes;
    uint64_t log_bytes;
    uint64_t index_lag;
    int64_t created_at_us;
} akidb_collection_stats;

typedef struct akidb_document {
    uint32_t version;              /* 1 */
    uint64_t id;
    char *external_id;
    char *metadata_json;
    int64_t inserted_at_us;
} akidb_document;

typedef struct akidb_search_params {
    uint32_t version;              /* 1 */
    uint32_t ef;
    int exact;
} akidb_search_params;

typedef struct akidb_hit {
    uint64_t id;
    float distance;
} akidb_hit;

typedef struct akidb_snapshot_info {
    uint32_t version;              /* 1 */
    const char *id;
    const char *key;
    uint64_t rows;
    uint64_t bytes;
    const char *sha256;
    int64_t created_at_us;
} akidb_snapshot_info;

#define AKIDB_SNAPSHOT_ID_LEN 48

#define AKIDB_OPTIONS_VERSION 1
#define AKIDB_COLLECTION_CONFIG_VERSION 1
#define AKIDB_SEARCH_PARAMS_VERSION 1

#define akidb_options_init(opts) akidb_options_init_v((opts), AKIDB_OPTIONS_VERSION)
void akidb_options_init_v(akidb_options *opts, uint32_t version);
#define akidb_collection_config_init(cfg, dim, metric) \
    akidb_collection_config_init_v((cfg), (dim), (metric), AKIDB_COLLECTION_CONFIG_VERSION)
void akidb_collection_config_init_v(akidb_collection_config *cfg, uint32_t dim,
                                    akidb_metric metric, uint32_t version);
#define akidb_search_params_init(p) akidb_search_params_init_v((p), AKIDB_SEARCH_PARAMS_VERSION)
void akidb_search_params_init_v(akidb_search_params *p, uint32_t version);

const char *akidb_errname(int rc);
const char *akidb_errmsg(const akidb *db);
void akidb_free(void *p);
int akidb_open(const char *dir, const akidb_options *opts, akidb **out);
int akidb_close(akidb *db);
int akidb_collection_create(akidb *db, const char *name, const akidb_collection_config *cfg);
int akidb_collection_info(akidb *db, const char *name, akidb_collection_config *cfg_out);
int akidb_collection_stat(akidb *db, const char *name, akidb_collection_stats *out);
int akidb_insert(akidb *db, const char *coll, size_t n, const float *vectors,
                 const char *const *external_ids, const char *const *metadata_json,
                 uint64_t *ids_out);
int akidb_document_get(akidb *db, const char *coll, uint64_t id, float *vector_out,
                       akidb_document *doc_out);
void akidb_document_clear(akidb_document *doc);
int akidb_search(akidb *db, const char *coll, const float *query, uint32_t k,
                 const akidb_search_params *params, akidb_hit *hits, uint32_t *n_hits);
int akidb_snapshot_create(akidb *db, const char *coll, char *id_out, size_t id_len);
int akidb_snapshot_list(akidb *db, const char *coll, akidb_snapshot_info ***out,
                        size_t *n_out);

#endif
