/* SPDX-License-Identifier: MIT */
/* test_check.h - CHECK(cond) for rlfile's tests: counts, and says where a
 * check failed. */
#ifndef RLFILE_TEST_CHECK_H
#define RLFILE_TEST_CHECK_H

#include <stdio.h>

static int failed, passed;

#define CHECK(cond) do {                                                  \
	if (cond) { passed++; } else {                                     \
		failed++;                                                  \
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,     \
			__LINE__, #cond);                                  \
	}                                                                  \
} while (0)

#endif
