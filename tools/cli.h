/* SPDX-License-Identifier: MIT */
/*
 * cli.h - the command-line convention every rangelock tool keeps (rlbench,
 * rlfile-torture, rlfs), so that they agree with each other and with their
 * man pages:
 *
 *   --help     the usage on standard output, exit 0
 *   --version  "NAME (rangelock) X.Y.Z" on standard output, exit 0
 *   a mistake  one line on standard error that names the bad argument and
 *              what was expected, then "Try 'NAME --help'.", exit 2
 *   numbers    whole (or, for seconds, decimal), in range, nothing after
 *              them: "abc", "-1", "10x" and "" are mistakes
 *
 * Run time and memory are bounded by what the user asked for; each tool
 * says in its page how.
 */
#ifndef RL_CLI_H
#define RL_CLI_H

#include <stdint.h>
#include <stdnoreturn.h>

/* The exit status of a usage error, in every tool. */
#define CLI_USAGE 2

/* The tool's name, for every message after this. */
void cli_init(const char *name);

/* "NAME (rangelock) X.Y.Z" on stdout (extra, if not NULL, on the next
 * line), exit 0. */
noreturn void cli_version(const char *extra);

/* "NAME: <message>" and "Try 'NAME --help'." on stderr, exit 2. */
noreturn void cli_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* After getopt_long() has said what it did not take ("unrecognized
 * option", "requires an argument"): "Try 'NAME --help'.", exit 2. */
noreturn void cli_getopt_failed(void);

/* An option's value as a whole number in [min, max], or a usage error that
 * names the option and the value. */
int64_t cli_integer(const char *option, const char *value, int64_t min,
		    int64_t max);

/* An option's value as a decimal number in (min, max], or a usage error. */
double cli_decimal(const char *option, const char *value, double min,
		   double max);

#endif
