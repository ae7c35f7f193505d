/* SPDX-License-Identifier: MIT */
/*
 * c_ofd.c - Linux open-file-description locks (F_OFD_SETLKW) on a real
 * temporary file, one open file description per thread: what user-space
 * programs use for byte ranges today.
 *
 * Caveats, stated rather than hidden: the kernel merges adjacent or
 * overlapping locks of one description, so the `held` workload holds
 * ranges with gaps between them; ranges end at OFF_MAX (l_len 0 means "to
 * EOF"); and the kernel's own queue is not FIFO among conflicts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contender.h"

struct ofd_lock {
	char path[64];
};

static void *ofd_create(uint64_t object_size)
{
	struct ofd_lock *o = calloc(1, sizeof(*o));
	int fd;

	(void)object_size;
	if (!o)
		return NULL;
	snprintf(o->path, sizeof(o->path), "/tmp/rlbench-ofd-XXXXXX");
	fd = mkstemp(o->path);
	if (fd < 0)
		bench_die("ofd: mkstemp: %s", strerror(errno));
	close(fd);
	return o;
}

static void ofd_destroy(void *lock)
{
	struct ofd_lock *o = lock;

	unlink(o->path);
	free(o);
}

static void *ofd_thread_init(void *lock)
{
	int fd = open(((struct ofd_lock *)lock)->path, O_RDWR);

	if (fd < 0)
		bench_die("ofd: open: %s", strerror(errno));
	return (void *)(intptr_t)(fd + 1); /* never NULL */
}

static void ofd_thread_fini(void *lock, void *ctx)
{
	(void)lock;
	close((int)(intptr_t)ctx - 1);
}

static void ofd_fcntl(void *ctx, const struct bench_range *r, short type)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = (off_t)r->start,
		/* l_len 0 is "to the end of the file, however big" */
		.l_len = r->end >= (uint64_t)INT64_MAX ? 0 : (off_t)(r->end - r->start),
	};

	while (fcntl((int)(intptr_t)ctx - 1, F_OFD_SETLKW, &fl) != 0)
		if (errno != EINTR)
			bench_die("ofd: F_OFD_SETLKW: %s", strerror(errno));
}

static void ofd_lock(void *lock, void *ctx, struct bench_range *r)
{
	(void)lock;
	ofd_fcntl(ctx, r, r->exclusive ? F_WRLCK : F_RDLCK);
}

static void ofd_unlock(void *lock, void *ctx, struct bench_range *r)
{
	(void)lock;
	ofd_fcntl(ctx, r, F_UNLCK);
}

const struct contender contender_ofd = {
	.name = "ofd",
	.about = "fcntl(F_OFD_SETLKW) on a temporary file, one description per thread",
	.create = ofd_create,
	.destroy = ofd_destroy,
	.thread_init = ofd_thread_init,
	.thread_fini = ofd_thread_fini,
	.lock = ofd_lock,
	.unlock = ofd_unlock,
	.processes = true,   /* each worker opens the file itself */
	.robust = true,      /* the kernel drops a dead process's locks */
};
