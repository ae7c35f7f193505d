/* SPDX-License-Identifier: MIT */
/*
 * ops.c - rlfs's FUSE operations.  Data operations on open files go to the
 * file's rlfile: buffered reads and writes through its page cache under
 * shared ranges, O_DIRECT opens through its direct path under exclusive
 * ranges, ftruncate and fallocate under the ranges rlfile.h gives.  Every
 * other operation passes through to the backing directory.  Every failure
 * is answered with its errno; nothing here exits or aborts.
 */
#include "rlfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

/* FUSE's "/a/b" as a path relative to the backing directory. */
static const char *rel(const char *path)
{
	return path[1] ? path + 1 : ".";
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

/* Files created by the daemon (root) belong to the caller. */
static int give_to_caller(int dirfd, const char *path, int fd)
{
	struct fuse_context *c = fuse_get_context();

	if (c->uid == 0 && c->gid == 0)
		return 0;
	if (fd >= 0)
		return fchown(fd, c->uid, c->gid) ? -errno : 0;
	return fchownat(dirfd, path, c->uid, c->gid, AT_SYMLINK_NOFOLLOW)
		       ? -errno : 0;
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
	if (rc)
		fprintf(stderr, "rlfs: writing back at unmount: %s\n", strerror(rc));
}

static int rlfs_getattr(const char *path, struct stat *st,
			struct fuse_file_info *fi)
{
	struct open_file *of = open_file_of(fi);

	if (of) {
		if (fstat(of->fd, st) != 0)
			return -errno;
		st->st_size = (off_t)rlfile_size(of->rf);
		return 0;
	}
	if (!path)
		return -ENOENT;      /* an open directory, removed */
	if (fstatat(fs()->backing, rel(path), st, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	/* an open file's size is its rlfile's, which the disk follows */
	if (S_ISREG(st->st_mode) &&
	    (of = open_files_find(&fs()->files, st->st_dev, st->st_ino))) {
		st->st_size = (off_t)rlfile_size(of->rf);
		open_files_put(&fs()->files, of);
	}
	return 0;
}

/* ---- open files -------------------------------------------------------- */

/* Finish an open: the file's rlfile (taking fd over), and the kernel's
 * caching for this open. */
static int attach(int fd, struct fuse_file_info *fi)
{
	struct handle *h = handle_new();
	int rc;

	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	rc = open_files_get(&fs()->files, fd, &h->of);
	if (rc) {
		handle_free(h);
		return -rc;
	}
	h->direct = fi->flags & O_DIRECT;
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
	/* rlfile reads and writes back whatever the open was for */
	int fd = openat(fs()->backing, rel(path), O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : attach(fd, fi);
}

static int rlfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int fd = openat(fs()->backing, rel(path),
			O_RDWR | O_CREAT | O_CLOEXEC | (fi->flags & O_EXCL), mode);
	int rc;

	if (fd < 0)
		return -errno;
	rc = give_to_caller(-1, NULL, fd);
	if (rc) {
		close(fd);
		return rc;
	}
	return attach(fd, fi);
}

static int rlfs_release(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	int rc = open_files_put(&fs()->files, h->of);

	(void)path;
	if (rc)   /* the kernel ignores release's answer: say it here */
		fprintf(stderr, "rlfs: writing back at close: %s\n", strerror(rc));
	handle_free(h);
	return -rc;
}

static int rlfs_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return 0;   /* close(2) does not write back; fsync and release do */
}

static int rlfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	return -rlfile_sync(handle_of(fi)->of->rf);
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

static int rlfs_write(const char *path, const char *buf, size_t size,
		      off_t off, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	void *bounce;
	int rc;

	(void)path;
	/* the kernel writes its cached pages back through any open of the
	 * file, an O_DIRECT one too: those are buffered writes all the same */
	if (!h->direct || fi->writepage)
		rc = rlfile_write(h->of->rf, buf, size, (uint64_t)off);
	else if (!direct_aligned(size, off))
		return -EINVAL;
	else if (!(bounce = aligned_alloc(PAGE, size ? size : PAGE)))
		return -ENOMEM;
	else {
		memcpy(bounce, buf, size);
		rc = rlfile_direct_write(h->of->rf, bounce, size, (uint64_t)off);
		free(bounce);
	}
	return rc ? -rc : (int)size;
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
	 * for the occasion if nobody has it open */
	fd = openat(fs()->backing, rel(path), O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = open_files_get(&fs()->files, fd, &of);
	if (rc)
		return -rc;
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
	int fd = openat(fs()->backing, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct handle *h;

	if (fd < 0)
		return -errno;
	h = handle_new();
	if (!h || !(h->dir = fdopendir(fd))) {
		int rc = h ? errno : ENOMEM;

		if (h)
			handle_free(h);
		close(fd);
		return -rc;
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

static int rlfs_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n;

	if (size == 0)
		return -EINVAL;
	n = readlinkat(fs()->backing, rel(path), buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static int rlfs_access(const char *path, int mask)
{
	return faccessat(fs()->backing, rel(path), mask, 0) ? -errno : 0;
}

static int rlfs_mknod(const char *path, mode_t mode, dev_t dev)
{
	if (mknodat(fs()->backing, rel(path), mode, dev) != 0)
		return -errno;
	return give_to_caller(fs()->backing, rel(path), -1);
}

static int rlfs_mkdir(const char *path, mode_t mode)
{
	if (mkdirat(fs()->backing, rel(path), mode) != 0)
		return -errno;
	return give_to_caller(fs()->backing, rel(path), -1);
}

static int rlfs_symlink(const char *target, const char *path)
{
	if (symlinkat(target, fs()->backing, rel(path)) != 0)
		return -errno;
	return give_to_caller(fs()->backing, rel(path), -1);
}

static int rlfs_unlink(const char *path)
{
	return unlinkat(fs()->backing, rel(path), 0) ? -errno : 0;
}

static int rlfs_rmdir(const char *path)
{
	return unlinkat(fs()->backing, rel(path), AT_REMOVEDIR) ? -errno : 0;
}

static int rlfs_rename(const char *from, const char *to, unsigned int flags)
{
	return renameat2(fs()->backing, rel(from), fs()->backing, rel(to), flags)
		       ? -errno : 0;
}

static int rlfs_link(const char *from, const char *to)
{
	return linkat(fs()->backing, rel(from), fs()->backing, rel(to), 0)
		       ? -errno : 0;
}

static int rlfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct open_file *of = open_file_of(fi);

	if (of)
		return fchmod(of->fd, mode) ? -errno : 0;
	if (!path)
		return -ENOENT;
	return fchmodat(fs()->backing, rel(path), mode, 0) ? -errno : 0;
}

static int rlfs_chown(const char *path, uid_t uid, gid_t gid,
		      struct fuse_file_info *fi)
{
	struct open_file *of = open_file_of(fi);

	if (of)
		return fchown(of->fd, uid, gid) ? -errno : 0;
	if (!path)
		return -ENOENT;
	return fchownat(fs()->backing, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW)
		       ? -errno : 0;
}

static int rlfs_utimens(const char *path, const struct timespec tv[2],
			struct fuse_file_info *fi)
{
	struct open_file *of = open_file_of(fi);

	if (of)
		return futimens(of->fd, tv) ? -errno : 0;
	if (!path)
		return -ENOENT;
	return utimensat(fs()->backing, rel(path), tv, AT_SYMLINK_NOFOLLOW)
		       ? -errno : 0;
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
