/* SPDX-License-Identifier: MIT */
/*
 * ops.c - rlfs's FUSE operations.  Data operations on open files go to the
 * file's rlfile: buffered reads and writes through its page cache under
 * shared ranges, O_DIRECT opens through its direct path under exclusive
 * ranges, ftruncate and fallocate under the ranges rlfile.h gives.  Every
 * other operation passes through to the backing directory.  Every request
 * on a name is made as its caller (creds.h) on descriptors that never
 * follow a symlink (resolve.h); files are opened with the caller's access.
 * Every failure is answered with its errno; nothing here exits or aborts.
 */
#include "rlfs.h"
#include "creds.h"
#include "resolve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define PAGE RLFILE_PAGE

/* What fi->fh holds: an open file, or an open directory.  All of them are
 * on one list, so that those the kernel never released are freed at
 * unmount. */
struct handle {
	struct open_file *of;        /* a file: its rlfile */
	bool direct;                 /* a file opened with O_DIRECT */
	_Atomic bool wrote;          /* written through: flush writes back */
	uint64_t error_mark;         /* write-back errors seen (rlfile.h) */
	DIR *dir;                    /* a directory */
	struct handle *prev, *next;  /* handles_lock */
};

static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handle handles = { .prev = &handles, .next = &handles };

static struct handle *handle_new(void)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (h) {
		pthread_mutex_lock(&handles_lock);
		h->next = handles.next;
		h->prev = &handles;
		h->next->prev = h;
		handles.next = h;
		pthread_mutex_unlock(&handles_lock);
	}
	return h;
}

static void handle_free(struct handle *h)
{
	pthread_mutex_lock(&handles_lock);
	h->prev->next = h->next;
	h->next->prev = h->prev;
	pthread_mutex_unlock(&handles_lock);
	if (h->dir)
		closedir(h->dir);
	free(h);
}

static struct rlfs *fs(void)
{
	return fuse_get_context()->private_data;
}

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

/* The open file behind fi; NULL for none (no fi, or a directory). */
static struct open_file *open_file_of(struct fuse_file_info *fi)
{
	return fi && fi->fh ? handle_of(fi)->of : NULL;
}

static int close_keep(int fd, int rc)
{
	close(fd);
	return rc;
}

static void *rlfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* With the kernel's cache on, let it cache writes too: then it alone
	 * orders the write-back of mapped and written pages.  Write-through
	 * let a write and an older page's write-back reach rlfs in either
	 * order, and the torture saw stale data (doc/rlfs.md). */
	if (fs()->kernel_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	cfg->use_ino = 1;            /* the backing inode numbers */
	cfg->nullpath_ok = 1;        /* open files are found by fi->fh */
	cfg->hard_remove = 1;        /* no .fuse_hidden files: the open file
				      * keeps its own descriptors */
	return fs();
}

static void rlfs_destroy(void *private_data)
{
	struct rlfs *r = private_data;
	int rc = open_files_close_all(&r->files);

	while (handles.next != &handles)   /* opens never released */
		handle_free(handles.next);
	if (rc) {
		fprintf(stderr, "rlfs: writing back at unmount: %s; dirty data "
			"of the files that failed is lost\n", strerror(rc));
		r->unmount_error = rc;
	}
}

static int rlfs_getattr(const char *path, struct stat *st,
			struct fuse_file_info *fi)
{
	struct open_file *of = open_file_of(fi);
	int fd, rc;

	if (of) {
		if (fstat(of->fd, st) != 0)
			return -errno;
		st->st_size = (off_t)rlfile_size(of->rf);
		return 0;
	}
	if (!path)
		return -ENOENT;      /* an open directory, removed */
	if ((rc = creds_caller()) || (rc = resolve_object(fs()->backing, path, &fd)))
		return rc;
	rc = fstatat(fd, "", st, AT_EMPTY_PATH) ? -errno : 0;
	close(fd);
	/* an open file's size is its rlfile's, which the disk follows */
	if (!rc && S_ISREG(st->st_mode) &&
	    (of = open_files_find(&fs()->files, st->st_dev, st->st_ino))) {
		st->st_size = (off_t)rlfile_size(of->rf);
		open_files_put(&fs()->files, of);
	}
	return rc;
}

/* ---- open files -------------------------------------------------------- */

/* fd is a regular file (and not a symlink, a device or a FIFO swapped in
 * under the name): 0, or fd is closed and the errno returned. */
static int regular_or_close(int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return close_keep(fd, -errno);
	if (S_ISREG(st.st_mode))
		return 0;
	return close_keep(fd, S_ISDIR(st.st_mode) ? -EISDIR
			      : S_ISLNK(st.st_mode) ? -ELOOP : -EACCES);
}

/* Open path for the access in flags as the caller: through an O_PATH
 * descriptor, so that the permission check is the caller's and nothing
 * but a regular file is ever opened.  A descriptor or a negative errno. */
static int open_as_caller(const char *path, int flags)
{
	int pathfd, fd, rc;

	if ((rc = creds_caller()) ||
	    (rc = resolve_object(fs()->backing, path, &pathfd)) ||
	    (rc = regular_or_close(pathfd)))
		return rc;
	fd = reopen(pathfd, flags & O_ACCMODE);
	close(pathfd);
	return fd;
}

/* The file fd (opened by its caller, with the caller's access) as the
 * table's open file, writable if the access asks for it. */
static int open_file_for(int fd, int flags, struct open_file **of)
{
	int rc;

	creds_daemon();   /* the rlfile's descriptors and thread are ours */
	rc = -open_files_get(&fs()->files, fd, of);
	if (!rc && (flags & O_ACCMODE) != O_RDONLY &&
	    (rc = -rlfile_make_writable((*of)->rf))) {
		open_files_put(&fs()->files, *of);
		*of = NULL;
	}
	return rc;
}

/* The access an open needs: what it asks for, and writing for O_TRUNC (as
 * the kernel's may_open asks, even of O_RDONLY | O_TRUNC). */
static int access_of(int flags)
{
	if ((flags & O_TRUNC) && (flags & O_ACCMODE) == O_RDONLY)
		return O_RDWR;
	return flags & O_ACCMODE;
}

/* Finish an open: the file's rlfile (taking fd over), O_TRUNC, and the
 * kernel's caching for this open. */
static int attach(int fd, struct fuse_file_info *fi)
{
	struct handle *h = handle_new();
	int rc;

	if (!h)
		return close_keep(fd, -ENOMEM);
	rc = open_file_for(fd, access_of(fi->flags), &h->of);
	/* libfuse asks for atomic O_TRUNC: the kernel leaves it to us */
	if (!rc && (fi->flags & O_TRUNC))
		rc = -rlfile_truncate(h->of->rf, 0);
	if (rc) {
		if (h->of)
			open_files_put(&fs()->files, h->of);
		handle_free(h);
		return rc;
	}
	h->direct = fi->flags & O_DIRECT;
	h->error_mark = rlfile_error_mark(h->of->rf);
	/* Without kernel caching every read and write reaches rlfile.  With
	 * it, the kernel's page cache serves buffered opens (and mmap), and
	 * O_DIRECT opens too go through the kernel's own direct I/O, which
	 * writes its cached pages back and drops them around each request;
	 * the requests still reach rlfile's direct path (h->direct). */
	fi->direct_io = !fs()->kernel_cache;
	fi->keep_cache = 0;
	fi->fh = (uintptr_t)h;
	return 0;
}

static int rlfs_open(const char *path, struct fuse_file_info *fi)
{
	int fd = open_as_caller(path, access_of(fi->flags));

	return fd < 0 ? fd : attach(fd, fi);
}

static int rlfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	const char *name;
	int dirfd, fd, rc;

	if ((rc = creds_caller()) ||
	    (rc = resolve_parent(fs()->backing, path, &dirfd, &name)))
		return rc;
	/* as the caller: the backing file system gives the owner, a setgid
	 * directory's group, and checks the directory's ACL; never through a
	 * symlink planted under the name, and never blocking on a FIFO */
	fd = openat(dirfd, name, (fi->flags & (O_ACCMODE | O_EXCL)) | O_CREAT |
		    O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	rc = fd < 0 ? -errno : regular_or_close(fd);
	close(dirfd);
	return rc ? rc : attach(fd, fi);
}

/* Report a write-back error once to each open file description, as the
 * kernel's errseq does: at fsync and at close. */
static int error_since_last(struct handle *h)
{
	return -rlfile_error_check(h->of->rf, &h->error_mark);
}

static int rlfs_release(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	int rc;

	(void)path;
	creds_daemon();
	rc = open_files_put(&fs()->files, h->of);
	if (rc)   /* the kernel ignores release's answer: say it here */
		fprintf(stderr, "rlfs: writing back at the last close: %s; the "
			"dirty pages stay cached and are retried\n", strerror(rc));
	handle_free(h);
	return -rc;
}

/* close(2): a description that wrote writes its file back, and hears of
 * every write-back error it has not heard of, so that a program that
 * checks close (dd, cp) learns that its data did not reach the disk. */
static int rlfs_flush(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	/* relaxed: a hint set by this description's writes, which the kernel
	 * finished before it flushes */
	int rc = atomic_load_explicit(&h->wrote, memory_order_relaxed)
		 ? -rlfile_flush(h->of->rf) : 0;
	int seen = error_since_last(h);

	(void)path;
	return rc ? rc : seen;
}

static int rlfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	int rc = -rlfile_sync(h->of->rf);
	int seen = error_since_last(h);

	(void)path;
	(void)datasync;
	return rc ? rc : seen;
}

static bool direct_aligned(size_t size, off_t off)
{
	return (size | (size_t)off) % PAGE == 0;
}

static int rlfs_read(const char *path, char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	void *bounce;
	size_t done;
	int rc;

	(void)path;
	if (!h->direct)
		rc = rlfile_read(h->of->rf, buf, size, (uint64_t)off, &done);
	else if (!direct_aligned(size, off))
		return -EINVAL;      /* as O_DIRECT on a 4 KiB-block disk */
	else if (!(bounce = aligned_alloc(PAGE, size ? size : PAGE)))
		return -ENOMEM;
	else {
		rc = rlfile_direct_read(h->of->rf, bounce, size, (uint64_t)off, &done);
		memcpy(buf, bounce, done);
		free(bounce);
	}
	return rc ? -rc : (int)done;
}

/* A write by a caller without CAP_FSETID clears setuid, and setgid where
 * the group may execute, as the kernel's file_remove_privs does (rlfs
 * writes as root, and later, from its cache). */
static int remove_privs(struct open_file *of)
{
	struct stat st;
	mode_t kill;

	if (fuse_get_context()->uid == 0)
		return 0;
	if (fstat(of->fd, &st) != 0)
		return -errno;
	kill = (st.st_mode & S_ISUID) |
	       ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) ? S_ISGID : 0);
	if (!kill || !S_ISREG(st.st_mode))
		return 0;
	creds_daemon();
	return fchmod(of->fd, st.st_mode & 07777 & ~kill) ? -errno : 0;
}

static int rlfs_write(const char *path, const char *buf, size_t size,
		      off_t off, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	void *bounce;
	size_t done;
	int rc;

	(void)path;
	if (!fi->writepage && (rc = remove_privs(h->of)))
		return rc;
	/* relaxed: see rlfs_flush; written once, by whichever write is first */
	if (!atomic_load_explicit(&h->wrote, memory_order_relaxed))
		atomic_store_explicit(&h->wrote, true, memory_order_relaxed);
	/* the kernel writes its cached pages back through any open of the
	 * file, an O_DIRECT one too: those are buffered writes all the same */
	if (!h->direct || fi->writepage)
		rc = rlfile_write(h->of->rf, buf, size, (uint64_t)off, &done);
	else if (!direct_aligned(size, off))
		return -EINVAL;
	else if (!(bounce = aligned_alloc(PAGE, size ? size : PAGE)))
		return -ENOMEM;
	else {
		memcpy(bounce, buf, size);
		rc = rlfile_direct_write(h->of->rf, bounce, size, (uint64_t)off,
					 &done);
		free(bounce);
	}
	return rc ? -rc : (int)done;
}

static int rlfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct open_file *of;
	int fd, rc, put;

	if (size < 0)
		return -EINVAL;
	if ((of = open_file_of(fi)))
		return -rlfile_truncate(of->rf, (uint64_t)size);
	if (!path)
		return -ENOENT;
	/* truncate(2) by name: through the file's rlfile all the same, open
	 * for the occasion if nobody has it open; write access is the
	 * caller's */
	fd = open_as_caller(path, O_WRONLY);
	if (fd < 0)
		return fd;
	rc = open_file_for(fd, O_WRONLY, &of);
	if (rc)
		return rc;
	rc = rlfile_truncate(of->rf, (uint64_t)size);
	put = open_files_put(&fs()->files, of);   /* a write-back error */
	return -(rc ? rc : put);
}

static int rlfs_fallocate(const char *path, int mode, off_t off, off_t len,
			  struct fuse_file_info *fi)
{
	struct rlfile *rf = handle_of(fi)->of->rf;

	(void)path;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		return -rlfile_punch(rf, (uint64_t)off, (uint64_t)len);
	if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE)
		return -rlfile_allocate(rf, (uint64_t)off, (uint64_t)len,
					mode == FALLOC_FL_KEEP_SIZE);
	return -EOPNOTSUPP;          /* collapse, insert, zero range */
}

/* ---- the rest passes through to the backing directory ----------------- */

static int rlfs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct handle *h;
	int fd, rc;

	if ((rc = creds_caller()) || (rc = resolve_dir(fs()->backing, path, &fd)))
		return rc;
	h = handle_new();
	if (!h || !(h->dir = fdopendir(fd))) {
		rc = h ? -errno : -ENOMEM;
		if (h)
			handle_free(h);
		return close_keep(fd, rc);
	}
	fi->fh = (uintptr_t)h;
	return 0;
}

static int rlfs_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	handle_free(handle_of(fi));
	return 0;
}

/* The whole directory at once (libfuse keeps it for the later calls). */
static int rlfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
			off_t off, struct fuse_file_info *fi,
			enum fuse_readdir_flags flags)
{
	DIR *d = handle_of(fi)->dir;
	struct dirent *e;

	(void)path;
	(void)off;
	(void)flags;
	rewinddir(d);
	errno = 0;
	while ((e = readdir(d))) {
		struct stat st = { .st_ino = e->d_ino, .st_mode = (mode_t)DTTOIF(e->d_type) };

		if (fill(buf, e->d_name, &st, 0, 0))
			return 0;
	}
	return -errno;
}

/*
 * The operations on one name: each resolves the name's directory as the
 * caller (resolve.h), then makes one call on the last component that does
 * not follow a symlink there, and gives the directory back with at_done.
 */
static int name_at(const char *path, int *dirfd, const char **name)
{
	int rc = creds_caller();

	return rc ? rc : resolve_parent(fs()->backing, path, dirfd, name);
}

/* The answer of a call on (dirfd, name) that returned ret. */
static int at_done(int dirfd, int ret)
{
	int rc = ret < 0 ? -errno : 0;

	close(dirfd);
	return rc;
}

static int rlfs_readlink(const char *path, char *buf, size_t size)
{
	const char *name;
	ssize_t n;
	int dirfd, rc;

	if (size == 0)
		return -EINVAL;
	if ((rc = name_at(path, &dirfd, &name)))
		return rc;
	n = readlinkat(dirfd, name, buf, size - 1);
	if (n >= 0)
		buf[n] = 0;
	return at_done(dirfd, n < 0 ? -1 : 0);
}

static int rlfs_access(const char *path, int mask)
{
	const char *name;
	int dirfd, rc = name_at(path, &dirfd, &name);

	/* AT_EACCESS: the file-system ids we took, not the daemon's real ones */
	return rc ? rc : at_done(dirfd, faccessat(dirfd, name, mask,
						  AT_EACCESS | AT_SYMLINK_NOFOLLOW));
}

static int rlfs_mknod(const char *path, mode_t mode, dev_t dev)
{
	const char *name;
	int dirfd, rc = name_at(path, &dirfd, &name);

	return rc ? rc : at_done(dirfd, mknodat(dirfd, name, mode, dev));
}

static int rlfs_mkdir(const char *path, mode_t mode)
{
	const char *name;
	int dirfd, rc = name_at(path, &dirfd, &name);

	return rc ? rc : at_done(dirfd, mkdirat(dirfd, name, mode));
}

static int rlfs_symlink(const char *target, const char *path)
{
	const char *name;
	int dirfd, rc = name_at(path, &dirfd, &name);

	return rc ? rc : at_done(dirfd, symlinkat(target, dirfd, name));
}

static int rlfs_unlink(const char *path)
{
	const char *name;
	int dirfd, rc = name_at(path, &dirfd, &name);

	if (rc || (rc = at_done(dirfd, unlinkat(dirfd, name, 0))))
		return rc;
	creds_daemon();
	open_files_reap(&fs()->files);   /* a deleted file's kept dirty pages */
	return 0;
}

static int rlfs_rmdir(const char *path)
{
	const char *name;
	int dirfd, rc = name_at(path, &dirfd, &name);

	return rc ? rc : at_done(dirfd, unlinkat(dirfd, name, AT_REMOVEDIR));
}

/* The two names of a rename or a link, each in its own directory.  0 or
 * -errno. */
static int two_names(const char *from, const char *to, unsigned flags,
		     bool link)
{
	const char *fname, *tname;
	int fdir, tdir, rc;

	if ((rc = name_at(from, &fdir, &fname)))
		return rc;
	if (!(rc = resolve_parent(fs()->backing, to, &tdir, &tname))) {
		/* linkat without AT_SYMLINK_FOLLOW never follows */
		int ret = link ? linkat(fdir, fname, tdir, tname, 0)
			       : renameat2(fdir, fname, tdir, tname, flags);

		rc = at_done(tdir, ret);
	}
	close(fdir);
	return rc;
}

static int rlfs_rename(const char *from, const char *to, unsigned int flags)
{
	return two_names(from, to, flags, false);
}

static int rlfs_link(const char *from, const char *to)
{
	return two_names(from, to, 0, true);
}

/* chmod, chown, utimens: on the open file if there is one, else on the
 * name, as the caller either way (owners and root may). */
static int rlfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct open_file *of = open_file_of(fi);
	const char *name;
	int dirfd, rc;

	if (of)
		return (rc = creds_caller()) ? rc : fchmod(of->fd, mode) ? -errno : 0;
	if (!path)
		return -ENOENT;
	rc = name_at(path, &dirfd, &name);
	return rc ? rc : at_done(dirfd, fchmodat(dirfd, name, mode, AT_SYMLINK_NOFOLLOW));
}

static int rlfs_chown(const char *path, uid_t uid, gid_t gid,
		      struct fuse_file_info *fi)
{
	struct open_file *of = open_file_of(fi);
	const char *name;
	int dirfd, rc;

	if (of)
		return (rc = creds_caller()) ? rc : fchown(of->fd, uid, gid) ? -errno : 0;
	if (!path)
		return -ENOENT;
	rc = name_at(path, &dirfd, &name);
	return rc ? rc : at_done(dirfd, fchownat(dirfd, name, uid, gid,
						 AT_SYMLINK_NOFOLLOW));
}

static int rlfs_utimens(const char *path, const struct timespec tv[2],
			struct fuse_file_info *fi)
{
	struct open_file *of = open_file_of(fi);
	const char *name;
	int dirfd, rc;

	if (of)
		return (rc = creds_caller()) ? rc : futimens(of->fd, tv) ? -errno : 0;
	if (!path)
		return -ENOENT;
	rc = name_at(path, &dirfd, &name);
	return rc ? rc : at_done(dirfd, utimensat(dirfd, name, tv, AT_SYMLINK_NOFOLLOW));
}

static int rlfs_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	return fstatvfs(fs()->backing, st) ? -errno : 0;
}

const struct fuse_operations rlfs_ops = {
	.init = rlfs_init,
	.destroy = rlfs_destroy,
	.getattr = rlfs_getattr,
	.open = rlfs_open,
	.create = rlfs_create,
	.release = rlfs_release,
	.flush = rlfs_flush,
	.fsync = rlfs_fsync,
	.read = rlfs_read,
	.write = rlfs_write,
	.truncate = rlfs_truncate,
	.fallocate = rlfs_fallocate,
	.opendir = rlfs_opendir,
	.releasedir = rlfs_releasedir,
	.readdir = rlfs_readdir,
	.readlink = rlfs_readlink,
	.access = rlfs_access,
	.mknod = rlfs_mknod,
	.mkdir = rlfs_mkdir,
	.symlink = rlfs_symlink,
	.unlink = rlfs_unlink,
	.rmdir = rlfs_rmdir,
	.rename = rlfs_rename,
	.link = rlfs_link,
	.chmod = rlfs_chmod,
	.chown = rlfs_chown,
	.utimens = rlfs_utimens,
	.statfs = rlfs_statfs,
};
