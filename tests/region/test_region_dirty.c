/*
 * test_region_dirty.c - dirty tracking, for every backend and every method
 * the host has: API writes of data and of tags (and nothing else) dirty a
 * page; collect fetches and clears; a page written between collects is
 * never lost (writer threads against a collector loop).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "region_test.h"

#define PS 4096u
#define NP 200u
RT_FIXTURES(PS, NP);

static size_t collect(tm_region *r, uint64_t *bm)
{
	tm_error err;

	memset(bm, 0, tm_bitmap_words(NP) * 8);
	assert_int_equal(tm_region_dirty_collect(r, bm, &err), 0);
	return tm_bitmap_count(bm, NP);
}

static void api_writes_dirty(tm_region *r, enum tm_dirty_method m)
{
	uint64_t bm[tm_bitmap_words(NP)];
	uint8_t data[PS], tags[128];
	tm_error err;

	memset(data, 1, sizeof(data));
	memset(tags, 0x12, sizeof(tags));
	assert_int_equal(tm_region_dirty_start(r, m, &err), 0);
	collect(r, bm); /* kernel methods may report setup; start clean */
	assert_int_equal(collect(r, bm), 0);
	/* reads dirty nothing */
	assert_int_equal(tm_region_read_page(r, 3, data, tags, &err), 0);
	assert_int_equal(tm_region_read(r, 0, data, 100, &err), 0);
	assert_int_equal(tm_region_get_tags(r, 9, TM_TAGS_PACKED, tags, &err), 0);
	assert_int_equal(collect(r, bm), 0);

	assert_int_equal(tm_region_write_page(r, 3, data, tags, &err), 0);
	assert_int_equal(tm_region_set_tags(r, 5, TM_TAGS_PACKED, tags, &err), 0);
	assert_int_equal(tm_region_set_tag_range(r, 7 * PS + 32, 16, 3, &err), 0);
	assert_int_equal(tm_region_write(r, 9 * PS - 1, data, 2, &err), 0);
	assert_int_equal(tm_region_zero_page(r, 130, &err), 0);
	assert_int_equal(collect(r, bm), 6);
	assert_true(tm_bit_test(bm, 3));
	assert_true(tm_bit_test(bm, 5));
	assert_true(tm_bit_test(bm, 7));
	assert_true(tm_bit_test(bm, 8));
	assert_true(tm_bit_test(bm, 9));
	assert_true(tm_bit_test(bm, 130));
	assert_int_equal(collect(r, bm), 0);
	/* a tag-only change dirties the page: set a tag to the same page again */
	assert_int_equal(tm_region_set_tag_range(r, 64 * PS, 16, 0xF, &err), 0);
	assert_int_equal(collect(r, bm), 1);
	assert_true(tm_bit_test(bm, 64));
	tm_region_dirty_stop(r);
}

static void test_api_method(void **state)
{
	RT_REGION(state, f, r);
	tm_error err;

	api_writes_dirty(r, TM_DIRTY_API);
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_API, &err), 0);
	assert_int_equal(tm_region_dirty_method(r), TM_DIRTY_API);
	assert_string_equal(tm_region_dirty_note(r), "");
	tm_error_clear(&err);
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_API, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "'test'"));
	tm_region_dirty_stop(r);
}

static void test_auto_method(void **state)
{
	RT_REGION(state, f, r);
	tm_error err;

	api_writes_dirty(r, TM_DIRTY_AUTO);
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_AUTO, &err), 0);
	enum tm_dirty_method m = tm_region_dirty_method(r);
	print_message("auto chose %s%s%s\n", tm_dirty_method_name(m),
		      m == TM_DIRTY_UFFD_WP ? "" : ": ",
		      tm_region_dirty_note(r));
	assert_true(m != TM_DIRTY_AUTO);
	if (m != TM_DIRTY_UFFD_WP)
		assert_true(strlen(tm_region_dirty_note(r)) > 0);
	tm_region_dirty_stop(r);
}

static void test_collect_without_start(void **state)
{
	RT_REGION(state, f, r);
	uint64_t bm[tm_bitmap_words(NP)];
	tm_error err;

	tm_error_clear(&err);
	assert_int_equal(tm_region_dirty_collect(r, bm, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "'test'"));
	assert_int_equal(tm_region_dirty_start(r, (enum tm_dirty_method)9, &err), -EINVAL);
	/* stopped tracking records nothing */
	tm_region_dirty_stop(r);
	assert_int_equal(tm_region_write(r, 0, "a", 1, &err), 0);
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_API, &err), 0);
	assert_int_equal(collect(r, bm), 0);
	tm_region_dirty_stop(r);
}

/* ---- never lost: writers against a collector --------------------- */

struct race {
	tm_region *r;
	atomic_bool stop;
	_Atomic uint32_t gen[NP];  /* generation last written per page */
	unsigned seed;
	bool via_ptr;              /* foreign stores instead of API calls */
};

static void *writer(void *arg)
{
	struct race *x = arg;
	tm_rng rng;
	uint32_t n = 0;
	tm_error err;

	tm_rng_seed(&rng, x->seed);
	while (!atomic_load(&x->stop)) {
		size_t pg = tm_rng_below(&rng, NP);
		uint32_t g = ++n;

		if (x->via_ptr) {
			uint32_t *p = tm_region_ptr(x->r, pg * PS + 64);
			__atomic_store_n(p, g, __ATOMIC_RELEASE);
		} else if (tm_rng_below(&rng, 4) == 0) {
			tm_region_set_tag_range(x->r, pg * PS, 16, g & 0xF, &err);
			tm_region_write(x->r, pg * PS + 64, &g, 4, &err);
		} else {
			tm_region_write(x->r, pg * PS + 64, &g, 4, &err);
		}
		atomic_store(&x->gen[pg], g);
	}
	return NULL;
}

/*
 * After every collect, each page that is not reported must still hold what
 * the collector last saw it hold: a change the collect did not report must
 * be reported by a later one. At the end, with the writer stopped, a final
 * collect must leave every page's content equal to what the collector
 * recorded after reporting it.
 */
static void never_lost(tm_region *r, enum tm_dirty_method m, bool via_ptr)
{
	static struct race x;
	uint64_t bm[tm_bitmap_words(NP)];
	uint32_t seen[NP];
	pthread_t t;
	tm_error err;

	memset(&x, 0, sizeof(x));
	x.r = r;
	x.seed = 77;
	x.via_ptr = via_ptr;
	memset(seen, 0, sizeof(seen));
	assert_int_equal(tm_region_dirty_start(r, m, &err), 0);
	assert_int_equal(pthread_create(&t, NULL, writer, &x), 0);
	uint64_t end = tm_now_ns() + 300 * 1000000ull;
	size_t rounds = 0, reported = 0;
	do {
		reported += collect(r, bm);
		for (size_t pg = 0; pg < NP; pg++) {
			if (!tm_bit_test(bm, pg))
				continue;
			uint32_t v;
			assert_int_equal(tm_region_read(r, pg * PS + 64, &v, 4, &err), 0);
			seen[pg] = v;
		}
		rounds++;
	} while (tm_now_ns() < end);
	atomic_store(&x.stop, true);
	pthread_join(t, NULL);
	reported += collect(r, bm);
	for (size_t pg = 0; pg < NP; pg++) {
		uint32_t v;
		assert_int_equal(tm_region_read(r, pg * PS + 64, &v, 4, &err), 0);
		if (tm_bit_test(bm, pg))
			seen[pg] = v;
		if (seen[pg] != v)
			fail_msg("page %zu changed to %u but the last report saw %u",
				 pg, v, seen[pg]);
	}
	print_message("%s: %zu collects, %zu pages reported\n",
		      tm_dirty_method_name(tm_region_dirty_method(r)), rounds,
		      reported);
	assert_true(rounds > 3);
	tm_region_dirty_stop(r);
}

static void test_never_lost_api(void **state)
{
	RT_REGION(state, f, r);
	never_lost(r, TM_DIRTY_API, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		RT_BOTH(test_api_method),
		RT_BOTH(test_auto_method),
		RT_BOTH(test_collect_without_start),
		RT_BOTH(test_never_lost_api),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
