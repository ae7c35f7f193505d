/* SPDX-License-Identifier: MIT */
/*
 * files.c - rlfs's open files.  Buffered reads and writes go through the
 * file's rlfile, its page cache under shared ranges; O_DIRECT opens through
 * its direct path under exclusive ranges; size changes and fallocate under
 * the ranges rlfile.h gives.  The kernel checked the caller's permission
 * before it sent the open; the file is opened with the access asked for.
 * Every failure is answered with its errno; nothing here exits or aborts.
 */
#include "rlfs.h"
#include "creds.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE RLFILE_PAGE

/* What fi->fh holds for a file.  All of them are on one list, so that
 * those the kernel never released are freed at unmount. */
struct handle {
	struct open_file *of;        /* its rlfile */
	bool direct;                 /* opened with O_DIRECT */
	_Atomic bool wrote;          /* written through: flush writes back */
	uint64_t error_mark;         /* write-back errors seen (rlfile.h) */
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
	free(h);
}

void rlfs_files_destroy(void)
{
	while (handles.next != &handles)
		handle_free(handles.next);
}

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

static int put_handle(struct rlfs *r, struct fuse_file_info *fi);

/* The table's open file for fd (taken over), writable if flags ask for
 * it.  0 or an errno value. */
static int open_file_for(struct rlfs *r, int fd, int flags,
			 struct open_file **of)
{
	int rc = open_files_get(&r->files, fd, of);

	if (!rc && (flags & O_ACCMODE) != O_RDONLY &&
	    (rc = rlfile_make_writable((*of)->rf))) {
		open_files_put(&r->files, *of);
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
 * kernel's caching for this open.  0 or an errno value. */
static int attach(struct rlfs *r, int fd, struct fuse_file_info *fi)
{
	struct handle *h = handle_new();
	int rc;

	if (!h) {
		close(fd);
		return ENOMEM;
	}
	rc = open_file_for(r, fd, access_of(fi->flags), &h->of);
	if (!rc && (fi->flags & O_TRUNC))   /* atomic O_TRUNC is ours */
		rc = rlfile_truncate(h->of->rf, 0);
	if (rc) {
		if (h->of)
			open_files_put(&r->files, h->of);
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
	fi->direct_io = !r->kernel_cache;
	fi->keep_cache = 0;
	fi->fh = (uintptr_t)h;
	return 0;
}

void rlfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rlfs *r = rlfs_of(req);
	int fd = inodes_open(inode_of(req, ino), access_of(fi->flags)), rc;

	if (fd < 0) {
		reply_rc(req, fd);
		return;
	}
	if ((rc = attach(r, fd, fi))) {
		reply_rc(req, rc);
		return;
	}
	if (fuse_reply_open(req, fi) == -ENOENT)   /* interrupted */
		put_handle(r, fi);
}

/* Open the file that a create found already there (made under the name
 * after the kernel looked it up): the kernel checked nothing of it, so
 * the caller's own credentials open it.  A descriptor or -errno. */
static int open_existing(fuse_req_t req, struct inode *dir, const char *name,
			 int flags)
{
	int rc = creds_caller(req), fd;

	if (rc)
		return rc;
	fd = openat(dir->fd, name, access_of(flags) | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC);
	rc = fd < 0 ? -errno : 0;
	creds_daemon();
	return rc ? rc : fd;
}

void rlfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		 mode_t mode, struct fuse_file_info *fi)
{
	struct rlfs *r = rlfs_of(req);
	struct inode *dir = inode_of(req, parent);
	struct fuse_entry_param e;
	struct stat st;
	int fd, rc;

	/* created as the caller: the owner, a setgid directory's group, the
	 * umask or a default ACL; never through a symlink planted under the
	 * name, and never blocking on a FIFO */
	if ((rc = creds_creator(req))) {
		reply_rc(req, rc);
		return;
	}
	fd = openat(dir->fd, name, access_of(fi->flags) | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	rc = fd < 0 ? errno : 0;
	creds_daemon();
	if (rc == EEXIST && !(fi->flags & O_EXCL))
		rc = (fd = open_existing(req, dir, name, fi->flags)) < 0 ? -fd : 0;
	if (rc) {
		reply_rc(req, rc);
		return;
	}
	if (fstat(fd, &st) != 0)
		rc = errno;
	else if (!S_ISREG(st.st_mode))   /* made by someone else meanwhile */
		rc = S_ISDIR(st.st_mode) ? EISDIR : EACCES;
	if (rc) {
		close(fd);
		reply_rc(req, rc);
		return;
	}
	if ((rc = inodes_lookup_fd(&r->inodes, fd, &e))) {
		close(fd);
		reply_rc(req, rc);
		return;
	}
	if ((rc = attach(r, fd, fi))) {
		inodes_forget(&r->inodes, inodes_get(&r->inodes, e.ino), 1);
		reply_rc(req, rc);
		return;
	}
	open_files_fix_size(&r->files, &e.attr);
	e.attr_timeout = e.entry_timeout = r->timeout;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {   /* interrupted */
		put_handle(r, fi);
		inodes_forget(&r->inodes, inodes_get(&r->inodes, e.ino), 1);
	}
}

/* Report a write-back error once to each open file description, as the
 * kernel's errseq does: at fsync and at close. */
static int error_since_last(struct handle *h)
{
	return rlfile_error_check(h->of->rf, &h->error_mark);
}

/* The end of an open: the kernel released it, or refused its reply. */
static int put_handle(struct rlfs *r, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	int rc = open_files_put(&r->files, h->of);

	if (rc)   /* the kernel ignores release's answer: say it here */
		fprintf(stderr, "rlfs: writing back at the last close: %s; the "
			"dirty pages stay cached and are retried\n", strerror(rc));
	handle_free(h);
	return rc;
}

void rlfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, put_handle(rlfs_of(req), fi));
}

/* close(2): a description that wrote writes its file back, and hears of
 * every write-back error it has not heard of, so that a program that
 * checks close (dd, cp) learns that its data did not reach the disk. */
void rlfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	/* relaxed: a hint set by this description's writes, which the kernel
	 * finished before it flushes */
	int rc = atomic_load_explicit(&h->wrote, memory_order_relaxed)
		 ? rlfile_flush(h->of->rf) : 0;
	int seen = error_since_last(h);

	(void)ino;
	fuse_reply_err(req, rc ? rc : seen);
}

void rlfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	int rc = rlfile_sync(h->of->rf);
	int seen = error_since_last(h);

	(void)ino;
	(void)datasync;
	fuse_reply_err(req, rc ? rc : seen);
}

static bool direct_aligned(size_t size, off_t off)
{
	return (size | (size_t)off) % PAGE == 0;
}

/* This thread's buffer of at least size bytes, page-aligned (for O_DIRECT,
 * and whole pages for the copy): kept between requests, so that a read
 * does not allocate (and free, and give back to the system) 1 MiB each
 * time; freed when the thread exits (libfuse ends idle workers).  NULL
 * without memory. */
struct thread_buffer {
	void *mem;
	size_t size;
};

static pthread_key_t buffer_key;
static pthread_once_t buffer_once = PTHREAD_ONCE_INIT;
static bool buffer_key_made;   /* else every read answers ENOMEM */

static void buffer_free(void *arg)
{
	struct thread_buffer *b = arg;

	free(b->mem);
	free(b);
}

static void buffer_key_make(void)
{
	buffer_key_made = pthread_key_create(&buffer_key, buffer_free) == 0;
}

static void *thread_buffer(size_t size)
{
	struct thread_buffer *b;

	pthread_once(&buffer_once, buffer_key_make);
	if (!buffer_key_made)
		return NULL;
	if (!(b = pthread_getspecific(buffer_key))) {
		if (!(b = calloc(1, sizeof(*b))))
			return NULL;
		if (pthread_setspecific(buffer_key, b) != 0) {
			free(b);
			return NULL;
		}
	}
	size = (size + PAGE - 1) / PAGE * PAGE + PAGE;
	if (size > b->size) {
		free(b->mem);
		b->size = 0;
		if (!(b->mem = aligned_alloc(PAGE, size)))
			return NULL;
		b->size = size;
	}
	return b->mem;
}

void rlfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	       struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	size_t done = 0;
	void *buf;
	int rc;

	(void)ino;
	if (h->direct && !direct_aligned(size, off)) {
		reply_rc(req, EINVAL);   /* as on a 4 KiB-block disk */
		return;
	}
	if (!(buf = thread_buffer(size))) {
		reply_rc(req, ENOMEM);
		return;
	}
	if (h->direct)
		rc = rlfile_direct_read(h->of->rf, buf, size, (uint64_t)off, &done);
	else
		rc = rlfile_read(h->of->rf, buf, size, (uint64_t)off, &done);
	if (rc && !done)
		fuse_reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, done);
}

/* A write by a caller without CAP_FSETID clears setuid, and setgid where
 * the group may execute, as the kernel's file_remove_privs does (rlfs
 * writes as root, and later, from its cache).  0 or an errno value. */
static int remove_privs(fuse_req_t req, struct open_file *of)
{
	struct stat st;
	mode_t kill;

	if (fuse_req_ctx(req)->uid == 0)
		return 0;
	if (fstat(of->fd, &st) != 0)
		return errno;
	kill = (st.st_mode & S_ISUID) |
	       ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) ? S_ISGID : 0);
	if (!kill || !S_ISREG(st.st_mode))
		return 0;
	return fchmod(of->fd, st.st_mode & 07777 & ~kill) ? errno : 0;
}

/* The kernel's write-back of whole pages goes past rlfile's cache to the
 * backing file (rlfile_write_through, under an exclusive range that writes
 * back and drops what rlfile cached of it): the kernel's cache already
 * holds those pages, so copying them into rlfile's too would only cost a
 * copy and a cache page per page (256 MiB copied in: 1.5 s through the
 * cache, 0.8 s with O_DIRECT, which made random 4 KiB writers slower).
 * A partial page at the end of the file goes through the cache, and what
 * the disk refuses (ENOSPC) is cached instead, dirty, and retried. */
void rlfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		off_t off, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	void *bounce;
	size_t done = 0;
	int rc;

	(void)ino;
	if (!fi->writepage && (rc = remove_privs(req, h->of))) {
		reply_rc(req, rc);
		return;
	}
	/* relaxed: see rlfs_flush; written once, by whichever write is first */
	if (!atomic_load_explicit(&h->wrote, memory_order_relaxed))
		atomic_store_explicit(&h->wrote, true, memory_order_relaxed);
	/* the kernel writes its cached pages back through any open of the
	 * file, an O_DIRECT one too: those are buffered writes all the same */
	if (fi->writepage && direct_aligned(size, off)) {
		rc = rlfile_write_through(h->of->rf, buf, size, (uint64_t)off, &done);
		if (done < size) {
			/* the disk took part (ENOSPC): the rest is cached,
			 * dirty, and rlfile retries it */
			size_t more = 0;

			rc = rlfile_write(h->of->rf, buf + done, size - done,
					  (uint64_t)off + done, &more);
			done += more;
		}
	} else if (!h->direct || fi->writepage) {
		rc = rlfile_write(h->of->rf, buf, size, (uint64_t)off, &done);
	} else if (!direct_aligned(size, off)) {
		reply_rc(req, EINVAL);
		return;
	} else if (!(bounce = thread_buffer(size))) {
		reply_rc(req, ENOMEM);
		return;
	} else {
		memcpy(bounce, buf, size);
		rc = rlfile_direct_write(h->of->rf, bounce, size, (uint64_t)off,
					 &done);
	}
	if (rc && !done)
		fuse_reply_err(req, rc);
	else
		fuse_reply_write(req, done);
}

int rlfs_truncate(fuse_req_t req, struct inode *i, struct fuse_file_info *fi,
		  off_t size)
{
	struct rlfs *r = rlfs_of(req);
	struct open_file *of;
	int fd, rc, put;

	if (size < 0)
		return EINVAL;
	if (fi && fi->fh)
		return rlfile_truncate(handle_of(fi)->of->rf, (uint64_t)size);
	if (i->type != S_IFREG)
		return i->type == S_IFDIR ? EISDIR : EINVAL;
	/* truncate(2) by name: through the file's rlfile all the same, open
	 * for the occasion if nobody has it open (the kernel checked the
	 * caller's write permission) */
	if ((fd = inodes_open(i, O_WRONLY)) < 0)
		return -fd;
	if ((rc = open_file_for(r, fd, O_WRONLY, &of)))
		return rc;
	rc = rlfile_truncate(of->rf, (uint64_t)size);
	put = open_files_put(&r->files, of);   /* a write-back error */
	return rc ? rc : put;
}

void rlfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		    off_t len, struct fuse_file_info *fi)
{
	struct rlfile *rf = handle_of(fi)->of->rf;

	(void)ino;
	if (off < 0 || len <= 0) {
		reply_rc(req, EINVAL);
		return;
	}
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		reply_rc(req, rlfile_punch(rf, (uint64_t)off, (uint64_t)len));
		return;
	}
	if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE)
		reply_rc(req, rlfile_allocate(rf, (uint64_t)off, (uint64_t)len,
					      mode == FALLOC_FL_KEEP_SIZE));
	else
		reply_rc(req, EOPNOTSUPP);   /* collapse, insert, zero range */
}
