/*
 * check.c - the storage simulator's invariant checker, O(frames + objects).
 * Debug builds run it after every event (tm_ss_config.check_invariants);
 * tests call it directly. Each check names the first frame, block or object
 * that breaks it, so a failing test points at the broken operation.
 *
 *   frames    every frame belongs to exactly one block (free block, folio,
 *             tag frame); blocks are aligned and stay inside their pool
 *   lists     free lists hold exactly the free heads, each once, of the
 *             right order and migrate type; the non-empty masks match the
 *             lists; free counters match
 *   objects   present objects own their head frame; tagged folios are
 *             movable data frames (tag-storage frames are never tagged);
 *             pinned folios are where they were pinned (never moved); the
 *             tag storage holds only what the policy allows
 *   blocks    per block, the count of tagged data frames matches the
 *             objects, and (reuse policies) a block holds tags exactly when
 *             that count is non-zero; static keeps all blocks reserved
 *   lru       the page-cache LRU rings hold exactly the present unpinned
 *             page cache of their pool, oldest first, each once
 */
#include "storage/sim_internal.h"

#include <errno.h>
#include <string.h>

#define FAIL(...) tm_error_set(err, -EFAULT, "storage-sim invariant: " __VA_ARGS__)

struct tally {
	uint64_t free_mt[MT_COUNT];
	uint64_t free_heads;
	uint32_t resv, used_tag, used_heads;
};

static bool tag_pool_ok(const struct tm_ss_sim *s, const struct ss_obj *o)
{
	if (o->flags & OF_TAGGED)
		return false;
	switch (s->cfg.policy) {
	case TM_SS_CMA:
	case TM_SS_CMA_FAST:
		return o->kind == TM_SS_MOVABLE || o->kind == TM_SS_PAGECACHE;
	case TM_SS_CLEANCACHE:
		return o->kind == TM_SS_PAGECACHE && o->pins == 0;
	default:
		return false;
	}
}

static int check_head(const struct tm_ss_sim *s, uint32_t pfn, struct tally *t, tm_error *err)
{
	uint32_t size = 1u << s->fr[pfn].order;

	switch (s->fr[pfn].state) {
	case FS_FREE:
		t->free_mt[ss_mt_of(s, pfn)] += size;
		t->free_heads++;
		s->scratch_bits[pfn >> 6] |= 1ull << (pfn & 63);
		return 0;
	case FS_USED: {
		uint32_t id = s->fr[pfn].owner;

		if (id >= s->nobj || s->obj[id].pfn != pfn || !(s->obj[id].flags & OF_PRESENT) ||
		    s->obj[id].order != s->fr[pfn].order)
			return FAIL("folio at frame %u (order %u) is owned by object %u, which is not there",
				    pfn, s->fr[pfn].order, id);
		if (ss_in_tag(s, pfn)) {
			if (!tag_pool_ok(s, &s->obj[id]))
				return FAIL("object %u (%s%s%s) sits in tag storage at frame %u under policy %s",
					    id, s->obj[id].flags & OF_TAGGED ? "tagged " : "",
					    s->obj[id].pins ? "pinned " : "",
					    tm_ss_kind_name(s->obj[id].kind), pfn,
					    tm_ss_policy_name(s->cfg.policy));
			t->used_tag += size;
		}
		const struct ss_obj *o = &s->obj[id];
		bool mov = o->pins == 0 && (o->kind == TM_SS_PAGECACHE ||
					    (o->kind == TM_SS_MOVABLE && o->order == 0 &&
					     !(o->flags & OF_TAGGED)));

		if (s->fr[pfn].movable != mov)
			return FAIL("folio at frame %u: compaction bit %u, object %u says %u", pfn,
				    s->fr[pfn].movable, id, mov);
		t->used_heads++;
		return 0;
	}
	case FS_RESV:
		if (!ss_in_tag(s, pfn) || size != 1)
			return FAIL("frame %u holds tags but is not a tag-storage frame of order 0", pfn);
		t->resv++;
		return 0;
	case FS_ISOL:
		return FAIL("frame %u is still isolated after the event", pfn);
	default:
		return FAIL("frame %u is in no block", pfn);
	}
}

/* Every frame of [lo, hi) is in exactly one aligned block. */
static int check_region(const struct tm_ss_sim *s, uint32_t lo, uint32_t hi, struct tally *t,
			tm_error *err)
{
	for (uint32_t pfn = lo; pfn < hi;) {
		if (s->fr[pfn].state == FS_TAIL)
			return FAIL("frame %u is in no block", pfn);
		uint32_t size = 1u << s->fr[pfn].order;

		if ((pfn & (size - 1)) || pfn + size > hi)
			return FAIL("block at frame %u of order %u is misaligned or leaves its pool [%u, %u)",
				    pfn, s->fr[pfn].order, lo, hi);
		for (uint32_t f = pfn + 1; f < pfn + size; f++) {
			if (s->fr[f].state != FS_TAIL)
				return FAIL("frame %u is in two blocks (heads %u and %u)", f, pfn, f);
			if (s->freeord[f])
				return FAIL("frame %u inside block %u is marked as a free head", f, pfn);
		}
		if (s->freeord[pfn] != (s->fr[pfn].state == FS_FREE ? s->fr[pfn].order + 1 : 0))
			return FAIL("free-order map of frame %u says %u, block says %s order %u", pfn,
				    s->freeord[pfn], s->fr[pfn].state == FS_FREE ? "free" : "used",
				    s->fr[pfn].order);
		int r = check_head(s, pfn, t, err);

		if (r)
			return r;
		pfn += size;
	}
	return 0;
}

static int check_lists(const struct tm_ss_sim *s, const struct tally *t, tm_error *err)
{
	uint64_t heads = 0;

	for (unsigned mt = 0; mt < MT_COUNT; mt++) {
		uint64_t frames = 0;

		for (unsigned o = 0; o < SS_NORDERS; o++) {
			uint32_t prev = SS_NIL;

			if (((s->nonempty[mt] >> o) & 1) != (s->head[mt][o] != SS_NIL))
				return FAIL("free list (type %u, order %u) is %s but marked %s", mt, o,
					    s->head[mt][o] != SS_NIL ? "not empty" : "empty",
					    (s->nonempty[mt] >> o) & 1 ? "not empty" : "empty");

			for (uint32_t p = s->head[mt][o]; p != SS_NIL; prev = p, p = s->fr[p].next) {
				if (p >= s->nframes || !(s->scratch_bits[p >> 6] & (1ull << (p & 63))))
					return FAIL("free list (type %u, order %u) holds frame %u twice or a non-free frame",
						    mt, o, p);
				s->scratch_bits[p >> 6] &= ~(1ull << (p & 63));
				if (s->fr[p].order != o || ss_mt_of(s, p) != mt || s->fr[p].prev != prev)
					return FAIL("free block %u (order %u, type %u) is on list (type %u, order %u)",
						    p, s->fr[p].order, ss_mt_of(s, p), mt, o);
				frames += 1u << o;
				heads++;
			}
		}
		if (frames != t->free_mt[mt] || frames != s->nfree_mt[mt])
			return FAIL("type %u: lists hold %llu free frames, blocks %llu, counter %llu", mt,
				    (unsigned long long)frames, (unsigned long long)t->free_mt[mt],
				    (unsigned long long)s->nfree_mt[mt]);
	}
	if (heads != t->free_heads)
		return FAIL("%llu free blocks are on no free list",
			    (unsigned long long)(t->free_heads - heads));
	if (s->free_tag != t->free_mt[MT_CMA] ||
	    s->free_data != t->free_mt[MT_UNMOVABLE] + t->free_mt[MT_MOVABLE] + t->free_mt[MT_RECLAIMABLE])
		return FAIL("pool free counters %llu/%llu do not match the lists",
			    (unsigned long long)s->free_data, (unsigned long long)s->free_tag);
	return 0;
}

static int check_pageblocks(const struct tm_ss_sim *s, tm_error *err)
{
	for (uint32_t pb = 0; pb < s->npb && (pb << SS_PB_ORDER) < s->tag_base; pb++) {
		uint32_t lo = pb << SS_PB_ORDER, hi = lo + SS_PB_FRAMES;
		uint32_t nfree = 0;

		if (hi > s->tag_base)
			hi = s->tag_base;
		for (uint32_t p = lo; p < hi; p += 1u << s->fr[p].order)
			if (s->fr[p].state == FS_FREE)
				nfree += 1u << s->fr[p].order;
		if (nfree != s->pbfree[pb])
			return FAIL("pageblock %u has %u free frames, counter %u", pb, nfree, s->pbfree[pb]);
	}
	return 0;
}

static uint32_t overlap(const struct tm_ss_sim *s, uint32_t b, uint32_t pfn, uint32_t end)
{
	uint32_t lo = b * s->group, hi = lo + s->group;

	return (end < hi ? end : hi) - (pfn > lo ? pfn : lo);
}

static int check_object(const struct tm_ss_sim *s, uint32_t id, tm_error *err)
{
	const struct ss_obj *o = &s->obj[id];

	if (!(o->flags & OF_LIVE))
		return o->flags || o->pins ? FAIL("freed object %u still has flags %#x", id, o->flags) : 0;
	if (o->flags & OF_PRESENT) {
		if (o->pfn >= s->nframes || s->fr[o->pfn].state != FS_USED || s->fr[o->pfn].owner != id)
			return FAIL("object %u says it is at frame %u, which it does not own", id, o->pfn);
		if (o->pins && o->pfn != o->pin_pfn)
			return FAIL("pinned object %u moved from frame %u to %u", id, o->pin_pfn, o->pfn);
	}
	if ((o->flags & OF_TAGGED) &&
	    (!(o->flags & OF_PRESENT) || o->kind != TM_SS_MOVABLE || ss_in_tag(s, o->pfn)))
		return FAIL("object %u is tagged but is not a movable folio in data frames", id);
	if ((o->flags & (OF_DROPPED | OF_EVICTED)) &&
	    ((o->flags & OF_PRESENT) || o->kind != TM_SS_PAGECACHE))
		return FAIL("object %u is marked dropped but is present or not page cache", id);
	if (o->flags & OF_TAGGED) {
		uint32_t end = o->pfn + (1u << o->order);

		for (uint32_t b = ss_block_of(s, o->pfn); b <= ss_block_of(s, end - 1); b++)
			s->scratch_blk[b] += overlap(s, b, o->pfn, end);
	}
	return 0;
}

static int check_blocks(const struct tm_ss_sim *s, tm_error *err)
{
	for (uint32_t b = 0; b < s->nblocks; b++) {
		uint32_t lo = s->tag_base + b * s->bsz;
		uint32_t nresv = 0;

		for (uint32_t f = lo; f < lo + s->bsz; f++)
			nresv += s->fr[f].state == FS_RESV;
		if (s->scratch_blk[b] != s->blk_tagged[b])
			return FAIL("tag block %u counts %u tagged frames, objects have %u", b,
				    s->blk_tagged[b], s->scratch_blk[b]);
		bool want = s->reuse ? s->blk_tagged[b] > 0 : true;

		if (s->blk_resv[b] != want || nresv != (want ? s->bsz : 0))
			return FAIL("tag block %u (frames %u..%u) has %u tagged data frames but %u of %u frames hold tags",
				    b, lo, lo + s->bsz - 1, s->blk_tagged[b], nresv, s->bsz);
	}
	return 0;
}

static int check_lru(const struct tm_ss_sim *s, tm_error *err)
{
	uint64_t listed = 0, expected = 0;

	for (unsigned l = 0; l < 2; l++) {
		const struct ss_ring *r = &s->lru[l];
		uint64_t seq = 0, live = 0;

		if (r->tail < r->head || r->tail - r->head > r->mask + 1)
			return FAIL("LRU %u spans %llu..%llu in a ring of %llu", l,
				    (unsigned long long)r->head, (unsigned long long)r->tail,
				    (unsigned long long)r->mask + 1);
		for (uint64_t p = r->head; p < r->tail; p++) {
			uint32_t id = r->id[p & r->mask];

			if (id == SS_NIL)
				continue;
			const struct ss_obj *o = &s->obj[id];

			if (id >= s->nobj || o->lru_slot != (p & r->mask) || o->lru_seq <= seq ||
			    o->kind != TM_SS_PAGECACHE || !(o->flags & OF_PRESENT) || o->pins ||
			    (unsigned)ss_in_tag(s, o->pfn) != l)
				return FAIL("LRU %u is broken at position %llu (object %u)", l,
					    (unsigned long long)p, id);
			seq = o->lru_seq;
			live++;
		}
		if (live != r->live)
			return FAIL("LRU %u holds %llu objects, its counter says %llu", l,
				    (unsigned long long)live, (unsigned long long)r->live);
		listed += live;
	}
	for (uint32_t id = 0; id < s->nobj; id++) {
		const struct ss_obj *o = &s->obj[id];
		bool want = o->kind == TM_SS_PAGECACHE && (o->flags & OF_PRESENT) && o->pins == 0;

		expected += want;
		if (!want && o->lru_slot != SS_NIL && (o->flags & OF_LIVE))
			return FAIL("object %u is off the LRU but has slot %u", id, o->lru_slot);
	}
	if (listed != expected)
		return FAIL("LRU lists hold %llu objects, %llu page-cache objects should be there",
			    (unsigned long long)listed, (unsigned long long)expected);
	return 0;
}

int tm_ss_check(const tm_ss_sim *s, tm_error *err)
{
	struct tally t;
	int r;

	memset(&t, 0, sizeof(t));
	memset(s->scratch_bits, 0, (s->nframes + 63) / 64 * sizeof(uint64_t));
	memset(s->scratch_blk, 0, s->nblocks * sizeof(uint32_t));
	if (s->iso_lo != SS_NIL)
		return FAIL("frames %u..%u are still being isolated", s->iso_lo, s->iso_hi);
	if ((r = check_region(s, 0, s->tag_base, &t, err)) ||
	    (r = check_region(s, s->tag_base, s->nframes, &t, err)) ||
	    (r = check_lists(s, &t, err)) || (r = check_pageblocks(s, err)))
		return r;
	if (t.resv != s->tag_resv || t.used_tag != s->tag_used)
		return FAIL("tag storage: %u frames hold tags (counter %u), %u hold data (counter %u)",
			    t.resv, s->tag_resv, t.used_tag, s->tag_used);
	uint32_t present = 0;

	for (uint32_t id = 0; id < s->nobj; id++) {
		if ((r = check_object(s, id, err)))
			return r;
		present += (s->obj[id].flags & OF_PRESENT) != 0;
	}
	if (present != t.used_heads)
		return FAIL("%u objects are present but %u folios are allocated", present, t.used_heads);
	if ((r = check_blocks(s, err)))
		return r;
	return check_lru(s, err);
}
