/*
 * restore.c - open a snapshot (validating everything but the chunk
 * payloads), describe it, restore it eagerly with several workers, verify
 * every chunk, and compare restored regions with the recorded digests.
 */
#include "snapshot/snapint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"

static int read_head(tm_snapshot *s, tm_error *err)
{
	uint64_t want = SNAP_HEADER_BYTES + (uint64_t)TM_SNAP_MAX_REGIONS * SNAP_REGION_BYTES;
	size_t len = (size_t)(s->f.size < want ? s->f.size : want);
	uint8_t *buf = malloc(len ? len : 1);
	int rc;

	if (!buf)
		return tm_error_set(err, -ENOMEM, "snapshot %s: no memory", s->f.path);
	rc = tm_sfile_pread(&s->f, buf, len, 0, err);
	if (!rc)
		rc = tm_snap_decode_head(&s->L, buf, len, s->f.size, s->f.path, err);
	free(buf);
	return rc;
}

static int read_meta(tm_snapshot *s, tm_error *err)
{
	uint8_t *buf = malloc(s->L.meta_bytes ? s->L.meta_bytes : 1);
	int rc;

	if (!buf)
		return tm_error_set(err, -ENOMEM, "snapshot %s: no memory for %" PRIu64 " bytes of metadata",
				    s->f.path, s->L.meta_bytes);
	rc = tm_sfile_pread(&s->f, buf, s->L.meta_bytes, s->L.meta_off, err);
	if (!rc)
		rc = tm_snap_decode_meta(&s->L, buf, s->f.path, err);
	free(buf);
	return rc;
}

int tm_snapshot_open(const char *path, const tm_snap_opts *uo,
		     tm_snapshot **out, tm_error *err)
{
	tm_snap_opts copy;
	const tm_snap_opts *o;
	tm_snapshot *s;
	int rc;

	*out = NULL;
	rc = tm_snap_opts_in(uo, &copy, &o, err);
	if (rc)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return tm_error_set(err, -ENOMEM, "snapshot %s: no memory", path);
	rc = tm_sfile_open(&s->f, path, o ? o->io : TM_SNAP_IO_AUTO, err);
	if (rc) {
		free(s);
		return rc;
	}
	rc = read_head(s, err);
	if (!rc)
		rc = read_meta(s, err);
	if (rc) {
		tm_snapshot_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void tm_snapshot_close(tm_snapshot *s)
{
	if (!s)
		return;
	tm_snap_layout_free(&s->L);
	tm_sfile_close(&s->f);
	free(s);
}

void tm_snapshot_info(const tm_snapshot *s, tm_snap_info *out)
{
	memset(out, 0, sizeof(*out));
	out->version = s->L.version;
	out->flags = s->L.flags;
	out->geom = s->L.geom;
	out->chunk_pages = s->L.chunk_pages;
	out->nregions = s->L.nregions;
	out->file_size = s->L.file_size;
	out->created_ns = s->L.created_ns;
	out->direct_io = s->f.direct;
	snprintf(out->io_note, sizeof(out->io_note), "%s", s->f.note);
}

int tm_snapshot_section(const tm_snapshot *s, uint32_t type,
			const void **data, size_t *len, tm_error *err)
{
	for (uint32_t i = 0; i < s->L.nsect; i++)
		if (s->L.sect[i].type == type) {
			*data = s->L.sect_buf + s->L.sect[i].off;
			*len = (size_t)s->L.sect[i].len;
			return 0;
		}
	*data = NULL;
	*len = 0;
	return tm_error_set(err, -ENOENT, "snapshot %s has no section of type %u",
			    s->f.path, type);
}

int tm_snapshot_region_info(const tm_snapshot *s, size_t i,
			    tm_snap_region_info *out, tm_error *err)
{
	const snap_region *R;

	if (i >= s->L.nregions)
		return tm_error_set(err, -EINVAL, "snapshot %s: no region %zu (%u regions)",
				    s->f.path, i, s->L.nregions);
	R = &s->L.regions[i];
	memset(out, 0, sizeof(*out));
	memcpy(out->name, R->name, sizeof(out->name));
	out->size = R->size;
	out->npages = R->npages;
	out->nchunks = R->nchunks;
	out->tagged = R->flags & SNAP_REGION_TAGGED;
	out->has_digest = s->L.flags & TM_SNAP_DIGEST;
	out->digest = R->digest;
	for (uint64_t w = 0; w < tm_bitmap_words(R->npages); w++) {
		uint64_t d = R->dbits[w], t = R->tbits[w];

		out->normal_pages += (uint64_t)__builtin_popcountll(d);
		out->tagged_pages += (uint64_t)__builtin_popcountll(t);
		out->tag_only_pages += (uint64_t)__builtin_popcountll(t & ~d);
		out->zero_pages += (uint64_t)__builtin_popcountll(d | t);
	}
	out->zero_pages = R->npages - out->zero_pages;
	return 0;
}

static void count_stats(const tm_snapshot *s, tm_snap_stats *st)
{
	for (size_t i = 0; i < s->L.nregions; i++) {
		tm_snap_region_info ri;

		tm_snapshot_region_info(s, i, &ri, NULL);
		st->pages += ri.npages;
		st->normal_pages += ri.normal_pages;
		st->tagged_pages += ri.tagged_pages;
		st->tag_only_pages += ri.tag_only_pages;
		st->zero_pages += ri.zero_pages;
	}
	st->file_bytes = s->L.file_size;
	st->direct_io = s->f.direct;
	snprintf(st->io_note, sizeof(st->io_note), "%s", s->f.note);
}

static int region_geom(const tm_snapshot *s, uint32_t i, tm_geom *g,
		       tm_error *err)
{
	if (s->L.regions[i].flags & SNAP_REGION_TAGGED) {
		*g = s->L.geom;
		return 0;
	}
	return tm_geom_init(g, TM_META_NONE, s->L.geom.page_size, 0, 0, err);
}

int tm_snapshot_create_regions(const tm_snapshot *s, enum tm_backend b,
			       tm_region **out, tm_error *err)
{
	int rc = 0;
	uint32_t i;

	for (i = 0; i < s->L.nregions && !rc; i++) {
		tm_region_config cfg = { .name = s->L.regions[i].name,
					 .size = s->L.regions[i].size, .backend = b };

		out[i] = NULL;
		rc = region_geom(s, i, &cfg.geom, err);
		if (!rc)
			rc = tm_region_create(&cfg, &out[i], err);
	}
	if (rc)
		for (uint32_t j = 0; j < i; j++) {
			tm_region_destroy(out[j]);
			out[j] = NULL;
		}
	return rc;
}

/* dst must hold what the file holds: same sizes and page size, and a tagged
 * file region needs a destination with the same metadata geometry. */
int tm_snap_check_dst(const tm_snapshot *s, tm_region *const *dst, size_t n,
		      tm_error *err)
{
	char a[96], b[96];

	if (n != s->L.nregions)
		return tm_error_set(err, -EINVAL, "snapshot %s: %zu destination regions for %u in the file",
				    s->f.path, n, s->L.nregions);
	for (uint32_t i = 0; i < n; i++) {
		const snap_region *R = &s->L.regions[i];
		const tm_geom *g = tm_region_geom(dst[i]);

		if (tm_region_size(dst[i]) != R->size || g->page_size != s->L.geom.page_size)
			return tm_error_set(err, -EINVAL,
					    "snapshot %s: region %u '%s' is %" PRIu64 " bytes of %u-byte pages, destination '%s' is %zu bytes of %u-byte pages",
					    s->f.path, i, R->name, R->size, s->L.geom.page_size,
					    tm_region_name(dst[i]), tm_region_size(dst[i]), g->page_size);
		if ((R->flags & SNAP_REGION_TAGGED) && !tm_geom_equal(g, &s->L.geom))
			return tm_error_set(err, -EINVAL,
					    "snapshot %s: region %u '%s' holds %s tags, destination '%s' has %s",
					    s->f.path, i, R->name, tm_geom_describe(&s->L.geom, a, sizeof(a)),
					    tm_region_name(dst[i]), tm_geom_describe(g, b, sizeof(b)));
	}
	return 0;
}

struct restore_job {
	tm_snapshot *s;
	tm_region *const *dst;
	_Atomic uint64_t data_bytes, tag_bytes;
};

/* Place a checked chunk: data with tags together, or zero the page. */
static int place_chunk(tm_region *r, const snap_loadbuf *b, uint64_t first,
		       uint64_t np, tm_error *err)
{
	for (uint64_t k = 0; k < np; k++) {
		const uint8_t *d = b->dptr[k], *t = b->tptr[k];
		int rc;

		if (!d && !t)
			rc = tm_region_zero_page(r, first + k, err);
		else
			rc = tm_region_write_page(r, first + k, d ? d : tm_snap_zero_page, t, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int restore_chunk(snap_pool *p, void *ws, uint32_t ri, uint64_t c,
			 tm_error *err)
{
	struct restore_job *J = p->ctx;
	snap_loadbuf *b = ws;
	const snap_region *R = &J->s->L.regions[ri];
	uint64_t first = tm_snap_chunk_first(&J->s->L, c);
	uint64_t np = tm_snap_chunk_npages(&J->s->L, R, c);
	int rc = tm_snap_load_chunk(J->s, b, ri, c, err);

	if (rc)
		return rc;
	atomic_fetch_add(&J->data_bytes, b->stored_data);
	atomic_fetch_add(&J->tag_bytes, b->stored_tags);
	if (!J->dst)
		return 0;
	rc = place_chunk(J->dst[ri], b, first, np, err);
	if (rc)
		return tm_error_wrap(err, rc, "snapshot %s: placing region %u '%s' pages %" PRIu64 "-%" PRIu64,
				     J->s->f.path, ri, R->name, first, first + np - 1);
	return 0;
}

/* Run restore_chunk over every chunk (dst NULL: verify only). */
static int run_chunks(tm_snapshot *s, tm_region *const *dst,
		      const tm_snap_opts *o, bool keep_going,
		      tm_snap_stats *st, tm_error *err)
{
	struct restore_job J = { .s = s, .dst = dst };
	snap_pool p = { .L = &s->L, .threads = tm_snap_threads(o, TM_SNAP_READ_THREADS_DEFAULT), .fn = restore_chunk,
			.ctx = &J, .keep_going = keep_going };
	uint64_t t0 = tm_now_ns();
	int rc = 0;

	if (o && o->report) {
		p.on_error = o->report;
		p.on_error_ctx = o->report_ctx;
	}
	if (o && o->drop_cache)
		tm_sfile_drop_cache(&s->f);
	p.ws = calloc(p.threads, sizeof(void *));
	if (!p.ws)
		return tm_error_set(err, -ENOMEM, "snapshot: no memory for workers");
	for (unsigned i = 0; i < p.threads && !rc; i++) {
		p.ws[i] = calloc(1, sizeof(snap_loadbuf));
		rc = p.ws[i] ? tm_snap_loadbuf_init(p.ws[i], &s->L, true, err)
			     : tm_error_set(err, -ENOMEM, "snapshot: no memory for workers");
	}
	if (!rc)
		rc = tm_snap_pool_run(&p, err);
	for (unsigned i = 0; i < p.threads; i++) {
		if (p.ws[i])
			tm_snap_loadbuf_free(p.ws[i]);
		free(p.ws[i]);
	}
	free(p.ws);
	if (st) {
		memset(st, 0, sizeof(*st));
		count_stats(s, st);
		st->chunks = atomic_load(&p.done);
		st->bad_chunks = atomic_load(&p.failed);
		st->data_bytes = atomic_load(&J.data_bytes);
		st->tag_bytes = atomic_load(&J.tag_bytes);
		st->direct_io = s->f.direct;
		st->seconds = (double)(tm_now_ns() - t0) / 1e9;
	}
	return rc;
}

int tm_snapshot_restore(tm_snapshot *s, tm_region *const *dst, size_t n,
			const tm_snap_opts *uo, tm_snap_stats *st,
			tm_error *err)
{
	tm_snap_opts copy;
	const tm_snap_opts *o;
	int rc = tm_snap_opts_in(uo, &copy, &o, err);

	if (!rc)
		rc = tm_snap_check_dst(s, dst, n, err);
	if (rc)
		return rc;
	return run_chunks(s, dst, o, false, st, err);
}

int tm_snapshot_verify(tm_snapshot *s, const tm_snap_opts *uo,
		       tm_snap_stats *st, tm_error *err)
{
	tm_snap_opts copy;
	const tm_snap_opts *o;
	int rc = tm_snap_opts_in(uo, &copy, &o, err);

	return rc ? rc : run_chunks(s, NULL, o, true, st, err);
}

int tm_snapshot_check_digests(const tm_snapshot *s, tm_region *const *dst,
			      size_t n, tm_error *err)
{
	int rc;

	if (!(s->L.flags & TM_SNAP_DIGEST))
		return tm_error_set(err, -ENODATA, "snapshot %s: no digests were recorded at save",
				    s->f.path);
	rc = tm_snap_check_dst(s, dst, n, err);
	for (uint32_t i = 0; i < n && !rc; i++) {
		uint64_t d;

		rc = tm_region_digest(dst[i], &d, err);
		if (!rc && d != s->L.regions[i].digest)
			rc = tm_error_set(err, -EBADMSG,
					  "snapshot %s: region %u '%s' digest 0x%016" PRIx64 " differs from the recorded 0x%016" PRIx64,
					  s->f.path, i, s->L.regions[i].name, d,
					  s->L.regions[i].digest);
	}
	return rc;
}
