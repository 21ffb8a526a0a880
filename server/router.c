/*
 * router.c - the route table and the path of every request: match, auth,
 * rate limit, then the handler on the loop thread or in the thread pool,
 * then the answer, the metrics and the request log.
 *
 * The route table is the single list of what the server serves: the
 * dispatcher, `--list-routes`, the OpenAPI test and the metrics labels all
 * read it.  A route is a method, a template whose `{x}` segments become
 * %-decoded parameters, the least role that may call it (ROLE_NONE = no
 * auth), and up to two functions: `pre` on the loop thread (checks against
 * loop-owned state, cheap answers) and `fn` in the thread pool (anything
 * that calls the library).  Adding a route is one line here plus its
 * handler.
 *
 * Order of checks, and why: an unknown path is 404 and a known path with
 * another method 405 (with Allow) before auth, since neither reveals
 * anything; then 429 if the client's address has failed to authenticate
 * too often (guard.c), 401 (no or bad credential), 403 (role too low), 429
 * (tenant over its rate); only then does the handler see the request.
 * Another tenant's collection is never a 403: names are scoped per tenant
 * (rc_coll), so it simply does not exist for the caller (404).
 *
 * Credentials, in order: an Authorization header decides when there is
 * one (an API key, or a JWT when jwt_alg is set: told apart by shape, and
 * a JWT-shaped credential that fails as a JWT is still tried as an API
 * key); without one, a verified client certificate whose subject is in
 * tls_client_map (mTLS) identifies the caller.  Every identity, whatever
 * its kind, is a tenant and a role, with the same permissions.
 *
 * Audit (audit.h): every 401/403/lockout, and every call of a route that
 * names an audit action, whatever its result.  A successful change is
 * written and synced in the pool, after the handler and before the
 * answer; everything else is written when the answer goes out.
 */
#include "server.h"

#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"

static const route_def ROUTES[] = {
    {HTTP_GET, "/health/live", ROLE_NONE, h_live, NULL, "liveness probe"},
    {HTTP_GET, "/health/ready", ROLE_NONE, NULL, h_ready, "readiness probe"},
    {HTTP_GET, "/metrics", ROLE_NONE, NULL, h_metrics, "Prometheus metrics"},
    {HTTP_GET, "/v1/openapi.json", ROLE_NONE, h_openapi, NULL, "this API as OpenAPI 3.1"},
    {HTTP_POST, "/v1/collections", ROLE_WRITER, NULL, h_coll_create, "create a collection"},
    {HTTP_GET, "/v1/collections", ROLE_READER, NULL, h_coll_list, "list collections"},
    {HTTP_GET, "/v1/collections/{name}", ROLE_READER, NULL, h_coll_get, "collection info"},
    {HTTP_DELETE, "/v1/collections/{name}", ROLE_WRITER, NULL, h_coll_drop, "drop a collection"},
    {HTTP_POST, "/v1/collections/{name}/vectors", ROLE_WRITER, NULL, h_vec_insert, "insert"},
    {HTTP_PUT, "/v1/collections/{name}/vectors", ROLE_WRITER, NULL, h_vec_upsert, "upsert"},
    {HTTP_GET, "/v1/collections/{name}/vectors", ROLE_READER, NULL, h_vec_lookup,
     "document by external id"},
    {HTTP_GET, "/v1/collections/{name}/vectors/{id}", ROLE_READER, NULL, h_vec_get,
     "document by id"},
    {HTTP_DELETE, "/v1/collections/{name}/vectors/{id}", ROLE_WRITER, NULL, h_vec_delete,
     "delete a document"},
    {HTTP_POST, "/v1/collections/{name}/search", ROLE_READER, NULL, h_search, "search"},
    {HTTP_POST, "/v1/collections/{name}/search/batch", ROLE_READER, NULL, h_search_batch,
     "many searches"},
    {HTTP_POST, "/v1/collections/{name}/snapshots", ROLE_WRITER, NULL, h_snap_create,
     "create a snapshot"},
    {HTTP_GET, "/v1/collections/{name}/snapshots", ROLE_READER, NULL, h_snap_list,
     "list snapshots"},
    {HTTP_POST, "/v1/collections/{name}/snapshots/{id}/restore", ROLE_WRITER, NULL,
     h_snap_restore, "restore a snapshot"},
    {HTTP_DELETE, "/v1/collections/{name}/snapshots/{id}", ROLE_WRITER, NULL, h_snap_delete,
     "delete a snapshot"},
    {HTTP_GET, "/v1/collections/{name}/tier", ROLE_READER, NULL, h_tier_get, "tier info"},
    {HTTP_POST, "/v1/collections/{name}/tier", ROLE_WRITER, NULL, h_tier_set,
     "move a collection to a tier"},
    {HTTP_PUT, "/v1/collections/{name}/pin", ROLE_WRITER, NULL, h_tier_pin, "pin a collection"},
    {HTTP_DELETE, "/v1/collections/{name}/pin", ROLE_WRITER, NULL, h_tier_unpin,
     "unpin a collection"},
    {HTTP_POST, "/v1/admin/keys", ROLE_ADMIN, NULL, h_key_create, "create an API key"},
    {HTTP_GET, "/v1/admin/keys", ROLE_ADMIN, h_key_list, NULL, "list API keys"},
    {HTTP_DELETE, "/v1/admin/keys/{id}", ROLE_ADMIN, h_key_delete_pre, h_key_delete,
     "revoke an API key"},
    {HTTP_GET, "/v1/admin/tenants/{tenant}/quota", ROLE_ADMIN, h_quota_get, NULL,
     "a tenant's quota"},
    {HTTP_PUT, "/v1/admin/tenants/{tenant}/quota", ROLE_ADMIN, NULL, h_quota_put,
     "set a tenant's quota"},
    {HTTP_DELETE, "/v1/admin/tenants/{tenant}/quota", ROLE_ADMIN, NULL, h_quota_delete,
     "reset a tenant's quota to the defaults"},
    {HTTP_GET, "/v1/admin/config", ROLE_ADMIN, h_config_get, NULL, "runtime configuration"},
    {HTTP_PUT, "/v1/admin/config", ROLE_ADMIN, h_config_put_pre, h_config_put,
     "change the runtime configuration"},
};
#define N_ROUTES (sizeof ROUTES / sizeof ROUTES[0])

/* The routes whose every call is an audit line (audit.h), by method and
 * template. */
static const struct {
    int method;
    const char *tmpl;
    int action;
} AUDITED[] = {
    {HTTP_POST, "/v1/collections", AUDIT_COLLECTION_CREATE},
    {HTTP_DELETE, "/v1/collections/{name}", AUDIT_COLLECTION_DROP},
    {HTTP_POST, "/v1/collections/{name}/snapshots", AUDIT_SNAPSHOT_CREATE},
    {HTTP_POST, "/v1/collections/{name}/snapshots/{id}/restore", AUDIT_SNAPSHOT_RESTORE},
    {HTTP_DELETE, "/v1/collections/{name}/snapshots/{id}", AUDIT_SNAPSHOT_DELETE},
    {HTTP_POST, "/v1/collections/{name}/tier", AUDIT_TIER_CHANGE},
    {HTTP_PUT, "/v1/collections/{name}/pin", AUDIT_TIER_PIN},
    {HTTP_DELETE, "/v1/collections/{name}/pin", AUDIT_TIER_PIN},
    {HTTP_POST, "/v1/admin/keys", AUDIT_KEY_CREATE},
    {HTTP_DELETE, "/v1/admin/keys/{id}", AUDIT_KEY_REVOKE},
    {HTTP_PUT, "/v1/admin/tenants/{tenant}/quota", AUDIT_QUOTA_SET},
    {HTTP_DELETE, "/v1/admin/tenants/{tenant}/quota", AUDIT_QUOTA_RESET},
    {HTTP_PUT, "/v1/admin/config", AUDIT_CONFIG_CHANGE},
};

int router_audit_action(const route_def *r)
{
    for (size_t i = 0; i < sizeof AUDITED / sizeof AUDITED[0]; i++)
        if (AUDITED[i].method == r->method && strcmp(AUDITED[i].tmpl, r->tmpl) == 0)
            return AUDITED[i].action;
    return 0;
}

size_t router_n_routes(void)
{
    return N_ROUTES;
}

const route_def *router_route(size_t i)
{
    return i < N_ROUTES ? &ROUTES[i] : NULL;
}

/* ------------------------------------------------------------------------
 * Helpers for handlers */

int lib_status(int rc)
{
    /* The one table from library result codes to HTTP statuses. */
    static const struct {
        int rc, status;
    } map[] = {
        {AKIDB_OK, 200},        {AKIDB_ERROR, 500},       {AKIDB_NOMEM, 503},
        {AKIDB_MISUSE, 500},    {AKIDB_INVALID, 400},     {AKIDB_NOTFOUND, 404},
        {AKIDB_EXISTS, 409},    {AKIDB_IOERR, 500},       {AKIDB_CORRUPT, 500},
        {AKIDB_CONFLICT, 409},  {AKIDB_BUSY, 503},        {AKIDB_QUOTA, 507},
        {AKIDB_UNAVAILABLE, 503}, {AKIDB_READONLY, 409},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].rc == rc)
            return map[i].status;
    return 500;
}

void rc_error(rctx *c, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->status = status;
    c->ctype = NULL;
    sbuf_reset(&c->body);
    jw_error_body(&c->body, code, msg);
}

void strip_tenant(const char *tenant, const char *in, char *out, size_t n)
{
    char pre[TENANT_MAX + 3];
    snprintf(pre, sizeof pre, "%s__", tenant);
    size_t pl = strlen(pre), o = 0;
    for (size_t i = 0; in[i] && o + 1 < n;) {
        int boundary = i == 0 || !(in[i - 1] == '_' || in[i - 1] == '-' ||
                                   (in[i - 1] >= 'a' && in[i - 1] <= 'z') ||
                                   (in[i - 1] >= 'A' && in[i - 1] <= 'Z') ||
                                   (in[i - 1] >= '0' && in[i - 1] <= '9'));
        if (tenant[0] && boundary && strncmp(in + i, pre, pl) == 0) {
            i += pl;
            continue;
        }
        out[o++] = in[i++];
    }
    out[o] = '\0';
}

void rc_lib(rctx *c, int rc)
{
    char msg[1024];
    strip_tenant(c->tenant, akidb_errmsg(NULL), msg, sizeof msg);
    rc_error(c, lib_status(rc), akidb_errname(rc), "%s", msg);
}

void rc_json(rctx *c, int status, jw *w)
{
    c->status = status;
    c->ctype = NULL;
    sbuf_reset(&c->body);
    jw_init(w, &c->body);
}

json_t *rc_body(rctx *c)
{
    char err[512];
    json_t *j = jx_parse(c->req->body, c->req->body_len, (int)c->lim.max_json_depth, err,
                         sizeof err);
    if (!j)
        rc_error(c, 400, "INVALID_JSON", "%s", err);
    return j;
}

static int name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

int rc_coll(rctx *c, const char *name, char out[AKIDB_MAX_NAME_LEN + 1])
{
    size_t tl = strlen(c->tenant), max = AKIDB_MAX_NAME_LEN - tl - 2, n = strlen(name);
    int ok = n >= 1 && n <= max;
    for (size_t i = 0; ok && i < n; i++)
        ok = name_char(name[i]);
    if (!ok) {
        rc_error(c, 400, "AKIDB_INVALID",
                 "collection names are 1..%zu characters of [A-Za-z0-9_-] for this tenant", max);
        return -1;
    }
    snprintf(out, AKIDB_MAX_NAME_LEN + 1, "%s__%s", c->tenant, name);
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* %-decode p[0..n) into out (NUL-terminated).  plus: '+' is a space (query
 * strings).  -1 on a bad escape, a NUL, invalid UTF-8 or no room. */
static int pct_decode(const char *p, size_t n, int plus, char *out, size_t out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int a = hexval(p[i + 1]), b = hexval(p[i + 2]);
            if (a < 0 || b < 0)
                return -1;
            ch = (char)(a * 16 + b);
            i += 2;
            if (ch == '\0')
                return -1;
        } else if (plus && ch == '+') {
            ch = ' ';
        }
        if (o + 1 >= out_len)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return utf8_valid(out, o) ? 0 : -1;
}

int rc_query(rctx *c, const char *key, char *out, size_t out_len)
{
    const char *q = c->req->query;
    size_t kl = strlen(key);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > kl && strncmp(q, key, kl) == 0 && q[kl] == '=') {
            if (pct_decode(q + kl + 1, len - kl - 1, 1, out, out_len) != 0) {
                rc_error(c, 400, "BAD_REQUEST",
                         "query parameter '%s' is malformed or too long", key);
                return -1;
            }
            return 1;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Matching */

#define MAX_SEGS 8

/* Split "/a/b/c" into segments (pointers into a copy).  -1 if too many. */
static int split_path(char *path, char **seg)
{
    int n = 0;
    if (path[0] != '/')
        return -1;
    char *p = path + 1;
    if (!*p)
        return 0;
    for (;;) {
        if (n == MAX_SEGS)
            return -1;
        seg[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return n;
}

/* 1: the template matches these segments. */
static int tmpl_match(const char *tmpl, char **seg, int n)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", tmpl);
    char *ts[MAX_SEGS];
    int tn = split_path(buf, ts);
    if (tn != n)
        return 0;
    for (int i = 0; i < n; i++) {
        if (ts[i][0] == '{')
            continue;
        if (strcmp(ts[i], seg[i]) != 0)
            return 0;
    }
    return 1;
}

/* Find the route; fills c->param.  Returns the index, ROUTE_UNMATCHED
 * after answering 404/405/400. */
static int match(rctx *c)
{
    http_req *r = c->req;
    char *path = strdup(r->path);
    if (!path) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        return ROUTE_UNMATCHED;
    }
    char *seg[MAX_SEGS];
    int n = split_path(path, seg);
    int found = ROUTE_UNMATCHED, path_known = 0;
    char allow[128] = "";
    for (size_t i = 0; n >= 0 && i < N_ROUTES; i++) {
        if (!tmpl_match(ROUTES[i].tmpl, seg, n))
            continue;
        path_known = 1;
        if (ROUTES[i].method == r->method) {
            found = (int)i;
            break;
        }
        const char *m = http_method_str((enum http_method)ROUTES[i].method);
        if (!strstr(allow, m) && strlen(allow) + strlen(m) + 3 < sizeof allow)
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                     allow[0] ? ", " : "", m);
    }
    if (found >= 0) {
        /* Decode the parameters (segments are literal elsewhere). */
        char buf[128];
        snprintf(buf, sizeof buf, "%s", ROUTES[found].tmpl);
        char *ts[MAX_SEGS];
        split_path(buf, ts);
        int np = 0;
        for (int i = 0; i < n; i++) {
            if (ts[i][0] != '{' || np == MAX_PARAMS)
                continue;
            size_t len = strlen(seg[i]);
            char *d = malloc(len + 1);
            if (!d || pct_decode(seg[i], len, 0, d, len + 1) != 0 || !d[0] || strchr(d, '/')) {
                free(d);
                rc_error(c, 400, "BAD_REQUEST", "malformed path segment");
                found = ROUTE_UNMATCHED;
                break;
            }
            c->param[np++] = d;
        }
    } else if (path_known) {
        sbuf_printf(&c->headers, "Allow: %s\r\n", allow);
        rc_error(c, 405, "METHOD_NOT_ALLOWED", "%s is not allowed here; allowed: %s",
                 r->method_name, allow);
    } else {
        rc_error(c, 404, "NOT_FOUND", "no such route");
    }
    free(path);
    return found;
}

/* ------------------------------------------------------------------------
 * Auth and rate limit */

/* An audit line about who asked for what (any thread). */
static void audit_request(rctx *c, int action, int ok, const char *reason, int durable)
{
    http_req *r = c->req;
    audit_event e = {
        .action = action,
        .ok = ok,
        .status = c->status,
        .request_id = r->request_id,
        .tenant = c->tenant,
        .actor_type = c->actor_type,
        .actor = c->actor,
        .source = r->peer,
        .target = c->audit_target[0] ? c->audit_target : r->path,
        .detail = c->audit_detail,
        .reason = reason,
    };
    audit_write(c->srv->audit, &e, durable);
}

/* 401, counted, audited, and held against the address when the client
 * presented a credential (kind != AUTHF_MISSING). */
static int auth_fail(rctx *c, int kind, const char *www, const char *msg)
{
    server *s = c->srv;
    sbuf_printf(&c->headers, "WWW-Authenticate: %s\r\n", www);
    rc_error(c, 401, "UNAUTHORIZED", "%s", msg);
    metrics_auth_failure(s->metrics, kind);
    audit_request(c, AUDIT_AUTH_FAILURE, 0, msg, 0);
    if (kind != AUTHF_MISSING &&
        guard_fail(s->guard, c->req->peer, uv_hrtime(), s->cfg.auth_fail_limit,
                   s->cfg.auth_fail_window_s)) {
        metrics_auth_throttled(s->metrics, 1);
        logline l;
        log_begin(&l, LOG_WARN, "address locked out after repeated authentication failures");
        log_kv_str(&l, "peer", c->req->peer);
        log_kv_int(&l, "limit", s->cfg.auth_fail_limit);
        log_kv_int(&l, "window_s", s->cfg.auth_fail_window_s);
        log_end(&l);
        char detail[96];
        snprintf(detail, sizeof detail, "limit=%lld window_s=%lld",
                 (long long)s->cfg.auth_fail_limit, (long long)s->cfg.auth_fail_window_s);
        audit_event e = {.action = AUDIT_AUTH_THROTTLED, .ok = 0, .status = 429,
                         .request_id = c->req->request_id, .source = c->req->peer,
                         .detail = detail, .reason = "too many failed authentications"};
        audit_write(s->audit, &e, 0);
    }
    return -1;
}

static int set_identity(rctx *c, const char *tenant, int role, const char *type,
                        const char *actor)
{
    snprintf(c->tenant, sizeof c->tenant, "%.*s", TENANT_MAX, tenant);
    c->role = role;
    c->actor_type = type;
    snprintf(c->actor, sizeof c->actor, "%s", actor);
    c->authed = 1;
    return 0;
}

static int authenticate(rctx *c)
{
    server *s = c->srv;
    if (s->cfg.no_auth) {
        snprintf(c->key_id, sizeof c->key_id, "no-auth");
        return set_identity(c, DEFAULT_TENANT, ROLE_ADMIN, "none", "no-auth");
    }
    uint64_t wait = guard_check(s->guard, c->req->peer, uv_hrtime(), s->cfg.auth_fail_limit,
                                s->cfg.auth_fail_window_s);
    if (wait) {
        metrics_auth_throttled(s->metrics, 0);
        sbuf_printf(&c->headers, "Retry-After: %llu\r\n", (unsigned long long)wait);
        rc_error(c, 429, "TOO_MANY_AUTH_FAILURES",
                 "too many failed authentications from this address; retry in %llu s",
                 (unsigned long long)wait);
        return -1;
    }
    const char *h = c->req->authorization;
    if (!h) {
        const char *subj = c->req->client_subject;
        if (subj) {
            const cert_identity *ci = cert_map_find(&s->certs, subj);
            if (ci)
                return set_identity(c, ci->tenant, ci->role, "mtls", subj);
            snprintf(c->actor, sizeof c->actor, "%s", subj);
            c->actor_type = "mtls";
            return auth_fail(c, AUTHF_CERT, "Bearer",
                             "the client certificate's subject is not mapped to a tenant "
                             "(tls_client_map)");
        }
        return auth_fail(c, AUTHF_MISSING, "Bearer",
                         "missing 'Authorization: Bearer <key or token>' header");
    }
    const char *cred;
    size_t len;
    if (token_bearer(h, &cred, &len) != 0)
        return auth_fail(c, AUTHF_MALFORMED, "Bearer",
                         "the Authorization header must be 'Bearer <key or token>'");
    const char *jwt_reason = NULL;
    if (s->jwt && token_is_jwt(cred, len)) {
        token_identity id;
        if (token_verify(s->jwt, cred, len, (int64_t)time(NULL), &id, &jwt_reason) == 0) {
            char actor[160];
            snprintf(actor, sizeof actor, "%s", id.subject);
            c->actor_type = "jwt";
            snprintf(c->actor, sizeof c->actor, "%s", actor);
            int role = role_parse(id.role);
            if (!tenant_id_valid(id.tenant))
                return auth_fail(c, AUTHF_JWT, "Bearer error=\"invalid_token\"",
                                 "the token's tenant claim is not a valid tenant id");
            if (role < 0)
                return auth_fail(c, AUTHF_JWT, "Bearer error=\"invalid_token\"",
                                 "the token's role claim must be admin, writer or reader");
            return set_identity(c, id.tenant, role, "jwt", actor);
        }
    }
    const api_key *k = auth_lookup(&s->auth, cred, len);
    if (!k) {
        if (jwt_reason)
            return auth_fail(c, AUTHF_JWT, "Bearer error=\"invalid_token\"", jwt_reason);
        return auth_fail(c, AUTHF_API_KEY, "Bearer error=\"invalid_token\"",
                         "the API key is not valid (unknown or revoked)");
    }
    snprintf(c->key_id, sizeof c->key_id, "%s", k->id);
    return set_identity(c, k->tenant, k->role, "api_key", k->id);
}

static void rate_headers(rctx *c)
{
    if (!c->rl.limited)
        return;
    sbuf_printf(&c->headers, "X-RateLimit-Limit: %.0f\r\nX-RateLimit-Remaining: %.0f\r\n"
                "X-RateLimit-Reset: %llu\r\n", c->rl.limit, c->rl.remaining,
                (unsigned long long)c->rl.reset_s);
}

/* ------------------------------------------------------------------------
 * The request cycle */

static void finish(rctx *c)
{
    server *s = c->srv;
    if (c->apply)
        c->apply(c);
    if (c->arg_free)
        c->arg_free(c->arg);
    if (!c->status)
        rc_error(c, 500, "INTERNAL", "the handler gave no answer");
    rate_headers(c);
    if (c->status == 503 || c->status == 429) {
        if (!c->headers.data || !strstr(c->headers.data, "Retry-After"))
            sbuf_printf(&c->headers, "Retry-After: %llu\r\n",
                        (unsigned long long)(c->rl.retry_after_s ? c->rl.retry_after_s : 1));
    }
    http_req *r = c->req;
    if (c->authed && c->audit_action && !c->audited) {
        c->audited = 1;
        audit_request(c, c->audit_action, c->status < 300, c->status >= 300 && c->body.data ?
                      c->body.data : NULL, 0);
    }
    double secs = (double)(uv_hrtime() - r->start_ns) / 1e9;
    metrics_request(s->metrics, c->route_idx, c->status, secs);
    if (s->cfg.log_requests) {
        logline l;
        log_begin(&l, LOG_INFO, "request");
        log_kv_str(&l, "method", r->method_name);
        log_kv_str(&l, "route", c->route_idx >= 0 ? ROUTES[c->route_idx].tmpl : "unmatched");
        log_kv_strn(&l, "path", r->path, strlen(r->path) > 256 ? 256 : strlen(r->path));
        log_kv_int(&l, "status", c->status);
        log_kv_double(&l, "latency_ms", secs * 1e3);
        log_kv_str(&l, "tenant", c->tenant);
        log_kv_str(&l, "key_id", c->key_id);
        if (c->actor_type[0] && strcmp(c->actor_type, "api_key") != 0) {
            log_kv_str(&l, "actor_type", c->actor_type);
            log_kv_str(&l, "actor", c->actor);
        }
        log_kv_str(&l, "request_id", r->request_id);
        log_kv_str(&l, "peer", r->peer);
        if (c->status >= 500 && c->body.data)
            log_kv_strn(&l, "error", c->body.data, c->body.len > 300 ? 300 : c->body.len);
        log_end(&l);
    }
    http_respond(r, c->status, c->headers.data, c->ctype ? c->ctype : "application/json",
                 c->body.data ? c->body.data : "", c->body.len);
    for (int i = 0; i < MAX_PARAMS; i++)
        free(c->param[i]);
    sbuf_free(&c->body);
    sbuf_free(&c->headers);
    free(c);
}

static void work_cb(uv_work_t *w)
{
    rctx *c = (rctx *)w;
    c->route->fn(c);
    /* A change of state is on record before anyone is told it happened. */
    if (c->audit_action && c->status >= 200 && c->status < 300) {
        c->audited = 1;
        audit_request(c, c->audit_action, 1, NULL, 1);
    }
}

static void after_work_cb(uv_work_t *w, int status)
{
    rctx *c = (rctx *)w;
    server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->inflight = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (status == UV_ECANCELED) {
        c->apply = NULL;
        rc_error(c, 503, "SHUTTING_DOWN", "the server is shutting down");
    }
    finish(c);
}

void router_cancel_queued(server *s)
{
    for (rctx *c = s->inflight; c; c = c->next)
        uv_cancel((uv_req_t *)&c->work);
}

void router_on_request(void *ctx, http_req *req)
{
    server *s = ctx;
    rctx *c = calloc(1, sizeof *c);
    if (!c) {
        static const char oom[] = "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"out of memory\"}}";
        http_respond(req, 503, "Retry-After: 1\r\n", "application/json", oom, sizeof oom - 1);
        return;
    }
    c->srv = s;
    c->req = req;
    c->actor_type = "";
    c->lim.max_batch = s->cfg.max_batch;
    c->lim.max_k = s->cfg.max_k;
    c->lim.max_json_depth = s->cfg.max_json_depth;
    c->qdef = *tenants_defaults(s->tenants);
    c->route_idx = match(c);
    if (c->route_idx < 0) {
        finish(c);
        return;
    }
    c->route = &ROUTES[c->route_idx];
    c->audit_action = router_audit_action(c->route);
    if (c->route->perm != ROLE_NONE) {
        if (authenticate(c) != 0) {
            finish(c);
            return;
        }
        if (c->role < c->route->perm) {
            rc_error(c, 403, "FORBIDDEN", "this needs the %s role; the caller has %s",
                     role_name(c->route->perm), role_name(c->role));
            c->audited = 1;
            audit_request(c, AUDIT_AUTH_DENIED, 0, "role too low", 0);
            finish(c);
            return;
        }
        c->tn = tenants_get(s->tenants, c->tenant);
        if (!c->tn) {
            rc_error(c, 503, "UNAVAILABLE", "out of memory");
            finish(c);
            return;
        }
        c->q = tenant_quota(s->tenants, c->tn);
        if (!tenant_take(s->tenants, c->tn, uv_hrtime(), &c->rl)) {
            rc_error(c, 429, "RATE_LIMITED",
                     "tenant '%s' is over its rate limit of %.0f requests/s (burst %.0f)",
                     c->tenant, c->q.qps, c->q.burst);
            finish(c);
            return;
        }
    }
    if (c->route->pre) {
        c->route->pre(c);
        if (c->status || !c->route->fn) {
            finish(c);
            return;
        }
    }
    c->next = s->inflight;
    if (s->inflight)
        s->inflight->prev = c;
    s->inflight = c;
    int rc = uv_queue_work(s->loop, &c->work, work_cb, after_work_cb);
    if (rc != 0) {
        s->inflight = c->next;
        if (c->next)
            c->next->prev = NULL;
        rc_error(c, 503, "UNAVAILABLE", "cannot queue the request: %s", uv_strerror(rc));
        finish(c);
    }
}

void router_on_protocol_error(void *ctx, int status, const char *code, const char *peer)
{
    server *s = ctx;
    if (status)
        metrics_request(s->metrics, ROUTE_PROTOCOL, status, 0);
    logline l;
    log_begin(&l, status ? LOG_INFO : LOG_DEBUG, "http");
    log_kv_int(&l, "status", status);
    log_kv_str(&l, "reason", code);
    log_kv_str(&l, "peer", peer);
    log_end(&l);
}

void router_on_tls_handshake(void *ctx, int ok, const char *what, const char *peer)
{
    server *s = ctx;
    metrics_tls_handshake(s->metrics, ok);
    if (!ok) {
        logline l;
        log_begin(&l, LOG_INFO, "TLS handshake failed");
        log_kv_str(&l, "reason", what);
        log_kv_str(&l, "peer", peer);
        log_end(&l);
    }
}

void router_on_connection(void *ctx, int opened)
{
    server *s = ctx;
    metrics_connection(s->metrics, opened);
}
