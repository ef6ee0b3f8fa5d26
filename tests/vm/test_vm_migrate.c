/*
 * test_vm_migrate.c - live migration between two processes, both on the mte
 * backend, on the real kernel of make check-vm: the source (this process)
 * and the destination (a forked child) talk over AF_UNIX socketpairs while
 * a writer thread in the source changes data and tags *through the
 * region's memory*, not the API: checked stores through the pointer the
 * granule's tag allows, STG/ST2G of new tags, STZG. Only the kernel's dirty
 * tracking (uffd-wp async + PAGEMAP_SCAN) can see those writes, so the
 * source must be tracking with uffd-wp (checked in the pause hook), and a
 * page it missed would arrive stale.
 *
 * After the migration the destination checks that the CPU enforces the
 * tags that arrived (an access with the granule's tag passes, one with
 * another tag faults with SEGV_MTESERR), computes its digest, and sends its
 * whole content (data + packed tags) back; the source compares every page
 * with what it holds after the pause. Without uffd-wp (qemu-user) the test
 * skips with the reason; check-vm requires uffd-wp, so there it cannot.
 */
#include "../mte/mte_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "tagmem/migrate.h"
#include "tagmem/region.h"
#include "tagmem/tags.h"

#define PS       4096u
#define NPAGES   512u            /* 2 MiB */
#define CHANNELS 2u
#define NT       (PS / 32)

static tm_region *mte_region(const char *name)
{
	tm_region_config cfg;
	tm_region *r = NULL;
	tm_error err;

	memset(&cfg, 0, sizeof(cfg));
	if (tm_geom_mte(&cfg.geom, PS, &err))
		return NULL;
	cfg.name = name;
	cfg.size = (size_t)NPAGES * PS;
	cfg.backend = TM_BACKEND_MTE;
	if (tm_region_create(&cfg, &r, &err))
		return NULL;
	return r;
}

/* pg % 8 == 0: zero; 1: tag-only; others random data with random tags. */
static void fill_source(tm_region *r)
{
	uint8_t data[PS], tags[NT];
	tm_rng rng;
	tm_error err;

	tm_rng_seed(&rng, 2026);
	for (size_t pg = 0; pg < NPAGES; pg++) {
		if (pg % 8 == 0)
			continue;
		for (size_t i = 0; i < NT; i++)
			tags[i] = (uint8_t)(tm_rng_next(&rng) | 0x10);
		for (size_t i = 0; i < PS; i++)
			data[i] = pg % 8 == 1 ? 0 : (uint8_t)tm_rng_next(&rng);
		if (tm_region_write_page(r, pg, data, tags, &err))
			fail_msg("fill page %zu: %s", pg, tm_error_msg(&err));
	}
}

/* ---- the writer: memory, not the API ------------------------------ */

typedef struct writer {
	tm_region *r;
	pthread_t thr;
	atomic_bool stop, pause_req, parked;
	atomic_ulong stores, stgs, stzgs;
	enum tm_dirty_method method_at_pause;
} writer;

static char *raw(tm_region *r, size_t off)
{
	return tm_mte_untag(tm_region_ptr(r, off));
}

/* One write of a random kind at a random granule. The only thread that
 * changes this region's tags while it runs, so the tag it loads before a
 * checked store is still the granule's tag at the store. */
static void write_one(writer *w, tm_rng *rng)
{
	size_t pg = tm_rng_below(rng, NPAGES), g = tm_rng_below(rng, PS / 16);
	char *p = raw(w->r, pg * PS + g * 16);

	switch (tm_rng_below(rng, 4)) {
	case 0:
	case 1: {
		/* a checked store: would fault with a stale tag */
		volatile uint64_t *q = (volatile uint64_t *)tm_mte_ptr_for(p);

		q[tm_rng_below(rng, 2)] = tm_rng_next(rng) | 1;
		atomic_fetch_add(&w->stores, 1);
		break;
	}
	case 2: {
		char *t = tm_mte_with_tag(p, (uint8_t)tm_rng_below(rng, 16));

		__asm__ volatile("stg %0, [%0]" : : "r"(t) : "memory");
		atomic_fetch_add(&w->stgs, 1);
		break;
	}
	default:
		/* data and tag of one granule to zero (STZG) */
		if (tm_mte_zero(p, 16) == 0)
			atomic_fetch_add(&w->stzgs, 1);
		break;
	}
}

static void *writer_main(void *arg)
{
	writer *w = arg;
	tm_rng rng;

	tm_rng_seed(&rng, 77);
	while (!atomic_load(&w->stop)) {
		if (atomic_load(&w->pause_req)) {
			atomic_store(&w->parked, true);
			usleep(200);
			continue;
		}
		atomic_store(&w->parked, false);
		for (int i = 0; i < 8; i++)
			write_one(w, &rng);
		usleep(100);
	}
	atomic_store(&w->parked, true);
	return NULL;
}

static int hook_pause(void *ctx)
{
	writer *w = ctx;

	atomic_store(&w->parked, false);
	atomic_store(&w->pause_req, true);
	while (!atomic_load(&w->parked))
		usleep(100);
	w->method_at_pause = tm_region_dirty_method(w->r);
	return 0;
}

static void hook_resume(void *ctx)
{
	writer *w = ctx;

	atomic_store(&w->pause_req, false);
}

/* ---- the destination process -------------------------------------- */

/* What the child sends back before the pages. */
struct report {
	int rc;                 /* 0, or the step that failed (> 0) */
	char why[400];
	uint64_t checked, tagged, enforce_errors;
	uint8_t digest[16];
	int verified;
};

static void dst_enforced(tm_region *dst, struct report *rep)
{
	uint8_t t[NT];

	for (size_t pg = 0; pg < NPAGES; pg += 3) {
		if (tm_region_get_tags(dst, pg, TM_TAGS_PACKED, t, NULL))
			rep->enforce_errors++;
		for (size_t g = pg % 5; g < PS / 16; g += 41) {
			char *p = tm_region_ptr(dst, pg * PS + g * 16);
			uint8_t want = mt_nibble(t, g);
			uintptr_t other = ((uintptr_t)want + 1 + g % 14) & 0xf;
			char *bad = (char *)(mt_bits(p) | (other << 56));
			uint64_t v = 0;

			if (((uintptr_t)p >> 56 & 0xf) != want ||
			    mt_probe(p, MT_LOAD8, &v) != 0 ||
			    mt_probe(bad, MT_LOAD8, &v) != SEGV_MTESERR)
				rep->enforce_errors++;
			rep->checked++;
			rep->tagged += want != 0;
		}
	}
}

static int send_all(int fd, const void *buf, size_t len)
{
	return tm_write_full(fd, buf, len) == 0 ? 0 : -1;
}

static _Noreturn void destination(const int *fds, int back)
{
	struct report rep;
	tm_migration *m = NULL;
	tm_migrate_stats st;
	uint8_t data[PS], tags[NT];
	tm_region *dst = mte_region("ram");
	tm_error err;

	memset(&rep, 0, sizeof(rep));
	tm_error_clear(&err);
	if (!dst) {
		rep.rc = 1;
		snprintf(rep.why, sizeof(rep.why), "destination: cannot create the mte region");
	} else if (tm_migration_new(&m, TM_MIGRATE_DEST, NULL, NULL, &err) ||
		   tm_migration_add_region(m, dst, &err)) {
		rep.rc = 2;
	} else {
		for (unsigned i = 0; i < CHANNELS + 1 && !rep.rc; i++)
			if (tm_migration_add_fd(m, fds[i], &err))
				rep.rc = 3;
		if (!rep.rc && tm_migration_run(m, &st, &err))
			rep.rc = 4;
	}
	if (rep.rc && !rep.why[0])
		snprintf(rep.why, sizeof(rep.why), "destination: %s", tm_error_msg(&err));
	if (!rep.rc) {
		rep.verified = st.verified;
		dst_enforced(dst, &rep);
		if (tm_migrate_digest(&dst, 1, 1, rep.digest, &err)) {
			rep.rc = 5;
			snprintf(rep.why, sizeof(rep.why), "digest: %s", tm_error_msg(&err));
		}
	}
	if (send_all(back, &rep, sizeof(rep)))
		_exit(10);
	for (size_t pg = 0; !rep.rc && pg < NPAGES; pg++) {
		if (tm_region_read(dst, pg * PS, data, PS, NULL) ||
		    tm_region_get_tags(dst, pg, TM_TAGS_PACKED, tags, NULL) ||
		    send_all(back, data, PS) || send_all(back, tags, NT))
			_exit(11);
	}
	_exit(rep.rc ? 1 : 0);
}

/* ---- the test ------------------------------------------------------ */

static void recv_all(int fd, void *buf, size_t len, const char *what)
{
	int rc = tm_read_full(fd, buf, len);

	if (rc != 0)
		fail_msg("reading %s from the destination process: %s", what, strerror(-rc));
}

/* The destination's pages, as it sent them, equal the source's now. */
static void compare_pages(tm_region *src, int back)
{
	uint8_t a[PS], b[PS], ta[NT], tb[NT];
	size_t bad_data = 0, bad_tags = 0, first = SIZE_MAX;

	for (size_t pg = 0; pg < NPAGES; pg++) {
		recv_all(back, b, PS, "a page");
		recv_all(back, tb, NT, "a page's tags");
		assert_int_equal(tm_region_read(src, pg * PS, a, PS, NULL), 0);
		assert_int_equal(tm_region_get_tags(src, pg, TM_TAGS_PACKED, ta, NULL), 0);
		if (memcmp(a, b, PS))
			bad_data++;
		if (memcmp(ta, tb, NT))
			bad_tags++;
		if ((memcmp(a, b, PS) || memcmp(ta, tb, NT)) && first == SIZE_MAX)
			first = pg;
	}
	if (bad_data || bad_tags)
		fail_msg("after migration %zu pages differ in data and %zu in tags "
			 "(first page %zu): a write through memory was not tracked",
			 bad_data, bad_tags, first);
}

static void test_two_processes_mte_writer(void **state)
{
	int sp[CHANNELS + 1][2], sfd[CHANNELS + 1], dfd[CHANNELS + 1], back[2];
	tm_migrate_config cfg;
	tm_migration *m;
	tm_migrate_stats st;
	struct report rep;
	tm_region *src;
	writer w;
	tm_migrate_hooks hooks = { .ctx = &w, .pause = hook_pause, .resume = hook_resume };
	uint8_t ds[16];
	tm_error err;
	pid_t pid;
	int status, rc;

	(void)state;
	mt_require();
	src = mte_region("ram");
	if (!src)
		tm_test_skip("mte", "cannot create an mte region");
	tm_error_clear(&err);
	rc = tm_region_dirty_start(src, TM_DIRTY_UFFD_WP, &err);
	if (rc == -ENOTSUP) {
		tm_region_destroy(src);
		tm_test_skip("uffd-wp", "uffd-wp unavailable: %s (writes through memory "
			     "cannot be tracked)", tm_error_msg(&err));
	}
	assert_int_equal(rc, 0);
	tm_region_dirty_stop(src);   /* the migration starts its own */
	fill_source(src);

	for (unsigned i = 0; i < CHANNELS + 1; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp[i]), 0);
		sfd[i] = sp[i][0];
		dfd[CHANNELS - i] = sp[i][1];   /* the handshake says which is which */
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, back), 0);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (unsigned i = 0; i < CHANNELS + 1; i++)
			close(sp[i][0]);
		close(back[0]);
		destination(dfd, back[1]);
	}
	for (unsigned i = 0; i < CHANNELS + 1; i++)
		close(sp[i][1]);
	close(back[1]);

	tm_migrate_config_default(&cfg);
	cfg.channels = CHANNELS;
	cfg.downtime_ms = 20;
	cfg.max_iterations = 5;
	cfg.on_max_iterations = TM_MAXITER_FORCE;
	cfg.max_bandwidth = 8u << 20;   /* pre-copy lasts long enough to race */
	memset(&w, 0, sizeof(w));
	w.r = src;
	assert_int_equal(pthread_create(&w.thr, NULL, writer_main, &w), 0);
	while (atomic_load(&w.stores) < 50)
		usleep(1000);
	tm_error_clear(&err);
	if (tm_migration_new(&m, TM_MIGRATE_SOURCE, &cfg, &hooks, &err) ||
	    tm_migration_add_region(m, src, &err))
		fail_msg("source setup: %s", tm_error_msg(&err));
	for (unsigned i = 0; i < CHANNELS + 1; i++)
		if (tm_migration_add_fd(m, sfd[i], &err))
			fail_msg("source add_fd: %s", tm_error_msg(&err));
	rc = tm_migration_run(m, &st, &err);
	atomic_store(&w.stop, true);
	pthread_join(w.thr, NULL);
	recv_all(back[0], &rep, sizeof(rep), "the report");
	if (rc || rep.rc)
		fail_msg("source: %s | destination (step %d): %s", rc ? tm_error_msg(&err) : "ok",
			 rep.rc, rep.rc ? rep.why : "ok");
	print_message("migrated %u pages between two processes in %u iterations "
		      "(%llu normal, %llu zero, %llu tag-only sent); writer: %lu checked "
		      "stores, %lu STG, %lu STZG through memory; dirty tracking %s\n",
		      NPAGES, st.iterations, (unsigned long long)st.pages_normal,
		      (unsigned long long)st.pages_zero, (unsigned long long)st.pages_tag_only,
		      atomic_load(&w.stores), atomic_load(&w.stgs), atomic_load(&w.stzgs),
		      tm_dirty_method_name(w.method_at_pause));
	/* first what arrived, then how: a missed write shows up as a page */
	compare_pages(src, back[0]);
	assert_int_equal(tm_migrate_digest(&src, 1, 1, ds, NULL), 0);
	assert_memory_equal(ds, rep.digest, 16);
	assert_int_equal(w.method_at_pause, TM_DIRTY_UFFD_WP);
	assert_true(st.verified && rep.verified);
	assert_true(st.iterations >= 2);
	assert_true(atomic_load(&w.stgs) > 20 && atomic_load(&w.stores) > 20);
	/* the writer raced pre-copy: more pages went than the region holds */
	assert_true(st.pages_normal + st.pages_zero + st.pages_tag_only > NPAGES);
	print_message("destination: %llu granules checked by the CPU (%llu tagged), "
		      "%llu wrong\n", (unsigned long long)rep.checked,
		      (unsigned long long)rep.tagged, (unsigned long long)rep.enforce_errors);
	assert_int_equal(rep.enforce_errors, 0);
	assert_true(rep.checked > 100 && rep.tagged > rep.checked / 2);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	tm_migration_free(m);
	for (unsigned i = 0; i < CHANNELS + 1; i++)
		close(sp[i][0]);
	close(back[0]);
	tm_region_destroy(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_processes_mte_writer),
	};

	return cmocka_run_group_tests(tests, mt_group_setup, NULL);
}
