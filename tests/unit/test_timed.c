/* SPDX-License-Identifier: MIT */
/*
 * test_timed.c - try and timed variants: EBUSY exactly when the blocking
 * call would wait, ETIMEDOUT after the deadline, and a withdrawn request
 * leaves no trace.
 */
#include <errno.h>

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

int main(void)
{
	RUN(test_try_respects_queue);
	RUN(test_past_deadline_is_one_attempt);
	RUN(test_timeout_waits_until_deadline);
	RUN(test_timed_granted_in_time);
	RUN(test_timeout_leaves_no_trace);
	t_done();
	return 0;
}
