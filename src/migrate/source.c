/*
 * source.c - the sending side: handshake and negotiation, then pre-copy
 * (a first pass over every page, dirty iterations until the rest fits the
 * downtime budget), the paused final pass, the handover and the digest
 * comparison. The source never writes its regions: on any failure the
 * workload is resumed if it had been paused, dirty tracking is stopped, and
 * the memory and tags are exactly what the workload left there.
 *
 * Ordering: chunk k of the region list (ppp pages) always goes through data
 * channel k % n, so a page sent again in a later iteration travels behind
 * its older copy on the same connection and cannot be overtaken by it; no
 * cross-channel synchronisation is needed for correctness.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/util.h"
#include "migrate/internal.h"
#include "migrate/transport.h"

static int build_session(tm_migration *m, tm_error *err)
{
	tm_pkt_session *s = &m->sess;
	const tm_migrate_config *c = &m->cfg;

	memset(s, 0, sizeof(*s));
	s->nregions = m->nregions;
	for (unsigned i = 0; i < m->nregions; i++) {
		strncpy(s->region[i].name, tm_region_name(m->region[i]), TM_NAME_LEN - 1);
		s->region[i].size = tm_region_size(m->region[i]);
		s->region[i].geom = *tm_region_geom(m->region[i]);
	}
	s->features = (c->checksum ? TM_FEAT_CHECKSUM : 0) |
		      (c->compress == TM_COMPRESS_ZSTD ? TM_FEAT_ZSTD : 0) |
		      (c->tags_unpacked ? TM_FEAT_TAGS_UNPACKED : 0) |
		      (c->verify ? TM_FEAT_VERIFY : 0);
	s->ppp = c->pages_per_packet;
	s->level = c->compress_level;
	return tm_pkt_session_init(s, err);
}

static void make_id(tm_migration *m)
{
	if (m->cfg.migration_id[0] || m->cfg.migration_id[1]) {
		m->id[0] = m->cfg.migration_id[0];
		m->id[1] = m->cfg.migration_id[1];
		return;
	}
	if (getrandom(m->id, sizeof(m->id), 0) != sizeof(m->id)) {
		m->id[0] = tm_now_ns();
		m->id[1] = (uint64_t)(uintptr_t)m;
	}
}

static int handshake(tm_migration *m, tm_error *err)
{
	uint8_t h[TM_HELLO_LEN];

	for (unsigned i = 0; i <= m->nchan; i++) {
		tm_hello hello = { { m->id[0], m->id[1] }, (uint16_t)i,
				   (uint16_t)m->nchan };
		int rc;

		tm_hello_encode(h, &hello);
		rc = tm_frame_send(m->fd[i], TM_F_HELLO, (uint16_t)i, 0, h, sizeof(h),
				   err);
		if (rc)
			return rc;
	}
	m->ctrl_out = 1;
	return 0;
}

static int negotiate(tm_migration *m, tm_error *err)
{
	tm_neg *np = malloc(sizeof(*np));   /* 6 KiB: kept off the stack */
	uint8_t *buf;
	tm_frame f;
	int rc;

	if (!np)
		return tm_error_set(err, -ENOMEM, "out of memory");
	memset(np, 0, sizeof(*np));
	np->id[0] = m->id[0];
	np->id[1] = m->id[1];
	np->nchannels = m->nchan;
	np->features = m->sess.features;
	np->level = m->sess.level;
	np->ppp = m->sess.ppp;
	np->nregions = m->sess.nregions;
	for (unsigned i = 0; i < m->nregions; i++) {
		memcpy(np->region[i].name, m->sess.region[i].name, TM_NAME_LEN);
		np->region[i].size = m->sess.region[i].size;
		np->region[i].geom = m->sess.region[i].geom;
	}
	buf = malloc(TM_CTRL_MAX);
	if (!buf) {
		free(np);
		return tm_error_set(err, -ENOMEM, "out of memory");
	}
	tm_neg_encode(buf, np);
	rc = tm_ctrl_send(m, TM_F_NEGOTIATE, buf, (uint32_t)tm_neg_size(np), err);
	if (rc == 0)
		rc = tm_ctrl_wait(m, &f, buf, TM_CTRL_MAX, (int)m->cfg.timeout_ms, err);
	if (rc == 0 && f.type != TM_F_ACCEPT)
		rc = tm_error_set(err, -EPROTO,
			"control channel: %s where ACCEPT was expected",
			tm_frame_type_name(f.type));
	free(buf);
	free(np);
	return rc;
}

static int setup(tm_migration *m, tm_error *err)
{
	int rc;

	if (m->nregions == 0)
		return tm_error_set(err, -EINVAL, "no regions to migrate");
	m->nchan = m->cfg.channels;
	if (m->nfds != m->nchan + 1)
		return tm_error_set(err, -EINVAL,
			"%u descriptors for %u data channels (need control + %u)",
			m->nfds, m->nchan, m->nchan);
	rc = build_session(m, err);
	if (rc)
		return rc;
	make_id(m);
	rc = handshake(m, err);
	if (rc == 0)
		rc = negotiate(m, err);
	return rc;
}

/* Without a pause hook nothing writes the regions (the contract in
 * migrate.h), so there is nothing for the kernel to catch: API tracking,
 * which costs a bitmap and no page-table work, still sees any API write.
 * Write-protecting every page for uffd-wp cost ~5 % of a 1 GiB migration's
 * CPU (change_pte_range) for nothing. */
static enum tm_dirty_method dirty_method(const tm_migration *m)
{
	return m->hooks.pause ? TM_DIRTY_AUTO : TM_DIRTY_API;
}

static int start_tracking(tm_migration *m, tm_error *err)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		size_t words = tm_bitmap_words(tm_region_npages(m->region[i]));
		int rc;

		m->dirty[i] = calloc(words ? words : 1, 8);
		if (!m->dirty[i])
			return tm_error_set(err, -ENOMEM, "no memory for dirty bitmaps");
		rc = tm_region_dirty_start(m->region[i], dirty_method(m), err);
		if (rc)
			return tm_error_wrap(err, rc, "region '%s': starting dirty tracking",
					     tm_region_name(m->region[i]));
		m->dirty_on[i] = true;
	}
	return 0;
}

static void stop_tracking(tm_migration *m)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		if (m->dirty_on[i])
			tm_region_dirty_stop(m->region[i]);
		m->dirty_on[i] = false;
		free(m->dirty[i]);
		m->dirty[i] = NULL;
	}
}

static int start_channels(tm_migration *m, tm_error *err)
{
	m->sch = calloc(m->nchan, sizeof(*m->sch));
	if (!m->sch)
		return tm_error_set(err, -ENOMEM, "no memory for channels");
	for (unsigned i = 0; i < m->nchan; i++) {
		int rc = tm_schan_init(&m->sch[i], m, i + 1, m->fd[i + 1], err);

		if (rc)
			return rc;
		if (pthread_create(&m->sch[i].thr, NULL, tm_schan_main, &m->sch[i]))
			return tm_error_set(err, -EAGAIN, "cannot start channel %u", i + 1);
		m->sch[i].started = true;
	}
	return 0;
}

static void stop_channels(tm_migration *m)
{
	if (!m->sch)
		return;
	for (unsigned i = 0; i < m->nchan; i++) {
		if (m->sch[i].started)
			pthread_join(m->sch[i].thr, NULL);
		if (m->sch[i].data) {
			tm_schan_free(&m->sch[i]);
			pthread_mutex_destroy(&m->sch[i].lock);
			pthread_cond_destroy(&m->sch[i].cv);
		}
	}
	free(m->sch);
	m->sch = NULL;
}

static void sum_stats(tm_migration *m)
{
	tm_migrate_stats *st = &m->st;

	if (!(m->sch))
		return;   /* channels gone: keep the last totals */
	uint64_t remaining = 0;

	st->bytes_wire = atomic_load(&m->ctrl_bytes);
	st->bytes_data = st->pages_normal = st->pages_zero = 0;
	st->pages_tag_only = st->packets = st->bytes_tags = 0;
	for (unsigned i = 0; m->sch && i < m->nchan; i++) {
		tm_schan *c = &m->sch[i];

		st->bytes_wire += atomic_load(&c->st.bytes);
		st->bytes_tags += atomic_load(&c->st.tags);
		st->bytes_data += atomic_load(&c->st.data);
		st->pages_normal += atomic_load(&c->st.normal);
		st->pages_zero += atomic_load(&c->st.zero);
		st->pages_tag_only += atomic_load(&c->st.tag_only);
		st->packets += atomic_load(&c->st.packets);
		pthread_mutex_lock(&c->lock);
		remaining += c->queued - c->done;
		pthread_mutex_unlock(&c->lock);
	}
	st->pages_remaining = remaining;
}

/* A message from the destination while we send can only be bad news. */
static int poll_peer(tm_migration *m, tm_error *err)
{
	uint8_t buf[TM_TEXT_MAX + 1];
	tm_frame f;
	int rc = tm_xport_wait(m->fd[0], -1, 0);

	if (rc <= 0)
		return rc;
	rc = tm_ctrl_recv(m, &f, buf, sizeof(buf), 0, err);
	if (rc == 0)
		rc = tm_error_set(err, -EPROTO,
			"control channel: unexpected %s from the destination",
			tm_frame_type_name(f.type));
	return rc;
}

static void tick(tm_migration *m)
{
	sum_stats(m);
	tm_mig_progress(m, false);
}

static int push(tm_migration *m, unsigned chan, const tm_job *j, tm_error *err)
{
	int rc = tm_schan_push(&m->sch[chan], j);

	if (rc == 0 && tm_now_ns() - m->t_progress > 100000000u) {
		rc = poll_peer(m, err);
		tick(m);
	}
	return rc;
}

/* Whether the pages of the pass about to be queued stay as they are while
 * they are sent: a checksum computed over region memory must still hold
 * when the kernel copies the bytes. Without checksums a torn page is just a
 * dirty page, sent again in the next pass. */
static bool pass_stable(const tm_migration *m)
{
	return m->paused || !m->hooks.pause ||
	       !(m->sess.features & TM_FEAT_CHECKSUM);
}

/* Queue one pass: every page (all) or the collected dirty pages. */
static int enqueue_pass(tm_migration *m, bool all, tm_error *err)
{
	unsigned ppp = m->sess.ppp, words = ppp / 64;
	bool stable = pass_stable(m);
	uint64_t k = 0;

	for (unsigned r = 0; r < m->nregions; r++) {
		uint64_t np = tm_region_npages(m->region[r]);
		uint64_t nw = tm_bitmap_words(np);

		for (uint64_t first = 0; first < np; first += ppp, k++) {
			tm_job j = { .kind = TM_JOB_PAGES, .region = r, .first = first,
				     .stable = stable };
			bool any = false;

			for (unsigned w = 0; w < words && first / 64 + w < nw; w++) {
				uint64_t left = np - first - 64 * w;

				j.mask[w] = all ? (left >= 64 ? ~0ull : (1ull << left) - 1) :
					    m->dirty[r][first / 64 + w];
				any |= j.mask[w] != 0;
			}
			if (!any)
				continue;
			int rc = push(m, (unsigned)(k % m->nchan), &j, err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static bool drained(tm_migration *m)
{
	for (unsigned i = 0; i < m->nchan; i++) {
		tm_schan *c = &m->sch[i];

		pthread_mutex_lock(&c->lock);
		bool d = c->done == c->queued;
		pthread_mutex_unlock(&c->lock);
		if (!d)
			return false;
	}
	return true;
}

/* Wait until every queued page is on the wire. */
static int drain(tm_migration *m, tm_error *err)
{
	while (!drained(m)) {
		if (tm_mig_stopping(m))
			return -ECANCELED;
		int rc = poll_peer(m, err);
		if (rc)
			return rc;
		tick(m);
		nanosleep(&(struct timespec){ 0, 2 * 1000 * 1000 }, NULL);
	}
	return tm_mig_stopping(m) ? -ECANCELED : 0;
}

/* Collect the dirty pages into the bitmaps. keep: add to what is there
 * (the pages found by the last collect were not sent yet). */
static int collect(tm_migration *m, bool keep, uint64_t *count, tm_error *err)
{
	*count = 0;
	for (unsigned i = 0; i < m->nregions; i++) {
		size_t np = tm_region_npages(m->region[i]);
		int rc;

		if (!keep)
			memset(m->dirty[i], 0, tm_bitmap_words(np) * 8);
		rc = tm_region_dirty_collect(m->region[i], m->dirty[i], err);
		if (rc)
			return tm_error_wrap(err, rc, "region '%s': collecting dirty pages",
					     tm_region_name(m->region[i]));
		*count += tm_bitmap_count(m->dirty[i], np);
	}
	return 0;
}

/* Per-iteration measurements that drive convergence. */
struct iter {
	uint64_t t_start, t_end, bytes, data;
};

static int send_pass(tm_migration *m, bool all, struct iter *it, tm_error *err)
{
	int rc;

	sum_stats(m);
	it->t_start = tm_now_ns();
	it->bytes = m->st.bytes_wire;
	it->data = m->st.bytes_data;
	m->st.iterations++;
	rc = enqueue_pass(m, all, err);
	if (rc == 0)
		rc = drain(m, err);
	sum_stats(m);
	it->t_end = tm_now_ns();
	it->bytes = m->st.bytes_wire - it->bytes;
	it->data = m->st.bytes_data - it->data;
	return rc;
}

static size_t page_wire_bytes(tm_migration *m)
{
	size_t most = 0;

	for (unsigned i = 0; i < m->nregions; i++) {
		size_t b = m->sess.region[i].geom.page_size + m->sess.region[i].tag_bytes;

		most = b > most ? b : most;
	}
	return most;
}

/* Estimated ms to send `dirty` pages, from the last iteration's rate. */
static double estimate_ms(tm_migration *m, const struct iter *it, uint64_t dirty)
{
	double secs = (double)(it->t_end - it->t_start) / 1e9;
	double ratio = 1.0;

	if (dirty == 0)
		return 0;
	/* A tiny pass says little about the link: keep the last estimate. */
	if (secs > 0 && (it->bytes > (1u << 20) || m->st.bandwidth_bps <= 0))
		m->st.bandwidth_bps = (double)it->bytes / secs;
	if (m->sess.features & TM_FEAT_ZSTD && it->data)
		ratio = (double)it->bytes / (double)it->data;
	if (ratio < 0.2)
		ratio = 0.2;
	if (m->st.bandwidth_bps <= 0)
		return 1e9;
	return (double)dirty * (double)page_wire_bytes(m) * ratio /
	       m->st.bandwidth_bps * 1000.0;
}

/* Auto-converge: QEMU's rule of thumb, throttle when more than half of what
 * was sent got dirty again during the same time. */
static void converge(tm_migration *m, const struct iter *it, uint64_t dirty)
{
	double dirtied = (double)dirty * (double)page_wire_bytes(m);

	if (!m->cfg.auto_converge || !m->hooks.throttle || m->st.iterations < 2)
		return;
	if (dirtied <= 0.5 * (double)it->bytes)
		return;
	m->st.throttle_pct = m->st.throttle_pct ? m->st.throttle_pct + 10 : 20;
	if (m->st.throttle_pct > 99)
		m->st.throttle_pct = 99;
	m->hooks.throttle(m->hooks.ctx, m->st.throttle_pct);
}

static int precopy(tm_migration *m, tm_error *err)
{
	struct iter it;
	uint64_t dirty, t_collect = tm_now_ns();
	int rc;

	m->st.phase = TM_PHASE_FIRST_PASS;
	rc = send_pass(m, true, &it, err);
	for (m->st.phase = TM_PHASE_ITERATE; rc == 0;) {
		uint64_t now = tm_now_ns();
		double est;

		rc = collect(m, false, &dirty, err);
		if (rc)
			break;
		m->st.dirty_pages = dirty;
		m->st.dirty_rate_bps = (double)dirty * (double)page_wire_bytes(m) /
				       ((double)(now - t_collect) / 1e9);
		t_collect = now;
		est = estimate_ms(m, &it, dirty);
		tm_mig_progress(m, true);
		if (est <= (double)m->cfg.downtime_ms)
			return 0;
		if (m->st.iterations >= m->cfg.max_iterations) {
			if (m->cfg.on_max_iterations == TM_MAXITER_FORCE)
				return 0;
			return tm_error_set(err, -ETIMEDOUT,
				"did not converge after %u iterations: %llu dirty pages "
				"would take %.0f ms at %.1f MB/s, the downtime budget is %u ms "
				"(try --auto-converge or --on-max-iterations force)",
				m->st.iterations, (unsigned long long)dirty, est,
				m->st.bandwidth_bps / 1e6, m->cfg.downtime_ms);
		}
		converge(m, &it, dirty);
		rc = send_pass(m, false, &it, err);
	}
	return rc;
}

static int end_channels(tm_migration *m, tm_error *err)
{
	tm_job end = { .kind = TM_JOB_END };

	for (unsigned i = 0; i < m->nchan; i++) {
		int rc = tm_schan_push(&m->sch[i], &end);

		if (rc)
			return rc;
	}
	return drain(m, err);
}

static int send_complete(tm_migration *m, tm_error *err)
{
	uint8_t p[24] = { 0 };

	sum_stats(m);
	tm_put32(p, m->st.iterations);
	tm_put64(p + 8, m->st.packets);
	tm_put64(p + 16, m->st.pages_normal + m->st.pages_zero + m->st.pages_tag_only);
	return tm_ctrl_send(m, TM_F_COMPLETE, p, sizeof(p), err);
}

static int expect(tm_migration *m, uint16_t type, uint8_t *buf, uint32_t len,
		  tm_error *err)
{
	tm_frame f;
	int rc = tm_ctrl_wait(m, &f, buf, TM_TEXT_MAX + 1, (int)m->cfg.timeout_ms,
			      err);

	if (rc == 0 && (f.type != type || f.len != len))
		rc = tm_error_set(err, -EPROTO,
			"control channel: %s of %u bytes where %s was expected",
			tm_frame_type_name(f.type), f.len, tm_frame_type_name(type));
	return rc;
}

static void hex(const uint8_t *d, char *out)
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static int verify(tm_migration *m, tm_error *err)
{
	uint8_t p[24] = { 0 }, buf[TM_TEXT_MAX + 1];
	uint64_t t = tm_now_ns();
	int rc;

	m->st.phase = TM_PHASE_VERIFY;
	if (m->cfg.verify) {
		rc = tm_migrate_digest(m->region, m->nregions, m->nchan, m->st.digest, err);
		if (rc)
			return rc;
		tm_put32(p, 1);
		memcpy(p + 8, m->st.digest, 16);
	}
	rc = tm_ctrl_send(m, TM_F_VERIFY, p, sizeof(p), err);
	if (rc == 0)
		rc = expect(m, TM_F_RESULT, buf, 24, err);
	if (rc)
		return rc;
	m->st.verify_ms = (tm_now_ns() - t) / 1000000u;
	if (tm_get32(buf) == 1) {
		char a[33], b[33];

		hex(m->st.digest, a);
		hex(buf + 8, b);
		return tm_error_set(err, -EIO,
			"verification failed: data+tags differ after migration "
			"(source digest %s, destination digest %s)", a, b);
	}
	m->st.verified = m->cfg.verify && tm_get32(buf) == 0 &&
			 memcmp(buf + 8, m->st.digest, 16) == 0;
	return 0;
}

static int handover(tm_migration *m, uint64_t t_xfer, tm_error *err)
{
	uint8_t buf[TM_TEXT_MAX + 1];
	uint64_t t_pause;
	struct iter it;
	uint64_t dirty;
	int rc;

	if (m->hooks.pause) {
		rc = m->hooks.pause(m->hooks.ctx);
		if (rc)
			return tm_error_set(err, rc, "the pause callback failed (%s)",
					    strerror(-rc));
	}
	m->paused = true;
	t_pause = tm_now_ns();
	m->st.phase = TM_PHASE_PAUSED;
	rc = collect(m, true, &dirty, err);
	if (rc == 0)
		rc = send_pass(m, false, &it, err);
	if (rc == 0)
		rc = end_channels(m, err);
	if (rc == 0)
		rc = send_complete(m, err);
	if (rc == 0)
		rc = expect(m, TM_F_PLACED, buf, 16, err);
	if (rc)
		return rc;
	m->st.downtime_ms = (tm_now_ns() - t_pause) / 1000000u;
	m->st.throughput_gbps = (double)m->st.bytes_data /
				(double)(tm_now_ns() - t_xfer);
	return verify(m, err);
}

/* A data channel broke: if the destination said why on the control
 * channel, that reason is the one worth reporting. */
static void peer_reason(tm_migration *m, tm_error *err)
{
	uint8_t buf[TM_TEXT_MAX + 1];
	tm_error peer;
	tm_frame f;
	char mine[TM_ERROR_MSG_MAX];

	if (atomic_load(&m->cancelled) || m->nfds == 0)
		return;
	tm_error_clear(&peer);
	if (tm_frame_recv(m->fd[0], 0, m->ctrl_in, buf, sizeof(buf), &f, -1, 200,
			  &peer) != 0 || f.type != TM_F_ERROR)
		return;
	buf[f.len < TM_TEXT_MAX ? f.len : TM_TEXT_MAX] = 0;
	memcpy(mine, err->msg, sizeof(mine));
	tm_error_set(err, err->code, "destination reports: %.300s (here: %.180s)",
		     (char *)buf, mine);
}

/* Failure: tell the destination, unblock and join the channels, give the
 * workload back. Returns the error to report. */
static int abort_run(tm_migration *m, int rc, tm_error *err)
{
	tm_error mine = *err;
	tm_error sendee;

	if (!(rc == -ECANCELED && (atomic_load(&m->cancelled) ||
				   atomic_load(&m->failed))))
		tm_mig_fail(m, &mine);
	rc = tm_mig_error(m, err);
	if (rc == -EPIPE || rc == -ECONNRESET || rc == -ENODATA)
		peer_reason(m, err);
	tm_error_clear(&sendee);
	tm_ctrl_send(m, TM_F_ERROR, err->msg, (uint32_t)strlen(err->msg), &sendee);
	tm_mig_shutdown(m);
	stop_channels(m);
	if (m->paused && m->hooks.resume)
		m->hooks.resume(m->hooks.ctx);
	m->paused = false;
	stop_tracking(m);
	sum_stats(m);
	return rc;
}

int tm_source_run(tm_migration *m, tm_error *err)
{
	tm_error local;
	uint64_t t_xfer;
	int rc;

	if (!err)
		err = &local;
	tm_error_clear(err);
	rc = setup(m, err);
	m->st.setup_ms = (tm_now_ns() - m->t0) / 1000000u;
	t_xfer = tm_now_ns();
	if (rc == 0)
		rc = start_tracking(m, err);
	if (rc == 0)
		rc = start_channels(m, err);
	if (rc == 0)
		rc = precopy(m, err);
	if (rc == 0)
		rc = handover(m, t_xfer, err);
	if (rc)
		return abort_run(m, rc, err);
	stop_channels(m);
	stop_tracking(m);
	sum_stats(m);
	return 0;
}
