/*
 * test_snapshot_mte.c - a snapshot keeps tags that the workload set itself
 * (STG on the region's memory, not through the region API), so the region
 * never marked those pages tagged. Save must read their tags anyway
 * (tm_region_page_may_be_tagged: mte does not own its tags); restoring into
 * a soft region must give back exactly the hardware tags. Before
 * may_be_tagged, save skipped these pages' tags: the file said "no tags".
 * The kvm backend has the same property for everything a guest writes
 * (tests/kvm, in the VM).
 */
#include <unistd.h>

#include "mte_test.h"
#include "tagmem/region.h"
#include "tagmem/snapshot.h"

#define PS 4096u
#define NPAGES 40u

static tm_region *region(const char *name, enum tm_backend b)
{
	tm_region_config cfg;
	tm_region *r = NULL;
	tm_error err;

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(tm_geom_mte(&cfg.geom, PS, &err), 0);
	cfg.name = name;
	cfg.size = (size_t)NPAGES * PS;
	cfg.backend = b;
	if (tm_region_create(&cfg, &r, &err))
		fail_msg("tm_region_create: %s", tm_error_msg(&err));
	return r;
}

static void test_foreign_tags_saved(void **state)
{
	char path[] = "/tmp/tm-snap-mte-XXXXXX";
	uint8_t want[128], got[128];
	tm_region *src, *dst;
	tm_snapshot *s = NULL;
	tm_snap_stats st;
	tm_error err;
	int fd;

	(void)state;
	mt_require();
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	src = region("ram", TM_BACKEND_MTE);
	dst = region("ram", TM_BACKEND_SOFT);
	/* pages 3, 17, 31: tags by raw STG, data through the API */
	for (unsigned i = 0; i < 128; i++)
		want[i] = (uint8_t)(i * 37 + 1);
	for (unsigned pg = 3; pg < NPAGES; pg += 14) {
		void *a = tm_region_ptr(src, (size_t)pg * PS);

		assert_int_equal(tm_region_write(src, (size_t)pg * PS, "data", 4, &err), 0);
		assert_int_equal(tm_mte_set_tags(tm_mte_untag(a), PS, want), 0);
		assert_false(tm_region_page_tagged(src, pg));
		assert_true(tm_region_page_may_be_tagged(src, pg));
	}
	if (tm_snapshot_save(path, &src, 1, NULL, &st, &err))
		fail_msg("save: %s", tm_error_msg(&err));
	assert_int_equal(st.tagged_pages, 3);   /* pages 3, 17, 31 */
	assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), 0);
	assert_int_equal(tm_snapshot_restore(s, &dst, 1, NULL, NULL, &err), 0);
	for (unsigned pg = 3; pg < NPAGES; pg += 14) {
		assert_int_equal(tm_region_get_tags(dst, pg, TM_TAGS_PACKED, got, &err), 0);
		assert_memory_equal(got, want, sizeof(want));
	}
	assert_int_equal(tm_region_get_tags(dst, 4, TM_TAGS_PACKED, got, &err), 0);
	for (unsigned i = 0; i < 128; i++)
		assert_int_equal(got[i], 0);
	tm_snapshot_close(s);
	tm_region_destroy(src);
	tm_region_destroy(dst);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_foreign_tags_saved),
	};

	return cmocka_run_group_tests(tests, mt_group_setup, NULL);
}
