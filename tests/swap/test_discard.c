/*
 * test_discard.c - partial folios: subpages discarded while their folio is
 * swapped out are never restored (they read zero, untagged), their slots and
 * tags are released at once, and the rest of the folio comes back intact by
 * both the whole-folio and the page-by-page path. Discarding resident pages
 * drops them too (MADV_DONTNEED semantics).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "swap_test.h"

#define NPAGES 64u

static void discard_and_count(tm_pager *p, tm_swapfile *sf, struct st_model *m,
			      size_t pg, size_t n)
{
	tm_swap_stats before, after;
	size_t tagged = st_count_tagged(m, pg, n);
	uint64_t slots[NPAGES];
	tm_error err;

	for (size_t i = 0; i < n; i++)
		slots[i] = tm_swap_page_slot(p, pg + i);
	tm_swapfile_stats(sf, &before);
	assert_int_equal(tm_swap_discard(p, pg, n, &err), 0);
	tm_swapfile_stats(sf, &after);
	assert_int_equal(before.tags.entries - after.tags.entries, tagged);
	assert_int_equal(before.slots_used - after.slots_used, n);
	assert_int_equal(after.pages_discarded - before.pages_discarded, n);
	for (size_t i = 0; i < n; i++) {
		assert_false(tm_swap_page_swapped(p, pg + i));
		assert_true(slots[i] != 0);
		m->gone[pg + i] = true;
	}
}

static void run(bool whole_folio)
{
	tm_swapfile *sf = st_swapfile("discard", 4 * 512 * (uint64_t)ST_PS, 0);
	tm_region *r = st_region("discard", NPAGES, true);
	tm_pager *p = st_pager(r, sf, false, TM_SWAPIN_FOLIO);
	struct st_model m;
	tm_swap_stats st;
	tm_error err;

	st_model_init(&m, NPAGES);
	st_fill(r, &m, whole_folio ? 11 : 12, 7);
	assert_int_equal(tm_swap_out_range(p, 0, NPAGES, 4, NULL, &err), 0);
	/* Folio 0: a run in the middle; folio 1: its first and last subpage;
	 * folio 2: all of it; folio 3: nothing. */
	discard_and_count(p, sf, &m, 3, 3);
	discard_and_count(p, sf, &m, 16, 1);
	discard_and_count(p, sf, &m, 31, 1);
	discard_and_count(p, sf, &m, 32, 16);
	/* Discarding an already discarded subpage changes nothing. */
	assert_int_equal(tm_swap_discard(p, 4, 1, &err), 0);
	if (whole_folio) {
		assert_int_equal(tm_swap_in(p, 0, NPAGES, &err), 0);
	} else {
		for (size_t pg = NPAGES; pg-- > 0;)
			assert_int_equal(tm_swap_in_page(p, pg, &err), 0);
	}
	st_check_all(r, &m);
	tm_swapfile_stats(sf, &st);
	assert_int_equal(st.pages_in, NPAGES - 21);
	assert_int_equal(st.tag_restores, st_count_tagged(&m, 0, NPAGES));
	assert_int_equal(st.tags.entries, 0);
	assert_int_equal(st.slots_used, 0);
	if (whole_folio)  /* folio 2 had nothing left to restore */
		assert_int_equal(st.folio_swapins, 3);
	st_close(p, r, sf, &m);
}

static void test_partial_folio_whole_swapin(void **state)
{
	(void)state;
	run(true);
}

static void test_partial_folio_page_swapin(void **state)
{
	(void)state;
	run(false);
}

static void test_discard_resident_and_mixed(void **state)
{
	tm_swapfile *sf = st_swapfile("discard2", 4 * 512 * (uint64_t)ST_PS, 0);
	tm_region *r = st_region("discard2", NPAGES, true);
	tm_pager *p = st_pager(r, sf, false, TM_SWAPIN_PAGE);
	struct st_model m;
	tm_error err;

	(void)state;
	st_model_init(&m, NPAGES);
	st_fill(r, &m, 13, 3);
	assert_int_equal(tm_swap_out(p, 8, 3, &err), 0);
	/* One range over resident pages, a swapped folio and resident pages. */
	assert_int_equal(tm_swap_discard(p, 6, 12, &err), 0);
	for (size_t pg = 6; pg < 18; pg++)
		m.gone[pg] = true;
	for (size_t pg = 6; pg < 18; pg++) {
		assert_false(tm_swap_page_swapped(p, pg));
		assert_false(tm_region_page_tagged(r, pg));
	}
	st_check_all(r, &m);
	st_close(p, r, sf, &m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partial_folio_whole_swapin),
		cmocka_unit_test(test_partial_folio_page_swapin),
		cmocka_unit_test(test_discard_resident_and_mixed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
