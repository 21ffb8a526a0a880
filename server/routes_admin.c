/*
 * routes_admin.c - API keys and tenant quotas (role admin, any tenant).
 *
 *   POST   /v1/admin/keys {tenant, role, name?}  -> 201 {id, key, ...}  (key shown once)
 *   GET    /v1/admin/keys[?tenant=t]             -> {keys: [...]}       (never the keys)
 *   DELETE /v1/admin/keys/{id}                   -> 204; 409 for the last admin key
 *   GET    /v1/admin/tenants/{tenant}/quota      -> the effective quota
 *   PUT    /v1/admin/tenants/{tenant}/quota {qps?, burst?, max_collections?, max_vectors?}
 *          replaces the tenant's override (absent fields: the server defaults)
 *   DELETE /v1/admin/tenants/{tenant}/quota      -> 204; back to the defaults
 *
 * The catalog (akidb_kv) is the record; the loop thread's key and tenant
 * tables mirror it.  A change is written in the thread pool first and
 * mirrored by rctx->apply on the loop thread before the answer goes out,
 * so when a client sees 201/204 the change is durable and in force (a
 * revoked key fails on the very next request).  Refusing to revoke the
 * last admin key is decided on the loop thread, where concurrent revokes
 * are seen one after the other (the `deleting` mark).
 */
#include "server.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *const KEY_FIELDS[] = {"tenant", "role", "name", NULL};

static void key_added(rctx *c)
{
    api_key *k = c->arg;
    if (auth_add(&c->srv->auth, k) != 0) {
        /* Stored but not in memory: say so; a restart loads it. */
        rc_error(c, 503, "UNAVAILABLE", "out of memory; the key works after a restart");
    }
}

void h_key_create(rctx *c)
{
    char err[512];
    json_t *j = rc_body(c);
    if (!j)
        return;
    const char *tenant = NULL, *role = NULL, *name = "";
    if (jx_only(j, KEY_FIELDS, NULL, err, sizeof err) ||
        jx_get_str(j, "tenant", &tenant, err, sizeof err) < 0 ||
        jx_get_str(j, "role", &role, err, sizeof err) < 0 ||
        jx_get_str(j, "name", &name, err, sizeof err) < 0)
        goto bad;
    if (!tenant || !tenant_id_valid(tenant)) {
        snprintf(err, sizeof err, "'tenant' is required: 1..%d characters of [a-z0-9] in "
                 "groups joined by single '-'", TENANT_MAX);
        goto bad;
    }
    if (!role || role_parse(role) < 0) {
        snprintf(err, sizeof err, "'role' must be \"admin\", \"writer\" or \"reader\"");
        goto bad;
    }
    size_t nl = strlen(name);
    int ok = nl <= 128;
    for (size_t i = 0; ok && i < nl; i++)
        ok = (unsigned char)name[i] >= 0x20 && name[i] != 0x7f;
    if (!ok) {
        snprintf(err, sizeof err, "'name' is at most 128 bytes without control characters");
        goto bad;
    }
    api_key *k = calloc(1, sizeof *k);
    char key[128];
    if (!k) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        goto done;
    }
    c->arg = k;
    c->arg_free = free;
    if (auth_generate(k, key, sizeof key) != 0) {
        rc_error(c, 503, "UNAVAILABLE", "no random bytes from the OS");
        goto done;
    }
    snprintf(k->tenant, sizeof k->tenant, "%s", tenant);
    snprintf(k->name, sizeof k->name, "%s", name);
    k->role = role_parse(role);
    snprintf(c->audit_target, sizeof c->audit_target, "key=%s", k->id);
    snprintf(c->audit_detail, sizeof c->audit_detail, "tenant=%s role=%s name=%s", k->tenant,
             role_name(k->role), k->name);
    uv_mutex_lock(&c->srv->admin_lock);
    int rc = auth_store(c->srv->db, k);
    uv_mutex_unlock(&c->srv->admin_lock);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        goto done;
    }
    c->apply = key_added;
    jw w;
    rc_json(c, 201, &w);
    jw_obj(&w);
    jw_key(&w, "id");
    jw_str(&w, k->id);
    jw_key(&w, "key");
    jw_str(&w, key);
    jw_key(&w, "tenant");
    jw_str(&w, k->tenant);
    jw_key(&w, "role");
    jw_str(&w, role_name(k->role));
    jw_key(&w, "name");
    jw_str(&w, k->name);
    jw_key(&w, "created_at_us");
    jw_int(&w, k->created_at_us);
    jw_obj_end(&w);
    OPENSSL_cleanse(key, sizeof key);
    goto done;
bad:
    rc_error(c, 400, "BAD_REQUEST", "%s", err);
done:
    json_decref(j);
}

void h_key_list(rctx *c)
{
    char tenant[TENANT_MAX + 1];
    int r = rc_query(c, "tenant", tenant, sizeof tenant);
    if (r < 0)
        return;
    const auth_table *a = &c->srv->auth;
    jw w;
    rc_json(c, 200, &w);
    jw_obj(&w);
    jw_key(&w, "keys");
    jw_arr(&w);
    for (size_t i = 0; i < a->n; i++)
        if (!r || strcmp(a->keys[i].tenant, tenant) == 0)
            auth_key_json(&w, &a->keys[i]);
    jw_arr_end(&w);
    jw_obj_end(&w);
}

void h_key_delete_pre(rctx *c)
{
    api_key *k = auth_find_id(&c->srv->auth, c->param[0]);
    if (!k || k->deleting) {
        rc_error(c, 404, "NOT_FOUND", "no API key with id '%.32s'", c->param[0]);
        return;
    }
    snprintf(c->audit_target, sizeof c->audit_target, "key=%s", k->id);
    snprintf(c->audit_detail, sizeof c->audit_detail, "tenant=%s role=%s name=%s", k->tenant,
             role_name(k->role), k->name);
    if (k->role == ROLE_ADMIN && auth_count_admins(&c->srv->auth, 1) <= 1) {
        rc_error(c, 409, "CONFLICT", "this is the last admin key; create another admin key "
                 "before revoking it");
        return;
    }
    k->deleting = 1;
}

static void key_deleted(rctx *c)
{
    if (c->status == 204) {
        auth_remove(&c->srv->auth, c->param[0]);
    } else {
        api_key *k = auth_find_id(&c->srv->auth, c->param[0]);
        if (k)
            k->deleting = 0;
    }
}

void h_key_delete(rctx *c)
{
    c->apply = key_deleted;
    uv_mutex_lock(&c->srv->admin_lock);
    int rc = akidb_kv_delete(c->srv->db, KV_NS_KEYS, c->param[0]);
    uv_mutex_unlock(&c->srv->admin_lock);
    if (rc != AKIDB_OK && rc != AKIDB_NOTFOUND) {
        rc_lib(c, rc);
        return;
    }
    c->status = 204;
    logline l;
    log_begin(&l, LOG_INFO, "API key revoked");
    log_kv_str(&l, "key_id", c->param[0]);
    log_kv_str(&l, "by", c->actor);
    log_end(&l);
}

/* ---- quotas */

static int tenant_param(rctx *c)
{
    if (!tenant_id_valid(c->param[0])) {
        rc_error(c, 400, "BAD_REQUEST", "tenant ids are 1..%d characters of [a-z0-9] in groups "
                 "joined by single '-'", TENANT_MAX);
        return -1;
    }
    return 0;
}

static void quota_answer(rctx *c, const quota *q, int is_default)
{
    jw w;
    rc_json(c, 200, &w);
    jw_obj(&w);
    jw_key(&w, "tenant");
    jw_str(&w, c->param[0]);
    jw_key(&w, "qps");
    jw_double(&w, q->qps);
    jw_key(&w, "burst");
    jw_double(&w, q->burst);
    jw_key(&w, "max_collections");
    jw_uint(&w, q->max_collections);
    jw_key(&w, "max_vectors");
    jw_uint(&w, q->max_vectors);
    jw_key(&w, "is_default");
    jw_bool(&w, is_default);
    jw_obj_end(&w);
}

void h_quota_get(rctx *c)
{
    if (tenant_param(c))
        return;
    tenant_state *tn = tenants_get(c->srv->tenants, c->param[0]);
    if (!tn) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        return;
    }
    quota q = tenant_quota(c->srv->tenants, tn);
    quota_answer(c, &q, !tn->has_override);
}

static const char *const QUOTA_FIELDS[] = {"qps", "burst", "max_collections", "max_vectors",
                                           NULL};

static void quota_set(rctx *c)
{
    if (c->status != 200)
        return;
    tenant_state *tn = tenants_get(c->srv->tenants, c->param[0]);
    if (!tn) {
        rc_error(c, 503, "UNAVAILABLE", "stored, but out of memory: applies after a restart");
        return;
    }
    tenant_set_override(c->srv->tenants, tn, c->arg);
}

void h_quota_put(rctx *c)
{
    char err[512];
    if (tenant_param(c))
        return;
    json_t *j = rc_body(c);
    if (!j)
        return;
    /* The defaults as they were when the request came in (runtime
     * configuration may change them on the loop thread meanwhile). */
    quota q = c->qdef;
    if (jx_only(j, QUOTA_FIELDS, NULL, err, sizeof err) ||
        jx_get_num(j, "qps", 0, 1e9, &q.qps, err, sizeof err) < 0 ||
        jx_get_num(j, "burst", 0, 1e9, &q.burst, err, sizeof err) < 0 ||
        jx_get_uint(j, "max_collections", 0, UINT64_MAX / 2, &q.max_collections, err,
                    sizeof err) < 0 ||
        jx_get_uint(j, "max_vectors", 0, UINT64_MAX / 2, &q.max_vectors, err, sizeof err) < 0) {
        rc_error(c, 400, "BAD_REQUEST", "%s", err);
        json_decref(j);
        return;
    }
    json_decref(j);
    if (q.qps > 0 && q.burst < 1) {
        rc_error(c, 400, "BAD_REQUEST", "'burst' must be at least 1 when 'qps' is set");
        return;
    }
    quota *keep = malloc(sizeof *keep);
    if (!keep) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        return;
    }
    *keep = q;
    c->arg = keep;
    c->arg_free = free;
    sbuf b = {0};
    jw w;
    jw_init(&w, &b);
    quota_to_json(&w, &q);
    uv_mutex_lock(&c->srv->admin_lock);
    int rc = b.data ? akidb_kv_put(c->srv->db, KV_NS_QUOTAS, c->param[0], b.data, b.len)
                    : akidb_set_errmsg(AKIDB_NOMEM, "out of memory");
    uv_mutex_unlock(&c->srv->admin_lock);
    sbuf_free(&b);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    quota_answer(c, &q, 0);
    snprintf(c->audit_target, sizeof c->audit_target, "tenant=%s", c->param[0]);
    snprintf(c->audit_detail, sizeof c->audit_detail,
             "qps=%g burst=%g max_collections=%llu max_vectors=%llu", q.qps, q.burst,
             (unsigned long long)q.max_collections, (unsigned long long)q.max_vectors);
    c->apply = quota_set;
}

static void quota_cleared(rctx *c)
{
    if (c->status != 204)
        return;
    tenant_state *tn = tenants_get(c->srv->tenants, c->param[0]);
    if (tn)
        tenant_clear_override(tn);
}

void h_quota_delete(rctx *c)
{
    if (tenant_param(c))
        return;
    uv_mutex_lock(&c->srv->admin_lock);
    int rc = akidb_kv_delete(c->srv->db, KV_NS_QUOTAS, c->param[0]);
    uv_mutex_unlock(&c->srv->admin_lock);
    if (rc != AKIDB_OK && rc != AKIDB_NOTFOUND) {
        rc_lib(c, rc);
        return;
    }
    c->status = 204;
    snprintf(c->audit_target, sizeof c->audit_target, "tenant=%s", c->param[0]);
    c->apply = quota_cleared;
}
