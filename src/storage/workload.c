/*
 * workload.c - the storage simulator's workloads: the synthetic phase
 * parameters, the three scenarios from the kernel discussion as presets
 * (android phone, KVM server with all guest memory tagged, adversary pinning
 * tag storage), and the deterministic event generator.
 *
 * The generator keeps its own view of the workload (which objects are live,
 * tagged, pinned, page cache) and never looks at the simulator, so the same
 * seed gives the same event sequence for every policy. Picking a random live
 * object is O(1) (dense id lists with swap-remove), and nothing is allocated
 * after tm_ss_gen_create.
 */
#include "tagmem/storage_sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "storage/bigmem.h"
#include "storage/prefetch.h"

#define NIL UINT32_MAX

/* ---------------------------------------------------------------- */
/* presets                                                          */
/* ---------------------------------------------------------------- */

int tm_ss_order_mix_parse(const char *s, uint32_t w[TM_SS_MAX_ORDER + 1], tm_error *err)
{
	uint32_t tmp[TM_SS_MAX_ORDER + 1] = { 0 };
	uint64_t total = 0;
	const char *p = s;

	while (*p) {
		char *end;
		unsigned long o, wt;

		errno = 0;
		o = strtoul(p, &end, 10);
		if (end == p || *end != ':' || o > TM_SS_MAX_ORDER)
			return tm_error_set(err, -EINVAL,
					    "order mix '%s': '%s' is not ORDER:WEIGHT with ORDER 0..%u",
					    s, p, TM_SS_MAX_ORDER);
		p = end + 1;
		wt = strtoul(p, &end, 10);
		if (end == p || errno || wt > 1000000 || (*end && *end != ','))
			return tm_error_set(err, -EINVAL,
					    "order mix '%s': weight of order %lu must be 0..1000000",
					    s, o);
		tmp[o] += (uint32_t)wt;
		total += wt;
		p = *end ? end + 1 : end;
	}
	if (total == 0)
		return tm_error_set(err, -EINVAL, "order mix '%s': all weights are zero", s);
	memcpy(w, tmp, sizeof(tmp));
	return 0;
}

static void phase_defaults(tm_ss_phase *p)
{
	memset(p, 0, sizeof(*p));
	p->share = 1.0;
	p->tagged_fraction = 0.2;
	p->pagecache_fraction = 0.4;
	p->unmovable_fraction = 0.05;
	p->reclaimable_fraction = 0.02;
	p->churn = 0.5;
	p->occupancy = 1.05;
	p->pin_longterm = true;
	p->sweep_tagged = true;
	p->read_skew = 3.0;
	p->order_weight[0] = 90;
	p->order_weight[2] = 5;
	p->order_weight[4] = 5;
	p->pc_order_weight[0] = 100;
}

/* A phone: memory always full (page cache thrashes), many short-lived apps,
 * a minority of anonymous memory tagged (MTE-enabled apps), 16/64 KiB mTHP.
 * The same life runs unmeasured until memory is full. */
static void preset_android(tm_ss_workload *w)
{
	tm_ss_phase *p = &w->phase[1];

	w->nphases = 2;
	phase_defaults(p);
	p->tagged_fraction = 0.10;
	p->pagecache_fraction = 0.40;
	p->unmovable_fraction = 0.10;
	p->reclaimable_fraction = 0.03;
	p->churn = 0.6;
	p->occupancy = 1.15;
	p->pinned_fraction = 0.001;
	memset(p->order_weight, 0, sizeof(p->order_weight));
	p->order_weight[0] = 85;
	p->order_weight[2] = 5;
	p->order_weight[4] = 10;
	w->phase[0] = *p;
	w->phase[0].share = 0;
	w->phase[0].warmup = true;
}

/* A KVM host: the page cache (large folios) fills memory first, then guests
 * whose memory is all tagged (KVM must assume every guest page is tagged)
 * arrive as 2 MiB THP folios and come and go; some host page cache churns. */
static void preset_kvm(tm_ss_workload *w)
{
	tm_ss_phase *boot = &w->phase[0], *vms = &w->phase[1];

	w->nphases = 2;
	phase_defaults(boot);
	boot->share = 0;
	boot->warmup = true;
	boot->sweep_tagged = false;
	boot->tagged_fraction = 0;
	boot->pagecache_fraction = 0.90;
	boot->unmovable_fraction = 0.04;
	boot->reclaimable_fraction = 0.04;
	boot->churn = 0.95;
	boot->occupancy = 1.0;
	memset(boot->pc_order_weight, 0, sizeof(boot->pc_order_weight));
	boot->pc_order_weight[0] = 40;
	boot->pc_order_weight[2] = 30;
	boot->pc_order_weight[4] = 30;
	phase_defaults(vms);
	vms->share = 1.0;
	vms->tagged_fraction = 1.0;
	vms->pagecache_fraction = 0.30;
	vms->unmovable_fraction = 0.02;
	vms->reclaimable_fraction = 0.01;
	vms->churn = 0.3;
	vms->occupancy = 1.0;
	memset(vms->order_weight, 0, sizeof(vms->order_weight));
	vms->order_weight[9] = 100;
	memcpy(vms->pc_order_weight, boot->pc_order_weight, sizeof(vms->pc_order_weight));
}

/* A victim workload with much tagged memory, and a malicious process that
 * holds 10% of RAM in movable pages pinned in place (vmsplice does not use
 * FOLL_LONGTERM, so they stay where they are) and keeps re-pinning: it frees
 * a random page of its own and takes a new one, so over time its pages land
 * wherever the allocator puts movable memory, tag storage included. It
 * starts with memory filling up; the measured part is steady state. */
static void preset_adversary(tm_ss_workload *w)
{
	tm_ss_phase *fill = &w->phase[0], *vic = &w->phase[1];

	w->nphases = 2;
	phase_defaults(vic);
	vic->share = 1.0;
	vic->tagged_fraction = 0.1;
	vic->pagecache_fraction = 0.4;
	vic->churn = 0.6;
	vic->occupancy = 1.05;
	vic->adversary_cap = 0.10;
	vic->adversary_rate = 0.05;
	*fill = *vic;
	fill->share = 0;
	fill->warmup = true;
	fill->adversary_rate = 0.2;
}

int tm_ss_workload_preset(const char *name, tm_ss_workload *w, tm_error *err)
{
	memset(w, 0, sizeof(*w));
	w->events = 10000000;
	w->seed = 1;
	if (strcmp(name, "synthetic") == 0) {
		w->nphases = 2;
		phase_defaults(&w->phase[0]);
		phase_defaults(&w->phase[1]);
		w->phase[0].share = 0;
		w->phase[0].warmup = true;
	} else if (strcmp(name, "android") == 0) {
		preset_android(w);
	} else if (strcmp(name, "kvm-server") == 0) {
		preset_kvm(w);
	} else if (strcmp(name, "adversary") == 0) {
		preset_adversary(w);
	} else {
		return tm_error_set(err, -EINVAL,
				    "unknown workload '%s' (android, kvm-server, adversary, synthetic, trace:FILE)",
				    name);
	}
	snprintf(w->name, sizeof(w->name), "%s", name);
	return 0;
}

void tm_ss_workload_set_tagged(tm_ss_workload *w, double fraction)
{
	for (unsigned i = 0; i < w->nphases; i++)
		if (w->phase[i].sweep_tagged)
			w->phase[i].tagged_fraction = fraction;
}

static bool frac(double x)
{
	return x >= 0 && x <= 1;
}

static int validate_phase(const tm_ss_phase *p, unsigned i, tm_error *err)
{
	const struct { const char *name; double v; } f[] = {
		{ "share", p->share }, { "tagged_fraction", p->tagged_fraction },
		{ "pagecache_fraction", p->pagecache_fraction },
		{ "unmovable_fraction", p->unmovable_fraction },
		{ "reclaimable_fraction", p->reclaimable_fraction }, { "churn", p->churn },
		{ "pinned_fraction", p->pinned_fraction }, { "tag_event_rate", p->tag_event_rate },
		{ "adversary_rate", p->adversary_rate }, { "adversary_cap", p->adversary_cap },
	};

	for (unsigned k = 0; k < sizeof(f) / sizeof(f[0]); k++)
		if (!frac(f[k].v))
			return tm_error_set(err, -EINVAL, "workload phase %u: %s %g is not in [0, 1]",
					    i, f[k].name, f[k].v);
	if (p->pagecache_fraction + p->unmovable_fraction + p->reclaimable_fraction > 1.0 + 1e-9)
		return tm_error_set(err, -EINVAL,
				    "workload phase %u: page-cache + unmovable + reclaimable fractions exceed 1", i);
	if (!(p->read_skew >= 1 && p->read_skew <= 16))
		return tm_error_set(err, -EINVAL, "workload phase %u: read_skew %g is not in [1, 16]",
				    i, p->read_skew);
	if (!(p->occupancy > 0 && p->occupancy <= 4))
		return tm_error_set(err, -EINVAL, "workload phase %u: occupancy %g is not in (0, 4]",
				    i, p->occupancy);
	uint64_t a = 0, b = 0;

	for (unsigned o = 0; o <= TM_SS_MAX_ORDER; o++) {
		a += p->order_weight[o];
		b += p->pc_order_weight[o];
	}
	if (a == 0 || b == 0)
		return tm_error_set(err, -EINVAL, "workload phase %u: an order mix has no weight", i);
	return 0;
}

int tm_ss_workload_validate(const tm_ss_workload *w, tm_error *err)
{
	double share = 0;

	if (w->nphases == 0 || w->nphases > TM_SS_MAX_PHASES)
		return tm_error_set(err, -EINVAL, "workload: %u phases (1..%u)", w->nphases,
				    TM_SS_MAX_PHASES);
	for (unsigned i = 0; i < w->nphases; i++) {
		const tm_ss_phase *p = &w->phase[i];
		int r = validate_phase(p, i, err);

		if (r)
			return r;
		if (p->warmup && (p->share != 0 || (i > 0 && !w->phase[i - 1].warmup)))
			return tm_error_set(err, -EINVAL,
					    "workload phase %u: warm-up phases come first and have share 0 "
					    "(they run until memory demand reaches their occupancy)", i);
		share += p->share;
	}
	if (w->phase[w->nphases - 1].warmup)
		return tm_error_set(err, -EINVAL, "workload: the last phase must be measured");
	if (fabs(share - 1.0) > 1e-6)
		return tm_error_set(err, -EINVAL, "workload: measured phase shares add up to %g, not 1",
				    share);
	return 0;
}


/* ---------------------------------------------------------------- */
/* generator                                                        */
/* ---------------------------------------------------------------- */

/*
 * Speed. The generator's tables (objects, id lists) are far larger than the
 * caches and each pick lands at random: a dependent miss costs 200-400 ns
 * on the development VM, so the time goes into waiting for memory, not
 * into arithmetic. Three things hide that wait without changing an event:
 *   - the random numbers are drawn AHEAD before they are used (the xoshiro
 *     stream is tm_rng's, only read from a ring), so the numbers of the
 *     next events are known;
 *   - a predictor decodes the next PREDICT events from those numbers, as
 *     gen_one would, in a predicted state (exact, except that a free is
 *     guessed to free one frame of a kind on no second list: right ~93% of
 *     the time on the presets), and fetches the list slot each one picks;
 *     STAGE2 events before use it fetches the object in that slot, STAGE3
 *     before use the object's slot in its second list. After each real
 *     event, what really changed replaces the guess; when a prediction does
 *     not start where the real event starts, it starts again from the real
 *     state (measured: 1.3% of events on android). The predictor only ever
 *     fetches: a wrong guess costs a wasted fetch, never a different event;
 *   - pow() of the skewed page-cache read is replaced, for integer skews, by
 *     repeated multiplication when that provably gives the same index (the
 *     two results differ by far less than the margin tested); otherwise
 *     pow() decides, so the index is always pow()'s.
 * Prefetches are written with tm_ssi_prefetch (prefetch.h): GCC 12 deleted
 * the __builtin_prefetch calls of the object and second-list stages.
 */

enum { G_LIVE = 1, G_TAGGED = 2, G_PINNED = 4, G_ADVERSARY = 8 };
enum { L_FREEABLE = 0, L_PC, L_UNTAGGED, L_ADV, L_COUNT };

/* An object is on at most two lists: slot 0 of pos is its place in
 * L_FREEABLE (the adversary's pages: L_ADV), slot 1 in L_PC (page cache)
 * or L_UNTAGGED (untagged movable memory). 12 bytes per object. */
struct gobj {
	uint32_t pos[2];
	uint8_t kind, order, flags;
};

struct idlist {
	uint32_t *ids;
	uint32_t n;
};

#define AHEAD 256u  /* random numbers drawn before their use (a power of two) */
#define PREDICT 16u /* events predicted ahead (6 numbers at most each) */
#define STAGE2 10u  /* ... when the object in a predicted slot is fetched */
#define STAGE3 4u  /* ... when that object's second-list slot is fetched */
#define PQ 32u      /* ring of predictions (a power of two > PREDICT) */

/* The part of the workload's state that decides which numbers an event
 * draws and what they pick. */
struct gstate {
	uint64_t demand, adv_demand;
	uint32_t nspare;
	uint32_t n[L_COUNT];
};

/* One predicted event: where its numbers start, what it picks (list
 * L_COUNT: nothing), and how it changes the state (modulo 2^64 / 2^32). */
struct pred {
	uint64_t q;
	uint32_t idx;
	unsigned list;
	struct gstate delta;
};

/* What a phase needs at every event, computed once. */
struct gphase {
	double target;              /* occupancy * frames */
	double c_unmov, c_recl, c_pc; /* cumulative kind thresholds */
	double adv_cap;             /* adversary_cap * frames */
	unsigned skew_int;          /* read_skew when it is an integer 1..16, else 0 */
	uint64_t ord_cum[TM_SS_MAX_ORDER + 1], ord_total;
	uint64_t pc_cum[TM_SS_MAX_ORDER + 1], pc_total;
};

struct tm_ss_gen {
	tm_ss_workload w;
	uint32_t frames;
	tm_rng rng;           /* AHEAD draws ahead of the events */
	uint64_t ahead[AHEAD];/* drawn, not yet used: ahead[next_draw % AHEAD] is next */
	uint64_t next_draw;   /* numbers used so far */
	struct pred pq[PQ];   /* predictions [pq_head, pq_tail), the next event first */
	uint64_t pq_head, pq_tail;
	uint64_t pq_next;     /* where the next prediction starts */
	struct gstate pst;    /* the state after the last prediction */
	uint64_t emitted;     /* measured events given so far */
	uint64_t warm_emitted;/* events of the current warm-up phase */
	uint64_t warm_cap;    /* a warm-up phase that cannot fill memory ends here */
	uint64_t phase_end[TM_SS_MAX_PHASES];
	unsigned phase;
	struct gphase ph[TM_SS_MAX_PHASES];
	struct gobj *obj;
	uint32_t nobj;
	uint32_t *spare;      /* unused ids (a stack) */
	uint32_t nspare;
	struct idlist list[L_COUNT];
	uint64_t demand;      /* frames of live objects */
	uint64_t adv_demand;  /* ... of which the adversary's */
	tm_ss_event pending[2];
	unsigned npend;
};

static inline unsigned slot_of(unsigned l)
{
	return l == L_FREEABLE || l == L_ADV ? 0 : 1;
}

static inline void list_add(struct tm_ss_gen *g, unsigned l, uint32_t id)
{
	g->obj[id].pos[slot_of(l)] = g->list[l].n;
	g->list[l].ids[g->list[l].n++] = id;
}

static inline void list_del(struct tm_ss_gen *g, unsigned l, uint32_t id)
{
	struct idlist *L = &g->list[l];
	unsigned s = slot_of(l);
	uint32_t pos = g->obj[id].pos[s];
	uint32_t last = L->ids[--L->n];

	L->ids[pos] = last;
	g->obj[last].pos[s] = pos;
	g->obj[id].pos[s] = NIL;
	if (L->n) /* the next list_del moves this one */
		tm_ssi_prefetch(&g->obj[L->ids[L->n - 1]]);
}

/* The list an object's slot 1 refers to. */
static inline unsigned list1_of(const struct gobj *o)
{
	return o->kind == TM_SS_PAGECACHE ? L_PC : L_UNTAGGED;
}

/* ---- random numbers: tm_rng's xoshiro256** and its conversions, inline ---- */

static inline uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* The same sequence as tm_rng_next (src/common/util.c). */
static inline uint64_t rng_next(tm_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return result;
}

/* tm_rng_below and tm_rng_unit of a drawn number. */
static inline uint64_t below(uint64_t v, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)v * n) >> 64);
}

static inline double unit(uint64_t v)
{
	return (double)(v >> 11) * (1.0 / 9007199254740992.0);
}

/* u^k for integer k by multiplication: within (k - 1) * 2^-53 of the exact
 * power, as pow() is within 1 ulp. */
static inline double ipow(double u, unsigned k)
{
	double x = u;

	for (unsigned j = 1; j < k; j++)
		x *= u;
	return x;
}

/* (uint32_t)(pow(u, k) * n), exactly as pow() would give it. Both pow()
 * and ipow() are within 2^-48 (relative) of the true power, so pow(u, k)
 * lies in [lo, hi]; multiplying by n and truncating are monotonic, so when
 * lo and hi give the same index, pow() gives it too. */
static uint32_t skew_index(double u, double k, unsigned ik, uint32_t n)
{
	if (ik == 1)
		return (uint32_t)(u * n);
	if (ik) {
		double x = ipow(u, ik);
		double lo = x * (1.0 - 0x1p-40), hi = x * (1.0 + 0x1p-40);
		uint32_t a = (uint32_t)(lo * n), b = (uint32_t)(hi * n);

		if (a == b)
			return a;
	}
	return (uint32_t)(pow(u, k) * n);
}

static unsigned pick_order_of(uint64_t v, const uint64_t *cum, uint64_t total);

/* ---- the next random number ---- */

static inline uint64_t drawn(const struct tm_ss_gen *g, uint64_t j)
{
	return g->ahead[j & (AHEAD - 1)];
}

static inline uint64_t draw(struct tm_ss_gen *g)
{
	unsigned i = (unsigned)(g->next_draw++ & (AHEAD - 1));
	uint64_t v = g->ahead[i];

	g->ahead[i] = rng_next(&g->rng);
	return v;
}

/* ---- the predictor (see the top of this section) ---- */

/* The workload's state as the events ahead will change it. */
static void state_of(const struct tm_ss_gen *g, struct gstate *st)
{
	st->demand = g->demand;
	st->adv_demand = g->adv_demand;
	st->nspare = g->nspare;
	st->n[0] = g->list[0].n, st->n[1] = g->list[1].n;
	st->n[2] = g->list[2].n, st->n[3] = g->list[3].n;
}

/* Decode the event that starts at draw q from the drawn numbers, as gen_one
 * would in the predicted state (a free is guessed to free one frame of a
 * kind on no second list), and fetch the list slot it picks. False when
 * the numbers it may need are not drawn yet. The state is handled in
 * scalars: reading back a struct just written field by field (as a vector)
 * waits for the generator's cache-missing stores to drain. */
static bool predict_one(struct tm_ss_gen *g, struct pred *pe)
{
	const tm_ss_phase *p = &g->w.phase[g->phase];
	const struct gphase *gp = &g->ph[g->phase];
	struct gstate *st = &g->pst;
	uint64_t j = g->pq_next, demand = st->demand, adv = st->adv_demand;
	uint32_t spare = st->nspare, nf = st->n[L_FREEABLE], npc = st->n[L_PC],
		 nu = st->n[L_UNTAGGED], nadv = st->n[L_ADV];
	unsigned list = L_COUNT;
	uint32_t idx = 0;

	if (j + 6 > g->next_draw + AHEAD)
		return false;
	bool can_alloc = spare > 0 && (double)demand < gp->target;

	if (p->adversary_rate > 0 && spare > 0 && unit(drawn(g, j++)) < p->adversary_rate) {
		if ((double)adv < gp->adv_cap || nadv == 0) {
			spare--, demand++, adv++, nadv++;
		} else {
			list = L_ADV;
			idx = (uint32_t)below(drawn(g, j++), nadv);
			spare++, demand--, adv--, nadv--;
		}
	} else if (unit(drawn(g, j++)) < p->churn && (can_alloc || nf)) {
		if (can_alloc) {
			double x = unit(drawn(g, j++));
			unsigned order = 0;

			if (x >= gp->c_recl && x < gp->c_pc) {
				order = pick_order_of(drawn(g, j++), gp->pc_cum, gp->pc_total);
				npc++;
			} else if (x >= gp->c_pc) {
				order = pick_order_of(drawn(g, j++), gp->ord_cum, gp->ord_total);
				if (!(unit(drawn(g, j++)) < p->tagged_fraction))
					nu++;
				j++; /* pinned? */
			}
			spare--, demand += 1u << order, nf++;
		} else {
			list = L_FREEABLE;
			idx = (uint32_t)below(drawn(g, j++), nf);
			spare++, demand--, nf--;
		}
	} else if (nu && unit(drawn(g, j++)) < p->tag_event_rate) {
		list = L_UNTAGGED;
		idx = (uint32_t)below(drawn(g, j++), nu);
		nu--;
	} else if (npc) {
		double u = unit(drawn(g, j++));
		uint32_t i = gp->skew_int ? (uint32_t)(ipow(u, gp->skew_int) * npc) :
			     (uint32_t)(pow(u, p->read_skew) * npc);

		list = L_PC;
		idx = i < npc ? i : npc - 1;
	} else if (nf) {
		list = L_FREEABLE;
		idx = (uint32_t)below(drawn(g, j++), nf);
	}
	pe->q = g->pq_next;
	pe->list = list;
	pe->idx = idx;
	pe->delta.demand = demand - st->demand;
	pe->delta.adv_demand = adv - st->adv_demand;
	pe->delta.nspare = spare - st->nspare;
	pe->delta.n[L_FREEABLE] = nf - st->n[L_FREEABLE];
	pe->delta.n[L_PC] = npc - st->n[L_PC];
	pe->delta.n[L_UNTAGGED] = nu - st->n[L_UNTAGGED];
	pe->delta.n[L_ADV] = nadv - st->n[L_ADV];
	st->demand = demand, st->adv_demand = adv, st->nspare = spare;
	st->n[L_FREEABLE] = nf, st->n[L_PC] = npc, st->n[L_UNTAGGED] = nu, st->n[L_ADV] = nadv;
	g->pq_next = j;
	if (list != L_COUNT)
		tm_ssi_prefetch(&g->list[list].ids[idx]);
	return true;
}

static void predict_more(struct tm_ss_gen *g)
{
	while (g->pq_tail - g->pq_head < PREDICT &&
	       predict_one(g, &g->pq[g->pq_tail & (PQ - 1)]))
		g->pq_tail++;
}

/* The real state and position replace the predicted ones. */
static void predict_reset(struct tm_ss_gen *g)
{
	g->pq_head = g->pq_tail = 0;
	g->pq_next = g->next_draw;
	state_of(g, &g->pst);
	predict_more(g);
}

/* Second and third fetches of a predicted pick: the object in the slot
 * (once the slot is in cache), then that object's slot in its second list,
 * which a free rewrites. */
static void fetch_object(const struct tm_ss_gen *g, const struct pred *pe)
{
	if (pe->list == L_COUNT || pe->list == L_PC || pe->idx >= g->list[pe->list].n)
		return;
	tm_ssi_prefetch(&g->obj[g->list[pe->list].ids[pe->idx]]);
}

static void fetch_slot1(const struct tm_ss_gen *g, const struct pred *pe)
{
	if (pe->list != L_FREEABLE || pe->idx >= g->list[L_FREEABLE].n)
		return;
	const struct gobj *o = &g->obj[g->list[L_FREEABLE].ids[pe->idx]];

	if (o->pos[1] != NIL)
		tm_ssi_prefetch(&g->list[list1_of(o)].ids[o->pos[1]]);
}

/* Around one real event that draws numbers: before it, the prediction for
 * it must start where it starts (else start again from the real state);
 * after it, what it really changed replaces what was predicted, and the
 * window moves on by one event. */
static void predict_check(struct tm_ss_gen *g)
{
	if (g->pq_head == g->pq_tail || g->pq[g->pq_head & (PQ - 1)].q != g->next_draw)
		predict_reset(g);
}

/* The real event changed the state by what it did (the state before it is
 * passed as values: a copy in memory would be read back before the
 * generator's cache-missing stores drain, which stalls); the prediction for
 * it said delta. */
static inline void predict_advance(struct tm_ss_gen *g, uint64_t demand, uint64_t adv_demand,
				   uint32_t nspare, uint32_t n0, uint32_t n1, uint32_t n2, uint32_t n3)
{
	const struct pred *pe = &g->pq[g->pq_head++ & (PQ - 1)];
	struct gstate *st = &g->pst;

	st->demand += g->demand - demand - pe->delta.demand;
	st->adv_demand += g->adv_demand - adv_demand - pe->delta.adv_demand;
	st->nspare += g->nspare - nspare - pe->delta.nspare;
	st->n[0] += g->list[0].n - n0 - pe->delta.n[0];
	st->n[1] += g->list[1].n - n1 - pe->delta.n[1];
	st->n[2] += g->list[2].n - n2 - pe->delta.n[2];
	st->n[3] += g->list[3].n - n3 - pe->delta.n[3];
	predict_more(g);
	if (g->pq_tail - g->pq_head > STAGE2)
		fetch_object(g, &g->pq[(g->pq_head + STAGE2) & (PQ - 1)]);
	if (g->pq_tail - g->pq_head > STAGE3)
		fetch_slot1(g, &g->pq[(g->pq_head + STAGE3) & (PQ - 1)]);
}

void tm_ss_gen_destroy(tm_ss_gen *g)
{
	if (!g)
		return;
	for (unsigned l = 0; l < L_COUNT; l++)
		tm_ssi_big_free(g->list[l].ids, g->nobj, sizeof(uint32_t));
	tm_ssi_big_free(g->obj, g->nobj, sizeof(*g->obj));
	tm_ssi_big_free(g->spare, g->nobj, sizeof(uint32_t));
	free(g);
}

static uint32_t max_live(const tm_ss_workload *w, uint32_t frames)
{
	double occ = 0;

	for (unsigned i = 0; i < w->nphases; i++)
		if (w->phase[i].occupancy > occ)
			occ = w->phase[i].occupancy;
	double n = ceil(occ * frames) + (1u << TM_SS_MAX_ORDER) + 1;

	return n > (double)(NIL - 1) ? NIL - 1 : (uint32_t)n;
}

static void cumulate(const uint32_t *w, uint64_t *cum, uint64_t *total)
{
	uint64_t t = 0;

	for (unsigned o = 0; o <= TM_SS_MAX_ORDER; o++) {
		t += w[o];
		cum[o] = t;
	}
	*total = t;
}

/* Per-phase constants, computed with the same expressions the events use. */
static void prepare_phase(const tm_ss_phase *p, uint32_t frames, struct gphase *gp)
{
	gp->target = p->occupancy * frames;
	gp->c_unmov = p->unmovable_fraction;
	gp->c_recl = p->unmovable_fraction + p->reclaimable_fraction;
	gp->c_pc = p->unmovable_fraction + p->reclaimable_fraction + p->pagecache_fraction;
	gp->adv_cap = p->adversary_cap * frames;
	gp->skew_int = 0;
	for (unsigned k = 1; k <= 16; k++)
		if (p->read_skew == (double)k)
			gp->skew_int = k;
	cumulate(p->order_weight, gp->ord_cum, &gp->ord_total);
	cumulate(p->pc_order_weight, gp->pc_cum, &gp->pc_total);
}

static int gen_alloc_tables(struct tm_ss_gen *g)
{
	g->obj = tm_ssi_big_calloc(g->nobj, sizeof(*g->obj));
	g->spare = tm_ssi_big_calloc(g->nobj, sizeof(uint32_t));
	for (unsigned l = 0; l < L_COUNT; l++)
		g->list[l].ids = tm_ssi_big_calloc(g->nobj, sizeof(uint32_t));
	bool lists = true;

	for (unsigned l = 0; l < L_COUNT; l++)
		lists = lists && g->list[l].ids;
	if (!g->obj || !g->spare || !lists)
		return -ENOMEM;
	for (uint32_t i = 0; i < g->nobj; i++) {
		g->obj[i].pos[0] = g->obj[i].pos[1] = NIL;
		g->spare[i] = g->nobj - 1 - i; /* pop gives 0, 1, 2, ... */
	}
	g->nspare = g->nobj;
	return 0;
}

int tm_ss_gen_create(const tm_ss_workload *w, uint32_t frames, tm_ss_gen **out, tm_error *err)
{
	int r = tm_ss_workload_validate(w, err);

	*out = NULL;
	if (r)
		return r;
	struct tm_ss_gen *g = calloc(1, sizeof(*g));

	if (!g)
		return tm_error_set(err, -ENOMEM, "workload: out of memory");
	g->w = *w;
	g->frames = frames;
	g->nobj = max_live(w, frames);
	if (gen_alloc_tables(g)) {
		tm_ss_gen_destroy(g);
		return tm_error_set(err, -ENOMEM, "workload: out of memory for %u objects", g->nobj);
	}
	tm_rng_seed(&g->rng, w->seed);
	for (unsigned i = 0; i < AHEAD; i++)
		g->ahead[i] = rng_next(&g->rng);
	double cum = 0;

	for (unsigned i = 0; i < w->nphases; i++) {
		cum += w->phase[i].share;
		g->phase_end[i] = (uint64_t)llround(cum * (double)w->events);
		prepare_phase(&w->phase[i], frames, &g->ph[i]);
	}
	g->phase_end[w->nphases - 1] = w->events;
	g->warm_cap = 64ull * frames + 100000;
	*out = g;
	return 0;
}

bool tm_ss_gen_warming(const tm_ss_gen *g)
{
	return g->w.phase[g->phase].warmup;
}

uint32_t tm_ss_gen_max_objects(const tm_ss_gen *g)
{
	return g->nobj;
}

/* The first order whose cumulative weight exceeds a uniform draw below the
 * total: the weighted choice tm_rng_below + a subtracting scan made. */
static unsigned pick_order_of(uint64_t v, const uint64_t *cum, uint64_t total)
{
	uint64_t x = below(v, total);
	unsigned o = 0;

	while (o < TM_SS_MAX_ORDER && x >= cum[o])
		o++;
	return o;
}

static unsigned pick_order(struct tm_ss_gen *g, const uint64_t *cum, uint64_t total)
{
	return pick_order_of(draw(g), cum, total);
}

static tm_ss_event mkev(uint32_t id, unsigned op, unsigned order, unsigned kind, unsigned flags)
{
	tm_ss_event e = { .obj = id, .op = (uint8_t)op, .order = (uint8_t)order,
			  .kind = (uint8_t)kind, .flags = (uint8_t)flags };
	return e;
}

static tm_ss_event gen_alloc(struct tm_ss_gen *g, const tm_ss_phase *p, const struct gphase *gp)
{
	uint32_t id = g->spare[--g->nspare];
	struct gobj *o = &g->obj[id];
	double x = unit(draw(g));
	unsigned kind, order = 0, flags = 0;

	if (x < gp->c_unmov) {
		kind = TM_SS_UNMOVABLE;
	} else if (x < gp->c_recl) {
		kind = TM_SS_RECLAIMABLE;
	} else if (x < gp->c_pc) {
		kind = TM_SS_PAGECACHE;
		order = pick_order(g, gp->pc_cum, gp->pc_total);
	} else {
		kind = TM_SS_MOVABLE;
		order = pick_order(g, gp->ord_cum, gp->ord_total);
		if (unit(draw(g)) < p->tagged_fraction)
			flags |= TM_SS_EV_TAGGED;
	}
	o->kind = (uint8_t)kind;
	o->order = (uint8_t)order;
	o->flags = (uint8_t)(G_LIVE | (flags & TM_SS_EV_TAGGED ? G_TAGGED : 0));
	g->demand += 1u << order;
	list_add(g, L_FREEABLE, id);
	if (kind == TM_SS_PAGECACHE)
		list_add(g, L_PC, id);
	if (kind == TM_SS_MOVABLE && !(flags & TM_SS_EV_TAGGED))
		list_add(g, L_UNTAGGED, id);
	if (kind == TM_SS_MOVABLE && unit(draw(g)) < p->pinned_fraction) {
		o->flags |= G_PINNED;
		g->pending[g->npend++] = mkev(id, TM_SS_OP_PIN, 0, 0,
					       p->pin_longterm ? TM_SS_EV_LONGTERM : 0);
	}
	return mkev(id, TM_SS_OP_ALLOC, order, kind, flags);
}

static tm_ss_event gen_free(struct tm_ss_gen *g, uint32_t id)
{
	struct gobj *o = &g->obj[id];

	if (o->flags & G_ADVERSARY)
		g->adv_demand--;
	if (o->pos[0] != NIL)
		list_del(g, o->flags & G_ADVERSARY ? L_ADV : L_FREEABLE, id);
	if (o->pos[1] != NIL)
		list_del(g, list1_of(o), id);
	g->demand -= 1u << o->order;
	g->spare[g->nspare++] = id;
	if (o->flags & G_PINNED) {
		o->flags = 0;
		g->pending[g->npend++] = mkev(id, TM_SS_OP_FREE, 0, 0, 0);
		return mkev(id, TM_SS_OP_UNPIN, 0, 0, 0);
	}
	o->flags = 0;
	return mkev(id, TM_SS_OP_FREE, 0, 0, 0);
}

/* The adversary takes a movable page and pins it in place. */
static tm_ss_event gen_adversary_alloc(struct tm_ss_gen *g)
{
	uint32_t id = g->spare[--g->nspare];
	struct gobj *o = &g->obj[id];

	o->kind = TM_SS_MOVABLE;
	o->order = 0;
	o->flags = G_LIVE | G_PINNED | G_ADVERSARY;
	g->demand++;
	g->adv_demand++;
	list_add(g, L_ADV, id);
	g->pending[g->npend++] = mkev(id, TM_SS_OP_PIN, 0, 0, 0);
	return mkev(id, TM_SS_OP_ALLOC, 0, TM_SS_MOVABLE, 0);
}

static uint32_t pick(struct tm_ss_gen *g, unsigned l)
{
	return g->list[l].ids[below(draw(g), g->list[l].n)];
}

/* Position u^k of the list: the front of the list is hot. Positions move
 * only when a free swaps the last entry into a hole, so the hot set drifts
 * slowly, as a working set does. */
static uint32_t pick_skewed(struct tm_ss_gen *g, unsigned l, double k, unsigned ik)
{
	double u = unit(draw(g));
	uint32_t n = g->list[l].n;
	uint32_t i = k != 1.0 ? skew_index(u, k, ik, n) : (uint32_t)(u * n);

	return g->list[l].ids[i < n ? i : n - 1];
}

static tm_ss_event gen_access(struct tm_ss_gen *g, const tm_ss_phase *p, const struct gphase *gp)
{
	if (g->list[L_UNTAGGED].n && unit(draw(g)) < p->tag_event_rate) {
		uint32_t id = pick(g, L_UNTAGGED);

		list_del(g, L_UNTAGGED, id);
		g->obj[id].flags |= G_TAGGED;
		return mkev(id, TM_SS_OP_TAG, 0, 0, 0);
	}
	if (g->list[L_PC].n)
		return mkev(pick_skewed(g, L_PC, p->read_skew, gp->skew_int), TM_SS_OP_READ, 0, 0, 0);
	if (g->list[L_FREEABLE].n)
		return mkev(pick(g, L_FREEABLE), TM_SS_OP_READ, 0, 0, 0);
	return mkev(NIL, TM_SS_OP_COUNT, 0, 0, 0); /* nothing to touch */
}

/* Warm-up phases last until the live demand reaches their occupancy;
 * measured phases take their share of the run's events. */
static void next_phase(struct tm_ss_gen *g)
{
	for (;;) {
		const tm_ss_phase *p = &g->w.phase[g->phase];
		bool over = p->warmup ?
			    (double)g->demand >= p->occupancy * g->frames || g->warm_emitted >= g->warm_cap :
			    g->emitted >= g->phase_end[g->phase];

		if (!over || g->phase + 1 == g->w.nphases)
			return;
		g->phase++;
		g->warm_emitted = 0;
	}
}

/* Below its share of RAM the adversary takes a page; at it, it lets one go
 * (unpin, free) so that the next turn takes a new one elsewhere. */
static tm_ss_event gen_adversary(struct tm_ss_gen *g, const struct gphase *gp)
{
	if ((double)g->adv_demand < gp->adv_cap || g->list[L_ADV].n == 0)
		return gen_adversary_alloc(g);
	return gen_free(g, pick(g, L_ADV));
}

static tm_ss_event gen_one(struct tm_ss_gen *g)
{
	const tm_ss_phase *p = &g->w.phase[g->phase];
	const struct gphase *gp = &g->ph[g->phase];

	if (p->adversary_rate > 0 && g->nspare > 0 && unit(draw(g)) < p->adversary_rate)
		return gen_adversary(g, gp);
	bool can_alloc = g->nspare > 0 && (double)g->demand < gp->target;

	if (unit(draw(g)) < p->churn) {
		if (can_alloc)
			return gen_alloc(g, p, gp);
		if (g->list[L_FREEABLE].n)
			return gen_free(g, pick(g, L_FREEABLE));
	}
	tm_ss_event e = gen_access(g, p, gp);

	if (e.op == TM_SS_OP_COUNT && g->nspare > 0)
		e = gen_alloc(g, p, gp);
	return e;
}

/* One event that draws numbers, with the predictor kept in step. */
static tm_ss_event gen_next(struct tm_ss_gen *g)
{
	predict_check(g);
	uint64_t demand = g->demand, adv_demand = g->adv_demand;
	uint32_t nspare = g->nspare, n0 = g->list[0].n, n1 = g->list[1].n, n2 = g->list[2].n,
		 n3 = g->list[3].n;
	tm_ss_event e = gen_one(g);

	predict_advance(g, demand, adv_demand, nspare, n0, n1, n2, n3);
	return e;
}

size_t tm_ss_gen_fill(tm_ss_gen *g, tm_ss_event *buf, size_t max)
{
	size_t n = 0;

	while (n < max && g->emitted < g->w.events) {
		bool warm = g->w.phase[g->phase].warmup;

		if (!g->npend) {
			next_phase(g);
			if (warm && !g->w.phase[g->phase].warmup && n > 0)
				break; /* the warm-up ends here: a fill never spans it */
			warm = g->w.phase[g->phase].warmup;
		}
		if (g->npend) {
			buf[n++] = g->pending[0];
			g->pending[0] = g->pending[1];
			g->npend--;
		} else {
			tm_ss_event e = gen_next(g);

			if (e.op == TM_SS_OP_COUNT)
				break; /* nothing allocatable or touchable: the run ends */
			buf[n++] = e;
		}
		if (warm)
			g->warm_emitted++;
		else
			g->emitted++;
	}
	return n;
}
