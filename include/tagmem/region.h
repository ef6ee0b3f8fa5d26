/*
 * tagmem/region.h - tagged regions: pages with their tags, behind one
 * interface that every other part of tagmem (migration, snapshots, swap)
 * uses.
 *
 * Backends (where the data and tags live; tagmem/backend.h is the interface
 * they are written against, and a caller can register its own with
 * tm_region_create_with)
 *   soft  data in an anonymous mapping (or memory the caller hands in), tags
 *         in shadow storage allocated lazily per page: nothing is allocated
 *         for a page that was never tagged. Any host.
 *   mte   this process's PROT_MTE memory on arm64 Linux, after
 *         prctl(PR_SET_TAGGED_ADDR_CTRL). Tags are the hardware allocation
 *         tags, read with LDG and written with STG/ST2G; data and tags are
 *         written together with STGP and zeroed together with STZG/STZ2G.
 *         The library's own accesses set PSTATE.TCO so they never fault.
 * Code above the region asks about capabilities (tm_region_direct: is
 * there plain memory to do I/O from?), never about which backend it has.
 *
 * A page that was never tagged reads as zero tags (like Linux PG_mte_tagged).
 * A write to a page's data or to one of its tags dirties the page.
 *
 * Errors: every call validates its arguments (page index, byte span,
 * granule alignment, tag bits) before touching anything and fails with
 * -ERANGE / -EINVAL and a message naming the region, the page and the byte
 * offset.
 *
 * Thread safety: page, tag and byte calls on one region may run from many
 * threads at once; they take no lock and allocate nothing per call (the soft
 * backend allocates one shadow chunk per 64 pages the first time one of
 * them is tagged). Page reads racing page writes give one of the two
 * contents (or a mix, for the same page); the dirty bit makes the reader
 * come back. Concurrent tag writes to the same page: last writer wins per
 * tag byte. create/destroy, dirty_start/stop and lazy_start/stop must not
 * race with other calls on the same region; discard must not race with
 * other calls on the pages it discards. Different regions are independent,
 * except that soft-dirty tracking shares the process-wide clear_refs (see
 * TM_DIRTY_SOFT_DIRTY).
 */
#ifndef TAGMEM_REGION_H
#define TAGMEM_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/api.h"
#include "tagmem/error.h"
#include "tagmem/tags.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tm_region tm_region;

enum tm_backend {
	TM_BACKEND_SOFT  = 0,
	TM_BACKEND_MTE   = 1,
	TM_BACKEND_OTHER = 2, /* a backend given by methods (tagmem/backend.h);
				 refused by tm_region_create */
};

enum tm_tag_format {
	TM_TAGS_PACKED   = 0, /* 2 tags per byte, low nibble = lower granule */
	TM_TAGS_UNPACKED = 1, /* 1 tag per byte; bytes > 0xF are refused */
};

#define TM_REGION_NAME_MAX 64

typedef struct tm_region_config {
	uint32_t struct_size;      /* sizeof(this struct), or 0 for the 0.1 layout
				     (tagmem/api.h, "Structs that grow") */
	const char *name;         /* copied; at most TM_REGION_NAME_MAX-1 chars */
	size_t size;              /* bytes; a multiple of geom.page_size */
	tm_geom geom;             /* kind TM_META_NONE: a region without tags */
	enum tm_backend backend;
	void *addr;               /* NULL: tagmem maps the memory. Otherwise the
				     caller's memory (page aligned; for mte a
				     PROT_MTE mapping), which tagmem never
				     unmaps. */
} tm_region_config;

/* Create a region. Fails with -ENOTSUP for mte where the CPU/kernel lacks it. */
TM_API int tm_region_create(const tm_region_config *cfg, tm_region **out,
			    tm_error *err);
TM_API void tm_region_destroy(tm_region *r);

/* True when this process can create mte regions (arm64 + HWCAP2_MTE). */
TM_API bool tm_mte_available(void);

TM_API const char *tm_region_name(const tm_region *r);
TM_API size_t tm_region_size(const tm_region *r);
TM_API size_t tm_region_npages(const tm_region *r);
TM_API const tm_geom *tm_region_geom(const tm_region *r);
TM_API enum tm_backend tm_region_backend(const tm_region *r);
TM_API const char *tm_backend_name(enum tm_backend b);
/* The backend's own name ("soft", "mte", or a caller backend's). */
TM_API const char *tm_region_backend_name(const tm_region *r);

/*
 * A pointer for direct access at byte offset off (NULL when off is outside
 * the region). soft: base + off. mte: the address carries the logical tag
 * equal to the allocation tag of that granule (read with LDG), so an access
 * within the granule succeeds; an access through it after the tag changes
 * faults like any MTE access. Stores through it are "foreign" writes: only
 * a kernel dirty method sees them. With lazy placement active, the first
 * access to a missing page faults to the region's fill thread.
 */
TM_API void *tm_region_ptr(tm_region *r, size_t off);

/*
 * The direct pointer: byte off as plain memory of this process, from which
 * ordinary loads, stores and system calls (write(2), O_DIRECT I/O) move the
 * data with no tag checks and no effect on tags -- zero-copy I/O and
 * in-place saves. NULL when the backend has none (mte: tag-checked memory;
 * a backend for another process) or off is outside the region: then copy
 * with tm_region_read_page(s). soft has one. With lazy placement active the
 * first access to a missing page faults to the fill thread, as for
 * tm_region_ptr.
 */
TM_API void *tm_region_direct(tm_region *r, size_t off);

/* ---- whole pages ------------------------------------------------- */

/* Copy page pg's data (page_size bytes) and packed tags (NULL: skip;
 * regions without metadata never write tags). */
TM_API int tm_region_read_page(tm_region *r, size_t pg, void *data, uint8_t *tags,
			       tm_error *err);

/* Pages [pg, pg+n) at once: data gets n pages, tags (when not NULL and
 * the region has metadata) n packed tag blocks, exactly as n
 * tm_region_read_page calls would fill them. data NULL reads the tags
 * alone (the swap pager reads a folio's data on one thread and its tags on
 * another). The soft backend copies the data in one go and the tags one
 * shadow chunk at a time, which is what makes a folio-sized read cheap.
 * Lazy pages are fetched first. */
TM_API int tm_region_read_pages(tm_region *r, size_t pg, size_t n, void *data,
				uint8_t *tags, tm_error *err);

/*
 * Place page pg's data and packed tags together. tags NULL means the page is
 * untagged: its tags become zero and it is marked untagged. When lazy
 * placement is active (tm_region_lazy_start) and the page is missing, it is
 * placed the way a fault is (the backend's place: tags never after the
 * data), so no thread ever sees the data without its tags.
 */
TM_API int tm_region_write_page(tm_region *r, size_t pg, const void *data,
				const uint8_t *tags, tm_error *err);

/* Zero page pg's data and tags together and mark it untagged (soft: the
 * shadow slot is zeroed; the chunk is freed by discard). With lazy placement
 * active a missing page is placed as zeros, no fill. */
TM_API int tm_region_zero_page(tm_region *r, size_t pg, tm_error *err);

/* ---- tags -------------------------------------------------------- */

/* Read page pg's tags in format fmt (packed: packed_bytes, unpacked: granules).
 * A never-tagged page reads as zeros. No-op for regions without metadata. */
TM_API int tm_region_get_tags(tm_region *r, size_t pg, enum tm_tag_format fmt,
			      uint8_t *out, tm_error *err);

/* Write page pg's tags; marks it tagged and dirty. Unpacked input with bits
 * above the tag is refused before anything is written (err names the
 * granule). */
TM_API int tm_region_set_tags(tm_region *r, size_t pg, enum tm_tag_format fmt,
			      const uint8_t *in, tm_error *err);

/* Set tag on [off, off+len): both multiples of the granule; may span pages. */
TM_API int tm_region_set_tag_range(tm_region *r, size_t off, size_t len, uint8_t tag,
				   tm_error *err);

/* Whether page pg was ever tagged (and not zeroed/discarded since): set by
 * set_tags, set_tag_range and write_page with tags; cleared by zero_page,
 * write_page without tags and discard. mte: tags written by foreign STG
 * instructions do not set it. False for pg out of range. */
TM_API bool tm_region_page_tagged(const tm_region *r, size_t pg);

/* Whether page pg may carry non-zero tags: tm_region_page_tagged, or the
 * backend does not own its tags (no TM_BACKEND_F_EXCLUSIVE_TAGS: mte's
 * workload and a kvm guest change them with STG behind tagmem's back).
 * What a saver asks before it skips reading a page's tags: false only when
 * the tags are known to be zero. False for pg out of range. */
TM_API bool tm_region_page_may_be_tagged(const tm_region *r, size_t pg);

/* ---- bytes ------------------------------------------------------- */

/* Byte-granular data access through the API (never faults on mte; write
 * dirties the pages it touches and keeps their tags). On mte a write
 * re-stores the tags of the 32-byte-aligned span it rewrites, so a tag
 * change racing it on the same granules may be undone. */
TM_API int tm_region_write(tm_region *r, size_t off, const void *buf, size_t len,
			   tm_error *err);
TM_API int tm_region_read(tm_region *r, size_t off, void *buf, size_t len,
			  tm_error *err);

/* XXH3-64 (streaming) over each page's data then its packed tags, in page
 * order (regions without metadata: data only). Two regions with equal
 * digests hold the same data and tags. Reads every page: with lazy
 * placement active it fills every missing page. */
TM_API int tm_region_digest(tm_region *r, uint64_t *digest, tm_error *err);

/* ---- dirty tracking --------------------------------------------- */

enum tm_dirty_method {
	TM_DIRTY_AUTO = 0,      /* best available: the backend's own source,
				   else uffd-wp, else soft-dirty, else api */
	TM_DIRTY_API,           /* only writes made through this API */
	TM_DIRTY_UFFD_WP,       /* userfaultfd write-protect, async + PAGEMAP_SCAN */
	TM_DIRTY_SOFT_DIRTY,    /* /proc/self/pagemap soft-dirty + clear_refs */
	TM_DIRTY_BACKEND,       /* the backend's dirty source (backend.h
				   dirty_*; e.g. a VM's dirty log) */
};

/*
 * Start tracking. Writes through the API (data or tags, including discard)
 * are always tracked: the page is marked dirty after the write. A kernel
 * method also catches writers that use tm_region_ptr() directly (and STG on
 * mte memory, which the MMU treats as a write). If the requested method is
 * unavailable, fails with -ENOTSUP and a message saying why; TM_DIRTY_AUTO
 * falls back and records the reason (tm_region_dirty_note). -EBUSY when
 * tracking is already on.
 *
 * TM_DIRTY_UFFD_WP and TM_DIRTY_SOFT_DIRTY need the backend's memory mapped
 * in this process (backend.h mapping: soft, mte, kvm); otherwise -ENOTSUP.
 * TM_DIRTY_BACKEND: the backend's dirty_start/collect/stop, -ENOTSUP for a
 *   backend without them (soft, mte).
 * TM_DIRTY_UFFD_WP: the region's mapping is registered for userfaultfd
 *   write-protect in async mode (UFFD_FEATURE_WP_ASYNC, Linux >= 6.7); a
 *   collect is one PAGEMAP_SCAN with PM_SCAN_WP_MATCHING that returns the
 *   written pages and protects them again atomically: nothing is lost.
 *   Unavailable under qemu-user (no userfaultfd).
 * TM_DIRTY_SOFT_DIRTY: needs CONFIG_MEM_SOFT_DIRTY (checked by a probe at
 *   start). clear_refs is process-wide: a collect clears the soft-dirty
 *   bits of the whole process. tagmem first harvests the bits of every
 *   region tracking with soft-dirty (a process-wide list), so regions do not
 *   lose each other's writes, but any other soft-dirty user in the process
 *   (CRIU-style tools) is disturbed, and disturbs us. A foreign write racing
 *   a collect on a page that was clean when the collect read pagemap can be
 *   lost (no atomic get-and-clear exists for soft-dirty); API writes are
 *   never lost.
 */
TM_API int tm_region_dirty_start(tm_region *r, enum tm_dirty_method m, tm_error *err);

/* OR the pages dirtied since the last collect (or start) into bitmap
 * (tm_region_npages bits, 64 per word, bit i of word w = page 64*w+i), and
 * reset them to clean. A page written concurrently with the collect is
 * either reported now or by the next collect, never lost (but see
 * TM_DIRTY_SOFT_DIRTY). -EINVAL when tracking is off. One collector at a
 * time; writers may run concurrently. */
TM_API int tm_region_dirty_collect(tm_region *r, uint64_t *bitmap, tm_error *err);

TM_API void tm_region_dirty_stop(tm_region *r);
/* The method in use (never AUTO while tracking); TM_DIRTY_AUTO when off. */
TM_API enum tm_dirty_method tm_region_dirty_method(const tm_region *r);
TM_API const char *tm_dirty_method_name(enum tm_dirty_method m);
/* Why AUTO fell back ("uffd-wp unavailable: ..."), or "" */
TM_API const char *tm_region_dirty_note(const tm_region *r);

/* ---- lazy placement (userfaultfd) and discard ------------------- */

/*
 * Fill callback for lazy placement: fill data (page_size bytes) and packed
 * tags for page pg, set *tagged (tags start zeroed, *tagged false). Called
 * only from the region's fault thread, one page at a time, so it needs no
 * locking of its own; it must not access missing pages of the same region
 * (that would wait for itself). Return 0, or a negative errno: then nothing
 * is placed (no garbage, no zero page), the error is recorded
 * (tm_region_lazy_error) and the faulting thread gets SIGBUS, as Linux does
 * when a swap-in read fails. Because only the kernel may send BUS_ADRERR to
 * another thread, the signal comes with si_code SI_QUEUE and the faulting
 * address in si_value.sival_ptr. An API call (read_page, get_tags, ...) on a
 * missing page gets the error back as its return value instead. A later
 * access tries the fill again. -EAGAIN is not an error: "not available
 * yet" (see tm_region_lazy_start_caller).
 */
typedef int (*tm_fill_fn)(void *ctx, tm_region *r, size_t pg, void *data,
			  uint8_t *tags, bool *tagged, tm_error *err);

/*
 * Register the region's mapping for missing faults and start a handler
 * thread: the first access to a missing page calls fn, then the backend
 * places the page's data and tags so that no thread sees the data before
 * its tags, and only then wakes the faulting thread (backend.h place):
 *   soft  shadow tags first, then UFFDIO_COPY of the data (which wakes);
 *   mte   STGP of data and tags into a PROT_MTE staging page, then
 *         UFFDIO_MOVE of that page into place: data and tags arrive in one
 *         page-table update (a plain UFFDIO_COPY would place zero tags).
 *         Needs UFFD_FEATURE_MOVE (Linux >= 6.8) and memory that is private
 *         anonymous PROT_MTE, as tagmem maps it.
 * Pages the process already populated (see /proc/self/pagemap) stay as they
 * are and are present; the others are missing. While active,
 * write_page/zero_page on a missing page place it directly without calling
 * fn. -ENOTSUP, with the reason, for a backend without lazy placement or
 * without a mapping in this process, for pages smaller than the host page,
 * where userfaultfd is unavailable (qemu-user) or lacks a feature the
 * backend needs; -EBUSY when already active. Works together with
 * TM_DIRTY_UFFD_WP (one userfaultfd carries both).
 */
TM_API int tm_region_lazy_start(tm_region *r, tm_fill_fn fn, void *ctx,
				tm_error *err);
/*
 * A fill error, for a caller that owns the fault loop: the fill of page pg
 * (faulting address addr, faulting thread tid) failed with err. Nothing
 * was placed and the faulting thread is still blocked in the kernel; the
 * caller decides: place the page later (tm_region_write_page /
 * zero_page, which wake it), let it fault again (tm_region_lazy_wake), or
 * signal it. Called from the thread that called tm_region_lazy_handle.
 */
typedef void (*tm_fill_error_fn)(void *ctx, tm_region *r, size_t pg,
				 uint64_t addr, int tid, const tm_error *err);

/*
 * Lazy placement with the caller's own fault loop, for an event loop that
 * cannot give tagmem a thread (libuv's uv_backend_fd, QEMU's AioContext):
 * like tm_region_lazy_start but no fault thread is started. The caller
 * polls tm_region_lazy_fd for POLLIN and calls tm_region_lazy_handle,
 * which never blocks. A fill error of a fault goes to on_error instead of
 * the SIGBUS policy (on_error NULL: SIGBUS as with tm_region_lazy_start).
 * API calls that need a missing page (read_page, get_tags, ...) fill it in
 * their own thread, so with this mode fn may run in several threads at
 * once (it must be thread-safe) and, rarely, twice for one page (only one
 * placement wins). For both modes: fn returning -EAGAIN means "not
 * available yet" -- nothing is placed, nothing recorded, the faulting
 * thread keeps waiting until the page is placed (write_page/zero_page) or
 * woken (tm_region_lazy_wake); an API call gets -EAGAIN back. This is what
 * post-copy needs: request the page from the source, return -EAGAIN, place
 * it when it arrives.
 */
TM_API int tm_region_lazy_start_caller(tm_region *r, tm_fill_fn fn, void *ctx,
				       tm_fill_error_fn on_error,
				       void *error_ctx, tm_error *err);
/* The descriptor to poll (POLLIN: a fault is pending); the region owns it.
 * -EINVAL unless started with tm_region_lazy_start_caller. */
TM_API int tm_region_lazy_fd(tm_region *r, tm_error *err);
/*
 * Handle at most one pending fault: fill, place (waking the faulting
 * thread), or hand the error to on_error. Never blocks: 1 when a message
 * was handled, 0 when none was pending, a negative errno when the
 * descriptor could not be read. May be called from several threads.
 */
TM_API int tm_region_lazy_handle(tm_region *r, tm_error *err);
/* Wake the threads waiting on page pg so that they fault again (after a
 * fill said -EAGAIN or failed). Either mode. */
TM_API int tm_region_lazy_wake(tm_region *r, size_t pg, tm_error *err);

/* Stop the fault thread (caller loop: no tm_region_lazy_handle may run)
 * and unregister. Missing pages then read as zero; a thread still waiting
 * on one is woken and sees zeros. */
TM_API void tm_region_lazy_stop(tm_region *r);
/* First error a fill callback returned since lazy_start, or 0 (message
 * copied into err); still available after lazy_stop. */
TM_API int tm_region_lazy_error(tm_region *r, tm_error *err);

/* Drop pages [pg, pg+n): data released (MADV_DONTNEED), tags freed, pages
 * untagged, marked not present and dirty. Without lazy placement they read
 * as zero afterwards (for caller memory that is not private anonymous,
 * whatever MADV_DONTNEED leaves); with it the next access faults to fn. */
TM_API int tm_region_discard(tm_region *r, size_t pg, size_t n, tm_error *err);

/* Whether page pg is resident: placed since the last discard (write_page,
 * zero_page, write, a lazy fill). All pages of a new region are present;
 * lazy_start recomputes it from the page tables. */
TM_API bool tm_region_page_present(const tm_region *r, size_t pg);

#ifdef __cplusplus
}
#endif
#endif
