/* SPDX-License-Identifier: MIT */
/* hold_proxy.c - the holding proxy of the tests (hold_proxy.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "hold_proxy.h"

static int connect_member(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Read one request (headers, then Content-Length bytes of body) into a
 * malloc'd buffer, rewritten for the member: HTTP/1.0 (it closes after
 * the reply, so a relay ends with it) and no Expect (answered here). */
static char *read_request(int fd, size_t *len, char *path, size_t pathlen)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap), *body = NULL;
	while (buf && !body && n < cap - 1) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = 0;
		body = strstr(buf, "\r\n\r\n");
	}
	if (!body) {
		free(buf);
		return NULL;
	}
	body += 4;
	size_t hlen = (size_t)(body - buf), clen = 0;
	for (char *h = buf; h && h < body; h = strstr(h, "\r\n"), h = h ? h + 2 : NULL)
		if (strncasecmp(h, "Content-Length:", 15) == 0)
			clen = strtoul(h + 15, NULL, 10);
	char *expect = strcasestr(buf, "\r\nExpect: 100-continue");
	if (expect && expect < body) {
		write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		memset(expect + 2, ' ', 20); /* "Expect: 100-continue" blanked */
		memcpy(expect + 2, "X-Expect:", 9);
	}
	while (n < hlen + clen && n < cap - 1) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	char *v = strstr(buf, " HTTP/1.1\r\n");
	if (v && v < body)
		v[8] = '0';
	sscanf(buf, "%*s %255s", path);
	path[pathlen - 1] = 0;
	*len = n;
	return buf;
}

struct conn {
	struct hold_proxy *p;
	int fd;
};

static void *serve(void *arg)
{
	struct conn *c = arg;
	struct hold_proxy *p = c->p;
	char path[256];
	size_t len;
	char *req = read_request(c->fd, &len, path, sizeof(path));
	bool held = false;
	pthread_mutex_lock(&p->mu);
	if (req && p->hold_path && strcmp(path, p->hold_path) == 0 && !p->held) {
		p->held = req; /* never answered: the client gives up on it */
		p->held_len = len;
		p->hold_path = NULL;
		held = true;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	int m = req && !held ? connect_member(p->target_port) : -1;
	if (m >= 0 && write_all(m, req, len)) {
		/* relay the answer (a stream too) until either side closes */
		struct pollfd fds[2] = { { m, POLLIN, 0 }, { c->fd, POLLIN, 0 } };
		char buf[16384];
		for (;;) {
			pthread_mutex_lock(&p->mu);
			bool stop = p->stopping;
			pthread_mutex_unlock(&p->mu);
			if (stop || poll(fds, 2, 100) < 0)
				break;
			if (fds[1].revents) /* the client closed (or wrote: not HTTP) */
				break;
			if (fds[0].revents) {
				ssize_t r = read(m, buf, sizeof(buf));
				if (r <= 0 || !write_all(c->fd, buf, (size_t)r))
					break;
			}
		}
	}
	if (m >= 0)
		close(m);
	if (!held)
		free(req);
	close(c->fd);
	pthread_mutex_lock(&p->mu);
	p->active--;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	free(c);
	return NULL;
}

static void *accept_loop(void *arg)
{
	struct hold_proxy *p = arg;
	for (;;) {
		struct pollfd pf = { p->listen_fd, POLLIN, 0 };
		int r = poll(&pf, 1, 100);
		pthread_mutex_lock(&p->mu);
		bool stop = p->stopping;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			return NULL;
		if (r <= 0)
			continue;
		int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		struct conn *c = fd >= 0 ? malloc(sizeof(*c)) : NULL;
		if (!c) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		*c = (struct conn){ p, fd };
		pthread_mutex_lock(&p->mu);
		p->active++;
		pthread_mutex_unlock(&p->mu);
		pthread_t t;
		if (pthread_create(&t, NULL, serve, c) == 0) {
			pthread_detach(t);
		} else {
			close(fd);
			free(c);
			pthread_mutex_lock(&p->mu);
			p->active--;
			pthread_mutex_unlock(&p->mu);
		}
	}
}

void hold_proxy_start(struct hold_proxy *p, int target_port)
{
	memset(p, 0, sizeof(*p));
	p->target_port = target_port;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* t_deadline_ms's clock */
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	CHECK(p->listen_fd >= 0);
	CHECK(bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(listen(p->listen_fd, 64) == 0);
	CHECK(getsockname(p->listen_fd, (struct sockaddr *)&a, &al) == 0);
	p->port = ntohs(a.sin_port);
	CHECK(pthread_create(&p->acceptor, NULL, accept_loop, p) == 0);
}

void hold_proxy_hold(struct hold_proxy *p, const char *path)
{
	pthread_mutex_lock(&p->mu);
	p->hold_path = path;
	pthread_mutex_unlock(&p->mu);
}

int hold_proxy_wait_held(struct hold_proxy *p, int ms)
{
	struct timespec until = t_deadline_ms(ms);
	pthread_mutex_lock(&p->mu);
	while (!p->held && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
		;
	int rc = p->held ? 0 : -1;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

int hold_proxy_deliver(struct hold_proxy *p)
{
	pthread_mutex_lock(&p->mu);
	char *req = p->held;
	size_t len = p->held_len;
	p->held = NULL;
	pthread_mutex_unlock(&p->mu);
	int m = req ? connect_member(p->target_port) : -1;
	int status = -1;
	char reply[4096];
	size_t n = 0;
	if (m >= 0 && write_all(m, req, len)) {
		ssize_t r;
		while (n < sizeof(reply) - 1 && (r = read(m, reply + n, sizeof(reply) - 1 - n)) > 0)
			n += (size_t)r;
		reply[n] = 0;
		if (sscanf(reply, "HTTP/%*s %d", &status) != 1)
			status = -1;
	}
	if (m >= 0)
		close(m);
	free(req);
	return status;
}

void hold_proxy_stop(struct hold_proxy *p)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	while (p->active)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->acceptor, NULL);
	close(p->listen_fd);
	free(p->held);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
}
