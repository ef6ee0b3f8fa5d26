/*
 * backend_soft.c - the soft backend: data in an anonymous mapping (or the
 * caller's memory), tags in the lazily allocated shadow (shadow.c). Works on
 * any host. The core has validated every argument; this file only moves
 * bytes. Tags are written before data so a reader that sees new data (and
 * then reads tags) does not see stale tags in the common case; the dirty bit
 * makes racing readers come back.
 */
#include "region/region_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tagmem/error.h"

static int soft_open(tm_region *r, const tm_region_config *cfg, tm_error *err)
{
	size_t host = (size_t)sysconf(_SC_PAGESIZE);

	r->map_len = (r->size + host - 1) / host * host;
	if (cfg->addr) {
		r->base = cfg->addr;
		r->owns_map = false;
		return 0;
	}
	void *p = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return tm_error_set(err, -errno, "mmap of %zu bytes failed: %s",
				    r->map_len, strerror(errno));
	r->base = p;
	r->owns_map = true;
	return 0;
}

static void soft_close(tm_region *r)
{
	if (r->owns_map && r->base)
		munmap(r->base, r->map_len);
	r->base = NULL;
}

static void *soft_ptr(tm_region *r, size_t off)
{
	return r->base + off;
}

static int soft_get_tags(tm_region *r, size_t pg, uint8_t *packed,
			 tm_error *err)
{
	uint8_t *slot = NULL;

	(void)err;
	if (tm_abit_test(r->tagged, pg))
		slot = tm_shadow_slot(&r->shadow, pg);
	if (slot)
		memcpy(packed, slot, r->packed_bytes);
	else
		memset(packed, 0, r->packed_bytes);
	return 0;
}

static int soft_set_tags(tm_region *r, size_t pg, const uint8_t *packed,
			 tm_error *err)
{
	uint8_t *slot = tm_shadow_slot_alloc(&r->shadow, pg);

	if (!slot)
		return tm_error_set(err, -ENOMEM,
				    "cannot allocate shadow tags");
	memcpy(slot, packed, r->packed_bytes);
	tm_abit_set(r->tagged, pg);
	return 0;
}

/* Forget a page's tags without freeing: its chunk may hold other pages. */
static void soft_untag(tm_region *r, size_t pg)
{
	uint8_t *slot;

	tm_abit_clear(r->tagged, pg);
	slot = tm_shadow_slot(&r->shadow, pg);
	if (slot)
		memset(slot, 0, r->packed_bytes);
}

static int soft_read_page(tm_region *r, size_t pg, void *data, uint8_t *tags,
			  tm_error *err)
{
	memcpy(data, tm_region_page_addr(r, pg), r->page_size);
	return tags ? soft_get_tags(r, pg, tags, err) : 0;
}

/* An untagged page's slot is all zero or absent (soft_untag,
 * tm_shadow_drop), so the slots can be copied without looking at the
 * tagged bits: what soft_get_tags would return page by page. */
static int soft_read_pages(tm_region *r, size_t pg, size_t n, void *data,
			   uint8_t *tags, tm_error *err)
{
	(void)err;
	if (data)
		memcpy(data, tm_region_page_addr(r, pg), n * r->page_size);
	if (tags)
		tm_shadow_read(&r->shadow, pg, n, tags);
	return 0;
}

static int soft_write_page(tm_region *r, size_t pg, const void *data,
			   const uint8_t *tags, tm_error *err)
{
	if (tags && r->packed_bytes) {
		int rc = soft_set_tags(r, pg, tags, err);

		if (rc)
			return rc;
	} else {
		soft_untag(r, pg);
	}
	memcpy(tm_region_page_addr(r, pg), data, r->page_size);
	return 0;
}

static int soft_zero_page(tm_region *r, size_t pg, tm_error *err)
{
	(void)err;
	soft_untag(r, pg);
	memset(tm_region_page_addr(r, pg), 0, r->page_size);
	return 0;
}

static int soft_set_tag_range(tm_region *r, size_t off, size_t len,
			      uint8_t tag, tm_error *err)
{
	size_t pg = off >> r->page_shift;
	size_t g0 = (off & (r->page_size - 1)) / r->geom.granule;
	size_t ng = len / r->geom.granule;
	uint8_t *slot = tm_shadow_slot_alloc(&r->shadow, pg);
	unsigned bits = r->geom.bits;
	unsigned per_byte = 8 / bits;
	uint8_t mask = (uint8_t)((1u << bits) - 1);

	if (!slot)
		return tm_error_set(err, -ENOMEM,
				    "cannot allocate shadow tags");
	/* An untagged page's slot is all zero (soft_untag, tm_shadow_drop),
	 * so a first range starts from zero tags. */
	for (size_t g = g0; g < g0 + ng; g++) {
		unsigned sh = (unsigned)(g % per_byte) * bits;

		slot[g / per_byte] = (uint8_t)((slot[g / per_byte] &
						~(mask << sh)) |
					       ((tag & mask) << sh));
	}
	tm_abit_set(r->tagged, pg);
	return 0;
}

static int soft_read(tm_region *r, size_t off, void *buf, size_t len,
		     tm_error *err)
{
	(void)err;
	memcpy(buf, r->base + off, len);
	return 0;
}

static int soft_write(tm_region *r, size_t off, const void *buf, size_t len,
		      tm_error *err)
{
	(void)err;
	memcpy(r->base + off, buf, len);
	return 0;
}

static void soft_drop_tags(tm_region *r, size_t pg, size_t n)
{
	tm_abits_clear_range(r->tagged, pg, n);
	tm_shadow_drop(&r->shadow, pg, n);
}

const tm_backend_ops tm_backend_soft_ops = {
	.name = "soft",
	.open = soft_open,
	.close = soft_close,
	.ptr = soft_ptr,
	.read_page = soft_read_page,
	.read_pages = soft_read_pages,
	.write_page = soft_write_page,
	.zero_page = soft_zero_page,
	.get_tags = soft_get_tags,
	.set_tags = soft_set_tags,
	.set_tag_range = soft_set_tag_range,
	.read = soft_read,
	.write = soft_write,
	.drop_tags = soft_drop_tags,
};
