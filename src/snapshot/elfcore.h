/*
 * elfcore.h - the pieces of ELF64 and of the Linux aarch64 core-dump ABI
 * that tagmem's core writer and reader use: header and program-header
 * field offsets, note types, and the layouts of the aarch64 note payloads
 * (struct elf_prstatus 392 bytes with pr_reg at 112, struct elf_prpsinfo
 * 136 bytes, siginfo 128 bytes, user_fpsimd_state 528 bytes), as the
 * kernel's include/uapi/linux/elfcore.h and arch/arm64 define them for
 * 64-bit processes. Written out as offsets so the code does not depend on
 * the host's <sys/procfs.h>. Internal to the snapshot part.
 */
#ifndef TM_SNAPSHOT_ELFCORE_H
#define TM_SNAPSHOT_ELFCORE_H

#include "snapshot/le.h"

/* ELF64 header */
#define EH_SIZE        64u
#define EH_TYPE        16
#define EH_MACHINE     18
#define EH_VERSION     20
#define EH_PHOFF       32
#define EH_SHOFF       40
#define EH_EHSIZE      52
#define EH_PHENTSIZE   54
#define EH_PHNUM       56
#define EH_SHENTSIZE   58
#define EH_SHNUM       60
#define ELF_CLASS64    2
#define ELF_DATA2LSB   1
#define ELF_ET_CORE    4
#define ELF_EM_AARCH64 183
#define ELF_PN_XNUM    0xffffu

/* ELF64 program header */
#define PH_SIZE   56u
#define PH_TYPE   0
#define PH_FLAGS  4
#define PH_OFFSET 8
#define PH_VADDR  16
#define PH_PADDR  24
#define PH_FILESZ 32
#define PH_MEMSZ  40
#define PH_ALIGN  48
#define ELF_PT_LOAD 1
#define ELF_PT_NOTE 4

/* ELF64 section header (only entry 0 matters: PN_XNUM) */
#define SH_SIZE   64u
#define SH_INFO   44

/* note types */
#define ELF_NT_PRSTATUS 1
#define ELF_NT_FPREGSET 2
#define ELF_NT_PRPSINFO 3
#define ELF_NT_AUXV     6
#define ELF_NT_SIGINFO  0x53494749u
#define ELF_NT_ARM_TAGGED_ADDR_CTRL 0x409

/* aarch64 struct elf_prstatus */
#define PRS_SIZE     392u
#define PRS_SIGNO    0
#define PRS_CODE     4
#define PRS_CURSIG   12
#define PRS_PID      32
#define PRS_PPID     36
#define PRS_PGRP     40
#define PRS_SID      44
#define PRS_REG      112      /* x0..x30, sp, pc, pstate */
#define PRS_SP       (PRS_REG + 31 * 8)
#define PRS_PC       (PRS_REG + 32 * 8)
#define PRS_PSTATE   (PRS_REG + 33 * 8)
#define PRS_FPVALID  384

/* x86-64 struct elf_prstatus: 336 bytes, user_regs_struct at PRS_REG */
#define ELF_EM_X86_64 62
#define PRS_X86_SIZE  336u
#define PRS_X86_RIP   16
#define PRS_X86_RSP   19

/* 64-bit struct elf_prpsinfo */
#define PRP_SIZE     136u
#define PRP_STATE    0
#define PRP_SNAME    1
#define PRP_UID      16
#define PRP_PID      24
#define PRP_PPID     28
#define PRP_PGRP     32
#define PRP_SID      36
#define PRP_FNAME    40       /* 16 bytes */
#define PRP_PSARGS   56       /* 80 bytes */

/* siginfo_t as dumped in NT_SIGINFO */
#define SI_SIZE      128u
#define SI_SIGNO     0
#define SI_ERRNO     4
#define SI_CODE      8
#define SI_ADDR      16

#define FPSIMD_SIZE  528u     /* 32 x 16-byte V regs, fpsr, fpcr, 2 x pad */

/* auxv */
#define AUX_NULL   0
#define AUX_PAGESZ 6
#define AUX_HWCAP  16
#define AUX_HWCAP2 26

/* prctl(PR_SET_TAGGED_ADDR_CTRL) bits */
#define TAGCTL_ENABLE   1ull
#define TAGCTL_TCF_SYNC (1ull << 1)
#define TAGCTL_TAG_SHIFT 3

#define ELF_SIGSEGV      11
#define ELF_SEGV_MTESERR 9

#endif
