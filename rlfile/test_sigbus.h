/* SPDX-License-Identifier: MIT */
/*
 * test_sigbus.h - accesses to a mapping that may be SIGBUS (past the end
 * of file), for rlfile's tests.
 */
#ifndef RLFILE_TEST_SIGBUS_H
#define RLFILE_TEST_SIGBUS_H

#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where a SIGBUS during sigbus_copy jumps; volatile: set before the
 * access, cleared after, in the compiler's order. */
static _Thread_local sigjmp_buf *volatile sigbus_jump;
static const char *sigbus_elsewhere;   /* said before _exit(3) */

static void sigbus_handler(int sig)
{
	(void)sig;
	if (sigbus_jump)
		siglongjmp(*sigbus_jump, 1);
	if (sigbus_elsewhere && write(2, sigbus_elsewhere, strlen(sigbus_elsewhere)) < 0)
		_exit(3);
	_exit(3);
}

/* Catch SIGBUS: in sigbus_copy, it fails the copy; elsewhere, `elsewhere`
 * is printed and the process exits with 3. */
static inline void sigbus_catch(const char *elsewhere)
{
	sigbus_elsewhere = elsewhere;
	signal(SIGBUS, sigbus_handler);
}

/* memcpy that may touch a mapping past the end of file: false if it was
 * SIGBUS (dst then holds part of it). */
static inline bool sigbus_copy(void *dst, const volatile void *src, size_t n)
{
	sigjmp_buf here;
	bool ok = false;

	if (!sigsetjmp(here, 1)) {
		sigbus_jump = &here;
		memcpy(dst, (const void *)src, n);
		ok = true;
	}
	sigbus_jump = NULL;
	return ok;
}

/* One byte of a mapping, or -1 for SIGBUS. */
static inline int sigbus_load(const volatile unsigned char *p)
{
	unsigned char v;

	return sigbus_copy(&v, p, 1) ? v : -1;
}

#endif
