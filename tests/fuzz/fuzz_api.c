/* SPDX-License-Identifier: MIT */
/*
 * fuzz_api.c - the library against the reference model (refmodel.c).
 *
 * The input is a lock flag byte, then 4-byte operations on REF_HANDLES
 * handles.  Handle h belongs to worker thread h % WORKERS, which makes its
 * lock calls (so debug mode's "same thread" is real); unlock, downgrade and
 * destroy come from the driver thread (any thread may unlock).  Before
 * every call the model says what it must return; the driver compares.
 *
 * Scheduling is deterministic where the semantics are:
 *   - a blocking request the model says waits is left running on its
 *     worker, and the driver goes on only once it is queued (it reads the
 *     handle's private futex word: this is a white-box test); it must not
 *     return until the model grants it, and must return 0 soon after the
 *     model does (10 s is a hang);
 *   - a timed request with a short deadline that the model says waits is
 *     awaited at once: nothing else runs meanwhile, so it must time out;
 *   - try and past-deadline timed calls never wait.
 * At the end everything is unlocked and destroy must return 0.
 *
 * The tests build it twice: against the library as it ships, and against
 * one built with 16 KiB regions, where the same ranges cross regions,
 * reach into the next leaf and go wide (tests/CMakeLists.txt).
 *
 * Bad input is part of the alphabet: start >= end, ends at RANGELOCK_EOF
 * and near UINT64_MAX, pages at the top of the space, double unlock,
 * unlock of a waiting handle, downgrade of a shared range, destroy while
 * busy, unknown init flags, and in debug mode relocking a listed handle
 * and overlapping one's own range.
 *
 * Built two ways: with clang -fsanitize=fuzzer as a libFuzzer target, and
 * with RL_FUZZ_REPLAY as a plain program that runs the files named on its
 * command line (the committed corpus is a regression test in every build).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rangelock.h"
#include "refmodel.h"
#include "rl_shared.h"   /* a request's count, a region's waiters */

#define WORKERS 3
#define PAGE 4096ull

enum op_kind { OP_LOCK, OP_TRY, OP_TIMED_PAST, OP_TIMED_SHORT };

struct call {
	enum op_kind kind;
	int h;
	uint64_t start, end;
	bool exclusive;
};

struct worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned long posted, done;   /* mu */
	struct call call;             /* mu */
	int result;                   /* mu */
};

static struct worker workers[WORKERS];
static rangelock_t lock;
static rangelock_range_t handles[REF_HANDLES];
static struct ref_lock model;
static bool pending[REF_HANDLES];    /* a lock call of this handle runs */

static _Noreturn void mismatch(const char *what, int h, int want, int got)
{
	fprintf(stderr, "fuzz_api: %s on handle %d: model says %d, library %d\n",
		what, h, want, got);
	abort();
}

static struct timespec deadline_in_ms(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_nsec += ms * 1000000L;
	t.tv_sec += t.tv_nsec / 1000000000L;
	t.tv_nsec %= 1000000000L;
	return t;
}

static int run_call(const struct call *c)
{
	rangelock_range_t *r = &handles[c->h];
	struct timespec t;

	switch (c->kind) {
	case OP_LOCK:
		return c->exclusive ? rangelock_wrlock(&lock, r, c->start, c->end)
				    : rangelock_rdlock(&lock, r, c->start, c->end);
	case OP_TRY:
		return c->exclusive ? rangelock_trywrlock(&lock, r, c->start, c->end)
				    : rangelock_tryrdlock(&lock, r, c->start, c->end);
	case OP_TIMED_PAST:
		t = (struct timespec){ 0, 0 };
		break;
	case OP_TIMED_SHORT:
		t = deadline_in_ms(2);
		break;
	}
	return c->exclusive ? rangelock_timedwrlock(&lock, r, c->start, c->end, &t)
			    : rangelock_timedrdlock(&lock, r, c->start, c->end, &t);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->done == w->posted)
			pthread_cond_wait(&w->cv, &w->mu);
		struct call c = w->call;

		pthread_mutex_unlock(&w->mu);
		int rc = run_call(&c);

		pthread_mutex_lock(&w->mu);
		w->result = rc;
		w->done = w->posted;
		pthread_cond_broadcast(&w->cv);
	}
	return NULL;
}

static void start_workers(void)
{
	for (int i = 0; i < WORKERS; i++) {
		pthread_mutex_init(&workers[i].mu, NULL);
		pthread_cond_init(&workers[i].cv, NULL);
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]))
			abort();
	}
}

static struct worker *worker_of(int h)
{
	return &workers[h % WORKERS];
}

static void post(int h, const struct call *c)
{
	struct worker *w = worker_of(h);

	pthread_mutex_lock(&w->mu);
	w->call = *c;
	w->posted++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static bool finished(int h)
{
	struct worker *w = worker_of(h);
	bool done;

	pthread_mutex_lock(&w->mu);
	done = w->done == w->posted;
	pthread_mutex_unlock(&w->mu);
	return done;
}

/* The result of the worker's call, waiting up to 10 s for it. */
static int await(int h)
{
	struct worker *w = worker_of(h);
	struct timespec limit;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_sec += 10;
	pthread_mutex_lock(&w->mu);
	while (w->done != w->posted && rc == 0)
		rc = pthread_cond_timedwait(&w->cv, &w->mu, &limit);
	if (w->done != w->posted) {
		fprintf(stderr, "fuzz_api: handle %d: granted by the model, "
			"still waiting in the library after 10 s\n", h);
		abort();
	}
	rc = w->result;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* After anything that may grant: the model's grants must have happened in
 * the library, and its waiters must still wait. */
static void settle(void)
{
	for (int h = 0; h < REF_HANDLES; h++) {
		if (!pending[h])
			continue;
		if (model.r[h].state == REF_HELD) {
			int rc = await(h);

			if (rc != 0)
				mismatch("granted lock", h, 0, rc);
			pending[h] = false;
		} else if (finished(h)) {
			mismatch("lock returned while the model waits", h, -1,
				 worker_of(h)->result);
		}
	}
}

static bool shared_mode;

/* A shared lock's handle stays in the caller's memory while its request
 * waits in a node of the region: have as many waited there as the model
 * says wait?  (Under the guard: white-box.) */
static bool shared_waiters_listed(void)
{
	struct rl_lock *l = (struct rl_lock *)(void *)&lock;
	uint32_t want = 0, have;

	for (int i = 0; i < REF_HANDLES; i++)
		want += model.r[i].state == REF_WAITING;
	rl_shared_guard_lock(l);
	have = rl_shared_listed(l)->waiting;
	rl_shared_guard_unlock(l);
	return have == want;
}

/* Wait until handle h's lock call has queued its request (or returned). */
static void await_queued(int h)
{
	struct rl_request *q = (struct rl_request *)(void *)&handles[h];

	for (long spins = 0; spins < 10L * 1000 * 1000; spins++) {
		/* relaxed: we only need to see the value change; the worker's
		 * result is read under its mutex. */
		if ((shared_mode ? shared_waiters_listed()
				 : atomic_load_explicit(&q->count, memory_order_relaxed) &
					   ~RL_COUNT_SLEEPING) ||
		    finished(h))
			return;
		if (spins > 1000)
			sched_yield();
	}
	fprintf(stderr, "fuzz_api: handle %d: lock call never queued\n", h);
	abort();
}

static bool worker_busy(int h)
{
	for (int i = h % WORKERS; i < REF_HANDLES; i += WORKERS)
		if (pending[i])
			return true;
	return false;
}

/* Ranges: mostly whole pages near a block boundary (fast path), some
 * byte-short, to EOF, at the top of the space, near UINT64_MAX, empty,
 * and over blocks (shape 3: the length in blocks of 64 pages, so that
 * 64..256 pages cover 2 to 5 blocks, held through a slot in each).  Bits
 * 5-6 of b scale the length: 1..4 pages, 60..63 (a whole block or across
 * one), 512..2048 (wide: the window, a few lines), 2048..8192 (wide over
 * every line). */
static void decode_range(uint8_t a, uint8_t b, uint64_t *start, uint64_t *end)
{
	static const uint64_t scale[4][2] = { { 1, 1 }, { 60, 1 }, { 0, 512 },
					      { 0, 2048 } };
	uint64_t page = (a & 15) + ((a >> 4) & 1) * 56;   /* 0..15, 56..71 */
	const uint64_t *sc = scale[(b >> 5) & 3];
	uint64_t len = sc[0] + (1 + (b & 3)) * sc[1] - (sc[0] ? 1 : 0);

	*start = page * PAGE;
	*end = (page + len) * PAGE;
	switch ((b >> 2) & 7) {
	case 3: *end = *start + len * 64 * PAGE; break;  /* over blocks */
	case 4: *end -= 1 + (a >> 5); break;             /* ragged */
	case 5: *end = RANGELOCK_EOF; break;
	case 6:                                           /* top pages */
		*start = ((1ull << 52) - 32 + (a & 15)) * PAGE;
		*end = *start + len * PAGE;
		break;
	case 7:
		if (a & 0x80) {                           /* empty or inverted */
			*end = *start - (a & 0x20 ? PAGE : 0);
		} else {                                  /* near the top */
			*start = UINT64_MAX - len * (a & 0x40 ? 1 : PAGE);
			*end = a & 0x20 ? UINT64_MAX : UINT64_MAX - 1;
		}
		break;
	default: break;                                   /* whole pages */
	}
}

static void do_lock(enum op_kind kind, int h, uint64_t start, uint64_t end,
		    bool exclusive)
{
	static const enum ref_how how[] = { REF_BLOCK, REF_TRY, REF_TIMED_PAST,
					    REF_BLOCK };
	struct call c = { kind, h, start, end, exclusive };
	int want, got;

	if (worker_busy(h))
		return;   /* its thread is blocked in a lock call */
	if (!model.debug && model.r[h].state != REF_IDLE && start < end)
		return;   /* undefined without debug mode: never do it */
	want = ref_lock(&model, h, h % WORKERS, start, end, exclusive, how[kind]);
	post(h, &c);
	if (want == -1 && kind == OP_LOCK) {
		pending[h] = true;
		await_queued(h);
		settle();
		return;
	}
	got = await(h);
	if (want == -1) {            /* OP_TIMED_SHORT: nothing can free it */
		ref_withdraw(&model, h);
		want = ETIMEDOUT;
	}
	if (got != want)
		mismatch("lock", h, want, got);
	settle();
}

static void drain(void)
{
	for (int round = 0; round < REF_HANDLES + 1; round++) {
		for (int h = 0; h < REF_HANDLES; h++)
			if (model.r[h].state == REF_HELD && !pending[h]) {
				int want = ref_unlock(&model, h);
				int got = rangelock_unlock(&lock, &handles[h]);

				if (got != want)
					mismatch("final unlock", h, want, got);
				settle();
			}
	}
	for (int h = 0; h < REF_HANDLES; h++)
		if (model.r[h].state != REF_IDLE || pending[h])
			mismatch("drain left a request", h, REF_IDLE,
				 (int)model.r[h].state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bit 2 of the first byte: the lock is an attachment to a shared region
 * (no debug mode there), with the same semantics; destroy detaches.  16 KiB
 * hold the region's table, its header and some 80 nodes. */
static _Alignas(64) unsigned char region[16384];

static int lock_start(bool shared, unsigned flags)
{
	if (!shared)
		return rangelock_init(&lock, flags);
	return rangelock_shared_attach(&lock, region, sizeof(region));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned flags;
	bool shared;

	pthread_once(&once, start_workers);
	if (size < 1)
		return 0;
	shared = shared_mode = data[0] & 4;
	flags = data[0] & 1 && !shared ? RANGELOCK_DEBUG : 0;
	if (data[0] & 2) {           /* an unknown flag: EINVAL, lock untouched */
		if (rangelock_init(&lock, flags | 4u) != EINVAL)
			mismatch("init with an unknown flag", -1, EINVAL, 0);
	}
	if (shared && rangelock_shared_init(region, sizeof(region)) != 0)
		mismatch("shared init", -1, 0, -1);
	if (lock_start(shared, flags) != 0)
		mismatch("init", -1, 0, -1);
	ref_init(&model, flags != 0);
	memset(pending, 0, sizeof(pending));

	for (size_t i = 1; i + 4 <= size; i += 4) {
		int h = data[i + 1] % REF_HANDLES;
		bool exclusive = data[i] & 0x10;
		uint64_t start, end;
		int want, got;

		decode_range(data[i + 2], data[i + 3], &start, &end);
		switch (data[i] % 9) {
		case 0: case 1: do_lock(OP_LOCK, h, start, end, exclusive); break;
		case 2: do_lock(OP_TRY, h, start, end, exclusive); break;
		case 3: do_lock(OP_TIMED_PAST, h, start, end, exclusive); break;
		case 4: do_lock(OP_TIMED_SHORT, h, start, end, exclusive); break;
		case 5: case 6:   /* of a waiting handle too: EINVAL */
			want = ref_unlock(&model, h);
			got = rangelock_unlock(&lock, &handles[h]);
			if (got != want)
				mismatch("unlock", h, want, got);
			settle();
			break;
		case 7:
			want = ref_downgrade(&model, h);
			got = rangelock_downgrade(&lock, &handles[h]);
			if (got != want)
				mismatch("downgrade", h, want, got);
			settle();
			break;
		case 8:
			want = ref_destroy(&model);
			got = rangelock_destroy(&lock);
			if (got != want)
				mismatch("destroy", -1, want, got);
			if (got == 0 && lock_start(shared, flags) != 0)
				mismatch("init after destroy", -1, 0, -1);
			break;
		}
	}
	drain();
	if (rangelock_destroy(&lock) != 0)
		mismatch("destroy at the end", -1, 0, EBUSY);
	return 0;
}

#ifdef RL_FUZZ_REPLAY
/* Replay: run each file named on the command line once. */
int main(int argc, char **argv)
{
	int n = 0;

	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		static uint8_t buf[1 << 16];
		size_t len;

		if (!f) {
			perror(argv[i]);
			return 2;
		}
		len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
		n++;
	}
	printf("%d inputs replayed\n%d passed, 0 failed\n", n, n);
	return 0;
}
#endif
