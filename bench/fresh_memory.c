/*
 * fresh_memory.c - what first-touching fresh anonymous memory costs on
 * this machine, the yard stick for load times (snapshot restore, a
 * collection coming back to RAM, reopen).
 *
 * Every load writes its vectors into memory the process has not touched
 * before (decode buffers, the index's chunks).  On bare metal a first
 * touch costs a fraction of a microsecond per 4 KiB page; under some
 * hypervisors each fault is a trip to the host and costs 10-20 us, so a
 * 200 MB load pays seconds before it does any work.  This program maps
 * 256 MiB three times with 4 KiB pages and three times with transparent
 * huge pages (MADV_HUGEPAGE), touches one byte per page, then rewrites the
 * whole block (memory already mapped: the bandwidth a load would have if
 * the memory were not fresh), and unmaps it.
 *
 *   make -f bench/bench.mk fresh-memory
 *
 * Output: one line per round, `RESULT kind=fresh ...` with the times.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define BYTES ((size_t)256 << 20)
#define PAGE ((size_t)4096)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void)
{
    for (int huge = 0; huge < 2; huge++) {
        for (int round = 1; round <= 3; round++) {
            volatile char *p = mmap(NULL, BYTES, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) {
                perror("fresh_memory: mmap");
                return 1;
            }
#ifdef MADV_HUGEPAGE
            if (huge)
                madvise((void *)p, BYTES, MADV_HUGEPAGE);
#endif
            double t0 = now();
            for (size_t i = 0; i < BYTES; i += PAGE)
                p[i] = 1;
            double touch = now() - t0;
            t0 = now();
            memset((void *)p, 2, BYTES);
            double rewrite = now() - t0;
            printf("RESULT kind=fresh pages=%s round=%d mib=%zu touch_ms=%.1f "
                   "us_per_4k=%.2f rewrite_ms=%.1f fresh_mb_s=%.0f rewrite_mb_s=%.0f\n",
                   huge ? "thp" : "4k", round, BYTES >> 20, touch * 1e3,
                   touch * 1e6 / (double)(BYTES / PAGE), rewrite * 1e3,
                   (double)BYTES / 1e6 / touch, (double)BYTES / 1e6 / rewrite);
            munmap((void *)p, BYTES);
        }
    }
    return 0;
}
