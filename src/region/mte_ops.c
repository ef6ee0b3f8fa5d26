/*
 * mte_ops.c - the raw Arm MTE primitives (see mte_ops.h): the only place in
 * tagmem that executes MTE instructions. Built with +memtag for this file
 * alone (src/region/meson.build), so the rest of the library runs on arm64
 * CPUs without MTE.
 *
 * Instruction choice (why, in short; docs/parts/mte.md has the long form):
 *   LDG    one granule's tag per load; LDGM is EL1-only.
 *   ST2G   two granules per store where two neighbours share a tag, STG for
 *          the rest; STGM is EL1-only.
 *   STGP   data and tag of a granule in one store, so a concurrent reader
 *          never sees a granule's new data under its old tag.
 *   STZG/STZ2G  zero data and tags together.
 *   IRG    random tag honouring the exclude mask (GCR_EL1 via prctl).
 * Bulk operations run with PSTATE.TCO set (tag checks suppressed for this
 * thread) and put back the caller's TCO afterwards. We do not strip the
 * pointer tag instead, because tag 0 is checked like any other tag: memory
 * tagged 5 faults through an address tagged 0.
 *
 * Any other architecture gets the -ENOTSUP versions at the end of the file.
 */
#include "region/mte_ops.h"

#include <errno.h>

#if defined(__aarch64__) && defined(__linux__)

#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef HWCAP2_MTE
#define HWCAP2_MTE (1UL << 18)
#endif
#ifndef PROT_MTE
#define PROT_MTE 0x20
#endif
#ifndef PR_SET_TAGGED_ADDR_CTRL
#define PR_SET_TAGGED_ADDR_CTRL 55
#endif
#ifndef PR_GET_TAGGED_ADDR_CTRL
#define PR_GET_TAGGED_ADDR_CTRL 56
#endif
#ifndef PR_TAGGED_ADDR_ENABLE
#define PR_TAGGED_ADDR_ENABLE (1UL << 0)
#endif
#ifndef PR_MTE_TCF_SHIFT
#define PR_MTE_TCF_SHIFT 1
#endif
#ifndef PR_MTE_TCF_SYNC
#define PR_MTE_TCF_SYNC (1UL << PR_MTE_TCF_SHIFT)
#endif
#ifndef PR_MTE_TAG_SHIFT
#define PR_MTE_TAG_SHIFT 3
#endif

#define GRANULE      16u
#define TAG_SHIFT    56
#define TAG_MASK     ((uint64_t)0xf << TAG_SHIFT)
/* IRG may pick any tag but 0: 0 stays "untagged", as in Linux and Scudo. */
#define IRG_INCLUDE  0xfffeUL

/* ---- PSTATE.TCO -------------------------------------------------- */

/* Set TCO and return the previous TCO register value (bit 25). The memory
 * clobbers keep the compiler from moving accesses across the switch. */
static inline uint64_t tco_enter(void)
{
	uint64_t old;

	__asm__ volatile("mrs %0, tco\n\tmsr tco, #1" : "=r"(old) : : "memory");
	return old;
}

static inline void tco_leave(uint64_t old)
{
	__asm__ volatile("msr tco, %0" : : "r"(old) : "memory");
}

/* ---- single-instruction wrappers -------------------------------- */

static inline uintptr_t addr_bits(const void *p)
{
	return (uintptr_t)p & ~(uintptr_t)TAG_MASK;
}

static inline uint64_t tag_reg(uint8_t tag)
{
	return (uint64_t)(tag & 0xf) << TAG_SHIFT;
}

/* LDG merges the granule's allocation tag into bits 59:56 of the register. */
static inline uintptr_t ldg(uintptr_t a)
{
	__asm__ volatile("ldg %0, [%0]" : "+r"(a) : : "memory");
	return a;
}

static inline void stg(uintptr_t a, uint64_t tagv)
{
	__asm__ volatile("stg %0, [%1]" : : "r"(tagv), "r"(a) : "memory");
}

static inline void st2g(uintptr_t a, uint64_t tagv)
{
	__asm__ volatile("st2g %0, [%1]" : : "r"(tagv), "r"(a) : "memory");
}

/* STZG/STZ2G take the tag from the first register: an untagged address
 * doubles as "tag 0". */
static inline void stzg(uintptr_t a)
{
	__asm__ volatile("stzg %0, [%0]" : : "r"(a) : "memory");
}

static inline void stz2g(uintptr_t a)
{
	__asm__ volatile("stz2g %0, [%0]" : : "r"(a) : "memory");
}

/* STGP takes the tag from the address register's logical tag. */
static inline void stgp(uintptr_t tagged, uint64_t lo, uint64_t hi)
{
	__asm__ volatile("stgp %1, %2, [%0]" : : "r"(tagged), "r"(lo), "r"(hi)
			 : "memory");
}

/* ---- argument checks -------------------------------------------- */

/* A granule-aligned, non-wrapping range. len 0 is a valid no-op. */
static int check_range(const void *addr, size_t len)
{
	uintptr_t a = addr_bits(addr);

	if (a == 0 || (a & (GRANULE - 1)) || (len & (GRANULE - 1)))
		return -EINVAL;
	if (len > (uintptr_t)TAG_MASK - 1 - a)
		return -EINVAL;
	return 0;
}

static int check_bytes(const void *dst, const void *src, size_t len)
{
	if (len == 0)
		return 0;
	if (dst == NULL || src == NULL)
		return -EINVAL;
	if (len > (uintptr_t)TAG_MASK - 1 - addr_bits(dst) ||
	    len > (uintptr_t)TAG_MASK - 1 - addr_bits(src))
		return -EINVAL;
	return 0;
}

static inline uint8_t packed_nibble(const uint8_t *packed, size_t g)
{
	return (packed[g >> 1] >> ((g & 1) * 4)) & 0xf;
}

/* ---- process / thread set-up ------------------------------------ */

bool tm_mte_hw_available(void)
{
	return (getauxval(AT_HWCAP2) & HWCAP2_MTE) != 0;
}

int tm_mte_enable_thread(void)
{
	unsigned long ctrl = PR_TAGGED_ADDR_ENABLE | PR_MTE_TCF_SYNC |
			     (IRG_INCLUDE << PR_MTE_TAG_SHIFT);

	if (!tm_mte_hw_available())
		return -ENOTSUP;
	if (prctl(PR_SET_TAGGED_ADDR_CTRL, ctrl, 0, 0, 0) != 0)
		return -errno;
	return 0;
}

int tm_mte_map(size_t len, void **out)
{
	long pg = sysconf(_SC_PAGESIZE);
	void *p;

	if (out == NULL || len == 0 || pg <= 0 || len % (size_t)pg)
		return -EINVAL;
	if (!tm_mte_hw_available())
		return -ENOTSUP;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE | PROT_MTE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

int tm_mte_unmap(void *addr, size_t len)
{
	if (addr == NULL || len == 0)
		return -EINVAL;
	if (munmap((void *)addr_bits(addr), len) != 0)
		return -errno;
	return 0;
}

/* ---- pointers and single tags ----------------------------------- */

void *tm_mte_with_tag(void *addr, uint8_t tag)
{
	return (void *)(addr_bits(addr) | tag_reg(tag));
}

void *tm_mte_untag(void *addr)
{
	return (void *)addr_bits(addr);
}

uint8_t tm_mte_load_tag(const void *addr)
{
	return (uint8_t)((ldg(addr_bits(addr)) >> TAG_SHIFT) & 0xf);
}

void *tm_mte_ptr_for(void *addr)
{
	return (void *)ldg(addr_bits(addr));
}

void *tm_mte_random_tag(void *addr, uint16_t exclude)
{
	uintptr_t a = (uintptr_t)addr;

	__asm__ volatile("irg %0, %0, %1" : "+r"(a) : "r"((uint64_t)exclude));
	return (void *)a;
}

/* ---- bulk tag access -------------------------------------------- */

int tm_mte_get_tags(const void *addr, size_t len, uint8_t *packed)
{
	uintptr_t a = addr_bits(addr);
	size_t n = len / GRANULE;
	int rc = check_range(addr, len);

	if (rc)
		return rc;
	if (n && packed == NULL)
		return -EINVAL;
	for (size_t i = 0; i + 1 < n; i += 2, a += 2 * GRANULE) {
		uint8_t lo = (uint8_t)(ldg(a) >> TAG_SHIFT) & 0xf;
		uint8_t hi = (uint8_t)(ldg(a + GRANULE) >> TAG_SHIFT) & 0xf;

		packed[i >> 1] = (uint8_t)(lo | hi << 4);
	}
	if (n & 1)
		packed[n >> 1] = (uint8_t)(ldg(a) >> TAG_SHIFT) & 0xf;
	return 0;
}

/* Store the tags of granules [0, n) starting at a, tag_of(g) giving each.
 * A leading granule that is not 32-byte aligned is stored alone, so every
 * ST2G covers an aligned pair (never straddling a page). */
static void store_tags(uintptr_t a, size_t n, const uint8_t *packed,
		       uint8_t fixed)
{
	size_t g = 0;

#define TAG_OF(i) (packed ? packed_nibble(packed, (i)) : fixed)
	if (n && (a & (2 * GRANULE - 1))) {
		stg(a, tag_reg(TAG_OF(0)));
		g = 1;
	}
	for (; g + 1 < n; g += 2) {
		uint8_t t0 = TAG_OF(g), t1 = TAG_OF(g + 1);
		uintptr_t p = a + g * GRANULE;

		if (t0 == t1) {
			st2g(p, tag_reg(t0));
		} else {
			stg(p, tag_reg(t0));
			stg(p + GRANULE, tag_reg(t1));
		}
	}
	if (g < n)
		stg(a + g * GRANULE, tag_reg(TAG_OF(g)));
#undef TAG_OF
}

int tm_mte_set_tags(void *addr, size_t len, const uint8_t *packed)
{
	int rc = check_range(addr, len);
	uint64_t tco;

	if (rc)
		return rc;
	if (len && packed == NULL)
		return -EINVAL;
	tco = tco_enter();
	store_tags(addr_bits(addr), len / GRANULE, packed, 0);
	tco_leave(tco);
	return 0;
}

int tm_mte_set_tag_range(void *addr, size_t len, uint8_t tag)
{
	int rc = check_range(addr, len);
	uint64_t tco;

	if (rc)
		return rc;
	if (tag > 0xf)
		return -EINVAL;
	tco = tco_enter();
	store_tags(addr_bits(addr), len / GRANULE, NULL, tag);
	tco_leave(tco);
	return 0;
}

/* ---- data with tags --------------------------------------------- */

int tm_mte_copy_in(void *dst, const void *src, const uint8_t *packed, size_t len)
{
	uintptr_t d = addr_bits(dst);
	const unsigned char *s = src;
	int rc = check_range(dst, len);
	uint64_t tco;

	if (rc)
		return rc;
	if (len && src == NULL)
		return -EINVAL;
	tco = tco_enter();
	for (size_t g = 0; g < len / GRANULE; g++, d += GRANULE, s += GRANULE) {
		uint64_t w[2];
		uint8_t t = packed ? packed_nibble(packed, g) : 0;

		memcpy(w, s, sizeof(w));
		stgp(d | tag_reg(t), w[0], w[1]);
	}
	tco_leave(tco);
	return 0;
}

/* Both directions are plain copies with tag checks off: only which side is
 * tagged memory differs, and that does not change what runs. */
static int tco_copy(void *dst, const void *src, size_t len)
{
	int rc = check_bytes(dst, src, len);
	uint64_t tco;

	if (rc || len == 0)
		return rc;
	tco = tco_enter();
	memcpy(dst, src, len);
	tco_leave(tco);
	return 0;
}

int tm_mte_copy_out(void *dst, const void *src, size_t len)
{
	return tco_copy(dst, src, len);
}

int tm_mte_copy_data_in(void *dst, const void *src, size_t len)
{
	return tco_copy(dst, src, len);
}

int tm_mte_zero(void *addr, size_t len)
{
	uintptr_t a = addr_bits(addr);
	uintptr_t end = a + len;
	int rc = check_range(addr, len);
	uint64_t tco;

	if (rc)
		return rc;
	tco = tco_enter();
	if (a < end && (a & (2 * GRANULE - 1))) {
		stzg(a);
		a += GRANULE;
	}
	for (; a + 2 * GRANULE <= end; a += 2 * GRANULE)
		stz2g(a);
	if (a < end)
		stzg(a);
	tco_leave(tco);
	return 0;
}

#else /* !(aarch64 && linux): callers compile everywhere, nothing works */

bool tm_mte_hw_available(void) { return false; }
int tm_mte_enable_thread(void) { return -ENOTSUP; }
int tm_mte_map(size_t len, void **out) { (void)len; (void)out; return -ENOTSUP; }
int tm_mte_unmap(void *addr, size_t len) { (void)addr; (void)len; return -ENOTSUP; }
void *tm_mte_with_tag(void *addr, uint8_t tag) { (void)tag; return addr; }
void *tm_mte_untag(void *addr) { return addr; }
uint8_t tm_mte_load_tag(const void *addr) { (void)addr; return 0; }
void *tm_mte_ptr_for(void *addr) { return addr; }
void *tm_mte_random_tag(void *addr, uint16_t exclude) { (void)exclude; return addr; }
int tm_mte_get_tags(const void *a, size_t l, uint8_t *p) { (void)a; (void)l; (void)p; return -ENOTSUP; }
int tm_mte_set_tags(void *a, size_t l, const uint8_t *p) { (void)a; (void)l; (void)p; return -ENOTSUP; }
int tm_mte_set_tag_range(void *a, size_t l, uint8_t t) { (void)a; (void)l; (void)t; return -ENOTSUP; }
int tm_mte_copy_in(void *d, const void *s, const uint8_t *p, size_t l) { (void)d; (void)s; (void)p; (void)l; return -ENOTSUP; }
int tm_mte_copy_out(void *d, const void *s, size_t l) { (void)d; (void)s; (void)l; return -ENOTSUP; }
int tm_mte_copy_data_in(void *d, const void *s, size_t l) { (void)d; (void)s; (void)l; return -ENOTSUP; }
int tm_mte_zero(void *a, size_t l) { (void)a; (void)l; return -ENOTSUP; }

#endif
