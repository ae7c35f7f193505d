/* SPDX-License-Identifier: MIT */
/*
 * shared.pml - a lock that processes share (src/rl_shared.c), with process
 * death, as a SPIN model.
 *
 * NP processes share a pool of NN request nodes, the guard, the listed
 * requests in arrival order (the index is only a faster way to find them),
 * the dead ranges, and the fast path: a line with a slot a process and its
 * `closed` count (both pages are in one block, so one line and one group).
 * Each makes NOPS requests for the pages {0}, {1} or {0,1}, shared or
 * exclusive, blocking or try.  First the fast path (rl_shared_fast_lock()):
 * unless the line is closed (a peek), it claims its slot, naming itself,
 * then reads the line; if another slot conflicts or the line is closed it
 * gives the slot back (re-checking the waiters under the guard if the line
 * was closed) and goes on; otherwise it holds through its slot and releases
 * it the same way.  The Dekker argument between claims and closes is
 * rangelock.pml's; here the reads after a claim are one step.  Otherwise,
 * under the guard it takes a free node (the code checks that the node it
 * pops is free: an assertion here), closes the line, admits it (held if it
 * conflicts with no slot and no listed request, else waiting, or refused
 * for a try, reopening), and a waiter waits for its node to be held; it
 * holds the range (the shadow), then unlocks under the guard, reopening,
 * granting every waiter after it that nothing blocks any more, one at a
 * time, and frees its node.
 *
 * A killer kills up to DEATHS processes, each at any moment (between any
 * two steps: inside a guard section, between a grant and the next one,
 * holding, waiting).  A dead process stops; what it held stays as it left
 * it, the guard included.  Nobody is told; instead:
 *   - a process waiting for the guard may take it over when its holder is
 *     dead (the code's CAS from the word the dead holder left, after a
 *     10 ms sleep), and then recovers;
 *   - a waiter may at any moment (its 10 ms polls) take the guard and, if
 *     the owner of something that blocks it is dead, recover;
 *   - a refused try does the same once, and tries again.
 * Recovery (the code rebuilds everything from the nodes and slots, so a
 * recovery cut short by a death is redone whole by the next one), in the
 * code's three steps: (1) the nodes of the dead are freed, an exclusive
 * range a dead process held and had returned from locking (seen) becomes a
 * dead range, as does a dead process's exclusive slot (claimed counts as
 * held, as for a robust mutex), the living's nodes stay (its own idle node
 * too), and the line's count is rebuilt from the listed requests and the
 * dead ranges; (2) the dead's slots are freed; (3) every waiter nothing
 * blocks is granted.  A dead range closes the line; a grant over one tells
 * the granted request (EOWNERDEAD); an exclusive one, which can repair it,
 * also forgets the dead range and reopens, a shared one leaves it for the
 * next grant.
 *
 * Checked (verify/run.sh):
 *   safety    no page held exclusive with another living holder (the
 *             shadow); at most one living process in a guard section; a
 *             node popped from the free nodes is free, and no node is
 *             listed and free at once; a grant is told
 *             exactly when its range overlaps what a dead process held
 *             exclusive after its lock call returned, or through a slot
 *             (a ghost recorded at the kill), so never twice and never
 *             missed, and a fast hold never overlaps such a ghost; no
 *             invalid end state;
 *   liveness  with -a and weak fairness: every process that does not die
 *             finishes all its requests (LTL `finish`).
 * Broken variants, each rejected:
 *   BROKEN_NO_RECOVERY  waiters never recover: a dead holder blocks them;
 *   BROKEN_FREE_OWN     recovery frees the living's idle nodes too (the
 *                       bug stress_processes found: a try's own node);
 *   BROKEN_NO_DEAD_RANGE  recovery frees a dead exclusive holder's node
 *                       without a dead range: nobody is told;
 *   BROKEN_TAKEOVER     a guard waiter takes the guard from a live holder;
 *   BROKEN_SLOTS_KEPT   recovery does not free the dead's slots: a dead fast
 *                       holder blocks its waiters for ever;
 *   BROKEN_NO_RECLOSE   dead ranges do not close the line: a fast claim
 *                       over one holds it, untold (rejected only with
 *                       NOPS=2, which run.sh runs only for the broken variants);
 *   BROKEN_NO_PHANTOM_REAP  waiters look only at listed blockers' owners:
 *                       a dead fast holder blocks them for ever;
 *   BROKEN_SHARED_FORGETS  a shared grant forgets the dead range too: the
 *                       next grant over it reads what nobody repaired,
 *                       untold (NOPS=2, as BROKEN_NO_RECLOSE).
 */

#ifndef NP
#define NP 2
#endif
#ifndef NOPS
#define NOPS 1
#endif
#ifndef DEATHS
#define DEATHS 1
#endif
#define NN (NP + 1)   /* one more node than requests: a freed one is reused */
#define NOBODY 255

/* node states, as enum rl_state */
#define FREE 0
#define IDLE 1
#define WAITING 2
#define HELD 3

byte nstate[NN];        /* all FREE */
byte nowner[NN];
byte nseq[NN];
bit  nlo[NN];           /* pages [nlo, nhi] */
bit  nhi[NN];
bit  nexcl[NN];
bit  nseen[NN];         /* its lock call returned (rl_shared_handle) */
bit  ntold[NN];         /* granted over a dead range (owner_died) */
bit  onfree[NN];        /* on the free nodes; set in init */

byte guard = 0;         /* 0, or the holder + 1 */
bit  ing[NP];           /* ghost: in a guard section */
bit  dead[NP];
bit  kill[NP];
byte deaths = 0;
byte arrivals = 0;
/* the dead ranges (rl_dead_range_add()): at most one a death */
bit  dused[DEATHS];
bit  dlo[DEATHS];
bit  dhi[DEATHS];
/* ghost: what a dead process held exclusive (recorded at the moment it is
 * killed): certain if its lock call had returned or its slot's claim had
 * been decided; a slot claimed and not (or not yet) kept counts too, as
 * the code's recovery counts it, but uncertain */
bit  gused[DEATHS];
bit  gcert[DEATHS];
bit  glo[DEATHS];
bit  ghi[DEATHS];
byte mynode[NP];        /* ghost: each process's node, or NOBODY */
/* the fast path's line: a slot a process, claiming pages [slo, shi] */
bit  sused[NP];
bit  slo[NP];
bit  shi[NP];
bit  sexcl[NP];
bit  sheld[NP];         /* ghost: the claim was kept (a fast hold) */
byte closed = 0;        /* listed requests and dead ranges: the count */
byte readers[2];        /* the shadow: living holders of each page */
bit  writer[2];
bit  incs[NP];
bit  cs_lo[NP];
bit  cs_hi[NP];
bit  cs_excl[NP];
bit  done[NP];

ltl finish { <> ((done[0] || dead[0]) && (done[1] || dead[1]) &&
		 (NP < 3 || done[NP - 1] || dead[NP - 1])) }

#define OVERLAPS(a, b) (nlo[a] <= nhi[b] && nlo[b] <= nhi[a])
#define CONFLICT(a, b) (OVERLAPS(a, b) && (nexcl[a] || nexcl[b]))
#define LISTED(n) (nstate[n] == WAITING || nstate[n] == HELD)
/* slot s conflicts with node n (a phantom: earlier than every listed one) */
#define S_CONFLICT(s, n) (sused[s] && slo[s] <= nhi[n] && nlo[n] <= shi[s] && \
			  (sexcl[s] || nexcl[n]))

/* the killer: any process, at any moment, up to DEATHS times */
active proctype killer()
{
	byte v, n;

	do
	:: deaths < DEATHS ->
		select(v : 0 .. NP - 1);
end_kill:	/* a victim that finishes first: nothing left to kill */
		atomic {
			!dead[v] && !done[v] ->
			kill[v] = 1;
			dead[v] = 1;
			n = mynode[v];
			if
			:: n != NOBODY && nstate[n] == HELD && nexcl[n] && nseen[n] ->
				gused[deaths] = 1;
				gcert[deaths] = 1;
				glo[deaths] = nlo[n];
				ghi[deaths] = nhi[n]
			:: sused[v] && sexcl[v] ->
				gused[deaths] = 1;
				gcert[deaths] = sheld[v];
				glo[deaths] = slo[v];
				ghi[deaths] = shi[v]
			:: else -> skip
			fi;
			deaths++
		}
	:: break
	od
}

/* does node n conflict with a listed node earlier than it (for a new
 * request: with any listed node)? */
inline blocked(n, before, res)
{
	res = 0;
	j = 0;
	do
	:: j < NN ->
		if
		:: j != n && LISTED(j) && nseq[j] < before && CONFLICT(j, n) -> res = 1
		:: else -> skip
		fi;
		j++
	:: else -> break
	od;
	j = 0;
	do
	:: j < NP ->
		if :: S_CONFLICT(j, n) -> res = 1 :: else -> skip fi;
		j++
	:: else -> break
	od;
	j = 0
}

#define D_OVERLAPS(d, n) (dlo[d] <= nhi[n] && nlo[n] <= dhi[d])
#define G_OVERLAPS(d, n) (glo[d] <= nhi[n] && nlo[n] <= ghi[d])

/* a grant: told only when it overlaps a ghost, and always when it
 * overlaps a certain one; an exclusive told grant repairs: the dead ranges
 * and the ghosts it overlaps are forgotten, so no grant after it is told
 * of them, and every grant before it (shared ones) is.  (An uncertain
 * ghost's claim may have been refused after this grant was decided: it is
 * told to a later one.) */
inline grant(n)
{
	d_step {
		ntold[n] = 0;
		gt = 0;
		gc = 0;
		d = 0;
		do
		:: d < DEATHS ->
			if
			:: dused[d] && D_OVERLAPS(d, n) ->
				ntold[n] = 1;
#ifndef BROKEN_SHARED_FORGETS
				if
				:: nexcl[n] ->
#endif
					dused[d] = 0;
					closed--   /* rl_fast_reopen() of it */
#ifndef BROKEN_SHARED_FORGETS
				:: else -> skip
				fi
#endif
			:: else -> skip
			fi;
			if
			:: gused[d] && G_OVERLAPS(d, n) -> gt = 1; gc = gc | gcert[d]
			:: else -> skip
			fi;
			d++
		:: else -> break
		od;
		assert(!ntold[n] || gt);
		assert(!gc || ntold[n]);
		d = 0;
		do
		:: d < DEATHS ->
			if
			:: ntold[n] && nexcl[n] && gused[d] && G_OVERLAPS(d, n) ->
				gused[d] = 0
			:: else -> skip
			fi;
			d++
		:: else -> break
		od;
		assert(!onfree[n]);   /* no node both held and free */
		d = 0;
		gt = 0;
		gc = 0;
		nstate[n] = HELD
	}
}

/* rl_fast_free_slots() */
inline free_dead_slots()
{
	k = 0;
	do
	:: k < NP -> if :: sused[k] && dead[k] -> sused[k] = 0 :: else -> skip fi; k++
	:: else -> break
	od;
	k = 0
}

/* every waiter that nothing blocks any more, one at a time */
inline grant_unblocked()
{
	k = 0;
	do
	:: k < NN ->
		if
		:: nstate[k] == WAITING ->
			blocked(k, nseq[k], b);
			if :: !b -> grant(k) :: else -> skip fi
		:: else -> skip
		fi;
		k++
	:: else -> break
	od
}

/* a new dead range [lo, hi] (rl_dead_range_add()) */
inline dead_range_add(lo, hi)
{
	d = 0;
	do
	:: d < DEATHS && dused[d] -> d++
	:: d < DEATHS && !dused[d] -> break
	:: d == DEATHS -> break
	od;
	assert(d < DEATHS);
	dused[d] = 1;
	dlo[d] = lo;
	dhi[d] = hi;
	d = 0
}

inline recover()
{
	d_step {
		k = 0;
		do
		:: k < NN ->
			if
			:: nstate[k] != FREE && dead[nowner[k]] ->
#ifndef BROKEN_NO_DEAD_RANGE
				if
				:: nstate[k] == HELD && nexcl[k] && nseen[k] ->
					dead_range_add(nlo[k], nhi[k])
				:: else -> skip
				fi;
#endif
				nstate[k] = FREE;
				onfree[k] = 1
#ifdef BROKEN_FREE_OWN
			:: nstate[k] == IDLE && !dead[nowner[k]] ->
				nstate[k] = FREE;
				onfree[k] = 1
#endif
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		/* the dead's exclusive slots (rl_fast_dead_slots()) */
		k = 0;
		do
		:: k < NP ->
			if
			:: sused[k] && dead[k] && sexcl[k] -> dead_range_add(slo[k], shi[k])
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		k = 0
	}
	d_step {
		/* rl_fast_reclose(): what is listed, and the dead ranges */
		closed = 0;
		k = 0;
		do
		:: k < NN -> if :: LISTED(k) -> closed++ :: else -> skip fi; k++
		:: else -> break
		od;
#ifndef BROKEN_NO_RECLOSE
		k = 0;
		do
		:: k < DEATHS -> if :: dused[k] -> closed++ :: else -> skip fi; k++
		:: else -> break
		od;
#endif
		k = 0
	}
#ifndef BROKEN_SLOTS_KEPT
	/* a step of its own: claims may come between */
	d_step { free_dead_slots() }
#endif
	grant_unblocked()
}

inline guard_lock()
{
	b = 0;
	do
	:: atomic { guard == 0 -> guard = me + 1; break }
#ifndef BROKEN_TAKEOVER
	:: atomic { guard != 0 && dead[guard - 1] -> guard = me + 1; b = 1; break }
#else
	:: atomic { guard != 0 && guard != me + 1 -> guard = me + 1; b = 1; break }
#endif
	od;
	/* at most one living process in a guard section */
	atomic {
		k = 0;
		do
		:: k < NP -> assert(k == me || !ing[k] || dead[k]); k++
		:: else -> break
		od;
		ing[me] = 1;
		k = 0
	}
	/* a takeover from a dead holder recovers at once */
	if :: b -> recover() :: else -> skip fi;
	b = 0
}

inline guard_unlock()
{
	atomic { ing[me] = 0; guard = 0 }
}

/* are the owners of what blocks n alive?  If not, recover */
inline reap(n, before)
{
	b = 0;
	j = 0;
	do
	:: j < NN ->
		if
		:: j != n && LISTED(j) && nseq[j] < before && CONFLICT(j, n) &&
		   dead[nowner[j]] -> b = 1
		:: else -> skip
		fi;
		j++
	:: else -> break
	od;
#ifndef BROKEN_NO_PHANTOM_REAP
	j = 0;
	do   /* rl_fast_phantom_owners() */
	:: j < NP -> if :: S_CONFLICT(j, n) && dead[j] -> b = 1 :: else -> skip fi; j++
	:: else -> break
	od;
#endif
	j = 0;
#ifndef BROKEN_NO_RECOVERY
	if :: b -> recover() :: else -> skip fi
#endif
}

/*
 * When a waiter polls.  For safety, at any moment.  For liveness, only
 * while something that blocks it belongs to a dead process, or a dead
 * process holds the guard (its poll takes it over and recovers): a poll
 * that finds neither changes nothing, and polls at any moment would let a
 * poller take the guard for ever, under weak fairness, from a holder that
 * waits for it (the code's polls are 10 ms apart).
 */
#ifdef LIVE
#define POLL_WHEN && (dead_blocker(n) || (guard != 0 && dead[guard - 1]) || \
		      unblocked(n))
#else
#define POLL_WHEN
#endif
#define BLOCKS_DEAD(j, n) (j != n && LISTED(j) && nseq[j] < nseq[n] && \
			   CONFLICT(j, n) && dead[nowner[j]])
#define SLOT_DEAD(s, n) (S_CONFLICT(s, n) && dead[s])
#define BLOCKS(j, n) (j != n && LISTED(j) && nseq[j] < nseq[n] && CONFLICT(j, n))
#if NN == 3
#define dead_blocker(n) (BLOCKS_DEAD(0, n) || BLOCKS_DEAD(1, n) || \
			 BLOCKS_DEAD(2, n) || SLOT_DEAD(0, n) || SLOT_DEAD(1, n))
#define unblocked(n) (!BLOCKS(0, n) && !BLOCKS(1, n) && !BLOCKS(2, n) && \
		      !S_CONFLICT(0, n) && !S_CONFLICT(1, n))
#else
#define dead_blocker(n) (BLOCKS_DEAD(0, n) || BLOCKS_DEAD(1, n) || \
			 BLOCKS_DEAD(2, n) || BLOCKS_DEAD(3, n) || \
			 SLOT_DEAD(0, n) || SLOT_DEAD(1, n) || SLOT_DEAD(2, n))
#define unblocked(n) (!BLOCKS(0, n) && !BLOCKS(1, n) && !BLOCKS(2, n) && \
		      !BLOCKS(3, n) && !S_CONFLICT(0, n) && !S_CONFLICT(1, n) && \
		      !S_CONFLICT(2, n))
#endif

/* hold [lo, hi]: no living holder in a conflicting mode (the shadow) */
inline hold()
{
	atomic {
		k = 0;
		do
		:: k < NP ->
			assert(k == me || !incs[k] || dead[k] ||
			       !(cs_lo[k] <= hi && lo <= cs_hi[k]) ||
			       !(excl || cs_excl[k]));
			k++
		:: else -> break
		od;
		incs[me] = 1; cs_lo[me] = lo; cs_hi[me] = hi; cs_excl[me] = excl
	}
	incs[me] = 0
}

/* a slot stored, then the line read: if it was closed, the waiters are
 * re-checked under the guard (rl_fast_release_slow()) */
inline slot_release()
{
	atomic { sused[me] = 0; sheld[me] = 0 };
	if
	:: closed > 0 -> guard_lock(); grant_unblocked(); guard_unlock()
	:: else -> skip
	fi
}

proctype process(byte me)
{
	byte op, n = NOBODY, j, k, d;
	bit b, try, lo, hi, excl, gt, gc, given;

	{
	for (op : 1 .. NOPS) {
		if
		:: lo = 0; hi = 0
		:: lo = 1; hi = 1
		:: lo = 0; hi = 1
		fi;
		if :: excl = 0 :: excl = 1 fi;
		if :: try = 0 :: try = 1 fi;

		/* the fast path: unless the peek finds the line closed, claim
		 * the slot, then read the line */
		if
		:: closed > 0 -> given = 1
		:: true ->
			atomic { sused[me] = 1; slo[me] = lo; shi[me] = hi; sexcl[me] = excl };
			atomic {
				given = closed > 0;
				k = 0;
				do
				:: k < NP ->
					if
					:: k != me && sused[k] && slo[k] <= hi && lo <= shi[k] &&
					   (sexcl[k] || excl) -> given = 1
					:: else -> skip
					fi;
					k++
				:: else -> break
				od;
				k = 0;
				/* held through the slot: never over what a dead
				 * process held exclusive (a dead range closes the
				 * line) */
				d = 0;
				do
				:: d < DEATHS ->
					assert(given || !(gused[d] && glo[d] <= hi && lo <= ghi[d]));
					d++
				:: else -> break
				od;
				d = 0;
				sheld[me] = !given
			};
			if :: given -> slot_release() :: else -> skip fi   /* given back */
		fi;
		if
		:: !given ->
			hold();
			slot_release();
			goto next
		:: else -> given = 0
		fi;

		guard_lock();
		/* pop a free node: the code checks that it is free */
		atomic {
			n = 0;
			do
			:: n < NN && !onfree[n] -> n++
			:: n < NN && onfree[n] -> break
			:: n == NN -> break
			od;
			assert(n < NN);             /* NN nodes, NP requests */
			assert(nstate[n] == FREE);  /* else: ENOTRECOVERABLE */
			onfree[n] = 0;
			nstate[n] = IDLE;
			nowner[n] = me;
			mynode[me] = n;
			nlo[n] = lo;
			nhi[n] = hi;
			nexcl[n] = excl;
			nseen[n] = 0;
			ntold[n] = 0;
			nseq[n] = 255
		}
		closed++;   /* rl_fast_close() */
		blocked(n, 255, b);
		if
		:: b && try ->
			/* refused (reopened): look at the blockers' owners once */
			closed--;
			reap(n, 255);
			closed++;
			blocked(n, 255, b)
		:: else -> skip
		fi;
		if
		:: b && try ->
			closed--;
			atomic { nstate[n] = FREE; onfree[n] = 1; mynode[me] = NOBODY };
			guard_unlock();
			goto next
		:: b && !try ->
			atomic {
				assert(!onfree[n]);
				arrivals++;
				nseq[n] = arrivals;
				nstate[n] = WAITING
			}
		:: !b ->
			atomic { arrivals++; nseq[n] = arrivals };
			grant(n)
		fi;
		guard_unlock();

		/* wait; now and then (10 ms) look for dead blockers */
		do
		:: nstate[n] == HELD -> break
		:: nstate[n] != HELD POLL_WHEN ->
			guard_lock();
			if
			:: nstate[n] == WAITING ->
				reap(n, nseq[n]);
				/* a fast holder may have died between freeing its
				 * slot and re-checking the waiters (the liveness
				 * check found it): nothing blocks us, go */
				blocked(n, nseq[n], b);
				if :: !b && nstate[n] == WAITING -> grant(n) :: else -> skip fi
			:: else -> skip
			fi;
			guard_unlock()
		od;

		nseen[n] = 1;   /* the lock call returns (EOWNERDEAD if told) */
		hold();

		/* unlock */
		guard_lock();
		nstate[n] = IDLE;
		grant_unblocked();
		closed--;   /* rl_fast_reopen() */
		atomic { nstate[n] = FREE; onfree[n] = 1; mynode[me] = NOBODY };
		guard_unlock();
next:		skip
	}
	done[me] = 1
	} unless { kill[me] }
}

init
{
	byte i;

	atomic {
		for (i : 0 .. NN - 1) {
			onfree[i] = 1
		}
		for (i : 0 .. NP - 1) {
			mynode[i] = NOBODY;
			run process(i)
		}
	}
}
