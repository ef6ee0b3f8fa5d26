/*
 * dispatch.c - the table of pack/unpack/zero-scan implementations and the
 * run-time choice among them.
 *
 * The choice is recomputed on every call from the CPU feature word the
 * compiler runtime fills before main() (__builtin_cpu_supports on x86-64);
 * that is one load and a test, cheaper than any cache of our own and free of
 * global state. On aarch64 NEON (Advanced SIMD) is architecturally mandatory,
 * so it is always chosen there.
 */
#include "tags/simd.h"

static bool always(void)
{
	return true;
}

#if defined(__x86_64__)
static bool have_avx2(void)
{
	return __builtin_cpu_supports("avx2");
}
#endif

static const tm_tags_impl impls[] = {
#if defined(__x86_64__)
	{ "avx2", have_avx2, tm_tags_pack_avx2, tm_tags_unpack_avx2, tm_mem_is_zero_avx2 },
	{ "sse2", always, tm_tags_pack_sse2, tm_tags_unpack_sse2, tm_mem_is_zero_sse2 },
#endif
#if defined(__aarch64__)
	{ "neon", always, tm_tags_pack_neon, tm_tags_unpack_neon, tm_mem_is_zero_neon },
#endif
	{ "scalar", always, tm_tags_pack_scalar, tm_tags_unpack_scalar, tm_mem_is_zero_scalar },
};

const tm_tags_impl *tm_tags_impl_list(size_t *n)
{
	*n = sizeof(impls) / sizeof(impls[0]);
	return impls;
}

const tm_tags_impl *tm_tags_impl_best(void)
{
	size_t n = sizeof(impls) / sizeof(impls[0]);

	for (size_t i = 0; i + 1 < n; i++)
		if (impls[i].available())
			return &impls[i];
	return &impls[n - 1];
}
