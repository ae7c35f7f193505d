/* SPDX-License-Identifier: MIT */
/*
 * creds.h - whose credentials a request runs with.  rlfs runs as root and
 * mounts with default_permissions and POSIX ACLs: the kernel checks every
 * request against the attributes and ACLs rlfs reports, with the caller's
 * groups, before rlfs sees it, as for a disk file system.  So rlfs does its
 * work as root, with one exception: what it creates (a file, a directory,
 * a node, a symlink) must get the caller's owner and group, the caller's
 * umask where no default ACL applies, and a setgid directory's group, as
 * the backing file system gives them to its creator.  For that call only,
 * the worker thread takes the caller's file-system uid and gid (from the
 * request: nothing is read from /proc) and umask, keeping root's
 * capabilities so that the backing file system does not check again
 * without the caller's groups.
 *
 * Credentials and umask are per thread: each worker thread unshares its
 * umask (CLONE_FS) the first time it creates.
 */
#ifndef RLFS_CREDS_H
#define RLFS_CREDS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

/* Remember the daemon's groups; once, before serving. */
void creds_init(void);

/* Create as req's caller until creds_daemon().  0, or a negative errno the
 * request must fail with (-EPERM: the kernel refused the change). */
int creds_creator(fuse_req_t req);

/* Act as req's caller in full: its file-system ids and supplementary
 * groups (asked of the kernel: /proc/PID/status), no capabilities, so that
 * the backing file system checks the caller's permissions itself.  Only
 * where the kernel could not check them: opening a file that a create
 * found already there.  0 or a negative errno (-EACCES when the groups
 * cannot be read). */
int creds_caller(fuse_req_t req);

/* Take the daemon's credentials back (a no-op when it has them). */
void creds_daemon(void);

#endif
