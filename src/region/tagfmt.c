/*
 * tagfmt.c - unpacked <-> packed conversion for a region's geometry
 * (1, 2, 4 or 8 bits per item, lower-address item in the lower bits).
 *
 * MTE-style 4-bit tags go through the tags core's vectorized pack/unpack;
 * other widths use the scalar loops here. On refusal the scalar check
 * finds the granule so the message can name region, page and byte offset.
 * The core packs into a scratch buffer, so nothing the caller sees is
 * written before validation completes.
 */
#include "region/region_internal.h"

#include <errno.h>

#include "tagmem/error.h"
#include "tagmem/tags.h"

int tm_region_pack(const tm_region *r, size_t pg, const uint8_t *unpacked,
		   uint8_t *packed, tm_error *err)
{
	unsigned bits = r->geom.bits;
	unsigned per_byte = 8 / bits;
	unsigned limit = bits == 8 ? 256u : 1u << bits;

	if (bits == 4 && tm_tags_pack(packed, unpacked, r->granules, NULL) == 0)
		return 0;
	for (size_t g = 0; g < r->granules; g++) {
		if (unpacked[g] >= limit) {
			size_t off = (pg << r->page_shift) + g * r->geom.granule;

			return tm_error_set(err, -EINVAL,
					    "region '%s': page %zu granule %zu "
					    "(byte offset %#zx): tag byte %#x "
					    "has bits above the %u-bit tag",
					    r->name, pg, g, off, unpacked[g],
					    bits);
		}
	}
	for (size_t i = 0; i < r->packed_bytes; i++) {
		unsigned v = 0;

		for (unsigned k = 0; k < per_byte; k++)
			v |= (unsigned)unpacked[i * per_byte + k] << (k * bits);
		packed[i] = (uint8_t)v;
	}
	return 0;
}

void tm_region_unpack(const tm_region *r, const uint8_t *packed,
		      uint8_t *unpacked)
{
	unsigned bits = r->geom.bits;
	unsigned per_byte = 8 / bits;
	unsigned mask = bits == 8 ? 0xFFu : (1u << bits) - 1;

	if (bits == 4) {
		tm_tags_unpack(unpacked, packed, r->granules);
		return;
	}
	for (size_t g = 0; g < r->granules; g++)
		unpacked[g] = (uint8_t)((packed[g / per_byte] >>
					 ((g % per_byte) * bits)) & mask);
}
