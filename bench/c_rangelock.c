/* SPDX-License-Identifier: MIT */
/* c_rangelock.c - the library under test, as it is on main, in its default
 * mode and in debug mode (which always takes the precise path and checks
 * every request against the thread's own ranges). */
#include <stdlib.h>

#include "contender.h"
#include "rangelock.h"

_Static_assert(sizeof(rangelock_range_t) <= sizeof(((struct bench_range *)0)->handle),
	       "rangelock_range_t must fit in bench_range");

static void *rl_create_flags(unsigned flags)
{
	rangelock_t *lk = aligned_alloc(64, sizeof(*lk) < 64 ? 64 : sizeof(*lk));

	if (!lk || rangelock_init(lk, flags) != 0)
		bench_die("rangelock_init failed");
	return lk;
}

static void *rl_create(uint64_t object_size)
{
	(void)object_size;
	return rl_create_flags(0);
}

static void *rl_create_debug(uint64_t object_size)
{
	(void)object_size;
	return rl_create_flags(RANGELOCK_DEBUG);
}

static void rl_destroy(void *lock)
{
	if (rangelock_destroy(lock) != 0)
		bench_die("rangelock: destroy of a busy lock");
	free(lock);
}

static void rl_lock(void *lock, void *ctx, struct bench_range *r)
{
	rangelock_range_t *h = (rangelock_range_t *)(void *)r->handle;
	int rc = r->exclusive ? rangelock_wrlock(lock, h, r->start, r->end)
			      : rangelock_rdlock(lock, h, r->start, r->end);

	(void)ctx;
	if (rc != 0)
		bench_die("rangelock: lock failed: %d", rc);
}

static void rl_unlock(void *lock, void *ctx, struct bench_range *r)
{
	(void)ctx;
	if (rangelock_unlock(lock, (rangelock_range_t *)(void *)r->handle) != 0)
		bench_die("rangelock: unlock failed");
}

const struct contender contender_rangelock = {
	.name = "rangelock",
	.about = "this library (librangelock on main)",
	.create = rl_create,
	.destroy = rl_destroy,
	.lock = rl_lock,
	.unlock = rl_unlock,
};

const struct contender contender_rangelock_debug = {
	.name = "rl-debug",
	.about = "this library with RANGELOCK_DEBUG (precise path, recursion checks)",
	.create = rl_create_debug,
	.destroy = rl_destroy,
	.lock = rl_lock,
	.unlock = rl_unlock,
};
