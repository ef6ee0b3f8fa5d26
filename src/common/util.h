/*
 * util.h - small internal helpers shared by all parts: clocks, a seeded
 * PRNG (tests, corpora and workloads must be reproducible), and bitmap ops.
 * Internal: not part of the public API.
 */
#ifndef TM_COMMON_UTIL_H
#define TM_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in nanoseconds. */
uint64_t tm_now_ns(void);

/* splitmix64-seeded xoshiro256** : fast, reproducible, not cryptographic. */
typedef struct tm_rng {
	uint64_t s[4];
} tm_rng;
void tm_rng_seed(tm_rng *r, uint64_t seed);
uint64_t tm_rng_next(tm_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t tm_rng_below(tm_rng *r, uint64_t n);
/* Uniform double in [0, 1). */
double tm_rng_unit(tm_rng *r);

static inline size_t tm_bitmap_words(size_t nbits) { return (nbits + 63) / 64; }
static inline bool tm_bit_test(const uint64_t *b, size_t i)
{
	return (b[i >> 6] >> (i & 63)) & 1;
}
static inline void tm_bit_set(uint64_t *b, size_t i)
{
	b[i >> 6] |= (uint64_t)1 << (i & 63);
}
static inline void tm_bit_clear(uint64_t *b, size_t i)
{
	b[i >> 6] &= ~((uint64_t)1 << (i & 63));
}
size_t tm_bitmap_count(const uint64_t *b, size_t nbits);

/* Parse "64M", "1G", "4096", "16k" into bytes; -EINVAL on junk/overflow. */
int tm_parse_size(const char *s, uint64_t *out);

/* write/read exactly n bytes, retrying on EINTR and short transfers.
 * Return 0, -errno, or -EPIPE/-ECONNRESET style codes; read returns
 * -ENODATA on EOF before n bytes. */
int tm_write_full(int fd, const void *buf, size_t n);
int tm_read_full(int fd, void *buf, size_t n);
int tm_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
int tm_pread_full(int fd, void *buf, size_t n, uint64_t off);

/* After a short vectored write of n bytes: drop the iovecs it finished and
 * trim the one it stopped in, so the caller can write the rest. */
struct iovec;
void tm_iov_advance(struct iovec **iov, int *cnt, size_t n);

#endif
