/*
 * akidb.h - the public interface of libakidb, an embeddable vector database.
 *
 * This header is the contract between libakidb and the programs that link it
 * (the akidb-server, the examples, the Python/Go bindings through FFI, and
 * any edge application).  Everything here is part of the stable C ABI:
 *
 *   - Result codes are frozen: a value, once released, never changes meaning.
 *   - Structs that cross the boundary begin with a `version` field.  New
 *     fields are only ever appended, under a higher version, and the
 *     library accepts every version from 1 to the current one, reading or
 *     writing only the fields the caller's version has:
 *       - input structs (options, settings) are filled by their *_init()
 *         function, which sets version;
 *       - output structs the caller allocates (akidb_collection_stats,
 *         akidb_document, akidb_collection_config for akidb_collection_info)
 *         have their version set by the caller before the call;
 *       - arrays the library allocates (snapshot and dead-letter lists)
 *         are arrays of pointers to entries, each entry carrying the
 *         library's version, so entries can grow without moving.
 *     So a program built against an older header keeps working with a
 *     newer library of the same major version.
 *   - Handles are opaque.  Only symbols prefixed `akidb_` are exported.
 *
 * Ownership rules, stated once and repeated on each declaration:
 *   - Inputs (strings, vectors, option structs) are copied before the call
 *     returns; the caller may free or reuse them immediately afterwards.
 *   - Memory that the library allocates *for the caller* is released with
 *     akidb_free().  It comes from akidb_malloc() (the C library's malloc),
 *     never from the per-handle allocator, so akidb_free() needs no handle.
 *
 * Thread rules:
 *   - One akidb handle may be shared by any number of threads.
 *   - Searches on a collection run in parallel; writes (insert, upsert,
 *     delete) to one collection are serialized; writes to different
 *     collections proceed in parallel.
 *   - akidb_errmsg() is per thread: a message describes the last call that
 *     the *calling* thread made, so server threads sharing one handle never
 *     see each other's errors.
 *   - akidb_close() must not race with other calls on the same handle.
 *   - Each handle runs an indexer thread (started by akidb_open, joined by
 *     akidb_close) that links acknowledged writes into the HNSW graphs in
 *     short slices under each collection's write lock; see "Visibility
 *     and indexing".
 *
 * The header compiles as C99 (-pedantic) and as C++.
 */
#ifndef AKIDB_H
#define AKIDB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define AKIDB_API __declspec(dllexport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define AKIDB_API __attribute__((visibility("default")))
#else
#  define AKIDB_API
#endif

/* ------------------------------------------------------------------------
 * Version
 * --------------------------------------------------------------------- */

#define AKIDB_VERSION_MAJOR 0
#define AKIDB_VERSION_MINOR 1
#define AKIDB_VERSION_PATCH 0
#define AKIDB_VERSION_NUMBER \
    (AKIDB_VERSION_MAJOR * 10000 + AKIDB_VERSION_MINOR * 100 + AKIDB_VERSION_PATCH)
#define AKIDB_VERSION_STRING "0.1.0"

/* The version of the library actually linked, as "MAJOR.MINOR.PATCH".
 * Returns a static string; never NULL.  Thread safe. */
AKIDB_API const char *akidb_version(void);

/* The linked library's AKIDB_VERSION_NUMBER.  Compare with the macro to
 * detect a header/library mismatch at run time.  Thread safe. */
AKIDB_API int akidb_version_number(void);

/* ------------------------------------------------------------------------
 * Result codes (frozen)
 * --------------------------------------------------------------------- */

/* The result codes, in one table: X(NAME, value, text).  It generates the
 * AKIDB_* constants, akidb_errstr() and akidb_errname(), so the three can
 * never drift apart.  Values are frozen; new codes are only appended.
 *   OK           success
 *   ERROR        an internal error that fits no other code
 *   NOMEM        an allocation failed; nothing was changed
 *   MISUSE       API used wrongly: NULL handle, NULL out-parameter
 *   INVALID      an argument or input value is not acceptable
 *   NOTFOUND     collection, id or key does not exist
 *   EXISTS       the thing being created already exists
 *   IOERR        the operating system reported an I/O error
 *   CORRUPT      stored data failed a consistency check
 *   CONFLICT     a concurrent change made the request fail
 *   BUSY         a lock is held elsewhere (e.g. another process)
 *   QUOTA        a configured limit would be exceeded
 *   UNAVAILABLE  a remote service cannot be reached right now
 *   READONLY     a write on a handle opened read-only */
#define AKIDB_ERRNO_MAP(X)                                   \
    X(OK,           0, "not an error")                      \
    X(ERROR,        1, "internal error")                    \
    X(NOMEM,        2, "out of memory")                     \
    X(MISUSE,       3, "library used incorrectly")          \
    X(INVALID,      4, "invalid argument")                  \
    X(NOTFOUND,     5, "not found")                         \
    X(EXISTS,       6, "already exists")                    \
    X(IOERR,        7, "I/O error")                         \
    X(CORRUPT,      8, "data is corrupt")                   \
    X(CONFLICT,     9, "conflicting concurrent change")     \
    X(BUSY,        10, "resource busy")                     \
    X(QUOTA,       11, "limit exceeded")                    \
    X(UNAVAILABLE, 12, "service unavailable")               \
    X(READONLY,    13, "database is read-only")

/* The codes as constants: AKIDB_OK, AKIDB_ERROR, ... AKIDB_READONLY. */
typedef enum akidb_result {
#define AKIDB__RC_ENUM(name, value, text) AKIDB_##name = value,
    AKIDB_ERRNO_MAP(AKIDB__RC_ENUM)
#undef AKIDB__RC_ENUM
    AKIDB__RC_END   /* one past the last code; not a code */
} akidb_result;

/* Static English text for a result code ("not found", ...).  Unknown codes
 * give "unknown error".  Never NULL; the string lives forever.  Thread safe. */
AKIDB_API const char *akidb_errstr(int rc);

/* The name of a result code as it is spelled in C ("AKIDB_NOTFOUND"), for
 * logs and for bindings that map codes to exceptions.  Unknown codes give
 * "AKIDB_UNKNOWN".  Never NULL; static.  Thread safe. */
AKIDB_API const char *akidb_errname(int rc);

/* ------------------------------------------------------------------------
 * Memory
 * --------------------------------------------------------------------- */

/* Allocate n bytes with the allocator used for memory handed to callers (the
 * C library's malloc).  Custom object-store backends allocate returned
 * buffers with this.  Returns NULL when out of memory.  Thread safe. */
AKIDB_API void *akidb_malloc(size_t n);

/* Release memory that the library returned to the caller (for example the
 * metadata string of akidb_get()).  NULL is a no-op.  Thread safe. */
AKIDB_API void akidb_free(void *p);

/* Per-handle allocator for the library's own memory (vectors, graph, ids).
 * Every function must be set, or the whole struct left NULL in the options.
 * realloc_fn follows realloc() semantics (ptr NULL = malloc); allocations
 * are freed with free_fn.  The functions are called from any thread that
 * uses the handle, and must be thread safe.  Alignment: at least that of
 * malloc(); the library aligns vector storage itself.
 * What it covers: everything a handle keeps for its collections and their
 * logs, checkpoints, snapshots and imports (documents, vectors, graph,
 * lookup tables, I/O buffers).  What it does not: memory handed to the
 * caller (akidb_malloc, freed with akidb_free), the object stores (which
 * exist without a handle: akidb_store_*_open use the C library), the
 * catalog's SQLite, libcurl, OpenSSL and jansson (which checks metadata
 * JSON on insert), which allocate on their own. */
typedef struct akidb_allocator {
    void *(*malloc_fn)(void *ctx, size_t size);
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
    void  (*free_fn)(void *ctx, void *ptr);
    void *ctx;
} akidb_allocator;

/* ------------------------------------------------------------------------
 * Opening a database
 * --------------------------------------------------------------------- */

/* A database handle (opaque): from akidb_open(), released by akidb_close(). */
typedef struct akidb akidb;

/* An object store: see "Object stores" below.  The handle keeps its
 * snapshots and background uploads there. */
typedef struct akidb_store akidb_store;

/* Durability of acknowledged writes (used by the write-ahead log). */
typedef enum akidb_sync_mode {
    AKIDB_SYNC_ALWAYS   = 1, /* fsync before each write call returns (default) */
    AKIDB_SYNC_INTERVAL = 2, /* group commit: writers waiting together share one fsync */
    AKIDB_SYNC_NONE     = 3  /* leave flushing to the operating system */
} akidb_sync_mode;

/* Log levels for the log callback. */
typedef enum akidb_log_level {
    AKIDB_LOG_ERROR = 1,
    AKIDB_LOG_WARN  = 2,
    AKIDB_LOG_INFO  = 3,
    AKIDB_LOG_DEBUG = 4
} akidb_log_level;

#define AKIDB_OPTIONS_VERSION 3

/* Options for akidb_open().  Always fill with akidb_options_init() first,
 * then change the fields you need.  All pointers are borrowed: the library
 * keeps `store`, the callbacks and their contexts (not copies) until
 * akidb_close(), so they must stay valid that long. */
typedef struct akidb_options {
    uint32_t version;              /* AKIDB_OPTIONS_VERSION */
    /* Object store for the cold tier, snapshots and uploads; borrowed.
     * NULL = a local store in dir/objects, owned by the handle. */
    akidb_store *store;
    int64_t (*clock_us)(void *ctx);/* microseconds since the epoch; NULL = real time */
    void *clock_ctx;
    const akidb_allocator *allocator; /* NULL = malloc/realloc/free; copied at open */
    akidb_sync_mode sync_mode;     /* default AKIDB_SYNC_ALWAYS */
    /* Log callback: called from the thread doing the work, with a message
     * that is valid only during the call.  NULL = no logging. */
    void (*log_fn)(void *ctx, akidb_log_level level, const char *msg);
    void *log_ctx;
    /* A collection's write-ahead log is checkpointed (state written out,
     * log emptied) once it grows past this many bytes.  0 = 64 MiB, or the
     * size of the collection's last checkpoint file if that is larger: a
     * checkpoint rewrites the whole collection, so this keeps the bytes
     * written by checkpoints to at most about one per byte logged however
     * large the collection grows. */
    uint64_t checkpoint_bytes;
    /* Uploads to the object store kept in flight at once.  0 = 16. */
    uint32_t upload_concurrency;
    /* A failed background upload (a dead letter) is retried this many
     * times in all before it is marked permanent.  0 = 5. */
    uint32_t dlq_max_attempts;
    /* How often the background thread retries due dead letters, and how
     * many per cycle.  0 = every 1000 ms, 10 per cycle;
     * interval AKIDB_NEVER = no background thread (retry by hand). */
    uint32_t dlq_retry_interval_ms;
    uint32_t dlq_retry_batch;

    /* ---- version 2 ---- */
    /* Non-zero: open read-only.  The directory is locked shared (other
     * read-only handles may open it; a writer gets AKIDB_BUSY, and a
     * read-only open of a directory a writer holds gets AKIDB_BUSY), no file
     * is created or changed (no directory, no catalog upgrade, no cleanup
     * of tmp/ or of a dropped collection's files, no checkpoint, no log
     * truncation: a torn log tail is skipped in memory only), the database
     * must already exist (AKIDB_NOTFOUND otherwise), and every write
     * returns AKIDB_READONLY: insert, upsert, delete, collection create and
     * drop, checkpoint, snapshot create, restore and delete, kv put and
     * delete, uploads and dead-letter retry and purge (an import, which
     * writes, fails on its first write).  There are no background threads
     * but the indexer (which links replayed writes into the graphs in
     * RAM and writes no file) and, unless `store` is given, no object
     * store.  A catalog written by
     * an older library that a read-write open would upgrade gives
     * AKIDB_READONLY: open it read-write once.  One exception to "no file
     * is changed": when a crash left the catalog's SQLite journal
     * (akidb.db-wal) unapplied, SQLite reads it through its index
     * akidb.db-shm, which it may rebuild (never the catalog or the
     * journal).  Works on read-only media (a read-only mount); the one
     * thing it then cannot read is such a journal without its index
     * beside it: AKIDB_IOERR, saying so.  For read-only media and for
     * inspecting a database safely. */
    int read_only;
    /* Permission bits of the files the library creates, before the process
     * umask: the catalog akidb.db (and SQLite's akidb.db-wal and
     * akidb.db-shm, which take the catalog's), LOCK, logs, checkpoints,
     * snapshot copies in tmp/, the files akidb_export_parquet writes, and
     * the objects of the default local store.  Directories (the database
     * directory when the open creates it, wal/, ckpt/, tmp/, objects/ and
     * below) get the same bits plus x wherever r is set (0600 gives
     * 0700).  Files that exist keep their mode.  0 = 0644.  Only the 0777
     * bits are used. */
    uint32_t file_mode;
    /* Tiering (see "Tiering" below): the database's default policy, which
     * akidb_tier_policy_apply() changes at run time and overrides per
     * collection.  0 always means the default.
     *   tier_hot_ttl_s       idle seconds before HOT -> WARM (6 h)
     *   tier_warm_ttl_s      idle seconds before WARM -> COLD (7 d)
     *                        (AKIDB_TIER_TTL_NEVER: never, for either)
     *   tier_promote_per_hour  accesses per hour at which the worker
     *                        brings a WARM or COLD collection back (10)
     *   tier_disabled        non-zero: the worker moves nothing
     *   memory_budget        bytes of HOT data (vectors + graph +
     *                        documents) the handle keeps (unlimited)
     *   store_quota          bytes of snapshots in the store (unlimited)
     *   snapshot_retention   tier snapshots kept per collection (3)
     *   max_collections      collections the database may hold (unlimited)
     *   tier_interval_ms     how often the worker runs (60000);
     *                        AKIDB_NEVER: no worker thread (call
     *                        akidb_tier_run_once yourself) */
    uint64_t tier_hot_ttl_s;
    uint64_t tier_warm_ttl_s;
    uint32_t tier_promote_per_hour;
    int tier_disabled;
    uint64_t memory_budget;
    uint64_t store_quota;
    uint32_t snapshot_retention;
    uint32_t max_collections;
    uint32_t tier_interval_ms;

    /* ---- version 3 ---- */
    /* The bound on a collection's index lag (its "tail": acknowledged
     * documents not yet linked into the HNSW graph, which every search
     * scans exactly; see "Visibility and indexing" below).  While a tail
     * holds more documents than this, a write links nodes itself before
     * it returns until the tail is within the bound again: writes slow
     * down to the indexing rate instead of the tail, and the cost it adds
     * to every search, growing without limit.  0 = the number of vectors
     * of the collection's dimension that fill 8 MiB (16384 at 128-d, 2674
     * at 784-d; at least 1024, at most 2^20), whose exact scan costs a few
     * graph searches.  AKIDB_NEVER = no bound.  While a checkpoint or a
     * demotion of the collection is being written, linking pauses and
     * writers do not link: the tail may pass the bound until it ends. */
    uint32_t max_index_lag;
} akidb_options;

/* A TTL that never expires (tier_hot_ttl_s, tier_warm_ttl_s, policies). */
#define AKIDB_TIER_TTL_NEVER UINT64_MAX

/* An interval that never elapses (akidb_options.dlq_retry_interval_ms,
 * tier_interval_ms). */
#define AKIDB_NEVER 0xFFFFFFFFu

/* Fill *opts with the defaults (version set, everything else default).
 * A macro over akidb_options_init_v(), which is the exported function: it
 * passes the version this program was compiled with, so the library
 * writes exactly the fields that version has (zlib's deflateInit does the
 * same).  Bindings that lay out the struct themselves call the _v form
 * with the version of their layout.  A NULL opts, or a version the library
 * does not know (0 or newer: then only opts->version is set, so the next
 * call that reads the struct names the problem), is otherwise ignored.
 * Thread safe. */
#define akidb_options_init(opts) akidb_options_init_v((opts), AKIDB_OPTIONS_VERSION)
AKIDB_API void akidb_options_init_v(akidb_options *opts, uint32_t version);

/* Open (creating if needed) the database in directory `dir`.
 *   dir   in: path of the database directory; created if it does not exist
 *             (its parent must exist; a read-only open creates nothing).
 *   opts  in: NULL for defaults; copied except for the borrowed pointers
 *             described at akidb_options.
 *   out   out: the new handle on success, NULL on failure.
 * The directory holds akidb.db (the SQLite catalog, with SQLite's
 * akidb.db-wal and akidb.db-shm beside it), wal/ (one write-ahead log per
 * collection), ckpt/ (checkpoints), tmp/ (snapshot copies while they are
 * written), objects/ (the default object store) and LOCK.  The directory
 * itself is locked (flock) for the handle's life, exclusively or, read-
 * only, shared; deleting a file inside it (LOCK included) does not unlock
 * it.  Opening recovers every collection: its last checkpoint, then its
 * log replayed into memory.  No graph work happens during the open:
 * documents not yet linked into the HNSW graph (the checkpoint's tail and
 * every replayed insert) are searchable at once by exact scan and are
 * linked by the handle's background indexer thread after akidb_open()
 * returns (see "Visibility and indexing"), so the open costs about a read
 * of the files.  A torn log tail (a crash mid-write) is cut at the last
 * valid record and reported through the log callback, the metric
 * akidb_wal_truncations_total and the collection's stats
 * (log_truncated_bytes); it does not fail the open.  Damage to a record
 * that the log shows had been synced is AKIDB_CORRUPT instead (under
 * AKIDB_SYNC_ALWAYS that includes the last record: a sync marker after
 * each write says so; under INTERVAL and NONE the last records cannot be
 * told from a torn tail).  Snapshot copies that a killed process left in
 * tmp/ are removed (not by a read-only open).
 * Returns AKIDB_OK, AKIDB_MISUSE (dir or out NULL), AKIDB_INVALID (bad
 * option values, unsupported options version, a catalog written by a newer
 * library), AKIDB_BUSY (another handle, in this or another process, has the
 * directory open: any handle for a writer, a writer for a reader),
 * AKIDB_CORRUPT (catalog, log or checkpoint damaged; the message names the
 * file), AKIDB_IOERR (directory or files cannot be created or read),
 * AKIDB_NOTFOUND (read-only, and no database there), AKIDB_READONLY
 * (read-only, and the catalog needs an upgrade), AKIDB_NOMEM.
 * On failure akidb_errmsg(NULL) on the same thread explains why.
 * Thread safe. */
AKIDB_API int akidb_open(const char *dir, const akidb_options *opts, akidb **out);

/* Close the handle and free everything it owns.  The indexer thread is
 * stopped (it does not finish the tails: they are saved as they are and
 * linked after the next open).  Collections whose log holds records, or
 * whose graph grew since their last checkpoint, are checkpointed first,
 * so the next open needs no replay; so are collections whose log or checkpoint file was deleted while the
 * handle was open, which writes them out again (and makes a new log).  A
 * checkpoint failure is reported but the handle is still closed; no
 * acknowledged write is lost then (the log is kept), unless the
 * collection's log or checkpoint had been deleted: then what only memory
 * held is lost, and the message says which collection and file.  A
 * read-only handle writes nothing.  NULL is a no-op returning AKIDB_OK.
 * No other call on this handle may be running or start later.
 * Returns AKIDB_OK, or AKIDB_IOERR/AKIDB_NOMEM when a checkpoint failed. */
AKIDB_API int akidb_close(akidb *db);

/* The calling thread's message for the last failed library call, with
 * context (collection name, bad value, ...), or "not an error" when that
 * call succeeded.  `db` may be NULL (e.g. after a failed akidb_open()).
 * The string is owned by the library and valid until the calling thread's
 * next akidb_* call.  Never NULL.  Thread safe (thread-local storage). */
AKIDB_API const char *akidb_errmsg(const akidb *db);

/* Write collection `name` (NULL = every collection) out as a checkpoint
 * and empty its write-ahead log, atomically (temporary file, fsync, rename,
 * fsync of the directory).  The checkpoint, DIR/ckpt/N.ckpt, is a Parquet
 * file in the snapshot format that also keeps deleted nodes (flagged in
 * its hnsw_deleted column), so a reopen loads the exact graph; documents
 * not linked yet are saved as the graph's tail (it does not wait for the
 * indexer) and are linked after the next open.  Searches
 * continue meanwhile; writes to that collection wait.  Happens by itself
 * when a log passes checkpoint_bytes and at akidb_close().  A collection
 * whose log or checkpoint was deleted while open is written out whatever
 * its log holds, a new log made, and its writes accepted again.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID, AKIDB_NOTFOUND,
 * AKIDB_READONLY, AKIDB_IOERR, AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_checkpoint(akidb *db, const char *name);

/* Read the metric `name` (for example "akidb_wal_truncations_total") into
 * *value_out.  Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_NOTFOUND (unknown
 * name).  Thread safe. */
AKIDB_API int akidb_metric_value(akidb *db, const char *name, int64_t *value_out);

/* Render every metric in the Prometheus text exposition format (version
 * 0.0.4) into a new NUL-terminated string; free it with akidb_free().
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_metrics_render(akidb *db, char **text_out);

/* ------------------------------------------------------------------------
 * Collections
 * --------------------------------------------------------------------- */

/* Distance metrics.  Every distance is "smaller is closer":
 *   L2      squared Euclidean distance, sum((a[i]-b[i])^2), range [0, inf).
 *   COSINE  1 - cos(a, b), range [0, 2].  Vectors are normalised to unit
 *           length on insert (akidb_get() returns the normalised vector);
 *           the zero vector cannot be normalised and is AKIDB_INVALID.
 *   DOT     negative inner product, -sum(a[i]*b[i]), range (-inf, inf). */
typedef enum akidb_metric {
    AKIDB_METRIC_L2 = 1,
    AKIDB_METRIC_COSINE = 2,
    AKIDB_METRIC_DOT = 3
} akidb_metric;

#define AKIDB_MAX_DIM            4096
#define AKIDB_MAX_NAME_LEN       64
#define AKIDB_MAX_EXTERNAL_ID_LEN 1024
#define AKIDB_COLLECTION_CONFIG_VERSION 2

/* How a collection stores the vectors its graph search walks on (chosen
 * at creation, never changed; akidb_collection_info reports it).  Memory
 * per vector of dim dimensions, besides the graph (about 8M bytes at
 * hnsw_m = M) and the documents:
 *   F32   4 x dim bytes (dim rounded up to 16).  Distances exact.  The
 *         default, and what every collection made before this field was.
 *   F16   IEEE binary16 copy, 2 x dim bytes (dim rounded up to 16),
 *         walked at half the memory traffic; values beyond +-32752 are
 *         clamped in that copy (and counted, metric
 *         akidb_quant_values_clipped_total).  With exact vectors (below)
 *         add 4 x dim bytes: the result is re-ranked on them, so returned
 *         distances are exact f32 distances.
 *   INT8  one byte per dimension (dim rounded up to 4, plus 8 bytes)
 *         on a grid with one scale and a per-dimension
 *         offset, trained on the collection's first 4096 vectors (after
 *         normalisation for COSINE; until then the collection searches
 *         its f32 vectors exactly).  Values outside the trained range are
 *         clamped to the grid's ends and counted (same metric).  With
 *         exact vectors add 4 x dim bytes; returned distances are then
 *         exact f32 distances.  For L2 and COSINE each vector also keeps
 *         its distance to its grid point, and re-ranking skips a
 *         candidate whose grid distance, less that and the query's, is
 *         already beyond the k-th exact distance: the same results as
 *         re-ranking every candidate, from fewer exact vectors.
 * The files the library writes keep the f32 vectors in every case, so
 * other tools read a collection of any storage kind alike
 * (docs/FORMATS.md). */
typedef enum akidb_storage {
    AKIDB_STORAGE_F32 = 1,
    AKIDB_STORAGE_F16 = 2,
    AKIDB_STORAGE_INT8 = 3
} akidb_storage;

/* Where an F16 or INT8 collection keeps its exact (f32) vectors:
 *   RAM   a copy of every vector in memory (4 x dim bytes each).  A search
 *         re-ranks its best rerank x k candidates on them, so the
 *         distances returned are exact and recall is that of f32 at the
 *         same ef (within ~0.002 in the test suite).
 *   FILE  only in the collection's checkpoint file (DIR/ckpt/N.ckpt, the
 *         WARM tier's file), read one vector at a time (pread, through
 *         the page cache) for re-ranking: distances and recall as with
 *         RAM, at the least memory.  What stays in RAM are the vectors no
 *         checkpoint holds yet (written since the last one, which the log
 *         threshold bounds; akidb_checkpoint() moves them to the file),
 *         the graph's tail, and, for INT8, the first 4096 until the grid
 *         is trained.  Costs a system call per re-ranked vector (about
 *         2 us each on the VM measured: at the default rerank 2 and
 *         k 10, ~45 us a search, which halves the QPS of RAM at a small
 *         ef and costs 20-35% at ef 64; docs/BENCHMARKS.md) and, once the
 *         page cache has dropped the file, a disk read.  With a cold
 *         cache the first read that would wait for the disk (a
 *         RWF_NOWAIT read that cannot be served from the cache) starts
 *         the reads of the candidates after it at once, so they overlap:
 *         ~4,500 searches a second with the file dropped from the cache
 *         against ~12,000 warm (clustered 100k x 384, ef 16-32, one
 *         thread, on the VM measured).  The file's bytes are checked
 *         (CRC-32C) when it is written and when it is loaded, not at each
 *         read; a read that fails (the file truncated or the disk failing
 *         under the handle) fails that search with AKIDB_CORRUPT or
 *         AKIDB_IOERR naming the file.  akidb_collection_stats counts
 *         only the RAM copies in vector_bytes (the page cache is the
 *         kernel's to reclaim).
 *   NONE  no copy once a vector is in the graph (only the vectors not yet
 *         linked, and the newest partly filled block of up to 1024, keep
 *         theirs): the least memory, but the distances returned are
 *         computed on the compact copy, approximate (f16: relative error
 *         ~1e-3; int8: the grid's step), and so is the ranking (int8
 *         recall@10 0.973 where f32 and RAM reach 0.9997, on 30k clustered
 *         96-dimensional floats at ef 64; f16 0.9987);
 *         akidb_get() returns the decoded compact vector, and the files
 *         written hold those decoded values.
 * Ignored for F32, whose vectors are exact. */
typedef enum akidb_exact_vectors {
    AKIDB_EXACT_RAM = 0,
    AKIDB_EXACT_FILE = 1,
    AKIDB_EXACT_NONE = 2
} akidb_exact_vectors;

/* Collection settings.  Fill with akidb_collection_config_init().
 *   hnsw_m           graph degree M (2..128, default 16; level 0 uses 2M)
 *   ef_construction  candidate list size while inserting (>= 1, default 200)
 *   ef_search        default candidate list size while searching (>= 1,
 *                    default 64); a search uses max(ef, k).
 * Version 2:
 *   storage          AKIDB_STORAGE_F32 (default; 0 reads as F32, for a
 *                    struct zeroed rather than filled by init), _F16 or
 *                    _INT8 (above)
 *   exact            AKIDB_EXACT_RAM (default), _FILE or _NONE (above)
 *   rerank           F16/INT8: a search walks at least rerank x k
 *                    candidates and re-ranks them on the exact vectors;
 *                    0 = the default (2); 1..64.  Ignored for F32.
 * A version 1 struct makes an F32 collection. */
typedef struct akidb_collection_config {
    uint32_t version;
    uint32_t dim;
    akidb_metric metric;
    uint32_t hnsw_m;
    uint32_t ef_construction;
    uint32_t ef_search;
    /* version 2 */
    akidb_storage storage;
    akidb_exact_vectors exact;
    uint32_t rerank;
} akidb_collection_config;

/* Fill *cfg with defaults for a collection of `dim` dimensions and
 * `metric`.  A macro over the exported akidb_collection_config_init_v(),
 * like akidb_options_init.  A NULL cfg is ignored.  Thread safe. */
#define akidb_collection_config_init(cfg, dim, metric) \
    akidb_collection_config_init_v((cfg), (dim), (metric), AKIDB_COLLECTION_CONFIG_VERSION)
AKIDB_API void akidb_collection_config_init_v(akidb_collection_config *cfg, uint32_t dim,
                                              akidb_metric metric, uint32_t version);

/* Create collection `name` ([A-Za-z0-9_-]{1,64}), durably (recorded in
 * the catalog, its empty log created and synced).  Snapshots of an
 * earlier collection of the same name are listed for it
 * (akidb_snapshot_list).
 * Returns AKIDB_OK, AKIDB_MISUSE (db/name/cfg NULL), AKIDB_INVALID (bad
 * name, dim outside 1..4096, unknown metric, bad HNSW parameter, unknown
 * storage, exact or rerank value, unknown config version: the message
 * names the field and the value), AKIDB_EXISTS,
 * AKIDB_READONLY, AKIDB_IOERR, AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_collection_create(akidb *db, const char *name,
                                      const akidb_collection_config *cfg);

/* Drop collection `name` and all its documents, and delete its files.
 * Waits for searches and writes in flight on it to finish.  Its snapshots
 * are kept: they are backups, recorded in the catalog under the name.
 * The copies the cold tier made of it (docs/TIERING.md) are not backups:
 * they are deleted from the store (by the tier worker, across a crash).
 * Once a collection of that name exists again, akidb_snapshot_list lists
 * them, akidb_snapshot_restore restores them into it (same dim, metric and
 * hnsw_m) and akidb_snapshot_delete deletes them; so every snapshot stays
 * reachable, and deleting it is the one way it goes.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID (bad name), AKIDB_NOTFOUND,
 * AKIDB_READONLY, AKIDB_IOERR.  Thread safe. */
AKIDB_API int akidb_collection_drop(akidb *db, const char *name);

/* Number of live (not deleted) documents in `name`, through *n_out.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID, AKIDB_NOTFOUND.
 * Thread safe. */
AKIDB_API int akidb_collection_count(akidb *db, const char *name, uint64_t *n_out);

/* Read the settings of collection `name` into *cfg_out.
 *   cfg_out  in/out: the caller sets cfg_out->version (to
 *            AKIDB_COLLECTION_CONFIG_VERSION, or by calling
 *            akidb_collection_config_init); the library fills the fields of
 *            that version and leaves the rest of the struct alone.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID (bad name, cfg_out->version
 * 0 or newer than this library), AKIDB_NOTFOUND.  Thread safe. */
AKIDB_API int akidb_collection_info(akidb *db, const char *name,
                                    akidb_collection_config *cfg_out);

/* The names of every collection, in ascending byte order.
 *   names_out  out: ONE allocation holding the array of n pointers and the
 *              strings they point to; free it with akidb_free(names).
 *              NULL when *n_out is 0.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_collection_list(akidb *db, char ***names_out, size_t *n_out);

/* Where a collection's data lives.  See the tiering functions. */
typedef enum akidb_tier {
    AKIDB_TIER_HOT = 1,   /* vectors and graph in RAM, log open */
    AKIDB_TIER_WARM = 2,  /* in a local file; RAM released */
    AKIDB_TIER_COLD = 3   /* only in the object store */
} akidb_tier;

#define AKIDB_COLLECTION_STATS_VERSION 3

/* What a collection holds right now (akidb_collection_stat).  Byte counts
 * are the library's own accounting of its allocations, close to (not
 * exactly) what the allocator holds. */
typedef struct akidb_collection_stats {
    uint32_t version;          /* in: set by the caller */
    uint32_t dim;
    akidb_metric metric;
    akidb_tier tier;
    int pinned;                /* never demoted by the tiering policy */
    uint64_t count;            /* live documents */
    uint64_t deleted;          /* deleted documents whose nodes stay in the graph */
    uint64_t bytes;            /* RAM held: vector + compact + graph + document
                                * bytes (what the tier's memory budget counts) */
    uint64_t vector_bytes;     /* float vectors held in RAM: every vector with
                                * AKIDB_STORAGE_F32 or AKIDB_EXACT_RAM; with
                                * AKIDB_EXACT_NONE only those not linked yet and
                                * the last, partly filled block of 1024 */
    uint64_t graph_bytes;      /* HNSW links and bookkeeping */
    uint64_t document_bytes;   /* ids, external ids, metadata, lookup tables */
    uint64_t log_bytes;        /* write-ahead log not yet folded into a checkpoint */
    uint64_t index_lag;        /* acknowledged documents not yet in the graph: the
                                * tail, which searches scan exactly */
    int64_t created_at_us;

    /* ---- version 2 ---- */
    /* Bytes of torn or damaged log tail that opening this handle cut off
     * (a read-only handle: skipped in memory), 0 normally.  Non-zero
     * means the log ended in a record that was incomplete or damaged and
     * that nothing in the log showed to be synced: taken for a write a
     * crash interrupted, and dropped.  Visible here without a log
     * callback; akidb_wal_truncations_total counts such cuts. */
    uint64_t log_truncated_bytes;

    /* ---- version 3 ---- */
    /* The compact copy the graph is walked on (AKIDB_STORAGE_F16: 2 bytes
     * a dimension, AKIDB_STORAGE_INT8: 1 byte a dimension, rounded
     * up to 4, plus 8 a vector) and the int8 quantiser's
     * parameters; 0 for AKIDB_STORAGE_F32.  Counted in `bytes`. */
    uint64_t compact_bytes;
} akidb_collection_stats;

/* Fill *out with the state of collection `name`.
 *   out  in/out: the caller sets out->version to
 *        AKIDB_COLLECTION_STATS_VERSION; the library fills the fields of
 *        that version only.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID (bad name or version),
 * AKIDB_NOTFOUND.  Thread safe. */
AKIDB_API int akidb_collection_stat(akidb *db, const char *name,
                                    akidb_collection_stats *out);

/* ------------------------------------------------------------------------
 * Documents
 * --------------------------------------------------------------------- */

/* Durability of every write below: a write is acknowledged (returns
 * AKIDB_OK) only once its record is in the collection's write-ahead log
 * under the handle's sync mode: ALWAYS, fsync'ed before the call returns
 * (a failed write or fsync leaves nothing applied); INTERVAL, fsync'ed
 * before the call returns, the fsync shared with concurrent writers (if
 * that fsync fails the call returns AKIDB_IOERR although its change is
 * already visible, and the collection refuses further writes until the
 * database is reopened); NONE, written to the operating system, which
 * survives a crash of the process but not of the machine.  Write errors,
 * a full disk included, return AKIDB_IOERR and leave the collection as it
 * was and usable.  A write into a collection whose log file was deleted
 * while the database was open (checked after every fsync, and under NONE
 * after every write) or whose checkpoint file was (checked after every
 * fsync) is not acknowledged: AKIDB_IOERR naming the file, and so are the
 * writes after it until akidb_checkpoint() or akidb_close() has written
 * the collection out again.  (INTERVAL: as for a failed fsync, the
 * change of the write that found out is visible though not
 * acknowledged.)
 *
 * Visibility and indexing: an acknowledged write is visible at once to
 * every later call on the handle (akidb_get, akidb_lookup, counts, and
 * akidb_search, graph or exact); a delete or an upsert hides the old
 * document at once.  Linking a new document into the HNSW graph happens
 * afterwards, on the handle's indexer thread; until then the document is
 * in the collection's tail, which akidb_search scans exactly and merges
 * with the graph's results, so a search never misses a document because
 * indexing lags.  The tail's size is akidb_collection_stats.index_lag
 * (and the metric akidb_index_pending_documents); it is bounded by
 * akidb_options.max_index_lag: past it, writers link nodes themselves
 * before they return (back-pressure).  akidb_index_wait() waits for the
 * tails to drain.  The graph is the same whenever the linking happens:
 * nodes are linked in the order they were written.  A collection moved
 * out of RAM by tiering (WARM or COLD) keeps its tail in the file it was
 * saved to; when it comes back HOT the indexer links it. */

/* Insert n documents into `coll`.
 *   vectors        in: n*dim floats, row-major.  Every value must be finite.
 *   external_ids   in: NULL, or n entries; an entry may be NULL (no external
 *                  id).  Non-NULL entries are 1..1024 bytes of valid UTF-8
 *                  (no control characters below U+0020 other than tab, no
 *                  C1 controls), unique in the collection and within the
 *                  batch.
 *   metadata_json  in: NULL, or n entries (NULL entry = no metadata).  Each
 *                  must be valid JSON text (RFC 8259, any value, at most
 *                  1 MiB), and where readers of JSON disagree it must not
 *                  leave them a choice: no member name twice in one
 *                  object, numbers within the range of a double (larger
 *                  integers are fine: they read as doubles), nesting at
 *                  most 2048 deep.  It is stored byte for byte as given.
 * These checks keep what is stored readable by the tools that read
 * exports and snapshots (DuckDB refuses a whole file for one value that
 * is not JSON or not UTF-8).  Data stored before the library checked
 * (logs, checkpoints and snapshots of earlier builds) is loaded as it is,
 * never refused; an export of such rows holds them as they are, and
 * replacing them (akidb_upsert) is how they get checked.
 *   ids_out        out: NULL, or room for n ids; receives the assigned ids.
 *                  Ids count up from 1 and are never reused; they stay
 *                  below 2^63, so they fit the signed 64-bit integers of
 *                  Parquet, SQL and JSON readers.
 * The batch is atomic: on any error nothing is inserted.  n == 0 is a no-op.
 * Returns AKIDB_OK, AKIDB_MISUSE (NULL db/coll, vectors NULL with n > 0),
 * AKIDB_INVALID (NaN/inf value, zero vector for cosine, bad external id,
 * metadata that is not JSON: the message names the row of the batch),
 * AKIDB_EXISTS (an external id is already present), AKIDB_NOTFOUND,
 * AKIDB_QUOTA (the collection's ids are used up), AKIDB_READONLY,
 * AKIDB_IOERR, AKIDB_NOMEM.  All inputs are copied.  Thread safe;
 * serialized with other writes to `coll`. */
AKIDB_API int akidb_insert(akidb *db, const char *coll, size_t n, const float *vectors,
                           const char *const *external_ids,
                           const char *const *metadata_json, uint64_t *ids_out);

/* Insert or replace n documents keyed by external id.
 *   external_ids  in: required, n non-NULL entries, unique within the batch.
 * A document whose external id exists is replaced (vector and metadata) and
 * keeps its id; others are inserted with new ids.  ids_out as in
 * akidb_insert().  Atomic like akidb_insert().
 * Returns the codes of akidb_insert() except AKIDB_EXISTS.  Thread safe. */
AKIDB_API int akidb_upsert(akidb *db, const char *coll, size_t n, const float *vectors,
                           const char *const *external_ids,
                           const char *const *metadata_json, uint64_t *ids_out);

/* Delete document `id`.  It disappears from searches, lookups and counts
 * at once.  Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID, AKIDB_NOTFOUND
 * (no collection, or no live document with that id), AKIDB_READONLY,
 * AKIDB_IOERR.  Thread safe. */
AKIDB_API int akidb_delete(akidb *db, const char *coll, uint64_t id);

/* Wait until every acknowledged document of `coll` (NULL: of every
 * collection) is linked into the HNSW graph, i.e. until index_lag is 0,
 * for tests and benchmarks that want a fully built graph (searches do not
 * need it: they scan the tail).  Writes that arrive meanwhile are waited
 * for too.  timeout_ms: how long to wait at most; 0 = just check;
 * AKIDB_NEVER = no limit.
 * Returns AKIDB_OK (the tail is empty), AKIDB_BUSY (still not empty at the
 * timeout; the message says how many documents wait), AKIDB_MISUSE,
 * AKIDB_INVALID (bad name), AKIDB_NOTFOUND.  Thread safe; holds no lock
 * while it waits. */
AKIDB_API int akidb_index_wait(akidb *db, const char *coll, uint32_t timeout_ms);

/* Find the id of the live document with `external_id`.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID, AKIDB_NOTFOUND.
 * Thread safe. */
AKIDB_API int akidb_lookup(akidb *db, const char *coll, const char *external_id,
                           uint64_t *id_out);

/* Read document `id`.
 *   vector_out         out: NULL, or room for dim floats (the stored vector:
 *                      normalised for cosine collections).
 *   metadata_json_out  out: NULL, or receives a NUL-terminated copy of the
 *                      metadata (NULL when the document has none); free it
 *                      with akidb_free().
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID, AKIDB_NOTFOUND, AKIDB_NOMEM.
 * Thread safe. */
AKIDB_API int akidb_get(akidb *db, const char *coll, uint64_t id,
                        float *vector_out, char **metadata_json_out);

#define AKIDB_DOCUMENT_VERSION 1

/* One document with its strings (akidb_document_get). */
typedef struct akidb_document {
    uint32_t version;          /* in: set by the caller */
    uint64_t id;
    char *external_id;         /* NULL when the document has none */
    char *metadata_json;       /* NULL when the document has none */
    int64_t inserted_at_us;    /* when it was inserted or last replaced */
} akidb_document;

/* Read document `id` of `coll` with everything it holds.
 *   vector_out  out: NULL, or room for dim floats.
 *   doc_out     in/out: the caller sets doc_out->version to
 *               AKIDB_DOCUMENT_VERSION; the library fills that version's
 *               fields.  Its strings are allocated for the caller: release
 *               them with akidb_document_clear() (also after a failure,
 *               which leaves them NULL).
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID (bad name or version),
 * AKIDB_NOTFOUND, AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_document_get(akidb *db, const char *coll, uint64_t id,
                                 float *vector_out, akidb_document *doc_out);

/* Free the strings of *doc and set them to NULL; NULL doc is a no-op. */
AKIDB_API void akidb_document_clear(akidb_document *doc);

/* ------------------------------------------------------------------------
 * Search
 * --------------------------------------------------------------------- */

#define AKIDB_SEARCH_PARAMS_VERSION 1

/* Search parameters.  Fill with akidb_search_params_init().
 *   ef     candidate list size; 0 = the collection's ef_search.  The search
 *          uses max(ef, k).  Larger is slower and more accurate.
 *   exact  non-zero: scan every document (exact k nearest neighbours)
 *          instead of walking the HNSW graph. */
typedef struct akidb_search_params {
    uint32_t version;
    uint32_t ef;
    int exact;
} akidb_search_params;

/* Fill *p with defaults (ef 0, exact 0).  A macro over the exported
 * akidb_search_params_init_v(), like akidb_options_init.  NULL is ignored.
 * Thread safe. */
#define akidb_search_params_init(p) \
    akidb_search_params_init_v((p), AKIDB_SEARCH_PARAMS_VERSION)
AKIDB_API void akidb_search_params_init_v(akidb_search_params *p, uint32_t version);

/* One search result: a document id and its distance to the query. */
typedef struct akidb_hit {
    uint64_t id;
    float distance;  /* see akidb_metric; smaller is closer */
} akidb_hit;

/* Find the k documents nearest to `query` (dim floats, all finite; for
 * cosine, any non-zero vector: it is normalised first).
 *   hits    out: room for k hits, filled closest first.
 *   n_hits  out: how many hits were written (< k when the collection holds
 *           fewer live documents).
 * Deleted documents never appear.  k is 1..1000000.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID (k 0, NaN/inf, zero cosine
 * query), AKIDB_NOTFOUND (no collection), AKIDB_NOMEM.
 * Thread safe: searches run in parallel with each other. */
AKIDB_API int akidb_search(akidb *db, const char *coll, const float *query, uint32_t k,
                           const akidb_search_params *params, akidb_hit *hits,
                           uint32_t *n_hits);

/* ------------------------------------------------------------------------
 * Tiering
 *
 * A collection lives in one of three tiers (akidb_tier):
 *   HOT   vectors, graph and documents in RAM, log open: what searches use.
 *   WARM  its checkpoint file (DIR/ckpt/N.ckpt: the exact graph, with a
 *         whole-file CRC-32C) and log on local disk; no RAM.
 *   COLD  a snapshot of that checkpoint in the object store
 *         (akidb_options.store), listed by akidb_snapshot_list; no local
 *         file.
 * Every call that needs the documents (search, get, document_get, lookup,
 * insert, upsert, delete, export, snapshot_create, restore) on a WARM or
 * COLD collection promotes it to HOT first, transparently: concurrent
 * callers wait for one load.  A call never fails because a transition is
 * running: it is served before the collection leaves RAM, or waits for it
 * to come back.  A promotion from COLD answers as soon as the collection
 * is in RAM; its local copy is written behind it, and writes (insert,
 * upsert, delete) wait until that copy is durable.  akidb_collection_count, _info and _stat answer from the
 * catalog without loading (stat reports bytes 0 and the tier).
 *
 * Transitions are crash-safe: each is recorded in the catalog (intent,
 * then done); data leaves a tier only after the next one holds a copy that
 * was read back and checked (size and CRC-32C); a crash at any step is
 * rolled back or forward by the next open, and a failure (store down,
 * quota, disk full) leaves the collection where it was, with the error in
 * akidb_tier_info, the log and the metrics.  A demotion to COLD whose
 * local write fails (disk full) goes straight from RAM to the store.
 *
 * A background worker (a thread of the handle, every tier_interval_ms)
 * applies the policy: HOT collections idle for the hot TTL go WARM, WARM
 * ones idle for the warm TTL go COLD, WARM/COLD ones accessed at least
 * promote_per_hour times within an hour come back HOT (accesses that do
 * not load, such as count and stat, are counted too), and when the HOT
 * collections hold more than memory_budget bytes the least recently used
 * are demoted.  Pinned collections, and collections with tiering
 * disabled, are never moved by the worker (explicit akidb_tier_set calls
 * still move them).  Idle time comes from akidb_options.clock_us, and the
 * access statistics are saved in the catalog by every worker cycle and at
 * close, so a restart neither loses tiers nor makes everything look idle.
 *
 * On a read-only handle WARM and COLD collections are loaded into RAM on
 * access (nothing on disk changes); tier changes return AKIDB_READONLY.
 * --------------------------------------------------------------------- */

/* The tier of collection `coll`, through *out.  Does not load it.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID, AKIDB_NOTFOUND.
 * Thread safe. */
AKIDB_API int akidb_tier_get(akidb *db, const char *coll, akidb_tier *out);

/* Move collection `coll` to `tier` now, step by step (HOT -> WARM ->
 * COLD, COLD -> WARM -> HOT, HOT <- WARM or COLD), and return once it is
 * there (from COLD: once its local copy is durable).  Already there:
 * AKIDB_OK at once.  A transition that another thread (or the worker) is
 * running is waited for, never run twice.
 * Pinned collections move too: a pin only stops the worker.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID (bad name or tier),
 * AKIDB_NOTFOUND, AKIDB_QUOTA (the memory budget cannot hold it, or the
 * store quota cannot take its snapshot: the message gives the sizes),
 * AKIDB_UNAVAILABLE (the store, after retries), AKIDB_CORRUPT (no copy in
 * the store verifies), AKIDB_IOERR, AKIDB_READONLY, AKIDB_NOMEM.  On an
 * error the collection stays in the tier it was in.  Thread safe. */
AKIDB_API int akidb_tier_set(akidb *db, const char *coll, akidb_tier tier);

/* Pin (pinned non-zero) or unpin collection `coll`.  A pinned collection
 * is never demoted by the worker or the memory budget.  Durable.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID, AKIDB_NOTFOUND,
 * AKIDB_READONLY, AKIDB_IOERR.  Thread safe. */
AKIDB_API int akidb_tier_pin(akidb *db, const char *coll, int pinned);

/* Run one cycle of the worker now, in the calling thread: finish
 * interrupted transitions and pending object deletes, roll the access
 * windows, apply the TTLs, the promotion threshold and the memory budget,
 * save the access statistics.  One cycle runs at a time (a call waits for
 * the worker's).  Failed transitions do not fail the cycle: they are
 * counted and logged, recorded in akidb_tier_info, and retried by a later
 * cycle after a back-off.  Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_READONLY,
 * AKIDB_IOERR (the catalog).  Thread safe. */
AKIDB_API int akidb_tier_run_once(akidb *db);

#define AKIDB_TIER_POLICY_VERSION 1

/* Which fields of an akidb_tier_policy are given (set) or reverted to the
 * database's value (reset). */
#define AKIDB_TIER_P_HOT_TTL         0x01u
#define AKIDB_TIER_P_WARM_TTL        0x02u
#define AKIDB_TIER_P_PROMOTE         0x04u
#define AKIDB_TIER_P_DISABLED        0x08u
#define AKIDB_TIER_P_RETENTION       0x10u
#define AKIDB_TIER_P_MEMORY_BUDGET   0x20u  /* database only */
#define AKIDB_TIER_P_STORE_QUOTA     0x40u  /* database only */
#define AKIDB_TIER_P_MAX_COLLECTIONS 0x80u  /* database only */

/* A tiering policy, or a change to one.  Fill with akidb_tier_policy_init
 * (nothing set) and the setters below, which set a value and its bit in
 * `set`.  Per collection only the first five fields apply; the others are
 * the database's.  Values: TTLs in seconds (AKIDB_TIER_TTL_NEVER = never),
 * promote_per_hour >= 1, disabled 0/1, snapshot_retention >= 1 (tier
 * snapshots kept per collection; older ones are deleted), memory_budget
 * and store_quota in bytes (0 = unlimited), max_collections (0 =
 * unlimited). */
typedef struct akidb_tier_policy {
    uint32_t version;
    uint32_t set;        /* AKIDB_TIER_P_* bits of the fields given */
    uint32_t reset;      /* per collection: AKIDB_TIER_P_* overrides to remove */
    uint64_t hot_ttl_s;
    uint64_t warm_ttl_s;
    uint32_t promote_per_hour;
    int disabled;
    uint32_t snapshot_retention;
    uint64_t memory_budget;
    uint64_t store_quota;
    uint32_t max_collections;
} akidb_tier_policy;

/* Nothing set, version filled.  A macro over the exported
 * akidb_tier_policy_init_v(), like akidb_options_init.  NULL is ignored.
 * Thread safe. */
#define akidb_tier_policy_init(p) akidb_tier_policy_init_v((p), AKIDB_TIER_POLICY_VERSION)
AKIDB_API void akidb_tier_policy_init_v(akidb_tier_policy *p, uint32_t version);
/* Setters: store the value and mark it set.  NULL p is ignored. */
AKIDB_API void akidb_tier_policy_set_hot_ttl(akidb_tier_policy *p, uint64_t seconds);
AKIDB_API void akidb_tier_policy_set_warm_ttl(akidb_tier_policy *p, uint64_t seconds);
AKIDB_API void akidb_tier_policy_set_promote_per_hour(akidb_tier_policy *p, uint32_t n);
AKIDB_API void akidb_tier_policy_set_disabled(akidb_tier_policy *p, int disabled);
AKIDB_API void akidb_tier_policy_set_retention(akidb_tier_policy *p, uint32_t n);
AKIDB_API void akidb_tier_policy_set_memory_budget(akidb_tier_policy *p, uint64_t bytes);
AKIDB_API void akidb_tier_policy_set_store_quota(akidb_tier_policy *p, uint64_t bytes);
AKIDB_API void akidb_tier_policy_set_max_collections(akidb_tier_policy *p, uint32_t n);

/* Change the policy of collection `coll` (its overrides, saved in the
 * catalog) or, with coll NULL, of the database (for this handle: the next
 * open starts from its options again).  Only the fields in p->set change;
 * per collection, fields in p->reset go back to the database's value.
 * Takes effect at the next worker cycle; a smaller memory budget is
 * enforced there.  Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID (bad
 * version, value, or a database-only field for a collection),
 * AKIDB_NOTFOUND, AKIDB_READONLY (for a collection), AKIDB_IOERR.
 * Thread safe. */
AKIDB_API int akidb_tier_policy_apply(akidb *db, const char *coll, const akidb_tier_policy *p);

/* The policy in effect for `coll` (its overrides over the database's
 * values) or, coll NULL, for the database.  out->version is set by the
 * caller; every field of that version is filled; out->set has the bits
 * the collection overrides (all bits for the database).
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID, AKIDB_NOTFOUND.
 * Thread safe. */
AKIDB_API int akidb_tier_policy_get(akidb *db, const char *coll, akidb_tier_policy *out);

#define AKIDB_TIER_INFO_VERSION 1

/* The tiering state of one collection (akidb_tier_info_get). */
typedef struct akidb_tier_info {
    uint32_t version;          /* in: set by the caller */
    akidb_tier tier;
    int pinned;
    int busy;                  /* a transition is running now */
    int64_t last_access_us;    /* 0: never accessed since created */
    uint64_t accesses;         /* in the current hour window */
    uint64_t hot_bytes;        /* RAM it holds when HOT (as of its last demotion if not) */
    uint64_t local_bytes;      /* checkpoint + log on local disk */
    uint64_t cold_bytes;       /* its newest tier snapshot in the store, 0 if none */
    int last_error;            /* code of the last failed transition, AKIDB_OK if none */
    char last_error_msg[256];  /* and its message ("" if none) */
} akidb_tier_info;

/* Fill *out (its version set by the caller) for collection `coll`; does
 * not load it.  Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID,
 * AKIDB_NOTFOUND.  Thread safe. */
AKIDB_API int akidb_tier_info_get(akidb *db, const char *coll, akidb_tier_info *out);

#define AKIDB_TIER_STATS_VERSION 1

/* The database's tiers at one moment (akidb_tier_stats_get).  Arrays are
 * indexed by akidb_tier (1..3; index 0 is unused and 0). */
typedef struct akidb_tier_stats {
    uint32_t version;                  /* in: set by the caller */
    uint64_t collections[4];           /* collections per tier */
    uint64_t bytes[4];                 /* HOT: RAM; WARM: local files; COLD: objects */
    uint64_t memory_budget;            /* 0 = unlimited */
    uint64_t store_bytes;              /* every snapshot in the store */
    uint64_t store_quota;              /* 0 = unlimited */
    /* transitions since open, [from][to], ok and failed */
    uint64_t transitions_ok[4][4];
    uint64_t transitions_failed[4][4];
    uint64_t loads;                    /* promotions to HOT */
    uint64_t load_us_total;            /* their time, microseconds */
    uint64_t worker_cycles;
} akidb_tier_stats;

/* Fill *out (its version set by the caller).  Returns AKIDB_OK,
 * AKIDB_MISUSE, AKIDB_INVALID (version), AKIDB_IOERR.  Thread safe. */
AKIDB_API int akidb_tier_stats_get(akidb *db, akidb_tier_stats *out);

/* ------------------------------------------------------------------------
 * Application records
 *
 * Small durable key/value records kept in the catalog beside the
 * collections, for what an application embedding the library must keep
 * with its data: akidb-server keeps its API keys, tenant quotas and
 * runtime configuration here.  A put is durable when it returns (SQLite,
 * synchronous=FULL) and replaces the value atomically.
 *   ns     namespace: [A-Za-z0-9_.-]{1,64}
 *   key    1..1024 bytes of valid UTF-8
 *   value  0..1 MiB of arbitrary bytes
 * --------------------------------------------------------------------- */

#define AKIDB_MAX_KV_VALUE_LEN (1024u * 1024u)

/* Create or replace record (ns, key).  Returns AKIDB_OK, AKIDB_MISUSE,
 * AKIDB_INVALID (bad ns, key or length), AKIDB_READONLY, AKIDB_IOERR,
 * AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_kv_put(akidb *db, const char *ns, const char *key,
                           const void *value, size_t len);

/* Read record (ns, key).
 *   value_out  out: a copy, followed by one NUL byte not counted in
 *              *len_out (so text values are C strings); free it with
 *              akidb_free().
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID, AKIDB_NOTFOUND,
 * AKIDB_IOERR, AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_kv_get(akidb *db, const char *ns, const char *key,
                           void **value_out, size_t *len_out);

/* Delete record (ns, key).  Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID,
 * AKIDB_NOTFOUND (no such record), AKIDB_READONLY, AKIDB_IOERR.
 * Thread safe. */
AKIDB_API int akidb_kv_delete(akidb *db, const char *ns, const char *key);

/* The keys of namespace ns in ascending byte order, as one allocation
 * like akidb_collection_list's (free with akidb_free(keys); NULL when
 * *n_out is 0).  Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID,
 * AKIDB_IOERR, AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_kv_list(akidb *db, const char *ns, char ***keys_out, size_t *n_out);

/* ------------------------------------------------------------------------
 * Object stores
 *
 * A store holds immutable objects under string keys, in the spirit of
 * sqlite3_vfs: a table of methods that built-in backends (local directory,
 * in-memory mock, S3) and embedders' own backends implement.
 *
 * Keys: 1..1024 bytes of printable UTF-8 (no control characters), no
 * leading '/', no "." or ".." path segment, no empty segment ("a//b").
 * The akidb_store_* wrappers check keys, so backends may rely on it.
 *
 * Errors: a backend method returns AKIDB_OK, or AKIDB_IOERR for a failure
 * worth retrying (timeout, connection reset, HTTP 5xx, 429), or a permanent
 * code: AKIDB_NOTFOUND (no such key), AKIDB_INVALID (rejected: bad
 * credentials, HTTP 4xx), AKIDB_CORRUPT (data failed a check).  It may set
 * a message with akidb_set_errmsg() (the server's status and error code,
 * never credentials).  Retries with backoff happen in the wrappers, never
 * in a backend.
 *
 * Memory returned through buf_out is allocated with akidb_malloc() and
 * freed by the caller with akidb_free(); custom backends must allocate it
 * that way.
 *
 * Thread safety: every method of a built-in backend may be called from
 * any number of threads at once; custom backends used by an akidb handle
 * must allow the same.
 * --------------------------------------------------------------------- */

#define AKIDB_STORE_METHODS_VERSION 1
#define AKIDB_MAX_KEY_LEN 1024

/* The methods a store backend implements (built-in or an embedder's). */
typedef struct akidb_store_methods {
    int version;   /* append-only; AKIDB_STORE_METHODS_VERSION */
    /* Read bytes [offset, offset+len) of `key` (len UINT64_MAX = to the
     * end).  Past the end: the bytes that exist (*len_out says how many;
     * 0 when offset >= size).  *buf_out from akidb_malloc(). */
    int (*get)(akidb_store *s, const char *key, uint64_t offset, uint64_t len,
               void **buf_out, size_t *len_out);
    int (*size)(akidb_store *s, const char *key, uint64_t *size_out);
    /* Create or replace `key` atomically: readers see the old object or
     * the whole new one, never a part. */
    int (*put)(akidb_store *s, const char *key, const void *buf, size_t len);
    /* Delete `key`; deleting a missing key is AKIDB_OK. */
    int (*del)(akidb_store *s, const char *key);
    /* Call cb for every key starting with `prefix` ("" = all), in
     * ascending byte order; a non-zero return from cb stops the listing
     * and is returned. */
    int (*list)(akidb_store *s, const char *prefix,
                int (*cb)(void *ctx, const char *key, uint64_t size), void *ctx);
    void (*destroy)(akidb_store *s);
} akidb_store_methods;

/* Every store starts with this; a backend embeds it as its first member. */
struct akidb_store {
    const akidb_store_methods *methods;
};

/* Set the calling thread's error message (as akidb_errmsg() returns it)
 * and return rc: for custom store backends.  Thread safe. */
AKIDB_API int akidb_set_errmsg(int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A store in local directory `dir` (created if missing; its parent must
 * exist).  Keys map to files below dir ('/' separates directories); a put
 * writes a temporary file, fsyncs it, renames it into place and fsyncs
 * the directory.  Nothing is ever written outside dir.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_IOERR, AKIDB_NOMEM.
 * Close with akidb_store_close(). */
AKIDB_API int akidb_store_local_open(const char *dir, akidb_store **out);

/* An in-memory store with simulated latency and fault injection, for
 * testing applications (and the library) against an object store that
 * misbehaves on demand: no network, deterministic.  Objects live in the
 * process's memory and are gone at akidb_store_close().
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_NOMEM. */
AKIDB_API int akidb_store_mock_open(akidb_store **out);

/* What an injected fault does to a call. */
typedef enum akidb_mock_fault {
    AKIDB_MOCK_503 = 1,           /* AKIDB_IOERR "503 SlowDown" (with the retry-after hint) */
    AKIDB_MOCK_TIMEOUT = 2,       /* AKIDB_IOERR "timeout" */
    AKIDB_MOCK_403 = 3,           /* AKIDB_INVALID "403 AccessDenied" (permanent) */
    AKIDB_MOCK_PARTIAL_WRITE = 4, /* put: connection lost mid-upload; AKIDB_IOERR, nothing stored */
    AKIDB_MOCK_CORRUPT_READ = 5   /* get: AKIDB_OK, but one byte of the data flipped */
} akidb_mock_fault;

/* Operations a fault rule matches (a mask). */
#define AKIDB_MOCK_OP_GET  1u
#define AKIDB_MOCK_OP_SIZE 2u
#define AKIDB_MOCK_OP_PUT  4u
#define AKIDB_MOCK_OP_DEL  8u
#define AKIDB_MOCK_OP_LIST 16u
#define AKIDB_MOCK_OP_ANY  31u

/* Make the next `count` calls of mock store s that match `ops` and
 * `key_glob` (an fnmatch(3) pattern; NULL = any key) fail with `fault`.
 * retry_after_ms: the Retry-After hint a 503 carries (0 = none).  Rules are
 * checked in the order added; a rule is used up after count matches.
 * s must come from akidb_store_mock_open().  Returns AKIDB_OK,
 * AKIDB_MISUSE (s NULL or not a mock store), AKIDB_INVALID (count 0, no
 * op, unknown fault), AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_store_mock_inject(akidb_store *s, unsigned ops, const char *key_glob,
                                      akidb_mock_fault fault, uint32_t count,
                                      uint32_t retry_after_ms);

/* Remove every fault rule of mock store s.  Thread safe. */
AKIDB_API void akidb_store_mock_clear_faults(akidb_store *s);

/* Make every call of mock store s take latency_ms first (0 = none), as a
 * remote store's round trip would.  Thread safe; calls in flight keep the
 * latency they started with. */
AKIDB_API void akidb_store_mock_set_latency(akidb_store *s, uint32_t latency_ms);

/* Counters of a mock store, read at once by akidb_store_mock_stats_get. */
typedef struct akidb_mock_stats {
    uint64_t calls[5];          /* get, size, put, del, list */
    uint64_t faults;            /* calls answered by an injected fault */
    uint64_t bytes_in;          /* stored by put */
    uint64_t bytes_out;         /* returned by get */
    uint64_t objects;           /* currently stored */
} akidb_mock_stats;

/* Read the counters of mock store s into *out.  Thread safe. */
AKIDB_API void akidb_store_mock_stats_get(akidb_store *s, akidb_mock_stats *out);

#define AKIDB_S3_CONFIG_VERSION 1

/* Settings of an S3-compatible store.  Fill with akidb_s3_config_init().
 * Strings are copied by akidb_store_s3_open().
 *   endpoint        "http://127.0.0.1:7480" or "https://s3.eu-west-1.amazonaws.com"
 *   region          signing region ("us-east-1" if NULL)
 *   bucket          must exist
 *   path_style      1: http://endpoint/bucket/key; 0: http://bucket.endpoint/key
 *   timeouts        connect and whole-request limits, milliseconds
 *   max_concurrency parallel requests of one multipart upload or ranged
 *                   download (default 8)
 *   multipart_threshold  objects this large or larger are uploaded in
 *                   parts (default 16 MiB); part_size (default 8 MiB, >= 5 MiB) */
typedef struct akidb_s3_config {
    uint32_t version;
    const char *endpoint;
    const char *region;
    const char *bucket;
    const char *access_key;
    const char *secret_key;
    int path_style;
    uint32_t connect_timeout_ms;
    uint32_t request_timeout_ms;
    uint32_t max_concurrency;
    uint64_t multipart_threshold;
    uint64_t part_size;
} akidb_s3_config;

/* Fill *cfg with defaults (path_style 1, timeouts 5 s / 60 s, ...).  A
 * macro over the exported akidb_s3_config_init_v(), like
 * akidb_options_init.  NULL is ignored.  Thread safe. */
#define akidb_s3_config_init(cfg) akidb_s3_config_init_v((cfg), AKIDB_S3_CONFIG_VERSION)
AKIDB_API void akidb_s3_config_init_v(akidb_s3_config *cfg, uint32_t version);

/* A store in an S3 bucket.  No request is made until the first call.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID (missing or bad setting,
 * named in the message), AKIDB_NOMEM. */
AKIDB_API int akidb_store_s3_open(const akidb_s3_config *cfg, akidb_store **out);

/* Wrappers for callers of any store: check the key, call the backend,
 * and retry AKIDB_IOERR failures (up to 4 attempts, full-jitter
 * exponential backoff from 50 ms, honouring a server's Retry-After).
 * After the last attempt the result is AKIDB_UNAVAILABLE, with the last
 * failure in the message.  Semantics as the methods above.  Thread safe
 * if the backend is. */
AKIDB_API int akidb_store_put(akidb_store *s, const char *key, const void *buf, size_t len);
AKIDB_API int akidb_store_get(akidb_store *s, const char *key, uint64_t offset, uint64_t len,
                              void **buf_out, size_t *len_out);
AKIDB_API int akidb_store_size(akidb_store *s, const char *key, uint64_t *size_out);
AKIDB_API int akidb_store_delete(akidb_store *s, const char *key);
AKIDB_API int akidb_store_list(akidb_store *s, const char *prefix,
                               int (*cb)(void *ctx, const char *key, uint64_t size), void *ctx);

/* Destroy a store (any backend).  NULL is a no-op.  No call on it may be
 * running or start later. */
AKIDB_API void akidb_store_close(akidb_store *s);

/* ------------------------------------------------------------------------
 * Uploads and the dead-letter queue
 *
 * The handle uploads to its object store (akidb_options.store) with up to
 * upload_concurrency requests in flight.  A background upload that fails,
 * after the store's retries, is not lost: it becomes a dead letter, a row
 * in the catalog (key, source file, reason, attempts) that survives
 * restarts and is retried with exponential backoff by a background thread,
 * at most dlq_retry_batch per cycle; after dlq_max_attempts it is marked
 * permanent and stays listed until retried or purged.
 * --------------------------------------------------------------------- */

/* Queue a background upload of the local file `path` as object `key`.
 * The file is read when the upload runs, so it must stay in place until
 * the upload succeeded (it is also what a dead letter retries from).
 * Returns AKIDB_OK (queued), AKIDB_MISUSE, AKIDB_INVALID (bad key),
 * AKIDB_READONLY, AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_upload_file(akidb *db, const char *key, const char *path);

/* Wait until every queued background upload has finished (succeeded or
 * become a dead letter).  Returns AKIDB_OK or AKIDB_MISUSE.  Thread safe. */
AKIDB_API int akidb_upload_wait(akidb *db);

#define AKIDB_DLQ_ENTRY_VERSION 1

/* One dead letter: an upload that failed and waits for a retry. */
typedef struct akidb_dlq_entry {
    uint32_t version;          /* the library's AKIDB_DLQ_ENTRY_VERSION */
    int64_t id;
    const char *key;           /* strings live in the same allocation */
    const char *source_path;
    const char *reason;        /* the last failure's message */
    uint32_t attempts;
    int permanent;             /* no more automatic retries */
    int64_t created_at_us;
    int64_t next_attempt_at_us;
} akidb_dlq_entry;

/* List the dead letters, oldest first.
 *   entries_out  out: ONE allocation holding an array of n pointers to
 *                entries, the entries and their strings; free it with
 *                akidb_free(entries).  NULL when *n_out is 0.  Entries may
 *                grow in later versions (fields appended); read each
 *                entry's version before fields newer than yours.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_NOMEM, AKIDB_IOERR.  Thread safe. */
AKIDB_API int akidb_dlq_list(akidb *db, akidb_dlq_entry ***entries_out, size_t *n_out);

/* Retry dead letter `id` now (0 = every entry, permanent ones included).
 * A success removes the entry.  Returns AKIDB_OK (all succeeded),
 * AKIDB_NOTFOUND (no such id), AKIDB_UNAVAILABLE (some still failed; they
 * stay listed with the new reason), AKIDB_MISUSE, AKIDB_READONLY.
 * Thread safe. */
AKIDB_API int akidb_dlq_retry(akidb *db, int64_t id);

/* Remove dead letter `id` (0 = every permanent entry) without uploading.
 * Returns AKIDB_OK, AKIDB_NOTFOUND, AKIDB_MISUSE, AKIDB_READONLY.
 * Thread safe. */
AKIDB_API int akidb_dlq_purge(akidb *db, int64_t id);

/* ------------------------------------------------------------------------
 * Snapshots, import and export (Parquet)
 *
 * A snapshot is one Parquet file in the object store, readable by DuckDB,
 * pandas or Polars: columns id (INT64), external_id (STRING), vector
 * (LIST<FLOAT>), metadata (JSON), inserted_at (TIMESTAMP), plus the saved
 * HNSW graph (hnsw_level, hnsw_links) so a restore needs no rebuild.  The
 * catalog records each one (object key, rows, bytes, SHA-256, time).
 * --------------------------------------------------------------------- */

#define AKIDB_SNAPSHOT_ID_LEN 48

#define AKIDB_SNAPSHOT_INFO_VERSION 1

/* One snapshot of a collection, as akidb_snapshot_list() returns it. */
typedef struct akidb_snapshot_info {
    uint32_t version;                  /* the library's AKIDB_SNAPSHOT_INFO_VERSION */
    const char *id;                    /* strings live in the list's allocation */
    const char *key;                   /* object key in the store */
    uint64_t rows;
    uint64_t bytes;
    const char *sha256;                /* 64 lowercase hex digits */
    int64_t created_at_us;
} akidb_snapshot_info;

/* Snapshot collection `coll` to the object store at one point in time
 * (writes wait while it is written; searches go on).
 *   id_out  out: room for id_len >= AKIDB_SNAPSHOT_ID_LEN bytes; receives
 *           the new snapshot's id (NUL-terminated).  NULL is allowed.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID (id_len too small, bad
 * name), AKIDB_NOTFOUND, AKIDB_READONLY, AKIDB_IOERR, AKIDB_UNAVAILABLE
 * (store), AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_snapshot_create(akidb *db, const char *coll, char *id_out, size_t id_len);

/* The snapshots of `coll`, newest (most recently taken) first: every
 * snapshot taken under its name, by this collection or by an earlier
 * collection of the same name that was dropped (akidb_collection_drop
 * keeps them), and the copies the cold tier made of THIS collection
 * (docs/TIERING.md: a demotion to COLD records the uploaded checkpoint as
 * a snapshot, which restores like any other; a drop deletes those, so an
 * earlier collection's never show).  The collection must exist: a dropped
 * one's snapshots are reached through a collection created again under
 * its name.
 *   out  out: ONE allocation holding an array of n pointers to entries, the
 *        entries and their strings; free it with akidb_free(list).  NULL
 *        when *n_out is 0.  Entries may grow in later versions (fields
 *        appended); read an entry's version before newer fields.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID (bad name),
 * AKIDB_NOTFOUND (no such collection), AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_snapshot_list(akidb *db, const char *coll, akidb_snapshot_info ***out,
                                  size_t *n_out);

/* Replace collection `coll` with snapshot `id` (NULL: the newest snapshot
 * that verifies).  The object is checked against its recorded size and
 * SHA-256 and every page CRC; vectors and the saved graph load without
 * rebuilding the index; then the collection is swapped atomically and
 * checkpointed, so the restore is durable.  Writes made after the
 * snapshot are gone afterwards: that is what a restore means.  A corrupt
 * snapshot gives AKIDB_CORRUPT and leaves the collection as it was.  A
 * snapshot of an earlier collection of the name restores if its dim,
 * metric and hnsw_m are the collection's (AKIDB_INVALID naming both
 * otherwise; with id NULL such snapshots are skipped).
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID, AKIDB_NOTFOUND (no such
 * collection or snapshot, or none at all), AKIDB_CORRUPT, AKIDB_CONFLICT
 * (the collection was dropped or recreated meanwhile), AKIDB_READONLY,
 * AKIDB_IOERR, AKIDB_UNAVAILABLE, AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_snapshot_restore(akidb *db, const char *coll, const char *id);

/* Delete snapshot `id` of `coll` (any that akidb_snapshot_list lists):
 * the object and its catalog entry.  The cold copy a COLD collection lives
 * in is refused (AKIDB_CONFLICT: promote the collection first).
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID, AKIDB_NOTFOUND,
 * AKIDB_CONFLICT, AKIDB_READONLY, AKIDB_UNAVAILABLE.  Thread safe. */
AKIDB_API int akidb_snapshot_delete(akidb *db, const char *coll, const char *id);

/* Write collection `coll` to the local Parquet file `path` (the snapshot
 * format), replacing it.  Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID,
 * AKIDB_NOTFOUND, AKIDB_IOERR, AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_export_parquet(akidb *db, const char *coll, const char *path);

#define AKIDB_IMPORT_OPTIONS_VERSION 3

/* How akidb_import_parquet() maps columns, and where it starts.  Fill with
 * akidb_import_options_init().  Strings and callbacks are borrowed for the
 * call.  Rows of the file are numbered from 0 over the whole file (as
 * DuckDB's file_row_number), in every message and field below.
 *   vector_column    a LIST<FLOAT> column (default "vector")
 *   id_column        its values become external ids (strings as they are,
 *                    integers in decimal), so those rows upsert.  NULL =
 *                    the column "external_id", else the column "id", else
 *                    none (every row a new document)
 *   metadata_columns n_metadata_columns names (NULL entries are MISUSE).
 *                    One column holding JSON (its logical type is JSON, or
 *                    it is text and every value is a JSON object or array)
 *                    is each row's metadata as it is; otherwise the
 *                    metadata is an object {column: value}, JSON values
 *                    embedded as JSON, other text as JSON strings.  None
 *                    given: a column named "metadata", if any, the same way
 *   metric           for a collection the import creates.  0 (the default)
 *                    = the file's akidb.metric (a file AkiDB exported says
 *                    which), else L2.  A metric that differs from the
 *                    file's akidb.metric, or from the existing collection's,
 *                    is AKIDB_INVALID.  (Version 1 of this struct
 *                    defaulted to L2.)
 *   progress         called after each batch written with the file rows
 *                    done (every row before that one is written) and the
 *                    file's row count; NULL = none
 *   ---- version 2 ----
 *   skip_rows        import from this file row on: resumes a failed
 *                    import where it stopped (see akidb_import_parquet)
 *   notice           called with what the import decided: the column
 *                    mapping, the settings of a collection it creates
 *                    (AKIDB_LOG_INFO), and what may surprise
 *                    (AKIDB_LOG_WARN: rows without an external id added to
 *                    a collection that is not empty, so a second import of
 *                    the file duplicates them; a file exported from a
 *                    collection of another metric).  msg is valid during
 *                    the call only.  NULL = none
 *   resume_row_out   out: NULL, or receives the file row a later import
 *                    should start at (its skip_rows): the file's row count
 *                    after a success, the first row not written after a
 *                    failure
 *   ---- version 3 ----
 *   storage          for a collection the import creates (akidb_storage).
 *                    0 (the default) = the file's akidb.storage (a file
 *                    AkiDB wrote from an f16 or int8 collection says so),
 *                    else F32.  Into an existing collection: 0 or its own
 *                    kind; another is AKIDB_INVALID.
 *   exact, rerank    for a collection the import creates with F16 or INT8
 *                    storage: as akidb_collection_config's (defaults
 *                    AKIDB_EXACT_RAM and 0 = 2) */
typedef struct akidb_import_options {
    uint32_t version;
    const char *vector_column;
    const char *id_column;
    const char *const *metadata_columns;
    size_t n_metadata_columns;
    akidb_metric metric;
    void (*progress)(void *ctx, uint64_t rows_done, uint64_t rows_total);
    void *progress_ctx;

    /* ---- version 2 ---- */
    uint64_t skip_rows;
    void (*notice)(void *ctx, akidb_log_level level, const char *msg);
    void *notice_ctx;
    uint64_t *resume_row_out;

    /* ---- version 3 ---- */
    akidb_storage storage;
    akidb_exact_vectors exact;
    uint32_t rerank;
} akidb_import_options;

/* Fill *opts with the defaults (vector_column "vector", metric 0: the
 * file's, no id or metadata columns, no callbacks, no skip, storage 0:
 * the file's, exact vectors in RAM, rerank 0).  A macro over
 * the exported akidb_import_options_init_v(), like akidb_options_init:
 * the library writes the fields of the version this program was compiled
 * with, and no more.  NULL is ignored.  Thread safe. */
#define akidb_import_options_init(opts) \
    akidb_import_options_init_v((opts), AKIDB_IMPORT_OPTIONS_VERSION)
AKIDB_API void akidb_import_options_init_v(akidb_import_options *opts, uint32_t version);

/* Import the Parquet file `path` (written by AkiDB, DuckDB, pyarrow,
 * Polars, ...) into collection `coll`, created if it does not exist (with
 * the file's vector dimension and the settings described at
 * akidb_import_options.metric).  Rows with an external id upsert, in file
 * order: a row replaces the document with the same external id, whether
 * that came from an earlier import or from an earlier row of the file.
 * In a checkpoint file, rows of deleted documents are skipped.
 *   rows_out  out: NULL, or the number of rows written (also on failure).
 * What a failure leaves:
 *   - Every row (from skip_rows on) is read and checked before anything is
 *     written: the vector (present, of the collection's dimension, finite,
 *     not zero for cosine), the external id (1..1024 bytes of UTF-8, no
 *     NUL byte or control character) and the metadata (no NUL byte, valid
 *     UTF-8, JSON where the column's type says so, at most 1 MiB).  A bad
 *     value is AKIDB_INVALID naming the file row and the column, and
 *     nothing is written (no collection is created).
 *   - Then rows are written in file order, in atomic batches.  If a write
 *     fails (a value the collection refuses, an I/O error, a full disk, out
 *     of memory), the rows before the failure stay written: the message
 *     says how many and names the failing file row (or batch of rows), and
 *     resume_row_out receives the row to resume at with skip_rows, once the
 *     cause is fixed.  Rows with external ids may simply be imported again
 *     (they upsert).  A collection the import created is dropped again when
 *     nothing was written.
 * Not atomic, on purpose: undoing an import into an existing collection
 * would need a copy of the whole collection.
 * Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_INVALID (no such column, wrong
 * column type, a bad value, dimension mismatch, conflicting metric,
 * skip_rows past the end, bad collection name), AKIDB_NOTFOUND (no such
 * file, or the collection was dropped during the import), AKIDB_CONFLICT
 * (the collection was dropped and created again during the import),
 * AKIDB_CORRUPT (the file), AKIDB_READONLY, AKIDB_IOERR, AKIDB_NOMEM, or
 * the insert's errors.  Thread safe: other calls on the collection go on
 * between batches. */
AKIDB_API int akidb_import_parquet(akidb *db, const char *coll, const char *path,
                                   const akidb_import_options *opts, uint64_t *rows_out);

/* Describe the Parquet file `path` (schema, row groups, codecs, key-value
 * metadata) as text in a new string freed with akidb_free().  Needs no
 * database.  Returns AKIDB_OK, AKIDB_MISUSE, AKIDB_CORRUPT, AKIDB_IOERR,
 * AKIDB_NOMEM.  Thread safe. */
AKIDB_API int akidb_parquet_inspect(const char *path, char **text_out);

#ifdef __cplusplus
}
#endif

#endif /* AKIDB_H */
