/*
 * alloc.h - allocation through the per-handle akidb_allocator.
 *
 * Every byte the library keeps for itself goes through these helpers so an
 * embedder's allocator (an arena, a counting or failing allocator in tests)
 * sees all of it.  They are inline so the distance/index code can be built
 * alone (the aarch64 cross build) without the rest of the library.
 *
 * Sizes are checked for overflow: akidb__alloc_array(a, n, size) returns NULL
 * when n * size does not fit in size_t, exactly as if memory had run out.
 */
#ifndef AKIDB_ALLOC_H
#define AKIDB_ALLOC_H

#include <stdint.h>
#include <string.h>
#include "akidb.h"

static inline void *akidb__malloc(const akidb_allocator *a, size_t n)
{
    return a->malloc_fn(a->ctx, n ? n : 1);
}

static inline void akidb__free(const akidb_allocator *a, void *p)
{
    if (p)
        a->free_fn(a->ctx, p);
}

static inline void *akidb__realloc(const akidb_allocator *a, void *p, size_t n)
{
    return a->realloc_fn(a->ctx, p, n ? n : 1);
}

static inline int akidb__mul_overflows(size_t n, size_t size)
{
    return size != 0 && n > SIZE_MAX / size;
}

static inline void *akidb__alloc_array(const akidb_allocator *a, size_t n, size_t size)
{
    if (akidb__mul_overflows(n, size))
        return NULL;
    return akidb__malloc(a, n * size);
}

static inline void *akidb__calloc(const akidb_allocator *a, size_t n, size_t size)
{
    if (akidb__mul_overflows(n, size))
        return NULL;
    void *p = akidb__malloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static inline void *akidb__realloc_array(const akidb_allocator *a, void *p, size_t n, size_t size)
{
    if (akidb__mul_overflows(n, size))
        return NULL;
    return akidb__realloc(a, p, n * size);
}

static inline char *akidb__strdup(const akidb_allocator *a, const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = (char *)akidb__malloc(a, len);
    if (p)
        memcpy(p, s, len);
    return p;
}

/* Aligned blocks: over-allocate, and keep the offset back to the real start
 * in the byte just before the aligned pointer.  align is a power of two,
 * 2..128. */
static inline void *akidb__aligned_alloc(const akidb_allocator *a, size_t n, size_t align)
{
    if (n > SIZE_MAX - align)
        return NULL;
    unsigned char *raw = (unsigned char *)akidb__malloc(a, n + align);
    if (!raw)
        return NULL;
    uintptr_t addr = ((uintptr_t)raw + align) & ~(uintptr_t)(align - 1);
    unsigned char *p = (unsigned char *)addr;
    p[-1] = (unsigned char)(p - raw);
    return p;
}

static inline void akidb__aligned_free(const akidb_allocator *a, void *p)
{
    if (p) {
        unsigned char *q = (unsigned char *)p;
        akidb__free(a, q - q[-1]);
    }
}

/* AKIDB__SANITIZED: 1 in ASan and TSan builds (gcc or clang), whose
 * allocator replaces malloc and keeps freed memory: the index then takes
 * its chunks from the allocator (hnsw.c), the heap is not trimmed
 * (tier.c), and RSS figures say nothing (test_tier.c). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define AKIDB__SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define AKIDB__SANITIZED 1
#endif
#endif
#ifndef AKIDB__SANITIZED
#define AKIDB__SANITIZED 0
#endif

/* The default allocator: the C library's. */
extern const akidb_allocator akidb__default_allocator;

/* A big buffer (at least AKIDB__HUGE_ADVICE_MIN bytes) of the default
 * allocator that is about to be filled for the first time: ask the kernel
 * for transparent huge pages on its page-aligned interior, so filling it
 * takes one page fault per 2 MiB instead of one per 4 KiB.  Loads decode
 * tens of MB into fresh buffers (glibc maps a block that large anew each
 * time), and under some hypervisors every fault is a trip to the host:
 * on the benchmark VM a fresh 4 KiB page costs ~16 us, i.e. ~250 MB/s,
 * and a 10k x 512 restore spent more time faulting than decoding
 * (docs/BENCHMARKS.md, `make -f bench/bench.mk fresh-memory`).
 * Advice only: a no-op for smaller buffers, for a custom allocator (its
 * memory is the embedder's business) and without THP; never fails. */
#define AKIDB__HUGE_ADVICE_MIN ((size_t)4 << 20)
void akidb__advise_huge(const akidb_allocator *a, void *p, size_t n);

/* Memory handed to callers, freed with akidb_free(): always the C
 * library's malloc, never the per-handle allocator, so akidb_free() needs
 * no handle (the public akidb_malloc/akidb_free are these). */
void *akidb__out_malloc(size_t n);
void akidb__out_free(void *p);

#endif
