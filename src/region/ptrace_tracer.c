/*
 * ptrace_tracer.c - attaching to another process (tagmem/ptrace.h): the
 * tracer thread that seizes and stops every thread of it, runs the tag and
 * register requests of the other threads (ptrace answers only the thread
 * that attached), and lets the process go again; the data path through
 * /proc/PID/mem; the tagged-address control word.
 *
 * Attach: PTRACE_SEIZE then PTRACE_INTERRUPT each thread listed in
 * /proc/PID/task and wait for it to stop, and list again until no new
 * thread turns up (a thread can be cloned between the listing and the
 * stop of its parent; once every listed thread is stopped none can be
 * created). A thread that was in a group-stop (SIGSTOP) reports it; one
 * that caught a signal on the way reports a signal-delivery-stop, and that
 * signal is handed back to it at detach so nothing is lost.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "region/ptrace_internal.h"
#include "tagmem/tags.h"

/* The requests of arch/arm64/include/uapi/asm/ptrace.h and the regset of
 * include/uapi/linux/elf.h (checked against Linux 6.12's; the cross
 * headers may be older). Only arm64 has them: on x86, ptrace request 33
 * is PTRACE_SINGLEBLOCK, so they are never issued elsewhere. */
#define TM_PTRACE_PEEKMTETAGS 33
#define TM_PTRACE_POKEMTETAGS 34
#define TM_NT_ARM_TAGGED_ADDR_CTRL 0x409
#define TM_NT_PRSTATUS 1
#if defined(__aarch64__) && defined(PT_PEEKMTETAGS)
_Static_assert(TM_PTRACE_PEEKMTETAGS == PTRACE_PEEKMTETAGS &&
	       TM_PTRACE_POKEMTETAGS == PTRACE_POKEMTETAGS, "ptrace requests");
#endif
#ifdef NT_ARM_TAGGED_ADDR_CTRL
_Static_assert(TM_NT_ARM_TAGGED_ADDR_CTRL == NT_ARM_TAGGED_ADDR_CTRL, "regset");
#endif

/* How long a thread may take to stop after PTRACE_INTERRUPT (one stuck in
 * an uninterruptible kernel wait does not stop until it leaves it). */
#define STOP_TIMEOUT_NS (10ull * 1000000000ull)

static long sys_ptrace(long req, long pid, uint64_t addr, void *data)
{
	return syscall(SYS_ptrace, req, pid, (void *)(uintptr_t)addr, data);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- /proc/PID/status ------------------------------------------------ */

struct pstatus {
	char state;
	int tgid, tracer, threads;
	unsigned ruid, euid;
	char name[64];
};

static int read_status(int pid, struct pstatus *s)
{
	char path[64], line[256];
	FILE *f;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Name: %63s", s->name) == 1 ||
		    sscanf(line, "State: %c", &s->state) == 1 ||
		    sscanf(line, "Tgid: %d", &s->tgid) == 1 ||
		    sscanf(line, "TracerPid: %d", &s->tracer) == 1 ||
		    sscanf(line, "Threads: %d", &s->threads) == 1 ||
		    sscanf(line, "Uid: %u %u", &s->ruid, &s->euid) == 2)
			continue;
	}
	fclose(f);
	return 0;
}

static int read_int_file(const char *path, int *v)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%d", v) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

/* PTRACE_SEIZE said EPERM: find out why, so the message can say it. */
static int explain_eperm(int pid, tm_error *err)
{
	struct pstatus s;
	struct stat st;
	char path[64];
	int scope = -1;

	if (read_status(pid, &s))
		return tm_error_set(err, -EPERM, "process %d cannot be traced "
				    "(PTRACE_SEIZE: %s)", pid, strerror(EPERM));
	if (s.tracer)
		return tm_error_set(err, -EPERM, "process %d (%s) is already traced "
				    "by process %d (TracerPid in /proc/%d/status): a "
				    "process has one tracer at a time; detach it first "
				    "(a debugger may leave it stopped: tagmem attaches to "
				    "a stopped process and leaves it stopped)", pid,
				    s.name, s.tracer, pid);
	/* a non-dumpable process's files (not its directory) belong to root */
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	read_int_file("/proc/sys/kernel/yama/ptrace_scope", &scope);
	if (geteuid() != 0 && stat(path, &st) == 0 && st.st_uid == 0 &&
	    s.ruid == geteuid())
		return tm_error_set(err, -EPERM, "process %d (%s) is not dumpable "
				    "(PR_SET_DUMPABLE 0, or it changed credentials): "
				    "only a tracer with CAP_SYS_PTRACE may attach to it",
				    pid, s.name);
	if (geteuid() != 0 && s.ruid != geteuid())
		return tm_error_set(err, -EPERM, "process %d (%s) belongs to uid %u, "
				    "tagmem runs as uid %u: tracing it needs "
				    "CAP_SYS_PTRACE", pid, s.name, s.ruid, geteuid());
	if (scope >= 1)
		return tm_error_set(err, -EPERM, "process %d (%s) cannot be traced: "
				    "kernel.yama.ptrace_scope is %d (%s)", pid, s.name,
				    scope, scope == 1 ? "only descendants, or a process "
				    "that allowed it with PR_SET_PTRACER" : scope == 2 ?
				    "only with CAP_SYS_PTRACE" : "ptrace is disabled");
	return tm_error_set(err, -EPERM, "process %d (%s) cannot be traced "
			    "(PTRACE_SEIZE: %s; a security module may refuse it)",
			    pid, s.name, strerror(EPERM));
}

/* ---- seizing and releasing threads ------------------------------------ */

static bool known_tid(const tm_ptrace *p, int tid)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->tids[i] == tid)
			return true;
	return false;
}

static int add_tid(tm_ptrace *p, int tid, int sig)
{
	if (p->nthreads == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 8;
		int *t = realloc(p->tids, cap * sizeof(int));

		if (!t)
			return -ENOMEM;
		p->tids = t;
		t = realloc(p->sig, cap * sizeof(int));
		if (!t)
			return -ENOMEM;
		p->sig = t;
		p->cap = cap;
	}
	p->tids[p->nthreads] = tid;
	p->sig[p->nthreads++] = sig;
	return 0;
}

static bool is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* Wait for tid to stop after PTRACE_INTERRUPT. 1: it exited instead. */
static int wait_stop(tm_ptrace *p, int tid, int *sig, tm_error *err)
{
	uint64_t t0 = now_ns();
	struct timespec nap = { 0, 200000 };
	int st;

	for (;;) {
		pid_t w = waitpid(tid, &st, __WALL | WNOHANG);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return tm_error_set(err, -errno, "process %d: waitpid for "
					    "thread %d: %s", p->pid, tid, strerror(errno));
		if (w == tid)
			break;
		if (now_ns() - t0 > STOP_TIMEOUT_NS)
			return tm_error_set(err, -ETIMEDOUT, "process %d: thread %d "
					    "did not stop within %llu s of PTRACE_INTERRUPT "
					    "(an uninterruptible wait in the kernel?)", p->pid,
					    tid, STOP_TIMEOUT_NS / 1000000000ull);
		nanosleep(&nap, NULL);
	}
	if (WIFEXITED(st) || WIFSIGNALED(st))
		return 1;
	*sig = 0;
	if (WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_STOP) {
		if (is_stop_signal(WSTOPSIG(st)))
			p->was_stopped = true;
	} else if (WIFSTOPPED(st) && (st >> 16) == 0) {
		*sig = WSTOPSIG(st);   /* signal-delivery-stop: give it back later */
	}
	return 0;
}

/* 0: seized and stopped; 1: the thread is gone; < 0: error. */
static int seize_one(tm_ptrace *p, int tid, tm_error *err)
{
	int sig = 0, rc;

	if (sys_ptrace(PTRACE_SEIZE, tid, 0, NULL)) {
		if (errno == ESRCH && tid != p->pid)
			return 1;
		if (errno == ESRCH)
			return tm_error_set(err, -ESRCH, "process %d exited while tagmem "
					    "attached", p->pid);
		if (errno == ENOSYS)
			return tm_error_set(err, -ENOSYS, "process %d: ptrace is not "
					    "available here (ENOSYS: an emulator such as "
					    "qemu-user runs no tracer)", p->pid);
		if (errno == EPERM)
			return explain_eperm(p->pid, err);
		return tm_error_set(err, -errno, "process %d: PTRACE_SEIZE of thread "
				    "%d: %s", p->pid, tid, strerror(errno));
	}
	if (sys_ptrace(PTRACE_INTERRUPT, tid, 0, NULL) && errno != ESRCH)
		return tm_error_set(err, -errno, "process %d: PTRACE_INTERRUPT of "
				    "thread %d: %s", p->pid, tid, strerror(errno));
	rc = wait_stop(p, tid, &sig, err);
	if (rc < 0) {
		sys_ptrace(PTRACE_DETACH, tid, 0, NULL);
		return rc;
	}
	if (rc == 1)
		return 1;
	if (add_tid(p, tid, sig)) {
		sys_ptrace(PTRACE_DETACH, tid, 0, (void *)(uintptr_t)sig);
		return tm_error_set(err, -ENOMEM, "process %d: no memory", p->pid);
	}
	return 0;
}

/* One pass over /proc/PID/task; *added counts threads seized now. */
static int seize_pass(tm_ptrace *p, int *added, tm_error *err)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int rc = 0;

	*added = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", p->pid);
	dir = opendir(path);
	if (!dir)
		return tm_error_set(err, errno == ENOENT ? -ESRCH : -errno,
				    "process %d: %s: %s", p->pid, path, strerror(errno));
	/* the leader first, so tids[0] is the process itself */
	if (!known_tid(p, p->pid)) {
		rc = seize_one(p, p->pid, err);
		*added += rc == 0;
		rc = rc < 0 ? rc : 0;
	}
	while (rc == 0 && (d = readdir(dir))) {
		int tid = atoi(d->d_name);

		if (tid <= 0 || known_tid(p, tid))
			continue;
		rc = seize_one(p, tid, err);
		*added += rc == 0;
		rc = rc < 0 ? rc : 0;
	}
	closedir(dir);
	return rc;
}

static void release_all(tm_ptrace *p)
{
	for (size_t i = 0; i < p->nthreads; i++)
		sys_ptrace(PTRACE_DETACH, p->tids[i], 0,
			   (void *)(uintptr_t)p->sig[i]);
	p->nthreads = 0;
}

static int seize_all(tm_ptrace *p, tm_error *err)
{
	int added = 0, rc;

	for (unsigned round = 0; round < 1000; round++) {
		rc = seize_pass(p, &added, err);
		if (rc)
			return rc;
		if (!added)
			break;
	}
	if (added)
		return tm_error_set(err, -EAGAIN, "process %d: new threads kept "
				    "appearing while tagmem stopped the others", p->pid);
	if (p->nthreads == 0 || p->tids[0] != p->pid)
		return tm_error_set(err, -ESRCH, "process %d exited while tagmem "
				    "attached", p->pid);
	return 0;
}

/* ---- the tracer thread ------------------------------------------------- */

#if defined(__aarch64__)
static int tid_of(const tm_ptrace *p, size_t i, tm_error *err)
{
	if (i >= p->nthreads)
		return tm_error_set(err, -EINVAL, "process %d has %zu threads, no "
				    "thread %zu", p->pid, p->nthreads, i);
	return p->tids[i];
}

static int tags_io(tm_ptrace *p, struct pt_req *r)
{
	long req = r->op == PT_PEEK ? TM_PTRACE_PEEKMTETAGS : TM_PTRACE_POKEMTETAGS;
	const char *name = r->op == PT_PEEK ? "PTRACE_PEEKMTETAGS" : "PTRACE_POKEMTETAGS";
	size_t done = 0;

	while (done < r->len) {
		struct iovec iov = { r->buf + done, r->len - done };
		uint64_t at = r->addr + done * TM_MTE_GRANULE;

		if (sys_ptrace(req, p->tids[0], at, &iov)) {
			int e = errno;

			return tm_error_set(r->err, e == ESRCH ? -ESRCH : -EIO,
					    "process %d: %s at 0x%" PRIx64 " (%zu granules): "
					    "%s", p->pid, name, at, r->len - done,
					    e == EIO ? "no tags there (not mapped PROT_MTE, "
					    "or not accessible)" : strerror(e));
		}
		if (iov.iov_len == 0 || iov.iov_len > r->len - done)
			return tm_error_set(r->err, -EIO, "process %d: %s at 0x%" PRIx64
					    " moved %zu of %zu granules", p->pid, name, at,
					    (size_t)iov.iov_len, r->len - done);
		done += iov.iov_len;   /* short: go on where it stopped */
	}
	return 0;
}

static int regset_io(tm_ptrace *p, struct pt_req *r)
{
	long req = r->op == PT_GETREGSET ? PTRACE_GETREGSET : PTRACE_SETREGSET;
	int tid = tid_of(p, r->thread, r->err);
	struct iovec iov = { r->buf, r->len };

	if (tid < 0)
		return tid;
	if (sys_ptrace(req, tid, r->regset, &iov)) {
		int e = errno;

		return tm_error_set(r->err, -e, "process %d thread %d: %s regset "
				    "0x%x: %s", p->pid, tid,
				    r->op == PT_GETREGSET ? "PTRACE_GETREGSET" :
				    "PTRACE_SETREGSET", r->regset, strerror(e));
	}
	if (iov.iov_len != r->len)
		return tm_error_set(r->err, -EIO, "process %d thread %d: regset 0x%x "
				    "has %zu bytes, expected %zu", p->pid, tid,
				    r->regset, (size_t)iov.iov_len, r->len);
	return 0;
}
#endif

static int serve(tm_ptrace *p, struct pt_req *r)
{
#if defined(__aarch64__)
	if (r->op == PT_PEEK || r->op == PT_POKE)
		return tags_io(p, r);
	return regset_io(p, r);
#else
	return tm_error_set(r->err, -ENOTSUP, "process %d: MTE tags and the "
			    "arm64 regsets exist only on arm64 Linux", p->pid);
#endif
}

static void *tracer_main(void *arg)
{
	tm_ptrace *p = arg;
	int rc = seize_all(p, &p->attach_err);

	if (rc)
		release_all(p);
	pthread_mutex_lock(&p->lock);
	p->attach_rc = rc;
	p->attach_done = true;
	pthread_cond_broadcast(&p->cv);
	while (rc == 0) {
		struct pt_req *r;

		while (!p->req && !p->quit)
			pthread_cond_wait(&p->cv, &p->lock);
		if (!p->req)
			break;
		r = p->req;
		pthread_mutex_unlock(&p->lock);
		r->rc = serve(p, r);
		pthread_mutex_lock(&p->lock);
		r->done = true;
		p->req = NULL;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->lock);
	release_all(p);
	return NULL;
}

int tm_ptrace_call(tm_ptrace *p, struct pt_req *r)
{
	pthread_mutex_lock(&p->call);
	pthread_mutex_lock(&p->lock);
	r->done = false;
	r->rc = 0;
	p->req = r;
	pthread_cond_broadcast(&p->cv);
	while (!r->done)
		pthread_cond_wait(&p->cv, &p->lock);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->call);
	return r->rc;
}

/* ---- tags --------------------------------------------------------------- */

int tm_ptrace_peek(tm_ptrace *p, uint64_t addr, uint8_t *unpacked,
		   size_t ngran, tm_error *err)
{
	struct pt_req r = { .op = PT_PEEK, .addr = addr, .buf = unpacked,
			    .len = ngran, .err = err };

	return tm_ptrace_call(p, &r);
}

int tm_ptrace_poke(tm_ptrace *p, uint64_t addr, const uint8_t *unpacked,
		   size_t ngran, tm_error *err)
{
	struct pt_req r = { .op = PT_POKE, .addr = addr, .buf = (uint8_t *)unpacked,
			    .len = ngran, .err = err };

	return tm_ptrace_call(p, &r);
}

/* ---- data ------------------------------------------------------------------ */

static int mem_error(tm_ptrace *p, bool write, uint64_t addr, int e,
		     tm_error *err)
{
	return tm_error_set(err, e ? -e : -EIO, "process %d: %s /proc/%d/mem at "
			    "0x%" PRIx64 ": %s", p->pid, write ? "writing" : "reading",
			    p->pid, addr, e == EIO || e == 0 ? "the kernel cannot "
			    "hand out that page (not mapped, or past the end of a "
			    "file mapping)" : strerror(e));
}

static int mem_rw(tm_ptrace *p, bool write, uint64_t addr, uint8_t *buf,
		  size_t len, tm_error *err)
{
	while (len) {
		ssize_t n = write ? pwrite(p->mem_fd, buf, len, (off_t)addr)
				  : pread(p->mem_fd, buf, len, (off_t)addr);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return mem_error(p, write, addr, n < 0 ? errno : 0, err);
		addr += (uint64_t)n;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int tm_ptrace_mem_read(tm_ptrace *p, uint64_t addr, void *buf, size_t len,
		       bool lenient, tm_error *err)
{
	uint8_t *b = buf;
	int rc = mem_rw(p, false, addr, b, len, err);

	if (rc != -EIO || !lenient)
		return rc;
	/* page by page: the pages the kernel cannot hand out become holes */
	while (len) {
		size_t in = p->page_size - (size_t)(addr % p->page_size);
		size_t k = in < len ? in : len;

		rc = mem_rw(p, false, addr, b, k, err);
		if (rc == -EIO)
			memset(b, 0, k);
		else if (rc)
			return rc;
		addr += k;
		b += k;
		len -= k;
	}
	tm_error_clear(err);
	return 0;
}

int tm_ptrace_mem_write(tm_ptrace *p, uint64_t addr, const void *buf,
			size_t len, tm_error *err)
{
	return mem_rw(p, true, addr, (uint8_t *)buf, len, err);
}

/* ---- auxv ----------------------------------------------------------------- */

int tm_ptrace_read_auxv(tm_ptrace *p, uint8_t *buf, size_t cap, size_t *len,
			tm_error *err)
{
	char path[64];
	size_t got = 0;
	int fd, rc = 0;

	*len = 0;
	snprintf(path, sizeof(path), "/proc/%d/auxv", p->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tm_error_set(err, -errno, "process %d: %s: %s", p->pid, path,
				    strerror(errno));
	for (;;) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = tm_error_set(err, -errno, "process %d: %s: %s", p->pid,
					  path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == cap) {
			rc = tm_error_set(err, -E2BIG, "process %d: %s has more than "
					  "%zu bytes", p->pid, path, cap);
			break;
		}
	}
	close(fd);
	if (!rc && (got == 0 || got % 16))
		rc = tm_error_set(err, -EIO, "process %d: %s has %zu bytes, not u64 "
				  "pairs", p->pid, path, got);
	*len = rc ? 0 : got;
	return rc;
}

uint64_t tm_ptrace_auxv_value(tm_ptrace *p, uint64_t type)
{
	uint64_t v[2 * 64];
	size_t len;

	if (tm_ptrace_read_auxv(p, (uint8_t *)v, sizeof(v), &len, NULL))
		return 0;
	for (size_t i = 0; i + 1 < len / 8; i += 2)
		if (v[i] == type)
			return v[i + 1];
	return 0;
}

/* ---- attach / detach ---------------------------------------------------- */

static int precheck(int pid, tm_error *err)
{
	struct pstatus s;
	int rc;

	if (pid <= 0)
		return tm_error_set(err, -EINVAL, "process id %d is not valid", pid);
	if (pid == getpid())
		return tm_error_set(err, -EPERM, "process %d is tagmem itself: a "
				    "process cannot trace itself", pid);
	rc = read_status(pid, &s);
	if (rc == -ENOENT)
		return tm_error_set(err, -ESRCH, "no process %d (no /proc/%d)", pid,
				    pid);
	if (rc)
		return tm_error_set(err, rc, "process %d: /proc/%d/status: %s", pid,
				    pid, strerror(-rc));
	if (s.tgid != pid)
		return tm_error_set(err, -EINVAL, "%d is a thread of process %d, not "
				    "a process: give the process id", pid, s.tgid);
	if (s.state == 'Z' || s.state == 'X')
		return tm_error_set(err, -ESRCH, "process %d (%s) has exited (state "
				    "%c: a zombie waiting for its parent)", pid, s.name,
				    s.state);
	if (s.tgid == getpid())
		return tm_error_set(err, -EPERM, "process %d is tagmem itself", pid);
	return 0;
}

static void free_handle(tm_ptrace *p)
{
	if (p->mem_fd >= 0)
		close(p->mem_fd);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->call);
	free(p->tids);
	free(p->sig);
	free(p);
}

static int start_tracer(tm_ptrace *p, tm_error *err)
{
	int rc = -pthread_create(&p->thread, NULL, tracer_main, p);

	if (rc)
		return tm_error_set(err, rc, "process %d: cannot start the tracer "
				    "thread: %s", p->pid, strerror(-rc));
	pthread_mutex_lock(&p->lock);
	while (!p->attach_done)
		pthread_cond_wait(&p->cv, &p->lock);
	pthread_mutex_unlock(&p->lock);
	if (p->attach_rc) {
		pthread_join(p->thread, NULL);
		if (err)
			*err = p->attach_err;
		return p->attach_rc;
	}
	return 0;
}

static void stop_tracer(tm_ptrace *p)
{
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
}

int tm_ptrace_attach(int pid, tm_ptrace **out, tm_error *err)
{
	char path[64];
	tm_ptrace *p;
	int rc;

	*out = NULL;
	rc = precheck(pid, err);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return tm_error_set(err, -ENOMEM, "process %d: no memory", pid);
	p->pid = pid;
	p->mem_fd = -1;
	p->page_size = (size_t)sysconf(_SC_PAGESIZE);
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->call, NULL);
	pthread_cond_init(&p->cv, NULL);
	rc = start_tracer(p, err);
	if (rc) {
		free_handle(p);
		return rc;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	p->mem_fd = open(path, O_RDWR | O_CLOEXEC);
	if (p->mem_fd < 0) {
		rc = tm_error_set(err, -errno, "process %d: %s: %s", pid, path,
				  strerror(errno));
		stop_tracer(p);
		free_handle(p);
		return rc;
	}
	*out = p;
	return 0;
}

void tm_ptrace_detach(tm_ptrace *p)
{
	if (!p)
		return;
	stop_tracer(p);
	free_handle(p);
}

int tm_ptrace_pid(const tm_ptrace *p)
{
	return p->pid;
}

size_t tm_ptrace_nthreads(const tm_ptrace *p)
{
	return p->nthreads;
}

int tm_ptrace_tid(const tm_ptrace *p, size_t i)
{
	return i < p->nthreads ? p->tids[i] : 0;
}

bool tm_ptrace_was_stopped(const tm_ptrace *p)
{
	return p->was_stopped;
}

/* ---- control state and registers --------------------------------------- */

static int regset(tm_ptrace *p, enum pt_op op, size_t thread, unsigned nt,
		  void *buf, size_t len, tm_error *err)
{
	struct pt_req r = { .op = op, .thread = thread, .regset = nt, .buf = buf,
			    .len = len, .err = err };

	return tm_ptrace_call(p, &r);
}

int tm_ptrace_get_tagged_addr_ctrl(tm_ptrace *p, size_t thread, uint64_t *ctrl,
				   tm_error *err)
{
	uint64_t v = 0;
	int rc = regset(p, PT_GETREGSET, thread, TM_NT_ARM_TAGGED_ADDR_CTRL, &v,
			sizeof(v), err);

	*ctrl = rc ? 0 : v;
	return rc;
}

int tm_ptrace_set_tagged_addr_ctrl(tm_ptrace *p, size_t thread, uint64_t ctrl,
				   tm_error *err)
{
	uint64_t v = ctrl;

	if (ctrl & ~TM_TAGGED_ADDR_CTRL_KNOWN)
		return tm_error_set(err, -EINVAL, "process %d thread %zu: tagged-"
				    "address control 0x%" PRIx64 " has unknown bits "
				    "0x%" PRIx64, p->pid, thread, ctrl,
				    ctrl & ~TM_TAGGED_ADDR_CTRL_KNOWN);
	return regset(p, PT_SETREGSET, thread, TM_NT_ARM_TAGGED_ADDR_CTRL, &v,
		      sizeof(v), err);
}

int tm_ptrace_get_regs(tm_ptrace *p, size_t thread,
		       uint64_t regs[TM_PTRACE_NREGS], tm_error *err)
{
	return regset(p, PT_GETREGSET, thread, TM_NT_PRSTATUS, regs,
		      TM_PTRACE_NREGS * sizeof(uint64_t), err);
}

const char *tm_tagged_addr_ctrl_describe(uint64_t ctrl, char *buf, size_t len)
{
	static const char *const tcf[] = { "none", "sync", "async", "sync|async" };
	uint64_t tags = (ctrl & TM_MTE_TAG_MASK) >> TM_MTE_TAG_SHIFT;
	int n;

	n = snprintf(buf, len, "tagged ABI %s, TCF %s, IRG tags 0x%04" PRIx64,
		     ctrl & TM_TAGGED_ADDR_ENABLE ? "on" : "off",
		     tcf[(ctrl & TM_MTE_TCF_MASK) >> 1], tags);
	if (n >= 0 && (size_t)n < len && (ctrl & ~TM_TAGGED_ADDR_CTRL_KNOWN))
		snprintf(buf + n, len - (size_t)n, ", unknown bits 0x%" PRIx64,
			 ctrl & ~TM_TAGGED_ADDR_CTRL_KNOWN);
	return buf;
}
