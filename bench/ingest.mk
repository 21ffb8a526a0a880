# bench/ingest.mk - the fast-ingest benchmark (issue 11): reopen after
# SIGKILL with a 100k-record unindexed log, 8-writer durable insert
# throughput against SQLite (WAL, synchronous=FULL), search latency during
# an insert stream, write amplification of checkpoints.
#
#   make -f bench/bench.mk ingest                        full run (~10-15 min here)
#   make -f bench/bench.mk ingest INGEST_ARGS=--quick    smoke run
#   make -f bench/bench.mk ingest INGEST_ARGS='--only reopen,latency'
#
# bench/bench.mk includes this file, so OUT, CC and BUILD come from
# there; LIB and BENCH_LIBS from bench/libs.mk.  Scratch data lives in $(OUT)/ingest-tmp (on the disk being
# measured: fsync cost depends on it) and is removed at the end.  Output:
# $(OUT)/ingest.log (everything) and $(OUT)/ingest.md (the tables).

BUILD      ?= build
OUT        ?= $(BUILD)/bench
CC         ?= cc
INGEST_ARGS ?=
include bench/libs.mk

I_SQLITE_CFLAGS := $(shell pkg-config --cflags sqlite3 2>/dev/null)
I_SQLITE_LIBS   := $(or $(shell pkg-config --libs sqlite3 2>/dev/null),-lsqlite3)
I_CFLAGS := -std=c11 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wvla -Wundef -pthread -Iinclude $(I_SQLITE_CFLAGS)

.PHONY: ingest ingest-program

ingest: ingest-program
	@mkdir -p $(OUT)
	{ $(OUT)/bench_ingest --dir $(OUT)/ingest-tmp --md $(OUT)/ingest.md \
	    $(INGEST_ARGS) 2>&1; echo $$? > $(OUT)/ingest.rc; } | tee $(OUT)/ingest.log; \
	rc=$$(cat $(OUT)/ingest.rc); rm -rf $(OUT)/ingest-tmp $(OUT)/ingest.rc; exit $$rc

ingest-program: $(OUT)/bench_ingest

$(OUT)/bench_ingest: bench/bench_ingest.c bench/bench_common.c bench/bench_common.h include/akidb.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(I_CFLAGS) -Ibench -o $@ $< bench/bench_common.c $(LIB) $(I_SQLITE_LIBS) $(BENCH_LIBS)
