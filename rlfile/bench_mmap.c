/* SPDX-License-Identifier: MIT */
/*
 * rlfile-mmap-bench - what a page fault served by rlfile costs, against the
 * kernel's own mmap of the same file.
 *
 * One file of --pages pages, written, synced and read once (so that the
 * kernel's page cache holds it: both contenders then fault in from memory,
 * rlfile by pread into its memfd, the kernel from its page cache).  Each
 * round maps it afresh with each contender and times:
 *
 *   seq-fault     the first load of every page, in order (µs a page);
 *   random-fault  the first load of every page, in a random order;
 *   first-store   the first store to every page, mapped and clean (the
 *                 page_mkwrite step: rlfile's write-protect fault);
 *   mapped-read   a read of the whole file once every page is mapped (GB/s).
 *
 * The kernel maps up to 16 pages around a read fault (fault-around), so its
 * read faults are fewer than its pages; rlfile maps one page a fault.
 * Medians of --reps rounds, contenders interleaved in each.
 *
 * usage: rlfile-mmap-bench [--pages N] [--reps R] [--dir DIR]
 * Exit 77 where rlfile_mmap is not supported (with the reason).
 */
#include "rlfile.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE RLFILE_PAGE

enum { SEQ_FAULT, RANDOM_FAULT, FIRST_STORE, MAPPED_READ, NMEASURES };
static const char *const measure_name[NMEASURES] = {
	"seq-fault (us/page)", "random-fault (us/page)", "first-store (us/page)",
	"mapped-read (GB/s)",
};
enum { RLFILE, KERNEL, NCONTENDERS };
static const char *const contender_name[NCONTENDERS] = { "rlfile_mmap", "kernel mmap" };

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "rlfile-mmap-bench: %s: %s\n", what, strerror(err));
	exit(2);
}

/* A contender's mapping of the file, made afresh by map_fresh(). */
struct mapping {
	struct rlfile *f;            /* RLFILE */
	int fd;                      /* KERNEL */
	size_t len;
	volatile unsigned char *m;
};

static void map_fresh(int who, struct mapping *mp)
{
	void *a;
	int rc;

	if (who == RLFILE) {
		/* a dropped cache: the next loads fault and read the file */
		if ((rc = rlfile_drop_cache(mp->f)))
			die("rlfile_drop_cache", rc);
		if (!mp->m && (rc = rlfile_mmap(mp->f, 0, mp->len, PROT_READ | PROT_WRITE, &a)))
			die("rlfile_mmap", rc);
		if (!mp->m)
			mp->m = a;
		return;
	}
	if (mp->m)
		munmap((void *)mp->m, mp->len);
	a = mmap(NULL, mp->len, PROT_READ | PROT_WRITE, MAP_SHARED, mp->fd, 0);
	if (a == MAP_FAILED)
		die("mmap", errno);
	mp->m = a;
}

/* One round of the four measures on mp's `pages` pages, given the page
 * order for random faults; map_fresh() leaves nothing mapped before each
 * fault measure. */
static void round_of(int who, struct mapping *mp, const uint32_t *order,
		     size_t pages, double out[NMEASURES])
{
	volatile unsigned sink = 0;
	double t;

	map_fresh(who, mp);
	t = now();
	for (size_t p = 0; p < pages; p++)
		sink += mp->m[p * PAGE];
	out[SEQ_FAULT] = (now() - t) / (double)pages * 1e6;

	map_fresh(who, mp);
	t = now();
	for (size_t i = 0; i < pages; i++)
		sink += mp->m[(size_t)order[i] * PAGE];
	out[RANDOM_FAULT] = (now() - t) / (double)pages * 1e6;

	/* every page mapped and clean (written back) first */
	if (who == RLFILE)
		rlfile_sync(mp->f);
	else
		msync((void *)mp->m, mp->len, MS_SYNC);
	t = now();
	for (size_t p = 0; p < pages; p++)
		mp->m[p * PAGE + 8] = (unsigned char)p;
	out[FIRST_STORE] = (now() - t) / (double)pages * 1e6;

	t = now();
	uint64_t sum = 0;
	for (size_t i = 0; i < mp->len / 8; i++)
		sum += ((volatile uint64_t *)mp->m)[i];
	out[MAPPED_READ] = (double)mp->len / (now() - t) / 1e9;
	sink += (unsigned)sum;
	(void)sink;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pages", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'r' },
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	size_t pages = 8192;
	int reps = 5, c, rc;
	const char *dir = ".", *why;
	char path[4096];

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': pages = strtoul(optarg, NULL, 0); break;
		case 'r': reps = atoi(optarg); break;
		case 'd': dir = optarg; break;
		case 'h':
			printf("usage: rlfile-mmap-bench [--pages N] [--reps R] [--dir DIR]\n");
			return 0;
		default:
			fprintf(stderr, "usage: rlfile-mmap-bench [--pages N] [--reps R] [--dir DIR]\n");
			return 2;
		}
	}
	if (pages < 16 || pages > (1u << 24) || reps < 1 || reps > 101) {
		fprintf(stderr, "rlfile-mmap-bench: --pages 16..16777216, --reps 1..101\n");
		return 2;
	}
	if ((rc = rlfile_mmap_supported(&why))) {
		printf("rlfile-mmap-bench: skipped: rlfile_mmap: %s\n", why);
		return 77;
	}
	snprintf(path, sizeof(path), "%s/rlfile-mmap-bench.dat", dir);

	/* the file, on disk and in the kernel's page cache */
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	unsigned char *buf = malloc(PAGE);
	if (fd < 0 || !buf)
		die(path, errno);
	for (size_t p = 0; p < pages; p++) {
		memset(buf, (int)(p * 7 + 1), PAGE);
		if (pwrite(fd, buf, PAGE, (off_t)(p * PAGE)) != PAGE)
			die("pwrite", errno);
	}
	fsync(fd);
	for (size_t p = 0; p < pages; p++)
		if (pread(fd, buf, PAGE, (off_t)(p * PAGE)) != PAGE)
			die("pread", errno);

	uint32_t *order = malloc(pages * sizeof(*order));
	uint64_t rng = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < pages; i++)
		order[i] = (uint32_t)i;
	for (size_t i = pages - 1; i > 0; i--) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		size_t j = rng % (i + 1);
		uint32_t tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}

	struct mapping mp[NCONTENDERS] = { { .fd = -1 }, { .fd = fd } };
	struct rlfile_options opt = { .lock = RLFILE_LOCK_RANGE };
	for (int w = 0; w < NCONTENDERS; w++)
		mp[w].len = pages * PAGE;
	if ((rc = rlfile_open(path, &opt, &mp[RLFILE].f)))
		die("rlfile_open", rc);

	double (*res)[NCONTENDERS][NMEASURES] = calloc((size_t)reps, sizeof(*res));
	for (int r = 0; r < reps; r++)
		for (int w = 0; w < NCONTENDERS; w++)
			round_of(w, &mp[w], order, pages, res[r][w]);

	printf("rlfile-mmap-bench: %zu pages (%zu MiB), medians of %d rounds\n",
	       pages, pages * PAGE >> 20, reps);
	printf("%-24s %14s %14s %8s\n", "measure", contender_name[0], contender_name[1],
	       "ratio");
	for (int k = 0; k < NMEASURES; k++) {
		double med[NCONTENDERS], v[101];

		for (int w = 0; w < NCONTENDERS; w++) {
			for (int r = 0; r < reps; r++)
				v[r] = res[r][w][k];
			qsort(v, (size_t)reps, sizeof(double), cmp_double);
			med[w] = v[reps / 2];
		}
		printf("%-24s %14.3f %14.3f %7.2fx\n", measure_name[k], med[RLFILE],
		       med[KERNEL], med[RLFILE] / med[KERNEL]);
	}
	rc = rlfile_close(mp[RLFILE].f);
	munmap((void *)mp[KERNEL].m, mp[KERNEL].len);
	close(fd);
	unlink(path);
	free(res);
	free(order);
	free(buf);
	return rc ? 1 : 0;
}
