/*
 * test_errors.c - a swap file that is truncated or unreadable under a
 * swapped-out region: every swap-in path fails with an error naming the slot
 * and file offset, nothing is placed (no garbage, no zero page), the page
 * stays swapped with its tags, and once the file is repaired the same pages
 * come back intact. Through a fault, the faulting thread gets SIGBUS.
 * A swap file that cannot be written (RLIMIT_FSIZE: EFBIG) fails the
 * swap-out with the slot named and leaves the folio resident, its tags in
 * the region and none in the store - for a large folio too, whose tags the
 * tag worker stores while the data is written.
 * Also: bad swap file configurations are refused with a reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "tests/test_skip.h"

#include "swap_test.h"

#define NPAGES 32u

struct broken {
	tm_swapfile *sf;
	tm_region *r;
	tm_pager *p;
	struct st_model m;
	uint8_t *saved;            /* the file's bytes, to repair it */
	off_t saved_len;
};

static void setup(struct broken *b, const char *name, bool lazy,
		  enum tm_swapin_mode mode)
{
	struct stat st;
	tm_error err;

	b->sf = st_swapfile(name, 4 * 512 * (uint64_t)ST_PS, 0);
	b->r = st_region(name, NPAGES, true);
	b->p = st_pager(b->r, b->sf, lazy, mode);
	st_model_init(&b->m, NPAGES);
	st_fill(b->r, &b->m, 99, 4);
	assert_int_equal(tm_swap_out_range(b->p, 0, NPAGES, 3, NULL, &err), 0);
	assert_int_equal(fstat(tm_swapfile_fd(b->sf), &st), 0);
	b->saved_len = st.st_size;
	b->saved = malloc((size_t)st.st_size);
	assert_non_null(b->saved);
	assert_int_equal(tm_pread_full(tm_swapfile_fd(b->sf), b->saved,
				       (size_t)st.st_size, 0), 0);
}

static void repair(struct broken *b)
{
	assert_int_equal(tm_pwrite_full(tm_swapfile_fd(b->sf), b->saved,
					(size_t)b->saved_len, 0), 0);
}

static void teardown(struct broken *b)
{
	st_close(b->p, b->r, b->sf, &b->m);
	free(b->saved);
}

/* Truncate the file so that the slots of pages >= 8 are gone. */
static void truncate_after_page(struct broken *b, size_t pg)
{
	uint64_t slot = tm_swap_page_slot(b->p, pg);

	assert_true(slot > 0);
	assert_int_equal(ftruncate(tm_swapfile_fd(b->sf),
				   (off_t)tm_swap_slot_offset(b->sf, slot)), 0);
}

static void expect_untouched(struct broken *b, size_t pg, size_t tags_before)
{
	tm_swap_stats st;

	assert_true(tm_swap_page_swapped(b->p, pg));
	assert_false(tm_region_page_present(b->r, pg));
	assert_false(tm_region_page_tagged(b->r, pg));
	tm_swapfile_stats(b->sf, &st);
	assert_int_equal(st.tags.entries, tags_before);
}

static void test_truncated_explicit(void **state)
{
	struct broken b;
	tm_swap_stats st;
	tm_error err;
	char want[128];

	(void)state;
	setup(&b, "trunc", false, TM_SWAPIN_FOLIO);
	tm_swapfile_stats(b.sf, &st);
	size_t tags_before = st.tags.entries;
	uint64_t slot = tm_swap_page_slot(b.p, 8);

	truncate_after_page(&b, 8);
	/* Page-by-page path. */
	assert_int_equal(tm_swap_in_page(b.p, 9, &err), -EIO);
	snprintf(want, sizeof(want), "slot %" PRIu64 " (file offset %" PRIu64,
		 slot + 1, tm_swap_slot_offset(b.sf, slot + 1));
	assert_non_null(strstr(err.msg, want));
	assert_non_null(strstr(err.msg, "truncated"));
	assert_non_null(strstr(err.msg, "page 9"));
	expect_untouched(&b, 9, tags_before);
	/* Whole-folio path: nothing of the folio is placed. */
	assert_int_equal(tm_swap_in(b.p, 8, 8, &err), -EIO);
	snprintf(want, sizeof(want), "slot %" PRIu64 " (file offset %" PRIu64,
		 slot, tm_swap_slot_offset(b.sf, slot));
	assert_non_null(strstr(err.msg, want));
	for (size_t pg = 8; pg < 16; pg++)
		expect_untouched(&b, pg, tags_before);
	/* A range stops at the first failing folio; earlier ones are in. */
	assert_int_equal(tm_swap_in(b.p, 0, NPAGES, &err), -EIO);
	for (size_t pg = 0; pg < 8; pg++)
		st_check_page(b.r, &b.m, pg);
	tm_swapfile_stats(b.sf, &st);
	assert_true(st.read_errors >= 3);
	/* Repaired: everything comes back, nothing was lost. */
	repair(&b);
	assert_int_equal(tm_swap_in(b.p, 0, NPAGES, &err), 0);
	st_check_all(b.r, &b.m);
	teardown(&b);
}

static void test_unreadable_explicit(void **state)
{
	struct broken b;
	char path[128];
	tm_error err;
	int fd, wr;

	(void)state;
	setup(&b, "unread", false, TM_SWAPIN_FOLIO);
	/* Make the descriptor write-only: every read fails with EBADF. */
	fd = tm_swapfile_fd(b.sf);
	st_swapfile_path(path, sizeof(path), "unread");
	wr = open(path, O_WRONLY);
	assert_true(wr >= 0);
	int keep = dup(fd);

	assert_true(keep >= 0);
	assert_int_equal(dup2(wr, fd), fd);
	assert_int_equal(tm_swap_in(b.p, 0, NPAGES, &err), -EBADF);
	assert_non_null(strstr(err.msg, "cannot be read"));
	assert_non_null(strstr(err.msg, "slot "));
	for (size_t pg = 0; pg < 8; pg++)
		assert_true(tm_swap_page_swapped(b.p, pg));
	assert_int_equal(dup2(keep, fd), fd);
	close(keep);
	close(wr);
	assert_int_equal(tm_swap_in(b.p, 0, NPAGES, &err), 0);
	st_check_all(b.r, &b.m);
	teardown(&b);
}

static void test_bad_configs(void **state)
{
	tm_swapfile_config c = { 0 };
	tm_swapfile *sf = NULL;
	tm_error err;

	(void)state;
	c.path = "/tmp/tagmem-test-swap-badcfg";
	c.size = 1 << 20;
	c.page_size = 8192;
	assert_int_equal(tm_swapfile_open(&c, &sf, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "8192"));
	c.page_size = 4096;
	c.size = 4096;
	assert_int_equal(tm_swapfile_open(&c, &sf, &err), -EINVAL);
	c.size = 1ull << 60;  /* more than any disk here */
	assert_int_equal(tm_swapfile_open(&c, &sf, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "free"));
	c.path = "/nonexistent-dir/x";
	c.size = 1 << 20;
	assert_int_equal(tm_swapfile_open(&c, &sf, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent-dir/x"));
	/* A directory: unnamed temporary file. */
	c.path = "/tmp";
	assert_int_equal(tm_swapfile_open(&c, &sf, &err), 0);
	assert_int_equal(tm_swapfile_nslots(sf), 256);
	uint8_t hdr[16];

	assert_int_equal(tm_pread_full(tm_swapfile_fd(sf), hdr, 16, 0), 0);
	assert_memory_equal(hdr, "TMSWAPv1", 8);
	tm_swapfile_close(sf);
}

static void test_pager_config_refused(void **state)
{
	tm_swapfile *sf = st_swapfile("pcfg", 64 * (uint64_t)ST_PS, 0);
	tm_region_config rc = { 0 };
	tm_pager_config pc = { 0 };
	tm_region *r;
	tm_pager *p;
	tm_error err;

	(void)state;
	rc.name = "big-pages";
	rc.size = 4 * 16384;
	assert_int_equal(tm_geom_mte(&rc.geom, 16384, &err), 0);
	assert_int_equal(tm_region_create(&rc, &r, &err), 0);
	pc.region = r;
	pc.swap = sf;
	assert_int_equal(tm_pager_create(&pc, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "page size 16384"));
	tm_region_destroy(r);
	tm_swapfile_close(sf);
}

/* ---- through a fault: SIGBUS to the faulting thread ------------------ */

static _Thread_local sigjmp_buf *bus_jmp;

static void on_sigbus(int sig)
{
	(void)sig;
	if (bus_jmp)
		siglongjmp(*bus_jmp, 1);
	abort();
}

struct faulter {
	tm_region *r;
	size_t pg;
	bool got_sigbus;
	uint8_t seen;
};

static void *fault_thread(void *arg)
{
	struct faulter *f = arg;
	sigjmp_buf jb;

	bus_jmp = &jb;
	if (sigsetjmp(jb, 1) == 0)
		f->seen = *(volatile uint8_t *)tm_region_ptr(f->r, f->pg * ST_PS + 100);
	else
		f->got_sigbus = true;
	bus_jmp = NULL;
	return NULL;
}

static bool touch_in_thread(tm_region *r, size_t pg, uint8_t *seen)
{
	struct faulter f = { r, pg, false, 0 };
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, fault_thread, &f), 0);
	pthread_join(th, NULL);
	*seen = f.seen;
	return f.got_sigbus;
}

static void truncated_fault(enum tm_swapin_mode mode)
{
	struct sigaction sa = { 0 }, old;
	struct broken b;
	tm_swap_stats st;
	tm_error err;
	uint8_t seen;
	tm_pager_config pc = { 0 };

	b.sf = st_swapfile("trunc-fault", 4 * 512 * (uint64_t)ST_PS, 0);
	b.r = st_region("trunc-fault", NPAGES, true);
	pc.region = b.r;
	pc.swap = b.sf;
	pc.lazy = true;
	pc.fault_mode = mode;
	if (tm_pager_create(&pc, &b.p, &err) != 0) {
		tm_region_destroy(b.r);
		tm_swapfile_close(b.sf);
		tm_test_skip("uffd", "lazy placement unavailable: %s", err.msg);
	}
	st_model_init(&b.m, NPAGES);
	st_fill(b.r, &b.m, 98, 4);
	assert_int_equal(tm_swap_out_range(b.p, 0, NPAGES, 3, NULL, &err), 0);
	struct stat fst;

	assert_int_equal(fstat(tm_swapfile_fd(b.sf), &fst), 0);
	b.saved_len = fst.st_size;
	b.saved = malloc((size_t)fst.st_size);
	assert_int_equal(tm_pread_full(tm_swapfile_fd(b.sf), b.saved, (size_t)fst.st_size, 0), 0);
	tm_swapfile_stats(b.sf, &st);
	size_t tags_before = st.tags.entries;

	truncate_after_page(&b, 8);
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGBUS, &sa, &old), 0);
	assert_true(touch_in_thread(b.r, 10, &seen));
	/* Nothing placed: no garbage, no zero page; the page stays swapped. */
	expect_untouched(&b, 10, tags_before);
	assert_int_equal(tm_region_lazy_error(b.r, &err), -EIO);
	assert_non_null(strstr(err.msg, "truncated"));
	assert_non_null(strstr(err.msg, "slot "));
	/* Through the API the same failure is an error, not a signal. */
	uint8_t data[ST_PS], tags[ST_PK];

	assert_int_equal(tm_region_read_page(b.r, 12, data, tags, &err), -EIO);
	assert_non_null(strstr(err.msg, "file offset"));
	expect_untouched(&b, 12, tags_before);
	/* Pages of intact folios still fault in. */
	assert_false(touch_in_thread(b.r, 3, &seen));
	assert_int_equal(seen, b.m.data[3 * ST_PS + 100]);
	/* Repaired: the page that failed now faults in intact. */
	repair(&b);
	assert_false(touch_in_thread(b.r, 10, &seen));
	assert_int_equal(seen, b.m.data[10 * ST_PS + 100]);
	assert_int_equal(sigaction(SIGBUS, &old, NULL), 0);
	st_check_all(b.r, &b.m);
	teardown(&b);
}

static void test_truncated_fault_folio_mode(void **state)
{
	(void)state;
	truncated_fault(TM_SWAPIN_FOLIO);
}

static void test_truncated_fault_page_mode(void **state)
{
	(void)state;
	truncated_fault(TM_SWAPIN_PAGE);
}

/* Limit the size of files this process writes (RLIMIT_FSIZE, SIGXFSZ
 * ignored so that writes past it fail with EFBIG); fsize_end undoes it. */
static struct rlimit fsize_begin(void)
{
	struct rlimit old;

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	return old;
}

static void fsize_set(const struct rlimit *old, rlim_t cur)
{
	struct rlimit lim = { cur, old->rlim_max };

	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

static void fsize_end(const struct rlimit *old)
{
	assert_int_equal(setrlimit(RLIMIT_FSIZE, old), 0);
	signal(SIGXFSZ, SIG_DFL);
}

/* Writes to the swap file fail: nothing swaps out, nothing is lost. */
static void test_write_failure_keeps_folio(void **state)
{
	enum { N = 1024 };
	tm_swapfile *sf = st_swapfile("wfail", 4 * 512 * (uint64_t)ST_PS, 0);
	tm_region *r = st_region("wfail", N, true);
	tm_pager *p = st_pager(r, sf, false, TM_SWAPIN_FOLIO);
	struct st_model m;
	tm_swap_stats st;
	tm_error err;

	(void)state;
	st_model_init(&m, N);
	st_fill(r, &m, 5, 4);
	struct rlimit old = fsize_begin();
	for (unsigned order = 0; order <= 9; order += 9) {
		size_t pg = order ? 512 : 7;

		/* order 0 (slot 1): nothing can be written. order 9 (slots
		 * 512..1023, the first aligned run): the first half of the
		 * folio is written, then EFBIG - late enough that the tag
		 * worker has stored the folio's tags, which must go again. */
		fsize_set(&old, order ? 768 * (rlim_t)ST_PS : 1);

		assert_int_equal(tm_swap_out(p, pg, order, &err), -EFBIG);
		assert_non_null(strstr(err.msg, "slot"));
		for (size_t i = pg; i < pg + ((size_t)1 << order); i++) {
			assert_false(tm_swap_page_swapped(p, i));
			assert_true(tm_region_page_present(r, i));
			st_check_page(r, &m, i);
		}
		tm_swapfile_stats(sf, &st);
		assert_int_equal(st.tags.entries, 0);
		assert_int_equal(st.slots_used, 0);
		assert_int_equal(st.pages_out, 0);
	}
	fsize_end(&old);
	/* Writable again: the same folios go out and come back intact. */
	assert_int_equal(tm_swap_out(p, 512, 9, &err), 0);
	assert_int_equal(tm_swap_out(p, 7, 0, &err), 0);
	tm_swapfile_stats(sf, &st);
	assert_true(st.tags.entries > 0);
	assert_int_equal(tm_swap_in(p, 0, N, &err), 0);
	st_check_all(r, &m);
	tm_swapfile_stats(sf, &st);
	assert_int_equal(st.tags.entries, 0);
	st_close(p, r, sf, &m);
}

/* A range of small folios goes out a 2 MiB block at a time (one lock, one
 * tag job, one discard): when a write fails inside the second block, the
 * first block stays out, nothing of the second is kept, and *done says
 * where it stopped. */
static void test_range_batch_failure(void **state)
{
	enum { N = 2048, BLOCK = 512 };
	tm_swapfile *sf = st_swapfile("bfail", 8 * 512 * (uint64_t)ST_PS, 0);
	tm_region *r = st_region("bfail", N, true);
	tm_pager *p = st_pager(r, sf, false, TM_SWAPIN_FOLIO);
	struct st_model m;
	tm_swap_stats st;
	tm_error err;
	size_t done = 99, tagged0 = 0;

	(void)state;
	st_model_init(&m, N);
	st_fill(r, &m, 6, 3);
	for (size_t i = 0; i < BLOCK; i++)
		tagged0 += m.tagged[i];
	struct rlimit old = fsize_begin();
	/* Each order-2 block fills a fresh 512-slot cluster, from cluster 1
	 * on (asserted below): the first block takes slots 512..1023, the
	 * second fails at slot 1280, half-way through. */
	fsize_set(&old, 1280 * (rlim_t)ST_PS);
	assert_int_equal(tm_swap_out_range(p, 0, N, 2, &done, &err), -EFBIG);
	fsize_end(&old);
	assert_int_equal(tm_swap_page_slot(p, 0), 512);
	assert_int_equal(done, BLOCK);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(tm_swap_page_swapped(p, i), i < BLOCK);
		if (i >= BLOCK) {
			assert_true(tm_region_page_present(r, i));
			st_check_page(r, &m, i);
		}
	}
	tm_swapfile_stats(sf, &st);
	assert_int_equal(st.tags.entries, tagged0);
	assert_int_equal(st.slots_used, BLOCK);
	assert_int_equal(st.pages_out, BLOCK);
	assert_int_equal(st.folios_out[2], BLOCK / 4);

	/* A block with a page already out goes folio by folio, and the error
	 * names that page. */
	assert_int_equal(tm_swap_out(p, 600, 0, &err), 0);
	assert_int_equal(tm_swap_out_range(p, BLOCK, BLOCK, 2, &done, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "page 600"));
	assert_int_equal(done, 600 - BLOCK);
	for (size_t i = BLOCK; i < 2 * BLOCK; i++)
		assert_int_equal(tm_swap_page_swapped(p, i), i < 600 || i == 600);

	/* Everything else goes out and comes back intact. */
	assert_int_equal(tm_swap_out_range(p, 604, 2 * BLOCK - 604, 2, &done, &err), 0);
	assert_int_equal(tm_swap_out_range(p, 2 * BLOCK, N - 2 * BLOCK, 2, &done, &err), 0);
	assert_int_equal(done, N - 2 * BLOCK);
	assert_int_equal(tm_swap_in(p, 0, N, &err), 0);
	st_check_all(r, &m);
	tm_swapfile_stats(sf, &st);
	assert_int_equal(st.tags.entries, 0);
	assert_int_equal(st.slots_used, 0);
	st_close(p, r, sf, &m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_truncated_explicit),
		cmocka_unit_test(test_unreadable_explicit),
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_pager_config_refused),
		cmocka_unit_test(test_truncated_fault_folio_mode),
		cmocka_unit_test(test_truncated_fault_page_mode),
		cmocka_unit_test(test_write_failure_keeps_folio),
		cmocka_unit_test(test_range_batch_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
