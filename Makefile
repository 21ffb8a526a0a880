# Makefile - builds libakidb (static and shared), its examples and tests.
#
# Everything the build produces goes under $(BUILD) (default build/); the
# sanitizer targets use their own trees (build-asan/, build-tsan/) so
# switching between them never mixes instrumented and plain objects.
#
#   make                 library (.a, .so + symlinks), akidb.pc, examples
#   make test [TEST=x]   native test suite (only tests whose name contains x)
#   make asan | tsan     the suite under AddressSanitizer+UBSan / ThreadSanitizer
#   make test-aarch64    distance + HNSW tests cross-built, run under qemu
#   make check-abi       exported symbols and header portability
#   make bench | run | install | uninstall | clean | crash | fuzz | fuzz-long
#
# WERROR=1 (set by CI) turns warnings into errors.
#
# Two passes.  A fresh machine lacks the -dev packages whose flags the build
# asks pkg-config for, and make expands its variables when it reads this
# file, before any recipe could install them.  So the first pass (this
# file without AKIDB_DEPS_CHECKED) only runs scripts/deps.sh for the sets
# the goals need (it installs as root, names the packages otherwise) and
# then runs make again, with AKIDB_DEPS_CHECKED=1, for the real work; only
# that second pass calls pkg-config, and a module it cannot resolve stops
# the build with the module, its package and the install command.  There
# is no guessed fallback.  `make AKIDB_DEPS_CHECKED=1 ...` skips the
# package step (a non-Debian system that has the libraries).

# Goals that need no package at all, in either pass.
NODEPS_GOALS := clean uninstall

ifneq ($(AKIDB_DEPS_CHECKED),1)
# --------------------------------------------------------------------------
# Pass 1: packages (scripts/deps.sh SET; `scripts/deps.sh --list SET` shows
# them).  A goal not named here (a file, e.g. build/libakidb.a) needs core.

DEPS_test         := test
DEPS_asan         := test
DEPS_tsan         := test
DEPS_crash        := core
DEPS_fuzz         := core fuzz
DEPS_fuzz-long    := core fuzz
DEPS_fuzz-server  := test fuzz
DEPS_fuzz-token   := test fuzz
DEPS_server-test  := test
DEPS_test-aarch64 := core cross
DEPS_bench        := bench

GOALS     := $(or $(MAKECMDGOALS),all)
deps_of    = $(if $(filter $(NODEPS_GOALS),$(1)),,$(or $(DEPS_$(1)),core))
DEPS_SETS := $(sort $(foreach g,$(GOALS),$(call deps_of,$(g))))

# One deps.sh run and one second pass for all the goals together, so
# `make -j2 lib test` does not build the same tree twice at once.
.PHONY: $(GOALS)
$(firstword $(GOALS)):
	@$(if $(DEPS_SETS),scripts/deps.sh $(DEPS_SETS))
	@$(MAKE) --no-print-directory AKIDB_DEPS_CHECKED=1 $(MAKECMDGOALS)
$(wordlist 2,$(words $(GOALS)),$(GOALS)):
	@:

else
# --------------------------------------------------------------------------
# Pass 2: the build.

CC      ?= cc
CROSS_CC ?= aarch64-linux-gnu-gcc
QEMU    ?= qemu-aarch64
BUILD   ?= build

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PCDIR      ?= $(LIBDIR)/pkgconfig

# The version lives in one place, the public header.
hdr_version = $(shell sed -n 's/^.define AKIDB_VERSION_$(1)[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' include/akidb.h)
VERSION_MAJOR := $(call hdr_version,MAJOR)
VERSION_MINOR := $(call hdr_version,MINOR)
VERSION_PATCH := $(call hdr_version,PATCH)
ifeq ($(strip $(VERSION_MAJOR)),)
$(error cannot read AKIDB_VERSION_MAJOR from include/akidb.h)
endif
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

WARNINGS = -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wvla -Wundef
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif
OPT      ?= -O2 -g
# `-D_GNU_SOURCE=` (empty value) rather than `-D_GNU_SOURCE` (value 1) so a
# source file that also says `#define _GNU_SOURCE` is an identical, silent
# redefinition instead of a -Werror failure.
CPPFLAGS_ALL = -D_GNU_SOURCE= -Iinclude
CFLAGS   ?=
# SANFLAGS is set by the asan/tsan targets; it goes to compiler and linker.
SANFLAGS ?=
ALL_CFLAGS = $(WARNINGS) $(OPT) -fPIC -pthread $(SANFLAGS) $(CFLAGS)
LDFLAGS  ?=

# pkg-config modules the library needs.  Listing one here adds its flags to
# the build and to Requires.private; scripts/deps.sh --pc MODULE must know
# its Debian package (for the error below).
PKG_DEPS := sqlite3 libcurl openssl libzstd jansson

# $(call pkg_check,MODULES,SET): stop, naming the modules pkg-config cannot
# resolve, their Debian packages and the command that installs them.  Run
# only when a goal needs flags (not for `make clean`).
pkg_missing = $(if $(shell pkg-config --exists $(1) 2>/dev/null && echo y),,$(strip \
                $(foreach m,$(1),$(if $(shell pkg-config --exists $(m) 2>/dev/null && echo y),,$(m)))))
define pkg_check
$(if $(shell command -v pkg-config 2>/dev/null),,$(error pkg-config is not installed; \
    install it with: sudo scripts/deps.sh $(2)  (or: sudo apt-get install -y pkg-config)))
pkg_miss_ := $(call pkg_missing,$(1))
$$(if $$(pkg_miss_),$$(error pkg-config cannot find the module(s) $$(pkg_miss_) \
    (Debian: $$(shell scripts/deps.sh --pc $$(pkg_miss_))); install with: sudo scripts/deps.sh $(2) \
    (or: sudo apt-get install -y $$(shell scripts/deps.sh --pc $$(pkg_miss_)))))
endef

ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
$(eval $(call pkg_check,$(PKG_DEPS),core))
PKG_CFLAGS := $(shell pkg-config --cflags $(PKG_DEPS))
PKG_LIBS   := $(shell pkg-config --libs $(PKG_DEPS))
endif
LIBS = $(PKG_LIBS) -lm -pthread

# --------------------------------------------------------------------------
# Sources and outputs

LIB_SRC  := $(wildcard lib/*/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := test/runner.c test/helpers.c $(wildcard test/test_*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
EX_SRC   := $(wildcard examples/*.c)
EX_BIN   := $(EX_SRC:%.c=$(BUILD)/%)
# Command-line tools beside the (future) server: public header only.
TOOL_BIN := $(BUILD)/akidb

STATIC   := $(BUILD)/libakidb.a
SONAME   := libakidb.so.$(VERSION_MAJOR)
SHARED   := $(BUILD)/libakidb.so.$(VERSION)
TEST_BIN := $(BUILD)/test/akidb_test
PC       := $(BUILD)/pkgconfig/akidb.pc
PC_UNINST := $(BUILD)/pkgconfig/akidb-uninstalled.pc

# The aarch64 suite: the index and kernels need nothing else from lib/.
A64_DIR  := $(BUILD)/aarch64
A64_SRC  := lib/common/alloc.c lib/index/distance.c lib/index/hnsw.c lib/index/quant.c \
            test/runner.c test/test_distance.c test/test_hnsw.c test/test_quant.c
A64_OBJ  := $(A64_SRC:%.c=$(A64_DIR)/%.o)
A64_BIN  := $(A64_DIR)/akidb_test_aarch64

ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
TSAN_FLAGS = -fsanitize=thread -fno-omit-frame-pointer

.PHONY: all lib test test-build asan tsan san-test test-aarch64 check-abi \
        bench run install uninstall clean FORCE crash fuzz fuzz-long \
        server server-test fuzz-server fuzz-token
.DELETE_ON_ERROR:
.SUFFIXES:

all: lib $(PC) $(PC_UNINST) $(EX_BIN) $(TOOL_BIN)

lib: $(STATIC) $(SHARED) $(BUILD)/$(SONAME) $(BUILD)/libakidb.so

# --------------------------------------------------------------------------
# Rebuild when the flags change, not only when files do: each tree keeps the
# command line it was built with and every object depends on that record.

FLAGS_REC := $(BUILD)/.flags
FLAGS_NOW  = $(CC) $(CPPFLAGS_ALL) $(ALL_CFLAGS) $(PKG_CFLAGS) | $(LDFLAGS) $(LIBS) | $(CROSS_CC)
$(FLAGS_REC): FORCE
	@mkdir -p $(@D)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@

# --------------------------------------------------------------------------
# Library.  Objects are position independent and hidden by default, so the
# one set serves both the archive and the shared object; only AKIDB_API
# symbols leave the .so.

$(BUILD)/lib/%.o: lib/%.c $(FLAGS_REC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) -Ilib $(ALL_CFLAGS) $(PKG_CFLAGS) -fvisibility=hidden \
	    -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) -shared $(ALL_CFLAGS) $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,--no-undefined \
	    -o $@ $^ $(LIBS)

$(BUILD)/$(SONAME) $(BUILD)/libakidb.so: $(SHARED)
	ln -sf $(notdir $<) $@

# --------------------------------------------------------------------------
# pkg-config file: regenerated when the install paths or version change.
# Paths under PREFIX are written relative to ${prefix} so the file relocates.

PC_VARS := $(PREFIX)|$(LIBDIR)|$(INCLUDEDIR)|$(VERSION)|$(PKG_DEPS)
$(BUILD)/.pcvars: FORCE
	@mkdir -p $(@D)
	@echo '$(PC_VARS)' | cmp -s - $@ || echo '$(PC_VARS)' > $@

$(PC): pkgconfig/akidb.pc.in $(BUILD)/.pcvars
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|g' \
	    -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|g' \
	    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' \
	    -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@REQUIRES_PRIVATE@|$(strip $(PKG_DEPS))|g' \
	    $< > $@

# akidb-uninstalled.pc: for programs built against this build tree without
# installing (README: PKG_CONFIG_PATH=build/pkgconfig pkg-config --cflags
# --libs akidb-uninstalled).  It names the static archive itself, so the
# modules it needs are Requires (not .private) and no --static is needed
# (which would drag in libcurl's private libraries, whose -dev packages are
# not installed).  Paths are relative to the .pc file (${pcfiledir}), so the
# tree can move.
PC_SRCDIR = $(shell realpath -m --relative-to=$(BUILD)/pkgconfig .)
$(PC_UNINST): pkgconfig/akidb-uninstalled.pc.in $(BUILD)/.pcvars
	@mkdir -p $(@D)
	sed -e 's|@SRCDIR@|$${pcfiledir}/$(PC_SRCDIR)|g' \
	    -e 's|@LIBDIR@|$${pcfiledir}/..|g' \
	    -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@REQUIRES@|$(strip $(PKG_DEPS))|g' \
	    $< > $@

# --------------------------------------------------------------------------
# Examples use the public header only (no -Ilib) and link the static library.

$(BUILD)/examples/%: examples/%.c $(STATIC) $(FLAGS_REC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) $(ALL_CFLAGS) $(LDFLAGS) -MMD -MP $< -o $@ $(STATIC) $(LIBS)

$(BUILD)/akidb: tools/akidb_cli.c $(STATIC) $(FLAGS_REC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) $(ALL_CFLAGS) $(LDFLAGS) -MMD -MP $< -o $@ $(STATIC) $(LIBS)

# --------------------------------------------------------------------------
# akidb-server (server/): the REST API over libuv, http-parser and jansson,
# public header only.  Debian's http-parser ships no .pc: -lhttp_parser.
# docs/openapi.yaml is compiled in as JSON by scripts/openapi-to-c.py
# (Debian's /usr/bin/python3 with python3-yaml).  `make fuzz-server` runs
# libFuzzer over the request path (test/fuzz_server.c) for FUZZ_TIME s;
# the black-box suite is test/server/test_server.py (make test, make asan).

SERVER_SRC  := $(wildcard server/*.c)
SERVER_OBJ  := $(SERVER_SRC:%.c=$(BUILD)/%.o) $(BUILD)/server/openapi_json.o
SERVER_BIN  := $(BUILD)/akidb-server
SERVER_PKGS := libuv jansson libssl libcrypto libjwt
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
$(eval $(call pkg_check,$(SERVER_PKGS),core))
endif
SERVER_CFLAGS := $(shell pkg-config --cflags $(SERVER_PKGS) 2>/dev/null)
SERVER_LIBS   := $(shell pkg-config --libs $(SERVER_PKGS) 2>/dev/null) -lhttp_parser
SERVER_TEST   = AKIDB_SERVER_BIN=$(SERVER_BIN) python3 test/server/test_server.py

all test-build: $(SERVER_BIN)
server: $(SERVER_BIN)
server-test: $(SERVER_BIN)
	$(SERVER_TEST)

$(BUILD)/server/%.o: server/%.c $(FLAGS_REC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) $(ALL_CFLAGS) $(SERVER_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/server/openapi_json.c: docs/openapi.yaml scripts/openapi-to-c.py
	@mkdir -p $(@D)
	/usr/bin/python3 scripts/openapi-to-c.py $< $@

$(BUILD)/server/openapi_json.o: $(BUILD)/server/openapi_json.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(SERVER_BIN): $(SERVER_OBJ) $(STATIC)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(SERVER_OBJ) $(STATIC) $(SERVER_LIBS) $(LIBS)

fuzz-server:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_DIR) CC=$(FUZZ_CC) OPT='-O1 -g' \
	    SANFLAGS='$(FUZZ_SAN) -fsanitize=fuzzer-no-link' $(FUZZ_DIR)/libakidb.a \
	    $(FUZZ_DIR)/server/openapi_json.o $(filter-out $(FUZZ_DIR)/server/main.o,$(SERVER_SRC:%.c=$(FUZZ_DIR)/%.o))
	$(FUZZ_CC) $(CPPFLAGS_ALL) -Iserver $(WARNINGS) -O1 -g -pthread $(FUZZ_SAN) -fsanitize=fuzzer \
	    $(SERVER_CFLAGS) test/fuzz_server.c $(filter-out $(FUZZ_DIR)/server/main.o,$(SERVER_SRC:%.c=$(FUZZ_DIR)/%.o)) \
	    $(FUZZ_DIR)/server/openapi_json.o $(FUZZ_DIR)/libakidb.a $(SERVER_LIBS) $(LIBS) \
	    -o $(FUZZ_DIR)/fuzz_server
	@rm -rf $(FUZZ_DIR)/server-db
	@mkdir -p $(FUZZ_DIR)/server-corpus $(FUZZ_DIR)/crashes $(FUZZ_DIR)/server-db
	AKIDB_FUZZ_SERVER_DIR=$(FUZZ_DIR)/server-db ASAN_OPTIONS=detect_leaks=1:$${ASAN_OPTIONS:-} \
	UBSAN_OPTIONS=print_stacktrace=1:$${UBSAN_OPTIONS:-} \
	$(FUZZ_DIR)/fuzz_server -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
	    -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/ \
	    -max_len=8192 -dict=test/fuzz_server.dict $(FUZZ_DIR)/server-corpus test/fuzz_server_seeds

# `make fuzz-token`: libFuzzer over the token path (Authorization header,
# JWT verification with libjwt: test/fuzz_token.c, server/token.c) for
# FUZZ_TIME s; in CI (.ci/run).  security (issue 15).
fuzz-token:
	@scripts/deps.sh test
	@mkdir -p $(FUZZ_DIR)/token-corpus $(FUZZ_DIR)/crashes
	$(FUZZ_CC) $(CPPFLAGS_ALL) -Iserver $(WARNINGS) -O1 -g -pthread $(FUZZ_SAN) -fsanitize=fuzzer \
	    $(SERVER_CFLAGS) test/fuzz_token.c server/token.c $(SERVER_LIBS) -lm -o $(FUZZ_DIR)/fuzz_token
	ASAN_OPTIONS=detect_leaks=1:$${ASAN_OPTIONS:-} UBSAN_OPTIONS=print_stacktrace=1:$${UBSAN_OPTIONS:-} \
	$(FUZZ_DIR)/fuzz_token -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
	    -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/ \
	    -max_len=4096 -dict=test/fuzz_token.dict $(FUZZ_DIR)/token-corpus test/fuzz_token_seeds

-include $(wildcard $(BUILD)/server/*.d)

# --------------------------------------------------------------------------
# Tests may use internal headers and akidb__ symbols, hence -Ilib and the
# static library (hidden visibility does not hide anything inside one link).

$(BUILD)/test/%.o: test/%.c $(FLAGS_REC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) -Ilib -Itest $(ALL_CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(TEST_BIN): $(TEST_OBJ) $(STATIC)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(TEST_OBJ) $(STATIC) $(LIBS)

# The v1-compatibility program: built against the frozen version-1 header
# (test/abi/akidb_v1.h, not include/akidb.h) and linked with this shared
# library, as an application built before an upgrade would be.
ABI_V1 := $(BUILD)/test/abi_v1
$(ABI_V1): test/abi/test_abi_v1.c test/abi/akidb_v1.h $(BUILD)/$(SONAME) $(FLAGS_REC)
	@mkdir -p $(@D)
	$(CC) -Itest/abi $(ALL_CFLAGS) $(LDFLAGS) $< -o $@ -L$(BUILD) -l:$(SONAME) \
	    -Wl,-rpath,'$$ORIGIN/..'

test-build: lib $(PC_UNINST) $(TEST_BIN) $(EX_BIN) $(TOOL_BIN) $(ABI_V1)

# Before the suite, so the runner's closing "N passed, N failed" line stays
# the last line of the output: the README's example and build commands
# (test/readme_example.sh, which also installs into a DESTDIR), the package
# step and this file's two passes (test/build_selftest.sh, against fake
# dpkg/apt commands), and the runner's timeouts (test/runner_selftest.sh).
# scripts/run-tests.sh starts the S3 server only when an s3_ test is
# selected.
test:
	@$(MAKE) --no-print-directory all test-build
	@scripts/check-layers.sh --self-test
	@scripts/check-layers.sh $(BUILD)
	@d=$$(mktemp -d) && $(ABI_V1) $$d/db && rm -rf $$d
	@test/readme_example.sh '$(CC)' '$(BUILD)' '$(MAKE)'
	@test/readme_commands.sh '$(CC)' $(BUILD) '$(LIBS)'
	@test/build_selftest.sh
	@test/runner_selftest.sh $(TEST_BIN)
	@# Examples, Python package, Go module, docs checks:
	@scripts/test-bindings.sh '$(BUILD)' '$(TEST)'
	@# deploy/ (Dockerfile, systemd unit, Helm chart) against the server:
	@/usr/bin/python3 test/check_deploy.py $(SERVER_BIN)
	scripts/run-tests.sh $(TEST_BIN) $(TEST)
	$(SERVER_TEST)

# The crash-recovery torture run: the SIGKILL loop of test/test_durability.c
# for many more iterations than `make test` does (AKT_CRASH_ITERS, default
# 1000 here; AKT_CRASH_SEED picks another base seed).
crash:
	@$(MAKE) --no-print-directory test-build
	AKT_CRASH_ITERS=$${AKT_CRASH_ITERS:-1000} $(TEST_BIN) durability_crash

# asan/tsan: the same tree layout in their own directory, then run the suite.
# ASAN_OPTIONS/TSAN_OPTIONS from the environment are kept and extended.
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT='-O1 -g' \
	    SANFLAGS='$(ASAN_FLAGS)' test-build
	@# Examples, Python and Go tests against the ASan build (bindings helper):
	@scripts/test-bindings.sh --asan build-asan '$(TEST)'
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:$${ASAN_OPTIONS:-} \
	UBSAN_OPTIONS=print_stacktrace=1:$${UBSAN_OPTIONS:-} \
	AKT_TIMEOUT_SCALE=4 scripts/run-tests.sh build-asan/test/akidb_test $(TEST)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:$${ASAN_OPTIONS:-} \
	UBSAN_OPTIONS=print_stacktrace=1:$${UBSAN_OPTIONS:-} AKT_TIMEOUT_SCALE=4 \
	AKIDB_SERVER_BIN=build-asan/akidb-server python3 test/server/test_server.py

# TSan maps fixed shadow ranges; on kernels with large mmap randomisation
# (vm.mmap_rnd_bits > 28) it dies with "unexpected memory mapping", so the
# suite runs with ASLR disabled when setarch allows it.
#
# Without TEST, `make tsan` runs the threaded tests, TSAN_TESTS: those that
# run library code on several threads at once (readers and writers, group
# commit and its sync thread, the uploader's workers and the dead-letter
# thread, parallel multipart parts, shared stores, parallel searches and
# Parquet reads, per-thread error messages, the indexer thread against
# writers, searches, checkpoints and tier transitions: ingest_ and
# tier_ingest_).  TSan finds races only between
# threads, and the single-threaded rest (fork-and-kill durability loops,
# bit-flip sweeps) costs ~10x its native time under TSan for nothing.
# `make tsan TSAN_TESTS=` runs the whole suite.
TSAN_TESTS ?= conc_ _threads concurrent per_thread upload_ s3_multipart interval_sync \
              store_mock_latency ingest_
tsan:
	@$(MAKE) --no-print-directory BUILD=build-tsan OPT='-O1 -g' \
	    SANFLAGS='$(TSAN_FLAGS)' test-build
	@norand=; if setarch $$(uname -m) -R true 2>/dev/null; then \
	    norand="setarch $$(uname -m) -R"; fi; \
	echo "TSAN_OPTIONS=halt_on_error=1 AKT_TIMEOUT_SCALE=4 $$norand build-tsan/test/akidb_test $(or $(TEST),$(TSAN_TESTS))"; \
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:$${TSAN_OPTIONS:-} \
	AKT_TIMEOUT_SCALE=4 $$norand scripts/run-tests.sh build-tsan/test/akidb_test $(or $(TEST),$(TSAN_TESTS))

# --------------------------------------------------------------------------
# libFuzzer on the Parquet reader (test/fuzz_parquet.c), in its own tree
# build-fuzz/: the library is built by clang with coverage instrumentation
# and ASan+UBSan, the target links what it needs from the archive.  Seeds:
# the committed fixtures plus files our writer makes (the target writes
# them itself when AKIDB_FUZZ_WRITE_SEEDS is set).  New inputs accumulate in
# build-fuzz/corpus across runs; a crash, sanitizer report, leak, timeout
# or oversized allocation stops the run, leaves the input in
# build-fuzz/crashes/ and fails the target.  FUZZ_TIME=N (seconds) overrides
# the run time; replay an input with build-fuzz/fuzz_parquet FILE.
FUZZ_CC   ?= clang-14
FUZZ_DIR  := build-fuzz
FUZZ_TIME ?= 60
FUZZ_SAN   = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

fuzz:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_DIR) CC=$(FUZZ_CC) OPT='-O1 -g' \
	    SANFLAGS='$(FUZZ_SAN) -fsanitize=fuzzer-no-link' $(FUZZ_DIR)/libakidb.a
	$(FUZZ_CC) $(CPPFLAGS_ALL) -Ilib $(WARNINGS) -O1 -g -pthread $(FUZZ_SAN) -fsanitize=fuzzer \
	    $(PKG_CFLAGS) test/fuzz_parquet.c $(FUZZ_DIR)/libakidb.a $(LIBS) -lzstd \
	    -o $(FUZZ_DIR)/fuzz_parquet
	@rm -rf $(FUZZ_DIR)/seeds
	@mkdir -p $(FUZZ_DIR)/seeds $(FUZZ_DIR)/corpus $(FUZZ_DIR)/crashes
	@cp test/parquet_fixtures/*.parquet $(FUZZ_DIR)/seeds/
	AKIDB_FUZZ_WRITE_SEEDS=$(FUZZ_DIR)/seeds \
	ASAN_OPTIONS=detect_leaks=1:$${ASAN_OPTIONS:-} \
	UBSAN_OPTIONS=print_stacktrace=1:$${UBSAN_OPTIONS:-} \
	$(FUZZ_DIR)/fuzz_parquet -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
	    -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/ \
	    $(FUZZ_DIR)/corpus $(FUZZ_DIR)/seeds

fuzz-long:
	@$(MAKE) --no-print-directory fuzz FUZZ_TIME=600

# --------------------------------------------------------------------------
# aarch64: static cross build, run under qemu-user (no sysroot needed).
# Host CFLAGS are not passed on: they may hold x86-only options.

$(A64_DIR)/%.o: %.c $(FLAGS_REC)
	@mkdir -p $(@D)
	$(CROSS_CC) $(CPPFLAGS_ALL) -Ilib -Itest $(WARNINGS) -O2 -g -pthread \
	    -MMD -MP -c $< -o $@

$(A64_BIN): $(A64_OBJ)
	$(CROSS_CC) -static -O2 -pthread -o $@ $^ -lm

# qemu's default CPU ("max") has every extension, so the kernels and the
# index run again on an ARMv8.0 core (no SDOT, no fp16 arithmetic: the
# fallbacks a Raspberry Pi 3 takes) and on a Cortex-A76 (SDOT and FEAT_FP16
# but no FEAT_FHM: a Raspberry Pi 5, Graviton 2).
A64_CPUS ?= cortex-a53 cortex-a76
test-aarch64:
	@$(MAKE) --no-print-directory $(A64_BIN)
	AKT_TIMEOUT_SCALE=10 $(QEMU) $(A64_BIN) $(TEST)
	@set -e; for cpu in $(A64_CPUS); do \
	    echo "AKT_TIMEOUT_SCALE=10 $(QEMU) -cpu $$cpu $(A64_BIN) $${TEST:-distance}"; \
	    AKT_TIMEOUT_SCALE=10 $(QEMU) -cpu $$cpu $(A64_BIN) $${TEST:-distance}; done

# --------------------------------------------------------------------------

check-abi: lib $(ABI_V1)
	CC='$(CC)' scripts/check-abi.sh $(SHARED) include/akidb.h scripts/abi-symbols.txt
	@d=$$(mktemp -d) && $(ABI_V1) $$d/db && rm -rf $$d

# The benchmarks live in bench/bench.mk (run from the repository root); it
# receives BUILD, CC, LIB (the static library) and BENCH_LIBS (what to link
# after it).  BENCH_ARGS=... on the command line reaches it too.
bench:
	@$(MAKE) --no-print-directory all
	@if [ ! -f bench/bench.mk ]; then \
	    echo "make bench: bench/bench.mk does not exist yet (the benchmarks live there)" >&2; \
	    exit 1; fi
	$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD) CC='$(CC)' \
	    LIB=$(STATIC) BENCH_LIBS='$(LIBS)'
	$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD) CC='$(CC)' \
	    LIB=$(STATIC) BENCH_LIBS='$(LIBS)' durability
	$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD) CC='$(CC)' \
	    LIB=$(STATIC) BENCH_LIBS='$(LIBS)' store
	$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD) CC='$(CC)' \
	    LIB=$(STATIC) BENCH_LIBS='$(LIBS)' snapshot
	$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD) CC='$(CC)' \
	    LIB=$(STATIC) BENCH_LIBS='$(LIBS)' tier
	$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD) CC='$(CC)' \
	    LIB=$(STATIC) BENCH_LIBS='$(LIBS)' ingest
	$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD) CC='$(CC)' \
	    LIB=$(STATIC) BENCH_LIBS='$(LIBS)' quant

# `make run` starts akidb-server in the foreground (README: "Run it").
# CI (.ci/run) counts "still running" as success only after the echo.
run:
	@$(MAKE) --no-print-directory all
	@echo "make run: starting $(SERVER_BIN)"
	$(SERVER_BIN)

# --------------------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PCDIR)
	install -m 644 include/akidb.h $(DESTDIR)$(INCLUDEDIR)/akidb.h
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libakidb.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/libakidb.so.$(VERSION)
	ln -sf libakidb.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf libakidb.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libakidb.so
	install -m 644 $(PC) $(DESTDIR)$(PCDIR)/akidb.pc
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/akidb $(DESTDIR)$(PREFIX)/bin/akidb
	install -m 755 $(SERVER_BIN) $(DESTDIR)$(PREFIX)/bin/akidb-server

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/akidb $(DESTDIR)$(PREFIX)/bin/akidb-server
	rm -f $(DESTDIR)$(INCLUDEDIR)/akidb.h \
	      $(DESTDIR)$(LIBDIR)/libakidb.a \
	      $(DESTDIR)$(LIBDIR)/libakidb.so.$(VERSION) \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libakidb.so \
	      $(DESTDIR)$(PCDIR)/akidb.pc

clean:
	rm -rf $(sort build build-asan build-tsan build-fuzz $(BUILD))

FORCE:

-include $(wildcard $(BUILD)/lib/*/*.d $(BUILD)/test/*.d $(BUILD)/examples/*.d $(BUILD)/*.d \
                    $(A64_DIR)/lib/*/*.d $(A64_DIR)/test/*.d)

endif # pass 2
