/*
 * check.c - consistency checks of a region's own bookkeeping: the tagged,
 * present and API-dirty bitmaps, the dirty/lazy/userfaultfd state, and,
 * through the backend's check method (tagmem/backend.h), the backend's own
 * (the soft backend's shadow chunks). Debug builds (TM_REGION_CHECKS, see
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
 * not compared. And an untagged page reading non-zero tags is only wrong
 * for a backend whose tags change through its methods alone
 * (TM_BACKEND_F_EXCLUSIVE_TAGS): on mte a workload's STG does it legally.
 */
#include "region/region_internal.h"

#include <errno.h>
#include <stdio.h>
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

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/*
 * An untagged page that reads tags (exclusive-tags backends): what the
 * backend hands back for a page whose tags were zeroed or never set.
 */
static int check_untagged_reads_zero(tm_region *r, size_t pg, tm_error *err)
{
	uint8_t t[TM_PAGE_SIZE_MAX / 2];
	int rc;

	if (tm_abit_test(r->tagged, pg))
		return 0;
	rc = r->m.read_tags(r->ctx, pg, 1, t, err);
	if (rc)
		return tm_error_wrap(err, rc, "region '%s': check: reading the "
				     "tags of page %zu", r->name, pg);
	for (size_t i = 0; i < r->packed_bytes; i++)
		if (t[i] && !tm_abit_test(r->tagged, pg))
			return tm_error_set(err, -EFAULT, "region '%s': "
					    "invariant broken at page %zu (byte "
					    "offset %#zx): untagged, but the %s "
					    "backend reads tag byte %#x at %zu "
					    "(an untagged page reads zero tags)",
					    r->name, pg, pg * r->page_size,
					    tm_region_backend_name(r), t[i], i);
	return 0;
}

/* The backend's own view of page pg (backend.h check). */
static int check_backend_page(tm_region *r, size_t pg, tm_error *err)
{
	tm_error e;
	int rc;

	if (!r->m.check)
		return 0;
	tm_error_clear(&e);
	rc = r->m.check(r->ctx, pg, tm_abit_test(r->tagged, pg), &e);
	if (!rc)
		return 0;
	return tm_error_set(err, rc, "region '%s': invariant broken at page "
			    "%zu (byte offset %#zx): %s backend: %s", r->name,
			    pg, pg * r->page_size, tm_region_backend_name(r),
			    e.msg);
}

static int check_page_once(tm_region *r, size_t pg, tm_error *err)
{
	int rc = 0;

	if (r->packed_bytes == 0 && tm_abit_test(r->tagged, pg))
		return broken(r, pg, "tagged, but the region carries no "
			      "metadata", err);
	if (r->packed_bytes && (r->m.flags & TM_BACKEND_F_EXCLUSIVE_TAGS))
		rc = check_untagged_reads_zero(r, pg, err);
	return rc ? rc : check_backend_page(r, pg, err);
}

/*
 * A page call racing the check may be between its steps (tags written, the
 * tagged bit not yet set), which is legal for a moment only. A concurrent
 * check therefore looks again for a while before it calls the state
 * broken; a quiescent check (whole region) does not wait.
 */
static int check_page(tm_region *r, size_t pg, bool quiescent, tm_error *err)
{
	const struct timespec ms = { 0, 1000000 };
	long long end = now_ns() + SETTLE_NS;
	int rc;

	if (pg >= r->npages)
		return tm_error_set(err, -ERANGE, "region '%s': check: page "
				    "%zu is outside the region (%zu pages)",
				    r->name, pg, r->npages);
	while ((rc = check_page_once(r, pg, err)) == -EFAULT && !quiescent &&
	       now_ns() < end)
		nanosleep(&ms, NULL);
	return rc;
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

/* The backend's region-wide state (backend.h check with TM_CHECK_ALL). */
static int check_backend_all(tm_region *r, tm_error *err)
{
	tm_error e;
	int rc;

	if (!r->m.check)
		return 0;
	tm_error_clear(&e);
	rc = r->m.check(r->ctx, TM_CHECK_ALL, false, &e);
	return rc ? tm_error_set(err, rc, "region '%s': invariant broken: %s "
				 "backend: %s", r->name,
				 tm_region_backend_name(r), e.msg) : 0;
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
	if (r->lazy && (!r->m.place || !r->map_base))
		return broken_region(r, "lazy placement on a backend without "
				     "place or mapping", err);
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
		rc = check_backend_all(r, err);
	if (!rc)
		rc = check_modes(r, err);
	for (size_t pg = 0; !rc && pg < r->npages; pg++)
		rc = check_page(r, pg, true, err);
	return rc;
}
