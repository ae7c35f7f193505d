/* SPDX-License-Identifier: MIT */
/*
 * whitebox.h - what the white-box unit tests (test_grow.c, test_blocks.c,
 * test_index.c, test_marks.c, linked against the static library) read of
 * the lock's private layout.
 */
#ifndef RL_TEST_WHITEBOX_H
#define RL_TEST_WHITEBOX_H

#include "harness.h"
#include "rl_internal.h"

static inline struct rl_lock *priv(rangelock_t *lk)
{
	return (struct rl_lock *)(void *)lk;
}

/* The state word of a handle. */
static inline uint32_t state_of(rangelock_range_t *r)
{
	/* relaxed: a test's poll of a word the lock writes */
	return atomic_load_explicit(&rl_request_of(r)->state, memory_order_relaxed);
}

/* The lock's current table ({ NULL, .. } for none). */
static inline struct rl_table table_of(rangelock_t *lk)
{
	return rl_table_decode(atomic_load_explicit(&priv(lk)->table,
						    memory_order_acquire));
}

/* How many lines the lock's current table has; 0 for none. */
static inline unsigned table_lines(rangelock_t *lk)
{
	struct rl_table t = table_of(lk);

	return t.line ? t.lines : 0;
}

/* Wait up to 10 s until t's request is listed and waiting (its handle's
 * state word), so that what follows meets a queued waiter.  (A try-lock
 * probe, t_wait_queued(), cannot tell when the holder alone refuses it.) */
static inline void wait_listed(struct t_request *t)
{
	for (int ms = 0; ms < 10000; ms++) {
		uint32_t s = state_of(&t->range);

		if (s == RL_WAITING || s == RL_SLEEPING)
			return;
		t_sleep_ms(1);
	}
	t_fail(__FILE__, __LINE__, "the request never queued");
}

#endif
