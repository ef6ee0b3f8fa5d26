/*
 * test_buddy.c - the simulator's buddy allocator and its invariant checker:
 * geometry of the carve-out, split and merge (everything freed merges back
 * to the boot layout), migrate-type fallback, and proof that tm_ss_check
 * notices each kind of corruption it claims to (a frame in two blocks, a
 * free block on no list, wrong counters, a tag block reserved without tagged
 * frames, a moved pinned folio, a tagged folio in tag storage).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/test_skip.h"

#include <errno.h>
#include <string.h>

#include "storage/sim_internal.h"
#include "tagmem/storage_sim.h"

static tm_ss_sim *make(tm_ss_policy pol, unsigned block, uint64_t frames, uint32_t objs)
{
	tm_ss_config c;
	tm_ss_sim *s = NULL;
	tm_error e;

	tm_ss_config_default(&c);
	c.policy = pol;
	c.tag_block_frames = block;
	c.mem_bytes = frames * 4096;
	c.max_objects = objs;
	c.wmark_low_pct = c.wmark_high_pct = 0;
	tm_error_clear(&e);
	assert_int_equal(tm_ss_create(&c, &s, &e), 0);
	return s;
}

static void ok(const tm_ss_sim *s)
{
	tm_error e;

	tm_error_clear(&e);
	if (tm_ss_check(s, &e))
		fail_msg("%s", tm_error_msg(&e));
}

static void broken(const tm_ss_sim *s, const char *what)
{
	tm_error e;

	tm_error_clear(&e);
	assert_int_equal(tm_ss_check(s, &e), -EFAULT);
	if (!strstr(tm_error_msg(&e), what))
		fail_msg("expected '%s' in '%s'", what, tm_error_msg(&e));
}

static void ev(tm_ss_sim *s, uint32_t id, tm_ss_op op, unsigned order, tm_ss_kind kind, unsigned flags)
{
	tm_ss_event e = { .obj = id, .op = (uint8_t)op, .order = (uint8_t)order,
			  .kind = (uint8_t)kind, .flags = (uint8_t)flags };
	tm_error err;

	tm_error_clear(&err);
	if (tm_ss_apply(s, &e, &err))
		fail_msg("%s", tm_error_msg(&err));
	ok(s);
}

static void test_geometry(void **state)
{
	(void)state;
	tm_ss_config c;
	tm_ss_geometry g;
	tm_error e;

	tm_ss_config_default(&c);
	tm_error_clear(&e);
	assert_int_equal(tm_ss_config_geometry(&c, &g, &e), 0);
	/* 16 GiB of 4 KiB frames: 4194304 frames, in whole groups of 33 */
	assert_int_equal(g.frames, 4194304u / 33 * 33);
	assert_int_equal(g.data_frames, 32 * g.tag_frames);
	assert_int_equal(g.tag_blocks, g.tag_frames);
	c.tag_block_frames = 4;
	c.mem_bytes = 132 * 4096 + 4095;
	assert_int_equal(tm_ss_config_geometry(&c, &g, &e), 0);
	assert_int_equal(g.frames, 132);
	assert_int_equal(g.tag_blocks, 1);
	c.mem_bytes = 100 * 4096;
	assert_int_equal(tm_ss_config_geometry(&c, &g, &e), -EINVAL);
	assert_non_null(strstr(tm_error_msg(&e), "frames"));
	c.mem_bytes = 1 << 30;
	c.page_size = 3000;
	assert_int_equal(tm_ss_config_geometry(&c, &g, &e), -EINVAL);
	assert_non_null(strstr(tm_error_msg(&e), "page_size"));
}

/* Allocate every data frame one by one, free them all: back to one layout. */
static void test_split_and_merge(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_STATIC, 1, 33 * 32, 2048);
	tm_ss_stats st;

	tm_ss_get_stats(s, &st);
	assert_int_equal(st.free_frames, 1024);
	for (uint32_t i = 0; i < 1024; i++)
		ev(s, i, TM_SS_OP_ALLOC, 0, TM_SS_UNMOVABLE, 0);
	tm_ss_get_stats(s, &st);
	assert_int_equal(st.free_frames, 0);
	assert_int_equal(st.alloc_failures, 0);
	ev(s, 2000, TM_SS_OP_ALLOC, 0, TM_SS_UNMOVABLE, 0);
	tm_ss_get_stats(s, &st);
	assert_int_equal(st.alloc_failures, 1); /* nothing to reclaim */
	for (uint32_t i = 0; i < 1024; i += 2)
		ev(s, i, TM_SS_OP_FREE, 0, 0, 0);
	/* every other frame free: no order-1 block anywhere */
	ev(s, 2001, TM_SS_OP_ALLOC, 1, TM_SS_MOVABLE, 0);
	tm_ss_get_stats(s, &st);
	assert_int_equal(st.alloc_failures, 2);
	for (uint32_t i = 1; i < 1024; i += 2)
		ev(s, i, TM_SS_OP_FREE, 0, 0, 0);
	ev(s, 2000, TM_SS_OP_FREE, 0, 0, 0);
	ev(s, 2001, TM_SS_OP_FREE, 0, 0, 0);
	/* merged back: two order-9 blocks, the largest allocation works */
	assert_int_equal(s->head[MT_UNMOVABLE][TM_SS_MAX_ORDER] != SS_NIL ||
			 s->head[MT_MOVABLE][TM_SS_MAX_ORDER] != SS_NIL, 1);
	ev(s, 5, TM_SS_OP_ALLOC, 9, TM_SS_MOVABLE, 0);
	ev(s, 6, TM_SS_OP_ALLOC, 9, TM_SS_MOVABLE, 0);
	tm_ss_get_stats(s, &st);
	assert_int_equal(st.free_frames, 0);
	assert_int_equal(st.alloc_failures, 2);
	tm_ss_destroy(s);
}

/* Unmovable allocations steal a movable pageblock and keep to it. */
static void test_fallback_claims_pageblock(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_STATIC, 1, 33 * 32, 64);

	assert_int_equal(s->pbtype[0], MT_MOVABLE);
	ev(s, 0, TM_SS_OP_ALLOC, 0, TM_SS_UNMOVABLE, 0);
	assert_int_equal(s->pbtype[s->obj[0].pfn >> SS_PB_ORDER], MT_UNMOVABLE);
	ev(s, 1, TM_SS_OP_ALLOC, 0, TM_SS_UNMOVABLE, 0);
	assert_int_equal(s->obj[1].pfn >> SS_PB_ORDER, s->obj[0].pfn >> SS_PB_ORDER);
	ev(s, 2, TM_SS_OP_ALLOC, 0, TM_SS_MOVABLE, 0);
	assert_int_not_equal(s->obj[2].pfn >> SS_PB_ORDER, s->obj[0].pfn >> SS_PB_ORDER);
	tm_ss_destroy(s);
}

/* Each corruption is caught, and undoing it makes the model valid again. */
static void test_checker_catches_corruption(void **state)
{
	(void)state;
	tm_ss_sim *s = make(TM_SS_CMA, 1, 33 * 32, 64);
	struct ss_frame saved;

	ev(s, 0, TM_SS_OP_ALLOC, 2, TM_SS_MOVABLE, TM_SS_EV_TAGGED);
	ev(s, 1, TM_SS_OP_ALLOC, 0, TM_SS_MOVABLE, 0);
	ev(s, 1, TM_SS_OP_PIN, 0, 0, 0);
	uint32_t p0 = s->obj[0].pfn, p1 = s->obj[1].pfn;

	/* a frame in two places: a head inside the 4-frame folio */
	saved = s->fr[p0 + 1];
	s->fr[p0 + 1].state = FS_USED;
	s->fr[p0 + 1].order = 0;
	broken(s, "two blocks");
	s->fr[p0 + 1] = saved;
	ok(s);
	/* a free block missing from its list */
	uint32_t f = s->head[MT_MOVABLE][0] != SS_NIL ? s->head[MT_MOVABLE][0] : s->head[MT_MOVABLE][1];

	assert_int_not_equal(f, SS_NIL);
	saved = s->fr[f];
	uint32_t h = s->head[MT_MOVABLE][s->fr[f].order];

	s->head[MT_MOVABLE][s->fr[f].order] = s->fr[f].next;
	broken(s, "free");
	s->head[MT_MOVABLE][s->fr[f].order] = h;
	ok(s);
	/* an empty free list marked as holding blocks (take_head trusts it) */
	unsigned eo = 0;

	while (eo < SS_NORDERS && s->head[MT_UNMOVABLE][eo] != SS_NIL)
		eo++;
	assert_true(eo < SS_NORDERS);
	s->nonempty[MT_UNMOVABLE] ^= (uint16_t)(1u << eo);
	broken(s, "marked");
	s->nonempty[MT_UNMOVABLE] ^= (uint16_t)(1u << eo);
	ok(s);
	/* a free counter off by one */
	s->free_data++;
	broken(s, "counters");
	s->free_data--;
	/* a tag block that holds tags with no tagged frame: release the count */
	uint32_t b = p0 / s->group;

	s->blk_tagged[b] += 1;
	broken(s, "tag block");
	s->blk_tagged[b] -= 1;
	ok(s);
	/* a pinned folio that moved */
	s->obj[1].pin_pfn = p1 + 1;
	broken(s, "moved");
	s->obj[1].pin_pfn = p1;
	/* tags on a tag-storage frame */
	ev(s, 2, TM_SS_OP_ALLOC, 0, TM_SS_PAGECACHE, 0);
	tm_error e;

	tm_error_clear(&e);
	ev(s, 2, TM_SS_OP_FREE, 0, 0, 0);
	assert_int_equal(tm_ss_alloc_at(s, 3, s->tag_base + 5, 0, TM_SS_MOVABLE, 0, &e), 0);
	ok(s);
	s->obj[3].flags |= OF_TAGGED;
	broken(s, "tagged");
	s->obj[3].flags &= (uint8_t)~OF_TAGGED;
	ok(s);
	tm_ss_destroy(s);
}

/* In debug builds a broken invariant stops the next event with -EFAULT. */
static void test_debug_build_checks_each_event(void **state)
{
	(void)state;
#ifdef TM_DEBUG_INVARIANTS
	tm_ss_sim *s = make(TM_SS_CMA_FAST, 1, 33 * 32, 64);
	tm_ss_event e = { .obj = 1, .op = TM_SS_OP_ALLOC };
	tm_error err;

	ev(s, 0, TM_SS_OP_ALLOC, 0, TM_SS_MOVABLE, 0);
	s->free_tag++;
	tm_error_clear(&err);
	assert_int_equal(tm_ss_apply(s, &e, &err), -EFAULT);
	assert_non_null(strstr(tm_error_msg(&err), "invariant"));
	s->free_tag--;
	tm_ss_destroy(s);
#else
	tm_test_skip(NULL, "built without TM_DEBUG_INVARIANTS (release build): the invariant check is compiled out");
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_split_and_merge),
		cmocka_unit_test(test_fallback_claims_pageblock),
		cmocka_unit_test(test_checker_catches_corruption),
		cmocka_unit_test(test_debug_build_checks_each_event),
	};

	return cmocka_run_group_tests_name("storage_buddy", tests, NULL, NULL);
}
