/* SPDX-License-Identifier: MIT */
/*
 * test_timed.c - try and timed variants: EBUSY exactly when the blocking
 * call would wait, ETIMEDOUT after the deadline, and a withdrawn request
 * leaves no trace.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"

/* try reports EBUSY for a range that only a *waiting* request blocks. */
static void test_try_respects_queue(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held, probe;
	struct t_request w;

	CHECK_RC(rangelock_rdlock(&lk, &held, 0, 10), 0);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, 0, 10), 0);
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);
	t_request_start(&w, &lk, T_WR, 5, 20);
	t_wait_queued(&lk, false, 15, 20);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, 0, 10), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, 0, 5), 0);   /* below w */
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &probe, 20, 30), 0); /* above w */
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(t_request_wait(&w), 0);
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

static void test_past_deadline_is_one_attempt(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held, r;
	struct timespec past = { 0, 0 }, now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	CHECK_RC(rangelock_timedwrlock(&lk, &held, 0, 10, &past), 0);
	CHECK_RC(rangelock_timedrdlock(&lk, &r, 0, 10, &now), ETIMEDOUT);
	CHECK_RC(rangelock_timedwrlock(&lk, &r, 9, 10, &past), ETIMEDOUT);
	CHECK_RC(rangelock_timedrdlock(&lk, &r, 10, 20, &past), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

static void test_timeout_waits_until_deadline(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held, r;
	struct timespec start, deadline;

	CHECK_RC(rangelock_wrlock(&lk, &held, 0, 10), 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	deadline = t_deadline_ms(60);
	CHECK_RC(rangelock_timedrdlock(&lk, &r, 5, 6, &deadline), ETIMEDOUT);
	CHECK(t_elapsed_since_ms(&start) >= 59);
	CHECK_RC(rangelock_unlock(&lk, &r), EINVAL);   /* not held */
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);           /* nothing left */
}

/* A timed request granted before its deadline returns 0. */
static void test_timed_granted_in_time(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held;
	struct t_request t;

	CHECK_RC(rangelock_wrlock(&lk, &held, 0, 10), 0);
	t.deadline = t_deadline_ms(10000);
	t_request_start(&t, &lk, T_TIMED_WR, 0, 10);
	CHECK(t_request_pending(&t, 20));
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(t_request_wait(&t), 0);
	CHECK_RC(rangelock_unlock(&lk, &t.range), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* A timed-out exclusive request blocks nobody afterwards: the shared request
 * queued behind it is granted when it leaves, and new ones go through. */
static void test_timeout_leaves_no_trace(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held, probe;
	struct t_request w, r;

	CHECK_RC(rangelock_rdlock(&lk, &held, 0, 10), 0);
	w.deadline = t_deadline_ms(200);
	t_request_start(&w, &lk, T_TIMED_WR, 0, 20);
	t_wait_queued(&lk, false, 10, 20);
	t_request_start(&r, &lk, T_RD, 5, 15);    /* behind w */
	CHECK(t_request_pending(&r, 30));
	CHECK_RC(t_request_wait(&w), ETIMEDOUT);
	CHECK_RC(t_request_wait(&r), 0);          /* woken by w's withdrawal */
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, 10, 20), 0);
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);
	CHECK_RC(rangelock_unlock(&lk, &r.range), 0);
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/*
 * Deadlines hold under CPU load: with more busy threads than cores, timed
 * locks that cannot be granted return about as soon after their deadline
 * as clock_nanosleep to the same kind of deadline does, measured side by
 * side: the median within 3x + 2 ms of clock_nanosleep's, the 90th
 * percentile within 3x + 10 ms.  (The spins and yields before the futex
 * sleep once ignored the deadline: 74 ms late on average, 121 ms at worst;
 * both checks fail on that.)  The worst case is printed, not checked: it
 * is one sample of the scheduler.  A thread that ran for a microsecond or
 * two before a short sleep is often woken a time slice late under this
 * load, the lock's waiter as much as a bare futex_wait after the same work
 * (11 of 100 at 20 us), and one sample of 60 has been 39 ms late on a CI
 * machine whose clock_nanosleep was 6 ms late at worst; doc/design.md.  A
 * property of the deadline, not a timing of the lock.
 */
static _Atomic bool t_load_stop;

static void *t_busy(void *arg)
{
	(void)arg;
	/* relaxed: a stop flag */
	while (!atomic_load_explicit(&t_load_stop, memory_order_relaxed))
		;
	return NULL;
}

static long t_ns_after(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - deadline->tv_sec) * 1000000000L +
	       (now.tv_nsec - deadline->tv_nsec);
}

static struct timespec t_deadline_us(long us)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_nsec += us * 1000;
	t.tv_sec += t.tv_nsec / 1000000000L;
	t.tv_nsec %= 1000000000L;
	return t;
}

static int t_cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

#define T_SAMPLES 60
#define T_MEDIAN (T_SAMPLES / 2)
#define T_P90 (T_SAMPLES * 9 / 10)

static void test_deadline_under_load(void)
{
	static const long us[] = { 20, 200, 2000 };
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held, r;
	pthread_t busy[8];
	long lock_late[T_SAMPLES], sleep_late[T_SAMPLES];

	CHECK_RC(rangelock_wrlock(&lk, &held, 0, 4096), 0);
	atomic_store_explicit(&t_load_stop, false, memory_order_relaxed);
	for (int i = 0; i < 8; i++)
		pthread_create(&busy[i], NULL, t_busy, NULL);
	for (int i = 0; i < T_SAMPLES; i++) {
		struct timespec d = t_deadline_us(us[i % 3]);

		CHECK_RC(rangelock_timedwrlock(&lk, &r, 0, 4096, &d), ETIMEDOUT);
		lock_late[i] = t_ns_after(&d);
		d = t_deadline_us(us[i % 3]);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL))
			;
		sleep_late[i] = t_ns_after(&d);
	}
	/* relaxed: a stop flag; the joins order the rest */
	atomic_store_explicit(&t_load_stop, true, memory_order_relaxed);
	for (int i = 0; i < 8; i++)
		pthread_join(busy[i], NULL);
	qsort(lock_late, T_SAMPLES, sizeof(long), t_cmp_long);
	qsort(sleep_late, T_SAMPLES, sizeof(long), t_cmp_long);
	printf("  late after the deadline, median / 90th percentile / worst: "
	       "timed lock %.3f / %.2f / %.2f ms, clock_nanosleep %.3f / %.2f / %.2f ms\n",
	       lock_late[T_MEDIAN] / 1e6, lock_late[T_P90] / 1e6,
	       lock_late[T_SAMPLES - 1] / 1e6, sleep_late[T_MEDIAN] / 1e6,
	       sleep_late[T_P90] / 1e6, sleep_late[T_SAMPLES - 1] / 1e6);
	CHECK(lock_late[T_MEDIAN] <= 3 * sleep_late[T_MEDIAN] + 2000000L);
	CHECK(lock_late[T_P90] <= 3 * sleep_late[T_P90] + 10000000L);
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

int main(void)
{
	RUN(test_try_respects_queue);
	RUN(test_past_deadline_is_one_attempt);
	RUN(test_timeout_waits_until_deadline);
	RUN(test_timed_granted_in_time);
	RUN(test_timeout_leaves_no_trace);
	RUN(test_deadline_under_load);
	t_done();
	return 0;
}
