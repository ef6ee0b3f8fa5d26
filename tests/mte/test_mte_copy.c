/*
 * test_mte_copy.c - moving data with the raw MTE primitives: copy_in (STGP)
 * places data and tags together, copy_out reads tagged memory through any
 * pointer without faulting, copy_data_in writes data at any alignment
 * leaving tags alone, and zero (STZG/STZ2G) clears data AND tags, over odd
 * offsets and lengths and across pages, leaving neighbours untouched.
 * Results are checked independently: tags by LDG, data through a pointer
 * carrying the right tag (a checked access), faults by the CPU.
 */
#include "mte_test.h"

#include <unistd.h>

#include "common/util.h"

#define NPAGES 3

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

typedef struct area {
	char *base;
	size_t len, n;
	uint8_t *tags;  /* model: unpacked, one per granule */
	uint8_t *data;  /* model */
} area;

/* A mapping with random data and random tags everywhere, and its model. */
static void area_open(area *a, uint64_t seed)
{
	void *p = NULL;
	tm_rng r;

	mt_require();
	a->len = NPAGES * page_size();
	a->n = a->len / MT_GRANULE;
	assert_int_equal(tm_mte_map(a->len, &p), 0);
	a->base = p;
	a->tags = malloc(a->n);
	a->data = malloc(a->len);
	assert_non_null(a->tags);
	assert_non_null(a->data);
	tm_rng_seed(&r, seed);
	for (size_t i = 0; i < a->len; i++)
		a->data[i] = (uint8_t)tm_rng_next(&r);
	for (size_t g = 0; g < a->n; g++)
		a->tags[g] = (uint8_t)tm_rng_below(&r, 16);
	/* Set up with checked stores through correctly tagged pointers, not
	 * with the primitives under test. */
	for (size_t g = 0; g < a->n; g++) {
		assert_int_equal(tm_mte_set_tag_range(a->base + g * 16, 16, a->tags[g]), 0);
		memcpy(tm_mte_with_tag(a->base + g * 16, a->tags[g]), a->data + g * 16, 16);
	}
}

/* Every granule holds the model's tag (LDG) and the model's data, read by
 * checked loads through a pointer with the model's tag. */
static void area_verify(const area *a)
{
	mt_assert_tags(a->base, a->n, a->tags);
	for (size_t g = 0; g < a->n; g++) {
		const char *p = tm_mte_with_tag(a->base + g * 16, a->tags[g]);

		if (memcmp(p, a->data + g * 16, 16) != 0)
			fail_msg("data of granule %zu differs", g);
	}
}

static void area_close(area *a)
{
	area_verify(a);
	assert_int_equal(tm_mte_unmap(a->base, a->len), 0);
	free(a->tags);
	free(a->data);
}

static void random_range(tm_rng *r, const area *a, size_t *g0, size_t *cnt)
{
	*g0 = tm_rng_below(r, a->n);
	*cnt = 1 + tm_rng_below(r, a->n - *g0);
}

/* STGP places random data + random tags; neighbours keep theirs. src is
 * deliberately misaligned by one byte: src is ordinary memory. */
static void t_copy_in_data_and_tags(void **state)
{
	area a;
	tm_rng r;
	uint8_t *src = malloc(NPAGES * page_size() + 1);
	uint8_t *packed = malloc(NPAGES * page_size() / 32 + 1);

	(void)state;
	area_open(&a, 10);
	assert_non_null(src);
	assert_non_null(packed);
	tm_rng_seed(&r, 11);
	for (int trial = 0; trial < 60; trial++) {
		size_t g0, cnt;

		random_range(&r, &a, &g0, &cnt);
		for (size_t i = 0; i < cnt * 16; i++)
			src[1 + i] = (uint8_t)tm_rng_next(&r);
		for (size_t b = 0; b < (cnt + 1) / 2; b++)
			packed[b] = (uint8_t)tm_rng_next(&r);
		assert_int_equal(tm_mte_copy_in(a.base + g0 * 16, src + 1, packed,
						cnt * 16), 0);
		memcpy(a.data + g0 * 16, src + 1, cnt * 16);
		for (size_t g = 0; g < cnt; g++)
			a.tags[g0 + g] = mt_nibble(packed, g);
		area_verify(&a);
	}
	area_close(&a);
	free(src);
	free(packed);
}

/* After copy_in, the CPU enforces the new tags: the new tag passes, the
 * granule's previous tag now faults, and the neighbour's tag still applies. */
static void t_copy_in_then_checks(void **state)
{
	area a;
	uint8_t src[64], packed[2] = { 0xba, 0xdc }; /* granule tags a, b, c, d */

	(void)state;
	area_open(&a, 20);
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(0xc0 + i);
	a.tags[8] = 0xf; /* the old tags differ from every new one */
	a.tags[9] = 0xf;
	a.tags[10] = 0xf;
	a.tags[11] = 0xf;
	assert_int_equal(tm_mte_set_tag_range(a.base + 8 * 16, 64, 0xf), 0);
	assert_int_equal(tm_mte_copy_in(a.base + 8 * 16, src, packed, 64), 0);
	for (int g = 0; g < 4; g++) {
		char *p = a.base + (8 + g) * 16 + 3;
		uint64_t v = 0;

		assert_int_equal(mt_probe(tm_mte_with_tag(p, (uint8_t)(0xa + g)),
					  MT_LOAD8, &v), 0);
		assert_int_equal(v, 0xc0 + g * 16 + 3);
		mt_assert_tag_fault(tm_mte_with_tag(p, 0xf), MT_LOAD8, 1);
		mt_assert_tag_fault(tm_mte_with_tag(p, 0xf), MT_STORE8, 1);
		a.tags[8 + g] = (uint8_t)(0xa + g);
	}
	memcpy(a.data + 8 * 16, src, 64);
	/* The granule just past the range kept its own tag. */
	mt_assert_tag_fault(tm_mte_with_tag(a.base + 12 * 16,
					    (uint8_t)((a.tags[12] + 1) % 16)),
			    MT_LOAD8, 1);
	area_close(&a);
}

/* copy_in with no tags: data placed, every granule tag 0. */
static void t_copy_in_untagged(void **state)
{
	area a;
	uint8_t src[96];

	(void)state;
	area_open(&a, 30);
	memset(src, 0x3c, sizeof(src));
	assert_int_equal(tm_mte_copy_in(a.base + 48, src, NULL, sizeof(src)), 0);
	memset(a.tags + 3, 0, 6);
	memcpy(a.data + 48, src, sizeof(src));
	area_close(&a);
}

/* copy_out reads through pointers whose tag matches nothing, and from
 * ranges whose granules all have different tags, without a fault; the
 * bytes are right at any alignment. */
static void t_copy_out_never_faults(void **state)
{
	area a;
	tm_rng r;
	uint8_t *dst = malloc(NPAGES * page_size() + 2);

	(void)state;
	area_open(&a, 40);
	assert_non_null(dst);
	tm_rng_seed(&r, 41);
	for (int trial = 0; trial < 60; trial++) {
		size_t off = tm_rng_below(&r, a.len);
		size_t len = 1 + tm_rng_below(&r, a.len - off);
		uint8_t lt = (uint8_t)tm_rng_below(&r, 16);

		dst[len] = 0xa5;
		assert_int_equal(tm_mte_copy_out(dst, tm_mte_with_tag(a.base + off, lt),
						 len), 0);
		assert_memory_equal(dst, a.data + off, len);
		assert_int_equal(dst[len], 0xa5);
	}
	/* The whole area in one go (tags vary granule to granule). */
	assert_int_equal(tm_mte_copy_out(dst, a.base, a.len), 0);
	assert_memory_equal(dst, a.data, a.len);
	area_close(&a);
	free(dst);
}

/* copy_data_in: bytes at any offset, through any pointer tag, tags kept. */
static void t_copy_data_in_keeps_tags(void **state)
{
	area a;
	tm_rng r;
	uint8_t buf[300];

	(void)state;
	area_open(&a, 50);
	tm_rng_seed(&r, 51);
	for (int trial = 0; trial < 60; trial++) {
		size_t len = 1 + tm_rng_below(&r, sizeof(buf));
		size_t off = tm_rng_below(&r, a.len - len);

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)tm_rng_next(&r);
		assert_int_equal(tm_mte_copy_data_in(tm_mte_with_tag(a.base + off, 0),
						     buf, len), 0);
		memcpy(a.data + off, buf, len);
	}
	area_close(&a);
}

/* zero clears data and tags of exactly the range, odd starts and ends. */
static void t_zero_data_and_tags(void **state)
{
	area a;
	tm_rng r;

	(void)state;
	area_open(&a, 60);
	tm_rng_seed(&r, 61);
	for (int trial = 0; trial < 40; trial++) {
		size_t g0, cnt;

		random_range(&r, &a, &g0, &cnt);
		if (cnt > 40 && trial % 2)
			cnt = 1 + cnt % 7; /* short ranges too */
		assert_int_equal(tm_mte_zero(tm_mte_with_tag(a.base + g0 * 16, 0x3),
					     cnt * 16), 0);
		memset(a.data + g0 * 16, 0, cnt * 16);
		memset(a.tags + g0, 0, cnt);
		area_verify(&a);
		/* re-dirty so the next trial zeroes something non-zero */
		for (size_t g = g0; g < g0 + cnt; g++) {
			a.tags[g] = (uint8_t)(1 + g % 15);
			memset(a.data + g * 16, (int)(g | 1), 16);
			assert_int_equal(tm_mte_copy_in(a.base + g * 16, a.data + g * 16,
							&a.tags[g], 16), 0);
		}
	}
	area_close(&a);
}

/* After zero, the old tag faults and tag 0 (a plain pointer) passes. */
static void t_zero_then_checks(void **state)
{
	area a;

	(void)state;
	area_open(&a, 70);
	assert_int_equal(tm_mte_set_tag_range(a.base + 32, 96, 0x9), 0);
	assert_int_equal(tm_mte_zero(a.base + 48, 64), 0);
	mt_assert_tag_fault(tm_mte_with_tag(a.base + 50, 0x9), MT_LOAD8, 1);
	mt_assert_no_fault(a.base + 50, MT_LOAD8);
	mt_assert_no_fault(a.base + 111, MT_LOAD8);
	mt_assert_no_fault(tm_mte_with_tag(a.base + 47, 0x9), MT_LOAD8);
	mt_assert_no_fault(tm_mte_with_tag(a.base + 112, 0x9), MT_LOAD8);
	memset(a.tags + 2, 0x9, 6);
	memset(a.tags + 3, 0, 4);
	memset(a.data + 48, 0, 64);
	area_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_copy_in_data_and_tags),
		cmocka_unit_test(t_copy_in_then_checks),
		cmocka_unit_test(t_copy_in_untagged),
		cmocka_unit_test(t_copy_out_never_faults),
		cmocka_unit_test(t_copy_data_in_keeps_tags),
		cmocka_unit_test(t_zero_data_and_tags),
		cmocka_unit_test(t_zero_then_checks),
	};

	return cmocka_run_group_tests_name("mte_copy", tests, mt_group_setup, NULL);
}
