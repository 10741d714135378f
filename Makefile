# hotcb-go build. `make test` and `make demo` work on a fresh Debian bookworm machine: they
# install what is missing (deps) and build the libtorch shim once (build/libhotcb_torch.so).
SHELL := /bin/bash
GO ?= go
PREFIX ?= /usr/local
BUILD := build
SHIM := $(BUILD)/libhotcb_torch.so

# Where libtorch lives. Debian's libtorch-dev by default; point these at a PyTorch wheel's
# torch/include and torch/lib to build a shim against that libtorch (see scripts/gpu-check.sh).
TORCH_INCLUDE ?= /usr/include
TORCH_LIB ?=
CXX11_ABI ?= 1
WITH_CUDA ?= 0
CUDA_HOME ?= /usr/local/cuda

CXX ?= g++
CXXFLAGS ?= -O2 -g0
# The C++ standard follows the compiler: C++20 when it has it (libtorch >= 2.14 requires it;
# 1.13 and 2.6 accept it), else C++17, which libtorch before 2.14 still takes. check-cxx says
# clearly when the compiler is too old for the libtorch in use.
CXX_STD ?= $(shell echo 'int main(){}' | $(CXX) -std=c++20 -x c++ -fsyntax-only - >/dev/null 2>&1 && echo c++20 || echo c++17)
SHIM_CXXFLAGS := -std=$(CXX_STD) -fPIC -fvisibility=hidden -D_GLIBCXX_USE_CXX11_ABI=$(CXX11_ABI) \
	-I$(TORCH_INCLUDE) -I$(TORCH_INCLUDE)/torch/csrc/api/include -Icpp -Wall -Wno-unused-parameter
comma := ,
SHIM_LDFLAGS := $(if $(TORCH_LIB),-L$(TORCH_LIB) -Wl$(comma)-rpath$(comma)$(TORCH_LIB)) \
	-Wl,--no-as-needed -ltorch -ltorch_cpu -lc10
ifeq ($(WITH_CUDA),1)
SHIM_CXXFLAGS += -DHOTCB_WITH_CUDA -I$(CUDA_HOME)/include
SHIM_LDFLAGS += -ltorch_cuda -lc10_cuda -L$(CUDA_HOME)/lib64 -lcudart
endif
CPP_SRC := $(wildcard cpp/*.cpp)
CPP_OBJ := $(patsubst cpp/%.cpp,$(BUILD)/obj/%.o,$(CPP_SRC))

# Packages the build, the tests and the demo need. libgloo-dev holds the Gloo headers that c10d's
# ProcessGroupGloo.hpp includes (cpp/dist.cpp). python3-torch and python3-numpy are only for
# the cross-checks against PyTorch in tests and benchmarks. chromium is the headless browser the
# tests of hotcb serve's page drive (serve/browser; they skip, saying so, without it).
DEB_PACKAGES := libtorch-dev libgloo-dev libopenblas0-pthread g++ make pkg-config python3-torch python3-numpy chromium

.PHONY: all deps shim build test test-short bench bench-smoke bench-instr bench-instr-check bench-instr-smoke deps-instr demo lint install check-libtorch2 check-cxx clean

all: build

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing" $$missing; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The shim's translation units (the generated ATen tables are eight of them) compile in
# parallel, one job per CPU.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
shim:
	@$(MAKE) --no-print-directory -j$(JOBS) $(SHIM)

# Objects are rebuilt when the compile flags change (another standard, ABI, libtorch).
FLAGS_STAMP := $(BUILD)/obj/flags.txt
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@); f='$(CXX) $(CXXFLAGS) $(SHIM_CXXFLAGS)'; [ "$$(cat $@ 2>/dev/null)" = "$$f" ] || echo "$$f" > $@
.PHONY: FORCE
FORCE:

check-cxx:
	@scripts/check-cxx.sh "$(CXX)" "$(CXX_STD)" "$(TORCH_INCLUDE)"

$(BUILD)/obj/%.o: cpp/%.cpp cpp/hotcb_torch.h cpp/internal.h cpp/value.h cpp/aten_call.h cpp/aten_gen.h $(FLAGS_STAMP) | check-cxx
	@mkdir -p $(dir $@)
	@echo "c++ $<"
	@$(CXX) $(CXXFLAGS) $(SHIM_CXXFLAGS) -c $< -o $@

$(SHIM): $(CPP_OBJ)
	$(CXX) -shared -o $@ $^ -Wl,-soname,libhotcb_torch.so $(SHIM_LDFLAGS)

# bin/hotcb is pure Go (CGO_ENABLED=0: static, no libtorch, a command in milliseconds); it hands
# train over to bin/hotcb-torch, the same CLI linked with libtorch (see README, CLI reference).
BIN_BUILD = CGO_ENABLED=0 $(GO) build -o bin/hotcb ./cmd/hotcb && $(GO) build -o bin/hotcb-torch ./cmd/hotcb-torch

build: deps shim
	$(GO) build ./...
	$(BIN_BUILD)

test: deps shim
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...
	set -o pipefail; $(GO) test -count=1 -run 'TestTrainingLoopMemoryIsFlat' -v ./bridge/ | grep -E 'steps:|^(ok|FAIL|---)' 

# Bridge vs C++ libtorch and PyTorch, plus the control plane, command latency, the CLI's run,
# callback overhead and memory (bench/cmd/benchrun, bench/plane; see bench/README.md): ~9 minutes;
# bench-smoke: under a minute (must stay under two: CI runs it). Python is skipped, and says so, when python3-torch is missing.
BENCH_FLAGS := -torch-include $(TORCH_INCLUDE) $(if $(TORCH_LIB),-torch-lib $(TORCH_LIB))
bench: deps shim
	$(GO) run ./bench/cmd/benchrun $(BENCH_FLAGS) -out bench/results/latest.json

bench-smoke: deps shim
	$(GO) run ./bench/cmd/benchrun $(BENCH_FLAGS) -smoke

# Instruction counts under callgrind beside the training-step section's wall times (bench/README.md,
# Instruction counts): one report per run, bench/results/instr-<UTC time>.json. bench-instr-check:
# the three newest reports agree within ±1% on every instruction ratio. bench-instr-smoke: a few
# rows, short windows (not a measurement), after the test that counts windows under callgrind.
bench-instr: deps deps-instr shim
	$(GO) run -tags callgrind ./bench/cmd/benchrun $(BENCH_FLAGS) -sections steps,instr -counted -out bench/results/instr-$$(date -u +%Y%m%dT%H%M%SZ).json

bench-instr-check:
	$(GO) run ./bench/cmd/instrcheck

bench-instr-smoke: deps deps-instr shim
	$(GO) test -tags callgrind -count=1 -run TestWindowUnderCallgrind ./bench/instr
	$(GO) run -tags callgrind ./bench/cmd/benchrun $(BENCH_FLAGS) -smoke -sections instr -only 'MLP 32-64-10 b16 step, Scope' -out $(BUILD)/bench/smoke-instr.json

deps-instr:
	@command -v valgrind >/dev/null || { sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends valgrind; }

demo: deps shim
	$(BIN_BUILD)
	bin/hotcb --dir runs/demo train

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

install: shim
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(SHIM) $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 cpp/hotcb_torch.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|g' scripts/hotcb_torch.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/hotcb_torch.pc
	@echo "installed; in your module: CGO_LDFLAGS=\"\$$(pkg-config --libs hotcb_torch)\" go build ./..."

# Compile-only check of cpp/ against newer libtorch headers (downloaded once into build/, not
# installed): Debian trixie's 2.6 and unstable's newest (2.14 in 2026-11), with the standard the
# Makefile picks for each. The files compile in parallel, two at a time.
LIBTORCH2_SUITES ?= trixie sid
check-libtorch2:
	@checked=""; for suite in $(LIBTORCH2_SUITES); do \
		root=$$(scripts/fetch-libtorch2-headers.sh $(BUILD)/libtorch-$$suite $$suite) || exit 1; \
		inc=$$root/usr/include; \
		ver=$$(scripts/torch-version.sh $$inc); \
		scripts/check-cxx.sh "$(CXX)" "$(CXX_STD)" "$$inc" || exit 1; \
		echo "check-libtorch2: libtorch $$ver ($$suite), -std=$(CXX_STD)"; \
		printf '%s\n' $(CPP_SRC) | xargs -P 2 -I{} sh -c 'echo "c++ -fsyntax-only {}"; $(CXX) -std=$(CXX_STD) -fsyntax-only -D_GLIBCXX_USE_CXX11_ABI=1 -I'$$inc' -I'$$inc'/torch/csrc/api/include -Icpp {}' || exit 1; \
		checked="$$checked $$ver"; \
	done; echo "check-libtorch2: cpp/ compiles against libtorch$$checked"

# Fuzzing: `make fuzz` runs every fuzz target for FUZZTIME (default 60s), one after the other
# (go test -fuzz takes one target per run); `make fuzz-ci` gives each 10s. Seeds live in each
# package's testdata/fuzz/<Target>/; a failing input is written there too. The last line per
# target's exec count is summarised at the end. Each input that finds new coverage is minimised
# for up to FUZZMINTIME (go's default, 60s, can stall a short run: the test binaries that link
# libtorch and cobra minimise slowly).
FUZZTIME ?= 60s
FUZZMINTIME ?= 3s
FUZZ_TARGETS := ops:FuzzParse controller:FuzzParseConfig rundir:FuzzReadStatus cli:FuzzParseKV \
	rundir:FuzzReadRecipe rundir:FuzzParseAdjust params:FuzzDecode bridge/torchfile:FuzzRead \
	bridge/torchfile:FuzzPickle data:FuzzReadIDX callbacks/jsonl:FuzzLineString
.PHONY: fuzz fuzz-ci
fuzz: deps shim
	@mkdir -p $(BUILD)/fuzz; set -o pipefail; for pt in $(FUZZ_TARGETS); do pkg=$${pt%%:*}; fn=$${pt##*:}; \
		echo "== fuzz ./$$pkg $$fn for $(FUZZTIME)"; \
		scripts/fuzz-one.sh $(GO) $$pkg $$fn $(FUZZTIME) $(FUZZMINTIME) $(BUILD)/fuzz/$$fn.log || exit 1; \
	done; echo "fuzz summary (each target $(FUZZTIME)):"; for pt in $(FUZZ_TARGETS); do fn=$${pt##*:}; \
		printf '  %-36s %s\n' "$${pt%%:*} $$fn" "$$(grep -o 'execs: [0-9]*' $(BUILD)/fuzz/$$fn.log | tail -1)"; done

fuzz-ci:
	$(MAKE) fuzz FUZZTIME=10s

# The GPU check (see scripts/gpu-check.sh): a bundle of test binaries and the shim sources to
# carry to a machine with an NVIDIA GPU and PyTorch, and a dry run of it on this CPU machine.
gpu-bundle: deps shim
	scripts/build-gpu-bundle.sh $(BUILD)/gpu-bundle

gpu-check-dry: gpu-bundle
	GPU_CHECK_ALLOW_CPU=1 $(BUILD)/gpu-bundle/scripts/gpu-check.sh $(BUILD)/gpu-bundle

# Generated code: the yaegi symbol tables of go_file callbacks (they must match the public APIs
# they expose), README.md's table of built-in callbacks (from their descriptions in
# callbacks/spec) and the ATen op surface (cmd/atengen: package aten, aten/atentable,
# aten/COVERAGE.md, cpp/aten_gen_*.cpp) from the op schemas of the libtorch in TORCH_INCLUDE.
# check-generate regenerates them and fails if that changed anything (the committed ATen
# surface is Debian's libtorch 1.13's).
GENERATED := gofile/symbols README.md aten cpp/aten_gen_*.cpp cpp/aten_gen_index.cpp
.PHONY: generate
generate:
	$(GO) generate ./gofile/... ./callbacks/spec
	$(GO) run ./cmd/atengen -torch-include $(TORCH_INCLUDE)

check-generate: generate
	@git diff --exit-code --stat -- $(GENERATED) && [ -z "$$(git status --porcelain --untracked-files=all -- $(GENERATED))" ] || \
		{ echo "generated code is out of date: run 'make generate' and commit"; exit 1; }

clean:
	rm -rf $(BUILD) bin
