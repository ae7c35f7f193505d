/* SPDX-License-Identifier: MIT */
/*
 * test_marks.c - the marks of the fast path's lines (white-box: linked
 * against the static library, it reads the table's marks).
 *
 * A claim marks its line; a wide request tidies the marks (every
 * RL_TIDY_EVERY-th: the first on a lock is one) and clears those of empty
 * lines; a scan passes over unmarked lines.  What must hold: a claim made
 * after a tidy marks its line again, so that a wide request still meets
 * it; a line with a holder is never cleared; ranges over blocks mark every
 * line they hold a part in.
 */
#include <errno.h>

#include "whitebox.h"

#define PAGE 4096ull

/* Is the line of page p marked in lk's current table? */
static bool marked(rangelock_t *lk, uint64_t p)
{
	struct rl_table t = table_of(lk);
	unsigned i = rl_line_of_block(p / RL_BLOCK_PAGES, t.lines);

	/* relaxed: the test runs alone here */
	return atomic_load_explicit(&rl_table_head(t.line)->marked[i / 64],
				    memory_order_relaxed) >> (i % 64) & 1;
}

static unsigned marked_lines(rangelock_t *lk)
{
	struct rl_table t = table_of(lk);
	unsigned n = 0;

	for (unsigned w = 0; w < rl_mark_words(t); w++)
		/* relaxed: as above */
		n += (unsigned)__builtin_popcountll(atomic_load_explicit(
			&rl_table_head(t.line)->marked[w], memory_order_relaxed));
	return n;
}

/* Lock and unlock [start, end) exclusive: a wide request, which tidies the
 * marks when its turn comes. */
static void wide_pair(rangelock_t *lk, uint64_t start, uint64_t end)
{
	rangelock_range_t r;

	CHECK_RC(rangelock_wrlock(lk, &r, start, end), 0);
	CHECK_RC(rangelock_unlock(lk, &r), 0);
}

/* A claim after a tidy marks its line again, and a wide request meets it. */
static void test_claim_after_tidy(void)
{
	rangelock_t lk;
	rangelock_range_t p, w;
	uint64_t page = 12345;

	CHECK_RC(rangelock_init(&lk, 0), 0);
	CHECK_RC(rangelock_rdlock(&lk, &p, 0, PAGE), 0);   /* sets up the table */
	CHECK_RC(rangelock_unlock(&lk, &p), 0);
	CHECK_RC(rangelock_rdlock(&lk, &p, page * PAGE, (page + 1) * PAGE), 0);
	CHECK(state_of(&p) == RL_FAST);
	CHECK(marked(&lk, page));
	CHECK_RC(rangelock_unlock(&lk, &p), 0);
	CHECK(marked(&lk, page));   /* marks stay until a tidy */

	wide_pair(&lk, 0, RANGELOCK_EOF);   /* the lock's first wide request */
	CHECK(marked_lines(&lk) == 0);

	CHECK_RC(rangelock_rdlock(&lk, &p, page * PAGE, (page + 1) * PAGE), 0);
	CHECK(state_of(&p) == RL_FAST);
	CHECK(marked(&lk, page));
	CHECK_RC(rangelock_trywrlock(&lk, &w, 0, RANGELOCK_EOF), EBUSY);
	CHECK_RC(rangelock_trywrlock(&lk, &w, page * PAGE - 16 * PAGE,
				     page * PAGE + 16 * PAGE), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &w, 0, RANGELOCK_EOF), 0);   /* shared */
	CHECK_RC(rangelock_unlock(&lk, &w), 0);
	CHECK_RC(rangelock_unlock(&lk, &p), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* A tidy never clears the mark of a line with a holder; it clears the
 * others', and only every RL_TIDY_EVERY wide requests. */
static void test_tidy_keeps_holders(void)
{
	rangelock_t lk;
	rangelock_range_t p, q, w;
	uint64_t a = 7, b = 7 + 5 * RL_BLOCK_PAGES;   /* blocks 0 and 5 */

	CHECK_RC(rangelock_init(&lk, 0), 0);
	CHECK_RC(rangelock_wrlock(&lk, &p, a * PAGE, (a + 1) * PAGE), 0);
	CHECK_RC(rangelock_unlock(&lk, &p), 0);
	CHECK_RC(rangelock_wrlock(&lk, &p, a * PAGE, (a + 1) * PAGE), 0);
	CHECK_RC(rangelock_wrlock(&lk, &q, b * PAGE, (b + 1) * PAGE), 0);
	CHECK(state_of(&p) == RL_FAST && state_of(&q) == RL_FAST);
	CHECK_RC(rangelock_unlock(&lk, &q), 0);
	CHECK(marked(&lk, a) && marked(&lk, b));

	/* [1 GiB, EOF) overlaps neither; it tidies, and keeps a's mark */
	wide_pair(&lk, 1ull << 30, RANGELOCK_EOF);
	CHECK(marked(&lk, a) && !marked(&lk, b));
	CHECK(marked_lines(&lk) == 1);
	CHECK_RC(rangelock_trywrlock(&lk, &w, 0, RANGELOCK_EOF), EBUSY);

	/* claimed and left again: marked until the next tidy, when the count
	 * of wide requests (the refused try above included) comes round */
	CHECK_RC(rangelock_wrlock(&lk, &q, b * PAGE, (b + 1) * PAGE), 0);
	CHECK_RC(rangelock_unlock(&lk, &q), 0);
	CHECK(priv(&lk)->wide_arrivals == 2);
	while (priv(&lk)->wide_arrivals % RL_TIDY_EVERY != 0) {
		wide_pair(&lk, 1ull << 30, RANGELOCK_EOF);
		CHECK(marked(&lk, b));
	}
	wide_pair(&lk, 1ull << 30, RANGELOCK_EOF);
	CHECK(!marked(&lk, b) && marked(&lk, a));
	CHECK_RC(rangelock_unlock(&lk, &p), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* A range over blocks marks the line of each of its parts. */
static void test_blocks_mark_every_part(void)
{
	rangelock_t lk;
	rangelock_range_t r, w;
	uint64_t first = 3 * RL_BLOCK_PAGES + 10;   /* over blocks 3, 4, 5 */

	CHECK_RC(rangelock_init(&lk, 0), 0);
	CHECK_RC(rangelock_wrlock(&lk, &r, 0, PAGE), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	wide_pair(&lk, 1ull << 30, RANGELOCK_EOF);
	CHECK(marked_lines(&lk) == 0);
	CHECK_RC(rangelock_rdlock(&lk, &r, first * PAGE,
				  (first + 2 * RL_BLOCK_PAGES) * PAGE), 0);
	CHECK(state_of(&r) == RL_FAST);
	CHECK(marked_lines(&lk) == 3);
	for (uint64_t b = 3; b <= 5; b++)
		CHECK(marked(&lk, b * RL_BLOCK_PAGES));
	/* the last part alone is met by a wide request */
	uint64_t last = first + 2 * RL_BLOCK_PAGES - 1;

	CHECK_RC(rangelock_trywrlock(&lk, &w, last * PAGE, RANGELOCK_EOF), EBUSY);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

int main(void)
{
	RUN(test_claim_after_tidy);
	RUN(test_tidy_keeps_holders);
	RUN(test_blocks_mark_every_part);
	t_done();
	return 0;
}
