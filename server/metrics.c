/*
 * metrics.c - the server's own Prometheus metrics.
 *
 *   akidb_http_requests_total{method,route,status}     counter
 *   akidb_http_request_duration_seconds{method,route}  histogram
 *   akidb_http_requests_in_flight                      gauge
 *   akidb_http_connections                             gauge (open now)
 *   akidb_http_connections_total                       counter (accepted)
 *   process_resident_memory_bytes, process_start_time_seconds
 *   akidb_auth_failures_total{kind}                   counter (401s by credential kind)
 *   akidb_auth_throttled_requests_total, akidb_auth_lockouts_total
 *   akidb_tls_handshakes_total{result}, akidb_tls_reloads_total{result}
 *   akidb_tls_certificate_expiry_seconds              gauge (notAfter, Unix time)
 *
 * Labels have bounded cardinality: `route` is a route template from the
 * table (or "unmatched" for 404/405 on unknown paths, "protocol" for what
 * the HTTP layer refused before routing), never a raw path; `status` is
 * one of the few codes the server sends.  The rate-limit counter by tenant
 * lives with the tenants (ratelimit.c); the library's own metrics are
 * appended by the /metrics handler.
 *
 * Loop thread only (no locks): every update happens where the answer is
 * sent, and /metrics renders this part on the loop thread too.
 */
#include "server.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const double BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
#define N_BUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])
#define N_STATUS 24

typedef struct route_stats {
    struct {
        int status;
        uint64_t count;
    } by_status[N_STATUS];
    uint64_t other;                 /* statuses beyond N_STATUS distinct ones */
    uint64_t bucket[N_BUCKETS + 1]; /* last = +Inf */
    double sum;
    uint64_t count;
} route_stats;

struct metrics {
    size_t n_routes;                /* + 2: unmatched, protocol */
    route_stats *r;
    int64_t connections;
    uint64_t connections_total;
    uint64_t auth_failures[AUTHF_N];
    uint64_t throttled, lockouts;
    uint64_t tls_handshakes[2];     /* [0] failed, [1] ok */
    uint64_t tls_reloads[2];
};

metrics *metrics_new(size_t n_routes)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n_routes = n_routes;
    m->r = calloc(n_routes + 2, sizeof *m->r);
    if (!m->r) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_free(metrics *m)
{
    if (m)
        free(m->r);
    free(m);
}

static route_stats *slot(metrics *m, int route)
{
    if (route >= 0 && (size_t)route < m->n_routes)
        return &m->r[route];
    return &m->r[m->n_routes + (route == ROUTE_PROTOCOL ? 1 : 0)];
}

void metrics_request(metrics *m, int route, int status, double seconds)
{
    route_stats *s = slot(m, route);
    int done = 0;
    for (int i = 0; i < N_STATUS && !done; i++) {
        if (s->by_status[i].status == status || s->by_status[i].status == 0) {
            s->by_status[i].status = status;
            s->by_status[i].count++;
            done = 1;
        }
    }
    if (!done)
        s->other++;
    size_t b = 0;
    while (b < N_BUCKETS && seconds > BUCKETS[b])
        b++;
    s->bucket[b]++;
    s->sum += seconds;
    s->count++;
}

void metrics_connection(metrics *m, int opened)
{
    if (opened) {
        m->connections++;
        m->connections_total++;
    } else {
        m->connections--;
    }
}

static void labels(const metrics *m, size_t i, char *out, size_t n)
{
    if (i < m->n_routes) {
        const route_def *r = router_route(i);
        snprintf(out, n, "method=\"%s\",route=\"%s\"",
                 http_method_str((enum http_method)r->method), r->tmpl);
    } else {
        snprintf(out, n, "method=\"\",route=\"%s\"", i == m->n_routes ? "unmatched" : "protocol");
    }
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

void metrics_render(const metrics *m, sbuf *b, unsigned in_flight, unsigned connections)
{
    char lb[192];
    size_t n = m->n_routes + 2;
    sbuf_puts(b, "# HELP akidb_http_requests_total HTTP requests answered, by route template "
                 "and status.\n# TYPE akidb_http_requests_total counter\n");
    for (size_t i = 0; i < n; i++) {
        const route_stats *s = &m->r[i];
        labels(m, i, lb, sizeof lb);
        for (int k = 0; k < N_STATUS && s->by_status[k].status; k++)
            sbuf_printf(b, "akidb_http_requests_total{%s,status=\"%d\"} %llu\n", lb,
                        s->by_status[k].status, (unsigned long long)s->by_status[k].count);
        if (s->other)
            sbuf_printf(b, "akidb_http_requests_total{%s,status=\"other\"} %llu\n", lb,
                        (unsigned long long)s->other);
    }
    sbuf_puts(b, "# HELP akidb_http_request_duration_seconds Time from the first byte of a "
                 "request to its answer, by route template.\n"
                 "# TYPE akidb_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < n; i++) {
        const route_stats *s = &m->r[i];
        if (!s->count)
            continue;
        labels(m, i, lb, sizeof lb);
        uint64_t cum = 0;
        for (size_t k = 0; k < N_BUCKETS; k++) {
            cum += s->bucket[k];
            sbuf_printf(b, "akidb_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n", lb,
                        BUCKETS[k], (unsigned long long)cum);
        }
        cum += s->bucket[N_BUCKETS];
        sbuf_printf(b, "akidb_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n", lb,
                    (unsigned long long)cum);
        sbuf_printf(b, "akidb_http_request_duration_seconds_sum{%s} %.9f\n", lb, s->sum);
        sbuf_printf(b, "akidb_http_request_duration_seconds_count{%s} %llu\n", lb,
                    (unsigned long long)s->count);
    }
    sbuf_printf(b,
                "# HELP akidb_http_requests_in_flight Requests received and not yet answered.\n"
                "# TYPE akidb_http_requests_in_flight gauge\nakidb_http_requests_in_flight %u\n"
                "# HELP akidb_http_connections Open client connections.\n"
                "# TYPE akidb_http_connections gauge\nakidb_http_connections %u\n"
                "# HELP akidb_http_connections_total Client connections accepted.\n"
                "# TYPE akidb_http_connections_total counter\nakidb_http_connections_total %llu\n"
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n",
                in_flight, connections, (unsigned long long)m->connections_total,
                (unsigned long long)rss_bytes());
}

void metrics_auth_failure(metrics *m, int kind)
{
    if (kind >= 0 && kind < AUTHF_N)
        m->auth_failures[kind]++;
}

void metrics_auth_throttled(metrics *m, int lockout)
{
    if (lockout)
        m->lockouts++;
    else
        m->throttled++;
}

void metrics_tls_handshake(metrics *m, int ok)
{
    m->tls_handshakes[ok ? 1 : 0]++;
}

void metrics_tls_reload(metrics *m, int ok)
{
    m->tls_reloads[ok ? 1 : 0]++;
}

void metrics_render_security(const metrics *m, sbuf *b, int64_t tls_not_after)
{
    static const char *const kinds[AUTHF_N] = {"missing", "malformed", "api_key", "jwt",
                                               "client_certificate"};
    sbuf_puts(b, "# HELP akidb_auth_failures_total Failed authentications (401), by the kind "
                 "of credential presented.\n# TYPE akidb_auth_failures_total counter\n");
    for (int i = 0; i < AUTHF_N; i++)
        sbuf_printf(b, "akidb_auth_failures_total{kind=\"%s\"} %llu\n", kinds[i],
                    (unsigned long long)m->auth_failures[i]);
    sbuf_printf(b,
                "# HELP akidb_auth_throttled_requests_total Requests refused (429) because their "
                "address failed to authenticate too often.\n"
                "# TYPE akidb_auth_throttled_requests_total counter\n"
                "akidb_auth_throttled_requests_total %llu\n"
                "# HELP akidb_auth_lockouts_total Addresses locked out after repeated "
                "authentication failures.\n# TYPE akidb_auth_lockouts_total counter\n"
                "akidb_auth_lockouts_total %llu\n"
                "# HELP akidb_tls_handshakes_total TLS handshakes, by result.\n"
                "# TYPE akidb_tls_handshakes_total counter\n"
                "akidb_tls_handshakes_total{result=\"success\"} %llu\n"
                "akidb_tls_handshakes_total{result=\"failure\"} %llu\n"
                "# HELP akidb_tls_reloads_total Certificate and key reloads (SIGHUP), by result.\n"
                "# TYPE akidb_tls_reloads_total counter\n"
                "akidb_tls_reloads_total{result=\"success\"} %llu\n"
                "akidb_tls_reloads_total{result=\"failure\"} %llu\n",
                (unsigned long long)m->throttled, (unsigned long long)m->lockouts,
                (unsigned long long)m->tls_handshakes[1], (unsigned long long)m->tls_handshakes[0],
                (unsigned long long)m->tls_reloads[1], (unsigned long long)m->tls_reloads[0]);
    if (tls_not_after)
        sbuf_printf(b, "# HELP akidb_tls_certificate_expiry_seconds The serving certificate's "
                       "notAfter, in seconds since the Unix epoch.\n"
                       "# TYPE akidb_tls_certificate_expiry_seconds gauge\n"
                       "akidb_tls_certificate_expiry_seconds %lld\n", (long long)tls_not_after);
}
