/*
 * pt_pattern.h - the deterministic contents the ptrace tests' target
 * program (ptrace_target.c) writes into its mappings and the tests expect
 * back: per page a class (tagged data, tag-only, zero, untagged data), per
 * 8-byte word a value, per 16-byte granule a tag, all from a seed and the
 * address, so that two processes and a snapshot can be compared without
 * shipping the bytes around. Header-only; shared by the target and the
 * tests (the target cannot link cmocka).
 */
#ifndef TM_TESTS_PT_PATTERN_H
#define TM_TESTS_PT_PATTERN_H

#include <stdbool.h>
#include <stdint.h>

enum pt_class { PT_TAGGED = 0, PT_TAG_ONLY = 1, PT_ZERO = 2, PT_UNTAGGED = 3 };

static inline uint64_t pt_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Class of the page at page-aligned address a: 2 in 5 tagged with data,
 * then one each of tag-only, zero, untagged data. */
static inline enum pt_class pt_page_class(uint64_t seed, uint64_t a,
					  uint64_t page_size)
{
	static const enum pt_class order[5] = { PT_TAGGED, PT_TAGGED, PT_TAG_ONLY,
						PT_ZERO, PT_UNTAGGED };

	return order[(a / page_size + seed) % 5];
}

static inline bool pt_class_data(enum pt_class c)
{
	return c == PT_TAGGED || c == PT_UNTAGGED;
}

static inline bool pt_class_tags(enum pt_class c)
{
	return c == PT_TAGGED || c == PT_TAG_ONLY;
}

/* The 8-byte word at a (8-aligned) of a page with data. */
static inline uint64_t pt_word(uint64_t seed, uint64_t a)
{
	return pt_mix(a ^ (seed << 48) ^ seed);
}

/* The tag (1..15) of the granule at a of a tagged page. */
static inline unsigned pt_tag(uint64_t seed, uint64_t a)
{
	return 1 + (unsigned)(pt_mix((a >> 4) * 31 + seed * 7) % 15);
}

/* What the word / tag at a must be, taking the page class into account. */
static inline uint64_t pt_expect_word(uint64_t seed, uint64_t a, uint64_t ps)
{
	return pt_class_data(pt_page_class(seed, a - a % ps, ps)) ? pt_word(seed, a) : 0;
}

static inline unsigned pt_expect_tag(uint64_t seed, uint64_t a, uint64_t ps)
{
	return pt_class_tags(pt_page_class(seed, a - a % ps, ps)) ? pt_tag(seed, a) : 0;
}

#endif
