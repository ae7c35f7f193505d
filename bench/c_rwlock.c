/* SPDX-License-Identifier: MIT */
/*
 * c_rwlock.c - one pthread_rwlock_t for the whole object: shared ranges take
 * it shared, exclusive ranges exclusive.  What most programs do, and what
 * Linux chose instead of range locks (a per-inode rw semaphore).  glibc's
 * default rwlock prefers readers, so writers can starve: the `fair`
 * workload shows it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "contender.h"

static void *rw_create(uint64_t object_size)
{
	pthread_rwlock_t *rw = aligned_alloc(64, 64);

	(void)object_size;
	if (rw && pthread_rwlock_init(rw, NULL) != 0)
		bench_die("pthread_rwlock_init failed");
	return rw;
}

static void rw_destroy(void *lock)
{
	pthread_rwlock_destroy(lock);
	free(lock);
}

static void rw_lock(void *lock, void *ctx, struct bench_range *r)
{
	(void)ctx;
	if ((r->exclusive ? pthread_rwlock_wrlock(lock)
			  : pthread_rwlock_rdlock(lock)) != 0)
		bench_die("pthread_rwlock: lock failed");
}

static void rw_unlock(void *lock, void *ctx, struct bench_range *r)
{
	(void)ctx;
	(void)r;
	pthread_rwlock_unlock(lock);
}

const struct contender contender_rwlock = {
	.name = "rwlock",
	.about = "one pthread_rwlock_t for the whole object",
	.create = rw_create,
	.destroy = rw_destroy,
	.lock = rw_lock,
	.unlock = rw_unlock,
	.whole_object = true,
};

/* The same in an anonymous MAP_SHARED mapping, PTHREAD_PROCESS_SHARED, for
 * rlbench --processes: what processes share instead of a range lock (and
 * not robust: a holder killed blocks it for ever). */
static void *rwp_create(uint64_t object_size)
{
	pthread_rwlock_t *rw = bench_map_shared(4096);
	pthread_rwlockattr_t a;

	(void)object_size;
	if (pthread_rwlockattr_init(&a) ||
	    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED) ||
	    pthread_rwlock_init(rw, &a))
		bench_die("process-shared pthread_rwlock_init failed");
	pthread_rwlockattr_destroy(&a);
	return rw;
}

static void rwp_destroy(void *lock)
{
	pthread_rwlock_destroy(lock);
	munmap(lock, 4096);
}

const struct contender contender_rwlock_shared = {
	.name = "rwlock-pshared",
	.about = "one PTHREAD_PROCESS_SHARED pthread_rwlock_t for the object "
		 "(not robust: a killed holder blocks it for ever)",
	.create = rwp_create,
	.destroy = rwp_destroy,
	.lock = rw_lock,
	.unlock = rw_unlock,
	.whole_object = true,
	.processes = true,
};
