/* SPDX-License-Identifier: MIT */
/* inodes.c - one node per backing inode; see inodes.h. */
#include "inodes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t hash(dev_t dev, ino_t ino, size_t n)
{
	uint64_t h = ((uint64_t)ino ^ ((uint64_t)dev << 32)) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32) & (n - 1);
}

int inodes_init(struct inodes *t, int backing)
{
	struct stat st;
	int fd = openat(backing, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return errno;
	if (fstat(fd, &st) != 0) {
		int rc = errno;

		close(fd);
		return rc;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->root = (struct inode){ .dev = st.st_dev, .ino = st.st_ino,
				  .type = S_IFDIR, .fd = fd, .lookups = 1 };
	t->nbuckets = 1024;
	t->count = 0;
	t->bucket = calloc(t->nbuckets, sizeof(*t->bucket));
	if (!t->bucket) {
		close(fd);
		return ENOMEM;
	}
	return 0;
}

void inodes_destroy(struct inodes *t)
{
	for (size_t b = 0; b < t->nbuckets; b++)
		for (struct inode *i = t->bucket[b], *next; i; i = next) {
			next = i->next;
			close(i->fd);
			free(i);
		}
	free(t->bucket);
	close(t->root.fd);
	pthread_mutex_destroy(&t->lock);
}

struct inode *inodes_get(struct inodes *t, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &t->root : (struct inode *)(uintptr_t)ino;
}

/* Twice the buckets when the chains grow long; the lock is held.  Without
 * memory the chains only stay longer. */
static void grow_locked(struct inodes *t)
{
	size_t n = t->nbuckets * 2;
	struct inode **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t k = 0; k < t->nbuckets; k++)
		for (struct inode *i = t->bucket[k], *next; i; i = next) {
			size_t h = hash(i->dev, i->ino, n);

			next = i->next;
			i->next = b[h];
			b[h] = i;
		}
	free(t->bucket);
	t->bucket = b;
	t->nbuckets = n;
}

/* The node of (st's inode), counted once more: the one the table has (fd
 * is closed), or a new one holding fd.  0 or an errno value (fd closed). */
static int intern(struct inodes *t, int fd, const struct stat *st,
		  struct inode **out)
{
	struct inode *i, *fresh = NULL;
	size_t h;

	if (st->st_dev == t->root.dev && st->st_ino == t->root.ino) {
		close(fd);   /* the root, under another name (a bind mount) */
		pthread_mutex_lock(&t->lock);
		t->root.lookups++;
		pthread_mutex_unlock(&t->lock);
		*out = &t->root;
		return 0;
	}
	pthread_mutex_lock(&t->lock);
	h = hash(st->st_dev, st->st_ino, t->nbuckets);
	for (i = t->bucket[h]; i; i = i->next)
		if (i->dev == st->st_dev && i->ino == st->st_ino)
			break;
	if (!i) {
		pthread_mutex_unlock(&t->lock);
		fresh = malloc(sizeof(*fresh));   /* outside the lock */
		if (!fresh) {
			close(fd);
			return ENOMEM;
		}
		*fresh = (struct inode){ .dev = st->st_dev, .ino = st->st_ino,
					 .type = st->st_mode & S_IFMT, .fd = fd };
		pthread_mutex_lock(&t->lock);
		h = hash(st->st_dev, st->st_ino, t->nbuckets);
		for (i = t->bucket[h]; i; i = i->next)   /* raced? */
			if (i->dev == st->st_dev && i->ino == st->st_ino)
				break;
		if (!i) {
			i = fresh;
			fresh = NULL;
			i->next = t->bucket[h];
			t->bucket[h] = i;
			if (++t->count > t->nbuckets * 2)
				grow_locked(t);
		}
	}
	i->lookups++;
	pthread_mutex_unlock(&t->lock);
	if (i->fd != fd) {
		close(fd);
		free(fresh);
	}
	*out = i;
	return 0;
}

static int entry_of(struct inodes *t, int fd, struct fuse_entry_param *e)
{
	struct inode *i;
	int rc;

	memset(e, 0, sizeof(*e));
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
		rc = errno;
		close(fd);
		return rc;
	}
	rc = intern(t, fd, &e->attr, &i);
	if (!rc)
		e->ino = inodes_number(t, i);
	return rc;
}

int inodes_lookup(struct inodes *t, struct inode *dir, const char *name,
		  struct fuse_entry_param *e)
{
	int fd;

	/* the kernel walks "." and ".." itself; asked anyway, they could
	 * lead out of the backing directory */
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return EINVAL;
	fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	return entry_of(t, fd, e);
}

int inodes_lookup_fd(struct inodes *t, int fd, struct fuse_entry_param *e)
{
	char self[32];
	int pathfd;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	pathfd = open(self, O_PATH | O_CLOEXEC);
	if (pathfd < 0)
		return errno;
	return entry_of(t, pathfd, e);
}

void inodes_forget(struct inodes *t, struct inode *i, uint64_t n)
{
	pthread_mutex_lock(&t->lock);
	if (i == &t->root || (i->lookups -= n) > 0) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	struct inode **pp = &t->bucket[hash(i->dev, i->ino, t->nbuckets)];

	while (*pp != i)
		pp = &(*pp)->next;
	*pp = i->next;
	t->count--;
	pthread_mutex_unlock(&t->lock);
	close(i->fd);
	free(i);
}

void inodes_proc_path(const struct inode *i, char buf[32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", i->fd);
}

int inodes_open(const struct inode *i, int flags)
{
	char self[32];
	int fd;

	inodes_proc_path(i, self);
	fd = open(self, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}
