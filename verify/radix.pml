/* SPDX-License-Identifier: MIT */
/*
 * radix.pml - version 4's candidate protocol (bench/c_radix.c, issue 29)
 * as a SPIN model, checked before the protocol replaces version 3 in src/.
 *
 * Three regions, each with its leaf: a spinlock, the requests listed there
 * (where[h] == the leaf), `incoming` (listed ranges of the leaf before
 * that reach into it), `closed` (narrow requests over it listed in the
 * top) and `marked`, its bit in the radix node's marks (nmark).  The top:
 * a spinlock, the requests listed there, the count of wide ones and their
 * hull [hlo, hend) in regions (empty when hend == 0), stored one word at
 * a time as the C code does.  NT threads each make NOPS requests: a range
 * of one region, two neighbours, or all three (wide), shared or exclusive,
 * then unlock it; a range of one or two regions may also be listed as
 * wide, as the C code does when it cannot make a leaf.  Ranges are in whole regions: which pages of a region a
 * range covers does not change where it is listed or whom it meets (the
 * overlap test itself is the interval tree's, not the protocol's).
 *
 * Each step is one atomic access of the C code or one spinlock critical
 * section's work on data that spinlock guards; the Dekker pairs (a leaf
 * section's mark, then its loads of the hull; a wide request's stores of
 * the hull, then its loads of the marks) are steps of their own.
 *
 * Checked (verify/run.sh): the shadow (no region is ever held exclusive
 * together with any other holder), and no invalid end state (no thread
 * waits forever: every count of earlier conflicts reaches zero).  Broken
 * variants that SPIN must reject:
 *   BROKEN_DEKKER    a leaf section reads the hull before it marks its leaf;
 *   BROKEN_INCOMING  a set never takes the leaf before its home;
 *   BROKEN_CLOSE     a narrow request listed in the top does not close its
 *                    leaves;
 *   BROKEN_EDGE      a wide request's sweep starts at its first region, not
 *                    at the one before.
 */

#ifndef NT
#define NT 2
#endif
#ifndef NOPS
#define NOPS 2
#endif
#define NL 3            /* leaves: regions 0, 1, 2 */
#define NONE 9
#define TOPN 3          /* where[]: a narrow request listed in the top */
#define TOPW 4          /* a wide one */

bit lk[NL];             /* leaves' spinlocks */
byte inc[NL];           /* incoming; leaf's spinlock */
byte clo[NL];           /* closed; leaf's spinlock (and the top's) */
bit mk[NL];             /* marked; leaf's spinlock */
bit nmark[NL];          /* the node's mark bits: atomic */
bit tlk;                /* the top's spinlock */
byte nwide;             /* top's spinlock */
byte hlo, hend;         /* the hull, regions [hlo, hend): atomic words */

byte lo[NT], hi[NT];    /* a thread's request: regions [lo, hi] */
bit excl[NT];
bit wd[NT];             /* listed as wide: over three regions, or a leaf
			 * could not be made (no memory) */
byte where[NT] = NONE;  /* a leaf, TOPN, TOPW, or NONE */
byte blocking[NT];      /* earlier conflicts still listed */
bit holds[NT];          /* the shadow: between lock and unlock */

#define conflicts(h, g) (g != h && lo[g] <= hi[h] && lo[h] <= hi[g] && (excl[g] || excl[h]))

inline spin_lock(b) { atomic { b == 0 -> b = 1 } }
inline spin_unlock(b) { b = 0 }

/* how many requests listed at place p conflict with h, added to cnt */
inline count_in(p, h, cnt) {
	d_step {
		g = 0;
		do
		:: g < NT -> if :: where[g] == p && conflicts(h, g) -> cnt++ :: else fi; g++
		:: else -> break
		od;
		g = 0
	}
}

/* h left, or no longer conflicts: every conflicting request listed at p
 * loses one blocker (all of them are later than h) */
inline unblock_in(p, h) {
	d_step {
		g = 0;
		do
		:: g < NT -> if :: where[g] == p && conflicts(h, g) -> blocking[g]-- :: else fi; g++
		:: else -> break
		od;
		g = 0
	}
}

/* a narrow request's set: f0 (or NONE), f1 its home, f2 (or NONE) */
inline set_take(h) {
	f0 = NONE; f1 = lo[h];
	f2 = (hi[h] != lo[h] -> hi[h] : NONE);
	do
	:: true ->
		if :: f0 != NONE -> spin_lock(lk[f0]) :: else fi;
		spin_lock(lk[f1]);
		if :: f2 != NONE -> spin_lock(lk[f2]) :: else fi;
#ifdef BROKEN_INCOMING
		break;
#else
		if
		:: inc[f1] == 0 || f0 != NONE -> break
		:: else ->
			if :: f2 != NONE -> spin_unlock(lk[f2]) :: else fi;
			spin_unlock(lk[f1]);
			f0 = f1 - 1
		fi
#endif
	od
}

inline set_unlock() {
	if :: f2 != NONE -> spin_unlock(lk[f2]) :: else fi;
	spin_unlock(lk[f1]);
	if :: f0 != NONE -> spin_unlock(lk[f0]) :: else fi
}

inline mark(f) {
	d_step { if :: f != NONE && !mk[f] -> mk[f] = 1; nmark[f] = 1 :: else fi }
}

inline read_hull() {
	e = hend;       /* two loads, as in hull_clear() */
	b = hlo
}

/* set_open(): open = no leaf of the set closed, and the hull (read after
 * the marks) misses [first, last] */
inline set_open(h) {
	first = (f0 != NONE -> f0 : f1);
	last = (f2 != NONE -> f2 : f1);
	isopen = (clo[f1] == 0 && (f0 == NONE || clo[f0] == 0) &&
		(f2 == NONE || clo[f2] == 0));
#ifdef BROKEN_DEKKER
	read_hull();
	mark(f0); mark(f1); mark(f2);
#else
	mark(f0); mark(f1); mark(f2);
	read_hull();
#endif
	isopen = isopen && (e == 0 || b > last || e <= first);
	d_step { e = 0; b = 0; first = 0; last = 0 }
}

inline set_count(h, cnt) {
	if :: f0 != NONE -> count_in(f0, h, cnt) :: else fi;
	count_in(f1, h, cnt);
	if :: f2 != NONE -> count_in(f2, h, cnt) :: else fi
}

inline set_unblock(h) {
	if :: f0 != NONE -> unblock_in(f0, h) :: else fi;
	unblock_in(f1, h);
	if :: f2 != NONE -> unblock_in(f2, h) :: else fi
}

/* a wide request's sweep of leaf f: wait for its sections, count h's
 * conflicts there, clear an empty leaf's mark */
inline sweep_leaf(f, h) {
	if
	:: nmark[f] ->
		spin_lock(lk[f]);
		count_in(f, h, cnt);
		d_step {
			g = 0; vacant = 1;
			do
			:: g < NT -> if :: where[g] == f -> vacant = 0 :: else fi; g++
			:: else -> break
			od;
			if :: vacant && inc[f] == 0 && clo[f] == 0 -> mk[f] = 0; nmark[f] = 0 :: else fi;
			g = 0; vacant = 0
		}
		spin_unlock(lk[f])
	:: else
	fi
}

inline lock(h) {
	cnt = 0;
	if
	:: !wd[h] ->
		set_take(h);
		set_open(h);
		if
		:: isopen ->
			set_count(h, cnt);
			blocking[h] = cnt;
			where[h] = f1;
			if :: f2 != NONE -> inc[f2]++ :: else fi;
			set_unlock()
		:: else ->
			set_unlock();
			spin_lock(tlk);
			set_take(h);
#ifndef BROKEN_CLOSE
			clo[f1]++;
			if :: f2 != NONE -> clo[f2]++ :: else fi;
#endif
			set_count(h, cnt);
			set_unlock();
			count_in(TOPN, h, cnt);
			count_in(TOPW, h, cnt);
			blocking[h] = cnt;
			where[h] = TOPN;
			spin_unlock(tlk)
		fi
	:: else ->   /* wide */
		spin_lock(tlk);
		if
		:: nwide == 0 -> hlo = lo[h]; hend = hi[h] + 1
		:: else ->
			if :: lo[h] < hlo -> hlo = lo[h] :: else fi;
			if :: hi[h] + 1 > hend -> hend = hi[h] + 1 :: else fi
		fi;
		nwide++;
#ifdef BROKEN_EDGE
		f = lo[h];
#else
		f = (lo[h] > 0 -> lo[h] - 1 : 0);
#endif
		do
		:: f <= hi[h] -> sweep_leaf(f, h); f++
		:: else -> break
		od;
		count_in(TOPN, h, cnt);
		count_in(TOPW, h, cnt);
		blocking[h] = cnt;
		where[h] = TOPW;
		spin_unlock(tlk)
	fi;
	d_step { cnt = 0; f = 0; f0 = 0; f1 = 0; f2 = 0; isopen = 0 }
	blocking[h] == 0    /* wait: spin, then sleep on the count */
}

inline unlock(h) {
	if
	:: where[h] < NL ->
		set_take(h);
		set_open(h);
		if
		:: isopen ->
			where[h] = NONE;
			if :: f2 != NONE -> inc[f2]-- :: else fi;
			set_unblock(h);
			set_unlock()
		:: else ->
			set_unlock();
			spin_lock(tlk);
			set_take(h);
			where[h] = NONE;
			if :: f2 != NONE -> inc[f2]-- :: else fi;
			set_unblock(h);
			set_unlock();
			unblock_in(TOPN, h);
			unblock_in(TOPW, h);
			spin_unlock(tlk)
		fi
	:: where[h] == TOPN ->
		spin_lock(tlk);
		where[h] = NONE;
		unblock_in(TOPN, h);
		unblock_in(TOPW, h);
		set_take(h);
#ifndef BROKEN_CLOSE
		clo[f1]--;
		if :: f2 != NONE -> clo[f2]-- :: else fi;
#endif
		set_unlock();
		spin_unlock(tlk)
	:: where[h] == TOPW ->
		spin_lock(tlk);
		where[h] = NONE;
		unblock_in(TOPN, h);
		unblock_in(TOPW, h);
		nwide--;
		if :: nwide == 0 -> hend = 0 :: else fi;
		spin_unlock(tlk)
	fi
}

active [NT] proctype thread()
{
	byte h = _pid, ops = 0, f0, f1, f2, f, g, cnt, first, last, b, e;
	bit isopen, vacant;

	do
	:: ops < NOPS ->
		if   /* the range */
		:: lo[h] = 0; hi[h] = 0
		:: lo[h] = 1; hi[h] = 1
		:: lo[h] = 2; hi[h] = 2
		:: lo[h] = 0; hi[h] = 1
		:: lo[h] = 1; hi[h] = 2
		:: lo[h] = 0; hi[h] = 2
		fi;
		if
		:: hi[h] - lo[h] > 1 -> wd[h] = 1
		:: else -> if :: wd[h] = 0 :: wd[h] = 1 fi
		fi;
		if :: excl[h] = 0 :: excl[h] = 1 fi;
		lock(h);
		holds[h] = 1;
		g = 0;
		do   /* the shadow */
		:: g < NT -> assert(!(holds[g] && conflicts(h, g))); g++
		:: else -> break
		od;
		holds[h] = 0;
		unlock(h);
		d_step { f0 = 0; f1 = 0; f2 = 0; isopen = 0; lo[h] = 0; hi[h] = 0; excl[h] = 0; wd[h] = 0 }
		ops++
	:: else -> break
	od
}
