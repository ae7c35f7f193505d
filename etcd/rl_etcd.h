/* SPDX-License-Identifier: MIT */
/*
 * rl_etcd.h - librangelock-etcd's internal layers, bottom to top; each file
 * calls only the ones above it in this list:
 *
 *   gateway.c  HTTP/1.1 + JSON to etcd's v3 gateway (libcurl, json-c): one
 *              call, one stream, failover over the endpoints.
 *   keys.c     the key layout and the value of a request's key.
 *   mirror.c   a copy of every request key under the prefix, kept by the
 *              watch; the grant rule.  No I/O, no locking of its own.
 *   session.c  the client: lease and its renewal, the watch and the mirror,
 *              one mutex and one condition for everything above.
 *   lock.c     objects, grants, the cache and revocation; the public calls.
 */
#ifndef RL_ETCD_H
#define RL_ETCD_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rangelock_etcd.h"

/* ---- gateway.c ---------------------------------------------------------- */
struct rl_gateway {
	char **urls;
	unsigned nurls;
	_Atomic unsigned current;   /* the endpoint that answered last */
	_Atomic unsigned switches;  /* counts failovers; the watch follows */
	long timeout_ms;
	pthread_mutex_t pool_mu;
	void *pool[16];             /* idle CURL handles, connections kept */
	unsigned npool;
	void *stream;               /* the running stream's CURLM, under pool_mu */
};

int rl_gw_init(struct rl_gateway *gw, const char *endpoints, unsigned timeout_ms);
void rl_gw_fini(struct rl_gateway *gw);
/* POST body to path; *out the parsed reply.  0, ENOTCONN, EIO, ENOMEM; an
 * error reply of etcd is EIO with its message in *out ("error").  *unsure
 * (if not NULL) is set when an attempt reached a member and got no answer
 * or a 5xx: etcd may have applied it, or may apply it later. */
int rl_gw_call(struct rl_gateway *gw, const char *path, const char *body,
	       json_object **out, bool *unsure);
/* POST body to path and hand each line of the reply to fn until fn or
 * stop returns nonzero, or the stream ends.  0 when fn or stop ended it,
 * ENOTCONN or EIO when the connection did. */
int rl_gw_stream(struct rl_gateway *gw, const char *path, const char *body,
		 int (*fn)(void *arg, json_object *msg),
		 int (*stop)(void *arg), void *arg);
/* make a running stream look at its stop() now */
void rl_gw_wake(struct rl_gateway *gw);

size_t rl_b64_encode(const void *in, size_t n, char *out); /* out: 4n/3+4 */
char *rl_b64_dup(const void *in, size_t n); /* malloc, NULL if no memory */
/* -1 on bad input; out needs n*3/4 bytes */
long rl_b64_decode(const char *in, size_t n, unsigned char *out);
uint64_t rl_json_u64(json_object *o, const char *field); /* 0 if absent */
json_object *rl_json_at(json_object *o, const char *a, const char *b);
/* a line on stderr when RANGELOCK_ETCD_DEBUG is set: failovers, streams,
 * re-reads, leases; for users and tests chasing a stall */
void rl_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- keys.c ------------------------------------------------------------- */
/*
 * Key of a request: PREFIX "o/" HEX(object name) "/" LEASE(16 hex) "-" SEQ(hex)
 * Value:            MODE(x|s) " " START " " END " " MADE(unix s.ns) " " CLIENT
 * The hex name ends with '/', so no object's keys are a prefix of another's.
 */
struct rl_req {
	char *key;              /* full key */
	size_t hexoff, hexlen;  /* the object's hex name within key */
	uint64_t rev;           /* create revision: FIFO order, fencing token */
	uint64_t lease;
	uint64_t start, end;
	bool excl;
	double made;            /* unix time of the request */
	char *client;
	struct rl_req *next;    /* the object's requests, by rev */
};

char *rl_key_object(const char *prefix, const void *name, size_t len); /* malloc */
char *rl_key_request(const char *objkey, uint64_t lease, uint64_t seq);
/* the mark of a withdrawn request (PREFIX w/...), malloc */
char *rl_key_withdrawn(const char *prefix, const char *reqkey);
char *rl_key_value(bool excl, uint64_t start, uint64_t end, const char *client);
/* parse key+value into a new rl_req (prefix-relative); NULL if foreign */
struct rl_req *rl_req_parse(const char *prefix, const char *key, size_t klen,
			    const char *val, size_t vlen, uint64_t rev);
void rl_req_free(struct rl_req *q);
/* the request in a key-value of etcd's JSON (key and value in base64) */
struct rl_req *rl_req_from_kv(const char *prefix, json_object *kv);
static inline bool rl_conflicts(const struct rl_req *q, uint64_t start,
				uint64_t end, bool excl)
{
	return q->start < end && start < q->end && (q->excl || excl);
}

/* ---- mirror.c ----------------------------------------------------------- */
struct rl_mobj {
	char *objkey;           /* PREFIX "o/" HEX "/" */
	struct rl_req *reqs;    /* by rev */
	struct rl_mobj *next;
};
struct rl_mirror {
	struct rl_mobj **buckets;
	size_t nbuckets;
	uint64_t rev;           /* every event up to rev is applied */
};

int rl_mirror_init(struct rl_mirror *m);
void rl_mirror_clear(struct rl_mirror *m);
struct rl_mobj *rl_mirror_find(struct rl_mirror *m, const char *objkey, size_t len);
/* insert, or replace the value of, the request q (taken over) */
int rl_mirror_put(struct rl_mirror *m, struct rl_req *q);
void rl_mirror_del(struct rl_mirror *m, const char *key, size_t klen);
/* the grant rule: the earliest request made before rev, by another lease,
 * that conflicts with [start, end) in excl; NULL if there is none */
const struct rl_req *rl_blocker(const struct rl_req *list, uint64_t rev,
				uint64_t lease, uint64_t start, uint64_t end,
				bool excl);

/* ---- session.c ---------------------------------------------------------- */
struct rl_session_ops {
	/* under mu, after the mirror changed (new is the request a put
	 * created, or NULL); after a resync (all == true) */
	void (*changed)(void *arg, struct rl_mobj *mo, const struct rl_req *new,
			bool all);
	void (*lease_lost)(void *arg); /* under mu */
	bool (*wanted)(void *arg);     /* under mu: must the watch run? */
	void (*flush)(void *arg);      /* without mu: after each batch of
	                                * events, and each renewal that a
	                                * member answered */
	void *arg;
};

struct rl_session {
	struct rl_gateway gw;
	char *prefix;
	char *requests;             /* PREFIX "o/": what the watch and reads see */
	char *name;
	unsigned ttl_s;
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* broadcast on every change under mu */
	struct rl_mirror mirror;    /* under mu */
	uint64_t lease;             /* under mu; 0 while there is none */
	uint64_t generation;        /* under mu; +1 for each new lease */
	int64_t valid_until;        /* under mu: CLOCK_MONOTONIC ns the lease
	                             * of this generation is surely alive */
	bool stopping;              /* under mu */
	bool resync;                /* under mu: the watch must re-read */
	struct rl_session_ops ops;
	pthread_t keeper, watcher;
};

int rl_session_start(struct rl_session *s, const struct rangelock_etcd_options *o,
		     const struct rl_session_ops *ops);
void rl_session_stop(struct rl_session *s);
int64_t rl_now_ns(void);
/* under mu: the server does not know lease (or it may have expired): void
 * what was granted under it and have the keeper take a new one now */
void rl_session_lease_gone(struct rl_session *s, uint64_t lease);
/* under mu: 0 if lease generation gen is still valid, else ENOLCK */
int rl_session_valid(const struct rl_session *s, uint64_t gen);
/* "key":..,"range_end":..: every key that starts with key, for a JSON
 * body of the gateway; malloc, NULL when out of memory */
char *rl_session_range_json(const char *key);

/* ---- lock.c, for list.c ------------------------------------------------- */
struct rl_session *rl_client_session(rangelock_etcd_t *c);

#endif
