/*
 * test_abi.c - config structs that grow (tagmem/api.h, "Structs that
 * grow"; docs/ABI.md): the copy rule itself, checked on a two-version
 * struct with the caller's struct ending at a PROT_NONE page (so reading
 * one byte past struct_size faults), and every public entry point that
 * takes such a struct applying it: a bad size is refused naming the
 * struct, a newer caller's unknown non-zero byte is -E2BIG, a newer
 * caller's zero tail and the 0.1 layout (struct_size 0) are accepted, and
 * the default fillers write no more than the caller's size.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/abi.h"
#include "tagmem/tagmem.h"

/* ---- the rule on a struct with two versions ----------------------- */

/* What an older caller has, what this "library" has, what a newer caller has. */
struct demo_v1 { uint32_t struct_size; uint32_t a; uint64_t b; };
struct demo_v2 { uint32_t struct_size; uint32_t a; uint64_t b; uint64_t c; };
struct demo_v3 { uint32_t struct_size; uint32_t a; uint64_t b; uint64_t c; uint64_t d; };
#define DEMO_MIN TM_ABI_END(struct demo_v1, b)

/* n bytes that end exactly where a PROT_NONE page begins. */
static void *edge_alloc(size_t n, void **map)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(m != MAP_FAILED);
	assert_int_equal(mprotect(m + pg, pg, PROT_NONE), 0);
	*map = m;
	return m + pg - n;
}

static void edge_free(void *map)
{
	munmap(map, 2 * (size_t)sysconf(_SC_PAGESIZE));
}

static int demo_in(struct demo_v2 *dst, const void *src, tm_error *err)
{
	memset(dst, 0xAA, sizeof(*dst));
	return tm_abi_copy_in(dst, sizeof(*dst), src, DEMO_MIN, "demo", err);
}

static void older_caller_reads_as_zero(void **state)
{
	void *map;
	struct demo_v1 *old = edge_alloc(sizeof(*old), &map);
	struct demo_v2 got;
	tm_error err;

	(void)state;
	*old = (struct demo_v1){ .struct_size = sizeof(*old), .a = 7, .b = 9 };
	assert_int_equal(demo_in(&got, old, &err), 0);
	assert_int_equal(got.a, 7);
	assert_int_equal(got.b, 9);
	assert_int_equal(got.c, 0);          /* the field v1 did not have */
	assert_int_equal(got.struct_size, sizeof(got));
	/* struct_size 0: the first layout, the same bytes. */
	old->struct_size = 0;
	assert_int_equal(demo_in(&got, old, &err), 0);
	assert_int_equal(got.b, 9);
	assert_int_equal(got.c, 0);
	edge_free(map);
}

static void newer_caller_zero_tail_accepted(void **state)
{
	void *map;
	struct demo_v3 *nw = edge_alloc(sizeof(*nw), &map);
	struct demo_v2 got;
	tm_error err;

	(void)state;
	*nw = (struct demo_v3){ .struct_size = sizeof(*nw), .a = 1, .b = 2, .c = 3 };
	assert_int_equal(demo_in(&got, nw, &err), 0);
	assert_int_equal(got.c, 3);
	edge_free(map);
}

static void newer_caller_unknown_field_refused(void **state)
{
	struct demo_v3 nw = { .struct_size = sizeof(nw), .d = 0x500 };
	struct demo_v2 got;
	tm_error err;

	(void)state;
	tm_error_clear(&err);
	assert_int_equal(demo_in(&got, &nw, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "demo.struct_size is 32"));
	assert_non_null(strstr(err.msg, "byte 25 is 0x05")); /* little-endian 0x500 */
	assert_non_null(strstr(err.msg, "knows 24 bytes"));
}

static void bad_sizes_refused(void **state)
{
	struct demo_v3 s = { 0 };
	struct demo_v2 got;
	tm_error err;

	(void)state;
	s.struct_size = DEMO_MIN - 1;
	assert_int_equal(demo_in(&got, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "demo.struct_size is 15, smaller"));
	s.struct_size = TM_STRUCT_SIZE_MAX + 1;
	assert_int_equal(demo_in(&got, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not initialised"));
	assert_int_equal(demo_in(&got, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "demo: NULL"));
}

static void copy_out_writes_caller_size_only(void **state)
{
	struct demo_v2 full = { .struct_size = sizeof(full), .a = 1, .b = 2, .c = 3 };
	void *map;
	struct demo_v1 *old = edge_alloc(sizeof(*old), &map);
	struct demo_v3 nw;
	tm_error err;

	(void)state;
	assert_int_equal(tm_abi_copy_out(old, sizeof(*old), &full, sizeof(full),
					 DEMO_MIN, "demo", &err), 0);
	assert_int_equal(old->struct_size, sizeof(*old));
	assert_int_equal(old->b, 2);
	memset(&nw, 0xAA, sizeof(nw));
	assert_int_equal(tm_abi_copy_out(&nw, sizeof(nw), &full, sizeof(full),
					 DEMO_MIN, "demo", &err), 0);
	assert_int_equal(nw.struct_size, sizeof(nw));
	assert_int_equal(nw.c, 3);
	assert_int_equal(nw.d, 0);           /* beyond the library's: zeroed */
	memset(&nw, 0xAA, sizeof(nw));
	assert_int_equal(tm_abi_copy_out(&nw, 8, &full, sizeof(full), DEMO_MIN,
					 "demo", &err), -EINVAL);
	assert_int_equal(nw.struct_size, 0xAAAAAAAAu); /* nothing written */
	edge_free(map);
}

/* ---- every public entry point ------------------------------------- */

static char dir[] = "/tmp/tagmem-abi-XXXXXX";

static int setup_dir(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[64];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void expect_refused(int rc, int code, const tm_error *err, const char *type)
{
	char want[64];

	snprintf(want, sizeof(want), "%s.struct_size", type);
	assert_int_equal(rc, code);
	if (!strstr(err->msg, want))
		fail_msg("'%s' does not name %s", err->msg, want);
}

static tm_region_config region_cfg(void)
{
	tm_region_config c = { .struct_size = sizeof(c), .name = "abi",
			       .size = 4 * 4096, .backend = TM_BACKEND_SOFT };

	assert_int_equal(tm_geom_mte(&c.geom, 4096, NULL), 0);
	return c;
}

static void region_config(void **state)
{
	tm_region_config c = region_cfg();
	/* A newer caller's struct: ours plus 16 bytes we do not know. */
	union { tm_region_config c; uint8_t b[sizeof(tm_region_config) + 16]; } nw;
	tm_region *r = NULL;
	tm_error err;

	(void)state;
	c.struct_size = 3;
	expect_refused(tm_region_create(&c, &r, &err), -EINVAL, &err, "tm_region_config");
	assert_null(r);
	c.struct_size = 0;                      /* the 0.1 layout */
	assert_int_equal(tm_region_create(&c, &r, &err), 0);
	tm_region_destroy(r);
	memset(&nw, 0, sizeof(nw));
	nw.c = region_cfg();
	nw.c.struct_size = sizeof(nw);
	assert_int_equal(tm_region_create(&nw.c, &r, &err), 0);
	assert_int_equal(tm_region_size(r), 4 * 4096);
	tm_region_destroy(r);
	nw.b[sizeof(tm_region_config) + 5] = 1;
	r = NULL;
	expect_refused(tm_region_create(&nw.c, &r, &err), -E2BIG, &err, "tm_region_config");
	assert_null(r);
}

static void migrate_config_and_hooks(void **state)
{
	tm_migrate_config c;
	tm_migrate_hooks h = { .struct_size = sizeof(h) };
	tm_migration *m = NULL;
	union { tm_migrate_config c; uint8_t b[sizeof(tm_migrate_config) + 8]; } nw;
	tm_error err;

	(void)state;
	tm_migrate_config_default(&c);
	assert_int_equal(c.struct_size, sizeof(c));
	assert_int_equal(c.channels, 2);
	c.struct_size = 1;
	expect_refused(tm_migration_new(&m, TM_MIGRATE_SOURCE, &c, NULL, &err),
		       -EINVAL, &err, "tm_migrate_config");
	tm_migrate_config_default(&c);
	h.struct_size = 2;
	expect_refused(tm_migration_new(&m, TM_MIGRATE_SOURCE, &c, &h, &err),
		       -EINVAL, &err, "tm_migrate_hooks");
	h.struct_size = 0;
	assert_int_equal(tm_migration_new(&m, TM_MIGRATE_SOURCE, &c, &h, &err), 0);
	tm_migration_free(m);
	/* The filler honours a newer caller's size: defaults, then zeros. */
	memset(&nw, 0xAA, sizeof(nw));
	assert_int_equal(tm_migrate_config_default_sized(&nw.c, sizeof(nw)), 0);
	assert_int_equal(nw.c.struct_size, sizeof(nw));
	assert_int_equal(nw.c.timeout_ms, 30000);
	for (size_t i = sizeof(tm_migrate_config); i < sizeof(nw); i++)
		assert_int_equal(nw.b[i], 0);
	assert_int_equal(tm_migrate_config_default_sized(&nw.c, 4), -EINVAL);
}

static void snapshot_opts(void **state)
{
	tm_region_config rc = region_cfg();
	tm_region *r;
	tm_snap_opts o;
	tm_snapshot *s = NULL;
	char path[96];
	tm_error err;

	(void)state;
	snprintf(path, sizeof(path), "%s/abi.snap", dir);
	assert_int_equal(tm_region_create(&rc, &r, &err), 0);
	tm_snap_opts_init(&o);
	assert_int_equal(o.struct_size, sizeof(o));
	o.struct_size = 5;
	expect_refused(tm_snapshot_save(path, &r, 1, &o, NULL, &err), -EINVAL, &err,
		       "tm_snap_opts");
	assert_int_equal(access(path, F_OK), -1);    /* nothing written */
	tm_snap_opts_init(&o);
	assert_int_equal(tm_snapshot_save(path, &r, 1, &o, NULL, &err), 0);
	o.struct_size = 5;
	expect_refused(tm_snapshot_open(path, &o, &s, &err), -EINVAL, &err, "tm_snap_opts");
	assert_null(s);
	assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), 0);
	expect_refused(tm_snapshot_verify(s, &o, NULL, &err), -EINVAL, &err, "tm_snap_opts");
	expect_refused(tm_snapshot_restore(s, &r, 1, &o, NULL, &err), -EINVAL, &err,
		       "tm_snap_opts");
	o.struct_size = 0;
	assert_int_equal(tm_snapshot_verify(s, &o, NULL, &err), 0);
	tm_snapshot_close(s);
	tm_region_destroy(r);
	assert_int_equal(tm_snap_opts_init_sized(&o, 2), -EINVAL);
}

static void core_opts(void **state)
{
	tm_region_config rc = region_cfg();
	tm_core_region cr;
	tm_core_opts o = { .struct_size = 7 };
	char path[96];
	tm_error err;

	(void)state;
	snprintf(path, sizeof(path), "%s/abi.core", dir);
	assert_int_equal(tm_region_create(&rc, &cr.region, &err), 0);
	cr.vaddr = 0x400000;
	cr.prot = 0;
	expect_refused(tm_core_write(path, &cr, 1, &o, &err), -EINVAL, &err, "tm_core_opts");
	o.struct_size = sizeof(o);
	o.pid = 42;
	assert_int_equal(tm_core_write(path, &cr, 1, &o, &err), 0);
	tm_region_destroy(cr.region);
}

static void swap_configs(void **state)
{
	tm_region_config rc = region_cfg();
	tm_swapfile_config sc = { .struct_size = 9, .path = dir, .size = 16 * 4096,
				  .page_size = 4096 };
	tm_pager_config pc = { .struct_size = 9 };
	tm_swapfile *sf = NULL;
	tm_pager *p = NULL;
	tm_region *r;
	tm_error err;

	(void)state;
	expect_refused(tm_swapfile_open(&sc, &sf, &err), -EINVAL, &err, "tm_swapfile_config");
	assert_null(sf);
	sc.struct_size = sizeof(sc);
	assert_int_equal(tm_swapfile_open(&sc, &sf, &err), 0);
	assert_int_equal(tm_region_create(&rc, &r, &err), 0);
	pc.region = r;
	pc.swap = sf;
	expect_refused(tm_pager_create(&pc, &p, &err), -EINVAL, &err, "tm_pager_config");
	pc.struct_size = 0;
	assert_int_equal(tm_pager_create(&pc, &p, &err), 0);
	tm_pager_destroy(p);
	tm_region_destroy(r);
	tm_swapfile_close(sf);
}

static void storage_config(void **state)
{
	tm_ss_config c;
	tm_ss_geometry g;
	tm_ss_sim *s = NULL;
	tm_ss_workload w;
	tm_ss_result res;
	tm_error err;

	(void)state;
	tm_ss_config_default(&c);
	assert_int_equal(c.struct_size, sizeof(c));
	c.mem_bytes = 64ull << 20;
	c.struct_size = 11;
	expect_refused(tm_ss_create(&c, &s, &err), -EINVAL, &err, "tm_ss_config");
	assert_null(s);
	expect_refused(tm_ss_config_geometry(&c, &g, &err), -EINVAL, &err, "tm_ss_config");
	assert_int_equal(tm_ss_workload_preset("synthetic", &w, &err), 0);
	w.events = 1000;
	expect_refused(tm_ss_run(&c, &w, NULL, &res, &err), -EINVAL, &err, "tm_ss_config");
	c.struct_size = sizeof(c);
	assert_int_equal(tm_ss_create(&c, &s, &err), 0);
	tm_ss_destroy(s);
	assert_int_equal(tm_ss_config_default_sized(&c, 3), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest rule[] = {
		cmocka_unit_test(older_caller_reads_as_zero),
		cmocka_unit_test(newer_caller_zero_tail_accepted),
		cmocka_unit_test(newer_caller_unknown_field_refused),
		cmocka_unit_test(bad_sizes_refused),
		cmocka_unit_test(copy_out_writes_caller_size_only),
	};
	const struct CMUnitTest entry[] = {
		cmocka_unit_test(region_config),
		cmocka_unit_test(migrate_config_and_hooks),
		cmocka_unit_test(snapshot_opts),
		cmocka_unit_test(core_opts),
		cmocka_unit_test(swap_configs),
		cmocka_unit_test(storage_config),
	};
	int rc = cmocka_run_group_tests_name("struct_size rule", rule, NULL, NULL);

	return rc | cmocka_run_group_tests_name("entry points", entry, setup_dir, remove_dir);
}
