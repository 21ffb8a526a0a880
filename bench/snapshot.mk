# bench/snapshot.mk - the snapshot benchmark (issue 5): akidb_snapshot_create
# and akidb_snapshot_restore (local store) for 10k and 100k vectors of
# 512-d, the snapshot's size next to the same rows as JSON lines, and DuckDB
# (@duckdb/node-api, SET threads=1) writing the same table with
# COPY ... (FORMAT parquet, COMPRESSION zstd) and reading it back, in the
# same run.
#
#   make -f bench/bench.mk snapshot                          full run (~6-8 min)
#   make -f bench/bench.mk snapshot SNAPSHOT_ARGS=--quick    smoke run (2k rows)
#   make -f bench/bench.mk snapshot SNAPSHOT_ARGS='--sizes "10000 100000:200"'
#   make -f bench/snapshot.mk                                the same, on its own
#
# bench/bench.mk includes this file, so OUT, LIB, CC and BENCH_LIBS come
# from there when it is used; the defaults below serve a standalone run.
# The program is $(OUT)/snapshot/bench_snapshot.
# bench/run_snapshot_bench.sh installs DuckDB through
# scripts/parquet-interop.sh (npm, into build/npm) and writes
# $(OUT)/snapshot/snapshot.log (everything), snapshot.raw (the RESULT
# lines) and snapshot.md (the tables); scratch data lives in
# $(OUT)/snapshot/tmp (on the disk being measured) and is removed at the end.

BUILD      ?= build
LIB        ?= $(BUILD)/libakidb.a
OUT        ?= $(BUILD)/bench
CC         ?= cc
SNAPSHOT_ARGS ?=

include bench/libs.mk
SN_LIBS   = $(BENCH_LIBS)

SN_CFLAGS := -std=c11 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wformat=2 -Wvla -Wundef -pthread -Iinclude

.PHONY: snapshot snapshot-program

snapshot: snapshot-program
	bench/run_snapshot_bench.sh $(OUT) $(SNAPSHOT_ARGS)

snapshot-program: $(OUT)/snapshot/bench_snapshot

$(OUT)/snapshot/bench_snapshot: bench/bench_snapshot.c bench/bench_common.c bench/bench_common.h include/akidb.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) -Ibench -o $@ $< bench/bench_common.c $(LIB) $(SN_LIBS)
