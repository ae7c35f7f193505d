/* SPDX-License-Identifier: MIT */
/*
 * rlfile-torture - threads doing buffered reads and writes, faults (writing
 * through the page), direct I/O, punches, syncs, cache drops and truncates
 * on one rlfile while its writeback thread runs, checked by an oracle.
 *
 * The oracle is ownership: thread t owns pages [t*K, (t+1)*K) and is the
 * only one that changes them, so it knows exactly what each of its pages
 * holds and checks every read, fault and direct read of them exactly.  A
 * page's content is one 8-byte stamp repeated, (page + 1) << 40 | thread
 * << 32 | generation, or zeros.  Reads of other threads' pages check that
 * every word is zero or stamped with the right page.  The last thread also
 * owns the end of the file: it alone truncates within its pages and extends
 * the file again by writing.  At the end the file is synced, the cache
 * dropped, and the whole file on disk compared with the oracle.
 *
 * With --mmap, workers also load and store through one rlfile_mmap mapping
 * of the whole file (map-load, map-store): real page faults, served by
 * rlfile under the range lock, checked by the same oracle.  A load of a
 * page beyond the end of file must be SIGBUS, and only there.  map-write
 * rewrites pages with rlfile_write from their own mapping, which must
 * neither hang nor change them.
 *
 * With --path, the same workers are processes that drive a file by system
 * calls instead (a file on an rlfs mount, say): each opens it twice, once
 * with O_DIRECT; a fault is a store or load through mmap, a punch is
 * fallocate, a truncate ftruncate, a sync fsync, and a cache drop closes
 * and reopens the worker's descriptors.  Faults are off by default there
 * (rlfs serves no shared mapping when mounted with --direct-io),
 * and touch only the worker's own pages (another's may be truncated away,
 * and through mmap that is SIGBUS).
 *
 * The file: --file or --path names a file that must not exist yet; the
 * torture creates it and removes it at the end (--keep: leaves it).  An
 * existing file is refused unless --force, and then only a regular file,
 * whose content is lost.  Without either, a fresh file in /tmp.  Every
 * page starts as a hole (zeros), so neither the setup nor the memory grows
 * with the file beyond the final check's read of it.
 *
 * usage: rlfile-torture [--lock=range|file|none] [--seconds S] [--threads N]
 *          [--pages-per-thread K] [--seed X] [--file PATH] [--force] [--keep]
 *          [--expect-violations]
 *          [--mix read=30,write=15,...]  (the weights of the operations
 *          named; those not named keep theirs; 0 turns one off)
 *          [--cache-pages N]  (rlfile evicts clean pages beyond N)
 *          [--mmap]  (map-load and map-store join the mix; exit 77 where
 *          rlfile_mmap is not supported)
 *        rlfile-torture --path PATH [the same options but --lock and --file]
 * Exit 0 when no violation was seen (with --expect-violations: when some
 * were, the proof that the test has teeth; with --mmap too, some seen
 * through the mapping); 1 otherwise; 2 for a usage error or a file that
 * cannot be made; 77 for --mmap where mappings are not supported.
 */
#include "rlfile.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "test_sigbus.h"

#define PAGE RLFILE_PAGE
#define WORDS (PAGE / 8)
#define ABSENT UINT64_MAX      /* beyond the end of file */
#define FINAL_READ_PAGES 64     /* the final check's reads */

enum op { OP_READ, OP_WRITE, OP_FAULT_READ, OP_FAULT_WRITE, OP_DIRECT_READ,
	  OP_DIRECT_WRITE, OP_PUNCH, OP_SYNC, OP_DROP, OP_TRUNCATE, OP_MAP_LOAD,
	  OP_MAP_STORE, OP_MAP_WRITE, NOPS };
static const char *const op_name[NOPS] = {
	"read", "write", "fault-read", "fault-write", "direct-read",
	"direct-write", "punch", "sync", "drop-cache", "truncate", "map-load",
	"map-store", "map-write",
};
/* The mix, in parts (truncate only for the last thread; for the others
 * its share becomes reads); --mix changes it, --mmap turns the mapping's
 * on. */
static int op_weight[NOPS] = { 30, 15, 15, 8, 8, 8, 8, 2, 1, 5, 0, 0, 0 };
#define MAP_LOAD_WEIGHT 15
#define MAP_STORE_WEIGHT 8
#define MAP_WRITE_WEIGHT 5
static int op_total = 100;
static bool op_named[NOPS];  /* by --mix */

struct worker {
	pthread_t thread;            /* rlfile: workers are threads */
	pid_t pid;                   /* --path: workers are processes */
	int fd, dfd;                 /* --path: buffered and O_DIRECT */
	int id;
	uint64_t rng;
	uint64_t first, count;       /* owned pages */
	uint64_t *expect;            /* per owned page: stamp, 0, or ABSENT */
	uint32_t gen;
	unsigned char *buf;          /* 4 pages, page-aligned */
	long ops[NOPS];
	long violations;
};

static struct {
	enum rlfile_lock lock;
	double seconds;
	int threads;
	uint64_t k;
	uint64_t seed;
	const char *path;
	const char *sys_path;        /* --path */
	bool expect_violations;
	size_t cache_pages;          /* rlfile's limit; 0: none */
	bool mmap;
	bool force;                  /* --force: may overwrite a regular file */
	bool keep;                   /* --keep: leave the file at the end */
} cfg = { .lock = RLFILE_LOCK_RANGE, .seconds = 3.0, .threads = 4, .k = 16 };

/* The file this run created, removed at exit unless --keep. */
static const char *created;

static void remove_created(void)
{
	if (created && !cfg.keep)
		unlink(created);
}

static struct rlfile *file;
static unsigned char *file_map;  /* --mmap: the whole file, mapped */

/* What the workers share, in memory shared with them whether they are
 * threads or processes. */
static struct shared {
	atomic_bool stop;
	atomic_long violations;
	atomic_long map_violations;   /* of them, seen through the mapping */
} *shared;

static void *shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("rlfile-torture: mmap");
		exit(2);
	}
	return p;   /* zeroed */
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void fill(unsigned char *p, uint64_t stamp)
{
	for (unsigned i = 0; i < WORDS; i++)
		memcpy(p + 8 * i, &stamp, 8);
}

static void violation(struct worker *w, const char *what, uint64_t page,
		      uint64_t want, uint64_t got)
{
	/* relaxed: counters read after join */
	if (!strncmp(what, "map ", 4))
		atomic_fetch_add_explicit(&shared->map_violations, 1, memory_order_relaxed);
	if (atomic_fetch_add_explicit(&shared->violations, 1, memory_order_relaxed) < 10)
		fprintf(stderr, "rlfile-torture: thread %d: %s page %" PRIu64
			": expected %#" PRIx64 ", found %#" PRIx64 "\n",
			w->id, what, page, want, got);
	w->violations++;
}

/* Check one page's bytes: exactly `want` if we own it, else plausibly. */
static void check(struct worker *w, const char *what, uint64_t page,
		  const unsigned char *p, bool own, uint64_t want)
{
	for (unsigned i = 0; i < WORDS; i++) {
		uint64_t v;

		memcpy(&v, p + 8 * i, 8);
		if (own ? v != want : v != 0 && v >> 40 != page + 1) {
			violation(w, what, page, want, v);
			return;
		}
	}
}

static uint64_t *expect_of(struct worker *w, uint64_t page)
{
	return &w->expect[page - w->first];
}

static uint64_t stamp(struct worker *w, uint64_t page)
{
	return (page + 1) << 40 | (uint64_t)w->id << 32 | ++w->gen;
}

static uint64_t total_pages(void)
{
	return (uint64_t)cfg.threads * cfg.k;
}

/* n contiguous pages starting in our region (fewer at its end). */
static uint64_t pick_own(struct worker *w, uint64_t *n)
{
	uint64_t first = w->first + rng_next(&w->rng) % w->count;
	uint64_t max = w->first + w->count - first;

	*n = 1 + rng_next(&w->rng) % 4;
	if (*n > max)
		*n = max;
	return first;
}

/* ---- the file: rlfile's calls, or system calls on --path ------------- */

static int sys_open(struct worker *w)
{
	w->fd = open(cfg.sys_path, O_RDWR | O_CLOEXEC);
	w->dfd = open(cfg.sys_path, O_RDWR | O_DIRECT | O_CLOEXEC);
	return w->fd < 0 || w->dfd < 0 ? errno : 0;
}

static void sys_close(struct worker *w)
{
	close(w->fd);
	close(w->dfd);
}

/* pread/pwrite to the end: a short count is only the end of file. */
static int sys_rw(int fd, bool write, void *buf, size_t len, uint64_t off,
		  size_t *done)
{
	*done = 0;
	while (*done < len) {
		ssize_t n = write ? pwrite(fd, (char *)buf + *done, len - *done,
					   (off_t)(off + *done))
				  : pread(fd, (char *)buf + *done, len - *done,
					  (off_t)(off + *done));
		if (n < 0)
			return errno;
		if (n == 0)
			return write ? EIO : 0;
		*done += (size_t)n;
	}
	return 0;
}

static int io_read(struct worker *w, bool direct, size_t len, uint64_t off,
		   size_t *done)
{
	if (cfg.sys_path)
		return sys_rw(direct ? w->dfd : w->fd, false, w->buf, len, off, done);
	return direct ? rlfile_direct_read(file, w->buf, len, off, done)
		      : rlfile_read(file, w->buf, len, off, done);
}

/* A write must be whole here (the file system has room): a short one is a
 * failure, EIO. */
static int io_write(struct worker *w, bool direct, size_t len, uint64_t off)
{
	size_t done;
	int rc;

	if (cfg.sys_path)
		rc = sys_rw(direct ? w->dfd : w->fd, true, w->buf, len, off, &done);
	else if (direct)
		rc = rlfile_direct_write(file, w->buf, len, off, &done);
	else
		rc = rlfile_write(file, w->buf, len, off, &done);
	return rc ? rc : done < len ? EIO : 0;
}

static int io_punch(struct worker *w, uint64_t off, uint64_t len)
{
	if (!cfg.sys_path)
		return rlfile_punch(file, off, len);
	return fallocate(w->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			 (off_t)off, (off_t)len) ? errno : 0;
}

static int io_truncate(struct worker *w, uint64_t size)
{
	if (!cfg.sys_path)
		return rlfile_truncate(file, size);
	return ftruncate(w->fd, (off_t)size) ? errno : 0;
}

static int io_sync(struct worker *w)
{
	if (!cfg.sys_path)
		return rlfile_sync(file);
	return fsync(w->fd) ? errno : 0;
}

static int io_drop(struct worker *w)
{
	if (!cfg.sys_path)
		return rlfile_drop_cache(file);
	sys_close(w);                /* the last close drops rlfs's cache */
	return sys_open(w);
}

static uint64_t io_size(struct worker *w)
{
	struct stat st;

	if (!cfg.sys_path)
		return rlfile_size(file);
	return fstat(w->fd, &st) ? UINT64_MAX : (uint64_t)st.st_size;
}

/* A fault: the page's bytes at *data until io_fault_done. */
struct fault {
	struct rlfile_fault rf;
	void *map;
};

static int io_fault(struct worker *w, uint64_t page, bool write,
		    struct fault *flt, unsigned char **data)
{
	int rc;

	if (!cfg.sys_path) {
		rc = rlfile_fault(file, page, write, &flt->rf);
		*data = flt->rf.data;
		return rc;
	}
	if (page * PAGE >= io_size(w))
		return ENXIO;        /* beyond EOF: SIGBUS on a real access */
	flt->map = mmap(NULL, PAGE, PROT_READ | (write ? PROT_WRITE : 0),
			MAP_SHARED, w->fd, (off_t)(page * PAGE));
	if (flt->map == MAP_FAILED)
		return errno;
	*data = flt->map;
	return 0;
}

static void io_fault_done(struct fault *flt)
{
	if (!cfg.sys_path)
		rlfile_fault_done(file, &flt->rf);
	else
		munmap(flt->map, PAGE);
}

static void do_read(struct worker *w, bool direct, bool own)
{
	uint64_t n, first;
	size_t done;
	int rc;

	if (own)
		first = pick_own(w, &n);
	else {
		first = rng_next(&w->rng) % total_pages();
		n = 1;
	}
	rc = io_read(w, direct, n * PAGE, first * PAGE, &done);
	if (rc) {
		violation(w, "read failed", first, 0, (uint64_t)rc);
		return;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t page = first + i;
		bool beyond = (i + 1) * PAGE > done;

		if (own && (*expect_of(w, page) == ABSENT) != beyond)
			violation(w, beyond ? "short read of" : "read past EOF at",
				  page, *expect_of(w, page), done);
		else if (!beyond)
			check(w, direct ? "direct read" : "read", page,
			      w->buf + i * PAGE, own, own ? *expect_of(w, page) : 0);
	}
}

static void do_write(struct worker *w, bool direct)
{
	uint64_t n, first = pick_own(w, &n);
	uint64_t v[4];
	int rc;

	for (uint64_t i = 0; i < n; i++) {
		v[i] = stamp(w, first + i);
		fill(w->buf + i * PAGE, v[i]);
	}
	rc = io_write(w, direct, n * PAGE, first * PAGE);
	if (rc) {
		violation(w, "write failed", first, 0, (uint64_t)rc);
		return;
	}
	/* pages skipped over by an extending write read as zeros */
	for (uint64_t p = w->first; p < first; p++)
		if (*expect_of(w, p) == ABSENT)
			*expect_of(w, p) = 0;
	for (uint64_t i = 0; i < n; i++)
		*expect_of(w, first + i) = v[i];
}

static void do_fault(struct worker *w, bool write)
{
	/* through mmap, a page another worker truncates away is SIGBUS: on a
	 * --path, fault only our own pages */
	bool own = write || cfg.sys_path || rng_next(&w->rng) % 2;
	uint64_t n, page = own ? pick_own(w, &n) : rng_next(&w->rng) % total_pages();
	struct fault flt;
	unsigned char *data = NULL;
	int rc = io_fault(w, page, write, &flt, &data);

	if (rc == ENXIO) {
		if (own && *expect_of(w, page) != ABSENT)
			violation(w, "fault beyond EOF at", page, *expect_of(w, page), 0);
		return;
	}
	if (rc) {
		violation(w, "fault failed", page, 0, (uint64_t)rc);
		return;
	}
	if (own && *expect_of(w, page) == ABSENT)
		violation(w, "fault succeeded past EOF at", page, ABSENT, 0);
	else if (own)
		check(w, "fault", page, data, true, *expect_of(w, page));
	else
		check(w, "fault", page, data, false, 0);
	if (write && own) {
		uint64_t v = stamp(w, page);

		fill(data, v);   /* a store through the mapping */
		*expect_of(w, page) = v;
	}
	io_fault_done(&flt);
}

static void do_map_load(struct worker *w)
{
	bool own = rng_next(&w->rng) % 2;
	uint64_t n, page = own ? pick_own(w, &n) : rng_next(&w->rng) % total_pages();
	bool loaded = sigbus_copy(w->buf, file_map + page * PAGE, PAGE);

	if (!own) {
		if (loaded)   /* beyond EOF is SIGBUS; another's truncate */
			check(w, "map load", page, w->buf, false, 0);
	} else if (loaded != (*expect_of(w, page) != ABSENT)) {
		violation(w, loaded ? "map load succeeded past EOF at"
				    : "map load SIGBUS below EOF at",
			  page, *expect_of(w, page), 0);
	} else if (loaded) {
		check(w, "map load", page, w->buf, true, *expect_of(w, page));
	}
}

static void do_map_store(struct worker *w)
{
	uint64_t n, page = pick_own(w, &n), v = stamp(w, page);
	bool beyond = *expect_of(w, page) == ABSENT;

	fill(w->buf, v);
	if (sigbus_copy(file_map + page * PAGE, w->buf, PAGE) == beyond)
		violation(w, beyond ? "map store succeeded past EOF at"
				    : "map store SIGBUS below EOF at",
			  page, *expect_of(w, page), 0);
	else if (!beyond)
		*expect_of(w, page) = v;
}

/* A buffered write whose source is the mapping of the same pages (the
 * write-from-own-mapping case): they keep what they hold, and it must
 * never hang (rlfile faults the source in before taking the range). */
static void do_map_write(struct worker *w)
{
	uint64_t n, first = pick_own(w, &n);
	size_t done;
	int rc;

	for (uint64_t i = 0; i < n; i++)
		if (*expect_of(w, first + i) == ABSENT)
			return;   /* the source would be SIGBUS */
	rc = rlfile_write(file, file_map + first * PAGE, n * PAGE, first * PAGE, &done);
	if (rc || done != n * PAGE)
		violation(w, "map write failed", first, n * PAGE, rc ? (uint64_t)rc : done);
}

static void do_punch(struct worker *w)
{
	uint64_t n, first = pick_own(w, &n);
	int rc;

	n = n > 2 ? 2 : n;
	rc = io_punch(w, first * PAGE, n * PAGE);
	if (rc) {
		violation(w, "punch failed", first, 0, (uint64_t)rc);
		return;
	}
	for (uint64_t i = 0; i < n; i++)
		if (*expect_of(w, first + i) != ABSENT)
			*expect_of(w, first + i) = 0;
}

static void do_truncate(struct worker *w)
{
	uint64_t keep = rng_next(&w->rng) % (w->count + 1);   /* pages kept */
	int rc = io_truncate(w, (w->first + keep) * PAGE);

	if (rc) {
		violation(w, "truncate failed", w->first + keep, 0, (uint64_t)rc);
		return;
	}
	for (uint64_t p = w->first; p < w->first + w->count; p++)
		if (p >= w->first + keep)
			*expect_of(w, p) = ABSENT;
		else if (*expect_of(w, p) == ABSENT)
			*expect_of(w, p) = 0;   /* truncated up: zeros */
}

static int pick_op(struct worker *w)
{
	int r = (int)(rng_next(&w->rng) % (uint64_t)op_total), op = 0;

	while (r >= op_weight[op]) {
		r -= op_weight[op];
		op = (op + 1) % NOPS;
	}
	if (op == OP_TRUNCATE && w->id != cfg.threads - 1)
		op = OP_READ;
	return op;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (cfg.sys_path && sys_open(w) != 0) {
		violation(w, "open failed", 0, 0, (uint64_t)errno);
		return NULL;
	}
	/* relaxed: a stop flag */
	while (!atomic_load_explicit(&shared->stop, memory_order_relaxed)) {
		int op = pick_op(w), rc = 0;

		switch (op) {
		case OP_READ: do_read(w, false, rng_next(&w->rng) % 2); break;
		case OP_WRITE: do_write(w, false); break;
		case OP_FAULT_READ: do_fault(w, false); break;
		case OP_FAULT_WRITE: do_fault(w, true); break;
		case OP_DIRECT_READ: do_read(w, true, rng_next(&w->rng) % 2); break;
		case OP_DIRECT_WRITE: do_write(w, true); break;
		case OP_PUNCH: do_punch(w); break;
		case OP_SYNC: rc = io_sync(w); break;
		case OP_DROP: rc = io_drop(w); break;
		case OP_TRUNCATE: do_truncate(w); break;
		case OP_MAP_LOAD: do_map_load(w); break;
		case OP_MAP_STORE: do_map_store(w); break;
		case OP_MAP_WRITE: do_map_write(w); break;
		}
		if (rc)
			violation(w, op_name[op], 0, 0, (uint64_t)rc);
		w->ops[op]++;
	}
	if (cfg.sys_path)
		sys_close(w);
	return NULL;
}

/* After everything: the file on disk, page by page, against the oracle. */
static void final_check(struct worker *ws)
{
	struct worker *last = &ws[cfg.threads - 1];
	uint64_t size, end = 0;
	int rc = cfg.sys_path ? sys_open(last) : rlfile_drop_cache(file);

	if (rc) {
		violation(last, "final drop-cache/open failed", 0, 0, (uint64_t)rc);
		return;
	}
	size = io_size(last);
	for (int t = 0; t < cfg.threads; t++)
		for (uint64_t p = ws[t].first; p < ws[t].first + ws[t].count; p++)
			if (*expect_of(&ws[t], p) != ABSENT)
				end = p + 1;
	if (size != end * PAGE)
		violation(last, "final size (in bytes) vs pages", end, end * PAGE, size);
	/* what is absent is a suffix (only the last thread truncates): read
	 * [0, end) in large direct reads, check each page against its owner */
	for (uint64_t p = 0; p < end; p += FINAL_READ_PAGES) {
		uint64_t n = end - p < FINAL_READ_PAGES ? end - p : FINAL_READ_PAGES;
		size_t done;

		rc = io_read(last, true, n * PAGE, p * PAGE, &done);
		if (rc || done != n * PAGE) {
			violation(last, "final read of", p, n * PAGE,
				  rc ? (uint64_t)rc : done);
			continue;
		}
		for (uint64_t i = 0; i < n; i++) {
			struct worker *w = &ws[(p + i) / cfg.k];

			check(w, "on disk at the end:", p + i, last->buf + i * PAGE,
			      true, *expect_of(w, p + i));
		}
	}
	if (cfg.sys_path)
		sys_close(last);
}

static void usage(void)
{
	printf("usage: rlfile-torture [--lock=range|file|none | --path PATH] "
	       "[--file PATH] [--force] [--keep]\n"
	       "                      [--seconds S] [--threads 2..64] "
	       "[--pages-per-thread 1..4096] [--seed X]\n"
	       "                      [--mix OP=WEIGHT,...] [--cache-pages N] "
	       "[--mmap] [--expect-violations]\n"
	       "                      [--help] [--version]\n"
	       "  --file PATH    the file rlfile works in: created new, removed at the end\n"
	       "                 (default: a fresh file in /tmp)\n"
	       "  --path PATH    processes drive PATH by system calls instead (an rlfs\n"
	       "                 mount); created new, removed at the end\n"
	       "  --force        take over PATH even if it exists (a regular file only:\n"
	       "                 its content is lost)\n"
	       "  --keep         leave the file in place at the end\n"
	       "operations (--mix):");
	for (int op = 0; op < NOPS; op++)
		printf(" %s", op_name[op]);
	printf("\n");
	exit(0);
}

/* "read=50,punch=0": new weights for the operations named. */
static void parse_mix(char *arg)
{
	for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
		char *eq = strchr(tok, '=');
		int op = 0;

		if (!eq)
			cli_usage_error("--mix: '%s' is not OP=WEIGHT", tok);
		*eq = 0;
		while (op < NOPS && strcmp(op_name[op], tok))
			op++;
		if (op == NOPS)
			cli_usage_error("--mix: no operation '%s' (see --help)", tok);
		op_weight[op] = (int)cli_integer("--mix weight", eq + 1, 0, 1000);
		op_named[op] = true;
	}
}

static void parse(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "lock", required_argument, NULL, 'l' },
		{ "seconds", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "pages-per-thread", required_argument, NULL, 'k' },
		{ "seed", required_argument, NULL, 'S' },
		{ "file", required_argument, NULL, 'f' },
		{ "force", no_argument, NULL, 'F' },
		{ "keep", no_argument, NULL, 'K' },
		{ "expect-violations", no_argument, NULL, 'x' },
		{ "mix", required_argument, NULL, 'm' },
		{ "path", required_argument, NULL, 'p' },
		{ "cache-pages", required_argument, NULL, 'c' },
		{ "mmap", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	cli_init("rlfile-torture");
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (!strcmp(optarg, "range")) cfg.lock = RLFILE_LOCK_RANGE;
			else if (!strcmp(optarg, "file")) cfg.lock = RLFILE_LOCK_FILE;
			else if (!strcmp(optarg, "none")) cfg.lock = RLFILE_LOCK_NONE;
			else cli_usage_error("--lock: '%s' is not range, file or none",
					     optarg);
			break;
		case 's': cfg.seconds = cli_decimal("--seconds", optarg, 0, 86400); break;
		case 't': cfg.threads = (int)cli_integer("--threads", optarg, 2, 64); break;
		case 'k': cfg.k = (uint64_t)cli_integer("--pages-per-thread", optarg, 1, 4096); break;
		case 'S': cfg.seed = (uint64_t)cli_integer("--seed", optarg, 0, INT64_MAX); break;
		case 'f': cfg.path = optarg; break;
		case 'F': cfg.force = true; break;
		case 'K': cfg.keep = true; break;
		case 'x': cfg.expect_violations = true; break;
		case 'm': parse_mix(optarg); break;
		case 'p': cfg.sys_path = optarg; break;
		case 'c': cfg.cache_pages = (size_t)cli_integer("--cache-pages", optarg, 0, INT32_MAX); break;
		case 'M': cfg.mmap = true; break;
		case 'h': usage(); break;
		case 'V': cli_version(NULL);
		default: cli_getopt_failed();
		}
	}
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (cfg.sys_path && cfg.path)
		cli_usage_error("--path and --file exclude each other");
	if (cfg.sys_path && cfg.mmap)
		cli_usage_error("--mmap is rlfile's mapping: not with --path");
	if (cfg.mmap) {
		if (!op_named[OP_MAP_LOAD])
			op_weight[OP_MAP_LOAD] = MAP_LOAD_WEIGHT;
		if (!op_named[OP_MAP_STORE])
			op_weight[OP_MAP_STORE] = MAP_STORE_WEIGHT;
		if (!op_named[OP_MAP_WRITE])
			op_weight[OP_MAP_WRITE] = MAP_WRITE_WEIGHT;
	}
	/* the mapping's operations need --mmap */
	if (!cfg.mmap && (op_weight[OP_MAP_LOAD] || op_weight[OP_MAP_STORE] ||
			  op_weight[OP_MAP_WRITE]))
		cli_usage_error("--mix: map-load, map-store and map-write need --mmap");
	/* no mmap on an rlfs mount unless asked for */
	if (cfg.sys_path)
		for (int op = OP_FAULT_READ; op <= OP_FAULT_WRITE; op++)
			if (!op_named[op])
				op_weight[op] = 0;
	op_total = 0;
	for (int op = 0; op < NOPS; op++)
		op_total += op_weight[op];
	if (op_total == 0)
		cli_usage_error("--mix: every operation's weight is 0");
}

/* The file the run works in, new: created here, or with --force an
 * existing regular file taken over.  Never a device, a directory, or a
 * file the user did not give up. */
static int claim_path(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd >= 0) {
		close(fd);
		created = path;
		return 0;
	}
	if (errno != EEXIST) {
		fprintf(stderr, "rlfile-torture: %s: %s\n", path, strerror(errno));
		return 2;
	}
	if (!cfg.force) {
		fprintf(stderr, "rlfile-torture: %s exists, and the torture overwrites "
			"the file it works in: name a new file, or add --force to "
			"give this one up\n", path);
		return 2;
	}
	if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "rlfile-torture: %s: not a regular file; refused "
			"even with --force\n", path);
		return 2;
	}
	return 0;
}

/* The file, claimed, then every page a hole: sized, with nothing written
 * (the oracle's zeros), opened the way the workers use it. */
static int open_file(char *tmpl)
{
	struct rlfile_options opt = { .lock = cfg.lock, .writeback_ms = 2,
				      .max_cached_pages = cfg.cache_pages };
	off_t size = (off_t)(total_pages() * PAGE);
	int rc, fd;

	if (cfg.sys_path) {
		if ((rc = claim_path(cfg.sys_path)))
			return rc;
		fd = open(cfg.sys_path, O_RDWR | O_CLOEXEC);
		if (fd < 0 || ftruncate(fd, 0) != 0 || ftruncate(fd, size) != 0 ||
		    close(fd) != 0) {
			perror(cfg.sys_path);
			return 2;
		}
		return 0;
	}
	if (!cfg.path) {
		fd = mkstemp(tmpl);
		if (fd < 0) {
			perror("mkstemp");
			return 2;
		}
		close(fd);
		cfg.path = created = tmpl;
	} else if ((rc = claim_path(cfg.path))) {
		return rc;
	}
	rc = rlfile_open(cfg.path, &opt, &file);
	if (!rc)
		rc = rlfile_truncate(file, 0);
	if (!rc)
		rc = rlfile_truncate(file, (uint64_t)size);
	if (rc) {
		fprintf(stderr, "rlfile_open %s: %s\n", cfg.path, strerror(rc));
		return 2;
	}
	return 0;
}

/* --mmap: the whole file, read and write; 77 (skipped) where mappings
 * are not supported. */
static int map_file(void)
{
	const char *why;
	void *a;
	int rc = rlfile_mmap_supported(&why);

	if (rc) {
		printf("rlfile-torture: skipped: rlfile_mmap: %s\n", why);
		return 77;
	}
	rc = rlfile_mmap(file, 0, total_pages() * PAGE, PROT_READ | PROT_WRITE, &a);
	if (rc) {
		fprintf(stderr, "rlfile_mmap: %s\n", strerror(rc));
		return 2;
	}
	file_map = a;
	sigbus_catch("rlfile-torture: SIGBUS inside rlfile: it touched a page a "
		     "truncate cut (without the range lock nothing orders them; "
		     "run --lock=none --mmap with truncate=0)\n");
	return 0;
}

static int wait_for(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

static void run_workers(struct worker *ws)
{
	struct timespec d = { (time_t)cfg.seconds,
			      (long)((cfg.seconds - (double)(time_t)cfg.seconds) * 1e9) };

	for (int t = 0; t < cfg.threads; t++) {
		pid_t pid;

		if (!cfg.sys_path)
			pthread_create(&ws[t].thread, NULL, worker_main, &ws[t]);
		else if ((pid = fork()) == 0) {
			worker_main(&ws[t]);
			_exit(0);
		} else   /* only the parent writes pid: ws is shared memory */
			ws[t].pid = pid;
	}
	nanosleep(&d, NULL);
	atomic_store(&shared->stop, true);
	for (int t = 0; t < cfg.threads; t++) {
		int status;

		if (!cfg.sys_path)
			pthread_join(ws[t].thread, NULL);
		else if (ws[t].pid < 0 || wait_for(ws[t].pid, &status) != 0)
			violation(&ws[t], "fork or waitpid failed (errno) for",
				  0, 0, (uint64_t)errno);
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			violation(&ws[t], "worker process died (wait status) at",
				  0, 0, (uint64_t)status);
	}
}

int main(int argc, char **argv)
{
	static const char *const lock_name[] = { "range", "file", "none" };
	char tmpl[] = "/tmp/rlfile-torture-XXXXXX";
	struct worker *ws;
	long total = 0;
	int rc;

	cfg.seed = (uint64_t)time(NULL);
	parse(argc, argv);
	atexit(remove_created);   /* the workers of --path leave by _exit */
	rc = open_file(tmpl);
	if (rc)
		return rc;
	shared = shared_alloc(sizeof(*shared));
	ws = shared_alloc((size_t)cfg.threads * sizeof(*ws));
	for (int t = 0; t < cfg.threads; t++) {
		struct worker *w = &ws[t];

		w->id = t;
		w->rng = cfg.seed * 0x9E3779B97F4A7C15ull + (uint64_t)t + 1;
		w->first = (uint64_t)t * cfg.k;
		w->count = cfg.k;
		w->expect = shared_alloc(cfg.k * sizeof(uint64_t));
		w->buf = aligned_alloc(PAGE, (t == cfg.threads - 1 ?
					      FINAL_READ_PAGES : 4) * PAGE);
		if (!w->buf) {
			fprintf(stderr, "rlfile-torture: out of memory\n");
			return 2;
		}
	}
	if (cfg.mmap && (rc = map_file()))
		return rc;
	printf("rlfile-torture: %s%s%s threads=%d pages=%" PRIu64 " seconds=%.1f seed=%" PRIu64 "\n",
	       cfg.sys_path ? "processes on " : "lock=",
	       cfg.sys_path ? cfg.sys_path : lock_name[cfg.lock],
	       cfg.mmap ? " mmap" : "", cfg.threads, total_pages(), cfg.seconds, cfg.seed);
	fflush(stdout);
	run_workers(ws);
	final_check(ws);

	printf("throughput:");
	for (int op = 0; op < NOPS; op++) {
		long n = 0;

		for (int t = 0; t < cfg.threads; t++)
			n += ws[t].ops[op];
		total += n;
		printf(" %s %.0f/s", op_name[op], (double)n / cfg.seconds);
	}
	long bad = atomic_load(&shared->violations);
	long map_bad = atomic_load(&shared->map_violations);

	printf("\nrlfile-torture: %ld ops (%.0f/s), %ld violations", total,
	       (double)total / cfg.seconds, bad);
	if (cfg.mmap)
		printf(" (%ld through the mapping)", map_bad);
	printf("\n");
	/* with --mmap, the proof of teeth is a race seen through the mapping */
	if (cfg.mmap && cfg.expect_violations)
		bad = map_bad;
	rc = file ? rlfile_close(file) : 0;
	if (rc)
		fprintf(stderr, "rlfile_close: %s\n", strerror(rc));
	for (int t = 0; t < cfg.threads; t++)
		free(ws[t].buf);
	if (cfg.expect_violations) {
		printf("%s\n", bad ? "1 passed, 0 failed (violations found, as expected without the lock)"
				   : "0 passed, 1 failed (no violation found)");
		return bad ? 0 : 1;
	}
	printf("%s\n", bad || rc ? "0 passed, 1 failed" : "1 passed, 0 failed");
	return bad || rc ? 1 : 0;
}
