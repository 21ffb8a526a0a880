/*
 * metrics.c - counters and gauges owned by one akidb handle.
 *
 * The metric list lives once, in the AKIDB__METRICS X-macro of metrics.h:
 * the enum, the names and the help texts are all generated from it, so a
 * metric cannot be counted under one name and rendered under another.
 * Labelled series (AKIDB__LABELLED_METRICS) follow the plain ones: rows
 * sharing a name form one family, so one list still generates everything.
 * Histograms keep per-bucket counts and render them cumulatively, as the
 * Prometheus text format wants.
 * Values are plain int64 updated with relaxed atomic builtins: they are
 * statistics, and no other memory is published through them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "akidb.h"
#include "common/metrics.h"

static const struct {
    const char *name, *labels, *type, *help;
} metric_info[AKIDB__M_COUNT] = {
#define AKIDB__METRIC_INFO(id, name, type, help) { name, "", type, help },
    AKIDB__METRICS(AKIDB__METRIC_INFO)
#undef AKIDB__METRIC_INFO
#define AKIDB__LMETRIC_INFO(id, name, labels, type, help) { name, labels, type, help },
    AKIDB__LABELLED_METRICS(AKIDB__LMETRIC_INFO)
#undef AKIDB__LMETRIC_INFO
};

static const struct {
    const char *name, *help;
} histo_info[AKIDB__H_COUNT] = {
#define AKIDB__HISTO_INFO(id, name, help) { name, help },
    AKIDB__HISTOGRAMS(AKIDB__HISTO_INFO)
#undef AKIDB__HISTO_INFO
};

const int64_t akidb__histogram_bounds_us[AKIDB__HISTO_BUCKETS] = {
    1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};

void akidb__metric_add(akidb__metrics *m, akidb__metric_id id, int64_t delta)
{
    __atomic_fetch_add(&m->value[id], delta, __ATOMIC_RELAXED);
}

void akidb__metric_set(akidb__metrics *m, akidb__metric_id id, int64_t value)
{
    __atomic_store_n(&m->value[id], value, __ATOMIC_RELAXED);
}

void akidb__histogram_observe(akidb__metrics *m, akidb__histogram_id id, int64_t us)
{
    akidb__histogram *h = &m->histo[id];
    int b = 0;
    while (b < AKIDB__HISTO_BUCKETS && us > akidb__histogram_bounds_us[b])
        b++;
    __atomic_fetch_add(&h->bucket[b], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->sum_us, us, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
}

/* "0.005" for 5000 us: a bucket bound in seconds, shortest exact form. */
static void bound_text(int64_t us, char *out, size_t len)
{
    snprintf(out, len, "%lld.%06lld", (long long)(us / 1000000), (long long)(us % 1000000));
    char *end = out + strlen(out) - 1;
    while (*end == '0')
        *end-- = '\0';
    if (*end == '.')
        *end = '\0';
}

static int64_t load(const int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Cumulative count of histogram h up to bucket b (b = BUCKETS: +Inf). */
static int64_t cumulative(const akidb__histogram *h, int b)
{
    int64_t n = 0;
    for (int i = 0; i <= b; i++)
        n += load(&h->bucket[i]);
    return n;
}

int akidb__metric_get(const akidb__metrics *m, const char *name, int64_t *value_out)
{
    for (int i = 0; i < AKIDB__M_COUNT; i++) {
        const char *n = metric_info[i].name, *l = metric_info[i].labels;
        size_t nl = strlen(n);
        int match = !*l ? strcmp(n, name) == 0
                        : strncmp(n, name, nl) == 0 && name[nl] == '{' &&
                          strncmp(name + nl + 1, l, strlen(l)) == 0 &&
                          strcmp(name + nl + 1 + strlen(l), "}") == 0;
        if (match) {
            *value_out = load(&m->value[i]);
            return 0;
        }
    }
    for (int i = 0; i < AKIDB__H_COUNT; i++) {
        const char *n = histo_info[i].name;
        size_t nl = strlen(n);
        if (strncmp(name, n, nl) != 0)
            continue;
        const akidb__histogram *h = &m->histo[i];
        if (strcmp(name + nl, "_count") == 0) {
            *value_out = load(&h->count);
            return 0;
        }
        for (int b = 0; b <= AKIDB__HISTO_BUCKETS; b++) {
            char want[64], bound[32];
            if (b < AKIDB__HISTO_BUCKETS)
                bound_text(akidb__histogram_bounds_us[b], bound, sizeof bound);
            else
                strcpy(bound, "+Inf");
            snprintf(want, sizeof want, "_bucket{le=\"%s\"}", bound);
            if (strcmp(name + nl, want) == 0) {
                *value_out = cumulative(h, b);
                return 0;
            }
        }
    }
    return -1;
}

/* A growing output string (akidb__out_malloc, for the caller). */
typedef struct out_buf {
    char *p;
    size_t len, cap;
    int failed;
} out_buf;

static void outf(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(out_buf *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (w < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)w < o->cap - o->len) {
            o->len += (size_t)w;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)w;
        char *np = akidb__out_malloc(cap);
        if (!np) {
            o->failed = 1;
            return;
        }
        memcpy(np, o->p, o->len + 1);
        akidb__out_free(o->p);
        o->p = np;
        o->cap = cap;
    }
}

char *akidb__metrics_render(const akidb__metrics *m)
{
    out_buf o = { akidb__out_malloc(4096), 0, 4096, 0 };
    if (!o.p)
        return NULL;
    o.p[0] = '\0';
    for (int i = 0; i < AKIDB__M_COUNT; i++) {
        const char *n = metric_info[i].name, *l = metric_info[i].labels;
        /* One HELP/TYPE per family: labelled rows of a family are adjacent. */
        if (i == 0 || strcmp(metric_info[i - 1].name, n) != 0)
            outf(&o, "# HELP %s %s\n# TYPE %s %s\n", n, metric_info[i].help, n,
                 metric_info[i].type);
        outf(&o, "%s%s%s%s %lld\n", n, *l ? "{" : "", l, *l ? "}" : "",
             (long long)load(&m->value[i]));
    }
    for (int i = 0; i < AKIDB__H_COUNT; i++) {
        const char *n = histo_info[i].name;
        const akidb__histogram *h = &m->histo[i];
        outf(&o, "# HELP %s %s\n# TYPE %s histogram\n", n, histo_info[i].help, n);
        for (int b = 0; b <= AKIDB__HISTO_BUCKETS; b++) {
            char bound[32];
            if (b < AKIDB__HISTO_BUCKETS)
                bound_text(akidb__histogram_bounds_us[b], bound, sizeof bound);
            else
                strcpy(bound, "+Inf");
            outf(&o, "%s_bucket{le=\"%s\"} %lld\n", n, bound, (long long)cumulative(h, b));
        }
        int64_t sum = load(&h->sum_us);
        outf(&o, "%s_sum %lld.%06lld\n%s_count %lld\n", n, (long long)(sum / 1000000),
             (long long)(sum % 1000000), n, (long long)load(&h->count));
    }
    if (o.failed) {
        akidb__out_free(o.p);
        return NULL;
    }
    return o.p;
}
