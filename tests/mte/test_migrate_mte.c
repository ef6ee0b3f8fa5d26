/*
 * test_migrate_mte.c - live migration between two regions on the mte
 * backend, under real tag checking (qemu-aarch64 -cpu max in CI): the
 * source is filled with data and tm_corpus_fill "mix" tags plus zero and
 * tag-only pages; a writer thread changes data (tm_region_write) and tags
 * (tm_region_set_tag_range) while pre-copy runs over AF_UNIX socketpairs,
 * source and destination each in their own thread. Afterwards the
 * destination must hold the same data and tags (protocol digest, an
 * independent digest, every page's tags through tm_region_get_tags), and
 * the CPU must enforce those tags: for sampled granules an access through
 * tm_region_ptr(dst) passes and one through a different logical tag faults
 * with SEGV_MTESERR.
 *
 * Dirty tracking: under qemu-user no kernel dirty method works, so the
 * source falls back to API-only tracking; every write here goes through the
 * API, which is what makes the result exact (docs/parts/mte.md).
 */
#include "mte_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "tagmem/migrate.h"
#include "tagmem/region.h"
#include "tagmem/tags.h"

#define PS       4096u
#define NPAGES   1024u           /* 4 MiB: small, qemu emulates MTE */
#define CHANNELS 2u
#define NT       (PS / 32)       /* packed tag bytes per page */

/* The writer: changes data and tags through the API until stopped; parks
 * while the source has the workload paused. */
typedef struct writer {
	tm_region *r;
	pthread_t thr;
	atomic_bool stop, pause_req, parked;
	atomic_ulong ops;
	int rc;
	tm_error err;
} writer;

static void *writer_main(void *arg)
{
	writer *w = arg;
	tm_rng rng;
	uint8_t buf[256];

	tm_rng_seed(&rng, 99);
	tm_error_clear(&w->err);
	while (!atomic_load(&w->stop)) {
		if (atomic_load(&w->pause_req)) {
			atomic_store(&w->parked, true);
			usleep(200);
			continue;
		}
		atomic_store(&w->parked, false);
		size_t pg = tm_rng_next(&rng) % NPAGES;
		size_t off = pg * PS + (tm_rng_next(&rng) % (PS / 64)) * 64;

		if (tm_rng_next(&rng) & 1) {
			for (size_t i = 0; i < sizeof(buf); i++)
				buf[i] = (uint8_t)tm_rng_next(&rng);
			w->rc = tm_region_write(w->r, off, buf, sizeof(buf) / 4, &w->err);
		} else {
			w->rc = tm_region_set_tag_range(w->r, off, 64,
							(uint8_t)(tm_rng_next(&rng) & 0xf),
							&w->err);
		}
		if (w->rc)
			break;
		atomic_fetch_add(&w->ops, 1);
		usleep(50);
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
	return 0;
}

static void hook_resume(void *ctx)
{
	writer *w = ctx;

	atomic_store(&w->pause_req, false);
}

/* One side of the migration, run in its own thread. */
typedef struct side {
	tm_migration *m;
	pthread_t thr;
	int rc;
	tm_error err;
	tm_migrate_stats st;
} side;

static void *side_main(void *arg)
{
	side *s = arg;

	tm_error_clear(&s->err);
	s->rc = tm_migration_run(s->m, &s->st, &s->err);
	return NULL;
}

static tm_region *mte_region(const char *name)
{
	tm_region_config cfg;
	tm_region *r = NULL;
	tm_error err;

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(tm_geom_mte(&cfg.geom, PS, &err), 0);
	cfg.name = name;
	cfg.size = (size_t)NPAGES * PS;
	cfg.backend = TM_BACKEND_MTE;
	if (tm_region_create(&cfg, &r, &err))
		fail_msg("tm_region_create(mte): %s", tm_error_msg(&err));
	return r;
}

/* Page kinds: pg % 8 == 0 zero (data and tags), 1 tag-only (zero data,
 * non-zero tags), others random data with the corpus's mix tags. */
static void fill_source(tm_region *r)
{
	uint8_t *tags = malloc((size_t)NPAGES * NT), *data = malloc(PS);
	tm_rng rng;
	tm_error err;

	assert_non_null(tags);
	assert_non_null(data);
	tm_corpus_fill(TM_CORPUS_MIX, tm_region_geom(r), 5, tags, NPAGES);
	tm_rng_seed(&rng, 11);
	for (size_t pg = 0; pg < NPAGES; pg++) {
		uint8_t *t = tags + pg * NT;

		if (pg % 8 == 0)
			continue;
		if (pg % 8 == 1) {
			memset(data, 0, PS);
			if (tm_mem_is_zero(t, NT))
				memset(t, 0x5a, NT);
		} else {
			for (size_t i = 0; i < PS; i++)
				data[i] = (uint8_t)tm_rng_next(&rng);
		}
		if (tm_region_write_page(r, pg, data, t, &err))
			fail_msg("fill page %zu: %s", pg, tm_error_msg(&err));
	}
	free(tags);
	free(data);
}

static void new_side(side *s, enum tm_migrate_role role, const tm_migrate_config *cfg,
		     const tm_migrate_hooks *hooks, tm_region *r, const int *fds)
{
	tm_error err;

	memset(s, 0, sizeof(*s));
	tm_error_clear(&err);
	if (tm_migration_new(&s->m, role, cfg, hooks, &err) ||
	    tm_migration_add_region(s->m, r, &err))
		fail_msg("setup: %s", tm_error_msg(&err));
	for (unsigned i = 0; i < CHANNELS + 1; i++)
		if (tm_migration_add_fd(s->m, fds[i], &err))
			fail_msg("add_fd: %s", tm_error_msg(&err));
}

/* Data and tags (through tm_region_get_tags) of every page equal. */
static void assert_same_pages(tm_region *a, tm_region *b)
{
	uint8_t *da = malloc(PS), *db = malloc(PS), ta[NT], tb[NT];

	assert_non_null(da);
	assert_non_null(db);
	for (size_t pg = 0; pg < NPAGES; pg++) {
		assert_int_equal(tm_region_get_tags(a, pg, TM_TAGS_PACKED, ta, NULL), 0);
		assert_int_equal(tm_region_get_tags(b, pg, TM_TAGS_PACKED, tb, NULL), 0);
		if (memcmp(ta, tb, NT))
			fail_msg("page %zu: tags differ after migration", pg);
		assert_int_equal(tm_region_read(a, pg * PS, da, PS, NULL), 0);
		assert_int_equal(tm_region_read(b, pg * PS, db, PS, NULL), 0);
		if (memcmp(da, db, PS))
			fail_msg("page %zu: data differs after migration", pg);
	}
	free(da);
	free(db);
}

/* The CPU enforces the migrated tags: per sampled granule, the pointer
 * tm_region_ptr hands out carries the tag get_tags reports, an access
 * through it passes, and the same address with another tag faults. */
static void assert_enforced(tm_region *dst, size_t *checked, size_t *tagged)
{
	uint8_t t[NT];

	for (size_t pg = 0; pg < NPAGES; pg += 5) {
		assert_int_equal(tm_region_get_tags(dst, pg, TM_TAGS_PACKED, t, NULL), 0);
		for (size_t g = pg % 7; g < PS / 16; g += 37) {
			size_t off = pg * PS + g * 16 + (g % 16);
			uint8_t want = mt_nibble(t, g);
			char *p = tm_region_ptr(dst, off);
			uintptr_t other = ((uintptr_t)want + 1 + g % 14) & 0xf;
			char *bad = (char *)((mt_bits(p)) | (other << 56));
			uint64_t v = 0;

			assert_non_null(p);
			assert_int_equal(((uintptr_t)p >> 56) & 0xf, want);
			assert_int_equal(mt_probe(p, MT_LOAD8, &v), 0);
			mt_assert_tag_fault(bad, MT_LOAD8, 1);
			mt_assert_tag_fault(bad, MT_STORE8, 1);
			(*checked)++;
			*tagged += want != 0;
		}
	}
}

static void migrate_with_writer(void **state)
{
	int sp[CHANNELS + 1][2], sfd[CHANNELS + 1], dfd[CHANNELS + 1];
	tm_region *src, *dst;
	tm_migrate_config cfg;
	writer w;
	tm_migrate_hooks hooks = { .ctx = &w, .pause = hook_pause,
				   .resume = hook_resume };
	side s, d;
	uint8_t ds[16], dd[16];
	size_t checked = 0, tagged = 0;

	(void)state;
	mt_require();
	src = mte_region("ram");
	dst = mte_region("ram");
	fill_source(src);
	for (unsigned i = 0; i < CHANNELS + 1; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp[i]), 0);
		sfd[i] = sp[i][0];
		dfd[CHANNELS - i] = sp[i][1];   /* the handshake says which is which */
	}
	tm_migrate_config_default(&cfg);
	cfg.channels = CHANNELS;
	cfg.downtime_ms = 20;
	cfg.max_iterations = 4;
	cfg.on_max_iterations = TM_MAXITER_FORCE;
	cfg.max_bandwidth = 16u << 20;   /* pre-copy lasts long enough to race */

	memset(&w, 0, sizeof(w));
	w.r = src;
	assert_int_equal(pthread_create(&w.thr, NULL, writer_main, &w), 0);
	while (atomic_load(&w.ops) < 50)
		usleep(1000);
	new_side(&s, TM_MIGRATE_SOURCE, &cfg, &hooks, src, sfd);
	new_side(&d, TM_MIGRATE_DEST, NULL, NULL, dst, dfd);
	assert_int_equal(pthread_create(&d.thr, NULL, side_main, &d), 0);
	assert_int_equal(pthread_create(&s.thr, NULL, side_main, &s), 0);
	pthread_join(s.thr, NULL);
	pthread_join(d.thr, NULL);
	atomic_store(&w.stop, true);
	pthread_join(w.thr, NULL);
	if (w.rc)
		fail_msg("writer: %s", tm_error_msg(&w.err));
	if (s.rc || d.rc)
		fail_msg("source: %s | destination: %s", tm_error_msg(&s.err),
			 tm_error_msg(&d.err));
	print_message("migrated %u pages in %u iterations (%llu normal, %llu zero, "
		      "%llu tag-only sent), %lu writer ops\n",
		      NPAGES, s.st.iterations, (unsigned long long)s.st.pages_normal,
		      (unsigned long long)s.st.pages_zero,
		      (unsigned long long)s.st.pages_tag_only, atomic_load(&w.ops));
	assert_true(s.st.verified && d.st.verified);
	assert_memory_equal(s.st.digest, d.st.digest, 16);
	assert_true(s.st.iterations >= 2);
	assert_true(s.st.pages_zero > 0);
	assert_true(s.st.pages_tag_only > 0);
	/* The writer raced pre-copy: more pages went than the region holds. */
	assert_true(s.st.pages_normal + s.st.pages_zero + s.st.pages_tag_only > NPAGES);

	/* Independently of the protocol's own check. */
	assert_int_equal(tm_migrate_digest(&src, 1, 1, ds, NULL), 0);
	assert_int_equal(tm_migrate_digest(&dst, 1, 1, dd, NULL), 0);
	assert_memory_equal(ds, dd, 16);
	assert_same_pages(src, dst);
	assert_enforced(dst, &checked, &tagged);
	print_message("tag checks: %zu granules (%zu with non-zero tags)\n", checked, tagged);
	assert_true(tagged > checked / 4);

	tm_migration_free(s.m);
	tm_migration_free(d.m);
	for (unsigned i = 0; i < CHANNELS + 1; i++) {
		close(sp[i][0]);
		close(sp[i][1]);
	}
	tm_region_destroy(src);
	tm_region_destroy(dst);
}

/*
 * A destination that is not fresh: before the migration its workload set
 * tags with its own STG (and wrote data) on every page, so the region
 * never marked them tagged. Whatever arrives must replace them: a zero
 * page must end with zero tags, a tag-only page with exactly the source's
 * tags. The receiver once skipped zero tags and zero data on pages "never
 * tagged" and left the stale tags in place (the digest then differed).
 */
static void migrate_into_used_destination(void **state)
{
	int sp[CHANNELS + 1][2], sfd[CHANNELS + 1], dfd[CHANNELS + 1];
	tm_region *src, *dst;
	uint8_t stale[NT];
	side s, d;

	(void)state;
	mt_require();
	src = mte_region("ram");
	dst = mte_region("ram");
	fill_source(src);
	memset(stale, 0x93, NT);
	for (size_t pg = 0; pg < NPAGES; pg++) {
		uint8_t *a = tm_mte_untag(tm_region_ptr(dst, pg * PS));

		assert_int_equal(tm_region_write(dst, pg * PS, &pg, sizeof(pg), NULL), 0);
		assert_int_equal(tm_mte_set_tags(a, PS, stale), 0);
		assert_false(tm_region_page_tagged(dst, pg));
	}
	for (unsigned i = 0; i < CHANNELS + 1; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp[i]), 0);
		sfd[i] = sp[i][0];
		dfd[CHANNELS - i] = sp[i][1];
	}
	new_side(&s, TM_MIGRATE_SOURCE, NULL, NULL, src, sfd);
	new_side(&d, TM_MIGRATE_DEST, NULL, NULL, dst, dfd);
	assert_int_equal(pthread_create(&d.thr, NULL, side_main, &d), 0);
	assert_int_equal(pthread_create(&s.thr, NULL, side_main, &s), 0);
	pthread_join(s.thr, NULL);
	pthread_join(d.thr, NULL);
	if (s.rc || d.rc)
		fail_msg("source: %s | destination: %s", tm_error_msg(&s.err),
			 tm_error_msg(&d.err));
	assert_true(s.st.pages_zero > 0 && s.st.pages_tag_only > 0);
	assert_same_pages(src, dst);
	tm_migration_free(s.m);
	tm_migration_free(d.m);
	for (unsigned i = 0; i < CHANNELS + 1; i++) {
		close(sp[i][0]);
		close(sp[i][1]);
	}
	tm_region_destroy(src);
	tm_region_destroy(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(migrate_with_writer),
		cmocka_unit_test(migrate_into_used_destination),
	};

	return cmocka_run_group_tests(tests, mt_group_setup, NULL);
}
