/*
 * pool.c - the worker threads of save, restore and verify: each worker takes
 * the next chunk (one atomic counter over all regions' chunks, so regions
 * of any size spread over all workers) until none are left or one failed.
 * Workers are created per call and own their buffers (allocated by the
 * caller before the run, never per chunk).
 */
#include "snapshot/snapint.h"

#include "common/abi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

unsigned tm_snap_threads(const tm_snap_opts *o, unsigned dflt)
{
	unsigned t = o && o->threads ? o->threads : dflt;

	return t > 256 ? 256 : t;
}

int tm_snap_opts_in(const tm_snap_opts *uo, tm_snap_opts *copy,
		    const tm_snap_opts **o, tm_error *err)
{
	int rc;

	*o = NULL;
	if (!uo)
		return 0;
	rc = TM_ABI_COPY_IN(tm_snap_opts, copy, uo, err);
	if (!rc)
		*o = copy;
	return rc;
}

/* Region of global chunk index i (base is sorted). */
static uint32_t region_of(const snap_pool *p, uint64_t i)
{
	uint32_t lo = 0, hi = p->L->nregions;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (p->base[mid] <= i)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static void record_error(snap_pool *p, const tm_error *e)
{
	pthread_mutex_lock(&p->lock);
	if (p->first.code == 0)
		p->first = *e;
	if (p->on_error)
		p->on_error(p->on_error_ctx, e);
	pthread_mutex_unlock(&p->lock);
	atomic_fetch_add(&p->failed, 1);
}

struct worker_arg {
	snap_pool *p;
	unsigned id;
};

static void *pool_worker(void *arg)
{
	struct worker_arg *a = arg;
	snap_pool *p = a->p;
	tm_error e;

	for (;;) {
		uint64_t i = atomic_fetch_add(&p->next, 1);
		uint32_t ri;

		if (i >= p->total || (!p->keep_going && atomic_load(&p->failed)))
			break;
		ri = region_of(p, i);
		tm_error_clear(&e);
		if (p->fn(p, p->ws[a->id], ri, i - p->base[ri], &e) != 0) {
			if (e.code == 0)
				tm_error_set(&e, -EIO, "chunk %llu failed", (unsigned long long)i);
			record_error(p, &e);
		}
		uint64_t d = atomic_fetch_add(&p->done, 1) + 1;
		if (p->progress)
			p->progress(p->progress_ctx, TM_SNAP_PHASE_DATA, d, p->total);
	}
	return NULL;
}

static int build_base(snap_pool *p, tm_error *err)
{
	p->base = calloc(p->L->nregions + 1u, sizeof(uint64_t));
	if (!p->base)
		return tm_error_set(err, -ENOMEM, "snapshot: no memory for the chunk index");
	for (uint32_t i = 0; i < p->L->nregions; i++)
		p->base[i + 1] = p->base[i] + p->L->regions[i].nchunks;
	p->total = p->base[p->L->nregions];
	return 0;
}

int tm_snap_pool_run(snap_pool *p, tm_error *err)
{
	unsigned n = p->threads ? p->threads : 1, started = 0;
	struct worker_arg *args = NULL;
	pthread_t *tids = NULL;
	int rc;

	atomic_store(&p->next, 0);
	atomic_store(&p->done, 0);
	atomic_store(&p->failed, 0);
	tm_error_clear(&p->first);
	pthread_mutex_init(&p->lock, NULL);
	rc = build_base(p, err);
	if (rc)
		goto out;
	tids = calloc(n, sizeof(*tids));
	args = calloc(n, sizeof(*args));
	if (!tids || !args) {
		rc = tm_error_set(err, -ENOMEM, "snapshot: no memory for %u workers", n);
		goto out;
	}
	for (; started < n; started++) {
		args[started] = (struct worker_arg){ p, started };
		rc = -pthread_create(&tids[started], NULL, pool_worker, &args[started]);
		if (rc) {
			tm_error e;

			tm_error_set(&e, rc, "snapshot: cannot start worker %u: %s",
				     started, strerror(-rc));
			record_error(p, &e);
			break;
		}
	}
	if (p->meanwhile) {
		tm_error e;

		tm_error_clear(&e);
		if (p->meanwhile(p, &e) != 0)
			record_error(p, &e);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	rc = p->first.code;
	if (rc && err)
		*err = p->first;
out:
	free(tids);
	free(args);
	free(p->base);
	p->base = NULL;
	pthread_mutex_destroy(&p->lock);
	return rc;
}
