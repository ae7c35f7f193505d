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
 * The tree is a treap keyed by (start, seq), each node augmented with the
 * largest end in its subtree, so overlap queries prune whole subtrees.
 */
#include <stdlib.h>

#include "bench_wait.h"
#include "contender.h"

struct tnode {
	struct tnode *left, *right;
	uint64_t start, end, max_end;
	uint64_t seq, prio;
	bool exclusive;
	_Atomic uint32_t blocking;    /* futex word; changed under the spinlock */
};

struct tlock {
	_Alignas(64) atomic_int spin;
	struct tnode *root;
	uint64_t seq;
};

_Static_assert(sizeof(struct tnode) <= sizeof(((struct bench_range *)0)->handle),
	       "tnode must fit in bench_range");

static bool conflicts(const struct tnode *a, const struct tnode *b)
{
	return (a->exclusive || b->exclusive) && a->start < b->end &&
	       b->start < a->end;
}

static uint64_t max_end(const struct tnode *n)
{
	return n ? n->max_end : 0;
}

static void update(struct tnode *n)
{
	uint64_t m = n->end, l = max_end(n->left), r = max_end(n->right);

	n->max_end = m > l ? (m > r ? m : r) : (l > r ? l : r);
}

static bool key_less(const struct tnode *a, const struct tnode *b)
{
	return a->start < b->start || (a->start == b->start && a->seq < b->seq);
}

static struct tnode *rotate_right(struct tnode *n)
{
	struct tnode *l = n->left;

	n->left = l->right;
	l->right = n;
	update(n);
	update(l);
	return l;
}

static struct tnode *rotate_left(struct tnode *n)
{
	struct tnode *r = n->right;

	n->right = r->left;
	r->left = n;
	update(n);
	update(r);
	return r;
}

static struct tnode *insert(struct tnode *root, struct tnode *n)
{
	if (!root)
		return n;
	if (key_less(n, root)) {
		root->left = insert(root->left, n);
		if (root->left->prio > root->prio)
			root = rotate_right(root);
	} else {
		root->right = insert(root->right, n);
		if (root->right->prio > root->prio)
			root = rotate_left(root);
	}
	update(root);
	return root;
}

static struct tnode *erase(struct tnode *root, struct tnode *n)
{
	if (root == n) {
		if (!n->left)
			return n->right;
		if (!n->right)
			return n->left;
		if (n->left->prio > n->right->prio) {
			root = rotate_right(n);
			root->right = erase(root->right, n);
		} else {
			root = rotate_left(n);
			root->left = erase(root->left, n);
		}
	} else if (key_less(n, root)) {
		root->left = erase(root->left, n);
	} else {
		root->right = erase(root->right, n);
	}
	update(root);
	return root;
}

/* Calls fn(node, q) for every node conflicting with q; returns how many. */
static unsigned foreach_conflict(struct tnode *t, struct tnode *q,
				 void (*fn)(struct tnode *))
{
	unsigned n = 0;

	while (t && t->max_end > q->start) {
		n += foreach_conflict(t->left, q, fn);
		if (t->start >= q->end)
			return n;     /* the right subtree starts later still */
		if (t != q && conflicts(t, q)) {
			n++;
			if (fn)
				fn(t);
		}
		t = t->right;
	}
	return n;
}

static void release_one(struct tnode *n)
{
	/* release: the releaser's writes; pairs with the acquire load in
	 * tree_lock()'s wait loop. */
	if (atomic_fetch_sub_explicit(&n->blocking, 1, memory_order_release) == 1)
		bench_futex_wake(&n->blocking);
}

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
	n->left = n->right = NULL;
	n->start = r->start;
	n->end = n->max_end = r->end;
	n->exclusive = r->exclusive;
	bench_spin_lock(&l->spin);
	n->seq = ++l->seq;
	n->prio = n->seq * 0x9E3779B97F4A7C15ULL;
	blocking = foreach_conflict(l->root, n, NULL);
	/* relaxed: published by the spinlock's release. */
	atomic_store_explicit(&n->blocking, blocking, memory_order_relaxed);
	l->root = insert(l->root, n);
	bench_spin_unlock(&l->spin);

	for (int spins = 0;; spins++) {
		/* acquire: pairs with the release decrement in release_one(). */
		uint32_t b = atomic_load_explicit(&n->blocking, memory_order_acquire);
		if (b == 0)
			return;
		if (spins < 100)
			bench_relax();
		else
			bench_futex_wait(&n->blocking, b);
	}
}

static void tree_unlock(void *lock, void *ctx, struct bench_range *r)
{
	struct tlock *l = lock;
	struct tnode *n = (struct tnode *)(void *)r->handle;

	(void)ctx;
	bench_spin_lock(&l->spin);
	l->root = erase(l->root, n);
	foreach_conflict(l->root, n, release_one);
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
