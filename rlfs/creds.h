/* SPDX-License-Identifier: MIT */
/*
 * creds.h - whose credentials a request runs with.  rlfs runs as root, but
 * does every request on names as the process that made it: the FUSE worker
 * thread takes the caller's file-system uid and gid and supplementary groups
 * (per thread: setfsuid, setfsgid and the raw setgroups system call), so
 * that the backing file system itself enforces permissions, ACLs, sticky
 * directories, setgid inheritance and ownership, as root passthrough file
 * systems do.  Work that is the daemon's own (opening a file's rlfile, whose
 * descriptors write back for every opener) runs as the daemon.
 *
 * A thread records what it set last; a thread that libfuse starts inherits
 * its creator's credentials but not the record, so it sets them again.
 */
#ifndef RLFS_CREDS_H
#define RLFS_CREDS_H

/* Remember the daemon's own credentials; once, before serving. */
void creds_init(void);

/* Take the credentials of the request this thread serves.  0, or a negative
 * errno the request must fail with: -EACCES when the caller's groups
 * cannot be read (it exited, or is not visible from rlfs's pid namespace),
 * -ENOMEM, -EPERM if the kernel refused them. */
int creds_caller(void);

/* Take the daemon's credentials back (a no-op when it has them). */
void creds_daemon(void);

#endif
