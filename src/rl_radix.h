/* SPDX-License-Identifier: MIT */
/*
 * rl_radix.h - the index of regions of a process's own lock: a leaf per
 * region of the object that a range has needed, found through a radix tree
 * keyed by the region's number.
 *
 * A region is RL_REGION_SHIFT bits of offset (1 MiB).  A leaf is one cache
 * line: its spinlock, the interval tree of the ranges listed in it, and
 * the counts of rl_grant.c's protocol.  A node has RL_FAN children (leaves
 * at level 0) and a bit each in `marks`: child i may hold listed ranges.
 * The tree grows upwards (a new root over the old one) as higher regions
 * are needed, under the lock's `grow` mutex; it is read without writes on
 * the way down.  Leaves and nodes are kept until rangelock_destroy: 64
 * bytes for each region ever locked, and a 544-byte node per 64 leaves.
 */
#ifndef RL_RADIX_H
#define RL_RADIX_H

#include "rl_internal.h"

#ifndef RL_REGION_SHIFT   /* -DRL_REGION_SHIFT=n: for tests and measuring */
#define RL_REGION_SHIFT 20   /* 1 MiB: doc/design.md, "Version 4" */
#endif
#define RL_FAN_SHIFT 6
#define RL_FAN (1u << RL_FAN_SHIFT)

struct rl_node;

struct rl_leaf {
	/* its spinlock: everything below but region and parent */
	_Alignas(64) _Atomic uint32_t lock;
	/* ranges listed in the leaf before this one that reach into it */
	uint32_t incoming;
	/* narrow ranges listed in the top whose leaves include this one */
	uint32_t closed;
	/* its bit in the parent's marks is set */
	bool marked;
	rl_ref root;              /* the ranges listed here (rl_index.c) */
	uint64_t clock;           /* the newest seq listed over this leaf */
	uint64_t region;          /* its number: offset >> RL_REGION_SHIFT */
	struct rl_node *parent;
};

struct rl_node {
	/* struct rl_node *, or at level 0 struct rl_leaf * */
	_Atomic(void *) child[RL_FAN];
	_Atomic uint64_t marks;
	unsigned level;           /* 0: the children are leaves */
	unsigned slot;            /* its index in its parent */
	/* set when the tree grows above it */
	_Atomic(struct rl_node *) parent;
};

static rl_always_inline uint64_t rl_region_of(uint64_t offset)
{
	return offset >> RL_REGION_SHIFT;
}

/* How many regions a node covers, as a power of two. */
static rl_always_inline unsigned rl_node_span(const struct rl_node *n)
{
	return (n->level + 1) * RL_FAN_SHIFT;
}

static rl_always_inline unsigned rl_node_slot(const struct rl_node *n,
					      uint64_t region)
{
	return (unsigned)(region >> (n->level * RL_FAN_SHIFT)) & (RL_FAN - 1);
}

static rl_always_inline bool rl_node_covers(const struct rl_node *n,
					    uint64_t region)
{
	return rl_node_span(n) >= 64 || !(region >> rl_node_span(n));
}

/* rl_radix.c: the leaf of a region, made with its path (NULL if out of
 * memory: the caller then lists in the top). */
rl_hidden struct rl_leaf *rl_leaf_make(struct rl_lock *l, uint64_t region);

/* The leaf of a region: found, or made if `make`; NULL if absent (or out of
 * memory). */
static rl_always_inline struct rl_leaf *rl_leaf_find(struct rl_lock *l,
						     uint64_t region, bool make)
{
	/* acquire: a node's contents; pairs with the release stores in
	 * rl_leaf_make(). */
	struct rl_node *n = atomic_load_explicit(&l->radix, memory_order_acquire);

	if (rl_unlikely(!n || !rl_node_covers(n, region)))
		return make ? rl_leaf_make(l, region) : NULL;
	for (;;) {
		/* acquire: as above */
		void *c = atomic_load_explicit(&n->child[rl_node_slot(n, region)],
					       memory_order_acquire);

		if (!c)
			return make ? rl_leaf_make(l, region) : NULL;
		if (n->level == 0)
			return c;
		n = c;
	}
}

/* The leaf of the region after f's: its sibling, most often. */
static rl_always_inline struct rl_leaf *rl_leaf_next(struct rl_lock *l,
						     struct rl_leaf *f, bool make)
{
	unsigned i = (unsigned)(f->region & (RL_FAN - 1));

	if (i < RL_FAN - 1) {
		/* acquire: pairs with rl_leaf_make()'s release stores */
		struct rl_leaf *g = atomic_load_explicit(&f->parent->child[i + 1],
							 memory_order_acquire);

		if (g)
			return g;
	}
	return rl_leaf_find(l, f->region + 1, make);
}

/* rl_radix.c: mark f and its path (its spinlock held), so that a wide
 * range's sweep looks at it; seq_cst, the first half of the Dekker pair
 * with the hull (rl_grant.c). */
rl_hidden void rl_leaf_mark(struct rl_leaf *f);

/* rl_radix.c: call visit(f, arg) for every leaf of regions [first, last]
 * that may list ranges, under its spinlock, after the caller published the
 * hull (the second half of the Dekker pair); clear the marks of those left
 * empty. */
typedef void rl_leaf_visit_fn(struct rl_leaf *f, void *arg);
rl_hidden void rl_radix_sweep(struct rl_lock *l, uint64_t first,
			      uint64_t last, rl_leaf_visit_fn *visit, void *arg);

/* rl_radix.c: does any leaf list a range?  Free every leaf and node (the
 * lock unused: rangelock_destroy). */
rl_hidden bool rl_radix_busy(struct rl_lock *l);
rl_hidden void rl_radix_free(struct rl_lock *l);

#endif /* RL_RADIX_H */
