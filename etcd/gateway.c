/* SPDX-License-Identifier: MIT */
/*
 * gateway.c - etcd's v3 JSON gateway over HTTP/1.1, through libcurl.
 *
 * Every request is a POST of a JSON body to one member; the reply is JSON.
 * A member that refuses the connection, does not answer within the
 * timeout, or answers 5xx is passed over for the next one; the one that
 * answers becomes the first to try next time.  Idle curl handles are kept
 * in a small pool, so their connections are reused.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rl_etcd.h"

static pthread_once_t rl_curl_once = PTHREAD_ONCE_INIT;
static void rl_curl_global(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int rl_gw_init(struct rl_gateway *gw, const char *endpoints, unsigned timeout_ms)
{
	memset(gw, 0, sizeof(*gw));
	pthread_once(&rl_curl_once, rl_curl_global);
	size_t n = 1;
	for (const char *p = endpoints; *p; p++)
		n += *p == ',';
	gw->urls = calloc(n, sizeof(*gw->urls));
	if (!gw->urls)
		return ENOMEM;
	pthread_mutex_init(&gw->pool_mu, NULL); /* with urls: rl_gw_fini's rule */
	const char *p = endpoints;
	for (size_t i = 0; i < n; i++) {
		size_t len = strcspn(p, ",");
		while (len && p[len - 1] == '/')
			len--; /* "http://h:2379/" and "http://h:2379" alike */
		if (len == 0 || !(gw->urls[i] = strndup(p, len))) {
			rl_gw_fini(gw);
			return len == 0 ? EINVAL : ENOMEM;
		}
		gw->nurls++;
		p += strcspn(p, ",");
		p += *p == ',';
	}
	gw->timeout_ms = timeout_ms;
	return 0;
}

void rl_gw_fini(struct rl_gateway *gw)
{
	for (unsigned i = 0; i < gw->npool; i++)
		curl_easy_cleanup(gw->pool[i]);
	for (unsigned i = 0; i < gw->nurls; i++)
		free(gw->urls[i]);
	free(gw->urls);
	if (gw->urls)
		pthread_mutex_destroy(&gw->pool_mu);
	memset(gw, 0, sizeof(*gw));
}

static CURL *rl_gw_handle(struct rl_gateway *gw)
{
	CURL *h = NULL;
	pthread_mutex_lock(&gw->pool_mu);
	if (gw->npool)
		h = gw->pool[--gw->npool];
	pthread_mutex_unlock(&gw->pool_mu);
	return h ? h : curl_easy_init();
}

static void rl_gw_put_handle(struct rl_gateway *gw, CURL *h)
{
	pthread_mutex_lock(&gw->pool_mu);
	if (gw->npool < sizeof(gw->pool) / sizeof(gw->pool[0])) {
		gw->pool[gw->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&gw->pool_mu);
	if (h)
		curl_easy_cleanup(h);
}

struct rl_buf {
	char *data;
	size_t len, cap;
	int (*line)(void *arg, json_object *msg); /* streams only */
	void *arg;
	int stopped;
};

static int rl_buf_add(struct rl_buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

/* Hand every complete line of a stream to its reader. */
static int rl_buf_lines(struct rl_buf *b)
{
	char *nl;
	while (!b->stopped && (nl = memchr(b->data, '\n', b->len))) {
		*nl = 0;
		json_object *msg = json_tokener_parse(b->data);
		size_t used = (size_t)(nl - b->data) + 1;
		memmove(b->data, nl + 1, b->len - used + 1);
		b->len -= used;
		if (msg) {
			b->stopped = b->line(b->arg, msg);
			json_object_put(msg);
		}
	}
	return b->stopped;
}

static size_t rl_gw_write(char *p, size_t size, size_t n, void *arg)
{
	struct rl_buf *b = arg;
	if (rl_buf_add(b, p, size * n) < 0)
		return 0;
	if (b->line && rl_buf_lines(b))
		return 0; /* the reader is done: end the transfer */
	return size * n;
}

/* One POST to one member; 0 with the reply in b, or a curl/HTTP failure. */
static int rl_gw_post(struct rl_gateway *gw, CURL *h, unsigned url,
		      const char *path, const char *body, struct rl_buf *b)
{
	char target[1024];
	snprintf(target, sizeof(target), "%s%s", gw->urls[url], path);
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, target);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rl_gw_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, gw->timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, gw->timeout_ms);
	CURLcode rc = curl_easy_perform(h);
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		return ECONNREFUSED; /* never sent */
	if (rc != CURLE_OK)
		return rc == CURLE_OUT_OF_MEMORY ? ENOMEM : ENOTCONN;
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 500 || status == 0)
		return ENOTCONN; /* unavailable: try the next member */
	return 0;
}

int rl_gw_call(struct rl_gateway *gw, const char *path, const char *body,
	       json_object **out, bool *unsure)
{
	CURL *h = rl_gw_handle(gw);
	if (!h)
		return ENOMEM;
	unsigned first = atomic_load_explicit(&gw->current, memory_order_relaxed);
	int err = ENOTCONN;
	*out = NULL;
	for (unsigned i = 0; i < gw->nurls && err == ENOTCONN; i++) {
		unsigned url = (first + i) % gw->nurls;
		struct rl_buf b = { 0 };
		err = rl_gw_post(gw, h, url, path, body, &b);
		if (err)
			rl_debug("%s%s: no answer (%d)", gw->urls[url], path, err);
		if (err == ENOTCONN && unsure)
			*unsure = true;
		if (err == ECONNREFUSED)
			err = ENOTCONN;
		if (err == 0) {
			/* not JSON: not an etcd member (a proxy's page): the next */
			*out = b.data ? json_tokener_parse(b.data) : NULL;
			err = !*out || !json_object_is_type(*out, json_type_object)
			    ? ENOTCONN
			    : json_object_object_get_ex(*out, "error", NULL) ? EIO : 0;
			if (err == ENOTCONN) {
				json_object_put(*out);
				*out = NULL;
			}
			if (url != first) {
				rl_debug("failover to %s", gw->urls[url]);
				/* relaxed: a hint where to start; the count tells the watch */
				atomic_store_explicit(&gw->current, url, memory_order_relaxed);
				atomic_fetch_add_explicit(&gw->switches, 1, memory_order_relaxed);
				rl_gw_wake(gw); /* the watch follows to the member that answers */
			}
		}
		free(b.data);
	}
	rl_gw_put_handle(gw, h);
	return err;
}

int rl_gw_stream(struct rl_gateway *gw, const char *path, const char *body,
		 int (*fn)(void *arg, json_object *msg), int (*stop)(void *arg),
		 void *arg)
{
	CURL *h = curl_easy_init();
	CURLM *m = curl_multi_init();
	if (!h || !m) {
		curl_easy_cleanup(h);
		curl_multi_cleanup(m);
		return ENOMEM;
	}
	unsigned url = atomic_load_explicit(&gw->current, memory_order_relaxed) %
		       gw->nurls;
	struct rl_buf b = { .line = fn, .arg = arg };
	char target[1024];
	snprintf(target, sizeof(target), "%s%s", gw->urls[url], path);
	curl_easy_setopt(h, CURLOPT_URL, target);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rl_gw_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, gw->timeout_ms);
	curl_multi_add_handle(m, h);
	pthread_mutex_lock(&gw->pool_mu);
	gw->stream = m; /* rl_gw_wake() interrupts the poll below */
	pthread_mutex_unlock(&gw->pool_mu);

	int running = 1;
	while (running && !b.stopped && !stop(arg)) {
		if (curl_multi_perform(m, &running) != CURLM_OK)
			break;
		if (running && !b.stopped)
			curl_multi_poll(m, NULL, 0, 1000, NULL);
	}
	int err = b.stopped || stop(arg) ? 0 : ENOTCONN;
	rl_debug("%s%s: stream ended (%s)", gw->urls[url], path,
		 err ? "connection" : b.stopped ? "reader" : "stop");
	pthread_mutex_lock(&gw->pool_mu);
	gw->stream = NULL;
	pthread_mutex_unlock(&gw->pool_mu);
	curl_multi_remove_handle(m, h);
	curl_multi_cleanup(m);
	curl_easy_cleanup(h);
	free(b.data);
	if (err) {
		/* relaxed: as in rl_gw_call; the next stream tries the next member */
		atomic_compare_exchange_strong_explicit(&gw->current, &url,
			(url + 1) % gw->nurls, memory_order_relaxed, memory_order_relaxed);
	}
	return err;
}

void rl_gw_wake(struct rl_gateway *gw)
{
	pthread_mutex_lock(&gw->pool_mu);
	if (gw->stream)
		curl_multi_wakeup(gw->stream);
	pthread_mutex_unlock(&gw->pool_mu);
}

static const char rl_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t rl_b64_encode(const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = rl_b64[v >> 18];
		out[o++] = rl_b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? rl_b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? rl_b64[v & 63] : '=';
	}
	out[o] = 0;
	return o;
}

char *rl_b64_dup(const void *in, size_t n)
{
	char *out = malloc(n / 3 * 4 + 5);
	if (out)
		rl_b64_encode(in, n, out);
	return out;
}

long rl_b64_decode(const char *in, size_t n, unsigned char *out)
{
	uint32_t v = 0;
	int bits = 0;
	long o = 0;
	for (size_t i = 0; i < n && in[i] != '='; i++) {
		const char *c = memchr(rl_b64, in[i], 64);
		if (!c || !in[i])
			return -1;
		v = v << 6 | (uint32_t)(c - rl_b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	return o;
}

uint64_t rl_json_u64(json_object *o, const char *field)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, field, &v))
		return 0;
	if (json_object_is_type(v, json_type_string))
		return strtoull(json_object_get_string(v), NULL, 10);
	return (uint64_t)json_object_get_int64(v);
}

json_object *rl_json_at(json_object *o, const char *a, const char *b)
{
	json_object *v = NULL, *w = NULL;
	if (!o || !json_object_object_get_ex(o, a, &v))
		return NULL;
	if (!b)
		return v;
	return json_object_object_get_ex(v, b, &w) ? w : NULL;
}

static pthread_once_t rl_debug_once = PTHREAD_ONCE_INIT;
static bool rl_debug_on;
static void rl_debug_init(void) { rl_debug_on = getenv("RANGELOCK_ETCD_DEBUG") != NULL; }

void rl_debug(const char *fmt, ...)
{
	pthread_once(&rl_debug_once, rl_debug_init);
	if (!rl_debug_on)
		return;
	char line[512];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int n = snprintf(line, sizeof(line), "rangelock-etcd %d %ld.%03ld ", (int)getpid(),
			 (long)ts.tv_sec % 1000, ts.tv_nsec / 1000000);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	fputs(line, stderr); /* one write per line: lines of threads do not mix */
}
