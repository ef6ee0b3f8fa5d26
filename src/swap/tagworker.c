/*
 * tagworker.c - one helper thread per pager that does a large folio's tag
 * work while the calling thread does its I/O: on swap-out it builds and
 * stores the tag records while the data is written, on swap-in it decodes
 * them while the data is read. The two are independent: tags never go to
 * the file. On a machine with a spare CPU
 * the tag work then costs no wall time; on a busy one it costs what it
 * would cost inline. One job at a time: a caller that finds the worker busy
 * (another thread's folio) does its tag work itself, and a caller whose job
 * the worker has not even started when the I/O is done takes it back and
 * does it itself instead of waiting for the scheduler.
 */
#include "swap/swap_internal.h"

#include <string.h>

static void *worker_main(void *arg)
{
	struct tm_tagworker *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && !w->has_job)
			pthread_cond_wait(&w->cv, &w->lock);
		if (w->stop)
			break;
		w->has_job = false;
		pthread_mutex_unlock(&w->lock);
		tm_error_clear(&w->err);
		int rc = w->fn(w->arg, &w->err);
		pthread_mutex_lock(&w->lock);
		w->rc = rc;
		w->done = true;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

void tm_tagworker_start(struct tm_tagworker *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
	/* Without the thread every job simply runs inline. */
	w->started = pthread_create(&w->th, NULL, worker_main, w) == 0;
}

void tm_tagworker_stop(struct tm_tagworker *w)
{
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->th, NULL);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cv);
}

bool tm_tagworker_post(struct tm_tagworker *w, int (*fn)(void *, tm_error *),
		       void *arg)
{
	bool taken = false;

	if (!w->started)
		return false;
	pthread_mutex_lock(&w->lock);
	if (!w->busy) {
		w->busy = w->has_job = true;
		w->done = false;
		w->fn = fn;
		w->arg = arg;
		pthread_cond_broadcast(&w->cv);
		taken = true;
	}
	pthread_mutex_unlock(&w->lock);
	return taken;
}

int tm_tagworker_wait(struct tm_tagworker *w, tm_error *err, bool *ran)
{
	int rc = 0;

	pthread_mutex_lock(&w->lock);
	if (w->has_job) {
		/* Not started yet (no CPU for the worker: a busy machine).
		 * Take it back rather than wait for the scheduler. */
		w->has_job = false;
		*ran = false;
	} else {
		while (!w->done)
			pthread_cond_wait(&w->cv, &w->lock);
		rc = w->rc;
		if (rc && err)
			*err = w->err;
		*ran = true;
	}
	w->busy = false;
	pthread_mutex_unlock(&w->lock);
	return rc;
}
