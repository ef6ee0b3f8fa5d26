/*
 * runs.c - the run walker and run filler behind EA0 and the stream codec
 * (see runs.h for the item order and why EA0 needs the swapped one).
 */
#include "tags/runs.h"

#include <string.h>

size_t tm_run_count(const uint8_t *p, size_t items, unsigned bits, bool swap,
		    size_t limit)
{
	size_t nbytes = items * bits / 8, ipw = 64 / bits, n = items ? 1 : 0;
	uint64_t prev = 0;

	swap = swap && bits == 4;
	for (size_t k = 0; k * ipw < items && n <= limit; k++) {
		uint64_t w = tm_runs_load(p, nbytes, k, swap);

		n += (size_t)__builtin_popcountll(tm_runs_starts(w, prev, bits, k, items));
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
