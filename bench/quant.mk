# bench/quant.mk - the quantized-storage benchmark (issue 16): AkiDB f32,
# f16 and int8 against hnswlib (f32) and usearch (f32, f16, i8, built from
# the npm package's sources) on Fashion-MNIST and a seeded 100k x 384
# clustered float set; recall@10, QPS, build time and index memory per
# ef, medians of rotated rounds, ratios at recall 0.95 and 0.99.
#
#   make -f bench/bench.mk quant                        full run (5 rounds)
#   make -f bench/bench.mk quant QUANT_ARGS=--quick     smoke run (< 3 min)
#   make -f bench/bench.mk quant QUANT_ROUNDS=3         fewer rounds
#   make -f bench/bench.mk quant AKIDB_TREE=/path/to/other/clone
#        the AkiDB side against another tree's library and header (its
#        build/libakidb.a, build/pkgconfig/akidb.pc and include/akidb.h,
#        which must already be built there: `make` in that tree)
#
# bench/bench.mk includes this file (OUT, LIB, CC, CXX, BENCH_LIBS from
# there and bench/libs.mk).  bench/run_quant_bench.sh runs everything and
# writes $(OUT)/quant/: the data sets and ground truth (cached), one log
# per (set, side, round), quant.md (the tables) and machine.txt.
# usearch is fetched with npm into $(OUT)/usearch at the first run and
# built there by bench/build_usearch.sh; its sources are never in the
# repository.
#
# Flags: as bench.mk.  The AkiDB side and the shared scoring code are -O2
# without -march (libakidb picks its kernels at run time); hnswlib is
# header-only and built -O3 -march=native; usearch is built -O3
# -march=native as PEERS.md records, with run-time kernel dispatch.
# quant_prep (data and brute-force ground truth) is -O3 -march=native.

BUILD       ?= build
LIB         ?= $(BUILD)/libakidb.a
OUT         ?= $(BUILD)/bench
CC          ?= cc
CXX         ?= g++
QUANT_ARGS  ?=
QUANT_ROUNDS ?= 5
QUANT_IMPLS ?=
AKIDB_TREE  ?=

include bench/libs.mk

Q_WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
              -Wmissing-prototypes -Wformat=2 -Wvla -Wundef
Q_USEARCH  := $(OUT)/usearch

ifeq ($(AKIDB_TREE),)
Q_INC      := include
Q_LIB      := $(LIB)
Q_LIBS      = $(BENCH_LIBS)
else
Q_INC      := $(AKIDB_TREE)/include
Q_LIB      := $(AKIDB_TREE)/build/libakidb.a
Q_LIBS      = $(shell mods=$$(sed -n 's/^Requires.private://p' \
                $(AKIDB_TREE)/build/pkgconfig/akidb.pc 2>/dev/null); \
                [ -z "$$mods" ] || pkg-config --libs $$mods 2>/dev/null) -lm -pthread
endif
# bench_quant is relinked on every run (a second): switching AKIDB_TREE
# must not leave a program built against the other library.
Q_FORCE    := FORCE

.PHONY: quant quant-programs quant-usearch

quant: quant-programs
	QUANT_ROUNDS='$(QUANT_ROUNDS)' QUANT_IMPLS='$(QUANT_IMPLS)' \
	  bench/run_quant_bench.sh $(OUT) $(QUANT_ARGS)

quant-programs: $(OUT)/quant_prep $(OUT)/bench_quant $(OUT)/hnswlib_quant_peer \
                $(OUT)/usearch_quant_peer

$(OUT)/quant_common.o: bench/quant_common.c bench/quant_common.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 $(Q_WARN) -c -o $@ $<

# bench_common.o (the Fashion-MNIST loader) is bench.mk's; built here too
# when this file runs alone.
$(OUT)/quant_prep: bench/quant_prep.c bench/quant_common.c bench/quant_common.h \
                   bench/bench_common.c bench/bench_common.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -O3 -march=native $(Q_WARN) -Ibench -o $@ bench/quant_prep.c \
	  bench/quant_common.c bench/bench_common.c -lm

$(OUT)/bench_quant: bench/bench_quant.c bench/quant_common.h $(OUT)/quant_common.o \
                    $(Q_INC)/akidb.h $(Q_LIB) $(Q_FORCE)
	$(CC) -std=c11 -O2 $(Q_WARN) -I$(Q_INC) -Ibench -o $@ bench/bench_quant.c \
	  $(OUT)/quant_common.o $(Q_LIB) $(Q_LIBS)

$(OUT)/hnswlib_quant_peer: bench/hnswlib_quant_peer.cpp bench/quant_common.h $(OUT)/quant_common.o
	@test -f /usr/include/hnswlib/hnswlib.h || \
	  { echo "bench: hnswlib headers missing: run scripts/deps.sh bench" >&2; exit 1; }
	$(CXX) -std=c++11 -O3 -march=native -Wall -Ibench -o $@ $< $(OUT)/quant_common.o -lm -pthread

quant-usearch: $(Q_USEARCH)/libusearch_c.so

$(Q_USEARCH)/libusearch_c.so: bench/build_usearch.sh
	bench/build_usearch.sh $(Q_USEARCH)

# rpath: the library stays in the build directory, next to the program.
$(OUT)/usearch_quant_peer: bench/usearch_quant_peer.c bench/quant_common.h $(OUT)/quant_common.o \
                           $(Q_USEARCH)/libusearch_c.so
	$(CC) -std=c11 -O2 $(Q_WARN) -Ibench -I$(Q_USEARCH) -o $@ $< $(OUT)/quant_common.o \
	  -L$(Q_USEARCH) -lusearch_c -Wl,-rpath,$(abspath $(Q_USEARCH)) -lm
