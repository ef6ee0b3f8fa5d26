/*
 * consumer.c - a program written the way an outside caller writes one:
 * only <tagmem/...> headers, built with `pkg-config --cflags --libs
 * tagmem` against an installed tagmem (tests/pkg/install_test.py builds it
 * once against libtagmem.so and once fully static) and, in the build tree,
 * against tagmem_dep. It moves a page with its tags from one region to
 * another and checks both arrived; it prints one line per check, and
 * install_test.py compares the lines with what it expects.
 */
#include <stdio.h>
#include <string.h>

#include <tagmem/region.h>
#include <tagmem/tags.h>

#define PAGES 4u
#define PS 4096u

static int fail(const char *what, const tm_error *err)
{
	fprintf(stderr, "consumer: %s: %s\n", what, tm_error_msg(err));
	return 1;
}

static int make_region(const char *name, tm_region **out, tm_error *err)
{
	tm_region_config cfg = { .struct_size = sizeof(cfg), .name = name,
				 .size = PAGES * PS, .backend = TM_BACKEND_SOFT };
	int rc = tm_geom_mte(&cfg.geom, PS, err);

	return rc ? rc : tm_region_create(&cfg, out, err);
}

/* Page 2 of src gets data and a tag per 16-byte granule, then travels to
 * dst through read_page/write_page, as a migration would carry it. */
static int move_page(tm_region *src, tm_region *dst, tm_error *err)
{
	static uint8_t data[PS];
	uint8_t unpacked[PS / 16], packed[PS / 32];
	int rc;

	for (unsigned i = 0; i < PS; i++)
		data[i] = (uint8_t)(i * 7 + 1);
	for (unsigned g = 0; g < PS / 16; g++)
		unpacked[g] = (uint8_t)(g % 15 + 1);
	rc = tm_tags_pack(packed, unpacked, PS / 16, err);
	if (!rc)
		rc = tm_region_write_page(src, 2, data, packed, err);
	if (!rc)
		rc = tm_region_read_page(src, 2, data, packed, err);
	return rc ? rc : tm_region_write_page(dst, 2, data, packed, err);
}

int main(void)
{
	tm_region *a = NULL, *b = NULL;
	uint64_t da, db;
	uint8_t tags[PS / 16];
	tm_error err;

	tm_error_clear(&err);
	printf("headers %s (%d), library %s (%u)\n", TAGMEM_VERSION_STRING,
	       TAGMEM_VERSION_NUMBER, tm_version_string(), tm_version_number());
	if (tm_version_number() != TAGMEM_VERSION_NUMBER ||
	    strcmp(tm_version_string(), TAGMEM_VERSION_STRING) != 0)
		return fail("library and headers differ", &err);
	if (make_region("a", &a, &err) || make_region("b", &b, &err))
		return fail("create", &err);
	if (move_page(a, b, &err))
		return fail("move page 2", &err);
	if (tm_region_get_tags(b, 2, TM_TAGS_UNPACKED, tags, &err))
		return fail("get tags", &err);
	printf("page 2 of b: tagged %d, granule 0 tag %u, granule 254 tag %u\n",
	       tm_region_page_tagged(b, 2), tags[0], tags[254]);
	if (tm_region_digest(a, &da, &err) || tm_region_digest(b, &db, &err))
		return fail("digest", &err);
	printf("digests %s\n", da == db ? "equal" : "differ");
	tm_region_destroy(a);
	tm_region_destroy(b);
	return da == db ? 0 : 1;
}
