/* SPDX-License-Identifier: MIT */
/*
 * test_debug.c - RANGELOCK_DEBUG: a thread that asks for a range
 * overlapping one it holds gets EDEADLK at once, in every mode combination
 * and through every call; other threads and disjoint ranges are unaffected;
 * without the flag the same calls behave as usual.
 */
#include <errno.h>
#include <pthread.h>

#include "harness.h"

enum call { RD, WR, TRYRD, TRYWR, TIMEDRD, TIMEDWR, NCALLS };

static int call(enum call c, rangelock_t *lk, rangelock_range_t *r,
		uint64_t s, uint64_t e)
{
	struct timespec later = t_deadline_ms(5000);

	switch (c) {
	case RD: return rangelock_rdlock(lk, r, s, e);
	case WR: return rangelock_wrlock(lk, r, s, e);
	case TRYRD: return rangelock_tryrdlock(lk, r, s, e);
	case TRYWR: return rangelock_trywrlock(lk, r, s, e);
	case TIMEDRD: return rangelock_timedrdlock(lk, r, s, e, &later);
	case TIMEDWR: return rangelock_timedwrlock(lk, r, s, e, &later);
	default: return -1;
	}
}

static void test_every_combination(void)
{
	for (int held_excl = 0; held_excl < 2; held_excl++) {
		for (int c = 0; c < NCALLS; c++) {
			rangelock_t lk;
			rangelock_range_t held, r;

			CHECK_RC(rangelock_init(&lk, RANGELOCK_DEBUG), 0);
			CHECK_RC(call(held_excl ? WR : RD, &lk, &held, 100, 200), 0);
			CHECK_RC(call(c, &lk, &r, 150, 160), EDEADLK);
			CHECK_RC(call(c, &lk, &r, 199, 300), EDEADLK);
			CHECK_RC(call(c, &lk, &r, 0, 101), EDEADLK);
			CHECK_RC(call(c, &lk, &r, 0, RANGELOCK_EOF), EDEADLK);
			/* adjacent is fine */
			CHECK_RC(call(c, &lk, &r, 200, 300), 0);
			CHECK_RC(rangelock_unlock(&lk, &r), 0);
			CHECK_RC(call(c, &lk, &r, 0, 100), 0);
			CHECK_RC(rangelock_unlock(&lk, &r), 0);
			CHECK_RC(rangelock_unlock(&lk, &held), 0);
			/* released, the same range is fine again */
			CHECK_RC(call(c, &lk, &r, 150, 160), 0);
			CHECK_RC(rangelock_unlock(&lk, &r), 0);
			CHECK_RC(rangelock_destroy(&lk), 0);
		}
	}
}

/* The pattern that deadlocks: shared over shared from one thread with an
 * exclusive request queued between.  Debug mode reports it. */
static void test_shared_twice_with_writer_between(void)
{
	rangelock_t lk;
	rangelock_range_t outer, inner;
	struct t_request w;

	CHECK_RC(rangelock_init(&lk, RANGELOCK_DEBUG), 0);
	CHECK_RC(rangelock_rdlock(&lk, &outer, 0, 4096), 0);
	t_request_start(&w, &lk, T_WR, 0, 8192);
	t_wait_queued(&lk, false, 4096, 8192);
	CHECK_RC(rangelock_rdlock(&lk, &inner, 0, 4096), EDEADLK);
	CHECK_RC(rangelock_unlock(&lk, &outer), 0);
	CHECK_RC(t_request_wait(&w), 0);
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* Another thread's overlapping shared request is not a recursion. */
static void test_other_thread_not_refused(void)
{
	rangelock_t lk;
	rangelock_range_t held;
	struct t_request r;

	CHECK_RC(rangelock_init(&lk, RANGELOCK_DEBUG), 0);
	CHECK_RC(rangelock_rdlock(&lk, &held, 0, 4096), 0);
	t_request_start(&r, &lk, T_RD, 0, 4096);
	CHECK_RC(t_request_wait(&r), 0);
	CHECK_RC(rangelock_unlock(&lk, &r.range), 0);
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* A handle already held cannot be passed to another lock call. */
static void test_handle_reuse_while_held(void)
{
	rangelock_t lk;
	rangelock_range_t r;

	CHECK_RC(rangelock_init(&lk, RANGELOCK_DEBUG), 0);
	CHECK_RC(rangelock_rdlock(&lk, &r, 0, 10), 0);
	CHECK_RC(rangelock_rdlock(&lk, &r, 100, 110), EINVAL);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* Without the flag, recursion of shared ranges is not refused (it works
 * while no exclusive request is queued between). */
static void test_default_mode_does_not_check(void)
{
	rangelock_t lk;
	rangelock_range_t a, b;

	CHECK_RC(rangelock_init(&lk, 0), 0);
	CHECK_RC(rangelock_rdlock(&lk, &a, 0, 10), 0);
	CHECK_RC(rangelock_rdlock(&lk, &b, 5, 15), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &b, 5, 15), EBUSY); /* b held: not reused */
	CHECK_RC(rangelock_unlock(&lk, &b), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &b, 5, 15), EBUSY);
	CHECK_RC(rangelock_unlock(&lk, &a), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* A range left held by a thread that exited (another thread may unlock
 * it) belongs to that thread only: a new thread, which may reuse the first
 * one's stack and thread-local storage, waits for it like anyone else
 * (ETIMEDOUT), and is not refused with EDEADLK as if it held it. */
struct t_leaver {
	rangelock_t *lk;
	rangelock_range_t *r;
	int rc;
};

static void *t_lock_and_exit(void *arg)
{
	struct t_leaver *t = arg;

	t->rc = rangelock_wrlock(t->lk, t->r, 100, 200);
	return NULL;
}

static void *t_try_timed(void *arg)
{
	struct t_leaver *t = arg;
	struct timespec soon = t_deadline_ms(20);
	rangelock_range_t r;

	t->rc = rangelock_timedwrlock(t->lk, &r, 150, 160, &soon);
	return NULL;
}

static void test_exited_thread_identity(void)
{
	rangelock_t lk;
	rangelock_range_t left;
	struct t_leaver a = { &lk, &left, -1 }, b = { &lk, NULL, -1 };
	pthread_t t;

	CHECK_RC(rangelock_init(&lk, RANGELOCK_DEBUG), 0);
	for (int i = 0; i < 3; i++) {   /* each next thread reuses a stack */
		pthread_create(&t, NULL, t_lock_and_exit, &a);
		pthread_join(t, NULL);
		CHECK_RC(a.rc, 0);
		pthread_create(&t, NULL, t_try_timed, &b);
		pthread_join(t, NULL);
		CHECK_RC(b.rc, ETIMEDOUT);
		CHECK_RC(rangelock_unlock(&lk, &left), 0);
	}
	CHECK_RC(rangelock_destroy(&lk), 0);
}

int main(void)
{
	RUN(test_every_combination);
	RUN(test_shared_twice_with_writer_between);
	RUN(test_other_thread_not_refused);
	RUN(test_handle_reuse_while_held);
	RUN(test_default_mode_does_not_check);
	RUN(test_exited_thread_identity);
	t_done();
	return 0;
}
