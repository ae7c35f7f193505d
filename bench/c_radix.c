/* SPDX-License-Identifier: MIT */
/*
 * c_radix.c - version 4's second candidate index (issue 29): c_tree.c's
 * design in a leaf per region of the object, the leaves found through a
 * radix tree keyed by the region's number, so that threads in disjoint
 * regions write disjoint memory; and a top for wide ranges.
 *
 * Regions are 2^shift bytes (1 MiB; RLBENCH_RADIX_SHIFT sets it).  A leaf
 * is a cache line: a spinlock, an interval tree (treap.h), counts.  It is
 * made the first time a range needs it and kept until destroy (64 bytes a
 * region ever locked, plus a 544-byte node per 64 leaves).
 *
 *   - A narrow range (over one region, or two neighbours) is listed in its
 *     first region's leaf (its home); over two, it raises the second
 *     leaf's `incoming`.  Its *set* is its leaves, and the leaf before its
 *     home when that one's ranges reach into the home (incoming != 0); it
 *     locks its set's spinlocks in region order, and there it counts its
 *     conflicts, all earlier.
 *   - Wide ranges (over three regions or more, to EOF) are listed in the
 *     top: a spinlock, a tree, and the hull [lo, hi) of the wide ranges
 *     listed.  A narrow range whose set meets the hull, or has a leaf
 *     closed by a narrow range listed in the top, is listed in the top as
 *     well, and closes its leaves (`closed`) until it leaves.
 *   - Order: everything a leaf lists arrived before everything the top
 *     lists over that leaf (it was listed while neither the hull nor a
 *     close covered it).  So a request waits for the conflicting ones
 *     listed where it looks: a narrow one in its set's trees; a top one in
 *     the top's tree and in the leaves over its range (a wide one finds
 *     them through the radix tree's marks, below).  A request that leaves
 *     unblocks the conflicting ones still listed (all later): in its set's
 *     trees, and in the top's tree when it was listed there or its set
 *     meets the hull or a close.
 *   - Every tree is read and changed under its own spinlock.  A wide range
 *     extends the hull before it reads the marks; a leaf section marks its
 *     leaf (and the path to it) before it reads the hull (Dekker, seq_cst):
 *     either the section sees the hull, or the wide range sees the mark and
 *     takes that leaf's spinlock after it.
 *   - Marks: a node's bit i says child i may hold a listed range.  A leaf's
 *     bit is cleared by a wide range that finds it empty; a node's bits are
 *     never cleared.
 */
#include <pthread.h>
#include <stdlib.h>

#include "bench_wait.h"
#include "contender.h"
#include "treap.h"

#define FAN 64
#define FAN_SHIFT 6
/* tnode.where */
enum { IN_LEAF, IN_TOP_NARROW, IN_TOP_WIDE };

struct node;

struct leaf {
	_Alignas(64) atomic_int guard;
	bool marked;          /* its bit in the parent's marks is set */
	uint32_t incoming;    /* listed ranges of the leaf before that reach here */
	uint32_t closed;      /* narrow ranges over it listed in the top */
	struct tnode *root;
	uint64_t region;
	struct node *parent;
};

struct node {
	_Atomic(void *) child[FAN];   /* struct node *, or at level 0 struct leaf * */
	_Atomic uint64_t marks;
	unsigned level;               /* 0: the children are leaves */
	_Atomic(struct node *) parent;   /* set when the tree grows above it */
	unsigned slot;                /* its index in the parent */
};

struct rlock {
	_Alignas(64) atomic_int guard;   /* the top */
	struct tnode *root;
	uint32_t nwide;
	/* the hull of the wide ranges listed; empty when hi == 0 */
	_Alignas(64) _Atomic uint64_t lo, hi;
	_Atomic(struct node *) radix;    /* covers FAN^(level + 1) regions */
	pthread_mutex_t grow;            /* makes nodes and leaves */
	unsigned shift;
};

_Static_assert(sizeof(struct tnode) <= sizeof(((struct bench_range *)0)->handle),
	       "tnode must fit in bench_range");

static uint64_t span_of(const struct node *n)   /* regions it covers, log2 */
{
	return (uint64_t)(n->level + 1) * FAN_SHIFT;
}

static unsigned slot_of(const struct node *n, uint64_t region)
{
	return (unsigned)(region >> (n->level * FAN_SHIFT)) & (FAN - 1);
}

/* The leaf of a region, made (with its path) if make; NULL if absent or
 * out of memory (the caller then takes the top). */
static struct leaf *leaf_find(struct rlock *l, uint64_t region, bool make);

static struct leaf *leaf_make(struct rlock *l, uint64_t region)
{
	struct leaf *f = NULL;

	pthread_mutex_lock(&l->grow);
	struct node *n = atomic_load_explicit(&l->radix, memory_order_relaxed);

	while (span_of(n) < 64 && region >> span_of(n)) {   /* grow upwards */
		struct node *up = calloc(1, sizeof(*up));

		if (!up)
			goto out;
		up->level = n->level + 1;
		atomic_init(&up->child[0], n);
		atomic_init(&up->marks, 1);   /* conservative: node bits are sticky */
		/* relaxed: up's bit 0 is set, so a leaf_mark() that misses
		 * it loses nothing */
		atomic_store_explicit(&n->parent, up, memory_order_relaxed);
		/* seq_cst: the node's contents, before readers find it;
		 * and a sweep that stores the hull after a section found
		 * a leaf under it loads it (radix_lock()). */
		atomic_store_explicit(&l->radix, up, memory_order_seq_cst);
		n = up;
	}
	for (;;) {
		unsigned i = slot_of(n, region);
		void *c = atomic_load_explicit(&n->child[i], memory_order_relaxed);

		if (!c) {
			if (n->level == 0) {
				f = aligned_alloc(64, sizeof(*f));
				if (f)
					*f = (struct leaf){ .region = region, .parent = n };
				c = f;
			} else {
				struct node *d = calloc(1, sizeof(*d));

				if (d) {
					d->level = n->level - 1;
					atomic_init(&d->parent, n);
					d->slot = i;
				}
				c = d;
			}
			if (!c)
				goto out;
			/* release: pairs with the acquire loads in leaf_find(). */
			atomic_store_explicit(&n->child[i], c, memory_order_release);
		}
		if (n->level == 0) {
			f = c;
			break;
		}
		n = c;
	}
out:
	pthread_mutex_unlock(&l->grow);
	return f;
}

static struct leaf *leaf_find(struct rlock *l, uint64_t region, bool make)
{
	/* acquire: a node's contents; pairs with the release stores in
	 * leaf_make(). */
	struct node *n = atomic_load_explicit(&l->radix, memory_order_acquire);

	if (span_of(n) < 64 && region >> span_of(n))
		return make ? leaf_make(l, region) : NULL;
	for (;;) {
		void *c = atomic_load_explicit(&n->child[slot_of(n, region)],
					       memory_order_acquire);

		if (!c)
			return make ? leaf_make(l, region) : NULL;
		if (n->level == 0)
			return c;
		n = c;
	}
}

/* The leaf of the region after f's: its sibling, most often. */
static struct leaf *leaf_next(struct rlock *l, struct leaf *f, bool make)
{
	unsigned i = (unsigned)(f->region & (FAN - 1));

	if (i < FAN - 1) {
		/* acquire: pairs with leaf_make()'s release stores */
		struct leaf *g = atomic_load_explicit(&f->parent->child[i + 1],
						      memory_order_acquire);

		if (g)
			return g;
	}
	return leaf_find(l, f->region + 1, make);
}

/* Mark f and its path (its spinlock held): a wide range's sweep will look
 * at it. */
static void leaf_mark(struct leaf *f)
{
	struct node *n = f->parent;
	uint64_t bit = 1ull << (f->region & (FAN - 1));

	f->marked = true;
	/* seq_cst: Dekker with wide_enter()'s stores of the hull and its
	 * loads of the marks. */
	atomic_fetch_or_explicit(&n->marks, bit, memory_order_seq_cst);
	/* relaxed: see leaf_make() */
	for (struct node *p; (p = atomic_load_explicit(&n->parent, memory_order_relaxed));
	     n = p) {
		uint64_t up = 1ull << n->slot;

		/* seq_cst, even for a peek: a bit another section set
		 * must order our load of the hull after a sweep that
		 * missed it */
		if (!(atomic_load_explicit(&p->marks, memory_order_seq_cst) & up))
			atomic_fetch_or_explicit(&p->marks, up, memory_order_seq_cst);
	}
}

/* Is [first, last] (regions) clear of the hull?  After the sections'
 * marks (Dekker: leaf_mark()). */
static inline bool hull_clear(struct rlock *l, uint64_t first, uint64_t last)
{
	/* seq_cst: the other half of leaf_mark()'s Dekker pair. */
	uint64_t hi = atomic_load_explicit(&l->hi, memory_order_seq_cst);
	uint64_t lo = atomic_load_explicit(&l->lo, memory_order_seq_cst);

	/* the hull, in regions: [lo >> shift, (hi - 1) >> shift] */
	return hi == 0 || lo >> l->shift > last || (hi - 1) >> l->shift < first;
}

/* A narrow range's set: the leaf before its home (or NULL), its home, its
 * second leaf (or NULL). */
struct set {
	struct leaf *f[3];
};

static inline __attribute__((always_inline)) void set_lock(struct set *s)
{
	for (int i = 0; i < 3; i++)
		if (s->f[i])
			bench_spin_lock(&s->f[i]->guard);
}

static inline __attribute__((always_inline)) void set_unlock(struct set *s)
{
	for (int i = 0; i < 3; i++)
		if (s->f[i])
			bench_spin_unlock(&s->f[i]->guard);
}

/* Lock a narrow range's set: its leaves (its home if known, else found,
 * made if make), and the one before when its home's `incoming` says so.
 * False (nothing held) if a leaf could not be made. */
static inline __attribute__((always_inline)) bool set_take(struct rlock *l, struct set *s, struct leaf *home,
		     uint64_t a, uint64_t b, bool make)
{
	s->f[0] = NULL;
	s->f[1] = home ? home : leaf_find(l, a, make);
	s->f[2] = b != a && s->f[1] ? leaf_next(l, s->f[1], make) : NULL;
	if (!s->f[1] || (b != a && !s->f[2]))
		return false;
	for (;;) {
		set_lock(s);
		if (!s->f[1]->incoming || s->f[0])
			return true;
		set_unlock(s);
		s->f[0] = leaf_find(l, a - 1, false);   /* exists: it lists ranges */
	}
}

/* May the set's leaves list and unlist by themselves?  Marks them first
 * (their spinlocks held). */
static inline __attribute__((always_inline)) bool set_open(struct rlock *l, struct set *s)
{
	uint64_t first = (s->f[0] ? s->f[0] : s->f[1])->region;
	uint64_t last = (s->f[2] ? s->f[2] : s->f[1])->region;

	for (int i = 0; i < 3; i++)
		if (s->f[i]) {
			if (s->f[i]->closed)
				return false;
			if (!s->f[i]->marked)
				leaf_mark(s->f[i]);
		}
	return hull_clear(l, first, last);
}

static inline __attribute__((always_inline)) unsigned set_conflicts(struct set *s, const struct tnode *n)
{
	unsigned c = 0;

	for (int i = 0; i < 3; i++)
		if (s->f[i])
			c += tn_foreach_conflict(s->f[i]->root, n, NULL);
	return c;
}

/* List n in its home f, the leaves' spinlocks held: its conflicts are
 * counted there, in g (its second leaf, or NULL; it raises g's
 * `incoming`) and in `before` (the leaf before f when ranges from there
 * reach into f, or NULL).  Returns the count. */
static inline __attribute__((always_inline)) unsigned list_in_leaves(struct tnode *n, struct leaf *before,
			       struct leaf *f, struct leaf *g)
{
	unsigned more = before ? tn_foreach_conflict(before->root, n, NULL) : 0;

	if (g) {
		more += tn_foreach_conflict(g->root, n, NULL);
		g->incoming++;
	}
	n->home = f;
	return tn_list(&f->root, n, more);
}

/* Undo list_in_leaves(): take n out of its home f and unblock the
 * conflicting ranges left in those leaves (all later than n). */
static inline __attribute__((always_inline)) void unlist_from_leaves(struct tnode *n, struct leaf *before,
			       struct leaf *f, struct leaf *g)
{
	tn_unlist(&f->root, n);
	if (before)
		tn_foreach_conflict(before->root, n, tn_unblock);
	if (g) {
		g->incoming--;
		tn_foreach_conflict(g->root, n, tn_unblock);
	}
}

static void *radix_create(uint64_t object_size)
{
	struct rlock *l = aligned_alloc(64, sizeof(*l));
	struct node *n = calloc(1, sizeof(*n));
	const char *shift = getenv("RLBENCH_RADIX_SHIFT");

	(void)object_size;
	if (!l || !n)
		bench_die("radix: out of memory");
	*l = (struct rlock){ .shift = shift ? (unsigned)atoi(shift) : 20 };
	if (l->shift < 12 || l->shift > 40)
		bench_die("RLBENCH_RADIX_SHIFT: 12..40");
	atomic_init(&l->radix, n);
	pthread_mutex_init(&l->grow, NULL);
	return l;
}

static void free_node(struct node *n)
{
	for (int i = 0; i < FAN; i++) {
		void *c = atomic_load_explicit(&n->child[i], memory_order_relaxed);

		if (!c)
			continue;
		if (n->level == 0) {
			if (((struct leaf *)c)->root)
				bench_die("radix: destroy of a busy lock");
			free(c);
		} else {
			free_node(c);
		}
	}
	free(n);
}

static void radix_destroy(void *lock)
{
	struct rlock *l = lock;

	if (l->root)
		bench_die("radix: destroy of a busy lock");
	free_node(atomic_load_explicit(&l->radix, memory_order_relaxed));
	pthread_mutex_destroy(&l->grow);
	free(l);
}

/*
 * A wide range's sweep, under the top's spinlock: count n's conflicts in
 * the leaves of regions [first, last) that may list ranges, waiting for
 * every leaf section under way there; clear the marks of empty leaves.
 */
static unsigned sweep(struct node *nd, uint64_t base, uint64_t first,
		      uint64_t last, const struct tnode *n)
{
	unsigned c = 0, shift = nd->level * FAN_SHIFT;   /* a child's span */
	/* seq_cst: Dekker (leaf_mark()) */
	uint64_t m = atomic_load_explicit(&nd->marks, memory_order_seq_cst);

	for (; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctzll(m);
		uint64_t lo = base + ((uint64_t)i << shift);   /* regions [lo, hi] */
		uint64_t hi = lo + ((1ull << shift) - 1);

		if (hi < first || lo > last)
			continue;
		/* acquire: pairs with leaf_make()'s release stores */
		void *ch = atomic_load_explicit(&nd->child[i], memory_order_acquire);

		if (!ch)
			continue;
		if (nd->level) {
			c += sweep(ch, lo, first, last, n);
			continue;
		}
		struct leaf *f = ch;

		bench_spin_lock(&f->guard);
		c += tn_foreach_conflict(f->root, n, NULL);
		if (!f->root && !f->incoming && !f->closed) {
			f->marked = false;
			/* relaxed: a hint for later sweeps; a section that lists
			 * here marks it again */
			atomic_fetch_and_explicit(&nd->marks, ~(1ull << i),
						  memory_order_relaxed);
		}
		bench_spin_unlock(&f->guard);
	}
	return c;
}

/* The common case: a range over its home f and maybe g, the leaf after,
 * that nothing reaches into from before f and nothing closes: may it list
 * and unlist there alone?  (Their spinlocks held.) */
static bool leaves_alone(struct rlock *l, struct leaf *f, struct leaf *g)
{
	return !f->incoming && !f->closed && f->marked &&
	       (!g || (!g->closed && g->marked)) &&
	       hull_clear(l, f->region, g ? g->region : f->region);
}

/* The common case's spinlocks.  (set_lock() on a set with no leaf before
 * does the same, but the fast path through it cost 342 instructions a
 * page pair instead of 231: callgrind.) */
static void leaves_lock(struct leaf *f, struct leaf *g)
{
	bench_spin_lock(&f->guard);
	if (g)
		bench_spin_lock(&g->guard);
}

static void leaves_unlock(struct leaf *f, struct leaf *g)
{
	if (g)
		bench_spin_unlock(&g->guard);
	bench_spin_unlock(&f->guard);
}

static void radix_lock(void *lock, void *ctx, struct bench_range *r)
{
	struct rlock *l = lock;
	struct tnode *n = (struct tnode *)(void *)r->handle;
	uint64_t a = r->start >> l->shift, b = (r->end - 1) >> l->shift;
	struct set s;

	(void)ctx;
	tn_init(n, r->start, r->end, r->exclusive, (uint64_t)(uintptr_t)n);
	n->home = NULL;
	n->where = IN_LEAF;
	struct leaf *f;

	if (b - a <= 1 && (f = leaf_find(l, a, true))) {
		struct leaf *g = a == b ? NULL : leaf_next(l, f, true);

		if (a == b || g) {
			leaves_lock(f, g);
			if (leaves_alone(l, f, g)) {
				unsigned blocking = list_in_leaves(n, NULL, f, g);

				leaves_unlock(f, g);
				if (blocking)
					tn_wait_unblocked(n);
				return;
			}
			leaves_unlock(f, g);
		}
	}
	if (b - a <= 1 && set_take(l, &s, NULL, a, b, true)) {
		if (set_open(l, &s)) {
			unsigned blocking = list_in_leaves(n, s.f[0], s.f[1], s.f[2]);

			set_unlock(&s);
			if (blocking)
				tn_wait_unblocked(n);
			return;
		}
		set_unlock(&s);
		/* narrow, in the top: close its leaves */
		bench_spin_lock(&l->guard);
		set_take(l, &s, NULL, a, b, false);   /* made above */
		s.f[1]->closed++;
		if (s.f[2])
			s.f[2]->closed++;
		unsigned blocking = set_conflicts(&s, n);

		set_unlock(&s);
		n->where = IN_TOP_NARROW;
		blocking = tn_list(&l->root, n, blocking);
		bench_spin_unlock(&l->guard);
		if (blocking)
			tn_wait_unblocked(n);
		return;
	}
	/* wide (or no memory for a leaf) */
	bench_spin_lock(&l->guard);
	uint64_t lo = r->start, hi = r->end;

	if (l->nwide++) {
		uint64_t olo = atomic_load_explicit(&l->lo, memory_order_relaxed);
		uint64_t ohi = atomic_load_explicit(&l->hi, memory_order_relaxed);

		lo = olo < lo ? olo : lo;
		hi = ohi > hi ? ohi : hi;
	}
	/* seq_cst: Dekker with set_open() */
	atomic_store_explicit(&l->lo, lo, memory_order_seq_cst);
	atomic_store_explicit(&l->hi, hi, memory_order_seq_cst);
	/* seq_cst: after the hull, as leaf_make() grows the tree (a leaf
	 * under a new root is swept) */
	struct node *root = atomic_load_explicit(&l->radix, memory_order_seq_cst);
	/* the leaves of regions [a - 1, b]: a range listed in the one before
	 * a may reach into a */
	unsigned blocking = sweep(root, 0, a ? a - 1 : 0, b, n);

	n->where = IN_TOP_WIDE;
	blocking = tn_list(&l->root, n, blocking);
	bench_spin_unlock(&l->guard);
	if (blocking)
		tn_wait_unblocked(n);
}

static void radix_unlock(void *lock, void *ctx, struct bench_range *r)
{
	struct rlock *l = lock;
	struct tnode *n = (struct tnode *)(void *)r->handle;
	uint64_t a = r->start >> l->shift, b = (r->end - 1) >> l->shift;
	struct set s;

	(void)ctx;
	if (n->home) {
		struct leaf *f = n->home, *g = a == b ? NULL : leaf_next(l, f, false);

		leaves_lock(f, g);
		if (leaves_alone(l, f, g)) {
			unlist_from_leaves(n, NULL, f, g);
			leaves_unlock(f, g);
			return;
		}
		leaves_unlock(f, g);
	}
	if (n->home) {   /* listed in its leaf */
		set_take(l, &s, n->home, a, b, false);
		if (set_open(l, &s)) {
			unlist_from_leaves(n, s.f[0], s.f[1], s.f[2]);
			set_unlock(&s);
			return;
		}
		set_unlock(&s);
		bench_spin_lock(&l->guard);
		set_take(l, &s, n->home, a, b, false);
		unlist_from_leaves(n, s.f[0], s.f[1], s.f[2]);
		set_unlock(&s);
		tn_foreach_conflict(l->root, n, tn_unblock);
		bench_spin_unlock(&l->guard);
		return;
	}
	bench_spin_lock(&l->guard);
	tn_unlist(&l->root, n);
	if (n->where == IN_TOP_NARROW) {
		set_take(l, &s, NULL, a, b, false);   /* made at lock */
		s.f[1]->closed--;
		if (s.f[2])
			s.f[2]->closed--;
		set_unlock(&s);
	} else if (--l->nwide == 0) {
		/* release: pairs with set_open()'s loads */
		atomic_store_explicit(&l->hi, 0, memory_order_release);
	}
	bench_spin_unlock(&l->guard);
}

const struct contender contender_radix = {
	.name = "radix",
	.about = "version 4's candidate: c_tree's design in a leaf per 1 MiB region "
		 "found by a radix tree, and a top for wide ranges",
	.create = radix_create,
	.destroy = radix_destroy,
	.lock = radix_lock,
	.unlock = radix_unlock,
};
