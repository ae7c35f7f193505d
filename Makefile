# SPDX-License-Identifier: MIT
# The README's commands.  CMake does the building; this file only names the
# jobs and installs missing build tools on a fresh Debian machine.
#
#   make run         build, then run the main job: rlbench --quick, its table,
#                    CSV and plots in bench/results/
#   make test        build, then run every test
#   make test-tsan   the tests under ThreadSanitizer
#   make test-asan   the tests under AddressSanitizer + UndefinedBehaviorSanitizer

BUILD    ?= build
MAKEFLAGS += --no-print-directory
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all run example test test-tsan test-asan deps clean

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

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-tsan:
	$(MAKE) test BUILD=build-tsan CMAKE_FLAGS="-DRANGELOCK_SANITIZE=thread"

test-asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DRANGELOCK_SANITIZE=address"

clean:
	rm -rf build build-tsan build-asan

.PHONY: FORCE
FORCE:
