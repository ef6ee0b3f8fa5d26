/*
 * test_ea0.c - EA0 inline handles, bit-compatible with Linux's v11-mte
 * series. The cases of the kernel's KUnit suite (arch/arm64/mm/
 * test_mtecomp.c) are ported for all three page sizes: zero page, 0xaa page,
 * two ranges of every split, every number of ranges 1..granules (inline
 * exactly when <= 6/5/4), invalid handles, upper bits. On top: known-answer
 * handles computed by hand from the documented bit layout, a model
 * implementation written straight from the documentation, and bit flips.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "tagmem/tags.h"
#include "tags/ea0.h"

static const uint32_t PAGE_SIZES[] = { 4096, 16384, 65536 };
#define NPS 3
#define MAXG 4096
#define MAXP 2048

static size_t granules(uint32_t ps) { return ps / 16; }

/* compress, check bit 63, decompress, compare (KUnit compress_decompress_helper) */
static int roundtrip(uint32_t ps, const uint8_t *tags, uint64_t *handle)
{
	uint8_t back[MAXP];
	int rc = tm_ea0_compress(ps, tags, handle, NULL);

	if (rc == 0) {
		assert_int_equal(*handle >> 63, 0);
		assert_int_equal(*handle & 1, 1);
		assert_true(tm_ea0_handle_valid(ps, *handle));
		memset(back, 0x5a, sizeof(back));
		assert_int_equal(tm_ea0_decompress(ps, *handle, back, NULL), 0);
		assert_memory_equal(back, tags, ps / 32);
	} else {
		assert_int_equal(rc, -E2BIG);
	}
	return rc;
}

static void test_max_ranges(void **state)
{
	(void)state;
	assert_int_equal(tm_ea0_max_inline_ranges(4096), 6);
	assert_int_equal(tm_ea0_max_inline_ranges(16384), 5);
	assert_int_equal(tm_ea0_max_inline_ranges(65536), 4);
	assert_int_equal(tm_ea0_max_inline_ranges(8192), 0);
}

static void test_tags_to_ranges_zero(void **state)
{
	uint8_t tags[MAXP], rt[MAXG];
	uint16_t rs[MAXG];

	(void)state;
	for (int s = 0; s < NPS; s++) {
		memset(tags, 0, sizeof(tags));
		assert_int_equal(tm_ea0_tags_to_ranges(PAGE_SIZES[s], tags, rt, rs, MAXG), 1);
		assert_int_equal(rt[0], 0);
		assert_int_equal(rs[0], granules(PAGE_SIZES[s]));
	}
}

/* The kernel walks the high nibble first: 0xa0 0x0a 0xab -> a,0,0,a,a,b */
static void test_tags_to_ranges_simple(void **state)
{
	uint8_t tags[MAXP], back[MAXP], rt[MAXG];
	uint16_t rs[MAXG];
	const uint8_t ex_t[] = { 0xa, 0x0, 0xa, 0xb, 0x0 };

	(void)state;
	for (int s = 0; s < NPS; s++) {
		uint32_t ps = PAGE_SIZES[s];
		const uint16_t ex_s[] = { 1, 2, 2, 1, (uint16_t)(granules(ps) - 6) };

		memset(tags, 0, sizeof(tags));
		tags[0] = 0xa0;
		tags[1] = 0x0a;
		tags[2] = 0xab;
		assert_int_equal(tm_ea0_tags_to_ranges(ps, tags, rt, rs, MAXG), 5);
		assert_memory_equal(rt, ex_t, 5);
		assert_memory_equal(rs, ex_s, sizeof(ex_s));
		memset(back, 0x77, sizeof(back));
		tm_ea0_ranges_to_tags(ps, rt, rs, 5, back);
		assert_memory_equal(back, tags, ps / 32);
	}
}

static void test_tags_to_ranges_repeated(void **state)
{
	uint8_t tags[MAXP], rt[MAXG];
	uint16_t rs[MAXG];

	(void)state;
	memset(tags, 0xa0, sizeof(tags));
	for (int s = 0; s < NPS; s++)
		assert_int_equal(tm_ea0_tags_to_ranges(PAGE_SIZES[s], tags, rt, rs, MAXG),
				 granules(PAGE_SIZES[s]));
}

/* KUnit gen_tag_range_helper: a buffer with exactly nranges ranges. */
static void gen_ranges(uint8_t *tags, uint32_t ps, size_t nranges)
{
	memset(tags, 0, ps / 32);
	if (nranges > 1) {
		nranges--;
		for (size_t i = 0; i < nranges / 2; i++)
			tags[i] = 0xab;
		if (nranges % 2)
			tags[nranges / 2] = 0xa0;
	}
}

static void test_tag_to_ranges_n(void **state)
{
	uint8_t tags[MAXP], back[MAXP], rt[MAXG];
	uint16_t rs[MAXG];

	(void)state;
	for (int s = 0; s < NPS; s++) {
		uint32_t ps = PAGE_SIZES[s];

		for (size_t i = 1; i <= granules(ps); i++) {
			size_t sum = 0;

			gen_ranges(tags, ps, i);
			size_t n = tm_ea0_tags_to_ranges(ps, tags, rt, rs, MAXG);
			assert_int_equal(n, i);
			for (size_t j = 0; j < n; j++)
				sum += rs[j];
			assert_int_equal(sum, granules(ps));
			tm_ea0_ranges_to_tags(ps, rt, rs, n, back);
			assert_memory_equal(back, tags, ps / 32);
		}
	}
}

/* Known answers straight from the documented layout. */
static void test_compress_zero_and_nonzero(void **state)
{
	uint8_t tags[MAXP];
	uint64_t h;

	(void)state;
	for (int s = 0; s < NPS; s++) {
		uint32_t ps = PAGE_SIZES[s];

		memset(tags, 0, sizeof(tags));
		assert_int_equal(roundtrip(ps, tags, &h), 0);
		/* marker bit only: two halves of tag 0, half size written as 0 */
		assert_int_equal(h, 0x1);
		memset(tags, 0xaa, sizeof(tags));
		assert_int_equal(roundtrip(ps, tags, &h), 0);
		/* r_tags[0] = r_tags[1] = 0xa in bits 4..11 */
		assert_int_equal(h, 0xaa1);
	}
}

static void test_compress_simple_known_answer(void **state)
{
	uint8_t tags[MAXP];
	uint64_t h;

	(void)state;
	memset(tags, 0, sizeof(tags));
	tags[0] = 0xa0;
	tags[1] = 0x0a;
	/* ranges a:1 0:2 a:1 0:252, largest_idx 3, 4 KiB layout:
	 * bit 0 = 1, bits 1-3 = 3, tags at 4,8,12, sizes 1,2,1 at 28,35,42 */
	uint64_t want = 1 | 3ull << 1 | 0xaull << 4 | 0xaull << 12 |
			1ull << 28 | 2ull << 35 | 1ull << 42;
	assert_int_equal(roundtrip(4096, tags, &h), 0);
	assert_int_equal(h, want);
	/* 16 KiB: 5 tag slots (bits 4-23), 9-bit sizes from bit 24 */
	want = 1 | 3ull << 1 | 0xaull << 4 | 0xaull << 12 |
	       1ull << 24 | 2ull << 33 | 1ull << 42;
	assert_int_equal(roundtrip(16384, tags, &h), 0);
	assert_int_equal(h, want);
	/* 64 KiB: 4 tag slots (bits 4-19), 11-bit sizes from bit 20 */
	want = 1 | 3ull << 1 | 0xaull << 4 | 0xaull << 12 |
	       1ull << 20 | 2ull << 31 | 1ull << 42;
	assert_int_equal(roundtrip(65536, tags, &h), 0);
	assert_int_equal(h, want);
}

/* KUnit test_two_ranges: every split, incl. granules/2 + granules/2. */
static void test_two_ranges(void **state)
{
	uint8_t tags[MAXP];
	const uint8_t rt[2] = { 0xe, 0x0 };
	uint16_t rs[2];
	uint64_t h;

	(void)state;
	for (int s = 0; s < NPS; s++) {
		uint32_t ps = PAGE_SIZES[s];

		for (size_t i = 1; i < granules(ps); i++) {
			rs[0] = (uint16_t)i;
			rs[1] = (uint16_t)(granules(ps) - i);
			tm_ea0_ranges_to_tags(ps, rt, rs, 2, tags);
			assert_int_equal(roundtrip(ps, tags, &h), 0);
		}
	}
}

/* KUnit test_compress_ranges: inline exactly when n <= 6/5/4. */
static void test_compress_ranges(void **state)
{
	uint8_t tags[MAXP];
	uint64_t h;

	(void)state;
	for (int s = 0; s < NPS; s++) {
		uint32_t ps = PAGE_SIZES[s];
		unsigned max = tm_ea0_max_inline_ranges(ps);
		size_t upto = granules(ps) > 256 ? 256 + 8 : granules(ps);

		for (size_t i = 1; i <= upto; i++) {
			gen_ranges(tags, ps, i);
			int rc = roundtrip(ps, tags, &h);

			assert_int_equal(rc == 0, i <= max);
		}
	}
}

/* KUnit test_decompress_invalid plus every rejection reason we add. */
static void test_decompress_invalid(void **state)
{
	uint8_t tags[MAXP];
	tm_error e;
	uint64_t h;

	(void)state;
	memset(tags, 0x33, sizeof(tags));
	/* the kernel's two: bit 0 clear (and bit 63 set); largest_idx 7 >= 6 */
	assert_int_equal(tm_ea0_decompress(4096, 0xeb0b0b0100804020ull, tags, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "bit 0"));
	assert_int_equal(tm_ea0_decompress(4096, 0x6b0b0b010080402full, tags, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "largest_idx 7"));
	/* nothing written on failure */
	for (size_t i = 0; i < sizeof(tags); i++)
		assert_int_equal(tags[i], 0x33);

	/* bit 63 */
	assert_int_equal(tm_ea0_decompress(4096, 1ull | 1ull << 63, tags, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "bit 63"));
	/* 64 KiB pages use bits 0..52 only */
	assert_false(tm_ea0_handle_valid(65536, 1ull | 1ull << 55));
	assert_int_equal(tm_ea0_decompress(65536, 1ull | 1ull << 55, tags, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "bits 53..62"));
	assert_false(tm_ea0_handle_valid(16384, 1ull | 1ull << 60));
	/* largest_idx 5 but only 2 ranges: the kernel would leave output unwritten */
	h = 1 | 5ull << 1 | 0x3ull << 4 | 0x4ull << 8 | 10ull << 28;
	assert_int_equal(tm_ea0_decompress(4096, h, tags, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "names no range"));
	/* lengths summing past the page */
	h = 1 | 0ull << 1 | 0x3ull << 4 | 0x4ull << 8 | 0x5ull << 12 |
	    127ull << 28 | 127ull << 35 | 10ull << 42;
	assert_int_equal(tm_ea0_decompress(4096, h, tags, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "granules"));
	/* adjacent ranges with the same tag */
	h = 1 | 1ull << 1 | 0x3ull << 4 | 0x3ull << 8 | 0x4ull << 12 | 5ull << 28 | 6ull << 35;
	assert_int_equal(tm_ea0_decompress(4096, h, tags, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "same tag"));
	/* non-zero padding tag after the last range */
	h = 1 | 1ull << 1 | 0x3ull << 4 | 0x4ull << 8 | 0x9ull << 24 | 5ull << 28;
	assert_int_equal(tm_ea0_decompress(4096, h, tags, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "canonical"));
	/* largest_idx not naming the longest range */
	h = 1 | 0ull << 1 | 0x3ull << 4 | 0x4ull << 8 | 100ull << 28;
	assert_true(tm_ea0_handle_valid(4096, h)); /* 156 + 100: fine */
	h = 1 | 1ull << 1 | 0x3ull << 4 | 0x4ull << 8 | 100ull << 28;
	assert_true(tm_ea0_handle_valid(4096, h)); /* 100 + 156: fine */
	h = 1 | 1ull << 1 | 0x3ull << 4 | 0x4ull << 8 | 120ull << 28;
	assert_true(tm_ea0_handle_valid(4096, h)); /* 120 + 136 */
	h = 1 | 0ull << 1 | 0x3ull << 4 | 0x4ull << 8 | 120ull << 28;
	assert_true(tm_ea0_handle_valid(4096, h)); /* 136 + 120 */
	h = 1 | 1ull << 1 | 0x3ull << 4 | 0x4ull << 8 | 0x5ull << 12 | 120ull << 28 | 1ull << 35;
	assert_true(tm_ea0_handle_valid(4096, h)); /* 120, 135 (largest), 1 */
	h = 1 | 0ull << 1 | 0x3ull << 4 | 0x4ull << 8 | 0x5ull << 12 | 100ull << 28 | 100ull << 35;
	assert_int_equal(tm_ea0_decompress(4096, h, tags, &e), -EINVAL); /* "largest" is 56 */
	assert_non_null(strstr(e.msg, "canonical"));
	/* bad page size */
	assert_int_equal(tm_ea0_decompress(8192, 1, tags, &e), -EINVAL);
	assert_int_equal(tm_ea0_compress(8192, tags, &h, &e), -EINVAL);
}

/* KUnit test_upper_bits: a long last range must not leak into bit 63. */
static void test_upper_bits(void **state)
{
	uint8_t tags[MAXP];
	uint8_t rt[6] = { 7, 0, 7, 0, 7, 0 };
	uint64_t h;

	(void)state;
	for (int s = 0; s < NPS; s++) {
		uint32_t ps = PAGE_SIZES[s];
		size_t n = tm_ea0_max_inline_ranges(ps);
		uint16_t rs[6] = { 1, 1, 1, 1, 1, 1 };

		rs[0] = (uint16_t)(granules(ps) / 2 - 1);
		rs[n - 1] = (uint16_t)(granules(ps) - rs[0] - n + 2);
		tm_ea0_ranges_to_tags(ps, rt, rs, n, tags);
		assert_int_equal(roundtrip(ps, tags, &h), 0);
		assert_int_equal(h >> 63, 0);
	}
}

/*
 * A model written straight from mte-tag-compression.rst: walk nibbles high
 * first, one bit at a time into the handle. The fast word-at-a-time walker
 * must agree with it on random pages with few ranges.
 */
static int model_compress(uint32_t ps, const uint8_t *tags, uint64_t *h)
{
	unsigned G = ps / 16, S = G == 256 ? 7 : G == 1024 ? 9 : 11;
	unsigned N = tm_ea0_max_inline_ranges(ps);
	unsigned rt[4096], rs[4096], n = 0, largest = 0, pos = 0;

	for (unsigned i = 0; i < G; i++) {
		unsigned t = (i % 2) ? tags[i / 2] & 0xF : tags[i / 2] >> 4;

		if (n && rt[n - 1] == t) {
			rs[n - 1]++;
		} else {
			rt[n] = t;
			rs[n++] = 1;
		}
	}
	if (n > N)
		return -E2BIG;
	if (n == 1) {
		rt[1] = rt[0];
		rs[0] = rs[1] = G / 2;
		n = 2;
	}
	for (unsigned i = 0; i < n; i++)
		if (rs[i] > rs[largest])
			largest = i;
	*h = 0;
#define PUT(v, nb) do { *h |= ((uint64_t)(v) & ((1ull << (nb)) - 1)) << pos; pos += (nb); } while (0)
	PUT(1, 1);
	PUT(largest, 3);
	for (unsigned i = 0; i < N; i++)
		PUT(i < n ? rt[i] : 0, 4);
	for (unsigned i = 0; i < N; i++)
		if (i != largest)
			PUT(i < n ? rs[i] : 0, S);
#undef PUT
	return 0;
}

static void random_few_ranges(tm_rng *r, uint32_t ps, uint8_t *tags)
{
	unsigned G = ps / 16, n = 1 + (unsigned)tm_rng_below(r, 7);
	unsigned pos = 0, prev = 99;

	for (unsigned i = 0; i < n && pos < G; i++) {
		unsigned len = i + 1 == n ? G - pos : 1 + (unsigned)tm_rng_below(r, G - pos);
		unsigned t;

		do {
			t = (unsigned)tm_rng_below(r, 16);
		} while (t == prev && tm_rng_below(r, 4));
		prev = t;
		for (unsigned k = pos; k < pos + len; k++)
			tm_tag_set(tags, k, (uint8_t)t);
		pos += len;
	}
}

static void test_matches_model(void **state)
{
	uint8_t tags[MAXP];
	tm_rng r;

	(void)state;
	tm_rng_seed(&r, 7);
	for (int s = 0; s < NPS; s++) {
		uint32_t ps = PAGE_SIZES[s];

		for (int k = 0; k < 3000; k++) {
			uint64_t h1 = 0, h2 = 0;

			random_few_ranges(&r, ps, tags);
			int rc1 = tm_ea0_compress(ps, tags, &h1, NULL);
			int rc2 = model_compress(ps, tags, &h2);

			assert_int_equal(rc1, rc2);
			if (rc1 == 0)
				assert_int_equal(h1, h2);
			roundtrip(ps, tags, &h1);
		}
	}
}

/* Any single-bit change of a valid handle is rejected or is itself canonical. */
static void test_bit_flips(void **state)
{
	uint8_t tags[MAXP], out[MAXP];
	tm_rng r;
	unsigned valid_flips = 0;

	(void)state;
	tm_rng_seed(&r, 9);
	for (int s = 0; s < NPS; s++) {
		uint32_t ps = PAGE_SIZES[s];

		for (int k = 0; k < 300; k++) {
			uint64_t h, h2;

			random_few_ranges(&r, ps, tags);
			if (tm_ea0_compress(ps, tags, &h, NULL))
				continue;
			for (int b = 0; b < 64; b++) {
				uint64_t f = h ^ (1ull << b);

				if (tm_ea0_decompress(ps, f, out, NULL) != 0) {
					assert_false(tm_ea0_handle_valid(ps, f));
					continue;
				}
				valid_flips++;
				assert_int_equal(tm_ea0_compress(ps, out, &h2, NULL), 0);
				assert_int_equal(h2, f);
			}
		}
	}
	assert_true(valid_flips > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_max_ranges),
		cmocka_unit_test(test_tags_to_ranges_zero),
		cmocka_unit_test(test_tags_to_ranges_simple),
		cmocka_unit_test(test_tags_to_ranges_repeated),
		cmocka_unit_test(test_tag_to_ranges_n),
		cmocka_unit_test(test_compress_zero_and_nonzero),
		cmocka_unit_test(test_compress_simple_known_answer),
		cmocka_unit_test(test_two_ranges),
		cmocka_unit_test(test_compress_ranges),
		cmocka_unit_test(test_decompress_invalid),
		cmocka_unit_test(test_upper_bits),
		cmocka_unit_test(test_matches_model),
		cmocka_unit_test(test_bit_flips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
