/*
 * test_sections.c - the snapshot format's typed sections (docs/FORMAT.md
 * "Sections") and the process section inside them ("Process section"),
 * with soft regions, on any host: sections come back byte for byte, a file
 * without them is the version-1 file it always was, the writer refuses
 * bad section lists, the reader refuses every damaged or hand-made framing
 * (checksums recomputed, so the framing checks themselves are what
 * refuses) naming the offset, and an unknown feature flag - what a reader
 * without sections sees - is refused clearly. The process-section decoder
 * refuses each malformed field naming its byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ptrace/procsec.h"
#include "snapshot/le.h"
#include "tagmem/ptrace.h"
#include "tagmem/snapshot.h"

#define PS 4096u

static char dir[] = "/tmp/tm-sections-XXXXXX";
static char path[128];
static tm_region *regs[2];

static int setup(void **state)
{
	tm_region_config cfg = { .struct_size = sizeof(cfg), .size = 8 * PS,
				 .backend = TM_BACKEND_SOFT };
	uint8_t page[PS], tags[PS / 32];
	tm_error err;

	(void)state;
	if (!mkdtemp(dir) || tm_geom_mte(&cfg.geom, PS, &err))
		return -1;
	snprintf(path, sizeof(path), "%s/s.snap", dir);
	for (int i = 0; i < 2; i++) {
		cfg.name = i ? "b" : "a";
		if (tm_region_create(&cfg, &regs[i], &err))
			return -1;
		memset(page, 0x11 * (i + 1), sizeof(page));
		memset(tags, 0x53, sizeof(tags));
		if (tm_region_write_page(regs[i], 3, page, tags, &err))
			return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	tm_region_destroy(regs[0]);
	tm_region_destroy(regs[1]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int save_with(const tm_snap_section *s, size_t n, tm_error *err)
{
	tm_snap_opts o;

	tm_snap_opts_init(&o);
	o.sections = s;
	o.nsections = n;
	return tm_snapshot_save(path, regs, 2, &o, NULL, err);
}

static const uint8_t blob1[] = "the first section, 34 bytes long!";
static uint8_t blob2[1001];

static void save_two(void)
{
	tm_snap_section s[3] = {
		{ 7, blob1, sizeof(blob1) }, { 1, blob2, sizeof(blob2) }, { 9, NULL, 0 },
	};
	tm_error err;

	for (size_t i = 0; i < sizeof(blob2); i++)
		blob2[i] = (uint8_t)(i * 7 + 1);
	if (save_with(s, 3, &err))
		fail_msg("save: %s", err.msg);
}

static void test_sections_round_trip(void **state)
{
	const void *d;
	size_t len;
	tm_snap_info info;
	tm_snapshot *s;
	tm_region *back[2];
	tm_error err;
	uint64_t a, b;

	(void)state;
	save_two();
	assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), 0);
	tm_snapshot_info(s, &info);
	assert_true(info.flags & TM_SNAP_SECTIONS);
	assert_int_equal(tm_snapshot_section(s, 7, &d, &len, &err), 0);
	assert_int_equal(len, sizeof(blob1));
	assert_memory_equal(d, blob1, len);
	assert_int_equal(tm_snapshot_section(s, 1, &d, &len, &err), 0);
	assert_int_equal(len, sizeof(blob2));
	assert_memory_equal(d, blob2, len);
	assert_int_equal(tm_snapshot_section(s, 9, &d, &len, &err), 0);
	assert_int_equal(len, 0);
	assert_int_equal(tm_snapshot_section(s, 2, &d, &len, &err), -ENOENT);
	assert_null(d);
	/* the pages are where they were */
	assert_int_equal(tm_snapshot_create_regions(s, TM_BACKEND_SOFT, back, &err), 0);
	assert_int_equal(tm_snapshot_restore(s, back, 2, NULL, NULL, &err), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(tm_region_digest(back[i], &a, &err), 0);
		assert_int_equal(tm_region_digest(regs[i], &b, &err), 0);
		assert_int_equal(a, b);
		tm_region_destroy(back[i]);
	}
	tm_snapshot_close(s);
}

static void test_no_sections_is_plain_v1(void **state)
{
	uint8_t head[128];
	const void *d;
	size_t len;
	tm_snap_info info;
	tm_snapshot *s;
	tm_error err;
	int fd;

	(void)state;
	assert_int_equal(save_with(NULL, 0, &err), 0);
	fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, head, sizeof(head), 0), sizeof(head));
	close(fd);
	assert_int_equal(tm_snap_get32(head + 8), 1);          /* version */
	assert_int_equal(tm_snap_get32(head + 16), 0);         /* flags */
	assert_int_equal(tm_snap_get64(head + 112), 0);        /* reserved */
	assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), 0);
	tm_snapshot_info(s, &info);
	assert_false(info.flags & TM_SNAP_SECTIONS);
	assert_int_equal(tm_snapshot_section(s, 1, &d, &len, &err), -ENOENT);
	tm_snapshot_close(s);
}

static void test_writer_refuses(void **state)
{
	tm_snap_section many[TM_SNAP_MAX_SECTIONS + 1];
	tm_snap_section dup[2] = { { 3, blob1, 4 }, { 3, blob1, 5 } };
	tm_snap_section zero[1] = { { 0, blob1, 4 } };
	tm_snap_section big[1] = { { 4, blob1, (size_t)TM_SNAP_SECTION_MAX + 1 } };
	tm_error err;

	(void)state;
	unlink(path);
	for (unsigned i = 0; i <= TM_SNAP_MAX_SECTIONS; i++)
		many[i] = (tm_snap_section){ i + 1, blob1, 1 };
	assert_int_equal(save_with(many, TM_SNAP_MAX_SECTIONS + 1, &err), -EINVAL);
	assert_int_equal(save_with(dup, 2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "both have type 3"));
	assert_int_equal(save_with(zero, 1, &err), -EINVAL);
	assert_int_equal(save_with(big, 1, &err), -EINVAL);
	assert_int_equal(access(path, F_OK), -1);   /* nothing written */
	/* the limit itself is fine */
	assert_int_equal(save_with(many, TM_SNAP_MAX_SECTIONS, &err), 0);
}

/* ---- damaged framing, checksums made right again -------------------- */

static uint8_t *file;
static size_t file_len;

static void load_file(void)
{
	int fd = open(path, O_RDONLY);
	off_t end = lseek(fd, 0, SEEK_END);

	file_len = (size_t)end;
	file = malloc(file_len);
	assert_int_equal(pread(fd, file, file_len, 0), (ssize_t)file_len);
	close(fd);
}

/* Recompute the metadata and head checksums, write to path2, open. */
static int reopen(const char *p2, tm_error *err)
{
	uint64_t meta_off = tm_snap_get64(file + 64), meta_bytes = tm_snap_get64(file + 72);
	uint32_t nreg = tm_snap_get32(file + 20);
	XXH3_state_t st;
	tm_snapshot *s;
	int fd, rc;

	tm_snap_put64(file + 80, XXH3_64bits(file + meta_off, meta_bytes));
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, file, 120);
	XXH3_64bits_update(&st, file + 128, (size_t)nreg * 160);
	tm_snap_put64(file + 120, XXH3_64bits_digest(&st));
	fd = open(p2, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_int_equal(pwrite(fd, file, file_len, 0), (ssize_t)file_len);
	close(fd);
	rc = tm_snapshot_open(p2, NULL, &s, err);
	if (!rc)
		tm_snapshot_close(s);
	return rc;
}

/* Offset of the section area: the end of the metadata area. */
static uint64_t sect_off(void)
{
	return tm_snap_get64(file + 64) + tm_snap_get64(file + 72) - tm_snap_get64(file + 112);
}

static void expect_refused(const char *what, int code, const char *needle)
{
	char p2[160];
	tm_error err;
	int rc;

	snprintf(p2, sizeof(p2), "%s/bad.snap", dir);
	rc = reopen(p2, &err);
	if (rc != code || !strstr(err.msg, needle))
		fail_msg("%s: rc %d, '%s' (wanted %d and '%s')", what, rc, err.msg, code, needle);
	print_message("%s: %s\n", what, err.msg);
	free(file);
}

static void test_reader_refuses(void **state)
{
	uint64_t so;

	(void)state;
	save_two();
	/* a payload byte changed: the metadata checksum (not recomputed) */
	{
		char p2[160];
		tm_snapshot *s;
		tm_error err;
		int fd;

		load_file();
		file[sect_off() + 8 + 3 * 24 + 2] ^= 1;
		snprintf(p2, sizeof(p2), "%s/bad.snap", dir);
		fd = open(p2, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		assert_int_equal(pwrite(fd, file, file_len, 0), (ssize_t)file_len);
		close(fd);
		assert_int_equal(tm_snapshot_open(p2, NULL, &s, &err), -EBADMSG);
		assert_non_null(strstr(err.msg, "metadata checksum"));
		free(file);
	}
	load_file();
	so = sect_off();
	tm_snap_put64(file + so + 8 + 8, tm_snap_get64(file + so + 8 + 8) + 8);
	expect_refused("entry offset moved", -EBADMSG, "the layout requires offset");
	load_file();
	tm_snap_put32(file + sect_off() + 8 + 24 + 4, 1);
	expect_refused("entry flags", -EBADMSG, "flags 0x1");
	load_file();
	tm_snap_put32(file + sect_off() + 8 + 24, 7);
	expect_refused("repeated type", -EBADMSG, "repeats type 7");
	load_file();
	tm_snap_put32(file + sect_off() + 8 + 48, 0);
	expect_refused("type 0", -EBADMSG, "type 0");
	load_file();
	tm_snap_put32(file + sect_off(), 0);
	expect_refused("no sections", -EBADMSG, "0 sections");
	load_file();
	/* padding after the 34-byte first payload (to 40) */
	file[sect_off() + tm_snap_get64(file + sect_off() + 8 + 8) + sizeof(blob1)] = 1;
	expect_refused("padding", -EBADMSG, "padding byte is not zero");
	load_file();
	tm_snap_put64(file + sect_off() + 8 + 16, sizeof(blob1) + 100);
	expect_refused("length past the next", -EBADMSG, "section 1");
	load_file();
	tm_snap_put64(file + 112, tm_snap_get64(file + 112) + 4);
	expect_refused("area size", -EBADMSG, "offset 112");
	load_file();
	tm_snap_put32(file + 16, tm_snap_get32(file + 16) & ~(uint32_t)TM_SNAP_SECTIONS);
	expect_refused("area without the flag", -EBADMSG, "reserved field is not zero");
	/* what a reader without sections does with the flag: an unknown flag */
	load_file();
	tm_snap_put32(file + 16, tm_snap_get32(file + 16) | 8u);
	expect_refused("unknown flag", -EPROTONOSUPPORT, "unknown feature flags 0x8");
}

/* ---- the process section ------------------------------------------------ */

static const uint64_t sizes[2] = { 8 * PS, 2 * PS };

static size_t encode(uint8_t *buf)
{
	proc_region r[2] = { { 0x5a0000000000, 0x5a0000000000 + 8 * PS, PROT_READ | PROT_WRITE, false },
			     { 0x5b0000000000, 0x5b0000000000 + 2 * PS, PROT_READ, true } };
	proc_thread t[2] = { { 100, TM_TAGGED_ADDR_ENABLE | TM_MTE_TCF_SYNC },
			     { 101, TM_TAGGED_ADDR_ENABLE } };
	proc_state ps = { .pid = 100, .page_size = PS, .nregions = 2, .nthreads = 2,
			  .hwcap2 = 1u << 18, .r = r, .t = t };

	tm_procsec_encode(&ps, buf);
	return tm_procsec_bytes(2, 2);
}

static void decode_fails(const uint8_t *buf, size_t len, int code, const char *needle)
{
	proc_state ps;
	tm_error err;
	int rc = tm_procsec_decode(buf, len, sizes, 2, PS, &ps, &err);

	if (rc != code || !strstr(err.msg, needle))
		fail_msg("rc %d '%s', wanted %d and '%s'", rc, err.msg, code, needle);
}

static void test_process_section_decoder(void **state)
{
	uint8_t good[256], b[256];
	size_t len = encode(good);
	proc_state ps;
	tm_error err;

	(void)state;
	assert_int_equal(len, 32 + 2 * 24 + 2 * 16);
	assert_int_equal(tm_procsec_decode(good, len, sizes, 2, PS, &ps, &err), 0);
	assert_int_equal(ps.r[1].start, 0x5b0000000000);
	assert_true(ps.r[1].shared);
	assert_int_equal(ps.t[1].tid, 101);
	assert_int_equal(ps.hwcap2, 1u << 18);
	tm_procsec_free(&ps);
#define MUT(stmt, code, needle) do { memcpy(b, good, len); stmt; decode_fails(b, len, code, needle); } while (0)
	MUT(tm_snap_put32(b, 2), -EPROTONOSUPPORT, "version 2");
	MUT(tm_snap_put32(b + 4, 3), -EBADMSG, "byte 4: 3 regions");
	MUT(tm_snap_put32(b + 8, 0), -EBADMSG, "byte 8: 0 threads");
	MUT(tm_snap_put32(b + 12, 16384), -EBADMSG, "page size 16384");
	MUT(tm_snap_put32(b + 20, 1), -EBADMSG, "byte 20: flags");
	MUT(tm_snap_put64(b + 32, 0x5a0000000010), -EBADMSG, "byte 32: region 0");
	MUT(tm_snap_put64(b + 40, 0x5a0000000000 + 9 * PS), -EBADMSG, "byte 40: region 0");
	MUT((tm_snap_put64(b + 56, 0x5a0000000000), tm_snap_put64(b + 64, 0x5a0000000000 + 2 * PS)),
	    -EBADMSG, "overlaps");
	MUT(tm_snap_put32(b + 48, 0x10), -EBADMSG, "protection 0x10");
	MUT(tm_snap_put32(b + 76, 2), -EBADMSG, "flags 0x2");
	MUT(tm_snap_put32(b + 80 + 4, 1), -EBADMSG, "reserved");
	MUT(tm_snap_put64(b + 96 + 8, 1ull << 40), -EBADMSG, "unknown bits");
	decode_fails(good, len - 1, -EBADMSG, "bytes");
	decode_fails(good, 10, -EBADMSG, "header alone");
#undef MUT
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sections_round_trip),
		cmocka_unit_test(test_no_sections_is_plain_v1),
		cmocka_unit_test(test_writer_refuses),
		cmocka_unit_test(test_reader_refuses),
		cmocka_unit_test(test_process_section_decoder),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
