/*
 * server.h - the akidb-server hub: the server state, the request context
 * that travels from the loop thread to the thread pool and back, the route
 * table's types, and the subsystems' entry points.
 *
 * Only the server-specific files include this (router.c, routes_*.c,
 * auth.c, ratelimit.c, metrics.c, main.c); the reusable ones (http.c,
 * json.c, log.c, config.c) do not, so they never call back into the hub.
 *
 * Threads, in one place:
 *   - The loop thread owns the HTTP layer, the key table (auth), the
 *     tenant table (rate limits, quotas) and the server metrics.  Nothing
 *     else touches them.
 *   - A request's handler runs in libuv's thread pool when it calls the
 *     library (route->fn); it reads only its rctx, the immutable config
 *     and the database handle.  A change to loop-owned state is made by
 *     setting rctx->apply, which runs back on the loop thread before the
 *     response is sent.
 *   - The library's thread-local error message is read in the same pool
 *     callback as the failing call (rc_lib()).
 *   - Runtime configuration (PUT /v1/admin/config) changes fields of
 *     srv->cfg on the loop thread.  Pool code never reads those fields:
 *     what a handler needs (limits, default quota) is copied into its rctx
 *     when the request arrives (rctx.lim, rctx.qdef).
 *   - The TLS context, JWT verifier, client-certificate map and the
 *     brute-force guard are loop-thread only; the audit log is thread safe.
 */
#ifndef AKIDB_SERVER_H
#define AKIDB_SERVER_H

#include <stdint.h>
#include <uv.h>

#include <akidb.h>

#include "audit.h"
#include "buf.h"
#include "config.h"
#include "http.h"
#include "json.h"
#include "tls.h"
#include "token.h"

/* Tenant ids: [a-z0-9]+(-[a-z0-9]+)*, 1..TENANT_MAX characters.  A
 * tenant's collection "docs" is the library collection "TENANT__docs": a
 * tenant id has no '_', so the first "__" always ends it, and collection
 * names may use any of [A-Za-z0-9_-] (the library's alphabet). */
#define TENANT_MAX 32
#define DEFAULT_TENANT "default"
#define MAX_PARAMS 3

enum { ROLE_NONE = 0, ROLE_READER = 1, ROLE_WRITER = 2, ROLE_ADMIN = 3 };

/* ---- tenants: rate limits and quotas (ratelimit.c) */

typedef struct quota {
    double qps;                 /* 0 = unlimited */
    double burst;
    uint64_t max_collections;   /* 0 = unlimited */
    uint64_t max_vectors;
} quota;

typedef struct tenant_state {
    char id[TENANT_MAX + 1];
    int has_override;
    quota override;
    double tokens;              /* token bucket, loop thread only */
    uint64_t last_ns;
    uint64_t rate_limited;      /* 429s, for /metrics */
    uv_mutex_t write_lock;      /* pool: serializes quota check + write */
    struct tenant_state *next;
} tenant_state;

typedef struct tenants tenants;

typedef struct rl_result {
    int limited;                /* no rate limit at all: limit == 0 */
    double limit, remaining;
    uint64_t reset_s, retry_after_s;
} rl_result;

int tenants_new(tenants **out, const quota *defaults);
/* Runtime configuration changed the defaults (loop thread). */
void tenants_set_defaults(tenants *t, const quota *defaults);
void tenants_free(tenants *t);
tenant_state *tenants_get(tenants *t, const char *id);    /* creates; NULL on OOM */
quota tenant_quota(const tenants *t, const tenant_state *tn);
const quota *tenants_defaults(const tenants *t);
/* Take one token; fills *r.  Returns 1 if allowed. */
int tenant_take(tenants *t, tenant_state *tn, uint64_t now_ns, rl_result *r);
void tenant_set_override(tenants *t, tenant_state *tn, const quota *q);
void tenant_clear_override(tenant_state *tn);
/* Load the overrides stored in the catalog (startup, loop not running). */
int tenants_load(tenants *t, akidb *db, char *err, size_t err_len);
void tenants_render_metrics(const tenants *t, sbuf *b);
int tenant_id_valid(const char *s);
/* Quota as stored: {"qps":..,"burst":..,"max_collections":..,"max_vectors":..} */
void quota_to_json(jw *w, const quota *q);

#define KV_NS_KEYS "akidb-server.keys"
#define KV_NS_QUOTAS "akidb-server.quotas"
#define KV_NS_CONFIG "akidb-server.config"

/* ---- API keys (auth.c) */

typedef struct api_key {
    char id[17];                /* 16 hex digits, not secret */
    unsigned char hash[32];     /* SHA-256 of the whole key */
    char tenant[TENANT_MAX + 1];
    int role;
    char name[129];
    int64_t created_at_us;
    int deleting;               /* a DELETE is in flight (loop thread) */
} api_key;

typedef struct auth_table {
    api_key *keys;
    size_t n, cap;
} auth_table;

const char *role_name(int role);
int role_parse(const char *s);
/* The key behind "Bearer <key>", compared in constant time; NULL if none. */
const api_key *auth_lookup(const auth_table *a, const char *token, size_t len);
int auth_load(auth_table *a, akidb *db, char *err, size_t err_len);
void auth_free(auth_table *a);
int auth_add(auth_table *a, const api_key *k);
void auth_remove(auth_table *a, const char *id);
api_key *auth_find_id(auth_table *a, const char *id);
size_t auth_count_admins(const auth_table *a, int skip_deleting);
/* Make a new key (OS CSPRNG): the secret text into key_out (>= 64 bytes),
 * its record (id, hash, created_at) into *rec.  0 or -1. */
int auth_generate(api_key *rec, char *key_out, size_t key_len);
/* Hash a key text into rec->hash and give it a fresh id. */
int auth_record_for(api_key *rec, const char *key, size_t len);
/* Write a record to the catalog (pool or startup).  Library rc. */
int auth_store(akidb *db, const api_key *rec);
void auth_key_json(jw *w, const api_key *k);
/* Startup: create the first admin key of a new database (env
 * AKIDB_BOOTSTRAP_ADMIN_KEY or a generated one, printed once).  *shown
 * receives a generated key to print (caller frees), NULL otherwise. */
int auth_bootstrap(auth_table *a, akidb *db, char **shown, char *err, size_t err_len);

/* ---- client certificates -> identities (auth.c) */

typedef struct cert_identity {
    char *subject;              /* RFC 2253, as tls_conn_peer_subject() gives it */
    char tenant[TENANT_MAX + 1];
    int role;
} cert_identity;

typedef struct cert_map {
    cert_identity *v;
    size_t n;
} cert_map;

/* Parse the tls_client_map setting (JSON object).  0 or -1 with err. */
int cert_map_load(cert_map *m, const char *json_text, char *err, size_t err_len);
const cert_identity *cert_map_find(const cert_map *m, const char *subject);
void cert_map_free(cert_map *m);

/* ---- brute-force protection (guard.c), loop thread only */

typedef struct auth_guard auth_guard;
auth_guard *guard_new(void);
void guard_free(auth_guard *g);
/* 0 if the address (of "ip:port") may try to authenticate; otherwise the
 * seconds until it may (limit failures per window_s; limit 0 = off). */
uint64_t guard_check(auth_guard *g, const char *peer, uint64_t now_ns, int64_t limit,
                     int64_t window_s);
/* Count a failed authentication; 1 if it locked the address out. */
int guard_fail(auth_guard *g, const char *peer, uint64_t now_ns, int64_t limit,
               int64_t window_s);

/* ---- metrics (metrics.c) */

typedef struct metrics metrics;
metrics *metrics_new(size_t n_routes);
void metrics_free(metrics *m);
/* route: index in the route table, or ROUTE_UNMATCHED / ROUTE_PROTOCOL. */
void metrics_request(metrics *m, int route, int status, double seconds);
void metrics_connection(metrics *m, int opened);
void metrics_render(const metrics *m, sbuf *b, unsigned in_flight, unsigned connections);
/* Security counters (loop thread). */
enum { AUTHF_MISSING, AUTHF_MALFORMED, AUTHF_API_KEY, AUTHF_JWT, AUTHF_CERT, AUTHF_N };
void metrics_auth_failure(metrics *m, int kind);
void metrics_auth_throttled(metrics *m, int lockout);
void metrics_tls_handshake(metrics *m, int ok);
void metrics_tls_reload(metrics *m, int ok);
/* tls_not_after: the certificate's notAfter (0 = no TLS). */
void metrics_render_security(const metrics *m, sbuf *b, int64_t tls_not_after);

/* ---- the server */

typedef struct rctx rctx;

typedef struct server {
    uv_loop_t *loop;
    http_server *http;
    akidb *db;
    akidb_store *store;
    int store_required;         /* remote store: readiness depends on it */
    srv_config cfg;
    auth_table auth;
    tenants *tenants;
    metrics *metrics;
    int draining;
    uint64_t shutdown_ns;       /* when the first signal came */
    int64_t start_time_s;
    uv_mutex_t admin_lock;
    rctx *inflight;             /* requests in the pool, for cancellation */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t shutdown_timer;
    int signals;
    /* Security (see the thread notes above). */
    tls_ctx *tls;
    token_verifier *jwt;
    cert_map certs;
    auth_guard *guard;
    audit_log *audit;
    srv_config boot;            /* settings before runtime overrides */
    json_t *rt_over;            /* runtime overrides as stored ({} = none) */
    int config_busy;            /* a PUT /v1/admin/config is in flight */
} server;

/* ---- routes (router.c holds the table) */

typedef void (*route_fn)(rctx *c);

typedef struct route {
    int method;                 /* enum http_method */
    const char *tmpl;           /* "/v1/collections/{name}" */
    int perm;                   /* ROLE_NONE = no auth */
    route_fn pre;               /* loop thread, before the pool; may answer */
    route_fn fn;                /* thread pool; NULL = pre answers alone */
    const char *summary;
} route_def;

#define ROUTE_UNMATCHED (-1)
#define ROUTE_PROTOCOL (-2)

struct rctx {
    uv_work_t work;
    server *srv;
    http_req *req;
    const route_def *route;
    int route_idx;
    char *param[MAX_PARAMS];    /* %-decoded path parameters */
    /* Who is asking (set before pre/fn run). */
    char tenant[TENANT_MAX + 1];
    int role;
    char key_id[17];            /* API keys only */
    const char *actor_type;     /* "api_key" | "jwt" | "mtls" | "none" */
    char actor[160];            /* key id, JWT sub, certificate subject */
    int authed;
    tenant_state *tn;
    quota q;                    /* the tenant's quota when the request came in */
    quota qdef;                 /* the default quota then */
    struct {
        int64_t max_batch, max_k, max_json_depth;
    } lim;                      /* runtime limits when the request came in */
    rl_result rl;
    /* Audit: what the line says beyond who and what route (handlers may
     * set them); audited = already written (by the pool, durably). */
    char audit_target[192];
    char audit_detail[512];
    int audit_action;           /* AUDIT_* of the route, or 0 */
    int audited;
    /* The answer. */
    int status;
    sbuf body;
    const char *ctype;          /* NULL = application/json */
    sbuf headers;
    /* Loop-thread follow-up (see above), and its argument. */
    void (*apply)(rctx *c);
    void *arg;
    void (*arg_free)(void *arg);
    rctx *prev, *next;
};

/* Handler helpers (any thread: they touch only the rctx). */
void rc_error(rctx *c, int status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Answer with the library's error for rc; reads akidb_errmsg(NULL), so
 * call it on the thread that made the failing call. */
void rc_lib(rctx *c, int rc);
/* Start a JSON answer: status, and a writer into c->body. */
void rc_json(rctx *c, int status, jw *w);
/* Parse the request body as a JSON object; NULL after answering 400. */
json_t *rc_body(rctx *c);
/* The library name of this tenant's collection `name`: 0, or -1 after
 * answering 400 (bad name). */
int rc_coll(rctx *c, const char *name, char out[AKIDB_MAX_NAME_LEN + 1]);
/* A query parameter, %-decoded: 1 found, 0 absent, -1 after answering 400. */
int rc_query(rctx *c, const char *key, char *out, size_t out_len);
/* The tenant's collections (library names): one allocation as
 * akidb_collection_list() returns it, filtered in place; akidb_free() it. */
int tenant_collections(rctx *c, char ***names, size_t *n);
/* Copy a library message `in` to out (n bytes), without "TENANT__" where
 * it starts a name, so a tenant sees its own collection names. */
void strip_tenant(const char *tenant, const char *in, char *out, size_t n);
/* HTTP status of a library result code. */
int lib_status(int rc);

/* Route handlers (routes_*.c). */
void h_live(rctx *c);
void h_ready(rctx *c);
void h_metrics(rctx *c);
void h_openapi(rctx *c);
void h_coll_create(rctx *c);
void h_coll_list(rctx *c);
void h_coll_get(rctx *c);
void h_coll_drop(rctx *c);
void h_vec_insert(rctx *c);
void h_vec_upsert(rctx *c);
void h_vec_lookup(rctx *c);
void h_vec_get(rctx *c);
void h_vec_delete(rctx *c);
void h_search(rctx *c);
void h_search_batch(rctx *c);
void h_snap_create(rctx *c);
void h_snap_list(rctx *c);
void h_snap_restore(rctx *c);
void h_snap_delete(rctx *c);
void h_tier_get(rctx *c);
void h_tier_set(rctx *c);
void h_tier_pin(rctx *c);
void h_tier_unpin(rctx *c);
void h_key_create(rctx *c);
void h_key_list(rctx *c);
void h_key_delete_pre(rctx *c);
void h_key_delete(rctx *c);
void h_quota_get(rctx *c);
void h_quota_put(rctx *c);
void h_quota_delete(rctx *c);
void h_config_get(rctx *c);
void h_config_put_pre(rctx *c);
void h_config_put(rctx *c);

/* routes_config.c: runtime configuration persisted in the catalog.
 * Startup: apply the stored overrides to s->cfg (keeps s->boot). */
int runtime_config_load(server *s, char *err, size_t err_len);
/* Apply the side effects of s->cfg's runtime fields (log level, the
 * database's tiering policy, ...). */
void runtime_config_apply(server *s);
/* The tier_* settings as a library policy (every field set). */
void runtime_tier_policy(const srv_config *cfg, akidb_tier_policy *p);

/* SIGHUP (main.c): reload certificates and keys; audited. */
void server_reload(server *s);

/* router.c */
void router_on_request(void *ctx, http_req *req);
void router_on_protocol_error(void *ctx, int status, const char *code, const char *peer);
void router_on_connection(void *ctx, int opened);
void router_on_tls_handshake(void *ctx, int ok, const char *what, const char *peer);
size_t router_n_routes(void);
/* The AUDIT_* action of a route, or 0. */
int router_audit_action(const route_def *r);
const route_def *router_route(size_t i);
/* Cancel queued pool work (shutdown); running work finishes. */
void router_cancel_queued(server *s);

/* The OpenAPI document as JSON, generated from docs/openapi.yaml. */
extern const char akidb_openapi_json[];
extern const size_t akidb_openapi_json_len;

#endif /* AKIDB_SERVER_H */
