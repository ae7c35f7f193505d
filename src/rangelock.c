/* SPDX-License-Identifier: MIT */
/*
 * rangelock.c - the public API: argument checks, the fast path, the
 * precise path's admission.
 *
 * A lock call first tries the fast path (rl_fast.c): one CAS on a slot of
 * the line its pages map to.  Whatever that cannot take goes to the precise
 * path here, under the guard: the request closes the fast path over its
 * range, and if it conflicts with nothing (no phantom, nothing listed) it
 * is appended as held and the call returns; otherwise it is refused (try, past
 * deadline) or appended as waiting, and the caller waits on its own
 * request's futex word (rl_wait.c) after dropping the guard.
 */
#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <string.h>

#include "rl_fast.h"

static_assert(sizeof(struct rl_lock) <= sizeof(rangelock_t),
	      "struct rl_lock must fit in rangelock_t");
static_assert(alignof(struct rl_lock) <= alignof(rangelock_t),
	      "struct rl_lock must not be more aligned than rangelock_t");
static_assert(sizeof(struct rl_request) <= sizeof(rangelock_range_t),
	      "struct rl_request must fit in rangelock_range_t");
static_assert(alignof(struct rl_request) <= alignof(rangelock_range_t),
	      "struct rl_request must not be more aligned than its handle");

enum rl_how { RL_BLOCK, RL_TRY, RL_TIMED };

/* The calling thread's identity for debug mode: a number no other thread
 * of the process ever gets.  (A thread-local address is reused by the next
 * thread, which would then be charged with the ranges a thread that exited
 * left held.)  0 until the thread's first debug-mode call. */
static _Atomic uint64_t rl_threads_seen;
static _Thread_local uint64_t rl_self_id;

static uint64_t rl_self(void)
{
	if (rl_unlikely(!rl_self_id))
		/* relaxed: only uniqueness matters */
		rl_self_id = atomic_fetch_add_explicit(&rl_threads_seen, 1,
						       memory_order_relaxed) + 1;
	return rl_self_id;
}

static bool rl_debug(const struct rl_lock *l)
{
	return l->flags & RANGELOCK_DEBUG;
}

static bool rl_timespec_valid(const struct timespec *ts)
{
	return ts && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}


/* rl_debug_refuses: debug mode's checks of a new request; guard held. */
static int rl_debug_refuses(const struct rl_lock *l, const struct rl_request *q,
			    uint64_t start, uint64_t end)
{
	if (rl_queue_contains(l, q))
		return EINVAL; /* the handle is already held or waiting */
	if (rl_queue_thread_overlaps(l, rl_self(), start, end))
		return EDEADLK;
	return 0;
}

static rl_always_inline void rl_enqueue(struct rl_lock *l, struct rl_request *q,
				       uint64_t start, uint64_t end,
				       bool exclusive, enum rl_state state)
{
	q->start = start;
	q->end = end;
	q->exclusive = exclusive;
	if (!rl_is_shared(l))   /* a shared node keeps its owner's tag */
		q->owner = rl_debug(l) ? rl_self() : 0;
	/* relaxed: published to other threads by the guard's release. */
	atomic_store_explicit(&q->state, state, memory_order_relaxed);
	rl_queue_append(l, q);
}

/* Internal result of rl_admit(): appended as waiting, the caller must wait. */
#define RL_QUEUED (-1)

/* rl_admit: decide a new request; guard held.  Returns 0 (held), RL_QUEUED
 * (appended as waiting) or an error, with nothing changed. */
static rl_always_inline int rl_admit(struct rl_lock *l, struct rl_request *q,
				     uint64_t start, uint64_t end,
				     bool exclusive, enum rl_how how,
				     const struct timespec *abstime)
{
	if (rl_unlikely(rl_debug(l))) {
		int rc = rl_debug_refuses(l, q, start, end);

		if (rc)
			return rc;
	}
	rl_fast_setup(l);
	rl_fast_close(l, start, end);
	if (!rl_queue_conflicts(l, start, end, exclusive) &&
	    !rl_fast_phantoms_conflict(l, start, end, exclusive)) {
		rl_enqueue(l, q, start, end, exclusive, RL_HELD);
		return 0;
	}
	if (how == RL_TRY || (how == RL_TIMED && rl_deadline_within(abstime, 0))) {
		rl_fast_reopen(l, start, end);   /* not listed after all */
		return how == RL_TRY ? EBUSY : ETIMEDOUT;
	}
	rl_enqueue(l, q, start, end, exclusive, RL_WAITING);
	return RL_QUEUED;
}

/* The rest of a lock call after the fast path.  `call` is how << 2 |
 * claimed << 1 | exclusive, so that the arguments fit in registers and the
 * fast path can tail-call it. */
static __attribute__((noinline)) int
rl_acquire_slow(struct rl_lock *l, struct rl_request *q, uint64_t start,
		uint64_t end, unsigned call, const struct timespec *abstime);

static rl_always_inline int rl_acquire(rangelock_t *lk, rangelock_range_t *r,
				       uint64_t start, uint64_t end,
				       bool exclusive, enum rl_how how,
				       const struct timespec *abstime)
{
	struct rl_lock *l = rl_lock_of(lk);
	struct rl_request *q = rl_request_of(r);

	if (start >= end || (how == RL_TIMED && !rl_timespec_valid(abstime)))
		return EINVAL;
	enum rl_fast_result fast = rl_fast_lock(l, q, start, end, exclusive);

	if (rl_likely(fast == RL_FAST_TAKEN))
		return 0;
	return rl_acquire_slow(l, q, start, end,
			       (unsigned)how << 2 |
				       (unsigned)(fast == RL_FAST_CLAIMED) << 1 |
				       exclusive,
			       abstime);
}

/*
 * rl_acquire_listed_shared: a lock call on a lock attached to a shared
 * region, that the fast path did not take.  The request is a node of the
 * region (rl_shared.c), admitted as any other; q, the caller's handle,
 * learns which node once it is held.
 */
static __attribute__((noinline)) int
rl_acquire_listed_shared(struct rl_lock *l, struct rl_request *q,
			 uint64_t start, uint64_t end, bool exclusive,
			 enum rl_how how, const struct timespec *abstime)
{
	struct rl_request *n = NULL;
	int rc;

	rl_shared_guard_lock(l);
	rc = rl_shared_node_alloc(l, &n);
	if (!rc) {
		rc = rl_admit(l, n, start, end, exclusive, how, abstime);
		if ((rc == EBUSY || rc == ETIMEDOUT) &&
		    rl_shared_refused(l, start, end, exclusive))
			rc = rl_admit(l, n, start, end, exclusive, how, abstime);
		if (!rc)
			rl_shared_granted(l, n);
		else if (rc != RL_QUEUED)
			rl_shared_node_free(l, n);
	}
	rl_shared_guard_unlock(l);

	if (rc == RL_QUEUED)
		rc = rl_wait_granted(l, n, how == RL_TIMED ? abstime : NULL);
	if (!rc)
		rc = rl_shared_handle(l, q, n);
	return rc;
}

/* A lock call on a lock attached to a shared region: first the fast path,
 * in the region's table, then the precise path.  (The arguments as for
 * rl_acquire_slow(), which jumps here.) */
static __attribute__((noinline)) int
rl_acquire_shared(struct rl_lock *l, struct rl_request *q, uint64_t start,
		  uint64_t end, unsigned call, const struct timespec *abstime)
{
	if (rl_shared_fast_lock(l, q, start, end, call & 1))
		return 0;
	return rl_acquire_listed_shared(l, q, start, end, call & 1,
					(enum rl_how)(call >> 2), abstime);
}

/* The rest of a private lock's call after the fast path (as
 * rl_acquire_slow()). */
static __attribute__((noinline)) int
rl_acquire_private(struct rl_lock *l, struct rl_request *q, uint64_t start,
		   uint64_t end, unsigned call, const struct timespec *abstime)
{
	bool exclusive = call & 1;
	enum rl_how how = (enum rl_how)(call >> 2);
	int rc;

	unsigned blocks;

	if (call & 2) {   /* a slot claimed: keep it or give it back */
		if (rl_fast_settle(l, q))
			return 0;
	} else if ((blocks = rl_blocks_of(start, end)) &&
		   rl_fast_lock_blocks(l, q, blocks, start, end, exclusive)) {
		return 0;   /* held over several blocks */
	}

	rl_guard_lock(l);
	rc = rl_admit(l, q, start, end, exclusive, how, abstime);
	rl_guard_unlock(l);

	if (rc == RL_QUEUED)
		rc = rl_wait_granted(l, q, how == RL_TIMED ? abstime : NULL);
	return rc;
}

static int rl_acquire_slow(struct rl_lock *l, struct rl_request *q,
			   uint64_t start, uint64_t end, unsigned call,
			   const struct timespec *abstime)
{
	if (rl_is_shared(l))   /* its view has no table: never RL_FAST_CLAIMED */
		return rl_acquire_shared(l, q, start, end, call, abstime);
	return rl_acquire_private(l, q, start, end, call, abstime);
}

/* rl_listed_held: does q say it is held on the list?  (rl_queue_leave()
 * and rl_queue_contains() then find out whether it is, on l.)  Guard
 * held. */
static bool rl_listed_held(const struct rl_request *q)
{
	/* relaxed: a listed request's state changes only under the guard. */
	return atomic_load_explicit(&q->state, memory_order_relaxed) == RL_HELD;
}

int rangelock_init(rangelock_t *lk, unsigned flags)
{
	if (flags & ~(unsigned)RANGELOCK_DEBUG)
		return EINVAL;
	memset(lk, 0, sizeof(*lk));
	rl_lock_of(lk)->flags = flags;
	return 0;
}

int rangelock_destroy(rangelock_t *lk)
{
	struct rl_lock *l = rl_lock_of(lk);
	int rc = 0;

	if (rl_is_shared(l))
		return rl_shared_detach(l);

	rl_guard_lock(l);
	if (l->listed.root || rl_fast_busy(l))
		rc = EBUSY;
	else
		rl_fast_teardown(l);
	rl_guard_unlock(l);
	return rc;
}

int rangelock_rdlock(rangelock_t *lk, rangelock_range_t *r, uint64_t start,
		     uint64_t end)
{
	return rl_acquire(lk, r, start, end, false, RL_BLOCK, NULL);
}

int rangelock_wrlock(rangelock_t *lk, rangelock_range_t *r, uint64_t start,
		     uint64_t end)
{
	return rl_acquire(lk, r, start, end, true, RL_BLOCK, NULL);
}

int rangelock_tryrdlock(rangelock_t *lk, rangelock_range_t *r, uint64_t start,
			uint64_t end)
{
	return rl_acquire(lk, r, start, end, false, RL_TRY, NULL);
}

int rangelock_trywrlock(rangelock_t *lk, rangelock_range_t *r, uint64_t start,
			uint64_t end)
{
	return rl_acquire(lk, r, start, end, true, RL_TRY, NULL);
}

int rangelock_timedrdlock(rangelock_t *lk, rangelock_range_t *r,
			  uint64_t start, uint64_t end,
			  const struct timespec *abstime)
{
	return rl_acquire(lk, r, start, end, false, RL_TIMED, abstime);
}

int rangelock_timedwrlock(rangelock_t *lk, rangelock_range_t *r,
			  uint64_t start, uint64_t end,
			  const struct timespec *abstime)
{
	return rl_acquire(lk, r, start, end, true, RL_TIMED, abstime);
}

/* rl_is_fast: was q taken through the fast path?  (On l, and by q itself:
 * rl_fast_owns_slot() checks.)  Owner only. */
static bool rl_is_fast(const struct rl_request *q)
{
	/* relaxed: the owner's own bookkeeping, set by its lock call. */
	return atomic_load_explicit(&q->state, memory_order_relaxed) == RL_FAST;
}

/* Is q, a handle of a shared lock, held through a slot of its region? */
static bool rl_is_slot_shared(const struct rl_request *q)
{
	/* relaxed: the owner's own bookkeeping, set by its lock call. */
	return atomic_load_explicit(&q->state, memory_order_relaxed) ==
	       RL_SLOT_SHARED;
}

static __attribute__((noinline)) int rl_unlock_slow(struct rl_lock *l,
						  struct rl_request *q)
{
	int rc = EINVAL;

	if (rl_is_shared(l))
		return rl_shared_release(l, q, false);
	rl_guard_lock(l);
	if (rl_listed_held(q) && rl_queue_leave(l, q))
		rc = 0;
	rl_guard_unlock(l);
	return rc;
}

int rangelock_unlock(rangelock_t *lk, rangelock_range_t *r)
{
	struct rl_lock *l = rl_lock_of(lk);
	struct rl_request *q = rl_request_of(r);

	if (rl_is_fast(q))
		return rl_fast_unlock(l, q);
	if (rl_is_slot_shared(q) && rl_is_shared(l))
		return rl_shared_fast_release(l, q, false);
	return rl_unlock_slow(l, q);
}

int rangelock_downgrade(rangelock_t *lk, rangelock_range_t *r)
{
	struct rl_lock *l = rl_lock_of(lk);
	struct rl_request *q = rl_request_of(r);
	int rc = EINVAL;

	if (rl_is_fast(q))
		return rl_fast_downgrade(l, q);
	if (rl_is_shared(l))
		return rl_is_slot_shared(q) ? rl_shared_fast_release(l, q, true)
					    : rl_shared_release(l, q, true);
	rl_guard_lock(l);
	if (rl_listed_held(q) && q->exclusive && rl_queue_contains(l, q)) {
		q->exclusive = false;
		rl_queue_grant_after(l, q->seq, q->start, q->end);
		rc = 0;
	}
	rl_guard_unlock(l);
	return rc;
}

unsigned rangelock_version(void)
{
	return RANGELOCK_VERSION;
}
