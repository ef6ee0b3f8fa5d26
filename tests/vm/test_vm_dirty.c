/*
 * test_vm_dirty.c - the kernel's dirty tracking on PROT_MTE memory, through
 * the region API (mte backend, TM_DIRTY_UFFD_WP: uffd-wp async +
 * PAGEMAP_SCAN). Written for the real arm64 kernel of make check-vm; under
 * qemu-user (no userfaultfd) it skips with the reason, and check-vm
 * requires uffd-wp, so there a skip is a failure.
 *
 * What it proves: a page whose only change is an allocation tag, written by
 * the CPU (STG, ST2G, STZG, STGP) through the region's memory and not
 * through the API, is reported dirty by tm_region_dirty_collect - on a
 * resident page and on one never touched before; reads (LDG, loads) are
 * not; every page is reported once; a tag writer racing the collects loses
 * no page. The control: the same raw STG under TM_DIRTY_API (bookkeeping
 * only) is not reported, so the positive results come from the kernel's
 * write-protect bits, not from the library noticing its own calls.
 */
#include "../mte/mte_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "common/util.h"
#include "tagmem/region.h"
#include "tagmem/tags.h"

#define PS 4096u
#define NP 64u
#define NT (PS / 32)
#define NW ((NP + 63) / 64)   /* bitmap words */

static tm_region *mte_region(const char *name)
{
	tm_region_config cfg;
	tm_region *r = NULL;
	tm_error err;

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(tm_geom_mte(&cfg.geom, PS, &err), 0);
	cfg.name = name;
	cfg.size = (size_t)NP * PS;
	cfg.backend = TM_BACKEND_MTE;
	if (tm_region_create(&cfg, &r, &err) != 0)
		tm_test_skip("mte", "mte backend: %s", tm_error_msg(&err));
	return r;
}

static void start(tm_region *r, enum tm_dirty_method m)
{
	tm_error err;
	int rc;

	tm_error_clear(&err);
	rc = tm_region_dirty_start(r, m, &err);
	if (rc == -ENOTSUP) {
		tm_region_destroy(r);
		tm_test_skip(tm_dirty_method_name(m), "%s unavailable: %s",
			     tm_dirty_method_name(m), tm_error_msg(&err));
	}
	if (rc)
		fail_msg("dirty start (%s): %s", tm_dirty_method_name(m), tm_error_msg(&err));
	assert_int_equal(tm_region_dirty_method(r), m);
}

/* Pages dirty since the last collect, as a bitmap; returns the count. */
static size_t collect(tm_region *r, uint64_t *bm)
{
	tm_error err;

	memset(bm, 0, NW * 8);
	if (tm_region_dirty_collect(r, bm, &err))
		fail_msg("collect: %s", tm_error_msg(&err));
	return tm_bitmap_count(bm, NP);
}

/* Exactly page pg is dirty. */
static void expect_only(tm_region *r, size_t pg, const char *what)
{
	uint64_t bm[NW];
	size_t n = collect(r, bm);

	if (n != 1 || !tm_bit_test(bm, pg))
		fail_msg("%s on page %zu: %zu pages reported dirty (page %zu %s)", what, pg, n, pg,
			 tm_bit_test(bm, pg) ? "among them" : "not among them");
}

static void expect_none(tm_region *r, const char *what)
{
	uint64_t bm[NW];
	size_t n = collect(r, bm);

	if (n != 0)
		fail_msg("%s: %zu pages reported dirty, want none", what, n);
}

/* The region's memory at off, untagged (the raw instructions below put
 * their own tag in the pointer). */
static char *raw(tm_region *r, size_t off)
{
	return tm_mte_untag(tm_region_ptr(r, off));
}

/* One STG: the allocation tag of the granule at p becomes tag. */
static void stg(char *p, uint8_t tag)
{
	char *t = tm_mte_with_tag(p, tag);

	__asm__ volatile("stg %0, [%0]" : : "r"(t) : "memory");
}

/* Data and tags of resident pages 0..31 through the API; 32.. untouched. */
static void fill(tm_region *r)
{
	uint8_t data[PS], tags[NT];
	tm_rng rng;
	tm_error err;

	tm_rng_seed(&rng, 7);
	for (size_t pg = 0; pg < NP / 2; pg++) {
		for (size_t i = 0; i < PS; i++)
			data[i] = (uint8_t)tm_rng_next(&rng);
		for (size_t i = 0; i < NT; i++)
			tags[i] = (uint8_t)tm_rng_next(&rng);
		if (tm_region_write_page(r, pg, data, tags, &err))
			fail_msg("fill page %zu: %s", pg, tm_error_msg(&err));
	}
}

static void page_data(tm_region *r, size_t pg, uint8_t *out)
{
	assert_int_equal(tm_region_read(r, pg * PS, out, PS, NULL), 0);
}

static void test_tag_only_writes_are_dirty(void **state)
{
	uint8_t before[PS], after[PS], tags[NT];
	tm_region *r;
	char *p;
	uint8_t t;

	(void)state;
	mt_require();
	r = mte_region("dirty-mte");
	fill(r);
	start(r, TM_DIRTY_UFFD_WP);
	expect_none(r, "right after start");

	/* STG of a new tag on a resident page: the data stays, the tag
	 * changes, the page is dirty. */
	p = raw(r, 3 * PS + 5 * 16);
	t = (uint8_t)((tm_mte_load_tag(p) + 1) & 0xf);
	page_data(r, 3, before);
	stg(p, t);
	page_data(r, 3, after);
	assert_memory_equal(before, after, PS);
	assert_int_equal(tm_mte_load_tag(p), t);
	mt_assert_no_fault(tm_mte_with_tag(p, t), MT_LOAD8);
	expect_only(r, 3, "STG (new tag)");
	expect_none(r, "second collect after one STG");

	/* STG of the tag the granule already has is still a store. */
	p = raw(r, 5 * PS + 16);
	stg(p, tm_mte_load_tag(p));
	expect_only(r, 5, "STG (same tag)");

	/* ST2G over an aligned pair, through the primitive. */
	assert_int_equal(tm_mte_set_tag_range(raw(r, 7 * PS + 32), 32, 0xc), 0);
	expect_only(r, 7, "ST2G");

	/* A page never touched: an STG maps it in and dirties it; its data
	 * stays zero. */
	p = raw(r, 40 * PS + 64);
	stg(p, 0x9);
	page_data(r, 40, after);
	assert_true(tm_mem_is_zero(after, PS));
	assert_int_equal(tm_region_get_tags(r, 40, TM_TAGS_PACKED, tags, NULL), 0);
	assert_int_equal(mt_nibble(tags, 4), 0x9);
	expect_only(r, 40, "STG on an untouched page");

	/* Reads dirty nothing: LDG, and checked loads with the right tag. */
	for (size_t pg = 10; pg < 20; pg++) {
		uint64_t v;

		p = raw(r, pg * PS + 128);
		assert_int_equal(mt_probe(tm_mte_ptr_for(p), MT_LOAD64, &v), 0);
		(void)tm_mte_load_tag(p);
	}
	assert_int_equal(tm_region_get_tags(r, 11, TM_TAGS_PACKED, tags, NULL), 0);
	expect_none(r, "LDG and loads only");

	/* STZG (data and tag to zero) and STGP (data and tag in one store). */
	assert_int_equal(tm_mte_zero(raw(r, 12 * PS + 256), 16), 0);
	expect_only(r, 12, "STZG");
	memset(before, 0x5a, 16);
	tags[0] = 0x3;
	assert_int_equal(tm_mte_copy_in(raw(r, 13 * PS), before, tags, 16), 0);
	expect_only(r, 13, "STGP");

	tm_region_dirty_stop(r);
	tm_region_destroy(r);
}

/*
 * The control: API-only tracking does not see a raw STG (nothing but the
 * kernel could have told), while the API's own tag write is reported.
 */
static void test_api_method_misses_raw_stg(void **state)
{
	tm_region *r;
	tm_error err;

	(void)state;
	mt_require();
	r = mte_region("dirty-api");
	fill(r);
	start(r, TM_DIRTY_API);
	expect_none(r, "right after start");
	stg(raw(r, 3 * PS), 0x6);
	expect_none(r, "raw STG under TM_DIRTY_API");
	assert_int_equal(tm_region_set_tag_range(r, 4 * PS, 16, 0x6, &err), 0);
	expect_only(r, 4, "tm_region_set_tag_range under TM_DIRTY_API");
	tm_region_dirty_stop(r);
	tm_region_destroy(r);
}

struct racer {
	tm_region *r;
	atomic_bool stop;
	atomic_uint_least64_t written[NW];
	unsigned long ops;
};

/* Only STG, on pages in a pseudo-random order; each page it wrote is
 * marked in written after the store. */
static void *tag_racer(void *arg)
{
	struct racer *w = arg;
	tm_rng rng;

	tm_rng_seed(&rng, 3);
	while (!atomic_load(&w->stop)) {
		size_t pg = tm_rng_below(&rng, NP);

		stg(raw(w->r, pg * PS + tm_rng_below(&rng, PS / 16) * 16),
		    (uint8_t)tm_rng_below(&rng, 16));
		atomic_fetch_or(&w->written[pg / 64], 1ull << (pg % 64));
		w->ops++;
		if (w->ops % 16 == 0)
			sched_yield();
	}
	return NULL;
}

/*
 * A thread writing only tags while the main thread collects: every page it
 * marked before a collect began is in that collect or an earlier one.
 */
static void test_tag_writer_racing_collects_loses_nothing(void **state)
{
	uint64_t seen[NW] = { 0 }, bm[NW];
	uint64_t marked[NW];
	struct racer w;
	pthread_t thr;
	tm_region *r;

	(void)state;
	mt_require();
	r = mte_region("dirty-race");
	fill(r);
	start(r, TM_DIRTY_UFFD_WP);
	expect_none(r, "right after start");
	memset(&w, 0, sizeof(w));
	w.r = r;
	assert_int_equal(pthread_create(&thr, NULL, tag_racer, &w), 0);
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < NW; i++)
			marked[i] = atomic_load(&w.written[i]);
		collect(r, bm);
		for (size_t i = 0; i < NW; i++) {
			seen[i] |= bm[i];
			if (marked[i] & ~seen[i])
				fail_msg("round %d: pages written before the collect were never "
					 "reported (word %zu: 0x%llx)", round, i,
					 (unsigned long long)(marked[i] & ~seen[i]));
		}
		usleep(500);
	}
	atomic_store(&w.stop, true);
	pthread_join(thr, NULL);
	collect(r, bm);
	for (size_t i = 0; i < NW; i++) {
		seen[i] |= bm[i];
		assert_int_equal(atomic_load(&w.written[i]) & ~seen[i], 0);
	}
	print_message("%lu STGs over %zu pages, all reported\n", w.ops,
		      tm_bitmap_count(seen, NP));
	assert_true(w.ops > 100);
	tm_region_dirty_stop(r);
	tm_region_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tag_only_writes_are_dirty),
		cmocka_unit_test(test_api_method_misses_raw_stg),
		cmocka_unit_test(test_tag_writer_racing_collects_loses_nothing),
	};

	return cmocka_run_group_tests(tests, mt_group_setup, NULL);
}
