/*
 * test_runs.c - the word-at-a-time run walker and run counter that EA0 and
 * the stream codec stand on, checked item by item against a naive walk for
 * every item width, both walk orders, odd page sizes and random runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "tags/runs.h"

#define MAXB 2048

static unsigned naive_get(const uint8_t *p, unsigned bits, size_t i, bool swap)
{
	size_t bit = i * bits;
	unsigned sh = (unsigned)(bit % 8);

	if (swap)
		sh = 4 - sh; /* high nibble first */
	return (p[bit / 8] >> sh) & ((1u << bits) - 1);
}

static void random_runs(tm_rng *r, uint8_t *p, size_t items, unsigned bits, bool swap,
			size_t maxlen)
{
	size_t pos = 0;

	memset(p, 0, items * bits / 8);
	while (pos < items) {
		size_t len = 1 + tm_rng_below(r, maxlen);
		unsigned v = (unsigned)tm_rng_below(r, 1u << bits);

		if (len > items - pos)
			len = items - pos;
		tm_items_fill(p, bits, pos, len, v, swap);
		for (size_t i = pos; i < pos + len; i++)
			assert_int_equal(naive_get(p, bits, i, swap), v);
		pos += len;
	}
}

static void check_page(const uint8_t *p, size_t items, unsigned bits, bool swap)
{
	tm_run_iter it;
	unsigned v;
	size_t len, pos = 0, n = 0;

	tm_run_iter_init(&it, p, items, bits, swap);
	while (tm_run_next(&it, &v, &len)) {
		assert_true(len >= 1);
		assert_true(pos + len <= items);
		for (size_t i = pos; i < pos + len; i++)
			assert_int_equal(naive_get(p, bits, i, swap), v);
		/* maximal: the next item differs */
		if (pos + len < items)
			assert_int_not_equal(naive_get(p, bits, pos + len, swap), v);
		pos += len;
		n++;
	}
	assert_int_equal(pos, items);
	assert_int_equal(tm_run_count(p, items, bits, swap, SIZE_MAX), n);
	if (n > 3)
		assert_true(tm_run_count(p, items, bits, swap, 2) > 2);
}

static void test_walk_matches_naive(void **state)
{
	static const unsigned widths[] = { 1, 2, 4, 8 };
	static const size_t sizes[] = { 8, 16, 24, 40, 128, 256, 1024, 4096 };
	uint8_t p[MAXB];
	tm_rng r;

	(void)state;
	tm_rng_seed(&r, 5);
	for (size_t w = 0; w < 4; w++) {
		unsigned bits = widths[w];

		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			size_t items = sizes[s];

			if (items * bits % 8 || items * bits / 8 > MAXB)
				continue;
			for (int swap = 0; swap <= (bits == 4); swap++) {
				for (int k = 0; k < 40; k++) {
					size_t maxlen = 1 + tm_rng_below(&r, items);

					random_runs(&r, p, items, bits, swap, maxlen);
					check_page(p, items, bits, swap);
				}
			}
		}
	}
}

static void test_uniform_and_alternating(void **state)
{
	uint8_t p[128];

	(void)state;
	memset(p, 0, sizeof(p));
	assert_int_equal(tm_run_count(p, 256, 4, false, SIZE_MAX), 1);
	memset(p, 0x77, sizeof(p));
	assert_int_equal(tm_run_count(p, 256, 4, true, SIZE_MAX), 1);
	memset(p, 0xa0, sizeof(p));
	assert_int_equal(tm_run_count(p, 256, 4, false, SIZE_MAX), 256);
	assert_int_equal(tm_run_count(p, 256, 4, true, SIZE_MAX), 256);
	/* 0x0a0a..: address order a,0,a,0 but EA0 order 0,a,0,a - both 256 */
	check_page(p, 256, 4, false);
	check_page(p, 256, 4, true);
	/* pairs 0x21 0x21: address order 1,2,1,2...; EA0 order 2,1,2,1... */
	memset(p, 0x11, sizeof(p));
	p[0] = 0x21;
	/* address: 1 | 2 | 1...  = 3 runs; EA0: 2 | 1... = 2 runs */
	assert_int_equal(tm_run_count(p, 256, 4, false, SIZE_MAX), 3);
	assert_int_equal(tm_run_count(p, 256, 4, true, SIZE_MAX), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_matches_naive),
		cmocka_unit_test(test_uniform_and_alternating),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
