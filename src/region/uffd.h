/*
 * uffd.h - the region's one userfaultfd, shared by kernel dirty tracking
 * (write-protect, async) and lazy placement (missing faults): a VMA can be
 * registered with only one userfaultfd context, so both features use the
 * same descriptor and its registration carries the union of their modes.
 *
 * Also the uapi constants and structures newer than the installed kernel
 * headers (Debian 12 ships 6.1 headers; PAGEMAP_SCAN and WP_ASYNC came in
 * 6.7, UFFDIO_MOVE in 6.8), with values from Linux
 * include/uapi/linux/{fs,userfaultfd}.h.
 */
#ifndef TM_REGION_UFFD_H
#define TM_REGION_UFFD_H

#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "region/region_internal.h"

#ifndef UFFD_FEATURE_EXACT_ADDRESS
#define UFFD_FEATURE_EXACT_ADDRESS (1ull << 11)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1ull << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1ull << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1ull << 16)
#endif
#ifndef UFFDIO_MOVE
/* Linux 6.8 (include/uapi/linux/userfaultfd.h) */
struct uffdio_move {
	uint64_t dst;
	uint64_t src;
	uint64_t len;
#define UFFDIO_MOVE_MODE_DONTWAKE ((uint64_t)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((uint64_t)1 << 1)
	uint64_t mode;
	int64_t move;       /* bytes moved, or -errno; written by the kernel */
};
#define UFFDIO_MOVE _IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED (1ull << 0)
#define PAGE_IS_WRITTEN (1ull << 1)
#define PM_SCAN_WP_MATCHING (1ull << 0)
#define PM_SCAN_CHECK_WPASYNC (1ull << 1)
struct page_region {
	uint64_t start;
	uint64_t end;       /* exclusive */
	uint64_t categories;
};
struct pm_scan_arg {
	uint64_t size;
	uint64_t flags;
	uint64_t start;
	uint64_t end;
	uint64_t walk_end;  /* written by the kernel */
	uint64_t vec;
	uint64_t vec_len;
	uint64_t max_pages;
	uint64_t category_inverted;
	uint64_t category_mask;
	uint64_t category_anyof_mask;
	uint64_t return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

struct tm_uffd {
	int fd;
	uint64_t features;  /* granted by UFFDIO_API */
	uint64_t modes;     /* UFFDIO_REGISTER_MODE_* now registered */
};

/* Open the region's userfaultfd if needed, with every feature tagmem can
 * use that the kernel offers (and those the backend's uffd_features asks
 * for). -ENOTSUP with the reason when unavailable, or when the backend has
 * no mapping in this process to register. */
int tm_uffd_get(tm_region *r, tm_error *err);
/* Set the registered modes of the region's mapping to `modes` (0: none;
 * the descriptor is closed when nothing uses it). */
int tm_uffd_set_modes(tm_region *r, uint64_t modes, tm_error *err);

#endif
