/* SPDX-License-Identifier: MIT */
/*
 * rl_locks.c - the slow paths of the library's two internal locks (their
 * fast paths are inline in rl_internal.h).
 *
 * The spinlock guards a leaf or a private lock's top: sections of a few
 * hundred instructions.  A waiter looks at the word (without writing it)
 * RL_SPINS times, pausing between looks, and then yields the CPU before
 * each further look: a holder preempted in its section (more threads than
 * CPUs) runs again soon, and nothing sleeps, so an unlock is one store.
 *
 * The futex mutex (Drepper, "Futexes Are Tricky", mutex 2) guards the
 * growth of a private lock's radix tree, which allocates:
 *   0  free;
 *   1  locked, nobody asleep on it;
 *   2  locked, and a thread may be asleep on it: unlock must wake one.
 */
#include <sched.h>

#include "rl_internal.h"

void rl_spin_lock_slowpath(_Atomic uint32_t *word)
{
	for (int spins = 0;; spins++) {
		uint32_t free_value = 0;

		/* relaxed: a peek only; the CAS below is what acquires. */
		if (atomic_load_explicit(word, memory_order_relaxed) == 0 &&
		    /* acquire: pairs with the release in rl_spin_unlock(). */
		    atomic_compare_exchange_weak_explicit(
			    word, &free_value, 1, memory_order_acquire,
			    memory_order_relaxed))
			return;
		if (spins < RL_SPINS)
			rl_cpu_relax();
		else
			sched_yield();
	}
}

/* How long to spin on the mutex before sleeping, in CPU pauses. */
#define RL_MUTEX_SPINS 100

void rl_mutex_lock_slowpath(_Atomic uint32_t *word)
{
	for (int spun = 0; spun < RL_MUTEX_SPINS; spun++) {
		uint32_t free_value = 0;

		rl_cpu_relax();
		/* relaxed: a peek only; the CAS below is what acquires. */
		if (atomic_load_explicit(word, memory_order_relaxed) != 0)
			continue;
		/* acquire: pairs with the release in rl_mutex_unlock(). */
		if (atomic_compare_exchange_weak_explicit(
			    word, &free_value, 1, memory_order_acquire,
			    memory_order_relaxed))
			return;
	}
	/*
	 * Sleep.  Taking the word with 2 rather than 1 is conservative: we
	 * cannot know whether others sleep, so our unlock will wake one.
	 * acquire: pairs with the release in rl_mutex_unlock().
	 */
	while (atomic_exchange_explicit(word, 2, memory_order_acquire) != 0)
		rl_futex_wait(word, 2, NULL, false);
}
