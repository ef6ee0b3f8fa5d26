/*
 * test_swap_mte.c - swap keeps tags that the workload set itself (STG on
 * the region's memory, not through the region API), so the region never
 * marked those pages tagged. Swap-out must read and store their tags anyway
 * (the mte backend does not own its tags: tm_region_page_may_be_tagged);
 * swap-in must give back exactly the hardware tags, and a wrong tag must
 * still fault afterwards. Before this, swap-out asked tm_region_page_tagged
 * and dropped such tags: the pages came back with tags zero. Runs with
 * small folios (order 0, inline tag work) and a 2 MiB folio (order 9, the
 * tag worker's path). The kvm backend has the same property for every tag
 * a guest writes.
 */
#include <stdlib.h>
#include <unistd.h>

#include "mte_test.h"
#include "tagmem/region.h"
#include "tagmem/swap.h"

#define PS 4096u
#define NPAGES 1024u     /* two 2 MiB folios */
#define TB (PS / 32)

static char dir[256];

static tm_region *mte_region(void)
{
	tm_region_config cfg;
	tm_region *r = NULL;
	tm_error err;

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(tm_geom_mte(&cfg.geom, PS, &err), 0);
	cfg.name = "ram";
	cfg.size = (size_t)NPAGES * PS;
	cfg.backend = TM_BACKEND_MTE;
	if (tm_region_create(&cfg, &r, &err))
		fail_msg("tm_region_create: %s", tm_error_msg(&err));
	return r;
}

/* Tags of page pg by a raw STG; some pages keep zero data (tag-only). */
static void foreign_tag(tm_region *r, size_t pg, uint8_t *want)
{
	uint8_t *a = tm_mte_untag(tm_region_ptr(r, pg * PS));
	tm_error err;

	for (unsigned i = 0; i < TB; i++)
		want[i] = (uint8_t)((pg * 131 + i * 37 + 1) | 1);   /* never zero */
	if (pg % 3)
		assert_int_equal(tm_region_write(r, pg * PS, &pg, sizeof(pg), &err), 0);
	assert_int_equal(tm_mte_set_tags(a, PS, want), 0);
	assert_false(tm_region_page_tagged(r, pg));
}

static void check_tags(tm_region *r, size_t pg, const uint8_t *want)
{
	uint8_t got[TB];

	assert_int_equal(tm_mte_get_tags(tm_mte_untag(tm_region_ptr(r, pg * PS)),
					 PS, got), 0);
	if (memcmp(got, want, TB))
		fail_msg("page %zu: tags set by STG lost over swap", pg);
}

static void run(unsigned order)
{
	size_t n = (size_t)1 << order, pages[] = { 1, 5, 130, 511, 512, 700, 1023 };
	static uint8_t want[NPAGES][TB];
	tm_swapfile_config sc = { .path = dir, .size = (2 * NPAGES + 8) * PS,
				  .page_size = PS };
	tm_pager_config pc = { 0 };
	tm_region *r;
	tm_swapfile *sf;
	tm_pager *p;
	tm_error err;

	r = mte_region();
	for (size_t k = 0; k < sizeof(pages) / sizeof(pages[0]); k++)
		foreign_tag(r, pages[k], want[pages[k]]);
	if (tm_swapfile_open(&sc, &sf, &err))
		fail_msg("swap file: %s", tm_error_msg(&err));
	pc.region = r;
	pc.swap = sf;
	if (tm_pager_create(&pc, &p, &err))
		fail_msg("pager: %s", tm_error_msg(&err));
	for (size_t pg = 0; pg < NPAGES; pg += n)
		if (tm_swap_out(p, pg, order, &err))
			fail_msg("swap out %zu order %u: %s", pg, order, tm_error_msg(&err));
	assert_int_equal(tm_pager_swapped_pages(p), NPAGES);
	if (tm_swap_in(p, 0, NPAGES, &err))
		fail_msg("swap in: %s", tm_error_msg(&err));
	for (size_t k = 0; k < sizeof(pages) / sizeof(pages[0]); k++) {
		size_t pg = pages[k];
		uint64_t v = 0;

		check_tags(r, pg, want[pg]);
		assert_int_equal(tm_region_read(r, pg * PS, &v, sizeof(v), &err), 0);
		assert_int_equal(v, pg % 3 ? pg : 0);
	}
	/* the check is really on: the right tag loads, a wrong one faults */
	{
		uint8_t *a = tm_mte_untag(tm_region_ptr(r, 130 * PS));
		uintptr_t t = want[130][0] & 0xF;

		mt_assert_no_fault((void *)(mt_bits(a) | t << 56), MT_LOAD64);
		mt_assert_tag_fault((void *)(mt_bits(a) | ((t + 1) & 0xF) << 56),
				    MT_LOAD64, 8);
	}
	tm_pager_destroy(p);
	tm_swapfile_close(sf);
	tm_region_destroy(r);
}

static void test_foreign_tags_order0(void **state)
{
	(void)state;
	mt_require();
	run(0);
}

static void test_foreign_tags_order9(void **state)
{
	(void)state;
	mt_require();
	run(9);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_foreign_tags_order0),
		cmocka_unit_test(test_foreign_tags_order9),
	};

	snprintf(dir, sizeof(dir), "%s", tmp && *tmp ? tmp : "/tmp");
	return cmocka_run_group_tests(tests, mt_group_setup, NULL);
}
