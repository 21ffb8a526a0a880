# bench/store.mk - the object-store benchmark (issue 4): 1,000 PUTs of
# 64 KiB sequentially vs with the parallel uploader, against the mock store
# with 10 ms injected latency and against a local Ceph radosgw, where
# `aws s3 cp` (Debian awscli) and a plain curl GET move the same objects in
# the same run; and a 256 MiB object up (multipart) and down (ranged GETs).
#
#   make -f bench/bench.mk store                       full run (~3-5 min)
#   make -f bench/bench.mk store STORE_ARGS=--quick    smoke run (~1 min)
#   make -f bench/bench.mk store STORE_ROUNDS=5        more radosgw rounds
#   make -f bench/store.mk                             the same, on its own
#
# bench/bench.mk includes this file, so OUT, LIB, CC and BENCH_LIBS come
# from there when it is used; the defaults below serve a standalone run.
# bench/run_store_bench.sh starts one radosgw per round through
# scripts/with-s3.sh (127.0.0.1 only, stopped by PID), needs awscli and
# curl (scripts/deps.sh bench), and writes $(OUT)/store.log (everything),
# $(OUT)/store.raw (one line per timed operation) and $(OUT)/store.md
# (the tables).
#
# bench_store.c uses an internal header (lib/engine/uploader.h for the
# parallel uploader), hence -Ilib; it links
# the static library, where the akidb__ symbols are visible.

BUILD      ?= build
LIB        ?= $(BUILD)/libakidb.a
OUT        ?= $(BUILD)/bench
CC         ?= cc
include bench/libs.mk
STORE_ARGS ?=
STORE_ROUNDS ?= 3

S_LIBS  = $(BENCH_LIBS)

S_CFLAGS := -std=c11 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wvla -Wundef -pthread -Iinclude -Ilib

.PHONY: store store-program

store: store-program
	STORE_ROUNDS='$(STORE_ROUNDS)' bench/run_store_bench.sh $(OUT) $(STORE_ARGS)

store-program: $(OUT)/bench_store

$(OUT)/bench_store: bench/bench_store.c include/akidb.h lib/engine/uploader.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(S_CFLAGS) -o $@ $< $(LIB) $(S_LIBS)
