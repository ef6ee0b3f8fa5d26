/*
 * buddy.c - the storage simulator's buddy allocator: free lists per migrate
 * type and order as intrusive index lists over the per-frame arrays, split
 * on allocation, merge on free, Linux-style fallback stealing between the
 * unmovable / movable / reclaimable pageblocks, and take-off of chosen free
 * frames (take_page_off_buddy, which the cma-fast policy uses).
 *
 * Two pools never merge into each other: the data frames and the tag storage
 * (type CMA). Every operation is O(order), except claiming a whole pageblock
 * during fallback, which walks that pageblock once, as Linux's
 * move_freepages_block does.
 */
#include "storage/sim_internal.h"

static inline uint32_t region_start(const struct tm_ss_sim *s, uint32_t pfn)
{
	return ss_in_tag(s, pfn) ? s->tag_base : 0;
}

static inline uint32_t region_end(const struct tm_ss_sim *s, uint32_t pfn)
{
	return ss_in_tag(s, pfn) ? s->nframes : s->tag_base;
}

static void count_free(struct tm_ss_sim *s, uint32_t pfn, unsigned mt, int64_t n)
{
	s->nfree_mt[mt] += (uint64_t)n;
	if (ss_in_tag(s, pfn)) {
		s->free_tag += (uint64_t)n;
	} else {
		s->free_data += (uint64_t)n;
		s->pbfree[pfn >> SS_PB_ORDER] = (uint16_t)(s->pbfree[pfn >> SS_PB_ORDER] + n);
	}
}

static void list_add(struct tm_ss_sim *s, uint32_t pfn, unsigned order)
{
	unsigned mt = ss_mt_of(s, pfn);
	uint32_t h = s->head[mt][order];

	s->fr[pfn].next = h;
	s->fr[pfn].prev = SS_NIL;
	if (h != SS_NIL)
		s->fr[h].prev = pfn;
	s->head[mt][order] = pfn;
	s->nonempty[mt] |= (uint16_t)(1u << order);
	s->fr[pfn].state = FS_FREE;
	s->fr[pfn].order = (uint8_t)order;
	s->freeord[pfn] = (uint8_t)(order + 1);
	count_free(s, pfn, mt, (int64_t)1 << order);
}

/* Unlink a free head; its state stays FS_FREE until the caller changes it. */
static void list_del(struct tm_ss_sim *s, uint32_t pfn)
{
	unsigned order = s->fr[pfn].order;
	unsigned mt = ss_mt_of(s, pfn);
	uint32_t n = s->fr[pfn].next, p = s->fr[pfn].prev;

	if (p != SS_NIL)
		s->fr[p].next = n;
	else if ((s->head[mt][order] = n) == SS_NIL)
		s->nonempty[mt] &= (uint16_t)~(1u << order);
	if (n != SS_NIL)
		s->fr[n].prev = p;
	s->fr[pfn].next = s->fr[pfn].prev = SS_NIL;
	s->freeord[pfn] = 0;
	count_free(s, pfn, mt, -((int64_t)1 << order));
}

void tm_ssi_buddy_init(struct tm_ss_sim *s)
{
	for (unsigned mt = 0; mt < MT_COUNT; mt++)
		for (unsigned o = 0; o < SS_NORDERS; o++)
			s->head[mt][o] = SS_NIL;
	for (uint32_t pb = 0; pb < s->npb; pb++)
		s->pbtype[pb] = MT_MOVABLE; /* Linux boots with movable pageblocks */
	uint32_t end = s->reuse ? s->nframes : s->tag_base;

	for (uint32_t pfn = 0; pfn < end;) {
		unsigned o = TM_SS_MAX_ORDER;

		while ((pfn & ((1u << o) - 1)) || pfn + (1u << o) > region_end(s, pfn))
			o--;
		list_add(s, pfn, o);
		pfn += 1u << o;
	}
}

void tm_ssi_buddy_free(struct tm_ss_sim *s, uint32_t pfn, unsigned order)
{
	uint32_t rs = region_start(s, pfn), re = region_end(s, pfn);

	s->fr[pfn].state = FS_TAIL;
	while (order < TM_SS_MAX_ORDER) {
		uint32_t size = 1u << order;
		uint32_t buddy = pfn ^ size;

		if (buddy < rs || buddy + size > re)
			break;
		if (s->freeord[buddy] != order + 1)
			break;
		list_del(s, buddy);
		s->fr[buddy].state = FS_TAIL;
		pfn &= ~size;
		order++;
	}
	list_add(s, pfn, order);
}

/* Split the free block at pfn of order high down to low, freeing the upper
 * halves (Linux's expand()). */
static void expand(struct tm_ss_sim *s, uint32_t pfn, unsigned high, unsigned low)
{
	while (high > low) {
		high--;
		list_add(s, pfn + (1u << high), high);
	}
	s->fr[pfn].order = (uint8_t)low;
}

/* The smallest non-empty order >= order of type mt (nonempty[] says which
 * lists have blocks, so a failed attempt costs no list walk). */
static uint32_t take_head(struct tm_ss_sim *s, unsigned mt, unsigned order)
{
	unsigned m = (unsigned)s->nonempty[mt] >> order;

	if (m == 0)
		return SS_NIL;
	unsigned o = order + (unsigned)__builtin_ctz(m);
	uint32_t p = s->head[mt][o];

	list_del(s, p);
	expand(s, p, o, order);
	s->fr[p].state = FS_TAIL;
	return p;
}

/* Re-type a data pageblock and move its free blocks to the new type's lists. */
static void claim_pageblock(struct tm_ss_sim *s, uint32_t pb, unsigned mt)
{
	uint32_t lo = pb << SS_PB_ORDER;
	uint32_t hi = lo + SS_PB_FRAMES < s->tag_base ? lo + SS_PB_FRAMES : s->tag_base;

	for (uint32_t p = lo; p < hi; p += 1u << s->fr[p].order)
		if (s->fr[p].state == FS_FREE)
			list_del(s, p); /* stays marked FS_FREE for the second pass */
	s->pbtype[pb] = (uint8_t)mt;
	for (uint32_t p = lo; p < hi; p += 1u << s->fr[p].order)
		if (s->fr[p].state == FS_FREE)
			list_add(s, p, s->fr[p].order);
}

static const unsigned fallbacks[MT_COUNT][2] = {
	[MT_UNMOVABLE] = { MT_RECLAIMABLE, MT_MOVABLE },
	[MT_MOVABLE] = { MT_RECLAIMABLE, MT_UNMOVABLE },
	[MT_RECLAIMABLE] = { MT_UNMOVABLE, MT_MOVABLE },
	[MT_CMA] = { MT_CMA, MT_CMA },
};

/* Linux steals the largest free block of another type, and takes the whole
 * pageblock when the block is large or the allocation is not movable and at
 * least half the pageblock is free (free pages only: used pages of the same
 * type are not tracked here). */
static uint32_t steal(struct tm_ss_sim *s, unsigned order, unsigned mt)
{
	/* the largest order >= order that either fallback type has, the first
	 * fallback type first (what scanning orders down, types in turn, finds) */
	unsigned f0 = fallbacks[mt][0], f1 = fallbacks[mt][1];
	unsigned m = ((unsigned)s->nonempty[f0] | s->nonempty[f1]) >> order << order;

	if (m == 0)
		return SS_NIL;
	unsigned o = 31u - (unsigned)__builtin_clz(m);
	uint32_t p = s->head[f0][o] != SS_NIL ? s->head[f0][o] : s->head[f1][o];
	uint32_t pb = p >> SS_PB_ORDER;
	bool big = o >= TM_SS_MAX_ORDER / 2 || mt != MT_MOVABLE;

	if (o == TM_SS_MAX_ORDER || (big && s->pbfree[pb] >= SS_PB_FRAMES / 2))
		claim_pageblock(s, pb, mt);
	list_del(s, p);
	expand(s, p, o, order);
	s->fr[p].state = FS_TAIL;
	return p;
}

uint32_t tm_ssi_buddy_alloc_data(struct tm_ss_sim *s, unsigned order, unsigned mt)
{
	uint32_t p = take_head(s, mt, order);

	return p != SS_NIL ? p : steal(s, order, mt);
}

uint32_t tm_ssi_buddy_alloc_tag(struct tm_ss_sim *s, unsigned order)
{
	return take_head(s, MT_CMA, order);
}

uint32_t tm_ssi_block_head(const struct tm_ss_sim *s, uint32_t pfn)
{
	for (unsigned k = 0; k < SS_NORDERS; k++) {
		uint32_t h = pfn & ~((1u << k) - 1);

		if (s->fr[h].state != FS_TAIL && pfn - h < (1u << s->fr[h].order))
			return h;
	}
	return SS_NIL;
}

void tm_ssi_buddy_take(struct tm_ss_sim *s, uint32_t pfn, unsigned order)
{
	tm_ssi_buddy_take_from(s, tm_ssi_block_head(s, pfn), pfn, order);
}

void tm_ssi_buddy_take_from(struct tm_ss_sim *s, uint32_t h, uint32_t pfn, unsigned order)
{
	unsigned o = s->fr[h].order;

	list_del(s, h);
	s->fr[h].state = FS_TAIL;
	while (o > order) {
		uint32_t half;

		o--;
		half = 1u << o;
		if (pfn >= h + half) {
			list_add(s, h, o);
			h += half;
		} else {
			list_add(s, h + half, o);
		}
	}
	s->fr[pfn].order = (uint8_t)order;
}
