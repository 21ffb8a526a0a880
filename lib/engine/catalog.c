/*
 * catalog.c - the catalog, kept in SQLite (`akidb.db` in the database
 * directory).  The only file of the library that includes sqlite3.h.
 *
 * Why SQLite: the catalog changes rarely but must never be half-written,
 * and its tables (collections, snapshots, the dead-letter queue, the
 * application records of akidb_kv_*) need queries; SQLite gives atomic,
 * durable transactions for free.  The vectors
 * themselves do not live here: they are in the per-collection logs and
 * checkpoints, whose formats are built for their access pattern.
 *
 * The catalog runs in WAL journal mode with synchronous=FULL, so a
 * committed create or drop survives a power cut.
 *
 * Schema versions are PRAGMA user_version: migrations[i] upgrades version i
 * to i+1 and they run in one transaction on open.  A catalog with a version
 * above ours was written by a newer library: we refuse it before writing a
 * single byte (even the switch to WAL mode waits until the version check).
 *
 * Read-only opens (akidb_options.read_only) never write: the connection is
 * SQLITE_OPEN_READONLY, no pragma that changes the file runs, and a
 * catalog that would need a migration is refused (AKIDB_READONLY).  When
 * SQLite's -wal file is missing or empty, the catalog is opened as
 * immutable=1, which needs no -shm file and no lock, so it works on
 * read-only media; that is safe because the handle holds the database
 * directory's shared lock, so no writer can be active.  A non-empty -wal
 * (left by a crash) holds committed changes that immutable mode would not
 * see, so then SQLite reads it the ordinary way (mode=ro), through its
 * -shm index, which SQLite may rebuild (the one file a read-only open can
 * change, and only after a crash).
 *
 * Snapshots are recorded under the collection's name as well as its id
 * (schema 4): a drop keeps them (they are backups), and a collection
 * created again under the name lists, restores and deletes them.
 * Tiering (schema 5, tier.c) adds the snapshots a demotion to the cold
 * tier makes (kind 'tier'): they belong to their collection id, are listed
 * under the name like the others while the collection lives, and a drop
 * hands their objects to tier_gc in the drop's own transaction.
 * Quantised storage (schema 6) records each collection's storage kind,
 * exact-vector mode and re-rank multiple.
 *
 * One connection per handle, used under m->lock: catalog calls are rare
 * (create, drop, open), so a mutex costs nothing and keeps SQLite in its
 * simplest threading mode.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/env.h"
#include "engine/catalog.h"

struct akidb__catalog {
    sqlite3 *db;
    pthread_mutex_t lock;
    char path[4096];
};

static const char *const migrations[] = {
    /* 0 -> 1: collections and snapshots. */
    "CREATE TABLE collections ("
    "  coll_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE,"
    "  dim INTEGER NOT NULL,"
    "  metric INTEGER NOT NULL,"
    "  hnsw_m INTEGER NOT NULL,"
    "  ef_construction INTEGER NOT NULL,"
    "  ef_search INTEGER NOT NULL,"
    "  tier TEXT NOT NULL DEFAULT 'hot',"
    "  pinned INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  last_access INTEGER NOT NULL"
    ");"
    "CREATE TABLE snapshots ("
    "  snapshot_id TEXT PRIMARY KEY,"
    "  coll_id INTEGER NOT NULL,"
    "  object_key TEXT NOT NULL,"
    "  rows INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ");",
    /* 1 -> 2: the uploads dead-letter queue. */
    "CREATE TABLE dead_letters ("
    "  dlq_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  object_key TEXT NOT NULL,"
    "  source_path TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL,"
    "  permanent INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  next_attempt_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX dead_letters_due ON dead_letters (permanent, next_attempt_at);",
    /* 2 -> 3: application records (akidb_kv_*). */
    "CREATE TABLE app_records ("
    "  ns TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value BLOB NOT NULL,"
    "  PRIMARY KEY (ns, key)"
    ") WITHOUT ROWID;",
    /* 3 -> 4: snapshots are found by collection name, so a drop does not
     * orphan them.  Existing rows take the name of their collection, or,
     * for one dropped earlier, the name in their object key
     * ("snapshots/NAME/ID.parquet"). */
    "ALTER TABLE snapshots ADD COLUMN coll_name TEXT;"
    "UPDATE snapshots SET coll_name = coalesce("
    "  (SELECT name FROM collections c WHERE c.coll_id = snapshots.coll_id),"
    "  CASE WHEN object_key LIKE 'snapshots/%/%' THEN"
    "    substr(object_key, 11, instr(substr(object_key, 11), '/') - 1) END);"
    "CREATE INDEX snapshots_by_name ON snapshots (coll_name, created_at);",
    /* 4 -> 5: tiering (tier.c).  collections gains what a collection that
     * is not in RAM still answers (sizes, counts), its access statistics
     * and its policy overrides (NULL = the database's); snapshots gain
     * their kind ('user', or 'tier' for the copies a demotion to the cold
     * tier makes), the CRC-32C a promotion checks and the log position;
     * tier_intents holds the transition in progress of each collection
     * (intent, then done); tier_gc the objects still to delete. */
    "ALTER TABLE collections ADD COLUMN hot_bytes INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE collections ADD COLUMN doc_count INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE collections ADD COLUMN doc_deleted INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE collections ADD COLUMN access_count INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE collections ADD COLUMN access_window INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE collections ADD COLUMN p_hot_ttl INTEGER;"
    "ALTER TABLE collections ADD COLUMN p_warm_ttl INTEGER;"
    "ALTER TABLE collections ADD COLUMN p_promote INTEGER;"
    "ALTER TABLE collections ADD COLUMN p_disabled INTEGER;"
    "ALTER TABLE collections ADD COLUMN p_retention INTEGER;"
    "ALTER TABLE snapshots ADD COLUMN kind TEXT NOT NULL DEFAULT 'user';"
    "ALTER TABLE snapshots ADD COLUMN crc32c INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE snapshots ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE tier_intents ("
    "  coll_id INTEGER PRIMARY KEY,"
    "  from_tier TEXT NOT NULL,"
    "  to_tier TEXT NOT NULL,"
    "  step INTEGER NOT NULL,"
    "  snapshot_id TEXT NOT NULL,"
    "  object_key TEXT NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  crc32c INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  rows INTEGER NOT NULL,"
    "  last_seq INTEGER NOT NULL,"
    "  started_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE tier_gc ("
    "  object_key TEXT PRIMARY KEY,"
    "  reason TEXT NOT NULL,"
    "  added_at INTEGER NOT NULL"
    ");",
    /* 5 -> 6: quantised storage (akidb_collection_config version 2): the
     * storage kind (akidb_storage), where the exact vectors live
     * (akidb_exact_vectors) and the re-rank multiple (0 = default).
     * Existing collections are f32, as they were. */
    "ALTER TABLE collections ADD COLUMN storage INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE collections ADD COLUMN exact_vectors INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE collections ADD COLUMN rerank INTEGER NOT NULL DEFAULT 0;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

#define SQL_LIST "SELECT coll_id, name, dim, metric, hnsw_m, ef_construction, ef_search, " \
                 "created_at, tier, pinned, last_access, hot_bytes, doc_count, doc_deleted, " \
                 "access_count, access_window, p_hot_ttl, p_warm_ttl, p_promote, p_disabled, " \
                 "p_retention, storage, exact_vectors, rerank FROM collections ORDER BY coll_id"
#define SQL_COLL_UPDATE "UPDATE collections SET tier = ?, pinned = ?, last_access = ?, " \
                        "hot_bytes = ?, doc_count = ?, doc_deleted = ?, access_count = ?, " \
                        "access_window = ?, p_hot_ttl = ?, p_warm_ttl = ?, p_promote = ?, " \
                        "p_disabled = ?, p_retention = ? WHERE coll_id = ?"
#define SQL_ACCESS_UPDATE "UPDATE collections SET last_access = ?, access_count = ?, " \
                          "access_window = ? WHERE coll_id = ?"
#define SQL_INTENT_COLS "coll_id, from_tier, to_tier, step, snapshot_id, object_key, bytes, " \
                        "crc32c, sha256, rows, last_seq, started_at"
#define SQL_INTENT_PUT "INSERT OR REPLACE INTO tier_intents (" SQL_INTENT_COLS ") VALUES " \
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define SQL_INTENT_ALL "SELECT " SQL_INTENT_COLS " FROM tier_intents ORDER BY coll_id"
#define SQL_INTENT_DELETE "DELETE FROM tier_intents WHERE coll_id = ?"
#define SQL_GC_ADD "INSERT OR REPLACE INTO tier_gc (object_key, reason, added_at) VALUES (?, ?, ?)"
#define SQL_GC_ALL "SELECT object_key FROM tier_gc ORDER BY added_at, object_key"
#define SQL_GC_DELETE "DELETE FROM tier_gc WHERE object_key = ?"
#define SQL_GC_TIER_SNAPS "INSERT OR REPLACE INTO tier_gc (object_key, reason, added_at) " \
                          "SELECT object_key, 'collection dropped', ? FROM snapshots " \
                          "WHERE coll_id = ? AND kind = 'tier'"
#define SQL_DROP_TIER_SNAPS "DELETE FROM snapshots WHERE coll_id = ? AND kind = 'tier'"
#define SQL_SNAP_TOTAL "SELECT coalesce(sum(bytes), 0) FROM snapshots"
#define SQL_CREATE "INSERT INTO collections (name, dim, metric, hnsw_m, ef_construction, " \
                   "ef_search, created_at, last_access, storage, exact_vectors, rerank) " \
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define SQL_DROP "DELETE FROM collections WHERE coll_id = ?"
#define SQL_MAX_ROW "SELECT coalesce(max(coll_id), 0) FROM collections"
#define SQL_DLQ_COLS "dlq_id, object_key, source_path, reason, attempts, permanent, " \
                     "created_at, next_attempt_at"
#define SQL_DLQ_ADD "INSERT INTO dead_letters (object_key, source_path, reason, attempts, " \
                    "permanent, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
#define SQL_DLQ_ALL "SELECT " SQL_DLQ_COLS " FROM dead_letters ORDER BY dlq_id"
#define SQL_DLQ_DUE "SELECT " SQL_DLQ_COLS " FROM dead_letters WHERE permanent = 0 AND " \
                    "next_attempt_at <= ? ORDER BY next_attempt_at, dlq_id LIMIT ?"
#define SQL_DLQ_ONE "SELECT " SQL_DLQ_COLS " FROM dead_letters WHERE dlq_id = ?"
#define SQL_DLQ_UPDATE "UPDATE dead_letters SET reason = ?, attempts = ?, permanent = ?, " \
                       "next_attempt_at = ? WHERE dlq_id = ?"
#define SQL_DLQ_DELETE "DELETE FROM dead_letters WHERE dlq_id = ?"
#define SQL_DLQ_PURGE "DELETE FROM dead_letters WHERE permanent = 1"
#define SQL_SNAP_ADD "INSERT INTO snapshots (snapshot_id, coll_id, coll_name, object_key, " \
                     "rows, bytes, sha256, created_at, kind, crc32c, last_seq) " \
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define SQL_SNAP_COLS "snapshot_id, coll_id, object_key, rows, bytes, sha256, created_at, " \
                      "kind, crc32c, last_seq, coll_name"
/* Newest first means most recently recorded (rowid), not the largest
 * created_at: a clock that stands still (injected) or steps back (NTP)
 * must not make an older snapshot look like the newest.  User snapshots
 * are found by collection name (kept across drops); tier snapshots belong
 * to their collection id (tier.c), and a drop collects them, so listing by
 * name finds only the live collection's. */
#define SQL_SNAP_LIST "SELECT " SQL_SNAP_COLS " FROM snapshots WHERE coll_name = ? " \
                      "ORDER BY rowid DESC"
#define SQL_SNAP_LIST_ID "SELECT " SQL_SNAP_COLS " FROM snapshots WHERE coll_id = ? " \
                         "ORDER BY rowid DESC"
#define SQL_SNAP_ALL "SELECT " SQL_SNAP_COLS " FROM snapshots ORDER BY coll_name, rowid DESC"
#define SQL_SNAP_DELETE "DELETE FROM snapshots WHERE coll_name = ? AND snapshot_id = ?"
#define SQL_SNAP_DELETE_ROW "DELETE FROM snapshots WHERE snapshot_id = ?"
#define SQL_KV_PUT "INSERT OR REPLACE INTO app_records (ns, key, value) VALUES (?, ?, ?)"
#define SQL_KV_GET "SELECT value FROM app_records WHERE ns = ? AND key = ?"
#define SQL_KV_DELETE "DELETE FROM app_records WHERE ns = ? AND key = ?"
#define SQL_KV_LIST "SELECT key FROM app_records WHERE ns = ? ORDER BY key"

/* Every statement the catalog runs, checked against the schema on open. */
static const char *const used_sql[] = {
    SQL_LIST, SQL_CREATE, SQL_DROP, SQL_MAX_ROW, SQL_DLQ_ADD, SQL_DLQ_ALL, SQL_DLQ_DUE,
    SQL_DLQ_ONE, SQL_DLQ_UPDATE, SQL_DLQ_DELETE, SQL_DLQ_PURGE, SQL_SNAP_ADD, SQL_SNAP_LIST,
    SQL_SNAP_DELETE, SQL_KV_PUT, SQL_KV_GET, SQL_KV_DELETE, SQL_KV_LIST, SQL_COLL_UPDATE,
    SQL_ACCESS_UPDATE, SQL_INTENT_PUT, SQL_INTENT_ALL, SQL_INTENT_DELETE, SQL_GC_ADD, SQL_GC_ALL,
    SQL_GC_DELETE, SQL_GC_TIER_SNAPS, SQL_DROP_TIER_SNAPS, SQL_SNAP_TOTAL, SQL_SNAP_ALL,
    SQL_SNAP_LIST_ID, SQL_SNAP_DELETE_ROW,
    ("SELECT snapshot_id, coll_id, coll_name, object_key, rows, bytes, sha256, created_at "
     "FROM snapshots"),   /* one statement: clang -Wstring-concatenation wants it said */
};

/* Map an SQLite failure to a result code, with the catalog named. */
static int sql_err(akidb__catalog *m, int src, const char *what)
{
    int primary = src & 0xFF;
    int rc = AKIDB_ERROR;
    switch (primary) {
    case SQLITE_NOMEM: rc = AKIDB_NOMEM; break;
    case SQLITE_CORRUPT: case SQLITE_NOTADB: case SQLITE_FORMAT: rc = AKIDB_CORRUPT; break;
    case SQLITE_IOERR: case SQLITE_CANTOPEN: case SQLITE_FULL: case SQLITE_READONLY:
    case SQLITE_PERM: rc = AKIDB_IOERR; break;
    case SQLITE_BUSY: case SQLITE_LOCKED: rc = AKIDB_BUSY; break;
    case SQLITE_CONSTRAINT: rc = AKIDB_EXISTS; break;
    }
    const char *detail = m->db ? sqlite3_errmsg(m->db) : sqlite3_errstr(src);
    return akidb__err(rc, "catalog %s: %s: %s", m->path, what, detail);
}

static int exec(akidb__catalog *m, const char *sql, const char *what)
{
    int src = sqlite3_exec(m->db, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? AKIDB_OK : sql_err(m, src, what);
}

static int step_stmt(akidb__catalog *m, const char *sql, const char *what, const char *types,
                     ...);

static int query_int(akidb__catalog *m, const char *sql, int64_t *out, const char *what)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL);
    if (src != SQLITE_OK)
        return sql_err(m, src, what);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        src = SQLITE_OK;
    } else if (src == SQLITE_DONE) {
        *out = 0;
        src = SQLITE_OK;
    }
    int rc = src == SQLITE_OK ? AKIDB_OK : sql_err(m, src, what);
    sqlite3_finalize(st);
    return rc;
}

void akidb__catalog_close(akidb__catalog *m)
{
    if (!m)
        return;
    sqlite3_close(m->db);   /* also checkpoints SQLite's own WAL */
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* "file:" + path, percent-encoded, + query: a URI filename for SQLite
 * (only unreserved characters and '/' pass as they are). */
static int path_uri(char *out, size_t out_len, const char *path, const char *query)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    const char *prefix = path[0] == '/' ? "file://" : "file:";
    for (const char *p = prefix; *p; p++) {
        if (n + 1 >= out_len)
            return -1;
        out[n++] = *p;
    }
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '/' || *p == '-' || *p == '_' ||
                    *p == '.' || *p == '~';
        if (n + (plain ? 1 : 3) >= out_len)
            return -1;
        if (plain) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    int q = snprintf(out + n, out_len - n, "?%s", query);
    return q < 0 || (size_t)q >= out_len - n ? -1 : 0;
}

int akidb__catalog_open(const char *path, int may_create, unsigned file_mode, int read_only,
                        akidb__catalog **out)
{
    *out = NULL;
    if (strlen(path) >= sizeof ((akidb__catalog *)0)->path)
        return akidb__err(AKIDB_INVALID, "catalog path is too long: %s", path);
    struct stat st;
    int exists = stat(path, &st) == 0 && st.st_size > 0;
    if (!exists && read_only)
        return akidb__err(AKIDB_NOTFOUND, "catalog %s is missing or empty: not an AkiDB "
                          "database (a read-only open creates nothing)", path);
    if (!exists && !may_create)
        return akidb__err(AKIDB_CORRUPT, "catalog %s is missing or empty, but the database "
                          "directory holds collection logs or checkpoints", path);

    akidb__catalog *m = calloc(1, sizeof *m);
    if (!m)
        return akidb__err(AKIDB_NOMEM, "catalog %s: out of memory", path);
    strcpy(m->path, path);
    pthread_mutex_init(&m->lock, NULL);
    int rc = AKIDB_OK;
    int src, journal_empty = 1;
    if (read_only) {
        char wal_path[sizeof m->path + 8], uri[3 * sizeof m->path + 32];
        snprintf(wal_path, sizeof wal_path, "%s-wal", path);
        struct stat wst;
        journal_empty = stat(wal_path, &wst) != 0 || wst.st_size == 0;
        if (path_uri(uri, sizeof uri, path, journal_empty ? "immutable=1" : "mode=ro") != 0) {
            rc = akidb__err(AKIDB_INVALID, "catalog path is too long: %s", path);
            goto fail;
        }
        src = sqlite3_open_v2(uri, &m->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
                              SQLITE_OPEN_NOMUTEX, NULL);
    } else {
        /* SQLite creates files with its own default mode; a catalog that
         * exists (even empty) keeps its mode, and SQLite gives its -wal
         * and -shm files the catalog's mode.  So create it first. */
        if (!exists) {
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)file_mode);
            if (fd >= 0)
                close(fd);
            else if (errno != EEXIST) {
                rc = akidb__err(AKIDB_IOERR, "catalog %s: cannot create: %s", path,
                                strerror(errno));
                goto fail;
            }
        }
        src = sqlite3_open_v2(path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                              SQLITE_OPEN_NOMUTEX, NULL);
    }
    if (src != SQLITE_OK && !journal_empty) {
        rc = akidb__err(AKIDB_IOERR, "catalog %s: cannot open read-only: %s (its -wal file "
                        "holds changes a crash left unapplied, which SQLite reads only with "
                        "its -shm index beside it; open the database read-write once)", path,
                        m->db ? sqlite3_errmsg(m->db) : sqlite3_errstr(src));
        goto fail;
    }
    if (src != SQLITE_OK) {
        rc = sql_err(m, src, "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(m->db, 5000);
    sqlite3_extended_result_codes(m->db, 1);

    /* Read-only checks first: nothing is written before we know the file
     * is a catalog we understand. */
    int64_t version = 0;
    if ((rc = query_int(m, "PRAGMA user_version", &version, "cannot read schema version")))
        goto fail;
    if (version > SCHEMA_VERSION) {
        rc = akidb__err(AKIDB_INVALID, "catalog %s has schema version %lld, newer than this "
                        "library supports (%d): upgrade libakidb", path, (long long)version,
                        SCHEMA_VERSION);
        goto fail;
    }
    if (read_only && version < SCHEMA_VERSION) {
        rc = akidb__err(AKIDB_READONLY, "catalog %s has schema version %lld and this library "
                        "needs %d, which a read-write open upgrades it to: a read-only open "
                        "cannot (open the database read-write once)", path, (long long)version,
                        SCHEMA_VERSION);
        goto fail;
    }
    if (exists) {
        sqlite3_stmt *chk = NULL;
        src = sqlite3_prepare_v2(m->db, "PRAGMA quick_check", -1, &chk, NULL);
        if (src == SQLITE_OK && (src = sqlite3_step(chk)) == SQLITE_ROW) {
            const char *res = (const char *)sqlite3_column_text(chk, 0);
            if (!res || strcmp(res, "ok") != 0) {
                rc = akidb__err(AKIDB_CORRUPT, "catalog %s is damaged: %s", path,
                                res ? res : "integrity check failed");
                sqlite3_finalize(chk);
                goto fail;
            }
            src = SQLITE_OK;
        }
        sqlite3_finalize(chk);
        if (src != SQLITE_OK && src != SQLITE_DONE) {
            rc = sql_err(m, src, "integrity check failed");
            goto fail;
        }
        int64_t n_tables = 0;
        if ((rc = query_int(m, "SELECT count(*) FROM sqlite_master", &n_tables,
                            "cannot read schema")))
            goto fail;
        if (version == 0 && n_tables > 0) {
            rc = akidb__err(AKIDB_CORRUPT, "catalog %s holds tables but no schema version: "
                            "not an AkiDB catalog", path);
            goto fail;
        }
        if (version == 0 && !may_create) {
            rc = akidb__err(AKIDB_CORRUPT, "catalog %s is empty, but the database directory "
                            "holds collection logs or checkpoints", path);
            goto fail;
        }
    }

    if (!read_only &&
        ((rc = exec(m, "PRAGMA journal_mode=WAL", "cannot enable WAL mode")) ||
         (rc = exec(m, "PRAGMA synchronous=FULL", "cannot set synchronous")) ||
         (rc = exec(m, "PRAGMA foreign_keys=ON", "cannot enable foreign keys"))))
        goto fail;

    if (version < SCHEMA_VERSION) {
        if ((rc = exec(m, "BEGIN IMMEDIATE", "cannot start migration")))
            goto fail;
        for (int v = (int)version; v < SCHEMA_VERSION; v++)
            if ((rc = exec(m, migrations[v], "migration failed"))) {
                sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
                goto fail;
            }
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", SCHEMA_VERSION);
        if ((rc = exec(m, sql, "cannot set schema version")) ||
            (rc = exec(m, "COMMIT", "cannot commit migration"))) {
            sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
    }
    /* A damaged schema (say, a flipped bit in a column name) passes
     * quick_check; preparing every statement we use catches it. */
    for (size_t i = 0; i < sizeof used_sql / sizeof used_sql[0]; i++) {
        sqlite3_stmt *probe = NULL;
        src = sqlite3_prepare_v2(m->db, used_sql[i], -1, &probe, NULL);
        sqlite3_finalize(probe);
        if (src != SQLITE_OK) {
            rc = (src & 0xFF) == SQLITE_ERROR
                ? akidb__err(AKIDB_CORRUPT, "catalog %s: schema is damaged: %s", path,
                             sqlite3_errmsg(m->db))
                : sql_err(m, src, "cannot check schema");
            goto fail;
        }
    }
    *out = m;
    return AKIDB_OK;

fail:
    akidb__catalog_close(m);
    return rc;
}

int akidb__catalog_list(akidb__catalog *m, int (*cb)(void *ctx, const akidb__catalog_coll *c),
                     void *ctx)
{
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = NULL;
    int rc = AKIDB_OK;
    int src = sqlite3_prepare_v2(m->db, SQL_LIST, -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = sql_err(m, src, "cannot list collections");
        goto done;
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        akidb__catalog_coll c;
        memset(&c, 0, sizeof c);
        c.coll_id = sqlite3_column_int64(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        int64_t dim = sqlite3_column_int64(st, 2), metric = sqlite3_column_int64(st, 3);
        int64_t hm = sqlite3_column_int64(st, 4), efc = sqlite3_column_int64(st, 5);
        int64_t efs = sqlite3_column_int64(st, 6);
        int64_t storage = sqlite3_column_int64(st, 21), exact = sqlite3_column_int64(st, 22);
        int64_t rerank = sqlite3_column_int64(st, 23);
        /* The catalog is a file: check what it says before using it. */
        if (!name || strlen(name) > AKIDB_MAX_NAME_LEN || dim < 1 || dim > AKIDB_MAX_DIM ||
            metric < 1 || metric > 3 || hm < 2 || hm > 128 || efc < 1 || efc > 100000 ||
            efs < 1 || efs > 100000 || c.coll_id < 1 || storage < AKIDB_STORAGE_F32 ||
            storage > AKIDB_STORAGE_INT8 ||
            (exact != AKIDB_EXACT_RAM && exact != AKIDB_EXACT_FILE && exact != AKIDB_EXACT_NONE) ||
            rerank < 0 || rerank > 64) {
            rc = akidb__err(AKIDB_CORRUPT, "catalog %s: collection row %lld has invalid "
                            "settings", m->path, (long long)c.coll_id);
            goto done;
        }
        strcpy(c.name, name);
        c.cfg.version = AKIDB_COLLECTION_CONFIG_VERSION;
        c.cfg.dim = (uint32_t)dim;
        c.cfg.metric = (akidb_metric)metric;
        c.cfg.hnsw_m = (uint32_t)hm;
        c.cfg.ef_construction = (uint32_t)efc;
        c.cfg.ef_search = (uint32_t)efs;
        c.cfg.storage = (akidb_storage)storage;
        c.cfg.exact = (akidb_exact_vectors)exact;
        c.cfg.rerank = (uint32_t)rerank;
        c.created_at = sqlite3_column_int64(st, 7);
        const char *tier = (const char *)sqlite3_column_text(st, 8);
        c.tier = akidb__catalog_tier_parse(tier);
        if (!c.tier) {
            rc = akidb__err(AKIDB_CORRUPT, "catalog %s: collection row %lld has an unknown "
                            "tier \"%s\"", m->path, (long long)c.coll_id, tier ? tier : "");
            goto done;
        }
        c.pinned = sqlite3_column_int64(st, 9) != 0;
        c.last_access = sqlite3_column_int64(st, 10);
        c.hot_bytes = (uint64_t)sqlite3_column_int64(st, 11);
        c.doc_count = (uint64_t)sqlite3_column_int64(st, 12);
        c.doc_deleted = (uint64_t)sqlite3_column_int64(st, 13);
        c.access_count = (uint64_t)sqlite3_column_int64(st, 14);
        c.access_window = sqlite3_column_int64(st, 15);
        int64_t *pol[AKIDB__N_POLICY] = { &c.policy.v[0], &c.policy.v[1], &c.policy.v[2],
                                          &c.policy.v[3], &c.policy.v[4] };
        for (int k = 0; k < AKIDB__N_POLICY; k++)
            *pol[k] = sqlite3_column_type(st, 16 + k) == SQLITE_NULL
                ? -1 : sqlite3_column_int64(st, 16 + k);
        if ((rc = cb(ctx, &c)) != AKIDB_OK)
            goto done;
    }
    if (src != SQLITE_DONE)
        rc = sql_err(m, src, "cannot list collections");
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int akidb__catalog_max_coll_id(akidb__catalog *m, int64_t *out)
{
    pthread_mutex_lock(&m->lock);
    /* sqlite_sequence remembers AUTOINCREMENT's high-water mark even after
     * the rows are deleted; it may not exist before the first insert. */
    int64_t seq = 0, max_row = 0;
    int rc = query_int(m, "SELECT coalesce(max(seq), 0) FROM sqlite_sequence "
                       "WHERE name = 'collections'", &seq, "cannot read sequence");
    if (rc == AKIDB_CORRUPT || rc == AKIDB_IOERR || rc == AKIDB_NOMEM)
        goto done;
    rc = query_int(m, SQL_MAX_ROW, &max_row, "cannot read collections");
    *out = seq > max_row ? seq : max_row;
done:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int akidb__catalog_create(akidb__catalog *m, const char *name, const akidb_collection_config *cfg,
                       int64_t created_at, int64_t *coll_id_out)
{
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = NULL;
    int rc = AKIDB_OK;
    int src = sqlite3_prepare_v2(m->db, SQL_CREATE, -1, &st, NULL);
    if (src == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, cfg->dim);
        sqlite3_bind_int64(st, 3, cfg->metric);
        sqlite3_bind_int64(st, 4, cfg->hnsw_m);
        sqlite3_bind_int64(st, 5, cfg->ef_construction);
        sqlite3_bind_int64(st, 6, cfg->ef_search);
        sqlite3_bind_int64(st, 7, created_at);
        sqlite3_bind_int64(st, 8, created_at);
        sqlite3_bind_int64(st, 9, cfg->storage);
        sqlite3_bind_int64(st, 10, cfg->exact);
        sqlite3_bind_int64(st, 11, cfg->rerank);
        src = sqlite3_step(st);
    }
    if (src == SQLITE_DONE)
        *coll_id_out = sqlite3_last_insert_rowid(m->db);
    else
        rc = sql_err(m, src, "cannot record collection");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int akidb__catalog_drop(akidb__catalog *m, int64_t coll_id, int64_t now)
{
    /* One transaction: the collection's row, its transition in progress,
     * and its tier snapshots, whose objects move to tier_gc so that the
     * worker deletes them even across a crash. */
    pthread_mutex_lock(&m->lock);
    int rc = exec(m, "BEGIN IMMEDIATE", "cannot drop collection");
    if (rc == AKIDB_OK &&
        (rc = step_stmt(m, SQL_GC_TIER_SNAPS, "cannot drop collection", "ii", now,
                        coll_id)) == AKIDB_OK &&
        (rc = step_stmt(m, SQL_DROP_TIER_SNAPS, "cannot drop collection", "i",
                        coll_id)) == AKIDB_OK &&
        (rc = step_stmt(m, SQL_INTENT_DELETE, "cannot drop collection", "i",
                        coll_id)) == AKIDB_OK &&
        (rc = step_stmt(m, SQL_DROP, "cannot drop collection", "i", coll_id)) == AKIDB_OK)
        rc = exec(m, "COMMIT", "cannot drop collection");
    if (rc)
        sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- dead-letter queue ----------------------------------------------- */

/* Run a statement whose parameters are int64s, strings or NULLs, as
 * described by `types` ('i' int64, 's' string, 'n' an int64 where -1 is
 * NULL), with no result rows.  The caller holds m->lock. */
static int vstep_stmt(akidb__catalog *m, const char *sql, const char *what, const char *types,
                      va_list ap)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL);
    for (int i = 0; src == SQLITE_OK && types[i]; i++) {
        if (types[i] == 'i') {
            src = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        } else if (types[i] == 'n') {
            int64_t v = va_arg(ap, int64_t);
            src = v < 0 ? sqlite3_bind_null(st, i + 1) : sqlite3_bind_int64(st, i + 1, v);
        } else {
            src = sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        }
    }
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? AKIDB_OK : sql_err(m, src, what);
    sqlite3_finalize(st);
    return rc;
}

static int step_stmt(akidb__catalog *m, const char *sql, const char *what, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    int rc = vstep_stmt(m, sql, what, types, ap);
    va_end(ap);
    return rc;
}

/* step_stmt with the catalog locked. */
static int run_stmt(akidb__catalog *m, const char *sql, const char *what, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    pthread_mutex_lock(&m->lock);
    int rc = vstep_stmt(m, sql, what, types, ap);
    pthread_mutex_unlock(&m->lock);
    va_end(ap);
    return rc;
}

int akidb__catalog_dlq_add(akidb__catalog *m, const akidb__catalog_dlq *e, int64_t *id_out)
{
    int rc = run_stmt(m, SQL_DLQ_ADD, "cannot add dead letter", "sssiiii", e->object_key,
                      e->source_path, e->reason, (int64_t)e->attempts, (int64_t)e->permanent,
                      e->created_at, e->next_attempt_at);
    if (rc == AKIDB_OK && id_out) {
        pthread_mutex_lock(&m->lock);
        *id_out = sqlite3_last_insert_rowid(m->db);
        pthread_mutex_unlock(&m->lock);
    }
    return rc;
}

static int dlq_query(akidb__catalog *m, const char *sql, int64_t a, int64_t b, int n_params,
                     int (*cb)(void *ctx, const akidb__catalog_dlq *e), void *ctx)
{
    /* Rows are copied out first and the callback runs without the lock,
     * so it may call back into the catalog (update, delete). */
    akidb__catalog_dlq *rows = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = NULL;
    int rc = AKIDB_OK;
    int src = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL);
    if (src == SQLITE_OK && n_params >= 1)
        src = sqlite3_bind_int64(st, 1, a);
    if (src == SQLITE_OK && n_params >= 2)
        src = sqlite3_bind_int64(st, 2, b);
    if (src != SQLITE_OK) {
        rc = sql_err(m, src, "cannot read dead letters");
        goto unlock;
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t c2 = cap ? cap * 2 : 16;
            akidb__catalog_dlq *r = realloc(rows, c2 * sizeof *r);
            if (!r) {
                rc = akidb__err(AKIDB_NOMEM, "catalog %s: out of memory", m->path);
                goto unlock;
            }
            rows = r;
            cap = c2;
        }
        akidb__catalog_dlq *e = &rows[n];
        memset(e, 0, sizeof *e);
        e->dlq_id = sqlite3_column_int64(st, 0);
        const char *k = (const char *)sqlite3_column_text(st, 1);
        const char *p = (const char *)sqlite3_column_text(st, 2);
        const char *r = (const char *)sqlite3_column_text(st, 3);
        e->object_key = strdup(k ? k : "");
        e->source_path = strdup(p ? p : "");
        e->reason = strdup(r ? r : "");
        e->attempts = (uint32_t)sqlite3_column_int64(st, 4);
        e->permanent = (int)sqlite3_column_int64(st, 5);
        e->created_at = sqlite3_column_int64(st, 6);
        e->next_attempt_at = sqlite3_column_int64(st, 7);
        n++;
        if (!e->object_key || !e->source_path || !e->reason) {
            rc = akidb__err(AKIDB_NOMEM, "catalog %s: out of memory", m->path);
            goto unlock;
        }
    }
    if (src != SQLITE_DONE)
        rc = sql_err(m, src, "cannot read dead letters");
unlock:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < n; i++) {
        if (rc == AKIDB_OK)
            rc = cb(ctx, &rows[i]);
        free(rows[i].object_key);
        free(rows[i].source_path);
        free(rows[i].reason);
    }
    free(rows);
    return rc;
}

int akidb__catalog_dlq_list(akidb__catalog *m, int (*cb)(void *ctx, const akidb__catalog_dlq *e),
                         void *ctx)
{
    return dlq_query(m, SQL_DLQ_ALL, 0, 0, 0, cb, ctx);
}

int akidb__catalog_dlq_due(akidb__catalog *m, int64_t now, uint32_t limit,
                        int (*cb)(void *ctx, const akidb__catalog_dlq *e), void *ctx)
{
    return dlq_query(m, SQL_DLQ_DUE, now, (int64_t)limit, 2, cb, ctx);
}

int akidb__catalog_dlq_get(akidb__catalog *m, int64_t dlq_id,
                        int (*cb)(void *ctx, const akidb__catalog_dlq *e), void *ctx)
{
    return dlq_query(m, SQL_DLQ_ONE, dlq_id, 0, 1, cb, ctx);
}

int akidb__catalog_dlq_update(akidb__catalog *m, int64_t dlq_id, const char *reason,
                           uint32_t attempts, int permanent, int64_t next_attempt_at)
{
    return run_stmt(m, SQL_DLQ_UPDATE, "cannot update dead letter", "siiii", reason,
                    (int64_t)attempts, (int64_t)permanent, next_attempt_at, dlq_id);
}

int akidb__catalog_dlq_delete(akidb__catalog *m, int64_t dlq_id)
{
    return run_stmt(m, SQL_DLQ_DELETE, "cannot delete dead letter", "i", dlq_id);
}

int akidb__catalog_dlq_purge_permanent(akidb__catalog *m)
{
    return run_stmt(m, SQL_DLQ_PURGE, "cannot purge dead letters", "");
}

/* ---- snapshots ------------------------------------------------------- */

static int snap_insert(akidb__catalog *m, const akidb__catalog_snap *e)
{
    return step_stmt(m, SQL_SNAP_ADD, "cannot record snapshot", "sissiisisii", e->snapshot_id,
                     e->coll_id, e->coll_name, e->object_key, (int64_t)e->rows,
                     (int64_t)e->bytes, e->sha256, e->created_at,
                     e->kind == AKIDB__SNAP_TIER ? "tier" : "user", e->crc32c,
                     (int64_t)e->last_seq);
}

int akidb__catalog_snap_add(akidb__catalog *m, const akidb__catalog_snap *e)
{
    pthread_mutex_lock(&m->lock);
    int rc = snap_insert(m, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Snapshot rows under one collection name (coll_name), of one collection
 * id (coll_id > 0) or of all, copied out so the callback runs without the
 * lock. */
static int snap_query(akidb__catalog *m, const char *coll_name, int64_t coll_id,
                      int (*cb)(void *ctx, const akidb__catalog_snap *e), void *ctx)
{
    akidb__catalog_snap *rows = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = NULL;
    int rc = AKIDB_OK;
    const char *sql = coll_name ? SQL_SNAP_LIST : coll_id > 0 ? SQL_SNAP_LIST_ID : SQL_SNAP_ALL;
    int src = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL);
    if (src == SQLITE_OK && coll_name)
        src = sqlite3_bind_text(st, 1, coll_name, -1, SQLITE_TRANSIENT);
    else if (src == SQLITE_OK && coll_id > 0)
        src = sqlite3_bind_int64(st, 1, coll_id);
    if (src != SQLITE_OK) {
        rc = sql_err(m, src, "cannot list snapshots");
        goto unlock;
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t c2 = cap ? cap * 2 : 16;
            akidb__catalog_snap *r = realloc(rows, c2 * sizeof *r);
            if (!r) {
                rc = akidb__err(AKIDB_NOMEM, "catalog %s: out of memory", m->path);
                goto unlock;
            }
            rows = r;
            cap = c2;
        }
        akidb__catalog_snap *e = &rows[n++];
        memset(e, 0, sizeof *e);
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *key = (const char *)sqlite3_column_text(st, 2);
        const char *sha = (const char *)sqlite3_column_text(st, 5);
        const char *kind = (const char *)sqlite3_column_text(st, 7);
        const char *name = (const char *)sqlite3_column_text(st, 10);
        snprintf(e->coll_name, sizeof e->coll_name, "%s", name ? name : "");
        snprintf(e->snapshot_id, sizeof e->snapshot_id, "%s", id ? id : "");
        snprintf(e->object_key, sizeof e->object_key, "%s", key ? key : "");
        snprintf(e->sha256, sizeof e->sha256, "%s", sha ? sha : "");
        e->coll_id = sqlite3_column_int64(st, 1);
        e->rows = (uint64_t)sqlite3_column_int64(st, 3);
        e->bytes = (uint64_t)sqlite3_column_int64(st, 4);
        e->created_at = sqlite3_column_int64(st, 6);
        e->kind = kind && strcmp(kind, "tier") == 0 ? AKIDB__SNAP_TIER : AKIDB__SNAP_USER;
        e->crc32c = sqlite3_column_int64(st, 8);
        e->last_seq = (uint64_t)sqlite3_column_int64(st, 9);
    }
    if (src != SQLITE_DONE)
        rc = sql_err(m, src, "cannot list snapshots");
unlock:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < n && rc == AKIDB_OK; i++)
        rc = cb(ctx, &rows[i]);
    free(rows);
    return rc;
}

int akidb__catalog_snap_list(akidb__catalog *m, const char *coll_name,
                          int (*cb)(void *ctx, const akidb__catalog_snap *e), void *ctx)
{
    return snap_query(m, coll_name ? coll_name : "", 0, cb, ctx);
}

int akidb__catalog_snap_list_id(akidb__catalog *m, int64_t coll_id,
                                int (*cb)(void *ctx, const akidb__catalog_snap *e), void *ctx)
{
    return snap_query(m, NULL, coll_id > 0 ? coll_id : INT64_MAX, cb, ctx);
}

int akidb__catalog_snap_all(akidb__catalog *m,
                            int (*cb)(void *ctx, const akidb__catalog_snap *e), void *ctx)
{
    return snap_query(m, NULL, 0, cb, ctx);
}

int akidb__catalog_snap_total(akidb__catalog *m, uint64_t *bytes_out)
{
    pthread_mutex_lock(&m->lock);
    int64_t v = 0;
    int rc = query_int(m, SQL_SNAP_TOTAL, &v, "cannot sum snapshot sizes");
    pthread_mutex_unlock(&m->lock);
    *bytes_out = v > 0 ? (uint64_t)v : 0;
    return rc;
}

int akidb__catalog_snap_delete(akidb__catalog *m, const char *coll_name,
                               const char *snapshot_id)
{
    return run_stmt(m, SQL_SNAP_DELETE, "cannot delete snapshot", "ss", coll_name, snapshot_id);
}

/* ---- application records --------------------------------------------- */

/* Prepare sql and bind (ns, key) as its first two parameters. */
static int kv_prepare(akidb__catalog *m, const char *sql, const char *ns, const char *key,
                      sqlite3_stmt **st)
{
    int src = sqlite3_prepare_v2(m->db, sql, -1, st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text(*st, 1, ns, -1, SQLITE_TRANSIENT);
    if (src == SQLITE_OK && key)
        src = sqlite3_bind_text(*st, 2, key, -1, SQLITE_TRANSIENT);
    return src;
}

int akidb__catalog_kv_put(akidb__catalog *m, const char *ns, const char *key,
                          const void *value, size_t len)
{
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = NULL;
    int src = kv_prepare(m, SQL_KV_PUT, ns, key, &st);
    if (src == SQLITE_OK)   /* zeroblob-safe: a NULL value would violate NOT NULL */
        src = sqlite3_bind_blob(st, 3, len ? value : "", (int)len, SQLITE_TRANSIENT);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? AKIDB_OK : sql_err(m, src, "cannot store record");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int akidb__catalog_kv_get(akidb__catalog *m, const char *ns, const char *key,
                          void **value_out, size_t *len_out)
{
    *value_out = NULL;
    *len_out = 0;
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = NULL;
    int rc = AKIDB_OK;
    int src = kv_prepare(m, SQL_KV_GET, ns, key, &st);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        char *copy = akidb__out_malloc(len + 1);
        if (!copy) {
            rc = akidb__err(AKIDB_NOMEM, "catalog %s: out of memory", m->path);
        } else {
            if (len)
                memcpy(copy, blob, len);
            copy[len] = '\0';
            *value_out = copy;
            *len_out = len;
        }
    } else if (src == SQLITE_DONE) {
        rc = AKIDB_NOTFOUND;   /* the caller names the record */
    } else {
        rc = sql_err(m, src, "cannot read record");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int akidb__catalog_kv_delete(akidb__catalog *m, const char *ns, const char *key)
{
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = NULL;
    int src = kv_prepare(m, SQL_KV_DELETE, ns, key, &st);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? (sqlite3_changes(m->db) ? AKIDB_OK : AKIDB_NOTFOUND)
                                : sql_err(m, src, "cannot delete record");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int akidb__catalog_kv_list(akidb__catalog *m, const char *ns,
                           int (*cb)(void *ctx, const char *key), void *ctx)
{
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = NULL;
    int rc = AKIDB_OK;
    int src = kv_prepare(m, SQL_KV_LIST, ns, NULL, &st);
    while (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        if ((rc = cb(ctx, key ? key : "")) != AKIDB_OK)
            break;
        src = SQLITE_OK;
    }
    if (rc == AKIDB_OK && src != SQLITE_DONE)
        rc = sql_err(m, src, "cannot list records");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- tiering ---------------------------------------------------------- */

static const char *const tier_names[] = { NULL, "hot", "warm", "cold" };

akidb_tier akidb__catalog_tier_parse(const char *s)
{
    for (int t = AKIDB_TIER_HOT; s && t <= AKIDB_TIER_COLD; t++)
        if (strcmp(s, tier_names[t]) == 0)
            return (akidb_tier)t;
    return (akidb_tier)0;
}

const char *akidb__catalog_tier_name(akidb_tier t)
{
    return t >= AKIDB_TIER_HOT && t <= AKIDB_TIER_COLD ? tier_names[t] : "unknown";
}

static int coll_update(akidb__catalog *m, const akidb__catalog_coll *c)
{
    return step_stmt(m, SQL_COLL_UPDATE, "cannot update collection", "siiiiiiinnnnni",
                     akidb__catalog_tier_name(c->tier), (int64_t)c->pinned, c->last_access,
                     (int64_t)c->hot_bytes, (int64_t)c->doc_count, (int64_t)c->doc_deleted,
                     (int64_t)c->access_count, c->access_window, c->policy.v[0],
                     c->policy.v[1], c->policy.v[2], c->policy.v[3], c->policy.v[4],
                     c->coll_id);
}

int akidb__catalog_coll_update(akidb__catalog *m, const akidb__catalog_coll *c)
{
    pthread_mutex_lock(&m->lock);
    int rc = coll_update(m, c);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int akidb__catalog_access_update(akidb__catalog *m, size_t n, const akidb__catalog_access *rows)
{
    if (n == 0)
        return AKIDB_OK;
    pthread_mutex_lock(&m->lock);
    int rc = exec(m, "BEGIN IMMEDIATE", "cannot record access statistics");
    for (size_t i = 0; i < n && rc == AKIDB_OK; i++)
        rc = step_stmt(m, SQL_ACCESS_UPDATE, "cannot record access statistics", "iiii",
                       rows[i].last_access, (int64_t)rows[i].access_count,
                       rows[i].access_window, rows[i].coll_id);
    if (rc == AKIDB_OK)
        rc = exec(m, "COMMIT", "cannot record access statistics");
    if (rc)
        sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int intent_put(akidb__catalog *m, const akidb__catalog_intent *e)
{
    return step_stmt(m, SQL_INTENT_PUT, "cannot record tier transition", "ississiisiii",
                     e->coll_id, akidb__catalog_tier_name(e->from),
                     akidb__catalog_tier_name(e->to), (int64_t)e->step, e->snapshot_id,
                     e->object_key, (int64_t)e->bytes, (int64_t)e->crc32c, e->sha256,
                     (int64_t)e->rows, (int64_t)e->last_seq, e->started_at);
}

int akidb__catalog_intent_put(akidb__catalog *m, const akidb__catalog_intent *e)
{
    pthread_mutex_lock(&m->lock);
    int rc = intent_put(m, e);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int akidb__catalog_intent_delete(akidb__catalog *m, int64_t coll_id)
{
    return run_stmt(m, SQL_INTENT_DELETE, "cannot clear tier transition", "i", coll_id);
}

int akidb__catalog_intent_list(akidb__catalog *m,
                               int (*cb)(void *ctx, const akidb__catalog_intent *e), void *ctx)
{
    akidb__catalog_intent *rows = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = NULL;
    int rc = AKIDB_OK;
    int src = sqlite3_prepare_v2(m->db, SQL_INTENT_ALL, -1, &st, NULL);
    while (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        src = SQLITE_OK;
        if (n == cap) {
            size_t c2 = cap ? cap * 2 : 8;
            akidb__catalog_intent *r = realloc(rows, c2 * sizeof *r);
            if (!r) {
                rc = akidb__err(AKIDB_NOMEM, "catalog %s: out of memory", m->path);
                break;
            }
            rows = r;
            cap = c2;
        }
        akidb__catalog_intent *e = &rows[n++];
        memset(e, 0, sizeof *e);
        e->coll_id = sqlite3_column_int64(st, 0);
        e->from = akidb__catalog_tier_parse((const char *)sqlite3_column_text(st, 1));
        e->to = akidb__catalog_tier_parse((const char *)sqlite3_column_text(st, 2));
        e->step = (int)sqlite3_column_int64(st, 3);
        const char *id = (const char *)sqlite3_column_text(st, 4);
        const char *key = (const char *)sqlite3_column_text(st, 5);
        const char *sha = (const char *)sqlite3_column_text(st, 8);
        snprintf(e->snapshot_id, sizeof e->snapshot_id, "%s", id ? id : "");
        snprintf(e->object_key, sizeof e->object_key, "%s", key ? key : "");
        snprintf(e->sha256, sizeof e->sha256, "%s", sha ? sha : "");
        e->bytes = (uint64_t)sqlite3_column_int64(st, 6);
        e->crc32c = (uint32_t)sqlite3_column_int64(st, 7);
        e->rows = (uint64_t)sqlite3_column_int64(st, 9);
        e->last_seq = (uint64_t)sqlite3_column_int64(st, 10);
        e->started_at = sqlite3_column_int64(st, 11);
        if (!e->from || !e->to) {
            rc = akidb__err(AKIDB_CORRUPT, "catalog %s: tier transition of collection %lld "
                            "names an unknown tier", m->path, (long long)e->coll_id);
            break;
        }
    }
    if (rc == AKIDB_OK && src != SQLITE_DONE)
        rc = sql_err(m, src, "cannot read tier transitions");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < n && rc == AKIDB_OK; i++)
        rc = cb(ctx, &rows[i]);
    free(rows);
    return rc;
}

int akidb__catalog_tier_commit(akidb__catalog *m, const akidb__catalog_coll *c,
                               const akidb__catalog_snap *snap_add, int intent_delete)
{
    pthread_mutex_lock(&m->lock);
    int rc = exec(m, "BEGIN IMMEDIATE", "cannot record tier change");
    if (rc == AKIDB_OK && snap_add)
        rc = snap_insert(m, snap_add);
    if (rc == AKIDB_OK)
        rc = coll_update(m, c);
    if (rc == AKIDB_OK && intent_delete)
        rc = step_stmt(m, SQL_INTENT_DELETE, "cannot clear tier transition", "i", c->coll_id);
    if (rc == AKIDB_OK)
        rc = exec(m, "COMMIT", "cannot record tier change");
    if (rc)
        sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int akidb__catalog_gc_add(akidb__catalog *m, const char *key, const char *reason, int64_t now)
{
    return run_stmt(m, SQL_GC_ADD, "cannot record object to delete", "ssi", key, reason, now);
}

int akidb__catalog_gc_snap(akidb__catalog *m, const akidb__catalog_snap *e, const char *reason,
                           int64_t now)
{
    /* The row goes and its object joins tier_gc in one transaction, so a
     * crash can neither leave a row without its object being deleted nor
     * lose track of the object. */
    pthread_mutex_lock(&m->lock);
    int rc = exec(m, "BEGIN IMMEDIATE", "cannot delete snapshot");
    if (rc == AKIDB_OK)
        rc = step_stmt(m, SQL_GC_ADD, "cannot delete snapshot", "ssi", e->object_key, reason,
                       now);
    if (rc == AKIDB_OK)
        rc = step_stmt(m, SQL_SNAP_DELETE_ROW, "cannot delete snapshot", "s",
                       e->snapshot_id);
    if (rc == AKIDB_OK)
        rc = exec(m, "COMMIT", "cannot delete snapshot");
    if (rc)
        sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int akidb__catalog_gc_delete(akidb__catalog *m, const char *key)
{
    return run_stmt(m, SQL_GC_DELETE, "cannot clear object to delete", "s", key);
}

int akidb__catalog_gc_list(akidb__catalog *m, int (*cb)(void *ctx, const char *key), void *ctx)
{
    /* Keys copied out first: the callback deletes objects and rows. */
    char **keys = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = NULL;
    int rc = AKIDB_OK;
    int src = sqlite3_prepare_v2(m->db, SQL_GC_ALL, -1, &st, NULL);
    while (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        src = SQLITE_OK;
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if (n == cap) {
            size_t c2 = cap ? cap * 2 : 8;
            char **r = realloc(keys, c2 * sizeof *r);
            if (!r) {
                rc = akidb__err(AKIDB_NOMEM, "catalog %s: out of memory", m->path);
                break;
            }
            keys = r;
            cap = c2;
        }
        if (!(keys[n] = strdup(k ? k : ""))) {
            rc = akidb__err(AKIDB_NOMEM, "catalog %s: out of memory", m->path);
            break;
        }
        n++;
    }
    if (rc == AKIDB_OK && src != SQLITE_DONE)
        rc = sql_err(m, src, "cannot read objects to delete");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < n; i++) {
        if (rc == AKIDB_OK)
            rc = cb(ctx, keys[i]);
        free(keys[i]);
    }
    free(keys);
    return rc;
}
