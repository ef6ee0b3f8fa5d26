/*
 * backend_soft.h - the soft backend's state, for the region tests that
 * look at the shadow storage (how much is allocated, a slot corrupted on
 * purpose). Nothing in the library outside backend_soft.c uses it: the core
 * reaches the soft backend only through tm_soft_methods.
 */
#ifndef TM_REGION_BACKEND_SOFT_H
#define TM_REGION_BACKEND_SOFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "region/shadow.h"
#include "tagmem/backend.h"

struct tm_soft {
	uint8_t *base;          /* the data */
	size_t size;
	size_t map_len;         /* size rounded up to host pages */
	size_t page_size;
	unsigned page_shift;
	unsigned granule, bits; /* tag geometry; bits 0: no metadata */
	size_t packed_bytes;    /* per page */
	bool owns_map;
	tm_shadow shadow;       /* the tags */
	uint8_t *zero;          /* lazy placement: a page of zeros */
};

/* The shadow of a soft region (tests only: r must be a soft region). */
static inline tm_shadow *tm_soft_shadow(const tm_region *r)
{
	return &((struct tm_soft *)tm_region_backend_ctx(r))->shadow;
}

#endif
