/* SPDX-License-Identifier: MIT */
/* fence.c - the fencing store of the tests (fence.h). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fence.h"

int fence_write(const char *path, uint64_t start, uint64_t end, uint64_t token)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
		int err = errno;
		close(fd);
		return err;
	}
	uint64_t first = start / 4096, last = (end - 1) / 4096 + 1;
	if (last > FENCE_PAGES)
		last = FENCE_PAGES;
	uint64_t tokens[FENCE_PAGES] = { 0 };
	ssize_t n = pread(fd, tokens, sizeof(tokens), 0);
	int rc = n < 0 ? errno : 0;
	for (uint64_t p = first; p < last && !rc; p++)
		if (tokens[p] > token)
			rc = EPERM;
	for (uint64_t p = first; p < last && !rc; p++)
		tokens[p] = token;
	if (!rc && pwrite(fd, tokens, sizeof(tokens), 0) != (ssize_t)sizeof(tokens))
		rc = EIO;
	close(fd); /* the OFD lock goes with the last descriptor */
	return rc;
}
