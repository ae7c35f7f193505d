/* SPDX-License-Identifier: MIT */
/*
 * inodes.h - rlfs's table of the backing inodes the kernel knows: one node
 * per backing inode (device and inode number), however many names it has,
 * as libfuse's low-level API and its passthrough_ll example have it.  So
 * the kernel holds one inode for one file: a hard link's attributes are
 * its file's, and an open, unlinked file stays reachable.
 *
 * A node holds an O_PATH descriptor of its inode, opened without following
 * a symlink: every later operation is made on that descriptor (or on one
 * name in a directory's descriptor), never on a path, so a name swapped
 * for a symlink in the backing tree is never followed, and the backing
 * directory is never left.  The node's number for the kernel is its
 * address; the backing directory is FUSE_ROOT_ID.
 *
 * The kernel counts its lookups of each node (every entry rlfs replies
 * with is one) and forgets them; the node is freed when the count falls
 * to zero.  The root is never freed.
 */
#ifndef RLFS_INODES_H
#define RLFS_INODES_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

struct inode {
	dev_t dev;
	ino_t ino;
	mode_t type;                 /* S_IFREG, S_IFDIR, ...: never changes */
	int fd;                      /* O_PATH, O_NOFOLLOW */
	uint64_t lookups;            /* table lock */
	struct inode *next;          /* table lock: the hash chain */
};

struct inodes {
	pthread_mutex_t lock;
	struct inode root;
	struct inode **bucket;       /* nbuckets chains; grows with count */
	size_t nbuckets, count;
};

/* Make the table, with the directory backing (any descriptor of it) as
 * its root.  0 or an errno value. */
int inodes_init(struct inodes *t, int backing);
/* Close and free every node (at unmount). */
void inodes_destroy(struct inodes *t);

/* The node of the kernel's number ino (the kernel only names nodes it has
 * looked up and not forgotten). */
struct inode *inodes_get(struct inodes *t, fuse_ino_t ino);
static inline fuse_ino_t inodes_number(struct inodes *t, struct inode *i)
{
	return i == &t->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)i;
}

/* Look name up in directory dir, not following a symlink there: e->attr
 * and e->ino filled, the node counted as looked up once more.  0 or an
 * errno value (ENOENT for a missing name). */
int inodes_lookup(struct inodes *t, struct inode *dir, const char *name,
		  struct fuse_entry_param *e);
/* The same for an object rlfs already has a descriptor of (a file it just
 * created and opened, a node it just linked): its O_PATH twin is made
 * from fd. */
int inodes_lookup_fd(struct inodes *t, int fd, struct fuse_entry_param *e);
/* The kernel forgot n lookups of i. */
void inodes_forget(struct inodes *t, struct inode *i, uint64_t n);

/* "/proc/self/fd/N" for i's descriptor, for the calls that take no
 * descriptor (chmod, utimes, xattrs) and to open the inode for I/O. */
void inodes_proc_path(const struct inode *i, char buf[32]);
/* Open i for I/O with flags (an access mode, O_CLOEXEC added): a
 * descriptor or a negative errno. */
int inodes_open(const struct inode *i, int flags);

#endif
