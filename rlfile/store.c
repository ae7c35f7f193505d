/* SPDX-License-Identifier: MIT */
/*
 * store.c - a mapped rlfile's page memory (one memfd), the caller's
 * mappings of it and the userfaultfd that reports their faults.  What the
 * store promises, and the lock rules, are in store.h.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rlfile.h"

#define PAGE ((uint64_t)RLFILE_PAGE)
/*
 * Fault threads: one on each CPU the process may use, and one free to
 * move.  A fault wakes every thread waiting on the userfaultfd; the one on
 * the faulting thread's CPU serves it without a wake-up of another CPU,
 * which on this project's virtual machines costs 50 us where a switch on
 * one CPU costs 4 (the numbers are in the README).  The free one serves
 * faults while the others wait for ranges.
 */
#define STORE_MAX_THREADS 65

/* Linux 6.3's; older headers (Debian 12's) lack it. */
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif

#define NEEDED_FEATURES (UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM | \
			 UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

/* A mapping: in the process-wide list, under maps_lock. */
struct store_map {
	uintptr_t addr;
	size_t len;
	uint64_t off;               /* the file offset at addr */
	bool writable;              /* registered for write-protect faults */
	unsigned id;                /* tells a fault's mapping from a later
				     * one at the same address */
	struct rlfile_store *store;
	struct store_map *next;
};

struct rlfile_store {
	int memfd;
	unsigned char *view;        /* STORE_VIEW_BYTES of the memfd */
	store_serve_fn *serve;
	void *serve_arg;
	pthread_mutex_t mu;         /* creating the userfaultfd and threads */
	int uffd;                   /* -1 until the first mapping */
	int stopfd;                 /* an eventfd: the threads' signal to end */
	int nthreads;
	pthread_t threads[STORE_MAX_THREADS];
};

static pthread_rwlock_t maps_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct store_map *maps;            /* maps_lock */
static unsigned maps_next_id;             /* maps_lock (written) */
/* How many mappings exist: lets store_overlaps skip the lock when none.
 * release on change, acquire in store_overlaps: a thread that learned a
 * mapping's address from its creator sees it counted. */
static atomic_uint maps_count;

/* ---- the userfaultfd ---------------------------------------------------- */

/* A new userfaultfd, with only user-mode faults where this process may not
 * have more (vm.unprivileged_userfaultfd = 0 without CAP_SYS_PTRACE). */
static int uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 && errno == EPERM)
		fd = (int)syscall(SYS_userfaultfd,
				  O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	return fd;
}

/* What this kernel's userfaultfd cannot do of what we need: 0, or an errno
 * and a reason (computed once). */
static const char *unsupported_why;
static int unsupported_rc;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd = uffd_open();

	if (fd < 0) {
		unsupported_rc = errno == ENOSYS ? ENOSYS : EPERM;
		unsupported_why = errno == ENOSYS
			? "the kernel has no userfaultfd"
			: "userfaultfd is not permitted to this process "
			  "(vm.unprivileged_userfaultfd, seccomp)";
		return;
	}
	if (ioctl(fd, UFFDIO_API, &api) != 0) {
		unsupported_rc = ENOSYS;
		unsupported_why = "userfaultfd refuses its API handshake";
	} else if (!(api.features & UFFD_FEATURE_MISSING_SHMEM)) {
		unsupported_rc = ENOSYS;
		unsupported_why = "userfaultfd lacks missing faults on shmem";
	} else if (!(api.features & UFFD_FEATURE_MINOR_SHMEM)) {
		unsupported_rc = ENOSYS;
		unsupported_why = "userfaultfd lacks minor faults on shmem (Linux 5.14)";
	} else if (!(api.features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM)) {
		unsupported_rc = ENOSYS;
		unsupported_why = "userfaultfd lacks write-protect on shmem (Linux 5.19)";
	}
	close(fd);
}

int store_supported(const char **why)
{
	pthread_once(&probe_once, probe);
	if (why)
		*why = unsupported_why;
	return unsupported_rc;
}

static struct store_map *map_find(struct rlfile_store *s, uintptr_t addr)
{
	for (struct store_map *m = maps; m; m = m->next)
		if (m->store == s && addr - m->addr < m->len)
			return m;
	return NULL;
}

static void uffd_wake(struct rlfile_store *s, uintptr_t addr)
{
	struct uffdio_range r = { .start = addr, .len = PAGE };

	ioctl(s->uffd, UFFDIO_WAKE, &r);   /* fails only for a range gone */
}

/* One fault message: find its mapping and hand it to the cache. */
static void serve_one(struct rlfile_store *s, const struct uffd_msg *msg)
{
	uintptr_t addr = (uintptr_t)msg->arg.pagefault.address & ~(uintptr_t)(PAGE - 1);
	struct store_fault fault = { .addr = addr };
	struct store_map *m;

	pthread_rwlock_rdlock(&maps_lock);
	m = map_find(s, addr);
	if (m) {
		uint64_t first = m->off / PAGE, end = first + m->len / PAGE;

		fault.pgoff = (m->off + (addr - m->addr)) / PAGE;
		fault.write = msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE;
		fault.map_id = m->id;
		fault.around = fault.pgoff & ~(uint64_t)(STORE_FAULT_AROUND - 1);
		if (fault.around < first)
			fault.around = first;
		end = end < fault.around + STORE_FAULT_AROUND ? end
							      : fault.around + STORE_FAULT_AROUND;
		fault.n_around = (unsigned)(end - fault.around);
	}
	pthread_rwlock_unlock(&maps_lock);
	if (m)
		s->serve(s->serve_arg, &fault);
	else
		uffd_wake(s, addr);   /* unmapped meanwhile */
}

static void *serve_main(void *arg)
{
	struct rlfile_store *s = arg;
	struct pollfd pfd[2] = { { s->uffd, POLLIN, 0 }, { s->stopfd, POLLIN, 0 } };

	for (;;) {
		struct uffd_msg msg;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		/* another thread may have read it first: EAGAIN */
		if (read(s->uffd, &msg, sizeof(msg)) != (ssize_t)sizeof(msg))
			continue;
		if (msg.event == UFFD_EVENT_PAGEFAULT)
			serve_one(s, &msg);
	}
	return NULL;
}

/* The fault threads: pinned one to each CPU of ours, and one free.  They
 * block every signal, so that the process's signals reach its own
 * threads, never a fault thread in the middle of a fault. */
static void start_threads(struct rlfile_store *s)
{
	cpu_set_t cpus;
	sigset_t all, old;
	int cpu = 0, ncpus;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0)
		CPU_ZERO(&cpus);
	ncpus = CPU_COUNT(&cpus);
	if (ncpus > STORE_MAX_THREADS - 1)
		ncpus = 0;   /* too many to pin: free threads only */
	for (s->nthreads = 0; s->nthreads < ncpus + 1; s->nthreads++) {
		pthread_attr_t attr;
		cpu_set_t one;
		bool pinned = s->nthreads < ncpus;

		pthread_attr_init(&attr);
		if (pinned) {
			while (!CPU_ISSET(cpu, &cpus))
				cpu++;
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			cpu++;
			pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
		}
		int rc = pthread_create(&s->threads[s->nthreads], &attr, serve_main, s);

		pthread_attr_destroy(&attr);
		if (rc != 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The userfaultfd and its threads, at the first mapping (s->mu held). */
static int uffd_start(struct rlfile_store *s)
{
	struct uffdio_api api = { .api = UFFD_API, .features = NEEDED_FEATURES };
	int rc = store_supported(NULL);

	if (rc)
		return rc;
	s->uffd = uffd_open();
	if (s->uffd < 0)
		return errno;
	s->stopfd = eventfd(0, EFD_CLOEXEC);
	if (s->stopfd < 0 || ioctl(s->uffd, UFFDIO_API, &api) != 0) {
		rc = s->stopfd < 0 ? errno : ENOSYS;
		goto fail;
	}
	start_threads(s);
	if (s->nthreads)
		return 0;
	rc = EAGAIN;
fail:
	if (s->stopfd >= 0)
		close(s->stopfd);
	close(s->uffd);
	s->uffd = s->stopfd = -1;
	return rc;
}

void store_install(struct rlfile_store *s, const struct store_fault *fault)
{
	struct store_map *m;

	pthread_rwlock_rdlock(&maps_lock);
	m = map_find(s, fault->addr);
	if (m && m->id == fault->map_id) {
		/* clean pages are mapped read-only (store.h): a store to one
		 * faults again, as a write, for the cache to mark it dirty */
		struct uffdio_continue c = {
			.range = { .start = fault->addr, .len = PAGE },
			.mode = m->writable && !fault->write ? UFFDIO_CONTINUE_MODE_WP : 0,
		};

		if (ioctl(s->uffd, UFFDIO_CONTINUE, &c) == 0) {
			m = NULL;   /* mapped, and the thread woken */
		} else if (errno == EEXIST && fault->write && m->writable) {
			/* mapped already, write-protected: lift it (wakes) */
			struct uffdio_writeprotect wp = {
				.range = { .start = fault->addr, .len = PAGE },
				.mode = 0,
			};

			if (ioctl(s->uffd, UFFDIO_WRITEPROTECT, &wp) == 0)
				m = NULL;
		}
	}
	pthread_rwlock_unlock(&maps_lock);
	if (m)   /* mapped by another fault, or the mapping changed: retry */
		uffd_wake(s, fault->addr);
}

void store_install_around(struct rlfile_store *s, const struct store_fault *fault,
			  uint64_t first, unsigned n)
{
	struct store_map *m;

	pthread_rwlock_rdlock(&maps_lock);
	m = map_find(s, fault->addr);
	for (uint64_t p = first; m && m->id == fault->map_id && p < first + n; p++) {
		struct uffdio_continue c = {
			.range = { .start = m->addr + (p * PAGE - m->off), .len = PAGE },
			.mode = UFFDIO_CONTINUE_MODE_DONTWAKE |
				(m->writable ? UFFDIO_CONTINUE_MODE_WP : 0),
		};

		/* EEXIST: mapped already; nobody waits on these */
		if (p != fault->pgoff)
			ioctl(s->uffd, UFFDIO_CONTINUE, &c);
	}
	pthread_rwlock_unlock(&maps_lock);
	store_install(s, fault);
}

void store_wake(struct rlfile_store *s, const struct store_fault *fault)
{
	uffd_wake(s, fault->addr);
}

void store_protect(struct rlfile_store *s, uint64_t pgoff)
{
	uint64_t off = pgoff * PAGE;

	/* acquire: pairs with the release in store_map and store_unmap */
	if (!atomic_load_explicit(&maps_count, memory_order_acquire))
		return;
	pthread_rwlock_rdlock(&maps_lock);
	for (struct store_map *m = maps; m; m = m->next) {
		if (m->store != s || !m->writable || off - m->off >= m->len)
			continue;
		struct uffdio_writeprotect wp = {
			.range = { .start = m->addr + (off - m->off), .len = PAGE },
			.mode = UFFDIO_WRITEPROTECT_MODE_WP,
		};

		ioctl(s->uffd, UFFDIO_WRITEPROTECT, &wp);
	}
	pthread_rwlock_unlock(&maps_lock);
}

/* ---- mappings ----------------------------------------------------------- */

int store_map(struct rlfile_store *s, uint64_t off, size_t len, int prot,
	      void **addr)
{
	struct store_map *m;
	struct uffdio_register reg;
	void *at;
	int rc = 0;

	if (off > STORE_VIEW_BYTES || len > STORE_VIEW_BYTES - off)
		return EFBIG;
	pthread_mutex_lock(&s->mu);
	if (s->uffd < 0)
		rc = uffd_start(s);
	pthread_mutex_unlock(&s->mu);
	if (rc)
		return rc;
	if (!(m = calloc(1, sizeof(*m))))
		return ENOMEM;
	at = mmap(NULL, len, prot, MAP_SHARED, s->memfd, (off_t)off);
	if (at == MAP_FAILED) {
		free(m);
		return errno;
	}
	m->addr = (uintptr_t)at;
	m->len = len;
	m->off = off;
	m->writable = prot & PROT_WRITE;
	m->store = s;
	reg = (struct uffdio_register){
		.range = { .start = m->addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR |
			(m->writable ? UFFDIO_REGISTER_MODE_WP : 0),
	};
	if (ioctl(s->uffd, UFFDIO_REGISTER, &reg) != 0) {
		rc = errno;
		munmap(at, len);
		free(m);
		return rc;
	}
	pthread_rwlock_wrlock(&maps_lock);
	m->id = ++maps_next_id;
	m->next = maps;
	maps = m;
	/* release: pairs with the acquires in store_overlaps, store_protect */
	atomic_fetch_add_explicit(&maps_count, 1, memory_order_release);
	pthread_rwlock_unlock(&maps_lock);
	*addr = at;
	return 0;
}

/* Take m out of the list and out of the address space (maps_lock held for
 * writing).  Unregistering wakes the faults waiting in it. */
static void map_remove(struct store_map **pp)
{
	struct store_map *m = *pp;
	struct uffdio_range r = { .start = m->addr, .len = m->len };

	*pp = m->next;
	/* release: see store_map */
	atomic_fetch_sub_explicit(&maps_count, 1, memory_order_release);
	ioctl(m->store->uffd, UFFDIO_UNREGISTER, &r);
	munmap((void *)m->addr, m->len);
	free(m);
}

int store_unmap(struct rlfile_store *s, void *addr, size_t len)
{
	struct store_map **pp;
	int rc = EINVAL;

	pthread_rwlock_wrlock(&maps_lock);
	for (pp = &maps; *pp; pp = &(*pp)->next)
		if ((*pp)->store == s && (*pp)->addr == (uintptr_t)addr &&
		    (*pp)->len == len) {
			map_remove(pp);
			rc = 0;
			break;
		}
	pthread_rwlock_unlock(&maps_lock);
	return rc;
}

bool store_overlaps(const void *buf, size_t len)
{
	uintptr_t a = (uintptr_t)buf;
	bool hit = false;

	/* acquire: see store_map */
	if (!len || !atomic_load_explicit(&maps_count, memory_order_acquire))
		return false;
	pthread_rwlock_rdlock(&maps_lock);
	for (struct store_map *m = maps; m && !hit; m = m->next)
		hit = a < m->addr + m->len && m->addr < a + len;
	pthread_rwlock_unlock(&maps_lock);
	return hit;
}

/* ---- the memory ----------------------------------------------------------- */

int store_create(uint64_t size, store_serve_fn *serve, void *arg,
		 struct rlfile_store **out)
{
	struct rlfile_store *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return ENOMEM;
	s->uffd = s->stopfd = -1;
	s->serve = serve;
	s->serve_arg = arg;
	s->memfd = memfd_create("rlfile", MFD_CLOEXEC);
	if (s->memfd < 0) {
		rc = errno;
		free(s);
		return rc;
	}
	if ((rc = store_resize(s, size)) == 0) {
		s->view = mmap(NULL, STORE_VIEW_BYTES, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_NORESERVE, s->memfd, 0);
		if (s->view == MAP_FAILED)
			rc = errno;
	}
	if (rc) {
		close(s->memfd);
		free(s);
		return rc;
	}
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	return 0;
}

void store_stop(struct rlfile_store *s)
{
	pthread_rwlock_wrlock(&maps_lock);
	for (struct store_map **pp = &maps; *pp;)
		if ((*pp)->store == s)
			map_remove(pp);
		else
			pp = &(*pp)->next;
	pthread_rwlock_unlock(&maps_lock);
	if (s->uffd >= 0) {
		uint64_t one = 1;

		if (write(s->stopfd, &one, sizeof(one)) != sizeof(one))
			abort();   /* an eventfd write of 1 cannot fail */
		for (int i = 0; i < s->nthreads; i++)
			pthread_join(s->threads[i], NULL);
		close(s->stopfd);
		close(s->uffd);
		s->uffd = s->stopfd = -1;
	}
}

void store_destroy(struct rlfile_store *s)
{
	store_stop(s);
	munmap(s->view, STORE_VIEW_BYTES);
	close(s->memfd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

unsigned char *store_page(struct rlfile_store *s, uint64_t pgoff)
{
	return pgoff < STORE_VIEW_BYTES / PAGE ? s->view + pgoff * PAGE : NULL;
}

int store_resize(struct rlfile_store *s, uint64_t size)
{
	uint64_t pages = size / PAGE + (size % PAGE != 0);

	return ftruncate(s->memfd, (off_t)(pages * PAGE)) == 0 ? 0 : errno;
}

void store_forget(struct rlfile_store *s, uint64_t pgoff)
{
	/* fails only for a page beyond the memfd, which holds nothing */
	fallocate(s->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)(pgoff * PAGE), (off_t)PAGE);
}
