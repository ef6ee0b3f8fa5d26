/*
 * test_crash.c - crash-safe save: a process killed (SIGKILL) at any point
 * of a save - while chunks are written, after the metadata, after the
 * fsync just before the rename, or at a random moment from outside - never
 * leaves a file under the final name, and an earlier snapshot under that
 * name survives intact. Real processes, real SIGKILL, real files.
 */
#include "snap_test.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static char dir[256];

struct kill_point {
	enum tm_snap_phase phase;
	uint64_t at;            /* DATA: chunks done */
};

static void kill_me(void *ctx, enum tm_snap_phase phase, uint64_t done,
		    uint64_t total)
{
	const struct kill_point *k = ctx;

	(void)total;
	if (phase == k->phase && (phase != TM_SNAP_PHASE_DATA || done == k->at))
		raise(SIGKILL);
}

static tm_region *workload(size_t npages)
{
	return st_region("crash", 4096, npages, true, 7, NULL);
}

/* In a child: save with a progress callback that kills the process. */
static void child_save(const char *path, struct kill_point *k, unsigned flags)
{
	tm_region *r = workload(512);
	tm_snap_opts o;
	tm_error err;

	tm_snap_opts_init(&o);
	o.flags = flags;
	o.chunk_bytes = 64 * 1024;
	o.progress = kill_me;
	o.progress_ctx = k;
	tm_snapshot_save(path, &r, 1, &o, NULL, &err);
	_exit(0);       /* not killed: the parent reports it */
}

static int count_tmp_files(const char *base)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char prefix[300];
	int n = 0;

	snprintf(prefix, sizeof(prefix), ".%s.tmp-", base);
	assert_non_null(d);
	while ((e = readdir(d)))
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static void remove_tmp_files(const char *base)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "rm -f '%s'/.'%s'.tmp-*", dir, base);
	assert_int_equal(system(cmd), 0);
}

static void run_killed(const char *path, struct kill_point *k, unsigned flags)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		child_save(path, k, flags);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("the save was not killed at phase %d/%llu (status 0x%x)",
			 k->phase, (unsigned long long)k->at, status);
}

static const struct kill_point points[] = {
	{ TM_SNAP_PHASE_DATA, 1 }, { TM_SNAP_PHASE_DATA, 17 },
	{ TM_SNAP_PHASE_DATA, 32 }, { TM_SNAP_PHASE_META, 0 },
	{ TM_SNAP_PHASE_SYNC, 0 },
};

/* No earlier file: after a kill at any phase there is no file at all. */
static void test_killed_leaves_no_file(void **state)
{
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/fresh.snap", dir);
	for (unsigned f = 0; f < 2; f++)
		for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
			struct kill_point k = points[i];

			run_killed(path, &k, f ? TM_SNAP_ZSTD : 0);
			assert_int_equal(access(path, F_OK), -1);
			assert_int_equal(errno, ENOENT);
			/* the temporary file is what a kill leaves behind */
			assert_int_equal(count_tmp_files("fresh.snap"), 1);
			remove_tmp_files("fresh.snap");
		}
}

/* An earlier snapshot under the final name survives a killed save. */
static void test_killed_keeps_old_file(void **state)
{
	tm_region *old = st_region("crash", 4096, 100, true, 1234, NULL);
	tm_region *dst;
	tm_snap_opts o;
	tm_snapshot *s;
	char path[512];
	tm_error err;

	(void)state;
	snprintf(path, sizeof(path), "%s/old.snap", dir);
	tm_snap_opts_init(&o);
	o.flags = TM_SNAP_DIGEST;
	assert_int_equal(tm_snapshot_save(path, &old, 1, &o, NULL, &err), 0);
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		struct kill_point k = points[i];

		run_killed(path, &k, 0);
		if (tm_snapshot_open(path, NULL, &s, &err))
			fail_msg("old file damaged by a killed save: %s", err.msg);
		assert_int_equal(tm_snapshot_verify(s, NULL, NULL, &err), 0);
		assert_int_equal(tm_snapshot_create_regions(s, TM_BACKEND_SOFT, &dst, &err), 0);
		assert_int_equal(tm_snapshot_restore(s, &dst, 1, NULL, NULL, &err), 0);
		assert_int_equal(tm_snapshot_check_digests(s, &dst, 1, &err), 0);
		assert_int_equal(st_digest(dst), st_digest(old));
		tm_region_destroy(dst);
		tm_snapshot_close(s);
		remove_tmp_files("old.snap");
	}
	tm_region_destroy(old);
}

/* Killed from outside at a random moment once the save has started. */
static void test_killed_from_outside(void **state)
{
	char path[512];
	tm_rng rng;
	int killed = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/outside.snap", dir);
	tm_rng_seed(&rng, (uint64_t)time(NULL));
	for (int round = 0; round < 4; round++) {
		int status;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			tm_region *r = workload(16384);   /* 64 MiB */
			tm_error err;

			tm_snapshot_save(path, &r, 1, NULL, NULL, &err);
			_exit(0);
		}
		pid_t reaped = 0;   /* the child may finish (and be reaped) before a file shows */

		while (count_tmp_files("outside.snap") == 0 &&
		       (reaped = waitpid(pid, &status, WNOHANG)) == 0)
			usleep(200);
		if (reaped != pid) {
			usleep((useconds_t)tm_rng_below(&rng, 5000));
			kill(pid, SIGKILL);
			assert_int_equal(waitpid(pid, &status, 0), pid);
		}
		if (WIFSIGNALED(status)) {
			killed++;
			assert_int_equal(access(path, F_OK), -1);
		} else {
			/* finished before the kill: then the file is whole */
			tm_snapshot *s;
			tm_error err;

			assert_int_equal(tm_snapshot_open(path, NULL, &s, &err), 0);
			assert_int_equal(tm_snapshot_verify(s, NULL, NULL, &err), 0);
			tm_snapshot_close(s);
			unlink(path);
		}
		remove_tmp_files("outside.snap");
	}
	print_message("%d of 4 saves killed from outside mid-save\n", killed);
	assert_true(killed >= 1);
}

ST_DIR_GROUP("crash")

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_killed_leaves_no_file),
		cmocka_unit_test(test_killed_keeps_old_file),
		cmocka_unit_test(test_killed_from_outside),
	};

	return cmocka_run_group_tests(tests, st_group_setup, st_group_teardown);
}
