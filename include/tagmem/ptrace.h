/*
 * tagmem/ptrace.h - the ptrace backend: another (live) process's memory
 * with its Arm MTE allocation tags and its tag-check control state, so that
 * core dumps, snapshots and restores work on a real program, not only on
 * memory tagmem generated itself.
 *
 * Attaching
 *   tm_ptrace_attach seizes every thread of the process (PTRACE_SEIZE, then
 *   PTRACE_INTERRUPT, until no new thread appears) and keeps them stopped
 *   until tm_ptrace_detach. A process that was already stopped by a signal
 *   (SIGSTOP: `kill -STOP`, or a debugger that detached leaving it stopped)
 *   is seized as it is and stays stopped after detach; a running one runs
 *   on. A signal that arrived while tagmem held the process is delivered
 *   at detach. ptrace requests are only accepted from the thread that
 *   attached, so each tm_ptrace runs one tracer thread of its own that
 *   makes every ptrace call; the handle's functions may be called from any
 *   thread. A process that is traced already (by a debugger, by CRIU, by
 *   the caller) cannot be seized: tm_ptrace_attach says by whom.
 *
 * What moves how
 *   data   /proc/PID/mem (pread/pwrite, from the calling thread). Like a
 *          debugger's and the kernel core dumper's accesses it goes through
 *          page protections (FOLL_FORCE), so read-only PROT_MTE mappings
 *          are restored too; it never checks or changes tags.
 *   tags   PTRACE_PEEKMTETAGS / PTRACE_POKEMTETAGS, one byte per granule,
 *          batched: one request moves the tags of up to 64 pages of 4 KiB
 *          (16 KiB of tags). A short transfer (the kernel copies less than
 *          asked when the range leaves the PROT_MTE mapping or cannot be
 *          accessed) is continued where it stopped; a request that moves
 *          nothing fails with -EIO naming the address. Bytes with bits above
 *          the 4-bit tag are refused, never masked.
 *   control  the tagged-address control of each thread (what
 *          prctl(PR_GET_TAGGED_ADDR_CTRL) returns in that thread:
 *          PR_TAGGED_ADDR_ENABLE, the tag-check fault mode PR_MTE_TCF_*,
 *          the IRG include mask PR_MTE_TAG_MASK) through the
 *          NT_ARM_TAGGED_ADDR_CTRL regset (PTRACE_GETREGSET/SETREGSET, one
 *          64-bit word). It is per thread in Linux, so it is kept per
 *          thread.
 *
 * Regions
 *   One region per mapping ([start, end) of /proc/PID/smaps), page size =
 *   the host page size. A mapping whose VmFlags have "mt" (PROT_MTE) gets
 *   MTE tags; any other mapping is data only (TM_META_NONE). The regions
 *   have no direct pointer, no mapping in this process, no dirty source and
 *   no lazy placement (tagmem/backend.h); tm_region_page_may_be_tagged is
 *   true for every page (the process writes its tags with STG). Region
 *   names are "0xSTART-0xEND", so errors name the mapping.
 *
 * Whole processes (full builds): tm_ptrace_core_write (an ELF core that gdb
 * reads, memory tags included), tm_ptrace_snapshot_save and
 * tm_ptrace_snapshot_restore (the PROT_MTE mappings with their tags and
 * every thread's control state; the file format's "process" section is in
 * docs/FORMAT.md). A restore first proves that the target has exactly the
 * snapshot's PROT_MTE mappings, that the file is intact and that the
 * control state can be set; until all of that holds nothing is written
 * into the target.
 *
 * Errors name the process, the mapping and the address. Hosts other than
 * arm64 Linux attach (data moves), but have no PROT_MTE mappings: tag calls
 * there fail with -ENOTSUP.
 *
 * Thread safety: every function here may be called from any thread, also
 * concurrently on one handle; tag and control requests are serialised on
 * the tracer thread, data moves in the callers' threads. Regions of a
 * handle follow tagmem/region.h's rules and must be destroyed before
 * tm_ptrace_detach.
 */
#ifndef TAGMEM_PTRACE_H
#define TAGMEM_PTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/api.h"
#include "tagmem/error.h"
#include "tagmem/region.h"
#include "tagmem/snapshot.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tm_ptrace tm_ptrace;

/*
 * Attach to process pid (a thread group id) and stop all its threads.
 * Errors, before anything of the process was changed:
 *   -ESRCH   no such process (or it is a zombie: it exited);
 *   -EPERM   not traceable: already traced (names the tracer, from
 *            TracerPid in /proc/PID/status), not dumpable
 *            (PR_SET_DUMPABLE 0 or set-id) without CAP_SYS_PTRACE, another
 *            user's, or refused by Yama (kernel.yama.ptrace_scope);
 *   -ENOSYS  ptrace is not available here (qemu-user runs no tracer).
 */
TM_API int tm_ptrace_attach(int pid, tm_ptrace **out, tm_error *err);

/* Let the process go: every thread detached (with the signal it was
 * stopped for, if any), the tracer thread ended, p freed. A process that
 * was stopped before tm_ptrace_attach stays stopped. NULL is a no-op. */
TM_API void tm_ptrace_detach(tm_ptrace *p);

TM_API int tm_ptrace_pid(const tm_ptrace *p);
/* Threads stopped at attach, in /proc/PID/task order (the leader first). */
TM_API size_t tm_ptrace_nthreads(const tm_ptrace *p);
/* Thread id of thread i (< nthreads), or 0. */
TM_API int tm_ptrace_tid(const tm_ptrace *p, size_t i);
/* Whether the process was stopped by a signal before tagmem attached. */
TM_API bool tm_ptrace_was_stopped(const tm_ptrace *p);

/* ---- mappings and regions ------------------------------------------- */

/* One line of /proc/PID/smaps. Filled by the library; only ever handed out
 * by pointer, so later versions may add fields at the end. */
typedef struct tm_ptrace_map {
	uint64_t start, end;     /* [start, end), page aligned */
	uint32_t prot;           /* PROT_READ | PROT_WRITE | PROT_EXEC */
	bool shared;             /* 's' in the permissions (MAP_SHARED) */
	bool mte;                /* VmFlags "mt": mapped PROT_MTE */
	bool dumpable;           /* what a core holds: readable or PROT_MTE,
				    and not VM_IO / PFNMAP / DONTDUMP */
	uint64_t offset, inode;
	uint32_t dev_major, dev_minor;
	char path[256];          /* "" for anonymous memory; "[stack]", ... */
} tm_ptrace_map;

/* Which mappings a set holds. */
enum tm_ptrace_select {
	TM_PTRACE_MTE = 0,       /* the PROT_MTE mappings (what a snapshot holds) */
	TM_PTRACE_DUMPABLE = 1,  /* every dumpable mapping (what a core holds);
				    the PROT_MTE ones with their tags */
};

/* A set of regions, one per selected mapping, in address order. */
typedef struct tm_ptrace_set tm_ptrace_set;

/*
 * Read /proc/PID/smaps and create a region for every mapping sel selects.
 * -ENOENT when none is selected (for TM_PTRACE_MTE: "process N has no
 * PROT_MTE mapping", with the number of mappings it has). The set borrows
 * p: destroy it before tm_ptrace_detach.
 */
TM_API int tm_ptrace_set_create(tm_ptrace *p, enum tm_ptrace_select sel,
				tm_ptrace_set **out, tm_error *err);
TM_API void tm_ptrace_set_destroy(tm_ptrace_set *s);
TM_API size_t tm_ptrace_set_count(const tm_ptrace_set *s);
/* The regions (count entries), for tm_snapshot_save and friends. */
TM_API tm_region *const *tm_ptrace_set_regions(const tm_ptrace_set *s);
/* The mapping region i covers (NULL for i >= count). */
TM_API const tm_ptrace_map *tm_ptrace_set_map(const tm_ptrace_set *s,
					      size_t i);

/*
 * A region over [start, end) of the process, which must lie inside one
 * mapping (page aligned, non-empty); it has MTE tags when that mapping is
 * PROT_MTE, else none. name NULL: "0xSTART-0xEND". -EFAULT naming the
 * first address no mapping covers, -EINVAL for a range that crosses
 * mappings.
 */
TM_API int tm_ptrace_region_create(tm_ptrace *p, uint64_t start, uint64_t end,
				   const char *name, tm_region **out,
				   tm_error *err);

/* ---- MTE control state -------------------------------------------- */

/* Bits of the tagged-address control word (linux/prctl.h). */
#define TM_TAGGED_ADDR_ENABLE   (UINT64_C(1) << 0)
#define TM_MTE_TCF_SYNC         (UINT64_C(1) << 1)
#define TM_MTE_TCF_ASYNC        (UINT64_C(1) << 2)
#define TM_MTE_TCF_MASK         (UINT64_C(3) << 1)
#define TM_MTE_TAG_SHIFT        3
#define TM_MTE_TAG_MASK         (UINT64_C(0xffff) << TM_MTE_TAG_SHIFT)
/* Every bit an MTE-capable 6.x kernel accepts in the word. */
#define TM_TAGGED_ADDR_CTRL_KNOWN \
	(TM_TAGGED_ADDR_ENABLE | TM_MTE_TCF_MASK | TM_MTE_TAG_MASK)

/* Thread i's tagged-address control word. */
TM_API int tm_ptrace_get_tagged_addr_ctrl(tm_ptrace *p, size_t thread,
					  uint64_t *ctrl, tm_error *err);
/* Set it. Words with bits outside TM_TAGGED_ADDR_CTRL_KNOWN are refused
 * (-EINVAL) before anything is written. */
TM_API int tm_ptrace_set_tagged_addr_ctrl(tm_ptrace *p, size_t thread,
					  uint64_t ctrl, tm_error *err);
/* "tagged ABI on, TCF sync, IRG tags 0xfffe" for ctrl, into buf. */
TM_API const char *tm_tagged_addr_ctrl_describe(uint64_t ctrl, char *buf,
						size_t len);

/* Thread i's general registers (NT_PRSTATUS: x0..x30, sp, pc, pstate). */
#define TM_PTRACE_NREGS 34
TM_API int tm_ptrace_get_regs(tm_ptrace *p, size_t thread,
			      uint64_t regs[TM_PTRACE_NREGS], tm_error *err);

/* ---- whole processes (full builds) -------------------------------- */

/*
 * Write an aarch64 ELF core of the process to path (crash-safe, as
 * tm_core_write): one PT_LOAD per dumpable mapping, one
 * PT_AARCH64_MEMTAG_MTE with the tags of each PROT_MTE mapping (the
 * layout Linux's own core dumps have, which gdb >= 13 reads:
 * `memory-tag print-allocation-tag`), the first thread's registers in
 * NT_PRSTATUS, the process's own auxv, and its tagged-address control in
 * NT_ARM_TAGGED_ADDR_CTRL. Pages the kernel cannot hand out (a file
 * mapping past the end of its file) are holes, as in a kernel core; in a
 * PROT_MTE mapping that is an error naming the address. -ENOENT when the
 * process has no PROT_MTE mapping (a core of it would hold no tags).
 */
TM_API int tm_ptrace_core_write(tm_ptrace *p, const char *path,
				tm_error *err);

/*
 * Save the process's PROT_MTE mappings (data and tags; every page of
 * them) and every thread's tagged-address control to a snapshot at path
 * (tm_snapshot_save, with o). The file carries a "process" section (the
 * mappings' addresses and permissions, the control words; docs/FORMAT.md),
 * which a tagmem without it refuses to open (an unknown feature flag).
 * -ENOENT when the process has no PROT_MTE mapping.
 */
TM_API int tm_ptrace_snapshot_save(tm_ptrace *p, const char *path,
				   const tm_snap_opts *o, tm_snap_stats *st,
				   tm_error *err);

/*
 * Whether snapshot s can be restored into the process: s has a process
 * section, and the process has exactly its PROT_MTE mappings (same start,
 * end, permissions and sharing; no more, no fewer) and as many threads.
 * Fails with -ENXIO naming the snapshot region, the mapping and the
 * address that differ (-ENOENT: s has no process section). Reads nothing
 * but /proc/PID/smaps.
 */
TM_API int tm_ptrace_snapshot_check(tm_ptrace *p, const tm_snapshot *s,
				    tm_error *err);

/*
 * Restore s into the process: tm_ptrace_snapshot_check, then every chunk
 * of the file read and checked (tm_snapshot_verify), then the data and
 * tags written (tm_snapshot_restore), then each thread's control word set
 * (thread i of the snapshot -> thread i of the process, in /proc/PID/task
 * order). If a check fails nothing has been written into the process.
 */
TM_API int tm_ptrace_snapshot_restore(tm_ptrace *p, tm_snapshot *s,
				      const tm_snap_opts *o, tm_snap_stats *st,
				      tm_error *err);

/* What a snapshot's process section says (tm_snapshot_process_info). */
typedef struct tm_snap_process_info {
	uint32_t pid;            /* of the saved process */
	uint32_t nthreads;
	uint64_t hwcap2;         /* AT_HWCAP2 of the saved process */
} tm_snap_process_info;

/* Decode s's process section: -ENOENT when it has none, -EBADMSG naming
 * the byte when it is malformed. Any of the out pointers may be NULL.
 * map gets region i's address and permissions (i < nregions). */
TM_API int tm_snapshot_process_info(const tm_snapshot *s,
				    tm_snap_process_info *info, tm_error *err);
TM_API int tm_snapshot_process_region(const tm_snapshot *s, size_t i,
				      uint64_t *start, uint32_t *prot,
				      bool *shared, tm_error *err);
TM_API int tm_snapshot_process_thread(const tm_snapshot *s, size_t i,
				      uint32_t *tid, uint64_t *ctrl,
				      tm_error *err);

#ifdef __cplusplus
}
#endif
#endif
