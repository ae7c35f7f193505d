/* SPDX-License-Identifier: MIT */
/*
 * etcd_ranges - byte ranges of one object locked across machines, on etcd.
 *
 *   etcd_ranges [HOLD_SECONDS [OBJECT]]
 *
 * Takes bytes [0, 1 MiB) of OBJECT ("example") exclusive, holds them
 * HOLD_SECONDS (default 10), downgrades to shared, and releases; then
 * locks a page inside the released range again, which the client still
 * has cached: no round trip.  Run it in two terminals at once: the second
 * waits for the first, in FIFO order, and `rlctl list` shows both.
 * etcd: $RANGELOCK_ETCD_ENDPOINTS, else http://127.0.0.1:2379.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, sleep under -std=c11 */
#include <rangelock_etcd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "etcd_ranges: %s: %s\n", what, strerror(err));
	return 1;
}

int main(int argc, char **argv)
{
	int hold = argc > 1 ? atoi(argv[1]) : 10;
	const char *name = argc > 2 ? argv[2] : "example";
	rangelock_etcd_t *c;
	rangelock_etcd_object_t *o;
	rangelock_etcd_range_t r;
	int err = rangelock_etcd_connect(&c, NULL);
	if (err)
		return fail("connect (is etcd running? $RANGELOCK_ETCD_ENDPOINTS)", err);
	if ((err = rangelock_etcd_open(c, name, strlen(name), &o)))
		return fail("open", err);

	double t0 = now();
	printf("%s: asking for [0, 1 MiB) exclusive...\n", name);
	if ((err = rangelock_etcd_wrlock(o, &r, 0, 1 << 20)))
		return fail("wrlock", err);
	printf("granted after %.3f s, fencing token %llu; holding it %d s "
	       "(try `rlctl list %s` now)\n", now() - t0,
	       (unsigned long long)rangelock_etcd_token(&r), hold, name);
	sleep((unsigned)hold);
	if ((err = rangelock_etcd_check(&r)))
		printf("the grant was lost while we held it: write nothing\n");
	if ((err = rangelock_etcd_downgrade(o, &r)))
		return fail("downgrade", err);
	printf("downgraded to shared: readers elsewhere go on\n");
	if ((err = rangelock_etcd_unlock(o, &r)))
		return fail("unlock", err);

	/* the grant is cached until another client asks for the range */
	t0 = now();
	if ((err = rangelock_etcd_rdlock(o, &r, 4096, 8192)))
		return fail("rdlock", err);
	printf("[4096, 8192) shared again in %.1f us, token %llu (%s)\n",
	       (now() - t0) * 1e6, (unsigned long long)rangelock_etcd_token(&r),
	       now() - t0 < 0.001 ? "cached: no round trip" : "a new request");
	rangelock_etcd_unlock(o, &r);
	rangelock_etcd_object_close(o);
	rangelock_etcd_close(c);
	return 0;
}
