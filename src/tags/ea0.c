/*
 * ea0.c - EA0 tag compression, bit-compatible with the inline handles of the
 * last posted Linux series (Potapenko, "Implement MTE tag compression for
 * swapped pages", v11-mte, 18 Dec 2023: arch/arm64/mm/mtecomp.c and
 * Documentation/arch/arm64/mte-tag-compression.rst). Written from the
 * documented format; no kernel code is copied.
 *
 * A page's tags are split into ranges of equal tags (in the kernel's walk
 * order: high nibble of each byte first). If there are at most N ranges
 * (N = 6, 5, 4 for 4, 16, 64 KiB pages) they are stored in one 63-bit value:
 *
 *   bit 0                 1 (inline marker; kmalloc pointers have it 0)
 *   bits 1..3             largest_idx: index of the longest range (first
 *                         one on ties); its length is implied
 *   next 4*N bits         r_tags[0..N-1], zero padded
 *   next S*(N-1) bits     lengths of the other ranges in order, skipping
 *                         largest_idx, zero padded; S = log2(granules) - 1
 *   remaining bits        0 (bit 63 is always 0: XArray values are 63-bit)
 *
 * A page of one tag is stored as two ranges of granules/2 with the same
 * tag. A length of exactly granules/2 does not fit in S bits and is written
 * as 0; the decoder reads a 0 in the first length slot with largest_idx 0 as
 * granules/2. Otherwise a 0 length ends the list of ranges.
 *
 * The kernel's decoder only rejects bit 0 clear, largest_idx >= N and
 * lengths summing to >= granules. We reject every handle the encoder could
 * not have produced (see parse()), because a handle that names a range past
 * the last one would leave part of the output unwritten.
 */
#include "tagmem/tags.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tags/ea0.h"
#include "tags/runs.h"

#define EA0_MAX_RANGES 6

struct ea0_params {
	unsigned granules; /* tags per page */
	unsigned size_bits; /* S */
	unsigned max_ranges; /* N */
};

static bool params_for(uint32_t page_size, struct ea0_params *p)
{
	switch (page_size) {
	case 4096:
		*p = (struct ea0_params){ 256, 7, 6 };
		return true;
	case 16384:
		*p = (struct ea0_params){ 1024, 9, 5 };
		return true;
	case 65536:
		*p = (struct ea0_params){ 4096, 11, 4 };
		return true;
	default:
		return false;
	}
}

static int bad_page_size(uint32_t page_size, tm_error *err)
{
	return tm_error_set(err, -EINVAL, "EA0: page size %u (want 4096, 16384 or 65536)",
			    page_size);
}

unsigned tm_ea0_max_inline_ranges(uint32_t page_size)
{
	struct ea0_params p;

	return params_for(page_size, &p) ? p.max_ranges : 0;
}

size_t tm_ea0_tags_to_ranges(uint32_t page_size, const uint8_t *packed,
			     uint8_t *r_tags, uint16_t *r_sizes, size_t cap)
{
	struct ea0_params p;
	tm_run_iter it;
	unsigned tag;
	size_t len, n = 0;

	if (!params_for(page_size, &p))
		return 0;
	tm_run_iter_init(&it, packed, p.granules, 4, true);
	while (tm_run_next(&it, &tag, &len)) {
		if (n < cap) {
			r_tags[n] = (uint8_t)tag;
			r_sizes[n] = (uint16_t)len;
		}
		n++;
	}
	return n;
}

void tm_ea0_ranges_to_tags(uint32_t page_size, const uint8_t *r_tags,
			   const uint16_t *r_sizes, size_t n, uint8_t *packed)
{
	size_t pos = 0;

	(void)page_size;
	for (size_t i = 0; i < n; i++) {
		tm_items_fill(packed, 4, pos, r_sizes[i], r_tags[i], true);
		pos += r_sizes[i];
	}
}

/* The handle for n ranges (1 < n <= N); the caller split a single range. */
static uint64_t encode(const struct ea0_params *p, unsigned n,
		       const uint8_t *t, const uint16_t *l)
{
	unsigned largest = 0, pos = 4;
	uint64_t h;

	for (unsigned i = 1; i < n; i++)
		if (l[i] > l[largest])
			largest = i;
	h = 1 | (uint64_t)largest << 1;
	for (unsigned i = 0; i < n; i++)
		h |= (uint64_t)(t[i] & 0xF) << (pos + 4 * i);
	pos += 4 * p->max_ranges;
	for (unsigned i = 0; i < n; i++) {
		if (i == largest)
			continue;
		/* granules/2 wraps to 0 here, which the decoder expects */
		h |= (uint64_t)(l[i] & ((1u << p->size_bits) - 1)) << pos;
		pos += p->size_bits;
	}
	return h;
}

/* The tag at granule i in the kernel's order (high nibble of a byte first). */
static unsigned tag_at(const uint8_t *packed, size_t i)
{
	return (packed[i / 2] >> ((i & 1) ? 0 : 4)) & 0xF;
}

/*
 * The page's ranges in the kernel's order into t/l, at most max of them;
 * 0 when there are more. Straight from the words (every EA0 page size has
 * a whole number of 16-granule words): each word's nibbles swapped within
 * their bytes, compared with their predecessors, and the range starts
 * taken one set bit at a time; a page that misses stops at the first range
 * too many.
 */
static size_t ranges_of(const struct ea0_params *p, const uint8_t *packed,
			uint8_t *t, uint16_t *l)
{
	const uint64_t lo = 0x0F0F0F0F0F0F0F0Full;
	size_t words = p->granules / 16, start = 0, n = 0;
	uint64_t prev = 0, w;

	for (size_t k = 0; k < words; k++) {
		memcpy(&w, packed + 8 * k, 8);
		w = ((w >> 4) & lo) | ((w & lo) << 4);
		uint64_t d = w ^ ((w << 4) | (prev >> 60));

		d |= d >> 2;
		d |= d >> 1;
		d &= 0x1111111111111111ull & (k ? ~0ull : ~1ull);
		for (; d; d &= d - 1) {
			size_t s = k * 16 + (size_t)__builtin_ctzll(d) / 4;

			if (n + 1 >= p->max_ranges)
				return 0;
			t[n] = (uint8_t)tag_at(packed, start);
			l[n++] = (uint16_t)(s - start);
			start = s;
		}
		prev = w;
	}
	t[n] = (uint8_t)tag_at(packed, start);
	l[n++] = (uint16_t)(p->granules - start);
	return n;
}

int tm_ea0_compress(uint32_t page_size, const uint8_t *packed,
		    uint64_t *handle, tm_error *err)
{
	uint8_t t[EA0_MAX_RANGES + 1];
	uint16_t l[EA0_MAX_RANGES + 1];
	struct ea0_params p;
	size_t n;

	if (!params_for(page_size, &p))
		return bad_page_size(page_size, err);
	n = ranges_of(&p, packed, t, l);
	if (n == 0)
		return tm_error_set(err, -E2BIG,
				    "EA0: more than %u tag ranges do not fit inline for %u-byte pages",
				    p.max_ranges, page_size);
	if (n == 1) {
		t[1] = t[0];
		l[0] = l[1] = (uint16_t)(p.granules / 2);
		n = 2;
	}
	*handle = encode(&p, (unsigned)n, t, l);
	return 0;
}

static int invalid(tm_error *err, uint64_t h, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int invalid(tm_error *err, uint64_t h, const char *fmt, ...)
{
	char reason[200];
	va_list ap;

	if (!err)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return tm_error_set(err, -EINVAL, "EA0 handle 0x%016llx: %s",
			    (unsigned long long)h, reason);
}

/* Read the length slots; returns the number of ranges or a negative error. */
static int read_sizes(const struct ea0_params *p, uint64_t h, unsigned largest,
		      uint16_t *l, unsigned *sum, tm_error *err)
{
	unsigned pos = 4 + 4 * p->max_ranges, s = 0;
	uint64_t mask = (1u << p->size_bits) - 1;

	for (unsigned i = 0; i < p->max_ranges; i++) {
		if (i == largest)
			continue;
		unsigned v = (unsigned)((h >> pos) & mask);

		pos += p->size_bits;
		if (v == 0 && largest == 0 && i == 1)
			v = p->granules / 2;
		if (v == 0) {
			*sum = s;
			return (int)i;
		}
		l[i] = (uint16_t)v;
		s += v;
		if (s >= p->granules)
			return invalid(err, h, "range lengths reach %u of %u granules, "
				       "leaving nothing for the largest range", s, p->granules);
	}
	*sum = s;
	return (int)p->max_ranges;
}

/*
 * Decode a handle into ranges, accepting only what tm_ea0_compress() can
 * produce. Writes nothing outside t/l.
 */
static int parse(const struct ea0_params *p, uint64_t h, uint8_t *t,
		 uint16_t *l, unsigned *nranges, tm_error *err)
{
	unsigned used = 4 + 4 * p->max_ranges + p->size_bits * (p->max_ranges - 1);
	unsigned largest = (unsigned)(h >> 1) & 7, sum = 0;
	int n;

	if (!(h & 1))
		return invalid(err, h, "bit 0 is 0, so it is not an inline handle "
			       "(the kernel stores a pointer to raw tags there)");
	if (h >> 63)
		return invalid(err, h, "bit 63 is set (handles are 63-bit XArray values)");
	if (used < 63 && (h >> used) != 0)
		return invalid(err, h, "bits %u..62 must be 0", used);
	if (largest >= p->max_ranges)
		return invalid(err, h, "largest_idx %u is out of range (at most %u ranges inline)",
			       largest, p->max_ranges);
	for (unsigned i = 0; i < p->max_ranges; i++)
		t[i] = (uint8_t)((h >> (4 + 4 * i)) & 0xF);
	n = read_sizes(p, h, largest, l, &sum, err);
	if (n < 0)
		return n;
	if (largest >= (unsigned)n)
		return invalid(err, h, "largest_idx %u names no range (only %u ranges)",
			       largest, (unsigned)n);
	l[largest] = (uint16_t)(p->granules - sum);
	bool split = n == 2 && t[0] == t[1] && l[0] == l[1];
	for (int i = 1; i < n && !split; i++)
		if (t[i] == t[i - 1])
			return invalid(err, h, "ranges %u and %u have the same tag "
				       "(the encoder merges them)", (unsigned)i - 1, (unsigned)i);
	if (encode(p, (unsigned)n, t, l) != h)
		return invalid(err, h, "not the canonical encoding of its %u ranges "
			       "(padding, largest index or a length is off)", (unsigned)n);
	*nranges = (unsigned)n;
	return 0;
}

int tm_ea0_decompress(uint32_t page_size, uint64_t handle, uint8_t *packed,
		      tm_error *err)
{
	uint8_t t[EA0_MAX_RANGES];
	uint16_t l[EA0_MAX_RANGES];
	struct ea0_params p;
	unsigned n;
	int rc;

	if (!params_for(page_size, &p))
		return bad_page_size(page_size, err);
	rc = parse(&p, handle, t, l, &n, err);
	if (rc)
		return rc;
	tm_ea0_ranges_to_tags(page_size, t, l, n, packed);
	return 0;
}

bool tm_ea0_handle_valid(uint32_t page_size, uint64_t handle)
{
	uint8_t t[EA0_MAX_RANGES];
	uint16_t l[EA0_MAX_RANGES];
	struct ea0_params p;
	unsigned n;

	return params_for(page_size, &p) && parse(&p, handle, t, l, &n, NULL) == 0;
}

size_t tm_ea0_storage_bytes(uint32_t page_size, const uint8_t *packed,
			    size_t npages, size_t *ninline)
{
	size_t pb = page_size / 32, bytes = 0, nin = 0;
	uint64_t h;

	if (!tm_ea0_max_inline_ranges(page_size))
		return 0;
	for (size_t i = 0; i < npages; i++) {
		if (tm_ea0_compress(page_size, packed + i * pb, &h, NULL) == 0) {
			bytes += 8;
			nin++;
		} else {
			bytes += pb + 8;
		}
	}
	if (ninline)
		*ninline = nin;
	return bytes;
}
