/*
 * fill.h - fill a region with the synthetic tagged page mix that the
 * migration, snapshot and swap tools, tests and benchmarks all start from:
 * zero pages, tag-only pages (zero data, non-zero tags) and data pages
 * (half random, half pointer-like) with tags from the corpus mix.
 *
 * Part of tm_workload_lib (workload/), the demo workload that tools/,
 * bench/ and tests/ link and libtagmem does not: it is not installed and
 * not exported. It needs only the region API, the tags corpus and the
 * common PRNG. The writer threads that keep dirtying a region during a
 * migration are in workload/writers.h (they are shaped like the migration
 * hooks).
 *
 * Thread safety: tm_workload_fill writes the region through the page API
 * and must not race with other writers of the same region.
 */
#ifndef TM_WORKLOAD_FILL_H
#define TM_WORKLOAD_FILL_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "tagmem/region.h"

/*
 * Fill a fresh (all-zero) region: zero_pct % zero pages, tag_only_pct %
 * tag-only pages (data zero, tags not), the rest data (half random, half
 * compressible) with tags from the corpus mix. Deterministic for the seed:
 * the same seed, geometry and size give the same bytes and tags.
 */
int tm_workload_fill(tm_region *r, uint64_t seed, unsigned zero_pct,
		     unsigned tag_only_pct, tm_error *err);

/* n bytes (a multiple of 8) of PRNG output from g; the fill's random data
 * pages and the migration writers' data come from it. */
void tm_workload_random_bytes(tm_rng *g, uint8_t *p, size_t n);

#endif
