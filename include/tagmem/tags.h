/*
 * tagmem/tags.h - the tags core: geometry, formats, zero detection, codecs.
 *
 * Vocabulary
 *   page metadata  N bits of metadata per G bytes of data. Arm MTE is one
 *                  kind (4 bits per 16-byte granule); the geometry below is
 *                  generic so another architecture's metadata fits without
 *                  touching callers.
 *   packed         the canonical in-memory and on-wire form: bits-per-granule
 *                  values packed little-endian into bytes, lower-address
 *                  granule in the lower bits. For MTE: 2 tags per byte, low
 *                  nibble = lower-address granule, 128 B per 4 KiB page
 *                  (Linux mte_save_page_tags, core dumps, gdb, QEMU TCG).
 *   unpacked       one granule's value per byte (KVM_ARM_MTE_COPY_TAGS,
 *                  PTRACE_PEEKMTETAGS): 256 B per 4 KiB page.
 *
 * Thread safety: every function here is pure (works only on its arguments)
 * and may be called from any number of threads at once.
 */
#ifndef TAGMEM_TAGS_H
#define TAGMEM_TAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/api.h"
#include "tagmem/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Geometry                                                            */
/* ------------------------------------------------------------------ */

enum tm_meta_kind {
	TM_META_NONE = 0,   /* pages carry no metadata */
	TM_META_MTE  = 1,   /* Arm MTE: 4 bits per 16 bytes */
	TM_META_GENERIC = 2 /* any other "bits per granule" kind */
};

#define TM_MTE_GRANULE   16u
#define TM_MTE_TAG_BITS  4u
#define TM_MTE_VERSION   1u
#define TM_PAGE_SIZE_MAX 65536u

typedef struct tm_geom {
	uint32_t kind;        /* enum tm_meta_kind */
	uint32_t version;     /* version of the metadata kind's semantics */
	uint32_t page_size;   /* 4096, 16384 or 65536 */
	uint32_t granule;     /* bytes of data per metadata item (MTE: 16) */
	uint32_t bits;        /* bits per item: 1, 2, 4 or 8 (MTE: 4) */
} tm_geom;

/*
 * Fill *g for a kind and page size. For TM_META_MTE granule/bits are implied;
 * for TM_META_GENERIC pass them; for TM_META_NONE they are ignored.
 * Fails with -EINVAL naming the bad field.
 */
TM_API int tm_geom_init(tm_geom *g, uint32_t kind, uint32_t page_size,
			uint32_t granule, uint32_t bits, tm_error *err);

/* Shorthand for MTE at a page size; page_size must be 4/16/64 KiB. */
TM_API int tm_geom_mte(tm_geom *g, uint32_t page_size, tm_error *err);

/* Metadata items (granules) per page; 0 for TM_META_NONE. */
TM_API size_t tm_geom_granules(const tm_geom *g);
/* Bytes of packed metadata per page (MTE 4 KiB: 128); 0 for NONE. */
TM_API size_t tm_geom_packed_bytes(const tm_geom *g);
/* Bytes of unpacked metadata per page (MTE 4 KiB: 256); 0 for NONE. */
TM_API size_t tm_geom_unpacked_bytes(const tm_geom *g);
/* True when both geometries describe the same metadata on the same page. */
TM_API bool tm_geom_equal(const tm_geom *a, const tm_geom *b);
/* "mte/v1 4b/16B page=4096" style description, for messages. */
TM_API const char *tm_geom_describe(const tm_geom *g, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Packed <-> unpacked (4-bit tags)                                    */
/* ------------------------------------------------------------------ */

/*
 * Pack n unpacked 4-bit tags into (n + 1) / 2 bytes (for an odd n the last
 * byte's high nibble is 0). A byte with bits above the 4-bit tag is refused:
 * returns -EINVAL and names the first such granule's index in err (KVM
 * silently ignores such bits; tagmem refuses them). On error the output may
 * be partly written; callers validate into scratch buffers.
 * Vectorized (SSE2/AVX2 on x86-64, NEON on aarch64) with runtime dispatch;
 * outputs of 4 MiB or more are written with streaming (non-temporal) stores
 * on AVX2, so they do not linger in cache.
 */
TM_API int tm_tags_pack(uint8_t *packed, const uint8_t *unpacked, size_t n,
			tm_error *err);
/* Unpack n tags from (n + 1) / 2 packed bytes. Cannot fail. Same dispatch
 * and streaming-store rule as tm_tags_pack. */
TM_API void tm_tags_unpack(uint8_t *unpacked, const uint8_t *packed, size_t n);

/* Name of the implementation dispatch chose: "avx2", "sse2", "neon", "scalar". */
TM_API const char *tm_tags_simd_name(void);

/* Tag of granule i in a packed buffer, and setting it. */
static inline uint8_t tm_tag_get(const uint8_t *packed, size_t i)
{
	return (uint8_t)((packed[i >> 1] >> ((i & 1) * 4)) & 0xF);
}
static inline void tm_tag_set(uint8_t *packed, size_t i, uint8_t tag)
{
	unsigned sh = (unsigned)(i & 1) * 4;
	packed[i >> 1] = (uint8_t)((packed[i >> 1] & ~(0xF << sh)) |
				   ((tag & 0xF) << sh));
}

/* ------------------------------------------------------------------ */
/* Zero detection                                                      */
/* ------------------------------------------------------------------ */

/* True when n bytes at p are all zero. Vectorized, exits at first non-zero. */
TM_API bool tm_mem_is_zero(const void *p, size_t n);

/*
 * True when a page is zero: its data AND its packed tags are all zero.
 * tags may be NULL (untagged page: tags read as zero). The tags are checked
 * first because they are 32x smaller and a non-zero tag exits early. Issues
 * prefetch hints for the start of the data and for the tags just after this
 * page's (the next page's, in a contiguous tag array); hints never fault.
 */
TM_API bool tm_page_is_zero(const tm_geom *g, const void *data, const uint8_t *tags);

/* ------------------------------------------------------------------ */
/* EA0 tag compression (Linux series "Implement MTE tag compression for  */
/* swapped pages", v11): inline 63-bit handle or raw                   */
/* ------------------------------------------------------------------ */

/* Maximum runs that fit inline: 6 (4 KiB), 5 (16 KiB), 4 (64 KiB). */
TM_API unsigned tm_ea0_max_inline_ranges(uint32_t page_size);

/*
 * Try to compress one page's packed tags into an inline handle, bit for bit
 * what Linux's mte_compress() (v11-mte) returns for the same 128/512/2048
 * bytes: ranges are taken in the kernel's order, high nibble of each byte
 * first (docs/FORMAT.md §tags).
 * Returns 0 and sets *handle when they fit; -E2BIG when they do not (the
 * caller then stores the raw packed tags); -EINVAL for a bad page size.
 */
TM_API int tm_ea0_compress(uint32_t page_size, const uint8_t *packed,
			   uint64_t *handle, tm_error *err);

/* Decompress an inline handle; -EINVAL (with a reason) for an invalid one,
 * i.e. any value tm_ea0_compress cannot produce. Writes nothing then. */
TM_API int tm_ea0_decompress(uint32_t page_size, uint64_t handle, uint8_t *packed,
			     tm_error *err);

/* True when handle is a well-formed inline handle for page_size. */
TM_API bool tm_ea0_handle_valid(uint32_t page_size, uint64_t handle);

/*
 * What storing npages pages' tags the EA0 way costs, in bytes, the way the
 * kernel series stores them in its swap XArray: 8 bytes for a page that
 * compresses inline (the handle is the XArray value), and the raw packed
 * tags plus 8 bytes for one that does not (a kmalloc'd buffer of
 * page_size/32 bytes, a size kmalloc serves without rounding, plus the
 * XArray slot pointing at it). *ninline (may be NULL) receives how many
 * pages compressed inline. Returns 0 for a bad page size.
 */
TM_API size_t tm_ea0_storage_bytes(uint32_t page_size, const uint8_t *packed,
				   size_t npages, size_t *ninline);

/* ------------------------------------------------------------------ */
/* Stream tag codec: many pages' tags for migration and snapshots       */
/* (format in docs/FORMAT.md, "Tag stream"; docs/FORMAT.md §tags)       */
/* ------------------------------------------------------------------ */

enum tm_tagstream_flags {
	TM_TAGSTREAM_ZSTD = 1u << 0,  /* allow a zstd pass over the block */
	/* allow the "regular runs" form: a page of equal-length runs (an
	 * allocator page of one size class) costs its run values plus two
	 * lengths. Decoders always accept it; only the encoder asks. */
	TM_TAGSTREAM_REGULAR = 1u << 1,
};

/*
 * Codec context: the zstd contexts and scratch buffer the TM_TAGSTREAM_ZSTD
 * pass needs, owned by the caller so that encoding or decoding a block does
 * not allocate them each time (allocate one per thread at setup; a context
 * is used by one thread at a time). The context-less calls below allocate a
 * temporary one only when a block actually uses zstd.
 */
typedef struct tm_tagstream_ctx tm_tagstream_ctx;
TM_API int tm_tagstream_ctx_new(tm_tagstream_ctx **out, tm_error *err);
TM_API void tm_tagstream_ctx_free(tm_tagstream_ctx *c);

/* Worst-case encoded size for npages pages of geometry g. */
TM_API size_t tm_tagstream_bound(const tm_geom *g, size_t npages);

/*
 * The fewest payload bytes the encoder can spend on one page whose tags
 * form nruns runs (address order) with these flags: 0 for a single run (a
 * zero page costs nothing, one of another tag 1 byte), never more than the
 * raw packed size. Add the block header (3 bytes for a one-page block below
 * 128 pages) and the class bits (1 byte for 1-4 pages) for a whole block.
 * Lets a caller skip an encode that cannot beat a size it already has.
 */
TM_API size_t tm_tagstream_page_min_bytes(const tm_geom *g, size_t nruns, unsigned flags);

/*
 * Encode npages pages of packed tags (contiguous, tm_geom_packed_bytes each)
 * into out (capacity cap). *outlen receives the encoded size. Fails with
 * -ENOSPC when cap is too small (tm_tagstream_bound() is always enough).
 * Without TM_TAGSTREAM_ZSTD nothing is allocated; with it one scratch body
 * of the bound's size is malloc'd per call (so call it per packet, not per
 * page). Each page costs at most its packed size plus 2 bits.
 */
TM_API int tm_tagstream_encode(const tm_geom *g, const uint8_t *packed,
			       size_t npages, unsigned flags, uint8_t *out,
			       size_t cap, size_t *outlen, tm_error *err);

/*
 * Decode exactly npages pages from in[0..inlen) into packed. Validates
 * everything before trusting it: a malformed, truncated or over-long input
 * gives -EBADMSG with the byte offset and page index in err, and then
 * packed is left untouched (the whole block is validated before the first
 * byte is written). Never writes outside packed[0 .. npages * packed_bytes).
 * A zstd block costs one malloc of its announced (bounded) body size.
 */
TM_API int tm_tagstream_decode(const tm_geom *g, const uint8_t *in, size_t inlen,
			       size_t npages, uint8_t *packed, tm_error *err);

/* The same two calls with a caller-owned context (c may be NULL). */
TM_API int tm_tagstream_encode_ctx(tm_tagstream_ctx *c, const tm_geom *g, const uint8_t *packed,
				   size_t npages, unsigned flags, uint8_t *out,
				   size_t cap, size_t *outlen, tm_error *err);
TM_API int tm_tagstream_decode_ctx(tm_tagstream_ctx *c, const tm_geom *g, const uint8_t *in,
				   size_t inlen, size_t npages, uint8_t *packed, tm_error *err);

/*
 * One page at a time, for callers that keep pages apart (the swap tag
 * store): a one-page block, the exact bytes tm_tagstream_encode(g, packed,
 * 1, 0, ...) writes, and a decoder that accepts exactly the blocks (and
 * writes exactly the tags) tm_tagstream_decode(g, in, inlen, 1, ...) does,
 * errors included - but for 4-bit tags in whole words (MTE at every page
 * size) without the general code's per-call setup: about a third of its
 * time per page (docs/BENCHMARKS.md §swap). Other geometries and zstd
 * blocks simply go through the general calls.
 *
 * encode: -ENOSPC when the block would not fit cap. With err == NULL this
 * is found as soon as the runs pass cap, so a caller that only keeps blocks
 * below some size passes that size as cap; with err the general encoder is
 * asked again for its message. Neither call allocates; both are
 * thread-safe (no state).
 */
TM_API int tm_tagstream_encode_page(const tm_geom *g, const uint8_t *packed, uint8_t *out,
				    size_t cap, size_t *outlen, tm_error *err);
TM_API int tm_tagstream_decode_page(const tm_geom *g, const uint8_t *in, size_t inlen,
				    uint8_t *packed, tm_error *err);

/* ------------------------------------------------------------------ */
/* Tag corpus: realistic tag layouts for tests, benchmarks and demos    */
/* ------------------------------------------------------------------ */

enum tm_corpus_layout {
	TM_CORPUS_UNTAGGED = 0, /* all-zero tags */
	TM_CORPUS_ONE_TAG,      /* one random non-zero tag for the whole page */
	TM_CORPUS_ALLOC,        /* heap chunks of 16..4096 B, random tag each */
	TM_CORPUS_RANDOM,       /* uniformly random tags */
	TM_CORPUS_MIX,          /* per page: 40 % untagged, 20 % one-tag,
				   35 % alloc, 5 % random (docs/FORMAT.md §tags) */
	TM_CORPUS_NLAYOUTS
};

/* Name ("untagged", "one-tag", "alloc", "random", "mix") and lookup. */
TM_API const char *tm_corpus_name(enum tm_corpus_layout l);
TM_API int tm_corpus_parse(const char *name, enum tm_corpus_layout *l);

/*
 * Fill npages pages of packed tags (geometry g) with layout l from seed.
 * Deterministic for (l, g, seed, npages). For TM_CORPUS_MIX each page draws
 * its own layout with the mix's weights.
 */
TM_API void tm_corpus_fill(enum tm_corpus_layout l, const tm_geom *g, uint64_t seed,
			   uint8_t *packed, size_t npages);

#ifdef __cplusplus
}
#endif
#endif
