/* SPDX-License-Identifier: MIT */
/*
 * lock.c - objects, grants and the cache: the calls of rangelock_etcd.h.
 *
 * A lock call first takes the object's local rangelock_t, which settles
 * the threads of this process among themselves.  Then it needs a grant
 * from etcd that covers its range in its mode:
 *
 *   - a grant this client already has (held by other local threads, or
 *     cached after its last holder unlocked) that covers the range, allows
 *     the mode and is not being revoked: it is used at once;
 *   - otherwise a request: one transaction puts the request's key (with
 *     the lease) and reads the object's keys at that revision.  If none
 *     blocks it (mirror.c's rule), it is granted; else the call waits for
 *     the watch to delete its blockers from the mirror.
 *
 * Revocation: when the watch shows another client's request that
 * conflicts with a grant of ours, the grant is marked revoked: nobody new
 * may use it, and the last holder's unlock deletes its key (a cached one
 * is deleted at once, by the watch thread, in flush).
 *
 * Everything here is under the session's mu, except the round trips.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rl_etcd.h"

enum rl_grant_state { RL_PENDING = 1, RL_GRANTED, RL_LOST };
/* rangelock_etcd_range_t.state: spelled, so stale bytes are not held, and
 * mixed with the handle's address, so a copy (memcpy) is not the handle */
#define RL_HELD_X(r) (0x52414e4745584c31ull ^ (uintptr_t)(r)) /* "RANGEXL1" */
#define RL_HELD_S(r) (0x52414e4745534831ull ^ (uintptr_t)(r)) /* "RANGESH1" */

struct rl_grant {
	struct rangelock_etcd_object *o;
	char *key;
	uint64_t rev;           /* create revision: order and token */
	uint64_t start, end;
	uint64_t gen;           /* the lease generation it was made under */
	uint64_t lease;         /* the lease it was made with */
	bool excl;
	bool unsure;            /* an attempt of its request went unanswered:
	                         * its withdrawal leaves a mark (keys.c) */
	bool revoked;           /* a conflicting request of another client */
	enum rl_grant_state state;
	unsigned users;         /* local holders; 0: cached */
	struct rl_grant *next;  /* the object's grants */
	struct rl_grant *lru_prev, *lru_next; /* while cached */
};

struct rangelock_etcd_object {
	rangelock_etcd_t *c;
	char *objkey;           /* PREFIX "o/" HEX "/" */
	size_t objlen;
	unsigned opens;
	unsigned active;        /* ranges held or waited for */
	rangelock_t local;
	struct rl_grant *grants;
	struct rangelock_etcd_object *next;
};

struct rangelock_etcd {
	struct rl_session s;
	unsigned flags;
	unsigned cache_max;
	unsigned cached;
	unsigned waiters;       /* calls in rl_wait_grant(): the watch runs */
	uint64_t seq;
	struct rangelock_etcd_object *objects;
	struct rl_grant *lru_old, *lru_new;     /* cached grants */
	struct rl_grant *doomed;                /* keys to delete (next) */
};

/* ---- grants ------------------------------------------------------------- */

static void rl_lru_del(rangelock_etcd_t *c, struct rl_grant *g)
{
	*(g->lru_prev ? &g->lru_prev->lru_next : &c->lru_old) = g->lru_next;
	*(g->lru_next ? &g->lru_next->lru_prev : &c->lru_new) = g->lru_prev;
	g->lru_prev = g->lru_next = NULL;
	c->cached--;
}

static void rl_lru_add(rangelock_etcd_t *c, struct rl_grant *g)
{
	g->lru_next = NULL;
	g->lru_prev = c->lru_new;
	*(c->lru_new ? &c->lru_new->lru_next : &c->lru_old) = g;
	c->lru_new = g;
	c->cached++;
}

/* Take g off its object (and the cache); the caller deletes or frees it. */
static void rl_grant_unlink(rangelock_etcd_t *c, struct rl_grant *g)
{
	struct rl_grant **at = &g->o->grants;
	while (*at != g)
		at = &(*at)->next;
	*at = g->next;
	if (g->state == RL_GRANTED && g->users == 0)
		rl_lru_del(c, g);
}

static void rl_grant_free(struct rl_grant *g)
{
	free(g->key);
	free(g);
}

/* Did etcd refuse a request because its lease is unknown (expired)? */
static bool rl_lease_unknown(int err, json_object *reply)
{
	return err == EIO && strstr(json_object_to_json_string(reply), "lease not found");
}

/* Delete g's key; and when an attempt of its request may still be applied
 * late, in the same transaction put the mark that makes it fail. */
static int rl_withdraw(rangelock_etcd_t *c, const struct rl_grant *g)
{
	char *mark = g->unsure ? rl_key_withdrawn(c->s.prefix, g->key) : NULL;
	char *k64 = rl_b64_dup(g->key, strlen(g->key));
	char *m64 = mark ? rl_b64_dup(mark, strlen(mark)) : NULL;
	char *body = k64 && (m64 || !g->unsure) ? malloc(2 * strlen(k64) + 256) : NULL;
	json_object *reply = NULL;
	int err = body ? 0 : ENOMEM;
	if (body && !g->unsure) {
		sprintf(body, "{\"key\":\"%s\"}", k64);
		err = rl_gw_call(&c->s.gw, "/v3/kv/deleterange", body, &reply, NULL);
	} else if (body) {
		sprintf(body, "{\"success\":[{\"requestDeleteRange\":{\"key\":\"%s\"}},"
			"{\"requestPut\":{\"key\":\"%s\",\"lease\":\"%llu\"}}]}",
			k64, m64, (unsigned long long)g->lease);
		err = rl_gw_call(&c->s.gw, "/v3/kv/txn", body, &reply, NULL);
		if (rl_lease_unknown(err, reply))
			err = 0; /* the lease is gone: so is the key, and no put can use it */
	}
	json_object_put(reply);
	free(mark);
	free(k64);
	free(m64);
	free(body);
	return err;
}

/* Without mu: delete g's key and free g.  When no member takes the delete,
 * g goes back on the doomed list for the next flush (the keeper flushes
 * every third of the TTL): the key must not outlive the grant, since the
 * lease that carries it is kept alive and its conflicting waiters would
 * wait for ever. */
static void rl_give_back(rangelock_etcd_t *c, struct rl_grant *g)
{
	int err = rl_withdraw(c, g);
	rl_debug("give back %llu: %d", (unsigned long long)g->rev, err);
	if (err == 0) {
		rl_grant_free(g);
		return;
	}
	pthread_mutex_lock(&c->s.mu);
	g->next = c->doomed;
	c->doomed = g;
	pthread_mutex_unlock(&c->s.mu);
}

/* Without mu: delete the keys of the grants doomed so far. */
static void rl_flush(void *arg)
{
	rangelock_etcd_t *c = arg;
	pthread_mutex_lock(&c->s.mu);
	struct rl_grant *g = c->doomed;
	c->doomed = NULL;
	pthread_mutex_unlock(&c->s.mu);
	while (g) {
		struct rl_grant *next = g->next;
		rl_give_back(c, g);
		g = next;
	}
}

static void rl_doom(rangelock_etcd_t *c, struct rl_grant *g)
{
	rl_grant_unlink(c, g);
	g->next = c->doomed;
	c->doomed = g;
}

/* Under mu: does a later request of another client conflict with g? */
static bool rl_wanted(rangelock_etcd_t *c, const struct rl_grant *g)
{
	struct rl_mobj *mo = rl_mirror_find(&c->s.mirror, g->o->objkey, g->o->objlen);
	for (const struct rl_req *q = mo ? mo->reqs : NULL; q; q = q->next)
		if (q->rev > g->rev && q->lease != c->s.lease &&
		    rl_conflicts(q, g->start, g->end, g->excl))
			return true;
	return false;
}

static void rl_revoke(rangelock_etcd_t *c, struct rl_grant *g)
{
	rl_debug("revoke %llu, %u users", (unsigned long long)g->rev, g->users);
	g->revoked = true;
	if (g->users == 0)
		rl_doom(c, g);
}

static struct rangelock_etcd_object *rl_object_of(rangelock_etcd_t *c,
						  const char *objkey, size_t len)
{
	struct rangelock_etcd_object *o = c->objects;
	while (o && (o->objlen != len || memcmp(o->objkey, objkey, len)))
		o = o->next;
	return o;
}

/* Under mu: revoke the grants of o that req (or, with req NULL, any
 * later request of another client) conflicts with. */
static void rl_revoke_wanted(rangelock_etcd_t *c, struct rangelock_etcd_object *o,
			     const struct rl_req *req)
{
	for (struct rl_grant *g = o->grants, *next; g; g = next) {
		next = g->next;
		if (g->state != RL_GRANTED || g->revoked)
			continue;
		if (req ? req->rev > g->rev && rl_conflicts(req, g->start, g->end, g->excl)
			: rl_wanted(c, g))
			rl_revoke(c, g);
	}
}

/* Under mu, from the watch: a request was made (new), or the mirror was
 * read again (all). */
static void rl_changed(void *arg, struct rl_mobj *mo, const struct rl_req *new,
		       bool all)
{
	rangelock_etcd_t *c = arg;
	if (all) {
		for (struct rangelock_etcd_object *o = c->objects; o; o = o->next)
			rl_revoke_wanted(c, o, NULL);
	} else if (new && new->lease != c->s.lease) {
		rl_debug("request %llu of another client", (unsigned long long)new->rev);
		struct rangelock_etcd_object *o =
			rl_object_of(c, mo->objkey, strlen(mo->objkey));
		if (o)
			rl_revoke_wanted(c, o, new);
	}
}

struct rl_session *rl_client_session(rangelock_etcd_t *c)
{
	return &c->s;
}

/* Under mu: the lease is gone, and every grant made under it. */
static void rl_lease_lost(void *arg)
{
	rangelock_etcd_t *c = arg;
	for (struct rangelock_etcd_object *o = c->objects; o; o = o->next)
		for (struct rl_grant *g = o->grants, *next; g; g = next) {
			next = g->next;
			if (g->state == RL_GRANTED && g->users == 0) {
				rl_grant_unlink(c, g);
				rl_grant_free(g);
			} else {
				g->state = RL_LOST;
			}
		}
}

/* Under mu: the watch runs while a call waits, and, unless nothing is
 * cached, while grants are kept (they must hear of conflicting requests). */
static bool rl_watch_wanted(void *arg)
{
	rangelock_etcd_t *c = arg;
	if (c->waiters)
		return true;
	if (c->flags & RANGELOCK_ETCD_NOCACHE)
		return false;
	for (struct rangelock_etcd_object *o = c->objects; o; o = o->next)
		for (struct rl_grant *g = o->grants; g; g = g->next)
			if (g->state == RL_GRANTED)
				return true;
	return false;
}

/* ---- client and objects ------------------------------------------------- */

int rangelock_etcd_connect(rangelock_etcd_t **out,
			   const struct rangelock_etcd_options *opt)
{
	rangelock_etcd_t *c = calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->flags = opt ? opt->flags : 0;
	c->cache_max = opt && opt->cache ? opt->cache : RANGELOCK_ETCD_CACHE;
	if (c->flags & ~RANGELOCK_ETCD_NOCACHE) {
		free(c);
		return EINVAL;
	}
	struct rl_session_ops ops = { rl_changed, rl_lease_lost, rl_watch_wanted,
				      rl_flush, c };
	int err = rl_session_start(&c->s, opt, &ops);
	if (err) {
		free(c);
		return err;
	}
	*out = c;
	return 0;
}

int rangelock_etcd_close(rangelock_etcd_t *c)
{
	pthread_mutex_lock(&c->s.mu);
	bool busy = c->objects != NULL;
	pthread_mutex_unlock(&c->s.mu);
	if (busy)
		return EBUSY;
	rl_session_stop(&c->s); /* the lease's revocation deletes our keys */
	for (struct rl_grant *g = c->doomed, *next; g; g = next) {
		next = g->next;
		rl_grant_free(g);
	}
	free(c);
	return 0;
}

int rangelock_etcd_open(rangelock_etcd_t *c, const void *name, size_t name_len,
			rangelock_etcd_object_t **out)
{
	if (name_len == 0 || name_len > 4096)
		return EINVAL;
	char *objkey = rl_key_object(c->s.prefix, name, name_len);
	if (!objkey)
		return ENOMEM;
	pthread_mutex_lock(&c->s.mu);
	struct rangelock_etcd_object *o = rl_object_of(c, objkey, strlen(objkey));
	if (o) {
		o->opens++;
		free(objkey);
	} else if ((o = calloc(1, sizeof(*o)))) {
		o->c = c;
		o->objkey = objkey;
		o->objlen = strlen(objkey);
		o->opens = 1;
		rangelock_init(&o->local, 0);
		o->next = c->objects;
		c->objects = o;
	} else {
		free(objkey);
	}
	pthread_mutex_unlock(&c->s.mu);
	*out = o;
	return o ? 0 : ENOMEM;
}

int rangelock_etcd_object_close(rangelock_etcd_object_t *o)
{
	rangelock_etcd_t *c = o->c;
	pthread_mutex_lock(&c->s.mu);
	if (o->opens == 1 && o->active) {
		pthread_mutex_unlock(&c->s.mu);
		return EBUSY;
	}
	if (--o->opens) {
		pthread_mutex_unlock(&c->s.mu);
		return 0;
	}
	struct rangelock_etcd_object **at = &c->objects;
	while (*at != o)
		at = &(*at)->next;
	*at = o->next;
	while (o->grants) /* all cached: nobody holds or waits */
		rl_doom(c, o->grants);
	pthread_mutex_unlock(&c->s.mu);
	rl_flush(c);
	rangelock_destroy(&o->local);
	free(o->objkey);
	free(o);
	return 0;
}

/* ---- locking ------------------------------------------------------------ */

enum rl_how { RL_BLOCK, RL_TRY, RL_TIMED };

/* Under mu: a grant of ours that serves [start, end) in excl at once. */
static struct rl_grant *rl_cached(rangelock_etcd_t *c, struct rangelock_etcd_object *o,
				  uint64_t start, uint64_t end, bool excl)
{
	for (struct rl_grant *g = o->grants; g; g = g->next)
		if (g->state == RL_GRANTED && !g->revoked && g->start <= start &&
		    end <= g->end && (g->excl || !excl) &&
		    rl_session_valid(&c->s, g->gen) == 0)
			return g;
	return NULL;
}

/* The request's transaction: if neither its key nor its withdrawal mark
 * exists, put its key; in any case read the object's keys.  So a request
 * is put at most once, however often its attempts are repeated or applied
 * late.  *rev and *blocked from that one consistent read; *unsure if an
 * attempt went unanswered.  Without mu: reads only what g was made with. */
static int rl_request(rangelock_etcd_t *c, const struct rl_grant *g, uint64_t *rev,
		      bool *blocked, bool *unsure)
{
	char *val = rl_key_value(g->excl, g->start, g->end, c->s.name);
	char *mark = rl_key_withdrawn(c->s.prefix, g->key);
	char *range = rl_session_range_json(g->o->objkey);
	size_t klen = strlen(g->key), vlen = val ? strlen(val) : 0;
	char *body = val && mark && range
		? malloc(5 * klen + 2 * vlen + 2 * strlen(range) + 512) : NULL;
	if (!body) {
		free(val);
		free(mark);
		free(range);
		return ENOMEM;
	}
	int n = sprintf(body, "{\"compare\":[{\"target\":\"CREATE\",\"key\":\"");
	n += (int)rl_b64_encode(g->key, klen, body + n);
	n += sprintf(body + n, "\",\"create_revision\":\"0\"},"
			       "{\"target\":\"CREATE\",\"key\":\"");
	n += (int)rl_b64_encode(mark, strlen(mark), body + n);
	n += sprintf(body + n, "\",\"create_revision\":\"0\"}],"
			       "\"success\":[{\"requestPut\":{\"key\":\"");
	n += (int)rl_b64_encode(g->key, klen, body + n);
	n += sprintf(body + n, "\",\"value\":\"");
	n += (int)rl_b64_encode(val, vlen, body + n);
	sprintf(body + n, "\",\"lease\":\"%llu\"}},{\"requestRange\":{%s}}],"
		"\"failure\":[{\"requestRange\":{%s}}]}",
		(unsigned long long)g->lease, range, range);
	free(val);
	free(mark);
	free(range);
	json_object *reply;
	int err = rl_gw_call(&c->s.gw, "/v3/kv/txn", body, &reply, unsure);
	free(body);
	if (rl_lease_unknown(err, reply))
		err = ENOLCK;
	json_object *rs = rl_json_at(reply, "responses", NULL);
	size_t nrs = rs ? json_object_array_length(rs) : 0;
	json_object *kvs = nrs ? rl_json_at(rl_json_at(json_object_array_get_idx(rs, nrs - 1),
					   "response_range", NULL), "kvs", NULL) : NULL;
	if (!err && !kvs)
		err = EIO;
	struct rl_req *reqs = NULL;
	for (size_t i = 0; !err && i < json_object_array_length(kvs); i++) {
		json_object *kv = json_object_array_get_idx(kvs, i);
		struct rl_req *q = rl_req_from_kv(c->s.prefix, kv);
		if (!q)
			continue;
		if (strcmp(q->key, g->key) == 0)
			*rev = q->rev;
		q->next = reqs;
		reqs = q;
	}
	*blocked = false;
	for (struct rl_req *q = reqs, *next; q; q = next) {
		next = q->next;
		*blocked |= q->rev < *rev && q->lease != g->lease &&
			    rl_conflicts(q, g->start, g->end, g->excl);
		rl_req_free(q);
	}
	if (!err && !*rev)
		err = EIO;
	json_object_put(reply);
	return err;
}

/* How long a call waits for a lease: a timed call to its deadline, the
 * others a request's timeout and a second. */
static void rl_deadline(enum rl_how how, const struct timespec *abstime,
			unsigned timeout_ms, struct timespec *until)
{
	if (how == RL_TIMED) {
		*until = *abstime;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, until);
	until->tv_sec += timeout_ms / 1000 + 1;
}

/* Under mu: wait for a valid lease to make requests with. */
static int rl_need_lease(rangelock_etcd_t *c, enum rl_how how,
			 const struct timespec *abstime)
{
	struct timespec until;
	rl_deadline(how, abstime, (unsigned)c->s.gw.timeout_ms, &until);
	for (;;) {
		if (c->s.lease && rl_session_valid(&c->s, c->s.generation) == 0)
			return 0;
		rl_session_lease_gone(&c->s, c->s.lease); /* expired here */
		if (c->s.stopping || how == RL_TRY ||
		    pthread_cond_timedwait(&c->s.cv, &c->s.mu, &until) == ETIMEDOUT)
			return how == RL_TIMED ? ETIMEDOUT : ENOTCONN;
	}
}

/* Under mu: wait until g is granted, lost, or the deadline passes. */
static int rl_wait_grant(rangelock_etcd_t *c, struct rl_grant *g, enum rl_how how,
			 const struct timespec *abstime)
{
	for (;;) {
		if (g->state == RL_LOST || rl_session_valid(&c->s, g->gen))
			return ENOLCK;
		if (c->s.mirror.rev >= g->rev) {
			struct rl_mobj *mo = rl_mirror_find(&c->s.mirror, g->o->objkey,
							    g->o->objlen);
			if (!mo || !rl_blocker(mo->reqs, g->rev, c->s.lease,
					       g->start, g->end, g->excl))
				return 0;
		}
		if (how == RL_TRY)
			return EBUSY;
		if (c->waiters++ == 0)
			pthread_cond_broadcast(&c->s.cv); /* the watch is wanted */
		int err = how == RL_TIMED
			? pthread_cond_timedwait(&c->s.cv, &c->s.mu, abstime)
			: pthread_cond_wait(&c->s.cv, &c->s.mu);
		c->waiters--;
		if (err == ETIMEDOUT)
			return ETIMEDOUT;
	}
}

/* Under mu: no new holder may take an older grant of ours that conflicts
 * with g: its token is lower than g's, and a fencing store that has seen
 * g's would refuse writes under it. */
static void rl_retire_older(rangelock_etcd_t *c, const struct rl_grant *g)
{
	for (struct rl_grant *h = g->o->grants, *next; h; h = next) {
		next = h->next;
		if (h != g && h->state == RL_GRANTED && !h->revoked && h->rev < g->rev &&
		    h->start < g->end && g->start < h->end && (h->excl || g->excl))
			rl_revoke(c, h);
	}
}

/* Under mu: a new request's grant, or an error with nothing left behind
 * (mu is dropped and taken again around the round trips). */
static int rl_acquire(rangelock_etcd_t *c, struct rangelock_etcd_object *o,
		      uint64_t start, uint64_t end, bool excl, enum rl_how how,
		      const struct timespec *abstime, struct rl_grant **out)
{
	int err = rl_need_lease(c, how, abstime);
	if (err)
		return err;
	struct rl_grant *g = calloc(1, sizeof(*g));
	if (!g || !(g->key = rl_key_request(o->objkey, c->s.lease, ++c->seq))) {
		free(g);
		return ENOMEM;
	}
	uint64_t lease = c->s.lease;
	*g = (struct rl_grant){ .o = o, .key = g->key, .start = start, .end = end,
				.gen = c->s.generation, .lease = lease, .excl = excl,
				.state = RL_PENDING, .next = o->grants };
	o->grants = g;
	pthread_mutex_unlock(&c->s.mu);
	bool blocked, unsure = false;
	uint64_t rev = 0;
	err = rl_request(c, g, &rev, &blocked, &unsure);
	pthread_mutex_lock(&c->s.mu);
	g->rev = rev;
	g->unsure = unsure;
	if (err == ENOLCK)
		rl_session_lease_gone(&c->s, lease);
	if (!err && g->state == RL_LOST)
		err = ENOLCK;
	if (!err && blocked)
		err = rl_wait_grant(c, g, how, abstime);
	if (err) {
		rl_grant_unlink(c, g);
		pthread_mutex_unlock(&c->s.mu);
		if (err != ENOLCK)
			rl_give_back(c, g); /* withdrawn: it blocks nobody */
		else
			rl_grant_free(g);   /* gone with its lease */
		pthread_mutex_lock(&c->s.mu);
		return err;
	}
	rl_debug("granted %llu [%llu, %llu) %s%s", (unsigned long long)g->rev,
		 (unsigned long long)g->start, (unsigned long long)g->end,
		 g->excl ? "x" : "s", blocked ? " after waiting" : "");
	g->state = RL_GRANTED;
	g->users = 1;
	if (rl_wanted(c, g))
		g->revoked = true; /* asked for while we waited: not cached */
	rl_retire_older(c, g);
	if (!(c->flags & RANGELOCK_ETCD_NOCACHE))
		pthread_cond_broadcast(&c->s.cv); /* a kept grant wants the watch */
	*out = g;
	return 0;
}

static int rl_lock(rangelock_etcd_object_t *o, rangelock_etcd_range_t *r,
		   uint64_t start, uint64_t end, bool excl, enum rl_how how,
		   const struct timespec *abstime)
{
	if (start >= end || (how == RL_TIMED && (!abstime || abstime->tv_nsec < 0 ||
						 abstime->tv_nsec >= 1000000000L)))
		return EINVAL;
	int err;
	if (how == RL_TRY)
		err = excl ? rangelock_trywrlock(&o->local, &r->local, start, end)
			   : rangelock_tryrdlock(&o->local, &r->local, start, end);
	else if (how == RL_TIMED)
		err = excl ? rangelock_timedwrlock(&o->local, &r->local, start, end, abstime)
			   : rangelock_timedrdlock(&o->local, &r->local, start, end, abstime);
	else
		err = excl ? rangelock_wrlock(&o->local, &r->local, start, end)
			   : rangelock_rdlock(&o->local, &r->local, start, end);
	if (err)
		return err;
	rangelock_etcd_t *c = o->c;
	pthread_mutex_lock(&c->s.mu);
	o->active++;
	struct rl_grant *g = rl_cached(c, o, start, end, excl);
	if (g) {
		if (g->users++ == 0)
			rl_lru_del(c, g);
	} else {
		/* a lease lost before the grant: once more, with the next lease */
		for (int tries = 0; tries < 3; tries++)
			if ((err = rl_acquire(c, o, start, end, excl, how, abstime,
					      &g)) != ENOLCK)
				break;
	}
	if (err) {
		o->active--;
		pthread_mutex_unlock(&c->s.mu);
		rangelock_unlock(&o->local, &r->local);
		return err;
	}
	r->grant = g;
	r->token = g->rev;
	r->generation = g->gen;
	r->state = excl ? RL_HELD_X(r) : RL_HELD_S(r);
	pthread_mutex_unlock(&c->s.mu);
	return 0;
}

int rangelock_etcd_rdlock(rangelock_etcd_object_t *o, rangelock_etcd_range_t *r,
			  uint64_t start, uint64_t end)
{
	return rl_lock(o, r, start, end, false, RL_BLOCK, NULL);
}

int rangelock_etcd_wrlock(rangelock_etcd_object_t *o, rangelock_etcd_range_t *r,
			  uint64_t start, uint64_t end)
{
	return rl_lock(o, r, start, end, true, RL_BLOCK, NULL);
}

int rangelock_etcd_tryrdlock(rangelock_etcd_object_t *o, rangelock_etcd_range_t *r,
			     uint64_t start, uint64_t end)
{
	return rl_lock(o, r, start, end, false, RL_TRY, NULL);
}

int rangelock_etcd_trywrlock(rangelock_etcd_object_t *o, rangelock_etcd_range_t *r,
			     uint64_t start, uint64_t end)
{
	return rl_lock(o, r, start, end, true, RL_TRY, NULL);
}

int rangelock_etcd_timedrdlock(rangelock_etcd_object_t *o, rangelock_etcd_range_t *r,
			       uint64_t start, uint64_t end,
			       const struct timespec *abstime)
{
	return rl_lock(o, r, start, end, false, RL_TIMED, abstime);
}

int rangelock_etcd_timedwrlock(rangelock_etcd_object_t *o, rangelock_etcd_range_t *r,
			       uint64_t start, uint64_t end,
			       const struct timespec *abstime)
{
	return rl_lock(o, r, start, end, true, RL_TIMED, abstime);
}

/* Under mu: is r a range held on o? */
static bool rl_held(const rangelock_etcd_object_t *o, const rangelock_etcd_range_t *r)
{
	const struct rl_grant *g = r->grant;
	return (r->state == RL_HELD_X(r) || r->state == RL_HELD_S(r)) && g && g->o == o;
}

int rangelock_etcd_unlock(rangelock_etcd_object_t *o, rangelock_etcd_range_t *r)
{
	rangelock_etcd_t *c = o->c;
	pthread_mutex_lock(&c->s.mu);
	if (!rl_held(o, r)) {
		pthread_mutex_unlock(&c->s.mu);
		return EINVAL;
	}
	struct rl_grant *g = r->grant, *drop = NULL;
	int lost = g->state == RL_LOST || rl_session_valid(&c->s, g->gen) ? ENOLCK : 0;
	r->state = 0;
	r->grant = NULL;
	o->active--;
	if (--g->users == 0) {
		if (lost || g->revoked || (c->flags & RANGELOCK_ETCD_NOCACHE)) {
			if (g->state == RL_GRANTED)
				g->state = RL_LOST; /* unlinked without the cache */
			rl_grant_unlink(c, g);
			drop = g;
		} else {
			rl_lru_add(c, g);
			if (c->cached > c->cache_max)
				rl_doom(c, c->lru_old);
		}
	}
	pthread_mutex_unlock(&c->s.mu);
	if (drop && !lost)
		rl_give_back(c, drop); /* the waiters go on */
	else if (drop)
		rl_grant_free(drop);
	rl_flush(c);
	rangelock_unlock(&o->local, &r->local);
	return lost;
}

int rangelock_etcd_downgrade(rangelock_etcd_object_t *o, rangelock_etcd_range_t *r)
{
	rangelock_etcd_t *c = o->c;
	pthread_mutex_lock(&c->s.mu);
	if (!rl_held(o, r) || r->state != RL_HELD_X(r)) {
		pthread_mutex_unlock(&c->s.mu);
		return EINVAL;
	}
	struct rl_grant *g = r->grant;
	if (g->state == RL_LOST || rl_session_valid(&c->s, g->gen)) {
		pthread_mutex_unlock(&c->s.mu);
		return ENOLCK;
	}
	int err = 0;
	if (g->users == 1 && g->excl) {
		/* from here no new holder may take g as exclusive */
		g->excl = false;
		uint64_t lease = g->lease;
		char *val = rl_key_value(false, g->start, g->end, c->s.name);
		pthread_mutex_unlock(&c->s.mu);
		char *body = val ? malloc(3 * (strlen(g->key) + strlen(val)) + 512) : NULL;
		if (body) {
			int n = sprintf(body, "{\"compare\":[{\"target\":\"CREATE\","
					      "\"key\":\"");
			n += (int)rl_b64_encode(g->key, strlen(g->key), body + n);
			n += sprintf(body + n, "\",\"create_revision\":\"%llu\"}],"
				     "\"success\":[{\"requestPut\":{\"key\":\"",
				     (unsigned long long)g->rev);
			n += (int)rl_b64_encode(g->key, strlen(g->key), body + n);
			n += sprintf(body + n, "\",\"value\":\"");
			n += (int)rl_b64_encode(val, strlen(val), body + n);
			sprintf(body + n, "\",\"lease\":\"%llu\"}}]}",
				(unsigned long long)lease);
			json_object *reply;
			err = rl_gw_call(&c->s.gw, "/v3/kv/txn", body, &reply, NULL);
			if (!err && !json_object_get_boolean(rl_json_at(reply, "succeeded", NULL)))
				err = ENOLCK; /* the key is gone: so is the grant */
			json_object_put(reply);
		} else {
			err = ENOMEM;
		}
		free(body);
		free(val);
		pthread_mutex_lock(&c->s.mu);
	}
	if (!err)
		r->state = RL_HELD_S(r);
	pthread_mutex_unlock(&c->s.mu);
	if (!err)
		rangelock_downgrade(&o->local, &r->local);
	return err;
}

uint64_t rangelock_etcd_token(const rangelock_etcd_range_t *r)
{
	return r->state == RL_HELD_X(r) || r->state == RL_HELD_S(r) ? r->token : 0;
}

int rangelock_etcd_check(const rangelock_etcd_range_t *r)
{
	const struct rl_grant *g = r->grant;
	if ((r->state != RL_HELD_X(r) && r->state != RL_HELD_S(r)) || !g)
		return EINVAL;
	rangelock_etcd_t *c = g->o->c;
	pthread_mutex_lock(&c->s.mu);
	int err = g->state == RL_LOST ? ENOLCK : rl_session_valid(&c->s, g->gen);
	pthread_mutex_unlock(&c->s.mu);
	return err;
}
