/* SPDX-License-Identifier: MIT */
/*
 * header_only.c - the public header alone, for the strictest warnings a
 * compiler has (clang -Weverything): whatever they find is the header's.
 */
#include <rangelock.h>

int main(void)
{
	return rangelock_version() == RANGELOCK_VERSION ? 0 : 1;
}
