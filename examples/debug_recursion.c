/* SPDX-License-Identifier: MIT */
/*
 * debug_recursion.c - what RANGELOCK_DEBUG catches.
 *
 * A buffered write holds a shared range of a file while it copies from a
 * user buffer; if that buffer is mapped from the same file, the copy faults
 * and the fault handler takes a shared range again.  That works -- until a
 * truncate queues an exclusive request between the two: the fault waits
 * behind the truncate, which waits for the write, which waits for the
 * fault.  The library cannot tell "fine today" from "deadlock tomorrow" by
 * timing, so debug mode refuses every overlapping acquisition by a thread
 * that already holds the range, at once, with EDEADLK.
 *
 * usage: debug_recursion
 */
#include <errno.h>
#include <stdio.h>

#include "rangelock.h"

int main(void)
{
	rangelock_t lock;
	rangelock_range_t write_range, fault_range, other;
	int rc, failures = 0;

	rangelock_init(&lock, RANGELOCK_DEBUG);
	rangelock_rdlock(&lock, &write_range, 0, 8 * 4096);   /* the write */

	/* the copy faults on page 3 of the same file: */
	rc = rangelock_rdlock(&lock, &fault_range, 3 * 4096, 4 * 4096);
	printf("fault inside the write's range: %s\n",
	       rc == EDEADLK ? "EDEADLK (would deadlock behind a truncate)"
			     : "granted?!");
	failures += rc != EDEADLK;
	if (rc == 0)
		rangelock_unlock(&lock, &fault_range);

	/* a page the write does not hold is fine: */
	rc = rangelock_rdlock(&lock, &other, 8 * 4096, 9 * 4096);
	printf("fault outside it: %s\n", rc == 0 ? "granted" : "refused?!");
	failures += rc != 0;
	if (rc == 0)
		rangelock_unlock(&lock, &other);

	rangelock_unlock(&lock, &write_range);
	/* The fix file systems use: fault the source pages in *before* taking
	 * the write's range, then copy without faulting. */
	failures += rangelock_destroy(&lock) != 0;
	return failures ? 1 : 0;
}
