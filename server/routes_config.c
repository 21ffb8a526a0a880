/*
 * routes_config.c - runtime configuration: what can change without a
 * restart, persisted in the catalog.
 *
 *   GET /v1/admin/config  -> {"config": {name: value, ...}, "overridden": [names]}
 *   PUT /v1/admin/config {name: value | null, ...} -> the same, after the change
 *
 * The changeable settings are the RUNTIME list below: default rate limits
 * and quotas, request limits, log level and request log, brute-force
 * limits, JWT leeway, and the database's default tiering policy (tier_*,
 * given to akidb_tier_policy_apply with coll NULL; per-collection
 * overrides are not exposed over HTTP).  The library does not persist a
 * database policy change (the next open starts from its options), so the
 * stored override is what keeps it: the server opens the database with
 * the startup values and applies the stored ones right after.  The
 * library's database-wide max_collections is not offered: the server's
 * max_collections is the per-tenant limit, and two settings of one name
 * meaning different things would be a trap.  A value is checked by the same code as the flag, env and
 * file sources (config_set: types and ranges), so PUT accepts exactly
 * what --rate-qps accepts; `null` returns a setting to its value at
 * startup.  The body is all or nothing: one bad field is a 400 that names
 * it, and nothing changes.
 *
 * Persistence: the overrides (only the settings changed at run time) are
 * one akidb_kv record, namespace akidb-server.config, key "runtime",
 * JSON.  At start they are applied over the file/env/flag settings, and
 * each one is logged, so a restart keeps what an operator changed.
 *
 * Flow of a PUT: validated on the loop thread (pre) against the current
 * settings; stored in the thread pool (fn); installed on the loop thread
 * (apply) before the answer.  One change at a time: a second PUT while one
 * is in flight is a 409, so two changes can never interleave into a
 * record that neither made.  Audited (config.change) with the new values;
 * none of these settings is a secret.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define RUNTIME_KEY "runtime"

static const char *const RUNTIME[] = {
    "rate_qps", "rate_burst", "max_collections", "max_vectors", "max_batch", "max_k",
    "max_json_depth", "max_body_bytes", "log_level", "log_requests", "auth_fail_limit",
    "auth_fail_window_s", "jwt_leeway_s", "tier_hot_ttl_s", "tier_warm_ttl_s",
    "tier_promote_per_hour", "tier_disabled", "tier_snapshot_retention", "tier_memory_budget",
    "tier_store_quota", NULL,
};

static int is_runtime(const char *name)
{
    for (int i = 0; RUNTIME[i]; i++)
        if (strcmp(RUNTIME[i], name) == 0)
            return 1;
    return 0;
}

/* A JSON scalar as the text config_set() parses; -1 if not a scalar. */
static int scalar_text(json_t *v, char *out, size_t n)
{
    if (json_is_string(v))
        return snprintf(out, n, "%s", json_string_value(v)) < (int)n ? 0 : -1;
    if (json_is_boolean(v))
        return snprintf(out, n, "%s", json_is_true(v) ? "true" : "false"), 0;
    if (json_is_integer(v))
        return snprintf(out, n, "%lld", (long long)json_integer_value(v)), 0;
    if (json_is_real(v))
        return snprintf(out, n, "%.17g", json_real_value(v)), 0;
    return -1;
}

/* Cross-field rules that config_set() cannot see one field at a time. */
static int cross_check(const srv_config *cfg, char *err, size_t n)
{
    if (log_level_parse(cfg->log_level) < 0) {
        snprintf(err, n, "log_level must be error, warn, info or debug, not '%s'",
                 cfg->log_level);
        return -1;
    }
    if (cfg->rate_qps > 0 && cfg->rate_burst < 1) {
        snprintf(err, n, "rate_burst must be at least 1 when rate_qps is set");
        return -1;
    }
    return 0;
}

void runtime_tier_policy(const srv_config *cfg, akidb_tier_policy *p)
{
    akidb_tier_policy_init(p);
    akidb_tier_policy_set_hot_ttl(p, cfg->tier_hot_ttl_s ? (uint64_t)cfg->tier_hot_ttl_s
                                                         : AKIDB_TIER_TTL_NEVER);
    akidb_tier_policy_set_warm_ttl(p, cfg->tier_warm_ttl_s ? (uint64_t)cfg->tier_warm_ttl_s
                                                           : AKIDB_TIER_TTL_NEVER);
    akidb_tier_policy_set_promote_per_hour(p, (uint32_t)cfg->tier_promote_per_hour);
    akidb_tier_policy_set_disabled(p, cfg->tier_disabled);
    akidb_tier_policy_set_retention(p, (uint32_t)cfg->tier_snapshot_retention);
    akidb_tier_policy_set_memory_budget(p, (uint64_t)cfg->tier_memory_budget);
    akidb_tier_policy_set_store_quota(p, (uint64_t)cfg->tier_store_quota);
}

void runtime_config_apply(server *s)
{
    const srv_config *cfg = &s->cfg;
    log_set_level(log_level_parse(cfg->log_level));
    if (s->tenants) {
        quota q = {cfg->rate_qps, cfg->rate_burst, (uint64_t)cfg->max_collections,
                   (uint64_t)cfg->max_vectors};
        tenants_set_defaults(s->tenants, &q);
    }
    if (s->http)
        http_server_set_max_body(s->http, (size_t)cfg->max_body_bytes);
    if (s->jwt)
        token_verifier_set_leeway(s->jwt, cfg->jwt_leeway_s);
    if (s->db) {
        /* On the loop thread: for the database (coll NULL) this only sets
         * fields under the library's innermost policy lock, which nothing
         * holds for long; the worker picks them up at its next cycle.  The
         * values passed config_set()'s ranges, which are the library's. */
        akidb_tier_policy p;
        runtime_tier_policy(cfg, &p);
        int rc = akidb_tier_policy_apply(s->db, NULL, &p);
        if (rc != AKIDB_OK)
            log_msg(LOG_ERROR, "the tiering policy was not applied", "error", akidb_errmsg(NULL));
    }
}

int runtime_config_load(server *s, char *err, size_t n)
{
    s->boot = s->cfg;
    s->rt_over = json_object();
    if (!s->rt_over) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    void *val = NULL;
    size_t len = 0;
    int rc = akidb_kv_get(s->db, KV_NS_CONFIG, RUNTIME_KEY, &val, &len);
    if (rc == AKIDB_NOTFOUND)
        return 0;
    if (rc != AKIDB_OK) {
        snprintf(err, n, "reading the runtime configuration: %s", akidb_errmsg(NULL));
        return -1;
    }
    json_error_t je;
    json_t *j = json_loadb(val, len, 0, &je);
    akidb_free(val);
    if (!json_is_object(j)) {
        /* A damaged record must not keep the server down: say so, use
         * the startup settings, and let the next PUT rewrite it. */
        log_msg(LOG_WARN, "the stored runtime configuration is damaged; ignoring it", NULL, NULL);
        json_decref(j);
        return 0;
    }
    const char *name;
    json_t *v;
    json_object_foreach(j, name, v) {
        char text[CFG_STR_MAX], e[512];
        srv_config trial = s->cfg;
        if (!is_runtime(name) || scalar_text(v, text, sizeof text) != 0 ||
            config_set(&trial, name, text, "runtime config", e, sizeof e) != 0 ||
            cross_check(&trial, e, sizeof e) != 0) {
            log_msg(LOG_WARN, "ignoring a stored runtime setting", "setting", name);
            continue;
        }
        char before[256];
        config_get_json(&s->cfg, name, before, sizeof before);
        s->cfg = trial;
        json_object_set(s->rt_over, name, v);
        logline l;
        log_begin(&l, LOG_INFO, "runtime configuration from the catalog overrides a setting");
        log_kv_str(&l, "setting", name);
        log_kv_str(&l, "value", text);
        log_kv_str(&l, "startup_value", before);
        log_end(&l);
    }
    json_decref(j);
    return 0;
}

/* ------------------------------------------------------------------------
 * Routes */

static void render(rctx *c)
{
    server *s = c->srv;
    jw w;
    rc_json(c, 200, &w);
    jw_obj(&w);
    jw_key(&w, "config");
    jw_obj(&w);
    for (int i = 0; RUNTIME[i]; i++) {
        char v[512];
        if (config_get_json(&s->cfg, RUNTIME[i], v, sizeof v) != 0)
            continue;
        jw_key(&w, RUNTIME[i]);
        jw_raw_json(&w, v);
    }
    jw_obj_end(&w);
    jw_key(&w, "overridden");
    jw_arr(&w);
    for (int i = 0; RUNTIME[i]; i++)
        if (json_object_get(s->rt_over, RUNTIME[i]))
            jw_str(&w, RUNTIME[i]);
    jw_arr_end(&w);
    jw_obj_end(&w);
}

void h_config_get(rctx *c)
{
    render(c);
}

typedef struct config_change {
    srv_config cfg;             /* the settings after the change */
    json_t *over;               /* the overrides to store */
    char *text;                 /* ... as stored ("" = delete the record) */
} config_change;

static void change_free(void *p)
{
    config_change *ch = p;
    if (!ch)
        return;
    json_decref(ch->over);
    free(ch->text);
    free(ch);
}

static void config_installed(rctx *c)
{
    server *s = c->srv;
    config_change *ch = c->arg;
    s->config_busy = 0;
    if (c->status != 200)
        return;
    /* Only the runtime fields: the rest of cfg is what the server started
     * with and stays so. */
    for (int i = 0; RUNTIME[i]; i++) {
        char v[CFG_STR_MAX], e[256], text[CFG_STR_MAX];
        json_t *jv;
        if (config_get_json(&ch->cfg, RUNTIME[i], v, sizeof v) != 0 ||
            !(jv = json_loads(v, JSON_DECODE_ANY, NULL)))
            continue;
        if (scalar_text(jv, text, sizeof text) == 0)
            config_set(&s->cfg, RUNTIME[i], text, "runtime", e, sizeof e);
        json_decref(jv);
    }
    json_decref(s->rt_over);
    s->rt_over = ch->over;
    ch->over = NULL;
    runtime_config_apply(s);
    logline l;
    log_begin(&l, LOG_INFO, "runtime configuration changed");
    log_kv_str(&l, "changes", c->audit_detail);
    log_kv_str(&l, "by", c->actor);
    log_end(&l);
    render(c);
}

void h_config_put_pre(rctx *c)
{
    server *s = c->srv;
    char err[600];
    if (s->config_busy) {
        rc_error(c, 409, "CONFLICT", "another configuration change is in progress; retry");
        return;
    }
    json_t *j = rc_body(c);
    if (!j)
        return;
    config_change *ch = calloc(1, sizeof *ch);
    if (!ch) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        json_decref(j);
        return;
    }
    c->arg = ch;
    c->arg_free = change_free;
    ch->cfg = s->cfg;
    ch->over = json_deep_copy(s->rt_over);
    if (!ch->over) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        goto done;
    }
    if (json_object_size(j) == 0) {
        rc_error(c, 400, "BAD_REQUEST", "the body names no setting to change");
        goto done;
    }
    sbuf detail = {0};
    const char *name;
    json_t *v;
    json_object_foreach(j, name, v) {
        char text[CFG_STR_MAX];
        if (!is_runtime(name)) {
            rc_error(c, 400, "BAD_REQUEST", "'%.64s' is not a setting that can change at run "
                     "time (see GET /v1/admin/config)", name);
            sbuf_free(&detail);
            goto done;
        }
        if (json_is_null(v)) {
            /* Back to the startup value. */
            char boot[CFG_STR_MAX];
            json_t *bv;
            if (config_get_json(&s->boot, name, boot, sizeof boot) != 0 ||
                !(bv = json_loads(boot, JSON_DECODE_ANY, NULL)) ||
                scalar_text(bv, text, sizeof text) != 0) {
                rc_error(c, 503, "UNAVAILABLE", "out of memory");
                sbuf_free(&detail);
                goto done;
            }
            json_decref(bv);
            json_object_del(ch->over, name);
        } else if (scalar_text(v, text, sizeof text) != 0) {
            rc_error(c, 400, "BAD_REQUEST", "'%s' must be a number, boolean or string", name);
            sbuf_free(&detail);
            goto done;
        } else {
            json_object_set(ch->over, name, v);
        }
        if (config_set(&ch->cfg, name, text, "PUT /v1/admin/config", err, sizeof err) != 0) {
            rc_error(c, 400, "BAD_REQUEST", "%s", err);
            sbuf_free(&detail);
            goto done;
        }
        sbuf_printf(&detail, "%s%s=%s", detail.len ? " " : "", name,
                    json_is_null(v) ? "(startup value)" : text);
    }
    if (cross_check(&ch->cfg, err, sizeof err) != 0) {
        rc_error(c, 400, "BAD_REQUEST", "%s", err);
        sbuf_free(&detail);
        goto done;
    }
    snprintf(c->audit_detail, sizeof c->audit_detail, "%s", detail.data ? detail.data : "");
    sbuf_free(&detail);
    ch->text = json_object_size(ch->over) ? json_dumps(ch->over, JSON_COMPACT | JSON_SORT_KEYS)
                                          : strdup("");
    if (!ch->text) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        goto done;
    }
    s->config_busy = 1;
    c->apply = config_installed;    /* clears config_busy, whatever happens */
done:
    json_decref(j);
}

void h_config_put(rctx *c)
{
    config_change *ch = c->arg;
    uv_mutex_lock(&c->srv->admin_lock);
    int rc = ch->text[0] ? akidb_kv_put(c->srv->db, KV_NS_CONFIG, RUNTIME_KEY, ch->text,
                                        strlen(ch->text))
                         : akidb_kv_delete(c->srv->db, KV_NS_CONFIG, RUNTIME_KEY);
    uv_mutex_unlock(&c->srv->admin_lock);
    if (rc != AKIDB_OK && rc != AKIDB_NOTFOUND) {
        rc_lib(c, rc);
        return;
    }
    /* The body is rendered on the loop thread, after the change is in. */
    c->status = 200;
}
