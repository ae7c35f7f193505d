/* SPDX-License-Identifier: MIT */
/*
 * rl_guard.c - the slow path of the mutex that guards a lock's precise path.
 *
 * The guard word (Drepper, "Futexes Are Tricky", mutex 2):
 *   0  free;
 *   1  locked, nobody asleep on it;
 *   2  locked, and a thread may be asleep on it: unlock must wake one.
 * The fast paths are in rl_internal.h: lock is one CAS 0 -> 1, unlock one
 * exchange to 0 that calls futex_wake only when it took 2 away.
 */
#include "rl_internal.h"

/* Critical sections are a few index steps: spin about that long. */
#ifndef RL_GUARD_SPINS   /* a build option only for measuring it */
#define RL_GUARD_SPINS 100
#endif

void rl_guard_lock_slowpath(_Atomic uint32_t *guard)
{
	for (int i = 0; i < RL_GUARD_SPINS; i++) {
		uint32_t free_value = 0;

		rl_cpu_relax();
		/* relaxed: a peek only; the CAS below is what acquires. */
		if (atomic_load_explicit(guard, memory_order_relaxed) != 0)
			continue;
		/* acquire: pairs with the release in rl_guard_unlock(). */
		if (atomic_compare_exchange_weak_explicit(
			    guard, &free_value, 1, memory_order_acquire,
			    memory_order_relaxed))
			return;
	}
	/*
	 * Sleep.  Taking the word with 2 rather than 1 is conservative: we
	 * cannot know whether others sleep, so our unlock will wake one.
	 * acquire: pairs with the release in rl_guard_unlock().
	 */
	while (atomic_exchange_explicit(guard, 2, memory_order_acquire) != 0)
		rl_futex_wait(guard, 2, NULL);
}
