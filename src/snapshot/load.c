/*
 * load.c - read one chunk of a snapshot, check its checksum, decode it.
 * Restore, verify and lazy restore all go through tm_snap_load_chunk, so the
 * rule "nothing from a chunk whose checksum failed reaches a region" is
 * enforced in exactly one place: the loader hands out page pointers only
 * after the checksum (and the decoders' own validation) passed.
 */
#include "snapshot/snapint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

const uint8_t tm_snap_zero_page[TM_PAGE_SIZE_MAX] __attribute__((aligned(SNAP_ALIGN)));

int tm_snap_loadbuf_init(snap_loadbuf *b, const snap_layout *L, bool huge,
			 tm_error *err)
{
	void *(*io_alloc)(size_t) = huge ? tm_sfile_alloc_huge : tm_sfile_alloc;
	size_t cp = L->chunk_pages, ps = L->geom.page_size;
	size_t tb = tm_snap_tag_bytes(L);
	bool ok;

	memset(b, 0, sizeof(*b));
	b->dptr = calloc(cp, sizeof(*b->dptr));
	b->tptr = calloc(cp, sizeof(*b->tptr));
	if (L->flags & TM_SNAP_ZSTD) {
		b->blob = io_alloc(cp * ps + tm_tagstream_bound(&L->geom, cp) + SNAP_ALIGN);
		b->cat = io_alloc(cp * ps);
		b->tcat = tm_sfile_alloc(cp * tb);
		b->dctx = ZSTD_createDCtx();
		ok = b->blob && b->cat && b->tcat && b->dctx &&
		     tm_tagstream_ctx_new(&b->tsx, NULL) == 0;
	} else {
		b->data = io_alloc(cp * ps + tm_snap_tag_slot(cp, tb));
		ok = b->data != NULL;
	}
	if (!ok || !b->dptr || !b->tptr) {
		tm_snap_loadbuf_free(b);
		return tm_error_set(err, -ENOMEM, "snapshot: no memory for chunk buffers (%zu pages)", cp);
	}
	return 0;
}

void tm_snap_loadbuf_free(snap_loadbuf *b)
{
	free(b->data);
	free(b->blob);
	free(b->cat);
	free(b->tcat);
	free(b->dptr);
	free(b->tptr);
	ZSTD_freeDCtx(b->dctx);
	tm_tagstream_ctx_free(b->tsx);
	memset(b, 0, sizeof(*b));
}

static int chunk_error(tm_snapshot *s, uint32_t ri, uint64_t c, tm_error *err,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int chunk_error(tm_snapshot *s, uint32_t ri, uint64_t c, tm_error *err,
		       const char *fmt, ...)
{
	const snap_region *R = &s->L.regions[ri];
	uint64_t first = tm_snap_chunk_first(&s->L, c);
	char what[TM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return tm_error_set(err, -EBADMSG,
			    "snapshot %s: region %u '%s' chunk %" PRIu64 " (pages %" PRIu64 "-%" PRIu64 "): %s",
			    s->f.path, ri, R->name, c, first,
			    first + tm_snap_chunk_npages(&s->L, R, c) - 1, what);
}

/* Read failure inside a chunk: keep the sfile message, add the chunk. */
static int chunk_read_error(tm_snapshot *s, uint32_t ri, uint64_t c,
			    tm_error *e, tm_error *err)
{
	return chunk_error(s, ri, c, err, "%s", tm_error_msg(e));
}

/*
 * Raw mode: one read covers the chunk from its first stored page to the end
 * of what it stores (its tag slot when it has tags), holes included; the
 * checksum then covers exactly the pages the bitmaps say are stored.
 */
static int load_raw(tm_snapshot *s, snap_loadbuf *b, uint32_t ri, uint64_t c,
		    tm_error *err)
{
	const snap_layout *L = &s->L;
	const snap_region *R = &L->regions[ri];
	const snap_chunk *e = &R->chunks[c];
	uint64_t first = tm_snap_chunk_first(L, c), np = tm_snap_chunk_npages(L, R, c);
	size_t ps = L->geom.page_size, tb = tm_snap_tag_bytes(L);
	uint64_t lo = np, hi = 0, nt = 0, from, to, sum;
	uint8_t *tags = b->data + np * ps;
	XXH3_state_t st;
	tm_error e2;

	for (uint64_t k = 0; k < np; k++) {
		if (tm_bit_test(R->dbits, first + k)) {
			lo = k < lo ? k : lo;
			hi = k + 1;
		}
		nt += tm_bit_test(R->tbits, first + k);
	}
	from = (lo < np ? lo : np) * ps;
	to = nt ? np * ps + tm_snap_tag_slot(np, tb) : hi * ps;
	tm_error_clear(&e2);
	if (to > from && tm_sfile_pread(&s->f, b->data + from, to - from,
					e->data_off + from, &e2))
		return chunk_read_error(s, ri, c, &e2, err);
	XXH3_64bits_reset(&st);
	for (uint64_t k = 0; k < np; k++) {
		b->dptr[k] = tm_bit_test(R->dbits, first + k) ? b->data + k * ps : NULL;
		if (b->dptr[k])
			XXH3_64bits_update(&st, b->dptr[k], ps);
	}
	for (uint64_t k = 0; k < np; k++) {
		b->tptr[k] = tm_bit_test(R->tbits, first + k) ? tags + k * tb : NULL;
		if (b->tptr[k])
			XXH3_64bits_update(&st, b->tptr[k], tb);
	}
	sum = XXH3_64bits_digest(&st);
	if (sum != e->xxh)
		return chunk_error(s, ri, c, err,
				   "checksum mismatch over data at file offset %" PRIu64 " (0x%" PRIx64 ", %u bytes) and tags at %" PRIu64 " (0x%" PRIx64 ", %u bytes): stored 0x%016" PRIx64 ", computed 0x%016" PRIx64,
				   e->data_off, e->data_off, e->data_len, e->tag_off,
				   e->tag_off, e->tag_len, e->xxh, sum);
	b->stored_data = 0;
	for (uint64_t k = 0; k < np; k++)
		b->stored_data += b->dptr[k] ? ps : 0;
	b->stored_tags = nt * tb;
	return 0;
}

static int zstd_data(tm_snapshot *s, snap_loadbuf *b, uint32_t ri,
		     uint64_t c, uint64_t nd, const uint8_t **src,
		     tm_error *err)
{
	const snap_chunk *e = &s->L.regions[ri].chunks[c];
	size_t want = nd * s->L.geom.page_size, got;

	*src = b->blob;
	if (!(e->flags & SNAP_CHUNK_DATA_ZSTD))
		return 0;
	got = ZSTD_decompressDCtx(b->dctx, b->cat, want, b->blob, e->data_len);
	if (ZSTD_isError(got) || got != want)
		return chunk_error(s, ri, c, err,
				   "zstd data at file offset %" PRIu64 " (0x%" PRIx64 ") does not decode to %zu bytes: %s",
				   e->data_off, e->data_off, want,
				   ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size");
	*src = b->cat;
	return 0;
}

static int zstd_tags(tm_snapshot *s, snap_loadbuf *b, uint32_t ri,
		     uint64_t c, uint64_t nt, const uint8_t **src,
		     tm_error *err)
{
	const snap_chunk *e = &s->L.regions[ri].chunks[c];
	tm_error e2;

	*src = b->blob + e->data_len;
	if (!(e->flags & SNAP_CHUNK_TAGS_CODED))
		return 0;
	tm_error_clear(&e2);
	if (tm_tagstream_decode_ctx(b->tsx, &s->L.geom, *src, e->tag_len, nt, b->tcat, &e2) != 0)
		return chunk_error(s, ri, c, err,
				   "tag stream at file offset %" PRIu64 " (0x%" PRIx64 ") is invalid: %s",
				   e->tag_off, e->tag_off, tm_error_msg(&e2));
	*src = b->tcat;
	return 0;
}

static int load_zstd(tm_snapshot *s, snap_loadbuf *b, uint32_t ri,
		     uint64_t c, tm_error *err)
{
	const snap_layout *L = &s->L;
	const snap_region *R = &L->regions[ri];
	const snap_chunk *e = &R->chunks[c];
	uint64_t first = tm_snap_chunk_first(L, c), np = tm_snap_chunk_npages(L, R, c);
	size_t ps = L->geom.page_size, tb = tm_snap_tag_bytes(L);
	size_t total = (size_t)e->data_len + e->tag_len;
	uint64_t nd = 0, nt = 0, sum;
	const uint8_t *dsrc = NULL, *tsrc = NULL;
	tm_error e2;
	int rc;

	for (uint64_t k = 0; k < np; k++) {
		nd += tm_bit_test(R->dbits, first + k);
		nt += tm_bit_test(R->tbits, first + k);
	}
	memset(b->dptr, 0, np * sizeof(*b->dptr));
	memset(b->tptr, 0, np * sizeof(*b->tptr));
	b->stored_data = b->stored_tags = 0;
	if (total == 0)
		return 0;
	tm_error_clear(&e2);
	if (tm_sfile_pread(&s->f, b->blob, tm_snap_align_up(total, SNAP_ALIGN), e->data_off, &e2))
		return chunk_read_error(s, ri, c, &e2, err);
	sum = XXH3_64bits(b->blob, total);
	if (sum != e->xxh)
		return chunk_error(s, ri, c, err,
				   "checksum mismatch over the blob at file offset %" PRIu64 " (0x%" PRIx64 ", %zu bytes): stored 0x%016" PRIx64 ", computed 0x%016" PRIx64,
				   e->data_off, e->data_off, total, e->xxh, sum);
	rc = nd ? zstd_data(s, b, ri, c, nd, &dsrc, err) : 0;
	if (!rc && nt)
		rc = zstd_tags(s, b, ri, c, nt, &tsrc, err);
	if (rc)
		return rc;
	for (uint64_t k = 0, jd = 0, jt = 0; k < np; k++) {
		if (tm_bit_test(R->dbits, first + k))
			b->dptr[k] = dsrc + (jd++) * ps;
		if (tm_bit_test(R->tbits, first + k))
			b->tptr[k] = tsrc + (jt++) * tb;
	}
	b->stored_data = e->data_len;
	b->stored_tags = e->tag_len;
	return 0;
}

int tm_snap_load_chunk(tm_snapshot *s, snap_loadbuf *b, uint32_t ri, uint64_t c,
		       tm_error *err)
{
	if (s->L.flags & TM_SNAP_ZSTD)
		return load_zstd(s, b, ri, c, err);
	return load_raw(s, b, ri, c, err);
}
