/* SPDX-License-Identifier: MIT */
/*
 * names.c - rlfs's operations on inodes and names: lookups and forgets,
 * attributes, directories, creating, linking, renaming and removing names,
 * and extended attributes (POSIX ACLs among them).  Each works on the
 * nodes' O_PATH descriptors (inodes.h), or on one name in a directory's
 * descriptor with the calls and flags that do not follow a symlink.  The
 * kernel checked the caller's permissions (default_permissions, with the
 * ACLs read here); rlfs acts as root, and creates as the caller (creds.h).
 */
#include "rlfs.h"
#include "creds.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

void rlfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rlfs *r = rlfs_of(req);
	struct fuse_entry_param e;
	int rc = inodes_lookup(&r->inodes, inode_of(req, parent), name, &e);

	if (rc == ENOENT) {   /* the kernel may keep the name's absence */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = r->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc) {
		reply_rc(req, rc);
		return;
	}
	rlfs_reply_entry(req, &e);
}

void rlfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inodes_forget(&rlfs_of(req)->inodes, inode_of(req, ino), nlookup);
	fuse_reply_none(req);
}

void rlfs_forget_multi(fuse_req_t req, size_t count,
		       struct fuse_forget_data *forgets)
{
	for (size_t k = 0; k < count; k++)
		inodes_forget(&rlfs_of(req)->inodes,
			      inode_of(req, forgets[k].ino), forgets[k].nlookup);
	fuse_reply_none(req);
}

static void reply_attr(fuse_req_t req, struct inode *i)
{
	struct rlfs *r = rlfs_of(req);
	struct stat st;
	int rc = rlfs_stat(r, i->fd, &st);

	if (rc) {
		reply_rc(req, rc);
		return;
	}
	fuse_reply_attr(req, &st, r->timeout);
}

void rlfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	reply_attr(req, inode_of(req, ino));
}

/* One time of a setattr: the value, now, or left alone. */
static struct timespec time_to_set(int to_set, int set, int now,
				   struct timespec value)
{
	if (to_set & now)
		return (struct timespec){ .tv_nsec = UTIME_NOW };
	if (to_set & set)
		return value;
	return (struct timespec){ .tv_nsec = UTIME_OMIT };
}

/*
 * The kernel made the caller's checks (owner, group membership, write
 * access for times and size) and cleared what the caller may not keep
 * (setgid on a chmod by a non-member, setuid and setgid on a write or a
 * chown): rlfs applies what it sends, as root.  Mode first: a chown by
 * root clears setuid and setgid of a regular file by itself.
 */
void rlfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		  int to_set, struct fuse_file_info *fi)
{
	struct inode *i = inode_of(req, ino);
	char self[32];
	int rc = 0;

	inodes_proc_path(i, self);
	if ((to_set & FUSE_SET_ATTR_MODE) && i->type != S_IFLNK &&
	    fchmodat(AT_FDCWD, self, attr->st_mode & 07777, 0) != 0)
		rc = errno;
	if (!rc && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    fchownat(i->fd, "",
		     (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1,
		     (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1,
		     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
		rc = errno;
	if (!rc && (to_set & FUSE_SET_ATTR_SIZE))
		rc = rlfs_truncate(req, i, fi, attr->st_size);
	if (!rc && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2] = {
			time_to_set(to_set, FUSE_SET_ATTR_ATIME,
				    FUSE_SET_ATTR_ATIME_NOW, attr->st_atim),
			time_to_set(to_set, FUSE_SET_ATTR_MTIME,
				    FUSE_SET_ATTR_MTIME_NOW, attr->st_mtim),
		};

		/* a symlink's own times: on its name in no directory */
		if (i->type == S_IFLNK ? utimensat(i->fd, "", tv, AT_EMPTY_PATH) != 0
				       : utimensat(AT_FDCWD, self, tv, 0) != 0)
			rc = errno;
	}
	if (rc) {
		reply_rc(req, rc);
		return;
	}
	reply_attr(req, i);
}

void rlfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlinkat(inode_of(req, ino)->fd, "", buf, sizeof(buf) - 1);

	if (n < 0) {
		reply_rc(req, errno);
		return;
	}
	buf[n] = 0;
	fuse_reply_readlink(req, buf);
}

/* After a call that made name in dir as the caller (ret its result):
 * the new name's entry, or the error. */
static void reply_made(fuse_req_t req, struct inode *dir, const char *name,
		       int ret)
{
	struct fuse_entry_param e;
	int rc = ret < 0 ? errno : 0;

	creds_daemon();
	if (!rc)
		rc = inodes_lookup(&rlfs_of(req)->inodes, dir, name, &e);
	if (rc) {
		reply_rc(req, rc);
		return;
	}
	rlfs_reply_entry(req, &e);
}

void rlfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, dev_t rdev)
{
	struct inode *dir = inode_of(req, parent);
	int rc = creds_creator(req);

	if (rc) {
		reply_rc(req, rc);
		return;
	}
	reply_made(req, dir, name, mknodat(dir->fd, name, mode, rdev));
}

void rlfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode)
{
	struct inode *dir = inode_of(req, parent);
	int rc = creds_creator(req);

	if (rc) {
		reply_rc(req, rc);
		return;
	}
	reply_made(req, dir, name, mkdirat(dir->fd, name, mode));
}

void rlfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		  const char *name)
{
	struct inode *dir = inode_of(req, parent);
	int rc = creds_creator(req);

	if (rc) {
		reply_rc(req, rc);
		return;
	}
	reply_made(req, dir, name, symlinkat(link, dir->fd, name));
}

void rlfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	       const char *newname)
{
	struct inode *dir = inode_of(req, newparent);

	/* the inode itself, not a name of it (AT_EMPTY_PATH: root may) */
	reply_made(req, dir, newname, linkat(inode_of(req, ino)->fd, "", dir->fd,
					     newname, AT_EMPTY_PATH));
}

void rlfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rlfs *r = rlfs_of(req);

	if (unlinkat(inode_of(req, parent)->fd, name, 0) != 0) {
		reply_rc(req, errno);
		return;
	}
	open_files_reap(&r->files);   /* a deleted file's kept dirty pages */
	fuse_reply_err(req, 0);
}

void rlfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int ret = unlinkat(inode_of(req, parent)->fd, name, AT_REMOVEDIR);

	fuse_reply_err(req, ret ? errno : 0);
}

void rlfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		 fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	int ret = renameat2(inode_of(req, parent)->fd, name,
			    inode_of(req, newparent)->fd, newname, flags);

	if (ret == 0)   /* a file renamed over may have been the last name */
		open_files_reap(&rlfs_of(req)->files);
	fuse_reply_err(req, ret ? errno : 0);
}

/* ---- directories --------------------------------------------------- */

struct dir_handle {
	DIR *dir;
	off_t offset;                /* where readdir would go on */
	struct dirent *entry;        /* read, not yet sent */
};

void rlfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *d = calloc(1, sizeof(*d));
	int fd;

	if (!d) {
		reply_rc(req, ENOMEM);
		return;
	}
	fd = openat(inode_of(req, ino)->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d->dir = fdopendir(fd))) {
		int rc = errno;

		if (fd >= 0)
			close(fd);
		free(d);
		reply_rc(req, rc);
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		closedir(d->dir);
		free(d);
	}
}

void rlfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;

	(void)ino;
	closedir(d->dir);
	free(d);
	fuse_reply_err(req, 0);
}

static bool dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

/* Add d's next entry to [p, p + room): its size, more than room if it did
 * not fit (then nothing was added, nor looked up).  With plus, the entry is
 * looked up (counted, as the kernel expects) and its attributes sent. */
static size_t add_entry(fuse_req_t req, struct inode *dir, struct dir_handle *d,
			char *p, size_t room, bool plus, int *err)
{
	struct rlfs *r = rlfs_of(req);
	struct dirent *ent = d->entry;
	struct fuse_entry_param e = { 0 };
	size_t size;

	if (!plus) {
		struct stat st = { .st_ino = ent->d_ino,
				   .st_mode = (mode_t)DTTOIF(ent->d_type) };

		return fuse_add_direntry(req, p, room, ent->d_name, &st, ent->d_off);
	}
	if (dot_or_dotdot(ent->d_name)) {
		e.attr.st_ino = ent->d_ino;
		e.attr.st_mode = (mode_t)DTTOIF(ent->d_type);
	} else if ((*err = inodes_lookup(&r->inodes, dir, ent->d_name, &e))) {
		return 0;
	} else {
		open_files_fix_size(&r->files, &e.attr);
		e.attr_timeout = e.entry_timeout = r->timeout;
	}
	size = fuse_add_direntry_plus(req, p, room, ent->d_name, &e, ent->d_off);
	if (size > room && e.ino)
		inodes_forget(&r->inodes, inodes_get(&r->inodes, e.ino), 1);
	return size;
}

static void read_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi, bool plus)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	struct inode *dir = inode_of(req, ino);
	char *buf = malloc(size), *p = buf;
	size_t room = size;
	int err = 0;

	if (!buf) {
		reply_rc(req, ENOMEM);
		return;
	}
	if (off != d->offset) {
		seekdir(d->dir, off);
		d->entry = NULL;
		d->offset = off;
	}
	for (;;) {
		size_t n;

		if (!d->entry) {
			errno = 0;
			if (!(d->entry = readdir(d->dir))) {
				err = errno;
				break;
			}
		}
		n = add_entry(req, dir, d, p, room, plus, &err);
		if (err) {
			if (err == ENOENT) {   /* removed since: skip it */
				err = 0;
				d->offset = d->entry->d_off;
				d->entry = NULL;
				continue;
			}
			break;
		}
		if (n > room)
			break;
		p += n;
		room -= n;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
	/* an error after some entries: those first, the error next time */
	if (err && room == size)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, size - room);
	free(buf);
}

void rlfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	read_dir(req, ino, size, off, fi, false);
}

void rlfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	read_dir(req, ino, size, off, fi, true);
}

void rlfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	if (fstatvfs(inode_of(req, ino)->fd, &st) != 0) {
		reply_rc(req, errno);
		return;
	}
	fuse_reply_statfs(req, &st);
}

/* ---- extended attributes ------------------------------------------- */

/* Through an O_PATH descriptor, xattrs are reached by its /proc name,
 * which would follow a symlink: a symlink's are not served (a Linux
 * symlink has no user xattrs, and no ACL).  ENODATA for its ACL, so that
 * the kernel's permission checks find none. */
static int xattr_path(fuse_req_t req, fuse_ino_t ino, char self[32])
{
	struct inode *i = inode_of(req, ino);

	if (i->type == S_IFLNK)
		return ENODATA;
	inodes_proc_path(i, self);
	return 0;
}

/* The reply of a getxattr or listxattr of size bytes whose call gave n. */
static void reply_xattr(fuse_req_t req, size_t size, ssize_t n, const char *buf)
{
	if (n < 0)
		reply_rc(req, errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

void rlfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		   size_t size)
{
	char self[32], *buf = NULL;
	int rc = xattr_path(req, ino, self);

	if (rc) {
		reply_rc(req, rc);
		return;
	}
	if (size && !(buf = malloc(size))) {
		reply_rc(req, ENOMEM);
		return;
	}
	reply_xattr(req, size, getxattr(self, name, buf, size), buf);
	free(buf);
}

void rlfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char self[32], *buf = NULL;

	if (xattr_path(req, ino, self)) {   /* none */
		if (size)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_xattr(req, 0);
		return;
	}
	if (size && !(buf = malloc(size))) {
		reply_rc(req, ENOMEM);
		return;
	}
	reply_xattr(req, size, listxattr(self, buf, size), buf);
	free(buf);
}

void rlfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		   const char *value, size_t size, int flags)
{
	char self[32];
	int rc = xattr_path(req, ino, self) ? EOPNOTSUPP : 0;

	if (!rc && setxattr(self, name, value, size, flags) != 0)
		rc = errno;
	reply_rc(req, rc);
}

void rlfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	char self[32];
	int rc = xattr_path(req, ino, self) ? EOPNOTSUPP : 0;

	if (!rc && removexattr(self, name) != 0)
		rc = errno;
	reply_rc(req, rc);
}
