/*
 * test_snapshot.c - snapshots of live processes: process A's PROT_MTE
 * mappings (private, shared, memfd, read-only) and control state are
 * saved, A goes away, and B - a fresh process that re-created the same
 * mappings with other contents and tag checks off - is restored from the
 * file; B then verifies A's data and tags itself (LDG and tag-checked
 * loads) and a wrong tag faults with SEGV_MTESERR again. Every thread's
 * control word travels. Then everything that must be refused: a target
 * whose mappings differ in size, in PROT_MTE, in permissions, by one too
 * many or one too few, with another thread count, a file with a damaged
 * chunk, a file without a process section - and after each, B's memory,
 * tags and control word are exactly what they were.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <sys/mman.h>

#include "snapshot/le.h"
#include "tagmem/ptrace.h"
#include "tagmem/snapshot.h"
#include "tests/ptrace/pt_test.h"

#define BASE UINT64_C(0x5a0000000000)
#define CTRL_A (TM_TAGGED_ADDR_ENABLE | TM_MTE_TCF_SYNC | (0x5555ull << TM_MTE_TAG_SHIFT))
#define CTRL_B (TM_TAGGED_ADDR_ENABLE | (0x0001ull << TM_MTE_TAG_SHIFT))   /* TCF none */

static char dir[] = "/tmp/tm-ptrace-snap-XXXXXX";
static size_t ps;
static char snap_raw[96], snap_zstd[96];

/* The layout A has and B re-creates. */
#define NMAPS 5
static char layout[NMAPS][48];
static const char *maps[NMAPS];

static void make_layout(void)
{
	static const struct { uint64_t off; unsigned pages; char kind; } l[NMAPS] = {
		{ 0, 40, 'p' }, { 0x10000000, 6, 's' }, { 0x20000000, 5, 'm' },
		{ 0x30000000, 3, 'r' }, { 0x40000000, 2, 'n' },   /* untagged: not saved */
	};

	for (int i = 0; i < NMAPS; i++) {
		snprintf(layout[i], sizeof(layout[i]), "%" PRIx64 ":%u:%c",
			 BASE + l[i].off, l[i].pages, l[i].kind);
		maps[i] = layout[i];
	}
}

static void start(pt_proc *h, const char *const *m, int n)
{
	char why[256];

	if (pt_spawn(h, m, n, why, sizeof(why)))
		fail_msg("target did not start: %s", why);
}

/* B: the same layout, other contents, tag checks off. */
static void start_b(pt_proc *h, const char *const *m, int n)
{
	start(h, m, n);
	pt_ok(h, "setctrl %llx", (unsigned long long)CTRL_B);
	pt_ok(h, "fill 2");
}

static void assert_b_untouched(pt_proc *h)
{
	char buf[256];

	assert_string_equal(pt_cmd(h, buf, sizeof(buf), "check 2"), "ok");
	assert_int_equal(pt_ctrl(h), CTRL_B);
}

static void save_a(const char *path, unsigned flags)
{
	tm_snap_opts o;
	tm_snap_stats st;
	tm_ptrace *p;
	tm_error err;
	pt_proc a;

	start(&a, maps, NMAPS);
	pt_ok(&a, "setctrl %llx", (unsigned long long)CTRL_A);
	pt_ok(&a, "fill 1");
	tm_snap_opts_init(&o);
	o.flags = flags;
	assert_int_equal(tm_ptrace_attach(a.pid, &p, &err), 0);
	if (tm_ptrace_snapshot_save(p, path, &o, &st, &err))
		fail_msg("save: %s", err.msg);
	assert_int_equal(st.pages, 40 + 6 + 5 + 3);
	assert_true(st.tagged_pages > 0 && st.tag_only_pages > 0 && st.zero_pages > 0);
	tm_ptrace_detach(p);
	pt_end(&a);
}

static int group_setup(void **state)
{
	(void)state;
	ps = (size_t)sysconf(_SC_PAGESIZE);
	make_layout();
	if (!mkdtemp(dir))
		return -1;
	snprintf(snap_raw, sizeof(snap_raw), "%s/a.snap", dir);
	snprintf(snap_zstd, sizeof(snap_zstd), "%s/a-zstd.snap", dir);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[160];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Every test starts here: skips where it cannot run, saves A once. */
static void need_snapshots(void)
{
	pt_require();
	if (access(snap_raw, F_OK)) {
		save_a(snap_raw, 0);
		save_a(snap_zstd, TM_SNAP_ZSTD | TM_SNAP_DIGEST);
	}
}

static int restore_into(pt_proc *h, const char *path, tm_error *err)
{
	tm_snapshot *s;
	tm_ptrace *p;
	int rc;

	assert_int_equal(tm_snapshot_open(path, NULL, &s, err), 0);
	assert_int_equal(tm_ptrace_attach(h->pid, &p, err), 0);
	rc = tm_ptrace_snapshot_restore(p, s, NULL, NULL, err);
	tm_ptrace_detach(p);
	tm_snapshot_close(s);
	return rc;
}

static void roundtrip(const char *path)
{
	char buf[256];
	tm_error err;
	pt_proc b;

	need_snapshots();
	start_b(&b, maps, NMAPS);
	/* before: B's own contents, and no tag checks */
	assert_string_equal(pt_cmd(&b, buf, sizeof(buf), "fault"), "nofault");
	if (restore_into(&b, path, &err))
		fail_msg("restore: %s", err.msg);
	/* after: A's data and tags, verified by B itself, and A's checks;
	 * B's untagged mapping is not in the snapshot and kept its own */
	assert_string_equal(pt_cmd(&b, buf, sizeof(buf), "checkmte 1"), "ok");
	assert_string_equal(pt_cmd(&b, buf, sizeof(buf), "checkplain 2"), "ok");
	assert_int_equal(pt_ctrl(&b), CTRL_A);
	assert_string_equal(pt_cmd(&b, buf, sizeof(buf), "fault"), "fault 9");
	pt_end(&b);
}

static void test_roundtrip_raw(void **state)
{
	(void)state;
	roundtrip(snap_raw);
}

static void test_roundtrip_zstd(void **state)
{
	(void)state;
	roundtrip(snap_zstd);
}

static void test_process_section(void **state)
{
	tm_snap_process_info pi;
	tm_snap_info info;
	tm_snapshot *s;
	tm_error err;
	uint64_t start, ctrl;
	uint32_t prot;
	bool shared;

	(void)state;
	need_snapshots();
	assert_int_equal(tm_snapshot_open(snap_raw, NULL, &s, &err), 0);
	tm_snapshot_info(s, &info);
	assert_true(info.flags & TM_SNAP_SECTIONS);
	assert_int_equal(info.nregions, 4);   /* the PROT_MTE ones */
	assert_int_equal(tm_snapshot_process_info(s, &pi, &err), 0);
	assert_int_equal(pi.nthreads, 1);
	assert_true(pi.hwcap2 & (1ull << 18));   /* HWCAP2_MTE */
	assert_int_equal(tm_snapshot_process_region(s, 3, &start, &prot, &shared, &err), 0);
	assert_int_equal(start, BASE + 0x30000000);
	assert_int_equal(prot, PROT_READ);
	assert_false(shared);
	assert_int_equal(tm_snapshot_process_region(s, 1, NULL, NULL, &shared, &err), 0);
	assert_true(shared);
	assert_int_equal(tm_snapshot_process_thread(s, 0, NULL, &ctrl, &err), 0);
	assert_int_equal(ctrl, CTRL_A);
	assert_int_equal(tm_snapshot_process_region(s, 4, NULL, NULL, NULL, &err), -EINVAL);
	tm_snapshot_close(s);
}

/* B built from maps with entry i replaced by alt (NULL: dropped) and extra
 * appended (NULL: none): the restore must fail saying want, and B must be
 * untouched. */
static void refused(int i, const char *alt, const char *extra, int threads,
		    const char *want_fmt, ...)
{
	const char *m[NMAPS + 1];
	char want[256], buf[128];
	va_list ap;
	tm_error err;
	pt_proc b;
	int n = 0, rc;

	need_snapshots();
	for (int k = 0; k < NMAPS; k++)
		if (k != i || alt)
			m[n++] = k == i ? alt : maps[k];
	if (extra)
		m[n++] = extra;
	start_b(&b, m, n);
	if (threads > 1)
		assert_int_equal(strncmp(pt_cmd(&b, buf, sizeof(buf), "threads %d", threads),
					 "ok", 2), 0);
	rc = restore_into(&b, snap_raw, &err);
	va_start(ap, want_fmt);
	vsnprintf(want, sizeof(want), want_fmt, ap);
	va_end(ap);
	if (rc == 0)
		fail_msg("restore into a mismatched process succeeded (want '%s')", want);
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not say '%s'", err.msg, want);
	print_message("refused as it should: %s\n", err.msg);
	assert_b_untouched(&b);
	pt_end(&b);
}

static void test_refuse_other_size(void **state)
{
	char alt[48];

	(void)state;
	snprintf(alt, sizeof(alt), "%" PRIx64 ":7:s", BASE + 0x10000000);
	refused(1, alt, NULL, 1, "snapshot region 1 '0x%" PRIx64 "-0x%" PRIx64
		"' (0x%" PRIx64 "-0x%" PRIx64 " rw-s PROT_MTE): the target process",
		BASE + 0x10000000, BASE + 0x10000000 + 6 * ps,
		BASE + 0x10000000, BASE + 0x10000000 + 6 * ps);
}

static void test_refuse_without_mte(void **state)
{
	char alt[48];

	(void)state;
	snprintf(alt, sizeof(alt), "%" PRIx64 ":5:n", BASE + 0x20000000);
	refused(2, alt, NULL, 1, "without PROT_MTE at 0x%" PRIx64, BASE + 0x20000000);
}

static void test_refuse_other_permissions(void **state)
{
	char alt[48];

	(void)state;
	snprintf(alt, sizeof(alt), "%" PRIx64 ":3:p", BASE + 0x30000000);
	refused(3, alt, NULL, 1, "has 0x%" PRIx64 "-0x%" PRIx64 " rw-p PROT_MTE at",
		BASE + 0x30000000, BASE + 0x30000000 + 3 * ps);
}

static void test_refuse_missing(void **state)
{
	(void)state;
	refused(0, NULL, NULL, 1, "has no mapping at 0x%" PRIx64, BASE);
}

static void test_refuse_extra(void **state)
{
	char extra[48];

	(void)state;
	snprintf(extra, sizeof(extra), "%" PRIx64 ":1:p", BASE + 0x50000000);
	refused(-1, NULL, extra, 1, "has a PROT_MTE mapping the snapshot does not: "
		"0x%" PRIx64, BASE + 0x50000000);
}

static void test_refuse_threads(void **state)
{
	(void)state;
	refused(-1, NULL, NULL, 2, "the control state of 1 threads, the target process");
}

static void test_refuse_damaged_chunk(void **state)
{
	char bad[128], buf[256];
	uint8_t head[4096];
	uint64_t data_area, k = 0;
	tm_snap_opts o;
	tm_snapshot *s;
	tm_ptrace *p;
	tm_error err;
	pt_proc b;
	int fd;

	(void)state;
	need_snapshots();
	snprintf(bad, sizeof(bad), "%s/bad.snap", dir);
	snprintf(buf, sizeof(buf), "cp %s %s", snap_raw, bad);
	assert_int_equal(system(buf), 0);
	/* the last region's data area (docs/FORMAT.md: region entry i at
	 * 128 + 160 i, data area at +120); a page of it that holds data; one
	 * byte of that page flipped */
	fd = open(bad, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, head, sizeof(head), 0), sizeof(head));
	data_area = tm_snap_get64(head + 128 + 3 * 160 + 120);
	while (!pt_class_data(pt_page_class(1, BASE + 0x30000000 + k * ps, ps)))
		k++;
	assert_int_equal(pread(fd, buf, 1, (off_t)(data_area + k * ps + 100)), 1);
	buf[0] ^= 0x40;
	assert_int_equal(pwrite(fd, buf, 1, (off_t)(data_area + k * ps + 100)), 1);
	close(fd);
	/* the chunks before it are fine, and one restore worker would place
	 * them before it reaches the bad one: tagmem verifies every chunk
	 * first */
	start_b(&b, maps, NMAPS);
	tm_snap_opts_init(&o);
	o.threads = 1;
	assert_int_equal(tm_snapshot_open(bad, NULL, &s, &err), 0);
	assert_int_equal(tm_ptrace_attach(b.pid, &p, &err), 0);
	assert_int_equal(tm_ptrace_snapshot_restore(p, s, &o, NULL, &err), -EBADMSG);
	print_message("refused as it should: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "checksum"));
	tm_ptrace_detach(p);
	tm_snapshot_close(s);
	assert_b_untouched(&b);
	pt_end(&b);
}

static void test_refuse_plain_snapshot(void **state)
{
	char path[128];
	tm_region_config cfg = { .struct_size = sizeof(cfg), .name = "r",
				 .size = 0, .backend = TM_BACKEND_SOFT };
	tm_region *r;
	tm_error err;
	pt_proc b;

	(void)state;
	need_snapshots();
	snprintf(path, sizeof(path), "%s/plain.snap", dir);
	cfg.size = ps;
	assert_int_equal(tm_geom_mte(&cfg.geom, (uint32_t)ps, &err), 0);
	assert_int_equal(tm_region_create(&cfg, &r, &err), 0);
	assert_int_equal(tm_snapshot_save(path, &r, 1, NULL, NULL, &err), 0);
	tm_region_destroy(r);
	start_b(&b, maps, NMAPS);
	assert_int_equal(restore_into(&b, path, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "no process section"));
	assert_b_untouched(&b);
	pt_end(&b);
}

static void test_threads_control_travels(void **state)
{
	char path[128], buf[256];
	unsigned long long want[3], got[3];
	tm_snapshot *s;
	tm_ptrace *p;
	tm_error err;
	pt_proc a, b;

	(void)state;
	need_snapshots();
	snprintf(path, sizeof(path), "%s/threads.snap", dir);
	start(&a, maps, 1);
	pt_ok(&a, "setctrl %llx", (unsigned long long)CTRL_A);
	pt_ok(&a, "fill 1");
	assert_int_equal(strncmp(pt_cmd(&a, buf, sizeof(buf), "threads 3"), "ok", 2), 0);
	pt_cmd(&a, buf, sizeof(buf), "tctrl");
	assert_int_equal(sscanf(buf, "tctrl %llx %llx %llx", &want[0], &want[1], &want[2]), 3);
	assert_true(want[1] != want[2] && want[0] != want[1]);
	assert_int_equal(tm_ptrace_attach(a.pid, &p, &err), 0);
	assert_int_equal(tm_ptrace_snapshot_save(p, path, NULL, NULL, &err), 0);
	tm_ptrace_detach(p);
	pt_end(&a);

	start(&b, maps, 1);
	assert_int_equal(strncmp(pt_cmd(&b, buf, sizeof(buf), "threads 3"), "ok", 2), 0);
	pt_ok(&b, "setctrl %llx", (unsigned long long)CTRL_B);
	assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), 0);
	assert_int_equal(tm_ptrace_attach(b.pid, &p, &err), 0);
	if (tm_ptrace_snapshot_restore(p, s, NULL, NULL, &err))
		fail_msg("restore: %s", err.msg);
	tm_ptrace_detach(p);
	tm_snapshot_close(s);
	pt_cmd(&b, buf, sizeof(buf), "tctrl");
	assert_int_equal(sscanf(buf, "tctrl %llx %llx %llx", &got[0], &got[1], &got[2]), 3);
	for (int k = 0; k < 3; k++)
		assert_int_equal(got[k], want[k]);
	assert_string_equal(pt_cmd(&b, buf, sizeof(buf), "check 1"), "ok");
	pt_end(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_raw),
		cmocka_unit_test(test_roundtrip_zstd),
		cmocka_unit_test(test_process_section),
		cmocka_unit_test(test_refuse_other_size),
		cmocka_unit_test(test_refuse_without_mte),
		cmocka_unit_test(test_refuse_other_permissions),
		cmocka_unit_test(test_refuse_missing),
		cmocka_unit_test(test_refuse_extra),
		cmocka_unit_test(test_refuse_threads),
		cmocka_unit_test(test_refuse_damaged_chunk),
		cmocka_unit_test(test_refuse_plain_snapshot),
		cmocka_unit_test(test_threads_control_travels),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
