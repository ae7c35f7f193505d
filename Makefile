# SPDX-License-Identifier: MIT
# The README's commands.  CMake does the building; this file only names the
# jobs and installs missing build tools on a fresh Debian machine.
#
#   make run         build, then run the main job: rlbench --quick, its table,
#                    CSV and plots in $(BUILD)/results/ (untracked; the
#                    committed plots in bench/results/ are from a full run)
#   make test        build, then run every test
#   make test-tsan   the tests under ThreadSanitizer
#   make test-asan   the tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make verify      model-check the protocols with SPIN (verify/run.sh): the
#                    lock, the shared regions, the etcd locks
#   make fuzz        fuzz the API against the reference model for FUZZ_SECONDS
#   make soak        the long runs (scripts/soak.sh): stress with 256 threads
#                    and with the table growing, ranges over blocks,
#                    processes killed while they share a lock, rlfile's
#                    torture on tmpfs, disk and mappings, rlfs's torture
#                    and fio mix; SOAK_SECONDS each (default 60, about
#                    17 min)
#   make etcd-bench  librangelock-etcd against etcd itself (bench/etcd_bench.c),
#                    on an etcd member of its own
#   make rlfs-bench  rlfs against the plain file system and libfuse's
#                    passthrough_ll: a tree of small files, large files, fio
#                    (bench/rlfs-tree.sh); then the fio mix on --lock=range
#                    and --lock=file side by side (bench/rlfs-fio.sh); root
#   make posix       pjdfstest, the POSIX file-system suite, inside two rlfs
#                    mounts (default, --kernel-cache): every assertion must
#                    pass (scripts/posix.sh; root, about 10 minutes)
#   make install PREFIX=/usr/local   header, libraries, pkg-config and CMake
#                    package files, the tools (rlbench, rlfile-torture, rlfs)
#                    and every man page under PREFIX; installs no packages
#   make matrix      build every configuration (gcc, clang; Debug to
#                    MinSizeRel; Debian's hardening flags and LTO) with -Werror
#                    and fail on any warning (scripts/build-matrix.sh)

BUILD    ?= build
MAKEFLAGS += --no-print-directory
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
# WERROR=1 (CI, developers): every warning fails the build
WERROR   ?= 0

.PHONY: all run example test test-tsan test-asan verify fuzz soak matrix rlfs-bench posix etcd-bench install deps clean

PREFIX   ?= /usr/local

all: $(BUILD)/.built

# rlfs (FUSE) is built only with libfuse3; its tests and benchmark use
# fuse3's fusermount3, fio, and python3 (mmap, the benchmark's table);
# make posix builds pjdfstest (autoconf, automake) and runs it with prove
# (perl) and openssl; the tests run SQLite (sqlite3) and git on a mount.
RLFS_TOOLS = libfuse3-dev fuse3 fio python3 acl autoconf automake perl openssl \
	sqlite3 git

# librangelock-etcd and rlctl are built with libcurl and json-c (found by
# pkg-config); their tests start etcd members of their own (etcd-server).
ETCD_TOOLS = pkg-config libcurl4-openssl-dev libjson-c-dev etcd-server

deps:
	@scripts/install-deps.sh
	@scripts/install-deps.sh --optional $(RLFS_TOOLS) || true
	@scripts/install-deps.sh --optional $(ETCD_TOOLS) || true

# CI (RANGELOCK_ETCD_TESTS_REQUIRED=1) fails the configure rather than build
# without librangelock-etcd
ETCD_FLAG = $(if $(filter 1,$(RANGELOCK_ETCD_TESTS_REQUIRED)),-DRANGELOCK_ETCD=ON)

$(BUILD)/.built: deps FORCE
	@cmake -S . -B $(BUILD) -DRANGELOCK_WERROR=$(if $(filter 1,$(WERROR)),ON,OFF) \
		$(ETCD_FLAG) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@touch $@

run: all
	@scripts/install-deps.sh --optional gnuplot-nox valgrind || true
	@mkdir -p $(BUILD)/results
	$(BUILD)/bench/rlbench --quick --csv $(BUILD)/results/quick.csv
	@bench/plot.sh $(BUILD)/results/quick.csv $(BUILD)/results

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

verify:
	@scripts/install-deps.sh --optional spin || true
	verify/run.sh

# libFuzzer with ASan+UBSan over the committed seeds; new inputs go to a
# scratch directory, a crash leaves its input in build-fuzz/ (add it to
# tests/fuzz/corpus as a regression test).
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/install-deps.sh --optional clang || true
	$(MAKE) all BUILD=build-fuzz CMAKE_FLAGS="-DCMAKE_C_COMPILER=clang \
		-DRANGELOCK_SANITIZE=address -DRANGELOCK_FUZZ=ON"
	rm -rf build-fuzz/corpus && mkdir -p build-fuzz/corpus
	cd build-fuzz && ./tests/fuzz_api -max_total_time=$(FUZZ_SECONDS) \
		-timeout=30 -print_final_stats=1 corpus ../tests/fuzz/corpus

SOAK_SECONDS ?= 60
soak: all
	scripts/soak.sh $(BUILD) $(SOAK_SECONDS)

rlfs-bench: all
	bench/rlfs-tree.sh $(RLFS_TREE_ARGS)
	bench/rlfs-fio.sh $(RLFS_BENCH_ARGS)

posix: all
	scripts/posix.sh $(BUILD)/rlfs/rlfs $(BUILD)/posix

# librangelock-etcd against etcd's bare requests and its own lock recipe, on
# an etcd member of its own (data on tmpfs, free loopback ports)
ETCD_BENCH_ARGS ?= --quick
etcd-bench: all
	$(BUILD)/tests/etcd/etcd_member -- $(BUILD)/etcd/rlbench-etcd $(ETCD_BENCH_ARGS)

matrix:
	scripts/build-matrix.sh

# install: builds if needed, but never apt-gets anything (no deps)
install:
	@cmake -S . -B $(BUILD) -DRANGELOCK_WERROR=$(if $(filter 1,$(WERROR)),ON,OFF) \
		$(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf build build-tsan build-asan build-clang build-fuzz

.PHONY: FORCE
FORCE:
