/* SPDX-License-Identifier: MIT */
/*
 * workloads.h - what rlbench measures.  Every workload drives a contender
 * through struct contender only, and returns named values (one per metric),
 * or NAN for a metric the contender cannot do.
 */
#ifndef RLBENCH_WORKLOADS_H
#define RLBENCH_WORKLOADS_H

#include <stddef.h>

#include "contender.h"

/* --processes: the workers of the many-worker workloads are forked
 * processes, not threads (contenders with .processes only). */
extern bool bench_processes;
void *bench_shared_alloc(size_t size);
void bench_shared_free(void *p, size_t size);

#define PAGE 4096u
#define MAX_METRICS 8

/* The fair workload's wait-latency distribution, per class, at these
 * quantiles (the last is the maximum). */
#define CDF_POINTS 12
extern const double cdf_quantiles[CDF_POINTS];
enum { CDF_READERS, CDF_WRITERS, CDF_CLASSES };

struct result {
	int n;
	const char *metric[MAX_METRICS];
	const char *unit[MAX_METRICS];
	bool lower_is_better[MAX_METRICS];
	double value[MAX_METRICS];
	bool has_cdf;                                /* fair only */
	double cdf_us[CDF_CLASSES][CDF_POINTS];
};

struct timing {
	int warmup_ms;
	int measure_ms;
};

/* One thread, lock+unlock of `pages` pages in a loop: ns per pair. */
void wl_uncontended(const struct contender *c, const struct timing *t,
		    int pages, bool exclusive, struct result *out);
/* One thread, lock+unlock of one range of SIZES kinds: bytes, unaligned,
 * 1 and 16 MiB, to EOF: ns per pair. */
#define SIZES 8
extern const char *const size_name[SIZES];
void wl_sizes(const struct contender *c, const struct timing *t, int size,
	      bool exclusive, struct result *out);
/* One thread, one page lock+unlock while `held` other ranges of `width`
 * pages are held: the page among them (far false) or 1 GiB away. */
void wl_held(const struct contender *c, const struct timing *t, int held,
	     bool exclusive, int width, bool far, struct result *out);
/* N threads, each locking single pages of its own: aggregate Mops/s. */
void wl_disjoint(const struct contender *c, const struct timing *t,
		 int threads, bool exclusive, struct result *out);
/* N threads, each locking single pages (exclusive) at random in a 16-page
 * window of its own; the windows placement_distance[placement] bytes
 * apart (power-of-two strides among them), or placed at random (0):
 * aggregate Mops/s.  The fast path's speed must not depend on where the
 * windows are. */
#define PLACEMENTS 7
extern const uint64_t placement_distance[PLACEMENTS];
void wl_placement(const struct contender *c, const struct timing *t,
		  int threads, int placement, struct result *out);
/* N threads, random ranges of 1..max_pages pages over 1 GiB, read_pct%
 * shared: aggregate Mops/s. */
void wl_mixed(const struct contender *c, const struct timing *t, int threads,
	      int max_pages, int read_pct, struct result *out);
/* N threads, each locking ranges of 1..256 pages (exclusive) at random in
 * a region of its own, the regions placement_distance[placement] apart
 * (random for the last) and as large as that distance, up to 1 GiB:
 * aggregate Mops/s. */
void wl_regions(const struct contender *c, const struct timing *t,
		int threads, int placement, struct result *out);
/* Two threads on single pages of their own windows far below 1 TiB, while
 * [1 TiB, EOF) is: 0 not locked, 1 held exclusive, 2 held shared with an
 * exclusive request queued, 3 locked and unlocked every 50 us by a third
 * thread: the two threads' aggregate Mops/s. */
#define EOF_CASES 4
extern const char *const eof_case_name[EOF_CASES];
void wl_eof(const struct contender *c, const struct timing *t, int eof_case,
	    struct result *out);
/* A holder killed (SIGKILL) while another process waits for its page:
 * ms from the kill to the grant, median and max of `samples` (.robust
 * contenders only). */
void wl_robust(const struct contender *c, int samples, struct result *out);
/* N threads, a busy file: 90% one-page shared, 9% 2..16-page exclusive,
 * 1% exclusive to EOF: aggregate Mops/s. */
void wl_file(const struct contender *c, const struct timing *t, int threads,
	     struct result *out);
/* Readers flood overlapping shared ranges while writers ask for the whole
 * region: throughput and wait latency of each class. */
void wl_fair(const struct contender *c, const struct timing *t, int readers,
	     int writers, struct result *out);
/* The shadow-overlap check of every contender (tests/common/shadow.c):
 * returns the number of violations seen. */
long wl_validate(const struct contender *c, int threads, int seconds_ms);

/* callgrind: lock+unlock one page `pairs` times in a function of its own,
 * so valgrind --toggle-collect=bench_pairs_loop counts exactly that. */
void bench_pairs_loop(const struct contender *c, void *lock, void *ctx,
		      long pairs, bool exclusive);

#endif
