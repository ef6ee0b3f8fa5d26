/*
 * ptrace_internal.h - what the ptrace backend's files share: the attached
 * process (tm_ptrace) with its tracer thread, the requests that thread runs
 * for other threads, the smaps parser, and the data and tag movers the
 * region methods and the whole-process code (src/ptrace/) are built on.
 * Internal to the library.
 *
 * Why a tracer thread: Linux accepts ptrace requests for a tracee only from
 * the thread that attached to it (any other thread gets ESRCH), while the
 * region methods are called from any thread (snapshot and core workers).
 * So one thread per tm_ptrace attaches, makes every ptrace call and
 * waitpid, and detaches; callers hand it one request at a time (p->call
 * serialises them) and sleep until it is done. Data does not need it:
 * /proc/PID/mem is read and written from the calling threads.
 */
#ifndef TM_REGION_PTRACE_INTERNAL_H
#define TM_REGION_PTRACE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/error.h"
#include "tagmem/ptrace.h"

/* Unpacked tags per tag request: 64 pages of 4 KiB, on the caller's stack. */
#define TM_PTRACE_TAG_BATCH 16384u

enum pt_op { PT_PEEK, PT_POKE, PT_GETREGSET, PT_SETREGSET };

struct pt_req {
	enum pt_op op;
	size_t thread;          /* index into tids (regset requests) */
	uint64_t addr;          /* PEEK/POKE: first granule's address */
	uint8_t *buf;           /* PEEK/POKE: one byte per granule; regset: data */
	size_t len;             /* PEEK/POKE: granules; regset: bytes */
	unsigned regset;        /* NT_* */
	int rc;
	tm_error *err;
	bool done;
};

struct tm_ptrace {
	int pid;
	size_t page_size;
	int mem_fd;             /* /proc/PID/mem, O_RDWR */
	size_t nthreads, cap;
	int *tids;              /* stopped threads, /proc/PID/task order */
	int *sig;               /* per thread: signal to deliver at detach */
	bool was_stopped;       /* group-stopped before we came */

	pthread_t thread;
	pthread_mutex_t lock;   /* req, quit, attach_done */
	pthread_mutex_t call;   /* one request at a time */
	pthread_cond_t cv;
	struct pt_req *req;
	bool quit, attach_done;
	int attach_rc;
	tm_error attach_err;
};

/* Run r on the tracer thread and wait for it; returns r->rc. */
int tm_ptrace_call(tm_ptrace *p, struct pt_req *r);

/* Tags of ngran granules from addr, one byte each (ptrace's own format),
 * continuing short transfers; -EIO naming the address when nothing moves. */
int tm_ptrace_peek(tm_ptrace *p, uint64_t addr, uint8_t *unpacked,
		   size_t ngran, tm_error *err);
int tm_ptrace_poke(tm_ptrace *p, uint64_t addr, const uint8_t *unpacked,
		   size_t ngran, tm_error *err);

/* len bytes at addr through /proc/PID/mem. lenient: a page the kernel
 * cannot hand out (EIO: past the end of a file mapping, a hole) reads as
 * zeros instead of failing, as a kernel core dump skips it. */
int tm_ptrace_mem_read(tm_ptrace *p, uint64_t addr, void *buf, size_t len,
		       bool lenient, tm_error *err);
int tm_ptrace_mem_write(tm_ptrace *p, uint64_t addr, const void *buf,
			size_t len, tm_error *err);

/* /proc/PID/auxv into buf (u64 pairs up to and with AT_NULL); *len its
 * bytes. -E2BIG when it does not fit cap. */
int tm_ptrace_read_auxv(tm_ptrace *p, uint8_t *buf, size_t cap, size_t *len,
			tm_error *err);
/* One value of the auxv (0 when absent or unreadable). */
uint64_t tm_ptrace_auxv_value(tm_ptrace *p, uint64_t type);

/* Every mapping of the process, from /proc/PID/smaps, in address order;
 * *maps is malloc'd (free()). */
int tm_ptrace_read_maps(int pid, tm_ptrace_map **maps, size_t *n,
			tm_error *err);
/* "rw-p" for m, into buf (>= 5 bytes). */
const char *tm_ptrace_perms(const tm_ptrace_map *m, char *buf);

#endif
