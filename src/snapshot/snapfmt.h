/*
 * snapfmt.h - the snapshot file's on-disk layout (docs/FORMAT.md §snapshot):
 * field offsets, the in-memory form of the header, region table and chunk
 * table, and the encode/decode/validate functions shared by save, restore,
 * verify and lazy restore. Everything on disk is little-endian and encoded
 * byte by byte, so the file is the same on every host.
 * Internal to the snapshot part.
 */
#ifndef TM_SNAPSHOT_SNAPFMT_H
#define TM_SNAPSHOT_SNAPFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "snapshot/le.h"
#include "tagmem/error.h"
#include "tagmem/region.h"
#include "tagmem/snapshot.h"
#include "tagmem/tags.h"

#define SNAP_MAGIC        "TAGMSNAP"
#define SNAP_HEADER_BYTES 128u
#define SNAP_REGION_BYTES 160u
#define SNAP_CHUNK_BYTES  40u
#define SNAP_ALIGN        4096u          /* every offset and length on disk */
#define SNAP_AREA_ALIGN   (1u << 20)     /* data areas start on 1 MiB */
/* Raw mode writes zeros into gaps shorter than this between stored pieces
 * of a chunk (so a chunk goes out in one large write); longer runs of
 * zero pages stay holes. */
#define SNAP_HOLE_MIN     (64u << 10)
#define SNAP_KNOWN_FLAGS  (TM_SNAP_ZSTD | TM_SNAP_DIGEST | TM_SNAP_SECTIONS)
#define SNAP_SECT_ENTRY_BYTES 24u        /* section table entry */

#define SNAP_REGION_TAGGED 1u            /* region entry flags */
#define SNAP_CHUNK_DATA_ZSTD 1u          /* chunk entry flags */
#define SNAP_CHUNK_TAGS_CODED 2u

/* Header field offsets (the checksum covers [0, 120) + the region table).
 * SH_SECT_BYTES: size of the section area (flag TM_SNAP_SECTIONS), else 0. */
enum {
	SH_MAGIC = 0, SH_VERSION = 8, SH_HDR_BYTES = 12, SH_FLAGS = 16,
	SH_NREGIONS = 20, SH_KIND = 24, SH_KIND_VERSION = 28, SH_PAGE_SIZE = 32,
	SH_GRANULE = 36, SH_BITS = 40, SH_CHUNK_PAGES = 44, SH_ENTRY_BYTES = 48,
	SH_ALIGN = 52, SH_TABLE_END = 56, SH_META_OFF = 64, SH_META_BYTES = 72,
	SH_META_XXH = 80, SH_DATA_OFF = 88, SH_FILE_SIZE = 96, SH_CREATED = 104,
	SH_SECT_BYTES = 112, SH_HEAD_XXH = 120,
};

/* Region entry field offsets. */
enum {
	SR_NAME = 0, SR_SIZE = 64, SR_NPAGES = 72, SR_FLAGS = 80,
	SR_RESERVED0 = 84, SR_NCHUNKS = 88, SR_DBITMAP = 96, SR_TBITMAP = 104,
	SR_CHUNKS = 112, SR_DATA_AREA = 120, SR_STRIDE = 128, SR_DIGEST = 136,
	SR_RESERVED1 = 144,
};

/* Chunk entry field offsets. */
enum {
	SC_DATA_OFF = 0, SC_TAG_OFF = 8, SC_DATA_LEN = 16, SC_TAG_LEN = 20,
	SC_FLAGS = 24, SC_RESERVED = 28, SC_XXH = 32,
};

static inline uint64_t tm_snap_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

typedef struct snap_chunk {
	uint64_t data_off, tag_off;
	uint32_t data_len, tag_len;
	uint32_t flags;
	uint64_t xxh;
} snap_chunk;

typedef struct snap_region {
	char name[TM_REGION_NAME_MAX];
	uint64_t size, npages, nchunks;
	uint32_t flags;                 /* SNAP_REGION_TAGGED */
	uint64_t dbitmap_off, tbitmap_off, chunks_off;
	uint64_t data_area;             /* raw mode: where chunk 0 starts */
	uint64_t stride;                /* raw mode: bytes from chunk to chunk */
	uint64_t digest;
	/* in memory only */
	uint64_t *dbits, *tbits;        /* npages bits each */
	snap_chunk *chunks;             /* nchunks */
} snap_region;

/* A section as the file holds it (the area's own offsets). */
typedef struct snap_section {
	uint32_t type;
	uint64_t off, len;              /* in the section area */
} snap_section;

typedef struct snap_layout {
	uint32_t version, flags;
	tm_geom geom;                   /* page size for all; tags for tagged */
	uint32_t chunk_pages;
	uint32_t nregions;
	uint64_t table_end, meta_off, meta_bytes, meta_xxh;
	uint64_t data_off, file_size, created_ns;
	snap_region *regions;
	/* sections: the area ends the metadata area (after every region's
	 * chunk table), covered by its checksum */
	uint64_t sect_off, sect_bytes;  /* 0, 0 without TM_SNAP_SECTIONS */
	uint32_t nsect;
	snap_section *sect;             /* reader: decoded table */
	uint8_t *sect_buf;              /* reader: the area's bytes */
	const tm_snap_section *usect;   /* writer: the caller's sections */
} snap_layout;

/* Bytes of one region's data/tag bitmap on disk (whole u64 words). */
static inline uint64_t tm_snap_bitmap_bytes(uint64_t npages)
{
	return (npages + 63) / 64 * 8;
}
/* Raw mode: packed tags of np pages, padded to the alignment. */
static inline uint64_t tm_snap_tag_slot(uint64_t np, size_t tb)
{
	return (np * tb + SNAP_ALIGN - 1) / SNAP_ALIGN * SNAP_ALIGN;
}
/* Packed tag bytes per page (0 for an untagged layout). */
static inline size_t tm_snap_tag_bytes(const snap_layout *L)
{
	return tm_geom_packed_bytes(&L->geom);
}
static inline uint64_t tm_snap_chunk_first(const snap_layout *L, uint64_t c)
{
	return c * L->chunk_pages;
}
static inline uint64_t tm_snap_chunk_npages(const snap_layout *L,
					    const snap_region *R, uint64_t c)
{
	uint64_t first = tm_snap_chunk_first(L, c);
	uint64_t left = R->npages - first;

	return left < L->chunk_pages ? left : L->chunk_pages;
}

/*
 * Plan a file for regions: fill L (header fields, region entries with their
 * bitmaps/chunk tables allocated and zeroed, all offsets; raw mode: fixed
 * chunk offsets). Fails with -EINVAL naming the region whose page size or
 * geometry does not fit.
 */
int tm_snap_plan(snap_layout *L, tm_region *const *regions, size_t n,
		 uint32_t flags, uint32_t chunk_bytes, tm_error *err);
/* The same, with sections (n_sect of them, NULL when 0) stored at the end
 * of the metadata area; sets TM_SNAP_SECTIONS when n_sect > 0. Refuses
 * (-EINVAL, naming the section) more than TM_SNAP_MAX_SECTIONS, type 0,
 * a repeated type, or one longer than TM_SNAP_SECTION_MAX. */
int tm_snap_plan_sections(snap_layout *L, tm_region *const *regions, size_t n,
			  uint32_t flags, uint32_t chunk_bytes,
			  const tm_snap_section *sect, size_t n_sect,
			  tm_error *err);
void tm_snap_layout_free(snap_layout *L);

/* Encode the head (header + region table, SNAP_ALIGN padded) into buf of
 * tm_snap_head_bytes(L) bytes, and the metadata area into buf of
 * L->meta_bytes rounded up to SNAP_ALIGN; tm_snap_encode_meta also sets
 * L->meta_xxh, so call it first. */
uint64_t tm_snap_head_bytes(const snap_layout *L);
void tm_snap_encode_meta(snap_layout *L, uint8_t *buf);
void tm_snap_encode_head(const snap_layout *L, uint8_t *buf);

/*
 * Decode and validate: tm_snap_decode_head checks magic, version, sizes,
 * flags, geometry and the head checksum of buf (len bytes read from offset
 * 0 of a file of file_size bytes) and fills L's header and region entries;
 * tm_snap_decode_meta then checks the metadata checksum and every bitmap and
 * chunk entry. Errors are -EBADMSG / -EPROTONOSUPPORT naming the offset.
 */
int tm_snap_decode_head(snap_layout *L, const uint8_t *buf, size_t len,
			uint64_t file_size, const char *path, tm_error *err);
int tm_snap_decode_meta(snap_layout *L, const uint8_t *buf, const char *path,
			tm_error *err);

#endif
