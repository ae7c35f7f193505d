/* SPDX-License-Identifier: MIT */
/*
 * rl_internal.h - the private layout of rangelock_t and rangelock_range_t,
 * and the internal interfaces between the library's files.
 *
 * Nothing here is exported: every name is rl_ and hidden.
 *
 * The protocol in two paragraphs (doc/design.md has the argument).
 *
 * The fast path (rl_fast.c): a lock owns a table of cache lines (32, or
 * 128 once threads meet in them); the object's pages map onto them in
 * blocks of RL_BLOCK_PAGES.  A
 * range of 1..RL_FAST_MAX_PAGES whole pages, or of up to RL_BYTE_MAX bytes,
 * inside one block is taken by claiming a slot of its line with one CAS
 * and checking the line's other slots; it is released by clearing the
 * slot.  Whole pages over a few blocks take a slot in each block's line,
 * one block at a time.  Threads on distant pages write different lines,
 * and nothing is walked.
 *
 * The precise path: every other request, and any fast one that meets a
 * conflict, is listed in arrival order (the index, rl_index.c: an interval
 * tree), guarded by a small futex mutex (the guard).  Before it looks for
 * conflicts it *closes* the fast path over its range (its group's bit in
 * each of its lines, or the lock's window for a wide range), so no new fast
 * claim overlapping it succeeds; the fast holders already there
 * ("phantoms") count as requests earlier than every listed one.  The
 * invariant is
 *
 *     a request on the list is held  <=>  it conflicts with no phantom and
 *                                         no earlier request on the list.
 *
 * Requests only ever leave (unlock, timeout) or become weaker (downgrade),
 * so the waiters that can become unblocked are the ones that overlap the
 * request that left or weakened; rl_queue_grant_after() re-checks exactly
 * those.  A fast holder that leaves where its range was closed does the
 * same re-check under the guard.  A line's bits clear when no listed
 * request maps to it, the window empties when no wide one is listed.
 */
#ifndef RL_INTERNAL_H
#define RL_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "rangelock.h"

#define rl_hidden __attribute__((visibility("hidden")))
#define rl_likely(x) __builtin_expect(!!(x), 1)
#define rl_unlikely(x) __builtin_expect(!!(x), 0)
/* for the few fast-path helpers that must not become calls */
#define rl_always_inline inline __attribute__((always_inline))

/*
 * Request state: the futex word of one rangelock_range_t.
 *
 *   RL_IDLE      not on any list (never used, unlocked, or withdrawn);
 *   RL_WAITING   on the list, owner spinning on the word;
 *   RL_SLEEPING  on the list, owner asleep (or about to be) in futex_wait;
 *   RL_HELD      on the list and granted.
 *
 * The non-zero values are spelled so that a handle full of stale stack bytes
 * is unlikely to pass for a held one.  Transitions:
 *   IDLE -> HELD | WAITING        under the guard, by the requester;
 *   WAITING -> SLEEPING           by the requester, CAS, without the guard;
 *   WAITING | SLEEPING -> HELD    under the guard, by the granter (exchange);
 *   WAITING | SLEEPING -> IDLE    under the guard, by a requester timing out;
 *   HELD -> IDLE                  under the guard, by unlock;
 *   IDLE -> FAST -> IDLE          by the owner alone (fast lock, unlock);
 *   IDLE -> SLOT_SHARED -> IDLE   the same, in a shared region's table.
 */
enum rl_state {
	RL_IDLE = 0,
	RL_WAITING = 0x57414954u,  /* "WAIT" */
	RL_SLEEPING = 0x534c5050u, /* "SLPP" */
	RL_HELD = 0x48454c44u,     /* "HELD" */
	RL_FAST = 0x46415354u,     /* "FAST": held through a slot, not listed */
	/* a caller's handle of a shared lock: its request is a node of the
	 * region (remote.node), whose state is one of the above */
	RL_REMOTE = 0x524d4f54u,   /* "RMOT" */
	RL_FREE = 0x46524545u,     /* "FREE": a region's node not in use */
	/* a caller's handle of a shared lock, held through a slot of the
	 * region's table (its fast fields as for RL_FAST) */
	RL_SLOT_SHARED = 0x46534852u,   /* "FSHR" */
};

/* fast.slot of a range held over several blocks (rl_fast_lock_blocks()):
 * fast.seg is then the first line of the table it holds slots in, and
 * fast.value its table's size << 32 | the slot of its k-th block in bits
 * 3k..3k+2. */
#define RL_SLOT_BLOCKS 0xffu

/*
 * A link of the index: in a process's own lock, the address of a listed
 * handle; in a lock that processes share, the offset of a request node from
 * the start of the region, checked before use (struct rl_tree).  0 is none.
 */
typedef uintptr_t rl_ref;

/* The private layout of rangelock_range_t, and of a shared region's
 * request nodes. */
struct rl_request {
	union {
		struct {          /* listed (RL_WAITING, SLEEPING, HELD) */
			rl_ref left;       /* the index (rl_index.c); guard */
			rl_ref right;      /* guard */
			uint64_t max_end;  /* largest end in this subtree; guard */
			uint64_t seq;      /* arrival number: FIFO order; guard */
			/* acquiring thread (debug mode); in a shared region,
			 * the owner's tag (rl_shared.c); guard */
			uint64_t owner;
		};
		struct {          /* RL_FAST; the owner's */
			struct rl_segment *seg;   /* the line of its slot */
			uint64_t value;           /* what its slot holds */
			/* The handle's own address, set by its lock call: a
			 * copy of a held handle (memcpy) is refused by unlock
			 * and downgrade in O(1), instead of freeing the
			 * original's slot.  (A copy of a listed handle is
			 * not found in the index.) */
			const struct rl_request *self;
			uint8_t slot;             /* index of its slot in seg,
						   * or RL_SLOT_BLOCKS */
		} fast;
		struct {          /* RL_REMOTE: a handle of a shared lock */
			rl_ref node;              /* its node in the region */
			uint64_t tag;             /* the node's owner tag */
			const struct rl_request *self;   /* as fast.self */
		} remote;
	};
	uint64_t start;           /* [start, end); guard, or owner while FAST */
	uint64_t end;
	_Atomic uint32_t state;   /* enum rl_state; futex word */
	/* 0 or 1; guard, or owner while RL_FAST.  (This and owner_died are
	 * bytes, not bools: in a shared region a scribbled node must be read
	 * without undefined behaviour.) */
	uint8_t exclusive;
	int8_t balance;           /* in the index: right height - left; guard */
	/* a shared region's node: granted over a range that a dead process
	 * held exclusive (EOWNERDEAD); guard */
	uint8_t owner_died;
	/* a shared region's node: its owner's lock call has seen it held (so
	 * it may have written under it); set once, read by recovery */
	_Atomic uint8_t seen;
};

/*
 * The fast path's geometry.  Page p belongs to block p / RL_BLOCK_PAGES,
 * block b to group b / 32 (8 MiB), and to line (b + rotation of its group)
 * % n of a table of n lines, the rotation being a hash of the group's
 * number (rl_line_of_block).  The 32 blocks of a group get distinct lines,
 * as with b % 32; blocks a multiple of a group apart (power of two
 * strides: per-thread regions, striping) do not all share one.
 *
 * A lock's first table has RL_SMALL_LINES lines (2 KiB).  Once threads are
 * seen to meet in its lines, it is replaced, once, by a table of
 * RL_GROWN_LINES (rl_fast_grow(), doc/design.md).
 */
#define RL_PAGE_SHIFT 12
#define RL_BLOCK_SHIFT 6                      /* 64 pages, 256 KiB */
#define RL_BLOCK_PAGES (1u << RL_BLOCK_SHIFT)
#define RL_GROUP_BLOCKS 32u                   /* 8 MiB */
#define RL_SMALL_LINES 32u                    /* 2 KiB */
#ifndef RL_GROWN_LINES   /* -DRL_GROWN_LINES=n: only for measuring */
#define RL_GROWN_LINES 128u                   /* 8 KiB */
#endif
#ifndef RL_GROW_AFTER    /* -DRL_GROW_AFTER=n: only for measuring */
/* how many times the thread settling a claim in the small table must
 * change before the lock grows (rl_fast_settle()) */
#define RL_GROW_AFTER 64
#endif
#define RL_SLOTS 7
#define RL_FAST_MAX_PAGES RL_BLOCK_PAGES      /* up to a whole block */
/* A range of whole pages over 2..RL_CLAIM_BLOCKS blocks (any 256 pages) is
 * fast too, once the table has grown: a slot in each block's line, for its
 * part of the range (rl_fast_lock_blocks()).  In the small table, only
 * over up to RL_CLAIM_BLOCKS_SMALL: one guard section costs less than four
 * or five claims, and a lock that has not grown is not contended
 * (doc/design.md). */
#ifndef RL_CLAIM_BLOCKS   /* -DRL_CLAIM_BLOCKS=n: only for measuring */
#define RL_CLAIM_BLOCKS 5
#endif
#ifndef RL_CLAIM_BLOCKS_SMALL   /* the same */
#define RL_CLAIM_BLOCKS_SMALL (RL_CLAIM_BLOCKS < 3 ? RL_CLAIM_BLOCKS : 3)
#endif
/* A range that is not whole pages is fast (a byte slot) if it is at most
 * RL_BYTE_MAX bytes inside one block, below RL_BYTE_LIMIT. */
#define RL_BYTE_MAX 8192u
#define RL_BYTE_LIMIT ((uint64_t)1 << 45)     /* 32 TiB */
/* A range of this many blocks or more is *wide*: it closes the fast path
 * with the lock's window, not line by line. */
#ifndef RL_WIDE_BLOCKS   /* -DRL_WIDE_BLOCKS=n: only for measuring */
#define RL_WIDE_BLOCKS 4                      /* 1 MiB: doc/design.md */
#endif

/* The line of block b in a table of `lines` lines (a power of two, a
 * multiple of 32). */
static inline unsigned rl_line_of_block(uint64_t block, unsigned lines)
{
	/* the top bits of the group's number times 2^64 / golden ratio
	 * (Fibonacci hashing): a rotation that differs between groups a
	 * power of two apart, however far */
	uint64_t rotation = (block / RL_GROUP_BLOCKS) * 0x9E3779B97F4A7C15ull >> 53;

	_Static_assert(RL_GROWN_LINES > RL_SMALL_LINES && RL_GROWN_LINES <= 2048 &&
			       (RL_GROWN_LINES & (RL_GROWN_LINES - 1)) == 0,
		       "a grown table is larger, a power of two, and the "
		       "rotation's 11 bits cover it");
#ifdef RL_LINE_MODULO   /* version 2's b % 32: only for measuring */
	rotation = 0;
#endif
	return (unsigned)((block + rotation) & (lines - 1));
}

/* The bit of block b's group in its line's `closed` word: consecutive
 * groups get distinct bits, and runs of 32 groups (256 MiB) are rotated by
 * a hash of their number, as lines are, so that groups a power of two
 * apart do not all share a bit. */
static inline uint32_t rl_group_bit(uint64_t block)
{
	uint64_t group = block / RL_GROUP_BLOCKS;
	uint64_t rotation = (group / 32) * 0x9E3779B97F4A7C15ull >> 59;

	return 1u << ((group + rotation) & 31);
}

/*
 * One cache line of the table.  A slot is 0 (free) or a fast holder's
 * range, below 2^61: whole pages are
 *     first page << 8 | (pages - 1) << 2 | exclusive << 1 | 1,
 * other ranges (a byte slot, bit 60 set)
 *     1 << 60 | start << 15 | (bytes - 1) << 2 | exclusive << 1 | 1.
 * `closed` is count << 32 | groups: how many narrow listed requests map to
 * this line, and the bits of the groups they map to it from (bit g % 32),
 * with RL_LINE_DRAINING (bit 63) set for a while after a table grew.  A
 * claim in a block whose group's bit is set fails; the bits are cleared
 * when the count reaches zero.
 */
struct rl_segment {
	_Alignas(64) _Atomic uint64_t closed;
	_Atomic uint64_t slot[RL_SLOTS];
};

/* A line of a closed table (one that a grown table replaced): every group
 * bit set, and never reopened. */
#define RL_LINE_RETIRED UINT64_MAX
/* The top bit of a grown table's `closed` words while the small table it
 * replaced may still have holders: a claim must check the small table's
 * line of its block too (rl_fast_settle()).  Not a group bit, and not part
 * of the count (bits 32..62). */
#define RL_LINE_DRAINING ((uint64_t)1 << 63)

/* The window: [wide_lo, wide_hi) covers every listed wide request's range
 * (their hull since `wide` was last zero); empty when wide_hi == 0.
 * Written under the guard, read by fast claims. */
struct rl_window {
	_Atomic uint64_t wide_lo;
	_Atomic uint64_t wide_hi;
};

/* Words of a table's marks, a bit a line: enough for the grown table. */
#define RL_MARK_WORDS ((RL_GROWN_LINES + 63) / 64)

/* The line before a table's first. */
struct rl_table_head {
	/* the small table that this grown one replaced; guard */
	_Alignas(64) struct rl_segment *old;
	/* small table: how many times the thread settling a claim changed
	 * << 32 | the last one's tag (rl_fast_settle(); a heuristic, relaxed) */
	_Atomic uint64_t settlers;
	/* bit i of marked[i / 64]: line i may have a slot taken.  Set by
	 * claimers after their claim (rl_line_mark()), cleared only under the
	 * guard by a tidy that found the line empty (rl_marks_tidy();
	 * doc/design.md, "Tidying"). */
	_Atomic uint64_t marked[RL_MARK_WORDS];
	/* a shared region's window, beside the marks that every claim reads
	 * too (a process's own lock keeps its window in the lock) */
	struct rl_window window;
};

/* One wide request in RL_TIDY_EVERY tidies the marks: a line tidied costs
 * the next claim in it a locked instruction on the table's head, which all
 * claimers read (`file` with 2 threads, one request in 100 to EOF, lost
 * 13% tidying every 16th, 6% every 64th; doc/design.md). */
#ifndef RL_TIDY_EVERY   /* -DRL_TIDY_EVERY=1: every one, for the stress */
#define RL_TIDY_EVERY 256
#endif

/* A table as the lock's `table` word names it: its first line | (lines /
 * 32 - 1), lines being 64-byte aligned; 0 for none. */
struct rl_table {
	struct rl_segment *line;
	unsigned lines;           /* how many: a power of two, 32 or more */
};

/* How many words of its head's marks a table uses. */
static rl_always_inline unsigned rl_mark_words(struct rl_table t)
{
	return (t.lines + 63) / 64;
}

static inline uintptr_t rl_table_encode(struct rl_segment *line, unsigned lines)
{
	return (uintptr_t)line | (lines / 32 - 1);
}

static inline struct rl_table rl_table_decode(uintptr_t word)
{
	return (struct rl_table){ (struct rl_segment *)(word & ~(uintptr_t)63),
				  ((unsigned)(word & 63) + 1) * 32 };
}

static inline struct rl_table_head *rl_table_head(struct rl_segment *line)
{
	return (struct rl_table_head *)(void *)(line - 1);
}

/* The precise path's counts and its index; in the lock, or in the region
 * of a shared one.  All under the guard. */
struct rl_listed {
	rl_ref root;              /* the index of listed requests */
	uint64_t arrivals;        /* seq of the newest request */
	uint32_t waiting;         /* listed requests not granted */
	uint32_t wide;            /* listed wide requests */
};

/* The private layout of rangelock_t.  All zero is an unlocked lock. */
struct rl_lock {
	_Atomic uint32_t guard;   /* 0 free, 1 locked, 2 locked with sleepers */
	uint32_t flags;           /* RANGELOCK_DEBUG, RL_NO_TABLE, RL_DRAINING;
				   * guard */
	union {
		struct rl_listed listed;   /* a process's own lock */
		struct {          /* attached to a shared region (rl_shared.c) */
			/* where it is mapped here: it begins with the fast
			 * path's table (rl_shared_table()) */
			void *region;
			uint32_t nodes;    /* the region's node count */
			uint32_t record;   /* this process's record in it */
			uint32_t forks;    /* rl_forks when attached */
			uint32_t generation;   /* the record's, when claimed */
		} shared;
	};
	/* The fast path's table (struct rl_table, encoded), or 0: set under
	 * the guard, at most twice (set up, grown); freed by destroy. */
	_Atomic uintptr_t table;
	/* The window of a process's own lock (a shared one's is in its
	 * region). */
	struct rl_window window;
	/* wide requests that closed the fast path, counted with wrap-around:
	 * every RL_TIDY_EVERY-th tidies the marks (rl_fast_close()); guard */
	uint32_t wide_arrivals;
	/* RL_MODE_SHARED: attached to a region; set by init and attach only,
	 * read without the guard */
	uint8_t mode;
};

#define RL_MODE_SHARED 1

/* flags bits: allocating the table failed, do not try again; the table
 * grew, and fast holders may remain in the small one (its phantoms are
 * scanned too until none is left). */
#define RL_NO_TABLE 0x80000000u
#define RL_DRAINING 0x40000000u

static inline struct rl_lock *rl_lock_of(rangelock_t *lk)
{
	return (struct rl_lock *)(void *)lk;
}

static inline struct rl_request *rl_request_of(rangelock_range_t *r)
{
	return (struct rl_request *)(void *)r;
}

static inline bool rl_is_shared(const struct rl_lock *l)
{
	return rl_unlikely(l->mode == RL_MODE_SHARED);
}

/* A shared region begins with its fast path: a table's head (with the
 * region's window) and RL_SHARED_LINES lines, a table that never grows.
 * The rest of the region follows (rl_shared.c). */
#define RL_SHARED_LINES RL_GROWN_LINES
#define RL_SHARED_TABLE_BYTES                                              \
	(sizeof(struct rl_table_head) + RL_SHARED_LINES * sizeof(struct rl_segment))

static rl_always_inline struct rl_table rl_shared_table(const struct rl_lock *l)
{
	return (struct rl_table){ (struct rl_segment *)l->shared.region + 1,
				  RL_SHARED_LINES };
}

static rl_always_inline struct rl_window *rl_shared_window(const struct rl_lock *l)
{
	return &((struct rl_table_head *)l->shared.region)->window;
}

/* rl_shared.c: bumped in the child of every fork; a view attached before
 * it belongs to the parent. */
rl_hidden extern _Atomic uint32_t rl_forks;

/* Is this view the process's own, not a forked child's copy of its
 * parent's? */
static rl_always_inline bool rl_view_ours(const struct rl_lock *l)
{
	/* relaxed: a count only this process's fork handler writes */
	return l->shared.forks ==
	       atomic_load_explicit(&rl_forks, memory_order_relaxed);
}

/* rl_futex.c: the only place that makes futex system calls.  A shared
 * word is in memory that processes share (no FUTEX_PRIVATE_FLAG). */
rl_hidden int rl_futex_wait(_Atomic uint32_t *word, uint32_t expected,
			    const struct timespec *abstime, bool shared);
rl_hidden void rl_futex_wake(_Atomic uint32_t *word, int nr_waiters,
			     bool shared);
rl_hidden void rl_cpu_relax(void);

/* How long a shared lock's waiter sleeps before it looks for dead blockers
 * (rl_wait.c), and a guard waiter for a dead holder (rl_shared.c). */
#define RL_POLL_NS 10000000L   /* 10 ms: doc/design.md, "Processes" */

/* rl_shared.c: a lock in memory that processes share.  Every function
 * here but rl_shared_tree and rl_shared_listed needs the guard or takes
 * it. */
struct rl_tree;
rl_hidden void rl_shared_guard_lock(struct rl_lock *l);
rl_hidden void rl_shared_guard_unlock(struct rl_lock *l);
rl_hidden struct rl_listed *rl_shared_listed(const struct rl_lock *l);
rl_hidden struct rl_tree rl_shared_tree(const struct rl_lock *l);
rl_hidden int rl_shared_node_alloc(struct rl_lock *l, struct rl_request **out);
rl_hidden int rl_shared_handle(struct rl_lock *l, struct rl_request *q,
			       struct rl_request *n);
rl_hidden bool rl_shared_refused(struct rl_lock *l, uint64_t start,
				 uint64_t end, bool exclusive);
rl_hidden int rl_shared_release(struct rl_lock *l, struct rl_request *q,
				bool downgrade);
rl_hidden int rl_shared_detach(struct rl_lock *l);
rl_hidden void rl_shared_granted(struct rl_lock *l, struct rl_request *q);
rl_hidden void rl_shared_node_free(struct rl_lock *l, struct rl_request *q);
rl_hidden bool rl_shared_poll(struct rl_lock *l, struct rl_request *q);

/* rl_guard.c: the mutex that guards a lock's precise path. */
rl_hidden void rl_guard_lock_slowpath(_Atomic uint32_t *guard);

/* A private lock's guard (a shared lock's: rl_shared_guard_lock()). */
static inline void rl_guard_lock(struct rl_lock *l)
{
	uint32_t free_value = 0;

	/* acquire: the index as the last holder left it; pairs with the release
	 * in rl_guard_unlock(). */
	if (rl_likely(atomic_compare_exchange_strong_explicit(
		    &l->guard, &free_value, 1, memory_order_acquire,
		    memory_order_relaxed)))
		return;
	rl_guard_lock_slowpath(&l->guard);
}

static inline void rl_guard_unlock(struct rl_lock *l)
{
	/* release: publish index changes; pairs with the acquire in
	 * rl_guard_lock() and rl_guard_lock_slowpath(). */
	if (rl_unlikely(atomic_exchange_explicit(&l->guard, 0,
						 memory_order_release) == 2))
		rl_futex_wake(&l->guard, 1, false);
}

/* The guard of a lock of either kind, for the paths both take (a timed
 * waiter's withdrawal, white-box tests). */
static inline void rl_guard_lock_any(struct rl_lock *l)
{
	if (rl_is_shared(l))
		rl_shared_guard_lock(l);
	else
		rl_guard_lock(l);
}

static inline void rl_guard_unlock_any(struct rl_lock *l)
{
	if (rl_is_shared(l))
		rl_shared_guard_unlock(l);
	else
		rl_guard_unlock(l);
}

/* The precise path's counts and index of l; guard. */
static inline struct rl_listed *rl_listed_of(struct rl_lock *l)
{
	return rl_is_shared(l) ? rl_shared_listed(l) : &l->listed;
}

/* Where a lock's fast path keeps its state: the slot table (line NULL for
 * none yet), the window and the counts, and how many bits of a slot value
 * name its owner (0, or RL_OWNER_BITS in a shared region: rl_fast.h).  A
 * process's own lock keeps them in itself; a shared one in its region, at
 * fixed places (rl_shared_home()). */
struct rl_fast_home {
	struct rl_table t;
	struct rl_window *w;
	struct rl_listed *listed;
	unsigned ob;
};

rl_hidden struct rl_fast_home rl_shared_home(const struct rl_lock *l);

/* A process's own lock's home.  (Each function that serves both kinds
 * tests the mode once and runs an inline body on one home or the other:
 * a call for the shared home in the same body cost every private call a
 * stack frame, 10-27 instructions.) */
static rl_always_inline struct rl_fast_home rl_home_private(struct rl_lock *l)
{
	/* relaxed: written only under the guard, which the callers hold (or
	 * the owner's acquire load when it locked: rl_fast_owns_slot()) */
	return (struct rl_fast_home){
		rl_table_decode(atomic_load_explicit(&l->table, memory_order_relaxed)),
		&l->window, &l->listed, 0
	};
}

/*
 * How the index reaches its nodes.  In a process's own lock a link is a
 * handle's address (base 0) and nothing is checked.  In a shared region a
 * link is an offset from base, the region's address in this process, and
 * must name one of the `nodes` nodes that start at `first`; anything else
 * (a region scribbled on) marks the region broken and reads as no node.
 */
struct rl_tree {
	rl_ref *root;
	uintptr_t base;
	uintptr_t first;          /* shared: offset of the first node */
	uintptr_t nodes;          /* shared: how many; 0 in a private lock */
	uintptr_t budget;         /* shared: nodes a visit may still read */
	_Atomic uint32_t *broken; /* shared: set when a link is not a node */
};

static inline struct rl_tree rl_tree_of(const struct rl_lock *l)
{
	if (rl_is_shared(l))
		return rl_shared_tree(l);
	return (struct rl_tree){ .root = (rl_ref *)&l->listed.root };
}

/* rl_index.c: the listed requests as an interval tree; guard. */
typedef bool rl_index_visit_fn(struct rl_request *e, void *arg);
rl_hidden void rl_index_insert(struct rl_lock *l, struct rl_request *q);
rl_hidden void rl_index_reinsert(struct rl_lock *l, struct rl_request *q);
rl_hidden bool rl_index_remove(struct rl_lock *l, struct rl_request *q);
rl_hidden bool rl_index_contains(const struct rl_lock *l,
				 const struct rl_request *q);
rl_hidden bool rl_index_any(const struct rl_lock *l, uint64_t start,
			    uint64_t end, rl_index_visit_fn *visit, void *arg);

/* rl_queue.c: the grant policy over the index; every function needs the
 * guard. */
static inline bool rl_overlaps(const struct rl_request *a, uint64_t start,
			       uint64_t end)
{
	return a->start < end && start < a->end;
}

rl_hidden bool rl_queue_conflicts(const struct rl_lock *l, uint64_t start,
				  uint64_t end, bool exclusive);
rl_hidden bool rl_queue_thread_overlaps(const struct rl_lock *l,
					 uint64_t owner, uint64_t start,
					 uint64_t end);
rl_hidden bool rl_queue_contains(const struct rl_lock *l,
				 const struct rl_request *q);
rl_hidden void rl_queue_append(struct rl_lock *l, struct rl_request *q);
rl_hidden bool rl_queue_leave(struct rl_lock *l, struct rl_request *q);
rl_hidden void rl_queue_grant_after(struct rl_lock *l, uint64_t after,
				    uint64_t start, uint64_t end);

/* rl_fast.c: the slot table (the inline fast path is in rl_fast.h).
 * rl_fast_downgrade runs without the guard; the rest need it. */
rl_hidden int rl_fast_downgrade(struct rl_lock *l, struct rl_request *q);
rl_hidden void rl_fast_setup(struct rl_lock *l);
rl_hidden void rl_fast_grow(struct rl_lock *l);   /* takes the guard */
rl_hidden void rl_fast_close(struct rl_lock *l, uint64_t start, uint64_t end);
rl_hidden void rl_fast_reopen(struct rl_lock *l, uint64_t start, uint64_t end);
rl_hidden bool rl_fast_phantoms_conflict(const struct rl_lock *l,
					 uint64_t start, uint64_t end,
					 bool exclusive);
rl_hidden bool rl_fast_busy(const struct rl_lock *l);
rl_hidden void rl_fast_teardown(struct rl_lock *l);

/* rl_fast.c, for a shared region's recovery (guard): which records (a bit
 * each) own a slot that conflicts with [start, end); call `dead` for each
 * slot owned by one of `records`, or free them all; and rebuild
 * every line's `closed` word and the window from the listed requests and
 * n more ranges (what a dead guard holder left half done is not
 * trusted). */
struct rl_range {
	uint64_t start, end;
};
typedef void rl_slot_visit_fn(uint64_t start, uint64_t end, bool exclusive,
			      void *arg);
rl_hidden uint64_t rl_fast_phantom_owners(const struct rl_lock *l,
					  uint64_t start, uint64_t end,
					  bool exclusive);
rl_hidden void rl_fast_dead_slots(const struct rl_lock *l, uint64_t records,
				  rl_slot_visit_fn *dead, void *arg);
rl_hidden void rl_fast_free_slots(const struct rl_lock *l, uint64_t records);
rl_hidden void rl_fast_reclose(struct rl_lock *l, const struct rl_range *more,
			       unsigned n);

/* rl_wait.c: the requester's side of a wait, and deadlines. */
rl_hidden bool rl_deadline_within(const struct timespec *abstime, long ns);
rl_hidden struct timespec rl_deadline_in(long ns);
rl_hidden int rl_wait_granted(struct rl_lock *l, struct rl_request *q,
			      const struct timespec *abstime);

#endif /* RL_INTERNAL_H */
