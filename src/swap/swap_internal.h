/*
 * swap_internal.h - what swapfile.c and pager.c share: the swap file and
 * pager objects, the per-page state encoding and the I/O buffer pool.
 * Internal: not part of the public API (that is include/tagmem/swap.h).
 */
#ifndef TM_SWAP_INTERNAL_H
#define TM_SWAP_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/swap.h"
#include "swap/slots.h"
#include "swap/tagstore.h"

typedef _Atomic uint64_t tm_counter;

/* Counters of a swap file (relaxed atomics: statistics only). */
struct tm_swap_counters {
	tm_counter folios_out[TM_SWAP_MAX_ORDER + 1];
	tm_counter pages_out, pages_out_tagged, pages_out_zero;
	tm_counter pages_in, pages_in_fault, folio_swapins, page_swapins;
	tm_counter tag_restores, pages_discarded, read_errors;
	tm_counter bytes_written, bytes_read;
};

static inline void tm_count(tm_counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

struct tm_swapfile {
	char path[PATH_MAX];
	bool named;                 /* false: O_TMPFILE, nothing to unlink */
	unsigned flags;
	int fd;
	uint32_t page_size;
	uint64_t nslots;            /* header slot included */
	struct tm_slots slots;
	struct tm_tagstore ts;
	pthread_mutex_t lock;       /* pagers list */
	struct tm_pager *pagers;
	atomic_bool off;
	struct tm_swap_counters ctr;
};

/* Per-page state byte of a pager. */
#define TM_PS_SWAPPED  0x80u    /* page is in the swap file */
#define TM_PS_ZERO     0x40u    /* its data was zero: slot not written */
#define TM_PS_ORDER    0x0Fu    /* order of the folio it went out in */

/* Folio-sized I/O buffers, allocated at pager creation (never per page). */
struct tm_iobuf {
	struct tm_iobuf *next;
	uint8_t *data;              /* 2^TM_SWAP_MAX_ORDER pages */
	uint8_t *tags;              /* their packed tags */
	uint8_t *recs;              /* swap-out: their tag records (as big) */
};

struct tm_iopool {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct tm_iobuf *free;
	struct tm_iobuf *bufs;
	void *map;
	size_t map_len;
};

/* tagworker.c: a helper thread doing a folio's tag work during its I/O. */
enum tm_tw_state { TM_TW_IDLE, TM_TW_POSTED, TM_TW_RUNNING, TM_TW_DONE };

struct tm_tagworker {
	pthread_t th;
	pthread_mutex_t lock;       /* everything but the spin read of state */
	pthread_cond_t cv;
	bool started, stop;
	bool asleep;                /* worker in cond_wait: a post signals */
	bool waiting;               /* caller in cond_wait: completion signals */
	_Atomic int state;          /* enum tm_tw_state of the one job */
	int (*fn)(void *arg, tm_error *err);
	void *arg;
	int rc;
	tm_error err;
};

/* Folios smaller than this (1 MiB with 4 KiB pages) do their tag work
 * inline. Their write is shorter than the worker's poll period, so it
 * would rarely find the job in time, and while it polls it is a running
 * thread of the process: every discard's TLB flush then interrupts its CPU
 * too. Measured per 256 MiB swap-out, worker vs inline: order 5 107 vs 101
 * ms, order 6 92 vs 85, order 7 89 vs 88, order 8 88 vs 97
 * (docs/BENCHMARKS.md, swap "Fourth session"). */
#define TM_TAGWORKER_MIN_ORDER 8u

void tm_tagworker_start(struct tm_tagworker *w);
void tm_tagworker_stop(struct tm_tagworker *w);
/* Give fn(arg) to the worker if it is idle; false: run it yourself. */
bool tm_tagworker_post(struct tm_tagworker *w, int (*fn)(void *, tm_error *),
		       void *arg);
/* Collect the posted job: *ran true: it ran, here is its return value and
 * its error (copied to err); *ran false: it had not started and was taken
 * back, the caller runs it itself. */
int tm_tagworker_wait(struct tm_tagworker *w, tm_error *err, bool *ran);

struct tm_pager {
	tm_region *r;
	tm_swapfile *sf;
	struct tm_pager *next;      /* in sf->pagers */
	size_t npages;
	uint32_t ps;
	size_t packed;              /* tag bytes per page; 0 for untagged regions */
	bool lazy;
	enum tm_swapin_mode mode;
	_Atomic uint8_t *state;     /* TM_PS_* per page */
	/* Per page: the first slot of the folio it was swapped out in. Every
	 * subpage keeps its own copy, because the head page may be restored
	 * and swapped out again in another folio while the rest of the old
	 * folio is still out. */
	uint64_t *folio_first;
	pthread_mutex_t *locks;     /* folio locks: one per 2^MAX_ORDER pages */
	size_t nlocks;
	atomic_size_t nswapped;
	struct tm_iopool pool;
	struct tm_tagworker tw;
};


/* ---- per-page state and folio locks (pager.c, swapout.c, swapin.c) ---- */

static inline uint8_t tm_pstate(const tm_pager *p, size_t pg)
{
	return atomic_load_explicit(&p->state[pg], memory_order_acquire);
}

static inline void tm_set_pstate(tm_pager *p, size_t pg, uint8_t v)
{
	atomic_store_explicit(&p->state[pg], v, memory_order_release);
}

static inline bool tm_ps_swapped(uint8_t st) { return st & TM_PS_SWAPPED; }
static inline unsigned tm_ps_order(uint8_t st) { return st & TM_PS_ORDER; }
static inline size_t tm_folio_head(size_t pg, unsigned order) { return pg & ~(((size_t)1 << order) - 1); }

static inline pthread_mutex_t *tm_folio_lock(tm_pager *p, size_t pg)
{
	return &p->locks[pg >> TM_SWAP_MAX_ORDER];
}

/* The folio's first slot + the subpage's index: folio_swap()'s rule. */
static inline uint64_t tm_slot_of(const tm_pager *p, size_t pg, uint8_t st)
{
	size_t head = tm_folio_head(pg, tm_ps_order(st));

	return p->folio_first[pg] + (pg - head);
}

/* iopool.c: folio-sized I/O buffers, allocated at pager creation. */
int tm_iopool_init(struct tm_iopool *pl, size_t ps, size_t packed);
void tm_iopool_fini(struct tm_iopool *pl);
struct tm_iobuf *tm_iopool_get(struct tm_iopool *pl);
void tm_iopool_put(struct tm_iopool *pl, struct tm_iobuf *b);

/* pager.c: forget page pg's swap copy (tags, slot, state); count a restore. */
void tm_pager_release_page(tm_pager *p, size_t pg);
void tm_pager_commit_restore(tm_pager *p, size_t pg, bool tagged, bool fault);

/* swapin.c: the lazy-placement fill callback (tm_fill_fn). */
int tm_pager_fill(void *ctx, tm_region *r, size_t pg, void *data,
		  uint8_t *tags, bool *tagged, tm_error *err);

/* swapfile.c: slot I/O with errors naming the file, slot and offset. */
int tm_swapfile_read(tm_swapfile *sf, uint64_t slot, void *buf, size_t nslots,
		     tm_error *err);
int tm_swapfile_write(tm_swapfile *sf, uint64_t slot, const void *buf,
		      size_t nslots, tm_error *err);
void tm_swapfile_attach(tm_swapfile *sf, tm_pager *p);
void tm_swapfile_detach(tm_swapfile *sf, tm_pager *p);

/* pager.c: used by tm_swapoff. Drop (release) every swapped page. */
size_t tm_pager_drop_all(tm_pager *p);

#endif
