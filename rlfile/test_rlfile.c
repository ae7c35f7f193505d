/* SPDX-License-Identifier: MIT */
/*
 * test_rlfile.c - rlfile's semantics, one thread at a time, and the
 * deadlock of taking the range lock above and below a fault.
 *
 * usage: test_rlfile DIR   (a directory on a file system with O_DIRECT)
 */
#include "rlfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "test_check.h"

#define PAGE RLFILE_PAGE


static char path[4096];

static struct rlfile *open_fresh(unsigned rl_flags)
{
	struct rlfile_options opt = { .lock = RLFILE_LOCK_RANGE,
				      .rangelock_flags = rl_flags };
	struct rlfile *f;

	unlink(path);
	if (rlfile_open(path, &opt, &f) != 0) {
		perror(path);
		exit(2);
	}
	return f;
}

static bool all(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void test_semantics(void)
{
	struct rlfile *f = open_fresh(0);
	unsigned char *buf = aligned_alloc(PAGE, 4 * PAGE);
	struct rlfile_fault flt;
	struct rlfile_options bad = { .lock = 7 };
	struct rlfile *g;
	size_t done;

	memset(buf, 0xaa, 3 * PAGE);
	CHECK(rlfile_write(f, buf, 3 * PAGE, 0, &done) == 0);
	CHECK(rlfile_size(f) == 3 * PAGE);
	/* a direct read sees buffered writes that completed before it */
	memset(buf, 0, 4 * PAGE);
	CHECK(rlfile_direct_read(f, buf, 4 * PAGE, 0, &done) == 0 && done == 3 * PAGE);
	CHECK(all(buf, 3 * PAGE, 0xaa));
	/* buffered reads and faults see a direct write once it returned */
	memset(buf, 0xbb, PAGE);
	CHECK(rlfile_direct_write(f, buf, PAGE, PAGE, &done) == 0);
	CHECK(rlfile_read(f, buf + PAGE, PAGE, PAGE, &done) == 0 && done == PAGE);
	CHECK(all(buf + PAGE, PAGE, 0xbb));
	CHECK(rlfile_fault(f, 1, false, &flt) == 0);
	CHECK(all(flt.data, PAGE, 0xbb));
	rlfile_fault_done(f, &flt);
	/* punch: zeros, in the cache and on disk */
	CHECK(rlfile_punch(f, 0, PAGE + 100) == 0);
	CHECK(rlfile_read(f, buf, 2 * PAGE, 0, &done) == 0 && done == 2 * PAGE);
	CHECK(all(buf, PAGE + 100, 0) && all(buf + PAGE + 100, PAGE - 100, 0xbb));
	CHECK(rlfile_drop_cache(f) == 0);
	CHECK(rlfile_read(f, buf, 2 * PAGE, 0, &done) == 0 &&
	      all(buf, PAGE + 100, 0) && all(buf + PAGE + 100, PAGE - 100, 0xbb));
	/* truncate into a page: nothing beyond; extending shows zeros */
	CHECK(rlfile_truncate(f, PAGE + 200) == 0 && rlfile_size(f) == PAGE + 200);
	CHECK(rlfile_fault(f, 2, false, &flt) == ENXIO);
	CHECK(rlfile_read(f, buf, 3 * PAGE, 0, &done) == 0 && done == PAGE + 200);
	CHECK(rlfile_truncate(f, 3 * PAGE) == 0);
	CHECK(rlfile_read(f, buf, 3 * PAGE, 0, &done) == 0 && done == 3 * PAGE);
	CHECK(all(buf + PAGE + 100, 100, 0xbb) && all(buf + PAGE + 200, 2 * PAGE - 200, 0));
	/* bad input: clear errors, nothing changes */
	CHECK(rlfile_direct_read(f, buf + 1, PAGE, 0, &done) == EINVAL);
	CHECK(rlfile_direct_write(f, buf, PAGE, 100, &done) == EINVAL);
	CHECK(rlfile_direct_write(f, buf, 100, 0, &done) == EINVAL);
	CHECK(rlfile_read(f, buf, PAGE, UINT64_MAX - 10, &done) == EINVAL);
	CHECK(rlfile_write(f, buf, PAGE, UINT64_MAX - 10, &done) == EINVAL);
	CHECK(rlfile_punch(f, UINT64_MAX - 10, 100) == EINVAL);
	CHECK(rlfile_truncate(f, UINT64_MAX) == EINVAL);
	CHECK(rlfile_fault(f, UINT64_MAX / 2, false, &flt) == EINVAL);
	CHECK(rlfile_open(path, &bad, &g) == EINVAL);
	CHECK(rlfile_allocate(f, 0, 0, false) == EINVAL);
	CHECK(rlfile_allocate(f, UINT64_MAX - 10, 100, true) == EINVAL);
	CHECK(rlfile_size(f) == 3 * PAGE);
	/* allocation: the data stays; only without keep_size does it grow */
	CHECK(rlfile_allocate(f, 0, 8 * PAGE, true) == 0 && rlfile_size(f) == 3 * PAGE);
	CHECK(rlfile_allocate(f, 2 * PAGE, 3 * PAGE, false) == 0);
	CHECK(rlfile_size(f) == 5 * PAGE);
	CHECK(rlfile_read(f, buf, 4 * PAGE, 2 * PAGE, &done) == 0 && done == 3 * PAGE);
	CHECK(all(buf, 3 * PAGE, 0));
	CHECK(rlfile_read(f, buf, 100, PAGE + 100, &done) == 0 && all(buf, 100, 0xbb));
	/* drop a range: its dirty pages written back, its pages gone, the
	 * others kept; a bad range changes nothing */
	memset(buf, 0xcc, 4 * PAGE);
	CHECK(rlfile_write(f, buf, 4 * PAGE, 0, &done) == 0);
	size_t cached = rlfile_cached_pages(f), dirty = rlfile_dirty_pages(f);
	CHECK(rlfile_drop_range(f, 0, 0) == EINVAL);
	CHECK(rlfile_drop_range(f, UINT64_MAX - 10, 100) == EINVAL);
	CHECK(rlfile_drop_range(f, PAGE + 1, PAGE) == 0); /* pages 1 and 2 */
	CHECK(rlfile_cached_pages(f) == cached - 2 && rlfile_dirty_pages(f) == dirty - 2);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, 2 * PAGE, PAGE) == (ssize_t)(2 * PAGE));
	CHECK(all(buf, 2 * PAGE, 0xcc));
	close(fd);
	CHECK(rlfile_close(f) == 0);
	free(buf);
}

/* rlfile_write_through: past the cache, through the buffered descriptor;
 * a dirty cached page under it is written back and dropped first, so the
 * later bytes win, and it extends the file as a direct write does. */
static void test_write_through(void)
{
	struct rlfile *f = open_fresh(0);
	unsigned char *buf = malloc(4 * PAGE + 1);
	size_t done;
	int fd;

	memset(buf, 0x11, 2 * PAGE);
	CHECK(rlfile_write(f, buf, 2 * PAGE, 0, &done) == 0);   /* dirty, cached */
	CHECK(rlfile_dirty_pages(f) == 2);
	memset(buf, 0x22, 3 * PAGE + 1);
	/* an unaligned buffer is fine; unaligned offsets and lengths are not */
	CHECK(rlfile_write_through(f, buf + 1, 3 * PAGE, PAGE, &done) == 0 &&
	      done == 3 * PAGE);
	CHECK(rlfile_size(f) == 4 * PAGE);
	CHECK(rlfile_dirty_pages(f) == 1);   /* page 1 dropped; page 0 stays */
	CHECK(rlfile_write_through(f, buf, PAGE, 100, &done) == EINVAL);
	CHECK(rlfile_write_through(f, buf, 100, 0, &done) == EINVAL);
	CHECK(rlfile_read(f, buf, 4 * PAGE, 0, &done) == 0 && done == 4 * PAGE);
	CHECK(all(buf, PAGE, 0x11) && all(buf + PAGE, 3 * PAGE, 0x22));
	CHECK(rlfile_close(f) == 0);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, 4 * PAGE, 0) == (ssize_t)(4 * PAGE));
	CHECK(all(buf, PAGE, 0x11) && all(buf + PAGE, 3 * PAGE, 0x22));
	close(fd);
	free(buf);
}

/* Two handles of one file: rlfile_open_fd uses its own descriptors. */
static void test_open_fd(void)
{
	struct rlfile_options opt = { .lock = RLFILE_LOCK_RANGE };
	unsigned char buf[100];
	struct rlfile *f;
	size_t done;
	int fd = open(path, O_RDONLY);   /* read-only: rlfile reopens it */

	CHECK(fd >= 0);
	CHECK(rlfile_open_fd(fd, &opt, &f) == 0);
	CHECK(rlfile_size(f) == 5 * PAGE);
	memset(buf, 0x33, sizeof(buf));
	CHECK(rlfile_write(f, buf, sizeof(buf), 0, &done) == 0);
	CHECK(rlfile_close(f) == 0);
	CHECK(pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) && all(buf, 100, 0x33));
	CHECK(close(fd) == 0);
	CHECK(rlfile_open_fd(fd, &opt, &f) == EBADF);
	fd = open(".", O_RDONLY | O_DIRECTORY);
	CHECK(rlfile_open_fd(fd, &opt, &f) == EINVAL);
	close(fd);
}

/* A bounded cache: clean pages beyond the limit go, dirty ones wait for
 * writeback, writers past half the limit dirty write back first (with no
 * writeback thread here, they do it themselves), and what is read back is
 * right either way. */
static void test_cache_limit(void)
{
	struct rlfile_options opt = { .lock = RLFILE_LOCK_RANGE,
				      .max_cached_pages = 16 };
	unsigned char *buf = aligned_alloc(PAGE, PAGE);
	struct rlfile *f;
	bool right = true;
	size_t done;

	unlink(path);
	CHECK(rlfile_open(path, &opt, &f) == 0);
	for (unsigned i = 0; i < 64; i++) {
		memset(buf, (int)i, PAGE);
		CHECK(rlfile_write(f, buf, PAGE, (uint64_t)i * PAGE, &done) == 0 &&
		      done == PAGE);
		/* at most half dirty before a write, which adds one */
		right = right && rlfile_dirty_pages(f) <= 16 / 2 + 1 &&
			rlfile_cached_pages(f) <= 16;
	}
	CHECK(right);
	CHECK(rlfile_sync(f) == 0 && rlfile_dirty_pages(f) == 0);
	for (unsigned round = 0; round < 2; round++)
		for (unsigned i = 0; i < 64; i++) {
			CHECK(rlfile_read(f, buf, PAGE, (uint64_t)i * PAGE, &done) == 0);
			right = right && done == PAGE && all(buf, PAGE, (unsigned char)i);
		}
	CHECK(right);
	CHECK(rlfile_cached_pages(f) <= 16);
	CHECK(rlfile_close(f) == 0);
	free(buf);
}

/* A write the file system takes only part of (here: RLIMIT_FSIZE, which
 * cuts a write short at the limit and refuses one wholly past it) answers
 * as pwrite does: the bytes taken and 0, or the error when none were; the
 * size covers what was taken, and write-back errors are told once to each
 * mark. */
static void test_partial_writes(void)
{
	struct rlfile *f = open_fresh(0);
	unsigned char *buf = aligned_alloc(PAGE, 5 * PAGE);
	struct rlimit old, lim;
	uint64_t mark, late;
	size_t done = 99;

	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 3 * PAGE;
	signal(SIGXFSZ, SIG_IGN);
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	memset(buf, 0x5a, 5 * PAGE);
	CHECK(rlfile_direct_write(f, buf, 5 * PAGE, 0, &done) == 0 && done == 3 * PAGE);
	CHECK(rlfile_size(f) == 3 * PAGE);
	CHECK(rlfile_direct_write(f, buf, PAGE, 3 * PAGE, &done) == EFBIG && done == 0);
	CHECK(rlfile_size(f) == 3 * PAGE);
	memset(buf, 0, 5 * PAGE);
	CHECK(rlfile_read(f, buf, 5 * PAGE, 0, &done) == 0 && done == 3 * PAGE &&
	      all(buf, 3 * PAGE, 0x5a));
	/* buffered: the write is cached; its write-back fails, keeps the
	 * page dirty, and each mark hears of it once */
	mark = rlfile_error_mark(f);
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	CHECK(rlfile_write(f, buf, 2 * PAGE, 2 * PAGE, &done) == 0 && done == 2 * PAGE);
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);   /* page 3 cannot go now */
	CHECK(rlfile_sync(f) == EFBIG && rlfile_dirty_pages(f) == 1);
	late = rlfile_error_mark(f);   /* after it was recorded, before told */
	CHECK(rlfile_error_check(f, &mark) == EFBIG);
	CHECK(rlfile_error_check(f, &mark) == 0);
	CHECK(rlfile_error_check(f, &late) == EFBIG);
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	CHECK(rlfile_sync(f) == 0 && rlfile_dirty_pages(f) == 0);
	CHECK(rlfile_error_check(f, &mark) == 0);   /* no new error */
	/* an extending write whose new size the file system refuses wrote
	 * nothing: growing the file later shows zeros there, not its bytes */
	CHECK(rlfile_truncate(f, PAGE + 10) == 0);
	lim.rlim_cur = 2 * PAGE;
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	memset(buf, 0x77, PAGE);
	CHECK(rlfile_write(f, buf, 100, 3 * PAGE, &done) == EFBIG && done == 0);
	CHECK(rlfile_size(f) == PAGE + 10);
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	CHECK(rlfile_truncate(f, 4 * PAGE) == 0);
	CHECK(rlfile_read(f, buf, 4 * PAGE, 0, &done) == 0 && done == 4 * PAGE &&
	      all(buf + PAGE + 10, 3 * PAGE - 10, 0));
	CHECK(rlfile_close(f) == 0);
	signal(SIGXFSZ, SIG_DFL);
	free(buf);
}

/* ---- the fault-under-the-write deadlock ------------------------------- */

struct puncher {
	struct rlfile *f;
	int rc;
};

static void *punch_all(void *arg)
{
	struct puncher *p = arg;

	p->rc = rlfile_punch(p->f, 0, 8 * PAGE);
	return NULL;
}

static void test_fault_under_write(void)
{
	struct rlfile *f = open_fresh(RANGELOCK_DEBUG);
	unsigned char *buf = aligned_alloc(PAGE, 4 * PAGE);
	struct rlfile_fault flt;
	struct puncher p = { f, -1 };
	pthread_t t;
	size_t done;

	memset(buf, 0x11, 4 * PAGE);
	CHECK(rlfile_write(f, buf, 4 * PAGE, 0, &done) == 0);

	/* The naive order: a copy that holds a shared range on its pages
	 * and then asks for them again.  With a punch queued between, that
	 * second request would wait behind the punch, which waits for the
	 * first: a deadlock.  Debug mode refuses it at once. */
	CHECK(rlfile_fault(f, 1, false, &flt) == 0);
	CHECK(pthread_create(&t, NULL, punch_all, &p) == 0);
	usleep(50 * 1000);   /* let the punch queue up behind our range */
	CHECK(rlfile_write(f, flt.data, PAGE, 2 * PAGE - 100, &done) == EDEADLK);
	rlfile_fault_done(f, &flt);
	pthread_join(t, NULL);
	CHECK(p.rc == 0);

	/* The file system's order (rlfile_copy_within): pin the source,
	 * take the write's range, copy without faulting, retry if the
	 * source went away.  It completes with punches racing it. */
	memset(buf, 0x22, 4 * PAGE);
	CHECK(rlfile_write(f, buf, 4 * PAGE, 0, &done) == 0);
	for (int i = 0; i < 50; i++) {
		p.rc = -1;
		CHECK(pthread_create(&t, NULL, punch_all, &p) == 0);
		CHECK(rlfile_copy_within(f, 2 * PAGE - 100, PAGE, PAGE) == 0);
		pthread_join(t, NULL);
		CHECK(p.rc == 0);
		CHECK(rlfile_write(f, buf, 4 * PAGE, 0, &done) == 0);
	}
	CHECK(rlfile_copy_within(f, 3 * PAGE, 0, PAGE) == 0);
	CHECK(rlfile_read(f, buf, PAGE, 3 * PAGE, &done) == 0 && all(buf, PAGE, 0x22));
	CHECK(rlfile_close(f) == 0);
	free(buf);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_rlfile DIR\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/test_rlfile.dat", argv[1]);
	test_semantics();
	test_open_fd();   /* on the file test_semantics leaves */
	test_write_through();
	test_cache_limit();
	test_partial_writes();
	test_fault_under_write();
	unlink(path);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
