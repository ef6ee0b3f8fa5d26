/*
 * test_migrate_live.c - live migrations over real loopback TCP sockets with
 * writer threads changing data and tags while pages move: several sizes,
 * page sizes, channel counts and both compressions, each verified bit for
 * bit (the protocol's 128-bit digest, and independently here by comparing
 * every page's data and tags).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/migrate/mig_test.h"

struct live_case {
	size_t size;
	uint32_t page_size;
	unsigned channels;
	enum tm_compress compress;
	uint64_t dirty_rate;
	bool two_regions;   /* plus an untagged region */
	bool unpacked;
};

/* Every page's data and tags equal on both sides. */
static void assert_same(tm_region *a, tm_region *b)
{
	const tm_geom *g = tm_region_geom(a);
	size_t ps = g->page_size, tb = tm_geom_packed_bytes(g);
	uint8_t *da = malloc(ps), *db = malloc(ps), ta[2048], tb2[2048];

	for (size_t pg = 0; pg < tm_region_npages(a); pg++) {
		assert_int_equal(tm_region_read_page(a, pg, da, tb ? ta : NULL, NULL), 0);
		assert_int_equal(tm_region_read_page(b, pg, db, tb ? tb2 : NULL, NULL), 0);
		if (memcmp(da, db, ps) || (tb && memcmp(ta, tb2, tb)))
			fail_msg("region '%s' page %zu differs after migration",
				 tm_region_name(a), pg);
	}
	free(da);
	free(db);
}

static void run_case(const struct live_case *c)
{
	mt_region s[2] = { 0 }, d[2] = { 0 };
	tm_region *sr[2], *dr[2];
	size_t n = c->two_regions ? 2 : 1;
	tm_migrate_config cfg;
	tm_workload_config wc = { .dirty_rate = c->dirty_rate, .writers = 2,
				  .seed = c->size + c->channels,
				  .ptr_writes = tm_workload_ptr_tracking() };
	tm_migrate_hooks hooks = { 0 };
	tm_workload *w = NULL;
	mt_dest dest;
	mt_source src;

	assert_int_equal(mt_region_new(&s[0], "ram", c->size, TM_META_MTE, c->page_size), 0);
	assert_int_equal(mt_region_new(&d[0], "ram", c->size, TM_META_MTE, c->page_size), 0);
	if (n == 2) {
		assert_int_equal(mt_region_new(&s[1], "vram", 1 << 20, TM_META_NONE, 4096), 0);
		assert_int_equal(mt_region_new(&d[1], "vram", 1 << 20, TM_META_NONE, 4096), 0);
	}
	for (size_t i = 0; i < n; i++) {
		sr[i] = s[i].r;
		dr[n - 1 - i] = d[i].r;   /* the destination lists them in another order */
		assert_int_equal(tm_workload_fill(s[i].r, 7 + i, 25, 10, NULL), 0);
	}
	tm_migrate_config_default(&cfg);
	cfg.channels = c->channels;
	cfg.compress = c->compress;
	cfg.tags_unpacked = c->unpacked;
	cfg.downtime_ms = 50;
	cfg.on_max_iterations = TM_MAXITER_FORCE;
	assert_int_equal(tm_workload_start(&w, sr, n, &wc, NULL), 0);
	tm_workload_hooks(w, &hooks);

	assert_int_equal(mt_dest_start(&dest, dr, n, NULL), 0);
	uint64_t ops0 = tm_workload_ops(w);
	mt_source_run(&src, dest.addr, sr, n, &cfg, &hooks);
	uint64_t ops_during = tm_workload_ops(w) - ops0;
	mt_dest_join(&dest);
	if (src.rc || dest.rc)
		fail_msg("source: %s | destination: %s", tm_error_msg(&src.err),
			 tm_error_msg(&dest.err));
	/* The source stays paused after a successful handover. */
	assert_true(src.st.verified);
	assert_true(dest.st.verified);
	assert_memory_equal(src.st.digest, dest.st.digest, 16);
	assert_true(src.st.iterations >= 2);
	assert_true(src.st.pages_normal > 0);
	assert_true(src.st.pages_zero > 0);
	assert_true(src.st.pages_tag_only > 0);
	assert_int_equal(src.st.pages_normal, dest.st.pages_normal);
	assert_int_equal(src.st.pages_zero, dest.st.pages_zero);
	assert_int_equal(src.st.pages_tag_only, dest.st.pages_tag_only);
	for (size_t i = 0; i < n; i++)
		assert_same(s[i].r, d[i].r);
	assert_int_equal(tm_workload_stop(w, NULL), 0);
	/* Pages written during the migration were sent again - when the
	 * writers got to run at all while it lasted (on a loaded machine a
	 * short migration can be over before they are scheduled). */
	if (c->dirty_rate && ops_during >= 64)
		assert_true(src.st.pages_normal + src.st.pages_zero + src.st.pages_tag_only >
			    c->size / c->page_size);
	for (size_t i = 0; i < n; i++) {
		mt_region_free(&s[i]);
		mt_region_free(&d[i]);
	}
}

static void idle_one_channel(void **state)
{
	(void)state;
	run_case(&(struct live_case){ 4 << 20, 4096, 1, TM_COMPRESS_NONE, 0, false, false });
}

static void writers_two_channels(void **state)
{
	(void)state;
	run_case(&(struct live_case){ 16 << 20, 4096, 2, TM_COMPRESS_NONE, 32 << 20, false, false });
}

static void writers_zstd_three_channels(void **state)
{
	(void)state;
	run_case(&(struct live_case){ 12 << 20, 4096, 3, TM_COMPRESS_ZSTD, 16 << 20, true, false });
}

static void writers_odd_size(void **state)
{
	(void)state;
	/* Not a multiple of the 128-page packet: the last chunk is partial. */
	run_case(&(struct live_case){ (8 << 20) + 13 * 4096, 4096, 2, TM_COMPRESS_NONE,
				      8 << 20, true, false });
}

static void writers_16k_pages_zstd(void **state)
{
	(void)state;
	run_case(&(struct live_case){ 16 << 20, 16384, 4, TM_COMPRESS_ZSTD, 16 << 20, false, false });
}

static void writers_64k_pages(void **state)
{
	(void)state;
	run_case(&(struct live_case){ 32 << 20, 65536, 2, TM_COMPRESS_NONE, 16 << 20, false, false });
}

static void unpacked_tags_on_wire(void **state)
{
	(void)state;
	run_case(&(struct live_case){ 8 << 20, 4096, 2, TM_COMPRESS_NONE, 8 << 20, false, true });
}

/* A workload that dirties as fast as the link sends: without help it never
 * converges; --max-iterations then fails or forces; auto-converge throttles
 * it until it does. */
static int converge_case(bool auto_conv, enum tm_on_max_iter on_max,
			 tm_migrate_stats *st, tm_error *err, unsigned *throttle_seen)
{
	mt_region s = { 0 }, d = { 0 };
	tm_migrate_config cfg;
	tm_workload_config wc = { .dirty_rate = 48 << 20, .writers = 2, .seed = 77,
				  .ptr_writes = tm_workload_ptr_tracking() };
	tm_migrate_hooks hooks = { 0 };
	tm_workload *w;
	mt_dest dest;
	mt_source src;

	assert_int_equal(mt_region_new(&s, "ram", 4 << 20, TM_META_MTE, 4096), 0);
	assert_int_equal(mt_region_new(&d, "ram", 4 << 20, TM_META_MTE, 4096), 0);
	assert_int_equal(tm_workload_fill(s.r, 1, 25, 10, NULL), 0);
	tm_migrate_config_default(&cfg);
	cfg.downtime_ms = auto_conv ? 20 : 1;
	cfg.max_bandwidth = 24 << 20;
	cfg.auto_converge = auto_conv;
	cfg.max_iterations = auto_conv ? 40 : 3;
	cfg.on_max_iterations = on_max;
	assert_int_equal(tm_workload_start(&w, &s.r, 1, &wc, NULL), 0);
	tm_workload_hooks(w, &hooks);
	assert_int_equal(mt_dest_start(&dest, &d.r, 1, NULL), 0);
	mt_source_run(&src, dest.addr, &s.r, 1, &cfg, &hooks);
	mt_dest_join(&dest);
	*st = src.st;
	*err = src.err;
	*throttle_seen = src.st.throttle_pct;
	if (src.rc == 0)
		assert_true(dest.rc == 0 && dest.st.verified);
	else
		assert_true(dest.rc != 0 && mt_all_zero(d.r));
	/* After a failure the workload must be running again. */
	if (src.rc) {
		uint64_t ops = tm_workload_ops(w);
		usleep(20000);
		assert_true(tm_workload_ops(w) > ops);
	}
	assert_int_equal(tm_workload_stop(w, NULL), 0);
	mt_region_free(&s);
	mt_region_free(&d);
	return src.rc;
}

static void max_iterations_fail(void **state)
{
	tm_migrate_stats st;
	tm_error err;
	unsigned th;

	(void)state;
	assert_int_equal(converge_case(false, TM_MAXITER_FAIL, &st, &err, &th), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "did not converge after 3 iterations"));
}

static void max_iterations_force(void **state)
{
	tm_migrate_stats st;
	tm_error err;
	unsigned th;

	(void)state;
	if (converge_case(false, TM_MAXITER_FORCE, &st, &err, &th))
		fail_msg("forced migration failed: %s", err.msg);
	assert_true(st.verified);
	assert_int_equal(st.iterations, 4);   /* 3, then the forced final pass */
}

static void auto_converge_throttles(void **state)
{
	tm_migrate_stats st;
	tm_error err;
	unsigned th;

	(void)state;
	if (converge_case(true, TM_MAXITER_FAIL, &st, &err, &th))
		fail_msg("auto-converge did not converge: %s", err.msg);
	assert_true(st.verified);
	assert_true(th >= 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(idle_one_channel),
		cmocka_unit_test(writers_two_channels),
		cmocka_unit_test(writers_zstd_three_channels),
		cmocka_unit_test(writers_odd_size),
		cmocka_unit_test(writers_16k_pages_zstd),
		cmocka_unit_test(writers_64k_pages),
		cmocka_unit_test(unpacked_tags_on_wire),
		cmocka_unit_test(max_iterations_fail),
		cmocka_unit_test(max_iterations_force),
		cmocka_unit_test(auto_converge_throttles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
