/*
 * alloc.c - the default per-handle allocator (the C library's malloc), and
 * the allocator of memory handed to callers (akidb_malloc/akidb_free).
 *
 * Kept in its own file so the index can be built and tested without the
 * rest of the library (the aarch64 cross build links only alloc.c,
 * distance.c and hnsw.c).
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "common/alloc.h"

static void *default_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void *default_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    return realloc(ptr, size);
}

static void default_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

const akidb_allocator akidb__default_allocator = {
    default_malloc, default_realloc, default_free, NULL
};

void akidb__advise_huge(const akidb_allocator *a, void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    if (!p || n < AKIDB__HUGE_ADVICE_MIN || a->malloc_fn != default_malloc)
        return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)p + n) & ~(page - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)a;
    (void)p;
    (void)n;
#endif
}

void *akidb__out_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void akidb__out_free(void *p)
{
    free(p);
}
