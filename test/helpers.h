/*
 * helpers.h - what many test files share beside the runner: a seeded PRNG
 * (splitmix64) and the distributions drawn from it.
 *
 * Why here and header-only: the same generator was copied into ten test
 * files; one copy keeps every test's stream identical by construction.
 * The functions are static inline so the aarch64 test build (runner.c,
 * test_distance.c and test_hnsw.c with only the index code) uses them with
 * nothing more to link.  Each takes the caller's state, so tests stay
 * deterministic and thread safe (one state per thread).
 *
 * helpers.c adds the one piece that needs the library: it makes the
 * ASSERT_RC/ASSERT_OK failure text carry akidb_errmsg(NULL).
 */
#ifndef AKIDB_TEST_HELPERS_H
#define AKIDB_TEST_HELPERS_H

#include <math.h>
#include <stdint.h>
#include <sys/types.h>

/* splitmix64 (Steele, Lea, Flood 2014): the next 64 random bits of *s. */
static inline uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 random bits. */
static inline double rand_u01(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in [-1, 1), rounded to float. */
static inline float rand_sym(uint64_t *s)
{
    return (float)((double)(splitmix64(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

/* Uniform in 0..n-1 (n > 0; the modulo bias is irrelevant for tests). */
static inline uint32_t rand_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(splitmix64(s) % n);
}

/* Standard normal (Box-Muller, one value per two draws). */
static inline double rand_gauss(uint64_t *s)
{
    double u = rand_u01(s), v = rand_u01(s);
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* The `akidb` tool of this test binary's build, or $AKIDB_CLI (helpers.c;
 * native builds only). */
const char *akt_tool_path(void);

/* fork() with stdio flushed first; the child dies with its parent. */
pid_t akt_fork_child(void);

/* Wait for pid at most secs (times AKT_TIMEOUT_SCALE) and return its wait
 * status; a child that runs longer is killed and the test fails. */
int akt_wait_child(pid_t pid, double secs, const char *what);

#endif
