/* SPDX-License-Identifier: MIT */
/*
 * rlfs.h - what rlfs's FUSE operations (ops.c) share with its main
 * (main.c): the backing directory and the table of open files.
 */
#ifndef RLFS_H
#define RLFS_H

#define FUSE_USE_VERSION 312
#include <fuse.h>
#include <fuse_lowlevel.h>     /* fuse_parse_cmdline */
#include <stdbool.h>

#include "open_files.h"

struct rlfs {
	int backing;                 /* O_DIRECTORY descriptor of the backing
				      * directory: every path is relative to it */
	int unmount_error;           /* the last write-back failed: exit 1 */
	bool kernel_cache;           /* leave buffered opens to the kernel's
				      * page cache (mmap works) */
	struct open_files files;
};

extern const struct fuse_operations rlfs_ops;

#endif
