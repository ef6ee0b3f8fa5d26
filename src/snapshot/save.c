/*
 * save.c - tm_snapshot_save: classify every page (zero / tag-only / data),
 * write the pages that are not zero and their tags (raw: at fixed offsets;
 * zstd: one compressed blob per chunk appended at an atomic cursor), then
 * the bitmaps, chunk table and header, then fsync + rename (sfile).
 *
 * Several workers each take whole chunks; a chunk's bitmap bits are merged
 * with atomic ORs because small chunks (64 KiB pages) share bitmap words.
 * Regions whose backend has a direct pointer (tm_region_direct: plain
 * memory, e.g. soft) are read in place (the data goes from the region
 * straight to the file, O_DIRECT when possible); the others (mte's
 * tag-checked memory, another process) are copied page by page into the
 * worker's buffer first.
 */
#include "snapshot/snapint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "common/abi.h"
#include "common/util.h"

struct save_job {
	snap_layout *L;
	tm_region *const *regions;
	sfile f;
	const tm_snap_opts *o;
	int level;
	_Atomic uint64_t cursor;      /* zstd: next free file offset */
};

struct save_ws {
	uint8_t *data;    /* copied pages (no direct pointer; zstd gather) */
	uint8_t *tags;    /* chunk's tags at k * tb (raw: written as is) */
	uint8_t *tcat;    /* zstd: tags of tagged pages, in order */
	uint8_t *blob;    /* zstd: compressed data + coded tags */
	size_t blob_cap;
	ZSTD_CCtx *cctx;
	tm_tagstream_ctx *tsx;        /* zstd: tag codec context */
	const uint8_t **dptr;
	struct iovec *iov;            /* raw: gathered pieces of a chunk */
	uint64_t *dbits, *tbits;      /* chunk-local bitmaps */
};

static void save_ws_free(struct save_ws *w)
{
	if (!w)
		return;
	free(w->data);
	free(w->tags);
	free(w->tcat);
	free(w->blob);
	free(w->dptr);
	free(w->iov);
	free(w->dbits);
	free(w->tbits);
	ZSTD_freeCCtx(w->cctx);
	tm_tagstream_ctx_free(w->tsx);
	free(w);
}

static struct save_ws *save_ws_new(const snap_layout *L)
{
	struct save_ws *w = calloc(1, sizeof(*w));
	size_t cp = L->chunk_pages, ps = L->geom.page_size, tb = tm_snap_tag_bytes(L);

	if (!w)
		return NULL;
	w->data = tm_sfile_alloc_huge(cp * ps);
	w->tags = tm_sfile_alloc(tm_snap_tag_slot(cp, tb));
	w->dptr = calloc(cp, sizeof(*w->dptr));
	w->iov = calloc(2 * cp + 4, sizeof(*w->iov));
	w->dbits = calloc(tm_bitmap_words(cp), 8);
	w->tbits = calloc(tm_bitmap_words(cp), 8);
	if (L->flags & TM_SNAP_ZSTD) {
		w->blob_cap = ZSTD_compressBound(cp * ps) + tm_tagstream_bound(&L->geom, cp) + SNAP_ALIGN;
		w->blob = tm_sfile_alloc_huge(w->blob_cap);
		w->tcat = tm_sfile_alloc(cp * tb);
		w->cctx = ZSTD_createCCtx();
		if (tm_tagstream_ctx_new(&w->tsx, NULL))
			w->tsx = NULL;
	}
	if (!w->data || !w->tags || !w->dptr || !w->iov || !w->dbits || !w->tbits ||
	    ((L->flags & TM_SNAP_ZSTD) && (!w->blob || !w->tcat || !w->cctx || !w->tsx))) {
		save_ws_free(w);
		return NULL;
	}
	return w;
}

/* Gather page data pointers and tags of a chunk, and classify the pages. */
/* Whether every page of [first, first + np) may carry tags. */
static bool all_may_be_tagged(tm_region *r, uint64_t first, uint64_t np)
{
	for (uint64_t k = 0; k < np; k++)
		if (!tm_region_page_may_be_tagged(r, first + k))
			return false;
	return true;
}

/*
 * Gather page data pointers and tags of a chunk, and classify the pages.
 * A region without a direct pointer is copied with one tm_region_read_pages
 * for the chunk's data and, when every page may be tagged (backends that do
 * not own their tags: mte, kvm, ptrace), one for its tags, so a backend
 * that pays per call (a ptrace request, an ioctl) batches.
 */
static int save_gather(struct save_job *J, struct save_ws *w, uint32_t ri,
		       uint64_t first, uint64_t np, tm_error *err)
{
	tm_region *r = J->regions[ri];
	const snap_layout *L = J->L;
	size_t ps = L->geom.page_size, tb = tm_snap_tag_bytes(L);
	bool tagged = L->regions[ri].flags & SNAP_REGION_TAGGED;
	bool in_place = tm_region_direct(r, first * ps) != NULL;
	bool tags_read = tagged && all_may_be_tagged(r, first, np);
	int rc = 0;

	memset(w->dbits, 0, tm_bitmap_words(L->chunk_pages) * 8);
	memset(w->tbits, 0, tm_bitmap_words(L->chunk_pages) * 8);
	if (!in_place)
		rc = tm_region_read_pages(r, first, np, w->data, NULL, err);
	if (!rc && tags_read)
		rc = tm_region_read_pages(r, first, np, NULL, w->tags, err);
	if (rc)
		return rc;
	for (uint64_t k = 0; k < np; k++) {
		uint8_t *t = w->tags + k * tb;

		w->dptr[k] = in_place ? tm_region_direct(r, (first + k) * ps)
				      : w->data + k * ps;
		if (tagged && !tags_read && tm_region_page_may_be_tagged(r, first + k)) {
			rc = tm_region_get_tags(r, first + k, TM_TAGS_PACKED, t, err);
			if (rc)
				return rc;
		} else if (tb && !tags_read) {
			memset(t, 0, tb);
		}
		if (tagged && !tm_mem_is_zero(t, tb))
			tm_bit_set(w->tbits, k);
		if (!tm_mem_is_zero(w->dptr[k], ps))
			tm_bit_set(w->dbits, k);
	}
	return 0;
}

static void merge_bits(uint64_t *dst, const uint64_t *src, uint64_t first,
		       uint64_t np)
{
	for (uint64_t k = 0; k < np; k++)
		if (tm_bit_test(src, k))
			__atomic_fetch_or(&dst[(first + k) >> 6],
					  (uint64_t)1 << ((first + k) & 63), __ATOMIC_RELAXED);
}

/*
 * Raw mode writer: the stored pieces of a chunk (its non-zero pages and its
 * tag slot) gathered into as few writes as possible. A gap shorter than
 * SNAP_HOLE_MIN between two pieces is written as zeros so the chunk goes
 * out in one large (O_DIRECT) write; a longer run of zero pages stays a
 * hole. Readers never look at those zeros: the bitmaps say what is stored.
 */
struct gather {
	struct iovec *iov;
	int n;
	uint64_t base, start, end;     /* file range being gathered */
};

static int gather_flush(struct save_job *J, struct gather *g, tm_error *err)
{
	int rc = 0;

	if (g->n)
		rc = tm_sfile_pwritev(&J->f, g->iov, g->n, g->base + g->start, err);
	g->n = 0;
	return rc;
}

static int gather_add(struct save_job *J, struct gather *g, uint64_t off,
		      const uint8_t *p, size_t len, tm_error *err)
{
	int rc;

	if (g->n && off - g->end >= SNAP_HOLE_MIN) {
		rc = gather_flush(J, g, err);
		if (rc)
			return rc;
	}
	if (g->n == 0)
		g->start = g->end = off;
	if (off > g->end)
		g->iov[g->n++] = (struct iovec){ (void *)tm_snap_zero_page, off - g->end };
	if (g->n && (const uint8_t *)g->iov[g->n - 1].iov_base + g->iov[g->n - 1].iov_len == p)
		g->iov[g->n - 1].iov_len += len;
	else
		g->iov[g->n++] = (struct iovec){ (void *)p, len };
	g->end = off + len;
	return 0;
}

static int save_raw(struct save_job *J, struct save_ws *w, snap_chunk *e,
		    uint64_t np, tm_error *err)
{
	size_t ps = J->L->geom.page_size, tb = tm_snap_tag_bytes(J->L);
	struct gather g = { .iov = w->iov, .base = e->data_off };
	bool any_tags = false;
	XXH3_state_t st;
	int rc = 0;

	XXH3_64bits_reset(&st);
	for (uint64_t k = 0; k < np && !rc; k++)
		if (tm_bit_test(w->dbits, k)) {
			XXH3_64bits_update(&st, w->dptr[k], ps);
			rc = gather_add(J, &g, k * ps, w->dptr[k], ps, err);
		}
	for (uint64_t k = 0; k < np; k++)
		if (tm_bit_test(w->tbits, k)) {
			XXH3_64bits_update(&st, w->tags + k * tb, tb);
			any_tags = true;
		}
	e->xxh = XXH3_64bits_digest(&st);
	if (!rc && any_tags) {
		uint64_t slot = tm_snap_tag_slot(np, tb);

		memset(w->tags + np * tb, 0, slot - np * tb);
		rc = gather_add(J, &g, np * ps, w->tags, slot, err);
	}
	if (!rc)
		rc = gather_flush(J, &g, err);
	return rc;
}

/* zstd mode: data pages compressed as one frame (raw if that is not
 * smaller); tags through the stream tag codec (raw if not smaller). */
static size_t zstd_pack_data(struct save_job *J, struct save_ws *w,
			     uint64_t np, uint32_t *flags)
{
	size_t ps = J->L->geom.page_size, nd = 0, z;

	for (uint64_t k = 0; k < np; k++)
		if (tm_bit_test(w->dbits, k)) {
			if (w->dptr[k] != w->data + nd * ps)
				memcpy(w->data + nd * ps, w->dptr[k], ps);
			nd++;
		}
	if (nd == 0)
		return 0;
	z = ZSTD_compressCCtx(w->cctx, w->blob, w->blob_cap, w->data, nd * ps, J->level);
	if (!ZSTD_isError(z) && z < nd * ps) {
		*flags |= SNAP_CHUNK_DATA_ZSTD;
		return z;
	}
	memcpy(w->blob, w->data, nd * ps);
	return nd * ps;
}

static int zstd_pack_tags(struct save_job *J, struct save_ws *w, uint64_t np,
			  size_t at, size_t *len, uint32_t *flags,
			  tm_error *err)
{
	size_t tb = tm_snap_tag_bytes(J->L), nt = 0, coded = 0;
	int rc;

	for (uint64_t k = 0; k < np; k++)
		if (tm_bit_test(w->tbits, k))
			memcpy(w->tcat + (nt++) * tb, w->tags + k * tb, tb);
	*len = 0;
	if (nt == 0)
		return 0;
	rc = tm_tagstream_encode_ctx(w->tsx, &J->L->geom, w->tcat, nt, TM_TAGSTREAM_ZSTD,
				 w->blob + at, w->blob_cap - at, &coded, err);
	if (rc)
		return rc;
	if (coded < nt * tb) {
		*flags |= SNAP_CHUNK_TAGS_CODED;
		*len = coded;
		return 0;
	}
	memcpy(w->blob + at, w->tcat, nt * tb);
	*len = nt * tb;
	return 0;
}

static int save_zstd(struct save_job *J, struct save_ws *w, snap_chunk *e,
		     uint64_t np, tm_error *err)
{
	uint32_t flags = 0;
	size_t dlen = zstd_pack_data(J, w, np, &flags), tlen, total, padded;
	uint64_t off;
	int rc;

	rc = zstd_pack_tags(J, w, np, dlen, &tlen, &flags, err);
	if (rc)
		return rc;
	total = dlen + tlen;
	memset(e, 0, sizeof(*e));
	if (total == 0)
		return 0;
	padded = tm_snap_align_up(total, SNAP_ALIGN);
	memset(w->blob + total, 0, padded - total);
	off = atomic_fetch_add(&J->cursor, padded);
	e->data_off = off;
	e->data_len = (uint32_t)dlen;
	e->tag_off = off + dlen;
	e->tag_len = (uint32_t)tlen;
	e->flags = flags;
	e->xxh = XXH3_64bits(w->blob, total);
	return tm_sfile_pwrite(&J->f, w->blob, padded, off, err);
}

static int save_chunk(snap_pool *p, void *ws, uint32_t ri, uint64_t c,
		      tm_error *err)
{
	struct save_job *J = p->ctx;
	struct save_ws *w = ws;
	snap_region *R = &J->L->regions[ri];
	uint64_t first = tm_snap_chunk_first(J->L, c), np = tm_snap_chunk_npages(J->L, R, c);
	int rc;

	rc = save_gather(J, w, ri, first, np, err);
	if (rc)
		return tm_error_wrap(err, rc, "snapshot %s: reading region %u '%s' pages %" PRIu64 "-%" PRIu64,
				     J->f.path, ri, R->name, first, first + np - 1);
	if (J->L->flags & TM_SNAP_ZSTD)
		rc = save_zstd(J, w, &R->chunks[c], np, err);
	else
		rc = save_raw(J, w, &R->chunks[c], np, err);
	if (rc)
		return rc;
	merge_bits(R->dbits, w->dbits, first, np);
	merge_bits(R->tbits, w->tbits, first, np);
	return 0;
}

/* In the calling thread while workers write: the regions' digests. */
static int save_digests(snap_pool *p, tm_error *err)
{
	struct save_job *J = p->ctx;

	if (!(J->L->flags & TM_SNAP_DIGEST))
		return 0;
	for (uint32_t i = 0; i < J->L->nregions; i++) {
		int rc = tm_region_digest(J->regions[i], &J->L->regions[i].digest, err);

		if (rc)
			return rc;
	}
	return 0;
}

static void count_classes(const snap_layout *L, tm_snap_stats *st)
{
	for (uint32_t i = 0; i < L->nregions; i++) {
		const snap_region *R = &L->regions[i];

		for (uint64_t w = 0; w < tm_bitmap_words(R->npages); w++) {
			uint64_t d = R->dbits[w], t = R->tbits[w];

			st->normal_pages += (uint64_t)__builtin_popcountll(d);
			st->tagged_pages += (uint64_t)__builtin_popcountll(t);
			st->tag_only_pages += (uint64_t)__builtin_popcountll(t & ~d);
			st->zero_pages -= (uint64_t)__builtin_popcountll(d | t);
		}
		st->pages += R->npages;
		st->zero_pages += R->npages;
		st->chunks += R->nchunks;
	}
}

static void stored_bytes(const snap_layout *L, tm_snap_stats *st)
{
	size_t ps = L->geom.page_size, tb = tm_snap_tag_bytes(L);

	for (uint32_t i = 0; i < L->nregions; i++) {
		const snap_region *R = &L->regions[i];

		for (uint64_t c = 0; c < R->nchunks; c++) {
			if (L->flags & TM_SNAP_ZSTD) {
				st->data_bytes += R->chunks[c].data_len;
				st->tag_bytes += R->chunks[c].tag_len;
			}
		}
		if (!(L->flags & TM_SNAP_ZSTD)) {
			st->data_bytes += (uint64_t)tm_bitmap_count(R->dbits, R->npages) * ps;
			st->tag_bytes += (uint64_t)tm_bitmap_count(R->tbits, R->npages) * tb;
		}
	}
}

static void phase(const tm_snap_opts *o, enum tm_snap_phase ph)
{
	if (o && o->progress)
		o->progress(o->progress_ctx, ph, 1, 1);
}

static void sync_done(void *ctx)
{
	phase(ctx, TM_SNAP_PHASE_SYNC);
}

/* Metadata area then head: the head (with both checksums) goes last. */
static int write_meta_and_head(struct save_job *J, tm_error *err)
{
	snap_layout *L = J->L;
	uint64_t mlen = tm_snap_align_up(L->meta_bytes, SNAP_ALIGN);
	uint8_t *meta = tm_sfile_alloc(mlen), *head = tm_sfile_alloc(tm_snap_head_bytes(L));
	int rc;

	if (!meta || !head) {
		rc = tm_error_set(err, -ENOMEM, "snapshot %s: no memory for metadata", J->f.path);
		goto out;
	}
	if (L->flags & TM_SNAP_ZSTD)
		L->file_size = atomic_load(&J->cursor);
	tm_snap_encode_meta(L, meta);
	tm_snap_encode_head(L, head);
	rc = tm_sfile_pwrite(&J->f, meta, mlen, L->meta_off, err);
	if (!rc)
		rc = tm_sfile_pwrite(&J->f, head, tm_snap_head_bytes(L), 0, err);
out:
	free(meta);
	free(head);
	return rc;
}

static int save_run(struct save_job *J, tm_snap_stats *st, tm_error *err)
{
	snap_pool p = { .L = J->L, .threads = tm_snap_threads(J->o, TM_SNAP_THREADS_DEFAULT), .fn = save_chunk,
			.ctx = J, .meanwhile = save_digests };
	int rc = 0;

	p.ws = calloc(p.threads, sizeof(void *));
	if (!p.ws)
		return tm_error_set(err, -ENOMEM, "snapshot: no memory for workers");
	for (unsigned i = 0; i < p.threads && !rc; i++)
		if (!(p.ws[i] = save_ws_new(J->L)))
			rc = tm_error_set(err, -ENOMEM, "snapshot %s: no memory for worker buffers",
					  J->f.path);
	if (J->o) {
		p.progress = J->o->progress;
		p.progress_ctx = J->o->progress_ctx;
	}
	if (!rc)
		rc = tm_snap_pool_run(&p, err);
	for (unsigned i = 0; i < p.threads; i++)
		save_ws_free(p.ws[i]);
	free(p.ws);
	if (!rc)
		rc = write_meta_and_head(J, err);
	if (!rc)
		phase(J->o, TM_SNAP_PHASE_META);
	if (!rc)
		rc = tm_sfile_commit(&J->f, J->L->file_size, sync_done, (void *)J->o, err);
	if (!rc) {
		count_classes(J->L, st);
		stored_bytes(J->L, st);
		st->file_bytes = J->L->file_size;
		if (J->o && J->o->drop_cache)
			tm_sfile_drop_cache(&J->f);
	}
	return rc;
}

int tm_snap_opts_init_sized(tm_snap_opts *o, size_t size)
{
	tm_snap_opts d;

	memset(&d, 0, sizeof(d));
	d.struct_size = sizeof(d);
	d.threads = 0;          /* per operation: see tm_snap_opts.threads */
	d.chunk_bytes = TM_SNAP_CHUNK_DEFAULT;
	d.zstd_level = 1;
	return TM_ABI_COPY_OUT(tm_snap_opts, o, size, &d, NULL);
}

int tm_snapshot_save(const char *path, tm_region *const *regions, size_t n,
		     const tm_snap_opts *uo, tm_snap_stats *st, tm_error *err)
{
	struct save_job J = { .regions = regions };
	uint64_t t0 = tm_now_ns();
	tm_snap_stats local;
	tm_snap_opts copy;
	const tm_snap_opts *o;
	snap_layout L;
	int rc;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (!path || (!regions && n))
		return tm_error_set(err, -EINVAL, "snapshot: no path or regions");
	rc = tm_snap_opts_in(uo, &copy, &o, err);
	if (rc)
		return rc;
	J.o = o;
	rc = tm_snap_plan_sections(&L, regions, n, o ? o->flags : 0,
				   o ? o->chunk_bytes : 0, o ? o->sections : NULL,
				   o ? o->nsections : 0, err);
	if (rc)
		return rc;
	J.L = &L;
	J.level = o && o->zstd_level ? o->zstd_level : 1;
	atomic_store(&J.cursor, L.data_off);
	rc = tm_sfile_create(&J.f, path, o ? o->io : TM_SNAP_IO_AUTO, err);
	if (!rc) {
		rc = save_run(&J, st, err);
		st->direct_io = J.f.direct;
		snprintf(st->io_note, sizeof(st->io_note), "%s", J.f.note);
		tm_sfile_close(&J.f);
	}
	tm_snap_layout_free(&L);
	st->seconds = (double)(tm_now_ns() - t0) / 1e9;
	return rc;
}
