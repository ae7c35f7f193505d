/* SPDX-License-Identifier: MIT */
/*
 * timed_deadline.c - give up on a busy range after a deadline.
 *
 * A "truncate" holds the end of a file exclusively for 300 ms.  A writer
 * that must answer within 100 ms asks for a page inside it with a deadline,
 * gets ETIMEDOUT, and reports "try again"; a second attempt with a longer
 * deadline succeeds once the truncate is done.  The timed-out request left
 * no trace: nothing queued behind it had to wait for it.
 *
 * usage: timed_deadline
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "rangelock.h"

static rangelock_t file_lock = RANGELOCK_INITIALIZER;

static struct timespec in_ms(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);   /* deadlines are monotonic */
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static void *truncater(void *arg)
{
	rangelock_range_t r;
	struct timespec hold = { 0, 300 * 1000000L };

	rangelock_wrlock(&file_lock, &r, 1 << 20, RANGELOCK_EOF);
	pthread_barrier_wait(arg);          /* the range is held now */
	nanosleep(&hold, NULL);             /* ...dropping pages, ftruncate() */
	rangelock_unlock(&file_lock, &r);
	return NULL;
}

int main(void)
{
	pthread_barrier_t held;
	pthread_t t;
	rangelock_range_t r;
	struct timespec deadline;
	int rc, failures = 0;

	pthread_barrier_init(&held, NULL, 2);
	pthread_create(&t, NULL, truncater, &held);
	pthread_barrier_wait(&held);

	deadline = in_ms(100);
	rc = rangelock_timedwrlock(&file_lock, &r, 2 << 20, (2 << 20) + 4096,
				   &deadline);
	printf("write at 2 MiB, 100 ms deadline: %s\n",
	       rc == ETIMEDOUT ? "ETIMEDOUT, try again later" : "granted?!");
	failures += rc != ETIMEDOUT;
	if (rc == 0)
		rangelock_unlock(&file_lock, &r);

	/* Below the truncate's range nothing waits, deadline or not. */
	deadline = in_ms(0);
	rc = rangelock_timedwrlock(&file_lock, &r, 0, 4096, &deadline);
	printf("write at 0, deadline already past: %s\n",
	       rc == 0 ? "granted at once" : "refused?!");
	failures += rc != 0;
	if (rc == 0)
		rangelock_unlock(&file_lock, &r);

	deadline = in_ms(5000);
	rc = rangelock_timedwrlock(&file_lock, &r, 2 << 20, (2 << 20) + 4096,
				   &deadline);
	printf("write at 2 MiB, 5 s deadline: %s\n",
	       rc == 0 ? "granted after the truncate" : "failed?!");
	failures += rc != 0;
	if (rc == 0)
		rangelock_unlock(&file_lock, &r);

	pthread_join(t, NULL);
	failures += rangelock_destroy(&file_lock) != 0;
	return failures ? 1 : 0;
}
