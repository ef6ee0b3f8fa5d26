/*
 * test_golden.c - the simulator's results pinned bit for bit: for each
 * scenario, a few seeds and every policy, the event-stream hash
 * (tm_ss_hash_events over the run's chunks) and a digest of every counter,
 * percentile, time average and the warm-up length a run reports must equal
 * the values recorded below. Speed work on src/storage must not change a
 * single result; this test is what says so. A workload variant turns on
 * the paths the presets leave off (mprotect(PROT_MTE) events, in-place
 * pins, a non-integer read skew, order-9 folios, tag retries, 2-frame tag
 * blocks), and a trace run pins the parser + replay path.
 *
 * The values were recorded from the model at commit b269306 (before the
 * speed work of issue 18) by running this test with TM_SS_GOLDEN_PRINT=1,
 * which prints the table instead of checking it. Change them only for a
 * deliberate change of the model, and say so in the commit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "tagmem/storage_sim.h"

#define MEM (128ull << 20)
#define EVENTS 200000

struct golden {
	const char *workload;   /* preset, or "variant" / "trace" (see make_workload) */
	uint64_t seed;
	const char *policy;
	uint64_t stream_hash;
	uint64_t digest;
};

static const struct golden golden[] = {
	{ "android", 1, "static", 0xb28c64ed08c392d8ull, 0x930ecde571af6831ull },
	{ "android", 1, "cma", 0xb28c64ed08c392d8ull, 0xd31f26bc94615f7aull },
	{ "android", 1, "cma-fast", 0xb28c64ed08c392d8ull, 0x85a430baa42d4d8bull },
	{ "android", 1, "cleancache", 0xb28c64ed08c392d8ull, 0xaa1d412147b05608ull },
	{ "android", 2026, "static", 0x198c0df07392f1e3ull, 0x42c9c02749133bc8ull },
	{ "android", 2026, "cma", 0x198c0df07392f1e3ull, 0xd606d5188731a1beull },
	{ "android", 2026, "cma-fast", 0x198c0df07392f1e3ull, 0xe71f3e4008258721ull },
	{ "android", 2026, "cleancache", 0x198c0df07392f1e3ull, 0x6035735ae68e0de8ull },
	{ "kvm-server", 1, "static", 0xea456b5b676da203ull, 0xf86f5bad5293f715ull },
	{ "kvm-server", 1, "cma", 0xea456b5b676da203ull, 0x6e2b45077acdc5c1ull },
	{ "kvm-server", 1, "cma-fast", 0xea456b5b676da203ull, 0x6a89e0f5467c6128ull },
	{ "kvm-server", 1, "cleancache", 0xea456b5b676da203ull, 0x4a1223ae62df1ac4ull },
	{ "kvm-server", 2026, "static", 0xa4fd82b74c413c04ull, 0xc6997f9c415b389cull },
	{ "kvm-server", 2026, "cma", 0xa4fd82b74c413c04ull, 0x18c58dbe4fc86b37ull },
	{ "kvm-server", 2026, "cma-fast", 0xa4fd82b74c413c04ull, 0xb0ebdd95987a3e14ull },
	{ "kvm-server", 2026, "cleancache", 0xa4fd82b74c413c04ull, 0xc23638eb008577beull },
	{ "adversary", 1, "static", 0x9a8ec76862ce11b9ull, 0xcecde9cbf8713786ull },
	{ "adversary", 1, "cma", 0x9a8ec76862ce11b9ull, 0x58de1b4a530fa7f2ull },
	{ "adversary", 1, "cma-fast", 0x9a8ec76862ce11b9ull, 0xaad4a4b478dfdc17ull },
	{ "adversary", 1, "cleancache", 0x9a8ec76862ce11b9ull, 0xfbb0e82da30a6a64ull },
	{ "adversary", 2026, "static", 0x69ff23138e32ecdfull, 0xe00dd548ae3f8721ull },
	{ "adversary", 2026, "cma", 0x69ff23138e32ecdfull, 0x494b0adfca02e7b7ull },
	{ "adversary", 2026, "cma-fast", 0x69ff23138e32ecdfull, 0x329b883cff540b1aull },
	{ "adversary", 2026, "cleancache", 0x69ff23138e32ecdfull, 0xb31dca279c19eb4bull },
	{ "synthetic", 1, "static", 0x167ad3b733eee02cull, 0xd66cafbb194984e7ull },
	{ "synthetic", 1, "cma", 0x167ad3b733eee02cull, 0x957f816e84620bc1ull },
	{ "synthetic", 1, "cma-fast", 0x167ad3b733eee02cull, 0x3bbcfcb1c1ded1faull },
	{ "synthetic", 1, "cleancache", 0x167ad3b733eee02cull, 0x5829c88c3a55e84bull },
	{ "synthetic", 2026, "static", 0xe460108ab4aa58ceull, 0x67fe8d11d83ee88dull },
	{ "synthetic", 2026, "cma", 0xe460108ab4aa58ceull, 0x004f3f81172da2e9ull },
	{ "synthetic", 2026, "cma-fast", 0xe460108ab4aa58ceull, 0xffdbd83260191540ull },
	{ "synthetic", 2026, "cleancache", 0xe460108ab4aa58ceull, 0x366bac89671b5956ull },
	{ "variant", 1, "static", 0xcdd1c554f1c1253aull, 0x8774bb083540ea44ull },
	{ "variant", 1, "cma", 0xcdd1c554f1c1253aull, 0xc6593b62b8da1ec9ull },
	{ "variant", 1, "cma-fast", 0xcdd1c554f1c1253aull, 0x0342d9715738dab8ull },
	{ "variant", 1, "cleancache", 0xcdd1c554f1c1253aull, 0x0a042fa3951c257cull },
	{ "variant", 2026, "static", 0x9319ec0af0b6a79dull, 0x425b7b2e128016d8ull },
	{ "variant", 2026, "cma", 0x9319ec0af0b6a79dull, 0xdf85331f52cd30fdull },
	{ "variant", 2026, "cma-fast", 0x9319ec0af0b6a79dull, 0x5a6150b31948f854ull },
	{ "variant", 2026, "cleancache", 0x9319ec0af0b6a79dull, 0x7a8b2cda24258384ull },
	{ "trace", 1, "static", 0xc35348a493d900f6ull, 0xb353b44fd9909c69ull },
	{ "trace", 1, "cma", 0xc35348a493d900f6ull, 0x76d8e28b5c2209daull },
	{ "trace", 1, "cma-fast", 0xc35348a493d900f6ull, 0xd5303a594c17c154ull },
	{ "trace", 1, "cleancache", 0xc35348a493d900f6ull, 0x1d85d60a8a1a5724ull },
	{ "trace", 2026, "static", 0xe6542bc4bf5c3cb8ull, 0x063aa0308a86e821ull },
	{ "trace", 2026, "cma", 0xe6542bc4bf5c3cb8ull, 0x183eca4559885fafull },
	{ "trace", 2026, "cma-fast", 0xe6542bc4bf5c3cb8ull, 0xcfb376c3c9e030a0ull },
	{ "trace", 2026, "cleancache", 0xe6542bc4bf5c3cb8ull, 0x9cf65652e9ef33cbull },
};

static bool print_mode(void)
{
	return getenv("TM_SS_GOLDEN_PRINT") != NULL;
}

static void add64(XXH64_state_t *h, uint64_t v)
{
	XXH64_update(h, &v, sizeof(v));
}

static void addd(XXH64_state_t *h, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	add64(h, v);
}

/* Every number a result carries except the speed fields, field by field (no
 * padding bytes). */
static uint64_t digest(const tm_ss_result *r)
{
	const tm_ss_stats *st = &r->st;
	XXH64_state_t *h = XXH64_createState();

	assert_non_null(h);
	XXH64_reset(h, 0);
	add64(h, r->policy);
	add64(h, r->geo.mem_bytes);
	add64(h, r->geo.frames);
	add64(h, r->geo.data_frames);
	add64(h, r->geo.tag_frames);
	add64(h, r->geo.tag_blocks);
	add64(h, r->geo.tag_block_frames);
	add64(h, r->warmup_events);
	add64(h, st->events);
	for (unsigned i = 0; i < TM_SS_OP_COUNT; i++)
		add64(h, st->ops[i]);
	const uint64_t u[] = {
		st->tagged_allocs, st->tagged_alloc_failures, st->fail_pinned, st->fail_nomem,
		st->alloc_failures, st->pin_failures, st->reservations, st->releases,
		st->contig_calls, st->drains, st->frames_taken_fast, st->frames_migrated,
		st->frames_dropped, st->frames_evicted, st->frames_compacted, st->refaults,
		st->refaults_policy, st->refault_frames, st->cleancache_hits, st->ops_on_failed,
		st->modelled_ns, st->tagged_ns, st->tagged_alloc_p50_ns, st->tagged_alloc_p99_ns,
		st->tagged_alloc_max_ns, st->free_frames, st->tag_frames_reserved,
		st->tag_frames_used,
	};
	for (unsigned i = 0; i < sizeof(u) / sizeof(u[0]); i++)
		add64(h, u[i]);
	addd(h, st->usable_gain_pct);
	addd(h, st->used_gain_pct);
	addd(h, st->tag_reserved_pct);
	uint64_t d = XXH64_digest(h);

	XXH64_freeState(h);
	return d;
}

/* The variant: synthetic with every optional path on. */
static void variant(tm_ss_workload *w, tm_ss_config *cfg)
{
	for (unsigned i = 0; i < w->nphases; i++) {
		tm_ss_phase *p = &w->phase[i];

		p->tag_event_rate = 0.02;
		p->pinned_fraction = 0.01;
		p->pin_longterm = i > 0 ? false : true;
		p->read_skew = 2.5;
		memset(p->order_weight, 0, sizeof(p->order_weight));
		p->order_weight[0] = 80;
		p->order_weight[3] = 10;
		p->order_weight[9] = 2;
		p->pc_order_weight[2] = 20;
		p->adversary_cap = 0.05;
		p->adversary_rate = 0.02;
	}
	cfg->tag_retries = 3;
	cfg->tag_block_frames = 2;
}

static void make_workload(const char *name, uint64_t seed, tm_ss_workload *w, tm_ss_config *cfg)
{
	tm_error e;

	tm_error_clear(&e);
	tm_ss_config_default(cfg);
	cfg->mem_bytes = MEM;
	cfg->check_invariants = 0; /* speed: test_invariants checks every event */
	bool var = strcmp(name, "variant") == 0;

	assert_int_equal(tm_ss_workload_preset(var ? "synthetic" : name, w, &e), 0);
	if (var)
		variant(w, cfg);
	w->seed = seed;
	w->events = EVENTS;
	assert_int_equal(tm_ss_workload_validate(w, &e), 0);
}

/* The android workload written as trace text and parsed back. */
static void make_trace(uint64_t seed, tm_ss_trace *t)
{
	tm_ss_workload w;
	tm_ss_config cfg;
	tm_ss_geometry geo;
	tm_ss_gen *g = NULL;
	tm_ss_event buf[4096];
	tm_error e;
	char *text = NULL;
	size_t len = 0, n;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	tm_error_clear(&e);
	make_workload("android", seed, &w, &cfg);
	w.events = EVENTS / 2;
	assert_int_equal(tm_ss_config_geometry(&cfg, &geo, &e), 0);
	assert_int_equal(tm_ss_gen_create(&w, geo.frames, &g, &e), 0);
	assert_int_equal(tm_ss_trace_write_header(f, &e), 0);
	while ((n = tm_ss_gen_fill(g, buf, 4096)) > 0)
		assert_int_equal(tm_ss_trace_write_events(f, buf, n, &e), 0);
	tm_ss_gen_destroy(g);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(tm_ss_trace_parse(text, len, "golden", t, &e), 0);
	free(text);
}

static void run_one(const struct golden *gv, const char *workload, uint64_t seed, unsigned pol,
		    unsigned *idx, unsigned *bad)
{
	tm_ss_workload w;
	tm_ss_config cfg;
	tm_ss_trace t = { 0 };
	tm_ss_result res;
	tm_error e;
	bool trace = strcmp(workload, "trace") == 0;

	tm_error_clear(&e);
	make_workload(trace ? "android" : workload, seed, &w, &cfg);
	if (trace)
		make_trace(seed, &t);
	cfg.policy = (tm_ss_policy)pol;
	int r = tm_ss_run(&cfg, trace ? NULL : &w, trace ? &t : NULL, &res, &e);

	if (r)
		fail_msg("%s seed %llu %s: %s", workload, (unsigned long long)seed,
			 tm_ss_policy_name(pol), tm_error_msg(&e));
	tm_ss_trace_free(&t);
	uint64_t d = digest(&res);

	if (print_mode()) {
		printf("\t{ \"%s\", %llu, \"%s\", 0x%016llxull, 0x%016llxull },\n", workload,
		       (unsigned long long)seed, tm_ss_policy_name(pol),
		       (unsigned long long)res.stream_hash, (unsigned long long)d);
		return;
	}
	const struct golden *g = &gv[(*idx)++];

	assert_string_equal(g->workload, workload);
	assert_int_equal(g->seed, seed);
	assert_string_equal(g->policy, tm_ss_policy_name(pol));
	if (g->stream_hash != res.stream_hash || g->digest != d) {
		print_error("%s seed %llu %s: stream %016llx (pinned %016llx), digest %016llx "
			    "(pinned %016llx); events %llu, tagged_allocs %llu, drains %llu, "
			    "frames_migrated %llu, modelled_ns %llu\n",
			    workload, (unsigned long long)seed, tm_ss_policy_name(pol),
			    (unsigned long long)res.stream_hash, (unsigned long long)g->stream_hash,
			    (unsigned long long)d, (unsigned long long)g->digest,
			    (unsigned long long)res.st.events, (unsigned long long)res.st.tagged_allocs,
			    (unsigned long long)res.st.drains, (unsigned long long)res.st.frames_migrated,
			    (unsigned long long)res.st.modelled_ns);
		(*bad)++;
	}
}

static const char *const workloads[] = { "android", "kvm-server", "adversary", "synthetic",
					 "variant", "trace" };
static const uint64_t seeds[] = { 1, 2026 };

static void test_results_pinned(void **state)
{
	(void)state;
	unsigned idx = 0, bad = 0;
	size_t total = sizeof(workloads) / sizeof(workloads[0]) * (sizeof(seeds) / sizeof(seeds[0])) *
		       TM_SS_POLICY_COUNT;

	if (!print_mode())
		assert_int_equal(sizeof(golden) / sizeof(golden[0]), total);
	for (unsigned w = 0; w < sizeof(workloads) / sizeof(workloads[0]); w++)
		for (unsigned s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++)
			for (unsigned p = 0; p < TM_SS_POLICY_COUNT; p++)
				run_one(golden, workloads[w], seeds[s], p, &idx, &bad);
	assert_int_equal(bad, 0);
}

/* Every policy of one workload and seed sees the same stream, and the
 * table says so too (a table with one wrong hash would be caught above,
 * this catches a table recorded from a generator that looked at the policy). */
static void test_pinned_streams_agree(void **state)
{
	(void)state;
	size_t n = sizeof(golden) / sizeof(golden[0]);

	for (size_t i = 0; i < n; i += TM_SS_POLICY_COUNT)
		for (unsigned p = 1; p < TM_SS_POLICY_COUNT && i + p < n; p++)
			assert_int_equal(golden[i + p].stream_hash, golden[i].stream_hash);
}

/* tm_ss_run_policies (events generated once for every policy) gives each
 * policy exactly what tm_ss_run gives it: the pinned values. */
static void test_shared_run_pinned(void **state)
{
	(void)state;
	static const char *const wl[] = { "android", "variant", "trace" };

	for (unsigned k = 0; k < sizeof(wl) / sizeof(wl[0]); k++) {
		tm_ss_workload w;
		tm_ss_config cfg;
		tm_ss_trace t = { 0 };
		tm_ss_result res[TM_SS_POLICY_COUNT];
		tm_ss_policy pol[TM_SS_POLICY_COUNT] = { TM_SS_CLEANCACHE, TM_SS_STATIC, TM_SS_CMA_FAST,
							 TM_SS_CMA };
		tm_error e;
		bool trace = strcmp(wl[k], "trace") == 0;

		tm_error_clear(&e);
		make_workload(trace ? "android" : wl[k], 2026, &w, &cfg);
		if (trace)
			make_trace(2026, &t);
		assert_int_equal(tm_ss_run_policies(&cfg, pol, TM_SS_POLICY_COUNT, trace ? NULL : &w,
						    trace ? &t : NULL, res, &e), 0);
		tm_ss_trace_free(&t);
		for (unsigned i = 0; i < TM_SS_POLICY_COUNT; i++) {
			const struct golden *g = NULL;

			for (size_t j = 0; j < sizeof(golden) / sizeof(golden[0]); j++)
				if (strcmp(golden[j].workload, wl[k]) == 0 && golden[j].seed == 2026 &&
				    strcmp(golden[j].policy, tm_ss_policy_name(pol[i])) == 0)
					g = &golden[j];
			assert_non_null(g);
			assert_int_equal(res[i].policy, pol[i]);
			assert_int_equal(res[i].stream_hash, g->stream_hash);
			assert_int_equal(digest(&res[i]), g->digest);
			assert_true(res[i].seconds > 0 && res[i].cpu_seconds >= res[i].gen_cpu_seconds);
		}
	}
}

static void test_shared_run_errors(void **state)
{
	(void)state;
	tm_ss_workload w;
	tm_ss_config cfg;
	tm_ss_result res[TM_SS_POLICY_COUNT + 1];
	tm_ss_policy pol[TM_SS_POLICY_COUNT + 1] = { TM_SS_STATIC, TM_SS_CMA, TM_SS_CMA_FAST,
						     TM_SS_CLEANCACHE, TM_SS_STATIC };
	tm_ss_policy bad = (tm_ss_policy)7;
	tm_error e;

	tm_error_clear(&e);
	make_workload("android", 1, &w, &cfg);
	assert_int_equal(tm_ss_run_policies(&cfg, pol, 0, &w, NULL, res, &e), -EINVAL);
	assert_int_equal(tm_ss_run_policies(&cfg, pol, TM_SS_POLICY_COUNT + 1, &w, NULL, res, &e),
			 -EINVAL);
	assert_int_equal(tm_ss_run_policies(&cfg, &bad, 1, &w, NULL, res, &e), -EINVAL);
	assert_non_null(strstr(tm_error_msg(&e), "policy"));
	assert_int_equal(tm_ss_run_policies(&cfg, pol, 1, NULL, NULL, res, &e), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results_pinned),
		cmocka_unit_test(test_shared_run_pinned),
		cmocka_unit_test(test_shared_run_errors),
		cmocka_unit_test(test_pinned_streams_agree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
