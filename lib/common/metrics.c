/*
 * metrics.c - counters and gauges owned by one akidb handle.
 *
 * The metric list lives once, in the AKIDB__METRICS X-macro of metrics.h:
 * the enum, the names and the help texts are all generated from it, so a
 * metric cannot be counted under one name and rendered under another.
 * Values are plain int64 updated with relaxed atomic builtins: they are
 * statistics, and no other memory is published through them.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "akidb.h"
#include "common/metrics.h"

static const struct {
    const char *name, *type, *help;
} metric_info[AKIDB__M_COUNT] = {
#define AKIDB__METRIC_INFO(id, name, type, help) { name, type, help },
    AKIDB__METRICS(AKIDB__METRIC_INFO)
#undef AKIDB__METRIC_INFO
};

void akidb__metric_add(akidb__metrics *m, akidb__metric_id id, int64_t delta)
{
    __atomic_fetch_add(&m->value[id], delta, __ATOMIC_RELAXED);
}

void akidb__metric_set(akidb__metrics *m, akidb__metric_id id, int64_t value)
{
    __atomic_store_n(&m->value[id], value, __ATOMIC_RELAXED);
}

int akidb__metric_get(const akidb__metrics *m, const char *name, int64_t *value_out)
{
    for (int i = 0; i < AKIDB__M_COUNT; i++)
        if (strcmp(metric_info[i].name, name) == 0) {
            *value_out = __atomic_load_n(&m->value[i], __ATOMIC_RELAXED);
            return 0;
        }
    return -1;
}

char *akidb__metrics_render(const akidb__metrics *m)
{
    size_t cap = 256;
    for (int i = 0; i < AKIDB__M_COUNT; i++)
        cap += strlen(metric_info[i].name) * 3 + strlen(metric_info[i].help) + 64;
    char *out = akidb__out_malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    for (int i = 0; i < AKIDB__M_COUNT; i++) {
        int w = snprintf(out + o, cap - o, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n",
                         metric_info[i].name, metric_info[i].help, metric_info[i].name,
                         metric_info[i].type, metric_info[i].name,
                         (long long)__atomic_load_n(&m->value[i], __ATOMIC_RELAXED));
        if (w < 0 || (size_t)w >= cap - o)
            break;   /* cannot happen: cap was sized for every line */
        o += (size_t)w;
    }
    out[o] = '\0';
    return out;
}
