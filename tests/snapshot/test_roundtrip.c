/*
 * test_roundtrip.c - save then restore, for every page size (4/16/64 KiB),
 * one and several regions (tagged and untagged mixed), raw and zstd, one
 * and several threads, default and tiny chunks (chunks sharing bitmap
 * words, a short last chunk): the restored regions must have the source's
 * digest, the file must report exactly the page classes the workload made,
 * zero pages must not be stored, and a destination that held other data
 * must end up equal to the source (zero pages really zeroed).
 */
#include "snap_test.h"

#include <sys/mount.h>

struct rt_case {
	uint32_t page_size;
	size_t nregions;
	unsigned flags;
	unsigned threads;
	uint32_t chunk_pages;   /* 0: default chunk */
};

static char dir[256];

static size_t region_pages(size_t i, uint32_t ps)
{
	static const size_t sizes[] = { 67, 300, 1, 129 };

	return ps == 65536 ? sizes[i % 4] / 4 + 1 : sizes[i % 4];
}

static void check_info(tm_snapshot *s, const st_counts *want, size_t n,
		       const struct rt_case *c)
{
	tm_snap_info info;
	st_counts got = { 0 };
	tm_error err;

	tm_snapshot_info(s, &info);
	assert_int_equal(info.version, TM_SNAP_VERSION);
	assert_int_equal(info.flags, c->flags | TM_SNAP_DIGEST);
	assert_int_equal(info.geom.page_size, c->page_size);
	assert_int_equal(info.nregions, n);
	for (size_t i = 0; i < n; i++) {
		tm_snap_region_info ri;

		assert_int_equal(tm_snapshot_region_info(s, i, &ri, &err), 0);
		assert_int_equal(ri.npages, region_pages(i, c->page_size));
		assert_true(ri.has_digest);
		got.pages += ri.npages;
		got.normal += ri.normal_pages;
		got.tagged += ri.tagged_pages;
		got.tag_only += ri.tag_only_pages;
		got.zero += ri.zero_pages;
	}
	assert_memory_equal(&got, want, sizeof(got));
}

static void run_case(const struct rt_case *c)
{
	tm_region *src[4], *dst[4];
	st_counts cnt = { 0 };
	tm_snap_opts o;
	tm_snap_stats st, rst;
	tm_snapshot *s;
	char path[512], name[32];
	tm_error err;

	tm_error_clear(&err);
	for (size_t i = 0; i < c->nregions; i++) {
		snprintf(name, sizeof(name), "r%zu", i);
		src[i] = st_region(name, c->page_size, region_pages(i, c->page_size),
				   i != 1, 1000 + i + c->page_size, &cnt);
	}
	tm_snap_opts_init(&o);
	o.flags = c->flags | TM_SNAP_DIGEST;
	o.threads = c->threads;
	if (c->chunk_pages)
		o.chunk_bytes = c->chunk_pages * c->page_size;
	snprintf(path, sizeof(path), "%s/rt-%u-%zu-%u.snap", dir, c->page_size,
		 c->nregions, c->flags);
	if (tm_snapshot_save(path, src, c->nregions, &o, &st, &err) != 0)
		fail_msg("save: %s", err.msg);
	assert_int_equal(st.pages, cnt.pages);
	assert_int_equal(st.normal_pages, cnt.normal);
	assert_int_equal(st.tag_only_pages, cnt.tag_only);
	assert_int_equal(st.zero_pages, cnt.zero);
	assert_int_equal(st.file_bytes, st_file_size(path));
	if (!(c->flags & TM_SNAP_ZSTD))
		assert_int_equal(st.data_bytes, cnt.normal * c->page_size);

	if (tm_snapshot_open(path, &o, &s, &err) != 0)
		fail_msg("open: %s", err.msg);
	check_info(s, &cnt, c->nregions, c);
	assert_int_equal(tm_snapshot_create_regions(s, TM_BACKEND_SOFT, dst, &err), 0);
	for (size_t i = 0; i < c->nregions; i++)
		st_pattern(dst[i], (uint8_t)(0x11 * (i + 1)));
	if (tm_snapshot_restore(s, dst, c->nregions, &o, &rst, &err) != 0)
		fail_msg("restore: %s", err.msg);
	assert_int_equal(rst.bad_chunks, 0);
	for (size_t i = 0; i < c->nregions; i++) {
		assert_string_equal(tm_region_name(dst[i]), tm_region_name(src[i]));
		assert_int_equal(st_digest(dst[i]), st_digest(src[i]));
	}
	assert_int_equal(tm_snapshot_check_digests(s, dst, c->nregions, &err), 0);
	assert_int_equal(tm_snapshot_verify(s, &o, &rst, &err), 0);
	assert_int_equal(rst.bad_chunks, 0);
	tm_snapshot_close(s);
	for (size_t i = 0; i < c->nregions; i++) {
		tm_region_destroy(src[i]);
		tm_region_destroy(dst[i]);
	}
	unlink(path);
}

static void test_all_page_sizes(void **state)
{
	static const uint32_t ps[] = { 4096, 16384, 65536 };
	static const size_t nr[] = { 1, 4 };
	static const unsigned fl[] = { 0, TM_SNAP_ZSTD };

	(void)state;
	for (size_t a = 0; a < 3; a++)
		for (size_t b = 0; b < 2; b++)
			for (size_t f = 0; f < 2; f++) {
				struct rt_case c = { ps[a], nr[b], fl[f], 4, 0 };

				run_case(&c);
			}
}

/* Tiny chunks: many chunks per region, chunks sharing bitmap words, short
 * last chunks, one thread and many. */
static void test_small_chunks(void **state)
{
	static const uint32_t ps[] = { 4096, 16384, 65536 };

	(void)state;
	for (size_t a = 0; a < 3; a++)
		for (unsigned f = 0; f < 2; f++) {
			struct rt_case c = { ps[a], 3, f ? TM_SNAP_ZSTD : 0, 1, 3 };

			run_case(&c);
			c.threads = 7;
			c.chunk_pages = 1;
			run_case(&c);
		}
}

/* Buffered I/O gives the same file and reports why direct I/O is off. */
static void test_buffered_io(void **state)
{
	tm_region *r = st_region("b", 4096, 200, true, 77, NULL), *d;
	tm_snap_opts o;
	tm_snap_stats st;
	tm_snapshot *s;
	char path[512];
	tm_error err;

	(void)state;
	tm_snap_opts_init(&o);
	o.io = TM_SNAP_IO_BUFFERED;
	snprintf(path, sizeof(path), "%s/buffered.snap", dir);
	assert_int_equal(tm_snapshot_save(path, &r, 1, &o, &st, &err), 0);
	assert_false(st.direct_io);
	assert_non_null(strstr(st.io_note, "buffered"));
	assert_int_equal(tm_snapshot_open(path, &o, &s, &err), 0);
	assert_int_equal(tm_snapshot_create_regions(s, TM_BACKEND_SOFT, &d, &err), 0);
	assert_int_equal(tm_snapshot_restore(s, &d, 1, &o, &st, &err), 0);
	assert_false(st.direct_io);
	assert_int_equal(st_digest(d), st_digest(r));
	tm_snapshot_close(s);
	tm_region_destroy(d);
	tm_region_destroy(r);
	unlink(path);
}

/* On a file system without O_DIRECT (ramfs) save and restore fall back to
 * the page cache and say why; requiring direct I/O fails cleanly. Needs
 * mount(2) (root): skipped with the reason otherwise. */
static void test_no_direct_io_fallback(void **state)
{
	tm_region *r = st_region("f", 4096, 64, true, 9, NULL), *d;
	char mnt[300], path[400];
	tm_snap_opts o;
	tm_snap_stats st;
	tm_snapshot *s;
	tm_error err;

	(void)state;
	snprintf(mnt, sizeof(mnt), "%s/ramfs", dir);
	assert_int_equal(mkdir(mnt, 0755), 0);
	if (mount("none", mnt, "ramfs", 0, NULL) != 0) {
		int e = errno;

		tm_region_destroy(r);
		rmdir(mnt);
		tm_test_skip("ramfs", "cannot mount a ramfs (%s)", strerror(e));
	}
	snprintf(path, sizeof(path), "%s/f.snap", mnt);
	tm_snap_opts_init(&o);
	o.io = TM_SNAP_IO_DIRECT;
	assert_int_equal(tm_snapshot_save(path, &r, 1, &o, &st, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "direct I/O"));
	assert_int_equal(access(path, F_OK), -1);
	o.io = TM_SNAP_IO_AUTO;
	assert_int_equal(tm_snapshot_save(path, &r, 1, &o, &st, &err), 0);
	assert_false(st.direct_io);
	assert_true(st.io_note[0] != 0);
	assert_int_equal(tm_snapshot_open(path, &o, &s, &err), 0);
	assert_int_equal(tm_snapshot_create_regions(s, TM_BACKEND_SOFT, &d, &err), 0);
	assert_int_equal(tm_snapshot_restore(s, &d, 1, &o, &st, &err), 0);
	assert_false(st.direct_io);
	assert_int_equal(st_digest(d), st_digest(r));
	tm_snapshot_close(s);
	tm_region_destroy(d);
	tm_region_destroy(r);
	unlink(path);
	assert_int_equal(umount2(mnt, MNT_DETACH), 0);
	rmdir(mnt);
}

/* A file of zero pages only stores no page data at all (sparse). */
static void test_zero_pages_not_stored(void **state)
{
	tm_region_config cfg = { .name = "z", .size = 1024 * 4096, .backend = TM_BACKEND_SOFT };
	tm_region *r;
	tm_snap_stats st;
	struct stat sb;
	char path[512];
	tm_error err;

	(void)state;
	assert_int_equal(tm_geom_mte(&cfg.geom, 4096, &err), 0);
	assert_int_equal(tm_region_create(&cfg, &r, &err), 0);
	snprintf(path, sizeof(path), "%s/zero.snap", dir);
	assert_int_equal(tm_snapshot_save(path, &r, 1, NULL, &st, &err), 0);
	assert_int_equal(st.zero_pages, 1024);
	assert_int_equal(st.data_bytes + st.tag_bytes, 0);
	assert_int_equal(stat(path, &sb), 0);
	/* 4 MiB of pages + 128 KiB of tags described, only the head and the
	 * metadata allocated. */
	assert_true((uint64_t)sb.st_blocks * 512 < 64 * 1024);
	assert_true((uint64_t)sb.st_size >= 1024 * 4096);
	tm_region_destroy(r);
	unlink(path);
}

/* Regions that cannot share a file are refused, naming the region. */
static void test_refuses_mixed_page_sizes(void **state)
{
	tm_region *r[2] = { st_region("a", 4096, 4, true, 1, NULL),
			    st_region("b", 16384, 4, true, 2, NULL) };
	char path[512];
	tm_error err;

	(void)state;
	tm_error_clear(&err);
	snprintf(path, sizeof(path), "%s/mixed.snap", dir);
	assert_int_equal(tm_snapshot_save(path, r, 2, NULL, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "'b'"));
	assert_int_equal(access(path, F_OK), -1);
	tm_region_destroy(r[0]);
	tm_region_destroy(r[1]);
}

/* A restore into regions of the wrong shape is refused before any read. */
static void test_refuses_wrong_destination(void **state)
{
	tm_region *r = st_region("a", 4096, 8, true, 1, NULL);
	tm_region *d = st_region("a", 4096, 9, true, 1, NULL);
	tm_region *u = st_region("a", 4096, 8, false, 1, NULL);
	uint64_t before = st_digest(d);
	tm_snapshot *s;
	char path[512];
	tm_error err;

	(void)state;
	snprintf(path, sizeof(path), "%s/shape.snap", dir);
	assert_int_equal(tm_snapshot_save(path, &r, 1, NULL, NULL, &err), 0);
	assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), 0);
	assert_int_equal(tm_snapshot_restore(s, &d, 1, NULL, NULL, &err), -EINVAL);
	assert_int_equal(st_digest(d), before);
	assert_int_equal(tm_snapshot_restore(s, &u, 1, NULL, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "tags"));
	tm_snapshot_close(s);
	tm_region_destroy(r);
	tm_region_destroy(d);
	tm_region_destroy(u);
	unlink(path);
}

/* The tag-codec ratio is computed from the file and is plausible. */
static void test_tag_ratio(void **state)
{
	tm_region *r = st_region("t", 4096, 256, true, 5, NULL);
	uint64_t raw, coded;
	tm_snapshot *s;
	double ratio;
	char path[512];
	tm_error err;

	(void)state;
	for (unsigned f = 0; f < 2; f++) {
		tm_snap_opts o;
		tm_snap_stats st;

		tm_snap_opts_init(&o);
		o.flags = f ? TM_SNAP_ZSTD : 0;
		snprintf(path, sizeof(path), "%s/ratio%u.snap", dir, f);
		assert_int_equal(tm_snapshot_save(path, &r, 1, &o, &st, &err), 0);
		assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), 0);
		assert_int_equal(tm_snapshot_tag_ratio(s, &ratio, &raw, &coded, &err), 0);
		assert_int_equal(raw, st.tagged_pages * 128);
		assert_true(coded > 0 && ratio > 1.0);
		if (f)
			assert_true(st.tag_bytes <= raw);
		tm_snapshot_close(s);
		unlink(path);
	}
	tm_region_destroy(r);
}

ST_DIR_GROUP("rt")

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_page_sizes),
		cmocka_unit_test(test_small_chunks),
		cmocka_unit_test(test_buffered_io),
		cmocka_unit_test(test_no_direct_io_fallback),
		cmocka_unit_test(test_zero_pages_not_stored),
		cmocka_unit_test(test_refuses_mixed_page_sizes),
		cmocka_unit_test(test_refuses_wrong_destination),
		cmocka_unit_test(test_tag_ratio),
	};

	return cmocka_run_group_tests(tests, st_group_setup, st_group_teardown);
}
