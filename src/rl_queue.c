/* SPDX-License-Identifier: MIT */
/*
 * rl_queue.c - the grant policy: who of the listed requests is held.
 *
 * Every function here runs with the lock's guard held.  The listed requests
 * are in the index (rl_index.c), each with its arrival number, and keep
 *
 *     a request is held  <=>  it conflicts with no phantom (fast holder in
 *                             a closed line) and no earlier request,
 *
 * where two requests conflict when their ranges overlap and at least one is
 * exclusive.  rl_queue_grant_after() restores the invariant after a request
 * or a phantom left or became shared.  Only requests that overlap a range
 * are ever looked at, so the cost depends on how many overlap it, not on
 * how many are listed.
 */
#include "rl_internal.h"

static bool rl_is_waiting(const struct rl_request *q)
{
	/* relaxed: under the guard; every write that makes a request wait or
	 * stop waiting is made under the guard too. */
	uint32_t s = atomic_load_explicit(&q->state, memory_order_relaxed);

	return s == RL_WAITING || s == RL_SLEEPING;
}

/* What a visit of the index looks for (rl_index_any() passes only the
 * requests that overlap the range it was given). */
struct rl_probe {
	struct rl_lock *l;
	uint64_t before;     /* only requests that arrived before this seq */
	uint64_t owner;      /* rl_queue_thread_overlaps() */
	bool exclusive;
};

static bool rl_conflicts_earlier(struct rl_request *e, void *arg)
{
	const struct rl_probe *p = arg;

	return e->seq < p->before && (e->exclusive || p->exclusive);
}

/* rl_queue_conflicts: would a new request for [start, end) conflict with
 * any request on the list?  (All of them are earlier than it.) */
bool rl_queue_conflicts(const struct rl_lock *l, uint64_t start, uint64_t end,
			bool exclusive)
{
	struct rl_probe p = { .before = UINT64_MAX, .exclusive = exclusive };

	return rl_index_any(l, start, end, rl_conflicts_earlier, &p);
}

/* rl_is_blocked: does q, on the list, conflict with an earlier request or
 * with a phantom?  (Phantoms are earlier than every listed request.) */
static bool rl_is_blocked(const struct rl_lock *l, const struct rl_request *q)
{
	struct rl_probe p = { .before = q->seq, .exclusive = q->exclusive };

	return rl_index_any(l, q->start, q->end, rl_conflicts_earlier, &p) ||
	       rl_fast_phantoms_conflict(l, q->start, q->end, q->exclusive);
}

static bool rl_held_by_owner(struct rl_request *e, void *arg)
{
	const struct rl_probe *p = arg;

	return e->owner == p->owner && !rl_is_waiting(e);
}

/* rl_queue_thread_overlaps: does owner hold a range overlapping
 * [start, end), in any mode?  (Debug mode's recursion check.) */
bool rl_queue_thread_overlaps(const struct rl_lock *l, uint64_t owner,
			      uint64_t start, uint64_t end)
{
	struct rl_probe p = { .owner = owner };

	return rl_index_any(l, start, end, rl_held_by_owner, &p);
}

/* rl_queue_contains: is q on the list?  (Debug mode's handle checks.) */
bool rl_queue_contains(const struct rl_lock *l, const struct rl_request *q)
{
	return rl_index_contains(l, q);
}

void rl_queue_append(struct rl_lock *l, struct rl_request *q)
{
	rl_index_insert(l, q);
	rl_listed_of(l)->waiting += rl_is_waiting(q);
}

/*
 * rl_grant: hand the range to a waiting request and wake its owner if it
 * sleeps.  The wake is made under the guard on purpose: the owner cannot
 * unlock (and so free the request) before we release the guard, so the
 * futex word is still the request's when futex_wake reaches it.
 */
static void rl_grant(struct rl_lock *l, struct rl_request *q)
{
	/* release: the holder's data and our list, before the owner sees HELD;
	 * pairs with the acquire load in rl_wait_granted(). */
	uint32_t was;

	if (rl_is_shared(l))
		rl_shared_granted(l, q);   /* over a dead holder's range? */
	was = atomic_exchange_explicit(&q->state, RL_HELD, memory_order_release);
	rl_listed_of(l)->waiting--;
	if (was == RL_SLEEPING)
		rl_futex_wake(&q->state, 1, rl_is_shared(l));
}

static bool rl_grant_if_unblocked(struct rl_request *e, void *arg)
{
	const struct rl_probe *p = arg;

	/* e->seq > p->before: only requests after the one that changed */
	if (e->seq > p->before && rl_is_waiting(e) && !rl_is_blocked(p->l, e))
		rl_grant(p->l, e);
	return false;   /* visit them all */
}

/*
 * rl_queue_grant_after: a request with arrival number `after` that covered
 * [start, end) left the list or became shared (for a phantom, `after` is 0:
 * every listed request is after it).  Only waiters after it that overlap
 * [start, end) can have lost a conflict; grant those that have none left.
 * Granting one changes no other's conflicts (a held request blocks later
 * ones exactly as a waiting one does), so the order of the visit does not
 * matter.
 */
void rl_queue_grant_after(struct rl_lock *l, uint64_t after,
			  uint64_t start, uint64_t end)
{
	struct rl_probe p = { .l = l, .before = after };

	if (rl_listed_of(l)->waiting)
		rl_index_any(l, start, end, rl_grant_if_unblocked, &p);
}

/*
 * rl_queue_leave: q leaves the list -- unlocked, or withdrawn at its
 * deadline.  Its state becomes IDLE, the waiters after it that it may have
 * blocked are re-checked, and its fast-path lines are reopened (when
 * nothing else listed maps to them).  False, with nothing changed, if q is
 * not on the list (a stale handle, or a copy of a listed one).
 */
bool rl_queue_leave(struct rl_lock *l, struct rl_request *q)
{
	if (!rl_index_remove(l, q))
		return false;
	rl_listed_of(l)->waiting -= rl_is_waiting(q);   /* withdrawn at its deadline */
	/* relaxed: the guard's release publishes it; nobody else looks at q
	 * under the guard now. */
	atomic_store_explicit(&q->state, RL_IDLE, memory_order_relaxed);
	rl_queue_grant_after(l, q->seq, q->start, q->end);
	rl_fast_reopen(l, q->start, q->end);
	return true;
}
