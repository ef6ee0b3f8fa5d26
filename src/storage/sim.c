/*
 * sim.c - the storage simulator's events: creating the model, placing
 * folios (with direct reclaim of page cache when memory is short and
 * background reclaim between watermarks), migrating and dropping them, and
 * the six events (alloc, free, tag, pin, unpin, read) with their modelled
 * costs. Tag-block reservation lives in tagblock.c, the buddy allocator in
 * buddy.c, the invariant checker in check.c.
 */
#include "storage/sim_internal.h"
#include "storage/bigmem.h"
#include "common/abi.h"
#include "storage/prefetch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* configuration and construction                                   */
/* ---------------------------------------------------------------- */

static void config_default(tm_ss_config *c)
{
	memset(c, 0, sizeof(*c));
	c->struct_size = sizeof(*c);
	c->mem_bytes = 16ull << 30;
	c->page_size = 4096;
	c->tag_block_frames = 1;
	c->policy = TM_SS_STATIC;
	c->check_invariants = -1;
	c->wmark_low_pct = 0.5;
	c->wmark_high_pct = 1.0;
	tm_ss_costs_default(&c->costs);
}

int tm_ss_config_default_sized(tm_ss_config *c, size_t size)
{
	tm_ss_config d;

	config_default(&d);
	return TM_ABI_COPY_OUT(tm_ss_config, c, size, &d, NULL);
}

static int validate_config(const tm_ss_config *c, tm_error *err)
{
	if (c->page_size < 512 || (c->page_size & (c->page_size - 1)))
		return tm_error_set(err, -EINVAL, "storage-sim: page_size %u is not a power of two >= 512",
				    c->page_size);
	if (c->tag_block_frames == 0 || c->tag_block_frames > 4096)
		return tm_error_set(err, -EINVAL, "storage-sim: tag_block_frames %u not in 1..4096",
				    c->tag_block_frames);
	if ((unsigned)c->policy >= TM_SS_POLICY_COUNT)
		return tm_error_set(err, -EINVAL, "storage-sim: unknown policy %d", (int)c->policy);
	uint64_t frames = c->mem_bytes / c->page_size;
	uint64_t unit = (uint64_t)(TM_SS_TAG_RATIO + 1) * c->tag_block_frames;

	if (frames < unit || frames / unit * unit >= SS_NIL)
		return tm_error_set(err, -EINVAL,
				    "storage-sim: memory of %llu bytes gives %llu frames; need %llu..%u",
				    (unsigned long long)c->mem_bytes, (unsigned long long)frames,
				    (unsigned long long)unit, SS_NIL - 1);
	if (c->tag_retries > 16)
		return tm_error_set(err, -EINVAL, "storage-sim: tag_retries %u > 16", c->tag_retries);
	if (!(c->wmark_low_pct >= 0 && c->wmark_low_pct <= c->wmark_high_pct && c->wmark_high_pct < 50))
		return tm_error_set(err, -EINVAL, "storage-sim: watermarks %.3g%%..%.3g%% invalid",
				    c->wmark_low_pct, c->wmark_high_pct);
	return 0;
}

static void set_geometry(struct tm_ss_sim *s)
{
	const tm_ss_config *c = &s->cfg;
	uint64_t unit = (uint64_t)(TM_SS_TAG_RATIO + 1) * c->tag_block_frames;

	s->bsz = c->tag_block_frames;
	s->group = TM_SS_TAG_RATIO * s->bsz;
	s->nblocks = (uint32_t)(c->mem_bytes / c->page_size / unit);
	s->data_frames = s->nblocks * s->group;
	s->tag_frames = s->nblocks * s->bsz;
	s->tag_base = s->data_frames;
	s->nframes = s->data_frames + s->tag_frames;
	s->npb = (s->nframes + SS_PB_FRAMES - 1) / SS_PB_FRAMES;
	s->reuse = c->policy != TM_SS_STATIC;
	s->wmark_low = (uint64_t)(c->wmark_low_pct / 100.0 * s->nframes);
	s->wmark_high = (uint64_t)(c->wmark_high_pct / 100.0 * s->nframes);
}

static int alloc_arrays(struct tm_ss_sim *s)
{
	size_t n = s->nframes;

	s->fr = tm_ssi_big_calloc(n, sizeof(struct ss_frame));
	s->freeord = tm_ssi_big_calloc(n, 1);
	s->pbtype = tm_ssi_big_calloc(s->npb, 1);
	s->pbfree = tm_ssi_big_calloc(s->npb, sizeof(uint16_t));
	s->blk_tagged = tm_ssi_big_calloc(s->nblocks, sizeof(uint32_t));
	s->blk_resv = tm_ssi_big_calloc(s->nblocks, 1);
	s->obj = tm_ssi_big_calloc(s->nobj, sizeof(struct ss_obj));
	s->hist = tm_ssi_big_calloc(1, sizeof(struct ss_hist));
	s->scratch_bits = tm_ssi_big_calloc((n + 63) / 64, sizeof(uint64_t));
	s->scratch_blk = tm_ssi_big_calloc(s->nblocks, sizeof(uint32_t));
	for (unsigned l = 0; l < 2; l++) {
		/* each folio on it holds a frame of the pool: 2x frames never fills */
		uint64_t cap = 64, frames = l == POOL_DATA ? s->data_frames : s->tag_frames;

		while (cap < 2 * (uint64_t)frames)
			cap *= 2;
		s->lru[l].mask = cap - 1;
		s->lru[l].id = tm_ssi_big_calloc(cap, sizeof(uint32_t));
		if (!s->lru[l].id)
			return -ENOMEM;
	}
	if (!s->fr || !s->freeord || !s->pbtype || !s->pbfree || !s->blk_tagged || !s->blk_resv || !s->obj ||
	    !s->hist || !s->scratch_bits || !s->scratch_blk)
		return -ENOMEM;
	return 0;
}

static void init_tag_storage(struct tm_ss_sim *s)
{
	if (s->reuse)
		return;
	for (uint32_t f = s->tag_base; f < s->nframes; f++)
		s->fr[f].state = FS_RESV;
	memset(s->blk_resv, 1, s->nblocks);
	s->tag_resv = s->tag_frames;
}

int tm_ss_create(const tm_ss_config *ucfg, tm_ss_sim **out, tm_error *err)
{
	tm_ss_config copy;        /* the caller's, at this library's size */
	const tm_ss_config *cfg = &copy;
	int r = TM_ABI_COPY_IN(tm_ss_config, &copy, ucfg, err);

	if (!r)
		r = validate_config(cfg, err);
	*out = NULL;
	if (r)
		return r;
	struct tm_ss_sim *s = calloc(1, sizeof(*s));

	if (!s)
		return tm_error_set(err, -ENOMEM, "storage-sim: out of memory for the model");
	s->cfg = *cfg;
	set_geometry(s);
	s->nobj = cfg->max_objects ? cfg->max_objects : s->nframes;
	if (alloc_arrays(s)) {
		tm_ss_destroy(s);
		return tm_error_set(err, -ENOMEM, "storage-sim: out of memory for %u frames, %u objects",
				    s->nframes, s->nobj);
	}
	s->iso_lo = s->iso_hi = SS_NIL;
	init_tag_storage(s);
	tm_ssi_buddy_init(s);
#ifdef TM_DEBUG_INVARIANTS
	s->check_each = cfg->check_invariants > 0 ||
			(cfg->check_invariants < 0 && s->nframes <= 65536);
#endif
	*out = s;
	return 0;
}

void tm_ss_destroy(tm_ss_sim *s)
{
	if (!s)
		return;
	tm_ssi_big_free(s->fr, s->nframes, sizeof(struct ss_frame));
	tm_ssi_big_free(s->freeord, s->nframes, 1);
	tm_ssi_big_free(s->pbtype, s->npb, 1);
	tm_ssi_big_free(s->pbfree, s->npb, sizeof(uint16_t));
	tm_ssi_big_free(s->blk_tagged, s->nblocks, sizeof(uint32_t));
	tm_ssi_big_free(s->blk_resv, s->nblocks, 1);
	tm_ssi_big_free(s->obj, s->nobj, sizeof(struct ss_obj));
	tm_ssi_big_free(s->hist, 1, sizeof(struct ss_hist));
	tm_ssi_big_free(s->scratch_bits, (s->nframes + 63) / 64, sizeof(uint64_t));
	tm_ssi_big_free(s->scratch_blk, s->nblocks, sizeof(uint32_t));
	for (unsigned l = 0; l < 2; l++)
		tm_ssi_big_free(s->lru[l].id, s->lru[l].mask + 1, sizeof(uint32_t));
	free(s);
}

int tm_ss_config_geometry(const tm_ss_config *ucfg, tm_ss_geometry *g, tm_error *err)
{
	tm_ss_config copy;
	const tm_ss_config *cfg = &copy;
	struct tm_ss_sim s;
	int r = TM_ABI_COPY_IN(tm_ss_config, &copy, ucfg, err);

	if (!r)
		r = validate_config(cfg, err);
	if (r)
		return r;
	memset(&s, 0, sizeof(s));
	s.cfg = *cfg;
	set_geometry(&s);
	tm_ss_get_geometry(&s, g);
	return 0;
}

void tm_ss_get_geometry(const tm_ss_sim *s, tm_ss_geometry *g)
{
	g->page_size = s->cfg.page_size;
	g->frames = s->nframes;
	g->data_frames = s->data_frames;
	g->tag_frames = s->tag_frames;
	g->tag_blocks = s->nblocks;
	g->tag_block_frames = s->bsz;
	g->mem_bytes = (uint64_t)s->nframes * s->cfg.page_size;
}

/* ---------------------------------------------------------------- */
/* page-cache LRU (present, unpinned page cache; one list per pool)  */
/* ---------------------------------------------------------------- */

static unsigned pool_of(const struct tm_ss_sim *s, uint32_t pfn)
{
	return ss_in_tag(s, pfn) ? POOL_TAG : POOL_DATA;
}

static bool on_lru(const struct ss_obj *o)
{
	return o->kind == TM_SS_PAGECACHE && (o->flags & OF_PRESENT) && o->pins == 0;
}

/* Squeeze the holes out of a full ring (amortised: it is at least half
 * holes when full, since it can hold twice the pool's frames). */
static void ring_compact(struct tm_ss_sim *s, struct ss_ring *r)
{
	uint64_t w = r->head;

	for (uint64_t p = r->head; p < r->tail; p++) {
		uint32_t id = r->id[p & r->mask];

		if (id == SS_NIL)
			continue;
		r->id[w & r->mask] = id;
		s->obj[id].lru_slot = (uint32_t)(w & r->mask);
		w++;
	}
	r->tail = w;
}

static void ring_append(struct tm_ss_sim *s, struct ss_ring *r, uint32_t id)
{
	if (r->tail - r->head > r->mask)
		ring_compact(s, r);
	r->id[r->tail & r->mask] = id;
	s->obj[id].lru_slot = (uint32_t)(r->tail & r->mask);
	s->obj[id].lru_seq = ++s->lru_clock;
	r->tail++;
}

static void lru_add(struct tm_ss_sim *s, uint32_t id)
{
	struct ss_ring *r = &s->lru[pool_of(s, s->obj[id].pfn)];

	ring_append(s, r, id);
	r->live++;
}

static void lru_del(struct tm_ss_sim *s, uint32_t id)
{
	struct ss_ring *r = &s->lru[pool_of(s, s->obj[id].pfn)];

	r->id[s->obj[id].lru_slot] = SS_NIL;
	s->obj[id].lru_slot = SS_NIL;
	r->live--;
}

/* ---------------------------------------------------------------- */
/* frames of an object                                              */
/* ---------------------------------------------------------------- */

static bool tag_pool_allows(const struct tm_ss_sim *s, unsigned kind)
{
	switch (s->cfg.policy) {
	case TM_SS_CMA:
	case TM_SS_CMA_FAST:
		return kind == TM_SS_MOVABLE || kind == TM_SS_PAGECACHE;
	case TM_SS_CLEANCACHE:
		return kind == TM_SS_PAGECACHE;
	default:
		return false;
	}
}

static unsigned mt_of_kind(unsigned kind)
{
	switch (kind) {
	case TM_SS_UNMOVABLE: return MT_UNMOVABLE;
	case TM_SS_RECLAIMABLE: return MT_RECLAIMABLE;
	default: return MT_MOVABLE; /* Linux allocates page cache as movable */
	}
}

/* Linux's __rmqueue: movable allocations go to CMA first when more than
 * half of the free memory is CMA, and fall back to it otherwise. */
static uint32_t try_alloc(struct tm_ss_sim *s, unsigned order, unsigned kind, bool allow_tag)
{
	unsigned mt = mt_of_kind(kind);
	uint32_t p;

	if (!allow_tag)
		return tm_ssi_buddy_alloc_data(s, order, mt);
	if (s->free_tag > (s->free_data + s->free_tag) / 2) {
		p = tm_ssi_buddy_alloc_tag(s, order);
		if (p != SS_NIL)
			return p;
	}
	p = tm_ssi_buddy_alloc_data(s, order, mt);
	return p != SS_NIL ? p : tm_ssi_buddy_alloc_tag(s, order);
}

/* Compaction may evict unpinned page cache and migrate unpinned, untagged
 * base pages of movable memory (a large folio would need a free block of its
 * own order, which is what is missing). Kept in the head frame so scanning
 * candidates does not touch the objects. */
static void update_movable(struct tm_ss_sim *s, uint32_t id)
{
	const struct ss_obj *o = &s->obj[id];

	if (!(o->flags & OF_PRESENT))
		return;
	s->fr[o->pfn].movable = o->pins == 0 &&
				(o->kind == TM_SS_PAGECACHE ||
				 (o->kind == TM_SS_MOVABLE && o->order == 0 && !(o->flags & OF_TAGGED)));
}

static void set_used(struct tm_ss_sim *s, uint32_t id, uint32_t pfn)
{
	struct ss_obj *o = &s->obj[id];

	s->fr[pfn].state = FS_USED;
	s->fr[pfn].order = o->order;
	s->fr[pfn].owner = id;
	o->pfn = pfn;
	o->flags = (uint8_t)((o->flags | OF_PRESENT) & ~(OF_DROPPED | OF_EVICTED | OF_FAILED));
	update_movable(s, id);
	if (ss_in_tag(s, pfn))
		s->tag_used += 1u << o->order;
	if (on_lru(o))
		lru_add(s, id);
}

/* Give up an object's frames (free, drop or eviction). */
static void release_frames(struct tm_ss_sim *s, uint32_t id)
{
	struct ss_obj *o = &s->obj[id];
	uint32_t pfn = o->pfn;

	if (on_lru(o))
		lru_del(s, id);
	if (ss_in_tag(s, pfn))
		s->tag_used -= 1u << o->order;
	tm_ssi_free_range(s, pfn, o->order);
	if (o->flags & OF_TAGGED)
		tm_ssi_tags_put(s, pfn, o->order);
	o->flags = (uint8_t)(o->flags & ~(OF_PRESENT | OF_TAGGED));
	o->pfn = SS_NIL;
}

static void evict(struct tm_ss_sim *s, uint32_t id)
{
	uint32_t n = 1u << s->obj[id].order;

	release_frames(s, id);
	s->obj[id].flags |= OF_EVICTED;
	s->st.frames_evicted += n;
	ss_cost(s, TM_SS_COST_EVICT_FRAME, n);
}

/* Oldest unreferenced page cache of a pool: referenced folios get a second
 * chance (moved to the tail, bit cleared), as Linux's LRU scan does. */
/* The ring is read in order, so the next victims are known: their objects
 * are fetched LRU_OBJ_AHEAD entries before the scan reaches them, their
 * head frames (and free-order map, which the free merges against)
 * LRU_FRAME_AHEAD entries before (that reads the object fetched earlier). */
#define LRU_OBJ_AHEAD 32u
#define LRU_FRAME_AHEAD 12u
static inline void lru_fetch_ahead(const struct tm_ss_sim *s, const struct ss_ring *r)
{
	if (r->head + LRU_OBJ_AHEAD < r->tail) {
		uint32_t id = r->id[(r->head + LRU_OBJ_AHEAD) & r->mask];

		if (id != SS_NIL)
			tm_ssi_prefetch(&s->obj[id]);
	}
	if (r->head + LRU_FRAME_AHEAD < r->tail) {
		uint32_t id = r->id[(r->head + LRU_FRAME_AHEAD) & r->mask];

		if (id != SS_NIL && s->obj[id].pfn < s->nframes) {
			tm_ssi_prefetch(&s->fr[s->obj[id].pfn]);
			tm_ssi_prefetch(&s->freeord[s->obj[id].pfn]);
		}
	}
}

static uint32_t lru_victim(struct tm_ss_sim *s, unsigned l)
{
	struct ss_ring *r = &s->lru[l];

	while (r->head < r->tail) {
		uint32_t id = r->id[r->head & r->mask];

		lru_fetch_ahead(s, r);
		if (id == SS_NIL) {
			r->head++;
			continue;
		}
		if (!(s->obj[id].flags & OF_REF))
			return id;
		s->obj[id].flags &= (uint8_t)~OF_REF;
		r->id[r->head & r->mask] = SS_NIL;
		r->head++;
		ring_append(s, r, id);
	}
	return SS_NIL;
}

/* Evict the least recently used page cache of the allowed pools. */
static bool evict_oldest(struct tm_ss_sim *s, bool data, bool tag)
{
	uint32_t a = data ? lru_victim(s, POOL_DATA) : SS_NIL;
	uint32_t b = tag ? lru_victim(s, POOL_TAG) : SS_NIL;

	if (a == SS_NIL && b == SS_NIL)
		return false;
	if (a == SS_NIL || (b != SS_NIL && s->obj[b].lru_seq < s->obj[a].lru_seq))
		a = b;
	evict(s, a);
	return true;
}

/* Can compaction empty the aligned data block [lo, lo + 2^order)? */
static bool compactable(const struct tm_ss_sim *s, uint32_t lo, unsigned order)
{
	for (uint32_t p = lo; p < lo + (1u << order); p += 1u << s->fr[p].order)
		if (s->fr[p].state == FS_USED && !s->fr[p].movable)
			return false;
	return true;
}

/* Empty the block: page cache is evicted, movable folios migrate. */
static bool evacuate(struct tm_ss_sim *s, uint32_t lo, unsigned order)
{
	uint32_t hi = lo + (1u << order);
	bool ok = true;

	tm_ssi_isolate_begin(s, lo, hi);
	for (uint32_t f = lo; f < hi && ok; f++) {
		uint32_t h = tm_ssi_block_head(s, f);

		if (s->fr[h].state != FS_USED)
			continue;
		uint32_t id = s->fr[h].owner;

		if (s->obj[id].kind == TM_SS_PAGECACHE)
			evict(s, id);
		else
			ok = tm_ssi_migrate(s, id, false) == 0;
	}
	tm_ssi_isolate_end(s, lo, hi);
	return ok;
}

/* Compaction, much simplified: look at up to 256 aligned data blocks of the
 * wanted order (at most 8192 frames) from a rotating cursor and empty the
 * first that can be. */
static bool compact(struct tm_ss_sim *s, unsigned order)
{
	uint32_t n = 1u << order, nb = s->tag_base >> order;

	if (s->compacting || s->iso_lo != SS_NIL || nb == 0)
		return false;
	for (unsigned t = 0; t < 256 && t * n < 8192; t++) {
		uint32_t lo = (uint32_t)(s->compact_cursor++ % nb) * n;
		/* the candidates follow each other: fetch one 4 blocks ahead */
		uint32_t next = (uint32_t)((s->compact_cursor + 3) % nb) * n;

		for (uint32_t f = 0; f < n && f < 32; f += 4)
			tm_ssi_prefetch(&s->fr[next + f]);

		if (compactable(s, lo, order)) {
			s->compacting = true;
			bool ok = evacuate(s, lo, order);

			s->compacting = false;
			return ok;
		}
	}
	return false;
}

/* Frames for a folio: direct reclaim when none are free, then compaction
 * for a high-order folio when what reclaim freed is too fragmented. */
static uint32_t get_frames(struct tm_ss_sim *s, unsigned order, unsigned kind, bool allow_tag)
{
	uint32_t p = try_alloc(s, order, kind, allow_tag);
	unsigned budget = 32u + (2u << order);

	while (p == SS_NIL && budget-- && evict_oldest(s, true, allow_tag))
		p = try_alloc(s, order, kind, allow_tag);
	if (p == SS_NIL && order > 0 && compact(s, order))
		p = try_alloc(s, order, kind, allow_tag);
	return p;
}

int tm_ssi_place(struct tm_ss_sim *s, uint32_t id, bool allow_tag)
{
	struct ss_obj *o = &s->obj[id];
	uint32_t p = get_frames(s, o->order, o->kind, allow_tag);

	if (p == SS_NIL)
		return -ENOMEM;
	set_used(s, id, p);
	return 0;
}

int tm_ssi_migrate(struct tm_ss_sim *s, uint32_t id, bool to_data)
{
	struct ss_obj *o = &s->obj[id];
	uint32_t n = 1u << o->order;

	if (o->pins)
		return -EBUSY;
	bool lru = on_lru(o);

	if (lru)
		lru_del(s, id); /* so direct reclaim cannot pick the folio being moved */
	uint32_t p = get_frames(s, o->order, o->kind, !to_data && tag_pool_allows(s, o->kind));

	if (p == SS_NIL) {
		if (lru)
			lru_add(s, id);
		return -ENOMEM;
	}
	uint32_t old = o->pfn;

	if (ss_in_tag(s, old))
		s->tag_used -= n;
	tm_ssi_free_range(s, old, o->order);
	o->flags = (uint8_t)(o->flags & ~OF_PRESENT);
	set_used(s, id, p);
	if (s->compacting)
		s->st.frames_compacted += n;
	else
		s->st.frames_migrated += n;
	ss_cost(s, TM_SS_COST_MIGRATE_FRAME, n);
	return 0;
}

void tm_ssi_drop(struct tm_ss_sim *s, uint32_t id)
{
	uint32_t n = 1u << s->obj[id].order;

	release_frames(s, id);
	s->obj[id].flags |= OF_DROPPED;
	s->st.frames_dropped += n;
	ss_cost(s, TM_SS_COST_DROP_FRAME, n);
}

/* kswapd: keep free memory between the watermarks (cost, not latency).
 * The victims' memory is fetched ahead by the LRU scan. */
static void background_reclaim(struct tm_ss_sim *s)
{
	if (s->free_data + s->free_tag >= s->wmark_low)
		return;
	while (s->free_data + s->free_tag < s->wmark_high)
		if (!evict_oldest(s, true, true))
			break;
}

/* ---------------------------------------------------------------- */
/* events                                                           */
/* ---------------------------------------------------------------- */

static int bad_obj(const struct tm_ss_sim *s, uint32_t id, unsigned op, tm_error *err)
{
	if (id >= s->nobj)
		return tm_error_set(err, -ENOENT, "storage-sim: %s of object %u: ids are below %u",
				    tm_ss_op_name((tm_ss_op)op), id, s->nobj);
	if (!(s->obj[id].flags & OF_LIVE))
		return tm_error_set(err, -ENOENT, "storage-sim: %s of object %u, which is not allocated",
				    tm_ss_op_name((tm_ss_op)op), id);
	return 0;
}

/* Tagged placement: data frames plus their tag blocks; tag_retries more
 * placements are tried when a block cannot be reserved. No data frames at
 * all is an ordinary allocation failure; a tag block that cannot be
 * reserved is a tagged-allocation failure. */
static void alloc_tagged(struct tm_ss_sim *s, uint32_t id, uint32_t at)
{
	struct ss_obj *o = &s->obj[id];
	uint32_t held[17];
	unsigned nheld = 0;
	bool ok = false, nomem = false;

	for (unsigned a = 0; a <= s->cfg.tag_retries; a++) {
		uint32_t p = at != SS_NIL && a == 0 ? at : get_frames(s, o->order, TM_SS_MOVABLE, false);

		if (p == SS_NIL) {
			nomem = true;
			break;
		}
		if (tm_ssi_tags_get(s, p, o->order) == 0) {
			set_used(s, id, p);
			o->flags |= OF_TAGGED;
			update_movable(s, id);
			ok = true;
			break;
		}
		s->fr[p].state = FS_USED; /* held aside so the next try gets other frames */
		s->fr[p].order = o->order;
		s->fr[p].owner = SS_NIL;
		s->fr[p].movable = 0;
		held[nheld++] = p;
		if (at != SS_NIL)
			break;
	}
	for (unsigned i = 0; i < nheld; i++)
		tm_ssi_buddy_free(s, held[i], o->order);
	if (!ok) {
		o->flags |= OF_FAILED;
		if (nomem)
			s->st.alloc_failures++;
		else
			s->st.tagged_alloc_failures++;
		ss_cost(s, TM_SS_COST_ALLOC_FAIL, 1);
	}
}

static void alloc_untagged(struct tm_ss_sim *s, uint32_t id, uint32_t at)
{
	struct ss_obj *o = &s->obj[id];

	if (at != SS_NIL) {
		set_used(s, id, at);
		return;
	}
	if (tm_ssi_place(s, id, tag_pool_allows(s, o->kind)) == 0)
		return;
	o->flags |= OF_FAILED;
	s->st.alloc_failures++;
	ss_cost(s, TM_SS_COST_ALLOC_FAIL, 1);
}

static int check_alloc(const struct tm_ss_sim *s, const tm_ss_event *ev, tm_error *err)
{
	if (ev->obj >= s->nobj)
		return tm_error_set(err, -ENOENT, "storage-sim: alloc of object %u: ids are below %u",
				    ev->obj, s->nobj);
	if (s->obj[ev->obj].flags & OF_LIVE)
		return tm_error_set(err, -EEXIST, "storage-sim: alloc of object %u, which is live",
				    ev->obj);
	if (ev->order > TM_SS_MAX_ORDER || ev->kind >= TM_SS_KIND_COUNT)
		return tm_error_set(err, -EINVAL, "storage-sim: alloc of object %u: order %u kind %u",
				    ev->obj, ev->order, ev->kind);
	if ((ev->flags & TM_SS_EV_TAGGED) && ev->kind != TM_SS_MOVABLE)
		return tm_error_set(err, -EINVAL,
				    "storage-sim: alloc of object %u: only movable (anonymous) folios are tagged",
				    ev->obj);
	return 0;
}

static void do_alloc(struct tm_ss_sim *s, const tm_ss_event *ev, uint32_t at)
{
	struct ss_obj *o = &s->obj[ev->obj];
	uint32_t n = 1u << ev->order;

	memset(o, 0, sizeof(*o));
	o->pfn = o->pin_pfn = o->lru_slot = SS_NIL;
	o->order = ev->order;
	o->kind = ev->kind;
	o->flags = OF_LIVE;
	ss_cost(s, TM_SS_COST_ALLOC_FOLIO, 1);
	if (ev->kind == TM_SS_PAGECACHE)
		ss_cost(s, TM_SS_COST_READ_FRAME, n);
	else if (ev->kind == TM_SS_MOVABLE)
		ss_cost(s, TM_SS_COST_CLEAR_FRAME, n);
	if (ev->flags & TM_SS_EV_TAGGED) {
		s->st.tagged_allocs++;
		ss_cost(s, TM_SS_COST_TAG_CLEAR_FRAME, n);
		alloc_tagged(s, ev->obj, at);
	} else {
		alloc_untagged(s, ev->obj, at);
	}
}

static int do_free(struct tm_ss_sim *s, uint32_t id, tm_error *err)
{
	struct ss_obj *o = &s->obj[id];

	if (o->pins)
		return tm_error_set(err, -EBUSY, "storage-sim: free of object %u, which is pinned %u time(s)",
				    id, o->pins);
	if (o->flags & OF_PRESENT) {
		release_frames(s, id);
		ss_cost(s, TM_SS_COST_FREE_FOLIO, 1);
	} else if (o->flags & OF_FAILED) {
		s->st.ops_on_failed++;
	}
	memset(o, 0, sizeof(*o));
	o->pfn = o->pin_pfn = o->lru_slot = SS_NIL;
	return 0;
}

/* Dropped or evicted page cache comes back from storage. */
static bool refault(struct tm_ss_sim *s, uint32_t id)
{
	struct ss_obj *o = &s->obj[id];
	uint32_t n = 1u << o->order;
	bool by_policy = o->flags & OF_DROPPED;

	if (tm_ssi_place(s, id, tag_pool_allows(s, o->kind))) {
		s->st.alloc_failures++;
		ss_cost(s, TM_SS_COST_ALLOC_FAIL, 1);
		return false;
	}
	s->st.refaults++;
	s->st.refaults_policy += by_policy;
	s->st.refault_frames += n;
	ss_cost(s, TM_SS_COST_ALLOC_FOLIO, 1);
	ss_cost(s, TM_SS_COST_READ_FRAME, n);
	return true;
}

static void do_read(struct tm_ss_sim *s, uint32_t id)
{
	struct ss_obj *o = &s->obj[id];

	if (o->flags & OF_FAILED) {
		s->st.ops_on_failed++;
		return;
	}
	if (!(o->flags & OF_PRESENT)) {
		refault(s, id);
		return;
	}
	if (o->kind == TM_SS_PAGECACHE) /* an access earns a second chance */
		o->flags |= OF_REF;
	if (o->kind == TM_SS_PAGECACHE && ss_in_tag(s, o->pfn) && s->cfg.policy == TM_SS_CLEANCACHE) {
		s->st.cleancache_hits += 1u << o->order;
		ss_cost(s, TM_SS_COST_CLEANCACHE_HIT, 1u << o->order);
	}
}

static void tag_failed(struct tm_ss_sim *s, int r)
{
	if (r == -EBUSY)
		s->st.fail_pinned++;
	else
		s->st.fail_nomem++;
	s->st.tagged_alloc_failures++;
	ss_cost(s, TM_SS_COST_ALLOC_FAIL, 1);
}

/* mprotect(PROT_MTE): a tag-storage frame cannot be tagged, so the folio
 * first leaves the tag storage; then its tag blocks are reserved. */
static int do_tag(struct tm_ss_sim *s, uint32_t id, tm_error *err)
{
	struct ss_obj *o = &s->obj[id];

	if (o->kind != TM_SS_MOVABLE)
		return tm_error_set(err, -EINVAL, "storage-sim: tag of object %u: it is %s, not movable",
				    id, tm_ss_kind_name(o->kind));
	if (o->flags & OF_TAGGED)
		return tm_error_set(err, -EINVAL, "storage-sim: tag of object %u, which is already tagged",
				    id);
	if (!(o->flags & OF_PRESENT)) {
		s->st.ops_on_failed++;
		return 0;
	}
	s->st.tagged_allocs++;
	ss_cost(s, TM_SS_COST_TAG_CLEAR_FRAME, 1u << o->order);
	if (ss_in_tag(s, o->pfn)) {
		int r = tm_ssi_migrate(s, id, true);

		if (r) {
			tag_failed(s, r);
			return 0;
		}
	}
	for (unsigned a = 0;; a++) {
		if (tm_ssi_tags_get(s, o->pfn, o->order) == 0) {
			o->flags |= OF_TAGGED;
			update_movable(s, id);
			return 0;
		}
		if (a == s->cfg.tag_retries || o->pins || tm_ssi_migrate(s, id, true)) {
			s->st.tagged_alloc_failures++;
			ss_cost(s, TM_SS_COST_ALLOC_FAIL, 1);
			return 0;
		}
	}
}

/* A pin the model cannot take (object without frames, or a FOLL_LONGTERM
 * pin that could not leave the tag storage) is remembered as lost so the
 * workload's matching unpin still pairs with it. */
static void do_pin(struct tm_ss_sim *s, uint32_t id, bool longterm)
{
	struct ss_obj *o = &s->obj[id];

	if (o->flags & OF_FAILED) {
		s->st.ops_on_failed++;
		o->lost_pins++;
		return;
	}
	if (!(o->flags & OF_PRESENT) && !refault(s, id)) {
		o->lost_pins++;
		return;
	}
	bool must_move = ss_in_tag(s, o->pfn) &&
			 (longterm || s->cfg.policy == TM_SS_CLEANCACHE);

	if (o->pins == 0 && must_move && tm_ssi_migrate(s, id, true)) {
		s->st.pin_failures++;
		o->lost_pins++;
		return;
	}
	if (o->pins == 0) {
		if (on_lru(o))
			lru_del(s, id);
		o->pin_pfn = o->pfn;
	}
	o->pins++;
	update_movable(s, id);
}

static int do_unpin(struct tm_ss_sim *s, uint32_t id, tm_error *err)
{
	struct ss_obj *o = &s->obj[id];

	if (o->lost_pins) {
		o->lost_pins--;
		return 0;
	}
	if (o->pins == 0)
		return tm_error_set(err, -EINVAL, "storage-sim: unpin of object %u, which is not pinned", id);
	o->pins--;
	if (o->pins == 0) {
		o->pin_pfn = SS_NIL;
		if (on_lru(o))
			lru_add(s, id);
		update_movable(s, id);
	}
	return 0;
}

static void account(struct tm_ss_sim *s, const tm_ss_event *ev, bool tagged)
{
	s->last_cost = s->ev_cost;
	if (tagged) {
		tm_ssi_hist_add(s->hist, s->ev_cost);
		s->st.tagged_ns += s->ev_cost;
	}
	background_reclaim(s);
	s->st.modelled_ns += s->ev_cost;
	s->ev_cost = 0;
	s->sum_unresv += s->reuse ? s->tag_frames - s->tag_resv : 0;
	s->sum_used += s->tag_used;
	s->sum_resv += s->tag_resv;
	s->st.events++;
	s->st.ops[ev->op]++;
}

static int after_event(struct tm_ss_sim *s, tm_error *err)
{
	if (!s->check_each)
		return 0;
	return tm_ss_check(s, err);
}

static int dispatch(struct tm_ss_sim *s, const tm_ss_event *ev, tm_error *err)
{
	if (ev->op == TM_SS_OP_ALLOC) {
		int r = check_alloc(s, ev, err);

		if (r == 0)
			do_alloc(s, ev, SS_NIL);
		return r;
	}
	if (ev->op >= TM_SS_OP_COUNT)
		return tm_error_set(err, -EINVAL, "storage-sim: unknown op %u on object %u", ev->op, ev->obj);
	int r = bad_obj(s, ev->obj, ev->op, err);

	if (r)
		return r;
	switch (ev->op) {
	case TM_SS_OP_FREE: return do_free(s, ev->obj, err);
	case TM_SS_OP_TAG: return do_tag(s, ev->obj, err);
	case TM_SS_OP_PIN: do_pin(s, ev->obj, ev->flags & TM_SS_EV_LONGTERM); return 0;
	case TM_SS_OP_UNPIN: return do_unpin(s, ev->obj, err);
	default: do_read(s, ev->obj); return 0;
	}
}

int tm_ss_apply(tm_ss_sim *s, const tm_ss_event *ev, tm_error *err)
{
	uint64_t before = s->st.tagged_allocs;
	int r = dispatch(s, ev, err);

	if (r) {
		s->ev_cost = 0;
		return r;
	}
	account(s, ev, s->st.tagged_allocs != before);
	return after_event(s, err);
}

/* A free, pin, unpin or tag event works on its folio's head frame (a free
 * also merges against the free-order map); an allocation takes new frames
 * and a read only looks at the object, so fetching their frames would only
 * take memory bandwidth from the fetches that matter. */
static inline void fetch_frames(const struct tm_ss_sim *s, const tm_ss_event *ev)
{
	if (ev->obj >= s->nobj)
		return;
	uint32_t pfn = s->obj[ev->obj].pfn;

	if (pfn >= s->nframes)
		return;
	tm_ssi_prefetch(s->fr + pfn);
	if (ev->op == TM_SS_OP_FREE)
		tm_ssi_prefetch(s->freeord + pfn);
}

#define EV_OBJ_AHEAD 32u
#define EV_FRAME_AHEAD 12u
int tm_ss_apply_many(tm_ss_sim *s, const tm_ss_event *ev, size_t n, tm_error *err)
{
	for (size_t i = 0; i < n; i++) {
		/* The events ahead are known: fetch their objects, then their head
		 * frames, before they are needed (the arrays dwarf the caches, and
		 * a miss costs 200-400 ns on the development VM). */
		if (i + EV_OBJ_AHEAD < n) {
			uint32_t id = ev[i + EV_OBJ_AHEAD].obj;

			if (id < s->nobj)
				tm_ssi_prefetch(s->obj + id);
		}
		if (i + EV_FRAME_AHEAD < n && ev[i + EV_FRAME_AHEAD].op != TM_SS_OP_READ &&
		    ev[i + EV_FRAME_AHEAD].op != TM_SS_OP_ALLOC)
			fetch_frames(s, &ev[i + EV_FRAME_AHEAD]);
		int r = tm_ss_apply(s, &ev[i], err);

		if (r)
			return tm_error_wrap(err, r, "storage-sim: event %zu", i);
	}
	return 0;
}

static int check_at(const struct tm_ss_sim *s, const tm_ss_event *ev, uint32_t pfn, tm_error *err)
{
	uint32_t n = 1u << ev->order;
	uint32_t end = ss_in_tag(s, pfn) ? s->nframes : s->tag_base;

	if (pfn >= s->nframes || (pfn & (n - 1)) || pfn + n > end)
		return tm_error_set(err, -EINVAL, "storage-sim: frames %u+%u are not an aligned range of one pool",
				    pfn, n);
	if (ss_in_tag(s, pfn) && ((ev->flags & TM_SS_EV_TAGGED) || !tag_pool_allows(s, ev->kind)))
		return tm_error_set(err, -EINVAL, "storage-sim: policy %s keeps %s%s folios out of tag storage (frame %u)",
				    tm_ss_policy_name(s->cfg.policy),
				    ev->flags & TM_SS_EV_TAGGED ? "tagged " : "",
				    tm_ss_kind_name(ev->kind), pfn);
	uint32_t h = tm_ssi_block_head(s, pfn);

	if (h == SS_NIL || s->fr[h].state != FS_FREE || h + (1u << s->fr[h].order) < pfn + n)
		return tm_error_set(err, -EBUSY, "storage-sim: frames %u+%u are not free", pfn, n);
	return 0;
}

int tm_ss_alloc_at(tm_ss_sim *s, uint32_t obj, uint32_t pfn, unsigned order,
		   tm_ss_kind kind, unsigned flags, tm_error *err)
{
	tm_ss_event ev = { .obj = obj, .op = TM_SS_OP_ALLOC, .order = (uint8_t)order,
			   .kind = (uint8_t)kind, .flags = (uint8_t)flags };
	uint64_t before = s->st.tagged_allocs;
	int r = check_alloc(s, &ev, err);

	if (r == 0)
		r = check_at(s, &ev, pfn, err);
	if (r)
		return r;
	tm_ssi_buddy_take(s, pfn, order);
	do_alloc(s, &ev, pfn);
	account(s, &ev, s->st.tagged_allocs != before);
	return after_event(s, err);
}

void tm_ss_reset_stats(tm_ss_sim *s)
{
	memset(&s->st, 0, sizeof(s->st));
	memset(s->hist, 0, sizeof(*s->hist));
	s->sum_unresv = s->sum_used = s->sum_resv = 0;
}

uint64_t tm_ss_last_cost_ns(const tm_ss_sim *s)
{
	return s->last_cost;
}

void tm_ss_get_stats(const tm_ss_sim *s, tm_ss_stats *out)
{
	double ev = s->st.events ? (double)s->st.events : 1.0;

	*out = s->st;
	out->tagged_alloc_p50_ns = tm_ssi_hist_percentile(s->hist, 0.50);
	out->tagged_alloc_p99_ns = tm_ssi_hist_percentile(s->hist, 0.99);
	out->tagged_alloc_max_ns = tm_ssi_hist_max(s->hist);
	out->usable_gain_pct = (double)s->sum_unresv / ev / s->nframes * 100.0;
	out->used_gain_pct = (double)s->sum_used / ev / s->nframes * 100.0;
	out->tag_reserved_pct = (double)s->sum_resv / ev / s->tag_frames * 100.0;
	out->free_frames = (uint32_t)(s->free_data + s->free_tag);
	out->tag_frames_reserved = s->tag_resv;
	out->tag_frames_used = s->tag_used;
}

int tm_ss_get_obj(const tm_ss_sim *s, uint32_t id, tm_ss_obj_info *out)
{
	if (id >= s->nobj)
		return -ENOENT;
	const struct ss_obj *o = &s->obj[id];

	memset(out, 0, sizeof(*out));
	out->live = o->flags & OF_LIVE;
	out->present = o->flags & OF_PRESENT;
	out->failed = o->flags & OF_FAILED;
	out->dropped = o->flags & (OF_DROPPED | OF_EVICTED);
	out->tagged = o->flags & OF_TAGGED;
	out->kind = (tm_ss_kind)o->kind;
	out->order = o->order;
	out->pins = o->pins;
	out->pfn = o->pfn;
	out->in_tag_storage = out->present && ss_in_tag(s, o->pfn);
	return 0;
}
