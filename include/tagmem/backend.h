/*
 * tagmem/backend.h - the region backend interface: where a region's data and
 * tags live, as a versioned table of methods a caller can implement.
 *
 * A region (tagmem/region.h) is pages with their tags. The region core owns
 * everything that is the same for every kind of memory: argument checks
 * and errors that name region/page/offset, the per-page "tagged" and
 * "present" state, API dirty tracking, the kernel dirty methods (uffd-wp,
 * soft-dirty) on memory mapped in this process, lazy placement's
 * userfaultfd, fault thread and fill callback, digests. A backend only moves
 * bytes and tags. The built-in backends are written against this interface
 * exactly as a caller's would be:
 *
 *   soft    data in anonymous memory (or the caller's), tags in lazily
 *           allocated shadow storage; any host.
 *   mte     this process's PROT_MTE memory (arm64 Linux): LDG/STG/STGP/STZG.
 *
 * and the interface is shaped for the ones to come:
 *
 *   kvm     guest RAM of a VMM: data through the VMM's own (non-PROT_MTE)
 *           mapping = direct pointer and mapping; tags through
 *           KVM_ARM_MTE_COPY_TAGS (unpacked, one byte per granule: batch n
 *           pages per ioctl in read_tags/write_tags); dirty_* from
 *           KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG; place = UFFDIO_COPY
 *           with UFFDIO_COPY_MODE_DONTWAKE, COPY_TAGS TO_GUEST, UFFDIO_WAKE.
 *   ptrace  another process: data with process_vm_readv/writev, tags with
 *           PTRACE_PEEKMTETAGS / POKEMTETAGS (batched); no direct pointer,
 *           no mapping, no dirty source, no lazy placement.
 *
 * ---- How a backend is used ----------------------------------------------
 *
 * The caller fills a tm_backend_methods table (usually a static const one)
 * and creates a region with tm_region_create_with(cfg, methods, ctx). ctx
 * is the backend's own state, opaque to tagmem: every method gets it back as
 * its first argument, and the backend never sees the region's internals.
 * The table is copied at creation, so it need not outlive the call.
 *
 * Page numbers and byte offsets are the region's (page pg covers bytes
 * [pg * page_size, (pg + 1) * page_size)). Tags are always packed here, in
 * the region's geometry (tagmem/tags.h: for MTE two tags per byte, low
 * nibble = lower-address granule, page_size / 32 bytes per page); the core
 * converts the unpacked format of the public API. A backend whose medium is
 * unpacked (KVM, ptrace) packs and unpacks with tm_tags_pack/unpack.
 *
 * ---- What the core validates, so the backend need not -------------------
 *
 *  - pg < npages, n >= 1 and pg + n <= npages; off + len <= size; len > 0;
 *  - set_tag_range's span lies inside one page and is granule aligned, and
 *    its tag has no bits above the geometry's width;
 *  - packed tag buffers hold n * (tag bytes per page); unpacked input was
 *    checked for bits above the tag before anything was written;
 *  - regions without metadata (TM_META_NONE) never call a tag method and
 *    never pass a tag buffer;
 *  - the lifecycle rules of tagmem/region.h (create/destroy, dirty start/
 *    stop and lazy start/stop do not race other calls; discard does not
 *    race calls on its own pages), so the methods marked "lifecycle" below
 *    are never called concurrently with anything else on the region.
 * The core also keeps the per-page tagged/present bits and API dirty bits
 * (a backend does not report them), and wraps every error a method returns
 * with the region's name, the page and the byte offset. A method fills err
 * with what only it knows (the ioctl, the address, the errno) and returns
 * the negative errno.
 *
 * ---- Thread safety -------------------------------------------------------
 *
 * Data and tag methods (read_data, write_data, read_tags, write_tags,
 * read_pages, write_pages, set_tag_range, direct, ptr, page_state) are
 * called from any number of threads at once, also on the same page: they
 * must keep no unlocked shared scratch state. Concurrent writes to the same
 * bytes or tags may land in either order (last writer wins per byte / per
 * tag), but a write must never disturb bytes or tags outside its span.
 * Other members say what they need.
 *
 * ---- Versions ------------------------------------------------------------
 *
 * `version` says which members the table has: the core reads a member
 * introduced in version K only when version >= K, so an older (shorter)
 * table is never read past its end. A later version of this header only
 * appends members after the last one of the version before; it never
 * reorders, removes or changes the meaning of one. Every member added after
 * version 1 is optional with a stated default, so a backend written for
 * version N keeps working unchanged (source and binary) with a library of
 * version N+1, and a backend that sets a higher version than the library
 * knows is used as the highest version the library knows. Set .version to
 * the number of the version whose members you filled in (today: 1).
 */
#ifndef TAGMEM_BACKEND_H
#define TAGMEM_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/api.h"
#include "tagmem/error.h"
#include "tagmem/region.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The newest version of tm_backend_methods this header describes. */
#define TM_BACKEND_VERSION 1

/* tm_backend_methods.flags */
/* Tags change only through this table's methods (no workload, guest or
 * other process writes them behind tagmem's back). Then the core's tagged
 * bit is exact, and debug builds check that a page it calls untagged reads
 * zero tags. soft sets it; mte (STG by the workload) does not. */
#define TM_BACKEND_F_EXCLUSIVE_TAGS 0x1u

/* page_state bits; the others are reserved: a backend writes them 0. */
#define TM_PAGE_RESIDENT 0x1u   /* memory backs the page now */

/* page number passed to check() for the backend's region-wide state */
#define TM_CHECK_ALL ((size_t)-1)

typedef struct tm_backend_methods {
	/* ---- version 1 ------------------------------------------------ */

	/* 1 for a table with the members below. The core refuses < 1. */
	int version;
	/* Short name for messages and tm_region_backend_name ("kvm"). */
	const char *name;
	/* TM_BACKEND_F_* */
	uint32_t flags;

	/*
	 * Optional, lifecycle. Called once by tm_region_create_with after
	 * the core has validated cfg and before any other method: the
	 * backend checks that it can hold this region (size, geometry,
	 * layout: a memslot of another size, a mapping without PROT_MTE) and
	 * refuses with -EINVAL / -ENOTSUP and a message naming the slot or
	 * address. It may call the accessors tm_region_name, _size, _npages
	 * and _geom on r, nothing else. If it fails, creation fails and no
	 * other method (not even detach) is called.
	 */
	int (*attach)(void *ctx, tm_region *r, tm_error *err);
	/*
	 * Optional, lifecycle. Called once by tm_region_destroy, last. After
	 * it returns the core never uses ctx again; whether detach frees ctx
	 * is the backend's business (the built-in ones do).
	 */
	void (*detach)(void *ctx);

	/* Required. Copy bytes [off, off+len) of the region's data, within
	 * one page or across pages, any alignment. Never faults on tags
	 * (mte reads with tag checks suppressed). */
	int (*read_data)(void *ctx, uint64_t off, void *buf, size_t len,
			 tm_error *err);
	/* Required. Store bytes [off, off+len), keeping every tag. */
	int (*write_data)(void *ctx, uint64_t off, const void *buf, size_t len,
			  tm_error *err);
	/* Required when the region has metadata. Copy the packed tags of
	 * pages [pg, pg+n) to packed (n blocks, page after page). A page
	 * whose tags were never set reads as zero tags. n may be anything
	 * from 1 to a whole region: a backend that pays per call
	 * (KVM_ARM_MTE_COPY_TAGS, PTRACE_PEEKMTETAGS) batches here. */
	int (*read_tags)(void *ctx, size_t pg, size_t n, uint8_t *packed,
			 tm_error *err);
	/* Required when the region has metadata. Set the tags of pages
	 * [pg, pg+n) from packed, keeping the data. */
	int (*write_tags)(void *ctx, size_t pg, size_t n,
			  const uint8_t *packed, tm_error *err);

	/*
	 * Optional. Pages [pg, pg+n) whole: data (n * page_size bytes, or
	 * NULL: tags only) and packed tags (or NULL: data only; never both
	 * NULL). Absent: read_data over the span, then read_tags.
	 */
	int (*read_pages)(void *ctx, size_t pg, size_t n, void *data,
			  uint8_t *packed, tm_error *err);
	/*
	 * Optional. Place pages [pg, pg+n) whole: data (NULL: zeros) and
	 * packed tags (NULL: zero tags) together. A backend that can store
	 * both in one step (mte: STGP, STZG) does so here, so no reader sees
	 * new data under old tags. Absent: write_tags (zeros for NULL) and
	 * then write_data (zeros for NULL).
	 */
	int (*write_pages)(void *ctx, size_t pg, size_t n, const void *data,
			   const uint8_t *packed, tm_error *err);
	/*
	 * Optional. Set every granule of [off, off+len) (inside one page,
	 * granule aligned) to tag, keeping the other granules' tags.
	 * Absent: the core reads the page's tags, changes them and writes
	 * them back, so a racing tag write to the same page's other granules
	 * may be undone; a backend that can do better implements this.
	 */
	int (*set_tag_range)(void *ctx, uint64_t off, size_t len, uint8_t tag,
			     tm_error *err);

	/*
	 * Optional. State of pages [pg, pg+n): one byte per page of
	 * TM_PAGE_* bits (reserved bits 0). Read once at creation: pages
	 * that are not TM_PAGE_RESIDENT start "not present"
	 * (tm_region_page_present), so savers may skip them. Absent: every
	 * page starts present. (Lazy placement does not use it: which pages
	 * are missing is what the mapping's page tables say.)
	 */
	int (*page_state)(void *ctx, size_t pg, size_t n, uint8_t *state,
			  tm_error *err);
	/*
	 * Optional. Release pages [pg, pg+n): afterwards they read as zero
	 * data and zero tags, and, when the backend has a mapping, they are
	 * missing from it again (MADV_DONTNEED), so with lazy placement the
	 * next access faults to the fill callback. Never called concurrently
	 * with other calls on the same pages. Absent: the core writes zero
	 * data and zero tags (write_pages or write_tags + write_data) and
	 * the pages stay resident.
	 */
	int (*discard)(void *ctx, size_t pg, size_t n, tm_error *err);

	/*
	 * Optional: the direct pointer. The address of the byte at off
	 * (< size) as plain memory of this process: ordinary loads, stores
	 * and system calls (write(2), O_DIRECT) on [ptr, page end) read and
	 * write the data with no tag checks and no side effect on tags, so
	 * callers may do zero-copy I/O and in-place snapshot saves from it.
	 * soft and kvm have it; mte (tag-checked memory) and ptrace (another
	 * process) do not. Stable for the region's lifetime.
	 */
	void *(*direct)(void *ctx, uint64_t off);
	/*
	 * Optional. What tm_region_ptr returns: the address a workload in
	 * this process uses for byte off (mte: carrying the allocation tag of
	 * its granule, so a checked access passes). Absent: direct, or NULL.
	 */
	void *(*ptr)(void *ctx, uint64_t off);
	/*
	 * Optional. The memory that holds the data, mapped in this process:
	 * base (host-page aligned, untagged) and len (at least the region's
	 * size rounded up to host pages), with byte off at base + off. Asked
	 * once at creation and fixed for the region's lifetime. It is what
	 * the core registers with userfaultfd (lazy placement, uffd-wp dirty
	 * tracking) and reads in /proc/self/pagemap (soft-dirty, residency at
	 * lazy start). Absent: those features are -ENOTSUP for the region.
	 */
	int (*mapping)(void *ctx, void **base, size_t *len);

	/*
	 * Optional, all three or none: the backend's own dirty source, used
	 * by TM_DIRTY_BACKEND (and first by TM_DIRTY_AUTO). It reports
	 * writers the API does not see (a guest's stores and STGs through
	 * the VM's dirty log); writes through the API are tracked by the
	 * core anyway. start and stop are lifecycle calls; start returns
	 * -ENOTSUP with the reason when this instance cannot track.
	 * collect ORs the region pages written since the last collect (or
	 * start) into bitmap (npages bits, 64 per word, bit i of word w =
	 * page 64 * w + i) and re-arms them; a write racing the collect is
	 * reported now or by the next collect, never lost. One collect at a
	 * time, concurrently with the data and tag methods.
	 */
	int (*dirty_start)(void *ctx, tm_error *err);
	int (*dirty_collect)(void *ctx, uint64_t *bitmap, tm_error *err);
	void (*dirty_stop)(void *ctx);

	/*
	 * Lazy placement (needs mapping). uffd_features: UFFD_FEATURE_* bits
	 * place needs beyond what the core asks for; requested at UFFDIO_API
	 * when the region's userfaultfd is opened.
	 */
	uint64_t uffd_features;
	/* Optional, lifecycle: at tm_region_lazy_start, with the region's
	 * userfaultfd and the features the kernel granted; sets up staging
	 * and refuses (-ENOTSUP, naming what is missing) what it cannot do. */
	int (*place_start)(void *ctx, int uffd, uint64_t features,
			   tm_error *err);
	/*
	 * Required for lazy placement (absent: tm_region_lazy_start is
	 * -ENOTSUP). Place missing page pg of the mapping (registered with
	 * uffd, UFFDIO_REGISTER_MODE_MISSING) with data (page aligned,
	 * page_size bytes, outside the region; NULL: zeros) and packed tags
	 * (NULL: zero tags), such that NO thread can see the data before its
	 * tags are in place, then wake the threads faulting on it. soft:
	 * shadow tags, then UFFDIO_COPY (which wakes). mte: STGP into a
	 * PROT_MTE staging page, then UFFDIO_MOVE (data and tags arrive in
	 * one page table update). kvm: UFFDIO_COPY with DONTWAKE,
	 * KVM_ARM_MTE_COPY_TAGS, UFFDIO_WAKE. Returns 0 when placed,
	 * -EEXIST when the page turned out to be mapped already (then its
	 * data and tags must be left as they were), another negative errno
	 * when nothing could be placed. The core calls place for one page at
	 * a time per page (never twice at once for the same page), from its
	 * fault thread and from API threads at once for different pages.
	 */
	int (*place)(void *ctx, int uffd, size_t pg, const void *data,
		     const uint8_t *packed, tm_error *err);
	/* Optional, lifecycle: at tm_region_lazy_stop. */
	void (*place_stop)(void *ctx);

	/*
	 * Optional, for debug builds and tests: check the backend's own
	 * bookkeeping of page pg, which the core calls tagged or not (for
	 * TM_CHECK_ALL: region-wide state, with tagged false and no call
	 * running). Return 0, or -EFAULT with what is broken (the core adds
	 * region and page). May run concurrently with the data and tag
	 * methods; the core retries a failure for a while before it reports
	 * it, since a writer may be between its steps.
	 */
	int (*check)(void *ctx, size_t pg, bool tagged, tm_error *err);
} tm_backend_methods;

/*
 * Create a region whose data and tags live in a caller's backend: cfg gives
 * name, size and geometry exactly as for tm_region_create (struct_size
 * included; cfg->backend is ignored, cfg->addr must be NULL: the memory is
 * the backend's business).
 * Validates cfg and the table (version >= 1, the required members for the
 * geometry, dirty_* all or none), copies the table, calls attach, then
 * page_state and mapping. On failure nothing of ctx is used afterwards and
 * *out is NULL. tm_region_backend(r) is TM_BACKEND_OTHER.
 */
TM_API int tm_region_create_with(const tm_region_config *cfg,
				 const tm_backend_methods *methods, void *ctx,
				 tm_region **out, tm_error *err);

/* The ctx a region was created with (for the built-in backends, theirs). */
TM_API void *tm_region_backend_ctx(const tm_region *r);

#ifdef __cplusplus
}
#endif
#endif
