/*
 * core_write.c - tm_core_write: an aarch64 ELF core of tagged regions, in
 * the layout Linux writes (PT_NOTE first, then one PT_LOAD per region, the
 * PT_AARCH64_MEMTAG_MTE headers last; memory data page-aligned after the
 * notes, tag data after all memory), with the notes gdb needs to accept the
 * core and to enable memory tagging for it (NT_AUXV with HWCAP2_MTE).
 */
#include "tagmem/core.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/abi.h"
#include "snapshot/elfcore.h"
#include "snapshot/sfile.h"
#include "snapshot/snapfmt.h"

#define CORE_IO_BUF (1u << 20)

struct core_plan {
	const tm_core_region *regs;
	size_t n, ntagged;
	uint64_t notes_off, notes_len;
	uint64_t *load_off;     /* per region */
	uint64_t *tag_off;      /* per region (tagged) */
	uint64_t end;
	uint8_t *notes;
};

/* ---- notes --------------------------------------------------------- */

/* Append one note (name and desc padded to 4 bytes) at p; returns bytes. */
static size_t put_note(uint8_t *p, const char *name, uint32_t type,
		       const uint8_t *desc, size_t dlen)
{
	size_t nlen = strlen(name) + 1, at = 12;

	if (p) {
		tm_snap_put32(p, (uint32_t)nlen);
		tm_snap_put32(p + 4, (uint32_t)dlen);
		tm_snap_put32(p + 8, type);
		memset(p + at, 0, tm_snap_align_up(nlen, 4));
		memcpy(p + at, name, nlen);
	}
	at += tm_snap_align_up(nlen, 4);
	if (p) {
		memset(p + at, 0, tm_snap_align_up(dlen, 4));
		memcpy(p + at, desc, dlen);
	}
	return at + tm_snap_align_up(dlen, 4);
}

static void fill_prstatus(uint8_t *d, const tm_core_opts *o)
{
	memset(d, 0, PRS_SIZE);
	tm_snap_put32(d + PRS_SIGNO, (uint32_t)o->signo);
	tm_snap_put32(d + PRS_CODE, (uint32_t)o->si_code);
	tm_snap_put16(d + PRS_CURSIG, (uint16_t)o->signo);
	tm_snap_put32(d + PRS_PID, o->pid);
	tm_snap_put32(d + PRS_PPID, 1);
	tm_snap_put32(d + PRS_PGRP, o->pid);
	tm_snap_put32(d + PRS_SID, o->pid);
	for (unsigned i = 0; o->regs && i < TM_CORE_NREGS; i++)
		tm_snap_put64(d + PRS_REG + 8 * i, o->regs[i]);
	if (!o->regs) {
		tm_snap_put64(d + PRS_SP, o->sp);
		tm_snap_put64(d + PRS_PC, o->pc);
		tm_snap_put64(d + PRS_PSTATE, 0);     /* EL0t, flags clear */
	}
	tm_snap_put32(d + PRS_FPVALID, 1);
}

static void fill_prpsinfo(uint8_t *d, const tm_core_opts *o)
{
	memset(d, 0, PRP_SIZE);
	d[PRP_STATE] = 0;
	d[PRP_SNAME] = 'R';
	tm_snap_put32(d + PRP_PID, o->pid);
	tm_snap_put32(d + PRP_PPID, 1);
	tm_snap_put32(d + PRP_PGRP, o->pid);
	tm_snap_put32(d + PRP_SID, o->pid);
	memcpy(d + PRP_FNAME, o->comm, strnlen(o->comm, 15));
	memcpy(d + PRP_PSARGS, o->comm, strnlen(o->comm, 79));
}

static void fill_siginfo(uint8_t *d, const tm_core_opts *o)
{
	memset(d, 0, SI_SIZE);
	tm_snap_put32(d + SI_SIGNO, (uint32_t)o->signo);
	tm_snap_put32(d + SI_CODE, (uint32_t)o->si_code);
	tm_snap_put64(d + SI_ADDR, o->fault_addr);
}

static size_t fill_auxv(uint8_t *d, uint32_t page_size)
{
	const uint64_t v[] = { AUX_HWCAP, 0x3 /* fp, asimd */,
			       AUX_HWCAP2, TM_HWCAP2_MTE,
			       AUX_PAGESZ, page_size, AUX_NULL, 0 };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		tm_snap_put64(d + 8 * i, v[i]);
	return sizeof(v);
}

/* All notes into buf (NULL: just measure). */
static size_t build_notes(uint8_t *buf, const tm_core_opts *o,
			  uint32_t page_size)
{
	uint8_t d[FPSIMD_SIZE];
	size_t at = 0, alen;

	fill_prstatus(d, o);
	at += put_note(buf ? buf + at : NULL, "CORE", ELF_NT_PRSTATUS, d, PRS_SIZE);
	fill_prpsinfo(d, o);
	at += put_note(buf ? buf + at : NULL, "CORE", ELF_NT_PRPSINFO, d, PRP_SIZE);
	fill_siginfo(d, o);
	at += put_note(buf ? buf + at : NULL, "CORE", ELF_NT_SIGINFO, d, SI_SIZE);
	if (o->auxv) {
		at += put_note(buf ? buf + at : NULL, "CORE", ELF_NT_AUXV, o->auxv,
			       o->auxv_len);
	} else {
		alen = fill_auxv(d, page_size);
		at += put_note(buf ? buf + at : NULL, "CORE", ELF_NT_AUXV, d, alen);
	}
	memset(d, 0, FPSIMD_SIZE);
	at += put_note(buf ? buf + at : NULL, "CORE", ELF_NT_FPREGSET, d, FPSIMD_SIZE);
	tm_snap_put64(d, o->tagged_addr_ctrl);
	at += put_note(buf ? buf + at : NULL, "LINUX", ELF_NT_ARM_TAGGED_ADDR_CTRL, d, 8);
	return at;
}

/* ---- plan and headers ---------------------------------------------- */

static bool region_tagged(const tm_region *r)
{
	return tm_region_geom(r)->kind != TM_META_NONE;
}

static int check_regions(const tm_core_region *regs, size_t n, tm_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const tm_geom *g = tm_region_geom(regs[i].region);
		uint64_t a = regs[i].vaddr, len = tm_region_size(regs[i].region);

		if (g->kind != TM_META_NONE &&
		    (g->kind != TM_META_MTE || g->granule != TM_MTE_GRANULE || g->bits != 4))
			return tm_error_set(err, -EINVAL, "core: region %zu '%s' has non-MTE tags; a core holds MTE tags only",
					    i, tm_region_name(regs[i].region));
		if (a % g->page_size || a >= (1ull << 48) || len > (1ull << 48) - a)
			return tm_error_set(err, -EINVAL, "core: region %zu '%s' at 0x%" PRIx64 " (+%" PRIu64 ") is not page aligned below 2^48",
					    i, tm_region_name(regs[i].region), a, len);
		for (size_t j = 0; j < i; j++) {
			uint64_t b = regs[j].vaddr, blen = tm_region_size(regs[j].region);

			if (a < b + blen && b < a + len)
				return tm_error_set(err, -EINVAL, "core: regions %zu and %zu overlap at 0x%" PRIx64,
						    j, i, a > b ? a : b);
		}
	}
	return 0;
}

static int plan_core(struct core_plan *P, const tm_core_opts *o, tm_error *err)
{
	uint64_t at;

	for (size_t i = 0; i < P->n; i++)
		P->ntagged += region_tagged(P->regs[i].region);
	if (1 + P->n + P->ntagged >= ELF_PN_XNUM)
		return tm_error_set(err, -E2BIG, "core: %zu regions need more than %u program headers",
				    P->n, ELF_PN_XNUM - 1);
	P->load_off = calloc(P->n, sizeof(uint64_t));
	P->tag_off = calloc(P->n, sizeof(uint64_t));
	P->notes_len = build_notes(NULL, o, tm_region_geom(P->regs[0].region)->page_size);
	P->notes = calloc(1, P->notes_len);
	if (!P->load_off || !P->tag_off || !P->notes)
		return tm_error_set(err, -ENOMEM, "core: no memory");
	build_notes(P->notes, o, tm_region_geom(P->regs[0].region)->page_size);
	P->notes_off = EH_SIZE + (1 + P->n + P->ntagged) * PH_SIZE;
	at = P->notes_off + P->notes_len;
	for (size_t i = 0; i < P->n; i++) {
		at = tm_snap_align_up(at, tm_region_geom(P->regs[i].region)->page_size);
		P->load_off[i] = at;
		at += tm_region_size(P->regs[i].region);
	}
	for (size_t i = 0; i < P->n; i++)
		if (region_tagged(P->regs[i].region)) {
			P->tag_off[i] = at;
			at += tm_region_size(P->regs[i].region) / 32;
		}
	P->end = at;
	return 0;
}

static void put_phdr(uint8_t *p, uint32_t type, uint32_t flags, uint64_t off,
		     uint64_t vaddr, uint64_t filesz, uint64_t memsz,
		     uint64_t align)
{
	memset(p, 0, PH_SIZE);
	tm_snap_put32(p + PH_TYPE, type);
	tm_snap_put32(p + PH_FLAGS, flags);
	tm_snap_put64(p + PH_OFFSET, off);
	tm_snap_put64(p + PH_VADDR, vaddr);
	tm_snap_put64(p + PH_FILESZ, filesz);
	tm_snap_put64(p + PH_MEMSZ, memsz);
	tm_snap_put64(p + PH_ALIGN, align);
}

static void build_headers(const struct core_plan *P, uint8_t *h)
{
	uint16_t phnum = (uint16_t)(1 + P->n + P->ntagged);
	uint8_t *ph = h + EH_SIZE;

	memset(h, 0, EH_SIZE);
	memcpy(h, "\177ELF", 4);
	h[4] = ELF_CLASS64;
	h[5] = ELF_DATA2LSB;
	h[6] = 1;                       /* EV_CURRENT */
	tm_snap_put16(h + EH_TYPE, ELF_ET_CORE);
	tm_snap_put16(h + EH_MACHINE, ELF_EM_AARCH64);
	tm_snap_put32(h + EH_VERSION, 1);
	tm_snap_put64(h + EH_PHOFF, EH_SIZE);
	tm_snap_put16(h + EH_EHSIZE, EH_SIZE);
	tm_snap_put16(h + EH_PHENTSIZE, PH_SIZE);
	tm_snap_put16(h + EH_PHNUM, phnum);
	put_phdr(ph, ELF_PT_NOTE, 0, P->notes_off, 0, P->notes_len, 0, 0);
	ph += PH_SIZE;
	for (size_t i = 0; i < P->n; i++, ph += PH_SIZE) {
		tm_region *r = P->regs[i].region;

		put_phdr(ph, ELF_PT_LOAD, P->regs[i].prot ? P->regs[i].prot : TM_CORE_R | TM_CORE_W,
			 P->load_off[i], P->regs[i].vaddr, tm_region_size(r),
			 tm_region_size(r), tm_region_geom(r)->page_size);
	}
	for (size_t i = 0; i < P->n; i++) {
		tm_region *r = P->regs[i].region;

		if (!region_tagged(r))
			continue;
		put_phdr(ph, TM_PT_AARCH64_MEMTAG_MTE, 0, P->tag_off[i], P->regs[i].vaddr,
			 tm_region_size(r) / 32, tm_region_size(r), 0);
		ph += PH_SIZE;
	}
}

/* ---- payload ------------------------------------------------------- */

/* Memory of region i: runs of non-zero pages; zero pages stay holes. */
static int write_memory(sfile *f, const struct core_plan *P, size_t i,
			uint8_t *buf, tm_error *err)
{
	tm_region *r = P->regs[i].region;
	size_t ps = tm_region_geom(r)->page_size, per = CORE_IO_BUF / ps, fill = 0;
	uint64_t start = 0;
	int rc = 0;

	for (size_t pg = 0; pg < tm_region_npages(r) && !rc; pg++) {
		rc = tm_region_read_page(r, pg, buf + fill * ps, NULL, err);
		if (rc)
			break;
		bool zero = tm_mem_is_zero(buf + fill * ps, ps);

		if (!zero && fill == 0)
			start = pg;
		if (!zero)
			fill++;
		if (fill && (zero || fill == per || pg + 1 == tm_region_npages(r))) {
			rc = tm_sfile_pwrite(f, buf, fill * ps, P->load_off[i] + start * ps, err);
			fill = 0;
		}
	}
	return rc;
}

/* Tags of region i, packed, untagged pages as zeros. */
static int write_tags(sfile *f, const struct core_plan *P, size_t i,
		      uint8_t *buf, tm_error *err)
{
	tm_region *r = P->regs[i].region;
	size_t tb = tm_geom_packed_bytes(tm_region_geom(r));
	size_t per = CORE_IO_BUF / tb, fill = 0;
	uint64_t done = 0;
	int rc = 0;

	for (size_t pg = 0; pg < tm_region_npages(r) && !rc; pg++) {
		if (tm_region_page_may_be_tagged(r, pg))
			rc = tm_region_get_tags(r, pg, TM_TAGS_PACKED, buf + fill * tb, err);
		else
			memset(buf + fill * tb, 0, tb);
		fill++;
		if (!rc && (fill == per || pg + 1 == tm_region_npages(r))) {
			rc = tm_sfile_pwrite(f, buf, fill * tb, P->tag_off[i] + done * tb, err);
			done += fill;
			fill = 0;
		}
	}
	return rc;
}

static int write_core(sfile *f, const struct core_plan *P, tm_error *err)
{
	size_t hlen = EH_SIZE + (1 + P->n + P->ntagged) * PH_SIZE;
	uint8_t *h = calloc(1, hlen), *buf = tm_sfile_alloc(CORE_IO_BUF);
	int rc = 0;

	if (!h || !buf)
		rc = tm_error_set(err, -ENOMEM, "core %s: no memory", f->path);
	if (!rc) {
		build_headers(P, h);
		rc = tm_sfile_pwrite(f, h, hlen, 0, err);
	}
	if (!rc)
		rc = tm_sfile_pwrite(f, P->notes, P->notes_len, P->notes_off, err);
	for (size_t i = 0; i < P->n && !rc; i++)
		rc = write_memory(f, P, i, buf, err);
	for (size_t i = 0; i < P->n && !rc; i++)
		if (region_tagged(P->regs[i].region))
			rc = write_tags(f, P, i, buf, err);
	free(h);
	free(buf);
	return rc;
}

static int default_opts(tm_core_opts *d, const tm_core_opts *o,
			const tm_core_region *regs, tm_error *err)
{
	int rc = 0;

	memset(d, 0, sizeof(*d));
	if (o)
		rc = TM_ABI_COPY_IN(tm_core_opts, d, o, err);
	if (rc)
		return rc;
	if (d->auxv && (d->auxv_len == 0 || d->auxv_len % 16 || d->auxv_len > 4096))
		return tm_error_set(err, -EINVAL, "core: auxv of %zu bytes (a non-zero multiple of 16, at most 4096)",
				    d->auxv_len);
	if (!d->pid)
		d->pid = 1;
	if (d->flags & ~TM_CORE_F_EXACT)
		return tm_error_set(err, -EINVAL, "core: unknown flags 0x%llx",
				    (unsigned long long)(d->flags & ~TM_CORE_F_EXACT));
	if (!d->signo && !(d->flags & TM_CORE_F_EXACT))
		d->signo = ELF_SIGSEGV;
	if (!d->si_code && d->signo == ELF_SIGSEGV && !(d->flags & TM_CORE_F_EXACT))
		d->si_code = ELF_SEGV_MTESERR;
	if (!d->pc)
		d->pc = regs[0].vaddr;
	if (!d->sp)
		d->sp = regs[0].vaddr + tm_region_size(regs[0].region);
	if (!d->comm)
		d->comm = "tagmem";
	if (!d->tagged_addr_ctrl && !(d->flags & TM_CORE_F_EXACT))
		d->tagged_addr_ctrl = TAGCTL_ENABLE | TAGCTL_TCF_SYNC |
				      (0xfffeull << TAGCTL_TAG_SHIFT);
	return 0;
}

int tm_core_write(const char *path, const tm_core_region *regs, size_t n,
		  const tm_core_opts *o, tm_error *err)
{
	struct core_plan P = { .regs = regs, .n = n };
	tm_core_opts d;
	sfile f;
	int rc;

	if (!path || !regs || n == 0)
		return tm_error_set(err, -EINVAL, "core: no path or no regions");
	rc = check_regions(regs, n, err);
	if (rc)
		return rc;
	rc = default_opts(&d, o, regs, err);
	if (!rc)
		rc = plan_core(&P, &d, err);
	if (!rc)
		rc = tm_sfile_create(&f, path, TM_SNAP_IO_BUFFERED, err);
	if (!rc) {
		rc = write_core(&f, &P, err);
		if (!rc)
			rc = tm_sfile_commit(&f, P.end, NULL, NULL, err);
		tm_sfile_close(&f);
	}
	free(P.load_off);
	free(P.tag_off);
	free(P.notes);
	return rc;
}
