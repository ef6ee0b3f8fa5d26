/*
 * packet.c - page packets: encoding on the source, whole-packet validation
 * and decoding on the destination. The decoder is the part of tagmem that
 * reads the most untrusted bytes, so it is written as a list of checks that
 * each name what they refuse, and it is the target of fuzz/fuzz_packet.c.
 */
#include "migrate/packet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "tagmem/tags.h"

/* Offsets of the fixed fields of a PAGES payload. */
enum {
	PK_REGION = 0, PK_NORMAL = 4, PK_TAGONLY = 8, PK_ZERO = 12,
	PK_TAGS_LEN = 16, PK_DATA_LEN = 20, PK_CODEC = 24, PK_RESERVED = 28,
};

static bool feat(const tm_pkt_session *s, uint32_t f)
{
	return (s->features & f) != 0;
}

/* Bytes the tags of n pages take on the wire at most. */
static size_t tags_wire_max(const tm_pkt_session *s, const tm_pkt_region *r,
			    size_t n)
{
	if (r->geom.kind == TM_META_NONE)
		return 0;
	if (feat(s, TM_FEAT_TAGS_UNPACKED))
		return n * tm_geom_granules(&r->geom);
	return tm_tagstream_bound(&r->geom, n);
}

int tm_pkt_session_init(tm_pkt_session *s, tm_error *err)
{
	if (s->ppp < 64 || s->ppp > 1024 || s->ppp % 64)
		return tm_error_set(err, -EINVAL,
			"pages per packet %u: must be a multiple of 64 in 64..1024",
			s->ppp);
	if (s->features & ~(uint32_t)TM_FEAT_ALL)
		return tm_error_set(err, -EPROTONOSUPPORT,
			"unknown feature bits 0x%x", s->features & ~(uint32_t)TM_FEAT_ALL);
	for (uint32_t i = 0; i < s->nregions; i++) {
		tm_pkt_region *r = &s->region[i];

		r->tag_bytes = tm_geom_packed_bytes(&r->geom);
		if (feat(s, TM_FEAT_TAGS_UNPACKED) && r->geom.kind != TM_META_NONE &&
		    r->geom.bits != 4)
			return tm_error_set(err, -EPROTONOSUPPORT,
				"region '%s': unpacked tags on the wire need 4-bit "
				"metadata, this region has %u bits", r->name, r->geom.bits);
	}
	return 0;
}

size_t tm_pkt_max_payload(const tm_pkt_session *s)
{
	size_t best = 0;

	for (uint32_t i = 0; i < s->nregions; i++) {
		const tm_pkt_region *r = &s->region[i];
		size_t raw = (size_t)s->ppp * r->geom.page_size;
		size_t data = raw;
		size_t n;

		if (feat(s, TM_FEAT_ZSTD) && ZSTD_compressBound(raw) > data)
			data = ZSTD_compressBound(raw);
		n = TM_PKT_FIXED + (size_t)s->ppp * 8 + tags_wire_max(s, r, s->ppp) +
		    data;
		if (n > best)
			best = n;
	}
	return best;
}

/* ---- destination ------------------------------------------------- */

int tm_pkt_scratch_init(tm_pkt_scratch *sc, const tm_pkt_session *s,
			tm_error *err)
{
	size_t tags = 0, data = 0;

	memset(sc, 0, sizeof(*sc));
	for (uint32_t i = 0; i < s->nregions; i++) {
		size_t t = (size_t)s->ppp * s->region[i].tag_bytes;
		size_t d = (size_t)s->ppp * s->region[i].geom.page_size;

		tags = t > tags ? t : tags;
		data = d > data ? d : data;
	}
	sc->tags_cap = tags;
	sc->data_cap = data;
	sc->tags = malloc(tags ? tags : 1);
	sc->data = feat(s, TM_FEAT_ZSTD) ? malloc(data) : NULL;
	sc->dctx = feat(s, TM_FEAT_ZSTD) ? ZSTD_createDCtx() : NULL;
	if (!sc->tags || (feat(s, TM_FEAT_ZSTD) && (!sc->data || !sc->dctx))) {
		tm_pkt_scratch_free(sc);
		return tm_error_set(err, -ENOMEM,
			"cannot allocate %zu bytes of packet scratch", tags + data);
	}
	return 0;
}

void tm_pkt_scratch_free(tm_pkt_scratch *sc)
{
	free(sc->tags);
	free(sc->data);
	ZSTD_freeDCtx(sc->dctx);
	memset(sc, 0, sizeof(*sc));
}

/* The fixed fields and the lengths they imply. */
static int check_counts(const tm_pkt_session *s, const uint8_t *p, size_t len,
			unsigned chan, uint64_t seq, tm_pkt *out, uint32_t *tags_len,
			uint32_t *data_len, uint32_t *codec, tm_error *err)
{
	const tm_pkt_region *r;
	uint64_t n, need;

	if (len < TM_PKT_FIXED)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: %zu bytes, shorter than the %u-byte "
			"packet header", chan, (unsigned long long)seq, len, TM_PKT_FIXED);
	out->region = tm_get32(p + PK_REGION);
	out->n_normal = tm_get32(p + PK_NORMAL);
	out->n_tagonly = tm_get32(p + PK_TAGONLY);
	out->n_zero = tm_get32(p + PK_ZERO);
	*tags_len = tm_get32(p + PK_TAGS_LEN);
	*data_len = tm_get32(p + PK_DATA_LEN);
	*codec = tm_get32(p + PK_CODEC);
	if (out->region >= s->nregions)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: region id %u, but only %u regions "
			"were negotiated", chan, (unsigned long long)seq, out->region,
			s->nregions);
	r = &s->region[out->region];
	n = (uint64_t)out->n_normal + out->n_tagonly + out->n_zero;
	if (n == 0 || n > s->ppp)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: region '%s': %llu pages (%u normal, "
			"%u tag-only, %u zero) where 1..%u fit the packet allocation",
			chan, (unsigned long long)seq, r->name, (unsigned long long)n,
			out->n_normal, out->n_tagonly, out->n_zero, s->ppp);
	if (tm_get32(p + PK_RESERVED) != 0)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: reserved field set", chan,
			(unsigned long long)seq);
	if (*codec > TM_DATA_ZSTD || (*codec == TM_DATA_ZSTD && !feat(s, TM_FEAT_ZSTD)))
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: data codec %u was not negotiated",
			chan, (unsigned long long)seq, *codec);
	need = TM_PKT_FIXED + 8 * n + (uint64_t)*tags_len + *data_len;
	if (need != len)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: region '%s': %llu pages with %u tag "
			"bytes and %u data bytes make %llu bytes, the packet has %zu",
			chan, (unsigned long long)seq, r->name, (unsigned long long)n,
			*tags_len, *data_len, (unsigned long long)need, len);
	return 0;
}

static int check_tag_len(const tm_pkt_session *s, const tm_pkt_region *r,
			 const tm_pkt *pk, uint32_t tags_len, unsigned chan,
			 uint64_t seq, tm_error *err)
{
	size_t ntagged = (size_t)pk->n_normal + pk->n_tagonly;

	if (r->geom.kind == TM_META_NONE && (pk->n_tagonly || tags_len))
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: region '%s' has no metadata but the "
			"packet carries %u tag-only pages and %u tag bytes", chan,
			(unsigned long long)seq, r->name, pk->n_tagonly, tags_len);
	if (r->geom.kind == TM_META_NONE)
		return 0;
	if (ntagged == 0 && tags_len == 0)
		return 0;
	if (feat(s, TM_FEAT_TAGS_UNPACKED) ?
	    tags_len != tags_wire_max(s, r, ntagged) :
	    (tags_len == 0 || tags_len > tags_wire_max(s, r, ntagged)))
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: region '%s': %u tag bytes for %zu "
			"tagged pages (at most %zu)", chan, (unsigned long long)seq,
			r->name, tags_len, ntagged, tags_wire_max(s, r, ntagged));
	return 0;
}

static int check_data_len(const tm_pkt_region *r, const tm_pkt *pk,
			  uint32_t data_len, uint32_t codec, unsigned chan,
			  uint64_t seq, tm_error *err)
{
	uint64_t raw = (uint64_t)pk->n_normal * r->geom.page_size;
	bool ok = codec == TM_DATA_RAW ? data_len == raw :
		  (pk->n_normal > 0 && data_len > 0 &&
		   data_len <= ZSTD_compressBound(raw));

	if (!ok)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: region '%s': %u %s data bytes for "
			"%u normal pages of %u bytes", chan, (unsigned long long)seq,
			r->name, data_len, codec == TM_DATA_RAW ? "raw" : "zstd",
			pk->n_normal, r->geom.page_size);
	return 0;
}

/* Every offset inside the region, page-aligned, ascending within its class. */
static int check_offsets(const tm_pkt_region *r, const tm_pkt *pk,
			 unsigned chan, uint64_t seq, tm_error *err)
{
	uint32_t bounds[3] = { pk->n_normal, pk->n_normal + pk->n_tagonly,
			       pk->n_normal + pk->n_tagonly + pk->n_zero };
	static const char *const cls[3] = { "normal", "tag-only", "zero" };
	uint32_t i = 0;

	for (int c = 0; c < 3; c++) {
		uint64_t prev = 0;

		for (uint32_t first = i; i < bounds[c]; i++) {
			uint64_t off = tm_pkt_offset(pk, i);
			const char *why = NULL;

			if (off >= r->size)
				why = "beyond the end of the region";
			else if (off % r->geom.page_size)
				why = "not page-aligned";
			else if (i > first && off <= prev)
				why = "not ascending within its class";
			if (why)
				return tm_error_set(err, -EBADMSG,
					"channel %u: packet %llu: region '%s' (size 0x%llx, "
					"page %u) offset 0x%llx (%s page %u): %s", chan,
					(unsigned long long)seq, r->name,
					(unsigned long long)r->size, r->geom.page_size,
					(unsigned long long)off, cls[c], i, why);
			prev = off;
		}
	}
	return 0;
}

/* Unpacked tags: every byte must fit the tag width before packing. */
static int unpacked_tags(const tm_pkt_region *r, const tm_pkt *pk,
			 const uint8_t *in, size_t ntagged, uint8_t *packed,
			 unsigned chan, uint64_t seq, tm_error *err)
{
	size_t gran = tm_geom_granules(&r->geom);

	for (size_t i = 0; i < ntagged * gran; i++)
		if (in[i] > 0xF)
			return tm_error_set(err, -EBADMSG,
				"channel %u: packet %llu: region '%s' offset 0x%llx "
				"granule %zu: unpacked tag byte 0x%02x has bits above the "
				"4-bit tag", chan, (unsigned long long)seq, r->name,
				(unsigned long long)tm_pkt_offset(pk, (uint32_t)(i / gran)),
				i % gran, in[i]);
	return tm_tags_pack(packed, in, ntagged * gran, err);
}

static int decode_tags(const tm_pkt_session *s, const tm_pkt_region *r,
		       tm_pkt *pk, const uint8_t *in, uint32_t tags_len,
		       tm_pkt_scratch *sc, unsigned chan, uint64_t seq,
		       tm_error *err)
{
	size_t ntagged = (size_t)pk->n_normal + pk->n_tagonly;
	int rc;

	pk->tags = NULL;
	if (r->geom.kind == TM_META_NONE || ntagged == 0)
		return 0;
	if (feat(s, TM_FEAT_TAGS_UNPACKED))
		rc = unpacked_tags(r, pk, in, ntagged, sc->tags, chan, seq, err);
	else
		rc = tm_tagstream_decode(&r->geom, in, tags_len, ntagged, sc->tags,
					 err);
	if (rc)
		return tm_error_wrap(err, -EBADMSG,
			"channel %u: packet %llu: region '%s' pages from offset 0x%llx: "
			"bad tags", chan, (unsigned long long)seq, r->name,
			(unsigned long long)tm_pkt_offset(pk, 0));
	/* A tag-only page with zero tags would be a zero page: refuse it, so
	 * the classes mean what the format says. */
	for (uint32_t i = pk->n_normal; i < ntagged; i++)
		if (tm_mem_is_zero(sc->tags + (size_t)i * r->tag_bytes, r->tag_bytes))
			return tm_error_set(err, -EBADMSG,
				"channel %u: packet %llu: region '%s' offset 0x%llx: "
				"tag-only page with all-zero tags", chan,
				(unsigned long long)seq, r->name,
				(unsigned long long)tm_pkt_offset(pk, i));
	pk->tags = sc->tags;
	return 0;
}

static int decode_data(const tm_pkt_region *r, tm_pkt *pk, const uint8_t *in,
		       uint32_t data_len, uint32_t codec, tm_pkt_scratch *sc,
		       unsigned chan, uint64_t seq, tm_error *err)
{
	size_t raw = (size_t)pk->n_normal * r->geom.page_size;
	unsigned long long fcs;
	size_t got;

	if (codec == TM_DATA_RAW) {
		pk->data = in;
		return 0;
	}
	fcs = ZSTD_getFrameContentSize(in, data_len);
	if (fcs != raw)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: region '%s' from offset 0x%llx: zstd "
			"frame declares %lld bytes, %u normal pages need %zu", chan,
			(unsigned long long)seq, r->name,
			(unsigned long long)tm_pkt_offset(pk, 0), (long long)fcs,
			pk->n_normal, raw);
	got = ZSTD_decompressDCtx(sc->dctx, sc->data, raw, in, data_len);
	if (ZSTD_isError(got) || got != raw)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: region '%s' from offset 0x%llx: zstd "
			"data does not decode to %zu bytes (%s)", chan,
			(unsigned long long)seq, r->name,
			(unsigned long long)tm_pkt_offset(pk, 0), raw,
			ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
	pk->data = sc->data;
	return 0;
}

int tm_pkt_decode_head(const tm_pkt_session *s, const uint8_t *fixed,
		       size_t len, unsigned chan, uint64_t seq, tm_pkt *out,
		       tm_error *err)
{
	const tm_pkt_region *r;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = check_counts(s, fixed, len, chan, seq, out, &out->tags_len,
			  &out->data_len, &out->codec, err);
	if (rc)
		return rc;
	r = &s->region[out->region];
	rc = check_tag_len(s, r, out, out->tags_len, chan, seq, err);
	if (!rc)
		rc = check_data_len(r, out, out->data_len, out->codec, chan, seq, err);
	out->meta_len = 8 * ((size_t)out->n_normal + out->n_tagonly + out->n_zero) +
			out->tags_len;
	return rc;
}

int tm_pkt_decode_meta(const tm_pkt_session *s, const uint8_t *payload,
		       unsigned chan, uint64_t seq, tm_pkt_scratch *sc,
		       tm_pkt *pk, tm_error *err)
{
	const tm_pkt_region *r = &s->region[pk->region];
	size_t n = (size_t)pk->n_normal + pk->n_tagonly + pk->n_zero;
	int rc;

	pk->offsets = payload + TM_PKT_FIXED;
	rc = check_offsets(r, pk, chan, seq, err);
	if (rc)
		return rc;
	return decode_tags(s, r, pk, pk->offsets + 8 * n, pk->tags_len, sc, chan,
			   seq, err);
}

int tm_pkt_decode_data(const tm_pkt_session *s, const uint8_t *data,
		       unsigned chan, uint64_t seq, tm_pkt_scratch *sc,
		       tm_pkt *pk, tm_error *err)
{
	return decode_data(&s->region[pk->region], pk, data, pk->data_len,
			   pk->codec, sc, chan, seq, err);
}

int tm_pkt_decode(const tm_pkt_session *s, const uint8_t *payload, size_t len,
		  unsigned chan, uint64_t seq, tm_pkt_scratch *sc, tm_pkt *out,
		  tm_error *err)
{
	int rc = tm_pkt_decode_head(s, payload, len, chan, seq, out, err);

	if (!rc)
		rc = tm_pkt_decode_meta(s, payload, chan, seq, sc, out, err);
	if (!rc)
		rc = tm_pkt_decode_data(s, payload + TM_PKT_FIXED + out->meta_len,
					chan, seq, sc, out, err);
	return rc;
}

/* ---- source ------------------------------------------------------ */

int tm_pkt_encoder_init(tm_pkt_encoder *e, const tm_pkt_session *s,
			tm_error *err)
{
	size_t tags = 0, raw = 0;

	memset(e, 0, sizeof(*e));
	e->s = s;
	for (uint32_t i = 0; i < s->nregions; i++) {
		size_t t = tags_wire_max(s, &s->region[i], s->ppp);
		size_t d = (size_t)s->ppp * s->region[i].geom.page_size;

		tags = t > tags ? t : tags;
		raw = d > raw ? d : raw;
	}
	e->head = malloc(TM_FRAME_HDR + TM_PKT_FIXED + (size_t)s->ppp * 8);
	e->tagenc_cap = tags;
	e->tagenc = malloc(tags ? tags : 1);
	if (feat(s, TM_FEAT_ZSTD)) {
		e->zcap = ZSTD_compressBound(raw);
		e->zbuf = malloc(e->zcap);
		e->cctx = ZSTD_createCCtx();
	}
	if (!e->head || !e->tagenc ||
	    (feat(s, TM_FEAT_ZSTD) && (!e->zbuf || !e->cctx))) {
		tm_pkt_encoder_free(e);
		return tm_error_set(err, -ENOMEM, "cannot allocate packet buffers");
	}
	return 0;
}

void tm_pkt_encoder_free(tm_pkt_encoder *e)
{
	free(e->head);
	free(e->tagenc);
	free(e->zbuf);
	ZSTD_freeCCtx(e->cctx);
	memset(e, 0, sizeof(*e));
}

static int encode_tags(tm_pkt_encoder *e, const tm_pkt_region *r,
		       const tm_pkt_pages *p, size_t *len, tm_error *err)
{
	size_t ntagged = (size_t)p->n_normal + p->n_tagonly;
	/* No TM_TAGSTREAM_ZSTD: the codec's own run encoding already makes the
	 * tags small, and its zstd pass builds a context per call, which per
	 * packet costs more than it saves. Decoders accept both forms. */
	unsigned flags = 0;

	*len = 0;
	if (r->geom.kind == TM_META_NONE || ntagged == 0)
		return 0;
	if (feat(e->s, TM_FEAT_TAGS_UNPACKED)) {
		*len = ntagged * tm_geom_granules(&r->geom);
		tm_tags_unpack(e->tagenc, p->tags, *len);
		return 0;
	}
	return tm_tagstream_encode(&r->geom, p->tags, ntagged, flags, e->tagenc,
				   e->tagenc_cap, len, err);
}

/* zstd when it helps; raw when the pages do not compress. */
static const uint8_t *encode_data(tm_pkt_encoder *e, const tm_pkt_region *r,
				  const tm_pkt_pages *p, size_t *len,
				  uint32_t *codec)
{
	size_t raw = (size_t)p->n_normal * r->geom.page_size;

	*len = raw;
	*codec = TM_DATA_RAW;
	if (!feat(e->s, TM_FEAT_ZSTD) || raw == 0)
		return p->data;
	size_t z = ZSTD_compressCCtx(e->cctx, e->zbuf, e->zcap, p->data, raw,
				     e->s->level);
	if (ZSTD_isError(z) || z >= raw)
		return p->data;
	*len = z;
	*codec = TM_DATA_ZSTD;
	return e->zbuf;
}

/* Data of normal pages as iovecs: the caller's pieces (pages in region
 * memory), the compressed buffer, or the contiguous copy. */
static int data_pieces(tm_pkt_encoder *e, const tm_pkt_region *r,
		       const tm_pkt_pages *p, struct iovec *iov, int cap,
		       size_t *len, uint32_t *codec)
{
	if (p->data_iov) {
		*len = (size_t)p->n_normal * r->geom.page_size;
		*codec = TM_DATA_RAW;
		for (int i = 0; i < p->data_niov && i < cap; i++)
			iov[i] = p->data_iov[i];
		return p->data_niov;
	}
	iov[0].iov_base = (void *)encode_data(e, r, p, len, codec);
	iov[0].iov_len = *len;
	return 1;
}

int tm_pkt_encode_iov(tm_pkt_encoder *e, const tm_pkt_pages *p, unsigned chan,
		      uint64_t seq, struct iovec *iov, int iov_cap, int *niov,
		      size_t *total, tm_error *err)
{
	const tm_pkt_region *r = &e->s->region[p->region];
	size_t n = (size_t)p->n_normal + p->n_tagonly + p->n_zero;
	size_t head_len = TM_FRAME_HDR + TM_PKT_FIXED + 8 * n;
	uint8_t *f = e->head + TM_FRAME_HDR;
	size_t tags_len, data_len;
	uint32_t codec;
	int rc, nd;

	if (iov_cap < 3 || (p->data_iov && p->data_niov > iov_cap - 2))
		return tm_error_set(err, -EINVAL,
			"channel %u: %d data pieces do not fit %d iovecs", chan,
			p->data_iov ? p->data_niov : 1, iov_cap);
	rc = encode_tags(e, r, p, &tags_len, err);
	if (rc)
		return tm_error_wrap(err, rc, "channel %u: region '%s': encoding tags",
				     chan, r->name);
	e->tags_len = tags_len;
	nd = data_pieces(e, r, p, iov + 2, iov_cap - 2, &data_len, &codec);
	tm_put32(f + PK_REGION, p->region);
	tm_put32(f + PK_NORMAL, p->n_normal);
	tm_put32(f + PK_TAGONLY, p->n_tagonly);
	tm_put32(f + PK_ZERO, p->n_zero);
	tm_put32(f + PK_TAGS_LEN, (uint32_t)tags_len);
	tm_put32(f + PK_DATA_LEN, (uint32_t)data_len);
	tm_put32(f + PK_CODEC, codec);
	tm_put32(f + PK_RESERVED, 0);
	for (size_t i = 0; i < n; i++)
		tm_put64(f + TM_PKT_FIXED + 8 * i, p->off[i]);
	tm_frame hdr = { .type = TM_F_PAGES, .channel = (uint16_t)chan, .seq = seq,
			 .len = (uint32_t)(head_len - TM_FRAME_HDR + tags_len + data_len) };
	tm_frame_encode(e->head, &hdr);
	iov[0] = (struct iovec){ f, head_len - TM_FRAME_HDR };
	iov[1] = (struct iovec){ e->tagenc, tags_len };
	*niov = 2 + nd;
	*total = head_len + tags_len + data_len;
	if (feat(e->s, TM_FEAT_CHECKSUM))
		tm_frame_seal_iov(e->head, iov, *niov);
	iov[0] = (struct iovec){ e->head, head_len };
	return 0;
}

int tm_pkt_encode(tm_pkt_encoder *e, const tm_pkt_pages *p, unsigned chan,
		  uint64_t seq, struct iovec iov[3], int *niov, size_t *total,
		  tm_error *err)
{
	return tm_pkt_encode_iov(e, p, chan, seq, iov, 3, niov, total, err);
}
