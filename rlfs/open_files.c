/* SPDX-License-Identifier: MIT */
/* open_files.c - the table of open files; see open_files.h. */
#include "open_files.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

void open_files_init(struct open_files *t, const struct rlfile_options *opt)
{
	pthread_mutex_init(&t->lock, NULL);
	t->head = NULL;
	t->opt = *opt;
}

static struct open_file *lookup(struct open_files *t, dev_t dev, ino_t ino)
{
	struct open_file *of;

	for (of = t->head; of; of = of->next)
		if (of->dev == dev && of->ino == ino)
			break;
	return of;
}

/* Unlink of from the table and close it; the table lock is held.  The
 * cache's memory goes back to the system (malloc keeps freed pages). */
static int close_locked(struct open_files *t, struct open_file *of)
{
	struct open_file **pp = &t->head;
	int rc;

	while (*pp != of)
		pp = &(*pp)->next;
	*pp = of->next;
	rc = rlfile_close(of->rf);
	close(of->fd);
	free(of);
	malloc_trim(0);
	return rc;
}

/* Close the files nobody has open whose dirty pages were written since,
 * or that were deleted (whose pages nobody can read again: the kernel
 * drops a deleted file's dirty pages too). */
static void reap_locked(struct open_files *t)
{
	struct open_file *of = t->head, *next;
	struct stat st;

	for (; of; of = next) {
		next = of->next;
		if (of->refs == 0 && (rlfile_dirty_pages(of->rf) == 0 ||
				      (fstat(of->fd, &st) == 0 && st.st_nlink == 0)))
			close_locked(t, of);
	}
}

void open_files_fix_size(struct open_files *t, struct stat *st)
{
	struct open_file *of;

	if (!S_ISREG(st->st_mode) || !(of = open_files_find(t, st->st_dev, st->st_ino)))
		return;
	st->st_size = (off_t)rlfile_size(of->rf);
	open_files_put(t, of);
}

void open_files_reap(struct open_files *t)
{
	pthread_mutex_lock(&t->lock);
	reap_locked(t);
	pthread_mutex_unlock(&t->lock);
}

int open_files_get(struct open_files *t, int fd, struct open_file **out)
{
	struct open_file *of;
	struct stat st;
	int rc = 0;

	if (fstat(fd, &st) != 0) {
		rc = errno;
		close(fd);
		return rc;
	}
	pthread_mutex_lock(&t->lock);
	reap_locked(t);
	of = lookup(t, st.st_dev, st.st_ino);
	if (of) {
		of->refs++;
		close(fd);
	} else if (!(of = calloc(1, sizeof(*of)))) {
		rc = ENOMEM;
	} else if ((rc = rlfile_open_fd(fd, &t->opt, &of->rf)) != 0) {
		free(of);
		of = NULL;
	} else {
		of->dev = st.st_dev;
		of->ino = st.st_ino;
		of->refs = 1;
		of->fd = fd;
		of->next = t->head;
		t->head = of;
	}
	pthread_mutex_unlock(&t->lock);
	if (rc)
		close(fd);
	*out = of;
	return rc;
}

struct open_file *open_files_find(struct open_files *t, dev_t dev, ino_t ino)
{
	struct open_file *of;

	pthread_mutex_lock(&t->lock);
	of = lookup(t, dev, ino);
	if (of)
		of->refs++;
	pthread_mutex_unlock(&t->lock);
	return of;
}

int open_files_put(struct open_files *t, struct open_file *of)
{
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	if (--of->refs == 0) {
		/* dirty pages that cannot be written are not dropped: the file
		 * stays, and its writeback thread tries again */
		rc = rlfile_flush(of->rf);
		if (!rc || rlfile_dirty_pages(of->rf) == 0)
			rc = close_locked(t, of);
	}
	reap_locked(t);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int open_files_close_all(struct open_files *t)
{
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	while (t->head) {
		int e = close_locked(t, t->head);

		rc = rc ? rc : e;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}
