/*
 * simd.h - internal: the vector implementations of the tags core's hot loops
 * (pack, unpack, zero scan) and how one is chosen at run time.
 *
 * Each implementation is a row of function pointers. The public functions
 * ask tm_tags_impl_best() on every call: it reads the CPU feature word that
 * the compiler runtime fills at start-up, so nothing of our own is cached
 * and there is no global state. Tests walk tm_tags_impl_list() to check every
 * implementation this CPU can run against the scalar reference.
 */
#ifndef TM_TAGS_SIMD_H
#define TM_TAGS_SIMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/error.h"

typedef struct tm_tags_impl {
	const char *name;               /* "avx2", "sse2", "neon", "scalar" */
	bool (*available)(void);        /* can this CPU run it? */
	/* Pack n tags (n may be odd: the last byte's high nibble is 0).
	 * Returns false when any input byte has bits above the 4-bit tag; the
	 * output is then unspecified and the caller locates the culprit. */
	bool (*pack)(uint8_t *packed, const uint8_t *unpacked, size_t n);
	/* Unpack n tags from (n + 1) / 2 packed bytes. */
	void (*unpack)(uint8_t *unpacked, const uint8_t *packed, size_t n);
	/* True when n bytes are all zero. */
	bool (*is_zero)(const void *p, size_t n);
} tm_tags_impl;

/* Every implementation compiled in, best first; *n receives the count. */
const tm_tags_impl *tm_tags_impl_list(size_t *n);
/* The best implementation this CPU can run (never NULL: scalar always runs). */
const tm_tags_impl *tm_tags_impl_best(void);

/* Scalar references: the definition the vector versions are tested and
 * benchmarked against (same contract as tm_tags_pack/unpack). Internal:
 * tests, the tags benchmark and `tagmem tags` reach them, callers do not. */
int tm_tags_pack_ref(uint8_t *packed, const uint8_t *unpacked, size_t n,
		     tm_error *err);
void tm_tags_unpack_ref(uint8_t *unpacked, const uint8_t *packed, size_t n);

/* Scalar building blocks the vector versions use for heads and tails. */
bool tm_tags_pack_scalar(uint8_t *packed, const uint8_t *unpacked, size_t n);
void tm_tags_unpack_scalar(uint8_t *unpacked, const uint8_t *packed, size_t n);
bool tm_mem_is_zero_scalar(const void *p, size_t n);

#if defined(__x86_64__)
bool tm_tags_pack_sse2(uint8_t *packed, const uint8_t *unpacked, size_t n);
void tm_tags_unpack_sse2(uint8_t *unpacked, const uint8_t *packed, size_t n);
bool tm_mem_is_zero_sse2(const void *p, size_t n);
bool tm_tags_pack_avx2(uint8_t *packed, const uint8_t *unpacked, size_t n);
void tm_tags_unpack_avx2(uint8_t *unpacked, const uint8_t *packed, size_t n);
bool tm_mem_is_zero_avx2(const void *p, size_t n);
#endif

#if defined(__aarch64__)
bool tm_tags_pack_neon(uint8_t *packed, const uint8_t *unpacked, size_t n);
void tm_tags_unpack_neon(uint8_t *unpacked, const uint8_t *packed, size_t n);
bool tm_mem_is_zero_neon(const void *p, size_t n);
#endif

#endif
