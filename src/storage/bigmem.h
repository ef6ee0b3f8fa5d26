/*
 * bigmem.h - zeroed allocations for the simulator's large flat arrays,
 * backed by transparent huge pages where the kernel allows (madvise).
 * The arrays are accessed at random; with 4 KiB pages nearly every access
 * is also a TLB miss, which on a virtual machine can cost microseconds
 * (measured: 4 us vs 16 ns per random read of a 30 MB array on the
 * development VM). Internal to src/storage.
 */
#ifndef TM_STORAGE_BIGMEM_H
#define TM_STORAGE_BIGMEM_H

#include <stddef.h>

/* n * size zeroed bytes, or NULL (also on overflow). */
void *tm_ssi_big_calloc(size_t n, size_t size);
void tm_ssi_big_free(void *p, size_t n, size_t size);

#endif
