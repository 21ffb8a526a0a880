# bench/libs.mk - the library a benchmark program links, and what it links
# after it, in one place for bench/bench.mk and every file it includes
# (each of which can also be run on its own with `make -f bench/X.mk`).
#
# BENCH_LIBS: `make bench` passes the Makefile's LIBS.  Otherwise the
# modules named in the generated akidb.pc (Requires.private), linked as
# shared libraries as the Makefile does, expanded late, after the library
# and the .pc exist.  Never a module list of its own: three such lists went
# stale when the library started to need jansson, and the standalone
# snapshot, store and tier benchmarks stopped linking.
#
# $(LIB): run on its own (MAKELEVEL 0, the default library path), the
# top-level `make all` brings the library and its .pc up to date first;
# under `make bench` the top level has just built them.  Included several
# times through bench.mk, hence the guard; it defines rules but leaves the
# including file's default goal alone.

ifndef AKIDB_BENCH_LIBS_MK
AKIDB_BENCH_LIBS_MK := 1

BUILD      ?= build
LIB        ?= $(BUILD)/libakidb.a
BENCH_LIBS ?= $(shell mods=$$(sed -n 's/^Requires.private://p' \
                $(BUILD)/pkgconfig/akidb.pc 2>/dev/null); \
                [ -z "$$mods" ] || pkg-config --libs $$mods 2>/dev/null) -lm -pthread

akidb_bench_saved_goal := $(.DEFAULT_GOAL)

.PHONY: FORCE
FORCE:

ifeq ($(MAKELEVEL)|$(LIB),0|$(BUILD)/libakidb.a)
$(LIB): FORCE
	$(MAKE) --no-print-directory BUILD=$(BUILD) all
else
$(LIB):
	@echo "bench: $(LIB) not found; build the library first (make)" >&2; exit 1
endif

.DEFAULT_GOAL := $(akidb_bench_saved_goal)
endif
