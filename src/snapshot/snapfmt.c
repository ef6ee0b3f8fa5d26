/*
 * snapfmt.c - plan, encode, decode and validate the snapshot file's header,
 * region table and metadata area (bitmaps + chunk tables).
 *
 * One function, snap_place(), computes every offset from the region sizes;
 * the writer uses it to lay the file out and the reader uses it to check
 * that every offset the file claims is the one it must be, so a corrupted
 * or hand-made file cannot point a read anywhere unexpected.
 */
#include "snapshot/snapfmt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>
#include <zstd.h>

#include "common/util.h"

static uint64_t now_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t tm_snap_head_bytes(const snap_layout *L)
{
	return tm_snap_align_up(SNAP_HEADER_BYTES +
				(uint64_t)L->nregions * SNAP_REGION_BYTES, SNAP_ALIGN);
}

/* Every offset of the head, metadata and (raw mode) data areas, from the
 * regions' npages and flags alone. */
static void snap_place(snap_layout *L)
{
	size_t tb = tm_snap_tag_bytes(L);
	uint64_t ps = L->geom.page_size;
	uint64_t cur;

	L->table_end = SNAP_HEADER_BYTES + (uint64_t)L->nregions * SNAP_REGION_BYTES;
	L->meta_off = tm_snap_head_bytes(L);
	cur = L->meta_off;
	for (uint32_t i = 0; i < L->nregions; i++) {
		snap_region *R = &L->regions[i];

		R->nchunks = (R->npages + L->chunk_pages - 1) / L->chunk_pages;
		R->dbitmap_off = cur;
		cur += tm_snap_bitmap_bytes(R->npages);
		R->tbitmap_off = 0;
		if (R->flags & SNAP_REGION_TAGGED) {
			R->tbitmap_off = cur;
			cur += tm_snap_bitmap_bytes(R->npages);
		}
		R->chunks_off = cur;
		cur += R->nchunks * SNAP_CHUNK_BYTES;
	}
	L->sect_off = L->sect_bytes ? cur : 0;
	cur += L->sect_bytes;
	L->meta_bytes = cur - L->meta_off;
	L->data_off = tm_snap_align_up(cur, SNAP_AREA_ALIGN);
	cur = L->data_off;
	for (uint32_t i = 0; i < L->nregions; i++) {
		snap_region *R = &L->regions[i];
		bool tagged = R->flags & SNAP_REGION_TAGGED;
		uint64_t last = R->npages - (R->nchunks - 1) * L->chunk_pages;

		R->data_area = R->stride = 0;
		if (L->flags & TM_SNAP_ZSTD)
			continue;
		/* chunk c: its pages, then (tagged) their packed tags */
		R->stride = L->chunk_pages * ps +
			    (tagged ? tm_snap_tag_slot(L->chunk_pages, tb) : 0);
		R->data_area = tm_snap_align_up(cur, SNAP_AREA_ALIGN);
		cur = R->data_area + (R->nchunks - 1) * R->stride + last * ps +
		      (tagged ? tm_snap_tag_slot(last, tb) : 0);
	}
	if (!(L->flags & TM_SNAP_ZSTD))
		L->file_size = cur;
}

/* Raw mode: the chunk entry a chunk must have (fixed offsets): the pages
 * of chunk c at data_area + c * stride, their tags right after them. */
static void snap_raw_chunk(const snap_layout *L, const snap_region *R,
			   uint64_t c, snap_chunk *e)
{
	uint64_t np = tm_snap_chunk_npages(L, R, c);

	e->data_off = R->data_area + c * R->stride;
	e->data_len = (uint32_t)(np * L->geom.page_size);
	e->tag_off = e->tag_len = 0;
	if (R->flags & SNAP_REGION_TAGGED) {
		e->tag_off = e->data_off + e->data_len;
		e->tag_len = (uint32_t)(np * tm_snap_tag_bytes(L));
	}
	e->flags = 0;
}

static int snap_alloc_region(snap_layout *L, snap_region *R, tm_error *err)
{
	size_t words = tm_bitmap_words(R->npages);

	R->nchunks = (R->npages + L->chunk_pages - 1) / L->chunk_pages;
	R->dbits = calloc(words ? words : 1, 8);
	R->tbits = calloc(words ? words : 1, 8);
	R->chunks = calloc(R->nchunks ? R->nchunks : 1, sizeof(snap_chunk));
	if (!R->dbits || !R->tbits || !R->chunks)
		return tm_error_set(err, -ENOMEM,
				    "snapshot: no memory for the tables of region '%s' (%" PRIu64 " pages)",
				    R->name, R->npages);
	return 0;
}

void tm_snap_layout_free(snap_layout *L)
{
	free(L->sect);
	free(L->sect_buf);
	L->sect = NULL;
	L->sect_buf = NULL;
	if (!L->regions)
		return;
	for (uint32_t i = 0; i < L->nregions; i++) {
		free(L->regions[i].dbits);
		free(L->regions[i].tbits);
		free(L->regions[i].chunks);
	}
	free(L->regions);
	L->regions = NULL;
}

/* The geometry tagged regions share, or -EINVAL naming the odd one out. */
static int snap_pick_geom(tm_geom *g, tm_region *const *regions, size_t n,
			  tm_error *err)
{
	uint32_t ps = tm_region_geom(regions[0])->page_size;
	bool have = false;
	char a[96], b[96];

	for (size_t i = 0; i < n; i++) {
		const tm_geom *rg = tm_region_geom(regions[i]);

		if (rg->page_size != ps)
			return tm_error_set(err, -EINVAL,
					    "snapshot: region %zu '%s' has page size %u, region 0 has %u; one file holds one page size",
					    i, tm_region_name(regions[i]), rg->page_size, ps);
		if (rg->kind == TM_META_NONE)
			continue;
		if (have && !tm_geom_equal(g, rg))
			return tm_error_set(err, -EINVAL,
					    "snapshot: region %zu '%s' has metadata %s, earlier tagged regions %s",
					    i, tm_region_name(regions[i]),
					    tm_geom_describe(rg, a, sizeof(a)),
					    tm_geom_describe(g, b, sizeof(b)));
		*g = *rg;
		have = true;
	}
	if (!have)
		return tm_geom_init(g, TM_META_NONE, ps, 0, 0, err);
	return 0;
}

/* ---- sections ------------------------------------------------------ */

static uint64_t sect_first_off(uint32_t n)
{
	return tm_snap_align_up(8 + (uint64_t)n * SNAP_SECT_ENTRY_BYTES, 8);
}

/* The caller's sections: count, types and sizes allowed; the area size. */
static int sect_plan(snap_layout *L, const tm_snap_section *sect, size_t n,
		     tm_error *err)
{
	uint64_t off;

	if (n > TM_SNAP_MAX_SECTIONS || (n && !sect))
		return tm_error_set(err, -EINVAL, "snapshot: %zu sections (at most %u)",
				    n, TM_SNAP_MAX_SECTIONS);
	off = sect_first_off((uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		if (sect[i].type == 0 || sect[i].len > TM_SNAP_SECTION_MAX ||
		    (sect[i].len && !sect[i].data))
			return tm_error_set(err, -EINVAL,
					    "snapshot: section %zu: type %u, %zu bytes (type 0 and more than %u bytes are not allowed)",
					    i, sect[i].type, sect[i].len, TM_SNAP_SECTION_MAX);
		for (size_t j = 0; j < i; j++)
			if (sect[j].type == sect[i].type)
				return tm_error_set(err, -EINVAL,
						    "snapshot: sections %zu and %zu both have type %u",
						    j, i, sect[i].type);
		off = tm_snap_align_up(off + sect[i].len, 8);
	}
	L->nsect = (uint32_t)n;
	L->usect = sect;
	L->sect_bytes = n ? off : 0;
	return 0;
}

/* Section area: u32 count, u32 0, count entries {u32 type, u32 flags 0,
 * u64 offset, u64 length}, then the payloads, each at the next multiple
 * of 8 (zero padding). */
static void sect_encode(const snap_layout *L, uint8_t *p)
{
	uint64_t off = sect_first_off(L->nsect);

	tm_snap_put32(p, L->nsect);
	tm_snap_put32(p + 4, 0);
	for (uint32_t i = 0; i < L->nsect; i++) {
		uint8_t *e = p + 8 + (uint64_t)i * SNAP_SECT_ENTRY_BYTES;

		tm_snap_put32(e, L->usect[i].type);
		tm_snap_put32(e + 4, 0);
		tm_snap_put64(e + 8, off);
		tm_snap_put64(e + 16, L->usect[i].len);
		if (L->usect[i].len)
			memcpy(p + off, L->usect[i].data, L->usect[i].len);
		off = tm_snap_align_up(off + L->usect[i].len, 8);
	}
}

int tm_snap_plan(snap_layout *L, tm_region *const *regions, size_t n,
		 uint32_t flags, uint32_t chunk_bytes, tm_error *err)
{
	return tm_snap_plan_sections(L, regions, n, flags, chunk_bytes, NULL, 0, err);
}

int tm_snap_plan_sections(snap_layout *L, tm_region *const *regions, size_t n,
			  uint32_t flags, uint32_t chunk_bytes,
			  const tm_snap_section *sect, size_t n_sect,
			  tm_error *err)
{
	int rc;

	memset(L, 0, sizeof(*L));
	flags &= ~(uint32_t)TM_SNAP_SECTIONS;
	if (n_sect)
		flags |= TM_SNAP_SECTIONS;
	if (n == 0 || n > TM_SNAP_MAX_REGIONS)
		return tm_error_set(err, -EINVAL,
				    "snapshot: %zu regions (1..%u allowed)", n, TM_SNAP_MAX_REGIONS);
	if (flags & ~SNAP_KNOWN_FLAGS)
		return tm_error_set(err, -EINVAL, "snapshot: unknown flags 0x%x",
				    flags & ~SNAP_KNOWN_FLAGS);
	rc = snap_pick_geom(&L->geom, regions, n, err);
	if (!rc)
		rc = sect_plan(L, sect, n_sect, err);
	if (rc)
		return rc;
	if (chunk_bytes == 0)
		chunk_bytes = TM_SNAP_CHUNK_DEFAULT;
	if (chunk_bytes % L->geom.page_size || chunk_bytes > TM_SNAP_CHUNK_MAX)
		return tm_error_set(err, -EINVAL,
				    "snapshot: chunk size %u is not a multiple of the page size %u up to %u",
				    chunk_bytes, L->geom.page_size, TM_SNAP_CHUNK_MAX);
	L->version = TM_SNAP_VERSION;
	L->flags = flags;
	L->chunk_pages = chunk_bytes / L->geom.page_size;
	L->nregions = (uint32_t)n;
	L->created_ns = now_realtime_ns();
	L->regions = calloc(n, sizeof(snap_region));
	if (!L->regions)
		return tm_error_set(err, -ENOMEM, "snapshot: no memory for %zu regions", n);
	for (size_t i = 0; i < n; i++) {
		snap_region *R = &L->regions[i];

		snprintf(R->name, sizeof(R->name), "%s", tm_region_name(regions[i]));
		R->size = tm_region_size(regions[i]);
		R->npages = tm_region_npages(regions[i]);
		if (tm_region_geom(regions[i])->kind != TM_META_NONE)
			R->flags = SNAP_REGION_TAGGED;
		rc = snap_alloc_region(L, R, err);
		if (rc) {
			tm_snap_layout_free(L);
			return rc;
		}
	}
	snap_place(L);
	if (!(flags & TM_SNAP_ZSTD))
		for (size_t i = 0; i < n; i++)
			for (uint64_t c = 0; c < L->regions[i].nchunks; c++)
				snap_raw_chunk(L, &L->regions[i], c,
					       &L->regions[i].chunks[c]);
	return 0;
}

/* ---- encoding ------------------------------------------------------ */

static void put_bitmap(uint8_t *p, const uint64_t *bits, uint64_t npages)
{
	for (uint64_t w = 0; w < (npages + 63) / 64; w++)
		tm_snap_put64(p + w * 8, bits[w]);
}

static void put_chunk(uint8_t *p, const snap_chunk *e)
{
	tm_snap_put64(p + SC_DATA_OFF, e->data_off);
	tm_snap_put64(p + SC_TAG_OFF, e->tag_off);
	tm_snap_put32(p + SC_DATA_LEN, e->data_len);
	tm_snap_put32(p + SC_TAG_LEN, e->tag_len);
	tm_snap_put32(p + SC_FLAGS, e->flags);
	tm_snap_put32(p + SC_RESERVED, 0);
	tm_snap_put64(p + SC_XXH, e->xxh);
}

void tm_snap_encode_meta(snap_layout *L, uint8_t *buf)
{
	memset(buf, 0, tm_snap_align_up(L->meta_bytes, SNAP_ALIGN));
	for (uint32_t i = 0; i < L->nregions; i++) {
		const snap_region *R = &L->regions[i];

		put_bitmap(buf + (R->dbitmap_off - L->meta_off), R->dbits, R->npages);
		if (R->tbitmap_off)
			put_bitmap(buf + (R->tbitmap_off - L->meta_off), R->tbits,
				   R->npages);
		for (uint64_t c = 0; c < R->nchunks; c++)
			put_chunk(buf + (R->chunks_off - L->meta_off) +
				  c * SNAP_CHUNK_BYTES, &R->chunks[c]);
	}
	if (L->sect_bytes)
		sect_encode(L, buf + (L->sect_off - L->meta_off));
	L->meta_xxh = XXH3_64bits(buf, L->meta_bytes);
}

static void put_region(uint8_t *p, const snap_region *R)
{
	memset(p, 0, SNAP_REGION_BYTES);
	memcpy(p + SR_NAME, R->name, strnlen(R->name, TM_REGION_NAME_MAX - 1));
	tm_snap_put64(p + SR_SIZE, R->size);
	tm_snap_put64(p + SR_NPAGES, R->npages);
	tm_snap_put32(p + SR_FLAGS, R->flags);
	tm_snap_put64(p + SR_NCHUNKS, R->nchunks);
	tm_snap_put64(p + SR_DBITMAP, R->dbitmap_off);
	tm_snap_put64(p + SR_TBITMAP, R->tbitmap_off);
	tm_snap_put64(p + SR_CHUNKS, R->chunks_off);
	tm_snap_put64(p + SR_DATA_AREA, R->data_area);
	tm_snap_put64(p + SR_STRIDE, R->stride);
	tm_snap_put64(p + SR_DIGEST, R->digest);
}

static uint64_t head_checksum(const uint8_t *buf, uint64_t table_end)
{
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, buf, SH_HEAD_XXH);
	XXH3_64bits_update(&st, buf + SNAP_HEADER_BYTES,
			   table_end - SNAP_HEADER_BYTES);
	return XXH3_64bits_digest(&st);
}

void tm_snap_encode_head(const snap_layout *L, uint8_t *buf)
{
	memset(buf, 0, tm_snap_head_bytes(L));
	memcpy(buf + SH_MAGIC, SNAP_MAGIC, 8);
	tm_snap_put32(buf + SH_VERSION, L->version);
	tm_snap_put32(buf + SH_HDR_BYTES, SNAP_HEADER_BYTES);
	tm_snap_put32(buf + SH_FLAGS, L->flags);
	tm_snap_put32(buf + SH_NREGIONS, L->nregions);
	tm_snap_put32(buf + SH_KIND, L->geom.kind);
	tm_snap_put32(buf + SH_KIND_VERSION, L->geom.version);
	tm_snap_put32(buf + SH_PAGE_SIZE, L->geom.page_size);
	tm_snap_put32(buf + SH_GRANULE, L->geom.granule);
	tm_snap_put32(buf + SH_BITS, L->geom.bits);
	tm_snap_put32(buf + SH_CHUNK_PAGES, L->chunk_pages);
	tm_snap_put32(buf + SH_ENTRY_BYTES, SNAP_REGION_BYTES);
	tm_snap_put32(buf + SH_ALIGN, SNAP_ALIGN);
	tm_snap_put64(buf + SH_TABLE_END, L->table_end);
	tm_snap_put64(buf + SH_META_OFF, L->meta_off);
	tm_snap_put64(buf + SH_META_BYTES, L->meta_bytes);
	tm_snap_put64(buf + SH_META_XXH, L->meta_xxh);
	tm_snap_put64(buf + SH_DATA_OFF, L->data_off);
	tm_snap_put64(buf + SH_FILE_SIZE, L->file_size);
	tm_snap_put64(buf + SH_CREATED, L->created_ns);
	tm_snap_put64(buf + SH_SECT_BYTES, L->sect_bytes);
	for (uint32_t i = 0; i < L->nregions; i++)
		put_region(buf + SNAP_HEADER_BYTES + (uint64_t)i * SNAP_REGION_BYTES,
			   &L->regions[i]);
	tm_snap_put64(buf + SH_HEAD_XXH, head_checksum(buf, L->table_end));
}

/* ---- decoding ------------------------------------------------------ */

#define BAD(off, ...) bad_at(err, path, (uint64_t)(off), __VA_ARGS__)

static int __attribute__((format(printf, 4, 5)))
bad_at(tm_error *err, const char *path, uint64_t off, const char *fmt, ...)
{
	char what[TM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return tm_error_set(err, -EBADMSG, "snapshot %s: offset %" PRIu64 " (0x%" PRIx64 "): %s",
			    path, off, off, what);
}

static int check_magic(const uint8_t *buf, size_t len, const char *path,
		       tm_error *err)
{
	char shown[9];

	if (len < 8 || memcmp(buf, SNAP_MAGIC, 8) != 0) {
		size_t k = len < 8 ? len : 8;

		for (size_t i = 0; i < 8; i++)
			shown[i] = i < k && buf[i] >= 0x20 && buf[i] < 0x7f ? (char)buf[i] : '.';
		shown[8] = 0;
		return BAD(0, "not a tagmem snapshot: magic is \"%s\", expected \"%s\"",
			   shown, SNAP_MAGIC);
	}
	if (len < SNAP_HEADER_BYTES)
		return BAD(len, "truncated: the file ends inside the %u-byte header",
			   SNAP_HEADER_BYTES);
	return 0;
}

static int check_fixed_fields(const uint8_t *buf, const char *path,
			      tm_error *err)
{
	uint32_t v = tm_snap_get32(buf + SH_VERSION);

	if (v != TM_SNAP_VERSION)
		return tm_error_set(err, -EPROTONOSUPPORT,
				    "snapshot %s: offset %d: format version %u, this tagmem reads version %u",
				    path, SH_VERSION, v, TM_SNAP_VERSION);
	if (tm_snap_get32(buf + SH_HDR_BYTES) != SNAP_HEADER_BYTES)
		return BAD(SH_HDR_BYTES, "header size %u, expected %u",
			   tm_snap_get32(buf + SH_HDR_BYTES), SNAP_HEADER_BYTES);
	if (tm_snap_get32(buf + SH_ENTRY_BYTES) != SNAP_REGION_BYTES)
		return BAD(SH_ENTRY_BYTES, "region entry size %u, expected %u",
			   tm_snap_get32(buf + SH_ENTRY_BYTES), SNAP_REGION_BYTES);
	if (tm_snap_get32(buf + SH_ALIGN) != SNAP_ALIGN)
		return BAD(SH_ALIGN, "alignment %u, expected %u",
			   tm_snap_get32(buf + SH_ALIGN), SNAP_ALIGN);
	v = tm_snap_get32(buf + SH_NREGIONS);
	if (v == 0 || v > TM_SNAP_MAX_REGIONS)
		return BAD(SH_NREGIONS, "%u regions (1..%u allowed)", v,
			   TM_SNAP_MAX_REGIONS);
	return 0;
}

static int decode_geom(snap_layout *L, const uint8_t *buf, const char *path,
		       tm_error *err)
{
	tm_error e;
	uint32_t kind = tm_snap_get32(buf + SH_KIND);
	int rc;

	tm_error_clear(&e);
	rc = tm_geom_init(&L->geom, kind, tm_snap_get32(buf + SH_PAGE_SIZE),
			  tm_snap_get32(buf + SH_GRANULE), tm_snap_get32(buf + SH_BITS), &e);
	if (rc)
		return BAD(SH_KIND, "bad metadata geometry: %s", tm_error_msg(&e));
	if (kind != TM_META_NONE &&
	    (L->geom.granule != tm_snap_get32(buf + SH_GRANULE) ||
	     L->geom.bits != tm_snap_get32(buf + SH_BITS)))
		return BAD(SH_GRANULE, "granule %u / %u bits does not match metadata kind %u",
			   tm_snap_get32(buf + SH_GRANULE), tm_snap_get32(buf + SH_BITS), kind);
	if (tm_snap_get32(buf + SH_KIND_VERSION) != L->geom.version)
		return tm_error_set(err, -EPROTONOSUPPORT,
				    "snapshot %s: offset %d: metadata kind %u version %u, this tagmem knows version %u",
				    path, SH_KIND_VERSION, kind,
				    tm_snap_get32(buf + SH_KIND_VERSION), L->geom.version);
	L->chunk_pages = tm_snap_get32(buf + SH_CHUNK_PAGES);
	if (L->chunk_pages == 0 ||
	    (uint64_t)L->chunk_pages * L->geom.page_size > TM_SNAP_CHUNK_MAX)
		return BAD(SH_CHUNK_PAGES, "chunk of %u pages of %u bytes (1..%u bytes allowed)",
			   L->chunk_pages, L->geom.page_size, TM_SNAP_CHUNK_MAX);
	return 0;
}

static int decode_region(snap_layout *L, snap_region *R, const uint8_t *p,
			 uint64_t at, const char *path, tm_error *err)
{
	uint64_t ps = L->geom.page_size;

	if (!memchr(p + SR_NAME, 0, TM_REGION_NAME_MAX))
		return BAD(at + SR_NAME, "region name is not NUL-terminated");
	memcpy(R->name, p + SR_NAME, TM_REGION_NAME_MAX);
	R->size = tm_snap_get64(p + SR_SIZE);
	R->npages = tm_snap_get64(p + SR_NPAGES);
	R->flags = tm_snap_get32(p + SR_FLAGS);
	if (R->npages == 0 || R->npages > (UINT64_C(1) << 48) / ps ||
	    R->size != R->npages * ps)
		return BAD(at + SR_SIZE, "region '%s': size %" PRIu64 " does not match %" PRIu64 " pages of %" PRIu64 " bytes",
			   R->name, R->size, R->npages, ps);
	if (R->flags & ~SNAP_REGION_TAGGED)
		return BAD(at + SR_FLAGS, "region '%s': unknown flags 0x%x", R->name, R->flags);
	if ((R->flags & SNAP_REGION_TAGGED) && L->geom.kind == TM_META_NONE)
		return BAD(at + SR_FLAGS, "region '%s' is tagged but the file has no metadata kind",
			   R->name);
	if (tm_snap_get32(p + SR_RESERVED0) || tm_snap_get64(p + SR_RESERVED1) ||
	    tm_snap_get64(p + SR_RESERVED1 + 8))
		return BAD(at + SR_RESERVED0, "region '%s': reserved fields are not zero", R->name);
	R->digest = tm_snap_get64(p + SR_DIGEST);
	return 0;
}

/* The offsets a region entry claims must be the ones snap_place computes. */
static int check_region_offsets(const snap_region *R, const uint8_t *p,
				uint64_t at, const char *path, tm_error *err)
{
	static const struct { int off; const char *what; } f[] = {
		{ SR_NCHUNKS, "chunk count" }, { SR_DBITMAP, "data bitmap offset" },
		{ SR_TBITMAP, "tag bitmap offset" }, { SR_CHUNKS, "chunk table offset" },
		{ SR_DATA_AREA, "data area offset" }, { SR_STRIDE, "chunk stride" },
	};
	const uint64_t want[] = { R->nchunks, R->dbitmap_off, R->tbitmap_off,
				  R->chunks_off, R->data_area, R->stride };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (tm_snap_get64(p + f[i].off) != want[i])
			return BAD(at + (uint64_t)f[i].off,
				   "region '%s': %s is %" PRIu64 ", the layout requires %" PRIu64,
				   R->name, f[i].what, tm_snap_get64(p + f[i].off), want[i]);
	return 0;
}

static int check_sizes(const snap_layout *L, const uint8_t *buf,
		       uint64_t file_size, const char *path, tm_error *err)
{
	static const struct { int off; const char *what; } f[] = {
		{ SH_TABLE_END, "region table end" }, { SH_META_OFF, "metadata offset" },
		{ SH_META_BYTES, "metadata size" }, { SH_DATA_OFF, "data offset" },
	};
	const uint64_t want[] = { L->table_end, L->meta_off, L->meta_bytes, L->data_off };

	for (size_t i = 0; i < 4; i++)
		if (tm_snap_get64(buf + f[i].off) != want[i])
			return BAD(f[i].off, "%s is %" PRIu64 ", the layout requires %" PRIu64,
				   f[i].what, tm_snap_get64(buf + f[i].off), want[i]);
	if (file_size < L->file_size)
		return BAD(file_size, "truncated: the header (offset %d) records %" PRIu64 " bytes but the file has %" PRIu64 "; everything from offset %" PRIu64 " on is missing",
			   SH_FILE_SIZE, L->file_size, file_size, file_size);
	if (file_size > L->file_size)
		return BAD(L->file_size, "the header (offset %d) records %" PRIu64 " bytes but the file has %" PRIu64 ": unexpected bytes from offset %" PRIu64,
			   SH_FILE_SIZE, L->file_size, file_size, L->file_size);
	if ((L->flags & TM_SNAP_ZSTD) &&
	    (L->file_size < L->data_off || L->file_size % SNAP_ALIGN))
		return BAD(SH_FILE_SIZE, "file size %" PRIu64 " is below the data offset %" PRIu64 " or unaligned",
			   L->file_size, L->data_off);
	return 0;
}

/* The section area's size: only with TM_SNAP_SECTIONS (then room for at
 * least one entry, at most what TM_SNAP_MAX_SECTIONS full ones take),
 * else the field is reserved and 0. */
static int decode_sect_bytes(snap_layout *L, const uint8_t *buf,
			     const char *path, tm_error *err)
{
	uint64_t v = tm_snap_get64(buf + SH_SECT_BYTES);
	uint64_t max = sect_first_off(TM_SNAP_MAX_SECTIONS) +
		       (uint64_t)TM_SNAP_MAX_SECTIONS * (TM_SNAP_SECTION_MAX + 8);

	if (!(L->flags & TM_SNAP_SECTIONS)) {
		if (v)
			return BAD(SH_SECT_BYTES, "reserved field is not zero (section bytes %" PRIu64 " without the SECTIONS flag)", v);
		return 0;
	}
	if (v < sect_first_off(1) || v > max || v % 8)
		return BAD(SH_SECT_BYTES, "section area of %" PRIu64 " bytes (a multiple of 8, %" PRIu64 " .. %" PRIu64 ")",
			   v, sect_first_off(1), max);
	L->sect_bytes = v;
	return 0;
}

int tm_snap_decode_head(snap_layout *L, const uint8_t *buf, size_t len,
			uint64_t file_size, const char *path, tm_error *err)
{
	uint64_t table_end, sum;
	int rc;

	memset(L, 0, sizeof(*L));
	rc = check_magic(buf, len, path, err);
	if (!rc)
		rc = check_fixed_fields(buf, path, err);
	if (rc)
		return rc;
	L->nregions = tm_snap_get32(buf + SH_NREGIONS);
	table_end = SNAP_HEADER_BYTES + (uint64_t)L->nregions * SNAP_REGION_BYTES;
	if (len < table_end)
		return BAD(len, "truncated: the file ends inside the region table (%u regions end at offset %" PRIu64 ")",
			   L->nregions, table_end);
	sum = head_checksum(buf, table_end);
	if (sum != tm_snap_get64(buf + SH_HEAD_XXH))
		return BAD(SH_HEAD_XXH, "header checksum mismatch over [0, %" PRIu64 "): stored 0x%016" PRIx64 ", computed 0x%016" PRIx64,
			   table_end, tm_snap_get64(buf + SH_HEAD_XXH), sum);
	L->version = TM_SNAP_VERSION;
	L->flags = tm_snap_get32(buf + SH_FLAGS);
	if (L->flags & ~SNAP_KNOWN_FLAGS)
		return tm_error_set(err, -EPROTONOSUPPORT,
				    "snapshot %s: offset %d: unknown feature flags 0x%x",
				    path, SH_FLAGS, L->flags & ~SNAP_KNOWN_FLAGS);
	rc = decode_geom(L, buf, path, err);
	if (!rc)
		rc = decode_sect_bytes(L, buf, path, err);
	if (rc)
		return rc;
	L->regions = calloc(L->nregions, sizeof(snap_region));
	if (!L->regions)
		return tm_error_set(err, -ENOMEM, "snapshot %s: no memory for %u regions",
				    path, L->nregions);
	for (uint32_t i = 0; i < L->nregions && !rc; i++)
		rc = decode_region(L, &L->regions[i],
				   buf + SNAP_HEADER_BYTES + (uint64_t)i * SNAP_REGION_BYTES,
				   SNAP_HEADER_BYTES + (uint64_t)i * SNAP_REGION_BYTES, path, err);
	if (rc)
		return rc;
	snap_place(L);
	if (!(L->flags & TM_SNAP_ZSTD) &&
	    tm_snap_get64(buf + SH_FILE_SIZE) != L->file_size)
		return BAD(SH_FILE_SIZE, "file size field %" PRIu64 " does not match the fixed layout's %" PRIu64,
			   tm_snap_get64(buf + SH_FILE_SIZE), L->file_size);
	L->file_size = tm_snap_get64(buf + SH_FILE_SIZE);
	for (uint32_t i = 0; i < L->nregions && !rc; i++)
		rc = check_region_offsets(&L->regions[i],
					  buf + SNAP_HEADER_BYTES + (uint64_t)i * SNAP_REGION_BYTES,
					  SNAP_HEADER_BYTES + (uint64_t)i * SNAP_REGION_BYTES, path, err);
	if (!rc)
		rc = check_sizes(L, buf, file_size, path, err);
	L->meta_xxh = tm_snap_get64(buf + SH_META_XXH);
	L->created_ns = tm_snap_get64(buf + SH_CREATED);
	return rc;
}

/* Bits at or beyond npages in the last word must be clear. */
static int get_bitmap(uint64_t *bits, const uint8_t *p, uint64_t npages,
		      uint64_t at, const char *what, const snap_region *R,
		      const char *path, tm_error *err)
{
	uint64_t words = (npages + 63) / 64;

	for (uint64_t w = 0; w < words; w++)
		bits[w] = tm_snap_get64(p + w * 8);
	if ((npages & 63) && (bits[words - 1] >> (npages & 63)))
		return BAD(at + (words - 1) * 8, "region '%s': %s has bits set beyond page %" PRIu64,
			   R->name, what, npages - 1);
	return 0;
}

static uint64_t count_bits(const uint64_t *bits, uint64_t first, uint64_t n)
{
	uint64_t k = 0;

	for (uint64_t i = first; i < first + n; i++)
		k += tm_bit_test(bits, i);
	return k;
}

static int check_raw_chunk(const snap_layout *L, const snap_region *R,
			   uint64_t c, const snap_chunk *e, uint64_t at,
			   const char *path, tm_error *err)
{
	snap_chunk want;

	snap_raw_chunk(L, R, c, &want);
	if (e->data_off != want.data_off || e->data_len != want.data_len ||
	    e->tag_off != want.tag_off || e->tag_len != want.tag_len || e->flags)
		return BAD(at, "region '%s' chunk %" PRIu64 ": entry does not match the fixed layout (data at %" PRIu64 "+%u, tags at %" PRIu64 "+%u expected)",
			   R->name, c, want.data_off, want.data_len, want.tag_off, want.tag_len);
	return 0;
}

static int check_zstd_chunk(const snap_layout *L, const snap_region *R,
			    uint64_t c, const snap_chunk *e, uint64_t at,
			    const char *path, tm_error *err)
{
	uint64_t first = tm_snap_chunk_first(L, c), np = tm_snap_chunk_npages(L, R, c);
	uint64_t nd = count_bits(R->dbits, first, np), nt = count_bits(R->tbits, first, np);
	uint64_t raw_d = nd * L->geom.page_size, raw_t = nt * tm_snap_tag_bytes(L);
	uint64_t end = e->data_off + (uint64_t)e->data_len + e->tag_len;

	if (e->flags & ~(uint32_t)(SNAP_CHUNK_DATA_ZSTD | SNAP_CHUNK_TAGS_CODED))
		return BAD(at + SC_FLAGS, "region '%s' chunk %" PRIu64 ": unknown flags 0x%x",
			   R->name, c, e->flags);
	if ((nd == 0) != (e->data_len == 0) || (nt == 0) != (e->tag_len == 0) ||
	    (!(e->flags & SNAP_CHUNK_DATA_ZSTD) && e->data_len != raw_d) ||
	    (!(e->flags & SNAP_CHUNK_TAGS_CODED) && e->tag_len != raw_t) ||
	    (nd == 0 && (e->flags & SNAP_CHUNK_DATA_ZSTD)) ||
	    (nt == 0 && (e->flags & SNAP_CHUNK_TAGS_CODED)) ||
	    e->data_len > raw_d || e->tag_len > tm_tagstream_bound(&L->geom, nt))
		return BAD(at + SC_DATA_LEN, "region '%s' chunk %" PRIu64 ": stored sizes %u+%u do not fit %" PRIu64 " data pages and %" PRIu64 " tagged pages",
			   R->name, c, e->data_len, e->tag_len, nd, nt);
	if (nd + nt == 0) {
		if (e->data_off || e->tag_off || e->xxh)
			return BAD(at, "region '%s' chunk %" PRIu64 ": empty chunk has offsets",
				   R->name, c);
		return 0;
	}
	if (e->data_off < L->data_off || e->data_off % SNAP_ALIGN ||
	    e->tag_off != e->data_off + e->data_len || end > L->file_size)
		return BAD(at + SC_DATA_OFF, "region '%s' chunk %" PRIu64 ": blob at %" PRIu64 "+%" PRIu64 " is outside the data area [%" PRIu64 ", %" PRIu64 ") or misplaced",
			   R->name, c, e->data_off, end - e->data_off, L->data_off, L->file_size);
	return 0;
}

static void get_chunk(snap_chunk *e, const uint8_t *p)
{
	e->data_off = tm_snap_get64(p + SC_DATA_OFF);
	e->tag_off = tm_snap_get64(p + SC_TAG_OFF);
	e->data_len = tm_snap_get32(p + SC_DATA_LEN);
	e->tag_len = tm_snap_get32(p + SC_TAG_LEN);
	e->flags = tm_snap_get32(p + SC_FLAGS);
	e->xxh = tm_snap_get64(p + SC_XXH);
}

static int decode_region_meta(snap_layout *L, snap_region *R,
			      const uint8_t *buf, const char *path,
			      tm_error *err)
{
	const uint8_t *m = buf - L->meta_off; /* index by file offset */
	int rc;

	rc = get_bitmap(R->dbits, m + R->dbitmap_off, R->npages, R->dbitmap_off,
			"data bitmap", R, path, err);
	if (!rc && R->tbitmap_off)
		rc = get_bitmap(R->tbits, m + R->tbitmap_off, R->npages,
				R->tbitmap_off, "tag bitmap", R, path, err);
	for (uint64_t c = 0; !rc && c < R->nchunks; c++) {
		uint64_t at = R->chunks_off + c * SNAP_CHUNK_BYTES;

		get_chunk(&R->chunks[c], m + at);
		if (tm_snap_get32(m + at + SC_RESERVED))
			return BAD(at + SC_RESERVED, "region '%s' chunk %" PRIu64 ": reserved field is not zero",
				   R->name, c);
		rc = (L->flags & TM_SNAP_ZSTD)
			? check_zstd_chunk(L, R, c, &R->chunks[c], at, path, err)
			: check_raw_chunk(L, R, c, &R->chunks[c], at, path, err);
	}
	return rc;
}

/* One section entry at file offset at: flags 0, its payload exactly where
 * the layout puts it, a type not seen before. */
static int decode_sect_entry(snap_layout *L, uint32_t i, const uint8_t *e,
			     uint64_t at, uint64_t *next, const char *path,
			     tm_error *err)
{
	snap_section *S = &L->sect[i];

	S->type = tm_snap_get32(e);
	S->off = tm_snap_get64(e + 8);
	S->len = tm_snap_get64(e + 16);
	if (S->type == 0 || tm_snap_get32(e + 4))
		return BAD(at, "section %u: type %u, flags 0x%x (type 0 and flags are not allowed)",
			   i, S->type, tm_snap_get32(e + 4));
	for (uint32_t j = 0; j < i; j++)
		if (L->sect[j].type == S->type)
			return BAD(at, "section %u repeats type %u of section %u", i, S->type, j);
	if (S->off != *next || S->len > TM_SNAP_SECTION_MAX ||
	    S->len > L->sect_bytes - S->off)
		return BAD(at + 8, "section %u (type %u): %" PRIu64 " bytes at area offset %" PRIu64 ", the layout requires offset %" PRIu64 " and at most %" PRIu64 " bytes",
			   i, S->type, S->len, S->off, *next,
			   *next < L->sect_bytes ? L->sect_bytes - *next : 0);
	*next = tm_snap_align_up(S->off + S->len, 8);
	return 0;
}

/* The section area (already under the metadata checksum): its table, and
 * that the payloads and their zero padding fill it exactly. */
static int decode_sections(snap_layout *L, const uint8_t *meta,
			   const char *path, tm_error *err)
{
	const uint8_t *p = meta + (L->sect_off - L->meta_off);
	uint64_t n = tm_snap_get32(p), next, pad = 0;
	int rc = 0;

	if (n == 0 || n > TM_SNAP_MAX_SECTIONS || tm_snap_get32(p + 4) ||
	    sect_first_off((uint32_t)n) > L->sect_bytes)
		return BAD(L->sect_off, "section area: %" PRIu64 " sections (1..%u, in %" PRIu64 " bytes), reserved 0x%x",
			   n, TM_SNAP_MAX_SECTIONS, L->sect_bytes, tm_snap_get32(p + 4));
	L->nsect = (uint32_t)n;
	L->sect = calloc(n, sizeof(*L->sect));
	L->sect_buf = malloc(L->sect_bytes);
	if (!L->sect || !L->sect_buf)
		return tm_error_set(err, -ENOMEM, "snapshot %s: no memory for sections", path);
	next = sect_first_off((uint32_t)n);
	for (uint32_t i = 0; i < n && !rc; i++)
		rc = decode_sect_entry(L, i, p + 8 + (uint64_t)i * SNAP_SECT_ENTRY_BYTES,
				       L->sect_off + 8 + (uint64_t)i * SNAP_SECT_ENTRY_BYTES,
				       &next, path, err);
	if (rc)
		return rc;
	if (next != L->sect_bytes)
		return BAD(L->sect_off + next, "section area is %" PRIu64 " bytes, its sections end at %" PRIu64,
			   L->sect_bytes, next);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t end = L->sect[i].off + L->sect[i].len;
		uint64_t stop = i + 1 < n ? L->sect[i + 1].off : L->sect_bytes;

		for (pad = end; pad < stop; pad++)
			if (p[pad])
				return BAD(L->sect_off + pad, "section %u: padding byte is not zero", i);
	}
	for (uint64_t k = 8 + n * SNAP_SECT_ENTRY_BYTES; k < sect_first_off((uint32_t)n); k++)
		if (p[k])
			return BAD(L->sect_off + k, "section table padding is not zero");
	memcpy(L->sect_buf, p, L->sect_bytes);
	return 0;
}

int tm_snap_decode_meta(snap_layout *L, const uint8_t *buf, const char *path,
			tm_error *err)
{
	uint64_t sum = XXH3_64bits(buf, L->meta_bytes);
	int rc = 0;

	if (sum != L->meta_xxh)
		return BAD(L->meta_off, "metadata checksum mismatch over [%" PRIu64 ", %" PRIu64 "): header says 0x%016" PRIx64 ", computed 0x%016" PRIx64,
			   L->meta_off, L->meta_off + L->meta_bytes, L->meta_xxh, sum);
	for (uint32_t i = 0; i < L->nregions && !rc; i++) {
		rc = snap_alloc_region(L, &L->regions[i], err);
		if (!rc)
			rc = decode_region_meta(L, &L->regions[i], buf, path, err);
	}
	if (!rc && L->sect_bytes)
		rc = decode_sections(L, buf, path, err);
	return rc;
}
