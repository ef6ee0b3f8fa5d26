/*
 * dirty.c - dirty-page tracking for a region.
 *
 * Writes through the API are always tracked in the region's atomic
 * api_dirty bitmap (set after the write, fetched-and-cleared word by word at
 * collect, so a racing write is reported now or next time). A kernel method
 * additionally catches writers that bypass the API (stores through
 * tm_region_ptr, STG on mte memory):
 *   uffd-wp     userfaultfd write-protect in async mode + PAGEMAP_SCAN
 *               (dirty_uffd.c)
 *   soft-dirty  /proc/self/pagemap bit 55 + clear_refs (dirty_softdirty.c)
 * AUTO tries them in that order and records why it fell back.
 */
#include "region/dirty.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagmem/error.h"

const char *tm_dirty_method_name(enum tm_dirty_method m)
{
	switch (m) {
	case TM_DIRTY_AUTO: return "auto";
	case TM_DIRTY_API: return "api";
	case TM_DIRTY_UFFD_WP: return "uffd-wp";
	case TM_DIRTY_SOFT_DIRTY: return "soft-dirty";
	case TM_DIRTY_BACKEND: return "backend";
	}
	return "unknown";
}

static int start_backend(tm_region *r, tm_error *err)
{
	if (!r->m.dirty_start)
		return tm_error_set(err, -ENOTSUP, "the %s backend has no dirty "
				    "source of its own",
				    tm_region_backend_name(r));
	return r->m.dirty_start(r->ctx, err);
}

static int start_kernel(tm_region *r, tm_dirty *d, enum tm_dirty_method m,
			tm_error *err)
{
	if (m == TM_DIRTY_BACKEND)
		return start_backend(r, err);
	if (m == TM_DIRTY_UFFD_WP)
		return tm_dirty_uffd_start(r, d, err);
	return tm_dirty_sd_start(r, d, err);
}

/* AUTO: the backend's source, else the best kernel method that works
 * here, else the API alone; the note says why each one before was passed
 * over (a backend without a source of its own is not worth a note). */
static void start_auto(tm_region *r, tm_dirty *d)
{
	static const enum tm_dirty_method order[] = {
		TM_DIRTY_BACKEND, TM_DIRTY_UFFD_WP, TM_DIRTY_SOFT_DIRTY };
	size_t used = 0;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		tm_error e;

		tm_error_clear(&e);
		if (start_kernel(r, d, order[i], &e) == 0) {
			d->method = order[i];
			return;
		}
		if (order[i] == TM_DIRTY_BACKEND && !r->m.dirty_start)
			continue;
		used += (size_t)snprintf(d->note + used, sizeof(d->note) - used,
					 "%s%s unavailable: %.150s",
					 used ? "; " : "",
					 tm_dirty_method_name(order[i]), e.msg);
		if (used >= sizeof(d->note))
			used = sizeof(d->note) - 1;
	}
	d->method = TM_DIRTY_API;
	snprintf(d->note + used, sizeof(d->note) - used,
		 "; only writes through the API are tracked");
}

int tm_region_dirty_start(tm_region *r, enum tm_dirty_method m, tm_error *err)
{
	tm_dirty *d;
	int rc = 0;

	if (m > TM_DIRTY_BACKEND)
		return tm_error_set(err, -EINVAL, "region '%s': unknown dirty "
				    "method %d", r->name, (int)m);
	if (r->dirty)
		return tm_error_set(err, -EBUSY, "region '%s': dirty tracking "
				    "is already running (%s)", r->name,
				    tm_dirty_method_name(r->dirty->method));
	d = calloc(1, sizeof(*d));
	if (!d)
		return tm_error_set(err, -ENOMEM, "region '%s': out of memory",
				    r->name);
	d->sd_pagemap_fd = -1;
	d->uffd_pagemap_fd = -1;
	/* Clean slate; API writes count from here on. */
	for (size_t w = 0; w < tm_words(r->npages); w++)
		atomic_store(&r->api_dirty[w], 0);
	atomic_store(&r->dirty_on, true);
	d->method = m;
	if (m == TM_DIRTY_AUTO)
		start_auto(r, d);
	else if (m != TM_DIRTY_API)
		rc = start_kernel(r, d, m, err);
	if (rc) {
		atomic_store(&r->dirty_on, false);
		free(d);
		return tm_error_wrap(err, rc, "region '%s': dirty tracking "
				     "with %s", r->name,
				     tm_dirty_method_name(m));
	}
	r->dirty = d;
	return 0;
}

/* Fetch-and-clear the API bitmap into the caller's bitmap. */
static void collect_api(tm_region *r, uint64_t *bitmap)
{
	for (size_t w = 0; w < tm_words(r->npages); w++) {
		if (atomic_load_explicit(&r->api_dirty[w],
					 memory_order_relaxed) == 0)
			continue;
		bitmap[w] |= atomic_exchange_explicit(&r->api_dirty[w], 0,
						      memory_order_acq_rel);
	}
}

int tm_region_dirty_collect(tm_region *r, uint64_t *bitmap, tm_error *err)
{
	tm_dirty *d = r->dirty;
	int rc = 0;

	if (!d)
		return tm_error_set(err, -EINVAL, "region '%s': dirty collect "
				    "without dirty tracking started", r->name);
	if (d->method == TM_DIRTY_UFFD_WP)
		rc = tm_dirty_uffd_collect(r, d, bitmap, err);
	else if (d->method == TM_DIRTY_SOFT_DIRTY)
		rc = tm_dirty_sd_collect(r, d, bitmap, err);
	else if (d->method == TM_DIRTY_BACKEND)
		rc = r->m.dirty_collect(r->ctx, bitmap, err);
	collect_api(r, bitmap);
	if (rc)
		return tm_error_wrap(err, rc, "region '%s': dirty collect (%s)",
				     r->name, tm_dirty_method_name(d->method));
	return 0;
}

void tm_dirty_release(tm_region *r)
{
	tm_dirty *d = r->dirty;

	if (!d)
		return;
	atomic_store(&r->dirty_on, false);
	if (d->method == TM_DIRTY_UFFD_WP)
		tm_dirty_uffd_stop(r, d);
	else if (d->method == TM_DIRTY_SOFT_DIRTY)
		tm_dirty_sd_stop(r, d);
	else if (d->method == TM_DIRTY_BACKEND)
		r->m.dirty_stop(r->ctx);
	free(d);
	r->dirty = NULL;
}

void tm_region_dirty_stop(tm_region *r)
{
	tm_dirty_release(r);
}

enum tm_dirty_method tm_region_dirty_method(const tm_region *r)
{
	return r->dirty ? r->dirty->method : TM_DIRTY_AUTO;
}

const char *tm_region_dirty_note(const tm_region *r)
{
	return r->dirty ? r->dirty->note : "";
}
