/* SPDX-License-Identifier: MIT */
/* rangelock_etcd.h compiles on its own, warning-free, in C and C++ (this
 * file is both), its types, options and constants in reach (linked against the core
 * library only). */
#include <rangelock_etcd.h>

int main(void)
{
	struct rangelock_etcd_options o = { 0, 0, 0, 0, 0, 0, RANGELOCK_ETCD_NOCACHE };
	rangelock_etcd_range_t r;
	struct rangelock_etcd_entry e;
	e.end = RANGELOCK_EOF;
	(void)e;
	(void)r;
	return o.flags == RANGELOCK_ETCD_NOCACHE && rangelock_version() ? 0 : 1;
}
