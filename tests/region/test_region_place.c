/*
 * test_region_place.c - lazy placement never lets a thread see a page's
 * data before its tags, on every backend that places (soft, mte, the
 * caller backend "mem"), and the two kernel facts the mte backend is built
 * on, measured here on every run rather than trusted:
 *
 *   - UFFDIO_COPY into a registered PROT_MTE range places the page with all
 *     tags zero, whatever the source's tags (so a placement built on it
 *     would lose every tag);
 *   - UFFDIO_MOVE of a PROT_MTE staging page carries data and tags in one
 *     step, and leaves the staging address empty (it reads back as a fresh
 *     zero page with zero tags).
 *
 * The ordering test has faulting threads check their page's tags the
 * instant their access returns -- on mte with a tag-checked load through a
 * pointer carrying the expected tag, which faults (SEGV_MTESERR) if the tag
 * is not there yet. It passes with the real placement and must catch the
 * test hook TM_HOOK_WAKE_BEFORE_TAGS (data placed and threads woken with
 * zero tags, the tags written 30 ms later): the hook run asserts that the
 * violations were seen, so a detector that cannot fail fails the test.
 *
 * The mte parts need a real arm64 kernel with MTE and userfaultfd
 * (make check-vm); elsewhere they skip, saying why.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "region/mte_ops.h"
#include "region/uffd.h"
#include "region_test.h"

#ifndef SEGV_MTESERR
#define SEGV_MTESERR 9
#endif

#define PS 4096u
#define NP 48u
#define THREADS 4u

/* ---- the kernel facts (raw userfaultfd, no tagmem placement) -------- */

struct raw_uffd {
	int fd;
	uint64_t features;
	uint8_t *dst;        /* 2 pages PROT_MTE, registered MISSING */
};

/* A PROT_MTE range registered with a fresh userfaultfd; false: skip. */
static bool raw_open(struct raw_uffd *u, uint64_t want)
{
	struct uffdio_api api = { .api = UFFD_API, .features = want };
	void *p = NULL;

	if (!tm_mte_available()) {
		tm_test_skip("mte", "no MTE here (needs arm64 with HWCAP2_MTE)");
		return false;
	}
	u->fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->fd < 0) {
		tm_test_skip("uffd", "no userfaultfd here: %s", strerror(errno));
		return false;
	}
	if (ioctl(u->fd, UFFDIO_API, &api)) {
		int e = errno;

		close(u->fd);
		tm_test_skip(want & UFFD_FEATURE_MOVE ? "uffd-move" : "uffd",
			     "UFFDIO_API with features %#llx: %s", (unsigned long long)want,
			     strerror(e));
		return false;
	}
	u->features = api.features;
	assert_int_equal(tm_mte_map(2 * PS, &p), 0);
	u->dst = tm_mte_untag(p);
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)u->dst, .len = 2 * PS },
		.mode = UFFDIO_REGISTER_MODE_MISSING };
	assert_int_equal(ioctl(u->fd, UFFDIO_REGISTER, &reg), 0);
	return true;
}

static void raw_close(struct raw_uffd *u)
{
	tm_mte_unmap(u->dst, 2 * PS);
	close(u->fd);
}

/* A PROT_MTE page holding data and tags (STGP), untagged address. */
static uint8_t *tagged_source(uint8_t *data, uint8_t *tags)
{
	void *p = NULL;

	for (size_t i = 0; i < PS; i++)
		data[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < PS / 32; i++)
		tags[i] = (uint8_t)(0x10 * ((i + 3) % 15 + 1) + (i % 15 + 1));
	assert_int_equal(tm_mte_map(PS, &p), 0);
	assert_int_equal(tm_mte_copy_in(tm_mte_untag(p), data, tags, PS), 0);
	return tm_mte_untag(p);
}

static void test_kernel_copy_zeroes_tags(void **state)
{
	uint8_t data[PS], tags[PS / 32], got[PS], gtags[PS / 32];
	struct raw_uffd u;
	uint8_t *src;

	(void)state;
	if (!raw_open(&u, 0))
		return;
	src = tagged_source(data, tags);
	/* A tagged source pointer is refused outright. */
	struct uffdio_copy bad = { .dst = (uintptr_t)u.dst,
				   .src = (uintptr_t)tm_mte_with_tag(src, 5),
				   .len = PS };
	assert_int_equal(ioctl(u.fd, UFFDIO_COPY, &bad), -1);
	assert_int_equal(errno, EINVAL);
	struct uffdio_copy c = { .dst = (uintptr_t)u.dst, .src = (uintptr_t)src,
				 .len = PS };
	assert_int_equal(ioctl(u.fd, UFFDIO_COPY, &c), 0);
	assert_int_equal(tm_mte_copy_out(got, u.dst, PS), 0);
	assert_memory_equal(got, data, PS);            /* the data arrived */
	assert_int_equal(tm_mte_get_tags(u.dst, PS, gtags), 0);
	assert_false(tm_mem_is_zero(tags, sizeof(tags)));
	if (!tm_mem_is_zero(gtags, sizeof(gtags)))
		fail_msg("UFFDIO_COPY kept tags: the mte backend's staging "
			 "would not be needed (tag byte 0 = %#x)", gtags[0]);
	print_message("UFFDIO_COPY placed the data with every tag zero\n");
	tm_mte_unmap(src, PS);
	raw_close(&u);
}

static void test_kernel_move_carries_tags(void **state)
{
	uint8_t data[PS], tags[PS / 32], got[PS], gtags[PS / 32];
	struct raw_uffd u;
	uint8_t *src;

	(void)state;
	if (!raw_open(&u, UFFD_FEATURE_MOVE))
		return;
	if (!(u.features & UFFD_FEATURE_MOVE)) {
		raw_close(&u);
		tm_test_skip("uffd-move", "the kernel offers no UFFD_FEATURE_MOVE");
	}
	src = tagged_source(data, tags);
	struct uffdio_move mv = { .dst = (uintptr_t)u.dst + PS,
				  .src = (uintptr_t)src, .len = PS };
	if (ioctl(u.fd, UFFDIO_MOVE, &mv))
		fail_msg("UFFDIO_MOVE: %s", strerror(errno));
	assert_int_equal(tm_mte_copy_out(got, u.dst + PS, PS), 0);
	assert_memory_equal(got, data, PS);
	assert_int_equal(tm_mte_get_tags(u.dst + PS, PS, gtags), 0);
	assert_memory_equal(gtags, tags, sizeof(tags));
	/* the staging address is empty now: a fresh page, zero data and tags */
	assert_int_equal(tm_mte_copy_out(got, src, PS), 0);
	assert_true(tm_mem_is_zero(got, PS));
	assert_int_equal(tm_mte_get_tags(src, PS, gtags), 0);
	assert_true(tm_mem_is_zero(gtags, sizeof(gtags)));
	tm_mte_unmap(src, PS);
	raw_close(&u);
}

/* ---- the order of placement, seen by the faulting thread ------------ */

static void page_tags(size_t pg, uint8_t *t)
{
	/* never a zero nibble: a page with zero tags is always wrong */
	for (size_t i = 0; i < PS / 32; i++)
		t[i] = (uint8_t)(0x10 * ((pg + i) % 15 + 1) + ((pg * 3 + i) % 15 + 1));
}

static uint8_t page_byte(size_t pg) { return (uint8_t)(0x40 + pg); }

static int fill(void *ctx, tm_region *r, size_t pg, void *data, uint8_t *tags,
		bool *tagged, tm_error *err)
{
	(void)ctx;
	(void)err;
	memset(data, page_byte(pg), r->page_size);
	page_tags(pg, tags);
	*tagged = true;
	return 0;
}

struct faulter {
	tm_region *r;
	enum rt_kind kind;
	unsigned id;
	size_t bad_tags, bad_data, checked;
};

static __thread sigjmp_buf mte_jmp;
static __thread volatile int mte_code;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	mte_code = si->si_code;
	siglongjmp(mte_jmp, 1);
}

/*
 * mte: the first access to the page is a checked load through a pointer
 * carrying the tag granule 0 must have. If the thread is woken before the
 * tag is there, the load itself faults: the check happens at the instant
 * of waking, in hardware. 0: the load passed; else the si_code.
 */
static int checked_first_load(uint8_t *raw, uint8_t tag, uint8_t *v)
{
	volatile uint8_t *p = tm_mte_with_tag(raw, tag);

	mte_code = 0;
	if (sigsetjmp(mte_jmp, 1) == 0)
		*v = *p;
	return mte_code;
}

static void *fault_pages(void *arg)
{
	struct faulter *f = arg;
	tm_region *r = f->r;
	uint8_t want[PS / 32], got[PS / 32], v = 0;
	tm_error err;

	if (f->kind == RT_MTE)
		assert_int_equal(tm_mte_enable_thread(), 0);
	for (size_t pg = f->id; pg < NP; pg += THREADS) {
		uint8_t *raw = r->map_base + pg * PS;

		page_tags(pg, want);
		if (f->kind == RT_MTE) {
			int code = checked_first_load(raw, want[0] & 0xF, &v);

			if (code == SEGV_MTESERR)
				f->bad_tags++;
			else if (code)
				fail_msg("page %zu: SIGSEGV si_code %d", pg, code);
		} else {
			v = *(volatile uint8_t *)raw;
			/* the very next thing: the tags as the API sees them */
			assert_int_equal(tm_region_get_tags(r, pg, TM_TAGS_PACKED,
							    got, &err), 0);
			if (memcmp(got, want, sizeof(want)))
				f->bad_tags++;
		}
		if (v != page_byte(pg) && v != 0) /* mte: v unread on a fault */
			f->bad_data++;
		f->checked++;
	}
	return NULL;
}

/* Fault every page from THREADS threads; the pages whose tags were not
 * there when the data was. After the run every page must be right. */
static size_t run_faulters(rt_fixture *fx, bool wrong_order)
{
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
	struct sigaction old;
	struct faulter f[THREADS];
	pthread_t t[THREADS];
	size_t bad = 0, checked = 0;
	uint8_t want[PS / 32], got[PS / 32], data[PS];
	tm_error err;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	tm_region_test_hooks(fx->r, wrong_order ? TM_HOOK_WAKE_BEFORE_TAGS : 0, 30);
	tm_error_clear(&err);
	assert_int_equal(tm_region_lazy_start(fx->r, fill, NULL, &err), 0);
	for (unsigned i = 0; i < THREADS; i++) {
		f[i] = (struct faulter){ .r = fx->r, .kind = fx->kind, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, fault_pages, &f[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		bad += f[i].bad_tags;
		checked += f[i].checked;
		assert_int_equal(f[i].bad_data, 0);
	}
	tm_region_lazy_stop(fx->r);
	tm_region_test_hooks(fx->r, 0, 0);
	sigaction(SIGSEGV, &old, NULL);
	assert_int_equal(checked, NP);
	for (size_t pg = 0; pg < NP; pg++) {
		page_tags(pg, want);
		assert_int_equal(tm_region_read_page(fx->r, pg, data, got, &err), 0);
		assert_memory_equal(got, want, sizeof(want));
		assert_int_equal(data[PS - 1], page_byte(pg));
	}
	print_message("%s%s: %zu of %zu pages seen without their tags\n",
		      rt_kind_name(fx->kind), wrong_order ? " (wake before tags)" : "",
		      bad, checked);
	return bad;
}

static void create_or_skip(rt_fixture *fx, enum rt_kind kind)
{
	tm_error err;
	int rc;

	*fx = (rt_fixture){ .kind = kind, .page_size = PS, .npages = NP,
			    .backend = kind == RT_SOFT ? TM_BACKEND_SOFT :
				       kind == RT_MTE ? TM_BACKEND_MTE :
				       TM_BACKEND_OTHER };
	tm_error_clear(&err);
	rc = rt_create(fx, "place", NULL, &err);
	if (rc == 0) {
		/* can this host place at all? */
		rc = tm_region_lazy_start(fx->r, fill, NULL, &err);
		if (rc == 0) {
			tm_region_lazy_stop(fx->r);
			assert_int_equal(tm_region_discard(fx->r, 0, NP, &err), 0);
			return;
		}
		rt_destroy(fx);
	}
	assert_int_equal(rc, -ENOTSUP);
	tm_test_skip(kind == RT_MTE ? "uffd-move" : "uffd", "lazy placement (%s): %s",
		     rt_kind_name(kind), err.msg);
}

#define KIND(state) (*(const enum rt_kind *)*(state))

static void test_woken_thread_sees_tags(void **state)
{
	rt_fixture fx;

	create_or_skip(&fx, KIND(state));
	assert_int_equal(run_faulters(&fx, false), 0);
	rt_destroy(&fx);
}

/* The detector above must catch a placement that wakes first. */
static void test_wake_before_tags_is_caught(void **state)
{
	rt_fixture fx;
	size_t bad;

	create_or_skip(&fx, KIND(state));
	bad = run_faulters(&fx, true);
	if (bad < NP / 2)
		fail_msg("a placement that wakes before writing the tags was "
			 "seen on only %zu of %u pages", bad, NP);
	rt_destroy(&fx);
}

static const enum rt_kind k_soft = RT_SOFT, k_mte = RT_MTE, k_mem = RT_MEM;

#define P_T(prefix, fn, k) { prefix "/" #fn, fn, NULL, NULL, (void *)&k }
#define P_ALL(fn) P_T("soft", fn, k_soft), P_T("mte", fn, k_mte), \
	P_T("test-mem", fn, k_mem)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kernel_copy_zeroes_tags),
		cmocka_unit_test(test_kernel_move_carries_tags),
		P_ALL(test_woken_thread_sees_tags),
		P_ALL(test_wake_before_tags_is_caught),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
