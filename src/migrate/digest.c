/*
 * digest.c - the 128-bit end-of-migration digest of regions' data and tags.
 * Each chunk of 256 pages is hashed (XXH3-128 over every page's data then
 * its packed tags) by one of `threads` threads; the digest is XXH3-128 over
 * a fixed prefix, each region's description and its chunk hashes in order.
 * The definition is in docs/FORMAT.md §migrate so another implementation can
 * compute the same value.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "migrate/xxh.h"

#include "migrate/wire.h"
#include "tagmem/migrate.h"

#define CHUNK_PAGES 256u

struct dig_chunk {
	uint32_t region;
	uint64_t first, n;
};

struct dig {
	tm_region *const *regions;
	struct dig_chunk *chunk;
	size_t nchunks;
	XXH128_canonical_t *out;
	atomic_size_t next;
	atomic_int failed;
	pthread_mutex_t lock;
	tm_error err;
};

static int hash_chunk(struct dig *d, const struct dig_chunk *c, uint8_t *data,
		      uint8_t *tags, XXH128_canonical_t *out, tm_error *err)
{
	tm_region *r = d->regions[c->region];
	const tm_geom *g = tm_region_geom(r);
	size_t tb = tm_geom_packed_bytes(g);
	XXH3_state_t st;

	XXH3_128bits_reset(&st);
	for (uint64_t pg = c->first; pg < c->first + c->n; pg++) {
		int rc = tm_region_read_page(r, pg, data, tb ? tags : NULL, err);

		if (rc)
			return tm_error_wrap(err, rc, "digest: region '%s' offset 0x%llx",
					     tm_region_name(r),
					     (unsigned long long)(pg * g->page_size));
		tm_xxh3_128_update(&st, data, g->page_size);
		if (tb)
			tm_xxh3_128_update(&st, tags, tb);
	}
	XXH128_canonicalFromHash(out, XXH3_128bits_digest(&st));
	return 0;
}

static void *dig_worker(void *arg)
{
	struct dig *d = arg;
	uint8_t *data = malloc(TM_PAGE_SIZE_MAX);
	uint8_t *tags = malloc(TM_PAGE_SIZE_MAX / 2);
	tm_error err;

	tm_error_clear(&err);
	if (!data || !tags) {
		tm_error_set(&err, -ENOMEM, "digest: out of memory");
		goto fail;
	}
	for (;;) {
		size_t i = atomic_fetch_add(&d->next, 1);

		if (i >= d->nchunks || atomic_load(&d->failed))
			break;
		if (hash_chunk(d, &d->chunk[i], data, tags, &d->out[i], &err))
			goto fail;
	}
	free(data);
	free(tags);
	return NULL;
fail:
	pthread_mutex_lock(&d->lock);
	if (!atomic_exchange(&d->failed, 1))
		d->err = err;
	pthread_mutex_unlock(&d->lock);
	free(data);
	free(tags);
	return NULL;
}

static void region_prefix(XXH3_state_t *st, tm_region *r)
{
	uint8_t b[TM_NEG_REGION] = { 0 };
	const tm_geom *g = tm_region_geom(r);

	strncpy((char *)b, tm_region_name(r), TM_NAME_LEN - 1);
	tm_put64(b + 64, tm_region_size(r));
	tm_put32(b + 72, g->page_size);
	tm_put32(b + 76, g->kind);
	tm_put32(b + 80, g->version);
	tm_put32(b + 84, g->kind == TM_META_NONE ? 0 : g->granule);
	tm_put32(b + 88, g->kind == TM_META_NONE ? 0 : g->bits);
	tm_xxh3_128_update(st, b, sizeof(b));
}

static int build_chunks(struct dig *d, tm_region *const *regions, size_t n)
{
	size_t total = 0, k = 0;

	for (size_t i = 0; i < n; i++)
		total += (tm_region_npages(regions[i]) + CHUNK_PAGES - 1) / CHUNK_PAGES;
	d->chunk = calloc(total ? total : 1, sizeof(*d->chunk));
	d->out = calloc(total ? total : 1, sizeof(*d->out));
	if (!d->chunk || !d->out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t np = tm_region_npages(regions[i]);

		for (size_t pg = 0; pg < np; pg += CHUNK_PAGES)
			d->chunk[k++] = (struct dig_chunk){ (uint32_t)i, pg,
				np - pg < CHUNK_PAGES ? np - pg : CHUNK_PAGES };
	}
	d->nchunks = total;
	return 0;
}

static void combine(struct dig *d, tm_region *const *regions, size_t n,
		    uint8_t out[16])
{
	static const char prefix[16] = "tagmem-digest-1";
	XXH3_state_t st;
	XXH128_canonical_t c;
	size_t k = 0;

	XXH3_128bits_reset(&st);
	tm_xxh3_128_update(&st, prefix, sizeof(prefix));
	for (size_t i = 0; i < n; i++) {
		region_prefix(&st, regions[i]);
		for (; k < d->nchunks && d->chunk[k].region == i; k++)
			tm_xxh3_128_update(&st, &d->out[k], sizeof(d->out[k]));
	}
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
	memcpy(out, &c, 16);
}

int tm_migrate_digest(tm_region *const *regions, size_t n, unsigned threads,
		      uint8_t out[16], tm_error *err)
{
	struct dig d = { .regions = regions };
	pthread_t thr[TM_MIGRATE_MAX_CHANNELS];
	unsigned started = 0;
	int rc = 0;

	if (threads < 1)
		threads = 1;
	if (threads > TM_MIGRATE_MAX_CHANNELS)
		threads = TM_MIGRATE_MAX_CHANNELS;
	pthread_mutex_init(&d.lock, NULL);
	if (build_chunks(&d, regions, n)) {
		rc = tm_error_set(err, -ENOMEM, "digest: out of memory");
		goto out;
	}
	for (; started < threads; started++)
		if (pthread_create(&thr[started], NULL, dig_worker, &d))
			break;
	if (started == 0)
		dig_worker(&d);
	for (unsigned i = 0; i < started; i++)
		pthread_join(thr[i], NULL);
	if (atomic_load(&d.failed)) {
		rc = d.err.code ? d.err.code : -EIO;
		if (err)
			*err = d.err;
		goto out;
	}
	combine(&d, regions, n, out);
out:
	free(d.chunk);
	free(d.out);
	pthread_mutex_destroy(&d.lock);
	return rc;
}
