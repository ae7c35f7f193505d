/* SPDX-License-Identifier: MIT */
/*
 * refmodel.h - the reference model: rangelock's semantics, single-threaded
 * and obviously correct, for the fuzzer to compare the library against.
 *
 * Requests are kept in one array in arrival order.  A request is held when
 * it conflicts with no earlier request (held or waiting) -- the whole rule,
 * written as directly as it can be.  No fast path, no futexes, no memory
 * orders: whatever the library does inside, its results must be these.
 */
#ifndef RL_REFMODEL_H
#define RL_REFMODEL_H

#include <stdbool.h>
#include <stdint.h>

#define REF_HANDLES 8

enum ref_state { REF_IDLE, REF_WAITING, REF_HELD };
enum ref_how { REF_BLOCK, REF_TRY, REF_TIMED_PAST };

struct ref_request {
	enum ref_state state;
	uint64_t start, end;
	bool exclusive;
	int thread;             /* who locked it (debug mode's check) */
	unsigned long arrival;  /* order among listed requests */
};

struct ref_lock {
	bool debug;
	unsigned long clock;
	struct ref_request r[REF_HANDLES];
};

void ref_init(struct ref_lock *m, bool debug);
/* What a lock call returns: 0 (held), -1 (the call waits: REF_BLOCK only,
 * the handle is then REF_WAITING), or an errno value. */
int ref_lock(struct ref_lock *m, int h, int thread, uint64_t start,
	     uint64_t end, bool exclusive, enum ref_how how);
int ref_unlock(struct ref_lock *m, int h);
int ref_downgrade(struct ref_lock *m, int h);
/* A waiting request gives up (its deadline passed). */
void ref_withdraw(struct ref_lock *m, int h);
int ref_destroy(const struct ref_lock *m);

#endif
