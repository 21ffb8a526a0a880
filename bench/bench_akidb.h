/*
 * bench_akidb.h - what the benchmark programs that drive libakidb share
 * (bench_durability, bench_ingest, bench_snapshot): dying with a message,
 * checking a result code, removing a scratch tree, and the clustered
 * data the durability and ingest benchmarks write.  Kept apart from
 * bench_common.h because the C++ hnswlib peer links bench_common.c and
 * has no libakidb.
 */
#ifndef AKIDB_BENCH_AKIDB_H
#define AKIDB_BENCH_AKIDB_H

#include <stdint.h>

#include "akidb.h"

/* Print "PROGRAM: message" to stderr and exit(1). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* rc not AKIDB_OK: die naming `what`, the code and the handle's message. */
void bench_check(int rc, const akidb *db, const char *what);

/* Remove the tree at path (files and directories; a missing path is not
 * an error; anything that cannot be removed is reported and skipped). */
void bench_rm_tree(const char *path);

/* A seeded pseudo-random stream: splitmix64, and floats uniform in [0, 1). */
uint64_t bench_splitmix64(uint64_t *s);
float bench_unit(uint64_t *s);

/* n x dim floats (malloc'd; dies when out of memory): 256 centres uniform
 * in [0,1)^dim, each row a random centre plus per-coordinate noise of
 * 0.1 * (sum of 4 uniforms - 2), i.e. roughly Gaussian with standard
 * deviation 0.058.  Seed 42: the same rows in every program and run. */
float *bench_clustered(uint32_t n, uint32_t dim);

#endif
