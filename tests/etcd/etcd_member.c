/* SPDX-License-Identifier: MIT */
/*
 * etcd_member -- COMMAND [ARG...]: start one etcd member of its own (free
 * loopback ports, data on tmpfs), run COMMAND with RANGELOCK_ETCD_ENDPOINTS
 * naming it, stop the member, and exit with COMMAND's status.  For the
 * tests written in shell.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

int main(int argc, char **argv)
{
	if (argc < 3 || strcmp(argv[1], "--") != 0) {
		fprintf(stderr, "usage: etcd_member -- COMMAND [ARG...]\n");
		return 2;
	}
	struct cluster c;
	cluster_start(&c, 1);
	setenv("RANGELOCK_ETCD_ENDPOINTS", c.endpoints, 1);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	cluster_stop(&c);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
