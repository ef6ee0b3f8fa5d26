/*
 * test_migrate_inplace.c - the zero-copy data path keeps every guarantee
 * of the buffered one. The destination side is driven at the channel level
 * (a real tm_rchan reading a real socket, fed with packets built by the
 * real encoder), because the migration's own failure handling discards the
 * whole destination afterwards and would hide what a single bad packet
 * left behind; here the region is inspected right after the channel
 * stopped:
 *   - a good packet lands in place (its data never passes through the
 *     packet buffer) and every page reads back with its tags; with zero
 *     copy off the same packet goes through the buffer;
 *   - a packet whose data was corrupted in transit, cut short half-way, or
 *     whose offsets were corrupted into other valid ones: the landed pages
 *     are zeroed (data and tags), the error names them, and no tag-only or
 *     zero page of it and no tags were placed;
 *   - a packet whose offsets fail validation receives nothing in place;
 *   - a page that is not resident is received through the buffer;
 *   - the last page of a guarded region lands without touching the guard.
 * The source side: packets built from pieces in region memory are byte for
 * byte the packets built from a contiguous copy, and whole migrations with
 * every combination of zero copy on/off on the two sides, with source pages
 * that are not resident, give identical digests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "migrate/internal.h"
#include "migrate/packet.h"
#include "migrate/wire.h"
#include "tests/migrate/mig_test.h"
#include "tests/test_skip.h"

#define RSIZE (64u * 4096u)
#define PS 4096u
#define TB 128u
#define NN 8u           /* normal pages in the test packet: 0..7 */
#define NT 2u           /* tag-only: 8, 9 */
#define NZ 2u           /* zero: 10, 11 */

/* ---- a destination channel on a socketpair ------------------------ */

struct rx {
	mt_region d;
	tm_migration *m;
	tm_rchan c;
	int sv[2];              /* [0]: we write packets; [1]: the channel reads */
	tm_pkt_encoder enc;
	uint64_t seq;
	tm_error err;           /* the channel's error once it stopped */
};

static void rx_open(struct rx *x, bool zero_copy)
{
	tm_migrate_config cfg;
	tm_pkt_session *s;

	memset(x, 0, sizeof(*x));
	assert_int_equal(mt_region_new(&x->d, "ram", RSIZE, TM_META_MTE, PS), 0);
	tm_migrate_config_default(&cfg);
	cfg.zero_copy = zero_copy;
	assert_int_equal(tm_migration_new(&x->m, TM_MIGRATE_DEST, &cfg, NULL, NULL), 0);
	x->m->region[0] = x->d.r;
	x->m->nregions = 1;
	x->m->nchan = 1;
	s = &x->m->sess;
	s->nregions = 1;
	strcpy(s->region[0].name, "ram");
	s->region[0].size = RSIZE;
	s->region[0].geom = *tm_region_geom(x->d.r);
	s->features = TM_FEAT_CHECKSUM;
	s->ppp = 128;
	s->level = 1;
	assert_int_equal(tm_pkt_session_init(s, NULL), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, x->sv), 0);
	assert_int_equal(tm_rchan_init(&x->c, x->m, 1, x->sv[1], NULL), 0);
	assert_int_equal(tm_pkt_encoder_init(&x->enc, s, NULL), 0);
	x->seq = 1;
}

/* Close our end and let the channel read everything until it stops. */
static void rx_run(struct rx *x)
{
	close(x->sv[0]);
	x->sv[0] = -1;
	tm_rchan_main(&x->c);
	tm_error_clear(&x->err);
	tm_mig_error(x->m, &x->err);
}

static void rx_close(struct rx *x)
{
	tm_pkt_encoder_free(&x->enc);
	tm_rchan_free(&x->c);
	close(x->sv[1]);
	tm_migration_free(x->m);
	mt_region_free(&x->d);
}

static void expect_err(const struct rx *x, const char *needle)
{
	if (!strstr(tm_error_msg(&x->err), needle))
		fail_msg("expected '%s' in: %s", needle, tm_error_msg(&x->err));
}

/* ---- page contents ------------------------------------------------- */

static void page_data(size_t pg, uint8_t seed, uint8_t *d)
{
	for (size_t i = 0; i < PS; i++)
		d[i] = (uint8_t)(seed + pg * 31 + i * 7 + (i >> 9));
	d[0] |= 1;      /* never a zero page */
}

static void page_tags(size_t pg, uint8_t seed, uint8_t *t)
{
	for (size_t i = 0; i < TB; i++)
		t[i] = (uint8_t)(seed ^ (pg * 17 + i * 5));
	t[0] |= 0x10;   /* never zero tags */
}

/* What an earlier pass left on every destination page. */
static void prefill_old(tm_region *r)
{
	uint8_t d[PS], t[TB];

	for (size_t pg = 0; pg < RSIZE / PS; pg++) {
		page_data(pg, 0xa0, d);
		page_tags(pg, 0x50, t);
		assert_int_equal(tm_region_write_page(r, pg, d, t, NULL), 0);
	}
}

static bool page_is(tm_region *r, size_t pg, const uint8_t *d, const uint8_t *t)
{
	uint8_t gd[PS], gt[TB];

	assert_int_equal(tm_region_read_page(r, pg, gd, gt, NULL), 0);
	return memcmp(gd, d, PS) == 0 && memcmp(gt, t, TB) == 0;
}

static bool page_old(tm_region *r, size_t pg)
{
	uint8_t d[PS], t[TB];

	page_data(pg, 0xa0, d);
	page_tags(pg, 0x50, t);
	return page_is(r, pg, d, t);
}

static bool page_zero(tm_region *r, size_t pg)
{
	uint8_t z[PS] = { 0 };

	return page_is(r, pg, z, z);
}

/* ---- the test packet ----------------------------------------------- */

/* Normal pages at `normal_first`.. (NN of them), tag-only at 8, 9, zero at
 * 10, 11; data and tags are the "new" contents. */
struct tpkt {
	uint64_t off[NN + NT + NZ];
	uint8_t tags[(NN + NT) * TB];
	uint8_t data[NN * PS];
	uint8_t wire[TM_FRAME_HDR + TM_PKT_FIXED + 8 * 12 + 4096 + NN * PS];
	size_t len;             /* frame bytes in wire */
	size_t data_at;         /* where the data starts in wire */
};

static void tpkt_build(struct rx *x, struct tpkt *p, size_t normal_first)
{
	struct iovec iov[3];
	size_t total = 0;
	int niov;

	for (size_t i = 0; i < NN; i++) {
		p->off[i] = (normal_first + i) * PS;
		page_data(normal_first + i, 0x11, p->data + i * PS);
		page_tags(normal_first + i, 0x22, p->tags + i * TB);
	}
	for (size_t i = 0; i < NT; i++) {
		p->off[NN + i] = (8 + i) * PS;
		page_tags(8 + i, 0x33, p->tags + (NN + i) * TB);
	}
	for (size_t i = 0; i < NZ; i++)
		p->off[NN + NT + i] = (10 + i) * PS;
	tm_pkt_pages pp = { .region = 0, .n_normal = NN, .n_tagonly = NT,
			    .n_zero = NZ, .off = p->off, .tags = p->tags,
			    .data = p->data };
	assert_int_equal(tm_pkt_encode(&x->enc, &pp, 1, x->seq++, iov, &niov,
				       &total, NULL), 0);
	p->len = 0;
	for (int i = 0; i < niov; i++) {
		memcpy(p->wire + p->len, iov[i].iov_base, iov[i].iov_len);
		p->len += iov[i].iov_len;
	}
	p->data_at = p->len - NN * PS;
}

static void tpkt_send(struct rx *x, const struct tpkt *p, size_t len)
{
	assert_int_equal(tm_xport_send(x->sv[0], p->wire, len), 0);
}

/* The pages of the packet hold its new contents. */
static void expect_placed(tm_region *r, const struct tpkt *p)
{
	uint8_t z[PS] = { 0 };

	for (size_t i = 0; i < NN; i++)
		assert_true(page_is(r, p->off[i] / PS, p->data + i * PS,
				    p->tags + i * TB));
	for (size_t i = 0; i < NT; i++)
		assert_true(page_is(r, p->off[NN + i] / PS, z, p->tags + (NN + i) * TB));
	for (size_t i = 0; i < NZ; i++)
		assert_true(page_zero(r, p->off[NN + NT + i] / PS));
}

/* Pages [from, to) kept what the earlier pass left. */
static void expect_old(tm_region *r, size_t from, size_t to)
{
	for (size_t pg = from; pg < to; pg++)
		if (!page_old(r, pg))
			fail_msg("page %zu changed", pg);
}

/* ---- destination: good packets ------------------------------------- */

/* The data of the packet is (in place) or is not (buffered) in the
 * channel's packet buffer after it was placed. */
static bool data_in_buffer(const struct rx *x, const struct tpkt *p)
{
	size_t meta = p->data_at - TM_FRAME_HDR;

	return memcmp(x->c.payload + meta, p->data, PS) == 0;
}

static void good_packet(bool zero_copy)
{
	struct rx x;
	struct tpkt p;

	rx_open(&x, zero_copy);
	prefill_old(x.d.r);
	tpkt_build(&x, &p, 0);
	tpkt_send(&x, &p, p.len);
	rx_run(&x);
	expect_err(&x, "after packet 1");       /* only the end of the stream */
	expect_placed(x.d.r, &p);
	expect_old(x.d.r, 12, RSIZE / PS);
	assert_int_equal(x.c.pages, NN + NT + NZ);
	assert_true(data_in_buffer(&x, &p) == !zero_copy);
	rx_close(&x);
}

static void good_packet_in_place(void **state)
{
	(void)state;
	good_packet(true);
}

static void good_packet_buffered(void **state)
{
	(void)state;
	good_packet(false);
}

/* A destination page that is not resident (discarded) goes through the
 * region interface, which places it whole. */
static void not_present_goes_buffered(void **state)
{
	struct rx x;
	struct tpkt p;

	(void)state;
	rx_open(&x, true);
	prefill_old(x.d.r);
	assert_int_equal(tm_region_discard(x.d.r, 3, 1, NULL), 0);
	tpkt_build(&x, &p, 0);
	tpkt_send(&x, &p, p.len);
	rx_run(&x);
	expect_placed(x.d.r, &p);
	assert_true(tm_region_page_present(x.d.r, 3));
	assert_true(data_in_buffer(&x, &p));
	rx_close(&x);
}

/* The region's last pages, right before the guard page of the mapping. */
static void last_pages_of_guarded_region(void **state)
{
	struct rx x;
	struct tpkt p;

	(void)state;
	rx_open(&x, true);
	prefill_old(x.d.r);
	tpkt_build(&x, &p, RSIZE / PS - NN);
	tpkt_send(&x, &p, p.len);
	rx_run(&x);
	expect_placed(x.d.r, &p);
	assert_false(data_in_buffer(&x, &p));
	expect_old(x.d.r, 12, RSIZE / PS - NN);
	rx_close(&x);
}

/* ---- destination: bad packets -------------------------------------- */

/* Nothing of the packet is placed but the zeroed normal pages. */
static void expect_unlanded(tm_region *r, const struct tpkt *p)
{
	for (size_t i = 0; i < NN; i++)
		if (!page_zero(r, p->off[i] / PS))
			fail_msg("landed page at 0x%llx was not zeroed",
				 (unsigned long long)p->off[i]);
	for (size_t pg = 8; pg < 12; pg++)      /* its tag-only and zero pages */
		if (!page_old(r, pg))
			fail_msg("page %zu of a bad packet was placed", pg);
}

static void corrupt_data_in_transit(void **state)
{
	struct rx x;
	struct tpkt p;

	(void)state;
	rx_open(&x, true);
	prefill_old(x.d.r);
	tpkt_build(&x, &p, 0);
	p.wire[p.data_at + 5 * PS + 77] ^= 0x04;
	tpkt_send(&x, &p, p.len);
	rx_run(&x);
	expect_err(&x, "checksum mismatch");
	expect_err(&x, "8 normal pages had been received in place into region "
		   "'ram' offsets 0x0..0x7000 and were zeroed");
	expect_unlanded(x.d.r, &p);
	expect_old(x.d.r, 12, RSIZE / PS);
	assert_int_equal(x.c.pages, 0);
	rx_close(&x);
}

static void cut_short_in_the_data(void **state)
{
	struct rx x;
	struct tpkt p;

	(void)state;
	rx_open(&x, true);
	prefill_old(x.d.r);
	tpkt_build(&x, &p, 0);
	tpkt_send(&x, &p, p.data_at + 3 * PS + 100);
	rx_run(&x);
	expect_err(&x, "payload cut short");
	expect_err(&x, "were zeroed");
	expect_unlanded(x.d.r, &p);
	expect_old(x.d.r, 12, RSIZE / PS);
	rx_close(&x);
}

/* Offsets corrupted into other valid ones steer the data into other
 * pages; the checksum catches it after they landed, and it is those pages
 * that are zeroed and named. */
static void corrupt_offset_still_valid(void **state)
{
	struct rx x;
	struct tpkt p;
	size_t at = TM_FRAME_HDR + TM_PKT_FIXED;

	(void)state;
	rx_open(&x, true);
	prefill_old(x.d.r);
	tpkt_build(&x, &p, 20);
	tm_put64(p.wire + at, 12 * PS);         /* normal page 0: 20 -> 12 */
	tpkt_send(&x, &p, p.len);
	rx_run(&x);
	expect_err(&x, "checksum mismatch");
	expect_err(&x, "offsets 0xc000..0x1b000 and were zeroed");
	assert_true(page_zero(x.d.r, 12));
	for (size_t pg = 21; pg < 28; pg++)
		assert_true(page_zero(x.d.r, pg));
	expect_old(x.d.r, 0, 12);
	expect_old(x.d.r, 13, 21);
	expect_old(x.d.r, 28, RSIZE / PS);      /* page 20 included: untouched */
	rx_close(&x);
}

/* An offset that fails validation: nothing is received in place at all.
 * With the checksum left stale the corruption is what is reported; with a
 * sender that sealed the bad offset, the validation error. */
static void bad_offset(bool reseal)
{
	struct rx x;
	struct tpkt p;
	size_t at = TM_FRAME_HDR + TM_PKT_FIXED + 8 * 3;

	rx_open(&x, true);
	prefill_old(x.d.r);
	tpkt_build(&x, &p, 0);
	tm_put64(p.wire + at, RSIZE);           /* normal page 3: past the end */
	if (reseal) {
		const void *pc[1] = { p.wire + TM_FRAME_HDR };
		size_t pl[1] = { p.len - TM_FRAME_HDR };

		tm_frame_seal(p.wire, pc, pl, 1);
	}
	tpkt_send(&x, &p, p.len);
	rx_run(&x);
	expect_err(&x, reseal ? "offset 0x40000 (normal page 3): beyond the end "
		   "of the region" : "checksum mismatch");
	expect_old(x.d.r, 0, RSIZE / PS);
	rx_close(&x);
}

static void bad_offset_stale_checksum(void **state)
{
	(void)state;
	bad_offset(false);
}

static void bad_offset_sealed(void **state)
{
	(void)state;
	bad_offset(true);
}

/* ---- source: pieces make the same packet ---------------------------- */

static void pieces_encode_like_contiguous(void **state)
{
	struct rx x;
	struct tpkt p;
	struct iovec iov[3], piov[8], pieces[3];
	size_t t1, t2;
	int n1, n2;

	(void)state;
	rx_open(&x, true);
	tpkt_build(&x, &p, 0);
	x.seq--;
	tm_pkt_pages pp = { .region = 0, .n_normal = NN, .n_tagonly = NT,
			    .n_zero = NZ, .off = p.off, .tags = p.tags,
			    .data = p.data };
	/* Pages 0-2, 3, 4-7: three pieces, as region memory would give. */
	pieces[0] = (struct iovec){ p.data, 3 * PS };
	pieces[1] = (struct iovec){ p.data + 3 * PS, PS };
	pieces[2] = (struct iovec){ p.data + 4 * PS, 4 * PS };
	tm_pkt_pages pq = pp;
	pq.data = NULL;
	pq.data_iov = pieces;
	pq.data_niov = 3;
	assert_int_equal(tm_pkt_encode(&x.enc, &pp, 1, 9, iov, &n1, &t1, NULL), 0);
	uint8_t a[sizeof(p.wire)], b[sizeof(p.wire)];
	size_t la = 0, lb = 0;
	for (int i = 0; i < n1; i++, la += iov[i - 1].iov_len)
		memcpy(a + la, iov[i].iov_base, iov[i].iov_len);
	assert_int_equal(tm_pkt_encode_iov(&x.enc, &pq, 1, 9, piov, 8, &n2, &t2,
					   NULL), 0);
	assert_int_equal(n2, 5);
	for (int i = 0; i < n2; i++, lb += piov[i - 1].iov_len)
		memcpy(b + lb, piov[i].iov_base, piov[i].iov_len);
	assert_int_equal(t1, t2);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	/* Too few iovecs for the pieces: refused, nothing half-built sent. */
	assert_int_equal(tm_pkt_encode_iov(&x.enc, &pq, 1, 9, piov, 4, &n2, &t2,
					   NULL), -EINVAL);
	rx_close(&x);
}

/* ---- whole migrations: zero copy on/off on each side ---------------- */

static void migrate_combo(bool src_zc, bool dst_zc, unsigned channels)
{
	mt_region s = { 0 }, d = { 0 };
	tm_migrate_config scfg, dcfg;
	mt_dest dest;
	mt_source src;
	const size_t size = 4u << 20;

	assert_int_equal(mt_region_new(&s, "ram", size, TM_META_MTE, PS), 0);
	assert_int_equal(mt_region_new(&d, "ram", size, TM_META_MTE, PS), 0);
	assert_int_equal(tm_workload_fill(s.r, 7, 25, 10, NULL), 0);
	/* Source pages that are not resident: read through the region
	 * interface instead of in place. */
	assert_int_equal(tm_region_discard(s.r, 5, 3, NULL), 0);
	assert_int_equal(tm_region_discard(s.r, 300, 1, NULL), 0);
	prefill_old(d.r);       /* the destination is not fresh */
	tm_migrate_config_default(&scfg);
	scfg.channels = channels;
	scfg.zero_copy = src_zc;
	tm_migrate_config_default(&dcfg);
	dcfg.zero_copy = dst_zc;
	assert_int_equal(mt_dest_start(&dest, &d.r, 1, &dcfg), 0);
	mt_source_run(&src, dest.addr, &s.r, 1, &scfg, NULL);
	mt_dest_join(&dest);
	if (src.rc || dest.rc)
		fail_msg("source: %s\ndestination: %s", tm_error_msg(&src.err),
			 tm_error_msg(&dest.err));
	assert_true(src.st.verified && dest.st.verified);
	assert_true(mt_digest64(s.r) == mt_digest64(d.r));
	mt_region_free(&s);
	mt_region_free(&d);
}

static void migrations_zero_copy_combinations(void **state)
{
	(void)state;
	migrate_combo(true, true, 1);
	migrate_combo(true, true, 3);
	migrate_combo(true, false, 2);
	migrate_combo(false, true, 2);
	migrate_combo(false, false, 2);
}

/* A source page that is not resident because lazy placement has not
 * fetched it yet is read through the region interface, so a failing fetch
 * is an error naming it, not a SIGBUS in a channel thread (which reading it
 * in place through its pointer would raise). A region without metadata, so
 * that no tag read goes through the interface first. */
static int fill_fails_at_40(void *ctx, tm_region *r, size_t pg, void *data,
			    uint8_t *tags, bool *tagged, tm_error *err)
{
	(void)ctx;
	(void)r;
	if (pg == 40)
		return tm_error_set(err, -EIO, "backing store lost page 40");
	page_data(pg, 0x44, data);
	(void)tags;
	*tagged = false;
	return 0;
}

static void lazy_source_page_fails(void **state)
{
	tm_region_config cfg = { .name = "ram", .size = RSIZE,
				 .backend = TM_BACKEND_SOFT };
	mt_region d = { 0 };
	tm_region *s = NULL;
	mt_dest dest;
	mt_source src;
	tm_migrate_config scfg;
	tm_error err;

	(void)state;
	tm_error_clear(&err);
	assert_int_equal(tm_geom_init(&cfg.geom, TM_META_NONE, PS, 0, 0, NULL), 0);
	assert_int_equal(tm_region_create(&cfg, &s, NULL), 0);
	if (tm_region_lazy_start(s, fill_fails_at_40, NULL, &err)) {
		tm_region_destroy(s);
		tm_test_skip("uffd", "no lazy placement here (userfaultfd): %s", err.msg);
	}
	assert_int_equal(mt_region_new(&d, "ram", RSIZE, TM_META_NONE, PS), 0);
	tm_migrate_config_default(&scfg);
	scfg.channels = 1;
	assert_int_equal(mt_dest_start(&dest, &d.r, 1, NULL), 0);
	mt_source_run(&src, dest.addr, &s, 1, &scfg, NULL);
	mt_dest_join(&dest);
	assert_int_not_equal(src.rc, 0);
	if (!strstr(tm_error_msg(&src.err), "backing store lost page 40") ||
	    !strstr(tm_error_msg(&src.err), "offset 0x28000"))
		fail_msg("source: %s", tm_error_msg(&src.err));
	tm_region_lazy_stop(s);
	tm_region_destroy(s);
	mt_region_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_packet_in_place),
		cmocka_unit_test(good_packet_buffered),
		cmocka_unit_test(not_present_goes_buffered),
		cmocka_unit_test(last_pages_of_guarded_region),
		cmocka_unit_test(corrupt_data_in_transit),
		cmocka_unit_test(cut_short_in_the_data),
		cmocka_unit_test(corrupt_offset_still_valid),
		cmocka_unit_test(bad_offset_stale_checksum),
		cmocka_unit_test(bad_offset_sealed),
		cmocka_unit_test(pieces_encode_like_contiguous),
		cmocka_unit_test(migrations_zero_copy_combinations),
		cmocka_unit_test(lazy_source_page_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
