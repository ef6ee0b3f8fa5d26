/*
 * slots.h - the swap file's slot allocator (internal).
 *
 * Hands out runs of 2^k contiguous slots that start at a multiple of 2^k
 * (natural alignment, what Linux's folio_swap() relies on), k = 0..9.
 * Slots are grouped in clusters of 512 (the largest folio); like Linux's
 * swap clusters, a cluster serves one order at a time, so small folios do
 * not fragment the space large folios need. Slots are freed one by one,
 * because a subpage of a swapped folio can be restored or discarded alone.
 *
 * Slot 0 is reserved (the file header). Thread-safe: one mutex, held only
 * inside these calls (a leaf lock, see swap.h "Locking").
 */
#ifndef TM_SWAP_SLOTS_H
#define TM_SWAP_SLOTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "tagmem/swap.h"

#define TM_SLOT_CLUSTER (1u << TM_SWAP_MAX_ORDER)
#define TM_SLOT_NORDERS (TM_SWAP_MAX_ORDER + 1)

/* A stack of cluster numbers (free clusters, or non-full clusters of one
 * order); a cluster may be listed once per stack (member flag). */
struct tm_cstack {
	uint32_t *ids;
	uint32_t n;
};

struct tm_slots {
	pthread_mutex_t lock;
	uint64_t nslots;          /* header slot included */
	uint32_t nclusters;
	uint64_t *used;           /* bit per slot; slot 0 and the tail past
				     nslots are permanently set */
	uint16_t *cl_used;        /* set bits per cluster */
	int8_t *cl_order;         /* order a cluster serves; -1 when free */
	uint16_t *cl_listed;      /* bit k: listed in nonfull[k]; bit 15: free */
	uint32_t cur[TM_SLOT_NORDERS];       /* current cluster, or UINT32_MAX */
	struct tm_cstack free_cl;
	struct tm_cstack nonfull[TM_SLOT_NORDERS];
	uint64_t nfree;           /* free data slots */
};

/* nslots includes the header slot; at least 2. -ENOMEM on failure. */
int tm_slots_init(struct tm_slots *s, uint64_t nslots);
void tm_slots_fini(struct tm_slots *s);

/* Allocate 2^order naturally aligned slots: *first receives the first.
 * -ENOSPC when no aligned free run exists. */
int tm_slots_alloc(struct tm_slots *s, unsigned order, uint64_t *first);

/* Free n slots starting at first (each must be allocated). */
void tm_slots_free(struct tm_slots *s, uint64_t first, uint64_t n);

/* Free every allocated data slot (swapoff). */
void tm_slots_reset(struct tm_slots *s);

bool tm_slots_is_used(struct tm_slots *s, uint64_t slot);
uint64_t tm_slots_nfree(struct tm_slots *s);
/* Data slots in total (nslots - 1). */
uint64_t tm_slots_total(const struct tm_slots *s);

#endif
