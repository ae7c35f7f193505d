/* SPDX-License-Identifier: MIT */
/* creds.c - requests under their caller's credentials; see creds.h. */
#include "creds.h"

#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

enum creds_state { CREDS_UNKNOWN, CREDS_DAEMON, CREDS_CALLER };

static _Thread_local enum creds_state state;   /* what this thread set */
static uid_t daemon_uid;
static gid_t daemon_gid;
static gid_t daemon_groups[64];
static int daemon_ngroups;

/* glibc's setgroups() changes every thread of the process; the system call
 * changes only the caller's. */
static int thread_setgroups(int n, const gid_t *list)
{
	return (int)syscall(SYS_setgroups, (size_t)n, list);
}

void creds_init(void)
{
	daemon_uid = geteuid();
	daemon_gid = getegid();
	daemon_ngroups = getgroups(64, daemon_groups);
	if (daemon_ngroups < 0)
		daemon_ngroups = 0;
	state = CREDS_DAEMON;
}

/* setfsuid and setfsgid return the previous value; asking again with -1
 * tells whether the change took. */
static int set_ids(uid_t uid, gid_t gid)
{
	setfsgid(gid);
	setfsuid(uid);
	if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid)
		return -EPERM;
	return 0;
}

int creds_caller(void)
{
	struct fuse_context *c = fuse_get_context();
	gid_t small[64], *groups = small;
	int cap = 64, n, rc;

	creds_daemon();   /* setgroups needs the daemon's capabilities */
	/* The caller's groups, from /proc.  Without them the request fails:
	 * fewer groups is not fewer rights (mode 0604, or an ACL entry that
	 * denies a group, denies its members what it grants others). */
	for (int tries = 0;; tries++) {
		n = fuse_getgroups(cap, groups);
		if (n <= cap || tries == 2)
			break;
		if (groups != small)
			free(groups);
		cap = n;   /* more than we had room for: again, with room */
		if (!(groups = malloc((size_t)cap * sizeof(*groups))))
			return -ENOMEM;
	}
	if (n < 0 || n > cap)
		rc = -EACCES;   /* exited, not visible to us, or changing */
	else
		rc = thread_setgroups(n, groups) ? -errno : 0;
	if (groups != small)
		free(groups);
	if (!rc)
		rc = set_ids(c->uid, c->gid);
	state = CREDS_CALLER;   /* partly changed on failure: set all again */
	return rc;
}

void creds_daemon(void)
{
	if (state == CREDS_DAEMON)
		return;
	/* back to fsuid 0 first: that restores the capabilities setgroups
	 * needs */
	set_ids(daemon_uid, daemon_gid);
	thread_setgroups(daemon_ngroups, daemon_groups);
	state = CREDS_DAEMON;
}
