/* SPDX-License-Identifier: MIT */
/*
 * test_grow.c - the fast path's table growing (white-box: linked against
 * the static library, it reads the lock's private layout and calls
 * rl_fast_grow() to grow a lock at a chosen moment).
 *
 * What must hold across the switch: fast holders of the small table stay
 * held and keep out conflicting claims in the grown one; listed requests
 * keep the grown table closed; waiters blocked by a holder of the small
 * table are granted when it leaves; the small table stops being scanned
 * once it is empty; unlock of a copied handle is refused; destroy is EBUSY
 * while a holder of the small table remains.  And when the lock grows by
 * itself: threads that meet in lines grow it, one thread holding many
 * ranges in a line does not.
 */
#include <errno.h>

#include "whitebox.h"

#define PAGE 4096ull

static bool draining(rangelock_t *lk)
{
	bool d;

	rl_guard_lock(priv(lk));
	d = priv(lk)->flags & RL_DRAINING;
	rl_guard_unlock(priv(lk));
	return d;
}

/* pages p and q lie in blocks that share a line of the small table but
 * not of the grown one: the claims meet in the small table only */
static void pages_sharing_small_line(uint64_t *p, uint64_t *q)
{
	*p = 0;
	for (uint64_t b = 1;; b++)
		if (rl_line_of_block(b, RL_SMALL_LINES) == rl_line_of_block(0, RL_SMALL_LINES) &&
		    rl_line_of_block(b, RL_GROWN_LINES) != rl_line_of_block(0, RL_GROWN_LINES)) {
			*q = b * RL_BLOCK_PAGES;
			return;
		}
}

/* A fast holder of the small table, across the switch. */
static void test_holder_of_small_table(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t a, b, c, copy;
	struct t_request w;

	CHECK_RC(rangelock_wrlock(&lk, &a, 0, 10), 0);   /* sets up the table */
	CHECK_RC(rangelock_unlock(&lk, &a), 0);
	CHECK_RC(rangelock_wrlock(&lk, &a, 5 * PAGE, 6 * PAGE), 0);   /* fast */
	CHECK(table_lines(&lk) == RL_SMALL_LINES);
	rl_fast_grow(priv(&lk));
	CHECK(table_lines(&lk) == RL_GROWN_LINES);
	CHECK(draining(&lk));

	/* a claim in the grown table meets the holder in the small one */
	CHECK_RC(rangelock_tryrdlock(&lk, &b, 5 * PAGE, 6 * PAGE), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &b, 5 * PAGE + 100, 5 * PAGE + 200), EBUSY);
	CHECK_RC(rangelock_trywrlock(&lk, &b, 4 * PAGE, 8 * PAGE), EBUSY);
	/* and ranges beside it are free, through the grown table */
	CHECK_RC(rangelock_wrlock(&lk, &b, 6 * PAGE, 7 * PAGE), 0);
	CHECK(state_of(&b) == RL_FAST);
	CHECK_RC(rangelock_unlock(&lk, &b), 0);

	/* a waiter blocked by it is granted when it leaves */
	t_request_start(&w, &lk, T_RD, 5 * PAGE, 5 * PAGE + 1);
	wait_listed(&w);
	CHECK(t_request_pending(&w, 20));
	CHECK_RC(rangelock_destroy(&lk), EBUSY);
	memcpy(&copy, &a, sizeof(copy));
	CHECK_RC(rangelock_unlock(&lk, &copy), EINVAL);
	CHECK_RC(rangelock_downgrade(&lk, &a), 0);   /* through the small table */
	CHECK_RC(t_request_wait(&w), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &c, 5 * PAGE, 6 * PAGE), EBUSY);
	CHECK_RC(rangelock_unlock(&lk, &a), 0);
	CHECK(!draining(&lk));
	CHECK_RC(rangelock_unlock(&lk, &a), EINVAL);   /* not held any more */
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);

	CHECK_RC(rangelock_wrlock(&lk, &c, 5 * PAGE, 6 * PAGE), 0);
	CHECK(state_of(&c) == RL_FAST);
	CHECK_RC(rangelock_unlock(&lk, &c), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* Listed requests close the grown table from the moment it is seen. */
static void test_listed_close_grown_table(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held, eof, hold, probe;
	struct t_request w;

	/* a narrow listed holder (not whole pages, more than a byte slot) */
	CHECK_RC(rangelock_wrlock(&lk, &held, 3 * PAGE + 1, 5 * PAGE + 7), 0);
	/* a fast holder in the small table, and a waiter behind it */
	CHECK_RC(rangelock_rdlock(&lk, &hold, 900 * PAGE, 901 * PAGE), 0);
	t_request_start(&w, &lk, T_WR, 900 * PAGE, 901 * PAGE);
	t_wait_queued(&lk, false, 900 * PAGE, 901 * PAGE);
	/* a wide listed holder */
	CHECK_RC(rangelock_wrlock(&lk, &eof, 1ull << 40, RANGELOCK_EOF), 0);

	rl_fast_grow(priv(&lk));
	CHECK(table_lines(&lk) == RL_GROWN_LINES);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, 4 * PAGE, 5 * PAGE), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, 900 * PAGE, 901 * PAGE), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, (1ull << 40) + PAGE,
				     (1ull << 40) + 2 * PAGE), EBUSY);
	CHECK(t_request_pending(&w, 20));

	/* leaving reopens the grown table */
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(rangelock_unlock(&lk, &eof), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &probe, 4 * PAGE, 5 * PAGE), 0);
	CHECK(state_of(&probe) == RL_FAST);
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);
	CHECK_RC(rangelock_unlock(&lk, &hold), 0);
	CHECK_RC(t_request_wait(&w), 0);
	CHECK(!draining(&lk));
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* One thread holding many ranges in one line never grows the lock. */
static void test_one_thread_does_not_grow(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t r[RL_SLOTS];
	uint64_t p, q;

	pages_sharing_small_line(&p, &q);
	for (int round = 0; round < 10 * RL_GROW_AFTER; round++) {
		for (int i = 0; i < RL_SLOTS; i++)
			CHECK_RC(rangelock_wrlock(&lk, &r[i], (p + (uint64_t)i) * PAGE,
						  (p + (uint64_t)i + 1) * PAGE), 0);
		for (int i = 0; i < RL_SLOTS; i++)
			CHECK_RC(rangelock_unlock(&lk, &r[i]), 0);
	}
	CHECK(table_lines(&lk) == RL_SMALL_LINES);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

struct meeter {
	rangelock_t *lk;
	uint64_t page;
	atomic_int *stop;
};

static void *meet(void *arg)
{
	struct meeter *m = arg;
	rangelock_range_t r;

	/* relaxed: a stop flag */
	while (!atomic_load_explicit(m->stop, memory_order_relaxed)) {
		CHECK_RC(rangelock_wrlock(m->lk, &r, m->page * PAGE, (m->page + 1) * PAGE), 0);
		CHECK_RC(rangelock_unlock(m->lk, &r), 0);
	}
	return NULL;
}

/* Two threads on distinct pages that share a line grow the lock. */
static void test_threads_that_meet_grow_it(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t r;
	atomic_int stop = 0;
	struct meeter m[2] = { { &lk, 0, &stop }, { &lk, 0, &stop } };
	pthread_t t[2];
	uint64_t p, q;

	pages_sharing_small_line(&p, &q);
	m[0].page = p;
	m[1].page = q;
	CHECK_RC(rangelock_wrlock(&lk, &r, 0, 1), 0);   /* sets up the table */
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, meet, &m[i]) == 0);
	for (int ms = 0; ms < 10000 && table_lines(&lk) != RL_GROWN_LINES; ms++)
		t_sleep_ms(1);
	/* relaxed: a stop flag */
	atomic_store_explicit(&stop, 1, memory_order_relaxed);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	CHECK(table_lines(&lk) == RL_GROWN_LINES);
	CHECK(!draining(&lk));
	CHECK_RC(rangelock_destroy(&lk), 0);
}

int main(void)
{
	RUN(test_holder_of_small_table);
	RUN(test_listed_close_grown_table);
	RUN(test_one_thread_does_not_grow);
	RUN(test_threads_that_meet_grow_it);
	t_done();
	return 0;
}
