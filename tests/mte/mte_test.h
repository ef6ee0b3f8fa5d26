/*
 * mte_test.h - shared helpers for the real-MTE tests (tests/mte/): skip or
 * fail when the CPU lacks MTE, read/write PSTATE.TCO, and probe a single
 * access through a tagged pointer, catching the tag-check fault with
 * sigaction + sigsetjmp/siglongjmp so a test can assert that it happened.
 *
 * mte_test.c holds the functions; it is compiled into each test executable.
 * Built with +memtag (tests/mte/meson.build) for the TCO accesses.
 */
#ifndef TM_TEST_MTE_H
#define TM_TEST_MTE_H

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include "tests/test_skip.h"

#include "region/mte_ops.h"

#ifndef SEGV_MTESERR
#define SEGV_MTESERR 9
#endif

#define MT_GRANULE 16u
#define MT_TAG_MASK ((uintptr_t)0xf << 56)

/* cmocka group setup: enable MTE for the thread; without MTE the tests
 * skip (mt_require), unless TAGMEM_REQUIRE_MTE is set, then setup fails. */
int mt_group_setup(void **state);
/* Skip the current test when the CPU has no MTE. */
void mt_require(void);

static inline uint64_t mt_tco_get(void)
{
	uint64_t v;

	__asm__ volatile("mrs %0, tco" : "=r"(v) : : "memory");
	return v;
}

static inline void mt_tco_set(uint64_t v)
{
	__asm__ volatile("msr tco, %0" : : "r"(v) : "memory");
}

#define MT_TCO_BIT ((uint64_t)1 << 25)

static inline uintptr_t mt_bits(const void *p)
{
	return (uintptr_t)p & ~MT_TAG_MASK;
}

enum mt_access { MT_LOAD8, MT_STORE8, MT_LOAD64, MT_STORE64 };

/* Fault address (si_addr) of the last probe that faulted. */
extern void *volatile mt_fault_addr;

/*
 * Perform one access of kind k at p (a possibly tagged pointer). Returns 0
 * when it completed, otherwise the si_code of the SIGSEGV it raised (the
 * fault address is in mt_fault_addr). *val is the value loaded or stored.
 * TCO is put back as it was, whatever the signal delivery left behind.
 */
int mt_probe(void *p, enum mt_access k, uint64_t *val);
/* Assert that an access of kind k through p faults with SEGV_MTESERR and a
 * fault address (tag bits ignored) in [p, p+width). */
void mt_assert_tag_fault(void *p, enum mt_access k, size_t width);
void mt_assert_no_fault(void *p, enum mt_access k);

static inline uint8_t mt_nibble(const uint8_t *packed, size_t g)
{
	return (packed[g / 2] >> ((g % 2) * 4)) & 0xf;
}

/* Allocation tag (LDG) of each granule of [p, p+n*16) equals unpacked[i]. */
void mt_assert_tags(const void *p, size_t n, const uint8_t *unpacked);

#endif
