/* SPDX-License-Identifier: MIT */
/*
 * downgrade_init.c - initialise a region exclusively, then share it.
 *
 * The first thread to need a region of a table fills it under an exclusive
 * range, then downgrades to shared and goes on reading it, with no moment
 * in which the region is unlocked: readers that arrived meanwhile are let
 * in by the downgrade and see it filled, never half-written.
 *
 * usage: downgrade_init
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "rangelock.h"

#define REGION 65536
#define READERS 4

static unsigned char table[REGION];
static rangelock_t lock = RANGELOCK_INITIALIZER;
static atomic_int bad;

static void *reader(void *arg)
{
	rangelock_range_t r;

	(void)arg;
	rangelock_rdlock(&lock, &r, 0, REGION);   /* waits for the filler */
	for (int i = 0; i < REGION; i++)
		if (table[i] != (unsigned char)(i * 7))
			atomic_fetch_add(&bad, 1);
	rangelock_unlock(&lock, &r);
	return NULL;
}

int main(void)
{
	pthread_t t[READERS];
	rangelock_range_t r;
	int rc;

	rangelock_wrlock(&lock, &r, 0, REGION);
	for (int i = 0; i < READERS; i++)     /* they queue behind us */
		pthread_create(&t[i], NULL, reader, NULL);
	for (int i = 0; i < REGION; i++)
		table[i] = (unsigned char)(i * 7);
	rc = rangelock_downgrade(&lock, &r);  /* readers go; we keep reading */
	printf("downgrade: %s\n", rc == 0 ? "ok, region now shared" : "failed");
	printf("our own read after downgrade: %s\n",
	       table[REGION - 1] == (unsigned char)((REGION - 1) * 7) ? "ok" : "bad");
	rangelock_unlock(&lock, &r);
	for (int i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	printf("%d readers saw a half-filled region: %d bytes wrong\n", READERS,
	       atomic_load(&bad));
	return rc == 0 && atomic_load(&bad) == 0 &&
			       rangelock_destroy(&lock) == 0
		       ? 0
		       : 1;
}
