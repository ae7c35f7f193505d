/* SPDX-License-Identifier: MIT */
/*
 * session.c - one client's session with etcd: its lease, kept alive by a
 * thread, and its mirror of the requests under the prefix, kept by a
 * second thread that watches them.
 *
 * The lease.  Renewed every third of its TTL.  A renewal sent at time t
 * and answered with TTL T keeps the lease alive on the server until at
 * least t + T, so the client treats its grants as valid until then, less
 * a margin for clock rates.  A lease the server no longer knows, or one
 * the client could not renew by then, is lost: the layer above is told
 * (its grants are void), and a new lease is granted for later requests.
 *
 * The watch.  One stream from etcd's watch over the requests (PREFIX
 * o/), from the revision after the mirror's; every event is applied under
 * mu and the waiters are woken by one broadcast.  It runs only while it is
 * wanted (ops.wanted: a call waits, or grants are kept to be revoked), so
 * that a client that neither waits nor caches costs etcd no event; it
 * starts with one read of the requests.  A request's revision is above
 * anything read before it, so a mirror left from an earlier watch never
 * grants.  When the stream breaks, it resumes from the revision after the
 * last event applied, on whichever member now answers; when etcd has
 * compacted that revision away, the requests are read again (one
 * consistent read) and the watch starts after it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rl_etcd.h"

#define RL_MARGIN_NS 200000000LL /* clock rates, scheduling: 200 ms */

int64_t rl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int rl_session_valid(const struct rl_session *s, uint64_t gen)
{
	return gen == s->generation && s->lease && rl_now_ns() < s->valid_until
		? 0 : ENOLCK;
}

/* "key":B64(key),"range_end":B64(key+1): every key that starts with key;
 * malloc, NULL if out of memory */
char *rl_session_range_json(const char *key)
{
	size_t n = strlen(key);
	char *end = strdup(key);
	char *k64 = rl_b64_dup(key, n), *e64 = NULL, *out = NULL;
	if (end && n) {
		end[n - 1]++; /* keys end in '/' or a printable byte: no carry */
		e64 = rl_b64_dup(end, n);
	}
	if (k64 && e64 && (out = malloc(strlen(k64) + strlen(e64) + 32)))
		sprintf(out, "\"key\":\"%s\",\"range_end\":\"%s\"", k64, e64);
	free(end);
	free(k64);
	free(e64);
	return out;
}

static void rl_wait_ms(struct rl_session *s, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (!s->stopping)
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* ---- the lease ---------------------------------------------------------- */

static int rl_lease_grant(struct rl_session *s)
{
	char body[64];
	json_object *reply;
	snprintf(body, sizeof(body), "{\"TTL\":%u}", s->ttl_s);
	int64_t sent = rl_now_ns();
	int err = rl_gw_call(&s->gw, "/v3/lease/grant", body, &reply, NULL);
	uint64_t id = rl_json_u64(reply, "ID"), ttl = rl_json_u64(reply, "TTL");
	json_object_put(reply);
	if (err)
		return err;
	if (!id || !ttl)
		return EIO;
	rl_debug("lease %llx granted, TTL %llu s", (unsigned long long)id,
		 (unsigned long long)ttl);
	pthread_mutex_lock(&s->mu);
	s->lease = id;
	s->generation++;
	s->valid_until = sent + (int64_t)ttl * 1000000000LL - RL_MARGIN_NS;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* Under mu: the lease is gone; void everything granted under it. */
static void rl_lease_lost(struct rl_session *s)
{
	if (!s->lease)
		return;
	rl_debug("lease %llx lost", (unsigned long long)s->lease);
	s->lease = 0;
	s->valid_until = 0;
	s->ops.lease_lost(s->ops.arg);
	pthread_cond_broadcast(&s->cv);
}

void rl_session_lease_gone(struct rl_session *s, uint64_t lease)
{
	if (lease && s->lease == lease)
		rl_lease_lost(s); /* its broadcast wakes the keeper: a new one */
}

/* One renewal: 0, or the error that kept it from being made. */
static int rl_lease_renew(struct rl_session *s, uint64_t lease)
{
	char body[64];
	json_object *reply;
	snprintf(body, sizeof(body), "{\"ID\":\"%llu\"}", (unsigned long long)lease);
	int64_t sent = rl_now_ns();
	int err = rl_gw_call(&s->gw, "/v3/lease/keepalive", body, &reply, NULL);
	uint64_t ttl = rl_json_u64(rl_json_at(reply, "result", NULL), "TTL");
	json_object_put(reply);
	pthread_mutex_lock(&s->mu);
	if (!err && s->lease == lease) {
		if (ttl)
			s->valid_until = sent + (int64_t)ttl * 1000000000LL - RL_MARGIN_NS;
		else
			rl_lease_lost(s); /* expired on the server */
	}
	pthread_mutex_unlock(&s->mu);
	return err;
}

static void *rl_keeper(void *arg)
{
	struct rl_session *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		uint64_t lease = s->lease;
		pthread_mutex_unlock(&s->mu);
		int err = lease ? rl_lease_renew(s, lease) : rl_lease_grant(s);
		if (!err) /* a member answers: deletes that found none before */
			s->ops.flush(s->ops.arg);
		pthread_mutex_lock(&s->mu);
		if (err && s->lease == lease && rl_now_ns() >= s->valid_until)
			rl_lease_lost(s); /* could not renew in time */
		rl_wait_ms(s, err ? 250 : (long)s->ttl_s * 1000 / 3);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- the mirror and its watch ------------------------------------------ */

/* Under mu: one event of the watch. */
static void rl_apply(struct rl_session *s, json_object *ev)
{
	json_object *kv = rl_json_at(ev, "kv", NULL), *type = rl_json_at(ev, "type", NULL);
	if (!kv)
		return;
	if (type && strcmp(json_object_get_string(type), "DELETE") == 0) {
		const char *k64 = json_object_get_string(rl_json_at(kv, "key", NULL));
		size_t kl = strlen(k64);
		unsigned char *key = malloc(kl + 1);
		long kn = key ? rl_b64_decode(k64, kl, key) : -1;
		if (kn > 0)
			rl_mirror_del(&s->mirror, (char *)key, (size_t)kn);
		free(key);
		return;
	}
	struct rl_req *q = rl_req_from_kv(s->prefix, kv);
	if (!q)
		return;
	bool created = rl_json_u64(kv, "version") == 1;
	size_t olen = q->hexoff + q->hexlen + 1;
	if (rl_mirror_put(&s->mirror, q) == 0) {
		struct rl_mobj *mo = rl_mirror_find(&s->mirror, q->key, olen);
		s->ops.changed(s->ops.arg, mo, created ? q : NULL, false);
	}
}

/* Read every request under the prefix into a new mirror. */
static int rl_resync(struct rl_session *s)
{
	json_object *reply;
	char *range = rl_session_range_json(s->requests), *body = NULL;
	if (range && (body = malloc(strlen(range) + 3)))
		sprintf(body, "{%s}", range);
	free(range);
	if (!body)
		return ENOMEM;
	int err = rl_gw_call(&s->gw, "/v3/kv/range", body, &reply, NULL);
	free(body);
	if (err) {
		json_object_put(reply);
		return err;
	}
	json_object *kvs = rl_json_at(reply, "kvs", NULL);
	pthread_mutex_lock(&s->mu);
	rl_mirror_clear(&s->mirror);
	for (size_t i = 0; kvs && i < json_object_array_length(kvs); i++) {
		struct rl_req *q = rl_req_from_kv(s->prefix, json_object_array_get_idx(kvs, i));
		if (q)
			rl_mirror_put(&s->mirror, q);
	}
	s->mirror.rev = rl_json_u64(rl_json_at(reply, "header", NULL), "revision");
	rl_debug("prefix read at revision %llu: %zu requests",
		 (unsigned long long)s->mirror.rev, kvs ? json_object_array_length(kvs) : 0);
	s->resync = false;
	s->ops.changed(s->ops.arg, NULL, NULL, true);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	json_object_put(reply);
	s->ops.flush(s->ops.arg);
	return 0;
}

struct rl_watch {
	struct rl_session *s;
	unsigned switches; /* the gateway's count when the stream began */
};

static int rl_watch_msg(void *arg, json_object *msg)
{
	struct rl_session *s = ((struct rl_watch *)arg)->s;
	json_object *res = rl_json_at(msg, "result", NULL);
	if (!res) {
		rl_debug("watch: %s", json_object_to_json_string(msg));
		return 1; /* an error: start over */
	}
	pthread_mutex_lock(&s->mu);
	if (rl_json_u64(res, "compact_revision") ||
	    json_object_get_boolean(rl_json_at(res, "canceled", NULL))) {
		rl_debug("watch canceled: %s", json_object_to_json_string(res));
		s->resync = true;
	}
	json_object *evs = rl_json_at(res, "events", NULL);
	size_t n = evs ? json_object_array_length(evs) : 0;
	for (size_t i = 0; i < n && !s->resync; i++) {
		json_object *ev = json_object_array_get_idx(evs, i);
		rl_apply(s, ev);
		uint64_t rev = rl_json_u64(rl_json_at(ev, "kv", NULL), "mod_revision");
		if (rev > s->mirror.rev)
			s->mirror.rev = rev;
	}
	rl_debug("watch: %zu events, at revision %llu", n, (unsigned long long)s->mirror.rev);
	if (n)
		pthread_cond_broadcast(&s->cv);
	int stop = s->resync || s->stopping;
	pthread_mutex_unlock(&s->mu);
	s->ops.flush(s->ops.arg); /* give up what those events revoked */
	return stop;
}

static int rl_watch_stop(void *arg)
{
	struct rl_watch *w = arg;
	pthread_mutex_lock(&w->s->mu);
	int stop = w->s->stopping || !w->s->ops.wanted(w->s->ops.arg);
	pthread_mutex_unlock(&w->s->mu);
	/* relaxed: a failover seen late only delays the move by one poll */
	return stop || atomic_load_explicit(&w->s->gw.switches,
					    memory_order_relaxed) != w->switches;
}

static void *rl_watcher(void *arg)
{
	struct rl_session *s = arg;
	char *range = NULL, *body = NULL;
	pthread_mutex_lock(&s->mu);
	while (!s->stopping && !body) { /* no memory: retry, as for a member gone */
		if (!range)
			range = rl_session_range_json(s->requests);
		if (!range || !(body = malloc(strlen(range) + 128)))
			rl_wait_ms(s, 200);
	}
	while (!s->stopping) {
		if (!s->ops.wanted(s->ops.arg)) {
			/* nobody waits, nothing cached: no watch, no mirror;
			 * the next one starts from a read of the prefix */
			rl_mirror_clear(&s->mirror);
			s->resync = true;
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		if (s->resync) {
			pthread_mutex_unlock(&s->mu);
			int err = rl_resync(s);
			pthread_mutex_lock(&s->mu);
			if (err)
				rl_wait_ms(s, 200);
			continue;
		}
		sprintf(body, "{\"create_request\":{%s,\"start_revision\":\"%llu\"}}",
			range, (unsigned long long)s->mirror.rev + 1);
		rl_debug("watch from revision %llu", (unsigned long long)s->mirror.rev + 1);
		pthread_mutex_unlock(&s->mu);
		struct rl_watch w = { s, atomic_load_explicit(&s->gw.switches,
							      memory_order_relaxed) };
		int err = rl_gw_stream(&s->gw, "/v3/watch", body, rl_watch_msg,
				       rl_watch_stop, &w);
		pthread_mutex_lock(&s->mu);
		if (err)
			rl_wait_ms(s, 100); /* the member went away: the next one */
	}
	pthread_mutex_unlock(&s->mu);
	free(range);
	free(body);
	return NULL;
}

/* ---- start and stop ----------------------------------------------------- */

static char *rl_default_name(void)
{
	char host[256] = "?", *name = malloc(300);
	gethostname(host, sizeof(host) - 1);
	if (name)
		snprintf(name, 300, "%s:%d", host, (int)getpid());
	return name;
}

static int rl_session_options(struct rl_session *s, const struct rangelock_etcd_options *o)
{
	const char *ep = o && o->endpoints ? o->endpoints : getenv("RANGELOCK_ETCD_ENDPOINTS");
	if (!ep || !*ep)
		ep = RANGELOCK_ETCD_ENDPOINTS;
	unsigned ttl_ms = o && o->ttl_ms ? o->ttl_ms : RANGELOCK_ETCD_TTL_MS;
	unsigned timeout = o && o->timeout_ms ? o->timeout_ms : RANGELOCK_ETCD_TIMEOUT_MS;
	const char *prefix = o && o->prefix ? o->prefix : RANGELOCK_ETCD_PREFIX;
	if (ttl_ms > 60000 || timeout > 60000 || !*prefix || strlen(prefix) > 512)
		return EINVAL;
	s->ttl_s = (ttl_ms + 999) / 1000;
	if (s->ttl_s < 1)
		s->ttl_s = 1;
	s->prefix = strdup(prefix);
	s->requests = s->prefix ? malloc(strlen(prefix) + 3) : NULL;
	if (s->requests)
		sprintf(s->requests, "%so/", prefix); /* keys.c: the requests */
	s->name = o && o->name ? strdup(o->name) : rl_default_name();
	if (!s->prefix || !s->requests || !s->name)
		return ENOMEM;
	for (const char *p = s->name; *p; p++)
		if (*p == '\n')
			return EINVAL;
	return rl_gw_init(&s->gw, ep, timeout);
}

/* Revoke the lease (every key of ours goes with it; best effort: failing,
 * it expires) and free what the session holds; its threads have ended. */
static void rl_session_free(struct rl_session *s, uint64_t lease)
{
	if (lease) {
		char body[64];
		json_object *reply;
		snprintf(body, sizeof(body), "{\"ID\":\"%llu\"}", (unsigned long long)lease);
		rl_gw_call(&s->gw, "/v3/lease/revoke", body, &reply, NULL);
		json_object_put(reply);
	}
	rl_mirror_clear(&s->mirror);
	free(s->mirror.buckets);
	rl_gw_fini(&s->gw);
	free(s->prefix);
	free(s->requests);
	free(s->name);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
}

int rl_session_start(struct rl_session *s, const struct rangelock_etcd_options *o,
		     const struct rl_session_ops *ops)
{
	memset(s, 0, sizeof(*s));
	s->ops = *ops;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	int err = rl_session_options(s, o);
	if (!err)
		err = rl_mirror_init(&s->mirror);
	if (!err)
		err = rl_lease_grant(s);
	s->resync = true; /* the watch starts with a read, when it is wanted */
	if (!err && (err = pthread_create(&s->keeper, NULL, rl_keeper, s)) == 0 &&
	    (err = pthread_create(&s->watcher, NULL, rl_watcher, s)) != 0) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->keeper, NULL);
	}
	if (err)
		rl_session_free(s, s->lease);
	return err;
}

void rl_session_stop(struct rl_session *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	rl_gw_wake(&s->gw);
	pthread_join(s->keeper, NULL);
	pthread_join(s->watcher, NULL);
	rl_session_free(s, s->lease); /* the threads are gone: no lock needed */
}
