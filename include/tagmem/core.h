/*
 * tagmem/core.h - ELF core dumps with Arm MTE tags: write a core file of a
 * set of tagged regions that gdb (>= 13) loads, memory tags included, and
 * read cores written by Linux, gdb's gcore or tagmem (format notes in
 * docs/FORMAT.md, "ELF core dumps").
 *
 * What tagmem writes (the layout Linux's binfmt_elf + arch/arm64 elfcore.c
 * produce): an ELF64 little-endian ET_CORE file for EM_AARCH64 with
 *   PT_NOTE   NT_PRSTATUS (one thread: pid, signal, pc/sp), NT_PRPSINFO,
 *             NT_SIGINFO, NT_AUXV (AT_HWCAP2 carries HWCAP2_MTE: without it
 *             gdb has no memory-tagging support for the core), NT_FPREGSET,
 *             NT_ARM_TAGGED_ADDR_CTRL (tagged ABI on, synchronous checks);
 *   PT_LOAD   one per region, p_align = page size; pages whose data is zero
 *             are left as holes (sparse file, reads as zero);
 *   PT_AARCH64_MEMTAG_MTE (0x70000002) one per tagged region, same vaddr
 *             and memsz as its PT_LOAD, p_filesz = p_memsz / 32, the tags
 *             packed two per byte, low nibble = lower-address granule.
 *
 * Thread safety: tm_core_write may run concurrently on different files. A
 * tm_core handle is read-only after tm_core_open; its read functions may be
 * called from several threads at once.
 */
#ifndef TAGMEM_CORE_H
#define TAGMEM_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/api.h"
#include "tagmem/error.h"
#include "tagmem/region.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_PT_AARCH64_MEMTAG_MTE 0x70000002u
#define TM_HWCAP2_MTE            (1ull << 18)
#define TM_CORE_MAX_SEGMENTS     65535u

/* Segment permissions, the ELF PF_* values. */
enum tm_core_prot { TM_CORE_X = 1, TM_CORE_W = 2, TM_CORE_R = 4 };

typedef struct tm_core_region {
	tm_region *region;
	uint64_t vaddr;      /* address in the dumped address space: a
				multiple of the region's page size, below
				2^48; regions may not overlap */
	uint32_t prot;       /* TM_CORE_* bits; 0 = R|W */
} tm_core_region;

typedef struct tm_core_opts {
	uint32_t struct_size;      /* sizeof(this struct), or 0 for the 0.1 layout
				     (tagmem/api.h, "Structs that grow") */
	uint32_t pid;        /* 0: 1 */
	int signo;           /* 0: SIGSEGV (11) */
	int si_code;         /* 0: SEGV_MTESERR (9) when signo is SIGSEGV */
	uint64_t fault_addr; /* si_addr of NT_SIGINFO */
	uint64_t pc, sp;     /* 0: the first region's start / end */
	const char *comm;    /* NT_PRPSINFO name; NULL: "tagmem" */
	uint64_t tagged_addr_ctrl; /* 0: enable | TCF sync | tags 1..15 */
	/* Added after 0.1 (zero: as before), for cores of live processes
	 * (tagmem/ptrace.h): */
	const uint64_t *regs;      /* TM_CORE_NREGS words for NT_PRSTATUS: x0..x30,
				      sp, pc, pstate (struct user_pt_regs);
				      NULL: zeros but pc and sp above */
	const void *auxv;          /* NT_AUXV as the process has it
				      (/proc/PID/auxv: u64 pairs ending with
				      AT_NULL); NULL: the minimal one (HWCAP2_MTE,
				      the page size) */
	size_t auxv_len;           /* bytes of auxv: a multiple of 16, <= 4096 */
	uint64_t flags;            /* TM_CORE_F_* */
} tm_core_opts;

/* tm_core_opts.flags */
/* signo, si_code and tagged_addr_ctrl are written as given, 0 included
 * (no defaults): a core of a live process that no signal stopped, whose
 * threads may have the tagged ABI off. */
#define TM_CORE_F_EXACT 0x1u

#define TM_CORE_NREGS 34

/*
 * Write an aarch64 core of n regions to path (crash-safe like snapshots:
 * temporary file, fsync, rename). Each region's tags go into its
 * PT_AARCH64_MEMTAG_MTE segment; untagged regions (TM_META_NONE) get none;
 * untagged pages of a tagged region have zero tags (as in Linux). Tagged
 * regions must be MTE geometry (4 bits per 16 bytes). o may be NULL.
 */
TM_API int tm_core_write(const char *path, const tm_core_region *regs, size_t n,
			 const tm_core_opts *o, tm_error *err);

/* ---- reading ---------------------------------------------------- */

typedef struct tm_core tm_core;

typedef struct tm_core_segment {
	uint64_t vaddr, memsz;
	uint64_t offset, filesz;   /* PT_LOAD: file bytes (filesz < memsz:
				      the rest was not dumped, reads as 0) */
	uint32_t prot;             /* TM_CORE_* */
	bool tagged;               /* a PT_AARCH64_MEMTAG_MTE covers it */
	uint64_t tag_offset, tag_filesz;
} tm_core_segment;

typedef struct tm_core_info {
	uint16_t machine;          /* e_machine (183 = AArch64) */
	size_t nsegments;          /* PT_LOAD segments */
	size_t ntagged;            /* of which with tags */
	size_t nnotes, nthreads;   /* notes; NT_PRSTATUS notes */
	uint32_t pid;              /* first NT_PRSTATUS */
	int signo;
	uint64_t pc, sp;
	char comm[17];             /* NT_PRPSINFO pr_fname */
	bool has_auxv;
	uint64_t hwcap, hwcap2, page_size; /* from NT_AUXV (0: absent) */
	bool mte;                  /* HWCAP2_MTE set */
	bool has_tagged_addr_ctrl;
	uint64_t tagged_addr_ctrl;
	bool has_siginfo;
	uint64_t fault_addr;
	int si_code;
	uint64_t file_size;
} tm_core_info;

/*
 * Open and validate a core: ELF identification, header, every program
 * header (offsets and sizes inside the file, no overflow), every note
 * header inside its PT_NOTE, and every memtag segment (p_filesz <=
 * p_memsz / 32, a PT_LOAD with the same range). Errors are -EBADMSG (or
 * -EPROTONOSUPPORT for a foreign ELF flavour) naming the file offset.
 */
TM_API int tm_core_open(const char *path, tm_core **out, tm_error *err);
TM_API void tm_core_close(tm_core *c);

TM_API void tm_core_get_info(const tm_core *c, tm_core_info *out);
/* PT_LOAD segment i (< nsegments), in file order. */
TM_API int tm_core_segment_get(const tm_core *c, size_t i, tm_core_segment *out,
			       tm_error *err);

/* Read len bytes of dumped memory at addr (may span segments). Bytes past a
 * segment's p_filesz read as zero; an address in no segment gives -EFAULT
 * naming it. */
TM_API int tm_core_read_mem(tm_core *c, uint64_t addr, void *buf, size_t len,
			    tm_error *err);

/* Allocation tags of the granules covering [addr, addr+len), one tag per
 * byte (unpacked) into tags[(len + 15) / 16 after aligning addr down].
 * *ngranules receives the count. Tags past the memtag p_filesz read as 0;
 * an address with no memtag segment gives -ENODATA naming it. The top
 * byte of addr (a logical tag) is ignored. */
TM_API int tm_core_read_tags(tm_core *c, uint64_t addr, size_t len, uint8_t *tags,
			     size_t *ngranules, tm_error *err);

/* Extract PT_LOAD segment i as a new region (data and tags), with the given
 * page size (4/16/64 KiB; the segment's range must be a multiple of it). */
TM_API int tm_core_extract(tm_core *c, size_t i, enum tm_backend b,
			   uint32_t page_size, tm_region **out, tm_error *err);

#ifdef __cplusplus
}
#endif
#endif
