/* SPDX-License-Identifier: MIT */
/*
 * file_ranges.c - range locks as a file system uses them.
 *
 * An in-memory "file" of 64 pages is used by three kinds of thread at once:
 *   - readers copy out one page at a time under a SHARED range, as buffered
 *     reads and page faults do, side by side on the same and other pages;
 *   - direct-I/O writers overwrite several pages under an EXCLUSIVE range,
 *     filling every byte with one stamp;
 *   - a truncater zeroes everything from a page to the end under an
 *     EXCLUSIVE range that runs to RANGELOCK_EOF.
 * A reader that ever saw a page with two different stamps in it (a torn
 * write) would print it; with the range lock it never does.
 *
 * usage: file_ranges [seconds]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rangelock.h"

#define PAGE 4096
#define PAGES 64

static unsigned char file[PAGES][PAGE];
static rangelock_t file_lock = RANGELOCK_INITIALIZER;
static atomic_bool done;
static atomic_long torn, reads, writes, truncates;

static unsigned rnd(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

static void *reader(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	unsigned char copy[PAGE];

	/* relaxed: a stop flag; nothing is published through it. */
	while (!atomic_load_explicit(&done, memory_order_relaxed)) {
		unsigned p = rnd(&seed) % PAGES;
		rangelock_range_t r;

		rangelock_rdlock(&file_lock, &r, (uint64_t)p * PAGE,
				 (uint64_t)(p + 1) * PAGE);
		memcpy(copy, file[p], PAGE);
		rangelock_unlock(&file_lock, &r);
		if (memchr(copy, copy[0] ^ 0xff, PAGE) ||
		    memcmp(copy, copy + 1, PAGE - 1) != 0)
			atomic_fetch_add_explicit(&torn, 1, memory_order_relaxed);
		/* relaxed: statistics only. */
		atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
	}
	return NULL;
}

static void *direct_writer(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	while (!atomic_load_explicit(&done, memory_order_relaxed)) {
		unsigned first = rnd(&seed) % PAGES, n = 1 + rnd(&seed) % 8;
		unsigned last = first + n > PAGES ? PAGES : first + n;
		unsigned char stamp = (unsigned char)(1 + rnd(&seed) % 255);
		rangelock_range_t r;

		rangelock_wrlock(&file_lock, &r, (uint64_t)first * PAGE,
				 (uint64_t)last * PAGE);
		for (unsigned p = first; p < last; p++)
			for (int i = 0; i < PAGE; i += 512) /* slow, to tear */
				memset(&file[p][i], stamp, 512);
		rangelock_unlock(&file_lock, &r);
		atomic_fetch_add_explicit(&writes, 1, memory_order_relaxed);
	}
	return NULL;
}

static void *truncater(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	while (!atomic_load_explicit(&done, memory_order_relaxed)) {
		unsigned from = PAGES / 2 + rnd(&seed) % (PAGES / 2);
		rangelock_range_t r;

		rangelock_wrlock(&file_lock, &r, (uint64_t)from * PAGE,
				 RANGELOCK_EOF);
		memset(file[from], 0, (size_t)(PAGES - from) * PAGE);
		rangelock_unlock(&file_lock, &r);
		atomic_fetch_add_explicit(&truncates, 1, memory_order_relaxed);
		struct timespec pause = { 0, 1000000 };
		nanosleep(&pause, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0;
	pthread_t t[7];
	void *(*role[7])(void *) = { reader, reader, reader, reader,
				     direct_writer, direct_writer, truncater };

	if (seconds <= 0 || seconds > 3600) {
		fprintf(stderr, "usage: file_ranges [seconds in (0, 3600]]\n");
		return 2;
	}
	for (int i = 0; i < 7; i++)
		pthread_create(&t[i], NULL, role[i], (void *)(uintptr_t)(i + 1));
	struct timespec run = { (time_t)seconds,
				(long)((seconds - (time_t)seconds) * 1e9) };
	nanosleep(&run, NULL);
	atomic_store_explicit(&done, true, memory_order_relaxed);
	for (int i = 0; i < 7; i++)
		pthread_join(t[i], NULL);

	printf("file_ranges: %.1f s, 4 readers (shared, 1 page), 2 direct writers "
	       "(exclusive, 1-8 pages), 1 truncater (exclusive to EOF)\n", seconds);
	/* relaxed: the threads are joined; counters only. */
	long n_torn = atomic_load_explicit(&torn, memory_order_relaxed);
	printf("  page reads      %ld\n  direct writes   %ld\n  truncates       %ld\n"
	       "  torn pages seen %ld\n",
	       atomic_load_explicit(&reads, memory_order_relaxed),
	       atomic_load_explicit(&writes, memory_order_relaxed),
	       atomic_load_explicit(&truncates, memory_order_relaxed), n_torn);
	printf("  sizeof(rangelock_t) = %zu, sizeof(rangelock_range_t) = %zu\n",
	       sizeof(rangelock_t), sizeof(rangelock_range_t));
	return rangelock_destroy(&file_lock) == 0 && n_torn == 0 ? 0 : 1;
}
