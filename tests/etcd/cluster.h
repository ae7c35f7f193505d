/* SPDX-License-Identifier: MIT */
/*
 * cluster.h - etcd members for the tests: started on free loopback ports
 * with their data on tmpfs, stopped, killed, paused and resumed.
 *
 * No etcd on the machine: the test exits 77 (skip), unless
 * RANGELOCK_ETCD_TESTS_REQUIRED=1 (CI), where it fails.
 */
#ifndef RL_TEST_CLUSTER_H
#define RL_TEST_CLUSTER_H

#include <sys/types.h>

#define CLUSTER_MAX 5

struct cluster {
	int n;
	pid_t pid[CLUSTER_MAX];
	int client_port[CLUSTER_MAX], peer_port[CLUSTER_MAX];
	char dir[256];                   /* on /dev/shm */
	char endpoints[CLUSTER_MAX * 32]; /* every member, comma-separated */
	char url[CLUSTER_MAX][32];
};

/* Start n members (1..5) and wait until they have a leader. */
void cluster_start(struct cluster *c, int n);
/* Stop every member and remove the data. */
void cluster_stop(struct cluster *c);
/* Kill member i (SIGKILL), start it again (same data), pause, resume. */
void cluster_kill(struct cluster *c, int i);
void cluster_restart(struct cluster *c, int i);
void cluster_pause(struct cluster *c, int i);
void cluster_resume(struct cluster *c, int i);
/* The member that leads now (waits for one, up to 10 s); -1 if none. */
int cluster_leader(struct cluster *c);
/* Compact etcd's history up to its current revision (through member i). */
void cluster_compact(struct cluster *c, int i);
/* Endpoints starting with member i, then the others. */
const char *cluster_endpoints_from(struct cluster *c, int i, char *buf, size_t len);

#endif
