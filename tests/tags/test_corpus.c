/*
 * test_corpus.c - the tag corpus: names, determinism, and that each layout
 * has the shape it claims (untagged = zero, one-tag = one non-zero value,
 * alloc = equal-size chunks with neighbours tagged differently and sizes
 * skewed small, random = uniform, mix = the documented weights).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tagmem/tags.h"
#include "tags/runs.h"

#define NP 2000

static uint8_t *fill(enum tm_corpus_layout l, uint32_t ps, uint64_t seed, size_t np)
{
	tm_geom g;
	uint8_t *p;

	assert_int_equal(tm_geom_mte(&g, ps, NULL), 0);
	p = malloc(np * tm_geom_packed_bytes(&g));
	assert_non_null(p);
	tm_corpus_fill(l, &g, seed, p, np);
	return p;
}

static void test_names(void **state)
{
	enum tm_corpus_layout l;

	(void)state;
	for (int i = 0; i < TM_CORPUS_NLAYOUTS; i++) {
		assert_int_equal(tm_corpus_parse(tm_corpus_name((enum tm_corpus_layout)i), &l), 0);
		assert_int_equal(l, i);
	}
	assert_string_equal(tm_corpus_name(TM_CORPUS_ONE_TAG), "one-tag");
	assert_string_equal(tm_corpus_name(TM_CORPUS_MIX), "mix");
	assert_int_equal(tm_corpus_parse("heap", &l), -EINVAL);
}

static void test_deterministic(void **state)
{
	(void)state;
	for (int l = 0; l < TM_CORPUS_NLAYOUTS; l++) {
		uint8_t *a = fill((enum tm_corpus_layout)l, 4096, 11, 64);
		uint8_t *b = fill((enum tm_corpus_layout)l, 4096, 11, 64);
		uint8_t *c = fill((enum tm_corpus_layout)l, 4096, 12, 64);
		uint8_t *d = fill((enum tm_corpus_layout)l, 4096, 11, 32);

		assert_memory_equal(a, b, 64 * 128);
		assert_memory_equal(a, d, 32 * 128); /* a prefix is the same corpus */
		if (l != TM_CORPUS_UNTAGGED)
			assert_memory_not_equal(a, c, 64 * 128);
		free(a);
		free(b);
		free(c);
		free(d);
	}
}

/* runs of one page in address order */
static size_t runs_of(const uint8_t *page, size_t items, unsigned *val, size_t *len)
{
	tm_run_iter it;
	size_t n = 0;

	tm_run_iter_init(&it, page, items, 4, false);
	while (tm_run_next(&it, &val[n], &len[n]))
		n++;
	return n;
}

static void test_untagged_and_one_tag(void **state)
{
	uint8_t *u = fill(TM_CORPUS_UNTAGGED, 16384, 1, 50);
	uint8_t *o = fill(TM_CORPUS_ONE_TAG, 16384, 1, NP);
	unsigned val[1024];
	size_t len[1024], seen = 0;

	(void)state;
	for (size_t i = 0; i < 50 * 512; i++)
		assert_int_equal(u[i], 0);
	for (size_t p = 0; p < NP; p++) {
		assert_int_equal(runs_of(o + p * 512, 1024, val, len), 1);
		assert_true(val[0] >= 1 && val[0] <= 15);
		seen |= 1u << val[0];
	}
	assert_int_equal(seen, 0xfffe); /* every non-zero tag shows up */
	free(u);
	free(o);
}

static void test_alloc_shape(void **state)
{
	uint8_t *a = fill(TM_CORPUS_ALLOC, 4096, 3, NP);
	unsigned val[256];
	size_t len[256], small = 0, big = 0, zero_chunks = 0, chunks = 0;

	(void)state;
	for (size_t p = 0; p < NP; p++) {
		size_t n = runs_of(a + p * 128, 256, val, len);
		size_t chunk = n > 2 ? len[1] : 0;

		/* neighbours differ, so runs are chunks; the middle ones all equal */
		for (size_t i = 1; i + 1 < n; i++)
			assert_int_equal(len[i], chunk);
		if (n > 2) {
			assert_true(len[0] <= chunk);
			assert_true(len[n - 1] <= chunk);
		}
		for (size_t i = 0; i < n; i++) {
			zero_chunks += val[i] == 0;
			chunks++;
		}
		if (n > 2 && chunk <= 4)
			small++;   /* chunks of <= 64 bytes */
		if (n <= 3)
			big++;     /* chunks of >= ~2 KiB */
	}
	/* log-uniform over 16..4096: <= 64 B is 1/4 of pages, >= 2 KiB ~1/8+ */
	assert_true(small > NP / 6 && small < NP / 3);
	assert_true(big > NP / 12 && big < NP / 3);
	/* about 1 chunk in 8 keeps tag 0 */
	assert_true(zero_chunks * 20 > chunks && zero_chunks * 5 < chunks);
	free(a);
}

static void test_random_uniform(void **state)
{
	uint8_t *r = fill(TM_CORPUS_RANDOM, 4096, 5, 256);
	size_t count[16] = { 0 };

	(void)state;
	for (size_t i = 0; i < 256 * 256; i++)
		count[tm_tag_get(r, i)]++;
	for (int v = 0; v < 16; v++)
		assert_true(count[v] > 4096 * 9 / 10 && count[v] < 4096 * 11 / 10);
	free(r);
}

static void test_mix_weights(void **state)
{
	uint8_t *m = fill(TM_CORPUS_MIX, 4096, 9, NP);
	unsigned val[256];
	size_t len[256], zero = 0, one = 0;

	(void)state;
	for (size_t p = 0; p < NP; p++) {
		size_t n = runs_of(m + p * 128, 256, val, len);

		if (n == 1 && val[0] == 0)
			zero++;
		else if (n == 1)
			one++;
	}
	/* 40 % untagged, 20 % one-tag (a whole-page alloc chunk is rare) */
	assert_true(zero > NP * 36 / 100 && zero < NP * 44 / 100);
	assert_true(one > NP * 16 / 100 && one < NP * 24 / 100);
	free(m);
}

static void test_generic_geometry(void **state)
{
	tm_geom g;
	uint8_t p[64 * 128];

	(void)state;
	/* 2 bits per 8 bytes: values 0..3, 512 items in 128 bytes */
	assert_int_equal(tm_geom_init(&g, TM_META_GENERIC, 4096, 8, 2, NULL), 0);
	tm_corpus_fill(TM_CORPUS_ONE_TAG, &g, 1, p, 64);
	for (size_t i = 0; i < 64; i++) {
		uint8_t b = p[i * 128];

		assert_true(b == 0x55 || b == 0xaa || b == 0xff);
		for (size_t k = 1; k < 128; k++)
			assert_int_equal(p[i * 128 + k], b);
	}
	tm_corpus_fill(TM_CORPUS_ALLOC, &g, 1, p, 64);
	/* no metadata: nothing is written */
	memset(p, 0x77, sizeof(p));
	assert_int_equal(tm_geom_init(&g, TM_META_NONE, 4096, 0, 0, NULL), 0);
	tm_corpus_fill(TM_CORPUS_RANDOM, &g, 1, p, 64);
	assert_int_equal(p[0], 0x77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_untagged_and_one_tag),
		cmocka_unit_test(test_alloc_shape),
		cmocka_unit_test(test_random_uniform),
		cmocka_unit_test(test_mix_weights),
		cmocka_unit_test(test_generic_geometry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
