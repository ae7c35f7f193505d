/* SPDX-License-Identifier: MIT */
/*
 * harness.h - what the tests share: checks that report file:line and exit 1,
 * TAP-style progress lines, and a thread that makes one lock request in the
 * background so a test can build an exact queue of waiters.
 *
 * Exit codes: 0 pass, 1 fail, 77 skip (CTest SKIP_RETURN_CODE).
 */
#ifndef RL_TEST_HARNESS_H
#define RL_TEST_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rangelock.h"

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond))                                                  \
			t_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);       \
	} while (0)

/* CHECK_RC: expr returns exactly want (0 or an errno value). */
#define CHECK_RC(expr, want)                                                  \
	do {                                                                  \
		int rc_ = (expr);                                             \
		if (rc_ != (want))                                            \
			t_fail(__FILE__, __LINE__, "%s = %s, want %s", #expr, \
			       t_errname(rc_), t_errname(want));              \
	} while (0)

/* RUN: run one test function and print a TAP line for it. */
#define RUN(fn)                                                               \
	do {                                                                  \
		fn();                                                         \
		printf("ok %d - %s\n", ++t_count, #fn);                       \
		fflush(stdout);                                               \
	} while (0)

extern int t_count;

_Noreturn void t_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *t_errname(int err);
void t_sleep_ms(int ms);
struct timespec t_deadline_ms(long ms);    /* CLOCK_MONOTONIC now + ms */
int t_elapsed_since_ms(const struct timespec *start);
void t_done(void);                         /* prints the closing line */

/* A lock request made by its own thread. */
enum t_op { T_RD, T_WR, T_TIMED_RD, T_TIMED_WR };

struct t_request {
	rangelock_t *lk;
	rangelock_range_t range;
	enum t_op op;
	uint64_t start, end;
	struct timespec deadline;   /* for the timed ops */
	int rc;                     /* the call's result, once done */
	atomic_int done;            /* 1 when the call returned */
	atomic_int grant_seq;       /* order in which calls returned */
	pthread_t thread;
};

/* t_request_start: start a thread that calls op on [start, end). */
void t_request_start(struct t_request *t, rangelock_t *lk, enum t_op op,
		     uint64_t start, uint64_t end);
/* t_request_wait: wait up to 10 s for the call to return; fail if not. */
int t_request_wait(struct t_request *t);
/* t_request_pending: the call has not returned (after giving it ms). */
bool t_request_pending(struct t_request *t, int ms);
/* t_wait_queued: poll with a try-lock of [start, end) until it reports
 * EBUSY, i.e. until a request that blocks it is queued or held.  The probe
 * must conflict with the awaited request and with nothing already held. */
void t_wait_queued(rangelock_t *lk, bool exclusive, uint64_t start,
		   uint64_t end);

#endif
