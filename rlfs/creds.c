/* SPDX-License-Identifier: MIT */
/* creds.c - creating as the caller; see creds.h. */
#include "creds.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Thread_local bool own_umask;   /* this thread unshared CLONE_FS */
static _Thread_local bool as_caller;   /* this thread took a caller's ids */
static _Thread_local bool with_groups; /* ... and its groups */
static gid_t daemon_groups[64];
static int daemon_ngroups;

void creds_init(void)
{
	daemon_ngroups = getgroups(64, daemon_groups);
	if (daemon_ngroups < 0)
		daemon_ngroups = 0;
}

/* glibc's setgroups() changes every thread of the process; the system call
 * changes only the caller's. */
static int thread_setgroups(int n, const gid_t *list)
{
	return (int)syscall(SYS_setgroups, (size_t)n, list);
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

/* A file-system uid other than 0 drops the file-system capabilities from
 * the thread's effective set; take every permitted one back. */
static int keep_capabilities(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) != 0)
		return -errno;
	d[0].effective = d[0].permitted;
	d[1].effective = d[1].permitted;
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

int creds_creator(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	int rc;

	if (!own_umask) {
		if (unshare(CLONE_FS) != 0)
			return -errno;
		own_umask = true;
	}
	umask(c->umask);
	as_caller = true;
	if ((rc = set_ids(c->uid, c->gid)) || (rc = keep_capabilities()))
		creds_daemon();
	return rc;
}

int creds_caller(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	gid_t small[64], *groups = small;
	int n = fuse_req_getgroups(req, 64, small), rc;

	if (n > 64) {   /* more than we had room for: again, with room */
		if (!(groups = malloc((size_t)n * sizeof(*groups))))
			return -ENOMEM;
		n = fuse_req_getgroups(req, n, groups);
	}
	/* fewer groups is not fewer rights (an ACL entry that denies a group
	 * denies its members what it grants others): none is a failure */
	rc = n < 0 ? -EACCES : thread_setgroups(n, groups) ? -errno : 0;
	if (groups != small)
		free(groups);
	as_caller = with_groups = true;
	if (rc || (rc = set_ids(c->uid, c->gid)))
		creds_daemon();
	return rc;
}

void creds_daemon(void)
{
	if (!as_caller)
		return;
	/* fsuid 0 gives the file-system capabilities back by itself, and
	 * with them the right to set groups */
	set_ids(geteuid(), getegid());
	if (with_groups) {
		thread_setgroups(daemon_ngroups, daemon_groups);
		with_groups = false;
	}
	as_caller = false;
}
