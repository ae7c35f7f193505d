/* SPDX-License-Identifier: MIT */
/*
 * rl_shared.h - what rl_shared.c (the region, its nodes and processes,
 * recovery) gives rl_shared_lock.c (a lock call on a shared lock).  Every
 * function here but the guard's needs the guard.
 */
#ifndef RL_SHARED_H
#define RL_SHARED_H

#include "rl_internal.h"

rl_hidden void rl_shared_guard_lock(struct rl_lock *l);
rl_hidden void rl_shared_guard_unlock(struct rl_lock *l);
/* A free node for a new request of this process: 0, EAGAIN when every
 * node is in use, ENOTRECOVERABLE for a broken region, EINVAL for a view
 * attached before a fork (by the parent). */
rl_hidden int rl_shared_node_alloc(struct rl_lock *l, struct rl_request **out);
rl_hidden void rl_shared_node_free(struct rl_lock *l, struct rl_request *q);
/* n is held: q, the caller's handle, names it.  0, EOWNERDEAD or
 * ENOTRECOVERABLE. */
rl_hidden int rl_shared_handle(struct rl_lock *l, struct rl_request *q,
			       struct rl_request *n);
/* A request for [start, end) was refused: did a look at its blockers find
 * dead ones (recovered: worth a second attempt)? */
rl_hidden bool rl_shared_refused(struct rl_lock *l, uint64_t start,
				 uint64_t end, bool exclusive);
/* q has slept RL_POLL_NS: recover from its dead blockers, if any.  Takes
 * the guard; false if the region is broken. */
rl_hidden bool rl_shared_poll(struct rl_lock *l, struct rl_request *q);

#endif /* RL_SHARED_H */
