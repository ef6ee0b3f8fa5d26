/*
 * test_mte_check.c - real tag checking on tags set through the primitives:
 * the CPU (qemu-aarch64 -cpu max in CI) must let an access through a pointer
 * with the matching logical tag through and stop one with another tag with
 * SIGSEGV / SEGV_MTESERR at that address, for loads and stores, at granule
 * boundaries (the neighbour granule's tag applies) and for every tag value.
 * Also: every primitive puts PSTATE.TCO back as it found it, so the
 * workload's own wrong accesses keep faulting after tagmem ran.
 */
#include "mte_test.h"

#include <unistd.h>

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static char *map_page(void)
{
	void *p = NULL;

	mt_require();
	assert_int_equal(tm_mte_map(page_size(), &p), 0);
	return p;
}

/* Value at p read without any tag check involvement. */
static uint8_t peek(const char *p)
{
	uint8_t v = 0;

	assert_int_equal(tm_mte_copy_out(&v, p, 1), 0);
	return v;
}

static void t_right_tag_passes_wrong_tag_faults(void **state)
{
	char *m = map_page();
	char *ok, *bad;
	uint64_t v;

	(void)state;
	mt_require();
	assert_int_equal(tm_mte_set_tag_range(m + 64, 64, 0x6), 0);
	ok = tm_mte_with_tag(m + 64 + 20, 0x6);
	bad = tm_mte_with_tag(m + 64 + 20, 0x7);

	v = 0xab;
	assert_int_equal(mt_probe(ok, MT_STORE8, &v), 0);
	v = 0;
	assert_int_equal(mt_probe(ok, MT_LOAD8, &v), 0);
	assert_int_equal(v, 0xab);

	mt_assert_tag_fault(bad, MT_LOAD8, 1);
	assert_ptr_equal((void *)mt_bits(mt_fault_addr), m + 84);
	mt_assert_tag_fault(bad, MT_STORE8, 1);
	assert_ptr_equal((void *)mt_bits(mt_fault_addr), m + 84);
	/* Synchronous mode: the faulting store did not happen. */
	assert_int_equal(peek(m + 84), 0xab);

	/* 8-byte accesses fault the same way. */
	mt_assert_tag_fault(tm_mte_with_tag(m + 96, 0x1), MT_LOAD64, 8);
	mt_assert_tag_fault(tm_mte_with_tag(m + 96, 0x1), MT_STORE64, 8);
	mt_assert_no_fault(tm_mte_with_tag(m + 96, 0x6), MT_STORE64);
	/* ptr_for yields a pointer that passes the check. */
	mt_assert_no_fault(tm_mte_ptr_for(m + 100), MT_LOAD8);
	assert_int_equal(tm_mte_unmap(m, page_size()), 0);
}

/* Tag 0 is checked like any other: a tag-0 pointer to memory tagged 5
 * faults, and memory tagged 0 rejects a pointer tagged 5. This is why the
 * library uses TCO rather than stripping the pointer's tag. */
static void t_tag_zero_is_checked(void **state)
{
	char *m = map_page();

	(void)state;
	mt_require();
	assert_int_equal(tm_mte_set_tag_range(m, 16, 0x5), 0);
	mt_assert_tag_fault(m, MT_LOAD8, 1);
	mt_assert_no_fault(m + 16, MT_LOAD8);                 /* still tag 0 */
	mt_assert_tag_fault(tm_mte_with_tag(m + 16, 0x5), MT_LOAD8, 1);
	assert_int_equal(tm_mte_unmap(m, page_size()), 0);
}

/* Granules g=4 (tag 3) and g=5 (tag 9): the boundary between byte 79 and
 * byte 80 is where the tag that applies changes. */
static void t_granule_boundaries(void **state)
{
	char *m = map_page();
	char *last = m + 4 * 16 + 15, *first = m + 5 * 16;
	uint8_t packed[1] = { 0x93 };

	(void)state;
	mt_require();
	assert_int_equal(tm_mte_set_tags(m + 4 * 16, 32, packed), 0);

	mt_assert_no_fault(tm_mte_with_tag(last, 3), MT_LOAD8);
	mt_assert_no_fault(tm_mte_with_tag(last, 3), MT_STORE8);
	mt_assert_tag_fault(tm_mte_with_tag(first, 3), MT_LOAD8, 1);
	mt_assert_tag_fault(tm_mte_with_tag(first, 3), MT_STORE8, 1);
	assert_ptr_equal((void *)mt_bits(mt_fault_addr), first);

	mt_assert_no_fault(tm_mte_with_tag(first, 9), MT_LOAD8);
	mt_assert_no_fault(tm_mte_with_tag(first, 9), MT_STORE8);
	mt_assert_tag_fault(tm_mte_with_tag(last, 9), MT_LOAD8, 1);
	mt_assert_tag_fault(tm_mte_with_tag(last, 9), MT_STORE8, 1);
	assert_ptr_equal((void *)mt_bits(mt_fault_addr), last);

	/* Granule 6 was not in the range: still tag 0. */
	mt_assert_no_fault(m + 6 * 16, MT_LOAD8);
	mt_assert_tag_fault(tm_mte_with_tag(m + 6 * 16, 9), MT_LOAD8, 1);

	/* An 8-byte access straddling the boundary needs both tags to match:
	 * it faults whichever of the two tags the pointer carries. */
	mt_assert_tag_fault(tm_mte_with_tag(m + 76, 3), MT_LOAD64, 8);
	mt_assert_tag_fault(tm_mte_with_tag(m + 76, 9), MT_LOAD64, 8);
	mt_assert_tag_fault(tm_mte_with_tag(m + 76, 3), MT_STORE64, 8);
	/* Same straddle with equal tags on both sides passes. */
	assert_int_equal(tm_mte_set_tag_range(m + 4 * 16, 32, 0xd), 0);
	mt_assert_no_fault(tm_mte_with_tag(m + 76, 0xd), MT_LOAD64);
	mt_assert_no_fault(tm_mte_with_tag(m + 76, 0xd), MT_STORE64);
	assert_int_equal(tm_mte_unmap(m, page_size()), 0);
}

/* Every allocation tag against every logical tag: only equality passes. */
static void t_all_tag_pairs(void **state)
{
	char *m = map_page();

	(void)state;
	mt_require();
	for (uint8_t at = 0; at < 16; at++) {
		assert_int_equal(tm_mte_set_tag_range(m + 256, 32, at), 0);
		for (uint8_t lt = 0; lt < 16; lt++) {
			char *p = tm_mte_with_tag(m + 256 + 17, lt);

			if (lt == at)
				mt_assert_no_fault(p, MT_LOAD8);
			else
				mt_assert_tag_fault(p, MT_LOAD8, 1);
		}
	}
	assert_int_equal(tm_mte_unmap(m, page_size()), 0);
}

/* Tags set at a page boundary by one call (odd start, odd end: STG, ST2G
 * pairs, STG) are the ones the checker applies on both pages. */
static void t_check_across_pages(void **state)
{
	size_t ps = page_size();
	void *v = NULL;
	char *m;
	uint8_t packed[3] = { 0x21, 0x43, 0x05 }; /* granules: 1 2 3 4 5 */

	(void)state;
	mt_require();
	assert_int_equal(tm_mte_map(2 * ps, &v), 0);
	m = v;
	assert_int_equal(tm_mte_set_tags(m + ps - 48, 80, packed), 0);
	for (int g = 0; g < 5; g++) {
		char *p = m + ps - 48 + g * 16 + 8;

		mt_assert_no_fault(tm_mte_with_tag(p, (uint8_t)(g + 1)), MT_LOAD8);
		mt_assert_tag_fault(tm_mte_with_tag(p, (uint8_t)(g + 2)), MT_STORE8, 1);
	}
	assert_int_equal(tm_mte_unmap(m, 2 * ps), 0);
}

/* ---- TCO --------------------------------------------------------- */

/* TCO set: the wrong-tag access passes (what the library relies on). */
static void t_tco_suppresses_checks(void **state)
{
	char *m = map_page();

	(void)state;
	mt_require();
	assert_int_equal(tm_mte_set_tag_range(m, 16, 0x4), 0);
	mt_tco_set(MT_TCO_BIT);
	mt_assert_no_fault(tm_mte_with_tag(m, 0x8), MT_LOAD8);
	mt_assert_no_fault(tm_mte_with_tag(m, 0x8), MT_STORE8);
	mt_tco_set(0);
	mt_assert_tag_fault(tm_mte_with_tag(m, 0x8), MT_LOAD8, 1);
	assert_int_equal(tm_mte_unmap(m, page_size()), 0);
}

/* Run every primitive that switches TCO, starting from tco_before. */
static void run_all_primitives(char *m, uint64_t tco_before)
{
	uint8_t packed[4] = { 0x77, 0x77, 0x77, 0x77 };
	char buf[128] = { 1 };

	mt_tco_set(tco_before);
	assert_int_equal(tm_mte_set_tags(m + 512, 128, packed), 0);
	assert_int_equal(mt_tco_get(), tco_before);
	assert_int_equal(tm_mte_set_tag_range(m + 640, 128, 0x7), 0);
	assert_int_equal(mt_tco_get(), tco_before);
	assert_int_equal(tm_mte_copy_in(m + 768, buf, packed, 128), 0);
	assert_int_equal(mt_tco_get(), tco_before);
	assert_int_equal(tm_mte_copy_out(buf, tm_mte_with_tag(m + 768, 1), 128), 0);
	assert_int_equal(mt_tco_get(), tco_before);
	assert_int_equal(tm_mte_copy_data_in(tm_mte_with_tag(m + 768, 2), buf, 100), 0);
	assert_int_equal(mt_tco_get(), tco_before);
	assert_int_equal(tm_mte_get_tags(m + 512, 128, packed), 0);
	assert_int_equal(mt_tco_get(), tco_before);
	assert_int_equal(tm_mte_zero(m + 896, 128), 0);
	assert_int_equal(mt_tco_get(), tco_before);
	mt_tco_set(0);
}

static void t_tco_restored(void **state)
{
	char *m = map_page();

	(void)state;
	mt_require();
	assert_int_equal(mt_tco_get(), 0);
	run_all_primitives(m, 0);
	/* After the primitives ran, the thread's own wrong access still faults
	 * (m+512..m+895 now carry tag 7). */
	mt_assert_tag_fault(tm_mte_with_tag(m + 600, 0x2), MT_LOAD8, 1);
	mt_assert_tag_fault(tm_mte_with_tag(m + 700, 0x2), MT_STORE8, 1);
	mt_assert_tag_fault(tm_mte_with_tag(m + 800, 0x2), MT_LOAD8, 1);
	mt_assert_no_fault(tm_mte_with_tag(m + 800, 0x7), MT_LOAD8);
	/* A caller that had TCO set keeps it set: restore, not clear. */
	run_all_primitives(m, MT_TCO_BIT);
	assert_int_equal(tm_mte_unmap(m, page_size()), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_right_tag_passes_wrong_tag_faults),
		cmocka_unit_test(t_tag_zero_is_checked),
		cmocka_unit_test(t_granule_boundaries),
		cmocka_unit_test(t_all_tag_pairs),
		cmocka_unit_test(t_check_across_pages),
		cmocka_unit_test(t_tco_suppresses_checks),
		cmocka_unit_test(t_tco_restored),
	};

	return cmocka_run_group_tests_name("mte_check", tests, mt_group_setup, NULL);
}
