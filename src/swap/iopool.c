/*
 * iopool.c - the pager's folio-sized I/O buffers: a few, allocated when the
 * pager is created (never per page), handed out under a mutex.
 */
#include "swap/swap_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#define POOL_BUFS 4u
#define FOLIO_MAX (1u << TM_SWAP_MAX_ORDER)

/*
 * The data buffers come first, each 2 MiB aligned inside one mapping that
 * asks for transparent huge pages, then the tag and tag-record buffers. Copies to and from
 * a folio buffer then touch one huge page instead of 512 small ones: under
 * virtualization the TLB misses of small pages made pwrite's copy several
 * times slower.
 */
int tm_iopool_init(struct tm_iopool *pl, size_t ps, size_t packed)
{
	const size_t huge = 2u << 20;
	size_t dlen = ((size_t)FOLIO_MAX * ps + huge - 1) & ~(huge - 1);
	size_t tlen = (size_t)FOLIO_MAX * packed;
	uint8_t *base;

	pl->map_len = POOL_BUFS * (dlen + 2 * tlen) + huge;
	pl->map = mmap(NULL, pl->map_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (pl->map == MAP_FAILED) {
		pl->map = NULL;
		return -ENOMEM;
	}
	base = (uint8_t *)(((uintptr_t)pl->map + huge - 1) & ~(uintptr_t)(huge - 1));
	madvise(base, POOL_BUFS * dlen, MADV_HUGEPAGE);  /* a hint: may fail */
	pl->bufs = calloc(POOL_BUFS, sizeof(*pl->bufs));
	if (!pl->bufs)
		return -ENOMEM;
	for (unsigned i = 0; i < POOL_BUFS; i++) {
		struct tm_iobuf *b = &pl->bufs[i];

		b->data = base + i * dlen;
		b->tags = base + POOL_BUFS * dlen + 2 * i * tlen;
		b->recs = b->tags + tlen;
		b->next = pl->free;
		pl->free = b;
	}
	pthread_mutex_init(&pl->lock, NULL);
	pthread_cond_init(&pl->cv, NULL);
	return 0;
}

void tm_iopool_fini(struct tm_iopool *pl)
{
	if (pl->bufs) {
		pthread_mutex_destroy(&pl->lock);
		pthread_cond_destroy(&pl->cv);
	}
	free(pl->bufs);
	if (pl->map)
		munmap(pl->map, pl->map_len);
}

struct tm_iobuf *tm_iopool_get(struct tm_iopool *pl)
{
	struct tm_iobuf *b;

	pthread_mutex_lock(&pl->lock);
	while (!pl->free)
		pthread_cond_wait(&pl->cv, &pl->lock);
	b = pl->free;
	pl->free = b->next;
	pthread_mutex_unlock(&pl->lock);
	return b;
}

void tm_iopool_put(struct tm_iopool *pl, struct tm_iobuf *b)
{
	pthread_mutex_lock(&pl->lock);
	b->next = pl->free;
	pl->free = b;
	pthread_cond_signal(&pl->cv);
	pthread_mutex_unlock(&pl->lock);
}

