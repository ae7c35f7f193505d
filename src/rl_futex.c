/* SPDX-License-Identifier: MIT */
/*
 * rl_futex.c - futex wait and wake, the library's only system calls.
 *
 * Words are process-private (FUTEX_PRIVATE_FLAG) but those of a lock that
 * processes share, which a waker in another process must reach.  Deadlines are
 * absolute CLOCK_MONOTONIC times, which FUTEX_WAIT_BITSET takes as they are
 * (FUTEX_WAIT would need a relative timeout recomputed after every EINTR).
 */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rl_internal.h"

/*
 * rl_futex_wait: sleep while *word == expected, until woken or *abstime.
 * Returns 0 when woken or when the word had already changed (the caller
 * re-reads it either way), ETIMEDOUT when the deadline passed.  EINTR and
 * spurious wake-ups come back as 0.
 */
int rl_futex_wait(_Atomic uint32_t *word, uint32_t expected,
		  const struct timespec *abstime, bool shared)
{
	long rc = syscall(SYS_futex, (uint32_t *)word,
			  FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG),
			  expected, abstime, NULL, FUTEX_BITSET_MATCH_ANY);

	if (rc == -1 && errno == ETIMEDOUT)
		return ETIMEDOUT;
	return 0;
}

/* rl_futex_wake: wake up to nr_waiters threads sleeping on word. */
void rl_futex_wake(_Atomic uint32_t *word, int nr_waiters, bool shared)
{
	syscall(SYS_futex, (uint32_t *)word,
		FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG), nr_waiters,
		NULL, NULL, 0);
}

/* rl_cpu_relax: tell the CPU that this is a spin loop. */
void rl_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst); /* compiler barrier only */
#endif
}
