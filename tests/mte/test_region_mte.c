/*
 * test_region_mte.c - the mte backend of the public region API, proved on
 * real tag checking: tags placed through tm_region_set_tags /
 * tm_region_write_page / tm_region_set_tag_range are the allocation tags the
 * CPU enforces on direct accesses through tm_region_ptr() (which passes)
 * and through the same address with another logical tag (SIGSEGV with
 * SEGV_MTESERR); read_page gives back what write_page placed; zero_page
 * clears data and tags. The primitives themselves are tested in
 * test_mte_{tags,check,copy,args}.c.
 */
#include "mte_test.h"

#include <unistd.h>

#include "common/util.h"
#include "tagmem/region.h"
#include "tagmem/tags.h"

#define NPAGES 4

typedef struct fx {
	tm_region *r;
	size_t ps, nt;     /* page size, packed tag bytes per page */
	tm_rng rng;
} fx;

static int fx_setup(void **state)
{
	static fx f;
	tm_region_config cfg;
	tm_error err;

	*state = &f;
	memset(&f, 0, sizeof(f));
	if (!tm_mte_available())
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	f.ps = (size_t)sysconf(_SC_PAGESIZE);
	f.nt = f.ps / 32;
	tm_rng_seed(&f.rng, 7);
	if (tm_geom_mte(&cfg.geom, (uint32_t)f.ps, &err) != 0)
		return -1;
	cfg.name = "mte-test";
	cfg.size = NPAGES * f.ps;
	cfg.backend = TM_BACKEND_MTE;
	if (tm_region_create(&cfg, &f.r, &err) != 0) {
		fprintf(stderr, "tm_region_create(mte): %s\n", tm_error_msg(&err));
		return -1;
	}
	return 0;
}

static int fx_teardown(void **state)
{
	fx *f = *state;

	if (f->r)
		tm_region_destroy(f->r);
	f->r = NULL;
	return 0;
}

static void random_tags(fx *f, uint8_t *packed)
{
	for (size_t i = 0; i < f->nt; i++)
		packed[i] = (uint8_t)tm_rng_next(&f->rng);
}

/* For every granule of page pg: a load and a store through tm_region_ptr
 * pass; the same address with tag+1 faults on load and on store. */
static void assert_page_enforced(fx *f, size_t pg, const uint8_t *packed)
{
	for (size_t g = 0; g < f->ps / 16; g++) {
		size_t off = pg * f->ps + g * 16 + (g % 16);
		char *p = tm_region_ptr(f->r, off);
		uint8_t want = mt_nibble(packed, g);
		uint64_t v = 0;

		assert_int_equal(((uintptr_t)p >> 56) & 0xf, want);
		assert_int_equal(mt_probe(p, MT_LOAD8, &v), 0);
		assert_int_equal(mt_probe(p, MT_STORE8, &v), 0);
		if (g % 8 == 0) { /* the faulting half is slower under qemu */
			char *bad = tm_mte_with_tag(p, (uint8_t)((want + 1) & 0xf));

			mt_assert_tag_fault(bad, MT_LOAD8, 1);
			mt_assert_tag_fault(bad, MT_STORE8, 1);
		}
	}
}

static void t_backend_is_mte(void **state)
{
	fx *f = *state;

	mt_require();
	assert_non_null(f->r);
	assert_int_equal(tm_region_backend(f->r), TM_BACKEND_MTE);
	assert_int_equal(tm_region_npages(f->r), NPAGES);
}

static void t_set_tags_are_enforced(void **state)
{
	fx *f = *state;
	uint8_t in[TM_PAGE_SIZE_MAX / 32], out[TM_PAGE_SIZE_MAX / 32];
	tm_error err;

	mt_require();
	random_tags(f, in);
	assert_int_equal(tm_region_set_tags(f->r, 1, TM_TAGS_PACKED, in, &err), 0);
	assert_true(tm_region_page_tagged(f->r, 1));
	assert_page_enforced(f, 1, in);
	/* Read back both through the API and straight from the hardware. */
	assert_int_equal(tm_region_get_tags(f->r, 1, TM_TAGS_PACKED, out, &err), 0);
	assert_memory_equal(in, out, f->nt);
	assert_int_equal(tm_mte_get_tags(tm_region_ptr(f->r, f->ps), f->ps, out), 0);
	assert_memory_equal(in, out, f->nt);
}

static void t_unpacked_tags_are_enforced(void **state)
{
	fx *f = *state;
	uint8_t un[TM_PAGE_SIZE_MAX / 16], packed[TM_PAGE_SIZE_MAX / 32];
	uint8_t out[TM_PAGE_SIZE_MAX / 16];
	size_t n = f->ps / 16;
	tm_error err;

	mt_require();
	for (size_t g = 0; g < n; g++) {
		un[g] = (uint8_t)((g * 7 + 3) & 0xf);
		packed[g / 2] = (uint8_t)(g % 2 ? packed[g / 2] | un[g] << 4 : un[g]);
	}
	assert_int_equal(tm_region_set_tags(f->r, 2, TM_TAGS_UNPACKED, un, &err), 0);
	assert_page_enforced(f, 2, packed);
	assert_int_equal(tm_region_get_tags(f->r, 2, TM_TAGS_UNPACKED, out, &err), 0);
	assert_memory_equal(un, out, n);
}

/* write_page places data and tags; direct checked loads see the data;
 * read_page returns both; a NULL-tags write makes the page untagged. */
static void t_write_page_read_page(void **state)
{
	fx *f = *state;
	uint8_t tags[TM_PAGE_SIZE_MAX / 32], tout[TM_PAGE_SIZE_MAX / 32];
	uint8_t *data = malloc(f->ps), *dout = malloc(f->ps);
	tm_error err;

	mt_require();
	assert_non_null(data);
	assert_non_null(dout);
	for (size_t i = 0; i < f->ps; i++)
		data[i] = (uint8_t)tm_rng_next(&f->rng);
	random_tags(f, tags);
	assert_int_equal(tm_region_write_page(f->r, 3, data, tags, &err), 0);
	assert_page_enforced(f, 3, tags); /* its stores write back what it read */
	for (size_t g = 0; g < f->ps / 16; g++) {
		const uint8_t *p = tm_region_ptr(f->r, 3 * f->ps + g * 16);

		if (memcmp(p, data + g * 16, 16) != 0)
			fail_msg("granule %zu of page 3: direct load differs", g);
	}
	assert_int_equal(tm_region_read_page(f->r, 3, dout, tout, &err), 0);
	assert_memory_equal(data, dout, f->ps);
	assert_memory_equal(tags, tout, f->nt);

	assert_int_equal(tm_region_write_page(f->r, 3, data, NULL, &err), 0);
	assert_false(tm_region_page_tagged(f->r, 3));
	assert_int_equal(tm_region_read_page(f->r, 3, dout, tout, &err), 0);
	assert_memory_equal(data, dout, f->ps);
	for (size_t i = 0; i < f->nt; i++)
		assert_int_equal(tout[i], 0);
	mt_assert_no_fault(tm_mte_untag(tm_region_ptr(f->r, 3 * f->ps + 40)), MT_LOAD8);
	free(data);
	free(dout);
}

/* zero_page: data and tags zero, the old tags now fault, tag 0 passes. */
static void t_zero_page(void **state)
{
	fx *f = *state;
	uint8_t tags[TM_PAGE_SIZE_MAX / 32], tout[TM_PAGE_SIZE_MAX / 32];
	uint8_t *data = malloc(f->ps);
	char *raw;
	tm_error err;

	mt_require();
	assert_non_null(data);
	memset(data, 0x77, f->ps);
	memset(tags, 0xee, f->nt);
	assert_int_equal(tm_region_write_page(f->r, 0, data, tags, &err), 0);
	assert_int_equal(tm_region_zero_page(f->r, 0, &err), 0);
	assert_false(tm_region_page_tagged(f->r, 0));
	assert_int_equal(tm_region_read_page(f->r, 0, data, tout, &err), 0);
	for (size_t i = 0; i < f->ps; i++)
		assert_int_equal(data[i], 0);
	for (size_t i = 0; i < f->nt; i++)
		assert_int_equal(tout[i], 0);
	raw = tm_mte_untag(tm_region_ptr(f->r, 0));
	assert_int_equal(tm_mte_get_tags(raw, f->ps, tout), 0);
	for (size_t i = 0; i < f->nt; i++)
		assert_int_equal(tout[i], 0);
	mt_assert_no_fault(raw + 100, MT_LOAD8);
	mt_assert_tag_fault(tm_mte_with_tag(raw + 100, 0xe), MT_LOAD8, 1);
	free(data);
}

/* A tag range across a page boundary, odd granules at both ends. */
static void t_tag_range_across_pages(void **state)
{
	fx *f = *state;
	size_t off = f->ps - 48, len = 96;
	tm_error err;

	mt_require();
	assert_int_equal(tm_region_set_tag_range(f->r, off, len, 0xa, &err), 0);
	for (size_t o = off; o < off + len; o += 16) {
		char *p = tm_region_ptr(f->r, o + 5);

		assert_int_equal(((uintptr_t)p >> 56) & 0xf, 0xa);
		mt_assert_no_fault(p, MT_STORE8);
		mt_assert_tag_fault(tm_mte_with_tag(p, 0xb), MT_STORE8, 1);
	}
	/* the granules just outside kept their tags */
	assert_int_not_equal(tm_mte_load_tag(tm_region_ptr(f->r, off - 16)), 0xa);
}

/* Byte-granular API calls never fault, whatever the tags, and keep them. */
static void t_api_bytes_never_fault(void **state)
{
	fx *f = *state;
	uint8_t tags[TM_PAGE_SIZE_MAX / 32], tout[TM_PAGE_SIZE_MAX / 32];
	char buf[100], back[100];
	tm_error err;

	mt_require();
	random_tags(f, tags);
	assert_int_equal(tm_region_set_tags(f->r, 1, TM_TAGS_PACKED, tags, &err), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 3);
	assert_int_equal(tm_region_write(f->r, f->ps + 7, buf, sizeof(buf), &err), 0);
	assert_int_equal(tm_region_read(f->r, f->ps + 7, back, sizeof(back), &err), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(tm_region_get_tags(f->r, 1, TM_TAGS_PACKED, tout, &err), 0);
	assert_memory_equal(tags, tout, f->nt);
	assert_page_enforced(f, 1, tags);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_backend_is_mte),
		cmocka_unit_test(t_set_tags_are_enforced),
		cmocka_unit_test(t_unpacked_tags_are_enforced),
		cmocka_unit_test(t_write_page_read_page),
		cmocka_unit_test(t_zero_page),
		cmocka_unit_test(t_tag_range_across_pages),
		cmocka_unit_test(t_api_bytes_never_fault),
	};
	int rc;

	if (mt_group_setup(NULL) != 0)
		return 1;
	rc = cmocka_run_group_tests_name("region_mte", tests, fx_setup, fx_teardown);
	return rc;
}
