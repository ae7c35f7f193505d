/* SPDX-License-Identifier: MIT */
/*
 * rl_index.c - the index of the precise path's requests: an interval tree.
 *
 * Every listed request (held or waiting) is a node of one AVL tree per
 * lock, ordered by (start, seq), where seq is its arrival number.  Each node
 * also keeps the largest end in its subtree (max_end), so the requests that
 * overlap a range are found in O(log n + k) for k of them, and a subtree
 * that ends before the range is never entered.  The tree lives in the
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

static unsigned rl_height(const struct rl_request *n)
{
	return n ? n->height : 0;
}

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

/* rl_fix: recompute n's height and max_end from its children. */
static void rl_fix(struct rl_request *n)
{
	unsigned hl = rl_height(n->left), hr = rl_height(n->right);
	uint64_t m = n->end;

	if (rl_max_end(n->left) > m)
		m = rl_max_end(n->left);
	if (rl_max_end(n->right) > m)
		m = rl_max_end(n->right);
	n->max_end = m;
	n->height = (uint8_t)(1 + (hl > hr ? hl : hr));
}

static struct rl_request *rl_rotate_right(struct rl_request *n)
{
	struct rl_request *l = n->left;

	n->left = l->right;
	l->right = n;
	rl_fix(n);
	rl_fix(l);
	return l;
}

static struct rl_request *rl_rotate_left(struct rl_request *n)
{
	struct rl_request *r = n->right;

	n->right = r->left;
	r->left = n;
	rl_fix(n);
	rl_fix(r);
	return r;
}

/* rl_rebalance: n's subtrees are AVL trees whose heights differ by at most
 * two; return the subtree rooted at n made AVL again. */
static struct rl_request *rl_rebalance(struct rl_request *n)
{
	int balance = (int)rl_height(n->left) - (int)rl_height(n->right);

	if (balance > 1) {
		if (rl_height(n->left->left) < rl_height(n->left->right))
			n->left = rl_rotate_left(n->left);
		return rl_rotate_right(n);
	}
	if (balance < -1) {
		if (rl_height(n->right->right) < rl_height(n->right->left))
			n->right = rl_rotate_right(n->right);
		return rl_rotate_left(n);
	}
	rl_fix(n);
	return n;
}

static struct rl_request *rl_insert(struct rl_request *n, struct rl_request *q)
{
	if (!n)
		return q;
	if (rl_key_less(q, n))
		n->left = rl_insert(n->left, q);
	else
		n->right = rl_insert(n->right, q);
	return rl_rebalance(n);
}

/* rl_index_insert: add q (start, end set) as the newest request. */
void rl_index_insert(struct rl_lock *l, struct rl_request *q)
{
	q->seq = ++l->arrivals;
	q->left = q->right = NULL;
	q->max_end = q->end;
	q->height = 1;
	l->root = rl_insert(l->root, q);
}

static struct rl_request *rl_remove_min(struct rl_request *n,
					struct rl_request **min)
{
	if (!n->left) {
		*min = n;
		return n->right;
	}
	n->left = rl_remove_min(n->left, min);
	return rl_rebalance(n);
}

static struct rl_request *rl_remove(struct rl_request *n,
				    const struct rl_request *q, bool *found)
{
	struct rl_request *min;

	if (!n)
		return NULL;
	if (n == q) {
		*found = true;
		if (!n->left || !n->right)
			return n->left ? n->left : n->right;
		n->right = rl_remove_min(n->right, &min);
		min->left = n->left;
		min->right = n->right;
		return rl_rebalance(min);
	}
	if (rl_key_same(n, q))
		return n;   /* a copy: not in the tree */
	if (rl_key_less(q, n))
		n->left = rl_remove(n->left, q, found);
	else
		n->right = rl_remove(n->right, q, found);
	return *found ? rl_rebalance(n) : n;
}

/* rl_index_remove: take q out; false (and nothing changed) if q is not in
 * the tree. */
bool rl_index_remove(struct rl_lock *l, struct rl_request *q)
{
	bool found = false;

	l->root = rl_remove(l->root, q, &found);
	if (found)
		q->left = q->right = NULL;
	return found;
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
