/*
 * test_core.c - ELF core dumps: what tm_core_write produces reads back
 * through tm_core_open (segments, notes, memory, every granule's tag,
 * whole regions by digest); cores shaped like Linux's (segments not dumped,
 * memtag segments with p_filesz 0, PN_XNUM) read correctly; truncated,
 * corrupted and foreign files fail with a message naming the offset and
 * never crash the reader.
 */
#include "snap_test.h"

#include <signal.h>
#include <sys/wait.h>

#include "snapshot/elfcore.h"
#include "tagmem/core.h"

static char dir[256];

struct core_fixture {
	tm_region *r[4];
	tm_core_region cr[4];
	size_t n;
	char path[512];
};

static void make_core(struct core_fixture *f)
{
	tm_error err;

	f->n = 4;
	f->r[0] = st_region("heap", 4096, 24, true, 11, NULL);
	f->r[1] = st_region("plain", 4096, 16, false, 12, NULL);
	f->r[2] = st_region("big", 16384, 5, true, 13, NULL);
	f->r[3] = st_region("empty", 4096, 64, true, 14, NULL);
	for (size_t pg = 0; pg < 64; pg++)
		assert_int_equal(tm_region_zero_page(f->r[3], pg, &err), 0);
	f->cr[0] = (tm_core_region){ f->r[0], 0x10000000, 0 };
	f->cr[1] = (tm_core_region){ f->r[1], 0x20000000, TM_CORE_R };
	f->cr[2] = (tm_core_region){ f->r[2], 0xffff80000000ull, 0 };
	f->cr[3] = (tm_core_region){ f->r[3], 0x40000000, 0 };
	snprintf(f->path, sizeof(f->path), "%s/test.core", dir);
	if (tm_core_write(f->path, f->cr, f->n, NULL, &err))
		fail_msg("core write: %s", err.msg);
}

static void free_core(struct core_fixture *f)
{
	for (size_t i = 0; i < f->n; i++)
		tm_region_destroy(f->r[i]);
	unlink(f->path);
}

static void check_info(tm_core *c)
{
	tm_core_info info;

	tm_core_get_info(c, &info);
	assert_int_equal(info.machine, 183);
	assert_int_equal(info.nsegments, 4);
	assert_int_equal(info.ntagged, 3);
	assert_int_equal(info.nthreads, 1);
	assert_int_equal(info.nnotes, 6);
	assert_int_equal(info.pid, 1);
	assert_int_equal(info.signo, 11);
	assert_int_equal(info.pc, 0x10000000);
	assert_string_equal(info.comm, "tagmem");
	assert_true(info.has_auxv && info.mte);
	assert_true(info.hwcap2 & TM_HWCAP2_MTE);
	assert_int_equal(info.page_size, 4096);
	assert_true(info.has_tagged_addr_ctrl);
	assert_int_equal(info.tagged_addr_ctrl & 3, 3);
	assert_true(info.has_siginfo);
	assert_int_equal(info.si_code, 9);
}

/* Every byte and every granule's tag of region r at vaddr, read back. */
static void check_region(tm_core *c, tm_region *r, uint64_t vaddr)
{
	const tm_geom *g = tm_region_geom(r);
	size_t ps = g->page_size, gran = ps / 16;
	uint8_t *want = malloc(ps), *got = malloc(ps), *packed = calloc(1, ps / 32);
	uint8_t *un = malloc(gran), *tags = malloc(gran);
	size_t ng;
	tm_error err;

	for (size_t pg = 0; pg < tm_region_npages(r); pg++) {
		bool tagged = g->kind != TM_META_NONE;

		assert_int_equal(tm_region_read_page(r, pg, want, tagged ? packed : NULL, &err), 0);
		assert_int_equal(tm_core_read_mem(c, vaddr + pg * ps, got, ps, &err), 0);
		assert_memory_equal(got, want, ps);
		if (!tagged) {
			assert_int_equal(tm_core_read_tags(c, vaddr + pg * ps, 16, tags, &ng, &err), -ENODATA);
			continue;
		}
		tm_tags_unpack(un, packed, gran);
		/* a logical tag in the top byte is ignored */
		assert_int_equal(tm_core_read_tags(c, (vaddr + pg * ps) | (0xaull << 56), ps,
						   tags, &ng, &err), 0);
		assert_int_equal(ng, gran);
		assert_memory_equal(tags, un, gran);
		/* an unaligned one-byte range is one granule */
		assert_int_equal(tm_core_read_tags(c, vaddr + pg * ps + 37, 1, tags, &ng, &err), 0);
		assert_int_equal(ng, 1);
		assert_int_equal(tags[0], un[2]);
	}
	free(want);
	free(got);
	free(packed);
	free(un);
	free(tags);
}

static void test_write_read(void **state)
{
	struct core_fixture f;
	tm_core_segment seg;
	tm_core *c;
	tm_region *x;
	struct stat sb;
	uint8_t b[64];
	tm_error err;

	(void)state;
	make_core(&f);
	if (tm_core_open(f.path, &c, &err))
		fail_msg("core open: %s", err.msg);
	check_info(c);
	for (size_t i = 0; i < f.n; i++) {
		size_t size = tm_region_size(f.r[i]);

		assert_int_equal(tm_core_segment_get(c, i, &seg, &err), 0);
		assert_int_equal(seg.vaddr, f.cr[i].vaddr);
		assert_int_equal(seg.memsz, size);
		assert_int_equal(seg.filesz, size);
		assert_int_equal(seg.tagged, i != 1);
		if (seg.tagged)
			assert_int_equal(seg.tag_filesz, size / 32);
		assert_int_equal(seg.prot, i == 1 ? TM_CORE_R : TM_CORE_R | TM_CORE_W);
		check_region(c, f.r[i], f.cr[i].vaddr);
	}
	assert_int_equal(tm_core_segment_get(c, 4, &seg, &err), -EINVAL);
	/* a read crossing into unmapped memory names the address */
	assert_int_equal(tm_core_read_mem(c, 0x10000000 + 24 * 4096 - 8, b, 16, &err), -EFAULT);
	assert_non_null(strstr(err.msg, "0x10018000"));
	/* whole segments come back as regions */
	assert_int_equal(tm_core_extract(c, 0, TM_BACKEND_SOFT, 4096, &x, &err), 0);
	assert_int_equal(st_digest(x), st_digest(f.r[0]));
	tm_region_destroy(x);
	assert_int_equal(tm_core_extract(c, 2, TM_BACKEND_SOFT, 16384, &x, &err), 0);
	assert_int_equal(st_digest(x), st_digest(f.r[2]));
	tm_region_destroy(x);
	assert_int_equal(tm_core_extract(c, 1, TM_BACKEND_SOFT, 4096, &x, &err), 0);
	assert_int_equal(st_digest(x), st_digest(f.r[1]));
	tm_region_destroy(x);
	assert_int_equal(tm_core_extract(c, 2, TM_BACKEND_SOFT, 65536, &x, &err), -EINVAL);
	tm_core_close(c);
	/* the all-zero region is a hole: much less is allocated than described */
	assert_int_equal(stat(f.path, &sb), 0);
	assert_true((uint64_t)sb.st_blocks * 512 < (uint64_t)sb.st_size - 200 * 1024);
	free_core(&f);
}

/* ---- a core shaped like Linux's ----------------------------------- */

struct ph { uint32_t type, flags; uint64_t off, va, fsz, msz, align; };

static void put_ph(uint8_t *p, const struct ph *h)
{
	memset(p, 0, PH_SIZE);
	tm_snap_put32(p + PH_TYPE, h->type);
	tm_snap_put32(p + PH_FLAGS, h->flags);
	tm_snap_put64(p + PH_OFFSET, h->off);
	tm_snap_put64(p + PH_VADDR, h->va);
	tm_snap_put64(p + PH_FILESZ, h->fsz);
	tm_snap_put64(p + PH_MEMSZ, h->msz);
	tm_snap_put64(p + PH_ALIGN, h->align);
}

/*
 * Linux-like: PT_NOTE with an NT_FILE-ish foreign note, a read-only segment
 * not dumped (filesz 0), a tagged segment dumped, a tagged VM_DONTDUMP
 * segment (memtag p_filesz 0), and with xnum the PN_XNUM escape.
 */
static void write_linux_core(const char *path, bool xnum, uint8_t *tagbytes)
{
	enum { NPH = 6, DATA = 0x3000, TAGS = 0x5000 };
	uint8_t *f = calloc(1, TAGS + 0x100);
	size_t nph = NPH, phoff = EH_SIZE, shoff = 0x2000, at;
	struct ph ph[NPH] = {
		{ ELF_PT_NOTE, 0, 0x1000, 0, 0, 0, 0 },
		{ ELF_PT_LOAD, 5, DATA, 0x400000, 0, 0x1000, 0x1000 },
		{ ELF_PT_LOAD, 6, DATA, 0xffff90000000ull, 0x2000, 0x2000, 0x1000 },
		{ ELF_PT_LOAD, 6, DATA + 0x2000, 0xffffa0000000ull, 0, 0x1000, 0x1000 },
		{ TM_PT_AARCH64_MEMTAG_MTE, 0, TAGS, 0xffff90000000ull, 0x100, 0x2000, 0 },
		{ TM_PT_AARCH64_MEMTAG_MTE, 0, TAGS + 0x100, 0xffffa0000000ull, 0, 0x1000, 0 },
	};
	int fd;

	memcpy(f, "\177ELF\2\1\1", 7);
	tm_snap_put16(f + EH_TYPE, ELF_ET_CORE);
	tm_snap_put16(f + EH_MACHINE, ELF_EM_AARCH64);
	tm_snap_put32(f + EH_VERSION, 1);
	tm_snap_put64(f + EH_PHOFF, phoff);
	tm_snap_put16(f + EH_EHSIZE, EH_SIZE);
	tm_snap_put16(f + EH_PHENTSIZE, PH_SIZE);
	tm_snap_put16(f + EH_PHNUM, xnum ? ELF_PN_XNUM : (uint16_t)nph);
	if (xnum) {
		tm_snap_put64(f + EH_SHOFF, shoff);
		tm_snap_put16(f + EH_SHENTSIZE, SH_SIZE);
		tm_snap_put16(f + EH_SHNUM, 1);
		tm_snap_put32(f + shoff + SH_INFO, (uint32_t)nph);
	}
	/* notes: a foreign "CORE" NT_FILE (0x46494c45) then an AUXV */
	at = 0x1000;
	tm_snap_put32(f + at, 5); tm_snap_put32(f + at + 4, 8); tm_snap_put32(f + at + 8, 0x46494c45);
	memcpy(f + at + 12, "CORE", 5);
	at += 12 + 8 + 8;
	tm_snap_put32(f + at, 5); tm_snap_put32(f + at + 4, 32); tm_snap_put32(f + at + 8, ELF_NT_AUXV);
	memcpy(f + at + 12, "CORE", 5);
	tm_snap_put64(f + at + 20, AUX_HWCAP2);
	tm_snap_put64(f + at + 28, TM_HWCAP2_MTE);
	at += 12 + 8 + 32;
	ph[0].fsz = at - 0x1000;
	for (size_t i = 0; i < nph; i++)
		put_ph(f + phoff + i * PH_SIZE, &ph[i]);
	for (size_t i = 0; i < 0x2000; i++)
		f[DATA + i] = (uint8_t)(i * 13);
	for (size_t i = 0; i < 0x100; i++)
		f[TAGS + i] = tagbytes[i] = (uint8_t)(i * 37 + 5);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, f, TAGS + 0x100), TAGS + 0x100);
	close(fd);
	free(f);
}

static void test_linux_style(void **state)
{
	uint8_t tagbytes[0x100], buf[0x2000], tags[0x200];
	char path[512];
	tm_core_info info;
	tm_core *c;
	size_t ng;
	tm_error err;

	(void)state;
	snprintf(path, sizeof(path), "%s/linux.core", dir);
	for (int xnum = 0; xnum < 2; xnum++) {
		write_linux_core(path, xnum, tagbytes);
		if (tm_core_open(path, &c, &err))
			fail_msg("linux-style core (xnum %d): %s", xnum, err.msg);
		tm_core_get_info(c, &info);
		assert_int_equal(info.nsegments, 3);
		assert_int_equal(info.ntagged, 2);
		assert_true(info.mte);
		assert_int_equal(info.nnotes, 2);
		/* not dumped: reads as zero */
		assert_int_equal(tm_core_read_mem(c, 0x400000, buf, 0x1000, &err), 0);
		assert_true(tm_mem_is_zero(buf, 0x1000));
		assert_int_equal(tm_core_read_mem(c, 0xffff90000000ull, buf, 0x2000, &err), 0);
		for (size_t i = 0; i < 0x2000; i++)
			assert_int_equal(buf[i], (uint8_t)(i * 13));
		assert_int_equal(tm_core_read_tags(c, 0xffff90000000ull, 0x2000, tags, &ng, &err), 0);
		assert_int_equal(ng, 0x200);
		for (size_t i = 0; i < 0x200; i++)
			assert_int_equal(tags[i], (tagbytes[i / 2] >> ((i & 1) * 4)) & 0xf);
		/* memtag p_filesz 0 (VM_DONTDUMP): zero tags */
		assert_int_equal(tm_core_read_tags(c, 0xffffa0000000ull, 0x1000, tags, &ng, &err), 0);
		assert_true(tm_mem_is_zero(tags, ng));
		tm_core_close(c);
	}
	unlink(path);
}

/* ---- malformed ----------------------------------------------------- */

static void expect_bad(const char *path, int code, const char *needle)
{
	tm_core *c;
	tm_error err;
	int rc;

	tm_error_clear(&err);
	rc = tm_core_open(path, &c, &err);
	if (rc == 0) {
		tm_core_close(c);
		fail_msg("malformed core accepted (wanted \"%s\")", needle);
	}
	assert_int_equal(rc, code);
	assert_non_null(strstr(err.msg, "offset"));
	if (!strstr(err.msg, needle))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
}

static void poke64(const char *path, uint64_t off, uint64_t v)
{
	uint8_t b[8];
	int fd = open(path, O_WRONLY);

	tm_snap_put64(b, v);
	assert_int_equal(pwrite(fd, b, 8, (off_t)off), 8);
	close(fd);
}

static void poke16(const char *path, uint64_t off, uint16_t v)
{
	uint8_t b[2];
	int fd = open(path, O_WRONLY);

	tm_snap_put16(b, v);
	assert_int_equal(pwrite(fd, b, 2, (off_t)off), 2);
	close(fd);
}

static void test_malformed(void **state)
{
	struct core_fixture f;
	char bad[600];
	uint64_t size, ph1 = EH_SIZE + PH_SIZE, ph_tag = EH_SIZE + 5 * PH_SIZE;
	tm_rng rng;

	(void)state;
	make_core(&f);
	size = st_file_size(f.path);
	snprintf(bad, sizeof(bad), "%s.bad", f.path);
#define FRESH() st_copy(f.path, bad)
	FRESH(); st_flip(bad, 1, 0x20);
	expect_bad(bad, -EBADMSG, "not an ELF");
	FRESH(); st_flip(bad, 4, 3);                    /* ELFCLASS32 */
	expect_bad(bad, -EPROTONOSUPPORT, "ELF class");
	FRESH(); st_flip(bad, 5, 3);                    /* big endian */
	expect_bad(bad, -EPROTONOSUPPORT, "little-endian");
	FRESH(); poke16(bad, EH_TYPE, 2);               /* ET_EXEC */
	expect_bad(bad, -EBADMSG, "not a core");
	FRESH(); poke64(bad, EH_PHOFF, size - 10);
	expect_bad(bad, -EBADMSG, "program headers");
	FRESH(); poke16(bad, EH_PHENTSIZE, 32);
	expect_bad(bad, -EBADMSG, "e_phentsize");
	FRESH(); poke64(bad, ph1 + PH_OFFSET, size - 100);
	expect_bad(bad, -EBADMSG, "past the end");
	FRESH(); poke64(bad, ph1 + PH_FILESZ, 1ull << 62);
	expect_bad(bad, -EBADMSG, "past the end");
	FRESH(); poke64(bad, ph_tag + PH_FILESZ, 24 * 4096 / 32 + 1);
	expect_bad(bad, -EBADMSG, "p_memsz / 32");
	FRESH(); poke64(bad, ph_tag + PH_VADDR, 0x10001000);
	expect_bad(bad, -EBADMSG, "no PT_LOAD");
	FRESH(); poke16(bad, EH_PHNUM, ELF_PN_XNUM);
	expect_bad(bad, -EBADMSG, "PN_XNUM");
	{
		/* a note whose size runs past PT_NOTE */
		uint64_t notes = EH_SIZE + 8 * PH_SIZE;

		FRESH(); poke64(bad, notes + 4, 0x7fff0000u);
		expect_bad(bad, -EBADMSG, "PT_NOTE");
	}
	/* truncations anywhere: the last segment runs past the end */
	tm_rng_seed(&rng, 5);
	for (int i = 0; i < 30; i++) {
		uint64_t len = i == 0 ? 0 : i == 1 ? 40 : tm_rng_below(&rng, size);

		FRESH();
		st_truncate(bad, len);
		expect_bad(bad, -EBADMSG, len < 4 ? "not an ELF" :
			   len < EH_SIZE ? "truncated" : "past the end");
	}
	/* random flips in the headers and notes: an error naming an offset
	 * or a core that still reads; never a crash */
	for (int i = 0; i < 300; i++) {
		uint64_t off = tm_rng_below(&rng, EH_SIZE + 9 * PH_SIZE + 1200);
		tm_core *c;
		tm_error err;

		FRESH();
		st_flip(bad, off, (uint8_t)(1u << tm_rng_below(&rng, 8)));
		tm_error_clear(&err);
		if (tm_core_open(bad, &c, &err) == 0) {
			uint8_t t[64];
			size_t ng;

			(void)tm_core_read_tags(c, 0x10000000, 1024, t, &ng, &err);
			tm_core_close(c);
		} else {
			assert_non_null(strstr(err.msg, "offset"));
		}
	}
	unlink(bad);
	free_core(&f);
}

/* A core the Linux kernel wrote (of /bin/sleep, killed with SIGABRT):
 * the reader takes it, finds the process, and reads the ELF header Linux
 * dumps for the executable's first mapping. */
static void test_linux_kernel_core(void **state)
{
	char cdir[300], path[600] = "", pattern[256] = "";
	uint64_t base;
	tm_core_info info;
	uint8_t magic[4];
	tm_core *c;
	tm_error err;
	int status;
	pid_t pid;
	FILE *f;

	(void)state;
	f = fopen("/proc/sys/kernel/core_pattern", "r");
	if (f) {
		if (!fgets(pattern, sizeof(pattern), f))
			pattern[0] = 0;
		fclose(f);
	}
	if (pattern[0] == '|' || strchr(pattern, '/')) {
		tm_test_skip("core-dump", "core_pattern '%s' does not write ./core files here", pattern);
	}
	snprintf(cdir, sizeof(cdir), "%s/kcore", dir);
	assert_int_equal(mkdir(cdir, 0755), 0);
	pid = st_spawn_sleep(cdir, &base);
	kill(pid, SIGABRT);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	if (!WCOREDUMP(status)) {
		tm_test_skip("core-dump", "the kernel wrote no core (RLIMIT_CORE or policy)");
	}
	snprintf(path, sizeof(path), "%s/core", cdir);
	if (access(path, F_OK) != 0)
		snprintf(path, sizeof(path), "%s/core.%d", cdir, (int)pid);
	if (tm_core_open(path, &c, &err))
		fail_msg("Linux core: %s", err.msg);
	tm_core_get_info(c, &info);
	assert_int_equal(info.pid, (uint32_t)pid);
	assert_int_equal(info.signo, SIGABRT);
	assert_true(info.nthreads >= 1 && info.nsegments >= 3 && info.has_auxv);
	assert_string_equal(info.comm, "sleep");
	assert_int_equal(tm_core_read_mem(c, base, magic, 4, &err), 0);
	assert_memory_equal(magic, "\177ELF", 4);
	tm_core_close(c);
	unlink(path);
	rmdir(cdir);
}

static void test_refuses_bad_layout(void **state)
{
	tm_region *a = st_region("a", 4096, 4, true, 1, NULL);
	tm_region *b = st_region("b", 4096, 4, true, 2, NULL);
	tm_core_region cr[2] = { { a, 0x10000000, 0 }, { b, 0x10002000, 0 } };
	char path[512];
	tm_error err;

	(void)state;
	snprintf(path, sizeof(path), "%s/overlap.core", dir);
	assert_int_equal(tm_core_write(path, cr, 2, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "overlap"));
	cr[1].vaddr = 0x10004800;
	assert_int_equal(tm_core_write(path, cr, 2, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "aligned"));
	assert_int_equal(access(path, F_OK), -1);
	tm_region_destroy(a);
	tm_region_destroy(b);
}

ST_DIR_GROUP("core")

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read),
		cmocka_unit_test(test_linux_style),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_linux_kernel_core),
		cmocka_unit_test(test_refuses_bad_layout),
	};

	return cmocka_run_group_tests(tests, st_group_setup, st_group_teardown);
}
