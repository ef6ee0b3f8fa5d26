/*
 * test_geom.c - page-metadata geometry: MTE at the three page sizes, the
 * generic "B bits per G bytes" kind, and refusal of impossible geometries.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tagmem/tags.h"

static void test_mte_sizes(void **state)
{
	static const struct { uint32_t ps; size_t gran, packed; } want[] = {
		{ 4096, 256, 128 }, { 16384, 1024, 512 }, { 65536, 4096, 2048 },
	};
	tm_geom g;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(tm_geom_mte(&g, want[i].ps, NULL), 0);
		assert_int_equal(g.kind, TM_META_MTE);
		assert_int_equal(g.granule, 16);
		assert_int_equal(g.bits, 4);
		assert_int_equal(tm_geom_granules(&g), want[i].gran);
		assert_int_equal(tm_geom_packed_bytes(&g), want[i].packed);
		assert_int_equal(tm_geom_unpacked_bytes(&g), want[i].gran);
	}
}

static void test_bad_page_size(void **state)
{
	tm_geom g;
	tm_error e;

	(void)state;
	tm_error_clear(&e);
	assert_int_equal(tm_geom_mte(&g, 8192, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "8192"));
	assert_int_equal(tm_geom_mte(&g, 0, &e), -EINVAL);
	assert_int_equal(tm_geom_init(&g, 7, 4096, 0, 0, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "kind 7"));
}

static void test_generic(void **state)
{
	tm_geom g;
	tm_error e;

	(void)state;
	/* e.g. 2 bits per 8 bytes */
	assert_int_equal(tm_geom_init(&g, TM_META_GENERIC, 4096, 8, 2, &e), 0);
	assert_int_equal(tm_geom_granules(&g), 512);
	assert_int_equal(tm_geom_packed_bytes(&g), 128);
	/* 1 bit per 64 bytes on 64 KiB pages */
	assert_int_equal(tm_geom_init(&g, TM_META_GENERIC, 65536, 64, 1, &e), 0);
	assert_int_equal(tm_geom_packed_bytes(&g), 128);
	assert_int_equal(tm_geom_init(&g, TM_META_GENERIC, 4096, 24, 4, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "granule 24"));
	assert_int_equal(tm_geom_init(&g, TM_META_GENERIC, 4096, 16, 3, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "3 bits"));
	assert_int_equal(tm_geom_init(&g, TM_META_GENERIC, 4096, 8192, 4, &e), -EINVAL);
	/* 1 granule of 1 bit is not a whole byte */
	assert_int_equal(tm_geom_init(&g, TM_META_GENERIC, 4096, 4096, 1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "whole bytes"));
}

static void test_none_and_equal(void **state)
{
	tm_geom a, b, c;

	(void)state;
	assert_int_equal(tm_geom_init(&a, TM_META_NONE, 4096, 16, 4, NULL), 0);
	assert_int_equal(tm_geom_granules(&a), 0);
	assert_int_equal(tm_geom_packed_bytes(&a), 0);
	assert_int_equal(tm_geom_mte(&b, 4096, NULL), 0);
	assert_int_equal(tm_geom_mte(&c, 4096, NULL), 0);
	assert_true(tm_geom_equal(&b, &c));
	assert_false(tm_geom_equal(&a, &b));
	c.page_size = 16384;
	assert_false(tm_geom_equal(&b, &c));
	assert_int_equal(tm_geom_init(&c, TM_META_GENERIC, 4096, 16, 4, NULL), 0);
	assert_false(tm_geom_equal(&b, &c)); /* same shape, different kind */
}

static void test_describe(void **state)
{
	tm_geom g;
	char buf[64];

	(void)state;
	tm_geom_mte(&g, 4096, NULL);
	assert_string_equal(tm_geom_describe(&g, buf, sizeof(buf)), "mte/v1 4b/16B page=4096");
	tm_geom_init(&g, TM_META_GENERIC, 16384, 8, 2, NULL);
	assert_string_equal(tm_geom_describe(&g, buf, sizeof(buf)), "generic/v1 2b/8B page=16384");
	tm_geom_init(&g, TM_META_NONE, 65536, 0, 0, NULL);
	assert_string_equal(tm_geom_describe(&g, buf, sizeof(buf)), "none page=65536");
	tm_geom_describe(&g, buf, 5);
	assert_string_equal(buf, "none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mte_sizes),
		cmocka_unit_test(test_bad_page_size),
		cmocka_unit_test(test_generic),
		cmocka_unit_test(test_none_and_equal),
		cmocka_unit_test(test_describe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
