/* SPDX-License-Identifier: MIT */
/*
 * mirror.c - every request under the prefix, as the watch last told it,
 * grouped by object and ordered by create revision; and the grant rule.
 *
 * The grant rule: a request R (revision r, lease L) is granted when no
 * request of another lease, made before it (revision < r), overlaps it in
 * a conflicting mode.  Requests are only ever added with revisions above
 * every earlier one, so once the mirror has applied every event up to r,
 * the set that can block R only shrinks: a waiter re-evaluates the rule
 * after each change, and never misses its grant.  A client's own requests
 * never block each other: its local rangelock_t has already settled them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rl_etcd.h"

static size_t rl_hash(const char *s, size_t n)
{
	size_t h = 1469598103934665603u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211u;
	return h;
}

int rl_mirror_init(struct rl_mirror *m)
{
	m->nbuckets = 256;
	m->rev = 0;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	return m->buckets ? 0 : ENOMEM;
}

void rl_mirror_clear(struct rl_mirror *m)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct rl_mobj *mo;
		while ((mo = m->buckets[i])) {
			m->buckets[i] = mo->next;
			for (struct rl_req *q = mo->reqs, *nx; q; q = nx) {
				nx = q->next;
				rl_req_free(q);
			}
			free(mo->objkey);
			free(mo);
		}
	}
	m->rev = 0;
}

struct rl_mobj *rl_mirror_find(struct rl_mirror *m, const char *objkey, size_t len)
{
	struct rl_mobj *mo = m->buckets[rl_hash(objkey, len) % m->nbuckets];
	while (mo && (strlen(mo->objkey) != len || memcmp(mo->objkey, objkey, len)))
		mo = mo->next;
	return mo;
}

/* The object of a request, made if the mirror has none. */
static struct rl_mobj *rl_mirror_object(struct rl_mirror *m, const char *key,
					size_t len)
{
	struct rl_mobj *mo = rl_mirror_find(m, key, len);
	if (mo)
		return mo;
	mo = calloc(1, sizeof(*mo));
	if (!mo || !(mo->objkey = strndup(key, len))) {
		free(mo);
		return NULL;
	}
	struct rl_mobj **b = &m->buckets[rl_hash(key, len) % m->nbuckets];
	mo->next = *b;
	*b = mo;
	return mo;
}

int rl_mirror_put(struct rl_mirror *m, struct rl_req *q)
{
	struct rl_mobj *mo = rl_mirror_object(m, q->key, q->hexoff + q->hexlen + 1);
	if (!mo) {
		rl_req_free(q);
		return ENOMEM;
	}
	struct rl_req **at = &mo->reqs;
	while (*at && (*at)->rev < q->rev)
		at = &(*at)->next;
	if (*at && strcmp((*at)->key, q->key) == 0) {
		/* a downgrade: the same request, a new value */
		struct rl_req *old = *at;
		q->next = old->next;
		*at = q;
		rl_req_free(old);
		return 0;
	}
	q->next = *at;
	*at = q;
	return 0;
}

void rl_mirror_del(struct rl_mirror *m, const char *key, size_t klen)
{
	const char *slash = NULL;
	for (size_t i = klen; i-- > 0;)
		if (key[i] == '/') {
			slash = key + i;
			break;
		}
	if (!slash)
		return;
	size_t olen = (size_t)(slash - key) + 1;
	struct rl_mobj **b = &m->buckets[rl_hash(key, olen) % m->nbuckets];
	while (*b && (strlen((*b)->objkey) != olen || memcmp((*b)->objkey, key, olen)))
		b = &(*b)->next;
	struct rl_mobj *mo = *b;
	if (!mo)
		return;
	for (struct rl_req **at = &mo->reqs; *at; at = &(*at)->next)
		if (strlen((*at)->key) == klen && memcmp((*at)->key, key, klen) == 0) {
			struct rl_req *q = *at;
			*at = q->next;
			rl_req_free(q);
			break;
		}
	if (!mo->reqs) { /* an object nobody asks for costs nothing */
		*b = mo->next;
		free(mo->objkey);
		free(mo);
	}
}

const struct rl_req *rl_blocker(const struct rl_req *list, uint64_t rev,
				uint64_t lease, uint64_t start, uint64_t end,
				bool excl)
{
	for (const struct rl_req *q = list; q && q->rev < rev; q = q->next)
		if (q->lease != lease && rl_conflicts(q, start, end, excl))
			return q;
	return NULL;
}
