/*
 * runs.h - internal: walking a page's packed metadata as runs of equal items
 * and filling runs back, shared by EA0 and the stream codec.
 *
 * Items are `bits` wide (1, 2, 4 or 8) and packed little-endian, lower index
 * in the lower bits (for MTE: low nibble = lower-address granule). The run
 * walker compares 64-bit words with themselves shifted by one item, so a
 * word of equal items costs a handful of instructions and a run boundary
 * is found with one count-trailing-zeros.
 *
 * `swap` selects EA0's order instead: Linux's mte_tags_to_ranges() reads the
 * HIGH nibble of each byte first, so its "ranges" run over granules
 * 1,0,3,2,5,4,... (4-bit items only). Handles are only bit-compatible with
 * the kernel's if we walk the same order.
 *
 * Host byte order must be little-endian (x86-64 and aarch64 Linux are).
 */
#ifndef TM_TAGS_RUNS_H
#define TM_TAGS_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the tags core assumes a little-endian host"
#endif

typedef struct tm_run_iter {
	const uint8_t *p;  /* packed items */
	size_t nbytes;     /* bytes at p */
	size_t items;      /* items at p */
	unsigned bits;     /* item width: 1, 2, 4 or 8 */
	bool swap;         /* EA0 order: high nibble first (bits == 4 only) */
	size_t pos;        /* first item of the next run */
	size_t word;       /* 64-bit word whose boundaries are in m */
	uint64_t m;        /* pending boundary bits of that word */
} tm_run_iter;

/* Start walking `items` items of width `bits` at p (items * bits % 8 == 0). */
void tm_run_iter_init(tm_run_iter *it, const uint8_t *p, size_t items,
		      unsigned bits, bool swap);

/* The next run's value and length; false when every item was walked. */
bool tm_run_next(tm_run_iter *it, unsigned *value, size_t *len);

/* Item i (in walk order given swap). */
unsigned tm_item_get(const uint8_t *p, unsigned bits, size_t i, bool swap);

/* Set items [start, start + len) to v (in walk order given swap). */
void tm_items_fill(uint8_t *p, unsigned bits, size_t start, size_t len,
		   unsigned v, bool swap);

#endif
