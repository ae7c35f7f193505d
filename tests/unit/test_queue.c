/* SPDX-License-Identifier: MIT */
/*
 * test_queue.c - FIFO among conflicts and no barging, with real waiting
 * threads.  Each test builds an exact queue: it starts a request in its own
 * thread and then waits, with a try-lock probe, until that request is
 * visibly queued before it starts the next one.
 */
#include <errno.h>

#include "harness.h"

/* A shared request that overlaps a queued exclusive one waits behind it,
 * although it is compatible with every held range. */
static void test_no_barging(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held, probe;
	struct t_request w, r;

	CHECK_RC(rangelock_rdlock(&lk, &held, 0, 100), 0);
	t_request_start(&w, &lk, T_WR, 50, 150);
	t_wait_queued(&lk, false, 120, 130);      /* only w blocks this */

	CHECK_RC(rangelock_tryrdlock(&lk, &probe, 0, 10), 0); /* no overlap with w */
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, 60, 70), EBUSY);
	t_request_start(&r, &lk, T_RD, 60, 70);
	CHECK(t_request_pending(&r, 50));
	CHECK(t_request_pending(&w, 0));

	/* Requests overlapping nothing go straight through meanwhile. */
	CHECK_RC(rangelock_trywrlock(&lk, &probe, 150, 4096), 0);
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);

	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(t_request_wait(&w), 0);
	CHECK(t_request_pending(&r, 20));         /* still behind the writer */
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);
	CHECK_RC(t_request_wait(&r), 0);
	CHECK(w.grant_seq < r.grant_seq);
	CHECK_RC(rangelock_unlock(&lk, &r.range), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* Conflicting waiters are granted in arrival order; a later waiter that
 * conflicts with no earlier waiter is granted as soon as the holder leaves.
 * Each request reaches past the ranges before it, so a probe there sees
 * it queued before the next one starts. */
static void test_fifo_order(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held;
	struct t_request a, b, c, d;

	CHECK_RC(rangelock_wrlock(&lk, &held, 10, 100), 0);
	t_request_start(&a, &lk, T_WR, 90, 110);  /* behind held */
	t_wait_queued(&lk, false, 100, 110);
	t_request_start(&b, &lk, T_RD, 95, 120);  /* behind held and a */
	t_wait_queued(&lk, true, 110, 120);
	t_request_start(&c, &lk, T_WR, 115, 130); /* behind b only */
	t_wait_queued(&lk, false, 120, 130);
	t_request_start(&d, &lk, T_RD, 0, 20);    /* behind held only */
	t_wait_queued(&lk, true, 0, 10);
	CHECK(t_request_pending(&a, 0) && t_request_pending(&b, 0));
	CHECK(t_request_pending(&c, 0) && t_request_pending(&d, 0));

	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(t_request_wait(&a), 0);
	CHECK_RC(t_request_wait(&d), 0);
	CHECK(t_request_pending(&b, 20));         /* a blocks it */
	CHECK(t_request_pending(&c, 0));          /* b, though waiting, does */

	CHECK_RC(rangelock_unlock(&lk, &a.range), 0);
	CHECK_RC(t_request_wait(&b), 0);
	CHECK(t_request_pending(&c, 20));
	CHECK_RC(rangelock_unlock(&lk, &b.range), 0);
	CHECK_RC(t_request_wait(&c), 0);
	CHECK(a.grant_seq < b.grant_seq && b.grant_seq < c.grant_seq);
	CHECK_RC(rangelock_unlock(&lk, &c.range), 0);
	CHECK_RC(rangelock_unlock(&lk, &d.range), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* A release wakes the waiters it unblocks and no waiter it does not. */
static void test_release_grants_only_unblocked(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t left, right;
	struct t_request a, b, both;

	CHECK_RC(rangelock_wrlock(&lk, &left, 0, 10), 0);
	CHECK_RC(rangelock_wrlock(&lk, &right, 20, 30), 0);
	t_request_start(&a, &lk, T_WR, 0, 10);
	t_request_start(&b, &lk, T_RD, 20, 30);
	t_request_start(&both, &lk, T_RD, 25, 26);
	CHECK(t_request_pending(&a, 30));
	CHECK(t_request_pending(&b, 0));
	CHECK(t_request_pending(&both, 0));

	CHECK_RC(rangelock_unlock(&lk, &right), 0);
	CHECK_RC(t_request_wait(&b), 0);
	CHECK_RC(t_request_wait(&both), 0);
	CHECK(t_request_pending(&a, 30));         /* left still blocks it */
	CHECK_RC(rangelock_unlock(&lk, &left), 0);
	CHECK_RC(t_request_wait(&a), 0);
	CHECK_RC(rangelock_unlock(&lk, &a.range), 0);
	CHECK_RC(rangelock_unlock(&lk, &b.range), 0);
	CHECK_RC(rangelock_unlock(&lk, &both.range), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* Downgrade wakes the shared waiters only the exclusive range blocked;
 * queue order still holds for the rest. */
static void test_downgrade_wakes_readers(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held;
	struct t_request r1, w2, r3;

	CHECK_RC(rangelock_wrlock(&lk, &held, 0, 100), 0);
	t_request_start(&r1, &lk, T_RD, 0, 10);
	CHECK(t_request_pending(&r1, 20));
	t_request_start(&w2, &lk, T_WR, 50, 110);
	t_wait_queued(&lk, false, 100, 110);
	t_request_start(&r3, &lk, T_RD, 55, 58);  /* behind w2 */
	CHECK(t_request_pending(&r3, 20));

	CHECK_RC(rangelock_downgrade(&lk, &held), 0);
	CHECK_RC(t_request_wait(&r1), 0);
	CHECK(t_request_pending(&w2, 30));        /* held is still shared */
	CHECK(t_request_pending(&r3, 0));         /* FIFO behind w2 */

	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(t_request_wait(&w2), 0);
	CHECK(t_request_pending(&r3, 20));
	CHECK_RC(rangelock_unlock(&lk, &w2.range), 0);
	CHECK_RC(t_request_wait(&r3), 0);
	CHECK_RC(rangelock_unlock(&lk, &r1.range), 0);
	CHECK_RC(rangelock_unlock(&lk, &r3.range), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* Unlock from a thread other than the one that locked. */
static void *unlock_elsewhere(void *arg)
{
	void **args = arg;

	return (void *)(intptr_t)rangelock_unlock(args[0], args[1]);
}

static void test_unlock_from_another_thread(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t r, probe;
	struct t_request waiter;
	pthread_t th;
	void *args[2] = { &lk, &r }, *ret;

	CHECK_RC(rangelock_wrlock(&lk, &r, 0, 4096), 0);
	t_request_start(&waiter, &lk, T_WR, 0, 4096);
	CHECK(t_request_pending(&waiter, 20));
	CHECK(pthread_create(&th, NULL, unlock_elsewhere, args) == 0);
	CHECK(pthread_join(th, &ret) == 0);
	CHECK((intptr_t)ret == 0);
	CHECK_RC(t_request_wait(&waiter), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &probe, 0, 1), EBUSY);
	args[1] = &waiter.range;
	CHECK(pthread_create(&th, NULL, unlock_elsewhere, args) == 0);
	CHECK(pthread_join(th, &ret) == 0);
	CHECK((intptr_t)ret == 0);
	CHECK_RC(rangelock_unlock(&lk, &r), EINVAL);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* destroy is EBUSY while a request waits, and changes nothing. */
static void test_destroy_with_waiter(void)
{
	rangelock_t lk;
	rangelock_range_t held;
	struct t_request w;

	CHECK_RC(rangelock_init(&lk, 0), 0);
	CHECK_RC(rangelock_rdlock(&lk, &held, 0, 10), 0);
	t_request_start(&w, &lk, T_WR, 0, 10);
	t_wait_queued(&lk, false, 0, 10);
	CHECK_RC(rangelock_destroy(&lk), EBUSY);
	CHECK_RC(rangelock_unlock(&lk, &w.range), EINVAL); /* waiting, not held */
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(t_request_wait(&w), 0);
	CHECK_RC(rangelock_destroy(&lk), EBUSY);
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* Sleeping waiters (past the spin) are woken, many at once. */
static void test_many_sleepers(void)
{
	enum { N = 16 };
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held;
	struct t_request r[N];

	CHECK_RC(rangelock_wrlock(&lk, &held, 0, 1000), 0);
	for (int i = 0; i < N; i++)
		t_request_start(&r[i], &lk, i % 2 ? T_RD : T_WR, i * 10,
				i * 10 + 10);
	t_sleep_ms(50);
	for (int i = 0; i < N; i++)
		CHECK(t_request_pending(&r[i], 0));
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	for (int i = 0; i < N; i++) {
		CHECK_RC(t_request_wait(&r[i]), 0);
		CHECK_RC(rangelock_unlock(&lk, &r[i].range), 0);
	}
	CHECK_RC(rangelock_destroy(&lk), 0);
}

int main(void)
{
	RUN(test_no_barging);
	RUN(test_fifo_order);
	RUN(test_release_grants_only_unblocked);
	RUN(test_downgrade_wakes_readers);
	RUN(test_unlock_from_another_thread);
	RUN(test_destroy_with_waiter);
	RUN(test_many_sleepers);
	t_done();
	return 0;
}
