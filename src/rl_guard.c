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

/*
 * How long to spin before sleeping, in CPU pauses, and the longest pause
 * between two looks at the word.  The guard shares its cache line with
 * the state it guards, so every look takes the line from the holder in
 * the middle of its section: looking less often, doubling the pause each
 * time, doubled the throughput of two threads that both need the guard
 * (doc/design.md, "Backing off the guard").
 */
#ifndef RL_GUARD_SPINS     /* build options only for measuring them */
#define RL_GUARD_SPINS 3200
#endif
#ifndef RL_GUARD_BACKOFF
#define RL_GUARD_BACKOFF 256
#endif

void rl_guard_lock_slowpath(_Atomic uint32_t *guard)
{
	for (int spun = 0, pause = 1; spun < RL_GUARD_SPINS;
	     spun += pause, pause = pause < RL_GUARD_BACKOFF ? 2 * pause : pause) {
		uint32_t free_value = 0;

		for (int k = 0; k < pause; k++)
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
		rl_futex_wait(guard, 2, NULL, false);
}
