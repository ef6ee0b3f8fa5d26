/*
 * wire.c - encoding and validating the frame header, the per-channel
 * handshake and the negotiation. Page packets live in packet.c because they
 * need the tag codec; this file needs nothing but xxhash, so its tests run
 * before the rest of tagmem exists.
 */
#include "migrate/wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "migrate/xxh.h"

static const char *const type_names[] = {
	"?", "HELLO", "NEGOTIATE", "ACCEPT", "REJECT", "PAGES", "END",
	"COMPLETE", "PLACED", "VERIFY", "RESULT", "ERROR",
};

const char *tm_frame_type_name(unsigned type)
{
	return type <= TM_F_TYPE_MAX ? type_names[type] : "unknown";
}

void tm_frame_encode(uint8_t hdr[TM_FRAME_HDR], const tm_frame *f)
{
	tm_put32(hdr, TM_WIRE_MAGIC);
	tm_put16(hdr + 4, f->type);
	tm_put16(hdr + 6, f->channel);
	tm_put64(hdr + 8, f->seq);
	tm_put32(hdr + 16, f->len);
	tm_put32(hdr + 20, (uint32_t)XXH3_64bits(hdr, 20));
	tm_put64(hdr + 24, f->checksum);
}

/* XXH3-64 of header bytes 0..23 and the payload pieces, as sent: a real 0
 * becomes 1, because 0 on the wire means "no checksum". */
static uint64_t frame_sum(const uint8_t hdr[TM_FRAME_HDR],
			  const struct iovec *iov, int niov)
{
	XXH3_state_t st;
	uint64_t h;

	XXH3_64bits_reset(&st);
	tm_xxh3_64_update(&st, hdr, 24);
	for (int i = 0; i < niov; i++)
		if (iov[i].iov_len)
			tm_xxh3_64_update(&st, iov[i].iov_base, iov[i].iov_len);
	h = XXH3_64bits_digest(&st);
	return h ? h : 1;
}

void tm_frame_seal_iov(uint8_t hdr[TM_FRAME_HDR], const struct iovec *iov,
		       int niov)
{
	tm_put64(hdr + 24, frame_sum(hdr, iov, niov));
}

void tm_frame_seal(uint8_t hdr[TM_FRAME_HDR], const void *const *piece,
		   const size_t *piece_len, size_t npieces)
{
	struct iovec iov[8];
	int n = 0;

	for (size_t i = 0; i < npieces && n < 8; i++)
		iov[n++] = (struct iovec){ (void *)piece[i], piece_len[i] };
	tm_frame_seal_iov(hdr, iov, n);
}

int tm_frame_decode(const uint8_t hdr[TM_FRAME_HDR], unsigned chan,
		    uint64_t expect_seq, uint32_t max_len, tm_frame *f,
		    tm_error *err)
{
	uint32_t magic = tm_get32(hdr);

	if (magic != TM_WIRE_MAGIC)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: bad magic 0x%08x (expected 0x%08x)",
			chan, (unsigned long long)expect_seq, magic, TM_WIRE_MAGIC);
	f->type = tm_get16(hdr + 4);
	f->channel = tm_get16(hdr + 6);
	f->seq = tm_get64(hdr + 8);
	f->len = tm_get32(hdr + 16);
	f->hcheck = tm_get32(hdr + 20);
	f->checksum = tm_get64(hdr + 24);
	if (f->hcheck != (uint32_t)XXH3_64bits(hdr, 20))
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: header check mismatch (wire 0x%08x, "
			"computed 0x%08x): corrupted in transit", chan,
			(unsigned long long)expect_seq, f->hcheck,
			(uint32_t)XXH3_64bits(hdr, 20));
	if (f->type == 0 || f->type > TM_F_TYPE_MAX)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: unknown frame type %u",
			chan, (unsigned long long)expect_seq, f->type);
	if (f->channel != chan)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: frame says channel %u",
			chan, (unsigned long long)expect_seq, f->channel);
	if (f->seq != expect_seq)
		return tm_error_set(err, -EBADMSG,
			"channel %u: sequence number %llu where %llu was expected "
			"(lost, repeated or reordered packet)", chan,
			(unsigned long long)f->seq, (unsigned long long)expect_seq);
	if (f->len > max_len)
		return tm_error_set(err, -EMSGSIZE,
			"channel %u: packet %llu (%s): payload of %u bytes exceeds "
			"the %u bytes allocated for it", chan,
			(unsigned long long)f->seq, tm_frame_type_name(f->type),
			f->len, max_len);
	return 0;
}

int tm_frame_check_iov(const uint8_t hdr[TM_FRAME_HDR], const tm_frame *f,
		       const struct iovec *iov, int niov, unsigned chan,
		       tm_error *err)
{
	uint64_t h = frame_sum(hdr, iov, niov);

	if (h != f->checksum)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu (%s, %u bytes): checksum mismatch "
			"(wire 0x%016llx, computed 0x%016llx): corrupted in transit",
			chan, (unsigned long long)f->seq, tm_frame_type_name(f->type),
			f->len, (unsigned long long)f->checksum,
			(unsigned long long)h);
	return 0;
}

int tm_frame_check(const uint8_t hdr[TM_FRAME_HDR], const tm_frame *f,
		   const uint8_t *payload, unsigned chan, tm_error *err)
{
	struct iovec iov = { (void *)payload, f->len };

	return tm_frame_check_iov(hdr, f, &iov, 1, chan, err);
}

void tm_hello_encode(uint8_t out[TM_HELLO_LEN], const tm_hello *h)
{
	tm_put64(out, h->id[0]);
	tm_put64(out + 8, h->id[1]);
	tm_put16(out + 16, h->channel);
	tm_put16(out + 18, h->nchannels);
	tm_put32(out + 20, TM_WIRE_VERSION);
}

int tm_hello_decode(const uint8_t *in, size_t len, tm_hello *h, tm_error *err)
{
	uint32_t version;

	if (len != TM_HELLO_LEN)
		return tm_error_set(err, -EBADMSG,
			"handshake of %zu bytes (expected %u)", len, TM_HELLO_LEN);
	h->id[0] = tm_get64(in);
	h->id[1] = tm_get64(in + 8);
	h->channel = tm_get16(in + 16);
	h->nchannels = tm_get16(in + 18);
	version = tm_get32(in + 20);
	if (version != TM_WIRE_VERSION)
		return tm_error_set(err, -EPROTONOSUPPORT,
			"source speaks wire version %u, this destination version %u",
			version, TM_WIRE_VERSION);
	if (h->nchannels < 1 || h->nchannels > 16)
		return tm_error_set(err, -EBADMSG,
			"handshake announces %u data channels (1..16)", h->nchannels);
	if (h->channel > h->nchannels)
		return tm_error_set(err, -EBADMSG,
			"handshake for channel %u of %u data channels",
			h->channel, h->nchannels);
	return 0;
}

size_t tm_neg_size(const tm_neg *n)
{
	return TM_NEG_FIXED + (size_t)n->nregions * TM_NEG_REGION;
}

static void neg_region_encode(uint8_t *p, const tm_neg_region *r)
{
	memset(p, 0, TM_NEG_REGION);
	memcpy(p, r->name, strnlen(r->name, TM_NAME_LEN - 1));
	tm_put64(p + 64, r->size);
	tm_put32(p + 72, r->geom.page_size);
	tm_put32(p + 76, r->geom.kind);
	tm_put32(p + 80, r->geom.version);
	tm_put32(p + 84, r->geom.granule);
	tm_put32(p + 88, r->geom.bits);
}

void tm_neg_encode(uint8_t *out, const tm_neg *n)
{
	tm_put64(out, n->id[0]);
	tm_put64(out + 8, n->id[1]);
	tm_put32(out + 16, n->nchannels);
	tm_put32(out + 20, n->features);
	tm_put32(out + 24, (uint32_t)n->level);
	tm_put32(out + 28, n->ppp);
	tm_put32(out + 32, n->nregions);
	tm_put32(out + 36, 0);
	for (uint32_t i = 0; i < n->nregions; i++)
		neg_region_encode(out + TM_NEG_FIXED + i * TM_NEG_REGION,
				  &n->region[i]);
}

static int neg_region_decode(const uint8_t *p, uint32_t idx, tm_neg_region *r,
			     tm_error *err)
{
	if (memchr(p, 0, TM_NAME_LEN) == NULL || p[0] == 0)
		return tm_error_set(err, -EBADMSG,
			"negotiation: region %u has an empty or unterminated name", idx);
	memcpy(r->name, p, TM_NAME_LEN);
	r->size = tm_get64(p + 64);
	r->geom.page_size = tm_get32(p + 72);
	r->geom.kind = tm_get32(p + 76);
	r->geom.version = tm_get32(p + 80);
	r->geom.granule = tm_get32(p + 84);
	r->geom.bits = tm_get32(p + 88);
	if (tm_get32(p + 92) != 0)
		return tm_error_set(err, -EBADMSG,
			"negotiation: region '%s': reserved field set", r->name);
	return 0;
}

int tm_neg_decode(const uint8_t *in, size_t len, tm_neg *n, tm_error *err)
{
	if (len < TM_NEG_FIXED)
		return tm_error_set(err, -EBADMSG,
			"negotiation of %zu bytes is shorter than its %u-byte header",
			len, TM_NEG_FIXED);
	memset(n, 0, sizeof(*n));
	n->id[0] = tm_get64(in);
	n->id[1] = tm_get64(in + 8);
	n->nchannels = tm_get32(in + 16);
	n->features = tm_get32(in + 20);
	n->level = (int32_t)tm_get32(in + 24);
	n->ppp = tm_get32(in + 28);
	n->nregions = tm_get32(in + 32);
	if (n->nregions < 1 || n->nregions > 64)
		return tm_error_set(err, -EBADMSG,
			"negotiation lists %u regions (1..64)", n->nregions);
	if (len != tm_neg_size(n))
		return tm_error_set(err, -EBADMSG,
			"negotiation of %zu bytes for %u regions (expected %zu)",
			len, n->nregions, tm_neg_size(n));
	if (tm_get32(in + 36) != 0)
		return tm_error_set(err, -EBADMSG, "negotiation: reserved field set");
	for (uint32_t i = 0; i < n->nregions; i++) {
		int rc = neg_region_decode(in + TM_NEG_FIXED + i * TM_NEG_REGION,
					   i, &n->region[i], err);
		if (rc)
			return rc;
	}
	return 0;
}

const char *tm_neg_meta_desc(const tm_geom *g, char *buf, size_t len)
{
	if (g->kind == TM_META_NONE)
		snprintf(buf, len, "none");
	else if (g->kind == TM_META_MTE)
		snprintf(buf, len, "MTE %ub/%uB tags", g->bits, g->granule);
	else
		snprintf(buf, len, "kind-%u metadata %ub/%uB", g->kind, g->bits,
			 g->granule);
	return buf;
}
