/* SPDX-License-Identifier: MIT */
/*
 * rangelock.c - the public API: argument checks, and which kind of lock a
 * call goes to: a process's own (rl_grant.c) or one attached to a region
 * that processes share (rl_shared.c, rl_shared_lock.c).  Debug mode's
 * thread identity is made here.
 */
#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <string.h>

#include "rl_internal.h"

static_assert(sizeof(struct rl_lock) <= sizeof(rangelock_t),
	      "struct rl_lock must fit in rangelock_t");
static_assert(alignof(struct rl_lock) <= alignof(rangelock_t),
	      "struct rl_lock must not be more aligned than rangelock_t");
static_assert(sizeof(struct rl_request) <= sizeof(rangelock_range_t),
	      "struct rl_request must fit in rangelock_range_t");
static_assert(alignof(struct rl_request) <= alignof(rangelock_range_t),
	      "struct rl_request must not be more aligned than its handle");

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

static bool rl_timespec_valid(const struct timespec *ts)
{
	return ts && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

/* A private lock's request that must wait: wait, and withdraw it if its
 * deadline passes first. */
static __attribute__((noinline)) int rl_acquire_wait(struct rl_lock *l,
						     struct rl_request *q,
						     const struct timespec *abstime)
{
	int rc = rl_wait_count(q, abstime);

	return rc == ETIMEDOUT ? rl_grant_withdraw(l, q) : rc;
}

/* A lock call on a debug lock (its thread named) or a shared one. */
static __attribute__((noinline)) int rl_acquire_flagged(struct rl_lock *l,
							struct rl_request *q,
							struct rl_ask *a)
{
	int rc;

	if (rl_is_shared(l))
		return rl_shared_acquire(l, q, a);
	a->owner = rl_self();
	rc = rl_grant_lock(l, q, a);
	if (rc != RL_QUEUED)
		return rc;
	return rl_acquire_wait(l, q, a->how == RL_TIMED ? a->abstime : NULL);
}

static rl_always_inline int rl_acquire(rangelock_t *lk, rangelock_range_t *r,
				       uint64_t start, uint64_t end,
				       bool exclusive, enum rl_how how,
				       const struct timespec *abstime)
{
	struct rl_lock *l = rl_lock_of(lk);
	struct rl_request *q = rl_request_of(r);

	if (start >= end || (how == RL_TIMED && !rl_timespec_valid(abstime)))
		return EINVAL;

	struct rl_ask a = { start, end, abstime, 0, exclusive, how };

	if (rl_unlikely(l->flags))
		return rl_acquire_flagged(l, q, &a);

	int rc = rl_grant_lock(l, q, &a);

	if (rl_likely(rc != RL_QUEUED))
		return rc;
	return rl_acquire_wait(l, q, how == RL_TIMED ? abstime : NULL);
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

	if (rl_is_shared(l))
		return rl_shared_detach(l);
	return rl_grant_destroy(l);
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

int rangelock_unlock(rangelock_t *lk, rangelock_range_t *r)
{
	struct rl_lock *l = rl_lock_of(lk);

	if (rl_is_shared(l))
		return rl_shared_release(l, rl_request_of(r), false);
	return rl_grant_unlock(l, rl_request_of(r));
}

int rangelock_downgrade(rangelock_t *lk, rangelock_range_t *r)
{
	struct rl_lock *l = rl_lock_of(lk);

	if (rl_is_shared(l))
		return rl_shared_release(l, rl_request_of(r), true);
	return rl_grant_downgrade(l, rl_request_of(r));
}

unsigned rangelock_version(void)
{
	return RANGELOCK_VERSION;
}
