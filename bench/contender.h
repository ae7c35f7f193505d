/* SPDX-License-Identifier: MIT */
/*
 * contender.h - the one small interface every lock in the benchmark sits
 * behind, so that each workload drives all of them the same way.
 *
 * A contender makes one lock object per run (create/destroy), a context per
 * thread (thread_init/thread_fini: an OFD file descriptor, a node pool) and
 * locks [start, end) through a caller-owned struct bench_range, which has
 * room for any contender's per-acquisition handle.
 */
#ifndef RLBENCH_CONTENDER_H
#define RLBENCH_CONTENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bench_range {
	uint64_t start, end;
	bool exclusive;
	_Alignas(64) unsigned char handle[64]; /* the contender's own */
};

struct contender {
	const char *name;
	const char *about;
	/* create: a lock over an object of object_size bytes, or NULL. */
	void *(*create)(uint64_t object_size);
	void (*destroy)(void *lock);
	/* thread_init: per-thread context; both may be NULL (no context). */
	void *(*thread_init)(void *lock);
	void (*thread_fini)(void *lock, void *ctx);
	/* lock waits until [r->start, r->end) is held in r->exclusive mode. */
	void (*lock)(void *lock, void *ctx, struct bench_range *r);
	void (*unlock)(void *lock, void *ctx, struct bench_range *r);
	/* Holding many ranges from one thread is possible (not for a
	 * whole-object rwlock taken exclusive, which would self-deadlock). */
	bool whole_object;
	/* Works between processes (rlbench --processes forks its workers),
	 * and frees what a killed process held (the robust workload). */
	bool processes;
	bool robust;
};

extern const struct contender contender_rangelock;
extern const struct contender contender_rangelock_debug;
extern const struct contender contender_rwlock;
extern const struct contender contender_ofd;
extern const struct contender contender_tree;
extern const struct contender contender_list;
extern const struct contender contender_rangelock_shared;
extern const struct contender contender_rwlock_shared;
extern const struct contender contender_parts;
extern const struct contender contender_radix;

/* size bytes of anonymous MAP_SHARED memory, for locks that forked
 * workers share (c_shared.c) */
void *bench_map_shared(size_t size);

_Noreturn void bench_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static inline void *contender_thread_init(const struct contender *c, void *lock)
{
	return c->thread_init ? c->thread_init(lock) : NULL;
}

static inline void contender_thread_fini(const struct contender *c, void *lock,
					 void *ctx)
{
	if (c->thread_fini)
		c->thread_fini(lock, ctx);
}

#endif
