/*
 * swapin.c - bringing pages back: page by page (one slot) or a whole folio
 * (one pread, all tags decoded, every still-swapped subpage placed), the
 * range call that picks between them, and the lazy-placement fill callback
 * the region's fault thread calls. A read or decode error places nothing.
 */
#include "swap/swap_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FOLIO_MAX (1u << TM_SWAP_MAX_ORDER)

/* ---- swap-in ------------------------------------------------------- */

/* Decode page pg's stored tags (left in the store until commit). *tagged
 * is false when the page stored none (it was untagged). */
static int load_tags(tm_pager *p, size_t pg, uint8_t st, uint8_t *tags,
		     bool *tagged, tm_error *err)
{
	uint64_t val = p->packed ? tm_tagstore_peek(&p->sf->ts, tm_slot_of(p, pg, st)) : 0;
	int rc;

	*tagged = val != 0;
	if (!*tagged)
		return 0;
	rc = tm_ts_value_decode(&p->sf->ts, val, tags, err);
	return rc ? tm_error_wrap(err, rc, "tags of region %s page %zu (slot %" PRIu64 ")",
				  tm_region_name(p->r), pg, tm_slot_of(p, pg, st)) : 0;
}

/* Read one subpage (data and tags) without changing anything. */
static int load_page(tm_pager *p, size_t pg, uint8_t st, uint8_t *data,
		     uint8_t *tags, bool *tagged, tm_error *err)
{
	int rc = 0;

	if (st & TM_PS_ZERO)
		memset(data, 0, p->ps);
	else
		rc = tm_swapfile_read(p->sf, tm_slot_of(p, pg, st), data, 1, err);
	if (rc)
		return tm_error_wrap(err, rc, "swap-in of region %s page %zu",
				     tm_region_name(p->r), pg);
	return load_tags(p, pg, st, tags, tagged, err);
}

/* Where a fault wants its page: the fill callback's buffers. */
struct tm_fault_out {
	size_t pg;
	void *data;
	uint8_t *tags;
	bool *tagged;
};

/* The swapped subpages of a folio, read under its lock. */
struct folio_in {
	size_t head, n;
	uint64_t first;               /* slot of subpage 0 */
	bool sw[FOLIO_MAX];           /* swapped in this folio at the start */
	bool zero[FOLIO_MAX];         /* of which zero data (not written) */
	bool tagged[FOLIO_MAX];       /* stored tags */
	bool done[FOLIO_MAX];         /* placed */
};

/*
 * The folio that swapped page pg went out in. A subpage belongs to it only
 * if it is still swapped with the same order and first slot: a page of the
 * range that was restored may have gone out again in another folio.
 */
static void folio_in_init(tm_pager *p, struct folio_in *f, size_t pg)
{
	uint8_t st = tm_pstate(p, pg);
	unsigned order = tm_ps_order(st);

	f->head = tm_folio_head(pg, order);
	f->n = (size_t)1 << order;
	f->first = p->folio_first[pg];
	for (size_t i = 0; i < f->n; i++) {
		uint8_t s = tm_pstate(p, f->head + i);

		f->sw[i] = tm_ps_swapped(s) && tm_ps_order(s) == order &&
			   p->folio_first[f->head + i] == p->folio_first[pg];
		f->zero[i] = f->sw[i] && (s & TM_PS_ZERO);
		f->tagged[i] = f->done[i] = false;
	}
}

/* Read the folio's swapped, non-zero subpages: one pread per run. */
static int load_folio_data(tm_pager *p, const struct folio_in *f,
			   uint8_t *data, tm_error *err)
{
	size_t i = 0;

	while (i < f->n) {
		size_t j = i;

		if (!f->sw[i] || f->zero[i]) {
			if (f->zero[i])
				memset(data + i * p->ps, 0, p->ps);
			i++;
			continue;
		}
		while (j < f->n && f->sw[j] && !f->zero[j])
			j++;
		int rc = tm_swapfile_read(p->sf, f->first + i, data + i * p->ps,
					  j - i, err);
		if (rc)
			return tm_error_wrap(err, rc, "swap-in of region %s folio at page %zu",
					     tm_region_name(p->r), f->head);
		i = j;
	}
	return 0;
}

/* Decode every swapped subpage's tags into tags[] (values stay in the
 * store until commit): one lock round trip for the folio. */
struct decode_job {
	tm_pager *p;
	struct folio_in *f;
	uint8_t *tags;
};

static int load_folio_tags(tm_pager *p, struct folio_in *f, uint8_t *tags,
			   tm_error *err);

static int decode_job_run(void *arg, tm_error *err)
{
	struct decode_job *j = arg;

	return load_folio_tags(j->p, j->f, j->tags, err);
}

/* Read the folio's data while the tag worker decodes its tags (or decode
 * them after, inline, for small folios or a busy worker). */
static int load_folio(tm_pager *p, struct folio_in *f, struct tm_iobuf *b,
		      tm_error *err)
{
	struct decode_job job = { p, f, b->tags };
	bool posted = p->packed && f->n >= (1u << TM_TAGWORKER_MIN_ORDER) &&
		      tm_tagworker_post(&p->tw, decode_job_run, &job);
	int rc = load_folio_data(p, f, b->data, err), trc = 0;
	bool ran = false;

	if (posted)
		trc = tm_tagworker_wait(&p->tw, rc ? NULL : err, &ran);
	if (!ran && !rc)
		trc = load_folio_tags(p, f, b->tags, err);
	return rc ? rc : trc;
}

static int load_folio_tags(tm_pager *p, struct folio_in *f, uint8_t *tags,
			   tm_error *err)
{
	uint64_t vals[FOLIO_MAX];

	if (!p->packed)
		return 0;
	tm_tagstore_peek_batch(&p->sf->ts, f->first, f->n, f->sw, vals);
	for (size_t i = 0; i < f->n; i++) {
		int rc;

		if (!f->sw[i] || !vals[i])
			continue;
		f->tagged[i] = true;
		rc = tm_ts_value_decode(&p->sf->ts, vals[i], tags + i * p->packed, err);
		if (rc)
			return tm_error_wrap(err, rc, "tags of region %s page %zu (slot %" PRIu64 ")",
					     tm_region_name(p->r), f->head + i, f->first + i);
	}
	return 0;
}

/* Release the placed subpages: their tags (one lock round trip), their
 * slots (one per run), their state; count them. */
static void commit_folio(tm_pager *p, struct folio_in *f, const struct tm_fault_out *fo)
{
	bool want[FOLIO_MAX];
	size_t placed = 0, ntag = 0;

	for (size_t i = 0; i < f->n; i++)
		want[i] = f->done[i] && f->tagged[i];
	if (p->packed)
		tm_tagstore_drop_batch(&p->sf->ts, f->first, f->n, want);
	for (size_t i = 0, run = 0; i <= f->n; i++) {
		if (i < f->n && f->done[i]) {
			run++;
			tm_set_pstate(p, f->head + i, 0);
			placed++;
			ntag += f->tagged[i];
			continue;
		}
		if (run)
			tm_slots_free(&p->sf->slots, f->first + i - run, run);
		run = 0;
	}
	atomic_fetch_sub(&p->nswapped, placed);
	tm_count(&p->sf->ctr.pages_in, placed);
	tm_count(&p->sf->ctr.tag_restores, ntag);
	if (fo && f->done[fo->pg - f->head])
		tm_count(&p->sf->ctr.pages_in_fault, 1);
}

/* Place every swapped subpage (the faulting one through fo); stop at the
 * first placement error. */
static int place_folio(tm_pager *p, struct folio_in *f, struct tm_iobuf *b,
		       struct tm_fault_out *fo, tm_error *err)
{
	for (size_t i = 0; i < f->n; i++) {
		size_t pg = f->head + i;
		uint8_t *d = b->data + i * p->ps, *t = b->tags + i * p->packed;
		int rc;

		if (!f->sw[i])
			continue;
		if (fo && pg == fo->pg) {
			memcpy(fo->data, d, p->ps);
			if (f->tagged[i])
				memcpy(fo->tags, t, p->packed);
			*fo->tagged = f->tagged[i];
		} else if ((rc = tm_region_write_page(p->r, pg, d,
						      f->tagged[i] ? t : NULL, err)) != 0) {
			return tm_error_wrap(err, rc, "swap-in of region %s page %zu",
					     tm_region_name(p->r), pg);
		}
		f->done[i] = true;
	}
	return 0;
}

/*
 * Whole-folio restore, under the folio lock: one read of the folio, the
 * tags of every swapped subpage decoded, then every swapped subpage placed
 * (the faulting one, if any, through fo). Nothing is placed when the read
 * or a decode fails; a placement error stops after the pages already
 * placed (they stay restored).
 */
static int restore_folio_locked(tm_pager *p, size_t pg, struct tm_fault_out *fo,
				tm_error *err)
{
	struct folio_in f;
	struct tm_iobuf *b;
	int rc;

	folio_in_init(p, &f, pg);
	b = tm_iopool_get(&p->pool);
	rc = load_folio(p, &f, b, err);
	if (!rc)
		rc = place_folio(p, &f, b, fo, err);
	commit_folio(p, &f, fo);
	tm_iopool_put(&p->pool, b);
	if (!rc)
		tm_count(&p->sf->ctr.folio_swapins, 1);
	return rc;
}

/* Page-by-page restore of a swapped subpage through the region. */
static int restore_page_locked(tm_pager *p, size_t pg, tm_error *err)
{
	struct tm_iobuf *b = tm_iopool_get(&p->pool);
	bool tagged;
	int rc = load_page(p, pg, tm_pstate(p, pg), b->data, b->tags, &tagged, err);

	if (!rc && (rc = tm_region_write_page(p->r, pg, b->data,
					      tagged ? b->tags : NULL, err)) != 0)
		rc = tm_error_wrap(err, rc, "swap-in of region %s page %zu",
				   tm_region_name(p->r), pg);
	if (!rc) {
		tm_pager_commit_restore(p, pg, tagged, false);
		tm_count(&p->sf->ctr.page_swapins, 1);
	}
	tm_iopool_put(&p->pool, b);
	return rc;
}

int tm_swap_in_page(tm_pager *p, size_t pg, tm_error *err)
{
	int rc = 0;

	if (pg >= p->npages)
		return tm_error_set(err, -EINVAL, "swap-in of region %s: page %zu beyond its %zu pages",
				    tm_region_name(p->r), pg, p->npages);
	pthread_mutex_lock(tm_folio_lock(p, pg));
	if (tm_ps_swapped(tm_pstate(p, pg)))
		rc = restore_page_locked(p, pg, err);
	pthread_mutex_unlock(tm_folio_lock(p, pg));
	return rc;
}

/* Restore what of page pg's folio lies in [lo, hi); returns the next page
 * to look at. */
static size_t swap_in_at(tm_pager *p, size_t pg, size_t lo, size_t hi,
			 int *rc, tm_error *err)
{
	pthread_mutex_t *lk = tm_folio_lock(p, pg);
	size_t next = pg + 1;

	pthread_mutex_lock(lk);
	uint8_t st = tm_pstate(p, pg);

	if (tm_ps_swapped(st)) {
		unsigned order = tm_ps_order(st);
		size_t head = tm_folio_head(pg, order), n = (size_t)1 << order;

		/* Pages of the range after pg are looked at again: one of them
		 * may be out in another folio. */
		if (head >= lo && head + n <= hi) {
			*rc = restore_folio_locked(p, pg, NULL, err);
		} else {
			*rc = restore_page_locked(p, pg, err);
		}
	}
	pthread_mutex_unlock(lk);
	return next;
}

int tm_swap_in(tm_pager *p, size_t pg, size_t n, tm_error *err)
{
	int rc = 0;

	if (pg > p->npages || n > p->npages - pg)
		return tm_error_set(err, -EINVAL, "swap-in of region %s: range %zu+%zu beyond its %zu pages",
				    tm_region_name(p->r), pg, n, p->npages);
	for (size_t q = pg; !rc && q < pg + n;) {
		if (!tm_ps_swapped(tm_pstate(p, q))) {
			q++;
			continue;
		}
		q = swap_in_at(p, q, pg, pg + n, &rc, err);
	}
	return rc;
}

/* ---- lazy placement: the fill callback ----------------------------- */

/* Page-by-page fault: read straight into the region's buffers (through the
 * pool when O_DIRECT needs an aligned buffer). */
static int fill_page_locked(tm_pager *p, size_t pg, void *data, uint8_t *tags,
			    bool *tagged, tm_error *err)
{
	bool direct = (p->sf->flags & TM_SWAPFILE_DIRECT) &&
		      ((uintptr_t)data & 4095);
	struct tm_iobuf *b = direct ? tm_iopool_get(&p->pool) : NULL;
	int rc = load_page(p, pg, tm_pstate(p, pg), b ? b->data : data, tags,
			   tagged, err);

	if (b) {
		if (!rc)
			memcpy(data, b->data, p->ps);
		tm_iopool_put(&p->pool, b);
	}
	if (!rc) {
		tm_pager_commit_restore(p, pg, *tagged, true);
		tm_count(&p->sf->ctr.page_swapins, 1);
	}
	return rc;
}

/* Restore page pg for a fault, under its folio lock. 1: not swapped. */
static int fill_locked(tm_pager *p, size_t pg, void *data, uint8_t *tags,
		       bool *tagged, tm_error *err)
{
	uint8_t st = tm_pstate(p, pg);
	struct tm_fault_out fo = { pg, data, tags, tagged };

	if (!tm_ps_swapped(st))
		return 1;
	if (p->mode == TM_SWAPIN_FOLIO)
		return restore_folio_locked(p, pg, &fo, err);
	return fill_page_locked(p, pg, data, tags, tagged, err);
}

int tm_pager_fill(void *ctx, tm_region *r, size_t pg, void *data,
		  uint8_t *tags, bool *tagged, tm_error *err)
{
	tm_pager *p = ctx;
	int rc = 1;

	(void)r;
	/* Not swapped: never written, or discarded; reads as zero. Checked
	 * without the folio lock first (see swap.h "Locking"). */
	if (tm_ps_swapped(tm_pstate(p, pg))) {
		pthread_mutex_lock(tm_folio_lock(p, pg));
		rc = fill_locked(p, pg, data, tags, tagged, err);
		pthread_mutex_unlock(tm_folio_lock(p, pg));
	}
	if (rc == 1) {
		memset(data, 0, p->ps);
		*tagged = false;
		rc = 0;
	}
	return rc;
}

