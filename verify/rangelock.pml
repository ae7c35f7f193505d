/* SPDX-License-Identifier: MIT */
/*
 * rangelock.pml - the lock protocol of src/, version 3, as a SPIN model.
 *
 * One fast-path line with NSLOTS slots and its `closed` word, the lock's
 * window, the guard, the list in arrival order (the index is only a faster
 * way to find its members), each request's futex word, and NT threads that
 * each make NOPS random requests: a range of the pages {0}, {1} or {0,1}
 * (the last either as whole pages, which may take the fast path, or
 * "ragged", which never does, and a ragged one either narrow or wide),
 * shared or exclusive, blocking, try or timed (the deadline may fire at any
 * moment), sometimes downgraded, then unlocked.
 *
 * The two pages stand for two blocks of different groups that share the
 * line: a narrow listed request sets the group bits of its pages in
 * `closed` (one store) and counts itself in the line (guard-only); the bits
 * are cleared when the count reaches zero.  A wide one widens the window
 * [wlo, whi), one word at a time, and counts itself in wcnt; the window
 * empties (whi = 0) when wcnt reaches zero.  A claimer reads `closed` and
 * then each bound of the window in a step of its own, as the C code does.
 * With GROW, a grower process replaces the table at any moment, as
 * rl_fast_grow() does: the second table's line is closed for every listed
 * narrow request and marked draining, the first one's line is retired
 * (every bit), then the second is published; claimers read the table word
 * first, a claim in a draining line checks the first table's line too, and
 * the precise path scans both tables until the first is empty.
 * With BLOCKS, a request for {0,1} may be held over blocks, as
 * rl_fast_lock_blocks() does: a slot for each page's part, claimed and
 * checked in turn, then the window once; a refused one gives its parts
 * back as a release does.  Each slot records its part's pages (spg).
 * Each table's line has a mark (its bit in the table's marks): a claimer
 * sets it after its claim, a scan passes over an unmarked line, and a wide
 * request under the guard may tidy it: clear it if the line is empty, read
 * the line again, and put it back if a claim came in between.
 * Each step of the model is one atomic access of the C code; the guard's
 * critical sections are sequences of steps that other threads' fast paths
 * interleave with.  doc/verification.md explains why sequential consistency
 * of these steps is sound for the C11 orderings the code uses.
 *
 * Checked (verify/run.sh):
 *   safety     the shadow: no page is ever held exclusive together with any
 *              other holder (assertions), no invalid end state (no thread
 *              blocked forever: deadlock or lost wake-up);
 *   fifo       a request is granted only when no earlier waiting request
 *              that conflicts with it is listed; a fast claim only when no
 *              request is listed in its line (assertions);
 *   liveness   with -a and weak fairness: every waiting request is
 *              eventually granted or times out (LTL `granted`);
 *   debug      with DEBUG: a thread that asks for a range overlapping one
 *              it holds gets EDEADLK, and nothing deadlocks;
 *   grow       with GROW: all of safety and fifo (and liveness) while the
 *              table grows under the threads;
 *   blocks     with BLOCKS: the same with ranges held over blocks (FIFO
 *              part by part);
 *   marks      in all of them: a scan that passes over an unmarked line
 *              misses no fast holder (broken: a mark set before the claim,
 *              a tidy that does not read the line again).
 * Each has a broken variant (BROKEN_* below) that SPIN must reject.
 */

#ifndef NT
#define NT 2                    /* threads */
#endif
#ifndef NOPS
#define NOPS 2                  /* requests per thread */
#endif
#define NH (NT * 2)             /* handles: two per thread (debug nests) */
#ifndef NSLOTS
#define NSLOTS 2                /* slots in the line */
#endif

#define BLOCK 0
#define TRY 1
#define TIMED 2

#define OK 0
#define EBUSY 16
#define ETIMEDOUT 110
#define EDEADLK 35

mtype = { IDLE, WAITING, SLEEPING, HELD, FAST };

/* rangelock_t */
bool guard;                     /* the futex mutex, as a test-and-set */
/* The fast path's tables: table 0 is the first (small) one, table 1 the
 * one that replaces it when the lock grows (GROW: the grower process).
 * Each has one line: its slots, its narrow listed count, its group bits. */
byte lcount[2];                 /* narrow listed requests in the line */
byte mask[2];                   /* closed's group bits: bit k for page k */
bit cur;                        /* the lock's table word: which is current */
bool retired;                   /* table 0's line retired (every bit set) */
bool drain1;                    /* table 1's line has RL_LINE_DRAINING */
bool draining;                  /* RL_DRAINING: table 0 is scanned too (guard) */
byte wcnt;                      /* listed wide requests */
byte wlo, whi;                  /* the window, pages [wlo, whi); whi 0: empty */
byte list[NH];                  /* listed handles, oldest first */
byte nlist;
byte slot[2 * NSLOTS];          /* table t's slot j is slot[t * NSLOTS + j]:
				 * 0 free, else 1 + handle of a fast holder */
byte spg[2 * NSLOTS];           /* the pages of the range in that slot (a
				 * part of a range held over blocks) */
bool marked[2];                 /* the line's bit in table t's marks */

/* rangelock_range_t, one per handle */
byte rng[NH];                   /* pages: bit 0 = page 0, bit 1 = page 1 */
bool ex[NH];                    /* exclusive */
bool fastable[NH];              /* whole pages: may take the fast path */
bool wide[NH];                  /* closes the window, not the line */
bool blocks[NH];                /* may be held over blocks: a slot a page */
mtype st[NH] = IDLE;            /* the futex word */
bool asleep[NH];                /* in futex_wait, not yet woken */
bit htab[NH];                   /* the table of a fast holder's slot */
byte hslot2[NH];                /* over blocks: the slot of page 1's part */
byte owner[NH];                 /* acquiring thread (debug mode) */

/* the shadow of what is held, and the liveness observers */
byte rd[2];
byte wr[2];
bool waiting0;                  /* thread 0's first handle waits */

#define CONFLICT(a, b) ((rng[a] & rng[b]) != 0 && (ex[a] || ex[b]))
/* the taken slot j conflicts with pages pg of handle q */
#define SCONFLICT(j, pg, q) ((spg[j] & (pg)) != 0 && (ex[slot[j] - 1] || ex[q]))
#define LO(h) ((rng[h] & 1) -> 0 : 1)  /* first page of h */
#define HI(h) ((rng[h] & 2) -> 2 : 1)  /* one past its last */
#define IS_WAITING(a) (st[a] == WAITING || st[a] == SLEEPING)
/* table t's `closed` group bits: a retired line has them all */
#define CLOSED_BITS(t) (((t) == 0 && retired) -> 3 : mask[t])

ltl granted { [] (waiting0 -> <> !waiting0) }

inline guard_lock() { atomic { !guard -> guard = true } }
inline guard_unlock() { guard = false }

/* enter/leave the shadow; the assertion is the safety property */
inline shadow_enter(h) {
	atomic {
		k = 0;
		do
		:: k < 2 ->
			if
			:: rng[h] & (1 << k) ->
				if
				:: ex[h] -> assert(rd[k] == 0 && wr[k] == 0); wr[k]++
				:: else -> assert(wr[k] == 0); rd[k]++
				fi
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		k = 0
	}
}

inline shadow_leave(h) {
	atomic {
		k = 0;
		do
		:: k < 2 ->
			if
			:: rng[h] & (1 << k) ->
				if
				:: ex[h] -> wr[k]--
				:: else -> rd[k]--
				fi
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		k = 0
	}
}

inline shadow_downgrade(h) {
	atomic {
		k = 0;
		do
		:: k < 2 ->
			if
			:: rng[h] & (1 << k) -> wr[k]--; rd[k]++
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		k = 0
	}
}

/* ---- the precise path's helpers (guard held) -------------------------- */

/* rl_fast_phantoms_conflict: blocked := blocked, or a slot of the current
 * table, or of table 0 while it drains, conflicts with q (each slot read is
 * one seq_cst load) */
inline scan_phantoms(q) {
	j = 0;
	do
	:: j < 2 * NSLOTS ->
		/* a table's marks are loaded before its slots: an unmarked
		 * line is passed over */
		if :: j % NSLOTS == 0 -> occ = marked[j / NSLOTS] :: else -> skip fi;
		atomic {
			v = slot[j];
			if
#ifdef BROKEN_GROW_SCAN
			/* wrong: only the current table's phantoms */
			:: occ && j / NSLOTS == cur && v != 0 && SCONFLICT(j, rng[q], q) -> blocked = true
#else
			:: occ && (j / NSLOTS == cur || (j < NSLOTS && draining)) &&
			   v != 0 && SCONFLICT(j, rng[q], q) -> blocked = true
#endif
			:: else -> skip
			fi;
			v = 0
		};
		j++
	:: else -> break
	od;
	j = 0;
	occ = false
}

/* occ := a slot of table t's line is taken (rl_line_occupied: a load a
 * slot) */
inline line_occupied(t) {
	occ = false;
	j = 0;
	do
	:: j < NSLOTS -> if :: slot[t * NSLOTS + j] != 0 -> occ = true :: else -> skip fi; j++
	:: else -> break
	od;
	j = 0
}

/* rl_marks_tidy (guard held, a wide request listed): clear the mark of
 * the current table's line if it is empty, then read it again and put
 * the mark back if a claim came in between */
inline marks_tidy() {
	if
	:: marked[cur] ->
		line_occupied(cur);
		if
		:: !occ ->
			marked[cur] = false;    /* the fetch_and */
#ifndef BROKEN_TIDY
			line_occupied(cur);
			if :: occ -> marked[cur] = true :: else -> skip fi
#else
			/* wrong: a claim just before the clear stays unmarked */
			skip
#endif
		:: else -> skip
		fi;
		occ = false
	:: else -> skip
	fi
}

/* rl_line_mark, after a claim in table htab[h]: the load of the marks and,
 * if the bit is clear, the fetch_or (one step: setting a set bit changes
 * nothing, and a tidy's clear before it is followed by its second read) */
inline line_mark(h) {
#ifndef BROKEN_MARK_BEFORE
	marked[htab[h]] = true
#else
	skip
#endif
}

/* rl_fast_drain_check (guard held): once table 0 has no slot taken, stop
 * scanning it and clear table 1's draining bit */
inline drain_check() {
	if
	:: draining ->
		slow = true;
		j = 0;
		do
		:: j < NSLOTS -> if :: slot[j] != 0 -> slow = false :: else -> skip fi; j++
		:: else -> break
		od;
		j = 0;
		if :: slow -> draining = false; drain1 = false :: else -> skip fi;
		slow = false
	:: else -> skip
	fi
}

/* blocked := q, at list position pos, conflicts with an earlier listed
 * request or a phantom */
inline is_blocked(q, pos) {
	blocked = false;
	j = 0;
	do
	:: j < pos -> if :: CONFLICT(list[j], q) -> blocked = true :: else -> skip fi; j++
	:: else -> break
	od;
	scan_phantoms(q);
}

/* FIFO: q may be granted only if no earlier listed waiting request
 * conflicts with it */
inline assert_fifo(q, pos) {
	atomic {
		j = 0;
		do
		:: j < pos -> assert(!(IS_WAITING(list[j]) && CONFLICT(list[j], q))); j++
		:: else -> break
		od;
		j = 0
	}
}

/* rl_grant: exchange to HELD, wake only a sleeper */
inline grant(q) {
	atomic {
#ifdef BROKEN_WAKE
		/* wrong: wakes only a spinner, never a sleeper */
		if :: st[q] == WAITING -> asleep[q] = false :: else -> skip fi;
		st[q] = HELD
#else
		if :: st[q] == SLEEPING -> asleep[q] = false :: else -> skip fi;
		st[q] = HELD
#endif
	}
}

/* rl_queue_grant_after(from, r): re-check the waiters from `from` on that
 * overlap r */
inline grant_after(from, r) {
	i = from;
	do
	:: i < nlist ->
		q = list[i];
		if
		:: IS_WAITING(q) && (rng[q] & r) != 0 ->
			is_blocked(q, i);
			if
			:: !blocked -> assert_fifo(q, i); grant(q)
			:: else -> skip
			fi
		:: else -> skip
		fi;
		i++
	:: else -> break
	od;
	i = 0;
	q = 0;
	blocked = false
}

inline list_remove(h) {
	atomic {
		pos = 0;
		do
		:: list[pos] != h -> pos++
		:: else -> break
		od;
		j = pos;
		do
		:: j + 1 < nlist -> list[j] = list[j + 1]; j++
		:: else -> break
		od;
		nlist--;
		list[nlist] = 0;
		j = 0
	}
}

/* ---- the fast path -------------------------------------------------- */

/* rl_fast_closed_to: slow := the fast path is closed to h's range; three
 * seq_cst loads: `closed`, then the window's two bounds */
inline closed_to(h) {
	slow = (CLOSED_BITS(htab[h]) & rng[h]) != 0;
	v = whi;
	atomic { if :: LO(h) < v && wlo < HI(h) -> slow = true :: else -> skip fi; v = 0 }
}

/* the CAS on the first free slot of h's line, for pages pg: s := its
 * index, or stays NSLOTS when the line is full */
inline claim_slot(h, pg, s) {
	atomic {
		j = 0;
		do
		:: j < NSLOTS && slot[htab[h] * NSLOTS + j] != 0 -> j++
		:: else -> break
		od;
		if
		:: j < NSLOTS -> slot[htab[h] * NSLOTS + j] = h + 1; spg[htab[h] * NSLOTS + j] = pg; s = j
		:: else -> skip
		fi;
		j = 0
	}
}

inline free_slot(h, s) {
	atomic { slot[htab[h] * NSLOTS + s] = 0; spg[htab[h] * NSLOTS + s] = 0 }
}

/* rl_fast_release_slow: a fast holder left (or weakened) where the fast
 * path was closed to it (slow): re-check the waiters over it under the
 * guard; a replaced table may have drained */
inline phantom_left(h) {
	if
	:: slow ->
		guard_lock();
		grant_after(0, rng[h]);
		drain_check();
		guard_unlock()
	:: else -> skip
	fi;
	slow = false
}

/* rl_fast_release: store the slot (seq_cst), then read `closed` and the
 * window; if a listed request may wait for h, re-check under the guard */
inline fast_release(h, s) {
	free_slot(h, s);
#ifndef BROKEN_RELEASE
	closed_to(h);
	phantom_left(h)
#endif
}

/* assert_no_listed_pages(pg, w): FIFO for a fast claim of pages pg that
 * stands: no listed request of kind w (wide or narrow) overlaps it, so
 * none can be passed */
inline assert_no_listed_pages(pg, w) {
	j = 0;
	do
	:: j < nlist -> assert(wide[list[j]] != w || (rng[list[j]] & (pg)) == 0); j++
	:: else -> break
	od;
	j = 0
}

/* assert_no_listed(h, w): the same for h's pages */
inline assert_no_listed(h, w) {
	j = 0;
	do
	:: j < nlist -> assert(wide[list[j]] != w || (rng[list[j]] & rng[h]) == 0); j++
	:: else -> break
	od;
	j = 0
}

/* rl_fast_close: a listed request closes the fast path where it lies */
inline fast_close(h) {
	if
	:: wide[h] ->
		wcnt++;
		if :: wcnt == 1 || LO(h) < wlo -> wlo = LO(h) :: else -> skip fi;
#ifndef BROKEN_WINDOW
		if :: HI(h) > whi -> whi = HI(h) :: else -> skip fi;
#endif
		/* every RL_TIDY_EVERY wide requests: any of them */
		if :: marks_tidy() :: skip fi
	:: else ->
		lcount[cur]++;
		mask[cur] = mask[cur] | rng[h]
	fi
}

/* rl_fast_reopen: it leaves */
inline fast_reopen(h) {
	if
	:: wide[h] ->
		wcnt--;
		if :: wcnt == 0 -> whi = 0 :: else -> skip fi
	:: else ->
		lcount[cur]--;
#ifdef BROKEN_MASK
		/* wrong: clears its own bits while others may still need them */
		mask[cur] = mask[cur] & (3 - rng[h])
#else
		if :: lcount[cur] == 0 -> mask[cur] = 0 :: else -> skip fi
#endif
	fi
}

/* rl_fast_lock + rl_fast_settle: result := OK (held through slot s) or
 * gave_up (nothing claimed) */
inline fast_lock(h) {
	gave_up = true;
	s = NSLOTS;
	if
#ifdef DEBUG
	:: false ->                     /* debug locks have no table */
#else
	:: fastable[h] ->
#endif
		htab[h] = cur;          /* the acquire load of the table word */
		/* the relaxed peek at `closed` may read any value: go on to
		 * claim, or give up at once */
#ifdef BROKEN_MARK_BEFORE
		/* wrong: marked before the claim, which a tidy may not see */
		marked[cur] = true;
#endif
		if
		:: claim_slot(h, rng[h], s)
		:: skip
		fi;
		if
		:: s < NSLOTS ->
			line_mark(h);
			/* read the other slots, then `closed`: seq_cst loads */
			refused = false;
			j = 0;
			do
			:: j < NSLOTS ->
#ifndef BROKEN_SLOTS
				atomic {
					v = slot[htab[h] * NSLOTS + j];
					if
					:: j != s && v != 0 &&
					   SCONFLICT(htab[h] * NSLOTS + j, rng[h], h) -> refused = true
					:: else -> skip
					fi;
					v = 0
				};
#endif
				j++
			:: else -> break
			od;
			j = 0;
			/* then `closed` and the window, a load each.
			 * Property C: a claim that stands met no listed
			 * request overlapping it at the moment it read the
			 * word that rules that kind out, so it passes no
			 * waiting request (FIFO); one listed later saw the
			 * claim as a phantom. */
			atomic {
#ifndef BROKEN_CLOSED
				if :: (CLOSED_BITS(htab[h]) & rng[h]) != 0 -> refused = true :: else -> skip fi;
#endif
				if :: !refused -> assert_no_listed(h, false) :: else -> skip fi;
				/* the same load: the draining bit */
				slow = htab[h] == 1 && drain1
			};
			atomic {
				v = whi;
				if
				:: !refused && LO(h) >= v -> assert_no_listed(h, true)
				:: else -> skip
				fi
			};
			atomic {        /* decided here only if whi did not */
				if
				:: !refused && LO(h) < v && wlo < HI(h) -> refused = true
				:: !refused && LO(h) < v && wlo >= HI(h) -> assert_no_listed(h, true)
				:: else -> skip
				fi;
				v = 0
			};
			/* rl_old_line_conflicts: while table 1 drains, a claim
			 * there checks table 0's line too */
#ifndef BROKEN_GROW_DRAIN
			j = 0;
			do
			:: slow && !refused && j < NSLOTS ->
				atomic {
					v = slot[j];
					if :: v != 0 && SCONFLICT(j, rng[h], h) -> refused = true :: else -> skip fi;
					v = 0
				};
				j++
			:: else -> break
			od;
			j = 0;
#endif
			slow = false;
			if
			:: refused -> fast_release(h, s)
			:: else -> st[h] = FAST; hslot = s; gave_up = false
			fi;
			refused = false
		:: else -> skip
		fi;
		s = 0
	:: else -> skip
	fi
}

/* ---- a range held over blocks (rl_fast_lock_blocks) ----------------- */

/* The model's pages are two blocks that share the line (C: a range whose
 * blocks' lines coincide, across a group's edge; distinct lines differ
 * only in which word holds each part's slot and group bit).  Each part is
 * claimed and checked as a one-block claim is, page 0's first; the window
 * is read once, after the last claim. */

/* after part pg's claim in slot s: read the other slots, then `closed`
 * (its group bit: page pg's), then table 0's line while table 1 drains;
 * refused := something there refuses it */
inline part_check(h, pg, s) {
	j = 0;
	do
	:: j < NSLOTS ->
#ifndef BROKEN_BLOCKS_PART
		atomic {
			v = slot[htab[h] * NSLOTS + j];
			if
			:: j != s && v != 0 && SCONFLICT(htab[h] * NSLOTS + j, pg, h) -> refused = true
			:: else -> skip
			fi;
			v = 0
		};
#else
		/* wrong: the second part is not checked against the slots */
		atomic {
			v = slot[htab[h] * NSLOTS + j];
			if
			:: pg == 1 && j != s && v != 0 && SCONFLICT(htab[h] * NSLOTS + j, pg, h) -> refused = true
			:: else -> skip
			fi;
			v = 0
		};
#endif
		j++
	:: else -> break
	od;
	j = 0;
	atomic {
		if :: (CLOSED_BITS(htab[h]) & pg) != 0 -> refused = true :: else -> skip fi;
		/* property C, part by part: no listed narrow request over it */
		if :: !refused -> assert_no_listed_pages(pg, false) :: else -> skip fi;
		slow = htab[h] == 1 && drain1
	};
	j = 0;
	do
	:: slow && !refused && j < NSLOTS ->
		atomic {
			v = slot[j];
			if :: v != 0 && SCONFLICT(j, pg, h) -> refused = true :: else -> skip fi;
			v = 0
		};
		j++
	:: else -> break
	od;
	j = 0;
	slow = false
}

/* rl_blocks_store (unlock, give back): free the slots of the parts claimed
 * (pages `claimed`), then read their `closed` bits and the window over
 * h's whole range; if a listed request may wait for h, re-check under the
 * guard, once */
inline blocks_release(h, claimed) {
	if :: claimed & 1 -> free_slot(h, hslot) :: else -> skip fi;
	if :: claimed & 2 -> free_slot(h, hslot2[h]) :: else -> skip fi;
#ifndef BROKEN_BLOCKS_GIVEBACK
	slow = (CLOSED_BITS(htab[h]) & claimed) != 0;
#else
	/* wrong: a part given back reads only the window */
	slow = false;
#endif
	v = whi;
	atomic { if :: LO(h) < v && wlo < HI(h) -> slow = true :: else -> skip fi; v = 0 };
	phantom_left(h)
}

/* result := OK (held: hslot for page 0, hslot2[h] for page 1) or gave_up */
inline blocks_lock(h) {
	gave_up = true;
	htab[h] = cur;                  /* the acquire load of the table word */
	/* the relaxed peeks at the window and at `closed` may read any value:
	 * go on to claim, or give up at once */
	if
#ifdef DEBUG
	:: false ->                     /* debug locks have no table */
#else
	:: true ->
#endif
		refused = false;
		s = NSLOTS;
		claim_slot(h, 1, s);
		if
		:: s == NSLOTS -> refused = true; k = 0     /* nothing claimed */
		:: else -> hslot = s; k = 1; line_mark(h); part_check(h, 1, s)
		fi;
		if
		:: !refused ->
			s = NSLOTS;
			/* the peek at `closed` before the claim: any value */
			if
			:: claim_slot(h, 2, s)
			:: skip
			fi;
			if
			:: s == NSLOTS -> refused = true
			:: else -> hslot2[h] = s; k = 3; line_mark(h); part_check(h, 2, s)
			fi
		:: else -> skip
		fi;
#ifndef BROKEN_BLOCKS_WINDOW
		/* the window, after the last claim: a load a bound */
		if
		:: !refused ->
			atomic {
				v = whi;
				if
				:: LO(h) >= v -> assert_no_listed(h, true)
				:: else -> skip
				fi
			};
			atomic {
				if
				:: LO(h) < v && wlo < HI(h) -> refused = true
				:: LO(h) < v && wlo >= HI(h) -> assert_no_listed(h, true)
				:: else -> skip
				fi;
				v = 0
			}
		:: else -> skip
		fi;
#endif
		if
		:: !refused -> st[h] = FAST; gave_up = false
		:: refused && k != 0 -> blocks_release(h, k); hslot = 0; hslot2[h] = 0
		:: refused && k == 0 -> skip    /* nothing claimed, nothing to give back */
		fi;
		refused = false;
		k = 0;
		s = 0
	:: true -> skip
	fi
}

/* ---- a lock call ---------------------------------------------------- */

inline lock(h, how) {
	if
	:: blocks[h] -> blocks_lock(h)
	:: else -> fast_lock(h)
	fi;
	if
	:: !gave_up -> result = OK
	:: else ->
		guard_lock();
		/* debug mode's recursion check */
		result = OK;
#ifdef DEBUG
#ifndef BROKEN_DEBUG
		j = 0;
		do
		:: j < nlist ->
			if
			:: owner[list[j]] == me && (rng[list[j]] & rng[h]) != 0 &&
			   !IS_WAITING(list[j]) -> result = EDEADLK
			:: else -> skip
			fi;
			j++
		:: else -> break
		od;
		j = 0;
#endif
#endif
		if
		:: result == EDEADLK -> guard_unlock()
		:: else ->
			fast_close(h);
			atomic {                         /* listed conflicts */
				blocked = false;
				j = 0;
				do
				:: j < nlist -> if :: CONFLICT(list[j], h) -> blocked = true :: else -> skip fi; j++
				:: else -> break
				od;
				j = 0
			};
			if
			:: !blocked ->                   /* then the phantoms */
				scan_phantoms(h)
			:: else -> skip
			fi;
#ifdef BROKEN_WINDOW
			/* wrong: the window's upper bound after the scan */
			if :: wide[h] && HI(h) > whi -> whi = HI(h) :: else -> skip fi;
#endif
			owner[h] = me;
			if
			:: !blocked ->
				assert_fifo(h, nlist);
				atomic { list[nlist] = h; nlist++; st[h] = HELD };
				guard_unlock();
				result = OK
			:: blocked && how == TRY ->
				fast_reopen(h);
				guard_unlock();
				result = EBUSY
			:: blocked && how == TIMED ->    /* deadline already past */
				fast_reopen(h);
				guard_unlock();
				result = ETIMEDOUT
			:: blocked && how != TRY ->
				atomic {
					list[nlist] = h; nlist++; st[h] = WAITING;
					if :: h == 0 -> waiting0 = true :: else -> skip fi
				};
				guard_unlock();
				wait_granted(h, how)
			fi;
			blocked = false
		fi
	fi
}

/* rl_wait_granted: CAS WAITING -> SLEEPING, futex_wait, maybe time out */
inline wait_granted(h, how) {
	atomic { if :: st[h] == WAITING -> st[h] = SLEEPING :: else -> skip fi };
	do
	:: st[h] == HELD -> result = OK; break
	:: st[h] != HELD ->
		/* futex_wait(word, SLEEPING): sleeps only if the word is SLEEPING */
		atomic { if :: st[h] == SLEEPING -> asleep[h] = true :: else -> skip fi };
		if
		:: !asleep[h] -> skip                     /* woken, or never slept */
		:: how == TIMED ->                         /* the deadline fires */
			asleep[h] = false;
			/* rl_withdraw */
			guard_lock();
			if
			:: st[h] == HELD -> guard_unlock(); result = OK
			:: else ->
				list_remove(h);
				st[h] = IDLE;
#ifndef BROKEN_TIMEOUT
				grant_after(pos, rng[h]);
#endif
				pos = 0;
				fast_reopen(h);
				guard_unlock();
				result = ETIMEDOUT
			fi;
			break
		fi
	od;
	if :: h == 0 -> waiting0 = false :: else -> skip fi
}

inline unlock(h) {
	if
	:: st[h] == FAST && blocks[h] ->
		st[h] = IDLE;
		blocks_release(h, 3)
	:: st[h] == FAST && !blocks[h] ->
		st[h] = IDLE;
		fast_release(h, hslot)
	:: else ->
		guard_lock();
		list_remove(h);
		st[h] = IDLE;
		grant_after(pos, rng[h]);
		pos = 0;
		fast_reopen(h);
		guard_unlock()
	fi
}

inline downgrade(h) {
	if
	:: st[h] == FAST ->
		/* the slot value loses its exclusive bit: one seq_cst store */
		ex[h] = false;
		closed_to(h);
		phantom_left(h)
	:: else ->
		guard_lock();
		ex[h] = false;
		pos = 0;
		do
		:: list[pos] != h -> pos++
		:: else -> break
		od;
		grant_after(pos + 1, rng[h]);
		pos = 0;
		guard_unlock()
	fi
}

proctype thread(byte me)
{
	byte h, h2, i, j, k, q, v, s, pos, hslot, how, result, ops;
	bool blocked, refused, gave_up, slow, occ;

	h = me * 2;
	h2 = h + 1;
	do
	:: ops < NOPS ->
		if
		:: rng[h] = 1; fastable[h] = true; wide[h] = false; blocks[h] = false
		:: rng[h] = 2; fastable[h] = true; wide[h] = false; blocks[h] = false
#ifndef SINGLE_PAGES
		:: rng[h] = 3; fastable[h] = false; wide[h] = false; blocks[h] = false
		:: rng[h] = 3; fastable[h] = false; wide[h] = true; blocks[h] = false
#endif
#ifdef BLOCKS
		/* over blocks: listed narrow (2 or 3 blocks) or wide (4 or 5)
		 * when the claims are given back */
		:: rng[h] = 3; fastable[h] = false; wide[h] = false; blocks[h] = true
		:: rng[h] = 3; fastable[h] = false; wide[h] = true; blocks[h] = true
#endif
#ifdef WIDE_FAST
		:: rng[h] = 3; fastable[h] = true; wide[h] = false; blocks[h] = false
#endif
#ifdef RAGGED_SINGLE
		:: rng[h] = 1; fastable[h] = false; wide[h] = false; blocks[h] = false
#endif
		fi;
		if :: ex[h] = false :: ex[h] = true fi;
		if
		:: how = BLOCK
#ifndef NO_TRY
		:: how = TRY
#endif
#ifndef NO_TIMED
		:: how = TIMED
#endif
		fi;
		lock(h, how);
		assert(result == OK || result == EBUSY || result == ETIMEDOUT);
		assert(result != EBUSY || how == TRY);
		assert(result != ETIMEDOUT || how == TIMED);
		if
		:: result == OK ->
			shadow_enter(h);
#ifdef DEBUG
			/* ask again, overlapping: debug mode must refuse at once */
			if
			:: true ->
				rng[h2] = rng[h] | 1; fastable[h2] = false; wide[h2] = false;
				if :: ex[h2] = false :: ex[h2] = true fi;
				lock(h2, BLOCK);
				assert(result == EDEADLK);
				if :: result == OK -> unlock(h2) :: else -> skip fi
			:: true -> skip
			fi;
#endif
			if
			:: ex[h] ->
				shadow_downgrade(h);
				downgrade(h)
			:: true -> skip
			fi;
			shadow_leave(h);
			unlock(h)
		:: else -> skip
		fi;
		atomic { result = OK; how = BLOCK; hslot = 0 };
		ops++
	:: else -> break
	od
}

/* rl_fast_grow: under the guard, table 1 replaces table 0, at any moment */
proctype grower()
{
	byte i, j;
	bool slow;

	guard_lock();
	atomic {        /* table 1 is not yet published: one step */
#ifndef BROKEN_GROW_RECLOSE
		i = 0;
		do
		:: i < nlist ->
			if
			:: !wide[list[i]] ->
				lcount[1]++;
				mask[1] = mask[1] | rng[list[i]]
			:: else -> skip
			fi;
			i++
		:: else -> break
		od;
		i = 0;
#endif
		drain1 = true
	};
#ifdef BROKEN_GROW_ORDER
	/* wrong: published before table 0 is retired */
	cur = 1;
	retired = true;
#else
#ifndef BROKEN_GROW_RETIRE
	retired = true;                 /* the retiring stores, then the fence */
#endif
	cur = 1;                        /* the release store of the table word */
#endif
	draining = true;
	drain_check();
	guard_unlock()
}

init {
	byte t;

	atomic {
		t = 0;
		do
		:: t < NT -> run thread(t); t++
		:: else -> break
		od;
#ifdef GROW
		run grower()
#endif
	}
}
