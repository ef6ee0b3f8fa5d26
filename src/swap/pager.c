/*
 * pager.c - a region attached to a swap file: creation and teardown, the
 * per-page queries, releasing a swapped page, and discard (MADV_DONTNEED of
 * swapped or resident pages). Swap-out is in swapout.c, swap-in and the
 * lazy fill callback in swapin.c. Locking: include/tagmem/swap.h.
 */
#include "swap/swap_internal.h"

#include "common/abi.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FOLIO_MAX (1u << TM_SWAP_MAX_ORDER)

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
	tm_iopool_fini(&p->pool);
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
	return tm_iopool_init(&p->pool, p->ps, p->packed);
}

int tm_pager_create(const tm_pager_config *ucfg, tm_pager **out, tm_error *err)
{
	tm_pager_config copy;     /* the caller's, at this library's size */
	const tm_pager_config *cfg = &copy;
	tm_pager *p;
	size_t packed = 0;
	int rc = TM_ABI_COPY_IN(tm_pager_config, &copy, ucfg, err);

	if (rc)
		return rc;
	if (!cfg->region || !cfg->swap)
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
	tm_tagworker_start(&p->tw);
	tm_swapfile_attach(p->sf, p);
	if (p->lazy && (rc = tm_region_lazy_start(p->r, tm_pager_fill, p, err)) != 0) {
		tm_swapfile_detach(p->sf, p);
		tm_tagworker_stop(&p->tw);
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
	tm_tagworker_stop(&p->tw);
	free_pager(p);
}

tm_region *tm_pager_region(const tm_pager *p) { return p->r; }

bool tm_swap_page_swapped(const tm_pager *p, size_t pg)
{
	return pg < p->npages && tm_ps_swapped(tm_pstate(p, pg));
}

int tm_swap_page_order(const tm_pager *p, size_t pg)
{
	uint8_t st = pg < p->npages ? tm_pstate(p, pg) : 0;

	return tm_ps_swapped(st) ? (int)tm_ps_order(st) : -1;
}

uint64_t tm_swap_page_slot(const tm_pager *p, size_t pg)
{
	uint8_t st = pg < p->npages ? tm_pstate(p, pg) : 0;

	return tm_ps_swapped(st) ? tm_slot_of(p, pg, st) : 0;
}

size_t tm_pager_swapped_pages(const tm_pager *p)
{
	return atomic_load(&p->nswapped);
}

/* ---- releasing a swapped page ------------------------------------ */

/* Forget page pg's swap copy: free its tags and slot, mark it resident.
 * Under the folio lock. */
void tm_pager_release_page(tm_pager *p, size_t pg)
{
	uint8_t st = tm_pstate(p, pg);
	uint64_t slot = tm_slot_of(p, pg, st);

	if (p->packed)
		tm_tagstore_drop(&p->sf->ts, slot);
	tm_slots_free(&p->sf->slots, slot, 1);
	tm_set_pstate(p, pg, 0);
	atomic_fetch_sub(&p->nswapped, 1);
}

/* A restored page is released, and counted. */
void tm_pager_commit_restore(tm_pager *p, size_t pg, bool tagged, bool fault)
{
	tm_pager_release_page(p, pg);
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
		if (!tm_ps_swapped(tm_pstate(p, pg)))
			continue;
		pthread_mutex_lock(tm_folio_lock(p, pg));
		if (tm_ps_swapped(tm_pstate(p, pg))) {
			tm_pager_release_page(p, pg);
			n++;
		}
		pthread_mutex_unlock(tm_folio_lock(p, pg));
	}
	return n;
}

/* ---- discard ------------------------------------------------------- */

/* Discard [pg, end) inside one folio-lock block. */
static int discard_block(tm_pager *p, size_t pg, size_t end, tm_error *err)
{
	size_t run = SIZE_MAX;
	int rc = 0;

	for (size_t q = pg; q <= end && !rc; q++) {
		bool sw = q < end && tm_ps_swapped(tm_pstate(p, q));

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
			tm_pager_release_page(p, q);
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

		pthread_mutex_lock(tm_folio_lock(p, q));
		rc = discard_block(p, q, end, err);
		pthread_mutex_unlock(tm_folio_lock(p, q));
		q = end;
	}
	return rc;
}
