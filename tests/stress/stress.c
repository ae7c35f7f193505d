/* SPDX-License-Identifier: MIT */
/*
 * stress.c - many threads, random shared/exclusive/try/timed/downgrade
 * requests over a small space, checked against an independent shadow.
 *
 * The space is `units` pages, checked by tests/common/shadow.c: an
 * independent per-page count of shared and exclusive holders that catches
 * any overlap the lock lets through.
 *
 * Also checked: every thread makes progress (no starvation), the whole run
 * keeps making progress (a watchdog fails a hang), and at the end the lock
 * is idle (destroy returns 0).
 *
 * Flipping between the fast path and the precise one is where bugs live:
 * --ragged N makes one range in N end a byte short of a page: the fast
 * path takes those of up to 8 KiB as byte slots, and the longer ones
 * never, so its lines close and reopen all the time (EOF ranges do the
 * same through the window); --base P moves the space to
 * start at page P, so that with P not a multiple of 64 it straddles two
 * blocks and requests map to two lines.  (Every range still starts on a
 * page, so a byte-short end overlaps exactly the pages the shadow counts.)
 *
 * Many ranges held at once are where an index goes wrong: --held N holds N
 * shared ranges (single pages, one in eight up to 300 pages) at random
 * below the space for the whole run, so that every request meets a big
 * index; --long N makes one range in N up to 1024 pages (--long-pages P:
 * up to P), which spans many blocks (1024) or a few (320: the ranges held
 * over several blocks' slots).
 *
 * A lock's fast-path table grows once, when threads first meet in its
 * lines, which in a run on one lock happens in its first milliseconds:
 * --phase MS stops the threads every MS milliseconds, destroys the lock
 * (which must succeed), makes a new one and lets them go again, so that
 * the growth happens under load once a phase.
 *
 * usage: stress [--threads N] [--seconds S] [--units U] [--seed X] [--debug]
 *               [--ragged N] [--base P] [--held N] [--long N]
 *               [--long-pages P] [--phase MS]
 */
#include <errno.h>
#include <inttypes.h>
#include <unistd.h>

#include "harness.h"
#include "shadow.h"

#define PAGE 4096u

struct config {
	int threads;
	double seconds;
	int units;
	uint64_t seed;
	unsigned flags;
	int ragged;        /* one range in `ragged` ends a byte short; 0: none */
	uint64_t base;     /* first page of the space */
	int held;          /* ranges held below the space for the whole run */
	int longer;        /* one range in `longer` is long; 0: none */
	int long_pages;    /* a long range: up to this many pages */
	int phase_ms;      /* a new lock every phase_ms; 0: one lock */
};

struct worker {
	pthread_t thread;
	int id;
	uint64_t rng;
	long acquired;         /* successful lock calls */
	long busy, timedout;   /* refused try and timed calls */
};

static struct config cfg = { .threads = 4, .seconds = 2.0, .units = 64,
			      .long_pages = 1024 };
static rangelock_t lock;
static struct shadow *shadow;
static atomic_long progress;
static atomic_int stop;
static atomic_int pause_all;   /* --phase: the workers are to park */
static atomic_int parked;      /* how many have */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: reproducible per thread from --seed */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void hold_briefly(struct worker *w)
{
	int spins = (int)(rng_next(&w->rng) % 64);

	for (int i = 0; i < spins; i++)
		atomic_signal_fence(memory_order_seq_cst);
	if (rng_next(&w->rng) % 16 == 0)
		sched_yield();
}

static struct timespec random_deadline(struct worker *w)
{
	uint64_t r = rng_next(&w->rng);

	if (r % 8 == 0)
		return (struct timespec){ 0, 0 };   /* already past */
	return t_deadline_ms((long)(r % 3));
}

/* One random operation.  Returns after the range (if granted) is released. */
static void one_op(struct worker *w)
{
	uint64_t r = rng_next(&w->rng);
	int lo = (int)(r % (uint64_t)cfg.units);
	int len = 1 + (int)((r >> 16) % 8);

	if (cfg.longer && (r >> 48) % (uint64_t)cfg.longer == 0)
		len = 1 + (int)((r >> 16) % (uint64_t)cfg.long_pages);
	bool to_eof = (r >> 24) % 32 == 0;
	int hi = to_eof || lo + len > cfg.units ? cfg.units : lo + len;
	uint64_t start = (cfg.base + (uint64_t)lo) * PAGE;
	uint64_t end = to_eof ? RANGELOCK_EOF : (cfg.base + (uint64_t)hi) * PAGE;
	int kind = (int)((r >> 32) % 20);
	bool exclusive = kind % 2 == 1;
	struct timespec deadline;
	rangelock_range_t range;
	int rc;

	if (cfg.ragged && !to_eof && (r >> 40) % (uint64_t)cfg.ragged == 0)
		end--;
	if (kind < 8)
		rc = exclusive ? rangelock_wrlock(&lock, &range, start, end)
			       : rangelock_rdlock(&lock, &range, start, end);
	else if (kind < 12)
		rc = exclusive ? rangelock_trywrlock(&lock, &range, start, end)
			       : rangelock_tryrdlock(&lock, &range, start, end);
	else if (kind < 18) {
		deadline = random_deadline(w);
		rc = exclusive ? rangelock_timedwrlock(&lock, &range, start, end, &deadline)
			       : rangelock_timedrdlock(&lock, &range, start, end, &deadline);
	} else {
		exclusive = true;   /* lock exclusive, then downgrade */
		rc = rangelock_wrlock(&lock, &range, start, end);
	}
	if (rc == EBUSY) {
		w->busy++;
		return;
	}
	if (rc == ETIMEDOUT) {
		w->timedout++;
		return;
	}
	if (rc != 0)
		t_fail(__FILE__, __LINE__, "thread %d: lock = %s", w->id, t_errname(rc));

	w->acquired++;
	shadow_enter(shadow, lo, hi, exclusive);
	hold_briefly(w);
	if (kind >= 18) {
		shadow_downgrade(shadow, lo, hi);
		CHECK_RC(rangelock_downgrade(&lock, &range), 0);
		exclusive = false;
		hold_briefly(w);
	}
	shadow_leave(shadow, lo, hi, exclusive);
	CHECK_RC(rangelock_unlock(&lock, &range), 0);
	/* relaxed: a progress counter for the watchdog only. */
	atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	/* seq_cst: test bookkeeping. */
	while (!atomic_load_explicit(&stop, memory_order_seq_cst)) {
		/* seq_cst, these three: test bookkeeping (new_phase()). */
		if (atomic_load_explicit(&pause_all, memory_order_seq_cst)) {
			atomic_fetch_add_explicit(&parked, 1, memory_order_seq_cst);
			while (atomic_load_explicit(&pause_all, memory_order_seq_cst))
				sched_yield();
			atomic_fetch_sub_explicit(&parked, 1, memory_order_seq_cst);
		}
		one_op(w);
	}
	return NULL;
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--debug")) {
			cfg.flags = RANGELOCK_DEBUG;
			continue;
		}
		if (!v)
			goto usage;
		i++;
		if (!strcmp(a, "--threads"))
			cfg.threads = atoi(v);
		else if (!strcmp(a, "--seconds"))
			cfg.seconds = atof(v);
		else if (!strcmp(a, "--units"))
			cfg.units = atoi(v);
		else if (!strcmp(a, "--seed"))
			cfg.seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--ragged"))
			cfg.ragged = atoi(v);
		else if (!strcmp(a, "--base"))
			cfg.base = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--held"))
			cfg.held = atoi(v);
		else if (!strcmp(a, "--phase"))
			cfg.phase_ms = atoi(v);
		else if (!strcmp(a, "--long"))
			cfg.longer = atoi(v);
		else if (!strcmp(a, "--long-pages"))
			cfg.long_pages = atoi(v);
		else
			goto usage;
	}
	if (cfg.threads >= 1 && cfg.threads <= 1024 && cfg.seconds > 0 &&
	    cfg.units >= 1 && cfg.units <= 1 << 20 && cfg.ragged >= 0 &&
	    cfg.base < (uint64_t)1 << 40 && cfg.longer >= 0 && cfg.held >= 0 &&
	    cfg.held <= 1 << 20 && cfg.base >= (uint64_t)cfg.held &&
	    cfg.phase_ms >= 0 && cfg.long_pages >= 1 && cfg.long_pages <= 1 << 20)
		return;
usage:
	fprintf(stderr, "usage: stress [--threads 1..1024] [--seconds S>0] "
			"[--units 1..1048576] [--seed X] [--debug] "
			"[--ragged N>=0] [--base P<2^40] [--held 0..2^20 "
			"(at most --base)] [--long N>=0] [--long-pages 1..2^20] "
			"[--phase MS>=0]\n");
	exit(2);
}

static rangelock_range_t *hold_below(void);
static void release_below(rangelock_range_t *held);

/* --phase: park every worker, replace the lock by a fresh one, go on. */
static rangelock_range_t *new_phase(rangelock_range_t *held)
{
	/* seq_cst, here and below: test bookkeeping (worker_main()). */
	atomic_store_explicit(&pause_all, 1, memory_order_seq_cst);
	for (int ms = 0; atomic_load_explicit(&parked, memory_order_seq_cst) <
			 cfg.threads; ms++) {
		if (ms == 10000)
			t_fail(__FILE__, __LINE__, "workers did not park in 10 s: hang");
		t_sleep_ms(1);
	}
	release_below(held);
	CHECK_RC(rangelock_destroy(&lock), 0);
	CHECK_RC(rangelock_init(&lock, cfg.flags), 0);
	held = hold_below();
	atomic_store_explicit(&pause_all, 0, memory_order_seq_cst);
	return held;
}

/* Watch the run: stop it after cfg.seconds; fail it if nothing was granted
 * for 10 s (a hang: lost wake-up or deadlock).  Returns the ranges held
 * below the space (a new set every phase). */
static rangelock_range_t *watch(rangelock_range_t *held)
{
	long last = -1;
	int still = 0;

	for (int tick = 0; tick < (int)(cfg.seconds * 100); tick++) {
		t_sleep_ms(10);
		if (cfg.phase_ms && tick % (cfg.phase_ms / 10 + 1) == cfg.phase_ms / 10)
			held = new_phase(held);
		/* relaxed: progress counter. */
		long now = atomic_load_explicit(&progress, memory_order_relaxed);
		still = now == last ? still + 1 : 0;
		last = now;
		if (still >= 1000)
			t_fail(__FILE__, __LINE__, "no progress for 10 s: hang");
	}
	atomic_store_explicit(&stop, 1, memory_order_seq_cst);
	return held;
}

/* Hold cfg.held shared ranges in [0, base), out of the space: the i-th at
 * random in the i-th of cfg.held equal parts (disjoint, as debug mode
 * wants of one thread's ranges). */
static rangelock_range_t *hold_below(void)
{
	rangelock_range_t *h = calloc((size_t)cfg.held + 1, sizeof(*h));
	uint64_t s = cfg.seed + 1;
	uint64_t part = cfg.held ? cfg.base / (uint64_t)cfg.held : 0;

	CHECK(h);
	for (int i = 0; i < cfg.held; i++) {
		uint64_t r = rng_next(&s);
		uint64_t pages = r % 8 == 0 ? 1 + (r >> 8) % 300 : 1;
		uint64_t first;

		pages = pages < part ? pages : part;
		first = (uint64_t)i * part + (r >> 20) % (part - pages + 1);

		CHECK_RC(rangelock_rdlock(&lock, &h[i], first * PAGE,
					  (first + pages) * PAGE), 0);
	}
	return h;
}

static void release_below(rangelock_range_t *held)
{
	for (int i = 0; i < cfg.held; i++)
		CHECK_RC(rangelock_unlock(&lock, &held[i]), 0);
	free(held);
}

int main(int argc, char **argv)
{
	rangelock_range_t *held;
	struct worker *w;
	long total = 0, min = -1, max = 0;

	cfg.seed = (uint64_t)time(NULL);
	parse_args(argc, argv);
	printf("stress: threads=%d seconds=%.1f units=%d seed=%" PRIu64
	       " ragged=%d base=%" PRIu64 " held=%d long=%d/%d phase=%d%s\n",
	       cfg.threads, cfg.seconds, cfg.units, cfg.seed, cfg.ragged,
	       cfg.base, cfg.held, cfg.longer, cfg.long_pages, cfg.phase_ms,
	       cfg.flags ? " debug" : "");
	fflush(stdout);

	shadow = shadow_new(cfg.units);
	w = calloc((size_t)cfg.threads, sizeof(*w));
	CHECK(shadow && w);
	CHECK_RC(rangelock_init(&lock, cfg.flags), 0);
	held = hold_below();

	for (int i = 0; i < cfg.threads; i++) {
		w[i].id = i;
		w[i].rng = cfg.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)i + 1;
		CHECK(pthread_create(&w[i].thread, NULL, worker_main, &w[i]) == 0);
	}
	held = watch(held);
	for (int i = 0; i < cfg.threads; i++) {
		/* A thread stuck after stop is a hang too: give it 10 s. */
		struct timespec limit;

		clock_gettime(CLOCK_REALTIME, &limit);
		limit.tv_sec += 10;
		if (pthread_timedjoin_np(w[i].thread, NULL, &limit) != 0)
			t_fail(__FILE__, __LINE__, "thread %d did not finish: hang", i);
		total += w[i].acquired;
		min = min < 0 || w[i].acquired < min ? w[i].acquired : min;
		max = w[i].acquired > max ? w[i].acquired : max;
	}
	printf("stress: %ld acquisitions, per thread min %ld mean %ld max %ld\n",
	       total, min, total / cfg.threads, max);

	if (cfg.held)   /* busy until the last held range goes */
		CHECK_RC(rangelock_destroy(&lock), EBUSY);
	release_below(held);
	CHECK_RC(rangelock_destroy(&lock), 0);
	if (shadow_violations(shadow))
		t_fail(__FILE__, __LINE__, "%ld shadow violations (seed %" PRIu64 ")",
		       shadow_violations(shadow), cfg.seed);
	/* Starvation: with FIFO among conflicts every thread gets its turn, and
	 * about an equal share of them (20x below the mean fails). */
	if (min == 0 || min < total / cfg.threads / 20)
		t_fail(__FILE__, __LINE__, "a thread starved: min %ld, mean %ld (seed %" PRIu64 ")",
		       min, total / cfg.threads, cfg.seed);
	printf("1 passed, 0 failed\n");
	shadow_free(shadow);
	free(w);
	return 0;
}
