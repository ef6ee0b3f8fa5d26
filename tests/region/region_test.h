/*
 * region_test.h - shared fixture for the region tests: every backend test is
 * written once and run against each backend -- the built-in soft and mte,
 * and two caller-registered ones written in the tests against the public
 * backend interface (test_backend.h: "file", the shape of a ptrace backend,
 * and "mem", the shape of a kvm backend) -- so all are held to the same
 * behaviour. Where a backend cannot exist (mte on x86, or on an arm64 CPU
 * without MTE) the test is skipped with the reason printed.
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
#include "tests/test_skip.h"

#include "common/util.h"
#include "region/region_internal.h"
#include "tagmem/region.h"
#include "test_backend.h"

/* The backends of the matrix. */
enum rt_kind { RT_SOFT, RT_MTE, RT_FILE, RT_MEM };

typedef struct rt_fixture {
	enum rt_kind kind;
	enum tm_backend backend;    /* what tm_region_backend says */
	uint32_t page_size;
	size_t npages;
	tm_region *r;
	tb_ctx *tb;                 /* the caller backend's state, or NULL */
	char why[TM_ERROR_MSG_MAX]; /* why r is NULL (skip reason) */
} rt_fixture;

static inline const char *rt_kind_name(enum rt_kind k)
{
	static const char *const names[] = { "soft", "mte", "test-file",
					     "test-mem" };
	return names[k];
}

static inline tm_geom rt_geom_mte(uint32_t page_size)
{
	tm_geom g = { .kind = TM_META_MTE, .version = TM_MTE_VERSION,
		      .page_size = page_size, .granule = TM_MTE_GRANULE,
		      .bits = TM_MTE_TAG_BITS };
	return g;
}

/* Create f's region (addr: caller memory, built-in backends only). */
static inline int rt_create(rt_fixture *f, const char *name, void *addr,
			    tm_error *err)
{
	tm_region_config cfg = {
		.name = name, .size = f->npages * f->page_size,
		.geom = rt_geom_mte(f->page_size), .backend = f->backend,
		.addr = addr,
	};

	f->tb = NULL;
	if (f->kind == RT_FILE || f->kind == RT_MEM)
		return tb_region(f->kind == RT_FILE ? TB_FILE : TB_MEM, name,
				 cfg.size, f->page_size, &f->r, &f->tb, err);
	return tm_region_create(&cfg, &f->r, err);
}

static inline void rt_destroy(rt_fixture *f)
{
	if (f->tb)
		tb_region_destroy(f->r, f->tb);
	else
		tm_region_destroy(f->r);
	f->r = NULL;
	f->tb = NULL;
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

	rt_destroy(f);
	return 0;
}

/* First line of every parameterized test: the region, or skip. */
#define RT_REGION(state, f, r)                                              \
	rt_fixture *f = *(state);                                           \
	if (!f->r) {                                                        \
		tm_test_skip(rt_kind_name(f->kind), "%s backend: %s",      \
			     rt_kind_name(f->kind), f->why);                \
	}                                                                   \
	tm_region *r = f->r

/* Run each test once per backend; names say which ("soft/test_x"). */
#define RT_TEST(prefix, fn, fx) \
	{ prefix "/" #fn, fn, rt_setup, rt_teardown, fx }
#define RT_ALL(fn) RT_TEST("soft", fn, &rt_soft), RT_TEST("mte", fn, &rt_mte), \
	RT_TEST("test-file", fn, &rt_file), RT_TEST("test-mem", fn, &rt_mem)
/* The backends whose memory is mapped in this process (not "file"). */
#define RT_MAPPED(fn) RT_TEST("soft", fn, &rt_soft), RT_TEST("mte", fn, &rt_mte), \
	RT_TEST("test-mem", fn, &rt_mem)

/* The fixtures a test file declares with RT_FIXTURES(page_size, npages). */
#define RT_FIXTURES(ps, np)                                                 \
	static rt_fixture rt_soft = { .kind = RT_SOFT,                      \
				      .backend = TM_BACKEND_SOFT,          \
				      .page_size = (ps), .npages = (np) }; \
	static rt_fixture rt_mte = { .kind = RT_MTE,                        \
				     .backend = TM_BACKEND_MTE,            \
				     .page_size = (ps), .npages = (np) };  \
	static rt_fixture rt_file = { .kind = RT_FILE,                      \
				      .backend = TM_BACKEND_OTHER,         \
				      .page_size = (ps), .npages = (np) }; \
	static rt_fixture rt_mem = { .kind = RT_MEM,                        \
				     .backend = TM_BACKEND_OTHER,          \
				     .page_size = (ps), .npages = (np) }

static inline void rt_fill(tm_rng *rng, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)tm_rng_next(rng);
}

#endif
