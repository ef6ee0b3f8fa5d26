/*
 * swapout.c - swapping folios out: read every subpage's data and tags,
 * allocate naturally aligned slots for each folio, one pwrite per run of
 * non-zero pages with consecutive slots, store the tagged subpages' tag
 * values in one batch per folio, mark the pages swapped and release their
 * memory. The unit of work is a batch: one folio (tm_swap_out), or every
 * small folio of one 2^TM_SWAP_MAX_ORDER-page block of a range - they
 * share the block's folio lock, and a block's tag work is big enough to
 * hand to the tag worker where one small folio's is not. On failure
 * nothing of the batch is kept.
 */
#include "swap/swap_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FOLIO_MAX (1u << TM_SWAP_MAX_ORDER)

/* ---- swap-out ------------------------------------------------------ */

/* A batch: pages [pg, pg + n), folios of 2^order pages. */
struct out_folio {
	size_t pg, n;
	unsigned order;
	uint64_t first[FOLIO_MAX];    /* first slot of each folio */
	struct tm_iobuf *b;
	bool tags_read;               /* b->tags filled (else store_tags reads) */
	bool tagged[FOLIO_MAX];
	bool zero_tags_known[FOLIO_MAX]; /* not resident: nothing to read */
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

		f->zero_tags_known[i] = false;
		if (!whole && !tm_region_page_present(p->r, pg)) {
			f->zero[i] = true;
			f->tagged[i] = false;
			f->zero_tags_known[i] = true;
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

static size_t nfolios(const struct out_folio *f)
{
	return f->n >> f->order;
}

/* The slot of the batch's i-th page: its folio's first + its index. */
static uint64_t slot_at(const struct out_folio *f, size_t i)
{
	return f->first[i >> f->order] + (i & (((size_t)1 << f->order) - 1));
}

/* One pwrite per run of non-zero subpages in consecutive slots (one for
 * the whole folio in the usual case). */
static int write_data(tm_pager *p, struct out_folio *f, tm_error *err)
{
	size_t i = 0;

	while (i < f->n) {
		size_t j = i + 1;

		if (f->zero[i]) {
			i++;
			continue;
		}
		while (j < f->n && !f->zero[j] && slot_at(f, j) == slot_at(f, i) + (j - i))
			j++;
		int rc = tm_swapfile_write(p->sf, slot_at(f, i),
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

/* Take back the tags of the batch's first nf folios. */
static void unstore_folios(tm_pager *p, struct out_folio *f, size_t nf)
{
	size_t fn = (size_t)1 << f->order;

	for (size_t k = 0; k < nf; k++)
		tm_tagstore_drop_batch(&p->sf->ts, f->first[k], fn, f->tagged + k * fn);
}

/* A resident page the API never tagged whose tags a foreign writer set:
 * the workload's own STG on mte, a guest on kvm. Only a backend that does
 * not own its tags can have them (tm_region_page_may_be_tagged), and only
 * the tags just read tell; without this they were lost on swap-out. */
static bool foreign_tags(tm_pager *p, const struct out_folio *f, size_t i)
{
	return p->packed && !f->zero_tags_known[i] &&
	       tm_region_page_may_be_tagged(p->r, f->pg + i) &&
	       !tm_mem_is_zero(f->b->tags + i * p->packed, p->packed);
}

/* Build every tagged subpage's record (untagged ones stay empty; building
 * cannot fail: stream records go to the buffer's scratch, raw ones point
 * at its tags) and store each folio's with one lock round trip: all or
 * nothing for the batch. */
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
		if (!f->tagged[i] && foreign_tags(p, f, i))
			f->tagged[i] = true;
		if (f->tagged[i])
			tm_ts_rec_make(&p->sf->ts, f->b->tags + i * p->packed,
				       f->b->recs + i * p->packed, &j->recs[i]);
		else
			memset(&j->recs[i], 0, sizeof(j->recs[i]));
	}
	size_t fn = (size_t)1 << f->order;

	for (size_t k = 0; k < nfolios(f); k++) {
		rc = tm_tagstore_put_batch(&p->sf->ts, f->first[k], fn, j->recs + k * fn, err);
		if (rc) {
			unstore_folios(p, f, k);
			return tm_error_wrap(err, rc, "storing the tags of region %s folio at page %zu",
					     tm_region_name(p->r), f->pg + k * fn);
		}
	}
	return 0;
}

/* Take back the tags a job stored (the data write failed). */
static void unstore_tags(tm_pager *p, struct out_folio *f)
{
	unstore_folios(p, f, nfolios(f));
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

static void mark_swapped(tm_pager *p, struct out_folio *f)
{
	struct tm_swap_counters *c = &p->sf->ctr;
	size_t ntag = 0, nzero = 0;

	for (size_t i = 0; i < f->n; i++) {
		p->folio_first[f->pg + i] = f->first[i >> f->order];
		tm_set_pstate(p, f->pg + i, (uint8_t)(TM_PS_SWAPPED | f->order |
						   (f->zero[i] ? TM_PS_ZERO : 0)));
		ntag += f->tagged[i];
		nzero += f->zero[i];
	}
	atomic_fetch_add(&p->nswapped, f->n);
	tm_count(&c->folios_out[f->order], nfolios(f));
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

/* Aligned slots for every folio of the batch, or none. */
static int alloc_slots(tm_pager *p, struct out_folio *f, tm_error *err)
{
	size_t fn = (size_t)1 << f->order;

	for (size_t k = 0; k < nfolios(f); k++) {
		int rc = tm_slots_alloc(&p->sf->slots, f->order, &f->first[k]);

		if (rc) {
			while (k--)
				tm_slots_free(&p->sf->slots, f->first[k], fn);
			return tm_error_set(err, rc,
					    "swap-out of region %s page %zu: swap file %s has no free aligned run of %zu slots",
					    tm_region_name(p->r), f->pg + k * fn, p->sf->path, fn);
		}
	}
	return 0;
}

static void free_slots(tm_pager *p, struct out_folio *f)
{
	for (size_t k = 0; k < nfolios(f); k++)
		tm_slots_free(&p->sf->slots, f->first[k], (size_t)1 << f->order);
}

/* The first swapped page of [pg, pg + n), or pg + n if there is none. */
static size_t first_swapped(tm_pager *p, size_t pg, size_t n)
{
	size_t i = pg;

	while (i < pg + n && !tm_ps_swapped(tm_pstate(p, i)))
		i++;
	return i;
}

static int check_none_swapped(tm_pager *p, const struct out_folio *f, tm_error *err)
{
	size_t at = first_swapped(p, f->pg, f->n);

	return at < f->pg + f->n
		? tm_error_set(err, -EBUSY, "swap-out of region %s: page %zu is already swapped out",
			       tm_region_name(p->r), at)
		: 0;
}

static int swap_out_locked(tm_pager *p, struct out_folio *f, tm_error *err)
{
	int rc = check_none_swapped(p, f, err);

	if (!rc)
		rc = gather(p, f, err);
	if (!rc)
		rc = alloc_slots(p, f, err);
	if (rc)
		return rc;
	rc = write_and_store(p, f, err);
	if (rc) {
		free_slots(p, f);
		return rc;
	}
	mark_swapped(p, f);
	/* If the discard fails the folios stay swapped: their copy is safe in
	 * the file, and a later swap-in rewrites the same contents. */
	rc = tm_region_discard(p->r, f->pg, f->n, err);
	return rc ? tm_error_wrap(err, rc, "swap-out of region %s page %zu",
				  tm_region_name(p->r), f->pg) : 0;
}

/* Swap out the batch of pages [pg, pg + n) in folios of order `order`,
 * all under one folio lock (the caller keeps n within one lock's block). */
static int swap_out_batch(tm_pager *p, size_t pg, size_t n, unsigned order,
			  tm_error *err)
{
	struct out_folio f;
	int rc;

	f.pg = pg;
	f.n = n;
	f.order = order;
	f.b = tm_iopool_get(&p->pool);
	pthread_mutex_lock(tm_folio_lock(p, pg));
	rc = swap_out_locked(p, &f, err);
	pthread_mutex_unlock(tm_folio_lock(p, pg));
	tm_iopool_put(&p->pool, f.b);
	return rc;
}

int tm_swap_out(tm_pager *p, size_t pg, unsigned order, tm_error *err)
{
	int rc = check_folio(p, pg, order, err);

	return rc ? rc : swap_out_batch(p, pg, (size_t)1 << order, order, err);
}

/* Whether [pg, pg + FOLIO_MAX) can go out as one batch of small folios:
 * the whole block is in the range and nothing in it is swapped (else the
 * folio-by-folio path reports exactly which page is). */
static bool block_batch(tm_pager *p, size_t pg, size_t end, unsigned order)
{
	return order < TM_TAGWORKER_MIN_ORDER && pg % FOLIO_MAX == 0 &&
	       end - pg >= FOLIO_MAX && pg + FOLIO_MAX <= p->npages &&
	       first_swapped(p, pg, FOLIO_MAX) == pg + FOLIO_MAX;
}

int tm_swap_out_range(tm_pager *p, size_t pg, size_t n, unsigned order,
		      size_t *done, tm_error *err)
{
	size_t step = (size_t)1 << (order > TM_SWAP_MAX_ORDER ? 0 : order);
	size_t i = 0;
	int rc = 0;

	if (order > TM_SWAP_MAX_ORDER || pg % step || n % step)
		rc = tm_error_set(err, -EINVAL,
				  "swap-out of region %s: range %zu+%zu is not made of order-%u folios",
				  tm_region_name(p->r), pg, n, order);
	while (!rc && i < n) {
		size_t len = block_batch(p, pg + i, pg + n, order) ? FOLIO_MAX : step;

		rc = check_folio(p, pg + i, order, err);
		if (!rc)
			rc = swap_out_batch(p, pg + i, len, order, err);
		if (!rc)
			i += len;
	}
	if (done)
		*done = i;
	return rc;
}
