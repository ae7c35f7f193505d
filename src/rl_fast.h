/* SPDX-License-Identifier: MIT */
/*
 * rl_fast.h - the fast path, inline: lock and unlock of a range that fits a
 * slot, without the guard.  Everything else about the slot table is in
 * rl_fast.c.
 *
 * A fast range is whole pages inside one block, or at most 8 KiB inside
 * one.  Its owner claims a free slot of the block's line with one CAS,
 * then reads the line's other slots, its `closed` word and the lock's
 * window; if nothing there conflicts (no slot, not its group's bit, not the
 * window), the range is held.  Unlock is one store that frees the slot.
 * For a while after the table grew, a line's `closed` word says it drains,
 * and a claim there also checks the replaced table's line of its block
 * (rl_fast_settle()).  Whole pages over 2..RL_CLAIM_BLOCKS blocks are
 * held through a slot in each block's line, out of line
 * (rl_fast_lock_blocks()).
 *
 * Two claimers that conflict are a Dekker pair: each writes its own slot
 * and then reads the other's, all seq_cst, so at least one of them sees the
 * other and backs off to the precise path.  The precise path and a claimer
 * are a Dekker pair in the same way: rl_fast_close() writes `closed` (or
 * the window) and then reads the slots, the claimer writes its slot and
 * then reads `closed` and the window, so either the claimer backs off or
 * the precise path sees it as a phantom.  A fast holder that frees its slot
 * where a listed request closed the fast path may be what it waits for, so
 * it re-checks the waiters under the guard (rl_fast_release_slow()).
 * doc/design.md has the argument.
 */
#ifndef RL_FAST_H
#define RL_FAST_H

#include <errno.h>

#include "rl_internal.h"

#define RL_PAGE ((uint64_t)1 << RL_PAGE_SHIFT)

/* rl_fast.c: the slow halves, and claims over several blocks. */
rl_hidden bool rl_fast_settle(struct rl_lock *l, struct rl_request *q);
rl_hidden void rl_fast_release_slow(struct rl_lock *l, uint64_t start,
				    uint64_t end);
rl_hidden bool rl_fast_lock_blocks(struct rl_lock *l, struct rl_request *q,
				   unsigned n, uint64_t start, uint64_t end,
				   bool exclusive);
rl_hidden int rl_fast_unlock_blocks(struct rl_lock *l, struct rl_request *q);

static rl_always_inline uint64_t rl_slot_value(uint64_t first_page, uint64_t pages,
				     bool exclusive)
{
	return first_page << 8 | (pages - 1) << 2 | (uint64_t)exclusive << 1 | 1u;
}

#define RL_BYTE_SLOT ((uint64_t)1 << 60)

/*
 * In a shared region's table a slot also names its owner's record, in
 * RL_OWNER_BITS bits above the size, so that recovery can free what a dead
 * process held (rl_fast_dead_slots()):
 *     first page << 14 | record << 8 | (pages - 1) << 2 | exclusive << 1 | 1,
 *     1 << 60 | start << 21 | record << 15 | (bytes - 1) << 2 | ...
 * The fields below them stay where they are; the start moves up by
 * RL_OWNER_BITS, so such slots take pages below 2^58 and bytes below 2^39.
 * `ob` is 0 (a process's own lock) or RL_OWNER_BITS, and the decoders
 * (rl_fast.c) are told which.
 */
#define RL_OWNER_BITS 6u

/* The slot value of [start, end) with `ob` bits of `owner`, or 0 if it
 * does not fit a slot.  (ob is a constant where it is inlined: a private
 * lock's value costs what it did before shared ones had owners.) */
static rl_always_inline uint64_t rl_fast_value_as(uint64_t start, uint64_t end,
						  bool exclusive, unsigned ob,
						  uint64_t owner)
{
	uint64_t first = start >> RL_PAGE_SHIFT;
	uint64_t pages = (end - start) >> RL_PAGE_SHIFT;
	uint64_t mode = (uint64_t)exclusive << 1 | 1u;

	if (rl_likely(!((start | end) & (RL_PAGE - 1))))
		return pages <= RL_FAST_MAX_PAGES &&
			       first >> RL_BLOCK_SHIFT ==
				       (first + pages - 1) >> RL_BLOCK_SHIFT &&
			       first >> (52 - ob) == 0
		       ? first << (8 + ob) | owner << 8 | (pages - 1) << 2 | mode
		       : 0;
	if (end > RL_BYTE_LIMIT >> ob || end - start > RL_BYTE_MAX ||
	    start >> (RL_PAGE_SHIFT + RL_BLOCK_SHIFT) !=
		    (end - 1) >> (RL_PAGE_SHIFT + RL_BLOCK_SHIFT))
		return 0;
	return RL_BYTE_SLOT | start << (15 + ob) | owner << 15 |
	       (end - start - 1) << 2 | mode;
}

/* The slot value of [start, end) in a process's own lock. */
static rl_always_inline uint64_t rl_fast_value(uint64_t start, uint64_t end,
					       bool exclusive)
{
	return rl_fast_value_as(start, end, exclusive, 0, 0);
}

/* Does [start, end) meet the lock's window?  Each bound is read once,
 * after the caller's claim or release (seq_cst: Dekker with the stores in
 * rl_fast_close(), pairs with them; as an acquire, with the release stores
 * of rl_fast_reopen()).  Reading the two at different moments is sound:
 * doc/design.md, "Why F holds". */
static rl_always_inline bool rl_window_meets(struct rl_window *w,
					     uint64_t start, uint64_t end)
{
	return start < atomic_load_explicit(&w->wide_hi, memory_order_seq_cst) &&
	       atomic_load_explicit(&w->wide_lo, memory_order_seq_cst) < end;
}

/* Does a line's `closed` word have the bit of the group start lies in?
 * The bit is computed only when some bit is set: usually none is. */
static rl_always_inline bool rl_group_closed(uint64_t closed, uint64_t start)
{
	return closed &&
	       (closed & rl_group_bit(start >> (RL_PAGE_SHIFT + RL_BLOCK_SHIFT)));
}

/* q's line's `closed` word, read after q's claim or release (seq_cst:
 * Dekker with rl_fast_close() and rl_fast_grow(), pairs with their stores;
 * as an acquire, with the release stores of rl_fast_reopen()). */
static rl_always_inline uint64_t rl_fast_closed_word(const struct rl_request *q)
{
	return atomic_load_explicit(&q->fast.seg->closed, memory_order_seq_cst);
}

/* Is the fast path closed to q's range, by the group bit in its line's
 * `closed` word or by the window?  (After q's claim or release.) */
static rl_always_inline bool rl_fast_closed_to(struct rl_window *w,
					       const struct rl_request *q)
{
	uint64_t closed = rl_fast_closed_word(q);

	return rl_group_closed(closed, q->start) ||
	       rl_window_meets(w, q->start, q->end);
}

static rl_always_inline struct rl_segment *rl_segment_of(struct rl_table t,
							  uint64_t start)
{
	return &t.line[rl_line_of_block(start >> (RL_PAGE_SHIFT + RL_BLOCK_SHIFT),
					t.lines)];
}

/* After a claim of `value` in seg for a range starting at `start`: is it
 * alone in its line (every other slot free), and does the line neither
 * close start's group nor drain?  (The window is the caller's.) */
static rl_always_inline bool rl_line_alone(const struct rl_segment *seg,
					   uint64_t value, uint64_t start)
{
	/*
	 * seq_cst: read after our claim (Dekker with other claimers, pairs with
	 * their CAS in rl_line_claim()); as an acquire it also takes a freed
	 * slot's writes from rl_fast_release().  Slot values are below 2^61, so
	 * the sum of seven cannot wrap, and it equals our own value exactly
	 * when every other slot is free.
	 */
	uint64_t sum;

	_Static_assert(RL_SLOTS == 7, "rl_line_alone() sums seven slots");
	sum = atomic_load_explicit(&seg->slot[0], memory_order_seq_cst);
	sum += atomic_load_explicit(&seg->slot[1], memory_order_seq_cst);
	sum += atomic_load_explicit(&seg->slot[2], memory_order_seq_cst);
	sum += atomic_load_explicit(&seg->slot[3], memory_order_seq_cst);
	sum += atomic_load_explicit(&seg->slot[4], memory_order_seq_cst);
	sum += atomic_load_explicit(&seg->slot[5], memory_order_seq_cst);
	sum += atomic_load_explicit(&seg->slot[6], memory_order_seq_cst);

	/* seq_cst: as in rl_fast_closed_word() */
	uint64_t closed = atomic_load_explicit(&seg->closed, memory_order_seq_cst);

	/* RL_LINE_DRAINING: the small table's holders must be checked too,
	 * which rl_line_refuses() does */
	return sum == value && !(closed & RL_LINE_DRAINING) &&
	       !rl_group_closed(closed, start);
}

/* After a one-block claim: is it alone in its line, and is the fast path
 * open to it?  (If not, rl_fast_settle() decides, out of line.) */
static rl_always_inline bool rl_fast_alone(struct rl_window *w,
					   const struct rl_segment *seg,
					   uint64_t value, uint64_t start,
					   uint64_t end)
{
	return rl_line_alone(seg, value, start) && !rl_window_meets(w, start, end);
}

/* Store `value` (0: free) in q's slot, then wake whom the old one blocked
 * (w: l's window). */
static rl_always_inline void rl_fast_release_in(struct rl_lock *l,
						struct rl_window *w,
						struct rl_request *q,
						uint64_t value)
{
	/* seq_cst: a release of the range's writes (pairs with the loads in
	 * rl_line_alone(), rl_line_refuses() and rl_fast_phantoms_conflict()),
	 * and ordered before our reads of `closed` and the window (Dekker with
	 * rl_fast_close()). */
	atomic_store_explicit(&q->fast.seg->slot[q->fast.slot], value,
			      memory_order_seq_cst);
	if (rl_unlikely(rl_fast_closed_to(w, q)))
		rl_fast_release_slow(l, q->start, q->end);
}

/* The same in a process's own lock. */
static rl_always_inline void rl_fast_release(struct rl_lock *l,
					     struct rl_request *q, uint64_t value)
{
	rl_fast_release_in(l, &l->window, q, value);
}

/* Downgrade q, held through one slot of l (window w): EINVAL if it is
 * shared already. */
static inline int rl_fast_weaken(struct rl_lock *l, struct rl_window *w,
				 struct rl_request *q)
{
	if (!(q->fast.value & 2u))
		return EINVAL;
	q->fast.value &= ~(uint64_t)2u;
	q->exclusive = false;
	rl_fast_release_in(l, w, q, q->fast.value);
	return 0;
}

/*
 * rl_line_claim: claim a free slot of seg for `value`, a range starting at
 * `start`.  Its index, or RL_SLOTS with nothing claimed when start's group
 * is closed there (a relaxed peek) or every slot is taken: the precise
 * path takes the range then.
 */
static rl_always_inline unsigned rl_line_claim(struct rl_segment *seg,
					       uint64_t value, uint64_t start)
{
	/* relaxed: a way out early, without a claim to give back under the
	 * guard; the reads after the claim decide. */
	if (rl_group_closed(atomic_load_explicit(&seg->closed, memory_order_relaxed),
			    start))
		return RL_SLOTS;
	for (unsigned i = 0; i < RL_SLOTS; i++) {
		uint64_t free_slot = 0;

		/* relaxed: skip taken slots without a locked instruction. */
		if (atomic_load_explicit(&seg->slot[i], memory_order_relaxed))
			continue;
		/* seq_cst: the claim precedes our reads in rl_line_alone()
		 * and rl_line_refuses() (Dekker; pairs with the loads there
		 * and in rl_fast_phantoms_conflict()). */
		if (atomic_compare_exchange_strong_explicit(
			    &seg->slot[i], &free_slot, value,
			    memory_order_seq_cst, memory_order_relaxed))
			return i;
	}
	return RL_SLOTS;
}

/* After a claim in seg, a line of t: its bit in the table's marks is set,
 * so that scans do not pass over it.  (The fetch_or is inline: a call
 * here, even one never made, made every lock call save and restore three
 * more registers, 9 instructions a pair.) */
static rl_always_inline void rl_line_mark(struct rl_table t,
					  const struct rl_segment *seg)
{
	size_t i = (size_t)(seg - t.line);
	_Atomic uint64_t *word = &rl_table_head(t.line)->marked[i / 64];
	uint64_t bit = (uint64_t)1 << (i % 64);

	/* seq_cst, both: after our claim CAS and before our reads of
	 * `closed` and the window (Dekker with a scan's load of the marks
	 * after its close, and with a tidy's clear before its second reads
	 * of the slots; rl_marks_tidy()). */
	if (rl_unlikely(!(atomic_load_explicit(word, memory_order_seq_cst) & bit)))
		atomic_fetch_or_explicit(word, bit, memory_order_seq_cst);
}

/* How many blocks [start, end) covers if it may be held over several, else
 * 0. */
static inline unsigned rl_blocks_of(uint64_t start, uint64_t end)
{
	uint64_t n = ((end - 1) >> (RL_PAGE_SHIFT + RL_BLOCK_SHIFT)) -
		     (start >> (RL_PAGE_SHIFT + RL_BLOCK_SHIFT)) + 1;

	if (start >= end || ((start | end) & (RL_PAGE - 1)) || n < 2 ||
	    n > RL_CLAIM_BLOCKS)
		return 0;
	return (unsigned)n;
}

/* What rl_fast_lock() did. */
enum rl_fast_result {
	RL_FAST_TAKEN,    /* held: the call is done */
	RL_FAST_NONE,     /* nothing claimed: the precise path decides */
	RL_FAST_CLAIMED,  /* a slot claimed in a busy or closed line:
			   * rl_fast_settle() keeps it or gives it back */
};

/*
 * rl_fast_claim: take [start, end), whose slot value is `value`, through a
 * slot of table t with window w; q's state becomes `held` (RL_FAST, or
 * RL_SLOT_SHARED in a shared region) if it is taken.  RL_FAST_NONE when
 * the line is closed or full.
 */
static rl_always_inline enum rl_fast_result
rl_fast_claim(struct rl_table t, struct rl_window *w, struct rl_request *q,
	      uint64_t start, uint64_t end, bool exclusive, uint64_t value,
	      enum rl_state held)
{
	struct rl_segment *seg = rl_segment_of(t, start);
	unsigned i = rl_line_claim(seg, value, start);

	if (i == RL_SLOTS)
		return RL_FAST_NONE;
	rl_line_mark(t, seg);
	q->fast.seg = seg;
	q->fast.value = value;
	q->fast.slot = (uint8_t)i;
	q->start = start;
	q->end = end;
	q->exclusive = exclusive;
	if (rl_unlikely(!rl_fast_alone(w, seg, value, start, end)))
		return RL_FAST_CLAIMED;
	q->fast.self = q;
	/* relaxed: the owner's own bookkeeping; nobody else reads it. */
	atomic_store_explicit(&q->state, held, memory_order_relaxed);
	return RL_FAST_TAKEN;
}

/*
 * rl_fast_lock: take [start, end) through a slot of a process's own lock.
 * RL_FAST_NONE when it is not a fast range, there is no table, or the
 * line is closed or full.
 */
static rl_always_inline enum rl_fast_result
rl_fast_lock(struct rl_lock *l, struct rl_request *q, uint64_t start,
	     uint64_t end, bool exclusive)
{
	/* acquire: the table's lines as set up or grown; pairs with the
	 * release stores in rl_fast_setup() and rl_fast_grow(). */
	uintptr_t word = atomic_load_explicit(&l->table, memory_order_acquire);
	uint64_t value;

	if (rl_unlikely(!word))   /* not set up yet, or a shared lock's view */
		return RL_FAST_NONE;
	value = rl_fast_value(start, end, exclusive);
	if (!value)
		return RL_FAST_NONE;
	return rl_fast_claim(rl_table_decode(word), &l->window, q, start, end,
			     exclusive, value, RL_FAST);
}

/* Is seg a line of t? */
static rl_always_inline bool rl_table_has(struct rl_table t,
					  const struct rl_segment *seg)
{
	uintptr_t off = (uintptr_t)seg - (uintptr_t)t.line;

	return t.line && off < sizeof(*seg) * t.lines &&
	       off % sizeof(*seg) == 0;
}

/* rl_fast.c: is seg a line of the small table that l's grown one replaced? */
rl_hidden bool rl_fast_in_old_table(const struct rl_lock *l,
				    const struct rl_segment *seg);

/* Does q's slot, in a line that is one of its lock's, hold q's value, and
 * is q the handle that took it (not a copy)? */
static rl_always_inline bool rl_fast_slot_is(const struct rl_request *q)
{
	/* relaxed: our own slot; only we change it while it holds our value. */
	return q->fast.self == q && q->fast.slot < RL_SLOTS &&
	       atomic_load_explicit(&q->fast.seg->slot[q->fast.slot],
				    memory_order_relaxed) == q->fast.value;
}

/* Is q's slot really q's?  (A stale or forged handle is EINVAL.) */
static rl_always_inline bool rl_fast_owns_slot(const struct rl_lock *l,
				     const struct rl_request *q)
{
	/* relaxed: the owner loaded the table with acquire when it locked;
	 * a later table keeps the earlier one (rl_fast_in_old_table()). */
	struct rl_table t = rl_table_decode(
		atomic_load_explicit(&l->table, memory_order_relaxed));

	return (rl_table_has(t, q->fast.seg) ||
		rl_fast_in_old_table(l, q->fast.seg)) &&
	       rl_fast_slot_is(q);
}

static rl_always_inline int rl_fast_unlock(struct rl_lock *l, struct rl_request *q)
{
	if (!rl_fast_owns_slot(l, q))   /* held over several blocks, or EINVAL */
		return rl_fast_unlock_blocks(l, q);
	/* relaxed: the owner's own bookkeeping. */
	atomic_store_explicit(&q->state, RL_IDLE, memory_order_relaxed);
	rl_fast_release(l, q, 0);
	return 0;
}

/*
 * rl_shared_fast_lock: take [start, end) through a slot of a shared
 * region's table, as rl_fast_lock() does in a process's own lock, the slot
 * naming this process's record (RL_SLOT_SHARED).  True if held; otherwise
 * nothing is claimed and the precise path decides.  No offset is read
 * from the region: the table is where this process's view says.
 */
static rl_always_inline bool rl_shared_fast_lock(struct rl_lock *l,
						 struct rl_request *q,
						 uint64_t start, uint64_t end,
						 bool exclusive)
{
	uint64_t value = rl_fast_value_as(start, end, exclusive, RL_OWNER_BITS,
					  l->shared.record);
	enum rl_fast_result r;

	if (!value || !rl_view_ours(l))
		return false;
	r = rl_fast_claim(rl_shared_table(l), rl_shared_window(l), q, start, end,
			  exclusive, value, RL_SLOT_SHARED);
	return r == RL_FAST_TAKEN || (r == RL_FAST_CLAIMED && rl_fast_settle(l, q));
}

/* Unlock (or downgrade) q, held through a slot of a shared region's
 * table; EINVAL if it is not (a copy, a stale handle, a forked child's). */
static rl_always_inline int rl_shared_fast_release(struct rl_lock *l,
						   struct rl_request *q,
						   bool downgrade)
{
	struct rl_window *w = rl_shared_window(l);

	if (!rl_view_ours(l) || !rl_table_has(rl_shared_table(l), q->fast.seg) ||
	    !rl_fast_slot_is(q))
		return EINVAL;
	if (downgrade)
		return rl_fast_weaken(l, w, q);
	/* relaxed: the caller's own handle */
	atomic_store_explicit(&q->state, RL_IDLE, memory_order_relaxed);
	rl_fast_release_in(l, w, q, 0);
	return 0;
}

#endif /* RL_FAST_H */
