/* SPDX-License-Identifier: MIT */
/*
 * resolve.h - FUSE's paths as descriptors under the backing directory,
 * never following a symbolic link, on the way or at the end.
 *
 * A user who can write a directory of the backing tree can swap any name in
 * it for a symlink between the kernel's permission check (on attributes it
 * caches) and rlfs's system call.  So no name is ever resolved by a call
 * that follows links: each path is walked with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) to an O_PATH descriptor,
 * and every operation is made on a descriptor, or on one last component in
 * a directory descriptor with the calls and flags that do not follow (the
 * *at() calls with AT_SYMLINK_NOFOLLOW, O_NOFOLLOW, unlinkat, renameat2).
 * A symlink met on the way fails with ELOOP.  Paths longer than PATH_MAX
 * are walked in pieces.
 *
 * Each returns 0 or a negative errno value, as FUSE's operations do.
 */
#ifndef RLFS_RESOLVE_H
#define RLFS_RESOLVE_H

/* An O_PATH descriptor of the object at path (FUSE's "/a/b"; "/" is the
 * root), a symlink itself if it is one. */
int resolve_object(int root, const char *path, int *fd);

/* An O_PATH descriptor of the directory holding path's last component, and
 * that component (a pointer into path); for "/", the root and ".". */
int resolve_parent(int root, const char *path, int *dirfd, const char **name);

/* Open the directory at path for reading. */
int resolve_dir(int root, const char *path, int *fd);

/* Open an O_PATH descriptor's object again with flags (an access mode,
 * O_CLOEXEC): the permission check is the current credentials', the object
 * the same. */
int reopen(int pathfd, int flags);

#endif
