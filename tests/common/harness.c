/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include <errno.h>
#include <stdarg.h>
#include <time.h>

int t_count;
static atomic_int t_grants;

void t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "not ok - %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

const char *t_errname(int err)
{
	switch (err) {
	case 0: return "0";
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	case EDEADLK: return "EDEADLK";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	default: {
		static _Thread_local char buf[32];
		snprintf(buf, sizeof(buf), "errno %d", err);
		return buf;
	}
	}
}

void t_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

struct timespec t_deadline_ms(long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

int t_elapsed_since_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int)((now.tv_sec - start->tv_sec) * 1000 +
		     (now.tv_nsec - start->tv_nsec) / 1000000L);
}

void t_done(void)
{
	printf("%d passed, 0 failed\n", t_count);
}

static void *t_request_main(void *arg)
{
	struct t_request *t = arg;

	switch (t->op) {
	case T_RD:
		t->rc = rangelock_rdlock(t->lk, &t->range, t->start, t->end);
		break;
	case T_WR:
		t->rc = rangelock_wrlock(t->lk, &t->range, t->start, t->end);
		break;
	case T_TIMED_RD:
		t->rc = rangelock_timedrdlock(t->lk, &t->range, t->start,
					      t->end, &t->deadline);
		break;
	case T_TIMED_WR:
		t->rc = rangelock_timedwrlock(t->lk, &t->range, t->start,
					      t->end, &t->deadline);
		break;
	}
	/* seq_cst: test bookkeeping, ordered after the call returned. */
	atomic_store_explicit(&t->grant_seq,
			      atomic_fetch_add_explicit(&t_grants, 1,
							memory_order_seq_cst),
			      memory_order_seq_cst);
	/* seq_cst: publishes rc; pairs with the loads in t_request_wait(). */
	atomic_store_explicit(&t->done, 1, memory_order_seq_cst);
	return NULL;
}

void t_request_start(struct t_request *t, rangelock_t *lk, enum t_op op,
		     uint64_t start, uint64_t end)
{
	t->lk = lk;
	t->op = op;
	t->start = start;
	t->end = end;
	t->rc = -1;
	atomic_init(&t->done, 0);
	atomic_init(&t->grant_seq, -1);
	if (pthread_create(&t->thread, NULL, t_request_main, t) != 0)
		t_fail(__FILE__, __LINE__, "pthread_create failed");
}

int t_request_wait(struct t_request *t)
{
	for (int ms = 0; ms < 10000; ms++) {
		if (atomic_load_explicit(&t->done, memory_order_seq_cst)) {
			pthread_join(t->thread, NULL);
			return t->rc;
		}
		t_sleep_ms(1);
	}
	t_fail(__FILE__, __LINE__, "request [%llu,%llu) still waiting after 10 s",
	       (unsigned long long)t->start, (unsigned long long)t->end);
}

bool t_request_pending(struct t_request *t, int ms)
{
	t_sleep_ms(ms);
	return !atomic_load_explicit(&t->done, memory_order_seq_cst);
}

void t_wait_queued(rangelock_t *lk, bool exclusive, uint64_t start,
		   uint64_t end)
{
	rangelock_range_t probe;

	for (int ms = 0; ms < 10000; ms++) {
		int rc = exclusive ? rangelock_trywrlock(lk, &probe, start, end)
				   : rangelock_tryrdlock(lk, &probe, start, end);
		if (rc == EBUSY)
			return;
		if (rc != 0)
			t_fail(__FILE__, __LINE__, "probe: %s", t_errname(rc));
		rangelock_unlock(lk, &probe);
		t_sleep_ms(1);
	}
	t_fail(__FILE__, __LINE__, "nothing queued on [%llu,%llu) after 10 s",
	       (unsigned long long)start, (unsigned long long)end);
}
