/*
 * pack.c - packed <-> unpacked tags: the scalar reference, the public entry
 * points, and the run-time choice between the vector implementations.
 *
 * Packed: two 4-bit tags per byte, the lower-address granule in the low
 * nibble (Linux mte_save_page_tags, core dumps, gdb, QEMU TCG). Unpacked: one
 * tag per byte (KVM_ARM_MTE_COPY_TAGS, PTRACE_PEEKMTETAGS). KVM ignores bits
 * above the tag in an unpacked byte; we refuse them, because a byte like 0x1a
 * is a bug in whoever produced it, not a tag.
 */
#include "tagmem/tags.h"

#include <errno.h>

#include "tags/simd.h"

bool tm_tags_pack_scalar(uint8_t *packed, const uint8_t *unpacked, size_t n)
{
	uint8_t bad = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2) {
		uint8_t lo = unpacked[i], hi = unpacked[i + 1];

		bad |= (uint8_t)(lo | hi);
		packed[i / 2] = (uint8_t)(lo | (hi << 4));
	}
	if (i < n) {
		bad |= unpacked[i];
		packed[i / 2] = (uint8_t)(unpacked[i] & 0xF);
	}
	return (bad & 0xF0) == 0;
}

void tm_tags_unpack_scalar(uint8_t *unpacked, const uint8_t *packed, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2) {
		unpacked[i] = packed[i / 2] & 0xF;
		unpacked[i + 1] = packed[i / 2] >> 4;
	}
	if (i < n)
		unpacked[i] = packed[i / 2] & 0xF;
}

/* Only runs on the error path, so it may be as plain as it likes. */
static int report_bad_granule(const uint8_t *unpacked, size_t n, tm_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (unpacked[i] > 0xF)
			return tm_error_set(err, -EINVAL,
					    "tag pack: granule %zu has byte 0x%02x with bits above the 4-bit tag",
					    i, unpacked[i]);
	return tm_error_set(err, -EINVAL, "tag pack: invalid input (no culprit found)");
}

int tm_tags_pack_ref(uint8_t *packed, const uint8_t *unpacked, size_t n,
		     tm_error *err)
{
	if (!tm_tags_pack_scalar(packed, unpacked, n))
		return report_bad_granule(unpacked, n, err);
	return 0;
}

void tm_tags_unpack_ref(uint8_t *unpacked, const uint8_t *packed, size_t n)
{
	tm_tags_unpack_scalar(unpacked, packed, n);
}

int tm_tags_pack(uint8_t *packed, const uint8_t *unpacked, size_t n,
		 tm_error *err)
{
	if (!tm_tags_impl_best()->pack(packed, unpacked, n))
		return report_bad_granule(unpacked, n, err);
	return 0;
}

void tm_tags_unpack(uint8_t *unpacked, const uint8_t *packed, size_t n)
{
	tm_tags_impl_best()->unpack(unpacked, packed, n);
}

const char *tm_tags_simd_name(void)
{
	return tm_tags_impl_best()->name;
}
