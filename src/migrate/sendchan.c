/*
 * sendchan.c - a source data channel: a thread that takes chunks of dirty
 * pages from its queue, reads each page with its tags, sorts it into a class
 * (normal / tag-only / zero — zero detection runs here, in the channel
 * thread, as in QEMU multifd), encodes one packet and sends it. Every buffer
 * is allocated in tm_schan_init, once per channel.
 */
#include <errno.h>
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
	if (!c->data || !c->tags || !c->tags_to || !c->off || !c->off_to ||
	    !c->off_zero) {
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
	tm_pkt_encoder_free(&c->enc);
	c->data = c->tags = c->tags_to = NULL;
	c->off = c->off_to = c->off_zero = NULL;
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

/* Sort page pg into its class; its data and tags are already in the slots
 * of the next normal page. */
static void classify(tm_schan *c, tm_pkt_pages *p, const tm_pkt_region *r,
		     uint64_t pg)
{
	size_t ps = r->geom.page_size, tb = r->tag_bytes;
	uint8_t *data = c->data + (size_t)p->n_normal * ps;
	uint8_t *tags = c->tags + (size_t)p->n_normal * tb;
	bool tags_zero = tb == 0 || tm_mem_is_zero(tags, tb);
	uint64_t off = pg * ps;

	if (!tm_mem_is_zero(data, ps)) {
		c->off[p->n_normal++] = off;
	} else if (!tags_zero) {
		memcpy(c->tags_to + (size_t)p->n_tagonly * tb, tags, tb);
		c->off_to[p->n_tagonly++] = off;
	} else {
		c->off_zero[p->n_zero++] = off;
	}
}

/* Read the job's pages and gather them in wire order. */
static int gather(tm_schan *c, const tm_job *j, tm_pkt_pages *p, tm_error *err)
{
	const tm_pkt_region *r = &c->m->sess.region[j->region];
	tm_region *reg = c->m->region[j->region];
	size_t ps = r->geom.page_size, tb = r->tag_bytes;

	memset(p, 0, sizeof(*p));
	p->region = j->region;
	for (unsigned w = 0; w < TM_MASK_WORDS; w++) {
		for (uint64_t bits = j->mask[w]; bits; bits &= bits - 1) {
			uint64_t pg = j->first + 64 * w + (unsigned)__builtin_ctzll(bits);
			int rc = tm_region_read_page(reg, pg,
				c->data + (size_t)p->n_normal * ps,
				tb ? c->tags + (size_t)p->n_normal * tb : NULL, err);

			if (rc)
				return tm_error_wrap(err, rc,
					"channel %u: reading region '%s' offset 0x%llx", c->idx,
					r->name, (unsigned long long)(pg * ps));
			classify(c, p, r, pg);
		}
	}
	memcpy(c->tags + (size_t)p->n_normal * tb, c->tags_to, (size_t)p->n_tagonly * tb);
	memcpy(c->off + p->n_normal, c->off_to, p->n_tagonly * 8);
	memcpy(c->off + p->n_normal + p->n_tagonly, c->off_zero, p->n_zero * 8);
	p->off = c->off;
	p->tags = c->tags;
	p->data = c->data;
	return 0;
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
	struct iovec iov[3];
	size_t total;
	int niov, rc;

	rc = gather(c, j, &p, err);
	if (rc == 0)
		rc = tm_pkt_encode(&c->enc, &p, c->idx, c->seq, iov, &niov, &total, err);
	if (rc)
		return rc;
	rc = tm_xport_sendv(c->fd, iov, niov);
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
	tm_error err;
	tm_job j;

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
