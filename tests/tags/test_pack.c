/*
 * test_pack.c - packed <-> unpacked conversion. Every implementation this
 * CPU can run (AVX2, SSE2, NEON, scalar) must give byte-identical output to
 * the scalar reference for every length and alignment, must refuse bytes
 * with bits above the 4-bit tag, and the public entry points must name the
 * offending granule.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "tagmem/tags.h"
#include "tags/simd.h"

#define MAXN 600   /* covers several AVX2 blocks plus every tail length */
#define ALIGNS 64  /* every misalignment of a cache line */

static void fill_tags(tm_rng *r, uint8_t *u, size_t n)
{
	for (size_t i = 0; i < n; i++)
		u[i] = (uint8_t)tm_rng_below(r, 16);
}

static void test_known_values(void **state)
{
	const uint8_t u[6] = { 0x1, 0x2, 0xf, 0x0, 0xa, 0xb };
	uint8_t p[3], back[6];

	(void)state;
	assert_int_equal(tm_tags_pack(p, u, 6, NULL), 0);
	/* low nibble = lower-address granule */
	assert_int_equal(p[0], 0x21);
	assert_int_equal(p[1], 0x0f);
	assert_int_equal(p[2], 0xba);
	tm_tags_unpack(back, p, 6);
	assert_memory_equal(back, u, 6);
	assert_int_equal(tm_tag_get(p, 0), 1);
	assert_int_equal(tm_tag_get(p, 5), 0xb);
	tm_tag_set(p, 3, 0x7);
	assert_int_equal(p[1], 0x7f);
	tm_tag_set(p, 2, 0x0);
	assert_int_equal(p[1], 0x70);
}

static void test_odd_count(void **state)
{
	const uint8_t u[3] = { 0x3, 0x4, 0x5 };
	uint8_t p[2] = { 0xee, 0xee }, back[3];

	(void)state;
	assert_int_equal(tm_tags_pack(p, u, 3, NULL), 0);
	assert_int_equal(p[0], 0x43);
	assert_int_equal(p[1], 0x05); /* unused high nibble is zero */
	tm_tags_unpack(back, p, 3);
	assert_memory_equal(back, u, 3);
}

/* Every implementation, every length 0..MAXN, every alignment of in and out. */
static void test_impls_match_reference(void **state)
{
	static uint8_t u[MAXN + ALIGNS], p_ref[MAXN], p[MAXN / 2 + ALIGNS + 1];
	static uint8_t u_ref[MAXN], u_out[MAXN + ALIGNS];
	size_t nimpl;
	const tm_tags_impl *impl = tm_tags_impl_list(&nimpl);
	tm_rng r;
	int tested = 0;

	(void)state;
	tm_rng_seed(&r, 1);
	for (size_t k = 0; k < nimpl; k++) {
		if (!impl[k].available())
			continue;
		tested++;
		for (size_t n = 0; n <= MAXN; n++) {
			size_t off = tm_rng_below(&r, ALIGNS);
			size_t pout = tm_rng_below(&r, ALIGNS);

			fill_tags(&r, u + off, n);
			assert_true(tm_tags_pack_scalar(p_ref, u + off, n));
			memset(p, 0x5a, sizeof(p));
			assert_true(impl[k].pack(p + pout, u + off, n));
			assert_memory_equal(p + pout, p_ref, (n + 1) / 2);
			/* nothing written past the output */
			assert_int_equal(p[pout + (n + 1) / 2], 0x5a);

			tm_tags_unpack_scalar(u_ref, p_ref, n);
			memset(u_out, 0xa5, sizeof(u_out));
			impl[k].unpack(u_out + off, p_ref, n);
			assert_memory_equal(u_out + off, u_ref, n);
			assert_memory_equal(u_out + off, u + off, n);
			assert_int_equal(u_out[off + n], 0xa5);
		}
	}
	assert_true(tested >= 2); /* at least one vector version besides scalar */
}

/* Random packed bytes (all 256 values) survive unpack then pack. */
static void test_roundtrip_all_byte_values(void **state)
{
	uint8_t p[256], u[512], back[256];

	(void)state;
	for (int i = 0; i < 256; i++)
		p[i] = (uint8_t)i;
	tm_tags_unpack(u, p, 512);
	for (int i = 0; i < 512; i++)
		assert_true(u[i] <= 0xF);
	assert_int_equal(tm_tags_pack(back, u, 512, NULL), 0);
	assert_memory_equal(back, p, 256);
}

/* A bad byte anywhere, in any implementation, is detected. */
static void test_impls_refuse_high_bits(void **state)
{
	static uint8_t u[MAXN], p[MAXN];
	size_t nimpl;
	const tm_tags_impl *impl = tm_tags_impl_list(&nimpl);
	tm_rng r;

	(void)state;
	tm_rng_seed(&r, 2);
	for (size_t k = 0; k < nimpl; k++) {
		if (!impl[k].available())
			continue;
		for (size_t n = 1; n <= 300; n++) {
			size_t bad = tm_rng_below(&r, n);

			fill_tags(&r, u, n);
			u[bad] = (uint8_t)(0x10 << tm_rng_below(&r, 4)) | u[bad];
			assert_false(impl[k].pack(p, u, n));
			u[bad] &= 0xF;
			assert_true(impl[k].pack(p, u, n));
		}
	}
}

/*
 * Outputs of several MiB take the streaming-store path on x86-64 (AVX2);
 * it must agree with the reference too, for every output misalignment.
 */
static void test_large_buffers(void **state)
{
	const size_t n = (9u << 20) + 38; /* > 8 MiB: packed output > 4 MiB */
	uint8_t *u = malloc(n + 64), *p = malloc(n / 2 + 64), *ref = malloc(n / 2 + 1);
	uint8_t *back = malloc(n + 64);
	size_t nimpl;
	const tm_tags_impl *impl = tm_tags_impl_list(&nimpl);
	tm_rng r;

	(void)state;
	assert_non_null(u);
	assert_non_null(p);
	assert_non_null(ref);
	assert_non_null(back);
	tm_rng_seed(&r, 3);
	fill_tags(&r, u, n + 64);
	for (size_t k = 0; k < nimpl; k++) {
		if (!impl[k].available())
			continue;
		for (size_t off = 0; off < 4; off++) {
			size_t po = off * 13 % 64, uo = off * 2;

			assert_true(tm_tags_pack_scalar(ref, u + uo, n));
			assert_true(impl[k].pack(p + po, u + uo, n));
			assert_memory_equal(p + po, ref, n / 2);
			memset(back, 0, n + 64);
			impl[k].unpack(back + uo + off % 2, ref, n);
			assert_memory_equal(back + uo + off % 2, u + uo, n);
			assert_int_equal(back[uo + off % 2 + n], 0);
		}
		/* a bad byte near the end is still caught on the streaming path */
		u[n - 100] |= 0x40;
		assert_false(impl[k].pack(p, u, n));
		u[n - 100] &= 0xF;
	}
	free(u);
	free(p);
	free(ref);
	free(back);
}

static void test_error_names_granule(void **state)
{
	uint8_t u[4096], p[2048];
	tm_error e;

	(void)state;
	memset(u, 0x3, sizeof(u));
	u[3001] = 0x13;
	u[3500] = 0xff;
	tm_error_clear(&e);
	assert_int_equal(tm_tags_pack(p, u, sizeof(u), &e), -EINVAL);
	assert_int_equal(e.code, -EINVAL);
	/* the first offending granule is the one named */
	assert_non_null(strstr(e.msg, "granule 3001"));
	assert_non_null(strstr(e.msg, "0x13"));
	tm_error_clear(&e);
	assert_int_equal(tm_tags_pack_ref(p, u, sizeof(u), &e), -EINVAL);
	assert_non_null(strstr(e.msg, "granule 3001"));
	/* err may be NULL */
	assert_int_equal(tm_tags_pack(p, u, sizeof(u), NULL), -EINVAL);
}

static void test_simd_name(void **state)
{
	const char *name = tm_tags_simd_name();

	(void)state;
	assert_non_null(name);
#if defined(__x86_64__)
	assert_true(strcmp(name, "avx2") == 0 || strcmp(name, "sse2") == 0);
	assert_int_equal(strcmp(name, "avx2") == 0, __builtin_cpu_supports("avx2") != 0);
#elif defined(__aarch64__)
	assert_string_equal(name, "neon");
#endif
	printf("# dispatch chose %s\n", name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_values),
		cmocka_unit_test(test_odd_count),
		cmocka_unit_test(test_impls_match_reference),
		cmocka_unit_test(test_roundtrip_all_byte_values),
		cmocka_unit_test(test_impls_refuse_high_bits),
		cmocka_unit_test(test_large_buffers),
		cmocka_unit_test(test_error_names_granule),
		cmocka_unit_test(test_simd_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
