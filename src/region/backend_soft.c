/*
 * backend_soft.c - the soft backend, written against tagmem/backend.h like
 * any caller's: data in an anonymous mapping (or the caller's memory), tags
 * in the lazily allocated shadow (shadow.c). Works on any host. The core
 * has validated every argument; this file only moves bytes and tags.
 *
 * Tags are written before data, so a reader that sees new data (and then
 * reads tags) does not see stale tags in the common case; the dirty bit
 * makes racing readers come back. An untagged page's shadow slot is always
 * absent or all zero, which lets tags be read without looking at the core's
 * tagged bit and lets set_tag_range start a fresh page from zero tags.
 *
 * Lazy placement: the tags go into the shadow first, then UFFDIO_COPY maps
 * the data and wakes the faulting threads; the shadow is never behind the
 * data a thread can see.
 */
#include "region/backend_soft.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region/region_internal.h"
#include "tagmem/error.h"

int tm_soft_new(const tm_region_config *cfg, void **ctx, tm_error *err)
{
	size_t host = (size_t)sysconf(_SC_PAGESIZE);
	struct tm_soft *s = calloc(1, sizeof(*s));

	if (!s)
		return tm_error_set(err, -ENOMEM, "out of memory");
	s->size = cfg->size;
	s->page_size = cfg->geom.page_size;
	s->page_shift = (unsigned)__builtin_ctzl(s->page_size);
	s->map_len = (s->size + host - 1) / host * host;
	if (cfg->geom.kind != TM_META_NONE) {
		s->granule = cfg->geom.granule;
		s->bits = cfg->geom.bits;
		s->packed_bytes = s->page_size / s->granule * s->bits / 8;
	}
	if (tm_shadow_init(&s->shadow, s->size / s->page_size, s->packed_bytes)) {
		free(s);
		return tm_error_set(err, -ENOMEM, "out of memory for the shadow "
				    "tag table");
	}
	if (cfg->addr) {
		s->base = cfg->addr;
	} else {
		void *p = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED) {
			int e = errno;

			tm_shadow_fini(&s->shadow);
			free(s);
			return tm_error_set(err, -e, "mmap of %zu bytes failed: "
					    "%s", (size_t)cfg->size, strerror(e));
		}
		s->base = p;
		s->owns_map = true;
	}
	*ctx = s;
	return 0;
}

static void soft_detach(void *ctx)
{
	struct tm_soft *s = ctx;

	if (s->owns_map)
		munmap(s->base, s->map_len);
	tm_shadow_fini(&s->shadow);
	free(s);
}

static uint8_t *page_addr(const struct tm_soft *s, size_t pg)
{
	return s->base + (pg << s->page_shift);
}

/* ---- data and tags ------------------------------------------------ */

static int soft_read_data(void *ctx, uint64_t off, void *buf, size_t len,
			  tm_error *err)
{
	struct tm_soft *s = ctx;

	(void)err;
	memcpy(buf, s->base + off, len);
	return 0;
}

static int soft_write_data(void *ctx, uint64_t off, const void *buf,
			   size_t len, tm_error *err)
{
	struct tm_soft *s = ctx;

	(void)err;
	memcpy(s->base + off, buf, len);
	return 0;
}

/* One page's tags: the slot, or zeros when its chunk was never allocated
 * (the per-page hot path of page reads and get_tags). */
static void read_slot(struct tm_soft *s, size_t pg, uint8_t *packed)
{
	const uint8_t *slot = tm_shadow_slot(&s->shadow, pg);

	if (slot)
		memcpy(packed, slot, s->packed_bytes);
	else
		memset(packed, 0, s->packed_bytes);
}

static int soft_read_tags(void *ctx, size_t pg, size_t n, uint8_t *packed,
			  tm_error *err)
{
	struct tm_soft *s = ctx;

	(void)err;
	if (n == 1)
		read_slot(s, pg, packed);
	else
		tm_shadow_read(&s->shadow, pg, n, packed);
	return 0;
}

static int set_page_tags(struct tm_soft *s, size_t pg, const uint8_t *packed,
			 tm_error *err)
{
	uint8_t *slot = tm_shadow_slot_alloc(&s->shadow, pg);

	if (!slot)
		return tm_error_set(err, -ENOMEM, "cannot allocate shadow tags");
	memcpy(slot, packed, s->packed_bytes);
	return 0;
}

/* Forget a page's tags without freeing: its chunk may hold other pages. */
static void untag_page(struct tm_soft *s, size_t pg)
{
	uint8_t *slot = tm_shadow_slot(&s->shadow, pg);

	if (slot)
		memset(slot, 0, s->packed_bytes);
}

static int soft_write_tags(void *ctx, size_t pg, size_t n,
			   const uint8_t *packed, tm_error *err)
{
	struct tm_soft *s = ctx;

	for (size_t i = 0; i < n; i++) {
		int rc = set_page_tags(s, pg + i, packed + i * s->packed_bytes, err);

		if (rc)
			return rc;
	}
	return 0;
}

/* The slots are copied without the tagged bits: untagged ones are zero. */
static int soft_read_pages(void *ctx, size_t pg, size_t n, void *data,
			   uint8_t *packed, tm_error *err)
{
	struct tm_soft *s = ctx;

	(void)err;
	if (data)
		memcpy(data, page_addr(s, pg), n << s->page_shift);
	if (packed && n == 1)
		read_slot(s, pg, packed);
	else if (packed)
		tm_shadow_read(&s->shadow, pg, n, packed);
	return 0;
}

static int soft_write_pages(void *ctx, size_t pg, size_t n, const void *data,
			    const uint8_t *packed, tm_error *err)
{
	struct tm_soft *s = ctx;

	for (size_t i = 0; i < n; i++) {
		if (packed && s->packed_bytes) {
			int rc = set_page_tags(s, pg + i,
					       packed + i * s->packed_bytes, err);

			if (rc)
				return rc;
		} else if (s->packed_bytes) {
			untag_page(s, pg + i);
		}
		if (data)
			memcpy(page_addr(s, pg + i),
			       (const uint8_t *)data + (i << s->page_shift),
			       s->page_size);
		else
			memset(page_addr(s, pg + i), 0, s->page_size);
	}
	return 0;
}

static int soft_set_tag_range(void *ctx, uint64_t off, size_t len,
			      uint8_t tag, tm_error *err)
{
	struct tm_soft *s = ctx;
	size_t pg = off >> s->page_shift;
	size_t g0 = (off & (s->page_size - 1)) / s->granule;
	size_t ng = len / s->granule;
	uint8_t *slot = tm_shadow_slot_alloc(&s->shadow, pg);
	unsigned bits = s->bits, per_byte = 8 / bits;
	uint8_t mask = (uint8_t)((1u << bits) - 1);

	if (!slot)
		return tm_error_set(err, -ENOMEM, "cannot allocate shadow tags");
	/* An untagged page's slot is all zero, so a first range starts from
	 * zero tags. */
	for (size_t g = g0; g < g0 + ng; g++) {
		unsigned sh = (unsigned)(g % per_byte) * bits;

		slot[g / per_byte] = (uint8_t)((slot[g / per_byte] & ~(mask << sh)) |
					       ((tag & mask) << sh));
	}
	return 0;
}

/* ---- page state, pointers ------------------------------------------ */

static int soft_discard(void *ctx, size_t pg, size_t n, tm_error *err)
{
	struct tm_soft *s = ctx;
	int rc;

	tm_shadow_drop(&s->shadow, pg, n);
	rc = tm_release_range(page_addr(s, pg), n << s->page_shift);
	if (rc)
		return tm_error_set(err, rc, "madvise(MADV_DONTNEED) of %p+%#zx "
				    "failed: %s", (void *)page_addr(s, pg),
				    n << s->page_shift, strerror(-rc));
	return 0;
}

static void *soft_direct(void *ctx, uint64_t off)
{
	return ((struct tm_soft *)ctx)->base + off;
}

static int soft_mapping(void *ctx, void **base, size_t *len)
{
	struct tm_soft *s = ctx;

	*base = s->base;
	*len = s->map_len;
	return 0;
}

/* ---- lazy placement -------------------------------------------------- */

/* A page-aligned page of zeros to UFFDIO_COPY from (never written: its
 * reads map the kernel's zero page). */
static int soft_place_start(void *ctx, int uffd, uint64_t features,
			    tm_error *err)
{
	struct tm_soft *s = ctx;
	void *p = mmap(NULL, s->page_size, PROT_READ,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)uffd;
	(void)features;
	if (p == MAP_FAILED)
		return tm_error_set(err, -errno, "mmap of a zero page failed: %s",
				    strerror(errno));
	s->zero = p;
	return 0;
}

static void soft_place_stop(void *ctx)
{
	struct tm_soft *s = ctx;

	munmap(s->zero, s->page_size);
	s->zero = NULL;
}

/* UFFDIO_COPY of data (NULL: zeros): maps the page and wakes. */
static int copy_in(int uffd, uint8_t *dst, const void *data,
		   const uint8_t *zero, size_t len)
{
	struct uffdio_copy c = { .dst = (uintptr_t)dst,
				 .src = (uintptr_t)(data ? data : zero),
				 .len = len };
	struct uffdio_zeropage z = {
		.range = { .start = (uintptr_t)dst, .len = len } };

	if (data)
		return ioctl(uffd, UFFDIO_COPY, &c) ? -errno : 0;
	if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) == 0)
		return 0;
	/* With uffd-wp tracking on, an untouched page holds the write-protect
	 * marker; UFFDIO_ZEROPAGE refuses it (EEXIST) where UFFDIO_COPY
	 * accepts it, so copy zeros instead. An EEXIST from the copy means
	 * the page really is mapped. */
	if (errno == EEXIST && ioctl(uffd, UFFDIO_COPY, &c) == 0)
		return 0;
	return -errno;
}

static int soft_place(void *ctx, int uffd, size_t pg, const void *data,
		      const uint8_t *packed, tm_error *err)
{
	struct tm_soft *s = ctx;
	uint8_t old[TM_PAGE_SIZE_MAX / 8];
	uint8_t *slot = s->packed_bytes ? tm_shadow_slot(&s->shadow, pg) : NULL;
	int rc = 0;

	/* Tags as they are, to put back if the page is mapped after all. */
	if (slot)
		memcpy(old, slot, s->packed_bytes);
	if (packed && s->packed_bytes)
		rc = set_page_tags(s, pg, packed, err);
	else if (s->packed_bytes)
		untag_page(s, pg);
	if (rc)
		return rc;
	rc = copy_in(uffd, page_addr(s, pg), data, s->zero, s->page_size);
	if (rc == 0)
		return 0;
	if (slot)
		memcpy(slot, old, s->packed_bytes);
	else if (s->packed_bytes)
		untag_page(s, pg);
	if (rc == -EEXIST)
		return rc;
	return tm_error_set(err, rc, "%s of %p failed: %s",
			    data ? "UFFDIO_COPY" : "UFFDIO_ZEROPAGE",
			    (void *)page_addr(s, pg), strerror(-rc));
}

/* ---- checks ------------------------------------------------------- */

/* A tagged page has a slot: its chunk is allocated before the core sets
 * the bit and freed only by discard, after the core cleared it. */
static int check_page(struct tm_soft *s, size_t pg, bool tagged, tm_error *err)
{
	if (tagged && s->packed_bytes && !tm_shadow_slot(&s->shadow, pg))
		return tm_error_set(err, -EFAULT, "tagged, but its shadow chunk "
				    "is not allocated");
	return 0;
}

/* The shadow table matches the region and counts its chunks right. */
static int check_all(struct tm_soft *s, tm_error *err)
{
	const tm_shadow *sh = &s->shadow;
	size_t live = 0;

	if (sh->npages != s->size / s->page_size ||
	    sh->page_bytes != s->packed_bytes ||
	    (s->packed_bytes && !sh->chunks) || (!s->packed_bytes && sh->chunks))
		return tm_error_set(err, -EFAULT, "the shadow table does not "
				    "match the region's pages or tag size");
	for (size_t i = 0; sh->chunks && i < sh->nchunks; i++)
		live += atomic_load(&sh->chunks[i]) != NULL;
	if (live != atomic_load(&sh->live_chunks))
		return tm_error_set(err, -EFAULT, "%zu shadow chunks are "
				    "allocated but %zu are counted", live,
				    atomic_load(&sh->live_chunks));
	return 0;
}

static int soft_check(void *ctx, size_t pg, bool tagged, tm_error *err)
{
	return pg == TM_CHECK_ALL ? check_all(ctx, err)
				  : check_page(ctx, pg, tagged, err);
}

const tm_backend_methods tm_soft_methods = {
	.version = 1,
	.name = "soft",
	.flags = TM_BACKEND_F_EXCLUSIVE_TAGS,
	.detach = soft_detach,
	.read_data = soft_read_data,
	.write_data = soft_write_data,
	.read_tags = soft_read_tags,
	.write_tags = soft_write_tags,
	.read_pages = soft_read_pages,
	.write_pages = soft_write_pages,
	.set_tag_range = soft_set_tag_range,
	.discard = soft_discard,
	.direct = soft_direct,
	.mapping = soft_mapping,
	.place_start = soft_place_start,
	.place = soft_place,
	.place_stop = soft_place_stop,
	.check = soft_check,
};
