# bench/server.mk - the akidb-server load test (issue 13).
#
#   make && make -f bench/bench.mk server                  full run (~6 min)
#   make -f bench/bench.mk server SERVER_BENCH_ARGS=--quick smoke run (~1 min)
#   make -f bench/server.mk server                         the same, on its own
#   make -f bench/server.mk server-tls                     TLS vs nginx (bench/run_tls_bench.sh)
#
# Needs build/akidb-server (`make`) and, from scripts/deps.sh bench, wrk and
# nginx.  Programs: $(OUT)/server/server_load (open-loop generator: libuv +
# http-parser) and $(OUT)/server/server_setup (data + in-process search
# rate: the static library).  bench/run_server_bench.sh runs everything and
# writes $(OUT)/server/{bench.log,results.txt,server.md}.

BUILD      ?= build
LIB        ?= $(BUILD)/libakidb.a
OUT        ?= $(BUILD)/bench
CC         ?= cc
SERVER_BENCH_ARGS ?=

include bench/libs.mk
SV_LIBS    = $(BENCH_LIBS)
SV_CFLAGS := -std=c11 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wformat=2 -Wvla -Wundef -pthread -D_GNU_SOURCE= -Iinclude

.PHONY: server server-programs server-tls

server: server-programs
	@test -x $(BUILD)/akidb-server || { echo "bench/server.mk: build $(BUILD)/akidb-server first (make)" >&2; exit 1; }
	bench/run_server_bench.sh $(OUT) $(BUILD)/akidb-server $(SERVER_BENCH_ARGS)

# TLS 1.3 against nginx with the same certificate (issue 15):
#   make -f bench/server.mk server-tls [SERVER_BENCH_ARGS=--quick]
server-tls: $(OUT)/server/server_setup
	@test -x $(BUILD)/akidb-server || { echo "bench/server.mk: build $(BUILD)/akidb-server first (make)" >&2; exit 1; }
	bench/run_tls_bench.sh $(OUT) $(BUILD)/akidb-server $(OUT)/server/server_setup $(SERVER_BENCH_ARGS)

server-programs: $(OUT)/server/server_load $(OUT)/server/server_setup

$(OUT)/server/server_load: bench/server_load.c
	@mkdir -p $(@D)
	$(CC) $(SV_CFLAGS) -o $@ $< $$(pkg-config --cflags --libs libuv 2>/dev/null || echo -luv) -lhttp_parser -lm

$(OUT)/server/server_setup: bench/server_setup.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(SV_CFLAGS) -o $@ $< $(LIB) $(SV_LIBS)
