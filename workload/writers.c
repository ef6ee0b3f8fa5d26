/*
 * writers.c - the synthetic tagged workload's writer threads (see
 * writers.h): they dirty data and tags at a set rate and stop cleanly when
 * the migration pauses them. Filling regions with the page mix lives in
 * fill.c. Demo and test code, outside libtagmem.
 */
#include "workload/writers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

/* ---- writers ------------------------------------------------------ */

struct tm_workload {
	tm_region *regions[TM_MIGRATE_MAX_REGIONS];
	size_t n;
	tm_workload_config cfg;
	pthread_t *thr;
	unsigned started;
	atomic_bool stop;
	atomic_uint throttle;
	_Atomic uint64_t ops;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool want_pause;
	unsigned parked;
	tm_error err;
	int err_code;
};

struct writer {
	tm_workload *w;
	unsigned idx;
};

/* Park while a pause is requested; the mutex hand-off orders our earlier
 * writes before the migration's reads. */
static void checkpoint(tm_workload *w)
{
	pthread_mutex_lock(&w->lock);
	if (w->want_pause) {
		w->parked++;
		pthread_cond_broadcast(&w->cv);
		while (w->want_pause && !atomic_load(&w->stop))
			pthread_cond_wait(&w->cv, &w->lock);
		w->parked--;
	}
	pthread_mutex_unlock(&w->lock);
}

static int write_data(tm_workload *w, tm_region *r, size_t off, size_t len,
		      tm_rng *g, tm_error *err)
{
	uint8_t buf[256];

	tm_workload_random_bytes(g, buf, len);
	if (!w->cfg.ptr_writes)
		return tm_region_write(r, off, buf, len, err);
	/* One granule at a time: on mte each granule's pointer carries that
	 * granule's tag. */
	for (size_t i = 0; i < len; i += 16)
		memcpy(tm_region_ptr(r, off + i), buf + i, 16);
	return 0;
}

static int one_op(tm_workload *w, tm_rng *g, tm_error *err)
{
	tm_region *r = w->regions[tm_rng_below(g, w->n)];
	const tm_geom *geom = tm_region_geom(r);
	size_t ps = geom->page_size;
	size_t pg = tm_rng_below(g, tm_region_npages(r));
	size_t off = pg * ps + 16 * tm_rng_below(g, ps / 16 - 16);
	size_t len = 16 * (1 + tm_rng_below(g, 16));
	unsigned op = (unsigned)tm_rng_below(g, 100);
	bool tagged = geom->kind != TM_META_NONE;

	if (op < 50 || !tagged)
		return write_data(w, r, off, len, g, err);
	if (op < 90)
		return tm_region_set_tag_range(r, off, len,
					       (uint8_t)tm_rng_below(g, 16), err);
	int rc = tm_region_zero_page(r, pg, err);
	if (rc == 0 && op < 95)   /* half of the zeroed pages become tag-only */
		rc = tm_region_set_tag_range(r, off, len,
					     (uint8_t)(1 + tm_rng_below(g, 15)), err);
	return rc;
}

/* Ops per second for one writer at the current throttle. */
static double op_rate(tm_workload *w, unsigned throttle, size_t ps)
{
	return (double)w->cfg.dirty_rate / w->cfg.writers *
	       (100.0 - throttle) / 100.0 / (double)ps;
}

static void record(tm_workload *w, int rc, const tm_error *err)
{
	pthread_mutex_lock(&w->lock);
	if (!w->err_code) {
		w->err = *err;
		w->err_code = rc;
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

static void *writer_main(void *arg)
{
	struct writer *wr = arg;
	tm_workload *w = wr->w;
	size_t ps = tm_region_geom(w->regions[0])->page_size;
	uint64_t t0 = tm_now_ns(), done = 0;
	unsigned th = 0;
	tm_error err;
	tm_rng g;

	tm_error_clear(&err);
	tm_rng_seed(&g, w->cfg.seed * 1000003u + wr->idx);
	while (!atomic_load(&w->stop)) {
		checkpoint(w);
		if (atomic_load(&w->throttle) != th) {
			th = atomic_load(&w->throttle);   /* new rate, new clock */
			t0 = tm_now_ns();
			done = 0;
		}
		uint64_t due = t0 + (uint64_t)((double)done / op_rate(w, th, ps) * 1e9);
		uint64_t now = tm_now_ns();

		if (now < due) {
			/* Short sleeps so a pause request is seen promptly. */
			uint64_t d = due - now < 1000000u ? due - now : 1000000u;

			nanosleep(&(struct timespec){ 0, (long)d }, NULL);
			continue;
		}
		int rc = one_op(w, &g, &err);
		if (rc) {
			record(w, rc, &err);
			break;
		}
		done++;
		atomic_fetch_add(&w->ops, 1);
	}
	free(wr);
	return NULL;
}

int tm_workload_start(tm_workload **out, tm_region *const *regions, size_t n,
		      const tm_workload_config *cfg, tm_error *err)
{
	tm_workload *w;

	if (n < 1 || n > TM_MIGRATE_MAX_REGIONS)
		return tm_error_set(err, -EINVAL, "workload: %zu regions", n);
	w = calloc(1, sizeof(*w));
	if (!w)
		return tm_error_set(err, -ENOMEM, "workload: out of memory");
	memcpy(w->regions, regions, n * sizeof(*regions));
	w->n = n;
	w->cfg = *cfg;
	if (w->cfg.writers < 1)
		w->cfg.writers = 1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
	*out = w;
	if (w->cfg.dirty_rate == 0)
		return 0;   /* idle: nothing to run */
	w->thr = calloc(w->cfg.writers, sizeof(*w->thr));
	for (unsigned i = 0; w->thr && i < w->cfg.writers; i++) {
		struct writer *wr = malloc(sizeof(*wr));

		if (!wr)
			break;
		*wr = (struct writer){ w, i };
		if (pthread_create(&w->thr[i], NULL, writer_main, wr)) {
			free(wr);
			break;
		}
		w->started++;
	}
	if (w->started != w->cfg.writers) {
		tm_workload_stop(w, NULL);
		*out = NULL;
		return tm_error_set(err, -EAGAIN, "workload: cannot start writers");
	}
	return 0;
}

int tm_workload_stop(tm_workload *w, tm_error *err)
{
	int rc;

	if (!w)
		return 0;
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->stop, true);
	w->want_pause = false;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->started; i++)
		pthread_join(w->thr[i], NULL);
	rc = w->err_code;
	if (rc && err)
		*err = w->err;
	free(w->thr);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cv);
	free(w);
	return rc;
}

int tm_workload_pause(void *arg)
{
	tm_workload *w = arg;

	pthread_mutex_lock(&w->lock);
	w->want_pause = true;
	while (w->parked < w->started && !atomic_load(&w->stop)) {
		/* A writer that died on an error never parks: count it out. */
		if (w->err_code)
			break;
		pthread_cond_wait(&w->cv, &w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return w->err_code ? -EIO : 0;
}

void tm_workload_resume(void *arg)
{
	tm_workload *w = arg;

	pthread_mutex_lock(&w->lock);
	w->want_pause = false;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

void tm_workload_throttle(void *arg, unsigned percent)
{
	tm_workload *w = arg;

	atomic_store(&w->throttle, percent > 99 ? 99 : percent);
}

void tm_workload_hooks(tm_workload *w, tm_migrate_hooks *h)
{
	h->ctx = w;
	h->pause = tm_workload_pause;
	h->resume = tm_workload_resume;
	h->throttle = tm_workload_throttle;
}

uint64_t tm_workload_ops(const tm_workload *w)
{
	return atomic_load(&((tm_workload *)w)->ops);
}

bool tm_workload_ptr_tracking(void)
{
	tm_region_config rc = { .name = "probe", .size = 65536,
				.backend = TM_BACKEND_SOFT };
	tm_region *r;
	bool ok = false;

	if (tm_geom_init(&rc.geom, TM_META_NONE, 4096, 0, 0, NULL) ||
	    tm_region_create(&rc, &r, NULL))
		return false;
	if (tm_region_dirty_start(r, TM_DIRTY_AUTO, NULL) == 0) {
		ok = tm_region_dirty_method(r) != TM_DIRTY_API;
		tm_region_dirty_stop(r);
	}
	tm_region_destroy(r);
	return ok;
}
