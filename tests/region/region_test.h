/*
 * region_test.h - shared fixture for the region tests: every backend test is
 * written once and run against each backend (soft, mte), so both are held
 * to the same behaviour. Where a backend cannot exist (mte on x86, or on an
 * arm64 CPU without MTE) the test is skipped with the reason printed.
 */
#ifndef TM_TEST_REGION_TEST_H
#define TM_TEST_REGION_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "region/region_internal.h"
#include "tagmem/region.h"

typedef struct rt_fixture {
	enum tm_backend backend;
	uint32_t page_size;
	size_t npages;
	tm_region *r;
	char why[TM_ERROR_MSG_MAX]; /* why r is NULL (skip reason) */
} rt_fixture;

static inline tm_geom rt_geom_mte(uint32_t page_size)
{
	tm_geom g = { .kind = TM_META_MTE, .version = TM_MTE_VERSION,
		      .page_size = page_size, .granule = TM_MTE_GRANULE,
		      .bits = TM_MTE_TAG_BITS };
	return g;
}

static inline int rt_create(rt_fixture *f, const char *name, void *addr,
			    tm_error *err)
{
	tm_region_config cfg = {
		.name = name, .size = f->npages * f->page_size,
		.geom = rt_geom_mte(f->page_size), .backend = f->backend,
		.addr = addr,
	};
	return tm_region_create(&cfg, &f->r, err);
}

/* Setup: create the fixture's region, or record why it cannot exist. */
static inline int rt_setup(void **state)
{
	rt_fixture *f = *state;
	tm_error err;

	tm_error_clear(&err);
	f->r = NULL;
	f->why[0] = '\0';
	if (rt_create(f, "test", NULL, &err) != 0) {
		if (err.code != -ENOTSUP)
			return -1;
		snprintf(f->why, sizeof(f->why), "%s", err.msg);
	}
	return 0;
}

static inline int rt_teardown(void **state)
{
	rt_fixture *f = *state;

	tm_region_destroy(f->r);
	f->r = NULL;
	return 0;
}

/* First line of every parameterized test: the region, or skip. */
#define RT_REGION(state, f, r)                                              \
	rt_fixture *f = *(state);                                           \
	if (!f->r) {                                                        \
		print_message("SKIP %s backend: %s\n",                     \
			      tm_backend_name(f->backend), f->why);         \
		skip();                                                     \
	}                                                                   \
	tm_region *r = f->r

/* Run each test once per backend; names say which ("soft/test_x"). */
#define RT_TEST(prefix, fn, fx) \
	{ prefix "/" #fn, fn, rt_setup, rt_teardown, fx }
#define RT_BOTH(fn) RT_TEST("soft", fn, &rt_soft), RT_TEST("mte", fn, &rt_mte)

/* The two fixtures a test file declares with RT_FIXTURES(page_size, npages). */
#define RT_FIXTURES(ps, np)                                                 \
	static rt_fixture rt_soft = { .backend = TM_BACKEND_SOFT,          \
				      .page_size = (ps), .npages = (np) }; \
	static rt_fixture rt_mte = { .backend = TM_BACKEND_MTE,            \
				     .page_size = (ps), .npages = (np) }

static inline void rt_fill(tm_rng *rng, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)tm_rng_next(rng);
}

#endif
