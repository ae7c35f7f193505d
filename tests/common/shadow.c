/* SPDX-License-Identifier: MIT */
#include "shadow.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct shadow {
	int pages;
	atomic_long violations;
	atomic_int *readers;
	atomic_int *writers;
};

struct shadow *shadow_new(int pages)
{
	struct shadow *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->pages = pages;
	s->readers = calloc((size_t)pages, sizeof(*s->readers));
	s->writers = calloc((size_t)pages, sizeof(*s->writers));
	if (!s->readers || !s->writers) {
		shadow_free(s);
		return NULL;
	}
	return s;
}

void shadow_free(struct shadow *s)
{
	if (!s)
		return;
	free(s->readers);
	free(s->writers);
	free(s);
}

static void violation(struct shadow *s, const char *what, int page)
{
	/* seq_cst: test bookkeeping. */
	if (atomic_fetch_add_explicit(&s->violations, 1, memory_order_seq_cst) < 5)
		fprintf(stderr, "shadow: VIOLATION: %s on page %d\n", what, page);
}

/* All seq_cst: the Dekker argument in shadow.h needs a total order. */
void shadow_enter(struct shadow *s, int lo, int hi, bool exclusive)
{
	for (int u = lo; u < hi; u++) {
		if (exclusive) {
			if (atomic_fetch_add_explicit(&s->writers[u], 1, memory_order_seq_cst))
				violation(s, "two exclusive holders", u);
			if (atomic_load_explicit(&s->readers[u], memory_order_seq_cst))
				violation(s, "exclusive holder beside shared", u);
		} else {
			atomic_fetch_add_explicit(&s->readers[u], 1, memory_order_seq_cst);
			if (atomic_load_explicit(&s->writers[u], memory_order_seq_cst))
				violation(s, "shared holder beside exclusive", u);
		}
	}
}

void shadow_leave(struct shadow *s, int lo, int hi, bool exclusive)
{
	for (int u = lo; u < hi; u++)
		atomic_fetch_sub_explicit(exclusive ? &s->writers[u] : &s->readers[u],
					  1, memory_order_seq_cst);
}

void shadow_downgrade(struct shadow *s, int lo, int hi)
{
	/* Count as a reader before leaving as a writer: never shown unheld. */
	for (int u = lo; u < hi; u++)
		atomic_fetch_add_explicit(&s->readers[u], 1, memory_order_seq_cst);
	shadow_leave(s, lo, hi, true);
}

long shadow_violations(struct shadow *s)
{
	return atomic_load_explicit(&s->violations, memory_order_seq_cst);
}
