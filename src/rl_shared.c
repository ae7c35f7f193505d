/* SPDX-License-Identifier: MIT */
/*
 * rl_shared.c - a lock in memory that processes share: the region, its
 * request nodes, its processes, and recovery from a process that died.
 *
 * The region holds what a process's own lock keeps in its rangelock_t and
 * in its callers' handles: the guard, the precise path's counts and index
 * (struct rl_listed), and a fixed pool of request nodes (struct
 * rl_request, 64 bytes each) linked by offsets from the region's start.
 * Each process attaches a rangelock_t of its own to it (a *view*: which
 * region, where it is mapped here, how many nodes it has, this process's
 * record).  Every request is listed in the region's one tree, as a
 * private lock's wide ones are in its top: the lock calls
 * (rl_shared_call.c), the grant policy (rl_queue.c) and the index
 * (rl_index.c) do not know where their nodes are.  A caller's handle stays
 * in its own memory and names its node (RL_REMOTE).
 *
 * Robustness.  Each attached process has a record: its pid, and the number
 * and name of a file descriptor it keeps open, close-on-exec, on a memfd
 * named after a random token.  /proc/<pid>/fd/<fd> names that memfd while
 * the process lives and has not exec'd; after exit, exec, or with the pid
 * reused, it does not (rl_process_alive()).  Nodes carry their owner's tag
 * (record and the record's generation).  Nobody is woken when a process
 * dies, so waiters sleep at most RL_POLL_NS at a time and then look at the
 * owners of what blocks them, and a guard waiter looks at the guard's
 * owner; a refused try looks too, at most once per RL_POLL_NS per region.
 * Finding one dead, they recover under the guard (rl_shared_recover()):
 * the dead process's nodes are freed, the exclusive ranges it held become
 * *dead ranges* (only if its lock call had returned: a grant it never saw
 * left nothing half written), the index is rebuilt from what the living
 * hold, and whatever that unblocks is granted.  Every request granted
 * over a dead range is told (EOWNERDEAD) until an exclusive one, which
 * repairs it: then the dead range is forgotten.
 *
 * Every offset, index and count read from the region is checked against
 * what this process knows (the node count it attached with, the arrays'
 * sizes) before it is used: a scribbled region is found broken
 * (ENOTRECOVERABLE), never followed outside itself.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "rl_shared.h"

#define RL_REGION_MAGIC 0x31474b4c4f43524cull   /* "LROCKG1" */
#define RL_REGION_LAYOUT 4u
#define RL_PROCESSES 64u       /* attached at once; the last one reaps */
#define RL_DEAD_RANGES 64u
#define RL_NODE_BYTES sizeof(rangelock_range_t)
#define RL_NODES_MAX (1u << 24)
#define RL_GUARD_SLEEPERS 0x80000000u
/* How long a blocker's record found alive stays so for the other waiters'
 * checks: many waiters behind one holder look at its /proc entry once per
 * RL_ALIVE_FRESH_NS between them, not each once per RL_POLL_NS.  A death
 * is noticed up to this much later. */
#define RL_ALIVE_FRESH_NS 1000000u

/* One attached process.  pid is claimed by CAS; the rest is written before
 * `ready` and read after it. */
struct rl_process {
	_Atomic int32_t pid;        /* 0: free */
	_Atomic uint32_t ready;     /* 1: fd and token are set */
	int32_t fd;                 /* its marker's descriptor */
	/* claims of this record: a new claimer's tags and guard word differ
	 * from its predecessor's */
	_Atomic uint32_t generation;
	uint64_t token;             /* its marker's name */
};

struct rl_region {
	_Atomic uint64_t magic;     /* set last by init */
	uint32_t layout;
	uint32_t nodes;
	uint64_t size;
	/* 0 free, else the owner's rl_guard_id() | RL_GUARD_SLEEPERS */
	_Atomic uint32_t guard;
	_Atomic uint32_t broken;    /* found scribbled on: ENOTRECOVERABLE */
	uint32_t free;              /* first free node + 1, or 0; guard */
	uint32_t dead_ranges;       /* how many of dead[] are used; guard */
	struct rl_listed listed;    /* guard */
	/* when a refused try last looked for dead holders (ns); relaxed */
	_Atomic uint64_t polled;
	/* when each record was last found alive by a blocker check (ns);
	 * guard (rl_blocker_dead()) */
	uint64_t alive_at[RL_PROCESSES];
	struct rl_process process[RL_PROCESSES];
	struct rl_range dead[RL_DEAD_RANGES];   /* guard */
};

/* The region: this header, then the nodes from the next 64-byte
 * boundary.  Offsets in the region (links, handles) count from its
 * start. */
#define RL_NODES_AT ((sizeof(struct rl_region) + 63) & ~(size_t)63)

/* ---- this process: its marker, and how many forks it has been through */

static pthread_mutex_t rl_marker_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	pid_t pid;                  /* the process that made it */
	int fd;
	uint64_t token;
} rl_marker;

/* bumped in the child of every fork: a view attached before it belongs to
 * the parent */
static _Atomic uint32_t rl_forks;
static pthread_once_t rl_fork_once = PTHREAD_ONCE_INIT;

/* Is this view the process's own, not a forked child's copy of its
 * parent's? */
static bool rl_view_ours(const struct rl_lock *l)
{
	/* relaxed: a count only this process's fork handler writes */
	return l->shared.forks ==
	       atomic_load_explicit(&rl_forks, memory_order_relaxed);
}

static void rl_count_fork(void)
{
	/* relaxed: the child has one thread now */
	atomic_fetch_add_explicit(&rl_forks, 1, memory_order_relaxed);
}

static void rl_watch_forks(void)
{
	pthread_atfork(NULL, NULL, rl_count_fork);
}

static void rl_marker_name(char *buf, size_t len, uint64_t token)
{
	snprintf(buf, len, "rangelock-%016llx", (unsigned long long)token);
}

/* rl_marker_get: this process's marker, made on first use (and again in a
 * forked child, whose inherited one is its parent's). */
static int rl_marker_get(int *fd, uint64_t *token)
{
	int rc = 0;

	pthread_mutex_lock(&rl_marker_lock);
	if (rl_marker.pid != getpid()) {
		char name[40];
		uint64_t t;

		if (getrandom(&t, sizeof(t), 0) != sizeof(t)) {
			rc = errno ? errno : EAGAIN;
		} else {
			rl_marker_name(name, sizeof(name), t);
			int f = memfd_create(name, MFD_CLOEXEC);

			if (f < 0) {
				rc = errno;
			} else {
				rl_marker.pid = getpid();
				rl_marker.fd = f;
				rl_marker.token = t;
			}
		}
	}
	*fd = rl_marker.fd;
	*token = rl_marker.token;
	pthread_mutex_unlock(&rl_marker_lock);
	return rc;
}

/*
 * rl_process_alive: does the process of record p still live, unexec'd?
 * Its marker's descriptor names "/memfd:rangelock-<token> (deleted)" as
 * long as it does.  Where /proc does not let us look (another user's
 * process), only a pid that no longer exists counts as dead.
 */
static bool rl_process_alive_as(const struct rl_process *p, int32_t *seen)
{
	/* acquire: fd and token as the attacher wrote them; pairs with the
	 * release store of ready in rl_record_claim(). */
	bool ready = atomic_load_explicit(&p->ready, memory_order_acquire);
	/* relaxed: pid is set before ready, by the same CAS we read */
	int32_t pid = atomic_load_explicit(&p->pid, memory_order_relaxed);
	char path[64], link[80], name[40];
	ssize_t n;

	*seen = pid;
	if (pid <= 0)
		return false;
	if (!ready || p->fd < 0)   /* being claimed: by a process that is? */
		return kill(pid, 0) == 0 || errno != ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, (int)p->fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return errno == EACCES && (kill(pid, 0) == 0 || errno != ESRCH);
	link[n] = '\0';
	rl_marker_name(name, sizeof(name), p->token);
	return strncmp(link, "/memfd:", 7) == 0 &&
	       strncmp(link + 7, name, strlen(name)) == 0 &&
	       link[7 + strlen(name)] == ' ';
}

static bool rl_process_alive(const struct rl_process *p)
{
	int32_t pid;

	return rl_process_alive_as(p, &pid);
}

/* ---- the view, and what the index and the queue see of the region */

static struct rl_region *rl_header_of(const struct rl_lock *l)
{
	return (struct rl_region *)l->shared.region;
}

struct rl_listed *rl_shared_listed(const struct rl_lock *l)
{
	return &rl_header_of(l)->listed;
}

struct rl_tree rl_shared_tree(const struct rl_lock *l)
{
	struct rl_region *g = rl_header_of(l);

	return (struct rl_tree){ .root = &g->listed.root,
				 .base = (uintptr_t)l->shared.region,
				 .first = RL_NODES_AT,
				 .nodes = l->shared.nodes,
				 .budget = l->shared.nodes,
				 .broken = &g->broken };
}

static void rl_mark_broken(struct rl_region *g)
{
	/* relaxed: read under the guard, by later sections */
	atomic_store_explicit(&g->broken, 1, memory_order_relaxed);
}

static bool rl_is_broken(struct rl_region *g)
{
	/* relaxed: set under the guard we hold, or a scribble */
	return atomic_load_explicit(&g->broken, memory_order_relaxed) ||
	       atomic_load_explicit(&g->magic, memory_order_relaxed) !=
		       RL_REGION_MAGIC;
}

static struct rl_request *rl_node_at(const struct rl_lock *l, uint32_t i)
{
	return (struct rl_request *)(void *)((char *)l->shared.region +
					     RL_NODES_AT + (size_t)i * RL_NODE_BYTES);
}

/* A node's owner: the record, and its generation when we claimed it. */
static uint64_t rl_tag(const struct rl_lock *l)
{
	return (uint64_t)l->shared.generation << 16 | l->shared.record;
}

/* The guard word of its holder: record + 1 in the low 7 bits, 24 bits of
 * the generation above, so that a takeover from a dead holder (a CAS from
 * the word it left) cannot take the guard from the record's next claimer. */
#define RL_GUARD_RECORD 0x7fu

static uint32_t rl_guard_id(const struct rl_lock *l)
{
	return (l->shared.generation & 0xffffffu) << 7 | (l->shared.record + 1);
}

/* ---- the guard: owned by a record, taken over from a dead one */

static bool rl_guard_try(struct rl_region *g, uint32_t from, uint32_t to)
{
	/* acquire: the region as the last holder left it; pairs with the
	 * release exchange in rl_shared_guard_unlock(). */
	return atomic_compare_exchange_strong_explicit(
		&g->guard, &from, to, memory_order_acquire, memory_order_relaxed);
}

static bool rl_record_dead(struct rl_region *g, uint32_t record)
{
	return record >= RL_PROCESSES || !rl_process_alive(&g->process[record]);
}

static void rl_shared_recover(struct rl_lock *l);

void rl_shared_guard_lock(struct rl_lock *l)
{
	struct rl_region *g = rl_header_of(l);
	uint32_t me = rl_guard_id(l);

	if (rl_likely(rl_guard_try(g, 0, me)))
		return;
	for (int spun = 0, pause = 1; spun < 3200; spun += pause, pause *= 2) {
		for (int k = 0; k < pause && k < 256; k++)
			rl_cpu_relax();
		if (rl_guard_try(g, 0, me))
			return;
	}
	for (;;) {
		struct timespec slice;
		/* relaxed: a look only; the CASes acquire */
		uint32_t v = atomic_load_explicit(&g->guard, memory_order_relaxed);

		if (v == 0) {
			if (rl_guard_try(g, 0, me | RL_GUARD_SLEEPERS))
				return;
			continue;
		}
		if (!(v & RL_GUARD_SLEEPERS) &&
		    !atomic_compare_exchange_strong_explicit(
			    &g->guard, &v, v | RL_GUARD_SLEEPERS,
			    memory_order_relaxed, memory_order_relaxed))
			continue;
		v |= RL_GUARD_SLEEPERS;
		slice = rl_deadline_in(RL_POLL_NS);
		if (rl_futex_wait(&g->guard, v, &slice, true) == ETIMEDOUT &&
		    rl_record_dead(g, (v & RL_GUARD_RECORD) - 1) &&
		    rl_guard_try(g, v, me | RL_GUARD_SLEEPERS)) {
			/* its holder died in the middle of a section */
			rl_shared_recover(l);
			return;
		}
	}
}

void rl_shared_guard_unlock(struct rl_lock *l)
{
	struct rl_region *g = rl_header_of(l);

	/* release: publish the section's writes; pairs with the acquire in
	 * rl_guard_try(). */
	if (atomic_exchange_explicit(&g->guard, 0, memory_order_release) &
	    RL_GUARD_SLEEPERS)
		rl_futex_wake(&g->guard, 1, true);
}

/* ---- nodes */

static bool rl_node_listed(const struct rl_request *n)
{
	/* relaxed: under the guard, as every write of a listed state */
	uint32_t s = atomic_load_explicit(&n->state, memory_order_relaxed);

	return s == RL_WAITING || s == RL_SLEEPING || s == RL_HELD;
}

/* rl_shared_node_alloc: a free node for a new request of this process;
 * guard.  EAGAIN when every node is in use, ENOTRECOVERABLE for a broken
 * region, EINVAL for a view attached before a fork (by the parent). */
int rl_shared_node_alloc(struct rl_lock *l, struct rl_request **out)
{
	struct rl_region *g = rl_header_of(l);
	struct rl_request *n;
	uint32_t i = g->free;

	if (!rl_view_ours(l))
		return EINVAL;
	if (rl_is_broken(g))
		return ENOTRECOVERABLE;
	if (i == 0)
		return EAGAIN;
	if (i > l->shared.nodes) {
		rl_mark_broken(g);
		return ENOTRECOVERABLE;
	}
	n = rl_node_at(l, i - 1);
	/* relaxed: free nodes change only under the guard */
	if (atomic_load_explicit(&n->state, memory_order_relaxed) != RL_FREE ||
	    n->left > l->shared.nodes) {
		rl_mark_broken(g);
		return ENOTRECOVERABLE;
	}
	g->free = (uint32_t)n->left;
	n->left = 0;
	n->owner = rl_tag(l);
	n->owner_died = false;
	/* relaxed: under the guard; its owner sets it after this section */
	atomic_store_explicit(&n->seen, 0, memory_order_relaxed);
	/* relaxed: published by the guard's release */
	atomic_store_explicit(&n->state, RL_IDLE, memory_order_relaxed);
	*out = n;
	return 0;
}

/* rl_shared_node_free: n, not listed, back to the free nodes; guard. */
void rl_shared_node_free(struct rl_lock *l, struct rl_request *n)
{
	struct rl_region *g = rl_header_of(l);
	uint32_t i = (uint32_t)(((char *)n - (char *)rl_node_at(l, 0)) /
				RL_NODE_BYTES);

	n->left = g->free;
	n->owner = 0;
	/* relaxed: under the guard */
	atomic_store_explicit(&n->state, RL_FREE, memory_order_relaxed);
	g->free = i + 1;
}

/* rl_shared_handle: n is held; q, the caller's handle, names it.  Returns
 * 0, or EOWNERDEAD when n was granted over a dead process's range (held
 * either way), or ENOTRECOVERABLE when the region was found broken. */
int rl_shared_handle(struct rl_lock *l, struct rl_request *q,
		     struct rl_request *n)
{
	/* relaxed: read by a recovery under the guard; a recovery that does
	 * not see it treats n as never used (its owner had not returned) */
	atomic_store_explicit(&n->seen, 1, memory_order_relaxed);
	q->remote.node = (rl_ref)((char *)n - (char *)l->shared.region);
	q->remote.tag = n->owner;
	q->remote.self = q;
	q->start = n->start;
	q->end = n->end;
	/* relaxed: the caller's own handle */
	atomic_store_explicit(&q->state, RL_REMOTE, memory_order_relaxed);
	if (rl_is_broken(rl_header_of(l)))
		return ENOTRECOVERABLE;
	/* read after the acquire of HELD (or under the guard): the granter
	 * wrote it under the guard before granting */
	return n->owner_died ? EOWNERDEAD : 0;
}

/* rl_node_of: the held node that q names, or NULL (not a handle of ours:
 * never locked, unlocked, a copy, a stale one); guard. */
static struct rl_request *rl_node_of(struct rl_lock *l,
				     const struct rl_request *q)
{
	struct rl_request *n;
	rl_ref ref = q->remote.node;

	/* relaxed: the caller's own handle */
	if (atomic_load_explicit(&q->state, memory_order_relaxed) != RL_REMOTE ||
	    q->remote.self != q || ref < RL_NODES_AT ||
	    (ref - RL_NODES_AT) % RL_NODE_BYTES ||
	    (ref - RL_NODES_AT) / RL_NODE_BYTES >= l->shared.nodes)
		return NULL;
	n = (struct rl_request *)(void *)((char *)l->shared.region + ref);
	/* relaxed: under the guard */
	if (n->owner != q->remote.tag ||
	    atomic_load_explicit(&n->state, memory_order_relaxed) != RL_HELD)
		return NULL;
	return n;
}

/* rl_shared_release: unlock (or downgrade) the range held through q.
 * EINVAL, with nothing changed, for a view attached before a fork: a child's
 * copy of its parent's handle names the parent's node, and must not free
 * it (as rl_shared_node_alloc() and the slots' release refuse such a view). */
int rl_shared_release(struct rl_lock *l, struct rl_request *q, bool downgrade)
{
	struct rl_region *g = rl_header_of(l);
	struct rl_request *n;
	int rc = EINVAL;

	if (!rl_view_ours(l))
		return EINVAL;
	rl_shared_guard_lock(l);
	if (rl_is_broken(g)) {
		rc = ENOTRECOVERABLE;
	} else if ((n = rl_node_of(l, q)) != NULL) {
		if (!downgrade) {
			rl_queue_leave(l, n);
			rl_shared_node_free(l, n);
			/* relaxed: the caller's own handle */
			atomic_store_explicit(&q->state, RL_IDLE,
					      memory_order_relaxed);
			rc = 0;
		} else if (n->exclusive) {
			n->exclusive = false;
			rl_queue_grant_after(l, n->seq, n->start, n->end);
			rc = 0;
		}
		if (rl_is_broken(g))
			rc = ENOTRECOVERABLE;
	}
	rl_shared_guard_unlock(l);
	return rc;
}

/* ---- dead ranges */

static void rl_dead_range_add(struct rl_region *g, uint64_t start, uint64_t end)
{
	uint32_t k = g->dead_ranges;

	if (k > RL_DEAD_RANGES) {
		rl_mark_broken(g);
		return;
	}
	if (k == RL_DEAD_RANGES) {   /* full: the last one grows to cover it */
		struct rl_range *d = &g->dead[k - 1];

		d->start = start < d->start ? start : d->start;
		d->end = end > d->end ? end : d->end;
		return;
	}
	g->dead[k] = (struct rl_range){ start, end };
	g->dead_ranges = k + 1;
}

/* rl_shared_granted: q is being granted; guard.  If it overlaps dead
 * ranges, it is told (owner_died).  An exclusive q can repair them, so
 * they are forgotten; a shared one cannot (other readers may hold them
 * beside it), so they stay, and every grant over them is told until an
 * exclusive one.  (Every grant of the region comes here.) */
void rl_shared_granted(struct rl_lock *l, struct rl_request *q)
{
	struct rl_region *g = rl_header_of(l);
	uint32_t k = g->dead_ranges;

	if (rl_likely(k == 0))
		return;
	if (k > RL_DEAD_RANGES) {
		rl_mark_broken(g);
		return;
	}
	for (uint32_t i = 0; i < k;) {
		bool over = rl_overlaps(q, g->dead[i].start, g->dead[i].end);

		q->owner_died |= over;
		if (over && q->exclusive) {
			g->dead[i] = g->dead[--k];
		} else {
			i++;
		}
	}
	g->dead_ranges = k;
}

/* ---- recovery */

/* Which records are attached to living processes: a bit each; and the
 * pid each of the others had when it was judged (0: free). */
static uint64_t rl_records_alive(struct rl_lock *l, int32_t dead_pid[])
{
	struct rl_region *g = rl_header_of(l);
	uint64_t alive = 0;

	for (uint32_t r = 0; r < RL_PROCESSES; r++) {
		dead_pid[r] = 0;
		if (r == l->shared.record ||
		    rl_process_alive_as(&g->process[r], &dead_pid[r])) {
			alive |= (uint64_t)1 << r;
			dead_pid[r] = 0;
		}
	}
	return alive;
}

static bool rl_owner_alive(struct rl_region *g, uint64_t owner, uint64_t alive)
{
	uint64_t r = owner & 0xffff;

	/* relaxed: under the guard; a record's claimer set it before ready */
	return r < RL_PROCESSES && (alive >> r & 1) &&
	       owner >> 16 == atomic_load_explicit(&g->process[r].generation,
						   memory_order_relaxed);
}

/*
 * rl_shared_recover: a process died (holding the guard, perhaps in the
 * middle of a section); guard.  Every node is looked at: a listed node of
 * a living process is kept, and so is the node the recovering call has
 * just allocated; anything else is freed (a dead holder's exclusive range
 * becoming a dead range).  The index, the counts and the
 * free nodes are rebuilt from the nodes kept, so that nothing a dead guard
 * holder left half done is followed.  Then the records judged dead are
 * freed, and every waiter that nothing blocks any more is granted.
 */
static void rl_shared_recover(struct rl_lock *l)
{
	struct rl_region *g = rl_header_of(l);
	int32_t dead_pid[RL_PROCESSES];
	uint64_t alive = rl_records_alive(l, dead_pid);
	struct rl_listed *listed = &g->listed;

	if (rl_is_broken(g))
		return;
	if (g->dead_ranges > RL_DEAD_RANGES)
		g->dead_ranges = RL_DEAD_RANGES;
	listed->root = 0;
	listed->arrivals = 0;
	listed->waiting = 0;
	g->free = 0;
	for (uint32_t i = l->shared.nodes; i-- > 0;) {
		struct rl_request *n = rl_node_at(l, i);
		/* relaxed: under the guard */
		uint32_t s = atomic_load_explicit(&n->state, memory_order_relaxed);

		if (rl_owner_alive(g, n->owner, alive)) {
			if (rl_node_listed(n)) {
				rl_index_reinsert(l, n);
				listed->waiting += s != RL_HELD;
				continue;
			}
			/* a live process's node is idle only inside its
			 * section: ours, just allocated (rl_shared_refused) */
			if (s == RL_IDLE)
				continue;
		}
		/* relaxed: see rl_shared_handle() */
		if (s == RL_HELD && n->exclusive &&
		    atomic_load_explicit(&n->seen, memory_order_relaxed))
			rl_dead_range_add(g, n->start, n->end);
		rl_shared_node_free(l, n);
	}
	/* Free the records judged dead, each only if it still has the pid it
	 * was judged with (a record free when judged may have been claimed
	 * since, by a process that lives: the stress with kills found it). */
	for (uint32_t r = 0; r < RL_PROCESSES; r++) {
		struct rl_process *p = &g->process[r];
		int32_t pid = dead_pid[r];

		if (pid == 0)
			continue;
		/* relaxed: ready is rewritten by the next claimer after its
		 * CAS on pid, which this one must beat to free the record */
		atomic_store_explicit(&p->ready, 0, memory_order_relaxed);
		/* release: the record's nodes are free before a new claimer
		 * can take it; pairs with the claimer's acquire CAS */
		atomic_compare_exchange_strong_explicit(&p->pid, &pid, 0,
							memory_order_release,
							memory_order_relaxed);
	}
	rl_queue_grant_after(l, 0, 0, RANGELOCK_EOF);
}

/* What rl_blockers_of collects: the records owning nodes in a range. */
struct rl_blockers {
	struct rl_region *g;
	uint64_t me;                /* the asking node's seq, or UINT64_MAX */
	bool exclusive;
	uint64_t records;           /* a bit each */
};

static bool rl_blocker_of(struct rl_request *e, void *arg)
{
	struct rl_blockers *b = arg;

	if (e->seq < b->me && (e->exclusive || b->exclusive) &&
	    (e->owner & 0xffff) < RL_PROCESSES)
		b->records |= (uint64_t)1 << (e->owner & 0xffff);
	return false;
}

static uint64_t rl_monotonic_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Is blocker record r dead?  Guard.  A record found alive less than
 * RL_ALIVE_FRESH_NS ago (by any process: CLOCK_MONOTONIC is the system's)
 * is not looked at again.  A scribbled time only makes the check happen. */
static bool rl_blocker_dead(struct rl_region *g, uint32_t r, uint64_t now)
{
	if (now - g->alive_at[r] < RL_ALIVE_FRESH_NS)
		return false;
	if (rl_record_dead(g, r))
		return true;
	g->alive_at[r] = now;
	return false;
}

/* rl_reap_blockers: if a process owning something that blocks a request
 * for [start, end) (before seq `me`) is dead, recover; guard.  `now` is
 * the caller's rl_monotonic_ns().  True if it did. */
static bool rl_reap_blockers(struct rl_lock *l, uint64_t me, uint64_t start,
			     uint64_t end, bool exclusive, uint64_t now)
{
	struct rl_region *g = rl_header_of(l);
	struct rl_blockers b = { g, me, exclusive, 0 };

	rl_index_any(l, start, end, rl_blocker_of, &b);
	b.records &= ~((uint64_t)1 << l->shared.record);
	for (uint32_t r = 0; b.records; r++, b.records >>= 1)
		if ((b.records & 1) && rl_blocker_dead(g, r, now)) {
			rl_shared_recover(l);
			return true;
		}
	return false;
}

/* rl_shared_poll: q has waited RL_POLL_NS; are its blockers alive?  Takes
 * the guard.  False if the region is broken (the wait must end).  If none
 * is dead, q is granted anyway when nothing blocks it any more (a
 * safeguard: every path that unblocks a waiter grants it). */
bool rl_shared_poll(struct rl_lock *l, struct rl_request *q)
{
	bool ok;

	rl_shared_guard_lock(l);
	ok = !rl_is_broken(rl_header_of(l));
	if (ok && rl_node_listed(q) &&
	    atomic_load_explicit(&q->state, memory_order_relaxed) != RL_HELD &&
	    !rl_reap_blockers(l, q->seq, q->start, q->end, q->exclusive,
			      rl_monotonic_ns()))
		rl_queue_grant_after(l, 0, q->start, q->end);
	rl_shared_guard_unlock(l);
	return ok;
}

/* rl_shared_refused: a try (or a past deadline) was refused; guard.  At
 * most once per RL_POLL_NS per region, look at the blockers' owners: true
 * if dead ones were found and recovered from (worth a second attempt). */
bool rl_shared_refused(struct rl_lock *l, uint64_t start, uint64_t end,
		       bool exclusive)
{
	struct rl_region *g = rl_header_of(l);
	uint64_t ns = rl_monotonic_ns();

	/* relaxed: a rate limit, under the guard */
	if (ns - atomic_load_explicit(&g->polled, memory_order_relaxed) <
	    (uint64_t)RL_POLL_NS)
		return false;
	atomic_store_explicit(&g->polled, ns, memory_order_relaxed);
	return rl_reap_blockers(l, UINT64_MAX, start, end, exclusive, ns);
}

/* ---- records, attach, detach */

/* rl_record_claim: take a free record of [first, last) for this process. */
static int rl_record_claim(struct rl_region *g, uint32_t first, uint32_t last,
			   int fd, uint64_t token)
{
	for (uint32_t r = first; r < last; r++) {
		struct rl_process *p = &g->process[r];
		int32_t free_pid = 0;

		/* acquire: the recovery that freed it is done with it; pairs
		 * with its release store */
		if (!atomic_compare_exchange_strong_explicit(
			    &p->pid, &free_pid, (int32_t)getpid(),
			    memory_order_acquire, memory_order_relaxed))
			continue;
		p->fd = fd;
		p->token = token;
		/* relaxed: published by the release below */
		atomic_fetch_add_explicit(&p->generation, 1, memory_order_relaxed);
		/* release: fd and token before anyone reads them; pairs with
		 * the acquire in rl_process_alive() */
		atomic_store_explicit(&p->ready, 1, memory_order_release);
		return (int)r;
	}
	return -1;
}

static void rl_record_release(struct rl_region *g, uint32_t r)
{
	/* relaxed: rewritten by the next claimer after its CAS */
	atomic_store_explicit(&g->process[r].ready, 0, memory_order_relaxed);
	/* release: pairs with the next claimer's CAS */
	atomic_store_explicit(&g->process[r].pid, 0, memory_order_release);
}

/* The view now speaks for record r, as claimed. */
static void rl_view_claimed(struct rl_lock *l, uint32_t r)
{
	l->shared.record = r;
	/* relaxed: our own claim's */
	l->shared.generation = atomic_load_explicit(
		&rl_header_of(l)->process[r].generation, memory_order_relaxed);
}

size_t rangelock_shared_size(unsigned max_requests)
{
	if (max_requests == 0 || max_requests > RL_NODES_MAX)
		return 0;
	return RL_NODES_AT + (size_t)max_requests * RL_NODE_BYTES;
}

int rangelock_shared_init(void *region, size_t size)
{
	struct rl_region *g = region;
	size_t nodes;

	if (!region || (uintptr_t)region % 64 || size < RL_NODES_AT + RL_NODE_BYTES)
		return EINVAL;
	nodes = (size - RL_NODES_AT) / RL_NODE_BYTES;
	if (nodes > RL_NODES_MAX)
		nodes = RL_NODES_MAX;
	memset(region, 0, RL_NODES_AT);   /* the header; magic 0 until the
					   * end */
	g->layout = RL_REGION_LAYOUT;
	g->nodes = (uint32_t)nodes;
	g->size = size;
	for (size_t i = nodes; i-- > 0;) {
		struct rl_request *n = (struct rl_request *)(void *)(
			(char *)region + RL_NODES_AT + i * RL_NODE_BYTES);

		memset(n, 0, sizeof(*n));
		n->left = g->free;
		atomic_init(&n->state, RL_FREE);
		g->free = (uint32_t)i + 1;
	}
	/* release: the region is ready before an attacher sees the magic;
	 * pairs with the acquire in rangelock_shared_attach() */
	atomic_store_explicit(&g->magic, RL_REGION_MAGIC, memory_order_release);
	return 0;
}

int rangelock_shared_attach(rangelock_t *lk, void *region, size_t size)
{
	struct rl_lock *l = rl_lock_of(lk);
	struct rl_region *g = region;
	int fd, r, rc;
	uint64_t token;

	if (!region || (uintptr_t)region % 64 || size < RL_NODES_AT)
		return EINVAL;
	/* acquire: pairs with the release in rangelock_shared_init() */
	if (atomic_load_explicit(&g->magic, memory_order_acquire) !=
		    RL_REGION_MAGIC ||
	    g->layout != RL_REGION_LAYOUT || g->size != size || g->nodes == 0 ||
	    g->nodes > (size - RL_NODES_AT) / RL_NODE_BYTES)
		return EINVAL;
	pthread_once(&rl_fork_once, rl_watch_forks);
	rc = rl_marker_get(&fd, &token);
	if (rc)
		return rc;

	memset(l, 0, sizeof(*l));
	l->flags = RL_SHARED;
	l->shared.region = region;
	l->shared.nodes = g->nodes;
	/* relaxed: this process's own count */
	l->shared.forks = atomic_load_explicit(&rl_forks, memory_order_relaxed);

	r = rl_record_claim(g, 0, RL_PROCESSES - 1, fd, token);
	if (r < 0) {
		/* full: reap through the last record, then try once more */
		r = rl_record_claim(g, RL_PROCESSES - 1, RL_PROCESSES, fd, token);
		if (r < 0) {
			memset(l, 0, sizeof(*l));
			return EAGAIN;
		}
		rl_view_claimed(l, (uint32_t)r);
		rl_shared_guard_lock(l);
		rl_shared_recover(l);
		rl_shared_guard_unlock(l);
		rl_record_release(g, (uint32_t)r);
		r = rl_record_claim(g, 0, RL_PROCESSES - 1, fd, token);
		if (r < 0) {
			memset(l, 0, sizeof(*l));
			return EAGAIN;
		}
	}
	rl_view_claimed(l, (uint32_t)r);
	return 0;
}

/* rl_shared_detach: rangelock_destroy of a view.  EBUSY while this record
 * holds or waits for anything. */
int rl_shared_detach(struct rl_lock *l)
{
	struct rl_region *g = rl_header_of(l);
	uint64_t tag;
	int rc = 0;

	if (!rl_view_ours(l))
		return EINVAL;
	rl_shared_guard_lock(l);
	tag = rl_tag(l);
	for (uint32_t i = 0; i < l->shared.nodes && !rc; i++) {
		struct rl_request *n = rl_node_at(l, i);

		if (rl_node_listed(n) && n->owner == tag)
			rc = EBUSY;
	}
	rl_shared_guard_unlock(l);
	if (!rc) {
		rl_record_release(g, l->shared.record);
		memset(l, 0, sizeof(*l));
	}
	return rc;
}
