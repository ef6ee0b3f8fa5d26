/*
 * test_region_config.c - region creation: configuration checks that name
 * the region and the bad field, the geometries (4/16/64 KiB pages, regions
 * without metadata, generic metadata), the mte backend's refusal where MTE
 * is missing, the digest's definition (XXH3 over each page's data then
 * packed tags, in page order) for every backend, and creation with a
 * caller's backend table (tm_region_create_with): what the core refuses,
 * attach/detach, the version rule, page state, batching of tag calls and
 * the fallbacks for optional methods.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
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
	c = base_cfg(); c.backend = TM_BACKEND_OTHER;
	expect_refused(c, -EINVAL, "tm_region_create_with");
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
		tm_test_skip(NULL, "this host has MTE: the refusal without it cannot happen here");
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

/* ---- caller backends ------------------------------------------- */

static void with_refused(tm_region_config c, const tm_backend_methods *m,
			 void *ctx, const char *needle)
{
	tm_region *r = (tm_region *)1;
	tm_error err;

	tm_error_clear(&err);
	assert_int_equal(tm_region_create_with(&c, m, ctx, &r, &err), -EINVAL);
	assert_null(r);
	if (!strstr(err.msg, needle))
		fail_msg("'%s' not in '%s'", needle, err.msg);
	assert_non_null(strstr(err.msg, "'cfg'"));
}

/* A table the core cannot use is refused before any method is called. */
static void test_backend_table_refusals(void **state)
{
	tb_ctx *c = tb_new(TB_MEM, 16 * 4096, 4096);
	tm_backend_methods m = tb_mem_methods;
	tm_region_config nometa = base_cfg();

	(void)state;
	assert_non_null(c);
	with_refused(base_cfg(), NULL, c, "no backend methods");
	m.version = 0;
	with_refused(base_cfg(), &m, c, "version 0");
	m = tb_mem_methods; m.read_data = NULL;
	with_refused(base_cfg(), &m, c, "read_data");
	m = tb_mem_methods; m.write_tags = NULL;
	with_refused(base_cfg(), &m, c, "read_tags/write_tags");
	m = tb_mem_methods; m.dirty_stop = NULL;
	with_refused(base_cfg(), &m, c, "dirty_start/collect/stop");
	m = tb_mem_methods; m.mapping = NULL;
	with_refused(base_cfg(), &m, c, "no mapping");
	nometa.addr = c->mem;
	with_refused(nometa, &tb_mem_methods, c, "cfg->addr");
	for (int k = 0; k < TB_NCALLS; k++)
		assert_int_equal(c->calls[k], 0);
	/* a region without metadata needs no tag methods */
	m = tb_mem_methods; m.read_tags = NULL; m.write_tags = NULL;
	nometa = base_cfg();
	nometa.geom = (tm_geom){ .kind = TM_META_NONE, .page_size = 4096 };
	c->page_size = 4096;
	tm_region *r;
	tm_error err;
	/* attach insists on MTE geometry: use a table without attach */
	m.attach = NULL;
	assert_int_equal(tm_region_create_with(&nometa, &m, c, &r, &err), 0);
	assert_int_equal(tm_region_write(r, 100, "abc", 3, &err), 0);
	assert_memory_equal(c->mem + 100, "abc", 3);
	tm_region_destroy(r);
	tb_free(c);
}

/* attach may refuse (naming the layout); then nothing else is called, not
 * even detach. On success detach comes once, at destroy, last. */
static void test_backend_attach_detach(void **state)
{
	tb_ctx *c = tb_new(TB_FILE, 16 * 4096, 4096);
	tm_region_config cfg = base_cfg();
	tm_region *r = (tm_region *)1;
	tm_error err;

	(void)state;
	assert_non_null(c);
	c->expect_size = 8 * 4096;
	tm_error_clear(&err);
	assert_int_equal(tm_region_create_with(&cfg, &tb_file_methods, c, &r, &err),
			 -EINVAL);
	assert_null(r);
	assert_non_null(strstr(err.msg, "'cfg'"));
	assert_non_null(strstr(err.msg, "test-file"));
	assert_non_null(strstr(err.msg, "layout differs"));
	assert_non_null(strstr(err.msg, "0x10000"));
	assert_int_equal(c->calls[TB_ATTACH], 1);
	assert_int_equal(c->calls[TB_DETACH], 0);
	assert_int_equal(c->calls[TB_PAGE_STATE], 0);
	c->expect_size = 16 * 4096;
	assert_int_equal(tm_region_create_with(&cfg, &tb_file_methods, c, &r, &err), 0);
	assert_int_equal(c->calls[TB_ATTACH], 2);
	assert_int_equal(tm_region_write(r, 5, "x", 1, &err), 0);
	assert_int_equal(c->calls[TB_DETACH], 0);
	tm_region_destroy(r);
	assert_int_equal(c->calls[TB_DETACH], 1);
	tb_free(c);
}

/*
 * The version rule: a table is copied at creation (the caller's may go
 * away), and a table claiming a newer version than the library knows is
 * used as the newest it knows.
 */
static void test_backend_version_and_copy(void **state)
{
	tb_ctx *c = tb_new(TB_MEM, 16 * 4096, 4096);
	tm_region_config cfg = base_cfg();
	tm_backend_methods *m = malloc(sizeof(*m));
	uint8_t data[4096], out[4096];
	tm_region *r;
	tm_error err;

	(void)state;
	assert_non_null(c);
	assert_non_null(m);
	*m = tb_mem_methods;
	m->version = TM_BACKEND_VERSION + 5;
	assert_int_equal(tm_region_create_with(&cfg, m, c, &r, &err), 0);
	memset(m, 0xA5, sizeof(*m)); /* garbage: the region must not look */
	free(m);
	memset(data, 0x3C, sizeof(data));
	assert_int_equal(tm_region_write_page(r, 2, data, NULL, &err), 0);
	assert_int_equal(tm_region_read_page(r, 2, out, NULL, &err), 0);
	assert_memory_equal(out, data, sizeof(data));
	assert_string_equal(tm_region_backend_name(r), "test-mem");
	tm_region_destroy(r);
	assert_int_equal(c->calls[TB_DETACH], 1);
	tb_free(c);
}

/* page_state: pages the backend says are not resident start not present. */
static void test_backend_page_state(void **state)
{
	tb_ctx *c = tb_new(TB_FILE, 300 * 4096, 4096);
	tm_region_config cfg = base_cfg();
	tm_region *r;
	tm_error err;

	(void)state;
	assert_non_null(c);
	cfg.size = 300 * 4096;
	c->resident[3] = c->resident[299] = c->resident[257] = 0;
	assert_int_equal(tm_region_create_with(&cfg, &tb_file_methods, c, &r, &err), 0);
	for (size_t pg = 0; pg < 300; pg++)
		assert_int_equal(tm_region_page_present(r, pg),
				 pg != 3 && pg != 299 && pg != 257);
	/* 300 pages in steps of at most 256 */
	assert_int_equal(c->calls[TB_PAGE_STATE], 2);
	assert_int_equal(tm_region_write(r, 3 * 4096, "y", 1, &err), 0);
	assert_true(tm_region_page_present(r, 3));
	tm_region_destroy(r);
	tb_free(c);
}

/*
 * A backend that pays per call sees a batch: a 64-page read goes to it as
 * one read_tags of 64 pages (the file backend has no read_pages, so this
 * is the core's fallback); set_tag_range and discard, which it lacks, are
 * done through write_tags/write_data by the core.
 */
static void test_backend_batches_and_fallbacks(void **state)
{
	tb_ctx *c = tb_new(TB_FILE, 80 * 4096, 4096);
	tm_region_config cfg = base_cfg();
	static uint8_t data[64 * 4096], tags[64 * 128];
	uint8_t un[256];
	tm_region *r;
	tm_error err;

	(void)state;
	assert_non_null(c);
	cfg.size = 80 * 4096;
	assert_int_equal(tm_region_create_with(&cfg, &tb_file_methods, c, &r, &err), 0);
	memset(tags, 0x77, 128);
	assert_int_equal(tm_region_write_page(r, 10, data, tags, &err), 0);
	atomic_store(&c->calls[TB_READ_TAGS], 0);
	atomic_store(&c->tag_pages_read, 0);
	assert_int_equal(tm_region_read_pages(r, 8, 64, data, tags, &err), 0);
	assert_int_equal(c->calls[TB_READ_TAGS], 1);
	assert_int_equal(c->tag_pages_read, 64);
	assert_int_equal(tags[2 * 128 + 5], 0x77);
	assert_int_equal(tm_region_read_pages(r, 8, 64, NULL, tags, &err), 0);
	assert_int_equal(c->calls[TB_READ_TAGS], 2);
	/* set_tag_range by read-modify-write: neighbours keep their tags */
	assert_int_equal(tm_region_set_tag_range(r, 10 * 4096 + 48, 32, 0x2, &err), 0);
	assert_int_equal(tm_region_get_tags(r, 10, TM_TAGS_UNPACKED, un, &err), 0);
	for (size_t g = 0; g < 256; g++)
		assert_int_equal(un[g], g == 3 || g == 4 ? 0x2 : 0x7);
	/* the unpacked array is what a KVM/ptrace medium would hold */
	assert_int_equal(c->tags[10 * 256 + 3], 0x2);
	assert_int_equal(c->tags[10 * 256 + 5], 0x7);
	/* discard without a discard method: zero data and tags written */
	memset(data, 0x99, 4096);
	assert_int_equal(tm_region_write_page(r, 11, data, tags, &err), 0);
	assert_int_equal(tm_region_discard(r, 10, 2, &err), 0);
	assert_false(tm_region_page_tagged(r, 10));
	assert_false(tm_region_page_present(r, 11));
	assert_int_equal(tm_region_read_pages(r, 10, 2, data, tags, &err), 0);
	assert_true(tm_mem_is_zero(data, 2 * 4096));
	assert_true(tm_mem_is_zero(tags, 2 * 128));
	assert_true(tm_mem_is_zero(c->tags + 10 * 256, 2 * 256));
	tm_region_destroy(r);
	tb_free(c);
}

/* A backend's errors come back wrapped with region, page and offset. */
static void test_backend_errors_named(void **state)
{
	tb_ctx *c = tb_new(TB_FILE, 16 * 4096, 4096);
	tm_region_config cfg = base_cfg();
	uint8_t buf[4096];
	tm_region *r;
	tm_error err;

	(void)state;
	assert_non_null(c);
	assert_int_equal(tm_region_create_with(&cfg, &tb_file_methods, c, &r, &err), 0);
	close(c->fd);
	c->fd = -1; /* every pread/pwrite now fails with EBADF */
	tm_error_clear(&err);
	assert_int_equal(tm_region_read_page(r, 7, buf, NULL, &err), -EBADF);
	assert_non_null(strstr(err.msg, "'cfg'"));
	assert_non_null(strstr(err.msg, "test-file backend"));
	assert_non_null(strstr(err.msg, "page 7"));
	assert_non_null(strstr(err.msg, "0x7000"));
	assert_non_null(strstr(err.msg, "pread"));
	tm_error_clear(&err);
	assert_int_equal(tm_region_write(r, 3 * 4096 + 1, "z", 1, &err), -EBADF);
	assert_non_null(strstr(err.msg, "page 3"));
	tm_region_destroy(r);
	tb_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_refusals),
		cmocka_unit_test(test_mte_refused_without_hw),
		cmocka_unit_test(test_page_sizes),
		cmocka_unit_test(test_no_metadata),
		cmocka_unit_test(test_generic_metadata),
		RT_ALL(test_digest_definition),
		cmocka_unit_test(test_backend_table_refusals),
		cmocka_unit_test(test_backend_attach_detach),
		cmocka_unit_test(test_backend_version_and_copy),
		cmocka_unit_test(test_backend_page_state),
		cmocka_unit_test(test_backend_batches_and_fallbacks),
		cmocka_unit_test(test_backend_errors_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
