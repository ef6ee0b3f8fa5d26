/*
 * test_swapoff.c - swapoff of a whole swap file shared by several pagers:
 * every swapped page comes back (or is dropped with TM_SWAPOFF_DROP), every
 * tag is released and counted, the slots are free, and the file refuses
 * further swap-out. Destroying a pager with swapped pages releases them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "swap_test.h"

#define NPAGES 256u

struct two {
	tm_swapfile *sf;
	tm_region *r[2];
	tm_pager *p[2];
	struct st_model m[2];
	uint64_t tagged_out;      /* tagged pages swapped out, both regions */
	uint64_t tag_bytes;
};

/* Tagged pages among those swapped out: [0, 192) and 200. */
static size_t tagged_out(const struct st_model *m)
{
	return st_count_tagged(m, 0, 192) + st_count_tagged(m, 200, 1);
}

/* Two regions on one swap file, most of each swapped out in mixed orders,
 * with a few subpages discarded. */
static void setup_two(struct two *t, const char *name)
{
	tm_swap_stats st;
	tm_error err;

	t->sf = st_swapfile(name, 4 * NPAGES * (uint64_t)ST_PS, 0);
	for (int i = 0; i < 2; i++) {
		t->r[i] = st_region(i ? "second" : "first", NPAGES, true);
		t->p[i] = st_pager(t->r[i], t->sf, false, TM_SWAPIN_FOLIO);
		st_model_init(&t->m[i], NPAGES);
		st_fill(t->r[i], &t->m[i], 40 + (uint64_t)i, 6);
		assert_int_equal(tm_swap_out_range(t->p[i], 0, 128, 7, NULL, &err), 0);
		assert_int_equal(tm_swap_out_range(t->p[i], 128, 64, 2, NULL, &err), 0);
		assert_int_equal(tm_swap_out(t->p[i], 200, 0, &err), 0);
		assert_int_equal(tm_swap_discard(t->p[i], 10, 2, &err), 0);
		t->m[i].gone[10] = t->m[i].gone[11] = true;
	}
	tm_swapfile_stats(t->sf, &st);
	t->tagged_out = st.tags.entries;
	t->tag_bytes = st.tags.bytes_used;
	assert_int_equal(t->tagged_out, tagged_out(&t->m[0]) + tagged_out(&t->m[1]));
	assert_true(t->tag_bytes > 0);
}

static void teardown_two(struct two *t)
{
	for (int i = 0; i < 2; i++) {
		tm_pager_destroy(t->p[i]);
		tm_region_destroy(t->r[i]);
		st_model_free(&t->m[i]);
	}
	tm_swapfile_close(t->sf);
}

static void test_swapoff_restores_and_releases(void **state)
{
	struct two t;
	tm_swapoff_report rep;
	tm_swap_stats st;
	tm_error err;

	(void)state;
	setup_two(&t, "swapoff");
	assert_int_equal(tm_swapoff(t.sf, 0, &rep, &err), 0);
	assert_int_equal(rep.pages_restored, 2 * (193 - 2));
	assert_int_equal(rep.pages_dropped, 0);
	assert_int_equal(rep.tags_released, t.tagged_out);
	assert_int_equal(rep.tag_bytes_released, t.tag_bytes);
	assert_int_equal(rep.stale_tags, 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(tm_pager_swapped_pages(t.p[i]), 0);
		st_check_all(t.r[i], &t.m[i]);
	}
	tm_swapfile_stats(t.sf, &st);
	assert_int_equal(st.tags.entries, 0);
	assert_int_equal(st.tags.bytes_used, 0);
	assert_int_equal(st.slots_used, 0);
	assert_int_equal(tm_swap_out(t.p[0], 0, 0, &err), -ESHUTDOWN);
	assert_non_null(strstr(err.msg, "is off"));
	teardown_two(&t);
}

static void test_swapoff_drop(void **state)
{
	struct two t;
	tm_swapoff_report rep;
	tm_swap_stats st;
	tm_error err;

	(void)state;
	setup_two(&t, "swapoff-drop");
	assert_int_equal(tm_swapoff(t.sf, TM_SWAPOFF_DROP, &rep, &err), 0);
	assert_int_equal(rep.pages_restored, 0);
	assert_int_equal(rep.pages_dropped, 2 * (193 - 2));
	assert_int_equal(rep.tags_released, t.tagged_out);
	assert_int_equal(rep.tag_bytes_released, t.tag_bytes);
	for (int i = 0; i < 2; i++) {
		for (size_t pg = 0; pg < 192; pg++)
			t.m[i].gone[pg] = true;
		t.m[i].gone[200] = true;
		st_check_all(t.r[i], &t.m[i]);
	}
	tm_swapfile_stats(t.sf, &st);
	assert_int_equal(st.tags.entries, 0);
	assert_int_equal(st.slots_used, 0);
	teardown_two(&t);
}

static void test_destroy_releases(void **state)
{
	struct two t;
	tm_swap_stats st;

	(void)state;
	setup_two(&t, "destroy");
	tm_pager_destroy(t.p[0]);
	t.p[0] = NULL;
	tm_swapfile_stats(t.sf, &st);
	assert_int_equal(st.tags.entries, tagged_out(&t.m[1]));
	assert_int_equal(st.slots_used, 193 - 2);
	teardown_two(&t);
}

static void test_stats_text(void **state)
{
	struct two t;
	tm_swap_stats st;
	char buf[4096], small[16];
	size_t n;

	(void)state;
	setup_two(&t, "stats");
	tm_swapfile_stats(t.sf, &st);
	n = tm_swap_stats_format(&st, buf, sizeof(buf));
	assert_true(n > 0 && n < sizeof(buf));
	assert_int_equal(strlen(buf), n);
	assert_non_null(strstr(buf, "8 bytes (inline): "));
	assert_non_null(strstr(buf, "128 bytes (raw): "));
	assert_non_null(strstr(buf, "uncompressed tag storage size: "));
	assert_non_null(strstr(buf, "order 7 folios out: 2"));
	assert_int_equal(tm_swap_stats_format(&st, small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	teardown_two(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_swapoff_restores_and_releases),
		cmocka_unit_test(test_swapoff_drop),
		cmocka_unit_test(test_destroy_releases),
		cmocka_unit_test(test_stats_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
