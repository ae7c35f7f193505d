/* SPDX-License-Identifier: MIT */
/*
 * workloads.c - the measurements.  Single-thread workloads time a loop in
 * the calling thread; multi-thread ones start workers, let them warm up,
 * then count operations over a measured window of wall time.
 */
#include "workloads.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include "shadow.h"
#include "stats.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void set_range(struct bench_range *r, uint64_t first_page,
		      uint64_t pages, bool exclusive)
{
	r->start = first_page * PAGE;
	r->end = pages ? (first_page + pages) * PAGE : UINT64_MAX;
	r->exclusive = exclusive;
}

static void add_metric(struct result *out, const char *metric,
		       const char *unit, bool lower_is_better, double value)
{
	out->metric[out->n] = metric;
	out->unit[out->n] = unit;
	out->lower_is_better[out->n] = lower_is_better;
	out->value[out->n] = value;
	out->n++;
}

#define GIB_PAGES (1u << 18)   /* 1 GiB of 4 KiB pages */

/* ---- single thread ---------------------------------------------------- */

void bench_pairs_loop(const struct contender *c, void *lock, void *ctx,
		      long pairs, bool exclusive)
{
	struct bench_range r;

	set_range(&r, 7, 1, exclusive);
	for (long i = 0; i < pairs; i++) {
		c->lock(lock, ctx, &r);
		c->unlock(lock, ctx, &r);
	}
}

/* ns per lock+unlock of r, over about t->measure_ms after a warm-up. */
static double time_pairs(const struct contender *c, void *lock, void *ctx,
			 struct bench_range *r, const struct timing *t)
{
	uint64_t start = now_ns(), end, limit;
	long pairs = 0;

	limit = start + (uint64_t)t->warmup_ms * 1000000u;
	while (now_ns() < limit)
		for (int i = 0; i < 64; i++) {
			c->lock(lock, ctx, r);
			c->unlock(lock, ctx, r);
		}
	start = now_ns();
	limit = start + (uint64_t)t->measure_ms * 1000000u;
	do {
		for (int i = 0; i < 256; i++) {
			c->lock(lock, ctx, r);
			c->unlock(lock, ctx, r);
		}
		pairs += 256;
		end = now_ns();
	} while (end < limit);
	return (double)(end - start) / (double)pairs;
}

void wl_uncontended(const struct contender *c, const struct timing *t,
		    int pages, bool exclusive, struct result *out)
{
	void *lock = c->create(1ull << 30);
	void *ctx = contender_thread_init(c, lock);
	struct bench_range r;

	set_range(&r, 0, (uint64_t)pages, exclusive);
	add_metric(out, "pair", "ns", true, time_pairs(c, lock, ctx, &r, t));
	contender_thread_fini(c, lock, ctx);
	c->destroy(lock);
}

/* wl_sizes' ranges, as [start, end) in bytes (end 0: EOF). */
const char *const size_name[SIZES] = {
	"1B", "100B", "page+1B", "64p", "1M", "1M+512B", "16M", "1T-EOF",
};
static const uint64_t size_range[SIZES][2] = {
	{ 40967, 40968 },
	{ 1000, 1100 },
	{ 40960, 40960 + PAGE + 1 },
	{ 1ull << 30, (1ull << 30) + (64u << 12) },
	{ 1ull << 30, (1ull << 30) + (1u << 20) },
	{ (1ull << 30) + 512, (1ull << 30) + 512 + (1u << 20) },
	{ 1ull << 30, (1ull << 30) + (16u << 20) },
	{ 1ull << 40, 0 },
};

void wl_sizes(const struct contender *c, const struct timing *t, int size,
	      bool exclusive, struct result *out)
{
	void *lock = c->create(1ull << 31);
	void *ctx = contender_thread_init(c, lock);
	struct bench_range r = {
		.start = size_range[size][0],
		.end = size_range[size][1] ? size_range[size][1] : UINT64_MAX,
		.exclusive = exclusive,
	};

	add_metric(out, "pair", "ns", true, time_pairs(c, lock, ctx, &r, t));
	contender_thread_fini(c, lock, ctx);
	c->destroy(lock);
}

void wl_held(const struct contender *c, const struct timing *t, int held,
	     bool exclusive, int width, bool far, struct result *out)
{
	struct bench_range *h, r;
	void *lock, *ctx;

	if (held > 0 && exclusive && c->whole_object) {
		/* an exclusive whole-object lock under held shared ones
		 * would wait for itself */
		add_metric(out, "pair", "ns", true, NAN);
		return;
	}
	h = calloc((size_t)held + 1, sizeof(*h));
	lock = c->create(1ull << 30);
	ctx = contender_thread_init(c, lock);
	/* Held ranges a page apart (a gap between each, so OFD locks of one
	 * description cannot merge), the timed page in the middle, or 1 GiB
	 * above them all. */
	for (int i = 0; i < held; i++) {
		set_range(&h[i], (uint64_t)(width + 1) * (uint64_t)i,
			  (uint64_t)width, false);
		c->lock(lock, ctx, &h[i]);
	}
	if (far)
		set_range(&r, (uint64_t)(width + 1) * (uint64_t)held + GIB_PAGES, 1,
			  exclusive);
	else
		set_range(&r, (uint64_t)(width + 1) * (uint64_t)(held / 2) +
				      (uint64_t)width, 1, exclusive);
	add_metric(out, "pair", "ns", true, time_pairs(c, lock, ctx, &r, t));
	for (int i = 0; i < held; i++)
		c->unlock(lock, ctx, &h[i]);
	contender_thread_fini(c, lock, ctx);
	c->destroy(lock);
	free(h);
}

/* ---- many threads ----------------------------------------------------- */

enum { CLASS_A, CLASS_B, NCLASSES };

struct worker {
	pthread_t thread;
	pid_t pid;                    /* --processes */
	struct run *run;
	int id;
	uint64_t rng;
	void *ctx;
	_Alignas(64) atomic_ulong ops[NCLASSES];
	struct hist *lat[NCLASSES];   /* wait latency, fair workload only */
};

struct run {
	const struct contender *c;
	void *lock;
	int threads;
	/* one operation of worker w: lock, work, unlock; returns its class */
	int (*op)(struct run *run, struct worker *w);
	int param[4];
	struct shadow *shadow;
	atomic_int stop;
	atomic_int measuring;
	_Atomic uint32_t gate;   /* futex word: 1 once every worker exists */
	struct worker *w;
	struct run *shared;   /* the copy the workers use (run_threads()) */
};

/* Workers wait asleep at the gate until the last one is started: 1 000
 * runnable workers would leave the thread that starts them 1/1 000 of the
 * CPUs, and the warm-up would begin long before the last one exists.
 * (Not private: with --processes the word is in shared memory.) */
static void gate_wait(_Atomic uint32_t *gate)
{
	/* acquire: pairs with gate_open()'s release (the run's parameters) */
	while (!atomic_load_explicit(gate, memory_order_acquire))
		syscall(SYS_futex, (uint32_t *)gate, FUTEX_WAIT, 0, NULL, NULL, 0);
}

static void gate_open(_Atomic uint32_t *gate)
{
	/* release: pairs with gate_wait()'s acquire */
	atomic_store_explicit(gate, 1, memory_order_release);
	syscall(SYS_futex, (uint32_t *)gate, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;

	w->ctx = contender_thread_init(run->c, run->lock);
	gate_wait(&run->gate);
	/* relaxed: a stop flag; results are read after join. */
	while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
		int cls = run->op(run, w);
		/* relaxed: a counter the main thread samples; exactness at
		 * the window's edges does not matter. */
		atomic_fetch_add_explicit(&w->ops[cls], 1, memory_order_relaxed);
	}
	contender_thread_fini(run->c, run->lock, w->ctx);
	return NULL;
}

static void sum_ops(struct run *run, unsigned long sum[NCLASSES])
{
	for (int k = 0; k < NCLASSES; k++) {
		sum[k] = 0;
		for (int i = 0; i < run->threads; i++)
			sum[k] += atomic_load_explicit(&run->w[i].ops[k],
						       memory_order_relaxed);
	}
}

bool bench_processes;

/* Zeroed memory that forked workers share with us (calloc otherwise). */
void *bench_shared_alloc(size_t size)
{
	void *p;

	if (!bench_processes)
		return calloc(1, size);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void bench_shared_free(void *p, size_t size)
{
	if (!bench_processes)
		free(p);
	else if (p)
		munmap(p, size);
}

/* Starts worker i: a thread, or with --processes a forked process that
 * runs the worker and exits (its counters are in shared memory). */
static void start_worker(struct worker *w)
{
	if (!bench_processes) {
		if (pthread_create(&w->thread, NULL, worker_main, w))
			bench_die("pthread_create failed");
		return;
	}
	fflush(NULL);
	pid_t pid = fork();   /* w is shared: only the parent may store it */

	if (pid < 0)
		bench_die("fork failed");
	if (pid == 0) {
		worker_main(w);
		_exit(0);
	}
	w->pid = pid;
}

static void join_pid(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		bench_die("a worker process failed");
}

static void join_worker(struct worker *w)
{
	if (!bench_processes)
		pthread_join(w->thread, NULL);
	else
		join_pid(w->pid);
}

/* Runs the workers; returns Mops/s per class over the measured window.
 * lat, if not NULL, gives each worker NCLASSES latency histograms (in
 * memory from bench_shared_alloc()). */
static void run_threads(struct run *run, const struct timing *t,
			struct hist *lat, double mops[NCLASSES])
{
	unsigned long before[NCLASSES], after[NCLASSES];
	uint64_t t0, t1;
	/* with --processes the workers see this copy of run: its flags and
	 * counters are shared */
	struct run *shared = bench_shared_alloc(sizeof(*shared));

	if (!shared)
		bench_die("out of memory");
	memcpy(shared, run, sizeof(*shared));
	shared->w = bench_shared_alloc((size_t)run->threads * sizeof(*run->w));
	if (!shared->w)
		bench_die("out of memory");
	run->w = shared->w;
	run->shared = shared;
	run = shared;
	for (int i = 0; i < run->threads; i++) {
		run->w[i].run = run;
		run->w[i].id = i;
		run->w[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
		for (int k = 0; lat && k < NCLASSES; k++)
			run->w[i].lat[k] = &lat[i * NCLASSES + k];
		start_worker(&run->w[i]);
	}
	gate_open(&run->gate);
	sleep_ms(t->warmup_ms);
	sum_ops(run, before);
	t0 = now_ns();
	/* relaxed: the fair workload records latency only inside the window. */
	atomic_store_explicit(&run->measuring, 1, memory_order_relaxed);
	sleep_ms(t->measure_ms);
	atomic_store_explicit(&run->measuring, 0, memory_order_relaxed);
	sum_ops(run, after);
	t1 = now_ns();
	atomic_store_explicit(&run->stop, 1, memory_order_relaxed);
	for (int i = 0; i < run->threads; i++)
		join_worker(&run->w[i]);
	for (int k = 0; k < NCLASSES; k++)
		mops[k] = (double)(after[k] - before[k]) * 1e3 / (double)(t1 - t0);
}

static void run_done(struct run *run)
{
	bench_shared_free(run->w, (size_t)run->threads * sizeof(*run->w));
	bench_shared_free(run->shared, sizeof(*run->shared));
	run->c->destroy(run->lock);
}

static int op_disjoint(struct run *run, struct worker *w)
{
	struct bench_range r;
	/* Each thread owns 1024 pages and walks them one page at a time. */
	uint64_t page = (uint64_t)w->id * 1024 + (rng_next(&w->rng) & 1023);

	set_range(&r, page, 1, run->param[0]);
	run->c->lock(run->lock, w->ctx, &r);
	run->c->unlock(run->lock, w->ctx, &r);
	return CLASS_A;
}

/* The distances between placement's windows, in bytes; 0: random. */
const uint64_t placement_distance[PLACEMENTS] = {
	1ull << 20, 8ull << 20, 64ull << 20, 1ull << 30, 1ull << 40,
	(5ull << 30) + 12288, 0,
};

/* A window's first page: thread id's, `distance` bytes apart, or placed
 * at random (page-aligned, below 2^50 bytes) for distance 0. */
static uint64_t window_page(int id, uint64_t distance)
{
	uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);

	if (distance)
		return (uint64_t)id * distance / PAGE;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 32;
	return x & ((1ull << 38) - 1);
}

static int op_placement(struct run *run, struct worker *w)
{
	struct bench_range r;
	uint64_t page = window_page(w->id, placement_distance[run->param[0]]) +
			(rng_next(&w->rng) & 15);

	set_range(&r, page, 1, true);
	run->c->lock(run->lock, w->ctx, &r);
	run->c->unlock(run->lock, w->ctx, &r);
	return CLASS_A;
}

void wl_placement(const struct contender *c, const struct timing *t,
		  int threads, int placement, struct result *out)
{
	struct run run = { .c = c, .threads = threads, .op = op_placement,
			   .param = { placement } };
	double mops[NCLASSES];

	run.lock = c->create(0);
	run_threads(&run, t, NULL, mops);
	add_metric(out, "throughput", "Mops/s", false, mops[CLASS_A]);
	run_done(&run);
}

void wl_disjoint(const struct contender *c, const struct timing *t,
		 int threads, bool exclusive, struct result *out)
{
	struct run run = { .c = c, .threads = threads, .op = op_disjoint,
			   .param = { exclusive } };
	double mops[NCLASSES];

	run.lock = c->create((uint64_t)threads * 1024 * PAGE);
	run_threads(&run, t, NULL, mops);
	add_metric(out, "throughput", "Mops/s", false, mops[CLASS_A]);
	run_done(&run);
}

static int op_mixed(struct run *run, struct worker *w)
{
	uint64_t x = rng_next(&w->rng);
	uint64_t pages = 1 + (x >> 32) % (uint64_t)run->param[0];
	uint64_t first = (x & 0xffffffffu) % (GIB_PAGES - pages + 1);
	bool shared = (int)((x >> 20) % 100) < run->param[1];
	struct bench_range r;

	set_range(&r, first, pages, !shared);
	run->c->lock(run->lock, w->ctx, &r);
	run->c->unlock(run->lock, w->ctx, &r);
	return CLASS_A;
}

void wl_mixed(const struct contender *c, const struct timing *t, int threads,
	      int max_pages, int read_pct, struct result *out)
{
	struct run run = { .c = c, .threads = threads, .op = op_mixed,
			   .param = { max_pages, read_pct } };
	double mops[NCLASSES];

	run.lock = c->create((uint64_t)GIB_PAGES * PAGE);
	run_threads(&run, t, NULL, mops);
	add_metric(out, "throughput", "Mops/s", false, mops[CLASS_A]);
	run_done(&run);
}

static int op_regions(struct run *run, struct worker *w)
{
	uint64_t distance = placement_distance[run->param[0]];
	uint64_t region = distance && distance < (1ull << 30) ? distance / PAGE
							      : GIB_PAGES;
	uint64_t x = rng_next(&w->rng);
	uint64_t pages = 1 + (x >> 32) % 256;
	uint64_t first = window_page(w->id, distance) +
			 (x & 0xffffffffu) % (region - pages + 1);
	struct bench_range r;

	set_range(&r, first, pages, true);
	run->c->lock(run->lock, w->ctx, &r);
	run->c->unlock(run->lock, w->ctx, &r);
	return CLASS_A;
}

void wl_regions(const struct contender *c, const struct timing *t,
		int threads, int placement, struct result *out)
{
	struct run run = { .c = c, .threads = threads, .op = op_regions,
			   .param = { placement } };
	double mops[NCLASSES];

	run.lock = c->create(0);
	run_threads(&run, t, NULL, mops);
	add_metric(out, "throughput", "Mops/s", false, mops[CLASS_A]);
	run_done(&run);
}

const char *const eof_case_name[EOF_CASES] = {
	"none", "held", "queued", "churn",
};

/* The EOF range's side of wl_eof: queue one exclusive request (case 2),
 * or lock and unlock every 50 us until told to stop (case 3). */
struct eof_side {
	pthread_t thread;
	const struct contender *c;
	void *lock;
	int eof_case;
	atomic_int stop;
};

static void *eof_side_main(void *arg)
{
	struct eof_side *s = arg;
	void *ctx = contender_thread_init(s->c, s->lock);
	struct bench_range r;
	struct timespec pause = { 0, 50000 };

	set_range(&r, (1ull << 40) / PAGE, 0, true);
	do {
		s->c->lock(s->lock, ctx, &r);
		s->c->unlock(s->lock, ctx, &r);
		if (s->eof_case == 3)
			nanosleep(&pause, NULL);
		/* relaxed: a stop flag. */
	} while (s->eof_case == 3 &&
		 !atomic_load_explicit(&s->stop, memory_order_relaxed));
	contender_thread_fini(s->c, s->lock, ctx);
	return NULL;
}

void wl_eof(const struct contender *c, const struct timing *t, int eof_case,
	    struct result *out)
{
	struct run run = { .c = c, .threads = 2, .op = op_placement,
			   .param = { 0 } };   /* windows 1 MiB apart */
	struct eof_side side = { .c = c, .eof_case = eof_case };
	struct bench_range held;
	void *ctx;
	double mops[NCLASSES];

	if (c->whole_object && (eof_case == 1 || eof_case == 2)) {
		/* the workers would wait for the whole object all along */
		add_metric(out, "throughput", "Mops/s", false, NAN);
		return;
	}
	run.lock = side.lock = c->create(0);
	ctx = contender_thread_init(c, run.lock);
	set_range(&held, (1ull << 40) / PAGE, 0, eof_case == 1);
	if (eof_case == 1 || eof_case == 2)
		c->lock(run.lock, ctx, &held);
	if (eof_case >= 2 &&
	    pthread_create(&side.thread, NULL, eof_side_main, &side))
		bench_die("pthread_create failed");
	if (eof_case == 2)
		sleep_ms(10);   /* let the exclusive request queue */
	run_threads(&run, t, NULL, mops);
	/* relaxed: a stop flag. */
	atomic_store_explicit(&side.stop, 1, memory_order_relaxed);
	if (eof_case == 1 || eof_case == 2)
		c->unlock(run.lock, ctx, &held);
	if (eof_case >= 2)
		pthread_join(side.thread, NULL);
	contender_thread_fini(c, run.lock, ctx);
	add_metric(out, "throughput", "Mops/s", false, mops[CLASS_A]);
	run_done(&run);
}

#define FILE_PAGES 16384u      /* a 64 MiB file */

static int op_file(struct run *run, struct worker *w)
{
	uint64_t x = rng_next(&w->rng);
	int kind = (int)(x % 100);
	uint64_t first = (x >> 8) % FILE_PAGES;
	struct bench_range r;

	if (kind < 90)        /* buffered I/O, fault, writeback */
		set_range(&r, first, 1, false);
	else if (kind < 99)   /* direct I/O */
		set_range(&r, first % (FILE_PAGES - 16),
			  2 + (x >> 40) % 15, true);
	else                  /* truncate, punch to EOF */
		set_range(&r, first, 0, true);
	run->c->lock(run->lock, w->ctx, &r);
	run->c->unlock(run->lock, w->ctx, &r);
	return CLASS_A;
}

void wl_file(const struct contender *c, const struct timing *t, int threads,
	     struct result *out)
{
	struct run run = { .c = c, .threads = threads, .op = op_file };
	double mops[NCLASSES];

	run.lock = c->create((uint64_t)FILE_PAGES * PAGE);
	run_threads(&run, t, NULL, mops);
	add_metric(out, "throughput", "Mops/s", false, mops[CLASS_A]);
	run_done(&run);
}

/* ---- fairness --------------------------------------------------------- */

#define FAIR_PAGES 16

const double cdf_quantiles[CDF_POINTS] = {
	0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995,
	0.99999, 1.0,
};

static void busy_ns(uint64_t ns)
{
	uint64_t end = now_ns() + ns;

	while (now_ns() < end)
		;
}

/* Readers: 1..4 random pages of the region, held 1 us.  Writers: the whole
 * region, held 1 us, then 100 us of think time. */
static int op_fair(struct run *run, struct worker *w)
{
	bool writer = w->id < run->param[0];
	uint64_t x = rng_next(&w->rng);
	struct bench_range r;
	uint64_t t0, t1;

	if (writer)
		set_range(&r, 0, FAIR_PAGES, true);
	else
		set_range(&r, x % (FAIR_PAGES - 3), 1 + (x >> 32) % 4, false);
	/* A request made inside the window is recorded even if it is granted
	 * only after the window, so a starved class shows its whole wait.
	 * relaxed: the window flag; a sample at its edge does not matter. */
	bool record = atomic_load_explicit(&run->measuring, memory_order_relaxed);
	t0 = now_ns();
	run->c->lock(run->lock, w->ctx, &r);
	t1 = now_ns();
	busy_ns(1000);
	run->c->unlock(run->lock, w->ctx, &r);
	if (record)
		hist_add(w->lat[writer], t1 - t0);
	if (writer)
		busy_ns(100000);
	return writer ? CLASS_B : CLASS_A;
}

/* A class's wait at quantile q, in us; INFINITY when none of its requests
 * was granted in the window (starved: a 0 would read as the best wait). */
static double wait_us(const struct hist *h, double q)
{
	return h->n ? (double)hist_quantile(h, q) / 1e3 : INFINITY;
}

void wl_fair(const struct contender *c, const struct timing *t, int readers,
	     int writers, struct result *out)
{
	struct run run = { .c = c, .threads = readers + writers, .op = op_fair,
			   .param = { writers } };
	size_t lat_size = (size_t)run.threads * NCLASSES * sizeof(struct hist);
	struct hist *lat = bench_shared_alloc(lat_size);
	struct hist *sum = calloc(NCLASSES, sizeof(*sum));
	double mops[NCLASSES];

	if (!lat || !sum)
		bench_die("out of memory");
	run.lock = c->create(FAIR_PAGES * PAGE);
	run_threads(&run, t, lat, mops);
	for (int i = 0; i < run.threads; i++)
		for (int k = 0; k < NCLASSES; k++)
			hist_merge(&sum[k], &lat[i * NCLASSES + k]);
	add_metric(out, "reader throughput", "Mops/s", false, mops[CLASS_A]);
	add_metric(out, "writer throughput", "Kops/s", false, mops[CLASS_B] * 1e3);
	add_metric(out, "reader wait p99", "us", true, wait_us(&sum[CLASS_A], 0.99));
	add_metric(out, "writer wait p50", "us", true, wait_us(&sum[CLASS_B], 0.50));
	add_metric(out, "writer wait p99", "us", true, wait_us(&sum[CLASS_B], 0.99));
	add_metric(out, "writer wait max", "us", true, wait_us(&sum[CLASS_B], 1.0));
	out->has_cdf = true;
	for (int k = 0; k < CDF_POINTS; k++) {
		out->cdf_us[CDF_READERS][k] = wait_us(&sum[CLASS_A], cdf_quantiles[k]);
		out->cdf_us[CDF_WRITERS][k] = wait_us(&sum[CLASS_B], cdf_quantiles[k]);
	}
	run_done(&run);
	bench_shared_free(lat, lat_size);
	free(sum);
}

/* ---- robustness --------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * A holder killed: a process holds a page exclusive, another waits for it
 * (20-29 ms, so that it sleeps), the holder is SIGKILLed; how long from
 * the kill until the waiter holds the page, over `samples` kills.
 */
void wl_robust(const struct contender *c, int samples, struct result *out)
{
	_Atomic uint64_t *granted = mmap(NULL, sizeof(*granted),
					 PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t lat[64];

	if (granted == MAP_FAILED || samples > 64)
		bench_die("robust: setup");
	for (int i = 0; i < samples; i++) {
		void *lock = c->create(16 * PAGE);
		struct bench_range r;
		int p[2];
		char ok;
		pid_t holder, waiter;
		uint64_t t_kill;

		if (pipe(p))
			bench_die("pipe failed");
		fflush(NULL);
		holder = fork();
		if (holder == 0) {
			void *ctx = contender_thread_init(c, lock);

			set_range(&r, 0, 1, true);
			c->lock(lock, ctx, &r);
			if (write(p[1], "h", 1) != 1)
				_exit(1);
			for (;;)
				pause();
		}
		if (holder < 0 || read(p[0], &ok, 1) != 1)
			bench_die("robust: the holder did not start");
		waiter = fork();
		if (waiter == 0) {
			void *ctx = contender_thread_init(c, lock);

			set_range(&r, 0, 1, true);
			c->lock(lock, ctx, &r);
			/* relaxed: read after waitpid */
			atomic_store_explicit(granted, now_ns(), memory_order_relaxed);
			c->unlock(lock, ctx, &r);
			contender_thread_fini(c, lock, ctx);
			_exit(0);
		}
		/* 20 ms and a part of 10 (the waiters' polls are 10 ms apart:
		 * a kill at a fixed delay would meet them at a fixed phase) */
		sleep_ms(20 + (i * 37) % 10);
		t_kill = now_ns();
		kill(holder, SIGKILL);
		join_pid(waiter);
		waitpid(holder, NULL, 0);
		/* relaxed: the waiter's exit orders it */
		lat[i] = atomic_load_explicit(granted, memory_order_relaxed) - t_kill;
		close(p[0]);
		close(p[1]);
		c->destroy(lock);
	}
	qsort(lat, (size_t)samples, sizeof(lat[0]), cmp_u64);
	add_metric(out, "grant after kill p50", "ms", true,
		   (double)lat[samples / 2] / 1e6);
	add_metric(out, "grant after kill max", "ms", true,
		   (double)lat[samples - 1] / 1e6);
	munmap(granted, sizeof(*granted));
}

/* ---- correctness -------------------------------------------------------- */

#define VALIDATE_PAGES 64

static int op_validate(struct run *run, struct worker *w)
{
	uint64_t x = rng_next(&w->rng);
	int lo = (int)(x % VALIDATE_PAGES);
	int len = 1 + (int)((x >> 16) % 8);
	bool to_eof = (x >> 24) % 32 == 0;
	int hi = to_eof || lo + len > VALIDATE_PAGES ? VALIDATE_PAGES : lo + len;
	bool exclusive = (x >> 32) % 3 == 0;
	struct bench_range r;

	set_range(&r, (uint64_t)lo, to_eof ? 0 : (uint64_t)(hi - lo), exclusive);
	run->c->lock(run->lock, w->ctx, &r);
	shadow_enter(run->shadow, lo, hi, exclusive);
	if ((x >> 40) % 16 == 0)
		sched_yield();
	shadow_leave(run->shadow, lo, hi, exclusive);
	run->c->unlock(run->lock, w->ctx, &r);
	return CLASS_A;
}

long wl_validate(const struct contender *c, int threads, int ms)
{
	struct run run = { .c = c, .threads = threads, .op = op_validate };
	struct timing t = { 0, ms };
	double mops[NCLASSES];
	long bad;

	run.shadow = shadow_new(VALIDATE_PAGES);
	run.lock = c->create(VALIDATE_PAGES * PAGE);
	run_threads(&run, &t, NULL, mops);
	bad = shadow_violations(run.shadow);
	if (mops[CLASS_A] <= 0)
		bench_die("%s: no progress in validation", c->name);
	run_done(&run);
	shadow_free(run.shadow);
	return bad;
}
