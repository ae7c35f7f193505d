/* SPDX-License-Identifier: MIT */
/*
 * etcd.pml - range locks across machines on etcd (etcd/, doc/etcd.md), as
 * a SPIN model.
 *
 * The store is etcd: key slots, each a request (create revision, owner,
 * mode, pages {0}, {1} or {0,1}), and one revision counter that every
 * change (put, delete) advances.  Every change is also queued, in revision
 * order, on each client's watch channel, and delivered whenever the
 * client's watcher gets to it (delayed events).
 *
 * Each of NC clients makes NOPS lock calls, one at a time (its local lock
 * has settled its own threads), each for some pages in some mode:
 *   - reuse: an own grant that covers the pages, allows the mode, is not
 *     revoked and is of the current lease is held again, no round trip;
 *   - else request: one atomic step puts the key and reads the store at
 *     that revision (etcd's transaction); blocked if a key of another
 *     owner, with a lower revision, conflicts;  a blocked request waits
 *     until the client's mirror has applied every event up to its
 *     revision and shows no such key (or the lease is lost: it gives up);
 *     when granted, any older own grant it conflicts with is retired;
 *   - hold: write the pages of an exclusive grant to a fencing store that
 *     refuses a token below the highest one it has seen for the page;
 *   - release: the grant is kept (cached) unless revoked; a revoked one's
 *     key is deleted by its last holder.
 * A client's watcher applies each event to its mirror; a put of another
 * owner's key that conflicts with an own granted key of lower revision
 * revokes it (deleting it at once when nobody holds it); a request granted
 * after its watcher saw such a put while it was pending is revoked at its
 * grant.  Clients that
 * have made their calls keep their cached grants; their watchers run on.
 *
 * With RESYNC, each watcher may once, at any moment, restart its watch the
 * way the code does after a compaction or when the watch was not wanted
 * (the code runs it only while a call waits or grants are kept): one read
 * of the whole store replaces the mirror, events up to that read are
 * dropped, and every kept grant is revoked for the later conflicting
 * requests the read shows.
 *
 * With LATE, client 0's first request is sent twice: one attempt answers,
 * the other (a member that took it and did not answer) may be applied at
 * any later moment, once.  The request's put is made only if neither its
 * key nor its withdrawal mark exists; a grant whose request had such an
 * attempt leaves the mark when it gives its key up (keys.c).
 *
 * An expirer may, once, end client 0's lease: first the client stops
 * believing in it (its local deadline is the renewal's send time plus the
 * TTL, less a margin, so it always comes before the server's), then the
 * server deletes every key of the lease; then the client takes a new
 * lease, under which its old grants are void.
 *
 * Checked (verify/run.sh):
 *   safety   two conflicting holders that both believe their grants valid
 *            never hold at once; a new grant finds no earlier conflicting
 *            key of another owner in the store (FIFO by revision); a write
 *            under a valid grant is never refused by the fencing store;
 *            no invalid end state (every request is granted or given up:
 *            no client waits forever, cached grants included).
 * Broken variants, each rejected:
 *   BROKEN_STALE_MIRROR  grant once the mirror shows no blocker, without
 *                        waiting for it to reach the request's revision
 *   BROKEN_BARGE         a request is blocked only by granted keys, not by
 *                        earlier waiting ones
 *   BROKEN_NO_REVOKE     a cached grant is never given up
 *   BROKEN_NO_MARGIN     the server expires the lease before the client
 *                        stops believing in it
 *   BROKEN_NOT_WANTED    a grant is not marked revoked at once for a
 *                        conflicting request the watcher saw while it
 *                        was still pending
 *   BROKEN_RESYNC_NO_REVOKE  a restarted watch does not check the kept
 *                        grants against the requests it read
 *   BROKEN_KEEP_OLDER    an older own grant is not retired by a newer one
 *                        it conflicts with (its lower token is then
 *                        refused by the fencing store)
 *   BROKEN_NO_MARK       (LATE) the request's put is unconditional: a late
 *                        attempt brings back a key its client gave up, and
 *                        a waiter behind it waits for ever
 */

#ifndef NC
#define NC 2
#endif
#ifndef NOPS
#define NOPS 2
#endif
#ifndef NOPS0
#define NOPS0 NOPS    /* client 0 may make more calls than the others */
#endif
#define NK 6          /* key slots */
#define NONE 255

typedef Key {
	bool live;
	byte rev;
	byte owner;
	bool excl;
	byte pages;   /* bit 0: page 0, bit 1: page 1 */
	bool granted; /* for the checks and BROKEN_BARGE only */
	byte id;      /* the request: 8 * client + its call */
};
Key store[NK];
byte rev = 0;

/* the watch: slot, revision, owner, excl, pages, put (else delete) */
chan ev[NC] = [24] of { byte, byte, byte, bool, byte, bool };

/* each client's mirror: the keys it has seen, and up to which revision */
typedef Mirror {
	bool live[NK];
	byte rev[NK];
	byte owner[NK];
	bool excl[NK];
	byte pages[NK];
	byte seen;
};
Mirror mir[NC];

/* each client's grants, by slot: 0 none, 1 pending, 2 granted */
byte gstate[NC * NK];
byte gusers[NC * NK];
bool grevoked[NC * NK];
byte ggen[NC * NK];
byte grev[NC * NK];   /* the grant's revision: its token */
byte gpages[NC * NK];
bool gexcl[NC * NK];
bool gunsure[NC * NK]; /* its request has a late attempt */
#define G(c, s) ((c) * NK + (s))

/* LATE: client 0's request with a late attempt, and the marks */
byte late_id = NONE;
bool late_excl;
byte late_pages;
byte late_gen;
bool marked[8];

byte sgen[NC];     /* the server's lease generation */
bool resynced[NC]; /* RESYNC: each watcher reads the store once */
byte cgen[NC];     /* the client's */
bool believes[NC]; /* the client's lease is valid by its own clock */

/* who holds what, for the checks */
byte holding[NC];  /* the slot of the grant held, or NONE */
byte hpages[NC];
bool hexcl[NC];
byte maxtok[2];    /* the fencing store */

#define CONFLICT(pa, xa, pb, xb) (((pa) & (pb)) != 0 && ((xa) || (xb)))
#define VALID(c, s) (believes[c] && ggen[G(c, s)] == cgen[c]) /* as the client knows */

/* a change to the store, told to every watcher; inside an atomic (w is
 * the caller's spare counter) */
inline tell(slot, put)
{
	rev++;
	w = 0;
	do
	:: w < NC -> ev[w]!slot, rev, store[slot].owner, store[slot].excl,
			store[slot].pages, put; w++
	:: else -> break
	od
}

inline delete_key(slot)
{
	store[slot].live = false;
	store[slot].granted = false;
	tell(slot, false);
}

/* Under atomic: a watcher's revocation or a release gives up grant s of c. */
inline give_up(c, s)
{
	gstate[G(c, s)] = 0;
	if
	:: store[s].live && store[s].owner == c && store[s].rev == grev[G(c, s)] ->
		if
		:: gunsure[G(c, s)] -> marked[store[s].id % 8] = true /* same txn */
		:: else -> skip
		fi;
		delete_key(s)
	:: else -> skip /* already gone with the lease */
	fi
}

proctype watcher(byte c)
{
	byte slot, r, owner, pages, s, w;
	bool excl, put;
end:	do
#ifdef RESYNC
	:: !resynced[c] ->
		/* the watch (re)starts with one read of the prefix: the
		 * mirror becomes the store, the events before are superseded,
		 * and every kept grant is checked against the requests read */
		atomic {
			resynced[c] = true;
			s = 0;
			do
			:: s < NK ->
				mir[c].live[s] = store[s].live;
				mir[c].rev[s] = store[s].rev;
				mir[c].owner[s] = store[s].owner;
				mir[c].excl[s] = store[s].excl;
				mir[c].pages[s] = store[s].pages;
				s++
			:: else -> break
			od;
			mir[c].seen = rev;
#ifndef BROKEN_RESYNC_NO_REVOKE
			s = 0;
			do
			:: s < NK ->
				if
				:: gstate[G(c, s)] == 2 && !grevoked[G(c, s)] ->
					r = 0;
					do
					:: r < NK ->
						if
						:: store[r].live && store[r].owner != c &&
						   store[r].rev > grev[G(c, s)] &&
						   CONFLICT(store[r].pages, store[r].excl,
							    gpages[G(c, s)], gexcl[G(c, s)]) ->
							grevoked[G(c, s)] = true
						:: else -> skip
						fi;
						r++
					:: else -> break
					od;
					if
					:: grevoked[G(c, s)] && gusers[G(c, s)] == 0 -> give_up(c, s)
					:: else -> skip
					fi
				:: else -> skip
				fi;
				s++
			:: else -> break
			od
#endif
		}
#endif
	:: ev[c]?slot, r, owner, excl, pages, put ->
		atomic {
		if
		:: r <= mir[c].seen -> skip /* superseded by a read */
		:: else ->
			mir[c].live[slot] = put;
			mir[c].rev[slot] = r;
			mir[c].owner[slot] = owner;
			mir[c].excl[slot] = excl;
			mir[c].pages[slot] = pages;
			mir[c].seen = r;
#ifndef BROKEN_NO_REVOKE
			if
			:: put && owner != c ->
				s = 0;
				do
				:: s < NK ->
					if
					:: gstate[G(c, s)] == 2 && !grevoked[G(c, s)] &&
					   grev[G(c, s)] < r &&
					   CONFLICT(pages, excl, gpages[G(c, s)], gexcl[G(c, s)]) ->
						grevoked[G(c, s)] = true;
						if
						:: gusers[G(c, s)] == 0 -> give_up(c, s)
						:: else -> skip
						fi
					:: else -> skip
					fi;
					s++
				:: else -> break
				od
			:: else -> skip
			fi
#endif
		fi
		}
	od
}

proctype expirer()
{
	byte s = 0, w;
#ifndef BROKEN_NO_MARGIN
	believes[0] = false;
#endif
	atomic {
		do
		:: s < NK ->
			if
			:: store[s].live && store[s].owner == 0 -> delete_key(s)
			:: else -> skip
			fi;
			s++
		:: else -> break
		od;
		sgen[0]++
	}
#ifdef BROKEN_NO_MARGIN
	believes[0] = false;
#endif
	/* the keeper takes a new lease; the old grants are void */
	atomic {
		cgen[0] = sgen[0];
		believes[0] = true
	}
}

proctype client(byte c)
{
	byte op = 0, pages, s, mine, k, t, w;
	bool excl, blocked;
	do
	:: (c == 0 && op < NOPS0) || (c != 0 && op < NOPS) ->
		op++;
		if
		:: pages = 1
		:: pages = 2
		:: pages = 3
		fi;
		if
		:: excl = false
		:: excl = true
		fi;
		mine = NONE;
		/* reuse an own grant that serves */
		atomic {
			s = 0;
			do
			:: s < NK && mine == NONE ->
				if
				:: gstate[G(c, s)] == 2 && !grevoked[G(c, s)] && VALID(c, s) &&
				   (gpages[G(c, s)] & pages) == pages && (gexcl[G(c, s)] || !excl) ->
					mine = s;
					gusers[G(c, s)]++
				:: else -> skip
				fi;
				s++
			:: else -> break
			od
		}
		if
		:: mine == NONE ->
			/* the request: put the key and read at its revision */
			atomic {
				if
				:: !believes[c] || sgen[c] != cgen[c] -> goto next /* no lease */
				:: else -> skip
				fi;
				s = 0;
				do
				:: store[s].live -> s++
				:: else -> break
				od;
				assert(s < NK);
				mine = s;
				store[s].live = true;
				store[s].owner = c;
				store[s].excl = excl;
				store[s].pages = pages;
				store[s].granted = false;
				store[s].rev = rev + 1;
				store[s].id = 8 * c + op;
				gunsure[G(c, s)] = false;
#ifdef LATE
				if
				:: c == 0 && op == 1 ->
					late_id = store[s].id;
					late_excl = excl;
					late_pages = pages;
					late_gen = cgen[c];
					gunsure[G(c, s)] = true
				:: else -> skip
				fi;
#endif
				gstate[G(c, s)] = 1;
				gusers[G(c, s)] = 0;
				grevoked[G(c, s)] = false;
				ggen[G(c, s)] = cgen[c];
				grev[G(c, s)] = rev + 1;
				gpages[G(c, s)] = pages;
				gexcl[G(c, s)] = excl;
				tell(s, true);
				blocked = false;
				k = 0;
				do
				:: k < NK ->
					if
					:: store[k].live && store[k].owner != c &&
					   store[k].rev < store[mine].rev &&
#ifdef BROKEN_BARGE
					   store[k].granted &&
#endif
					   CONFLICT(store[k].pages, store[k].excl, pages, excl) ->
						blocked = true
					:: else -> skip
					fi;
					k++
				:: else -> break
				od
			}
			/* wait for the watch (or give up with the lease) */
			if
			:: blocked ->
				atomic {
#ifndef BROKEN_STALE_MIRROR
					(ggen[G(c, mine)] != sgen[c] ||
					 (mir[c].seen >= grev[G(c, mine)] &&
#else
					(ggen[G(c, mine)] != sgen[c] || (true &&
#endif
					  !((mir[c].live[0] && mir[c].owner[0] != c && mir[c].rev[0] < grev[G(c, mine)] &&
					     CONFLICT(mir[c].pages[0], mir[c].excl[0], pages, excl)) ||
					    (mir[c].live[1] && mir[c].owner[1] != c && mir[c].rev[1] < grev[G(c, mine)] &&
					     CONFLICT(mir[c].pages[1], mir[c].excl[1], pages, excl)) ||
					    (mir[c].live[2] && mir[c].owner[2] != c && mir[c].rev[2] < grev[G(c, mine)] &&
					     CONFLICT(mir[c].pages[2], mir[c].excl[2], pages, excl)) ||
					    (mir[c].live[3] && mir[c].owner[3] != c && mir[c].rev[3] < grev[G(c, mine)] &&
					     CONFLICT(mir[c].pages[3], mir[c].excl[3], pages, excl)) ||
					    (mir[c].live[4] && mir[c].owner[4] != c && mir[c].rev[4] < grev[G(c, mine)] &&
					     CONFLICT(mir[c].pages[4], mir[c].excl[4], pages, excl)) ||
					    (mir[c].live[5] && mir[c].owner[5] != c && mir[c].rev[5] < grev[G(c, mine)] &&
					     CONFLICT(mir[c].pages[5], mir[c].excl[5], pages, excl)))));
					if
					:: ggen[G(c, mine)] != sgen[c] -> /* the lease went */
						gstate[G(c, mine)] = 0;
						goto next
					:: else -> skip
					fi
				}
			:: else -> skip
			fi;
			/* granted */
			atomic {
				if
				:: ggen[G(c, mine)] != sgen[c] ->
					gstate[G(c, mine)] = 0;
					goto next
				:: else -> skip
				fi;
				/* FIFO: nothing earlier of another owner conflicts */
				k = 0;
				do
				:: k < NK ->
					assert(!(store[k].live && store[k].owner != c &&
						 store[k].rev < store[mine].rev &&
						 CONFLICT(store[k].pages, store[k].excl, pages, excl)));
					k++
				:: else -> break
				od;
				gstate[G(c, mine)] = 2;
				gusers[G(c, mine)] = 1;
				store[mine].granted = true;
#ifndef BROKEN_NOT_WANTED
				/* asked for while it waited (the watcher saw it pending) */
				k = 0;
				do
				:: k < NK ->
					if
					:: mir[c].live[k] && mir[c].owner[k] != c &&
					   mir[c].rev[k] > grev[G(c, mine)] &&
					   CONFLICT(mir[c].pages[k], mir[c].excl[k], pages, excl) ->
						grevoked[G(c, mine)] = true
					:: else -> skip
					fi;
					k++
				:: else -> break
				od;
#endif
#ifndef BROKEN_KEEP_OLDER
				/* retire the older own grants this one conflicts with */
				k = 0;
				do
				:: k < NK ->
					if
					:: k != mine && gstate[G(c, k)] == 2 && !grevoked[G(c, k)] &&
					   grev[G(c, k)] < grev[G(c, mine)] &&
					   CONFLICT(gpages[G(c, k)], gexcl[G(c, k)], pages, excl) ->
						grevoked[G(c, k)] = true;
						if
						:: gusers[G(c, k)] == 0 -> give_up(c, k)
						:: else -> skip
						fi
					:: else -> skip
					fi;
					k++
				:: else -> break
				od
#endif
			}
		:: else -> skip
		fi;
		/* hold: no valid conflicting holder; write under the token */
		atomic {
			holding[c] = mine;
			hpages[c] = pages;
			hexcl[c] = excl;
			k = 0;
			do
			:: k < NC ->
				assert(k == c || holding[k] == NONE ||
				       !VALID(k, holding[k]) || !VALID(c, mine) ||
				       !CONFLICT(hpages[k], hexcl[k], pages, excl));
				k++
			:: else -> break
			od;
			if
			:: excl ->
				t = grev[G(c, mine)];
				if
				:: ((pages & 1) && maxtok[0] > t) || ((pages & 2) && maxtok[1] > t) ->
					assert(!VALID(c, mine)) /* refused: only a lost grant */
				:: else ->
					if
					:: pages & 1 -> maxtok[0] = t
					:: else -> skip
					fi;
					if
					:: pages & 2 -> maxtok[1] = t
					:: else -> skip
					fi
				fi
			:: else -> skip
			fi
		}
		/* release */
		atomic {
			holding[c] = NONE;
			if
			:: gstate[G(c, mine)] == 2 ->
				gusers[G(c, mine)]--;
				if
				:: gusers[G(c, mine)] == 0 &&
				   (grevoked[G(c, mine)] || ggen[G(c, mine)] != cgen[c]) ->
					give_up(c, mine)
				:: else -> skip /* cached */
				fi
			:: else -> skip
			fi
		}
next:		skip
	:: else -> break
	od
}

#ifdef LATE
/* the lost attempt of client 0's first request, applied once, late */
proctype late()
{
	byte s, k, w;
	bool exists;
	late_id != NONE;
	atomic {
		exists = false;
		k = 0;
		do
		:: k < NK ->
			exists = exists || (store[k].live && store[k].id == late_id);
			k++
		:: else -> break
		od;
		if
		:: sgen[0] != late_gen -> skip /* lease not found */
#ifndef BROKEN_NO_MARK
		:: exists || marked[late_id % 8] -> skip /* the compares fail */
#else
		:: exists -> skip /* the same key, put again: no change here */
#endif
		:: else ->
			s = 0;
			do
			:: store[s].live -> s++
			:: else -> break
			od;
			assert(s < NK);
			store[s].live = true;
			store[s].owner = 0;
			store[s].excl = late_excl;
			store[s].pages = late_pages;
			store[s].granted = false;
			store[s].rev = rev + 1;
			store[s].id = late_id;
			tell(s, true)
		fi
	}
}
#endif

init {
	byte i = 0;
	atomic {
		do
		:: i < NC ->
			believes[i] = true;
			holding[i] = NONE;
			run watcher(i);
			run client(i);
			i++
		:: else -> break
		od;
#ifndef NO_EXPIRY
		run expirer();
#endif
#ifdef LATE
		run late()
#endif
	}
}
