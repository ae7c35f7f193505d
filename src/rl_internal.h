/* SPDX-License-Identifier: MIT */
/*
 * rl_internal.h - the private layout of rangelock_t and rangelock_range_t,
 * and the internal interfaces between the library's files.
 *
 * Nothing here is exported: every name is rl_ and hidden.
 *
 * The protocol in one paragraph (doc/design.md has the argument):
 * every request, held or waiting, is on one list in arrival order, guarded
 * by a small futex mutex (the guard).  The invariant is
 *
 *     a request is held  <=>  it conflicts with no earlier request on the list.
 *
 * A new request is appended; it is held at once if it conflicts with nothing
 * on the list, else it waits.  Requests only ever leave the list (unlock,
 * timeout) or become weaker (downgrade), so the only waiters whose "earlier"
 * set can lose a conflict are the ones after the request that left or
 * weakened and overlapping it; rl_queue_grant_after() re-checks exactly
 * those and grants the ones that became unblocked.
 */
#ifndef RL_INTERNAL_H
#define RL_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "rangelock.h"

#define rl_hidden __attribute__((visibility("hidden")))
#define rl_likely(x) __builtin_expect(!!(x), 1)
#define rl_unlikely(x) __builtin_expect(!!(x), 0)

/*
 * Request state: the futex word of one rangelock_range_t.
 *
 *   RL_IDLE      not on any list (never used, unlocked, or withdrawn);
 *   RL_WAITING   on the list, owner spinning on the word;
 *   RL_SLEEPING  on the list, owner asleep (or about to be) in futex_wait;
 *   RL_HELD      on the list and granted.
 *
 * The non-zero values are spelled so that a handle full of stale stack bytes
 * is unlikely to pass for a held one.  Transitions:
 *   IDLE -> HELD | WAITING        under the guard, by the requester;
 *   WAITING -> SLEEPING           by the requester, CAS, without the guard;
 *   WAITING | SLEEPING -> HELD    under the guard, by the granter (exchange);
 *   WAITING | SLEEPING -> IDLE    under the guard, by a requester timing out;
 *   HELD -> IDLE                  under the guard, by unlock.
 */
enum rl_state {
	RL_IDLE = 0,
	RL_WAITING = 0x57414954u,  /* "WAIT" */
	RL_SLEEPING = 0x534c5050u, /* "SLPP" */
	RL_HELD = 0x48454c44u,     /* "HELD" */
};

/* The private layout of rangelock_range_t. */
struct rl_request {
	struct rl_request *prev;  /* list links, arrival order; guard */
	struct rl_request *next;  /* guard */
	uint64_t start;           /* [start, end); guard */
	uint64_t end;             /* guard */
	struct rl_lock *lock;     /* lock it is queued on or held in; guard */
	const void *owner;        /* acquiring thread (debug mode); guard */
	_Atomic uint32_t state;   /* enum rl_state; futex word */
	bool exclusive;           /* guard */
};

/* The private layout of rangelock_t.  All zero is an unlocked lock. */
struct rl_lock {
	_Atomic uint32_t guard;   /* 0 free, 1 locked, 2 locked with sleepers */
	uint32_t flags;           /* RANGELOCK_DEBUG; set at init only */
	struct rl_request *head;  /* oldest request; guard */
	struct rl_request *tail;  /* newest request; guard */
};

static inline struct rl_lock *rl_lock_of(rangelock_t *lk)
{
	return (struct rl_lock *)(void *)lk;
}

static inline struct rl_request *rl_request_of(rangelock_range_t *r)
{
	return (struct rl_request *)(void *)r;
}

/* rl_futex.c: the only place that makes futex system calls. */
rl_hidden int rl_futex_wait(_Atomic uint32_t *word, uint32_t expected,
			    const struct timespec *abstime);
rl_hidden void rl_futex_wake(_Atomic uint32_t *word, int nr_waiters);
rl_hidden void rl_cpu_relax(void);

/* rl_guard.c: the mutex that guards a lock's list. */
rl_hidden void rl_guard_lock_slowpath(_Atomic uint32_t *guard);

static inline void rl_guard_lock(struct rl_lock *l)
{
	uint32_t free_value = 0;

	/* acquire: the list as the last holder left it; pairs with the release
	 * in rl_guard_unlock(). */
	if (rl_likely(atomic_compare_exchange_strong_explicit(
		    &l->guard, &free_value, 1, memory_order_acquire,
		    memory_order_relaxed)))
		return;
	rl_guard_lock_slowpath(&l->guard);
}

static inline void rl_guard_unlock(struct rl_lock *l)
{
	/* release: publish list changes; pairs with the acquire in
	 * rl_guard_lock() and rl_guard_lock_slowpath(). */
	if (rl_unlikely(atomic_exchange_explicit(&l->guard, 0,
						 memory_order_release) == 2))
		rl_futex_wake(&l->guard, 1);
}

/* rl_queue.c: the arrival-ordered list; every function needs the guard. */
static inline bool rl_overlaps(const struct rl_request *a, uint64_t start,
			       uint64_t end)
{
	return a->start < end && start < a->end;
}

rl_hidden bool rl_queue_conflicts(const struct rl_lock *l, uint64_t start,
				  uint64_t end, bool exclusive);
rl_hidden bool rl_queue_thread_overlaps(const struct rl_lock *l,
					 const void *owner, uint64_t start,
					 uint64_t end);
rl_hidden bool rl_queue_contains(const struct rl_lock *l,
				 const struct rl_request *q);
rl_hidden void rl_queue_append(struct rl_lock *l, struct rl_request *q);
rl_hidden void rl_queue_remove(struct rl_lock *l, struct rl_request *q);
rl_hidden void rl_queue_grant_after(struct rl_request *from, uint64_t start,
				    uint64_t end);

/* rl_wait.c: the requester's side of a wait. */
rl_hidden int rl_wait_granted(struct rl_lock *l, struct rl_request *q,
			      const struct timespec *abstime);

#endif /* RL_INTERNAL_H */
