/* SPDX-License-Identifier: MIT */
/* refmodel.c - see refmodel.h. */
#include "refmodel.h"

#include <errno.h>
#include <string.h>

static bool listed(const struct ref_request *q)
{
	return q->state != REF_IDLE;
}

static bool conflict(const struct ref_request *a, uint64_t start,
		     uint64_t end, bool exclusive)
{
	return a->start < end && start < a->end && (a->exclusive || exclusive);
}

/* Is q blocked by an earlier listed request? */
static bool blocked(const struct ref_lock *m, const struct ref_request *q)
{
	for (int i = 0; i < REF_HANDLES; i++) {
		const struct ref_request *e = &m->r[i];

		if (e != q && listed(e) && e->arrival < q->arrival &&
		    conflict(e, q->start, q->end, q->exclusive))
			return true;
	}
	return false;
}

/* After a request left or weakened: grant every waiter no longer blocked.
 * (Granting one cannot block another: grants change no listed set.) */
static void regrant(struct ref_lock *m)
{
	for (int i = 0; i < REF_HANDLES; i++)
		if (m->r[i].state == REF_WAITING && !blocked(m, &m->r[i]))
			m->r[i].state = REF_HELD;
}

void ref_init(struct ref_lock *m, bool debug)
{
	memset(m, 0, sizeof(*m));
	m->debug = debug;
}

int ref_lock(struct ref_lock *m, int h, int thread, uint64_t start,
	     uint64_t end, bool exclusive, enum ref_how how)
{
	struct ref_request *q = &m->r[h];

	if (start >= end)
		return EINVAL;
	if (m->debug) {
		if (listed(q))
			return EINVAL;
		for (int i = 0; i < REF_HANDLES; i++)
			if (m->r[i].state == REF_HELD && m->r[i].thread == thread &&
			    m->r[i].start < end && start < m->r[i].end)
				return EDEADLK;
	}
	for (int i = 0; i < REF_HANDLES; i++)
		if (listed(&m->r[i]) && conflict(&m->r[i], start, end, exclusive)) {
			if (how == REF_TRY)
				return EBUSY;
			if (how == REF_TIMED_PAST)
				return ETIMEDOUT;
			*q = (struct ref_request){ REF_WAITING, start, end,
						   exclusive, thread, ++m->clock };
			return -1;
		}
	*q = (struct ref_request){ REF_HELD, start, end, exclusive, thread,
				   ++m->clock };
	return 0;
}

int ref_unlock(struct ref_lock *m, int h)
{
	if (m->r[h].state != REF_HELD)
		return EINVAL;
	m->r[h].state = REF_IDLE;
	regrant(m);
	return 0;
}

int ref_downgrade(struct ref_lock *m, int h)
{
	if (m->r[h].state != REF_HELD || !m->r[h].exclusive)
		return EINVAL;
	m->r[h].exclusive = false;
	regrant(m);
	return 0;
}

void ref_withdraw(struct ref_lock *m, int h)
{
	m->r[h].state = REF_IDLE;
	regrant(m);
}

int ref_destroy(const struct ref_lock *m)
{
	for (int i = 0; i < REF_HANDLES; i++)
		if (listed(&m->r[i]))
			return EBUSY;
	return 0;
}
