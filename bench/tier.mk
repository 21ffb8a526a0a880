# bench/tier.mk - the tiering benchmark (issue 12): HOT -> WARM, WARM -> HOT
# (first search answered), WARM -> COLD and COLD -> HOT for 10k and 100k x
# 512, against the mock store and a local radosgw, with `cat` of the same
# checkpoint and a plain `curl` GET of the same object in the same run; RSS
# before and after a demotion; the ZSTD snapshot against the checkpoint as
# the cold object; a hot collection's search P99 while another moves.
#
#   make -f bench/bench.mk tier                      full run (~30 min on a quiet box)
#   make -f bench/bench.mk tier TIER_ARGS=--quick    smoke run (2k and 10k)
#   make -f bench/bench.mk tier TIER_ROUNDS=5        more rounds per figure
#
# bench/bench.mk includes this file (OUT, LIB, CC, BENCH_LIBS from there).
# bench_tier.c uses include/akidb.h only.  bench/run_tier_bench.sh starts
# one radosgw per size through scripts/with-s3.sh (127.0.0.1, stopped by
# PID) and writes $(OUT)/tier.raw, $(OUT)/tier.md and
# $(OUT)/tier-machine.txt.

BUILD      ?= build
LIB        ?= $(BUILD)/libakidb.a
OUT        ?= $(BUILD)/bench
CC         ?= cc
TIER_ARGS  ?=
TIER_ROUNDS ?= 3

include bench/libs.mk
T_LIBS  = $(BENCH_LIBS)
T_CFLAGS := -std=c11 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wvla -Wundef -pthread -Iinclude

.PHONY: tier tier-program

tier: tier-program
	TIER_ROUNDS='$(TIER_ROUNDS)' bench/run_tier_bench.sh $(OUT) $(TIER_ARGS)

tier-program: $(OUT)/bench_tier

$(OUT)/bench_tier: bench/bench_tier.c include/akidb.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(T_CFLAGS) -o $@ $< $(LIB) $(T_LIBS) -lm
