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
#include <string.h>

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
	size_t word;       /* index of the 64-bit word held in cur */
	uint64_t cur;      /* that word (nibble-swapped when swap) */
	uint64_t m;        /* run starts in cur not yet returned */
} tm_run_iter;

static inline uint64_t tm_runs_load(const uint8_t *p, size_t nbytes, size_t k, bool swap)
{
	const uint64_t lo = 0x0f0f0f0f0f0f0f0full;
	uint64_t w = 0;
	size_t off = k * 8;

	if (off + 8 <= nbytes)
		memcpy(&w, p + off, 8);
	else if (off < nbytes)
		memcpy(&w, p + off, nbytes - off);
	return swap ? ((w >> 4) & lo) | ((w & lo) << 4) : w;
}

/* One bit per item (its lowest bit), set when any bit of the item is set. */
static inline uint64_t tm_runs_fold(uint64_t d, unsigned bits)
{
	switch (bits) {
	case 1:
		return d;
	case 2:
		return (d | (d >> 1)) & 0x5555555555555555ull;
	case 4:
		d |= d >> 2;
		d |= d >> 1;
		return d & 0x1111111111111111ull;
	default:
		d |= d >> 4;
		d |= d >> 2;
		d |= d >> 1;
		return d & 0x0101010101010101ull;
	}
}

/*
 * Run starts in word k (value w, previous word prev): bit j*bits is set when
 * item j differs from the item before it. Item 0 of the page is left out
 * (it always starts a run) and so are the zero-padded items past the end.
 */
static inline uint64_t tm_runs_starts(uint64_t w, uint64_t prev, unsigned bits,
				      size_t k, size_t items)
{
	size_t ipw = 64 / bits, left = items - k * ipw;
	uint64_t m = tm_runs_fold(w ^ ((w << bits) | (prev >> (64 - bits))), bits);

	if (k == 0)
		m &= ~1ull;
	if (left < ipw)
		m &= (1ull << (left * bits)) - 1;
	return m;
}

/* Item i (in walk order given swap). */
static inline unsigned tm_item_get(const uint8_t *p, unsigned bits, size_t i, bool swap)
{
	size_t bit = i * bits;
	unsigned sh = (unsigned)(bit & 7);

	if (swap && bits == 4)
		sh ^= 4;
	return (p[bit >> 3] >> sh) & ((1u << bits) - 1);
}

/* Start walking `items` items of width `bits` at p (items * bits % 8 == 0). */
static inline void tm_run_iter_init(tm_run_iter *it, const uint8_t *p, size_t items,
				    unsigned bits, bool swap)
{
	it->p = p;
	it->nbytes = items * bits / 8;
	it->items = items;
	it->bits = bits;
	it->swap = swap && bits == 4;
	it->pos = 0;
	it->word = 0;
	it->cur = items ? tm_runs_load(p, it->nbytes, 0, it->swap) : 0;
	it->m = items ? tm_runs_starts(it->cur, 0, bits, 0, items) : 0;
}

/* The next run's value and length; false when every item was walked. */
static inline bool tm_run_next(tm_run_iter *it, unsigned *value, size_t *len)
{
	size_t ipw = 64 / it->bits, start = it->pos;

	if (start >= it->items)
		return false;
	*value = tm_item_get(it->p, it->bits, start, it->swap);
	while (it->m == 0) {
		if ((it->word + 1) * ipw >= it->items) {
			*len = it->items - start;
			it->pos = it->items;
			return true;
		}
		uint64_t prev = it->cur;

		it->word++;
		it->cur = tm_runs_load(it->p, it->nbytes, it->word, it->swap);
		it->m = tm_runs_starts(it->cur, prev, it->bits, it->word, it->items);
	}
	size_t s = it->word * ipw + (size_t)__builtin_ctzll(it->m) / it->bits;

	it->m &= it->m - 1;
	*len = s - start;
	it->pos = s;
	return true;
}

/*
 * Number of runs, counted a word at a time (popcount of the run starts);
 * stops early and returns a value > limit once there are more than limit.
 */
size_t tm_run_count(const uint8_t *p, size_t items, unsigned bits, bool swap,
		    size_t limit);

/* Set items [start, start + len) to v (in walk order given swap). */
void tm_items_fill(uint8_t *p, unsigned bits, size_t start, size_t len,
		   unsigned v, bool swap);

#endif
