/*
 * bench_ptrace.c - how fast a live process's PROT_MTE memory is saved and
 * restored through the ptrace backend, with its baseline measured in the
 * same run: one pread of the same bytes from /proc/PID/mem (the data path
 * alone, no tags, no file). Not a test (timings are not checked); run on
 * an MTE kernel, e.g.
 *   scripts/vm/run-in-vm build-aarch64 -- tests/ptrace/bench_ptrace \
 *       tests/ptrace/ptrace_target 64 /tmp/bench.snap
 * One JSON object on stdout.
 */
#include <fcntl.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tagmem/ptrace.h"
#include "tagmem/snapshot.h"

#define BASE 0x5a0000000000ull

struct proc { pid_t pid; FILE *to, *from; };

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int spawn(struct proc *h, const char *target, const char *spec)
{
	char line[256];
	int a[2], b[2];

	if (pipe(a) || pipe(b))
		return -1;
	h->pid = fork();
	if (h->pid == 0) {
		dup2(a[0], 0);
		dup2(b[1], 1);
		execl(target, "ptrace_target", spec, (char *)NULL);
		_exit(127);
	}
	close(a[0]);
	close(b[1]);
	h->to = fdopen(a[1], "w");
	h->from = fdopen(b[0], "r");
	return fgets(line, sizeof(line), h->from) && !strncmp(line, "ready", 5) ? 0 : -1;
}

static int cmd(struct proc *h, const char *c)
{
	char line[256];

	fprintf(h->to, "%s\n", c);
	fflush(h->to);
	return fgets(line, sizeof(line), h->from) && !strncmp(line, "ok", 2) ? 0 : -1;
}

static void end(struct proc *h)
{
	kill(h->pid, SIGKILL);
	waitpid(h->pid, NULL, 0);
	fclose(h->to);
	fclose(h->from);
}

static double baseline(pid_t pid, size_t len)
{
	char path[64];
	char *buf = malloc(len);
	double t0, t1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY);
	t0 = now();
	if (fd < 0 || !buf || pread(fd, buf, len, (off_t)BASE) != (ssize_t)len)
		t0 = -1;
	t1 = now();
	if (fd >= 0)
		close(fd);
	free(buf);
	return t0 < 0 ? -1 : t1 - t0;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 64, len = mib << 20;
	const char *file = argc > 3 ? argv[3] : "/tmp/bench_ptrace.snap";
	char spec[64];
	struct proc a, b;
	tm_snapshot *s;
	tm_ptrace *p;
	tm_error err;
	double t0, save, restore, base;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_ptrace TARGET [MIB] [FILE]\n");
		return 2;
	}
	snprintf(spec, sizeof(spec), "%llx:%zu:p", BASE, len / (size_t)sysconf(_SC_PAGESIZE));
	if (spawn(&a, argv[1], spec) || cmd(&a, "fill 1") || tm_ptrace_attach(a.pid, &p, &err))
		return fprintf(stderr, "bench_ptrace: source: %s\n", err.msg), 1;
	t0 = now();
	rc = tm_ptrace_snapshot_save(p, file, NULL, NULL, &err);
	save = now() - t0;
	tm_ptrace_detach(p);
	end(&a);
	if (rc || spawn(&b, argv[1], spec) || cmd(&b, "fill 2") ||
	    tm_snapshot_open(file, NULL, &s, &err) || tm_ptrace_attach(b.pid, &p, &err))
		return fprintf(stderr, "bench_ptrace: %s\n", err.msg), 1;
	t0 = now();
	rc = tm_ptrace_snapshot_restore(p, s, NULL, NULL, &err);
	restore = now() - t0;
	tm_ptrace_detach(p);
	tm_snapshot_close(s);
	if (rc || cmd(&b, "check 1"))
		return fprintf(stderr, "bench_ptrace: restore: %s\n", err.msg), 1;
	base = baseline(b.pid, len);
	end(&b);
	unlink(file);
	printf("{\"bench\":\"ptrace\",\"bytes\":%zu,\"save_mb_s\":%.1f,\"restore_mb_s\":%.1f,"
	       "\"baseline_proc_mem_pread_mb_s\":%.1f,\"verified\":true}\n", len,
	       (double)len / 1e6 / save, (double)len / 1e6 / restore,
	       base > 0 ? (double)len / 1e6 / base : 0.0);
	return 0;
}
