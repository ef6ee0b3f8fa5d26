/*
 * sendchan.c - a source data channel: a thread that takes chunks of dirty
 * pages from its queue, reads each page with its tags, sorts it into a class
 * (normal / tag-only / zero — zero detection runs here, in the channel
 * thread, as in QEMU multifd), encodes one packet and sends it. Every buffer
 * is allocated in tm_schan_init, once per channel.
 *
 * Two ways to gather a packet's data. Zero-copy: a normal page of a region
 * with plain pointers (tm_mig_direct) stays where it is and becomes an
 * iovec of the sendmsg, consecutive pages one iovec, so the only copy of
 * its bytes is the kernel's; only its tags are copied out. That needs
 * pages that cannot change between the checksum (computed over region
 * memory) and the send, which the run thread says per job (tm_job.stable).
 * Otherwise each page is copied with its tags into the channel's buffer
 * (tm_region_read_page: one consistent read through the region interface)
 * and the packet goes out from there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "migrate/internal.h"
#include "migrate/transport.h"

int tm_schan_init(tm_schan *c, tm_migration *m, unsigned idx, int fd,
		  tm_error *err)
{
	const tm_pkt_session *s = &m->sess;
	size_t ps = 0, tb = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	c->m = m;
	c->idx = idx;
	c->fd = fd;
	c->seq = 1;     /* 0 was the handshake */
	for (uint32_t i = 0; i < s->nregions; i++) {
		if (s->region[i].geom.page_size > ps)
			ps = s->region[i].geom.page_size;
		if (s->region[i].tag_bytes > tb)
			tb = s->region[i].tag_bytes;
	}
	c->data = malloc(s->ppp * ps);
	c->tags = malloc(s->ppp * tb + 1);
	c->tags_to = malloc(s->ppp * tb + 1);
	c->off = malloc(s->ppp * 8);
	c->off_to = malloc(s->ppp * 8);
	c->off_zero = malloc(s->ppp * 8);
	c->iov = malloc((s->ppp + 2) * sizeof(*c->iov));
	c->piece = malloc(s->ppp * sizeof(*c->piece));
	for (uint32_t i = 0; i < s->nregions; i++)
		c->direct[i] = tm_mig_direct(m->region[i]);
	if (!c->data || !c->tags || !c->tags_to || !c->off || !c->off_to ||
	    !c->off_zero || !c->iov || !c->piece) {
		tm_schan_free(c);
		return tm_error_set(err, -ENOMEM, "channel %u: no memory for buffers",
				    idx);
	}
	rc = tm_pkt_encoder_init(&c->enc, s, err);
	if (rc) {
		tm_schan_free(c);
		return rc;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cv, NULL);
	return 0;
}

void tm_schan_free(tm_schan *c)
{
	free(c->data);
	free(c->tags);
	free(c->tags_to);
	free(c->off);
	free(c->off_to);
	free(c->off_zero);
	free(c->iov);
	free(c->piece);
	tm_pkt_encoder_free(&c->enc);
	c->data = c->tags = c->tags_to = NULL;
	c->off = c->off_to = c->off_zero = NULL;
	c->iov = c->piece = NULL;
}

static unsigned job_pages(const tm_job *j)
{
	unsigned n = 0;

	for (unsigned w = 0; w < TM_MASK_WORDS; w++)
		n += (unsigned)__builtin_popcountll(j->mask[w]);
	return n;
}

/* Wait on the channel's condition for at most 50 ms (lock held): a stop
 * is noticed even without a broadcast. */
static void wait_a_while(tm_schan *c)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 50 * 1000 * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&c->cv, &c->lock, &ts);
}

int tm_schan_push(tm_schan *c, const tm_job *j)
{
	pthread_mutex_lock(&c->lock);
	while (c->count == TM_QUEUE_CAP && !tm_mig_stopping(c->m))
		wait_a_while(c);
	if (tm_mig_stopping(c->m)) {
		pthread_mutex_unlock(&c->lock);
		return -ECANCELED;
	}
	c->ring[(c->head + c->count) % TM_QUEUE_CAP] = *j;
	c->count++;
	c->queued += job_pages(j);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Take the next job; false when the migration is stopping. */
static bool pop(tm_schan *c, tm_job *j)
{
	pthread_mutex_lock(&c->lock);
	while (c->count == 0 && !tm_mig_stopping(c->m))
		wait_a_while(c);
	bool ok = c->count > 0 && !tm_mig_stopping(c->m);
	if (ok)
		*j = c->ring[c->head];
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* Retire the job at the head once it is on the wire. */
static void retire(tm_schan *c, unsigned pages)
{
	pthread_mutex_lock(&c->lock);
	c->head = (c->head + 1) % TM_QUEUE_CAP;
	c->count--;
	c->done += pages;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
}

/* Sort page pg into its class. data: its bytes (in the channel buffer or
 * in region memory); its tags are already in the slot of the next normal
 * page. A normal page becomes a data piece, merged with the previous one
 * when it follows it in memory. */
static void classify(tm_schan *c, tm_pkt_pages *p, const tm_pkt_region *r,
		     uint64_t pg, const uint8_t *data)
{
	size_t ps = r->geom.page_size, tb = r->tag_bytes;
	uint8_t *tags = c->tags + (size_t)p->n_normal * tb;
	bool tags_zero = tb == 0 || tm_mem_is_zero(tags, tb);
	uint64_t off = pg * ps;
	struct iovec *last = p->data_niov ? &c->piece[p->data_niov - 1] : NULL;

	if (!tm_mem_is_zero(data, ps)) {
		c->off[p->n_normal++] = off;
		if (last && (const uint8_t *)last->iov_base + last->iov_len == data)
			last->iov_len += ps;
		else
			c->piece[p->data_niov++] = (struct iovec){ (void *)data, ps };
	} else if (!tags_zero) {
		memcpy(c->tags_to + (size_t)p->n_tagonly * tb, tags, tb);
		c->off_to[p->n_tagonly++] = off;
	} else {
		c->off_zero[p->n_zero++] = off;
	}
}

/* Where page pg's bytes come from, its tags read into `tags`. In place:
 * region memory itself. Otherwise (no plain pointer, or a page that is not
 * resident - lazy placement would fault it in behind the API's back) a copy
 * in the channel buffer at slot `slot`. */
static const uint8_t *page_bytes(tm_schan *c, tm_region *reg, uint64_t pg,
				 bool in_place, uint32_t slot, uint8_t *tags,
				 int *rc, tm_error *err)
{
	size_t ps = tm_region_geom(reg)->page_size;
	uint8_t *copy = c->data + (size_t)slot * ps;

	if (in_place && tm_region_page_present(reg, pg)) {
		*rc = tags ? tm_region_get_tags(reg, pg, TM_TAGS_PACKED, tags, err) : 0;
		return tm_region_direct(reg, pg * ps);
	}
	*rc = tm_region_read_page(reg, pg, copy, tags, err);
	return copy;
}

/* Ask for page pg's lines ahead of use: the hardware prefetchers stop at
 * page boundaries, so without this every page of region memory starts with
 * a full miss, and the checksum then streams it from DRAM. */
static void prefetch_page(tm_region *reg, uint64_t pg, size_t ps)
{
	const uint8_t *p = tm_region_direct(reg, pg * ps);

	if (!p)
		return;
	for (size_t o = 0; o < ps; o += 64)
		__builtin_prefetch(p + o, 0, 3);
}

/* Read the job's pages and gather them in wire order. */
static int gather(tm_schan *c, const tm_job *j, bool in_place, tm_pkt_pages *p,
		  tm_error *err)
{
	const tm_pkt_region *r = &c->m->sess.region[j->region];
	tm_region *reg = c->m->region[j->region];
	size_t tb = r->tag_bytes;

	memset(p, 0, sizeof(*p));
	p->region = j->region;
	for (unsigned w = 0; w < TM_MASK_WORDS; w++) {
		for (uint64_t bits = j->mask[w]; bits; bits &= bits - 1) {
			uint64_t pg = j->first + 64 * w + (unsigned)__builtin_ctzll(bits);
			int rc;

			if (in_place)
				prefetch_page(reg, pg + 2, r->geom.page_size);
			const uint8_t *data = page_bytes(c, reg, pg, in_place,
				p->n_normal, tb ? c->tags + (size_t)p->n_normal * tb : NULL,
				&rc, err);

			if (rc)
				return tm_error_wrap(err, rc,
					"channel %u: reading region '%s' offset 0x%llx", c->idx,
					r->name, (unsigned long long)(pg * r->geom.page_size));
			classify(c, p, r, pg, data);
		}
	}
	memcpy(c->tags + (size_t)p->n_normal * tb, c->tags_to, (size_t)p->n_tagonly * tb);
	memcpy(c->off + p->n_normal, c->off_to, p->n_tagonly * 8);
	memcpy(c->off + p->n_normal + p->n_tagonly, c->off_zero, p->n_zero * 8);
	p->off = c->off;
	p->tags = c->tags;
	/* Copied pages sit back to back in the buffer: contiguous data, which
	 * zstd needs. Pages in place go as pieces. */
	if (in_place)
		p->data_iov = c->piece;
	else
		p->data_niov = 0;
	p->data = c->data;
	return 0;
}

/* Whether this job's normal pages may go straight from region memory. */
static bool send_in_place(const tm_schan *c, const tm_job *j)
{
	return c->m->cfg.zero_copy && j->stable && c->direct[j->region] &&
	       !(c->m->sess.features & TM_FEAT_ZSTD);
}

/* --max-bandwidth: sleep so this channel keeps to its share. */
static void pace(tm_schan *c, size_t bytes)
{
	uint64_t limit = c->m->cfg.max_bandwidth / c->m->nchan;
	uint64_t now = tm_now_ns(), due;

	if (!limit)
		return;
	if (c->rate_t0 == 0 || now - c->rate_t0 > 1000000000u) {
		c->rate_t0 = now;
		c->rate_bytes = 0;
	}
	c->rate_bytes += bytes;
	due = c->rate_t0 + (uint64_t)((double)c->rate_bytes / (double)limit * 1e9);
	if (due > now) {
		uint64_t d = due - now;

		nanosleep(&(struct timespec){ (time_t)(d / 1000000000u),
					      (long)(d % 1000000000u) }, NULL);
	}
}

static int send_pages(tm_schan *c, const tm_job *j, tm_error *err)
{
	tm_pkt_pages p;
	size_t total;
	int niov, rc;

	rc = gather(c, j, send_in_place(c, j), &p, err);
	if (rc == 0)
		rc = tm_pkt_encode_iov(&c->enc, &p, c->idx, c->seq, c->iov,
				       (int)c->m->sess.ppp + 2, &niov, &total, err);
	if (rc)
		return rc;
	rc = tm_xport_sendv(c->fd, c->iov, niov);
	if (rc)
		return tm_error_set(err, rc,
			"channel %u: sending packet %llu (region '%s' offset 0x%llx): %s",
			c->idx, (unsigned long long)c->seq,
			c->m->sess.region[j->region].name,
			(unsigned long long)p.off[0], tm_xport_strerror(rc));
	c->seq++;
	atomic_fetch_add(&c->st.bytes, total);
	atomic_fetch_add(&c->st.packets, 1);
	atomic_fetch_add(&c->st.tags, c->enc.tags_len);
	atomic_fetch_add(&c->st.normal, p.n_normal);
	atomic_fetch_add(&c->st.tag_only, p.n_tagonly);
	atomic_fetch_add(&c->st.zero, p.n_zero);
	atomic_fetch_add(&c->st.data, (uint64_t)(p.n_normal + p.n_tagonly + p.n_zero) *
			 c->m->sess.region[j->region].geom.page_size);
	pace(c, total);
	return 0;
}

static int send_end(tm_schan *c, tm_error *err)
{
	uint8_t p[16];

	tm_put64(p, atomic_load(&c->st.packets));
	tm_put64(p + 8, atomic_load(&c->st.normal) + atomic_load(&c->st.tag_only) +
		 atomic_load(&c->st.zero));
	int rc = tm_frame_send(c->fd, TM_F_END, (uint16_t)c->idx, c->seq, p,
			       sizeof(p), err);
	if (rc == 0) {
		c->seq++;
		atomic_fetch_add(&c->st.bytes, TM_FRAME_HDR + sizeof(p));
	}
	return rc;
}

void *tm_schan_main(void *arg)
{
	tm_schan *c = arg;
	char name[16];
	tm_error err;
	tm_job j;

	snprintf(name, sizeof(name), "tm-send-%u", c->idx);
	pthread_setname_np(pthread_self(), name);   /* for perf and top */
	tm_error_clear(&err);
	while (pop(c, &j)) {
		int rc = j.kind == TM_JOB_END ? send_end(c, &err) :
						send_pages(c, &j, &err);

		if (rc) {
			tm_mig_fail(c->m, &err);
			break;
		}
		retire(c, j.kind == TM_JOB_END ? 0 : job_pages(&j));
		if (j.kind == TM_JOB_END)
			break;
	}
	tm_mig_wake(c->m);
	return NULL;
}
