/*
 * test_fault.c - swap-in on access through userfaultfd (lazy placement):
 * threads touching swapped pages in random order get their data and tags
 * back in both fault modes (whole folio, page by page); several threads
 * faulting on ONE folio at once restore each subpage's tags exactly once;
 * explicit tm_swap_in racing with faults on the same folio does too; a
 * discarded subpage faults in as a zero, untagged page.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/test_skip.h"

#include "swap_test.h"

#define NTHREADS 6

struct rig {
	tm_swapfile *sf;
	tm_region *r;
	tm_pager *p;
	struct st_model m;
	size_t npages;
};

/* Lazy placement may be missing (no userfaultfd): then the test is skipped
 * with the reason, never passed. */
static bool rig_open(struct rig *g, const char *name, size_t npages,
		     enum tm_swapin_mode mode, uint64_t seed)
{
	tm_pager_config pc = { 0 };
	tm_error err;

	g->npages = npages;
	g->sf = st_swapfile(name, (npages + 2048) * (uint64_t)ST_PS, 0);
	g->r = st_region(name, npages, true);
	st_model_init(&g->m, npages);
	st_fill(g->r, &g->m, seed, 5);
	pc.region = g->r;
	pc.swap = g->sf;
	pc.lazy = true;
	pc.fault_mode = mode;
	if (tm_pager_create(&pc, &g->p, &err) != 0) {
		tm_region_destroy(g->r);
		tm_swapfile_close(g->sf);
		st_model_free(&g->m);
		tm_test_skip("uffd", "lazy placement unavailable: %s", err.msg);
		return false;
	}
	return true;
}

static void rig_close(struct rig *g)
{
	st_close(g->p, g->r, g->sf, &g->m);
}

struct toucher {
	struct rig *g;
	size_t first, n;          /* pages [first, first+n) */
	uint64_t seed;
	bool explicit_swapin;     /* call tm_swap_in instead of touching */
	pthread_barrier_t *start;
	pthread_t th;
	int rc;
};

static void *touch_thread(void *arg)
{
	struct toucher *t = arg;
	size_t *ord = malloc(t->n * sizeof(size_t));
	tm_rng rng;
	tm_error err;

	tm_rng_seed(&rng, t->seed);
	for (size_t i = 0; i < t->n; i++)
		ord[i] = t->first + i;
	for (size_t i = t->n; i > 1; i--) {
		size_t j = (size_t)tm_rng_below(&rng, i), x = ord[i - 1];

		ord[i - 1] = ord[j];
		ord[j] = x;
	}
	pthread_barrier_wait(t->start);
	for (size_t i = 0; i < t->n && !t->rc; i++) {
		if (t->explicit_swapin) {
			t->rc = tm_swap_in(t->g->p, t->first, t->n, &err);
			break;
		} else {
			volatile uint8_t *b = tm_region_ptr(t->g->r, ord[i] * ST_PS + 8);

			(void)*b;
		}
	}
	free(ord);
	return NULL;
}

/* Run n threads over the same or split page ranges. */
static void run_touchers(struct rig *g, size_t first, size_t n, bool split,
			 int n_explicit)
{
	struct toucher t[NTHREADS];
	pthread_barrier_t start;

	pthread_barrier_init(&start, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		size_t part = n / NTHREADS;

		t[i] = (struct toucher){ g, split ? first + i * part : first,
					 split ? (i == NTHREADS - 1 ? n - i * part : part) : n,
					 1000 + (uint64_t)i, i < n_explicit, &start, 0, 0 };
		assert_int_equal(pthread_create(&t[i].th, NULL, touch_thread, &t[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i].th, NULL);
		assert_int_equal(t[i].rc, 0);
	}
	pthread_barrier_destroy(&start);
}

/* swapped_pages were swapped out in [first, first+swapped_pages+gone). */
static void expect_all_back(struct rig *g, size_t first, size_t n,
			    size_t swapped_pages)
{
	tm_swap_stats st;
	tm_error err;

	assert_int_equal(tm_region_lazy_error(g->r, &err), 0);
	assert_int_equal(tm_pager_swapped_pages(g->p), 0);
	tm_swapfile_stats(g->sf, &st);
	/* Every page restored once, every tag restored once. */
	assert_int_equal(st.pages_in, swapped_pages);
	assert_int_equal(st.tag_restores, st_count_tagged(&g->m, first, n));
	assert_int_equal(st.tags.entries, 0);
	assert_int_equal(st.slots_used, 0);
	st_check_all(g->r, &g->m);
}

static void random_order(enum tm_swapin_mode mode)
{
	struct rig g;
	tm_swap_stats st;
	tm_error err;

	if (!rig_open(&g, "fault-rand", 1024, mode, 21))
		return;
	assert_int_equal(tm_swap_out_range(g.p, 0, 1024, 4, NULL, &err), 0);
	run_touchers(&g, 0, 1024, true, 0);
	tm_swapfile_stats(g.sf, &st);
	assert_true(st.pages_in_fault > 0);
	if (mode == TM_SWAPIN_PAGE) {
		assert_int_equal(st.pages_in_fault, 1024);
		assert_int_equal(st.folio_swapins, 0);
	} else {
		/* One fault per folio brought the whole folio in. */
		assert_int_equal(st.folio_swapins, 1024 / 16);
		assert_int_equal(st.pages_in_fault, 1024 / 16);
	}
	expect_all_back(&g, 0, 1024, 1024);
	rig_close(&g);
}

static void test_random_order_folio_mode(void **state)
{
	(void)state;
	random_order(TM_SWAPIN_FOLIO);
}

static void test_random_order_page_mode(void **state)
{
	(void)state;
	random_order(TM_SWAPIN_PAGE);
}

/* NTHREADS threads fault on all subpages of one order-9 folio at once. */
static void one_folio(enum tm_swapin_mode mode, int n_explicit)
{
	const size_t n = 1u << TM_SWAP_MAX_ORDER;
	struct rig g;
	tm_error err;

	if (!rig_open(&g, "fault-one", 2 * n, mode, 22))
		return;
	assert_int_equal(tm_swap_out(g.p, n, TM_SWAP_MAX_ORDER, &err), 0);
	/* Discard two subpages: they must fault in as zero, untagged. */
	assert_int_equal(tm_swap_discard(g.p, n + 5, 2, &err), 0);
	g.m.gone[n + 5] = g.m.gone[n + 6] = true;
	run_touchers(&g, n, n, false, n_explicit);
	expect_all_back(&g, n, n, n - 2);
	rig_close(&g);
}

static void test_concurrent_faults_one_folio_folio_mode(void **state)
{
	(void)state;
	one_folio(TM_SWAPIN_FOLIO, 0);
}

static void test_concurrent_faults_one_folio_page_mode(void **state)
{
	(void)state;
	one_folio(TM_SWAPIN_PAGE, 0);
}

static void test_explicit_swapin_races_faults(void **state)
{
	(void)state;
	one_folio(TM_SWAPIN_PAGE, NTHREADS / 2);
}

static void test_api_access_swaps_in(void **state)
{
	struct rig g;
	tm_swap_stats st;
	tm_error err;

	(void)state;
	if (!rig_open(&g, "fault-api", 64, TM_SWAPIN_PAGE, 23))
		return;
	assert_int_equal(tm_swap_out_range(g.p, 0, 64, 3, NULL, &err), 0);
	/* tm_region_read_page of a swapped page brings it in from this
	 * thread (the region's fetch path), with its tags. */
	st_check_page(g.r, &g.m, 13);
	assert_false(tm_swap_page_swapped(g.p, 13));
	assert_true(tm_swap_page_swapped(g.p, 12));
	tm_swapfile_stats(g.sf, &st);
	assert_int_equal(st.pages_in, 1);
	st_check_all(g.r, &g.m);
	expect_all_back(&g, 0, 64, 64);
	rig_close(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_order_folio_mode),
		cmocka_unit_test(test_random_order_page_mode),
		cmocka_unit_test(test_concurrent_faults_one_folio_folio_mode),
		cmocka_unit_test(test_concurrent_faults_one_folio_page_mode),
		cmocka_unit_test(test_explicit_swapin_races_faults),
		cmocka_unit_test(test_api_access_swaps_in),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
