/*
 * simd_x86.c - SSE2 and AVX2 versions of pack, unpack and the zero scan.
 *
 * SSE2 is part of x86-64, so those functions need nothing special. The AVX2
 * functions carry __attribute__((target("avx2"))) so the file builds without
 * -mavx2 and the rest of tagmem keeps running on CPUs without AVX2; the
 * dispatcher only calls them after __builtin_cpu_supports("avx2").
 *
 * Pack trick: read the unpacked bytes as 16-bit lanes x = lo | hi << 8; then
 * (x | x >> 4) & 0xff = lo | hi << 4 when both are valid tags, and a
 * saturating pack narrows the lanes to bytes. Validity is an OR of every
 * input byte, tested against 0xf0 once at the end: cheap, and the caller
 * looks for the culprit only when it failed.
 */
#if defined(__x86_64__)

#include <immintrin.h>
#include <stdint.h>

#include "tags/simd.h"

/* ---------------- SSE2 ---------------- */

static inline __m128i pack_lanes_sse2(__m128i x)
{
	return _mm_and_si128(_mm_or_si128(x, _mm_srli_epi16(x, 4)),
			     _mm_set1_epi16(0x00ff));
}

static inline bool no_high_bits_sse2(__m128i acc)
{
	__m128i hi = _mm_and_si128(acc, _mm_set1_epi8((char)0xf0));

	return _mm_movemask_epi8(_mm_cmpeq_epi8(hi, _mm_setzero_si128())) == 0xffff;
}

bool tm_tags_pack_sse2(uint8_t *packed, const uint8_t *unpacked, size_t n)
{
	__m128i acc = _mm_setzero_si128();
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		__m128i a = _mm_loadu_si128((const __m128i *)(unpacked + i));
		__m128i b = _mm_loadu_si128((const __m128i *)(unpacked + i + 16));

		acc = _mm_or_si128(acc, _mm_or_si128(a, b));
		_mm_storeu_si128((__m128i *)(packed + i / 2),
				 _mm_packus_epi16(pack_lanes_sse2(a), pack_lanes_sse2(b)));
	}
	bool ok = no_high_bits_sse2(acc);

	return tm_tags_pack_scalar(packed + i / 2, unpacked + i, n - i) && ok;
}

void tm_tags_unpack_sse2(uint8_t *unpacked, const uint8_t *packed, size_t n)
{
	const __m128i m = _mm_set1_epi8(0x0f);
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		__m128i p = _mm_loadu_si128((const __m128i *)(packed + i / 2));
		__m128i lo = _mm_and_si128(p, m);
		__m128i hi = _mm_and_si128(_mm_srli_epi16(p, 4), m);

		_mm_storeu_si128((__m128i *)(unpacked + i), _mm_unpacklo_epi8(lo, hi));
		_mm_storeu_si128((__m128i *)(unpacked + i + 16), _mm_unpackhi_epi8(lo, hi));
	}
	tm_tags_unpack_scalar(unpacked + i, packed + i / 2, n - i);
}

static inline bool zero128(__m128i v)
{
	return _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) == 0xffff;
}

bool tm_mem_is_zero_sse2(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i = 0;

	if (n < 64)
		return tm_mem_is_zero_scalar(p, n);
	/* Most non-zero pages are non-zero at the start: probe it first. */
	if (!zero128(_mm_loadu_si128((const __m128i *)b)))
		return false;
	for (; i + 64 <= n; i += 64) {
		__m128i v = _mm_or_si128(
			_mm_or_si128(_mm_loadu_si128((const __m128i *)(b + i)),
				     _mm_loadu_si128((const __m128i *)(b + i + 16))),
			_mm_or_si128(_mm_loadu_si128((const __m128i *)(b + i + 32)),
				     _mm_loadu_si128((const __m128i *)(b + i + 48))));
		if (!zero128(v))
			return false;
	}
	if (i == n)
		return true;
	/* Tail: re-read the last 64 bytes (overlap is harmless, n >= 64). */
	const uint8_t *t = b + n - 64;
	__m128i v = _mm_or_si128(
		_mm_or_si128(_mm_loadu_si128((const __m128i *)t),
			     _mm_loadu_si128((const __m128i *)(t + 16))),
		_mm_or_si128(_mm_loadu_si128((const __m128i *)(t + 32)),
			     _mm_loadu_si128((const __m128i *)(t + 48))));
	return zero128(v);
}

/* ---------------- AVX2 ---------------- */

#define AVX2 __attribute__((target("avx2")))

/*
 * Outputs at least this large are written with non-temporal stores: they
 * cannot stay in a 2 MiB L2 anyway, and streaming stores skip the read for
 * ownership of every destination line (glibc's memcpy switches strategy the
 * same way for large copies). Smaller outputs stay in cache for the caller.
 */
#define NT_MIN_OUT ((size_t)4 << 20)

AVX2 static inline __m256i pack_lanes_avx2(__m256i x)
{
	return _mm256_and_si256(_mm256_or_si256(x, _mm256_srli_epi16(x, 4)),
				_mm256_set1_epi16(0x00ff));
}

AVX2 static inline __m256i pack64_avx2(const uint8_t *u, __m256i *acc)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)u);
	__m256i b = _mm256_loadu_si256((const __m256i *)(u + 32));

	*acc = _mm256_or_si256(*acc, _mm256_or_si256(a, b));
	/* packus works per 128-bit lane: qwords come out a0 b0 a1 b1. */
	__m256i y = _mm256_packus_epi16(pack_lanes_avx2(a), pack_lanes_avx2(b));
	return _mm256_permute4x64_epi64(y, _MM_SHUFFLE(3, 1, 2, 0));
}

AVX2 bool tm_tags_pack_avx2(uint8_t *packed, const uint8_t *unpacked, size_t n)
{
	__m256i acc = _mm256_setzero_si256();
	bool ok = true;
	size_t i = 0;

	if (n / 2 >= NT_MIN_OUT) {
		/* align the output for streaming stores (i stays even) */
		i = 2 * ((32 - ((uintptr_t)packed & 31)) & 31);
		ok = tm_tags_pack_sse2(packed, unpacked, i);
		for (; i + 64 <= n; i += 64)
			_mm256_stream_si256((__m256i *)(packed + i / 2), pack64_avx2(unpacked + i, &acc));
		_mm_sfence();
	}
	for (; i + 64 <= n; i += 64)
		_mm256_storeu_si256((__m256i *)(packed + i / 2), pack64_avx2(unpacked + i, &acc));
	__m256i hi = _mm256_and_si256(acc, _mm256_set1_epi8((char)0xf0));
	ok = ok && _mm256_testz_si256(hi, hi);

	return tm_tags_pack_sse2(packed + i / 2, unpacked + i, n - i) && ok;
}

/* 32 packed bytes into 64 tags: lo/hi halves of the result. */
AVX2 static inline void unpack32_avx2(const uint8_t *p, __m256i *r0, __m256i *r1)
{
	const __m256i m = _mm256_set1_epi8(0x0f);
	__m256i x = _mm256_loadu_si256((const __m256i *)p);
	__m256i lo = _mm256_and_si256(x, m);
	__m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m);
	/* unpack works per lane: l = bytes 0-7 | 16-23, h = 8-15 | 24-31. */
	__m256i l = _mm256_unpacklo_epi8(lo, hi);
	__m256i h = _mm256_unpackhi_epi8(lo, hi);

	*r0 = _mm256_permute2x128_si256(l, h, 0x20);
	*r1 = _mm256_permute2x128_si256(l, h, 0x31);
}

AVX2 void tm_tags_unpack_avx2(uint8_t *unpacked, const uint8_t *packed, size_t n)
{
	__m256i r0, r1;
	size_t i = 0;

	if (n >= NT_MIN_OUT && !((uintptr_t)unpacked & 1)) {
		/* align the output for streaming stores (even, so whole bytes in) */
		i = (32 - ((uintptr_t)unpacked & 31)) & 31;
		tm_tags_unpack_sse2(unpacked, packed, i);
		for (; i + 64 <= n; i += 64) {
			unpack32_avx2(packed + i / 2, &r0, &r1);
			_mm256_stream_si256((__m256i *)(unpacked + i), r0);
			_mm256_stream_si256((__m256i *)(unpacked + i + 32), r1);
		}
		_mm_sfence();
	}
	for (; i + 64 <= n; i += 64) {
		unpack32_avx2(packed + i / 2, &r0, &r1);
		_mm256_storeu_si256((__m256i *)(unpacked + i), r0);
		_mm256_storeu_si256((__m256i *)(unpacked + i + 32), r1);
	}
	tm_tags_unpack_sse2(unpacked + i, packed + i / 2, n - i);
}

AVX2 static inline __m256i or128(const uint8_t *b)
{
	return _mm256_or_si256(
		_mm256_or_si256(_mm256_loadu_si256((const __m256i *)b),
				_mm256_loadu_si256((const __m256i *)(b + 32))),
		_mm256_or_si256(_mm256_loadu_si256((const __m256i *)(b + 64)),
				_mm256_loadu_si256((const __m256i *)(b + 96))));
}

AVX2 bool tm_mem_is_zero_avx2(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i = 0;

	if (n < 128)
		return tm_mem_is_zero_sse2(p, n);
	__m256i first = _mm256_loadu_si256((const __m256i *)b);
	if (!_mm256_testz_si256(first, first))
		return false;
	for (; i + 128 <= n; i += 128) {
		__m256i v = or128(b + i);

		if (!_mm256_testz_si256(v, v))
			return false;
	}
	if (i == n)
		return true;
	__m256i v = or128(b + n - 128);
	return _mm256_testz_si256(v, v);
}

#endif /* __x86_64__ */
