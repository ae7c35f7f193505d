/* SPDX-License-Identifier: MIT */
/*
 * stress_processes.c - processes share one lock while some of them are
 * killed at random moments (holding, waiting, inside a lock or an unlock
 * call) and replaced.
 *
 *   stress_processes [--procs N] [--seconds S] [--kills K] [--pages P]
 *
 * N workers (2..32) lock random ranges of P pages, shared or exclusive,
 * blocking, try or timed, and mark what they hold in a shadow that every
 * process maps: a writer per page and a reader bit per worker.  The parent
 * kills one worker about K times in S seconds (SIGKILL) and starts another
 * in its place.  It fails on:
 *   - a conflicting grant: a worker finds a page marked by a live other
 *     worker in a conflicting mode (a dead worker's marks are stale: the
 *     lock frees what it held, the marks stay);
 *   - a survivor that stops: no worker completes an operation for 3 s;
 *   - an EOWNERDEAD that no dead worker's exclusive range explains, or one
 *     such range never told: every worker killed while it held an exclusive
 *     range (its lock call had returned) must be told to a later grant
 *     overlapping it, or to the parent's final lock: to shared grants any
 *     number of times, to exactly one exclusive grant (which repairs it;
 *     none after it is told);
 *   - a range of a dead worker still held at the end (the parent's
 *     trywrlock of everything), or a lock that does not destroy cleanly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rangelock.h"

#define MAX_PROCS 32
#define MAX_EVENTS 65536
#define MAX_DEAD 8192
#define PAGE 4096u

struct worker {
	_Atomic int32_t pid;
	_Atomic uint64_t ops;
	/* what it is doing, for the parent after its death: the range it
	 * asked for (intent), exclusive (1), shared (0) or being downgraded
	 * (2), and whether its lock call had returned (held) */
	_Atomic uint64_t intent_start, intent_end;
	_Atomic uint32_t intent_excl, intent, held;
};

struct event {                  /* an EOWNERDEAD a worker got */
	uint64_t seq, start, end;
	bool exclusive;
};

struct dead {                   /* a worker killed with an exclusive range */
	uint64_t kill_seq, start, end;
	bool certain;           /* its lock call had returned */
	bool told;
	bool repaired;          /* told to an exclusive grant */
};

struct shared {
	_Atomic uint32_t stop;
	_Atomic uint32_t failed;
	_Atomic uint64_t seq;
	_Atomic uint32_t nevents;
	struct worker w[MAX_PROCS];
	struct event events[MAX_EVENTS];
	_Atomic uint32_t writer[1024];   /* worker + 1 */
	_Atomic uint32_t readers[1024];  /* a bit a worker */
};

static struct shared *sh;
static void *region;
static int region_fd;
static size_t region_size;
static unsigned pages = 64;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	static int said;   /* per process: the first failure is the one */
	va_list ap;

	atomic_store(&sh->failed, 1);
	if (said++)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "stress_processes: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Is worker k's current process gone (exited, or a zombie)?  A worker
 * whose marker closed (the lock freed its ranges) is on its way there. */
static bool worker_gone(unsigned k)
{
	int32_t pid = atomic_load(&sh->w[k].pid);
	char path[64], buf[256];
	FILE *f;

	if (pid <= 0)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	bool gone = !fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!gone) {
		char *p = strrchr(buf, ')');

		gone = p && (p[2] == 'Z' || p[2] == 'X');
	}
	return gone;
}

/* A mark of worker k on page p in our way: a conflict, unless k is dying
 * (its successor then clears the mark: clear_marks()). */
static bool mark_in_the_way(unsigned k, uint64_t p, bool as_writer)
{
	for (int ms = 0; ms < 500; ms++) {
		bool marked = as_writer ? atomic_load(&sh->writer[p]) == k + 1
					: atomic_load(&sh->readers[p]) >> k & 1;

		if (!marked || worker_gone(k))
			return false;
		usleep(1000);
	}
	return true;
}

static void mark(unsigned me, uint64_t p0, uint64_t p1, bool excl)
{
	for (uint64_t p = p0; p < p1; p++) {
		if (excl) {
			uint32_t rd = atomic_load(&sh->readers[p]) & ~(1u << me);

			for (unsigned k = 0; rd; k++, rd >>= 1)
				if ((rd & 1) && mark_in_the_way(k, p, false))
					fail("page held shared by worker %u under exclusive %u", k, me);
		}
		uint32_t wr = atomic_load(&sh->writer[p]);

		if (wr && wr != me + 1 && mark_in_the_way(wr - 1, p, true))
			fail("page held exclusive by worker %u, granted to %u", wr - 1, me);
		if (excl)
			atomic_store(&sh->writer[p], me + 1);
		else
			atomic_fetch_or(&sh->readers[p], 1u << me);
	}
}

static void unmark(unsigned me, uint64_t p0, uint64_t p1, bool excl)
{
	for (uint64_t p = p0; p < p1; p++) {
		if (excl)
			atomic_store(&sh->writer[p], 0);
		else
			atomic_fetch_and(&sh->readers[p], ~(1u << me));
	}
}

/* A new worker in slot me clears what its predecessor left. */
static void clear_marks(unsigned me)
{
	for (unsigned p = 0; p < pages; p++) {
		uint32_t w = me + 1;

		atomic_compare_exchange_strong(&sh->writer[p], &w, 0);
		atomic_fetch_and(&sh->readers[p], ~(1u << me));
	}
}

static void log_event(uint64_t start, uint64_t end, bool exclusive)
{
	uint32_t i = atomic_fetch_add(&sh->nevents, 1);

	if (i < MAX_EVENTS)
		sh->events[i] = (struct event){ atomic_fetch_add(&sh->seq, 1) + 1,
						start, end, exclusive };
}

static void worker(unsigned me, unsigned seed)
{
	struct worker *w = &sh->w[me];
	rangelock_t lk;
	/* at an address of its own, as an unrelated process would */
	void *at = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			region_fd, 0);

	if (at == MAP_FAILED || rangelock_shared_attach(&lk, at, region_size))
		_exit(2);
	clear_marks(me);
	while (!atomic_load(&sh->stop)) {
		uint64_t p0 = (uint64_t)(rand_r(&seed) % pages);
		uint64_t len = 1 + (uint64_t)(rand_r(&seed) % 4);
		uint64_t p1 = p0 + len > pages ? pages : p0 + len;
		bool excl = rand_r(&seed) % 3 == 0;
		int how = rand_r(&seed) % 5, rc;
		rangelock_range_t r;

		atomic_store(&w->intent_start, p0 * PAGE);
		atomic_store(&w->intent_end, p1 * PAGE);
		atomic_store(&w->intent_excl, excl);
		atomic_store(&w->intent, 1);
		if (how < 3) {
			rc = excl ? rangelock_wrlock(&lk, &r, p0 * PAGE, p1 * PAGE)
				  : rangelock_rdlock(&lk, &r, p0 * PAGE, p1 * PAGE);
		} else if (how == 3) {
			rc = excl ? rangelock_trywrlock(&lk, &r, p0 * PAGE, p1 * PAGE)
				  : rangelock_tryrdlock(&lk, &r, p0 * PAGE, p1 * PAGE);
		} else {
			struct timespec d;

			clock_gettime(CLOCK_MONOTONIC, &d);
			d.tv_nsec += 1000000L * (1 + rand_r(&seed) % 20);
			d.tv_sec += d.tv_nsec / 1000000000L;
			d.tv_nsec %= 1000000000L;
			rc = excl ? rangelock_timedwrlock(&lk, &r, p0 * PAGE, p1 * PAGE, &d)
				  : rangelock_timedrdlock(&lk, &r, p0 * PAGE, p1 * PAGE, &d);
		}
		if (rc == 0 || rc == EOWNERDEAD) {
			atomic_store(&w->held, 1);
			if (rc == EOWNERDEAD)
				log_event(p0 * PAGE, p1 * PAGE, excl);
			mark(me, p0, p1, excl);
			if (rand_r(&seed) % 4 == 0)
				usleep((useconds_t)(rand_r(&seed) % 200));
			if (excl && rand_r(&seed) % 4 == 0) {
				unmark(me, p0, p1, true);
				mark(me, p0, p1, false);
				atomic_store(&w->intent_excl, 2);   /* either */
				if ((rc = rangelock_downgrade(&lk, &r)) != 0)
					fail("downgrade failed in worker %u: %d", me, rc);
				atomic_store(&w->intent_excl, 0);
				excl = false;
			}
			unmark(me, p0, p1, excl);
			atomic_store(&w->held, 0);
			if ((rc = rangelock_unlock(&lk, &r)) != 0)
				fail("unlock failed in worker %u: %d", me, rc);
		} else if (rc != EBUSY && rc != ETIMEDOUT && rc != EAGAIN) {
			fail("lock call: error %d in worker %u", rc, me);
		}
		atomic_store(&w->intent, 0);
		atomic_fetch_add(&w->ops, 1);
	}
	if (rangelock_destroy(&lk))
		_exit(3);
	_exit(0);
}

static pid_t spawn(unsigned k, unsigned seed)
{
	pid_t pid;

	atomic_store(&sh->w[k].intent, 0);
	atomic_store(&sh->w[k].held, 0);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0)
		worker(k, seed);
	atomic_store(&sh->w[k].pid, pid);
	return pid;
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static int by_seq(const void *a, const void *b)
{
	const struct event *x = a, *y = b;

	return (x->seq > y->seq) - (x->seq < y->seq);
}

int main(int argc, char **argv)
{
	unsigned procs = 8, seconds = 3, kills = 100, ndead = 0;
	static struct dead dead[MAX_DEAD];
	static const struct option opts[] = {
		{ "procs", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "kills", required_argument, NULL, 'k' },
		{ "pages", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': procs = (unsigned)atoi(optarg); break;
		case 's': seconds = (unsigned)atoi(optarg); break;
		case 'k': kills = (unsigned)atoi(optarg); break;
		case 'p': pages = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: stress_processes [--procs N] "
				"[--seconds S] [--kills K] [--pages P]\n");
			return 2;
		}
	}
	if (procs < 2 || procs > MAX_PROCS || pages < 1 || pages > 1024 ||
	    seconds < 1) {
		fprintf(stderr, "stress_processes: 2..32 procs, 1..1024 pages\n");
		return 2;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	region_size = rangelock_shared_size(4 * procs);
	region_fd = memfd_create("stress_processes", 0);
	if (region_fd < 0 || ftruncate(region_fd, (off_t)region_size)) {
		perror("stress_processes: memfd");
		return 1;
	}
	region = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      region_fd, 0);
	if (sh == MAP_FAILED || region == MAP_FAILED ||
	    rangelock_shared_init(region, region_size)) {
		perror("stress_processes: setup");
		return 1;
	}

	unsigned seed = 1;
	for (unsigned k = 0; k < procs; k++)
		spawn(k, seed++ * 7919);

	uint64_t t0 = now_ms(), end = t0 + seconds * 1000ull;
	uint64_t gap = kills ? seconds * 1000ull / kills : end;
	uint64_t next_kill = t0 + gap, last_progress = t0, ops_seen = 0;
	unsigned killed = 0;

	while (now_ms() < end && !atomic_load(&sh->failed)) {
		usleep(1000);
		uint64_t ops = 0;

		for (unsigned k = 0; k < procs; k++)
			ops += atomic_load(&sh->w[k].ops);
		if (ops != ops_seen) {
			ops_seen = ops;
			last_progress = now_ms();
		} else if (now_ms() - last_progress > 3000) {
			fail("no worker made progress for 3 s (%u kills so far)",
			     killed);
		}
		if (now_ms() < next_kill)
			continue;
		next_kill += gap;

		unsigned k = (unsigned)rand_r(&seed) % procs;
		struct worker *w = &sh->w[k];
		pid_t pid = atomic_load(&w->pid);
		uint64_t kill_seq = atomic_fetch_add(&sh->seq, 1) + 1;
		int st;

		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		if (!WIFSIGNALED(st))
			fail("worker %u ended by itself (status %d)", k, st);
		if (atomic_load(&w->intent) && atomic_load(&w->intent_excl) &&
		    ndead < MAX_DEAD)
			dead[ndead++] = (struct dead){
				kill_seq, atomic_load(&w->intent_start),
				atomic_load(&w->intent_end),
				atomic_load(&w->held) != 0 &&
					atomic_load(&w->intent_excl) == 1,
				false, false
			};
		killed++;
		spawn(k, seed++ * 7919);
	}

	atomic_store(&sh->stop, 1);
	uint64_t stopped = now_ms();

	for (unsigned k = 0; k < procs; k++) {
		pid_t pid = atomic_load(&sh->w[k].pid);
		int st;

		/* a worker stuck in a lock call never ends: 5 s, then kill it */
		while (waitpid(pid, &st, WNOHANG) == 0) {
			if (now_ms() - stopped > 5000) {
				fail("worker %u did not finish within 5 s of the end", k);
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				break;
			}
			usleep(1000);
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail("worker %u did not detach cleanly (status %d)", k, st);
	}

	/* Nothing of the dead may be held now; what is left untold is told
	 * once, to this lock. */
	rangelock_t lk;
	rangelock_range_t all;
	int rc;

	if (rangelock_shared_attach(&lk, region, region_size))
		fail("final attach failed");
	rc = rangelock_trywrlock(&lk, &all, 0, RANGELOCK_EOF);
	for (int tries = 0; rc == EBUSY && tries < 100; tries++) {
		usleep(20000);   /* a refused try looks for the dead every 10 ms */
		rc = rangelock_trywrlock(&lk, &all, 0, RANGELOCK_EOF);
	}
	if (rc == EOWNERDEAD)
		log_event(0, RANGELOCK_EOF, true);
	else if (rc)
		fail("a dead worker's range is still held at the end (%d)", rc);
	if (!rc || rc == EOWNERDEAD) {
		rangelock_unlock(&lk, &all);
		if (rangelock_trywrlock(&lk, &all, 0, RANGELOCK_EOF) != 0)
			fail("told twice at the end");
		else
			rangelock_unlock(&lk, &all);
	}
	if (rangelock_destroy(&lk))
		fail("the final attachment did not detach");

	/* Each EOWNERDEAD tells every dead range it overlaps that died before
	 * it; it must tell at least one, and every certain one is told.  An
	 * exclusive one repairs what it tells: no later exclusive one may be
	 * told of it.  (A shared one may be told of a range repaired already
	 * in this order: events are logged after their grants, and a reader
	 * and a writer over different parts of one range are not ordered.) */
	unsigned nev = atomic_load(&sh->nevents), certain = 0, untold = 0;

	if (nev > MAX_EVENTS)
		nev = MAX_EVENTS;
	qsort(sh->events, nev, sizeof(sh->events[0]), by_seq);
	for (unsigned i = 0; i < nev; i++) {
		const struct event *e = &sh->events[i];
		bool any = false;

		for (unsigned d = 0; d < ndead; d++)
			if (!(e->exclusive && dead[d].repaired) &&
			    dead[d].kill_seq < e->seq &&
			    dead[d].start < e->end && e->start < dead[d].end) {
				dead[d].told = any = true;
				dead[d].repaired |= e->exclusive;
			}
		if (!any)
			fail("EOWNERDEAD %u of %u explained by no dead range", i, nev);
	}
	for (unsigned d = 0; d < ndead; d++) {
		certain += dead[d].certain;
		untold += dead[d].certain && !dead[d].told;
	}
	if (untold)
		fail("%u of the dead's exclusive ranges never told (of %u)", untold,
		     certain);

	uint64_t ops = 0;
	for (unsigned k = 0; k < procs; k++)
		ops += atomic_load(&sh->w[k].ops);
	printf("stress_processes: %u procs, %u s, %u kills, %llu operations, "
	       "%u killed holding exclusive (%u certain), %u EOWNERDEAD: %s\n",
	       procs, seconds, killed, (unsigned long long)ops, ndead, certain,
	       nev, atomic_load(&sh->failed) ? "FAILED" : "ok");
	return atomic_load(&sh->failed) ? 1 : 0;
}
