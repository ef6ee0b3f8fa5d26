/*
 * dirty.h - internal interface between the dirty-tracking front end
 * (dirty.c) and its kernel methods (dirty_uffd.c, dirty_softdirty.c).
 */
#ifndef TM_REGION_DIRTY_H
#define TM_REGION_DIRTY_H

#include "region/region_internal.h"

typedef struct tm_dirty {
	enum tm_dirty_method method;
	char note[512];
	/* uffd-wp */
	int uffd_pagemap_fd;         /* /proc/self/pagemap, for PAGEMAP_SCAN */
	void *uffd_vec;              /* struct page_region[SCAN_VEC] */
	/* soft-dirty */
	int sd_pagemap_fd;           /* /proc/self/pagemap */
	uint64_t *sd_buf;            /* pagemap entries read per step */
	_Atomic uint64_t *sd_pending; /* harvested, not yet collected */
	struct tm_dirty *sd_next;    /* process-wide list (dirty_softdirty.c) */
	tm_region *sd_region;
} tm_dirty;

/* Each method: start fills err with why it is unavailable; collect ORs the
 * pages written since the last collect into bitmap and re-arms them. */
int tm_dirty_uffd_start(tm_region *r, tm_dirty *d, tm_error *err);
int tm_dirty_uffd_collect(tm_region *r, tm_dirty *d, uint64_t *bitmap,
			  tm_error *err);
void tm_dirty_uffd_stop(tm_region *r, tm_dirty *d);

int tm_dirty_sd_start(tm_region *r, tm_dirty *d, tm_error *err);
int tm_dirty_sd_collect(tm_region *r, tm_dirty *d, uint64_t *bitmap,
			tm_error *err);
void tm_dirty_sd_stop(tm_region *r, tm_dirty *d);

#endif
