MAKEFLAGS += --no-print-directory
# twin - one binary, four pipelines. See README.md and docs/.
#
#   make                 debug build (-O0 -g; src/nn at -O2), binary at ./twin
#   make release         optimized build (-O3) at ./twin
#   make test            build and run all tests (unit, e2e, fuzz corpus replay)
#   make check           check-deps + check-headers + -Werror release build + all tests under
#                        ASan+UBSan
#                        + a short libFuzzer run of every fuzz target
#   make SANITIZE=address,undefined test
#   make fuzz            libFuzzer builds of tests/fuzz/*.c (FUZZ_TIME=seconds per target)
#   make bench           benchmarks (twin bench all)

SHELL := /bin/bash
CC ?= cc
ifeq ($(CC),cc)
CC := gcc
endif

MODE ?= debug
SANITIZE ?=
ifneq ($(SANITIZE),)
B ?= build-san
else ifeq ($(MODE),release)
B ?= build-release
else
B ?= build
endif

PKGS := sqlite3 libcurl libcjson inih libutf8proc gumbo libarchive libgit2 libpcre2-8 libmicrohttpd
DEPS_OK := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)
ifneq ($(DEPS_OK),yes)
$(info twin: some libraries are missing; running scripts/install-deps)
$(shell scripts/install-deps >&2)
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS)) -lz

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wvla -Werror
CSTD := -std=c11 -D_GNU_SOURCE
ifeq ($(MODE),release)
OPT := -O3 -g -DNDEBUG
NN_OPT := -O3 -g -DNDEBUG
else
OPT := -O0 -g
NN_OPT := -O2 -g
endif
ifneq ($(SANITIZE),)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
NN_OPT := $(OPT)
LDSAN := -fsanitize=$(SANITIZE)
endif
CFLAGS_ALL := $(CSTD) $(WARN) -iquote src -iquote $(B)/gen -MMD -MP $(PKG_CFLAGS) -pthread
LDLIBS := $(PKG_LIBS) -lm -pthread $(LDSAN)

# Layers, bottom up (STYLE §1): a module may include its own layer or lower ones.
LAYER_base := 0
LAYER_nn := 1
LAYER_store := 2
LAYER_queue := 2
LAYER_vector := 2
LAYER_registry := 2
LAYER_collect := 3
LAYER_feature := 3
LAYER_train := 3
LAYER_rag := 3
LAYER_serve := 4
LAYER_cli := 5
LIB_MODULES := base nn store queue vector registry collect feature train rag serve

LIB_SRCS := $(foreach m,$(LIB_MODULES),$(wildcard src/$(m)/*.c))
ARCH_AVX2_SRCS := $(wildcard src/*/arch/avx2/*.c)
ARCH_AVX512_SRCS := $(wildcard src/*/arch/avx512/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o) $(ARCH_AVX2_SRCS:%.c=$(B)/%.o) $(ARCH_AVX512_SRCS:%.c=$(B)/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(B)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/fuzz-replay/%)
BENCH_SRCS := $(wildcard bench/*.c)

.PHONY: all release test check check-deps check-headers check-banned fuzz fuzz-run bench clean run \
	unit-tests

all: twin

release:
	$(MAKE) MODE=release twin

# ./twin points at the last plain (debug or release) build; sanitizer builds stay in build-san/
# so that benchmarks and users never run an instrumented binary by accident.
twin: $(B)/twin
ifeq ($(SANITIZE),)
	@ln -sf $(B)/twin twin
endif

$(B)/twin: $(CLI_OBJS) $(B)/libtwin.a
	$(CC) $(OPT) -o $@ $(CLI_OBJS) $(B)/libtwin.a $(LDLIBS)

$(B)/libtwin.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(B)/gen/commands.h: $(CLI_SRCS) Makefile
	@mkdir -p $(@D)
	@sed -n 's/^TW_COMMAND(\([a-z_0-9]*\),.*/X(\1)/p' $(CLI_SRCS) | sort > $@.tmp && mv $@.tmp $@

$(B)/gen/benches.h: $(CLI_SRCS) Makefile
	@mkdir -p $(@D)
	@sed -n 's/^TW_BENCH(\([a-z_0-9]*\),.*/X(\1)/p' $(CLI_SRCS) | sort > $@.tmp && mv $@.tmp $@

$(B)/gen/subcommands.h: $(CLI_SRCS) Makefile
	@mkdir -p $(@D)
	@sed -n 's/^TW_SUBCOMMAND(\([a-z_0-9]*\), *\([a-z_0-9]*\),.*/X(\1, \2)/p' $(CLI_SRCS) | sort > $@.tmp && mv $@.tmp $@

$(B)/src/cli/main.o: $(B)/gen/commands.h
$(B)/src/cli/subcommand.o: $(B)/gen/subcommands.h
$(B)/src/cli/cmd_bench.o: $(B)/gen/benches.h

$(B)/src/nn/%.o: src/nn/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(NN_OPT) -c -o $@ $<

# The training optimizer's loops take sqrtf of values that are never negative: without errno
# to set, the compiler may vectorize them (same IEEE results).
$(B)/src/nn/train_optim.o: NN_OPT += -fno-math-errno

$(B)/src/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(OPT) -c -o $@ $<

$(ARCH_AVX2_SRCS:%.c=$(B)/%.o): $(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(NN_OPT) -mavx2 -mfma -mf16c -c -o $@ $<

$(ARCH_AVX512_SRCS:%.c=$(B)/%.o): $(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(NN_OPT) -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c -c -o $@ $<

$(B)/tests/test.o: tests/unit/test.c tests/unit/test.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(OPT) -c -o $@ $<

# httpd_test.o: the tests' HTTP server on 127.0.0.1 (libmicrohttpd), linked into every unit test
# binary and into httpd-serve, the server the e2e crawl scripts start.
$(B)/tests/httpd_test.o: tests/unit/httpd_test.c tests/unit/httpd_test.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(OPT) -c -o $@ $<

$(B)/tests/httpd-serve: tests/unit/httpd_serve.c $(B)/tests/httpd_test.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(OPT) -iquote tests/unit -o $@ $< $(B)/tests/httpd_test.o $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/tests/test.o $(B)/tests/httpd_test.o $(B)/libtwin.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(OPT) -iquote tests/unit -o $@ $< $(B)/tests/test.o $(B)/tests/httpd_test.o $(B)/libtwin.a $(LDLIBS)

# Fuzz targets replayed over their corpus (tests/fuzz/corpus/<target>/*) by a plain driver.
$(B)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay.c $(B)/libtwin.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(OPT) -o $@ $< tests/fuzz/replay.c $(B)/libtwin.a $(LDLIBS)

unit-tests: $(B)/twin $(UNIT_BINS) $(REPLAY_BINS) $(B)/tests/httpd-serve

test: unit-tests
	@B=$(B) tests/run.sh

# The fuzz runs come first so that the test summary ("N passed, N failed") is the last line.
check: check-deps check-headers check-banned
	$(MAKE) -j2 release
	$(MAKE) fuzz-run FUZZ_TIME=$${FUZZ_TIME:-5}
	$(MAKE) -j2 SANITIZE=address,undefined unit-tests
	$(MAKE) SANITIZE=address,undefined test

check-deps:
	@scripts/check-deps

check-headers:
	@mkdir -p $(B)/hdr; fail=0; for h in $$(find src -name '*.h'); do \
		echo "#include \"$${h#src/}\"" > $(B)/hdr/t.c; \
		$(CC) $(CSTD) $(WARN) -iquote src -iquote $(B)/gen $(PKG_CFLAGS) -fsyntax-only $(B)/hdr/t.c || { echo "header $$h does not compile alone"; fail=1; }; \
	done; exit $$fail

check-banned:
	@if grep -nE '\b(strcpy|strcat|strncpy|sprintf|vsprintf|strtok|atoi|gmtime|localtime)[[:space:]]*\(' \
		$$(find src tests $$(ls -d bench 2>/dev/null) -name '*.c' -o -name '*.h') | grep -v 'sorry_'; then \
		echo "banned functions used (see STYLE §4)"; exit 1; fi

FUZZ_B := build-fuzz
FUZZ_CFLAGS := $(CSTD) -Wall -Wextra -iquote src $(PKG_CFLAGS) -pthread -O1 -g -fsanitize=fuzzer,address,undefined
FUZZ_LIB_SRCS := $(LIB_SRCS)
fuzz: $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_B)/%)

$(FUZZ_B)/libtwin.a: $(FUZZ_LIB_SRCS) $(ARCH_AVX2_SRCS) $(ARCH_AVX512_SRCS)
	@mkdir -p $(FUZZ_B)/obj
	@rm -f $(FUZZ_B)/obj/*.o
	@for f in $(FUZZ_LIB_SRCS); do o=$(FUZZ_B)/obj/$$(echo $$f | tr / _).o; \
		clang $(FUZZ_CFLAGS:-fsanitize=fuzzer%=-fsanitize=fuzzer-no-link,address,undefined) -c -o $$o $$f || exit 1; done
	@for f in $(ARCH_AVX2_SRCS); do o=$(FUZZ_B)/obj/$$(echo $$f | tr / _).o; \
		clang $(FUZZ_CFLAGS:-fsanitize=fuzzer%=-fsanitize=fuzzer-no-link,address,undefined) -mavx2 -mfma -mf16c -c -o $$o $$f || exit 1; done
	@for f in $(ARCH_AVX512_SRCS); do o=$(FUZZ_B)/obj/$$(echo $$f | tr / _).o; \
		clang $(FUZZ_CFLAGS:-fsanitize=fuzzer%=-fsanitize=fuzzer-no-link,address,undefined) -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c -c -o $$o $$f || exit 1; done
	ar rcs $@ $(FUZZ_B)/obj/*.o

$(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_B)/libtwin.a
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_B)/libtwin.a $(PKG_LIBS) -lz -lm

fuzz-run: fuzz
	@for f in $(FUZZ_SRCS:tests/fuzz/%.c=%); do \
		mkdir -p $(FUZZ_B)/corpus/$$f; \
		echo "fuzz $$f for $${FUZZ_TIME:-60}s"; \
		$(FUZZ_B)/$$f -max_total_time=$${FUZZ_TIME:-60} -max_len=65536 -timeout=10 \
			$(FUZZ_B)/corpus/$$f $$( [ -d tests/fuzz/corpus/$$f ] && echo tests/fuzz/corpus/$$f ) \
			> $(FUZZ_B)/$$f.log 2>&1 || { tail -40 $(FUZZ_B)/$$f.log; exit 1; }; \
	done

# The hnswlib peer for `twin bench vector` (Debian libhnswlib-dev, header-only); never needed by
# `make test`. Built with every advantage: -O3 -march=native.
$(B)/bench/hnswlib_peer: bench/hnswlib_peer.cpp
	@mkdir -p $(@D)
	$(CXX) -O3 -march=native -DNDEBUG -o $@ $< -pthread

bench: release
	$(MAKE) MODE=release build-release/bench/hnswlib_peer
	./twin bench all

run: twin
	scripts/demo

clean:
	rm -rf build build-san build-release build-fuzz twin

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d)
