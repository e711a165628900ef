# fluxloop - experiment runner for AI agents (C core, Lua 5.4 layer).
# Objects go under build/; `make deps` installs the Debian packages the build needs.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
BUILD   ?= build

PKGS    := lua5.4 yaml-0.1 libcjson libffi libpcre2-8
# libcurl: its headers only. fluxloop.http loads it with dlopen when first used (src/curlapi.c),
# so a run that makes no request does not map it and the 30-odd libraries it needs.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) libcurl 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wwrite-strings
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) $(CFLAGS) \
              -Iinclude -Isrc $(PKG_CFLAGS)
# -Wl,-E lets Lua C modules and native agents loaded with dlopen see our symbols.
ALL_LDFLAGS := -Wl,-E $(LDFLAGS)
LIBS = $(PKG_LIBS) -ldl -lm -lpthread

# Every src/*.c except the two program entry points is part of the core.
ENTRY   := src/main.c src/interp.c
CORE_SRC := $(filter-out $(ENTRY),$(wildcard src/*.c))
LUA_SRC := $(sort $(wildcard lua/*.lua lua/fluxloop/*.lua lua/fluxloop/*/*.lua))
# The report's HTML/SVG templates are embedded the same way (read with fluxloop.template).
LUA_SRC += $(sort $(wildcard lua/fluxloop/report/*.html))
# The files `init project` and `generate inputs` write from (lua/fluxloop/templates/README.md).
LUA_SRC += $(sort $(filter-out %/README.md,$(shell find lua/fluxloop/templates -type f)))

OBJ     := $(BUILD)/obj
GEN     := $(BUILD)/gen
CORE_OBJ := $(CORE_SRC:src/%.c=$(OBJ)/%.o) $(OBJ)/embedded_lua.o $(OBJ)/modules.o

BIN     := $(BUILD)/fluxloop
INTERP  := $(BUILD)/fluxloop-lua
# The native examples: an agent (examples/native/echo_agent.c) and a plain C library.
EXAMPLES := $(BUILD)/examples/libecho_agent.so $(BUILD)/examples/libtextstats.so
# A worker-protocol agent in C (examples/process/agents/echo_worker.c): a program, not a library.
EXAMPLES += $(BUILD)/examples/echo_worker

.PHONY: all deps demo test test-asan test-browser test-slurm bench install clean fixtures
all: $(BIN) $(INTERP) $(EXAMPLES)

deps:
	@sh src/tools/install-deps.sh

$(OBJ) $(GEN):
	@mkdir -p $@

# Compile lines are shortened to "CC file"; `make V=1` shows them whole.
Q := $(if $(V),,@)
$(OBJ)/%.o: src/%.c $(wildcard src/*.h) include/fluxloop/agent.h | $(OBJ)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# The Lua layer is compiled in as source, one entry per module.
$(BUILD)/embed_lua: src/tools/embed_lua.c | $(OBJ)
	$(Q)$(CC) -std=c99 -O1 $(WARN) $< -o $@

$(GEN)/embedded_lua.c: $(LUA_SRC) $(BUILD)/embed_lua | $(GEN)
	$(Q)$(BUILD)/embed_lua $@ $(LUA_SRC)

# The table of C modules is found from the luaopen_fluxloop_* definitions themselves.
$(GEN)/modules.c: $(CORE_SRC) src/tools/gen_modules.sh | $(GEN)
	$(Q)sh src/tools/gen_modules.sh $(CORE_SRC) > $@

$(OBJ)/embedded_lua.o: $(GEN)/embedded_lua.c | $(OBJ)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(OBJ)/modules.o: $(GEN)/modules.c | $(OBJ)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BIN): $(OBJ)/main.o $(CORE_OBJ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $^ $(LIBS) -o $@

$(INTERP): $(OBJ)/interp.o $(CORE_OBJ)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $^ $(LIBS) -o $@

# C fixtures for the specs (native agents, etc.).
FIXTURE_SRC := $(wildcard spec/fixtures/*.c)
FIXTURES := $(FIXTURE_SRC:spec/fixtures/%.c=$(BUILD)/spec/%.so)
$(BUILD)/spec/%.so: spec/fixtures/%.c include/fluxloop/agent.h
	@mkdir -p $(dir $@)
	$(CC) -std=c99 $(WARN) -O1 -shared -fPIC -Iinclude $< -o $@
fixtures: $(FIXTURES)

$(BUILD)/examples/echo_worker: examples/process/agents/echo_worker.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(WARN) -O2 $< -o $@

$(BUILD)/examples/lib%.so: examples/native/%.c include/fluxloop/agent.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -std=c99 $(WARN) -O2 -shared -fPIC -Iinclude $< -o $@

# Fuzzing (spec/fuzz/, README "Fuzzing"): one harness per input format.  `make fuzz` runs each
# under libFuzzer for FUZZ_SECONDS, at most FUZZ_JOBS at once; `make test` replays the kept
# corpus through the same harnesses built with $(CC) and a plain main (no clang needed).
.PHONY: fuzz fuzz-bin fuzz-replay
FUZZ_TARGETS := json yaml config inputs recording jsonl
FUZZ_SECONDS ?= 600
FUZZ_JOBS ?= 2
FUZZ_MAIN ?= spec/fuzz/replay_main.c
FUZZ_BIN := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined
$(FUZZ_BIN): $(BUILD)/fuzz/%: spec/fuzz/%.c spec/fuzz/fuzz.c spec/fuzz/fuzz.h $(FUZZ_MAIN) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Ispec/fuzz $(filter %.c,$^) $(CORE_OBJ) $(ALL_LDFLAGS) $(LIBS) -o $@
fuzz-bin: $(FUZZ_BIN)

fuzz-replay: $(FUZZ_BIN)
	@for t in $(FUZZ_TARGETS); do \
	  $(BUILD)/fuzz/$$t spec/fuzz/corpus/$$t spec/fuzz/seeds/$$t || exit 1; done

# libFuzzer builds go to $(BUILD)/fuzz/libfuzzer (clang is installed when missing).
fuzz:
	@sh spec/fuzz/fuzz.sh check-clang
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzz/libfuzzer CC=clang CFLAGS="$(FUZZ_CFLAGS)" \
	  LDFLAGS="-fsanitize=fuzzer,address,undefined" FUZZ_MAIN= fuzz-bin
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) \
	  sh spec/fuzz/fuzz.sh run $(BUILD)/fuzz/libfuzzer/fuzz $(FUZZ_TARGETS)

demo: all
	$(BIN) run experiment --iterations 2

test: all fixtures fuzz-bin
	@FLUXLOOP_BIN=$(abspath $(BIN)) FLUXLOOP_BUILD=$(abspath $(BUILD)) \
	  sh spec/run.sh $(abspath $(INTERP)) spec

# The integration specs again, against a binary built with ASan and UBSan. handle_segv=0 and
# friends: the isolation specs crash agents on purpose, and those signals must stay signals.
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
test-asan:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan CFLAGS="$(ASAN_FLAGS)" \
	  LDFLAGS="-fsanitize=address,undefined" $(BUILD)/asan/fluxloop
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(MAKE) --no-print-directory BUILD=$(BUILD)/asan CFLAGS="$(ASAN_FLAGS)" \
	  LDFLAGS="-fsanitize=address,undefined" fuzz-replay
	@$(MAKE) --no-print-directory all fixtures
	@FLUXLOOP_BIN=$(abspath $(BUILD)/asan/fluxloop) FLUXLOOP_BUILD=$(abspath $(BUILD)) \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99:handle_segv=0:handle_sigbus=0:handle_sigfpe=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=98 \
	  sh spec/run.sh $(abspath $(INTERP)) spec/integration

# The HTML report in headless Chromium (spec/browser/, slow: not part of `make test`); saves
# build/report.png, the screenshot docs/report.png is copied from.
test-browser: all fixtures
	@FLUXLOOP_BIN=$(abspath $(BIN)) FLUXLOOP_BUILD=$(abspath $(BUILD)) \
	  sh spec/run.sh $(abspath $(INTERP)) --pattern=_browser spec/browser
# A real one-node Slurm cluster (slurm-wlm and munge, as root): examples/slurm's array of 4
# shards and the merge chained after it, compared with a one-machine run (spec/slurm/).
test-slurm: all
	@FLUXLOOP_BIN=$(abspath $(BIN)) FLUXLOOP_BUILD=$(abspath $(BUILD)) sh spec/slurm/run.sh $(abspath $(INTERP))

bench: all fixtures
	@$(INTERP) spec/bench/bench.lua $(abspath $(BIN))
	@$(INTERP) spec/bench/http_bench.lua $(abspath $(BIN))
	@$(INTERP) spec/bench/generate_bench.lua $(abspath $(BIN))

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/fluxloop
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/fluxloop
	install -m 644 include/fluxloop/agent.h $(DESTDIR)$(PREFIX)/include/fluxloop/agent.h
	install -d $(DESTDIR)$(PREFIX)/share/fluxloop/python/fluxloop
	install -m 644 python/fluxloop_worker.py $(DESTDIR)$(PREFIX)/share/fluxloop/python/fluxloop_worker.py
	install -m 644 python/fluxloop/*.py $(DESTDIR)$(PREFIX)/share/fluxloop/python/fluxloop/

clean:
	rm -rf $(BUILD)
