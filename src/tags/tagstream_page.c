/*
 * tagstream_page.c - the stream codec for one page of 4-bit tags at a time
 * (tm_tagstream_encode_page / tm_tagstream_decode_page): the swap tag store
 * encodes and decodes every swapped page on its own, and there the general
 * codec's per-call work (geometry, run limit search, class table, a
 * validating walk written for many pages) cost more than the page itself.
 *
 * Same bytes, same answers: a one-page block (version 1, flags 0, one page,
 * its class byte, its payload; docs/FORMAT.md §tags "Tag stream") exactly
 * as tm_tagstream_encode(g, page, 1, 0, ...) writes it, and a decoder that
 * accepts exactly what tm_tagstream_decode(g, in, len, 1, ...) accepts.
 * Anything off the fast path - another item width, a zstd block, any input
 * the fast decoder finds wrong, an encode that does not fit while the
 * caller wants the message - goes to the general code, which then gives
 * its own result and error text. tests/tags/test_tagstream_page.c holds
 * the two to each other.
 */
#include "tagmem/tags.h"

#include <errno.h>
#include <string.h>

#include "tags/tagstream_internal.h"

/* version 1, flags 0, npages 1, the page's class byte */
#define HDR 4u
#define PAGE4_MAX (TM_PAGE_SIZE_MAX / 32)

/* Whether g is a page of 4-bit items in whole 64-bit words (MTE at every
 * page size); *pb receives its packed size. */
static bool page4(const tm_geom *g, size_t *pb)
{
	size_t items = tm_geom_granules(g);

	*pb = tm_geom_packed_bytes(g);
	return g->bits == 4 && *pb && *pb % 8 == 0 && *pb <= PAGE4_MAX &&
	       items == 2 * *pb;
}

static unsigned nibble(const uint8_t *p, size_t i)
{
	return (p[i / 2] >> ((i & 1) * 4)) & 0xF;
}

/* A run length (minus one, < 4096 so at most two varint bytes). */
static size_t put_len(uint8_t *p, size_t lenm1)
{
	if (lenm1 < 0x80) {
		p[0] = (uint8_t)lenm1;
		return 1;
	}
	p[0] = (uint8_t)(lenm1 | 0x80);
	p[1] = (uint8_t)(lenm1 >> 7);
	return 2;
}

/*
 * The runs payload of a page into p (room for limit bytes): its size, or 0
 * when the payload reaches limit bytes (raw, or nothing the caller can
 * use, is then the answer) or when the page is one run (*one). One walk over the
 * words: each run start is a bit of starts4(), its value the nibble there
 * in the same word; values (a byte each) and lengths go to scratch first,
 * because where the lengths start depends on the run count. The size check
 * runs once per word, so the scratch has room for a word's worth (16 runs)
 * past the limit.
 */
static size_t runs_payload(const uint8_t *page, size_t pb, uint8_t *p, size_t limit,
			   bool *one)
{
	uint8_t vals[PAGE4_MAX + 18], lens[PAGE4_MAX + 34];
	size_t n = 1, o = 0, start = 0;
	uint64_t prev = 0, w;

	vals[0] = page[0] & 0xF;
	for (size_t k = 0; k < pb / 8; k++) {
		memcpy(&w, page + 8 * k, 8);
		for (uint64_t m = starts4(w, prev, k); m; m &= m - 1) {
			unsigned bit = (unsigned)__builtin_ctzll(m);
			size_t s = k * 16 + bit / 4;

			vals[n++] = (uint8_t)((w >> bit) & 0xF);
			o += put_len(lens + o, s - start - 1);
			start = s;
		}
		if (n / 2 + o >= limit)   /* values alone already reach it */
			return 0;
		prev = w;
	}
	*one = n == 1;
	if (*one)
		return 0;
	size_t hl = varint_put(p, (n - 2) << 1), vb = (n + 1) / 2;

	if (hl + vb + o >= limit)
		return 0;
	vals[n] = 0;                  /* the padding nibble of an odd count */
	for (size_t i = 0; i < vb; i++)
		p[hl + i] = (uint8_t)(vals[2 * i] | vals[2 * i + 1] << 4);
	memcpy(p + hl + vb, lens, o);
	return hl + vb + o;
}

static void put_header(uint8_t *out, unsigned cls)
{
	out[0] = TS_VERSION;
	out[1] = 0;
	out[2] = 1;
	out[3] = (uint8_t)cls;
}

/*
 * The block into out, or -ENOSPC (without a message: the caller decides
 * whether it wants one) when it would not fit cap. A caller that keeps a
 * block only below some size passes that size as cap and learns "no" as
 * soon as the runs pass it.
 */
static int encode4(const uint8_t *page, size_t pb, uint8_t *out, size_t cap,
		   size_t *outlen)
{
	bool raw_fits = cap >= HDR + pb;
	size_t limit = raw_fits ? pb : cap + 1 > HDR ? cap + 1 - HDR : 0;
	uint8_t rec[HDR + PAGE4_MAX];
	bool one = false;
	size_t cost = runs_payload(page, pb, rec + HDR, limit, &one);

	if (cost) {
		put_header(rec, C_RUNS);
		memcpy(out, rec, HDR + cost);
		*outlen = HDR + cost;
		return 0;
	}
	if (one) {
		unsigned v = page[0] & 0xF;
		size_t len = HDR + (v != 0);

		if (cap < len)
			return -ENOSPC;
		put_header(out, v ? C_ONE : C_ZERO);
		if (v)
			out[HDR] = (uint8_t)v;
		*outlen = len;
		return 0;
	}
	if (!raw_fits)
		return -ENOSPC;
	put_header(out, C_RAW);
	memcpy(out + HDR, page, pb);
	*outlen = HDR + pb;
	return 0;
}

int tm_tagstream_encode_page(const tm_geom *g, const uint8_t *packed, uint8_t *out,
			     size_t cap, size_t *outlen, tm_error *err)
{
	size_t pb;
	int rc;

	if (!page4(g, &pb))
		return tm_tagstream_encode(g, packed, 1, 0, out, cap, outlen, err);
	rc = encode4(packed, pb, out, cap, outlen);
	if (rc && err)   /* the general encoder words the message */
		return tm_tagstream_encode(g, packed, 1, 0, out, cap, outlen, err);
	return rc;
}

/* A run length of a plain (not regular) runs payload: (varint + 1), which
 * must leave at least one item for the runs after it. */
static bool get_len(const uint8_t *b, size_t blen, size_t *o, size_t left,
		    size_t *len)
{
	uint64_t v;
	size_t used;

	if (varint_get(b + *o, blen - *o, &v, &used) || v >= left - 1)
		return false;
	*o += used;
	*len = (size_t)v + 1;
	return true;
}

/* A regular payload's first length and period: the runs before the last
 * must leave it at least one item. */
static bool get_regular(const uint8_t *b, size_t blen, size_t *o, size_t items,
			size_t n, size_t *first, size_t *period)
{
	uint64_t f, p;
	size_t used;

	if (varint_get(b + *o, blen - *o, &f, &used))
		return false;
	*o += used;
	if (varint_get(b + *o, blen - *o, &p, &used))
		return false;
	*o += used;
	if (f >= items - 1 || p >= items - 1 || (f + 1) + (n - 2) * (p + 1) >= items)
		return false;
	*first = (size_t)f + 1;
	*period = (size_t)p + 1;
	return true;
}

/* Validate and decode a runs payload b[0..blen) into out (pb + 8 bytes:
 * fill4_seq's slack). False for anything the format does not allow. */
static bool runs_decode(const uint8_t *b, size_t blen, size_t pb, uint8_t *out)
{
	size_t items = 2 * pb, used, o, start = 0, first = 0, period = 0;
	uint64_t h;

	if (varint_get(b, blen, &h, &used))
		return false;
	uint64_t n = (h >> 1) + 2;
	bool regular = h & 1;

	if (n > items || n > TS_MAX_RUNS || (regular && n < 3))
		return false;
	o = used;
	size_t vb = (size_t)(n + 1) / 2;
	const uint8_t *vals = b + o;

	if (blen - o < vb || ((n & 1) && (vals[n / 2] >> 4)))
		return false;
	o += vb;
	if (regular && !get_regular(b, blen, &o, items, (size_t)n, &first, &period))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned v = nibble(vals, i);
		size_t len = items - start;

		if (i && v == nibble(vals, i - 1))
			return false;
		if (i + 1 < n && regular)
			len = i ? period : first;
		else if (i + 1 < n && !get_len(b, blen, &o, items - start, &len))
			return false;
		fill4_seq(out, start, len, v);
		start += len;
	}
	return o == blen;
}

/* Decode a plain one-page block of 4-bit items; false: not valid here (the
 * general decoder then decides and words the error). */
static bool decode4(const uint8_t *in, size_t inlen, size_t pb, uint8_t *packed)
{
	uint8_t buf[PAGE4_MAX + 8];
	const uint8_t *b = in + HDR;
	size_t blen = inlen - HDR;

	switch (in[3]) {
	case C_ZERO:
		if (blen)
			return false;
		memset(packed, 0, pb);
		return true;
	case C_ONE:
		if (blen != 1 || b[0] == 0 || b[0] > 0xF)
			return false;
		memset(packed, b[0] * 0x11, pb);
		return true;
	case C_RUNS:
		if (!runs_decode(b, blen, pb, buf))
			return false;
		memcpy(packed, buf, pb);
		return true;
	case C_RAW:
		if (blen != pb)
			return false;
		memcpy(packed, b, pb);
		return true;
	default:                   /* unused class bits set */
		return false;
	}
}

int tm_tagstream_decode_page(const tm_geom *g, const uint8_t *in, size_t inlen,
			     uint8_t *packed, tm_error *err)
{
	size_t pb;

	if (page4(g, &pb) && inlen >= HDR && in[0] == TS_VERSION && in[1] == 0 &&
	    in[2] == 1 && decode4(in, inlen, pb, packed))
		return 0;
	return tm_tagstream_decode(g, in, inlen, 1, packed, err);
}
