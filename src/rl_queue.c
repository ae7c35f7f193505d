/* SPDX-License-Identifier: MIT */
/*
 * rl_queue.c - a shared region's grant policy: who of its listed requests
 * is held.
 *
 * Every function here runs with the region's guard held.  The listed
 * requests are in the region's index (rl_index.c), each with its arrival
 * number, and keep
 *
 *     a request is held  <=>  it conflicts with no earlier listed request,
 *
 * where two requests conflict when their ranges overlap and at least one is
 * exclusive.  A region keeps no counts (a private lock's policy,
 * rl_grant.c): its state must be rebuilt from the nodes alone after a
 * process dies at any instruction, and a waiter's state is then decided
 * again from the index (rl_queue_grant_after()).  Only requests that
 * overlap a range are ever looked at.
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

/* rl_is_blocked: does q, on the list, conflict with an earlier request? */
static bool rl_is_blocked(const struct rl_lock *l, const struct rl_request *q)
{
	struct rl_probe p = { .before = q->seq, .exclusive = q->exclusive };

	return rl_index_any(l, q->start, q->end, rl_conflicts_earlier, &p);
}

void rl_queue_append(struct rl_lock *l, struct rl_request *q)
{
	rl_index_insert(l, q);
	rl_shared_listed(l)->waiting += rl_is_waiting(q);
}

/*
 * rl_grant: hand the range to a waiting request and wake its owner if it
 * sleeps.  The wake is made under the guard on purpose: the owner cannot
 * unlock (and so free the request) before we release the guard, so the
 * futex word is still the request's when futex_wake reaches it.
 */
static void rl_grant(struct rl_lock *l, struct rl_request *q)
{
	uint32_t was;

	rl_shared_granted(l, q);   /* over a dead holder's range? */
	/* release: the holder's data and our list, before the owner sees HELD;
	 * pairs with the acquire load of the waiter (rl_shared.c). */
	was = atomic_exchange_explicit(&q->state, RL_HELD, memory_order_release);
	rl_shared_listed(l)->waiting--;
	if (was == RL_SLEEPING)
		rl_futex_wake(&q->state, 1, true);
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
 * [start, end) left the list or became shared (after a recovery, `after`
 * is 0: every listed request is after it).  Only waiters after it that
 * overlap [start, end) can have lost a conflict; grant those that have
 * none left.  Granting one changes no other's conflicts (a held request
 * blocks later ones exactly as a waiting one does), so the order of the
 * visit does not matter.
 */
void rl_queue_grant_after(struct rl_lock *l, uint64_t after,
			  uint64_t start, uint64_t end)
{
	struct rl_probe p = { .l = l, .before = after };

	if (rl_shared_listed(l)->waiting)
		rl_index_any(l, start, end, rl_grant_if_unblocked, &p);
}

/*
 * rl_queue_leave: q leaves the list -- unlocked, or withdrawn at its
 * deadline.  Its state becomes IDLE and the waiters after it that it may
 * have blocked are re-checked.  False, with nothing changed, if q is not
 * on the list.
 */
bool rl_queue_leave(struct rl_lock *l, struct rl_request *q)
{
	if (!rl_index_remove(l, q))
		return false;
	rl_shared_listed(l)->waiting -= rl_is_waiting(q);   /* withdrawn */
	/* relaxed: the guard's release publishes it; nobody else looks at q
	 * under the guard now. */
	atomic_store_explicit(&q->state, RL_IDLE, memory_order_relaxed);
	rl_queue_grant_after(l, q->seq, q->start, q->end);
	return true;
}
