/*
 * slots.c - the swap file's slot allocator: naturally aligned runs of 2^k
 * slots from per-order clusters (see slots.h for the why).
 *
 * Allocation order for a folio of order k:
 *   1. the cluster currently serving order k;
 *   2. a non-full cluster that served order k before (slots freed in it);
 *   3. a free cluster, which then serves order k;
 *   4. any aligned free run anywhere (fragmented file), else -ENOSPC.
 */
#include "swap/slots.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define LISTED_FREE 0x8000u

static uint64_t cl_first(uint32_t c) { return (uint64_t)c * TM_SLOT_CLUSTER; }

static void push(struct tm_cstack *st, uint32_t c)
{
	st->ids[st->n++] = c;
}

static uint32_t pop(struct tm_cstack *st)
{
	return st->n ? st->ids[--st->n] : NONE;
}

/* Bits at every 2^order-th position of a word (order < 6). */
static uint64_t block_starts(unsigned order)
{
	uint64_t m = 0;

	for (unsigned i = 0; i < 64; i += 1u << order)
		m |= (uint64_t)1 << i;
	return m;
}

/* Positions in word w where an aligned run of 2^order clear bits starts. */
static uint64_t free_runs_in_word(uint64_t w, unsigned order)
{
	uint64_t z = ~w;

	for (unsigned s = 1; s < (1u << order); s <<= 1)
		z &= z >> s;
	return z & block_starts(order);
}

/* First aligned free run of 2^order slots in [from, to) (word aligned
 * bounds), or UINT64_MAX. */
static uint64_t find_run(const struct tm_slots *s, uint64_t from, uint64_t to,
			 unsigned order)
{
	if (order < 6) {
		for (uint64_t w = from / 64; w < to / 64; w++) {
			uint64_t z = free_runs_in_word(s->used[w], order);

			if (z)
				return w * 64 + (uint64_t)__builtin_ctzll(z);
		}
		return UINT64_MAX;
	}
	uint64_t words = (uint64_t)1 << (order - 6);

	for (uint64_t w = from / 64; w + words <= to / 64; w += words) {
		uint64_t i = 0;

		while (i < words && s->used[w + i] == 0)
			i++;
		if (i == words)
			return w * 64;
	}
	return UINT64_MAX;
}

static void mark(struct tm_slots *s, uint64_t first, uint64_t n, bool set)
{
	for (uint64_t i = first; i < first + n; i++) {
		uint64_t bit = (uint64_t)1 << (i & 63);

		if (set)
			s->used[i >> 6] |= bit;
		else
			s->used[i >> 6] &= ~bit;
	}
}

/* Take a run from cluster c if it has one; returns its first slot. */
static uint64_t take_from(struct tm_slots *s, uint32_t c, unsigned order)
{
	uint64_t at = find_run(s, cl_first(c), cl_first(c) + TM_SLOT_CLUSTER,
			       order);

	if (at == UINT64_MAX)
		return at;
	mark(s, at, (uint64_t)1 << order, true);
	s->cl_used[c] = (uint16_t)(s->cl_used[c] + (1u << order));
	return at;
}

static uint32_t next_nonfull(struct tm_slots *s, unsigned order)
{
	uint32_t c;

	while ((c = pop(&s->nonfull[order])) != NONE) {
		s->cl_listed[c] &= (uint16_t)~(1u << order);
		if (s->cl_order[c] == (int8_t)order)
			return c;
	}
	return NONE;
}

static uint32_t next_free_cluster(struct tm_slots *s, unsigned order)
{
	uint32_t c;

	while ((c = pop(&s->free_cl)) != NONE) {
		s->cl_listed[c] &= (uint16_t)~LISTED_FREE;
		if (s->cl_used[c] == 0) {
			s->cl_order[c] = (int8_t)order;
			return c;
		}
	}
	return NONE;
}

static uint64_t alloc_locked(struct tm_slots *s, unsigned order)
{
	uint64_t at;
	uint32_t c = s->cur[order];

	if (c != NONE && (at = take_from(s, c, order)) != UINT64_MAX)
		return at;
	s->cur[order] = NONE;
	while ((c = next_nonfull(s, order)) != NONE) {
		if ((at = take_from(s, c, order)) != UINT64_MAX) {
			s->cur[order] = c;
			return at;
		}
	}
	if ((c = next_free_cluster(s, order)) != NONE) {
		s->cur[order] = c;
		return take_from(s, c, order);
	}
	at = find_run(s, 0, (uint64_t)s->nclusters * TM_SLOT_CLUSTER, order);
	if (at != UINT64_MAX) {
		mark(s, at, (uint64_t)1 << order, true);
		c = (uint32_t)(at / TM_SLOT_CLUSTER);
		s->cl_used[c] = (uint16_t)(s->cl_used[c] + (1u << order));
	}
	return at;
}

int tm_slots_alloc(struct tm_slots *s, unsigned order, uint64_t *first)
{
	uint64_t at;

	if (order > TM_SWAP_MAX_ORDER)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	at = alloc_locked(s, order);
	if (at != UINT64_MAX)
		s->nfree -= (uint64_t)1 << order;
	pthread_mutex_unlock(&s->lock);
	if (at == UINT64_MAX)
		return -ENOSPC;
	*first = at;
	return 0;
}

static bool is_current(const struct tm_slots *s, uint32_t c)
{
	for (unsigned k = 0; k < TM_SLOT_NORDERS; k++)
		if (s->cur[k] == c)
			return true;
	return false;
}

/* After slots of cluster c were freed: list it where allocation finds it. */
static void relist(struct tm_slots *s, uint32_t c)
{
	if (is_current(s, c))
		return;
	if (s->cl_used[c] == 0) {
		s->cl_order[c] = -1;
		if (!(s->cl_listed[c] & LISTED_FREE)) {
			s->cl_listed[c] |= LISTED_FREE;
			push(&s->free_cl, c);
		}
		return;
	}
	int8_t k = s->cl_order[c];

	if (k >= 0 && !(s->cl_listed[c] & (1u << k))) {
		s->cl_listed[c] |= (uint16_t)(1u << k);
		push(&s->nonfull[k], c);
	}
}

void tm_slots_free(struct tm_slots *s, uint64_t first, uint64_t n)
{
	pthread_mutex_lock(&s->lock);
	for (uint64_t i = first; i < first + n; i++) {
		uint32_t c = (uint32_t)(i / TM_SLOT_CLUSTER);

		mark(s, i, 1, false);
		s->cl_used[c]--;
		s->nfree++;
		if (i + 1 == first + n || (i + 1) % TM_SLOT_CLUSTER == 0)
			relist(s, c);
	}
	pthread_mutex_unlock(&s->lock);
}

/* Initial state: everything free except slot 0 and the tail. */
static void layout(struct tm_slots *s)
{
	uint64_t span = (uint64_t)s->nclusters * TM_SLOT_CLUSTER;

	memset(s->used, 0, span / 8);
	memset(s->cl_used, 0, s->nclusters * sizeof(*s->cl_used));
	memset(s->cl_listed, 0, s->nclusters * sizeof(*s->cl_listed));
	s->free_cl.n = 0;
	for (unsigned k = 0; k < TM_SLOT_NORDERS; k++) {
		s->cur[k] = NONE;
		s->nonfull[k].n = 0;
	}
	mark(s, 0, 1, true);
	mark(s, s->nslots, span - s->nslots, true);
	s->cl_used[0] = 1;
	s->cl_used[s->nclusters - 1] = (uint16_t)(s->cl_used[s->nclusters - 1] +
						  (span - s->nslots));
	/* Push in reverse so clusters are handed out from the file's start. */
	for (uint32_t c = s->nclusters; c-- > 0;) {
		s->cl_order[c] = s->cl_used[c] ? 0 : -1;
		relist(s, c);
	}
	s->nfree = s->nslots - 1;
}

int tm_slots_init(struct tm_slots *s, uint64_t nslots)
{
	memset(s, 0, sizeof(*s));
	if (nslots < 2 || nslots > (uint64_t)UINT32_MAX * TM_SLOT_CLUSTER / 2)
		return -EINVAL;
	s->nslots = nslots;
	s->nclusters = (uint32_t)((nslots + TM_SLOT_CLUSTER - 1) / TM_SLOT_CLUSTER);
	s->used = calloc((size_t)s->nclusters * TM_SLOT_CLUSTER / 64, 8);
	s->cl_used = calloc(s->nclusters, sizeof(*s->cl_used));
	s->cl_order = calloc(s->nclusters, 1);
	s->cl_listed = calloc(s->nclusters, sizeof(*s->cl_listed));
	s->free_cl.ids = calloc(s->nclusters, sizeof(uint32_t));
	bool ok = s->used && s->cl_used && s->cl_order && s->cl_listed &&
		  s->free_cl.ids;

	for (unsigned k = 0; k < TM_SLOT_NORDERS; k++) {
		s->nonfull[k].ids = calloc(s->nclusters, sizeof(uint32_t));
		ok = ok && s->nonfull[k].ids;
	}
	if (!ok || pthread_mutex_init(&s->lock, NULL) != 0) {
		tm_slots_fini(s);
		return -ENOMEM;
	}
	layout(s);
	return 0;
}

void tm_slots_fini(struct tm_slots *s)
{
	if (!s->used && !s->cl_used)
		return;
	free(s->used);
	free(s->cl_used);
	free(s->cl_order);
	free(s->cl_listed);
	free(s->free_cl.ids);
	for (unsigned k = 0; k < TM_SLOT_NORDERS; k++)
		free(s->nonfull[k].ids);
	pthread_mutex_destroy(&s->lock);
	memset(s, 0, sizeof(*s));
}

void tm_slots_reset(struct tm_slots *s)
{
	pthread_mutex_lock(&s->lock);
	layout(s);
	pthread_mutex_unlock(&s->lock);
}

bool tm_slots_is_used(struct tm_slots *s, uint64_t slot)
{
	bool used;

	pthread_mutex_lock(&s->lock);
	used = slot < s->nslots && ((s->used[slot >> 6] >> (slot & 63)) & 1);
	pthread_mutex_unlock(&s->lock);
	return used;
}

uint64_t tm_slots_nfree(struct tm_slots *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->lock);
	n = s->nfree;
	pthread_mutex_unlock(&s->lock);
	return n;
}

uint64_t tm_slots_total(const struct tm_slots *s)
{
	return s->nslots - 1;
}
