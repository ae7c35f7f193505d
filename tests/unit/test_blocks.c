/* SPDX-License-Identifier: MIT */
/*
 * test_blocks.c - ranges of whole pages held over several blocks: a slot
 * in each block's line (white-box: linked against the static library, it
 * reads handles' private state and grows a lock with rl_fast_grow()).
 *
 * What must hold: such a range is held through slots (in the small table
 * over up to RL_CLAIM_BLOCKS_SMALL blocks, once grown over up to
 * RL_CLAIM_BLOCKS); each of its parts keeps out conflicting requests,
 * fast or listed, and admits compatible ones; a claim refused in a later
 * block gives back the parts it claimed, and a waiter that saw one is not
 * stranded; a full line or a listed request sends it to the precise path;
 * downgrade weakens every part; unlock of a copy, a second unlock, or a
 * downgrade of a shared one is EINVAL and changes nothing; a holder of the
 * small table stays held across growth; destroy is EBUSY while one is held.
 */
#include <errno.h>
#include <string.h>

#include "whitebox.h"

#define PAGE 4096ull
#define BLOCK ((uint64_t)RL_BLOCK_PAGES * PAGE)

/* Held over several blocks (not listed, not one slot)? */
static bool held_over_blocks(rangelock_range_t *r)
{
	return state_of(r) == RL_FAST &&
	       rl_request_of(r)->fast.slot == RL_SLOT_BLOCKS;
}

/* Is any slot of the current table taken by someone other than what the
 * test holds?  (How many slots are taken, in all.) */
static unsigned slots_taken(rangelock_t *lk)
{
	struct rl_table t = rl_table_decode(
		atomic_load_explicit(&priv(lk)->table, memory_order_acquire));
	unsigned n = 0;

	for (unsigned i = 0; i < t.lines; i++)
		for (unsigned j = 0; j < RL_SLOTS; j++)
			/* relaxed: no other thread runs */
			n += atomic_load_explicit(&t.line[i].slot[j],
						  memory_order_relaxed) != 0;
	return n;
}

static void setup_table(rangelock_t *lk)
{
	rangelock_range_t r;

	CHECK_RC(rangelock_wrlock(lk, &r, 0, 1), 0);   /* sets up the table */
	CHECK_RC(rangelock_unlock(lk, &r), 0);
}

/* Which ranges are held over blocks, in the small table and once grown. */
static void test_which_ranges(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t r;
	uint64_t base = 1ull << 30;

	setup_table(&lk);
	/* two blocks, three blocks: through slots */
	CHECK_RC(rangelock_wrlock(&lk, &r, base + BLOCK - PAGE, base + BLOCK + PAGE), 0);
	CHECK(held_over_blocks(&r));
	CHECK(slots_taken(&lk) == 2);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK(slots_taken(&lk) == 0);
	CHECK_RC(rangelock_rdlock(&lk, &r, base, base + 3 * BLOCK), 0);
	CHECK(held_over_blocks(&r));
	CHECK(slots_taken(&lk) == 3);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	/* four blocks: listed while the table is small */
	CHECK_RC(rangelock_wrlock(&lk, &r, base, base + 4 * BLOCK), 0);
	CHECK(state_of(&r) == RL_HELD);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	/* not whole pages: listed */
	CHECK_RC(rangelock_wrlock(&lk, &r, base + 1, base + 2 * BLOCK), 0);
	CHECK(state_of(&r) == RL_HELD);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);

	rl_fast_grow(priv(&lk));
	/* grown: any 256 pages, up to five blocks */
	CHECK_RC(rangelock_wrlock(&lk, &r, base + BLOCK - PAGE,
				  base + BLOCK - PAGE + 256 * PAGE), 0);
	CHECK(held_over_blocks(&r));
	CHECK(slots_taken(&lk) == RL_CLAIM_BLOCKS);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_wrlock(&lk, &r, base, base + RL_CLAIM_BLOCKS * BLOCK + PAGE), 0);
	CHECK(state_of(&r) == RL_HELD);   /* six blocks */
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK(slots_taken(&lk) == 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* Each part keeps out what conflicts with it and admits what does not;
 * bad handles change nothing; downgrade weakens every part. */
static void test_parts_conflict(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t r, probe, copy;
	struct t_request w;
	uint64_t base = 7 * BLOCK;

	setup_table(&lk);
	CHECK_RC(rangelock_wrlock(&lk, &r, base + 10 * PAGE, base + 2 * BLOCK + 3 * PAGE), 0);
	CHECK(held_over_blocks(&r));
	/* every block of it is kept out, fast, byte-sized and listed alike */
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, base + 10 * PAGE, base + 11 * PAGE), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, base + BLOCK + 5, base + BLOCK + 9), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, base + 2 * BLOCK + 2 * PAGE,
				     base + 2 * BLOCK + 3 * PAGE), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, base, base + 4 * BLOCK), EBUSY);
	CHECK_RC(rangelock_trywrlock(&lk, &probe, base + 2 * BLOCK + 3 * PAGE - 1,
				     base + 2 * BLOCK + 3 * PAGE + 7), EBUSY);
	/* the pages beside it are free, in its first and last blocks */
	CHECK_RC(rangelock_trywrlock(&lk, &probe, base + 9 * PAGE, base + 10 * PAGE), 0);
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &probe, base + 2 * BLOCK + 3 * PAGE,
				     base + 2 * BLOCK + 4 * PAGE), 0);
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);

	/* a copy, or a shared downgrade of a copy, is refused; so is a
	 * handle that names another line than its table's first */
	memcpy(&copy, &r, sizeof(copy));
	CHECK_RC(rangelock_unlock(&lk, &copy), EINVAL);
	CHECK_RC(rangelock_downgrade(&lk, &copy), EINVAL);
	rl_request_of(&copy)->fast.self = rl_request_of(&copy);
	rl_request_of(&copy)->fast.seg++;
	CHECK_RC(rangelock_unlock(&lk, &copy), EINVAL);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, base + BLOCK, base + BLOCK + PAGE), EBUSY);

	/* a reader waits in the last block; downgrade lets it in */
	t_request_start(&w, &lk, T_RD, base + 2 * BLOCK, base + 2 * BLOCK + PAGE);
	wait_listed(&w);
	CHECK(t_request_pending(&w, 20));
	CHECK_RC(rangelock_downgrade(&lk, &r), 0);
	CHECK_RC(t_request_wait(&w), 0);
	CHECK_RC(rangelock_downgrade(&lk, &r), EINVAL);   /* shared already */
	/* shared in every block now: readers in, writers out */
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, base + 20 * PAGE, base + BLOCK + PAGE), 0);
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);
	CHECK_RC(rangelock_trywrlock(&lk, &probe, base + BLOCK, base + BLOCK + PAGE), EBUSY);
	CHECK_RC(rangelock_trywrlock(&lk, &probe, base + 10 * PAGE, base + 11 * PAGE), EBUSY);
	CHECK_RC(rangelock_destroy(&lk), EBUSY);
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);

	/* a writer waits in the middle block; unlock lets it in */
	t_request_start(&w, &lk, T_WR, base + BLOCK + 3 * PAGE, base + BLOCK + 4 * PAGE);
	wait_listed(&w);
	CHECK(t_request_pending(&w, 20));
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(t_request_wait(&w), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), EINVAL);   /* not held any more */
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);
	CHECK(slots_taken(&lk) == 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* A claim refused in a later block gives back the earlier parts. */
static void test_refused_gives_back(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t held, r, probe;
	uint64_t base = 40 * BLOCK;

	setup_table(&lk);
	/* a fast holder in the third block */
	CHECK_RC(rangelock_wrlock(&lk, &held, base + 2 * BLOCK, base + 2 * BLOCK + PAGE), 0);
	CHECK(state_of(&held) == RL_FAST);
	CHECK_RC(rangelock_tryrdlock(&lk, &r, base, base + 3 * BLOCK), EBUSY);
	/* nothing of the refused claim is left: only the holder's slot */
	CHECK(slots_taken(&lk) == 1);
	CHECK_RC(rangelock_trywrlock(&lk, &probe, base, base + PAGE), 0);
	CHECK(state_of(&probe) == RL_FAST);
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);
	/* a range beside the holder is held, over the blocks */
	CHECK_RC(rangelock_wrlock(&lk, &r, base, base + 2 * BLOCK), 0);
	CHECK(held_over_blocks(&r));
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_unlock(&lk, &held), 0);
	CHECK(slots_taken(&lk) == 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* A listed request in a block, or a full line, sends the range to the
 * precise path; what it then holds is listed, and correct. */
static void test_closed_and_full(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t listed, r, fill[RL_SLOTS];
	struct t_request w;
	uint64_t base = 100 * BLOCK;

	setup_table(&lk);
	/* a listed (ragged) holder in the second block, far from r's pages */
	CHECK_RC(rangelock_wrlock(&lk, &listed, base + BLOCK + 50 * PAGE + 1,
				  base + BLOCK + 55 * PAGE), 0);
	CHECK(state_of(&listed) == RL_HELD);
	CHECK_RC(rangelock_wrlock(&lk, &r, base + 10 * PAGE, base + BLOCK + 10 * PAGE), 0);
	CHECK(state_of(&r) == RL_HELD);   /* the line was closed to it */
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_unlock(&lk, &listed), 0);

	/* the first block's line full of single pages held */
	for (int i = 0; i < RL_SLOTS; i++) {
		CHECK_RC(rangelock_rdlock(&lk, &fill[i], base + (uint64_t)i * PAGE,
					  base + (uint64_t)(i + 1) * PAGE), 0);
		CHECK(state_of(&fill[i]) == RL_FAST);
	}
	CHECK_RC(rangelock_wrlock(&lk, &r, base + 20 * PAGE, base + BLOCK + PAGE), 0);
	CHECK(state_of(&r) == RL_HELD);
	CHECK(slots_taken(&lk) == RL_SLOTS);   /* no part left behind */
	/* a writer over a filled page waits behind the phantom, then goes */
	t_request_start(&w, &lk, T_WR, base, base + 2 * BLOCK);
	wait_listed(&w);
	CHECK(t_request_pending(&w, 20));
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	for (int i = 0; i < RL_SLOTS; i++) {
		CHECK(t_request_pending(&w, 1));
		CHECK_RC(rangelock_unlock(&lk, &fill[i]), 0);
	}
	CHECK_RC(t_request_wait(&w), 0);
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

/* A holder of the small table across growth. */
static void test_across_growth(void)
{
	rangelock_t lk = RANGELOCK_INITIALIZER;
	rangelock_range_t r, probe, copy;
	struct t_request w;
	uint64_t base = 3 * BLOCK;

	setup_table(&lk);
	CHECK_RC(rangelock_wrlock(&lk, &r, base, base + 2 * BLOCK + PAGE), 0);
	CHECK(held_over_blocks(&r));
	rl_fast_grow(priv(&lk));
	/* claims in the grown table meet it, in every block */
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, base, base + PAGE), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, base + BLOCK, base + BLOCK + PAGE), EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, base + 2 * BLOCK, base + 2 * BLOCK + PAGE),
		 EBUSY);
	CHECK_RC(rangelock_tryrdlock(&lk, &probe, base - BLOCK, base + 4 * BLOCK), EBUSY);
	CHECK_RC(rangelock_trywrlock(&lk, &probe, base + 2 * BLOCK + PAGE,
				     base + 4 * BLOCK), 0);
	CHECK(held_over_blocks(&probe));   /* beside it, in the grown table */
	/* a forged handle naming the small table's last line, not its first:
	 * refused, nothing read outside the table */
	memcpy(&copy, &r, sizeof(copy));
	rl_request_of(&copy)->fast.self = rl_request_of(&copy);
	rl_request_of(&copy)->fast.seg += RL_SMALL_LINES - 1;
	CHECK_RC(rangelock_unlock(&lk, &copy), EINVAL);
	CHECK_RC(rangelock_downgrade(&lk, &copy), EINVAL);
	CHECK_RC(rangelock_unlock(&lk, &probe), 0);
	t_request_start(&w, &lk, T_RD, base + BLOCK, base + 2 * BLOCK);
	wait_listed(&w);
	CHECK_RC(rangelock_destroy(&lk), EBUSY);
	CHECK_RC(rangelock_downgrade(&lk, &r), 0);   /* in the small table */
	CHECK_RC(t_request_wait(&w), 0);
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_unlock(&lk, &w.range), 0);
	CHECK_RC(rangelock_wrlock(&lk, &r, base, base + 2 * BLOCK + PAGE), 0);
	CHECK(held_over_blocks(&r));
	CHECK_RC(rangelock_unlock(&lk, &r), 0);
	CHECK_RC(rangelock_destroy(&lk), 0);
}

int main(void)
{
	RUN(test_which_ranges);
	RUN(test_parts_conflict);
	RUN(test_refused_gives_back);
	RUN(test_closed_and_full);
	RUN(test_across_growth);
	t_done();
	return 0;
}
