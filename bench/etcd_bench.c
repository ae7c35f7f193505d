/* SPDX-License-Identifier: MIT */
/*
 * rlbench-etcd - librangelock-etcd against etcd itself, side by side in one
 * run: the bare transaction and delete, an uncontended acquire and release,
 * a re-lock of a cached range, a hand-off between clients, N processes on
 * disjoint ranges against etcd's own lock recipe (one key, FIFO by create
 * revision, waiting on a watch of the key before), and a holder killed.
 *
 *   rlbench-etcd [--quick] [--seconds S] [--clients N,N,...] [--kills K]
 *
 * etcd: $RANGELOCK_ETCD_ENDPOINTS (the first endpoint is used for the bare
 * requests).  `make etcd-bench` starts a member of its own on tmpfs.
 * Every figure is a median over its samples; ratios are of figures of this
 * one run.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rangelock_etcd.h"

static char url[256];

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[n / 2];
}

static void die(const char *what, int err)
{
	fprintf(stderr, "rlbench-etcd: %s: %s\n", what, strerror(err));
	exit(1);
}

/* ---- etcd, bare: the same gateway, one kept-alive connection ------------ */

struct reply {
	char buf[8192];
	size_t len;
	int (*line)(struct reply *r); /* a stream's reader: nonzero ends it */
	const char *want;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	size_t k = size * n;
	if (r->len + k >= sizeof(r->buf))
		r->len = 0; /* only the newest reply matters */
	memcpy(r->buf + r->len, p, k < sizeof(r->buf) - 1 ? k : sizeof(r->buf) - 1);
	r->len += k < sizeof(r->buf) - 1 ? k : sizeof(r->buf) - 1;
	r->buf[r->len] = 0;
	if (r->want && strstr(r->buf, r->want))
		return 0; /* seen: end the stream */
	return size * n;
}

static void post(CURL *h, const char *path, const char *body, struct reply *r)
{
	char target[512];
	snprintf(target, sizeof(target), "%s%s", url, path);
	r->len = 0;
	r->buf[0] = 0;
	curl_easy_setopt(h, CURLOPT_URL, target);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(h);
	if (rc != CURLE_OK && !(r->want && rc == CURLE_WRITE_ERROR)) {
		fprintf(stderr, "rlbench-etcd: %s: %s\n", target, curl_easy_strerror(rc));
		exit(1);
	}
}

static void b64(const char *in, char *out)
{
	static const char t[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = 0;
}

static unsigned long long field(const char *json, const char *name)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":\"", name);
	const char *p = strstr(json, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* The bare transaction (one put), the bare delete, and the transaction
 * an acquire makes (a put with a lease, and a range), n times each. */
static void bare(int n, double *txn_us, double *del_us, double *ours_us)
{
	CURL *h = curl_easy_init();
	double *t = malloc((size_t)n * sizeof(*t)), *d = malloc((size_t)n * sizeof(*d));
	double *o = malloc((size_t)n * sizeof(*o));
	struct reply r = { 0 };
	post(h, "/v3/lease/grant", "{\"TTL\":10}", &r);
	unsigned long long lease = field(r.buf, "ID");
	for (int i = 0; i < n; i++) {
		char key[64], k64[128], body[512], p64[64], e64[64];
		snprintf(key, sizeof(key), "bench-bare/%d", i);
		b64(key, k64);
		b64("bench-bare/", p64);
		b64("bench-bare0", e64);
		snprintf(body, sizeof(body), "{\"success\":[{\"requestPut\":{\"key\":\"%s\","
			 "\"value\":\"eA==\",\"lease\":\"%llu\"}},{\"requestRange\":{\"key\":\"%s\","
			 "\"range_end\":\"%s\"}}]}", k64, lease, p64, e64);
		double t0 = now();
		post(h, "/v3/kv/txn", body, &r);
		o[i] = (now() - t0) * 1e6;
		snprintf(body, sizeof(body), "{\"key\":\"%s\"}", k64);
		post(h, "/v3/kv/deleterange", body, &r);
		snprintf(body, sizeof(body), "{\"success\":[{\"requestPut\":{\"key\":\"%s\","
			 "\"value\":\"eA==\"}}]}", k64);
		t0 = now();
		post(h, "/v3/kv/txn", body, &r);
		t[i] = (now() - t0) * 1e6;
		snprintf(body, sizeof(body), "{\"key\":\"%s\"}", k64);
		t0 = now();
		post(h, "/v3/kv/deleterange", body, &r);
		d[i] = (now() - t0) * 1e6;
	}
	*txn_us = median(t, n);
	*del_us = median(d, n);
	*ours_us = median(o, n);
	free(t);
	free(d);
	free(o);
	curl_easy_cleanup(h);
}

/* ---- etcd's own lock recipe (client/v3/concurrency, Mutex) --------------- */

struct recipe {
	CURL *h, *w;
	unsigned long long lease;
	char key[128], k64[192], p64[128], e64[128];
	struct reply r;
};

static void recipe_init(struct recipe *m, const char *prefix, int id)
{
	memset(m, 0, sizeof(*m)); /* r.want: no stream to end yet */
	m->h = curl_easy_init();
	m->w = curl_easy_init();
	post(m->h, "/v3/lease/grant", "{\"TTL\":10}", &m->r);
	m->lease = field(m->r.buf, "ID");
	snprintf(m->key, sizeof(m->key), "%s/%llx-%d", prefix, m->lease, id);
	b64(m->key, m->k64);
	char p[128], e[128];
	snprintf(p, sizeof(p), "%s/", prefix);
	snprintf(e, sizeof(e), "%s0", prefix);
	b64(p, m->p64);
	b64(e, m->e64);
}

/* Lock: put our key, find the owner (lowest create revision); until it is
 * ours, wait on a watch for the deletion of the key just before ours. */
static void recipe_lock(struct recipe *m)
{
	char body[1024];
	snprintf(body, sizeof(body),
		 "{\"success\":[{\"requestPut\":{\"key\":\"%s\",\"value\":\"\","
		 "\"lease\":\"%llu\"}}]}", m->k64, m->lease);
	post(m->h, "/v3/kv/txn", body, &m->r);
	unsigned long long mine = field(m->r.buf, "revision");
	for (;;) {
		/* the newest key created before ours */
		snprintf(body, sizeof(body),
			 "{\"key\":\"%s\",\"range_end\":\"%s\",\"sort_order\":\"DESCEND\","
			 "\"sort_target\":\"CREATE\",\"limit\":1,\"max_create_revision\":\"%llu\","
			 "\"keys_only\":true}", m->p64, m->e64, mine - 1);
		post(m->h, "/v3/kv/range", body, &m->r);
		const char *k = strstr(m->r.buf, "\"key\":\"");
		if (!k)
			return; /* nobody before us: the lock is ours */
		char prev[256];
		snprintf(prev, sizeof(prev), "%.*s", (int)strcspn(k + 7, "\""), k + 7);
		unsigned long long rev = field(m->r.buf, "revision");
		snprintf(body, sizeof(body), "{\"create_request\":{\"key\":\"%s\","
			 "\"start_revision\":\"%llu\"}}", prev, rev + 1);
		m->r.want = "\"DELETE\"";
		post(m->w, "/v3/watch", body, &m->r);
		m->r.want = NULL;
	}
}

static void recipe_unlock(struct recipe *m)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"key\":\"%s\"}", m->k64);
	post(m->h, "/v3/kv/deleterange", body, &m->r);
}

/* ---- the measurements ---------------------------------------------------- */

static rangelock_etcd_t *connect_client(unsigned flags, unsigned ttl_ms)
{
	struct rangelock_etcd_options o = { .flags = flags, .ttl_ms = ttl_ms,
					    .prefix = "rlbench-etcd/" };
	rangelock_etcd_t *c;
	int err = rangelock_etcd_connect(&c, &o);
	if (err)
		die("connect", err);
	return c;
}

static rangelock_etcd_object_t *open_object(rangelock_etcd_t *c, const char *name)
{
	rangelock_etcd_object_t *o;
	int err = rangelock_etcd_open(c, name, strlen(name), &o);
	if (err)
		die("open", err);
	return o;
}

/* Uncontended, not cached: each lock a request, each unlock a delete. */
static void uncontended(int n, double *lock_us, double *unlock_us)
{
	rangelock_etcd_t *c = connect_client(RANGELOCK_ETCD_NOCACHE, 0);
	rangelock_etcd_object_t *o = open_object(c, "uncontended");
	double *l = malloc((size_t)n * sizeof(*l)), *u = malloc((size_t)n * sizeof(*u));
	for (int i = 0; i < n; i++) {
		rangelock_etcd_range_t r;
		uint64_t start = (uint64_t)i * 4096;
		double t0 = now();
		int err = rangelock_etcd_wrlock(o, &r, start, start + 4096);
		l[i] = (now() - t0) * 1e6;
		if (err)
			die("wrlock", err);
		t0 = now();
		rangelock_etcd_unlock(o, &r);
		u[i] = (now() - t0) * 1e6;
	}
	*lock_us = median(l, n);
	*unlock_us = median(u, n);
	free(l);
	free(u);
	rangelock_etcd_object_close(o);
	rangelock_etcd_close(c);
}

/* A cached range locked and unlocked again: ns per lock, and per pair. */
static void cached(int n, double *lock_ns, double *pair_ns)
{
	rangelock_etcd_t *c = connect_client(0, 0);
	rangelock_etcd_object_t *o = open_object(c, "cached");
	rangelock_etcd_range_t r;
	rangelock_etcd_wrlock(o, &r, 0, 1 << 20);
	rangelock_etcd_unlock(o, &r);
	double locks = 0, t0 = now();
	for (int i = 0; i < n; i++) {
		double t1 = now();
		int err = rangelock_etcd_rdlock(o, &r, 4096, 8192);
		locks += now() - t1;
		if (err)
			die("rdlock", err);
		rangelock_etcd_unlock(o, &r);
	}
	*pair_ns = (now() - t0) / n * 1e9;
	*lock_ns = locks / n * 1e9;
	rangelock_etcd_object_close(o);
	rangelock_etcd_close(c);
}

/* Release on one client -> grant on a waiting one (another process). */
static double handoff(int runs)
{
	int go[2], done[2];
	if (pipe(go) || pipe(done))
		die("pipe", errno);
	pid_t pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(done[0]);
		rangelock_etcd_t *c = connect_client(RANGELOCK_ETCD_NOCACHE, 0);
		rangelock_etcd_object_t *o = open_object(c, "handoff");
		char b;
		while (read(go[0], &b, 1) == 1) {
			rangelock_etcd_range_t r;
			rangelock_etcd_wrlock(o, &r, 0, 4096);
			double t = now();
			rangelock_etcd_unlock(o, &r);
			if (write(done[1], &t, sizeof(t)) != sizeof(t))
				_exit(1);
		}
		rangelock_etcd_object_close(o);
		rangelock_etcd_close(c);
		_exit(0);
	}
	close(go[0]);
	close(done[1]);
	rangelock_etcd_t *c = connect_client(RANGELOCK_ETCD_NOCACHE, 0);
	rangelock_etcd_object_t *o = open_object(c, "handoff");
	double *v = malloc((size_t)runs * sizeof(*v));
	for (int i = 0; i < runs; i++) {
		rangelock_etcd_range_t r;
		rangelock_etcd_wrlock(o, &r, 0, 4096);
		if (write(go[1], "g", 1) != 1)
			die("write", errno);
		usleep(50000); /* the other's request is queued */
		double t0 = now();
		rangelock_etcd_unlock(o, &r);
		double granted;
		if (read(done[0], &granted, sizeof(granted)) != sizeof(granted))
			die("read", errno);
		v[i] = (granted - t0) * 1e6;
	}
	close(go[1]);
	close(done[0]);
	waitpid(pid, NULL, 0);
	rangelock_etcd_object_close(o);
	rangelock_etcd_close(c);
	double m = median(v, runs);
	free(v);
	return m;
}

enum contender { RECIPE, OURS_NOT_CACHED, OURS_CACHED };

/* n processes, each locking and unlocking for seconds: the total rate.
 * ours: a range of its own each, cached (the default: after the first
 * request every re-lock is local) or not (two etcd writes a lock); else
 * etcd's lock recipe on one key. */
static double scale(int n, double seconds, enum contender who)
{
	bool ours = who != RECIPE;
	int p[2], res[2];
	if (pipe(p) || pipe(res))
		die("pipe", errno);
	static int round;
	char name[64];
	snprintf(name, sizeof(name), "rlbench-etcd-recipe/%d-%d", (int)getpid(), ++round);
	for (int i = 0; i < n; i++) {
		if (fork() == 0) {
			char b;
			rangelock_etcd_t *c = NULL;
			rangelock_etcd_object_t *o = NULL;
			struct recipe m;
			if (ours) {
				c = connect_client(who == OURS_CACHED ? 0 : RANGELOCK_ETCD_NOCACHE, 0);
				o = open_object(c, "scale");
			} else {
				recipe_init(&m, name, i);
			}
			if (read(p[0], &b, 1) != 1)
				_exit(1);
			double until = now() + seconds;
			long count = 0;
			while (now() < until) {
				if (ours) {
					rangelock_etcd_range_t r;
					uint64_t s = (uint64_t)i << 20;
					if (rangelock_etcd_wrlock(o, &r, s, s + 4096))
						_exit(1);
					rangelock_etcd_unlock(o, &r);
				} else {
					recipe_lock(&m);
					recipe_unlock(&m);
				}
				count++;
			}
			if (write(res[1], &count, sizeof(count)) != sizeof(count))
				_exit(1);
			if (ours) {
				rangelock_etcd_object_close(o);
				rangelock_etcd_close(c);
			}
			_exit(0);
		}
	}
	close(res[1]); /* a worker that dies unheard of ends the read below */
	usleep(300000 + 20000 * (useconds_t)n); /* all connected */
	for (int i = 0; i < n; i++)
		if (write(p[1], "g", 1) != 1)
			die("write", errno);
	long total = 0;
	for (int i = 0; i < n; i++) {
		long count;
		if (read(res[0], &count, sizeof(count)) != sizeof(count))
			die("a worker failed", EIO);
		total += count;
	}
	while (wait(NULL) > 0)
		;
	close(p[0]);
	close(p[1]);
	close(res[0]);
	return (double)total / seconds;
}

/* A holder killed: seconds until a waiter (another process) is granted. */
static double killed(unsigned ttl_ms)
{
	int ready[2];
	if (pipe(ready))
		die("pipe", errno);
	pid_t holder = fork();
	if (holder == 0) {
		rangelock_etcd_t *c = connect_client(0, ttl_ms);
		rangelock_etcd_object_t *o = open_object(c, "killed");
		rangelock_etcd_range_t r;
		rangelock_etcd_wrlock(o, &r, 0, 4096);
		if (write(ready[1], "h", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char b;
	if (read(ready[0], &b, 1) != 1)
		die("holder", EIO);
	rangelock_etcd_t *c = connect_client(0, ttl_ms);
	rangelock_etcd_object_t *o = open_object(c, "killed");
	usleep(200000);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	double t0 = now();
	rangelock_etcd_range_t r;
	rangelock_etcd_wrlock(o, &r, 0, 4096);
	double t = now() - t0;
	rangelock_etcd_unlock(o, &r);
	rangelock_etcd_object_close(o);
	rangelock_etcd_close(c);
	close(ready[0]);
	close(ready[1]);
	return t;
}

static void usage(void)
{
	printf("usage: rlbench-etcd [--quick] [--seconds S] [--clients N,N,...] "
	       "[--kills K]\n"
	       "  --quick         fewer samples (as make etcd-bench runs it)\n"
	       "  --seconds S     each scaling run's length (default 2)\n"
	       "  --clients LIST  process counts to scale over (default 2,8,32)\n"
	       "  --kills K       holders killed for the distribution (default 3)\n"
	       "etcd: $RANGELOCK_ETCD_ENDPOINTS (default http://127.0.0.1:2379)\n");
	exit(0);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "seconds", required_argument, NULL, 's' },
		{ "clients", required_argument, NULL, 'c' },
		{ "kills", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 } };
	int quick = 0, kills = 3, clients[8] = { 2, 8, 32 }, nclients = 3, opt;
	double seconds = 2;
	cli_init("rlbench-etcd");
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'q': quick = 1; break;
		case 's': seconds = cli_decimal("--seconds", optarg, 0, 600); break;
		case 'k': kills = (int)cli_integer("--kills", optarg, 0, 100); break;
		case 'c':
			nclients = 0;
			for (char *t = strtok(optarg, ","); t && nclients < 8; t = strtok(NULL, ","))
				clients[nclients++] = (int)cli_integer("--clients", t, 1, 64);
			break;
		case 'h': usage(); break;
		case 'V': cli_version(NULL);
		default: cli_getopt_failed();
		}
	}
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	const char *ep = getenv("RANGELOCK_ETCD_ENDPOINTS");
	snprintf(url, sizeof(url), "%.*s", (int)strcspn(ep && *ep ? ep : RANGELOCK_ETCD_ENDPOINTS, ","),
		 ep && *ep ? ep : RANGELOCK_ETCD_ENDPOINTS);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int n = quick ? 100 : 400;

	double txn, del, txn2, lock, unlock, lock_ns, pair_ns;
	bare(n, &txn, &del, &txn2);
	uncontended(n, &lock, &unlock);
	cached(quick ? 20000 : 100000, &lock_ns, &pair_ns);
	double hand = handoff(quick ? 10 : 30);
	printf("rlbench-etcd: etcd at %s, medians of %d samples\n\n", url, n);
	printf("%-44s %10s %10s %s\n", "", "measured", "ratio", "target");
	printf("%-44s %8.0f us\n", "bare etcd transaction (one put)", txn);
	printf("%-44s %8.0f us\n", "bare etcd delete", del);
	printf("%-44s %8.0f us %9.2fx\n", "bare put with a lease + range, one txn", txn2,
	       txn2 / txn);
	printf("%-44s %8.0f us %9.2fx %s\n", "acquire, uncontended, not cached", lock,
	       lock / txn, "<= 1.2x the transaction");
	printf("%-44s %8.0f us %9.2fx %s\n", "release, not cached", unlock, unlock / del,
	       "<= 1.2x the delete");
	printf("%-44s %8.2f us %10s %s\n", "re-lock of a cached range (lock only)",
	       lock_ns / 1000, "", "<= 2 us");
	printf("%-44s %8.2f us\n", "re-lock + unlock of a cached range", pair_ns / 1000);
	printf("%-44s %8.0f us %9.2fx %s\n", "hand-off: release -> grant elsewhere", hand,
	       hand / txn, "<= 2 transactions + a watch delivery");
	for (int i = 0; i < nclients; i++) {
		double ours = scale(clients[i], seconds, OURS_NOT_CACHED);
		double cached = scale(clients[i], seconds, OURS_CACHED);
		double theirs = scale(clients[i], seconds, RECIPE);
		char name[64], target[64];
		snprintf(name, sizeof(name), "%d processes: ours, disjoint, not cached", clients[i]);
		snprintf(target, sizeof(target), ">= %.1fx etcd's lock (N/2)", clients[i] / 2.0);
		printf("%-44s %7.0f /s %9.2fx %s\n", name, ours, ours / theirs, target);
		snprintf(name, sizeof(name), "%d processes: ours, disjoint, cached", clients[i]);
		printf("%-44s %6.1f M/s %8.0fx %s\n", name, cached / 1e6, cached / theirs,
		       "(the default)");
		snprintf(name, sizeof(name), "%d processes: etcd's lock recipe, one key",
			 clients[i]);
		printf("%-44s %7.0f /s\n", name, theirs);
	}
	if (kills > 0) {
		double *k = malloc((size_t)kills * sizeof(*k));
		for (int i = 0; i < kills; i++)
			k[i] = killed(2000);
		double med = median(k, kills);
		printf("%-44s %8.2f s  min %.2f max %.2f  %s\n",
		       "holder killed -> waiter granted (TTL 2 s)", med, k[0], k[kills - 1],
		       "<= TTL + 1 s");
		free(k);
	}
	return 0;
}
