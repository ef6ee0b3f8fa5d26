/*
 * dest.c - the receiving side: accept the channels (or take the caller's),
 * check the handshake on each, check the negotiation against our own
 * regions and capabilities before a single page moves, run one thread per
 * data channel, then confirm the handover and compare digests. On failure
 * the partial state is discarded (regions left all-zero) and the error says
 * so; the source is told why on the control channel.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "migrate/internal.h"
#include "migrate/transport.h"

/* Read the HELLO on a fresh connection; the frame says its own channel. */
static int read_hello(tm_migration *m, int fd, int timeout_ms, tm_hello *h,
		      tm_error *err)
{
	uint8_t hdr[TM_FRAME_HDR], body[TM_HELLO_LEN];
	tm_frame f;
	int rc = tm_xport_wait(fd, m->wake[0], timeout_ms);

	if (rc == 0)
		return tm_error_set(err, -ETIMEDOUT, "no handshake within %d ms",
				    timeout_ms);
	if (rc == 2)
		return -ECANCELED;
	if (rc > 0)
		rc = tm_xport_recv(fd, hdr, sizeof(hdr));
	if (rc)
		return tm_error_set(err, rc, "handshake: %s", tm_xport_strerror(rc));
	rc = tm_frame_decode(hdr, tm_get16(hdr + 6), 0, TM_HELLO_LEN, &f, err);
	if (rc == 0 && f.type != TM_F_HELLO)
		rc = tm_error_set(err, -EPROTO, "channel %u: %s before the handshake",
				  f.channel, tm_frame_type_name(f.type));
	if (rc == 0)
		rc = tm_xport_recv(fd, body, f.len);
	if (rc == 0)
		rc = tm_frame_check(hdr, &f, body, f.channel, err);
	if (rc == 0)
		rc = tm_hello_decode(body, f.len, h, err);
	if (rc == 0 && h->channel != f.channel)
		rc = tm_error_set(err, -EBADMSG, "handshake for channel %u in a "
				  "frame for channel %u", h->channel, f.channel);
	return rc;
}

struct slots {
	int fd[TM_MIGRATE_MAX_CHANNELS + 1];
	tm_hello hello[TM_MIGRATE_MAX_CHANNELS + 1];
	bool have[TM_MIGRATE_MAX_CHANNELS + 1];
};

static bool id_ok(tm_migration *m, const tm_hello *h)
{
	return (!m->cfg.migration_id[0] && !m->cfg.migration_id[1]) ||
	       (h->id[0] == m->cfg.migration_id[0] && h->id[1] == m->cfg.migration_id[1]);
}

/* Take a handshaken connection; false when it does not belong here. */
static int slot_in(tm_migration *m, struct slots *s, int fd, const tm_hello *h,
		   tm_error *err)
{
	if (!id_ok(m, h))
		return tm_error_set(err, -EPROTO,
			"channel %u: migration id %016llx%016llx is not the expected one",
			h->channel, (unsigned long long)h->id[0],
			(unsigned long long)h->id[1]);
	if (s->have[0] && (h->id[0] != s->hello[0].id[0] ||
			   h->id[1] != s->hello[0].id[1] ||
			   h->nchannels != s->hello[0].nchannels))
		return tm_error_set(err, -EPROTO,
			"channel %u belongs to another migration (id or channel count "
			"differs from the control channel's)", h->channel);
	if (s->have[h->channel])
		return tm_error_set(err, -EPROTO, "channel %u connected twice",
				    h->channel);
	s->fd[h->channel] = fd;
	s->hello[h->channel] = *h;
	s->have[h->channel] = true;
	return 0;
}

static bool all_in(const struct slots *s)
{
	if (!s->have[0])
		return false;
	for (unsigned i = 1; i <= s->hello[0].nchannels; i++)
		if (!s->have[i])
			return false;
	return true;
}

static int accept_one(tm_migration *m, struct slots *s, uint64_t deadline,
		      tm_error *err)
{
	int left = (int)((deadline - tm_now_ns()) / 1000000u);
	tm_hello h;
	int fd, rc;

	if (tm_now_ns() >= deadline)
		return tm_error_set(err, -ETIMEDOUT,
			"waited %u ms for the source's channels", m->cfg.timeout_ms);
	rc = tm_xport_accept(m->lfd, m->wake[0], left, &fd);
	if (rc == -ETIMEDOUT)
		return tm_error_set(err, rc, "waited %u ms for the source's channels",
				    m->cfg.timeout_ms);
	if (rc)
		return rc == -ECANCELED ? rc : tm_error_set(err, rc, "accept: %s",
							    strerror(-rc));
	rc = read_hello(m, fd, left, &h, err);
	if (rc == 0)
		rc = slot_in(m, s, fd, &h, err);
	if (rc == -ECANCELED) {
		close(fd);
		return rc;
	}
	if (rc) {
		/* A stray or broken connection does not end the wait (the
		 * library prints nothing; the deadline still applies). */
		tm_error_clear(err);
		close(fd);
	}
	return 0;
}

static int gather_channels(tm_migration *m, struct slots *s, tm_error *err)
{
	uint64_t deadline = tm_now_ns() + (uint64_t)m->cfg.timeout_ms * 1000000u;

	memset(s, 0, sizeof(*s));
	if (m->lfd < 0) {
		for (unsigned i = 0; i < m->nfds; i++) {
			tm_hello h;
			int rc = read_hello(m, m->fd[i], (int)m->cfg.timeout_ms, &h, err);

			if (rc == 0)
				rc = slot_in(m, s, m->fd[i], &h, err);
			if (rc)
				return rc;
		}
		if (!all_in(s))
			return tm_error_set(err, -EPROTO,
				"%u descriptors do not make a control channel and its "
				"data channels", m->nfds);
		return 0;
	}
	while (!all_in(s)) {
		int rc = accept_one(m, s, deadline, err);

		if (rc) {
			for (unsigned i = 0; i <= TM_MIGRATE_MAX_CHANNELS; i++)
				if (s->have[i])
					close(s->fd[i]);
			return rc;
		}
	}
	return 0;
}

static int take_channels(tm_migration *m, tm_error *err)
{
	struct slots s;
	int rc = gather_channels(m, &s, err);

	if (rc)
		return rc;
	m->nchan = s.hello[0].nchannels;
	m->id[0] = s.hello[0].id[0];
	m->id[1] = s.hello[0].id[1];
	for (unsigned i = 0; i <= m->nchan; i++) {
		m->fd[i] = s.fd[i];
		m->own_fd[i] = m->lfd >= 0;
	}
	m->nfds = m->nchan + 1;
	m->ctrl_in = 1;
	return 0;
}

/* ---- negotiation ------------------------------------------------- */

static int check_region(const tm_neg_region *src, tm_region *dst,
			tm_error *err)
{
	const tm_geom *g = tm_region_geom(dst), *sg = &src->geom;
	char a[64], b[64];

	if (src->size != tm_region_size(dst))
		return tm_error_set(err, -EPROTO,
			"source region '%s' is %llu bytes, destination region '%s' is %zu bytes",
			src->name, (unsigned long long)src->size, tm_region_name(dst),
			tm_region_size(dst));
	if (sg->page_size != g->page_size)
		return tm_error_set(err, -EPROTO,
			"source region '%s' has %u-byte pages, destination region '%s' "
			"has %u-byte pages", src->name, sg->page_size,
			tm_region_name(dst), g->page_size);
	if (sg->kind != g->kind || (g->kind != TM_META_NONE &&
				    (sg->granule != g->granule || sg->bits != g->bits)))
		return tm_error_set(err, -EPROTO,
			"source region '%s' has %s, destination region '%s' has %s",
			src->name, tm_neg_meta_desc(sg, a, sizeof(a)),
			tm_region_name(dst), tm_neg_meta_desc(g, b, sizeof(b)));
	if (g->kind != TM_META_NONE && sg->version != g->version)
		return tm_error_set(err, -EPROTO,
			"source region '%s' has %s version %u, destination region '%s' "
			"version %u", src->name, tm_neg_meta_desc(sg, a, sizeof(a)),
			sg->version, tm_region_name(dst), g->version);
	return 0;
}

static int match_regions(tm_migration *m, const tm_neg *n, tm_error *err)
{
	tm_region *ordered[TM_MIGRATE_MAX_REGIONS];

	for (uint32_t i = 0; i < n->nregions; i++) {
		unsigned j = 0;

		while (j < m->nregions && strcmp(tm_region_name(m->region[j]),
						 n->region[i].name) != 0)
			j++;
		if (j == m->nregions)
			return tm_error_set(err, -EPROTO,
				"source region '%s' (%llu bytes) has no destination region "
				"of that name", n->region[i].name,
				(unsigned long long)n->region[i].size);
		int rc = check_region(&n->region[i], m->region[j], err);
		if (rc)
			return rc;
		ordered[i] = m->region[j];
	}
	if (n->nregions != m->nregions)
		return tm_error_set(err, -EPROTO,
			"the source sends %u regions, the destination has %u",
			n->nregions, m->nregions);
	memcpy(m->region, ordered, n->nregions * sizeof(ordered[0]));
	return 0;
}

static int check_neg(tm_migration *m, const tm_neg *n, tm_error *err)
{
	if (n->id[0] != m->id[0] || n->id[1] != m->id[1])
		return tm_error_set(err, -EPROTO,
			"negotiation carries another migration id than the handshake");
	if (n->nchannels != m->nchan)
		return tm_error_set(err, -EPROTO,
			"negotiation says %u data channels, the handshake %u",
			n->nchannels, m->nchan);
	if (n->features & ~(uint32_t)TM_FEAT_ALL)
		return tm_error_set(err, -EPROTO,
			"source asks for unknown feature bits 0x%x (this destination "
			"knows 0x%x)", n->features & ~(uint32_t)TM_FEAT_ALL, TM_FEAT_ALL);
	if ((n->features & TM_FEAT_ZSTD) && (n->level < 1 || n->level > 19))
		return tm_error_set(err, -EPROTO,
			"source asks for zstd level %d (1..19)", n->level);
	return match_regions(m, n, err);
}

static int build_session(tm_migration *m, const tm_neg *n, tm_error *err)
{
	tm_pkt_session *s = &m->sess;

	memset(s, 0, sizeof(*s));
	s->nregions = n->nregions;
	for (uint32_t i = 0; i < n->nregions; i++) {
		memcpy(s->region[i].name, n->region[i].name, TM_NAME_LEN);
		s->region[i].size = n->region[i].size;
		s->region[i].geom = *tm_region_geom(m->region[i]);
	}
	s->features = n->features;
	s->ppp = n->ppp;
	s->level = n->level;
	return tm_pkt_session_init(s, err);
}

static int negotiate(tm_migration *m, tm_error *err)
{
	uint8_t *buf = malloc(TM_CTRL_MAX);
	tm_neg *n = malloc(sizeof(*n));
	tm_frame f;
	int rc;

	if (!buf || !n) {
		free(buf);
		free(n);
		return tm_error_set(err, -ENOMEM, "out of memory");
	}
	rc = tm_ctrl_wait(m, &f, buf, TM_CTRL_MAX, (int)m->cfg.timeout_ms, err);
	if (rc == 0 && f.type != TM_F_NEGOTIATE)
		rc = tm_error_set(err, -EPROTO, "control channel: %s before NEGOTIATE",
				  tm_frame_type_name(f.type));
	if (rc == 0)
		rc = tm_neg_decode(buf, f.len, n, err);
	if (rc == 0)
		rc = check_neg(m, n, err);
	if (rc == 0)
		rc = build_session(m, n, err);
	if (rc && rc != -ECANCELED) {
		tm_error ignore;

		tm_error_clear(&ignore);
		tm_ctrl_send(m, TM_F_REJECT, err->msg, (uint32_t)strlen(err->msg), &ignore);
		rc = tm_error_wrap(err, rc, "refused the migration");
	}
	if (rc == 0)
		rc = tm_ctrl_send(m, TM_F_ACCEPT, NULL, 0, err);
	free(buf);
	free(n);
	return rc;
}

/* ---- pages ------------------------------------------------------- */

static int start_channels(tm_migration *m, tm_error *err)
{
	tm_untouched_init(&m->untouched, m->region, m->nregions);
	m->rch = calloc(m->nchan, sizeof(*m->rch));
	if (!m->rch)
		return tm_error_set(err, -ENOMEM, "no memory for channels");
	for (unsigned i = 0; i < m->nchan; i++) {
		int rc = tm_rchan_init(&m->rch[i], m, i + 1, m->fd[i + 1], err);

		if (rc)
			return rc;
		if (pthread_create(&m->rch[i].thr, NULL, tm_rchan_main, &m->rch[i]))
			return tm_error_set(err, -EAGAIN, "cannot start channel %u", i + 1);
		m->rch[i].started = true;
	}
	return 0;
}

static uint64_t placed(tm_migration *m)
{
	uint64_t n = 0;

	for (unsigned i = 0; m->rch && i < m->nchan; i++)
		n += m->rch[i].pages;
	return n;
}

static void stop_channels(tm_migration *m)
{
	if (!m->rch)
		return;
	for (unsigned i = 0; i < m->nchan; i++)
		if (m->rch[i].started) {
			pthread_join(m->rch[i].thr, NULL);
			m->rch[i].started = false;
		}
}

static void free_channels(tm_migration *m)
{
	if (!m->rch)
		return;
	stop_channels(m);
	for (unsigned i = 0; i < m->nchan; i++)
		tm_rchan_free(&m->rch[i]);
	free(m->rch);
	m->rch = NULL;
	tm_untouched_fini(&m->untouched);
}

static void sum_stats(tm_migration *m)
{
	tm_migrate_stats *st = &m->st;

	if (!(m->rch))
		return;   /* channels gone: keep the last totals */

	st->bytes_wire = atomic_load(&m->ctrl_bytes);
	st->pages_normal = st->pages_zero = st->pages_tag_only = st->packets = 0;
	st->bytes_data = 0;
	for (unsigned i = 0; m->rch && i < m->nchan; i++) {
		tm_rchan *c = &m->rch[i];

		st->bytes_wire += atomic_load(&c->st.bytes);
		st->bytes_data += atomic_load(&c->st.data);
		st->pages_normal += atomic_load(&c->st.normal);
		st->pages_zero += atomic_load(&c->st.zero);
		st->pages_tag_only += atomic_load(&c->st.tag_only);
		st->packets += atomic_load(&c->st.packets);
	}
}

static bool all_ended(tm_migration *m)
{
	for (unsigned i = 0; i < m->nchan; i++)
		if (!atomic_load(&m->rch[i].ended))
			return false;
	return true;
}

/* COMPLETE arrived: wait for every channel's END, then check the totals. */
static int finish_channels(tm_migration *m, const uint8_t *p, tm_error *err)
{
	uint64_t packets = tm_get64(p + 8), pages = tm_get64(p + 16);

	while (!all_ended(m)) {
		if (tm_mig_stopping(m))
			return -ECANCELED;
		tm_xport_wait(m->wake[0], -1, 100);
		tm_mig_drain_wake(m);
	}
	stop_channels(m);
	sum_stats(m);
	m->st.iterations = tm_get32(p);
	if (packets != m->st.packets || pages != placed(m))
		return tm_error_set(err, -EBADMSG,
			"source completed with %llu packets / %llu pages, %llu / %llu "
			"were placed", (unsigned long long)packets,
			(unsigned long long)pages, (unsigned long long)m->st.packets,
			(unsigned long long)placed(m));
	return 0;
}

static int receive(tm_migration *m, tm_error *err)
{
	uint8_t buf[TM_TEXT_MAX + 1];
	tm_frame f;
	int rc;

	m->st.phase = TM_PHASE_ITERATE;
	for (;;) {
		rc = tm_ctrl_wait(m, &f, buf, sizeof(buf), 100, err);
		if (rc != -ETIMEDOUT)
			break;
		tm_error_clear(err);
		sum_stats(m);
		tm_mig_progress(m, false);
	}
	if (rc == 0 && (f.type != TM_F_COMPLETE || f.len != 24))
		rc = tm_error_set(err, -EPROTO,
			"control channel: %s of %u bytes where COMPLETE was expected",
			tm_frame_type_name(f.type), f.len);
	if (rc == 0)
		rc = finish_channels(m, buf, err);
	if (rc == 0) {
		uint8_t p[16] = { 0 };
		uint64_t ns = tm_now_ns() - m->t0 - m->st.setup_ms * 1000000u;

		tm_put64(p, placed(m));
		rc = tm_ctrl_send(m, TM_F_PLACED, p, sizeof(p), err);
		m->st.throughput_gbps = ns ? (double)m->st.bytes_data / (double)ns : 0;
	}
	return rc;
}

static int verify(tm_migration *m, tm_error *err)
{
	uint8_t buf[TM_TEXT_MAX + 1], p[24] = { 0 };
	bool want = m->sess.features & TM_FEAT_VERIFY;
	uint64_t t = tm_now_ns();
	tm_frame f;
	int rc = 0;

	m->st.phase = TM_PHASE_VERIFY;
	if (want)
		rc = tm_migrate_digest(m->region, m->nregions, m->nchan, m->st.digest, err);
	if (rc == 0)
		rc = tm_ctrl_wait(m, &f, buf, sizeof(buf), -1, err);
	if (rc == 0 && (f.type != TM_F_VERIFY || f.len != 24))
		rc = tm_error_set(err, -EPROTO,
			"control channel: %s where VERIFY was expected",
			tm_frame_type_name(f.type));
	if (rc)
		return rc;
	bool has = tm_get32(buf) & 1;
	bool same = has && memcmp(buf + 8, m->st.digest, 16) == 0;
	tm_put32(p, !want || !has ? 2 : same ? 0 : 1);
	memcpy(p + 8, m->st.digest, 16);
	rc = tm_ctrl_send(m, TM_F_RESULT, p, sizeof(p), err);
	m->st.verify_ms = (tm_now_ns() - t) / 1000000u;
	if (rc == 0 && want && has && !same)
		rc = tm_error_set(err, -EIO,
			"verification failed: the digest of data+tags placed here "
			"differs from the source's");
	m->st.verified = want && has && same;
	return rc;
}

/* Zero every region so no half-migrated memory is mistaken for state. */
static void discard(tm_migration *m)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		tm_region *r = m->region[i];
		size_t np = tm_region_npages(r);

		if (tm_region_discard(r, 0, np, NULL) == 0)
			continue;
		for (size_t pg = 0; pg < np; pg++)
			tm_region_zero_page(r, pg, NULL);
	}
}

static int abort_run(tm_migration *m, int rc, tm_error *err)
{
	tm_error mine = *err, ignore;
	uint64_t n;

	if (!(rc == -ECANCELED && (atomic_load(&m->cancelled) ||
				   atomic_load(&m->failed))))
		tm_mig_fail(m, &mine);
	rc = tm_mig_error(m, err);
	tm_error_clear(&ignore);
	if (m->nfds)
		tm_ctrl_send(m, TM_F_ERROR, err->msg, (uint32_t)strlen(err->msg),
			     &ignore);
	tm_mig_shutdown(m);
	stop_channels(m);
	sum_stats(m);
	n = placed(m);
	free_channels(m);
	if (n) {
		char msg[TM_ERROR_MSG_MAX];

		discard(m);
		memcpy(msg, err->msg, sizeof(msg));
		tm_error_set(err, rc, "%.400s; the destination discarded its partial "
			     "state (%llu pages had been placed)", msg,
			     (unsigned long long)n);
	}
	return rc;
}

int tm_dest_run(tm_migration *m, tm_error *err)
{
	tm_error local;
	int rc;

	if (!err)
		err = &local;
	tm_error_clear(err);
	if (m->nregions == 0)
		return tm_error_set(err, -EINVAL, "no regions to receive into");
	if (m->lfd < 0 && m->nfds == 0)
		return tm_error_set(err, -EINVAL, "no listener and no descriptors");
	rc = take_channels(m, err);
	if (rc == 0)
		rc = negotiate(m, err);
	m->st.setup_ms = (tm_now_ns() - m->t0) / 1000000u;
	if (rc == 0)
		rc = start_channels(m, err);
	if (rc == 0)
		rc = receive(m, err);
	if (rc == 0)
		rc = verify(m, err);
	if (rc)
		return abort_run(m, rc, err);
	free_channels(m);
	if (m->hooks.resume)
		m->hooks.resume(m->hooks.ctx);
	return 0;
}
