/*
 * recvchan.c - a destination data channel: a thread that receives one
 * packet at a time into its buffer, checks the frame and its checksum,
 * validates the whole packet (packet.c) and only then places its pages,
 * each with its tags, through the region interface. A bad packet therefore
 * places nothing; the first bad byte stops the migration.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	if (!c->payload || !c->zero_page) {
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
	tm_pkt_scratch_free(&c->sc);
	c->payload = c->zero_page = NULL;
}

/* A page that is already zero (never tagged, data reads zero) needs no
 * data write: on a fresh destination this spares a page fault and a memset
 * for every zero or tag-only page of the first pass. Reading an untouched
 * anonymous page maps the shared zero page and allocates nothing; the page
 * being untagged also makes reading it through one pointer safe on mte. A
 * backend without a pointer in this process always gets the write. */
static bool already_zero(tm_region *r, uint64_t pg, size_t ps)
{
	const void *p = tm_region_ptr(r, pg * ps);

	return p && !tm_region_page_tagged(r, pg) && tm_mem_is_zero(p, ps);
}

static int place(tm_rchan *c, const tm_pkt *pk, tm_error *err)
{
	const tm_pkt_region *r = &c->m->sess.region[pk->region];
	tm_region *reg = c->m->region[pk->region];
	size_t ps = r->geom.page_size, tb = r->tag_bytes;
	uint32_t ntagged = pk->n_normal + pk->n_tagonly;
	uint32_t n = ntagged + pk->n_zero;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = tm_pkt_offset(pk, i);
		const uint8_t *tags = pk->tags && i < ntagged ? pk->tags + i * tb : NULL;
		int rc;

		if (i < pk->n_normal)
			rc = tm_region_write_page(reg, off / ps, pk->data + i * ps, tags,
						  err);
		else if (i < ntagged && already_zero(reg, off / ps, ps))
			/* Data already zero: only the tags change, and an untouched
			 * page keeps no memory of its own. */
			rc = tm_region_set_tags(reg, off / ps, TM_TAGS_PACKED, tags, err);
		else if (i < ntagged)
			rc = tm_region_write_page(reg, off / ps, c->zero_page, tags, err);
		else if (already_zero(reg, off / ps, ps))
			rc = 0;
		else
			rc = tm_region_zero_page(reg, off / ps, err);
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

/* One frame: 1 when it was END, 0 for pages, or -errno. */
static int one_frame(tm_rchan *c, tm_error *err)
{
	uint8_t hdr[TM_FRAME_HDR];
	bool sum = c->m->sess.features & TM_FEAT_CHECKSUM;
	tm_frame f;
	tm_pkt pk;
	int rc;

	rc = tm_xport_recv(c->fd, hdr, sizeof(hdr));
	if (rc == 0)
		rc = tm_frame_decode(hdr, c->idx, c->seq, (uint32_t)c->cap, &f, err);
	else
		return tm_error_set(err, rc, "channel %u: after packet %llu: %s",
				    c->idx, (unsigned long long)(c->seq - 1),
				    tm_xport_strerror(rc));
	if (rc)
		return rc;
	if (f.type != TM_F_PAGES && f.type != TM_F_END)
		return tm_error_set(err, -EBADMSG,
			"channel %u: packet %llu: %s frame on a data channel", c->idx,
			(unsigned long long)f.seq, tm_frame_type_name(f.type));
	rc = tm_xport_recv(c->fd, c->payload, f.len);
	if (rc)
		return tm_error_set(err, rc,
			"channel %u: packet %llu: payload cut short: %s", c->idx,
			(unsigned long long)f.seq, tm_xport_strerror(rc));
	atomic_fetch_add(&c->st.bytes, TM_FRAME_HDR + f.len);
	if (sum || f.type == TM_F_END) {
		rc = tm_frame_check(hdr, &f, c->payload, c->idx, err);
		if (rc)
			return rc;
	}
	c->seq++;
	if (f.type == TM_F_END)
		return on_end(c, &f, err) ? -EBADMSG : 1;
	rc = tm_pkt_decode(&c->m->sess, c->payload, f.len, c->idx, f.seq, &c->sc,
			   &pk, err);
	if (rc)
		return rc;
	atomic_fetch_add(&c->st.packets, 1);
	return place(c, &pk, err);
}

void *tm_rchan_main(void *arg)
{
	tm_rchan *c = arg;
	tm_error err;
	int rc;

	tm_error_clear(&err);
	do
		rc = one_frame(c, &err);
	while (rc == 0 && !tm_mig_stopping(c->m));
	if (rc < 0 && !tm_mig_stopping(c->m))
		tm_mig_fail(c->m, &err);
	tm_mig_wake(c->m);
	return NULL;
}
