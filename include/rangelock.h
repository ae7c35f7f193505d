/* SPDX-License-Identifier: MIT */
/*
 * rangelock.h - shared/exclusive byte-range locks.
 *
 * Overview
 * --------
 * A rangelock_t guards one object (a file, a mapping, any big buffer) whose
 * parts are used by many threads at once.  A thread locks a half-open byte
 * range [start, end) of it, shared (rdlock) or exclusive (wrlock), with a
 * caller-allocated rangelock_range_t that stands for that one acquisition.
 *
 *   - Two ranges conflict when they overlap and at least one is exclusive.
 *     Adjacent ranges ([0,10) and [10,20)) never conflict.
 *   - end == RANGELOCK_EOF means "through the end of the object, however
 *     big".  start >= end is EINVAL: there are no empty ranges.
 *   - FIFO among conflicts, no barging: a request is granted only when it
 *     conflicts with no held range and with no earlier request that is still
 *     waiting.  A shared request that overlaps a queued exclusive one waits
 *     behind it, so writers cannot starve; a request that overlaps nothing is
 *     granted at once, whatever else waits.
 *   - No recursion.  A thread that locks a range overlapping one it already
 *     holds may deadlock (even shared over shared, when an exclusive request
 *     is queued between them).  Locks created with RANGELOCK_DEBUG detect
 *     this and return EDEADLK instead of blocking.
 *   - Waiting spins briefly, yields, and then sleeps on a futex in the
 *     caller's rangelock_range_t; a release wakes only the waiters it
 *     unblocks.
 *   - Cost: a range of 1..64 whole 4096-byte pages inside one 256 KiB
 *     block, or of up to 8 KiB inside one below 32 TiB, is taken with one
 *     compare-and-swap and released with one store, on one of 32 cache
 *     lines chosen by a hash of the block (128 once threads are seen
 *     meeting in them; neighbouring blocks never share one; distant
 *     blocks, at any stride, by a 1-in-32 or 1-in-128 chance), unless it
 *     meets a conflict, a full line, or a request of the precise path that
 *     overlaps its group of blocks (8 or 32 MiB; ranges of 1 MiB or more,
 *     and to RANGELOCK_EOF: only where they lie).  Whole pages over 2 or
 *     3 blocks (over up to 5, any 256 pages, once the lock has 128 lines)
 *     take one such slot in each block's line, the same way.  The
 *     precise path takes every other range under a mutex and finds the
 *     ranges it meets in an interval tree: O(log n) in the n held or
 *     waiting there, plus those that overlap it; it looks for fast holders
 *     only in the lines that claims have used lately.
 *   - Memory: besides the two types, a lock allocates a 2 KiB table (for
 *     the fast path, plus a 64-byte head) the first time a lock call needs
 *     it, and once, when claims of different threads keep meeting in its
 *     lines, an 8 KiB one that replaces it (the small one is kept until
 *     destroy); rangelock_destroy frees both.  A lock only one thread at a
 *     time uses does not grow.  No other call allocates, and no lock call
 *     fails for lack of memory: without a table the lock is only slower,
 *     without the larger one only less parallel.
 *   - A rangelock_t is private to one process (FUTEX_PRIVATE): do not put
 *     one in memory shared between processes.  Processes share a lock
 *     through a *region* instead (rangelock_shared_init(), below): each
 *     process attaches a rangelock_t of its own to it and makes the same
 *     calls, with the same semantics, on it.
 *
 * Errors are returned, never stored in errno: 0 or a positive errno value.
 * Every call that fails leaves the lock exactly as it was.  A NULL lock or
 * handle is undefined behaviour, as for pthread's locks (the prototypes
 * say nonnull, so compilers warn where they can see it); so are init of a
 * lock in use, and any call on a destroyed lock but init and destroy.
 *
 * Ordering: a successful lock call is an acquire operation, unlock and
 * downgrade are release operations.  Everything a thread wrote while it held
 * a range happens before everything a later holder of a conflicting range
 * reads after its lock call returns.
 *
 * Synchronization (X: may run concurrently on the same object, -: must not)
 *
 *                          | other call, same lock | same rangelock_range_t
 *   init, destroy          |           -           |          n/a
 *   lock (any variant)     |           X           |           -
 *   unlock, downgrade      |           X           |           -
 *
 * A rangelock_range_t belongs to the lock from the start of the lock call
 * that succeeds with it until unlock returns: while it is held or waiting it
 * must not be moved, freed or passed to another lock call.  It needs no
 * initialisation; after unlock (or a failed lock call) it may be reused.
 * Unlock may be called from any thread.  A copy of a held handle (memcpy)
 * is not the handle: unlock and downgrade refuse it with EINVAL and leave
 * the range held by the original.
 *
 * Threads, fork and cancellation, as for pthread locks:
 *   - A range stays held when the thread that locked it exits; another
 *     thread may unlock it.  In debug mode it is charged to the thread that
 *     locked it, never to a later thread (each thread has an identity no
 *     other thread of the process gets).
 *   - fork(): the child gets a copy of every lock as it was, with the
 *     ranges the parent's threads held or waited for, whose threads do not
 *     exist in the child.  Using a lock in the child of a multithreaded
 *     parent is undefined, as with pthread_rwlock_t (POSIX leaves it so):
 *     a child may hang on a range nobody will release, or on the lock's
 *     internal mutex taken at the moment of the fork.  Take no lock between
 *     fork and exec, or re-initialise (rangelock_init) a lock the child
 *     will use, whose ranges it then knows to be free.
 *   - Cancellation: no call here is a cancellation point, and none should
 *     be cancelled: a thread cancelled (asynchronously, or at a point of
 *     its own) while it waits or holds leaves its request on the lock.
 *     Use the timed calls to give up waiting, and unlock from a cleanup
 *     handler (pthread_cleanup_push) whatever a thread holds when it may be
 *     cancelled.
 *
 * The algorithm, its invariants and why they hold: doc/design.md (installed
 * as share/doc/rangelock/design.md).
 */
#ifndef RANGELOCK_H
#define RANGELOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* In strict C (-std=c99, -std=c11 without POSIX) <time.h> may not declare
 * it; the prototypes only need the name. */
struct timespec;

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RANGELOCK_BUILDING) && defined(__GNUC__)
#define RANGELOCK_API __attribute__((visibility("default")))
#else
#define RANGELOCK_API
#endif
/* The pointer arguments that must not be NULL (compilers that know the
 * attribute warn about a NULL they can see).  Not while building the
 * library: it would let the compiler drop checks it makes anyway. */
#if defined(__GNUC__) && !defined(RANGELOCK_BUILDING)
#define RANGELOCK_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#else
#define RANGELOCK_NONNULL(...)
#endif

/* The version of this header; rangelock_version() gives the library's. */
#define RANGELOCK_VERSION_MAJOR 0
#define RANGELOCK_VERSION_MINOR 2
#define RANGELOCK_VERSION_PATCH 0
/* One number that orders versions: 0x00MMmmpp (major, minor, patch). */
#define RANGELOCK_VERSION                                                   \
	((RANGELOCK_VERSION_MAJOR << 16) | (RANGELOCK_VERSION_MINOR << 8) | \
	 RANGELOCK_VERSION_PATCH)

/* As an end: "to the end of the object, however big". */
#define RANGELOCK_EOF UINT64_MAX

/* Flags for rangelock_init(). */
enum {
	/* Detect a thread locking a range that overlaps one it holds. */
	RANGELOCK_DEBUG = 1u
};

/*
 * The two types are complete so that they can live in a caller's struct, on
 * the stack or in static storage, like pthread_rwlock_t.  Their contents are
 * private to the library and may change between releases; only their sizes
 * are part of the ABI.
 */
typedef struct rangelock {
	uint64_t rangelock_opaque_[8];
} rangelock_t;

typedef struct rangelock_range {
	uint64_t rangelock_opaque_[8];
} rangelock_range_t;

/* Static initialisation, the same as rangelock_init(lk, 0). */
#define RANGELOCK_INITIALIZER { { 0 } }

/*
 * rangelock_init: make lk an unlocked range lock.
 *
 * flags is 0 or RANGELOCK_DEBUG (which also turns the fast path off: every
 * request takes the precise path, where the checks are made).  Never
 * allocates memory.
 * Returns 0, or EINVAL for an unknown flag (lk is then left untouched).
 * lk must not be in use (held or waited for): that is undefined, as for
 * pthread_rwlock_init; a destroyed lock may be initialised again.
 */
RANGELOCK_API int rangelock_init(rangelock_t *lk, unsigned flags)
	RANGELOCK_NONNULL(1);

/*
 * rangelock_destroy: end the life of lk.
 *
 * Returns 0, or EBUSY while any range is held or waited for; then lk is
 * left as it was and may still be used.  After 0, lk's tables (if any)
 * have been freed, and lk may be freed or initialised again.  A lock made
 * with RANGELOCK_INITIALIZER that is never destroyed keeps its tables for
 * the life of the process.  After 0, a second rangelock_destroy returns 0
 * again (a destroyed lock is an empty one, attached to nothing); any other
 * use of lk but rangelock_init is undefined.
 */
RANGELOCK_API int rangelock_destroy(rangelock_t *lk) RANGELOCK_NONNULL(1);

/*
 * rangelock_rdlock, rangelock_wrlock: lock [start, end) shared (rd) or
 * exclusive (wr), waiting as long as it takes.
 *
 * r receives the acquisition; pass it to rangelock_unlock().
 * Ordering: acquire.
 * Returns 0 when the range is held, or:
 *   EINVAL  start >= end (nothing changes, r is not touched);
 *   EDEADLK the lock has RANGELOCK_DEBUG and the calling thread already
 *           holds a range that overlaps [start, end) (in any mode).
 * Never returns EINTR: signals during the wait are absorbed.
 */
RANGELOCK_API int rangelock_rdlock(rangelock_t *lk, rangelock_range_t *r,
				   uint64_t start, uint64_t end)
	RANGELOCK_NONNULL(1, 2);
RANGELOCK_API int rangelock_wrlock(rangelock_t *lk, rangelock_range_t *r,
				   uint64_t start, uint64_t end)
	RANGELOCK_NONNULL(1, 2);

/*
 * rangelock_tryrdlock, rangelock_trywrlock: lock [start, end) if that can be
 * done without waiting.
 *
 * Ordering: acquire on success; nothing is ordered on failure.
 * Returns 0 when the range is held, or:
 *   EBUSY   exactly when rangelock_rdlock/wrlock would have waited: the
 *           range conflicts with a held range or an earlier waiting request;
 *   EINVAL, EDEADLK as for rangelock_rdlock.
 * Never waits and never leaves a request behind.
 */
RANGELOCK_API int rangelock_tryrdlock(rangelock_t *lk, rangelock_range_t *r,
				      uint64_t start, uint64_t end)
	RANGELOCK_NONNULL(1, 2);
RANGELOCK_API int rangelock_trywrlock(rangelock_t *lk, rangelock_range_t *r,
				      uint64_t start, uint64_t end)
	RANGELOCK_NONNULL(1, 2);

/*
 * rangelock_timedrdlock, rangelock_timedwrlock: lock [start, end), waiting
 * at most until the absolute CLOCK_MONOTONIC time *abstime.
 *
 * A deadline already past means one attempt: granted if free at once, else
 * ETIMEDOUT (not EBUSY), as pthread_rwlock_timedrdlock() does.
 * Ordering: acquire on success.
 * Returns 0 when the range is held, or:
 *   ETIMEDOUT the deadline passed first; the request is withdrawn and
 *             blocks nobody afterwards;
 *   EINVAL    start >= end, abstime NULL, or abstime->tv_nsec outside
 *             [0, 1e9);
 *   EDEADLK   as for rangelock_rdlock.
 * Never returns EINTR.
 */
RANGELOCK_API int rangelock_timedrdlock(rangelock_t *lk, rangelock_range_t *r,
					uint64_t start, uint64_t end,
					const struct timespec *abstime)
	RANGELOCK_NONNULL(1, 2);
RANGELOCK_API int rangelock_timedwrlock(rangelock_t *lk, rangelock_range_t *r,
					uint64_t start, uint64_t end,
					const struct timespec *abstime)
	RANGELOCK_NONNULL(1, 2);

/*
 * rangelock_unlock: release the range held through r.
 *
 * May be called from any thread.  Wakes the waiters that this release
 * unblocks, and no others.  Afterwards r may be reused or freed.
 * Ordering: release.
 * Returns 0, or EINVAL when r is not held on lk (never locked, already
 * unlocked, still waiting, or held on another lock); nothing changes then.
 */
RANGELOCK_API int rangelock_unlock(rangelock_t *lk, rangelock_range_t *r)
	RANGELOCK_NONNULL(1, 2);

/*
 * rangelock_downgrade: turn the exclusive range held through r into a shared
 * one, without a moment in which it is not held.
 *
 * Wakes the waiting shared requests that the exclusive range alone blocked.
 * Ordering: release (of the writes made under the exclusive range).
 * Returns 0, or EINVAL when r is not held on lk or is already shared;
 * nothing changes then.
 */
RANGELOCK_API int rangelock_downgrade(rangelock_t *lk, rangelock_range_t *r)
	RANGELOCK_NONNULL(1, 2);

/*
 * Locks that processes share
 * --------------------------
 * The lock's state lives in a region of memory that the processes map
 * (shm_open + mmap, a memfd passed over a socket, a MAP_SHARED file
 * mapping), at any address in each.  One process formats it with
 * rangelock_shared_init(); every process (that one included) attaches a
 * rangelock_t of its own with rangelock_shared_attach() and then locks,
 * unlocks and downgrades with the calls above, handles in its own memory,
 * with the same semantics: FIFO among conflicts, no barging, try, timed
 * (CLOCK_MONOTONIC), downgrade, unlock from any thread of the process.
 * rangelock_destroy() of an attached lock detaches it.
 *
 *   - Fast path: a range of 1..64 whole pages inside one 256 KiB block
 *     starting below 2^58, or of up to 8 KiB inside one below 2^39, is
 *     taken with one compare-and-swap and released with one store, in a
 *     table of 128 cache lines at the start of the region, as in a private
 *     lock (above) but without claims over several blocks and without
 *     growth.  Every other range, and every range that meets a conflict,
 *     takes the region's internal mutex and a node.
 *   - Bounded: a region holds as many listed requests (waiting, or held
 *     other than through the fast path, of all processes together) as it
 *     has nodes, 64 bytes each, fixed at init; fast holders take none.
 *     A lock call that would need one more returns EAGAIN, having changed
 *     nothing.  Up to 63 processes may be attached at once.
 *   - Robust: when a process dies (killed at any instruction) or calls
 *     exit or exec while it holds or waits, its waiting requests vanish
 *     and its ranges are released, within about 10-20 ms of the moment
 *     someone waits behind them (waiters look every 10 ms; a refused try
 *     looks at most once per 10 ms per region).  Every request granted
 *     over a range that the dead process held *exclusive* gets
 *     EOWNERDEAD, with the range held: the data under it may be
 *     half-written.  The first exclusive one repairs it and unlocks as
 *     usual; no request granted after it is told.  A shared one cannot
 *     repair (other readers may hold the range beside it): it must not
 *     trust the data; to repair, it unlocks and takes the range exclusive
 *     (told again unless someone repaired it meanwhile).
 *     A process killed inside a lock call that had claimed a fast slot
 *     exclusive counts as having held it (as a robust mutex taken by CAS
 *     does), so EOWNERDEAD may, rarely, name a range whose lock call never
 *     returned; it is never missing where one did.
 *     A process's liveness is judged by a close-on-exec file descriptor
 *     the library keeps open in it (on a memfd named "rangelock-<random>"):
 *     a process that closes it (closefrom, close_range) looks dead.  Where
 *     /proc does not let a process look at another (another user's), only
 *     that one's exit is seen, not its exec.  A reused pid never passes
 *     for the dead process.
 *   - A region scribbled on by a buggy process is found broken: calls then
 *     return ENOTRECOVERABLE.  Every offset the library reads from the
 *     region is checked before use; it never writes outside the region.
 *   - Cost: a fast page pair is about 1.1x a process-private lock's and
 *     60x cheaper than an OFD fcntl lock's (README, rlbench --processes).
 *   - fork(): a child must attach again before it uses the lock; the
 *     parent's attachment, used in the child, gives EINVAL.
 *   - No RANGELOCK_DEBUG checks.
 */

/*
 * rangelock_shared_size: how many bytes a region needs for max_requests
 * listed requests at once (the fast path's table, a header, and 64 bytes a
 * request: 11 520 bytes for 1, 15 552 for 64).  Returns 0 if max_requests
 * is 0 or above 2^24.
 */
RANGELOCK_API size_t rangelock_shared_size(unsigned max_requests);

/*
 * rangelock_shared_init: format size bytes at region, 64-byte aligned, as
 * an unlocked shared lock, with as many request nodes as fit (up to 2^24).
 *
 * Call it once, in one process, before any process attaches; formatting a
 * region in use is undefined.  Never allocates.
 * Returns 0, or EINVAL (region not 64-byte aligned, or smaller than
 * rangelock_shared_size(1)); the region is not touched then.
 */
RANGELOCK_API int rangelock_shared_init(void *region, size_t size)
	RANGELOCK_NONNULL(1);

/*
 * rangelock_shared_attach: make lk this process's handle on the shared
 * lock at region, as mapped here (size must be what init was given).
 *
 * lk must not be in use; it needs no init.  Opens one file descriptor per
 * process (the first attach only), close-on-exec.
 * Returns 0, or:
 *   EINVAL  region is not a formatted shared lock of this size, or not
 *           64-byte aligned (lk is not touched);
 *   EAGAIN  63 processes are attached already (none of them dead);
 *   EMFILE, ENFILE, ENOMEM: the descriptor could not be made.
 * Undo with rangelock_destroy(lk): 0, or EBUSY while this attachment
 * holds or waits for a range, through a node or a fast slot (lk then
 * stays attached).
 */
RANGELOCK_API int rangelock_shared_attach(rangelock_t *lk, void *region,
					  size_t size) RANGELOCK_NONNULL(1, 2);

/*
 * On an attached lock the lock calls return, besides their errors above:
 *   EOWNERDEAD      held, over a range a dead process held exclusive;
 *   EAGAIN          every request node of the region is in use;
 *   ENOTRECOVERABLE the region is broken (scribbled on);
 *   EINVAL          lk was attached in the parent of a fork.
 */

/*
 * rangelock_version: the version of the library linked at run time, as
 * RANGELOCK_VERSION encodes it (compare with RANGELOCK_VERSION to detect a
 * header and library mismatch).  Never fails.
 */
RANGELOCK_API unsigned rangelock_version(void);

#ifdef __cplusplus
}
#endif

#endif /* RANGELOCK_H */
