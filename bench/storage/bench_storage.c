/*
 * bench_storage.c - `tagmem bench storage [--json]`: how many events per
 * second the tag-storage model applies on one core, for each policy.
 *
 * First what `tagmem storage-sim --policy all` does (tm_ss_run_policies:
 * events generated once, in chunks, applied to each policy's model in
 * turn; a policy's time is its model's plus a quarter of the generation):
 * storage_sim_<policy>_events_per_s / _per_cpu_s, the figures issue 18
 * sets the 10 M target for (min_storage_sim_events_per_cpu_s, target_met).
 * Then, as before:
 * The events of one workload (default android on 16 GiB) are generated once
 * into memory; each policy then replays them on a fresh model: the warm-up
 * part untimed (it fills memory), the rest timed by wall clock and by the
 * thread's CPU time, as a whole and in ten slices (the machine is shared:
 * CPU time, and the median slice of it, say what one core does; wall time
 * says what this run got). Baselines measured in the same
 * run: generating the events, and a loop doing one random read-modify-write
 * of an object table of the model's size per event (the memory-latency
 * floor any event loop over these arrays pays).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench/bench_common.h"
#include "common/util.h"
#include "tagmem/storage_sim.h"
#include "tools/cmds.h"

struct timing {
	double wall, cpu;
};

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timing now(void)
{
	struct timing t = { (double)tm_now_ns() / 1e9, thread_cpu() };

	return t;
}

static struct timing since(struct timing t0)
{
	struct timing t = now();

	t.wall -= t0.wall;
	t.cpu -= t0.cpu;
	return t;
}

struct bench {
	tm_ss_workload w;
	tm_ss_config cfg;
	tm_ss_event *ev;
	size_t n, warm, cap;
	uint32_t max_objects;
	struct timing gen;
};

static int parse(int argc, char **argv, struct bench *b)
{
	tm_error e;
	const char *wl = "android";

	tm_ss_config_default(&b->cfg);
	b->cfg.check_invariants = 0;
	uint64_t events = 10000000;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			continue;
		if (i + 1 < argc && strcmp(argv[i], "--mem") == 0 &&
		    tm_parse_size(argv[i + 1], &b->cfg.mem_bytes) == 0) {
			i++;
		} else if (i + 1 < argc && strcmp(argv[i], "--events") == 0) {
			events = strtoull(argv[++i], NULL, 10);
		} else if (i + 1 < argc && strcmp(argv[i], "--workload") == 0) {
			wl = argv[++i];
		} else {
			fprintf(stderr, "usage: tagmem bench storage [--json] [--mem SIZE] "
					"[--events N] [--workload android|kvm-server|adversary|synthetic]\n");
			return 2;
		}
	}
	tm_error_clear(&e);
	if (tm_ss_workload_preset(wl, &b->w, &e) || events == 0) {
		fprintf(stderr, "tagmem bench storage: %s\n", events ? tm_error_msg(&e) : "--events 0");
		return 2;
	}
	b->w.events = events;
	return 0;
}

/* Generate the whole run into memory (timed: the generator's own rate). */
static int generate(struct bench *b)
{
	tm_ss_geometry geo;
	tm_ss_gen *g = NULL;
	tm_error e;

	tm_error_clear(&e);
	if (tm_ss_config_geometry(&b->cfg, &geo, &e) || tm_ss_gen_create(&b->w, geo.frames, &g, &e)) {
		fprintf(stderr, "tagmem bench storage: %s\n", tm_error_msg(&e));
		return 1;
	}
	/* room for the warm-up too: it lasts until memory is full */
	b->cap = b->w.events + 64ull * geo.frames + 100000;
	b->ev = mmap(NULL, b->cap * sizeof(*b->ev), PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (b->ev == MAP_FAILED) {
		tm_ss_gen_destroy(g);
		fprintf(stderr, "tagmem bench storage: out of memory for %llu events\n",
			(unsigned long long)b->cap);
		return 1;
	}
	madvise(b->ev, b->cap * sizeof(*b->ev), MADV_HUGEPAGE);
	b->max_objects = tm_ss_gen_max_objects(g);
	struct timing t0 = now();
	size_t n;

	for (;;) {
		bool warm = tm_ss_gen_warming(g);

		n = tm_ss_gen_fill(g, b->ev + b->n, 1u << 20);
		if (n == 0)
			break;
		b->n += n;
		if (warm)
			b->warm = b->n;
	}
	b->gen = since(t0);
	tm_ss_gen_destroy(g);
	return 0;
}

#define SLICES 10

struct replay_time {
	struct timing total;
	double median_cpu, best_cpu;   /* seconds per slice of the measured part */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Replay under one policy; the part after the warm-up is timed as a whole
 * and in SLICES equal slices (the machine is shared: the median slice says
 * what one core does between other people's bursts). */
static int replay(struct bench *b, tm_ss_policy pol, struct replay_time *t, tm_ss_stats *st)
{
	tm_ss_config c = b->cfg;
	tm_ss_sim *s = NULL;
	tm_error e;
	double slice[SLICES];
	size_t n = b->n - b->warm;
	int r = 0;

	c.policy = pol;
	c.max_objects = b->max_objects;
	tm_error_clear(&e);
	if (tm_ss_create(&c, &s, &e) || tm_ss_apply_many(s, b->ev, b->warm, &e)) {
		fprintf(stderr, "tagmem bench storage: %s\n", tm_error_msg(&e));
		tm_ss_destroy(s);
		return 1;
	}
	tm_ss_reset_stats(s);
	struct timing t0 = now();

	for (unsigned k = 0; k < SLICES && r == 0; k++) {
		size_t lo = b->warm + n * k / SLICES, hi = b->warm + n * (k + 1) / SLICES;
		double c0 = thread_cpu();

		r = tm_ss_apply_many(s, b->ev + lo, hi - lo, &e);
		slice[k] = (thread_cpu() - c0) / (double)(hi - lo) * ((double)n / SLICES);
	}
	t->total = since(t0);
	qsort(slice, SLICES, sizeof(slice[0]), cmp_double);
	t->median_cpu = (slice[SLICES / 2 - 1] + slice[SLICES / 2]) / 2;
	t->best_cpu = slice[0];
	tm_ss_get_stats(s, st);
	tm_ss_destroy(s);
	if (r)
		fprintf(stderr, "tagmem bench storage: %s\n", tm_error_msg(&e));
	return r ? 1 : 0;
}

/* One random read-modify-write of a 32-byte record per event, over a table
 * as large as the model's object table: the floor of the event loop. */
static struct timing touch_baseline(const struct bench *b, uint64_t *sink)
{
	size_t len = (size_t)b->max_objects * 32;
	uint64_t *tab = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct timing t = { 0, 0 };

	if (tab == MAP_FAILED)
		return t;
	madvise(tab, len, MADV_HUGEPAGE);
	memset(tab, 1, len);
	struct timing t0 = now();

	for (size_t i = b->warm; i < b->n; i++)
		tab[(size_t)b->ev[i].obj * 4] += b->ev[i].op;
	t = since(t0);
	*sink = tab[0];
	munmap(tab, len);
	return t;
}

/* What storage-sim --policy all does, timed by tm_ss_run_policies. */
static int run_storage_sim(const struct bench *b, tm_ss_result *res)
{
	tm_ss_policy pol[TM_SS_POLICY_COUNT];
	tm_error e;

	for (unsigned p = 0; p < TM_SS_POLICY_COUNT; p++)
		pol[p] = (tm_ss_policy)p;
	tm_error_clear(&e);
	if (tm_ss_run_policies(&b->cfg, pol, TM_SS_POLICY_COUNT, &b->w, NULL, res, &e)) {
		fprintf(stderr, "tagmem bench storage: %s\n", tm_error_msg(&e));
		return 1;
	}
	return 0;
}

#define TARGET_EVENTS_PER_S 10e6

static double min_sim_rate(const tm_ss_result *res)
{
	double worst = 1e30;

	for (unsigned p = 0; p < TM_SS_POLICY_COUNT; p++)
		if (res[p].events_per_cpu_s < worst)
			worst = res[p].events_per_cpu_s;
	return worst;
}

static void report(const struct bench *b, const struct replay_time *t, const tm_ss_stats *st,
		   const tm_ss_result *sim, struct timing base, bool json)
{
	double n = (double)(b->n - b->warm), per = n / SLICES;
	double worst = 1e30;
	tm_json j;
	char key[80];

	for (unsigned p = 0; p < TM_SS_POLICY_COUNT; p++)
		if (per / t[p].median_cpu < worst)
			worst = per / t[p].median_cpu;
	if (!json) {
		printf("storage-sim replay, workload %s, %.1f GiB, %.0f measured events after %zu warm-up\n",
		       b->w.name, (double)b->cfg.mem_bytes / (1 << 30), n, b->warm);
		printf("  storage-sim --policy all (events generated once, 1/4 of it per policy):\n");
		for (unsigned p = 0; p < TM_SS_POLICY_COUNT; p++)
			printf("  %-10s %14.0f events/s (CPU) %14.0f (wall)\n", tm_ss_policy_name(p),
			       sim[p].events_per_cpu_s, sim[p].events_per_s);
		printf("  target %.0f events/s (CPU): %s\n", TARGET_EVENTS_PER_S,
		       min_sim_rate(sim) >= TARGET_EVENTS_PER_S ? "met" : "not met");
		printf("replay of the stored events:\n");
		printf("  generator            %12.0f events/s (CPU)\n", (double)b->n / b->gen.cpu);
		printf("  baseline touch loop  %12.0f events/s (CPU)\n", n / base.cpu);
		printf("  %-10s %14s %14s %14s %12s\n", "policy", "median slice", "whole (CPU)",
		       "whole (wall)", "ns/event");
		for (unsigned p = 0; p < TM_SS_POLICY_COUNT; p++)
			printf("  %-10s %14.0f %14.0f %14.0f %12.1f\n", tm_ss_policy_name(p),
			       per / t[p].median_cpu, n / t[p].total.cpu, n / t[p].total.wall,
			       t[p].median_cpu / per * 1e9);
		return;
	}
	tm_json_begin(&j, stdout);
	tm_json_str(&j, "bench", "storage");
	tm_json_str(&j, "workload", b->w.name);
	tm_json_int(&j, "mem_bytes", (long long)b->cfg.mem_bytes);
	tm_json_int(&j, "seed", (long long)b->w.seed);
	tm_json_int(&j, "warmup_events", (long long)b->warm);
	tm_json_int(&j, "measured_events", (long long)(b->n - b->warm));
	tm_json_num(&j, "generator_events_per_cpu_s", (double)b->n / b->gen.cpu);
	tm_json_num(&j, "baseline_touch_events_per_cpu_s", n / base.cpu);
	tm_json_num(&j, "baseline_touch_events_per_s", n / base.wall);
	for (unsigned p = 0; p < TM_SS_POLICY_COUNT; p++) {
		const char *name = tm_ss_policy_name(p);

		snprintf(key, sizeof(key), "storage_sim_%s_events_per_s", name);
		tm_json_num(&j, key, sim[p].events_per_s);
		snprintf(key, sizeof(key), "storage_sim_%s_events_per_cpu_s", name);
		tm_json_num(&j, key, sim[p].events_per_cpu_s);
	}
	snprintf(key, sizeof(key), "%016llx", (unsigned long long)sim[0].stream_hash);
	tm_json_str(&j, "event_stream_hash", key);
	tm_json_num(&j, "min_storage_sim_events_per_cpu_s", min_sim_rate(sim));
	for (unsigned p = 0; p < TM_SS_POLICY_COUNT; p++) {
		const char *name = tm_ss_policy_name(p);

		snprintf(key, sizeof(key), "%s_events_per_s", name);
		tm_json_num(&j, key, n / t[p].total.wall);
		snprintf(key, sizeof(key), "%s_events_per_cpu_s", name);
		tm_json_num(&j, key, n / t[p].total.cpu);
		snprintf(key, sizeof(key), "%s_median_slice_events_per_cpu_s", name);
		tm_json_num(&j, key, per / t[p].median_cpu);
		snprintf(key, sizeof(key), "%s_best_slice_events_per_cpu_s", name);
		tm_json_num(&j, key, per / t[p].best_cpu);
		snprintf(key, sizeof(key), "%s_modelled_ns_per_event", name);
		tm_json_num(&j, key, (double)st[p].modelled_ns / n);
	}
	tm_json_num(&j, "min_median_slice_events_per_cpu_s", worst);
	tm_json_num(&j, "target_events_per_s", TARGET_EVENTS_PER_S);
	tm_json_bool(&j, "target_met", min_sim_rate(sim) >= TARGET_EVENTS_PER_S);
	tm_json_bool(&j, "replay_min_median_slice_above_target", worst >= TARGET_EVENTS_PER_S);
	tm_json_end(&j);
}

int tm_bench_storage(int argc, char **argv)
{
	struct bench b;
	struct replay_time t[TM_SS_POLICY_COUNT];
	struct timing base;
	tm_ss_stats st[TM_SS_POLICY_COUNT];
	tm_ss_result sim[TM_SS_POLICY_COUNT];
	uint64_t sink = 0;
	int r;

	memset(&b, 0, sizeof(b));
	if (tm_bench_want_help(argc, argv)) {
		printf("usage: tagmem bench storage [--json] [--mem SIZE] [--events N] "
		       "[--workload android|kvm-server|adversary|synthetic]\n");
		return 0;
	}
	if ((r = parse(argc, argv, &b)) || (r = run_storage_sim(&b, sim)) || (r = generate(&b)))
		return r;
	for (unsigned p = 0; p < TM_SS_POLICY_COUNT && r == 0; p++)
		r = replay(&b, (tm_ss_policy)p, &t[p], &st[p]);
	base = touch_baseline(&b, &sink);
	if (r == 0)
		report(&b, t, st, sim, base, tm_bench_want_json(argc, argv));
	munmap(b.ev, b.cap * sizeof(*b.ev));
	return r || sink == 0 ? r : 0;
}
