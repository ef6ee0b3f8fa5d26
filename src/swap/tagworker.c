/*
 * tagworker.c - one helper thread per pager that does a large folio's tag
 * work while the calling thread does its I/O: on swap-out it builds and
 * stores the tag records while the data is written, on swap-in it decodes
 * them while the data is read. The two are independent: tags never go to
 * the file. On a machine with a spare CPU the tag work then costs no wall
 * time; on a busy one it costs what it would cost inline.
 *
 * One job at a time: a caller that finds the worker busy (another thread's
 * folio) does its tag work itself, and a caller whose job the worker has
 * not started by the time the I/O is done takes it back and does it itself.
 *
 * Why the worker polls. Waking a thread that sleeps in the kernel costs the
 * waker a futex_wake and, under virtualization, an IPI to a halted vCPU:
 * about 45 us of the caller's time per folio in this VM, as much as the tag
 * work it hands off (docs/BENCHMARKS.md, swap "Fourth session"). So after a
 * job the worker does not sleep: for POLL_WINDOW_NS it looks for the next
 * job every POLL_NS with a timed sleep, which costs its own CPU a timer
 * wake-up and the caller nothing - a post is a store under a mutex. Only
 * after the window (the range operation is over) does it sleep until
 * signalled. The same reasoning on the other side: a caller whose job is
 * running spins for it (the job is tens of microseconds) before sleeping.
 */
#include "swap/swap_internal.h"
#include "common/util.h"

#include <string.h>
#include <sys/prctl.h>
#include <time.h>

/* Shorter than a 2 MiB folio's write or read (300-700 us here), so the
 * worker finds the job early enough to finish it before the I/O does. */
#define POLL_NS 100000ull
/* Several folios' worth: back-to-back folios of a range keep it polling. */
#define POLL_WINDOW_NS 4000000ull
/* Longer than the largest job (a 2 MiB folio: about 60 us); past it the
 * worker has probably lost its CPU and the caller sleeps instead. */
#define SPIN_NS 200000ull

/* A spin-wait hint: lets the sibling hyperthread (or, under a hypervisor
 * with pause-loop exiting, another vCPU) have the core while we wait. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static int state_of(struct tm_tagworker *w)
{
	return atomic_load_explicit(&w->state, memory_order_acquire);
}

static void set_state(struct tm_tagworker *w, int s)
{
	atomic_store_explicit(&w->state, s, memory_order_release);
}

/* Wait for a posted job: poll, then sleep (see the top of the file).
 * Called and returns with the lock held. */
static void await_job(struct tm_tagworker *w, uint64_t last)
{
	while (!w->stop && state_of(w) != TM_TW_POSTED) {
		if (tm_now_ns() - last < POLL_WINDOW_NS) {
			struct timespec d = { 0, (long)POLL_NS };

			pthread_mutex_unlock(&w->lock);
			nanosleep(&d, NULL);
			pthread_mutex_lock(&w->lock);
			continue;
		}
		w->asleep = true;
		pthread_cond_wait(&w->cv, &w->lock);
		w->asleep = false;
	}
}

static void *worker_main(void *arg)
{
	struct tm_tagworker *w = arg;
	uint64_t last = 0;

	/* The default 50 us of timer slack would double the poll period. */
	prctl(PR_SET_TIMERSLACK, 1000ul, 0, 0, 0);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		await_job(w, last);
		if (w->stop)
			break;
		set_state(w, TM_TW_RUNNING);
		pthread_mutex_unlock(&w->lock);
		tm_error_clear(&w->err);
		w->rc = w->fn(w->arg, &w->err);
		pthread_mutex_lock(&w->lock);
		set_state(w, TM_TW_DONE);
		if (w->waiting)
			pthread_cond_broadcast(&w->cv);
		last = tm_now_ns();
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

void tm_tagworker_start(struct tm_tagworker *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
	atomic_init(&w->state, TM_TW_IDLE);
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
	if (state_of(w) == TM_TW_IDLE) {
		w->fn = fn;
		w->arg = arg;
		set_state(w, TM_TW_POSTED);
		if (w->asleep)
			pthread_cond_broadcast(&w->cv);
		taken = true;
	}
	pthread_mutex_unlock(&w->lock);
	return taken;
}

/* The job is running: spin for it a while, then sleep. */
static void await_done(struct tm_tagworker *w)
{
	uint64_t t0 = tm_now_ns();

	while (state_of(w) != TM_TW_DONE && tm_now_ns() - t0 < SPIN_NS)
		cpu_relax();
	if (state_of(w) == TM_TW_DONE)
		return;
	pthread_mutex_lock(&w->lock);
	w->waiting = true;
	while (state_of(w) != TM_TW_DONE)
		pthread_cond_wait(&w->cv, &w->lock);
	w->waiting = false;
	pthread_mutex_unlock(&w->lock);
}

int tm_tagworker_wait(struct tm_tagworker *w, tm_error *err, bool *ran)
{
	int rc = 0;

	pthread_mutex_lock(&w->lock);
	if (state_of(w) == TM_TW_POSTED) {
		/* Not started yet: take it back rather than wait for the
		 * worker's next look (or for the scheduler, on a busy
		 * machine). */
		set_state(w, TM_TW_IDLE);
		pthread_mutex_unlock(&w->lock);
		*ran = false;
		return 0;
	}
	pthread_mutex_unlock(&w->lock);
	await_done(w);
	rc = w->rc;
	if (rc && err)
		*err = w->err;
	*ran = true;
	set_state(w, TM_TW_IDLE);
	return rc;
}
