/*
 * test_migrate_wire.c - the wire format without sockets: frame headers,
 * handshake and negotiation round-trip and refuse malformed input; page
 * packets round-trip through encoder and decoder for every class, codec
 * and tag form; and every truncation of a valid packet is refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "migrate/packet.h"
#include "migrate/wire.h"

static void frame_roundtrip_and_refusals(void **state)
{
	uint8_t hdr[TM_FRAME_HDR], bad[TM_FRAME_HDR], payload[5] = "hello";
	tm_frame f = { .type = TM_F_PAGES, .channel = 3, .seq = 42, .len = 5 }, g;
	const void *pc[1] = { payload };
	size_t pl[1] = { 5 };
	tm_error err;

	(void)state;
	tm_frame_encode(hdr, &f);
	tm_frame_seal(hdr, pc, pl, 1);
	assert_int_equal(tm_frame_decode(hdr, 3, 42, 100, &g, NULL), 0);
	assert_int_equal(g.type, TM_F_PAGES);
	assert_int_equal(g.len, 5);
	assert_int_equal(tm_frame_check(hdr, &g, payload, 3, NULL), 0);
	payload[1] ^= 1;
	assert_int_equal(tm_frame_check(hdr, &g, payload, 3, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "checksum mismatch"));
	/* Each header field: flip it and the header is refused. */
	for (int i = 0; i < 24; i++) {
		memcpy(bad, hdr, sizeof(bad));
		bad[i] ^= 0x04;
		tm_error_clear(&err);
		assert_int_not_equal(tm_frame_decode(bad, 3, 42, 100, &g, &err), 0);
		assert_non_null(strstr(err.msg, "channel 3"));
	}
	assert_int_equal(tm_frame_decode(hdr, 2, 42, 100, &g, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "frame says channel 3"));
	assert_int_equal(tm_frame_decode(hdr, 3, 41, 100, &g, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "sequence number 42 where 41"));
	assert_int_equal(tm_frame_decode(hdr, 3, 42, 4, &g, &err), -EMSGSIZE);
	assert_non_null(strstr(err.msg, "exceeds the 4 bytes allocated"));
}

static void hello_and_negotiation(void **state)
{
	uint8_t h[TM_HELLO_LEN], *buf = malloc(TM_CTRL_MAX);
	tm_hello a = { { 7, 8 }, 2, 3 }, b;
	tm_neg *n = calloc(1, sizeof(*n)), *m = calloc(1, sizeof(*m));
	tm_error err;

	(void)state;
	tm_hello_encode(h, &a);
	assert_int_equal(tm_hello_decode(h, sizeof(h), &b, NULL), 0);
	assert_true(b.id[0] == 7 && b.id[1] == 8 && b.channel == 2 && b.nchannels == 3);
	tm_put32(h + 20, 99);
	assert_int_equal(tm_hello_decode(h, sizeof(h), &b, &err), -EPROTONOSUPPORT);
	assert_non_null(strstr(err.msg, "wire version 99"));

	n->id[0] = 1;
	n->nchannels = 2;
	n->features = TM_FEAT_CHECKSUM | TM_FEAT_ZSTD;
	n->level = 3;
	n->ppp = 128;
	n->nregions = 2;
	strcpy(n->region[0].name, "ram");
	n->region[0].size = 1 << 30;
	tm_geom_mte(&n->region[0].geom, 4096, NULL);
	strcpy(n->region[1].name, "vram");
	n->region[1].size = 1 << 20;
	tm_geom_init(&n->region[1].geom, TM_META_NONE, 16384, 0, 0, NULL);
	tm_neg_encode(buf, n);
	assert_int_equal(tm_neg_decode(buf, tm_neg_size(n), m, NULL), 0);
	assert_int_equal(m->nregions, 2);
	assert_string_equal(m->region[1].name, "vram");
	assert_int_equal(m->region[1].geom.page_size, 16384);
	assert_int_equal(m->region[0].geom.bits, 4);
	assert_int_equal(m->level, 3);
	/* Every truncation is refused. */
	for (size_t l = 0; l < tm_neg_size(n); l++)
		assert_int_not_equal(tm_neg_decode(buf, l, m, NULL), 0);
	/* An unterminated name is refused. */
	memset(buf + TM_NEG_FIXED, 'x', TM_NAME_LEN);
	assert_int_equal(tm_neg_decode(buf, tm_neg_size(n), m, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "unterminated name"));
	tm_put32(buf + 32, 65);
	assert_int_equal(tm_neg_decode(buf, tm_neg_size(n), m, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "65 regions"));
	free(buf);
	free(n);
	free(m);
}

/* Encode a packet of mixed classes, decode it, compare. */
static void roundtrip(uint32_t features)
{
	tm_pkt_session s = { .nregions = 1, .features = features, .ppp = 128, .level = 1 };
	tm_pkt_encoder enc;
	tm_pkt_scratch sc;
	uint8_t *data = calloc(128, 4096), *tags = calloc(128, 128), *wire;
	uint64_t off[128];
	struct iovec iov[3];
	size_t total, at = 0;
	int niov;
	tm_pkt pk;

	strcpy(s.region[0].name, "ram");
	s.region[0].size = 2 << 20;
	tm_geom_mte(&s.region[0].geom, 4096, NULL);
	assert_int_equal(tm_pkt_session_init(&s, NULL), 0);
	assert_int_equal(tm_pkt_encoder_init(&enc, &s, NULL), 0);
	assert_int_equal(tm_pkt_scratch_init(&sc, &s, NULL), 0);
	/* 60 normal, 30 tag-only, 38 zero */
	for (int i = 0; i < 60; i++) {
		for (int k = 0; k < 4096; k++)
			data[i * 4096 + k] = (uint8_t)(k * i + (k >> 5));
	}
	tm_corpus_fill(TM_CORPUS_ALLOC, &s.region[0].geom, 5, tags, 90);
	for (int i = 60; i < 90; i++)
		tags[i * 128] |= 1;
	for (int i = 0; i < 128; i++)
		off[i] = (uint64_t)(i < 60 ? i : i < 90 ? 100 + i : 130 + i) * 4096;
	tm_pkt_pages p = { 0, 60, 30, 38, off, tags, data, NULL, 0 };
	assert_int_equal(tm_pkt_encode(&enc, &p, 1, 9, iov, &niov, &total, NULL), 0);
	wire = malloc(total);
	for (int i = 0; i < niov; i++) {
		memcpy(wire + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	tm_frame f;
	assert_int_equal(tm_frame_decode(wire, 1, 9, (uint32_t)tm_pkt_max_payload(&s), &f, NULL), 0);
	if (features & TM_FEAT_CHECKSUM)
		assert_int_equal(tm_frame_check(wire, &f, wire + TM_FRAME_HDR, 1, NULL), 0);
	else
		assert_int_equal(f.checksum, 0);
	tm_error err;
	tm_error_clear(&err);
	if (tm_pkt_decode(&s, wire + TM_FRAME_HDR, f.len, 1, 9, &sc, &pk, &err))
		fail_msg("decode: %s", err.msg);
	assert_int_equal(pk.n_normal, 60);
	assert_int_equal(pk.n_tagonly, 30);
	assert_int_equal(pk.n_zero, 38);
	assert_memory_equal(pk.data, data, 60 * 4096);
	assert_memory_equal(pk.tags, tags, 90 * 128);
	for (uint32_t i = 0; i < 128; i++)
		assert_int_equal(tm_pkt_offset(&pk, i), off[i]);
	/* Every truncation of the payload is refused without writing. */
	for (uint32_t l = 0; l < f.len; l += (l < 64 ? 1 : 97))
		assert_int_not_equal(tm_pkt_decode(&s, wire + TM_FRAME_HDR, l, 1, 9, &sc, &pk, NULL), 0);
	free(wire);
	free(data);
	free(tags);
	tm_pkt_encoder_free(&enc);
	tm_pkt_scratch_free(&sc);
}

static void packet_raw(void **state) { (void)state; roundtrip(TM_FEAT_CHECKSUM); }
static void packet_zstd(void **state) { (void)state; roundtrip(TM_FEAT_CHECKSUM | TM_FEAT_ZSTD); }
static void packet_unpacked(void **state) { (void)state; roundtrip(TM_FEAT_TAGS_UNPACKED); }
static void packet_no_checksum(void **state) { (void)state; roundtrip(TM_FEAT_ZSTD); }

static void session_refusals(void **state)
{
	tm_pkt_session s = { .nregions = 1, .features = TM_FEAT_CHECKSUM, .ppp = 100 };
	tm_error err;

	(void)state;
	strcpy(s.region[0].name, "ram");
	s.region[0].size = 1 << 20;
	tm_geom_mte(&s.region[0].geom, 4096, NULL);
	assert_int_equal(tm_pkt_session_init(&s, &err), -EINVAL);
	s.ppp = 128;
	s.features = 1u << 12;
	assert_int_equal(tm_pkt_session_init(&s, &err), -EPROTONOSUPPORT);
	assert_non_null(strstr(err.msg, "unknown feature bits 0x1000"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frame_roundtrip_and_refusals),
		cmocka_unit_test(hello_and_negotiation),
		cmocka_unit_test(packet_raw),
		cmocka_unit_test(packet_zstd),
		cmocka_unit_test(packet_unpacked),
		cmocka_unit_test(packet_no_checksum),
		cmocka_unit_test(session_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
