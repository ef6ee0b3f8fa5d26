/*
 * pt_test.h - what the ptrace tests share: starting the target program
 * (ptrace_target.c, path in $TM_PTRACE_TARGET) with its mappings, talking
 * to it, and the skip rule: these tests need a real arm64 kernel with MTE
 * that lets a process trace another one (make check-vm's guest). Natively
 * (no MTE) and under qemu-user (no ptrace) they skip with the reason,
 * through tests/test_skip.h, under the capabilities "ptrace" and "mte";
 * check-vm requires both, so a skip there is a failure.
 *
 * Include after <cmocka.h>. Header-only; single-threaded use.
 */
#ifndef TM_TESTS_PT_TEST_H
#define TM_TESTS_PT_TEST_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tagmem/ptrace.h"
#include "tagmem/region.h"
#include "tests/test_skip.h"
#include "pt_pattern.h"

typedef struct pt_proc {
	pid_t pid;
	FILE *to, *from;
} pt_proc;

static inline const char *pt_target_path(void)
{
	const char *p = getenv("TM_PTRACE_TARGET");

	if (!p)
		fail_msg("TM_PTRACE_TARGET is not set (tests/ptrace/meson.build sets it)");
	return p;
}

/* Start the target with mappings maps[0..n) ("ADDR:PAGES:KIND"); 0, or -1
 * with its first line in why. */
static inline int pt_spawn(pt_proc *h, const char *const *maps, int n,
			   char *why, size_t len)
{
	int in[2], out[2];
	char line[256];
	char *argv[20];

	snprintf(why, len, "%s", "no \"ready\" line (exec failed?)");
	if (pipe(in) || pipe(out))
		return -1;
	h->pid = fork();
	if (h->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		argv[0] = (char *)"ptrace_target";
		for (int i = 0; i < n && i < 18; i++)
			argv[i + 1] = (char *)maps[i];
		argv[n < 18 ? n + 1 : 19] = NULL;
		execv(pt_target_path(), argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	h->to = fdopen(in[1], "w");
	h->from = fdopen(out[0], "r");
	if (!fgets(line, sizeof(line), h->from) || strncmp(line, "ready ", 6)) {
		snprintf(why, len, "%s", line);
		return -1;
	}
	return 0;
}

/* Send one command, read the one-line reply into buf (newline removed). */
static inline const char *pt_cmd(pt_proc *h, char *buf, size_t len,
				 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(h->to, fmt, ap);
	va_end(ap);
	fputc('\n', h->to);
	fflush(h->to);
	if (!fgets(buf, (int)len, h->from))
		snprintf(buf, len, "%s", "<no reply: the target died>");
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

/* A command whose reply must be "ok". */
static inline void pt_ok(pt_proc *h, const char *fmt, ...)
{
	char cmd[256], buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	pt_cmd(h, buf, sizeof(buf), "%s", cmd);
	if (strncmp(buf, "ok", 2))
		fail_msg("target %d: '%s' answered '%s'", (int)h->pid, cmd, buf);
}

static inline uint64_t pt_ctrl(pt_proc *h)
{
	char buf[128];
	unsigned long long v = 0;

	pt_cmd(h, buf, sizeof(buf), "ctrl");
	if (sscanf(buf, "ctrl %llx", &v) != 1)
		fail_msg("target %d: ctrl answered '%s'", (int)h->pid, buf);
	return v;
}

/* Stop the target for good and reap it; its wait status. */
static inline int pt_end(pt_proc *h)
{
	int st = 0;

	if (h->pid > 0) {
		kill(h->pid, SIGKILL);
		waitpid(h->pid, &st, 0);
	}
	if (h->to)
		fclose(h->to);
	if (h->from)
		fclose(h->from);
	memset(h, 0, sizeof(*h));
	return st;
}

/* Let the target exit by itself ("exit"); its wait status. */
static inline int pt_exit(pt_proc *h)
{
	int st = 0;

	fputs("exit\n", h->to);
	fflush(h->to);
	waitpid(h->pid, &st, 0);
	fclose(h->to);
	fclose(h->from);
	memset(h, 0, sizeof(*h));
	return st;
}

/*
 * Skip unless this machine can run the tests: ptrace of a child works
 * (qemu-user has no ptrace: "ptrace"), then MTE (x86: "mte"). Checked by
 * really attaching to a child, so a broken detection cannot hide.
 */
static inline void pt_require(void)
{
	tm_ptrace *p;
	tm_error err;
	pid_t child = fork();
	int rc;

	if (child == 0) {
		pause();
		_exit(0);
	}
	assert_true(child > 0);
	rc = tm_ptrace_attach(child, &p, &err);
	if (rc == 0)
		tm_ptrace_detach(p);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	if (rc == -ENOSYS)
		tm_test_skip("ptrace", "%s", err.msg);
	if (rc)
		fail_msg("attaching to a child failed: %s", err.msg);
	if (!tm_mte_available())
		tm_test_skip("mte", "no MTE here (HWCAP2_MTE clear): no PROT_MTE "
			     "mappings to attach to");
}

#endif
