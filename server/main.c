/*
 * main.c - akidb-server: settings, startup, signals, graceful shutdown.
 *
 * Startup: read the settings (config.c), open the object store and the
 * database, load API keys and tenant quotas from the catalog, create the
 * first admin key of a new database (printed once, or taken from
 * AKIDB_BOOTSTRAP_ADMIN_KEY), listen, run the loop.  Everything before the
 * loop runs on the main thread, which is then the loop thread.
 *
 * Shutdown (SIGTERM or SIGINT): stop accepting, close idle connections,
 * answer the requests already received (their connections close after the
 * answer), and wait for them up to shutdown_timeout_ms.  Past that bound,
 * requests still queued for the pool are cancelled (503) and connections
 * are closed; library calls already running cannot be interrupted and are
 * waited for (an acknowledged write is never cut off).  Then the database
 * is closed cleanly (checkpoint) and the process exits 0.  A second signal
 * skips the wait.
 *
 * Exit codes: 0 clean shutdown (or an action such as --help), 1 startup
 * failure (bad settings, database cannot be opened, port taken), 2 the
 * database failed to close cleanly.
 */
#include "server.h"

#include <errno.h>
#include <http_parser.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

static void lib_log(void *ctx, akidb_log_level level, const char *msg)
{
    (void)ctx;
    int lv = level == AKIDB_LOG_ERROR ? LOG_ERROR : level == AKIDB_LOG_WARN ? LOG_WARN
           : level == AKIDB_LOG_INFO  ? LOG_INFO  : LOG_DEBUG;
    log_msg(lv, "library", "detail", msg);
}

static int open_store(server *s, char *err, size_t n)
{
    const srv_config *cfg = &s->cfg;
    int rc;
    if (!strcmp(cfg->store, "s3")) {
        const char *e1 = NULL, *e2 = NULL;
        char *ak = config_secret("AKIDB_S3_ACCESS_KEY", cfg->s3_access_key_file, &e1);
        char *sk = config_secret("AKIDB_S3_SECRET_KEY", cfg->s3_secret_key_file, &e2);
        if (e1 || e2 || !ak || !sk) {
            snprintf(err, n, "S3 credentials: %s (set AKIDB_S3_ACCESS_KEY/AKIDB_S3_SECRET_KEY "
                     "or --s3-access-key-file/--s3-secret-key-file)",
                     e1 ? e1 : e2 ? e2 : "missing");
            free(ak);
            free(sk);
            return -1;
        }
        akidb_s3_config sc;
        akidb_s3_config_init(&sc);
        sc.endpoint = cfg->s3_endpoint;
        sc.bucket = cfg->s3_bucket;
        sc.region = cfg->s3_region;
        sc.path_style = cfg->s3_path_style;
        sc.access_key = ak;
        sc.secret_key = sk;
        rc = akidb_store_s3_open(&sc, &s->store);
        memset(sk, 0, strlen(sk));
        free(ak);
        free(sk);
        s->store_required = 1;
    } else {
        char dir[CFG_STR_MAX + 16];
        if (cfg->store_dir[0])
            snprintf(dir, sizeof dir, "%s", cfg->store_dir);
        else
            snprintf(dir, sizeof dir, "%s/objects", cfg->data_dir);
        rc = akidb_store_local_open(dir, &s->store);
    }
    if (rc != AKIDB_OK) {
        snprintf(err, n, "object store: %s", akidb_errmsg(NULL));
        return -1;
    }
    return 0;
}

static int open_db(server *s, char *err, size_t n)
{
    const srv_config *cfg = &s->cfg;
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, n, "cannot create the data directory %s: %s", cfg->data_dir,
                 strerror(errno));
        return -1;
    }
    if (open_store(s, err, n))
        return -1;
    akidb_options o;
    akidb_options_init(&o);
    o.store = s->store;
    o.sync_mode = !strcmp(cfg->sync, "none")       ? AKIDB_SYNC_NONE
                : !strcmp(cfg->sync, "interval") ? AKIDB_SYNC_INTERVAL
                                                  : AKIDB_SYNC_ALWAYS;
    o.log_fn = lib_log;
    o.checkpoint_bytes = (uint64_t)cfg->checkpoint_bytes;
    int rc = akidb_open(cfg->data_dir, &o, &s->db);
    if (rc != AKIDB_OK) {
        snprintf(err, n, "cannot open the database in %s: %s (%s)%s", cfg->data_dir,
                 akidb_errmsg(NULL), akidb_errname(rc),
                 rc == AKIDB_BUSY ? "; is another akidb-server running on it?" : "");
        return -1;
    }
    return 0;
}

static void close_db(server *s, int *exit_code)
{
    if (s->db) {
        int rc = akidb_close(s->db);
        if (rc != AKIDB_OK) {
            log_msg(LOG_ERROR, "the database did not close cleanly", "error",
                    akidb_errmsg(NULL));
            *exit_code = 2;
        }
        s->db = NULL;
    }
    akidb_store_close(s->store);
    s->store = NULL;
}

/* ------------------------------------------------------------------------
 * Shutdown */

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void shutdown_tick(uv_timer_t *t)
{
    server *s = t->data;
    uint64_t elapsed_ms = (uv_hrtime() - s->shutdown_ns) / 1000000;
    if (elapsed_ms >= (uint64_t)s->cfg.shutdown_timeout_ms || s->signals > 1) {
        /* Past the bound: drop what has not started, close the rest. */
        router_cancel_queued(s);
        http_server_close_all(s->http);
    }
    if (http_server_requests_in_flight(s->http) == 0 && http_server_connections(s->http) == 0 &&
        !s->inflight) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, on_closed);
        uv_close((uv_handle_t *)&s->sig_term, on_closed);
        uv_close((uv_handle_t *)&s->sig_int, on_closed);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    server *s = h->data;
    s->signals++;
    logline l;
    log_begin(&l, LOG_INFO, s->signals == 1 ? "shutting down" : "shutting down now");
    log_kv_str(&l, "signal", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    log_kv_int(&l, "requests_in_flight", http_server_requests_in_flight(s->http));
    log_kv_int(&l, "connections", http_server_connections(s->http));
    log_end(&l);
    if (s->signals > 1)
        return;                 /* the tick sees it */
    s->draining = 1;
    s->shutdown_ns = uv_hrtime();  /* from now on: the shutdown clock */
    http_server_drain(s->http);
    uv_timer_init(s->loop, &s->shutdown_timer);
    s->shutdown_timer.data = s;
    uv_timer_start(&s->shutdown_timer, shutdown_tick, 0, 10);
}

/* ------------------------------------------------------------------------ */

static int create_admin_key(server *s)
{
    api_key k;
    char key[128];
    memset(&k, 0, sizeof k);
    if (auth_generate(&k, key, sizeof key) != 0) {
        fprintf(stderr, "akidb-server: no random bytes from the OS\n");
        return 1;
    }
    snprintf(k.tenant, sizeof k.tenant, "%s", DEFAULT_TENANT);
    snprintf(k.name, sizeof k.name, "created by --create-admin-key");
    k.role = ROLE_ADMIN;
    int rc = auth_store(s->db, &k);
    if (rc != AKIDB_OK) {
        fprintf(stderr, "akidb-server: storing the key: %s\n", akidb_errmsg(NULL));
        return 1;
    }
    printf("new admin key (id %s, tenant %s); it is shown only now:\n%s\n", k.id, k.tenant, key);
    return 0;
}

static void print_routes(void)
{
    for (size_t i = 0; i < router_n_routes(); i++) {
        const route_def *r = router_route(i);
        printf("%s %s\n", http_method_str((enum http_method)r->method), r->tmpl);
    }
}

int main(int argc, char **argv)
{
    static server S;
    server *s = &S;
    char err[2048];
    int exit_code = 0;

    if (config_load(&s->cfg, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "akidb-server: %s\n", err);
        return 1;
    }
    if (s->cfg.help) {
        config_usage(argv[0]);
        return 0;
    }
    if (s->cfg.version) {
        printf("akidb-server %s\n", akidb_version());
        return 0;
    }
    if (s->cfg.list_routes) {
        print_routes();
        return 0;
    }
    log_setup(log_level_parse(s->cfg.log_level), 2);
    signal(SIGPIPE, SIG_IGN);
    /* libuv reads this once, at the first uv_queue_work. */
    char threads[32];
    snprintf(threads, sizeof threads, "%lld", (long long)s->cfg.threads);
    setenv("UV_THREADPOOL_SIZE", threads, 1);

    if (open_db(s, err, sizeof err) != 0) {
        fprintf(stderr, "akidb-server: %s\n", err);
        close_db(s, &exit_code);
        return 1;
    }
    if (s->cfg.create_admin_key) {
        exit_code = create_admin_key(s);
        close_db(s, &exit_code);
        return exit_code;
    }

    quota defaults = {s->cfg.rate_qps, s->cfg.rate_burst, (uint64_t)s->cfg.max_collections,
                      (uint64_t)s->cfg.max_vectors};
    char *shown = NULL;
    if (uv_mutex_init(&s->admin_lock) != 0 || tenants_new(&s->tenants, &defaults) != 0 ||
        !(s->metrics = metrics_new(router_n_routes()))) {
        fprintf(stderr, "akidb-server: out of memory\n");
        exit_code = 1;
        goto out;
    }
    if (auth_load(&s->auth, s->db, err, sizeof err) != 0 ||
        tenants_load(s->tenants, s->db, err, sizeof err) != 0 ||
        (!s->cfg.no_auth && auth_bootstrap(&s->auth, s->db, &shown, err, sizeof err) != 0)) {
        fprintf(stderr, "akidb-server: %s\n", err);
        exit_code = 1;
        goto out;
    }

    s->loop = malloc(sizeof *s->loop);
    if (!s->loop || uv_loop_init(s->loop) != 0) {
        fprintf(stderr, "akidb-server: cannot create the event loop\n");
        free(s->loop);
        s->loop = NULL;
        exit_code = 1;
        goto out;
    }
    http_limits lim = {
        .max_header_bytes = (size_t)s->cfg.max_header_bytes,
        .max_url_bytes = (size_t)s->cfg.max_url_bytes,
        .max_body_bytes = (size_t)s->cfg.max_body_bytes,
        .max_headers = (unsigned)s->cfg.max_headers,
        .max_connections = (unsigned)s->cfg.max_connections,
        .idle_timeout_ms = (uint64_t)s->cfg.idle_timeout_ms,
        .request_timeout_ms = (uint64_t)s->cfg.request_timeout_ms,
        .write_timeout_ms = (uint64_t)s->cfg.write_timeout_ms,
    };
    http_callbacks cb = {router_on_request, router_on_protocol_error, router_on_connection, s};
    int rc = http_server_init(&s->http, s->loop, &lim, &cb);
    if (rc == 0)
        rc = http_server_listen(s->http, s->cfg.host, (int)s->cfg.port);
    if (rc != 0) {
        fprintf(stderr, "akidb-server: cannot listen on %s:%lld: %s\n", s->cfg.host,
                (long long)s->cfg.port, uv_strerror(rc));
        exit_code = 1;
        if (s->http)
            http_server_close_all(s->http);
        uv_run(s->loop, UV_RUN_DEFAULT);
        goto out;
    }
    uv_signal_init(s->loop, &s->sig_term);
    uv_signal_init(s->loop, &s->sig_int);
    s->sig_term.data = s->sig_int.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    s->start_time_s = (int64_t)time(NULL);

    int port = http_server_port(s->http);
    const char *h = s->cfg.host;
    int v6 = strchr(h, ':') != NULL;
    char url[300];
    snprintf(url, sizeof url, "http://%s%.255s%s:%d", v6 ? "[" : "", h, v6 ? "]" : "", port);
    printf("akidb-server %s listening on %s (data %s, store %s%s)\n", akidb_version(), url,
           s->cfg.data_dir, s->cfg.store, s->cfg.no_auth ? ", NO AUTH" : "");
    if (shown) {
        printf("\nThe first admin key of this database (shown only now; keep it):\n\n"
               "  export AKIDB_KEY=%s\n\n"
               "Try:\n  curl -H \"Authorization: Bearer $AKIDB_KEY\" %s/v1/collections\n\n",
               shown, url);
        OPENSSL_cleanse(shown, strlen(shown));
    } else if (!s->cfg.no_auth) {
        printf("Try (AKIDB_KEY = an API key of this database; lost it? stop the server and "
               "run akidb-server --create-admin-key):\n"
               "  curl -H \"Authorization: Bearer $AKIDB_KEY\" %s/v1/collections\n", url);
    } else {
        printf("Try:\n  curl %s/v1/collections\n", url);
    }
    fflush(stdout);
    logline l;
    log_begin(&l, LOG_INFO, "listening");
    log_kv_str(&l, "url", url);
    log_kv_str(&l, "data_dir", s->cfg.data_dir);
    log_kv_int(&l, "threads", s->cfg.threads);
    log_kv_int(&l, "keys", (int64_t)s->auth.n);
    log_end(&l);

    uv_run(s->loop, UV_RUN_DEFAULT);
    log_msg(LOG_INFO, "closing the database", NULL, NULL);

out:
    free(shown);
    if (s->loop) {
        uv_run(s->loop, UV_RUN_DEFAULT);   /* finish close callbacks */
        if (uv_loop_close(s->loop) != 0)
            log_msg(LOG_WARN, "event loop closed with handles open", NULL, NULL);
        free(s->loop);
    }
    close_db(s, &exit_code);
    http_server_free(s->http);
    auth_free(&s->auth);
    tenants_free(s->tenants);
    metrics_free(s->metrics);
    if (exit_code == 0)
        log_msg(LOG_INFO, "stopped", NULL, NULL);
    return exit_code;
}
