/* SPDX-License-Identifier: MIT */
/*
 * c_shared.c - rangelock's shared region (rl-shared) for rlbench's
 * processes mode (--processes): in an anonymous MAP_SHARED mapping that
 * forked workers inherit, attached once per worker.  (The process-shared
 * rwlock is in c_rwlock.c; ofd, c_ofd.c, is shared by nature.)
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "contender.h"
#include "rangelock.h"

/* Requests the region has room for: every worker's one, and the held
 * workload's (up to 10 000) beside them. */
#define SHARED_REQUESTS 16384

struct shared_region {
	size_t size;
	void *at;
};

void *bench_map_shared(size_t size)
{
	void *at = mmap(NULL, size, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (at == MAP_FAILED)
		bench_die("mmap of a shared lock failed");
	return at;
}

static void *rls_create(uint64_t object_size)
{
	struct shared_region *g = malloc(sizeof(*g));

	(void)object_size;
	if (!g)
		bench_die("out of memory");
	g->size = rangelock_shared_size(SHARED_REQUESTS);
	g->at = bench_map_shared(g->size);
	if (rangelock_shared_init(g->at, g->size))
		bench_die("rangelock_shared_init failed");
	return g;
}

static void rls_destroy(void *lock)
{
	struct shared_region *g = lock;

	munmap(g->at, g->size);
	free(g);
}

/* Each worker (thread or process) attaches a rangelock_t of its own. */
static void *rls_thread_init(void *lock)
{
	struct shared_region *g = lock;
	rangelock_t *lk = aligned_alloc(64, sizeof(*lk));
	int rc;

	if (!lk || (rc = rangelock_shared_attach(lk, g->at, g->size)) != 0)
		bench_die("rangelock_shared_attach failed");
	return lk;
}

static void rls_thread_fini(void *lock, void *ctx)
{
	(void)lock;
	if (rangelock_destroy(ctx) != 0)
		bench_die("rl-shared: detach of a busy attachment");
	free(ctx);
}

static void rls_lock(void *lock, void *ctx, struct bench_range *r)
{
	rangelock_range_t *h = (rangelock_range_t *)(void *)r->handle;
	int rc = r->exclusive ? rangelock_wrlock(ctx, h, r->start, r->end)
			      : rangelock_rdlock(ctx, h, r->start, r->end);

	(void)lock;
	/* EOWNERDEAD: granted over a killed holder's range (robust) */
	if (rc != 0 && rc != EOWNERDEAD)
		bench_die("rl-shared: lock failed: %d", rc);
}

static void rls_unlock(void *lock, void *ctx, struct bench_range *r)
{
	(void)lock;
	if (rangelock_unlock(ctx, (rangelock_range_t *)(void *)r->handle) != 0)
		bench_die("rl-shared: unlock failed");
}

const struct contender contender_rangelock_shared = {
	.name = "rl-shared",
	.about = "rangelock in a region processes share, attached per worker",
	.create = rls_create,
	.destroy = rls_destroy,
	.thread_init = rls_thread_init,
	.thread_fini = rls_thread_fini,
	.lock = rls_lock,
	.unlock = rls_unlock,
	.processes = true,
	.robust = true,
};
