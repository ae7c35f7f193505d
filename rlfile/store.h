/* SPDX-License-Identifier: MIT */
/*
 * store.h - where a mapped rlfile's cache pages live, and the mappings of
 * them (rlfile's own; not installed).
 *
 * Once an rlfile is mapped (rlfile_mmap), the data of each cached page p
 * lives in one memfd at offset p * RLFILE_PAGE: rlfile reaches it through
 * a view, one MAP_SHARED mapping of the memfd of STORE_VIEW_BYTES, and each
 * of the caller's mappings maps the same memfd pages.  So a load through a
 * mapping sees what rlfile_read sees and a store is what writeback writes,
 * without copies.  The memfd is as long as the file (rounded up to pages):
 * an access beyond that is SIGBUS, from the kernel, as with a file's own
 * mmap.  A page dropped from the cache is punched out of the memfd, which
 * removes it from every mapping at once; the next access faults.
 *
 * Faults: every mapping is registered with one userfaultfd (missing and
 * minor faults, and write-protect faults when writable).  The store's
 * threads read the faults and hand each to the cache's serve function,
 * which takes the range (of the page for a store, of the block of
 * STORE_FAULT_AROUND pages around it for a load), fills the pages and
 * calls store_install (or store_install_around).
 * Clean pages are mapped write-protected, so the first store to one faults
 * (the page_mkwrite step) and the cache marks it dirty before it is made
 * writable; writeback write-protects a page (store_protect) before it
 * writes it, so a store during writeback faults and waits for it.
 *
 * Locking: the store never takes a range or a page lock.  Its mapping list
 * has one process-wide lock (a rwlock: faults and writeback read it, mmap
 * and munmap write it), never held across anything that waits.
 */
#ifndef RLFILE_STORE_H
#define RLFILE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The view's size: pages at or beyond it are kept in ordinary memory, and
 * cannot be mapped (EFBIG).  Address space only, reserved per mapped
 * file; the memfd holds only the pages cached. */
#define STORE_VIEW_BYTES ((uint64_t)64 << 30)

struct rlfile_store;

/* Pages a load fault may map at once (the kernel's fault_around_bytes):
 * the aligned block of them around the fault, inside its mapping. */
#define STORE_FAULT_AROUND 16

/* A fault read from the userfaultfd, for the serve function to resolve:
 * the file page it is on, whether it is a store, and where; and the
 * pages around it [around, around + n_around) that a load may map too
 * (store_install_around). */
struct store_fault {
	uint64_t pgoff;
	bool write;
	uint64_t around;
	unsigned n_around;
	/* private */
	uintptr_t addr;
	unsigned map_id;
};

/* Serve one fault: bring page pgoff in under its range, then call
 * store_install (or store_wake when it cannot be served: the access is
 * retried, and beyond the end of file it is SIGBUS). */
typedef void store_serve_fn(void *arg, struct store_fault *fault);

/* Whether mappings work here: 0, or ENOSYS/EPERM with *why saying what is
 * missing (userfaultfd, a feature of it, memfd). */
int store_supported(const char **why);

/* A store for a file of `size` bytes; fault threads call serve(arg, ...).
 * ENOMEM, EMFILE, or the errno of memfd_create. */
int store_create(uint64_t size, store_serve_fn *serve, void *arg,
		 struct rlfile_store **out);
/* Unmap what mappings are left and stop the fault threads (the memory
 * stays until store_destroy); again is a no-op. */
void store_stop(struct rlfile_store *s);
/* store_stop, and free the memory. */
void store_destroy(struct rlfile_store *s);

/* The memory of page pgoff in the view, or NULL beyond STORE_VIEW_BYTES
 * (the cache then allocates the page itself). */
unsigned char *store_page(struct rlfile_store *s, uint64_t pgoff);
/* The file is now `size` bytes: the memfd follows (shrinking it drops the
 * pages beyond from every mapping).  The errno of ftruncate. */
int store_resize(struct rlfile_store *s, uint64_t size);
/* Page pgoff leaves the cache: punch it out of the memfd (and so out of
 * every mapping). */
void store_forget(struct rlfile_store *s, uint64_t pgoff);
/* Write-protect page pgoff in every writable mapping of it (before it is
 * written back and marked clean). */
void store_protect(struct rlfile_store *s, uint64_t pgoff);

/* Map [off, off + len) of the file (off and len in whole pages) with prot
 * (PROT_READ, PROT_WRITE).  EFBIG beyond the view; the errno of mmap or of
 * userfaultfd otherwise (ENOSYS, EPERM: store_supported says why). */
int store_map(struct rlfile_store *s, uint64_t off, size_t len, int prot,
	      void **addr);
/* Unmap a whole mapping store_map returned: EINVAL if [addr, addr + len)
 * is not exactly one. */
int store_unmap(struct rlfile_store *s, void *addr, size_t len);
/* Whether [buf, buf + len) overlaps a mapping of any rlfile of this
 * process: copying from or to it may fault into a range lock. */
bool store_overlaps(const void *buf, size_t len);

/* Map the fault's page, write-protected unless the fault is a store; or
 * lift the protection of a page mapped already.  Wakes the faulting
 * thread. */
void store_install(struct rlfile_store *s, const struct store_fault *fault);
/* For a load: map the pages of [first, first + n) (inside the fault's
 * around block) that are not mapped yet, write-protected, then the
 * fault's own page as store_install does. */
void store_install_around(struct rlfile_store *s, const struct store_fault *fault,
			  uint64_t first, unsigned n);
/* Wake the faulting thread without mapping anything: it faults again. */
void store_wake(struct rlfile_store *s, const struct store_fault *fault);

#endif
