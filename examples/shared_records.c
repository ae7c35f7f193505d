/* SPDX-License-Identifier: MIT */
/*
 * shared_records.c - processes write records into one shared file mapping
 * under byte ranges; one of them is killed in the middle of a write, and
 * the survivors find out and repair what it left.
 *
 * The file (a temporary one, MAP_SHARED) holds RECORDS records of 64 bytes;
 * a record is consistent when all its bytes equal its first.  The lock
 * lives in a second shared mapping.  Each of WRITERS processes rewrites
 * random records under an exclusive range of exactly that record, one byte
 * at a time (slowly: a torn record is visible if the lock fails), and
 * checks the records it reads under shared ranges.  The parent kills one
 * writer while it is in the middle of a record.  Every process granted
 * that range gets EOWNERDEAD until one holds it exclusive: that one
 * repairs the record (rewrites it whole), and nobody is told after it; a
 * reader told takes the record exclusive to repair it.  A record read
 * without EOWNERDEAD is never torn.  At the end the parent checks every
 * record, and that exactly one repair was made.
 *
 * usage: shared_records
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rangelock.h"

#define RECORDS 64
#define RECORD 64
#define WRITERS 4

struct control {                  /* a third shared mapping */
	atomic_int stop;
	atomic_int victim_in_record;  /* 1 + the record it is writing */
	atomic_int repaired;
	atomic_int torn_seen;
};

static unsigned char *file;
static void *lock_region;
static size_t lock_size;
static struct control *ctl;

static int consistent(const unsigned char *rec)
{
	for (int i = 1; i < RECORD; i++)
		if (rec[i] != rec[0])
			return 0;
	return 1;
}

static void write_record(unsigned char *rec, unsigned char stamp, int slow)
{
	for (int i = 0; i < RECORD; i++) {
		rec[i] = stamp;
		if (slow)
			usleep(50);
	}
}

static void writer(int me)
{
	rangelock_t lk;
	rangelock_range_t r;
	unsigned seed = (unsigned)me * 2654435761u;

	/* each process attaches its own handle; the mapping may be anywhere */
	if (rangelock_shared_attach(&lk, lock_region, lock_size) != 0)
		_exit(2);
	while (!atomic_load(&ctl->stop)) {
		int k = (int)(rand_r(&seed) % RECORDS);
		unsigned char *rec = file + (size_t)k * RECORD;
		int rc;

		if (rand_r(&seed) % 2) {   /* read it */
			rc = rangelock_rdlock(&lk, &r, (uint64_t)k * RECORD,
					      (uint64_t)(k + 1) * RECORD);
			if (rc == EOWNERDEAD) {
				/* shared, over a dead writer's record: not to
				 * be trusted, and not ours to repair while
				 * others may read it beside us.  Every reader
				 * is told until a writer repairs it: take it
				 * exclusive, and repair it if told again
				 * (else someone did meanwhile). */
				rangelock_unlock(&lk, &r);
				rc = rangelock_wrlock(&lk, &r, (uint64_t)k * RECORD,
						      (uint64_t)(k + 1) * RECORD);
				if (rc == EOWNERDEAD) {
					printf("reader %d: record %d was left by a "
					       "dead writer (%s): repaired\n", me,
					       k, consistent(rec) ? "consistent"
								  : "torn");
					fflush(stdout);
					write_record(rec, (unsigned char)(k + 1), 0);
					atomic_fetch_add(&ctl->repaired, 1);
				} else if (rc != 0) {
					_exit(3);
				}
			} else if (rc != 0) {
				_exit(3);
			} else if (!consistent(rec)) {
				atomic_fetch_add(&ctl->torn_seen, 1);
			}
			rangelock_unlock(&lk, &r);
			continue;
		}
		rc = rangelock_wrlock(&lk, &r, (uint64_t)k * RECORD,
				      (uint64_t)(k + 1) * RECORD);
		if (rc == EOWNERDEAD) {   /* the last writer died in it */
			printf("writer %d: record %d was left by a dead writer "
			       "(%s): repaired\n", me, k,
			       consistent(rec) ? "consistent" : "torn");
			fflush(stdout);
			atomic_fetch_add(&ctl->repaired, 1);
		} else if (rc != 0) {
			_exit(3);
		}
		if (me == 0)   /* the victim: the parent kills it mid-record */
			atomic_store(&ctl->victim_in_record, k + 1);
		write_record(rec, (unsigned char)(rand_r(&seed) | 1), me == 0);
		if (me == 0)
			atomic_store(&ctl->victim_in_record, 0);
		rangelock_unlock(&lk, &r);
	}
	if (rangelock_destroy(&lk) != 0)
		_exit(4);
	_exit(0);
}

static void *map_shared(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

int main(void)
{
	char path[] = "/tmp/shared_records-XXXXXX";
	int fd = mkstemp(path);
	pid_t pid[WRITERS];
	int bad = 0;

	if (fd < 0 || ftruncate(fd, RECORDS * RECORD) != 0) {
		perror("shared_records: file");
		return 1;
	}
	unlink(path);
	file = map_shared(fd, RECORDS * RECORD);
	for (int k = 0; k < RECORDS; k++)
		write_record(file + k * RECORD, (unsigned char)(k + 1), 0);
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	/* the lock: room for every writer's one request, and some */
	lock_size = rangelock_shared_size(2 * WRITERS);
	lock_region = mmap(NULL, lock_size, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED || lock_region == MAP_FAILED ||
	    rangelock_shared_init(lock_region, lock_size) != 0) {
		perror("shared_records: lock");
		return 1;
	}

	fflush(stdout);
	for (int i = 0; i < WRITERS; i++)
		if ((pid[i] = fork()) == 0)
			writer(i);

	/* kill writer 0 in the middle of a record */
	while (atomic_load(&ctl->victim_in_record) == 0)
		usleep(100);
	usleep(500);
	kill(pid[0], SIGKILL);
	printf("parent: killed writer 0 while it wrote record %d\n",
	       atomic_load(&ctl->victim_in_record) - 1);
	fflush(stdout);
	waitpid(pid[0], NULL, 0);

	/* the survivors go on for a while, then stop */
	for (int ms = 0; ms < 2000 && atomic_load(&ctl->repaired) == 0; ms++)
		usleep(1000);
	usleep(100000);
	atomic_store(&ctl->stop, 1);
	for (int i = 1; i < WRITERS; i++) {
		int st;

		waitpid(pid[i], &st, 0);
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	for (int k = 0; k < RECORDS; k++)
		bad |= !consistent(file + k * RECORD);
	printf("parent: %d repaired, %d torn records seen by readers, every "
	       "record consistent: %s\n", atomic_load(&ctl->repaired),
	       atomic_load(&ctl->torn_seen), bad ? "no" : "yes");
	bad |= atomic_load(&ctl->repaired) != 1 || atomic_load(&ctl->torn_seen);
	return bad ? 1 : 0;
}
