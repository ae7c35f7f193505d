/* SPDX-License-Identifier: MIT */
/*
 * test_ranges.c - the rules that need no second thread: argument checks,
 * the conflict relation (a table of range pairs and modes), EOF and ends
 * near UINT64_MAX, unlock of a handle not held, init flags and destroy.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"

#define PAGE 4096u
#define MAX UINT64_MAX

static void test_init_flags(void)
{
	rangelock_t lk, before;

	memset(&lk, 0xa5, sizeof(lk));
	before = lk;
	CHECK_RC(rangelock_init(&lk, 2), EINVAL);
	CHECK_RC(rangelock_init(&lk, ~0u), EINVAL);
	CHECK(memcmp(&lk, &before, sizeof(lk)) == 0);
	CHECK_RC(rangelock_init(&lk, 0), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
	CHECK_RC(rangelock_init(&lk, RANGELOCK_DEBUG), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

static void test_static_initializer(void)
{
	static rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t a, b;

	CHECK_RC(rangelock_wrlock(&lk, &a, 0, PAGE), 0);
	CHECK_RC(rangelock_tryrdlock(&lk, &b, 0, 1), EBUSY);
	CHECK_RC(rangelock_unlock(&lk, &a), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* start >= end is EINVAL for every call, and neither lock nor handle change. */
static void test_empty_and_inverted_ranges(void)
{
	static const uint64_t bad[][2] = {
		{ 0, 0 }, { 10, 10 }, { 11, 10 }, { MAX, MAX }, { MAX, 0 },
		{ MAX - 1, MAX - 1 }, { 1, 0 },
	};
	struct timespec later = t_deadline_ms(1000);
	rangelock_t lk;
	rangelock_range_t r, before, all;

	CHECK_RC(rangelock_init(&lk, RANGELOCK_DEBUG), 0);
	memset(&r, 0x5a, sizeof(r));
	before = r;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t s = bad[i][0], e = bad[i][1];

		CHECK_RC(rangelock_rdlock(&lk, &r, s, e), EINVAL);
		CHECK_RC(rangelock_wrlock(&lk, &r, s, e), EINVAL);
		CHECK_RC(rangelock_tryrdlock(&lk, &r, s, e), EINVAL);
		CHECK_RC(rangelock_trywrlock(&lk, &r, s, e), EINVAL);
		CHECK_RC(rangelock_timedrdlock(&lk, &r, s, e, &later), EINVAL);
		CHECK_RC(rangelock_timedwrlock(&lk, &r, s, e, &later), EINVAL);
	}
	CHECK(memcmp(&r, &before, sizeof(r)) == 0);
	/* Nothing was left behind: the whole space is free. */
	CHECK_RC(rangelock_trywrlock(&lk, &all, 0, RANGELOCK_EOF), 0);
	CHECK_RC(rangelock_unlock(&lk, &all), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

static void test_bad_deadlines(void)
{
	struct timespec neg = { 0, -1 }, big = { 0, 1000000000L };
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t r;

	CHECK_RC(rangelock_timedrdlock(&lk, &r, 0, 1, NULL), EINVAL);
	CHECK_RC(rangelock_timedwrlock(&lk, &r, 0, 1, NULL), EINVAL);
	CHECK_RC(rangelock_timedrdlock(&lk, &r, 0, 1, &neg), EINVAL);
	CHECK_RC(rangelock_timedwrlock(&lk, &r, 0, 1, &big), EINVAL);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* One row: hold a in mode am, then try b in mode bm; does b conflict? */
struct conflict_case {
	uint64_t a_start, a_end;
	char am;
	uint64_t b_start, b_end;
	char bm;
	bool conflict;
};

static const struct conflict_case conflict_table[] = {
	/* adjacency never conflicts, in any mode */
	{ 0, 10, 'w', 10, 20, 'w', false },
	{ 10, 20, 'w', 0, 10, 'w', false },
	{ 0, 10, 'r', 10, 20, 'w', false },
	{ 0, PAGE, 'w', PAGE, 2 * PAGE, 'w', false },
	/* one byte of overlap is enough, at either end */
	{ 0, 10, 'w', 9, 20, 'w', true },
	{ 9, 20, 'w', 0, 10, 'r', true },
	{ 0, 10, 'r', 9, 10, 'w', true },
	/* containment, both ways; identical ranges */
	{ 0, 100, 'w', 40, 50, 'r', true },
	{ 40, 50, 'r', 0, 100, 'w', true },
	{ 0, 100, 'w', 0, 100, 'w', true },
	/* shared never conflicts with shared */
	{ 0, 100, 'r', 0, 100, 'r', false },
	{ 0, RANGELOCK_EOF, 'r', 5, 6, 'r', false },
	/* EOF ranges */
	{ 100, RANGELOCK_EOF, 'w', 0, 100, 'w', false },
	{ 100, RANGELOCK_EOF, 'w', 99, 101, 'r', true },
	{ 100, RANGELOCK_EOF, 'w', MAX - 1, MAX, 'r', true },
	{ 0, RANGELOCK_EOF, 'w', MAX - 1, RANGELOCK_EOF, 'r', true },
	{ 0, RANGELOCK_EOF, 'w', 0, 1, 'r', true },
	/* byte slots (fast, up to 8 KiB inside a block): exact to the byte,
	 * against each other and against whole pages */
	{ 4000, 4096, 'w', 4096, 8192, 'w', false },
	{ 4000, 4097, 'w', 4096, 8192, 'w', true },
	{ 4095, 8193, 'w', 8192, 8200, 'r', true },
	{ 4095, 8193, 'w', 8193, 8200, 'w', false },
	{ 100, 8292, 'r', 8291, 8292, 'w', true },
	{ 100, 8293, 'w', 8292, 8300, 'w', true },   /* 8193 bytes: precise */
	/* across a block's edge (precise) against a byte slot inside it */
	{ 262100, 262200, 'w', 262143, 262144, 'w', true },
	{ 262100, 262200, 'w', 262200, 262300, 'w', false },
	/* at the byte slots' limit, 2^45: below it fast, above it precise */
	{ (1ull << 45) - 10, (1ull << 45) - 1, 'w', (1ull << 45) - 2,
	  (1ull << 45) + 5, 'w', true },
	{ (1ull << 45) - 10, 1ull << 45, 'w', 1ull << 45, (1ull << 45) + 5, 'w',
	  false },
	/* ends near UINT64_MAX: no overflow, exact adjacency */
	{ MAX - 2, MAX - 1, 'w', MAX - 1, MAX, 'w', false },
	{ MAX - 1, MAX, 'w', MAX - 2, MAX - 1, 'w', false },
	{ MAX - 2, MAX, 'w', MAX - 1, MAX, 'r', true },
	{ 0, MAX - 1, 'w', MAX - 1, RANGELOCK_EOF, 'w', false },
	{ MAX / 2, MAX / 2 + 1, 'w', 0, MAX, 'r', true },
};

static int try_mode(rangelock_t *lk, rangelock_range_t *r, char m,
		    uint64_t s, uint64_t e)
{
	return m == 'w' ? rangelock_trywrlock(lk, r, s, e)
			: rangelock_tryrdlock(lk, r, s, e);
}

static int lock_mode(rangelock_t *lk, rangelock_range_t *r, char m,
		     uint64_t s, uint64_t e)
{
	return m == 'w' ? rangelock_wrlock(lk, r, s, e)
			: rangelock_rdlock(lk, r, s, e);
}

/* Each case twice: on a fresh lock, whose first call takes the precise
 * path (and sets up the fast path's table), and on a warm one, where a
 * takes the fast path if it can, so that b meets it as a slot. */
static void test_conflict_table(void)
{
	for (size_t n = 0; n < 2 * sizeof(conflict_table) / sizeof(conflict_table[0]); n++) {
		size_t i = n / 2;
		const struct conflict_case *c = &conflict_table[i];
		struct timespec past = { 0, 0 };
		rangelock_t lk;
		rangelock_range_t a, b;
		int want = c->conflict ? EBUSY : 0;

		CHECK_RC(rangelock_init(&lk, 0), 0);
		if (n % 2) {   /* warm: the table exists */
			CHECK_RC(rangelock_wrlock(&lk, &a, 1ull << 50, (1ull << 50) + 1), 0);
			CHECK_RC(rangelock_unlock(&lk, &a), 0);
		}
		CHECK_RC(lock_mode(&lk, &a, c->am, c->a_start, c->a_end), 0);
		int rc = try_mode(&lk, &b, c->bm, c->b_start, c->b_end);
		if (rc != want)
			t_fail(__FILE__, __LINE__, "case %zu (%s): try = %s, want %s",
			       i, n % 2 ? "warm" : "fresh", t_errname(rc),
			       t_errname(want));
		if (rc == 0)
			CHECK_RC(rangelock_unlock(&lk, &b), 0);
		/* A timed call with a past deadline is one attempt. */
		rc = c->bm == 'w'
			     ? rangelock_timedwrlock(&lk, &b, c->b_start, c->b_end, &past)
			     : rangelock_timedrdlock(&lk, &b, c->b_start, c->b_end, &past);
		want = c->conflict ? ETIMEDOUT : 0;
		if (rc != want)
			t_fail(__FILE__, __LINE__, "case %zu: timed = %s, want %s",
			       i, t_errname(rc), t_errname(want));
		if (rc == 0)
			CHECK_RC(rangelock_unlock(&lk, &b), 0);
		CHECK_RC(rangelock_unlock(&lk, &a), 0);
		CHECK_RC(rangelock_destroy(&lk), 0);
	}
}

/* Many shared holders of one page at once, then an exclusive one. */
static void test_many_shared_holders(void)
{
	enum { N = 1000 };
	static rangelock_range_t r[N];
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t w;

	for (int i = 0; i < N; i++)
		CHECK_RC(rangelock_rdlock(&lk, &r[i], 0, PAGE), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &w, PAGE - 1, PAGE), EBUSY);
	CHECK_RC(rangelock_trywrlock(&lk, &w, PAGE, 2 * PAGE), 0);
	CHECK_RC(rangelock_unlock(&lk, &w), 0);
	for (int i = N - 1; i >= 0; i--)
		CHECK_RC(rangelock_unlock(&lk, &r[i]), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &w, 0, RANGELOCK_EOF), 0);
	CHECK_RC(rangelock_unlock(&lk, &w), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

static void test_unlock_not_held(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER, other = RANGELOCK_INITIALIZER;
	rangelock_range_t r, never, busy;

	memset(&never, 0, sizeof(never));
	CHECK_RC(rangelock_unlock(&lk, &never), EINVAL);
	CHECK_RC(rangelock_downgrade(&lk, &never), EINVAL);

	CHECK_RC(rangelock_wrlock(&lk, &r, 0, 10), 0);
	CHECK_RC(rangelock_unlock(&other, &r), EINVAL);   /* wrong lock */
	CHECK_RC(rangelock_downgrade(&other, &r), EINVAL);
	CHECK_RC(rangelock_trywrlock(&lk, &busy, 0, 10), EBUSY);
	CHECK_RC(rangelock_unlock(&lk, &busy), EINVAL);   /* failed try */
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), EINVAL);      /* double unlock */
	CHECK_RC(rangelock_downgrade(&lk, &r), EINVAL);

	/* The handle may be reused after unlock. */
	CHECK_RC(rangelock_rdlock(&lk, &r, 5, 6), 0);
	CHECK_RC(rangelock_downgrade(&lk, &r), EINVAL);   /* already shared */
	CHECK_RC(rangelock_trywrlock(&lk, &busy, 0, 10), EBUSY);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &busy, 0, 10), 0);
	CHECK_RC(rangelock_unlock(&lk, &busy), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
	CHECK_RC(rangelock_destroy(&other), 0);
}

static void test_destroy_busy(void)
{
	rangelock_t lk;
	rangelock_range_t r, s;

	CHECK_RC(rangelock_init(&lk, 0), 0);
	CHECK_RC(rangelock_rdlock(&lk, &r, 0, 10), 0);
	CHECK_RC(rangelock_destroy(&lk), EBUSY);
	/* Still a working lock, with the range still held. */
	CHECK_RC(rangelock_trywrlock(&lk, &s, 0, 10), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &s, 0, 10), 0);
	CHECK_RC(rangelock_unlock(&lk, &s), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
	/* Destroyed, it may be initialised again. */
	CHECK_RC(rangelock_init(&lk, 0), 0);
	CHECK_RC(rangelock_wrlock(&lk, &r, 0, 10), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
	/* A destroyed lock is an empty one: destroyed again, 0 (its tables
	 * are not freed twice: ASan would say) */
	CHECK_RC(rangelock_destroy(&lk), 0);
}

static void test_downgrade_single_thread(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t w, r;

	CHECK_RC(rangelock_wrlock(&lk, &w, 0, 100), 0);
	CHECK_RC(rangelock_tryrdlock(&lk, &r, 50, 60), EBUSY);
	CHECK_RC(rangelock_downgrade(&lk, &w), 0);
	CHECK_RC(rangelock_downgrade(&lk, &w), EINVAL);   /* now shared */
	CHECK_RC(rangelock_tryrdlock(&lk, &r, 50, 60), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &r, 99, 100), EBUSY);
	CHECK_RC(rangelock_unlock(&lk, &w), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &r, 99, 100), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* A held handle copied with memcpy (the header forbids it) and unlocked
 * through the copy: EINVAL, and the original stays held, on the fast path
 * (one page) and on the list (a wide range, and one between neighbours). */
static void test_copied_handle_refused(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t a, b, c, copy, probe;

	CHECK_RC(rangelock_wrlock(&lk, &a, 0, 4096), 0);              /* fast */
	CHECK_RC(rangelock_wrlock(&lk, &b, 1 << 20, 64 << 20), 0);    /* listed */
	CHECK_RC(rangelock_rdlock(&lk, &c, 100 << 20, 101 << 20), 0);
	memcpy(&copy, &a, sizeof(copy));
	CHECK_RC(rangelock_unlock(&lk, &copy), EINVAL);
	CHECK_RC(rangelock_downgrade(&lk, &copy), EINVAL);
	CHECK_RC(rangelock_trywrlock(&lk, &probe, 0, 4096), EBUSY);   /* still a's */
	memcpy(&copy, &b, sizeof(copy));
	CHECK_RC(rangelock_unlock(&lk, &copy), EINVAL);
	CHECK_RC(rangelock_trywrlock(&lk, &probe, 2 << 20, 3 << 20), EBUSY);
	CHECK_RC(rangelock_unlock(&lk, &a), 0);
	CHECK_RC(rangelock_unlock(&lk, &b), 0);
	CHECK_RC(rangelock_unlock(&lk, &copy), EINVAL);   /* after the original too */
	CHECK_RC(rangelock_unlock(&lk, &c), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

int main(void)
{
	RUN(test_init_flags);
	RUN(test_static_initializer);
	RUN(test_empty_and_inverted_ranges);
	RUN(test_bad_deadlines);
	RUN(test_conflict_table);
	RUN(test_many_shared_holders);
	RUN(test_unlock_not_held);
	RUN(test_destroy_busy);
	RUN(test_downgrade_single_thread);
	RUN(test_copied_handle_refused);
	t_done();
	return 0;
}
