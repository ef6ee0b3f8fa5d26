/*
 * test_region_check.c - the region's bookkeeping checks (src/region/check.c):
 * they pass through ordinary use of every kind of region (soft with MTE or
 * a 2-bit geometry, no metadata, dirty tracking and lazy placement on, mte
 * where it exists), and they catch state corrupted on purpose through the
 * internal headers, naming the region and the page. In debug builds
 * (TM_REGION_CHECKS) a mutating call on a corrupted page fails with -EFAULT,
 * and racing writers on one page do not trip the check.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "region/backend_soft.h"
#include "region/region_internal.h"
#include "region/uffd.h"
#include "region_test.h"

#define PS 4096u
#define NP 150u   /* three shadow chunks, the last one partial (22 pages) */

static tm_region *make(const char *name, uint32_t kind, uint32_t bits,
		       enum tm_backend be, size_t npages)
{
	tm_region_config cfg = { .name = name, .size = npages * PS,
				 .backend = be };
	tm_region *r = NULL;
	tm_error err;

	cfg.geom = rt_geom_mte(PS);
	if (kind != TM_META_MTE) {
		cfg.geom.kind = kind;
		cfg.geom.bits = bits;
	}
	tm_error_clear(&err);
	if (tm_region_create(&cfg, &r, &err) != 0) {
		assert_int_equal(err.code, -ENOTSUP);
		tm_test_skip(tm_backend_name(be), "%s: %s", name, err.msg);
		return NULL;
	}
	return r;
}

static void ok(tm_region *r)
{
	tm_error err;

	tm_error_clear(&err);
	if (tm_region_check_invariants(r, &err) != 0)
		fail_msg("unexpected: %s", err.msg);
}

/* The check fails with -EFAULT and its message names region and place. */
static void broken(tm_region *r, const char *what, const char *where)
{
	tm_error err;

	tm_error_clear(&err);
	assert_int_equal(tm_region_check_invariants(r, &err), -EFAULT);
	print_message("caught: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "invariant broken"));
	assert_non_null(strstr(err.msg, tm_region_name(r)));
	assert_non_null(strstr(err.msg, what));
	if (where)
		assert_non_null(strstr(err.msg, where));
}

/* Every mutating call, with the whole region checked after each. */
static void exercise(tm_region *r)
{
	size_t tb = r->packed_bytes;
	uint8_t *page = calloc(1, PS), tags[PS / 16];
	tm_rng rng;

	assert_non_null(page);
	tm_rng_seed(&rng, 5);
	rt_fill(&rng, page, PS);
	rt_fill(&rng, tags, sizeof(tags));
	ok(r);
	if (tb) {
		assert_int_equal(tm_region_set_tags(r, 0, TM_TAGS_PACKED, tags, NULL), 0);
		ok(r);
		/* pages 63..65: across the first chunk boundary */
		assert_int_equal(tm_region_set_tag_range(r, 63 * PS + 32, 2 * PS, 3, NULL), 0);
		ok(r);
	}
	assert_int_equal(tm_region_write_page(r, 100, page, tb ? tags : NULL, NULL), 0);
	ok(r);
	assert_int_equal(tm_region_write_page(r, 100, page, NULL, NULL), 0);
	ok(r);
	assert_int_equal(tm_region_zero_page(r, 0, NULL), 0);
	ok(r);
	assert_int_equal(tm_region_write(r, 64 * PS - 8, page, 16, NULL), 0);
	ok(r);
	assert_int_equal(tm_region_discard(r, 64, 64, NULL), 0);   /* whole chunk */
	ok(r);
	assert_int_equal(tm_region_discard(r, 63, 1, NULL), 0);    /* part of one */
	ok(r);
	assert_int_equal(tm_region_write_page(r, 140, page, tb ? tags : NULL, NULL), 0);
	assert_int_equal(tm_region_discard(r, 128, NP - 128, NULL), 0); /* last, partial */
	ok(r);
	free(page);
}

static void test_soft_mte_use_passes(void **state)
{
	tm_region *r = make("chk-soft", TM_META_MTE, 4, TM_BACKEND_SOFT, NP);

	(void)state;
	exercise(r);
	assert_false(tm_region_page_tagged(r, 0));
	/* zero_page and a partial discard keep chunk 0; 1 and 2 were freed */
	assert_int_equal(tm_shadow_bytes(tm_soft_shadow(r)), 64 * r->packed_bytes);
	tm_region_destroy(r); /* debug builds check the whole region here too */
}

static void test_other_geometries_pass(void **state)
{
	tm_region *g2 = make("chk-2bit", TM_META_GENERIC, 2, TM_BACKEND_SOFT, NP);
	tm_region *none = make("chk-none", TM_META_NONE, 0, TM_BACKEND_SOFT, NP);

	(void)state;
	exercise(g2);
	exercise(none);
	tm_region_destroy(g2);
	tm_region_destroy(none);
}

static void test_mte_backend_use_passes(void **state)
{
	tm_region *r = make("chk-mte", TM_META_MTE, 4, TM_BACKEND_MTE, NP);

	(void)state;
	if (!r)
		return;
	exercise(r);
	tm_region_destroy(r);
}

/* Caller backends pass too; the file backend's tags are exclusive, so an
 * untagged page whose tags are set behind the core's back is caught (the
 * same rule the soft shadow is held to, checked through read_tags). */
static void test_caller_backends_checked(void **state)
{
	tm_region *r;
	tb_ctx *c;
	tm_error err;

	(void)state;
	for (int k = 0; k < 2; k++) {
		assert_int_equal(tb_region(k ? TB_MEM : TB_FILE, "chk-caller",
					   NP * PS, PS, &r, &c, &err), 0);
		exercise(r);
		ok(r);
		if (k == 0) {
			c->tags[12 * 256 + 40] = 0x6;   /* page 12 is untagged */
			broken(r, "untagged", "page 12 ");
			c->tags[12 * 256 + 40] = 0;
			ok(r);
		} else {
			c->tags[12 * 128 + 40] = 0x6;   /* not exclusive: legal */
			ok(r);
		}
		tb_region_destroy(r, c);
	}
}

static void test_untagged_slot_with_tags_is_caught(void **state)
{
	tm_region *r = make("chk-slot", TM_META_MTE, 4, TM_BACKEND_SOFT, NP);
	uint8_t tags[PS / 32];
	uint8_t *slot;

	(void)state;
	memset(tags, 0x5a, sizeof(tags));
	assert_int_equal(tm_region_set_tags(r, 5, TM_TAGS_PACKED, tags, NULL), 0);
	assert_int_equal(tm_region_zero_page(r, 5, NULL), 0);
	ok(r);
	slot = tm_shadow_slot(tm_soft_shadow(r), 5);
	assert_non_null(slot);
	slot[7] = 0x30;    /* tags left behind on an untagged page */
	broken(r, "untagged", "page 5 ");
	slot[7] = 0;
	ok(r);
	tm_region_destroy(r);
}

static void test_tagged_page_without_chunk_is_caught(void **state)
{
	tm_region *r = make("chk-chunk", TM_META_MTE, 4, TM_BACKEND_SOFT, NP);

	(void)state;
	tm_abit_set(r->tagged, 70);    /* chunk 1 was never allocated */
	broken(r, "not allocated", "page 70 ");
	tm_abit_clear(r->tagged, 70);
	ok(r);
	tm_region_destroy(r);
}

static void test_region_state_corruption_is_caught(void **state)
{
	tm_region *r = make("chk-state", TM_META_MTE, 4, TM_BACKEND_SOFT, NP);
	tm_region *none = make("chk-nometa", TM_META_NONE, 0, TM_BACKEND_SOFT, 8);

	(void)state;
	tm_abit_set(r->present, NP);   /* past the last page, same word */
	broken(r, "present bitmap", NULL);
	tm_abit_clear(r->present, NP);
	tm_abit_set(r->api_dirty, NP + 3);
	broken(r, "API-dirty bitmap", NULL);
	tm_abit_clear(r->api_dirty, NP + 3);
	atomic_fetch_add(&tm_soft_shadow(r)->live_chunks, 1);
	broken(r, "counted", NULL);
	atomic_fetch_sub(&tm_soft_shadow(r)->live_chunks, 1);
	atomic_store(&r->dirty_on, true);  /* without tracking started */
	broken(r, "dirty_on", NULL);
	atomic_store(&r->dirty_on, false);
	ok(r);

	tm_abit_set(none->tagged, 3);
	broken(none, "no metadata", "page 3 ");
	tm_abit_clear(none->tagged, 3);
	ok(none);
	tm_region_destroy(r);
	tm_region_destroy(none);
}

/* ---- with dirty tracking and lazy placement running -------------- */

static int fill_page(void *ctx, tm_region *r, size_t pg, void *data,
		     uint8_t *tags, bool *tagged, tm_error *err)
{
	(void)ctx;
	(void)err;
	memset(data, (int)(pg & 0xff), r->page_size);
	memset(tags, 0x21, r->packed_bytes);
	*tagged = pg % 2 == 0;
	return 0;
}

static void test_tracking_and_lazy_state_checked(void **state)
{
	tm_region *r = make("chk-lazy", TM_META_MTE, 4, TM_BACKEND_SOFT, NP);
	uint64_t bm[(NP + 63) / 64] = { 0 };
	uint8_t buf[64];
	tm_error err;

	(void)state;
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_AUTO, NULL), 0);
	ok(r);
	tm_error_clear(&err);
	if (tm_region_lazy_start(r, fill_page, NULL, &err) != 0) {
		/* the rest of the test still runs: a partial skip, reported */
		if (tm_test_skip_note("uffd", "lazy half not run: lazy placement unavailable: %s",
				      err.msg))
			fail_msg("uffd is required here (TAGMEM_REQUIRE)");
	} else {
		/* A fresh mapping is all missing: reading fills through fn. */
		assert_int_equal(tm_region_read(r, 10 * PS, buf, sizeof(buf), NULL), 0);
		assert_true(tm_region_page_tagged(r, 10));
		assert_int_equal(tm_region_zero_page(r, 11, NULL), 0);
		ok(r);
		r->uffd->modes &= ~(uint64_t)UFFDIO_REGISTER_MODE_MISSING;
		broken(r, "userfaultfd modes", NULL);
		r->uffd->modes |= UFFDIO_REGISTER_MODE_MISSING;
		tm_region_lazy_stop(r);
		ok(r);
	}
	assert_int_equal(tm_region_dirty_collect(r, bm, NULL), 0);
	tm_region_dirty_stop(r);
	ok(r);
	tm_region_destroy(r);
}

/* ---- the automatic check in debug builds --------------------------- */

static void test_mutating_call_checks_its_page(void **state)
{
	(void)state;
#ifdef TM_REGION_CHECKS
	tm_region *r = make("chk-auto", TM_META_MTE, 4, TM_BACKEND_SOFT, NP);
	uint8_t buf[16] = { 1 };
	tm_error err;

	tm_abit_set(r->tagged, 70);
	/* a page elsewhere: only the touched pages are checked per call */
	assert_int_equal(tm_region_write(r, 3 * PS, buf, sizeof(buf), NULL), 0);
	tm_error_clear(&err);
	assert_int_equal(tm_region_write(r, 70 * PS, buf, sizeof(buf), &err), -EFAULT);
	assert_non_null(strstr(err.msg, "'chk-auto'"));
	assert_non_null(strstr(err.msg, "page 70 "));
	tm_error_clear(&err);
	assert_int_equal(tm_region_discard(r, 70, 1, &err), 0); /* repairs it */
	assert_int_equal(tm_region_write(r, 70 * PS, buf, sizeof(buf), NULL), 0);
	tm_region_destroy(r);
#else
	tm_test_skip(NULL, "built without TM_REGION_CHECKS (not a debug build)");
#endif
}

/* Racing tag writers and zeroers on the same pages: legal, so the per-call
 * check (which sees their in-between states) must never report it. */
struct racer {
	tm_region *r;
	unsigned id;
	int rc;
	char msg[TM_ERROR_MSG_MAX];
};

static void *race(void *arg)
{
	struct racer *x = arg;
	uint8_t tags[PS / 32];
	tm_error err;

	memset(tags, 0x11 * (int)(x->id + 1), sizeof(tags));
	tm_error_clear(&err);
	for (unsigned i = 0; i < 4000 && !x->rc; i++) {
		size_t pg = i % 2;

		if ((i + x->id) % 3 == 0)
			x->rc = tm_region_zero_page(x->r, pg, &err);
		else if ((i + x->id) % 3 == 1)
			x->rc = tm_region_set_tags(x->r, pg, TM_TAGS_PACKED, tags, &err);
		else
			x->rc = tm_region_set_tag_range(x->r, pg * PS + 64, 64, x->id + 1, &err);
	}
	snprintf(x->msg, sizeof(x->msg), "%s", err.msg);
	return NULL;
}

static void test_racing_writers_do_not_trip_the_check(void **state)
{
	tm_region *r = make("chk-race", TM_META_MTE, 4, TM_BACKEND_SOFT, 2);
	struct racer x[2] = { { .r = r, .id = 0 }, { .r = r, .id = 1 } };
	pthread_t t[2];

	(void)state;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race, &x[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++)
		if (x[i].rc)
			fail_msg("racer %d: %s", i, x[i].msg);
	ok(r);
	tm_region_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_soft_mte_use_passes),
		cmocka_unit_test(test_other_geometries_pass),
		cmocka_unit_test(test_mte_backend_use_passes),
		cmocka_unit_test(test_caller_backends_checked),
		cmocka_unit_test(test_untagged_slot_with_tags_is_caught),
		cmocka_unit_test(test_tagged_page_without_chunk_is_caught),
		cmocka_unit_test(test_region_state_corruption_is_caught),
		cmocka_unit_test(test_tracking_and_lazy_state_checked),
		cmocka_unit_test(test_mutating_call_checks_its_page),
		cmocka_unit_test(test_racing_writers_do_not_trip_the_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
