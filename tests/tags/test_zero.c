/*
 * test_zero.c - zero detection. Every implementation must find a single
 * non-zero byte at any position of any length and alignment; a page is zero
 * only when data AND tags are zero, and a page with zero data but one
 * non-zero tag is not a zero page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tagmem/tags.h"
#include "tags/simd.h"

#define MAXN 520

static void test_impls_find_every_byte(void **state)
{
	static uint8_t buf[MAXN + 64];
	size_t nimpl;
	const tm_tags_impl *impl = tm_tags_impl_list(&nimpl);

	(void)state;
	memset(buf, 0, sizeof(buf));
	for (size_t k = 0; k < nimpl; k++) {
		if (!impl[k].available())
			continue;
		for (size_t n = 0; n <= MAXN; n++) {
			size_t off = (n * 7) % 64;

			assert_true(impl[k].is_zero(buf + off, n));
			for (size_t i = 0; i < n; i++) {
				buf[off + i] = (uint8_t)(1u << (i % 8));
				assert_false(impl[k].is_zero(buf + off, n));
				buf[off + i] = 0;
			}
			/* bytes just outside the range do not count */
			if (off > 0)
				buf[off - 1] = 0xff;
			buf[off + n] = 0xff;
			assert_true(impl[k].is_zero(buf + off, n));
			if (off > 0)
				buf[off - 1] = 0;
			buf[off + n] = 0;
		}
	}
}

static void test_page_zero_needs_data_and_tags(void **state)
{
	static const uint32_t sizes[] = { 4096, 16384, 65536 };

	(void)state;
	for (size_t s = 0; s < 3; s++) {
		tm_geom g;
		uint8_t *data, tags[2048];

		assert_int_equal(tm_geom_mte(&g, sizes[s], NULL), 0);
		data = calloc(1, g.page_size);
		assert_non_null(data);
		memset(tags, 0, sizeof(tags));
		assert_true(tm_page_is_zero(&g, data, tags));
		assert_true(tm_page_is_zero(&g, data, NULL)); /* untagged */
		/* data zero, one tag non-zero: NOT a zero page */
		tm_tag_set(tags, tm_geom_granules(&g) - 1, 0x5);
		assert_false(tm_page_is_zero(&g, data, tags));
		tm_tag_set(tags, tm_geom_granules(&g) - 1, 0);
		/* tags zero, last data byte non-zero */
		data[g.page_size - 1] = 1;
		assert_false(tm_page_is_zero(&g, data, tags));
		assert_false(tm_page_is_zero(&g, data, NULL));
		free(data);
	}
}

static void test_public_mem_is_zero(void **state)
{
	uint8_t b[100];

	(void)state;
	memset(b, 0, sizeof(b));
	assert_true(tm_mem_is_zero(b, sizeof(b)));
	assert_true(tm_mem_is_zero(b, 0));
	b[99] = 0x80;
	assert_false(tm_mem_is_zero(b, sizeof(b)));
	assert_true(tm_mem_is_zero(b, 99));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_impls_find_every_byte),
		cmocka_unit_test(test_page_zero_needs_data_and_tags),
		cmocka_unit_test(test_public_mem_is_zero),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
