/*
 * main.c - akidb-server: settings, startup, signals, graceful shutdown.
 *
 * Startup: read the settings (config.c), open the object store and the
 * database, load API keys and tenant quotas from the catalog, create the
 * first admin key of a new database (printed once, or taken from
 * AKIDB_BOOTSTRAP_ADMIN_KEY), listen, run the loop.  Everything before the
 * loop runs on the main thread, which is then the loop thread.
 *
 * Security setup, before listening: the runtime configuration stored in
 * the catalog is applied over the settings; the audit log is opened; the
 * TLS context (certificate, key with its mode checked, client CA), the
 * JWT keys and the client-certificate map are loaded, and any problem is
 * a startup failure with the reason, never a server that silently runs
 * without what it was asked for.  Data files are created 0600 and
 * directories 0700 (akidb_options.file_mode).
 *
 * SIGHUP reloads the certificate and key and the JWT keys: new connections
 * and tokens use the new ones; open connections are not dropped.  A
 * reload that fails keeps the old ones and says why (log, audit, metrics).
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
    /* The catalog, logs and local objects hold tenants' data and the API
     * key hashes: owner only (directories get 0700). */
    o.file_mode = 0600;
    /* The tiering policy at startup; stored runtime overrides are applied
     * after the open (main: runtime_config_load, runtime_config_apply). */
    akidb_tier_policy tp;
    runtime_tier_policy(cfg, &tp);
    o.tier_hot_ttl_s = tp.hot_ttl_s;
    o.tier_warm_ttl_s = tp.warm_ttl_s;
    o.tier_promote_per_hour = tp.promote_per_hour;
    o.tier_disabled = tp.disabled;
    o.snapshot_retention = tp.snapshot_retention;
    o.memory_budget = tp.memory_budget;
    o.store_quota = tp.store_quota;
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
        uv_close((uv_handle_t *)&s->sig_hup, on_closed);
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

/* ------------------------------------------------------------------------
 * Security setup and SIGHUP */

static const char SECURITY_HEADERS[] =
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cross-Origin-Resource-Policy: same-origin\r\n"
    "Cache-Control: no-store\r\n";

static void audit_system(server *s, int action, int ok, const char *target, const char *detail,
                         const char *reason, int durable)
{
    audit_event e = {.action = action, .ok = ok, .actor_type = "system", .actor = "akidb-server",
                     .target = target, .detail = detail, .reason = reason};
    audit_write(s->audit, &e, durable);
}

static int open_audit(server *s, char *err, size_t n)
{
    char path[CFG_STR_MAX + 32];
    if (s->cfg.audit_log[0])
        snprintf(path, sizeof path, "%s", s->cfg.audit_log);
    else
        snprintf(path, sizeof path, "%s/audit.log", s->cfg.data_dir);
    return audit_open(&s->audit, path, (uint64_t)s->cfg.audit_max_bytes,
                      (unsigned)s->cfg.audit_keep, err, n);
}

static int setup_security(server *s, char *err, size_t n)
{
    const srv_config *cfg = &s->cfg;
    if (!(s->guard = guard_new())) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    if (cert_map_load(&s->certs, cfg->tls_client_map, err, n) != 0)
        return -1;
    if (s->certs.n && !cfg->tls_client_ca[0]) {
        snprintf(err, n, "tls_client_map needs tls_client_ca (client certificates are only "
                 "trusted when verified)");
        return -1;
    }
    if (cfg->jwt_alg[0]) {
        token_settings ts = {cfg->jwt_alg, cfg->jwt_key_file, getenv("AKIDB_JWT_SECRET"),
                             cfg->jwt_leeway_s, cfg->jwt_audience, cfg->jwt_issuer};
        if (strcmp(cfg->jwt_alg, "HS256") != 0)
            ts.secret = NULL;
        if (token_verifier_new(&s->jwt, &ts, err, n) != 0)
            return -1;
    }
    if (cfg->tls_cert[0]) {
        tls_settings t = {cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, cfg->tls_client_crl,
                          !strcmp(cfg->tls_client_auth, "require"),
                          !strcmp(cfg->tls_min_version, "1.2")};
        if (tls_ctx_new(&s->tls, &t, err, n) != 0)
            return -1;
    }
    return 0;
}

void server_reload(server *s)
{
    char err[1024];
    int any = 0;
    if (s->tls) {
        any = 1;
        int ok = tls_ctx_reload(s->tls, err, sizeof err) == 0;
        metrics_tls_reload(s->metrics, ok);
        char detail[700];
        snprintf(detail, sizeof detail, "subject=%s not_after=%lld", tls_ctx_subject(s->tls),
                 (long long)tls_ctx_not_after(s->tls));
        logline l;
        log_begin(&l, ok ? LOG_INFO : LOG_ERROR,
                  ok ? "TLS certificate reloaded" : "TLS reload failed; keeping the old one");
        log_kv_str(&l, "cert", s->cfg.tls_cert);
        log_kv_str(&l, ok ? "detail" : "error", ok ? detail : err);
        log_end(&l);
        audit_system(s, AUDIT_CONFIG_RELOAD, ok, "tls_cert", ok ? detail : NULL, ok ? NULL : err,
                     ok);
    }
    if (s->jwt) {
        any = 1;
        int ok = token_verifier_reload(s->jwt, err, sizeof err) == 0;
        char detail[64];
        snprintf(detail, sizeof detail, "keys=%d", token_verifier_keys(s->jwt));
        logline l;
        log_begin(&l, ok ? LOG_INFO : LOG_ERROR,
                  ok ? "JWT keys reloaded" : "JWT key reload failed; keeping the old ones");
        log_kv_str(&l, ok ? "detail" : "error", ok ? detail : err);
        log_end(&l);
        audit_system(s, AUDIT_CONFIG_RELOAD, ok, "jwt_key_file", ok ? detail : NULL,
                     ok ? NULL : err, ok);
    }
    if (!any)
        log_msg(LOG_INFO, "SIGHUP: no TLS certificate or JWT key to reload", NULL, NULL);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    server *s = h->data;
    if (!s->draining)
        server_reload(s);
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
    char target[32];
    snprintf(target, sizeof target, "key=%s", k.id);
    audit_system(s, AUDIT_KEY_CREATE, 1, target, "tenant=default role=admin (--create-admin-key)",
                 NULL, 1);
    printf("new admin key (id %s, tenant %s); it is shown only now:\n%s\n", k.id, k.tenant, key);
    OPENSSL_cleanse(key, sizeof key);
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
    char *shown = NULL;     /* before any goto out */

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
    /* Everything this process creates (database, audit log) is its
     * owner's only, whatever the library's own file_mode does: defence in
     * depth for a server that holds several tenants' data and key hashes. */
    umask(077);
    /* libuv reads this once, at the first uv_queue_work. */
    char threads[32];
    snprintf(threads, sizeof threads, "%lld", (long long)s->cfg.threads);
    setenv("UV_THREADPOOL_SIZE", threads, 1);

    if (open_db(s, err, sizeof err) != 0) {
        fprintf(stderr, "akidb-server: %s\n", err);
        close_db(s, &exit_code);
        return 1;
    }
    if (runtime_config_load(s, err, sizeof err) != 0 || open_audit(s, err, sizeof err) != 0 ||
        setup_security(s, err, sizeof err) != 0) {
        fprintf(stderr, "akidb-server: %s\n", err);
        exit_code = 1;
        goto out;
    }
    log_set_level(log_level_parse(s->cfg.log_level));
    {
        /* The stored tier_* overrides: the library keeps a database
         * policy change for this handle only. */
        akidb_tier_policy tp;
        runtime_tier_policy(&s->cfg, &tp);
        if (akidb_tier_policy_apply(s->db, NULL, &tp) != AKIDB_OK) {
            fprintf(stderr, "akidb-server: the tiering policy: %s\n", akidb_errmsg(NULL));
            exit_code = 1;
            goto out;
        }
    }
    if (s->cfg.create_admin_key) {
        exit_code = create_admin_key(s);
        goto out;
    }

    quota defaults = {s->cfg.rate_qps, s->cfg.rate_burst, (uint64_t)s->cfg.max_collections,
                      (uint64_t)s->cfg.max_vectors};
    if (uv_mutex_init(&s->admin_lock) != 0 || tenants_new(&s->tenants, &defaults) != 0 ||
        !(s->metrics = metrics_new(router_n_routes()))) {
        fprintf(stderr, "akidb-server: out of memory\n");
        exit_code = 1;
        goto out;
    }
    size_t keys_before = 0;
    if (auth_load(&s->auth, s->db, err, sizeof err) != 0 ||
        tenants_load(s->tenants, s->db, err, sizeof err) != 0 ||
        ((keys_before = s->auth.n), 0) ||
        (!s->cfg.no_auth && auth_bootstrap(&s->auth, s->db, &shown, err, sizeof err) != 0)) {
        fprintf(stderr, "akidb-server: %s\n", err);
        exit_code = 1;
        goto out;
    }
    if (keys_before == 0 && s->auth.n == 1) {
        /* The first admin key was made just now: a key creation like any
         * other. */
        char target[32];
        snprintf(target, sizeof target, "key=%s", s->auth.keys[0].id);
        audit_system(s, AUDIT_KEY_CREATE, 1, target, "tenant=default role=admin (first start)",
                     NULL, 1);
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
    http_callbacks cb = {router_on_request, router_on_protocol_error, router_on_connection, s,
                         router_on_tls_handshake};
    int rc = http_server_init(&s->http, s->loop, &lim, &cb);
    if (rc == 0) {
        char hsts[96] = "";
        if (s->tls && s->cfg.hsts_max_age_s > 0)
            snprintf(hsts, sizeof hsts, "Strict-Transport-Security: max-age=%lld\r\n",
                     (long long)s->cfg.hsts_max_age_s);
        http_server_set_tls(s->http, s->tls, (uint64_t)s->cfg.tls_handshake_timeout_ms);
        if (http_server_set_headers(s->http, SECURITY_HEADERS, hsts) != 0)
            rc = UV_ENOMEM;
    }
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
    uv_signal_init(s->loop, &s->sig_hup);
    s->sig_term.data = s->sig_int.data = s->sig_hup.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_hup, on_sighup, SIGHUP);
    s->start_time_s = (int64_t)time(NULL);

    int port = http_server_port(s->http);
    const char *h = s->cfg.host;
    int v6 = strchr(h, ':') != NULL;
    char url[300];
    snprintf(url, sizeof url, "%s://%s%.255s%s:%d", s->tls ? "https" : "http", v6 ? "[" : "", h,
             v6 ? "]" : "", port);
    printf("akidb-server %s listening on %s (data %s, store %s%s%s)\n", akidb_version(), url,
           s->cfg.data_dir, s->cfg.store, s->cfg.no_auth ? ", NO AUTH" : "",
           s->tls ? (s->cfg.tls_client_ca[0] ? ", TLS with client certificates" : ", TLS") : "");
    if (!s->tls && !config_host_is_loopback(s->cfg.host))
        log_msg(LOG_WARN, "serving plain HTTP on a non-loopback address: keys and tokens cross "
                "the network in clear (set --tls-cert and --tls-key)", "host", s->cfg.host);
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
    log_kv_str(&l, "tls", s->tls ? s->cfg.tls_min_version : "off");
    log_kv_str(&l, "jwt", s->jwt ? s->cfg.jwt_alg : "off");
    log_kv_int(&l, "client_certificates_mapped", (int64_t)s->certs.n);
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
    tls_ctx_free(s->tls);
    token_verifier_free(s->jwt);
    cert_map_free(&s->certs);
    guard_free(s->guard);
    audit_close(s->audit);
    json_decref(s->rt_over);
    auth_free(&s->auth);
    tenants_free(s->tenants);
    metrics_free(s->metrics);
    if (exit_code == 0)
        log_msg(LOG_INFO, "stopped", NULL, NULL);
    return exit_code;
}
