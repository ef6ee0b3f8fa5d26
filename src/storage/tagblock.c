/*
 * tagblock.c - reserving and releasing tag blocks, the one place where the
 * four policies differ:
 *
 *   static      the tag storage always holds tags: only reference counts.
 *   cma         one alloc_contig_range per block: a per-CPU LRU drain
 *               (lru_cache_disable, which IPIs every CPU), then every
 *               occupant leaves: movable folios are migrated, clean page
 *               cache is dropped (alloc_contig_range reclaims clean file
 *               pages instead of migrating them: mm/page_alloc.c,
 *               __alloc_contig_migrate_range -> reclaim_clean_pages_from_list).
 *               A pinned occupant makes the reservation fail.
 *   cma-fast    free frames of the block are first taken straight off the
 *               buddy lists (RFC v2 patch 26, take_page_off_buddy); only when
 *               occupants remain does it fall back to the cma path.
 *   cleancache  the block's frames can only hold clean page cache, which is
 *               dropped: no drain, no copy, never pinned.
 *
 * A block is reserved when the first tagged frame in its range appears and
 * released when the last one goes (blk_tagged counts them).
 */
#include "storage/sim_internal.h"

#include <errno.h>

static inline uint32_t block_lo(const struct tm_ss_sim *s, uint32_t b)
{
	return s->tag_base + b * s->bsz;
}

void tm_ssi_free_range(struct tm_ss_sim *s, uint32_t pfn, unsigned order)
{
	uint32_t end = pfn + (1u << order);

	if (s->iso_lo == SS_NIL || end <= s->iso_lo || pfn >= s->iso_hi) {
		tm_ssi_buddy_free(s, pfn, order);
		return;
	}
	if (order == 0) {
		s->fr[pfn].state = FS_ISOL;
		s->fr[pfn].order = 0;
		return;
	}
	s->fr[pfn].state = FS_TAIL;
	tm_ssi_free_range(s, pfn, order - 1);
	tm_ssi_free_range(s, pfn + (1u << (order - 1)), order - 1);
}

/* One look at the block's frames: is any occupant pinned, is it all free? */
static void survey(const struct tm_ss_sim *s, uint32_t lo, uint32_t hi, bool *pinned, bool *free)
{
	*pinned = false;
	*free = true;
	for (uint32_t f = lo; f < hi;) {
		uint32_t h = tm_ssi_block_head(s, f);

		if (s->fr[h].state != FS_FREE)
			*free = false;
		if (s->fr[h].state == FS_USED && s->obj[s->fr[h].owner].pins)
			*pinned = true;
		f = h + (1u << s->fr[h].order);
	}
}

/* Take every free frame of [lo, hi) off the buddy lists. */
static void take_free_frames(struct tm_ss_sim *s, uint32_t lo, uint32_t hi, bool charge)
{
	for (uint32_t f = lo; f < hi; f++) {
		uint32_t h = tm_ssi_block_head(s, f);

		if (s->fr[h].state != FS_FREE)
			continue;
		tm_ssi_buddy_take_from(s, h, f, 0);
		s->fr[f].state = FS_ISOL;
		if (charge) {
			s->st.frames_taken_fast++;
			ss_cost(s, TM_SS_COST_TAKEOFF_FRAME, 1);
		}
	}
}

/* Move every occupant of [lo, hi) away: drop page cache, migrate the rest.
 * Free frames are isolated first so no migration lands inside the range. */
static int evict_occupants(struct tm_ss_sim *s, uint32_t lo, uint32_t hi)
{
	take_free_frames(s, lo, hi, false);
	for (uint32_t f = lo; f < hi; f++) {
		uint32_t h = tm_ssi_block_head(s, f);

		if (s->fr[h].state == FS_USED) {
			uint32_t id = s->fr[h].owner;

			if (s->obj[id].kind == TM_SS_PAGECACHE) {
				tm_ssi_drop(s, id);
			} else {
				int r = tm_ssi_migrate(s, id, false);

				if (r)
					return r;
			}
		}
	}
	return 0;
}

void tm_ssi_isolate_begin(struct tm_ss_sim *s, uint32_t lo, uint32_t hi)
{
	s->iso_lo = lo;
	s->iso_hi = hi;
	take_free_frames(s, lo, hi, false);
}

void tm_ssi_isolate_end(struct tm_ss_sim *s, uint32_t lo, uint32_t hi)
{
	s->iso_lo = s->iso_hi = SS_NIL;
	for (uint32_t f = lo; f < hi; f++)
		if (s->fr[f].state == FS_ISOL)
			tm_ssi_buddy_free(s, f, 0);
}

static void finish_reservation(struct tm_ss_sim *s, uint32_t b, uint32_t lo, uint32_t hi)
{
	s->iso_lo = s->iso_hi = SS_NIL;
	for (uint32_t f = lo; f < hi; f++) {
		s->fr[f].state = FS_RESV;
		s->fr[f].order = 0;
	}
	s->blk_resv[b] = 1;
	s->tag_resv += s->bsz;
	s->st.reservations++;
}

static int reserve(struct tm_ss_sim *s, uint32_t b)
{
	uint32_t lo = block_lo(s, b), hi = lo + s->bsz;
	tm_ss_policy pol = s->cfg.policy;

	bool pinned, free;

	survey(s, lo, hi, &pinned, &free);
	if (pinned) {
		/* alloc_contig_range drains, tries, and gives up with -EBUSY */
		s->st.contig_calls++;
		s->st.drains++;
		ss_cost(s, TM_SS_COST_CONTIG_RANGE, 1);
		ss_cost(s, TM_SS_COST_DRAIN, 1);
		s->st.fail_pinned++;
		return -EBUSY;
	}
	s->iso_lo = lo;
	s->iso_hi = hi;
	if (pol == TM_SS_CMA_FAST || pol == TM_SS_CLEANCACHE) {
		take_free_frames(s, lo, hi, true);
		if (free) {
			finish_reservation(s, b, lo, hi);
			return 0;
		}
	}
	if (pol != TM_SS_CLEANCACHE) {
		s->st.contig_calls++;
		s->st.drains++;
		ss_cost(s, TM_SS_COST_CONTIG_RANGE, 1);
		ss_cost(s, TM_SS_COST_DRAIN, 1);
	}
	if (evict_occupants(s, lo, hi)) {
		tm_ssi_isolate_end(s, lo, hi);
		s->st.fail_nomem++;
		return -ENOMEM;
	}
	finish_reservation(s, b, lo, hi);
	return 0;
}

static void release(struct tm_ss_sim *s, uint32_t b)
{
	uint32_t lo = block_lo(s, b);

	for (uint32_t f = lo; f < lo + s->bsz; f++)
		tm_ssi_buddy_free(s, f, 0);
	s->blk_resv[b] = 0;
	s->tag_resv -= s->bsz;
	s->st.releases++;
}

/* Frames of [pfn, end) that fall in block b's data range. */
static uint32_t overlap(const struct tm_ss_sim *s, uint32_t b, uint32_t pfn, uint32_t end)
{
	uint32_t lo = b * s->group, hi = lo + s->group;

	return (end < hi ? end : hi) - (pfn > lo ? pfn : lo);
}

int tm_ssi_tags_get(struct tm_ss_sim *s, uint32_t pfn, unsigned order)
{
	uint32_t end = pfn + (1u << order);
	uint32_t b0 = ss_block_of(s, pfn), b1 = ss_block_of(s, end - 1);

	for (uint32_t b = b0; b <= b1; b++) {
		if (s->blk_resv[b])
			continue;
		int r = reserve(s, b);

		if (r) {
			for (uint32_t u = b0; u < b; u++)
				if (s->blk_tagged[u] == 0 && s->blk_resv[u])
					release(s, u);
			return r;
		}
	}
	for (uint32_t b = b0; b <= b1; b++)
		s->blk_tagged[b] += overlap(s, b, pfn, end);
	return 0;
}

void tm_ssi_tags_put(struct tm_ss_sim *s, uint32_t pfn, unsigned order)
{
	uint32_t end = pfn + (1u << order);
	uint32_t b0 = ss_block_of(s, pfn), b1 = ss_block_of(s, end - 1);

	for (uint32_t b = b0; b <= b1; b++) {
		s->blk_tagged[b] -= overlap(s, b, pfn, end);
		if (s->blk_tagged[b] == 0 && s->reuse)
			release(s, b);
	}
}
