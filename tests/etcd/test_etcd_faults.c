/* SPDX-License-Identifier: MIT */
/*
 * test_etcd_faults - the distributed lock when things fail, on three etcd
 * members: clients killed while they hold and wait, a client paused past
 * its lease (its writes refused by a fencing store), the leader and a
 * follower killed and paused under load, history compacted while a
 * watch is down, and a request's lost attempt applied after the client
 * gave the range back.  A checker reads every grant's record: no two valid
 * conflicting grants overlap in time, tokens increase for conflicting
 * grants in the order they were held, a valid grant's write is never
 * refused, and every request is answered.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "fence.h"
#include "harness.h"
#include "hold_proxy.h"
#include "node.h"
#include "rangelock_etcd.h"

static struct cluster cl;
static char dir[256];

static void stop_cluster(void)
{
	if (cl.n)
		cluster_stop(&cl);
	cl.n = 0;
	if (dir[0]) {
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
		dir[0] = 0;
	}
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* A holder and a waiter killed: the next waiter is granted within the
 * TTL and a second, reported as a distribution. */
static void test_kill_holder_and_waiter(void)
{
	enum { RUNS = 3, TTL = 2000 };
	double waited[RUNS];
	char ep[256];
	for (int run = 0; run < RUNS; run++) {
		struct node a, b, c;
		node_start(&a, cluster_endpoints_from(&cl, run, ep, sizeof(ep)), TTL, 0);
		node_start(&b, cluster_endpoints_from(&cl, run + 1, ep, sizeof(ep)), TTL, 0);
		node_start(&c, cluster_endpoints_from(&cl, run + 2, ep, sizeof(ep)), TTL, 0);
		char obj[32];
		snprintf(obj, sizeof(obj), "killed-%d", run);
		CHECK_RC(node_result(&a, node_lock(&a, "wr", obj, 0, 100, 0), 5000, NULL), 0);
		int wb = node_lock(&b, "wr", obj, 50, 150, 0);
		CHECK_RC(node_result(&b, wb, 300, NULL), NODE_PENDING);
		int wc = node_lock(&c, "rd", obj, 0, 200, 0);
		CHECK_RC(node_result(&c, wc, 300, NULL), NODE_PENDING);
		node_kill(&a);
		node_kill(&b);
		double t0 = now_s();
		CHECK_RC(node_result(&c, wc, TTL + 5000, NULL), 0);
		waited[run] = now_s() - t0;
		node_stop(&c);
	}
	qsort(waited, RUNS, sizeof(waited[0]), cmp_double);
	printf("# holder and waiter killed -> next waiter granted: min %.2f s, "
	       "median %.2f s, max %.2f s (TTL %.1f s)\n", waited[0],
	       waited[RUNS / 2], waited[RUNS - 1], TTL / 1000.0);
	CHECK(waited[RUNS - 1] <= TTL / 1000.0 + 1.0);
}

/* A client paused past its TTL: another is granted, writes, and the
 * paused one's later writes are refused by the fencing store. */
static void test_pause_past_ttl(void)
{
	enum { TTL = 2000 };
	struct node a, b;
	char store[300];
	snprintf(store, sizeof(store), "%s/fence-pause", dir);
	setenv("RL_FENCE_STORE", store, 1);
	node_start(&a, cl.endpoints, TTL, 0);
	node_start(&b, cl.endpoints, TTL, 0);
	uint64_t ta, tb;
	int ha = node_lock(&a, "wr", "paused", 0, 8192, 0);
	CHECK_RC(node_result(&a, ha, 5000, &ta), 0);
	CHECK_RC(node_result(&a, node_on(&a, "write", ha), 5000, NULL), 0);
	node_pause(&a);
	double t0 = now_s();
	int hb = node_lock(&b, "wr", "paused", 4096, 12288, 0);
	CHECK_RC(node_result(&b, hb, TTL + 5000, &tb), 0);
	CHECK(now_s() - t0 >= TTL / 1000.0 - 0.6); /* not before a's lease ended */
	CHECK(tb > ta);
	CHECK_RC(node_result(&b, node_on(&b, "write", hb), 5000, NULL), 0);
	node_resume(&a);
	/* whatever a believes, the store refuses it; and a learns it */
	CHECK_RC(node_result(&a, node_on(&a, "write", ha), 5000, NULL), EPERM);
	CHECK_RC(node_result(&a, node_on(&a, "check", ha), 5000, NULL), ENOLCK);
	CHECK_RC(node_result(&a, node_on(&a, "unlock", ha), 5000, NULL), ENOLCK);
	/* and a gets the range again, behind b, with a new lease */
	int ha2 = node_lock(&a, "wr", "paused", 0, 4096, 0);
	uint64_t ta2;
	CHECK_RC(node_result(&a, ha2, 5000, &ta2), 0); /* [0, 4096) is free */
	CHECK(ta2 > tb);
	CHECK_RC(node_result(&a, node_on(&a, "write", ha2), 5000, NULL), 0);
	node_stop(&a);
	node_stop(&b);
}

struct rec {
	uint64_t token, start, end;
	int excl, valid, wrc, file;
	double t1, t2;
};

static int cmp_t1(const void *a, const void *b)
{
	return cmp_double(&((const struct rec *)a)->t1, &((const struct rec *)b)->t1);
}

/* Read every history in dir; check it; returns the number of grants. */
static int check_history(int *errors)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "cat %s/history-* 2>/dev/null", dir);
	FILE *f = popen(cmd, "r");
	CHECK(f != NULL);
	size_t n = 0, cap = 1024;
	struct rec *r = malloc(cap * sizeof(*r));
	char line[256];
	*errors = 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "error", 5)) {
			(*errors)++;
			continue;
		}
		if (n == cap)
			r = realloc(r, (cap *= 2) * sizeof(*r));
		unsigned long long tok, s, e;
		int urc;
		CHECK(sscanf(line, "%llu %llu %llu %d %lf %lf %d %d %d", &tok, &s, &e,
			     &r[n].excl, &r[n].t1, &r[n].t2, &r[n].valid, &r[n].wrc,
			     &urc) == 9);
		r[n].token = tok;
		r[n].start = s;
		r[n].end = e;
		CHECK(r[n].wrc == 0 || !r[n].valid); /* a valid write is accepted */
		n++;
	}
	pclose(f);
	qsort(r, n, sizeof(*r), cmp_t1);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			bool conflict = r[i].start < r[j].end && r[j].start < r[i].end &&
					(r[i].excl || r[j].excl);
			if (!conflict || !r[i].valid || !r[j].valid)
				continue;
			if (r[j].t1 < r[i].t2)
				t_fail(__FILE__, __LINE__, "conflicting grants overlap: "
				       "token %llu [%llu,%llu) and token %llu [%llu,%llu)",
				       (unsigned long long)r[i].token,
				       (unsigned long long)r[i].start,
				       (unsigned long long)r[i].end,
				       (unsigned long long)r[j].token,
				       (unsigned long long)r[j].start,
				       (unsigned long long)r[j].end);
			if (r[j].token < r[i].token)
				t_fail(__FILE__, __LINE__, "token %llu held after a "
				       "conflicting token %llu", (unsigned long long)r[j].token,
				       (unsigned long long)r[i].token);
		}
	free(r);
	return (int)n;
}

static int print_entry(const struct rangelock_etcd_entry *e, void *arg)
{
	(void)arg;
	fprintf(stderr, "#   [%llu, %llu) %s %s token %llu age %.1f s %s\n",
		(unsigned long long)e->start, (unsigned long long)e->end,
		e->exclusive ? "exclusive" : "shared", e->held ? "held" : "waiting",
		(unsigned long long)e->token, e->age, e->client);
	return 0;
}

static void dump_requests(const char *object)
{
	struct rangelock_etcd_options o = { .endpoints = cl.endpoints };
	rangelock_etcd_t *c;
	fprintf(stderr, "# the requests on '%s' now:\n", object);
	if (rangelock_etcd_connect(&c, &o) == 0) {
		rangelock_etcd_list(c, object, strlen(object), print_entry, NULL);
		rangelock_etcd_close(c);
	}
}

/* Three clients under load while the leader is killed and paused and a
 * follower killed. */
static void test_members_fail_under_load(void)
{
	enum { NODES = 3, SECONDS = 12 };
	struct node nd[NODES];
	int work[NODES];
	char ep[256], store[300];
	snprintf(store, sizeof(store), "%s/fence-load", dir);
	setenv("RL_FENCE_STORE", store, 1);
	for (int i = 0; i < NODES; i++) {
		node_start(&nd[i], cluster_endpoints_from(&cl, i, ep, sizeof(ep)), 5000, 0);
		work[i] = node_work(&nd[i], "load", SECONDS, 7 + i, 2);
	}
	t_sleep_ms(1500);
	int leader = cluster_leader(&cl);
	CHECK(leader >= 0);
	printf("# kill the leader (m%d)\n", leader);
	cluster_kill(&cl, leader);
	t_sleep_ms(2000);
	cluster_restart(&cl, leader);
	t_sleep_ms(2000);
	leader = cluster_leader(&cl);
	CHECK(leader >= 0);
	printf("# pause the leader (m%d) 2 s\n", leader);
	cluster_pause(&cl, leader);
	t_sleep_ms(2000);
	cluster_resume(&cl, leader);
	t_sleep_ms(1000);
	int follower = (cluster_leader(&cl) + 1) % cl.n;
	printf("# kill a follower (m%d)\n", follower);
	cluster_kill(&cl, follower);
	t_sleep_ms(1500);
	cluster_restart(&cl, follower);
	int grants[NODES];
	for (int i = 0; i < NODES; i++) {
		uint64_t g;
		int rc = node_result(&nd[i], work[i], SECONDS * 1000 + 30000, &g);
		if (rc == NODE_PENDING)
			dump_requests("load"); /* who waits for what, for the record */
		CHECK_RC(rc, 0);
		grants[i] = (int)g;
		node_stop(&nd[i]);
	}
	int errors, n = check_history(&errors);
	printf("# %d grants checked (per node %d %d %d), %d lock calls failed "
	       "(ENOLCK or ENOTCONN while members were down)\n",
	       n, grants[0], grants[1], grants[2], errors);
	for (int i = 0; i < NODES; i++)
		CHECK(grants[i] > 10); /* every node made progress */
}

/* A waiter whose watch is down while its blocker leaves and the history
 * is compacted: its watch re-reads, and it is granted. */
static void test_compaction_while_watch_down(void)
{
	struct node a, b;
	char ep[256];
	node_start(&a, cluster_endpoints_from(&cl, 0, ep, sizeof(ep)), 5000, 0);
	node_start(&b, cluster_endpoints_from(&cl, 1, ep, sizeof(ep)), 5000, 0);
	int hb = node_lock(&b, "wr", "compact", 0, 10, 0);
	CHECK_RC(node_result(&b, hb, 5000, NULL), 0);
	int wa = node_lock(&a, "wr", "compact", 0, 10, 0);
	CHECK_RC(node_result(&a, wa, 500, NULL), NODE_PENDING);
	cluster_pause(&cl, 0); /* a's member: a's watch hears nothing more */
	CHECK_RC(node_result(&b, node_on(&b, "unlock", hb), 5000, NULL), 0);
	for (int i = 0; i < 20; i++) { /* history to compact away */
		int h = node_lock(&b, "wr", "compact-churn", 0, 10, 0);
		CHECK_RC(node_result(&b, h, 5000, NULL), 0);
		CHECK_RC(node_result(&b, node_on(&b, "unlock", h), 5000, NULL), 0);
	}
	cluster_compact(&cl, 1);
	double t0 = now_s();
	CHECK_RC(node_result(&a, wa, 10000, NULL), 0);
	printf("# granted %.2f s after the compaction, its member still paused\n",
	       now_s() - t0);
	cluster_resume(&cl, 0);
	node_stop(&a);
	node_stop(&b);
}

/* A request's first attempt reaches a member and goes unanswered; the
 * client moves to the next member, is granted, and gives the range back;
 * only then is the lost attempt applied, as etcd may apply a proposal of a
 * leader that failed.  It must not bring the request back: nobody would
 * delete it, and the client's lease, kept alive, would keep it for ever
 * (the load test's hang: every waiter behind it waited for good). */
static void test_late_attempt(void)
{
	struct hold_proxy px;
	hold_proxy_start(&px, cl.client_port[0]);
	char ep[128];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d,%s", px.port, cl.url[0]);
	struct rangelock_etcd_options opt = { .endpoints = ep, .ttl_ms = 5000,
					      .timeout_ms = 2000,
					      .flags = RANGELOCK_ETCD_NOCACHE };
	rangelock_etcd_t *a, *b;
	rangelock_etcd_object_t *oa, *ob;
	rangelock_etcd_range_t r;
	CHECK_RC(rangelock_etcd_connect(&a, &opt), 0);
	CHECK_RC(rangelock_etcd_open(a, "late", 4, &oa), 0);
	hold_proxy_hold(&px, "/v3/kv/txn");
	CHECK_RC(rangelock_etcd_wrlock(oa, &r, 0, 4096), 0);
	CHECK(hold_proxy_wait_held(&px, 0) == 0); /* the first attempt was lost */
	CHECK_RC(rangelock_etcd_unlock(oa, &r), 0); /* given back (no cache) */
	CHECK(hold_proxy_deliver(&px) == 200);     /* and applied late */
	CHECK_RC(count_requests(a, "late", 4), 0);
	opt.endpoints = cl.url[0];
	CHECK_RC(rangelock_etcd_connect(&b, &opt), 0);
	CHECK_RC(rangelock_etcd_open(b, "late", 4, &ob), 0);
	CHECK_RC(rangelock_etcd_trywrlock(ob, &r, 0, 4096), 0); /* nobody holds it */
	CHECK_RC(rangelock_etcd_unlock(ob, &r), 0);
	CHECK_RC(rangelock_etcd_object_close(ob), 0);
	CHECK_RC(rangelock_etcd_close(b), 0);
	CHECK_RC(rangelock_etcd_object_close(oa), 0);
	CHECK_RC(rangelock_etcd_close(a), 0);
	hold_proxy_stop(&px);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(dir, sizeof(dir), "/dev/shm/rl-etcd-faults-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	setenv("RL_HISTORY_DIR", dir, 1);
	cluster_start(&cl, 3);
	atexit(stop_cluster); /* a failed CHECK exits: no member left behind */
	RUN(test_kill_holder_and_waiter);
	RUN(test_pause_past_ttl);
	RUN(test_compaction_while_watch_down);
	RUN(test_late_attempt);
	RUN(test_members_fail_under_load);
	stop_cluster();
	t_done();
	return 0;
}
