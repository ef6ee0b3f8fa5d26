/*
 * test_mte_args.c - the raw MTE primitives refuse bad arguments with -EINVAL
 * (misaligned address, length not a granule multiple, NULL, wrapping range,
 * tag > 15, bad mapping sizes) and write nothing when they do: the tags and
 * data of the memory they were pointed at are checked afterwards.
 */
#include "mte_test.h"

#include <errno.h>
#include <unistd.h>

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* A page with tag 0x5 and data 0x11 on every granule, to detect writes. */
static char *map_marked(void)
{
	void *p = NULL;
	char buf[256];

	mt_require();
	assert_int_equal(tm_mte_map(page_size(), &p), 0);
	assert_int_equal(tm_mte_set_tag_range(p, page_size(), 0x5), 0);
	memset(buf, 0x11, sizeof(buf));
	for (size_t off = 0; off < page_size(); off += sizeof(buf))
		assert_int_equal(tm_mte_copy_data_in((char *)p + off, buf, sizeof(buf)), 0);
	return p;
}

static void assert_unchanged(char *p)
{
	uint8_t *data = malloc(page_size());

	assert_non_null(data);
	for (size_t g = 0; g < page_size() / 16; g++)
		if (tm_mte_load_tag(p + g * 16) != 0x5)
			fail_msg("granule %zu tag changed by a refused call", g);
	assert_int_equal(tm_mte_copy_out(data, p, page_size()), 0);
	for (size_t i = 0; i < page_size(); i++)
		if (data[i] != 0x11)
			fail_msg("byte %zu changed by a refused call", i);
	free(data);
	assert_int_equal(tm_mte_unmap(p, page_size()), 0);
}

static void t_misaligned_address(void **state)
{
	char *p = map_marked();
	uint8_t packed[8] = { 0 };
	char src[64] = { 0 };

	(void)state;
	for (int off = 1; off < 16; off++) {
		assert_int_equal(tm_mte_get_tags(p + off, 32, packed), -EINVAL);
		assert_int_equal(tm_mte_set_tags(p + off, 32, packed), -EINVAL);
		assert_int_equal(tm_mte_set_tag_range(p + off, 32, 0x1), -EINVAL);
		assert_int_equal(tm_mte_copy_in(p + off, src, packed, 32), -EINVAL);
		assert_int_equal(tm_mte_zero(p + off, 32), -EINVAL);
	}
	/* A tagged but misaligned address is still misaligned. */
	assert_int_equal(tm_mte_zero(tm_mte_with_tag(p + 8, 0x5), 32), -EINVAL);
	assert_unchanged(p);
}

static void t_bad_length(void **state)
{
	char *p = map_marked();
	uint8_t packed[8] = { 0 };
	char src[64] = { 0 };
	size_t lens[] = { 1, 8, 15, 17, 31, 33 };

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		assert_int_equal(tm_mte_get_tags(p, lens[i], packed), -EINVAL);
		assert_int_equal(tm_mte_set_tags(p, lens[i], packed), -EINVAL);
		assert_int_equal(tm_mte_set_tag_range(p, lens[i], 0x1), -EINVAL);
		assert_int_equal(tm_mte_copy_in(p, src, packed, lens[i]), -EINVAL);
		assert_int_equal(tm_mte_zero(p, lens[i]), -EINVAL);
	}
	/* A range that wraps the address space. */
	assert_int_equal(tm_mte_zero(p, SIZE_MAX - 15), -EINVAL);
	assert_int_equal(tm_mte_set_tag_range(p, (size_t)0 - (uintptr_t)p, 1), -EINVAL);
	assert_int_equal(tm_mte_copy_out(src, p, SIZE_MAX), -EINVAL);
	assert_unchanged(p);
}

static void t_null_and_tag_range(void **state)
{
	char *p = map_marked();
	uint8_t packed[8] = { 0 };
	char buf[32] = { 0 };

	(void)state;
	assert_int_equal(tm_mte_get_tags(NULL, 32, packed), -EINVAL);
	assert_int_equal(tm_mte_get_tags(p, 32, NULL), -EINVAL);
	assert_int_equal(tm_mte_set_tags(NULL, 32, packed), -EINVAL);
	assert_int_equal(tm_mte_set_tags(p, 32, NULL), -EINVAL);
	assert_int_equal(tm_mte_set_tag_range(NULL, 32, 1), -EINVAL);
	assert_int_equal(tm_mte_copy_in(NULL, buf, packed, 32), -EINVAL);
	assert_int_equal(tm_mte_copy_in(p, NULL, packed, 32), -EINVAL);
	assert_int_equal(tm_mte_copy_out(NULL, p, 32), -EINVAL);
	assert_int_equal(tm_mte_copy_out(buf, NULL, 32), -EINVAL);
	assert_int_equal(tm_mte_copy_data_in(NULL, buf, 32), -EINVAL);
	assert_int_equal(tm_mte_copy_data_in(p, NULL, 32), -EINVAL);
	assert_int_equal(tm_mte_zero(NULL, 32), -EINVAL);
	for (unsigned t = 16; t < 256; t += 17)
		assert_int_equal(tm_mte_set_tag_range(p, 32, (uint8_t)t), -EINVAL);
	/* Length 0 is a no-op that succeeds and touches nothing. */
	assert_int_equal(tm_mte_set_tags(p, 0, NULL), 0);
	assert_int_equal(tm_mte_get_tags(p, 0, NULL), 0);
	assert_int_equal(tm_mte_zero(p, 0), 0);
	assert_int_equal(tm_mte_copy_in(p, NULL, NULL, 0), 0);
	assert_unchanged(p);
}

static void t_map_args(void **state)
{
	void *p = NULL;

	(void)state;
	mt_require();
	assert_int_equal(tm_mte_map(0, &p), -EINVAL);
	assert_int_equal(tm_mte_map(page_size() + 16, &p), -EINVAL);
	assert_int_equal(tm_mte_map(page_size(), NULL), -EINVAL);
	assert_null(p);
	assert_int_equal(tm_mte_unmap(NULL, page_size()), -EINVAL);
	assert_int_equal(tm_mte_map(page_size(), &p), 0);
	assert_int_equal(tm_mte_unmap(p, 0), -EINVAL);
	/* unmap accepts the tagged pointer a caller may hold */
	assert_int_equal(tm_mte_unmap(tm_mte_with_tag(p, 0x3), page_size()), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_misaligned_address),
		cmocka_unit_test(t_bad_length),
		cmocka_unit_test(t_null_and_tag_range),
		cmocka_unit_test(t_map_args),
	};

	return cmocka_run_group_tests_name("mte_args", tests, mt_group_setup, NULL);
}
