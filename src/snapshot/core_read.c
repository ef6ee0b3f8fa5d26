/*
 * core_read.c - read ELF core files (Linux, gdb gcore, tagmem): validate
 * every header and offset before trusting it, collect the PT_LOAD segments
 * and their PT_AARCH64_MEMTAG_MTE tag segments, decode the notes tagmem
 * understands, and read memory, tags and whole segments back as regions.
 */
#include "tagmem/core.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/elfcore.h"
#include "snapshot/sfile.h"
#include "snapshot/snapfmt.h"

#define CORE_MAX_PHNUM (1u << 20)
#define CORE_MAX_NOTES (64u << 20)

struct memtag {
	uint64_t vaddr, memsz, offset, filesz;
};

struct tm_core {
	sfile f;
	tm_core_info info;
	tm_core_segment *seg;      /* PT_LOAD, file order */
	size_t nseg;
	struct memtag *tag;
	size_t ntag;
};

static int __attribute__((format(printf, 4, 5)))
core_bad(tm_error *err, const char *path, uint64_t off, const char *fmt, ...)
{
	char what[TM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return tm_error_set(err, -EBADMSG, "core %s: offset %" PRIu64 " (0x%" PRIx64 "): %s",
			    path, off, off, what);
}

#define BAD(off, ...) core_bad(err, c->f.path, (uint64_t)(off), __VA_ARGS__)

/* ---- ELF header ---------------------------------------------------- */

static int check_ident(tm_core *c, const uint8_t *h, size_t len, tm_error *err)
{
	if (len < 4 || memcmp(h, "\177ELF", 4) != 0)
		return BAD(0, "not an ELF file (no \\177ELF magic)");
	if (len < EH_SIZE)
		return BAD(len, "truncated: the file ends inside the 64-byte ELF header");
	if (h[4] != ELF_CLASS64)
		return tm_error_set(err, -EPROTONOSUPPORT, "core %s: offset 4: ELF class %u, only ELF64 cores are read",
				    c->f.path, h[4]);
	if (h[5] != ELF_DATA2LSB)
		return tm_error_set(err, -EPROTONOSUPPORT, "core %s: offset 5: ELF data encoding %u, only little-endian cores are read",
				    c->f.path, h[5]);
	if (h[6] != 1 || tm_snap_get32(h + EH_VERSION) != 1)
		return BAD(6, "ELF version %u/%u, expected 1", h[6], tm_snap_get32(h + EH_VERSION));
	if (tm_snap_get16(h + EH_TYPE) != ELF_ET_CORE)
		return BAD(EH_TYPE, "ELF type %u is not ET_CORE (4): not a core dump",
			   tm_snap_get16(h + EH_TYPE));
	return 0;
}

/* Program header count, following PN_XNUM into section header 0. */
static int phnum_of(tm_core *c, const uint8_t *h, uint64_t *phnum,
		    tm_error *err)
{
	uint64_t shoff = tm_snap_get64(h + EH_SHOFF);
	uint8_t sh[SH_SIZE];
	int rc;

	*phnum = tm_snap_get16(h + EH_PHNUM);
	if (*phnum != ELF_PN_XNUM)
		return 0;
	if (shoff == 0 || shoff > c->f.size || c->f.size - shoff < SH_SIZE ||
	    tm_snap_get16(h + EH_SHENTSIZE) != SH_SIZE)
		return BAD(EH_SHOFF, "e_phnum is PN_XNUM but section header 0 at %" PRIu64 " is missing or outside the file",
			   shoff);
	rc = tm_sfile_pread(&c->f, sh, SH_SIZE, shoff, err);
	if (rc)
		return rc;
	*phnum = tm_snap_get32(sh + SH_INFO);
	return 0;
}

/* ---- notes --------------------------------------------------------- */

/* The first thread's pid and signal (same offsets on every 64-bit Linux
 * architecture) and its pc/sp (aarch64; x86-64 too, for gcore/Linux cores
 * of the host). */
static void note_prstatus(tm_core *c, const uint8_t *d, uint32_t len)
{
	if (c->info.nthreads++ || len < PRS_REG)
		return;
	c->info.signo = (int)tm_snap_get16(d + PRS_CURSIG);
	c->info.pid = tm_snap_get32(d + PRS_PID);
	if (c->info.machine == ELF_EM_AARCH64 && len >= PRS_SIZE) {
		c->info.pc = tm_snap_get64(d + PRS_PC);
		c->info.sp = tm_snap_get64(d + PRS_SP);
	} else if (c->info.machine == ELF_EM_X86_64 && len >= PRS_X86_SIZE) {
		c->info.pc = tm_snap_get64(d + PRS_REG + PRS_X86_RIP * 8);
		c->info.sp = tm_snap_get64(d + PRS_REG + PRS_X86_RSP * 8);
	}
}

static void note_auxv(tm_core *c, const uint8_t *d, uint32_t len)
{
	c->info.has_auxv = true;
	for (uint32_t i = 0; i + 16 <= len; i += 16) {
		uint64_t t = tm_snap_get64(d + i), v = tm_snap_get64(d + i + 8);

		if (t == AUX_NULL)
			break;
		if (t == AUX_HWCAP)
			c->info.hwcap = v;
		else if (t == AUX_HWCAP2)
			c->info.hwcap2 = v;
		else if (t == AUX_PAGESZ)
			c->info.page_size = v;
	}
	c->info.mte = c->info.hwcap2 & TM_HWCAP2_MTE;
}

static void note_one(tm_core *c, const char *name, uint32_t type,
		     const uint8_t *d, uint32_t len)
{
	c->info.nnotes++;
	if (strcmp(name, "CORE") == 0) {
		if (type == ELF_NT_PRSTATUS)
			note_prstatus(c, d, len);
		else if (type == ELF_NT_PRPSINFO && len >= PRP_SIZE)
			memcpy(c->info.comm, d + PRP_FNAME, 16);
		else if (type == ELF_NT_AUXV)
			note_auxv(c, d, len);
		else if (type == ELF_NT_SIGINFO && len >= SI_SIZE) {
			c->info.has_siginfo = true;
			c->info.si_code = (int)tm_snap_get32(d + SI_CODE);
			c->info.fault_addr = tm_snap_get64(d + SI_ADDR);
		}
	} else if (strcmp(name, "LINUX") == 0 && type == ELF_NT_ARM_TAGGED_ADDR_CTRL &&
		   len >= 8) {
		c->info.has_tagged_addr_ctrl = true;
		c->info.tagged_addr_ctrl = tm_snap_get64(d);
	}
}

static int parse_notes(tm_core *c, const uint8_t *n, uint64_t len,
		       uint64_t base, tm_error *err)
{
	uint64_t at = 0;

	while (at < len) {
		uint64_t nsz, dsz, name_end, end;
		char name[32] = "";

		if (len - at < 12)
			return BAD(base + at, "truncated note header (%" PRIu64 " bytes left in PT_NOTE)",
				   len - at);
		nsz = tm_snap_get32(n + at);
		dsz = tm_snap_get32(n + at + 4);
		name_end = at + 12 + tm_snap_align_up(nsz, 4);
		end = name_end + tm_snap_align_up(dsz, 4);
		if (name_end > len || end > len)
			return BAD(base + at, "note (name %" PRIu64 " bytes, desc %" PRIu64 " bytes) runs past its PT_NOTE segment",
				   nsz, dsz);
		if (nsz && n[at + 12 + nsz - 1] != 0)
			return BAD(base + at + 12, "note name is not NUL-terminated");
		if (nsz && nsz <= sizeof(name))
			memcpy(name, n + at + 12, nsz);
		note_one(c, name, tm_snap_get32(n + at + 8), n + name_end, (uint32_t)dsz);
		at = end;
	}
	return 0;
}

static int read_notes(tm_core *c, uint64_t off, uint64_t len, tm_error *err)
{
	uint8_t *n;
	int rc;

	if (len > CORE_MAX_NOTES)
		return BAD(off, "PT_NOTE of %" PRIu64 " bytes is implausibly large", len);
	n = malloc(len ? len : 1);
	if (!n)
		return tm_error_set(err, -ENOMEM, "core %s: no memory for notes", c->f.path);
	rc = tm_sfile_pread(&c->f, n, len, off, err);
	if (!rc)
		rc = parse_notes(c, n, len, off, err);
	free(n);
	return rc;
}

/* ---- program headers ----------------------------------------------- */

static int add_load(tm_core *c, const uint8_t *p)
{
	tm_core_segment *s = &c->seg[c->nseg++];

	memset(s, 0, sizeof(*s));
	s->vaddr = tm_snap_get64(p + PH_VADDR);
	s->memsz = tm_snap_get64(p + PH_MEMSZ);
	s->offset = tm_snap_get64(p + PH_OFFSET);
	s->filesz = tm_snap_get64(p + PH_FILESZ);
	s->prot = tm_snap_get32(p + PH_FLAGS) & 7;
	return 0;
}

static int check_phdr(tm_core *c, const uint8_t *p, uint64_t at, size_t i,
		      tm_error *err)
{
	uint32_t type = tm_snap_get32(p + PH_TYPE);
	uint64_t off = tm_snap_get64(p + PH_OFFSET), fsz = tm_snap_get64(p + PH_FILESZ);
	uint64_t va = tm_snap_get64(p + PH_VADDR), msz = tm_snap_get64(p + PH_MEMSZ);

	if (type != ELF_PT_LOAD && type != ELF_PT_NOTE && type != TM_PT_AARCH64_MEMTAG_MTE)
		return 0;
	if (off > c->f.size || fsz > c->f.size - off)
		return BAD(at + PH_OFFSET, "program header %zu: segment [%" PRIu64 ", +%" PRIu64 ") runs past the end of the file (%" PRIu64 " bytes): truncated core?",
			   i, off, fsz, c->f.size);
	if (type == ELF_PT_LOAD && (fsz > msz || va + msz < va))
		return BAD(at + PH_FILESZ, "program header %zu: PT_LOAD at 0x%" PRIx64 " has p_filesz %" PRIu64 " > p_memsz %" PRIu64 " or wraps",
			   i, va, fsz, msz);
	if (type == TM_PT_AARCH64_MEMTAG_MTE && c->info.machine == ELF_EM_AARCH64 &&
	    (msz % TM_MTE_GRANULE || fsz > msz / 32 || va + msz < va))
		return BAD(at + PH_FILESZ, "program header %zu: memtag segment at 0x%" PRIx64 " has p_filesz %" PRIu64 " for p_memsz %" PRIu64 " (at most p_memsz / 32)",
			   i, va, fsz, msz);
	return 0;
}

static int take_phdr(tm_core *c, const uint8_t *p, tm_error *err)
{
	uint32_t type = tm_snap_get32(p + PH_TYPE);

	if (type == ELF_PT_LOAD)
		return add_load(c, p);
	if (type == ELF_PT_NOTE)
		return read_notes(c, tm_snap_get64(p + PH_OFFSET), tm_snap_get64(p + PH_FILESZ), err);
	if (type == TM_PT_AARCH64_MEMTAG_MTE && c->info.machine == ELF_EM_AARCH64) {
		struct memtag *t = &c->tag[c->ntag++];

		t->vaddr = tm_snap_get64(p + PH_VADDR);
		t->memsz = tm_snap_get64(p + PH_MEMSZ);
		t->offset = tm_snap_get64(p + PH_OFFSET);
		t->filesz = tm_snap_get64(p + PH_FILESZ);
	}
	return 0;
}

/* Each memtag segment must cover exactly one PT_LOAD (Linux: same vaddr and
 * memsz). */
static int match_tags(tm_core *c, uint64_t phoff, tm_error *err)
{
	for (size_t t = 0; t < c->ntag; t++) {
		size_t i;

		for (i = 0; i < c->nseg; i++)
			if (c->seg[i].vaddr == c->tag[t].vaddr && c->seg[i].memsz == c->tag[t].memsz)
				break;
		if (i == c->nseg)
			return BAD(phoff, "memtag segment at 0x%" PRIx64 " (+%" PRIu64 ") has no PT_LOAD with the same range",
				   c->tag[t].vaddr, c->tag[t].memsz);
		c->seg[i].tagged = true;
		c->seg[i].tag_offset = c->tag[t].offset;
		c->seg[i].tag_filesz = c->tag[t].filesz;
		c->info.ntagged++;
	}
	return 0;
}

static int read_phdrs(tm_core *c, const uint8_t *h, tm_error *err)
{
	uint64_t phoff = tm_snap_get64(h + EH_PHOFF), phnum;
	uint8_t *ph = NULL;
	int rc = phnum_of(c, h, &phnum, err);

	if (rc)
		return rc;
	if (phnum && tm_snap_get16(h + EH_PHENTSIZE) != PH_SIZE)
		return BAD(EH_PHENTSIZE, "e_phentsize %u, expected %u",
			   tm_snap_get16(h + EH_PHENTSIZE), PH_SIZE);
	if (phnum > CORE_MAX_PHNUM || phoff > c->f.size ||
	    phnum * PH_SIZE > c->f.size - phoff)
		return BAD(EH_PHOFF, "%" PRIu64 " program headers at offset %" PRIu64 " run past the end of the file (%" PRIu64 " bytes)",
			   phnum, phoff, c->f.size);
	ph = malloc(phnum * PH_SIZE + 1);
	c->seg = calloc(phnum + 1, sizeof(*c->seg));
	c->tag = calloc(phnum + 1, sizeof(*c->tag));
	if (!ph || !c->seg || !c->tag)
		rc = tm_error_set(err, -ENOMEM, "core %s: no memory for %" PRIu64 " program headers",
				  c->f.path, phnum);
	if (!rc)
		rc = tm_sfile_pread(&c->f, ph, phnum * PH_SIZE, phoff, err);
	for (uint64_t i = 0; i < phnum && !rc; i++)
		rc = check_phdr(c, ph + i * PH_SIZE, phoff + i * PH_SIZE, (size_t)i, err);
	for (uint64_t i = 0; i < phnum && !rc; i++)
		rc = take_phdr(c, ph + i * PH_SIZE, err);
	if (!rc)
		rc = match_tags(c, phoff, err);
	free(ph);
	c->info.nsegments = c->nseg;
	return rc;
}

int tm_core_open(const char *path, tm_core **out, tm_error *err)
{
	tm_core *c = calloc(1, sizeof(*c));
	uint8_t h[EH_SIZE];
	size_t len;
	int rc;

	*out = NULL;
	if (!c)
		return tm_error_set(err, -ENOMEM, "core %s: no memory", path);
	rc = tm_sfile_open(&c->f, path, TM_SNAP_IO_BUFFERED, err);
	if (rc) {
		free(c);
		return rc;
	}
	len = c->f.size < EH_SIZE ? (size_t)c->f.size : EH_SIZE;
	rc = tm_sfile_pread(&c->f, h, len, 0, err);
	if (!rc)
		rc = check_ident(c, h, len, err);
	if (!rc) {
		c->info.machine = tm_snap_get16(h + EH_MACHINE);
		c->info.file_size = c->f.size;
		rc = read_phdrs(c, h, err);
	}
	if (rc) {
		tm_core_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void tm_core_close(tm_core *c)
{
	if (!c)
		return;
	tm_sfile_close(&c->f);
	free(c->seg);
	free(c->tag);
	free(c);
}

void tm_core_get_info(const tm_core *c, tm_core_info *out)
{
	*out = c->info;
}

int tm_core_segment_get(const tm_core *c, size_t i, tm_core_segment *out,
			tm_error *err)
{
	if (i >= c->nseg)
		return tm_error_set(err, -EINVAL, "core %s: no segment %zu (%zu PT_LOAD segments)",
				    c->f.path, i, c->nseg);
	*out = c->seg[i];
	return 0;
}

/* ---- reading memory and tags --------------------------------------- */

static const tm_core_segment *seg_at(const tm_core *c, uint64_t addr)
{
	for (size_t i = 0; i < c->nseg; i++)
		if (addr >= c->seg[i].vaddr && addr - c->seg[i].vaddr < c->seg[i].memsz)
			return &c->seg[i];
	return NULL;
}

int tm_core_read_mem(tm_core *c, uint64_t addr, void *buf, size_t len,
		     tm_error *err)
{
	uint8_t *out = buf;

	while (len) {
		const tm_core_segment *s = seg_at(c, addr);
		uint64_t in, n, from_file;
		int rc;

		if (!s)
			return tm_error_set(err, -EFAULT, "core %s: address 0x%" PRIx64 " is in no PT_LOAD segment",
					    c->f.path, addr);
		in = addr - s->vaddr;
		n = s->memsz - in < len ? s->memsz - in : len;
		from_file = in < s->filesz ? (s->filesz - in < n ? s->filesz - in : n) : 0;
		rc = from_file ? tm_sfile_pread(&c->f, out, from_file, s->offset + in, err) : 0;
		if (rc)
			return rc;
		memset(out + from_file, 0, n - from_file);
		out += n;
		addr += n;
		len -= n;
	}
	return 0;
}

#define ADDR_MASK ((UINT64_C(1) << 56) - 1)

/* Unpacked tags of granules [g, g + n) of segment s into tags; bytes past
 * the memtag p_filesz were not dumped and read as zero tags. */
static int seg_tags(tm_core *c, const tm_core_segment *s, uint64_t g,
		    uint64_t n, uint8_t *tags, tm_error *err)
{
	uint64_t done = 0, last = (g + n + 1) / 2;
	uint8_t buf[512];

	while (done < n) {
		uint64_t gi = g + done, b = gi / 2, have;
		uint64_t cnt = last - b < sizeof(buf) ? last - b : sizeof(buf);
		int rc;

		have = b < s->tag_filesz ? (s->tag_filesz - b < cnt ? s->tag_filesz - b : cnt) : 0;
		rc = have ? tm_sfile_pread(&c->f, buf, have, s->tag_offset + b, err) : 0;
		if (rc)
			return rc;
		memset(buf + have, 0, cnt - have);
		for (uint64_t k = gi - b * 2; k < cnt * 2 && done < n; k++)
			tags[done++] = tm_tag_get(buf, k);
	}
	return 0;
}

int tm_core_read_tags(tm_core *c, uint64_t addr, size_t len, uint8_t *tags,
		      size_t *ngranules, tm_error *err)
{
	uint64_t a = (addr & ADDR_MASK) & ~(uint64_t)(TM_MTE_GRANULE - 1);
	uint64_t end = ((addr & ADDR_MASK) + len + TM_MTE_GRANULE - 1) &
		       ~(uint64_t)(TM_MTE_GRANULE - 1);
	size_t done = 0;

	while (a < end) {
		const tm_core_segment *s = seg_at(c, a);
		uint64_t g, n;
		int rc;

		if (!s || !s->tagged)
			return tm_error_set(err, -ENODATA, "core %s: address 0x%" PRIx64 " is in no segment with MTE tags",
					    c->f.path, a);
		g = (a - s->vaddr) / TM_MTE_GRANULE;
		n = (s->vaddr + s->memsz - a) / TM_MTE_GRANULE;
		if (n > (end - a) / TM_MTE_GRANULE)
			n = (end - a) / TM_MTE_GRANULE;
		rc = seg_tags(c, s, g, n, tags + done, err);
		if (rc)
			return rc;
		done += n;
		a += n * TM_MTE_GRANULE;
	}
	if (ngranules)
		*ngranules = done;
	return 0;
}

static int extract_pages(tm_core *c, const tm_core_segment *s, tm_region *r,
			 tm_error *err)
{
	size_t ps = tm_region_geom(r)->page_size, tb = tm_geom_packed_bytes(tm_region_geom(r));
	size_t gran = ps / TM_MTE_GRANULE;
	uint8_t *data = malloc(ps), *un = malloc(gran), *packed = malloc(tb ? tb : 1);
	int rc = (!data || !un || !packed)
		? tm_error_set(err, -ENOMEM, "core %s: no memory", c->f.path) : 0;

	for (size_t pg = 0; pg < tm_region_npages(r) && !rc; pg++) {
		uint64_t va = s->vaddr + pg * ps;
		bool tagged = false;

		rc = tm_core_read_mem(c, va, data, ps, err);
		if (!rc && s->tagged) {
			rc = tm_core_read_tags(c, va, ps, un, NULL, err);
			if (!rc)
				rc = tm_tags_pack(packed, un, gran, err);
			tagged = !rc && !tm_mem_is_zero(packed, tb);
		}
		if (!rc)
			rc = tm_region_write_page(r, pg, data, tagged ? packed : NULL, err);
	}
	free(data);
	free(un);
	free(packed);
	return rc;
}

int tm_core_extract(tm_core *c, size_t i, enum tm_backend b,
		    uint32_t page_size, tm_region **out, tm_error *err)
{
	tm_region_config cfg = { .backend = b };
	const tm_core_segment *s;
	char name[TM_REGION_NAME_MAX];
	int rc;

	*out = NULL;
	if (i >= c->nseg)
		return tm_error_set(err, -EINVAL, "core %s: no segment %zu", c->f.path, i);
	s = &c->seg[i];
	if (s->vaddr % page_size || s->memsz % page_size || s->memsz == 0)
		return tm_error_set(err, -EINVAL, "core %s: segment %zu (0x%" PRIx64 " +%" PRIu64 ") is not a whole number of %u-byte pages",
				    c->f.path, i, s->vaddr, s->memsz, page_size);
	rc = s->tagged ? tm_geom_mte(&cfg.geom, page_size, err)
		       : tm_geom_init(&cfg.geom, TM_META_NONE, page_size, 0, 0, err);
	if (rc)
		return rc;
	snprintf(name, sizeof(name), "core@0x%" PRIx64, s->vaddr);
	cfg.name = name;
	cfg.size = s->memsz;
	rc = tm_region_create(&cfg, out, err);
	if (!rc)
		rc = extract_pages(c, s, *out, err);
	if (rc && *out) {
		tm_region_destroy(*out);
		*out = NULL;
	}
	return rc;
}
