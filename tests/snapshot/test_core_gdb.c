/*
 * test_core_gdb.c - the real client: Debian's gdb-multiarch (>= 13, an x86
 * binary reading an aarch64 core) loads a core written by tm_core_write and
 * must print, for many addresses in several regions and page sizes, the
 * allocation tag tagmem wrote (`memory-tag print-allocation-tag`) and the
 * data (`x/1xg`); an address in an untagged region must be refused as not
 * tagged. gdb is required (scripts/deps.sh installs it): without it the
 * test fails rather than passing silently.
 */
#include "snap_test.h"

#include <signal.h>
#include <sys/wait.h>

#include "tagmem/core.h"

#define NADDR 48

static char dir[256];

struct probe {
	uint64_t addr;       /* may carry a logical tag in the top byte */
	int want_tag;        /* -1: untagged region */
	uint64_t want_word;  /* 8 bytes at addr & ~7 (top byte cleared) */
};

static const char *find_gdb(void)
{
	static const char *const cands[] = { "/usr/bin/gdb-multiarch",
					     "/usr/local/bin/gdb-multiarch" };

	for (size_t i = 0; i < 2; i++)
		if (access(cands[i], X_OK) == 0)
			return cands[i];
	return NULL;
}

/* Run gdb on the core with one probe per address; output into out. */
static void run_gdb(const char *gdb, const char *core, const struct probe *p,
		    size_t n, char *out, size_t cap)
{
	char *argv[8 + 6 * NADDR];
	char cmds[6 * NADDR][96];
	size_t a = 0, k = 0;
	int status;

	argv[a++] = (char *)gdb;
	argv[a++] = "-batch";
	argv[a++] = "-nx";
	snprintf(cmds[k], sizeof(cmds[k]), "core-file %s", core);
	argv[a++] = "-ex";
	argv[a++] = cmds[k++];
	for (size_t i = 0; i < n; i++) {
		snprintf(cmds[k], sizeof(cmds[k]), "echo @@%zu\\n", i);
		argv[a++] = "-ex";
		argv[a++] = cmds[k++];
		snprintf(cmds[k], sizeof(cmds[k]), "memory-tag print-allocation-tag 0x%llx",
			 (unsigned long long)p[i].addr);
		argv[a++] = "-ex";
		argv[a++] = cmds[k++];
		snprintf(cmds[k], sizeof(cmds[k]), "x/1xg 0x%llx",
			 (unsigned long long)((p[i].addr & ((1ull << 56) - 1)) & ~7ull));
		argv[a++] = "-ex";
		argv[a++] = cmds[k++];
	}
	snprintf(cmds[k], sizeof(cmds[k]), "echo @@%zu\\n", n);
	argv[a++] = "-ex";
	argv[a++] = cmds[k++];
	argv[a] = NULL;
	status = st_run(argv, out, cap);
	if (status != 0)
		fail_msg("gdb exited with status %d:\n%s", status, out);
}

/* The text gdb printed for probe i (between its marker and the next). */
static void section(const char *out, size_t i, char *buf, size_t cap)
{
	char m0[32], m1[32];
	const char *s, *e;

	snprintf(m0, sizeof(m0), "@@%zu\n", i);
	snprintf(m1, sizeof(m1), "@@%zu\n", i + 1);
	s = strstr(out, m0);
	e = s ? strstr(s, m1) : NULL;
	if (!s || !e)
		fail_msg("gdb output lacks the markers of probe %zu:\n%s", i, out);
	s += strlen(m0);
	snprintf(buf, cap, "%.*s", (int)(e - s), s);
}

static void check_probe(const char *out, size_t i, const struct probe *p)
{
	char sec[512], want[96];
	const char *eq;

	section(out, i, sec, sizeof(sec));
	if (p->want_tag < 0) {
		if (!strstr(sec, "not in a region mapped with a memory tagging flag"))
			fail_msg("probe %zu at 0x%llx (untagged) gave: %s", i,
				 (unsigned long long)p->addr, sec);
	} else {
		eq = strstr(sec, "$");
		eq = eq ? strstr(eq, " = ") : NULL;
		if (!eq || strtol(eq + 3, NULL, 0) != p->want_tag)
			fail_msg("probe %zu at 0x%llx: gdb printed \"%s\", tagmem wrote tag 0x%x",
				 i, (unsigned long long)p->addr, sec, p->want_tag);
	}
	snprintf(want, sizeof(want), "0x%016llx", (unsigned long long)p->want_word);
	if (!strstr(sec, want))
		fail_msg("probe %zu at 0x%llx: gdb's memory \"%s\" lacks %s", i,
			 (unsigned long long)p->addr, sec, want);
}

/* Region with random data and random (all 16 values) tags on every page. */
static tm_region *tagged_region(const char *name, uint32_t ps, size_t npages,
				bool tagged, uint64_t seed)
{
	tm_region *r = st_region(name, ps, npages, tagged, seed, NULL);
	uint8_t *tags = malloc(ps / 32);
	tm_error err;
	tm_rng rng;

	tm_rng_seed(&rng, seed);
	for (size_t pg = 0; tagged && pg < npages; pg++) {
		for (size_t i = 0; i < ps / 32; i++)
			tags[i] = (uint8_t)tm_rng_next(&rng);
		assert_int_equal(tm_region_set_tags(r, pg, TM_TAGS_PACKED, tags, &err), 0);
	}
	free(tags);
	return r;
}

static void make_probe(struct probe *p, tm_region *r, uint64_t base,
		       uint64_t off, uint8_t logical)
{
	const tm_geom *g = tm_region_geom(r);
	size_t pg = off / g->page_size;
	uint8_t *packed = calloc(1, g->page_size / 32 + 1), word[8];
	tm_error err;

	p->addr = (base + off) | ((uint64_t)logical << 56);
	p->want_tag = -1;
	if (g->kind != TM_META_NONE) {
		assert_int_equal(tm_region_get_tags(r, pg, TM_TAGS_PACKED, packed, &err), 0);
		p->want_tag = tm_tag_get(packed, (off % g->page_size) / 16);
	}
	assert_int_equal(tm_region_read(r, off & ~7ull, word, 8, &err), 0);
	p->want_word = 0;
	for (int i = 7; i >= 0; i--)
		p->want_word = p->want_word << 8 | word[i];
	free(packed);
}

static void test_gdb_reads_tags(void **state)
{
	const char *gdb = find_gdb();
	tm_region *r[4];
	tm_core_region cr[4];
	struct probe p[NADDR];
	char path[512], *out;
	size_t n = 0;
	tm_rng rng;
	tm_error err;

	(void)state;
	if (!gdb)
		fail_msg("gdb-multiarch is not installed: run `make deps` (scripts/deps.sh)");
	r[0] = tagged_region("heap", 4096, 6, true, 1);
	r[1] = tagged_region("arena16k", 16384, 3, true, 2);
	r[2] = tagged_region("plain", 4096, 2, false, 3);
	r[3] = tagged_region("arena64k", 65536, 2, true, 4);
	cr[0] = (tm_core_region){ r[0], 0x10000000, 0 };
	cr[1] = (tm_core_region){ r[1], 0xffff8000c000ull, 0 };
	cr[2] = (tm_core_region){ r[2], 0x20000000, 0 };
	cr[3] = (tm_core_region){ r[3], 0x7f0000000000ull, 0 };
	snprintf(path, sizeof(path), "%s/gdb.core", dir);
	if (tm_core_write(path, cr, 4, NULL, &err))
		fail_msg("core write: %s", err.msg);

	tm_rng_seed(&rng, 2024);
	/* fixed corners: first/last granule, granule edges, a tagged pointer */
	make_probe(&p[n++], r[0], cr[0].vaddr, 0, 0);
	make_probe(&p[n++], r[0], cr[0].vaddr, 0x1f, 0);
	make_probe(&p[n++], r[0], cr[0].vaddr, 0x20, 0);
	make_probe(&p[n++], r[0], cr[0].vaddr, 6 * 4096 - 16, 0);
	make_probe(&p[n++], r[0], cr[0].vaddr, 0x1234, 0xb);
	make_probe(&p[n++], r[2], cr[2].vaddr, 0x100, 0);
	/* The last byte of a segment is skipped on purpose: gdb 13.1's
	 * core_target::fetch_memtags tests `address + len < end_address`, so
	 * it cannot fetch the tag of a segment's very last byte (with cores
	 * from Linux as well); the byte before it is in the same granule. */
	make_probe(&p[n++], r[1], cr[1].vaddr, 3 * 16384 - 2, 0);
	make_probe(&p[n++], r[3], cr[3].vaddr, 65536 + 8, 0);
	while (n < NADDR) {
		size_t i = tm_rng_below(&rng, 4);

		make_probe(&p[n++], r[i], cr[i].vaddr,
			   tm_rng_below(&rng, tm_region_size(r[i]) - 1), 0);
	}
	out = malloc(1 << 20);
	run_gdb(gdb, path, p, n, out, 1 << 20);
	for (size_t i = 0; i < n; i++)
		check_probe(out, i, &p[i]);
	print_message("gdb printed the tag tagmem wrote at all %zu addresses\n", n);
	free(out);
	for (int i = 0; i < 4; i++)
		tm_region_destroy(r[i]);
	unlink(path);
}

/* gdb's own cores: `gcore` of a live process (/bin/sleep, the host's
 * architecture) reads back through tm_core_open with the process's pid
 * and the ELF header of its executable. */
static void test_reads_gdb_gcore(void **state)
{
	const char *gdb = find_gdb();
	char path[512], cmd[600], *argv[8], out[8192];
	uint64_t base;
	tm_core_info info;
	uint8_t magic[4];
	pid_t pid;
	tm_core *c;
	tm_error err;

	(void)state;
	if (!gdb)
		fail_msg("gdb-multiarch is not installed: run `make deps` (scripts/deps.sh)");
	snprintf(path, sizeof(path), "%s/gcore.core", dir);
	pid = st_spawn_sleep(dir, &base);
	snprintf(cmd, sizeof(cmd), "gcore %s", path);
	char pidarg[32];
	snprintf(pidarg, sizeof(pidarg), "%d", (int)pid);
	argv[0] = (char *)gdb; argv[1] = "-batch"; argv[2] = "-nx"; argv[3] = "-p";
	argv[4] = pidarg; argv[5] = "-ex"; argv[6] = cmd; argv[7] = NULL;
	(void)st_run(argv, out, sizeof(out));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	if (!strstr(out, "Saved corefile"))
		fail_msg("gdb gcore failed:\n%s", out);
	if (tm_core_open(path, &c, &err))
		fail_msg("gcore core: %s", err.msg);
	tm_core_get_info(c, &info);
	assert_int_equal(info.pid, (uint32_t)pid);
	assert_true(info.nthreads >= 1 && info.nsegments >= 3);
	assert_string_equal(info.comm, "sleep");
	assert_int_equal(tm_core_read_mem(c, base, magic, 4, &err), 0);
	assert_memory_equal(magic, "\177ELF", 4);
	tm_core_close(c);
	unlink(path);
}

ST_DIR_GROUP("gdb")

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gdb_reads_tags),
		cmocka_unit_test(test_reads_gdb_gcore),
	};

	return cmocka_run_group_tests(tests, st_group_setup, st_group_teardown);
}
