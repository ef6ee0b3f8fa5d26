/*
 * test_region_lazy.c - lazy placement through userfaultfd and discard:
 * pages fill on first touch (direct or through the API) with their tags
 * already in place, exactly once under concurrent faults from many threads,
 * a failing fill gives the faulting thread SIGBUS (and API callers an
 * error) and places nothing, whole-page API writes place without filling,
 * discard makes a page fault again, and start/stop are clean.
 *
 * Every test runs for each backend with lazy placement: soft (shadow tags,
 * UFFDIO_COPY), mte (STGP into a staging page, UFFDIO_MOVE; on a real
 * arm64 kernel with MTE, i.e. make check-vm) and the caller backend "mem"
 * of test_backend.h (tags into its array, UFFDIO_COPY). Skipped, with the
 * reason, where userfaultfd is unavailable (qemu-user) or MTE is missing.
 */
#include <errno.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

#include "region/backend_soft.h"
#include "region_test.h"

#define NP 64u

struct src {
	uint32_t ps;
	_Atomic unsigned fills[NP];
	atomic_int fail_page;     /* -1: none */
	atomic_int later_page;    /* -1: none; fill says -EAGAIN */
	pthread_t main_thread;
	atomic_bool fill_on_main; /* fill ran on the caller's thread */
};

static void expect_data(uint32_t ps, size_t pg, uint8_t *d)
{
	tm_rng rng;

	tm_rng_seed(&rng, 1000 + pg);
	rt_fill(&rng, d, ps);
}

/* Even pages tagged with a pattern, odd pages untagged. */
static bool expect_tags(uint32_t ps, size_t pg, uint8_t *t)
{
	for (size_t i = 0; i < ps / 32; i++)
		t[i] = (uint8_t)((pg * 31 + i * 7) | 0x11);
	return pg % 2 == 0;
}

static int fill(void *ctx, tm_region *r, size_t pg, void *data, uint8_t *tags,
		bool *tagged, tm_error *err)
{
	struct src *s = ctx;

	(void)r;
	if (pthread_equal(pthread_self(), s->main_thread))
		atomic_store(&s->fill_on_main, true);
	if ((int)pg == atomic_load(&s->fail_page))
		return tm_error_set(err, -EIO, "source page %zu unreadable", pg);
	if ((int)pg == atomic_load(&s->later_page))
		return tm_error_set(err, -EAGAIN, "source page %zu requested", pg);
	atomic_fetch_add(&s->fills[pg], 1);
	expect_data(s->ps, pg, data);
	*tagged = expect_tags(s->ps, pg, tags);
	return 0;
}

struct lz {
	rt_fixture f;
	tm_region *r;
	struct src s;
	uint8_t *want, *got;
};

static void lz_free(struct lz *z)
{
	rt_destroy(&z->f);
	free(z->want);
	free(z->got);
	free(z);
}

/* A region of the given backend with lazy placement on, or NULL (skip). */
static struct lz *lz_new(enum rt_kind kind, uint32_t ps)
{
	struct lz *z = calloc(1, sizeof(*z));
	tm_error err;
	int rc;

	z->s.ps = ps;
	z->s.fail_page = -1;
	z->s.later_page = -1;
	z->s.main_thread = pthread_self();
	z->want = malloc(ps);
	z->got = malloc(ps);
	z->f = (rt_fixture){ .kind = kind, .page_size = ps, .npages = NP,
			     .backend = kind == RT_SOFT ? TM_BACKEND_SOFT :
					kind == RT_MTE ? TM_BACKEND_MTE :
					TM_BACKEND_OTHER };
	tm_error_clear(&err);
	rc = rt_create(&z->f, "lazy", NULL, &err);
	if (rc == -ENOTSUP) {
		free(z->want); free(z->got); free(z);
		tm_test_skip(rt_kind_name(kind), "%s backend: %s", rt_kind_name(kind), err.msg);
		return NULL;
	}
	assert_int_equal(rc, 0);
	z->r = z->f.r;
	tm_error_clear(&err);
	rc = tm_region_lazy_start(z->r, fill, &z->s, &err);
	if (rc == -ENOTSUP) {
		char why[sizeof(err.msg)];

		snprintf(why, sizeof(why), "%s", err.msg);
		lz_free(z);
		/* into PROT_MTE, placement is UFFDIO_MOVE; elsewhere UFFDIO_COPY */
		tm_test_skip(kind == RT_MTE ? "uffd-move" : "uffd",
			     "lazy placement (%s) unavailable here: %s", rt_kind_name(kind), why);
		return NULL;
	}
	assert_int_equal(rc, 0);
	return z;
}

/* The backend kind a test runs for (cmocka initial state). */
#define LZ_KIND(state) (*(const enum rt_kind *)*(state))

#define LZ_OR_SKIP(z, ps)                               \
	struct lz *z = lz_new(LZ_KIND(state), ps);      \
	if (!z)                                         \
		return

/* An untagged address in the mapping: touching it does not LDG first (as
 * tm_region_ptr does on mte); the test threads run without tag checks. */
static volatile uint8_t *raw(tm_region *r, size_t off)
{
	return r->map_base + off;
}

/* Data and tags of page pg are what the source says. */
static void check_page(struct lz *z, size_t pg)
{
	uint32_t ps = z->s.ps;
	uint8_t t[2048], tw[2048];
	tm_error err;
	bool tagged = expect_tags(ps, pg, tw);

	expect_data(ps, pg, z->want);
	assert_int_equal(tm_region_read_page(z->r, pg, z->got, t, &err), 0);
	assert_memory_equal(z->got, z->want, ps);
	if (!tagged)
		memset(tw, 0, ps / 32);
	assert_memory_equal(t, tw, ps / 32);
	assert_int_equal(tm_region_page_tagged(z->r, pg), tagged);
}

static void test_fill_on_touch(void **state)
{
	LZ_OR_SKIP(z, 4096);
	tm_region *r = z->r;
	uint8_t t[128];
	tm_error err;

	for (size_t pg = 0; pg < NP; pg++)
		assert_false(tm_region_page_present(r, pg));
	/* direct access faults to the fault thread (on mte, the LDG that
	 * tm_region_ptr does to find the granule's tag is the access) */
	volatile uint8_t *p = tm_region_ptr(r, 6 * 4096 + 10);
	expect_data(4096, 6, z->want);
	assert_int_equal(*p, z->want[10]);
	assert_true(tm_region_page_present(r, 6));
	assert_int_equal(z->s.fills[6], 1);
	/* tags were there when the data became visible */
	assert_true(tm_region_page_tagged(r, 6));
	assert_int_equal(tm_region_get_tags(r, 6, TM_TAGS_PACKED, t, &err), 0);
	expect_tags(4096, 6, z->want);
	assert_memory_equal(t, z->want, 128);
	check_page(z, 6);
	assert_int_equal(z->s.fills[6], 1);
	/* an API call on a missing page: filled (by the fault thread) */
	assert_int_equal(tm_region_get_tags(r, 9, TM_TAGS_PACKED, t, &err), 0);
	assert_int_equal(z->s.fills[9], 1);
	check_page(z, 9);
	assert_false(atomic_load(&z->s.fill_on_main));
	/* the whole region reads like an eagerly written copy */
	uint64_t d1, d2;
	assert_int_equal(tm_region_digest(r, &d1, &err), 0);
	for (size_t pg = 0; pg < NP; pg++)
		assert_int_equal(z->s.fills[pg], 1);
	tm_region_config cfg = { .name = "eager", .size = NP * 4096,
				 .geom = rt_geom_mte(4096) }; /* soft */
	tm_region *e;
	assert_int_equal(tm_region_create(&cfg, &e, &err), 0);
	for (size_t pg = 0; pg < NP; pg++) {
		uint8_t tg[128];
		bool tagged = expect_tags(4096, pg, tg);
		expect_data(4096, pg, z->want);
		assert_int_equal(tm_region_write_page(e, pg, z->want, tagged ? tg : NULL, &err), 0);
	}
	assert_int_equal(tm_region_digest(e, &d2, &err), 0);
	assert_true(d1 == d2);
	tm_region_destroy(e);
	assert_int_equal(tm_region_lazy_error(r, &err), 0);
	lz_free(z);
}

/* ---- many threads, same and different pages ---------------------- */

struct toucher {
	struct lz *z;
	unsigned seed;
	size_t bad; /* pages whose tags were missing when data was seen */
};

static void *touch_all(void *arg)
{
	struct toucher *t = arg;
	uint32_t ps = t->z->s.ps;
	size_t order[NP];
	tm_rng rng;
	tm_error err;

	tm_rng_seed(&rng, t->seed);
	for (size_t i = 0; i < NP; i++)
		order[i] = i;
	for (size_t i = NP - 1; i > 0; i--) {
		size_t j = tm_rng_below(&rng, i + 1), x = order[i];
		order[i] = order[j];
		order[j] = x;
	}
	for (size_t i = 0; i < NP; i++) {
		size_t pg = order[i];
		uint8_t tg[2048], want[2048];
		volatile uint8_t *p = raw(t->z->r, pg * ps + ps - 1);
		uint8_t v = *p; /* fault (or not) */

		(void)v;
		/* The data is visible: its tags must already be there. */
		tm_region_get_tags(t->z->r, pg, TM_TAGS_PACKED, tg, &err);
		if (!expect_tags(ps, pg, want))
			memset(want, 0, ps / 32);
		if (memcmp(tg, want, ps / 32))
			t->bad++;
	}
	return NULL;
}

static void concurrent(void **state, uint32_t ps)
{
	LZ_OR_SKIP(z, ps);
	struct toucher t[6];
	pthread_t th[6];

	for (int i = 0; i < 6; i++) {
		t[i] = (struct toucher){ .z = z, .seed = (unsigned)i + 1 };
		assert_int_equal(pthread_create(&th[i], NULL, touch_all, &t[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].bad, 0);
	}
	for (size_t pg = 0; pg < NP; pg++) {
		assert_int_equal(z->s.fills[pg], 1);
		check_page(z, pg);
	}
	lz_free(z);
}

static void test_concurrent_faults(void **state)
{
	concurrent(state, 4096);
}

static void test_concurrent_faults_16k(void **state)
{
	concurrent(state, 16384);
}

/* ---- a failing fill ------------------------------------------------ */

static __thread sigjmp_buf bus_jmp;
static __thread volatile siginfo_t bus_info;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	bus_info.si_code = si->si_code;
	bus_info.si_value = si->si_value;
	siglongjmp(bus_jmp, 1);
}

struct bus_try {
	volatile uint8_t *p;
	bool got_bus;
	int code;
	void *addr;
};

static void *touch_expect_bus(void *arg)
{
	struct bus_try *b = arg;

	if (sigsetjmp(bus_jmp, 1) == 0) {
		(void)*b->p;
		b->got_bus = false;
	} else {
		b->got_bus = true;
		b->code = bus_info.si_code;
		b->addr = bus_info.si_value.sival_ptr;
	}
	return NULL;
}

static void test_fill_failure(void **state)
{
	LZ_OR_SKIP(z, 4096);
	tm_region *r = z->r;
	struct sigaction sa = { .sa_sigaction = on_bus, .sa_flags = SA_SIGINFO }, old;
	struct bus_try b = { .p = raw(r, 7 * 4096 + 40) };
	pthread_t th;
	tm_error err;

	atomic_store(&z->s.fail_page, 7);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	assert_int_equal(pthread_create(&th, NULL, touch_expect_bus, &b), 0);
	pthread_join(th, NULL);
	assert_true(b.got_bus);
	assert_int_equal(b.code, SI_QUEUE);
	assert_ptr_equal(b.addr, (void *)b.p); /* the faulting address */
	/* nothing placed: no garbage, no zero page */
	assert_false(tm_region_page_present(r, 7));
	assert_false(tm_region_page_tagged(r, 7));
	tm_error_clear(&err);
	assert_int_equal(tm_region_lazy_error(r, &err), -EIO);
	assert_non_null(strstr(err.msg, "page 7"));
	assert_non_null(strstr(err.msg, "source page 7 unreadable"));
	/* API callers get the error back instead of a signal */
	tm_error_clear(&err);
	assert_int_equal(tm_region_read_page(r, 7, z->got, NULL, &err), -EIO);
	assert_non_null(strstr(err.msg, "'lazy'"));
	assert_int_equal(tm_region_read(r, 7 * 4096 + 1, z->got, 4, &err), -EIO);
	/* other pages are unaffected; once the source recovers, page 7 fills */
	check_page(z, 8);
	atomic_store(&z->s.fail_page, -1);
	b.got_bus = true;
	assert_int_equal(pthread_create(&th, NULL, touch_expect_bus, &b), 0);
	pthread_join(th, NULL);
	assert_false(b.got_bus);
	check_page(z, 7);
	sigaction(SIGBUS, &old, NULL);
	lz_free(z);
}

/* ---- whole-page API placement, zeroing, discard -------------------- */

static void test_write_page_places_without_fill(void **state)
{
	LZ_OR_SKIP(z, 4096);
	tm_region *r = z->r;
	uint8_t data[4096], tags[128], out[4096], ot[128];
	tm_error err;

	memset(data, 0x3C, sizeof(data));
	memset(tags, 0x5A, sizeof(tags));
	assert_int_equal(tm_region_write_page(r, 11, data + 0, tags, &err), 0);
	assert_true(tm_region_page_present(r, 11));
	assert_int_equal(z->s.fills[11], 0);
	assert_int_equal(raw(r, 11 * 4096)[5], 0x3C);
	assert_int_equal(tm_region_read_page(r, 11, out, ot, &err), 0);
	assert_memory_equal(out, data, 4096);
	assert_memory_equal(ot, tags, 128);
	/* untagged placement */
	assert_int_equal(tm_region_write_page(r, 12, data, NULL, &err), 0);
	assert_false(tm_region_page_tagged(r, 12));
	/* a present page is written the ordinary way */
	check_page(z, 13);
	assert_int_equal(tm_region_write_page(r, 13, data, tags, &err), 0);
	assert_int_equal(tm_region_read_page(r, 13, out, ot, &err), 0);
	assert_memory_equal(out, data, 4096);
	assert_int_equal(z->s.fills[13], 1);
	/* zeroing a missing page places zeros without a fill */
	assert_int_equal(tm_region_zero_page(r, 20, &err), 0);
	assert_int_equal(z->s.fills[20], 0);
	assert_int_equal(tm_region_read_page(r, 20, out, ot, &err), 0);
	for (size_t i = 0; i < 4096; i++)
		assert_int_equal(out[i], 0);
	assert_false(tm_region_page_tagged(r, 20));
	/* the written page is unaffected by later faults around it */
	check_page(z, 10);
	assert_int_equal(tm_region_read_page(r, 11, out, ot, &err), 0);
	assert_memory_equal(out, data, 4096);
	lz_free(z);
}

static void test_discard_refaults(void **state)
{
	LZ_OR_SKIP(z, 4096);
	tm_region *r = z->r;
	uint8_t t[128];
	tm_error err;

	check_page(z, 2);
	check_page(z, 3);
	assert_int_equal(tm_region_set_tag_range(r, 2 * 4096, 16, 0xF, &err), 0);
	assert_int_equal(tm_region_discard(r, 2, 2, &err), 0);
	assert_false(tm_region_page_present(r, 2));
	assert_false(tm_region_page_tagged(r, 2));
	/* next access goes back to the source: fresh data and tags */
	assert_int_equal(tm_region_get_tags(r, 2, TM_TAGS_PACKED, t, &err), 0);
	assert_int_equal(z->s.fills[2], 2);
	check_page(z, 2);
	(void)*raw(r, 3 * 4096);
	assert_int_equal(z->s.fills[3], 2);
	check_page(z, 3);
	lz_free(z);
}

/* Without lazy placement, discard drops data and tags: zeros come back. */
static void test_discard_plain(void **state)
{
	tm_region_config cfg = { .name = "plain", .size = 8 * 4096,
				 .geom = rt_geom_mte(4096) };
	uint8_t data[4096], t[128];
	tm_region *r;
	tm_error err;

	(void)state;
	assert_int_equal(tm_region_create(&cfg, &r, &err), 0);
	memset(data, 7, sizeof(data));
	memset(t, 0x99, sizeof(t));
	for (size_t pg = 0; pg < 8; pg++)
		assert_int_equal(tm_region_write_page(r, pg, data, t, &err), 0);
	assert_int_equal(tm_region_discard(r, 0, 8, &err), 0);
	assert_int_equal(tm_shadow_bytes(tm_soft_shadow(r)), 0);
	for (size_t pg = 0; pg < 8; pg++) {
		assert_false(tm_region_page_present(r, pg));
		assert_false(tm_region_page_tagged(r, pg));
		assert_int_equal(tm_region_read_page(r, pg, data, t, &err), 0);
		assert_true(tm_mem_is_zero(data, sizeof(data)));
		assert_true(tm_mem_is_zero(t, sizeof(t)));
	}
	assert_int_equal(tm_region_write(r, 4096 + 3, "z", 1, &err), 0);
	assert_true(tm_region_page_present(r, 1));
	assert_int_equal(tm_region_discard(r, 8, 1, &err), -ERANGE);
	assert_int_equal(tm_region_discard(r, 0, 0, &err), 0);
	tm_region_destroy(r);
}

/* ---- start / stop ------------------------------------------------- */

static void test_start_stop(void **state)
{
	LZ_OR_SKIP(z, 4096);
	tm_region *r = z->r;
	tm_error err;

	/* refusals */
	tm_error_clear(&err);
	assert_int_equal(tm_region_lazy_start(r, fill, &z->s, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "'lazy'"));
	check_page(z, 1);
	tm_region_lazy_stop(r);
	/* after stop a missing page is an ordinary zero page (no hang) */
	assert_int_equal(raw(r, 30 * 4096)[0], 0);
	assert_int_equal(z->s.fills[30], 0);
	/* restart: present pages stay, missing ones fill */
	for (int round = 0; round < 5; round++) {
		assert_int_equal(tm_region_lazy_start(r, fill, &z->s, &err), 0);
		assert_true(tm_region_page_present(r, 1));
		assert_true(tm_region_page_present(r, 30));
		check_page(z, 40 + (size_t)round);
		tm_region_lazy_stop(r);
	}
	assert_int_equal(z->s.fills[1], 1);
	assert_int_equal(tm_region_lazy_start(r, NULL, NULL, &err), -EINVAL);
	lz_free(z);
}

/* A backend without place (or without a mapping) refuses, naming itself. */
static void test_no_lazy_refused(void **state)
{
	tm_region *r;
	tb_ctx *c;
	tm_error err;

	(void)state;
	assert_int_equal(tb_region(TB_FILE, "f", 4 * 4096, 4096, &r, &c, &err), 0);
	tm_error_clear(&err);
	assert_int_equal(tm_region_lazy_start(r, fill, NULL, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "'f'"));
	assert_non_null(strstr(err.msg, "test-file backend has no lazy placement"));
	assert_int_equal(c->calls[TB_PLACE], 0);
	tb_region_destroy(r, c);
}

/* Lazy placement and uffd-wp dirty tracking share one userfaultfd. */
static void test_with_dirty_tracking(void **state)
{
	LZ_OR_SKIP(z, 4096);
	tm_region *r = z->r;
	uint64_t bm[1];
	tm_error err;
	int rc;

	tm_region_lazy_stop(r);
	tm_error_clear(&err);
	rc = tm_region_dirty_start(r, TM_DIRTY_UFFD_WP, &err);
	if (rc == -ENOTSUP) {
		lz_free(z);
		tm_test_skip("uffd-wp", "uffd-wp unavailable: %s", err.msg);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(tm_region_lazy_start(r, fill, &z->s, &err), 0);
	check_page(z, 4);  /* a fault while write-protect is registered */
	bm[0] = 0;
	assert_int_equal(tm_region_dirty_collect(r, bm, &err), 0);
	bm[0] = 0;
	assert_int_equal(tm_region_dirty_collect(r, bm, &err), 0);
	assert_int_equal(bm[0], 0);
	*raw(r, 4 * 4096 + 9) = 1; /* foreign */
	assert_int_equal(tm_region_dirty_collect(r, bm, &err), 0);
	assert_true(bm[0] == (1ull << 4));
	/* Zeroing an untouched page, which carries the write-protect
	 * marker: UFFDIO_ZEROPAGE refuses it, so this used to hang. */
	assert_false(tm_region_page_present(r, 6));
	assert_int_equal(tm_region_zero_page(r, 6, &err), 0);
	assert_true(tm_region_page_present(r, 6));
	assert_int_equal(raw(r, 6 * 4096)[100], 0);
	assert_int_equal(z->s.fills[6], 0);
	tm_region_lazy_stop(r);
	tm_region_dirty_stop(r);
	lz_free(z);
}

/* ---- fills that say "later" (post-copy) and the caller's fault loop - */

struct waiter {
	volatile uint8_t *p;
	uint8_t v;
	atomic_bool done;
	pid_t tid;
};

static void *wait_touch(void *arg)
{
	struct waiter *w = arg;

	w->tid = (pid_t)syscall(SYS_gettid);
	w->v = *w->p;
	atomic_store(&w->done, true);
	return NULL;
}

/* Still blocked after a while? (The kernel holds it in the fault.) */
static bool still_waiting(struct waiter *w)
{
	const struct timespec ms50 = { 0, 50000000 };

	nanosleep(&ms50, NULL);
	return !atomic_load(&w->done);
}

/* A fill that says -EAGAIN leaves the faulting thread waiting, records no
 * error and sends no signal; placing the page (as post-copy does when it
 * arrives) wakes it with the placed data and tags. */
static void test_fill_later(void **state)
{
	LZ_OR_SKIP(z, 4096);
	tm_region *r = z->r;
	struct waiter w = { .p = raw(r, 9 * 4096 + 17) };
	uint8_t data[4096], tags[128], t[128];
	pthread_t th;
	tm_error err;

	atomic_store(&z->s.later_page, 9);
	assert_int_equal(pthread_create(&th, NULL, wait_touch, &w), 0);
	assert_true(still_waiting(&w));
	assert_int_equal(tm_region_lazy_error(r, &err), 0);
	/* an API call gets "later" back */
	tm_error_clear(&err);
	assert_int_equal(tm_region_read_page(r, 9, data, NULL, &err), -EAGAIN);
	assert_non_null(strstr(err.msg, "not available yet"));
	assert_false(tm_region_page_present(r, 9));
	/* the page arrives */
	memset(data, 0x6B, sizeof(data));
	memset(tags, 0x4C, sizeof(tags));
	assert_int_equal(tm_region_write_page(r, 9, data, tags, &err), 0);
	pthread_join(th, NULL);
	assert_int_equal(w.v, 0x6B);
	assert_int_equal(tm_region_get_tags(r, 9, TM_TAGS_PACKED, t, &err), 0);
	assert_memory_equal(t, tags, sizeof(t));
	assert_int_equal(z->s.fills[9], 0);
	lz_free(z);
}

struct errs {
	atomic_int calls;
	size_t pg;
	uint64_t addr;
	int tid;
	char msg[TM_ERROR_MSG_MAX];
};

static void on_fill_error(void *ctx, tm_region *r, size_t pg, uint64_t addr,
			  int tid, const tm_error *err)
{
	struct errs *e = ctx;

	(void)r;
	e->pg = pg;
	e->addr = addr;
	e->tid = tid;
	snprintf(e->msg, sizeof(e->msg), "%s", tm_error_msg(err));
	atomic_fetch_add(&e->calls, 1);
}

/* Poll the region's descriptor and handle one message; false: none came
 * within 2 s. */
static bool handle_one(tm_region *r)
{
	struct pollfd pfd = { .fd = tm_region_lazy_fd(r, NULL), .events = POLLIN };
	tm_error err;

	if (poll(&pfd, 1, 2000) != 1)
		return false;
	assert_int_equal(tm_region_lazy_handle(r, &err), 1);
	return true;
}

/*
 * The caller's own loop: no fault thread; a fault waits until the caller
 * handles it (in the caller's thread); a fill error goes to the callback,
 * not SIGBUS, and the faulting thread waits until woken; API reads fill in
 * their own thread.
 */
static void test_caller_loop(void **state)
{
	LZ_OR_SKIP(z, 4096);
	tm_region *r = z->r;
	struct errs e = { 0 };
	struct waiter w = { .p = raw(r, 5 * 4096 + 3) };
	pthread_t th;
	tm_error err;

	/* the thread mode has no descriptor to hand out */
	tm_error_clear(&err);
	assert_int_equal(tm_region_lazy_fd(r, &err), -EINVAL);
	assert_int_equal(tm_region_lazy_handle(r, &err), -EINVAL);
	tm_region_lazy_stop(r);
	assert_int_equal(tm_region_lazy_start_caller(r, fill, &z->s, on_fill_error,
						     &e, &err), 0);
	assert_true(tm_region_lazy_fd(r, &err) >= 0);
	assert_int_equal(tm_region_lazy_handle(r, &err), 0); /* nothing pending */
	/* a fault waits for the loop */
	assert_int_equal(pthread_create(&th, NULL, wait_touch, &w), 0);
	assert_true(still_waiting(&w));
	assert_int_equal(z->s.fills[5], 0);
	assert_true(handle_one(r));
	pthread_join(th, NULL);
	expect_data(4096, 5, z->want);
	assert_int_equal(w.v, z->want[3]);
	assert_true(atomic_load(&z->s.fill_on_main)); /* filled by the loop */
	check_page(z, 5);
	/* a failing fill: the callback, no signal, the thread still waits */
	atomic_store(&z->s.fail_page, 7);
	w = (struct waiter){ .p = raw(r, 7 * 4096 + 40) };
	assert_int_equal(pthread_create(&th, NULL, wait_touch, &w), 0);
	assert_true(handle_one(r));
	assert_int_equal(e.calls, 1);
	assert_int_equal(e.pg, 7);
	assert_int_equal(e.addr & ~(uint64_t)4095,
			 (uintptr_t)raw(r, 7 * 4096) & ~(uintptr_t)4095);
	assert_int_equal(e.tid, w.tid);
	assert_non_null(strstr(e.msg, "source page 7 unreadable"));
	assert_true(still_waiting(&w));
	assert_false(tm_region_page_present(r, 7));
	/* the source recovers; woken, the thread faults again and is served */
	atomic_store(&z->s.fail_page, -1);
	assert_int_equal(tm_region_lazy_wake(r, 7, &err), 0);
	assert_true(handle_one(r));
	pthread_join(th, NULL);
	check_page(z, 7);
	assert_int_equal(e.calls, 1);
	/* an API read fills in its own thread, no loop needed */
	check_page(z, 30);
	assert_int_equal(tm_region_lazy_wake(r, NP, &err), -ERANGE);
	lz_free(z);
}

static const enum rt_kind k_soft = RT_SOFT, k_mte = RT_MTE, k_mem = RT_MEM;

#define LZ_T(prefix, fn, k) { prefix "/" #fn, fn, NULL, NULL, (void *)&k }
#define LZ_ALL(fn) LZ_T("soft", fn, k_soft), LZ_T("mte", fn, k_mte), \
	LZ_T("test-mem", fn, k_mem)

int main(void)
{
	const struct CMUnitTest tests[] = {
		LZ_ALL(test_fill_on_touch),
		LZ_ALL(test_concurrent_faults),
		LZ_ALL(test_concurrent_faults_16k),
		LZ_ALL(test_fill_failure),
		LZ_ALL(test_write_page_places_without_fill),
		LZ_ALL(test_discard_refaults),
		cmocka_unit_test(test_discard_plain),
		LZ_ALL(test_start_stop),
		cmocka_unit_test(test_no_lazy_refused),
		LZ_ALL(test_with_dirty_tracking),
		LZ_ALL(test_fill_later),
		LZ_ALL(test_caller_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
