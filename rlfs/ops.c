/* SPDX-License-Identifier: MIT */
/* ops.c - the operations rlfs serves, for libfuse's low-level API. */
#include "rlfs.h"

#include <stdio.h>
#include <string.h>

static void rlfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct rlfs *r = userdata;
	int rc = open_files_start(&r->files);

	if (rc)
		fprintf(stderr, "rlfs: no writeback thread (%s): dirty pages are "
			"written back at flush, fsync and close only\n", strerror(rc));

	/* With the kernel's cache on, let it cache writes too: then it alone
	 * orders the write-back of mapped and written pages.  Write-through
	 * let a write and an older page's write-back reach rlfs in either
	 * order, and the torture saw stale data (doc/rlfs.md). */
	if (r->kernel_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	/* the kernel checks ACLs (read through getxattr) with the modes, and
	 * leaves the umask to rlfs: creds.h */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	/* writes (the kernel's write-back among them) of up to 1 MiB a
	 * request, libfuse's largest (FUSE's default is 128 KiB); reads come
	 * as large as the kernel's readahead */
	conn->max_write = 1u << 20;
}

static void rlfs_destroy(void *userdata)
{
	struct rlfs *r = userdata;
	int rc = open_files_close_all(&r->files);

	rlfs_files_destroy();   /* opens never released */
	if (rc) {
		fprintf(stderr, "rlfs: writing back at unmount: %s; dirty data "
			"of the files that failed is lost\n", strerror(rc));
		r->unmount_error = rc;
	}
}

const struct fuse_lowlevel_ops rlfs_ops = {
	.init = rlfs_init,
	.destroy = rlfs_destroy,
	.lookup = rlfs_lookup,
	.forget = rlfs_forget,
	.forget_multi = rlfs_forget_multi,
	.getattr = rlfs_getattr,
	.setattr = rlfs_setattr,
	.readlink = rlfs_readlink,
	.mknod = rlfs_mknod,
	.mkdir = rlfs_mkdir,
	.symlink = rlfs_symlink,
	.unlink = rlfs_unlink,
	.rmdir = rlfs_rmdir,
	.rename = rlfs_rename,
	.link = rlfs_link,
	.open = rlfs_open,
	.create = rlfs_create,
	.read = rlfs_read,
	.write = rlfs_write,
	.flush = rlfs_flush,
	.release = rlfs_release,
	.fsync = rlfs_fsync,
	.fallocate = rlfs_fallocate,
	.opendir = rlfs_opendir,
	.readdir = rlfs_readdir,
	.readdirplus = rlfs_readdirplus,
	.releasedir = rlfs_releasedir,
	.statfs = rlfs_statfs,
	.setxattr = rlfs_setxattr,
	.getxattr = rlfs_getxattr,
	.listxattr = rlfs_listxattr,
	.removexattr = rlfs_removexattr,
};
