/*
 * akidb.c - the `akidb` command-line tool: Parquet import/export, snapshots
 * and file inspection, for people and shell scripts.
 *
 * A thin consumer of include/akidb.h, like the server beside it: every
 * command is one or two library calls plus argument parsing and output.
 * Exit status: 0 success, 1 a library error (printed with its code name and
 * detail), 2 bad usage.
 *
 *   akidb import   --db DIR --collection NAME --parquet FILE
 *                  [--id-column C] [--vector-column C] [--metadata-columns C,...]
 *                  [--metric l2|cosine|dot]
 *   akidb export   --db DIR --collection NAME --parquet FILE
 *   akidb snapshot create|list|restore|delete --db DIR --collection NAME [--id ID]
 *   akidb tier     get|set|pin|unpin|stats --db DIR [--collection NAME]
 *                  [--tier hot|warm|cold]
 *   akidb inspect  FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "akidb.h"

static void usage(void)
{
    fputs("usage:\n"
          "  akidb import   --db DIR --collection NAME --parquet FILE\n"
          "                 [--id-column C] [--vector-column C] [--metadata-columns C,...]\n"
          "                 [--metric l2|cosine|dot]\n"
          "  akidb export   --db DIR --collection NAME --parquet FILE\n"
          "  akidb snapshot create|list|restore|delete --db DIR --collection NAME [--id ID]\n"
          "  akidb tier     get|pin|unpin --db DIR --collection NAME\n"
          "  akidb tier     set --db DIR --collection NAME --tier hot|warm|cold\n"
          "  akidb tier     stats --db DIR [--collection NAME]\n"
          "  akidb inspect  FILE\n"
          "  akidb --version\n", stderr);
}

typedef struct args {
    const char *db, *collection, *parquet, *id_column, *vector_column, *metadata_columns,
        *metric, *id, *tier;
} args;

/* Parse --name value pairs; returns 0, or 2 for a usage error. */
static int parse(int argc, char **argv, int first, args *a)
{
    memset(a, 0, sizeof *a);
    struct { const char *flag; const char **slot; } flags[] = {
        { "--db", &a->db }, { "--collection", &a->collection }, { "--parquet", &a->parquet },
        { "--id-column", &a->id_column }, { "--vector-column", &a->vector_column },
        { "--metadata-columns", &a->metadata_columns }, { "--metric", &a->metric },
        { "--id", &a->id }, { "--tier", &a->tier },
    };
    for (int i = first; i < argc; i++) {
        size_t k = 0;
        for (; k < sizeof flags / sizeof flags[0]; k++)
            if (strcmp(argv[i], flags[k].flag) == 0)
                break;
        if (k == sizeof flags / sizeof flags[0]) {
            fprintf(stderr, "akidb: unknown option %s\n", argv[i]);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "akidb: %s needs a value\n", argv[i]);
            return 2;
        }
        *flags[k].slot = argv[++i];
    }
    return 0;
}

static int need(const char *value, const char *flag)
{
    if (value)
        return 0;
    fprintf(stderr, "akidb: %s is required\n", flag);
    return 2;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "akidb: %s: %s: %s\n", what, akidb_errstr(rc), akidb_errmsg(NULL));
    return 1;
}

static int open_db(const char *dir, akidb **db)
{
    int rc = akidb_open(dir, NULL, db);
    return rc ? fail("open", rc) : 0;
}

/* A progress bar on a terminal; nothing when stderr is a file or pipe. */
static void progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    if (!isatty(STDERR_FILENO) || total == 0)
        return;
    int width = 40, filled = (int)((double)done / (double)total * width);
    fprintf(stderr, "\r  [%.*s%*s] %llu/%llu rows", filled,
            "########################################", width - filled, "",
            (unsigned long long)done, (unsigned long long)total);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

static int cmd_import(const args *a)
{
    if (need(a->db, "--db") || need(a->collection, "--collection") || need(a->parquet, "--parquet"))
        return 2;
    akidb_import_options o;
    akidb_import_options_init(&o);
    if (a->vector_column)
        o.vector_column = a->vector_column;
    o.id_column = a->id_column;
    if (a->metric) {
        if (strcmp(a->metric, "l2") == 0) o.metric = AKIDB_METRIC_L2;
        else if (strcmp(a->metric, "cosine") == 0) o.metric = AKIDB_METRIC_COSINE;
        else if (strcmp(a->metric, "dot") == 0) o.metric = AKIDB_METRIC_DOT;
        else {
            fprintf(stderr, "akidb: --metric must be l2, cosine or dot, not %s\n", a->metric);
            return 2;
        }
    }
    /* --metadata-columns a,b,c */
    char *list = NULL;
    const char *cols[256];
    size_t n_cols = 0;
    if (a->metadata_columns) {
        list = strdup(a->metadata_columns);
        if (!list)
            return fail("import", AKIDB_NOMEM);
        for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            if (n_cols == sizeof cols / sizeof cols[0]) {
                fprintf(stderr, "akidb: at most 256 metadata columns\n");
                free(list);
                return 2;
            }
            cols[n_cols++] = tok;
        }
        o.metadata_columns = cols;
        o.n_metadata_columns = n_cols;
    }
    o.progress = progress;
    akidb *db;
    int rc = open_db(a->db, &db);
    if (rc) {
        free(list);
        return rc;
    }
    uint64_t rows = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = akidb_import_parquet(db, a->collection, a->parquet, &o, &rows);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(list);
    if (rc) {
        fail("import", rc);
        akidb_close(db);
        return 1;
    }
    printf("imported %llu rows into %s in %.2f s\n", (unsigned long long)rows, a->collection,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    rc = akidb_close(db);
    return rc ? fail("close", rc) : 0;
}

static int cmd_export(const args *a)
{
    if (need(a->db, "--db") || need(a->collection, "--collection") || need(a->parquet, "--parquet"))
        return 2;
    akidb *db;
    int rc = open_db(a->db, &db);
    if (rc)
        return rc;
    rc = akidb_export_parquet(db, a->collection, a->parquet);
    if (rc)
        fail("export", rc);
    else
        printf("exported %s to %s\n", a->collection, a->parquet);
    int crc = akidb_close(db);
    return rc ? 1 : crc ? fail("close", crc) : 0;
}

static int cmd_snapshot(const char *sub, const args *a)
{
    if (need(a->db, "--db") || need(a->collection, "--collection"))
        return 2;
    int is_create = strcmp(sub, "create") == 0, is_list = strcmp(sub, "list") == 0;
    int is_restore = strcmp(sub, "restore") == 0, is_delete = strcmp(sub, "delete") == 0;
    if (!is_create && !is_list && !is_restore && !is_delete) {
        fprintf(stderr, "akidb: snapshot needs create, list, restore or delete, not %s\n", sub);
        return 2;
    }
    if (is_delete && need(a->id, "--id"))
        return 2;
    akidb *db;
    int rc = open_db(a->db, &db);
    if (rc)
        return rc;
    if (is_create) {
        char id[AKIDB_SNAPSHOT_ID_LEN];
        if (!(rc = akidb_snapshot_create(db, a->collection, id, sizeof id)))
            printf("%s\n", id);
    } else if (is_list) {
        akidb_snapshot_info **info = NULL;
        size_t n = 0;
        if (!(rc = akidb_snapshot_list(db, a->collection, &info, &n))) {
            printf("%-24s %10s %12s  %-20s %s\n", "id", "rows", "bytes", "created (UTC)", "sha256");
            for (size_t i = 0; i < n; i++) {
                time_t secs = (time_t)(info[i]->created_at_us / 1000000);
                struct tm tm;
                char when[32];
                gmtime_r(&secs, &tm);
                strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
                printf("%-24s %10llu %12llu  %-20s %s\n", info[i]->id,
                       (unsigned long long)info[i]->rows, (unsigned long long)info[i]->bytes,
                       when, info[i]->sha256);
            }
            akidb_free(info);
        }
    } else if (is_restore) {
        if (!(rc = akidb_snapshot_restore(db, a->collection, a->id)))
            printf("restored %s from %s\n", a->collection, a->id ? a->id : "the newest snapshot");
    } else {
        if (!(rc = akidb_snapshot_delete(db, a->collection, a->id)))
            printf("deleted snapshot %s\n", a->id);
    }
    if (rc)
        fail(sub, rc);
    int crc = akidb_close(db);
    return rc ? 1 : crc ? fail("close", crc) : 0;
}

/* ---- tier ----------------------------------------------------------- */

static const char *tier_name(akidb_tier t)
{
    return t == AKIDB_TIER_HOT ? "hot" : t == AKIDB_TIER_WARM ? "warm"
         : t == AKIDB_TIER_COLD ? "cold" : "?";
}

static void print_tier_info(akidb *db, const char *name)
{
    akidb_tier_info ti;
    memset(&ti, 0, sizeof ti);
    ti.version = AKIDB_TIER_INFO_VERSION;
    int rc = akidb_tier_info_get(db, name, &ti);
    if (rc) {
        fail(name, rc);
        return;
    }
    char when[32] = "never";
    if (ti.last_access_us > 0) {
        time_t secs = (time_t)(ti.last_access_us / 1000000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    }
    printf("%-24s %-5s %-6s %12llu %12llu %12llu  %-20s %s\n", name, tier_name(ti.tier),
           ti.pinned ? "pinned" : "", (unsigned long long)ti.hot_bytes,
           (unsigned long long)ti.local_bytes, (unsigned long long)ti.cold_bytes, when,
           ti.last_error ? ti.last_error_msg : "");
}

static int cmd_tier(const char *sub, const args *a)
{
    int is_get = strcmp(sub, "get") == 0, is_set = strcmp(sub, "set") == 0;
    int is_pin = strcmp(sub, "pin") == 0, is_unpin = strcmp(sub, "unpin") == 0;
    int is_stats = strcmp(sub, "stats") == 0;
    if (!is_get && !is_set && !is_pin && !is_unpin && !is_stats) {
        fprintf(stderr, "akidb: tier needs get, set, pin, unpin or stats, not %s\n", sub);
        return 2;
    }
    if (need(a->db, "--db") || (!is_stats && need(a->collection, "--collection")) ||
        (is_set && need(a->tier, "--tier")))
        return 2;
    akidb_tier target = 0;
    if (is_set) {
        for (int t = AKIDB_TIER_HOT; t <= AKIDB_TIER_COLD; t++)
            if (strcmp(a->tier, tier_name((akidb_tier)t)) == 0)
                target = (akidb_tier)t;
        if (!target) {
            fprintf(stderr, "akidb: --tier must be hot, warm or cold, not %s\n", a->tier);
            return 2;
        }
    }
    akidb *db;
    int rc = open_db(a->db, &db);
    if (rc)
        return rc;
    if (is_get) {
        akidb_tier t;
        if (!(rc = akidb_tier_get(db, a->collection, &t)))
            printf("%s\n", tier_name(t));
    } else if (is_set) {
        if (!(rc = akidb_tier_set(db, a->collection, target)))
            printf("%s is %s\n", a->collection, tier_name(target));
    } else if (is_pin || is_unpin) {
        if (!(rc = akidb_tier_pin(db, a->collection, is_pin)))
            printf("%s %s\n", a->collection, is_pin ? "pinned" : "unpinned");
    } else {
        akidb_tier_stats ts;
        memset(&ts, 0, sizeof ts);
        ts.version = AKIDB_TIER_STATS_VERSION;
        char **names = NULL;
        size_t n = 0;
        if (!(rc = akidb_tier_stats_get(db, &ts)) &&
            !(rc = akidb_collection_list(db, &names, &n))) {
            for (int t = AKIDB_TIER_HOT; t <= AKIDB_TIER_COLD; t++)
                printf("%-5s %6llu collections %14llu bytes\n", tier_name((akidb_tier)t),
                       (unsigned long long)ts.collections[t], (unsigned long long)ts.bytes[t]);
            printf("memory budget %llu bytes (0 = unlimited); store %llu bytes of %llu "
                   "(0 = unlimited)\n\n", (unsigned long long)ts.memory_budget,
                   (unsigned long long)ts.store_bytes, (unsigned long long)ts.store_quota);
            printf("%-24s %-5s %-6s %12s %12s %12s  %-20s %s\n", "collection", "tier", "",
                   "ram bytes", "local bytes", "cold bytes", "last access (UTC)", "last error");
            for (size_t i = 0; i < n; i++)
                if (!a->collection || strcmp(a->collection, names[i]) == 0)
                    print_tier_info(db, names[i]);
            akidb_free(names);
        }
    }
    if (rc)
        fail(sub, rc);
    int crc = akidb_close(db);
    return rc ? 1 : crc ? fail("close", crc) : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0) {
        printf("akidb %s\n", akidb_version());
        return 0;
    }
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage();
        return 0;
    }
    if (strcmp(cmd, "inspect") == 0) {
        if (argc != 3) {
            usage();
            return 2;
        }
        char *text = NULL;
        int rc = akidb_parquet_inspect(argv[2], &text);
        if (rc)
            return fail("inspect", rc);
        fputs(text, stdout);
        akidb_free(text);
        return 0;
    }
    args a;
    if (strcmp(cmd, "snapshot") == 0) {
        if (argc < 3) {
            usage();
            return 2;
        }
        return parse(argc, argv, 3, &a) ? 2 : cmd_snapshot(argv[2], &a);
    }
    if (strcmp(cmd, "tier") == 0) {
        if (argc < 3) {
            usage();
            return 2;
        }
        return parse(argc, argv, 3, &a) ? 2 : cmd_tier(argv[2], &a);
    }
    if (parse(argc, argv, 2, &a))
        return 2;
    if (strcmp(cmd, "import") == 0)
        return cmd_import(&a);
    if (strcmp(cmd, "export") == 0)
        return cmd_export(&a);
    fprintf(stderr, "akidb: unknown command %s\n", cmd);
    usage();
    return 2;
}
