/* SPDX-License-Identifier: MIT */
/*
 * rl_wait.c - a waiter's side of a private lock's request, and deadlines.
 *
 * The request is listed with a count of earlier conflicts (rl_grant.c)
 * when we get here, and no lock is held.  We spin on the request's own
 * count briefly (a holder running on another CPU lets go within a short
 * section), then yield the CPU a few times (the holder may be waiting for
 * our CPU: with more threads than cores, a waiter that sleeps at once
 * costs a wake-up per hand-off; a timed wait yields only while its
 * deadline is further off than a time slice), then set the count's
 * RL_COUNT_SLEEPING bit and sleep on the word.  The leaver that takes the
 * count from SLEEPING|1 to SLEEPING|0 calls futex_wake; every other change
 * of the word makes futex_wait return at once, and we look again.
 */
#include <errno.h>
#include <sched.h>

#include "rl_internal.h"

#ifndef RL_WAIT_SPINS   /* a build option only for measuring it */
#define RL_WAIT_SPINS 100
#endif
#ifndef RL_WAIT_YIELDS   /* a build option only for measuring it */
/* `file`, 8 threads on 2 cores: 1.40 Mops/s with none, 3.29 with 10,
 * 2.81 with 1000 (doc/design.md) */
#define RL_WAIT_YIELDS 10
#endif

/* How long one sched_yield() may keep the CPU from us under load. */
#define RL_YIELD_SLICE_NS 4000000L

/* rl_deadline_in: the CLOCK_MONOTONIC time ns (< 1 s) from now. */
struct timespec rl_deadline_in(long ns)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_nsec += ns;
	t.tv_sec += t.tv_nsec / 1000000000L;
	t.tv_nsec %= 1000000000L;
	return t;
}

static bool rl_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* rl_deadline_within: is the CLOCK_MONOTONIC deadline less than ns away
 * (0: has it passed)? */
bool rl_deadline_within(const struct timespec *abstime, long ns)
{
	struct timespec soon = rl_deadline_in(ns);

	return !rl_before(&soon, abstime);
}

static uint32_t rl_count_now(struct rl_request *q)
{
	/* acquire: the writes of the requests that left before us; pairs
	 * with the release decrement in rl_unblock() (rl_grant.c). */
	return atomic_load_explicit(&q->count, memory_order_acquire);
}

/*
 * rl_wait_count: wait until q's count of earlier conflicts is 0 (0), or
 * until *abstime when abstime is not NULL (ETIMEDOUT; q is still listed,
 * and the caller withdraws it).
 */
int rl_wait_count(struct rl_request *q, const struct timespec *abstime)
{
	for (int i = 0; i < RL_WAIT_SPINS; i++) {
		if (!(rl_count_now(q) & ~RL_COUNT_SLEEPING))
			return 0;
		rl_cpu_relax();
	}
	for (int i = 0; i < RL_WAIT_YIELDS; i++) {
		if (!(rl_count_now(q) & ~RL_COUNT_SLEEPING))
			return 0;
		if (abstime && rl_deadline_within(abstime, RL_YIELD_SLICE_NS))
			break;
		sched_yield();
	}
	for (;;) {
		uint32_t c = rl_count_now(q);

		if (!(c & ~RL_COUNT_SLEEPING))
			return 0;
		if (!(c & RL_COUNT_SLEEPING)) {
			/* relaxed: the announcement orders nothing; the leaver
			 * only reads the value it changes */
			atomic_compare_exchange_strong_explicit(
				&q->count, &c, c | RL_COUNT_SLEEPING,
				memory_order_relaxed, memory_order_relaxed);
			continue;
		}
		if (rl_futex_wait(&q->count, c, abstime, false) == ETIMEDOUT)
			return ETIMEDOUT;
	}
}
