# SPDX-License-Identifier: MIT
# The README's commands.  CMake does the building; this file only names the
# jobs and installs missing build tools on a fresh Debian machine.
#
#   make run         build, then run the main job: rlbench --quick, its table,
#                    CSV and plots in bench/results/
#   make test        build, then run every test
#   make test-tsan   the tests under ThreadSanitizer
#   make test-asan   the tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make install PREFIX=/usr/local   header, libraries, man pages, pkg-config
#                    and CMake package files under PREFIX

BUILD    ?= build
MAKEFLAGS += --no-print-directory
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all run example test test-tsan test-asan install deps clean

PREFIX   ?= /usr/local

all: $(BUILD)/.built

deps:
	@scripts/install-deps.sh

$(BUILD)/.built: deps FORCE
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@touch $@

run: all
	@scripts/install-deps.sh --optional gnuplot-nox valgrind || true
	@mkdir -p bench/results
	$(BUILD)/bench/rlbench --quick --csv bench/results/quick.csv
	@bench/plot.sh bench/results/quick.csv bench/results

example: all
	$(BUILD)/examples/file_ranges

# The header is also compiled by g++/clang/clang++, man pages are linted
# with groff and man, and an installed copy is found with pkg-config: those
# tests install their tools when they can and are skipped when they cannot.
TEST_TOOLS = g++ clang pkg-config groff-base man-db

test: all
	@scripts/install-deps.sh --optional $(TEST_TOOLS) || true
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-tsan:
	$(MAKE) test BUILD=build-tsan CMAKE_FLAGS="-DRANGELOCK_SANITIZE=thread"

test-asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DRANGELOCK_SANITIZE=address"

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf build build-tsan build-asan

.PHONY: FORCE
FORCE:
