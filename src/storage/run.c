/*
 * run.c - running one policy on a workload or a trace: events are generated
 * (or taken from the parsed trace) in chunks into one buffer allocated at
 * the start, hashed (so a run can show it saw the same sequence as the other
 * policies) and applied. The wall time covers generation and simulation.
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

/* Generate and apply events while the generator is in the state asked for
 * (warm-up or measured); generation CPU time is added to *gen_cpu. */
static int run_gen(tm_ss_sim *sim, tm_ss_gen *gen, tm_ss_event *buf, bool warm, uint64_t *count,
		   tm_ss_result *res, double *gen_cpu, tm_error *err)
{
	while (tm_ss_gen_warming(gen) == warm) {
		double c0 = thread_cpu();
		size_t n = tm_ss_gen_fill(gen, buf, CHUNK);
		int r;

		*gen_cpu += thread_cpu() - c0;
		if (n == 0)
			return 0;
		res->stream_hash = tm_ss_hash_events(res->stream_hash, buf, n);
		if ((r = tm_ss_apply_many(sim, buf, n, err)))
			return r;
		*count += n;
	}
	return 0;
}

static int run_trace(tm_ss_sim *sim, const tm_ss_trace *t, tm_ss_result *res, tm_error *err)
{
	for (size_t i = 0; i < t->n; i += CHUNK) {
		size_t n = t->n - i < CHUNK ? t->n - i : CHUNK;
		int r;

		res->stream_hash = tm_ss_hash_events(res->stream_hash, t->ev + i, n);
		if ((r = tm_ss_apply_many(sim, t->ev + i, n, err)))
			return tm_error_wrap(err, r, "storage-sim: trace chunk at event %zu", i);
	}
	return 0;
}

int tm_ss_run(const tm_ss_config *cfg, const tm_ss_workload *w, const tm_ss_trace *t,
	      tm_ss_result *res, tm_error *err)
{
	tm_ss_config c;           /* cfg at this library's size (common/abi.h) */
	tm_ss_sim *sim = NULL;
	tm_ss_gen *gen = NULL;
	uint64_t t0;
	int r;

	memset(res, 0, sizeof(*res));
	if ((r = TM_ABI_COPY_IN(tm_ss_config, &c, cfg, err)))
		return r;
	if ((w == NULL) == (t == NULL))
		return tm_error_set(err, -EINVAL, "storage-sim: give exactly one of a workload or a trace");
	if ((r = tm_ss_config_geometry(&c, &res->geo, err)))
		return r;
	if (w) {
		if ((r = tm_ss_gen_create(w, res->geo.frames, &gen, err)))
			return r;
		c.max_objects = tm_ss_gen_max_objects(gen);
	} else {
		c.max_objects = t->max_objects;
	}
	if ((r = tm_ss_create(&c, &sim, err)))
		goto out;
	if (w) {
		double warm_cpu = 0;
		tm_ss_event *buf = malloc(CHUNK * sizeof(*buf));

		if (!buf) {
			r = tm_error_set(err, -ENOMEM, "storage-sim: out of memory for the event buffer");
			goto out;
		}
		uint64_t measured = 0;

		r = run_gen(sim, gen, buf, true, &res->warmup_events, res, &warm_cpu, err);
		tm_ss_reset_stats(sim);
		t0 = tm_now_ns();
		double c0 = thread_cpu();

		if (r == 0)
			r = run_gen(sim, gen, buf, false, &measured, res, &res->gen_cpu_seconds, err);
		res->cpu_seconds = thread_cpu() - c0;
		free(buf);
	} else {
		t0 = tm_now_ns();
		double c0 = thread_cpu();

		r = run_trace(sim, t, res, err);
		res->cpu_seconds = thread_cpu() - c0;
	}
	res->seconds = (double)(tm_now_ns() - t0) / 1e9;
	res->policy = c.policy;
	tm_ss_get_stats(sim, &res->st);
	double ev = (double)res->st.events;

	res->events_per_s = res->seconds > 0 ? ev / res->seconds : 0;
	res->events_per_cpu_s = res->cpu_seconds > 0 ? ev / res->cpu_seconds : 0;
	res->sim_events_per_cpu_s = res->cpu_seconds > res->gen_cpu_seconds ?
				    ev / (res->cpu_seconds - res->gen_cpu_seconds) : 0;
out:
	tm_ss_gen_destroy(gen);
	tm_ss_destroy(sim);
	return r;
}
