/*
 * cmd_storage.c - `tagmem storage-sim`: runs the tag-storage reuse model
 * (include/tagmem/storage_sim.h) for one policy or all of them on the same
 * event sequence, prints a table or one JSON object (the cost table and the
 * workload parameters included, so every result says what produced it), can
 * save the generated events as a trace, and with --plot sweeps the tagged
 * fraction and draws gain and tagged-allocation latency with gnuplot.
 *
 * By default the policies run in one thread on events generated once for
 * all of them (tm_ss_run_policies: each policy's time is its model's plus a
 * share of the generation). With --threads N they run in parallel threads,
 * each with its own generator and model; events/s is then measured while
 * the other core is busy.
 */
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/util.h"
#include "tagmem/storage_sim.h"
#include "tools/cmds.h"

extern char **environ;

struct opts {
	tm_ss_config cfg;
	bool policy_set, all;
	tm_ss_workload w;
	const char *workload;
	const char *trace_path;
	tm_ss_trace trace;
	bool json, check;
	const char *plot;
	const char *save_trace;
	unsigned plot_points, threads;
	bool tagged_set, seed_set, events_set;
	double tagged;
	uint64_t seed, events;
	/* synthetic-only overrides, applied after the preset */
	const char *syn_flag;   /* first synthetic flag seen, for the error */
	tm_ss_phase syn;        /* values */
	unsigned syn_mask;
};

enum {
	SYN_PC = 1 << 0, SYN_UNMOV = 1 << 1, SYN_RECL = 1 << 2, SYN_CHURN = 1 << 3,
	SYN_OCC = 1 << 4, SYN_ORDERS = 1 << 5, SYN_PCORDERS = 1 << 6, SYN_PINNED = 1 << 7,
	SYN_PINMODE = 1 << 8, SYN_TAGRATE = 1 << 9, SYN_SKEW = 1 << 10,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tagmem storage-sim --policy static|cma|cma-fast|cleancache|all\n"
		"         --workload android|kvm-server|adversary|synthetic|trace:FILE\n"
		"         [--tagged-fraction F] [--seed N] [--events N] [--mem SIZE]\n"
		"         [--json] [--plot FILE.png] [OPTIONS]\n\n"
		"Model physical memory with an MTE tag-storage carve-out (1 tag frame per 32\n"
		"data frames) and measure the policies for reusing it for data.\n\n"
		"  --policy P            static: tag storage never holds data; cma: it holds\n"
		"                        movable data, reserved with alloc_contig_range (drain +\n"
		"                        migrate); cma-fast: free frames taken off the buddy\n"
		"                        lists first; cleancache: only clean page cache, dropped\n"
		"                        when needed; all: every policy on the same events\n"
		"  --workload W          a scenario, synthetic, or trace:FILE (see\n"
		"                        docs/FORMAT.md §storage-trace)\n"
		"  --tagged-fraction F   tagged share of anonymous allocations (0..1)\n"
		"  --seed N              workload seed (default 1)\n"
		"  --events N            measured events (default 10000000), after a\n"
		"                        warm-up that fills memory (not measured)\n"
		"  --mem SIZE            physical memory (default 16G)\n"
		"  --json                one JSON object instead of a table\n"
		"  --plot FILE.png       sweep the tagged fraction and plot gain and tagged\n"
		"                        allocation latency per policy (writes FILE.gp and\n"
		"                        FILE.dat next to it; needs gnuplot)\n"
		"  --plot-points N       points of the sweep (default 11: 0, 0.1, ... 1)\n"
		"  --page-size SIZE      frame size (default 4096)\n"
		"  --tag-block N         tag-storage frames per tag block (default 1)\n"
		"  --tag-retries N       other placements tried when a tag block cannot be\n"
		"                        reserved (default 0: the allocation fails, as RFC v2)\n"
		"  --cost KEY=NS         override one cost (repeatable); --cost FILE or\n"
		"  --cost-file FILE      read KEY=NS lines; --costs lists keys and defaults\n"
		"  --threads N           run policies in N threads (default 1)\n"
		"  --check               check every invariant after every event (debug\n"
		"                        builds; slow on large memories)\n"
		"  --save-trace FILE     write the generated events as a trace and exit\n"
		"synthetic workload only:\n"
		"  --pagecache-fraction F  --unmovable-fraction F  --reclaimable-fraction F\n"
		"  --churn F             share of events that allocate or free\n"
		"  --occupancy F         live demand aimed at, fraction of RAM (default 1.05)\n"
		"  --orders MIX          anonymous folio orders, e.g. 0:90,2:5,4:5\n"
		"  --pc-orders MIX       page-cache folio orders (default 0:100)\n"
		"  --pinned-fraction F   share of anonymous folios pinned until freed\n"
		"  --pin-mode M          longterm (FOLL_LONGTERM) or inplace (vmsplice)\n"
		"  --tag-event-rate F    share of accesses that mprotect(PROT_MTE) a folio\n"
		"  --read-skew K         page-cache reads: 1 uniform, K: hottest x get x^(1/K)\n"
		"                        of the reads (default 3)\n");
}

static void list_costs(FILE *f)
{
	tm_ss_costs c;

	tm_ss_costs_default(&c);
	fprintf(f, "%-22s %10s  %-8s %s\n", "key", "default ns", "per", "where the default comes from");
	for (unsigned k = 0; k < TM_SS_COST_COUNT; k++)
		fprintf(f, "%-22s %10llu  %-8s %s\n", tm_ss_cost_name(k), (unsigned long long)c.ns[k],
			tm_ss_cost_unit(k), tm_ss_cost_source(k));
}

/* ---------------------------------------------------------------- */
/* argument parsing                                                 */
/* ---------------------------------------------------------------- */

static int bad(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "tagmem storage-sim: %s '%s': %s\n", opt, val, why);
	return 2;
}

static int parse_frac(const char *opt, const char *v, double *out)
{
	char *end;

	errno = 0;
	double x = strtod(v, &end);

	if (errno || end == v || *end || !(x >= 0 && x <= 1))
		return bad(opt, v, "expected a fraction between 0 and 1");
	*out = x;
	return 0;
}

/* A decimal integer in [min, max]; the error says the range. */
static int parse_u64(const char *opt, const char *v, uint64_t min, uint64_t max,
		     uint64_t *out)
{
	char *end, range[80];

	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);

	if (errno || end == v || *end || v[0] == '-' || x < min || x > max) {
		if (max == UINT64_MAX)
			snprintf(range, sizeof(range), "expected an unsigned 64-bit "
				 "decimal integer");
		else
			snprintf(range, sizeof(range), "expected an integer %llu..%llu",
				 (unsigned long long)min, (unsigned long long)max);
		return bad(opt, v, range);
	}
	*out = x;
	return 0;
}

static int parse_cost(struct opts *o, const char *v, bool file)
{
	tm_error e;

	tm_error_clear(&e);
	if (!file && strchr(v, '='))
		return tm_ss_costs_set(&o->cfg.costs, v, &e) ? bad("--cost", v, tm_error_msg(&e)) : 0;
	return tm_ss_costs_load(&o->cfg.costs, v, &e) ? bad("--cost-file", v, tm_error_msg(&e)) : 0;
}

static int parse_synthetic(struct opts *o, const char *opt, const char *v)
{
	static const struct { const char *name; unsigned bit; } syn[] = {
		{ "--pagecache-fraction", SYN_PC }, { "--unmovable-fraction", SYN_UNMOV },
		{ "--reclaimable-fraction", SYN_RECL }, { "--churn", SYN_CHURN },
		{ "--occupancy", SYN_OCC }, { "--orders", SYN_ORDERS },
		{ "--pc-orders", SYN_PCORDERS }, { "--pinned-fraction", SYN_PINNED },
		{ "--pin-mode", SYN_PINMODE }, { "--tag-event-rate", SYN_TAGRATE },
		{ "--read-skew", SYN_SKEW },
	};
	tm_error e;
	unsigned bit = 0;

	for (unsigned i = 0; i < sizeof(syn) / sizeof(syn[0]); i++)
		if (strcmp(opt, syn[i].name) == 0)
			bit = syn[i].bit;
	if (!bit)
		return -1;
	if (!o->syn_flag)
		o->syn_flag = opt;
	o->syn_mask |= bit;
	tm_error_clear(&e);
	switch (bit) {
	case SYN_PC: return parse_frac(opt, v, &o->syn.pagecache_fraction);
	case SYN_UNMOV: return parse_frac(opt, v, &o->syn.unmovable_fraction);
	case SYN_RECL: return parse_frac(opt, v, &o->syn.reclaimable_fraction);
	case SYN_CHURN: return parse_frac(opt, v, &o->syn.churn);
	case SYN_PINNED: return parse_frac(opt, v, &o->syn.pinned_fraction);
	case SYN_TAGRATE: return parse_frac(opt, v, &o->syn.tag_event_rate);
	case SYN_SKEW: {
		char *end;

		o->syn.read_skew = strtod(v, &end);
		if (end == v || *end || !(o->syn.read_skew >= 1 && o->syn.read_skew <= 16))
			return bad(opt, v, "expected a number in [1, 16]");
		return 0;
	}
	case SYN_OCC: {
		char *end;

		o->syn.occupancy = strtod(v, &end);
		if (end == v || *end || !(o->syn.occupancy > 0 && o->syn.occupancy <= 4))
			return bad(opt, v, "expected a number in (0, 4]");
		return 0;
	}
	case SYN_ORDERS:
		return tm_ss_order_mix_parse(v, o->syn.order_weight, &e) ? bad(opt, v, tm_error_msg(&e)) : 0;
	case SYN_PCORDERS:
		return tm_ss_order_mix_parse(v, o->syn.pc_order_weight, &e) ? bad(opt, v, tm_error_msg(&e)) : 0;
	default:
		if (strcmp(v, "longterm") && strcmp(v, "inplace"))
			return bad(opt, v, "expected longterm or inplace");
		o->syn.pin_longterm = strcmp(v, "longterm") == 0;
		return 0;
	}
}

static int parse_sizes(struct opts *o, const char *opt, const char *v)
{
	uint64_t x;

	if (strcmp(opt, "--mem") == 0) {
		if (tm_parse_size(v, &x) || x == 0)
			return bad(opt, v, "expected a size such as 16G or 512M");
		o->cfg.mem_bytes = x;
	} else if (strcmp(opt, "--page-size") == 0) {
		if (tm_parse_size(v, &x) || x < 512 || x > 65536 || (x & (x - 1)))
			return bad(opt, v, "expected a power of two from 512 to 64K");
		o->cfg.page_size = (uint32_t)x;
	} else if (strcmp(opt, "--tag-block") == 0) {
		if (parse_u64(opt, v, 1, 4096, &x))
			return 2;
		o->cfg.tag_block_frames = (uint32_t)x;
	} else {
		return -1;
	}
	return 0;
}

static int parse_policy(struct opts *o, const char *v)
{
	tm_error e;

	o->policy_set = true;
	if (strcmp(v, "all") == 0) {
		o->all = true;
		return 0;
	}
	tm_error_clear(&e);
	return tm_ss_policy_parse(v, &o->cfg.policy, &e) ? bad("--policy", v, tm_error_msg(&e)) : 0;
}

/* Options that take a value. Returns 0, 2 (usage error) or -1 (unknown). */
static int parse_valued(struct opts *o, const char *opt, const char *v)
{
	uint64_t x;
	int r;

	if (strcmp(opt, "--policy") == 0)
		return parse_policy(o, v);
	if (strcmp(opt, "--workload") == 0) {
		o->workload = v;
		return 0;
	}
	if (strcmp(opt, "--tagged-fraction") == 0) {
		o->tagged_set = true;
		return parse_frac(opt, v, &o->tagged);
	}
	if (strcmp(opt, "--seed") == 0) {
		o->seed_set = true;
		return parse_u64(opt, v, 0, UINT64_MAX, &o->seed);
	}
	if (strcmp(opt, "--events") == 0) {
		o->events_set = true;
		return parse_u64(opt, v, 1, 1ull << 40, &o->events);
	}
	if (strcmp(opt, "--plot") == 0) {
		o->plot = v;
		return 0;
	}
	if (strcmp(opt, "--save-trace") == 0) {
		o->save_trace = v;
		return 0;
	}
	if (strcmp(opt, "--cost") == 0 || strcmp(opt, "--cost-file") == 0)
		return parse_cost(o, v, strcmp(opt, "--cost-file") == 0);
	if (strcmp(opt, "--tag-retries") == 0) {
		r = parse_u64(opt, v, 0, 16, &x);
		if (r == 0)
			o->cfg.tag_retries = (uint32_t)x;
		return r;
	}
	if (strcmp(opt, "--threads") == 0 || strcmp(opt, "--plot-points") == 0) {
		r = opt[2] == 't' ? parse_u64(opt, v, 1, 64, &x) : parse_u64(opt, v, 2, 101, &x);
		if (r == 0)
			*(opt[2] == 't' ? &o->threads : &o->plot_points) = (unsigned)x;
		return r;
	}
	r = parse_sizes(o, opt, v);
	return r != -1 ? r : parse_synthetic(o, opt, v);
}

static const char *const valued_opts[] = {
	"--policy", "--workload", "--tagged-fraction", "--seed", "--events", "--mem", "--plot",
	"--plot-points", "--page-size", "--tag-block", "--tag-retries", "--cost", "--cost-file",
	"--threads", "--save-trace", "--pagecache-fraction", "--unmovable-fraction",
	"--reclaimable-fraction", "--churn", "--occupancy", "--orders", "--pc-orders",
	"--pinned-fraction", "--pin-mode", "--tag-event-rate", "--read-skew",
};

static bool takes_value(const char *a)
{
	for (unsigned i = 0; i < sizeof(valued_opts) / sizeof(valued_opts[0]); i++)
		if (strcmp(a, valued_opts[i]) == 0)
			return true;
	return false;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--check") == 0) {
			o->check = true;
		} else if (!takes_value(a)) {
			fprintf(stderr, "tagmem storage-sim: unknown option '%s' (see --help)\n", a);
			return 2;
		} else if (i + 1 >= argc) {
			fprintf(stderr, "tagmem storage-sim: %s needs a value\n", a);
			return 2;
		} else {
			int r = parse_valued(o, a, argv[++i]);

			if (r)
				return r;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* workload set-up                                                  */
/* ---------------------------------------------------------------- */

static void apply_synthetic_phase(const struct opts *o, tm_ss_phase *p)
{
	const tm_ss_phase *v = &o->syn;

	if (o->syn_mask & SYN_PC) p->pagecache_fraction = v->pagecache_fraction;
	if (o->syn_mask & SYN_UNMOV) p->unmovable_fraction = v->unmovable_fraction;
	if (o->syn_mask & SYN_RECL) p->reclaimable_fraction = v->reclaimable_fraction;
	if (o->syn_mask & SYN_CHURN) p->churn = v->churn;
	if (o->syn_mask & SYN_OCC) p->occupancy = v->occupancy;
	if (o->syn_mask & SYN_PINNED) p->pinned_fraction = v->pinned_fraction;
	if (o->syn_mask & SYN_PINMODE) p->pin_longterm = v->pin_longterm;
	if (o->syn_mask & SYN_TAGRATE) p->tag_event_rate = v->tag_event_rate;
	if (o->syn_mask & SYN_SKEW) p->read_skew = v->read_skew;
	if (o->syn_mask & SYN_ORDERS)
		memcpy(p->order_weight, v->order_weight, sizeof(p->order_weight));
	if (o->syn_mask & SYN_PCORDERS)
		memcpy(p->pc_order_weight, v->pc_order_weight, sizeof(p->pc_order_weight));
}

static void apply_synthetic(struct opts *o)
{
	for (unsigned i = 0; i < o->w.nphases; i++)
		apply_synthetic_phase(o, &o->w.phase[i]);
}

static int setup_trace(struct opts *o)
{
	tm_error e;

	tm_error_clear(&e);
	o->trace_path = o->workload + 6;
	if (o->syn_flag || o->tagged_set || o->seed_set || o->events_set) {
		fprintf(stderr, "tagmem storage-sim: %s does not apply to a trace workload\n",
			o->syn_flag ? o->syn_flag : o->tagged_set ? "--tagged-fraction" :
			o->seed_set ? "--seed" : "--events");
		return 2;
	}
	if (tm_ss_trace_load(o->trace_path, &o->trace, &e)) {
		fprintf(stderr, "tagmem storage-sim: %s\n", tm_error_msg(&e));
		return 1;
	}
	return 0;
}

static int setup_workload(struct opts *o)
{
	tm_error e;

	tm_error_clear(&e);
	if (!o->workload) {
		fprintf(stderr, "tagmem storage-sim: --workload is required (see --help)\n");
		return 2;
	}
	if (strncmp(o->workload, "trace:", 6) == 0)
		return setup_trace(o);
	if (tm_ss_workload_preset(o->workload, &o->w, &e))
		return bad("--workload", o->workload, tm_error_msg(&e));
	if (o->syn_flag && strcmp(o->workload, "synthetic") != 0) {
		fprintf(stderr, "tagmem storage-sim: %s only applies to --workload synthetic\n", o->syn_flag);
		return 2;
	}
	apply_synthetic(o);
	if (o->tagged_set)
		tm_ss_workload_set_tagged(&o->w, o->tagged);
	if (o->seed_set)
		o->w.seed = o->seed;
	if (o->events_set)
		o->w.events = o->events;
	if (tm_ss_workload_validate(&o->w, &e)) {
		fprintf(stderr, "tagmem storage-sim: %s\n", tm_error_msg(&e));
		return 2;
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* running                                                          */
/* ---------------------------------------------------------------- */

struct job {
	const struct opts *o;
	tm_ss_policy policy;
	bool sweep;
	double tagged;
	tm_ss_result res;
	int rc;
	tm_error err;
};

struct queue {
	struct job *jobs;
	unsigned n, next;
	pthread_mutex_t lock;
};

static void run_job(struct job *j)
{
	tm_ss_config cfg = j->o->cfg;
	tm_ss_workload w = j->o->w;

	cfg.policy = j->policy;
	cfg.check_invariants = j->o->check ? 1 : -1;
	if (j->sweep)
		tm_ss_workload_set_tagged(&w, j->tagged);
	tm_error_clear(&j->err);
	j->rc = tm_ss_run(&cfg, j->o->trace_path ? NULL : &w,
			  j->o->trace_path ? &j->o->trace : NULL, &j->res, &j->err);
}

static void *worker(void *arg)
{
	struct queue *q = arg;

	for (;;) {
		pthread_mutex_lock(&q->lock);
		unsigned i = q->next < q->n ? q->next++ : q->n;

		pthread_mutex_unlock(&q->lock);
		if (i == q->n)
			return NULL;
		run_job(&q->jobs[i]);
	}
}

static int run_jobs(const struct opts *o, struct job *jobs, unsigned n)
{
	struct queue q = { .jobs = jobs, .n = n };
	pthread_t th[64];
	unsigned nt = o->threads < n ? o->threads : n, started = 0;

	pthread_mutex_init(&q.lock, NULL);
	for (unsigned i = 1; i < nt; i++)
		if (pthread_create(&th[started], NULL, worker, &q) == 0)
			started++;
	worker(&q);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&q.lock);
	for (unsigned i = 0; i < n; i++) {
		if (jobs[i].rc) {
			fprintf(stderr, "tagmem storage-sim: policy %s: %s\n",
				tm_ss_policy_name(jobs[i].policy), tm_error_msg(&jobs[i].err));
			return 1;
		}
	}
	return 0;
}

static unsigned policies(const struct opts *o, tm_ss_policy *out)
{
	if (!o->all) {
		out[0] = o->cfg.policy;
		return 1;
	}
	for (unsigned p = 0; p < TM_SS_POLICY_COUNT; p++)
		out[p] = (tm_ss_policy)p;
	return TM_SS_POLICY_COUNT;
}

/* ---------------------------------------------------------------- */
/* output                                                           */
/* ---------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void mix_str(char *buf, size_t n, const uint32_t *w)
{
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned o = 0; o <= TM_SS_MAX_ORDER && len < n; o++)
		if (w[o])
			len += (size_t)snprintf(buf + len, n - len, "%s%u:%u", len ? "," : "", o, w[o]);
}

static void json_phase(FILE *f, const tm_ss_phase *p)
{
	char a[128], b[128];

	mix_str(a, sizeof(a), p->order_weight);
	mix_str(b, sizeof(b), p->pc_order_weight);
	fprintf(f, "{\"share\": %.6g, \"tagged_fraction\": %.6g, \"pagecache_fraction\": %.6g, "
		"\"unmovable_fraction\": %.6g, \"reclaimable_fraction\": %.6g, \"churn\": %.6g, "
		"\"occupancy\": %.6g, \"pinned_fraction\": %.6g, \"pin_mode\": \"%s\", "
		"\"tag_event_rate\": %.6g, \"read_skew\": %.6g, \"orders\": \"%s\", \"pc_orders\": \"%s\", \"adversary_rate\": %.6g, \"adversary_cap\": %.6g, "
		"\"warmup\": %s}",
		p->share, p->tagged_fraction, p->pagecache_fraction, p->unmovable_fraction,
		p->reclaimable_fraction, p->churn, p->occupancy, p->pinned_fraction,
		p->pin_longterm ? "longterm" : "inplace", p->tag_event_rate, p->read_skew, a, b,
		p->adversary_rate, p->adversary_cap, p->warmup ? "true" : "false");
}

static void json_workload(FILE *f, const struct opts *o)
{
	if (o->trace_path) {
		fprintf(f, "{\"name\": \"trace\", \"file\": ");
		json_str(f, o->trace_path);
		fprintf(f, ", \"events\": %zu, \"objects\": %u}", o->trace.n, o->trace.max_objects);
		return;
	}
	fprintf(f, "{\"name\": ");
	json_str(f, o->w.name);
	fprintf(f, ", \"events\": %llu, \"seed\": %llu, \"phases\": [",
		(unsigned long long)o->w.events, (unsigned long long)o->w.seed);
	for (unsigned i = 0; i < o->w.nphases; i++) {
		fprintf(f, "%s", i ? ", " : "");
		json_phase(f, &o->w.phase[i]);
	}
	fprintf(f, "]}");
}

static void json_config(FILE *f, const struct opts *o, const tm_ss_geometry *g)
{
	fprintf(f, "\"memory\": {\"mem_bytes\": %llu, \"page_size\": %u, \"frames\": %u, "
		"\"data_frames\": %u, \"tag_storage_frames\": %u, \"tag_block_frames\": %u, "
		"\"tag_blocks\": %u}, \"tag_retries\": %u, \"cost_table\": \"%s\", \"cost_table_ns\": {",
		(unsigned long long)g->mem_bytes, g->page_size, g->frames, g->data_frames,
		g->tag_frames, g->tag_block_frames, g->tag_blocks, o->cfg.tag_retries,
		o->cfg.costs.overridden ? "default with overrides" : "default");
	for (unsigned k = 0; k < TM_SS_COST_COUNT; k++)
		fprintf(f, "%s\"%s\": %llu", k ? ", " : "", tm_ss_cost_name(k),
			(unsigned long long)o->cfg.costs.ns[k]);
	fprintf(f, "}");
}

struct metric {
	const char *name;
	size_t off;     /* offset in tm_ss_stats */
	bool dbl;
};

#define M(f) { #f, offsetof(tm_ss_stats, f), false }
#define D(f) { #f, offsetof(tm_ss_stats, f), true }
static const struct metric metrics[] = {
	D(usable_gain_pct), D(used_gain_pct), D(tag_reserved_pct), M(tagged_alloc_p50_ns),
	M(tagged_alloc_p99_ns), M(tagged_alloc_max_ns), M(tagged_allocs), M(tagged_alloc_failures),
	M(fail_pinned), M(fail_nomem), M(alloc_failures), M(pin_failures), M(frames_migrated),
	M(frames_dropped), M(frames_taken_fast), M(frames_evicted), M(frames_compacted), M(refaults), M(refaults_policy),
	M(refault_frames), M(cleancache_hits), M(drains), M(contig_calls), M(reservations),
	M(releases), M(ops_on_failed), M(modelled_ns), M(tagged_ns), M(events),
};
#undef M
#undef D

static double metric(const tm_ss_stats *st, const struct metric *m)
{
	const char *p = (const char *)st + m->off;

	if (m->dbl)
		return *(const double *)(const void *)p;
	return (double)*(const uint64_t *)(const void *)p;
}

static double mean_tagged_us(const tm_ss_stats *st)
{
	return st->tagged_allocs ? (double)st->tagged_ns / (double)st->tagged_allocs / 1e3 : 0.0;
}

/* Modelled time beyond the static policy's on the same events, in %. */
static bool overhead(const struct job *j, const struct job *jobs, unsigned n, double *pct)
{
	for (unsigned i = 0; i < n; i++) {
		if (jobs[i].policy == TM_SS_STATIC && jobs[i].sweep == j->sweep &&
		    jobs[i].tagged == j->tagged && jobs[i].res.st.modelled_ns) {
			*pct = ((double)j->res.st.modelled_ns - (double)jobs[i].res.st.modelled_ns) /
			       (double)jobs[i].res.st.modelled_ns * 100.0;
			return true;
		}
	}
	return false;
}

static void json_result(FILE *f, const struct job *j, const struct job *jobs, unsigned n)
{
	const tm_ss_stats *st = &j->res.st;
	double pct;

	fprintf(f, "{\"policy\": \"%s\"", tm_ss_policy_name(j->policy));
	for (unsigned m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
		if (metrics[m].dbl)
			fprintf(f, ", \"%s\": %.6g", metrics[m].name, metric(st, &metrics[m]));
		else
			fprintf(f, ", \"%s\": %.0f", metrics[m].name, metric(st, &metrics[m]));
	}
	fprintf(f, ", \"tagged_alloc_mean_ns\": %.6g", mean_tagged_us(st) * 1e3);
	fprintf(f, ", \"modelled_ns_per_event\": %.6g",
		st->events ? (double)st->modelled_ns / (double)st->events : 0.0);
	if (overhead(j, jobs, n, &pct))
		fprintf(f, ", \"overhead_vs_static_pct\": %.6g", pct);
	else
		fprintf(f, ", \"overhead_vs_static_pct\": null");
	fprintf(f, ", \"warmup_events\": %llu", (unsigned long long)j->res.warmup_events);
	fprintf(f, ", \"seconds\": %.6g, \"events_per_s\": %.6g, \"cpu_seconds\": %.6g, "
		"\"events_per_cpu_s\": %.6g, \"sim_events_per_cpu_s\": %.6g, "
		"\"event_stream_hash\": \"%016llx\"}",
		j->res.seconds, j->res.events_per_s, j->res.cpu_seconds, j->res.events_per_cpu_s,
		j->res.sim_events_per_cpu_s, (unsigned long long)j->res.stream_hash);
}

static void print_json(const struct opts *o, const struct job *jobs, unsigned n)
{
	printf("{\"tool\": \"tagmem storage-sim\", \"version\": \"%s\", \"workload\": ", TAGMEM_VERSION);
	json_workload(stdout, o);
	printf(", ");
	json_config(stdout, o, &jobs[0].res.geo);
	printf(", \"policies\": [");
	for (unsigned i = 0; i < n; i++) {
		printf("%s", i ? ", " : "");
		json_result(stdout, &jobs[i], jobs, n);
	}
	printf("]}\n");
}

static void print_header(const struct opts *o, const tm_ss_geometry *g)
{
	if (o->trace_path)
		printf("workload trace %s: %zu events, %u objects\n", o->trace_path, o->trace.n,
		       o->trace.max_objects);
	else
		printf("workload %s: %llu events, seed %llu, %u phase(s)\n", o->w.name,
		       (unsigned long long)o->w.events, (unsigned long long)o->w.seed, o->w.nphases);
	printf("memory %.2f GiB: %u frames of %u B = %u data + %u tag storage (blocks of %u frame(s))\n",
	       (double)g->mem_bytes / (1 << 30), g->frames, g->page_size, g->data_frames,
	       g->tag_frames, g->tag_block_frames);
	printf("cost table (ns, %s):", o->cfg.costs.overridden ? "default with overrides" : "default");
	for (unsigned k = 0; k < TM_SS_COST_COUNT; k++)
		printf("%s %s=%llu", k % 5 ? "" : "\n ", tm_ss_cost_name(k),
		       (unsigned long long)o->cfg.costs.ns[k]);
	printf("\n\n");
}

static void print_table(const struct opts *o, const struct job *jobs, unsigned n)
{
	double pct;

	print_header(o, &jobs[0].res.geo);
	printf("%-24s", "");
	for (unsigned i = 0; i < n; i++)
		printf(" %14s", tm_ss_policy_name(jobs[i].policy));
	printf("\n");
	for (unsigned m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
		printf("%-24s", metrics[m].name);
		for (unsigned i = 0; i < n; i++)
			printf(metrics[m].dbl ? " %14.3f" : " %14.0f", metric(&jobs[i].res.st, &metrics[m]));
		printf("\n");
	}
	printf("%-24s", "tagged_alloc_mean_ns");
	for (unsigned i = 0; i < n; i++)
		printf(" %14.0f", mean_tagged_us(&jobs[i].res.st) * 1e3);
	printf("\n");
	printf("%-24s", "overhead_vs_static_pct");
	for (unsigned i = 0; i < n; i++) {
		if (overhead(&jobs[i], jobs, n, &pct))
			printf(" %14.3f", pct);
		else
			printf(" %14s", "-");
	}
	printf("\n%-24s", "events_per_s");
	for (unsigned i = 0; i < n; i++)
		printf(" %14.0f", jobs[i].res.events_per_s);
	printf("\n%-24s", "events_per_cpu_s");
	for (unsigned i = 0; i < n; i++)
		printf(" %14.0f", jobs[i].res.events_per_cpu_s);
	printf("\n%-24s", "sim_events_per_cpu_s");
	for (unsigned i = 0; i < n; i++)
		printf(" %14.0f", jobs[i].res.sim_events_per_cpu_s);
	printf("\n");
}

/* One thread: every policy on events generated once (tm_ss_run_policies). */
static int run_shared(const struct opts *o, struct job *jobs, const tm_ss_policy *pol, unsigned n)
{
	tm_ss_config cfg = o->cfg;
	tm_ss_result res[TM_SS_POLICY_COUNT];
	tm_error e;

	cfg.check_invariants = o->check ? 1 : -1;
	tm_error_clear(&e);
	if (tm_ss_run_policies(&cfg, pol, n, o->trace_path ? NULL : &o->w,
			       o->trace_path ? &o->trace : NULL, res, &e)) {
		fprintf(stderr, "tagmem storage-sim: %s\n", tm_error_msg(&e));
		return 1;
	}
	for (unsigned i = 0; i < n; i++)
		jobs[i].res = res[i];
	return 0;
}

static int do_run(const struct opts *o)
{
	struct job jobs[TM_SS_POLICY_COUNT];
	tm_ss_policy pol[TM_SS_POLICY_COUNT];
	unsigned n = policies(o, pol);

	memset(jobs, 0, sizeof(jobs));
	for (unsigned i = 0; i < n; i++) {
		jobs[i].o = o;
		jobs[i].policy = pol[i];
	}
	int r = o->threads == 1 ? run_shared(o, jobs, pol, n) : run_jobs(o, jobs, n);

	if (r)
		return r;
	if (o->json)
		print_json(o, jobs, n);
	else
		print_table(o, jobs, n);
	return 0;
}

/* ---------------------------------------------------------------- */
/* --save-trace                                                     */
/* ---------------------------------------------------------------- */

static int write_generated(tm_ss_gen *g, FILE *f, tm_error *e)
{
	tm_ss_event *buf = malloc(65536 * sizeof(*buf));
	size_t n;
	int r;

	if (!buf)
		return tm_error_set(e, -ENOMEM, "out of memory");
	r = tm_ss_trace_write_header(f, e);
	while (r == 0 && (n = tm_ss_gen_fill(g, buf, 65536)) > 0)
		r = tm_ss_trace_write_events(f, buf, n, e);
	free(buf);
	return r;
}

static int do_save_trace(const struct opts *o)
{
	tm_ss_geometry geo;
	tm_ss_gen *g = NULL;
	tm_error e;
	FILE *f;
	int r;

	tm_error_clear(&e);
	if (o->trace_path) {
		fprintf(stderr, "tagmem storage-sim: --save-trace needs a generated workload\n");
		return 2;
	}
	if ((r = tm_ss_config_geometry(&o->cfg, &geo, &e)) || (r = tm_ss_gen_create(&o->w, geo.frames, &g, &e))) {
		fprintf(stderr, "tagmem storage-sim: %s\n", tm_error_msg(&e));
		return 2;
	}
	if (!(f = fopen(o->save_trace, "w"))) {
		fprintf(stderr, "tagmem storage-sim: %s: %s\n", o->save_trace, strerror(errno));
		tm_ss_gen_destroy(g);
		return 1;
	}
	r = write_generated(g, f, &e);
	if (fclose(f) && r == 0)
		r = tm_error_set(&e, -EIO, "close failed");
	tm_ss_gen_destroy(g);
	if (r) {
		fprintf(stderr, "tagmem storage-sim: writing %s: %s\n", o->save_trace, tm_error_msg(&e));
		return 1;
	}
	fprintf(stderr, "tagmem storage-sim: wrote %s\n", o->save_trace);
	return 0;
}

/* ---------------------------------------------------------------- */
/* --plot                                                           */
/* ---------------------------------------------------------------- */

static void plot_paths(const char *png, char *base, size_t n)
{
	size_t l = strlen(png);

	snprintf(base, n, "%.*s", (int)(l > 4 && strcmp(png + l - 4, ".png") == 0 ? l - 4 : l), png);
}

static int write_dat(const char *path, const struct job *jobs, unsigned npts, unsigned npol)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "# tagged_fraction, then per policy: usable_gain_pct used_gain_pct "
		   "tagged_mean_us tagged_p99_us\n");
	for (unsigned p = 0; p < npts; p++) {
		fprintf(f, "%.4f", jobs[p * npol].tagged);
		for (unsigned k = 0; k < npol; k++) {
			const tm_ss_stats *st = &jobs[p * npol + k].res.st;

			fprintf(f, " %.6g %.6g", st->usable_gain_pct, st->used_gain_pct);
			if (st->tagged_allocs)
				fprintf(f, " %.6g %.6g", mean_tagged_us(st),
					(double)st->tagged_alloc_p99_ns / 1e3);
			else
				fprintf(f, " NaN NaN");
		}
		fprintf(f, "\n");
	}
	return fclose(f) ? -errno : 0;
}

static void gp_series(FILE *f, const char *dat, const struct job *jobs, unsigned npol,
		      unsigned col, const char *style, const char *suffix, bool first)
{
	static const char *const color[TM_SS_POLICY_COUNT] = { "#444444", "#d62728", "#1f77b4", "#2ca02c" };

	for (unsigned k = 0; k < npol; k++)
		fprintf(f, "%s'%s' using 1:%u with linespoints lw 2 %s lc rgb '%s' title '%s%s'",
			first && k == 0 ? "" : ", \\\n     ", dat, 2 + 4 * k + col, style,
			color[jobs[k].policy], tm_ss_policy_name(jobs[k].policy), suffix);
}

static int write_gp(const char *gp, const char *dat, const char *png, const struct opts *o,
		    const struct job *jobs, unsigned npol)
{
	FILE *f = fopen(gp, "w");

	if (!f)
		return -errno;
	fprintf(f, "# generated by tagmem storage-sim --plot; run: gnuplot %s\n"
		"set terminal pngcairo size 1200,1000 font 'DejaVu Sans,11'\n"
		"set output '%s'\n"
		"set multiplot layout 2,1 title \"tagmem storage-sim: workload %s, %.1f GiB, "
		"%llu measured events per point, seed %llu\"\n"
		"set grid\nset key outside right\nset xrange [0:1]\n"
		"set xlabel 'tagged fraction of anonymous allocations'\n"
		"set ylabel 'tag storage holding no tags / data (%% of RAM)'\nplot ",
		gp, png, o->w.name, (double)jobs[0].res.geo.mem_bytes / (1 << 30),
		(unsigned long long)o->w.events, (unsigned long long)o->w.seed);
	gp_series(f, dat, jobs, npol, 0, "", " usable", true);
	gp_series(f, dat, jobs, npol, 1, "dt 2", " used", false);
	fprintf(f, "\nset ylabel 'tagged allocation cost (us, log scale)'\nset logscale y\nplot ");
	gp_series(f, dat, jobs, npol, 2, "", " mean", true);
	gp_series(f, dat, jobs, npol, 3, "dt 2", " p99", false);
	fprintf(f, "\nunset multiplot\n");
	return fclose(f) ? -errno : 0;
}

static int run_gnuplot(const char *gp)
{
	char *argv[] = { "gnuplot", (char *)gp, NULL };
	pid_t pid;
	int st;

	if (posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ) != 0) {
		fprintf(stderr, "tagmem storage-sim: cannot run gnuplot (install gnuplot-nox)\n");
		return 1;
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "tagmem storage-sim: gnuplot %s failed\n", gp);
		return 1;
	}
	return 0;
}

static void print_sweep(const struct opts *o, const struct job *jobs, unsigned npts,
			unsigned npol, const char *png)
{
	if (!o->json) {
		printf("%-8s", "tagged");
		for (unsigned k = 0; k < npol; k++)
			printf(" %12s gain%% mean-us  p99-us", tm_ss_policy_name(jobs[k].policy));
		printf("\n");
		for (unsigned p = 0; p < npts; p++) {
			printf("%-8.3f", jobs[p * npol].tagged);
			for (unsigned k = 0; k < npol; k++) {
				const tm_ss_stats *st = &jobs[p * npol + k].res.st;

				printf(" %18.3f %7.1f %7.1f", st->usable_gain_pct, mean_tagged_us(st),
				       (double)st->tagged_alloc_p99_ns / 1e3);
			}
			printf("\n");
		}
		printf("wrote %s\n", png);
		return;
	}
	printf("{\"tool\": \"tagmem storage-sim\", \"version\": \"%s\", \"plot\": ", TAGMEM_VERSION);
	json_str(stdout, png);
	printf(", \"workload\": ");
	json_workload(stdout, o);
	printf(", ");
	json_config(stdout, o, &jobs[0].res.geo);
	printf(", \"points\": [");
	for (unsigned p = 0; p < npts; p++) {
		printf("%s{\"tagged_fraction\": %.6g, \"policies\": [", p ? ", " : "", jobs[p * npol].tagged);
		for (unsigned k = 0; k < npol; k++) {
			printf("%s", k ? ", " : "");
			json_result(stdout, &jobs[p * npol + k], jobs + p * npol, npol);
		}
		printf("]}");
	}
	printf("]}\n");
}

static int do_plot(const struct opts *o)
{
	tm_ss_policy pol[TM_SS_POLICY_COUNT];
	unsigned npol = policies(o, pol), npts = o->plot_points;
	char base[4096], gp[4200], dat[4200];

	if (o->trace_path) {
		fprintf(stderr, "tagmem storage-sim: --plot needs a generated workload (a trace fixes its tagged fraction)\n");
		return 2;
	}
	if (strchr(o->plot, '\'') || strlen(o->plot) >= sizeof(base)) {
		fprintf(stderr, "tagmem storage-sim: --plot path must not contain a quote\n");
		return 2;
	}
	plot_paths(o->plot, base, sizeof(base));
	snprintf(gp, sizeof(gp), "%s.gp", base);
	snprintf(dat, sizeof(dat), "%s.dat", base);
	struct job *jobs = calloc((size_t)npts * npol, sizeof(*jobs));

	if (!jobs)
		return 1;
	for (unsigned p = 0; p < npts; p++) {
		for (unsigned k = 0; k < npol; k++) {
			struct job *j = &jobs[p * npol + k];

			j->o = o;
			j->policy = pol[k];
			j->sweep = true;
			j->tagged = (double)p / (npts - 1);
		}
	}
	int r = run_jobs(o, jobs, npts * npol);

	if (r == 0 && (write_dat(dat, jobs, npts, npol) || write_gp(gp, dat, o->plot, o, jobs, npol))) {
		fprintf(stderr, "tagmem storage-sim: writing %s / %s: %s\n", dat, gp, strerror(errno));
		r = 1;
	}
	if (r == 0)
		r = run_gnuplot(gp);
	if (r == 0)
		print_sweep(o, jobs, npts, npol, o->plot);
	free(jobs);
	return r;
}

/* ---------------------------------------------------------------- */
/* entry point                                                      */
/* ---------------------------------------------------------------- */

int tm_cmd_storage_sim(int argc, char **argv)
{
	struct opts o;
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--costs") == 0) {
			list_costs(stdout);
			return 0;
		}
	}
	memset(&o, 0, sizeof(o));
	tm_ss_config_default(&o.cfg);
	o.plot_points = 11;
	o.threads = 1;
	if ((r = parse_args(&o, argc, argv)))
		return r;
	if (!o.policy_set) {
		fprintf(stderr, "tagmem storage-sim: --policy is required (see --help)\n");
		return 2;
	}
	if ((r = setup_workload(&o)))
		return r;
	if (o.save_trace)
		r = do_save_trace(&o);
	else if (o.plot)
		r = do_plot(&o);
	else
		r = do_run(&o);
	tm_ss_trace_free(&o.trace);
	return r;
}
