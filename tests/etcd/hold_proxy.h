/* SPDX-License-Identifier: MIT */
/*
 * hold_proxy.h - an HTTP proxy in front of one etcd member that can hold
 * one request unanswered and deliver it later: the client gives up on it,
 * and etcd applies it after the client has moved on, as a proposal taken
 * by a failing leader may be.  Each request gets its own connection to
 * the member (HTTP/1.0), so streams (the watch) pass through as well.
 */
#ifndef RL_TEST_HOLD_PROXY_H
#define RL_TEST_HOLD_PROXY_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct hold_proxy {
	int listen_fd, port, target_port;
	pthread_t acceptor;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	int active;             /* connections being served */
	const char *hold_path;  /* the next request to this path is held */
	char *held;             /* that request, once it came */
	size_t held_len;
};

/* Listen on a free loopback port (p->port) for the member at target_port. */
void hold_proxy_start(struct hold_proxy *p, int target_port);
/* Hold the next request whose path is path (e.g. "/v3/kv/txn"). */
void hold_proxy_hold(struct hold_proxy *p, const char *path);
/* Wait up to ms for the held request to have come: 0, or -1. */
int hold_proxy_wait_held(struct hold_proxy *p, int ms);
/* Deliver the held request to the member now and wait for its answer:
 * the HTTP status, or -1. */
int hold_proxy_deliver(struct hold_proxy *p);
void hold_proxy_stop(struct hold_proxy *p);
#endif
