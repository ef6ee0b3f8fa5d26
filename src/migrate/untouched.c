/*
 * untouched.c - knowing, without touching it, that a destination page is
 * still zero. A zero or tag-only page that arrives needs no data write when
 * the destination page already reads zero; reading it to find out costs a
 * page fault per page (the shared zero page gets mapped), which on a fresh
 * destination was a tenth of the receiver's CPU. QEMU avoids it by assuming
 * its destination RAM is fresh; tagmem cannot assume that (a region may
 * hold anything when the migration starts), so it asks the kernel:
 *
 *   - /proc/self/maps, once per migration: is the region's whole range
 *     private anonymous memory (no file, not shared)?
 *   - /proc/self/pagemap, once per packet: which of its pages have neither
 *     a page (bit 63) nor a swap entry (bit 62)?
 *
 * Such a page of such a mapping was never written, or was discarded, and
 * reads as zero; anything else (a present page, a swapped one, a file or
 * shared mapping, a kernel without pagemap) falls back to reading the page.
 * tm_region_page_tagged covers the tags.
 */
#include "migrate/untouched.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tagmem/region.h"

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)

/* The VMAs covering [lo, hi) are all private anonymous, without gaps. */
static bool private_anon(uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	uintptr_t at = lo;
	bool ok = true;

	if (!f)
		return false;
	while (ok && at < hi && fgets(line, sizeof(line), f)) {
		uintptr_t a, b;
		char perms[8] = "", path[256] = "";
		unsigned long long off;

		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %llx %*s %*u %255[^\n]",
			   &a, &b, perms, &off, path) < 4)
			continue;
		if (b <= at || a >= hi)
			continue;
		/* A gap, a shared or file mapping: not known zero. Named
		 * anonymous memory ("[anon:...]") and the heap are fine. */
		ok = a <= at && perms[3] == 'p' &&
		     (path[0] == 0 || strncmp(path, "[anon:", 6) == 0 ||
		      strcmp(path, "[heap]") == 0);
		at = b;
	}
	fclose(f);
	return ok && at >= hi;
}

void tm_untouched_init(tm_untouched *u, tm_region *const *regions, unsigned n)
{
	memset(u, 0, sizeof(*u));
	u->fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	for (unsigned i = 0; i < n && i < TM_UNTOUCHED_MAX; i++) {
		uintptr_t lo = (uintptr_t)tm_region_direct(regions[i], 0);

		u->anon[i] = u->fd >= 0 && lo &&
			     private_anon(lo, lo + tm_region_size(regions[i]));
	}
}

void tm_untouched_fini(tm_untouched *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}

/* Entries for host pages [h, h + n) of this process, n <= 64. */
static bool entries(const tm_untouched *u, uintptr_t h, size_t n, uint64_t *ent)
{
	ssize_t want = (ssize_t)(n * sizeof(*ent));

	return pread(u->fd, ent, (size_t)want, (off_t)(h * sizeof(*ent))) == want;
}

bool tm_untouched_scan(const tm_untouched *u, unsigned ri, tm_region *r,
		       size_t first, size_t n, uint64_t *bits)
{
	size_t ps = tm_region_geom(r)->page_size, host = (size_t)sysconf(_SC_PAGESIZE);
	size_t per = ps / host, done = 0;
	uintptr_t h0 = (uintptr_t)tm_region_direct(r, first * ps) / host;
	uint64_t ent[64];

	memset(bits, 0, (n + 63) / 64 * 8);
	if (ri >= TM_UNTOUCHED_MAX || !u->anon[ri] || ps % host || per > 64)
		return false;
	while (done < n) {
		size_t k = (64 / per < n - done) ? 64 / per : n - done;

		if (!entries(u, h0 + done * per, k * per, ent))
			return false;
		for (size_t i = 0; i < k; i++) {
			bool none = true;

			for (size_t j = 0; j < per; j++)
				none = none && !(ent[i * per + j] & (PM_PRESENT | PM_SWAPPED));
			if (none && !tm_region_page_tagged(r, first + done + i))
				bits[(done + i) / 64] |= 1ull << ((done + i) % 64);
		}
		done += k;
	}
	return true;
}
