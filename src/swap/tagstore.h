/*
 * tagstore.h - the swap tag store (internal): packed MTE tags of swapped
 * pages, keyed by swap slot (sparse: only tagged swapped pages have an
 * entry; why this index: docs/parts/swap.md).
 *
 * Index: a JudyL array keyed by slot / 64 whose values are leaves of 64
 * value words, one per slot (the shape of Linux's XArray, which keeps the
 * kernel's swapped MTE tags in 64-slot nodes). A folio's slots are
 * consecutive and naturally aligned, so storing or taking a folio costs one
 * Judy lookup per 64 pages instead of one per page; a leaf is freed when
 * its last value goes.
 *
 * A value word (encoding: docs/FORMAT.md §swap):
 *   0          no tags
 *   bit 0 = 1  the EA0 inline handle itself (bit 0 set, bit 63 clear, as
 *              Linux stores it in an XArray): 8 bytes, no allocation
 *   bit 0 = 0  pointer to a 16-byte aligned object | (class << 1):
 *              class 0..6: stream-codec record in 16 << class bytes
 *                          (u16 little-endian length, then the one-page
 *                          block)
 *              class 7:    the raw packed tags (tm_geom_packed_bytes)
 * Objects come from a per-class slab (valslab.c) owned by the store.
 *
 * Records are built outside the lock (tm_ts_rec_make: no allocation, never
 * fails); storing copies them into slab objects under the lock, all or
 * nothing per batch. Decoding reads an object outside the lock: the caller
 * owns the slot (holds its folio lock), and only the owner drops a slot's
 * value, so nobody frees it meanwhile.
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
#include "swap/valslab.h"

struct tm_tagstore {
	pthread_mutex_t lock;
	void *judy;                         /* Pvoid_t JudyL: slot/64 -> leaf */
	tm_geom geom;                       /* MTE at the swap page size */
	size_t packed;                      /* packed tag bytes per page */
	size_t max_record;                  /* longest stream record kept */
	uint64_t uniform[16];               /* EA0 handle of a page all tag t */
	struct tm_valslab slab;             /* out-of-line values (under lock) */
	uint64_t leaves;                    /* under lock, like the rest */
	uint64_t allocs[TM_TS_NCLASSES];
	uint64_t frees[TM_TS_NCLASSES];
	uint64_t bytes_used;
};

/*
 * One page's tags ready to store. inl != 0: the inline handle. Otherwise,
 * len != 0: an out-of-line value of class cls whose bytes are data[0..len)
 * (a stream record with its length prefix in the caller's scratch, or the
 * page's packed tags themselves for raw). inl == 0 and len == 0: no tags.
 */
struct tm_ts_rec {
	uint64_t inl;
	const uint8_t *data;
	uint16_t len;
	uint8_t cls;
};

int tm_tagstore_init(struct tm_tagstore *ts, uint32_t page_size,
		     tm_error *err);
/* Releases every value still stored. */
void tm_tagstore_fini(struct tm_tagstore *ts);

/*
 * The record for one page's packed tags: EA0 inline when it fits, else the
 * smaller of a stream record and the raw tags. scratch (ts->packed bytes)
 * receives a stream record; raw records point at packed. Both must stay
 * unchanged until the record is stored. Thread-safe (reads ts only).
 */
void tm_ts_rec_make(const struct tm_tagstore *ts, const uint8_t *packed,
		    uint8_t *scratch, struct tm_ts_rec *rec);

/* Decode a stored value into packed tags; -EBADMSG for a malformed value. */
int tm_ts_value_decode(const struct tm_tagstore *ts, uint64_t val,
		       uint8_t *packed, tm_error *err);
enum tm_tagstore_class tm_ts_value_class(uint64_t val);
/* Bytes a value takes: 8 (the index word) + its object. */
size_t tm_ts_value_bytes(const struct tm_tagstore *ts, uint64_t val);

/* Store one record under slot: -EEXIST if the slot has a value, -ENOMEM. */
int tm_tagstore_put(struct tm_tagstore *ts, uint64_t slot,
		    const struct tm_ts_rec *rec, tm_error *err);
/* Store the records of n consecutive slots from first (records without
 * tags are skipped). All or nothing: on error nothing is stored. */
int tm_tagstore_put_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			  const struct tm_ts_rec *recs, tm_error *err);

/* Slot's value word (0: none). The caller must own the slot (hold its
 * folio lock) to decode it afterwards. */
uint64_t tm_tagstore_peek(struct tm_tagstore *ts, uint64_t slot);
/* For each i < n with want[i]: vals[i] = slot first+i's value word, or 0.
 * One lock round trip; n <= 2^TM_SWAP_MAX_ORDER. */
void tm_tagstore_peek_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			    const bool *want, uint64_t *vals);
/* Erase and free slot's value; false when it had none. */
bool tm_tagstore_drop(struct tm_tagstore *ts, uint64_t slot);
/* The same for each i < n with want[i] (others are not touched: they may
 * belong to another folio by now). One lock round trip. */
void tm_tagstore_drop_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			    const bool *want);
/* Whether slot has a value (tests, assertions). */
bool tm_tagstore_has(struct tm_tagstore *ts, uint64_t slot);
/* Erase and free every value with first <= slot <= last; adds the count
 * and bytes released to *n and *bytes (either may be NULL). */
void tm_tagstore_invalidate(struct tm_tagstore *ts, uint64_t first,
			    uint64_t last, uint64_t *n, uint64_t *bytes);

void tm_tagstore_get_stats(struct tm_tagstore *ts, tm_tagstore_stats *st);

#endif
