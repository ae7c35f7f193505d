/* SPDX-License-Identifier: MIT */
/*
 * rl_fast.c - the slot table's slow halves and its life under the guard:
 * setup, closing lines for the precise path, phantoms, reopening, teardown.
 * The fast path itself is inline in rl_fast.h, with the protocol.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rl_fast.h"

static uint64_t rl_slot_start(uint64_t v)
{
	if (v & RL_BYTE_SLOT)
		return (v >> 15) & (RL_BYTE_LIMIT - 1);
	return (v >> 8) << RL_PAGE_SHIFT;
}

static uint64_t rl_slot_end(uint64_t v)
{
	if (v & RL_BYTE_SLOT)
		return rl_slot_start(v) + ((v >> 2) & (RL_BYTE_MAX - 1)) + 1u;
	/* cannot wrap: a fast range ends at or below UINT64_MAX + 1 - RL_PAGE */
	return ((v >> 8) + ((v >> 2) & 63u) + 1u) << RL_PAGE_SHIFT;
}

static bool rl_slot_conflicts(uint64_t v, uint64_t start, uint64_t end,
			      bool exclusive)
{
	return v != 0 && (exclusive || (v & 2u)) && rl_slot_start(v) < end &&
	       start < rl_slot_end(v);
}

/*
 * The lines [start, end) maps to: every line when it spans RL_SEGMENTS
 * blocks or more, else the line of each of its blocks.  The k-th of the
 * n is rl_span_line(&s, k); a line may come twice (across a group's edge),
 * and close and reopen then count it twice alike.  A range of
 * RL_WIDE_BLOCKS blocks or more is wide: it closes the fast path through
 * the window, a narrow one through the group bits of its lines.
 */
struct rl_span {
	uint64_t first_block;
	unsigned n;
	bool all;
	bool wide;
};

static struct rl_span rl_span_of(uint64_t start, uint64_t end)
{
	uint64_t b0 = start >> (RL_PAGE_SHIFT + RL_BLOCK_SHIFT);
	uint64_t b1 = (end - 1) >> (RL_PAGE_SHIFT + RL_BLOCK_SHIFT);
	bool all = b1 - b0 >= RL_SEGMENTS;

	return (struct rl_span){ b0, all ? RL_SEGMENTS : (unsigned)(b1 - b0 + 1),
				 all, b1 - b0 >= RL_WIDE_BLOCKS - 1 };
}

static unsigned rl_span_line(const struct rl_span *s, unsigned k)
{
	return s->all ? k : rl_line_of_block(s->first_block + k);
}

/* ---- without the guard ---------------------------------------------- */

/*
 * rl_fast_settle: q claimed its slot in a line that was not empty or is
 * closed (rl_fast_lock() said RL_FAST_CLAIMED).  Keep the claim if no other
 * slot conflicts and the line is open; otherwise free the slot and return
 * false for the precise path to decide.
 */
bool rl_fast_settle(struct rl_lock *l, struct rl_request *q)
{
	struct rl_segment *seg = q->fast.seg;
	bool skipped_own = false, refused;

	/* read after our claim, as in rl_fast_alone(), which this repeats in
	 * full */
	refused = rl_fast_closed_to(l, q);
	for (unsigned j = 0; j < RL_SLOTS && !refused; j++) {
		/* seq_cst: as in rl_fast_alone(). */
		uint64_t v = atomic_load_explicit(&seg->slot[j],
						  memory_order_seq_cst);

		if (v == q->fast.value && !skipped_own)
			skipped_own = true;   /* ours (or its twin: same range) */
		else
			refused = rl_slot_conflicts(v, q->start, q->end,
						    q->exclusive);
	}
	if (refused) {
		rl_fast_release(l, q, 0);
		return false;
	}
	q->fast.self = q;
	/* relaxed: the owner's own bookkeeping. */
	atomic_store_explicit(&q->state, RL_FAST, memory_order_relaxed);
	return true;
}

/* Under the guard: a fast range left where the fast path was closed to it;
 * its waiters may go. */
void rl_fast_release_slow(struct rl_lock *l, uint64_t start,
				 uint64_t end)
{
	rl_guard_lock(l);
	rl_queue_grant_after(l, 0, start, end);
	rl_guard_unlock(l);
}

int rl_fast_downgrade(struct rl_lock *l, struct rl_request *q)
{
	if (!rl_fast_owns_slot(l, q) || !(q->fast.value & 2u))
		return EINVAL;
	q->fast.value &= ~(uint64_t)2u;
	q->exclusive = false;
	rl_fast_release(l, q, q->fast.value);
	return 0;
}

/* ---- with the guard --------------------------------------------------- */

void rl_fast_setup(struct rl_lock *l)
{
	struct rl_segment *table;

	if (atomic_load_explicit(&l->table, memory_order_relaxed) ||
	    (l->flags & (RANGELOCK_DEBUG | RL_NO_TABLE)))
		return;
	table = aligned_alloc(_Alignof(struct rl_segment),
			      RL_SEGMENTS * sizeof(*table));
	if (!table) {
		l->flags |= RL_NO_TABLE;   /* the precise path alone is still correct */
		return;
	}
	memset(table, 0, RL_SEGMENTS * sizeof(*table));
	/* release: the zeroed lines before the pointer; pairs with the
	 * acquire load in rl_fast_lock(). */
	atomic_store_explicit(&l->table, table, memory_order_release);
}

/*
 * rl_fast_close, rl_fast_reopen: a request for [start, end) joins or leaves
 * the list.  A narrow one counts itself in each of its lines and sets its
 * group's bit there; the bits are cleared when the count reaches zero.  A
 * wide one counts itself in `wide` and widens the window to cover it; the
 * window empties when `wide` reaches zero.  Every store here is made under
 * the guard, the only writer of these words.
 */
#define RL_COUNT_ONE ((uint64_t)1 << 32)

/* ThreadSanitizer does not model fences (gcc refuses them under
 * -fsanitize=thread): there every close is a seq_cst store, which is at
 * least as strong. */
#if defined(__SANITIZE_THREAD__)
#define RL_NO_FENCES 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RL_NO_FENCES 1
#endif
#endif
#ifndef RL_NO_FENCES
#define RL_NO_FENCES 0
#endif

/* One word: a seq_cst store.  Several: relaxed stores, then one seq_cst
 * fence (rl_close_done()); either way ordered before the caller's seq_cst
 * reads of the slots. */
static void rl_close_store(_Atomic uint64_t *word, uint64_t value, bool alone)
{
	if (alone || RL_NO_FENCES)
		atomic_store_explicit(word, value, memory_order_seq_cst);
	else
		atomic_store_explicit(word, value, memory_order_relaxed);
}

static void rl_close_done(bool alone)
{
	/*
	 * seq_cst: every store of rl_fast_close() before the caller reads the
	 * slots (Dekker with claimers, whose claim CAS and loads in
	 * rl_fast_closed_to() are seq_cst: a load after this fence in the
	 * total order reads our stores, and a claim before it is seen by our
	 * seq_cst loads of the slots).  One seq_cst store needs none.
	 */
	if (!alone && !RL_NO_FENCES)
		atomic_thread_fence(memory_order_seq_cst);
}

static void rl_window_widen(struct rl_lock *l, uint64_t start, uint64_t end)
{
	/* relaxed: our own earlier stores, under the guard. */
	uint64_t lo = atomic_load_explicit(&l->wide_lo, memory_order_relaxed);
	uint64_t hi = atomic_load_explicit(&l->wide_hi, memory_order_relaxed);

	if (l->wide++ == 0 || start < lo)
		rl_close_store(&l->wide_lo, start, false);
	if (end > hi)
		rl_close_store(&l->wide_hi, end, false);
}

void rl_fast_close(struct rl_lock *l, uint64_t start, uint64_t end)
{
	/* relaxed: written only under the guard, which we hold. */
	struct rl_segment *table = atomic_load_explicit(&l->table,
							memory_order_relaxed);
	struct rl_span s = rl_span_of(start, end);

	if (!table)
		return;
	if (s.wide)
		rl_window_widen(l, start, end);
	for (unsigned k = 0; !s.wide && k < s.n; k++) {
		_Atomic uint64_t *closed = &table[rl_span_line(&s, k)].closed;
		/* relaxed: our own earlier store, under the guard. */
		uint64_t v = atomic_load_explicit(closed, memory_order_relaxed);

		rl_close_store(closed, (v + RL_COUNT_ONE) |
					       rl_group_bit(s.first_block + k),
			       s.n == 1);
	}
	rl_close_done(!s.wide && s.n == 1);
}

/* release: this guard section (the listed holder's writes) to the claimer
 * that finds the fast path open; pairs with the seq_cst loads in
 * rl_fast_closed_to(). */
static void rl_reopen_store(_Atomic uint64_t *word, uint64_t value)
{
	atomic_store_explicit(word, value, memory_order_release);
}

void rl_fast_reopen(struct rl_lock *l, uint64_t start, uint64_t end)
{
	/* relaxed: written only under the guard, which we hold. */
	struct rl_segment *table = atomic_load_explicit(&l->table,
							memory_order_relaxed);
	struct rl_span s = rl_span_of(start, end);

	if (!table)
		return;
	if (s.wide) {
		if (--l->wide == 0)
			rl_reopen_store(&l->wide_hi, 0);   /* empty */
		return;
	}
	for (unsigned k = 0; k < s.n; k++) {
		_Atomic uint64_t *closed = &table[rl_span_line(&s, k)].closed;
		/* relaxed: our own earlier store, under the guard. */
		uint64_t v = atomic_load_explicit(closed, memory_order_relaxed);

		v -= RL_COUNT_ONE;
		rl_reopen_store(closed, v >> 32 ? v : 0);
	}
}

/* Is any slot of seg taken?  Seven loads, written out: a wide range asks
 * this of every line, and the loop the compiler keeps for atomics cost
 * three times the instructions (callgrind: 1 692 of an EOF pair's 2 016). */
static bool rl_line_occupied(const struct rl_segment *seg)
{
	_Static_assert(RL_SLOTS == 7, "rl_line_occupied() reads seven slots");
	/* seq_cst: see rl_fast_phantoms_conflict(), the caller */
	return (atomic_load_explicit(&seg->slot[0], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[1], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[2], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[3], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[4], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[5], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[6], memory_order_seq_cst)) != 0;
}

/* Does a slot of seg hold a range that conflicts with [start, end)?
 * (rl_line_conflicts: the quick pass inline, the decoding out of line.)
 * seq_cst, every load here: after rl_fast_close()'s stores (Dekker, pairs
 * with the claim CAS in rl_fast_lock()); as an acquire it takes a freed
 * slot's writes.  Most lines are empty, and a wide range reads every line:
 * a quick pass, then a decoding one only where something is held (what it
 * reads is as late as what the first pass read). */
static __attribute__((noinline)) bool
rl_line_decode_conflicts(const struct rl_segment *seg, uint64_t start,
			 uint64_t end, bool exclusive)
{
	for (unsigned j = 0; j < RL_SLOTS; j++)
		if (rl_slot_conflicts(atomic_load_explicit(&seg->slot[j],
							   memory_order_seq_cst),
				      start, end, exclusive))
			return true;
	return false;
}

static rl_always_inline bool rl_line_conflicts(const struct rl_segment *seg,
					       uint64_t start, uint64_t end,
					       bool exclusive)
{
	return rl_line_occupied(seg) &&
	       rl_line_decode_conflicts(seg, start, end, exclusive);
}

bool rl_fast_phantoms_conflict(const struct rl_lock *l, uint64_t start,
			       uint64_t end, bool exclusive)
{
	/* relaxed: written only under the guard, which we hold. */
	const struct rl_segment *table = atomic_load_explicit(&l->table,
							      memory_order_relaxed);
	struct rl_span s = rl_span_of(start, end);

	if (!table)
		return false;
	if (s.all) {   /* every line, in order: no hashing */
		for (unsigned k = 0; k < RL_SEGMENTS; k++)
			if (rl_line_conflicts(&table[k], start, end, exclusive))
				return true;
		return false;
	}
	for (unsigned k = 0; k < s.n; k++)
		if (rl_line_conflicts(&table[rl_line_of_block(s.first_block + k)],
				      start, end, exclusive))
			return true;
	return false;
}

bool rl_fast_busy(const struct rl_lock *l)
{
	/* relaxed: destroy runs alone (rangelock.h); any value left is a
	 * holder that was never released. */
	struct rl_segment *table = atomic_load_explicit(&l->table,
							memory_order_relaxed);

	for (unsigned i = 0; table && i < RL_SEGMENTS; i++)
		for (unsigned j = 0; j < RL_SLOTS; j++)
			if (atomic_load_explicit(&table[i].slot[j],
						 memory_order_relaxed))
				return true;
	return false;
}

void rl_fast_teardown(struct rl_lock *l)
{
	free(atomic_load_explicit(&l->table, memory_order_relaxed));
	/* relaxed: destroy runs alone. */
	atomic_store_explicit(&l->table, NULL, memory_order_relaxed);
}
