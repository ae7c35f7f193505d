/* SPDX-License-Identifier: MIT */
/*
 * rlctl - byte ranges of named objects locked across machines, from the
 * shell, as flock(1) does for one machine's files.
 *
 *   rlctl [global options] lock [--shared] [--nonblock | --wait SECONDS]
 *         OBJECT START END -- PROGRAM [ARG...]
 *   rlctl [global options] list [OBJECT]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rangelock_etcd.h"

#define EXIT_UNAVAILABLE 69 /* sysexits.h's EX_UNAVAILABLE: etcd unreachable */
#define RLCTL_TTL_DEFAULT 5

static noreturn void usage(void)
{
	printf("usage: rlctl [--endpoints URL[,URL...]] [--prefix PREFIX] [--ttl SECONDS]\n"
	       "             lock [--shared] [--nonblock | --wait SECONDS]\n"
	       "             OBJECT START END -- PROGRAM [ARG...]\n"
	       "       rlctl [--endpoints URL[,URL...]] [--prefix PREFIX] list [OBJECT]\n"
	       "\n"
	       "lock: take bytes [START, END) of OBJECT (END may be 'eof'), exclusive\n"
	       "unless --shared, run PROGRAM with RANGELOCK_TOKEN set to the grant's\n"
	       "fencing token, release when it exits, and exit with its status.\n"
	       "  --shared           a shared range (default: exclusive)\n"
	       "  --nonblock         not granted at once: exit 1, PROGRAM not run\n"
	       "  --wait SECONDS     not granted within SECONDS: exit 1\n"
	       "list: one line per holder and waiter, tab-separated: object, start,\n"
	       "end, mode, held/waiting, age, token, client.\n"
	       "\n"
	       "Global options:\n"
	       "  --endpoints URLS   etcd members, comma-separated (default:\n"
	       "                     $RANGELOCK_ETCD_ENDPOINTS, else %s)\n"
	       "  --prefix PREFIX    the keys' prefix (default: %s)\n"
	       "  --ttl SECONDS      lease TTL, 1..10 (default: %d): a killed rlctl's\n"
	       "                     range is free within it\n"
	       "  --help, --version\n"
	       "\n"
	       "Exit status: PROGRAM's; 1 not granted; 2 usage; 69 etcd unreachable;\n"
	       "70 another failure; 126/127 PROGRAM could not be run.\n",
	       RANGELOCK_ETCD_ENDPOINTS, RANGELOCK_ETCD_PREFIX, RLCTL_TTL_DEFAULT);
	exit(0);
}

static noreturn void fail(int err, const char *what)
{
	fprintf(stderr, "rlctl: %s: %s\n", what,
		err == ENOTCONN ? "no etcd member answered (is etcd running? "
				  "see --endpoints)" : strerror(err));
	exit(err == ENOTCONN ? EXIT_UNAVAILABLE : 70);
}

static uint64_t offset(const char *what, const char *v, bool eof_ok)
{
	if (eof_ok && strcmp(v, "eof") == 0)
		return RANGELOCK_EOF;
	return (uint64_t)cli_integer(what, v, 0, INT64_MAX);
}

static pid_t child;
static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

static int run(char **argv, uint64_t token)
{
	char tok[32];
	snprintf(tok, sizeof(tok), "%llu", (unsigned long long)token);
	struct sigaction sa = { .sa_handler = forward };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	child = fork();
	if (child < 0) {
		perror("rlctl: fork");
		return 70;
	}
	if (child == 0) {
		setenv("RANGELOCK_TOKEN", tok, 1);
		execvp(argv[0], argv);
		fprintf(stderr, "rlctl: %s: %s\n", argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	int status;
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return 70;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct lock_args {
	bool shared, nonblock;
	double wait;            /* < 0: as long as it takes */
	const char *name, *start_arg, *end_arg;
	uint64_t start, end;
	char **program;
};

/* lock's arguments, all checked before etcd is asked anything */
static void parse_lock(int argc, char **argv, struct lock_args *a)
{
	static const struct option opts[] = {
		{ "shared", no_argument, NULL, 's' },
		{ "nonblock", no_argument, NULL, 'n' },
		{ "wait", required_argument, NULL, 'w' },
		{ 0 } };
	int opt;
	*a = (struct lock_args){ .wait = -1 };
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (opt == 's')
			a->shared = true;
		else if (opt == 'n')
			a->nonblock = true;
		else if (opt == 'w')
			a->wait = cli_decimal("--wait", optarg, -1e-9, 1e7);
		else
			cli_getopt_failed();
	}
	if (a->nonblock && a->wait >= 0)
		cli_usage_error("--nonblock and --wait are each other's opposite");
	if (argc - optind < 5 || strcmp(argv[optind + 3], "--") != 0)
		cli_usage_error("lock needs OBJECT START END -- PROGRAM");
	a->name = argv[optind];
	a->start_arg = argv[optind + 1];
	a->end_arg = argv[optind + 2];
	a->start = offset("START", a->start_arg, false);
	a->end = offset("END", a->end_arg, true);
	a->program = argv + optind + 4;
	if (a->start >= a->end)
		cli_usage_error("START must be below END");
	if (!*a->name)
		cli_usage_error("OBJECT must not be empty");
}

static int cmd_lock(rangelock_etcd_t *c, const struct lock_args *a)
{
	const char *name = a->name;
	uint64_t start = a->start, end = a->end;
	bool shared = a->shared;
	double wait = a->wait;
	rangelock_etcd_object_t *o;
	rangelock_etcd_range_t r;
	int err = rangelock_etcd_open(c, name, strlen(name), &o);
	if (err)
		fail(err, name);
	if (a->nonblock) {
		err = shared ? rangelock_etcd_tryrdlock(o, &r, start, end)
			     : rangelock_etcd_trywrlock(o, &r, start, end);
	} else if (wait >= 0) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		double at = (double)t.tv_sec + t.tv_nsec / 1e9 + wait;
		t.tv_sec = (time_t)at;
		t.tv_nsec = (long)((at - (double)t.tv_sec) * 1e9);
		err = shared ? rangelock_etcd_timedrdlock(o, &r, start, end, &t)
			     : rangelock_etcd_timedwrlock(o, &r, start, end, &t);
	} else {
		err = shared ? rangelock_etcd_rdlock(o, &r, start, end)
			     : rangelock_etcd_wrlock(o, &r, start, end);
	}
	if (err == EBUSY || err == ETIMEDOUT) {
		fprintf(stderr, "rlctl: %s [%s, %s) is %s\n", name, a->start_arg,
			a->end_arg, err == EBUSY ? "busy" : "still busy; gave up");
		rangelock_etcd_object_close(o);
		return 1;
	}
	if (err)
		fail(err, name);
	int status = run(a->program, rangelock_etcd_token(&r));
	err = rangelock_etcd_unlock(o, &r);
	if (err == ENOLCK)
		fprintf(stderr, "rlctl: %s: the grant was lost while %s ran "
			"(lease expired)\n", name, a->program[0]);
	rangelock_etcd_object_close(o);
	return status;
}

/* The object's name, its tabs, newlines, backslashes and other bytes
 * that are not printable written as C escapes. */
static void print_name(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\\' || ch == '\t' || ch == '\n' || ch < 32 || ch == 127)
			printf(ch == '\\' ? "\\\\" : ch == '\t' ? "\\t" :
			       ch == '\n' ? "\\n" : "\\x%02x", ch);
		else
			putchar(ch);
	}
}

static int print_entry(const struct rangelock_etcd_entry *e, void *arg)
{
	(void)arg;
	print_name(e->object, e->object_len);
	printf("\t%llu\t", (unsigned long long)e->start);
	if (e->end == RANGELOCK_EOF)
		printf("eof");
	else
		printf("%llu", (unsigned long long)e->end);
	printf("\t%s\t%s\t%.1fs\t%llu\t%s\n", e->exclusive ? "exclusive" : "shared",
	       e->held ? "held" : "waiting", e->age < 0 ? 0 : e->age,
	       (unsigned long long)e->token, e->client);
	return 0;
}

static const char *parse_list(int argc, char **argv)
{
	static const struct option none[] = { { 0 } };
	optind = 1;
	if (getopt_long(argc, argv, "+", none, NULL) != -1)
		cli_getopt_failed();
	if (argc - optind > 1)
		cli_usage_error("list takes one OBJECT at most");
	return argc > optind ? argv[optind] : NULL;
}

static int cmd_list(rangelock_etcd_t *c, const char *name)
{
	int err = rangelock_etcd_list(c, name, name ? strlen(name) : 0, print_entry, NULL);
	if (err)
		fail(err, "list");
	return fflush(stdout) == 0 ? 0 : 70;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoints", required_argument, NULL, 'e' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "ttl", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 } };
	struct rangelock_etcd_options o = { .flags = RANGELOCK_ETCD_NOCACHE,
					    .ttl_ms = RLCTL_TTL_DEFAULT * 1000 };
	int opt;
	cli_init("rlctl");
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (opt) {
		case 'e': o.endpoints = optarg; break;
		case 'p': o.prefix = optarg; break;
		case 't': o.ttl_ms = (unsigned)cli_integer("--ttl", optarg, 1, 10) * 1000; break;
		case 'h': usage();
		case 'V': cli_version(NULL);
		default: cli_getopt_failed();
		}
	}
	if (optind >= argc)
		cli_usage_error("a command is needed: lock or list");
	const char *cmd = argv[optind];
	if (strcmp(cmd, "lock") && strcmp(cmd, "list"))
		cli_usage_error("unknown command '%s': lock or list", cmd);
	if (o.prefix && !*o.prefix)
		cli_usage_error("--prefix must not be empty");
	const char *ep = o.endpoints ? o.endpoints : getenv("RANGELOCK_ETCD_ENDPOINTS");
	unsigned n = 1;
	for (const char *p = ep ? ep : ""; *p; p++)
		n += *p == ',';
	o.timeout_ms = 5000 / n < 500 ? 500 : 5000 / n; /* all of them within 5 s */
	struct lock_args la = { .wait = -1 };
	const char *list_name = NULL;
	bool lock = strcmp(cmd, "lock") == 0;
	if (lock)
		parse_lock(argc - optind, argv + optind, &la);
	else
		list_name = parse_list(argc - optind, argv + optind);
	rangelock_etcd_t *c;
	int err = rangelock_etcd_connect(&c, &o);
	if (err == EINVAL)
		cli_usage_error("--endpoints: an empty URL");
	if (err)
		fail(err, ep && *ep ? ep : RANGELOCK_ETCD_ENDPOINTS);
	int status = lock ? cmd_lock(c, &la) : cmd_list(c, list_name);
	rangelock_etcd_close(c);
	return status;
}
