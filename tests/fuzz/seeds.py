#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# seeds.py: write the seed corpus for fuzz_api (tests/fuzz/corpus), one
# named scenario per file.  The encoding is fuzz_api.c's: a flag byte
# (1 debug, 2 also try an unknown flag, 4 a shared region's attachment
# instead of a private lock), then 4-byte operations.
import os

LOCK, TRY, PAST, SHORT, UNLOCK, DOWN, DESTROY = 0, 2, 3, 4, 5, 7, 8
GROW = DESTROY   # with bit 7 of the page byte (a_extra=0x80)

def op(kind, h, page=0, pages=1, shape=0, excl=False, a_extra=0, scale=0):
    b0 = next(b for b in range(256) if b % 9 == kind and bool(b & 0x10) == excl)
    # page: 0..15, or 56..71 (bit 4 of a): straddles the block boundary at 64
    a = (page & 15) | (0x10 if page >= 56 else 0) | a_extra
    # scale (bits 5-6 of b): pages 1..4, 60..63, 512 * (1..4), 2048 * (1..4)
    b = ((pages - 1) & 3) | (shape << 2) | (scale << 5)
    return bytes([b0, h, a, b])

WHOLE, BLOCKS, RAGGED, EOF, TOP, ODD = 0, 3, 4, 5, 6, 7
seeds = {
    "try_busy": [op(LOCK, 0, excl=True), op(TRY, 1), op(UNLOCK, 0), op(TRY, 1), op(UNLOCK, 1)],
    "fifo_waiter": [op(LOCK, 0, excl=True), op(LOCK, 1), op(TRY, 2, page=1),
                    op(UNLOCK, 0), op(UNLOCK, 1), op(UNLOCK, 2)],
    "writer_between_readers": [op(LOCK, 0), op(LOCK, 1, excl=True), op(TRY, 2),
                               op(TRY, 5, page=3), op(UNLOCK, 0), op(UNLOCK, 1), op(UNLOCK, 5)],
    "downgrade_wakes": [op(LOCK, 0, pages=4, excl=True), op(LOCK, 1, page=1),
                        op(LOCK, 2, page=2, excl=True), op(DOWN, 0), op(UNLOCK, 1),
                        op(UNLOCK, 0), op(UNLOCK, 2)],
    "timeouts": [op(LOCK, 0, shape=EOF, excl=True), op(SHORT, 1, page=5),
                 op(PAST, 2, page=6), op(UNLOCK, 0), op(PAST, 2, page=6), op(UNLOCK, 2)],
    "timeout_unblocks": [op(LOCK, 0), op(LOCK, 1, excl=True), op(SHORT, 2, page=0, excl=True),
                         op(UNLOCK, 0), op(UNLOCK, 1)],
    "destroy_busy": [op(LOCK, 0, excl=True), op(DESTROY, 0), op(UNLOCK, 0), op(DESTROY, 0),
                     op(LOCK, 0), op(UNLOCK, 0)],
    "bad_input": [op(LOCK, 0, shape=ODD, a_extra=0x80), op(TRY, 1, shape=ODD, a_extra=0xa0),
                  op(UNLOCK, 0), op(LOCK, 0), op(UNLOCK, 0), op(UNLOCK, 0), op(DOWN, 0),
                  op(LOCK, 1, excl=True), op(DOWN, 1), op(DOWN, 1), op(UNLOCK, 1)],
    "waiting_unlock_einval": [op(LOCK, 0, excl=True), op(LOCK, 1), op(UNLOCK, 1), op(DOWN, 1),
                              op(UNLOCK, 0), op(UNLOCK, 1)],
    "top_of_space": [op(LOCK, 0, shape=TOP, pages=4, excl=True), op(TRY, 1, shape=TOP),
                     op(LOCK, 2, shape=ODD, a_extra=0x20, excl=True),
                     op(TRY, 4, shape=ODD, a_extra=0x60), op(UNLOCK, 0), op(UNLOCK, 2), op(UNLOCK, 4)],
    "block_boundary": [op(LOCK, 0, page=62), op(LOCK, 1, page=64, excl=True),
                       op(LOCK, 2, page=61, pages=4, excl=True), op(TRY, 4, page=56),
                       op(UNLOCK, 0), op(UNLOCK, 1), op(UNLOCK, 2), op(UNLOCK, 4)],
    "ragged_and_fast": [op(LOCK, 0, shape=RAGGED, pages=2), op(LOCK, 1, page=1, excl=True),
                        op(LOCK, 2, page=3, excl=True), op(UNLOCK, 0), op(UNLOCK, 2), op(UNLOCK, 1)],
    "line_full": [op(LOCK, h, page=h) for h in range(8)] + [op(UNLOCK, h) for h in range(8)],
    # a whole block on the fast path, and one across a block boundary
    "whole_block": [op(LOCK, 0, pages=4, scale=1, excl=True), op(TRY, 1, page=63),
                    op(LOCK, 2, page=60, pages=1, scale=1), op(UNLOCK, 0), op(UNLOCK, 2),
                    op(UNLOCK, 1)],
    # wide ranges close the fast path through the window: a page inside waits,
    # one outside is granted, and the window empties when the last one leaves
    "wide_window": [op(LOCK, 0, page=8, scale=2, excl=True), op(TRY, 1, page=9),
                    op(LOCK, 2, page=0), op(LOCK, 4, page=9, excl=True),
                    op(LOCK, 5, page=56, pages=4, scale=3), op(UNLOCK, 0), op(UNLOCK, 2),
                    op(UNLOCK, 4), op(UNLOCK, 5), op(TRY, 1, page=9), op(UNLOCK, 1)],
    # the table grows with fast holders in the small one, a waiter behind
    # one of them, a listed narrow holder and a wide one; later claims go
    # to the grown table (GROW is destroy with bit 7 of the page byte)
    "grow_under_holders": [op(LOCK, 0, page=3, excl=True), op(LOCK, 1, page=3),
                           op(LOCK, 2, page=5, shape=RAGGED, pages=2, excl=True),
                           op(LOCK, 3, page=8, scale=2), op(GROW, 0, a_extra=0x80),
                           op(TRY, 5, page=3), op(LOCK, 6, page=4, excl=True),
                           op(TRY, 5, page=6, excl=True), op(UNLOCK, 0), op(UNLOCK, 2),
                           op(UNLOCK, 3), op(LOCK, 5, page=5, excl=True), op(UNLOCK, 1),
                           op(UNLOCK, 5), op(UNLOCK, 6), op(GROW, 0, a_extra=0x80),
                           op(LOCK, 0, page=3), op(UNLOCK, 0), op(DESTROY, 0),
                           op(LOCK, 1, page=9, excl=True), op(GROW, 0, a_extra=0x80),
                           op(TRY, 2, page=9), op(UNLOCK, 1)],
    # ranges over blocks (a slot in each block's line): parts that keep out
    # a page, a claim refused in a later block, downgrade, and 4 and 5
    # blocks before and after growth (listed, then over blocks)
    "over_blocks": [op(LOCK, 0, page=8, pages=1, shape=BLOCKS, excl=True),
                    op(TRY, 1, page=63), op(TRY, 2, page=56, pages=2, shape=BLOCKS),
                    op(LOCK, 4, page=60, pages=2, shape=BLOCKS), op(DOWN, 0),
                    op(TRY, 5, page=9), op(UNLOCK, 5), op(UNLOCK, 0), op(UNLOCK, 4),
                    op(LOCK, 0, page=2, pages=4, shape=BLOCKS, excl=True),
                    op(LOCK, 1, page=3), op(GROW, 0, a_extra=0x80),
                    op(LOCK, 2, page=60, pages=4, shape=BLOCKS),
                    op(TRY, 4, page=61, pages=3, shape=BLOCKS, excl=True),
                    op(UNLOCK, 0), op(UNLOCK, 2), op(UNLOCK, 1),
                    op(LOCK, 5, page=60, pages=4, shape=BLOCKS, excl=True),
                    op(TRY, 6, page=8), op(UNLOCK, 5), op(UNLOCK, 6)],
    "eof_over_fast": [op(LOCK, 0, page=3), op(LOCK, 1, page=2, shape=EOF, excl=True),
                      op(TRY, 2, page=1, excl=True), op(LOCK, 4, page=4), op(UNLOCK, 0),
                      op(UNLOCK, 2), op(UNLOCK, 1), op(UNLOCK, 4)],
}
debug_seeds = {
    "debug_recursion": [op(LOCK, 0), op(LOCK, 3), op(LOCK, 0, page=1), op(TRY, 6, page=0, excl=True),
                        op(UNLOCK, 0), op(LOCK, 3), op(UNLOCK, 3)],
    "debug_other_thread": [op(LOCK, 0, excl=True), op(TRY, 1), op(LOCK, 1), op(UNLOCK, 0), op(UNLOCK, 1)],
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(out, exist_ok=True)
for name, ops in seeds.items():
    open(os.path.join(out, name), "wb").write(bytes([0]) + b"".join(ops))
for name, ops in debug_seeds.items():
    open(os.path.join(out, name), "wb").write(bytes([1]) + b"".join(ops))
open(os.path.join(out, "unknown_flag"), "wb").write(bytes([2]) + op(LOCK, 0) + op(UNLOCK, 0))
# every scenario once more on a shared region's attachment (no fast path,
# no debug mode, destroy detaches): the same semantics
for name, ops in seeds.items():
    open(os.path.join(out, "shared_" + name), "wb").write(bytes([4]) + b"".join(ops))
print(len(os.listdir(out)), "seeds in", out)
