/* SPDX-License-Identifier: MIT */
/*
 * sleeping_waiters.c - what waiters asleep on a shared region cost: one
 * process holds [0, EOF) exclusive for SECONDS while N forked processes
 * wait for pages under it (each polls for dead blockers every 10 ms); then
 * it unlocks and prints the CPU time the waiters used, in all, while they
 * waited (the same run with SECONDS 0 is what forking and attaching cost).
 *
 *     sleeping_waiters [N [SECONDS]]     (defaults 62 and 3)
 *
 * Exit status 0 only if every waiter was granted and detached cleanly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rangelock.h"

static double cpu_seconds(const struct rusage *u)
{
	return (double)(u->ru_utime.tv_sec + u->ru_stime.tv_sec) +
	       (double)(u->ru_utime.tv_usec + u->ru_stime.tv_usec) / 1e6;
}

static void waiter(void *region, size_t size, uint64_t page)
{
	rangelock_t lk;
	rangelock_range_t r;

	if (rangelock_shared_attach(&lk, region, size) ||
	    rangelock_wrlock(&lk, &r, page << 12, (page + 1) << 12) ||
	    rangelock_unlock(&lk, &r) || rangelock_destroy(&lk))
		_exit(1);
	_exit(0);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 62;
	unsigned seconds = argc > 2 ? (unsigned)atoi(argv[2]) : 3;
	size_t size = rangelock_shared_size(256);
	void *region = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	rangelock_t lk;
	rangelock_range_t all;
	struct rusage used;
	int failed = 0;

	if (n < 1 || n > 62 || region == MAP_FAILED ||
	    rangelock_shared_init(region, size) ||
	    rangelock_shared_attach(&lk, region, size) ||
	    rangelock_wrlock(&lk, &all, 0, RANGELOCK_EOF)) {
		fprintf(stderr, "sleeping_waiters: N is 1..62; setup failed\n");
		return 2;
	}
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 2;
		if (pid == 0)
			waiter(region, size, (uint64_t)i);
	}
	sleep(seconds);
	if (rangelock_unlock(&lk, &all) || rangelock_destroy(&lk))
		failed++;
	for (int i = 0; i < n; i++) {
		int st;

		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	}
	getrusage(RUSAGE_CHILDREN, &used);
	printf("%d waiters asleep %u s: %.3f s of CPU in all (%.1f%% of a core)%s\n",
	       n, seconds, cpu_seconds(&used),
	       seconds ? cpu_seconds(&used) / seconds * 100 : 0.0,
	       failed ? "; FAILED" : "");
	return failed ? 1 : 0;
}
