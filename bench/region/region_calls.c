/*
 * region_calls.c - a fixed mix of region page/tag/byte calls on a soft
 * region (1024 pages, 4 KiB, API dirty tracking on), for comparing the
 * instruction count of the region core's dispatch before and after a
 * change: `valgrind --tool=callgrind build/bench/region/bench_region_calls 20`.
 * Not a `tagmem bench` part: it measures no rate, only a path length that
 * callgrind counts exactly (docs/BENCHMARKS.md, region backend interface).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagmem/region.h"

#define NP 1024u

static uint8_t data[4096 * 64], tags[128 * 64];

static void one_round(tm_region *r, uint64_t *sum, tm_error *err)
{
	uint64_t bm[NP / 64] = { 0 };

	for (size_t pg = 0; pg < NP; pg++)
		tm_region_write_page(r, pg, data, pg % 3 ? tags : NULL, err);
	for (size_t pg = 0; pg < NP; pg++) {
		tm_region_read_page(r, pg, data, tags, err);
		*sum += data[pg % 4096];
	}
	for (size_t pg = 0; pg < NP; pg++) {
		tm_region_get_tags(r, pg, TM_TAGS_PACKED, tags, err);
		tm_region_set_tags(r, pg, TM_TAGS_PACKED, tags, err);
		*sum += tm_region_page_tagged(r, pg);
	}
	for (size_t pg = 0; pg + 64 <= NP; pg += 64)
		tm_region_read_pages(r, pg, 64, data, tags, err);
	for (size_t pg = 0; pg + 64 <= NP; pg += 64)
		tm_region_read_pages(r, pg, 64, NULL, tags, err);
	for (size_t pg = 0; pg < NP; pg++)
		tm_region_write(r, pg * 4096 + 100, data, 64, err);
	tm_region_dirty_collect(r, bm, err);
	tm_region_discard(r, 0, 64, err);
}

int main(int argc, char **argv)
{
	size_t reps = argc > 1 ? (size_t)atoi(argv[1]) : 20;
	tm_region_config c = { .name = "calls", .size = NP * 4096,
			       .backend = TM_BACKEND_SOFT };
	uint64_t sum = 0;
	tm_region *r;
	tm_error err;

	if (tm_geom_mte(&c.geom, 4096, &err) || tm_region_create(&c, &r, &err) ||
	    tm_region_dirty_start(r, TM_DIRTY_API, &err)) {
		fprintf(stderr, "%s\n", tm_error_msg(&err));
		return 1;
	}
	memset(data, 7, sizeof(data));
	memset(tags, 0x35, sizeof(tags));
	for (size_t k = 0; k < reps; k++)
		one_round(r, &sum, &err);
	printf("%llu\n", (unsigned long long)sum);
	tm_region_destroy(r);
	return 0;
}
