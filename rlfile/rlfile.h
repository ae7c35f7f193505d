/* SPDX-License-Identifier: MIT */
/*
 * rlfile.h - a small page cache over a real file, locked the way a file
 * system locks it: one rangelock_t over the file's bytes.
 *
 *   operation                 range lock
 *   buffered read             shared, the pages touched
 *   buffered write            shared, the pages touched; exclusive from the
 *                             old end of file to RANGELOCK_EOF when it
 *                             extends the file (see "size", below)
 *   page fault                shared, one page, held until rlfile_fault_done
 *   writeback (thread, sync)  shared, the page written
 *   direct read / write       exclusive, the pages touched
 *   truncate                  exclusive, from the new size's page to EOF
 *   punch hole                exclusive, the range
 *   drop cache                exclusive, the whole file
 *
 * Lock order: the range lock, then a page's lock, then the cache's bucket
 * lock (held only to look a page up or insert it).  Nothing takes a range
 * lock while holding a page lock.  A fault holds its page locked until
 * rlfile_fault_done (the caller's stores through it are made under the
 * page lock, as a kernel writes a locked page: writeback never copies a
 * half-written page); so do not call rlfile on that page meanwhile.
 *
 * Size.  The cached size changes only under an exclusive range that runs to
 * RANGELOCK_EOF from at or below both the old and the new size: truncate
 * takes [new size, EOF) and a size-extending write takes [old size, EOF).
 * So a reader's shared range below the size sees a stable size for its
 * pages, and truncate and extending writes are serialised.
 *
 * Every function returns 0 or a positive errno value.  RLFILE_LOCK_FILE
 * replaces the range lock with one pthread_rwlock_t (shared/exclusive as
 * above, over the whole file: the design Linux chose), RLFILE_LOCK_NONE
 * skips locking altogether (for the torture test's proof that it has
 * teeth); both keep the page locks.
 */
#ifndef RLFILE_H
#define RLFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rangelock.h"

#define RLFILE_PAGE 4096u

enum rlfile_lock { RLFILE_LOCK_RANGE, RLFILE_LOCK_FILE, RLFILE_LOCK_NONE };

struct rlfile;
struct rlfile_page;

/* Points inside operations, for tests that build a race on purpose: each
 * is the window a range lock must close (the cache dropped, the disk not
 * yet changed). */
enum rlfile_point {
	RLFILE_PUNCH_DROPPED,         /* punch: pages dropped, not yet punched */
	RLFILE_TRUNCATE_DROPPED,      /* truncate: pages dropped, not yet cut */
	RLFILE_DIRECT_WRITE_FLUSHED,  /* direct write: cache dropped, not yet
				       * written */
};

struct rlfile_options {
	enum rlfile_lock lock;
	unsigned rangelock_flags;     /* e.g. RANGELOCK_DEBUG */
	unsigned writeback_ms;        /* writeback thread period; 0: none */
	/* Clean pages cached beyond this many are evicted (0: no limit).  A
	 * page in use is never evicted, nor a dirty one: dirty pages wait for
	 * writeback, so with writeback_ms 0 the limit holds only clean ones. */
	size_t max_cached_pages;
	/* Tests only: called at each point, with the range still held. */
	void (*test_hook)(void *arg, enum rlfile_point point);
	void *test_hook_arg;
};

/* Open (creating if needed) the file at path.  EINVAL for a bad option. */
int rlfile_open(const char *path, const struct rlfile_options *opt,
		struct rlfile **out);
/* The same for the file fd refers to (a regular file): rlfile opens its own
 * descriptors of it through /proc/self/fd; fd stays the caller's.  One
 * rlfile per file: two over one file are two caches that do not see each
 * other.  EBADF for a bad fd, EINVAL if it is not a regular file. */
int rlfile_open_fd(int fd, const struct rlfile_options *opt,
		   struct rlfile **out);
/* Flush dirty pages, stop writeback, close.  The first error wins; the
 * rlfile is gone either way. */
int rlfile_close(struct rlfile *f);

uint64_t rlfile_size(struct rlfile *f);
/* Pages in the cache now (a snapshot). */
size_t rlfile_cached_pages(struct rlfile *f);

/* Buffered I/O through the cache.  *done is the bytes copied (short at the
 * end of file for reads).  EINVAL for an offset + len that overflows. */
int rlfile_read(struct rlfile *f, void *buf, size_t len, uint64_t off,
		size_t *done);
int rlfile_write(struct rlfile *f, const void *buf, size_t len, uint64_t off);

/* A fault in progress: the caller's, filled by rlfile_fault. */
struct rlfile_fault {
	unsigned char *data;          /* the page's RLFILE_PAGE bytes */
	/* private */
	struct rlfile_page *page;
	rangelock_range_t range;
	bool write;
};

/* Page fault: pin page pgoff (reading it from disk if missing) and hold a
 * shared range on it until rlfile_fault_done; write through flt->data.
 * ENXIO beyond the end of file (SIGBUS).  A write fault marks the page
 * dirty when done.  EDEADLK: the lock has RANGELOCK_DEBUG and the caller
 * already holds a range over this page. */
int rlfile_fault(struct rlfile *f, uint64_t pgoff, bool write,
		 struct rlfile_fault *flt);
void rlfile_fault_done(struct rlfile *f, struct rlfile_fault *flt);

/* O_DIRECT I/O: buf, off and len must be multiples of RLFILE_PAGE (EINVAL
 * otherwise).  Cached pages of the range are written back and dropped
 * first, under the exclusive range. */
int rlfile_direct_read(struct rlfile *f, void *buf, size_t len, uint64_t off,
		       size_t *done);
int rlfile_direct_write(struct rlfile *f, const void *buf, size_t len,
			uint64_t off);

int rlfile_truncate(struct rlfile *f, uint64_t size);
/* Zero [off, off + len) by dropping its cache pages (partial pages are
 * zeroed in the cache) and fallocate(PUNCH_HOLE). */
int rlfile_punch(struct rlfile *f, uint64_t off, uint64_t len);
/* fallocate(2) mode 0 or FALLOC_FL_KEEP_SIZE: reserve blocks for
 * [off, off + len), which reads as before (zeros where it was a hole);
 * without keep_size the file grows to off + len if it was shorter.
 * EINVAL for len 0 or an overflowing range; the file system's errno
 * (EOPNOTSUPP, ENOSPC) otherwise. */
int rlfile_allocate(struct rlfile *f, uint64_t off, uint64_t len,
		    bool keep_size);
/* Write every dirty page back (and fdatasync). */
int rlfile_sync(struct rlfile *f);
/* Write back and drop every cached page. */
int rlfile_drop_cache(struct rlfile *f);

/* A buffered write whose source is [src_off, src_off + len) of the same
 * file, the way a file system does it: fault the source pages in and pin
 * them first, then take the write's range, copy without faulting, and
 * retry if a source page went away meanwhile.  (Faulting under the write's
 * range would deadlock behind a queued exclusive request.) */
int rlfile_copy_within(struct rlfile *f, uint64_t dst_off, uint64_t src_off,
		       size_t len);

#endif
