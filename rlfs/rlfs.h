/* SPDX-License-Identifier: MIT */
/*
 * rlfs.h - what rlfs's parts share: the file system's state, and the
 * operations each part serves for the kernel.
 *
 *   main.c     the command line, the checks before mounting, the loop
 *   ops.c      the table of operations libfuse's low-level API calls
 *   names.c    lookups, attributes, directories, names, xattrs
 *   files.c    open files: reads and writes through rlfile, sizes
 *   inodes.c   one node per backing inode (inodes.h)
 *   open_files.c  one rlfile per backing file (open_files.h)
 *   creds.c    creating as the caller (creds.h)
 */
#ifndef RLFS_H
#define RLFS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "inodes.h"
#include "open_files.h"

struct rlfs {
	int backing;                 /* the backing directory, O_DIRECTORY */
	int unmount_error;           /* the last write-back failed: exit 1 */
	bool kernel_cache;           /* leave buffered opens to the kernel's
				      * page cache (mmap works) */
	double timeout;              /* seconds the kernel may keep attributes
				      * and names */
	struct inodes inodes;
	struct open_files files;
};

extern const struct fuse_lowlevel_ops rlfs_ops;

static inline struct rlfs *rlfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct inode *inode_of(fuse_req_t req, fuse_ino_t ino)
{
	return inodes_get(&rlfs_of(req)->inodes, ino);
}

/* Answer req with an error given either way (errno or -errno). */
static inline void reply_rc(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : rc);
}

/* The attributes of the inode fd refers to, as the kernel should see
 * them: an open file's size is its rlfile's, which the backing file
 * follows.  0 or an errno value. */
static inline int rlfs_stat(struct rlfs *r, int fd, struct stat *st)
{
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
		return errno;
	open_files_fix_size(&r->files, st);
	return 0;
}

/* Reply with an entry from inodes_lookup*(), its timeouts and size set. */
static inline void rlfs_reply_entry(fuse_req_t req, struct fuse_entry_param *e)
{
	struct rlfs *r = rlfs_of(req);

	open_files_fix_size(&r->files, &e->attr);
	e->attr_timeout = e->entry_timeout = r->timeout;
	if (fuse_reply_entry(req, e) == -ENOENT)   /* the request was */
		inodes_forget(&r->inodes, inodes_get(&r->inodes, e->ino), 1);
}

/* names.c */
void rlfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void rlfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void rlfs_forget_multi(fuse_req_t req, size_t count,
		       struct fuse_forget_data *forgets);
void rlfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rlfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		  int to_set, struct fuse_file_info *fi);
void rlfs_readlink(fuse_req_t req, fuse_ino_t ino);
void rlfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, dev_t rdev);
void rlfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode);
void rlfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		  const char *name);
void rlfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void rlfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void rlfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		 fuse_ino_t newparent, const char *newname, unsigned int flags);
void rlfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	       const char *newname);
void rlfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rlfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi);
void rlfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi);
void rlfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rlfs_statfs(fuse_req_t req, fuse_ino_t ino);
void rlfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		   const char *value, size_t size, int flags);
void rlfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		   size_t size);
void rlfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void rlfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* files.c */
void rlfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rlfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		 mode_t mode, struct fuse_file_info *fi);
void rlfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rlfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rlfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		struct fuse_file_info *fi);
void rlfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	       struct fuse_file_info *fi);
void rlfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		off_t off, struct fuse_file_info *fi);
void rlfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		    off_t len, struct fuse_file_info *fi);
/* Set i's size (setattr), through the open file fi if there is one, else
 * through an rlfile opened for the occasion.  0 or an errno. */
int rlfs_truncate(fuse_req_t req, struct inode *i, struct fuse_file_info *fi,
		  off_t size);
/* At unmount: free the handles of opens the kernel never released. */
void rlfs_files_destroy(void);

#endif
