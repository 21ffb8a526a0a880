/*
 * meta.c - the catalog, kept in SQLite (`akidb.db` in the database
 * directory).  The only file of the library that includes sqlite3.h.
 *
 * Why SQLite: the catalog changes rarely but must never be half-written,
 * and later subsystems (snapshots, dead-letter queue, API keys) need
 * queries; SQLite gives atomic, durable transactions for free.  The vectors
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
 * One connection per handle, used under m->lock: catalog calls are rare
 * (create, drop, open), so a mutex costs nothing and keeps SQLite in its
 * simplest threading mode.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "akidb_int.h"
#include "meta.h"

struct akidb__meta {
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
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

#define SQL_LIST "SELECT coll_id, name, dim, metric, hnsw_m, ef_construction, ef_search, " \
                 "created_at FROM collections ORDER BY coll_id"
#define SQL_CREATE "INSERT INTO collections (name, dim, metric, hnsw_m, ef_construction, " \
                   "ef_search, created_at, last_access) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
#define SQL_DROP "DELETE FROM collections WHERE coll_id = ?"
#define SQL_MAX_ROW "SELECT coalesce(max(coll_id), 0) FROM collections"

/* Every statement the catalog runs, checked against the schema on open. */
static const char *const used_sql[] = {
    SQL_LIST, SQL_CREATE, SQL_DROP, SQL_MAX_ROW,
    "SELECT snapshot_id, coll_id, object_key, rows, bytes, sha256, created_at FROM snapshots",
};

/* Map an SQLite failure to a result code, with the catalog named. */
static int sql_err(akidb__meta *m, int src, const char *what)
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

static int exec(akidb__meta *m, const char *sql, const char *what)
{
    int src = sqlite3_exec(m->db, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? AKIDB_OK : sql_err(m, src, what);
}

static int query_int(akidb__meta *m, const char *sql, int64_t *out, const char *what)
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

void akidb__meta_close(akidb__meta *m)
{
    if (!m)
        return;
    sqlite3_close(m->db);   /* also checkpoints SQLite's own WAL */
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int akidb__meta_open(const char *path, int may_create, akidb__meta **out)
{
    *out = NULL;
    if (strlen(path) >= sizeof ((akidb__meta *)0)->path)
        return akidb__err(AKIDB_INVALID, "catalog path is too long: %s", path);
    struct stat st;
    int exists = stat(path, &st) == 0 && st.st_size > 0;
    if (!exists && !may_create)
        return akidb__err(AKIDB_CORRUPT, "catalog %s is missing or empty, but the database "
                          "directory holds collection logs or checkpoints", path);

    akidb__meta *m = calloc(1, sizeof *m);
    if (!m)
        return akidb__err(AKIDB_NOMEM, "catalog %s: out of memory", path);
    strcpy(m->path, path);
    pthread_mutex_init(&m->lock, NULL);
    int rc = AKIDB_OK;
    int src = sqlite3_open_v2(path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                              SQLITE_OPEN_NOMUTEX, NULL);
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

    if ((rc = exec(m, "PRAGMA journal_mode=WAL", "cannot enable WAL mode")) ||
        (rc = exec(m, "PRAGMA synchronous=FULL", "cannot set synchronous")) ||
        (rc = exec(m, "PRAGMA foreign_keys=ON", "cannot enable foreign keys")))
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
    akidb__meta_close(m);
    return rc;
}

int akidb__meta_list(akidb__meta *m, int (*cb)(void *ctx, const akidb__meta_coll *c),
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
        akidb__meta_coll c;
        memset(&c, 0, sizeof c);
        c.coll_id = sqlite3_column_int64(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        int64_t dim = sqlite3_column_int64(st, 2), metric = sqlite3_column_int64(st, 3);
        int64_t hm = sqlite3_column_int64(st, 4), efc = sqlite3_column_int64(st, 5);
        int64_t efs = sqlite3_column_int64(st, 6);
        /* The catalog is a file: check what it says before using it. */
        if (!name || strlen(name) > AKIDB_MAX_NAME_LEN || dim < 1 || dim > AKIDB_MAX_DIM ||
            metric < 1 || metric > 3 || hm < 2 || hm > 128 || efc < 1 || efc > 100000 ||
            efs < 1 || efs > 100000 || c.coll_id < 1) {
            rc = akidb__err(AKIDB_CORRUPT, "catalog %s: collection row %lld has invalid "
                            "settings", m->path, (long long)c.coll_id);
            goto done;
        }
        strcpy(c.name, name);
        akidb_collection_config_init(&c.cfg, (uint32_t)dim, (akidb_metric)metric);
        c.cfg.hnsw_m = (uint32_t)hm;
        c.cfg.ef_construction = (uint32_t)efc;
        c.cfg.ef_search = (uint32_t)efs;
        c.created_at = sqlite3_column_int64(st, 7);
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

int akidb__meta_max_coll_id(akidb__meta *m, int64_t *out)
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

int akidb__meta_create(akidb__meta *m, const char *name, const akidb_collection_config *cfg,
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

int akidb__meta_drop(akidb__meta *m, int64_t coll_id)
{
    pthread_mutex_lock(&m->lock);
    sqlite3_stmt *st = NULL;
    int rc = AKIDB_OK;
    int src = sqlite3_prepare_v2(m->db, SQL_DROP, -1, &st, NULL);
    if (src == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, coll_id);
        src = sqlite3_step(st);
    }
    if (src != SQLITE_DONE)
        rc = sql_err(m, src, "cannot drop collection");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->lock);
    return rc;
}
