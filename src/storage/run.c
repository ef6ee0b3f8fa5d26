/*
 * run.c - running policies on a workload or a trace: events are generated
 * (or taken from the parsed trace) in chunks into one buffer allocated at
 * the start, hashed (so a run can show it saw the same sequence as the other
 * policies) and applied to each policy's model in turn - generated once for
 * all of them. A policy's time is its model's plus its share of generating.
 */
#include "tagmem/storage_sim.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <xxhash.h>

#include "common/abi.h"
#include "common/util.h"

#define CHUNK 65536

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t tm_ss_hash_events(uint64_t h, const tm_ss_event *ev, size_t n)
{
	return XXH3_64bits_withSeed(ev, n * sizeof(*ev), h);
}

/* One run of n policies on one event source. Times are of the measured
 * part: each model's own, and the generation's (shared by all). */
struct runner {
	unsigned n;
	tm_ss_sim *sim[TM_SS_POLICY_COUNT];
	tm_ss_result *res;
	double sim_wall[TM_SS_POLICY_COUNT], sim_cpu[TM_SS_POLICY_COUNT];
	double gen_wall, gen_cpu;
	uint64_t hash;
};

/* Apply one chunk to every model in turn (timed when measured). */
static int apply_chunk(struct runner *ru, const tm_ss_event *ev, size_t k, bool measured,
		       tm_error *err)
{
	ru->hash = tm_ss_hash_events(ru->hash, ev, k);
	for (unsigned i = 0; i < ru->n; i++) {
		uint64_t w0 = tm_now_ns();
		double c0 = thread_cpu();
		int r = tm_ss_apply_many(ru->sim[i], ev, k, err);

		if (measured) {
			ru->sim_cpu[i] += thread_cpu() - c0;
			ru->sim_wall[i] += (double)(tm_now_ns() - w0) / 1e9;
		}
		if (r)
			return ru->n > 1 ? tm_error_wrap(err, r, "storage-sim: policy %s",
							 tm_ss_policy_name(ru->res[i].policy)) : r;
	}
	return 0;
}

/* Generate and apply events while the generator is in the state asked for
 * (warm-up or measured). */
static int run_gen(struct runner *ru, tm_ss_gen *gen, tm_ss_event *buf, bool warm,
		   uint64_t *count, tm_error *err)
{
	while (tm_ss_gen_warming(gen) == warm) {
		uint64_t w0 = tm_now_ns();
		double c0 = thread_cpu();
		size_t n = tm_ss_gen_fill(gen, buf, CHUNK);
		int r;

		if (!warm) {
			ru->gen_cpu += thread_cpu() - c0;
			ru->gen_wall += (double)(tm_now_ns() - w0) / 1e9;
		}
		if (n == 0)
			return 0;
		if ((r = apply_chunk(ru, buf, n, !warm, err)))
			return r;
		*count += n;
	}
	return 0;
}

static int run_trace(struct runner *ru, const tm_ss_trace *t, tm_error *err)
{
	for (size_t i = 0; i < t->n; i += CHUNK) {
		size_t n = t->n - i < CHUNK ? t->n - i : CHUNK;
		int r;

		if ((r = apply_chunk(ru, t->ev + i, n, true, err)))
			return tm_error_wrap(err, r, "storage-sim: trace chunk at event %zu", i);
	}
	return 0;
}

static int run_workload(struct runner *ru, tm_ss_gen *gen, tm_error *err)
{
	tm_ss_event *buf = malloc(CHUNK * sizeof(*buf));
	uint64_t warm = 0, measured = 0;
	int r;

	if (!buf)
		return tm_error_set(err, -ENOMEM, "storage-sim: out of memory for the event buffer");
	r = run_gen(ru, gen, buf, true, &warm, err);
	for (unsigned i = 0; i < ru->n; i++) {
		tm_ss_reset_stats(ru->sim[i]);
		ru->res[i].warmup_events = warm;
	}
	if (r == 0)
		r = run_gen(ru, gen, buf, false, &measured, err);
	free(buf);
	return r;
}

/* Each policy's time: its model's, plus an equal share of generating. */
static void finish(struct runner *ru)
{
	for (unsigned i = 0; i < ru->n; i++) {
		tm_ss_result *res = &ru->res[i];

		tm_ss_get_stats(ru->sim[i], &res->st);
		res->stream_hash = ru->hash;
		res->gen_cpu_seconds = ru->gen_cpu / ru->n;
		res->cpu_seconds = ru->sim_cpu[i] + res->gen_cpu_seconds;
		res->seconds = ru->sim_wall[i] + ru->gen_wall / ru->n;
		double ev = (double)res->st.events;

		res->events_per_s = res->seconds > 0 ? ev / res->seconds : 0;
		res->events_per_cpu_s = res->cpu_seconds > 0 ? ev / res->cpu_seconds : 0;
		res->sim_events_per_cpu_s = ru->sim_cpu[i] > 0 ? ev / ru->sim_cpu[i] : 0;
	}
}

int tm_ss_run_policies(const tm_ss_config *cfg, const tm_ss_policy *pol, unsigned npol,
		       const tm_ss_workload *w, const tm_ss_trace *t, tm_ss_result *res,
		       tm_error *err)
{
	tm_ss_config c;           /* cfg at this library's size (common/abi.h) */
	tm_ss_geometry geo;
	tm_ss_gen *gen = NULL;
	struct runner ru;
	int r;

	memset(&ru, 0, sizeof(ru));
	if ((r = TM_ABI_COPY_IN(tm_ss_config, &c, cfg, err)))
		return r;
	if ((w == NULL) == (t == NULL))
		return tm_error_set(err, -EINVAL, "storage-sim: give exactly one of a workload or a trace");
	if (npol == 0 || npol > TM_SS_POLICY_COUNT)
		return tm_error_set(err, -EINVAL, "storage-sim: %u policies (1..%u)", npol,
				    TM_SS_POLICY_COUNT);
	for (unsigned i = 0; i < npol; i++)
		if ((unsigned)pol[i] >= TM_SS_POLICY_COUNT)
			return tm_error_set(err, -EINVAL, "storage-sim: unknown policy %d", (int)pol[i]);
	memset(res, 0, npol * sizeof(*res));
	if ((r = tm_ss_config_geometry(&c, &geo, err)))
		return r;
	if (w) {
		if ((r = tm_ss_gen_create(w, geo.frames, &gen, err)))
			return r;
		c.max_objects = tm_ss_gen_max_objects(gen);
	} else {
		c.max_objects = t->max_objects;
	}
	ru.n = npol;
	ru.res = res;
	for (unsigned i = 0; i < npol && r == 0; i++) {
		c.policy = pol[i];
		res[i].policy = pol[i];
		res[i].geo = geo;
		r = tm_ss_create(&c, &ru.sim[i], err);
	}
	if (r == 0)
		r = w ? run_workload(&ru, gen, err) : run_trace(&ru, t, err);
	if (r == 0)
		finish(&ru);
	tm_ss_gen_destroy(gen);
	for (unsigned i = 0; i < npol; i++)
		tm_ss_destroy(ru.sim[i]);
	return r;
}

int tm_ss_run(const tm_ss_config *cfg, const tm_ss_workload *w, const tm_ss_trace *t,
	      tm_ss_result *res, tm_error *err)
{
	tm_ss_config c;
	int r;

	memset(res, 0, sizeof(*res));
	if ((r = TM_ABI_COPY_IN(tm_ss_config, &c, cfg, err)))
		return r;
	return tm_ss_run_policies(&c, &c.policy, 1, w, t, res, err);
}
