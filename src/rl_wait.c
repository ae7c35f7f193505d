/* SPDX-License-Identifier: MIT */
/*
 * rl_wait.c - the requester's side of waiting for a range.
 *
 * The request is on the list in state RL_WAITING when we get here, and the
 * guard is released.  We spin on the request's own state word briefly (a
 * holder running on another CPU lets go within a short critical section;
 * longer spins take the CPU from holders that are not running when threads
 * outnumber cores), then yield the CPU a few times (the holder, or the
 * thread that must grant us, may be waiting for our CPU: measured in
 * doc/design.md; a timed wait yields only while its deadline is further off
 * than a time slice), then announce RL_SLEEPING and sleep on the word.  The
 * granter exchanges the word to RL_HELD and calls futex_wake only if it
 * took RL_SLEEPING away, so no wake-up is lost: if our CAS to RL_SLEEPING
 * fails, the word is already RL_HELD; if it succeeds, the granter will see
 * RL_SLEEPING, and futex_wait returns at once if the word changed before
 * we slept.  A deadline that passes while we spin or yield ends the wait in
 * futex_wait, which returns ETIMEDOUT at once for a past deadline.
 */
#include <errno.h>
#include <sched.h>

#include "rl_internal.h"

#ifndef RL_WAIT_SPINS   /* a build option only for measuring it */
#define RL_WAIT_SPINS 20   /* about a microsecond: doc/design.md */
#endif
#ifndef RL_WAIT_YIELDS   /* a build option only for measuring it */
#define RL_WAIT_YIELDS 16
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

static bool rl_is_granted(struct rl_request *q)
{
	/* acquire: the previous holder's writes; pairs with the release
	 * exchange in rl_grant(). */
	return atomic_load_explicit(&q->state, memory_order_acquire) == RL_HELD;
}

/*
 * rl_withdraw: the deadline passed.  Under the guard, either the grant beat
 * us (keep it: report success) or we leave the list and re-grant whoever
 * waited only behind us, so the timed-out request blocks nobody afterwards.
 */
static int rl_withdraw(struct rl_lock *l, struct rl_request *q)
{
	int rc = 0;

	rl_guard_lock_any(l);
	if (!rl_is_granted(q)) {
		rl_queue_leave(l, q);
		if (rl_is_shared(l))
			rl_shared_node_free(l, q);
		rc = ETIMEDOUT;
	}
	rl_guard_unlock_any(l);
	return rc;
}

/*
 * rl_sleep_shared: a shared lock's waiter sleeps RL_POLL_NS at a time (or
 * to its deadline, if sooner).  Nobody wakes a waiter whose blocker died;
 * after each such sleep it looks for dead blockers itself (rl_shared_poll()
 * frees what they held and grants what that unblocks).  ETIMEDOUT only at
 * the caller's deadline; ENOTRECOVERABLE when the region is broken.
 */
static int rl_sleep_shared(struct rl_lock *l, struct rl_request *q,
			   const struct timespec *abstime)
{
	struct timespec slice = rl_deadline_in(RL_POLL_NS);

	if (abstime && !rl_before(&slice, abstime))
		return rl_futex_wait(&q->state, RL_SLEEPING, abstime, true);
	if (rl_futex_wait(&q->state, RL_SLEEPING, &slice, true) == ETIMEDOUT &&
	    !rl_shared_poll(l, q))
		return ENOTRECOVERABLE;   /* the region is broken */
	return 0;
}

/*
 * rl_wait_granted: wait until q is granted (0) or until *abstime, when
 * abstime is not NULL (ETIMEDOUT, with q withdrawn from the list).
 */
int rl_wait_granted(struct rl_lock *l, struct rl_request *q,
		    const struct timespec *abstime)
{
	for (int i = 0; i < RL_WAIT_SPINS; i++) {
		if (rl_is_granted(q))
			return 0;
		rl_cpu_relax();
	}
	for (int i = 0; i < RL_WAIT_YIELDS; i++) {
		if (rl_is_granted(q))
			return 0;
		/* a yield can give the CPU away for a whole time slice: a
		 * timed wait yields only while its deadline is further off
		 * than that, and the futex below then sleeps to it */
		if (abstime && rl_deadline_within(abstime, RL_YIELD_SLICE_NS))
			break;
		sched_yield();
	}

	uint32_t expected = RL_WAITING;

	/* relaxed: the announcement orders nothing, the granter only reads
	 * the value.  If it fails the word is RL_HELD, which the acquire load
	 * in rl_is_granted() below then takes. */
	atomic_compare_exchange_strong_explicit(&q->state, &expected,
						RL_SLEEPING, memory_order_relaxed,
						memory_order_relaxed);
	while (!rl_is_granted(q)) {
		int rc = rl_is_shared(l) ? rl_sleep_shared(l, q, abstime)
					 : rl_futex_wait(&q->state, RL_SLEEPING,
							 abstime, false);

		if (rc == ETIMEDOUT)
			return rl_withdraw(l, q);
		if (rc)
			return rc;
	}
	return 0;
}
