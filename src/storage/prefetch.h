/*
 * prefetch.h - a cache prefetch the compiler keeps. The simulator's tables
 * are far larger than the caches and their accesses are random, so most of
 * its time is spent waiting for memory unless the next events' lines are
 * fetched ahead. GCC 12 deletes __builtin_prefetch when the prefetched
 * address is a value loaded only for it (measured here: the prefetches of
 * the generator's objects, three lines in an inline helper, were not in the
 * object code), so on the two architectures the project builds for the
 * instruction is written as volatile asm, which the optimiser never removes.
 * Internal to src/storage.
 */
#ifndef TM_STORAGE_PREFETCH_H
#define TM_STORAGE_PREFETCH_H

static inline void tm_ssi_prefetch(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#elif defined(__aarch64__)
	__asm__ volatile("prfm pldl1keep, %0" : : "Q"(*(const char *)p));
#else
	__builtin_prefetch(p);
#endif
}

#endif
