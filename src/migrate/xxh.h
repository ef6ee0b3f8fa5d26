/*
 * xxh.h - XXH3 for the migration's checksums and digest, through
 * libxxhash's run-time x86 dispatch where the library has it. Debian's
 * libxxhash is built for baseline x86-64, so its plain XXH3 entry points run
 * the SSE2 kernel (8.5 GB/s on this machine's Xeon); the *_dispatch entry
 * points of the same library pick AVX2 or AVX-512 at run time (43 GB/s) and
 * compute the same values. Elsewhere (arm64: NEON is the baseline) the plain
 * calls are the fast ones. Internal.
 */
#ifndef TM_MIGRATE_XXH_H
#define TM_MIGRATE_XXH_H

#define XXH_STATIC_LINKING_ONLY  /* XXH3_state_t on the stack */
#include <xxhash.h>

#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#define TM_XXH_DISPATCH 1
#endif
#endif

#ifdef TM_XXH_DISPATCH
#define tm_xxh3_64_update  XXH3_64bits_update_dispatch
#define tm_xxh3_128_update XXH3_128bits_update_dispatch
#else
#define tm_xxh3_64_update  XXH3_64bits_update
#define tm_xxh3_128_update XXH3_128bits_update
#endif

#endif
