/* SPDX-License-Identifier: MIT */
#include "stats.h"

#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double stats_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double stats_spread(const double *sorted, int n)
{
	double med = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;

	return med > 0 ? (sorted[n - 1] - sorted[0]) / med : 0;
}

static int bucket_of(uint64_t ns)
{
	int msb;

	if (ns < HIST_SUB)
		return (int)ns;
	msb = 63 - __builtin_clzll(ns);           /* >= 4 */
	int b = (msb - 3) * HIST_SUB + (int)((ns >> (msb - 4)) & (HIST_SUB - 1));
	return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

static uint64_t bucket_low(int b)
{
	if (b < HIST_SUB)
		return (uint64_t)b;
	int msb = b / HIST_SUB + 3;
	return ((uint64_t)1 << msb) | ((uint64_t)(b % HIST_SUB) << (msb - 4));
}

void hist_add(struct hist *h, uint64_t ns)
{
	h->count[bucket_of(ns)]++;
	h->n++;
	h->sum += ns;
	if (ns > h->max)
		h->max = ns;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	for (int b = 0; b < HIST_BUCKETS; b++)
		into->count[b] += from->count[b];
	into->n += from->n;
	into->sum += from->sum;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t want, seen = 0;

	if (h->n == 0)
		return 0;
	if (q >= 1.0)
		return h->max;
	want = (uint64_t)(q * (double)h->n) + 1;
	for (int b = 0; b < HIST_BUCKETS; b++) {
		seen += h->count[b];
		if (seen >= want)
			return bucket_low(b);
	}
	return h->max;
}
