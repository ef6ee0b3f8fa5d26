/*
 * lazy.c - lazy placement through userfaultfd (in progress: not built yet,
 * tm_region_lazy_start reports -ENOTSUP until it lands).
 */
#include "region/region_internal.h"

#include <errno.h>

#include "tagmem/error.h"

bool tm_lazy_active(const tm_region *r) { return r->lazy != NULL; }
void tm_lazy_release(tm_region *r) { (void)r; }

int tm_lazy_place(tm_region *r, size_t pg, const void *data,
		  const uint8_t *tags, tm_error *err)
{
	(void)r; (void)pg; (void)data; (void)tags; (void)err;
	return 1;
}

int tm_lazy_place_zero(tm_region *r, size_t pg, tm_error *err)
{
	(void)r; (void)pg; (void)err;
	return 1;
}

int tm_lazy_fetch(tm_region *r, size_t pg, tm_error *err)
{
	(void)r; (void)pg; (void)err;
	return 1;
}

int tm_region_lazy_start(tm_region *r, tm_fill_fn fn, void *ctx,
			 tm_error *err)
{
	(void)fn; (void)ctx;
	return tm_error_set(err, -ENOTSUP, "region '%s': lazy placement is "
			    "not implemented yet", r->name);
}

void tm_region_lazy_stop(tm_region *r) { (void)r; }

int tm_region_lazy_error(tm_region *r, tm_error *err)
{
	(void)r; (void)err;
	return 0;
}
