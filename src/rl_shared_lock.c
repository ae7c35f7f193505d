/* SPDX-License-Identifier: MIT */
/*
 * rl_shared_lock.c - a lock call on a lock attached to a shared region:
 * admission under the region's guard, and the waiter's side.
 *
 * The request is a node of the region (rl_shared.c), listed in the
 * region's tree with its state: held at once if it conflicts with nothing
 * listed, else refused (try, past deadline) or listed waiting.  A waiter
 * spins on its node's state briefly, yields a few times, then announces
 * RL_SLEEPING and sleeps on the word, RL_POLL_NS at a time: nobody wakes a
 * waiter whose blocker died, so after each such sleep it looks for dead
 * blockers itself (rl_shared_poll()).  The granter exchanges the word to
 * RL_HELD and calls futex_wake only if it took RL_SLEEPING away, so no
 * wake-up is lost.  The caller's handle learns its node once it is held.
 */
#include <errno.h>
#include <sched.h>

#include "rl_shared.h"

#define RL_SHARED_SPINS 20
#define RL_SHARED_YIELDS 16
/* How long one sched_yield() may keep the CPU from us under load. */
#define RL_YIELD_SLICE_NS 4000000L

static bool rl_refuse_now(const struct rl_ask *a)
{
	return a->how == RL_TRY ||
	       (a->how == RL_TIMED && rl_deadline_within(a->abstime, 0));
}

/* rl_admit: decide n, a new request, for a's range; guard held.  Returns 0
 * (held), RL_QUEUED (listed waiting) or the refusal, with nothing
 * listed. */
static int rl_admit(struct rl_lock *l, struct rl_request *n,
		    const struct rl_ask *a)
{
	bool held = !rl_queue_conflicts(l, a->start, a->end, a->exclusive);

	if (!held && rl_refuse_now(a))
		return a->how == RL_TRY ? EBUSY : ETIMEDOUT;
	n->start = a->start;
	n->end = a->end;
	n->exclusive = a->exclusive;
	/* relaxed: published to other processes by the guard's release */
	atomic_store_explicit(&n->state, held ? RL_HELD : RL_WAITING,
			      memory_order_relaxed);
	rl_queue_append(l, n);
	return held ? 0 : RL_QUEUED;
}

static bool rl_is_granted(struct rl_request *n)
{
	/* acquire: the previous holder's writes; pairs with the release
	 * exchange in rl_grant() (rl_queue.c). */
	return atomic_load_explicit(&n->state, memory_order_acquire) == RL_HELD;
}

/* The deadline passed: under the guard, either the grant beat us (keep
 * it) or n leaves the list, re-granting whoever waited only behind it. */
static int rl_withdraw(struct rl_lock *l, struct rl_request *n)
{
	int rc = 0;

	rl_shared_guard_lock(l);
	if (!rl_is_granted(n)) {
		rl_queue_leave(l, n);
		rl_shared_node_free(l, n);
		rc = ETIMEDOUT;
	}
	rl_shared_guard_unlock(l);
	return rc;
}

/* Sleep RL_POLL_NS (or to the deadline, if sooner), then look for dead
 * blockers.  ETIMEDOUT only at the caller's deadline; ENOTRECOVERABLE when
 * the region is broken. */
static int rl_sleep(struct rl_lock *l, struct rl_request *n,
		    const struct timespec *abstime)
{
	struct timespec slice = rl_deadline_in(RL_POLL_NS);

	if (abstime && rl_deadline_within(abstime, RL_POLL_NS))
		return rl_futex_wait(&n->state, RL_SLEEPING, abstime, true);
	if (rl_futex_wait(&n->state, RL_SLEEPING, &slice, true) == ETIMEDOUT &&
	    !rl_shared_poll(l, n))
		return ENOTRECOVERABLE;
	return 0;
}

/* Wait until n is granted (0), or until *abstime (ETIMEDOUT, n withdrawn),
 * or the region is found broken. */
static int rl_wait_granted(struct rl_lock *l, struct rl_request *n,
			   const struct timespec *abstime)
{
	for (int i = 0; i < RL_SHARED_SPINS; i++) {
		if (rl_is_granted(n))
			return 0;
		rl_cpu_relax();
	}
	for (int i = 0; i < RL_SHARED_YIELDS; i++) {
		if (rl_is_granted(n))
			return 0;
		if (abstime && rl_deadline_within(abstime, RL_YIELD_SLICE_NS))
			break;
		sched_yield();
	}

	uint32_t expected = RL_WAITING;

	/* relaxed: the announcement orders nothing, the granter only reads
	 * the value.  If it fails the word is RL_HELD, which the acquire load
	 * below then takes. */
	atomic_compare_exchange_strong_explicit(&n->state, &expected,
						RL_SLEEPING, memory_order_relaxed,
						memory_order_relaxed);
	while (!rl_is_granted(n)) {
		int rc = rl_sleep(l, n, abstime);

		if (rc == ETIMEDOUT)
			return rl_withdraw(l, n);
		if (rc)
			return rc;
	}
	return 0;
}

int rl_shared_acquire(struct rl_lock *l, struct rl_request *q,
		      const struct rl_ask *a)
{
	struct rl_request *n = NULL;
	int rc;

	rl_shared_guard_lock(l);
	rc = rl_shared_node_alloc(l, &n);
	if (!rc) {
		rc = rl_admit(l, n, a);
		if ((rc == EBUSY || rc == ETIMEDOUT) &&
		    rl_shared_refused(l, a->start, a->end, a->exclusive))
			rc = rl_admit(l, n, a);
		if (!rc)
			rl_shared_granted(l, n);
		else if (rc != RL_QUEUED)
			rl_shared_node_free(l, n);
	}
	rl_shared_guard_unlock(l);

	if (rc == RL_QUEUED)
		rc = rl_wait_granted(l, n, a->how == RL_TIMED ? a->abstime : NULL);
	if (!rc)
		rc = rl_shared_handle(l, q, n);
	return rc;
}
