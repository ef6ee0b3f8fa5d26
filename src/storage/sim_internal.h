/*
 * sim_internal.h - the storage simulator's state, shared by the files of
 * src/storage (buddy.c, tagblock.c, sim.c, check.c) and by the tests that
 * corrupt it on purpose to prove the invariant checker notices.
 *
 * Layout: a flat per-frame array (state, order, list links, owner) and flat
 * per-object, per-pageblock and per-tag-block arrays, all allocated once in
 * tm_ss_create. A frame is described only at the head of the block that
 * contains it (free block, allocated folio or reserved tag frame); every
 * other frame is FS_TAIL, so each frame belongs to exactly one block.
 *
 * Names: functions shared between the files of src/storage are tm_ssi_*
 * ("storage-sim internal"): global symbols of libtagmem all carry the
 * project prefix, and tm_ssi_ says they are not API. Everything else here is
 * static.
 */
#ifndef TM_STORAGE_SIM_INTERNAL_H
#define TM_STORAGE_SIM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "tagmem/storage_sim.h"

#define SS_NIL UINT32_MAX
#define SS_PB_ORDER TM_SS_MAX_ORDER
#define SS_PB_FRAMES (1u << SS_PB_ORDER)
#define SS_NORDERS (TM_SS_MAX_ORDER + 1)

/* Per-frame state, meaningful at block heads only. */
enum ss_frame_state {
	FS_TAIL = 0,  /* inside a block whose head is elsewhere */
	FS_FREE,      /* head of a free buddy block (on a free list) */
	FS_USED,      /* head of an allocated folio (owner[] names the object) */
	FS_RESV,      /* tag-storage frame holding tags (order 0) */
	FS_ISOL,      /* tag-storage frame isolated by a reservation in progress */
};

/* Migrate types of free lists. CMA is the tag storage's type. */
enum ss_mt { MT_UNMOVABLE = 0, MT_MOVABLE, MT_RECLAIMABLE, MT_CMA, MT_COUNT };

/* Object flags. */
enum {
	OF_LIVE = 1u << 0,     /* allocated and not freed */
	OF_PRESENT = 1u << 1,  /* has frames */
	OF_TAGGED = 1u << 2,
	OF_FAILED = 1u << 3,   /* allocation found no memory */
	OF_DROPPED = 1u << 4,  /* page cache dropped by the policy */
	OF_EVICTED = 1u << 5,  /* page cache evicted under memory pressure */
	OF_REF = 1u << 6,      /* page cache read since it last went round the LRU */
};

/* One frame, 16 bytes: what a block head needs in one cache line access. */
struct ss_frame {
	uint32_t next, prev;   /* free-list links of a free head */
	uint32_t owner;        /* object of a used head */
	uint8_t state;         /* enum ss_frame_state */
	uint8_t order;
	uint8_t movable;       /* used head: compaction may move or evict it */
	uint8_t unused;
};

struct ss_obj {
	uint32_t pfn;          /* head frame when present */
	uint32_t pin_pfn;      /* where it was when first pinned */
	uint32_t lru_slot;     /* index in its pool's LRU ring, SS_NIL when off it */
	uint32_t unused;
	uint64_t lru_seq;      /* LRU age: smaller is older */
	uint16_t pins;
	uint16_t lost_pins;    /* pins the workload holds that the model refused */
	uint8_t order, kind, flags;
};

/* LRU of present, unpinned page cache, one per pool: a ring of object ids
 * in age order (CLOCK with second chance). A folio leaving the LRU leaves a
 * hole (SS_NIL) that the scan skips; the ring is compacted when full. Rings
 * are read in order, so the scan can fetch the objects ahead. */
enum { POOL_DATA = 0, POOL_TAG = 1 };
struct ss_ring {
	uint32_t *id;
	uint64_t mask;         /* capacity - 1 (a power of two) */
	uint64_t head, tail;   /* positions; entries are [head, tail) */
	uint64_t live;         /* non-hole entries */
};

/* Latency histogram: 64 sub-buckets per power of two (HDR style). */
#define SS_HIST_SUB_BITS 6
#define SS_HIST_BUCKETS ((64 - SS_HIST_SUB_BITS) * (1u << SS_HIST_SUB_BITS) + (1u << (SS_HIST_SUB_BITS + 1)))
struct ss_hist {
	uint64_t count[SS_HIST_BUCKETS];
	uint64_t min[SS_HIST_BUCKETS];
	uint64_t max[SS_HIST_BUCKETS];
	uint64_t n;
};

struct tm_ss_sim {
	tm_ss_config cfg;
	bool reuse;             /* policy lets tag storage hold data */
	bool check_each;        /* check invariants after every event */

	uint32_t nframes, data_frames, tag_frames, tag_base;
	uint32_t bsz;           /* tag-storage frames per tag block */
	uint32_t group;         /* data frames per tag block: 32 * bsz */
	uint32_t nblocks;
	uint32_t npb;           /* pageblocks */

	struct ss_frame *fr;    /* per frame */
	uint8_t *freeord;       /* per frame: order + 1 of a listed free head, else
	                           0 (a 1-byte map so merge checks stay in cache) */

	/* per pageblock (data frames only matter) */
	uint8_t *pbtype;
	uint16_t *pbfree;       /* free data frames in the pageblock */

	/* free lists */
	uint32_t head[MT_COUNT][SS_NORDERS];
	uint16_t nonempty[MT_COUNT]; /* bit o: head[mt][o] holds a block */
	uint64_t nfree_mt[MT_COUNT];
	uint64_t free_data, free_tag;
	uint64_t wmark_low, wmark_high;

	/* tag blocks */
	uint32_t *blk_tagged;   /* tagged data frames covered by the block */
	uint8_t *blk_resv;      /* 1 when its frames hold tags */
	uint32_t iso_lo, iso_hi;/* frames being isolated (SS_NIL when none) */
	uint32_t tag_resv;      /* tag frames in FS_RESV */
	uint32_t tag_used;      /* tag frames inside used folios */

	/* objects */
	struct ss_obj *obj;
	uint32_t nobj;
	struct ss_ring lru[2];
	uint64_t lru_clock;
	uint64_t compact_cursor; /* next candidate block of compaction */
	bool compacting;

	/* accounting */
	tm_ss_stats st;
	uint64_t ev_cost;       /* cost of the event being applied */
	uint64_t last_cost;
	uint64_t sum_unresv;    /* per-event sums for the time averages */
	uint64_t sum_used;
	uint64_t sum_resv;
	struct ss_hist *hist;

	/* scratch for tm_ss_check */
	uint64_t *scratch_bits;
	uint32_t *scratch_blk;
};

/* ---- buddy.c ---- */
static inline bool ss_in_tag(const struct tm_ss_sim *s, uint32_t pfn)
{
	return pfn >= s->tag_base;
}
static inline unsigned ss_mt_of(const struct tm_ss_sim *s, uint32_t pfn)
{
	return ss_in_tag(s, pfn) ? MT_CMA : s->pbtype[pfn >> SS_PB_ORDER];
}
void tm_ssi_buddy_init(struct tm_ss_sim *s);
/* Insert the free block [pfn, 2^order) and merge with free buddies. */
void tm_ssi_buddy_free(struct tm_ss_sim *s, uint32_t pfn, unsigned order);
/* Allocate 2^order frames of migrate type mt from the data pool (with
 * fallback stealing); SS_NIL when nothing is free. */
uint32_t tm_ssi_buddy_alloc_data(struct tm_ss_sim *s, unsigned order, unsigned mt);
/* Allocate from the tag-storage (CMA) pool; SS_NIL when nothing is free. */
uint32_t tm_ssi_buddy_alloc_tag(struct tm_ss_sim *s, unsigned order);
/* Head of the block that contains pfn. */
uint32_t tm_ssi_block_head(const struct tm_ss_sim *s, uint32_t pfn);
/* Take the free frames [pfn, 2^order) (inside one free block) off the free
 * lists, splitting the block around them. The range's head becomes FS_TAIL
 * state-less: the caller sets its state. */
void tm_ssi_buddy_take(struct tm_ss_sim *s, uint32_t pfn, unsigned order);
/* The same when the head h of the free block holding pfn is known. */
void tm_ssi_buddy_take_from(struct tm_ss_sim *s, uint32_t h, uint32_t pfn, unsigned order);

/* ---- tagblock.c ---- */
/* Make the tag blocks covering [pfn, pfn + 2^order) hold tags; on failure
 * nothing is reserved and the reason is counted. */
int tm_ssi_tags_get(struct tm_ss_sim *s, uint32_t pfn, unsigned order);
/* The folio at [pfn, 2^order) is no longer tagged. */
void tm_ssi_tags_put(struct tm_ss_sim *s, uint32_t pfn, unsigned order);
/* Free [pfn, 2^order) honouring an isolation in progress. */
void tm_ssi_free_range(struct tm_ss_sim *s, uint32_t pfn, unsigned order);
/* Isolate [lo, hi): its free frames leave the free lists, frames freed
 * later become FS_ISOL too. tm_ssi_isolate_end frees the isolated frames back. */
void tm_ssi_isolate_begin(struct tm_ss_sim *s, uint32_t lo, uint32_t hi);
void tm_ssi_isolate_end(struct tm_ss_sim *s, uint32_t lo, uint32_t hi);

/* ---- sim.c ---- */
static inline uint32_t ss_block_of(const struct tm_ss_sim *s, uint32_t data_pfn)
{
	return data_pfn / s->group;
}
/* Give obj frames of its kind/order, reclaiming if needed (never from the
 * frames being isolated). allow_tag: may use the tag pool. Returns 0 or
 * -ENOMEM (nothing counted). */
int tm_ssi_place(struct tm_ss_sim *s, uint32_t id, bool allow_tag);
/* Move a present object to new frames (data pool when to_data). 0 or
 * -ENOMEM / -EBUSY (pinned). Counts frames_migrated (frames_compacted when
 * compaction moves it) and their cost. */
int tm_ssi_migrate(struct tm_ss_sim *s, uint32_t id, bool to_data);
/* Drop a present clean page-cache object (policy drop). */
void tm_ssi_drop(struct tm_ss_sim *s, uint32_t id);
static inline void ss_cost(struct tm_ss_sim *s, tm_ss_cost_key k, uint64_t units)
{
	s->ev_cost += s->cfg.costs.ns[k] * units;
}

/* ---- hist.c ---- */
void tm_ssi_hist_add(struct ss_hist *h, uint64_t v);
uint64_t tm_ssi_hist_percentile(const struct ss_hist *h, double p);
uint64_t tm_ssi_hist_max(const struct ss_hist *h);

#endif
