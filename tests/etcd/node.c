/* SPDX-License-Identifier: MIT */
/*
 * node.c - a process standing for a machine (node.h).  The protocol on its
 * pipes is one line per command, "ID OP ARGS", and one line per reply,
 * "ID RESULT TOKEN"; object names travel hex-encoded, so any bytes do.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fence.h"
#include "node.h"

#define NODE_MAX_IDS 4096

/* ---- the child ---------------------------------------------------------- */

static rangelock_etcd_t *client;
static int reply_fd;
static pthread_mutex_t reply_mu = PTHREAD_MUTEX_INITIALIZER;
static rangelock_etcd_range_t *ranges[NODE_MAX_IDS];
static rangelock_etcd_object_t *objs[NODE_MAX_IDS];
static uint64_t starts[NODE_MAX_IDS], ends[NODE_MAX_IDS];
/* the table above; also orders a lock's thread before the threads that
 * later use its range (the test's pipes order them, unseen by TSan) */
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;

static void reply(int id, int rc, uint64_t token)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%d %d %llu\n", id, rc,
			 (unsigned long long)token);
	pthread_mutex_lock(&reply_mu);
	if (write(reply_fd, line, (size_t)n) != n)
		_exit(3);
	pthread_mutex_unlock(&reply_mu);
}

struct cmd {
	int id, ref, wait_ms;
	char op[16], name[4096];
	size_t name_len;
	unsigned long long start, end;
};

static double mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

struct worker {
	rangelock_etcd_object_t *o;
	double until;
	unsigned seed;
	FILE *history;
	int grants;
};

/* One thread of "work": random ranges of 32 pages, 40% exclusive, each
 * exclusive grant written to the fencing store; one history line a grant:
 * token start end excl granted released valid write-rc unlock-rc */
static void *work_thread(void *arg)
{
	struct worker *w = arg;
	const char *store = getenv("RL_FENCE_STORE");
	while (mono() < w->until) {
		uint64_t first = (uint64_t)(rand_r(&w->seed) % 32);
		uint64_t len = 1 + (uint64_t)(rand_r(&w->seed) % 8);
		uint64_t start = first * 4096, end = (first + len) * 4096;
		if (end > 32 * 4096)
			end = 32 * 4096;
		if (rand_r(&w->seed) % 8 == 0)
			start += (uint64_t)(rand_r(&w->seed) % 4096); /* byte ranges too */
		bool excl = rand_r(&w->seed) % 10 < 4;
		rangelock_etcd_range_t r;
		int rc = excl ? rangelock_etcd_wrlock(w->o, &r, start, end)
			      : rangelock_etcd_rdlock(w->o, &r, start, end);
		if (rc) {
			fprintf(w->history, "error %d %.6f\n", rc, mono());
			usleep(100000);
			continue;
		}
		double granted = mono();
		uint64_t token = rangelock_etcd_token(&r);
		int wrc = excl && store ? fence_write(store, start, end, token) : 0;
		usleep((useconds_t)(rand_r(&w->seed) % 3000));
		int valid = rangelock_etcd_check(&r) == 0;
		double released = mono();
		int urc = rangelock_etcd_unlock(w->o, &r);
		fprintf(w->history, "%llu %llu %llu %d %.6f %.6f %d %d %d\n",
			(unsigned long long)token, (unsigned long long)start,
			(unsigned long long)end, excl, granted, released, valid && !urc,
			wrc, urc);
		w->grants++;
	}
	return NULL;
}

/* "work OBJECT SECONDS SEED THREADS": history in $RL_HISTORY_DIR */
static int run_work(struct cmd *c, uint64_t *grants)
{
	rangelock_etcd_object_t *o;
	int rc = rangelock_etcd_open(client, c->name, c->name_len, &o);
	if (rc)
		return rc;
	int nthreads = c->wait_ms > 0 && c->wait_ms <= 16 ? c->wait_ms : 2;
	struct worker w[16];
	pthread_t t[16];
	for (int i = 0; i < nthreads; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/history-%d-%d-%d",
			 getenv("RL_HISTORY_DIR"), (int)getpid(), c->id, i);
		w[i] = (struct worker){ o, mono() + (double)c->start,
					(unsigned)c->end * 31u + (unsigned)i, fopen(path, "w"), 0 };
		if (!w[i].history)
			return errno;
		pthread_create(&t[i], NULL, work_thread, &w[i]);
	}
	*grants = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		fclose(w[i].history);
		*grants += (uint64_t)w[i].grants;
	}
	return rangelock_etcd_object_close(o);
}

static void *run_cmd(void *arg)
{
	struct cmd *c = arg;
	int rc;
	uint64_t token = 0;
	if (!strcmp(c->op, "work")) {
		rc = run_work(c, &token);
		reply(c->id, rc, token);
		free(c);
		return NULL;
	}
	if (c->ref >= 0) {
		pthread_mutex_lock(&table_mu);
		rangelock_etcd_range_t *r = ranges[c->ref];
		rangelock_etcd_object_t *o = objs[c->ref];
		uint64_t start = starts[c->ref], end = ends[c->ref];
		pthread_mutex_unlock(&table_mu);
		if (!r)
			rc = EINVAL;
		else if (!strcmp(c->op, "unlock"))
			rc = rangelock_etcd_unlock(o, r);
		else if (!strcmp(c->op, "down"))
			rc = rangelock_etcd_downgrade(o, r);
		else if (!strcmp(c->op, "write"))
			rc = fence_write(getenv("RL_FENCE_STORE"), start, end,
					 rangelock_etcd_token(r));
		else
			rc = rangelock_etcd_check(r);
		if (r && !strcmp(c->op, "unlock") && (rc == 0 || rc == ENOLCK)) {
			pthread_mutex_lock(&table_mu);
			ranges[c->ref] = NULL; /* its object stays open: its cache */
			pthread_mutex_unlock(&table_mu);
			free(r);
		} else {
			pthread_mutex_lock(&table_mu); /* before the next use of r */
			pthread_mutex_unlock(&table_mu);
		}
		reply(c->id, rc, token);
		free(c);
		return NULL;
	}
	rangelock_etcd_object_t *o;
	rangelock_etcd_range_t *r = calloc(1, sizeof(*r));
	rc = rangelock_etcd_open(client, c->name, c->name_len, &o);
	if (rc == 0) {
		bool wr = strstr(c->op, "wr") != NULL;
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long long ns = t.tv_nsec + (long long)c->wait_ms * 1000000LL;
		t.tv_sec += ns / 1000000000LL;
		t.tv_nsec = ns % 1000000000LL;
		if (!strncmp(c->op, "try", 3))
			rc = wr ? rangelock_etcd_trywrlock(o, r, c->start, c->end)
				: rangelock_etcd_tryrdlock(o, r, c->start, c->end);
		else if (!strncmp(c->op, "timed", 5))
			rc = wr ? rangelock_etcd_timedwrlock(o, r, c->start, c->end, &t)
				: rangelock_etcd_timedrdlock(o, r, c->start, c->end, &t);
		else
			rc = wr ? rangelock_etcd_wrlock(o, r, c->start, c->end)
				: rangelock_etcd_rdlock(o, r, c->start, c->end);
		if (rc == 0) {
			token = rangelock_etcd_token(r);
			pthread_mutex_lock(&table_mu);
			starts[c->id] = c->start;
			ends[c->id] = c->end;
			objs[c->id] = o;
			ranges[c->id] = r;
			pthread_mutex_unlock(&table_mu);
			r = NULL;
		} else {
			rangelock_etcd_object_close(o);
		}
	}
	free(r);
	reply(c->id, rc, token);
	free(c);
	return NULL;
}

static void child_main(int cmd_fd, const char *endpoints, unsigned ttl_ms,
		       unsigned flags)
{
	struct rangelock_etcd_options o = { .endpoints = endpoints, .ttl_ms = ttl_ms,
					    .flags = flags, .timeout_ms = 1000 };
	int rc = rangelock_etcd_connect(&client, &o);
	reply(0, rc, 0);
	if (rc)
		_exit(2);
	FILE *in = fdopen(cmd_fd, "r");
	char line[9000];
	while (fgets(line, sizeof(line), in)) {
		struct cmd *c = calloc(1, sizeof(*c));
		char hex[8200] = "";
		c->ref = -1;
		if (sscanf(line, "%d %15s", &c->id, c->op) != 2)
			_exit(4);
		if (!strcmp(c->op, "quit")) {
			free(c);
			break;
		}
		if (!strcmp(c->op, "unlock") || !strcmp(c->op, "down") ||
		    !strcmp(c->op, "check") || !strcmp(c->op, "write")) {
			sscanf(line, "%*d %*s %d", &c->ref);
		} else {
			sscanf(line, "%*d %*s %8199s %llu %llu %d", hex, &c->start, &c->end,
			       &c->wait_ms);
			c->name_len = strlen(hex) / 2;
			for (size_t i = 0; i < c->name_len; i++) {
				unsigned v;
				sscanf(hex + 2 * i, "%2x", &v);
				c->name[i] = (char)v;
			}
		}
		pthread_t t;
		pthread_create(&t, NULL, run_cmd, c);
		pthread_detach(t);
	}
	/* quit: everything still held is let go, then the client */
	pthread_mutex_lock(&table_mu);
	for (int i = 0; i < NODE_MAX_IDS; i++)
		if (ranges[i])
			rangelock_etcd_unlock(objs[i], ranges[i]);
	for (int i = 0; i < NODE_MAX_IDS; i++)
		if (objs[i] && rangelock_etcd_object_close(objs[i]))
			_exit(6);
	pthread_mutex_unlock(&table_mu);
	rc = rangelock_etcd_close(client);
	_exit(rc ? 5 : 0);
}

/* ---- the parent --------------------------------------------------------- */

void node_start(struct node *n, const char *endpoints, unsigned ttl_ms,
		unsigned flags)
{
	int to[2], from[2];
	memset(n, 0, sizeof(*n));
	if (pipe(to) || pipe(from)) {
		perror("pipe");
		exit(1);
	}
	fflush(NULL);
	n->pid = fork();
	if (n->pid == 0) {
		close(to[1]);
		close(from[0]);
		reply_fd = from[1];
		child_main(to[0], endpoints, ttl_ms, flags);
	}
	close(to[0]);
	close(from[1]);
	n->to = to[1];
	n->from = from[0];
	n->next_id = 1;
	uint64_t token;
	int rc = node_result(n, 0, 15000, &token);
	if (rc != 0) {
		fprintf(stderr, "node: connect failed: %d\n", rc);
		exit(1);
	}
}

static int send_line(struct node *n, const char *fmt, ...)
{
	char line[9000];
	va_list ap;
	int id = n->next_id++;
	int k = snprintf(line, sizeof(line), "%d ", id);
	va_start(ap, fmt);
	k += vsnprintf(line + k, sizeof(line) - (size_t)k, fmt, ap);
	va_end(ap);
	line[k++] = '\n';
	if (write(n->to, line, (size_t)k) != k) {
		perror("node: write");
		exit(1);
	}
	return id;
}

int node_lock(struct node *n, const char *op, const char *object,
	      uint64_t start, uint64_t end, int wait_ms)
{
	char hex[8200];
	size_t len = strlen(object);
	for (size_t i = 0; i < len && i < 4096; i++)
		sprintf(hex + 2 * i, "%02x", (unsigned char)object[i]);
	hex[2 * len] = 0;
	return send_line(n, "%s %s %llu %llu %d", op, hex, (unsigned long long)start,
			 (unsigned long long)end, wait_ms);
}

int node_work(struct node *n, const char *object, int seconds, int seed,
	      int threads)
{
	return node_lock(n, "work", object, (uint64_t)seconds, (uint64_t)seed, threads);
}

int node_on(struct node *n, const char *op, int id)
{
	return send_line(n, "%s %d", op, id);
}

/* A reply for id among those read: take it out. */
static int take(struct node *n, int id, int *rc, uint64_t *token)
{
	char *p = n->pending;
	while (p < n->pending + n->plen) {
		char *nl = memchr(p, '\n', (size_t)(n->pending + n->plen - p));
		if (!nl)
			break;
		int rid, r;
		unsigned long long tok;
		if (sscanf(p, "%d %d %llu", &rid, &r, &tok) == 3 && rid == id) {
			*rc = r;
			if (token)
				*token = tok;
			memmove(p, nl + 1, (size_t)(n->pending + n->plen - nl - 1));
			n->plen -= (size_t)(nl + 1 - p);
			return 1;
		}
		p = nl + 1;
	}
	return 0;
}

int node_result(struct node *n, int id, int timeout_ms, uint64_t *token)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int rc;
		if (take(n, id, &rc, token))
			return rc;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000 +
					  (t.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd p = { .fd = n->from, .events = POLLIN };
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return NODE_PENDING;
		ssize_t k = read(n->from, n->pending + n->plen,
				 sizeof(n->pending) - n->plen - 1);
		if (k <= 0)
			return NODE_PENDING; /* the node is gone */
		n->plen += (size_t)k;
	}
}

void node_stop(struct node *n)
{
	send_line(n, "quit");
	int status = 0;
	waitpid(n->pid, &status, 0);
	close(n->to);
	close(n->from);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "node %d did not stop cleanly (status %d)\n",
			(int)n->pid, status);
		exit(1);
	}
}

void node_kill(struct node *n)
{
	kill(n->pid, SIGKILL);
	waitpid(n->pid, NULL, 0);
	close(n->to);
	close(n->from);
}

void node_pause(struct node *n)
{
	kill(n->pid, SIGSTOP);
}

void node_resume(struct node *n)
{
	kill(n->pid, SIGCONT);
}

static int count_one(const struct rangelock_etcd_entry *e, void *arg)
{
	(void)e;
	++*(int *)arg;
	return 0;
}

int count_requests(rangelock_etcd_t *c, const void *name, size_t len)
{
	int n = 0, rc = rangelock_etcd_list(c, name, len, count_one, &n);
	return rc ? -rc : n;
}
