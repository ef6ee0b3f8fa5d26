/*
 * runs.c - the run walker and run filler behind EA0 and the stream codec
 * (see runs.h for the item order and why EA0 needs the swapped one).
 */
#include "tags/runs.h"

#include <string.h>

/*
 * Set bits of a run-start mask. The baseline x86-64 target has no POPCNT
 * instruction, and libgcc's fallback is a function call per word; for
 * 4- and 8-bit items the bits sit one per item, so a multiply sums them.
 */
static inline size_t count_starts(uint64_t m, unsigned bits)
{
	if (bits == 4)  /* 16 one-bit fields: a sum of 16 wraps to 0 */
		return m == 0x1111111111111111ull ? 16 : (size_t)((m * 0x1111111111111111ull) >> 60);
	if (bits == 8)
		return (size_t)((m * 0x0101010101010101ull) >> 56);
	m = m - ((m >> 1) & 0x5555555555555555ull);
	m = (m & 0x3333333333333333ull) + ((m >> 2) & 0x3333333333333333ull);
	m = (m + (m >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (size_t)((m * 0x0101010101010101ull) >> 56);
}

size_t tm_run_count(const uint8_t *p, size_t items, unsigned bits, bool swap,
		    size_t limit)
{
	size_t nbytes = items * bits / 8, ipw = 64 / bits, n = items ? 1 : 0;
	uint64_t prev = 0;

	swap = swap && bits == 4;
	for (size_t k = 0; k * ipw < items && n <= limit; k++) {
		uint64_t w = tm_runs_load(p, nbytes, k, swap);

		n += count_starts(tm_runs_starts(w, prev, bits, k, items), bits);
		prev = w;
	}
	return n;
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
