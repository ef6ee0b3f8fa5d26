/*
 * fuzz_packet.c - libFuzzer harness for the destination's packet decoder
 * (src/migrate/packet.c), the code that reads the most untrusted bytes.
 * Input: one byte choosing the negotiated features, then a PAGES payload.
 * The session has two regions (MTE 4 KiB pages, and untagged 16 KiB
 * pages). Whatever the input, decoding must not crash or read out of
 * bounds (ASan), and a packet it accepts must keep its promises: every
 * offset inside its region and page-aligned, counts within the allocation,
 * tags and data fully readable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/packet.h"

static tm_pkt_session sess[8];
static tm_pkt_scratch scratch[8];
static int ready;

static void setup(void)
{
	for (unsigned v = 0; v < 8; v++) {
		tm_pkt_session *s = &sess[v];

		s->nregions = 2;
		s->ppp = 128;
		s->level = 1;
		s->features = (v & 1 ? TM_FEAT_CHECKSUM : 0) |
			      (v & 2 ? TM_FEAT_ZSTD : 0) |
			      (v & 4 ? TM_FEAT_TAGS_UNPACKED : 0);
		strcpy(s->region[0].name, "ram");
		s->region[0].size = 1 << 20;
		tm_geom_mte(&s->region[0].geom, 4096, NULL);
		strcpy(s->region[1].name, "vram");
		s->region[1].size = 256 << 10;
		tm_geom_init(&s->region[1].geom, TM_META_NONE, 16384, 0, 0, NULL);
		if (tm_pkt_session_init(s, NULL) || tm_pkt_scratch_init(&scratch[v], s, NULL))
			abort();
	}
	ready = 1;
}

/* Touch every byte the decoder hands out, so ASan sees any overread. */
static unsigned touch(const uint8_t *p, size_t n)
{
	unsigned x = 0;

	for (size_t i = 0; i < n; i++)
		x += p[i];
	return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	unsigned sink = 0;
	tm_pkt pk;

	if (!ready)
		setup();
	if (len < 1)
		return 0;
	unsigned v = in[0] & 7;
	const tm_pkt_session *s = &sess[v];
	/* A copy of exactly the payload: reading past it is an ASan error. */
	uint8_t *p = malloc(len - 1 ? len - 1 : 1);

	memcpy(p, in + 1, len - 1);
	if (tm_pkt_decode(s, p, len - 1, 1, 1, &scratch[v], &pk, NULL) == 0) {
		const tm_pkt_region *r = &s->region[pk.region];
		uint32_t n = pk.n_normal + pk.n_tagonly + pk.n_zero;

		if (pk.region >= s->nregions || n == 0 || n > s->ppp)
			abort();
		for (uint32_t i = 0; i < n; i++) {
			uint64_t off = tm_pkt_offset(&pk, i);

			if (off >= r->size || off % r->geom.page_size)
				abort();
		}
		sink += touch(pk.data ? pk.data : p, pk.data ?
			      (size_t)pk.n_normal * r->geom.page_size : 0);
		if (pk.tags)
			sink += touch(pk.tags, (size_t)(pk.n_normal + pk.n_tagonly) *
				      r->tag_bytes);
	}
	__asm__ volatile("" : : "r"(sink));   /* keep the reads */
	free(p);
	return 0;
}
