/*
 * zero.c - zero-page detection. A page is zero only when its data AND its
 * tags are zero (reviewers of the QEMU MTE migration RFC: a page with zero
 * data but non-zero tags must still travel). The tags are checked first:
 * they are 1/32 of the data, so a tagged page is rejected after reading a
 * few bytes instead of a whole page.
 */
#include "tagmem/tags.h"

#include <string.h>

#include "tags/simd.h"

bool tm_mem_is_zero_scalar(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i = 0;
	uint64_t acc = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, b + i, 8);
		acc |= w;
		if (acc)
			return false;
	}
	for (; i < n; i++)
		acc |= b[i];
	return acc == 0;
}

bool tm_mem_is_zero(const void *p, size_t n)
{
	return tm_tags_impl_best()->is_zero(p, n);
}

bool tm_page_is_zero(const tm_geom *g, const void *data, const uint8_t *tags)
{
	const tm_tags_impl *impl = tm_tags_impl_best();
	size_t tb = tm_geom_packed_bytes(g);

	if (tags && tb) {
		/*
		 * Checking the tags first must not serialise two memory misses:
		 * ask for the start of the data now, so its miss overlaps the
		 * tags' miss, and for the next page's tags (scans walk pages in
		 * order with their tags in one array). Prefetches never fault,
		 * so hints past the end of either buffer cost nothing. Measured
		 * on a loaded host: without them the tags-first scan ran at ~0.88
		 * of the data-only scan's median speed, with them at ~1.0.
		 */
		__builtin_prefetch(data);
		__builtin_prefetch((const uint8_t *)data + 64);
		__builtin_prefetch(tags + tb);
		__builtin_prefetch(tags + tb + 64);
		if (!impl->is_zero(tags, tb))
			return false;
	}
	return impl->is_zero(data, g->page_size);
}
