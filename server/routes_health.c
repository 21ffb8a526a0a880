/*
 * routes_health.c - probes, metrics and the API description; no auth.
 *
 *   GET /health/live      the process runs and its loop answers (loop thread)
 *   GET /health/ready     200 only when the database is open, the server is
 *                         not shutting down and the object store answers;
 *                         503 with the reason otherwise
 *   GET /metrics          Prometheus text: the server's metrics (loop-owned,
 *                         rendered on the loop) then the library's
 *                         (akidb_metrics_render, in the pool)
 *   GET /v1/openapi.json  docs/openapi.yaml as JSON, compiled in
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void h_live(rctx *c)
{
    static const char body[] = "{\"status\":\"live\"}";
    c->status = 200;
    sbuf_append(&c->body, body, sizeof body - 1);
}

static void ready_apply(rctx *c)
{
    if (c->srv->draining)
        rc_error(c, 503, "NOT_READY", "the server is shutting down");
}

void h_ready(rctx *c)
{
    server *s = c->srv;
    c->apply = ready_apply;
    if (!s->db) {
        rc_error(c, 503, "NOT_READY", "the database is not open");
        return;
    }
    if (s->store) {
        /* The backend's own method, not the retrying wrapper: a probe
         * must answer quickly, and one failure is the answer. */
        uint64_t size = 0;
        int rc = s->store->methods->size(s->store, "akidb-server/readiness-probe", &size);
        if (rc != AKIDB_OK && rc != AKIDB_NOTFOUND) {
            rc_error(c, 503, "NOT_READY", "the object store does not answer: %s",
                     akidb_errmsg(NULL));
            return;
        }
    }
    jw w;
    rc_json(c, 200, &w);
    jw_obj(&w);
    jw_key(&w, "status");
    jw_str(&w, "ready");
    jw_key(&w, "object_store");
    jw_str(&w, s->cfg.store);
    jw_obj_end(&w);
}

static void metrics_apply(rctx *c)
{
    server *s = c->srv;
    char *lib = c->arg;
    sbuf b = {0};
    metrics_render(s->metrics, &b, http_server_requests_in_flight(s->http),
                   http_server_connections(s->http));
    tenants_render_metrics(s->tenants, &b);
    metrics_render_security(s->metrics, &b, s->tls ? tls_ctx_not_after(s->tls) : 0);
    audit_render_metrics(s->audit, &b);
    sbuf_printf(&b, "# HELP process_start_time_seconds Start time of the process since the "
                "Unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
                "process_start_time_seconds %lld\n", (long long)s->start_time_s);
    if (lib)
        sbuf_puts(&b, lib);
    if (!b.data) {
        rc_error(c, 503, "UNAVAILABLE", "out of memory");
        return;
    }
    sbuf_free(&c->body);
    c->body = b;
    c->status = 200;
    c->ctype = "text/plain; version=0.0.4; charset=utf-8";
}

static void free_lib_text(void *p)
{
    akidb_free(p);
}

void h_metrics(rctx *c)
{
    char *text = NULL;
    int rc = akidb_metrics_render(c->srv->db, &text);
    if (rc != AKIDB_OK) {
        rc_lib(c, rc);
        return;
    }
    c->arg = text;
    c->arg_free = free_lib_text;
    c->apply = metrics_apply;
}

void h_openapi(rctx *c)
{
    c->status = 200;
    sbuf_append(&c->body, akidb_openapi_json, akidb_openapi_json_len);
}
