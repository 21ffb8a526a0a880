/*
 * metrics.h - per-handle counters and gauges, readable one at a time
 * (akidb_metric_value) or all at once as Prometheus text.  See metrics.c.
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
    X(COLLECTIONS, "akidb_collections", "gauge", "Collections in the database")

typedef enum akidb__metric_id {
#define AKIDB__METRIC_ENUM(id, name, type, help) AKIDB__M_##id,
    AKIDB__METRICS(AKIDB__METRIC_ENUM)
#undef AKIDB__METRIC_ENUM
    AKIDB__M_COUNT
} akidb__metric_id;

typedef struct akidb__metrics {
    int64_t value[AKIDB__M_COUNT];   /* updated with atomic builtins */
} akidb__metrics;

void akidb__metric_add(akidb__metrics *m, akidb__metric_id id, int64_t delta);
void akidb__metric_set(akidb__metrics *m, akidb__metric_id id, int64_t value);
/* Returns 0 and the value, or -1 for an unknown name. */
int akidb__metric_get(const akidb__metrics *m, const char *name, int64_t *value_out);
/* Prometheus text into a new akidb_malloc() string; NULL when out of memory. */
char *akidb__metrics_render(const akidb__metrics *m);

#endif
