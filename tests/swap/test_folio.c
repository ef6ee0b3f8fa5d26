/*
 * test_folio.c - swap-out and explicit swap-in of folios of every order
 * 0..9: slots are contiguous and naturally aligned (subpage slot = first
 * slot + index), untagged pages store nothing, swapped memory is released,
 * and both the page-by-page and the whole-folio paths bring back the exact
 * data, tags and tagged flag, restoring each page's tags once.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "swap_test.h"

/* Two folios of the largest order fit; smaller orders use the same size. */
#define NPAGES (2u << TM_SWAP_MAX_ORDER)

static void swap_out_checks(tm_pager *p, tm_swapfile *sf, tm_region *r,
			    const struct st_model *m, unsigned order)
{
	size_t n = (size_t)1 << order;
	tm_swap_stats st;
	tm_error err;
	size_t done;

	assert_int_equal(tm_swap_out_range(p, 0, NPAGES, order, &done, &err), 0);
	assert_int_equal(done, NPAGES);
	assert_int_equal(tm_pager_swapped_pages(p), NPAGES);
	for (size_t head = 0; head < NPAGES; head += n) {
		uint64_t first = tm_swap_page_slot(p, head);

		assert_int_equal(first % n, 0);
		for (size_t i = 0; i < n; i++) {
			assert_true(tm_swap_page_swapped(p, head + i));
			assert_int_equal(tm_swap_page_order(p, head + i), (int)order);
			assert_int_equal(tm_swap_page_slot(p, head + i), first + i);
		}
	}
	/* Memory released: the region no longer holds the pages. */
	for (size_t pg = 0; pg < NPAGES; pg++) {
		assert_false(tm_region_page_present(r, pg));
		assert_false(tm_region_page_tagged(r, pg));
	}
	/* Untagged pages store nothing. */
	tm_swapfile_stats(sf, &st);
	assert_int_equal(st.tags.entries, st_count_tagged(m, 0, NPAGES));
	assert_int_equal(st.pages_out_tagged, st_count_tagged(m, 0, NPAGES));
	assert_true(st.tags.entries < NPAGES);
	assert_int_equal(st.folios_out[order], NPAGES / n);
	assert_int_equal(st.slots_used, NPAGES);
	assert_int_equal(st.bytes_written, (uint64_t)NPAGES * ST_PS);
	/* A swapped folio cannot be swapped out again. */
	assert_int_equal(tm_swap_out(p, 0, order, &err), -EBUSY);
}

/* Page-by-page for the first folio (odd subpages first), whole-folio for
 * the others. */
static void swap_in_both_ways(tm_pager *p, unsigned order)
{
	size_t n = (size_t)1 << order;
	tm_error err;

	for (size_t i = 1; i < n; i += 2)
		assert_int_equal(tm_swap_in_page(p, i, &err), 0);
	for (size_t i = 0; i < n; i += 2)
		assert_int_equal(tm_swap_in_page(p, i, &err), 0);
	assert_int_equal(tm_swap_in(p, 0, NPAGES, &err), 0);
	assert_int_equal(tm_pager_swapped_pages(p), 0);
	/* Nothing left to restore: no-ops. */
	assert_int_equal(tm_swap_in(p, 0, NPAGES, &err), 0);
	assert_int_equal(tm_swap_in_page(p, 0, &err), 0);
}

static void run_order_flags(unsigned order, unsigned flags)
{
	tm_swapfile *sf = st_swapfile("folio", (NPAGES + 2 * 512) * (uint64_t)ST_PS, flags);
	tm_region *r = st_region("folio", NPAGES, true);
	tm_pager *p = st_pager(r, sf, false, TM_SWAPIN_FOLIO);
	struct st_model m;
	tm_swap_stats st;
	size_t n = (size_t)1 << order;

	st_model_init(&m, NPAGES);
	st_fill(r, &m, 1000 + order, 5);
	swap_out_checks(p, sf, r, &m, order);
	swap_in_both_ways(p, order);
	st_check_all(r, &m);
	tm_swapfile_stats(sf, &st);
	assert_int_equal(st.pages_in, NPAGES);
	assert_int_equal(st.page_swapins, n);
	assert_int_equal(st.folio_swapins, NPAGES / n - 1);
	/* Each tagged page's tags restored exactly once. */
	assert_int_equal(st.tag_restores, st_count_tagged(&m, 0, NPAGES));
	assert_int_equal(st.tags.entries, 0);
	assert_int_equal(st.tags.bytes_used, 0);
	assert_int_equal(st.slots_used, 0);
	st_close(p, r, sf, &m);
}

static void run_order(unsigned order)
{
	run_order_flags(order, 0);
}

/* O_DIRECT: slot I/O bypasses the page cache; buffers and offsets must be
 * aligned, which the folio buffers and slot offsets are. */
static void test_direct_io(void **state)
{
	(void)state;
	run_order_flags(0, TM_SWAPFILE_DIRECT);
	run_order_flags(9, TM_SWAPFILE_DIRECT | TM_SWAPFILE_SPARSE);
}

#define ORDER_TEST(k) \
	static void test_order_##k(void **state) { (void)state; run_order(k); }
ORDER_TEST(0) ORDER_TEST(1) ORDER_TEST(2) ORDER_TEST(3) ORDER_TEST(4)
ORDER_TEST(5) ORDER_TEST(6) ORDER_TEST(7) ORDER_TEST(8) ORDER_TEST(9)

static void test_untagged_region_stores_nothing(void **state)
{
	tm_swapfile *sf = st_swapfile("notags", (NPAGES + 1024) * (uint64_t)ST_PS, 0);
	tm_region *r = st_region("notags", NPAGES, false);
	tm_pager *p = st_pager(r, sf, false, TM_SWAPIN_FOLIO);
	struct st_model m;
	tm_swap_stats st;
	tm_error err;

	(void)state;
	st_model_init(&m, NPAGES);
	st_fill(r, &m, 7, 0);
	assert_int_equal(tm_swap_out_range(p, 0, NPAGES, 6, NULL, &err), 0);
	tm_swapfile_stats(sf, &st);
	assert_int_equal(st.tags.entries, 0);
	assert_int_equal(st.tags.allocs[TM_TS_INLINE], 0);
	assert_int_equal(tm_swap_in(p, 0, NPAGES, &err), 0);
	st_check_all(r, &m);
	st_close(p, r, sf, &m);
}

static void test_zero_pages_are_not_written(void **state)
{
	tm_swapfile *sf = st_swapfile("zero", 64 * (uint64_t)ST_PS, 0);
	tm_region *r = st_region("zero", 16, true);
	tm_pager *p = st_pager(r, sf, false, TM_SWAPIN_FOLIO);
	struct st_model m;
	tm_swap_stats st;
	tm_error err;

	(void)state;
	st_model_init(&m, 16);
	st_fill(r, &m, 3, 0);
	/* Page 2: zero data, tagged. Page 3: zero data, untagged. */
	memset(m.data + 2 * ST_PS, 0, 2 * ST_PS);
	memset(m.tags + 3 * ST_PK, 0, ST_PK);
	m.tagged[3] = false;
	assert_int_equal(tm_region_write_page(r, 2, m.data + 2 * ST_PS, m.tags + 2 * ST_PK, &err), 0);
	assert_int_equal(tm_region_write_page(r, 3, m.data + 3 * ST_PS, NULL, &err), 0);
	assert_int_equal(tm_swap_out(p, 0, 4, &err), 0);
	tm_swapfile_stats(sf, &st);
	assert_int_equal(st.pages_out_zero, 2);
	assert_int_equal(st.bytes_written, 14 * ST_PS);
	assert_int_equal(tm_swap_in(p, 0, 16, &err), 0);
	st_check_all(r, &m);
	st_close(p, r, sf, &m);
}

static void test_bad_arguments(void **state)
{
	tm_swapfile *sf = st_swapfile("args", 64 * (uint64_t)ST_PS, 0);
	tm_region *r = st_region("args", 32, true);
	tm_pager *p = st_pager(r, sf, false, TM_SWAPIN_FOLIO);
	tm_error err;

	(void)state;
	assert_int_equal(tm_swap_out(p, 2, 2, &err), -EINVAL);     /* misaligned */
	assert_non_null(strstr(err.msg, "page 2"));
	assert_int_equal(tm_swap_out(p, 0, 6, &err), -EINVAL);     /* beyond */
	assert_int_equal(tm_swap_out(p, 0, 10, &err), -EINVAL);    /* order */
	assert_int_equal(tm_swap_in(p, 30, 5, &err), -EINVAL);
	assert_int_equal(tm_swap_discard(p, 33, 1, &err), -EINVAL);
	/* Swap file full: 63 data slots cannot take a second order-5 folio. */
	assert_int_equal(tm_swap_out(p, 0, 5, &err), 0);
	assert_int_equal(tm_swap_out(p, 0, 0, &err), -EBUSY);
	tm_pager_destroy(p);
	tm_region_destroy(r);
	r = st_region("args2", 64, true);
	p = st_pager(r, sf, false, TM_SWAPIN_FOLIO);
	assert_int_equal(tm_swap_out(p, 0, 5, &err), 0);
	assert_int_equal(tm_swap_out(p, 32, 5, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "no free aligned run"));
	assert_false(tm_swap_page_swapped(p, 32));
	st_close(p, r, sf, NULL);
}

/* A page restored from a partly restored folio may go out again in a
 * smaller folio at the same head while the old folio's other subpages are
 * still out: both folios must find their own slots. */
static void test_reswap_inside_partial_folio(void **state)
{
	tm_swapfile *sf = st_swapfile("reswap", 4 * 512 * (uint64_t)ST_PS, 0);
	tm_region *r = st_region("reswap", 64, true);
	tm_pager *p = st_pager(r, sf, false, TM_SWAPIN_FOLIO);
	struct st_model m;
	tm_swap_stats st;
	tm_error err;

	(void)state;
	st_model_init(&m, 64);
	st_fill(r, &m, 5, 3);
	assert_int_equal(tm_swap_out(p, 0, 4, &err), 0);        /* pages 0..15 */
	uint64_t old_first = tm_swap_page_slot(p, 0);

	assert_int_equal(tm_swap_in_page(p, 0, &err), 0);
	assert_int_equal(tm_swap_in_page(p, 1, &err), 0);
	assert_int_equal(tm_swap_in_page(p, 3, &err), 0);
	assert_int_equal(tm_swap_out(p, 0, 1, &err), 0);        /* pages 0..1 again */
	assert_int_equal(tm_swap_out(p, 0, 4, &err), -EBUSY);
	assert_int_equal(tm_swap_page_order(p, 0), 1);
	assert_int_equal(tm_swap_page_order(p, 2), 4);
	assert_int_equal(tm_swap_page_slot(p, 2), old_first + 2);
	assert_true(tm_swap_page_slot(p, 0) != old_first);
	/* Whole-folio restore of the old folio leaves the new one alone... */
	assert_int_equal(tm_swap_in(p, 4, 12, &err), 0);   /* covers no whole folio */
	assert_true(tm_swap_page_swapped(p, 2));
	assert_int_equal(tm_swap_in(p, 0, 16, &err), 0);
	for (size_t pg = 0; pg < 16; pg++)
		assert_false(tm_swap_page_swapped(p, pg));
	st_check_all(r, &m);
	tm_swapfile_stats(sf, &st);
	assert_int_equal(st.slots_used, 0);
	assert_int_equal(st.tags.entries, 0);
	/* ... and the other way round: old folio's subpages by fault order. */
	assert_int_equal(tm_swap_out(p, 16, 3, &err), 0);
	assert_int_equal(tm_swap_in_page(p, 16, &err), 0);
	assert_int_equal(tm_swap_out(p, 16, 0, &err), 0);
	assert_int_equal(tm_swap_in(p, 17, 1, &err), 0);   /* page path */
	assert_int_equal(tm_swap_in(p, 16, 8, &err), 0);   /* both folios */
	st_check_all(r, &m);
	st_close(p, r, sf, &m);
}

/* Several threads swapping their own folios out and back in at once: the
 * tag worker is busy for all but one of them at a time, so both its path
 * and the inline path run; the shared slot allocator and tag store must
 * come out consistent. */
struct churn {
	tm_pager *p;
	size_t first, n;
	int rc;
	pthread_t th;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	tm_error err;

	for (int round = 0; round < 4 && !c->rc; round++) {
		unsigned order = round % 2 ? 5 : 6;

		c->rc = tm_swap_out_range(c->p, c->first, c->n, order, NULL, &err);
		if (!c->rc)
			c->rc = tm_swap_in(c->p, c->first, c->n, &err);
	}
	return NULL;
}

static void test_parallel_swap_out_in(void **state)
{
	tm_swapfile *sf = st_swapfile("churn", (NPAGES + 1024) * (uint64_t)ST_PS, 0);
	tm_region *r = st_region("churn", NPAGES, true);
	tm_pager *p = st_pager(r, sf, false, TM_SWAPIN_FOLIO);
	struct churn c[4];
	struct st_model m;
	tm_swap_stats st;

	(void)state;
	st_model_init(&m, NPAGES);
	st_fill(r, &m, 77, 4);
	for (int i = 0; i < 4; i++) {
		c[i] = (struct churn){ p, (size_t)i * NPAGES / 4, NPAGES / 4, 0, 0 };
		assert_int_equal(pthread_create(&c[i].th, NULL, churn_thread, &c[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(c[i].th, NULL);
		assert_int_equal(c[i].rc, 0);
	}
	st_check_all(r, &m);
	tm_swapfile_stats(sf, &st);
	assert_int_equal(st.pages_out, 4 * (uint64_t)NPAGES);
	assert_int_equal(st.tag_restores, 4 * st_count_tagged(&m, 0, NPAGES));
	assert_int_equal(st.tags.entries, 0);
	assert_int_equal(st.slots_used, 0);
	st_close(p, r, sf, &m);
}

/* 16 and 64 KiB pages: slots are page-sized, tag values scale (512 and
 * 2048 raw bytes, 5 and 4 EA0 runs inline). */
static void run_page_size(uint32_t ps)
{
	const size_t npages = 64;
	char path[128];
	tm_swapfile_config sc = { 0 };
	tm_region_config rc = { 0 };
	tm_swapfile *sf;
	tm_region *r;
	tm_pager *p;
	tm_swap_stats st;
	tm_error err;
	size_t pk = ps / 32;
	uint8_t *data = malloc(npages * ps), *tags = malloc(npages * pk);
	uint8_t *back = malloc(ps), *bt = malloc(pk);
	tm_rng rng;

	st_swapfile_path(path, sizeof(path), "bigpages");
	sc.path = path;
	sc.size = (npages + 2 * 512) * (uint64_t)ps;
	sc.page_size = ps;
	sc.flags = TM_SWAPFILE_SPARSE;
	assert_int_equal(tm_swapfile_open(&sc, &sf, &err), 0);
	rc.name = "bigpages";
	rc.size = npages * ps;
	assert_int_equal(tm_geom_mte(&rc.geom, ps, &err), 0);
	assert_int_equal(tm_region_create(&rc, &r, &err), 0);
	p = st_pager(r, sf, false, TM_SWAPIN_FOLIO);
	tm_rng_seed(&rng, ps);
	tm_corpus_fill(TM_CORPUS_MIX, &rc.geom, ps, tags, npages);
	for (size_t i = 0; i < npages * ps / 8; i++)
		((uint64_t *)data)[i] = tm_rng_next(&rng) | 1;
	for (size_t pg = 0; pg < npages; pg++)
		assert_int_equal(tm_region_write_page(r, pg, data + pg * ps,
						      pg % 9 == 4 ? NULL : tags + pg * pk, &err), 0);
	assert_int_equal(tm_swap_out_range(p, 0, 32, 5, NULL, &err), 0);
	assert_int_equal(tm_swap_out_range(p, 32, 32, 2, NULL, &err), 0);
	tm_swapfile_stats(sf, &st);
	assert_int_equal(st.bytes_written, (uint64_t)npages * ps);
	assert_true(st.tags.live[TM_TS_INLINE] > 0);
	assert_int_equal(st.tags.bytes_uncompressed, st.tags.entries * pk);
	assert_int_equal(tm_swap_in_page(p, 33, &err), 0);
	assert_int_equal(tm_swap_in(p, 0, npages, &err), 0);
	for (size_t pg = 0; pg < npages; pg++) {
		assert_int_equal(tm_region_read_page(r, pg, back, bt, &err), 0);
		assert_memory_equal(back, data + pg * ps, ps);
		assert_int_equal(tm_region_page_tagged(r, pg), pg % 9 != 4);
		if (pg % 9 != 4)
			assert_memory_equal(bt, tags + pg * pk, pk);
	}
	tm_pager_destroy(p);
	tm_region_destroy(r);
	tm_swapfile_close(sf);
	free(data);
	free(tags);
	free(back);
	free(bt);
}

static void test_16k_and_64k_pages(void **state)
{
	(void)state;
	run_page_size(16384);
	run_page_size(65536);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_0), cmocka_unit_test(test_order_1),
		cmocka_unit_test(test_order_2), cmocka_unit_test(test_order_3),
		cmocka_unit_test(test_order_4), cmocka_unit_test(test_order_5),
		cmocka_unit_test(test_order_6), cmocka_unit_test(test_order_7),
		cmocka_unit_test(test_order_8), cmocka_unit_test(test_order_9),
		cmocka_unit_test(test_direct_io),
		cmocka_unit_test(test_reswap_inside_partial_folio),
		cmocka_unit_test(test_parallel_swap_out_in),
		cmocka_unit_test(test_16k_and_64k_pages),
		cmocka_unit_test(test_untagged_region_stores_nothing),
		cmocka_unit_test(test_zero_pages_are_not_written),
		cmocka_unit_test(test_bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
