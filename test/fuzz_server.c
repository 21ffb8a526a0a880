/*
 * fuzz_server.c - libFuzzer over akidb-server's request path, in process.
 *
 * Each input is a byte stream from one client: it is fed to a socketless
 * connection of the real HTTP layer (http_conn_virtual), so it goes
 * through the parser and its limits, the router (matching, %-decoding,
 * auth, rate limits), the JSON checks and the handlers, which call a real
 * database through the real thread pool.  The input is fed in up to three
 * pieces (cut where its first two bytes say) to exercise requests split
 * across reads, then the loop runs until every answer is out, then the
 * peer "closes".
 *
 * What counts as a failure, besides sanitizer reports, leaks and hangs:
 * an answer that is not a well-formed HTTP/1.1 status line, and any 500
 * (bad input must never cause one).
 *
 * The database lives in a temporary directory with sync none; a collection
 * "f" (dim 4) of tenant "default" and an admin and a reader key exist, and
 * "f" is re-created when an input dropped it, so inputs keep finding it.
 * Keys to use in inputs (also in test/fuzz_server.dict):
 *   Authorization: Bearer fuzz-admin-key-0123456789   (admin, tenant default)
 *   Authorization: Bearer fuzz-reader-key-0123456789  (reader, tenant t2)
 */
#include "server.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static server S;
static char g_dir[256];

typedef struct sink_state {
    size_t n_bytes;
    char head[16];
    size_t head_len;
    int at_line_start;
} sink_state;

/* Every write the server makes begins a response (the HTTP layer writes a
 * whole response, or a 100 Continue, in one piece). */
static void sink(void *ctx, const char *p, size_t n)
{
    sink_state *st = ctx;
    st->n_bytes += n;
    if (n < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0) {
        fprintf(stderr, "fuzz_server: malformed response start: %.40s\n", p);
        abort();
    }
    int status = atoi(p + 9);
    if (status < 100 || status > 599 || status == 500) {
        fprintf(stderr, "fuzz_server: status %d:\n%.*s\n", status, (int)(n > 2000 ? 2000 : n), p);
        abort();
    }
}

static void setup_fixture(void)
{
    akidb_collection_config cfg;
    akidb_collection_config_init(&cfg, 4, AKIDB_METRIC_L2);
    int rc = akidb_collection_create(S.db, "default__f", &cfg);
    if (rc == AKIDB_OK) {
        float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        const char *ext[2] = {"a", "b"};
        const char *meta[2] = {"{\"x\":1}", NULL};
        akidb_insert(S.db, "default__f", 2, v, ext, meta, NULL);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[1024];
    /* `make fuzz-server` gives a fresh directory in the build tree;
     * otherwise a temporary one. */
    const char *dir = getenv("AKIDB_FUZZ_SERVER_DIR");
    if (dir && *dir) {
        snprintf(g_dir, sizeof g_dir, "%s", dir);
    } else {
        snprintf(g_dir, sizeof g_dir, "/tmp/akidb-fuzz-server-XXXXXX");
        if (!mkdtemp(g_dir))
            abort();
    }
    char *args[] = {"fuzz", "--data-dir", g_dir, "--sync", "none", "--max-body-bytes", "65536",
                    "--max-batch", "16", "--max-k", "64", "--log-requests=false",
                    "--log-level", "error", "--rate-qps", "0", "--max-header-bytes", "4096"};
    if (config_load(&S.cfg, (int)(sizeof args / sizeof args[0]), args, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_server: %s\n", err);
        abort();
    }
    log_setup(LOG_ERROR, 2);
    setenv("UV_THREADPOOL_SIZE", "2", 1);
    akidb_options o;
    akidb_options_init(&o);
    o.sync_mode = AKIDB_SYNC_NONE;
    if (akidb_open(g_dir, &o, &S.db) != AKIDB_OK) {
        fprintf(stderr, "fuzz_server: open: %s\n", akidb_errmsg(NULL));
        abort();
    }
    quota q = {0, 0, 0, 0};
    char *shown = NULL;
    setenv("AKIDB_BOOTSTRAP_ADMIN_KEY", "fuzz-admin-key-0123456789", 1);
    /* The runtime configuration routes and the brute-force guard are on
     * the request path too (no audit file: audit_write(NULL) is a no-op). */
    S.boot = S.cfg;
    S.rt_over = json_object();
    S.guard = guard_new();
    if (!S.rt_over || !S.guard)
        abort();
    if (uv_mutex_init(&S.admin_lock) || tenants_new(&S.tenants, &q) ||
        !(S.metrics = metrics_new(router_n_routes())) ||
        auth_bootstrap(&S.auth, S.db, &shown, err, sizeof err)) {
        fprintf(stderr, "fuzz_server: setup: %s\n", err);
        abort();
    }
    api_key k;
    memset(&k, 0, sizeof k);
    const char *reader = "fuzz-reader-key-0123456789";
    if (auth_record_for(&k, reader, strlen(reader)) != 0)
        abort();
    snprintf(k.tenant, sizeof k.tenant, "t2");
    k.role = ROLE_READER;
    if (auth_store(S.db, &k) != AKIDB_OK || auth_add(&S.auth, &k) != 0)
        abort();
    setup_fixture();
    S.loop = malloc(sizeof *S.loop);
    if (!S.loop || uv_loop_init(S.loop) != 0)
        abort();
    http_limits lim = {
        .max_header_bytes = 4096, .max_url_bytes = 1024, .max_body_bytes = 65536,
        .max_headers = 64, .max_connections = 16, .idle_timeout_ms = 1000,
        .request_timeout_ms = 1000, .write_timeout_ms = 1000,
    };
    http_callbacks cb = {router_on_request, router_on_protocol_error, router_on_connection, &S,
                         router_on_tls_handshake};
    if (http_server_init(&S.http, S.loop, &lim, &cb) != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sink_state st;
    memset(&st, 0, sizeof st);
    setup_fixture();
    http_conn *c = http_conn_virtual(S.http, sink, &st);
    if (!c)
        return 0;
    size_t cut1 = size, cut2 = size;
    if (size > 2) {
        cut1 = 2 + (size - 2) * data[0] / 256;
        cut2 = cut1 + (size - cut1) * data[1] / 256;
        data += 2;
        size -= 2;
        cut1 -= 2;
        cut2 -= 2;
    }
    http_conn_feed(c, (const char *)data, cut1);
    uv_run(S.loop, UV_RUN_DEFAULT);
    http_conn_feed(c, (const char *)data + cut1, cut2 - cut1);
    uv_run(S.loop, UV_RUN_DEFAULT);
    http_conn_feed(c, (const char *)data + cut2, size - cut2);
    uv_run(S.loop, UV_RUN_DEFAULT);
    /* The peer closes; answers still being computed are dropped when done. */
    http_conn_feed_eof(c);
    uv_run(S.loop, UV_RUN_DEFAULT);
    return 0;
}
