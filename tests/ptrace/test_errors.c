/*
 * test_errors.c - processes tagmem must refuse, each for real: one that is
 * gone, a zombie, one already traced by another process, one that is not
 * dumpable for an unprivileged tracer (with the same setup dumpable as the
 * control: so the refusal is about dumpable, not Yama or uids), a thread
 * id instead of a process id, tagmem itself, and a process without any
 * PROT_MTE mapping (no region set, no core, no snapshot file). Every error
 * names the process and says why; nothing is left traced.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>

#include "tagmem/ptrace.h"
#include "tests/ptrace/pt_test.h"

#define BASE UINT64_C(0x5a0000000000)

static void start(pt_proc *h, int n, ...)
{
	const char *maps[8];
	char why[256];
	va_list ap;

	pt_require();
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		maps[i] = va_arg(ap, const char *);
	va_end(ap);
	if (pt_spawn(h, maps, n, why, sizeof(why)))
		fail_msg("target did not start: %s", why);
}

static void expect_msg(const tm_error *err, const char *fmt, ...)
{
	char want[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	if (!strstr(err->msg, want))
		fail_msg("error '%s' does not say '%s'", err->msg, want);
}

static int tracer_of(int pid)
{
	char path[64], line[256];
	int t = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "TracerPid: %d", &t);
	if (f)
		fclose(f);
	return t;
}

static void test_gone(void **state)
{
	tm_ptrace *p;
	tm_error err;
	pid_t c;

	(void)state;
	pt_require();
	c = fork();
	if (c == 0)
		_exit(0);
	waitpid(c, NULL, 0);
	assert_int_equal(tm_ptrace_attach(c, &p, &err), -ESRCH);
	assert_null(p);
	expect_msg(&err, "no process %d", (int)c);
}

static void test_zombie(void **state)
{
	tm_ptrace *p;
	tm_error err;
	siginfo_t si;
	pid_t c;

	(void)state;
	pt_require();
	c = fork();
	if (c == 0)
		_exit(0);
	/* wait for the exit without reaping it */
	assert_int_equal(waitid(P_PID, (id_t)c, &si, WEXITED | WNOWAIT), 0);
	assert_int_equal(tm_ptrace_attach(c, &p, &err), -ESRCH);
	expect_msg(&err, "process %d", (int)c);
	expect_msg(&err, "has exited");
	waitpid(c, NULL, 0);
}

static void test_already_traced(void **state)
{
	char buf[128];
	int go[2];
	tm_ptrace *p;
	tm_error err;
	pt_proc h;
	pid_t tracer;

	(void)state;
	start(&h, 1, "5a0000000000:2:p");
	pt_ok(&h, "fill 4");
	assert_int_equal(pipe(go), 0);
	tracer = fork();
	if (tracer == 0) {
		char c = 0;

		if (ptrace(PTRACE_SEIZE, h.pid, NULL, NULL))
			_exit(1);
		if (write(go[1], &c, 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	assert_int_equal(read(go[0], buf, 1), 1);
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), -EPERM);
	expect_msg(&err, "already traced by process %d", (int)tracer);
	kill(tracer, SIGKILL);
	waitpid(tracer, NULL, 0);
	/* the other tracer gone, tagmem can attach; the target is intact */
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), 0);
	tm_ptrace_detach(p);
	assert_int_equal(tracer_of(h.pid), 0);
	assert_string_equal(pt_cmd(&h, buf, sizeof(buf), "check 4"), "ok");
	close(go[0]);
	close(go[1]);
	pt_end(&h);
}

/*
 * In a child that drops to uid 65534: start a target (its own child, so
 * Yama's scope 1 allows it), make it non-dumpable or not, and attach. The
 * child's exit status: 0 attached, 1 refused with "not dumpable", 2 other.
 */
static int unprivileged_attach(bool dumpable)
{
	pid_t c = fork();
	int st = 0;

	if (c == 0) {
		char why[256], buf[64];
		tm_ptrace *p;
		tm_error err;
		pt_proc h;
		int rc;

		if (setgid(65534) || setuid(65534))
			_exit(3);
		if (pt_spawn(&h, NULL, 0, why, sizeof(why)))
			_exit(4);
		if (!dumpable && strcmp(pt_cmd(&h, buf, sizeof(buf), "dumpable 0"), "ok"))
			_exit(5);
		rc = tm_ptrace_attach(h.pid, &p, &err);
		if (rc == 0)
			tm_ptrace_detach(p);
		pt_end(&h);
		if (rc == 0)
			_exit(0);
		printf("unprivileged attach: %s\n", err.msg);
		fflush(stdout);
		_exit(rc == -EPERM && strstr(err.msg, "not dumpable") ? 1 : 2);
	}
	waitpid(c, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

static void test_not_dumpable(void **state)
{
	struct stat st;

	(void)state;
	pt_require();
	if (geteuid() != 0)
		tm_test_skip(NULL, "needs root to drop to another uid for the "
			     "unprivileged tracer");
	/* the target must be executable by uid 65534 */
	assert_int_equal(stat(pt_target_path(), &st), 0);
	assert_int_equal(unprivileged_attach(true), 0);
	assert_int_equal(unprivileged_attach(false), 1);
}

static void test_thread_and_self(void **state)
{
	char buf[128];
	int tids[2];
	tm_ptrace *p;
	tm_error err;
	pt_proc h;

	(void)state;
	start(&h, 1, "5a0000000000:1:p");
	pt_cmd(&h, buf, sizeof(buf), "threads 2");
	assert_int_equal(sscanf(buf, "ok %d %d", &tids[0], &tids[1]), 2);
	assert_int_equal(tm_ptrace_attach(tids[1], &p, &err), -EINVAL);
	expect_msg(&err, "%d is a thread of process %d", tids[1], (int)h.pid);
	assert_int_equal(tm_ptrace_attach(getpid(), &p, &err), -EPERM);
	expect_msg(&err, "tagmem itself");
	assert_int_equal(tm_ptrace_attach(0, &p, &err), -EINVAL);
	pt_end(&h);
}

static void test_no_mte_mapping(void **state)
{
	char path[] = "/tmp/tm-ptrace-nomte-XXXXXX";
	char file[64], buf[64];
	tm_ptrace_set *set;
	tm_ptrace *p;
	tm_error err;
	pt_proc h;
	int fd;

	(void)state;
	start(&h, 1, "5a0000000000:4:n");
	pt_ok(&h, "fill 3");
	assert_non_null(mkdtemp(path));
	assert_int_equal(tm_ptrace_attach(h.pid, &p, &err), 0);
	assert_int_equal(tm_ptrace_set_create(p, TM_PTRACE_MTE, &set, &err), -ENOENT);
	assert_null(set);
	expect_msg(&err, "process %d has no PROT_MTE mapping", (int)h.pid);
	snprintf(file, sizeof(file), "%s/core", path);
	assert_int_equal(tm_ptrace_core_write(p, file, &err), -ENOENT);
	expect_msg(&err, "has no PROT_MTE mapping");
	snprintf(file, sizeof(file), "%s/snap", path);
	assert_int_equal(tm_ptrace_snapshot_save(p, file, NULL, NULL, &err), -ENOENT);
	expect_msg(&err, "has no PROT_MTE mapping");
	tm_ptrace_detach(p);
	/* nothing was written: neither file, nor a temporary one */
	snprintf(file, sizeof(file), "%s", path);
	fd = open(file, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(rmdir(path), 0);   /* fails if anything is in it */
	assert_string_equal(pt_cmd(&h, buf, sizeof(buf), "check 3"), "ok");
	pt_end(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gone),
		cmocka_unit_test(test_zombie),
		cmocka_unit_test(test_already_traced),
		cmocka_unit_test(test_not_dumpable),
		cmocka_unit_test(test_thread_and_self),
		cmocka_unit_test(test_no_mte_mapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
