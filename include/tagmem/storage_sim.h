/*
 * tagmem/storage_sim.h - a model of physical memory with an Arm MTE tag-storage
 * carve-out, and of the policies proposed for reusing that carve-out for data
 * while it holds no tags (Elisei's RFC v1-v3 2023-24 and the cleancache idea
 * from the linux-mm thread that followed).
 *
 * What is modelled (docs/STORAGE-MODEL.md says what is not):
 *   - frames of page_size bytes (default 16 GiB of 4 KiB frames); the first
 *     data_frames hold data and can be tagged, the last tag_frames are the
 *     tag storage: tag block b (tag_block_frames frames) holds the tags of
 *     the 32 * tag_block_frames data frames starting at 32 * tag_block_frames * b.
 *   - a buddy allocator, orders 0..TM_SS_MAX_ORDER, pageblocks of order
 *     TM_SS_MAX_ORDER with migrate types unmovable / movable / reclaimable,
 *     fallback stealing, and a CMA-like type for the tag storage; free lists
 *     are intrusive index lists over flat per-frame arrays.
 *   - objects ("folios"): movable anonymous memory, clean page cache,
 *     unmovable and reclaimable kernel memory; tagged (PROT_MTE) folios,
 *     long-term pins (vmsplice-style in place, or FOLL_LONGTERM which first
 *     migrates out of CMA), page-cache eviction under memory pressure and
 *     refaults.
 *   - four policies (tm_ss_policy) and their costs counted in explicit units
 *     (frames copied, frames dropped, refaults, per-CPU cache drains, failed
 *     allocations) converted to nanoseconds by a cost table (tm_ss_costs).
 *
 * Every operation is O(1) or O(order) (a tag-block reservation is
 * O(tag_block_frames * order) plus the migrations it does); nothing is
 * allocated per event. In builds with TM_DEBUG_INVARIANTS (meson's debug
 * option), the simulator checks all its invariants after every event when
 * the configuration asks for it (tm_ss_config.check_invariants).
 *
 * Thread safety: a tm_ss_sim, tm_ss_gen or tm_ss_trace is used by one thread
 * at a time; distinct objects are independent (there is no global state), so
 * several policies can run in parallel threads. The pure functions (names,
 * parsers, defaults) may be called from any thread.
 */
#ifndef TAGMEM_STORAGE_SIM_H
#define TAGMEM_STORAGE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tagmem/api.h"
#include "tagmem/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_SS_MAX_ORDER  9u   /* largest folio and buddy order; the pageblock order */
#define TM_SS_TAG_RATIO  32u  /* data frames per tag-storage frame (4 bits per 16 bytes) */
#define TM_SS_MAX_PHASES 4u

/* ------------------------------------------------------------------ */
/* Vocabulary                                                          */
/* ------------------------------------------------------------------ */

typedef enum tm_ss_policy {
	TM_SS_STATIC = 0,     /* tag storage never holds data (today's default) */
	TM_SS_CMA,            /* tag storage is CMA: movable data may live there; a
	                         tagged allocation reserves its tag block with
	                         alloc_contig_range semantics (drain + migrate) */
	TM_SS_CMA_FAST,       /* as CMA, but free tag-storage frames are taken
	                         straight off the buddy lists first (RFC v2 #26) */
	TM_SS_CLEANCACHE,     /* tag storage holds only clean page cache, dropped
	                         (not migrated) when its tag block is needed */
	TM_SS_POLICY_COUNT
} tm_ss_policy;

/* "static", "cma", "cma-fast", "cleancache"; NULL for an invalid value. */
TM_API const char *tm_ss_policy_name(tm_ss_policy p);
/* Parse one of the names above. -EINVAL (naming the text) otherwise. */
TM_API int tm_ss_policy_parse(const char *s, tm_ss_policy *out, tm_error *err);

typedef enum tm_ss_kind {
	TM_SS_MOVABLE = 0,    /* anonymous user memory: migratable, may be tagged */
	TM_SS_PAGECACHE,      /* clean page cache: migratable or droppable */
	TM_SS_UNMOVABLE,      /* kernel memory: never moved */
	TM_SS_RECLAIMABLE,    /* reclaimable kernel memory (slab): never moved */
	TM_SS_KIND_COUNT
} tm_ss_kind;

/* "movable", "pagecache", "unmovable", "reclaimable"; NULL if invalid. */
TM_API const char *tm_ss_kind_name(tm_ss_kind k);

typedef enum tm_ss_op {
	TM_SS_OP_ALLOC = 0,   /* obj gets a folio of 2^order frames of a kind */
	TM_SS_OP_FREE,        /* obj's folio is freed (it must not be pinned) */
	TM_SS_OP_TAG,         /* mprotect(PROT_MTE) of an untagged movable folio */
	TM_SS_OP_PIN,         /* long-term pin (flag LONGTERM: FOLL_LONGTERM) */
	TM_SS_OP_UNPIN,       /* drop one pin */
	TM_SS_OP_READ,        /* access; page cache that was dropped refaults */
	TM_SS_OP_COUNT
} tm_ss_op;

#define TM_SS_EV_TAGGED   0x01u  /* alloc: the folio is tagged (movable only) */
#define TM_SS_EV_LONGTERM 0x02u  /* pin: FOLL_LONGTERM (migrate out of CMA first);
                                    without it the pin is taken in place, as
                                    vmsplice() does */

/* One event. obj is a dense object id in [0, max_objects). */
typedef struct tm_ss_event {
	uint32_t obj;
	uint8_t op;      /* tm_ss_op */
	uint8_t order;   /* alloc only: 0..TM_SS_MAX_ORDER */
	uint8_t kind;    /* alloc only: tm_ss_kind */
	uint8_t flags;   /* TM_SS_EV_* */
} tm_ss_event;

/* "alloc", "free", "tag", "pin", "unpin", "read"; NULL if invalid. */
TM_API const char *tm_ss_op_name(tm_ss_op op);

/* ------------------------------------------------------------------ */
/* Cost table                                                          */
/* ------------------------------------------------------------------ */

typedef enum tm_ss_cost_key {
	TM_SS_COST_ALLOC_FOLIO = 0, /* per folio allocated from the buddy lists */
	TM_SS_COST_FREE_FOLIO,      /* per folio freed */
	TM_SS_COST_CLEAR_FRAME,     /* per new anonymous frame zeroed */
	TM_SS_COST_TAG_CLEAR_FRAME, /* per frame whose tags are initialised */
	TM_SS_COST_READ_FRAME,      /* per frame read from storage (first read or refault) */
	TM_SS_COST_MIGRATE_FRAME,   /* per frame migrated (copy + unmap/remap) */
	TM_SS_COST_DROP_FRAME,      /* per clean page-cache frame dropped */
	TM_SS_COST_TAKEOFF_FRAME,   /* per free frame taken off the buddy lists */
	TM_SS_COST_CONTIG_RANGE,    /* per alloc_contig_range call (isolation etc.) */
	TM_SS_COST_DRAIN,           /* per lru_cache_disable(): per-CPU drain + IPIs */
	TM_SS_COST_EVICT_FRAME,     /* per frame reclaimed under memory pressure */
	TM_SS_COST_CLEANCACHE_HIT,  /* per frame read back from the cleancache */
	TM_SS_COST_ALLOC_FAIL,      /* per failed allocation (retry/fault path) */
	TM_SS_COST_COUNT
} tm_ss_cost_key;

/* Room for cost keys: tm_ss_costs is embedded in tm_ss_config, so its size
 * is fixed (tagmem/api.h); keys added later take slots up to this. */
#define TM_SS_COST_SLOTS 32

typedef struct tm_ss_costs {
	uint64_t ns[TM_SS_COST_SLOTS];  /* [0, TM_SS_COST_COUNT) used; the rest 0 */
	bool overridden;            /* true once anything differs from the default */
} tm_ss_costs;

/* The default table (docs/STORAGE-MODEL.md gives the source of each number). */
TM_API void tm_ss_costs_default(tm_ss_costs *c);
/* Name ("alloc_folio", ...), unit ("folio", "frame", "call") and a one-line
 * justification of a key's default; NULL for an invalid key. */
TM_API const char *tm_ss_cost_name(tm_ss_cost_key k);
TM_API const char *tm_ss_cost_unit(tm_ss_cost_key k);
TM_API const char *tm_ss_cost_source(tm_ss_cost_key k);
/* Set one entry from "KEY=NS" (NS a decimal integer of nanoseconds).
 * -EINVAL naming the key or value; nothing is changed on error. */
TM_API int tm_ss_costs_set(tm_ss_costs *c, const char *kv, tm_error *err);
/* Apply a file of "KEY=NS" lines ('#' starts a comment, blank lines are
 * ignored). Every line is validated before any entry changes; errors name
 * the file and line. */
TM_API int tm_ss_costs_load(tm_ss_costs *c, const char *path, tm_error *err);

/* ------------------------------------------------------------------ */
/* The simulator                                                       */
/* ------------------------------------------------------------------ */

typedef struct tm_ss_config {
	uint32_t struct_size;      /* sizeof(this struct), or 0 for the 0.1 layout
				     (tagmem/api.h, "Structs that grow") */
	uint64_t mem_bytes;        /* physical memory; default 16 GiB */
	uint32_t page_size;        /* frame size; default 4096 */
	uint32_t tag_block_frames; /* tag-storage frames per tag block; default 1
	                              (the block-size = <0x1000> of the RFC's FVP
	                              example) */
	tm_ss_policy policy;
	uint32_t max_objects;      /* object ids are 0..max_objects-1; 0 = one per frame */
	uint32_t tag_retries;      /* extra placements tried when a tag block cannot
	                              be reserved (0: the allocation fails, RFC v2) */
	int check_invariants;      /* debug builds: 1 check after every event,
	                              0 never, -1 (default) only when the memory
	                              has at most 65536 frames */
	double wmark_low_pct;      /* background reclaim starts below this much
	                              free memory (% of frames); default 0.5 */
	double wmark_high_pct;     /* ... and stops above this; default 1.0 */
	tm_ss_costs costs;
} tm_ss_config;

/* What tm_ss_config_default calls with the caller's sizeof(*c): the
 * defaults into the first size bytes, struct_size = size. -EINVAL
 * (nothing written) for a size below the 0.1 layout. */
TM_API int tm_ss_config_default_sized(tm_ss_config *c, size_t size);

/* The defaults documented above, struct_size set. */
static inline void tm_ss_config_default(tm_ss_config *c)
{
	(void)tm_ss_config_default_sized(c, sizeof(*c));
}

typedef struct tm_ss_geometry {
	uint64_t mem_bytes;         /* modelled: frames * page_size (rounded down) */
	uint32_t page_size;
	uint32_t frames;            /* data_frames + tag_frames */
	uint32_t data_frames;       /* frames [0, data_frames) can be tagged */
	uint32_t tag_frames;        /* frames [data_frames, frames) hold tags */
	uint32_t tag_blocks;
	uint32_t tag_block_frames;
} tm_ss_geometry;

/* Counters: every cost unit, plus what the workload did. */
typedef struct tm_ss_stats {
	uint64_t events;
	uint64_t ops[TM_SS_OP_COUNT];     /* events of each op */
	uint64_t tagged_allocs;           /* allocations and tag events needing tags */
	uint64_t tagged_alloc_failures;   /* ... that failed: tag storage not reservable */
	uint64_t fail_pinned;             /*   reservations failed on a pinned occupant */
	uint64_t fail_nomem;              /*   ... on no memory to migrate an occupant to */
	uint64_t alloc_failures;          /* allocations (tagged or not) and refaults
	                                     that found no free frames */
	uint64_t pin_failures;            /* FOLL_LONGTERM pins that could not migrate */
	uint64_t reservations;            /* tag blocks reserved */
	uint64_t releases;                /* tag blocks released */
	uint64_t contig_calls;            /* alloc_contig_range calls */
	uint64_t drains;                  /* lru_cache_disable() calls */
	uint64_t frames_taken_fast;       /* free frames taken off the buddy lists */
	uint64_t frames_migrated;         /* frames copied by migration */
	uint64_t frames_dropped;          /* clean page cache dropped to reserve tags */
	uint64_t frames_evicted;          /* page cache reclaimed under pressure */
	uint64_t frames_compacted;        /* frames migrated by compaction (high-order
	                                     allocations), not counted as migrated */
	uint64_t refaults;                /* reads of dropped or evicted page cache */
	uint64_t refaults_policy;         /*   of which dropped by the policy */
	uint64_t refault_frames;
	uint64_t cleancache_hits;         /* frames read back from the cleancache */
	uint64_t ops_on_failed;           /* events on objects whose alloc failed */
	uint64_t modelled_ns;             /* sum of all modelled costs */
	uint64_t tagged_ns;               /* ... spent in tagged allocations */
	uint64_t tagged_alloc_p50_ns;     /* nearest-rank percentiles of the */
	uint64_t tagged_alloc_p99_ns;     /* modelled cost of one tagged allocation */
	uint64_t tagged_alloc_max_ns;     /* (exact, or within 1/64 above) */
	double usable_gain_pct;           /* mean over events of tag-storage frames
	                                     not holding tags, % of all frames */
	double used_gain_pct;             /* mean of tag-storage frames holding data */
	double tag_reserved_pct;          /* mean of tag-storage frames holding tags,
	                                     % of the tag storage */
	uint32_t free_frames;             /* now */
	uint32_t tag_frames_reserved;     /* now */
	uint32_t tag_frames_used;         /* now: tag-storage frames holding data */
} tm_ss_stats;

/* The geometry a configuration gives, without building the model; -EINVAL
 * naming the field for a bad configuration. */
TM_API int tm_ss_config_geometry(const tm_ss_config *cfg, tm_ss_geometry *g, tm_error *err);

typedef struct tm_ss_sim tm_ss_sim;

/* Build the model: every frame free (tag storage too, except under static).
 * -EINVAL naming the field for a bad configuration, -ENOMEM. */
TM_API int tm_ss_create(const tm_ss_config *cfg, tm_ss_sim **out, tm_error *err);
TM_API void tm_ss_destroy(tm_ss_sim *s);

TM_API void tm_ss_get_geometry(const tm_ss_sim *s, tm_ss_geometry *g);

/* Apply one event. Events the model handles (an allocation finding no
 * memory, a reservation failing) return 0 and are counted; -EINVAL/-EEXIST/
 * -EBUSY/-ENOENT are for events that are invalid in themselves (unknown op,
 * allocating a live id, freeing a pinned object...), naming the object. In
 * debug builds a broken invariant returns -EFAULT saying which. */
TM_API int tm_ss_apply(tm_ss_sim *s, const tm_ss_event *ev, tm_error *err);
/* Apply n events; stops at the first error, naming its index. */
TM_API int tm_ss_apply_many(tm_ss_sim *s, const tm_ss_event *ev, size_t n, tm_error *err);

/* Place a folio on exact frames [pfn, pfn + 2^order), which must be free
 * (for hand-built cases and what-if setups; a tagged folio must be in the
 * data frames and reserves its tag blocks as an allocation would). Counts as
 * an allocation event. -EBUSY naming the frame if it is not free. */
TM_API int tm_ss_alloc_at(tm_ss_sim *s, uint32_t obj, uint32_t pfn, unsigned order,
			  tm_ss_kind kind, unsigned flags, tm_error *err);

/* Modelled cost of the last event, in ns. */
TM_API uint64_t tm_ss_last_cost_ns(const tm_ss_sim *s);

TM_API void tm_ss_get_stats(const tm_ss_sim *s, tm_ss_stats *out);
/* Forget the counters, averages and latency samples (not the state): what
 * follows is measured from here. */
TM_API void tm_ss_reset_stats(tm_ss_sim *s);

typedef struct tm_ss_obj_info {
	bool live;            /* allocated and not freed (even if it has no frames) */
	bool present;         /* has frames */
	bool failed;          /* its allocation failed */
	bool dropped;         /* page cache dropped or evicted; a read refaults */
	bool tagged;
	bool in_tag_storage;
	tm_ss_kind kind;
	unsigned order;
	unsigned pins;
	uint32_t pfn;         /* first frame when present */
} tm_ss_obj_info;

/* -ENOENT if obj is out of range. */
TM_API int tm_ss_get_obj(const tm_ss_sim *s, uint32_t obj, tm_ss_obj_info *out);

/* Check every invariant (O(frames + objects)): each frame in exactly one
 * block, free lists and counts consistent, tag blocks reserved exactly when
 * tagged frames exist in their range (reuse policies), pinned folios never
 * moved, tag-storage frames never tagged, placement allowed by the policy.
 * 0, or -EFAULT with the first broken invariant and where. */
TM_API int tm_ss_check(const tm_ss_sim *s, tm_error *err);

/* ------------------------------------------------------------------ */
/* Workloads                                                           */
/* ------------------------------------------------------------------ */

/* One phase of a synthetic workload. Fractions are in [0, 1]. */
typedef struct tm_ss_phase {
	double share;                /* fraction of the run's measured events */
	double tagged_fraction;      /* of movable (anonymous) allocations */
	double pagecache_fraction;   /* of allocations */
	double unmovable_fraction;   /* of allocations */
	double reclaimable_fraction; /* of allocations */
	double churn;                /* fraction of events that allocate or free */
	double occupancy;            /* live demand aimed at, fraction of all frames */
	double pinned_fraction;      /* of movable allocations, pinned until freed */
	bool pin_longterm;           /* FOLL_LONGTERM pins (else in place) */
	bool sweep_tagged;           /* --tagged-fraction / --plot change this phase */
	double adversary_rate;       /* share of events where an adversary acts:
	                                it takes a movable page and pins it in
	                                place (vmsplice), or, once it holds
	                                adversary_cap of RAM, unpins and frees one
	                                of its pages (to take a new one later) */
	double adversary_cap;        /* fraction of RAM the adversary holds */
	bool warmup;                 /* a leading warm-up phase: simulated, not
	                                measured; it lasts until the live demand
	                                reaches its occupancy (share must be 0) */
	double tag_event_rate;       /* of access events: mprotect(PROT_MTE) of a
	                                random untagged movable folio */
	double read_skew;            /* reads pick page cache with this skew: 1 is
	                                uniform, k gives the hottest fraction x of
	                                it a share x^(1/k) of the reads */
	uint32_t order_weight[TM_SS_MAX_ORDER + 1];    /* anon folio orders */
	uint32_t pc_order_weight[TM_SS_MAX_ORDER + 1]; /* page-cache folio orders */
} tm_ss_phase;

typedef struct tm_ss_workload {
	char name[32];
	uint64_t events;             /* measured events (warm-up comes on top) */
	uint64_t seed;
	unsigned nphases;
	tm_ss_phase phase[TM_SS_MAX_PHASES];
} tm_ss_workload;

/* Presets: "synthetic" (the defaults: a warm-up that fills memory, then the
 * same mix measured), "android", "kvm-server", "adversary" (docs/
 * STORAGE-MODEL.md describes each). events and seed are set to 10 000 000
 * and 1. -EINVAL naming an unknown name. */
TM_API int tm_ss_workload_preset(const char *name, tm_ss_workload *w, tm_error *err);
/* Set the tagged fraction of every phase marked sweep_tagged. */
TM_API void tm_ss_workload_set_tagged(tm_ss_workload *w, double fraction);
/* Parse an order mix "ORDER:WEIGHT[,ORDER:WEIGHT...]" (e.g. "0:80,4:15,9:5")
 * into w[0..TM_SS_MAX_ORDER]. -EINVAL naming the item. */
TM_API int tm_ss_order_mix_parse(const char *s, uint32_t w[TM_SS_MAX_ORDER + 1], tm_error *err);
/* Validate fractions, shares and mixes; -EINVAL naming phase and field. */
TM_API int tm_ss_workload_validate(const tm_ss_workload *w, tm_error *err);

/* Deterministic event generator: the same workload (with its seed) and the
 * same number of frames always produce the same event sequence, whatever
 * the policy, because it never looks at the simulator's state. */
typedef struct tm_ss_gen tm_ss_gen;
TM_API int tm_ss_gen_create(const tm_ss_workload *w, uint32_t frames, tm_ss_gen **out,
			    tm_error *err);
TM_API void tm_ss_gen_destroy(tm_ss_gen *g);
/* Object ids the sequence uses are below this (give it to tm_ss_config). */
TM_API uint32_t tm_ss_gen_max_objects(const tm_ss_gen *g);
/* Write up to max next events into buf; returns how many (0 at the end). */
TM_API size_t tm_ss_gen_fill(tm_ss_gen *g, tm_ss_event *buf, size_t max);
/* True while the next events belong to a warm-up phase. tm_ss_gen_fill
 * never returns warm-up and measured events in the same call. */
TM_API bool tm_ss_gen_warming(const tm_ss_gen *g);

/* ------------------------------------------------------------------ */
/* Traces (docs/FORMAT.md §storage-trace)                               */
/* ------------------------------------------------------------------ */

typedef struct tm_ss_trace {
	tm_ss_event *ev;
	size_t n;
	uint32_t max_objects;        /* dense ids used by ev */
} tm_ss_trace;

/* Parse a whole trace text. Ids in the text are remapped to dense ids. The
 * whole text is validated (syntax and the lifetime of every id) before the
 * result is filled; errors name the trace and the line. */
TM_API int tm_ss_trace_parse(const char *text, size_t len, const char *name,
			     tm_ss_trace *out, tm_error *err);
TM_API int tm_ss_trace_load(const char *path, tm_ss_trace *out, tm_error *err);
TM_API void tm_ss_trace_free(tm_ss_trace *t);
/* Write the header line of a trace, then events one per line (call
 * tm_ss_trace_write_events as often as needed). -EIO, or -EINVAL naming an
 * event that is not valid. */
TM_API int tm_ss_trace_write_header(FILE *f, tm_error *err);
TM_API int tm_ss_trace_write_events(FILE *f, const tm_ss_event *ev, size_t n, tm_error *err);

/* ------------------------------------------------------------------ */
/* Running                                                             */
/* ------------------------------------------------------------------ */

typedef struct tm_ss_result {
	tm_ss_policy policy;
	tm_ss_geometry geo;
	tm_ss_stats st;
	uint64_t warmup_events;      /* simulated before measuring (not in st) */
	double seconds;              /* wall time of the measured events:
	                                generation (its share, when shared by
	                                tm_ss_run_policies) + simulation */
	double events_per_s;         /* events / seconds */
	double cpu_seconds;          /* CPU time of the running thread (the machine
	                                may be shared: this is the one-core cost) */
	double gen_cpu_seconds;      /* ... of which generating events */
	double events_per_cpu_s;     /* events / cpu_seconds */
	double sim_events_per_cpu_s; /* events / (cpu_seconds - gen_cpu_seconds) */
	uint64_t stream_hash;        /* hash of the event sequence (same for every
	                                policy given the same workload and seed) */
} tm_ss_result;

/* Run one policy on a workload (w, generated) or a trace (t): exactly one of
 * the two is non-NULL. cfg->max_objects is set from the source. */
TM_API int tm_ss_run(const tm_ss_config *cfg, const tm_ss_workload *w,
		     const tm_ss_trace *t, tm_ss_result *res, tm_error *err);

/* Run npol policies (1..TM_SS_POLICY_COUNT; cfg->policy is ignored) on one
 * workload or trace, generating each chunk of events once and applying it
 * to every policy's model in turn. res[i] is exactly what tm_ss_run would
 * give for pol[i], except the speed fields: seconds and cpu_seconds are
 * policy i's model time plus 1/npol of the generation time (gen_cpu_seconds
 * is that share). Memory: npol models at once. Errors name the policy. */
TM_API int tm_ss_run_policies(const tm_ss_config *cfg, const tm_ss_policy *pol, unsigned npol,
			      const tm_ss_workload *w, const tm_ss_trace *t, tm_ss_result *res,
			      tm_error *err);

/* Hash helper used by tm_ss_run, exposed so tests can hash event streams. */
TM_API uint64_t tm_ss_hash_events(uint64_t h, const tm_ss_event *ev, size_t n);

#ifdef __cplusplus
}
#endif
#endif
