/* SPDX-License-Identifier: MIT */
/*
 * rl_queue.c - the arrival-ordered list of held and waiting requests.
 *
 * Every function here runs with the lock's guard held.  The list keeps
 *
 *     a request is held  <=>  it conflicts with no phantom (fast holder in
 *                             a closed line) and no earlier request,
 *
 * where two requests conflict when their ranges overlap and at least one is
 * exclusive.  rl_queue_grant_after() restores the invariant after a request
 * or a phantom left or became shared.
 */
#include "rl_internal.h"

static bool rl_conflict(const struct rl_request *e, uint64_t start,
			uint64_t end, bool exclusive)
{
	return (e->exclusive || exclusive) && rl_overlaps(e, start, end);
}

static bool rl_is_waiting(const struct rl_request *q)
{
	/* relaxed: under the guard; every write that makes a request wait or
	 * stop waiting is made under the guard too. */
	uint32_t s = atomic_load_explicit(&q->state, memory_order_relaxed);

	return s == RL_WAITING || s == RL_SLEEPING;
}

/* rl_queue_conflicts: would a new request for [start, end) conflict with
 * any request on the list?  (All of them are earlier than it.) */
bool rl_queue_conflicts(const struct rl_lock *l, uint64_t start, uint64_t end,
			bool exclusive)
{
	for (const struct rl_request *e = l->head; e; e = e->next)
		if (rl_conflict(e, start, end, exclusive))
			return true;
	return false;
}

/* rl_is_blocked: does q, on the list, conflict with an earlier request or
 * with a phantom?  (Phantoms are earlier than every listed request.) */
static bool rl_is_blocked(const struct rl_lock *l, const struct rl_request *q)
{
	for (const struct rl_request *e = q->prev; e; e = e->prev)
		if (rl_conflict(e, q->start, q->end, q->exclusive))
			return true;
	return rl_fast_phantoms_conflict(l, q->start, q->end, q->exclusive);
}

/* rl_queue_thread_overlaps: does owner hold a range overlapping
 * [start, end), in any mode?  (Debug mode's recursion check.) */
bool rl_queue_thread_overlaps(const struct rl_lock *l, uint64_t owner,
			      uint64_t start, uint64_t end)
{
	for (const struct rl_request *e = l->head; e; e = e->next)
		if (e->owner == owner && rl_overlaps(e, start, end) &&
		    !rl_is_waiting(e))
			return true;
	return false;
}

/* rl_queue_contains: is q on the list?  (Debug mode's handle checks.) */
bool rl_queue_contains(const struct rl_lock *l, const struct rl_request *q)
{
	for (const struct rl_request *e = l->head; e; e = e->next)
		if (e == q)
			return true;
	return false;
}

void rl_queue_append(struct rl_lock *l, struct rl_request *q)
{
	q->next = NULL;
	q->prev = l->tail;
	if (l->tail)
		l->tail->next = q;
	else
		l->head = q;
	l->tail = q;
}

static void rl_queue_remove(struct rl_lock *l, struct rl_request *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		l->head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		l->tail = q->prev;
	q->prev = q->next = NULL;
}

/*
 * rl_grant: hand the range to a waiting request and wake its owner if it
 * sleeps.  The wake is made under the guard on purpose: the owner cannot
 * unlock (and so free the request) before we release the guard, so the
 * futex word is still the request's when futex_wake reaches it.
 */
static void rl_grant(struct rl_request *q)
{
	/* release: the holder's data and our list, before the owner sees HELD;
	 * pairs with the acquire load in rl_wait_granted(). */
	uint32_t was = atomic_exchange_explicit(&q->state, RL_HELD,
						memory_order_release);

	if (was == RL_SLEEPING)
		rl_futex_wake(&q->state, 1);
}

/*
 * rl_queue_grant_after: a request that was just before `from` and covered
 * [start, end) left the list or became shared (for a phantom, `from` is the
 * head: every listed request is after it).  Only waiters from `from` on
 * that overlap [start, end) can have lost a conflict; grant those that have
 * none left.
 */
void rl_queue_grant_after(const struct rl_lock *l, struct rl_request *from,
			  uint64_t start, uint64_t end)
{
	for (struct rl_request *q = from; q; q = q->next)
		if (rl_is_waiting(q) && rl_overlaps(q, start, end) &&
		    !rl_is_blocked(l, q))
			rl_grant(q);
}

/*
 * rl_queue_leave: q (listed) leaves the list -- unlocked, or withdrawn at
 * its deadline.  Its state becomes IDLE, the waiters after it that it may
 * have blocked are re-checked, and its fast-path lines are reopened (when
 * nothing else listed maps to them).
 */
void rl_queue_leave(struct rl_lock *l, struct rl_request *q)
{
	struct rl_request *next = q->next;

	rl_queue_remove(l, q);
	/* relaxed: the guard's release publishes it; nobody else looks at q
	 * under the guard now. */
	atomic_store_explicit(&q->state, RL_IDLE, memory_order_relaxed);
	rl_queue_grant_after(l, next, q->start, q->end);
	rl_fast_reopen(l, q->start, q->end);
}
