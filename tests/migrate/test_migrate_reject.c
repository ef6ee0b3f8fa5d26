/*
 * test_migrate_reject.c - the destination refuses what it must refuse,
 * with a message that names the difference or the region/offset/channel,
 * and writes nothing outside its regions (guarded mappings: a stray write
 * would crash this test) and nothing at all that survives a failure (the
 * regions are all-zero afterwards):
 *   - negotiation mismatches (metadata kind, geometry, page size, size,
 *     names, unknown features) fail both sides before any page moves;
 *   - hand-crafted packets from a fake source over a real socket: offsets
 *     out of range or unaligned, counts above the allocation, bad region
 *     id, inconsistent lengths, unpacked tag bytes above 0xF, zstd output
 *     of the wrong size, tag-only pages with zero tags, wrong sequence
 *     numbers, bad checksums;
 *   - a real migration through a relay that flips one bit or truncates the
 *     stream at random points.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <zstd.h>

#include "migrate/internal.h"
#include "migrate/packet.h"
#include "migrate/wire.h"
#include "tests/migrate/mig_test.h"

#define RSIZE (1u << 20)

/* ---- negotiation --------------------------------------------------- */

static void expect_refusal(uint32_t skind, uint32_t sps, size_t ssize,
			   const char *sname, uint32_t dkind, uint32_t dps,
			   size_t dsize, const char *dname, const char *needle)
{
	mt_region s = { 0 }, d = { 0 };
	tm_migrate_config cfg;
	mt_dest dest;
	mt_source src;

	assert_int_equal(mt_region_new(&s, sname, ssize, skind, sps), 0);
	assert_int_equal(mt_region_new(&d, dname, dsize, dkind, dps), 0);
	assert_int_equal(tm_workload_fill(s.r, 3, 25, 10, NULL), 0);
	uint64_t before = mt_digest64(s.r);
	tm_migrate_config_default(&cfg);
	cfg.channels = 2;
	assert_int_equal(mt_dest_start(&dest, &d.r, 1, NULL), 0);
	mt_source_run(&src, dest.addr, &s.r, 1, &cfg, NULL);
	mt_dest_join(&dest);
	assert_int_not_equal(src.rc, 0);
	assert_int_not_equal(dest.rc, 0);
	if (!strstr(tm_error_msg(&src.err), needle) ||
	    !strstr(tm_error_msg(&dest.err), needle))
		fail_msg("expected '%s'\n source: %s\n destination: %s", needle,
			 tm_error_msg(&src.err), tm_error_msg(&dest.err));
	assert_true(strstr(tm_error_msg(&src.err), "refused") != NULL);
	assert_true(mt_all_zero(d.r));          /* no page moved */
	assert_true(mt_digest64(s.r) == before); /* source untouched */
	mt_region_free(&s);
	mt_region_free(&d);
}

static void mismatch_metadata_kind(void **state)
{
	(void)state;
	expect_refusal(TM_META_MTE, 4096, RSIZE, "ram", TM_META_NONE, 4096, RSIZE, "ram",
		       "source region 'ram' has MTE 4b/16B tags, destination region 'ram' has none");
}

static void mismatch_page_size(void **state)
{
	(void)state;
	expect_refusal(TM_META_MTE, 4096, RSIZE, "ram", TM_META_MTE, 16384, RSIZE, "ram",
		       "source region 'ram' has 4096-byte pages, destination region 'ram' has 16384-byte pages");
}

static void mismatch_size(void **state)
{
	(void)state;
	expect_refusal(TM_META_MTE, 4096, RSIZE, "ram", TM_META_MTE, 4096, 2 * RSIZE, "ram",
		       "source region 'ram' is 1048576 bytes, destination region 'ram' is 2097152 bytes");
}

static void mismatch_name(void **state)
{
	(void)state;
	expect_refusal(TM_META_MTE, 4096, RSIZE, "ram", TM_META_MTE, 4096, RSIZE, "rom",
		       "source region 'ram' (1048576 bytes) has no destination region of that name");
}

static void mismatch_geometry(void **state)
{
	tm_region_config sc = { .name = "ram", .size = RSIZE, .backend = TM_BACKEND_SOFT };
	tm_region_config dc = sc;
	tm_region *s, *d;
	tm_migrate_config cfg;
	mt_dest dest;
	mt_source src;

	(void)state;
	assert_int_equal(tm_geom_init(&sc.geom, TM_META_GENERIC, 4096, 32, 4, NULL), 0);
	assert_int_equal(tm_geom_init(&dc.geom, TM_META_GENERIC, 4096, 16, 4, NULL), 0);
	assert_int_equal(tm_region_create(&sc, &s, NULL), 0);
	assert_int_equal(tm_region_create(&dc, &d, NULL), 0);
	tm_migrate_config_default(&cfg);
	assert_int_equal(mt_dest_start(&dest, &d, 1, NULL), 0);
	mt_source_run(&src, dest.addr, &s, 1, &cfg, NULL);
	mt_dest_join(&dest);
	assert_int_not_equal(src.rc, 0);
	assert_int_not_equal(dest.rc, 0);
	assert_non_null(strstr(tm_error_msg(&src.err),
		"source region 'ram' has kind-2 metadata 4b/32B, destination region 'ram' has kind-2 metadata 4b/16B"));
	tm_region_destroy(s);
	tm_region_destroy(d);
}

/* ---- a fake source speaking the protocol by hand ------------------- */

struct fake {
	mt_region d;
	mt_dest dest;
	int fd[2];
	tm_pkt_session sess;
	uint64_t seq;
};

static void fake_frame(int fd, uint16_t type, uint16_t chan, uint64_t seq,
		       const uint8_t *p, uint32_t len, bool corrupt_sum)
{
	uint8_t hdr[TM_FRAME_HDR];
	tm_frame f = { .type = type, .channel = chan, .seq = seq, .len = len };
	const void *pc[1] = { p };
	size_t pl[1] = { len };

	tm_frame_encode(hdr, &f);
	tm_frame_seal(hdr, pc, pl, 1);
	if (corrupt_sum)
		hdr[30] ^= 1;
	assert_int_equal(tm_xport_send(fd, hdr, sizeof(hdr)), 0);
	if (len)
		assert_int_equal(tm_xport_send(fd, p, len), 0);
}

/* Handshake + negotiation for one 1 MiB MTE region and one data channel. */
static void fake_start(struct fake *f, uint32_t features)
{
	uint8_t h[TM_HELLO_LEN], buf[TM_CTRL_MAX];
	tm_hello hello = { { 1, 2 }, 0, 1 };
	tm_neg n = { .id = { 1, 2 }, .nchannels = 1, .features = features,
		     .level = 1, .ppp = 128, .nregions = 1 };
	tm_frame fr;

	memset(f, 0, sizeof(*f));
	assert_int_equal(mt_region_new(&f->d, "ram", RSIZE, TM_META_MTE, 4096), 0);
	assert_int_equal(mt_dest_start(&f->dest, &f->d.r, 1, NULL), 0);
	assert_int_equal(tm_migrate_connect(f->dest.addr, 2, f->fd, 5000, NULL), 0);
	for (uint16_t i = 0; i < 2; i++) {
		hello.channel = i;
		tm_hello_encode(h, &hello);
		fake_frame(f->fd[i], TM_F_HELLO, i, 0, h, sizeof(h), false);
	}
	strcpy(n.region[0].name, "ram");
	n.region[0].size = RSIZE;
	assert_int_equal(tm_geom_mte(&n.region[0].geom, 4096, NULL), 0);
	tm_neg_encode(buf, &n);
	fake_frame(f->fd[0], TM_F_NEGOTIATE, 0, 1, buf, (uint32_t)tm_neg_size(&n), false);
	assert_int_equal(tm_frame_recv(f->fd[0], 0, 0, buf, sizeof(buf), &fr, -1, 5000, NULL), 0);
	assert_int_equal(fr.type, TM_F_ACCEPT);
	f->sess.nregions = 1;
	f->sess.region[0] = (tm_pkt_region){ .size = RSIZE, .geom = n.region[0].geom };
	strcpy(f->sess.region[0].name, "ram");
	f->sess.features = features;
	f->sess.ppp = 128;
	f->sess.level = 1;
	assert_int_equal(tm_pkt_session_init(&f->sess, NULL), 0);
	f->seq = 1;
}

/* The destination must fail with `needle` in its message, tell us on the
 * control channel, and leave its region all-zero. */
static void fake_finish(struct fake *f, const char *needle)
{
	int rc = mt_dest_join(&f->dest);

	close(f->fd[0]);
	close(f->fd[1]);
	assert_int_not_equal(rc, 0);
	if (!strstr(tm_error_msg(&f->dest.err), needle))
		fail_msg("expected '%s' in: %s", needle, tm_error_msg(&f->dest.err));
	assert_true(mt_all_zero(f->d.r));
	mt_region_free(&f->d);
}

/* A PAGES payload from parts; returns its length. */
static uint32_t pkt(uint8_t *out, uint32_t region, uint32_t nn, uint32_t nt,
		    uint32_t nz, const uint64_t *off, const uint8_t *tags,
		    uint32_t tags_len, const uint8_t *data, uint32_t data_len,
		    uint32_t codec)
{
	uint32_t n = nn + nt + nz, len = TM_PKT_FIXED;

	tm_put32(out, region);
	tm_put32(out + 4, nn);
	tm_put32(out + 8, nt);
	tm_put32(out + 12, nz);
	tm_put32(out + 16, tags_len);
	tm_put32(out + 20, data_len);
	tm_put32(out + 24, codec);
	tm_put32(out + 28, 0);
	for (uint32_t i = 0; i < n && i < 128; i++, len += 8)
		tm_put64(out + len, off[i]);
	if (tags_len)
		memcpy(out + len, tags, tags_len);
	len += tags_len;
	if (data_len)
		memcpy(out + len, data, data_len);
	return len + data_len;
}

static uint8_t big[1 << 20];

/* One normal page at off with random-ish data and tags, via the codec. */
static uint32_t normal_page(uint8_t *out, uint64_t off, uint32_t region)
{
	tm_geom g;
	uint8_t data[4096], tags[128], enc[512];
	size_t el;

	tm_geom_mte(&g, 4096, NULL);
	for (int i = 0; i < 4096; i++)
		data[i] = (uint8_t)(i * 7 + 1);
	for (int i = 0; i < 128; i++)
		tags[i] = (uint8_t)(i * 13);
	assert_int_equal(tm_tagstream_encode(&g, tags, 1, 0, enc, sizeof(enc), &el, NULL), 0);
	return pkt(out, region, 1, 0, 0, &off, enc, (uint32_t)el, data, 4096, 0);
}

static void send_pages(struct fake *f, const uint8_t *p, uint32_t len)
{
	fake_frame(f->fd[1], TM_F_PAGES, 1, f->seq++, p, len, false);
}

static void bad_offset_beyond_end(void **state)
{
	struct fake f;

	(void)state;
	fake_start(&f, TM_FEAT_CHECKSUM);
	send_pages(&f, big, normal_page(big, RSIZE, 0));
	fake_finish(&f, "channel 1: packet 1: region 'ram' (size 0x100000, page 4096) "
		    "offset 0x100000 (normal page 0): beyond the end of the region");
}

static void bad_offset_unaligned(void **state)
{
	struct fake f;

	(void)state;
	fake_start(&f, TM_FEAT_CHECKSUM);
	send_pages(&f, big, normal_page(big, 4096 + 16, 0));
	fake_finish(&f, "offset 0x1010 (normal page 0): not page-aligned");
}

static void bad_region_id(void **state)
{
	struct fake f;

	(void)state;
	fake_start(&f, TM_FEAT_CHECKSUM);
	send_pages(&f, big, normal_page(big, 0, 5));
	fake_finish(&f, "channel 1: packet 1: region id 5, but only 1 regions were negotiated");
}

static void bad_count_above_allocation(void **state)
{
	struct fake f;
	uint64_t off[128] = { 0 };

	(void)state;
	fake_start(&f, TM_FEAT_CHECKSUM);
	/* 200 zero pages claimed; the packet allocation holds 128. */
	uint32_t len = pkt(big, 0, 0, 0, 200, off, NULL, 0, NULL, 0, 0);
	send_pages(&f, big, len);
	fake_finish(&f, "200 pages (0 normal, 0 tag-only, 200 zero) where 1..128 fit the packet allocation");
}

static void bad_lengths(void **state)
{
	struct fake f;

	(void)state;
	fake_start(&f, TM_FEAT_CHECKSUM);
	uint32_t len = normal_page(big, 0, 0);
	tm_put32(big + 20, 4000);   /* data_len no longer adds up */
	send_pages(&f, big, len);
	fake_finish(&f, "channel 1: packet 1: region 'ram': 1 pages with 132 tag bytes and 4000 data bytes make 4172 bytes, the packet has 4268");
}

static void bad_unpacked_tag_byte(void **state)
{
	struct fake f;
	uint8_t tags[256] = { 0 }, data[4096];
	uint64_t off = 8192;

	(void)state;
	fake_start(&f, TM_FEAT_CHECKSUM | TM_FEAT_TAGS_UNPACKED);
	memset(data, 0x5a, sizeof(data));
	tags[17] = 0x1f;
	send_pages(&f, big, pkt(big, 0, 1, 0, 0, &off, tags, 256, data, 4096, 0));
	fake_finish(&f, "region 'ram' offset 0x2000 granule 17: unpacked tag byte 0x1f has bits above the 4-bit tag");
}

static void bad_zstd_size(void **state)
{
	struct fake f;
	uint8_t data[4096 * 2], z[9000], enc[512], tags[256];
	uint64_t off[1] = { 0 };
	tm_geom g;
	size_t el;

	(void)state;
	fake_start(&f, TM_FEAT_CHECKSUM | TM_FEAT_ZSTD);
	memset(data, 3, sizeof(data));
	memset(tags, 0x33, sizeof(tags));
	tm_geom_mte(&g, 4096, NULL);
	assert_int_equal(tm_tagstream_encode(&g, tags, 1, 0, enc, sizeof(enc), &el, NULL), 0);
	/* Two pages' worth of data for one normal page. */
	size_t zl = ZSTD_compress(z, sizeof(z), data, sizeof(data), 1);
	send_pages(&f, big, pkt(big, 0, 1, 0, 0, off, enc, (uint32_t)el, z, (uint32_t)zl, 1));
	fake_finish(&f, "zstd frame declares 8192 bytes, 1 normal pages need 4096");
}

static void bad_tag_only_zero_tags(void **state)
{
	struct fake f;
	uint8_t tags[256] = { 0 };
	uint64_t off = 0;

	(void)state;
	fake_start(&f, TM_FEAT_CHECKSUM | TM_FEAT_TAGS_UNPACKED);
	send_pages(&f, big, pkt(big, 0, 0, 1, 0, &off, tags, 256, NULL, 0, 0));
	fake_finish(&f, "offset 0x0: tag-only page with all-zero tags");
}

static void bad_sequence(void **state)
{
	struct fake f;

	(void)state;
	fake_start(&f, TM_FEAT_CHECKSUM);
	f.seq = 7;
	send_pages(&f, big, normal_page(big, 0, 0));
	fake_finish(&f, "channel 1: sequence number 7 where 1 was expected");
}

static void bad_checksum(void **state)
{
	struct fake f;
	uint32_t len;

	(void)state;
	fake_start(&f, TM_FEAT_CHECKSUM);
	len = normal_page(big, 0, 0);
	fake_frame(f.fd[1], TM_F_PAGES, 1, f.seq++, big, len, true);
	fake_finish(&f, "channel 1: packet 1 (PAGES, 4268 bytes): checksum mismatch");
}

static void good_then_bad_discards(void **state)
{
	struct fake f;

	(void)state;
	fake_start(&f, TM_FEAT_CHECKSUM);
	send_pages(&f, big, normal_page(big, 4096, 0));
	send_pages(&f, big, normal_page(big, RSIZE + 4096, 0));
	fake_finish(&f, "the destination discarded its partial state (1 pages had been placed)");
}

static void unknown_feature(void **state)
{
	mt_region d = { 0 };
	mt_dest dest;
	int fd[2];
	uint8_t h[TM_HELLO_LEN], buf[TM_CTRL_MAX];
	tm_hello hello = { { 9, 9 }, 0, 1 };
	tm_neg n = { .id = { 9, 9 }, .nchannels = 1, .features = 1u << 9 | TM_FEAT_CHECKSUM,
		     .level = 1, .ppp = 128, .nregions = 1 };
	tm_frame fr;
	tm_error err;

	(void)state;
	assert_int_equal(mt_region_new(&d, "ram", RSIZE, TM_META_MTE, 4096), 0);
	assert_int_equal(mt_dest_start(&dest, &d.r, 1, NULL), 0);
	assert_int_equal(tm_migrate_connect(dest.addr, 2, fd, 5000, NULL), 0);
	for (uint16_t i = 0; i < 2; i++) {
		hello.channel = i;
		tm_hello_encode(h, &hello);
		fake_frame(fd[i], TM_F_HELLO, i, 0, h, sizeof(h), false);
	}
	strcpy(n.region[0].name, "ram");
	n.region[0].size = RSIZE;
	tm_geom_mte(&n.region[0].geom, 4096, NULL);
	tm_neg_encode(buf, &n);
	fake_frame(fd[0], TM_F_NEGOTIATE, 0, 1, buf, (uint32_t)tm_neg_size(&n), false);
	tm_error_clear(&err);
	assert_int_equal(tm_frame_recv(fd[0], 0, 0, buf, sizeof(buf), &fr, -1, 5000, &err), 0);
	assert_int_equal(fr.type, TM_F_REJECT);
	buf[fr.len] = 0;
	assert_non_null(strstr((char *)buf, "source asks for unknown feature bits 0x200"));
	assert_int_not_equal(mt_dest_join(&dest), 0);
	close(fd[0]);
	close(fd[1]);
	assert_true(mt_all_zero(d.r));
	mt_region_free(&d);
}

/* ---- corruption and truncation of a real stream -------------------- */

struct relay_run {
	int src_rc, dst_rc;
	tm_error src_err, dst_err;
	int64_t bytes;
	bool acted;
};

static void relay_run(mt_region *s, mt_region *d, int64_t cut, int64_t flip,
		      struct relay_run *out)
{
	tm_migrate_config cfg;
	mt_dest dest;
	mt_proxy px;
	mt_source src;

	tm_migrate_config_default(&cfg);
	cfg.channels = 2;
	cfg.timeout_ms = 3000;
	assert_int_equal(mt_dest_start(&dest, &d->r, 1, &cfg), 0);
	assert_int_equal(mt_proxy_start(&px, dest.addr, 3, cut, flip), 0);
	mt_source_run(&src, px.addr, &s->r, 1, &cfg, NULL);
	mt_dest_join(&dest);
	out->bytes = mt_proxy_join(&px);
	out->acted = atomic_load(&px.acted);
	out->src_rc = src.rc;
	out->dst_rc = dest.rc;
	out->src_err = src.err;
	out->dst_err = dest.err;
}

static void random_damage(bool flip)
{
	mt_region s = { 0 }, d = { 0 };
	struct relay_run clean, r;
	tm_rng rng;

	assert_int_equal(mt_region_new(&s, "ram", 2 * RSIZE, TM_META_MTE, 4096), 0);
	assert_int_equal(tm_workload_fill(s.r, 11, 25, 10, NULL), 0);
	uint64_t before = mt_digest64(s.r);
	assert_int_equal(mt_region_new(&d, "ram", 2 * RSIZE, TM_META_MTE, 4096), 0);
	relay_run(&s, &d, -1, -1, &clean);
	if (clean.src_rc || clean.dst_rc)
		fail_msg("clean run failed: %s / %s", tm_error_msg(&clean.src_err),
			 tm_error_msg(&clean.dst_err));
	mt_region_free(&d);
	tm_rng_seed(&rng, flip ? 1234 : 4321);
	for (int i = 0; i < 10; i++) {
		int64_t at = (int64_t)tm_rng_below(&rng, (uint64_t)clean.bytes);

		assert_int_equal(mt_region_new(&d, "ram", 2 * RSIZE, TM_META_MTE, 4096), 0);
		relay_run(&s, &d, flip ? -1 : at, flip ? at : -1, &r);
		if (!r.src_rc || !r.dst_rc)
			fail_msg("%s at byte %lld of %lld went unnoticed: source %s / dest %s",
				 flip ? "flip" : "cut", (long long)at, (long long)clean.bytes,
				 tm_error_msg(&r.src_err), tm_error_msg(&r.dst_err));
		assert_true(r.src_err.msg[0] && r.dst_err.msg[0]);
		if (flip)   /* a flipped bit is caught by a check, never by luck */
			assert_true(strstr(r.dst_err.msg, "mismatch") || strstr(r.src_err.msg, "mismatch") ||
				    strstr(r.dst_err.msg, "magic") || strstr(r.src_err.msg, "magic"));
		assert_true(mt_all_zero(d.r));
		assert_true(mt_digest64(s.r) == before);
		mt_region_free(&d);
	}
	mt_region_free(&s);
}

static void flipped_bit_random_points(void **state)
{
	(void)state;
	random_damage(true);
}

static void truncated_random_points(void **state)
{
	(void)state;
	random_damage(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mismatch_metadata_kind),
		cmocka_unit_test(mismatch_page_size),
		cmocka_unit_test(mismatch_size),
		cmocka_unit_test(mismatch_name),
		cmocka_unit_test(mismatch_geometry),
		cmocka_unit_test(unknown_feature),
		cmocka_unit_test(bad_offset_beyond_end),
		cmocka_unit_test(bad_offset_unaligned),
		cmocka_unit_test(bad_region_id),
		cmocka_unit_test(bad_count_above_allocation),
		cmocka_unit_test(bad_lengths),
		cmocka_unit_test(bad_unpacked_tag_byte),
		cmocka_unit_test(bad_zstd_size),
		cmocka_unit_test(bad_tag_only_zero_tags),
		cmocka_unit_test(bad_sequence),
		cmocka_unit_test(bad_checksum),
		cmocka_unit_test(good_then_bad_discards),
		cmocka_unit_test(flipped_bit_random_points),
		cmocka_unit_test(truncated_random_points),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
