/* SPDX-License-Identifier: MIT */
/*
 * test_mmap.c - rlfile_mmap: real loads and stores through a mapping whose
 * faults rlfile serves, what they see after each operation, a store racing
 * writeback, and the deadlock of a write whose source is a mapping of the
 * same file (the naive order hangs; rlfile's completes).
 *
 * usage: test_mmap DIR
 * Exit 77 (skipped) with the reason where userfaultfd cannot serve
 * mappings here.
 */
#include "rlfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_check.h"
#include "test_sigbus.h"

#define PAGE RLFILE_PAGE


static char path[4096];

static struct rlfile *open_with(const struct rlfile_options *opt)
{
	struct rlfile *f;

	unlink(path);
	if (rlfile_open(path, opt, &f) != 0) {
		perror(path);
		exit(2);
	}
	return f;
}

static struct rlfile *open_fresh(void)
{
	return open_with(&(struct rlfile_options){ .lock = RLFILE_LOCK_RANGE });
}

static void put(struct rlfile *f, uint64_t page, unsigned char v, size_t pages)
{
	unsigned char *buf = malloc(pages * PAGE);
	size_t done;

	memset(buf, v, pages * PAGE);
	if (rlfile_write(f, buf, pages * PAGE, page * PAGE, &done) || done != pages * PAGE)
		exit(2);
	free(buf);
}

static bool all(const volatile unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static bool read_is(struct rlfile *f, uint64_t page, unsigned char v)
{
	unsigned char buf[PAGE];
	size_t done;

	return rlfile_read(f, buf, PAGE, page * PAGE, &done) == 0 && done == PAGE &&
	       all(buf, PAGE, v);
}

static void *map(struct rlfile *f, uint64_t off, size_t len, int prot)
{
	void *a = NULL;
	int rc = rlfile_mmap(f, off, len, prot, &a);

	if (rc) {
		fprintf(stderr, "rlfile_mmap: %s\n", strerror(rc));
		exit(2);
	}
	return a;
}

static void test_arguments(void)
{
	struct rlfile *f = open_fresh();
	void *a;

	put(f, 0, 1, 2);
	CHECK(rlfile_mmap(f, 1, PAGE, PROT_READ, &a) == EINVAL);
	CHECK(rlfile_mmap(f, 0, 0, PROT_READ, &a) == EINVAL);
	CHECK(rlfile_mmap(f, 0, PAGE, 0, &a) == EINVAL);
	CHECK(rlfile_mmap(f, 0, PAGE, PROT_READ | PROT_EXEC, &a) == EINVAL);
	CHECK(rlfile_mmap(f, (uint64_t)64 << 30, PAGE, PROT_READ, &a) == EFBIG);
	CHECK(rlfile_munmap(f, &a, PAGE) == EINVAL);     /* never mapped */
	a = map(f, 0, 2 * PAGE, PROT_READ);
	CHECK(rlfile_munmap(f, a, PAGE) == EINVAL);      /* not the whole */
	CHECK(rlfile_munmap(f, (char *)a + PAGE, PAGE) == EINVAL);
	CHECK(sigbus_load(a) == 1);                             /* still mapped */
	CHECK(rlfile_munmap(f, a, 2 * PAGE) == 0);
	CHECK(rlfile_close(f) == 0);
}

/* What loads see after each operation, and where SIGBUS is. */
static void test_coherence(void)
{
	struct rlfile *f = open_fresh();
	volatile unsigned char *m;
	unsigned char buf[PAGE];
	size_t done;

	put(f, 0, 0xa1, 3);
	CHECK(rlfile_cached_pages(f) == 3);
	m = map(f, 0, 8 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(rlfile_cached_pages(f) == 0);             /* moved to the store */
	CHECK(all(m, 3 * PAGE, 0xa1));
	CHECK(sigbus_load(m + 3 * PAGE) == -1);                 /* beyond EOF: SIGBUS */
	/* a store is what rlfile_read sees, and it dirties the page */
	CHECK(rlfile_dirty_pages(f) == 0);
	memset((void *)(m + PAGE), 0xb2, PAGE);
	CHECK(rlfile_dirty_pages(f) == 1);
	CHECK(read_is(f, 1, 0xb2));
	/* and what a direct read sees (it writes the page back first) */
	unsigned char *dbuf = aligned_alloc(PAGE, PAGE);
	CHECK(rlfile_direct_read(f, dbuf, PAGE, PAGE, &done) == 0 && done == PAGE &&
	      all(dbuf, PAGE, 0xb2));
	/* rlfile_write is what a load sees, at once */
	put(f, 2, 0xc3, 1);
	CHECK(all(m + 2 * PAGE, PAGE, 0xc3));
	/* written back; and after a drop the page faults in from disk */
	CHECK(rlfile_sync(f) == 0);
	CHECK(rlfile_dirty_pages(f) == 0);
	CHECK(rlfile_drop_cache(f) == 0);
	CHECK(rlfile_cached_pages(f) == 0);
	CHECK(all(m + PAGE, PAGE, 0xb2) && all(m + 2 * PAGE, PAGE, 0xc3));
	/* a store after writeback dirties the page again (it was protected) */
	m[0] = 0xd4;
	CHECK(rlfile_dirty_pages(f) == 1);
	/* punch: zeros through the mapping */
	CHECK(rlfile_punch(f, PAGE, PAGE) == 0);
	CHECK(all(m + PAGE, PAGE, 0));
	/* a direct write: the mapping shows it */
	memset(dbuf, 0xe5, PAGE);
	CHECK(rlfile_direct_write(f, dbuf, PAGE, 2 * PAGE, &done) == 0);
	CHECK(all(m + 2 * PAGE, PAGE, 0xe5));
	free(dbuf);
	/* truncate: SIGBUS beyond; the part of the last page past the end
	 * reads as zeros, and grows back as zeros */
	CHECK(rlfile_truncate(f, PAGE + 100) == 0);
	CHECK(sigbus_load(m + 2 * PAGE) == -1);
	CHECK(sigbus_load(m + PAGE + 99) == 0 && sigbus_load(m + PAGE + 100) == 0);
	m[PAGE + 200] = 7;                                /* past EOF: not kept */
	CHECK(rlfile_truncate(f, 3 * PAGE) == 0);
	CHECK(sigbus_load(m + PAGE + 200) == 0);
	CHECK(all(m + 2 * PAGE, PAGE, 0));
	/* an extending write: its pages show */
	put(f, 5, 0xf6, 1);
	CHECK(all(m + 5 * PAGE, PAGE, 0xf6) && all(m + 4 * PAGE, PAGE, 0));
	/* stores reach the disk at close, through writeback */
	m[5 * PAGE] = 0x17;
	void *r = map(f, 4 * PAGE, 2 * PAGE, PROT_READ);  /* a second mapping */
	CHECK(((volatile unsigned char *)r)[PAGE] == 0x17);
	CHECK(rlfile_close(f) == 0);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, PAGE, 5 * PAGE) == PAGE && buf[0] == 0x17 &&
	      all(buf + 1, PAGE - 1, 0xf6));
	CHECK(pread(fd, buf, PAGE, 0) == PAGE && buf[0] == 0xd4 && all(buf + 1, PAGE - 1, 0xa1));
	close(fd);
}

/* Buffers that are mappings of another rlfile: a write from one, a
 * buffered and a direct read into one (its pages fault, as stores, while
 * the first file's ranges are not held). */
static void test_other_file_buffers(void)
{
	char other[4200];
	struct rlfile *f = open_fresh(), *g;
	unsigned char *m;
	size_t done;

	snprintf(other, sizeof(other), "%s.other", path);
	unlink(other);
	if (rlfile_open(other, &(struct rlfile_options){ .lock = RLFILE_LOCK_RANGE }, &g))
		exit(2);
	put(f, 0, 0x5a, 2);
	put(g, 0, 0x6b, 3);
	m = map(g, 0, 3 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(rlfile_write(f, m, PAGE, PAGE, &done) == 0 && done == PAGE);
	CHECK(read_is(f, 1, 0x6b));
	CHECK(rlfile_read(f, m + PAGE, PAGE, 0, &done) == 0 && done == PAGE);
	CHECK(all(m + PAGE, PAGE, 0x5a) && read_is(g, 1, 0x5a));
	CHECK(rlfile_direct_read(f, m + 2 * PAGE, PAGE, 0, &done) == 0 && done == PAGE);
	CHECK(read_is(g, 2, 0x5a) && rlfile_dirty_pages(g) == 2);
	CHECK(rlfile_close(g) == 0 && rlfile_close(f) == 0);
	unlink(other);
}

/* A store through the mapping while writeback is between writing a page
 * and marking it clean: it must fault and wait (the page is protected),
 * so the page ends dirty and the store reaches the disk.  Without the
 * protection (RLFILE_TEST_NO_WRITEPROTECT) it lands unseen and is lost:
 * the test's teeth. */
struct wb_race {
	volatile unsigned char *m;
	/* seq_cst, both: flags between two threads of a test, where the
	 * simplest order is the clearest */
	atomic_bool armed;           /* the sync's writeback, not the others */
	atomic_int phase;            /* 1: in the window; 2: the store done */
};

static void wb_hook(void *arg, enum rlfile_point point)
{
	struct wb_race *r = arg;

	if (point != RLFILE_WRITEBACK_WRITTEN || !atomic_load_explicit(&r->armed, memory_order_seq_cst) ||
	    atomic_load_explicit(&r->phase, memory_order_seq_cst))
		return;
	atomic_store_explicit(&r->phase, 1, memory_order_seq_cst);
	for (int i = 0; i < 300 && atomic_load_explicit(&r->phase, memory_order_seq_cst) != 2; i++)
		usleep(1000);   /* the store waits for our page lock */
}

static void *wb_storer(void *arg)
{
	struct wb_race *r = arg;

	while (atomic_load_explicit(&r->phase, memory_order_seq_cst) == 0)
		usleep(100);
	r->m[0] = 0x99;
	atomic_store_explicit(&r->phase, 2, memory_order_seq_cst);
	return NULL;
}

static bool store_during_writeback_kept(unsigned flags)
{
	struct wb_race r = { 0 };
	struct rlfile_options opt = { .lock = RLFILE_LOCK_RANGE, .test_hook = wb_hook,
				      .test_hook_arg = &r, .test_flags = flags };
	struct rlfile *f = open_with(&opt);
	pthread_t t;
	unsigned char buf[PAGE];
	size_t done;

	put(f, 0, 0x11, 1);
	r.m = map(f, 0, PAGE, PROT_READ | PROT_WRITE);
	r.m[1] = 0x22;                    /* dirty through the mapping */
	pthread_create(&t, NULL, wb_storer, &r);
	atomic_store_explicit(&r.armed, true, memory_order_seq_cst);
	rlfile_sync(f);                   /* the hook holds the window open */
	pthread_join(t, NULL);
	rlfile_sync(f);
	rlfile_munmap(f, (void *)r.m, PAGE);
	rlfile_drop_cache(f);
	bool kept = rlfile_read(f, buf, PAGE, 0, &done) == 0 && buf[0] == 0x99 &&
		    buf[1] == 0x22;
	rlfile_close(f);
	return kept;
}

/*
 * The deadlock of the seed thread: a buffered write to page 0 whose
 * source is page 1 of a mapping of the same file.  Once the write holds
 * its range, a punch of pages 0-1 queues behind it (exclusive); then the
 * copy faults on the source, and the fault's shared range on page 1 waits
 * behind the queued punch, which waits for the write.  rlfile copies such
 * a source before it takes the range (RLFILE_TEST_NAIVE_MAPPED_BUFFERS
 * copies under it): run in a child, so that a hang can be seen and ended.
 */
struct dl {
	struct rlfile *f;
	pthread_t puncher;
	bool armed, started;
};

static void *dl_punch(void *arg)
{
	struct dl *d = arg;

	rlfile_punch(d->f, 0, 2 * PAGE);
	return NULL;
}

static void dl_hook(void *arg, enum rlfile_point point)
{
	struct dl *d = arg;

	if (point != RLFILE_WRITE_LOCKED || !d->armed || d->started)
		return;
	d->started = true;
	pthread_create(&d->puncher, NULL, dl_punch, d);
	usleep(100 * 1000);   /* the punch queues behind our range */
}

static void dl_child(unsigned flags)
{
	struct dl d = { 0 };
	struct rlfile_options opt = { .lock = RLFILE_LOCK_RANGE, .test_hook = dl_hook,
				      .test_hook_arg = &d, .test_flags = flags };
	size_t done;

	d.f = open_with(&opt);
	put(d.f, 0, 0x31, 2);
	unsigned char *m = map(d.f, 0, 2 * PAGE, PROT_READ);   /* nothing mapped yet */
	d.armed = true;
	int rc = rlfile_write(d.f, m + PAGE, PAGE, 0, &done);

	pthread_join(d.puncher, NULL);
	_exit(rc == 0 && done == PAGE && rlfile_close(d.f) == 0 ? 0 : 1);
}

/* 0: completed; 1: failed; 2: hung (killed after `seconds`). */
static int run_child(void (*fn)(unsigned), unsigned flags, int seconds)
{
	pid_t pid;
	int status;

	fflush(stdout);   /* not printed twice by the child */
	pid = fork();

	if (pid == 0)
		fn(flags);
	for (int i = 0; i < seconds * 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
		usleep(10 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return 2;
}

/* rlfile's order under torture: threads write pages from a mapping of the
 * same file while others punch them and drop the cache; none may hang. */
static struct rlfile *tf;
static unsigned char *tmap;
static atomic_bool tstop;   /* relaxed: a stop flag; join orders the rest */

static void *t_copier(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	size_t done;

	while (!atomic_load_explicit(&tstop, memory_order_relaxed)) {
		unsigned src = (unsigned)rand_r(&seed) % 8, dst = (unsigned)rand_r(&seed) % 8;

		/* the source may be punched meanwhile (zeros) but not beyond
		 * EOF: the puncher keeps 8 pages */
		rlfile_write(tf, tmap + src * PAGE, PAGE, dst * PAGE, &done);
	}
	return NULL;
}

static void *t_puncher(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	while (!atomic_load_explicit(&tstop, memory_order_relaxed)) {
		unsigned p = (unsigned)rand_r(&seed) % 8;

		/* both exclusive: two pages, or [0, EOF) */
		if (rand_r(&seed) % 4)
			rlfile_punch(tf, p * PAGE, 2 * PAGE);
		else
			rlfile_drop_cache(tf);
	}
	return NULL;
}

static void torture_child(unsigned flags)
{
	pthread_t t[4];

	(void)flags;
	tf = open_fresh();
	put(tf, 0, 0x41, 16);
	tmap = map(tf, 0, 16 * PAGE, PROT_READ);
	for (uintptr_t i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, i < 2 ? t_copier : t_puncher, (void *)(i + 1));
	usleep(1500 * 1000);
	atomic_store_explicit(&tstop, true, memory_order_relaxed);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	_exit(rlfile_close(tf) == 0 ? 0 : 1);
}

int main(int argc, char **argv)
{
	const char *why;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: test_mmap DIR\n");
		return 2;
	}
	if ((rc = rlfile_mmap_supported(&why))) {
		printf("SKIP: rlfile_mmap unsupported here: %s (%s)\n", why, strerror(rc));
		return 77;
	}
	sigbus_catch(NULL);
	snprintf(path, sizeof(path), "%s/test_mmap.dat", argv[1]);
	test_arguments();
	test_coherence();
	test_other_file_buffers();
	CHECK(store_during_writeback_kept(0));
	bool lost = !store_during_writeback_kept(RLFILE_TEST_NO_WRITEPROTECT);
	printf("store during writeback: kept; without write-protect: %s\n",
	       lost ? "lost (as it must be)" : "KEPT (the test has no teeth)");
	CHECK(lost);
	int naive = run_child(dl_child, RLFILE_TEST_NAIVE_MAPPED_BUFFERS, 3);
	int cured = run_child(dl_child, 0, 10);
	printf("write from own mapping, punch queued: naive order %s; rlfile's %s\n",
	       naive == 2 ? "hangs (deadlock, as it must)" : "DID NOT HANG",
	       cured == 0 ? "completes" : cured == 2 ? "HANGS" : "FAILS");
	CHECK(naive == 2);
	CHECK(cured == 0);
	int tortured = run_child(torture_child, 0, 30);
	printf("writes from own mapping under punches and drops: %s\n",
	       tortured == 0 ? "completed" : tortured == 2 ? "HUNG" : "FAILED");
	CHECK(tortured == 0);
	unlink(path);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
