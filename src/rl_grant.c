/* SPDX-License-Identifier: MIT */
/*
 * rl_grant.c - a process's own lock: where a request is listed, how many
 * earlier conflicts it waits for, and who is unblocked when one leaves.
 *
 * Where (rl_radix.h has the regions and leaves):
 *   - A *narrow* range (over one region, or two neighbours) is listed in
 *     its first region's leaf, its *home*; over two, it raises the second
 *     leaf's `incoming`.  Its *set* is its leaves, and the leaf before its
 *     home when ranges listed there reach into the home (incoming != 0).
 *     It locks its set's spinlocks in region order and counts there its
 *     conflicts, all earlier than it.
 *   - A *wide* range (three regions or more, to RANGELOCK_EOF; every range
 *     of a debug lock; any range whose leaf could not be made) is listed in
 *     the *top*: a spinlock, a tree, and the hull [lo, hi) of the wide
 *     ranges listed.  A narrow range whose set meets the hull, or has a
 *     leaf closed, is listed in the top too, and closes its leaves
 *     (`closed`) until it leaves.
 *   - Order: whatever a leaf lists arrived before whatever the top lists
 *     over that leaf (it was listed while neither the hull nor a close
 *     covered it).  So a request waits for the conflicting ones listed
 *     where it looks: a narrow one in its set's trees; one in the top in
 *     the top's tree and in the leaves over its range (a wide one finds
 *     them by a sweep of the marked leaves: rl_radix.c).  The top's
 *     spinlock is taken before leaves', leaves' in region order.
 *   - Dekker: a leaf section marks its leaves before it reads the hull; a
 *     wide range stores the hull before it sweeps the marks (seq_cst):
 *     either the section sees the hull, or the sweep sees the mark and
 *     takes that leaf's spinlock after the section.
 *
 * Grant: a request's `count` is the number of earlier conflicting requests
 * listed where it looked.  It is held when the count is 0.  A request that
 * leaves (unlock, or a waiter withdrawn at its deadline) decrements the
 * conflicting requests listed after it where it looks, and wakes the one
 * whose count reaches 0 if it sleeps; a downgrade decrements the later
 * shared ones.  "After" is the arrival number: a request's seq is one more
 * than the largest `clock` of the trees it looks at, and becomes its home
 * tree's clock.  Of two conflicting requests, the later one always looks
 * at the earlier one's home (doc/design.md), so it got a larger seq, and
 * whoever leaves finds exactly the requests that counted it.
 *
 * A try (or a past deadline) decides inside the section that counted: a
 * refused request was never listed.
 */
#include <errno.h>

#include "rl_radix.h"

/* ---- counting and unblocking, in one tree */

/* What a count looks for: conflicts with a new request; and the largest
 * clock of the trees looked at. */
struct rl_probe {
	const struct rl_ask *a;
	uint32_t conflicts;
	uint64_t clock;
};

static bool rl_count_conflict(struct rl_request *e, void *arg)
{
	struct rl_probe *p = arg;

	p->conflicts += e->exclusive || p->a->exclusive;
	return false;   /* count them all */
}

static rl_always_inline void rl_count_in(struct rl_probe *p, rl_ref root,
					 uint64_t clock)
{
	if (clock > p->clock)
		p->clock = clock;
	if (root)
		rl_index_any_at(root, p->a->start, p->a->end, rl_count_conflict, p);
}

/* e no longer waits for one of its earlier conflicts: wake its owner if it
 * waited for no other and sleeps.  The wake is made inside the section on
 * purpose: e's owner cannot unlock (and free e) before the section ends,
 * so the futex word is still e's when futex_wake reaches it. */
static void rl_unblock(struct rl_request *e)
{
	/* release: the leaver's writes under its range; pairs with the
	 * acquire load in rl_wait_count(). */
	uint32_t was = atomic_fetch_sub_explicit(&e->count, 1, memory_order_release);

	if (was == (RL_COUNT_SLEEPING | 1))
		rl_futex_wake(&e->count, 1, false);
}

/* A request that leaves or becomes shared. */
struct rl_leaver {
	const struct rl_request *q;
	bool downgrade;
};

static bool rl_unblock_later(struct rl_request *e, void *arg)
{
	const struct rl_leaver *v = arg;

	if (e->seq <= v->q->seq)
		return false;   /* earlier (or q itself): it did not count q */
	if (v->downgrade ? !e->exclusive : e->exclusive || v->q->exclusive)
		rl_unblock(e);
	return false;
}

static rl_always_inline void rl_unblock_in(const struct rl_leaver *v, rl_ref root)
{
	if (root)
		rl_index_any_at(root, v->q->start, v->q->end, rl_unblock_later,
				(void *)v);
}

static bool rl_may_wait(const struct rl_ask *a)
{
	return a->how == RL_BLOCK ||
	       (a->how == RL_TIMED && !rl_deadline_within(a->abstime, 0));
}

static int rl_refused(const struct rl_ask *a)
{
	return a->how == RL_TRY ? EBUSY : ETIMEDOUT;
}

/* Fill in q, listed at `where` with seq and count, before it is inserted
 * into its tree; the section's unlock publishes it. */
static rl_always_inline void rl_request_set(struct rl_request *q,
					    const struct rl_ask *a,
					    uint8_t where, uint64_t seq,
					    uint32_t count)
{
	q->start = a->start;
	q->end = a->end;
	q->exclusive = a->exclusive;
	q->owner = a->owner;
	q->seq = seq;
	/* relaxed: read by others only under this tree's lock, by the owner
	 * after the acquire of its lock call's section */
	atomic_store_explicit(&q->count, count, memory_order_relaxed);
	/* release: the range before `where`; pairs with the acquire load in
	 * rl_leave() (an unlock from another thread, of a waiting q) */
	atomic_store_explicit(&q->where, where, memory_order_release);
}

/* Is q held (not waiting)?  Under the lock of q's tree. */
static bool rl_is_held(const struct rl_request *q)
{
	/* relaxed: its count changes under the tree's lock, which we hold */
	return !(atomic_load_explicit(&q->count, memory_order_relaxed) &
		 ~RL_COUNT_SLEEPING);
}

/* ---- a narrow range's leaves */

/* The hull, published by wide ranges: are regions [first, last] clear of
 * it?  After the section marked its leaves (Dekker: rl_leaf_mark()). */
static rl_always_inline bool rl_hull_clear(struct rl_lock *l, uint64_t first,
					   uint64_t last)
{
	/* seq_cst: the other half of rl_leaf_mark()'s Dekker pair. */
	uint64_t hi = atomic_load_explicit(&l->hull_hi, memory_order_seq_cst);
	uint64_t lo = atomic_load_explicit(&l->hull_lo, memory_order_seq_cst);

	return hi == 0 || rl_region_of(lo) > last || rl_region_of(hi - 1) < first;
}

/* The common case: a range over its home f and maybe g, the leaf after,
 * that nothing reaches into from before f and nothing closes: may it list
 * and leave there alone?  (Their spinlocks held.) */
static rl_always_inline bool rl_leaves_alone(struct rl_lock *l,
					     struct rl_leaf *f, struct rl_leaf *g)
{
	return !f->incoming && !f->closed && f->marked &&
	       (!g || (!g->closed && g->marked)) &&
	       rl_hull_clear(l, f->region, g ? g->region : f->region);
}

static rl_always_inline void rl_leaves_lock(struct rl_leaf *f, struct rl_leaf *g)
{
	rl_spin_lock(&f->lock);
	if (g)
		rl_spin_lock(&g->lock);
}

static rl_always_inline void rl_leaves_unlock(struct rl_leaf *f, struct rl_leaf *g)
{
	if (g)
		rl_spin_unlock(&g->lock);
	rl_spin_unlock(&f->lock);
}

/* A narrow range's set: the leaf before its home (or NULL), its home, its
 * second leaf (or NULL). */
enum { RL_BEFORE, RL_HOME, RL_SECOND };
struct rl_set {
	struct rl_leaf *f[3];
};

static void rl_set_lock(struct rl_set *s)
{
	for (int i = 0; i < 3; i++)
		if (s->f[i])
			rl_spin_lock(&s->f[i]->lock);
}

static void rl_set_unlock(struct rl_set *s)
{
	for (int i = 3; i-- > 0;)
		if (s->f[i])
			rl_spin_unlock(&s->f[i]->lock);
}

/* Lock the set of a narrow range over regions [a, b]: its home (given,
 * else found, made if `make`), its second leaf, and the one before when
 * the home's `incoming` says so.  False (nothing held) if a leaf is
 * missing. */
static bool rl_set_take(struct rl_lock *l, struct rl_set *s,
			struct rl_leaf *home, uint64_t a, uint64_t b, bool make)
{
	s->f[RL_BEFORE] = NULL;
	s->f[RL_HOME] = home ? home : rl_leaf_find(l, a, make);
	if (!s->f[RL_HOME])
		return false;
	s->f[RL_SECOND] = b != a ? rl_leaf_next(l, s->f[RL_HOME], make) : NULL;
	if (b != a && !s->f[RL_SECOND])
		return false;
	for (;;) {
		rl_set_lock(s);
		if (!s->f[RL_HOME]->incoming || s->f[RL_BEFORE])
			return true;
		rl_set_unlock(s);
		/* it exists: it lists a range that reaches into the home */
		s->f[RL_BEFORE] = rl_leaf_find(l, a - 1, false);
	}
}

/* May the set's leaves list and leave by themselves?  Marks them first
 * (their spinlocks held). */
static bool rl_set_open(struct rl_lock *l, struct rl_set *s)
{
	struct rl_leaf *first = s->f[RL_BEFORE] ? s->f[RL_BEFORE] : s->f[RL_HOME];
	struct rl_leaf *last = s->f[RL_SECOND] ? s->f[RL_SECOND] : s->f[RL_HOME];

	for (int i = 0; i < 3; i++) {
		if (!s->f[i])
			continue;
		if (s->f[i]->closed)
			return false;
		if (!s->f[i]->marked)
			rl_leaf_mark(s->f[i]);
	}
	return rl_hull_clear(l, first->region, last->region);
}

/* ---- listing */

/* List q in its home f, the leaves' spinlocks held: its conflicts are
 * counted there, in g (its second leaf, or NULL) and in `before` (or
 * NULL).  Returns 0 (held), RL_QUEUED, or the refusal of a try. */
static rl_always_inline int rl_list_in_leaves(struct rl_request *q,
					      const struct rl_ask *a,
					      struct rl_leaf *before,
					      struct rl_leaf *f, struct rl_leaf *g)
{
	struct rl_probe p = { a, 0, 0 };

	if (before)
		rl_count_in(&p, before->root, before->clock);
	if (g)
		rl_count_in(&p, g->root, g->clock);
	rl_count_in(&p, f->root, f->clock);
	if (p.conflicts && !rl_may_wait(a))
		return rl_refused(a);
	if (g)
		g->incoming++;
	f->clock = p.clock + 1;
	rl_request_set(q, a, RL_IN_LEAF, f->clock, p.conflicts);
	rl_index_insert_at(&f->root, q);
	return p.conflicts ? RL_QUEUED : 0;
}

static void rl_count_in_leaf(struct rl_leaf *f, void *arg)
{
	rl_count_in(arg, f->root, f->clock);
}

/* List q in the top (top_lock held), with the conflicts counted so far
 * in p. */
static int rl_list_in_top(struct rl_lock *l, struct rl_request *q,
			  struct rl_probe *p, uint8_t where)
{
	rl_count_in(p, l->top, l->top_clock);
	if (p->conflicts && !rl_may_wait(p->a))
		return rl_refused(p->a);
	l->top_clock = p->clock + 1;
	rl_request_set(q, p->a, where, l->top_clock, p->conflicts);
	rl_index_insert_at(&l->top, q);
	return p->conflicts ? RL_QUEUED : 0;
}

/* Debug mode's checks, in the top where its requests all are: q already
 * listed (EINVAL), or a range of the calling thread's overlapping. */
static bool rl_held_by_owner(struct rl_request *e, void *arg)
{
	const struct rl_ask *a = arg;

	return e->owner == a->owner && rl_is_held(e);
}

static int rl_debug_refuses(struct rl_lock *l, const struct rl_request *q,
			    const struct rl_ask *a)
{
	if (rl_index_contains_at(l->top, q))
		return EINVAL;
	if (rl_index_any_at(l->top, a->start, a->end, rl_held_by_owner, (void *)a))
		return EDEADLK;
	return 0;
}

/* A wide range (regions [ra, rb]), or any range of a debug lock or without
 * a leaf: listed in the top, after its hull is published and the leaves
 * under it swept. */
static __attribute__((noinline)) int rl_lock_wide(struct rl_lock *l,
						  struct rl_request *q,
						  const struct rl_ask *a,
						  uint64_t ra, uint64_t rb)
{
	struct rl_probe p = { a, 0, 0 };
	int rc;

	rl_spin_lock(&l->top_lock);
	if (rl_unlikely(l->flags & RANGELOCK_DEBUG) &&
	    (rc = rl_debug_refuses(l, q, a)) != 0) {
		rl_spin_unlock(&l->top_lock);
		return rc;
	}
	uint64_t lo = a->start, hi = a->end;

	if (l->nwide++) {
		/* relaxed: top_lock held, the hull's only writer */
		uint64_t olo = atomic_load_explicit(&l->hull_lo, memory_order_relaxed);
		uint64_t ohi = atomic_load_explicit(&l->hull_hi, memory_order_relaxed);

		lo = olo < lo ? olo : lo;
		hi = ohi > hi ? ohi : hi;
	}
	/* seq_cst: Dekker with rl_set_open() and rl_leaves_alone() */
	atomic_store_explicit(&l->hull_lo, lo, memory_order_seq_cst);
	atomic_store_explicit(&l->hull_hi, hi, memory_order_seq_cst);
	/* the leaves of regions [ra - 1, rb]: a range listed in the one
	 * before ra may reach into ra */
	rl_radix_sweep(l, ra ? ra - 1 : 0, rb, rl_count_in_leaf, &p);
	rc = rl_list_in_top(l, q, &p, RL_IN_TOP_WIDE);
	if (rc > 0 && --l->nwide == 0)
		/* release: pairs with rl_hull_clear()'s loads */
		atomic_store_explicit(&l->hull_hi, 0, memory_order_release);
	rl_spin_unlock(&l->top_lock);
	return rc;
}

/* A narrow range whose leaves were not alone: listed in its set, or in the
 * top (closing its leaves) when the hull or a close covers them. */
static __attribute__((noinline)) int rl_lock_narrow(struct rl_lock *l,
						    struct rl_request *q,
						    const struct rl_ask *a,
						    struct rl_leaf *f,
						    uint64_t ra, uint64_t rb)
{
	struct rl_set s;
	int rc;

	if (!rl_set_take(l, &s, f, ra, rb, true))
		return rl_lock_wide(l, q, a, ra, rb);
	if (rl_set_open(l, &s)) {
		rc = rl_list_in_leaves(q, a, s.f[RL_BEFORE], s.f[RL_HOME],
				       s.f[RL_SECOND]);
		rl_set_unlock(&s);
		return rc;
	}
	rl_set_unlock(&s);

	struct rl_probe p = { a, 0, 0 };

	rl_spin_lock(&l->top_lock);
	rl_set_take(l, &s, f, ra, rb, false);   /* made above */
	for (int i = 0; i < 3; i++)
		if (s.f[i])
			rl_count_in(&p, s.f[i]->root, s.f[i]->clock);
	rc = rl_list_in_top(l, q, &p, RL_IN_TOP_NARROW);
	if (rc <= 0) {
		s.f[RL_HOME]->closed++;
		if (s.f[RL_SECOND])
			s.f[RL_SECOND]->closed++;
	}
	rl_set_unlock(&s);
	rl_spin_unlock(&l->top_lock);
	return rc;
}

int rl_grant_lock(struct rl_lock *l, struct rl_request *q, const struct rl_ask *a)
{
	uint64_t ra = rl_region_of(a->start), rb = rl_region_of(a->end - 1);

	if (rl_likely(rb - ra <= 1 && !(l->flags & RANGELOCK_DEBUG))) {
		struct rl_leaf *f = rl_leaf_find(l, ra, true);
		struct rl_leaf *g = f && rb != ra ? rl_leaf_next(l, f, true) : NULL;

		if (rl_likely(f && (rb == ra || g))) {
			rl_leaves_lock(f, g);
			if (rl_likely(rl_leaves_alone(l, f, g))) {
				int rc = rl_list_in_leaves(q, a, NULL, f, g);

				rl_leaves_unlock(f, g);
				return rc;
			}
			rl_leaves_unlock(f, g);
			return rl_lock_narrow(l, q, a, f, ra, rb);
		}
	}
	return rl_lock_wide(l, q, a, ra, rb);
}

/* ---- leaving: unlock, withdrawal, downgrade */

enum rl_op { RL_UNLOCK, RL_WITHDRAW, RL_DOWNGRADE };

/* Is op allowed on q as it stands (its tree's lock held)?  0 if so, else
 * what the call returns: EINVAL, or for a withdrawal that the grant beat,
 * RL_GRANTED. */
#define RL_GRANTED (-2)

static int rl_op_check(const struct rl_request *q, enum rl_op op)
{
	bool held = rl_is_held(q);

	switch (op) {
	case RL_UNLOCK:
		return held ? 0 : EINVAL;
	case RL_DOWNGRADE:
		return held && q->exclusive ? 0 : EINVAL;
	case RL_WITHDRAW:
		return held ? RL_GRANTED : 0;
	}
	return EINVAL;
}

/* Do op on q, in its tree at *root, and unblock the later requests of
 * `also` (up to three more trees; 0 for none).  Returns 0 or what
 * rl_op_check() said; EINVAL if q is not in the tree. */
static int rl_leave_in(struct rl_request *q, enum rl_op op, rl_ref *root,
		       const rl_ref also[3])
{
	struct rl_leaver v = { q, op == RL_DOWNGRADE };
	int rc = rl_op_check(q, op);

	if (rc)
		return rc;
	if (op == RL_DOWNGRADE) {
		if (!rl_index_contains_at(*root, q))
			return EINVAL;
		q->exclusive = 0;
	} else if (!rl_index_remove_at(root, q)) {
		return EINVAL;
	}
	rl_unblock_in(&v, *root);
	for (int i = 0; i < 3; i++)
		rl_unblock_in(&v, also[i]);
	if (op != RL_DOWNGRADE) {
		/* relaxed: an unlock that reads it reads nothing else */
		atomic_store_explicit(&q->where, RL_NOWHERE, memory_order_relaxed);
		/* relaxed: q is no one's but its caller's now */
		atomic_store_explicit(&q->count, 0, memory_order_relaxed);
	}
	return 0;
}

/* op on q listed in a leaf, its set locked (and the top, if top). */
static int rl_leave_set(struct rl_lock *l, struct rl_request *q, enum rl_op op,
			struct rl_set *s, bool top)
{
	rl_ref also[3] = { s->f[RL_BEFORE] ? s->f[RL_BEFORE]->root : 0,
			   s->f[RL_SECOND] ? s->f[RL_SECOND]->root : 0,
			   top ? l->top : 0 };
	int rc = rl_leave_in(q, op, &s->f[RL_HOME]->root, also);

	if (rc == 0 && op != RL_DOWNGRADE && s->f[RL_SECOND])
		s->f[RL_SECOND]->incoming--;
	return rc;
}

static int rl_leave_leaf(struct rl_lock *l, struct rl_request *q, enum rl_op op)
{
	/* q's range is as its lock call set it, or (not a listed handle)
	 * anything: it only chooses which leaves to look in */
	uint64_t start = q->start, end = q->end;

	if (end <= start)
		return EINVAL;

	uint64_t ra = rl_region_of(start), rb = rl_region_of(end - 1);

	if (rb - ra > 1)
		return EINVAL;

	struct rl_leaf *f = rl_leaf_find(l, ra, false);
	struct rl_leaf *g = f && rb != ra ? rl_leaf_next(l, f, false) : NULL;
	struct rl_set s = { { NULL, f, g } };
	int rc;

	if (!f || (rb != ra && !g))
		return EINVAL;
	rl_leaves_lock(f, g);
	if (rl_likely(rl_leaves_alone(l, f, g))) {
		rc = rl_leave_set(l, q, op, &s, false);
		rl_leaves_unlock(f, g);
		return rc;
	}
	rl_leaves_unlock(f, g);
	rl_set_take(l, &s, f, ra, rb, false);
	if (rl_set_open(l, &s)) {
		rc = rl_leave_set(l, q, op, &s, false);
		rl_set_unlock(&s);
		return rc;
	}
	rl_set_unlock(&s);
	rl_spin_lock(&l->top_lock);
	rl_set_take(l, &s, f, ra, rb, false);
	rc = rl_leave_set(l, q, op, &s, true);
	rl_set_unlock(&s);
	rl_spin_unlock(&l->top_lock);
	return rc;
}

/* op on q listed in the top: later conflicts are all there. */
static int rl_leave_top(struct rl_lock *l, struct rl_request *q, enum rl_op op)
{
	static const rl_ref none[3];
	/* relaxed: rl_leave() loaded it with acquire */
	uint8_t where = atomic_load_explicit(&q->where, memory_order_relaxed);
	uint64_t ra = rl_region_of(q->start), rb = rl_region_of(q->end - 1);
	int rc;

	rl_spin_lock(&l->top_lock);
	rc = rl_leave_in(q, op, &l->top, none);
	if (rc == 0 && op != RL_DOWNGRADE) {
		if (where == RL_IN_TOP_NARROW) {   /* reopen its leaves */
			struct rl_set s;

			rl_set_take(l, &s, NULL, ra, rb, false);
			s.f[RL_HOME]->closed--;
			if (s.f[RL_SECOND])
				s.f[RL_SECOND]->closed--;
			rl_set_unlock(&s);
		} else if (--l->nwide == 0) {
			/* release: pairs with rl_hull_clear()'s loads */
			atomic_store_explicit(&l->hull_hi, 0, memory_order_release);
		}
	}
	rl_spin_unlock(&l->top_lock);
	return rc;
}

static int rl_leave(struct rl_lock *l, struct rl_request *q, enum rl_op op)
{
	/* acquire: pairs with the release store in rl_request_set() */
	switch (atomic_load_explicit(&q->where, memory_order_acquire)) {
	case RL_IN_LEAF:
		return rl_leave_leaf(l, q, op);
	case RL_IN_TOP_NARROW:
	case RL_IN_TOP_WIDE:
		return rl_leave_top(l, q, op);
	}
	return EINVAL;   /* not listed (or not a handle of this library) */
}

int rl_grant_unlock(struct rl_lock *l, struct rl_request *q)
{
	return rl_leave(l, q, RL_UNLOCK);
}

int rl_grant_downgrade(struct rl_lock *l, struct rl_request *q)
{
	return rl_leave(l, q, RL_DOWNGRADE);
}

/* q's deadline passed while it waited: withdrawn (ETIMEDOUT), or held (0)
 * if the grant beat the withdrawal. */
int rl_grant_withdraw(struct rl_lock *l, struct rl_request *q)
{
	int rc = rl_leave(l, q, RL_WITHDRAW);

	return rc == RL_GRANTED ? 0 : rc == 0 ? ETIMEDOUT : rc;
}

/* rangelock_destroy of a process's own lock: EBUSY while anything is
 * listed; else every leaf and node is freed. */
int rl_grant_destroy(struct rl_lock *l)
{
	int rc = 0;

	rl_spin_lock(&l->top_lock);
	if (l->top || l->nwide || rl_radix_busy(l))
		rc = EBUSY;
	else
		rl_radix_free(l);
	rl_spin_unlock(&l->top_lock);
	return rc;
}
