/* SPDX-License-Identifier: MIT */
/*
 * rl_internal.h - the private layout of rangelock_t and rangelock_range_t,
 * and the interfaces between the library's files.
 *
 * Nothing here is exported: every name is rl_ and hidden.  The files, each
 * one concern, from the API down (no file calls one above it):
 *
 *   rangelock.c   the API: argument checks, which lock kind, debug identity
 *   rl_grant.c    a process's own lock: where a request is listed, its
 *                 count of earlier conflicts, grant, withdrawal, downgrade
 *   rl_shared.c   a lock that processes share: the region, its nodes and
 *                 processes, admission, recovery from a dead process
 *   rl_queue.c    the shared region's grant policy
 *   rl_radix.c    the index of regions: leaves, the radix tree, marks, sweeps
 *   rl_index.c    the interval tree of a leaf, the top, or a region
 *   rl_wait.c     a waiter's spin, yield and sleep; deadlines
 *   rl_locks.c    the slow paths of the spinlock and of the futex mutex
 *   rl_futex.c    the only system calls
 *
 * doc/design.md has the protocol and the argument for it.
 */
#ifndef RL_INTERNAL_H
#define RL_INTERNAL_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "rangelock.h"

#define rl_hidden __attribute__((visibility("hidden")))
#define rl_likely(x) __builtin_expect(!!(x), 1)
#define rl_unlikely(x) __builtin_expect(!!(x), 0)
/* for the few fast-path helpers that must not become calls */
#define rl_always_inline inline __attribute__((always_inline))

/*
 * A link of an interval tree: in a process's own lock, the address of a
 * listed handle; in a lock that processes share, the offset of a request
 * node from the start of the region, checked before use (struct rl_tree).
 * 0 is none.
 */
typedef uintptr_t rl_ref;

/*
 * A shared region's request state: the futex word of one of its nodes, and
 * of a caller's handle of a shared lock.
 *
 *   RL_IDLE      not on the list (allocated, not yet admitted);
 *   RL_WAITING   on the list, owner spinning on the word;
 *   RL_SLEEPING  on the list, owner asleep (or about to be) in futex_wait;
 *   RL_HELD      on the list and granted.
 *
 * The non-zero values are spelled so that a handle full of stale bytes is
 * unlikely to pass for one of them.  Transitions: IDLE -> HELD | WAITING,
 * WAITING | SLEEPING -> HELD | IDLE and HELD -> IDLE under the region's
 * guard; WAITING -> SLEEPING by the requester, CAS, without it.
 */
enum rl_state {
	RL_IDLE = 0,
	RL_WAITING = 0x57414954u,  /* "WAIT" */
	RL_SLEEPING = 0x534c5050u, /* "SLPP" */
	RL_HELD = 0x48454c44u,     /* "HELD" */
	RL_REMOTE = 0x524d4f54u,   /* "RMOT": a caller's handle, names a node */
	RL_FREE = 0x46524545u,     /* "FREE": a region's node not in use */
};

/*
 * Where a private lock's request is listed (rl_grant.c); its `where`.
 * 0 is nowhere: never locked, unlocked, withdrawn.
 */
enum rl_where {
	RL_NOWHERE = 0,
	RL_IN_LEAF = 0x4c,         /* 'L': narrow, in its home leaf */
	RL_IN_TOP_NARROW = 0x4e,   /* 'N': narrow, in the top, closing its leaves */
	RL_IN_TOP_WIDE = 0x57,     /* 'W': wide (or no leaf), in the top */
};

/* A private request's count: its top bit says that its owner sleeps (or is
 * about to) in futex_wait, so the last unblock must wake it. */
#define RL_COUNT_SLEEPING 0x80000000u

/* The private layout of rangelock_range_t, and of a shared region's
 * request nodes. */
struct rl_request {
	union {
		struct {          /* listed */
			rl_ref left;       /* the interval tree (rl_index.c) */
			rl_ref right;
			uint64_t max_end;  /* largest end in this subtree */
			/* arrival number: FIFO order among the requests a
			 * tree's section sees (rl_grant.c, rl_queue.c) */
			uint64_t seq;
			/* acquiring thread (debug mode); in a shared region,
			 * the owner's tag (rl_shared.c) */
			uint64_t owner;
		};
		struct {          /* RL_REMOTE: a handle of a shared lock */
			rl_ref node;              /* its node in the region */
			uint64_t tag;             /* the node's owner tag */
			/* the handle's own address: a copy of a held handle
			 * (memcpy) is refused by unlock and downgrade */
			const struct rl_request *self;
		} remote;
	};
	uint64_t start;           /* [start, end) */
	uint64_t end;
	union {
		/* a shared region's node, a handle of a shared lock: enum
		 * rl_state */
		_Atomic uint32_t state;
		/* a private lock's request: how many earlier conflicting
		 * requests it still waits for | RL_COUNT_SLEEPING.  Changed
		 * under the lock of the tree it is listed in (the sleeping bit:
		 * by its owner, CAS). */
		_Atomic uint32_t count;
	};
	/* 0 or 1.  (This and owner_died are bytes, not bools: in a shared
	 * region a scribbled node must be read without undefined
	 * behaviour.) */
	uint8_t exclusive;
	int8_t balance;           /* in a tree: right height - left */
	union {
		/* a shared region's node: granted over a range that a dead
		 * process held exclusive (EOWNERDEAD); guard */
		uint8_t owner_died;
		/* a private lock's request: enum rl_where; stored (release)
		 * after the rest of the request, so that an unlock that
		 * reads it (acquire) may read the range */
		_Atomic uint8_t where;
	};
	/* a shared region's node: its owner's lock call has seen it held (so
	 * it may have written under it); set once, read by recovery */
	_Atomic uint8_t seen;
};

/* The private layout of rangelock_t.  All zero is an unlocked lock. */
struct rl_lock {
	/* the top's spinlock (rl_spin_lock()) */
	_Atomic uint32_t top_lock;
	/* RANGELOCK_DEBUG | RL_SHARED: set by init and attach only */
	uint32_t flags;
	union {
		struct {          /* a process's own lock (rl_grant.c) */
			rl_ref top;             /* the top's tree; top_lock */
			uint64_t top_clock;     /* its newest seq; top_lock */
			uint32_t nwide;         /* wide requests listed; top_lock */
			/* the futex mutex that makes leaves and nodes */
			_Atomic uint32_t grow;
			/* the hull [lo, hi) of the wide requests listed since
			 * nwide was last 0; empty when hi == 0.  Written under
			 * top_lock, read by every narrow section (Dekker with
			 * the marks: rl_grant.c). */
			_Atomic uint64_t hull_lo;
			_Atomic uint64_t hull_hi;
			/* the radix tree's root (struct rl_node), or NULL
			 * until the first leaf (rl_radix.c) */
			_Atomic(struct rl_node *) radix;
		};
		struct {          /* attached to a shared region (rl_shared.c) */
			void *region;      /* where it is mapped here */
			uint32_t nodes;    /* the region's node count */
			uint32_t record;   /* this process's record in it */
			uint32_t forks;    /* rl_forks when attached */
			uint32_t generation;   /* the record's, when claimed */
		} shared;
	};
};

#define RL_SHARED 0x80000000u   /* flags: attached to a region */

static inline struct rl_lock *rl_lock_of(rangelock_t *lk)
{
	return (struct rl_lock *)(void *)lk;
}

static inline struct rl_request *rl_request_of(rangelock_range_t *r)
{
	return (struct rl_request *)(void *)r;
}

static inline bool rl_is_shared(const struct rl_lock *l)
{
	return rl_unlikely(l->flags & RL_SHARED);
}

static inline bool rl_overlaps(const struct rl_request *a, uint64_t start,
			       uint64_t end)
{
	return a->start < end && start < a->end;
}

/* rl_futex.c: the only place that makes futex system calls.  A shared
 * word is in memory that processes share (no FUTEX_PRIVATE_FLAG). */
rl_hidden int rl_futex_wait(_Atomic uint32_t *word, uint32_t expected,
			    const struct timespec *abstime, bool shared);
rl_hidden void rl_futex_wake(_Atomic uint32_t *word, int nr_waiters,
			     bool shared);
rl_hidden void rl_cpu_relax(void);

/*
 * A spinlock that yields: a leaf's or the top's.  Sections under one are
 * a few hundred instructions and make no system call but futex_wake; a
 * waiter that spins RL_SPINS times gives its CPU away after each look,
 * so that a holder that was preempted runs again (doc/design.md: a futex
 * mutex here cost a page pair 34 ns instead of 21).
 */
#define RL_SPINS 100

rl_hidden void rl_spin_lock_slowpath(_Atomic uint32_t *word);   /* rl_locks.c */

static rl_always_inline void rl_spin_lock(_Atomic uint32_t *word)
{
	uint32_t free_value = 0;

	/* acquire: the section's data as the last holder left it; pairs with
	 * the release in rl_spin_unlock(). */
	if (rl_likely(atomic_compare_exchange_weak_explicit(
		    word, &free_value, 1, memory_order_acquire,
		    memory_order_relaxed)))
		return;
	rl_spin_lock_slowpath(word);
}

static rl_always_inline void rl_spin_unlock(_Atomic uint32_t *word)
{
	/* release: the section's writes; pairs with the acquire in
	 * rl_spin_lock() and its slow path. */
	atomic_store_explicit(word, 0, memory_order_release);
}

/* rl_locks.c: a futex mutex (Drepper's mutex 2): 0 free, 1 locked, 2
 * locked with sleepers. */
rl_hidden void rl_mutex_lock_slowpath(_Atomic uint32_t *word);

static inline void rl_mutex_lock(_Atomic uint32_t *word)
{
	uint32_t free_value = 0;

	/* acquire: pairs with the release in rl_mutex_unlock(). */
	if (rl_likely(atomic_compare_exchange_strong_explicit(
		    word, &free_value, 1, memory_order_acquire,
		    memory_order_relaxed)))
		return;
	rl_mutex_lock_slowpath(word);
}

static inline void rl_mutex_unlock(_Atomic uint32_t *word)
{
	/* release: pairs with the acquire in rl_mutex_lock() and its slow
	 * path. */
	if (rl_unlikely(atomic_exchange_explicit(word, 0, memory_order_release) == 2))
		rl_futex_wake(word, 1, false);
}

/* rl_wait.c: deadlines (absolute CLOCK_MONOTONIC), and a private request's
 * wait for its count to reach 0. */
rl_hidden bool rl_deadline_within(const struct timespec *abstime, long ns);
rl_hidden struct timespec rl_deadline_in(long ns);
rl_hidden int rl_wait_count(struct rl_request *q, const struct timespec *abstime);

/* How a lock call may end. */
enum rl_how { RL_BLOCK, RL_TRY, RL_TIMED };

/* What a lock call asks for: a checked range, its mode, how it may end
 * (abstime for RL_TIMED), and the calling thread (debug mode; else 0). */
struct rl_ask {
	uint64_t start, end;
	const struct timespec *abstime;
	uint64_t owner;
	bool exclusive;
	enum rl_how how;
};

/* rl_grant.c: a process's own lock.  rl_grant_lock()'s result when q was
 * listed waiting: the caller waits (rl_wait_count()), and withdraws
 * (rl_grant_withdraw()) on ETIMEDOUT. */
#define RL_QUEUED (-1)

rl_hidden int rl_grant_lock(struct rl_lock *l, struct rl_request *q,
			    const struct rl_ask *a);
rl_hidden int rl_grant_unlock(struct rl_lock *l, struct rl_request *q);
rl_hidden int rl_grant_downgrade(struct rl_lock *l, struct rl_request *q);
rl_hidden int rl_grant_withdraw(struct rl_lock *l, struct rl_request *q);
rl_hidden int rl_grant_destroy(struct rl_lock *l);

/*
 * How the interval tree reaches its nodes.  In a process's own lock a link
 * is a handle's address (base 0) and nothing is checked.  In a shared
 * region a link is an offset from base, the region's address in this
 * process, and must name one of the `nodes` nodes that start at `first`;
 * anything else (a region scribbled on) marks the region broken and reads
 * as no node.
 */
struct rl_tree {
	rl_ref *root;
	uintptr_t base;
	uintptr_t first;          /* shared: offset of the first node */
	uintptr_t nodes;          /* shared: how many; 0 in a private lock */
	uintptr_t budget;         /* shared: nodes a visit may still read */
	_Atomic uint32_t *broken; /* shared: set when a link is not a node */
};

/* rl_index.c: an interval tree, keyed by (start, seq).  The caller
 * serialises every call on one tree.  A visit is called for each node that
 * overlaps the range, in key order, until one returns true. */
typedef bool rl_index_visit_fn(struct rl_request *e, void *arg);
/* a private lock's trees (a leaf's, the top's), at *root: */
rl_hidden void rl_index_insert_at(rl_ref *root, struct rl_request *q);
rl_hidden bool rl_index_remove_at(rl_ref *root, struct rl_request *q);
rl_hidden bool rl_index_contains_at(rl_ref root, const struct rl_request *q);
rl_hidden bool rl_index_any_at(rl_ref root, uint64_t start, uint64_t end,
			       rl_index_visit_fn *visit, void *arg);
/* a shared region's tree (seq: the region's next arrival number): */
rl_hidden void rl_index_insert(struct rl_lock *l, struct rl_request *q);
rl_hidden void rl_index_reinsert(struct rl_lock *l, struct rl_request *q);
rl_hidden bool rl_index_remove(struct rl_lock *l, struct rl_request *q);
rl_hidden bool rl_index_contains(const struct rl_lock *l,
				 const struct rl_request *q);
rl_hidden bool rl_index_any(const struct rl_lock *l, uint64_t start,
			    uint64_t end, rl_index_visit_fn *visit, void *arg);

/* ---- a lock that processes share (rl_shared.c, rl_queue.c) */

/* The region's counts and its index.  All under its guard. */
struct rl_listed {
	rl_ref root;              /* the index of listed requests */
	uint64_t arrivals;        /* seq of the newest request */
	uint32_t waiting;         /* listed requests not granted */
	uint32_t unused;
};

struct rl_range {
	uint64_t start, end;
};

/* How long a shared lock's waiter sleeps before it looks for dead
 * blockers, and a guard waiter for a dead holder (rl_shared.c). */
#define RL_POLL_NS 10000000L   /* 10 ms: doc/design.md, "Processes" */

/* rl_shared_lock.c: a lock call on a lock attached to a region; and
 * rl_shared.c: unlock or downgrade, detach (they take the guard); the
 * region's counts and tree, and the check of a grant over a dead range
 * (they need it). */
rl_hidden int rl_shared_acquire(struct rl_lock *l, struct rl_request *q,
				const struct rl_ask *a);
rl_hidden int rl_shared_release(struct rl_lock *l, struct rl_request *q,
				bool downgrade);
rl_hidden int rl_shared_detach(struct rl_lock *l);
rl_hidden struct rl_listed *rl_shared_listed(const struct rl_lock *l);
rl_hidden struct rl_tree rl_shared_tree(const struct rl_lock *l);
rl_hidden void rl_shared_granted(struct rl_lock *l, struct rl_request *q);

/* rl_queue.c: the shared region's grant policy; guard. */
rl_hidden bool rl_queue_conflicts(const struct rl_lock *l, uint64_t start,
				  uint64_t end, bool exclusive);
rl_hidden void rl_queue_append(struct rl_lock *l, struct rl_request *q);
rl_hidden bool rl_queue_leave(struct rl_lock *l, struct rl_request *q);
rl_hidden void rl_queue_grant_after(struct rl_lock *l, uint64_t after,
				    uint64_t start, uint64_t end);

#endif /* RL_INTERNAL_H */
