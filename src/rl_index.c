/* SPDX-License-Identifier: MIT */
/*
 * rl_index.c - the interval tree: of a private lock's leaf or top, or of
 * a shared region.
 *
 * Every listed request (held or waiting) is a node of one AVL tree,
 * ordered by (start, seq), where seq is its arrival number.  Each
 * node also keeps the largest end in its subtree (max_end), so the requests
 * that overlap a range are found in O(log n + k) for k of them, and a
 * subtree that ends before the range is never entered.  A node keeps its
 * balance (the height of its right subtree less its left's), not its
 * height, so that rebalancing after an insertion or a removal reads only
 * the nodes on the way down, not their siblings too.  The tree lives in the
 * callers' handles: nothing is allocated.
 *
 * Arrival order, which the grant policies need (rl_grant.c, rl_queue.c),
 * is seq: a request was earlier than another if its seq is smaller; seqs
 * are unique in a tree.  The index knows nothing of conflicts or states;
 * the caller serialises the calls on one tree (a leaf's or the top's
 * spinlock, a region's guard).
 *
 * A handle that is not in the tree (stale, forged, or a copy of one that
 * is) is never found: the search follows its key through the tree's own
 * nodes and compares addresses, so only the tree's links are followed.
 *
 * Links are rl_refs resolved through a struct rl_tree (rl_internal.h): a
 * handle's address in a process's own lock, a checked offset in a region
 * that processes share.  There every walk is bounded too (its depth, and
 * how many nodes a visit reads), so that a region scribbled on is found
 * broken instead of followed forever.
 */
#include "rl_internal.h"

/* Mark the shared region broken: a link that is not a node, a path deeper
 * than a tree can be, a balance out of range.  Never in a private lock. */
static void rl_tree_broken(const struct rl_tree *t)
{
	if (t->broken)
		/* relaxed: read by the guard's holder (rl_shared.c), after
		 * the guard section that found it */
		atomic_store_explicit(t->broken, 1, memory_order_relaxed);
}

/* The node a link names, or NULL for none (or for a link that names no
 * node of the region: then the region is marked broken). */
static rl_always_inline struct rl_request *rl_node(const struct rl_tree *t,
						   rl_ref ref)
{
	if (!t->broken || !ref)   /* a private lock's, or none */
		return (struct rl_request *)ref;
	if (ref < t->first || (ref - t->first) % sizeof(rangelock_range_t) ||
	    (ref - t->first) / sizeof(rangelock_range_t) >= t->nodes) {
		rl_tree_broken(t);
		return NULL;
	}
	return (struct rl_request *)(t->base + ref);
}

static rl_always_inline rl_ref rl_ref_of(const struct rl_tree *t,
					 const struct rl_request *n)
{
	return n ? (rl_ref)n - t->base : 0;
}

static rl_always_inline uint64_t rl_max_end(const struct rl_tree *t, rl_ref ref)
{
	const struct rl_request *n = rl_node(t, ref);

	return n ? n->max_end : 0;
}

static bool rl_key_less(const struct rl_request *a, const struct rl_request *b)
{
	return a->start < b->start || (a->start == b->start && a->seq < b->seq);
}

/* Keys are unique among the tree's nodes, so a handle with n's key that is
 * not n is a copy of it (or a stale handle that looks like one). */
static bool rl_key_same(const struct rl_request *a, const struct rl_request *b)
{
	return a->start == b->start && a->seq == b->seq;
}

/* rl_fix: recompute n's max_end from its own end and its children's. */
static rl_always_inline void rl_fix(const struct rl_tree *t, struct rl_request *n)
{
	uint64_t m = n->end;

	if (rl_max_end(t, n->left) > m)
		m = rl_max_end(t, n->left);
	if (rl_max_end(t, n->right) > m)
		m = rl_max_end(t, n->right);
	n->max_end = m;
}

/* Lift n's child c over n, in n's place *link.  The subtree holds the same
 * nodes, so c takes n's max_end, and n's is recomputed. */
static rl_always_inline void rl_rotate_up(const struct rl_tree *t, rl_ref *link,
			 struct rl_request *n, struct rl_request *c)
{
	if (rl_ref_of(t, c) == n->left) {
		n->left = c->right;
		c->right = rl_ref_of(t, n);
	} else {
		n->right = c->left;
		c->left = rl_ref_of(t, n);
	}
	*link = rl_ref_of(t, c);
	c->max_end = n->max_end;
	rl_fix(t, n);
}

/*
 * n, at *link, has a subtree two higher on side s (+1 right, -1 left) than
 * on the other: rotate it into balance.  True if the subtree is now lower
 * than it was (always, after an insertion; after a removal, unless n's
 * higher child was balanced).  (A child missing where the balances say it
 * is can only be a scribbled region's: broken, nothing rotated.)
 */
static rl_always_inline bool rl_rebalance(const struct rl_tree *t, rl_ref *link,
			 struct rl_request *n, int s)
{
	struct rl_request *c = rl_node(t, s > 0 ? n->right : n->left);

	if (t->broken && rl_unlikely(!c)) {
		rl_tree_broken(t);
		return false;
	}
	if (c->balance != -s) {   /* c leans out, or not at all: one rotation */
		bool lower = c->balance != 0;

		rl_rotate_up(t, link, n, c);
		n->balance = (int8_t)(lower ? 0 : s);
		c->balance = (int8_t)(lower ? 0 : -s);
		return lower;
	}

	struct rl_request *g = rl_node(t, s > 0 ? c->left : c->right);   /* c leans in */

	if (t->broken && rl_unlikely(!g)) {
		rl_tree_broken(t);
		return false;
	}
	rl_rotate_up(t, s > 0 ? &n->right : &n->left, c, g);
	rl_rotate_up(t, link, n, g);
	n->balance = (int8_t)(g->balance == s ? -s : 0);
	c->balance = (int8_t)(g->balance == -s ? s : 0);
	g->balance = 0;
	return true;
}

/* A balance that is not -1, 0 or 1 is a scribbled region's. */
static rl_always_inline bool rl_balance_bad(const struct rl_tree *t,
					    const struct rl_request *n)
{
	if (!t->broken || rl_likely(n->balance >= -1 && n->balance <= 1))
		return false;
	rl_tree_broken(t);
	return true;
}

/*
 * An insertion or a removal walks down from the root and keeps the links
 * it followed (path[i] points at the node at depth i), which the way back
 * up needs instead of parent pointers.  An AVL tree of n nodes is at most
 * 1.44 log2(n + 2) high: 84 for the 2^58 handles of 64 bytes that a 64-bit
 * address space could hold.  A path as deep as RL_INDEX_DEPTH is a
 * scribbled region's.
 */
#define RL_INDEX_DEPTH 96

/*
 * Each operation below is written once, always inline, and instantiated
 * twice by its entry point: for a private lock, whose tree (base 0, no
 * checks) the compiler then sees as constant and every check folds away,
 * and for a shared region.
 */
/* A private lock's tree at *root: base 0, nothing checked. */
static rl_always_inline struct rl_tree rl_private_tree(rl_ref *root)
{
	return (struct rl_tree){ .root = root };
}

/* rl_tree_insert: add q, whose key is set, to t.  Every node on q's way
 * down takes q's end into its max_end there; on the way back up, balances
 * change only until a subtree keeps its height, and at most one rotation
 * (two single ones) restores it. */
static rl_always_inline void rl_tree_insert(const struct rl_tree *t,
					    struct rl_request *q)
{
	rl_ref *path[RL_INDEX_DEPTH];
	rl_ref *link = t->root;
	unsigned d = 0;

	q->left = q->right = 0;
	q->max_end = q->end;
	q->balance = 0;
	for (struct rl_request *n; (n = rl_node(t, *link)) != NULL;) {
		if (t->broken && rl_unlikely(d == RL_INDEX_DEPTH)) {
			rl_tree_broken(t);
			return;
		}
		if (q->end > n->max_end)
			n->max_end = q->end;
		path[d++] = link;
		link = rl_key_less(q, n) ? &n->left : &n->right;
	}
	*link = rl_ref_of(t, q);
	for (rl_ref *below = link; d-- > 0; below = path[d]) {
		struct rl_request *n = rl_node(t, *path[d]);

		if ((t->broken && !n) || rl_balance_bad(t, n))
			return;   /* a scribbled region's */

		int s = below == &n->right ? 1 : -1;   /* the side that grew */

		n->balance = (int8_t)(n->balance + s);
		if (n->balance == 0)
			return;   /* as high as before */
		if (n->balance != s) {
			rl_rebalance(t, path[d], n, s);
			return;
		}
	}
}

/* rl_index_insert_at: add q (start, end and seq set) to the private
 * tree at *root. */
void rl_index_insert_at(rl_ref *root, struct rl_request *q)
{
	const struct rl_tree t = rl_private_tree(root);

	rl_tree_insert(&t, q);
}

/* rl_index_insert: add q (start, end set) to a shared region's tree as its
 * newest request. */
void rl_index_insert(struct rl_lock *l, struct rl_request *q)
{
	struct rl_tree t = rl_shared_tree(l);

	q->seq = ++rl_shared_listed(l)->arrivals;
	rl_tree_insert(&t, q);
}

/* rl_index_reinsert: add q with the arrival number it has (a shared
 * region's index rebuilt after a process died: rl_shared.c). */
void rl_index_reinsert(struct rl_lock *l, struct rl_request *q)
{
	struct rl_tree t = rl_shared_tree(l);
	struct rl_listed *listed = rl_shared_listed(l);

	if (q->seq > listed->arrivals)
		listed->arrivals = q->seq;
	rl_tree_insert(&t, q);
}

/*
 * rl_index_remove: take q out; false (and nothing changed) if q is not in
 * the tree.  A q with two children is replaced by the first node r of its
 * right subtree, which takes q's balance and max_end with its place: r's
 * old place is the one taken out.  On the way back up, max_end is
 * recomputed until a node's stays, and balances change until a subtree
 * keeps its height.
 */
static rl_always_inline bool rl_tree_remove(const struct rl_tree *t,
					   struct rl_request *q)
{
	rl_ref *path[RL_INDEX_DEPTH];
	rl_ref *link = t->root, *below;
	rl_ref qref = rl_ref_of(t, q);
	unsigned d = 0, keep;

	for (struct rl_request *n; *link != qref;) {
		n = rl_node(t, *link);
		if (!n || rl_key_same(n, q) ||
		    (t->broken && d == RL_INDEX_DEPTH))
			return false;   /* not in the tree; or a copy */
		path[d++] = link;
		link = rl_key_less(q, n) ? &n->left : &n->right;
	}
	keep = d;
	if (!q->left || !q->right) {
		*link = q->left ? q->left : q->right;
		below = link;
	} else {
		rl_ref *r_link = &q->right;
		struct rl_request *r;

		path[d++] = link;   /* q's place, r's once it moves there */
		while ((r = rl_node(t, *r_link)) != NULL && r->left) {
			if (t->broken && rl_unlikely(d == RL_INDEX_DEPTH)) {
				rl_tree_broken(t);
				return false;
			}
			path[d++] = r_link;
			r_link = &r->left;
		}
		if (t->broken && rl_unlikely(!r))
			return false;   /* broken */
		*r_link = r->right;
		r->left = q->left;
		r->right = q->right;
		r->balance = q->balance;
		r->max_end = q->max_end;
		*link = rl_ref_of(t, r);
		if (d > keep + 1) {
			path[keep + 1] = &r->right;   /* was &q->right */
			below = r_link;
		} else {
			below = &r->right;
		}
	}
	q->left = q->right = 0;

	/* the subtree at *below lost a level; its max_end may have changed */
	bool lower = true, max_changed = true;

	for (; d-- > 0; below = path[d]) {
		struct rl_request *n = rl_node(t, *path[d]);

		/* (a link changed under us: a scribbled region's) */
		if ((t->broken && !n) || rl_balance_bad(t, n))
			return true;
		if (max_changed || d >= keep) {
			uint64_t max_end = n->max_end;

			rl_fix(t, n);
			max_changed = n->max_end != max_end;
		}
		if (lower) {
			int s = below == &n->right ? -1 : 1;   /* now higher */

			n->balance = (int8_t)(n->balance + s);
			if (n->balance == s)
				lower = false;   /* it was balanced: as high */
			else if (n->balance != 0)
				lower = rl_rebalance(t, path[d], n, s);
		}
		if (!lower && !max_changed && d <= keep)
			return true;
	}
	return true;
}

bool rl_index_remove_at(rl_ref *root, struct rl_request *q)
{
	const struct rl_tree t = rl_private_tree(root);

	return rl_tree_remove(&t, q);
}

bool rl_index_remove(struct rl_lock *l, struct rl_request *q)
{
	struct rl_tree t = rl_shared_tree(l);

	return rl_tree_remove(&t, q);
}

static rl_always_inline bool rl_tree_contains(const struct rl_tree *t,
					     const struct rl_request *q)
{
	const struct rl_request *n = rl_node(t, *t->root);

	for (unsigned d = 0; n && n != q; d++) {
		if (rl_key_same(n, q) || (t->broken && d == RL_INDEX_DEPTH))
			return false;   /* a copy */
		n = rl_node(t, rl_key_less(q, n) ? n->left : n->right);
	}
	return n != NULL;
}

/* rl_index_contains: is q itself in the tree? */
bool rl_index_contains_at(rl_ref root, const struct rl_request *q)
{
	const struct rl_tree t = rl_private_tree(&root);

	return rl_tree_contains(&t, q);
}

bool rl_index_contains(const struct rl_lock *l, const struct rl_request *q)
{
	struct rl_tree t = rl_shared_tree(l);

	return rl_tree_contains(&t, q);
}

/*
 * rl_visit: call visit(e, arg) for each e in n's subtree that overlaps
 * [start, end), in key order, until one returns true (then return true).
 * A subtree whose max_end is at or below start holds no overlap; nor does a
 * node's right subtree when the node starts at or after end (every key to
 * its right starts later still).  In a shared region a visit reads at most
 * as many nodes as the region has, no deeper than a tree can be: more is a
 * cycle.
 */
static bool rl_visit_private(struct rl_request *n, uint64_t start,
			     uint64_t end, rl_index_visit_fn *visit, void *arg);
static bool rl_visit_shared(struct rl_tree *t, struct rl_request *n,
			    unsigned depth, uint64_t start, uint64_t end,
			    rl_index_visit_fn *visit, void *arg);

static rl_always_inline bool rl_visit(struct rl_tree *t, bool shared,
				      struct rl_request *n, unsigned depth,
				      uint64_t start, uint64_t end,
				      rl_index_visit_fn *visit, void *arg)
{
	for (; n && n->max_end > start; depth++) {
		if (shared && (t->budget-- == 0 || depth == RL_INDEX_DEPTH)) {
			rl_tree_broken(t);
			return false;
		}
		if (shared ? rl_visit_shared(t, rl_node(t, n->left), depth + 1,
					     start, end, visit, arg)
			   : rl_visit_private((struct rl_request *)n->left,
					      start, end, visit, arg))
			return true;
		if (n->start >= end)
			return false;
		if (n->end > start && visit(n, arg))
			return true;
		n = shared ? rl_node(t, n->right) : (struct rl_request *)n->right;
	}
	return false;
}

static bool rl_visit_private(struct rl_request *n, uint64_t start,
			     uint64_t end, rl_index_visit_fn *visit, void *arg)
{
	return rl_visit(NULL, false, n, 0, start, end, visit, arg);
}

static bool rl_visit_shared(struct rl_tree *t, struct rl_request *n,
			    unsigned depth, uint64_t start, uint64_t end,
			    rl_index_visit_fn *visit, void *arg)
{
	return rl_visit(t, true, n, depth, start, end, visit, arg);
}

bool rl_index_any_at(rl_ref root, uint64_t start, uint64_t end,
		     rl_index_visit_fn *visit, void *arg)
{
	return rl_visit_private((struct rl_request *)root, start, end, visit, arg);
}

bool rl_index_any(const struct rl_lock *l, uint64_t start, uint64_t end,
		  rl_index_visit_fn *visit, void *arg)
{
	struct rl_tree t = rl_shared_tree(l);

	return rl_visit_shared(&t, rl_node(&t, *t.root), 0, start, end, visit,
			       arg);
}
