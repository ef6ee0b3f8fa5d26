/*
 * tagstore.h - the swap tag store (internal): packed MTE tags of swapped
 * pages, keyed by swap slot, in a JudyL array (sparse: only tagged swapped
 * pages have an entry; why Judy: docs/parts/swap.md).
 *
 * A value is one machine word (encoding: docs/FORMAT.md §swap):
 *   bit 0 = 1  the EA0 inline handle itself (bit 0 set, bit 63 clear, as
 *              Linux stores it in an XArray): 8 bytes, no allocation
 *   bit 0 = 0  pointer to a 16-byte aligned allocation | (class << 1):
 *              class 0..6: stream-codec record of 16 << class bytes
 *                          (u16 little-endian length, then the encoding)
 *              class 7:    the raw packed tags (tm_geom_packed_bytes)
 * Values are built and decoded outside the lock; the store itself only
 * inserts, takes (erases and hands over) and invalidates. An erased cell
 * stays as a tombstone (value 2) for the next insert of that slot, until
 * there are more than 65536 and twice the live entries (tagstore.c).
 *
 * Thread-safe: one mutex, a leaf lock held only inside these calls.
 */
#ifndef TM_SWAP_TAGSTORE_H
#define TM_SWAP_TAGSTORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/swap.h"

struct tm_tagstore {
	pthread_mutex_t lock;
	void *judy;                         /* Pvoid_t JudyL root */
	tm_geom geom;                       /* MTE at the swap page size */
	size_t packed;                      /* packed tag bytes per page */
	uint64_t uniform[16];               /* EA0 handle of a page all tag t */
	size_t max_record;                  /* longest stream record kept */
	uint64_t allocs[TM_TS_NCLASSES];    /* under lock */
	uint64_t frees[TM_TS_NCLASSES];
	uint64_t bytes_used;
	uint64_t tombs;                     /* erased cells kept for reuse */
	uint64_t gen;                       /* index layout changes (under lock) */
};

/* The index cells a peek found, so that the take of the same slots (same
 * folio lock) need not look them up again: valid while the index layout
 * has not changed since (gen), i.e. no slot was added or deleted. */
struct tm_ts_cells {
	uint64_t gen;
	void *cell[1u << TM_SWAP_MAX_ORDER];
};

/* Largest stream-codec record class (bytes) and the scratch a value build
 * needs (the stream bound of one 64 KiB page, with margin). */
#define TM_TS_STREAM_MAX 1024u
#define TM_TS_SCRATCH    4096u

int tm_tagstore_init(struct tm_tagstore *ts, uint32_t page_size,
		     tm_error *err);
/* Releases every value still stored. */
void tm_tagstore_fini(struct tm_tagstore *ts);

/* Build the value for one page's packed tags (may allocate: -ENOMEM). */
int tm_ts_value_make(const struct tm_tagstore *ts, const uint8_t *packed,
		     uint64_t *val, tm_error *err);
/* Decode a value into packed tags; -EBADMSG for a malformed value. */
int tm_ts_value_decode(const struct tm_tagstore *ts, uint64_t val,
		       uint8_t *packed, tm_error *err);
/* Release a value's allocation (nothing for inline values). */
void tm_ts_value_free(uint64_t val);
enum tm_tagstore_class tm_ts_value_class(uint64_t val);
/* Bytes a value takes: 8 (the index word) + its allocation. */
size_t tm_ts_value_bytes(const struct tm_tagstore *ts, uint64_t val);

/* Insert val under slot. -EEXIST if the slot has a value, -ENOMEM. The
 * store owns val on success only. */
int tm_tagstore_put(struct tm_tagstore *ts, uint64_t slot, uint64_t val,
		    tm_error *err);
/* Erase slot's value and hand it to the caller (who frees it). False when
 * the slot has none. */
bool tm_tagstore_take(struct tm_tagstore *ts, uint64_t slot, uint64_t *val);
/* Copy slot's value without erasing it. The caller must own the slot (hold
 * its folio lock) so that nobody frees the value meanwhile. */
bool tm_tagstore_peek(struct tm_tagstore *ts, uint64_t slot, uint64_t *val);
/* Insert the values of n consecutive slots from first; vals[i] == 0 means
 * "no tags for this slot". All or nothing: on error nothing is inserted
 * (and the store owns none of vals). One lock round trip for a folio. */
int tm_tagstore_put_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			  const uint64_t *vals, tm_error *err);
/* For each i < n with want[i]: vals[i] = slot first+i's value, or 0 when it
 * has none. peek leaves the values in the store (the caller must own the
 * slots, see tm_tagstore_peek); take erases them and hands them over. One
 * lock round trip for a folio; slots without want[i] are not touched (they
 * may belong to another folio by now). n <= 2^TM_SWAP_MAX_ORDER.
 * cells (may be NULL): peek records the cells it found there, and a take of
 * a subset of the same slots reuses them when the index has not changed in
 * between (else it looks the slots up again): a JudyL lookup per page less. */
void tm_tagstore_peek_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			    const bool *want, uint64_t *vals,
			    struct tm_ts_cells *cells);
void tm_tagstore_take_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			    const bool *want, uint64_t *vals,
			    const struct tm_ts_cells *cells);
/* Whether slot has a value (tests, assertions). */
bool tm_tagstore_has(struct tm_tagstore *ts, uint64_t slot);
/* Erase and free every value with first <= slot <= last; adds the count
 * and bytes released to *n and *bytes (either may be NULL). */
void tm_tagstore_invalidate(struct tm_tagstore *ts, uint64_t first,
			    uint64_t last, uint64_t *n, uint64_t *bytes);

void tm_tagstore_get_stats(struct tm_tagstore *ts, tm_tagstore_stats *st);

#endif
