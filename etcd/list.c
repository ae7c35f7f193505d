/* SPDX-License-Identifier: MIT */
/*
 * list.c - every request under the prefix, held or waiting, from one
 * consistent read: what rlctl list prints.  Held is the grant rule of
 * mirror.c applied to that read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rl_etcd.h"

static int rl_list_object(const struct rl_mobj *mo, size_t hexoff,
			  int (*fn)(const struct rangelock_etcd_entry *, void *),
			  void *arg)
{
	const char *hex = mo->objkey + hexoff;
	size_t n = (strlen(hex) - 1) / 2;
	char *name = malloc(n + 1);
	if (!name)
		return ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		name[i] = (char)v;
	}
	name[n] = 0;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int rc = 0;
	for (const struct rl_req *q = mo->reqs; q && !rc; q = q->next) {
		struct rangelock_etcd_entry e = {
			.object = name, .object_len = n, .start = q->start,
			.end = q->end, .exclusive = q->excl,
			.held = !rl_blocker(mo->reqs, q->rev, q->lease, q->start,
					    q->end, q->excl),
			.age = (double)now.tv_sec + now.tv_nsec / 1e9 - q->made,
			.token = q->rev, .client = q->client,
		};
		rc = fn(&e, arg);
	}
	free(name);
	return rc;
}

int rangelock_etcd_list(rangelock_etcd_t *c, const void *name, size_t name_len,
			int (*fn)(const struct rangelock_etcd_entry *e, void *arg),
			void *arg)
{
	struct rl_session *s = rl_client_session(c);
	char *key = name ? rl_key_object(s->prefix, name, name_len) : NULL;
	char *range = !name || key ? rl_session_range_json(key ? key : s->requests) : NULL;
	char *body = range ? malloc(strlen(range) + 3) : NULL;
	if (body)
		sprintf(body, "{%s}", range);
	free(key);
	free(range);
	if (!body)
		return ENOMEM;
	json_object *reply;
	int err = rl_gw_call(&s->gw, "/v3/kv/range", body, &reply, NULL);
	free(body);
	struct rl_mirror m;
	if (!err)
		err = rl_mirror_init(&m);
	if (err) {
		json_object_put(reply);
		return err;
	}
	json_object *kvs = rl_json_at(reply, "kvs", NULL);
	for (size_t i = 0; kvs && i < json_object_array_length(kvs); i++) {
		json_object *kv = json_object_array_get_idx(kvs, i);
		struct rl_req *q = rl_req_from_kv(s->prefix, kv);
		if (q)
			rl_mirror_put(&m, q);
	}
	json_object_put(reply);
	int rc = 0;
	size_t hexoff = strlen(s->prefix) + 2;
	for (size_t b = 0; b < m.nbuckets && !rc; b++)
		for (const struct rl_mobj *mo = m.buckets[b]; mo && !rc; mo = mo->next)
			rc = rl_list_object(mo, hexoff, fn, arg);
	rl_mirror_clear(&m);
	free(m.buckets);
	return rc;
}
