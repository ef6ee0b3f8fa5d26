/*
 * test_region_pages.c - the page, tag and byte calls of a region, run
 * against every backend (soft, mte, and the caller backends "file" and
 * "mem" of test_backend.h): round trips in both tag formats, the
 * "never tagged reads as zero" rule, zeroing, refusal of bad input before
 * anything is written, errors that name region/page/offset, and byte access
 * that keeps tags.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "region/backend_soft.h"
#include "region/mte_ops.h"
#include "region_test.h"

#ifndef SEGV_MTESERR
#define SEGV_MTESERR 9
#endif

#define PS 4096u
#define NP 80u /* more than one shadow chunk (64 pages) */
RT_FIXTURES(PS, NP);

static void test_write_read_page(void **state)
{
	RT_REGION(state, f, r);
	uint8_t data[PS], out[PS], tags[128], otags[128];
	tm_error err;
	tm_rng rng;

	tm_rng_seed(&rng, 1);
	for (size_t pg = 0; pg < NP; pg += 7) {
		rt_fill(&rng, data, sizeof(data));
		rt_fill(&rng, tags, sizeof(tags));
		assert_int_equal(tm_region_write_page(r, pg, data, tags, &err), 0);
		assert_true(tm_region_page_tagged(r, pg));
		assert_true(tm_region_page_present(r, pg));
		assert_int_equal(tm_region_read_page(r, pg, out, otags, &err), 0);
		assert_memory_equal(out, data, PS);
		assert_memory_equal(otags, tags, sizeof(tags));
		/* data only */
		memset(out, 0, PS);
		assert_int_equal(tm_region_read_page(r, pg, out, NULL, &err), 0);
		assert_memory_equal(out, data, PS);
	}
	/* Untagged placement: tags become zero and the page is untagged. */
	rt_fill(&rng, data, sizeof(data));
	assert_int_equal(tm_region_write_page(r, 7, data, NULL, &err), 0);
	assert_false(tm_region_page_tagged(r, 7));
	assert_int_equal(tm_region_read_page(r, 7, out, otags, &err), 0);
	assert_memory_equal(out, data, PS);
	for (size_t i = 0; i < sizeof(otags); i++)
		assert_int_equal(otags[i], 0);
}

/* tm_region_read_pages gives exactly what page-by-page reads give: across
 * a shadow-chunk boundary (64 pages), with never-tagged chunks, untagged
 * placements and zeroed pages mixed in, at every start and length tried,
 * data and tags together, data alone and tags alone; and it refuses a
 * range that leaves the region, naming it. */
static void test_read_pages_matches(void **state)
{
	RT_REGION(state, f, r);
	static uint8_t data[NP * PS], want[NP * PS], got[NP * PS];
	static uint8_t tags[NP * 128], wtags[NP * 128], gtags[NP * 128];
	const size_t starts[] = { 0, 1, 50, 63, 64, 70 };
	tm_error err;
	tm_rng rng;

	(void)f;
	tm_rng_seed(&rng, 9);
	rt_fill(&rng, data, sizeof(data));
	rt_fill(&rng, tags, sizeof(tags));
	for (size_t pg = 0; pg < NP; pg++) {
		if (pg >= 64 && pg < 68)
			continue;                      /* never written */
		if (pg % 5 == 0)
			assert_int_equal(tm_region_write_page(r, pg, data + pg * PS, NULL, &err), 0);
		else if (pg % 7 == 0)
			assert_int_equal(tm_region_zero_page(r, pg, &err), 0);
		else
			assert_int_equal(tm_region_write_page(r, pg, data + pg * PS,
							      tags + pg * 128, &err), 0);
	}
	for (size_t pg = 0; pg < NP; pg++)
		assert_int_equal(tm_region_read_page(r, pg, want + pg * PS, wtags + pg * 128, &err), 0);
	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		for (size_t n = 1; starts[s] + n <= NP; n += 9) {
			size_t pg = starts[s];

			memset(got, 0xEE, n * PS);
			memset(gtags, 0xEE, n * 128);
			assert_int_equal(tm_region_read_pages(r, pg, n, got, gtags, &err), 0);
			assert_memory_equal(got, want + pg * PS, n * PS);
			assert_memory_equal(gtags, wtags + pg * 128, n * 128);
			memset(got, 0xEE, n * PS);
			assert_int_equal(tm_region_read_pages(r, pg, n, got, NULL, &err), 0);
			assert_memory_equal(got, want + pg * PS, n * PS);
			memset(gtags, 0xEE, n * 128);
			assert_int_equal(tm_region_read_pages(r, pg, n, NULL, gtags, &err), 0);
			assert_memory_equal(gtags, wtags + pg * 128, n * 128);
		}
	}
	assert_int_equal(tm_region_read_pages(r, NP - 2, 3, got, gtags, &err), -ERANGE);
	assert_non_null(strstr(tm_error_msg(&err), "page 80"));
}

static void test_never_tagged_reads_zero(void **state)
{
	RT_REGION(state, f, r);
	uint8_t tags[128], un[256];
	tm_error err;

	for (size_t pg = 0; pg < NP; pg++) {
		memset(tags, 0xAA, sizeof(tags));
		memset(un, 0xAA, sizeof(un));
		assert_false(tm_region_page_tagged(r, pg));
		assert_int_equal(tm_region_get_tags(r, pg, TM_TAGS_PACKED, tags, &err), 0);
		assert_int_equal(tm_region_get_tags(r, pg, TM_TAGS_UNPACKED, un, &err), 0);
		for (size_t i = 0; i < sizeof(tags); i++)
			assert_int_equal(tags[i], 0);
		for (size_t i = 0; i < sizeof(un); i++)
			assert_int_equal(un[i], 0);
	}
	if (f->kind == RT_SOFT)
		assert_int_equal(tm_shadow_bytes(tm_soft_shadow(r)), 0);
}

/* Soft: nothing is allocated for never-tagged pages, one chunk for a tagged
 * one, and untagging all of a chunk's pages by discard frees it. */
static void test_soft_shadow_lazy(void **state)
{
	RT_REGION(state, f, r);
	uint8_t tags[128];
	tm_error err;

	memset(tags, 0x31, sizeof(tags));
	assert_int_equal(tm_shadow_bytes(tm_soft_shadow(r)), 0);
	assert_int_equal(tm_region_set_tags(r, 70, TM_TAGS_PACKED, tags, &err), 0);
	assert_int_equal(tm_shadow_bytes(tm_soft_shadow(r)), TM_SHADOW_CHUNK_PAGES * 128);
	assert_int_equal(tm_region_set_tags(r, 3, TM_TAGS_PACKED, tags, &err), 0);
	assert_int_equal(tm_shadow_bytes(tm_soft_shadow(r)), 2 * TM_SHADOW_CHUNK_PAGES * 128);
	/* The last, partial chunk (pages 64..79) is freed by discarding it. */
	assert_int_equal(tm_region_discard(r, 64, NP - 64, &err), 0);
	assert_int_equal(tm_shadow_bytes(tm_soft_shadow(r)), TM_SHADOW_CHUNK_PAGES * 128);
	assert_false(tm_region_page_tagged(r, 70));
	/* Zeroing untags and leaves zero tags behind. */
	assert_int_equal(tm_region_zero_page(r, 3, &err), 0);
	assert_false(tm_region_page_tagged(r, 3));
	assert_int_equal(tm_region_get_tags(r, 3, TM_TAGS_PACKED, tags, &err), 0);
	for (size_t i = 0; i < sizeof(tags); i++)
		assert_int_equal(tags[i], 0);
}

static void test_tags_packed_unpacked(void **state)
{
	RT_REGION(state, f, r);
	uint8_t un[256], un2[256], packed[128];
	tm_error err;

	for (size_t g = 0; g < 256; g++)
		un[g] = (uint8_t)((g * 7 + 3) & 0xF);
	assert_int_equal(tm_region_set_tags(r, 5, TM_TAGS_UNPACKED, un, &err), 0);
	assert_true(tm_region_page_tagged(r, 5));
	assert_int_equal(tm_region_get_tags(r, 5, TM_TAGS_PACKED, packed, &err), 0);
	/* low nibble = lower-address granule */
	for (size_t g = 0; g < 256; g++)
		assert_int_equal((packed[g / 2] >> ((g & 1) * 4)) & 0xF, un[g]);
	assert_int_equal(tm_region_get_tags(r, 5, TM_TAGS_UNPACKED, un2, &err), 0);
	assert_memory_equal(un, un2, 256);
	/* packed in, unpacked out */
	for (size_t i = 0; i < 128; i++)
		packed[i] = (uint8_t)(0x10 * ((i + 1) & 0xF) + (i & 0xF));
	assert_int_equal(tm_region_set_tags(r, 6, TM_TAGS_PACKED, packed, &err), 0);
	assert_int_equal(tm_region_get_tags(r, 6, TM_TAGS_UNPACKED, un2, &err), 0);
	for (size_t g = 0; g < 256; g++)
		assert_int_equal(un2[g], (packed[g / 2] >> ((g & 1) * 4)) & 0xF);
}

static void test_unpacked_refuses_high_bits(void **state)
{
	RT_REGION(state, f, r);
	uint8_t un[256], before[128], after[128];
	tm_error err;

	for (size_t g = 0; g < 256; g++)
		un[g] = 0x9;
	assert_int_equal(tm_region_set_tags(r, 2, TM_TAGS_UNPACKED, un, &err), 0);
	assert_int_equal(tm_region_get_tags(r, 2, TM_TAGS_PACKED, before, &err), 0);
	for (size_t g = 0; g < 256; g++)
		un[g] = 0x3;
	un[201] = 0x13; /* bits above the tag */
	tm_error_clear(&err);
	assert_int_equal(tm_region_set_tags(r, 2, TM_TAGS_UNPACKED, un, &err), -EINVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_non_null(strstr(err.msg, "'test'"));
	assert_non_null(strstr(err.msg, "page 2"));
	assert_non_null(strstr(err.msg, "granule 201"));
	assert_non_null(strstr(err.msg, "0x2c90")); /* 2*4096 + 201*16 */
	/* nothing was written */
	assert_int_equal(tm_region_get_tags(r, 2, TM_TAGS_PACKED, after, &err), 0);
	assert_memory_equal(before, after, 128);
	/* an untagged page stays untagged */
	assert_int_equal(tm_region_set_tags(r, 9, TM_TAGS_UNPACKED, un, &err), -EINVAL);
	assert_false(tm_region_page_tagged(r, 9));
}

static void test_set_tag_range(void **state)
{
	RT_REGION(state, f, r);
	uint8_t un[256];
	tm_error err;

	/* From the last 3 granules of page 10 through 2 granules of page 12. */
	size_t off = 10 * PS + PS - 48, len = 48 + PS + 32;

	assert_int_equal(tm_region_set_tag_range(r, off, len, 0xB, &err), 0);
	for (size_t pg = 10; pg <= 12; pg++)
		assert_true(tm_region_page_tagged(r, pg));
	assert_false(tm_region_page_tagged(r, 13));
	assert_int_equal(tm_region_get_tags(r, 10, TM_TAGS_UNPACKED, un, &err), 0);
	for (size_t g = 0; g < 256; g++)
		assert_int_equal(un[g], g >= 253 ? 0xB : 0);
	assert_int_equal(tm_region_get_tags(r, 11, TM_TAGS_UNPACKED, un, &err), 0);
	for (size_t g = 0; g < 256; g++)
		assert_int_equal(un[g], 0xB);
	assert_int_equal(tm_region_get_tags(r, 12, TM_TAGS_UNPACKED, un, &err), 0);
	for (size_t g = 0; g < 256; g++)
		assert_int_equal(un[g], g < 2 ? 0xB : 0);
	/* an odd granule inside a tagged page */
	assert_int_equal(tm_region_set_tag_range(r, 11 * PS + 16 * 5, 16, 0x4, &err), 0);
	assert_int_equal(tm_region_get_tags(r, 11, TM_TAGS_UNPACKED, un, &err), 0);
	assert_int_equal(un[4], 0xB);
	assert_int_equal(un[5], 0x4);
	assert_int_equal(un[6], 0xB);

	/* refusals: alignment, tag bits, range */
	tm_error_clear(&err);
	assert_int_equal(tm_region_set_tag_range(r, 8, 16, 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "granule"));
	assert_int_equal(tm_region_set_tag_range(r, 16, 24, 1, &err), -EINVAL);
	assert_int_equal(tm_region_set_tag_range(r, 0, 16, 0x10, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "0x10"));
	assert_int_equal(tm_region_set_tag_range(r, NP * PS - 16, 32, 1, &err), -ERANGE);
	assert_false(tm_region_page_tagged(r, 0));
}

static void test_zero_page(void **state)
{
	RT_REGION(state, f, r);
	uint8_t data[PS], tags[128];
	tm_error err;
	tm_rng rng;

	tm_rng_seed(&rng, 2);
	rt_fill(&rng, data, PS);
	memset(tags, 0x77, sizeof(tags));
	assert_int_equal(tm_region_write_page(r, 4, data, tags, &err), 0);
	assert_int_equal(tm_region_zero_page(r, 4, &err), 0);
	assert_false(tm_region_page_tagged(r, 4));
	assert_int_equal(tm_region_read_page(r, 4, data, tags, &err), 0);
	for (size_t i = 0; i < PS; i++)
		assert_int_equal(data[i], 0);
	for (size_t i = 0; i < sizeof(tags); i++)
		assert_int_equal(tags[i], 0);
}

static void test_errors_name_where(void **state)
{
	RT_REGION(state, f, r);
	uint8_t data[PS], tags[128];
	tm_error err;

	memset(data, 0, sizeof(data));
	tm_error_clear(&err);
	assert_int_equal(tm_region_read_page(r, NP, data, tags, &err), -ERANGE);
	assert_non_null(strstr(err.msg, "'test'"));
	assert_non_null(strstr(err.msg, "page 80"));
	assert_non_null(strstr(err.msg, "0x50000"));
	assert_int_equal(tm_region_write_page(r, (size_t)-1, data, tags, &err), -ERANGE);
	assert_int_equal(tm_region_zero_page(r, NP, &err), -ERANGE);
	assert_int_equal(tm_region_get_tags(r, NP, TM_TAGS_PACKED, tags, &err), -ERANGE);
	assert_int_equal(tm_region_set_tags(r, NP, TM_TAGS_PACKED, tags, &err), -ERANGE);
	assert_int_equal(tm_region_write(r, NP * PS - 2, data, 3, &err), -ERANGE);
	assert_non_null(strstr(err.msg, "0x4fffe"));
	assert_int_equal(tm_region_read(r, (size_t)-8, data, 16, &err), -ERANGE);
	assert_int_equal(tm_region_discard(r, NP - 1, 2, &err), -ERANGE);
	assert_false(tm_region_page_tagged(r, NP));
	assert_false(tm_region_page_present(r, NP));
	assert_null(tm_region_ptr(r, NP * PS));
	assert_int_equal(tm_region_set_tags(r, 0, (enum tm_tag_format)7, tags, &err), -EINVAL);
}

/* Byte access crosses pages, is not granule aligned, and keeps tags. */
static void test_bytes_keep_tags(void **state)
{
	RT_REGION(state, f, r);
	uint8_t buf[3 * PS], out[3 * PS], t1[128], t2[128];
	tm_error err;
	tm_rng rng;

	tm_rng_seed(&rng, 3);
	rt_fill(&rng, t1, sizeof(t1));
	assert_int_equal(tm_region_set_tags(r, 21, TM_TAGS_PACKED, t1, &err), 0);
	rt_fill(&rng, buf, sizeof(buf));
	/* 20*PS+4093 .. 22*PS+77: unaligned both ends, three pages */
	size_t off = 20 * PS + 4093, len = 2 * PS + 77 - 4093 + PS;
	assert_int_equal(tm_region_write(r, off, buf, len, &err), 0);
	assert_int_equal(tm_region_read(r, off, out, len, &err), 0);
	assert_memory_equal(buf, out, len);
	assert_int_equal(tm_region_get_tags(r, 21, TM_TAGS_PACKED, t2, &err), 0);
	assert_memory_equal(t1, t2, sizeof(t1));
	assert_true(tm_region_page_tagged(r, 21));
	assert_false(tm_region_page_tagged(r, 20));
	/* bytes around the span are untouched */
	assert_int_equal(tm_region_read(r, off - 3, out, 3, &err), 0);
	assert_int_equal(out[0] | out[1] | out[2], 0);
	assert_int_equal(tm_region_read(r, off + len, out, 5, &err), 0);
	assert_int_equal(out[0] | out[1] | out[2] | out[3] | out[4], 0);
	/* zero-length calls do nothing and succeed */
	assert_int_equal(tm_region_write(r, NP * PS, buf, 0, &err), 0);
	assert_int_equal(tm_region_read(r, 0, out, 0, &err), 0);
}

/* Stores through tm_region_ptr are what the API reads back; the direct
 * pointer exists exactly where the memory is plain (soft, mem). */
static void test_ptr_direct_access(void **state)
{
	RT_REGION(state, f, r);
	uint8_t out[32];
	tm_error err;

	if (f->kind == RT_SOFT || f->kind == RT_MEM) {
		assert_non_null(tm_region_direct(r, 0));
		assert_ptr_equal(tm_region_direct(r, 5 * PS + 3),
				 (uint8_t *)tm_region_direct(r, 0) + 5 * PS + 3);
		assert_null(tm_region_direct(r, NP * PS));
	} else {
		assert_null(tm_region_direct(r, 0));
	}
	if (f->kind == RT_FILE) { /* no pointer into another medium */
		assert_null(tm_region_ptr(r, 30 * PS));
		return;
	}

	/* mte: the pointer carries the granule's tag, so stores pass checks */
	assert_int_equal(tm_region_set_tag_range(r, 30 * PS, 64, 0x6, &err), 0);
	uint8_t *p = tm_region_ptr(r, 30 * PS + 16);
	assert_non_null(p);
	memset(p, 0x5A, 16);
	assert_int_equal(tm_region_read(r, 30 * PS + 8, out, 32, &err), 0);
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(out[i], i >= 8 && i < 24 ? 0x5A : 0);
}

static void test_accessors(void **state)
{
	RT_REGION(state, f, r);

	assert_string_equal(tm_region_name(r), "test");
	assert_int_equal(tm_region_size(r), NP * PS);
	assert_int_equal(tm_region_npages(r), NP);
	assert_int_equal(tm_region_geom(r)->page_size, PS);
	assert_int_equal(tm_region_backend(r), f->backend);
	assert_string_equal(tm_region_backend_name(r), rt_kind_name(f->kind));
	assert_string_equal(tm_backend_name(TM_BACKEND_SOFT), "soft");
	assert_string_equal(tm_backend_name(TM_BACKEND_MTE), "mte");
	assert_string_equal(tm_backend_name(TM_BACKEND_OTHER), "other");
	if (f->tb)
		assert_ptr_equal(tm_region_backend_ctx(r), f->tb);
}

/* Caller-provided memory: used in place and never unmapped by tagmem. */
static void test_caller_memory(void **state)
{
	rt_fixture *f = *state;
	rt_fixture g = *f;
	uint8_t *mem = NULL;
	uint8_t data[PS], out[PS], tags[128];
	tm_error err;

	if (!f->r) {
		tm_test_skip(rt_kind_name(f->kind), "%s backend: %s",
			     rt_kind_name(f->kind), f->why);
	}
	g.npages = 4;
	if (f->backend == TM_BACKEND_MTE) {
		void *p;
		assert_int_equal(tm_mte_map(4 * PS, &p), 0);
		mem = p;
	} else {
		mem = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(mem != MAP_FAILED);
	}
	assert_int_equal(rt_create(&g, "mine", mem, &err), 0);
	memset(data, 0xC3, sizeof(data));
	memset(tags, 0x21, sizeof(tags));
	assert_int_equal(tm_region_write_page(g.r, 1, data, tags, &err), 0);
	assert_int_equal(tm_region_read_page(g.r, 1, out, NULL, &err), 0);
	assert_memory_equal(out, data, PS);
	tm_region_destroy(g.r);
	/* still mapped, still holding what the region wrote */
	if (f->backend == TM_BACKEND_MTE) {
		assert_int_equal(tm_mte_copy_out(out, mem + PS, PS), 0);
		assert_memory_equal(out, data, PS);
		assert_int_equal(tm_mte_load_tag(mem + PS), 1);
		tm_mte_unmap(mem, 4 * PS);
	} else {
		assert_memory_equal(mem + PS, data, PS);
		munmap(mem, 4 * PS);
	}
	/* unaligned caller memory is refused, naming the region */
	g.r = NULL;
	tm_error_clear(&err);
	assert_int_equal(rt_create(&g, "crooked", (char *)mem + 16, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "'crooked'"));
	assert_null(g.r);
}

/* ---- mte: the tags the backend writes are the ones the CPU checks ---- */

static sigjmp_buf segv_jmp;
static volatile int segv_code;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	segv_code = si->si_code;
	siglongjmp(segv_jmp, 1);
}

/* Store through p; the si_code of the SIGSEGV it raised, or 0. */
static int store_code(volatile uint8_t *p)
{
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
	struct sigaction old;
	int code = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(segv_jmp, 1) == 0)
		*p = 0x42;
	else
		code = segv_code;
	sigaction(SIGSEGV, &old, NULL);
	return code;
}

static void test_mte_tag_checks(void **state)
{
	RT_REGION(state, f, r);
	uint8_t data[PS], tags[128], out[16];
	tm_error err;

	assert_int_equal(tm_mte_enable_thread(), 0);
	memset(data, 0x11, sizeof(data));
	for (size_t i = 0; i < sizeof(tags); i++)
		tags[i] = 0x97; /* granules alternate 7, 9 */
	assert_int_equal(tm_region_write_page(r, 3, data, tags, &err), 0);
	/* right logical tag (from tm_region_ptr): passes, both granules */
	uint8_t *p7 = tm_region_ptr(r, 3 * PS + 0);
	uint8_t *p9 = tm_region_ptr(r, 3 * PS + 16);
	assert_int_equal(store_code(p7), 0);
	assert_int_equal(store_code(p9), 0);
	assert_int_equal(tm_mte_load_tag(p9), 9);
	/* wrong logical tag: the granule's neighbour's tag faults */
	assert_int_equal(store_code(tm_mte_with_tag(p7 + 16, 7)), SEGV_MTESERR);
	assert_int_equal(store_code(tm_mte_with_tag(p9 - 16, 9)), SEGV_MTESERR);
	/* a tag change through the API takes effect for the old pointer */
	assert_int_equal(tm_region_set_tag_range(r, 3 * PS, 16, 0xC, &err), 0);
	assert_int_equal(store_code(p7), SEGV_MTESERR);
	assert_int_equal(store_code(tm_region_ptr(r, 3 * PS)), 0);
	/* API reads and zeroing never fault, whatever the tags */
	assert_int_equal(tm_region_read(r, 3 * PS + 8, out, 16, &err), 0);
	assert_int_equal(out[0], 0x11);
	assert_int_equal(out[8], 0x42);
	assert_int_equal(tm_region_zero_page(r, 3, &err), 0);
	assert_int_equal(store_code(tm_region_ptr(r, 3 * PS + 16)), 0);
	assert_int_equal(store_code(p9), SEGV_MTESERR); /* tag is 0 now */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		RT_ALL(test_write_read_page),
		RT_ALL(test_read_pages_matches),
		RT_ALL(test_never_tagged_reads_zero),
		RT_TEST("soft", test_soft_shadow_lazy, &rt_soft),
		RT_ALL(test_tags_packed_unpacked),
		RT_ALL(test_unpacked_refuses_high_bits),
		RT_ALL(test_set_tag_range),
		RT_ALL(test_zero_page),
		RT_ALL(test_errors_name_where),
		RT_ALL(test_bytes_keep_tags),
		RT_ALL(test_ptr_direct_access),
		RT_ALL(test_accessors),
		RT_TEST("soft", test_caller_memory, &rt_soft),
		RT_TEST("mte", test_caller_memory, &rt_mte),
		RT_TEST("mte", test_mte_tag_checks, &rt_mte),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
