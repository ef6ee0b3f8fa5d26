/*
 * check.c - consistency checks of a region's own bookkeeping: the tagged,
 * present and API-dirty bitmaps, the soft backend's shadow chunks, and the
 * dirty/lazy/userfaultfd state. Debug builds (TM_REGION_CHECKS, see
 * meson.build) run the per-page check after every mutating page call and
 * the whole-region check at destroy; tests run them on purpose.
 *
 * Only invariants the code keeps are checked (see each function). One that
 * is NOT checked: tag bits above the geometry's width. The region accepts
 * 1, 2, 4 or 8 bits per granule with a whole number of packed bytes per page
 * (check_geom in region.c), so every bit of a packed slot belongs to some
 * granule's tag and no bit pattern is out of range. Likewise, "tagged" says
 * nothing about "present" (set_tags on a discarded page without lazy
 * placement leaves it tagged and not present; lazy_start may find a tagged
 * page whose data was never touched and call it missing), so the two are
 * not compared.
 */
#include "region/region_internal.h"

#include <errno.h>
#include <time.h>

#include "region/dirty.h"
#include "region/uffd.h"
#include "tagmem/error.h"

/* How long a concurrent check waits for a writer to finish (see below). */
#define SETTLE_NS 2000000000ll

static int broken(const tm_region *r, size_t pg, const char *what,
		  tm_error *err)
{
	return tm_error_set(err, -EFAULT, "region '%s': invariant broken at "
			    "page %zu (byte offset %#zx): %s", r->name, pg,
			    pg * r->page_size, what);
}

static int broken_region(const tm_region *r, const char *what, tm_error *err)
{
	return tm_error_set(err, -EFAULT, "region '%s': invariant broken: %s",
			    r->name, what);
}

static bool slot_is_zero(const tm_region *r, const uint8_t *slot)
{
	for (size_t i = 0; i < r->packed_bytes; i++)
		if (slot[i])
			return false;
	return true;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/*
 * An untagged page whose slot holds tags is legal for one moment only:
 * while another thread's set_tags / set_tag_range / write_page has written
 * the slot but not yet set the tagged bit (backend_soft.c writes the slot
 * first). A concurrent check therefore looks again for a while before it
 * calls the state broken; a quiescent check (whole region) does not wait.
 */
static bool untagged_slot_settles(tm_region *r, size_t pg,
				  const uint8_t *slot)
{
	const struct timespec ms = { 0, 1000000 };
	long long end = now_ns() + SETTLE_NS;

	while (now_ns() < end) {
		nanosleep(&ms, NULL);
		if (tm_abit_test(r->tagged, pg) || slot_is_zero(r, slot))
			return true;
	}
	return false;
}

/*
 * Soft backend with metadata: a tagged page has a shadow slot (its chunk is
 * allocated before the bit is set and freed only by discard, after the bit
 * is cleared); an untagged page's slot is absent or all zero (soft_untag,
 * tm_shadow_drop), which soft_set_tag_range relies on when it starts a
 * first range from the slot's contents.
 */
static int check_soft_page(tm_region *r, size_t pg, bool quiescent,
			   tm_error *err)
{
	uint8_t *slot = tm_shadow_slot(&r->shadow, pg);

	if (tm_abit_test(r->tagged, pg)) {
		if (!slot)
			return broken(r, pg, "tagged, but its shadow chunk is "
				      "not allocated", err);
		return 0;
	}
	if (!slot || slot_is_zero(r, slot))
		return 0;
	if (!quiescent && untagged_slot_settles(r, pg, slot))
		return 0;
	for (size_t i = 0; i < r->packed_bytes; i++)
		if (slot[i])
			return tm_error_set(err, -EFAULT, "region '%s': "
					    "invariant broken at page %zu (byte "
					    "offset %#zx): untagged, but its "
					    "shadow slot holds tag byte %#x at "
					    "%zu (an untagged slot is all zero)",
					    r->name, pg, pg * r->page_size,
					    slot[i], i);
	return 0;
}

static int check_page(tm_region *r, size_t pg, bool quiescent, tm_error *err)
{
	if (pg >= r->npages)
		return tm_error_set(err, -ERANGE, "region '%s': check: page "
				    "%zu is outside the region (%zu pages)",
				    r->name, pg, r->npages);
	if (r->packed_bytes == 0 && tm_abit_test(r->tagged, pg))
		return broken(r, pg, "tagged, but the region carries no "
			      "metadata", err);
	if (r->backend != TM_BACKEND_SOFT) {
		if (r->shadow.chunks)
			return broken(r, pg, "the mte backend has shadow "
				      "chunks (its tags live in hardware)",
				      err);
		return 0;
	}
	if (r->packed_bytes)
		return check_soft_page(r, pg, quiescent, err);
	return 0;
}

int tm_region_check_pages(tm_region *r, size_t first, size_t last,
			  bool placed, tm_error *err)
{
	for (size_t pg = first; pg <= last; pg++) {
		int rc = check_page(r, pg, false, err);

		if (rc)
			return rc;
		/* Placement sets the present bit; only discard (which may not
		 * race with calls on its pages) and lazy_start clear it. */
		if (placed && !tm_abit_test(r->present, pg))
			return broken(r, pg, "just placed (written or "
				      "zeroed whole), but not marked present",
				      err);
	}
	return 0;
}

/* ---- the whole region (no call may run concurrently) -------------- */

static int check_geometry(const tm_region *r, tm_error *err)
{
	size_t granules = 0, packed = 0;

	if (r->geom.kind != TM_META_NONE) {
		granules = r->page_size / r->geom.granule;
		packed = granules * r->geom.bits / 8;
	}
	if (r->page_size != r->geom.page_size ||
	    ((size_t)1 << r->page_shift) != r->page_size ||
	    r->npages * r->page_size != r->size || r->granules != granules ||
	    r->packed_bytes != packed)
		return tm_error_set(err, -EFAULT, "region '%s': invariant "
				    "broken: page size %zu (shift %u), %zu "
				    "pages, %zu bytes, %zu granules, %zu tag "
				    "bytes per page disagree with the "
				    "geometry", r->name, r->page_size,
				    r->page_shift, r->npages, r->size,
				    r->granules, r->packed_bytes);
	return 0;
}

/* Bits past the last page stay zero in every per-page bitmap. */
static int check_tail(const tm_region *r, _Atomic uint64_t *b,
		      const char *name, tm_error *err)
{
	size_t w = tm_words(r->npages) - 1;
	unsigned used = (unsigned)(r->npages - w * 64);
	uint64_t v = atomic_load(&b[w]);

	if (used < 64 && (v >> used))
		return tm_error_set(err, -EFAULT, "region '%s': invariant "
				    "broken: the %s bitmap has bits set past "
				    "the last page %zu (word %zu = %#llx)",
				    r->name, name, r->npages - 1, w,
				    (unsigned long long)v);
	return 0;
}

static int check_bitmaps(const tm_region *r, tm_error *err)
{
	int rc = check_tail(r, r->tagged, "tagged", err);

	if (!rc)
		rc = check_tail(r, r->present, "present", err);
	if (!rc)
		rc = check_tail(r, r->api_dirty, "API-dirty", err);
	return rc;
}

/* The shadow table matches the region and counts its chunks right. */
static int check_shadow(const tm_region *r, tm_error *err)
{
	const tm_shadow *s = &r->shadow;
	size_t want = r->backend == TM_BACKEND_SOFT ? r->packed_bytes : 0;
	size_t live = 0;

	if (s->npages != r->npages || s->page_bytes != want ||
	    (want && !s->chunks) || (!want && s->chunks))
		return broken_region(r, "the shadow table does not match the "
				     "region's pages or tag size", err);
	for (size_t i = 0; s->chunks && i < s->nchunks; i++)
		live += atomic_load(&s->chunks[i]) != NULL;
	if (live != atomic_load(&s->live_chunks))
		return tm_error_set(err, -EFAULT, "region '%s': invariant "
				    "broken: %zu shadow chunks are allocated "
				    "but %zu are counted", r->name, live,
				    atomic_load(&s->live_chunks));
	return 0;
}

/*
 * dirty_on mirrors r->dirty; the userfaultfd is registered with exactly
 * the modes its users need (MISSING for lazy placement, WP for uffd-wp
 * tracking) and is closed when neither runs (tm_uffd_set_modes).
 */
static int check_modes(const tm_region *r, tm_error *err)
{
	uint64_t want = 0;

	if (atomic_load(&r->dirty_on) != (r->dirty != NULL))
		return broken_region(r, "dirty_on disagrees with the dirty "
				     "tracking state", err);
	if (r->dirty && r->dirty->method == TM_DIRTY_AUTO)
		return broken_region(r, "dirty tracking runs with method "
				     "auto (it resolves at start)", err);
	if (r->lazy && r->backend != TM_BACKEND_SOFT)
		return broken_region(r, "lazy placement on a backend other "
				     "than soft", err);
	if (r->lazy)
		want |= UFFDIO_REGISTER_MODE_MISSING;
	if (r->dirty && r->dirty->method == TM_DIRTY_UFFD_WP)
		want |= UFFDIO_REGISTER_MODE_WP;
	if ((r->uffd ? r->uffd->modes : 0) != want || (!want && r->uffd))
		return tm_error_set(err, -EFAULT, "region '%s': invariant "
				    "broken: userfaultfd modes %#llx, but lazy "
				    "placement and dirty tracking need %#llx",
				    r->name,
				    (unsigned long long)(r->uffd ? r->uffd->modes
								 : 0),
				    (unsigned long long)want);
	return 0;
}

int tm_region_check_invariants(tm_region *r, tm_error *err)
{
	int rc = check_geometry(r, err);

	if (!rc)
		rc = check_bitmaps(r, err);
	if (!rc)
		rc = check_shadow(r, err);
	if (!rc)
		rc = check_modes(r, err);
	for (size_t pg = 0; !rc && pg < r->npages; pg++)
		rc = check_page(r, pg, true, err);
	return rc;
}
