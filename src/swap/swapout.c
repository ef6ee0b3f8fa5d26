/*
 * swapout.c - swapping a folio out: read every subpage's data and tags,
 * allocate naturally aligned slots, one pwrite per run of non-zero pages,
 * store the tagged subpages' tag values in one batch, mark the pages
 * swapped and release their memory. On failure nothing is kept.
 */
#include "swap/swap_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FOLIO_MAX (1u << TM_SWAP_MAX_ORDER)

/* ---- swap-out ------------------------------------------------------ */

struct out_folio {
	size_t pg, n;
	uint64_t first;
	struct tm_iobuf *b;
	bool tags_read;               /* b->tags filled (else store_tags reads) */
	bool tagged[FOLIO_MAX];
	bool zero[FOLIO_MAX];
};

static bool all_present(tm_pager *p, const struct out_folio *f)
{
	for (size_t i = 0; p->lazy && i < f->n; i++)
		if (!tm_region_page_present(p->r, f->pg + i))
			return false;
	return true;
}

/* Read every subpage's data (and, page by page, tags) into the buffer:
 * the whole folio's data in one call when it can, its tags then left to
 * store_tags - on the tag worker, for a large folio, while this thread
 * writes the data; page by page when lazy placement has not placed some
 * page yet - such a page is zero and untagged, and reading it would only
 * fault it in. */
static int gather(tm_pager *p, struct out_folio *f, tm_error *err)
{
	bool whole = all_present(p, f);
	int rc = 0;

	f->tags_read = !whole;
	if (whole)
		rc = tm_region_read_pages(p->r, f->pg, f->n, f->b->data, NULL, err);
	for (size_t i = 0; !rc && i < f->n; i++) {
		size_t pg = f->pg + i;
		uint8_t *d = f->b->data + i * p->ps;

		if (!whole && !tm_region_page_present(p->r, pg)) {
			f->zero[i] = true;
			f->tagged[i] = false;
			continue;
		}
		if (!whole)
			rc = tm_region_read_page(p->r, pg, d,
						 p->packed ? f->b->tags + i * p->packed : NULL,
						 err);
		f->tagged[i] = p->packed && tm_region_page_tagged(p->r, pg);
		f->zero[i] = tm_mem_is_zero(d, p->ps);
	}
	return rc ? tm_error_wrap(err, rc, "swap-out of region %s pages %zu-%zu",
				  tm_region_name(p->r), f->pg, f->pg + f->n - 1) : 0;
}

/* One pwrite per run of non-zero subpages (one for the whole folio in the
 * usual case). */
static int write_data(tm_pager *p, struct out_folio *f, tm_error *err)
{
	size_t i = 0;

	while (i < f->n) {
		size_t j = i;

		if (f->zero[i]) {
			i++;
			continue;
		}
		while (j < f->n && !f->zero[j])
			j++;
		int rc = tm_swapfile_write(p->sf, f->first + i,
					   f->b->data + i * p->ps, j - i, err);
		if (rc)
			return rc;
		i = j;
	}
	return 0;
}

/* A folio's tag records, built and stored (by the tag worker or here). */
struct tag_job {
	tm_pager *p;
	struct out_folio *f;
	struct tm_ts_rec recs[FOLIO_MAX];
};

/* Build every tagged subpage's record (untagged ones stay empty; building
 * cannot fail: stream records go to the buffer's scratch, raw ones point
 * at its tags) and store them with one lock round trip: all or nothing. */
static int store_tags(void *arg, tm_error *err)
{
	struct tag_job *j = arg;
	struct out_folio *f = j->f;
	tm_pager *p = j->p;
	int rc = f->tags_read ? 0 : tm_region_read_pages(p->r, f->pg, f->n, NULL,
							 f->b->tags, err);

	if (rc)
		return tm_error_wrap(err, rc, "swap-out of region %s: tags of pages %zu-%zu",
				     tm_region_name(p->r), f->pg, f->pg + f->n - 1);
	for (size_t i = 0; i < f->n; i++) {
		if (f->tagged[i])
			tm_ts_rec_make(&p->sf->ts, f->b->tags + i * p->packed,
				       f->b->recs + i * p->packed, &j->recs[i]);
		else
			memset(&j->recs[i], 0, sizeof(j->recs[i]));
	}
	rc = tm_tagstore_put_batch(&p->sf->ts, f->first, f->n, j->recs, err);
	return rc ? tm_error_wrap(err, rc, "storing the tags of region %s folio at page %zu",
				  tm_region_name(p->r), f->pg) : 0;
}

/* Take back the tags a job stored (the data write failed). */
static void unstore_tags(tm_pager *p, struct out_folio *f)
{
	tm_tagstore_drop_batch(&p->sf->ts, f->first, f->n, f->tagged);
}

/*
 * Write the data while the tag worker builds and stores the tag records
 * (the two share nothing: tags never go to the file); for small folios,
 * or when the worker is busy or had no CPU, the tags are done here. On
 * failure nothing is stored.
 */
static int write_and_store(tm_pager *p, struct out_folio *f, tm_error *err)
{
	struct tag_job job = { .p = p, .f = f };
	bool posted = p->packed && f->n >= (1u << TM_TAGWORKER_MIN_ORDER) &&
		      tm_tagworker_post(&p->tw, store_tags, &job);
	int rc = write_data(p, f, err), trc = 0;
	bool ran = false;

	if (posted)
		trc = tm_tagworker_wait(&p->tw, rc ? NULL : err, &ran);
	if (p->packed && !ran && !rc)
		trc = store_tags(&job, err);
	if (rc && ran && !trc)
		unstore_tags(p, f);
	return rc ? rc : trc;
}

static void mark_swapped(tm_pager *p, struct out_folio *f, unsigned order)
{
	struct tm_swap_counters *c = &p->sf->ctr;
	size_t ntag = 0, nzero = 0;

	for (size_t i = 0; i < f->n; i++) {
		p->folio_first[f->pg + i] = f->first;
		tm_set_pstate(p, f->pg + i, (uint8_t)(TM_PS_SWAPPED | order |
						   (f->zero[i] ? TM_PS_ZERO : 0)));
		ntag += f->tagged[i];
		nzero += f->zero[i];
	}
	atomic_fetch_add(&p->nswapped, f->n);
	tm_count(&c->folios_out[order], 1);
	tm_count(&c->pages_out, f->n);
	tm_count(&c->pages_out_tagged, ntag);
	tm_count(&c->pages_out_zero, nzero);
}

static int check_folio(tm_pager *p, size_t pg, unsigned order, tm_error *err)
{
	size_t n = (size_t)1 << order;

	if (order > TM_SWAP_MAX_ORDER || pg % n || pg + n > p->npages)
		return tm_error_set(err, -EINVAL,
				    "swap-out of region %s: folio at page %zu of order %u is not aligned inside its %zu pages",
				    tm_region_name(p->r), pg, order, p->npages);
	if (atomic_load(&p->sf->off))
		return tm_error_set(err, -ESHUTDOWN,
				    "swap-out of region %s: swap file %s is off",
				    tm_region_name(p->r), p->sf->path);
	return 0;
}

static int swap_out_locked(tm_pager *p, struct out_folio *f, unsigned order,
			   tm_error *err)
{
	int rc;

	for (size_t i = 0; i < f->n; i++)
		if (tm_ps_swapped(tm_pstate(p, f->pg + i)))
			return tm_error_set(err, -EBUSY,
					    "swap-out of region %s: page %zu is already swapped out",
					    tm_region_name(p->r), f->pg + i);
	rc = gather(p, f, err);
	if (rc)
		return rc;
	rc = tm_slots_alloc(&p->sf->slots, order, &f->first);
	if (rc)
		return tm_error_set(err, rc,
				    "swap-out of region %s page %zu: swap file %s has no free aligned run of %zu slots",
				    tm_region_name(p->r), f->pg, p->sf->path, f->n);
	rc = write_and_store(p, f, err);
	if (rc) {
		tm_slots_free(&p->sf->slots, f->first, f->n);
		return rc;
	}
	mark_swapped(p, f, order);
	/* If the discard fails the folio stays swapped: its copy is safe in
	 * the file, and a later swap-in rewrites the same contents. */
	rc = tm_region_discard(p->r, f->pg, f->n, err);
	return rc ? tm_error_wrap(err, rc, "swap-out of region %s page %zu",
				  tm_region_name(p->r), f->pg) : 0;
}

int tm_swap_out(tm_pager *p, size_t pg, unsigned order, tm_error *err)
{
	struct out_folio f;
	int rc = check_folio(p, pg, order, err);

	if (rc)
		return rc;
	f.pg = pg;
	f.n = (size_t)1 << order;
	f.b = tm_iopool_get(&p->pool);
	pthread_mutex_lock(tm_folio_lock(p, pg));
	rc = swap_out_locked(p, &f, order, err);
	pthread_mutex_unlock(tm_folio_lock(p, pg));
	tm_iopool_put(&p->pool, f.b);
	return rc;
}

int tm_swap_out_range(tm_pager *p, size_t pg, size_t n, unsigned order,
		      size_t *done, tm_error *err)
{
	size_t step = (size_t)1 << (order > TM_SWAP_MAX_ORDER ? 0 : order);
	size_t i;
	int rc = 0;

	if (order > TM_SWAP_MAX_ORDER || pg % step || n % step)
		rc = tm_error_set(err, -EINVAL,
				  "swap-out of region %s: range %zu+%zu is not made of order-%u folios",
				  tm_region_name(p->r), pg, n, order);
	for (i = 0; !rc && i < n; i += step)
		rc = tm_swap_out(p, pg + i, order, err);
	if (done)
		*done = rc ? (i ? i - step : 0) : n;
	return rc;
}

