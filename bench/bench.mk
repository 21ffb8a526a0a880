# bench/bench.mk - HNSW benchmark: AkiDB against hnswlib 0.6.2 on
# Fashion-MNIST (60k x 784, 1000 queries, k=10, M=16, ef_construction=200).
#
#   make bench                      (top level: installs deps, then this)
#   make -f bench/bench.mk          build both programs and run the script
#   make -f bench/bench.mk programs build only
#   make -f bench/bench.mk BENCH_ARGS="--n 5000 --nq 200"   quick smoke run
#   make -f bench/bench.mk AKIDB_ARGS="--sync none"          AkiDB without fsync
#
# Expects the library at $(LIB) (built by the top-level Makefile) and
# scripts/deps.sh bench to have installed libhnswlib-dev, g++ and
# dataset-fashion-mnist.  Output goes to $(OUT): the programs, the shared
# ground-truth cache, the raw log and the markdown table.
#
# Flags: AkiDB's side is plain -O2 with no -march, because libakidb picks
# its SIMD kernels at run time and a user's build does not know the target
# CPU.  hnswlib is header-only and selects SIMD at compile time, so it is
# built the way it is meant to be used: -O3 -march=native.  membw.c (the
# memory-bandwidth yard stick) is also -O3 -march=native, so the reference
# is the best this core can do.

BUILD      ?= build
LIB        ?= $(BUILD)/libakidb.a
OUT        ?= $(BUILD)/bench
CC         ?= cc
CXX        ?= g++
include bench/libs.mk
BENCH_ARGS ?=
AKIDB_ARGS ?=
BENCH_ROUNDS ?= 3

B_WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
              -Wmissing-prototypes -Wformat=2 -Wvla -Wundef
B_CFLAGS   := -std=c11 -O2 $(B_WARN) -Iinclude -Ibench
B_NATIVE   := -std=c11 -O3 -march=native $(B_WARN)
B_CXXFLAGS := -std=c++11 -O3 -march=native -Wall -Ibench

.PHONY: all run programs clean fresh-memory

all: run

run: programs
	AKIDB_ARGS='$(AKIDB_ARGS)' BENCH_ROUNDS='$(BENCH_ROUNDS)' bench/run_hnsw_bench.sh $(OUT) $(BENCH_ARGS)

programs: $(OUT)/bench_hnsw $(OUT)/hnswlib_peer

$(OUT):
	mkdir -p $@

$(OUT)/bench_common.o: bench/bench_common.c bench/bench_common.h | $(OUT)
	$(CC) $(B_CFLAGS) -c -o $@ $<

$(OUT)/bench_hnsw.o: bench/bench_hnsw.c bench/bench_common.h include/akidb.h | $(OUT)
	$(CC) $(B_CFLAGS) -c -o $@ $<

$(OUT)/membw.o: bench/membw.c | $(OUT)
	$(CC) $(B_NATIVE) -c -o $@ $<

# The fresh-memory yard stick (bench/fresh_memory.c): what first-touching
# memory costs here, next to rewriting it; explains load times on VMs.
fresh-memory: $(OUT)/fresh_memory
	$(OUT)/fresh_memory | tee $(OUT)/fresh_memory.log

$(OUT)/fresh_memory: bench/fresh_memory.c | $(OUT)
	$(CC) $(B_CFLAGS) -o $@ $<

$(OUT)/bench_hnsw: $(OUT)/bench_hnsw.o $(OUT)/bench_common.o $(OUT)/membw.o $(LIB)
	$(CC) -o $@ $(OUT)/bench_hnsw.o $(OUT)/bench_common.o $(OUT)/membw.o $(LIB) $(BENCH_LIBS)

$(OUT)/hnswlib_peer: bench/hnswlib_peer.cpp bench/bench_common.h $(OUT)/bench_common.o
	@test -f /usr/include/hnswlib/hnswlib.h || \
	  { echo "bench: hnswlib headers missing: run scripts/deps.sh bench" >&2; exit 1; }
	$(CXX) $(B_CXXFLAGS) -o $@ $< $(OUT)/bench_common.o -lm -pthread

clean:
	rm -rf $(OUT)

# The durability benchmark (issue 3): `make -f bench/bench.mk durability`.
include bench/durability.mk

# The object-store benchmark (issue 4): `make -f bench/bench.mk store`.
include bench/store.mk

# The snapshot benchmark (issue 5): `make -f bench/bench.mk snapshot`.
include bench/snapshot.mk

# The akidb-server load test (issue 13): `make -f bench/bench.mk server`.
include bench/server.mk

# The tiering benchmark (issue 12): `make -f bench/bench.mk tier`.
include bench/tier.mk

# The fast-ingest benchmark (issue 11): `make -f bench/bench.mk ingest`.
include bench/ingest.mk
