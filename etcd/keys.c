/* SPDX-License-Identifier: MIT */
/*
 * keys.c - where a request lives in etcd, and what its key holds.
 *
 *   PREFIX o/ HEX(name) / LEASE-SEQ  ->  "x START END MADE CLIENT"
 *
 * The name is hex-encoded, so any bytes name an object, and the '/' after
 * it keeps "a" and "ab" apart.  The lease in the key says whose request it
 * is without a lookup; SEQ makes each request of a client a new key, so
 * its create revision is the request's place in the FIFO.
 *
 *   PREFIX w/ HEX(name) / LEASE-SEQ  ->  ""   (with the same lease)
 *
 * A request withdrawn after a round trip whose fate is unknown (sent, no
 * answer) leaves this mark: etcd may still apply the lost attempt later,
 * from a proposal a failed leader had taken, and the request's put
 * compares that its mark is absent, so a late attempt cannot bring back
 * a key nobody will delete (a lease kept alive would keep it for ever).
 * Marks are rare (failovers only) and go with their client's lease.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rl_etcd.h"

char *rl_key_object(const char *prefix, const void *name, size_t len)
{
	size_t plen = strlen(prefix);
	char *k = malloc(plen + 2 + 2 * len + 2);
	if (!k)
		return NULL;
	char *p = k + sprintf(k, "%so/", prefix);
	for (size_t i = 0; i < len; i++)
		p += sprintf(p, "%02x", ((const unsigned char *)name)[i]);
	strcpy(p, "/");
	return k;
}

char *rl_key_request(const char *objkey, uint64_t lease, uint64_t seq)
{
	char *k = malloc(strlen(objkey) + 40);
	if (k)
		sprintf(k, "%s%016llx-%llx", objkey, (unsigned long long)lease,
			(unsigned long long)seq);
	return k;
}

char *rl_key_withdrawn(const char *prefix, const char *reqkey)
{
	size_t plen = strlen(prefix);
	char *k = malloc(strlen(reqkey) + 1);
	if (k) {
		strcpy(k, reqkey);
		k[plen] = 'w'; /* PREFIX o/... -> PREFIX w/... */
	}
	return k;
}

char *rl_key_value(bool excl, uint64_t start, uint64_t end, const char *client)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char *v = malloc(96 + strlen(client));
	if (v)
		sprintf(v, "%c %llu %llu %lld.%09ld %s", excl ? 'x' : 's',
			(unsigned long long)start, (unsigned long long)end,
			(long long)ts.tv_sec, ts.tv_nsec, client);
	return v;
}

void rl_req_free(struct rl_req *q)
{
	if (q) {
		free(q->key);
		free(q->client);
		free(q);
	}
}

/* The value's fields; 0 when they do not parse. */
static int rl_value_parse(struct rl_req *q, const char *val, size_t vlen)
{
	char buf[512];
	char mode;
	unsigned long long s, e;
	int used = 0;
	if (vlen >= sizeof(buf))
		vlen = sizeof(buf) - 1;
	memcpy(buf, val, vlen);
	buf[vlen] = 0;
	if (sscanf(buf, "%c %llu %llu %lf %n", &mode, &s, &e, &q->made, &used) < 4 ||
	    (mode != 'x' && mode != 's') || s >= e)
		return 0;
	q->excl = mode == 'x';
	q->start = s;
	q->end = e;
	free(q->client);
	q->client = strdup(buf + used);
	return q->client != NULL;
}

struct rl_req *rl_req_parse(const char *prefix, const char *key, size_t klen,
			    const char *val, size_t vlen, uint64_t rev)
{
	size_t plen = strlen(prefix);
	if (klen < plen + 2 || memcmp(key, prefix, plen) || memcmp(key + plen, "o/", 2))
		return NULL;
	const char *hex = key + plen + 2;
	const char *slash = memchr(hex, '/', klen - plen - 2);
	if (!slash || (slash - hex) % 2)
		return NULL;
	const char *tail = slash + 1;
	size_t tlen = klen - (size_t)(tail - key);
	if (tlen < 18 || tail[16] != '-')
		return NULL;
	struct rl_req *q = calloc(1, sizeof(*q));
	if (!q || !(q->key = strndup(key, klen))) {
		rl_req_free(q);
		return NULL;
	}
	char lease[17];
	memcpy(lease, tail, 16);
	lease[16] = 0;
	q->lease = strtoull(lease, NULL, 16);
	q->hexoff = plen + 2;
	q->hexlen = (size_t)(slash - hex);
	q->rev = rev;
	if (!rl_value_parse(q, val, vlen)) {
		rl_req_free(q);
		return NULL;
	}
	return q;
}

struct rl_req *rl_req_from_kv(const char *prefix, json_object *kv)
{
	json_object *k = rl_json_at(kv, "key", NULL), *v = rl_json_at(kv, "value", NULL);
	if (!k || !v)
		return NULL;
	const char *k64 = json_object_get_string(k), *v64 = json_object_get_string(v);
	size_t kl = strlen(k64), vl = strlen(v64);
	unsigned char *key = malloc(kl + 1), *val = malloc(vl + 1);
	long kn = key ? rl_b64_decode(k64, kl, key) : -1;
	long vn = val ? rl_b64_decode(v64, vl, val) : -1;
	struct rl_req *q = NULL;
	if (kn > 0 && vn > 0)
		q = rl_req_parse(prefix, (char *)key, (size_t)kn, (char *)val,
				 (size_t)vn, rl_json_u64(kv, "create_revision"));
	free(key);
	free(val);
	return q;
}
