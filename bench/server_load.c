/*
 * server_load.c - open-loop HTTP load generator for akidb-server.
 *
 *   server_load --port P --key KEY --collection NAME --dim D --ids N
 *               --rate R --duration S [--connections C] [--mix 70,20,10]
 *               [--seed X]
 *
 * Open loop: request i is due at t0 + i/R, whatever happened to the
 * earlier ones.  A due request goes out on an idle keep-alive connection;
 * when all C connections are busy it waits in a queue.  Its latency is
 * measured from its *due* time to the last byte of its answer, so a stall
 * of the server shows up in the percentiles of every request that should
 * have been sent during it (no coordinated omission, unlike wrk, whose
 * closed loop simply stops sending while the server stalls).  The timer
 * is checked every millisecond; lateness of the generator itself counts
 * against the server, which makes the figures conservative.
 *
 * The mix (percent search, insert, get): search = POST .../search with a
 * random query, k 10; insert = POST .../vectors with one random vector;
 * get = GET .../vectors/{random id in 1..N} or, half of the time, GET
 * .../tier (the "get/tier").  A non-2xx answer or a
 * connection error is an error.  Output: one JSON object on stdout.
 */
#include <http_parser.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct conn {
    uv_tcp_t tcp;
    http_parser parser;
    int busy, connected, dead;
    uint64_t due_ns;
    int kind;
    char *wbuf;
    struct gen *g;
} conn;

typedef struct gen {
    uv_loop_t *loop;
    uv_timer_t tick;
    struct sockaddr_in addr;
    const char *key, *coll;
    int dim, n_conns, mix[3];
    uint64_t n_ids, rate, duration_s, seed;
    uint64_t t0, next_i, total;
    uint64_t *queue;            /* due times waiting for a connection */
    size_t q_head, q_tail, q_cap;
    conn *conns;
    double *lat_ms;
    size_t n_lat;
    uint64_t errors, completed, sent, status_2xx, by_kind[3], conn_errors;
    uint64_t max_queue;
    int done_sending;
    http_parser_settings ps;
    uint64_t rng;
} gen;

static uint64_t rnd(gen *g)
{
    uint64_t z = (g->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rndf(gen *g)
{
    return (double)(rnd(g) >> 11) / 9007199254740992.0;
}

static void on_write(uv_write_t *w, int status)
{
    conn *c = w->data;
    free(c->wbuf);
    c->wbuf = NULL;
    free(w);
    if (status < 0) {
        c->g->conn_errors++;
    }
}

static void start_request(gen *g, conn *c, uint64_t due)
{
    char body[16384], path[256];
    int n = 0, kind;
    uint64_t r = rnd(g) % 100;
    kind = r < (uint64_t)g->mix[0] ? 0 : r < (uint64_t)(g->mix[0] + g->mix[1]) ? 1 : 2;
    const char *method = "POST";
    if (kind == 0 || kind == 1) {
        n += snprintf(body + n, sizeof body - n, kind == 0 ? "{\"k\":10,\"vector\":[" : "{\"vectors\":[{\"vector\":[");
        for (int i = 0; i < g->dim; i++)
            n += snprintf(body + n, sizeof body - n, "%s%.4f", i ? "," : "", rndf(g) * 2 - 1);
        n += snprintf(body + n, sizeof body - n, kind == 0 ? "]}" : "]}]}");
        snprintf(path, sizeof path, "/v1/collections/%s/%s", g->coll, kind == 0 ? "search" : "vectors");
    } else {
        method = "GET";
        if (rnd(g) & 1)
            snprintf(path, sizeof path, "/v1/collections/%s/tier", g->coll);
        else
            snprintf(path, sizeof path, "/v1/collections/%s/vectors/%llu", g->coll,
                     (unsigned long long)(1 + rnd(g) % g->n_ids));
    }
    size_t cap = (size_t)n + 512;
    c->wbuf = malloc(cap);
    int len = snprintf(c->wbuf, cap, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%.*s",
                       method, path, g->key, kind == 2 ? 0 : n, kind == 2 ? 0 : n, body);
    c->busy = 1;
    c->due_ns = due;
    c->kind = kind;
    g->sent++;
    g->by_kind[kind]++;
    uv_write_t *w = malloc(sizeof *w);
    w->data = c;
    uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)len);
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        free(c->wbuf);
        c->wbuf = NULL;
        free(w);
        g->errors++;
        c->busy = 0;
        c->dead = 1;
    }
}

static void dispatch(gen *g)
{
    for (int i = 0; i < g->n_conns && g->q_head != g->q_tail; i++) {
        conn *c = &g->conns[i];
        if (c->busy || !c->connected || c->dead)
            continue;
        uint64_t due = g->queue[g->q_head % g->q_cap];
        g->q_head++;
        start_request(g, c, due);
    }
}

static int on_complete(http_parser *p)
{
    conn *c = p->data;
    gen *g = c->g;
    uint64_t now = uv_hrtime();
    g->lat_ms[g->n_lat++] = (double)(now - c->due_ns) / 1e6;
    g->completed++;
    if (p->status_code >= 200 && p->status_code < 300)
        g->status_2xx++;
    else
        g->errors++;
    c->busy = 0;
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    static char buf[1 << 16];
    (void)s;
    b->base = buf;
    b->len = sizeof buf;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    conn *c = st->data;
    gen *g = c->g;
    if (n < 0) {
        if (c->busy)
            g->errors++;
        g->conn_errors++;
        c->dead = 1;
        c->busy = 0;
        uv_read_stop(st);
        return;
    }
    size_t k = http_parser_execute(&c->parser, &g->ps, b->base, (size_t)n);
    if (k != (size_t)n) {
        g->conn_errors++;
        c->dead = 1;
        uv_read_stop(st);
    }
    dispatch(g);
}

static void on_connect(uv_connect_t *r, int status)
{
    conn *c = r->data;
    free(r);
    if (status < 0) {
        c->g->conn_errors++;
        c->dead = 1;
        return;
    }
    c->connected = 1;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    dispatch(c->g);
}

static void on_tick(uv_timer_t *t)
{
    gen *g = t->data;
    uint64_t now = uv_hrtime();
    while (g->next_i < g->total) {
        uint64_t due = g->t0 + (uint64_t)((double)g->next_i * 1e9 / (double)g->rate);
        if (due > now)
            break;
        if (g->q_tail - g->q_head == g->q_cap) {
            g->errors++;            /* queue overflow: counts as an error */
        } else {
            g->queue[g->q_tail % g->q_cap] = due;
            g->q_tail++;
        }
        g->next_i++;
    }
    if (g->q_tail - g->q_head > g->max_queue)
        g->max_queue = g->q_tail - g->q_head;
    dispatch(g);
    int busy = 0;
    for (int i = 0; i < g->n_conns; i++)
        busy |= g->conns[i].busy;
    /* Stop when all are sent and answered, or 10 s after the end. */
    if (g->next_i >= g->total && ((g->q_head == g->q_tail && !busy) ||
                                  now > g->t0 + (g->duration_s + 10) * 1000000000ull)) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        for (int i = 0; i < g->n_conns; i++)
            uv_close((uv_handle_t *)&g->conns[i].tcp, NULL);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return -1;              /* printed as null */
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    return v[i ? i - 1 : 0];
}

/* A latency as JSON: milliseconds, or null when nothing completed. */
static const char *ms(char *buf, double v)
{
    if (v < 0)
        return "null";
    snprintf(buf, 32, "%.3f", v);
    return buf;
}

int main(int argc, char **argv)
{
    gen G;
    memset(&G, 0, sizeof G);
    gen *g = &G;
    int port = 8080;
    g->n_conns = 32;
    g->mix[0] = 70;
    g->mix[1] = 20;
    g->mix[2] = 10;
    g->rate = 100;
    g->duration_s = 10;
    g->dim = 128;
    g->n_ids = 1000;
    g->seed = 42;
    g->coll = "bench";
    g->key = "";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--key")) g->key = v;
        else if (!strcmp(a, "--collection")) g->coll = v;
        else if (!strcmp(a, "--dim")) g->dim = atoi(v);
        else if (!strcmp(a, "--ids")) g->n_ids = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--rate")) g->rate = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--duration")) g->duration_s = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--connections")) g->n_conns = atoi(v);
        else if (!strcmp(a, "--seed")) g->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--mix")) sscanf(v, "%d,%d,%d", &g->mix[0], &g->mix[1], &g->mix[2]);
        else {
            fprintf(stderr, "server_load: unknown option %s\n", a);
            return 2;
        }
    }
    if (g->rate == 0 || g->dim <= 0 || g->dim > 1024 || g->n_conns <= 0 || g->n_ids == 0 ||
        g->mix[0] + g->mix[1] + g->mix[2] != 100) {
        fprintf(stderr, "server_load: bad arguments\n");
        return 2;
    }
    g->rng = g->seed;
    g->total = g->rate * g->duration_s;
    g->q_cap = (size_t)g->total + 1;
    g->queue = malloc(g->q_cap * sizeof *g->queue);
    g->lat_ms = malloc(g->q_cap * sizeof *g->lat_ms);
    g->conns = calloc((size_t)g->n_conns, sizeof *g->conns);
    g->loop = uv_default_loop();
    g->ps.on_message_complete = on_complete;
    uv_ip4_addr("127.0.0.1", port, &g->addr);
    for (int i = 0; i < g->n_conns; i++) {
        conn *c = &g->conns[i];
        c->g = g;
        http_parser_init(&c->parser, HTTP_RESPONSE);
        c->parser.data = c;
        uv_tcp_init(g->loop, &c->tcp);
        uv_tcp_nodelay(&c->tcp, 1);
        c->tcp.data = c;
        uv_connect_t *r = malloc(sizeof *r);
        r->data = c;
        uv_tcp_connect(r, &c->tcp, (struct sockaddr *)&g->addr, on_connect);
    }
    /* Let the connections open before the clock starts. */
    for (int spin = 0; spin < 200; spin++) {
        uv_run(g->loop, UV_RUN_NOWAIT);
        int up = 0;
        for (int i = 0; i < g->n_conns; i++)
            up += g->conns[i].connected || g->conns[i].dead;
        if (up == g->n_conns)
            break;
        uv_sleep(5);
    }
    g->t0 = uv_hrtime();
    uv_timer_init(g->loop, &g->tick);
    g->tick.data = g;
    uv_timer_start(&g->tick, on_tick, 0, 1);
    uv_run(g->loop, UV_RUN_DEFAULT);
    double wall = (double)(uv_hrtime() - g->t0) / 1e9;
    /* Never sent (still queued at the cut-off) or never answered: errors. */
    g->errors += (g->total - g->sent) + (g->sent - g->completed);
    qsort(g->lat_ms, g->n_lat, sizeof *g->lat_ms, cmp_d);
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    printf("{\"rate\": %llu, \"duration_s\": %llu, \"connections\": %d, \"mix\": [%d, %d, %d], "
           "\"scheduled\": %llu, \"sent\": %llu, \"completed\": %llu, \"ok\": %llu, "
           "\"errors\": %llu, \"connection_errors\": %llu, \"achieved_rps\": %.1f, "
           "\"p50_ms\": %s, \"p95_ms\": %s, \"p99_ms\": %s, \"p999_ms\": %s, "
           "\"max_ms\": %s, \"max_queue\": %llu, \"by_kind\": [%llu, %llu, %llu]}\n",
           (unsigned long long)g->rate, (unsigned long long)g->duration_s, g->n_conns,
           g->mix[0], g->mix[1], g->mix[2], (unsigned long long)g->total,
           (unsigned long long)g->sent, (unsigned long long)g->completed,
           (unsigned long long)g->status_2xx, (unsigned long long)g->errors,
           (unsigned long long)g->conn_errors, (double)g->completed / wall,
           ms(b1, pct(g->lat_ms, g->n_lat, 50)), ms(b2, pct(g->lat_ms, g->n_lat, 95)),
           ms(b3, pct(g->lat_ms, g->n_lat, 99)), ms(b4, pct(g->lat_ms, g->n_lat, 99.9)),
           ms(b5, g->n_lat ? g->lat_ms[g->n_lat - 1] : -1), (unsigned long long)g->max_queue,
           (unsigned long long)g->by_kind[0], (unsigned long long)g->by_kind[1],
           (unsigned long long)g->by_kind[2]);
    return g->errors || g->conn_errors ? 1 : 0;
}
