/*
 * proto.h - what the reference VMM (examples/vmm) and its bare-metal guest
 * payload (examples/vmm/guest) agree on: where RAM and the one MMIO device
 * sit in the guest's physical address space, the device's registers, the
 * boot arguments and the report the guest writes into its own RAM.
 *
 * Shared by the guest (freestanding, EL1) and the VMM (Linux user space), so
 * it holds plain integers only.
 */
#ifndef TM_VMM_PROTO_H
#define TM_VMM_PROTO_H

#ifndef __ASSEMBLER__
#include <stdint.h>
#endif

/* Guest physical layout: RAM at 1 GiB like QEMU's virt machine, the
 * control device far below it (no memslot there: every access is an MMIO
 * exit to the VMM). */
#define TMV_RAM_IPA        0x40000000ull
#define TMV_MMIO_IPA       0x09000000ull

/* Control device registers (64-bit, byte offsets from TMV_MMIO_IPA). */
#define TMV_REG_CMD        0x00   /* read: what the VMM wants next (TMV_CMD_*) */
#define TMV_REG_PROGRESS   0x08   /* write: operations done so far */
#define TMV_REG_REPORT     0x10   /* write: IPA of a filled struct tmv_report */
#define TMV_REG_FAULT      0x18   /* write: IPA of a filled struct tmv_fault */
#define TMV_REG_PUTC       0x20   /* write: one console byte */
#define TMV_REG_READY      0x28   /* write: IPA of the report after setup */

#ifndef __ASSEMBLER__
enum tmv_cmd {
	TMV_CMD_RUN    = 0,   /* keep writing */
	TMV_CMD_VERIFY = 1,   /* check every granule against the log, report, go on */
	TMV_CMD_HALT   = 2,   /* stop writing and wait (poll again later) */
	/* (g << 8) | 3: one tag-only STG at granule g of the data area, a
	 * report, then halt (the probe for "a tag-only write dirties") */
	TMV_CMD_TAG_ONLY = 3,
};

/* Boot arguments: x0 = RAM size in bytes, x1 = PRNG seed, x2 = operations
 * between two polls of TMV_REG_CMD. */

#define TMV_REPORT_MAGIC   0x544d56524550ull   /* "TMVREP" */

/* Filled by the guest in its RAM before it writes TMV_REG_REPORT/READY. */
struct tmv_report {
	uint64_t magic;
	uint64_t mte_level;       /* ID_AA64PFR1_EL1.MTE (2 = MTE2: tags in memory) */
	uint64_t data_ipa;        /* tagged data area the workload writes */
	uint64_t data_bytes;
	uint64_t log_ipa;         /* per-granule log: (seq << 4) | tag */
	uint64_t ops;             /* operations done since boot */
	uint64_t ops_data_tag;    /* STGP: new data and a new IRG tag */
	uint64_t ops_tag_only;    /* STG: new tag, data unchanged */
	uint64_t ops_data_only;   /* tag-checked store: new data, same tag */
	uint64_t verifies;        /* verifications run (this one included) */
	uint64_t granules;        /* granules checked by the last verification */
	uint64_t tagged_granules; /* of them with a non-zero tag */
	uint64_t bad_tags;        /* allocation tag differs from the log */
	uint64_t bad_data;        /* data differs from the log (tag right) */
	uint64_t first_bad_ipa;   /* lowest bad granule, or 0 */
	uint64_t first_bad_want;  /* its log entry */
	uint64_t first_bad_tag;   /* the tag LDG read there */
	uint64_t log_sum_ok;      /* XOR of the log equals the running XOR kept
				     in a register (which travels with the vcpu) */
};

/* Filled by the guest's exception vectors before TMV_REG_FAULT. */
struct tmv_fault {
	uint64_t esr, far, elr, spsr, vector;
};

#endif /* !__ASSEMBLER__ */

#endif
