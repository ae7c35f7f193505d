/* SPDX-License-Identifier: MIT */
/*
 * rl_radix.c - the index of regions: making leaves and nodes, marking
 * leaves that may list ranges, sweeping them for a wide range, freeing
 * them all at destroy.  (Finding a leaf is inline: rl_radix.h.)
 *
 * Marks: bit i of a node says child i may hold a listed range.  A leaf
 * section sets its leaf's bit and its path's before it reads the hull; a
 * wide range publishes the hull before it reads the marks (seq_cst both:
 * either the section sees the hull, or the sweep sees the mark and takes
 * that leaf's spinlock after the section).  A leaf's bit is cleared by a
 * sweep that finds the leaf empty, under its spinlock; a node's bits are
 * never cleared.
 */
#include <stdlib.h>
#include <string.h>

#include "rl_radix.h"

static struct rl_node *rl_node_new(unsigned level)
{
	struct rl_node *n = calloc(1, sizeof(*n));

	if (n)
		n->level = level;
	return n;
}

/* Grow the tree upwards until its root covers region (grow held).  False
 * if out of memory. */
static bool rl_radix_grow(struct rl_lock *l, uint64_t region)
{
	/* relaxed: grow held, the root's only writer */
	struct rl_node *n = atomic_load_explicit(&l->radix, memory_order_relaxed);

	if (!n) {
		n = rl_node_new(0);
		if (!n)
			return false;
		/* seq_cst: the node before readers find it (pairs with the
		 * acquire in rl_leaf_find()), and a sweep that published
		 * the hull after a section found a leaf under it loads it */
		atomic_store_explicit(&l->radix, n, memory_order_seq_cst);
	}
	while (!rl_node_covers(n, region)) {
		struct rl_node *up = rl_node_new(n->level + 1);

		if (!up)
			return false;
		atomic_init(&up->child[0], n);
		/* set from the start: node bits are sticky, and the old root's
		 * leaves may be marked */
		atomic_init(&up->marks, 1);
		/* relaxed: up's bit 0 is set, so a rl_leaf_mark() that misses
		 * the new parent loses nothing */
		atomic_store_explicit(&n->parent, up, memory_order_relaxed);
		/* seq_cst: as above */
		atomic_store_explicit(&l->radix, up, memory_order_seq_cst);
		n = up;
	}
	return true;
}

struct rl_leaf *rl_leaf_make(struct rl_lock *l, uint64_t region)
{
	struct rl_leaf *f = NULL;

	rl_mutex_lock(&l->grow);
	if (!rl_radix_grow(l, region))
		goto out;
	/* relaxed: grow held */
	struct rl_node *n = atomic_load_explicit(&l->radix, memory_order_relaxed);

	for (;;) {
		unsigned i = rl_node_slot(n, region);
		/* relaxed: grow held, the children's only writer */
		void *c = atomic_load_explicit(&n->child[i], memory_order_relaxed);

		if (!c) {
			if (n->level == 0) {
				struct rl_leaf *made = aligned_alloc(64, sizeof(*made));

				if (made) {
					memset(made, 0, sizeof(*made));
					made->region = region;
					made->parent = n;
				}
				c = made;
			} else {
				struct rl_node *d = rl_node_new(n->level - 1);

				if (d) {
					atomic_init(&d->parent, n);
					d->slot = i;
				}
				c = d;
			}
			if (!c)
				goto out;
			/* release: its contents; pairs with the acquire
			 * loads in rl_leaf_find() and rl_leaf_next(). */
			atomic_store_explicit(&n->child[i], c, memory_order_release);
		}
		if (n->level == 0) {
			f = c;
			break;
		}
		n = c;
	}
out:
	rl_mutex_unlock(&l->grow);
	return f;
}

void rl_leaf_mark(struct rl_leaf *f)
{
	struct rl_node *n = f->parent;

	f->marked = true;
	/* seq_cst: Dekker with the hull's stores and the sweep's loads of
	 * the marks (rl_grant.c, rl_radix_sweep()). */
	atomic_fetch_or_explicit(&n->marks, (uint64_t)1 << (f->region & (RL_FAN - 1)),
				 memory_order_seq_cst);
	/* relaxed: a parent that appears later has its bit 0 set already */
	for (struct rl_node *p;
	     (p = atomic_load_explicit(&n->parent, memory_order_relaxed)) != NULL;
	     n = p) {
		uint64_t up = (uint64_t)1 << n->slot;

		/* seq_cst, even for a peek: a bit another section set must
		 * order our load of the hull after a sweep that missed it */
		if (!(atomic_load_explicit(&p->marks, memory_order_seq_cst) & up))
			atomic_fetch_or_explicit(&p->marks, up, memory_order_seq_cst);
	}
}

struct rl_sweep {
	uint64_t first, last;     /* regions */
	rl_leaf_visit_fn *visit;
	void *arg;
};

static void rl_sweep_node(struct rl_node *nd, uint64_t base,
			  const struct rl_sweep *s)
{
	unsigned shift = nd->level * RL_FAN_SHIFT;   /* a child's span */
	/* seq_cst: the second half of the Dekker pair (rl_leaf_mark()) */
	uint64_t m = atomic_load_explicit(&nd->marks, memory_order_seq_cst);

	for (; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctzll(m);
		uint64_t lo = base + ((uint64_t)i << shift);   /* [lo, hi] */
		uint64_t hi = lo + (((uint64_t)1 << shift) - 1);

		if (hi < s->first || lo > s->last)
			continue;
		/* acquire: pairs with rl_leaf_make()'s release stores */
		void *c = atomic_load_explicit(&nd->child[i], memory_order_acquire);

		if (!c)
			continue;
		if (nd->level) {
			rl_sweep_node(c, lo, s);
			continue;
		}
		struct rl_leaf *f = c;

		rl_spin_lock(&f->lock);
		s->visit(f, s->arg);
		if (!f->root && !f->incoming && !f->closed) {
			f->marked = false;
			/* relaxed: a hint for later sweeps; a section that
			 * lists here marks it again */
			atomic_fetch_and_explicit(&nd->marks, ~((uint64_t)1 << i),
						  memory_order_relaxed);
		}
		rl_spin_unlock(&f->lock);
	}
}

void rl_radix_sweep(struct rl_lock *l, uint64_t first, uint64_t last,
		    rl_leaf_visit_fn *visit, void *arg)
{
	/* seq_cst: after the caller's store of the hull, as rl_radix_grow()
	 * stores it (a leaf under a new root is swept) */
	struct rl_node *root = atomic_load_explicit(&l->radix, memory_order_seq_cst);
	struct rl_sweep s = { first, last, visit, arg };

	if (root)
		rl_sweep_node(root, 0, &s);
}

static bool rl_node_busy(struct rl_node *n)
{
	for (unsigned i = 0; i < RL_FAN; i++) {
		/* relaxed: the lock is not in use (destroy) */
		void *c = atomic_load_explicit(&n->child[i], memory_order_relaxed);

		if (!c)
			continue;
		if (n->level == 0) {
			const struct rl_leaf *f = c;

			if (f->root || f->incoming || f->closed)
				return true;
		} else if (rl_node_busy(c)) {
			return true;
		}
	}
	return false;
}

bool rl_radix_busy(struct rl_lock *l)
{
	/* relaxed: the lock is not in use */
	struct rl_node *root = atomic_load_explicit(&l->radix, memory_order_relaxed);

	return root && rl_node_busy(root);
}

static void rl_node_free(struct rl_node *n)
{
	for (unsigned i = 0; i < RL_FAN; i++) {
		/* relaxed: the lock is not in use */
		void *c = atomic_load_explicit(&n->child[i], memory_order_relaxed);

		if (c && n->level == 0)
			free(c);
		else if (c)
			rl_node_free(c);
	}
	free(n);
}

void rl_radix_free(struct rl_lock *l)
{
	/* relaxed: the lock is not in use */
	struct rl_node *root = atomic_load_explicit(&l->radix, memory_order_relaxed);

	if (root)
		rl_node_free(root);
	atomic_store_explicit(&l->radix, NULL, memory_order_relaxed);
}
