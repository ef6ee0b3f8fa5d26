/*
 * bigmem.c - huge-page backed zeroed allocations for the simulator's flat
 * arrays (see bigmem.h for why). Small arrays use calloc: a huge page per
 * tiny array would waste memory.
 */
#include "storage/bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define BIG (1u << 20)

/* Under AddressSanitizer every array comes from calloc, so that reading
 * past the end of one is reported instead of landing in a neighbouring
 * mapping. */
#if defined(__SANITIZE_ADDRESS__)
#define SS_ASAN 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SS_ASAN 0
#endif
#endif
#ifndef SS_ASAN
#define SS_ASAN 0
#endif

void *tm_ssi_big_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	size_t len = n * size;

	if (len < BIG || SS_ASAN)
		return calloc(n ? n : 1, size ? size : 1);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, len, MADV_HUGEPAGE); /* a hint: fine if refused */
	return p;
}

void tm_ssi_big_free(void *p, size_t n, size_t size)
{
	size_t len = n * size;

	if (!p)
		return;
	if (len < BIG || SS_ASAN)
		free(p);
	else
		munmap(p, len);
}
