# bench/durability.mk - the durability benchmark (issue 3): insert
# throughput per sync mode and batch size, 8 concurrent writers, SQLite as
# the peer, recovery of a 100k-record log, reopen from a checkpoint.
#
#   make -f bench/bench.mk durability                      full run (< 10 min)
#   make -f bench/bench.mk durability DURABILITY_ARGS=--quick   smoke run
#   make -f bench/durability.mk                            the same, on its own
#
# bench/bench.mk includes this file, so OUT, LIB, CC and BENCH_LIBS come
# from there when it is used; the defaults below serve a standalone run.
# The scratch directory must be on the disk being measured (fsync cost
# depends on it), so it lives under $(OUT), not in /tmp (often tmpfs).
# Output: $(OUT)/durability.log (everything) and $(OUT)/durability.md
# (the tables).

BUILD      ?= build
LIB        ?= $(BUILD)/libakidb.a
OUT        ?= $(BUILD)/bench
CC         ?= cc
include bench/libs.mk
DURABILITY_ARGS ?=

D_SQLITE_CFLAGS := $(shell pkg-config --cflags sqlite3 2>/dev/null)
D_SQLITE_LIBS   := $(or $(shell pkg-config --libs sqlite3 2>/dev/null),-lsqlite3)
D_CFLAGS := -std=c11 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wvla -Wundef -pthread -Iinclude $(D_SQLITE_CFLAGS)

.PHONY: durability durability-program

durability: durability-program
	@mkdir -p $(OUT)
	{ $(OUT)/bench_durability --dir $(OUT)/durability-tmp --md $(OUT)/durability.md \
	    $(DURABILITY_ARGS) 2>&1; echo $$? > $(OUT)/durability.rc; } | tee $(OUT)/durability.log; \
	rc=$$(cat $(OUT)/durability.rc); rm -rf $(OUT)/durability-tmp $(OUT)/durability.rc; exit $$rc

durability-program: $(OUT)/bench_durability

$(OUT)/bench_durability: bench/bench_durability.c bench/bench_common.c bench/bench_common.h include/akidb.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(D_CFLAGS) -Ibench -o $@ $< bench/bench_common.c $(LIB) $(D_SQLITE_LIBS) $(BENCH_LIBS)
