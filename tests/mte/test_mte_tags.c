/*
 * test_mte_tags.c - reading and writing allocation tags with the raw MTE
 * primitives (src/region/mte_ops.c) on real PROT_MTE memory: LDG, STG/ST2G
 * round trips over odd lengths and offsets, single-tag ranges whose ends are
 * not pair aligned (the STG/ST2G split), the packed nibble order, and IRG.
 * Every check compares against an independent per-granule LDG or against
 * the model array the test wrote, never against the code under test alone.
 */
#include "mte_test.h"

#include <sys/prctl.h>
#include <unistd.h>

#include "common/util.h"

#define NPAGES 4

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* Model of the granules' tags of a mapping, for comparison. */
typedef struct area {
	uint8_t *base;
	size_t len, n;
	uint8_t *model; /* unpacked, one per granule */
} area;

static void area_open(area *a, uint64_t seed)
{
	void *p = NULL;
	tm_rng r;

	a->len = NPAGES * page_size();
	a->n = a->len / MT_GRANULE;
	assert_int_equal(tm_mte_map(a->len, &p), 0);
	a->base = p;
	a->model = calloc(a->n, 1);
	assert_non_null(a->model);
	/* Background: random tags everywhere, so "left untouched" is testable. */
	tm_rng_seed(&r, seed);
	for (size_t g = 0; g < a->n; g++) {
		a->model[g] = (uint8_t)tm_rng_below(&r, 16);
		assert_int_equal(tm_mte_set_tag_range(a->base + g * MT_GRANULE,
						      MT_GRANULE, a->model[g]), 0);
	}
}

static void area_close(area *a)
{
	mt_assert_tags(a->base, a->n, a->model);
	assert_int_equal(tm_mte_unmap(a->base, a->len), 0);
	free(a->model);
}

static void t_fresh_mapping_reads_zero(void **state)
{
	void *p = NULL;
	size_t len = 2 * page_size(), n = len / MT_GRANULE;
	uint8_t *packed = malloc(n / 2);

	(void)state;
	mt_require();
	assert_non_null(packed);
	assert_int_equal(tm_mte_map(len, &p), 0);
	memset(packed, 0xff, n / 2);
	assert_int_equal(tm_mte_get_tags(p, len, packed), 0);
	for (size_t i = 0; i < n / 2; i++)
		assert_int_equal(packed[i], 0);
	assert_int_equal(tm_mte_unmap(p, len), 0);
	free(packed);
}

static void t_enable_thread_sets_prctl(void **state)
{
	long ctrl;

	(void)state;
	mt_require();
	assert_int_equal(tm_mte_enable_thread(), 0); /* idempotent */
	ctrl = prctl(56 /* PR_GET_TAGGED_ADDR_CTRL */, 0, 0, 0, 0);
	assert_true(ctrl >= 0);
	assert_int_equal(ctrl & 1, 1);                 /* PR_TAGGED_ADDR_ENABLE */
	assert_int_equal((ctrl >> 1) & 3, 1);          /* PR_MTE_TCF_SYNC */
	assert_int_equal((ctrl >> 3) & 0xffff, 0xfffe); /* IRG include mask */
}

/* Known pattern: granule g gets tag g%16; check the packed nibble order
 * (low nibble = lower address) byte by byte. */
static void t_packed_nibble_order(void **state)
{
	void *p = NULL;
	size_t len = page_size(), n = len / MT_GRANULE;
	uint8_t *in = malloc(n / 2), *out = malloc(n / 2);

	(void)state;
	mt_require();
	assert_non_null(in);
	assert_non_null(out);
	assert_int_equal(tm_mte_map(len, &p), 0);
	for (size_t g = 0; g < n; g++)
		assert_int_equal(tm_mte_set_tag_range((char *)p + g * MT_GRANULE,
						      MT_GRANULE, (uint8_t)(g % 16)), 0);
	assert_int_equal(tm_mte_get_tags(p, len, out), 0);
	for (size_t b = 0; b < n / 2; b++)
		assert_int_equal(out[b], (uint8_t)(((2 * b) % 16) | ((2 * b + 1) % 16) << 4));
	/* And the other way: bytes 0x10, 0x32, ... give granule tags 0,1,2,3... */
	for (size_t b = 0; b < n / 2; b++)
		in[b] = (uint8_t)((15 - (2 * b) % 16) | (15 - (2 * b + 1) % 16) << 4);
	assert_int_equal(tm_mte_set_tags(p, len, in), 0);
	for (size_t g = 0; g < n; g++)
		assert_int_equal(tm_mte_load_tag((char *)p + g * MT_GRANULE), 15 - g % 16);
	assert_int_equal(tm_mte_unmap(p, len), 0);
	free(in);
	free(out);
}

/* Random tags over random odd/even lengths at random granule offsets,
 * spanning page boundaries; data must be untouched, neighbours too. */
static void t_roundtrip_random(void **state)
{
	area a;
	tm_rng r;
	uint8_t *in, *out, *data;

	(void)state;
	mt_require();
	area_open(&a, 1);
	tm_rng_seed(&r, 42);
	in = malloc(a.n / 2 + 1);
	out = malloc(a.n / 2 + 1);
	data = malloc(a.len);
	assert_non_null(in);
	assert_non_null(out);
	assert_non_null(data);
	for (size_t i = 0; i < a.len; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(tm_mte_copy_data_in(a.base, data, a.len), 0);

	for (int trial = 0; trial < 200; trial++) {
		size_t off = tm_rng_below(&r, a.n);
		size_t cnt = 1 + tm_rng_below(&r, a.n - off);
		size_t nb;

		if (trial % 2 == 0 && cnt % 2 == 0)
			cnt--; /* half the trials end on an odd count */
		nb = (cnt + 1) / 2;
		for (size_t b = 0; b < nb; b++)
			in[b] = (uint8_t)tm_rng_next(&r);
		assert_int_equal(tm_mte_set_tags(a.base + off * MT_GRANULE,
						 cnt * MT_GRANULE, in), 0);
		for (size_t g = 0; g < cnt; g++)
			a.model[off + g] = mt_nibble(in, g);
		mt_assert_tags(a.base, a.n, a.model);

		memset(out, 0xee, nb + 1);
		assert_int_equal(tm_mte_get_tags(a.base + off * MT_GRANULE,
						 cnt * MT_GRANULE, out), 0);
		for (size_t g = 0; g < cnt; g++)
			assert_int_equal(mt_nibble(out, g), a.model[off + g]);
		if (cnt & 1) /* odd count: last high nibble written as 0 */
			assert_int_equal(out[nb - 1] >> 4, 0);
		assert_int_equal(out[nb], 0xee); /* no byte past (cnt+1)/2 */
	}
	/* Tags only: the data is what we wrote before any tag change. */
	{
		uint8_t *back = malloc(a.len);

		assert_non_null(back);
		assert_int_equal(tm_mte_copy_out(back, a.base, a.len), 0);
		assert_memory_equal(back, data, a.len);
		free(back);
	}
	area_close(&a);
	free(in);
	free(out);
	free(data);
}

/* set_tags with an odd count ignores the high nibble of its last byte. */
static void t_odd_count_ignores_high_nibble(void **state)
{
	area a;
	uint8_t in[2] = { 0x73, 0xf5 }; /* granules 3, 7, 5; 0xf ignored */

	(void)state;
	mt_require();
	area_open(&a, 2);
	assert_int_equal(tm_mte_set_tags(a.base + 5 * MT_GRANULE, 3 * MT_GRANULE, in), 0);
	a.model[5] = 3;
	a.model[6] = 7;
	a.model[7] = 5;
	area_close(&a); /* granule 8 keeps its background tag */
}

/* Every start parity x every end parity x lengths 1..9 granules, also
 * across a page boundary: the ST2G pairs and the STG ends must tile the
 * range exactly. */
static void t_tag_range_unaligned_ends(void **state)
{
	area a;
	size_t pg = page_size() / MT_GRANULE;
	size_t starts[] = { 0, 1, 2, 3, pg - 2, pg - 1, pg, pg + 1 };
	uint8_t tag = 1;

	(void)state;
	mt_require();
	area_open(&a, 3);
	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		for (size_t cnt = 1; cnt <= 9; cnt++) {
			size_t g0 = starts[s];

			tag = (uint8_t)((tag + 5) % 16);
			assert_int_equal(tm_mte_set_tag_range(a.base + g0 * MT_GRANULE,
							      cnt * MT_GRANULE, tag), 0);
			for (size_t g = 0; g < cnt; g++)
				a.model[g0 + g] = tag;
			mt_assert_tags(a.base, a.n, a.model);
		}
	}
	/* A long range from an odd granule to an odd granule, across pages. */
	assert_int_equal(tm_mte_set_tag_range(a.base + 3 * MT_GRANULE,
					      a.len - 6 * MT_GRANULE, 0xc), 0);
	for (size_t g = 3; g < a.n - 3; g++)
		a.model[g] = 0xc;
	area_close(&a);
}

static void t_pointer_helpers(void **state)
{
	void *p = NULL;
	char *q;

	(void)state;
	mt_require();
	assert_int_equal(tm_mte_map(page_size(), &p), 0);
	q = p;
	assert_int_equal(tm_mte_set_tag_range(q + 32, 16, 0x9), 0);
	assert_int_equal(tm_mte_load_tag(q + 32), 0x9);
	assert_int_equal(tm_mte_load_tag(q + 47), 0x9); /* any byte of the granule */
	assert_int_equal(tm_mte_load_tag(q + 48), 0x0);
	/* load_tag ignores the pointer's own logical tag */
	assert_int_equal(tm_mte_load_tag(tm_mte_with_tag(q + 32, 0x4)), 0x9);
	/* ptr_for: same address bits, logical tag = allocation tag */
	assert_ptr_equal(tm_mte_ptr_for(q + 40), tm_mte_with_tag(q + 40, 0x9));
	assert_ptr_equal(tm_mte_ptr_for(tm_mte_with_tag(q + 40, 0x2)),
			 tm_mte_with_tag(q + 40, 0x9));
	assert_int_equal(((uintptr_t)tm_mte_with_tag(q, 0xb) >> 56) & 0xf, 0xb);
	assert_ptr_equal(tm_mte_untag(tm_mte_with_tag(q, 0xb)), q);
	assert_ptr_equal(tm_mte_with_tag(tm_mte_with_tag(q, 0xb), 0x1),
			 tm_mte_with_tag(q, 0x1));
	assert_int_equal(tm_mte_unmap(p, page_size()), 0);
}

/* IRG: never a tag excluded by the argument, never 0 (prctl mask 0xfffe),
 * address bits untouched, and every allowed tag shows up. */
static void t_irg_respects_masks(void **state)
{
	void *p = NULL;
	uint16_t excl = (1u << 3) | (1u << 7) | (1u << 12);
	unsigned seen = 0;

	(void)state;
	mt_require();
	assert_int_equal(tm_mte_map(page_size(), &p), 0);
	for (int i = 0; i < 2000; i++) {
		void *t = tm_mte_random_tag((char *)p + 64, excl);
		unsigned tag = ((uintptr_t)t >> 56) & 0xf;

		assert_ptr_equal(tm_mte_untag(t), (char *)p + 64);
		assert_int_not_equal(tag, 0);
		assert_false(excl & (1u << tag));
		seen |= 1u << tag;
	}
	assert_int_equal(seen, 0xfffe & ~excl);
	/* Excluding all of 1..15 leaves nothing: IRG yields tag 0. */
	assert_int_equal(((uintptr_t)tm_mte_random_tag(p, 0xfffe) >> 56) & 0xf, 0);
	assert_int_equal(tm_mte_unmap(p, page_size()), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_fresh_mapping_reads_zero),
		cmocka_unit_test(t_enable_thread_sets_prctl),
		cmocka_unit_test(t_packed_nibble_order),
		cmocka_unit_test(t_roundtrip_random),
		cmocka_unit_test(t_odd_count_ignores_high_nibble),
		cmocka_unit_test(t_tag_range_unaligned_ends),
		cmocka_unit_test(t_pointer_helpers),
		cmocka_unit_test(t_irg_respects_masks),
	};

	return cmocka_run_group_tests_name("mte_tags", tests, mt_group_setup, NULL);
}
