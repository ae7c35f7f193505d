/* SPDX-License-Identifier: MIT */
/* bench_wait.h - spin-then-sleep helpers for the baselines written here. */
#ifndef RLBENCH_WAIT_H
#define RLBENCH_WAIT_H

#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline void bench_relax(void)
{
	__builtin_ia32_pause();
}

static inline void bench_futex_wait(_Atomic uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static inline void bench_futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* A test-and-test-and-set spinlock that yields the CPU after a while, so a
 * preempted holder on an oversubscribed machine gets to run. */
static inline void bench_spin_lock(atomic_int *l)
{
	for (int spins = 0;; spins++) {
		/* acquire: pairs with the release in bench_spin_unlock(). */
		if (!atomic_load_explicit(l, memory_order_relaxed) &&
		    !atomic_exchange_explicit(l, 1, memory_order_acquire))
			return;
		if (spins > 100)
			sched_yield();
		else
			bench_relax();
	}
}

static inline void bench_spin_unlock(atomic_int *l)
{
	/* release: pairs with the acquire in bench_spin_lock(). */
	atomic_store_explicit(l, 0, memory_order_release);
}

#endif
