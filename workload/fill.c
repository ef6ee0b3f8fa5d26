/*
 * fill.c - the synthetic tagged page mix (see fill.h): zero, tag-only and
 * data pages written through the page API, deterministic for a seed. Demo
 * and test code, outside libtagmem (workload/meson.build).
 */
#include "workload/fill.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tagmem/tags.h"

#define FILL_BATCH 256u

void tm_workload_random_bytes(tm_rng *g, uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v = tm_rng_next(g);

		memcpy(p + i, &v, 8);
	}
}

/* Pointer- and counter-like words: what heaps look like; zstd likes it. */
static void structured_bytes(tm_rng *g, uint8_t *p, size_t n)
{
	uint64_t base = 0x00007f0000000000ull | (tm_rng_next(g) & 0xffffff000ull);

	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t r = tm_rng_next(g);
		uint64_t v = (r & 3) == 0 ? base + (r >> 52) * 16 :
			     (r & 3) == 1 ? (r >> 58) : 0;

		memcpy(p + i, &v, 8);
	}
}

static void ensure_tagged(uint8_t *tags, size_t tb, tm_rng *g)
{
	if (tb && tm_mem_is_zero(tags, tb))
		tags[tm_rng_below(g, tb)] = (uint8_t)(1 + tm_rng_below(g, 255));
}

int tm_workload_fill(tm_region *r, uint64_t seed, unsigned zero_pct,
		     unsigned tag_only_pct, tm_error *err)
{
	const tm_geom *g = tm_region_geom(r);
	size_t ps = g->page_size, tb = tm_geom_packed_bytes(g);
	size_t np = tm_region_npages(r);
	uint8_t *data = malloc(ps), *zero = calloc(1, ps);
	uint8_t *tags = malloc(FILL_BATCH * (tb ? tb : 1));
	tm_rng rng;
	int rc = 0;

	if (!data || !zero || !tags) {
		rc = tm_error_set(err, -ENOMEM, "workload: out of memory");
		goto out;
	}
	tm_rng_seed(&rng, seed);
	for (size_t base = 0; base < np && rc == 0; base += FILL_BATCH) {
		size_t n = np - base < FILL_BATCH ? np - base : FILL_BATCH;

		if (tb)
			tm_corpus_fill(TM_CORPUS_MIX, g, seed + base, tags, n);
		for (size_t i = 0; i < n && rc == 0; i++) {
			unsigned cls = (unsigned)tm_rng_below(&rng, 100);
			uint8_t *t = tb ? tags + i * tb : NULL;

			if (cls < zero_pct)
				continue;   /* a fresh region reads as zero already */
			if (cls < zero_pct + tag_only_pct && tb) {
				ensure_tagged(t, tb, &rng);
				rc = tm_region_write_page(r, base + i, zero, t, err);
				continue;
			}
			if (tm_rng_below(&rng, 2))
				tm_workload_random_bytes(&rng, data, ps);
			else
				structured_bytes(&rng, data, ps);
			rc = tm_region_write_page(r, base + i, data, t, err);
		}
	}
out:
	free(data);
	free(zero);
	free(tags);
	return rc;
}
