/*
 * test_workload.c - workloads and cost tables: the generator is a pure
 * function of (workload, seed, frames) and never of the policy, so every
 * policy sees the same event sequence; presets are valid and do what their
 * names say (tagged fractions, a re-pinning adversary, guests tagged);
 * order mixes and cost overrides are parsed strictly; results are
 * deterministic and state the cost table they used.
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
#include <unistd.h>

#include "tagmem/storage_sim.h"

#define FRAMES (33u * 128u)

static uint64_t stream_hash(const tm_ss_workload *w, uint32_t frames, uint64_t *count,
			    uint64_t *ops)
{
	tm_ss_gen *g = NULL;
	tm_error e;
	tm_ss_event buf[512];
	size_t n;
	uint64_t h = 0;

	tm_error_clear(&e);
	assert_int_equal(tm_ss_gen_create(w, frames, &g, &e), 0);
	*count = 0;
	while ((n = tm_ss_gen_fill(g, buf, 512)) > 0) {
		h = tm_ss_hash_events(h, buf, n);
		*count += n;
		for (size_t i = 0; ops && i < n; i++)
			ops[buf[i].op]++;
	}
	tm_ss_gen_destroy(g);
	return h;
}

static void preset(const char *name, tm_ss_workload *w, uint64_t events)
{
	tm_error e;

	tm_error_clear(&e);
	assert_int_equal(tm_ss_workload_preset(name, w, &e), 0);
	assert_int_equal(tm_ss_workload_validate(w, &e), 0);
	w->events = events;
}

static void test_generator_deterministic(void **state)
{
	(void)state;
	tm_ss_workload w;
	uint64_t n1, n2, n3;

	preset("synthetic", &w, 30000);
	uint64_t a = stream_hash(&w, FRAMES, &n1, NULL);
	uint64_t b = stream_hash(&w, FRAMES, &n2, NULL);

	w.seed = 2;
	uint64_t c = stream_hash(&w, FRAMES, &n3, NULL);

	assert_int_equal(a, b);
	assert_int_equal(n1, n2);
	assert_true(n1 > 30000); /* the warm-up fills memory first */
	assert_int_not_equal(a, c);
}

/* tm_ss_run of each policy hashes the same sequence. */
static void test_same_sequence_every_policy(void **state)
{
	(void)state;
	tm_ss_workload w;
	tm_ss_config c;
	tm_ss_result r[TM_SS_POLICY_COUNT];
	tm_error e;

	preset("android", &w, 20000);
	tm_error_clear(&e);
	for (int p = 0; p < TM_SS_POLICY_COUNT; p++) {
		tm_ss_config_default(&c);
		c.policy = (tm_ss_policy)p;
		c.mem_bytes = (uint64_t)FRAMES * 4096;
		c.check_invariants = 0;
		assert_int_equal(tm_ss_run(&c, &w, NULL, &r[p], &e), 0);
		assert_int_equal(r[p].st.events, 20000);
		assert_true(r[p].warmup_events > FRAMES / 2); /* filling memory */
		assert_int_equal(r[p].warmup_events, r[0].warmup_events);
		assert_int_equal(r[p].stream_hash, r[0].stream_hash);
		assert_true(r[p].events_per_s > 0);
		assert_true(r[p].cpu_seconds > 0);
	}
	/* same events, different policies: the reuse policies gain memory */
	assert_true(r[TM_SS_STATIC].st.usable_gain_pct == 0.0);
	assert_true(r[TM_SS_CMA].st.usable_gain_pct > 0.0);
	assert_true(r[TM_SS_CMA].st.usable_gain_pct <= 100.0 / 33 + 1e-9);
	assert_int_equal(r[TM_SS_STATIC].st.drains, 0);
	assert_true(r[TM_SS_CMA].st.drains > r[TM_SS_CMA_FAST].st.drains);
	assert_int_equal(r[TM_SS_CLEANCACHE].st.drains, 0);
	assert_int_equal(r[TM_SS_CLEANCACHE].st.frames_migrated, 0);
}

/* The tagged fraction is what the workload asks for. */
static void test_tagged_fraction(void **state)
{
	(void)state;
	tm_ss_workload w;
	tm_ss_gen *g = NULL;
	tm_error e;
	tm_ss_event buf[512];
	size_t n;
	uint64_t movable = 0, tagged = 0;

	preset("synthetic", &w, 60000);
	tm_ss_workload_set_tagged(&w, 0.25);
	tm_error_clear(&e);
	assert_int_equal(tm_ss_gen_create(&w, FRAMES, &g, &e), 0);
	while ((n = tm_ss_gen_fill(g, buf, 512)) > 0) {
		for (size_t i = 0; i < n; i++) {
			if (buf[i].op == TM_SS_OP_ALLOC && buf[i].kind == TM_SS_MOVABLE) {
				movable++;
				tagged += (buf[i].flags & TM_SS_EV_TAGGED) != 0;
			}
		}
	}
	tm_ss_gen_destroy(g);
	assert_true(movable > 5000);
	double f = (double)tagged / (double)movable;

	assert_true(f > 0.22 && f < 0.28);
	/* set_tagged touches only the phases marked for it */
	preset("kvm-server", &w, 1000);
	tm_ss_workload_set_tagged(&w, 0.5);
	assert_true(w.phase[0].tagged_fraction == 0.0);
	assert_true(w.phase[1].tagged_fraction == 0.5);
}

/* The adversary's objects are pinned in place and never freed. */
static void test_adversary_preset(void **state)
{
	(void)state;
	tm_ss_workload w;
	uint64_t n, ops[TM_SS_OP_COUNT] = { 0 };

	preset("adversary", &w, 40000);
	assert_true(w.phase[1].adversary_cap > 0);
	(void)stream_hash(&w, FRAMES, &n, ops);
	assert_true(ops[TM_SS_OP_PIN] >= FRAMES / 10); /* 10% of RAM, pinned */
	/* once it holds its share it re-pins: unpins come with new pins */
	assert_true(ops[TM_SS_OP_UNPIN] > 1000);
	assert_true(ops[TM_SS_OP_PIN] - ops[TM_SS_OP_UNPIN] <= FRAMES / 10 + 2);
	/* in the kvm preset guests are all tagged order-9 folios */
	preset("kvm-server", &w, 1000);
	assert_true(w.phase[1].tagged_fraction == 1.0);
	assert_int_equal(w.phase[1].order_weight[9], 100);
}

static void test_bad_workloads(void **state)
{
	(void)state;
	tm_ss_workload w;
	tm_error e;
	uint32_t mix[TM_SS_MAX_ORDER + 1];

	tm_error_clear(&e);
	assert_int_equal(tm_ss_workload_preset("phone", &w, &e), -EINVAL);
	assert_non_null(strstr(tm_error_msg(&e), "phone"));
	preset("synthetic", &w, 10);
	w.phase[1].churn = 1.5;
	assert_int_equal(tm_ss_workload_validate(&w, &e), -EINVAL);
	assert_non_null(strstr(tm_error_msg(&e), "phase 1: churn"));
	preset("synthetic", &w, 10);
	w.phase[1].share = 0.5;
	assert_int_equal(tm_ss_workload_validate(&w, &e), -EINVAL);
	assert_non_null(strstr(tm_error_msg(&e), "shares"));
	preset("synthetic", &w, 10);
	w.phase[0].share = 0.5; /* a warm-up phase has no share */
	assert_int_equal(tm_ss_workload_validate(&w, &e), -EINVAL);
	assert_non_null(strstr(tm_error_msg(&e), "warm-up"));
	preset("synthetic", &w, 10);
	w.phase[1].warmup = true;
	w.phase[1].share = 0;
	assert_int_equal(tm_ss_workload_validate(&w, &e), -EINVAL);
	preset("synthetic", &w, 10);
	w.phase[0].pagecache_fraction = 0.9;
	w.phase[0].unmovable_fraction = 0.2;
	assert_int_equal(tm_ss_workload_validate(&w, &e), -EINVAL);
	assert_int_equal(tm_ss_order_mix_parse("0:80,4:20", mix, &e), 0);
	assert_int_equal(mix[0], 80);
	assert_int_equal(mix[4], 20);
	assert_int_equal(mix[9], 0);
	mix[0] = 7;
	assert_int_equal(tm_ss_order_mix_parse("0:80,10:20", mix, &e), -EINVAL);
	assert_int_equal(tm_ss_order_mix_parse("0:0", mix, &e), -EINVAL);
	assert_int_equal(tm_ss_order_mix_parse("0-80", mix, &e), -EINVAL);
	assert_int_equal(tm_ss_order_mix_parse("0:80;", mix, &e), -EINVAL);
	assert_int_equal(mix[0], 7); /* untouched on error */
}

static void test_costs(void **state)
{
	(void)state;
	tm_ss_costs c, d;
	tm_error e;

	tm_ss_costs_default(&c);
	d = c;
	assert_false(c.overridden);
	for (unsigned k = 0; k < TM_SS_COST_COUNT; k++) {
		assert_non_null(tm_ss_cost_name(k));
		assert_non_null(tm_ss_cost_unit(k));
		assert_true(strlen(tm_ss_cost_source(k)) > 10);
	}
	assert_null(tm_ss_cost_name(TM_SS_COST_COUNT));
	tm_error_clear(&e);
	assert_int_equal(tm_ss_costs_set(&c, "drain=123", &e), 0);
	assert_int_equal(c.ns[TM_SS_COST_DRAIN], 123);
	assert_true(c.overridden);
	assert_int_equal(tm_ss_costs_set(&c, " migrate_frame = 7 ", &e), 0);
	assert_int_equal(c.ns[TM_SS_COST_MIGRATE_FRAME], 7);
	assert_int_equal(tm_ss_costs_set(&c, "dran=5", &e), -EINVAL);
	assert_non_null(strstr(tm_error_msg(&e), "dran"));
	assert_int_equal(tm_ss_costs_set(&c, "drain=-5", &e), -EINVAL);
	assert_int_equal(tm_ss_costs_set(&c, "drain=5x", &e), -EINVAL);
	assert_int_equal(tm_ss_costs_set(&c, "drain", &e), -EINVAL);
	assert_int_equal(c.ns[TM_SS_COST_DRAIN], 123);

	char path[] = "/tmp/tagmem-costs-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fprintf(f, "# phone with NVMe\n\nread_frame=15000  # per 4 KiB\ndrain = 20000\n");
	fclose(f);
	assert_int_equal(tm_ss_costs_load(&d, path, &e), 0);
	assert_int_equal(d.ns[TM_SS_COST_READ_FRAME], 15000);
	assert_int_equal(d.ns[TM_SS_COST_DRAIN], 20000);
	f = fopen(path, "w");
	fprintf(f, "drain=1\nbogus=2\n");
	fclose(f);
	tm_ss_costs_default(&d);
	assert_int_equal(tm_ss_costs_load(&d, path, &e), -EINVAL);
	assert_non_null(strstr(tm_error_msg(&e), "line 2"));
	assert_int_equal(d.ns[TM_SS_COST_DRAIN], 50000); /* line 1 not applied */
	unlink(path);
	assert_int_equal(tm_ss_costs_load(&d, path, &e), -ENOENT);
}

/* The cost table changes the modelled cost, not what happens. */
static void test_costs_change_cost_only(void **state)
{
	(void)state;
	tm_ss_workload w;
	tm_ss_config c;
	tm_ss_result a, b;
	tm_error e;

	preset("android", &w, 15000);
	tm_ss_config_default(&c);
	c.policy = TM_SS_CMA;
	c.mem_bytes = (uint64_t)FRAMES * 4096;
	c.check_invariants = 0;
	tm_error_clear(&e);
	assert_int_equal(tm_ss_run(&c, &w, NULL, &a, &e), 0);
	assert_int_equal(tm_ss_costs_set(&c.costs, "drain=0", &e), 0);
	assert_int_equal(tm_ss_run(&c, &w, NULL, &b, &e), 0);
	assert_int_equal(a.st.drains, b.st.drains);
	assert_true(a.st.drains > 0);
	assert_int_equal(a.st.modelled_ns - b.st.modelled_ns, a.st.drains * 50000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generator_deterministic),
		cmocka_unit_test(test_same_sequence_every_policy),
		cmocka_unit_test(test_tagged_fraction),
		cmocka_unit_test(test_adversary_preset),
		cmocka_unit_test(test_bad_workloads),
		cmocka_unit_test(test_costs),
		cmocka_unit_test(test_costs_change_cost_only),
	};

	return cmocka_run_group_tests_name("storage_workload", tests, NULL, NULL);
}
