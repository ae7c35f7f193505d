/* SPDX-License-Identifier: MIT */
/* resolve.c - names to descriptors without following links; see resolve.h. */
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int openat2_nofollow(int dirfd, const char *rel, unsigned long long flags)
{
	struct open_how how = {
		.flags = flags | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	do
		fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);   /* a rename raced the walk */
	return fd < 0 ? -errno : (int)fd;
}

/* Open rel[0, len) under root with flags, in pieces shorter than PATH_MAX:
 * each piece but the last ends at a '/' and is opened as a directory. */
static int walk(int root, const char *rel, size_t len, unsigned long long flags)
{
	char piece[PATH_MAX];
	int dirfd = root, fd;

	while (len >= sizeof(piece)) {
		size_t cut = sizeof(piece) - 1;

		while (cut > 0 && rel[cut] != '/')
			cut--;
		if (cut == 0) {
			fd = -ENAMETOOLONG;   /* one name longer than PATH_MAX */
			goto out;
		}
		memcpy(piece, rel, cut);
		piece[cut] = 0;
		fd = openat2_nofollow(dirfd, piece, O_PATH | O_DIRECTORY);
		if (fd < 0)
			goto out;
		if (dirfd != root)
			close(dirfd);
		dirfd = fd;
		rel += cut + 1;
		len -= cut + 1;
	}
	if (len == 0)
		rel = ".", len = 1;
	memcpy(piece, rel, len);
	piece[len] = 0;
	fd = openat2_nofollow(dirfd, piece, flags);
out:
	if (dirfd != root)
		close(dirfd);
	return fd;
}

/* FUSE's "/a/b" without its leading '/'. */
static const char *relative(const char *path)
{
	return path + (path[0] == '/');
}

int resolve_object(int root, const char *path, int *fd)
{
	const char *rel = relative(path);

	*fd = walk(root, rel, strlen(rel), O_PATH);
	return *fd < 0 ? *fd : 0;
}

int resolve_dir(int root, const char *path, int *fd)
{
	const char *rel = relative(path);

	*fd = walk(root, rel, strlen(rel), O_RDONLY | O_DIRECTORY);
	return *fd < 0 ? *fd : 0;
}

int resolve_parent(int root, const char *path, int *dirfd, const char **name)
{
	const char *rel = relative(path), *slash = strrchr(rel, '/');
	size_t len = slash ? (size_t)(slash - rel) : 0;

	*name = slash ? slash + 1 : *rel ? rel : ".";   /* "/": "." in itself */
	if (!**name)
		return -EINVAL;   /* a trailing '/': no last component */
	*dirfd = walk(root, rel, len, O_PATH | O_DIRECTORY);
	return *dirfd < 0 ? *dirfd : 0;
}

int reopen(int pathfd, int flags)
{
	char self[32];
	int fd;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", pathfd);
	fd = open(self, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}
