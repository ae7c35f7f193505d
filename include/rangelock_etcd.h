/* SPDX-License-Identifier: MIT */
/*
 * rangelock_etcd.h - shared/exclusive byte-range locks across machines, on
 * etcd (librangelock-etcd).
 *
 * Overview
 * --------
 * A client connects to an etcd cluster (one or several members' URLs) and
 * opens objects by name: any string (a path, an inode number); two names
 * are one object only when they are equal byte for byte.  Threads lock
 * half-open byte ranges [start, end) of an object, shared or exclusive,
 * with the semantics of rangelock.h, now between every client of the
 * cluster:
 *
 *   - Two ranges conflict when they overlap and at least one is exclusive;
 *     end == RANGELOCK_EOF means "to the end"; start >= end is EINVAL.
 *   - FIFO among conflicts, no barging: a request is granted only when no
 *     conflicting request of another client was made before it (held or
 *     waiting).  The order is etcd's: the revision at which the request's
 *     key was created.  Threads of one client settle their conflicts in a
 *     local rangelock_t first, without a round trip.
 *   - Waiting is woken by etcd's watch, never by polling.
 *   - Caching: a range released by its last local holder stays granted to
 *     the client (it is "cached") until another client asks for a
 *     conflicting range.  A later lock of a range inside a cached grant,
 *     in a mode it allows, costs no round trip.  A cached grant is given
 *     up as soon as the client's watch shows a conflicting request, once
 *     its local holders have unlocked (a grant wider than one holder's
 *     range is given up as a whole, when all of its holders are done).
 *   - Fencing: every grant carries a token, rangelock_etcd_token(), that
 *     increases for conflicting grants in the order they are granted.  A
 *     store that keeps, per byte, the highest token that wrote it and
 *     refuses writes with a lower one cannot be corrupted by a client
 *     whose grant was lost while it was paused.  Without such a check, no
 *     lock service can promise that: a client may be stopped between its
 *     check of the grant and its write, for longer than any lease.
 *   - Failure: each client holds an etcd lease (RANGELOCK_ETCD_TTL_MS by
 *     default), renewed in the background every third of it.  A client
 *     that dies loses its ranges and requests when the lease expires.  A
 *     client that cannot renew stops treating its grants as held at the
 *     time the lease may expire on the server, counted from the moment
 *     it sent its last successful renewal (so never later than the server
 *     does): rangelock_etcd_check() then returns ENOLCK, unlock returns
 *     ENOLCK, and the client starts a new lease for later requests.
 *
 * Cost: an uncontended lock of a range that is not cached is one etcd
 * transaction (it creates the request's key and reads the object's keys
 * at that revision); its release, when the grant is not kept, one delete.
 * A lock within a cached grant is a local lock and a hash lookup.
 *
 * Errors are returned as positive errno values, never stored in errno.  A
 * call that fails changes nothing the caller can see.  Calls that talk to
 * etcd may fail with:
 *   ENOTCONN  no member answered within the timeout (every endpoint tried);
 *   EIO       a member answered with an error this library does not expect;
 *   ENOLCK    the client's lease was lost while the call waited.
 * Lock calls never fail for lack of memory in the local lock, but a
 * request needs memory for its key: ENOMEM is possible here.
 *
 * Synchronization: a client, its objects and their ranges may be used from
 * any number of threads at once, except rangelock_etcd_close() and
 * rangelock_etcd_object_close(), which need every call on what they close
 * to have returned.  fork(): a child must not use its parent's client;
 * it connects its own.
 *
 * The protocol (key layout, grant rule, caching, failure, fencing) and its
 * model: doc/etcd.md.
 */
#ifndef RANGELOCK_ETCD_H
#define RANGELOCK_ETCD_H

#include <rangelock.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct timespec;

/* A connection to an etcd cluster, with its lease, watch and cache. */
typedef struct rangelock_etcd rangelock_etcd_t;
/* An object (a name) opened on a client. */
typedef struct rangelock_etcd_object rangelock_etcd_object_t;

/*
 * One acquisition, allocated by the caller, as rangelock_range_t: it
 * belongs to the library from the lock call that succeeds with it until
 * unlock returns.  Its members are private.
 */
typedef struct rangelock_etcd_range {
	rangelock_range_t local;
	void *grant;
	uint64_t token;
	uint64_t generation;
	uint64_t state;
} rangelock_etcd_range_t;

#define RANGELOCK_ETCD_ENDPOINTS "http://127.0.0.1:2379"
#define RANGELOCK_ETCD_PREFIX "rangelock/"
#define RANGELOCK_ETCD_TTL_MS 5000u     /* lease TTL: 1 s .. 60 s */
#define RANGELOCK_ETCD_TIMEOUT_MS 2000u /* per request, per endpoint */
#define RANGELOCK_ETCD_CACHE 1024u      /* cached grants kept, at most */

/* Options for rangelock_etcd_connect(); zero or NULL fields take defaults. */
struct rangelock_etcd_options {
	/* comma-separated URLs; NULL: $RANGELOCK_ETCD_ENDPOINTS, else
	 * RANGELOCK_ETCD_ENDPOINTS */
	const char *endpoints;
	const char *prefix;      /* the keys' prefix; NULL: RANGELOCK_ETCD_PREFIX */
	const char *name;        /* shown by rlctl list; NULL: host:pid */
	unsigned ttl_ms;         /* lease TTL, rounded up to whole seconds */
	unsigned timeout_ms;     /* per request and endpoint; also connect */
	unsigned cache;          /* cached grants kept; RANGELOCK_ETCD_NOCACHE */
	unsigned flags;          /* RANGELOCK_ETCD_NOCACHE */
};
/* Give up every grant when its last local holder unlocks. */
#define RANGELOCK_ETCD_NOCACHE 1u

/*
 * rangelock_etcd_connect: connect to the cluster and take a lease.
 *
 * Starts two threads: lease renewal, and the watch of the requests under
 * the prefix, which runs while a call waits or grants are kept.  With
 * $RANGELOCK_ETCD_DEBUG set, the client logs its failovers, watches,
 * leases, grants and give-backs on stderr.  opt may be NULL.
 * Returns 0 and *out, or:
 *   EINVAL    an option out of range (ttl_ms over 60 s, an empty URL);
 *   ENOTCONN  no endpoint answered within timeout_ms;
 *   EIO, ENOMEM.
 * Never leaves a thread or a key behind when it fails.
 */
RANGELOCK_API int rangelock_etcd_connect(rangelock_etcd_t **out,
					 const struct rangelock_etcd_options *opt)
	RANGELOCK_NONNULL(1);

/*
 * rangelock_etcd_close: give up every cached grant, revoke the lease, stop
 * the threads and free the client.
 *
 * Returns 0, or EBUSY when an object is still open (nothing changes).
 * Revoking is best effort: when etcd cannot be reached, the lease expires.
 */
RANGELOCK_API int rangelock_etcd_close(rangelock_etcd_t *c) RANGELOCK_NONNULL(1);

/*
 * rangelock_etcd_open: open the object called name (name_len bytes, any
 * bytes) on client c.  Opening one name twice gives the same object, with
 * a count of opens.
 * Returns 0 and *out, or EINVAL (name_len 0 or over 4096), ENOMEM.
 */
RANGELOCK_API int rangelock_etcd_open(rangelock_etcd_t *c, const void *name,
				      size_t name_len,
				      rangelock_etcd_object_t **out)
	RANGELOCK_NONNULL(1, 2, 4);

/*
 * rangelock_etcd_object_close: drop one open of the object.
 * Returns 0, or EBUSY when this is the last open and a range of it is held
 * or waited for (nothing changes).  Its cached grants are given up.
 */
RANGELOCK_API int rangelock_etcd_object_close(rangelock_etcd_object_t *o)
	RANGELOCK_NONNULL(1);

/*
 * rangelock_etcd_rdlock, rangelock_etcd_wrlock: lock [start, end) of o
 * shared or exclusive, waiting as long as it takes.
 * Ordering: acquire, within this process; across clients, through etcd.
 * Returns 0, or EINVAL (start >= end), ENOLCK, ENOTCONN, EIO, ENOMEM.
 * Never returns EINTR.
 */
RANGELOCK_API int rangelock_etcd_rdlock(rangelock_etcd_object_t *o,
					rangelock_etcd_range_t *r,
					uint64_t start, uint64_t end)
	RANGELOCK_NONNULL(1, 2);
RANGELOCK_API int rangelock_etcd_wrlock(rangelock_etcd_object_t *o,
					rangelock_etcd_range_t *r,
					uint64_t start, uint64_t end)
	RANGELOCK_NONNULL(1, 2);

/*
 * rangelock_etcd_tryrdlock, rangelock_etcd_trywrlock: lock [start, end)
 * only if it is granted at once.
 * Returns 0, EBUSY when a conflicting range is held or an earlier
 * conflicting request waits (on this client or another), or the errors of
 * rangelock_etcd_rdlock.  Never leaves a request behind.
 */
RANGELOCK_API int rangelock_etcd_tryrdlock(rangelock_etcd_object_t *o,
					   rangelock_etcd_range_t *r,
					   uint64_t start, uint64_t end)
	RANGELOCK_NONNULL(1, 2);
RANGELOCK_API int rangelock_etcd_trywrlock(rangelock_etcd_object_t *o,
					   rangelock_etcd_range_t *r,
					   uint64_t start, uint64_t end)
	RANGELOCK_NONNULL(1, 2);

/*
 * rangelock_etcd_timedrdlock, rangelock_etcd_timedwrlock: lock [start, end),
 * waiting at most until the absolute CLOCK_MONOTONIC time *abstime.
 * Returns 0, ETIMEDOUT (the request is withdrawn), EINVAL (also for a bad
 * abstime), or the errors of rangelock_etcd_rdlock.
 */
RANGELOCK_API int rangelock_etcd_timedrdlock(rangelock_etcd_object_t *o,
					     rangelock_etcd_range_t *r,
					     uint64_t start, uint64_t end,
					     const struct timespec *abstime)
	RANGELOCK_NONNULL(1, 2);
RANGELOCK_API int rangelock_etcd_timedwrlock(rangelock_etcd_object_t *o,
					     rangelock_etcd_range_t *r,
					     uint64_t start, uint64_t end,
					     const struct timespec *abstime)
	RANGELOCK_NONNULL(1, 2);

/*
 * rangelock_etcd_unlock: release the range held through r (from any
 * thread).  The client keeps the grant cached unless RANGELOCK_ETCD_NOCACHE,
 * the cache is full, or another client has asked for a conflicting range:
 * then its key is deleted before this call returns.
 * Returns 0; ENOLCK when the grant had been lost (the range is released
 * here all the same); EINVAL when r is not held on o (nothing changes).
 */
RANGELOCK_API int rangelock_etcd_unlock(rangelock_etcd_object_t *o,
					rangelock_etcd_range_t *r)
	RANGELOCK_NONNULL(1, 2);

/*
 * rangelock_etcd_downgrade: make the exclusive range held through r shared.
 * When r is its grant's only holder, the grant becomes shared in etcd too
 * (one request); otherwise the grant stays exclusive until given up.
 * Returns 0, EINVAL (r not held, or shared), ENOLCK, ENOTCONN, EIO.
 */
RANGELOCK_API int rangelock_etcd_downgrade(rangelock_etcd_object_t *o,
					   rangelock_etcd_range_t *r)
	RANGELOCK_NONNULL(1, 2);

/*
 * rangelock_etcd_token: the fencing token of the grant r holds: an etcd
 * revision, greater than the token of every conflicting grant given
 * before it.  0 when r is not held.
 */
RANGELOCK_API uint64_t rangelock_etcd_token(const rangelock_etcd_range_t *r)
	RANGELOCK_NONNULL(1);

/*
 * rangelock_etcd_check: is the grant r holds still valid?
 * Returns 0 while the lease that carries it cannot have expired, ENOLCK
 * once it may have (the holder must stop writing), EINVAL when r is not
 * held.  Costs no round trip.
 */
RANGELOCK_API int rangelock_etcd_check(const rangelock_etcd_range_t *r)
	RANGELOCK_NONNULL(1);

/* One request, as rangelock_etcd_list() reports it. */
struct rangelock_etcd_entry {
	const char *object;     /* the object's name, object_len bytes */
	size_t object_len;
	uint64_t start, end;    /* end: RANGELOCK_EOF for "to the end" */
	int exclusive;
	int held;               /* 1: granted (in use or cached); 0: waiting */
	double age;             /* seconds since the request was made */
	uint64_t token;         /* the request's revision */
	const char *client;     /* the client's name */
};

/*
 * rangelock_etcd_list: call fn once per request under the client's prefix
 * (of the object named name, or of every object when name is NULL), in
 * FIFO order per object, from one consistent read of etcd.
 * Stops and returns fn's value when it is not 0; else returns 0, or
 * ENOTCONN, EIO, ENOMEM.
 */
RANGELOCK_API int rangelock_etcd_list(rangelock_etcd_t *c, const void *name,
				      size_t name_len,
				      int (*fn)(const struct rangelock_etcd_entry *e,
						void *arg),
				      void *arg)
	RANGELOCK_NONNULL(1, 4);

#ifdef __cplusplus
}
#endif
#endif /* RANGELOCK_ETCD_H */
