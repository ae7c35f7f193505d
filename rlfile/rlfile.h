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
 *                             (rlfile_fault); through rlfile_mmap, the
 *                             aligned 16 pages around a load's fault (one
 *                             page for a store's) until they are mapped
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
struct rlfile_budget;

/* Points inside operations, for tests that build a race on purpose: each
 * is the window a range lock must close (the cache dropped, the disk not
 * yet changed). */
enum rlfile_point {
	RLFILE_PUNCH_DROPPED,         /* punch: pages dropped, not yet punched */
	RLFILE_TRUNCATE_DROPPED,      /* truncate: pages dropped, not yet cut */
	RLFILE_DIRECT_WRITE_FLUSHED,  /* direct write: cache dropped, not yet
				       * written */
	RLFILE_WRITE_LOCKED,          /* buffered write: its range held,
				       * nothing copied yet */
	RLFILE_WRITEBACK_WRITTEN,     /* writeback: a page written to disk,
				       * not yet marked clean (page lock
				       * held) */
};

/* Tests only (rlfile_options.test_flags): each turns one protection off,
 * for the tests that show what it prevents. */
enum {
	/* copy to and from a caller's buffer that is a mapping of an rlfile
	 * directly, under the operation's range: a fault there can deadlock
	 * (rlfile_mmap, "buffers in mappings") */
	RLFILE_TEST_NAIVE_MAPPED_BUFFERS = 1u << 0,
	/* write back without write-protecting the page in the mappings: a
	 * store during writeback can be lost */
	RLFILE_TEST_NO_WRITEPROTECT = 1u << 1,
};

struct rlfile_options {
	enum rlfile_lock lock;
	unsigned rangelock_flags;     /* e.g. RANGELOCK_DEBUG */
	unsigned writeback_ms;        /* writeback thread period; 0: none.  The
				       * thread starts at the first dirty page */
	/* The pages this file may cache (0: no limit), when budget is NULL.
	 * Clean pages beyond it are evicted (never one in use, nor a dirty
	 * one); a write that finds more than half of it dirty first writes
	 * back, and fails with the write-back's error (ENOSPC, EIO) without
	 * writing anything if that does not bring it under. */
	size_t max_cached_pages;
	/* A budget shared with other rlfiles (rlfile_budget_create): the
	 * same rules, for the pages of all of them together. */
	struct rlfile_budget *budget;
	/* Tests only: called at each point, with the range still held. */
	void (*test_hook)(void *arg, enum rlfile_point point);
	void *test_hook_arg;
	unsigned test_flags;          /* RLFILE_TEST_*; EINVAL for others */
};

/* A page budget for several rlfiles (rlfile_options.budget): max_pages in
 * all, 0 for no limit.  Destroy it after the last of them is closed (EBUSY
 * before).  ENOMEM. */
int rlfile_budget_create(size_t max_pages, struct rlfile_budget **out);
int rlfile_budget_destroy(struct rlfile_budget *b);
/* Pages its rlfiles cache now (a snapshot). */
size_t rlfile_budget_pages(struct rlfile_budget *b);

/* Open (creating if needed) the file at path.  EINVAL for a bad option. */
int rlfile_open(const char *path, const struct rlfile_options *opt,
		struct rlfile **out);
/* The same for the file fd refers to (a regular file): rlfile opens its own
 * descriptors of it through /proc/self/fd, for reading and writing, or for
 * reading only where it may not write (EPERM, EACCES, ETXTBSY, EROFS: an
 * immutable file, a running program); fd stays the caller's.  One rlfile
 * per file: two over one file are two caches that do not see each other.
 * EBADF for a bad fd, EINVAL if it is not a regular file. */
int rlfile_open_fd(int fd, const struct rlfile_options *opt,
		   struct rlfile **out);
/* Reopen a read-only rlfile's descriptors for writing (0 if they are
 * already); the errno of the open otherwise, and nothing changes.  Before
 * anything writes to a file opened read-only. */
int rlfile_make_writable(struct rlfile *f);
/* Stop writeback, write every dirty page back, close.  The final
 * write-back's error (a page that failed earlier stayed dirty, so success
 * means every write reached the file); dirty pages that still cannot be
 * written are lost: the rlfile is gone either way.  Keep it open while
 * rlfile_dirty_pages says pages wait. */
int rlfile_close(struct rlfile *f);

uint64_t rlfile_size(struct rlfile *f);
/* Pages in the cache now, and those of them dirty (snapshots). */
size_t rlfile_cached_pages(struct rlfile *f);
size_t rlfile_dirty_pages(struct rlfile *f);

/* Buffered I/O through the cache.  *done is the bytes copied: short at the
 * end of file for reads, and for either when an error (ENOMEM, EIO) stops
 * it after some bytes, which then returns 0 as pwrite(2) does; the error is
 * returned only when nothing was done.  EINVAL for an offset + len that
 * overflows.  A write may first wait for write-back (max_cached_pages). */
int rlfile_read(struct rlfile *f, void *buf, size_t len, uint64_t off,
		size_t *done);
int rlfile_write(struct rlfile *f, const void *buf, size_t len, uint64_t off,
		 size_t *done);

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
 * first, under the exclusive range.  *done as for buffered I/O: a write the
 * disk took only part of (ENOSPC midway) returns 0 with the bytes it took,
 * and the file's size covers exactly those. */
int rlfile_direct_read(struct rlfile *f, void *buf, size_t len, uint64_t off,
		       size_t *done);
int rlfile_direct_write(struct rlfile *f, const void *buf, size_t len,
			uint64_t off, size_t *done);
/* A write of whole pages straight to the file, past rlfile's cache, as
 * rlfile_direct_write (the exclusive range, cached pages written back and
 * dropped first, *done) but through the buffered descriptor: off and len
 * multiples of RLFILE_PAGE (EINVAL otherwise), buf anywhere.  For a writer
 * with a page cache of its own above rlfile (rlfs under the kernel's),
 * whose write-back would otherwise be copied into rlfile's cache first. */
int rlfile_write_through(struct rlfile *f, const void *buf, size_t len,
			 uint64_t off, size_t *done);

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
/* Write every dirty page back (and fdatasync); the first error.  A page
 * that cannot be written stays dirty and cached, to be tried again. */
int rlfile_sync(struct rlfile *f);
/* The same without fdatasync (close(2) of a description that wrote). */
int rlfile_flush(struct rlfile *f);

/* Write-back errors, told the way the kernel tells them (errseq): an open
 * file description takes a mark when it opens, and rlfile_error_check
 * returns each error recorded since its mark once (at its fsync, at its
 * close), then advances the mark; 0 when there is none.  An error nobody
 * has been told of yet is news to a mark taken after it, too. */
uint64_t rlfile_error_mark(struct rlfile *f);
int rlfile_error_check(struct rlfile *f, uint64_t *mark);
/* Write back and drop every cached page. */
int rlfile_drop_cache(struct rlfile *f);
/* Write back and drop the cached pages of [off, off + len), under an
 * exclusive range: what a node of a cluster does when another node's
 * conflicting lock takes the range from it (tests/etcd/test_etcd_rlfile.c:
 * its cache is valid only under its grant).  EINVAL for len 0 or an
 * overflowing range; a write-back error leaves those pages cached. */
int rlfile_drop_range(struct rlfile *f, uint64_t off, uint64_t len);

/*
 * Memory mappings, whose page faults are served by rlfile as a file
 * system's ->fault and ->page_mkwrite: MAP_SHARED views of the file's
 * bytes.  Loads see what rlfile_read sees; stores are what rlfile_read,
 * writeback and direct reads see afterwards.  An access to a page wholly
 * beyond the end of file is SIGBUS, as with the kernel's mmap (bytes past
 * the end in the last page read as zeros, and stores there are not
 * written).
 *
 * How: once a file is mapped, its cache pages live in a memfd, which the
 * mappings map; the mappings are registered with a userfaultfd (missing,
 * minor and write-protect faults), read by rlfile's fault threads (one
 * pinned to each CPU, and one free).  A load's fault takes the shared
 * range of the aligned 16 pages around it (inside the mapping, below the
 * end of file), fills them and maps them write-protected (fault-around);
 * a store's takes its page's range and dirties the page before mapping it
 * writable, so the first store to a clean page faults (page_mkwrite);
 * writeback write-protects a page before it writes it.  Hole punch, truncate, direct I/O and cache drops remove the pages
 * from every mapping under their exclusive range, before the disk changes,
 * so the next access faults and waits for them.
 *
 * Buffers in mappings: rlfile's calls may be given a buffer that is a
 * mapping of an rlfile (a write from a mapping of the same file).  Such a
 * buffer is copied through a bounce buffer while rlfile holds no range,
 * since a fault taken under the operation's range would wait behind an
 * exclusive request queued after it: a deadlock.
 *
 * Limits: a file is mapped below 64 GiB (EFBIG beyond).  Where the process
 * may use userfaultfd for user-mode faults only (vm.unprivileged_userfaultfd
 * = 0, without CAP_SYS_PTRACE), a system call given a mapping as its buffer
 * (write(2) from it, say) fails with EFAULT unless the pages are mapped
 * already; rlfile's own calls copy through a bounce buffer and are not
 * affected.  A fork's child does not see the mapping's faults served (its
 * accesses to pages not yet mapped in it hang): map after fork, not before.
 */

/* Whether rlfile_mmap works here: 0, or ENOSYS / EPERM with *why (if not
 * NULL) saying what is missing (userfaultfd, its minor or write-protect
 * faults on shmem, permission). */
int rlfile_mmap_supported(const char **why);
/* Map [off, off + len) of the file: off a multiple of RLFILE_PAGE, len
 * rounded up to pages, prot PROT_READ, PROT_WRITE or both (PROT_WRITE
 * needs a file open for writing: EACCES).  *addr is the mapping.  The
 * first mapping of a file writes back and drops its cache (the pages move
 * into the memfd; a write-back error is returned and nothing is mapped).
 * EINVAL for bad arguments, EFBIG beyond 64 GiB, rlfile_mmap_supported's
 * errno, or mmap's (ENOMEM).  The mapping may be used past the end of
 * file, and after the file grows it shows the new bytes. */
int rlfile_mmap(struct rlfile *f, uint64_t off, size_t len, int prot,
		void **addr);
/* Unmap a mapping rlfile_mmap made, whole (EINVAL otherwise: nothing is
 * unmapped).  Stores through it are in the cache already: dirty pages are
 * written back as any others.  rlfile_close unmaps the mappings left. */
int rlfile_munmap(struct rlfile *f, void *addr, size_t len);

/* A buffered write whose source is [src_off, src_off + len) of the same
 * file, the way a file system does it: fault the source pages in and pin
 * them first, then take the write's range, copy without faulting, and
 * retry if a source page went away meanwhile.  (Faulting under the write's
 * range would deadlock behind a queued exclusive request.) */
int rlfile_copy_within(struct rlfile *f, uint64_t dst_off, uint64_t src_off,
		       size_t len);

#endif
