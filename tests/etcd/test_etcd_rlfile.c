/* SPDX-License-Identifier: MIT */
/*
 * test_etcd_rlfile - the seed's problem across machines.  Two processes
 * stand for two nodes, each with its own rlfile cache over one shared
 * file, and take their ranges from etcd (librangelock-etcd, cached grants
 * on): buffered reads and writes, direct reads and writes, hole punches
 * and truncates (down, then back up to the file's size, so that the size
 * each node caches stays right), by two threads a node, on random runs of
 * pages.
 *
 * Coherence, as a cluster file system keeps it: a node's cached pages are
 * valid only under the grant they were read or written under.  A grant is
 * reused (same token) only while no other node asked for a conflicting
 * range, so a page whose recorded token is the grant's own is current;
 * otherwise the node drops the range (rlfile_drop_range) before it uses
 * it.  Exclusive work is written back before its unlock (another node may
 * take the range as soon as the grant is revoked).
 *
 * The checker: under its exclusive grant a writer records, per page, the
 * token its data carries (or that it punched the page) in a truth file,
 * after the data is on disk; a reader under its shared grant compares
 * every page it reads with the truth.  Run three ways:
 *   etcd        no page differs from the truth;
 *   no lock     (no cross-node lock at all) stale pages are found;
 *   no drop     (locks, but the cache is never dropped) stale pages found.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "harness.h"
#include "rangelock_etcd.h"
#include "rlfile.h"

#define PAGE RLFILE_PAGE
#define NPAGES 32
#define MAXRUN 4
#define PUNCHED (1ull << 63) /* truth: the page was punched (zeros) */

enum mode { MODE_ETCD, MODE_NO_LOCK, MODE_NO_DROP };

static struct cluster cl;
static char data_path[512], truth_path[512];

static void stop_cluster(void)
{
	if (cl.n)
		cluster_stop(&cl);
	cl.n = 0;
}

static double mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* ---- one node ----------------------------------------------------------- */

struct node {
	enum mode mode;
	int id;
	struct rlfile *f;
	rangelock_etcd_object_t *o;
	int truth;                  /* the truth file */
	double until;
	pthread_mutex_t mu;         /* valid[] and the drops it decides */
	uint64_t valid[NPAGES];     /* the grant each cached page is valid under */
	uint64_t local_tokens;      /* no lock: tokens made up here */
	unsigned threads;           /* started, for their seeds */
	long ops, stale, errors;    /* under mu, added by each thread at its end */
};

static uint64_t stamp(uint64_t token, unsigned page) { return token << 8 | page; }

static void fill(uint64_t *buf, unsigned first, unsigned n, uint64_t token)
{
	for (unsigned p = 0; p < n; p++)
		for (unsigned w = 0; w < PAGE / 8; w++)
			buf[p * (PAGE / 8) + w] = stamp(token, first + p);
}

/* Pages read, against the truth: how many differ. */
static long check(struct node *nd, const uint64_t *buf, unsigned first, unsigned n)
{
	uint64_t truth[MAXRUN];
	long bad = 0;
	if (pread(nd->truth, truth, n * 8, first * 8) != (ssize_t)(n * 8))
		return n;
	for (unsigned p = 0; p < n; p++) {
		uint64_t want = truth[p] & PUNCHED ? 0 : stamp(truth[p], first + p);
		for (unsigned w = 0; w < PAGE / 8; w++)
			if (buf[p * (PAGE / 8) + w] != want) {
				bad++;
				break;
			}
	}
	return bad;
}

static int record(struct node *nd, unsigned first, unsigned n, uint64_t value)
{
	uint64_t truth[NPAGES];
	for (unsigned p = 0; p < n; p++)
		truth[p] = value;
	return pwrite(nd->truth, truth, n * 8, first * 8) == (ssize_t)(n * 8) ? 0 : EIO;
}

/* Under a grant of token t: drop what was cached under another grant. */
static int make_coherent(struct node *nd, unsigned first, unsigned n, uint64_t t)
{
	int rc = 0;
	pthread_mutex_lock(&nd->mu);
	bool stale = false;
	for (unsigned p = first; p < first + n; p++) {
		stale |= nd->valid[p] != t;
		nd->valid[p] = t;
	}
	/* under mu: a thread reusing the grant waits for the drop */
	if (stale && nd->mode == MODE_ETCD)
		rc = rlfile_drop_range(nd->f, first * PAGE, n * PAGE);
	pthread_mutex_unlock(&nd->mu);
	return rc;
}

static void *node_thread(void *arg)
{
	struct node *nd = arg;
	pthread_mutex_lock(&nd->mu);
	unsigned seed = (unsigned)getpid() * 7919u + nd->threads++;
	pthread_mutex_unlock(&nd->mu);
	uint64_t *buf = aligned_alloc(PAGE, MAXRUN * PAGE);
	long ops = 0, stale = 0, errors = buf == NULL;
	while (buf && mono() < nd->until) {
		unsigned first = (unsigned)rand_r(&seed) % NPAGES;
		unsigned n = 1 + (unsigned)rand_r(&seed) % MAXRUN;
		if (first + n > NPAGES)
			n = NPAGES - first;
		unsigned op = (unsigned)rand_r(&seed) % 11;
		bool excl = op >= 5 && op != 9;
		if (op == 10) /* truncate: [first, EOF) */
			n = NPAGES - first;
		uint64_t end = op == 10 ? RANGELOCK_EOF : (first + n) * PAGE;
		rangelock_etcd_range_t r;
		uint64_t t;
		if (nd->mode == MODE_NO_LOCK) {
			pthread_mutex_lock(&nd->mu);
			t = ((uint64_t)nd->id << 40) + ++nd->local_tokens;
			pthread_mutex_unlock(&nd->mu);
		} else {
			int rc = excl ? rangelock_etcd_wrlock(nd->o, &r, first * PAGE, end)
				      : rangelock_etcd_rdlock(nd->o, &r, first * PAGE, end);
			if (rc) {
				errors++;
				continue;
			}
			t = rangelock_etcd_token(&r);
			errors += make_coherent(nd, first, n, t) != 0;
		}
		size_t done;
		int rc = 0;
		switch (op) {
		case 5: case 6: /* buffered write, written back before the unlock */
			fill(buf, first, n, t);
			rc = rlfile_write(nd->f, buf, n * PAGE, first * PAGE, &done);
			if (!rc)
				rc = rlfile_flush(nd->f);
			if (!rc)
				rc = record(nd, first, n, t);
			break;
		case 7: /* direct write */
			fill(buf, first, n, t);
			rc = rlfile_direct_write(nd->f, buf, n * PAGE, first * PAGE, &done);
			if (!rc)
				rc = record(nd, first, n, t);
			break;
		case 8: /* punch */
			rc = rlfile_punch(nd->f, first * PAGE, n * PAGE);
			if (!rc)
				rc = record(nd, first, n, t | PUNCHED);
			break;
		case 10: /* truncate to first, and back: zeros from first on */
			rc = rlfile_truncate(nd->f, first * PAGE);
			if (!rc)
				rc = rlfile_truncate(nd->f, NPAGES * PAGE);
			if (!rc)
				rc = record(nd, first, n, t | PUNCHED);
			break;
		case 9: /* direct read */
			rc = rlfile_direct_read(nd->f, buf, n * PAGE, first * PAGE, &done);
			if (!rc)
				stale += check(nd, buf, first, n);
			break;
		default: /* buffered read */
			rc = rlfile_read(nd->f, buf, n * PAGE, first * PAGE, &done);
			if (!rc)
				stale += check(nd, buf, first, n);
			break;
		}
		errors += rc != 0;
		if (nd->mode != MODE_NO_LOCK && rangelock_etcd_unlock(nd->o, &r))
			errors++;
		ops++;
	}
	free(buf);
	pthread_mutex_lock(&nd->mu);
	nd->ops += ops;
	nd->stale += stale;
	nd->errors += errors;
	pthread_mutex_unlock(&nd->mu);
	return NULL;
}

/* A node's life: its own client, its own cache; counts on fd. */
static int node_main(int id, enum mode mode, double seconds, int fd)
{
	struct node nd = { .mode = mode, .id = id, .until = mono() + seconds };
	struct rlfile_options fo = { .lock = RLFILE_LOCK_RANGE };
	struct rangelock_etcd_options eo = { .endpoints = cl.endpoints, .ttl_ms = 5000 };
	rangelock_etcd_t *c;
	pthread_mutex_init(&nd.mu, NULL);
	nd.truth = open(truth_path, O_RDWR | O_CLOEXEC);
	if (nd.truth < 0 || rlfile_open(data_path, &fo, &nd.f) ||
	    rangelock_etcd_connect(&c, &eo) || rangelock_etcd_open(c, "shared", 6, &nd.o))
		return 1;
	for (unsigned p = 0; p < NPAGES; p++)
		nd.valid[p] = UINT64_MAX; /* nothing cached yet is valid */
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, node_thread, &nd);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	long out[3] = { nd.ops, nd.stale, nd.errors };
	int rc = write(fd, out, sizeof(out)) == sizeof(out) ? 0 : 1;
	rc |= rangelock_etcd_object_close(nd.o) || rangelock_etcd_close(c) ||
	      rlfile_close(nd.f);
	close(nd.truth);
	return rc;
}

/* ---- the runs ----------------------------------------------------------- */

/* A fresh file of stamped pages (token 0) and its truth. */
static void fresh_files(void)
{
	uint64_t *buf = malloc(NPAGES * PAGE), truth[NPAGES] = { 0 };
	fill(buf, 0, NPAGES, 0);
	int fd = open(data_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && pwrite(fd, buf, NPAGES * PAGE, 0) == (ssize_t)(NPAGES * PAGE));
	close(fd);
	fd = open(truth_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && pwrite(fd, truth, sizeof(truth), 0) == (ssize_t)sizeof(truth));
	close(fd);
	free(buf);
}

/* Two nodes for seconds; the stale pages they read, and their ops. */
static long run_nodes(enum mode mode, double seconds, long *ops)
{
	int p[2];
	CHECK(pipe(p) == 0);
	fresh_files();
	pid_t pid[2];
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		CHECK(pid[i] >= 0);
		if (pid[i] == 0) {
			close(p[0]);
			_exit(node_main(i, mode, seconds, p[1]));
		}
	}
	close(p[1]);
	long stale = 0;
	*ops = 0;
	for (int i = 0; i < 2; i++) {
		long out[3];
		CHECK(read(p[0], out, sizeof(out)) == (ssize_t)sizeof(out));
		CHECK_RC((int)out[2], 0); /* no call failed */
		*ops += out[0];
		stale += out[1];
	}
	close(p[0]);
	for (int i = 0; i < 2; i++) {
		int st;
		CHECK(waitpid(pid[i], &st, 0) == pid[i] && WIFEXITED(st));
		CHECK_RC(WEXITSTATUS(st), 0);
	}
	return stale;
}

static void test_two_nodes_coherent(void)
{
	long ops, stale = run_nodes(MODE_ETCD, 5.0, &ops);
	printf("# etcd: %ld operations on two nodes, %ld stale pages\n", ops, stale);
	CHECK(ops > 100);
	CHECK_RC((int)stale, 0);
}

static void test_no_cross_node_lock_finds_stale(void)
{
	long ops, stale = run_nodes(MODE_NO_LOCK, 3.0, &ops);
	printf("# no lock: %ld operations, %ld stale pages\n", ops, stale);
	CHECK(stale > 0);
}

static void test_no_drop_finds_stale(void)
{
	long ops, stale = run_nodes(MODE_NO_DROP, 5.0, &ops);
	printf("# locks, no drop: %ld operations, %ld stale pages\n", ops, stale);
	CHECK(stale > 0);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	/* files on a real file system (O_DIRECT): the directory given, else . */
	const char *dir = argc > 1 ? argv[1] : ".";
	snprintf(data_path, sizeof(data_path), "%s/etcd-rlfile-%d.dat", dir, (int)getpid());
	snprintf(truth_path, sizeof(truth_path), "%s/etcd-rlfile-%d.truth", dir, (int)getpid());
	cluster_start(&cl, 1);
	atexit(stop_cluster); /* a failed CHECK exits: no member left behind */
	RUN(test_two_nodes_coherent);
	RUN(test_no_cross_node_lock_finds_stale);
	RUN(test_no_drop_finds_stale);
	unlink(data_path);
	unlink(truth_path);
	stop_cluster();
	t_done();
	return 0;
}
