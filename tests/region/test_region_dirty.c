/*
 * test_region_dirty.c - dirty tracking, for every backend and every method
 * the host has: API writes of data and of tags (and nothing else) dirty a
 * page; collect fetches and clears; a page written between collects is
 * never lost (writer threads against a collector loop). The caller backend
 * "mem" has a dirty source of its own (TM_DIRTY_BACKEND, the shape of a
 * VM's dirty log) that AUTO picks and that sees its "guest" writes; "file"
 * has no mapping, so the kernel methods are refused for it, saying why.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "region/mte_ops.h"
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
	if (m != TM_DIRTY_UFFD_WP && m != TM_DIRTY_BACKEND)
		assert_true(strlen(tm_region_dirty_note(r)) > 0);
	/* a backend's own source comes first; no mapping, no kernel method */
	if (f->kind == RT_MEM)
		assert_int_equal(m, TM_DIRTY_BACKEND);
	if (f->kind == RT_FILE) {
		assert_int_equal(m, TM_DIRTY_API);
		assert_non_null(strstr(tm_region_dirty_note(r), "no mapping"));
	}
	if (f->kind == RT_SOFT || f->kind == RT_MTE)
		assert_null(strstr(tm_region_dirty_note(r), "backend"));
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
	tb_ctx *guest;             /* or a test-mem "guest" */
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

		if (x->guest) {
			tb_mem_guest_write(x->guest, pg * PS + 64, &g, 4,
					   (int)(g & 0xF));
		} else if (x->via_ptr) {
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
static void never_lost_by(tm_region *r, enum tm_dirty_method m, bool via_ptr,
			  tb_ctx *guest)
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
	x.guest = guest;
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

static void never_lost(tm_region *r, enum tm_dirty_method m, bool via_ptr)
{
	never_lost_by(r, m, via_ptr, NULL);
}

static void test_never_lost_api(void **state)
{
	RT_REGION(state, f, r);
	never_lost(r, TM_DIRTY_API, false);
}

/* Start method m, or skip the test saying why the host cannot do it. */
static void start_or_skip(tm_region *r, enum tm_dirty_method m)
{
	tm_error err;
	int rc;

	tm_error_clear(&err);
	rc = tm_region_dirty_start(r, m, &err);
	if (rc == -ENOTSUP) {
		tm_test_skip(tm_dirty_method_name(m), "%s unavailable here: %s",
			     tm_dirty_method_name(m), err.msg);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(tm_region_dirty_method(r), m);
	tm_region_dirty_stop(r);
}

static void test_never_lost_uffd_wp_api(void **state)
{
	RT_REGION(state, f, r);
	start_or_skip(r, TM_DIRTY_UFFD_WP);
	never_lost(r, TM_DIRTY_UFFD_WP, false);
}

/* Foreign stores (through tm_region_ptr, not the API) are never lost. */
static void test_never_lost_uffd_wp_foreign(void **state)
{
	RT_REGION(state, f, r);
	start_or_skip(r, TM_DIRTY_UFFD_WP);
	never_lost(r, TM_DIRTY_UFFD_WP, true);
}

struct foreign {
	tm_region *r;
	const size_t *pages;
	size_t n;
};

static void *foreign_writer(void *arg)
{
	struct foreign *fw = arg;

	for (size_t i = 0; i < fw->n; i++) {
		volatile uint8_t *p = tm_region_ptr(fw->r, fw->pages[i] * PS + 100);
		*p = (uint8_t)(*p + 1);
	}
	return NULL;
}

/* The test-mem "guest": stores and tag changes the API never sees. */
static void *guest_writer(void *arg)
{
	struct foreign *fw = arg;
	tb_ctx *c = tm_region_backend_ctx(fw->r);

	for (size_t i = 0; i < fw->n; i++) {
		uint8_t v = (uint8_t)i;

		if (i % 2)
			tb_mem_guest_write(c, fw->pages[i] * PS + 100, &v, 1, -1);
		else /* a tag-only change: the data stays what it is */
			tb_mem_guest_write(c, fw->pages[i] * PS + 96,
					   c->mem + fw->pages[i] * PS + 96, 16, 0x9);
	}
	return NULL;
}

/*
 * A writer thread that only does plain stores through tm_region_ptr is
 * caught by the kernel method, and exactly its pages are reported; a tag
 * write through the API is caught too.
 */
static void foreign_caught(tm_region *r, enum tm_dirty_method m)
{
	static const size_t pages[] = { 2, 17, 63, 64, 150, NP - 1 };
	struct foreign fw = { r, pages, sizeof(pages) / sizeof(pages[0]) };
	uint64_t bm[tm_bitmap_words(NP)];
	pthread_t t;
	tm_error err;

	start_or_skip(r, m);
	/* populate some pages before tracking so both fresh and resident
	 * pages are covered */
	assert_int_equal(tm_region_write(r, 17 * PS, "abc", 3, &err), 0);
	assert_int_equal(tm_region_dirty_start(r, m, &err), 0);
	assert_int_equal(collect(r, bm), 0);
	assert_int_equal(pthread_create(&t, NULL, m == TM_DIRTY_BACKEND ?
					guest_writer : foreign_writer, &fw), 0);
	pthread_join(t, NULL);
	assert_int_equal(collect(r, bm), fw.n);
	for (size_t i = 0; i < fw.n; i++)
		assert_true(tm_bit_test(bm, pages[i]));
	assert_int_equal(collect(r, bm), 0);
	/* a tag-only change through the API */
	assert_int_equal(tm_region_set_tag_range(r, 99 * PS + 256, 32, 0xA, &err), 0);
	assert_int_equal(collect(r, bm), 1);
	assert_true(tm_bit_test(bm, 99));
	/* discard changes content: reported */
	assert_int_equal(tm_region_discard(r, 120, 2, &err), 0);
	assert_int_equal(collect(r, bm), 2);
	assert_true(tm_bit_test(bm, 120) && tm_bit_test(bm, 121));
	tm_region_dirty_stop(r);
}

static void test_uffd_wp_foreign(void **state)
{
	RT_REGION(state, f, r);
	foreign_caught(r, TM_DIRTY_UFFD_WP);
}

static void test_soft_dirty_foreign(void **state)
{
	RT_REGION(state, f, r);
	foreign_caught(r, TM_DIRTY_SOFT_DIRTY);
}

/* The backend's own dirty source: the guest's writes (data-only and
 * tag-only) are exactly what is reported; backends without one refuse. */
static void test_backend_source_foreign(void **state)
{
	RT_REGION(state, f, r);
	tm_error err;

	if (f->kind != RT_MEM) {
		tm_error_clear(&err);
		assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_BACKEND, &err),
				 -ENOTSUP);
		assert_non_null(strstr(err.msg, "no dirty source"));
		return;
	}
	foreign_caught(r, TM_DIRTY_BACKEND);
	assert_true(f->tb->calls[TB_DIRTY_COLLECT] > 0);
}

static void test_never_lost_backend_source(void **state)
{
	RT_REGION(state, f, r);
	never_lost_by(r, TM_DIRTY_BACKEND, false, f->tb);
}

/* Without a mapping in this process the kernel methods are refused, and
 * say why; AUTO falls back to the API (test_auto_method). */
static void test_kernel_methods_need_mapping(void **state)
{
	RT_REGION(state, f, r);
	tm_error err;

	tm_error_clear(&err);
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_UFFD_WP, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "no mapping"));
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_SOFT_DIRTY, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "no mapping"));
	assert_int_equal(tm_region_dirty_method(r), TM_DIRTY_AUTO); /* off */
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_API, &err), 0);
	tm_region_dirty_stop(r);
}

/* mte: a tag-only store by the workload (STG, not through the API) is a
 * write to the MMU, so uffd-wp reports the page; the data is unchanged. */
static void test_uffd_wp_foreign_stg(void **state)
{
	RT_REGION(state, f, r);
	uint64_t bm[tm_bitmap_words(NP)];
	uint8_t before[64], after[64];
	tm_error err;

	start_or_skip(r, TM_DIRTY_UFFD_WP);
	assert_int_equal(tm_region_write(r, 40 * PS, "data", 4, &err), 0);
	assert_int_equal(tm_region_read(r, 40 * PS, before, sizeof(before), &err), 0);
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_UFFD_WP, &err), 0);
	assert_int_equal(collect(r, bm), 0);
	assert_int_equal(tm_mte_set_tag_range(r->map_base + 40 * PS + 32, 16, 0x7), 0);
	assert_int_equal(collect(r, bm), 1);
	assert_true(tm_bit_test(bm, 40));
	assert_int_equal(tm_region_read(r, 40 * PS, after, sizeof(after), &err), 0);
	assert_memory_equal(before, after, sizeof(after));
	assert_int_equal(tm_mte_load_tag(r->map_base + 40 * PS + 32), 0x7);
	assert_false(tm_region_page_tagged(r, 40)); /* foreign: the API did not */
	tm_region_dirty_stop(r);
}

/* clear_refs is process-wide: a collect on one region must not lose the
 * pending writes of another. */
static void test_soft_dirty_two_regions(void **state)
{
	RT_REGION(state, f, r);
	rt_fixture g = *f;
	uint64_t bm[tm_bitmap_words(NP)];
	tm_error err;

	start_or_skip(r, TM_DIRTY_SOFT_DIRTY);
	assert_int_equal(rt_create(&g, "other", NULL, &err), 0);
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_SOFT_DIRTY, &err), 0);
	assert_int_equal(tm_region_dirty_start(g.r, TM_DIRTY_SOFT_DIRTY, &err), 0);
	assert_int_equal(collect(g.r, bm), 0);
	*(volatile uint8_t *)tm_region_ptr(g.r, 33 * PS) = 1;
	*(volatile uint8_t *)tm_region_ptr(r, 44 * PS) = 1;
	assert_int_equal(collect(r, bm), 1);   /* clears process-wide */
	assert_true(tm_bit_test(bm, 44));
	assert_int_equal(collect(g.r, bm), 1); /* still reported */
	assert_true(tm_bit_test(bm, 33));
	rt_destroy(&g);
	tm_region_dirty_stop(r);
}

/* uffd-wp and soft-dirty both on at once in one process, different
 * regions, each reporting its own writes. */
static void test_methods_side_by_side(void **state)
{
	RT_REGION(state, f, r);
	rt_fixture g = *f;
	uint64_t bm[tm_bitmap_words(NP)];
	tm_error err;

	start_or_skip(r, TM_DIRTY_UFFD_WP);
	start_or_skip(r, TM_DIRTY_SOFT_DIRTY);
	assert_int_equal(rt_create(&g, "other", NULL, &err), 0);
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_UFFD_WP, &err), 0);
	assert_int_equal(tm_region_dirty_start(g.r, TM_DIRTY_SOFT_DIRTY, &err), 0);
	*(volatile uint8_t *)tm_region_ptr(r, 5 * PS) = 1;
	*(volatile uint8_t *)tm_region_ptr(g.r, 6 * PS) = 1;
	assert_int_equal(collect(g.r, bm), 1);
	assert_true(tm_bit_test(bm, 6));
	assert_int_equal(collect(r, bm), 1);
	assert_true(tm_bit_test(bm, 5));
	rt_destroy(&g);
	tm_region_dirty_stop(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		RT_ALL(test_api_method),
		RT_ALL(test_auto_method),
		RT_ALL(test_collect_without_start),
		RT_ALL(test_never_lost_api),
		RT_MAPPED(test_never_lost_uffd_wp_api),
		RT_MAPPED(test_never_lost_uffd_wp_foreign),
		RT_MAPPED(test_uffd_wp_foreign),
		RT_MAPPED(test_soft_dirty_foreign),
		RT_TEST("mte", test_uffd_wp_foreign_stg, &rt_mte),
		RT_ALL(test_backend_source_foreign),
		RT_TEST("test-mem", test_never_lost_backend_source, &rt_mem),
		RT_TEST("test-file", test_kernel_methods_need_mapping, &rt_file),
		RT_MAPPED(test_soft_dirty_two_regions),
		RT_MAPPED(test_methods_side_by_side),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
