/* SPDX-License-Identifier: MIT */
/*
 * open_files.h - rlfs's table of open files: one rlfile (one page cache,
 * one range lock) per backing file, however many times and under whatever
 * names it is open, found by its device and inode number.
 */
#ifndef RLFS_OPEN_FILES_H
#define RLFS_OPEN_FILES_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "rlfile.h"

struct open_file {
	dev_t dev;
	ino_t ino;
	unsigned refs;               /* table lock; 0: kept for its dirty pages */
	int fd;                      /* ours, for fstat */
	struct rlfile *rf;
	struct open_file *next;      /* table lock */
};

struct open_files {
	pthread_mutex_t lock;
	struct open_file *head;
	struct rlfile_options opt;   /* for each rlfile opened */
	/* One writeback thread for every file of the table, not one per
	 * file: every writeback_ms it writes back the files with dirty
	 * pages.  (Opening a file starts no thread.) */
	unsigned writeback_ms;
	pthread_t writeback;
	pthread_cond_t wb_cv;        /* lock: wakes the thread to stop */
	bool wb_running, wb_stop;    /* lock */
};

/* Make the table; opt->writeback_ms is its thread's period (0: none). */
void open_files_init(struct open_files *t, const struct rlfile_options *opt);
/* Start the writeback thread: once serving, after fuse_daemonize's fork
 * (a thread does not survive it).  0, or the errno of its creation (then
 * dirty pages are written back at flush, fsync and close only). */
int open_files_start(struct open_files *t);

/* The open file for the regular file fd refers to, with a reference:
 * the one already open, or a new one (taking fd over).  Either way fd is
 * the table's afterwards (kept or closed).  0 or an errno value. */
int open_files_get(struct open_files *t, int fd, struct open_file **out);

/* The open file with this device and inode, with a reference; NULL if the
 * file is not open. */
struct open_file *open_files_find(struct open_files *t, dev_t dev, ino_t ino);

/* If the regular file st describes is open, set st's size to its
 * rlfile's (which the backing file follows at write-back). */
void open_files_fix_size(struct open_files *t, struct stat *st);
/* Drop a reference; the last writes the dirty pages back and closes the
 * rlfile, and returns the first error.  A file whose dirty pages cannot be
 * written (ENOSPC, EIO) is not closed: it stays in the table, its
 * writeback thread retrying, until they are written (then the next get or
 * put closes it) or the next open finds it again.  Closing happens under
 * the table lock, so that no second rlfile of the file opens while the
 * first still flushes. */
int open_files_put(struct open_files *t, struct open_file *of);

/* Close the files kept for their dirty pages that are written now, or
 * deleted (after an unlink). */
void open_files_reap(struct open_files *t);

/* At unmount: stop the writeback thread, close every file still open
 * (references or not); the first error wins. */
int open_files_close_all(struct open_files *t);

#endif
