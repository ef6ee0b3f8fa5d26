/*
 * untouched.h - which destination pages are known to read zero, data and
 * tags, without reading them (untouched.c explains how and when). Used by
 * the receiver so that the zero and tag-only pages of a fresh destination
 * cost no page fault each. Internal.
 *
 * Thread safety: after init, scan may be called from any number of threads.
 */
#ifndef TM_MIGRATE_UNTOUCHED_H
#define TM_MIGRATE_UNTOUCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/region.h"

#define TM_UNTOUCHED_MAX 64u    /* regions per migration */

typedef struct tm_untouched {
	int fd;                         /* /proc/self/pagemap, or -1 */
	bool anon[TM_UNTOUCHED_MAX];    /* region range is private anonymous */
} tm_untouched;

/* Look at the regions' mappings (once per migration). Never fails: what it
 * cannot find out just makes scan answer "unknown". */
void tm_untouched_init(tm_untouched *u, tm_region *const *regions, unsigned n);
void tm_untouched_fini(tm_untouched *u);

/*
 * Bits for pages [first, first + n) of region ri (= r): 1 when the page has
 * never been written (or was discarded) and is untagged, so it reads as
 * zero data and zero tags; 0 when unknown. bits holds (n + 63) / 64 words.
 * false (all bits 0) when nothing can be said for this region.
 */
bool tm_untouched_scan(const tm_untouched *u, unsigned ri, tm_region *r,
		       size_t first, size_t n, uint64_t *bits);

#endif
