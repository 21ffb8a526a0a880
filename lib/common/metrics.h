/*
 * metrics.h - per-handle counters, gauges and histograms, readable one at
 * a time (akidb_metric_value) or all at once as Prometheus text.  See
 * metrics.c.
 */
#ifndef AKIDB_METRICS_H
#define AKIDB_METRICS_H

#include <stdint.h>

/* X(id, name, type, help): the one list of metrics. */
#define AKIDB__METRICS(X)                                                              \
    X(WAL_TRUNCATIONS, "akidb_wal_truncations_total", "counter",                       \
      "Write-ahead logs whose torn or corrupt tail was cut off during recovery")       \
    X(WAL_RECORDS, "akidb_wal_records_total", "counter", "Records appended to logs")   \
    X(WAL_BYTES, "akidb_wal_bytes_total", "counter", "Bytes appended to logs")         \
    X(WAL_SYNCS, "akidb_wal_syncs_total", "counter", "fsync calls made for logs")      \
    X(WAL_REPLAYED, "akidb_wal_replayed_records_total", "counter",                     \
      "Log records replayed during recovery")                                          \
    X(CHECKPOINTS, "akidb_checkpoints_total", "counter", "Checkpoints written")        \
    X(CHECKPOINT_BYTES, "akidb_checkpoint_bytes_total", "counter",                     \
      "Bytes of checkpoint files written (with the log's bytes: write amplification)")  \
    X(CHECKPOINT_ERRORS, "akidb_checkpoint_errors_total", "counter",                   \
      "Checkpoints that failed (the log was kept)")                                    \
    X(DOCS_WRITTEN, "akidb_documents_written_total", "counter",                        \
      "Documents inserted or upserted")                                                \
    X(DOCS_DELETED, "akidb_documents_deleted_total", "counter", "Documents deleted")   \
    X(SEARCHES, "akidb_searches_total", "counter", "Searches run")                     \
    X(STORE_REQUESTS, "akidb_store_requests_total", "counter",                         \
      "Object-store calls attempted (each retry counts)")                              \
    X(STORE_RETRIES, "akidb_store_retries_total", "counter",                           \
      "Object-store calls retried after a transient failure")                          \
    X(STORE_FAILURES, "akidb_store_failures_total", "counter",                         \
      "Object-store operations that failed after all retries")                         \
    X(STORE_BREAKER_OPENS, "akidb_store_breaker_opens_total", "counter",               \
      "Times the object-store circuit breaker opened")                                 \
    X(STORE_BYTES_UP, "akidb_store_bytes_uploaded_total", "counter",                   \
      "Bytes written to the object store")                                             \
    X(STORE_BYTES_DOWN, "akidb_store_bytes_downloaded_total", "counter",               \
      "Bytes read from the object store")                                              \
    X(UPLOADS, "akidb_uploads_total", "counter", "Background uploads that succeeded")   \
    X(DLQ_ADDED, "akidb_dlq_added_total", "counter",                                   \
      "Background uploads that failed and became dead letters")                        \
    X(DLQ_PERMANENT, "akidb_dlq_permanent_total", "counter",                           \
      "Dead letters given up on after the maximum attempts")                           \
    X(COLLECTIONS, "akidb_collections", "gauge", "Collections in the database")        \
    X(INDEX_PENDING, "akidb_index_pending_documents", "gauge",                         \
      "Acknowledged documents not yet linked into a graph (the tails searches scan)")  \
    X(INDEX_LINKED, "akidb_index_linked_total", "counter",                             \
      "Documents linked into a graph, by the indexer or by writers")                   \
    X(INDEX_WRITER_LINKED, "akidb_index_writer_linked_total", "counter",               \
      "Documents linked by writers themselves because a tail passed its bound")        \
    X(INDEX_LINK_US, "akidb_index_link_microseconds_total", "counter",                 \
      "Time spent linking (indexer throughput = linked_total / this)")                  \
    X(QUANT_CLIPPED, "akidb_quant_values_clipped_total", "counter",                    \
      "Vector values clamped to the range of f16 or int8 storage when encoded")

/* X(id, name, labels, type, help): metrics with labels.  Rows that share a
 * name are one family (one HELP and TYPE line); each row is one series,
 * read by akidb_metric_value as `name{labels}` exactly as rendered. */
#define AKIDB__TIER_DIR(X, FROM, TO)                                                   \
    X(TIER_##FROM##_##TO##_OK, "akidb_tier_transitions_total",                         \
      "from=\"" #FROM "\",to=\"" #TO "\",result=\"ok\"", "counter",                   \
      "Tier transitions by direction and result")                                      \
    X(TIER_##FROM##_##TO##_FAILED, "akidb_tier_transitions_total",                     \
      "from=\"" #FROM "\",to=\"" #TO "\",result=\"failed\"", "counter",               \
      "Tier transitions by direction and result")
#define AKIDB__LABELLED_METRICS(X)                                                     \
    X(TIER_COLLS_HOT, "akidb_tier_collections", "tier=\"hot\"", "gauge",              \
      "Collections per tier")                                                          \
    X(TIER_COLLS_WARM, "akidb_tier_collections", "tier=\"warm\"", "gauge",            \
      "Collections per tier")                                                          \
    X(TIER_COLLS_COLD, "akidb_tier_collections", "tier=\"cold\"", "gauge",            \
      "Collections per tier")                                                          \
    X(TIER_BYTES_HOT, "akidb_tier_bytes", "tier=\"hot\"", "gauge",                    \
      "Bytes per tier: RAM (hot), local files (warm), objects (cold)")                 \
    X(TIER_BYTES_WARM, "akidb_tier_bytes", "tier=\"warm\"", "gauge",                  \
      "Bytes per tier: RAM (hot), local files (warm), objects (cold)")                 \
    X(TIER_BYTES_COLD, "akidb_tier_bytes", "tier=\"cold\"", "gauge",                  \
      "Bytes per tier: RAM (hot), local files (warm), objects (cold)")                 \
    AKIDB__TIER_DIR(X, hot, warm)                                                      \
    AKIDB__TIER_DIR(X, warm, cold)                                                     \
    AKIDB__TIER_DIR(X, hot, cold)                                                      \
    AKIDB__TIER_DIR(X, cold, warm)                                                     \
    AKIDB__TIER_DIR(X, warm, hot)                                                      \
    AKIDB__TIER_DIR(X, cold, hot)                                                      \
    X(TIER_FALLBACKS, "akidb_tier_fallbacks_total", "", "counter",                     \
      "Promotions from the cold tier that used an older snapshot because the newest "  \
      "did not verify")                                                                \
    X(TIER_CYCLES, "akidb_tier_worker_cycles_total", "", "counter",                    \
      "Tiering worker cycles run")

/* X(id, name, help): histograms of durations in microseconds, rendered in
 * seconds with the bucket bounds of akidb__histogram_bounds_us. */
#define AKIDB__HISTOGRAMS(X)                                                           \
    X(TIER_LOAD, "akidb_tier_load_seconds",                                            \
      "Time to bring a collection into RAM (a promotion to the hot tier)")

typedef enum akidb__metric_id {
#define AKIDB__METRIC_ENUM(id, name, type, help) AKIDB__M_##id,
    AKIDB__METRICS(AKIDB__METRIC_ENUM)
#undef AKIDB__METRIC_ENUM
#define AKIDB__LMETRIC_ENUM(id, name, labels, type, help) AKIDB__M_##id,
    AKIDB__LABELLED_METRICS(AKIDB__LMETRIC_ENUM)
#undef AKIDB__LMETRIC_ENUM
    AKIDB__M_COUNT
} akidb__metric_id;

typedef enum akidb__histogram_id {
#define AKIDB__HISTO_ENUM(id, name, help) AKIDB__H_##id,
    AKIDB__HISTOGRAMS(AKIDB__HISTO_ENUM)
#undef AKIDB__HISTO_ENUM
    AKIDB__H_COUNT
} akidb__histogram_id;

#define AKIDB__HISTO_BUCKETS 14
/* Upper bounds of the buckets (microseconds); a last bucket is +Inf. */
extern const int64_t akidb__histogram_bounds_us[AKIDB__HISTO_BUCKETS];

typedef struct akidb__histogram {
    int64_t bucket[AKIDB__HISTO_BUCKETS + 1];   /* not cumulative; [last] = +Inf */
    int64_t sum_us;
    int64_t count;
} akidb__histogram;

typedef struct akidb__metrics {
    int64_t value[AKIDB__M_COUNT];   /* updated with atomic builtins */
    akidb__histogram histo[AKIDB__H_COUNT];
} akidb__metrics;

void akidb__metric_add(akidb__metrics *m, akidb__metric_id id, int64_t delta);
void akidb__metric_set(akidb__metrics *m, akidb__metric_id id, int64_t value);
void akidb__histogram_observe(akidb__metrics *m, akidb__histogram_id id, int64_t us);
/* Returns 0 and the value, or -1 for an unknown name.  Labelled series
 * are named as rendered (`akidb_tier_collections{tier="hot"}`); of a
 * histogram, `NAME_count` and `NAME_bucket{le="B"}` (cumulative). */
int akidb__metric_get(const akidb__metrics *m, const char *name, int64_t *value_out);
/* Prometheus text into a new akidb_malloc() string; NULL when out of memory. */
char *akidb__metrics_render(const akidb__metrics *m);

#endif
