/*
 * tagmem/swap.h - a pager that swaps tagged folios out to a swap file and
 * back in, keeping their tags in a compressed, sparse tag store.
 *
 * This is the userspace equivalent of Linux's anonymous swap on arm64 MTE
 * (arch/arm64/mm/mteswap.c plus the large-folio work of commit
 * f238b8c33c67 and the EA0 compression series), usable by a VMM or a
 * runtime to overcommit a tagged region.
 *
 * Objects
 *   tm_swapfile  a swap file of fixed-size slots (one slot = one page of the
 *                file's page size), its slot allocator and its tag store.
 *                Slot 0 holds the file header and is never allocated, as in
 *                Linux. Format: docs/FORMAT.md §swap.
 *   tm_pager     one tagged region attached to one swap file: which of the
 *                region's pages are swapped out, in which folio, at which
 *                slots. Several pagers may share one swap file.
 *
 * Folios
 *   A folio of order k is 2^k pages starting at a page index that is a
 *   multiple of 2^k, k = 0..TM_SWAP_MAX_ORDER (4 KiB .. 2 MiB with 4 KiB
 *   pages). It is swapped out to 2^k contiguous slots whose first slot is
 *   also a multiple of 2^k (natural alignment, like Linux folio_swap()), so
 *   the slot of subpage i is always the folio's first slot + i.
 *
 * Tags
 *   Swap-out reads the data and packed tags of every subpage, writes the
 *   data (one large, aligned pwrite per folio), stores the tags of tagged
 *   subpages in the tag store under their slot number, and releases the
 *   memory (tm_region_discard). Untagged subpages store nothing (Linux only
 *   saves pages with PG_mte_tagged). A tag-store value is an EA0 inline
 *   handle (8 bytes, no allocation) when the tags fit, otherwise the smaller
 *   of a stream-codec encoding or the raw packed tags (128 B per 4 KiB page).
 *
 * Swap-in
 *   - on access: with tm_pager_config.lazy the region is registered for
 *     userfaultfd missing faults (tm_region_lazy_start); the first access
 *     to a swapped page runs the pager's fill callback in the region's fault
 *     thread, which reads the slot and hands data and tags to the region;
 *     the region installs the tags before UFFDIO_COPY wakes the faulting
 *     thread, so no thread ever sees the page without its tags.
 *   - explicitly: tm_swap_in() / tm_swap_in_page(); this is what the mte
 *     backend uses, where userfaultfd cannot place tags.
 *   Page-by-page restore places one subpage; whole-folio restore reads the
 *   folio with one pread and places every subpage still swapped (subpages
 *   discarded meanwhile are skipped).
 *
 * Errors
 *   A slot that cannot be read (I/O error, file truncated under the pager)
 *   fails with the slot number and file offset in err, and NOTHING is
 *   placed: the page stays swapped out, its tags stay in the store, and a
 *   faulting thread gets SIGBUS (the region's lazy-placement contract).
 *
 * Locking and thread safety
 *   All calls on a pager may be made from many threads at once, and faults
 *   may race with them. Three kinds of lock, always taken in this order:
 *     1. the folio lock (like PG_locked): a mutex per 2^TM_SWAP_MAX_ORDER-
 *        page block of the region (every folio lies inside one block),
 *        held for the whole of a swap-out, swap-in or discard of pages in
 *        that block, including its file I/O and region calls;
 *     2. region-internal locks (inside tm_region_* calls);
 *     3. leaf locks: the slot allocator's and the tag store's mutexes, held
 *        only for a few instructions, never across I/O or region calls, and
 *        the pager's tag-worker mutex (a helper thread that reads,
 *        builds and stores or decodes a folio's tag values while the
 *        caller does its file I/O), held only to hand a job over or
 *        collect it. The worker's job runs on behalf of the caller, which
 *        holds the folio lock until it has collected it; the job takes
 *        only region-internal and leaf locks.
 *   Each page's state (resident / swapped) changes only under its folio
 *   lock. A restore takes the folio lock and re-checks that the subpage is
 *   still swapped, and the restorer TAKES the tag-store entry (erases it) as
 *   it restores: so when several threads fault on the same folio at once,
 *   exactly one restores each subpage's tags and the others find it done
 *   (the PG_mte_lock / try_page_mte_tagging() idea, per page, under the
 *   folio lock). The fill callback checks the page state without the folio
 *   lock first and only locks for swapped pages, so a fault raised by the
 *   pager's own region access while it holds a folio lock cannot deadlock.
 *   Swap-out of a folio must not race with the application writing that
 *   folio (a write between the read and the discard would be lost): the
 *   caller picks cold folios, as reclaim does after unmapping.
 *   tm_swapfile_open/close, tm_pager_create/destroy and tm_swapoff must not
 *   race with other calls on the same objects.
 */
#ifndef TAGMEM_SWAP_H
#define TAGMEM_SWAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/api.h"
#include "tagmem/error.h"
#include "tagmem/region.h"
#include "tagmem/tags.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest folio order: 2^9 pages = 2 MiB with 4 KiB pages. */
#define TM_SWAP_MAX_ORDER 9u

/* ------------------------------------------------------------------ */
/* Swap file                                                           */
/* ------------------------------------------------------------------ */

typedef struct tm_swapfile tm_swapfile;

enum tm_swapfile_flags {
	/* Keep the file when the swap file is closed (default: unlink it). */
	TM_SWAPFILE_KEEP   = 1u << 0,
	/* Do not preallocate (fallocate) the file: it grows as slots are
	 * written. Default: preallocate, so a full disk fails at open. */
	TM_SWAPFILE_SPARSE = 1u << 1,
	/* Open with O_DIRECT: slot I/O bypasses the page cache. */
	TM_SWAPFILE_DIRECT = 1u << 2,
};

typedef struct tm_swapfile_config {
	uint32_t struct_size;      /* sizeof(this struct), or 0 for the 0.1 layout
				     (tagmem/api.h, "Structs that grow") */
	/* Path of the swap file to create (an existing file is replaced), or
	 * of a directory, in which an unnamed O_TMPFILE is created. */
	const char *path;
	uint64_t size;       /* bytes, header page included; rounded down to
				page_size; at least 2 pages */
	uint32_t page_size;  /* slot size: 4096, 16384 or 65536 */
	unsigned flags;      /* enum tm_swapfile_flags */
} tm_swapfile_config;

/*
 * Create and open a swap file. Checks the file system's free space first
 * (-ENOSPC naming the path, the size asked and the space free) and writes
 * the header into slot 0. The tag store holds MTE tags for page_size pages.
 */
TM_API int tm_swapfile_open(const tm_swapfile_config *cfg, tm_swapfile **out,
			    tm_error *err);

/*
 * Close: release every tag still stored and every slot, close (and unless
 * TM_SWAPFILE_KEEP, unlink) the file. Pagers still attached must have been
 * destroyed first; sf may be NULL.
 */
TM_API void tm_swapfile_close(tm_swapfile *sf);

TM_API const char *tm_swapfile_path(const tm_swapfile *sf);
TM_API uint64_t tm_swapfile_nslots(const tm_swapfile *sf);   /* data slots + header */
TM_API uint32_t tm_swapfile_page_size(const tm_swapfile *sf);
/* The file descriptor (for tests and tools that inspect the file). */
TM_API int tm_swapfile_fd(const tm_swapfile *sf);

/* File offset of a slot: slot * page_size (slot 0 = header). */
TM_API uint64_t tm_swap_slot_offset(const tm_swapfile *sf, uint64_t slot);

enum tm_swapoff_flags {
	/* Do not bring pages back in: drop every swapped page (it then reads
	 * as zero, untagged) and release its slots and tags. */
	TM_SWAPOFF_DROP = 1u << 0,
};

typedef struct tm_swapoff_report {
	uint64_t pages_restored;     /* swapped pages brought back in */
	uint64_t pages_dropped;      /* swapped pages dropped (TM_SWAPOFF_DROP) */
	uint64_t tags_released;      /* tag-store entries released */
	uint64_t tag_bytes_released; /* their bytes (tm_tagstore_stats.bytes_used) */
	uint64_t stale_tags;         /* entries found with no page owning them
					(0 unless there is a bug) */
} tm_swapoff_report;

/*
 * swapoff: bring every swapped page of every attached pager back in (the
 * whole-folio path; Linux try_to_unuse()), or drop them with
 * TM_SWAPOFF_DROP, then release every tag the store still holds (Linux
 * arch_swap_invalidate_area()) and every slot. On a read error the swap file
 * stays on: pages restored so far stay restored, the failing page and the
 * rest stay swapped, and err names the slot and offset. After success the
 * file is off: tm_swap_out() fails with -ESHUTDOWN until it is closed.
 * report may be NULL.
 */
TM_API int tm_swapoff(tm_swapfile *sf, unsigned flags, tm_swapoff_report *report,
		      tm_error *err);

/* ------------------------------------------------------------------ */
/* Statistics (like the EA0 series' debugfs "mtecomp/stats")           */
/* ------------------------------------------------------------------ */

/*
 * Storage size classes of tag-store values. INLINE is the 8-byte EA0 handle
 * kept in the index itself; STREAM_16 .. STREAM_1024 are stream-codec
 * encodings in allocations of 16 << k bytes; RAW is the packed tags in an
 * allocation of exactly tm_geom_packed_bytes (128 B for 4 KiB pages).
 */
enum tm_tagstore_class {
	TM_TS_INLINE = 0,
	TM_TS_STREAM_16, TM_TS_STREAM_32, TM_TS_STREAM_64, TM_TS_STREAM_128,
	TM_TS_STREAM_256, TM_TS_STREAM_512, TM_TS_STREAM_1024,
	TM_TS_RAW,
	TM_TS_NCLASSES
};

/* "inline", "stream-16" .. "stream-1024", "raw". */
TM_API const char *tm_tagstore_class_name(enum tm_tagstore_class c);

typedef struct tm_tagstore_stats {
	uint64_t allocs[TM_TS_NCLASSES];   /* values stored, ever, per class */
	uint64_t frees[TM_TS_NCLASSES];    /* values released, ever */
	uint64_t live[TM_TS_NCLASSES];     /* stored now: allocs - frees */
	uint64_t entries;                  /* stored now, all classes */
	/* Bytes the values take now: 8 per entry (the index's value word) plus
	 * the allocation of out-of-line values. Linux's equivalent is 128 per
	 * tagged 4 KiB page (bytes_uncompressed). */
	uint64_t bytes_used;
	uint64_t bytes_uncompressed;       /* entries * packed bytes per page */
	/* Memory of the index itself: the Judy array plus its 64-slot leaves
	 * (8 bytes per slot of a leaf that holds any value). */
	uint64_t index_bytes;
	/* Memory the value objects' slab holds (blocks, free objects and one
	 * spare block per class included): what bytes_used costs for real. */
	uint64_t object_bytes;
} tm_tagstore_stats;

typedef struct tm_swap_stats {
	uint32_t page_size;
	uint64_t slots_total;              /* data slots (header excluded) */
	uint64_t slots_used;
	uint64_t folios_out[TM_SWAP_MAX_ORDER + 1]; /* folios swapped out, by order */
	uint64_t pages_out;                /* pages swapped out */
	uint64_t pages_out_tagged;         /* of which stored tags */
	uint64_t pages_out_zero;           /* of which zero data: not written */
	uint64_t pages_in;                 /* pages restored */
	uint64_t pages_in_fault;           /* of which through a fault */
	uint64_t folio_swapins;            /* whole-folio restores */
	uint64_t page_swapins;             /* page-by-page restores */
	uint64_t tag_restores;             /* subpage tags decoded and placed */
	uint64_t pages_discarded;          /* swapped pages discarded */
	uint64_t read_errors;              /* slot reads that failed */
	uint64_t bytes_written, bytes_read;/* data I/O on the swap file */
	tm_tagstore_stats tags;
} tm_swap_stats;

/* Snapshot of the counters. Thread-safe; counters are read one by one, so
 * a snapshot taken during activity may be slightly inconsistent. */
TM_API void tm_swapfile_stats(tm_swapfile *sf, tm_swap_stats *st);

/*
 * Format a snapshot as text, one "key: value" per line, with the tag store
 * section laid out like the EA0 debugfs file ("N bytes: A allocations,
 * D deallocations", uncompressed vs compressed size). Returns the length
 * written (truncated to len-1 like snprintf) or the length needed.
 */
TM_API size_t tm_swap_stats_format(const tm_swap_stats *st, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Pager                                                               */
/* ------------------------------------------------------------------ */

typedef struct tm_pager tm_pager;

/* What a fault on a swapped subpage restores. */
enum tm_swapin_mode {
	/* The whole folio: one pread, every subpage still swapped is placed
	 * (the faulting one through the fill callback, the others with
	 * tm_region_write_page). */
	TM_SWAPIN_FOLIO = 0,
	/* Only the faulting subpage (slot = folio's first slot + index), like
	 * Linux's do_swap_page() mapping one page of a large folio. */
	TM_SWAPIN_PAGE  = 1,
};

typedef struct tm_pager_config {
	uint32_t struct_size;      /* sizeof(this struct), or 0 for the 0.1 layout
				     (tagmem/api.h, "Structs that grow") */
	tm_region *region;    /* its page size must equal the swap file's */
	tm_swapfile *swap;
	/* Swap in on access through tm_region_lazy_start (a backend with lazy
	 * placement: soft, or mte where the kernel has UFFDIO_MOVE). When
	 * false, pages come back only through tm_swap_in*(), and an access to
	 * a swapped-out page reads zeros. */
	bool lazy;
	enum tm_swapin_mode fault_mode;
} tm_pager_config;

/*
 * Attach a region to a swap file. A region whose geometry is TM_META_NONE
 * stores no tags; an MTE region's geometry must match the swap file's page
 * size; other metadata kinds are refused (-ENOTSUP). With lazy, fails with
 * the region's reason where lazy placement is unavailable (a backend
 * without it; mte on a kernel without UFFDIO_MOVE).
 */
TM_API int tm_pager_create(const tm_pager_config *cfg, tm_pager **out, tm_error *err);

/*
 * Detach: stop lazy placement, then drop every page still swapped out (its
 * slots and tags are released; the page reads as zero). p may be NULL.
 */
TM_API void tm_pager_destroy(tm_pager *p);

TM_API tm_region *tm_pager_region(const tm_pager *p);

/*
 * Swap out the folio of 2^order pages starting at page pg (pg must be a
 * multiple of 2^order, order <= TM_SWAP_MAX_ORDER). Fails with -EBUSY if a
 * page of the folio is already swapped out, -ENOSPC when the swap file has
 * no naturally aligned free run of 2^order slots, -ESHUTDOWN after swapoff.
 * On failure nothing changes: the folio stays resident, no slot or tag is
 * kept.
 */
TM_API int tm_swap_out(tm_pager *p, size_t pg, unsigned order, tm_error *err);

/*
 * Swap out [pg, pg+n) as folios of 2^order pages (pg and n multiples of
 * 2^order). Folios below order 8 go out a 2^TM_SWAP_MAX_ORDER-page block
 * at a time when the range covers the whole block and nothing in it is
 * swapped: each folio still gets its own aligned slots and state, but the
 * block takes one folio lock, one data read, one tag job (on the tag
 * worker) and one discard - at order 0 that measured ~3x faster. Stops at
 * the first error: earlier folios (with blocks, earlier blocks) stay
 * swapped out, nothing of the failing folio or block is kept, and *done
 * (may be NULL) receives the pages swapped out.
 */
TM_API int tm_swap_out_range(tm_pager *p, size_t pg, size_t n, unsigned order,
			     size_t *done, tm_error *err);

/*
 * Bring pages [pg, pg+n) back in. A folio wholly inside the range takes the
 * whole-folio path (one pread, all present subpages placed at once); the
 * subpages of a folio the range only partly covers are restored page by
 * page. Pages not swapped out are skipped. Stops at the first error (see
 * "Errors" above): nothing is placed for the failing page.
 */
TM_API int tm_swap_in(tm_pager *p, size_t pg, size_t n, tm_error *err);

/* Restore one subpage page by page: reads only its slot (the folio's first
 * slot + its index in the folio). 0 if the page is not swapped out. */
TM_API int tm_swap_in_page(tm_pager *p, size_t pg, tm_error *err);

/*
 * Discard [pg, pg+n) like MADV_DONTNEED: a swapped-out subpage is never
 * restored (its slot and tags are released; the rest of its folio is
 * unaffected), a resident page is dropped with tm_region_discard. Either
 * way the page then reads as zero, untagged.
 */
TM_API int tm_swap_discard(tm_pager *p, size_t pg, size_t n, tm_error *err);

/* Whether page pg is swapped out now. */
TM_API bool tm_swap_page_swapped(const tm_pager *p, size_t pg);

/* Order of the folio page pg was swapped out in, or -1 if not swapped. */
TM_API int tm_swap_page_order(const tm_pager *p, size_t pg);

/* Slot holding page pg (folio's first slot + index), or 0 if not swapped. */
TM_API uint64_t tm_swap_page_slot(const tm_pager *p, size_t pg);

/* Pages of this pager swapped out now. */
TM_API size_t tm_pager_swapped_pages(const tm_pager *p);

#ifdef __cplusplus
}
#endif
#endif
