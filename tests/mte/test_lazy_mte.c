/*
 * test_lazy_mte.c - the users of lazy placement, on mte regions: a lazy
 * snapshot restore into PROT_MTE memory and lazy swap-in of PROT_MTE pages.
 * Every page comes in on its first access (the fault thread places it with
 * STGP into a staging page and UFFDIO_MOVE), and that first access is a
 * load through a pointer carrying the tag the page must have, with
 * synchronous tag checks on: if a page's data were ever visible before its
 * tags, the load itself would fault with SEGV_MTESERR. Afterwards a wrong
 * tag still faults (the checks are real) and the digests match the source.
 *
 * Needs a real arm64 kernel with MTE, userfaultfd and UFFDIO_MOVE (make
 * check-vm); under qemu-user (no userfaultfd) each test skips saying why.
 */
#include "mte_test.h"

#include <errno.h>
#include <unistd.h>

#include "common/util.h"
#include "tagmem/region.h"
#include "tagmem/snapshot.h"
#include "tagmem/swap.h"

#define PS 4096u
#define NP 96u

static char dir[256];

/* Page pg's tag at granule 0 as the source holds it, and a data word. */
struct want {
	uint8_t tags[NP][PS / 32];
	uint64_t word[NP];
};

static tm_region *make_region(const char *name, enum tm_backend b)
{
	tm_region_config c = { .name = name, .size = NP * PS, .backend = b };
	tm_region *r = NULL;
	tm_error err;

	assert_int_equal(tm_geom_mte(&c.geom, PS, &err), 0);
	if (tm_region_create(&c, &r, &err))
		fail_msg("region %s: %s", name, err.msg);
	return r;
}

/* Tagged pages with data, some untagged, some zero (never written). */
static void fill(tm_region *r, struct want *w)
{
	uint8_t data[PS];
	tm_rng rng;
	tm_error err;

	tm_rng_seed(&rng, 77);
	memset(w, 0, sizeof(*w));
	for (size_t pg = 0; pg < NP; pg++) {
		if (pg % 11 == 5)
			continue;                      /* zero page */
		for (size_t i = 0; i < PS; i++)
			data[i] = (uint8_t)tm_rng_next(&rng);
		memcpy(&w->word[pg], data + 64, 8);
		if (pg % 7 == 3) {                     /* untagged */
			assert_int_equal(tm_region_write_page(r, pg, data, NULL, &err), 0);
			continue;
		}
		for (size_t i = 0; i < PS / 32; i++)
			w->tags[pg][i] = (uint8_t)tm_rng_next(&rng);
		w->tags[pg][2] |= 0x03;                /* granule 4 never tag 0 */
		assert_int_equal(tm_region_write_page(r, pg, data, w->tags[pg], &err), 0);
	}
}

/* The region's memory, untagged, without touching any page but page 0
 * (tm_region_ptr reads the granule's tag, which faults page 0 in). */
static uint8_t *base_of(tm_region *r)
{
	return tm_mte_untag(tm_region_ptr(r, 0));
}

/*
 * First access to every page: a checked load of granule 4 with the tag the
 * page must have. Pages in a scrambled order, so neighbours are not placed
 * by the same pass; returns how many loads were refused by the tag check.
 */
static unsigned touch_checked(tm_region *r, const struct want *w)
{
	uint8_t *base = base_of(r);
	unsigned faults = 0;

	for (size_t i = 0; i < NP; i++) {
		size_t pg = (i * 37) % NP;
		uint8_t tag = w->tags[pg][2] & 0xF;   /* granule 4 */
		uint64_t v = 0;
		int code = mt_probe(tm_mte_with_tag(base + pg * PS + 64, tag),
				    MT_LOAD64, &v);

		if (code == SEGV_MTESERR)
			faults++;
		else if (code)
			fail_msg("page %zu: SIGSEGV si_code %d", pg, code);
		else if (v != w->word[pg])
			fail_msg("page %zu: data %#llx, want %#llx", pg,
				 (unsigned long long)v,
				 (unsigned long long)w->word[pg]);
	}
	return faults;
}

/* A wrong tag faults: the restored tags are enforced. */
static void wrong_tag_faults(tm_region *r, const struct want *w)
{
	size_t pg = 1;
	uint8_t tag = w->tags[pg][2] & 0xF;

	mt_assert_tag_fault(tm_mte_with_tag(base_of(r) + pg * PS + 64,
					    (uint8_t)((tag + 1) & 0xF)),
			    MT_LOAD8, 1);
}

static uint64_t digest(tm_region *r)
{
	uint64_t d = 0;
	tm_error err;

	if (tm_region_digest(r, &d, &err))
		fail_msg("digest: %s", err.msg);
	return d;
}

static void test_lazy_snapshot_restore(void **state)
{
	struct want *w = calloc(1, sizeof(*w));
	tm_region *src, *dst;
	tm_snapshot *s;
	tm_snapshot_lazy *l;
	tm_snap_opts o;
	char path[512];
	tm_error err;
	int rc;

	(void)state;
	mt_require();
	src = make_region("ram", TM_BACKEND_SOFT);
	fill(src, w);
	tm_snap_opts_init(&o);
	o.flags = TM_SNAP_DIGEST;
	snprintf(path, sizeof(path), "%s/mte-lazy.snap", dir);
	if (tm_snapshot_save(path, &src, 1, &o, NULL, &err))
		fail_msg("save: %s", err.msg);
	assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), 0);
	assert_int_equal(tm_snapshot_create_regions(s, TM_BACKEND_MTE, &dst, &err), 0);
	tm_error_clear(&err);
	rc = tm_snapshot_lazy_start(s, &dst, 1, &l, &err);
	if (rc == -ENOTSUP) {
		tm_region_destroy(dst);
		tm_snapshot_close(s);
		tm_region_destroy(src);
		unlink(path);
		free(w);
		tm_test_skip("uffd-move", "lazy placement into PROT_MTE unavailable: %s", err.msg);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(touch_checked(dst, w), 0);
	assert_int_equal(tm_snapshot_lazy_faults(l), NP);
	assert_int_equal(tm_snapshot_lazy_stop(l, &err), 0);
	wrong_tag_faults(dst, w);
	assert_int_equal(tm_snapshot_check_digests(s, &dst, 1, &err), 0);
	assert_true(digest(dst) == digest(src));
	tm_region_destroy(dst);
	tm_snapshot_close(s);
	tm_region_destroy(src);
	unlink(path);
	free(w);
}

static void test_lazy_swap_in(void **state)
{
	struct want *w = calloc(1, sizeof(*w));
	tm_swapfile_config sc = { .path = dir, .size = (NP + 8) * PS,
				  .page_size = PS };
	tm_pager_config pc = { 0 };
	tm_region *r;
	tm_swapfile *sf;
	tm_pager *p;
	uint64_t before;
	tm_error err;
	int rc;

	(void)state;
	mt_require();
	r = make_region("swapped", TM_BACKEND_MTE);
	fill(r, w);
	before = digest(r);
	if (tm_swapfile_open(&sc, &sf, &err))
		fail_msg("swap file: %s", err.msg);
	pc.region = r;
	pc.swap = sf;
	pc.lazy = true;
	pc.fault_mode = TM_SWAPIN_PAGE;
	tm_error_clear(&err);
	rc = tm_pager_create(&pc, &p, &err);
	if (rc == -ENOTSUP) {
		tm_swapfile_close(sf);
		tm_region_destroy(r);
		free(w);
		tm_test_skip("uffd-move", "lazy swap-in of PROT_MTE pages unavailable: %s", err.msg);
	}
	assert_int_equal(rc, 0);
	/* page 0 stays resident: base_of reads its tag */
	for (size_t pg = 1; pg < NP; pg++)
		if (tm_swap_out(p, pg, 0, &err))
			fail_msg("swap out page %zu: %s", pg, err.msg);
	assert_int_equal(tm_pager_swapped_pages(p), NP - 1);
	assert_int_equal(touch_checked(r, w), 0);
	assert_int_equal(tm_pager_swapped_pages(p), 0);
	wrong_tag_faults(r, w);
	assert_true(digest(r) == before);
	tm_pager_destroy(p);
	tm_swapfile_close(sf);
	tm_region_destroy(r);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lazy_snapshot_restore),
		cmocka_unit_test(test_lazy_swap_in),
	};
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s", tmp && *tmp ? tmp : "/tmp");
	if (mt_group_setup(NULL) != 0)
		return 1;
	return cmocka_run_group_tests_name("lazy_mte", tests, NULL, NULL);
}
