/* SPDX-License-Identifier: MIT */
/*
 * test_etcd_lock - the local lock's rules, between processes standing for
 * machines, on one etcd member: conflicts, FIFO and no barging, try, timed,
 * downgrade, caching and revocation, fencing tokens, names, bad input.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "harness.h"
#include "node.h"
#include "rangelock_etcd.h"

#define EOF_ RANGELOCK_EOF
#define QUIET 300 /* ms a request must stay waiting to count as waiting */

static struct cluster cl;

static void stop_cluster(void)
{
	if (cl.n)
		cluster_stop(&cl);
	cl.n = 0;
}

static void test_bad_input(void)
{
	struct rangelock_etcd_options o = { .endpoints = cl.endpoints };
	rangelock_etcd_t *c;
	rangelock_etcd_object_t *obj;
	rangelock_etcd_range_t r, r2;
	CHECK_RC(rangelock_etcd_connect(&c, &o), 0);
	CHECK_RC(rangelock_etcd_open(c, "x", 0, &obj), EINVAL);
	CHECK_RC(rangelock_etcd_open(c, "bad", 3, &obj), 0);
	CHECK_RC(rangelock_etcd_wrlock(obj, &r, 10, 10), EINVAL);
	CHECK_RC(rangelock_etcd_rdlock(obj, &r, 11, 10), EINVAL);
	struct timespec bad = { 0, 1000000000L };
	CHECK_RC(rangelock_etcd_timedwrlock(obj, &r, 0, 1, &bad), EINVAL);
	CHECK_RC(rangelock_etcd_timedwrlock(obj, &r, 0, 1, NULL), EINVAL);
	memset(&r, 0, sizeof(r));
	CHECK_RC(rangelock_etcd_unlock(obj, &r), EINVAL);
	CHECK_RC(rangelock_etcd_downgrade(obj, &r), EINVAL);
	CHECK_RC(rangelock_etcd_check(&r), EINVAL);
	CHECK(rangelock_etcd_token(&r) == 0);
	CHECK_RC(rangelock_etcd_rdlock(obj, &r, 0, 100), 0);
	CHECK_RC(rangelock_etcd_downgrade(obj, &r), EINVAL); /* shared already */
	CHECK_RC(rangelock_etcd_close(c), EBUSY);             /* an object open */
	CHECK_RC(rangelock_etcd_object_close(obj), EBUSY);    /* a range held */
	r2 = r;                                                /* a copy is not */
	CHECK_RC(rangelock_etcd_unlock(obj, &r), 0);
	CHECK_RC(rangelock_etcd_unlock(obj, &r2), EINVAL);
	CHECK_RC(rangelock_etcd_unlock(obj, &r), EINVAL);
	CHECK_RC(rangelock_etcd_object_close(obj), 0);
	CHECK_RC(rangelock_etcd_close(c), 0);
	o.ttl_ms = 61000;
	CHECK_RC(rangelock_etcd_connect(&c, &o), EINVAL);
	o = (struct rangelock_etcd_options){ .endpoints = "http://127.0.0.1:1",
					     .timeout_ms = 500 };
	CHECK_RC(rangelock_etcd_connect(&c, &o), ENOTCONN);
	o.endpoints = "http://127.0.0.1:1,,";
	CHECK_RC(rangelock_etcd_connect(&c, &o), EINVAL);
}

/* Conflicts across nodes, adjacency, EOF, try's EBUSY. */
static void test_conflicts(void)
{
	struct node a, b;
	uint64_t t;
	node_start(&a, cl.endpoints, 0, 0);
	node_start(&b, cl.endpoints, 0, 0);
	int ha = node_lock(&a, "wr", "conf", 100, 200, 0);
	CHECK_RC(node_result(&a, ha, 5000, &t), 0);
	CHECK_RC(node_result(&b, node_lock(&b, "trywr", "conf", 150, 160, 0), 5000, NULL), EBUSY);
	CHECK_RC(node_result(&b, node_lock(&b, "tryrd", "conf", 199, 200, 0), 5000, NULL), EBUSY);
	int adj = node_lock(&b, "trywr", "conf", 200, EOF_, 0);
	CHECK_RC(node_result(&b, adj, 5000, NULL), 0);        /* adjacent */
	int below = node_lock(&b, "tryrd", "conf", 0, 100, 0);
	CHECK_RC(node_result(&b, below, 5000, NULL), 0);
	int eof = node_lock(&a, "trywr", "conf", 1000, EOF_, 0);
	CHECK_RC(node_result(&a, eof, 5000, NULL), EBUSY);    /* b's [200, EOF) */
	/* a blocking request waits, then is granted at the release */
	int hb = node_lock(&b, "wr", "conf", 0, 150, 0);
	CHECK_RC(node_result(&b, hb, QUIET, NULL), NODE_PENDING);
	CHECK_RC(node_result(&b, node_on(&b, "unlock", below), 5000, NULL), 0);
	CHECK_RC(node_result(&b, hb, QUIET, NULL), NODE_PENDING); /* a holds 100..150 */
	CHECK_RC(node_result(&a, node_on(&a, "unlock", ha), 5000, NULL), 0);
	uint64_t tb;
	CHECK_RC(node_result(&b, hb, 5000, &tb), 0);
	CHECK(tb > t); /* fencing: conflicting grants in grant order */
	node_stop(&a);
	node_stop(&b);
}

/* FIFO: a shared request behind a waiting exclusive one waits too, even
 * though it is compatible with the holder; try refuses to barge. */
static void test_fifo_no_barging(void)
{
	struct node a, b, c;
	uint64_t tr, tw, tr2;
	node_start(&a, cl.endpoints, 0, 0);
	node_start(&b, cl.endpoints, 0, 0);
	node_start(&c, cl.endpoints, 0, 0);
	int r1 = node_lock(&a, "rd", "fifo", 0, 4096, 0);
	CHECK_RC(node_result(&a, r1, 5000, &tr), 0);
	int w = node_lock(&b, "wr", "fifo", 0, 8192, 0);
	CHECK_RC(node_result(&b, w, QUIET, NULL), NODE_PENDING);
	CHECK_RC(node_result(&c, node_lock(&c, "tryrd", "fifo", 0, 10, 0), 5000, NULL), EBUSY);
	int r2 = node_lock(&c, "rd", "fifo", 4000, 5000, 0);
	CHECK_RC(node_result(&c, r2, QUIET, NULL), NODE_PENDING);
	/* a range the waiting writer does not cover is free for a reader */
	int r3 = node_lock(&c, "tryrd", "fifo", 8192, 9000, 0);
	CHECK_RC(node_result(&c, r3, 5000, NULL), 0);
	CHECK_RC(node_result(&a, node_on(&a, "unlock", r1), 5000, NULL), 0);
	CHECK_RC(node_result(&b, w, 5000, &tw), 0);
	CHECK_RC(node_result(&c, r2, QUIET, NULL), NODE_PENDING);
	CHECK_RC(node_result(&b, node_on(&b, "unlock", w), 5000, NULL), 0);
	CHECK_RC(node_result(&c, r2, 5000, &tr2), 0);
	CHECK(tr < tw && tw < tr2);
	node_stop(&a);
	node_stop(&b);
	node_stop(&c);
}

/* Timed: ETIMEDOUT, and the withdrawn request blocks nobody after. */
static void test_timed(void)
{
	struct node a, b, c;
	node_start(&a, cl.endpoints, 0, 0);
	node_start(&b, cl.endpoints, 0, 0);
	node_start(&c, cl.endpoints, 0, 0);
	int h = node_lock(&a, "rd", "timed", 0, 10, 0);
	CHECK_RC(node_result(&a, h, 5000, NULL), 0);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_RC(node_result(&b, node_lock(&b, "timedwr", "timed", 5, 6, 200), 5000, NULL),
		 ETIMEDOUT);
	int ms = t_elapsed_since_ms(&t0);
	CHECK(ms >= 190 && ms < 3000);
	/* had the writer stayed queued, this reader would wait behind it */
	CHECK_RC(node_result(&c, node_lock(&c, "tryrd", "timed", 0, 10, 0), 5000, NULL), 0);
	CHECK_RC(node_result(&b, node_lock(&b, "timedrd", "timed", 0, 10, 1000), 5000, NULL), 0);
	node_stop(&a);
	node_stop(&b);
	node_stop(&c);
}

/* Downgrade: the waiting readers go on while the writer still holds. */
static void test_downgrade(void)
{
	struct node a, b;
	node_start(&a, cl.endpoints, 0, 0);
	node_start(&b, cl.endpoints, 0, 0);
	int w = node_lock(&a, "wr", "down", 0, 100, 0);
	CHECK_RC(node_result(&a, w, 5000, NULL), 0);
	int r = node_lock(&b, "rd", "down", 50, 60, 0);
	CHECK_RC(node_result(&b, r, QUIET, NULL), NODE_PENDING);
	CHECK_RC(node_result(&a, node_on(&a, "down", w), 5000, NULL), 0);
	CHECK_RC(node_result(&b, r, 5000, NULL), 0);
	CHECK_RC(node_result(&a, node_on(&a, "down", w), 5000, NULL), EINVAL);
	CHECK_RC(node_result(&b, node_lock(&b, "trywr", "down", 0, 1, 0), 5000, NULL), EBUSY);
	CHECK_RC(node_result(&a, node_on(&a, "check", w), 5000, NULL), 0);
	node_stop(&a);
	node_stop(&b);
}

/* Caching: a released grant is kept, reused with its token, and given up
 * when another node asks; NOCACHE gives it up at once. */
static void test_cache_and_revocation(void)
{
	struct node a, b;
	uint64_t t1, t2, t3, tb, t4;
	node_start(&a, cl.endpoints, 0, 0);
	node_start(&b, cl.endpoints, 0, 0);
	int h = node_lock(&a, "wr", "cache", 0, 1 << 20, 0);
	CHECK_RC(node_result(&a, h, 5000, &t1), 0);
	CHECK_RC(node_result(&a, node_on(&a, "unlock", h), 5000, NULL), 0);
	h = node_lock(&a, "wr", "cache", 4096, 8192, 0);   /* inside: cached */
	CHECK_RC(node_result(&a, h, 5000, &t2), 0);
	CHECK(t2 == t1);
	int s = node_lock(&a, "rd", "cache", 0, 4096, 0);  /* shared in exclusive */
	CHECK_RC(node_result(&a, s, 5000, &t3), 0);
	CHECK(t3 == t1);
	CHECK_RC(node_result(&a, node_on(&a, "unlock", s), 5000, NULL), 0);
	CHECK_RC(node_result(&a, node_on(&a, "unlock", h), 5000, NULL), 0);
	/* b asks: a's cached grant is revoked, b granted */
	int hb = node_lock(&b, "rd", "cache", 100, 200, 0);
	CHECK_RC(node_result(&b, hb, 5000, &tb), 0);
	CHECK(tb > t1);
	/* a again: a new request, behind b's */
	int h2 = node_lock(&a, "wr", "cache", 0, 4096, 0);
	CHECK_RC(node_result(&a, h2, QUIET, NULL), NODE_PENDING);
	CHECK_RC(node_result(&b, node_on(&b, "unlock", hb), 5000, NULL), 0);
	CHECK_RC(node_result(&a, h2, 5000, &t4), 0);
	CHECK(t4 > tb);
	/* a grant in use is given up only when its holders are done */
	int hb2 = node_lock(&b, "wr", "cache", 0, 10, 0);
	CHECK_RC(node_result(&b, hb2, QUIET, NULL), NODE_PENDING);
	CHECK_RC(node_result(&a, node_on(&a, "unlock", h2), 5000, NULL), 0);
	CHECK_RC(node_result(&b, hb2, 5000, NULL), 0);
	node_stop(&a);
	node_stop(&b);

	/* NOCACHE: the key goes with the last holder */
	node_start(&a, cl.endpoints, 0, RANGELOCK_ETCD_NOCACHE);
	h = node_lock(&a, "wr", "nocache", 0, 10, 0);
	CHECK_RC(node_result(&a, h, 5000, &t1), 0);
	CHECK_RC(node_result(&a, node_on(&a, "unlock", h), 5000, NULL), 0);
	h = node_lock(&a, "wr", "nocache", 0, 10, 0);
	CHECK_RC(node_result(&a, h, 5000, &t2), 0);
	CHECK(t2 > t1);
	node_stop(&a);
}

/* Threads of one client settle their conflicts locally; one thread may
 * unlock another's range. */
static void test_local_threads(void)
{
	struct node a, b;
	node_start(&a, cl.endpoints, 0, 0);
	node_start(&b, cl.endpoints, 0, 0);
	int h = node_lock(&a, "wr", "local", 0, 10, 0);
	CHECK_RC(node_result(&a, h, 5000, NULL), 0);
	CHECK_RC(node_result(&a, node_lock(&a, "tryrd", "local", 5, 6, 0), 5000, NULL), EBUSY);
	int w = node_lock(&a, "wr", "local", 5, 6, 0);
	CHECK_RC(node_result(&a, w, QUIET, NULL), NODE_PENDING);
	CHECK_RC(node_result(&a, node_on(&a, "unlock", h), 5000, NULL), 0);
	CHECK_RC(node_result(&a, w, 5000, NULL), 0);
	/* b waits for a's grant, in use by the local thread */
	int hb = node_lock(&b, "rd", "local", 0, 100, 0);
	CHECK_RC(node_result(&b, hb, QUIET, NULL), NODE_PENDING);
	CHECK_RC(node_result(&a, node_on(&a, "unlock", w), 5000, NULL), 0);
	CHECK_RC(node_result(&b, hb, 5000, NULL), 0);
	node_stop(&a);
	node_stop(&b);
}

/* Any string names an object; prefixes of one another, '/' and spaces. */
static void test_names(void)
{
	static const char *names[] = { "a", "ab", "a/b", "a b", "a/", "/a", "ab/",
				       "\xff\x01", "x\ny" };
	enum { N = sizeof(names) / sizeof(names[0]) };
	struct node a, b;
	int h[N];
	node_start(&a, cl.endpoints, 0, 0);
	node_start(&b, cl.endpoints, 0, 0);
	for (int i = 0; i < N; i++) {
		h[i] = node_lock(&a, "wr", names[i], 0, EOF_, 0);
		CHECK_RC(node_result(&a, h[i], 5000, NULL), 0);
	}
	for (int i = 0; i < N; i++) {
		int t = node_lock(&b, "trywr", names[i], 0, 1, 0);
		CHECK_RC(node_result(&b, t, 5000, NULL), EBUSY);
		CHECK_RC(node_result(&a, node_on(&a, "unlock", h[i]), 5000, NULL), 0);
		/* a's grant is given up when a's watch sees b's request */
		int w = node_lock(&b, "wr", names[i], 0, 1, 0);
		CHECK_RC(node_result(&b, w, 5000, NULL), 0);
		for (int k = i + 1; k < N; k++) { /* the others still a's */
			int t2 = node_lock(&b, "trywr", names[k], 0, 1, 0);
			CHECK_RC(node_result(&b, t2, 5000, NULL), EBUSY);
		}
		CHECK_RC(node_result(&b, node_on(&b, "unlock", w), 5000, NULL), 0);
	}
	node_stop(&a);
	node_stop(&b);
}

/* The longest name (4 096 bytes) under the longest prefix (512 bytes):
 * requests, conflicts, downgrade, the cache's revocation and list; one
 * byte more is EINVAL. */
static void test_long_names(void)
{
	static char name[4097], prefix[513];
	memset(name, 'n', sizeof(name));
	memset(prefix, 'p', sizeof(prefix) - 1);
	struct rangelock_etcd_options o = { .endpoints = cl.endpoints, .prefix = prefix };
	rangelock_etcd_t *a, *b;
	rangelock_etcd_object_t *oa, *ob;
	rangelock_etcd_range_t ra, rb;
	CHECK_RC(rangelock_etcd_connect(&a, &o), 0);
	CHECK_RC(rangelock_etcd_connect(&b, &o), 0);
	CHECK_RC(rangelock_etcd_open(a, name, 4097, &oa), EINVAL);
	CHECK_RC(rangelock_etcd_open(a, name, 4096, &oa), 0);
	CHECK_RC(rangelock_etcd_open(b, name, 4096, &ob), 0);
	CHECK_RC(rangelock_etcd_wrlock(oa, &ra, 0, EOF_), 0);
	CHECK_RC(rangelock_etcd_trywrlock(ob, &rb, 0, 1), EBUSY);
	CHECK_RC(rangelock_etcd_downgrade(oa, &ra), 0);
	CHECK_RC(rangelock_etcd_tryrdlock(ob, &rb, 0, 1), 0);
	CHECK_RC(count_requests(a, name, 4096), 2);
	CHECK_RC(rangelock_etcd_unlock(ob, &rb), 0);
	CHECK_RC(rangelock_etcd_unlock(oa, &ra), 0); /* kept in a's cache */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	CHECK_RC(rangelock_etcd_timedwrlock(ob, &rb, 0, 1, &until), 0); /* revoked */
	CHECK_RC(rangelock_etcd_unlock(ob, &rb), 0);
	CHECK_RC(rangelock_etcd_object_close(oa), 0);
	CHECK_RC(rangelock_etcd_object_close(ob), 0);
	CHECK_RC(rangelock_etcd_close(a), 0);
	CHECK_RC(rangelock_etcd_close(b), 0);
}

static int count_entry(const struct rangelock_etcd_entry *e, void *arg)
{
	int *n = arg;
	n[0]++;
	n[1] += e->held;
	n[2] += e->exclusive;
	CHECK(e->object_len == 4 && memcmp(e->object, "list", 4) == 0);
	CHECK(e->token > 0 && e->age >= 0 && e->age < 60 && e->client[0]);
	return 0;
}

static void test_list(void)
{
	struct node a, b;
	node_start(&a, cl.endpoints, 0, 0);
	node_start(&b, cl.endpoints, 0, 0);
	int h = node_lock(&a, "wr", "list", 0, 10, 0);
	CHECK_RC(node_result(&a, h, 5000, NULL), 0);
	int w = node_lock(&b, "rd", "list", 5, 15, 0);
	CHECK_RC(node_result(&b, w, QUIET, NULL), NODE_PENDING);
	struct rangelock_etcd_options o = { .endpoints = cl.endpoints };
	rangelock_etcd_t *c;
	CHECK_RC(rangelock_etcd_connect(&c, &o), 0);
	int n[3] = { 0 };
	CHECK_RC(rangelock_etcd_list(c, "list", 4, count_entry, n), 0);
	CHECK(n[0] == 2 && n[1] == 1 && n[2] == 1);
	CHECK_RC(rangelock_etcd_close(c), 0);
	node_stop(&a); /* its quit releases; b is granted, then quits */
	CHECK_RC(node_result(&b, w, 5000, NULL), 0);
	node_stop(&b);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	cluster_start(&cl, 1);
	atexit(stop_cluster); /* a failed CHECK exits: no member left behind */
	RUN(test_bad_input);
	RUN(test_conflicts);
	RUN(test_fifo_no_barging);
	RUN(test_timed);
	RUN(test_downgrade);
	RUN(test_cache_and_revocation);
	RUN(test_local_threads);
	RUN(test_names);
	RUN(test_long_names);
	RUN(test_list);
	stop_cluster();
	t_done();
	return 0;
}
