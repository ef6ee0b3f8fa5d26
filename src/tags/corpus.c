/*
 * corpus.c - reproducible tag layouts for tests, benchmarks and the
 * `tagmem corpus` report. The point is to measure codecs on tags that look
 * like what MTE-enabled systems really hold, not on one convenient pattern.
 *
 * Layouts (per page):
 *   untagged  all tags 0: PROT_MTE memory never tagged, or freed and cleared.
 *   one-tag   one random non-zero tag over the whole page: a large
 *             allocation (Scudo's secondary allocator tags whole pages) or
 *             a stack page.
 *   alloc     a Scudo-like primary-allocator page: Scudo serves each size
 *             class from its own region, so a page holds chunks of ONE size,
 *             16..4096 bytes in 16-byte steps, drawn log-uniformly (every
 *             power-of-two band as likely as the next: skewed to small
 *             sizes). The first chunk starts at a random phase (chunks
 *             straddle pages). Each chunk gets a random tag different from
 *             its neighbour's, as Scudo's tag exclusion guarantees; 1 chunk in
 *             8 keeps tag 0 (never allocated since the region was mapped).
 *   random    uniformly random tags: the worst case for every codec.
 *   mix       per page: 40 % untagged, 20 % one-tag, 35 % alloc, 5 % random
 *             (why: docs/FORMAT.md §tags, "The corpus mix").
 *
 * Works for any geometry: "chunk sizes" are in bytes and become
 * size / granule items (at least one).
 */
#include "tagmem/tags.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "common/util.h"
#include "tags/runs.h"

static const char *const NAMES[TM_CORPUS_NLAYOUTS] = {
	"untagged", "one-tag", "alloc", "random", "mix",
};

/* Mix weights in percent, indexed by layout (mix itself excluded). */
static const unsigned MIX_WEIGHT[TM_CORPUS_MIX] = { 40, 20, 35, 5 };

const char *tm_corpus_name(enum tm_corpus_layout l)
{
	return (unsigned)l < TM_CORPUS_NLAYOUTS ? NAMES[l] : "unknown";
}

int tm_corpus_parse(const char *name, enum tm_corpus_layout *l)
{
	for (unsigned i = 0; i < TM_CORPUS_NLAYOUTS; i++) {
		if (strcmp(name, NAMES[i]) == 0) {
			*l = (enum tm_corpus_layout)i;
			return 0;
		}
	}
	return -EINVAL;
}

struct page_ctx {
	tm_rng *rng;
	uint8_t *p;        /* the page's packed items */
	size_t items;
	unsigned bits;
	unsigned maxval;
	uint32_t granule;
	size_t nbytes;
};

static void fill_one_tag(struct page_ctx *c)
{
	unsigned v = 1 + (unsigned)tm_rng_below(c->rng, c->maxval);

	tm_items_fill(c->p, c->bits, 0, c->items, v, false);
}

static void fill_random(struct page_ctx *c)
{
	/* random bytes are random items of any width */
	for (size_t i = 0; i < c->nbytes; i += 8) {
		uint64_t w = tm_rng_next(c->rng);
		size_t n = c->nbytes - i < 8 ? c->nbytes - i : 8;

		memcpy(c->p + i, &w, n);
	}
}

/* Log-uniform chunk size in bytes, 16..4096 in 16-byte steps. */
static uint32_t chunk_bytes(tm_rng *r)
{
	double e = 4.0 + 8.0 * tm_rng_unit(r);
	uint32_t sz = (uint32_t)lround(exp2(e) / 16.0) * 16;

	return sz < 16 ? 16 : (sz > 4096 ? 4096 : sz);
}

static unsigned chunk_tag(struct page_ctx *c, unsigned prev)
{
	unsigned v;

	if (prev != 0 && (c->maxval == 1 || tm_rng_below(c->rng, 8) == 0))
		return 0;  /* with 1-bit items 0 is the only other value */
	do {
		v = 1 + (unsigned)tm_rng_below(c->rng, c->maxval);
	} while (v == prev);
	return v;
}

static void fill_alloc(struct page_ctx *c)
{
	size_t chunk = chunk_bytes(c->rng) / c->granule;
	unsigned tag = 0;

	if (chunk == 0)
		chunk = 1;
	/* the first chunk is the tail of one that began on the previous page */
	size_t pos = 0, len = 1 + tm_rng_below(c->rng, chunk);
	while (pos < c->items) {
		if (len > c->items - pos)
			len = c->items - pos;
		tag = chunk_tag(c, tag);
		tm_items_fill(c->p, c->bits, pos, len, tag, false);
		pos += len;
		len = chunk;
	}
}

static enum tm_corpus_layout draw_mix(tm_rng *r)
{
	unsigned x = (unsigned)tm_rng_below(r, 100), acc = 0;

	for (unsigned i = 0; i < TM_CORPUS_MIX; i++) {
		acc += MIX_WEIGHT[i];
		if (x < acc)
			return (enum tm_corpus_layout)i;
	}
	return TM_CORPUS_UNTAGGED;
}

static void fill_page(enum tm_corpus_layout l, struct page_ctx *c)
{
	if (l == TM_CORPUS_MIX)
		l = draw_mix(c->rng);
	switch (l) {
	case TM_CORPUS_ONE_TAG:
		fill_one_tag(c);
		break;
	case TM_CORPUS_ALLOC:
		fill_alloc(c);
		break;
	case TM_CORPUS_RANDOM:
		fill_random(c);
		break;
	default:
		memset(c->p, 0, c->nbytes);
		break;
	}
}

void tm_corpus_fill(enum tm_corpus_layout l, const tm_geom *g, uint64_t seed,
		    uint8_t *packed, size_t npages)
{
	size_t nbytes = tm_geom_packed_bytes(g);
	tm_rng rng;

	if (nbytes == 0)
		return;
	tm_rng_seed(&rng, seed * 0x9e3779b97f4a7c15ull + (uint64_t)l);
	struct page_ctx c = {
		.rng = &rng, .items = tm_geom_granules(g), .bits = g->bits,
		.maxval = (1u << g->bits) - 1, .granule = g->granule, .nbytes = nbytes,
	};
	for (size_t i = 0; i < npages; i++) {
		c.p = packed + i * nbytes;
		fill_page(l, &c);
	}
}
