/*
 * test_backend.c - the ptrace backend against a live process
 * (ptrace_target.c) on a real MTE kernel: regions over its PROT_MTE
 * mappings read the data and tags the process wrote itself (private,
 * shared, memfd, read-only mappings; more pages than one tag batch), writes
 * through them are what the process then reads with LDG and tag-checked
 * loads, a tag transfer that runs off the PROT_MTE mapping stops exactly
 * at its end, the tagged-address control of every thread reads and writes,
 * every thread is stopped while attached and runs again after, a stopped
 * process stays stopped, and a signal sent meanwhile arrives afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <sys/mman.h>

#include "region/ptrace_internal.h"
#include "tagmem/backend.h"
#include "tests/ptrace/pt_test.h"

#define BASE UINT64_C(0x5a0000000000)

static size_t ps;

static int setup(void **state)
{
	(void)state;
	ps = (size_t)sysconf(_SC_PAGESIZE);
	return 0;
}

/* "ADDR:PAGES:KIND" into buf */
static const char *spec(char *buf, uint64_t addr, unsigned pages, char kind)
{
	snprintf(buf, 48, "%" PRIx64 ":%u:%c", addr, pages, kind);
	return buf;
}

static void start(pt_proc *h, const char *const *maps, int n)
{
	char why[256];

	pt_require();
	if (pt_spawn(h, maps, n, why, sizeof(why)))
		fail_msg("target did not start: %s", why);
}

/* Expected data and packed tags of n pages from addr. */
static void expected(uint64_t seed, uint64_t addr, size_t n, uint8_t *data,
		     uint8_t *packed)
{
	size_t gran = n * ps / 16;
	uint8_t *un = malloc(gran);
	tm_error err;

	for (size_t off = 0; data && off < n * ps; off += 8) {
		uint64_t w = pt_expect_word(seed, addr + off, ps);

		memcpy(data + off, &w, 8);
	}
	for (size_t g = 0; g < gran; g++)
		un[g] = (uint8_t)pt_expect_tag(seed, addr + g * 16, ps);
	if (packed)
		assert_int_equal(tm_tags_pack(packed, un, gran, &err), 0);
	free(un);
}

static void assert_region_is(tm_region *r, uint64_t seed, uint64_t addr)
{
	size_t n = tm_region_npages(r), tb = ps / 32;
	uint8_t *d = malloc(n * ps), *t = malloc(n * tb);
	uint8_t *ed = malloc(n * ps), *et = malloc(n * tb);
	tm_error err;

	assert_int_equal(tm_region_read_pages(r, 0, n, d, t, &err), 0);
	expected(seed, addr, n, ed, et);
	assert_memory_equal(d, ed, n * ps);
	assert_memory_equal(t, et, n * tb);
	free(d);
	free(t);
	free(ed);
	free(et);
}

static void test_read_matches_target(void **state)
{
	char b[5][48], buf[256];
	const char *maps[5] = {
		spec(b[0], BASE, 80, 'p'),               /* more than one batch */
		spec(b[1], BASE + 0x10000000, 8, 's'),
		spec(b[2], BASE + 0x20000000, 4, 'm'),
		spec(b[3], BASE + 0x30000000, 4, 'r'),
		spec(b[4], BASE + 0x40000000, 4, 'n'),
	};
	tm_ptrace_set *set, *all;
	tm_ptrace *p;
	tm_error err;
	pt_proc h;
	char name[64];
	bool saw_plain = false;

	(void)state;
	start(&h, maps, 5);
	pt_ok(&h, "fill 7");
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), 0);
	assert_int_equal(tm_ptrace_set_create(p, TM_PTRACE_MTE, &set, &err), 0);
	assert_int_equal(tm_ptrace_set_count(set), 4);
	for (size_t i = 0; i < 4; i++) {
		const tm_ptrace_map *m = tm_ptrace_set_map(set, i);
		tm_region *r = tm_ptrace_set_regions(set)[i];

		assert_true(m->mte);
		assert_int_equal(m->start, BASE + i * 0x10000000);
		snprintf(name, sizeof(name), "0x%" PRIx64 "-0x%" PRIx64, m->start, m->end);
		assert_string_equal(tm_region_name(r), name);
		assert_string_equal(tm_region_backend_name(r), "ptrace");
		assert_null(tm_region_direct(r, 0));
		assert_true(tm_region_page_may_be_tagged(r, 0));
		assert_region_is(r, 7, m->start);
	}
	assert_int_equal(tm_ptrace_set_map(set, 3)->prot, PROT_READ);
	assert_true(tm_ptrace_set_map(set, 1)->shared);
	tm_ptrace_set_destroy(set);
	/* the dumpable set has the untagged mapping too, without tags */
	assert_int_equal(tm_ptrace_set_create(p, TM_PTRACE_DUMPABLE, &all, &err), 0);
	for (size_t i = 0; i < tm_ptrace_set_count(all); i++) {
		const tm_ptrace_map *m = tm_ptrace_set_map(all, i);

		if (m->start != BASE + 0x40000000)
			continue;
		saw_plain = true;
		assert_false(m->mte);
		assert_int_equal(tm_region_geom(tm_ptrace_set_regions(all)[i])->kind,
				 TM_META_NONE);
	}
	assert_true(saw_plain);
	tm_ptrace_set_destroy(all);
	tm_ptrace_detach(p);
	assert_string_equal(pt_cmd(&h, buf, sizeof(buf), "check 7"), "ok");
	pt_end(&h);
}

static void test_write_then_target_reads(void **state)
{
	char b[3][48], buf[256];
	const char *maps[3] = {
		spec(b[0], BASE, 70, 'p'),
		spec(b[1], BASE + 0x10000000, 5, 'm'),
		spec(b[2], BASE + 0x20000000, 3, 'r'),   /* read-only: FOLL_FORCE */
	};
	size_t tb = ps / 32;
	tm_ptrace_set *set;
	tm_ptrace *p;
	tm_error err;
	pt_proc h;

	(void)state;
	start(&h, maps, 3);
	pt_ok(&h, "setctrl %llx", (unsigned long long)(TM_TAGGED_ADDR_ENABLE |
		   TM_MTE_TCF_SYNC | (0xfffeull << TM_MTE_TAG_SHIFT)));
	pt_ok(&h, "fill 3");
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), 0);
	assert_int_equal(tm_ptrace_set_create(p, TM_PTRACE_MTE, &set, &err), 0);
	for (size_t i = 0; i < tm_ptrace_set_count(set); i++) {
		tm_region *r = tm_ptrace_set_regions(set)[i];
		uint64_t a = tm_ptrace_set_map(set, i)->start;
		size_t n = tm_region_npages(r);
		uint8_t *d = malloc(n * ps), *t = malloc(n * tb);

		expected(11, a, n, d, t);
		for (size_t pg = 0; pg < n; pg++) {
			enum pt_class c = pt_page_class(11, a + pg * ps, ps);
			int rc = c == PT_ZERO ? tm_region_zero_page(r, pg, &err)
				 : tm_region_write_page(r, pg, d + pg * ps,
							pt_class_tags(c) ? t + pg * tb : NULL, &err);

			assert_int_equal(rc, 0);
		}
		free(d);
		free(t);
	}
	tm_ptrace_set_destroy(set);
	tm_ptrace_detach(p);
	/* LDG and tag-checked loads (TCF sync) in the process itself */
	assert_string_equal(pt_cmd(&h, buf, sizeof(buf), "check 11"), "ok");
	assert_string_equal(pt_cmd(&h, buf, sizeof(buf), "fault"), "fault 9");
	pt_end(&h);
}

static void test_short_transfer_stops_at_mapping_end(void **state)
{
	char b[2][48], want[64];
	const char *maps[2] = { spec(b[0], BASE, 4, 'p'), spec(b[1], BASE + 4 * ps, 4, 'n') };
	size_t gran = 8 * ps / 16;
	uint8_t *un;
	tm_region *r;
	tm_ptrace *p;
	tm_error err;
	pt_proc h;
	int rc;

	(void)state;
	start(&h, maps, 2);
	pt_ok(&h, "fill 5");
	un = malloc(gran);
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), 0);
	memset(un, 0xee, gran);
	rc = tm_ptrace_peek(p, BASE, un, gran, &err);
	assert_int_equal(rc, -EIO);
	snprintf(want, sizeof(want), "0x%llx", (unsigned long long)(BASE + 4 * ps));
	if (!strstr(err.msg, want))
		fail_msg("error does not name %s: %s", want, err.msg);
	/* the first mapping's tags arrived, as the kernel moved them */
	for (size_t g = 0; g < 4 * ps / 16; g++)
		assert_int_equal(un[g], pt_expect_tag(5, BASE + g * 16, ps));
	/* a region cannot straddle the two; over the plain one it has no tags */
	assert_int_equal(tm_ptrace_region_create(p, BASE, BASE + 8 * ps, NULL, &r, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, want));
	assert_int_equal(tm_ptrace_region_create(p, BASE + 4 * ps, BASE + 8 * ps, NULL,
						 &r, &err), 0);
	assert_int_equal(tm_region_geom(r)->kind, TM_META_NONE);
	tm_region_destroy(r);
	assert_int_equal(tm_ptrace_region_create(p, BASE + 64 * ps, BASE + 65 * ps, NULL,
						 &r, &err), -EFAULT);
	tm_ptrace_detach(p);
	free(un);
	pt_end(&h);
}

static void test_control_state(void **state)
{
	char b[1][48], buf[128];
	const char *maps[1] = { spec(b[0], BASE, 2, 'p') };
	uint64_t first = TM_TAGGED_ADDR_ENABLE | TM_MTE_TCF_SYNC | (0x7ff9ull << TM_MTE_TAG_SHIFT);
	uint64_t second = TM_TAGGED_ADDR_ENABLE | TM_MTE_TCF_ASYNC | (0x0120ull << TM_MTE_TAG_SHIFT);
	uint64_t v;
	tm_ptrace *p;
	tm_error err;
	pt_proc h;

	(void)state;
	start(&h, maps, 1);
	pt_ok(&h, "setctrl %llx", (unsigned long long)first);
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), 0);
	assert_int_equal(tm_ptrace_get_tagged_addr_ctrl(p, 0, &v, &err), 0);
	assert_int_equal(v, first);
	assert_int_equal(tm_ptrace_set_tagged_addr_ctrl(p, 0, first | (1ull << 40), &err),
			 -EINVAL);
	assert_int_equal(tm_ptrace_get_tagged_addr_ctrl(p, 0, &v, &err), 0);
	assert_int_equal(v, first);
	assert_int_equal(tm_ptrace_set_tagged_addr_ctrl(p, 0, second, &err), 0);
	assert_int_equal(tm_ptrace_get_tagged_addr_ctrl(p, 1, &v, &err), -EINVAL);
	tm_ptrace_detach(p);
	assert_int_equal(pt_ctrl(&h), second);
	assert_string_equal(tm_tagged_addr_ctrl_describe(second, buf, sizeof(buf)),
			    "tagged ABI on, TCF async, IRG tags 0x0120");
	pt_end(&h);
}

/* State letter of thread tid of pid from /proc/PID/task/TID/stat. */
static char thread_state(int pid, int tid)
{
	char path[96], line[512], *close;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	f = fopen(path, "re");
	if (!f || !fgets(line, sizeof(line), f))
		fail_msg("%s: %s", path, strerror(errno));
	fclose(f);
	close = strrchr(line, ')');
	return close ? close[2] : '?';
}

static void wait_state(int pid, int tid, const char *want)
{
	for (int i = 0; i < 2000 && !strchr(want, thread_state(pid, tid)); i++)
		usleep(1000);
	if (!strchr(want, thread_state(pid, tid)))
		fail_msg("thread %d of %d is in state %c, not one of %s", tid, pid,
			 thread_state(pid, tid), want);
}

static void test_threads(void **state)
{
	char b[1][48], buf[256];
	const char *maps[1] = { spec(b[0], BASE, 2, 'p') };
	uint64_t base = TM_TAGGED_ADDR_ENABLE | TM_MTE_TCF_SYNC | (0xfffeull << TM_MTE_TAG_SHIFT);
	int tids[3];
	unsigned long long got[3];
	tm_ptrace *p;
	tm_error err;
	pt_proc h;

	(void)state;
	start(&h, maps, 1);
	pt_ok(&h, "setctrl %llx", (unsigned long long)base);
	pt_cmd(&h, buf, sizeof(buf), "threads 3");
	assert_int_equal(sscanf(buf, "ok %d %d %d", &tids[0], &tids[1], &tids[2]), 3);
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), 0);
	assert_int_equal(tm_ptrace_nthreads(p), 3);
	for (size_t i = 0; i < 3; i++) {
		int tid = tm_ptrace_tid(p, i), k = -1;
		uint64_t v, want;

		for (int j = 0; j < 3; j++)
			if (tids[j] == tid)
				k = j;
		assert_true(k >= 0);
		if (i == 0)
			assert_int_equal(tid, h.pid);   /* the leader first */
		assert_int_equal(thread_state(h.pid, tid), 't');   /* tracing stop */
		/* the target's thread k set its include mask to (k + 1) << 1 */
		want = k == 0 ? base : (base & ~TM_MTE_TAG_MASK) | ((uint64_t)(k + 1) << 4);
		assert_int_equal(tm_ptrace_get_tagged_addr_ctrl(p, i, &v, &err), 0);
		assert_int_equal(v, want);
	}
	assert_int_equal(tm_ptrace_tid(p, 3), 0);
	/* thread 2 (in tagmem's order) gets a new word */
	assert_int_equal(tm_ptrace_set_tagged_addr_ctrl(p, 2, base | TM_MTE_TCF_ASYNC, &err), 0);
	{
		int t2 = tm_ptrace_tid(p, 2);

		tm_ptrace_detach(p);
		for (int k = 0; k < 3; k++)
			wait_state(h.pid, tids[k], "SR");
		pt_cmd(&h, buf, sizeof(buf), "tctrl");
		assert_int_equal(sscanf(buf, "tctrl %llx %llx %llx", &got[0], &got[1], &got[2]), 3);
		for (int k = 0; k < 3; k++)
			if (tids[k] == t2)
				assert_int_equal(got[k], base | TM_MTE_TCF_ASYNC);
	}
	pt_end(&h);
}

static void test_stopped_process_stays_stopped(void **state)
{
	char b[1][48], buf[128];
	const char *maps[1] = { spec(b[0], BASE, 2, 'p') };
	tm_ptrace *p;
	tm_error err;
	pt_proc h;

	(void)state;
	start(&h, maps, 1);
	pt_ok(&h, "fill 2");
	kill(h.pid, SIGSTOP);
	wait_state(h.pid, h.pid, "T");
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), 0);
	assert_true(tm_ptrace_was_stopped(p));
	tm_ptrace_detach(p);
	usleep(100000);
	assert_int_equal(thread_state(h.pid, h.pid), 'T');
	kill(h.pid, SIGCONT);
	assert_string_equal(pt_cmd(&h, buf, sizeof(buf), "check 2"), "ok");
	/* a running one is not "was stopped", and runs on */
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), 0);
	assert_false(tm_ptrace_was_stopped(p));
	tm_ptrace_detach(p);
	assert_string_equal(pt_cmd(&h, buf, sizeof(buf), "check 2"), "ok");
	pt_end(&h);
}

static void test_signal_while_attached_arrives_after(void **state)
{
	char b[1][48], buf[128];
	const char *maps[1] = { spec(b[0], BASE, 1, 'p') };
	tm_ptrace *p;
	tm_error err;
	pt_proc h;

	(void)state;
	start(&h, maps, 1);
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), 0);
	kill(h.pid, SIGUSR1);
	usleep(50000);
	tm_ptrace_detach(p);
	for (int i = 0; i < 100; i++) {
		pt_cmd(&h, buf, sizeof(buf), "usr1");
		if (!strcmp(buf, "usr1 1"))
			break;
		usleep(10000);
	}
	assert_string_equal(buf, "usr1 1");
	pt_end(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_matches_target),
		cmocka_unit_test(test_write_then_target_reads),
		cmocka_unit_test(test_short_transfer_stops_at_mapping_end),
		cmocka_unit_test(test_control_state),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_stopped_process_stays_stopped),
		cmocka_unit_test(test_signal_while_attached_arrives_after),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
