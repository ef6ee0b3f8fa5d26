/*
 * backend_mte.c - the mte backend: this process's PROT_MTE memory, tags are
 * the hardware allocation tags. Built only on the primitives of mte_ops.h
 * (LDG/STG/ST2G/STGP/STZG behind TCO), so this file has no MTE instructions
 * of its own and compiles everywhere; region creation refuses with -ENOTSUP
 * where the CPU or kernel lacks MTE.
 *
 * Byte-granular writes keep the tags of the granules they touch: the span
 * (rounded out to 32 bytes so it holds whole packed tag bytes) is read with
 * its tags and written back with STGP. A tag change racing such a write on
 * the same granules may be undone; page-level calls have no such window.
 */
#include "region/region_internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "region/mte_ops.h"
#include "tagmem/error.h"

static const uint8_t zero_tags[TM_PAGE_SIZE_MAX / TM_MTE_GRANULE / 2];

static int mte_fail(tm_error *err, int rc, const char *what, const void *a)
{
	return tm_error_set(err, rc, "%s at %p failed: %s", what, a,
			    strerror(-rc));
}

static int mte_open(tm_region *r, const tm_region_config *cfg, tm_error *err)
{
	size_t host = (size_t)sysconf(_SC_PAGESIZE);
	void *p = NULL;
	int rc;

	if (!tm_mte_hw_available())
		return tm_error_set(err, -ENOTSUP,
				    "MTE is not available here (needs arm64 "
				    "Linux with HWCAP2_MTE)");
	if (cfg->geom.kind != TM_META_MTE)
		return tm_error_set(err, -EINVAL,
				    "the mte backend needs MTE geometry (4 bits "
				    "per 16 bytes)");
	r->map_len = (r->size + host - 1) / host * host;
	if (cfg->addr) {
		r->base = tm_mte_untag(cfg->addr);
		r->owns_map = false;
		return 0;
	}
	rc = tm_mte_map(r->map_len, &p);
	if (rc)
		return tm_error_set(err, rc, "PROT_MTE mmap of %zu bytes "
				    "failed: %s", r->map_len, strerror(-rc));
	r->base = tm_mte_untag(p);
	r->owns_map = true;
	return 0;
}

static void mte_close(tm_region *r)
{
	if (r->owns_map && r->base)
		tm_mte_unmap(r->base, r->map_len);
	r->base = NULL;
}

static void *mte_ptr(tm_region *r, size_t off)
{
	return tm_mte_ptr_for(r->base + off);
}

static int mte_get_tags(tm_region *r, size_t pg, uint8_t *packed,
			tm_error *err)
{
	void *a = tm_region_page_addr(r, pg);
	int rc = tm_mte_get_tags(a, r->page_size, packed);

	return rc ? mte_fail(err, rc, "LDG", a) : 0;
}

static int mte_set_tags(tm_region *r, size_t pg, const uint8_t *packed,
			tm_error *err)
{
	void *a = tm_region_page_addr(r, pg);
	int rc = tm_mte_set_tags(a, r->page_size, packed);

	if (rc)
		return mte_fail(err, rc, "STG", a);
	tm_abit_set(r->tagged, pg);
	return 0;
}

static int mte_read_page(tm_region *r, size_t pg, void *data, uint8_t *tags,
			 tm_error *err)
{
	void *a = tm_region_page_addr(r, pg);
	int rc = tm_mte_copy_out(data, a, r->page_size);

	if (rc)
		return mte_fail(err, rc, "copy out", a);
	return tags ? mte_get_tags(r, pg, tags, err) : 0;
}

static int mte_write_page(tm_region *r, size_t pg, const void *data,
			  const uint8_t *tags, tm_error *err)
{
	void *a = tm_region_page_addr(r, pg);
	int rc = tm_mte_copy_in(a, data, tags ? tags : zero_tags,
				r->page_size);

	if (rc)
		return mte_fail(err, rc, "STGP copy in", a);
	if (tags)
		tm_abit_set(r->tagged, pg);
	else
		tm_abit_clear(r->tagged, pg);
	return 0;
}

static int mte_zero_page(tm_region *r, size_t pg, tm_error *err)
{
	void *a = tm_region_page_addr(r, pg);
	int rc = tm_mte_zero(a, r->page_size);

	if (rc)
		return mte_fail(err, rc, "STZG", a);
	tm_abit_clear(r->tagged, pg);
	return 0;
}

static int mte_set_tag_range(tm_region *r, size_t off, size_t len,
			     uint8_t tag, tm_error *err)
{
	void *a = r->base + off;
	int rc = tm_mte_set_tag_range(a, len, tag);

	if (rc)
		return mte_fail(err, rc, "STG range", a);
	tm_abit_set(r->tagged, off >> r->page_shift);
	return 0;
}

/* Byte-granular data access never touches tags: the primitives copy with
 * TCO set at any alignment, so there is no read-modify-write of tags that
 * could undo a concurrent tag change by another thread. */
static int mte_read(tm_region *r, size_t off, void *buf, size_t len,
		    tm_error *err)
{
	int rc = tm_mte_copy_out(buf, r->base + off, len);

	return rc ? mte_fail(err, rc, "copy out", r->base + off) : 0;
}

static int mte_write(tm_region *r, size_t off, const void *buf, size_t len,
		     tm_error *err)
{
	int rc = tm_mte_copy_data_in(r->base + off, buf, len);

	return rc ? mte_fail(err, rc, "copy data in", r->base + off) : 0;
}

/* Discarded memory comes back from the kernel with zero tags. */
static void mte_drop_tags(tm_region *r, size_t pg, size_t n)
{
	tm_abits_clear_range(r->tagged, pg, n);
}

const tm_backend_ops tm_backend_mte_ops = {
	.name = "mte",
	.open = mte_open,
	.close = mte_close,
	.ptr = mte_ptr,
	.read_page = mte_read_page,
	.write_page = mte_write_page,
	.zero_page = mte_zero_page,
	.get_tags = mte_get_tags,
	.set_tags = mte_set_tags,
	.set_tag_range = mte_set_tag_range,
	.read = mte_read,
	.write = mte_write,
	.drop_tags = mte_drop_tags,
};
