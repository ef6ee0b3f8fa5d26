/*
 * lazy.c - lazy (Firecracker-style) restore with tags: every destination
 * region's pages are dropped and registered for lazy placement; the first
 * access to a page calls lazy_fill from the region's fault thread, which
 * loads the page's chunk through tm_snap_load_chunk (checksum first, so a bad
 * chunk places nothing and the faulting thread gets SIGBUS) and hands the
 * region the page's data and tags; the region installs the tags before the
 * data becomes visible.
 *
 * Each region keeps four decoded chunks (slot = chunk % 4) so sequential
 * or few-stream access decodes most chunks once. A mutex per region
 * guards the slots: the fill callback runs on that region's fault thread,
 * but nothing here depends on there being only one.
 */
#include "snapshot/snapint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#define LAZY_SLOTS 4

struct lazy_slot {
	int64_t chunk;          /* decoded chunk, or -1 */
	snap_loadbuf buf;
};

struct lazy_region {
	tm_snapshot_lazy *l;
	uint32_t ri;
	tm_region *r;
	bool started;
	pthread_mutex_t lock;
	struct lazy_slot slot[LAZY_SLOTS];
};

struct tm_snapshot_lazy {
	tm_snapshot *s;
	size_t n;
	struct lazy_region *lr;
	_Atomic uint64_t faults;
};

/* The slot holding chunk c, loading it if needed; NULL on error. */
static struct lazy_slot *lazy_chunk(struct lazy_region *lr, uint64_t c,
				    tm_error *err)
{
	struct lazy_slot *sl = &lr->slot[c % LAZY_SLOTS];

	if (sl->chunk == (int64_t)c)
		return sl;
	sl->chunk = -1;
	if (tm_snap_load_chunk(lr->l->s, &sl->buf, lr->ri, c, err) != 0)
		return NULL;
	sl->chunk = (int64_t)c;
	return sl;
}

static int lazy_fill(void *ctx, tm_region *r, size_t pg, void *data,
		     uint8_t *tags, bool *tagged, tm_error *err)
{
	struct lazy_region *lr = ctx;
	const snap_layout *L = &lr->l->s->L;
	size_t ps = L->geom.page_size, tb = tm_snap_tag_bytes(L);
	uint64_t c = pg / L->chunk_pages, k = pg % L->chunk_pages;
	struct lazy_slot *sl;

	(void)r;
	pthread_mutex_lock(&lr->lock);
	sl = lazy_chunk(lr, c, err);
	if (!sl) {
		pthread_mutex_unlock(&lr->lock);
		return err && err->code ? err->code : -EBADMSG;
	}
	memcpy(data, sl->buf.dptr[k] ? sl->buf.dptr[k] : tm_snap_zero_page, ps);
	*tagged = sl->buf.tptr[k] != NULL;
	/* an untagged region's tag buffer is not tb bytes: leave it alone */
	if (L->regions[lr->ri].flags & SNAP_REGION_TAGGED)
		memcpy(tags, *tagged ? sl->buf.tptr[k] : tm_snap_zero_page, tb);
	pthread_mutex_unlock(&lr->lock);
	atomic_fetch_add(&lr->l->faults, 1);
	return 0;
}

static void lazy_free(tm_snapshot_lazy *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct lazy_region *lr = &l->lr[i];

		for (int j = 0; j < LAZY_SLOTS; j++)
			tm_snap_loadbuf_free(&lr->slot[j].buf);
		pthread_mutex_destroy(&lr->lock);
	}
	free(l->lr);
	free(l);
}

static int lazy_region_start(tm_snapshot_lazy *l, size_t i, tm_region *r,
			     tm_error *err)
{
	struct lazy_region *lr = &l->lr[i];
	int rc = 0;

	lr->l = l;
	lr->ri = (uint32_t)i;
	lr->r = r;
	for (int j = 0; j < LAZY_SLOTS && !rc; j++) {
		lr->slot[j].chunk = -1;
		rc = tm_snap_loadbuf_init(&lr->slot[j].buf, &l->s->L, false, err);
	}
	/* Drop whatever the region holds so every page faults to the file. */
	if (!rc)
		rc = tm_region_discard(r, 0, tm_region_npages(r), err);
	if (!rc)
		rc = tm_region_lazy_start(r, lazy_fill, lr, err);
	lr->started = rc == 0;
	return rc;
}

int tm_snapshot_lazy_start(tm_snapshot *s, tm_region *const *dst, size_t n,
			   tm_snapshot_lazy **out, tm_error *err)
{
	tm_snapshot_lazy *l;
	int rc;

	*out = NULL;
	rc = tm_snap_check_dst(s, dst, n, err);
	if (rc)
		return rc;
	l = calloc(1, sizeof(*l));
	if (l)
		l->lr = calloc(n, sizeof(*l->lr));
	if (!l || !l->lr) {
		free(l);
		return tm_error_set(err, -ENOMEM, "snapshot: no memory for lazy restore");
	}
	l->s = s;
	l->n = n;
	for (size_t i = 0; i < n; i++)
		pthread_mutex_init(&l->lr[i].lock, NULL);
	for (size_t i = 0; i < n && !rc; i++) {
		rc = lazy_region_start(l, i, dst[i], err);
		if (rc)
			tm_error_wrap(err, rc, "snapshot %s: lazy restore of region %zu '%s'",
				      s->f.path, i, tm_region_name(dst[i]));
	}
	if (rc) {
		tm_snapshot_lazy_stop(l, NULL);
		return rc;
	}
	*out = l;
	return 0;
}

uint64_t tm_snapshot_lazy_faults(const tm_snapshot_lazy *l)
{
	return atomic_load(&l->faults);
}

int tm_snapshot_lazy_stop(tm_snapshot_lazy *l, tm_error *err)
{
	int first = 0;

	if (!l)
		return 0;
	for (size_t i = 0; i < l->n; i++) {
		struct lazy_region *lr = &l->lr[i];
		tm_error e;

		if (!lr->started)
			continue;
		tm_error_clear(&e);
		int rc = tm_region_lazy_error(lr->r, &e);
		tm_region_lazy_stop(lr->r);
		if (rc && !first) {
			first = rc;
			if (err)
				*err = e;
		}
	}
	lazy_free(l);
	return first;
}
