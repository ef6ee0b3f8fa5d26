/*
 * ea0.h - internal: the EA0 range helpers, exported (like the kernel's
 * mte_tags_to_ranges()/mte_ranges_to_tags()) so the tests can port the
 * KUnit cases that work on ranges. Ranges are in EA0's walk order: the high
 * nibble of each packed byte first (see runs.h).
 */
#ifndef TM_TAGS_EA0_H
#define TM_TAGS_EA0_H

#include <stddef.h>
#include <stdint.h>

/*
 * Split one page's packed tags into ranges. Writes at most cap ranges and
 * returns how many there are in total (which may exceed cap).
 * page_size must be 4, 16 or 64 KiB.
 */
size_t tm_ea0_tags_to_ranges(uint32_t page_size, const uint8_t *packed,
			     uint8_t *r_tags, uint16_t *r_sizes, size_t cap);

/* Write ranges (sizes summing to the page's granule count) as packed tags. */
void tm_ea0_ranges_to_tags(uint32_t page_size, const uint8_t *r_tags,
			   const uint16_t *r_sizes, size_t n, uint8_t *packed);

#endif
