/*
 * test_region_config.c - region creation: configuration checks that name
 * the region and the bad field, the geometries (4/16/64 KiB pages, regions
 * without metadata, generic metadata), the mte backend's refusal where MTE
 * is missing, and the digest's definition (XXH3 over each page's data then
 * packed tags, in page order) for every backend.
 */
#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

#include "region_test.h"

RT_FIXTURES(4096, 8);

static tm_region_config base_cfg(void)
{
	tm_region_config c = { .name = "cfg", .size = 16 * 4096,
			       .geom = rt_geom_mte(4096),
			       .backend = TM_BACKEND_SOFT };
	return c;
}

static void expect_refused(tm_region_config c, int code, const char *needle)
{
	tm_region *r = (tm_region *)1;
	tm_error err;

	tm_error_clear(&err);
	assert_int_equal(tm_region_create(&c, &r, &err), code);
	assert_int_equal(err.code, code);
	assert_null(r);
	if (!strstr(err.msg, needle))
		fail_msg("'%s' not in '%s'", needle, err.msg);
}

static void test_config_refusals(void **state)
{
	tm_region_config c;
	char longname[100];

	(void)state;
	c = base_cfg(); c.size = 4096 * 3 + 1;
	expect_refused(c, -EINVAL, "'cfg': size 12289");
	c = base_cfg(); c.size = 0;
	expect_refused(c, -EINVAL, "size 0");
	c = base_cfg(); c.geom.page_size = 8192;
	expect_refused(c, -EINVAL, "page size 8192");
	c = base_cfg(); c.geom.bits = 3;
	expect_refused(c, -EINVAL, "'cfg'");
	c = base_cfg(); c.geom.kind = 9;
	expect_refused(c, -EINVAL, "kind 9");
	c = base_cfg(); c.backend = (enum tm_backend)5;
	expect_refused(c, -EINVAL, "backend 5");
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	c = base_cfg(); c.name = longname;
	expect_refused(c, -ENAMETOOLONG, "longer than 63");
	c = base_cfg(); c.geom = (tm_geom){ .kind = TM_META_NONE, .page_size = 4096 };
	c.backend = TM_BACKEND_MTE;
	if (!tm_mte_available())
		expect_refused(c, -ENOTSUP, "MTE");
	else
		expect_refused(c, -EINVAL, "MTE geometry");
}

static void test_mte_refused_without_hw(void **state)
{
	tm_region_config c = base_cfg();

	(void)state;
	c.backend = TM_BACKEND_MTE;
	if (tm_mte_available()) {
		print_message("SKIP: this host has MTE\n");
		skip();
	}
	expect_refused(c, -ENOTSUP, "HWCAP2_MTE");
}

static void test_page_sizes(void **state)
{
	static const uint32_t sizes[] = { 4096, 16384, 65536 };

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		uint32_t ps = sizes[i];
		size_t pb = ps / 32;
		tm_region_config c = { .name = "ps", .size = 3 * (size_t)ps,
				       .geom = rt_geom_mte(ps) };
		uint8_t *data = malloc(ps), *out = malloc(ps);
		uint8_t *tags = malloc(pb), *ot = malloc(pb);
		tm_region *r;
		tm_error err;

		assert_int_equal(tm_region_create(&c, &r, &err), 0);
		assert_int_equal(tm_region_npages(r), 3);
		memset(data, (int)i + 1, ps);
		for (size_t k = 0; k < pb; k++)
			tags[k] = (uint8_t)(k * 13);
		assert_int_equal(tm_region_write_page(r, 2, data, tags, &err), 0);
		assert_int_equal(tm_region_read_page(r, 2, out, ot, &err), 0);
		assert_memory_equal(out, data, ps);
		assert_memory_equal(ot, tags, pb);
		/* a tag range over the whole last page */
		assert_int_equal(tm_region_set_tag_range(r, ps, ps, 0xE, &err), 0);
		assert_int_equal(tm_region_get_tags(r, 1, TM_TAGS_PACKED, ot, &err), 0);
		for (size_t k = 0; k < pb; k++)
			assert_int_equal(ot[k], 0xEE);
		tm_region_destroy(r);
		free(data); free(out); free(tags); free(ot);
	}
}

static void test_no_metadata(void **state)
{
	tm_region_config c = { .name = "plain", .size = 2 * 4096,
			       .geom = { .kind = TM_META_NONE, .page_size = 4096 } };
	uint8_t data[4096], out[4096], tags[1] = { 0x5A };
	tm_region *r;
	tm_error err;

	(void)state;
	assert_int_equal(tm_region_create(&c, &r, &err), 0);
	memset(data, 0x42, sizeof(data));
	assert_int_equal(tm_region_write_page(r, 1, data, tags, &err), 0);
	assert_false(tm_region_page_tagged(r, 1));
	assert_int_equal(tm_region_read_page(r, 1, out, tags, &err), 0);
	assert_memory_equal(out, data, sizeof(data));
	assert_int_equal(tags[0], 0x5A); /* nothing to copy: untouched */
	tm_error_clear(&err);
	assert_int_equal(tm_region_set_tags(r, 0, TM_TAGS_PACKED, tags, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no metadata"));
	assert_int_equal(tm_region_set_tag_range(r, 0, 16, 1, &err), -EINVAL);
	tm_region_destroy(r);
}

/* Generic metadata: 2 bits per 64 bytes (another architecture's kind). */
static void test_generic_metadata(void **state)
{
	tm_region_config c = { .name = "gen", .size = 4096,
			       .geom = { .kind = TM_META_GENERIC, .version = 1,
					 .page_size = 4096, .granule = 64,
					 .bits = 2 } };
	uint8_t un[64], out[64], packed[16];
	tm_region *r;
	tm_error err;

	(void)state;
	assert_int_equal(tm_region_create(&c, &r, &err), 0);
	for (size_t g = 0; g < 64; g++)
		un[g] = (uint8_t)(g % 4);
	assert_int_equal(tm_region_set_tags(r, 0, TM_TAGS_UNPACKED, un, &err), 0);
	assert_int_equal(tm_region_get_tags(r, 0, TM_TAGS_PACKED, packed, &err), 0);
	for (size_t i = 0; i < 16; i++)
		assert_int_equal(packed[i], 0xE4); /* 3,2,1,0 from the top */
	assert_int_equal(tm_region_get_tags(r, 0, TM_TAGS_UNPACKED, out, &err), 0);
	assert_memory_equal(un, out, sizeof(un));
	un[7] = 4;
	assert_int_equal(tm_region_set_tags(r, 0, TM_TAGS_UNPACKED, un, &err), -EINVAL);
	assert_int_equal(tm_region_set_tag_range(r, 64, 128, 3, &err), 0);
	assert_int_equal(tm_region_get_tags(r, 0, TM_TAGS_UNPACKED, out, &err), 0);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 3);
	assert_int_equal(out[2], 3);
	assert_int_equal(out[3], 3);
	assert_int_equal(tm_region_set_tag_range(r, 32, 64, 1, &err), -EINVAL);
	tm_region_destroy(r);
}

/* The digest is exactly XXH3-64 over (data, packed tags) of each page. */
static void test_digest_definition(void **state)
{
	RT_REGION(state, f, r);
	uint8_t data[4096], tags[128];
	uint64_t d1, d2, d3;
	XXH3_state_t *st = XXH3_createState();
	tm_error err;
	tm_rng rng;

	tm_rng_seed(&rng, 4);
	for (size_t pg = 0; pg < 8; pg += 3) {
		rt_fill(&rng, data, sizeof(data));
		rt_fill(&rng, tags, sizeof(tags));
		assert_int_equal(tm_region_write_page(r, pg, data, tags, &err), 0);
	}
	assert_int_equal(tm_region_digest(r, &d1, &err), 0);
	XXH3_64bits_reset(st);
	for (size_t pg = 0; pg < 8; pg++) {
		assert_int_equal(tm_region_read_page(r, pg, data, tags, &err), 0);
		XXH3_64bits_update(st, data, sizeof(data));
		XXH3_64bits_update(st, tags, sizeof(tags));
	}
	assert_true(XXH3_64bits_digest(st) == d1);
	XXH3_freeState(st);
	/* one tag change changes the digest; changing it back restores it */
	assert_int_equal(tm_region_set_tag_range(r, 4096 * 5 + 160, 16, 1, &err), 0);
	assert_int_equal(tm_region_digest(r, &d2, &err), 0);
	assert_true(d2 != d1);
	assert_int_equal(tm_region_set_tag_range(r, 4096 * 5 + 160, 16, 0, &err), 0);
	assert_int_equal(tm_region_digest(r, &d3, &err), 0);
	assert_true(d3 == d1);
	/* one data byte changes it */
	assert_int_equal(tm_region_write(r, 4096 * 7 + 9, "x", 1, &err), 0);
	assert_int_equal(tm_region_digest(r, &d3, &err), 0);
	assert_true(d3 != d1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_refusals),
		cmocka_unit_test(test_mte_refused_without_hw),
		cmocka_unit_test(test_page_sizes),
		cmocka_unit_test(test_no_metadata),
		cmocka_unit_test(test_generic_metadata),
		RT_BOTH(test_digest_definition),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
