/* SPDX-License-Identifier: MIT */
/*
 * shadow.h - an independent check that no lock lets conflicting ranges be
 * held at once.  Each page of a small space has a count of shared and of
 * exclusive holders, kept with sequentially consistent atomics outside the
 * lock under test.  A holder announces itself on every page of its range
 * and then checks the other count: an exclusive holder must see no other
 * holder, a shared holder no exclusive one.  With seq_cst, of two
 * conflicting holders at least one sees the other (Dekker's argument), so
 * any overlap the lock lets through is counted.
 *
 * Used by tests/stress (the library) and rlbench --validate (every
 * contender).
 */
#ifndef RL_TEST_SHADOW_H
#define RL_TEST_SHADOW_H

#include <stdbool.h>

struct shadow;

struct shadow *shadow_new(int pages);
void shadow_free(struct shadow *s);
/* Pages [lo, hi) are now held in this mode: count and check. */
void shadow_enter(struct shadow *s, int lo, int hi, bool exclusive);
void shadow_leave(struct shadow *s, int lo, int hi, bool exclusive);
/* Exclusive -> shared without a moment unheld. */
void shadow_downgrade(struct shadow *s, int lo, int hi);
/* Conflicting holders seen so far. */
long shadow_violations(struct shadow *s);

#endif
