/* SPDX-License-Identifier: MIT */
/*
 * treap.h - the interval tree of the baselines written here (c_tree.c,
 * c_parts.c, c_radix.c): a treap keyed by (start, seq), each node augmented with the
 * largest end in its subtree, so that an overlap query prunes whole
 * subtrees.  The caller serialises every call.
 */
#ifndef RLBENCH_TREAP_H
#define RLBENCH_TREAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench_wait.h"

struct tnode {
	struct tnode *left, *right;
	uint64_t start, end, max_end;
	uint64_t seq;                 /* unique in its tree: the tie-break */
	void *home;                   /* c_radix.c: the leaf it is listed in */
	_Atomic uint32_t blocking;    /* futex word: earlier conflicts left */
	bool exclusive;
	uint8_t where;                /* c_parts.c, c_radix.c: which index */
};

/* The treap's priority: a hash of the key's tie-break. */
static inline uint32_t tn_prio(const struct tnode *n)
{
	return (uint32_t)(n->seq * 0x9E3779B97F4A7C15ULL >> 32);
}

static inline bool tn_conflicts(const struct tnode *a, const struct tnode *b)
{
	return (a->exclusive || b->exclusive) && a->start < b->end &&
	       b->start < a->end;
}

static inline uint64_t tn_max_end(const struct tnode *n)
{
	return n ? n->max_end : 0;
}

static inline void tn_update(struct tnode *n)
{
	uint64_t m = n->end, l = tn_max_end(n->left), r = tn_max_end(n->right);

	n->max_end = m > l ? (m > r ? m : r) : (l > r ? l : r);
}

static inline bool tn_key_less(const struct tnode *a, const struct tnode *b)
{
	return a->start < b->start || (a->start == b->start && a->seq < b->seq);
}

static inline struct tnode *tn_rotate_right(struct tnode *n)
{
	struct tnode *l = n->left;

	n->left = l->right;
	l->right = n;
	tn_update(n);
	tn_update(l);
	return l;
}

static inline struct tnode *tn_rotate_left(struct tnode *n)
{
	struct tnode *r = n->right;

	n->right = r->left;
	r->left = n;
	tn_update(n);
	tn_update(r);
	return r;
}

/* A new node: its range, mode and tie-break (an arrival number, or
 * anything else unique in its tree). */
static inline void tn_init(struct tnode *n, uint64_t start, uint64_t end,
			   bool exclusive, uint64_t seq)
{
	n->left = n->right = NULL;
	n->start = start;
	n->end = n->max_end = end;
	n->exclusive = exclusive;
	n->seq = seq;
}

static inline struct tnode *tn_insert(struct tnode *root, struct tnode *n)
{
	if (!root)
		return n;
	if (tn_key_less(n, root)) {
		root->left = tn_insert(root->left, n);
		if (tn_prio(root->left) > tn_prio(root))
			root = tn_rotate_right(root);
	} else {
		root->right = tn_insert(root->right, n);
		if (tn_prio(root->right) > tn_prio(root))
			root = tn_rotate_left(root);
	}
	tn_update(root);
	return root;
}

static inline struct tnode *tn_erase(struct tnode *root, struct tnode *n)
{
	if (root == n) {
		if (!n->left)
			return n->right;
		if (!n->right)
			return n->left;
		if (tn_prio(n->left) > tn_prio(n->right)) {
			root = tn_rotate_right(n);
			root->right = tn_erase(root->right, n);
		} else {
			root = tn_rotate_left(n);
			root->left = tn_erase(root->left, n);
		}
	} else if (tn_key_less(n, root)) {
		root->left = tn_erase(root->left, n);
	} else {
		root->right = tn_erase(root->right, n);
	}
	tn_update(root);
	return root;
}

/* Calls fn(node) (if fn) for every node of t but q that conflicts with q;
 * returns how many there are. */
static inline unsigned tn_foreach_conflict(struct tnode *t, const struct tnode *q,
					   void (*fn)(struct tnode *))
{
	unsigned n = 0;

	while (t && t->max_end > q->start) {
		n += tn_foreach_conflict(t->left, q, fn);
		if (t->start >= q->end)
			return n;     /* the right subtree starts later still */
		if (t != q && tn_conflicts(t, q)) {
			n++;
			if (fn)
				fn(t);
		}
		t = t->right;
	}
	return n;
}

/* The blocking count's top bit: its owner sleeps (or is about to) in
 * futex_wait, and the last unblock must wake it. */
#define TN_SLEEPING 0x80000000u
/* Yields between the spins and the sleep: a waiter oversubscribed (more
 * threads than CPUs) is back soon without a wake-up.  `file` with 8
 * threads on 2 cores: 1.40 Mops/s with none, 3.29 with 10, 2.81 with
 * 1000 (radix; the tree alike); 2 threads unchanged. */
#define TN_YIELDS 10

/* n no longer waits for one of its conflicts (the caller serialises it
 * with n's other changes): wake its owner if that was the last and it
 * sleeps.  Returns whether a wake is due, made at once unless `later`. */
static inline bool tn_unblock_wake(struct tnode *n, bool later)
{
	/* release: the releaser's writes; pairs with the acquire load in
	 * tn_wait_unblocked(). */
	uint32_t was = atomic_fetch_sub_explicit(&n->blocking, 1, memory_order_release);

	if (was != (TN_SLEEPING | 1))
		return false;
	if (!later)
		bench_futex_wake(&n->blocking);
	return true;
}

static inline void tn_unblock(struct tnode *n)
{
	tn_unblock_wake(n, false);
}

/* List n in the tree at *root (the caller's lock held): its count of
 * earlier conflicts is those listed there plus `more` found elsewhere.
 * Returns the count; n's owner must wait (tn_wait_unblocked()) unless
 * it is 0. */
static inline unsigned tn_list(struct tnode **root, struct tnode *n,
			       unsigned more)
{
	unsigned blocking = more + tn_foreach_conflict(*root, n, NULL);

	/* relaxed: published by the release of the caller's lock */
	atomic_store_explicit(&n->blocking, blocking, memory_order_relaxed);
	*root = tn_insert(*root, n);
	return blocking;
}

/* Take the held n out of the tree at *root and unblock the conflicting
 * ones left there, all later than n (the caller's lock held). */
static inline void tn_unlist(struct tnode **root, struct tnode *n)
{
	*root = tn_erase(*root, n);
	tn_foreach_conflict(*root, n, tn_unblock);
}

/* Wait (spin, then sleep) until every conflict n waited for has gone. */
static inline void tn_wait_unblocked(struct tnode *n)
{
	for (int spins = 0;; spins++) {
		/* acquire: pairs with the release decrement in tn_unblock(). */
		uint32_t b = atomic_load_explicit(&n->blocking, memory_order_acquire);

		if ((b & ~TN_SLEEPING) == 0)
			return;
		if (spins < 100) {
			bench_relax();
		} else if (spins < 100 + TN_YIELDS) {
			sched_yield();
		} else if (b & TN_SLEEPING) {
			bench_futex_wait(&n->blocking, b);
		} else {
			/* relaxed: only the count's value matters; the load
			 * above acquires */
			atomic_compare_exchange_strong_explicit(
				&n->blocking, &b, b | TN_SLEEPING,
				memory_order_relaxed, memory_order_relaxed);
		}
	}
}

#endif
