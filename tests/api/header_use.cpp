// SPDX-License-Identifier: MIT
// The same program as header_use.c, compiled as C++: rangelock.h must be
// valid C++ with C linkage (extern "C"), under -Wpedantic -Werror.
#include "header_use.c"
