/* SPDX-License-Identifier: MIT */
/*
 * shared.pml - a lock that processes share (src/rl_shared.c), with process
 * death, as a SPIN model.
 *
 * NP processes share a pool of NN request nodes, the guard, the listed
 * requests in arrival order (the index is only a faster way to find them)
 * and the dead ranges.  Each makes NOPS requests for the pages {0}, {1} or
 * {0,1}, shared or exclusive, blocking or try: under the guard it takes a
 * free node (the code checks that the node it pops is free: an assertion
 * here), admits it (held if it conflicts with no listed request, else
 * waiting, or refused for a try), and a waiter waits for its node to be
 * held; it holds the range (the shadow), then unlocks under the guard,
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
 * Recovery, one step here (the code rebuilds everything from the nodes, so
 * a recovery cut short by a death is redone whole by the next one): the
 * nodes of the dead are freed, an exclusive range a dead process held and
 * had returned from locking (seen) becomes a dead range, the living's nodes
 * stay (its own idle node too), and every waiter nothing blocks is granted.
 * A grant over a dead range tells the granted request (EOWNERDEAD) and
 * forgets the dead range.
 *
 * Checked (verify/run.sh):
 *   safety    no page held exclusive with another living holder (the
 *             shadow); at most one living process in a guard section; a
 *             node popped from the free nodes is free, and no node is
 *             listed and free at once; a grant is told
 *             exactly when its range overlaps what a dead process held
 *             exclusive after its lock call returned (a ghost recorded at
 *             the kill), so never twice and never missed; no invalid end
 *             state;
 *   liveness  with -a and weak fairness: every process that does not die
 *             finishes all its requests (LTL `finish`).
 * Broken variants, each rejected:
 *   BROKEN_NO_RECOVERY  waiters never recover: a dead holder blocks them;
 *   BROKEN_FREE_OWN     recovery frees the living's idle nodes too (the
 *                       bug stress_processes found: a try's own node);
 *   BROKEN_NO_DEAD_RANGE  recovery frees a dead exclusive holder's node
 *                       without a dead range: nobody is told;
 *   BROKEN_TAKEOVER     a guard waiter takes the guard from a live holder.
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
/* ghost: what a dead process held exclusive, its lock call returned
 * (recorded at the moment it is killed) */
bit  gused[DEATHS];
bit  glo[DEATHS];
bit  ghi[DEATHS];
byte mynode[NP];        /* ghost: each process's node, or NOBODY */
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
				glo[deaths] = nlo[n];
				ghi[deaths] = nhi[n]
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
	od
}

#define D_OVERLAPS(d, n) (dlo[d] <= nhi[n] && nlo[n] <= dhi[d])
#define G_OVERLAPS(d, n) (glo[d] <= nhi[n] && nlo[n] <= ghi[d])

/* a grant: told (and the dead ranges it overlaps forgotten) exactly when
 * it overlaps what a dead process held exclusive (the ghost, forgotten
 * likewise): never twice, never missed */
inline grant(n)
{
	d_step {
		ntold[n] = 0;
		gt = 0;
		d = 0;
		do
		:: d < DEATHS ->
			if
			:: dused[d] && D_OVERLAPS(d, n) -> ntold[n] = 1; dused[d] = 0
			:: else -> skip
			fi;
			if
			:: gused[d] && G_OVERLAPS(d, n) -> gt = 1; gused[d] = 0
			:: else -> skip
			fi;
			d++
		:: else -> break
		od;
		assert(ntold[n] == gt);
		assert(!onfree[n]);   /* no node both held and free */
		d = 0;
		gt = 0;
		nstate[n] = HELD
	}
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
					d = 0;
					do
					:: d < DEATHS && dused[d] -> d++
					:: d < DEATHS && !dused[d] -> break
					:: d == DEATHS -> break
					od;
					assert(d < DEATHS);
					dused[d] = 1;
					dlo[d] = nlo[k];
					dhi[d] = nhi[k];
					d = 0
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
		k = 0
	}
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
#define POLL_WHEN && (dead_blocker(n) || (guard != 0 && dead[guard - 1]))
#else
#define POLL_WHEN
#endif
#define BLOCKS_DEAD(j, n) (j != n && LISTED(j) && nseq[j] < nseq[n] && \
			   CONFLICT(j, n) && dead[nowner[j]])
#if NN == 3
#define dead_blocker(n) (BLOCKS_DEAD(0, n) || BLOCKS_DEAD(1, n) || BLOCKS_DEAD(2, n))
#else
#define dead_blocker(n) (BLOCKS_DEAD(0, n) || BLOCKS_DEAD(1, n) || \
			 BLOCKS_DEAD(2, n) || BLOCKS_DEAD(3, n))
#endif

proctype process(byte me)
{
	byte op, n = NOBODY, j, k, d;
	bit b, try, lo, hi, excl, gt;

	{
	for (op : 1 .. NOPS) {
		if
		:: lo = 0; hi = 0
		:: lo = 1; hi = 1
		:: lo = 0; hi = 1
		fi;
		if :: excl = 0 :: excl = 1 fi;
		if :: try = 0 :: try = 1 fi;

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
		blocked(n, 255, b);
		if
		:: b && try ->
			/* refused: look at the blockers' owners once */
			reap(n, 255);
			blocked(n, 255, b)
		:: else -> skip
		fi;
		if
		:: b && try ->
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
			:: nstate[n] == WAITING -> reap(n, nseq[n])
			:: else -> skip
			fi;
			guard_unlock()
		od;

		nseen[n] = 1;   /* the lock call returns (EOWNERDEAD if told) */
		/* hold: no living holder in a conflicting mode */
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
		incs[me] = 0;

		/* unlock */
		guard_lock();
		nstate[n] = IDLE;
		grant_unblocked();
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
