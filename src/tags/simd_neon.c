/*
 * simd_neon.c - NEON (Advanced SIMD) versions of pack, unpack and the zero
 * scan for aarch64, where NEON is always present.
 *
 * NEON's structure loads and stores do the (de)interleaving for us: LD2
 * splits even and odd granules into two registers, ST2 writes low and high
 * nibbles back interleaved.
 */
#if defined(__aarch64__)

#include <arm_neon.h>

#include "tags/simd.h"

bool tm_tags_pack_neon(uint8_t *packed, const uint8_t *unpacked, size_t n)
{
	uint8x16_t acc = vdupq_n_u8(0);
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		uint8x16x2_t v = vld2q_u8(unpacked + i);

		acc = vorrq_u8(acc, vorrq_u8(v.val[0], v.val[1]));
		vst1q_u8(packed + i / 2, vorrq_u8(v.val[0], vshlq_n_u8(v.val[1], 4)));
	}
	bool ok = vmaxvq_u8(acc) <= 0xF;

	return tm_tags_pack_scalar(packed + i / 2, unpacked + i, n - i) && ok;
}

void tm_tags_unpack_neon(uint8_t *unpacked, const uint8_t *packed, size_t n)
{
	const uint8x16_t m = vdupq_n_u8(0x0f);
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		uint8x16_t p = vld1q_u8(packed + i / 2);
		uint8x16x2_t v;

		v.val[0] = vandq_u8(p, m);
		v.val[1] = vshrq_n_u8(p, 4);
		vst2q_u8(unpacked + i, v);
	}
	tm_tags_unpack_scalar(unpacked + i, packed + i / 2, n - i);
}

static inline bool zero_q(uint8x16_t v)
{
	uint64x2_t w = vreinterpretq_u64_u8(v);

	return (vgetq_lane_u64(w, 0) | vgetq_lane_u64(w, 1)) == 0;
}

static inline uint8x16_t or64(const uint8_t *b)
{
	return vorrq_u8(vorrq_u8(vld1q_u8(b), vld1q_u8(b + 16)),
			vorrq_u8(vld1q_u8(b + 32), vld1q_u8(b + 48)));
}

bool tm_mem_is_zero_neon(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i = 0;

	if (n < 64)
		return tm_mem_is_zero_scalar(p, n);
	if (!zero_q(vld1q_u8(b)))
		return false;
	for (; i + 64 <= n; i += 64)
		if (!zero_q(or64(b + i)))
			return false;
	return i == n || zero_q(or64(b + n - 64));
}

#endif /* __aarch64__ */
