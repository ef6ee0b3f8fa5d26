/*
 * dirty_uffd.c - dirty tracking with userfaultfd write-protect in async
 * mode (UFFD_FEATURE_WP_ASYNC, Linux >= 6.7): the kernel resolves write
 * faults itself and only records "written" in the page table; PAGEMAP_SCAN
 * with PM_SCAN_WP_MATCHING reads the written pages and write-protects them
 * again in one step under the page-table lock, so a write that lands after
 * a page was scanned faults again and is reported by the next collect:
 * nothing is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "region/dirty.h"
#include "region/uffd.h"
#include "tagmem/error.h"

/* page_region entries per PAGEMAP_SCAN call. */
#define SCAN_VEC 256

static int protect_all(tm_region *r, tm_error *err)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)r->map_base, .len = r->map_len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	if (ioctl(r->uffd->fd, UFFDIO_WRITEPROTECT, &wp))
		return tm_error_set(err, -errno, "UFFDIO_WRITEPROTECT failed: "
				    "%s", strerror(errno));
	return 0;
}

/* One scan proves PAGEMAP_SCAN exists and the range is async-WP. */
static int scan(tm_region *r, tm_dirty *d, uint64_t *bitmap, tm_error *err);

int tm_dirty_uffd_start(tm_region *r, tm_dirty *d, tm_error *err)
{
	uint64_t had;
	int rc = tm_uffd_get(r, err);

	if (rc)
		return rc;
	had = r->uffd->modes;
	if (!(r->uffd->features & UFFD_FEATURE_WP_ASYNC)) {
		rc = tm_error_set(err, -ENOTSUP, "the kernel has no "
				  "UFFD_FEATURE_WP_ASYNC (needs Linux >= 6.7)");
		goto fail;
	}
	d->uffd_pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	d->uffd_vec = calloc(SCAN_VEC, sizeof(struct page_region));
	if (d->uffd_pagemap_fd < 0 || !d->uffd_vec) {
		rc = tm_error_set(err, -ENOTSUP, "cannot open "
				  "/proc/self/pagemap: %s", strerror(errno));
		goto fail;
	}
	rc = tm_uffd_set_modes(r, had | UFFDIO_REGISTER_MODE_WP, err);
	if (!rc)
		rc = protect_all(r, err);
	if (!rc)
		rc = scan(r, d, NULL, err);
	if (rc == -EINVAL || rc == -ENOTTY)
		rc = tm_error_set(err, -ENOTSUP, "PAGEMAP_SCAN unsupported "
				  "(needs Linux >= 6.7): %s", strerror(-rc));
	if (!rc)
		return 0;
fail:
	tm_uffd_set_modes(r, had, NULL);
	tm_dirty_uffd_stop(r, d);
	return rc ? rc : -ENOTSUP;
}

/* Mark the region pages covering host range [a, b). */
static void mark(tm_region *r, uint64_t *bitmap, uint64_t a, uint64_t b)
{
	uintptr_t base = (uintptr_t)r->map_base;
	size_t first = (size_t)(a - base) >> r->page_shift;
	size_t last = (size_t)(b - 1 - base) >> r->page_shift;

	for (size_t pg = first; pg <= last && pg < r->npages; pg++)
		bitmap[pg >> 6] |= (uint64_t)1 << (pg & 63);
}

static int scan(tm_region *r, tm_dirty *d, uint64_t *bitmap, tm_error *err)
{
	struct page_region *vec = d->uffd_vec;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = (uintptr_t)r->map_base,
		.end = (uintptr_t)r->map_base + r->map_len,
		.vec = (uintptr_t)vec,
		.vec_len = SCAN_VEC,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};

	for (;;) {
		int n = ioctl(d->uffd_pagemap_fd, PAGEMAP_SCAN, &arg);

		if (n < 0)
			return tm_error_set(err, -errno, "PAGEMAP_SCAN of "
					    "%p+%#zx failed: %s",
					    (void *)r->map_base, r->map_len,
					    strerror(errno));
		for (int i = 0; bitmap && i < n; i++)
			mark(r, bitmap, vec[i].start, vec[i].end);
		if (arg.walk_end >= arg.end)
			return 0;
		arg.start = arg.walk_end;
	}
}

int tm_dirty_uffd_collect(tm_region *r, tm_dirty *d, uint64_t *bitmap,
			  tm_error *err)
{
	return scan(r, d, bitmap, err);
}

void tm_dirty_uffd_stop(tm_region *r, tm_dirty *d)
{
	if (r->uffd && (r->uffd->modes & UFFDIO_REGISTER_MODE_WP))
		tm_uffd_set_modes(r, r->uffd->modes & ~UFFDIO_REGISTER_MODE_WP,
				  NULL);
	else if (r->uffd && r->uffd->modes == 0)
		tm_uffd_set_modes(r, 0, NULL);
	if (d->uffd_pagemap_fd >= 0)
		close(d->uffd_pagemap_fd);
	d->uffd_pagemap_fd = -1;
	free(d->uffd_vec);
	d->uffd_vec = NULL;
}
