/*
 * test_tagstore.c - the swap tag store: every corpus layout round-trips
 * through its value at 4/16/64 KiB pages; values pick EA0 inline when the
 * tags fit and otherwise the smaller of stream record and raw; the store
 * is keyed by slot (put/peek/drop, no double insert) across 64-slot
 * leaves; invalidating a range releases exactly that range; the per-class
 * statistics add up; a batch goes in whole or not at all; emptied leaves
 * and slab blocks are given back; EA0 inlining is decided in EA0's own
 * nibble order.
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

#include "common/util.h"
#include "swap/tagstore.h"
#include "tagmem/tags.h"

static const uint32_t page_sizes[] = { 4096, 16384, 65536 };

/* The value the store keeps for one page's tags: its record stored under
 * slot, the word read back (the caller drops it). */
static uint64_t value_at(struct tm_tagstore *ts, uint64_t slot, const uint8_t *tags)
{
	uint8_t scratch[TM_PAGE_SIZE_MAX / 32];
	struct tm_ts_rec rec;
	tm_error err;

	tm_ts_rec_make(ts, tags, scratch, &rec);
	assert_int_equal(tm_tagstore_put(ts, slot, &rec, &err), 0);
	return tm_tagstore_peek(ts, slot);
}

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

				val = value_at(&ts, 77, tags + i * pk);
				memset(back, 0xAA, pk);
				assert_int_equal(tm_ts_value_decode(&ts, val, back, &err), 0);
				assert_memory_equal(back, tags + i * pk, pk);
				/* Never bigger than raw (+ the index word). */
				assert_true(tm_ts_value_bytes(&ts, val) <= 8 + pk);
				assert_true(tm_tagstore_drop(&ts, 77));
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
	val = value_at(&ts, 1, tags);
	assert_int_equal(tm_ts_value_class(val), TM_TS_INLINE);
	assert_int_equal(tm_ts_value_bytes(&ts, val), 8);
	assert_int_equal(tm_ea0_compress(4096, tags, &handle, NULL), 0);
	assert_int_equal(val, handle);
	memset(tags, 0x55, sizeof(tags));
	val = value_at(&ts, 2, tags);
	assert_int_equal(tm_ts_value_class(val), TM_TS_INLINE);
	/* Seven runs do not fit inline (at most 6 at 4 KiB); the stream codec
	 * holds them in far less than 128 bytes. */
	memset(tags, 0, sizeof(tags));
	for (unsigned i = 0; i < 7; i++)
		for (unsigned g = i * 30; g < i * 30 + 30; g++)
			tm_tag_set(tags, g, (uint8_t)(i + 1));
	assert_int_equal(tm_ea0_compress(4096, tags, &handle, NULL), -E2BIG);
	val = value_at(&ts, 3, tags);
	enum tm_tagstore_class c = tm_ts_value_class(val);

	assert_true(c >= TM_TS_STREAM_16 && c <= TM_TS_STREAM_64);
	assert_true(tm_ts_value_bytes(&ts, val) < 8 + 128);
	/* Random tags: stream cannot beat raw, raw 128 B is kept. */
	tm_corpus_fill(TM_CORPUS_RANDOM, &ts.geom, 5, tags, 1);
	val = value_at(&ts, 4, tags);
	assert_int_equal(tm_ts_value_class(val), TM_TS_RAW);
	assert_int_equal(tm_ts_value_bytes(&ts, val), 8 + 128);
	tm_tagstore_fini(&ts);
}

static void test_put_peek_drop(void **state)
{
	struct tm_tagstore ts;
	uint8_t tags[128], back[128], scratch[128];
	struct tm_ts_rec rec;
	uint64_t val;
	tm_error err;

	(void)state;
	assert_int_equal(tm_tagstore_init(&ts, 4096, &err), 0);
	tm_corpus_fill(TM_CORPUS_ALLOC, &ts.geom, 9, tags, 1);
	tm_ts_rec_make(&ts, tags, scratch, &rec);
	assert_int_equal(rec.inl, 0);              /* an out-of-line value */
	assert_false(tm_tagstore_has(&ts, 1234));
	assert_int_equal(tm_tagstore_put(&ts, 1234, &rec, &err), 0);
	assert_true(tm_tagstore_has(&ts, 1234));
	assert_int_equal(tm_tagstore_put(&ts, 1234, &rec, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "1234"));
	/* neighbours in the same leaf and in the next one are empty */
	assert_false(tm_tagstore_has(&ts, 1233));
	assert_false(tm_tagstore_has(&ts, 1235));
	assert_false(tm_tagstore_has(&ts, 1234 + 64));
	val = tm_tagstore_peek(&ts, 1234);
	assert_int_not_equal(val, 0);
	/* the store copied the record: the scratch may be reused */
	memset(scratch, 0xEE, sizeof(scratch));
	assert_int_equal(tm_ts_value_decode(&ts, val, back, &err), 0);
	assert_memory_equal(back, tags, 128);
	assert_true(tm_tagstore_drop(&ts, 1234));
	assert_false(tm_tagstore_has(&ts, 1234));
	assert_false(tm_tagstore_drop(&ts, 1234));
	/* a record without tags stores nothing */
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(tm_tagstore_put(&ts, 99, &rec, &err), 0);
	assert_false(tm_tagstore_has(&ts, 99));
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

		val = value_at(&ts, slot, tags + i * 128);
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
	assert_int_equal(ts.leaves, 0);            /* every leaf went */
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
	val = value_at(&ts, 5, tags);
	assert_int_not_equal(tm_ts_value_class(val), TM_TS_INLINE);
	assert_int_not_equal(tm_ts_value_class(val), TM_TS_RAW);
	uint8_t *rec = (uint8_t *)(uintptr_t)(val & ~(uint64_t)0xF);

	rec[0] = 0xFF;  /* length beyond the record's class */
	rec[1] = 0x7F;
	assert_int_equal(tm_ts_value_decode(&ts, val, back, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "exceeds"));
	rec[0] = 3;     /* a length that fits, but a truncated block */
	rec[1] = 0;
	assert_int_equal(tm_ts_value_decode(&ts, val, back, &err), -EBADMSG);
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

			val = value_at(&ts, 10 + i, pg);
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
			assert_true(tm_tagstore_drop(&ts, 10 + i));
		}
		/* Every one-tag page is the EA0 handle tm_ea0_compress gives. */
		for (unsigned t = 0; t < 16; t++) {
			uint64_t val, h;

			memset(tags, (int)(t * 0x11), pk);
			assert_int_equal(tm_ea0_compress(page_sizes[s], tags, &h, NULL), 0);
			val = value_at(&ts, 1000 + t, tags);
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
	uint8_t tags[128], scratch[8][128];
	struct tm_ts_rec recs[8], one;
	uint64_t old;
	tm_tagstore_stats st;
	tm_error err;

	(void)state;
	assert_int_equal(tm_tagstore_init(&ts, 4096, &err), 0);
	tm_corpus_fill(TM_CORPUS_RANDOM, &ts.geom, 1, tags, 1);
	tm_ts_rec_make(&ts, tags, scratch[0], &one);
	assert_int_equal(tm_tagstore_put(&ts, 105, &one, &err), 0);
	old = tm_tagstore_peek(&ts, 105);
	memset(recs, 0, sizeof(recs));
	for (int i = 1; i < 8; i += 2)
		tm_ts_rec_make(&ts, tags, scratch[i], &recs[i]);
	/* Slot 105 (index 5) is taken: nothing of the batch goes in. */
	assert_int_equal(tm_tagstore_put_batch(&ts, 100, 8, recs, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "105"));
	assert_false(tm_tagstore_has(&ts, 101));
	assert_false(tm_tagstore_has(&ts, 103));
	assert_true(tm_tagstore_peek(&ts, 105) == old);
	tm_tagstore_get_stats(&ts, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes_used, 8 + 128);
	/* Elsewhere (across a leaf boundary) the same batch goes in whole. */
	assert_int_equal(tm_tagstore_put_batch(&ts, 60, 8, recs, &err), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(tm_tagstore_has(&ts, 60 + (uint64_t)i), i % 2 == 1);
	tm_tagstore_get_stats(&ts, &st);
	assert_int_equal(st.entries, 5);
	assert_int_equal(ts.leaves, 2);
	tm_tagstore_fini(&ts);
}

/* Slots of many leaves filled and emptied again, in random order: the
 * index and the slab give their memory back (no leaf left, at most one
 * spare slab block per class), and the statistics follow every step. */
static void test_memory_given_back(void **state)
{
	enum { N = 20000 };
	struct tm_tagstore ts;
	tm_tagstore_stats st, empty;
	uint8_t *tags, scratch[128];
	uint64_t *slot = malloc(N * sizeof(*slot)), n = 0;
	tm_error err;
	tm_rng r;

	(void)state;
	assert_int_equal(tm_tagstore_init(&ts, 4096, &err), 0);
	tm_tagstore_get_stats(&ts, &empty);
	tags = malloc((size_t)N * 128);
	tm_corpus_fill(TM_CORPUS_ALLOC, &ts.geom, 3, tags, N);
	tm_rng_seed(&r, 8);
	for (size_t i = 0; i < N; i++) {
		struct tm_ts_rec rec;

		slot[i] = 3 * i + tm_rng_below(&r, 3);      /* sparse, distinct */
		tm_ts_rec_make(&ts, tags + i * 128, scratch, &rec);
		assert_int_equal(tm_tagstore_put(&ts, slot[i], &rec, &err), 0);
	}
	tm_tagstore_get_stats(&ts, &st);
	assert_int_equal(st.entries, N);
	assert_true(st.object_bytes >= st.bytes_used - 8 * st.entries);
	assert_true(st.index_bytes >= ts.leaves * 64 * 8);
	for (size_t i = N; i > 1; i--) {                   /* shuffle */
		size_t j = tm_rng_below(&r, i);
		uint64_t t = slot[i - 1];

		slot[i - 1] = slot[j];
		slot[j] = t;
	}
	for (size_t i = 0; i < N; i++) {
		assert_true(tm_tagstore_drop(&ts, slot[i]));
		assert_false(tm_tagstore_has(&ts, slot[i]));
		if (i == N / 2) {
			tm_tagstore_get_stats(&ts, &st);
			assert_int_equal(st.entries, N - N / 2 - 1);
		}
	}
	tm_tagstore_get_stats(&ts, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes_used, 0);
	assert_int_equal(ts.leaves, 0);
	assert_int_equal(st.index_bytes, empty.index_bytes);
	/* one spare 16 KiB block per class at most */
	assert_true(st.object_bytes <= 8 * 16384);
	tm_tagstore_invalidate(&ts, 0, UINT64_MAX, &n, NULL);
	assert_int_equal(n, 0);
	free(slot);
	free(tags);
	tm_tagstore_fini(&ts);
}

/* Batch peek and drop of a folio that spans leaves: only the wanted slots
 * are read or dropped; the others keep their values; slots dropped
 * meanwhile (swapoff) read as 0. */
static void test_batch_peek_drop(void **state)
{
	enum { N = 256, FIRST = 1000 };        /* slots 1000..1255: 5 leaves */
	struct tm_tagstore ts;
	struct tm_ts_rec *recs = calloc(N, sizeof(*recs));
	uint64_t vals[N], got[N];
	uint8_t *tags, *scratch;
	bool want[N], all[N];
	tm_error err;

	(void)state;
	assert_int_equal(tm_tagstore_init(&ts, 4096, &err), 0);
	tags = malloc(N * ts.packed);
	scratch = malloc(N * ts.packed);
	tm_corpus_fill(TM_CORPUS_MIX, &ts.geom, 9, tags, N);
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < N; i++) {
			tm_ts_rec_make(&ts, tags + i * ts.packed, scratch + i * ts.packed, &recs[i]);
			want[i] = i % 7 != 3;
			all[i] = true;
		}
		/* untagged pages (no record) at and after the leaf boundaries
		 * 1024 and 1088: the next tagged page must land in its own leaf */
		for (size_t i = 24; i < 30; i++)
			memset(&recs[i], 0, sizeof(recs[i]));
		for (size_t i = 88; i < 92; i++)
			memset(&recs[i], 0, sizeof(recs[i]));
		assert_int_equal(tm_tagstore_put_batch(&ts, FIRST, N, recs, &err), 0);
		tm_tagstore_peek_batch(&ts, FIRST, N, all, vals);
		for (size_t i = 0; i < N; i++) {
			bool empty = (i >= 24 && i < 30) || (i >= 88 && i < 92);
			uint8_t back[128];

			assert_int_equal(vals[i] == 0, empty);
			if (!empty) {
				assert_int_equal(tm_ts_value_decode(&ts, vals[i], back, &err), 0);
				assert_memory_equal(back, tags + i * ts.packed, ts.packed);
			}
		}
		memset(got, 0xAB, sizeof(got));
		if (round == 1) {
			uint64_t n = 0;

			tm_tagstore_invalidate(&ts, FIRST, FIRST + 9, &n, NULL);
			assert_int_equal(n, 10);
		}
		tm_tagstore_peek_batch(&ts, FIRST, N, want, got);
		for (size_t i = 0; i < N; i++) {
			uint8_t back[128];

			if (!want[i]) {
				assert_true(got[i] == 0xABABABABABABABABull);   /* untouched */
				continue;
			}
			if ((round == 1 && i < 10) || !vals[i]) {
				assert_true(got[i] == 0);
				continue;
			}
			assert_true(got[i] == vals[i]);
			assert_int_equal(tm_ts_value_decode(&ts, got[i], back, &err), 0);
			assert_memory_equal(back, tags + i * ts.packed, ts.packed);
		}
		tm_tagstore_drop_batch(&ts, FIRST, N, want);
		for (size_t i = 0; i < N; i++)
			assert_int_equal(tm_tagstore_has(&ts, FIRST + i),
					 !want[i] && !(round == 1 && i < 10) && vals[i]);
		/* the unwanted slots kept their values */
		for (size_t i = 0; i < N; i++)
			if (!want[i] && !(round == 1 && i < 10) && vals[i]) {
				assert_true(tm_tagstore_peek(&ts, FIRST + i) == vals[i]);
				assert_true(tm_tagstore_drop(&ts, FIRST + i));
			}
		assert_int_equal(ts.leaves, 0);
	}
	free(recs);
	free(tags);
	free(scratch);
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
			val = value_at(&ts, extra, pg);
			assert_int_equal(tm_ts_value_class(val) == TM_TS_INLINE, fits);
			if (fits)
				assert_true(val == h);
			assert_int_equal(tm_ts_value_decode(&ts, val, back, &err), 0);
			assert_memory_equal(back, pg, ts.packed);
			assert_true(tm_tagstore_drop(&ts, extra));
		}
		tm_tagstore_fini(&ts);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_layout_and_page_size),
		cmocka_unit_test(test_class_choice),
		cmocka_unit_test(test_put_peek_drop),
		cmocka_unit_test(test_invalidate_range_and_stats),
		cmocka_unit_test(test_corrupt_record_is_refused),
		cmocka_unit_test(test_shortcuts_match_plain_rule),
		cmocka_unit_test(test_put_batch_all_or_nothing),
		cmocka_unit_test(test_memory_given_back),
		cmocka_unit_test(test_batch_peek_drop),
		cmocka_unit_test(test_ea0_order_decides_inline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
