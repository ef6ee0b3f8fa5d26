/*
 * procsec.c - encode and validate the snapshot's process section
 * (procsec.h; the layout is in docs/FORMAT.md, "Process section").
 *
 *   0  u32 version (1)          16 u32 pid at save
 *   4  u32 nregions             20 u32 flags (0)
 *   8  u32 nthreads             24 u64 AT_HWCAP2 at save
 *   12 u32 page size
 *   32 nregions x { u64 start, u64 end, u32 prot, u32 flags (bit 0 shared) }
 *   .. nthreads x { u32 tid, u32 0, u64 tagged-address control }
 */
#include "ptrace/procsec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "snapshot/le.h"
#include "tagmem/ptrace.h"
#include "tagmem/snapshot.h"

size_t tm_procsec_bytes(uint32_t nregions, uint32_t nthreads)
{
	return PROCSEC_HEAD_BYTES + (size_t)nregions * PROCSEC_REGION_BYTES +
	       (size_t)nthreads * PROCSEC_THREAD_BYTES;
}

void tm_procsec_encode(const proc_state *ps, uint8_t *b)
{
	uint8_t *p = b + PROCSEC_HEAD_BYTES;

	memset(b, 0, tm_procsec_bytes(ps->nregions, ps->nthreads));
	tm_snap_put32(b, PROCSEC_VERSION);
	tm_snap_put32(b + 4, ps->nregions);
	tm_snap_put32(b + 8, ps->nthreads);
	tm_snap_put32(b + 12, ps->page_size);
	tm_snap_put32(b + 16, ps->pid);
	tm_snap_put64(b + 24, ps->hwcap2);
	for (uint32_t i = 0; i < ps->nregions; i++, p += PROCSEC_REGION_BYTES) {
		tm_snap_put64(p, ps->r[i].start);
		tm_snap_put64(p + 8, ps->r[i].end);
		tm_snap_put32(p + 16, ps->r[i].prot);
		tm_snap_put32(p + 20, ps->r[i].shared ? PROCSEC_SHARED : 0);
	}
	for (uint32_t i = 0; i < ps->nthreads; i++, p += PROCSEC_THREAD_BYTES) {
		tm_snap_put32(p, ps->t[i].tid);
		tm_snap_put64(p + 8, ps->t[i].ctrl);
	}
}

static int __attribute__((format(printf, 3, 4)))
bad(tm_error *err, size_t at, const char *fmt, ...)
{
	char what[TM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return tm_error_set(err, -EBADMSG, "snapshot process section (type %u), "
			    "byte %zu: %s", TM_SNAP_SECTION_PROCESS, at, what);
}

static int decode_head(const uint8_t *b, size_t len, uint32_t nregions,
		       uint32_t page_size, proc_state *ps, tm_error *err)
{
	uint32_t v;

	if (len < PROCSEC_HEAD_BYTES)
		return bad(err, len, "%zu bytes, the header alone has %u", len,
			   PROCSEC_HEAD_BYTES);
	v = tm_snap_get32(b);
	if (v != PROCSEC_VERSION)
		return tm_error_set(err, -EPROTONOSUPPORT, "snapshot process section "
				    "(type %u), byte 0: version %u, this tagmem reads "
				    "version %u", TM_SNAP_SECTION_PROCESS, v,
				    PROCSEC_VERSION);
	ps->nregions = tm_snap_get32(b + 4);
	ps->nthreads = tm_snap_get32(b + 8);
	ps->page_size = tm_snap_get32(b + 12);
	ps->pid = tm_snap_get32(b + 16);
	ps->hwcap2 = tm_snap_get64(b + 24);
	if (ps->nregions != nregions)
		return bad(err, 4, "%u regions, the snapshot has %u", ps->nregions,
			   nregions);
	if (ps->nthreads == 0 || ps->nthreads > PROCSEC_MAX_THREADS)
		return bad(err, 8, "%u threads (1..%u)", ps->nthreads,
			   PROCSEC_MAX_THREADS);
	if (ps->page_size != page_size)
		return bad(err, 12, "page size %u, the snapshot's is %u",
			   ps->page_size, page_size);
	if (tm_snap_get32(b + 20))
		return bad(err, 20, "flags 0x%x (none are defined)",
			   tm_snap_get32(b + 20));
	if (len != tm_procsec_bytes(ps->nregions, ps->nthreads))
		return bad(err, len, "%zu bytes, %u regions and %u threads take %zu",
			   len, ps->nregions, ps->nthreads,
			   tm_procsec_bytes(ps->nregions, ps->nthreads));
	return 0;
}

static int decode_region(const uint8_t *p, size_t at, uint32_t i,
			 uint64_t size, uint32_t page_size, uint64_t prev_end,
			 proc_region *r, tm_error *err)
{
	uint32_t fl = tm_snap_get32(p + 20);

	r->start = tm_snap_get64(p);
	r->end = tm_snap_get64(p + 8);
	r->prot = tm_snap_get32(p + 16);
	r->shared = fl & PROCSEC_SHARED;
	if (r->start % page_size || r->end % page_size || r->end <= r->start ||
	    r->end > (UINT64_C(1) << 48))
		return bad(err, at, "region %u: 0x%" PRIx64 "-0x%" PRIx64 " is empty, "
			   "unaligned or above 2^48", i, r->start, r->end);
	if (r->end - r->start != size)
		return bad(err, at + 8, "region %u: 0x%" PRIx64 "-0x%" PRIx64 " is %"
			   PRIu64 " bytes, the snapshot's region %u has %" PRIu64, i,
			   r->start, r->end, r->end - r->start, i, size);
	if (r->start < prev_end)
		return bad(err, at, "region %u at 0x%" PRIx64 " overlaps or precedes "
			   "the one before (which ends at 0x%" PRIx64 ")", i, r->start,
			   prev_end);
	if (r->prot & ~(uint32_t)(PROT_READ | PROT_WRITE | PROT_EXEC))
		return bad(err, at + 16, "region %u: protection 0x%x has unknown bits",
			   i, r->prot);
	if (fl & ~PROCSEC_SHARED)
		return bad(err, at + 20, "region %u: flags 0x%x have unknown bits", i,
			   fl);
	return 0;
}

static int decode_thread(const uint8_t *p, size_t at, uint32_t i,
			 proc_thread *t, tm_error *err)
{
	t->tid = tm_snap_get32(p);
	t->ctrl = tm_snap_get64(p + 8);
	if (tm_snap_get32(p + 4))
		return bad(err, at + 4, "thread %u: reserved field is not zero", i);
	if (t->ctrl & ~TM_TAGGED_ADDR_CTRL_KNOWN)
		return bad(err, at + 8, "thread %u: tagged-address control 0x%" PRIx64
			   " has unknown bits 0x%" PRIx64, i, t->ctrl,
			   t->ctrl & ~TM_TAGGED_ADDR_CTRL_KNOWN);
	return 0;
}

int tm_procsec_decode(const uint8_t *b, size_t len, const uint64_t *sizes,
		      uint32_t nregions, uint32_t page_size, proc_state *ps,
		      tm_error *err)
{
	size_t at = PROCSEC_HEAD_BYTES;
	uint64_t prev = 0;
	int rc;

	memset(ps, 0, sizeof(*ps));
	rc = decode_head(b, len, nregions, page_size, ps, err);
	if (rc)
		return rc;
	ps->r = calloc(ps->nregions ? ps->nregions : 1, sizeof(*ps->r));
	ps->t = calloc(ps->nthreads, sizeof(*ps->t));
	if (!ps->r || !ps->t) {
		tm_procsec_free(ps);
		return tm_error_set(err, -ENOMEM, "snapshot process section: no memory");
	}
	for (uint32_t i = 0; i < ps->nregions && !rc; i++, at += PROCSEC_REGION_BYTES) {
		rc = decode_region(b + at, at, i, sizes[i], page_size, prev, &ps->r[i],
				   err);
		prev = ps->r[i].end;
	}
	for (uint32_t i = 0; i < ps->nthreads && !rc; i++, at += PROCSEC_THREAD_BYTES)
		rc = decode_thread(b + at, at, i, &ps->t[i], err);
	if (rc)
		tm_procsec_free(ps);
	return rc;
}

void tm_procsec_free(proc_state *ps)
{
	free(ps->r);
	free(ps->t);
	ps->r = NULL;
	ps->t = NULL;
}
