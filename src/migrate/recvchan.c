/*
 * recvchan.c - a destination data channel: a thread that receives one
 * packet at a time, validates it as a whole (packet.c) and only then places
 * its pages, each with its tags, through tm_rx_place_page. The first bad
 * byte stops the migration.
 *
 * Two ways in. Buffered: the whole payload lands in the channel's packet
 * buffer, the checksum and every field are checked, then the pages are
 * copied into the region; a bad packet places nothing. In place (zero
 * copy, tm_migrate_config.zero_copy): the fixed fields, then the offsets
 * and tags are received into the buffer and validated completely (every
 * offset inside the region, page-aligned, ascending; the tags decoded);
 * only then is the data of a raw packet received straight into the
 * destination pages named by those offsets, which lie inside the
 * registered region by construction. The checksum is then verified over
 * the header, offsets, tags and the landed pages; the tags, tag-only and
 * zero pages are placed only after it holds. If it does not hold, or the
 * connection breaks half-way, the landed pages are zeroed (data and tags)
 * so nothing unverified remains, and the error says which pages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/util.h"
#include "migrate/internal.h"
#include "migrate/transport.h"

int tm_rchan_init(tm_rchan *c, tm_migration *m, unsigned idx, int fd,
		  tm_error *err)
{
	size_t ps = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	c->m = m;
	c->idx = idx;
	c->fd = fd;
	c->seq = 1;
	c->cap = tm_pkt_max_payload(&m->sess);
	for (uint32_t i = 0; i < m->sess.nregions; i++)
		if (m->sess.region[i].geom.page_size > ps)
			ps = m->sess.region[i].geom.page_size;
	c->payload = malloc(c->cap);
	c->zero_page = calloc(1, ps);
	c->iov = malloc((m->sess.ppp + 1) * sizeof(*c->iov));
	c->iov_rx = malloc((m->sess.ppp + 1) * sizeof(*c->iov_rx));
	for (uint32_t i = 0; i < m->sess.nregions; i++)
		c->direct[i] = tm_mig_direct(m->region[i]);
	if (!c->payload || !c->zero_page || !c->iov || !c->iov_rx) {
		tm_rchan_free(c);
		return tm_error_set(err, -ENOMEM,
			"channel %u: cannot allocate a %zu-byte packet buffer", idx,
			c->cap);
	}
	rc = tm_pkt_scratch_init(&c->sc, &m->sess, err);
	if (rc)
		tm_rchan_free(c);
	return rc;
}

void tm_rchan_free(tm_rchan *c)
{
	free(c->payload);
	free(c->zero_page);
	free(c->iov);
	free(c->iov_rx);
	tm_pkt_scratch_free(&c->sc);
	c->payload = c->zero_page = NULL;
	c->iov = c->iov_rx = NULL;
}

/* Which of the packet's tag-only and zero pages are known to read zero
 * already (bit i: the packet's page i), asked of the kernel for the span of
 * pages they cover, in one go. */
static void known_zero(tm_rchan *c, const tm_pkt *pk, uint64_t *kz)
{
	tm_region *reg = c->m->region[pk->region];
	size_t ps = c->m->sess.region[pk->region].geom.page_size;
	uint32_t n = pk->n_normal + pk->n_tagonly + pk->n_zero;
	uint64_t lo = UINT64_MAX, hi = 0, bits[TM_MASK_WORDS];

	memset(kz, 0, TM_MASK_WORDS * 8);
	for (uint32_t i = pk->n_normal; i < n; i++) {
		uint64_t pg = tm_pkt_offset(pk, i) / ps;

		lo = pg < lo ? pg : lo;
		hi = pg > hi ? pg : hi;
	}
	/* Within one chunk, as a tagmem source sends them; other layouts
	 * are placed without the shortcut. */
	if (lo > hi || hi - lo >= TM_MIGRATE_MAX_PPP ||
	    !tm_untouched_scan(&c->m->untouched, pk->region, reg, lo, hi - lo + 1,
			       bits))
		return;
	for (uint32_t i = pk->n_normal; i < n; i++) {
		uint64_t b = tm_pkt_offset(pk, i) / ps - lo;

		if (bits[b / 64] >> (b % 64) & 1)
			kz[i / 64] |= 1ull << (i % 64);
	}
}

/* Place every page of a validated packet. landed: the normal pages' data
 * is already in place (only their tags are written). */
static int place(tm_rchan *c, const tm_pkt *pk, bool landed, tm_error *err)
{
	const tm_pkt_region *r = &c->m->sess.region[pk->region];
	tm_region *reg = c->m->region[pk->region];
	size_t ps = r->geom.page_size, tb = r->tag_bytes;
	uint32_t ntagged = pk->n_normal + pk->n_tagonly;
	uint32_t n = ntagged + pk->n_zero;
	uint64_t kz[TM_MASK_WORDS];

	known_zero(c, pk, kz);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = tm_pkt_offset(pk, i);
		const uint8_t *tags = pk->tags && i < ntagged ? pk->tags + i * tb : NULL;
		enum tm_rx_class cls = i < pk->n_normal ? TM_RX_NORMAL :
				       i < ntagged ? TM_RX_TAGONLY : TM_RX_ZERO;
		const uint8_t *data = cls == TM_RX_NORMAL && !landed ?
				      pk->data + i * ps : NULL;
		int rc = tm_rx_place_page(reg, off / ps, cls, data, tags, c->zero_page,
					  kz[i / 64] >> (i % 64) & 1, err);

		if (rc)
			return tm_error_wrap(err, rc,
				"channel %u: packet %llu: placing region '%s' offset 0x%llx",
				c->idx, (unsigned long long)c->seq, r->name,
				(unsigned long long)off);
		c->pages++;
	}
	atomic_fetch_add(&c->st.normal, pk->n_normal);
	atomic_fetch_add(&c->st.tag_only, pk->n_tagonly);
	atomic_fetch_add(&c->st.zero, pk->n_zero);
	atomic_fetch_add(&c->st.data, (uint64_t)n * ps);
	return 0;
}

static int on_end(tm_rchan *c, const tm_frame *f, tm_error *err)
{
	uint64_t packets, pages;

	if (f->len != 16)
		return tm_error_set(err, -EBADMSG,
			"channel %u: END of %u bytes (expected 16)", c->idx, f->len);
	packets = tm_get64(c->payload);
	pages = tm_get64(c->payload + 8);
	if (packets != atomic_load(&c->st.packets) || pages != c->pages)
		return tm_error_set(err, -EBADMSG,
			"channel %u: source sent %llu packets / %llu pages, %llu / "
			"%llu arrived", c->idx, (unsigned long long)packets,
			(unsigned long long)pages,
			(unsigned long long)atomic_load(&c->st.packets),
			(unsigned long long)c->pages);
	atomic_store(&c->ended, true);
	return 0;
}

/* Receive n bytes of packet f's payload into buf. */
static int recv_part(tm_rchan *c, const tm_frame *f, void *buf, size_t n,
		     tm_error *err)
{
	int rc = tm_xport_recv(c->fd, buf, n);

	if (rc)
		return tm_error_set(err, rc,
			"channel %u: packet %llu: payload cut short: %s", c->idx,
			(unsigned long long)f->seq, tm_xport_strerror(rc));
	atomic_fetch_add(&c->st.bytes, n);
	return 0;
}

static bool checksummed(const tm_rchan *c, const tm_frame *f)
{
	return (c->m->sess.features & TM_FEAT_CHECKSUM) || f->type == TM_F_END;
}

/* The whole payload into the buffer, checksum checked, then validated:
 * the path without zero copy. */
static int buffered_frame(tm_rchan *c, const uint8_t *hdr, const tm_frame *f,
			  tm_error *err)
{
	tm_pkt pk;
	int rc = recv_part(c, f, c->payload, f->len, err);

	if (rc == 0 && checksummed(c, f))
		rc = tm_frame_check(hdr, f, c->payload, c->idx, err);
	if (rc)
		return rc;
	c->seq++;
	if (f->type == TM_F_END)
		return on_end(c, f, err) ? -EBADMSG : 1;
	rc = tm_pkt_decode(&c->m->sess, c->payload, f->len, c->idx, f->seq, &c->sc,
			   &pk, err);
	if (rc)
		return rc;
	atomic_fetch_add(&c->st.packets, 1);
	return place(c, &pk, false, err);
}

/*
 * A packet whose first `have` bytes failed validation: when the rest
 * arrives and the checksum does not hold, the packet was corrupted in
 * transit, and that is the better explanation; otherwise the sender built
 * it so and the validation error stands. Nothing was placed either way.
 */
static int bad_packet(tm_rchan *c, const uint8_t *hdr, const tm_frame *f,
		      size_t have, int rc, tm_error *err)
{
	tm_error sum;

	if (!checksummed(c, f) ||
	    tm_xport_recv(c->fd, c->payload + have, f->len - have) != 0)
		return rc;
	tm_error_clear(&sum);
	if (tm_frame_check(hdr, f, c->payload, c->idx, &sum) == 0)
		return rc;
	*err = sum;
	return sum.code;
}

/* The normal pages' data can be received into the pages themselves: raw,
 * a region with plain pointers, every page resident (a missing page under
 * lazy placement must be placed through the region interface). */
static bool in_place_ok(const tm_rchan *c, const tm_pkt *pk)
{
	tm_region *reg = c->m->region[pk->region];
	size_t ps = c->m->sess.region[pk->region].geom.page_size;

	if (!c->m->cfg.zero_copy || !c->direct[pk->region] ||
	    pk->codec != TM_DATA_RAW || pk->n_normal == 0)
		return false;
	for (uint32_t i = 0; i < pk->n_normal; i++)
		if (!tm_region_page_present(reg, tm_pkt_offset(pk, i) / ps))
			return false;
	return true;
}

/* c->iov: the payload's first part (fixed fields, offsets, tags) then the
 * normal pages in region memory, consecutive pages one piece. Returns the
 * number of pieces. */
static int page_pieces(tm_rchan *c, const tm_pkt *pk)
{
	tm_region *reg = c->m->region[pk->region];
	size_t ps = c->m->sess.region[pk->region].geom.page_size;
	int n = 1;

	c->iov[0] = (struct iovec){ c->payload, TM_PKT_FIXED + pk->meta_len };
	for (uint32_t i = 0; i < pk->n_normal; i++) {
		uint8_t *p = tm_region_direct(reg, tm_pkt_offset(pk, i));
		struct iovec *last = &c->iov[n - 1];

		if (n > 1 && (uint8_t *)last->iov_base + last->iov_len == p)
			last->iov_len += ps;
		else
			c->iov[n++] = (struct iovec){ p, ps };
	}
	return n;
}

/* Landed pages that cannot be kept: zero them, data and tags, and add to
 * the error which they are. */
static int unland(tm_rchan *c, const tm_pkt *pk, int rc, tm_error *err)
{
	const tm_pkt_region *r = &c->m->sess.region[pk->region];
	tm_region *reg = c->m->region[pk->region];
	size_t ps = r->geom.page_size;
	char msg[TM_ERROR_MSG_MAX];
	unsigned failed = 0;

	for (uint32_t i = 0; i < pk->n_normal; i++)
		if (tm_region_zero_page(reg, tm_pkt_offset(pk, i) / ps, NULL))
			failed++;
	memcpy(msg, err->msg, sizeof(msg));
	return tm_error_set(err, rc,
		"%.300s; the packet's %u normal pages had been received in place "
		"into region '%s' offsets 0x%llx..0x%llx and were zeroed (data and "
		"tags)%s", msg, pk->n_normal, r->name,
		(unsigned long long)tm_pkt_offset(pk, 0),
		(unsigned long long)tm_pkt_offset(pk, pk->n_normal - 1),
		failed ? ", some of them could not be" : "");
}

/* Fault the pieces' pages in with one call per piece before the data
 * arrives: the kernel's copy into a fresh page would otherwise take a page
 * fault (exception, allocation, zeroing) for every page, which is what the
 * receiver spent most of its time on. A hint: where it is unavailable the
 * copy faults as before. Contents are not changed. */
static void populate(const struct iovec *iov, int n)
{
#ifdef MADV_POPULATE_WRITE
	for (int i = 0; i < n; i++)
		madvise(iov[i].iov_base, iov[i].iov_len, MADV_POPULATE_WRITE);
#else
	(void)iov;
	(void)n;
#endif
}

/* Receive the data straight into the pages, then check the whole packet. */
static int land(tm_rchan *c, const uint8_t *hdr, const tm_frame *f,
		tm_pkt *pk, tm_error *err)
{
	int n = page_pieces(c, pk), rc;

	populate(c->iov + 1, n - 1);
	memcpy(c->iov_rx, c->iov + 1, (size_t)(n - 1) * sizeof(*c->iov));
	rc = tm_xport_recvv(c->fd, c->iov_rx, n - 1);
	if (rc)
		return unland(c, pk, tm_error_set(err, rc,
			"channel %u: packet %llu: payload cut short: %s", c->idx,
			(unsigned long long)f->seq, tm_xport_strerror(rc)), err);
	atomic_fetch_add(&c->st.bytes, pk->data_len);
	if (checksummed(c, f)) {
		rc = tm_frame_check_iov(hdr, f, c->iov, n, c->idx, err);
		if (rc)
			return unland(c, pk, rc, err);
	}
	return 0;
}

/* The zero-copy path: fixed fields, then offsets and tags, validated; then
 * the data, in place or into the buffer. */
static int pages_frame(tm_rchan *c, const uint8_t *hdr, const tm_frame *f,
		       tm_error *err)
{
	const tm_pkt_session *s = &c->m->sess;
	size_t have = f->len < TM_PKT_FIXED ? f->len : TM_PKT_FIXED;
	bool landed = false;
	tm_pkt pk;
	int rc = recv_part(c, f, c->payload, have, err);

	if (rc)
		return rc;
	rc = tm_pkt_decode_head(s, c->payload, f->len, c->idx, f->seq, &pk, err);
	if (rc == 0) {
		rc = recv_part(c, f, c->payload + have, pk.meta_len, err);
		if (rc)
			return rc;
		have += pk.meta_len;
		rc = tm_pkt_decode_meta(s, c->payload, c->idx, f->seq, &c->sc, &pk, err);
	}
	if (rc)
		return bad_packet(c, hdr, f, have, rc, err);
	if (in_place_ok(c, &pk)) {
		rc = land(c, hdr, f, &pk, err);
		landed = true;
	} else {
		rc = recv_part(c, f, c->payload + have, f->len - have, err);
		if (rc == 0 && checksummed(c, f))
			rc = tm_frame_check(hdr, f, c->payload, c->idx, err);
		if (rc == 0)
			rc = tm_pkt_decode_data(s, c->payload + have, c->idx, f->seq,
						&c->sc, &pk, err);
	}
	if (rc)
		return rc;
	c->seq++;
	atomic_fetch_add(&c->st.packets, 1);
	return place(c, &pk, landed, err);
}

/* One frame: 1 when it was END, 0 for pages, or -errno. */
static int one_frame(tm_rchan *c, tm_error *err)
{
	uint8_t hdr[TM_FRAME_HDR];
	tm_frame f;
	int rc;

	rc = tm_xport_recv(c->fd, hdr, sizeof(hdr));
	if (rc)
		return tm_error_set(err, rc, "channel %u: after packet %llu: %s",
				    c->idx, (unsigned long long)(c->seq - 1),
				    tm_xport_strerror(rc));
	rc = tm_frame_decode(hdr, c->idx, c->seq, (uint32_t)c->cap, &f, err);
	if (rc)
		return rc;
	atomic_fetch_add(&c->st.bytes, TM_FRAME_HDR);
	if (f.type != TM_F_PAGES && f.type != TM_F_END)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: %s frame on a data channel", c->idx,
			(unsigned long long)f.seq, tm_frame_type_name(f.type));
	if (f.type == TM_F_END || !c->m->cfg.zero_copy)
		return buffered_frame(c, hdr, &f, err);
	return pages_frame(c, hdr, &f, err);
}

void *tm_rchan_main(void *arg)
{
	tm_rchan *c = arg;
	char name[16];
	tm_error err;
	int rc;

	snprintf(name, sizeof(name), "tm-recv-%u", c->idx);
	pthread_setname_np(pthread_self(), name);   /* for perf and top */
	tm_error_clear(&err);
	do
		rc = one_frame(c, &err);
	while (rc == 0 && !tm_mig_stopping(c->m));
	if (rc < 0 && !tm_mig_stopping(c->m))
		tm_mig_fail(c->m, &err);
	tm_mig_wake(c->m);
	return NULL;
}
