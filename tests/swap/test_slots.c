/*
 * test_slots.c - the swap slot allocator: every order gets naturally aligned
 * runs (what folio_swap() relies on), slot 0 is never handed out, runs never
 * overlap, freeing single slots of a folio works, clusters keep small orders
 * from fragmenting the space of large ones, and fragmentation fails cleanly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "swap/slots.h"

/* Shadow of which slots the test believes are allocated. */
static void claim(uint8_t *owned, uint64_t first, uint64_t n)
{
	for (uint64_t i = first; i < first + n; i++) {
		assert_int_equal(owned[i], 0);
		owned[i] = 1;
	}
}

static void test_every_order_aligned_until_full(void **state)
{
	(void)state;
	for (unsigned order = 0; order <= TM_SWAP_MAX_ORDER; order++) {
		const uint64_t nslots = 4 * TM_SLOT_CLUSTER + 77;
		struct tm_slots s;
		uint8_t *owned = calloc(nslots, 1);
		uint64_t first, got = 0;

		assert_non_null(owned);
		assert_int_equal(tm_slots_init(&s, nslots), 0);
		assert_int_equal(tm_slots_total(&s), nslots - 1);
		while (tm_slots_alloc(&s, order, &first) == 0) {
			assert_int_equal(first % (1u << order), 0);
			assert_true(first >= 1);
			assert_true(first + (1u << order) <= nslots);
			claim(owned, first, 1u << order);
			for (uint64_t i = first; i < first + (1u << order); i++)
				assert_true(tm_slots_is_used(&s, i));
			got += 1u << order;
		}
		/* Full: whatever is left cannot hold an aligned run. */
		assert_int_equal(tm_slots_nfree(&s), nslots - 1 - got);
		for (uint64_t a = 0; a + (1u << order) <= nslots; a += 1u << order) {
			bool all_free = true;

			for (uint64_t i = a; i < a + (1u << order); i++)
				all_free = all_free && i != 0 && !owned[i];
			assert_false(all_free);
		}
		assert_false(tm_slots_is_used(&s, nslots));
		assert_true(tm_slots_is_used(&s, 0));
		tm_slots_fini(&s);
		free(owned);
	}
}

static void test_free_single_subpages_then_reuse(void **state)
{
	struct tm_slots s;
	uint64_t a, b;

	(void)state;
	assert_int_equal(tm_slots_init(&s, 2 * TM_SLOT_CLUSTER), 0);
	assert_int_equal(tm_slots_alloc(&s, 4, &a), 0);
	/* Free the subpages of the order-4 folio one at a time, out of order. */
	for (unsigned i = 0; i < 16; i += 2)
		tm_slots_free(&s, a + i, 1);
	for (unsigned i = 0; i < 16; i += 2)
		assert_false(tm_slots_is_used(&s, a + i));
	assert_true(tm_slots_is_used(&s, a + 1));
	/* The half-freed block cannot host another order-4 run ... */
	assert_int_equal(tm_slots_alloc(&s, 4, &b), 0);
	assert_true(b != a);
	for (unsigned i = 1; i < 16; i += 2)
		tm_slots_free(&s, a + i, 1);
	tm_slots_free(&s, b, 16);
	/* ... and once all of it is free, everything is reusable. */
	assert_int_equal(tm_slots_nfree(&s), 2 * TM_SLOT_CLUSTER - 1);
	assert_int_equal(tm_slots_alloc(&s, 9, &b), 0);
	assert_int_equal(b, TM_SLOT_CLUSTER);  /* cluster 0 holds the header */
	tm_slots_fini(&s);
}

static void test_clusters_keep_large_orders_possible(void **state)
{
	struct tm_slots s;
	uint64_t first;
	tm_rng rng;

	(void)state;
	tm_rng_seed(&rng, 42);
	assert_int_equal(tm_slots_init(&s, 8 * TM_SLOT_CLUSTER), 0);
	/* Interleave order-0 and order-9 allocations: small ones share a
	 * cluster instead of scattering, so order 9 still succeeds for every
	 * free cluster. */
	unsigned big = 0;

	for (int i = 0; i < 300; i++)
		assert_int_equal(tm_slots_alloc(&s, 0, &first), 0);
	while (tm_slots_alloc(&s, 9, &first) == 0) {
		assert_int_equal(first % TM_SLOT_CLUSTER, 0);
		big++;
		for (int i = 0; i < 5; i++)
			assert_int_equal(tm_slots_alloc(&s, (unsigned)tm_rng_below(&rng, 3), &first), 0);
	}
	/* 8 clusters: cluster 0 (header) serves order 0, orders 1 and 2 take
	 * one cluster each, every other cluster becomes an order-9 folio. */
	assert_int_equal(big, 5);
	tm_slots_fini(&s);
}

static void test_fragmentation_fails_cleanly(void **state)
{
	struct tm_slots s;
	uint64_t first, all[2 * TM_SLOT_CLUSTER];
	size_t n = 0;

	(void)state;
	assert_int_equal(tm_slots_init(&s, 2 * TM_SLOT_CLUSTER), 0);
	while (tm_slots_alloc(&s, 0, &first) == 0)
		all[n++] = first;
	assert_int_equal(n, 2 * TM_SLOT_CLUSTER - 1);
	assert_int_equal(tm_slots_alloc(&s, 0, &first), -ENOSPC);
	/* Free every other slot: lots of space, no aligned pair. */
	for (size_t i = 0; i < n; i++)
		if (all[i] % 2 == 1)
			tm_slots_free(&s, all[i], 1);
	assert_int_equal(tm_slots_alloc(&s, 1, &first), -ENOSPC);
	assert_int_equal(tm_slots_alloc(&s, 0, &first), 0);
	assert_int_equal(first % 2, 1);
	/* Free the even ones too: an order-9 run appears in cluster 1. */
	for (size_t i = 0; i < n; i++)
		if (all[i] % 2 == 0)
			tm_slots_free(&s, all[i], 1);
	tm_slots_free(&s, first, 1);
	assert_int_equal(tm_slots_alloc(&s, 9, &first), 0);
	assert_int_equal(first, TM_SLOT_CLUSTER);
	assert_int_equal(tm_slots_alloc(&s, 9, &first), -ENOSPC);
	assert_int_equal(tm_slots_alloc(&s, 8, &first), 0);
	assert_int_equal(first, 256);
	tm_slots_reset(&s);
	assert_int_equal(tm_slots_nfree(&s), 2 * TM_SLOT_CLUSTER - 1);
	tm_slots_fini(&s);
}

static void test_random_churn_matches_shadow(void **state)
{
	const uint64_t nslots = 6 * TM_SLOT_CLUSTER + 5;
	struct live { uint64_t first; unsigned order; } *lv;
	uint8_t *owned = calloc(nslots, 1);
	size_t nlive = 0;
	struct tm_slots s;
	tm_rng rng;

	(void)state;
	lv = calloc(nslots, sizeof(*lv));
	assert_non_null(owned);
	assert_non_null(lv);
	tm_rng_seed(&rng, 7);
	assert_int_equal(tm_slots_init(&s, nslots), 0);
	for (int step = 0; step < 20000; step++) {
		if (nlive && tm_rng_below(&rng, 2)) {
			size_t k = tm_rng_below(&rng, nlive);

			for (uint64_t i = 0; i < (1u << lv[k].order); i++) {
				owned[lv[k].first + i] = 0;
				tm_slots_free(&s, lv[k].first + i, 1);
			}
			lv[k] = lv[--nlive];
			continue;
		}
		unsigned order = (unsigned)tm_rng_below(&rng, TM_SWAP_MAX_ORDER + 1);
		uint64_t first;

		if (tm_slots_alloc(&s, order, &first) != 0)
			continue;
		assert_int_equal(first % (1u << order), 0);
		claim(owned, first, 1u << order);
		lv[nlive].first = first;
		lv[nlive++].order = order;
	}
	uint64_t used = 0;

	for (uint64_t i = 1; i < nslots; i++) {
		assert_int_equal(tm_slots_is_used(&s, i), owned[i] != 0);
		used += owned[i];
	}
	assert_int_equal(tm_slots_nfree(&s), nslots - 1 - used);
	tm_slots_fini(&s);
	free(owned);
	free(lv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_order_aligned_until_full),
		cmocka_unit_test(test_free_single_subpages_then_reuse),
		cmocka_unit_test(test_clusters_keep_large_orders_possible),
		cmocka_unit_test(test_fragmentation_fails_cleanly),
		cmocka_unit_test(test_random_churn_matches_shadow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
