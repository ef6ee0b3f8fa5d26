/*
 * tagratio.c - tm_snapshot_tag_ratio: how well the stream tag codec packs
 * this snapshot's tags (what `tagmem snapshot info` reports). Reads only
 * the tag areas/blobs, never the data, so info stays fast on big files;
 * checksums are verify's business, but every tag stream read here is still
 * validated by the decoder before it is re-encoded.
 */
#include "snapshot/snapint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "common/util.h"

struct ratio_bufs {
	uint8_t *in;    /* stored tag bytes of one chunk */
	uint8_t *tcat;  /* packed tags of the chunk's tagged pages */
	uint8_t *enc;   /* codec output */
	size_t enc_cap;
	tm_tagstream_ctx *tsx;
};

/* Packed tags of the tagged pages of chunk c into b->tcat; *nt = count. */
static int chunk_tags(tm_snapshot *s, struct ratio_bufs *b, uint32_t ri,
		      uint64_t c, uint64_t *nt, tm_error *err)
{
	const snap_layout *L = &s->L;
	const snap_region *R = &L->regions[ri];
	const snap_chunk *e = &R->chunks[c];
	uint64_t first = tm_snap_chunk_first(L, c), np = tm_snap_chunk_npages(L, R, c);
	size_t tb = tm_snap_tag_bytes(L);
	int rc;

	*nt = 0;
	for (uint64_t k = 0; k < np; k++)
		*nt += tm_bit_test(R->tbits, first + k);
	if (*nt == 0)
		return 0;
	rc = tm_sfile_pread(&s->f, b->in, e->tag_len, e->tag_off, err);
	if (rc)
		return rc;
	if (L->flags & TM_SNAP_ZSTD) {
		if (e->flags & SNAP_CHUNK_TAGS_CODED)
			return tm_tagstream_decode_ctx(b->tsx, &L->geom, b->in, e->tag_len, *nt,
						       b->tcat, err);
		memcpy(b->tcat, b->in, *nt * tb);
		return 0;
	}
	for (uint64_t k = 0, j = 0; k < np; k++)
		if (tm_bit_test(R->tbits, first + k))
			memcpy(b->tcat + (j++) * tb, b->in + k * tb, tb);
	return 0;
}

static int ratio_run(tm_snapshot *s, struct ratio_bufs *b, uint64_t *raw,
		     uint64_t *coded, tm_error *err)
{
	const snap_layout *L = &s->L;
	size_t tb = tm_snap_tag_bytes(L);

	for (uint32_t i = 0; i < L->nregions; i++) {
		for (uint64_t c = 0; c < L->regions[i].nchunks; c++) {
			uint64_t nt;
			size_t len = 0;
			int rc = chunk_tags(s, b, i, c, &nt, err);

			if (!rc && nt)
				rc = tm_tagstream_encode_ctx(b->tsx, &L->geom, b->tcat, nt, TM_TAGSTREAM_ZSTD,
							 b->enc, b->enc_cap, &len, err);
			if (rc)
				return tm_error_wrap(err, rc, "snapshot %s: tags of region %u '%s' chunk %" PRIu64,
						     s->f.path, i, L->regions[i].name, c);
			*raw += nt * tb;
			*coded += len;
		}
	}
	return 0;
}

int tm_snapshot_tag_ratio(tm_snapshot *s, double *ratio, uint64_t *raw,
			  uint64_t *coded, tm_error *err)
{
	const snap_layout *L = &s->L;
	size_t cp = L->chunk_pages, tb = tm_snap_tag_bytes(L);
	struct ratio_bufs b = { 0 };
	uint64_t r = 0, c = 0;
	int rc = 0;

	if (tb) {
		b.enc_cap = tm_tagstream_bound(&L->geom, cp);
		b.in = malloc(b.enc_cap > cp * tb ? b.enc_cap : cp * tb);
		b.tcat = malloc(cp * tb);
		b.enc = malloc(b.enc_cap);
		if (!b.in || !b.tcat || !b.enc || tm_tagstream_ctx_new(&b.tsx, NULL))
			rc = tm_error_set(err, -ENOMEM, "snapshot %s: no memory", s->f.path);
		if (!rc)
			rc = ratio_run(s, &b, &r, &c, err);
	}
	free(b.in);
	free(b.tcat);
	free(b.enc);
	tm_tagstream_ctx_free(b.tsx);
	if (raw)
		*raw = r;
	if (coded)
		*coded = c;
	if (ratio)
		*ratio = c ? (double)r / (double)c : 0.0;
	return rc;
}
