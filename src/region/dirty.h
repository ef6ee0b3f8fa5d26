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
	int sd_pagemap_fd;           /* soft-dirty: /proc/self/pagemap */
	struct tm_dirty *sd_next;    /* soft-dirty: process-wide list */
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
