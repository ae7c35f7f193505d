/* SPDX-License-Identifier: MIT */
/*
 * rlfile.c - a page cache over a real file, locked by ranges.  The lock
 * modes of each operation, the lock order and the size rule are in
 * rlfile.h; this file follows them.
 */
#include "rlfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define PAGE ((uint64_t)RLFILE_PAGE)
/* The cache's index: chains of pages hashed by offset, NLOCKS locks, chain
 * k under lock k % NLOCKS; the chains double (under every lock) as the
 * pages outnumber them twice, so that a lookup walks about two pages
 * whatever the file's size.  (Growing holds every lock at once:
 * ThreadSanitizer follows at most 64.) */
#define NLOCKS 32

struct rlfile_page {
	uint64_t pgoff;
	struct rlfile_page *next;   /* bucket chain; bucket lock */
	unsigned refs;              /* bucket lock */
	bool removed;               /* out of the cache; bucket lock + page lock */
	pthread_mutex_t lock;       /* the page lock: data, uptodate, dirty */
	bool uptodate;
	bool mapped_writable;       /* a mapping may store to it without a
				     * fault (page lock): set by a store's
				     * fault, cleared by write-protecting */
	_Atomic bool dirty;         /* written under the page lock; peeked at
				     * without it by writeback's scan */
	unsigned char *data;        /* PAGE bytes: in the store once the file
				     * is mapped (store.h), else right after
				     * the struct (one allocation: not
				     * PAGE-aligned, which only O_DIRECT would
				     * need, and which cost a second page per
				     * page) */
};

/*
 * The pages a set of rlfiles may keep (rlfile.h, struct rlfile_budget): an
 * rlfile has its own unless its options name a shared one.  Clean pages
 * beyond max_pages are evicted, from any member; a writer that finds more
 * than half of max_pages dirty first writes back (its own file) or waits
 * for the members' writeback threads, as the kernel's balance_dirty_pages
 * throttles writers to a dirty limit.
 */
struct rlfile_budget {
	size_t max_pages;           /* 0: no limit */
	_Atomic size_t cached;      /* pages of all members */
	_Atomic size_t dirty;       /* dirty pages of all members */
	_Atomic size_t evict_at;    /* creating a page past this many evicts */
	_Atomic int wb_error;       /* the last write-back pass's error, or 0 */
	pthread_mutex_t mu;         /* members; and evicting from them */
	pthread_cond_t cleaned;     /* broadcast after each write-back pass */
	struct rlfile *members;     /* mu */
};

struct bucket {
	pthread_mutex_t lock;
};

struct rlfile {
	int fd, dfd;                /* buffered and O_DIRECT descriptors */
	_Atomic bool writable;      /* fd and dfd are O_RDWR (not O_RDONLY) */
	struct rlfile_options opt;
	rangelock_t rl;
	pthread_rwlock_t rw;        /* RLFILE_LOCK_FILE */
	_Atomic uint64_t size;      /* changes under [size, EOF) exclusive */
	_Atomic size_t cached;      /* pages in the buckets */
	_Atomic size_t dirty;       /* dirty pages in the buckets */
	_Atomic uint64_t errseq;    /* write-back errors (see error_record) */
	struct rlfile_budget *budget;   /* opt.budget, or own_budget */
	struct rlfile_budget own_budget;
	struct rlfile *budget_next;     /* budget->mu */
	struct bucket bucket[NLOCKS];
	struct rlfile_page **chain;     /* nchains; chain k: bucket[k % NLOCKS] */
	size_t nchains;                 /* a power of two, >= NLOCKS; every
					 * bucket lock to change it */
	pthread_t writeback;
	pthread_mutex_t wb_mu;
	pthread_cond_t wb_cv;
	bool wb_stop;               /* wb_mu */
	bool wb_started;            /* wb_mu: the thread runs */
	/* The pages' memory once the file is mapped (store.h); set once,
	 * under [0, EOF) exclusive, by rlfile_mmap (store_mu). */
	_Atomic(struct rlfile_store *) store;
	pthread_mutex_t store_mu;
};

/* ---- the range lock, or its stand-ins -------------------------------- */

static int hold(struct rlfile *f, rangelock_range_t *r, uint64_t start,
		uint64_t end, bool exclusive)
{
	switch (f->opt.lock) {
	case RLFILE_LOCK_RANGE:
		return exclusive ? rangelock_wrlock(&f->rl, r, start, end)
				 : rangelock_rdlock(&f->rl, r, start, end);
	case RLFILE_LOCK_FILE:
		return exclusive ? pthread_rwlock_wrlock(&f->rw)
				 : pthread_rwlock_rdlock(&f->rw);
	case RLFILE_LOCK_NONE:
		break;
	}
	return 0;
}

static void release(struct rlfile *f, rangelock_range_t *r)
{
	if (f->opt.lock == RLFILE_LOCK_RANGE)
		rangelock_unlock(&f->rl, r);
	else if (f->opt.lock == RLFILE_LOCK_FILE)
		pthread_rwlock_unlock(&f->rw);
}

static void at(struct rlfile *f, enum rlfile_point point)
{
	if (f->opt.test_hook)
		f->opt.test_hook(f->opt.test_hook_arg, point);
}

static uint64_t page_floor(uint64_t off) { return off & ~(PAGE - 1); }
static uint64_t page_ceil(uint64_t off) { return (off + PAGE - 1) & ~(PAGE - 1); }

/* The store, or NULL while the file was never mapped.  acquire: pairs
 * with the release in store_attach (page creators hold a range, which
 * orders it too; writeback and eviction may not). */
static struct rlfile_store *store_of(struct rlfile *f)
{
	return atomic_load_explicit(&f->store, memory_order_acquire);
}

static bool page_in_store(const struct rlfile_page *p)
{
	return p->data != (const unsigned char *)(p + 1);
}

/* The memfd follows the size (store.h); errors only where it must grow. */
static int store_follow(struct rlfile *f, uint64_t size)
{
	struct rlfile_store *s = store_of(f);

	return s ? store_resize(s, size) : 0;
}

static uint64_t size_of(struct rlfile *f)
{
	/* relaxed: the size is stable under the ranges its callers hold
	 * (rlfile.h, "size"); the lock orders the data. */
	return atomic_load_explicit(&f->size, memory_order_relaxed);
}

/* ---- the cache --------------------------------------------------------- */

static uint32_t page_hash(uint64_t pgoff)
{
	return (uint32_t)((pgoff * 0x9E3779B97F4A7C15ull) >> 32);
}

static struct bucket *bucket_of(struct rlfile *f, uint64_t pgoff)
{
	return &f->bucket[page_hash(pgoff) % NLOCKS];
}

/* pgoff's chain; its bucket lock held. */
static struct rlfile_page **chain_of(struct rlfile *f, uint64_t pgoff)
{
	return &f->chain[page_hash(pgoff) & (f->nchains - 1)];
}

/* Twice as many chains, if the pages still outnumber them twice (no
 * bucket lock held).  Without memory the chains only stay longer. */
static void cache_grow(struct rlfile *f)
{
	struct rlfile_page **c;
	size_t n;

	for (int i = 0; i < NLOCKS; i++)
		pthread_mutex_lock(&f->bucket[i].lock);
	n = f->nchains * 2;
	/* relaxed: a count; we hold every bucket lock */
	if (atomic_load_explicit(&f->cached, memory_order_relaxed) > 2 * f->nchains &&
	    (c = calloc(n, sizeof(*c)))) {
		for (size_t k = 0; k < f->nchains; k++)
			for (struct rlfile_page *p = f->chain[k], *next; p; p = next) {
				struct rlfile_page **head = &c[page_hash(p->pgoff) & (n - 1)];

				next = p->next;
				p->next = *head;
				*head = p;
			}
		free(f->chain);
		f->chain = c;
		f->nchains = n;
	}
	for (int i = NLOCKS - 1; i >= 0; i--)
		pthread_mutex_unlock(&f->bucket[i].lock);
}

static void page_free(struct rlfile_page *p)
{
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static void budget_evict(struct rlfile_budget *b);

/* relaxed, all of the counts: they only decide when to evict and throttle;
 * the bucket and page locks order the pages themselves */
static void count_cached(struct rlfile *f, long n)
{
	atomic_fetch_add_explicit(&f->cached, (size_t)n, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->budget->cached, (size_t)n, memory_order_relaxed);
}

static void writeback_start(struct rlfile *f);

/* Mark p dirty or clean (its page lock held), keeping the counts.  The
 * file's first dirty page starts its writeback thread. */
static void page_set_dirty(struct rlfile *f, struct rlfile_page *p, bool dirty)
{
	/* relaxed: under the page lock */
	if (atomic_load_explicit(&p->dirty, memory_order_relaxed) == dirty)
		return;
	atomic_store_explicit(&p->dirty, dirty, memory_order_relaxed);
	/* relaxed: a count; the thread's start is ordered by wb_mu */
	if (atomic_fetch_add_explicit(&f->dirty, dirty ? 1 : (size_t)-1,
				      memory_order_relaxed) == 0 && dirty)
		writeback_start(f);
	atomic_fetch_add_explicit(&f->budget->dirty, dirty ? 1 : (size_t)-1,
				  memory_order_relaxed);
}

/* A new page struct for pgoff, its memory in the store if the file is
 * mapped (not up to date: its bytes are whatever the memory held). */
static struct rlfile_page *page_new(struct rlfile *f, uint64_t pgoff)
{
	struct rlfile_store *s = store_of(f);
	unsigned char *mem = s ? store_page(s, pgoff) : NULL;
	/* the bytes need no zeroing: a page is filled from the disk or
	 * written whole before anyone reads it (uptodate) */
	struct rlfile_page *p = malloc(sizeof(*p) + (mem ? 0 : PAGE));

	if (!p)
		return NULL;
	memset(p, 0, sizeof(*p));
	p->data = mem ? mem : (unsigned char *)(p + 1);
	p->pgoff = pgoff;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

/* The cached page pgoff with a reference, created if `create`; NULL if
 * absent (or out of memory). */
static struct rlfile_page *page_get(struct rlfile *f, uint64_t pgoff,
				    bool create)
{
	struct bucket *b = bucket_of(f, pgoff);
	struct rlfile_page *p, **head;
	bool created = false, grow = false;

	pthread_mutex_lock(&b->lock);
	head = chain_of(f, pgoff);
	for (p = *head; p; p = p->next)
		if (p->pgoff == pgoff)
			break;
	if (!p && create && (p = page_new(f, pgoff))) {
		p->next = *head;
		*head = p;
		created = true;
		count_cached(f, 1);
		/* relaxed: a count, re-checked under every lock; nchains
		 * is read under ours, which a grow holds */
		grow = atomic_load_explicit(&f->cached, memory_order_relaxed) >
		       2 * f->nchains;
	}
	if (p)
		p->refs++;
	pthread_mutex_unlock(&b->lock);
	if (grow)
		cache_grow(f);
	/* only a new page grows the cache; relaxed: counts that only decide
	 * whether to evict */
	if (created && f->budget->max_pages &&
	    atomic_load_explicit(&f->budget->cached, memory_order_relaxed) >
		    atomic_load_explicit(&f->budget->evict_at, memory_order_relaxed))
		budget_evict(f->budget);
	return p;
}

static void page_put(struct rlfile *f, struct rlfile_page *p)
{
	struct bucket *b = bucket_of(f, p->pgoff);
	bool last;

	pthread_mutex_lock(&b->lock);
	last = --p->refs == 0 && p->removed;
	pthread_mutex_unlock(&b->lock);
	if (last)
		page_free(p);
}

/* p has left its bucket (whose lock we hold): out of the store too, and so
 * out of every mapping, before a new page for pgoff can be made there. */
static void page_forget(struct rlfile *f, struct rlfile_page *p)
{
	if (page_in_store(p))
		store_forget(store_of(f), p->pgoff);
}

/* Take p out of the cache (its page lock held), dirty or not (its data is
 * discarded); freed at the last put. */
static void page_remove(struct rlfile *f, struct rlfile_page *p)
{
	struct bucket *b = bucket_of(f, p->pgoff);

	page_set_dirty(f, p, false);
	pthread_mutex_lock(&b->lock);
	if (!p->removed) {
		struct rlfile_page **pp = chain_of(f, p->pgoff);

		while (*pp != p)
			pp = &(*pp)->next;
		*pp = p->next;
		p->removed = true;
		count_cached(f, -1);
		page_forget(f, p);
	}
	pthread_mutex_unlock(&b->lock);
}

/*
 * Evict clean pages of f nobody uses while the budget is above target.  No
 * range is needed: a page with no reference is reachable only through its
 * bucket, whose lock we hold, and a clean page holds what the disk holds
 * (everything that makes disk and page differ, a write, a fault, a direct
 * write or a punch, holds a reference or an exclusive range, and drops or
 * dirties the page before letting go).  So a reader that comes next finds
 * no page and reads the disk, as after any drop.
 */
static void evict_clean(struct rlfile *f, size_t target)
{
	for (int i = 0; i < NLOCKS; i++) {
		struct bucket *b = &f->bucket[i];
		struct rlfile_page **pp, *gone = NULL;

		/* relaxed: a count, enough to know when to stop */
		if (atomic_load_explicit(&f->budget->cached, memory_order_relaxed) <= target)
			break;
		pthread_mutex_lock(&b->lock);
		for (size_t k = (size_t)i; k < f->nchains; k += NLOCKS)
		for (pp = &f->chain[k]; *pp;) {
			struct rlfile_page *p = *pp;

			/* relaxed: dirty is set only under a reference */
			if (p->refs || atomic_load_explicit(&p->dirty, memory_order_relaxed)) {
				pp = &p->next;
				continue;
			}
			*pp = p->next;
			p->removed = true;
			page_forget(f, p);
			p->next = gone;
			gone = p;
			count_cached(f, -1);
		}
		pthread_mutex_unlock(&b->lock);
		while (gone) {
			struct rlfile_page *p = gone;

			gone = p->next;
			page_free(p);
		}
	}
}

/*
 * Bring the budget's pages down to 3/4 of its limit, from its members in
 * turn.  When pages in use or dirty keep it above that, the next eviction
 * waits until a quarter of the limit more pages were created (evict_at),
 * so that a dirty backlog does not make every new page scan the caches;
 * write-back evicts again once it has cleaned pages.
 */
static void budget_evict(struct rlfile_budget *b)
{
	size_t max = b->max_pages, target = max / 4 * 3, left;

	pthread_mutex_lock(&b->mu);
	for (struct rlfile *m = b->members; m; m = m->budget_next)
		evict_clean(m, target);
	pthread_mutex_unlock(&b->mu);
	/* relaxed: a threshold for a heuristic */
	left = atomic_load_explicit(&b->cached, memory_order_relaxed);
	atomic_store_explicit(&b->evict_at, left + max / 4 > max ? left + max / 4 : max,
			      memory_order_relaxed);
}

/* Referenced pages of the cache in [first, last), for removal or writeback;
 * *n of them, in a malloc'd array (NULL if none). */
/* Add p (its bucket lock held) to *v if it belongs: referenced.  False
 * without memory (then the list stops short). */
static bool collect(struct rlfile_page *p, bool dirty_only,
		    struct rlfile_page ***v, size_t *n, size_t *cap)
{
	/* relaxed: a peek; writeback re-checks under the page lock */
	if (dirty_only && !atomic_load_explicit(&p->dirty, memory_order_relaxed))
		return true;
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 64;
		struct rlfile_page **nv = realloc(*v, c * sizeof(**v));

		if (!nv)
			return false;
		*v = nv;
		*cap = c;
	}
	p->refs++;
	(*v)[(*n)++] = p;
	return true;
}

static struct rlfile_page **pages_in(struct rlfile *f, uint64_t first,
				     uint64_t last, bool dirty_only, size_t *n)
{
	struct rlfile_page **v = NULL;
	size_t cap = 0;
	bool room = true;

	*n = 0;
	/* a short range: its pages' own chains, not the whole cache */
	if (last - first <= 64) {
		for (uint64_t pgoff = first; pgoff < last && room; pgoff++) {
			struct bucket *b = bucket_of(f, pgoff);

			pthread_mutex_lock(&b->lock);
			for (struct rlfile_page *p = *chain_of(f, pgoff); p && room;
			     p = p->next)
				if (p->pgoff == pgoff)
					room = collect(p, dirty_only, &v, n, &cap);
			pthread_mutex_unlock(&b->lock);
		}
		return v;
	}
	for (int i = 0; i < NLOCKS && room; i++) {
		struct bucket *b = &f->bucket[i];

		pthread_mutex_lock(&b->lock);
		for (size_t k = (size_t)i; k < f->nchains && room; k += NLOCKS)
			for (struct rlfile_page *p = f->chain[k]; p && room;
			     p = p->next)
				if (p->pgoff >= first && p->pgoff < last)
					room = collect(p, dirty_only, &v, n, &cap);
		pthread_mutex_unlock(&b->lock);
	}
	return v;
}

/* Read p from disk if it is not up to date (page lock held). */
static int page_fill(struct rlfile *f, struct rlfile_page *p)
{
	ssize_t got;

	if (p->uptodate)
		return 0;
	got = pread(f->fd, p->data, PAGE, (off_t)(p->pgoff * PAGE));
	if (got < 0)
		return errno;
	memset(p->data + got, 0, PAGE - (size_t)got);
	p->uptodate = true;
	return 0;
}

/*
 * Write-back errors, reported the way the kernel's errseq_t does: errseq
 * holds the latest error (low 12 bits), a flag saying somebody has been told
 * of it, and a counter above them that moves when a new error is recorded
 * after the last one was seen.  Each open file description keeps a mark
 * (rlfile_error_mark) and is told of every error recorded after it, once
 * (rlfile_error_check).
 */
#define ERRSEQ_ERRNO 0xfffu
#define ERRSEQ_SEEN 0x1000u
#define ERRSEQ_ONE 0x2000u

static void error_record(struct rlfile *f, int err)
{
	/* relaxed: the error is the whole message; nothing else is
	 * published with it */
	uint64_t old = atomic_load_explicit(&f->errseq, memory_order_relaxed), new;

	do {
		new = (old & ~(uint64_t)(ERRSEQ_ERRNO | ERRSEQ_SEEN)) | (unsigned)err;
		if ((old & ERRSEQ_SEEN) || (old & ERRSEQ_ERRNO) != (unsigned)err ||
		    !(old & ERRSEQ_ERRNO))
			new += ERRSEQ_ONE;
	} while (new != old &&
		 !atomic_compare_exchange_weak_explicit(&f->errseq, &old, new,
							memory_order_relaxed,
							memory_order_relaxed));
}

uint64_t rlfile_error_mark(struct rlfile *f)
{
	/* relaxed: see error_record */
	uint64_t cur = atomic_load_explicit(&f->errseq, memory_order_relaxed);

	/* an error nobody has been told of yet is news to a new opener too */
	return cur & ERRSEQ_SEEN ? cur : 0;
}

int rlfile_error_check(struct rlfile *f, uint64_t *mark)
{
	/* relaxed: see error_record */
	uint64_t cur = atomic_load_explicit(&f->errseq, memory_order_relaxed);

	if ((cur | ERRSEQ_SEEN) == (*mark | ERRSEQ_SEEN))
		return 0;
	/* seen: only the error we report (a newer one stays news to all) */
	if (!(cur & ERRSEQ_SEEN))
		atomic_compare_exchange_strong_explicit(&f->errseq, &(uint64_t){ cur },
							cur | ERRSEQ_SEEN,
							memory_order_relaxed,
							memory_order_relaxed);
	*mark = cur | ERRSEQ_SEEN;
	return (int)(cur & ERRSEQ_ERRNO);
}

/* pwrite all of buf, as far as it goes: the bytes written, and in *err the
 * error that stopped it (0 if none, EIO for a write that made no progress
 * and said nothing). */
static size_t pwrite_all(int fd, const void *buf, size_t len, uint64_t off,
			 int *err)
{
	size_t done = 0;

	*err = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*err = n < 0 ? errno : EIO;
			break;
		}
		done += (size_t)n;
	}
	return done;
}

/* Begin p's write-back (page lock held): false if it is clean or gone;
 * else *len is its bytes below the size (0 past it), and a mapped page is
 * write-protected first: a store through a mapping from here on faults,
 * and waits for our page lock to dirty the page again, so it cannot land
 * unseen between the copy to disk and the page's marking clean. */
static bool writeback_begin(struct rlfile *f, struct rlfile_page *p, size_t *len)
{
	uint64_t off = p->pgoff * PAGE, size = size_of(f);

	/* relaxed: under the page lock, which orders it */
	if (!atomic_load_explicit(&p->dirty, memory_order_relaxed) || p->removed)
		return false;
	*len = off >= size ? 0 : size - off < PAGE ? (size_t)(size - off) : PAGE;
	if (p->mapped_writable && !(f->opt.test_flags & RLFILE_TEST_NO_WRITEPROTECT)) {
		store_protect(store_of(f), p->pgoff);
		p->mapped_writable = false;
	}
	return true;
}

/* End p's write-back with the write's error rc: a page that could not be
 * written stays dirty, and the error is recorded. */
static int writeback_end(struct rlfile *f, struct rlfile_page *p, int rc)
{
	if (rc) {
		error_record(f, rc);
		return rc;
	}
	at(f, RLFILE_WRITEBACK_WRITTEN);
	page_set_dirty(f, p, false);
	return 0;
}

/* Write p back if dirty (page lock held), only the bytes below the size. */
static int page_writeback(struct rlfile *f, struct rlfile_page *p)
{
	size_t len;
	int rc = 0;

	if (!writeback_begin(f, p, &len))
		return 0;
	if (len)
		pwrite_all(f->fd, p->data, len, p->pgoff * PAGE, &rc);
	return writeback_end(f, p, rc);
}

/*
 * Remove the cached pages of [first, last), writing dirty ones back first
 * if `writeback` (a page whose writeback fails stays cached, and the first
 * error is returned); the caller holds an exclusive range over them.
 */
static int drop_pages(struct rlfile *f, uint64_t first, uint64_t last,
		      bool writeback)
{
	size_t n;
	struct rlfile_page **v = pages_in(f, first, last, false, &n);
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&v[i]->lock);
		int e = writeback ? page_writeback(f, v[i]) : 0;

		rc = rc ? rc : e;
		if (!e)
			page_remove(f, v[i]);
		pthread_mutex_unlock(&v[i]->lock);
		page_put(f, v[i]);
	}
	free(v);
	return rc;
}

/* Zero [from, to) of cached page pgoff, if it is cached (partial punch,
 * truncate's tail); the caller holds an exclusive range over it. */
static void zero_cached(struct rlfile *f, uint64_t pgoff, size_t from,
			size_t to)
{
	struct rlfile_page *p = page_get(f, pgoff, false);

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->uptodate)
		memset(p->data + from, 0, to - from);
	pthread_mutex_unlock(&p->lock);
	page_put(f, p);
}

/* Drop what the cache holds at and beyond size, and zero the rest of the
 * page size falls in: nothing past the end of file may come back when the
 * file grows again.  The caller holds [size, EOF) exclusive. */
/* Zeros from size to the end of its page, if it is cached: after a
 * truncate, and before the size grows past it (the caller holds
 * [size, EOF) exclusive), where a store through a mapping may have put
 * bytes past the end (never written, and never to be seen once the file
 * grows, as with the kernel's mmap). */
static void zero_past(struct rlfile *f, uint64_t size)
{
	if (size % PAGE)
		zero_cached(f, size / PAGE, size % PAGE, PAGE);
}

static void forget_beyond(struct rlfile *f, uint64_t size)
{
	drop_pages(f, page_ceil(size) / PAGE, UINT64_MAX, false);
	zero_past(f, size);
	store_follow(f, size);   /* shrinking cannot fail */
}

/* ---- operations -------------------------------------------------------- */

static int read_cached(struct rlfile *f, void *buf, size_t len, uint64_t off,
		       size_t *done)
{
	rangelock_range_t r;
	uint64_t end, size;
	int rc;

	*done = 0;
	if (off + len < off)
		return EINVAL;
	if (len == 0)
		return 0;
	rc = hold(f, &r, page_floor(off), page_ceil(off + len), false);
	if (rc)
		return rc;
	size = size_of(f);
	end = off + len < size ? off + len : size;
	for (uint64_t pos = off; pos < end && !rc;) {
		uint64_t pgoff = pos / PAGE, in = pos % PAGE;
		size_t n = (size_t)(end - pos < PAGE - in ? end - pos : PAGE - in);
		struct rlfile_page *p = page_get(f, pgoff, true);

		if (!p) {
			rc = ENOMEM;
			break;
		}
		pthread_mutex_lock(&p->lock);
		rc = page_fill(f, p);
		if (!rc)
			memcpy((char *)buf + (pos - off), p->data + in, n);
		pthread_mutex_unlock(&p->lock);
		page_put(f, p);
		pos += n;
		*done += rc ? 0 : n;
	}
	release(f, &r);
	return rc;
}

/* Hold the range a write of [off, end) needs: shared over its pages, or
 * exclusive from the old size to EOF when it extends the file. */
static int hold_for_write(struct rlfile *f, rangelock_range_t *r, uint64_t off,
			  uint64_t end, bool exclusive, bool *extends)
{
	for (;;) {
		uint64_t size = size_of(f);
		bool ext = end > size;
		uint64_t start = page_floor(ext && size < off ? size : off);
		int rc = hold(f, r, start, ext ? RANGELOCK_EOF : page_ceil(end),
			      ext || exclusive);

		if (rc)
			return rc;
		if (!ext && end > size_of(f)) {   /* truncated meanwhile */
			release(f, r);
			continue;
		}
		*extends = ext;
		return 0;
	}
}

/* An extending write's new size, on disk too (as a hole), so that direct
 * reads below it see zeros before writeback, as i_size does in a kernel. */
static int set_size_at_least(struct rlfile *f, uint64_t end)
{
	int rc;

	if (end <= size_of(f))
		return 0;
	if ((rc = store_follow(f, end)))
		return rc;
	if (ftruncate(f->fd, (off_t)end) != 0) {
		rc = errno;
		store_follow(f, size_of(f));
		return rc;
	}
	/* relaxed: under [old size, EOF) exclusive */
	atomic_store_explicit(&f->size, end, memory_order_relaxed);
	return 0;
}

/* Copy buf into the cache at off; the caller holds the write's range.
 * The bytes copied, and in *err what stopped it short (0 if nothing). */
static size_t write_pages(struct rlfile *f, const void *buf, size_t len,
			  uint64_t off, int *err)
{
	uint64_t pos = off;

	*err = 0;
	while (pos < off + len && !*err) {
		uint64_t pgoff = pos / PAGE, in = pos % PAGE;
		size_t n = (size_t)(off + len - pos < PAGE - in ? off + len - pos
							       : PAGE - in);
		struct rlfile_page *p = page_get(f, pgoff, true);

		if (!p) {
			*err = ENOMEM;
			break;
		}
		pthread_mutex_lock(&p->lock);
		if (n < PAGE)
			*err = page_fill(f, p);
		if (!*err) {
			memcpy(p->data + in, (const char *)buf + (pos - off), n);
			p->uptodate = true;
			page_set_dirty(f, p, true);
			pos += n;
		}
		pthread_mutex_unlock(&p->lock);
		page_put(f, p);
	}
	return (size_t)(pos - off);
}

/* write_pages under a write's range from hold_for_write; an extending one
 * also moves the size (and the store first: its pages are made before the
 * size moves).  What the cache took past the end of a write that fell
 * short must not show when the file grows. */
static size_t write_locked(struct rlfile *f, const void *buf, size_t len,
			   uint64_t off, bool extends, int *err)
{
	size_t n;
	int rc;

	if (extends) {
		if ((*err = store_follow(f, off + len)))
			return 0;
		zero_past(f, size_of(f));
	}
	n = write_pages(f, buf, len, off, err);
	if (extends) {
		if (n && (rc = set_size_at_least(f, off + n)))
			n = 0, *err = rc;
		if (n < len)
			forget_beyond(f, size_of(f));
	}
	return n;
}

/* What pwrite(2) answers for a write that did `done` of its bytes and then
 * met err: the error only when nothing was done. */
static int partial(size_t done, int err, size_t *out)
{
	*out = done;
	return done ? 0 : err;
}

static int throttle_slow(struct rlfile *f);

/* Before a write dirties pages: when more than half the budget is dirty,
 * write back first (balance_dirty_pages).  No range is held here: writeback
 * takes shared ranges, which an exclusive request queued behind ours would
 * block. */
static int throttle(struct rlfile *f)
{
	struct rlfile_budget *b = f->budget;

	/* relaxed: a count that only decides whether to wait */
	if (!b->max_pages ||
	    atomic_load_explicit(&b->dirty, memory_order_relaxed) <= b->max_pages / 2)
		return 0;
	return throttle_slow(f);
}

static int write_cached(struct rlfile *f, const void *buf, size_t len,
			uint64_t off, size_t *done)
{
	rangelock_range_t r;
	bool extends;
	size_t n;
	int rc, err;

	*done = 0;
	if (off + len < off)
		return EINVAL;
	if (len == 0)
		return 0;
	if ((rc = throttle(f)))
		return rc;
	rc = hold_for_write(f, &r, off, off + len, false, &extends);
	if (rc)
		return rc;
	at(f, RLFILE_WRITE_LOCKED);
	n = write_locked(f, buf, len, off, extends, &err);
	release(f, &r);
	return partial(n, err, done);
}

int rlfile_fault(struct rlfile *f, uint64_t pgoff, bool write,
		 struct rlfile_fault *flt)
{
	int rc;

	if (pgoff >= UINT64_MAX / PAGE)
		return EINVAL;
	rc = hold(f, &flt->range, pgoff * PAGE, (pgoff + 1) * PAGE, false);
	if (rc)
		return rc;
	if (pgoff * PAGE >= size_of(f)) {
		release(f, &flt->range);
		return ENXIO;
	}
	flt->page = page_get(f, pgoff, true);
	if (!flt->page) {
		release(f, &flt->range);
		return ENOMEM;
	}
	/* The page stays locked until rlfile_fault_done: the caller's stores
	 * through flt->data are made under it, so writeback never copies a
	 * page half-written (stable pages) and readers never see one. */
	pthread_mutex_lock(&flt->page->lock);
	rc = page_fill(f, flt->page);
	if (rc) {
		pthread_mutex_unlock(&flt->page->lock);
		page_put(f, flt->page);
		release(f, &flt->range);
		return rc;
	}
	flt->data = flt->page->data;
	flt->write = write;
	return 0;
}

void rlfile_fault_done(struct rlfile *f, struct rlfile_fault *flt)
{
	if (flt->write)
		page_set_dirty(f, flt->page, true);
	pthread_mutex_unlock(&flt->page->lock);
	page_put(f, flt->page);
	release(f, &flt->range);
}

static bool direct_ok(const void *buf, size_t len, uint64_t off)
{
	return ((uintptr_t)buf | len | off) % PAGE == 0 && off + len >= off;
}

static int read_direct(struct rlfile *f, void *buf, size_t len, uint64_t off,
		       size_t *done)
{
	rangelock_range_t r;
	uint64_t size;
	int rc;

	*done = 0;
	if (!direct_ok(buf, len, off))
		return EINVAL;
	if (len == 0)
		return 0;
	rc = hold(f, &r, off, off + len, true);
	if (rc)
		return rc;
	rc = drop_pages(f, off / PAGE, (off + len) / PAGE, true);
	size = size_of(f);
	if (!rc && off < size) {
		size_t want = size - off < len ? (size_t)page_ceil(size - off) : len;
		ssize_t got = pread(f->dfd, buf, want, (off_t)off);

		if (got < 0)
			rc = errno;
		else
			*done = (size_t)got < size - off ? (size_t)got : (size_t)(size - off);
	}
	release(f, &r);
	return rc;
}

/* Write whole pages [off, off + len) to the file through fd, past the
 * cache: under an exclusive range, the cached pages written back and
 * dropped first. */
static int write_uncached(struct rlfile *f, int fd, const void *buf,
			  size_t len, uint64_t off, size_t *done)
{
	rangelock_range_t r;
	bool extends;
	size_t n = 0;
	int rc, err = 0;

	*done = 0;
	if (len == 0)
		return 0;
	rc = hold_for_write(f, &r, off, off + len, true, &extends);
	if (rc)
		return rc;
	/* flush first: a dirty cached byte outside [off, off + len) of a
	 * page we overwrite whole cannot exist (pages are whole), so
	 * dropping without writeback would do; flushing keeps it simple */
	err = drop_pages(f, off / PAGE, (off + len) / PAGE, true);
	if (extends)
		zero_past(f, size_of(f));
	at(f, RLFILE_DIRECT_WRITE_FLUSHED);
	if (!err)
		n = pwrite_all(fd, buf, len, off, &err);
	/* what reached the disk counts, up to where the file now ends */
	if (n && extends && (rc = set_size_at_least(f, off + n)))
		n = 0, err = rc;
	release(f, &r);
	return partial(n, err, done);
}

static int write_direct(struct rlfile *f, const void *buf, size_t len,
			uint64_t off, size_t *done)
{
	*done = 0;
	if (!direct_ok(buf, len, off))
		return EINVAL;
	return write_uncached(f, f->dfd, buf, len, off, done);
}

static int write_through(struct rlfile *f, const void *buf, size_t len,
			 uint64_t off, size_t *done)
{
	*done = 0;
	if ((len | off) % PAGE)
		return EINVAL;
	return write_uncached(f, f->fd, buf, len, off, done);
}

/*
 * The caller's buffer may be a mapping of an rlfile, this one or another:
 * copying to or from it may fault, and a fault takes a shared range.
 * Under our own range that can deadlock: the fault's range waits behind an
 * exclusive request queued after ours, which waits for ours.  So such a
 * buffer is copied through a bounce buffer while we hold no range (the
 * source faulted in before the range is taken, as a kernel's
 * fault_in_iov_iter_readable does).  A buffer elsewhere is used directly.
 */
static bool in_mapping(struct rlfile *f, const void *buf, size_t len)
{
	return !(f->opt.test_flags & RLFILE_TEST_NAIVE_MAPPED_BUFFERS) &&
	       store_overlaps(buf, len);
}

/* Whether buf must go through a bounce buffer: then *bounce is one,
 * page-aligned (for O_DIRECT), or NULL for want of memory. */
static bool needs_bounce(struct rlfile *f, const void *buf, size_t len,
			 size_t *done, void **bounce)
{
	if (!in_mapping(f, buf, len))
		return false;
	*done = 0;
	*bounce = len > SIZE_MAX / 2 ? NULL : aligned_alloc(PAGE, page_ceil(len));
	return true;
}

typedef int read_fn(struct rlfile *f, void *buf, size_t len, uint64_t off,
		    size_t *done);
typedef int write_fn(struct rlfile *f, const void *buf, size_t len,
		     uint64_t off, size_t *done);

static int read_via_bounce(struct rlfile *f, read_fn *fn, void *buf, size_t len,
			   uint64_t off, size_t *done)
{
	void *bounce;
	int rc;

	if (!needs_bounce(f, buf, len, done, &bounce))
		return fn(f, buf, len, off, done);
	if (!bounce)
		return ENOMEM;
	rc = fn(f, bounce, len, off, done);
	memcpy(buf, bounce, *done);   /* faults here, holding no range */
	free(bounce);
	return rc;
}

static int write_via_bounce(struct rlfile *f, write_fn *fn, const void *buf,
			    size_t len, uint64_t off, size_t *done)
{
	void *bounce;
	int rc;

	if (!needs_bounce(f, buf, len, done, &bounce))
		return fn(f, buf, len, off, done);
	if (!bounce)
		return ENOMEM;
	memcpy(bounce, buf, len);     /* faults here, holding no range */
	rc = fn(f, bounce, len, off, done);
	free(bounce);
	return rc;
}

int rlfile_read(struct rlfile *f, void *buf, size_t len, uint64_t off,
		size_t *done)
{
	return read_via_bounce(f, read_cached, buf, len, off, done);
}

int rlfile_write(struct rlfile *f, const void *buf, size_t len, uint64_t off,
		 size_t *done)
{
	return write_via_bounce(f, write_cached, buf, len, off, done);
}

/* direct_ok first: the bounce buffer is aligned where buf may not be */
int rlfile_direct_read(struct rlfile *f, void *buf, size_t len, uint64_t off,
		       size_t *done)
{
	if (!direct_ok(buf, len, off))
		return read_direct(f, buf, len, off, done);   /* EINVAL */
	return read_via_bounce(f, read_direct, buf, len, off, done);
}

int rlfile_direct_write(struct rlfile *f, const void *buf, size_t len,
			uint64_t off, size_t *done)
{
	if (!direct_ok(buf, len, off))
		return write_direct(f, buf, len, off, done);  /* EINVAL */
	return write_via_bounce(f, write_direct, buf, len, off, done);
}

int rlfile_write_through(struct rlfile *f, const void *buf, size_t len,
			 uint64_t off, size_t *done)
{
	return write_via_bounce(f, write_through, buf, len, off, done);
}

int rlfile_truncate(struct rlfile *f, uint64_t size)
{
	rangelock_range_t r;
	uint64_t old;
	int rc;

	if (size > (uint64_t)INT64_MAX)
		return EINVAL;
	for (;;) {
		old = size_of(f);
		rc = hold(f, &r, page_floor(size < old ? size : old),
			  RANGELOCK_EOF, true);
		if (rc)
			return rc;
		if (size_of(f) == old)
			break;
		release(f, &r);   /* the size moved before we got the range */
	}
	if (size > old)
		zero_past(f, size_of(f));
	forget_beyond(f, size);
	if (size > old && (rc = store_follow(f, size))) {
		store_follow(f, old);
		release(f, &r);
		return rc;
	}
	at(f, RLFILE_TRUNCATE_DROPPED);
	if (ftruncate(f->fd, (off_t)size) != 0) {
		rc = errno;
		store_follow(f, size_of(f));
	} else
		/* relaxed: under [size, EOF) exclusive */
		atomic_store_explicit(&f->size, size, memory_order_relaxed);
	release(f, &r);
	return rc;
}

int rlfile_punch(struct rlfile *f, uint64_t off, uint64_t len)
{
	rangelock_range_t r;
	uint64_t end = off + len, first, last;
	int rc;

	if (end < off || end > (uint64_t)INT64_MAX)
		return EINVAL;
	if (len == 0)
		return 0;
	rc = hold(f, &r, page_floor(off), page_ceil(end), true);
	if (rc)
		return rc;
	first = page_ceil(off) / PAGE;
	last = end / PAGE;
	if (first < last)
		drop_pages(f, first, last, false);
	if (off % PAGE)   /* head of a partial first page */
		zero_cached(f, off / PAGE, off % PAGE,
			    off / PAGE == end / PAGE ? end % PAGE : PAGE);
	if (end % PAGE && (off / PAGE != end / PAGE || off % PAGE == 0))
		zero_cached(f, end / PAGE, 0, end % PAGE);
	at(f, RLFILE_PUNCH_DROPPED);
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) != 0)
		rc = errno;
	release(f, &r);
	return rc;
}

int rlfile_allocate(struct rlfile *f, uint64_t off, uint64_t len,
		    bool keep_size)
{
	rangelock_range_t r;
	uint64_t end = off + len;
	bool extends = false;
	int rc;

	if (end < off || end > (uint64_t)INT64_MAX || len == 0)
		return EINVAL;
	/* no data changes: shared, like a write, which it is for the size */
	rc = keep_size ? hold(f, &r, page_floor(off), page_ceil(end), false)
		       : hold_for_write(f, &r, off, end, false, &extends);
	if (rc)
		return rc;
	if (fallocate(f->fd, keep_size ? FALLOC_FL_KEEP_SIZE : 0, (off_t)off,
		      (off_t)len) != 0)
		rc = errno;
	if (!rc && extends) {
		zero_past(f, size_of(f));
		rc = set_size_at_least(f, end);
	}
	release(f, &r);
	return rc;
}

/* The most pages one write-back request writes: 128 KiB.  Their page
 * locks are held together (ThreadSanitizer follows at most 64). */
#define RUN_MAX 32

/* Write back the dirty pages of v[0, n) (referenced, consecutive offsets,
 * n <= RUN_MAX) under one shared range over them, their page locks taken
 * in order: each stretch of dirty pages with one pwritev.  The first
 * error. */
static int writeback_run(struct rlfile *f, struct rlfile_page **v, size_t n)
{
	struct iovec iov[RUN_MAX];
	size_t len[RUN_MAX];
	bool todo[RUN_MAX];
	rangelock_range_t r;
	int rc = hold(f, &r, v[0]->pgoff * PAGE, (v[n - 1]->pgoff + 1) * PAGE, false);

	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&v[i]->lock);
		todo[i] = writeback_begin(f, v[i], &len[i]);
	}
	for (size_t i = 0, j; i < n; i = j) {
		size_t bytes = 0, cnt = 0;
		int err[RUN_MAX] = { 0 }, e = 0;

		/* a stretch: dirty pages, each full but maybe the last */
		for (j = i; j < n && todo[j] && len[j]; j++) {
			iov[cnt++] = (struct iovec){ v[j]->data, len[j] };
			bytes += len[j];
			if (len[j] < PAGE) {
				j++;
				break;
			}
		}
		if (cnt) {
			ssize_t done = pwritev(f->fd, iov, (int)cnt,
					       (off_t)(v[i]->pgoff * PAGE));

			/* short or failed: page by page, up to the first
			 * page that fails; it and those after stay dirty */
			for (size_t k = i; done != (ssize_t)bytes && k < j; k++) {
				if ((err[k - i] = e))
					continue;
				pwrite_all(f->fd, v[k]->data, len[k],
					   v[k]->pgoff * PAGE, &err[k - i]);
				e = err[k - i];
			}
		} else if (j == i) {
			j++;   /* clean, gone, or past the size */
		}
		for (size_t k = i; k < j; k++)
			if (todo[k]) {
				int ek = writeback_end(f, v[k], err[k - i]);

				rc = rc ? rc : ek;
			}
	}
	for (size_t i = n; i-- > 0;)
		pthread_mutex_unlock(&v[i]->lock);
	release(f, &r);
	return rc;
}

static int by_offset(const void *a, const void *b)
{
	const struct rlfile_page *p = *(struct rlfile_page *const *)a;
	const struct rlfile_page *q = *(struct rlfile_page *const *)b;

	return p->pgoff < q->pgoff ? -1 : p->pgoff > q->pgoff;
}

/* Write back every dirty page of f: a pass.  Its outcome is the budget's
 * latest word on whether write-back works, which throttled writers heed;
 * they are woken after it. */
static int writeback_all(struct rlfile *f)
{
	struct rlfile_budget *b = f->budget;
	size_t n;
	struct rlfile_page **v = pages_in(f, 0, UINT64_MAX, true, &n);
	int rc = 0;

	/* in file order, in runs of consecutive pages: large writes */
	if (n > 1)
		qsort(v, n, sizeof(*v), by_offset);
	for (size_t i = 0, j; i < n; i = j) {
		int e;

		for (j = i + 1; j < n && j - i < RUN_MAX &&
				v[j]->pgoff == v[j - 1]->pgoff + 1; j++)
			;
		e = writeback_run(f, v + i, j - i);
		rc = rc ? rc : e;
	}
	for (size_t i = 0; i < n; i++)
		page_put(f, v[i]);
	free(v);
	/* relaxed: a hint for throttled writers, who re-check the counts */
	atomic_store_explicit(&b->wb_error, rc, memory_order_relaxed);
	/* the pages just cleaned may go now; relaxed: a count */
	if (b->max_pages &&
	    atomic_load_explicit(&b->cached, memory_order_relaxed) > b->max_pages)
		budget_evict(b);
	if (n && b->max_pages) {
		pthread_mutex_lock(&b->mu);
		pthread_cond_broadcast(&b->cleaned);
		pthread_mutex_unlock(&b->mu);
	}
	return rc;
}

/* Wake f's writeback thread now (the budget's lock held: members stay). */
static void writeback_kick(struct rlfile *f)
{
	if (!f->opt.writeback_ms)
		return;
	pthread_mutex_lock(&f->wb_mu);
	pthread_cond_signal(&f->wb_cv);
	pthread_mutex_unlock(&f->wb_mu);
}

/*
 * A writer over the dirty limit: write f back itself; if the budget is
 * still over it (other members' pages), wake their writeback threads and
 * wait for a pass.  A write-back that fails while the limit is exceeded
 * fails the write, before it changes anything: with the disk full, writes
 * get ENOSPC instead of filling memory.
 */
static int throttle_slow(struct rlfile *f)
{
	struct rlfile_budget *b = f->budget;
	size_t limit = b->max_pages / 2;

	for (;;) {
		int rc = writeback_all(f);

		/* relaxed: counts and a hint, re-read each round */
		if (atomic_load_explicit(&b->dirty, memory_order_relaxed) <= limit)
			return 0;
		if (rc || (rc = atomic_load_explicit(&b->wb_error, memory_order_relaxed)))
			return rc;
		pthread_mutex_lock(&b->mu);
		for (struct rlfile *m = b->members; m; m = m->budget_next)
			if (m != f)
				writeback_kick(m);
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 20 * 1000000L;
		t.tv_sec += t.tv_nsec / 1000000000L;
		t.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&b->cleaned, &b->mu, &t);
		pthread_mutex_unlock(&b->mu);
	}
}

int rlfile_flush(struct rlfile *f)
{
	return writeback_all(f);
}

int rlfile_sync(struct rlfile *f)
{
	int rc = writeback_all(f);

	if (!rc && fdatasync(f->fd) != 0) {
		rc = errno;
		error_record(f, rc);
	}
	return rc;
}

size_t rlfile_dirty_pages(struct rlfile *f)
{
	/* relaxed: a snapshot of a count */
	return atomic_load_explicit(&f->dirty, memory_order_relaxed);
}

/* Write back and drop the pages of [start, end) (page-aligned; end may be
 * RANGELOCK_EOF) under an exclusive range over them. */
static int drop_range_held(struct rlfile *f, uint64_t start, uint64_t end)
{
	rangelock_range_t r;
	int rc = hold(f, &r, start, end, true);

	if (rc)
		return rc;
	rc = drop_pages(f, start / PAGE, end == RANGELOCK_EOF ? UINT64_MAX : end / PAGE,
			true);
	release(f, &r);
	return rc;
}

int rlfile_drop_cache(struct rlfile *f)
{
	return drop_range_held(f, 0, RANGELOCK_EOF);
}

int rlfile_drop_range(struct rlfile *f, uint64_t off, uint64_t len)
{
	if (len == 0 || off + len < off || off + len > UINT64_MAX - PAGE)
		return EINVAL;
	return drop_range_held(f, page_floor(off), page_ceil(off + len));
}

/* Pin page pgoff up to date, without holding a range afterwards. */
static int pin(struct rlfile *f, uint64_t pgoff, struct rlfile_page **out)
{
	struct rlfile_fault flt;
	int rc = rlfile_fault(f, pgoff, false, &flt);

	if (rc)
		return rc;
	pthread_mutex_unlock(&flt.page->lock);
	*out = flt.page;               /* keep its reference */
	release(f, &flt.range);
	return 0;
}

int rlfile_copy_within(struct rlfile *f, uint64_t dst_off, uint64_t src_off,
		       size_t len)
{
	uint64_t first = src_off / PAGE, npages;
	struct rlfile_page **src;
	unsigned char *bounce;
	int rc = 0;

	if (src_off + len < src_off || dst_off + len < dst_off)
		return EINVAL;
	if (len == 0)
		return 0;
	if ((rc = throttle(f)))
		return rc;
	npages = (src_off + len - 1) / PAGE - first + 1;
	src = calloc(npages, sizeof(*src));
	bounce = malloc(len);
	if (!src || !bounce) {
		free(src);
		free(bounce);
		return ENOMEM;
	}
	for (;;) {
		rangelock_range_t r;
		bool extends, gone = false;

		/* 1. fault the source in and pin it, holding no range */
		for (uint64_t i = 0; i < npages && !rc; i++)
			rc = pin(f, first + i, &src[i]);
		/* 2. the write's range; 3. copy from the pinned pages, never
		 * faulting; a source page punched or dropped meanwhile is no
		 * longer the file's: give everything back and start again */
		if (!rc)
			rc = hold_for_write(f, &r, dst_off, dst_off + len, false,
					    &extends);
		if (!rc) {
			for (uint64_t i = 0; i < npages && !gone; i++) {
				/* source page i's bytes: from `from` in it, to
				 * `at` in bounce, up to the page's or len's end */
				uint64_t from = i ? 0 : src_off % PAGE;
				uint64_t at = i ? (first + i) * PAGE - src_off : 0;
				size_t n = (size_t)(len - at < PAGE - from ? len - at
									   : PAGE - from);

				pthread_mutex_lock(&src[i]->lock);
				gone = src[i]->removed;
				if (!gone)
					memcpy(bounce + at, src[i]->data + from, n);
				pthread_mutex_unlock(&src[i]->lock);
			}
			if (!gone)
				write_locked(f, bounce, len, dst_off, extends, &rc);
			release(f, &r);
		}
		for (uint64_t i = 0; i < npages; i++)
			if (src[i]) {
				page_put(f, src[i]);
				src[i] = NULL;
			}
		if (rc || !gone)
			break;
	}
	free(src);
	free(bounce);
	return rc;
}

/* ---- mappings: their faults, served as a file system's ->fault ------- */

/*
 * A load fault maps the cached pages around it too, up to
 * STORE_FAULT_AROUND (the kernel's fault-around, with its readahead: the
 * ones not cached are read): one shared range over them all, each page
 * filled under its page lock and referenced until it is mapped, so that
 * neither eviction nor a drop can take it meanwhile.  Only pages below the
 * end of file.
 */
static void serve_load(struct rlfile *f, struct store_fault *fault)
{
	struct rlfile_page *pages[STORE_FAULT_AROUND];
	uint64_t first = fault->around, end = first + fault->n_around, size;
	rangelock_range_t r;
	unsigned n = 0;
	bool ok = false;

	if (hold(f, &r, first * PAGE, end * PAGE, false) != 0) {
		store_wake(store_of(f), fault);
		return;
	}
	size = size_of(f);
	if (end > page_ceil(size) / PAGE)
		end = page_ceil(size) / PAGE;
	for (uint64_t p = first; p < end; p++) {
		struct rlfile_page *pg = page_get(f, p, true);
		int rc = pg ? 0 : ENOMEM;

		if (pg) {
			pthread_mutex_lock(&pg->lock);
			rc = page_fill(f, pg);
			pthread_mutex_unlock(&pg->lock);
		}
		if (rc) {                 /* map the run up to here */
			if (pg)
				page_put(f, pg);
			break;
		}
		pages[n++] = pg;
		ok |= p == fault->pgoff;
	}
	if (ok)
		store_install_around(store_of(f), fault, first, n);
	else   /* beyond EOF now (SIGBUS when it retries), or out of memory */
		store_wake(store_of(f), fault);
	while (n)
		page_put(f, pages[--n]);
	release(f, &r);
}

/* A fault on a mapping (a store's thread).  A store's: its page under a
 * shared range and its page lock, as rlfile_fault gives it, dirtied before
 * it is mapped writable (page_mkwrite), both let go after.  Beyond the end
 * of file the thread is only woken: the memfd is as short as the file, so
 * its retry is SIGBUS. */
static void serve_fault(void *arg, struct store_fault *fault)
{
	struct rlfile *f = arg;
	struct rlfile_fault flt;

	if (!fault->write) {
		serve_load(f, fault);
		return;
	}
	if (rlfile_fault(f, fault->pgoff, true, &flt) != 0) {
		store_wake(store_of(f), fault);
		return;
	}
	page_set_dirty(f, flt.page, true);   /* before the store it lets through */
	flt.page->mapped_writable = true;
	store_install(store_of(f), fault);
	rlfile_fault_done(f, &flt);
}

/* The store, made at the first mapping.  The pages cached until then live
 * in ordinary memory: under [0, EOF) exclusive they are written back and
 * dropped, so that every page made afterwards is the store's. */
static int store_attach(struct rlfile *f, struct rlfile_store **out)
{
	rangelock_range_t r;
	int rc = 0;

	pthread_mutex_lock(&f->store_mu);
	/* relaxed: written only under store_mu */
	*out = atomic_load_explicit(&f->store, memory_order_relaxed);
	if (!*out && !(rc = hold(f, &r, 0, RANGELOCK_EOF, true))) {
		rc = drop_pages(f, 0, UINT64_MAX, true);
		if (!rc)
			rc = store_create(size_of(f), serve_fault, f, out);
		if (!rc)
			/* release: pairs with the acquire in store_of */
			atomic_store_explicit(&f->store, *out, memory_order_release);
		release(f, &r);
	}
	pthread_mutex_unlock(&f->store_mu);
	return rc;
}

int rlfile_mmap_supported(const char **why)
{
	return store_supported(why);
}

int rlfile_mmap(struct rlfile *f, uint64_t off, size_t len, int prot,
		void **addr)
{
	struct rlfile_store *s;
	int rc;

	if (len == 0 || off % PAGE || len > SIZE_MAX - PAGE ||
	    !(prot & (PROT_READ | PROT_WRITE)) || (prot & ~(PROT_READ | PROT_WRITE)))
		return EINVAL;
	/* acquire: the descriptors (rlfile_make_writable) */
	if ((prot & PROT_WRITE) && !atomic_load_explicit(&f->writable, memory_order_acquire))
		return EACCES;
	if ((rc = store_supported(NULL)) || (rc = store_attach(f, &s)))
		return rc;
	return store_map(s, off, (size_t)page_ceil(len), prot, addr);
}

int rlfile_munmap(struct rlfile *f, void *addr, size_t len)
{
	struct rlfile_store *s = store_of(f);

	if (!s || len == 0 || len > SIZE_MAX - PAGE)
		return EINVAL;
	return store_unmap(s, addr, (size_t)page_ceil(len));
}

/* ---- writeback thread, open, close ------------------------------------- */

static void *writeback_main(void *arg)
{
	struct rlfile *f = arg;

	pthread_mutex_lock(&f->wb_mu);
	while (!f->wb_stop) {
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += (long)f->opt.writeback_ms * 1000000L;
		t.tv_sec += t.tv_nsec / 1000000000L;
		t.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&f->wb_cv, &f->wb_mu, &t);
		if (f->wb_stop)
			break;
		pthread_mutex_unlock(&f->wb_mu);
		writeback_all(f);   /* errors: recorded in errseq */
		pthread_mutex_lock(&f->wb_mu);
	}
	pthread_mutex_unlock(&f->wb_mu);
	return NULL;
}

/* Start f's writeback thread if it has none: not at open, so that a file
 * only read (or opened and closed) costs no thread.  Without a thread,
 * dirty pages wait for the next flush, sync or close (and the next first
 * dirty page tries again). */
static void writeback_start(struct rlfile *f)
{
	if (!f->opt.writeback_ms)
		return;
	pthread_mutex_lock(&f->wb_mu);
	if (!f->wb_started && !f->wb_stop)
		f->wb_started = pthread_create(&f->writeback, NULL, writeback_main,
					       f) == 0;
	pthread_mutex_unlock(&f->wb_mu);
}

static void budget_init(struct rlfile_budget *b, size_t max_pages)
{
	b->max_pages = max_pages;
	atomic_init(&b->cached, 0);
	atomic_init(&b->dirty, 0);
	atomic_init(&b->evict_at, max_pages);
	atomic_init(&b->wb_error, 0);
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cleaned, NULL);
	b->members = NULL;
}

int rlfile_budget_create(size_t max_pages, struct rlfile_budget **out)
{
	struct rlfile_budget *b = malloc(sizeof(*b));

	if (!b)
		return ENOMEM;
	budget_init(b, max_pages);
	*out = b;
	return 0;
}

int rlfile_budget_destroy(struct rlfile_budget *b)
{
	if (b->members)
		return EBUSY;
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cleaned);
	free(b);
	return 0;
}

size_t rlfile_budget_pages(struct rlfile_budget *b)
{
	/* relaxed: a snapshot of a count */
	return atomic_load_explicit(&b->cached, memory_order_relaxed);
}

static void budget_join(struct rlfile *f)
{
	struct rlfile_budget *b = f->budget;

	pthread_mutex_lock(&b->mu);
	f->budget_next = b->members;
	b->members = f;
	pthread_mutex_unlock(&b->mu);
}

static void budget_leave(struct rlfile *f)
{
	struct rlfile_budget *b = f->budget;
	struct rlfile **pp;

	pthread_mutex_lock(&b->mu);
	for (pp = &b->members; *pp != f; pp = &(*pp)->budget_next)
		;
	*pp = f->budget_next;
	pthread_mutex_unlock(&b->mu);
}

/* Our own descriptors (open file descriptions) of the file `self` names:
 * the O_DIRECT flag belongs to the description, not to the file.  Read and
 * write if we may, else read only (an immutable file, a running program, a
 * read-only file system: the caller's open decides who writes). */
static int open_descriptors(const char *self, int mode, int *fd, int *dfd)
{
	*fd = open(self, mode | O_CLOEXEC);
	if (*fd < 0)
		return errno;
	*dfd = open(self, mode | O_DIRECT | O_CLOEXEC);
	if (*dfd < 0) {
		int rc = errno;

		close(*fd);
		return rc;
	}
	return 0;
}

static bool cannot_write(int err)
{
	return err == EPERM || err == EACCES || err == ETXTBSY || err == EROFS;
}

int rlfile_make_writable(struct rlfile *f)
{
	char self[64];
	int fd = -1, dfd = -1, rc;

	/* acquire: pairs with the release below, for the descriptors */
	if (atomic_load_explicit(&f->writable, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&f->wb_mu);   /* one reopening at a time */
	rc = 0;
	if (!atomic_load_explicit(&f->writable, memory_order_relaxed)) {
		snprintf(self, sizeof(self), "/proc/self/fd/%d", f->fd);
		rc = open_descriptors(self, O_RDWR, &fd, &dfd);
		/* dup3 swaps each number's description at once: an I/O call
		 * in flight finishes on the old one, of the same file */
		if (!rc) {
			if (dup3(fd, f->fd, O_CLOEXEC) < 0 ||
			    dup3(dfd, f->dfd, O_CLOEXEC) < 0)
				rc = errno;
			close(fd);
			close(dfd);
		}
		if (!rc)
			/* release: pairs with the acquire above */
			atomic_store_explicit(&f->writable, true, memory_order_release);
	}
	pthread_mutex_unlock(&f->wb_mu);
	return rc;
}

int rlfile_open_fd(int fd, const struct rlfile_options *opt,
		   struct rlfile **out)
{
	char self[64];
	struct rlfile *f;
	struct stat st;
	off_t end;
	int rc;

	if (!opt || opt->lock > RLFILE_LOCK_NONE || opt->writeback_ms > 60000 ||
	    opt->test_flags & ~(RLFILE_TEST_NAIVE_MAPPED_BUFFERS | RLFILE_TEST_NO_WRITEPROTECT))
		return EINVAL;
	if (fstat(fd, &st) != 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return ENOMEM;
	f->opt = *opt;
	f->fd = f->dfd = -1;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	rc = open_descriptors(self, O_RDWR, &f->fd, &f->dfd);
	atomic_init(&f->writable, rc == 0);
	if (cannot_write(rc))
		rc = open_descriptors(self, O_RDONLY, &f->fd, &f->dfd);
	if (rc) {
		f->fd = f->dfd = -1;
		goto fail;
	}
	end = lseek(f->fd, 0, SEEK_END);
	if (end < 0) {
		rc = errno;
		goto fail;
	}
	atomic_init(&f->size, (uint64_t)end);
	atomic_init(&f->cached, 0);
	atomic_init(&f->dirty, 0);
	atomic_init(&f->errseq, 0);
	budget_init(&f->own_budget, opt->max_cached_pages);
	f->budget = opt->budget ? opt->budget : &f->own_budget;
	rc = rangelock_init(&f->rl, opt->rangelock_flags);
	if (rc)
		goto fail;
	pthread_rwlock_init(&f->rw, NULL);
	f->nchains = NLOCKS;
	if (!(f->chain = calloc(f->nchains, sizeof(*f->chain)))) {
		rangelock_destroy(&f->rl);
		rc = ENOMEM;
		goto fail;
	}
	for (int i = 0; i < NLOCKS; i++)
		pthread_mutex_init(&f->bucket[i].lock, NULL);
	pthread_mutex_init(&f->wb_mu, NULL);
	pthread_cond_init(&f->wb_cv, NULL);
	pthread_mutex_init(&f->store_mu, NULL);
	atomic_init(&f->store, NULL);
	budget_join(f);
	*out = f;
	return 0;
fail:
	if (f->dfd >= 0)
		close(f->dfd);
	if (f->fd >= 0)
		close(f->fd);
	free(f->chain);
	free(f);
	return rc;
}

int rlfile_open(const char *path, const struct rlfile_options *opt,
		struct rlfile **out)
{
	int fd, rc;

	if (!opt)
		return EINVAL;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	rc = rlfile_open_fd(fd, opt, out);
	close(fd);
	return rc;
}

uint64_t rlfile_size(struct rlfile *f)
{
	return size_of(f);
}

size_t rlfile_cached_pages(struct rlfile *f)
{
	/* relaxed: a snapshot of a count */
	return atomic_load_explicit(&f->cached, memory_order_relaxed);
}

int rlfile_close(struct rlfile *f)
{
	struct rlfile_store *s = store_of(f);
	int rc;

	if (s)   /* no more faults, nor stores through a mapping */
		store_stop(s);
	pthread_mutex_lock(&f->wb_mu);
	f->wb_stop = true;
	pthread_cond_broadcast(&f->wb_cv);
	pthread_mutex_unlock(&f->wb_mu);
	if (f->wb_started)
		pthread_join(f->writeback, NULL);
	/* pages that failed before stayed dirty; as close(2), no fdatasync */
	rc = writeback_all(f);
	drop_pages(f, 0, UINT64_MAX, false);
	if (s)
		store_destroy(s);
	budget_leave(f);
	if (rangelock_destroy(&f->rl) != 0 && !rc)
		rc = EBUSY;
	if (close(f->dfd) != 0 && !rc)
		rc = errno;
	if (close(f->fd) != 0 && !rc)
		rc = errno;
	pthread_rwlock_destroy(&f->rw);
	pthread_mutex_destroy(&f->own_budget.mu);
	pthread_cond_destroy(&f->own_budget.cleaned);
	free(f->chain);
	free(f);
	return rc;
}
