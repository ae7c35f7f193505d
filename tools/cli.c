/* SPDX-License-Identifier: MIT */
/* cli.c - the tools' command-line convention (cli.h). */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "rangelock.h"

static const char *cli_name = "rangelock";

void cli_init(const char *name)
{
	cli_name = name;
}

noreturn void cli_version(const char *extra)
{
	printf("%s (rangelock) %d.%d.%d\n", cli_name, RANGELOCK_VERSION_MAJOR,
	       RANGELOCK_VERSION_MINOR, RANGELOCK_VERSION_PATCH);
	if (extra)
		printf("%s\n", extra);
	exit(0);
}

noreturn void cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", cli_name);
	exit(CLI_USAGE);
}

noreturn void cli_getopt_failed(void)
{
	fprintf(stderr, "Try '%s --help'.\n", cli_name);
	exit(CLI_USAGE);
}

int64_t cli_integer(const char *option, const char *value, int64_t min,
		    int64_t max)
{
	char *end;
	intmax_t v;

	errno = 0;
	v = strtoimax(value, &end, 10);
	/* strtoimax skips blanks and takes a '+': a value here does not */
	if (errno || end == value || *end || !(isdigit((unsigned char)*value) ||
	    *value == '-') || v < min || v > max)
		cli_usage_error("%s: '%s' is not a whole number from %" PRId64
				" to %" PRId64, option, value, min, max);
	return (int64_t)v;
}

double cli_decimal(const char *option, const char *value, double min,
		   double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(value, &end);
	if (!(isdigit((unsigned char)*value) || *value == '.') || errno || end == value || *end || !isfinite(v) || !(v > min) ||
	    v > max)
		cli_usage_error("%s: '%s' is not a number above %g and at most %g",
				option, value, min, max);
	return v;
}
