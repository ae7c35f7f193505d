/* SPDX-License-Identifier: MIT */
/*
 * node.h - a process standing for a machine: it connects its own client to
 * etcd and makes the lock calls the test sends it, each in a thread of its
 * own, so that a test can build exact queues across "machines" and kill,
 * pause or resume any of them.
 */
#ifndef RL_TEST_NODE_H
#define RL_TEST_NODE_H

#include <stdint.h>
#include <sys/types.h>

#include "rangelock_etcd.h"

struct node {
	pid_t pid;
	int to, from;           /* command and reply pipes */
	int next_id;
	char pending[8192];     /* replies read but not yet asked for */
	size_t plen;
};

#define NODE_PENDING (-1)   /* node_result: no reply within the time */

/* A node with its own client (ttl_ms, flags as rangelock_etcd_options). */
void node_start(struct node *n, const char *endpoints, unsigned ttl_ms,
		unsigned flags);
/* op: "wr" "rd" "trywr" "tryrd" "timedwr" "timedrd" (wait_ms for timed);
 * returns the request's id */
int node_lock(struct node *n, const char *op, const char *object,
	      uint64_t start, uint64_t end, int wait_ms);
/* op: "unlock" "down" "check" "write" (to the fencing store named by
 * $RL_FENCE_STORE) on the range of request id */
int node_on(struct node *n, const char *op, int id);
/* the reply to request id within timeout_ms: its errno-style result and,
 * for a lock, its token; NODE_PENDING if it has not come */
int node_result(struct node *n, int id, int timeout_ms, uint64_t *token);
/* random ranges of 32 pages of object, threads threads, seconds long,
 * each grant a line in a file of $RL_HISTORY_DIR (node.c says which);
 * the reply's token is the number of grants */
int node_work(struct node *n, const char *object, int seconds, int seed,
	      int threads);
void node_stop(struct node *n);   /* closes its objects and client, waits */
void node_kill(struct node *n);   /* SIGKILL */
void node_pause(struct node *n);  /* SIGSTOP */
void node_resume(struct node *n); /* SIGCONT */

/* In the test's own process: the requests (held and waiting) on the
 * object name, from one rangelock_etcd_list(); or a negative errno. */
int count_requests(rangelock_etcd_t *c, const void *name, size_t len);

#endif
