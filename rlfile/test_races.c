/* SPDX-License-Identifier: MIT */
/*
 * test_races.c - each race the range lock closes, built on purpose.
 *
 * Every scenario stops an operation inside its window (rlfile's test
 * hook: the cache already dropped, the disk not yet changed) until a racer
 * thread has done its read or fault -- or 300 ms passed, which is what
 * happens when the range lock makes the racer wait -- and then checks what
 * a later read sees:
 *
 *   punch_vs_read      a read that fetched old data from disk before the
 *                      punch must not leave it cached after the punch;
 *   truncate_vs_fault  a fault that fetched a page the truncate cut must
 *                      not leave it cached: extending again shows zeros;
 *   direct_write_vs_read  a read racing a direct write must not leave the
 *                      old data cached over the new.
 *
 * and the same with the racer a load through rlfile_mmap (a real page
 * fault, served by rlfile's fault thread), which then also checks what the
 * mapping shows afterwards.  truncate_vs_map_load is clean even without
 * the range lock: the memfd behind the mapping is cut to the new size
 * before the window, so the load is SIGBUS from the kernel (as i_size
 * guards a kernel's faults); it runs in both modes and must be clean in
 * both.  The mapping scenarios are skipped, with the reason, where
 * rlfile_mmap is not supported.
 *
 * usage: test_races DIR [--lock=none]
 * With the range lock every scenario must be clean; with --lock=none every
 * one must show its race (the proof that the scenarios have teeth).
 */
#include "rlfile.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_sigbus.h"

#define PAGE RLFILE_PAGE

struct race {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum rlfile_point point;   /* the window to stop in */
	int phase;                 /* 0 before, 1 in the window, 2 racer done */
	struct rlfile *f;
	uint64_t page;
	enum { BY_READ, BY_FAULT, BY_MAP_LOAD } how;   /* the racer's access */
	volatile unsigned char *map;   /* BY_MAP_LOAD: the file's first pages */
};

static void hook(void *arg, enum rlfile_point point)
{
	struct race *r = arg;
	struct timespec limit;

	if (point != r->point)
		return;
	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_nsec += 300 * 1000000L;
	limit.tv_sec += limit.tv_nsec / 1000000000L;
	limit.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&r->mu);
	r->phase = 1;
	pthread_cond_broadcast(&r->cv);
	while (r->phase != 2)
		if (pthread_cond_timedwait(&r->cv, &r->mu, &limit) == ETIMEDOUT)
			break;   /* the racer waits for our range */
	pthread_mutex_unlock(&r->mu);
}

static void *racer(void *arg)
{
	struct race *r = arg;
	unsigned char buf[PAGE];
	size_t done;

	pthread_mutex_lock(&r->mu);
	while (r->phase == 0)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	if (r->how == BY_FAULT) {
		struct rlfile_fault flt;

		if (rlfile_fault(r->f, r->page, false, &flt) == 0)
			rlfile_fault_done(r->f, &flt);
	} else if (r->how == BY_MAP_LOAD) {
		sigbus_load(r->map + r->page * PAGE);
	} else {
		rlfile_read(r->f, buf, PAGE, r->page * PAGE, &done);
	}
	pthread_mutex_lock(&r->mu);
	r->phase = 2;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static char path[4096];
static enum rlfile_lock lock_mode = RLFILE_LOCK_RANGE;

static struct rlfile *open_with(struct race *r)
{
	struct rlfile_options opt = { .lock = lock_mode, .test_hook = hook,
				      .test_hook_arg = r };
	struct rlfile *f;

	unlink(path);
	if (rlfile_open(path, &opt, &f) != 0) {
		perror(path);
		exit(2);
	}
	r->f = f;
	return f;
}

static void race_init(struct race *r, enum rlfile_point point, uint64_t page,
		      int how)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->point = point;
	r->page = page;
	r->how = how;
}

/* BY_MAP_LOAD: map the file's first 4 pages (after it has its data). */
static void map_for(struct race *r)
{
	void *a;

	if (r->how != BY_MAP_LOAD)
		return;
	if (rlfile_mmap(r->f, 0, 4 * PAGE, PROT_READ, &a) != 0)
		exit(2);
	r->map = a;
}

/* What the mapping shows of page p: all v, or not. */
static bool map_is(struct race *r, uint64_t p, unsigned char v)
{
	if (r->how != BY_MAP_LOAD)
		return true;
	for (size_t i = 0; i < PAGE; i++)
		if (sigbus_load(r->map + p * PAGE + i) != v)
			return false;
	return true;
}

/* A page of `v` at page p, on disk and out of the cache. */
static void on_disk(struct rlfile *f, uint64_t p, unsigned char v)
{
	unsigned char *buf = aligned_alloc(PAGE, PAGE);
	size_t done;

	memset(buf, v, PAGE);
	if (rlfile_write(f, buf, PAGE, p * PAGE, &done) || rlfile_drop_cache(f))
		exit(2);
	free(buf);
}

static bool page_is(struct rlfile *f, uint64_t p, unsigned char v)
{
	unsigned char buf[PAGE];
	size_t done;

	if (rlfile_read(f, buf, PAGE, p * PAGE, &done) || done != PAGE)
		return false;
	for (size_t i = 0; i < PAGE; i++)
		if (buf[i] != v)
			return false;
	return true;
}

/* Each returns true when the outcome is correct (no stale data). */
static bool punch_vs(int how)
{
	struct race r;
	pthread_t t;

	race_init(&r, RLFILE_PUNCH_DROPPED, 1, how);
	struct rlfile *f = open_with(&r);
	on_disk(f, 0, 0x11);
	on_disk(f, 1, 0x22);
	map_for(&r);
	pthread_create(&t, NULL, racer, &r);
	rlfile_punch(f, PAGE, PAGE);
	pthread_join(t, NULL);
	bool ok = page_is(f, 1, 0) && map_is(&r, 1, 0);
	rlfile_close(f);
	return ok;
}

static bool truncate_vs(int how)
{
	struct race r;
	pthread_t t;

	race_init(&r, RLFILE_TRUNCATE_DROPPED, 3, how);
	struct rlfile *f = open_with(&r);
	for (int p = 0; p < 4; p++)
		on_disk(f, (uint64_t)p, 0x33);
	map_for(&r);
	pthread_create(&t, NULL, racer, &r);
	rlfile_truncate(f, 2 * PAGE);
	pthread_join(t, NULL);
	rlfile_truncate(f, 4 * PAGE);   /* extend again: zeros */
	bool ok = page_is(f, 3, 0) && map_is(&r, 3, 0);
	rlfile_close(f);
	return ok;
}

static bool direct_write_vs(int how)
{
	struct race r;
	pthread_t t;
	unsigned char *buf = aligned_alloc(PAGE, PAGE);
	size_t done;

	race_init(&r, RLFILE_DIRECT_WRITE_FLUSHED, 0, how);
	struct rlfile *f = open_with(&r);
	on_disk(f, 0, 0x44);
	map_for(&r);
	memset(buf, 0x55, PAGE);
	pthread_create(&t, NULL, racer, &r);
	rlfile_direct_write(f, buf, PAGE, 0, &done);
	pthread_join(t, NULL);
	bool ok = page_is(f, 0, 0x55) && map_is(&r, 0, 0x55);
	rlfile_close(f);
	free(buf);
	return ok;
}

static bool punch_vs_read(void) { return punch_vs(BY_READ); }
static bool truncate_vs_fault(void) { return truncate_vs(BY_FAULT); }
static bool direct_write_vs_read(void) { return direct_write_vs(BY_READ); }
static bool punch_vs_map_load(void) { return punch_vs(BY_MAP_LOAD); }
static bool truncate_vs_map_load(void) { return truncate_vs(BY_MAP_LOAD); }
static bool direct_write_vs_map_load(void) { return direct_write_vs(BY_MAP_LOAD); }

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		bool (*run)(void);
		bool mapped;           /* needs rlfile_mmap */
		bool lock_independent; /* clean without the range lock too */
	} scenarios[] = {
		{ "punch_vs_read", punch_vs_read, false, false },
		{ "truncate_vs_fault", truncate_vs_fault, false, false },
		{ "direct_write_vs_read", direct_write_vs_read, false, false },
		{ "punch_vs_map_load", punch_vs_map_load, true, false },
		{ "truncate_vs_map_load", truncate_vs_map_load, true, true },
		{ "direct_write_vs_map_load", direct_write_vs_map_load, true, false },
	};
	int passed = 0, failed = 0;
	const char *why;
	int no_mmap = rlfile_mmap_supported(&why);

	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--lock=none"))) {
		fprintf(stderr, "usage: test_races DIR [--lock=none]\n");
		return 2;
	}
	if (argc == 3)
		lock_mode = RLFILE_LOCK_NONE;
	snprintf(path, sizeof(path), "%s/test_races.dat", argv[1]);
	sigbus_catch(NULL);
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (scenarios[i].mapped && no_mmap) {
			printf("%-26s skipped (rlfile_mmap: %s)\n", scenarios[i].name, why);
			continue;
		}
		bool clean = scenarios[i].run();
		/* with the lock: clean; without: the race must show */
		bool ok = lock_mode == RLFILE_LOCK_NONE && !scenarios[i].lock_independent
			? !clean : clean;

		printf("%-26s %s (%s)\n", scenarios[i].name, ok ? "ok" : "FAIL",
		       clean ? "no stale data" : "stale data seen");
		ok ? passed++ : failed++;
	}
	unlink(path);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
