/*
 * pager.c - swaps a region's folios out to its swap file and back in:
 * swap-out (read data + tags, one aligned pwrite, store tags, discard),
 * page-by-page and whole-folio restore, the lazy-placement fill callback,
 * and discard of subpages while swapped. Locking: include/tagmem/swap.h.
 */
#include "swap/swap_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define POOL_BUFS 4u
#define FOLIO_MAX (1u << TM_SWAP_MAX_ORDER)

/* ---- I/O buffer pool ------------------------------------------- */

/*
 * The data buffers come first, each 2 MiB aligned inside one mapping that
 * asks for transparent huge pages, then the tag buffers. Copies to and from
 * a folio buffer then touch one huge page instead of 512 small ones: under
 * virtualization the TLB misses of small pages made pwrite's copy several
 * times slower.
 */
static int pool_init(struct tm_iopool *pl, size_t ps, size_t packed)
{
	const size_t huge = 2u << 20;
	size_t dlen = ((size_t)FOLIO_MAX * ps + huge - 1) & ~(huge - 1);
	size_t tlen = (size_t)FOLIO_MAX * packed;
	uint8_t *base;

	pl->map_len = POOL_BUFS * (dlen + tlen) + huge;
	pl->map = mmap(NULL, pl->map_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (pl->map == MAP_FAILED) {
		pl->map = NULL;
		return -ENOMEM;
	}
	base = (uint8_t *)(((uintptr_t)pl->map + huge - 1) & ~(uintptr_t)(huge - 1));
	madvise(base, POOL_BUFS * dlen, MADV_HUGEPAGE);  /* a hint: may fail */
	pl->bufs = calloc(POOL_BUFS, sizeof(*pl->bufs));
	if (!pl->bufs)
		return -ENOMEM;
	for (unsigned i = 0; i < POOL_BUFS; i++) {
		struct tm_iobuf *b = &pl->bufs[i];

		b->data = base + i * dlen;
		b->tags = base + POOL_BUFS * dlen + i * tlen;
		b->next = pl->free;
		pl->free = b;
	}
	pthread_mutex_init(&pl->lock, NULL);
	pthread_cond_init(&pl->cv, NULL);
	return 0;
}

static void pool_fini(struct tm_iopool *pl)
{
	if (pl->bufs) {
		pthread_mutex_destroy(&pl->lock);
		pthread_cond_destroy(&pl->cv);
	}
	free(pl->bufs);
	if (pl->map)
		munmap(pl->map, pl->map_len);
}

static struct tm_iobuf *pool_get(struct tm_iopool *pl)
{
	struct tm_iobuf *b;

	pthread_mutex_lock(&pl->lock);
	while (!pl->free)
		pthread_cond_wait(&pl->cv, &pl->lock);
	b = pl->free;
	pl->free = b->next;
	pthread_mutex_unlock(&pl->lock);
	return b;
}

static void pool_put(struct tm_iopool *pl, struct tm_iobuf *b)
{
	pthread_mutex_lock(&pl->lock);
	b->next = pl->free;
	pl->free = b;
	pthread_cond_signal(&pl->cv);
	pthread_mutex_unlock(&pl->lock);
}

/* ---- page state and folio locks --------------------------------- */

static uint8_t pstate(const tm_pager *p, size_t pg)
{
	return atomic_load_explicit(&p->state[pg], memory_order_acquire);
}

static void set_pstate(tm_pager *p, size_t pg, uint8_t v)
{
	atomic_store_explicit(&p->state[pg], v, memory_order_release);
}

static bool swapped(uint8_t st) { return st & TM_PS_SWAPPED; }
static unsigned st_order(uint8_t st) { return st & TM_PS_ORDER; }
static size_t folio_head(size_t pg, unsigned order) { return pg & ~(((size_t)1 << order) - 1); }

static pthread_mutex_t *folio_lock(tm_pager *p, size_t pg)
{
	return &p->locks[pg >> TM_SWAP_MAX_ORDER];
}

/* The folio's first slot + the subpage's index: folio_swap()'s rule. */
static uint64_t slot_of(const tm_pager *p, size_t pg, uint8_t st)
{
	size_t head = folio_head(pg, st_order(st));

	return p->folio_first[pg] + (pg - head);
}

/* ---- creation ----------------------------------------------------- */

static int check_geometry(const tm_pager_config *cfg, size_t *packed,
			  tm_error *err)
{
	const tm_geom *g = tm_region_geom(cfg->region);
	uint32_t sps = tm_swapfile_page_size(cfg->swap);

	if (g->page_size != sps)
		return tm_error_set(err, -EINVAL,
				    "pager for region %s: page size %u differs from swap file %s's %u",
				    tm_region_name(cfg->region), g->page_size,
				    tm_swapfile_path(cfg->swap), sps);
	if (g->kind == TM_META_NONE) {
		*packed = 0;
		return 0;
	}
	if (g->kind != TM_META_MTE)
		return tm_error_set(err, -ENOTSUP,
				    "pager for region %s: the swap tag store holds MTE tags only",
				    tm_region_name(cfg->region));
	*packed = tm_geom_packed_bytes(g);
	return 0;
}

static void free_pager(tm_pager *p)
{
	if (p->locks)
		for (size_t i = 0; i < p->nlocks; i++)
			pthread_mutex_destroy(&p->locks[i]);
	free(p->locks);
	free((void *)p->state);
	free(p->folio_first);
	pool_fini(&p->pool);
	free(p);
}

static int alloc_pager(tm_pager *p)
{
	p->state = calloc(p->npages, sizeof(*p->state));
	p->folio_first = calloc(p->npages, sizeof(*p->folio_first));
	p->nlocks = (p->npages + FOLIO_MAX - 1) / FOLIO_MAX;
	p->locks = calloc(p->nlocks, sizeof(*p->locks));
	if (!p->state || !p->folio_first || !p->locks)
		return -ENOMEM;
	for (size_t i = 0; i < p->nlocks; i++)
		pthread_mutex_init(&p->locks[i], NULL);
	return pool_init(&p->pool, p->ps, p->packed);
}

static int pager_fill(void *ctx, tm_region *r, size_t pg, void *data,
		      uint8_t *tags, bool *tagged, tm_error *err);

int tm_pager_create(const tm_pager_config *cfg, tm_pager **out, tm_error *err)
{
	tm_pager *p;
	size_t packed = 0;
	int rc;

	if (!cfg || !cfg->region || !cfg->swap)
		return tm_error_set(err, -EINVAL, "pager: region and swap file are required");
	rc = check_geometry(cfg, &packed, err);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return tm_error_set(err, -ENOMEM, "pager: out of memory");
	p->r = cfg->region;
	p->sf = cfg->swap;
	p->npages = tm_region_npages(cfg->region);
	p->ps = tm_region_geom(cfg->region)->page_size;
	p->packed = packed;
	p->lazy = cfg->lazy;
	p->mode = cfg->fault_mode;
	if (alloc_pager(p) != 0) {
		free_pager(p);
		return tm_error_set(err, -ENOMEM, "pager for region %s: out of memory for %zu pages",
				    tm_region_name(cfg->region), tm_region_npages(cfg->region));
	}
	tm_swapfile_attach(p->sf, p);
	if (p->lazy && (rc = tm_region_lazy_start(p->r, pager_fill, p, err)) != 0) {
		tm_swapfile_detach(p->sf, p);
		free_pager(p);
		return tm_error_wrap(err, rc, "pager for region %s: lazy swap-in",
				     tm_region_name(cfg->region));
	}
	*out = p;
	return 0;
}

void tm_pager_destroy(tm_pager *p)
{
	if (!p)
		return;
	if (p->lazy)
		tm_region_lazy_stop(p->r);
	tm_pager_drop_all(p);
	tm_swapfile_detach(p->sf, p);
	free_pager(p);
}

tm_region *tm_pager_region(const tm_pager *p) { return p->r; }

bool tm_swap_page_swapped(const tm_pager *p, size_t pg)
{
	return pg < p->npages && swapped(pstate(p, pg));
}

int tm_swap_page_order(const tm_pager *p, size_t pg)
{
	uint8_t st = pg < p->npages ? pstate(p, pg) : 0;

	return swapped(st) ? (int)st_order(st) : -1;
}

uint64_t tm_swap_page_slot(const tm_pager *p, size_t pg)
{
	uint8_t st = pg < p->npages ? pstate(p, pg) : 0;

	return swapped(st) ? slot_of(p, pg, st) : 0;
}

size_t tm_pager_swapped_pages(const tm_pager *p)
{
	return atomic_load(&p->nswapped);
}

/* ---- releasing a swapped page ------------------------------------ */

/* Forget page pg's swap copy: free its tags and slot, mark it resident.
 * Under the folio lock. */
static void release_page(tm_pager *p, size_t pg)
{
	uint8_t st = pstate(p, pg);
	uint64_t slot = slot_of(p, pg, st);
	uint64_t val;

	if (p->packed && tm_tagstore_take(&p->sf->ts, slot, &val))
		tm_ts_value_free(val);
	tm_slots_free(&p->sf->slots, slot, 1);
	set_pstate(p, pg, 0);
	atomic_fetch_sub(&p->nswapped, 1);
}

/* A restored page is released, and counted. */
static void commit_restore(tm_pager *p, size_t pg, bool tagged, bool fault)
{
	release_page(p, pg);
	tm_count(&p->sf->ctr.pages_in, 1);
	if (tagged)
		tm_count(&p->sf->ctr.tag_restores, 1);
	if (fault)
		tm_count(&p->sf->ctr.pages_in_fault, 1);
}

size_t tm_pager_drop_all(tm_pager *p)
{
	size_t n = 0;

	for (size_t pg = 0; pg < p->npages; pg++) {
		if (!swapped(pstate(p, pg)))
			continue;
		pthread_mutex_lock(folio_lock(p, pg));
		if (swapped(pstate(p, pg))) {
			release_page(p, pg);
			n++;
		}
		pthread_mutex_unlock(folio_lock(p, pg));
	}
	return n;
}

/* ---- swap-out ------------------------------------------------------ */

struct out_folio {
	size_t pg, n;
	uint64_t first;
	struct tm_iobuf *b;
	bool tagged[FOLIO_MAX];
	bool zero[FOLIO_MAX];
};

/* Read every subpage's data and tags into the buffer. A page that lazy
 * placement has not placed yet is zero and untagged: reading it would only
 * fault it in. */
static int gather(tm_pager *p, struct out_folio *f, tm_error *err)
{
	for (size_t i = 0; i < f->n; i++) {
		size_t pg = f->pg + i;
		uint8_t *d = f->b->data + i * p->ps;
		int rc;

		if (p->lazy && !tm_region_page_present(p->r, pg)) {
			f->zero[i] = true;
			f->tagged[i] = false;
			continue;
		}
		rc = tm_region_read_page(p->r, pg, d,
					 p->packed ? f->b->tags + i * p->packed : NULL,
					 err);
		if (rc)
			return tm_error_wrap(err, rc, "swap-out of region %s page %zu",
					     tm_region_name(p->r), pg);
		f->tagged[i] = p->packed && tm_region_page_tagged(p->r, pg);
		f->zero[i] = tm_mem_is_zero(d, p->ps);
	}
	return 0;
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

/* Build every tagged subpage's value, then insert them with one lock
 * round trip. On failure nothing is stored. */
static int store_tags(tm_pager *p, struct out_folio *f, tm_error *err)
{
	uint64_t vals[FOLIO_MAX];
	int rc = 0;
	size_t i;

	for (i = 0; i < f->n && !rc; i++) {
		vals[i] = 0;
		if (f->tagged[i])
			rc = tm_ts_value_make(&p->sf->ts, f->b->tags + i * p->packed,
					      &vals[i], err);
	}
	if (!rc)
		rc = tm_tagstore_put_batch(&p->sf->ts, f->first, f->n, vals, err);
	if (rc) {
		for (size_t k = 0; k < i; k++)
			if (vals[k])
				tm_ts_value_free(vals[k]);
		return tm_error_wrap(err, rc, "storing the tags of region %s folio at page %zu",
				     tm_region_name(p->r), f->pg);
	}
	return 0;
}

static void mark_swapped(tm_pager *p, struct out_folio *f, unsigned order)
{
	struct tm_swap_counters *c = &p->sf->ctr;
	size_t ntag = 0, nzero = 0;

	for (size_t i = 0; i < f->n; i++) {
		p->folio_first[f->pg + i] = f->first;
		set_pstate(p, f->pg + i, (uint8_t)(TM_PS_SWAPPED | order |
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
		if (swapped(pstate(p, f->pg + i)))
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
	rc = write_data(p, f, err);
	if (!rc)
		rc = store_tags(p, f, err);
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
	f.b = pool_get(&p->pool);
	pthread_mutex_lock(folio_lock(p, pg));
	rc = swap_out_locked(p, &f, order, err);
	pthread_mutex_unlock(folio_lock(p, pg));
	pool_put(&p->pool, f.b);
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

/* ---- swap-in ------------------------------------------------------- */

/* Decode page pg's stored tags (left in the store until commit). *tagged
 * is false when the page stored none (it was untagged). */
static int load_tags(tm_pager *p, size_t pg, uint8_t st, uint8_t *tags,
		     bool *tagged, tm_error *err)
{
	uint64_t val;
	int rc;

	*tagged = p->packed && tm_tagstore_peek(&p->sf->ts, slot_of(p, pg, st), &val);
	if (!*tagged)
		return 0;
	rc = tm_ts_value_decode(&p->sf->ts, val, tags, err);
	return rc ? tm_error_wrap(err, rc, "tags of region %s page %zu (slot %" PRIu64 ")",
				  tm_region_name(p->r), pg, slot_of(p, pg, st)) : 0;
}

/* Read one subpage (data and tags) without changing anything. */
static int load_page(tm_pager *p, size_t pg, uint8_t st, uint8_t *data,
		     uint8_t *tags, bool *tagged, tm_error *err)
{
	int rc = 0;

	if (st & TM_PS_ZERO)
		memset(data, 0, p->ps);
	else
		rc = tm_swapfile_read(p->sf, slot_of(p, pg, st), data, 1, err);
	if (rc)
		return tm_error_wrap(err, rc, "swap-in of region %s page %zu",
				     tm_region_name(p->r), pg);
	return load_tags(p, pg, st, tags, tagged, err);
}

/* Where a fault wants its page: the fill callback's buffers. */
struct fault_out {
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
	uint8_t st = pstate(p, pg);
	unsigned order = st_order(st);

	f->head = folio_head(pg, order);
	f->n = (size_t)1 << order;
	f->first = p->folio_first[pg];
	for (size_t i = 0; i < f->n; i++) {
		uint8_t s = pstate(p, f->head + i);

		f->sw[i] = swapped(s) && st_order(s) == order &&
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
static void commit_folio(tm_pager *p, struct folio_in *f, const struct fault_out *fo)
{
	uint64_t vals[FOLIO_MAX];
	bool want[FOLIO_MAX];
	size_t placed = 0, ntag = 0;

	for (size_t i = 0; i < f->n; i++)
		want[i] = f->done[i] && f->tagged[i];
	if (p->packed)
		tm_tagstore_take_batch(&p->sf->ts, f->first, f->n, want, vals);
	for (size_t i = 0, run = 0; i <= f->n; i++) {
		if (i < f->n && f->done[i]) {
			run++;
			if (want[i] && vals[i])
				tm_ts_value_free(vals[i]);
			set_pstate(p, f->head + i, 0);
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
		       struct fault_out *fo, tm_error *err)
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
static int restore_folio_locked(tm_pager *p, size_t pg, struct fault_out *fo,
				tm_error *err)
{
	struct folio_in f;
	struct tm_iobuf *b;
	int rc;

	folio_in_init(p, &f, pg);
	b = pool_get(&p->pool);
	rc = load_folio_data(p, &f, b->data, err);
	if (!rc)
		rc = load_folio_tags(p, &f, b->tags, err);
	if (!rc)
		rc = place_folio(p, &f, b, fo, err);
	commit_folio(p, &f, fo);
	pool_put(&p->pool, b);
	if (!rc)
		tm_count(&p->sf->ctr.folio_swapins, 1);
	return rc;
}

/* Page-by-page restore of a swapped subpage through the region. */
static int restore_page_locked(tm_pager *p, size_t pg, tm_error *err)
{
	struct tm_iobuf *b = pool_get(&p->pool);
	bool tagged;
	int rc = load_page(p, pg, pstate(p, pg), b->data, b->tags, &tagged, err);

	if (!rc && (rc = tm_region_write_page(p->r, pg, b->data,
					      tagged ? b->tags : NULL, err)) != 0)
		rc = tm_error_wrap(err, rc, "swap-in of region %s page %zu",
				   tm_region_name(p->r), pg);
	if (!rc) {
		commit_restore(p, pg, tagged, false);
		tm_count(&p->sf->ctr.page_swapins, 1);
	}
	pool_put(&p->pool, b);
	return rc;
}

int tm_swap_in_page(tm_pager *p, size_t pg, tm_error *err)
{
	int rc = 0;

	if (pg >= p->npages)
		return tm_error_set(err, -EINVAL, "swap-in of region %s: page %zu beyond its %zu pages",
				    tm_region_name(p->r), pg, p->npages);
	pthread_mutex_lock(folio_lock(p, pg));
	if (swapped(pstate(p, pg)))
		rc = restore_page_locked(p, pg, err);
	pthread_mutex_unlock(folio_lock(p, pg));
	return rc;
}

/* Restore what of page pg's folio lies in [lo, hi); returns the next page
 * to look at. */
static size_t swap_in_at(tm_pager *p, size_t pg, size_t lo, size_t hi,
			 int *rc, tm_error *err)
{
	pthread_mutex_t *lk = folio_lock(p, pg);
	size_t next = pg + 1;

	pthread_mutex_lock(lk);
	uint8_t st = pstate(p, pg);

	if (swapped(st)) {
		unsigned order = st_order(st);
		size_t head = folio_head(pg, order), n = (size_t)1 << order;

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
		if (!swapped(pstate(p, q))) {
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
	struct tm_iobuf *b = direct ? pool_get(&p->pool) : NULL;
	int rc = load_page(p, pg, pstate(p, pg), b ? b->data : data, tags,
			   tagged, err);

	if (b) {
		if (!rc)
			memcpy(data, b->data, p->ps);
		pool_put(&p->pool, b);
	}
	if (!rc) {
		commit_restore(p, pg, *tagged, true);
		tm_count(&p->sf->ctr.page_swapins, 1);
	}
	return rc;
}

/* Restore page pg for a fault, under its folio lock. 1: not swapped. */
static int fill_locked(tm_pager *p, size_t pg, void *data, uint8_t *tags,
		       bool *tagged, tm_error *err)
{
	uint8_t st = pstate(p, pg);
	struct fault_out fo = { pg, data, tags, tagged };

	if (!swapped(st))
		return 1;
	if (p->mode == TM_SWAPIN_FOLIO)
		return restore_folio_locked(p, pg, &fo, err);
	return fill_page_locked(p, pg, data, tags, tagged, err);
}

static int pager_fill(void *ctx, tm_region *r, size_t pg, void *data,
		      uint8_t *tags, bool *tagged, tm_error *err)
{
	tm_pager *p = ctx;
	int rc = 1;

	(void)r;
	/* Not swapped: never written, or discarded; reads as zero. Checked
	 * without the folio lock first (see swap.h "Locking"). */
	if (swapped(pstate(p, pg))) {
		pthread_mutex_lock(folio_lock(p, pg));
		rc = fill_locked(p, pg, data, tags, tagged, err);
		pthread_mutex_unlock(folio_lock(p, pg));
	}
	if (rc == 1) {
		memset(data, 0, p->ps);
		*tagged = false;
		rc = 0;
	}
	return rc;
}

/* ---- discard ------------------------------------------------------- */

/* Discard [pg, end) inside one folio-lock block. */
static int discard_block(tm_pager *p, size_t pg, size_t end, tm_error *err)
{
	size_t run = SIZE_MAX;
	int rc = 0;

	for (size_t q = pg; q <= end && !rc; q++) {
		bool sw = q < end && swapped(pstate(p, q));

		if (q < end && !sw) {
			if (run == SIZE_MAX)
				run = q;
			continue;
		}
		if (run != SIZE_MAX) {
			rc = tm_region_discard(p->r, run, q - run, err);
			run = SIZE_MAX;
		}
		if (sw) {
			release_page(p, q);
			tm_count(&p->sf->ctr.pages_discarded, 1);
		}
	}
	return rc;
}

int tm_swap_discard(tm_pager *p, size_t pg, size_t n, tm_error *err)
{
	int rc = 0;

	if (pg > p->npages || n > p->npages - pg)
		return tm_error_set(err, -EINVAL, "discard in region %s: range %zu+%zu beyond its %zu pages",
				    tm_region_name(p->r), pg, n, p->npages);
	for (size_t q = pg; !rc && q < pg + n;) {
		size_t blk_end = (q / FOLIO_MAX + 1) * FOLIO_MAX;
		size_t end = blk_end < pg + n ? blk_end : pg + n;

		pthread_mutex_lock(folio_lock(p, q));
		rc = discard_block(p, q, end, err);
		pthread_mutex_unlock(folio_lock(p, q));
		q = end;
	}
	return rc;
}
