/* SPDX-License-Identifier: MIT */
/*
 * rlbench - rangelock side by side with what people would use instead.
 *
 *   rlbench --quick                 a representative subset, about 90 s
 *   rlbench --smoke                 every workload once with tiny windows (CI)
 *   rlbench                         everything, longer windows, 5 repetitions
 *   rlbench --list                  workloads and contenders
 *   rlbench --csv FILE              also write every repetition to FILE
 *   rlbench --workload A,B --contender X,Y --reps N
 *   rlbench --threads 1,2,8 --pages 1,16 --held 0,100 --max-pages 16
 *           --read-pct 0,90 --readers 4 --writers 1
 *                                   each workload's parameters (lists)
 *   rlbench --validate MS           shadow-overlap check of every contender
 *   rlbench --callgrind NAME [--pairs N] [--exclusive]
 *                                   a bare loop for bench/callgrind.sh
 *
 * Every measurement: warm-up, then a timed window, repeated; the table shows
 * the median and each contender's ratio to rangelock, the CSV every run.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli.h"
#include "contender.h"
#include "stats.h"
#include "workloads.h"

#ifndef RLBENCH_CFLAGS
#define RLBENCH_CFLAGS "?"
#endif

static const struct contender *const all_contenders[] = {
	&contender_rangelock, &contender_rangelock_debug, &contender_rwlock,
	&contender_ofd,
	&contender_tree, &contender_list,
	/* --processes: what processes can share */
	&contender_rangelock_shared, &contender_rwlock_shared,
	/* --contender parts,radix: version 4's candidates, measured (issue 29) */
	&contender_parts, &contender_radix,
};
#define NCONTENDERS (int)(sizeof(all_contenders) / sizeof(all_contenders[0]))
/* The contenders a run without --contender compares: the first six; with
 * --processes, rangelock (the in-process reference) and those processes
 * can share. */
#define NTHREAD_CONTENDERS 6
_Static_assert(NCONTENDERS == 10, "column() orders every contender");

static const char *const all_workloads[] = {
	"uncontended", "held", "disjoint", "mixed", "file", "fair", "placement",
	"sizes", "regions", "eof", "robust",
};
#define NWORKLOADS (int)(sizeof(all_workloads) / sizeof(all_workloads[0]))

#define MAX_LIST 16

/* A list of workload parameters from the command line, or the default. */
struct list {
	int n;
	int v[MAX_LIST];
};

struct options {
	bool quick;
	bool processes;         /* --processes */
	struct list threads;    /* disjoint, mixed, file */
	struct list pages;      /* uncontended */
	struct list held;       /* held */
	struct list max_pages;  /* mixed */
	struct list read_pct;   /* mixed */
	int readers, writers;   /* fair */
	int reps;
	const char *csv_path;
	bool use_contender[NCONTENDERS];
	bool use_workload[NWORKLOADS];
	struct timing single, multi, fair;
};

static struct options opt;
static FILE *csv;

void bench_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rlbench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* One row group: a workload with its parameters, run for each contender. */
struct spec {
	const char *workload;
	char params[48];
	int kind;        /* index into all_workloads */
	int a, b, c;     /* workload parameters */
};

static void run_spec(const struct spec *s, const struct contender *c,
		     struct result *out)
{
	memset(out, 0, sizeof(*out));
	switch (s->kind) {
	case 0: wl_uncontended(c, &opt.single, s->a, s->b, out); break;
	case 1: wl_held(c, &opt.single, s->a, s->b, s->c & 0xff, s->c >> 8, out); break;
	case 2: wl_disjoint(c, &opt.multi, s->a, true, out); break;
	case 3: wl_mixed(c, &opt.multi, s->c, s->b, s->a, out); break;
	case 4: wl_file(c, &opt.multi, s->a, out); break;
	case 5: wl_fair(c, &opt.fair, s->a, s->b, out); break;
	case 6: wl_placement(c, &opt.multi, s->a, s->b, out); break;
	case 7: wl_sizes(c, &opt.single, s->a, s->b, out); break;
	case 8: wl_regions(c, &opt.multi, s->a, s->b, out); break;
	case 9: wl_eof(c, &opt.multi, s->a, out); break;
	case 10: wl_robust(c, s->a, out); break;
	}
}

/* Can c run s?  With --processes, the many-worker workloads fork their
 * workers: only contenders that processes share; robust: only those that
 * free a killed holder's ranges.  Otherwise the row shows n/a. */
static bool can_run(const struct spec *s, const struct contender *c)
{
	bool single = s->kind == 0 || s->kind == 1 || s->kind == 7;

	if (s->kind == 10)
		return c->robust;
	return single || !opt.processes || c->processes;
}

/* The columns' order: all_contenders' (rangelock first); with
 * --processes, rl-shared and rwlock-pshared right after rangelock, so that
 * rl-shared is the base where rangelock cannot run. */
static int column(int i)
{
	static const int processes[NCONTENDERS] = { 0, 6, 7, 1, 2, 3, 4, 5, 8, 9 };

	return opt.processes ? processes[i] : i;
}

/*
 * The report.  Rows are kept while the run goes on (a progress line on
 * stderr says where it is) and printed at the end: first the verdict, a
 * line per alternative with the workloads where rangelock is ahead of it
 * and behind it, then the table, then what its words mean.
 */
#define MAX_SPECS 512
#define MAX_ROWS (MAX_SPECS * MAX_METRICS)

struct row {
	int kind;                     /* the workload (all_workloads) */
	char label[64];               /* params, metric */
	char unit[12];
	bool lower_is_better;
	double median[NCONTENDERS];   /* NAN: n/a; INFINITY: starved */
	double spread;                /* the worst contender's */
};

static struct row rows[MAX_ROWS];
static int nrows;

/* A number in at most 6 characters: 0.734, 17.9, 2544, 13.4k, 209k, 3.2M */
static const char *short_number(double v, char buf[16])
{
	static const char *const suffix[] = { "", "k", "M", "G" };
	int i = 0;

	while (v >= 9999.5 && i < 3) {
		v /= 1000;
		i++;
	}
	if (v >= 99.95 || (i == 0 && v >= 9.995 && v == (double)(long)v))
		snprintf(buf, 16, "%.0f%s", v, suffix[i]);
	else if (v >= 9.995)
		snprintf(buf, 16, "%.1f%s", v, suffix[i]);
	else if (v >= 0.0995 || v == 0)
		snprintf(buf, 16, "%.*f%s", i ? 1 : 2, v, suffix[i]);
	else
		snprintf(buf, 16, "%.0e", v);
	return buf;
}

/* A ratio in at most 6 characters: 0.85x, 1.00x, 19.5x, 1900x, <.01x */
static const char *short_ratio(double v, char buf[16])
{
	if (v < 0.01)
		snprintf(buf, 16, "<.01x");
	else if (v < 9.995)
		snprintf(buf, 16, "%.2fx", v);
	else if (v < 99.95)
		snprintf(buf, 16, "%.1fx", v);
	else if (v < 99999.5)
		snprintf(buf, 16, "%.0fx", v);
	else
		snprintf(buf, 16, ">1e5x");
	return buf;
}

/* rangelock's advantage over another median: above 1, rangelock ahead. */
static double advantage(const struct row *r, double ours, double theirs)
{
	return r->lower_is_better ? theirs / ours : ours / theirs;
}

static bool finite_number(double v)
{
	return isfinite(v) && v > 0;
}

/* The base of a row's ratios: rangelock, or with --processes rl-shared
 * where rangelock cannot run. */
static double row_base(const struct row *r)
{
	for (int i = 0; i < NCONTENDERS; i++) {
		int k = column(i);

		if (opt.use_contender[k] && !isnan(r->median[k]))
			return r->median[k];
	}
	return NAN;
}

/* Items after a heading, wrapped to 78 columns under it. */
static void print_items(const char *heading, const char *items)
{
	const char *p = *items ? items : "-";
	int col = printf("    %-20s", heading), first = col;

	while (*p) {
		size_t n = strcspn(p, ";");

		if (col > first && col + 1 + (int)n > 78)
			col = printf("\n    %-20s", "") - 1;
		else if (col > first)
			col += printf(" ");
		col += printf("%.*s%s", (int)n, p, p[n] ? "," : "");
		p += n + (p[n] != 0);
	}
	printf("\n");
}

/* One paragraph per alternative: the workloads where rangelock is ahead
 * (by more than 10%, the geometric mean of the workload's rows), even,
 * and behind; a workload where the alternative starved a class of its
 * threads (no grant in a window) and rangelock did not counts as ahead. */
static void print_verdict(void)
{
	/* with --processes, the lock processes share is the one to judge */
	int base = opt.processes ? column(1) : column(0);

	printf("verdict: %s against each alternative, by workload: the geometric mean\n"
	       "of the rows' ratios, above 1.00x where %s is ahead\n",
	       all_contenders[base]->name, all_contenders[base]->name);
	for (int i = 0; i < NCONTENDERS; i++) {
		int k = column(i);
		char ahead[1024] = "", behind[1024] = "", even[1024] = "";

		if (k == base || !opt.use_contender[k] ||
		    all_contenders[k] == &contender_rangelock_debug ||
		    all_contenders[k] == &contender_rangelock)
			continue;
		for (int w = 0; w < NWORKLOADS; w++) {
			double log_sum = 0;
			int n = 0, starved = 0;

			for (int j = 0; j < nrows; j++) {
				const struct row *r = &rows[j];

				if (r->kind != w || !finite_number(r->median[base]))
					continue;
				if (isinf(r->median[k]))
					starved++;
				if (!finite_number(r->median[k]))
					continue;
				log_sum += log(advantage(r, r->median[base], r->median[k]));
				n++;
			}
			double g = n ? exp(log_sum / n) : NAN;
			char *into = starved || g > 1.1 ? ahead : g < 1 / 1.1 ? behind
							     : even;
			size_t used = strlen(into);
			char ratio[16];

			if (!n && !starved)
				continue;
			if (starved)
				snprintf(into + used, sizeof(ahead) - used, "%s%s (it starves)",
					 used ? ";" : "", all_workloads[w]);
			else
				snprintf(into + used, sizeof(ahead) - used, "%s%s %s",
					 used ? ";" : "", all_workloads[w],
					 short_ratio(g, ratio));
		}
		printf("  vs %s\n", all_contenders[k]->name);
		print_items("ahead:", ahead);
		print_items("even (within 10%):", even);
		print_items("behind:", behind);
	}
	printf("\n");
}

static void print_table(void)
{
	int last_kind = -1;

	printf("%-32s", "workload / measurement");
	for (int i = 0; i < NCONTENDERS; i++)
		if (opt.use_contender[column(i)])
			printf(" %13s", all_contenders[column(i)]->name);
	printf(" %6s\n", "spread");
	for (int j = 0; j < nrows; j++) {
		const struct row *r = &rows[j];
		double base = row_base(r);
		char label[80], num[16], ratio[16];

		if (r->kind != last_kind)
			printf("%s\n", all_workloads[r->kind]);
		last_kind = r->kind;
		snprintf(label, sizeof(label), "  %s [%s]", r->label, r->unit);
		printf("%-32s", label);
		for (int i = 0; i < NCONTENDERS; i++) {
			int k = column(i);
			double med = r->median[k];
			char cell[32];

			if (!opt.use_contender[k])
				continue;
			if (isnan(med))
				snprintf(cell, sizeof(cell), "n/a");
			else if (isinf(med))
				snprintf(cell, sizeof(cell), "starved");
			else if (!finite_number(base))
				snprintf(cell, sizeof(cell), "%s", short_number(med, num));
			else
				snprintf(cell, sizeof(cell), "%6s %6s",
					 short_number(med, num), short_ratio(med / base, ratio));
			printf(" %13s", cell);
		}
		if (r->spread > 9.99)
			printf(" %6s\n", ">999%");
		else
			printf(" %5.0f%%\n", r->spread * 100);
	}
	printf("\nEach cell: the median of the runs, and its ratio to the first column's\n"
	       "(ns, us: lower is better; ops/s: higher is better).  spread: (max - min) /\n"
	       "median of the row's worst contender.  n/a: the contender cannot run the\n"
	       "workload (a whole-object lock has no ranges to place; with --processes, a\n"
	       "lock processes cannot share).  starved: that class of threads got no grant\n"
	       "in the window.\n");
}

/* The fair workload's latency distribution: CSV rows "<class> wait q<q>". */
static void write_cdf(const struct spec *s, const struct contender *c, int rep,
		      const struct result *res)
{
	static const char *const cls[CDF_CLASSES] = { "reader", "writer" };

	for (int k = 0; k < CDF_CLASSES; k++)
		for (int i = 0; i < CDF_POINTS; i++)
			fprintf(csv, "%s,%s,%s wait q%.5g,us,%s,%d,%.6g\n",
				s->workload, s->params, cls[k], cdf_quantiles[i],
				c->name, rep, res->cdf_us[k][i]);
}

/* Runs one spec on every contender, opt.reps times, prints its rows. */
static void measure(const struct spec *s)
{
	double v[NCONTENDERS][MAX_METRICS][16];
	struct result res = { 0 };

	for (int k = 0; k < NCONTENDERS; k++)
		for (int m = 0; m < MAX_METRICS; m++)
			for (int rep = 0; rep < 16; rep++)
				v[k][m][rep] = NAN;
	for (int k = 0; k < NCONTENDERS; k++) {
		if (!opt.use_contender[k] || !can_run(s, all_contenders[k]))
			continue;
		for (int rep = 0; rep < opt.reps; rep++) {
			run_spec(s, all_contenders[k], &res);
			for (int m = 0; m < res.n; m++) {
				v[k][m][rep] = res.value[m];
				if (csv)
					fprintf(csv, "%s,%s,%s,%s,%s,%d,%.6g\n",
						s->workload, s->params,
						res.metric[m], res.unit[m],
						all_contenders[k]->name, rep,
						res.value[m]);
			}
			if (csv && res.has_cdf)
				write_cdf(s, all_contenders[k], rep, &res);
		}
	}
	for (int m = 0; m < res.n && nrows < MAX_ROWS; m++) {
		struct row *r = &rows[nrows++];

		r->kind = s->kind;
		/* the unit says it is a throughput */
		snprintf(r->label, sizeof(r->label), "%s%s%s", s->params,
			 strcmp(res.metric[m], "throughput") ? " " : "",
			 strcmp(res.metric[m], "throughput") ? res.metric[m] : "");
		snprintf(r->unit, sizeof(r->unit), "%s", res.unit[m]);
		r->lower_is_better = res.lower_is_better[m];
		r->spread = 0;
		for (int k = 0; k < NCONTENDERS; k++) {
			double med = opt.use_contender[k] ? stats_median(v[k][m], opt.reps)
							  : NAN;

			/* no operation of the class completed (a throughput
			 * of 0, a wait of INFINITY): starved */
			if (med == 0 && !r->lower_is_better)
				med = INFINITY;
			r->median[k] = med;
			if (isfinite(med)) {
				double sp = stats_spread(v[k][m], opt.reps);

				r->spread = sp > r->spread ? sp : r->spread;
			}
		}
	}
}

static void add(struct spec *specs, int *n, int kind, int a, int b, int c,
		const char *fmt, ...)
{
	struct spec *s = &specs[(*n)++];
	va_list ap;

	s->workload = all_workloads[kind];
	s->kind = kind;
	s->a = a;
	s->b = b;
	s->c = c;
	va_start(ap, fmt);
	vsnprintf(s->params, sizeof(s->params), fmt, ap);
	va_end(ap);
	char *thr = strstr(s->params, " thr");

	if (opt.processes && thr)   /* the workers are processes */
		memcpy(thr, " prc", 4);
	if (strchr(s->params, ','))   /* a CSV field: plot.sh splits on commas */
		bench_die("internal: parameters '%s' contain a comma", s->params);
}


/* Each workload over its parameter lists (defaults set in main()). */
static int build_specs(struct spec *specs)
{
	const struct list *T = &opt.threads;
	int n = 0;

	for (int i = 0; opt.use_workload[0] && i < opt.pages.n; i++) {
		int p = opt.pages.v[i];

		if (p == 1 || !opt.quick)
			add(specs, &n, 0, p, false, 0, "rd %dp", p);
		add(specs, &n, 0, p, true, 0, "wr %dp", p);
	}
	/* held: the page among single held pages; then 1 GiB away from
	 * them, and among 16-page ranges (c = width | far << 8) */
	for (int i = 0; opt.use_workload[1] && i < opt.held.n; i++) {
		int h = opt.held.v[i];

		add(specs, &n, 1, h, false, 1, "rd %d held", h);
		add(specs, &n, 1, h, true, 1, "wr %d held", h);
		if (h == 0)
			continue;
		add(specs, &n, 1, h, true, 1 | 1 << 8, "wr %d held 1G away", h);
		if (!opt.quick || h == 1000)
			add(specs, &n, 1, h, true, 16, "wr %d held of 16p", h);
	}
	static const struct list disjoint_threads = { 5, { 1, 2, 8, 32, 64 } };
	const struct list *D = T->n ? T : &disjoint_threads;

	for (int i = 0; opt.use_workload[2] && i < D->n; i++)
		add(specs, &n, 2, D->v[i], 0, 0, "wr %d thr", D->v[i]);
	/* mixed: every mix on 2 threads (the Kogan et al. evaluation's shape
	 * on this 2-core machine), then oversubscribed, 8 and 32 threads,
	 * with the 50% mix (all mixes without --quick); or each of
	 * --threads with every mix */
	static const struct list mixed_threads = { 3, { 2, 8, 32 } };
	const struct list *M = T->n ? T : &mixed_threads;

	for (int t = 0; opt.use_workload[3] && t < M->n; t++)
		for (int m = 0; m < opt.max_pages.n; m++)
			for (int r = 0; r < opt.read_pct.n && n < MAX_SPECS; r++) {
				int threads = M->v[t];

				if (!T->n && threads != 2 && opt.quick &&
				    opt.read_pct.v[r] != 50)
					continue;
				add(specs, &n, 3, opt.read_pct.v[r], opt.max_pages.v[m],
				    threads, "%d%%rd <=%dp%s%.0d%s", opt.read_pct.v[r],
				    opt.max_pages.v[m], threads != 2 || T->n ? " " : "",
				    threads != 2 || T->n ? threads : 0,
				    threads != 2 || T->n ? "thr" : "");
			}
	static const struct list file_threads = { 3, { 2, 8, 32 } };
	const struct list *F = T->n ? T : &file_threads;

	for (int i = 0; opt.use_workload[4] && i < F->n; i++)
		add(specs, &n, 4, F->v[i], 0, 0, "%d thr", F->v[i]);
	if (opt.use_workload[5])
		add(specs, &n, 5, opt.readers, opt.writers, 0, "%dr+%dw",
		    opt.readers, opt.writers);
	/* placement: one thread, then two at each distance (the first is
	 * the scale for the others) */
	static const char *const where[PLACEMENTS] = {
		"1M", "8M", "64M", "1G", "1T", "5G+12K", "random",
	};
	for (int p = 0; opt.use_workload[6] && p < PLACEMENTS; p++) {
		if (p == 0)
			add(specs, &n, 6, 1, p, 0, "1 thr");
		/* with --processes: 1M, 1G, 1T and random */
		if (!opt.processes || p == 0 || p == 3 || p == 4 || p == 6)
			add(specs, &n, 6, 2, p, 0, "2 thr %s apart", where[p]);
	}
	/* sizes: every kind exclusive, the byte ranges shared too */
	for (int k = 0; opt.use_workload[7] && k < SIZES; k++) {
		if (k < 3 && !opt.quick)
			add(specs, &n, 7, k, false, 0, "rd %s", size_name[k]);
		add(specs, &n, 7, k, true, 0, "wr %s", size_name[k]);
	}
	/* regions: 1 GiB apart for every thread count, then two threads at
	 * the other distances (1M, 1T, random; all of them without --quick) */
	static const struct list region_threads = { 4, { 1, 2, 8, 32 } };
	const struct list *G = T->n ? T : &region_threads;

	for (int i = 0; opt.use_workload[8] && i < G->n; i++)
		add(specs, &n, 8, G->v[i], 3, 0, "1..256p %d thr", G->v[i]);
	for (int p = 0; opt.use_workload[8] && p < PLACEMENTS; p++)
		if (p != 3 && (!opt.quick || p == 0 || p == 4 || p == 6))
			add(specs, &n, 8, 2, p, 0, "1..256p 2 thr %s apart", where[p]);
	for (int k = 0; opt.use_workload[9] && k < EOF_CASES; k++)
		add(specs, &n, 9, k, 0, 0, "2 thr below EOF %s", eof_case_name[k]);
	if (opt.use_workload[10])
		add(specs, &n, 10, opt.quick ? 10 : 30, 0, 0, "%d kills",
		    opt.quick ? 10 : 30);
	return n;
}

static void print_machine(void)
{
	struct utsname u;
	char model[128] = "?", line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
	uname(&u);
	printf("machine: %ld cpus, %s, Linux %s\n", sysconf(_SC_NPROCESSORS_ONLN),
	       model, u.release);
	printf("build:   %s, %s\n", __VERSION__, RLBENCH_CFLAGS);
	printf("method:  per measurement %d ms warm-up + %d ms window (threads: %d + %d, "
	       "fair: %d + %d),\n         median of %d runs\n\n",
	       opt.single.warmup_ms, opt.single.measure_ms, opt.multi.warmup_ms,
	       opt.multi.measure_ms, opt.fair.warmup_ms, opt.fair.measure_ms, opt.reps);
}

static int find(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return i;
	return -1;
}

static int find_contender(const char *name)
{
	for (int i = 0; i < NCONTENDERS; i++)
		if (!strcmp(all_contenders[i]->name, name))
			return i;
	return -1;
}

/* "a,b,c" -> selects those names; dies on an unknown one. */
static void select_names(char *list, bool *use, bool contenders)
{
	int n = contenders ? NCONTENDERS : NWORKLOADS;

	memset(use, 0, (size_t)n * sizeof(*use));
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		int i = contenders ? find_contender(tok)
				   : find(all_workloads, NWORKLOADS, tok);
		if (i < 0)
			cli_usage_error("%s: no %s '%s' (see --list)",
					contenders ? "--contender" : "--workload",
					contenders ? "contender" : "workload", tok);
		use[i] = true;
	}
}

static void list(void)
{
	printf("workloads:\n");
	for (int i = 0; i < NWORKLOADS; i++)
		printf("  %s\n", all_workloads[i]);
	printf("contenders:\n");
	for (int i = 0; i < NCONTENDERS; i++)
		printf("  %-10s %s\n", all_contenders[i]->name, all_contenders[i]->about);
}

static long parse_long(const char *s, long lo, long hi, const char *what)
{
	return (long)cli_integer(what, s, lo, hi);
}

/* "1,2,8" -> list; each a whole number in [lo, hi]. */
static struct list parse_list(char *arg, long lo, long hi, const char *what)
{
	struct list l = { 0 };

	for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
		if (l.n == MAX_LIST)
			cli_usage_error("%s: at most %d values", what, MAX_LIST);
		l.v[l.n++] = (int)parse_long(tok, lo, hi, what);
	}
	if (l.n == 0)
		cli_usage_error("%s: '%s' has no value", what, arg);
	return l;
}

static int validate(int ms)
{
	int bad = 0, runs = 0;

	for (int k = 0; k < NCONTENDERS; k++) {
		if (!opt.use_contender[k])
			continue;
		for (int threads = 2; threads <= 16; threads *= 8) {
			long v = wl_validate(all_contenders[k], threads, ms);
			printf("validate %-10s %2d threads: %s\n", all_contenders[k]->name,
			       threads, v ? "VIOLATIONS" : "ok");
			bad += v != 0;
			runs++;
		}
	}
	printf("%d passed, %d failed\n", runs - bad, bad);
	return bad ? 1 : 0;
}

static int callgrind(const char *name, long pairs, bool exclusive)
{
	int k = find_contender(name);

	if (k < 0)
		cli_usage_error("--callgrind: no contender '%s' (see --list)", name);
	const struct contender *c = all_contenders[k];
	void *lock = c->create(1ull << 30);
	void *ctx = contender_thread_init(c, lock);
	bench_pairs_loop(c, lock, ctx, pairs, exclusive);
	contender_thread_fini(c, lock, ctx);
	c->destroy(lock);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "processes", no_argument, NULL, 'o' },
		{ "smoke", no_argument, NULL, 's' },
		{ "list", no_argument, NULL, 'l' },
		{ "csv", required_argument, NULL, 'c' },
		{ "workload", required_argument, NULL, 'w' },
		{ "contender", required_argument, NULL, 'C' },
		{ "reps", required_argument, NULL, 'r' },
		{ "validate", required_argument, NULL, 'V' },
		{ "callgrind", required_argument, NULL, 'G' },
		{ "pairs", required_argument, NULL, 'p' },
		{ "exclusive", no_argument, NULL, 'x' },
		{ "threads", required_argument, NULL, 'T' },
		{ "pages", required_argument, NULL, 'P' },
		{ "held", required_argument, NULL, 'H' },
		{ "max-pages", required_argument, NULL, 'M' },
		{ "read-pct", required_argument, NULL, 'R' },
		{ "readers", required_argument, NULL, 'e' },
		{ "writers", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ 0 },
	};
	const char *cg_name = NULL;
	long pairs = 100000, validate_ms = 0;
	bool exclusive = false, smoke = false;
	int c, reps = 0;

	bool chose_contenders = false, chose_workloads = false;
	bool chose_fair = false;

	cli_init("rlbench");
	for (int i = 0; i < NCONTENDERS; i++)   /* --validate: every one */
		opt.use_contender[i] = true;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'q': opt.quick = true; break;
		case 's': smoke = true; opt.quick = true; break;
		case 'l': list(); return 0;
		case 'c': opt.csv_path = optarg; break;
		case 'o': opt.processes = bench_processes = true; break;
		case 'w':
			select_names(optarg, opt.use_workload, false);
			chose_workloads = true;
			break;
		case 'C':
			select_names(optarg, opt.use_contender, true);
			chose_contenders = true;
			break;
		case 'r': reps = (int)parse_long(optarg, 1, 16, "--reps"); break;
		case 'V': validate_ms = parse_long(optarg, 1, 600000, "--validate"); break;
		case 'G': cg_name = optarg; break;
		case 'p': pairs = parse_long(optarg, 1, 1000000000, "--pairs"); break;
		case 'x': exclusive = true; break;
		case 'T': opt.threads = parse_list(optarg, 1, 256, "--threads"); break;
		case 'P': opt.pages = parse_list(optarg, 1, 1 << 20, "--pages"); break;
		case 'H': opt.held = parse_list(optarg, 0, 1000000, "--held"); break;
		case 'M': opt.max_pages = parse_list(optarg, 1, 1 << 17, "--max-pages"); break;
		case 'R': opt.read_pct = parse_list(optarg, 0, 100, "--read-pct"); break;
		case 'e':
			opt.readers = (int)parse_long(optarg, 0, 256, "--readers");
			chose_fair = true;
			break;
		case 'W':
			opt.writers = (int)parse_long(optarg, 0, 256, "--writers");
			chose_fair = true;
			break;
		case 'h':
			printf("usage: rlbench [--quick|--smoke] [--processes] [--list] [--csv FILE] "
			       "[--workload A,B] [--contender X,Y] [--reps 1..16]\n"
			       "               [--threads 1..256,..] [--pages N,..] [--held N,..] "
			       "[--max-pages N,..]\n"
			       "               [--read-pct N,..] [--readers N] [--writers N]\n"
			       "       rlbench --validate MS\n"
			       "       rlbench --callgrind NAME [--pairs N] [--exclusive]\n"
			       "       rlbench --help | --version\n");
			return 0;
		case 'v':
			cli_version(NULL);
		default:
			cli_getopt_failed();
		}
	}
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (chose_fair && opt.readers + opt.writers == 0)
		cli_usage_error("--readers %d --writers %d: the fair workload needs "
				"at least one thread", opt.readers, opt.writers);
	if (chose_fair && opt.readers + opt.writers > 256)
		cli_usage_error("--readers + --writers: at most 256 threads");
	if (cg_name)
		return callgrind(cg_name, pairs, exclusive);
	if (validate_ms)
		return validate((int)validate_ms);
	for (int i = 0; !chose_contenders && i < NCONTENDERS; i++) {
		const struct contender *k = all_contenders[i];

		opt.use_contender[i] = opt.processes
			? k == &contender_rangelock || k->processes
			: i < NTHREAD_CONTENDERS;
	}
	/* --processes: the pair, placements, file, fair, a killed holder */
	for (int i = 0; !chose_workloads && i < NWORKLOADS; i++)
		opt.use_workload[i] = opt.processes
			? i == 0 || i == 4 || i == 5 || i == 6 || i == 10
			: i != 10;
	if (opt.processes && !opt.pages.n)
		opt.pages = (struct list){ 1, { 1 } };

	if (!opt.pages.n)
		opt.pages = (struct list){ 3, { 1, 16, 256 } };
	if (!opt.held.n)
		opt.held = (struct list){ 5, { 0, 10, 100, 1000, 10000 } };
	if (!opt.max_pages.n)
		opt.max_pages = opt.quick ? (struct list){ 1, { 16 } }
					  : (struct list){ 2, { 16, 256 } };
	if (!opt.read_pct.n)
		opt.read_pct = (struct list){ 4, { 0, 50, 90, 100 } };
	if (!chose_fair) {
		opt.readers = 4;
		opt.writers = 1;
	}
	opt.reps = reps ? reps : opt.quick ? 3 : 5;
	opt.single = opt.quick ? (struct timing){ 10, 40 } : (struct timing){ 50, 200 };
	opt.multi = opt.quick ? (struct timing){ 20, 100 } : (struct timing){ 100, 500 };
	opt.fair = opt.quick ? (struct timing){ 50, 300 } : (struct timing){ 100, 2000 };
	if (smoke) {   /* every workload and contender once, to keep the harness alive */
		opt.reps = 1;
		opt.single = opt.multi = opt.fair = (struct timing){ 1, 5 };
	}
	if (opt.csv_path) {
		csv = fopen(opt.csv_path, "w");
		if (!csv)
			bench_die("%s: %s", opt.csv_path, strerror(errno));
		fprintf(csv, "workload,params,metric,unit,contender,rep,value\n");
	}

	static struct spec specs[MAX_SPECS];
	int n = build_specs(specs);

	print_machine();
	bool progress = isatty(STDERR_FILENO);

	for (int i = 0; i < n; i++) {
		if (progress)
			fprintf(stderr, "\rrlbench: measuring %d of %d: %s %-30s", i + 1,
				n, specs[i].workload, specs[i].params);
		measure(&specs[i]);
	}
	if (progress)
		fprintf(stderr, "\r%78s\r", "");
	print_verdict();
	print_table();
	if (csv && fclose(csv) != 0)
		bench_die("%s: %s", opt.csv_path, strerror(errno));
	return 0;
}
