/* SPDX-License-Identifier: MIT */
/*
 * c_list.c - a lock-free range lock after Kogan, Dice and Issa, "Scalable
 * Range Locks for Scalable Address Spaces and Beyond" (EuroSys 2020),
 * reader-writer variant, written from scratch.
 *
 * Held ranges are nodes of one singly linked list sorted by start.  Lock
 * walks the list and CASes its node in before the first node it must
 * precede; a node it conflicts with makes it wait until that node is
 * deleted.  Unlock only marks its node (the low bit of its next pointer);
 * walkers unlink marked nodes as they pass.  Readers may be inserted before
 * an overlapping reader, so after inserting, a reader re-checks the nodes
 * after it and a writer the nodes before it; on a conflict it deletes its
 * own node, waits for the other one and starts again.
 *
 * Nodes come from per-thread pools and are reused only after an epoch-based
 * grace period (every thread that could still hold a pointer to a node has
 * since left the list), so the uncontended path never calls malloc.
 * Waiting spins, then yields.  No FIFO: this is the published design.
 */
#include <pthread.h>
#include <stdlib.h>

#include "bench_wait.h"
#include "contender.h"

#define MARK ((uintptr_t)1)
#define MAX_THREADS 256

struct lnode {
	_Atomic uintptr_t next;     /* struct lnode * | MARK when deleted */
	uint64_t start, end;
	bool reader;
	struct lnode *free_next;    /* pool / retired list link */
	uint64_t retired_epoch;
	struct lnode *all_next;     /* every node, for destroy */
};

struct llock {
	_Alignas(64) _Atomic uintptr_t head;
	_Alignas(64) _Atomic uint64_t epoch;
	_Alignas(64) _Atomic uint64_t active[MAX_THREADS]; /* 0: outside */
	atomic_int nslots;
	pthread_mutex_t all_mu;
	struct lnode *all;
};

struct lthread {
	struct llock *l;
	int slot;
	unsigned ops;
	struct lnode *pool;
	struct lnode *retired, *retired_tail;
};

static struct lnode *ptr(uintptr_t v)
{
	return (struct lnode *)(v & ~MARK);
}

/* ---- epochs ------------------------------------------------------------ */

static void epoch_enter(struct lthread *t)
{
	/* seq_cst: the announcement must be visible before we read any node
	 * pointer; pairs with the seq_cst scan in epoch_try_advance(). */
	atomic_store_explicit(&t->l->active[t->slot],
			      atomic_load_explicit(&t->l->epoch, memory_order_seq_cst),
			      memory_order_seq_cst);
}

static void epoch_leave(struct lthread *t)
{
	/* release: our reads of nodes are done; pairs with the scan. */
	atomic_store_explicit(&t->l->active[t->slot], 0, memory_order_release);
}

static void epoch_try_advance(struct llock *l)
{
	uint64_t e = atomic_load_explicit(&l->epoch, memory_order_seq_cst);
	int n = atomic_load_explicit(&l->nslots, memory_order_acquire);

	for (int i = 0; i < n; i++) {
		/* seq_cst: pairs with epoch_enter()'s store. */
		uint64_t a = atomic_load_explicit(&l->active[i], memory_order_seq_cst);
		if (a && a != e)
			return;
	}
	atomic_compare_exchange_strong_explicit(&l->epoch, &e, e + 1,
						memory_order_seq_cst,
						memory_order_relaxed);
}

static void retire(struct lthread *t, struct lnode *n)
{
	n->retired_epoch = atomic_load_explicit(&t->l->epoch, memory_order_seq_cst);
	n->free_next = NULL;
	if (t->retired_tail)
		t->retired_tail->free_next = n;
	else
		t->retired = n;
	t->retired_tail = n;
}

/* Nodes retired two epochs ago can no longer be seen by anyone. */
static void reclaim(struct lthread *t)
{
	uint64_t e = atomic_load_explicit(&t->l->epoch, memory_order_seq_cst);

	while (t->retired && t->retired->retired_epoch + 2 <= e) {
		struct lnode *n = t->retired;

		t->retired = n->free_next;
		if (!t->retired)
			t->retired_tail = NULL;
		n->free_next = t->pool;
		t->pool = n;
	}
}

static struct lnode *node_get(struct lthread *t)
{
	struct lnode *n = t->pool;

	if ((++t->ops & 63) == 0) {
		epoch_try_advance(t->l);
		reclaim(t);
		n = t->pool;
	}
	if (n) {
		t->pool = n->free_next;
		return n;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		bench_die("list: out of memory");
	pthread_mutex_lock(&t->l->all_mu);
	n->all_next = t->l->all;
	t->l->all = n;
	pthread_mutex_unlock(&t->l->all_mu);
	return n;
}

/* ---- the list ---------------------------------------------------------- */

/* Where does n go relative to cur: -1 after it, 1 before it, 0 conflict. */
static int compare(const struct lnode *cur, const struct lnode *n)
{
	bool readers = cur->reader && n->reader;

	if (n->start >= cur->end || (readers && n->start >= cur->start))
		return -1;
	if (cur->start >= n->end || (readers && cur->start >= n->start))
		return 1;
	return 0;
}

static bool overlaps(const struct lnode *a, const struct lnode *b)
{
	return a->start < b->end && b->start < a->end;
}

static void wait_deleted(struct lnode *cur)
{
	/* acquire: the deleter's writes; pairs with the release fetch_or in
	 * list_unlock(). */
	for (int spins = 0;
	     !(atomic_load_explicit(&cur->next, memory_order_acquire) & MARK);
	     spins++) {
		if (spins < 100)
			bench_relax();
		else
			sched_yield();
	}
}

/* Unlink cur (marked) from *prev; retire it if we did. */
static bool unlink_marked(struct lthread *t, _Atomic uintptr_t *prev,
			  struct lnode *cur)
{
	uintptr_t next = atomic_load_explicit(&cur->next, memory_order_acquire) & ~MARK;
	uintptr_t expect = (uintptr_t)cur;

	/* acq_rel: publish the shortcut; see the nodes after it. */
	if (atomic_compare_exchange_strong_explicit(prev, &expect, next,
						    memory_order_acq_rel,
						    memory_order_acquire)) {
		retire(t, cur);
		return true;
	}
	return false;
}

/* Insert n; false if it had to wait (caller retries from the head). */
static void insert(struct lthread *t, struct lnode *n)
{
	_Atomic uintptr_t *prev;
	uintptr_t cur;

again:
	prev = &t->l->head;
	for (;;) {
		cur = atomic_load_explicit(prev, memory_order_acquire);
		if (cur & MARK)           /* prev itself was deleted */
			goto again;
		struct lnode *c = ptr(cur);
		if (c && (atomic_load_explicit(&c->next, memory_order_acquire) & MARK)) {
			if (!unlink_marked(t, prev, c))
				goto again;
			continue;
		}
		int where = c ? compare(c, n) : 1;
		if (where < 0) {
			prev = &c->next;
			continue;
		}
		if (where == 0) {
			wait_deleted(c);
			continue;
		}
		/* relaxed: n is not shared until the CAS publishes it. */
		atomic_store_explicit(&n->next, cur, memory_order_relaxed);
		/* release: publish n's fields; pairs with walkers' acquire. */
		if (atomic_compare_exchange_strong_explicit(prev, &cur, (uintptr_t)n,
							    memory_order_release,
							    memory_order_relaxed))
			return;
	}
}

/* After inserting n: the first node that conflicts with n and that n did
 * not wait for, or NULL.  Readers check forward, writers from the head. */
static struct lnode *validate(struct lthread *t, struct lnode *n)
{
	_Atomic uintptr_t *const from = n->reader ? &n->next : &t->l->head;
	_Atomic uintptr_t *prev = from;

	for (;;) {
		uintptr_t cur = atomic_load_explicit(prev, memory_order_acquire) & ~MARK;
		struct lnode *c = ptr(cur);

		if (!c || c == n || c->start >= n->end)
			return NULL;
		if (atomic_load_explicit(&c->next, memory_order_acquire) & MARK) {
			if (!unlink_marked(t, prev, c))
				prev = from;   /* lost a race: rescan */
			continue;
		}
		if ((!n->reader || !c->reader) && overlaps(c, n))
			return c;
		prev = &c->next;
	}
}

static void *list_create(uint64_t object_size)
{
	struct llock *l = aligned_alloc(64, sizeof(*l));

	(void)object_size;
	if (!l)
		return NULL;
	*l = (struct llock){ 0 };
	pthread_mutex_init(&l->all_mu, NULL);
	atomic_store_explicit(&l->epoch, 1, memory_order_relaxed);
	return l;
}

static void list_destroy(void *lock)
{
	struct llock *l = lock;

	for (uintptr_t c = atomic_load_explicit(&l->head, memory_order_acquire);
	     ptr(c); c = atomic_load_explicit(&ptr(c)->next, memory_order_acquire))
		if (!(atomic_load_explicit(&ptr(c)->next, memory_order_acquire) & MARK))
			bench_die("list: destroy of a busy lock");
	while (l->all) {
		struct lnode *n = l->all;
		l->all = n->all_next;
		free(n);
	}
	pthread_mutex_destroy(&l->all_mu);
	free(l);
}

static void *list_thread_init(void *lock)
{
	struct llock *l = lock;
	struct lthread *t = calloc(1, sizeof(*t));

	if (!t)
		bench_die("list: out of memory");
	t->l = l;
	/* acq_rel: take a slot; pairs with the acquire in epoch_try_advance. */
	t->slot = atomic_fetch_add_explicit(&l->nslots, 1, memory_order_acq_rel);
	if (t->slot >= MAX_THREADS)
		bench_die("list: more than %d threads", MAX_THREADS);
	return t;
}

static void list_thread_fini(void *lock, void *ctx)
{
	(void)lock;
	free(ctx);   /* its nodes stay on the lock's `all` list */
}

static void list_lock(void *lock, void *ctx, struct bench_range *r)
{
	struct lthread *t = ctx;
	struct lnode *n = node_get(t), *other;

	(void)lock;
	n->start = r->start;
	n->end = r->end;
	n->reader = !r->exclusive;
	epoch_enter(t);
	for (;;) {
		insert(t, n);
		other = validate(t, n);
		if (!other)
			break;
		/* Back off: delete our node, wait for the other, retry with a
		 * fresh node (ours may still be seen by walkers). */
		atomic_fetch_or_explicit(&n->next, MARK, memory_order_release);
		wait_deleted(other);
		n = node_get(t);
		n->start = r->start;
		n->end = r->end;
		n->reader = !r->exclusive;
	}
	epoch_leave(t);
	*(struct lnode **)(void *)r->handle = n;
}

static void list_unlock(void *lock, void *ctx, struct bench_range *r)
{
	struct lnode *n = *(struct lnode **)(void *)r->handle;

	(void)lock;
	(void)ctx;
	/* release: the holder's writes; pairs with the acquire in
	 * wait_deleted() and the walkers.  The node is unlinked and retired
	 * by the next walker that passes it. */
	atomic_fetch_or_explicit(&n->next, MARK, memory_order_release);
}

const struct contender contender_list = {
	.name = "list",
	.about = "lock-free sorted list after Kogan, Dice, Issa (EuroSys 2020)",
	.create = list_create,
	.destroy = list_destroy,
	.thread_init = list_thread_init,
	.thread_fini = list_thread_fini,
	.lock = list_lock,
	.unlock = list_unlock,
};
