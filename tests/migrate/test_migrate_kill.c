/*
 * test_migrate_kill.c - the connection dies, or the destination process is
 * killed, at random moments of a migration. Each time the source returns an
 * error, its memory and tags are exactly what they were (digest before ==
 * after), its workload is resumed if it had been paused, the destination
 * (when alive) reports failure and holds no partial state, and a new
 * migration of the same regions then succeeds.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "tests/migrate/mig_test.h"

#define KSIZE (2u << 20)

/* Hooks that count, so a pause without a resume is caught. */
struct counter {
	int pauses, resumes;
};

static int c_pause(void *c) { ((struct counter *)c)->pauses++; return 0; }
static void c_resume(void *c) { ((struct counter *)c)->resumes++; }

static int64_t cut_run(mt_region *s, int64_t cut, int *src_rc, int *dst_rc,
		       struct counter *cnt, tm_error *src_err, tm_error *dst_err)
{
	mt_region d = { 0 };
	tm_migrate_config cfg;
	tm_migrate_hooks h = { .ctx = cnt, .pause = c_pause, .resume = c_resume };
	mt_dest dest;
	mt_proxy px;
	mt_source src;
	int64_t bytes;

	assert_int_equal(mt_region_new(&d, "ram", KSIZE, TM_META_MTE, 4096), 0);
	tm_migrate_config_default(&cfg);
	cfg.channels = 2;
	cfg.timeout_ms = 3000;
	assert_int_equal(mt_dest_start(&dest, &d.r, 1, &cfg), 0);
	assert_int_equal(mt_proxy_start(&px, dest.addr, 3, cut, -1), 0);
	mt_source_run(&src, px.addr, &s->r, 1, &cfg, &h);
	mt_dest_join(&dest);
	bytes = mt_proxy_join(&px);
	*src_rc = src.rc;
	*dst_rc = dest.rc;
	*src_err = src.err;
	*dst_err = dest.err;
	if (dest.rc)
		assert_true(mt_all_zero(d.r));
	mt_region_free(&d);
	return bytes;
}

static void connection_cut_at_random_points(void **state)
{
	mt_region s = { 0 };
	struct counter cnt = { 0 };
	tm_error se, de;
	int src_rc, dst_rc;
	tm_rng rng;
	int64_t total;

	(void)state;
	assert_int_equal(mt_region_new(&s, "ram", KSIZE, TM_META_MTE, 4096), 0);
	assert_int_equal(tm_workload_fill(s.r, 5, 25, 10, NULL), 0);
	uint64_t before = mt_digest64(s.r);
	total = cut_run(&s, -1, &src_rc, &dst_rc, &cnt, &se, &de);
	assert_int_equal(src_rc, 0);
	assert_int_equal(dst_rc, 0);
	tm_rng_seed(&rng, 99);
	/* 24 uniform points, plus 6 in the last 2 KiB: the paused handover. */
	for (int i = 0; i < 30; i++) {
		int64_t at = i < 24 ? (int64_t)tm_rng_below(&rng, (uint64_t)total) :
			     total - 1 - (int64_t)tm_rng_below(&rng, 2048);

		cnt = (struct counter){ 0 };
		cut_run(&s, at, &src_rc, &dst_rc, &cnt, &se, &de);
		if (src_rc == 0)
			fail_msg("cut at byte %lld of %lld: the source reported success",
				 (long long)at, (long long)total);
		assert_true(se.msg[0] != 0);
		assert_int_equal(cnt.pauses, cnt.resumes);
		assert_true(mt_digest64(s.r) == before);
	}
	/* A new migration can start. */
	cnt = (struct counter){ 0 };
	cut_run(&s, -1, &src_rc, &dst_rc, &cnt, &se, &de);
	if (src_rc || dst_rc)
		fail_msg("migration after the cuts: %s / %s", se.msg, de.msg);
	assert_int_equal(cnt.pauses, 1);
	assert_int_equal(cnt.resumes, 0);
	mt_region_free(&s);
}

/* The destination as a separate process, listening on addr. */
static pid_t dest_process(const char *addr)
{
	pid_t pid = fork();

	if (pid == 0) {
		mt_region d = { 0 };
		tm_migration *m;
		int lfd;

		if (mt_region_new(&d, "ram", 8 * KSIZE, TM_META_MTE, 4096) ||
		    tm_migrate_listen(addr, &lfd, NULL) ||
		    tm_migration_new(&m, TM_MIGRATE_DEST, NULL, NULL, NULL) ||
		    tm_migration_add_region(m, d.r, NULL) ||
		    tm_migration_set_listener(m, lfd, NULL))
			_exit(3);
		_exit(tm_migration_run(m, NULL, NULL) ? 1 : 0);
	}
	return pid;
}

struct killer {
	pid_t pid;
	unsigned delay_ms;
	pthread_t thr;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	usleep(k->delay_ms * 1000);
	kill(k->pid, SIGKILL);
	return NULL;
}

static void destination_process_killed(void **state)
{
	mt_region s = { 0 };
	tm_region *sr;
	tm_workload *w;
	tm_workload_config wc = { .dirty_rate = 16 << 20, .writers = 1, .seed = 3,
				  .ptr_writes = tm_workload_ptr_tracking() };
	tm_migrate_hooks h = { 0 };
	tm_migrate_config cfg;
	char addr[64];
	mt_source src;
	int status;
	tm_rng rng;

	(void)state;
	assert_int_equal(mt_region_new(&s, "ram", 8 * KSIZE, TM_META_MTE, 4096), 0);
	assert_int_equal(tm_workload_fill(s.r, 8, 25, 10, NULL), 0);
	sr = s.r;
	tm_migrate_config_default(&cfg);
	cfg.timeout_ms = 3000;
	cfg.max_bandwidth = 24 << 20;   /* ~0.5 s: time for the kill to land */
	snprintf(addr, sizeof(addr), "unix:/tmp/tagmem-test-kill-%d.sock", (int)getpid());
	tm_rng_seed(&rng, 7);
	for (int i = 0; i < 4; i++) {
		struct killer k = { .delay_ms = 20 + (unsigned)tm_rng_below(&rng, 250) };

		assert_int_equal(tm_workload_start(&w, &sr, 1, &wc, NULL), 0);
		tm_workload_hooks(w, &h);
		k.pid = dest_process(addr);
		assert_true(k.pid > 0);
		pthread_create(&k.thr, NULL, killer_main, &k);
		mt_source_run(&src, addr, &sr, 1, &cfg, &h);
		pthread_join(k.thr, NULL);
		waitpid(k.pid, &status, 0);
		if (!WIFSIGNALED(status))
			fail_msg("destination exited (%d) before the kill at %u ms; source: %s",
				 WEXITSTATUS(status), k.delay_ms, tm_error_msg(&src.err));
		if (src.rc == 0)
			fail_msg("destination killed after %u ms, source says success",
				 k.delay_ms);
		/* The workload runs on: its writers must be resumable and alive. */
		uint64_t ops = tm_workload_ops(w);
		usleep(20000);
		assert_true(tm_workload_ops(w) > ops);
		assert_int_equal(tm_workload_stop(w, NULL), 0);
	}
	/* And a new migration to a fresh destination process succeeds. */
	assert_int_equal(tm_workload_start(&w, &sr, 1, &wc, NULL), 0);
	tm_workload_hooks(w, &h);
	pid_t pid = dest_process(addr);
	cfg.max_bandwidth = 0;
	mt_source_run(&src, addr, &sr, 1, &cfg, &h);
	waitpid(pid, &status, 0);
	if (src.rc)
		fail_msg("migration after the kills: %s", tm_error_msg(&src.err));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(src.st.verified);
	assert_int_equal(tm_workload_stop(w, NULL), 0);
	unlink(addr + 5);
	mt_region_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(connection_cut_at_random_points),
		cmocka_unit_test(destination_process_killed),
	};

	signal(SIGPIPE, SIG_IGN);   /* the relay's own writes; tagmem uses MSG_NOSIGNAL */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
