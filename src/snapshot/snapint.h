/*
 * snapint.h - what restore, verify, info and lazy restore share: the open
 * snapshot handle, a chunk loader that reads one chunk, checks its checksum
 * and decodes it into caller-owned buffers (nothing leaves the loader
 * unchecked), and the thread pool that runs a function over all chunks.
 * Internal to the snapshot part.
 */
#ifndef TM_SNAPSHOT_SNAPINT_H
#define TM_SNAPSHOT_SNAPINT_H

#include <pthread.h>
#include <stdatomic.h>

#include <zstd.h>

#include "snapshot/sfile.h"
#include "snapshot/snapfmt.h"
#include "common/util.h"

struct tm_snapshot {
	sfile f;
	snap_layout L;
};

/* Buffers for one chunk, allocated once per worker (never per page). */
typedef struct snap_loadbuf {
	uint8_t *data;        /* raw: the chunk as on disk: pages, tag slot */
	uint8_t *blob;        /* zstd: the stored blob */
	uint8_t *cat;         /* zstd: decompressed data pages, in order */
	uint8_t *tcat;        /* zstd: decoded tags of tagged pages */
	ZSTD_DCtx *dctx;
	tm_tagstream_ctx *tsx; /* zstd: tag codec context */
	/* after a load: page k of the chunk -> its data / tags, or NULL */
	const uint8_t **dptr, **tptr;
	uint64_t stored_data, stored_tags; /* bytes read for this chunk */
} snap_loadbuf;

/* huge: chunk buffers in transparent huge pages (tm_sfile_alloc_huge), for
 * the eager pools; lazy restore keeps 4 per region and does not. */
int tm_snap_loadbuf_init(snap_loadbuf *b, const snap_layout *L, bool huge,
			 tm_error *err);
void tm_snap_loadbuf_free(snap_loadbuf *b);

/*
 * Read chunk c of region ri, verify its checksum, decode it; on success
 * b->dptr[k] / b->tptr[k] point at page k's data / tags (NULL when the page
 * has none). -EBADMSG naming region, chunk, pages and file range otherwise.
 */
int tm_snap_load_chunk(tm_snapshot *s, snap_loadbuf *b, uint32_t ri, uint64_t c,
		       tm_error *err);

/* A read-only page of zeros, for tag-only pages. */
extern const uint8_t tm_snap_zero_page[TM_PAGE_SIZE_MAX] __attribute__((aligned(SNAP_ALIGN)));

/* ---- a pool of workers over every chunk of every region ---------- */

typedef struct snap_pool snap_pool;
/* Per-chunk work; ws is the worker's state. Return 0 or -errno (err). */
typedef int (*snap_chunk_fn)(snap_pool *p, void *ws, uint32_t ri, uint64_t c,
			     tm_error *err);

struct snap_pool {
	const snap_layout *L;
	unsigned threads;
	bool keep_going;            /* verify: don't stop at the first error */
	snap_chunk_fn fn;
	void *ctx;                  /* the caller's job */
	void **ws;                  /* per worker state, threads entries */
	_Atomic uint64_t next, done, failed;
	uint64_t total;
	uint64_t *base;             /* nregions+1 prefix sums of chunk counts */
	pthread_mutex_t lock;
	tm_error first;             /* first error (under lock) */
	void (*on_error)(void *ctx, const tm_error *e); /* under lock */
	void *on_error_ctx;
	void (*progress)(void *ctx, enum tm_snap_phase, uint64_t, uint64_t);
	void *progress_ctx;
	/* runs in the calling thread while the workers work; may be NULL */
	int (*meanwhile)(snap_pool *p, tm_error *err);
};

/* Run p->fn over all chunks with p->threads workers; returns the first
 * error (copied to err). */
int tm_snap_pool_run(snap_pool *p, tm_error *err);

/* o->threads, or dflt when unset (or o NULL); at most 256. */
unsigned tm_snap_threads(const tm_snap_opts *o, unsigned dflt);

/* The caller's options uo (may be NULL) as this library's struct: *o is
 * NULL for NULL, else copy, read through uo->struct_size (common/abi.h). */
int tm_snap_opts_in(const tm_snap_opts *uo, tm_snap_opts *copy,
		    const tm_snap_opts **o, tm_error *err);

/* Destination regions fit the file (count, sizes, page size, geometry). */
int tm_snap_check_dst(const tm_snapshot *s, tm_region *const *dst, size_t n,
		      tm_error *err);

#endif
