/* SPDX-License-Identifier: MIT */
/*
 * test_index.c - the interval tree (src/rl_index.c) on its own
 * (white-box: linked against the static library, it calls the hidden
 * rl_index_*_at() functions on a root of its own, as a leaf's or the
 * top's).
 *
 * After every insertion and removal the whole tree is checked: keys in
 * order, every max_end the largest end of its subtree, every balance the
 * difference of its subtrees' heights and at most one, and exactly the
 * nodes that should be there.  Overlap queries are
 * compared with a scan of every node.  The sequences are the shapes that
 * unbalance trees (ascending, descending, one start for all, one place
 * where requests come and go beside thousands held) and random ones.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "rl_internal.h"

#define NODES 4096

static struct rl_request node[NODES];
static bool in_tree[NODES];
static int used;   /* node[0 .. used - 1] may be in the tree */
static rl_ref root;
static uint64_t arrivals;   /* as a tree's clock */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Check n's subtree, whose keys lie between lo's and hi's; return its
 * height, and count its nodes. */
static int check_subtree(const struct rl_request *n,
			 const struct rl_request *lo,
			 const struct rl_request *hi, unsigned *count)
{
	if (!n)
		return 0;
	CHECK(n >= node && n < node + NODES && in_tree[n - node]);
	CHECK(!lo || lo->start < n->start ||
	      (lo->start == n->start && lo->seq < n->seq));
	CHECK(!hi || n->start < hi->start ||
	      (n->start == hi->start && n->seq < hi->seq));

	const struct rl_request *left = (const struct rl_request *)n->left;
	const struct rl_request *right = (const struct rl_request *)n->right;
	uint64_t m = n->end;

	if (left && left->max_end > m)
		m = left->max_end;
	if (right && right->max_end > m)
		m = right->max_end;
	CHECK(n->max_end == m);

	int hl = check_subtree(left, lo, n, count);
	int hr = check_subtree(right, n, hi, count);

	CHECK(n->balance == hr - hl);
	CHECK(n->balance >= -1 && n->balance <= 1);
	++*count;
	return 1 + (hl > hr ? hl : hr);
}

static void check_tree(void)
{
	unsigned count = 0, want = 0;

	check_subtree((const struct rl_request *)root, NULL, NULL, &count);
	for (int i = 0; i < used; i++) {
		want += in_tree[i];
		CHECK(rl_index_contains_at(root, &node[i]) == in_tree[i]);
	}
	CHECK(count == want);
}

static void add(int i, uint64_t start, uint64_t end)
{
	CHECK(!in_tree[i]);
	if (i >= used)
		used = i + 1;
	node[i].start = start;
	node[i].end = end;
	node[i].seq = ++arrivals;
	rl_index_insert_at(&root, &node[i]);
	in_tree[i] = true;
}

static void take(int i)
{
	CHECK(in_tree[i]);
	CHECK(rl_index_remove_at(&root, &node[i]));
	in_tree[i] = false;
	CHECK(!rl_index_remove_at(&root, &node[i]));   /* no longer there */
}

static void reset(void)
{
	root = 0;
	arrivals = 0;
	memset(node, 0, sizeof(node));
	memset(in_tree, 0, sizeof(in_tree));
	used = 0;
}

struct overlaps {
	bool seen[NODES];
	unsigned n;
};

static bool note_overlap(struct rl_request *e, void *arg)
{
	struct overlaps *o = arg;

	CHECK(!o->seen[e - node]);
	o->seen[e - node] = true;
	o->n++;
	return false;
}

static void check_overlaps(uint64_t start, uint64_t end)
{
	static struct overlaps o;
	unsigned want = 0;

	memset(&o, 0, sizeof(o));
	CHECK(!rl_index_any_at(root, start, end, note_overlap, &o));
	for (int i = 0; i < NODES; i++) {
		bool overlaps = in_tree[i] && node[i].start < end &&
				start < node[i].end;

		CHECK(o.seen[i] == overlaps);
		want += overlaps;
	}
	CHECK(o.n == want);
}

/* In order, in reverse, and all at one start (ordered by arrival alone);
 * then taken out in the same order, checked at every step. */
static void test_shapes(void)
{
	for (int shape = 0; shape < 3; shape++) {
		reset();
		for (int i = 0; i < NODES / 4; i++) {
			uint64_t s = shape == 0 ? (uint64_t)i
				   : shape == 1 ? (uint64_t)(NODES - i) : 7;

			add(i, s * 4096, s * 4096 + 4096 * (1 + (uint64_t)i % 5));
			check_tree();
		}
		for (int i = 0; i < NODES / 4; i++) {
			take(i);
			check_tree();
		}
		CHECK(root == 0);
	}
}

/* One request coming and going beside thousands held, at the ends and in
 * the middle: the tree keeps its rules, and a copy of a listed handle is
 * neither found nor removed. */
static void test_churn_beside_many(void)
{
	reset();
	for (int i = 0; i < NODES - 1; i++)
		add(i, (uint64_t)i * 8192, (uint64_t)i * 8192 + 4096);
	check_tree();

	uint64_t places[] = { 0, (NODES / 2) * 8192ull + 4096, 1ull << 40 };

	for (unsigned p = 0; p < 3; p++)
		for (int k = 0; k < 50; k++) {
			add(NODES - 1, places[p], places[p] + 4096);
			if (k % 10 == 0) {
				check_tree();
				check_overlaps(places[p], places[p] + 1);

				struct rl_request copy = node[NODES - 1];

				CHECK(!rl_index_contains_at(root, &copy));
				CHECK(!rl_index_remove_at(&root, &copy));
			}
			take(NODES - 1);
		}
	check_tree();
}

/* Random insertions and removals of random ranges, overlap queries among
 * them. */
static void test_random(void)
{
	reset();
	for (int step = 0; step < 40000; step++) {
		int i = (int)(next_random() % NODES);
		uint64_t x = next_random();

		if (in_tree[i]) {
			take(i);
		} else {
			uint64_t start = (x % 1024) * 4096 + (x >> 60);
			uint64_t end = (x >> 20) % 8 == 0 ? RANGELOCK_EOF
				     : start + 1 + (x >> 24) % (64 * 4096);

			add(i, start, end);
		}
		if (step % 1000 == 0) {
			check_tree();
			check_overlaps(x % (1024 * 4096), x % (1024 * 4096) + 1 +
							     (x >> 40) % 65536);
		}
	}
	check_tree();
	for (int i = 0; i < NODES; i++)
		if (in_tree[i])
			take(i);
	check_tree();
	CHECK(root == 0);
}

int main(void)
{
	RUN(test_shapes);
	RUN(test_churn_beside_many);
	RUN(test_random);
	t_done();
	return 0;
}
