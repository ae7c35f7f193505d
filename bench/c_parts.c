/* SPDX-License-Identifier: MIT */
/*
 * c_parts.c - version 4's candidate index (issue 29), built far enough to
 * measure it beside version 3 before it replaces it: the c_tree design,
 * cut by region so that disjoint in the object is disjoint in memory.
 *
 * The object is cut into regions of 2^shift bytes (1 MiB; RLBENCH_PARTS_SHIFT
 * sets it), and the regions are dealt onto PARTS parts, each a cache line
 * with a spinlock and an interval tree (treap.h), as c_tree.c's whole lock
 * is: consecutive regions get distinct parts, and regions a power of two
 * apart are spread by a hash of their run of PARTS.  The lock has one more
 * such tree, the top.
 *
 *   - A range inside one region (narrow) is listed in its region's part,
 *     under the part's spinlock alone, while the top lists nothing.
 *   - Every other range (over a region boundary, to EOF), and every range
 *     while the top lists anything, is listed in the top, under the top's
 *     spinlock.  The first one that the top gets waits, under the top's
 *     spinlock, for every part section under way to end (the sweep);
 *     afterwards part sections see ntop != 0 and hand over to the top, so
 *     the top's holder reads and changes the parts' trees alone.
 *   - Order: every request in a part arrived before every request in the
 *     top (it was listed while the top was empty), so a request waits for
 *     the conflicting requests listed before it where it looks: a narrow
 *     one in its part, a top one in the top and in every part marked as
 *     possibly non-empty.  A leaving request unblocks the conflicting ones
 *     still listed (all later): in its tree, and from a part also in the
 *     top.  FIFO among conflicts, as in rangelock.
 *   - Marks: a part sets its bit of `marks` the first time it lists a
 *     request after a sweep found it empty and cleared it; a part section
 *     sets the bit before it reads ntop, and the sweep stores ntop before it
 *     reads the bits (Dekker, seq_cst): either the section sees the top in
 *     use, or the sweep waits for the section.
 */
#include <stdlib.h>

#include "bench_wait.h"
#include "contender.h"
#include "treap.h"

#define PARTS 64
#define IN_TOP 0xff   /* tnode.where of a request listed in the top */

struct tree {
	_Alignas(64) atomic_int guard;
	bool marked;          /* a part's bit in marks is set; guard */
	struct tnode *root;   /* a part's: its guard while ntop == 0, else the top's */
	uint64_t arrivals;
};

struct plock {
	struct tree top;
	/* how many requests the top lists; changed under the top's guard */
	_Alignas(64) _Atomic uint32_t ntop;
	/* bit i: part i may list a request */
	_Atomic uint64_t marks;
	unsigned shift;
	struct tree part[PARTS];
};

_Static_assert(sizeof(struct tnode) <= sizeof(((struct bench_range *)0)->handle),
	       "tnode must fit in bench_range");

static struct tree *part_of(struct plock *l, uint64_t offset)
{
	uint64_t region = offset >> l->shift;
	uint64_t rotation = (region / PARTS) * 0x9E3779B97F4A7C15ull >> 58;

	return &l->part[(region + rotation) % PARTS];
}

static bool narrow(const struct plock *l, const struct bench_range *r)
{
	return r->start >> l->shift == (r->end - 1) >> l->shift;
}

/* In a part section: may the part list a request?  (No: the top is in
 * use.) */
static bool part_open(struct plock *l, struct tree *p)
{
	if (!p->marked) {
		p->marked = true;
		/* seq_cst: Dekker with top_enter()'s store of ntop and load
		 * of marks. */
		atomic_fetch_or_explicit(&l->marks, 1ull << (p - l->part),
					 memory_order_seq_cst);
	}
	/* seq_cst: the other half of that Dekker pair; also acquires what
	 * the last top holder wrote before it stored 0 (top_leave()). */
	return atomic_load_explicit(&l->ntop, memory_order_seq_cst) == 0;
}

/* Under the top's guard: one more request for the top.  The first one
 * sweeps: it waits for the part sections under way, and clears the marks
 * of the parts it finds empty. */
static void top_enter(struct plock *l)
{
	/* relaxed: changed only under the top's guard, which we hold. */
	uint32_t t = atomic_load_explicit(&l->ntop, memory_order_relaxed);

	if (t) {
		atomic_store_explicit(&l->ntop, t + 1, memory_order_relaxed);
		return;
	}
	/* seq_cst: Dekker with part_open() (above). */
	atomic_store_explicit(&l->ntop, 1, memory_order_seq_cst);
	uint64_t m = atomic_load_explicit(&l->marks, memory_order_seq_cst);

	while (m) {
		struct tree *p = &l->part[__builtin_ctzll(m)];

		m &= m - 1;
		bench_spin_lock(&p->guard);
		if (!p->root) {
			p->marked = false;
			/* relaxed: a hint for the next sweep; the next part
			 * section that lists here sets it again. */
			atomic_fetch_and_explicit(&l->marks,
						  ~(1ull << (p - l->part)),
						  memory_order_relaxed);
		}
		bench_spin_unlock(&p->guard);
	}
}

/* Under the top's guard, its last change: one request fewer. */
static void top_leave(struct plock *l)
{
	uint32_t t = atomic_load_explicit(&l->ntop, memory_order_relaxed);

	/* release: at 0, part sections take over the parts' trees as we
	 * leave them; pairs with the load in part_open(). */
	atomic_store_explicit(&l->ntop, t - 1, memory_order_release);
}

/* How many requests listed in the parts conflict with n (top's guard). */
static unsigned parts_conflicts(struct plock *l, const struct tnode *n)
{
	/* relaxed: bits that part sections set now are for empty parts
	 * (they hand over to the top before they list anything). */
	uint64_t m = atomic_load_explicit(&l->marks, memory_order_relaxed);
	unsigned c = 0;

	for (; m; m &= m - 1)
		c += tn_foreach_conflict(l->part[__builtin_ctzll(m)].root, n, NULL);
	return c;
}

static void *parts_create(uint64_t object_size)
{
	struct plock *l = aligned_alloc(64, sizeof(*l));
	const char *shift = getenv("RLBENCH_PARTS_SHIFT");

	(void)object_size;
	if (!l)
		return NULL;
	*l = (struct plock){ .shift = shift ? (unsigned)atoi(shift) : 20 };
	if (l->shift < 12 || l->shift > 40)
		bench_die("RLBENCH_PARTS_SHIFT: 12..40");
	return l;
}

static void parts_destroy(void *lock)
{
	struct plock *l = lock;

	for (int i = 0; i < PARTS; i++)
		if (l->part[i].root)
			bench_die("parts: destroy of a busy lock");
	if (l->top.root)
		bench_die("parts: destroy of a busy lock");
	free(lock);
}

/* List n in t (its guard held, or the top's), counting its conflicts in t
 * and `more`; returns that count. */
static unsigned list_in(struct tree *t, struct tnode *n,
			const struct bench_range *r, uint8_t where,
			unsigned more)
{
	tn_init(n, r->start, r->end, r->exclusive, ++t->arrivals);
	n->where = where;
	return tn_list(&t->root, n, more);
}

static void parts_lock(void *lock, void *ctx, struct bench_range *r)
{
	struct plock *l = lock;
	struct tnode *n = (struct tnode *)(void *)r->handle;
	unsigned blocking;

	(void)ctx;
	if (narrow(l, r)) {
		struct tree *p = part_of(l, r->start);

		bench_spin_lock(&p->guard);
		if (part_open(l, p)) {
			blocking = list_in(p, n, r, (uint8_t)(p - l->part), 0);
			bench_spin_unlock(&p->guard);
			if (blocking)
				tn_wait_unblocked(n);
			return;
		}
		bench_spin_unlock(&p->guard);
	}
	bench_spin_lock(&l->top.guard);
	top_enter(l);
	/* the parts' conflicts first: n is not in the top yet, and the
	 * count needs only n's range and mode */
	tn_init(n, r->start, r->end, r->exclusive, 0);
	blocking = list_in(&l->top, n, r, IN_TOP, parts_conflicts(l, n));
	bench_spin_unlock(&l->top.guard);
	if (blocking)
		tn_wait_unblocked(n);
}

static void parts_unlock(void *lock, void *ctx, struct bench_range *r)
{
	struct plock *l = lock;
	struct tnode *n = (struct tnode *)(void *)r->handle;

	(void)ctx;
	for (;;) {
		if (n->where != IN_TOP) {
			struct tree *p = &l->part[n->where];

			bench_spin_lock(&p->guard);
			/* seq_cst: as in part_open() */
			if (atomic_load_explicit(&l->ntop, memory_order_seq_cst) == 0) {
				tn_unlist(&p->root, n);
				bench_spin_unlock(&p->guard);
				return;
			}
			bench_spin_unlock(&p->guard);
		}
		bench_spin_lock(&l->top.guard);
		if (n->where == IN_TOP) {
			tn_unlist(&l->top.root, n);
			top_leave(l);
			break;
		}
		/* relaxed: changed only under the top's guard */
		if (atomic_load_explicit(&l->ntop, memory_order_relaxed)) {
			struct tree *p = &l->part[n->where];

			tn_unlist(&p->root, n);
			tn_foreach_conflict(l->top.root, n, tn_unblock);
			break;
		}
		bench_spin_unlock(&l->top.guard);   /* the top emptied: again */
	}
	bench_spin_unlock(&l->top.guard);
}

const struct contender contender_parts = {
	.name = "parts",
	.about = "version 4's candidate: c_tree's design in a part per 1 MiB region, "
		 "and a top for the rest",
	.create = parts_create,
	.destroy = parts_destroy,
	.lock = parts_lock,
	.unlock = parts_unlock,
};
