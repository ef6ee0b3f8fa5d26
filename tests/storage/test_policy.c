/*
 * test_policy.c - the four tag-storage policies on small hand-computed
 * cases: folios placed on chosen frames, one tagged allocation, and the
 * exact counts (frames migrated, dropped, taken off the buddy lists, drains)
 * and modelled cost (from the default cost table) each policy must give.
 *
 * The memory is 132 frames: data frames 0..127 and tag storage 128..131.
 * With tag blocks of 4 frames there is one block (128..131) covering all
 * data frames; with blocks of 1 frame, block b = frame 128 + b covers data
 * frames 32b..32b+31.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "tagmem/storage_sim.h"

#define ALLOC_FOLIO 250
#define CLEAR 300
#define TAG_CLEAR 300
#define READ 50000
#define MIGRATE 3000
#define DROP 500
#define TAKEOFF 200
#define CONTIG 5000
#define DRAIN 50000
#define FAIL 100000
/* a tagged order-0 allocation before any reservation work */
#define TAGGED_BASE (ALLOC_FOLIO + CLEAR + TAG_CLEAR)

static tm_ss_sim *make(tm_ss_policy pol, unsigned block, unsigned frames, unsigned retries)
{
	tm_ss_config c;
	tm_ss_sim *s = NULL;
	tm_error e;

	tm_ss_config_default(&c);
	c.policy = pol;
	c.tag_block_frames = block;
	c.mem_bytes = (uint64_t)frames * 4096;
	c.max_objects = 64;
	c.tag_retries = retries;
	c.check_invariants = 1;
	c.wmark_low_pct = 0; /* no background reclaim in these tiny cases */
	c.wmark_high_pct = 0;
	tm_error_clear(&e);
	assert_int_equal(tm_ss_create(&c, &s, &e), 0);
	return s;
}

static void check(tm_ss_sim *s)
{
	tm_error e;

	tm_error_clear(&e);
	if (tm_ss_check(s, &e))
		fail_msg("%s", tm_error_msg(&e));
}

static void place(tm_ss_sim *s, uint32_t id, uint32_t pfn, tm_ss_kind kind, unsigned flags)
{
	tm_error e;

	tm_error_clear(&e);
	if (tm_ss_alloc_at(s, id, pfn, 0, kind, flags, &e))
		fail_msg("placing object %u at %u: %s", id, pfn, tm_error_msg(&e));
	check(s);
}

static void apply(tm_ss_sim *s, uint32_t id, tm_ss_op op, unsigned flags)
{
	tm_ss_event ev = { .obj = id, .op = (uint8_t)op, .flags = (uint8_t)flags };
	tm_error e;

	tm_error_clear(&e);
	if (tm_ss_apply(s, &ev, &e))
		fail_msg("%s of %u: %s", tm_ss_op_name(op), id, tm_error_msg(&e));
	check(s);
}

static tm_ss_obj_info info(tm_ss_sim *s, uint32_t id)
{
	tm_ss_obj_info i;

	assert_int_equal(tm_ss_get_obj(s, id, &i), 0);
	return i;
}

static tm_ss_stats stats(tm_ss_sim *s)
{
	tm_ss_stats st;

	tm_ss_get_stats(s, &st);
	return st;
}

/* Three movable folios in the tag block: cma migrates the 3, drains once. */
static void test_cma_migrates_occupants(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_CMA, 4, 132, 0);

	for (uint32_t i = 0; i < 3; i++)
		place(s, i, 128 + i, TM_SS_MOVABLE, 0);
	assert_true(info(s, 1).in_tag_storage);
	place(s, 10, 5, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
	tm_ss_stats st = stats(s);

	assert_int_equal(st.reservations, 1);
	assert_int_equal(st.drains, 1);
	assert_int_equal(st.contig_calls, 1);
	assert_int_equal(st.frames_migrated, 3);
	assert_int_equal(st.frames_taken_fast, 0);
	assert_int_equal(st.frames_dropped, 0);
	assert_int_equal(st.tagged_alloc_failures, 0);
	assert_int_equal(st.tag_frames_reserved, 4);
	assert_int_equal(tm_ss_last_cost_ns(s), TAGGED_BASE + CONTIG + DRAIN + 3 * MIGRATE);
	for (uint32_t i = 0; i < 3; i++) {
		assert_true(info(s, i).present);
		assert_false(info(s, i).in_tag_storage);
	}
	assert_true(info(s, 10).tagged);
	assert_int_equal(info(s, 10).pfn, 5);
	/* the last tagged frame going releases the block */
	apply(s, 10, TM_SS_OP_FREE, 0);
	assert_int_equal(stats(s).releases, 1);
	assert_int_equal(stats(s).tag_frames_reserved, 0);
	tm_ss_destroy(s);
}

/* A free tag block: cma still pays the drain, cma-fast takes it directly. */
static void test_free_block_cma_vs_fast(void **state)
{
	(void)state;
	tm_ss_sim *slow = make(TM_SS_CMA, 4, 132, 0);
	tm_ss_sim *fast = make(TM_SS_CMA_FAST, 4, 132, 0);

	place(slow, 0, 5, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
	place(fast, 0, 5, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
	assert_int_equal(stats(slow).drains, 1);
	assert_int_equal(stats(slow).frames_taken_fast, 0);
	assert_int_equal(tm_ss_last_cost_ns(slow), TAGGED_BASE + CONTIG + DRAIN);
	assert_int_equal(stats(fast).drains, 0);
	assert_int_equal(stats(fast).contig_calls, 0);
	assert_int_equal(stats(fast).frames_taken_fast, 4);
	assert_int_equal(stats(fast).frames_migrated, 0);
	assert_int_equal(tm_ss_last_cost_ns(fast), TAGGED_BASE + 4 * TAKEOFF);
	/* a second tagged folio under the same block costs nothing more */
	place(fast, 1, 6, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
	assert_int_equal(tm_ss_last_cost_ns(fast), TAGGED_BASE);
	assert_int_equal(stats(fast).reservations, 1);
	tm_ss_destroy(slow);
	tm_ss_destroy(fast);
}

/* cma-fast with occupants: the free frame is taken, the rest migrate. */
static void test_fast_with_occupants(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_CMA_FAST, 4, 132, 0);

	for (uint32_t i = 0; i < 3; i++)
		place(s, i, 128 + i, TM_SS_MOVABLE, 0);
	place(s, 10, 5, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
	assert_int_equal(stats(s).frames_taken_fast, 1);
	assert_int_equal(stats(s).frames_migrated, 3);
	assert_int_equal(stats(s).drains, 1);
	assert_int_equal(tm_ss_last_cost_ns(s), TAGGED_BASE + TAKEOFF + CONTIG + DRAIN + 3 * MIGRATE);
	tm_ss_destroy(s);
}

/* A pinned occupant makes the reservation fail; nothing moves. */
static void test_pinned_occupant_fails(void **state)
{
	(void)state;
	for (int pol = TM_SS_CMA; pol <= TM_SS_CMA_FAST; pol++) {
		tm_ss_sim *s = make((tm_ss_policy)pol, 4, 132, 0);

		place(s, 0, 128, TM_SS_MOVABLE, 0);
		place(s, 1, 129, TM_SS_MOVABLE, 0);
		apply(s, 1, TM_SS_OP_PIN, 0); /* vmsplice-style: stays in place */
		place(s, 10, 5, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
		tm_ss_stats st = stats(s);

		assert_int_equal(st.tagged_alloc_failures, 1);
		assert_int_equal(st.fail_pinned, 1);
		assert_int_equal(st.reservations, 0);
		assert_int_equal(st.frames_migrated, 0);
		assert_int_equal(st.drains, 1);
		assert_int_equal(tm_ss_last_cost_ns(s), TAGGED_BASE + CONTIG + DRAIN + FAIL);
		assert_true(info(s, 10).failed);
		assert_false(info(s, 10).present);
		assert_int_equal(info(s, 1).pfn, 129);
		assert_int_equal(info(s, 0).pfn, 128);
		assert_int_equal(st.tag_frames_reserved, 0);
		/* once unpinned the same allocation succeeds */
		apply(s, 1, TM_SS_OP_UNPIN, 0);
		apply(s, 10, TM_SS_OP_FREE, 0);
		place(s, 10, 5, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
		assert_true(info(s, 10).tagged);
		assert_int_equal(stats(s).frames_migrated, 2);
		tm_ss_destroy(s);
	}
}

/* Retrying elsewhere does not escape a pinned block when the allocator
 * keeps handing out neighbouring frames covered by the same block. */
static void test_retries_stay_in_pinned_block(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_CMA_FAST, 1, 132, 16);
	tm_ss_event ev = { .obj = 10, .op = TM_SS_OP_ALLOC, .kind = TM_SS_MOVABLE,
			   .flags = TM_SS_EV_TAGGED };
	tm_error e;

	place(s, 0, 128, TM_SS_MOVABLE, 0); /* block 0: data frames 0..31 */
	apply(s, 0, TM_SS_OP_PIN, 0);
	tm_error_clear(&e);
	assert_int_equal(tm_ss_apply(s, &ev, &e), 0);
	check(s);
	assert_int_equal(stats(s).fail_pinned, 17);
	assert_int_equal(stats(s).drains, 17);
	assert_int_equal(stats(s).tagged_alloc_failures, 1);
	assert_true(info(s, 10).failed);
	tm_ss_destroy(s);
}

/* cleancache drops clean page cache (no copy, no drain); a read refaults. */
static void test_cleancache_drops_then_refaults(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_CLEANCACHE, 4, 132, 0);
	tm_error e;

	for (uint32_t i = 0; i < 3; i++)
		place(s, i, 128 + i, TM_SS_PAGECACHE, 0);
	tm_error_clear(&e);
	assert_int_equal(tm_ss_alloc_at(s, 5, 131, 0, TM_SS_MOVABLE, 0, &e), -EINVAL);
	place(s, 10, 5, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
	tm_ss_stats st = stats(s);

	assert_int_equal(st.frames_dropped, 3);
	assert_int_equal(st.frames_migrated, 0);
	assert_int_equal(st.drains, 0);
	assert_int_equal(st.frames_taken_fast, 1);
	assert_int_equal(tm_ss_last_cost_ns(s), TAGGED_BASE + TAKEOFF + 3 * DROP);
	assert_true(info(s, 0).dropped);
	assert_false(info(s, 0).present);
	apply(s, 0, TM_SS_OP_READ, 0);
	assert_int_equal(stats(s).refaults, 1);
	assert_int_equal(stats(s).refaults_policy, 1);
	assert_int_equal(tm_ss_last_cost_ns(s), ALLOC_FOLIO + READ);
	assert_true(info(s, 0).present);
	assert_false(info(s, 0).in_tag_storage); /* the block holds tags now */
	tm_ss_destroy(s);
}

/* cma drops clean page cache too (alloc_contig_range reclaims clean file
 * pages instead of migrating them), but pays the drain. */
static void test_cma_drops_pagecache(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_CMA, 4, 132, 0);

	place(s, 0, 128, TM_SS_PAGECACHE, 0);
	place(s, 1, 129, TM_SS_MOVABLE, 0);
	place(s, 10, 5, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
	assert_int_equal(stats(s).frames_dropped, 1);
	assert_int_equal(stats(s).frames_migrated, 1);
	assert_int_equal(tm_ss_last_cost_ns(s), TAGGED_BASE + CONTIG + DRAIN + DROP + MIGRATE);
	tm_ss_destroy(s);
}

/* Static: the tag storage never holds data; tagging costs only the base. */
static void test_static(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_STATIC, 4, 132, 0);
	tm_error e;

	tm_error_clear(&e);
	assert_int_equal(tm_ss_alloc_at(s, 0, 128, 0, TM_SS_PAGECACHE, 0, &e), -EINVAL);
	place(s, 10, 5, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
	assert_int_equal(tm_ss_last_cost_ns(s), TAGGED_BASE);
	assert_int_equal(stats(s).reservations, 0);
	assert_true(stats(s).usable_gain_pct == 0.0);
	assert_int_equal(stats(s).tag_frames_reserved, 4);
	tm_ss_destroy(s);
}

/* mprotect(PROT_MTE) of a folio in tag storage: it moves out first. */
static void test_tag_event_moves_out_of_tag_storage(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_CMA_FAST, 4, 132, 0);

	place(s, 0, 130, TM_SS_MOVABLE, 0);
	apply(s, 0, TM_SS_OP_TAG, 0);
	assert_true(info(s, 0).tagged);
	assert_false(info(s, 0).in_tag_storage);
	assert_int_equal(stats(s).frames_migrated, 1);
	assert_int_equal(stats(s).frames_taken_fast, 4); /* its old frame came free */
	assert_int_equal(tm_ss_last_cost_ns(s), TAG_CLEAR + MIGRATE + 4 * TAKEOFF);
	tm_ss_destroy(s);
}

/* A FOLL_LONGTERM pin migrates out of CMA; an in-place pin does not. */
static void test_longterm_pin_migrates(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_CMA, 4, 132, 0);

	place(s, 0, 128, TM_SS_MOVABLE, 0);
	place(s, 1, 129, TM_SS_MOVABLE, 0);
	apply(s, 0, TM_SS_OP_PIN, TM_SS_EV_LONGTERM);
	apply(s, 1, TM_SS_OP_PIN, 0);
	assert_false(info(s, 0).in_tag_storage);
	assert_true(info(s, 1).in_tag_storage);
	assert_int_equal(info(s, 0).pins, 1);
	assert_int_equal(stats(s).frames_migrated, 1);
	tm_ss_destroy(s);
}

/* Invalid events are refused and change nothing. */
static void test_invalid_events(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_CMA, 4, 132, 0);
	tm_error e;
	tm_ss_event ev = { .obj = 0, .op = TM_SS_OP_FREE };

	tm_error_clear(&e);
	assert_int_equal(tm_ss_apply(s, &ev, &e), -ENOENT);
	assert_non_null(strstr(tm_error_msg(&e), "object 0"));
	place(s, 0, 128, TM_SS_MOVABLE, 0);
	apply(s, 0, TM_SS_OP_PIN, 0);
	assert_int_equal(tm_ss_apply(s, &ev, &e), -EBUSY);
	ev.op = TM_SS_OP_ALLOC;
	assert_int_equal(tm_ss_apply(s, &ev, &e), -EEXIST);
	ev.obj = 1;
	ev.kind = TM_SS_PAGECACHE;
	ev.flags = TM_SS_EV_TAGGED;
	assert_int_equal(tm_ss_apply(s, &ev, &e), -EINVAL);
	ev.kind = TM_SS_MOVABLE;
	ev.order = 10;
	assert_int_equal(tm_ss_apply(s, &ev, &e), -EINVAL);
	ev.obj = 64;
	ev.order = 0;
	assert_int_equal(tm_ss_apply(s, &ev, &e), -ENOENT);
	assert_int_equal(tm_ss_alloc_at(s, 2, 128, 0, TM_SS_MOVABLE, 0, &e), -EBUSY);
	assert_int_equal(tm_ss_alloc_at(s, 2, 3, 1, TM_SS_MOVABLE, 0, &e), -EINVAL);
	assert_int_equal(stats(s).events, 2);
	check(s);
	tm_ss_destroy(s);
}

/* An order-9 tagged folio covers 16 one-frame tag blocks. */
static void test_large_folio_spans_blocks(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_CMA_FAST, 1, 33 * 16, 0);

	place(s, 0, 0, TM_SS_MOVABLE, 0); /* keeps frame 0 busy */
	apply(s, 0, TM_SS_OP_FREE, 0);
	tm_error e;

	tm_error_clear(&e);
	assert_int_equal(tm_ss_alloc_at(s, 1, 0, 9, TM_SS_MOVABLE, TM_SS_EV_TAGGED, &e), 0);
	check(s);
	assert_int_equal(stats(s).reservations, 16);
	assert_int_equal(stats(s).frames_taken_fast, 16);
	assert_int_equal(stats(s).tag_frames_reserved, 16);
	assert_int_equal(tm_ss_last_cost_ns(s), ALLOC_FOLIO + 512 * (CLEAR + TAG_CLEAR) + 16 * TAKEOFF);
	apply(s, 1, TM_SS_OP_FREE, 0);
	assert_int_equal(stats(s).releases, 16);
	assert_int_equal(stats(s).tag_frames_reserved, 0);
	tm_ss_destroy(s);
}

/* Percentiles of the tagged-allocation cost are exact for equal samples. */
static void test_latency_percentiles(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_CMA, 1, 132, 0);

	/* block 0 is reserved by the first (cost with drain), then 98 cheap ones */
	place(s, 0, 0, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
	for (uint32_t i = 1; i < 32; i++)
		place(s, i, i, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
	tm_ss_stats st = stats(s);

	assert_int_equal(st.tagged_allocs, 32);
	assert_int_equal(st.tagged_alloc_p50_ns, TAGGED_BASE);
	assert_int_equal(st.tagged_alloc_max_ns, TAGGED_BASE + CONTIG + DRAIN);
	assert_int_equal(st.tagged_alloc_p99_ns, TAGGED_BASE + CONTIG + DRAIN);
	assert_int_equal(st.tagged_ns, 32 * TAGGED_BASE + CONTIG + DRAIN);
	tm_ss_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cma_migrates_occupants),
		cmocka_unit_test(test_free_block_cma_vs_fast),
		cmocka_unit_test(test_fast_with_occupants),
		cmocka_unit_test(test_pinned_occupant_fails),
		cmocka_unit_test(test_retries_stay_in_pinned_block),
		cmocka_unit_test(test_cleancache_drops_then_refaults),
		cmocka_unit_test(test_cma_drops_pagecache),
		cmocka_unit_test(test_static),
		cmocka_unit_test(test_tag_event_moves_out_of_tag_storage),
		cmocka_unit_test(test_longterm_pin_migrates),
		cmocka_unit_test(test_invalid_events),
		cmocka_unit_test(test_large_folio_spans_blocks),
		cmocka_unit_test(test_latency_percentiles),
	};

	return cmocka_run_group_tests_name("storage_policy", tests, NULL, NULL);
}
