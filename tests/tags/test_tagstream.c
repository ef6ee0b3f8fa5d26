/*
 * test_tagstream.c - the stream tag codec: exact bytes for a known block,
 * round trips for every layout, page size, geometry and flag, the size
 * guarantees, beating EA0 on the mix, and a decoder that refuses every
 * malformed block with -EBADMSG naming page and offset - without writing a
 * byte of output. Fuzz-style: every truncation and random byte flips of
 * real blocks must give an error or a valid decode, never a crash (run
 * under ASan with exactly-sized output buffers).
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

static tm_geom mte(uint32_t ps)
{
	tm_geom g;

	assert_int_equal(tm_geom_mte(&g, ps, NULL), 0);
	return g;
}

/* encode into an exactly-bounded heap buffer; returns it and its length */
static uint8_t *enc(const tm_geom *g, const uint8_t *p, size_t np, unsigned flags, size_t *len)
{
	size_t cap = tm_tagstream_bound(g, np);
	uint8_t *out = malloc(cap);
	tm_error e;

	assert_non_null(out);
	tm_error_clear(&e);
	assert_int_equal(tm_tagstream_encode(g, p, np, flags, out, cap, len, &e), 0);
	assert_true(*len <= cap);
	return out;
}

/* decode into an exactly-sized heap buffer (ASan sees any overrun) */
static int dec(const tm_geom *g, const uint8_t *in, size_t len, size_t np,
	       uint8_t **outp, tm_error *e)
{
	size_t n = np * tm_geom_packed_bytes(g);
	uint8_t *out = malloc(n ? n : 1);

	assert_non_null(out);
	memset(out, 0xee, n);
	int rc = tm_tagstream_decode(g, in, len, np, out, e);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			assert_int_equal(out[i], 0xee); /* nothing written on error */
	}
	*outp = out;
	return rc;
}

static void test_known_bytes(void **state)
{
	tm_geom g = mte(4096);
	uint8_t p[5 * 128], *out, *back;
	size_t len;
	tm_error e;

	(void)state;
	memset(p, 0, sizeof(p));                  /* page 0: zero */
	memset(p + 128, 0x55, 128);               /* page 1: one tag 5 */
	for (size_t i = 0; i < 256; i++)          /* page 2: 10 x 3, then 7 */
		tm_tag_set(p + 256, i, i < 10 ? 3 : 7);
	for (size_t i = 0; i < 128; i++)          /* page 3: raw */
		p[384 + i] = (uint8_t)(i * 37 + 1);
	for (size_t i = 0; i < 256; i++)          /* page 4: 4 chunks of 1 KiB */
		tm_tag_set(p + 512, i, (uint8_t)(1 + i / 64));
	out = enc(&g, p, 5, TM_TAGSTREAM_REGULAR, &len);
	const uint8_t head[] = {
		1, 0, 5,                 /* version, flags, npages */
		0xe4, 0x02,              /* classes 0,1,2,3 | 2, from the low bits */
		0x05,                    /* page 1: the value */
		0x00, 0x73, 0x09,        /* page 2: 2 runs, values 3|7<<4, length 10-1 */
	};
	const uint8_t tail[] = {
		0x05, 0x21, 0x43,        /* page 4: 4 runs, regular; values 1,2,3,4 */
		0x3f, 0x3f,              /* first length 64-1, period 64-1 */
	};
	assert_int_equal(len, sizeof(head) + 128 + sizeof(tail));
	assert_memory_equal(out, head, sizeof(head));
	assert_memory_equal(out + sizeof(head), p + 384, 128);
	assert_memory_equal(out + sizeof(head) + 128, tail, sizeof(tail));
	assert_int_equal(dec(&g, out, len, 5, &back, &e), 0);
	assert_memory_equal(back, p, sizeof(p));
	free(out);
	free(back);
	/* without the flag page 4 spells out its lengths: 0x04 = 4 runs, explicit */
	const uint8_t tail0[] = { 0x04, 0x21, 0x43, 0x3f, 0x3f, 0x3f };
	out = enc(&g, p, 5, 0, &len);
	assert_int_equal(len, sizeof(head) + 128 + sizeof(tail0));
	assert_memory_equal(out + sizeof(head) + 128, tail0, sizeof(tail0));
	assert_int_equal(tm_tagstream_page_min_bytes(&g, 4, 0), sizeof(tail0));
	assert_int_equal(tm_tagstream_page_min_bytes(&g, 4, TM_TAGSTREAM_REGULAR), sizeof(tail));
	assert_int_equal(tm_tagstream_page_min_bytes(&g, 1, 0), 0);
	assert_int_equal(tm_tagstream_page_min_bytes(&g, 256, 0), 128);
	free(out);
}

static void roundtrip(const tm_geom *g, const uint8_t *p, size_t np, unsigned flags)
{
	uint8_t *out, *back;
	size_t len, pb = tm_geom_packed_bytes(g);
	tm_error e;

	out = enc(g, p, np, flags, &len);
	/* no page costs more than its packed bytes plus its 2 class bits */
	assert_true(len <= 3 + 10 + 10 + (np + 3) / 4 + np * pb);
	tm_error_clear(&e);
	int rc = dec(g, out, len, np, &back, &e);
	if (rc)
		fail_msg("decode: %s", e.msg);
	assert_memory_equal(back, p, np * pb);
	free(out);
	free(back);
}

/* One context reused across blocks of growing and shrinking size, every
 * layout and flag combination: the same bytes as the context-less calls,
 * and decodes that give the tags back (the body buffer is regrown and
 * reused, so a stale or short buffer would show here under ASan). */
static void test_ctx_reuse_matches_plain(void **state)
{
	static const size_t nps[] = { 1, 67, 3, 128, 2, 40 };
	tm_geom g = mte(4096);
	size_t pb = tm_geom_packed_bytes(&g), cap = tm_tagstream_bound(&g, 128);
	uint8_t *p = malloc(128 * pb), *back = malloc(128 * pb);
	uint8_t *a = malloc(cap), *b = malloc(cap);
	tm_tagstream_ctx *c;
	tm_error e;

	(void)state;
	assert_int_equal(tm_tagstream_ctx_new(&c, &e), 0);
	for (int l = 0; l < TM_CORPUS_NLAYOUTS; l++) {
		tm_corpus_fill((enum tm_corpus_layout)l, &g, (uint64_t)l + 7, p, 128);
		for (int k = 0; k < 6; k++) {
			for (unsigned f = 0; f < 4; f++) {
				size_t la, lb;

				assert_int_equal(tm_tagstream_encode(&g, p, nps[k], f, a, cap, &la, &e), 0);
				assert_int_equal(tm_tagstream_encode_ctx(c, &g, p, nps[k], f, b, cap,
									 &lb, &e), 0);
				assert_int_equal(la, lb);
				assert_memory_equal(a, b, la);
				memset(back, 0xee, 128 * pb);
				assert_int_equal(tm_tagstream_decode_ctx(c, &g, b, lb, nps[k], back, &e), 0);
				assert_memory_equal(back, p, nps[k] * pb);
			}
		}
	}
	tm_tagstream_ctx_free(c);
	free(p);
	free(back);
	free(a);
	free(b);
}

static void test_roundtrip_layouts(void **state)
{
	static const uint32_t ps[] = { 4096, 16384, 65536 };
	static const size_t nps[] = { 0, 1, 2, 3, 5, 67 };

	(void)state;
	for (int s = 0; s < 3; s++) {
		tm_geom g = mte(ps[s]);
		uint8_t *p = malloc(67 * tm_geom_packed_bytes(&g));

		for (int l = 0; l < TM_CORPUS_NLAYOUTS; l++) {
			tm_corpus_fill((enum tm_corpus_layout)l, &g, (uint64_t)l + 1, p, 67);
			for (int k = 0; k < 6; k++)
				for (unsigned f = 0; f < 4; f++)
					roundtrip(&g, p, nps[k], f);
		}
		free(p);
	}
}

static void test_roundtrip_generic(void **state)
{
	static const struct { uint32_t gran, bits; } geo[] = {
		{ 16, 1 }, { 8, 2 }, { 32, 4 }, { 16, 8 }, { 4096, 8 }, { 512, 1 },
	};
	uint8_t p[40 * 512];

	(void)state;
	for (size_t k = 0; k < sizeof(geo) / sizeof(geo[0]); k++) {
		tm_geom g;

		assert_int_equal(tm_geom_init(&g, TM_META_GENERIC, 4096, geo[k].gran, geo[k].bits, NULL), 0);
		for (int l = 0; l < TM_CORPUS_NLAYOUTS; l++) {
			tm_corpus_fill((enum tm_corpus_layout)l, &g, 3, p, 40);
			for (unsigned f = 0; f < 4; f++)
				roundtrip(&g, p, 40, f);
		}
	}
	/* no metadata: pages are all class zero */
	tm_geom none;
	uint8_t out[64];
	size_t len;
	assert_int_equal(tm_geom_init(&none, TM_META_NONE, 4096, 0, 0, NULL), 0);
	assert_int_equal(tm_tagstream_encode(&none, p, 9, 0, out, sizeof(out), &len, NULL), 0);
	assert_int_equal(len, 3 + 3);
	assert_int_equal(tm_tagstream_decode(&none, out, len, 9, p, NULL), 0);
}

static void test_beats_ea0_on_mix(void **state)
{
	tm_geom g = mte(4096);
	size_t np = 2048, len, nin;
	uint8_t *p = malloc(np * 128), *out;

	(void)state;
	tm_corpus_fill(TM_CORPUS_MIX, &g, 42, p, np);
	size_t ea0 = tm_ea0_storage_bytes(4096, p, np, &nin);
	out = enc(&g, p, np, 0, &len);
	size_t len_r;
	uint8_t *out_r = enc(&g, p, np, TM_TAGSTREAM_REGULAR, &len_r);
	printf("# mix, %zu pages: raw %zu B, EA0 %zu B (%zu inline), stream %zu B, "
	       "regular %zu B\n", np, np * 128, ea0, nin, len, len_r);
	assert_true(nin > 0 && nin < np);
	/* 8 B per inline handle, 128 B raw + 8 B slot per other page */
	assert_int_equal(ea0, nin * 8 + (np - nin) * 136);
	assert_true(len < ea0);
	assert_true(len_r < len);
	free(out);
	free(out_r);
	free(p);
}

static void test_enospc(void **state)
{
	tm_geom g = mte(4096);
	uint8_t p[8 * 128], out[200];
	size_t len;
	tm_error e;

	(void)state;
	tm_corpus_fill(TM_CORPUS_RANDOM, &g, 1, p, 8);
	assert_int_equal(tm_tagstream_encode(&g, p, 8, 0, out, sizeof(out), &len, &e), -ENOSPC);
	assert_non_null(strstr(e.msg, "page 1"));
	assert_int_equal(tm_tagstream_encode(&g, p, 8, TM_TAGSTREAM_ZSTD, out, sizeof(out), &len, &e),
			 -ENOSPC);
	assert_int_equal(tm_tagstream_encode(&g, p, 8, 0x80, out, sizeof(out), &len, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "flags 0x80"));
}

/* a hand-made block: header + body bytes */
static int dec_bytes(const uint8_t *b, size_t n, size_t np, tm_error *e)
{
	tm_geom g = mte(4096);
	uint8_t *out;
	int rc;

	tm_error_clear(e);
	rc = dec(&g, b, n, np, &out, e);
	free(out);
	return rc;
}

static void expect_bad(const uint8_t *b, size_t n, size_t np, const char *needle)
{
	tm_error e;

	assert_int_equal(dec_bytes(b, n, np, &e), -EBADMSG);
	assert_int_equal(e.code, -EBADMSG);
	if (!strstr(e.msg, needle))
		fail_msg("message '%s' lacks '%s'", e.msg, needle);
}

static void test_decoder_rejects(void **state)
{
	tm_error e;

	(void)state;
	{ const uint8_t b[] = { 1, 0, 1, 0x01, 0x05 };      /* one page, tag 5 */
	  assert_int_equal(dec_bytes(b, sizeof(b), 1, &e), 0); }
	{ const uint8_t b[] = { 2, 0, 1, 0x00 };
	  expect_bad(b, sizeof(b), 1, "version 2"); }
	{ const uint8_t b[] = { 1, 4, 1, 0x00 };
	  expect_bad(b, sizeof(b), 1, "flags"); }
	{ const uint8_t b[] = { 1, 0, 2, 0x00 };
	  expect_bad(b, sizeof(b), 1, "holds 2 pages"); }
	{ const uint8_t b[] = { 1, 0, 0x81, 0x00, 0x00 };   /* non-minimal varint */
	  expect_bad(b, sizeof(b), 1, "malformed page count"); }
	{ const uint8_t b[] = { 1, 0, 1 };
	  expect_bad(b, sizeof(b), 1, "class bytes"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x04 };            /* class bits of page 1 */
	  expect_bad(b, sizeof(b), 1, "unused class bits"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x01, 0x00 };
	  expect_bad(b, sizeof(b), 1, "value 0"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x01, 0x10 };
	  expect_bad(b, sizeof(b), 1, "value 16"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x01 };
	  expect_bad(b, sizeof(b), 1, "truncated"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x00, 0x00 };
	  expect_bad(b, sizeof(b), 1, "1 trailing bytes"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x02, 0x00, 0x33, 0x09 };  /* same values */
	  expect_bad(b, sizeof(b), 1, "same value"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x02, 0x02, 0x73, 0x12, 0x09, 0x09 };  /* padding */
	  expect_bad(b, sizeof(b), 1, "padding nibble"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x02, 0x00, 0x73, 0xff, 0x01 };  /* 256 long */
	  expect_bad(b, sizeof(b), 1, "leaves nothing"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x02, 0x00, 0x73 };
	  expect_bad(b, sizeof(b), 1, "truncated length of run 0"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x02, 0xfe, 0x03 };  /* 257 runs */
	  expect_bad(b, sizeof(b), 1, "257 runs"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x03, 1, 2, 3 };
	  expect_bad(b, sizeof(b), 1, "raw page needs 128"); }
	/* regular form: 3,7,3 with lengths 10, 20 and the rest */
	{ const uint8_t b[] = { 1, 0, 1, 0x02, 0x03, 0x73, 0x03, 0x09, 0x13 };
	  tm_geom g = mte(4096);
	  uint8_t *out;
	  assert_int_equal(dec(&g, b, sizeof(b), 1, &out, &e), 0);
	  assert_int_equal(tm_tag_get(out, 9), 3);
	  assert_int_equal(tm_tag_get(out, 10), 7);
	  assert_int_equal(tm_tag_get(out, 29), 7);
	  assert_int_equal(tm_tag_get(out, 30), 3);
	  assert_int_equal(tm_tag_get(out, 255), 3);
	  free(out); }
	{ const uint8_t b[] = { 1, 0, 1, 0x02, 0x01, 0x73 };
	  expect_bad(b, sizeof(b), 1, "regular form with 2 runs"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x02, 0x05, 0x73, 0x73, 0x63, 0x63 };
	  expect_bad(b, sizeof(b), 1, "leave nothing"); }
	{ const uint8_t b[] = { 1, 0, 1, 0x02, 0x03, 0x73, 0x03, 0x09 };
	  expect_bad(b, sizeof(b), 1, "truncated period of run 1"); }
	/* page index and stream offset are named */
	{ const uint8_t b[] = { 1, 0, 3, 0x10, 0x01 };      /* page 2: one, value 1... */
	  assert_int_equal(dec_bytes(b, sizeof(b), 3, &e), 0); }
	{ const uint8_t b[] = { 1, 0, 3, 0x10, 0x11 };
	  expect_bad(b, sizeof(b), 3, "page 2, byte 4"); }
	/* zstd body: announced length, trailing bytes, garbage frame */
	{ const uint8_t b[] = { 1, 1, 1, 0xff, 0x01, 0x28, 0xb5, 0x2f, 0xfd };
	  expect_bad(b, sizeof(b), 1, "body length 255 exceeds"); }
	{ const uint8_t b[] = { 1, 1, 1, 1, 0x00, 0x01, 0x02 };
	  expect_bad(b, sizeof(b), 1, "zstd frame"); }
}

static void test_zstd_errors_name_body(void **state)
{
	tm_geom g = mte(4096);
	uint8_t p[64 * 128], *out, *back;
	size_t len;
	tm_error e;

	(void)state;
	memset(p, 0x11, sizeof(p)); /* compresses well: zstd is used */
	out = enc(&g, p, 64, TM_TAGSTREAM_ZSTD, &len);
	assert_int_equal(out[1], 1);
	assert_int_equal(dec(&g, out, len, 64, &back, &e), 0);
	assert_memory_equal(back, p, sizeof(p));
	free(back);
	/* trailing garbage after the frame */
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, out, len);
	longer[len] = 0;
	assert_int_equal(dec(&g, longer, len + 1, 64, &back, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "trailing"));
	free(back);
	free(longer);
	free(out);
}

/* Every truncation of real blocks fails cleanly. */
static void test_every_truncation(void **state)
{
	tm_geom g = mte(4096);
	uint8_t p[24 * 128], *out, *back;
	size_t len;
	tm_error e;

	(void)state;
	for (unsigned flags = 0; flags < 4; flags++) {
		tm_corpus_fill(TM_CORPUS_MIX, &g, 77 + flags, p, 24);
		out = enc(&g, p, 24, flags, &len);
		for (size_t n = 0; n < len; n++) {
			uint8_t *cut = malloc(n ? n : 1);

			memcpy(cut, out, n);
			assert_int_equal(dec(&g, cut, n, 24, &back, &e), -EBADMSG);
			assert_non_null(strstr(e.msg, "tag stream"));
			free(back);
			free(cut);
		}
		free(out);
	}
}

/* Random byte flips: an error or a valid decode that re-encodes cleanly. */
static void test_fuzz_flips(void **state)
{
	static const uint32_t ps[] = { 4096, 16384, 65536 };
	size_t ok = 0, bad = 0;
	tm_rng r;

	(void)state;
	tm_rng_seed(&r, 2024);
	for (int round = 0; round < 600; round++) {
		tm_geom g = mte(ps[round % 3]);
		size_t np = 1 + tm_rng_below(&r, 12), pb = tm_geom_packed_bytes(&g);
		uint8_t *p = malloc(np * pb), *out, *back;
		unsigned flags = (unsigned)tm_rng_below(&r, 4);
		size_t len;
		tm_error e;

		tm_corpus_fill(TM_CORPUS_MIX, &g, (uint64_t)round, p, np);
		out = enc(&g, p, np, flags, &len);
		int flips = 1 + (int)tm_rng_below(&r, 3);
		for (int f = 0; f < flips; f++)
			out[tm_rng_below(&r, len)] ^= (uint8_t)(1 + tm_rng_below(&r, 255));
		size_t cut = tm_rng_below(&r, 4) == 0 ? tm_rng_below(&r, len + 1) : len;
		if (dec(&g, out, cut, np, &back, &e) == 0) {
			ok++;
			/* whatever decoded is a real set of tags: it round-trips */
			roundtrip(&g, back, np, 0);
		} else {
			bad++;
			assert_int_equal(e.code, -EBADMSG);
		}
		free(back);
		free(out);
		free(p);
	}
	printf("# fuzz: %zu corrupted blocks rejected, %zu still decoded\n", bad, ok);
	assert_true(bad > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_bytes),
		cmocka_unit_test(test_roundtrip_layouts),
		cmocka_unit_test(test_ctx_reuse_matches_plain),
		cmocka_unit_test(test_roundtrip_generic),
		cmocka_unit_test(test_beats_ea0_on_mix),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_decoder_rejects),
		cmocka_unit_test(test_zstd_errors_name_body),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_fuzz_flips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
