/*
 * tagstream_internal.h - what the stream codec's two encoders and decoders
 * share (tagstream.c: any geometry, many pages per block; tagstream_page.c:
 * one page of 4-bit items, the swap tag store's hot path): the format's
 * constants, minimal-form LEB128 varints and the word-at-a-time 4-bit run
 * helpers. Format: docs/FORMAT.md §tags "Tag stream".
 */
#ifndef TM_TAGS_TAGSTREAM_INTERNAL_H
#define TM_TAGS_TAGSTREAM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TS_VERSION 1
#define TS_FLAG_ZSTD 0x01
#define TS_MAX_RUNS 4096  /* more runs than this never beat raw for MTE */

enum { C_ZERO = 0, C_ONE = 1, C_RUNS = 2, C_RAW = 3 };

static inline size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* 0 and *used on success; -1 truncated; -2 over-long or non-minimal. */
static inline int varint_get(const uint8_t *p, size_t avail, uint64_t *v, size_t *used)
{
	uint64_t x = 0;

	for (size_t i = 0; i < 10; i++) {
		if (i >= avail)
			return -1;
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			if (i > 0 && p[i] == 0)
				return -2;
			if (i == 9 && p[i] > 1)
				return -2;
			*v = x;
			*used = i + 1;
			return 0;
		}
	}
	return -2;
}

/* Bit 4j set: item 16k + j starts a run (differs from the item before it;
 * prev is word k - 1, or 0 with k == 0 where item 0 is not counted). */
static inline uint64_t starts4(uint64_t w, uint64_t prev, size_t k)
{
	uint64_t d = w ^ ((w << 4) | (prev >> 60));

	d |= d >> 2;
	d |= d >> 1;
	return d & 0x1111111111111111ull & (k ? ~0ull : ~1ull);
}

/* Set flags of a starts4() mask: nibble sums folded into bytes, then all
 * bytes added with one multiply (at most 16, no carry between bytes). */
static inline size_t flags4(uint64_t m)
{
	m = (m + (m >> 4)) & 0x0F0F0F0F0F0F0F0Full;
	return (size_t)((m * 0x0101010101010101ull) >> 56);
}

/*
 * Write 4-bit run [start, start + len) of value v into a page being built
 * run after run from item 0: whole 8-byte stores of the value, which may
 * run up to 7 bytes past the run (the next runs overwrite them, and the
 * caller's buffer has 8 bytes of slack after the page); a run starting at
 * an odd item first sets the high nibble it shares with the run before.
 */
static inline void fill4_seq(uint8_t *out, size_t start, size_t len, unsigned v)
{
	uint64_t pat = 0x1111111111111111ull * v;
	size_t end = (start + len + 1) / 2;

	if (start & 1) {
		out[start / 2] = (uint8_t)((out[start / 2] & 0x0F) | (v << 4));
		start++;
	}
	for (size_t b = start / 2; b < end; b += 8)
		memcpy(out + b, &pat, 8);
}

#endif
