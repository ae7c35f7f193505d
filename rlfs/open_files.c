/* SPDX-License-Identifier: MIT */
/* open_files.c - the table of open files; see open_files.h. */
#include "open_files.h"

#include <errno.h>
#include <malloc.h>
#include <time.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Pin the files with dirty pages (a reference each) into *out; their
 * count.  The lock is held. */
static size_t dirty_files_locked(struct open_files *t, struct open_file ***out)
{
	size_t n = 0, k = 0;
	struct open_file *of;

	for (of = t->head; of; of = of->next)
		n += rlfile_dirty_pages(of->rf) > 0;
	if (!n || !(*out = malloc(n * sizeof(**out))))
		return 0;   /* without memory: the next round, or a close */
	for (of = t->head; of && k < n; of = of->next)
		if (rlfile_dirty_pages(of->rf) > 0) {
			of->refs++;
			(*out)[k++] = of;
		}
	return k;
}

static void *writeback_main(void *arg)
{
	struct open_files *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->wb_stop) {
		struct open_file **dirty = NULL;
		struct timespec at;
		size_t n;

		clock_gettime(CLOCK_REALTIME, &at);
		at.tv_nsec += (long)t->writeback_ms * 1000000L;
		at.tv_sec += at.tv_nsec / 1000000000L;
		at.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&t->wb_cv, &t->lock, &at);
		if (t->wb_stop || !(n = dirty_files_locked(t, &dirty)))
			continue;
		pthread_mutex_unlock(&t->lock);
		for (size_t k = 0; k < n; k++)
			rlfile_flush(dirty[k]->rf);   /* errors: in errseq */
		for (size_t k = 0; k < n; k++)
			open_files_put(t, dirty[k]);
		free(dirty);
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

void open_files_init(struct open_files *t, const struct rlfile_options *opt)
{
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->wb_cv, NULL);
	t->head = NULL;
	t->opt = *opt;
	t->writeback_ms = opt->writeback_ms;
	t->opt.writeback_ms = 0;   /* the table's thread writes them back */
	t->wb_stop = false;
	t->wb_running = false;
}

int open_files_start(struct open_files *t)
{
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	if (t->writeback_ms && !t->wb_running && !t->wb_stop) {
		rc = pthread_create(&t->writeback, NULL, writeback_main, t);
		t->wb_running = rc == 0;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
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
	/* a large cache's memory goes back to the system (malloc keeps freed
	 * pages); trimming after every small file would cost more than it
	 * gives */
	bool large = rlfile_cached_pages(of->rf) >= 256;

	rc = rlfile_close(of->rf);
	close(of->fd);
	free(of);
	if (large)
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
	t->wb_stop = true;
	pthread_cond_broadcast(&t->wb_cv);
	pthread_mutex_unlock(&t->lock);
	if (t->wb_running)
		pthread_join(t->writeback, NULL);
	t->wb_running = false;
	pthread_mutex_lock(&t->lock);
	while (t->head) {
		int e = close_locked(t, t->head);

		rc = rc ? rc : e;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}
