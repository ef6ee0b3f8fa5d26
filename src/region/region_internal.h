/*
 * region_internal.h - the tm_region structure and the backend operations
 * table shared by the region core (region.c), the backends (backend_soft.c,
 * backend_mte.c), dirty tracking (dirty.c) and lazy placement (lazy.c).
 *
 * The core validates every argument once (page index, offsets, granule
 * alignment) and names the region, page and byte offset in its errors; the
 * backends trust their arguments and only move bytes and tags.
 */
#ifndef TM_REGION_INTERNAL_H
#define TM_REGION_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "region/shadow.h"
#include "tagmem/region.h"

/*
 * A backend moves data and tags; it never validates. Every function returns
 * 0 or a negative errno; where it can say more than the core it fills err
 * (the core then prefixes region/page context with tm_error_wrap).
 * Tags are always packed here: the core converts the unpacked format.
 */
typedef struct tm_backend_ops {
	const char *name;
	/* Map or adopt the memory (r->base, r->map_len, r->owns_map). */
	int (*open)(tm_region *r, const tm_region_config *cfg, tm_error *err);
	void (*close)(tm_region *r);
	void *(*ptr)(tm_region *r, size_t off);
	/* tags NULL: data only */
	int (*read_page)(tm_region *r, size_t pg, void *data, uint8_t *tags,
			 tm_error *err);
	/* Pages [pg, pg+n) at once, laid out as n read_page calls would;
	 * data NULL: tags only. NULL: the core loops over read_page (or
	 * get_tags, for tags only). */
	int (*read_pages)(tm_region *r, size_t pg, size_t n, void *data,
			  uint8_t *tags, tm_error *err);
	/* tags NULL: the page's tags become zero */
	int (*write_page)(tm_region *r, size_t pg, const void *data,
			  const uint8_t *tags, tm_error *err);
	int (*zero_page)(tm_region *r, size_t pg, tm_error *err);
	int (*get_tags)(tm_region *r, size_t pg, uint8_t *packed,
			tm_error *err);
	int (*set_tags)(tm_region *r, size_t pg, const uint8_t *packed,
			tm_error *err);
	/* [off, off+len) lies inside one page, granule aligned */
	int (*set_tag_range)(tm_region *r, size_t off, size_t len, uint8_t tag,
			     tm_error *err);
	int (*read)(tm_region *r, size_t off, void *buf, size_t len,
		    tm_error *err);
	int (*write)(tm_region *r, size_t off, const void *buf, size_t len,
		     tm_error *err);
	/* Forget the tags of pages [pg, pg+n) (discard): free or zero them. */
	void (*drop_tags)(tm_region *r, size_t pg, size_t n);
} tm_backend_ops;

extern const tm_backend_ops tm_backend_soft_ops;
extern const tm_backend_ops tm_backend_mte_ops;

struct tm_lazy;   /* lazy.c */
struct tm_uffd;   /* uffd.c */
struct tm_dirty;  /* dirty.c */

struct tm_region {
	char name[TM_REGION_NAME_MAX];
	const tm_backend_ops *ops;
	enum tm_backend backend;
	tm_geom geom;
	size_t size;
	size_t npages;
	size_t page_size;
	size_t granules;        /* per page; 0 without metadata */
	size_t packed_bytes;    /* per page; 0 without metadata */
	unsigned page_shift;

	uint8_t *base;          /* untagged address of the data */
	size_t map_len;         /* bytes mapped (size rounded to host pages) */
	bool owns_map;

	tm_shadow shadow;       /* soft backend's tags */
	/* Per page: ever tagged (and not zeroed/discarded since); placed. */
	_Atomic uint64_t *tagged;
	_Atomic uint64_t *present;
	/* Pages written through the API since the last collect. */
	_Atomic uint64_t *api_dirty;
	atomic_bool dirty_on;

	struct tm_dirty *dirty;  /* kernel dirty tracking, or NULL */
	struct tm_lazy *lazy;    /* lazy placement, or NULL */
	struct tm_uffd *uffd;    /* the region's userfaultfd, shared by both */
	/* First fill error since lazy_start; kept after lazy_stop. Written
	 * by the fault thread under the lazy lock. */
	int lazy_rc;
	tm_error lazy_err;
};

/* ---- helpers the parts share ------------------------------------ */

static inline size_t tm_words(size_t nbits) { return (nbits + 63) / 64; }

static inline bool tm_abit_test(_Atomic uint64_t *b, size_t i)
{
	return (atomic_load_explicit(&b[i >> 6], memory_order_acquire) >>
		(i & 63)) & 1;
}
static inline void tm_abit_set(_Atomic uint64_t *b, size_t i)
{
	atomic_fetch_or_explicit(&b[i >> 6], (uint64_t)1 << (i & 63),
				 memory_order_acq_rel);
}
static inline void tm_abit_clear(_Atomic uint64_t *b, size_t i)
{
	atomic_fetch_and_explicit(&b[i >> 6], ~((uint64_t)1 << (i & 63)),
				  memory_order_acq_rel);
}

/* Clear bits [i, i+n): one atomic AND per word, not per bit (a 2 MiB
 * folio discard clears 8 words instead of 512 bits). */
static inline void tm_abits_clear_range(_Atomic uint64_t *b, size_t i, size_t n)
{
	while (n) {
		size_t sh = i & 63, k = 64 - sh < n ? 64 - sh : n;
		uint64_t m = (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << sh;

		atomic_fetch_and_explicit(&b[i >> 6], ~m, memory_order_acq_rel);
		i += k;
		n -= k;
	}
}

static inline uint8_t *tm_region_page_addr(const tm_region *r, size_t pg)
{
	return r->base + (pg << r->page_shift);
}

/* Mark pages [first, last] dirty (after the write they describe). */
static inline void tm_region_mark_dirty(tm_region *r, size_t first,
					size_t last)
{
	if (!atomic_load_explicit(&r->dirty_on, memory_order_acquire))
		return;
	for (size_t pg = first; pg <= last; pg++)
		tm_abit_set(r->api_dirty, pg);
}

/* dirty.c */
void tm_dirty_release(tm_region *r);
/*
 * lazy.c, while lazy placement is active: place a missing page (its tags
 * first, then its data with UFFDIO_COPY / UFFDIO_ZEROPAGE), or fetch it
 * through the fill callback in the calling thread. Return 0 when placed
 * here, 1 when the page was already there (the caller then writes it the
 * ordinary way), or a negative errno.
 */
int tm_lazy_place(tm_region *r, size_t pg, const void *data,
		  const uint8_t *tags, tm_error *err);
int tm_lazy_place_zero(tm_region *r, size_t pg, tm_error *err);
int tm_lazy_fetch(tm_region *r, size_t pg, tm_error *err);
bool tm_lazy_active(const tm_region *r);
void tm_lazy_release(tm_region *r);

/*
 * check.c: consistency of the region's bookkeeping (tagged/present/dirty
 * bitmaps, shadow chunks, dirty/lazy/userfaultfd state). Both return 0, or
 * -EFAULT with a message naming the region, the page and the broken rule.
 *
 * tm_region_check_pages checks pages [first, last] only and may run while
 * other threads make page, tag and byte calls (it waits up to 2 s for a
 * writer caught between writing a shadow slot and setting the tagged bit);
 * placed: the pages were just placed whole and must be present.
 * tm_region_check_invariants checks the whole region and must not race
 * with any call on it (like destroy).
 *
 * Builds with TM_REGION_CHECKS (meson's debug buildtype) run the page
 * check after every mutating page call, which then fails with its -EFAULT,
 * and the whole check at tm_region_destroy, which aborts on a failure.
 */
int tm_region_check_pages(tm_region *r, size_t first, size_t last,
			  bool placed, tm_error *err);
int tm_region_check_invariants(tm_region *r, tm_error *err);

/* Unpacked <-> packed for the region's geometry (tagfmt.c). */
int tm_region_pack(const tm_region *r, size_t pg, const uint8_t *unpacked,
		   uint8_t *packed, tm_error *err);
void tm_region_unpack(const tm_region *r, const uint8_t *packed,
		      uint8_t *unpacked);

#endif
