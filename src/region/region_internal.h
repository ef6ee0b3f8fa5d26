/*
 * region_internal.h - the tm_region structure shared by the region core
 * (region.c), dirty tracking (dirty*.c), lazy placement (lazy.c, uffd.c)
 * and the checks (check.c), plus what the built-in backends share.
 *
 * The core validates every argument once (page index, offsets, granule
 * alignment) and names the region, page and byte offset in its errors; it
 * reaches the memory only through the backend's methods (tagmem/backend.h),
 * of which it keeps a private copy. Backends never see this structure.
 */
#ifndef TM_REGION_INTERNAL_H
#define TM_REGION_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/backend.h"
#include "tagmem/region.h"

struct tm_lazy;   /* lazy.c */
struct tm_uffd;   /* uffd.c */
struct tm_dirty;  /* dirty.c */

/* Test hooks (tm_region_test_hooks): deliberately wrong behaviour that a
 * test must be able to catch. Never set outside tests. */
#define TM_HOOK_WAKE_BEFORE_TAGS 0x1u  /* lazy: place the data with zero
					  tags, wake, then write the tags */

struct tm_region {
	char name[TM_REGION_NAME_MAX];
	tm_backend_methods m;   /* the backend's table, members of versions
				   it lacks zeroed (region.c methods_copy) */
	void *ctx;              /* the backend's state */
	enum tm_backend backend;
	tm_geom geom;
	size_t size;
	size_t npages;
	size_t page_size;
	size_t granules;        /* per page; 0 without metadata */
	size_t packed_bytes;    /* per page; 0 without metadata */
	unsigned page_shift;

	/* The backend's mapping in this process (backend.h mapping), or
	 * NULL: what userfaultfd and pagemap work on. */
	uint8_t *map_base;
	size_t map_len;

	/* Per page: ever tagged (and not zeroed/discarded since); placed. */
	_Atomic uint64_t *tagged;
	_Atomic uint64_t *present;
	/* Pages written through the API since the last collect. */
	_Atomic uint64_t *api_dirty;
	atomic_bool dirty_on;

	struct tm_dirty *dirty;  /* kernel or backend dirty tracking, or NULL */
	struct tm_lazy *lazy;    /* lazy placement, or NULL */
	struct tm_uffd *uffd;    /* the region's userfaultfd, shared by both */
	/* First fill error since lazy_start; kept after lazy_stop. Written
	 * by the fault thread under the lazy lock. */
	int lazy_rc;
	tm_error lazy_err;
	unsigned test_hooks;     /* TM_HOOK_* */
	unsigned hook_delay_ms;
};

/* Set test hooks (TM_HOOK_*) with the delay they use; for tests only, and
 * like lazy_start it must not race other calls on the region. */
void tm_region_test_hooks(tm_region *r, unsigned hooks, unsigned delay_ms);

/* ---- the built-in backends (backend_soft.c, backend_mte.c) -------- */

/* Make the state of a soft / mte backend for cfg (mapping the memory or
 * adopting cfg->addr); the table's detach frees it. */
int tm_soft_new(const tm_region_config *cfg, void **ctx, tm_error *err);
extern const tm_backend_methods tm_soft_methods;
int tm_mte_new(const tm_region_config *cfg, void **ctx, tm_error *err);
extern const tm_backend_methods tm_mte_methods;

/* MADV_DONTNEED over [a, a+len) in pieces that never free page tables
 * (see region.c); 0 or -errno. For backends whose memory is a mapping. */
int tm_release_range(uint8_t *a, size_t len);

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

/* Address of page pg in the backend's mapping (map_base must be set). */
static inline uint8_t *tm_region_map_addr(const tm_region *r, size_t pg)
{
	return r->map_base + (pg << r->page_shift);
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
 * lazy.c, while lazy placement is active: place a missing page through the
 * backend's place (never data before tags), or fetch it through the fill
 * callback on the fault thread. Return 0 when placed
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
 * bitmaps, dirty/lazy/userfaultfd state) and, through the backend's check
 * method, of the backend's own (the soft backend's shadow chunks). Both return 0, or
 * -EFAULT with a message naming the region, the page and the broken rule.
 *
 * tm_region_check_pages checks pages [first, last] only and may run while
 * other threads make page, tag and byte calls (it waits up to 2 s for a
 * writer caught between writing the tags and setting the tagged bit);
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
