/*
 * dirty_softdirty.c - dirty tracking with the kernel's soft-dirty bit
 * (bit 55 of /proc/self/pagemap entries), re-armed by writing "4" to
 * /proc/self/clear_refs.
 *
 * clear_refs is process-wide: it clears the soft-dirty bit of every page of
 * the process. So that one region's collect does not wipe another region's
 * pending writes, every region tracking with soft-dirty is on one
 * process-wide list; a collect (or start) first harvests the bits of all of
 * them into their own pending bitmaps, then clears. This list is the only
 * process-wide state in the region part, and it exists because the kernel
 * state it protects is process-wide. Anything else in the process that uses
 * soft-dirty (CRIU-style tools) is disturbed by our clears, and we by
 * theirs.
 *
 * Limit: a write that lands between the harvest and the clear of a page
 * that was clean at harvest time is lost (the kernel offers no atomic
 * get-and-clear for soft-dirty). uffd-wp has no such window; AUTO prefers
 * it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region/dirty.h"
#include "tagmem/error.h"

#define PM_SOFT_DIRTY (1ull << 55)
#define PM_STEP 512u /* pagemap entries per pread */

static pthread_mutex_t sd_lock = PTHREAD_MUTEX_INITIALIZER;
static tm_dirty *sd_list;

static int read_entries(int fd, uintptr_t addr, size_t n, uint64_t *out)
{
	size_t host = (size_t)sysconf(_SC_PAGESIZE);
	off_t off = (off_t)(addr / host * 8);
	ssize_t got = pread(fd, out, n * 8, off);

	if (got < 0)
		return -errno;
	return (size_t)got == n * 8 ? 0 : -EIO;
}

/* OR the soft-dirty pages of d's region into d->sd_pending. */
static int harvest(tm_dirty *d)
{
	tm_region *r = d->sd_region;
	size_t host = (size_t)sysconf(_SC_PAGESIZE);
	size_t nhost = r->map_len / host;

	for (size_t h = 0; h < nhost; h += PM_STEP) {
		size_t n = nhost - h < PM_STEP ? nhost - h : PM_STEP;
		int rc = read_entries(d->sd_pagemap_fd,
				      (uintptr_t)r->map_base + h * host, n,
				      d->sd_buf);

		if (rc)
			return rc;
		for (size_t i = 0; i < n; i++) {
			size_t pg = (h + i) * host >> r->page_shift;

			if ((d->sd_buf[i] & PM_SOFT_DIRTY) && pg < r->npages)
				tm_abit_set(d->sd_pending, pg);
		}
	}
	return 0;
}

static int clear_refs(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "4", 1) != 1)
		rc = -errno;
	close(fd);
	return rc;
}

/* With sd_lock held: harvest every tracked region, then clear. */
static int harvest_all_and_clear(void)
{
	for (tm_dirty *x = sd_list; x; x = x->sd_next) {
		int rc = harvest(x);

		if (rc)
			return rc;
	}
	return clear_refs();
}

/*
 * Does this kernel (or emulator) report soft-dirty for our addresses? The
 * probe pages are mapped before the clear (a new mapping reads as all
 * soft-dirty until the next clear), one is written after it, and only that
 * one may read as soft-dirty. Called with sd_lock held.
 */
static int probe(int pagemap_fd, volatile uint8_t *p, tm_error *err)
{
	uint64_t e[2] = { 0, 0 };
	int rc;

	p[0] = 1;
	rc = read_entries(pagemap_fd, (uintptr_t)p, 2, e);
	if (rc)
		return tm_error_set(err, -ENOTSUP, "cannot read "
				    "/proc/self/pagemap: %s", strerror(-rc));
	if (!(e[0] & PM_SOFT_DIRTY) || (e[1] & PM_SOFT_DIRTY))
		return tm_error_set(err, -ENOTSUP, "the soft-dirty bit is not "
				    "reported for a page written after "
				    "clear_refs (kernel without "
				    "CONFIG_MEM_SOFT_DIRTY, or an emulated "
				    "/proc)");
	return 0;
}

int tm_dirty_sd_start(tm_region *r, tm_dirty *d, tm_error *err)
{
	size_t host = (size_t)sysconf(_SC_PAGESIZE);
	volatile uint8_t *p;
	int rc;

	d->sd_region = r;
	if (!r->map_base)
		return tm_error_set(err, -ENOTSUP, "the %s backend has no mapping "
				    "in this process for /proc/self/pagemap",
				    tm_region_backend_name(r));
	d->sd_pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (d->sd_pagemap_fd < 0)
		return tm_error_set(err, -ENOTSUP, "cannot open "
				    "/proc/self/pagemap: %s", strerror(errno));
	d->sd_buf = calloc(PM_STEP, sizeof(uint64_t));
	d->sd_pending = calloc(tm_words(r->npages), sizeof(uint64_t));
	if (!d->sd_buf || !d->sd_pending) {
		tm_dirty_sd_stop(r, d);
		return tm_error_set(err, -ENOMEM, "out of memory");
	}
	p = mmap(NULL, 2 * host, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		tm_dirty_sd_stop(r, d);
		return tm_error_set(err, -ENOMEM, "probe mmap failed");
	}
	pthread_mutex_lock(&sd_lock);
	rc = harvest_all_and_clear();
	if (rc)
		rc = tm_error_set(err, -ENOTSUP, "writing /proc/self/"
				  "clear_refs failed: %s", strerror(-rc));
	else
		rc = probe(d->sd_pagemap_fd, p, err);
	if (!rc) {
		d->sd_next = sd_list;
		sd_list = d;
	}
	pthread_mutex_unlock(&sd_lock);
	munmap((void *)p, 2 * host);
	if (rc)
		tm_dirty_sd_stop(r, d);
	return rc;
}

int tm_dirty_sd_collect(tm_region *r, tm_dirty *d, uint64_t *bitmap,
			tm_error *err)
{
	int rc;

	pthread_mutex_lock(&sd_lock);
	rc = harvest_all_and_clear();
	pthread_mutex_unlock(&sd_lock);
	for (size_t w = 0; w < tm_words(r->npages); w++)
		bitmap[w] |= atomic_exchange(&d->sd_pending[w], 0);
	if (rc)
		return tm_error_set(err, rc, "soft-dirty harvest failed: %s",
				    strerror(-rc));
	return 0;
}

void tm_dirty_sd_stop(tm_region *r, tm_dirty *d)
{
	(void)r;
	pthread_mutex_lock(&sd_lock);
	for (tm_dirty **pp = &sd_list; *pp; pp = &(*pp)->sd_next) {
		if (*pp == d) {
			*pp = d->sd_next;
			break;
		}
	}
	pthread_mutex_unlock(&sd_lock);
	if (d->sd_pagemap_fd >= 0)
		close(d->sd_pagemap_fd);
	d->sd_pagemap_fd = -1;
	free(d->sd_buf);
	free(d->sd_pending);
	d->sd_buf = NULL;
	d->sd_pending = NULL;
	d->sd_next = NULL;
}
