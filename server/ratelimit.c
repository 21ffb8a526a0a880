/*
 * ratelimit.c - tenants: per-tenant token buckets and quotas.
 *
 * A tenant exists in this table once a request of it has been seen or an
 * admin has set its quota; entries are never removed while the server
 * runs (their count is bounded by the tenants that have keys or quota
 * records, which only an admin creates), so a `tenant_state *` stays valid for
 * the life of the server and can travel in a request context.
 *
 * Token bucket: capacity `burst`, refilled at `qps` tokens per second,
 * computed lazily from the monotonic clock at each request (no timers).
 * qps 0 means no limit.  The answer's headers:
 *   X-RateLimit-Limit      the bucket size (burst)
 *   X-RateLimit-Remaining  whole tokens left after this request
 *   X-RateLimit-Reset      seconds until the bucket is full again
 *   Retry-After (429)      seconds until one token is there
 *
 * Quota overrides live in the catalog (akidb_kv, namespace
 * akidb-server.quotas, key = tenant id, value = the quota as JSON) and are
 * loaded at start; PUT/DELETE .../quota write the record in the thread
 * pool and then change this table on the loop thread, so the new limits
 * apply to the next request, without a restart.
 *
 * Thread safety: loop thread only, except `write_lock`, which pool
 * threads take to make a quota check and the write it guards one step.
 */
#include "server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_BUCKETS 256

struct tenants {
    quota defaults;
    tenant_state *table[N_BUCKETS];
    size_t n;
};

static unsigned hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % N_BUCKETS;
}

int tenant_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TENANT_MAX || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '-') {
            if (s[i + 1] == '-')
                return 0;
        } else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) {
            return 0;
        }
    }
    return 1;
}

int tenants_new(tenants **out, const quota *defaults)
{
    tenants *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->defaults = *defaults;
    *out = t;
    return 0;
}

void tenants_free(tenants *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        tenant_state *tn = t->table[i], *next;
        for (; tn; tn = next) {
            next = tn->next;
            uv_mutex_destroy(&tn->write_lock);
            free(tn);
        }
    }
    free(t);
}

void tenants_set_defaults(tenants *t, const quota *defaults)
{
    t->defaults = *defaults;
}

const quota *tenants_defaults(const tenants *t)
{
    return &t->defaults;
}

tenant_state *tenants_get(tenants *t, const char *id)
{
    unsigned h = hash_str(id);
    for (tenant_state *tn = t->table[h]; tn; tn = tn->next)
        if (strcmp(tn->id, id) == 0)
            return tn;
    tenant_state *tn = calloc(1, sizeof *tn);
    if (!tn || uv_mutex_init(&tn->write_lock) != 0) {
        free(tn);
        return NULL;
    }
    snprintf(tn->id, sizeof tn->id, "%s", id);
    tn->tokens = -1;   /* filled to the burst at first use */
    tn->next = t->table[h];
    t->table[h] = tn;
    t->n++;
    return tn;
}

quota tenant_quota(const tenants *t, const tenant_state *tn)
{
    return tn->has_override ? tn->override : t->defaults;
}

int tenant_take(tenants *t, tenant_state *tn, uint64_t now_ns, rl_result *r)
{
    quota q = tenant_quota(t, tn);
    memset(r, 0, sizeof *r);
    if (q.qps <= 0)
        return 1;
    double burst = q.burst >= 1 ? q.burst : 1;
    if (tn->tokens < 0) {
        tn->tokens = burst;
    } else {
        double dt = (double)(now_ns - tn->last_ns) / 1e9;
        tn->tokens = fmin(burst, tn->tokens + dt * q.qps);
    }
    tn->last_ns = now_ns;
    r->limited = 1;
    r->limit = burst;
    int ok = tn->tokens >= 1;
    if (ok)
        tn->tokens -= 1;
    else
        tn->rate_limited++;
    r->remaining = floor(tn->tokens);
    r->reset_s = (uint64_t)ceil((burst - tn->tokens) / q.qps);
    r->retry_after_s = ok ? 0 : (uint64_t)ceil((1 - tn->tokens) / q.qps);
    if (!ok && r->retry_after_s < 1)
        r->retry_after_s = 1;
    return ok;
}

/*
 * A quota change applies to the next request.  Raising the burst adds the
 * difference to the tokens left, so an admin who lifts a throttled
 * tenant's limit sees it served at once (not after the new refill rate
 * has had time to produce a token); lowering it caps what is left.
 */
void tenant_set_override(tenants *t, tenant_state *tn, const quota *q)
{
    double old_burst = tenant_quota(t, tn).burst;
    tn->has_override = 1;
    tn->override = *q;
    if (tn->tokens < 0)
        return;     /* never used: filled to the new burst at first use */
    if (q->burst > old_burst)
        tn->tokens += q->burst - old_burst;
    if (tn->tokens > q->burst)
        tn->tokens = q->burst;
}

void tenant_clear_override(tenant_state *tn)
{
    tn->has_override = 0;
    tn->tokens = -1;
}

void quota_to_json(jw *w, const quota *q)
{
    jw_obj(w);
    jw_key(w, "qps");
    jw_double(w, q->qps);
    jw_key(w, "burst");
    jw_double(w, q->burst);
    jw_key(w, "max_collections");
    jw_uint(w, q->max_collections);
    jw_key(w, "max_vectors");
    jw_uint(w, q->max_vectors);
    jw_obj_end(w);
}

int tenants_load(tenants *t, akidb *db, char *err, size_t err_len)
{
    char **keys = NULL;
    size_t n = 0;
    int rc = akidb_kv_list(db, KV_NS_QUOTAS, &keys, &n);
    if (rc != AKIDB_OK) {
        snprintf(err, err_len, "reading tenant quotas: %s", akidb_errmsg(NULL));
        return -1;
    }
    int ret = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        void *val = NULL;
        size_t len = 0;
        rc = akidb_kv_get(db, KV_NS_QUOTAS, keys[i], &val, &len);
        if (rc != AKIDB_OK) {
            snprintf(err, err_len, "reading the quota of %s: %s", keys[i], akidb_errmsg(NULL));
            ret = -1;
            break;
        }
        json_error_t je;
        json_t *j = json_loadb(val, len, 0, &je);
        akidb_free(val);
        quota q = t->defaults;
        json_t *v;
        if (!j || !json_is_object(j) || !tenant_id_valid(keys[i])) {
            snprintf(err, err_len, "the stored quota of '%.64s' is damaged", keys[i]);
            ret = -1;
        } else {
            if ((v = json_object_get(j, "qps")) && json_is_number(v))
                q.qps = json_number_value(v);
            if ((v = json_object_get(j, "burst")) && json_is_number(v))
                q.burst = json_number_value(v);
            if ((v = json_object_get(j, "max_collections")) && json_is_integer(v))
                q.max_collections = (uint64_t)json_integer_value(v);
            if ((v = json_object_get(j, "max_vectors")) && json_is_integer(v))
                q.max_vectors = (uint64_t)json_integer_value(v);
            tenant_state *tn = tenants_get(t, keys[i]);
            if (!tn) {
                snprintf(err, err_len, "out of memory");
                ret = -1;
            } else {
                tenant_set_override(t, tn, &q);
            }
        }
        json_decref(j);
    }
    akidb_free(keys);
    return ret;
}

void tenants_render_metrics(const tenants *t, sbuf *b)
{
    sbuf_puts(b, "# HELP akidb_http_rate_limited_total Requests refused with 429, by tenant.\n"
                 "# TYPE akidb_http_rate_limited_total counter\n");
    for (size_t i = 0; i < N_BUCKETS; i++)
        for (const tenant_state *tn = t->table[i]; tn; tn = tn->next)
            sbuf_printf(b, "akidb_http_rate_limited_total{tenant=\"%s\"} %llu\n", tn->id,
                        (unsigned long long)tn->rate_limited);
    sbuf_printf(b, "# HELP akidb_http_tenants Tenants the server has seen or has quotas for.\n"
                   "# TYPE akidb_http_tenants gauge\nakidb_http_tenants %zu\n", t->n);
}
