/* SPDX-License-Identifier: MIT */
/* header_use: rangelock.h compiled as strict C11 (and, as header_use.cpp,
 * as C++), with every warning an error; the program also links and runs,
 * so the declarations match the library's symbols. */
#include <rangelock.h>

#include <stdio.h>

static rangelock_t lock = RANGELOCK_INITIALIZER;

int main(void)
{
	rangelock_range_t r;
	int rc = rangelock_wrlock(&lock, &r, 0, RANGELOCK_EOF);

	if (rc == 0)
		rc = rangelock_downgrade(&lock, &r);
	if (rc == 0)
		rc = rangelock_unlock(&lock, &r);
	if (rc == 0)
		rc = rangelock_destroy(&lock);
	if (rc == 0 && rangelock_version() != RANGELOCK_VERSION)
		rc = -1;
	printf("%s\n", rc == 0 ? "1 passed, 0 failed" : "0 passed, 1 failed");
	return rc == 0 ? 0 : 1;
}
