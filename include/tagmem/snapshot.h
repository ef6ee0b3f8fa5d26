/*
 * tagmem/snapshot.h - snapshot files that keep memory tags: save a set of
 * tagged regions to a file, restore it (eagerly or lazily on first access),
 * inspect and verify it. The on-disk format is in docs/FORMAT.md
 * ("Snapshot file").
 *
 * The file
 *   A checksummed header and region table, then per region two bitmaps
 *   (pages with non-zero data, pages with non-zero tags) and a table of
 *   chunks (a chunk is chunk_pages consecutive pages, 1 MiB of data by
 *   default). Without compression the pages sit at fixed file offsets and
 *   the packed tags in a tag area at fixed offsets (QEMU mapped-ram style);
 *   with TM_SNAP_ZSTD every chunk is one compressed blob (zstd for data, the
 *   stream tag codec for tags) found through the chunk table. A page whose
 *   data and tags are both zero is never written: the file is sparse. Every
 *   chunk carries an XXH3-64 checksum that restore and verify check before
 *   anything from that chunk reaches a region.
 *
 * Page classes (info, stats)
 *   normal    data not all zero (tagged or not)
 *   tag-only  data all zero, tags not all zero
 *   zero      data and tags all zero (not stored)
 *
 * Thread safety: tm_snapshot_save, _restore and _verify run their own
 * worker threads and may run concurrently on different files/regions. A
 * tm_snapshot handle may be used by one call at a time, except that a lazy
 * restore reads it from the regions' fault threads while it runs (so it must
 * stay open until tm_snapshot_lazy_stop). The regions passed in must not be
 * destroyed while a call uses them.
 */
#ifndef TAGMEM_SNAPSHOT_H
#define TAGMEM_SNAPSHOT_H

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

#define TM_SNAP_VERSION      1u
#define TM_SNAP_MAX_REGIONS  4096u
#define TM_SNAP_CHUNK_DEFAULT (1u << 20)   /* data bytes per chunk */
#define TM_SNAP_CHUNK_MAX    (64u << 20)
#define TM_SNAP_THREADS_DEFAULT 4u          /* save */
#define TM_SNAP_READ_THREADS_DEFAULT 8u     /* restore and verify */

/* Feature flags recorded in the header (and requested through opts). */
enum tm_snap_flags {
	TM_SNAP_ZSTD   = 1u << 0, /* per-chunk zstd data + stream tag codec */
	TM_SNAP_DIGEST = 1u << 1, /* each region's tm_region_digest recorded */
	/* The file carries typed sections (tm_snap_opts.sections). Set by
	 * save when sections are given, never by the caller; a reader that
	 * does not know the flag refuses the file (-EPROTONOSUPPORT). */
	TM_SNAP_SECTIONS = 1u << 2,
};

/*
 * A section: a typed blob stored with the snapshot, for state that belongs
 * to the memory but is not pages (a process's addresses and MTE control
 * state: tagmem/ptrace.h). The snapshot layer stores it under the
 * metadata checksum and checks its framing; what is inside is its owner's
 * to validate. Types are assigned in docs/FORMAT.md ("Sections").
 */
typedef struct tm_snap_section {
	uint32_t type;           /* TM_SNAP_SECTION_*; 0 is invalid */
	const void *data;
	size_t len;              /* 0 .. TM_SNAP_SECTION_MAX */
} tm_snap_section;

#define TM_SNAP_SECTION_PROCESS 1u   /* tagmem/ptrace.h: mappings, control state */
#define TM_SNAP_MAX_SECTIONS    16u
#define TM_SNAP_SECTION_MAX     (16u << 20)

enum tm_snap_io {
	TM_SNAP_IO_AUTO = 0,     /* O_DIRECT where the file system allows it */
	TM_SNAP_IO_BUFFERED = 1, /* page cache only */
	TM_SNAP_IO_DIRECT = 2,   /* O_DIRECT or fail with -ENOTSUP */
};

/* Save phases reported to the progress callback. */
enum tm_snap_phase {
	TM_SNAP_PHASE_DATA = 0,  /* chunks being written (done/total chunks) */
	TM_SNAP_PHASE_META = 1,  /* bitmaps, chunk tables, header written */
	TM_SNAP_PHASE_SYNC = 2,  /* fsync done, about to rename */
};

typedef struct tm_snap_opts {
	uint32_t struct_size;      /* sizeof(this struct), or 0 for the 0.1 layout
				     (tagmem/api.h, "Structs that grow") */
	unsigned flags;          /* save: TM_SNAP_ZSTD | TM_SNAP_DIGEST */
	unsigned threads;        /* worker threads; 0 = the operation's default:
				    TM_SNAP_THREADS_DEFAULT for save,
				    TM_SNAP_READ_THREADS_DEFAULT for restore
				    and verify, whose workers mostly wait on
				    their chunk's read - each worker is one
				    read in flight, and the disk wants a deeper
				    queue than save's CPU-bound workers give */
	enum tm_snap_io io;
	uint32_t chunk_bytes;    /* save: data bytes per chunk, a multiple of
				    the page size; 0 = TM_SNAP_CHUNK_DEFAULT */
	int zstd_level;          /* save with TM_SNAP_ZSTD; 0 = 1 */
	/* After save (and before restore/verify read the payload) drop the
	 * file's pages from the page cache (posix_fadvise DONTNEED), so a
	 * buffered run measures the disk, not memory. */
	bool drop_cache;
	/* Called from worker threads (save: after each chunk; then once per
	 * later phase). Must be thread-safe. NULL: none. */
	void (*progress)(void *ctx, enum tm_snap_phase phase, uint64_t done,
			 uint64_t total);
	void *progress_ctx;
	/* verify: called once per bad chunk with its error (serialised). */
	void (*report)(void *ctx, const tm_error *e);
	void *report_ctx;
	/* save: sections stored with the file (distinct types, at most
	 * TM_SNAP_MAX_SECTIONS); NULL / 0: none, and the file is one any
	 * version-1 reader opens. Copied during the call. */
	const tm_snap_section *sections;
	size_t nsections;
} tm_snap_opts;

typedef struct tm_snap_stats {
	uint64_t pages;            /* all pages of all regions */
	uint64_t normal_pages;     /* data non-zero */
	uint64_t tagged_pages;     /* tags non-zero (normal or tag-only) */
	uint64_t tag_only_pages;   /* data zero, tags non-zero */
	uint64_t zero_pages;       /* data and tags zero: not stored */
	uint64_t chunks;           /* chunks processed */
	uint64_t bad_chunks;       /* verify: chunks that failed */
	uint64_t data_bytes;       /* data bytes stored/read (after codec) */
	uint64_t tag_bytes;        /* tag bytes stored/read (after codec) */
	uint64_t file_bytes;       /* size of the file */
	bool direct_io;            /* O_DIRECT was used */
	char io_note[160];         /* why not, when it was not */
	double seconds;            /* wall time of the call */
} tm_snap_stats;

/* What tm_snap_opts_init calls with the caller's sizeof(*o): the defaults
 * into the first size bytes, struct_size = size. -EINVAL (nothing
 * written) for a size below the 0.1 layout. */
TM_API int tm_snap_opts_init_sized(tm_snap_opts *o, size_t size);

/* Defaults into *o (all zero but the documented defaults are implied),
 * struct_size set. */
static inline void tm_snap_opts_init(tm_snap_opts *o)
{
	(void)tm_snap_opts_init_sized(o, sizeof(*o));
}

/*
 * Save n regions to path, crash-safely: everything is written to a
 * temporary file in the same directory (".NAME.tmp-PID-RAND"), fsynced,
 * renamed over path, and the directory fsynced. A save that fails or is
 * killed never leaves a file under path (an earlier file at path survives
 * untouched); a killed save may leave the temporary file behind.
 * All regions must share the page size; tagged regions must share the
 * metadata geometry (untagged regions, kind TM_META_NONE, may be mixed in).
 * Regions are read while the save runs: quiesce writers for a consistent
 * image. o and st may be NULL.
 */
TM_API int tm_snapshot_save(const char *path, tm_region *const *regions, size_t n,
			    const tm_snap_opts *o, tm_snap_stats *st, tm_error *err);

/* ---- reading --------------------------------------------------- */

typedef struct tm_snapshot tm_snapshot;

typedef struct tm_snap_info {
	uint32_t version;
	uint32_t flags;            /* TM_SNAP_* */
	tm_geom geom;              /* of the tagged regions; page size of all */
	uint32_t chunk_pages;
	size_t nregions;
	uint64_t file_size;
	uint64_t created_ns;       /* CLOCK_REALTIME at save */
	bool direct_io;            /* this handle reads with O_DIRECT */
	char io_note[160];
} tm_snap_info;

typedef struct tm_snap_region_info {
	char name[TM_REGION_NAME_MAX];
	uint64_t size, npages, nchunks;
	bool tagged;
	uint64_t normal_pages, tagged_pages, tag_only_pages, zero_pages;
	bool has_digest;
	uint64_t digest;
} tm_snap_region_info;

/*
 * Open and validate a snapshot: magic, version, header checksum, region
 * table, metadata checksum, every bitmap and chunk-table entry against the
 * file's real size. A truncated, corrupted or foreign file fails here with
 * -EBADMSG (or -EPROTONOSUPPORT for an unknown version/feature) and a
 * message naming the file offset. Chunk payloads are checked later, by
 * restore/verify. o may be NULL (only io is used here).
 */
TM_API int tm_snapshot_open(const char *path, const tm_snap_opts *o,
			    tm_snapshot **out, tm_error *err);
TM_API void tm_snapshot_close(tm_snapshot *s);

TM_API void tm_snapshot_info(const tm_snapshot *s, tm_snap_info *out);
/* Region i (< nregions), with its page counts by class from the bitmaps. */
TM_API int tm_snapshot_region_info(const tm_snapshot *s, size_t i,
				   tm_snap_region_info *out, tm_error *err);

/*
 * Tag-codec ratio: raw packed tag bytes of all tagged pages divided by the
 * stream tag codec's size for them (what TM_SNAP_ZSTD stores). Reads and
 * checks every chunk's tags. *raw and *coded may be NULL.
 */
TM_API int tm_snapshot_tag_ratio(tm_snapshot *s, double *ratio, uint64_t *raw,
				 uint64_t *coded, tm_error *err);

/*
 * Section type of s: *data points at its bytes (valid until
 * tm_snapshot_close; checked by the metadata checksum at open), *len is
 * their count. -ENOENT (naming the file and type) when s has none.
 */
TM_API int tm_snapshot_section(const tm_snapshot *s, uint32_t type,
			       const void **data, size_t *len, tm_error *err);

/* Create regions shaped like the file's (name, size, geometry), in table
 * order, with the given backend. out has nregions slots; on failure none is
 * left created. */
TM_API int tm_snapshot_create_regions(const tm_snapshot *s, enum tm_backend b,
				      tm_region **out, tm_error *err);

/*
 * Restore every region into dst[0..n) (n == nregions; sizes and geometry
 * must match). Several threads read chunks with large aligned reads,
 * check each chunk's checksum and decode it into a buffer, and only then
 * place its pages (data with tags, tm_region_write_page) or zero them.
 * On a bad chunk: -EBADMSG naming region, chunk, pages and file offsets;
 * that chunk's pages are left exactly as they were (other chunks may have
 * been restored). o and st may be NULL.
 */
TM_API int tm_snapshot_restore(tm_snapshot *s, tm_region *const *dst, size_t n,
			       const tm_snap_opts *o, tm_snap_stats *st,
			       tm_error *err);

/* Read, checksum and decode every chunk without placing anything. Keeps
 * going after a bad chunk (o->report sees each); returns -EBADMSG naming
 * the first, with st->bad_chunks counting them all. */
TM_API int tm_snapshot_verify(tm_snapshot *s, const tm_snap_opts *o,
			      tm_snap_stats *st, tm_error *err);

/* Compare dst regions' tm_region_digest with the digests recorded at save
 * (TM_SNAP_DIGEST). -ENODATA when none were recorded; -EBADMSG naming the
 * first region that differs. */
TM_API int tm_snapshot_check_digests(const tm_snapshot *s, tm_region *const *dst,
				     size_t n, tm_error *err);

/* ---- lazy restore ---------------------------------------------- */

typedef struct tm_snapshot_lazy tm_snapshot_lazy;

/*
 * Lazy (Firecracker-style) restore: register dst regions (a backend with
 * lazy placement: soft, or mte on a kernel with UFFDIO_MOVE; freshly
 * created, all pages missing) for lazy placement. The first access
 * to a page reads its chunk from the file (checked and decoded once, kept in
 * a small per-region cache) and the region installs the page's tags before
 * its data becomes visible. A page whose chunk is bad is not placed; the
 * faulting thread gets SIGBUS and tm_snapshot_lazy_stop reports the error.
 * s must stay open until tm_snapshot_lazy_stop.
 */
TM_API int tm_snapshot_lazy_start(tm_snapshot *s, tm_region *const *dst, size_t n,
				  tm_snapshot_lazy **out, tm_error *err);

/* Pages placed so far through faults. */
TM_API uint64_t tm_snapshot_lazy_faults(const tm_snapshot_lazy *l);

/* Stop lazy placement and free l. Returns the first fill error, if any. */
TM_API int tm_snapshot_lazy_stop(tm_snapshot_lazy *l, tm_error *err);

#ifdef __cplusplus
}
#endif
#endif
