/*
 * procsec.h - the "process" section of a snapshot (section type
 * TM_SNAP_SECTION_PROCESS, docs/FORMAT.md "Process section"): where each
 * region sat in the saved process (address, permissions, sharing) and
 * every thread's tagged-address control word. Encoded byte by byte,
 * little-endian; the decoder validates every field against the snapshot it
 * came with before anything is used. Internal to the ptrace part.
 */
#ifndef TM_PTRACE_PROCSEC_H
#define TM_PTRACE_PROCSEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/error.h"

#define PROCSEC_VERSION      1u
#define PROCSEC_HEAD_BYTES   32u
#define PROCSEC_REGION_BYTES 24u
#define PROCSEC_THREAD_BYTES 16u
#define PROCSEC_MAX_THREADS  65536u
#define PROCSEC_SHARED       1u      /* region flags */

typedef struct proc_region {
	uint64_t start, end;
	uint32_t prot;               /* PROT_READ | PROT_WRITE | PROT_EXEC */
	bool shared;
} proc_region;

typedef struct proc_thread {
	uint32_t tid;
	uint64_t ctrl;               /* tagged-address control word */
} proc_thread;

typedef struct proc_state {
	uint32_t pid, page_size, nregions, nthreads;
	uint64_t hwcap2;
	proc_region *r;              /* nregions, in the snapshot's region order */
	proc_thread *t;              /* nthreads, the leader first */
} proc_state;

size_t tm_procsec_bytes(uint32_t nregions, uint32_t nthreads);
/* Into buf of tm_procsec_bytes() bytes. */
void tm_procsec_encode(const proc_state *ps, uint8_t *buf);

/*
 * Decode len bytes for a snapshot of nregions regions of sizes[] bytes with
 * page_size-byte pages: version, counts, exact length, every region
 * (aligned, non-empty, its size the snapshot region's, below 2^48, in
 * address order without overlap, known permission and flag bits) and
 * every thread (reserved zero, only known control bits). -EBADMSG (or
 * -EPROTONOSUPPORT for another version) naming the byte; on success
 * ps->r and ps->t are malloc'd (tm_procsec_free).
 */
int tm_procsec_decode(const uint8_t *buf, size_t len, const uint64_t *sizes,
		      uint32_t nregions, uint32_t page_size, proc_state *ps,
		      tm_error *err);
void tm_procsec_free(proc_state *ps);

#endif
