/*
 * test_tagstore.c - the swap tag store: every corpus layout round-trips
 * through its value at 4/16/64 KiB pages; values pick EA0 inline when the
 * tags fit and otherwise the smaller of stream record and raw; the store
 * is keyed by slot (put/peek/take, no double insert); invalidating a range
 * releases exactly that range; the per-class statistics add up; a batch
 * take reuses its peek's index cells only while they are still valid; EA0
 * inlining is decided in EA0's own nibble order.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <Judy.h>

#include "common/util.h"
#include "swap/tagstore.h"
#include "tagmem/tags.h"

static const uint32_t page_sizes[] = { 4096, 16384, 65536 };

static void test_roundtrip_every_layout_and_page_size(void **state)
{
	(void)state;
	for (unsigned s = 0; s < 3; s++) {
		struct tm_tagstore ts;
		tm_error err;
		const size_t npages = 64;

		assert_int_equal(tm_tagstore_init(&ts, page_sizes[s], &err), 0);
		size_t pk = ts.packed;
		uint8_t *tags = malloc(npages * pk), *back = malloc(pk);

		assert_int_equal(pk, page_sizes[s] / 32);
		for (unsigned l = 0; l < TM_CORPUS_NLAYOUTS; l++) {
			tm_corpus_fill((enum tm_corpus_layout)l, &ts.geom, 100 + l,
				       tags, npages);
			for (size_t i = 0; i < npages; i++) {
				uint64_t val;

				assert_int_equal(tm_ts_value_make(&ts, tags + i * pk, &val, &err), 0);
				memset(back, 0xAA, pk);
				assert_int_equal(tm_ts_value_decode(&ts, val, back, &err), 0);
				assert_memory_equal(back, tags + i * pk, pk);
				/* Never bigger than raw (+ the index word). */
				assert_true(tm_ts_value_bytes(&ts, val) <= 8 + pk);
				tm_ts_value_free(val);
			}
		}
		free(tags);
		free(back);
		tm_tagstore_fini(&ts);
	}
}

static void test_class_choice(void **state)
{
	struct tm_tagstore ts;
	uint8_t tags[128];
	uint64_t val, handle;
	tm_error err;

	(void)state;
	assert_int_equal(tm_tagstore_init(&ts, 4096, &err), 0);
	/* Zero and one-tag pages fit EA0 inline: no allocation. */
	memset(tags, 0, sizeof(tags));
	assert_int_equal(tm_ts_value_make(&ts, tags, &val, &err), 0);
	assert_int_equal(tm_ts_value_class(val), TM_TS_INLINE);
	assert_int_equal(tm_ts_value_bytes(&ts, val), 8);
	assert_int_equal(tm_ea0_compress(4096, tags, &handle, NULL), 0);
	assert_int_equal(val, handle);
	memset(tags, 0x55, sizeof(tags));
	assert_int_equal(tm_ts_value_make(&ts, tags, &val, &err), 0);
	assert_int_equal(tm_ts_value_class(val), TM_TS_INLINE);
	/* Seven runs do not fit inline (at most 6 at 4 KiB); the stream codec
	 * holds them in far less than 128 bytes. */
	memset(tags, 0, sizeof(tags));
	for (unsigned i = 0; i < 7; i++)
		for (unsigned g = i * 30; g < i * 30 + 30; g++)
			tm_tag_set(tags, g, (uint8_t)(i + 1));
	assert_int_equal(tm_ea0_compress(4096, tags, &handle, NULL), -E2BIG);
	assert_int_equal(tm_ts_value_make(&ts, tags, &val, &err), 0);
	enum tm_tagstore_class c = tm_ts_value_class(val);

	assert_true(c >= TM_TS_STREAM_16 && c <= TM_TS_STREAM_64);
	assert_true(tm_ts_value_bytes(&ts, val) < 8 + 128);
	tm_ts_value_free(val);
	/* Random tags: stream cannot beat raw, raw 128 B is kept. */
	tm_corpus_fill(TM_CORPUS_RANDOM, &ts.geom, 5, tags, 1);
	assert_int_equal(tm_ts_value_make(&ts, tags, &val, &err), 0);
	assert_int_equal(tm_ts_value_class(val), TM_TS_RAW);
	assert_int_equal(tm_ts_value_bytes(&ts, val), 8 + 128);
	tm_ts_value_free(val);
	tm_tagstore_fini(&ts);
}

static void test_put_peek_take(void **state)
{
	struct tm_tagstore ts;
	uint8_t tags[128], back[128];
	uint64_t val, got;
	tm_error err;

	(void)state;
	assert_int_equal(tm_tagstore_init(&ts, 4096, &err), 0);
	tm_corpus_fill(TM_CORPUS_RANDOM, &ts.geom, 9, tags, 1);
	assert_int_equal(tm_ts_value_make(&ts, tags, &val, &err), 0);
	assert_false(tm_tagstore_has(&ts, 1234));
	assert_int_equal(tm_tagstore_put(&ts, 1234, val, &err), 0);
	assert_true(tm_tagstore_has(&ts, 1234));
	assert_int_equal(tm_tagstore_put(&ts, 1234, val, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "1234"));
	assert_true(tm_tagstore_peek(&ts, 1234, &got));
	assert_int_equal(got, val);
	assert_true(tm_tagstore_has(&ts, 1234));
	assert_true(tm_tagstore_take(&ts, 1234, &got));
	assert_false(tm_tagstore_has(&ts, 1234));
	assert_false(tm_tagstore_take(&ts, 1234, &got));
	assert_int_equal(tm_ts_value_decode(&ts, val, back, &err), 0);
	assert_memory_equal(back, tags, 128);
	tm_ts_value_free(val);
	tm_tagstore_fini(&ts);
}

static void test_invalidate_range_and_stats(void **state)
{
	struct tm_tagstore ts;
	tm_tagstore_stats st;
	const size_t n = 300;
	uint8_t *tags = malloc(n * 128);
	uint64_t bytes_all = 0, bytes_mid = 0, cnt = 0, released = 0;
	uint64_t per_class[TM_TS_NCLASSES] = { 0 };
	tm_error err;

	(void)state;
	assert_int_equal(tm_tagstore_init(&ts, 4096, &err), 0);
	tm_corpus_fill(TM_CORPUS_MIX, &ts.geom, 77, tags, n);
	/* Sparse keys: slots 1000, 1003, 1006, ... */
	for (size_t i = 0; i < n; i++) {
		uint64_t val, slot = 1000 + 3 * i;

		assert_int_equal(tm_ts_value_make(&ts, tags + i * 128, &val, &err), 0);
		assert_int_equal(tm_tagstore_put(&ts, slot, val, &err), 0);
		bytes_all += tm_ts_value_bytes(&ts, val);
		per_class[tm_ts_value_class(val)]++;
		if (slot >= 1100 && slot <= 1200)
			bytes_mid += tm_ts_value_bytes(&ts, val);
	}
	tm_tagstore_get_stats(&ts, &st);
	assert_int_equal(st.entries, n);
	assert_int_equal(st.bytes_used, bytes_all);
	assert_int_equal(st.bytes_uncompressed, n * 128);
	assert_true(st.index_bytes > 0);
	for (unsigned c = 0; c < TM_TS_NCLASSES; c++) {
		assert_int_equal(st.allocs[c], per_class[c]);
		assert_int_equal(st.live[c], per_class[c]);
	}
	/* The mix has inline, stream and raw values. */
	assert_true(per_class[TM_TS_INLINE] > 0);
	assert_true(per_class[TM_TS_RAW] > 0);
	tm_tagstore_invalidate(&ts, 1100, 1200, &cnt, &released);
	/* 1102, 1105, ..., 1198: 33 slots */
	assert_int_equal(cnt, 33);
	assert_int_equal(released, bytes_mid);
	assert_false(tm_tagstore_has(&ts, 1102));
	assert_true(tm_tagstore_has(&ts, 1099));
	assert_true(tm_tagstore_has(&ts, 1201));
	tm_tagstore_get_stats(&ts, &st);
	assert_int_equal(st.entries, n - 33);
	assert_int_equal(st.bytes_used, bytes_all - bytes_mid);
	cnt = 0;
	tm_tagstore_invalidate(&ts, 0, UINT64_MAX, &cnt, NULL);
	assert_int_equal(cnt, n - 33);
	tm_tagstore_get_stats(&ts, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes_used, 0);
	for (unsigned c = 0; c < TM_TS_NCLASSES; c++)
		assert_int_equal(st.frees[c], per_class[c]);
	free(tags);
	tm_tagstore_fini(&ts);
}

static void test_corrupt_record_is_refused(void **state)
{
	struct tm_tagstore ts;
	uint8_t tags[128], back[128];
	uint64_t val;
	tm_error err;

	(void)state;
	assert_int_equal(tm_tagstore_init(&ts, 4096, &err), 0);
	memset(tags, 0, sizeof(tags));
	for (unsigned i = 0; i < 9; i++)
		tm_tag_set(tags, i * 20, (uint8_t)(i + 1));
	assert_int_equal(tm_ts_value_make(&ts, tags, &val, &err), 0);
	assert_int_not_equal(tm_ts_value_class(val), TM_TS_INLINE);
	assert_int_not_equal(tm_ts_value_class(val), TM_TS_RAW);
	uint8_t *rec = (uint8_t *)(uintptr_t)(val & ~(uint64_t)0xF);

	rec[0] = 0xFF;  /* length beyond the record's class */
	rec[1] = 0x7F;
	assert_int_equal(tm_ts_value_decode(&ts, val, back, &err), -EBADMSG);
	tm_ts_value_free(val);
	tm_tagstore_fini(&ts);
}

/* The shortcuts (one-tag pages, run counting, skipping stream encodes that
 * cannot beat raw) must choose exactly what the plain rule would. */
static void test_shortcuts_match_plain_rule(void **state)
{
	(void)state;
	for (unsigned s = 0; s < 3; s++) {
		struct tm_tagstore ts;
		tm_error err;
		const size_t npages = 400;

		assert_int_equal(tm_tagstore_init(&ts, page_sizes[s], &err), 0);
		size_t pk = ts.packed;
		uint8_t *tags = calloc(npages, pk), back[2048], enc[4096];
		tm_rng rng;

		tm_rng_seed(&rng, 5 + s);
		/* k runs with random boundaries (odd granules, word edges). */
		for (size_t i = 0; i < npages; i++) {
			uint8_t *pg = tags + i * pk;
			size_t g = tm_geom_granules(&ts.geom), k = 1 + i % 60;
			uint8_t tag = (uint8_t)tm_rng_below(&rng, 16);

			for (size_t j = 0, b = 0; j < g; j++) {
				if (b < k - 1 && tm_rng_below(&rng, g / k + 1) == 0) {
					tag = (uint8_t)((tag + 1 + tm_rng_below(&rng, 15)) & 0xF);
					b++;
				}
				tm_tag_set(pg, j, tag);
			}
		}
		tm_corpus_fill(TM_CORPUS_ALLOC, &ts.geom, 9, tags + (npages - 100) * pk, 100);
		for (size_t i = 0; i < npages; i++) {
			const uint8_t *pg = tags + i * pk;
			uint64_t val, h;
			size_t len;
			bool fits = tm_ea0_compress(page_sizes[s], pg, &h, NULL) == 0;

			assert_int_equal(tm_ts_value_make(&ts, pg, &val, &err), 0);
			assert_int_equal(tm_ts_value_class(val) == TM_TS_INLINE, fits);
			if (fits)
				assert_int_equal(val, h);
			assert_int_equal(tm_ts_value_decode(&ts, val, back, &err), 0);
			assert_memory_equal(back, pg, pk);
			/* Never raw when a stream record would have been smaller. */
			assert_int_equal(tm_tagstream_encode(&ts.geom, pg, 1, 0, enc, sizeof(enc),
							     &len, &err), 0);
			size_t cls = 16;

			while (cls < len + 2)
				cls <<= 1;
			if (!fits && cls < pk && cls <= 1024)
				assert_int_equal(tm_ts_value_bytes(&ts, val), 8 + cls);
			tm_ts_value_free(val);
		}
		/* Every one-tag page is the EA0 handle tm_ea0_compress gives. */
		for (unsigned t = 0; t < 16; t++) {
			uint64_t val, h;

			memset(tags, (int)(t * 0x11), pk);
			assert_int_equal(tm_ea0_compress(page_sizes[s], tags, &h, NULL), 0);
			assert_int_equal(tm_ts_value_make(&ts, tags, &val, &err), 0);
			assert_int_equal(val, h);
			memset(back, 0xEE, pk);
			assert_int_equal(tm_ts_value_decode(&ts, val, back, &err), 0);
			assert_memory_equal(back, tags, pk);
		}
		free(tags);
		tm_tagstore_fini(&ts);
	}
}

static void test_put_batch_all_or_nothing(void **state)
{
	struct tm_tagstore ts;
	uint8_t tags[128];
	uint64_t vals[8] = { 0 }, old, got;
	tm_tagstore_stats st;
	tm_error err;

	(void)state;
	assert_int_equal(tm_tagstore_init(&ts, 4096, &err), 0);
	tm_corpus_fill(TM_CORPUS_RANDOM, &ts.geom, 1, tags, 1);
	assert_int_equal(tm_ts_value_make(&ts, tags, &old, &err), 0);
	assert_int_equal(tm_tagstore_put(&ts, 105, old, &err), 0);
	for (int i = 1; i < 8; i += 2)
		assert_int_equal(tm_ts_value_make(&ts, tags, &vals[i], &err), 0);
	/* Slot 105 (index 5) is taken: nothing of the batch goes in. */
	assert_int_equal(tm_tagstore_put_batch(&ts, 100, 8, vals, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "105"));
	assert_false(tm_tagstore_has(&ts, 101));
	assert_false(tm_tagstore_has(&ts, 103));
	assert_true(tm_tagstore_peek(&ts, 105, &got));
	assert_int_equal(got, old);
	tm_tagstore_get_stats(&ts, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes_used, 8 + 128);
	/* Elsewhere the same batch goes in whole. */
	assert_int_equal(tm_tagstore_put_batch(&ts, 200, 8, vals, &err), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(tm_tagstore_has(&ts, 200 + (uint64_t)i), i % 2 == 1);
	tm_tagstore_get_stats(&ts, &st);
	assert_int_equal(st.entries, 5);
	tm_tagstore_fini(&ts);
}

/* Erased cells stay as tombstones for reuse and are swept once there are
 * more than 65536 and twice the live entries: the index never grows
 * without bound, and a tombstone is never mistaken for a value. */
static void test_tombstones(void **state)
{
	struct tm_tagstore ts;
	tm_tagstore_stats st, empty;
	uint8_t tags[128];
	uint64_t val, got, n = 0;
	tm_error err;

	(void)state;
	assert_int_equal(tm_tagstore_init(&ts, 4096, &err), 0);
	tm_tagstore_get_stats(&ts, &empty);
	memset(tags, 0x33, sizeof(tags));
	assert_int_equal(tm_ts_value_make(&ts, tags, &val, &err), 0);
	assert_int_equal(tm_tagstore_put(&ts, 7, val, &err), 0);
	assert_true(tm_tagstore_take(&ts, 7, &got));
	assert_false(tm_tagstore_has(&ts, 7));
	assert_false(tm_tagstore_peek(&ts, 7, &got));
	assert_false(tm_tagstore_take(&ts, 7, &got));
	assert_int_equal(ts.tombs, 1);
	assert_int_equal(tm_tagstore_put(&ts, 7, val, &err), 0);   /* reused */
	assert_int_equal(ts.tombs, 0);
	assert_int_equal(tm_tagstore_put(&ts, 7, val, &err), -EEXIST);
	/* 300000 inserts of distinct slots, nine in ten taken again: swept
	 * along the way, never more dead cells than the bound. */
	uint64_t kept = 1, most = 0, sweeps = 0, before;

	for (uint64_t s = 1000; s < 301000; s++) {
		assert_int_equal(tm_tagstore_put(&ts, s, val, &err), 0);
		before = ts.tombs;
		if (s % 10)
			assert_true(tm_tagstore_take(&ts, s, &got));
		else
			kept++;
		sweeps += ts.tombs < before;
		assert_true(ts.tombs <= 65537 || ts.tombs <= 2 * kept + 1);
		if (ts.tombs > most)
			most = ts.tombs;
	}
	tm_tagstore_get_stats(&ts, &st);
	assert_int_equal(st.entries, kept);
	assert_true(sweeps > 0);
	assert_true(most < 300000 * 9 / 10);
	/* invalidate counts values, not tombstones, and removes both */
	tm_tagstore_invalidate(&ts, 0, UINT64_MAX, &n, NULL);
	assert_int_equal(n, st.entries);
	assert_int_equal(ts.tombs, 0);
	tm_tagstore_get_stats(&ts, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.index_bytes, empty.index_bytes);
	tm_tagstore_fini(&ts);
}

/* A take reuses the cells its peek found only while the index layout is
 * unchanged: after new keys (Judy moves cells) or deletions it looks the
 * slots up again, and still hands over exactly the stored values. */
static void test_batch_cells_reuse(void **state)
{
	enum { N = 256, FIRST = 1000 };
	static struct tm_ts_cells cells;
	struct tm_tagstore ts;
	uint64_t vals[N], got[N];
	bool want[N];
	tm_error err;
	uint8_t *tags;

	(void)state;
	assert_int_equal(tm_tagstore_init(&ts, 4096, &err), 0);
	tags = malloc(N * ts.packed);
	tm_corpus_fill(TM_CORPUS_ALLOC, &ts.geom, 9, tags, N);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < N; i++) {
			assert_int_equal(tm_ts_value_make(&ts, tags + i * ts.packed, &vals[i], &err), 0);
			want[i] = i % 7 != 3;
		}
		assert_int_equal(tm_tagstore_put_batch(&ts, FIRST, N, vals, &err), 0);
		tm_tagstore_peek_batch(&ts, FIRST, N, want, got, &cells);
		for (size_t i = 0; i < N; i++)
			if (want[i])
				assert_true(got[i] == vals[i]);
		if (round == 1) {
			/* many new keys around the batch: the index is rebuilt */
			for (uint64_t s = 0; s < 20000; s++)
				if (s < FIRST || s >= FIRST + N)
					assert_int_equal(tm_tagstore_put(&ts, s, ts.uniform[1], &err), 0);
			/* (the test is only worth something if cells did move) */
			size_t moved = 0;

			for (size_t i = 0; i < N; i++)
				moved += want[i] &&
					 JudyLGet(ts.judy, FIRST + i, PJE0) != (PPvoid_t)cells.cell[i];
			assert_true(moved > 0);
		}
		if (round == 2) {
			uint64_t n = 0;

			/* deleted meanwhile (swapoff): nothing to take there */
			tm_tagstore_invalidate(&ts, FIRST, FIRST + 9, &n, NULL);
			assert_int_equal(n, 10);
		}
		memset(got, 0, sizeof(got));
		tm_tagstore_take_batch(&ts, FIRST, N, want, got, &cells);
		for (size_t i = 0; i < N; i++) {
			bool gone = round == 2 && i < 10;

			if (!want[i] || gone) {
				assert_true(got[i] == 0 || !want[i]);
				continue;
			}
			assert_true(got[i] == vals[i]);
			assert_false(tm_tagstore_has(&ts, FIRST + i));
			tm_ts_value_free(got[i]);
		}
		/* the unwanted slots kept their values */
		for (size_t i = 0; i < N; i++) {
			if (want[i] || (round == 2 && i < 10))
				continue;
			assert_true(tm_tagstore_take(&ts, FIRST + i, &got[i]));
			assert_true(got[i] == vals[i]);
			tm_ts_value_free(got[i]);
		}
	}
	free(tags);
	tm_tagstore_fini(&ts);
}

/* EA0 counts ranges high nibble first in each byte (the kernel's order),
 * the stream codec low nibble first (address order). A page whose runs all
 * start at odd granules has three times more address-order runs than EA0
 * ranges: it must still be stored inline when EA0 takes it, at every page
 * size; one EA0 range more and it must not be. */
static void test_ea0_order_decides_inline(void **state)
{
	(void)state;
	for (unsigned s = 0; s < 3; s++) {
		struct tm_tagstore ts;
		uint8_t pg[2048], back[2048];
		tm_error err;
		uint64_t val, h;

		assert_int_equal(tm_tagstore_init(&ts, page_sizes[s], &err), 0);
		unsigned max_inline = tm_ea0_max_inline_ranges(page_sizes[s]);

		for (unsigned extra = 0; extra < 2; extra++) {
			unsigned ranges = max_inline + extra;
			size_t step = ts.packed / ranges;

			assert_true(max_inline >= 2 && ranges <= 15);
			/* range r has tag r + 1; the byte where it starts holds the
			 * previous tag in its high nibble (granule 2j + 1) and its own
			 * in the low one (granule 2j): the run starts at 2j in EA0
			 * order, and in address order the tags go new, old, new. */
			for (size_t j = 0; j < ts.packed; j++) {
				size_t r = j / step < ranges ? j / step : ranges - 1;
				uint8_t t = (uint8_t)(r + 1);

				pg[j] = (uint8_t)(t * 0x11);
				if (r > 0 && j == r * step)
					pg[j] = (uint8_t)((r << 4) | t);
			}
			bool fits = tm_ea0_compress(page_sizes[s], pg, &h, NULL) == 0;

			assert_int_equal(fits, extra == 0);
			assert_int_equal(tm_ts_value_make(&ts, pg, &val, &err), 0);
			assert_int_equal(tm_ts_value_class(val) == TM_TS_INLINE, fits);
			if (fits)
				assert_true(val == h);
			assert_int_equal(tm_ts_value_decode(&ts, val, back, &err), 0);
			assert_memory_equal(back, pg, ts.packed);
			tm_ts_value_free(val);
		}
		tm_tagstore_fini(&ts);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_layout_and_page_size),
		cmocka_unit_test(test_class_choice),
		cmocka_unit_test(test_put_peek_take),
		cmocka_unit_test(test_invalidate_range_and_stats),
		cmocka_unit_test(test_corrupt_record_is_refused),
		cmocka_unit_test(test_shortcuts_match_plain_rule),
		cmocka_unit_test(test_put_batch_all_or_nothing),
		cmocka_unit_test(test_tombstones),
		cmocka_unit_test(test_batch_cells_reuse),
		cmocka_unit_test(test_ea0_order_decides_inline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
