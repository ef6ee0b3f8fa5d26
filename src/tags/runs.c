/*
 * runs.c - the run walker and run filler behind EA0 and the stream codec
 * (see runs.h for the item order and why EA0 needs the swapped one).
 */
#include "tags/runs.h"

#include <string.h>

static const uint64_t NIB_LO = 0x0f0f0f0f0f0f0f0full;

static uint64_t load_word(const tm_run_iter *it, size_t k)
{
	uint64_t w = 0;
	size_t off = k * 8;

	if (off + 8 <= it->nbytes)
		memcpy(&w, it->p + off, 8);
	else if (off < it->nbytes)
		memcpy(&w, it->p + off, it->nbytes - off);
	if (it->swap)
		w = ((w >> 4) & NIB_LO) | ((w & NIB_LO) << 4);
	return w;
}

/* One bit per item (its lowest bit) set when any bit of the item is set. */
static uint64_t fold(uint64_t d, unsigned bits)
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

/* Boundaries of word k: bit j*bits set when item j differs from item j+1. */
static uint64_t word_mask(const tm_run_iter *it, size_t k)
{
	size_t ipw = 64 / it->bits;
	size_t base = k * ipw;
	uint64_t w = load_word(it, k);
	uint64_t nxt = w >> it->bits;

	if (base + ipw < it->items)
		nxt |= load_word(it, k + 1) << (64 - it->bits);
	uint64_t m = fold(w ^ nxt, it->bits);
	/* only items that have a successor inside the page can end a run */
	size_t valid = it->items - 1 - base;
	if (valid < ipw)
		m &= (1ull << (valid * it->bits)) - 1;
	return m;
}

void tm_run_iter_init(tm_run_iter *it, const uint8_t *p, size_t items,
		      unsigned bits, bool swap)
{
	it->p = p;
	it->nbytes = items * bits / 8;
	it->items = items;
	it->bits = bits;
	it->swap = swap && bits == 4;
	it->pos = 0;
	it->word = 0;
	it->m = items ? word_mask(it, 0) : 0;
}

bool tm_run_next(tm_run_iter *it, unsigned *value, size_t *len)
{
	size_t ipw = 64 / it->bits;
	size_t start = it->pos;

	if (start >= it->items)
		return false;
	*value = tm_item_get(it->p, it->bits, start, it->swap);
	while (it->m == 0) {
		it->word++;
		if (it->word * ipw >= it->items) {
			*len = it->items - start;
			it->pos = it->items;
			return true;
		}
		it->m = word_mask(it, it->word);
	}
	size_t end = it->word * ipw + (size_t)__builtin_ctzll(it->m) / it->bits;

	it->m &= it->m - 1;
	*len = end - start + 1;
	it->pos = end + 1;
	return true;
}

unsigned tm_item_get(const uint8_t *p, unsigned bits, size_t i, bool swap)
{
	size_t bit = i * bits;
	unsigned sh = (unsigned)(bit & 7);

	if (swap && bits == 4)
		sh ^= 4;
	return (p[bit >> 3] >> sh) & ((1u << bits) - 1);
}

static void item_set(uint8_t *p, unsigned bits, size_t i, unsigned v, bool swap)
{
	size_t bit = i * bits;
	unsigned sh = (unsigned)(bit & 7);
	unsigned mask = (1u << bits) - 1;

	if (swap && bits == 4)
		sh ^= 4;
	p[bit >> 3] = (uint8_t)((p[bit >> 3] & ~(mask << sh)) | ((v & mask) << sh));
}

void tm_items_fill(uint8_t *p, unsigned bits, size_t start, size_t len,
		   unsigned v, bool swap)
{
	size_t per_byte = 8 / bits;
	size_t end = start + len;
	unsigned mask = (1u << bits) - 1;

	/* items sharing a byte with the run's neighbours, one at a time */
	while (start < end && start % per_byte) {
		item_set(p, bits, start, v, swap);
		start++;
	}
	size_t whole = (end - start) / per_byte;
	if (whole) {
		/* every item of a whole byte gets v, whatever the order */
		memset(p + start / per_byte, (int)((v & mask) * (0xffu / mask)), whole);
		start += whole * per_byte;
	}
	while (start < end) {
		item_set(p, bits, start, v, swap);
		start++;
	}
}
