/* SPDX-License-Identifier: MIT */
/*
 * rl_fast.c - the slot table's slow halves and its life under the guard:
 * setup, closing lines for the precise path, phantoms, reopening, growing
 * (a small table replaced by a larger one while both have holders: the
 * small one drains), teardown; and ranges held over several blocks, a
 * slot in each block's line (without the guard, at the end).  The fast
 * path itself is inline in rl_fast.h, with the protocol; doc/design.md has
 * the argument.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rl_fast.h"

/* The range a slot value holds; `ob` is its lock's owner bits (0, or
 * RL_OWNER_BITS in a shared region: rl_fast_value_as()). */
static rl_always_inline uint64_t rl_slot_start(uint64_t v, unsigned ob)
{
	if (v & RL_BYTE_SLOT)
		return (v >> (15 + ob)) & ((RL_BYTE_LIMIT >> ob) - 1);
	return (v >> (8 + ob)) << RL_PAGE_SHIFT;
}

static rl_always_inline uint64_t rl_slot_end(uint64_t v, unsigned ob)
{
	if (v & RL_BYTE_SLOT)
		return rl_slot_start(v, ob) + ((v >> 2) & (RL_BYTE_MAX - 1)) + 1u;
	/* cannot wrap: a fast range ends at or below UINT64_MAX + 1 - RL_PAGE */
	return ((v >> (8 + ob)) + ((v >> 2) & 63u) + 1u) << RL_PAGE_SHIFT;
}

/* The record that owns a shared region's slot value. */
static unsigned rl_slot_owner(uint64_t v)
{
	return (unsigned)(v >> (v & RL_BYTE_SLOT ? 15 : 8)) &
	       ((1u << RL_OWNER_BITS) - 1);
}

static rl_always_inline bool rl_slot_conflicts(uint64_t v, uint64_t start,
					       uint64_t end, bool exclusive,
					       unsigned ob)
{
	return v != 0 && (exclusive || (v & 2u)) && rl_slot_start(v, ob) < end &&
	       start < rl_slot_end(v, ob);
}

/*
 * The lines [start, end) maps to in a table of `lines` lines: every line
 * when it spans that many blocks or more, else the line of each of its
 * blocks.  The k-th of the n is rl_span_line(&s, k); a line may come twice
 * (across a group's edge), and close and reopen then count it twice alike.  A range of
 * RL_WIDE_BLOCKS blocks or more is wide: it closes the fast path through
 * the window, a narrow one through the group bits of its lines.
 */
struct rl_span {
	uint64_t first_block;
	unsigned n;
	unsigned lines;
	bool all;
	bool wide;
};

static struct rl_span rl_span_of(uint64_t start, uint64_t end, unsigned lines)
{
	uint64_t b0 = start >> (RL_PAGE_SHIFT + RL_BLOCK_SHIFT);
	uint64_t b1 = (end - 1) >> (RL_PAGE_SHIFT + RL_BLOCK_SHIFT);
	bool all = b1 - b0 >= lines;

	return (struct rl_span){ b0, all ? lines : (unsigned)(b1 - b0 + 1),
				 lines, all, b1 - b0 >= RL_WIDE_BLOCKS - 1 };
}

static unsigned rl_span_line(const struct rl_span *s, unsigned k)
{
	return s->all ? k : rl_line_of_block(s->first_block + k, s->lines);
}

/* A process's own lock's table (a shared one's: rl_shared_home()). */
static struct rl_table rl_table_now(const struct rl_lock *l)
{
	/* relaxed: written only under the guard, which the callers hold. */
	return rl_table_decode(atomic_load_explicit(&l->table,
						    memory_order_relaxed));
}

/* ---- without the guard ---------------------------------------------- */

/* A tag of the calling thread: the address of a thread-local byte, which
 * no other live thread shares. */
static _Thread_local char rl_thread_anchor;

/*
 * rl_fast_note_settler: a claim in the small table met another slot taken.
 * Count it when the thread doing so is not the one that did last; after
 * RL_GROW_AFTER changes, grow the table.  One thread holding many ranges
 * in a line never grows its lock; threads that meet in lines do.
 */
static __attribute__((noinline)) void rl_fast_note_settler(struct rl_lock *l)
{
	/* acquire: the table's head as set up; pairs with the release store
	 * in rl_fast_setup(). */
	struct rl_table t = rl_table_decode(
		atomic_load_explicit(&l->table, memory_order_acquire));
	uint32_t tag = (uint32_t)((uintptr_t)&rl_thread_anchor >> 3);
	_Atomic uint64_t *settlers;
	uint64_t v;

	if (!t.line || t.lines != RL_SMALL_LINES)
		return;   /* grown, or a shared region's (which never grows) */
	settlers = &rl_table_head(t.line)->settlers;
	/* relaxed: a heuristic's count; a lost update only delays growth. */
	v = atomic_load_explicit(settlers, memory_order_relaxed);
	if ((uint32_t)v == tag)
		return;
	v = ((v >> 32) + 1) << 32 | tag;
	/* relaxed: as above. */
	atomic_store_explicit(settlers, v, memory_order_relaxed);
	if (v >> 32 == RL_GROW_AFTER)
		rl_fast_grow(l);
}

/* Does a holder in a line of the small table that l's grown one replaced
 * conflict with [start, end)?  (Claimed in the grown table while it
 * drains.) */
static bool rl_old_line_conflicts(struct rl_lock *l, uint64_t start,
				  uint64_t end, bool exclusive);

/*
 * rl_line_refuses: a slot of seg was claimed for `value`, the range
 * [start, end) inside one block.  Read the line's `closed` word, its other
 * slots and, while the line drains, the small table's line of the block:
 * does anything there refuse the claim?  (The window is the caller's to
 * read, after its claims.)  *met is set if another slot was found taken.
 * rl_line_alone() is the quick form of this, inline.
 */
static bool rl_line_refuses(struct rl_lock *l, const struct rl_segment *seg,
			    uint64_t value, uint64_t start, uint64_t end,
			    bool exclusive, unsigned ob, bool *met)
{
	bool skipped_own = false, taken = false;
	/* seq_cst: read after our claim, as in rl_fast_closed_word() */
	uint64_t closed = atomic_load_explicit(&seg->closed, memory_order_seq_cst);

	if (rl_group_closed(closed, start))
		return true;
	for (unsigned j = 0; j < RL_SLOTS; j++) {
		/* seq_cst: as in rl_line_alone(). */
		uint64_t v = atomic_load_explicit(&seg->slot[j],
						  memory_order_seq_cst);

		if (v == value && !skipped_own) {
			skipped_own = true;   /* ours (or its twin: same range) */
			continue;
		}
		taken |= v != 0;
		if (rl_slot_conflicts(v, start, end, exclusive, ob)) {
			*met |= taken;
			return true;
		}
	}
	*met |= taken;
	return (closed & RL_LINE_DRAINING) &&
	       rl_old_line_conflicts(l, start, end, exclusive);
}

/*
 * rl_fast_settle: q claimed its slot in a line that was not empty, is
 * closed or drains (rl_fast_lock() said RL_FAST_CLAIMED).  Keep the claim
 * if rl_line_refuses() and the window find nothing against it; otherwise
 * free the slot and return false for the precise path to decide.  A claim
 * in the small table that met another slot taken feeds the growth trigger.
 */
static rl_always_inline bool rl_fast_settle_in(struct rl_lock *l,
					       struct rl_fast_home h,
					       struct rl_request *q)
{
	bool met = false;
	bool refused = rl_line_refuses(l, q->fast.seg, q->fast.value, q->start,
				       q->end, q->exclusive, h.ob, &met) ||
		       rl_window_meets(h.w, q->start, q->end);

	if (refused) {
		rl_fast_release_in(l, h.w, q, 0);
	} else {
		q->fast.self = q;
		/* relaxed: the owner's own bookkeeping. */
		atomic_store_explicit(&q->state,
				      rl_is_shared(l) ? RL_SLOT_SHARED : RL_FAST,
				      memory_order_relaxed);
	}
	if (met)
		rl_fast_note_settler(l);   /* if its table is the small one */
	return !refused;
}

static __attribute__((noinline)) bool rl_fast_settle_shared(struct rl_lock *l,
							 struct rl_request *q)
{
	return rl_fast_settle_in(l, rl_shared_home(l), q);
}

bool rl_fast_settle(struct rl_lock *l, struct rl_request *q)
{
	if (rl_is_shared(l))
		return rl_fast_settle_shared(l, q);
	return rl_fast_settle_in(l, rl_home_private(l), q);
}

static void rl_fast_drain_check(struct rl_lock *l);

/* Under the guard: a fast range left where the fast path was closed to it;
 * its waiters may go, and a replaced table may have drained. */
void rl_fast_release_slow(struct rl_lock *l, uint64_t start,
				 uint64_t end)
{
	rl_guard_lock_any(l);
	rl_queue_grant_after(l, 0, start, end);
	rl_fast_drain_check(l);
	rl_guard_unlock_any(l);
}

static int rl_fast_downgrade_blocks(struct rl_lock *l, struct rl_request *q);

int rl_fast_downgrade(struct rl_lock *l, struct rl_request *q)
{
	if (q->fast.slot == RL_SLOT_BLOCKS)
		return rl_fast_downgrade_blocks(l, q);
	if (!rl_fast_owns_slot(l, q))
		return EINVAL;
	return rl_fast_weaken(l, &l->window, q);
}

/* ---- with the guard --------------------------------------------------- */

/* A zeroed table of `lines` lines after its head, or NULL. */
static struct rl_segment *rl_table_alloc(unsigned lines)
{
	size_t size = (size_t)lines * sizeof(struct rl_segment) +
		      sizeof(struct rl_table_head);
	struct rl_segment *base = aligned_alloc(_Alignof(struct rl_segment), size);

	_Static_assert(sizeof(struct rl_table_head) == sizeof(struct rl_segment),
		       "the head is one line");
	if (!base)
		return NULL;
	memset(base, 0, size);
	return base + 1;
}

static void rl_table_free(struct rl_segment *line)
{
	if (line)
		free(rl_table_head(line));
}

void rl_fast_setup(struct rl_lock *l)
{
	struct rl_segment *line;

	if (atomic_load_explicit(&l->table, memory_order_relaxed) ||
	    (l->flags & (RANGELOCK_DEBUG | RL_NO_TABLE)))
		return;
	line = rl_table_alloc(RL_SMALL_LINES);
	if (!line) {
		l->flags |= RL_NO_TABLE;   /* the precise path alone is still correct */
		return;
	}
	/* release: the zeroed lines before the pointer; pairs with the
	 * acquire load in rl_fast_lock(). */
	atomic_store_explicit(&l->table, rl_table_encode(line, RL_SMALL_LINES),
			      memory_order_release);
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

/*
 * Widen the window over [start, end), with no fence: the bound stored last
 * is a seq_cst store, and `wide_lo` before it (when both move) a relaxed
 * one.  Claimers read `wide_hi` first (rl_window_meets()): one that reads
 * the new `wide_hi` synchronizes with its store and so reads the new
 * `wide_lo` too; one that reads an older `wide_hi` read it before our
 * store in the seq_cst order, after its claim, which our scan then sees.
 * A bound that does not move was stored in an earlier guard section, at
 * or before a seq_cst store there, which precedes our scan in the seq_cst
 * order (the guard orders the sections).  (doc/design.md, "Why F holds".)
 */
static rl_always_inline void rl_window_widen(struct rl_fast_home h,
					     uint64_t start, uint64_t end)
{
	struct rl_window *w = h.w;
	/* relaxed: our own earlier stores, under the guard. */
	uint64_t lo = atomic_load_explicit(&w->wide_lo, memory_order_relaxed);
	uint64_t hi = atomic_load_explicit(&w->wide_hi, memory_order_relaxed);
	bool move_lo = h.listed->wide++ == 0 || start < lo;
	bool move_hi = end > hi;

	if (move_lo)
		rl_close_store(&w->wide_lo, start, !move_hi);
	if (move_hi)
		rl_close_store(&w->wide_hi, end, true);
}

/* Count a narrow [start, end) in the lines of t it maps, with its group's
 * bit (rl_close_store()'s `alone` for each store). */
static void rl_lines_close(struct rl_table t, const struct rl_span *s,
			   bool alone)
{
	for (unsigned k = 0; k < s->n; k++) {
		_Atomic uint64_t *closed = &t.line[rl_span_line(s, k)].closed;
		/* relaxed: our own earlier store, under the guard. */
		uint64_t v = atomic_load_explicit(closed, memory_order_relaxed);

		rl_close_store(closed, (v + RL_COUNT_ONE) |
					       rl_group_bit(s->first_block + k),
			       alone);
	}
}

/* Is any slot of seg taken?  Seven loads, written out: a wide range asks
 * this of every line, and the loop the compiler keeps for atomics cost
 * three times the instructions (callgrind: 1 692 of an EOF pair's 2 016).
 * Inline in the scans' loops: a call a line cost 160 of the 1 140 left. */
static rl_always_inline bool rl_line_occupied(const struct rl_segment *seg)
{
	_Static_assert(RL_SLOTS == 7, "rl_line_occupied() reads seven slots");
	/* seq_cst: see the callers (rl_line_conflicts(), rl_marks_tidy(),
	 * rl_table_occupied()) */
	return (atomic_load_explicit(&seg->slot[0], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[1], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[2], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[3], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[4], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[5], memory_order_seq_cst) |
		atomic_load_explicit(&seg->slot[6], memory_order_seq_cst)) != 0;
}

/*
 * Clear the marks of t's lines that have no slot taken, so that scans pass
 * over them until a claim marks them again (guard held).  The marks are
 * cleared first, then the lines read again: a claim that the second read
 * does not see comes after the clear in the seq_cst order, and so does its
 * look at the mark (rl_line_mark()), which then sets it again; one that it
 * sees has its mark put back here.
 */
static __attribute__((noinline)) void rl_marks_tidy(struct rl_table t)
{
	struct rl_table_head *head = rl_table_head(t.line);

	for (unsigned w = 0; w < rl_mark_words(t); w++) {
		/* seq_cst, all: the clear before the second reads (above) */
		uint64_t marks = atomic_load_explicit(&head->marked[w],
						      memory_order_seq_cst);
		uint64_t empty = 0, taken = 0;

		for (uint64_t m = marks; m; m &= m - 1) {
			unsigned i = (unsigned)__builtin_ctzll(m);

			if (!rl_line_occupied(&t.line[w * 64 + i]))
				empty |= (uint64_t)1 << i;
		}
		if (!empty)
			continue;
		atomic_fetch_and_explicit(&head->marked[w], ~empty,
					  memory_order_seq_cst);
		for (uint64_t m = empty; m; m &= m - 1) {
			unsigned i = (unsigned)__builtin_ctzll(m);

			if (rl_line_occupied(&t.line[w * 64 + i]))
				taken |= (uint64_t)1 << i;
		}
		if (taken)
			atomic_fetch_or_explicit(&head->marked[w], taken,
						 memory_order_seq_cst);
	}
}

static rl_always_inline void rl_fast_close_in(struct rl_lock *l,
					      struct rl_fast_home h,
					      uint64_t start, uint64_t end)
{
	struct rl_table t = h.t;
	struct rl_span s = rl_span_of(start, end, t.lines);

	if (!t.line)
		return;
	if (s.wide)
		rl_window_widen(h, start, end);   /* needs no fence */
	else
		rl_lines_close(t, &s, s.n == 1);
	rl_close_done(s.wide || s.n == 1);
	if (s.wide && l->wide_arrivals++ % RL_TIDY_EVERY == 0)
		rl_marks_tidy(t);
}

static __attribute__((noinline)) void
rl_fast_close_shared(struct rl_lock *l, uint64_t start, uint64_t end)
{
	rl_fast_close_in(l, rl_shared_home(l), start, end);
}

void rl_fast_close(struct rl_lock *l, uint64_t start, uint64_t end)
{
	if (rl_is_shared(l))
		rl_fast_close_shared(l, start, end);
	else
		rl_fast_close_in(l, rl_home_private(l), start, end);
}

/* release: this guard section (the listed holder's writes) to the claimer
 * that finds the fast path open; pairs with the seq_cst loads in
 * rl_fast_closed_to(). */
static void rl_reopen_store(_Atomic uint64_t *word, uint64_t value)
{
	atomic_store_explicit(word, value, memory_order_release);
}

static rl_always_inline void rl_fast_reopen_in(struct rl_fast_home h,
					       uint64_t start, uint64_t end)
{
	struct rl_table t = h.t;
	struct rl_span s = rl_span_of(start, end, t.lines);

	if (!t.line)
		return;
	if (s.wide) {
		if (--h.listed->wide == 0)
			rl_reopen_store(&h.w->wide_hi, 0);   /* empty */
		return;
	}
	for (unsigned k = 0; k < s.n; k++) {
		_Atomic uint64_t *closed = &t.line[rl_span_line(&s, k)].closed;
		/* relaxed: our own earlier store, under the guard. */
		uint64_t v = atomic_load_explicit(closed, memory_order_relaxed);

		v -= RL_COUNT_ONE;
		rl_reopen_store(closed, (v & ~RL_LINE_DRAINING) >> 32
						? v
						: v & RL_LINE_DRAINING);
	}
}

static __attribute__((noinline)) void
rl_fast_reopen_shared(struct rl_lock *l, uint64_t start, uint64_t end)
{
	rl_fast_reopen_in(rl_shared_home(l), start, end);
}

void rl_fast_reopen(struct rl_lock *l, uint64_t start, uint64_t end)
{
	if (rl_is_shared(l))
		rl_fast_reopen_shared(l, start, end);
	else
		rl_fast_reopen_in(rl_home_private(l), start, end);
}

/* Does a slot of seg hold a range that conflicts with [start, end)?
 * (rl_line_conflicts: the quick pass inline, the decoding out of line.)
 * seq_cst, every load here: after rl_fast_close()'s stores (Dekker, pairs
 * with the claim CAS in rl_fast_lock()); as an acquire it takes a freed
 * slot's writes.  Most lines are empty, and a wide range reads every line:
 * a quick pass, then a decoding one only where something is held (what it
 * reads is as late as what the first pass read). */
static rl_always_inline bool
rl_line_decode_as(const struct rl_segment *seg, uint64_t start, uint64_t end,
		  bool exclusive, unsigned ob)
{
	for (unsigned j = 0; j < RL_SLOTS; j++)
		if (rl_slot_conflicts(atomic_load_explicit(&seg->slot[j],
							   memory_order_seq_cst),
				      start, end, exclusive, ob))
			return true;
	return false;
}

/* (The decoding instantiated for each `ob`: a variable shift in the loop
 * cost a scan among 1 000 held 10%.) */
static __attribute__((noinline)) bool
rl_line_decode_conflicts(const struct rl_segment *seg, uint64_t start,
			 uint64_t end, bool exclusive, unsigned ob)
{
	if (ob)
		return rl_line_decode_as(seg, start, end, exclusive, RL_OWNER_BITS);
	return rl_line_decode_as(seg, start, end, exclusive, 0);
}

static rl_always_inline bool rl_line_conflicts(const struct rl_segment *seg,
					       uint64_t start, uint64_t end,
					       bool exclusive, unsigned ob)
{
	return rl_line_occupied(seg) &&
	       rl_line_decode_conflicts(seg, start, end, exclusive, ob);
}

/* The marks of t's lines (seq_cst loads: after rl_fast_close()'s stores,
 * before the reads of the slots they let through; Dekker with the mark
 * after a claim); false if none is set. */
static rl_always_inline bool rl_marks_of(struct rl_table t, uint64_t marks[])
{
	_Atomic uint64_t *marked = rl_table_head(t.line)->marked;
	uint64_t any = marks[0] = atomic_load_explicit(&marked[0],
						       memory_order_seq_cst);

	for (unsigned w = 1; w < rl_mark_words(t); w++)
		any |= marks[w] = atomic_load_explicit(&marked[w],
						       memory_order_seq_cst);
	return any != 0;
}

static bool rl_marked(const uint64_t marks[], unsigned line)
{
	return marks[line / 64] >> (line % 64) & 1;
}

/* Does a fast holder in a line of t marked in `marks` conflict with
 * [start, end)?  (Out of line: with no line marked, a scan is two loads.) */
static __attribute__((noinline)) bool
rl_marked_lines_conflict(struct rl_table t, const uint64_t marks[],
			 uint64_t start, uint64_t end, bool exclusive,
			 unsigned ob)
{
	struct rl_span s = rl_span_of(start, end, t.lines);

	if (s.all) {   /* every line: the marked ones, in order */
		for (unsigned w = 0; w < rl_mark_words(t); w++)
			for (uint64_t m = marks[w]; m; m &= m - 1) {
				unsigned i = w * 64 + (unsigned)__builtin_ctzll(m);

				if (rl_line_conflicts(&t.line[i], start, end,
						      exclusive, ob))
					return true;
			}
		return false;
	}
	for (unsigned k = 0; k < s.n; k++) {
		unsigned i = rl_line_of_block(s.first_block + k, t.lines);

		if (rl_marked(marks, i) &&
		    rl_line_conflicts(&t.line[i], start, end, exclusive, ob))
			return true;
	}
	return false;
}

/* Does a fast holder in t conflict with [start, end)?  Only lines marked
 * may have one. */
static bool rl_table_conflicts(struct rl_table t, uint64_t start, uint64_t end,
			       bool exclusive, unsigned ob)
{
	uint64_t marks[RL_MARK_WORDS];

	return rl_marks_of(t, marks) &&
	       rl_marked_lines_conflict(t, marks, start, end, exclusive, ob);
}

/* The small table that t, grown, replaced; none if t is the small one. */
static struct rl_table rl_table_replaced(struct rl_table t)
{
	if (!t.line || t.lines == RL_SMALL_LINES)
		return (struct rl_table){ NULL, 0 };
	return (struct rl_table){ rl_table_head(t.line)->old, RL_SMALL_LINES };
}

/* The small table a grown one replaced, while fast holders may remain in
 * it (RL_DRAINING); guard. */
static struct rl_table rl_table_draining(const struct rl_lock *l)
{
	if (!(l->flags & RL_DRAINING))
		return (struct rl_table){ NULL, 0 };
	return rl_table_replaced(rl_table_now(l));
}

bool rl_fast_phantoms_conflict(const struct rl_lock *l, uint64_t start,
			       uint64_t end, bool exclusive)
{
	struct rl_table t, old;

	if (rl_is_shared(l)) {   /* one table, which never drains */
		t = rl_shared_home(l).t;
		return rl_table_conflicts(t, start, end, exclusive, RL_OWNER_BITS);
	}
	t = rl_table_now(l);
	old = rl_table_draining(l);
	return (t.line && rl_table_conflicts(t, start, end, exclusive, 0)) ||
	       (old.line && rl_table_conflicts(old, start, end, exclusive, 0));
}

/* Is a slot of t taken?  (Under the guard: seq_cst as in the scans; at
 * destroy, which runs alone, any order would do.) */
static bool rl_table_occupied(struct rl_table t)
{
	for (unsigned i = 0; t.line && i < t.lines; i++)
		if (rl_line_occupied(&t.line[i]))
			return true;
	return false;
}

/*
 * rl_fast_drain_check: guard held.  Once no slot of the replaced table is
 * taken, stop scanning it.  A claim made there after this scan reads its
 * line retired (the retiring stores precede this scan) and backs off, so
 * nobody needs to see it.
 */
static void rl_fast_drain_check(struct rl_lock *l)
{
	struct rl_table t = rl_table_now(l);
	struct rl_table old = rl_table_draining(l);

	if (!old.line || rl_table_occupied(old))
		return;
	l->flags &= ~RL_DRAINING;
	for (unsigned i = 0; i < t.lines; i++) {
		_Atomic uint64_t *closed = &t.line[i].closed;
		/* relaxed: our own earlier store, under the guard. */
		uint64_t v = atomic_load_explicit(closed, memory_order_relaxed);

		/* release, after the scan above (seq_cst loads): a claimer
		 * that reads the bit gone sees no holder left to check */
		rl_reopen_store(closed, v & ~RL_LINE_DRAINING);
	}
}

/* Close for one listed narrow request in the table being built (not yet
 * published: the release store of the table orders these stores). */
static bool rl_close_listed(struct rl_request *e, void *arg)
{
	const struct rl_table *t = arg;
	struct rl_span s = rl_span_of(e->start, e->end, t->lines);

	if (!s.wide)
		rl_lines_close(*t, &s, false);
	return false;   /* every one */
}

/*
 * rl_fast_grow: replace the small table by one of RL_GROWN_LINES
 * lines, once.  Under the guard: the new table is marked draining and
 * closed for every listed narrow request (wide ones are in the window,
 * which both tables share); every line of the small one is retired (all
 * group bits, never reopened), so that a claim there backs off; then the
 * new table is published.  The small table's holders count as phantoms
 * until they leave (RL_DRAINING).  The small table stays
 * allocated until destroy: a claimer may still hold a pointer to it.  A
 * failed allocation leaves the lock as it was.
 */
void rl_fast_grow(struct rl_lock *l)
{
	struct rl_table old, grown;

	rl_guard_lock(l);
	rl_fast_setup(l);
	old = rl_table_now(l);
	if (!old.line || old.lines != RL_SMALL_LINES)
		goto out;   /* no table, or grown already */
	grown = (struct rl_table){ rl_table_alloc(RL_GROWN_LINES), RL_GROWN_LINES };
	if (!grown.line)
		goto out;
	rl_table_head(grown.line)->old = old.line;
	for (unsigned i = 0; i < RL_GROWN_LINES; i++)
		/* relaxed: not yet published (the release store below) */
		atomic_store_explicit(&grown.line[i].closed, RL_LINE_DRAINING,
				      memory_order_relaxed);
	rl_index_any(l, 0, UINT64_MAX, rl_close_listed, &grown);
	for (unsigned i = 0; i < RL_SMALL_LINES; i++)
		rl_close_store(&old.line[i].closed, RL_LINE_RETIRED, false);
	/* seq_cst (in rl_close_done()): the retiring stores before the
	 * publication and before any later scan of the small table (Dekker
	 * with its claimers, as in rl_fast_close()): a claim there that
	 * stands came before this fence, so every claimer in the grown table
	 * (rl_old_line_conflicts()) and every scan sees it. */
	rl_close_done(false);
	/* release: the new table's lines and `closed` words before it is
	 * seen; pairs with the acquire load in rl_fast_lock(). */
	atomic_store_explicit(&l->table,
			      rl_table_encode(grown.line, RL_GROWN_LINES),
			      memory_order_release);
	l->flags |= RL_DRAINING;
	rl_fast_drain_check(l);
out:
	rl_guard_unlock(l);
}

static bool rl_old_line_conflicts(struct rl_lock *l, uint64_t start,
				  uint64_t end, bool exclusive)
{
	/* acquire: the grown table's head (`old`), as in
	 * rl_fast_in_old_table() */
	struct rl_table old = rl_table_replaced(rl_table_decode(
		atomic_load_explicit(&l->table, memory_order_acquire)));

	/* The small table's holders that matter claimed before its lines
	 * were retired, which was before the grown table was published, which
	 * was before our claim: the seq_cst loads here see them.  (No small
	 * table to check cannot happen: only a grown line drains.) */
	return !old.line || rl_line_conflicts(rl_segment_of(old, start), start,
					      end, exclusive, 0);
}

bool rl_fast_in_old_table(const struct rl_lock *l, const struct rl_segment *seg)
{
	/* acquire: the grown table's head (`old`); pairs with the release
	 * store in rl_fast_grow().  (A holder of a slot in the small table
	 * unlocks without the guard.) */
	struct rl_table t = rl_table_decode(
		atomic_load_explicit(&l->table, memory_order_acquire));

	return rl_table_has(rl_table_replaced(t), seg);
}

bool rl_fast_busy(const struct rl_lock *l)
{
	/* destroy runs alone (rangelock.h); any value left is a holder that
	 * was never released.  The small table a grown one replaced is
	 * checked too: a holder there is not gone either. */
	struct rl_table t = rl_table_now(l);

	return rl_table_occupied(t) || rl_table_occupied(rl_table_replaced(t));
}

void rl_fast_teardown(struct rl_lock *l)
{
	struct rl_table t = rl_table_now(l);

	rl_table_free(rl_table_replaced(t).line);
	rl_table_free(t.line);
	/* relaxed: destroy runs alone. */
	atomic_store_explicit(&l->table, 0, memory_order_relaxed);
	l->flags &= ~RL_DRAINING;
}

/* ---- a shared region's recovery (with the guard) ---------------------- */

/* Slots there name their owners (rl_fast_value_as()); a shared region's
 * table never grows, so there is one table and nothing drains. */

/* Calls visit() for every occupied slot of the region's table whose owner
 * is in `owners` (a mask of records), with the value it read.  seq_cst: a
 * phantom's slot is read as rl_line_decode_conflicts() reads it; a dead
 * owner's slot, which it writes no more, needs no order. */
static void rl_shared_slots_each(const struct rl_lock *l, uint64_t owners,
				 void (*visit)(_Atomic uint64_t *slot,
					       uint64_t v, void *arg),
				 void *arg)
{
	struct rl_table t = rl_shared_home(l).t;

	for (unsigned i = 0; t.line && i < t.lines; i++)
		for (unsigned j = 0; j < RL_SLOTS; j++) {
			_Atomic uint64_t *slot = &t.line[i].slot[j];
			uint64_t v = atomic_load_explicit(slot,
							  memory_order_seq_cst);

			if (v && (owners >> rl_slot_owner(v) & 1))
				visit(slot, v, arg);
		}
}

struct rl_phantom_search {
	uint64_t start, end, owners;
	bool exclusive;
};

static void rl_phantom_owner(_Atomic uint64_t *slot, uint64_t v, void *arg)
{
	struct rl_phantom_search *p = arg;

	(void)slot;
	if (rl_slot_conflicts(v, p->start, p->end, p->exclusive, RL_OWNER_BITS))
		p->owners |= (uint64_t)1 << rl_slot_owner(v);
}

uint64_t rl_fast_phantom_owners(const struct rl_lock *l, uint64_t start,
				uint64_t end, bool exclusive)
{
	struct rl_phantom_search p = { start, end, 0, exclusive };

	rl_shared_slots_each(l, UINT64_MAX, rl_phantom_owner, &p);
	return p.owners;
}

struct rl_dead_visit {
	rl_slot_visit_fn *dead;
	void *arg;
};

static void rl_dead_slot_range(_Atomic uint64_t *slot, uint64_t v, void *arg)
{
	struct rl_dead_visit *d = arg;

	(void)slot;
	d->dead(rl_slot_start(v, RL_OWNER_BITS), rl_slot_end(v, RL_OWNER_BITS),
		v & 2u, d->arg);
}

void rl_fast_dead_slots(const struct rl_lock *l, uint64_t records,
			rl_slot_visit_fn *dead, void *arg)
{
	struct rl_dead_visit d = { dead, arg };

	rl_shared_slots_each(l, records, rl_dead_slot_range, &d);
}

static void rl_slot_free(_Atomic uint64_t *slot, uint64_t v, void *arg)
{
	(void)arg;
	/* seq_cst: after rl_fast_reclose()'s stores, so that a claimer that
	 * reads the slot free reads the dead range's close too (pairs with
	 * its seq_cst loads of the line) */
	atomic_compare_exchange_strong_explicit(slot, &v, 0,
						memory_order_seq_cst,
						memory_order_relaxed);
}

void rl_fast_free_slots(const struct rl_lock *l, uint64_t records)
{
	rl_shared_slots_each(l, records, rl_slot_free, NULL);
}

/* What rl_fast_reclose() builds before it stores it. */
struct rl_closes {
	struct rl_table t;
	uint64_t closed[RL_GROWN_LINES];
	uint64_t lo, hi;
	uint32_t wide;
};

static void rl_closes_add(struct rl_closes *c, uint64_t start, uint64_t end)
{
	struct rl_span s = rl_span_of(start, end, c->t.lines);

	if (s.wide) {
		c->lo = c->wide++ == 0 || start < c->lo ? start : c->lo;
		c->hi = end > c->hi ? end : c->hi;
		return;
	}
	for (unsigned k = 0; k < s.n; k++) {
		uint64_t *v = &c->closed[rl_span_line(&s, k)];

		*v = (*v + RL_COUNT_ONE) | rl_group_bit(s.first_block + k);
	}
}

static bool rl_closes_listed(struct rl_request *e, void *arg)
{
	rl_closes_add(arg, e->start, e->end);
	return false;   /* every one */
}

/*
 * rl_fast_reclose: every line's `closed` word and the window become what
 * the listed requests and `more` make them, as if each had been closed
 * once.  Each word is stored once, seq_cst: a group bit that both the old
 * and the new word have stays set throughout, so a listed request that
 * survives a recovery is never open to claims; a bit only the new word has
 * is a close (Dekker, as in rl_fast_close()); one only the old word has is
 * a reopen.  The bounds of a window that survives change from an old hull
 * to a new one, both covering every listed wide request, and a claimer
 * reads one of the three hulls their order allows (wide_hi last, as in
 * rl_window_widen()).
 */
void rl_fast_reclose(struct rl_lock *l, const struct rl_range *more,
		     unsigned n)
{
	struct rl_fast_home h = rl_shared_home(l);
	struct rl_closes c;

	memset(&c, 0, sizeof(c));
	c.t = h.t;
	if (!c.t.line || c.t.lines > RL_GROWN_LINES)
		return;
	rl_index_any(l, 0, UINT64_MAX, rl_closes_listed, &c);
	for (unsigned i = 0; i < n; i++)
		rl_closes_add(&c, more[i].start, more[i].end);
	for (unsigned i = 0; i < c.t.lines; i++) {
		uint64_t v = c.closed[i];

		/* the group bits are kept while the count is not zero */
		atomic_store_explicit(&c.t.line[i].closed, v >> 32 ? v : 0,
				      memory_order_seq_cst);
	}
	h.listed->wide = c.wide;
	atomic_store_explicit(&h.w->wide_lo, c.wide ? c.lo : 0,
			      memory_order_seq_cst);
	atomic_store_explicit(&h.w->wide_hi, c.wide ? c.hi : 0,
			      memory_order_seq_cst);
}

/* ---- ranges over several blocks (without the guard) ------------------- */

/*
 * A range of whole pages over 2..RL_CLAIM_BLOCKS blocks is held through a
 * slot in each block's line, for its part of the range: the parts are
 * claimed in block order, each exactly as a one-block range is (claim,
 * then rl_line_refuses()); the window is read once, after the last claim,
 * and the range is held when every part stands and the window is clear of
 * it.
 * At the first part that cannot be claimed or is refused, the parts
 * claimed so far are given back as a refused claim is (rl_blocks_store()),
 * and the precise path decides.  To the precise path a holder is a phantom
 * in each of its blocks, and a part is a one-block claim in every
 * respect, so the argument for one-block claims holds part by part
 * (doc/design.md, "Ranges over several blocks").  Nobody waits for a
 * part: two ranges that each claimed a part the other refuses both give
 * back and go to the precise path, which orders them.
 */

/* The parts of a range over several blocks: for the k-th block, its line
 * in the table, and the first byte and the slot value of the part of the
 * range in it. */
_Static_assert(RL_CLAIM_BLOCKS >= 2 && RL_CLAIM_BLOCKS <= 10 &&
		       RL_CLAIM_BLOCKS_SMALL >= 1 &&
		       RL_CLAIM_BLOCKS_SMALL <= RL_CLAIM_BLOCKS,
	       "3 bits of slot index a part fit below the table's size in "
	       "fast.value, and the small table takes no more than a grown one");

struct rl_parts {
	unsigned n;
	struct rl_segment *seg[RL_CLAIM_BLOCKS];
	uint64_t start[RL_CLAIM_BLOCKS];
	uint64_t value[RL_CLAIM_BLOCKS];
};

/* The parts of [start, end) (rl_blocks_of() says n of them) in table t. */
static void rl_parts_of(struct rl_parts *ps, unsigned n, uint64_t start,
			uint64_t end, bool exclusive, struct rl_table t)
{
	uint64_t page = start >> RL_PAGE_SHIFT, last = end >> RL_PAGE_SHIFT;

	ps->n = n;
	for (unsigned k = 0; k < n; k++) {
		uint64_t block = page >> RL_BLOCK_SHIFT;
		uint64_t next = (block + 1) << RL_BLOCK_SHIFT;

		if (next > last)
			next = last;
		ps->seg[k] = &t.line[rl_line_of_block(block, t.lines)];
		ps->start[k] = page << RL_PAGE_SHIFT;
		ps->value[k] = rl_slot_value(page, next - page, exclusive);
		page = next;
	}
}

static unsigned rl_block_slot(const struct rl_request *q, unsigned k)
{
	return (unsigned)(q->fast.value >> (3 * k)) & 7u;
}

/* After the k-th part's claim: rl_line_alone()'s quick pass, then, if the
 * line is not that simple, rl_line_refuses(). */
static rl_always_inline bool rl_part_refused(struct rl_lock *l,
					     const struct rl_parts *ps,
					     unsigned k, bool exclusive,
					     bool *met)
{
	return !rl_line_alone(ps->seg[k], ps->value[k], ps->start[k]) &&
	       rl_line_refuses(l, ps->seg[k], ps->value[k], ps->start[k],
			       rl_slot_end(ps->value[k], 0), exclusive, 0, met);
}

/*
 * rl_blocks_store: store in the slots of q's first `parts` parts their
 * values in ps (downgrade), or 0 (unlock, give back), then wake whom the
 * old values blocked, as rl_fast_release() does for one slot: the stores,
 * one fence, the reads of their lines' `closed` words and of the window,
 * and if any was closed the waiters over q's range are re-checked under
 * the guard, once.
 */
static void rl_blocks_store(struct rl_lock *l, const struct rl_request *q,
			    const struct rl_parts *ps, unsigned parts, bool keep)
{
	bool closed = false;
	unsigned k;

	for (k = 0; k < parts; k++)
		/* release: the range's writes, to whoever reads the slot next
		 * (pairs with the seq_cst loads of claims and scans); ordered
		 * before the reads below by the fence.  (Without fences, a
		 * seq_cst store does both.) */
		atomic_store_explicit(&ps->seg[k]->slot[rl_block_slot(q, k)],
				      keep ? ps->value[k] : 0,
				      RL_NO_FENCES ? memory_order_seq_cst
						   : memory_order_release);
	/* seq_cst: every store above before the reads below (Dekker with
	 * rl_fast_close(), as the seq_cst store of rl_fast_release() is): one
	 * fence for all the parts. */
	if (!RL_NO_FENCES)
		atomic_thread_fence(memory_order_seq_cst);
	for (k = 0; k < parts; k++)
		/* seq_cst: as in rl_fast_closed_word() */
		closed |= rl_group_closed(atomic_load_explicit(&ps->seg[k]->closed,
							       memory_order_seq_cst),
					  ps->start[k]);
	/* after every store, as rl_fast_release() reads it after its one */
	if (closed || rl_window_meets(&l->window, q->start, q->end))
		rl_fast_release_slow(l, q->start, q->end);
}

/* A look at the window before the claims, relaxed (the reads after them
 * decide): does it cover a part of [start, end) already?  Then the claims
 * would only be given back, under the guard, and the precise path decides
 * at once.  While wide requests come and go, this is most of the time.
 * (A line's group bit is looked at before each claim, in rl_line_claim().) */
static bool rl_window_covers(struct rl_lock *l, uint64_t start, uint64_t end)
{
	/* relaxed, both: a heuristic, as the peek in rl_line_claim() */
	return start < atomic_load_explicit(&l->window.wide_hi,
					    memory_order_relaxed) &&
	       atomic_load_explicit(&l->window.wide_lo, memory_order_relaxed) < end;
}

/* The claims of rl_fast_lock_blocks(), out of line: a range that does not
 * qualify pays nothing for them. */
static __attribute__((noinline)) bool
rl_claim_blocks(struct rl_lock *l, struct rl_request *q, struct rl_table t,
		unsigned n, uint64_t start, uint64_t end, bool exclusive)
{
	unsigned parts = 0;
	uint64_t slots = 0;
	bool stands = true, met = false;
	struct rl_parts ps;

	rl_parts_of(&ps, n, start, end, exclusive, t);
	while (stands && parts < n) {
		unsigned i = rl_line_claim(ps.seg[parts], ps.value[parts],
					   ps.start[parts]);

		if (i == RL_SLOTS) {
			stands = false;
			break;
		}
		slots |= (uint64_t)i << (3 * parts);
		rl_line_mark(t, ps.seg[parts]);
		stands = !rl_part_refused(l, &ps, parts++, exclusive, &met);
	}
	/* after every claim, as rl_fast_alone() reads it after its one */
	stands = stands && !rl_window_meets(&l->window, start, end);
	q->start = start;
	q->end = end;
	q->exclusive = exclusive;
	q->fast.seg = t.line;
	q->fast.value = (uint64_t)t.lines << 32 | slots;
	q->fast.slot = RL_SLOT_BLOCKS;
	if (stands) {
		q->fast.self = q;
		/* relaxed: the owner's own bookkeeping. */
		atomic_store_explicit(&q->state, RL_FAST, memory_order_relaxed);
	} else if (parts) {
		rl_blocks_store(l, q, &ps, parts, false);
	}
	if (met)
		rl_fast_note_settler(l);   /* if its table is the small one */
	return stands;
}

bool rl_fast_lock_blocks(struct rl_lock *l, struct rl_request *q,
			 unsigned n, uint64_t start, uint64_t end, bool exclusive)
{
	/* acquire: as in rl_fast_lock() */
	struct rl_table t = rl_table_decode(
		atomic_load_explicit(&l->table, memory_order_acquire));

	if (!t.line || (n > RL_CLAIM_BLOCKS_SMALL && t.lines == RL_SMALL_LINES) ||
	    rl_window_covers(l, start, end))
		return false;
	return rl_claim_blocks(l, q, t, n, start, end, exclusive);
}

/* Does q hold its range over several blocks of a table of l's?  Then ps
 * has its parts.  (A stale, forged or copied handle does not.) */
static bool rl_fast_owns_blocks(const struct rl_lock *l,
				const struct rl_request *q, struct rl_parts *ps)
{
	/* acquire: the grown table's head (`old`), as in
	 * rl_fast_in_old_table() */
	struct rl_table t = rl_table_decode(
		atomic_load_explicit(&l->table, memory_order_acquire));
	unsigned lines = (unsigned)(q->fast.value >> 32);
	unsigned n = rl_blocks_of(q->start, q->end);

	if (q->fast.slot != RL_SLOT_BLOCKS || q->fast.self != q || !n ||
	    !t.line)
		return false;
	if (q->fast.seg != t.line || lines != t.lines) {
		/* the first line of the small table it replaced, exactly:
		 * the parts' lines are found from it */
		t = rl_table_replaced(t);
		if (!t.line || q->fast.seg != t.line || lines != t.lines)
			return false;
	}
	rl_parts_of(ps, n, q->start, q->end, q->exclusive, t);
	for (unsigned k = 0; k < n; k++)
		/* relaxed: our own slot; only we change it while it holds
		 * our value. */
		if (rl_block_slot(q, k) >= RL_SLOTS ||
		    atomic_load_explicit(&ps->seg[k]->slot[rl_block_slot(q, k)],
					 memory_order_relaxed) != ps->value[k])
			return false;
	return true;
}

int rl_fast_unlock_blocks(struct rl_lock *l, struct rl_request *q)
{
	struct rl_parts ps;

	if (!rl_fast_owns_blocks(l, q, &ps))
		return EINVAL;
	/* relaxed: the owner's own bookkeeping. */
	atomic_store_explicit(&q->state, RL_IDLE, memory_order_relaxed);
	rl_blocks_store(l, q, &ps, ps.n, false);
	return 0;
}

static int rl_fast_downgrade_blocks(struct rl_lock *l, struct rl_request *q)
{
	struct rl_parts ps;

	if (!rl_fast_owns_blocks(l, q, &ps) || !q->exclusive)
		return EINVAL;
	q->exclusive = false;
	for (unsigned k = 0; k < ps.n; k++)
		ps.value[k] &= ~(uint64_t)2u;
	rl_blocks_store(l, q, &ps, ps.n, true);
	return 0;
}
