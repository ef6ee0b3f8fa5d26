/*
 * dirty_kernel.c - kernel dirty-tracking methods (in progress: uffd-wp and
 * soft-dirty report -ENOTSUP until they land; AUTO falls back to the API).
 */
#include "region/dirty.h"

#include <errno.h>

#include "tagmem/error.h"

int tm_dirty_uffd_start(tm_region *r, tm_dirty *d, tm_error *err)
{
	(void)r; (void)d;
	return tm_error_set(err, -ENOTSUP, "not implemented yet");
}
int tm_dirty_uffd_collect(tm_region *r, tm_dirty *d, uint64_t *bitmap,
			  tm_error *err)
{
	(void)r; (void)d; (void)bitmap; (void)err;
	return 0;
}
void tm_dirty_uffd_stop(tm_region *r, tm_dirty *d) { (void)r; (void)d; }
int tm_dirty_sd_start(tm_region *r, tm_dirty *d, tm_error *err)
{
	(void)r; (void)d;
	return tm_error_set(err, -ENOTSUP, "not implemented yet");
}
int tm_dirty_sd_collect(tm_region *r, tm_dirty *d, uint64_t *bitmap,
			tm_error *err)
{
	(void)r; (void)d; (void)bitmap; (void)err;
	return 0;
}
void tm_dirty_sd_stop(tm_region *r, tm_dirty *d) { (void)r; (void)d; }
