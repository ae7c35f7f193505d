/* SPDX-License-Identifier: MIT */
/*
 * test_shared.c - locks that processes share: a region, attached by
 * processes at addresses of their own; the same semantics as a private
 * lock; bounded; robust against a holder or a waiter that dies or execs;
 * a region scribbled on gives errors, never a write outside it.
 */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

struct t_region {
	int fd;          /* a memfd: every process maps it where it likes */
	size_t size;
	void *at;        /* this process's mapping */
};

static struct t_region t_region_new(unsigned requests)
{
	struct t_region g = { .size = rangelock_shared_size(requests) };

	CHECK(g.size > 0);
	g.fd = memfd_create("test_shared", MFD_CLOEXEC);
	CHECK(g.fd >= 0);
	CHECK(ftruncate(g.fd, (off_t)g.size) == 0);
	g.at = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_SHARED, g.fd, 0);
	CHECK(g.at != MAP_FAILED);
	CHECK_RC(rangelock_shared_init(g.at, g.size), 0);
	return g;
}

/* Another mapping of the same region, at another address. */
static void *t_region_map_again(const struct t_region *g)
{
	void *at = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			g->fd, 0);

	CHECK(at != MAP_FAILED && at != g->at);
	return at;
}

static void t_region_free(struct t_region *g)
{
	munmap(g->at, g->size);
	close(g->fd);
}

/* A child process: runs fn(g, pipe to the parent) after fork, exits 0. */
static pid_t t_child(struct t_region *g, int *from_child,
		     void (*fn)(struct t_region *g, int to_parent))
{
	int p[2];
	pid_t pid;

	CHECK(pipe(p) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		fn(g, p[1]);
		_exit(0);
	}
	close(p[1]);
	*from_child = p[0];
	return pid;
}

static char t_read_byte(int fd)
{
	char c = 0;

	CHECK(read(fd, &c, 1) == 1);
	return c;
}

static void t_reap(pid_t pid, int want_signal)
{
	int st;

	CHECK(waitpid(pid, &st, 0) == pid);
	if (want_signal)
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == want_signal);
	else
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static long t_ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000L + (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

static void test_init_and_attach_refuse_bad_regions(void)
{
	static _Alignas(64) unsigned char buf[32768];
	rangelock_t lk;
	size_t need = rangelock_shared_size(1);

	CHECK(rangelock_shared_size(0) == 0);
	CHECK(rangelock_shared_size(1u << 25) == 0);
	CHECK(need > 64 && need <= sizeof(buf));
	CHECK_RC(rangelock_shared_init(buf + 8, sizeof(buf) - 8), EINVAL);
	CHECK_RC(rangelock_shared_init(buf, need - 1), EINVAL);
	CHECK_RC(rangelock_shared_attach(&lk, buf, sizeof(buf)), EINVAL); /* unformatted */
	CHECK_RC(rangelock_shared_init(buf, sizeof(buf)), 0);
	CHECK_RC(rangelock_shared_attach(&lk, buf, sizeof(buf) - 64), EINVAL);
	CHECK_RC(rangelock_shared_attach(&lk, buf + 64, sizeof(buf) - 64), EINVAL);
	CHECK_RC(rangelock_shared_attach(&lk, buf, sizeof(buf)), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);   /* detached: an empty lock */
}

/* Two attachments in one process behave as two processes' would, at
 * offsets from `base`: at 0 every range is inside one block (the fast path
 * takes them), below a block's edge the ranges over 128 are listed. */
#define B(x) (base + (x))
static void t_semantics_as_private(uint64_t base)
{
	struct t_region g = t_region_new(64);
	rangelock_t a, b;
	rangelock_range_t ra, rb, rc, copy;
	struct t_request w, r;
	struct timespec past = { 0, 0 };

	CHECK_RC(rangelock_shared_attach(&a, g.at, g.size), 0);
	CHECK_RC(rangelock_shared_attach(&b, t_region_map_again(&g), g.size), 0);

	CHECK_RC(rangelock_wrlock(&a, &ra, B(0), B(100)), 0);
	CHECK_RC(rangelock_trywrlock(&b, &rb, B(50), B(150)), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&b, &rb, B(50), B(150)), EBUSY);
	CHECK_RC(rangelock_timedrdlock(&b, &rb, B(99), B(100), &past), ETIMEDOUT);
	CHECK_RC(rangelock_tryrdlock(&b, &rb, B(100), B(150)), 0);   /* adjacent */
	CHECK_RC(rangelock_rdlock(&b, &rc, B(100), B(150)), 0);      /* shared twice */
	CHECK_RC(rangelock_unlock(&b, &rc), 0);
	CHECK_RC(rangelock_unlock(&b, &rc), EINVAL);           /* twice */
	memcpy(&copy, &rb, sizeof(copy));
	CHECK_RC(rangelock_unlock(&b, &copy), EINVAL);         /* a copy */
	CHECK_RC(rangelock_unlock(&b, &rb), 0);
	CHECK_RC(rangelock_wrlock(&a, &rb, B(5), B(4)), EINVAL);

	/* FIFO: a writer queued behind a's range holds back a later reader
	 * that overlaps it, though the reader overlaps nothing held */
	t_request_start(&w, &b, T_WR, B(50), B(200));
	t_wait_queued(&b, false, B(150), B(200));
	CHECK_RC(rangelock_tryrdlock(&b, &rb, B(180), B(190)), EBUSY);
	t_request_start(&r, &b, T_RD, B(180), B(190));
	CHECK(t_request_pending(&r, 30));
	CHECK_RC(rangelock_downgrade(&a, &ra), 0);
	CHECK_RC(rangelock_downgrade(&a, &ra), EINVAL);        /* shared now */
	CHECK(t_request_pending(&w, 30));
	CHECK_RC(rangelock_destroy(&a), EBUSY);
	CHECK_RC(rangelock_unlock(&a, &ra), 0);
	CHECK_RC(t_request_wait(&w), 0);
	CHECK(t_request_pending(&r, 30));
	CHECK_RC(rangelock_unlock(&b, &w.range), 0);
	CHECK_RC(t_request_wait(&r), 0);
	CHECK_RC(rangelock_unlock(&b, &r.range), 0);

	/* a timed request withdraws at its deadline and blocks nobody */
	CHECK_RC(rangelock_wrlock(&a, &ra, B(0), B(10)), 0);
	w.deadline = t_deadline_ms(50);
	t_request_start(&w, &b, T_TIMED_WR, B(0), B(20));
	CHECK_RC(t_request_wait(&w), ETIMEDOUT);
	CHECK_RC(rangelock_trywrlock(&b, &rb, B(10), B(20)), 0);
	CHECK_RC(rangelock_unlock(&b, &rb), 0);
	CHECK_RC(rangelock_unlock(&a, &ra), 0);

	CHECK_RC(rangelock_destroy(&a), 0);
	CHECK_RC(rangelock_destroy(&b), 0);
	t_region_free(&g);
}

#undef B

static void test_semantics_as_private(void)
{
	t_semantics_as_private(0);
	t_semantics_as_private((1u << 18) - 128);
}

/*
 * A shared slot's start is 6 bits shorter than a private one's (the owner's
 * record is above the size): pages below 2^58 and bytes below 2^39 take
 * slots, the rest the precise path.  At each limit, a range just below is
 * held through a slot and one at it through a node; they conflict with
 * what they overlap, on either path, and never with what a start cut to
 * a slot's bits would alias.
 */
static void t_limit(rangelock_t *a, rangelock_t *b, uint64_t limit,
		    uint64_t len)
{
	rangelock_range_t ra[2], rb;
	uint64_t below = limit - len;

	CHECK_RC(rangelock_wrlock(a, &ra[0], below, limit), 0);
	CHECK_RC(rangelock_wrlock(a, &ra[1], limit, limit + len), 0);
	/* the same ranges conflict, through a slot or a node */
	CHECK_RC(rangelock_tryrdlock(b, &rb, below, limit), EBUSY);
	CHECK_RC(rangelock_tryrdlock(b, &rb, limit, limit + len), EBUSY);
	CHECK_RC(rangelock_tryrdlock(b, &rb, limit - 1, limit + 1), EBUSY);
	CHECK_RC(rangelock_trywrlock(b, &rb, below, RANGELOCK_EOF), EBUSY);
	/* nor do their aliases: half the limit lower (the start's top bit
	 * lost) or at 0 (the range at the limit, its start cut to a slot's) */
	CHECK_RC(rangelock_trywrlock(b, &rb, below - limit / 2, limit - limit / 2), 0);
	CHECK_RC(rangelock_unlock(b, &rb), 0);
	CHECK_RC(rangelock_trywrlock(b, &rb, 0, len), 0);
	CHECK_RC(rangelock_unlock(b, &rb), 0);
	/* and an alias held first does not hide the real range */
	CHECK_RC(rangelock_unlock(a, &ra[0]), 0);
	CHECK_RC(rangelock_wrlock(b, &rb, below - limit / 2, limit - limit / 2), 0);
	CHECK_RC(rangelock_trywrlock(a, &ra[0], below, limit), 0);
	CHECK_RC(rangelock_unlock(b, &rb), 0);
	CHECK_RC(rangelock_unlock(a, &ra[0]), 0);
	CHECK_RC(rangelock_unlock(a, &ra[1]), 0);
}

static void test_fast_path_limits(void)
{
	struct t_region g = t_region_new(8);
	rangelock_t a, b;

	CHECK_RC(rangelock_shared_attach(&a, g.at, g.size), 0);
	CHECK_RC(rangelock_shared_attach(&b, t_region_map_again(&g), g.size), 0);
	t_limit(&a, &b, (uint64_t)1 << 58, 4096);   /* whole pages */
	t_limit(&a, &b, (uint64_t)1 << 39, 100);    /* bytes */
	CHECK_RC(rangelock_destroy(&a), 0);
	CHECK_RC(rangelock_destroy(&b), 0);
	t_region_free(&g);
}

/* A region holds as many requests as it has nodes: one more is EAGAIN,
 * with nothing changed, whatever its range (a page, a range over a 1 MiB
 * edge). */
static uint64_t t_across(int i)
{
	return (uint64_t)i << 20 | ((1u << 18) - 4096);   /* to 4 KiB past */
}

static void test_bounded(void)
{
	struct t_region g = t_region_new(4);
	rangelock_t lk;
	rangelock_range_t r[5], fast;

	CHECK_RC(rangelock_shared_attach(&lk, g.at, g.size), 0);
	for (int i = 0; i < 4; i++)
		CHECK_RC(rangelock_wrlock(&lk, &r[i], t_across(i),
					  t_across(i) + 8192), 0);
	CHECK_RC(rangelock_wrlock(&lk, &r[4], t_across(9), t_across(9) + 8192),
		 EAGAIN);
	CHECK_RC(rangelock_tryrdlock(&lk, &r[4], t_across(9), t_across(9) + 8192),
		 EAGAIN);
	CHECK_RC(rangelock_wrlock(&lk, &fast, 100 << 20, (100 << 20) + 4096),
		 EAGAIN);
	CHECK_RC(rangelock_unlock(&lk, &r[2]), 0);
	CHECK_RC(rangelock_wrlock(&lk, &r[4], t_across(9), t_across(9) + 8192), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &r[2], t_across(2), t_across(2) + 8192),
		 EAGAIN);
	CHECK_RC(rangelock_unlock(&lk, &r[4]), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &r[2], t_across(2), t_across(2) + 8192), 0);
	for (int i = 0; i < 4; i++)
		CHECK_RC(rangelock_unlock(&lk, &r[i]), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
	t_region_free(&g);
}

/* ---- other processes */

/* In a child: attach at an address of its own, hold [0, 4096) exclusive
 * (the attachment and the range stay for good), and tell the parent. */
static void t_child_hold_page(struct t_region *g, int to_parent)
{
	static rangelock_t lk;
	static rangelock_range_t r;

	if (rangelock_shared_attach(&lk, t_region_map_again(g), g->size) ||
	    rangelock_wrlock(&lk, &r, 0, 4096) || write(to_parent, "h", 1) != 1)
		_exit(1);
}

/* holds [0, 4096) exclusive until it is killed */
static void t_child_holds(struct t_region *g, int to_parent)
{
	t_child_hold_page(g, to_parent);
	pause();
	_exit(1);
}

static void test_other_process_blocks_and_releases(void)
{
	struct t_region g = t_region_new(16);
	rangelock_t lk;
	rangelock_range_t r;
	int from;
	pid_t pid = t_child(&g, &from, t_child_holds);

	CHECK_RC(rangelock_shared_attach(&lk, g.at, g.size), 0);
	CHECK(t_read_byte(from) == 'h');
	CHECK_RC(rangelock_tryrdlock(&lk, &r, 4095, 4096), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &r, 4096, 8192), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	close(from);
	CHECK_RC(rangelock_destroy(&lk), 0);
	kill(pid, SIGKILL);
	t_reap(pid, SIGKILL);
	t_region_free(&g);
}

/* A holder killed: the waiter behind it, exclusive, is granted, told
 * EOWNERDEAD; nobody after it is told. */
static void test_killed_holder(void)
{
	struct t_region g = t_region_new(16);
	rangelock_t lk;
	rangelock_range_t r, s;
	struct t_request w;
	struct timespec t0;
	int from;
	pid_t pid = t_child(&g, &from, t_child_holds);

	CHECK_RC(rangelock_shared_attach(&lk, g.at, g.size), 0);
	CHECK(t_read_byte(from) == 'h');
	t_request_start(&w, &lk, T_WR, 0, 8192);
	CHECK(t_request_pending(&w, 20));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	kill(pid, SIGKILL);
	CHECK_RC(t_request_wait(&w), EOWNERDEAD);
	printf("  holder killed -> waiter granted: %ld ms\n", t_ms_since(&t0));
	CHECK(t_ms_since(&t0) < 5000);
	t_reap(pid, SIGKILL);
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);
	CHECK_RC(rangelock_wrlock(&lk, &r, 0, 4096), 0);   /* told to w alone */
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_tryrdlock(&lk, &s, 0, 100), 0);
	CHECK_RC(rangelock_unlock(&lk, &s), 0);
	close(from);
	CHECK_RC(rangelock_destroy(&lk), 0);
	t_region_free(&g);
}

/* Kill child pid, then try [start, end) exclusive until it is not EBUSY (a
 * refused try looks for the dead at most every 10 ms): what it returned. */
static int t_kill_then_trywrlock(pid_t pid, rangelock_t *lk,
				 rangelock_range_t *r, uint64_t start,
				 uint64_t end)
{
	int rc, tries = 0;

	kill(pid, SIGKILL);
	t_reap(pid, SIGKILL);
	while ((rc = rangelock_trywrlock(lk, r, start, end)) == EBUSY &&
	       tries++ < 1000)
		t_sleep_ms(2);
	return rc;
}

/* A try-locker alone (nobody waits) sees a dead holder's range freed. */
static void test_killed_holder_seen_by_try(void)
{
	struct t_region g = t_region_new(16);
	rangelock_t lk;
	rangelock_range_t r, s;
	int from;
	pid_t pid = t_child(&g, &from, t_child_holds);

	CHECK_RC(rangelock_shared_attach(&lk, g.at, g.size), 0);
	CHECK(t_read_byte(from) == 'h');
	CHECK_RC(t_kill_then_trywrlock(pid, &lk, &r, 0, 10), EOWNERDEAD);
	/* the recovery the try made kept the node it had just taken */
	CHECK_RC(rangelock_trywrlock(&lk, &s, 100, 200), 0);
	CHECK_RC(rangelock_unlock(&lk, &s), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	close(from);
	CHECK_RC(rangelock_destroy(&lk), 0);
	t_region_free(&g);
}

/* holds two pages through slots and a range over a block's edge through
 * a node, all exclusive, until it is killed; each in a line of its own */
#define T_EDGE (1u << 18)        /* a block's edge: 256 KiB */
#define T_PAGE_A (2u << 20)      /* block 8 */
#define T_PAGE_B (1u << 20)      /* block 4 */

static void t_child_holds_three(struct t_region *g, int to_parent)
{
	static rangelock_t lk;
	static rangelock_range_t r[3];

	if (rangelock_shared_attach(&lk, t_region_map_again(g), g->size) ||
	    rangelock_wrlock(&lk, &r[0], T_PAGE_A, T_PAGE_A + 4096) ||
	    rangelock_wrlock(&lk, &r[1], T_PAGE_B, T_PAGE_B + 4096) ||
	    rangelock_wrlock(&lk, &r[2], T_EDGE - 4096, T_EDGE + 4096) ||
	    write(to_parent, "h", 1) != 1)
		_exit(1);
	pause();
	_exit(1);
}

/* A dead process's exclusive ranges, held through slots or a node, are
 * told to the grants over them, however much later: the dead ranges close
 * the fast path, so a page that the fast path would take is told too.
 * Shared grants are told, two at once included, as long as no exclusive
 * grant has taken the range (it alone can repair it); after the first
 * exclusive one nobody is told, and everything is as before, the fast
 * path open. */
static void test_killed_holder_told_through_fast_path(void)
{
	struct t_region g = t_region_new(16);
	rangelock_t lk;
	rangelock_range_t r, s;
	int from;
	pid_t pid = t_child(&g, &from, t_child_holds_three);

	CHECK_RC(rangelock_shared_attach(&lk, g.at, g.size), 0);
	CHECK(t_read_byte(from) == 'h');
	CHECK_RC(rangelock_tryrdlock(&lk, &r, T_PAGE_A, T_PAGE_A + 4096), EBUSY);
	CHECK_RC(t_kill_then_trywrlock(pid, &lk, &r, T_PAGE_B, T_PAGE_B + 4096),
		 EOWNERDEAD);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	/* recovered already: these are told at once, the readers each */
	CHECK_RC(rangelock_tryrdlock(&lk, &r, T_PAGE_A, T_PAGE_A + 4096), EOWNERDEAD);
	CHECK_RC(rangelock_tryrdlock(&lk, &s, T_PAGE_A + 100, T_PAGE_A + 200),
		 EOWNERDEAD);
	CHECK_RC(rangelock_unlock(&lk, &s), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_tryrdlock(&lk, &r, T_PAGE_A, T_PAGE_A + 4096), EOWNERDEAD);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &r, T_PAGE_A, T_PAGE_A + 4096), EOWNERDEAD);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &r, T_EDGE, T_EDGE + 4096), EOWNERDEAD);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	for (int i = 0; i < 2; i++) {   /* no more, and no node is left */
		uint64_t page[] = { T_PAGE_A, T_PAGE_B, 0, T_EDGE };

		for (unsigned k = 0; k < 4; k++) {
			CHECK_RC(rangelock_trywrlock(&lk, &r, page[k], page[k] + 4096), 0);
			CHECK_RC(rangelock_unlock(&lk, &r), 0);
		}
		CHECK_RC(rangelock_trywrlock(&lk, &r, T_EDGE - 4096, T_EDGE + 4096), 0);
		CHECK_RC(rangelock_unlock(&lk, &r), 0);
		CHECK_RC(rangelock_trywrlock(&lk, &r, 0, RANGELOCK_EOF), 0);
		CHECK_RC(rangelock_unlock(&lk, &r), 0);
	}
	close(from);
	CHECK_RC(rangelock_destroy(&lk), 0);
	t_region_free(&g);
}

/* exec counts as death: the pid lives on, the marker does not. */
static void t_child_execs(struct t_region *g, int to_parent)
{
	t_child_hold_page(g, to_parent);
	t_sleep_ms(200);   /* the parent queues behind us meanwhile */
	execl("/bin/sleep", "sleep", "30", (char *)NULL);
	_exit(1);
}

static void test_exec_releases(void)
{
	struct t_region g = t_region_new(16);
	rangelock_t lk;
	struct t_request w;
	int from;
	pid_t pid = t_child(&g, &from, t_child_execs);

	CHECK_RC(rangelock_shared_attach(&lk, g.at, g.size), 0);
	CHECK(t_read_byte(from) == 'h');
	t_request_start(&w, &lk, T_RD, 100, 200);
	CHECK(t_request_pending(&w, 20));
	CHECK_RC(t_request_wait(&w), EOWNERDEAD);   /* once it execs */
	CHECK(kill(pid, 0) == 0);   /* alive, as sleep(1) */
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);
	kill(pid, SIGKILL);
	t_reap(pid, SIGKILL);
	close(from);
	CHECK_RC(rangelock_destroy(&lk), 0);
	t_region_free(&g);
}

/* queues a wrlock of [0, 20) behind the parent's range, forever */
static void t_child_waits(struct t_region *g, int to_parent)
{
	rangelock_t lk;
	rangelock_range_t r;

	if (rangelock_shared_attach(&lk, t_region_map_again(g), g->size) ||
	    write(to_parent, "a", 1) != 1)
		_exit(1);
	rangelock_wrlock(&lk, &r, 0, 20);
	_exit(1);   /* never granted before it is killed */
}

/* A waiter killed vanishes: nobody is told, nothing stays blocked. */
static void test_killed_waiter(void)
{
	struct t_region g = t_region_new(16);
	rangelock_t lk, other;
	rangelock_range_t held, r;
	struct t_request w;
	int from;
	pid_t pid;

	CHECK_RC(rangelock_shared_attach(&lk, g.at, g.size), 0);
	CHECK_RC(rangelock_shared_attach(&other, g.at, g.size), 0);
	CHECK_RC(rangelock_wrlock(&lk, &held, 0, 10), 0);
	pid = t_child(&g, &from, t_child_waits);
	CHECK(t_read_byte(from) == 'a');
	t_wait_queued(&other, false, 15, 20);   /* the child's writer */
	t_request_start(&w, &other, T_RD, 15, 20);   /* behind it */
	CHECK(t_request_pending(&w, 20));
	kill(pid, SIGKILL);
	t_reap(pid, SIGKILL);
	CHECK_RC(t_request_wait(&w), 0);        /* the writer vanished */
	CHECK_RC(rangelock_unlock(&other, &w.range), 0);
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK_RC(rangelock_wrlock(&lk, &r, 0, 20), 0);   /* nothing to tell */
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	close(from);
	CHECK_RC(rangelock_destroy(&other), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
	t_region_free(&g);
}

/* The parent's attachment is not the child's. */
static void test_fork_needs_attach(void)
{
	struct t_region g = t_region_new(16);
	rangelock_t lk;
	rangelock_range_t r;
	pid_t pid;

	CHECK_RC(rangelock_shared_attach(&lk, g.at, g.size), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		rangelock_t mine;

		if (rangelock_wrlock(&lk, &r, 0, 10) != EINVAL ||
		    rangelock_shared_attach(&mine, g.at, g.size) ||
		    rangelock_wrlock(&mine, &r, 0, 10) ||
		    rangelock_unlock(&mine, &r) || rangelock_destroy(&mine))
			_exit(1);
		_exit(0);
	}
	t_reap(pid, 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
	t_region_free(&g);
}

/* A forked child cannot release or downgrade what its parent holds through
 * the parent's attachment, through a node (a range over several blocks) or
 * through a slot (a page): the parent still holds both afterwards. */
static void test_fork_cannot_release_parents(void)
{
	struct t_region g = t_region_new(16);
	rangelock_t lk;
	rangelock_range_t wide, page;
	pid_t pid;

	CHECK_RC(rangelock_shared_attach(&lk, g.at, g.size), 0);
	CHECK_RC(rangelock_wrlock(&lk, &wide, 1u << 20, 3u << 20), 0);
	CHECK_RC(rangelock_wrlock(&lk, &page, 0, 4096), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		rangelock_t mine;
		rangelock_range_t r;
		int bad = 0;

		bad |= rangelock_unlock(&lk, &wide) != EINVAL;
		bad |= rangelock_downgrade(&lk, &wide) != EINVAL;
		bad |= rangelock_unlock(&lk, &page) != EINVAL;
		bad |= rangelock_downgrade(&lk, &page) != EINVAL;
		bad |= rangelock_destroy(&lk) != EINVAL;
		if (rangelock_shared_attach(&mine, g.at, g.size))
			_exit(2);
		bad |= rangelock_tryrdlock(&mine, &r, 2u << 20, 2u << 20 | 1) != EBUSY;
		bad |= rangelock_tryrdlock(&mine, &r, 100, 200) != EBUSY;
		bad |= rangelock_destroy(&mine) != 0;
		_exit(bad ? 1 : 0);
	}
	t_reap(pid, 0);
	CHECK_RC(rangelock_downgrade(&lk, &wide), 0);
	CHECK_RC(rangelock_unlock(&lk, &wide), 0);
	CHECK_RC(rangelock_unlock(&lk, &page), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
	t_region_free(&g);
}

/*
 * Random bytes written into a live region: every call returns (timed, so
 * nothing can wait for ever), with 0 or an error, and nothing is written
 * outside the region (inaccessible pages on both sides of it; under ASan,
 * nothing read out of bounds either).
 */
static void test_scribbled_region(void)
{
	unsigned requests = 32;
	size_t size = rangelock_shared_size(requests), page = 4096;
	size_t span = (size + page - 1) / page * page;
	char *map = mmap(NULL, span + 2 * page, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *at = map + page;
	unsigned seed = 12345, errors = 0, rounds = 300;

	CHECK(map != MAP_FAILED);
	CHECK(mprotect(at, span, PROT_READ | PROT_WRITE) == 0);
	at += span - size;                  /* flush with the upper guard page */
	at -= (uintptr_t)at % 64;
	for (unsigned round = 0; round < rounds; round++) {
		rangelock_t lk;
		rangelock_range_t r[8];
		int held[8] = { 0 };

		CHECK_RC(rangelock_shared_init(at, size), 0);
		CHECK_RC(rangelock_shared_attach(&lk, at, size), 0);
		for (int i = 0; i < 8; i++)
			held[i] = rangelock_trywrlock(&lk, &r[i], (uint64_t)i * 100,
						      (uint64_t)i * 100 + 50 + i) == 0;
		for (int k = 0; k < 1 + (int)(round % 16); k++) {
			size_t off = rand_r(&seed) % size;

			at[off] = (char)rand_r(&seed);
		}
		for (int op = 0; op < 40; op++) {
			int i = rand_r(&seed) % 8;
			uint64_t s = (uint64_t)(rand_r(&seed) % 1000);
			struct timespec soon = t_deadline_ms(1);
			int rc;

			if (held[i]) {
				rc = rangelock_unlock(&lk, &r[i]);
				held[i] = 0;
			} else {
				rc = rand_r(&seed) % 2
					? rangelock_timedwrlock(&lk, &r[i], s, s + 60, &soon)
					: rangelock_timedrdlock(&lk, &r[i], s, s + 60, &soon);
				held[i] = rc == 0 || rc == EOWNERDEAD;
			}
			CHECK(rc == 0 || rc == EINVAL || rc == EAGAIN ||
			      rc == ETIMEDOUT || rc == EOWNERDEAD ||
			      rc == ENOTRECOVERABLE);
			errors += rc == ENOTRECOVERABLE;
		}
		(void)rangelock_destroy(&lk);   /* EBUSY allowed: scribbled */
	}
	printf("  %u rounds, ENOTRECOVERABLE %u times\n", rounds, errors);
	CHECK(errors > 0);   /* the checks do find scribbles */
	munmap(map, span + 2 * page);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_init_and_attach_refuse_bad_regions);
	RUN(test_semantics_as_private);
	RUN(test_fast_path_limits);
	RUN(test_bounded);
	RUN(test_other_process_blocks_and_releases);
	RUN(test_killed_holder);
	RUN(test_killed_holder_seen_by_try);
	RUN(test_killed_holder_told_through_fast_path);
	RUN(test_exec_releases);
	RUN(test_killed_waiter);
	RUN(test_fork_needs_attach);
	RUN(test_fork_cannot_release_parents);
	RUN(test_scribbled_region);
	t_done();
	return 0;
}
