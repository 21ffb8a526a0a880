/*
 * bench_common.c - data loading, ground truth, recall, timing and RSS for the
 * HNSW benchmark.  See bench_common.h.
 *
 * Ground-truth cache layout (little-endian, host order; a cache is only ever
 * read on the machine that wrote it):
 *   char     magic[8]  "AKIGT01\0"
 *   uint32   n_base, nq, dim, k, source, reserved(0)
 *   uint64   checksum
 *   uint32   ids[nq*k]
 *   int64    dist[nq*k]
 */
#define _GNU_SOURCE
#include "bench_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char GT_MAGIC[8] = {'A', 'K', 'I', 'G', 'T', '0', '1', '\0'};

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

long bench_minor_faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(const double *v, int n)
{
    double s[64];
    if (n > 64)
        n = 64;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

int bench_rss_kb(long *rss_kb, long *hwm_kb)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    *rss_kb = -1;
    *hwm_kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return (*rss_kb >= 0 && *hwm_kb >= 0) ? 0 : -1;
}

/* Read exactly len bytes from fd; returns 0, or -1 on error/short read. */
static int read_full(int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

float *bench_load_idx(const char *path, uint32_t max_n, uint32_t *n_out, uint32_t *dim_out)
{
    int pfd[2];
    pid_t pid;
    unsigned char hdr[16], *pix = NULL;
    float *out = NULL;
    uint32_t n, dim;
    size_t total, i;
    int status, ok = 0;

    if (access(path, R_OK) != 0) {
        fprintf(stderr, "bench: cannot read %s: %s (install dataset-fashion-mnist)\n",
                path, strerror(errno));
        return NULL;
    }
    if (pipe(pfd) != 0) {
        perror("bench: pipe");
        return NULL;
    }
    pid = fork();
    if (pid < 0) {
        perror("bench: fork");
        close(pfd[0]);
        close(pfd[1]);
        return NULL;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execlp("gzip", "gzip", "-dc", path, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);

    if (read_full(pfd[0], hdr, sizeof hdr) != 0 || be32(hdr) != 0x00000803u) {
        fprintf(stderr, "bench: %s: not a gzip IDX3 image file\n", path);
        goto done;
    }
    n = be32(hdr + 4);
    dim = be32(hdr + 8) * be32(hdr + 12);
    if (n == 0 || dim == 0 || dim > 65536) {
        fprintf(stderr, "bench: %s: bad IDX3 header (n=%u dim=%u)\n", path, n, dim);
        goto done;
    }
    if (max_n && max_n < n)
        n = max_n;
    total = (size_t)n * dim;
    pix = malloc(total);
    out = malloc(total * sizeof(float));
    if (!pix || !out) {
        fprintf(stderr, "bench: out of memory loading %s\n", path);
        goto done;
    }
    if (read_full(pfd[0], pix, total) != 0) {
        fprintf(stderr, "bench: %s: truncated\n", path);
        goto done;
    }
    for (i = 0; i < total; i++)
        out[i] = (float)pix[i];
    *n_out = n;
    *dim_out = dim;
    ok = 1;
done:
    close(pfd[0]); /* gzip may get SIGPIPE when we stop early: expected */
    waitpid(pid, &status, 0);
    free(pix);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

int64_t bench_l2_exact(const float *a, const float *b, uint32_t dim)
{
    int32_t s = 0; /* 784 * 255^2 < 2^31: no overflow for this data set */
    uint32_t i;
    for (i = 0; i < dim; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        s += d * d;
    }
    return s;
}

void bench_brute_topk(const float *base, uint32_t n, uint32_t dim, const float *q,
                      uint32_t k, uint32_t *ids, int64_t *dist)
{
    uint32_t i, filled = 0;
    for (i = 0; i < n; i++) {
        int64_t d = bench_l2_exact(base + (size_t)i * dim, q, dim);
        uint32_t j;
        if (filled == k && d >= dist[k - 1])
            continue; /* equal distance: the lower row (already in) wins */
        j = filled < k ? filled++ : k - 1;
        while (j > 0 && dist[j - 1] > d) {
            dist[j] = dist[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        dist[j] = d;
        ids[j] = i;
    }
    for (i = filled; i < k; i++) {
        ids[i] = BENCH_NO_ID;
        dist[i] = INT64_MAX;
    }
}

uint64_t bench_checksum(const float *v, size_t n_floats)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the values as ints */
    size_t i;
    for (i = 0; i < n_floats; i++) {
        h ^= (uint64_t)(int64_t)v[i] + i;
        h *= 1099511628211ull;
    }
    return h;
}

const char *bench_gt_source_name(uint32_t source)
{
    switch (source) {
    case BENCH_GT_SRC_AKIDB_EXACT: return "akidb-exact";
    case BENCH_GT_SRC_BRUTE: return "brute-force";
    default: return "unknown";
    }
}

int bench_gt_alloc(bench_gt *gt, uint32_t n_base, uint32_t nq, uint32_t dim, uint32_t k,
                   uint64_t checksum)
{
    memset(gt, 0, sizeof *gt);
    gt->n_base = n_base;
    gt->nq = nq;
    gt->dim = dim;
    gt->k = k;
    gt->checksum = checksum;
    gt->ids = calloc((size_t)nq * k, sizeof *gt->ids);
    gt->dist = calloc((size_t)nq * k, sizeof *gt->dist);
    if (!gt->ids || !gt->dist) {
        bench_gt_free(gt);
        return -1;
    }
    return 0;
}

void bench_gt_free(bench_gt *gt)
{
    free(gt->ids);
    free(gt->dist);
    gt->ids = NULL;
    gt->dist = NULL;
}

int bench_gt_load(const char *path, uint32_t n_base, uint32_t nq, uint32_t dim, uint32_t k,
                  uint64_t checksum, bench_gt *gt)
{
    char magic[8];
    uint32_t h[6];
    uint64_t sum;
    size_t m = (size_t)nq * k, i;
    FILE *f = fopen(path, "rb");

    memset(gt, 0, sizeof *gt);
    if (!f)
        return -1;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, GT_MAGIC, 8) != 0 ||
        fread(h, sizeof h[0], 6, f) != 6 || fread(&sum, sizeof sum, 1, f) != 1 ||
        h[0] != n_base || h[1] != nq || h[2] != dim || h[3] != k || sum != checksum)
        goto stale;
    if (bench_gt_alloc(gt, n_base, nq, dim, k, checksum) != 0)
        goto stale;
    gt->source = h[4];
    if (fread(gt->ids, sizeof *gt->ids, m, f) != m ||
        fread(gt->dist, sizeof *gt->dist, m, f) != m)
        goto stale;
    for (i = 0; i < m; i++)
        if (gt->ids[i] >= n_base && gt->ids[i] != BENCH_NO_ID)
            goto stale;
    fclose(f);
    return 0;
stale:
    bench_gt_free(gt);
    fclose(f);
    return -1;
}

int bench_gt_save(const char *path, const bench_gt *gt)
{
    char tmp[4096];
    uint32_t h[6] = {gt->n_base, gt->nq, gt->dim, gt->k, gt->source, 0};
    size_t m = (size_t)gt->nq * gt->k;
    FILE *f;
    int ok;

    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "bench: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    ok = fwrite(GT_MAGIC, 1, 8, f) == 8 && fwrite(h, sizeof h[0], 6, f) == 6 &&
         fwrite(&gt->checksum, sizeof gt->checksum, 1, f) == 1 &&
         fwrite(gt->ids, sizeof *gt->ids, m, f) == m &&
         fwrite(gt->dist, sizeof *gt->dist, m, f) == m;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "bench: cannot write %s\n", path);
        remove(tmp);
        return -1;
    }
    return 0;
}

int bench_gt_brute(bench_gt *gt, const float *base, const float *queries)
{
    uint32_t q;
    for (q = 0; q < gt->nq; q++)
        bench_brute_topk(base, gt->n_base, gt->dim, queries + (size_t)q * gt->dim, gt->k,
                         gt->ids + (size_t)q * gt->k, gt->dist + (size_t)q * gt->k);
    gt->source = BENCH_GT_SRC_BRUTE;
    return 0;
}

double bench_recall(const bench_gt *gt, const float *base, const float *queries,
                    const uint32_t *result_rows, double *recall_ids_out)
{
    uint64_t hits = 0, hits_ids = 0;
    uint32_t q, i, j, k = gt->k;

    for (q = 0; q < gt->nq; q++) {
        const uint32_t *res = result_rows + (size_t)q * k;
        const uint32_t *tru = gt->ids + (size_t)q * k;
        const float *qv = queries + (size_t)q * gt->dim;
        int64_t kth = gt->dist[(size_t)q * k + k - 1];
        for (i = 0; i < k; i++) {
            int dup = 0;
            if (res[i] == BENCH_NO_ID || res[i] >= gt->n_base)
                continue;
            for (j = 0; j < i; j++)
                dup |= res[j] == res[i];
            if (dup)
                continue;
            if (bench_l2_exact(base + (size_t)res[i] * gt->dim, qv, gt->dim) <= kth)
                hits++;
            for (j = 0; j < k; j++)
                if (tru[j] == res[i]) {
                    hits_ids++;
                    break;
                }
        }
    }
    if (recall_ids_out)
        *recall_ids_out = (double)hits_ids / ((double)gt->nq * k);
    return (double)hits / ((double)gt->nq * k);
}

int bench_parse_list(const char *s, uint32_t *out, int max)
{
    int n = 0;
    while (*s) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v == 0 || v > 1000000 || n == max)
            return 0;
        out[n++] = (uint32_t)v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return 0;
    }
    return n;
}
