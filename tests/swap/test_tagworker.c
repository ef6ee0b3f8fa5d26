/*
 * test_tagworker.c - the pager's tag worker (src/swap/tagworker.c), a real
 * thread: a posted job runs exactly once, either on the worker (ran) or,
 * taken back, by the caller; its return value and error come back only
 * when the worker ran it; a second post while one is outstanding is
 * refused; after the polling window the worker sleeps and a post still
 * wakes it; several threads sharing one worker never lose or double a job;
 * stop joins a worker that is polling or asleep.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "swap/swap_internal.h"

struct job {
	atomic_int runs;
	int rc;
	unsigned spin_us;           /* how long the job takes */
};

static void busy_us(unsigned us)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

static int job_fn(void *arg, tm_error *err)
{
	struct job *j = arg;

	atomic_fetch_add(&j->runs, 1);
	busy_us(j->spin_us);
	return j->rc ? tm_error_set(err, j->rc, "job failed on purpose") : 0;
}

/* Post, do "I/O" for io_us, collect; run it here if taken back. */
static int run_job(struct tm_tagworker *w, struct job *j, unsigned io_us,
		   tm_error *err, bool *ran)
{
	bool posted = tm_tagworker_post(w, job_fn, j);
	int rc = 0;

	*ran = false;
	busy_us(io_us);
	if (posted)
		rc = tm_tagworker_wait(w, err, ran);
	if (!*ran)
		rc = job_fn(j, err);
	return rc;
}

static void test_runs_once_either_way(void **state)
{
	struct tm_tagworker w;
	unsigned on_worker = 0;

	(void)state;
	tm_tagworker_start(&w);
	/* Long "I/O" lets the polling worker pick most jobs up; no I/O at
	 * all makes take-backs likely. Either way: exactly one run. */
	for (int i = 0; i < 200; i++) {
		struct job j = { .spin_us = 5 };
		tm_error err;
		bool ran;

		tm_error_clear(&err);
		assert_int_equal(run_job(&w, &j, i % 2 ? 400 : 0, &err, &ran), 0);
		assert_int_equal(atomic_load(&j.runs), 1);
		on_worker += ran;
	}
	/* A worker that never takes a job would pass the loop above. */
	assert_true(on_worker > 0);
	tm_tagworker_stop(&w);
}

static void test_error_comes_back(void **state)
{
	struct tm_tagworker w;
	bool seen_on_worker = false;

	(void)state;
	tm_tagworker_start(&w);
	for (int i = 0; i < 50 && !seen_on_worker; i++) {
		struct job j = { .rc = -EIO, .spin_us = 1 };
		tm_error err;
		bool ran;

		tm_error_clear(&err);
		assert_int_equal(run_job(&w, &j, 500, &err, &ran), -EIO);
		assert_non_null(strstr(err.msg, "on purpose"));
		assert_int_equal(atomic_load(&j.runs), 1);
		seen_on_worker = ran;
	}
	assert_true(seen_on_worker);
	tm_tagworker_stop(&w);
}

static void test_second_post_refused(void **state)
{
	struct tm_tagworker w;
	struct job a = { .spin_us = 2000 }, b = { 0 };
	bool ran;
	tm_error err;

	(void)state;
	tm_tagworker_start(&w);
	assert_true(tm_tagworker_post(&w, job_fn, &a));
	assert_false(tm_tagworker_post(&w, job_fn, &b));
	tm_error_clear(&err);
	assert_int_equal(tm_tagworker_wait(&w, &err, &ran), 0);
	if (!ran)
		job_fn(&a, &err);
	assert_int_equal(atomic_load(&a.runs), 1);
	assert_int_equal(atomic_load(&b.runs), 0);
	/* Collected: the worker takes a job again. */
	assert_true(tm_tagworker_post(&w, job_fn, &b));
	assert_int_equal(tm_tagworker_wait(&w, &err, &ran), 0);
	if (!ran)
		job_fn(&b, &err);
	assert_int_equal(atomic_load(&b.runs), 1);
	tm_tagworker_stop(&w);
}

/* Past the polling window the worker sleeps in cond_wait; a post must
 * still wake it (a lost wake-up would leave every later job to take-back,
 * which the count of jobs run on the worker catches). */
static void test_wakes_after_sleeping(void **state)
{
	struct tm_tagworker w;
	unsigned on_worker = 0;

	(void)state;
	tm_tagworker_start(&w);
	for (int i = 0; i < 3; i++) {
		struct job j = { .spin_us = 1 };
		struct timespec nap = { 0, 20 * 1000 * 1000 };   /* > window */
		tm_error err;
		bool ran;

		nanosleep(&nap, NULL);
		tm_error_clear(&err);
		/* 5 ms of "I/O": ample for a wake-up, even under ASan. */
		assert_int_equal(run_job(&w, &j, 5000, &err, &ran), 0);
		assert_int_equal(atomic_load(&j.runs), 1);
		on_worker += ran;
	}
	assert_true(on_worker >= 2);
	tm_tagworker_stop(&w);
}

struct racer {
	struct tm_tagworker *w;
	unsigned seed;
	long jobs, runs, on_worker;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < 300; i++) {
		struct job j = { .spin_us = (r->seed + (unsigned)i) % 7 };
		tm_error err;
		bool ran;

		tm_error_clear(&err);
		if (run_job(r->w, &j, (r->seed * 31u + (unsigned)i * 17u) % 150, &err, &ran))
			return NULL;
		r->jobs++;
		r->runs += atomic_load(&j.runs);
		r->on_worker += ran;
	}
	return NULL;
}

static void test_shared_by_threads(void **state)
{
	struct tm_tagworker w;
	pthread_t th[4];
	struct racer r[4];
	long on_worker = 0;

	(void)state;
	tm_tagworker_start(&w);
	for (unsigned i = 0; i < 4; i++) {
		r[i] = (struct racer){ .w = &w, .seed = i + 1 };
		assert_int_equal(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].jobs, 300);
		assert_int_equal(r[i].runs, 300);
		on_worker += r[i].on_worker;
	}
	assert_true(on_worker > 0);
	tm_tagworker_stop(&w);
}

static void test_stop_while_polling_or_asleep(void **state)
{
	struct tm_tagworker w;
	struct job j = { .spin_us = 1 };
	tm_error err;
	bool ran;

	(void)state;
	tm_tagworker_start(&w);
	tm_tagworker_stop(&w);          /* asleep: never had a job */
	tm_tagworker_start(&w);
	tm_error_clear(&err);
	assert_int_equal(run_job(&w, &j, 300, &err, &ran), 0);
	tm_tagworker_stop(&w);          /* polling: just had one */
	assert_int_equal(atomic_load(&j.runs), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_once_either_way),
		cmocka_unit_test(test_error_comes_back),
		cmocka_unit_test(test_second_post_refused),
		cmocka_unit_test(test_wakes_after_sleeping),
		cmocka_unit_test(test_shared_by_threads),
		cmocka_unit_test(test_stop_while_polling_or_asleep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
