/* SPDX-License-Identifier: MIT */
/*
 * rlfs - serve a backing directory through rlfile, as a FUSE 3 file system,
 * so that unmodified programs drive the range locks.
 *
 * usage: rlfs BACKING_DIR MOUNTPOINT [--lock=range|file] [--direct-io]
 *             [--writeback-ms=N] [--cache-mb=N] [--cache-shared] [--debug-lock]
 *             [FUSE options: -f, -d, -o ...]
 *
 * Everything that can be checked before mounting is, with a message that
 * says what to do: usage (exit 2, naming the bad argument: tools/cli.h),
 * not root, no /dev/fuse, a missing backing directory, a mount point that
 * is missing, already mounted, inside the backing directory or holding it
 * (exit 1).  Then FUSE's multithreaded loop runs, in the
 * foreground with -f, until SIGINT, SIGTERM or fusermount3 -u; every file
 * still open is written back before rlfs exits.
 */
#include "rlfs.h"
#include "cli.h"
#include "creds.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cmdline {
	char *lock;
	int kernel_cache;
	int direct_io;
	char *writeback_ms;
	char *cache_mb;
	int cache_shared;
	int debug_lock;
	char *backing;
	const char *mountpoint;      /* FUSE's; seen here to check it first */
};

#define OPT(t, field, v) { t, offsetof(struct cmdline, field), v }
static const struct fuse_opt rlfs_opts[] = {
	OPT("--lock=%s", lock, 0),
	OPT("--kernel-cache", kernel_cache, 1),
	OPT("--direct-io", direct_io, 1),
	OPT("--writeback-ms=%s", writeback_ms, 0),
	OPT("--cache-mb=%s", cache_mb, 0),
	OPT("--cache-shared", cache_shared, 1),
	OPT("--debug-lock", debug_lock, 1),
	FUSE_OPT_END
};

static void usage(void)
{
	printf(
"usage: rlfs BACKING_DIR MOUNTPOINT [options]\n"
"  --lock=range      one range lock per file (the default)\n"
"  --lock=file       one reader-writer lock per file, to compare\n"
"  --direct-io       every read and write reaches rlfile, past the kernel's\n"
"                    page cache: reads are atomic against writes, but\n"
"                    shared writable mappings fail (ENODEV; doc/rlfs.md)\n"
"  --kernel-cache    the kernel's page cache (write-back) serves buffered\n"
"                    opens and mappings, rlfile what it writes back and\n"
"                    reads (the default)\n"
"  --writeback-ms=N  write dirty pages back every N ms (default 100)\n"
"  --cache-mb=N      per open file, cache at most N MiB: clean pages beyond\n"
"                    it are evicted, writers past half of it dirty write\n"
"                    back first (default 64; 0: no limit)\n"
"  --cache-shared    the --cache-mb limit is for all open files together\n"
"  --debug-lock      RANGELOCK_DEBUG: refuse a thread's recursive range\n"
"  -f                stay in the foreground   -d  FUSE debug output\n"
"  -o OPT            FUSE options (listed below), e.g.\n"
"                    -o max_threads=N: requests served at once (default 10)\n"
"  -h, --help        this help, then FUSE's options; -V, --version\n"
"Usage errors exit 2, a refusal to mount 1.\n"
"Stop with SIGINT, SIGTERM or fusermount3 -u MOUNTPOINT.\n");
}

/* The first argument that is not an option is ours (the backing
 * directory); the rest, the mount point among them, are FUSE's. */
static int parse_key(void *data, const char *arg, int key,
		     struct fuse_args *out)
{
	/* FUSE's own options, which fuse_parse_cmdline() takes; -o's values
	 * are checked by libfuse */
	static const char *const fuse_flags[] = {
		"-f", "-d", "-s", "-h", "-V", "--help", "--version", "-o", NULL,
	};
	struct cmdline *c = data;

	(void)out;
	if (key == FUSE_OPT_KEY_NONOPT && !c->backing) {
		c->backing = strdup(arg);
		return 0;
	}
	if (key == FUSE_OPT_KEY_NONOPT && !c->mountpoint) {
		c->mountpoint = arg;   /* argv's: lives as long as main */
		return 1;
	}
	if (key == FUSE_OPT_KEY_NONOPT)
		cli_usage_error("unexpected argument '%s' after the mount point",
				arg);
	if (key == FUSE_OPT_KEY_OPT && arg[0] == '-') {
		for (int i = 0; fuse_flags[i]; i++)
			if (!strcmp(arg, fuse_flags[i]) ||
			    (!strcmp(fuse_flags[i], "-o") && !strncmp(arg, "-o", 2)))
				return 1;
		cli_usage_error("unknown option '%s'", arg);
	}
	return 1;
}

static int fail(const char *what, const char *why, const char *hint)
{
	fprintf(stderr, "rlfs: %s: %s%s%s\n", what, why, hint ? "; " : "",
		hint ? hint : "");
	return 1;
}

/* Everything that would make the mount fail, or mount something broken. */
static int check_environment(const char *backing_dir, const char *mountpoint,
			     struct rlfs *r)
{
	char backing[PATH_MAX], mount[PATH_MAX];
	struct statx stx;
	size_t n;
	int fd;

	if (geteuid() != 0)
		return fail("not root", "mounting needs root (CAP_SYS_ADMIN)",
			    "run rlfs with sudo");
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail("/dev/fuse", strerror(errno),
			    errno == ENOENT ? "load the module: modprobe fuse" : NULL);
	close(fd);
	r->backing = open(backing_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->backing < 0 || !realpath(backing_dir, backing))
		return fail(backing_dir, strerror(errno),
			    "the backing directory must exist");
	if (statx(AT_FDCWD, mountpoint, 0, STATX_TYPE, &stx) != 0)
		return fail(mountpoint, strerror(errno),
			    errno == ENOTCONN ? "a dead mount: fusermount3 -u it"
					      : "the mount point must exist");
	if (!S_ISDIR(stx.stx_mode))
		return fail(mountpoint, "not a directory", NULL);
	if (stx.stx_attributes_mask & stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)
		return fail(mountpoint, "busy: something is mounted there",
			    "unmount it first (fusermount3 -u, umount)");
	if (!realpath(mountpoint, mount))
		return fail(mountpoint, strerror(errno), NULL);
	n = strlen(backing);
	if (!strncmp(mount, backing, n) && (mount[n] == 0 || mount[n] == '/' ||
					    n == 1))
		return fail(mountpoint, "inside the backing directory",
			    "rlfs would serve itself");
	n = strlen(mount);
	if (!strncmp(backing, mount, n) && (backing[n] == '/' || n == 1))
		return fail(mountpoint, "holds the backing directory",
			    "the mount would hide it; mount elsewhere");
	return 0;
}

/* Mount, serve until told to stop, unmount: fuse_main's steps, on the
 * low-level API, with our threads. */
static int serve(struct fuse_args *args, struct fuse_cmdline_opts *fo,
		 struct rlfs *r)
{
	struct fuse_loop_config *lc;
	struct fuse_session *se;
	int rc = 1;

	se = fuse_session_new(args, &rlfs_ops, sizeof(rlfs_ops), r);
	if (!se)
		return 1;
	if (fuse_session_mount(se, fo->mountpoint) != 0)
		goto out_destroy;
	if (fuse_daemonize(fo->foreground) != 0 ||
	    fuse_set_signal_handlers(se) != 0)
		goto out_unmount;
	if (fo->singlethread)
		rc = fuse_session_loop(se);
	else if ((lc = fuse_loop_cfg_create())) {
		fuse_loop_cfg_set_clone_fd(lc, fo->clone_fd);
		/* libfuse 3.14 reports an unset max_idle_threads as UINT_MAX,
		 * and complains if it is passed on */
		if (fo->max_idle_threads <= 100000)
			fuse_loop_cfg_set_idle_threads(lc, fo->max_idle_threads);
		fuse_loop_cfg_set_max_threads(lc, fo->max_threads);   /* 10 */
		rc = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	/* libfuse answers a stop by SIGINT, SIGTERM or SIGHUP with the
	 * signal's number: for us a clean stop */
	rc = rc == 0 || rc == SIGINT || rc == SIGTERM || rc == SIGHUP ? 0 : 1;
	fuse_remove_signal_handlers(se);
out_unmount:
	fuse_session_unmount(se);
out_destroy:
	fuse_session_destroy(se);   /* calls rlfs_destroy: the last write-back */
	return rc;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cmdline c = { 0 };
	unsigned long writeback_ms = 100, cache_mb = 64;
	struct fuse_cmdline_opts fo = { 0 };
	struct rlfile_options opt = { 0 };
	static struct rlfs r = { .backing = -1 };
	char *fsname = NULL;
	int rc = 2;

	cli_init("rlfs");
	if (fuse_opt_parse(&args, &c, rlfs_opts, parse_key) != 0)
		goto out;
	/* before libfuse looks at it: our message, and exit 1 as for the
	 * other refusals */
	if (c.backing && c.mountpoint && access(c.mountpoint, F_OK) != 0) {
		rc = fail(c.mountpoint, strerror(errno), "the mount point must exist");
		goto out;
	}
	if (fuse_parse_cmdline(&args, &fo) != 0)
		goto out;
	if (fo.show_help) {
		usage();
		fuse_cmdline_help();
		fuse_lowlevel_help();
		rc = 0;
		goto out;
	}
	if (fo.show_version) {
		char fuse[32];

		snprintf(fuse, sizeof(fuse), "FUSE %d.%d", fuse_version() / 100,
			 fuse_version() % 100);
		cli_version(fuse);
	}
	if (!c.backing || !fo.mountpoint)
		cli_usage_error("missing %s (usage: rlfs BACKING_DIR MOUNTPOINT "
				"[options])", c.backing ? "MOUNTPOINT"
						       : "BACKING_DIR and MOUNTPOINT");
	if (!fo.singlethread && (fo.max_threads < 1 || fo.max_threads > 100000))
		cli_usage_error("-o max_threads=%u: not a whole number from 1 to "
				"100000", fo.max_threads);
	if (!c.lock || !strcmp(c.lock, "range"))
		opt.lock = RLFILE_LOCK_RANGE;
	else if (!strcmp(c.lock, "file"))
		opt.lock = RLFILE_LOCK_FILE;
	else if (!strcmp(c.lock, "none"))   /* tests only: races on purpose */
		opt.lock = RLFILE_LOCK_NONE;
	else
		cli_usage_error("--lock: '%s' is not range or file", c.lock);
	/* whole numbers in range, or a usage error that names them (cli.h) */
	if (c.writeback_ms)
		writeback_ms = (unsigned long)cli_integer("--writeback-ms",
							  c.writeback_ms, 1, 60000);
	if (c.cache_mb)
		cache_mb = (unsigned long)cli_integer("--cache-mb", c.cache_mb, 0,
						      1 << 20);
	opt.writeback_ms = (unsigned)writeback_ms;
	opt.max_cached_pages = (size_t)cache_mb * (1u << 20) / RLFILE_PAGE;
	if (c.cache_shared && opt.max_cached_pages &&
	    rlfile_budget_create(opt.max_cached_pages, &opt.budget) != 0) {
		fprintf(stderr, "rlfs: --cache-shared: out of memory\n");
		rc = 1;
		goto out;
	}
	opt.rangelock_flags = c.debug_lock ? RANGELOCK_DEBUG : 0;
	rc = check_environment(c.backing, fo.mountpoint, &r);
	if (rc)
		goto out;
	if (c.direct_io && c.kernel_cache)
		cli_usage_error("--direct-io and --kernel-cache: choose one");
	r.kernel_cache = !c.direct_io;
	r.timeout = 1.0;
	open_files_init(&r.files, &opt);
	if ((rc = inodes_init(&r.inodes, r.backing))) {
		rc = fail(c.backing, strerror(rc), NULL);
		goto out;
	}

	/* The kernel checks permissions from the attributes and ACLs, as on
	 * a disk, and rlfs creates as the caller, with the caller's umask
	 * (creds.h): none of our own.  The backing directory's name is the
	 * source shown in mount tables, escaped: a name with commas is not
	 * options. */
	umask(0);
	creds_init();
	/* cache pages are freed by other threads than the ones that made
	 * them (eviction, write-back): with an arena per thread, each arena
	 * would keep a cache's worth of freed pages */
	mallopt(M_ARENA_MAX, 1);
	rc = 1;
	if (asprintf(&fsname, "fsname=rlfs:%s", c.backing) >= 0) {
		char *opts = NULL;

		if (fuse_opt_add_opt_escaped(&opts, fsname) == 0 &&
		    fuse_opt_add_opt(&opts, "default_permissions,subtype=rlfs") == 0 &&
		    fuse_opt_add_arg(&args, "-o") == 0 &&
		    fuse_opt_add_arg(&args, opts) == 0)
			rc = serve(&args, &fo, &r);
		free(opts);
	}
	if (rc == 0 && r.unmount_error)
		rc = 1;   /* dirty data that could not be written is lost */
	inodes_destroy(&r.inodes);
out:
	if (opt.budget)
		rlfile_budget_destroy(opt.budget);
	free(fsname);
	fuse_opt_free_args(&args);
	free(fo.mountpoint);
	free(c.backing);
	free(c.lock);
	free(c.writeback_ms);
	free(c.cache_mb);
	return rc;
}
