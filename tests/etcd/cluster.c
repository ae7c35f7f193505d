/* SPDX-License-Identifier: MIT */
/*
 * cluster.c - etcd members for the tests (cluster.h).  It speaks to them
 * with curl(1)'s library only to ask who leads and to compact; the tests
 * themselves use librangelock-etcd.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) < 0) {
		perror("free_port");
		exit(1);
	}
	close(s);
	return ntohs(a.sin_port);
}

static const char *etcd_binary(void)
{
	const char *e = getenv("ETCD");
	if (e && *e)
		return e;
	if (access("/usr/bin/etcd", X_OK) == 0)
		return "/usr/bin/etcd";
	const char *req = getenv("RANGELOCK_ETCD_TESTS_REQUIRED");
	if (req && strcmp(req, "1") == 0) {
		fprintf(stderr, "etcd not found (apt-get install etcd-server), "
				"and RANGELOCK_ETCD_TESTS_REQUIRED=1\n");
		exit(1);
	}
	printf("1..0 # SKIP etcd not found (apt-get install etcd-server)\n");
	exit(77);
}

struct reply {
	char buf[4096];
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	size_t k = size * n;
	if (r->len + k >= sizeof(r->buf))
		k = sizeof(r->buf) - 1 - r->len;
	memcpy(r->buf + r->len, p, k);
	r->len += k;
	r->buf[r->len] = 0;
	return size * n;
}

/* POST body to member i; 0 and the reply, or -1. */
static int post(struct cluster *c, int i, const char *path, const char *body,
		struct reply *r)
{
	char url[128];
	snprintf(url, sizeof(url), "%s%s", c->url[i], path);
	CURL *h = curl_easy_init();
	r->len = 0;
	r->buf[0] = 0;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	return rc == CURLE_OK && status == 200 ? 0 : -1;
}

static void spawn(struct cluster *c, int i, const char *state)
{
	char name[16], data[300], client[64], peer[64], initial[CLUSTER_MAX * 64] = "",
		log[300], token[64];
	snprintf(name, sizeof(name), "m%d", i);
	snprintf(data, sizeof(data), "%s/%s", c->dir, name);
	snprintf(log, sizeof(log), "%s/%s.log", c->dir, name);
	snprintf(client, sizeof(client), "http://127.0.0.1:%d", c->client_port[i]);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", c->peer_port[i]);
	snprintf(token, sizeof(token), "rl-test-%d", (int)getpid());
	for (int k = 0; k < c->n; k++)
		snprintf(initial + strlen(initial), sizeof(initial) - strlen(initial),
			 "%sm%d=http://127.0.0.1:%d", k ? "," : "", k, c->peer_port[k]);
	const char *bin = etcd_binary();
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* a test killed (a timeout, a crash) takes its members along;
		 * the members are forked by the test's main thread */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setpgid(0, 0); /* a test's ^C reaches the test, which stops us */
		execl(bin, bin, "--name", name, "--data-dir", data,
		      "--listen-client-urls", client, "--advertise-client-urls", client,
		      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		      "--initial-cluster", initial, "--initial-cluster-state", state,
		      "--initial-cluster-token", token,
		      "--heartbeat-interval", "50", "--election-timeout", "500",
		      (char *)NULL);
		_exit(127);
	}
	c->pid[i] = pid;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int cluster_leader(struct cluster *c)
{
	long long until = now_ms() + 10000;
	while (now_ms() < until) {
		for (int i = 0; i < c->n; i++) {
			struct reply r;
			if (!c->pid[i] || post(c, i, "/v3/maintenance/status", "{}", &r))
				continue;
			const char *m = strstr(r.buf, "\"member_id\":\"");
			const char *l = strstr(r.buf, "\"leader\":\"");
			if (m && l && strtoull(m + 13, NULL, 10) == strtoull(l + 10, NULL, 10) &&
			    strtoull(l + 10, NULL, 10) != 0)
				return i;
		}
		usleep(50000);
	}
	return -1;
}

void cluster_start(struct cluster *c, int n)
{
	memset(c, 0, sizeof(*c));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	etcd_binary();
	c->n = n;
	snprintf(c->dir, sizeof(c->dir), "/dev/shm/rl-etcd-test-XXXXXX");
	if (!mkdtemp(c->dir))
		snprintf(c->dir, sizeof(c->dir), "/tmp/rl-etcd-test-%d", (int)getpid()),
		mkdir(c->dir, 0700);
	for (int i = 0; i < n; i++) {
		c->client_port[i] = free_port();
		c->peer_port[i] = free_port();
		snprintf(c->url[i], sizeof(c->url[i]), "http://127.0.0.1:%d", c->client_port[i]);
		snprintf(c->endpoints + strlen(c->endpoints),
			 sizeof(c->endpoints) - strlen(c->endpoints), "%s%s", i ? "," : "",
			 c->url[i]);
	}
	for (int i = 0; i < n; i++)
		spawn(c, i, "new");
	if (cluster_leader(c) < 0) {
		fprintf(stderr, "etcd: no leader within 10 s (logs in %s)\n", c->dir);
		cluster_stop(c);
		exit(1);
	}
	/* every member answers, not only the leader */
	for (int i = 0; i < n; i++) {
		struct reply r;
		long long until = now_ms() + 10000;
		while (post(c, i, "/v3/kv/range", "{\"key\":\"eA==\"}", &r) && now_ms() < until)
			usleep(50000);
	}
}

void cluster_stop(struct cluster *c)
{
	for (int i = 0; i < c->n; i++)
		if (c->pid[i]) {
			kill(c->pid[i], SIGCONT);
			kill(c->pid[i], SIGKILL);
			waitpid(c->pid[i], NULL, 0);
			c->pid[i] = 0;
		}
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", c->dir);
}

void cluster_kill(struct cluster *c, int i)
{
	kill(c->pid[i], SIGKILL);
	waitpid(c->pid[i], NULL, 0);
	c->pid[i] = 0;
}

void cluster_restart(struct cluster *c, int i)
{
	spawn(c, i, "existing");
}

void cluster_pause(struct cluster *c, int i)
{
	kill(c->pid[i], SIGSTOP);
}

void cluster_resume(struct cluster *c, int i)
{
	kill(c->pid[i], SIGCONT);
}

void cluster_compact(struct cluster *c, int i)
{
	struct reply r;
	if (post(c, i, "/v3/kv/range", "{\"key\":\"eA==\"}", &r) == 0) {
		const char *rev = strstr(r.buf, "\"revision\":\"");
		char body[96];
		snprintf(body, sizeof(body), "{\"revision\":\"%llu\",\"physical\":true}",
			 rev ? strtoull(rev + 12, NULL, 10) : 0ULL);
		post(c, i, "/v3/kv/compaction", body, &r);
	}
}

const char *cluster_endpoints_from(struct cluster *c, int i, char *buf, size_t len)
{
	buf[0] = 0;
	for (int k = 0; k < c->n; k++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", k ? "," : "",
			 c->url[(i + k) % c->n]);
	return buf;
}
