/*
 * test_tagstream_page.c - the one-page codec against the general one: for
 * every page of every corpus layout, page size and run count (raw/runs
 * boundary, two-byte lengths, 1..all runs), tm_tagstream_encode_page must
 * write the bytes tm_tagstream_encode(.., 1, 0, ..) writes and fail with
 * -ENOSPC for exactly the same capacities; tm_tagstream_decode_page must
 * accept exactly the blocks tm_tagstream_decode(.., 1, ..) accepts - real
 * blocks, regular-form blocks, every truncation, every one-byte change of
 * small blocks and random corruptions - with the same tags, the same error
 * text, and an untouched output buffer on error.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "tagmem/tags.h"

#define PB_MAX (TM_PAGE_SIZE_MAX / 32)
#define REC_MAX (PB_MAX + 64)

static tm_geom mte(uint32_t ps)
{
	tm_geom g;

	assert_int_equal(tm_geom_mte(&g, ps, NULL), 0);
	return g;
}

/* Both encoders at capacity cap: same rc, same bytes. */
static void same_encode(const tm_geom *g, const uint8_t *page, size_t cap)
{
	uint8_t a[REC_MAX], b[REC_MAX];
	size_t la = 0, lb = 0;
	tm_error ea, eb;

	tm_error_clear(&ea);
	tm_error_clear(&eb);
	int ra = tm_tagstream_encode(g, page, 1, 0, a, cap, &la, &ea);
	int rb = tm_tagstream_encode_page(g, page, b, cap, &lb, &eb);
	int rn = tm_tagstream_encode_page(g, page, b, cap, &lb, NULL);

	assert_int_equal(ra, rb);
	assert_int_equal(ra, rn);
	if (ra == 0) {
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
	} else {
		assert_int_equal(ra, -ENOSPC);
		assert_string_equal(ea.msg, eb.msg);
	}
}

/* Every capacity that matters for one page: none, the header sizes, the
 * exact length and its neighbours, the swap store's class sizes, plenty. */
static void same_encode_caps(const tm_geom *g, const uint8_t *page)
{
	static const size_t fixed[] = { 0, 3, 4, 5, 6, 14, 30, 62, 126, 254, 510, 1022 };
	uint8_t out[REC_MAX];
	size_t len;

	assert_int_equal(tm_tagstream_encode(g, page, 1, 0, out, sizeof(out), &len, NULL), 0);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		same_encode(g, page, fixed[i]);
	same_encode(g, page, len - 1);
	same_encode(g, page, len);
	same_encode(g, page, len + 1);
	same_encode(g, page, sizeof(out));
}

/* Both decoders on in[0..len): same rc, same tags or the same message, and
 * an untouched (exactly sized, for ASan) output on error. */
static int same_decode(const tm_geom *g, const uint8_t *in, size_t len)
{
	size_t pb = tm_geom_packed_bytes(g);
	uint8_t *a = malloc(pb), *b = malloc(pb);
	tm_error ea, eb;

	assert_non_null(a);
	assert_non_null(b);
	memset(a, 0xee, pb);
	memset(b, 0xee, pb);
	tm_error_clear(&ea);
	tm_error_clear(&eb);
	int ra = tm_tagstream_decode(g, in, len, 1, a, &ea);
	int rb = tm_tagstream_decode_page(g, in, len, b, &eb);

	assert_int_equal(ra, rb);
	if (ra == 0) {
		assert_memory_equal(a, b, pb);
	} else {
		assert_string_equal(ea.msg, eb.msg);
		for (size_t i = 0; i < pb; i++)
			assert_int_equal(b[i], 0xee);
	}
	free(a);
	free(b);
	return ra;
}

/* A page of exactly n runs (1 <= n <= items): cut points drawn at random,
 * neighbouring values different. */
static void page_of_runs(tm_rng *r, size_t items, size_t n, uint8_t *page)
{
	unsigned v = (unsigned)tm_rng_below(r, 16);
	uint8_t *cut = calloc(items, 1);
	size_t have = 1;

	assert_non_null(cut);
	while (have < n) {
		size_t at = 1 + tm_rng_below(r, items - 1);

		if (!cut[at]) {
			cut[at] = 1;
			have++;
		}
	}
	memset(page, 0, items / 2);
	for (size_t i = 0; i < items; i++) {
		if (i && cut[i])
			v = (v + 1 + (unsigned)tm_rng_below(r, 15)) & 0xF;
		page[i / 2] |= (uint8_t)(v << ((i & 1) * 4));
	}
	free(cut);
}

static void test_encode_matches_corpus(void **state)
{
	static const uint32_t ps[] = { 4096, 16384, 65536 };

	(void)state;
	for (unsigned k = 0; k < 3; k++) {
		tm_geom g = mte(ps[k]);
		size_t pb = tm_geom_packed_bytes(&g), np = k == 0 ? 256 : 32;
		uint8_t *p = malloc(np * pb);

		for (int l = 0; l < TM_CORPUS_NLAYOUTS; l++) {
			tm_corpus_fill((enum tm_corpus_layout)l, &g, 100 + (uint64_t)l, p, np);
			for (size_t i = 0; i < np; i++)
				same_encode_caps(&g, p + i * pb);
		}
		free(p);
	}
}

/* Every run count from 1 to all items on 4 KiB pages (and a spread on the
 * larger ones): both sides of the raw/runs boundary, long runs whose
 * lengths take two varint bytes. */
static void test_encode_matches_every_run_count(void **state)
{
	static const uint32_t ps[] = { 4096, 16384, 65536 };
	uint8_t page[PB_MAX];
	tm_rng r;

	(void)state;
	tm_rng_seed(&r, 31);
	for (unsigned k = 0; k < 3; k++) {
		tm_geom g = mte(ps[k]);
		size_t items = tm_geom_granules(&g);
		size_t step = k == 0 ? 1 : items / 97;

		for (size_t n = 1; n <= items; n += step) {
			page_of_runs(&r, items, n, page);
			same_encode_caps(&g, page);
			uint8_t out[REC_MAX];
			size_t len;

			assert_int_equal(tm_tagstream_encode_page(&g, page, out, sizeof(out), &len, NULL), 0);
			assert_int_equal(same_decode(&g, out, len), 0);
		}
	}
}

/* Other geometries take the general path and agree with it trivially. */
static void test_other_geometry_falls_back(void **state)
{
	uint8_t page[64], out[256], back[64];
	size_t len;
	tm_geom g;

	(void)state;
	assert_int_equal(tm_geom_init(&g, TM_META_GENERIC, 4096, 64, 8, NULL), 0);
	tm_corpus_fill(TM_CORPUS_ALLOC, &g, 5, page, 1);
	same_encode_caps(&g, page);
	assert_int_equal(tm_tagstream_encode_page(&g, page, out, sizeof(out), &len, NULL), 0);
	assert_int_equal(tm_tagstream_decode_page(&g, out, len, back, NULL), 0);
	assert_memory_equal(back, page, tm_geom_packed_bytes(&g));
}

/* Real blocks of every kind decode alike, including the regular form and
 * zstd blocks that only the general encoder writes. */
static void test_decode_matches_real_blocks(void **state)
{
	static const unsigned flags[] = { 0, TM_TAGSTREAM_REGULAR, TM_TAGSTREAM_ZSTD,
					  TM_TAGSTREAM_REGULAR | TM_TAGSTREAM_ZSTD };
	tm_geom g = mte(4096);
	uint8_t p[512 * 128], out[REC_MAX];
	size_t len;

	(void)state;
	for (int l = 0; l < TM_CORPUS_NLAYOUTS; l++) {
		tm_corpus_fill((enum tm_corpus_layout)l, &g, 7 + (uint64_t)l, p, 512);
		for (size_t i = 0; i < 512; i++)
			for (unsigned f = 0; f < 4; f++) {
				assert_int_equal(tm_tagstream_encode(&g, p + i * 128, 1, flags[f], out,
								     sizeof(out), &len, NULL), 0);
				assert_int_equal(same_decode(&g, out, len), 0);
			}
	}
}

/* Every truncation and every single-byte value at every position of a
 * spread of small blocks: the decoders agree on each. */
static void test_decode_matches_every_change(void **state)
{
	tm_geom g = mte(4096);
	uint8_t p[64 * 128], out[REC_MAX], mut[REC_MAX];
	size_t len, accepted = 0, refused = 0;

	(void)state;
	tm_corpus_fill(TM_CORPUS_MIX, &g, 99, p, 64);
	for (size_t i = 0; i < 64; i++) {
		unsigned f = i % 2 ? TM_TAGSTREAM_REGULAR : 0;

		assert_int_equal(tm_tagstream_encode(&g, p + i * 128, 1, f, out, sizeof(out),
						     &len, NULL), 0);
		if (len > 40)
			continue;      /* raw pages: only their header matters */
		for (size_t n = 0; n < len; n++)
			assert_int_equal(same_decode(&g, out, n), -EBADMSG);
		for (size_t at = 0; at < len; at++)
			for (unsigned v = 0; v < 256; v++) {
				memcpy(mut, out, len);
				mut[at] = (uint8_t)v;
				if (same_decode(&g, mut, len) == 0)
					accepted++;
				else
					refused++;
			}
	}
	printf("# one-byte changes: %zu accepted alike, %zu refused alike\n", accepted, refused);
	assert_true(accepted > 0 && refused > 0);
}

/* Random corruption of blocks of all page sizes, with appended bytes too. */
static void test_decode_matches_random_corruption(void **state)
{
	static const uint32_t ps[] = { 4096, 16384, 65536 };
	uint8_t page[PB_MAX], out[REC_MAX + 8];
	tm_rng r;

	(void)state;
	tm_rng_seed(&r, 4242);
	for (int round = 0; round < 20000; round++) {
		tm_geom g = mte(ps[round % 3]);
		size_t items = tm_geom_granules(&g), len;

		page_of_runs(&r, items, 1 + tm_rng_below(&r, round % 2 ? 40 : items), page);
		assert_int_equal(tm_tagstream_encode(&g, page, 1, round % 4 == 1 ? TM_TAGSTREAM_REGULAR : 0,
						     out, REC_MAX, &len, NULL), 0);
		for (int f = (int)tm_rng_below(&r, 4); f > 0; f--)
			out[tm_rng_below(&r, len)] ^= (uint8_t)(1 + tm_rng_below(&r, 255));
		if (tm_rng_below(&r, 8) == 0)
			len -= tm_rng_below(&r, len);
		else if (tm_rng_below(&r, 8) == 0)
			out[len++] = (uint8_t)tm_rng_below(&r, 256);
		same_decode(&g, out, len);
	}
}

/* A run length of 2^64 - 1 (+ 1 wraps to 0) is refused by both: it once
 * decoded as a run of no items in the general decoder. */
static void test_wrapping_length_refused(void **state)
{
	tm_geom g = mte(4096);
	/* 3 runs (h = 2), values 1,2,3 (0x21, 0x03); length 2^64-1; length 1 */
	const uint8_t plain[] = { 1, 0, 1, 0x02, 0x02, 0x21, 0x03,
				  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
				  0x00 };
	/* regular, 3 runs: first 2^64-1, period 1 */
	const uint8_t regular[] = { 1, 0, 1, 0x02, 0x03, 0x21, 0x03,
				    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
				    0x00 };

	(void)state;
	assert_int_equal(same_decode(&g, plain, sizeof(plain)), -EBADMSG);
	assert_int_equal(same_decode(&g, regular, sizeof(regular)), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_matches_corpus),
		cmocka_unit_test(test_encode_matches_every_run_count),
		cmocka_unit_test(test_other_geometry_falls_back),
		cmocka_unit_test(test_decode_matches_real_blocks),
		cmocka_unit_test(test_decode_matches_every_change),
		cmocka_unit_test(test_decode_matches_random_corruption),
		cmocka_unit_test(test_wrapping_length_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
