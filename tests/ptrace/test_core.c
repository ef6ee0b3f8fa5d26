/*
 * test_core.c - a core of a live process (tm_ptrace_core_write, and
 * `tagmem core --pid` when $TM_TAGMEM_CLI names the CLI) against the tags
 * the process set itself (its own LDG, answered over its pipe) and against
 * the core the kernel writes when the same process, unchanged, aborts: the
 * same PROT_MTE segments (address, size), the same data, the same tags,
 * MTE in the auxv and the process's tagged-address control in the notes.
 * With $TM_PTRACE_CORE_OUT set the two cores and a list of sampled
 * granules with their tags are left there, for the gdb-multiarch check on
 * the host (tests/ptrace/core_gdb.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "tagmem/core.h"
#include "tagmem/ptrace.h"
#include "tests/ptrace/pt_test.h"

#define BASE UINT64_C(0x5a0000000000)
#define CTRL (TM_TAGGED_ADDR_ENABLE | TM_MTE_TCF_SYNC | (0xfffeull << TM_MTE_TAG_SHIFT))
#define SEED 6

struct tmap { uint64_t off; unsigned pages; char kind; };
static const struct tmap layout[] = {
	{ 0, 12, 'p' }, { 0x10000000, 4, 'm' }, { 0x20000000, 3, 'r' },
	{ 0x30000000, 2, 'n' },
};
#define NMAPS (sizeof(layout) / sizeof(layout[0]))

static size_t ps;
static char dir[] = "/tmp/tm-ptrace-core-XXXXXX";

static int setup(void **state)
{
	(void)state;
	ps = (size_t)sysconf(_SC_PAGESIZE);
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The target, with RLIMIT_CORE unlimited and its cwd in dir/kcore (where a
 * relative core_pattern puts the kernel's core). */
static void start_target(pt_proc *h)
{
	char specs[NMAPS][48], why[256], cwd[PATH_MAX], kdir[128];
	const char *maps[NMAPS];
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	for (size_t i = 0; i < NMAPS; i++) {
		snprintf(specs[i], sizeof(specs[i]), "%" PRIx64 ":%u:%c",
			 BASE + layout[i].off, layout[i].pages, layout[i].kind);
		maps[i] = specs[i];
	}
	snprintf(kdir, sizeof(kdir), "%s/kcore", dir);
	mkdir(kdir, 0755);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	if (setrlimit(RLIMIT_CORE, &rl))
		tm_test_skip("core-dump", "cannot raise RLIMIT_CORE: %s", strerror(errno));
	assert_int_equal(chdir(kdir), 0);
	if (pt_spawn(h, maps, (int)NMAPS, why, sizeof(why)))
		fail_msg("target did not start: %s", why);
	assert_int_equal(chdir(cwd), 0);
}

/* The tags of granules [a, a + n*16) as the process reads them (LDG). */
static void own_tags(pt_proc *h, uint64_t a, size_t n, uint8_t *out)
{
	char *buf = malloc(n + 64);

	pt_cmd(h, buf, n + 64, "tags %" PRIx64 " %zu", a, n);
	if (strncmp(buf, "tags ", 5) || strlen(buf + 5) != n)
		fail_msg("target answered '%.80s'", buf);
	for (size_t g = 0; g < n; g++)
		out[g] = (uint8_t)(buf[5 + g] <= '9' ? buf[5 + g] - '0' : buf[5 + g] - 'a' + 10);
	free(buf);
}

/* Where the kernel put the target's core: core_pattern with %e, %p, %%
 * (absolute), or dir/kcore/core* (relative). */
static void kernel_core_path(int pid, char *out, size_t len)
{
	char pat[256] = "", *o = out;
	FILE *f = fopen("/proc/sys/kernel/core_pattern", "re");
	struct dirent *d;
	DIR *dd;

	if (!f || !fgets(pat, sizeof(pat), f))
		tm_test_skip("core-dump", "cannot read /proc/sys/kernel/core_pattern");
	fclose(f);
	pat[strcspn(pat, "\n")] = 0;
	if (pat[0] == '|')
		tm_test_skip("core-dump", "core_pattern '%s' pipes cores to a program", pat);
	if (pat[0] != '/') {
		snprintf(out, len, "%s/kcore", dir);
		dd = opendir(out);
		while (dd && (d = readdir(dd)))
			if (!strncmp(d->d_name, "core", 4)) {
				snprintf(out, len, "%s/kcore/%s", dir, d->d_name);
				closedir(dd);
				return;
			}
		if (dd)
			closedir(dd);
		tm_test_skip("core-dump", "the kernel wrote no core in %s (core_pattern '%s')",
			     out, pat);
	}
	for (const char *p = pat; *p && (size_t)(o - out) + 24 < len; p++) {
		if (p[0] != '%') {
			*o++ = *p;
			continue;
		}
		p++;
		if (*p == 'p')
			o += sprintf(o, "%d", pid);
		else if (*p == 'e')
			o += sprintf(o, "%s", "ptrace_target");
		else if (*p == '%')
			*o++ = '%';
		else
			tm_test_skip("core-dump", "core_pattern '%s': %%%c is not understood here",
				     pat, *p);
	}
	*o = 0;
	if (access(out, R_OK))
		tm_test_skip("core-dump", "the kernel wrote no core at %s", out);
}

/* Our core and the kernel's carry the same PROT_MTE segments, data and tags. */
static void compare_tagged(tm_core *mine, tm_core *kern)
{
	tm_core_info ki;
	tm_error err;
	size_t seen = 0;

	tm_core_get_info(kern, &ki);
	assert_true(ki.ntagged >= 3);
	for (size_t i = 0; i < ki.nsegments; i++) {
		tm_core_segment s;
		uint8_t *a, *b;
		size_t na, nb;

		assert_int_equal(tm_core_segment_get(kern, i, &s, &err), 0);
		if (!s.tagged)
			continue;
		seen++;
		a = malloc(s.memsz / 16);
		b = malloc(s.memsz / 16);
		assert_int_equal(tm_core_read_tags(kern, s.vaddr, s.memsz, a, &na, &err), 0);
		if (tm_core_read_tags(mine, s.vaddr, s.memsz, b, &nb, &err))
			fail_msg("tagmem's core lacks the kernel's memtag segment at 0x%"
				 PRIx64 ": %s", s.vaddr, err.msg);
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, na);
		free(a);
		free(b);
		a = malloc(s.memsz);
		b = malloc(s.memsz);
		assert_int_equal(tm_core_read_mem(kern, s.vaddr, a, s.memsz, &err), 0);
		assert_int_equal(tm_core_read_mem(mine, s.vaddr, b, s.memsz, &err), 0);
		assert_memory_equal(a, b, s.memsz);
		free(a);
		free(b);
	}
	assert_int_equal(seen, ki.ntagged);
}

/* Our core against the process's own LDG and the expected pattern; the
 * samples go to the gdb list. */
static void check_mine(tm_core *c, pt_proc *h, FILE *samples)
{
	tm_core_info in;
	tm_error err;

	tm_core_get_info(c, &in);
	assert_true(in.mte);
	assert_int_equal(in.pid, h->pid);
	assert_true(in.has_tagged_addr_ctrl);
	assert_int_equal(in.tagged_addr_ctrl, CTRL);
	assert_string_equal(in.comm, "ptrace_target");
	assert_int_equal(in.ntagged, 3);
	for (size_t i = 0; i < NMAPS; i++) {
		uint64_t a = BASE + layout[i].off, len = layout[i].pages * ps;
		size_t n = len / 16, got;
		uint8_t *own = calloc(n, 1), *core = malloc(n);
		uint64_t *data = malloc(len);

		if (layout[i].kind != 'n')
			own_tags(h, a, n, own);
		if (layout[i].kind == 'n') {
			assert_int_equal(tm_core_read_tags(c, a, len, core, &got, &err), -ENODATA);
		} else {
			assert_int_equal(tm_core_read_tags(c, a, len, core, &got, &err), 0);
			assert_int_equal(got, n);
			for (size_t g = 0; g < n; g++) {
				assert_int_equal(own[g], pt_expect_tag(SEED, a + 16 * g, ps));
				assert_int_equal(core[g], own[g]);
			}
		}
		assert_int_equal(tm_core_read_mem(c, a, data, len, &err), 0);
		for (size_t w = 0; w < len / 8; w++)
			assert_int_equal(data[w], pt_expect_word(SEED, a + 8 * w, ps));
		/* samples: each page's first granule and one in its middle */
		for (size_t pg = 0; samples && layout[i].kind != 'n' && pg < layout[i].pages; pg++)
			for (size_t g = pg * ps / 16; g < (pg + 1) * ps / 16; g += ps / 32)
				fprintf(samples, "0x%" PRIx64 " %u\n", a + 16 * g + 3, own[g]);
		free(own);
		free(core);
		free(data);
	}
}

static void copy_file(const char *from, const char *to)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

/* `tagmem core --pid PID --out FILE`, when the CLI is given. */
static void cli_core(int pid, const char *out)
{
	const char *cli = getenv("TM_TAGMEM_CLI");
	char cmd[1024];

	if (!cli)
		return;
	snprintf(cmd, sizeof(cmd), "'%s' core --pid %d --out '%s'", cli, pid, out);
	if (system(cmd) != 0)
		fail_msg("'%s' failed", cmd);
}

static void test_core_matches_process_and_kernel(void **state)
{
	char mine[160], cli[160], kpath[512], lst[160], buf[128];
	const char *out = getenv("TM_PTRACE_CORE_OUT");
	FILE *samples = NULL;
	tm_core *c, *k, *cc;
	tm_ptrace *p;
	tm_error err;
	pt_proc h = { 0 };
	int st;

	(void)state;
	pt_require();
	start_target(&h);
	pt_ok(&h, "setctrl %llx", (unsigned long long)CTRL);
	pt_ok(&h, "fill %d", SEED);
	snprintf(mine, sizeof(mine), "%s/tagmem.core", dir);
	snprintf(cli, sizeof(cli), "%s/cli.core", dir);
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), 0);
	if (tm_ptrace_core_write(p, mine, &err))
		fail_msg("core: %s", err.msg);
	tm_ptrace_detach(p);
	cli_core(h.pid, cli);
	/* the process is unchanged by the dumps */
	assert_string_equal(pt_cmd(&h, buf, sizeof(buf), "check %d", SEED), "ok");
	if (out) {
		snprintf(lst, sizeof(lst), "%s/samples.txt", out);
		samples = fopen(lst, "w");
		assert_non_null(samples);
	}
	assert_int_equal(tm_core_open(mine, &c, &err), 0);
	check_mine(c, &h, samples);
	if (samples)
		fclose(samples);
	if (getenv("TM_TAGMEM_CLI")) {
		assert_int_equal(tm_core_open(cli, &cc, &err), 0);
		check_mine(cc, &h, NULL);
		tm_core_close(cc);
	}
	/* now the kernel's core of the same state */
	fputs("crash\n", h.to);
	fflush(h.to);
	waitpid(h.pid, &st, 0);
	assert_true(WIFSIGNALED(st));
	if (!WCOREDUMP(st))
		tm_test_skip("core-dump", "the kernel wrote no core (signal %d, no core flag)",
			     WTERMSIG(st));
	kernel_core_path(h.pid, kpath, sizeof(kpath));
	assert_int_equal(tm_core_open(kpath, &k, &err), 0);
	compare_tagged(c, k);
	if (out) {
		snprintf(lst, sizeof(lst), "%s/tagmem.core", out);
		copy_file(mine, lst);
		snprintf(lst, sizeof(lst), "%s/kernel.core", out);
		copy_file(kpath, lst);
	}
	tm_core_close(k);
	tm_core_close(c);
	unlink(kpath);
	h.pid = 0;
	pt_end(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_matches_process_and_kernel),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
