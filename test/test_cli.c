/*
 * test_cli.c - the `akidb` tool run as a user runs it: through a shell,
 * reading its exit status, stdout and stderr.
 *
 * The tool tested is the one built beside this test binary
 * (BUILD/akidb for BUILD/test/akidb_test, so `make asan` tests the ASan
 * build of the tool), or $AKIDB_CLI.  Databases and files are set up
 * through the library.
 */
#include "runner.h"
#include "helpers.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "akidb.h"
#include "format/parquet.h"

static const char *errmsg_detail(void) { return akidb_errmsg(NULL); }
__attribute__((constructor)) static void set_detail(void) { akt_rc_detail_fn = errmsg_detail; }

#define ASSERT_HAS(hay, needle)                                                      \
    do { const char *akt_h_ = (hay), *akt_n_ = (needle);                             \
         if (!akt_h_ || !strstr(akt_h_, akt_n_))                                     \
             akt_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"",          \
                      akt_h_ ? akt_h_ : "(null)", akt_n_); } while (0)

#define ASSERT_HASNT(hay, needle)                                                    \
    do { const char *akt_h_ = (hay), *akt_n_ = (needle);                             \
         if (akt_h_ && strstr(akt_h_, akt_n_))                                       \
             akt_fail(__FILE__, __LINE__, "\"%s\" contains \"%s\"", akt_h_, akt_n_); \
    } while (0)

/* ---- running the tool ---------------------------------------------------- */

static const char *tool(void)
{
    return akt_tool_path();
}

/* What one run printed. */
static char out[65536], err[65536];

static void slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, len - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

/* Run `akidb ARGS` (ARGS is shell text), from akt_dir, with stdout and
 * stderr captured in out and err; returns the exit status. */
static int akidb_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int akidb_run(const char *fmt, ...)
{
    char argsbuf[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(argsbuf, sizeof argsbuf, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >'%s/.out' 2>'%s/.err' </dev/null", akt_dir,
             tool(), argsbuf, akt_dir, akt_dir);
    fflush(stdout);
    fflush(stderr);
    int st = system(cmd);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.out", akt_dir);
    slurp(p, out, sizeof out);
    snprintf(p, sizeof p, "%s/.err", akt_dir);
    slurp(p, err, sizeof err);
    if (st == -1 || !WIFEXITED(st))
        akt_fail(__FILE__, __LINE__, "akidb %s: did not exit normally (status %d); stderr: %s",
                 argsbuf, st, err);
    return WEXITSTATUS(st);
}

/* Like akidb_run, but the whole shell command is given (for ulimit). */
static int shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int shell(const char *fmt, ...)
{
    char body[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && { %s; } >'%s/.out' 2>'%s/.err' </dev/null", akt_dir,
             body, akt_dir, akt_dir);
    int st = system(cmd);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.out", akt_dir);
    slurp(p, out, sizeof out);
    snprintf(p, sizeof p, "%s/.err", akt_dir);
    slurp(p, err, sizeof err);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int exists(const char *name)
{
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", akt_dir, name);
    return stat(p, &st) == 0;
}

/* ---- setting up -------------------------------------------------------------- */

static akidb *open_db(const char *name)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", akt_dir, name);
    akidb_options o;
    akidb_options_init(&o);
    o.sync_mode = AKIDB_SYNC_NONE;
    akidb *db;
    ASSERT_OK(akidb_open(dir, &o, &db));
    return db;
}

/* Collection "docs" of db NAME: three documents on the axes of 4-D space. */
static void make_docs(const char *name)
{
    akidb *db = open_db(name);
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 4, AKIDB_METRIC_L2);
    ASSERT_OK(akidb_collection_create(db, "docs", &cfg));
    static const float v[12] = { 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0 };
    const char *ext[3] = { "a", "b", "c" };
    const char *meta[3] = { "{\"n\":1}", "{\"n\":2}", NULL };
    ASSERT_OK(akidb_insert(db, "docs", 3, v, ext, meta, NULL));
    ASSERT_OK(akidb_close(db));
}

static int file_sink(void *ctx, const void *buf, size_t len)
{
    return fwrite(buf, 1, len, (FILE *)ctx) == len ? AKIDB_OK : AKIDB_IOERR;
}

/* A Parquet file of n rows: external_id "doc-I" (when with_ids), and
 * vectors of dim values, value 0 of row nan_row (if < n) NaN. */
static void write_vectors(const char *name, size_t n, uint32_t dim, int with_ids, size_t nan_row)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", akt_dir, name);
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    akidb__pq_column_def defs[2] = { { "vector", AKIDB__PQ_FLOAT_LIST, 0 },
                                     { "external_id", AKIDB__PQ_STRING, 1 } };
    akidb__pqw *w;
    ASSERT_OK(akidb__pqw_open(defs, with_ids ? 2 : 1, NULL, NULL, file_sink, f, &w));
    float *vec = malloc(n * dim * sizeof *vec);
    uint64_t *voff = malloc((n + 1) * sizeof *voff), *soff = malloc((n + 1) * sizeof *soff);
    char *bytes = malloc(n * 24 + 1);
    ASSERT(vec && voff && soff && bytes);
    uint64_t x = 42;
    soff[0] = 0;
    for (size_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < dim; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            vec[i * dim + k] = (float)(x >> 40) / 16777216.0f;
        }
        int l = snprintf(bytes + soff[i], 24, "doc-%zu", i);
        soff[i + 1] = soff[i] + (uint64_t)l;
    }
    if (nan_row < n)
        vec[nan_row * dim] = NAN;
    for (size_t i = 0; i <= n; i++)
        voff[i] = (uint64_t)i * dim;
    akidb__pq_values v[2];
    memset(v, 0, sizeof v);
    v[0].f32 = vec;
    v[0].offsets = voff;
    v[1].bytes = (const unsigned char *)bytes;
    v[1].offsets = soff;
    ASSERT_OK(akidb__pqw_write_row_group(w, n, v));
    uint64_t size;
    ASSERT_OK(akidb__pqw_finish(w, &size));
    akidb__pqw_free(w);
    ASSERT_EQ(fclose(f), 0);
    free(vec);
    free(voff);
    free(soff);
    free(bytes);
}

/* ---- item 12: help, version, usage ------------------------------------------------ */

static const char *const commands[] = {
    "import", "export", "collections", "info", "count", "search", "get", "drop", "snapshot",
    "tier", "inspect", "version", "help"
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

TEST(cli_help_on_every_command)
{
    ASSERT_EQ(akidb_run("help"), 0);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char line[64];
        snprintf(line, sizeof line, "\n  %-12s ", commands[i]);
        ASSERT_HAS(out, line);
    }
    ASSERT_HAS(out, "Exit status: 0 success; 1 the command failed");
    ASSERT_HAS(out, "2 bad usage");
    ASSERT_EQ(akidb_run("--help"), 0);
    ASSERT_HAS(out, "usage: akidb COMMAND");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: akidb %s", commands[i]);
        ASSERT_EQ(akidb_run("%s --help", commands[i]), 0);
        ASSERT_HAS(out, want);
        ASSERT_HAS(out, "Exit status: 0 success");
        ASSERT_EQ(akidb_run("help %s", commands[i]), 0);
        ASSERT_HAS(out, want);
        ASSERT_EQ(akidb_run("%s -h", commands[i]), 0);
        ASSERT_HAS(out, want);
    }
    /* --help wins over everything else on the line */
    ASSERT_EQ(akidb_run("import --db x --help"), 0);
    ASSERT_HAS(out, "--skip N");
    ASSERT(!exists("x"));
    ASSERT_EQ(akidb_run("version"), 0);
    ASSERT_HAS(out, "akidb " AKIDB_VERSION_STRING);
    ASSERT_EQ(akidb_run("--version"), 0);
    ASSERT_HAS(out, AKIDB_VERSION_STRING);
}

TEST(cli_usage_errors_exit_2)
{
    ASSERT_EQ(akidb_run("%s", ""), 2);
    ASSERT_EQ(akidb_run("bogus"), 2);
    ASSERT_HAS(err, "unknown command bogus");
    ASSERT_EQ(akidb_run("help bogus"), 2);
    ASSERT_EQ(akidb_run("import --bogus 1"), 2);
    ASSERT_HAS(err, "unknown option --bogus");
    ASSERT_HAS(err, "usage: akidb import");
    ASSERT_EQ(akidb_run("count --db x --db y --collection c"), 2);
    ASSERT_HAS(err, "--db is given twice");
    ASSERT_EQ(akidb_run("search --db x --collection c"), 2);
    ASSERT_HAS(err, "--vector is required");
    ASSERT_EQ(akidb_run("count --db x"), 2);
    ASSERT_EQ(akidb_run("import --db x --collection c"), 2);
    ASSERT_EQ(akidb_run("import --db x --collection c --parquet f --metric manhattan"), 2);
    ASSERT_EQ(akidb_run("import --db x --collection c --parquet f --skip -1"), 2);
    ASSERT_EQ(akidb_run("snapshot --db x --collection c"), 2);
    ASSERT_EQ(akidb_run("snapshot frobnicate --db x --collection c"), 2);
    ASSERT_EQ(akidb_run("snapshot delete --db x --collection c"), 2);
    ASSERT_HAS(err, "--id is required");
    ASSERT_EQ(akidb_run("get --db x --collection c"), 2);
    ASSERT_EQ(akidb_run("get --db x --collection c --id 1 --external-id a"), 2);
    ASSERT_EQ(akidb_run("tier --db x --collection c"), 2);
    ASSERT_EQ(akidb_run("tier warm --db x --collection c"), 2);
    ASSERT_EQ(akidb_run("tier set --db x --collection c"), 2);
    ASSERT_HAS(err, "--tier is required");
    ASSERT_EQ(akidb_run("tier set --db x --collection c --tier tepid"), 2);
    ASSERT_EQ(akidb_run("tier get --db x --collection c --tier hot"), 2);
    ASSERT_EQ(akidb_run("inspect"), 2);
    ASSERT_EQ(akidb_run("count --db=x --collection c extra"), 2);
    ASSERT_HAS(err, "unexpected argument extra");
    ASSERT(!exists("x"));
}

/* ---- item 11: commands that read never create ------------------------------------ */

TEST(cli_commands_refuse_a_directory_without_a_database)
{
    static const char *const cmds[] = {
        "export --db D --collection c --parquet out.parquet",
        "snapshot list --db D --collection c",
        "snapshot create --db D --collection c",
        "snapshot restore --db D --collection c",
        "snapshot delete --db D --collection c --id x",
        "info --db D --collection c",
        "count --db D --collection c",
        "search --db D --collection c --vector '[1,2]'",
        "get --db D --collection c --id 1",
        "collections --db D",
        "drop --db D --collection c",
        "tier get --db D --collection c",
        "tier set --db D --collection c --tier warm",
        "tier stats --db D",
    };
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/empty", akt_dir);
    ASSERT_EQ(mkdir(path, 0755), 0);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        for (int empty = 0; empty < 2; empty++) {
            char cmd[256];
            const char *d = strstr(cmds[i], " D");
            ASSERT(d != NULL);
            snprintf(cmd, sizeof cmd, "%.*s %s%s", (int)(d - cmds[i]), cmds[i],
                     empty ? "empty" : "missing", d + 2);
            ASSERT_EQ(akidb_run("%s", cmd), 1);
            ASSERT_HAS(err, "AKIDB_NOTFOUND");
            ASSERT_HAS(err, empty ? "is not an AkiDB database" : "no database there");
            ASSERT(!exists("missing"));
            ASSERT(!exists("empty/akidb.db"));
            ASSERT(!exists("out.parquet"));
        }
    }
}

/* An import that cannot succeed leaves no database behind; one into a
 * directory full of other things is refused before anything happens. */
TEST(cli_import_leaves_no_trace_when_it_fails)
{
    write_vectors("ok.parquet", 10, 4, 1, SIZE_MAX);
    write_vectors("nan.parquet", 2000, 4, 1, 1500);
    ASSERT_EQ(akidb_run("import --db new --collection 'bad name' --parquet ok.parquet"), 2);
    ASSERT_HAS(err, "collection name \"bad name\" is invalid");
    ASSERT(!exists("new"));
    ASSERT_EQ(akidb_run("import --db new --collection c --parquet nope.parquet"), 1);
    ASSERT_HAS(err, "AKIDB_NOTFOUND");
    ASSERT(!exists("new"));
    ASSERT_EQ(akidb_run("import --db new --collection c --parquet ok.parquet "
                        "--vector-column nope"), 1);
    ASSERT_HAS(err, "AKIDB_INVALID");
    ASSERT_HAS(err, "no column named \"nope\"");
    ASSERT_HAS(err, "removed the new database in new again");
    ASSERT(!exists("new"));
    ASSERT_EQ(akidb_run("import --db new --collection c --parquet nan.parquet"), 1);
    ASSERT_HAS(err, "AKIDB_INVALID");
    ASSERT_HAS(err, "file row 1500, column \"vector\": value 0 is NaN");
    ASSERT(!exists("new"));
    /* an empty directory stays, empty */
    ASSERT_EQ(shell("mkdir empty"), 0);
    ASSERT_EQ(akidb_run("import --db empty --collection c --parquet nan.parquet"), 1);
    ASSERT(exists("empty"));
    ASSERT(!exists("empty/akidb.db"));
    /* a directory of other files is not a place for a new database */
    ASSERT_EQ(shell("mkdir other && echo precious > other/notes.txt"), 0);
    ASSERT_EQ(akidb_run("import --db other --collection c --parquet ok.parquet"), 1);
    ASSERT_HAS(err, "refusing to create a database there");
    ASSERT(!exists("other/akidb.db"));
    ASSERT(exists("other/notes.txt"));
    /* and one that works */
    ASSERT_EQ(akidb_run("import --db empty --collection c --parquet ok.parquet"), 0);
    ASSERT(exists("empty/akidb.db"));
}

/* Read-only commands open the database read-only: a log that was never
 * checkpointed (the writer was killed) is left exactly as it is. */
TEST(cli_read_commands_write_nothing)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        akidb *db = open_db("db");
        akidb_collection_config cfg;
        akidb_collection_config_init(&cfg, 2, AKIDB_METRIC_L2);
        static const float v[4] = { 1, 0, 0, 1 };
        if (akidb_collection_create(db, "c", &cfg) || akidb_insert(db, "c", 2, v, NULL, NULL, NULL))
            _exit(1);
        _exit(0);   /* no close: the log keeps its records */
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Every file, its size and time, and the bytes of the logs and the
     * catalog; not SQLite's shared-memory index (akidb.db-shm), which a
     * reader of a WAL-mode catalog updates by design. */
#define SNAP "ls -lR --time-style=+%%s.%%N db | grep -v 'akidb.db-shm$' | md5sum > %s.txt && " \
             "cat db/wal/* db/akidb.db $(ls db/akidb.db-wal 2>/dev/null) | md5sum >> %s.txt"
    ASSERT_EQ(shell(SNAP, "before", "before"), 0);
    ASSERT_EQ(akidb_run("count --db db --collection c"), 0);
    ASSERT_STR_EQ(out, "2\n");
    ASSERT_EQ(akidb_run("info --db db --collection c"), 0);
    ASSERT_EQ(akidb_run("collections --db db"), 0);
    ASSERT_EQ(akidb_run("search --db db --collection c --vector '[1, 0]' -k 1"), 0);
    ASSERT_EQ(akidb_run("export --db db --collection c --parquet c.parquet"), 0);
    ASSERT_EQ(akidb_run("snapshot list --db db --collection c"), 0);
    ASSERT_EQ(akidb_run("tier get --db db --collection c"), 0);
    ASSERT_STR_EQ(out, "hot\n");
    ASSERT_EQ(akidb_run("tier stats --db db"), 0);
    ASSERT_HAS(out, "\nc ");
    ASSERT_EQ(shell(SNAP, "after", "after"), 0);
#undef SNAP
    ASSERT_EQ(shell("cmp before.txt after.txt"), 0);
}

/* ---- item 12: the commands ----------------------------------------------------------- */

TEST(cli_collections_info_count)
{
    make_docs("db");
    ASSERT_EQ(akidb_run("collections --db db"), 0);
    ASSERT_HAS(out, "collection");
    ASSERT_HAS(out, "\ndocs ");
    ASSERT_HAS(out, " 3 ");
    ASSERT_HAS(out, " l2");
    ASSERT_EQ(akidb_run("count --db db --collection docs"), 0);
    ASSERT_STR_EQ(out, "3\n");
    ASSERT_EQ(akidb_run("info --db db --collection docs"), 0);
    ASSERT_HAS(out, "dim              4\n");
    ASSERT_HAS(out, "metric           l2\n");
    ASSERT_HAS(out, "hnsw_m           16\n");
    ASSERT_HAS(out, "documents        3\n");
    ASSERT_HAS(out, "tier             hot");
    ASSERT_EQ(akidb_run("info --db db --collection nope"), 1);
    ASSERT_HAS(err, "akidb info: AKIDB_NOTFOUND: ");
    ASSERT_EQ(akidb_run("count --db db --collection 'bad name'"), 1);
    ASSERT_HAS(err, "AKIDB_INVALID");
}

TEST(cli_search_and_get)
{
    make_docs("db");
    ASSERT_EQ(akidb_run("search --db db --collection docs --vector '[0.9, 0.1, 0, 0]' -k 2"), 0);
    /* header, then doc 1 ("a") closest */
    char *first = strchr(out, '\n');
    ASSERT(first != NULL);
    ASSERT(strncmp(first + 1, "1 ", 2) == 0);
    ASSERT_HAS(first, " a ");
    ASSERT_HAS(out, "\n2 ");
    ASSERT_HASNT(out, "\n3 ");
    ASSERT_EQ(akidb_run("search --db db --collection docs --vector '[0,0,1,0]' -k 10 --exact"), 0);
    ASSERT_HAS(out, "\n3 ");
    ASSERT_HAS(err, "3 hits (the collection holds fewer than 10)");
    ASSERT_EQ(akidb_run("search --db db --collection docs --vector='[0,0,1,0]' -k 1 --ef 50"), 0);
    /* the vector must be a JSON array of the right length */
    ASSERT_EQ(akidb_run("search --db db --collection docs --vector '[1, 0, 0]'"), 1);
    ASSERT_HAS(err, "AKIDB_INVALID: the vector has 3 values; collection docs has dimension 4");
    static const char *const bad[] = { "1,0,0,0", "[1,0,0,0", "[1,0,0,0]x", "[1,,0,0]",
                                       "[NaN,0,0,0]", "[1e999,0,0,0]", "[]", "[0x1,0,0,0]",
                                       "[.5,0,0,0]", "['1',0,0,0]" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ(akidb_run("search --db db --collection docs --vector \"%s\"", bad[i]), 2);
        ASSERT_HAS(err, "--vector needs a JSON array");
    }
    ASSERT_EQ(akidb_run("search --db db --collection docs --vector '[1,0,0,0]' -k 0"), 2);
    ASSERT_EQ(akidb_run("search --db db --collection docs --vector '[1,0,0,0]' -k x"), 2);

    ASSERT_EQ(akidb_run("get --db db --collection docs --id 2"), 0);
    ASSERT_HAS(out, "id           2\n");
    ASSERT_HAS(out, "external_id  b\n");
    ASSERT_HAS(out, "metadata     {\"n\":2}\n");
    ASSERT_HAS(out, "vector       [0, 1, 0, 0]\n");
    ASSERT_HAS(out, "inserted_at  20");
    ASSERT_EQ(akidb_run("get --db db --collection docs --external-id c"), 0);
    ASSERT_HAS(out, "id           3\n");
    ASSERT_HAS(out, "metadata     (none)\n");
    ASSERT_EQ(akidb_run("get --db db --collection docs --id 99"), 1);
    ASSERT_HAS(err, "AKIDB_NOTFOUND");
    ASSERT_EQ(akidb_run("get --db db --collection docs --external-id zz"), 1);
    ASSERT_HAS(err, "AKIDB_NOTFOUND");
    ASSERT_EQ(akidb_run("get --db db --collection docs --id 0"), 2);

    /* text from the database cannot drive the terminal: U+009B (a C1
     * control some terminals take for ESC [) inside valid JSON */
    akidb *db = open_db("db");
    static const float v[4] = { 0, 0, 0, 1 };
    const char *ext[1] = { "d" };
    const char *meta[1] = { "{\"x\":\"\xc2\x9b" "31mred\"}" };
    ASSERT_OK(akidb_insert(db, "docs", 1, v, ext, meta, NULL));
    ASSERT_OK(akidb_close(db));
    ASSERT_EQ(akidb_run("get --db db --collection docs --external-id d"), 0);
    ASSERT_HAS(out, "metadata     {\"x\":\"\\xc2\\x9b31mred\"}\n");
    ASSERT_HASNT(out, "\x9b");
}

TEST(cli_drop)
{
    make_docs("db");
    ASSERT_EQ(akidb_run("drop --db db --collection docs"), 0);
    ASSERT_HAS(out, "dropped collection docs (3 documents)");
    ASSERT_EQ(akidb_run("count --db db --collection docs"), 1);
    ASSERT_HAS(err, "AKIDB_NOTFOUND");
    ASSERT_EQ(akidb_run("drop --db db --collection docs"), 1);
    ASSERT_HAS(err, "AKIDB_NOTFOUND");
}

/* --id on snapshot create is refused (ids are assigned), on list it
 * selects; restore without --id says which snapshot it restored, and
 * skips one that does not verify. */
TEST_TIMEOUT(cli_snapshot_ids, 120)
{
    make_docs("db");
    ASSERT_EQ(akidb_run("snapshot create --db db --collection docs --id mine"), 2);
    ASSERT_HAS(err, "--id cannot be chosen");
    ASSERT_EQ(akidb_run("snapshot list --db db --collection docs"), 0);
    ASSERT_HAS(err, "collection docs has no snapshots");
    ASSERT_EQ(akidb_run("snapshot restore --db db --collection docs"), 1);
    ASSERT_HAS(err, "AKIDB_NOTFOUND");
    char a[AKIDB_SNAPSHOT_ID_LEN], b[AKIDB_SNAPSHOT_ID_LEN];
    ASSERT_EQ(akidb_run("snapshot create --db db --collection docs"), 0);
    ASSERT_EQ(sscanf(out, "%47s", a), 1);
    ASSERT_EQ(akidb_run("snapshot create --db db --collection docs"), 0);
    ASSERT_EQ(sscanf(out, "%47s", b), 1);
    ASSERT(strcmp(a, b) != 0);
    ASSERT_EQ(akidb_run("snapshot list --db db --collection docs --id %s", a), 0);
    ASSERT_HAS(out, a);
    ASSERT_HASNT(out, b);
    ASSERT_EQ(akidb_run("snapshot list --db db --collection docs --id nope"), 1);
    ASSERT_HAS(err, "AKIDB_NOTFOUND: collection docs has no snapshot nope");
    char want[128];
    ASSERT_EQ(akidb_run("snapshot restore --db db --collection docs"), 0);
    snprintf(want, sizeof want, "restored docs from snapshot %s (3 rows, taken ", b);
    ASSERT_HAS(out, want);
    /* damage the newest: restore goes back to the one before, and says so */
    akidb *db = open_db("db");
    akidb_snapshot_info **info;
    size_t n;
    ASSERT_OK(akidb_snapshot_list(db, "docs", &info, &n));
    ASSERT_EQ(n, 2);
    ASSERT_STR_EQ(info[0]->id, b);
    char obj[PATH_MAX];
    snprintf(obj, sizeof obj, "%s/db/objects/%s", akt_dir, info[0]->key);
    akidb_free(info);
    ASSERT_OK(akidb_close(db));
    FILE *f = fopen(obj, "r+b");
    ASSERT(f != NULL);
    ASSERT_EQ(fseek(f, 100, SEEK_SET), 0);
    int ch = fgetc(f);
    ASSERT_EQ(fseek(f, 100, SEEK_SET), 0);
    fputc(ch ^ 0x55, f);
    ASSERT_EQ(fclose(f), 0);
    ASSERT_EQ(akidb_run("snapshot restore --db db --collection docs"), 0);
    snprintf(want, sizeof want, "snapshot %s does not verify", b);
    ASSERT_HAS(err, want);
    snprintf(want, sizeof want, "restored docs from snapshot %s", a);
    ASSERT_HAS(out, want);
    ASSERT_EQ(akidb_run("snapshot restore --db db --collection docs --id %s", b), 1);
    ASSERT_HAS(err, "AKIDB_CORRUPT");
    ASSERT_EQ(akidb_run("snapshot delete --db db --collection docs --id %s", b), 0);
    ASSERT_HAS(out, "deleted snapshot");
}

/* "imported 1 row", what was mapped, and how many documents were new. */
TEST(cli_import_output)
{
    write_vectors("one.parquet", 1, 4, 0, SIZE_MAX);
    ASSERT_EQ(akidb_run("import --db db --collection c --parquet one.parquet"), 0);
    ASSERT_HAS(out, "imported 1 row into c (new collection) in ");
    ASSERT_HAS(err, "column \"vector\" (LIST<FLOAT>");
    ASSERT_HAS(err, "-> vectors");
    ASSERT_HAS(err, "no external id column");
    ASSERT_HAS(err, "created collection c: dim 4, metric l2");
    ASSERT_EQ(akidb_run("import --db db --collection c --parquet one.parquet"), 0);
    ASSERT_HAS(err, "warning: collection c already holds 1 document and 1 row of the file has "
                    "no external id");
    write_vectors("three.parquet", 3, 4, 1, SIZE_MAX);
    ASSERT_EQ(akidb_run("import --db db --collection d --parquet three.parquet --metric cosine"), 0);
    ASSERT_HAS(out, "imported 3 rows into d (new collection)");
    ASSERT_HAS(err, "column \"external_id\" (STRING");
    ASSERT_EQ(akidb_run("import --db db --collection d --parquet three.parquet"), 0);
    ASSERT_HAS(out, "imported 3 rows into d in ");
    ASSERT_HAS(out, ": 0 new documents, 3 replaced documents with the same external id");
    ASSERT_EQ(akidb_run("import --db db --collection d --parquet three.parquet --metric dot"), 1);
    ASSERT_HAS(err, "AKIDB_INVALID");
    ASSERT_HAS(err, "metric dot conflicts with collection d, which uses cosine");
    ASSERT_EQ(akidb_run("import --db db --collection e --parquet three.parquet --skip 2"), 0);
    ASSERT_HAS(out, "imported 1 row into e");
    ASSERT_EQ(akidb_run("export --db db --collection d --parquet d.parquet"), 0);
    ASSERT_HAS(out, "exported 3 documents of d to d.parquet");
    ASSERT_EQ(akidb_run("inspect d.parquet"), 0);
    ASSERT_HAS(out, "metadata akidb.metric = cosine");
    ASSERT_EQ(akidb_run("import --db db --collection f --parquet d.parquet"), 0);
    ASSERT_HAS(err, "metric cosine");
    /* the storage kind of a new collection */
    ASSERT_EQ(akidb_run("import --db db --collection g --parquet three.parquet --storage int8 "
                        "--exact-vectors file --rerank 3"), 0);
    ASSERT_HAS(err, "collection g stores int8 (asked for), exact vectors file, re-rank 3 x k");
    ASSERT_EQ(akidb_run("info --db db --collection g"), 0);
    ASSERT_HAS(out, "int8, exact vectors in the checkpoint file, re-rank 3 x k");
    ASSERT_EQ(akidb_run("import --db db --collection g --parquet three.parquet --storage f16"), 1);
    ASSERT_HAS(err, "storage f16 conflicts with collection g, which stores int8");
    ASSERT_EQ(akidb_run("import --db db --collection h --parquet three.parquet --storage int4"), 2);
    ASSERT_HAS(err, "--storage must be f32, f16 or int8, not int4");
    ASSERT_EQ(akidb_run("import --db db --collection h --parquet three.parquet "
                        "--exact-vectors disk"), 2);
    ASSERT_EQ(akidb_run("import --db db --collection h --parquet three.parquet --rerank 0"), 2);
}

/* Progress reaches a log or a pipe too: periodic lines on stderr. */
TEST_TIMEOUT(cli_progress_when_not_on_a_terminal, 120)
{
    /* Large enough to outlast a few progress periods now that inserts do
     * not wait for the graph (issue 11): 8000 rows took under 0.05 s. */
    write_vectors("big.parquet", 40000, 32, 1, SIZE_MAX);
    ASSERT_EQ(shell("AKIDB_PROGRESS_SECONDS=0.05 '%s' import --db db --collection c "
                    "--parquet big.parquet", tool()), 0);
    ASSERT_HAS(out, "imported 40000 rows");
    ASSERT(strstr(err, " of 40000 rows (") || strstr(err, "akidb import: still working"));
    ASSERT_HASNT(err, "\r");   /* lines, not a redrawn bar */
    ASSERT_EQ(shell("AKIDB_PROGRESS_SECONDS=0.05 '%s' snapshot create --db db --collection c",
                    tool()), 0);
}

/* A write that fails half way (here: the file size limit) keeps the rows
 * before it and prints the command that resumes; running it completes
 * the import. */
TEST_TIMEOUT(cli_import_failure_prints_how_to_resume, 120)
{
    write_vectors("big.parquet", 4000, 64, 1, SIZE_MAX);
    /* ~300 bytes a row in the log: the limit (in KiB) falls in the
     * second or third batch of 1024 rows */
    int rc = shell("trap '' XFSZ; ulimit -f 700; '%s' import --db db --collection c "
                   "--parquet big.parquet", tool());
    ASSERT_EQ(rc, 1);
    ASSERT_HAS(err, "AKIDB_IOERR");
    ASSERT_HAS(err, "were imported and kept; resume at file row ");
    ASSERT_HAS(err, "to resume once the cause is fixed:");
    char *hint = strstr(err, "to resume once the cause is fixed:\n");
    ASSERT(hint != NULL);
    hint = strchr(hint, '\n') + 1;
    char *end = strchr(hint, '\n');
    ASSERT(end != NULL);
    *end = '\0';
    ASSERT_HAS(hint, "'import' '--db' 'db' '--collection' 'c' '--parquet' 'big.parquet' --skip ");
    long skip = atol(strstr(hint, "--skip ") + 7);
    ASSERT(skip >= 1024 && skip < 4000 && skip % 1024 == 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s", hint);
    ASSERT_EQ(shell("%s", cmd), 0);
    char want[64];
    snprintf(want, sizeof want, "imported %ld rows into c", 4000 - skip);
    ASSERT_HAS(out, want);
    ASSERT_EQ(akidb_run("count --db db --collection c"), 0);
    ASSERT_STR_EQ(out, "4000\n");
}
