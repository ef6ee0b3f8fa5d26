/*
 * test_util.c - the shared helpers every part leans on: error records, size
 * parsing, the reproducible PRNG and bitmap counting.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <sys/uio.h>

#include "common/util.h"
#include "tagmem/error.h"

static void test_error_set_and_wrap(void **state)
{
	tm_error e;

	(void)state;
	tm_error_clear(&e);
	assert_int_equal(e.code, 0);
	assert_string_equal(tm_error_msg(&e), "");
	assert_int_equal(tm_error_set(&e, -EINVAL, "region %s offset %#x", "ram", 0x1000), -EINVAL);
	assert_string_equal(e.msg, "region ram offset 0x1000");
	tm_error_wrap(&e, -EIO, "channel %d", 2);
	assert_int_equal(e.code, -EIO);
	assert_string_equal(e.msg, "channel 2: region ram offset 0x1000");
	assert_int_equal(tm_error_set(NULL, -ENOMEM, "x"), -ENOMEM);
}

static void test_parse_size(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(tm_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(tm_parse_size("64M", &v), 0);
	assert_int_equal(v, 64ull << 20);
	assert_int_equal(tm_parse_size("1GiB", &v), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(tm_parse_size("16k", &v), 0);
	assert_int_equal(v, 16384);
	assert_int_equal(tm_parse_size("12Q", &v), -EINVAL);
	assert_int_equal(tm_parse_size("", &v), -EINVAL);
	assert_int_equal(tm_parse_size("99999999999999999999T", &v), -EINVAL);
	assert_int_equal(tm_parse_size("20000000T", &v), -ERANGE);
}

static void test_rng_reproducible_and_bounded(void **state)
{
	tm_rng a, b;

	(void)state;
	tm_rng_seed(&a, 42);
	tm_rng_seed(&b, 42);
	for (int i = 0; i < 1000; i++) {
		uint64_t x = tm_rng_below(&a, 7);

		assert_int_equal(x, tm_rng_below(&b, 7));
		assert_true(x < 7);
	}
	tm_rng_seed(&b, 43);
	assert_int_not_equal(tm_rng_next(&a), tm_rng_next(&b));
}

static void test_bitmap_count(void **state)
{
	uint64_t b[3] = { 0 };

	(void)state;
	tm_bit_set(b, 0);
	tm_bit_set(b, 63);
	tm_bit_set(b, 64);
	tm_bit_set(b, 130);
	assert_int_equal(tm_bitmap_count(b, 131), 4);
	/* bits past nbits do not count */
	assert_int_equal(tm_bitmap_count(b, 130), 3);
	tm_bit_clear(b, 63);
	assert_false(tm_bit_test(b, 63));
	assert_int_equal(tm_bitmap_count(b, 192), 3);
}

static void test_iov_advance(void **state)
{
	char a[4], b[8], c[2];
	struct iovec v[3] = { { a, 4 }, { b, 8 }, { c, 2 } };
	struct iovec *p = v;
	int n = 3;

	(void)state;
	tm_iov_advance(&p, &n, 0);
	assert_ptr_equal(p, v);
	assert_int_equal(n, 3);
	tm_iov_advance(&p, &n, 6);          /* all of a, 2 bytes of b */
	assert_ptr_equal(p, &v[1]);
	assert_int_equal(n, 2);
	assert_ptr_equal(p->iov_base, b + 2);
	assert_int_equal(p->iov_len, 6);
	tm_iov_advance(&p, &n, 6);          /* exactly the rest of b */
	assert_ptr_equal(p, &v[2]);
	assert_int_equal(n, 1);
	assert_int_equal(p->iov_len, 2);
	tm_iov_advance(&p, &n, 2);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_set_and_wrap),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_rng_reproducible_and_bounded),
		cmocka_unit_test(test_bitmap_count),
		cmocka_unit_test(test_iov_advance),
	};
	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
