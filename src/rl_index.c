/* SPDX-License-Identifier: MIT */
/*
 * rl_index.c - the index of the precise path's requests: an interval tree.
 *
 * Every listed request (held or waiting) is a node of one AVL tree per
 * lock, ordered by (start, seq), where seq is its arrival number.  Each
 * node also keeps the largest end in its subtree (max_end), so the requests
 * that overlap a range are found in O(log n + k) for k of them, and a
 * subtree that ends before the range is never entered.  A node keeps its
 * balance (the height of its right subtree less its left's), not its
 * height, so that rebalancing after an insertion or a removal reads only
 * the nodes on the way down, not their siblings too.  The tree lives in the
 * callers' handles: nothing is allocated.
 *
 * Arrival order, which the grant policy needs (rl_queue.c), is seq: a
 * request was earlier than another if its seq is smaller.  The index knows
 * nothing of conflicts or states; every function here runs under the
 * guard.
 *
 * A handle that is not in the tree (stale, forged, or a copy of one that
 * is) is never found: the search follows its key through the tree's own
 * nodes and compares addresses, so only the tree's pointers are followed.
 */
#include "rl_internal.h"

static uint64_t rl_max_end(const struct rl_request *n)
{
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
static void rl_fix(struct rl_request *n)
{
	uint64_t m = n->end;

	if (rl_max_end(n->left) > m)
		m = rl_max_end(n->left);
	if (rl_max_end(n->right) > m)
		m = rl_max_end(n->right);
	n->max_end = m;
}

/* Lift n's child c over n, in n's place *link.  The subtree holds the same
 * nodes, so c takes n's max_end, and n's is recomputed. */
static void rl_rotate_up(struct rl_request **link, struct rl_request *n,
			 struct rl_request *c)
{
	if (c == n->left) {
		n->left = c->right;
		c->right = n;
	} else {
		n->right = c->left;
		c->left = n;
	}
	*link = c;
	c->max_end = n->max_end;
	rl_fix(n);
}

/*
 * n, at *link, has a subtree two higher on side s (+1 right, -1 left) than
 * on the other: rotate it into balance.  True if the subtree is now lower
 * than it was (always, after an insertion; after a removal, unless n's
 * higher child was balanced).
 */
static bool rl_rebalance(struct rl_request **link, struct rl_request *n, int s)
{
	struct rl_request *c = s > 0 ? n->right : n->left;

	if (c->balance != -s) {   /* c leans out, or not at all: one rotation */
		bool lower = c->balance != 0;

		rl_rotate_up(link, n, c);
		n->balance = (int8_t)(lower ? 0 : s);
		c->balance = (int8_t)(lower ? 0 : -s);
		return lower;
	}

	struct rl_request *g = s > 0 ? c->left : c->right;   /* c leans in */

	rl_rotate_up(s > 0 ? &n->right : &n->left, c, g);
	rl_rotate_up(link, n, g);
	n->balance = (int8_t)(g->balance == s ? -s : 0);
	c->balance = (int8_t)(g->balance == -s ? s : 0);
	g->balance = 0;
	return true;
}

/*
 * An insertion or a removal walks down from the root and keeps the links
 * it followed (path[i] points at the node at depth i), which the way back
 * up needs instead of parent pointers.  An AVL tree of n nodes is at most
 * 1.44 log2(n + 2) high: 84 for the 2^58 handles of 64 bytes that a 64-bit
 * address space could hold.
 */
#define RL_INDEX_DEPTH 96

/* rl_index_insert: add q (start, end set) as the newest request.  Every
 * node on q's way down takes q's end into its max_end there; on the way
 * back up, balances change only until a subtree keeps its height, and at
 * most one rotation (two single ones) restores it. */
void rl_index_insert(struct rl_lock *l, struct rl_request *q)
{
	struct rl_request **path[RL_INDEX_DEPTH];
	struct rl_request **link = &l->root;
	unsigned d = 0;

	q->seq = ++l->arrivals;
	q->left = q->right = NULL;
	q->max_end = q->end;
	q->balance = 0;
	for (struct rl_request *n; (n = *link) != NULL;) {
		if (q->end > n->max_end)
			n->max_end = q->end;
		path[d++] = link;
		link = rl_key_less(q, n) ? &n->left : &n->right;
	}
	*link = q;
	for (struct rl_request **below = link; d-- > 0; below = path[d]) {
		struct rl_request *n = *path[d];
		int s = below == &n->right ? 1 : -1;   /* the side that grew */

		n->balance = (int8_t)(n->balance + s);
		if (n->balance == 0)
			return;   /* as high as before */
		if (n->balance != s) {
			rl_rebalance(path[d], n, s);
			return;
		}
	}
}

/*
 * rl_index_remove: take q out; false (and nothing changed) if q is not in
 * the tree.  A q with two children is replaced by the first node r of its
 * right subtree, which takes q's balance and max_end with its place: r's
 * old place is the one taken out.  On the way back up, max_end is
 * recomputed until a node's stays, and balances change until a subtree
 * keeps its height.
 */
bool rl_index_remove(struct rl_lock *l, struct rl_request *q)
{
	struct rl_request **path[RL_INDEX_DEPTH];
	struct rl_request **link = &l->root, **below;
	unsigned d = 0, keep;

	for (struct rl_request *n; (n = *link) != q;) {
		if (!n || rl_key_same(n, q))
			return false;   /* not in the tree; or a copy */
		path[d++] = link;
		link = rl_key_less(q, n) ? &n->left : &n->right;
	}
	keep = d;
	if (!q->left || !q->right) {
		*link = q->left ? q->left : q->right;
		below = link;
	} else {
		struct rl_request **r_link = &q->right, *r;

		path[d++] = link;   /* q's place, r's once it moves there */
		while ((*r_link)->left) {
			path[d++] = r_link;
			r_link = &(*r_link)->left;
		}
		r = *r_link;
		*r_link = r->right;
		r->left = q->left;
		r->right = q->right;
		r->balance = q->balance;
		r->max_end = q->max_end;
		*link = r;
		if (d > keep + 1) {
			path[keep + 1] = &r->right;   /* was &q->right */
			below = r_link;
		} else {
			below = &r->right;
		}
	}
	q->left = q->right = NULL;

	/* the subtree at *below lost a level; its max_end may have changed */
	bool lower = true, max_changed = true;

	for (; d-- > 0; below = path[d]) {
		struct rl_request *n = *path[d];

		if (max_changed || d >= keep) {
			uint64_t max_end = n->max_end;

			rl_fix(n);
			max_changed = n->max_end != max_end;
		}
		if (lower) {
			int s = below == &n->right ? -1 : 1;   /* now higher */

			n->balance = (int8_t)(n->balance + s);
			if (n->balance == s)
				lower = false;   /* it was balanced: as high */
			else if (n->balance != 0)
				lower = rl_rebalance(path[d], n, s);
		}
		if (!lower && !max_changed && d <= keep)
			return true;
	}
	return true;
}

/* rl_index_contains: is q itself in the tree? */
bool rl_index_contains(const struct rl_lock *l, const struct rl_request *q)
{
	const struct rl_request *n = l->root;

	while (n && n != q) {
		if (rl_key_same(n, q))
			return false;   /* a copy */
		n = rl_key_less(q, n) ? n->left : n->right;
	}
	return n != NULL;
}

/*
 * rl_visit: call visit(e, arg) for each e in n's subtree that overlaps
 * [start, end), in key order, until one returns true (then return true).
 * A subtree whose max_end is at or below start holds no overlap; nor does a
 * node's right subtree when the node starts at or after end (every key to
 * its right starts later still).
 */
static bool rl_visit(struct rl_request *n, uint64_t start, uint64_t end,
		     rl_index_visit_fn *visit, void *arg)
{
	while (n && n->max_end > start) {
		if (rl_visit(n->left, start, end, visit, arg))
			return true;
		if (n->start >= end)
			return false;
		if (n->end > start && visit(n, arg))
			return true;
		n = n->right;
	}
	return false;
}

bool rl_index_any(const struct rl_lock *l, uint64_t start, uint64_t end,
		  rl_index_visit_fn *visit, void *arg)
{
	return rl_visit(l->root, start, end, visit, arg);
}
