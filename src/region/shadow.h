/*
 * shadow.h - the soft backend's shadow tag storage: a table of chunk
 * pointers, each chunk holding the packed tags of TM_SHADOW_CHUNK_PAGES
 * consecutive pages. A chunk is allocated the first time one of its pages is
 * tagged and installed with a compare-and-swap, so pages that are never
 * tagged cost nothing beyond one pointer per chunk and no lock is taken on
 * the hot path.
 */
#ifndef TM_REGION_SHADOW_H
#define TM_REGION_SHADOW_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define TM_SHADOW_CHUNK_PAGES 64u

typedef struct tm_shadow {
	_Atomic(uint8_t *) *chunks;
	size_t nchunks;
	size_t npages;
	size_t page_bytes;          /* packed tag bytes per page */
	atomic_size_t live_chunks;  /* allocated now, for tests and stats */
} tm_shadow;

/* page_bytes 0 (no metadata): the table stays empty. */
int tm_shadow_init(tm_shadow *s, size_t npages, size_t page_bytes);
void tm_shadow_fini(tm_shadow *s);

/* The page's tag slot, or NULL when its chunk was never allocated. */
static inline uint8_t *tm_shadow_slot(tm_shadow *s, size_t pg)
{
	uint8_t *c;

	if (!s->chunks)
		return NULL;
	c = atomic_load_explicit(&s->chunks[pg / TM_SHADOW_CHUNK_PAGES],
				 memory_order_acquire);

	return c ? c + (pg % TM_SHADOW_CHUNK_PAGES) * s->page_bytes : NULL;
}

/* Copy the slots of pages [pg, pg+n) to out (n * page_bytes); pages of a
 * chunk never allocated read as zeros. One copy per chunk: a folio's tags
 * stream out instead of 128 bytes at a time between page copies. */
void tm_shadow_read(const tm_shadow *s, size_t pg, size_t n, uint8_t *out);

/* The page's slot, allocating its chunk (zeroed) when needed; NULL: ENOMEM. */
uint8_t *tm_shadow_slot_alloc(tm_shadow *s, size_t pg);

/* Zero the slots of pages [pg, pg+n) and free chunks the range covers
 * entirely. Must not race with access to those pages. */
void tm_shadow_drop(tm_shadow *s, size_t pg, size_t n);

/* Bytes of tag storage allocated now. */
size_t tm_shadow_bytes(const tm_shadow *s);

#endif
