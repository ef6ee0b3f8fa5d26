/*
 * ptrace_target.c - the live process the ptrace tests attach to, dump,
 * snapshot and restore: it maps the mappings its command line names at
 * fixed addresses (so a second one can re-create a first one's layout),
 * and then obeys one-line commands on stdin, answering one line on stdout:
 *
 *   fill SEED        data and tags of every mapping from pt_pattern.h
 *                    (tags with STG under PSTATE.TCO, then data)
 *   check SEED       verify them: LDG against the expected tag, then a
 *                    load through a pointer carrying that tag (a tag-checked
 *                    access when TCF is on) against the expected word;
 *                    checkmte / checkplain: only the PROT_MTE / other ones
 *   ctrl / setctrl X its own prctl(PR_GET/SET_TAGGED_ADDR_CTRL)
 *   fault            a load with a wrong logical tag from the first tagged
 *                    granule: "fault SI_CODE" (SIGSEGV caught) or "nofault"
 *   crash            abort(): the kernel writes a core
 *   threads N        start N-1 more threads; thread k sets its control
 *                    word to the main thread's with IRG mask (k+1) << 1
 *   tctrl            every thread reads its own control word
 *   tags ADDR N      LDG of N granules from ADDR, as hex digits
 *   usr1             SIGUSR1 signals received so far
 *   dumpable 0|1     prctl(PR_SET_DUMPABLE)
 *   exit
 *
 * Mappings (argv): ADDR:PAGES:KIND with KIND p (private anonymous
 * PROT_MTE), s (shared anonymous PROT_MTE), m (memfd PROT_MTE), r (private
 * PROT_MTE, read-only between fills), n (private anonymous, no PROT_MTE).
 * It prints "ready PID" when they are mapped. Not a cmocka test: the
 * tests (tests/ptrace/test_*.c) run it.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pt_pattern.h"

#ifndef PROT_MTE
#define PROT_MTE 0x20
#endif
#ifndef PR_SET_TAGGED_ADDR_CTRL
#define PR_SET_TAGGED_ADDR_CTRL 55
#define PR_GET_TAGGED_ADDR_CTRL 56
#endif
#define GRANULE 16u
#define MAX_MAPS 16
#define MAX_THREADS 8

struct map {
	uint8_t *base;
	size_t len;
	char kind;
};

static struct map maps[MAX_MAPS];
static int nmaps;
static size_t page_size;
static volatile sig_atomic_t usr1_count;
static sigjmp_buf fault_jmp;
static volatile int fault_code;

static void reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

#if defined(__aarch64__)
static void tco(int on)
{
	if (on)
		__asm__ volatile(".arch_extension memtag\n msr tco, #1" ::: "memory");
	else
		__asm__ volatile(".arch_extension memtag\n msr tco, #0" ::: "memory");
}

static uint8_t *with_tag(uint8_t *p, unsigned tag)
{
	return (uint8_t *)(((uintptr_t)p & ~(0xfull << 56)) | ((uintptr_t)tag << 56));
}

static void stg(uint8_t *tagged)
{
	__asm__ volatile(".arch_extension memtag\n stg %0, [%0]" : : "r"(tagged) : "memory");
}

static unsigned ldg(uint8_t *p)
{
	uint8_t *q = p;

	__asm__ volatile(".arch_extension memtag\n ldg %0, [%0]" : "+r"(q));
	return (unsigned)(((uintptr_t)q >> 56) & 0xf);
}
#else
static void tco(int on) { (void)on; }
static uint8_t *with_tag(uint8_t *p, unsigned tag) { (void)tag; return p; }
static void stg(uint8_t *tagged) { (void)tagged; }
static unsigned ldg(uint8_t *p) { (void)p; return 0; }
#endif

static int prot_of(const struct map *m, int rw)
{
	int mte = m->kind == 'n' ? 0 : PROT_MTE;

	return (rw || m->kind != 'r' ? PROT_READ | PROT_WRITE : PROT_READ) | mte;
}

static int map_one(const char *spec)
{
	unsigned long long addr;
	unsigned long pages;
	char kind;
	struct map *m = &maps[nmaps];
	int flags = MAP_FIXED_NOREPLACE, fd = -1;
	void *p;

	if (nmaps == MAX_MAPS || sscanf(spec, "%llx:%lu:%c", &addr, &pages, &kind) != 3 ||
	    !strchr("psmrn", kind))
		return -1;
	m->len = pages * page_size;
	m->kind = kind;
	if (kind == 'm') {
		fd = (int)syscall(SYS_memfd_create, "pt-target", 0);
		if (fd < 0 || ftruncate(fd, (off_t)m->len))
			return -1;
		flags |= MAP_SHARED;
	} else {
		flags |= MAP_ANONYMOUS | (kind == 's' ? MAP_SHARED : MAP_PRIVATE);
	}
	p = mmap((void *)(uintptr_t)addr, m->len, prot_of(m, 1), flags, fd, 0);
	if (fd >= 0)
		close(fd);
	if (p == MAP_FAILED || p != (void *)(uintptr_t)addr)
		return -1;
	m->base = p;
	if (kind == 'r' && mprotect(p, m->len, prot_of(m, 0)))
		return -1;
	nmaps++;
	return 0;
}

/* ---- fill / check ---------------------------------------------------- */

static void fill_map(const struct map *m, uint64_t seed)
{
	for (size_t off = 0; off < m->len; off += GRANULE) {
		uint64_t a = (uint64_t)(uintptr_t)(m->base + off);
		uint64_t *w = (uint64_t *)(m->base + off);

		if (m->kind != 'n')
			stg(with_tag(m->base + off, pt_expect_tag(seed, a, page_size)));
		w[0] = pt_expect_word(seed, a, page_size);
		w[1] = pt_expect_word(seed, a + 8, page_size);
	}
}

static void cmd_fill(uint64_t seed)
{
	for (int i = 0; i < nmaps; i++) {
		mprotect(maps[i].base, maps[i].len, prot_of(&maps[i], 1));
		tco(1);
		fill_map(&maps[i], seed);
		tco(0);
		mprotect(maps[i].base, maps[i].len, prot_of(&maps[i], 0));
	}
	reply("ok");
}

static int check_map(const struct map *m, uint64_t seed, char *why, size_t len)
{
	for (size_t off = 0; off < m->len; off += GRANULE) {
		uint64_t a = (uint64_t)(uintptr_t)(m->base + off);
		unsigned want = m->kind == 'n' ? 0 : pt_expect_tag(seed, a, page_size);
		unsigned got = m->kind == 'n' ? 0 : ldg(m->base + off);
		volatile uint64_t *w = (volatile uint64_t *)with_tag(m->base + off, want);
		uint64_t w0, w1;

		if (got != want) {
			snprintf(why, len, "tag at 0x%llx is %u, expected %u",
				 (unsigned long long)a, got, want);
			return -1;
		}
		w0 = w[0];   /* tag-checked when TCF is on */
		w1 = w[1];
		if (w0 != pt_expect_word(seed, a, page_size) ||
		    w1 != pt_expect_word(seed, a + 8, page_size)) {
			snprintf(why, len, "data at 0x%llx is %016llx %016llx",
				 (unsigned long long)a, (unsigned long long)w0,
				 (unsigned long long)w1);
			return -1;
		}
	}
	return 0;
}

/* which: 'a' every mapping, 't' the PROT_MTE ones, 'n' the others */
static void cmd_check(uint64_t seed, char which)
{
	char why[160];

	for (int i = 0; i < nmaps; i++)
		if ((which == 'a' || (which == 'n') == (maps[i].kind == 'n')) &&
		    check_map(&maps[i], seed, why, sizeof(why))) {
			reply("bad %s", why);
			return;
		}
	reply("ok");
}

/* ---- tag checks -------------------------------------------------------- */

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	fault_code = si->si_code;
	siglongjmp(fault_jmp, 1);
}

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

/* A load through bad with SIGSEGV caught: its si_code, or 0. */
static int try_load(uint8_t *const bad)
{
	struct sigaction sa, old;
	int code = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, &old);
	fault_code = 0;
	if (sigsetjmp(fault_jmp, 1) == 0)
		(void)*(volatile uint8_t *)bad;
	else
		code = fault_code;
	sigaction(SIGSEGV, &old, NULL);
	return code;
}

/* The first granule with a non-zero tag, and a load with another tag. */
static void cmd_fault(void)
{
	uint8_t *g = NULL;
	unsigned t = 0;
	int code;

	for (int i = 0; i < nmaps && !g; i++)
		for (size_t off = 0; maps[i].kind != 'n' && off < maps[i].len && !g;
		     off += GRANULE)
			if ((t = ldg(maps[i].base + off)) != 0)
				g = maps[i].base + off;
	if (!g) {
		reply("notag");
		return;
	}
	code = try_load(with_tag(g, (t % 15) + 1));
	if (code)
		reply("fault %d", code);
	else
		reply("nofault");
}

static void cmd_tags(unsigned long long addr, unsigned n)
{
	char out[4096 + 1];
	unsigned i;

	for (i = 0; i < n && i < 4096; i++)
		out[i] = "0123456789abcdef"[ldg((uint8_t *)(uintptr_t)(addr + i * GRANULE))];
	out[i] = 0;
	reply("tags %s", out);
}

/* ---- threads ------------------------------------------------------------ */

static pthread_mutex_t tlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tcv = PTHREAD_COND_INITIALIZER;
static int nthreads = 1, gen, answered;
static long tctrl[MAX_THREADS];
static pid_t ttid[MAX_THREADS];

static void *thread_main(void *arg)
{
	int k = (int)(intptr_t)arg, seen = 0;
	long base = prctl(PR_GET_TAGGED_ADDR_CTRL, 0, 0, 0, 0);

	prctl(PR_SET_TAGGED_ADDR_CTRL, (base & ~(0xffffL << 3)) | ((long)(k + 1) << 4),
	      0, 0, 0);
	pthread_mutex_lock(&tlock);
	ttid[k] = (pid_t)syscall(SYS_gettid);
	answered++;
	pthread_cond_broadcast(&tcv);
	for (;;) {
		while (gen == seen)
			pthread_cond_wait(&tcv, &tlock);
		seen = gen;
		tctrl[k] = prctl(PR_GET_TAGGED_ADDR_CTRL, 0, 0, 0, 0);
		answered++;
		pthread_cond_broadcast(&tcv);
	}
	return NULL;
}

static void cmd_threads(int n)
{
	pthread_t t;
	char buf[256];
	int at = 0;

	pthread_mutex_lock(&tlock);
	answered = 0;
	for (int k = 1; k < n && k < MAX_THREADS; k++) {
		pthread_create(&t, NULL, thread_main, (void *)(intptr_t)k);
		nthreads++;
	}
	while (answered < nthreads - 1)
		pthread_cond_wait(&tcv, &tlock);
	ttid[0] = getpid();
	for (int k = 0; k < nthreads; k++)
		at += snprintf(buf + at, sizeof(buf) - (size_t)at, " %d", (int)ttid[k]);
	pthread_mutex_unlock(&tlock);
	reply("ok%s", buf);
}

static void cmd_tctrl(void)
{
	char buf[512];
	int at = 0;

	pthread_mutex_lock(&tlock);
	answered = 0;
	gen++;
	pthread_cond_broadcast(&tcv);
	while (answered < nthreads - 1)
		pthread_cond_wait(&tcv, &tlock);
	tctrl[0] = prctl(PR_GET_TAGGED_ADDR_CTRL, 0, 0, 0, 0);
	for (int k = 0; k < nthreads; k++)
		at += snprintf(buf + at, sizeof(buf) - (size_t)at, " 0x%lx", tctrl[k]);
	pthread_mutex_unlock(&tlock);
	reply("tctrl%s", buf);
}

/* ---- main ------------------------------------------------------------------ */

static void command(char *line)
{
	unsigned long long a = 0, b = 0;

	line[strcspn(line, "\n")] = 0;
	if (sscanf(line, "fill %llu", &a) == 1)
		cmd_fill(a);
	else if (sscanf(line, "check %llu", &a) == 1)
		cmd_check(a, 'a');
	else if (sscanf(line, "checkmte %llu", &a) == 1)
		cmd_check(a, 't');
	else if (sscanf(line, "checkplain %llu", &a) == 1)
		cmd_check(a, 'n');
	else if (!strcmp(line, "ctrl"))
		reply("ctrl 0x%lx", (unsigned long)prctl(PR_GET_TAGGED_ADDR_CTRL, 0, 0, 0, 0));
	else if (sscanf(line, "setctrl %llx", &a) == 1)
		reply(prctl(PR_SET_TAGGED_ADDR_CTRL, (unsigned long)a, 0, 0, 0) ? "err %d" : "ok",
		      errno);
	else if (!strcmp(line, "fault"))
		cmd_fault();
	else if (!strcmp(line, "crash"))
		abort();
	else if (sscanf(line, "threads %llu", &a) == 1)
		cmd_threads((int)a);
	else if (!strcmp(line, "tctrl"))
		cmd_tctrl();
	else if (sscanf(line, "tags %llx %llu", &a, &b) == 2)
		cmd_tags(a, (unsigned)b);
	else if (!strcmp(line, "usr1"))
		reply("usr1 %d", (int)usr1_count);
	else if (sscanf(line, "dumpable %llu", &a) == 1)
		reply(prctl(PR_SET_DUMPABLE, (unsigned long)a, 0, 0, 0) ? "err" : "ok");
	else if (!strcmp(line, "exit"))
		exit(0);
	else
		reply("unknown command '%s'", line);
}

int main(int argc, char **argv)
{
	char line[512];

	page_size = (size_t)sysconf(_SC_PAGESIZE);
	signal(SIGUSR1, on_usr1);
	for (int i = 1; i < argc; i++)
		if (map_one(argv[i])) {
			reply("error mapping %s: %s", argv[i], strerror(errno));
			return 1;
		}
	reply("ready %d", (int)getpid());
	while (fgets(line, sizeof(line), stdin))
		command(line);
	return 0;
}
