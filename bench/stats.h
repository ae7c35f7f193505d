/* SPDX-License-Identifier: MIT */
/* stats.h - medians of repetitions, and an HDR-style latency histogram. */
#ifndef RLBENCH_STATS_H
#define RLBENCH_STATS_H

#include <stdint.h>

/* median of n values (sorts v in place); spread = (max - min) / median. */
double stats_median(double *v, int n);
double stats_spread(const double *sorted, int n);

/*
 * A log-linear histogram of nanosecond latencies: 16 sub-buckets per power
 * of two, so every recorded value is within 1/16 (6%) of its bucket's
 * lower bound, from 1 ns to 2^40 ns (18 minutes).
 */
#define HIST_SUB 16
#define HIST_BUCKETS (41 * HIST_SUB)

struct hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t n, max, sum;
};

void hist_add(struct hist *h, uint64_t ns);
void hist_merge(struct hist *into, const struct hist *from);
/* value at quantile q in [0, 1] (bucket lower bound; exact max for q = 1). */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
