/*
 * test_invariants.c - every invariant checked after every event, for every
 * policy, on small memories driven by the workload generator (the synthetic
 * mix with pins and mprotect(PROT_MTE) events, and the three scenarios),
 * with tag blocks of 1 and 4 frames. Also: the same sequence run twice gives
 * the same result, and nothing pinned is ever moved (checked by tm_ss_check
 * against where each folio was when it was pinned).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tagmem/storage_sim.h"

#define FRAMES (33u * 64u) /* 2048 data frames, 64 tag frames */

/* Run w event by event under pol, checking everything after each one. */
static void run_checked(const tm_ss_workload *w, tm_ss_policy pol, unsigned block,
			tm_ss_stats *out)
{
	tm_ss_config c;
	tm_ss_gen *g = NULL;
	tm_ss_sim *s = NULL;
	tm_error e;
	tm_ss_event buf[256];
	size_t n;

	tm_ss_config_default(&c);
	c.policy = pol;
	c.tag_block_frames = block;
	c.mem_bytes = (uint64_t)FRAMES * 4096;
	c.check_invariants = 0; /* checked below in every build type */
	tm_error_clear(&e);
	assert_int_equal(tm_ss_gen_create(w, FRAMES, &g, &e), 0);
	c.max_objects = tm_ss_gen_max_objects(g);
	assert_int_equal(tm_ss_create(&c, &s, &e), 0);
	uint64_t i = 0;

	while ((n = tm_ss_gen_fill(g, buf, 256)) > 0) {
		for (size_t k = 0; k < n; k++, i++) {
			if (tm_ss_apply(s, &buf[k], &e) || tm_ss_check(s, &e))
				fail_msg("%s, policy %s, block %u, event %llu (%s of %u): %s", w->name,
					 tm_ss_policy_name(pol), block, (unsigned long long)i,
					 tm_ss_op_name((tm_ss_op)buf[k].op), buf[k].obj, tm_error_msg(&e));
		}
	}
	tm_ss_get_stats(s, out);
	tm_ss_destroy(s);
	tm_ss_gen_destroy(g);
}

static void workload(const char *name, uint64_t events, tm_ss_workload *w)
{
	tm_error e;

	tm_error_clear(&e);
	assert_int_equal(tm_ss_workload_preset(name, w, &e), 0);
	w->events = events;
	w->seed = 7;
}

static void all_policies(const tm_ss_workload *w, unsigned block)
{
	for (int p = 0; p < TM_SS_POLICY_COUNT; p++) {
		tm_ss_stats st;

		run_checked(w, (tm_ss_policy)p, block, &st);
		assert_true(st.events > 0);
	}
}

/* The synthetic mix with everything switched on: pins both ways, tag events,
 * large folios, memory over-committed so reclaim and compaction run. */
static void test_synthetic_everything(void **state)
{
	(void)state;
	tm_ss_workload w;

	workload("synthetic", 6000, &w);
	for (unsigned i = 0; i < w.nphases; i++) {
		tm_ss_phase *p = &w.phase[i];

		p->pinned_fraction = 0.1;
		p->pin_longterm = i == 0;
		p->tag_event_rate = 0.05;
		p->tagged_fraction = 0.3;
		p->occupancy = 1.1;
		memset(p->order_weight, 0, sizeof(p->order_weight));
		p->order_weight[0] = 80;
		p->order_weight[2] = 10;
		p->order_weight[5] = 8;
		p->order_weight[9] = 2;
		p->pc_order_weight[0] = 90;
		p->pc_order_weight[2] = 10;
	}
	all_policies(&w, 1);
	all_policies(&w, 4);
}

static void test_android(void **state)
{
	(void)state;
	tm_ss_workload w;

	workload("android", 5000, &w);
	all_policies(&w, 1);
}

static void test_kvm_server(void **state)
{
	(void)state;
	tm_ss_workload w;

	workload("kvm-server", 3000, &w);
	all_policies(&w, 1);
	all_policies(&w, 4);
}

/* The adversary pins frames in place; under cma some tagged allocations
 * must fail on them, under static and cleancache none may. (Base pages only:
 * on a memory this small, large folios fragment it so much that the tag
 * storage is hardly ever needed for data.) */
static void test_adversary(void **state)
{
	(void)state;
	tm_ss_workload w;
	tm_ss_stats st[TM_SS_POLICY_COUNT];

	workload("adversary", 30000, &w);
	for (unsigned i = 0; i < w.nphases; i++) {
		memset(w.phase[i].order_weight, 0, sizeof(w.phase[i].order_weight));
		w.phase[i].order_weight[0] = 100;
	}
	for (int p = 0; p < TM_SS_POLICY_COUNT; p++)
		run_checked(&w, (tm_ss_policy)p, 1, &st[p]);
	assert_int_equal(st[TM_SS_STATIC].tagged_alloc_failures, 0);
	assert_int_equal(st[TM_SS_CLEANCACHE].tagged_alloc_failures, 0);
	assert_true(st[TM_SS_CMA].fail_pinned > 0);
	assert_true(st[TM_SS_CMA_FAST].fail_pinned > 0);
}

/* Same workload and seed: the same numbers, every time. */
static void test_deterministic(void **state)
{
	(void)state;
	tm_ss_workload w;
	tm_ss_stats a, b;

	workload("android", 4000, &w);
	run_checked(&w, TM_SS_CMA_FAST, 1, &a);
	run_checked(&w, TM_SS_CMA_FAST, 1, &b);
	assert_memory_equal(a.ops, b.ops, sizeof(a.ops));
	assert_int_equal(a.modelled_ns, b.modelled_ns);
	assert_int_equal(a.frames_migrated, b.frames_migrated);
	assert_int_equal(a.frames_taken_fast, b.frames_taken_fast);
	assert_int_equal(a.refaults, b.refaults);
	assert_int_equal(a.tagged_alloc_p99_ns, b.tagged_alloc_p99_ns);
	assert_true(a.usable_gain_pct == b.usable_gain_pct);
	assert_true(a.modelled_ns > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_synthetic_everything),
		cmocka_unit_test(test_android),
		cmocka_unit_test(test_kvm_server),
		cmocka_unit_test(test_adversary),
		cmocka_unit_test(test_deterministic),
	};

	return cmocka_run_group_tests_name("storage_invariants", tests, NULL, NULL);
}
