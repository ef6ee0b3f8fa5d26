/*
 * swap_test.h - fixtures shared by the swap tests: a real swap file in
 * /tmp, a soft region filled with reproducible data and corpus tags (some
 * pages left untagged), and a check that every page reads back exactly
 * (data, tags, tagged flag) or as zero where it was discarded.
 * Include after <cmocka.h>.
 */
#ifndef TM_TESTS_SWAP_TEST_H
#define TM_TESTS_SWAP_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tagmem/region.h"
#include "tagmem/swap.h"
#include "tagmem/tags.h"

#define ST_PS 4096u
#define ST_PK 128u

/* What the test wrote into the region, to compare against. */
struct st_model {
	size_t npages;
	uint8_t *data;      /* npages * ST_PS */
	uint8_t *tags;      /* npages * ST_PK (zero for untagged pages) */
	bool *tagged;
	bool *gone;         /* discarded: must read zero, untagged */
};

static inline void st_swapfile_path(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/tmp/tagmem-test-swap-%s-%d", tag, (int)getpid());
}

static inline tm_swapfile *st_swapfile(const char *tag, uint64_t size,
				       unsigned flags)
{
	char path[128];
	tm_swapfile_config c = { 0 };
	tm_swapfile *sf = NULL;
	tm_error err;

	st_swapfile_path(path, sizeof(path), tag);
	c.path = path;
	c.size = size;
	c.page_size = ST_PS;
	c.flags = flags;
	if (tm_swapfile_open(&c, &sf, &err) != 0)
		fail_msg("swap file: %s", err.msg);
	return sf;
}

static inline tm_region *st_region(const char *name, size_t npages,
				   bool with_tags)
{
	tm_region_config c = { 0 };
	tm_region *r = NULL;
	tm_error err;

	c.name = name;
	c.size = npages * ST_PS;
	c.backend = TM_BACKEND_SOFT;
	if (with_tags)
		assert_int_equal(tm_geom_mte(&c.geom, ST_PS, &err), 0);
	else
		assert_int_equal(tm_geom_init(&c.geom, TM_META_NONE, ST_PS, 0, 0, &err), 0);
	if (tm_region_create(&c, &r, &err) != 0)
		fail_msg("region: %s", err.msg);
	return r;
}

static inline void st_model_init(struct st_model *m, size_t npages)
{
	m->npages = npages;
	m->data = malloc(npages * ST_PS);
	m->tags = calloc(npages, ST_PK);
	m->tagged = calloc(npages, sizeof(bool));
	m->gone = calloc(npages, sizeof(bool));
	assert_non_null(m->data);
	assert_non_null(m->tags);
	assert_non_null(m->tagged);
	assert_non_null(m->gone);
}

static inline void st_model_free(struct st_model *m)
{
	free(m->data);
	free(m->tags);
	free(m->tagged);
	free(m->gone);
}

/* Tear down what a test set up, innermost first (the pager before its
 * region, both before the swap file); m may be NULL. */
static inline void st_close(tm_pager *p, tm_region *r, tm_swapfile *sf,
			    struct st_model *m)
{
	tm_pager_destroy(p);
	tm_region_destroy(r);
	tm_swapfile_close(sf);
	if (m)
		st_model_free(m);
}

/*
 * Fill every page with seeded data and mix-corpus tags; one page in
 * untagged_every is left untagged (0: all tagged). Untagged regions get
 * data only.
 */
static inline void st_fill(tm_region *r, struct st_model *m, uint64_t seed,
			   unsigned untagged_every)
{
	const tm_geom *g = tm_region_geom(r);
	bool has_tags = g->kind != TM_META_NONE;
	tm_rng rng;
	tm_error err;

	tm_rng_seed(&rng, seed);
	if (has_tags)
		tm_corpus_fill(TM_CORPUS_MIX, g, seed, m->tags, m->npages);
	for (size_t pg = 0; pg < m->npages; pg++) {
		uint64_t *w = (uint64_t *)(m->data + pg * ST_PS);

		for (size_t i = 0; i < ST_PS / 8; i++)
			w[i] = tm_rng_next(&rng) | 1;  /* never a zero page */
		m->tagged[pg] = has_tags && !(untagged_every && pg % untagged_every == 1);
		if (!m->tagged[pg])
			memset(m->tags + pg * ST_PK, 0, ST_PK);
		m->gone[pg] = false;
		if (tm_region_write_page(r, pg, m->data + pg * ST_PS,
					 m->tagged[pg] ? m->tags + pg * ST_PK : NULL, &err))
			fail_msg("write page %zu: %s", pg, err.msg);
	}
}

/* Compare page pg through the API (which swaps it in through lazy
 * placement if it is missing). */
static inline void st_check_page(tm_region *r, const struct st_model *m,
				 size_t pg)
{
	uint8_t data[ST_PS], tags[ST_PK];
	static const uint8_t zero_page[ST_PS];
	tm_error err;

	if (tm_region_read_page(r, pg, data, tags, &err))
		fail_msg("read page %zu: %s", pg, err.msg);
	if (m->gone[pg]) {
		if (memcmp(data, zero_page, ST_PS) != 0)
			fail_msg("page %zu was discarded but its data is not zero", pg);
		if (tm_region_page_tagged(r, pg))
			fail_msg("page %zu was discarded but is tagged", pg);
		return;
	}
	if (memcmp(data, m->data + pg * ST_PS, ST_PS) != 0)
		fail_msg("page %zu: data differs", pg);
	if (tm_region_geom(r)->kind == TM_META_NONE)
		return;
	if (memcmp(tags, m->tags + pg * ST_PK, ST_PK) != 0)
		fail_msg("page %zu: tags differ", pg);
	if (tm_region_page_tagged(r, pg) != m->tagged[pg])
		fail_msg("page %zu: tagged is %d, expected %d", pg,
			 tm_region_page_tagged(r, pg), m->tagged[pg]);
}

static inline void st_check_all(tm_region *r, const struct st_model *m)
{
	for (size_t pg = 0; pg < m->npages; pg++)
		st_check_page(r, m, pg);
}

static inline size_t st_count_tagged(const struct st_model *m, size_t pg,
				     size_t n)
{
	size_t c = 0;

	for (size_t i = pg; i < pg + n; i++)
		c += m->tagged[i] && !m->gone[i];
	return c;
}

static inline tm_pager *st_pager(tm_region *r, tm_swapfile *sf, bool lazy,
				 enum tm_swapin_mode mode)
{
	tm_pager_config c = { 0 };
	tm_pager *p = NULL;
	tm_error err;

	c.region = r;
	c.swap = sf;
	c.lazy = lazy;
	c.fault_mode = mode;
	if (tm_pager_create(&c, &p, &err) != 0)
		fail_msg("pager: %s", err.msg);
	return p;
}

#endif
