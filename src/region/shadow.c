/*
 * shadow.c - lazily allocated shadow tags for the soft backend (see
 * shadow.h). Chunks are installed with a CAS: two threads tagging pages of
 * the same fresh chunk both allocate, one wins, the other frees its copy.
 */
#include "region/shadow.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int tm_shadow_init(tm_shadow *s, size_t npages, size_t page_bytes)
{
	memset(s, 0, sizeof(*s));
	s->npages = npages;
	s->page_bytes = page_bytes;
	s->nchunks = (npages + TM_SHADOW_CHUNK_PAGES - 1) / TM_SHADOW_CHUNK_PAGES;
	atomic_init(&s->live_chunks, 0);
	if (page_bytes == 0 || s->nchunks == 0)
		return 0;
	s->chunks = calloc(s->nchunks, sizeof(*s->chunks));
	return s->chunks ? 0 : -ENOMEM;
}

void tm_shadow_fini(tm_shadow *s)
{
	for (size_t i = 0; s->chunks && i < s->nchunks; i++)
		free(atomic_load_explicit(&s->chunks[i], memory_order_relaxed));
	free(s->chunks);
	s->chunks = NULL;
}

static size_t chunk_bytes(const tm_shadow *s)
{
	return TM_SHADOW_CHUNK_PAGES * s->page_bytes;
}

uint8_t *tm_shadow_slot_alloc(tm_shadow *s, size_t pg)
{
	_Atomic(uint8_t *) *cp = &s->chunks[pg / TM_SHADOW_CHUNK_PAGES];
	uint8_t *c = atomic_load_explicit(cp, memory_order_acquire);

	if (!c) {
		uint8_t *fresh = calloc(1, chunk_bytes(s));
		uint8_t *expected = NULL;

		if (!fresh)
			return NULL;
		if (atomic_compare_exchange_strong_explicit(
			    cp, &expected, fresh, memory_order_acq_rel,
			    memory_order_acquire)) {
			c = fresh;
			atomic_fetch_add(&s->live_chunks, 1);
		} else {
			free(fresh);
			c = expected;
		}
	}
	return c + (pg % TM_SHADOW_CHUNK_PAGES) * s->page_bytes;
}

void tm_shadow_read(const tm_shadow *s, size_t pg, size_t n, uint8_t *out)
{
	size_t end = pg + n;

	while (pg < end) {
		size_t ci = pg / TM_SHADOW_CHUNK_PAGES;
		size_t stop = (ci + 1) * TM_SHADOW_CHUNK_PAGES;
		size_t len;
		uint8_t *c = s->chunks ? atomic_load_explicit(&s->chunks[ci], memory_order_acquire)
				       : NULL;

		stop = stop < end ? stop : end;
		len = (stop - pg) * s->page_bytes;
		if (c)
			memcpy(out, c + (pg % TM_SHADOW_CHUNK_PAGES) * s->page_bytes, len);
		else
			memset(out, 0, len);
		out += len;
		pg = stop;
	}
}

void tm_shadow_drop(tm_shadow *s, size_t pg, size_t n)
{
	size_t end = pg + n;

	if (!s->chunks)
		return;
	while (pg < end) {
		size_t ci = pg / TM_SHADOW_CHUNK_PAGES;
		size_t cfirst = ci * TM_SHADOW_CHUNK_PAGES;
		size_t clast = cfirst + TM_SHADOW_CHUNK_PAGES; /* exclusive */
		size_t stop = end < clast ? end : clast;
		bool whole = pg == cfirst && (stop == clast || stop == s->npages);

		if (whole) {
			uint8_t *c = atomic_exchange(&s->chunks[ci], NULL);

			if (c) {
				free(c);
				atomic_fetch_sub(&s->live_chunks, 1);
			}
		} else {
			uint8_t *c = atomic_load(&s->chunks[ci]);

			if (c)
				memset(c + (pg - cfirst) * s->page_bytes, 0,
				       (stop - pg) * s->page_bytes);
		}
		pg = stop;
	}
}

size_t tm_shadow_bytes(const tm_shadow *s)
{
	return atomic_load(&s->live_chunks) * chunk_bytes(s);
}
