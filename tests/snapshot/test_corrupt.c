/*
 * test_corrupt.c - damaged, truncated and foreign snapshot files. A byte
 * flipped at a random offset must be caught where it matters: in the head
 * or metadata, open fails naming the offset; in a chunk's stored bytes,
 * verify names exactly that chunk and restore fails without writing
 * anything from it (its pages keep what they held before; every other
 * chunk is either fully restored or untouched); in a hole or padding,
 * nothing is read from there and restore gives the source back. Truncated
 * files, files that shrink after open, appended garbage and foreign files
 * all fail with a message naming the offset.
 */
#include "snap_test.h"

#include "snapshot/snapint.h"

#define NREG 2
#define FLIPS 80
#define CUTS 25

static char dir[256];

struct fixture {
	tm_region *src[NREG], *pat[NREG];
	char path[512];
};

static void make_fixture(struct fixture *f, unsigned flags)
{
	tm_snap_opts o;
	tm_error err;

	f->src[0] = st_region("tagged", 4096, 300, true, 42, NULL);
	f->src[1] = st_region("plain", 4096, 50, false, 43, NULL);
	for (int i = 0; i < NREG; i++) {
		f->pat[i] = st_region(i ? "plain" : "tagged", 4096, i ? 50 : 300, i == 0, 1, NULL);
		st_pattern(f->pat[i], 0x11);
	}
	tm_snap_opts_init(&o);
	o.flags = flags | TM_SNAP_DIGEST;
	o.chunk_bytes = 16 * 4096;
	snprintf(f->path, sizeof(f->path), "%s/c%u.snap", dir, flags);
	if (tm_snapshot_save(f->path, f->src, NREG, &o, NULL, &err))
		fail_msg("save: %s", err.msg);
}

static void free_fixture(struct fixture *f)
{
	for (int i = 0; i < NREG; i++) {
		tm_region_destroy(f->src[i]);
		tm_region_destroy(f->pat[i]);
	}
	unlink(f->path);
}

/* Which chunk's checksummed bytes contain file offset off (-1: none). */
static int chunk_at(const snap_layout *L, uint64_t off, uint32_t *ri,
		    uint64_t *ci)
{
	size_t ps = L->geom.page_size, tb = tm_snap_tag_bytes(L);

	for (uint32_t i = 0; i < L->nregions; i++) {
		const snap_region *R = &L->regions[i];

		for (uint64_t c = 0; c < R->nchunks; c++) {
			const snap_chunk *e = &R->chunks[c];
			uint64_t first = tm_snap_chunk_first(L, c), np = tm_snap_chunk_npages(L, R, c);
			bool hit = false;

			if (L->flags & TM_SNAP_ZSTD)
				hit = off >= e->data_off && off < e->data_off + e->data_len + e->tag_len;
			for (uint64_t k = 0; !(L->flags & TM_SNAP_ZSTD) && k < np; k++) {
				if (tm_bit_test(R->dbits, first + k) && off >= e->data_off + k * ps &&
				    off < e->data_off + (k + 1) * ps)
					hit = true;
				if (tm_bit_test(R->tbits, first + k) && off >= e->tag_off + k * tb &&
				    off < e->tag_off + (k + 1) * tb)
					hit = true;
			}
			if (hit) {
				*ri = i;
				*ci = c;
				return 0;
			}
		}
	}
	return -1;
}

/* Every chunk of dst is either entirely the source or entirely the
 * pattern it held before; returns how many are the pattern. */
static int check_whole_chunks(const snap_layout *L, struct fixture *f,
			      tm_region **dst, int bad_ri, int64_t bad_c)
{
	int untouched = 0;

	for (uint32_t i = 0; i < L->nregions; i++)
		for (uint64_t c = 0; c < L->regions[i].nchunks; c++) {
			uint64_t first = tm_snap_chunk_first(L, c);
			uint64_t np = tm_snap_chunk_npages(L, &L->regions[i], c);
			uint64_t as_src = 0, as_pat = 0;

			for (uint64_t k = 0; k < np; k++) {
				as_src += st_page_equal(dst[i], f->src[i], first + k);
				as_pat += st_page_equal(dst[i], f->pat[i], first + k);
			}
			if (as_src != np && as_pat != np)
				fail_msg("region %u chunk %llu is half restored (%llu source, %llu pattern of %llu)",
					 i, (unsigned long long)c, (unsigned long long)as_src,
					 (unsigned long long)as_pat, (unsigned long long)np);
			if ((int)i == bad_ri && (int64_t)c == bad_c && as_pat != np)
				fail_msg("the bad chunk %u/%lld reached the destination", i, (long long)bad_c);
			untouched += as_pat == np;
		}
	return untouched;
}

static void fresh_dst(struct fixture *f, tm_snapshot *s, tm_region **dst)
{
	tm_error err;

	assert_int_equal(tm_snapshot_create_regions(s, TM_BACKEND_SOFT, dst, &err), 0);
	for (int i = 0; i < NREG; i++)
		st_pattern(dst[i], 0x11);
	(void)f;
}

enum { HIT_HEAD_META, HIT_CHUNK, HIT_HOLE };

/* One flipped byte at off: the outcome the layout says it must have.
 * Returns where it landed. */
static int one_flip(struct fixture *f, const snap_layout *L0, uint64_t off,
		     uint8_t mask)
{
	bool in_head = off < L0->table_end;
	bool in_meta = off >= L0->meta_off && off < L0->meta_off + L0->meta_bytes;
	tm_region *dst[NREG];
	tm_snap_stats st;
	tm_snapshot *s;
	uint32_t ri = 0;
	uint64_t ci = 0;
	bool in_chunk = chunk_at(L0, off, &ri, &ci) == 0;
	tm_error err;
	int rc, where = in_head || in_meta ? HIT_HEAD_META : in_chunk ? HIT_CHUNK : HIT_HOLE;

	st_flip(f->path, off, mask);
	tm_error_clear(&err);
	rc = tm_snapshot_open(f->path, NULL, &s, &err);
	if (in_head || in_meta) {
		if (rc == 0)
			fail_msg("flip at %llu (head/meta) not caught by open", (unsigned long long)off);
		assert_non_null(strstr(err.msg, "offset"));
		goto out;
	}
	if (rc)
		fail_msg("flip at %llu outside head/meta broke open: %s", (unsigned long long)off, err.msg);
	rc = tm_snapshot_verify(s, NULL, &st, &err);
	if (in_chunk) {
		assert_int_equal(rc, -EBADMSG);
		assert_int_equal(st.bad_chunks, 1);
		assert_non_null(strstr(err.msg, "offset"));
		char want[64];
		snprintf(want, sizeof(want), "chunk %llu ", (unsigned long long)ci);
		assert_non_null(strstr(err.msg, want));
		assert_non_null(strstr(err.msg, L0->regions[ri].name));
	} else if (rc) {
		fail_msg("flip at %llu in no chunk failed verify: %s", (unsigned long long)off, err.msg);
	}
	fresh_dst(f, s, dst);
	rc = tm_snapshot_restore(s, dst, NREG, NULL, &st, &err);
	if (in_chunk) {
		assert_int_equal(rc, -EBADMSG);
		assert_true(check_whole_chunks(&s->L, f, dst, (int)ri, (int64_t)ci) >= 1);
	} else {
		assert_int_equal(rc, 0);
		for (int i = 0; i < NREG; i++)
			assert_int_equal(st_digest(dst[i]), st_digest(f->src[i]));
	}
	for (int i = 0; i < NREG; i++)
		tm_region_destroy(dst[i]);
	tm_snapshot_close(s);
out:
	st_flip(f->path, off, mask);    /* put it back */
	return where;
}

/* Offsets worth flipping: anywhere (mostly holes), the head, the metadata
 * and the chunks' stored bytes. */
static uint64_t pick_offset(tm_rng *rng, const snap_layout *L, uint64_t size)
{
	uint32_t ri;
	uint64_t ci, off;

	switch (tm_rng_below(rng, 4)) {
	case 0:
		return tm_rng_below(rng, size);
	case 1:
		return tm_rng_below(rng, L->table_end);
	case 2:
		return L->meta_off + tm_rng_below(rng, L->meta_bytes);
	default:
		for (int i = 0; i < 1000; i++) {
			off = L->data_off + tm_rng_below(rng, size - L->data_off);
			if (chunk_at(L, off, &ri, &ci) == 0)
				return off;
		}
		return tm_rng_below(rng, size);
	}
}

static void flips(unsigned flags)
{
	struct fixture f;
	tm_snapshot *s;
	tm_error err;
	tm_rng rng;
	uint64_t size;
	int hits[3] = { 0 };

	make_fixture(&f, flags);
	size = st_file_size(f.path);
	assert_int_equal(tm_snapshot_open(f.path, NULL, &s, &err), 0);
	tm_rng_seed(&rng, 0xc0ffee + flags);
	for (int i = 0; i < FLIPS; i++) {
		uint64_t off = pick_offset(&rng, &s->L, size);

		hits[one_flip(&f, &s->L, off, (uint8_t)(1u << tm_rng_below(&rng, 8)))]++;
	}
	print_message("%d flips: %d in head/metadata, %d in chunks, %d in holes/padding\n",
		      FLIPS, hits[HIT_HEAD_META], hits[HIT_CHUNK], hits[HIT_HOLE]);
	for (int i = 0; i < 3; i++)
		assert_true(hits[i] >= 5);
	tm_snapshot_close(s);
	free_fixture(&f);
}

static void test_flips_raw(void **state)
{
	(void)state;
	flips(0);
}

static void test_flips_zstd(void **state)
{
	(void)state;
	flips(TM_SNAP_ZSTD);
}

/* Truncated at random lengths: open names the offset where data is missing. */
static void test_truncated(void **state)
{
	struct fixture f;
	char cut[600];
	tm_snapshot *s;
	tm_error err;
	tm_rng rng;
	uint64_t size;

	(void)state;
	make_fixture(&f, TM_SNAP_ZSTD);
	size = st_file_size(f.path);
	snprintf(cut, sizeof(cut), "%s.cut", f.path);
	tm_rng_seed(&rng, 99);
	for (int i = 0; i < CUTS; i++) {
		uint64_t len = i < 3 ? (uint64_t)i * 60 : tm_rng_below(&rng, size);

		st_copy(f.path, cut);
		st_truncate(cut, len);
		tm_error_clear(&err);
		assert_int_not_equal(tm_snapshot_open(cut, NULL, &s, &err), 0);
		assert_non_null(strstr(err.msg, "offset"));
		if (len >= SNAP_HEADER_BYTES) {
			char want[64];

			snprintf(want, sizeof(want), "offset %llu", (unsigned long long)len);
			assert_non_null(strstr(err.msg, "truncated"));
			assert_non_null(strstr(err.msg, want));
		}
	}
	unlink(cut);
	free_fixture(&f);
}

/* A file that shrinks between open and restore: the chunks past the end
 * fail by name, nothing half-written. */
static void test_shrinks_after_open(void **state)
{
	struct fixture f;
	tm_region *dst[NREG];
	tm_snapshot *s;
	tm_error err;

	(void)state;
	make_fixture(&f, 0);
	assert_int_equal(tm_snapshot_open(f.path, NULL, &s, &err), 0);
	fresh_dst(&f, s, dst);
	st_truncate(f.path, s->L.regions[0].data_area + 3 * s->L.regions[0].stride + 17);
	assert_int_equal(tm_snapshot_restore(s, dst, NREG, NULL, NULL, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "truncated"));
	assert_non_null(strstr(err.msg, "offset"));
	check_whole_chunks(&s->L, &f, dst, -1, -1);
	for (int i = 0; i < NREG; i++)
		tm_region_destroy(dst[i]);
	tm_snapshot_close(s);
	free_fixture(&f);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void test_foreign_files(void **state)
{
	static const char text[] = "this is not a snapshot, just some text that is long enough to pass the header size check of the reader ..........\n";
	uint8_t elf[256] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	char path[512];
	tm_snapshot *s;
	tm_error err;

	(void)state;
	snprintf(path, sizeof(path), "%s/foreign", dir);
	write_file(path, "", 0);
	assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "not a tagmem snapshot"));
	write_file(path, text, sizeof(text));
	assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "offset 0"));
	write_file(path, elf, sizeof(elf));
	assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "not a tagmem snapshot"));
	unlink(path);
	assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), -ENOENT);
}

/* A newer format version or unknown feature is refused as such. */
static void test_future_version(void **state)
{
	struct fixture f;
	tm_snapshot *s;
	tm_error err;

	(void)state;
	make_fixture(&f, 0);
	st_flip(f.path, SH_VERSION, 0x02);   /* version 1 -> 3 */
	assert_int_equal(tm_snapshot_open(f.path, NULL, &s, &err), -EPROTONOSUPPORT);
	assert_non_null(strstr(err.msg, "version"));
	st_flip(f.path, SH_VERSION, 0x02);
	assert_int_equal(tm_snapshot_open(f.path, NULL, &s, &err), 0);
	tm_snapshot_close(s);
	free_fixture(&f);
}

/* Bytes appended after the end are not silently accepted. */
static void test_appended_garbage(void **state)
{
	struct fixture f;
	tm_snapshot *s;
	tm_error err;
	uint64_t size;
	int fd;

	(void)state;
	make_fixture(&f, TM_SNAP_ZSTD);
	size = st_file_size(f.path);
	fd = open(f.path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "junk", 4), 4);
	close(fd);
	assert_int_equal(tm_snapshot_open(f.path, NULL, &s, &err), -EBADMSG);
	char want[64];
	snprintf(want, sizeof(want), "offset %llu", (unsigned long long)size);
	assert_non_null(strstr(err.msg, want));
	free_fixture(&f);
}

ST_DIR_GROUP("corrupt")

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flips_raw),
		cmocka_unit_test(test_flips_zstd),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_shrinks_after_open),
		cmocka_unit_test(test_foreign_files),
		cmocka_unit_test(test_future_version),
		cmocka_unit_test(test_appended_garbage),
	};

	return cmocka_run_group_tests(tests, st_group_setup, st_group_teardown);
}
