/* SPDX-License-Identifier: MIT */
/* consumer.c - an outside program, built against an installed (or vendored)
 * rangelock by tests/install/consumers.sh. */
#include <rangelock.h>

#include <errno.h>
#include <stdio.h>

int main(void)
{
	rangelock_t lock;
	rangelock_range_t a, b;
	int ok = rangelock_init(&lock, 0) == 0 &&
		 rangelock_rdlock(&lock, &a, 0, 4096) == 0 &&
		 rangelock_trywrlock(&lock, &b, 0, 4096) == EBUSY &&
		 rangelock_trywrlock(&lock, &b, 4096, RANGELOCK_EOF) == 0 &&
		 rangelock_unlock(&lock, &b) == 0 &&
		 rangelock_unlock(&lock, &a) == 0 &&
		 rangelock_destroy(&lock) == 0 &&
		 rangelock_version() == RANGELOCK_VERSION;

	printf("consumer: rangelock %u.%u.%u %s\n", rangelock_version() >> 16,
	       rangelock_version() >> 8 & 0xff, rangelock_version() & 0xff,
	       ok ? "ok" : "FAILED");
	return ok ? 0 : 1;
}
