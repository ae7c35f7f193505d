/* SPDX-License-Identifier: MIT */
/*
 * c_tree.c - the classic kernel-style range lock (Kara 2013, Bueso 2017,
 * Lustre), written from scratch: every held and waiting range in an
 * interval tree under one spinlock.  A new range counts the conflicting
 * ranges already in the tree (all earlier) as its `blocking` count and
 * waits until that reaches 0; a released range decrements the count of
 * every conflicting range still in the tree (all later, since it was held).
 * That is FIFO among conflicts, as in rangelock.
 *
 * The tree is treap.h's.
 */
#include <stdlib.h>

#include "contender.h"
#include "treap.h"

struct tlock {
	_Alignas(64) atomic_int spin;
	struct tnode *root;
	uint64_t seq;
};

_Static_assert(sizeof(struct tnode) <= sizeof(((struct bench_range *)0)->handle),
	       "tnode must fit in bench_range");

static void *tree_create(uint64_t object_size)
{
	struct tlock *l = aligned_alloc(64, sizeof(*l));

	(void)object_size;
	if (l)
		*l = (struct tlock){ 0 };
	return l;
}

static void tree_destroy(void *lock)
{
	if (((struct tlock *)lock)->root)
		bench_die("tree: destroy of a busy lock");
	free(lock);
}

static void tree_lock(void *lock, void *ctx, struct bench_range *r)
{
	struct tlock *l = lock;
	struct tnode *n = (struct tnode *)(void *)r->handle;
	unsigned blocking;

	(void)ctx;
	bench_spin_lock(&l->spin);
	tn_init(n, r->start, r->end, r->exclusive, ++l->seq);
	blocking = tn_list(&l->root, n, 0);
	bench_spin_unlock(&l->spin);
	if (blocking)
		tn_wait_unblocked(n);
}

static void tree_unlock(void *lock, void *ctx, struct bench_range *r)
{
	struct tlock *l = lock;
	struct tnode *n = (struct tnode *)(void *)r->handle;

	(void)ctx;
	bench_spin_lock(&l->spin);
	tn_unlist(&l->root, n);
	bench_spin_unlock(&l->spin);
}

const struct contender contender_tree = {
	.name = "tree",
	.about = "interval tree of held+waiting ranges under a spinlock (Kara/Bueso)",
	.create = tree_create,
	.destroy = tree_destroy,
	.lock = tree_lock,
	.unlock = tree_unlock,
};
