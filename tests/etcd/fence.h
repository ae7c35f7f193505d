/* SPDX-License-Identifier: MIT */
/*
 * fence.h - a storage that checks fencing tokens, as a server in front of
 * shared data would: a write of [start, end) with token t is refused when
 * any byte of it was last written with a token above t.  Its state is a
 * file of per-page tokens (4 KiB pages, the first FENCE_PAGES), changed
 * under an OFD lock of the whole file, so every process of a test shares it.
 */
#ifndef RL_TEST_FENCE_H
#define RL_TEST_FENCE_H

#include <stdint.h>

#define FENCE_PAGES 1024

/* 0: accepted (the pages now carry token); EPERM: refused; else errno */
int fence_write(const char *path, uint64_t start, uint64_t end, uint64_t token);

#endif
