/*
 * place.c - placing one received page with its tags in its region: the
 * single step every receive path ends in (the pre-copy receiver's buffered
 * and in-place packets; post-copy's page requests will call it too), so
 * the rules for what a page class means at the destination live in one
 * function.
 */
#include <errno.h>

#include "common/util.h"
#include "migrate/internal.h"

/* A page that is already zero (tags known zero, data reads zero) needs no
 * data write: on a fresh destination this spares a page fault and a memset
 * for every zero or tag-only page of the first pass. Reading an untouched
 * anonymous page maps the shared zero page and allocates nothing. "Tags
 * known zero" is tm_region_page_may_be_tagged, not page_tagged: a backend
 * that does not own its tags (mte: the workload's own STG; kvm: the
 * guest) may hold tags tagmem never set, which the page must lose, and on
 * mte reading such a page through one pointer would fault on the first
 * granule whose tag differs. A backend without a pointer in this process
 * always gets the write. */
static bool already_zero(tm_region *r, size_t pg)
{
	size_t ps = tm_region_geom(r)->page_size;
	const void *p;

	if (tm_region_page_may_be_tagged(r, pg))
		return false;
	p = tm_region_ptr(r, pg * ps);
	return p && tm_mem_is_zero(p, ps);
}

/* The data is in the page already: write the tags, unless they are zero
 * and the page has no tags to overwrite (then a soft region allocates no
 * shadow for it and the page stays "untagged", which reads the same; a
 * backend whose tags others write always gets them). */
static int landed_tags(tm_region *r, size_t pg, const uint8_t *tags,
		       tm_error *err)
{
	size_t tb = tm_geom_packed_bytes(tm_region_geom(r));

	if (!tags || tb == 0)
		return 0;
	if (!tm_region_page_may_be_tagged(r, pg) && tm_mem_is_zero(tags, tb))
		return 0;
	return tm_region_set_tags(r, pg, TM_TAGS_PACKED, tags, err);
}

int tm_rx_place_page(tm_region *reg, size_t pg, enum tm_rx_class cls,
		     const uint8_t *data, const uint8_t *tags,
		     const uint8_t *zero_page, bool known_zero, tm_error *err)
{
	switch (cls) {
	case TM_RX_NORMAL:
		return data ? tm_region_write_page(reg, pg, data, tags, err)
			    : landed_tags(reg, pg, tags, err);
	case TM_RX_TAGONLY:
		/* Data already zero: only the tags change, and an untouched
		 * page keeps no memory of its own. */
		if (known_zero || already_zero(reg, pg))
			return tm_region_set_tags(reg, pg, TM_TAGS_PACKED, tags, err);
		return tm_region_write_page(reg, pg, zero_page, tags, err);
	case TM_RX_ZERO:
		return known_zero || already_zero(reg, pg) ? 0
							  : tm_region_zero_page(reg, pg, err);
	}
	return -EINVAL;
}
