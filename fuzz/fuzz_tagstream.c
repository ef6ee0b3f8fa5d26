/*
 * fuzz_tagstream.c - libFuzzer harness for the tag-stream decoder and the
 * EA0 handle decoder (src/tags/), which read tags that arrive from peers,
 * snapshot files and swap stores.
 * Input: byte 0 picks the page size (4/16/64 KiB) and the page count
 * (1..64); byte 1..8 an EA0 handle; the rest is a tag stream. Whatever the
 * input, decoding must not crash or write past npages * packed_bytes
 * (the output buffer is sized exactly, so ASan catches any overflow), and a
 * stream it accepts must re-encode and decode to the same tags. One-page
 * blocks also go through the one-page decoder (tm_tagstream_decode_page),
 * which must give the same answer and the same tags, and whose re-encode
 * (tm_tagstream_encode_page) must be the general encoder's bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tagmem/tags.h"

static const uint32_t page_sizes[3] = { 4096, 16384, 65536 };

static void check_ea0(uint32_t ps, const uint8_t *in)
{
	uint8_t tags[TM_PAGE_SIZE_MAX / 32];
	uint64_t h, again;

	memcpy(&h, in, sizeof(h));
	if (tm_ea0_decompress(ps, h, tags, NULL) != 0)
		return;
	/* A handle the decoder accepts is one the compressor produces. */
	if (tm_ea0_compress(ps, tags, &again, NULL) != 0 || again != h)
		abort();
}

static void check_roundtrip(const tm_geom *g, const uint8_t *tags, size_t npages)
{
	size_t cap = tm_tagstream_bound(g, npages), n;
	uint8_t *enc = malloc(cap);
	uint8_t *dec = malloc(npages * tm_geom_packed_bytes(g));

	if (!enc || !dec)
		abort();
	if (tm_tagstream_encode(g, tags, npages, 0, enc, cap, &n, NULL) ||
	    tm_tagstream_decode(g, enc, n, npages, dec, NULL) ||
	    memcmp(dec, tags, npages * tm_geom_packed_bytes(g)))
		abort();
	free(enc);
	free(dec);
}

/* The one-page codec against the general one on the same block. */
static void check_page_codec(const tm_geom *g, const uint8_t *in, size_t len,
			     int general_rc, const uint8_t *general_out)
{
	size_t pb = tm_geom_packed_bytes(g), cap = tm_tagstream_bound(g, 1), n1, n2;
	uint8_t *out = malloc(pb), *e1 = malloc(cap), *e2 = malloc(cap);

	if (!out || !e1 || !e2)
		abort();
	int rc = tm_tagstream_decode_page(g, in, len, out, NULL);

	if ((rc == 0) != (general_rc == 0) || (rc == 0 && memcmp(out, general_out, pb)))
		abort();
	if (rc == 0 &&
	    (tm_tagstream_encode(g, out, 1, 0, e1, cap, &n1, NULL) ||
	     tm_tagstream_encode_page(g, out, e2, cap, &n2, NULL) ||
	     n1 != n2 || memcmp(e1, e2, n1)))
		abort();
	free(out);
	free(e1);
	free(e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	tm_geom g;
	size_t npages, out_len;
	uint8_t *out;

	if (len < 9)
		return 0;
	if (tm_geom_mte(&g, page_sizes[in[0] % 3], NULL))
		abort();
	npages = 1 + (size_t)(in[0] >> 2);
	check_ea0(g.page_size, in + 1);
	out_len = npages * tm_geom_packed_bytes(&g);
	out = malloc(out_len);
	if (!out)
		abort();
	int rc = tm_tagstream_decode(&g, in + 9, len - 9, npages, out, NULL);

	if (rc == 0)
		check_roundtrip(&g, out, npages);
	if (npages == 1)
		check_page_codec(&g, in + 9, len - 9, rc, out);
	free(out);
	return 0;
}
